#include "mqd/store.h"

#include "mqd/alloc.h"
#include "mqd/datadir.h"
#include "mqd/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ALLOC_STEP ((off_t)8 << 20)     /* disk allocated ahead at a time */
#define REMOVAL_SPARE ((off_t)64 << 10) /* kept for records no send pays for */
#define RETRY_COMPACTION_NS (60ull * 1000000000ull)
#define SNAPSHOT_BUFFER ((size_t)1 << 20)
/* the pending buffer holds this much from the start, taken before
 * --max-memory's ceiling is set: the removals a budget's evictions tell
 * must find room when memory is short, which is when they happen */
#define PENDING_RESERVE ((size_t)256 << 10)

struct store {
    struct store_config config;
    store_restore_fn restore; /* while reading back */
    void *restore_ctx;
    uint64_t records_read;
    bool loading;  /* reading back: what is told is the load's own doing */
    bool reshaped; /* the load changed what it read: write a snapshot */
    int dir_fd;
    int lock_fd;
    int log_fd;
    uint64_t gen;    /* the log appended to: log.<gen> */
    off_t end;       /* its length: where good records end */
    off_t allocated; /* its bytes allocated ahead: end <= allocated */
    bool allocating; /* false once the filesystem says it cannot allocate ahead */
    bool no_room;    /* allocating failed since the last commit: refuse until then */
    bool failing;    /* the last commit failed */
    char *pending;   /* records told since the last commit */
    size_t pending_len;
    size_t pending_cap;
    uint64_t pending_records;
    bool unsynced; /* written since the helper thread was last asked to sync */
    struct log_limit warnings;
    struct store_stats stats;
    /* compaction: the child writing snapshot.<child_gen>.tmp */
    pid_t child;
    uint64_t child_gen;
    uint64_t child_started_ns;
    uint64_t retry_after_ns;
    /* STORE_FSYNC_EVERYSEC: the helper thread and what it is asked. The
     * mutex also guards stats.fsyncs and log_fd against the thread. */
    bool thread_on;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    bool sync_wanted;
    bool syncing;   /* the thread is in fdatasync: log_fd must stay */
    int sync_error; /* errno of the thread's last failed sync, 0: none */
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

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* warn: a rate-limited warning, counted as a persistence error */
static void warn(struct store *s, const char *what, int err)
{
    s->stats.errors++;
    uint64_t held;
    if (log_limit_allow(&s->warnings, &held))
        log_warn(s->config.log, "%s: %s: %s (%llu similar not logged)", s->config.dir, what,
                 strerror(err), (unsigned long long)held);
}

/* sync_log: fdatasync, timed into the histogram */
static int sync_log(struct store *s, int fd)
{
    uint64_t began = now_ns();
    int rc = fdatasync(fd);
    int err = errno;
    uint64_t took = now_ns() - began;
    if (s->thread_on)
        pthread_mutex_lock(&s->mutex);
    metrics_observe(&s->stats.fsyncs, took);
    if (s->thread_on)
        pthread_mutex_unlock(&s->mutex);
    errno = err;
    return rc;
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

/* read_file: one file of the plan into the broker */
static int read_file(struct store *s, const char *name, bool last_log, char *err, size_t err_len,
                     struct datadir_file *f)
{
    if (datadir_read(s->dir_fd, name, s->restore, s->restore_ctx, f) < 0) {
        snprintf(err, err_len, "cannot read %s/%s: %s", s->config.dir, name, strerror(errno));
        return -1;
    }
    if (f->refused) {
        snprintf(err, err_len, "out of memory, or a record out of order, reading %s/%s back",
                 s->config.dir, name);
        return -1;
    }
    const char *problem = datadir_problem(f, last_log);
    if (problem) {
        snprintf(err, err_len,
                 "%s/%s %s at offset %zu: not starting (mqd --check-data %s tells more; move "
                 "the directory away to start without it)",
                 s->config.dir, name, problem, f->scan.end, s->config.dir);
        return -1;
    }
    s->records_read += f->scan.records;
    return 0;
}

/* open_log: opens log.<gen> for appending, cutting a torn tail, or makes it */
static int open_log(struct store *s, uint64_t gen, const struct datadir_file *f, char *err,
                    size_t err_len)
{
    char name[DATADIR_NAME_LEN];
    datadir_name(name, "log", gen, "");
    s->log_fd = openat(s->dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->log_fd < 0) {
        snprintf(err, err_len, "cannot open %s/%s: %s", s->config.dir, name, strerror(errno));
        return -1;
    }
    s->gen = gen;
    s->end = f ? (off_t)f->scan.end : 0;
    if (f && f->scan.status == RECORD_SCAN_TORN && f->size > 0) {
        log_warn(s->config.log, "%s/%s: cut a torn tail of %zu bytes at offset %zu", s->config.dir,
                 name, f->size - f->scan.end, f->scan.end);
    }
    /* also gives back what a run that crashed had allocated ahead */
    if (f && ftruncate(s->log_fd, s->end) < 0) {
        snprintf(err, err_len, "cannot cut %s/%s: %s", s->config.dir, name, strerror(errno));
        return -1;
    }
    if (s->end == 0) { /* new, or torn inside its head */
        char head[RECORD_HEAD_LEN];
        record_write_head(head);
        if (write_all(s->log_fd, head, sizeof(head), 0) < 0 || fdatasync(s->log_fd) < 0 ||
            fsync(s->dir_fd) < 0) {
            snprintf(err, err_len, "cannot write %s/%s: %s", s->config.dir, name, strerror(errno));
            return -1;
        }
        s->end = RECORD_HEAD_LEN;
    }
    s->allocated = s->end;
    return 0;
}

/* give_back_allocation: the disk a crashed run allocated ahead for a log
 * it then left behind (a failure only wastes that space) */
static void give_back_allocation(struct store *s, const char *name, size_t size)
{
    int fd = openat(s->dir_fd, name, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)ftruncate(fd, (off_t)size);
        close(fd);
    }
}

/* adopt_unnumbered: a directory from before logs were numbered holds one
 * `log`: it becomes log.1 */
static int adopt_unnumbered(struct store *s)
{
    if (faccessat(s->dir_fd, "log", F_OK, 0) < 0)
        return 0;
    if (faccessat(s->dir_fd, "log.1", F_OK, 0) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(s->dir_fd, "log", s->dir_fd, "log.1") < 0 ? -1 : fsync(s->dir_fd);
}

/* read_back: the plan's files into the broker, the last log opened */
static int read_back(struct store *s, char *err, size_t err_len)
{
    if (adopt_unnumbered(s) < 0) {
        snprintf(err, err_len, "cannot rename %s/log to log.1: %s", s->config.dir, strerror(errno));
        return -1;
    }
    struct datadir_plan p;
    if (datadir_plan(s->dir_fd, s->config.dir, true, &p, err, err_len) < 0)
        return -1;
    struct datadir_file f;
    char name[DATADIR_NAME_LEN];
    if (p.snapshot) {
        datadir_name(name, "snapshot", p.snapshot, "");
        if (read_file(s, name, false, err, err_len, &f) < 0)
            return -1;
        s->stats.snapshot_bytes = f.size;
    }
    for (uint64_t gen = p.first_log; gen && gen <= p.last_log; gen++) {
        datadir_name(name, "log", gen, "");
        if (read_file(s, name, gen == p.last_log, err, err_len, &f) < 0)
            return -1;
        s->stats.log_bytes += f.scan.end;
        if (gen < p.last_log)
            give_back_allocation(s, name, f.size);
    }
    if (open_log(s, p.last_log ? p.last_log : (p.snapshot ? p.snapshot : 1), p.last_log ? &f : NULL,
                 err, err_len) < 0)
        return -1;
    if (!p.last_log)
        s->stats.log_bytes = (uint64_t)s->end;
    if (p.snapshot)
        datadir_remove_older(s->dir_fd, p.snapshot);
    log_info(s->config.log, "data directory %s: %llu records read back", s->config.dir,
             (unsigned long long)s->records_read);
    return 0;
}

/* ---- the sync thread ---- */

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
        s->syncing = true;
        int fd = s->log_fd;
        pthread_mutex_unlock(&s->mutex);
        uint64_t began = now_ns();
        int rc = fdatasync(fd);
        int err = errno;
        uint64_t took = now_ns() - began;
        pthread_mutex_lock(&s->mutex);
        metrics_observe(&s->stats.fsyncs, took);
        if (rc < 0)
            s->sync_error = err;
        s->syncing = false;
        pthread_cond_broadcast(&s->wake);
    }
    pthread_mutex_unlock(&s->mutex);
    return NULL;
}

/* switch_log: the log appended to from now on, once the thread is not in
 * a sync of the old one */
static void switch_log(struct store *s, int fd, uint64_t gen)
{
    if (s->thread_on) {
        pthread_mutex_lock(&s->mutex);
        while (s->syncing)
            pthread_cond_wait(&s->wake, &s->mutex);
    }
    int old = s->log_fd;
    s->log_fd = fd;
    if (s->thread_on)
        pthread_mutex_unlock(&s->mutex);
    (void)ftruncate(old, s->end); /* gives back what was allocated ahead */
    close(old);
    s->gen = gen;
    s->end = s->allocated = RECORD_HEAD_LEN;
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
    return 0;
}

static int start_thread(struct store *s, char *err, size_t err_len)
{
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, sync_thread, s) != 0) {
        snprintf(err, err_len, "cannot start the sync thread");
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->mutex);
        return -1;
    }
    s->thread_on = true;
    return 0;
}

static bool reserve_memory(struct store *s, size_t need);
static void compact_now(struct store *s);

struct store *store_open(const struct store_config *config, char *err, size_t err_len)
{
    struct store *s = mqd_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->config = *config;
    s->dir_fd = s->lock_fd = s->log_fd = -1;
    s->allocating = true;
    if (!reserve_memory(s, PENDING_RESERVE)) {
        snprintf(err, err_len, "out of memory");
        store_free(s);
        return NULL;
    }
    if (open_dir(s, err, err_len) < 0) {
        store_free(s);
        return NULL;
    }
    return s;
}

int store_load(struct store *s, store_restore_fn restore, void *ctx, char *err, size_t err_len)
{
    s->restore = restore;
    s->restore_ctx = ctx;
    s->loading = true;
    int rc = read_back(s, err, err_len);
    s->loading = false;
    if (rc < 0)
        return -1;
    if (s->reshaped && s->config.walk)
        compact_now(s);
    if (s->config.fsync == STORE_FSYNC_EVERYSEC && start_thread(s, err, err_len) < 0)
        return -1;
    return 0;
}

/* ---- writing ---- */

/* reserve_memory: room for `need` more bytes of records */
static bool reserve_memory(struct store *s, size_t need)
{
    if (s->pending_cap - s->pending_len >= need)
        return true;
    size_t cap = s->pending_cap ? s->pending_cap : 4096;
    while (cap - s->pending_len < need) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    char *grown = mqd_realloc(s->pending, cap);
    if (!grown)
        return false;
    s->pending = grown;
    s->pending_cap = cap;
    return true;
}

/* reserve_disk: disk allocated ahead for `need` more bytes of records and
 * the spare; tried once between commits when the disk says no */
static bool reserve_disk(struct store *s, size_t need)
{
    off_t want = s->end + (off_t)s->pending_len + (off_t)need + REMOVAL_SPARE;
    if (!s->allocating || want <= s->allocated)
        return true;
    if (s->no_room)
        return false;
    off_t grow = want - s->allocated < ALLOC_STEP ? ALLOC_STEP : want - s->allocated;
    if (fallocate(s->log_fd, FALLOC_FL_KEEP_SIZE, s->allocated, grow) == 0 ||
        (errno == ENOSPC && (grow = want - s->allocated) < ALLOC_STEP &&
         fallocate(s->log_fd, FALLOC_FL_KEEP_SIZE, s->allocated, grow) == 0)) {
        s->allocated += grow;
        return true;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
        log_info(s->config.log,
                 "%s: the filesystem cannot allocate ahead: a full disk will "
                 "show as failed writes",
                 s->config.dir);
        s->allocating = false;
        return true;
    }
    s->no_room = true;
    warn(s, "no room for records: sends get \"Could not persist\" until there is", errno);
    return false;
}

bool store_room(void *store, size_t topic_len, size_t line_len)
{
    struct store *s = store;
    /* a send's records: its message (or index), and the oldest message its
     * topic's full cache drops */
    size_t need = 2 * (RECORD_FRAME_LEN + 13 + topic_len) + 1 + line_len;
    if (s->failing)
        return false;
    if (!reserve_memory(s, need)) {
        warn(s, "no memory for records: send refused", ENOMEM);
        return false;
    }
    return reserve_disk(s, need);
}

void store_tell(void *store, const struct broker_change *c)
{
    struct store *s = store;
    if (s->loading) { /* what the load itself changed: a snapshot says it after */
        s->reshaped = true;
        return;
    }
    struct record r = datadir_record(c);
    size_t size = record_size(&r);
    if (!size || !reserve_memory(s, size)) {
        log_error(s->config.log, "%s: out of memory for a record: a change is not kept",
                  s->config.dir);
        s->stats.errors++;
        return;
    }
    s->pending_len += record_encode(&r, s->pending + s->pending_len);
    s->pending_records++;
}

static void compact_start(struct store *s);
static void reap_child(struct store *s);

int store_commit(struct store *s)
{
    s->no_room = false;
    reap_child(s); /* a compaction is put in place as soon as it is done */
    if (s->pending_len == 0)
        return 0;
    if (write_all(s->log_fd, s->pending, s->pending_len, s->end) < 0) {
        /* a record cut in two would read as damage: cut back (the retry
         * writes over it anyway, at the same offset) */
        int err = errno;
        (void)ftruncate(s->log_fd, s->end);
        s->allocated = s->end; /* the cut gave back what was allocated ahead */
        s->failing = true;
        warn(s, "cannot write records; replies held back and sends refused until it can", err);
        return -1;
    }
    if (s->config.fsync == STORE_FSYNC_ALWAYS && sync_log(s, s->log_fd) < 0) {
        /* written again at the next commit: a failed sync may have marked
         * the pages clean, and only a new write makes the next sync real */
        s->failing = true;
        warn(s, "cannot sync records; replies held back and sends refused until it can", errno);
        return -1;
    }
    if (s->failing)
        log_warn(s->config.log, "%s: records written again; sends accepted", s->config.dir);
    s->failing = false;
    s->end += (off_t)s->pending_len;
    if (s->end > s->allocated)
        s->allocated = s->end;
    s->stats.records += s->pending_records;
    s->stats.bytes += s->pending_len;
    s->stats.log_bytes += s->pending_len;
    s->pending_len = 0;
    s->pending_records = 0;
    if (s->pending_cap > 4 * PENDING_RESERVE) { /* a big pass's: shrunk back */
        char *shrunk = mqd_realloc(s->pending, PENDING_RESERVE);
        if (shrunk) {
            s->pending = shrunk;
            s->pending_cap = PENDING_RESERVE;
        }
    }
    s->unsynced = true;
    compact_start(s);
    return 0;
}

bool store_failing(const struct store *s) { return s->failing; }

/* ---- compaction ---- */

struct snapshot_writer {
    int fd;
    char *buf;
    size_t len;
    bool failed;
};

static void writer_flush(struct snapshot_writer *w)
{
    const char *p = w->buf;
    size_t left = w->len;
    while (!w->failed && left > 0) {
        ssize_t n = write(w->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->failed = true;
        else
            p += n, left -= (size_t)n;
    }
    w->len = 0;
}

/* writer_tell: a broker_change_fn writing each change as a record */
static void writer_tell(void *ctx, const struct broker_change *c)
{
    struct snapshot_writer *w = ctx;
    struct record r = datadir_record(c);
    size_t size = record_size(&r);
    if (w->failed || size == 0) {
        w->failed = true;
        return;
    }
    if (w->len + size > SNAPSHOT_BUFFER)
        writer_flush(w);
    if (size <= SNAPSHOT_BUFFER) {
        w->len += record_encode(&r, w->buf + w->len);
        return;
    }
    char *big = malloc(size); /* a line longer than the buffer */
    if (!big) {
        w->failed = true;
        return;
    }
    char *kept = w->buf;
    w->buf = big;
    w->len = record_encode(&r, big);
    writer_flush(w);
    w->buf = kept;
    free(big);
}

/* write_state: the whole state, as the walk tells it, into `fd`, synced.
 * 0, or -1 when it could not. */
static int write_state(struct store *s, int fd)
{
    struct snapshot_writer w = {.fd = fd, .buf = malloc(SNAPSHOT_BUFFER)};
    if (!w.buf)
        return -1;
    record_write_head(w.buf);
    w.len = RECORD_HEAD_LEN;
    s->config.walk(s->config.walk_state, writer_tell, &w);
    writer_flush(&w);
    free(w.buf);
    return w.failed || fdatasync(fd) < 0 ? -1 : 0;
}

/* run_child: the compaction child: the state as the fork froze it, into
 * the snapshot file; never returns */
static void run_child(struct store *s, int fd, pid_t parent)
{
    /* it dies with the parent, and holds nothing of the parent's: not its
     * listening socket, not its lock */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    if (dup2(fd, 3) < 0)
        _exit(1);
    (void)close_range(4, ~0u, 0);
    _exit(write_state(s, 3) < 0 ? 1 : 0);
}

/* compact_due: the logs since the snapshot have passed it and the minimum */
static bool compact_due(const struct store *s)
{
    if (s->child || !s->config.walk)
        return false;
    uint64_t base = s->stats.snapshot_bytes;
    uint64_t floor = s->config.compact_min > base ? s->config.compact_min : base;
    return s->stats.log_bytes > floor && now_ns() >= s->retry_after_ns;
}

/* begin_generation: log.<gen> made and synced, with its directory entry */
static int begin_generation(struct store *s, uint64_t gen)
{
    char name[DATADIR_NAME_LEN];
    datadir_name(name, "log", gen, "");
    int fd = openat(s->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char head[RECORD_HEAD_LEN];
    record_write_head(head);
    if (fd < 0 || write_all(fd, head, sizeof(head), 0) < 0 || fdatasync(fd) < 0 ||
        fsync(s->dir_fd) < 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
            (void)unlinkat(s->dir_fd, name, 0);
        }
        errno = err;
        return -1;
    }
    return fd;
}

/* compact_start: when due, the old log synced (a later generation never
 * follows a torn one), the next one begun, and the child forked */
static void compact_start(struct store *s)
{
    if (!compact_due(s))
        return;
    s->retry_after_ns = now_ns() + RETRY_COMPACTION_NS; /* unless it goes well */
    uint64_t gen = s->gen + 1;
    char tmp[DATADIR_NAME_LEN];
    datadir_name(tmp, "snapshot", gen, ".tmp");
    if (sync_log(s, s->log_fd) < 0) {
        warn(s, "cannot sync the log before compacting", errno);
        return;
    }
    int log_fd = begin_generation(s, gen);
    if (log_fd < 0) {
        warn(s, "cannot begin a new log to compact", errno);
        return;
    }
    int snap_fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t parent = getpid();
    uint64_t began = now_ns();
    pid_t pid = snap_fd >= 0 ? fork() : -1;
    if (pid == 0)
        run_child(s, snap_fd, parent);
    int err = errno;
    if (snap_fd >= 0)
        close(snap_fd);
    if (pid < 0) {
        char name[DATADIR_NAME_LEN];
        datadir_name(name, "log", gen, "");
        close(log_fd);
        (void)unlinkat(s->dir_fd, name, 0);
        (void)unlinkat(s->dir_fd, tmp, 0);
        warn(s, "cannot start compacting", err);
        return;
    }
    switch_log(s, log_fd, gen);
    s->stats.log_bytes = RECORD_HEAD_LEN;
    s->child = pid;
    s->child_gen = gen;
    s->child_started_ns = now_ns();
    log_info(s->config.log, "%s: compacting into snapshot.%llu (process %d; the fork took %.1f ms)",
             s->config.dir, (unsigned long long)gen, (int)pid,
             (double)(s->child_started_ns - began) / 1e6);
}

/* compacted: snapshot.<gen> is in place: the older generation goes */
static void compacted(struct store *s, uint64_t gen, uint64_t size, uint64_t began_ns)
{
    datadir_remove_older(s->dir_fd, gen);
    uint64_t took = now_ns() - began_ns;
    s->stats.compactions++;
    s->stats.last_compaction = (int64_t)time(NULL);
    s->stats.last_compaction_ns = took;
    s->stats.snapshot_bytes = size;
    s->retry_after_ns = 0;
    log_info(s->config.log, "%s: compacted into snapshot.%llu, %llu bytes, in %.3f s",
             s->config.dir, (unsigned long long)gen, (unsigned long long)size, (double)took / 1e9);
}

/* compact_finish: the child's snapshot put in place, the older generation
 * removed; or, if it failed, left as it was */
static void compact_finish(struct store *s, int status)
{
    char tmp[DATADIR_NAME_LEN], name[DATADIR_NAME_LEN];
    datadir_name(tmp, "snapshot", s->child_gen, ".tmp");
    datadir_name(name, "snapshot", s->child_gen, "");
    s->child = 0;
    struct stat st;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || fstatat(s->dir_fd, tmp, &st, 0) < 0 ||
        renameat(s->dir_fd, tmp, s->dir_fd, name) < 0 || fsync(s->dir_fd) < 0) {
        (void)unlinkat(s->dir_fd, tmp, 0);
        s->stats.compactions_failed++;
        warn(s, "compaction failed; the logs are kept and it is tried again in a minute",
             WIFEXITED(status) ? EIO : EINTR);
        return;
    }
    compacted(s, s->child_gen, (uint64_t)st.st_size, s->child_started_ns);
}

/* compact_now: a snapshot of the state written by the loop itself, before
 * any client is served: after a load that changed what it read (a smaller
 * cache dropped messages), the snapshot, not removals appended after
 * everything, says what is left. A failure is said, and the logs stay. */
static void compact_now(struct store *s)
{
    uint64_t began = now_ns(), gen = s->gen + 1;
    char tmp[DATADIR_NAME_LEN], name[DATADIR_NAME_LEN];
    datadir_name(tmp, "snapshot", gen, ".tmp");
    datadir_name(name, "snapshot", gen, "");
    int log_fd = begin_generation(s, gen);
    int fd =
        log_fd < 0 ? -1 : openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct stat st;
    bool done = fd >= 0 && write_state(s, fd) == 0 && fstat(fd, &st) == 0 &&
                renameat(s->dir_fd, tmp, s->dir_fd, name) == 0 && fsync(s->dir_fd) == 0;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (!done) {
        (void)unlinkat(s->dir_fd, tmp, 0);
        if (log_fd >= 0) {
            close(log_fd);
            datadir_name(name, "log", gen, "");
            (void)unlinkat(s->dir_fd, name, 0);
        }
        s->stats.compactions_failed++;
        warn(s,
             "cannot write a snapshot of the state as loaded; a restart with a bigger cache "
             "may bring back what this one dropped",
             err);
        return;
    }
    switch_log(s, log_fd, gen);
    s->stats.log_bytes = RECORD_HEAD_LEN;
    compacted(s, gen, (uint64_t)st.st_size, began);
}

/* reap_child: a finished compaction, without waiting */
static void reap_child(struct store *s)
{
    if (!s->child)
        return;
    int status = 0;
    pid_t got = waitpid(s->child, &status, WNOHANG);
    if (got == s->child || (got < 0 && errno == ECHILD)) /* reaped by someone else */
        compact_finish(s, got == s->child ? status : -1);
}

void store_tick(struct store *s)
{
    reap_child(s);
    if (!s->thread_on)
        return;
    pthread_mutex_lock(&s->mutex);
    int err = s->sync_error;
    s->sync_error = 0;
    if (s->unsynced) {
        s->sync_wanted = true;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mutex);
    s->unsynced = false;
    if (err)
        warn(s, "cannot sync records (everysec)", err);
}

void store_get_stats(struct store *s, struct store_stats *out)
{
    if (s->thread_on)
        pthread_mutex_lock(&s->mutex);
    *out = s->stats;
    if (s->thread_on)
        pthread_mutex_unlock(&s->mutex);
}

void store_free(struct store *s)
{
    if (!s)
        return;
    s->config.walk = NULL; /* no compaction begins now */
    if (s->log_fd >= 0) {
        (void)store_commit(s); /* a failure was said */
        (void)sync_log(s, s->log_fd);
        if (!s->failing)
            (void)ftruncate(s->log_fd, s->end); /* what was allocated ahead */
    }
    if (s->child) {
        int status;
        kill(s->child, SIGKILL);
        (void)waitpid(s->child, &status, 0);
        char tmp[DATADIR_NAME_LEN];
        datadir_name(tmp, "snapshot", s->child_gen, ".tmp");
        (void)unlinkat(s->dir_fd, tmp, 0);
    }
    if (s->thread_on) {
        pthread_mutex_lock(&s->mutex);
        s->stopping = true;
        pthread_cond_broadcast(&s->wake);
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
