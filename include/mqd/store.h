/*
 * store: the data directory (--data-dir): the broker's changes kept in
 * append-only logs of records (record.h), compacted into snapshots, read
 * back at start.
 *
 * Files. `lock` is locked with flock while a store has the directory open
 * (a second mqd on it is refused). `log.N` holds the changes made while N
 * was the generation; `snapshot.N`, when there is one, the whole state as
 * it was when log.N began. The state is the newest snapshot.G (or nothing)
 * then log.G, log.G+1, ... in order; files of older generations are left
 * over from a compaction that finished and are removed at start. A new
 * directory begins with log.1.
 *
 * Reading back hands each good record to the caller's restore function. A
 * torn tail of the last log (a write cut by a crash) is cut off with a
 * warning saying how many bytes went; damage anywhere else (a bad record
 * with good ones after it, a torn earlier log or snapshot, a file that is
 * not a log, a missing generation) refuses the start with the file and
 * offset.
 *
 * Writing. store_room, asked by the broker before each send, makes room for
 * its records in memory and on disk first: the disk space is allocated
 * ahead (fallocate, 8 MiB at a time, and never less than a send needs plus
 * 64 KiB kept for the removals subscribes make), so a full disk refuses
 * the send ("Could not persist") instead of failing a write whose reply
 * would already be out; the next send tries again, so sends come back by
 * themselves when space does. store_tell (a broker_change_fn) encodes each
 * change into memory; store_commit writes all of a loop pass's records in
 * one write before the pass's replies and deliveries are flushed, so a
 * process crash loses nothing a client was told. Then, by the fsync
 * policy: STORE_FSYNC_ALWAYS syncs the data (fdatasync) in that call;
 * STORE_FSYNC_EVERYSEC has a helper thread sync at most once a second,
 * never blocking the loop; STORE_FSYNC_NO leaves it to the kernel.
 *
 * Failure. A commit that cannot write (an I/O error, a filesystem that
 * cannot allocate ahead and is full) or, with STORE_FSYNC_ALWAYS, sync keeps
 * the records and returns -1: the caller then holds the pass's output back
 * (store_failing), sends are refused, and each later commit writes the same
 * bytes again at the same offset until one succeeds. Warnings are at most
 * one a second.
 *
 * Compaction. When the logs since the last snapshot pass the snapshot's
 * size (and config.compact_min), so that the files hold about twice the
 * live state, the store syncs the log, begins log.N+1 and forks a child
 * that writes the state as it was at that moment (copy-on-write, the
 * caller's walk function over the parent's memory as it stood) to
 * snapshot.N+1.tmp, syncs it and exits. The loop goes on appending to
 * log.N+1 meanwhile. The next commit (or store_tick, once a second) reaps
 * the child: renames the snapshot into place, syncs the directory and
 * removes the older generation. A child that fails leaves the logs as they were (nothing is
 * lost: the state is still older snapshot + logs), and is tried again a
 * minute later.
 */
#ifndef MQD_STORE_H
#define MQD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/broker.h"
#include "mqd/datadir.h"
#include "mqd/log.h"
#include "mqd/metrics.h"

enum store_fsync { STORE_FSYNC_ALWAYS, STORE_FSYNC_EVERYSEC, STORE_FSYNC_NO };

/* store_fsync_parse: "always", "everysec" or "no". 0, or -1 if unknown. */
int store_fsync_parse(const char *name, enum store_fsync *out);

/* store_walk_fn: tells `fn` every change that rebuilds the whole state
 * kept (broker_each_kept), for a snapshot; runs in the compaction child */
typedef void (*store_walk_fn)(void *state, broker_change_fn fn, void *ctx);

struct store_config {
    const char *dir;
    enum store_fsync fsync;
    size_t compact_min; /* no compaction while the logs are smaller */
    const struct log *log;
    store_walk_fn walk;
    void *walk_state;
};

#define STORE_DEFAULT_COMPACT_MIN ((size_t)64 << 20)

/* store_restore_fn: one change read back; nonzero stops the start (the
 * broker is out of memory, or the change is out of order) */
typedef datadir_restore_fn store_restore_fn;

struct store;

/* store_open: makes the directory if missing and locks it. NULL with a
 * one-line reason in `err` when it cannot. */
struct store *store_open(const struct store_config *config, char *err, size_t err_len);

/* store_load: reads the state back through `restore`, and opens the last
 * log for appending. When the load itself changed what it read (what is
 * told meanwhile: a smaller cache dropping what it cannot hold), it then
 * writes a snapshot of the state as loaded, in the loop, before anyone is
 * served; removals appended after the whole log could undo a later record
 * of it. Once, before anything else. 0, or -1 with a one-line reason in
 * `err`. */
int store_load(struct store *s, store_restore_fn restore, void *ctx, char *err, size_t err_len);

/* store_room: a broker_room_fn: room for the records of one send (memory
 * for them, disk allocated ahead); false (said in a rate-limited warning)
 * when there is none or the store is failing. */
bool store_room(void *store, size_t topic_len, size_t line_len);

/* store_tell: keeps one change for the next commit (a broker_change_fn;
 * `store` is the context). Out of memory it is lost, and said so. */
void store_tell(void *store, const struct broker_change *c);

/* store_commit: writes what was told since the last commit, in one write,
 * and with STORE_FSYNC_ALWAYS syncs it; may start a compaction. 0, or -1
 * when it could not (kept for the next commit: hold the output back). */
int store_commit(struct store *s);

/* store_failing: whether the last commit failed. */
bool store_failing(const struct store *s);

/* store_tick: once a second: with STORE_FSYNC_EVERYSEC, asks the helper
 * thread to sync what was written since its last sync, and says what it
 * could not; reaps a compaction that finished. */
void store_tick(struct store *s);

struct store_stats {
    uint64_t records; /* written to the kernel */
    uint64_t bytes;
    uint64_t errors; /* writes, syncs and allocations that failed */
    uint64_t compactions;
    uint64_t compactions_failed;
    int64_t last_compaction;     /* unix time it finished, 0: none yet */
    uint64_t last_compaction_ns; /* how long it took */
    uint64_t log_bytes;          /* the logs since the snapshot */
    uint64_t snapshot_bytes;
    struct metrics_histogram fsyncs; /* how long each fdatasync took */
};

/* store_get_stats: the figures so far. */
void store_get_stats(struct store *s, struct store_stats *out);

/* store_free: commits and syncs what is left, stops a compaction under way
 * (its snapshot is not used), and unlocks. NULL is a no-op. */
void store_free(struct store *s);

#endif
