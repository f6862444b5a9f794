#include "mqd/budget.h"

#include "mqd/alloc.h"
#include "mqd/broker.h"
#include "mqd/conn.h"

#include <errno.h>
#include <stdbool.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the heap is trimmed only when at least this much was freed: a trim walks
 * the heap, which is not worth it for small change */
#define GIVE_BACK_IDLE_MIN (1024u * 1024)

struct budget *budget_new(const struct budget_config *config)
{
    struct budget *b = mqd_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->limit = config->limit;
    b->broker = config->broker;
    b->clients = config->clients;
    b->log = config->log;
    if (b->limit)
        mqd_set_ceiling(b->limit + config->slack);
    return b;
}

void budget_free(struct budget *b)
{
    if (!b)
        return;
    mqd_set_ceiling(0);
    mqd_free(b);
}

size_t budget_limit(const struct budget *b) { return b->limit; }

/* evict_cached: step 1, one cached message; false when none is left */
static bool evict_cached(struct budget *b)
{
    bool was_one;
    if (!broker_evict_oldest(b->broker, &was_one))
        return false;
    uint64_t held;
    if (was_one && log_limit_allow(&b->one_warnings, &held))
        log_warn(b->log,
                 "a delivery \"one\" message was evicted from the cache for --max-memory before "
                 "any subscriber took it (%llu similar not logged)",
                 (unsigned long long)held);
    return true;
}

/* make_room: evicts cached messages, then (when `clients`) clients, until
 * `need` fits; a need over the whole budget is refused at once, before
 * anything is thrown away for it */
static bool make_room(struct budget *b, size_t need, bool clients, const void *requester)
{
    if (!b || b->limit == 0)
        return true;
    if (need > b->limit)
        return false;
    if (!budget_has_room(b, need)) /* what closed conns hold goes first */
        conn_release_closed(b->clients, requester);
    while (!budget_has_room(b, need)) {
        if (evict_cached(b))
            continue;
        if (!clients || conn_evict_biggest(b->clients, requester, b->limit) != CONN_EVICTED_OTHER)
            return false;
    }
    return true;
}

bool budget_make_room(struct budget *b, size_t need, const void *requester)
{
    return make_room(b, need, true, requester);
}

bool budget_make_room_from_cache(struct budget *b, size_t need)
{
    return make_room(b, need, false, NULL);
}

void budget_give_back(struct budget *b, bool idle)
{
    size_t held = mqd_allocated();
    if (held > b->high_water) {
        b->high_water = held;
        return;
    }
    /* only when about to wait: a trim walks the whole heap, tens of
     * milliseconds after a big fall, which nobody busy should wait for */
    size_t fallen = b->high_water - held;
    if (idle && fallen >= GIVE_BACK_IDLE_MIN) {
        malloc_trim(0);
        b->high_water = held;
    }
}

size_t budget_parse_cgroup_limit(const char *text)
{
    if (strncmp(text, "max", 3) == 0)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || (*end && *end != '\n'))
        return 0;
    /* cgroup v1 says "no limit" with a number near 2^63 */
    if (v >= (1ULL << 60) || v > SIZE_MAX)
        return 0;
    return (size_t)v;
}

/* read_small_file: the first line of a small file, or -1 */
static int read_small_file(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *got = fgets(out, (int)len, f);
    fclose(f);
    return got ? 0 : -1;
}

/* lowest_on_the_way_up: the lowest limit in `file` of the cgroup directory
 * `root``dir` and its parents up to `root`; 0 when none */
static size_t lowest_on_the_way_up(const char *root, char *dir, const char *file)
{
    char path[4400], value[64];
    size_t lowest = 0;
    for (;;) {
        snprintf(path, sizeof(path), "%s%s/%s", root, dir, file);
        size_t v;
        if (read_small_file(path, value, sizeof(value)) == 0 &&
            (v = budget_parse_cgroup_limit(value)) && (!lowest || v < lowest))
            lowest = v;
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    return lowest;
}

/* is_memory_controller: whether a v1 line's controller list names memory */
static bool is_memory_controller(const char *list, size_t len)
{
    while (len > 0) {
        size_t n = strcspn(list, ",:");
        if (n == 6 && strncmp(list, "memory", 6) == 0)
            return true;
        if (n >= len || list[n] != ',')
            break;
        list += n + 1;
        len -= n + 1;
    }
    return false;
}

/* cgroup_limit: the lowest memory limit of mqd's cgroups, v2 ("0::/path",
 * memory.max) or v1 (the memory controller's memory.limit_in_bytes), on
 * the way up to the root; 0 when none */
static size_t cgroup_limit(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    char line[4096];
    size_t lowest = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *controllers = strchr(line, ':');
        char *dir = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!dir)
            continue;
        size_t list_len = (size_t)(dir - controllers - 1);
        size_t v = 0;
        if (list_len == 0)
            v = lowest_on_the_way_up("/sys/fs/cgroup", dir + 1, "memory.max");
        else if (is_memory_controller(controllers + 1, list_len))
            v = lowest_on_the_way_up("/sys/fs/cgroup/memory", dir + 1, "memory.limit_in_bytes");
        if (v && (!lowest || v < lowest))
            lowest = v;
    }
    fclose(f);
    return lowest;
}

size_t budget_default_limit(char *why, size_t why_len)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t machine = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    size_t cgroup = cgroup_limit();
    const double gib = 1024.0 * 1024 * 1024;
    if (cgroup && (!machine || cgroup < machine)) {
        snprintf(why, why_len, "half of the cgroup's memory limit, %.1f GiB", (double)cgroup / gib);
        return cgroup / 2;
    }
    snprintf(why, why_len, "half of the machine's %.1f GiB", (double)machine / gib);
    return machine / 2;
}
