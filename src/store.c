#include "mqd/store.h"

#include "mqd/alloc.h"
#include "mqd/record.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct store {
    struct store_config config;
    int dir_fd;
    int lock_fd;
    int log_fd;
    off_t end; /* the log's length: where good records end */
    char *pending; /* records told since the last commit */
    size_t pending_len;
    size_t pending_cap;
    bool unsynced; /* written since the helper thread was last asked to sync */
    struct log_limit warnings;
    /* STORE_FSYNC_EVERYSEC: the helper thread and what it is asked */
    bool thread_on;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    bool sync_wanted;
    bool stopping;
};

int store_fsync_parse(const char *name, enum store_fsync *out)
{
    static const char *const names[] = {"always", "everysec", "no"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum store_fsync)i;
            return 0;
        }
    }
    return -1;
}

static const enum broker_change_kind change_kinds[] = {
    [RECORD_MESSAGE] = BROKER_CACHED,
    [RECORD_INDEX] = BROKER_INDEXED,
    [RECORD_REMOVED] = BROKER_UNCACHED,
};

struct reading {
    store_restore_fn restore;
    void *ctx;
    bool failed;
};

/* restore_record: one good record back to the broker as its change */
static void restore_record(void *ctx, const struct record *r, size_t offset)
{
    (void)offset;
    struct reading *rd = ctx;
    if (rd->failed)
        return;
    struct broker_change c = {change_kinds[r->type], r->topic, r->topic_len, r->index,
                              (r->flags & RECORD_ONE) != 0, NULL};
    if (r->type == RECORD_MESSAGE) {
        char *bytes;
        if (!(c.line = buf_new(r->line_len, &bytes))) {
            rd->failed = true;
            return;
        }
        memcpy(bytes, r->line, r->line_len);
    }
    rd->failed = rd->restore(rd->ctx, &c) != 0;
    buf_unref(c.line);
}

/* write_all: the whole buffer at `at`, or -1 with errno; at a known offset,
 * so a retry writes over what a failed attempt left */
static int write_all(int fd, const char *data, size_t len, off_t at)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            return -1;
        }
        data += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

/* read_back: scans the log and restores its records; cuts a torn tail and
 * gives an empty log its head */
static int read_back(struct store *s, struct reading *rd, char *err, size_t err_len)
{
    struct stat st;
    if (fstat(s->log_fd, &st) < 0) {
        snprintf(err, err_len, "cannot read %s/log: %s", s->config.dir, strerror(errno));
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *bytes = NULL;
    if (size > 0) {
        bytes = mmap(NULL, size, PROT_READ, MAP_PRIVATE, s->log_fd, 0);
        if (bytes == MAP_FAILED) {
            snprintf(err, err_len, "cannot read %s/log: %s", s->config.dir, strerror(errno));
            return -1;
        }
    }
    struct record_scan scan;
    record_scan(bytes ? bytes : "", size, restore_record, rd, &scan);
    if (bytes)
        munmap(bytes, size);
    if (rd->failed) {
        snprintf(err, err_len, "out of memory reading %s/log back", s->config.dir);
        return -1;
    }
    switch (scan.status) {
    case RECORD_SCAN_NOT_LOG:
        snprintf(err, err_len, "%s/log is not an mqd log of version %d", s->config.dir,
                 RECORD_VERSION);
        return -1;
    case RECORD_SCAN_DAMAGED:
        snprintf(err, err_len,
                 "%s/log is damaged at offset %zu, with good records after it: not starting "
                 "(move the file away to start without it)",
                 s->config.dir, scan.end);
        return -1;
    case RECORD_SCAN_TORN:
        if (size > 0)
            log_warn(s->config.log, "%s/log: cut a torn tail of %zu bytes at offset %zu",
                     s->config.dir, size - scan.end, scan.end);
        if (ftruncate(s->log_fd, (off_t)scan.end) < 0) {
            snprintf(err, err_len, "cannot cut %s/log: %s", s->config.dir, strerror(errno));
            return -1;
        }
        break;
    case RECORD_SCAN_CLEAN: break;
    }
    s->end = (off_t)scan.end;
    if (s->end == 0) {
        char head[RECORD_HEAD_LEN];
        record_write_head(head);
        if (write_all(s->log_fd, head, sizeof(head), 0) < 0 || fdatasync(s->log_fd) < 0 ||
            fsync(s->dir_fd) < 0) {
            snprintf(err, err_len, "cannot write %s/log: %s", s->config.dir, strerror(errno));
            return -1;
        }
        s->end = RECORD_HEAD_LEN;
    }
    log_info(s->config.log, "data directory %s: %zu records read back", s->config.dir,
             scan.records);
    return 0;
}

/* sync_thread: STORE_FSYNC_EVERYSEC's helper: syncs the log when asked */
static void *sync_thread(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mutex);
    for (;;) {
        while (!s->sync_wanted && !s->stopping)
            pthread_cond_wait(&s->wake, &s->mutex);
        if (s->stopping)
            break;
        s->sync_wanted = false;
        pthread_mutex_unlock(&s->mutex);
        (void)fdatasync(s->log_fd); /* a failure shows at the loop's own next sync */
        pthread_mutex_lock(&s->mutex);
    }
    pthread_mutex_unlock(&s->mutex);
    return NULL;
}

static int open_dir(struct store *s, char *err, size_t err_len)
{
    const char *dir = s->config.dir;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot make data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        snprintf(err, err_len, "cannot open data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, err_len, "data directory %s is in use by another mqd", dir);
        else
            snprintf(err, err_len, "cannot lock data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    s->log_fd = openat(s->dir_fd, "log", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->log_fd < 0) {
        snprintf(err, err_len, "cannot open %s/log: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

struct store *store_open(const struct store_config *config, store_restore_fn restore,
                         void *ctx, char *err, size_t err_len)
{
    struct store *s = mqd_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->config = *config;
    s->dir_fd = s->lock_fd = s->log_fd = -1;
    struct reading rd = {restore, ctx, false};
    if (open_dir(s, err, err_len) < 0 || read_back(s, &rd, err, err_len) < 0) {
        store_free(s);
        return NULL;
    }
    if (config->fsync == STORE_FSYNC_EVERYSEC) {
        pthread_mutex_init(&s->mutex, NULL);
        pthread_cond_init(&s->wake, NULL);
        if (pthread_create(&s->thread, NULL, sync_thread, s) != 0) {
            snprintf(err, err_len, "cannot start the sync thread");
            pthread_cond_destroy(&s->wake);
            pthread_mutex_destroy(&s->mutex);
            store_free(s);
            return NULL;
        }
        s->thread_on = true;
    }
    return s;
}

/* change_record: the record that keeps a change */
static struct record change_record(const struct broker_change *c)
{
    static const enum record_type types[] = {
        [BROKER_CACHED] = RECORD_MESSAGE,
        [BROKER_INDEXED] = RECORD_INDEX,
        [BROKER_UNCACHED] = RECORD_REMOVED,
    };
    struct record r = {.type = types[c->kind],
                       .topic = c->topic,
                       .topic_len = (uint32_t)c->topic_len,
                       .index = c->index};
    if (c->kind == BROKER_CACHED) {
        r.flags = c->once ? RECORD_ONE : 0;
        r.line = c->line->data;
        r.line_len = c->line->len;
    }
    return r;
}

void store_tell(void *store, const struct broker_change *c)
{
    struct store *s = store;
    struct record r = change_record(c);
    size_t size = record_size(&r);
    if (size && s->pending_len + size > s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap : 4096;
        while (cap < s->pending_len + size)
            cap *= 2;
        char *grown = mqd_realloc(s->pending, cap);
        if (grown) {
            s->pending = grown;
            s->pending_cap = cap;
        }
    }
    if (!size || s->pending_len + size > s->pending_cap) {
        log_error(s->config.log, "%s/log: out of memory for a record: a change is not kept",
                  s->config.dir);
        return;
    }
    s->pending_len += record_encode(&r, s->pending + s->pending_len);
}

int store_commit(struct store *s)
{
    if (s->pending_len == 0)
        return 0;
    if (write_all(s->log_fd, s->pending, s->pending_len, s->end) < 0) {
        int err = errno;
        /* a record cut in two would read as damage: cut back (the retry
         * writes over it anyway, at the same offset) */
        (void)ftruncate(s->log_fd, s->end);
        uint64_t held;
        if (log_limit_allow(&s->warnings, &held))
            log_warn(s->config.log,
                     "%s/log: cannot write %zu bytes of records: %s; kept to try again (%llu "
                     "similar not logged)",
                     s->config.dir, s->pending_len, strerror(err), (unsigned long long)held);
        return -1;
    }
    s->end += (off_t)s->pending_len;
    s->pending_len = 0;
    if (s->config.fsync == STORE_FSYNC_ALWAYS && fdatasync(s->log_fd) < 0) {
        uint64_t held;
        if (log_limit_allow(&s->warnings, &held))
            log_warn(s->config.log, "%s/log: cannot sync: %s (%llu similar not logged)",
                     s->config.dir, strerror(errno), (unsigned long long)held);
        return -1;
    }
    s->unsynced = true;
    return 0;
}

void store_tick(struct store *s)
{
    if (!s->thread_on || !s->unsynced)
        return;
    s->unsynced = false;
    pthread_mutex_lock(&s->mutex);
    s->sync_wanted = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mutex);
}

void store_free(struct store *s)
{
    if (!s)
        return;
    if (s->log_fd >= 0) {
        (void)store_commit(s); /* a failure was said */
        (void)fdatasync(s->log_fd);
    }
    if (s->thread_on) {
        pthread_mutex_lock(&s->mutex);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mutex);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->mutex);
    }
    int fds[] = {s->log_fd, s->lock_fd, s->dir_fd};
    for (size_t i = 0; i < 3; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    mqd_free(s->pending);
    mqd_free(s);
}
