/*
 * outq: one client's output queue, references to bufs waiting to be written.
 *
 * Queuing never writes and never copies the bytes: it takes a reference. The
 * queue is written out by outq_flush as a gather list, many lines per call
 * of its transport (transport.h).
 * `bytes` counts what is queued and not yet written, for the output limit.
 */
#ifndef MQD_OUTQ_H
#define MQD_OUTQ_H

#include <stdbool.h>
#include <stddef.h>

#include "mqd/buf.h"
#include "mqd/transport.h"

struct outq {
    struct buf **items; /* a ring of `cap` slots */
    size_t cap;
    size_t head; /* slot of the oldest buf */
    size_t count;
    size_t offset;      /* bytes of the oldest buf already written */
    size_t bytes;       /* bytes queued and not yet written */
    size_t *slot_bytes; /* the owner's total of slot arrays, kept; NULL: none */
};

/* outq_init: an empty queue; its slot array's size is added to and taken
 * from *slot_bytes as it changes (NULL: not counted). */
void outq_init(struct outq *q, size_t *slot_bytes);

/* outq_clear: drops everything queued and frees the storage. */
void outq_clear(struct outq *q);

/* outq_push: queues a new reference to `b`. 0, or -1 when out of memory (then
 * nothing was queued and no reference taken). */
int outq_push(struct outq *q, struct buf *b);

enum outq_status {
    OUTQ_EMPTY, /* all written */
    OUTQ_FULL,  /* the socket takes no more now: wait for it to be writable */
    OUTQ_ERROR, /* the socket failed; errno says why */
};

/* outq_flush: writes as much as the transport takes without blocking, and
 * stops once it has written `budget` bytes, so one fast reader cannot hog
 * the loop: lines are not split for the budget, so the last write may pass
 * it by less than one line. Stopping at the budget also reports OUTQ_FULL.
 * Each write starts at the queue's front, as transport.h asks. */
enum outq_status outq_flush(struct outq *q, struct transport *t, size_t budget);

/* outq_each_unwritten: calls fn for each queued buf none of whose bytes
 * were written yet, oldest first. */
void outq_each_unwritten(const struct outq *q, void (*fn)(void *ctx, struct buf *b), void *ctx);

static inline bool outq_empty(const struct outq *q) { return q->count == 0; }

/* outq_growth: the most the queue's slot arrays would hold beyond what they
 * hold now while it takes `lines` more lines (0 when it has room). */
size_t outq_growth(const struct outq *q, size_t lines);

/* OUTQ_FIRST_BYTES: what a queue's first slot array takes */
#define OUTQ_FIRST_BYTES (8 * sizeof(struct buf *))

#endif
