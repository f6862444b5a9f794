#include "mqd/check.h"

#include "mqd/alloc.h"
#include "mqd/broker.h"
#include "mqd/datadir.h"
#include "mqd/table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a topic named in the files */
struct named {
    uint64_t next_index;
    uint64_t cached, once, bytes;
    size_t len;
    char name[];
};

struct check {
    struct broker *broker; /* the state, rebuilt as mqd would */
    struct table *names;   /* every topic named, even those it retired */
    uint64_t retired, floors;
    bool failed;
};

static const void *named_key(const void *value, size_t *len)
{
    const struct named *n = value;
    *len = n->len;
    return n->name;
}

/* name: the topic's entry, made when first seen */
static struct named *name(struct check *k, const char *topic, size_t len)
{
    struct named *n = table_find(k->names, topic, len);
    if (n)
        return n;
    if (!(n = mqd_calloc(1, sizeof(*n) + len)))
        return NULL;
    n->len = len;
    memcpy(n->name, topic, len);
    if (table_insert(k->names, n) < 0) {
        mqd_free(n);
        return NULL;
    }
    return n;
}

/* read_change: one change into the broker, and its topic's name noted with
 * the lowest next index the change implies */
static int read_change(void *ctx, const struct broker_change *c)
{
    struct check *k = ctx;
    if (c->kind <= BROKER_UNCACHED) {
        struct named *n = name(k, c->topic, c->topic_len);
        if (!n)
            return -1;
        uint64_t next = c->kind == BROKER_INDEXED ? c->index : c->index + 1;
        if (n->next_index < next)
            n->next_index = next;
    }
    return broker_restore(k->broker, c) == BROKER_OK ? 0 : -1;
}

/* count_kept: what the rebuilt broker keeps, onto the names */
static void count_kept(void *ctx, const struct broker_change *c)
{
    struct check *k = ctx;
    struct named *n;
    switch (c->kind) {
    case BROKER_RETIRED: k->retired++; return;
    case BROKER_FLOOR: k->floors++; return;
    case BROKER_INDEXED:
    case BROKER_CACHED:
        if (!(n = name(k, c->topic, c->topic_len))) {
            k->failed = true;
            return;
        }
        if (c->kind == BROKER_INDEXED) {
            n->next_index = c->index; /* the broker's word is the last */
        } else {
            n->cached++;
            n->once += c->once;
            n->bytes += c->line->len;
        }
        return;
    default: return;
    }
}

static const char *const scan_words[] = {
    [RECORD_SCAN_CLEAN] = "clean",
    [RECORD_SCAN_TORN] = "torn tail",
    [RECORD_SCAN_DAMAGED] = "DAMAGED",
    [RECORD_SCAN_NOT_LOG] = "NOT A LOG",
};

/* check_file: one file of the plan read and reported; 0, 1 or 2 */
static int check_file(int dir_fd, const char *dir, const char *file, bool last_log, struct check *k,
                      FILE *out)
{
    struct datadir_file f;
    if (datadir_read(dir_fd, file, read_change, k, &f) < 0) {
        fprintf(out, "%s/%s: cannot read: %s\n", dir, file, strerror(errno));
        return 2;
    }
    fprintf(out, "%s/%s: %zu bytes, %zu records, %s", dir, file, f.size, f.scan.records,
            scan_words[f.scan.status]);
    if (f.scan.status != RECORD_SCAN_CLEAN)
        fprintf(out, " at offset %zu (%zu bytes from there)", f.scan.end, f.size - f.scan.end);
    fputc('\n', out);
    if (f.refused) {
        fprintf(out, "%s/%s: out of memory, or a record out of order\n", dir, file);
        return 2;
    }
    if (datadir_problem(&f, last_log))
        return 2;
    return f.scan.status == RECORD_SCAN_TORN ? 1 : 0;
}

/* check_files: the plan's files, in order; the worst of their results */
static int check_files(int dir_fd, const char *dir, struct check *k, FILE *out)
{
    char err[256], file[DATADIR_NAME_LEN];
    struct datadir_plan p;
    if (datadir_plan(dir_fd, dir, false, &p, err, sizeof(err)) < 0) {
        fprintf(out, "%s\n", err);
        return 2;
    }
    int worst = 0;
    if (p.snapshot) {
        datadir_name(file, "snapshot", p.snapshot, "");
        worst = check_file(dir_fd, dir, file, false, k, out);
    }
    for (uint64_t gen = p.first_log; worst < 2 && gen && gen <= p.last_log; gen++) {
        datadir_name(file, "log", gen, "");
        int rc = check_file(dir_fd, dir, file, gen == p.last_log, k, out);
        worst = rc > worst ? rc : worst;
    }
    if (!p.last_log)
        fprintf(out, "%s: no log yet\n", dir);
    return worst;
}

static int compare_named(const void *a, const void *b)
{
    const struct named *x = *(struct named *const *)a, *y = *(struct named *const *)b;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* print_name: a topic as text, its control bytes escaped */
static void print_name(FILE *out, const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
}

/* print_topics: every topic named, sorted; -1 when out of memory */
static int print_topics(struct check *k, FILE *out)
{
    size_t n = k->names->count, i = 0, cursor = 0;
    struct named **all = mqd_calloc(n ? n : 1, sizeof(*all));
    if (!all)
        return -1;
    struct named *t;
    while ((t = table_next(k->names, &cursor)))
        all[i++] = t;
    qsort(all, n, sizeof(*all), compare_named);
    for (i = 0; i < n; i++) {
        t = all[i];
        fputs("topic ", out);
        print_name(out, t->name, t->len);
        fprintf(out, ": next index %llu, %llu cached (%llu delivery one), %llu bytes\n",
                (unsigned long long)t->next_index, (unsigned long long)t->cached,
                (unsigned long long)t->once, (unsigned long long)t->bytes);
    }
    fprintf(out, "%zu topics named; %llu retired (kept by their names' hashes), %llu floors\n", n,
            (unsigned long long)k->retired, (unsigned long long)k->floors);
    mqd_free(all);
    return 0;
}

static void check_free(struct check *k)
{
    struct named *n;
    size_t cursor = 0;
    while (k->names && (n = table_next(k->names, &cursor)))
        mqd_free(n);
    table_free(k->names);
    broker_free(k->broker);
}

int check_data(const char *dir, FILE *out)
{
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        fprintf(out, "%s: cannot open: %s\n", dir, strerror(errno));
        return 2;
    }
    /* a broker that keeps everything the files hold: no cache size, no
     * bound on retired topics */
    static const uint8_t seed[SIPHASH_KEY_LEN] = {0};
    struct broker_config bc = {.cache_size = (size_t)1 << 40, .max_retired = SIZE_MAX / 64};
    struct check k = {.broker = broker_new(&bc), .names = table_new(named_key, seed)};
    int rc = k.broker && k.names ? check_files(dir_fd, dir, &k, out) : 2;
    close(dir_fd);
    if (rc < 2) {
        broker_each_kept(k.broker, count_kept, &k);
        if (k.failed || print_topics(&k, out) < 0) {
            fprintf(out, "out of memory\n");
            rc = 2;
        }
    }
    fprintf(out, "%s\n",
            rc == 0   ? "ok"
            : rc == 1 ? "ok but for a torn tail, which mqd cuts at start"
                      : "DAMAGED: mqd will not start on it");
    check_free(&k);
    return rc;
}
