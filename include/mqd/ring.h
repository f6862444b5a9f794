/*
 * ring: one topic's message cache, a ring buffer of at most `max` entries.
 *
 * Pushing onto a full ring drops the oldest entry. Storage grows on demand up
 * to `max`, so a topic that caches one message does not pay for a hundred.
 * The ring holds one reference to each entry's line.
 */
#ifndef MQD_RING_H
#define MQD_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/buf.h"

struct ring_entry {
    struct buf *line; /* the delivered line, index included */
    uint64_t index;
    bool once; /* delivery "one": leaves the cache when handed over */
};

struct ring {
    struct ring_entry *items;
    size_t cap;  /* allocated entries */
    size_t max;  /* the cache size; 0 caches nothing */
    size_t head; /* position of the oldest entry */
    size_t len;
    size_t bytes; /* bytes of the lines held */
};

/* ring_init: an empty ring that will hold at most `max` entries. */
void ring_init(struct ring *r, size_t max);

/* ring_clear: drops every entry and frees the storage; the ring stays usable. */
void ring_clear(struct ring *r);

/* ring_reserve: makes the next ring_push unable to fail. Returns 0, or -1 when
 * out of memory (the ring is unchanged). */
int ring_reserve(struct ring *r);

/* ring_push: appends an entry, taking over the caller's reference to `line`;
 * drops (and unrefs) the oldest entry when full. Needs a successful
 * ring_reserve first; with max 0 it just unrefs `line`. */
void ring_push(struct ring *r, struct buf *line, uint64_t index, bool once);

/* ring_at: the i-th entry, 0 being the oldest; i < r->len. */
struct ring_entry *ring_at(const struct ring *r, size_t i);

/* ring_remove_once_after: removes the `once` entries whose index is above
 * `index_floor` (those a replay just handed over), keeping the rest in order.
 * A negative floor means every once entry. */
void ring_remove_once_after(struct ring *r, int64_t index_floor);

/* ring_index_above: whether `index` is above a (possibly negative) floor. */
static inline bool ring_index_above(uint64_t index, int64_t floor)
{
    return floor < 0 || index > (uint64_t)floor;
}

#endif
