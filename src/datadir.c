#include "mqd/datadir.h"

#include "mqd/alloc.h"
#include "mqd/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void datadir_name(char *out, const char *kind, uint64_t gen, const char *suffix)
{
    snprintf(out, DATADIR_NAME_LEN, "%s.%llu%s", kind, (unsigned long long)gen, suffix);
}

struct record datadir_record(const struct broker_change *c)
{
    static const enum record_type types[] = {
        [BROKER_CACHED] = RECORD_MESSAGE,   [BROKER_INDEXED] = RECORD_INDEX,
        [BROKER_UNCACHED] = RECORD_REMOVED, [BROKER_HASH_KEY] = RECORD_HASH_KEY,
        [BROKER_RETIRED] = RECORD_RETIRED,  [BROKER_FLOOR] = RECORD_FLOOR,
    };
    struct record r = {.type = types[c->kind],
                       .topic = c->topic,
                       .topic_len = (uint32_t)c->topic_len,
                       .index = c->index,
                       .hash = c->hash,
                       .key = c->key};
    if (c->kind == BROKER_CACHED) {
        r.flags = c->once ? RECORD_ONE : 0;
        r.line = c->line->data;
        r.line_len = (uint32_t)c->line->len;
    }
    return r;
}

/* parse_gen: N of "KIND.N" (digits only, no leading zero), or 0 */
static uint64_t parse_gen(const char *name, const char *kind)
{
    size_t k = strlen(kind);
    if (strncmp(name, kind, k) != 0 || name[k] != '.' || name[k + 1] < '1' || name[k + 1] > '9')
        return 0;
    uint64_t gen = 0;
    for (const char *p = name + k + 1; *p; p++) {
        if (*p < '0' || *p > '9' || gen > UINT64_MAX / 10 - 1)
            return 0;
        gen = gen * 10 + (uint64_t)(*p - '0');
    }
    return gen;
}

struct generations {
    uint64_t snapshot; /* the newest snapshot, 0: none */
    uint64_t *logs;    /* every log's generation, ascending */
    size_t nlogs;
};

static int compare_gens(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* add_log: one more log generation listed */
static int add_log(struct generations *g, size_t *cap, uint64_t gen)
{
    if (g->nlogs == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 8;
        uint64_t *grown = mqd_realloc(g->logs, grown_cap * sizeof(*grown));
        if (!grown)
            return -1;
        g->logs = grown;
        *cap = grown_cap;
    }
    g->logs[g->nlogs++] = gen;
    return 0;
}

/* list_generations: the snapshots and logs in the directory, and with
 * `tidy` the unfinished snapshots removed */
static int list_generations(int dir_fd, bool tidy, struct generations *g)
{
    *g = (struct generations){0};
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        uint64_t gen;
        size_t len = strlen(e->d_name);
        if (tidy && len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
            (void)unlinkat(dir_fd, e->d_name, 0);
        else if ((gen = parse_gen(e->d_name, "snapshot")) && gen > g->snapshot)
            g->snapshot = gen;
        else if ((gen = parse_gen(e->d_name, "log")))
            rc = add_log(g, &cap, gen);
    }
    closedir(d);
    if (rc < 0) {
        mqd_free(g->logs);
        return -1;
    }
    if (g->nlogs > 1)
        qsort(g->logs, g->nlogs, sizeof(*g->logs), compare_gens);
    return 0;
}

/* plan_of: the plan the generations make, or -1 with the reason */
static int plan_of(const struct generations *g, const char *dir, struct datadir_plan *p, char *err,
                   size_t err_len)
{
    *p = (struct datadir_plan){.snapshot = g->snapshot};
    size_t i = 0;
    while (i < g->nlogs && g->logs[i] < g->snapshot)
        i++; /* older than the snapshot: compacted */
    if (i < g->nlogs)
        p->first_log = g->logs[i];
    if (g->snapshot && p->first_log != g->snapshot) {
        snprintf(err, err_len, "%s/snapshot.%llu has no log.%llu: not starting", dir,
                 (unsigned long long)g->snapshot, (unsigned long long)g->snapshot);
        return -1;
    }
    if (!g->snapshot && p->first_log > 1) { /* a snapshot went missing: its state with it */
        snprintf(err, err_len, "%s/log.%llu has no snapshot.%llu before it: not starting", dir,
                 (unsigned long long)p->first_log, (unsigned long long)p->first_log);
        return -1;
    }
    if (i == g->nlogs)
        return 0;
    for (p->last_log = p->first_log, i++; i < g->nlogs; i++, p->last_log++) {
        if (g->logs[i] != p->last_log + 1) {
            snprintf(err, err_len, "%s/log.%llu is missing: not starting", dir,
                     (unsigned long long)(p->last_log + 1));
            return -1;
        }
    }
    return 0;
}

int datadir_plan(int dir_fd, const char *dir, bool tidy, struct datadir_plan *out, char *err,
                 size_t err_len)
{
    struct generations g;
    if (list_generations(dir_fd, tidy, &g) < 0) {
        snprintf(err, err_len, "cannot list %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = plan_of(&g, dir, out, err, err_len);
    mqd_free(g.logs);
    return rc;
}

void datadir_remove_older(int dir_fd, uint64_t gen)
{
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return; /* they are ignored at start, and removed then */
    }
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t g = parse_gen(e->d_name, "log");
        if (!g)
            g = parse_gen(e->d_name, "snapshot");
        if (g && g < gen)
            (void)unlinkat(dir_fd, e->d_name, 0);
    }
    closedir(d);
}

static const enum broker_change_kind change_kinds[] = {
    [RECORD_MESSAGE] = BROKER_CACHED,   [RECORD_INDEX] = BROKER_INDEXED,
    [RECORD_REMOVED] = BROKER_UNCACHED, [RECORD_HASH_KEY] = BROKER_HASH_KEY,
    [RECORD_RETIRED] = BROKER_RETIRED,  [RECORD_FLOOR] = BROKER_FLOOR,
};

struct broker_change datadir_change(const struct record *r)
{
    return (struct broker_change){.kind = change_kinds[r->type],
                                  .topic = r->topic,
                                  .topic_len = r->topic_len,
                                  .index = r->index,
                                  .once = (r->flags & RECORD_ONE) != 0,
                                  .hash = r->hash,
                                  .key = r->key};
}

struct reading {
    datadir_restore_fn restore;
    void *ctx;
    bool refused;
};

/* restore_record: one good record back to the caller as its change */
static void restore_record(void *ctx, const struct record *r, size_t offset)
{
    (void)offset;
    struct reading *rd = ctx;
    if (rd->refused)
        return;
    struct broker_change c = datadir_change(r);
    if (r->type == RECORD_MESSAGE) {
        char *bytes;
        if (!(c.line = buf_new(r->line_len, &bytes))) {
            rd->refused = true;
            return;
        }
        memcpy(bytes, r->line, r->line_len);
    }
    rd->refused = rd->restore(rd->ctx, &c) != 0;
    buf_unref(c.line);
}

int datadir_read(int dir_fd, const char *name, datadir_restore_fn restore, void *ctx,
                 struct datadir_file *out)
{
    *out = (struct datadir_file){0};
    snprintf(out->name, sizeof(out->name), "%s", name);
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        errno = err;
        return -1;
    }
    out->size = (size_t)st.st_size;
    char *bytes = NULL;
    if (out->size > 0) {
        bytes = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (bytes == MAP_FAILED) {
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        (void)madvise(bytes, out->size, MADV_SEQUENTIAL); /* a hint only */
    }
    close(fd);
    struct reading rd = {restore, ctx, false};
    record_scan(bytes ? bytes : "", out->size, restore ? restore_record : NULL, &rd, &out->scan);
    out->refused = rd.refused;
    if (bytes)
        munmap(bytes, out->size);
    return 0;
}

const char *datadir_problem(const struct datadir_file *f, bool last_log)
{
    switch (f->scan.status) {
    case RECORD_SCAN_CLEAN: return NULL;
    case RECORD_SCAN_TORN: return last_log ? NULL : "is cut short";
    case RECORD_SCAN_DAMAGED: return "is damaged";
    case RECORD_SCAN_NOT_LOG: return "is not an mqd log of this version";
    }
    return "is unreadable";
}
