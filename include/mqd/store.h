/*
 * store: the data directory (--data-dir): the broker's changes kept in an
 * append-only log of records (record.h), read back at start.
 *
 * The directory holds `lock`, locked with flock while a store has it open
 * (a second mqd on the same directory is refused), and `log`. Opening reads
 * the whole log: each good record is handed to the caller's restore
 * function in order; a torn tail (a write cut by a crash) is cut off with a
 * warning saying how many bytes went; damage before the tail, or a file
 * that is not a log, refuses the start with the file and offset.
 *
 * While running, store_tell (a broker_change_fn) encodes each change into
 * memory, and store_commit writes all of a loop pass's records in one
 * write(), before the pass's replies and deliveries are flushed: a process
 * crash loses nothing a client was told. Then, by the fsync policy:
 * STORE_FSYNC_ALWAYS syncs the data (fdatasync) in that call, before the
 * flush; STORE_FSYNC_EVERYSEC has a helper thread sync at most once a
 * second, never blocking the loop; STORE_FSYNC_NO leaves it to the kernel.
 *
 * A write that fails (a full disk, an I/O error) keeps the records and is
 * tried again at the next commit, with a warning at most once a second.
 * Not yet done (issue 12): compaction, so the log grows with every change;
 * refusing sends with "Could not persist" while the disk is full.
 */
#ifndef MQD_STORE_H
#define MQD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/broker.h"
#include "mqd/log.h"

enum store_fsync { STORE_FSYNC_ALWAYS, STORE_FSYNC_EVERYSEC, STORE_FSYNC_NO };

/* store_fsync_parse: "always", "everysec" or "no". 0, or -1 if unknown. */
int store_fsync_parse(const char *name, enum store_fsync *out);

struct store_config {
    const char *dir;
    enum store_fsync fsync;
    const struct log *log;
};

/* store_restore_fn: one change read back; nonzero stops the start (the
 * broker is out of memory) */
typedef int (*store_restore_fn)(void *ctx, const struct broker_change *c);

struct store;

/* store_open: makes the directory if missing, locks it, reads the log back
 * through `restore`, and opens it for appending. NULL with a one-line
 * reason in `err` when it cannot. */
struct store *store_open(const struct store_config *config, store_restore_fn restore,
                         void *ctx, char *err, size_t err_len);

/* store_tell: keeps one change for the next commit (a broker_change_fn;
 * `store` is the context). Out of memory it is lost, and said so. */
void store_tell(void *store, const struct broker_change *c);

/* store_commit: writes what was told since the last commit, in one write,
 * and with STORE_FSYNC_ALWAYS syncs it. 0, or -1 when it could not (kept
 * for the next commit). */
int store_commit(struct store *s);

/* store_tick: once a second: with STORE_FSYNC_EVERYSEC, asks the helper
 * thread to sync what was written since its last sync. */
void store_tick(struct store *s);

/* store_free: commits and syncs what is left, and unlocks. NULL is a
 * no-op. */
void store_free(struct store *s);

#endif
