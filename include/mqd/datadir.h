/*
 * datadir: the files of a data directory and how its state is read from
 * them, shared by the running store (store.h) and `mqd --check-data`
 * (check.h). No writing here but the removal of files a compaction made
 * useless.
 *
 * `log.N` holds the changes made while N was the generation; `snapshot.N`
 * the whole state as it was when log.N began; `*.tmp` is a compaction's
 * snapshot not finished. The state is the newest snapshot.G then log.G,
 * log.G+1, ... in order, or without a snapshot log.1, log.2, ..., with no
 * generation missing (the plan). Files below G are a finished
 * compaction's leftovers.
 *
 * Records and broker changes map one to one (record.h, broker.h): a
 * change is kept as datadir_record(change), and each record read back is
 * handed to a datadir_restore_fn as the change it keeps.
 */
#ifndef MQD_DATADIR_H
#define MQD_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/broker.h"
#include "mqd/record.h"

#define DATADIR_NAME_LEN 40

/* datadir_name: "KIND.GEN" then `suffix` ("" or ".tmp") into `out`, which
 * has DATADIR_NAME_LEN bytes. */
void datadir_name(char *out, const char *kind, uint64_t gen, const char *suffix);

/* datadir_record: the record that keeps a change; it points into it. */
struct record datadir_record(const struct broker_change *c);

/* datadir_change: the change a record keeps, pointing into it; a MESSAGE's
 * line is left NULL for the caller to make (a change holds a buf). */
struct broker_change datadir_change(const struct record *r);

struct datadir_plan {
    uint64_t snapshot;            /* 0: none */
    uint64_t first_log, last_log; /* 0: no log yet */
};

/* datadir_plan: the files the state is in. With `tidy`, unfinished
 * snapshots (*.tmp) are removed on the way. 0, or -1 with a one-line
 * reason in `err` (a generation missing, or the directory unreadable). */
int datadir_plan(int dir_fd, const char *dir, bool tidy, struct datadir_plan *out, char *err,
                 size_t err_len);

/* datadir_remove_older: removes the logs and snapshots below `gen`. */
void datadir_remove_older(int dir_fd, uint64_t gen);

/* datadir_restore_fn: one change read back; nonzero stops the reading (the
 * broker is out of memory, or the change is out of order) */
typedef int (*datadir_restore_fn)(void *ctx, const struct broker_change *c);

struct datadir_file {
    char name[DATADIR_NAME_LEN];
    size_t size;
    struct record_scan scan;
    bool refused; /* the restore function said stop, or a line found no memory */
};

/* datadir_read: scans one file, handing each good record to `restore`
 * (NULL: only scans). 0, or -1 with errno when the file cannot be read. */
int datadir_read(int dir_fd, const char *name, datadir_restore_fn restore, void *ctx,
                 struct datadir_file *out);

/* datadir_problem: why a file read this way cannot be loaded (NULL when it
 * can): a torn tail is only allowed in the last log, which is cut there. */
const char *datadir_problem(const struct datadir_file *f, bool last_log);

#endif
