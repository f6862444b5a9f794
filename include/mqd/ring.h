/*
 * ring: one topic's message cache, a ring buffer of at most `max` entries,
 * and the age order that all topics' caches share.
 *
 * Pushing onto a full ring drops the oldest entry. Storage grows on demand up
 * to `max`, so a topic that caches one message does not pay for a hundred.
 * The ring holds one reference to each entry's line.
 *
 * Every ring belongs to a `ring_ages`: every cached line of every ring in the
 * order it was cached, linked through the lines themselves (buf.h), so the
 * oldest cached message of all topics is found in O(1) and memory pressure
 * can evict oldest first across topics. Within one ring the age order is
 * the ring's own order, so the oldest line overall is always the oldest of
 * its ring. The ages also keep the totals that operators watch.
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

struct ring_ages {
    struct buf *oldest, *newest;
    size_t messages; /* lines held by every ring sharing it */
    size_t bytes;
};

struct ring {
    struct ring_entry *items;
    size_t cap;  /* allocated entries */
    size_t max;  /* the cache size; 0 caches nothing */
    size_t head; /* position of the oldest entry */
    size_t len;
    struct ring_ages *ages;
};

/* ring_init: an empty ring that will hold at most `max` entries, in `ages`. */
void ring_init(struct ring *r, size_t max, struct ring_ages *ages);

/* ring_clear: drops every entry and frees the storage; the ring stays usable. */
void ring_clear(struct ring *r);

/* ring_reserve: makes the next ring_push unable to fail. Returns 0, or -1 when
 * out of memory (the ring is unchanged). */
int ring_reserve(struct ring *r);

/* ring_push: appends an entry, taking over the caller's reference to `line`
 * (which no other ring may hold); drops (and unrefs) the oldest entry when
 * full. Needs a successful ring_reserve first; with max 0 it just unrefs
 * `line`. */
void ring_push(struct ring *r, struct buf *line, uint64_t index, bool once);

/* ring_insert: puts a line in index order (a delivery "one" line handed
 * back, an entry restored), taking over the caller's reference, placed in
 * the age order between its ring neighbours. A full ring drops its oldest
 * entry first, unless `index` is older than every entry: then `line` is
 * dropped. Needs a successful ring_reserve first. False when `line` was
 * dropped (or max is 0). O(len). */
bool ring_insert(struct ring *r, struct buf *line, uint64_t index, bool once);

/* ring_remove_index: drops the entry with this index, if there is one,
 * keeping the rest in order. O(len). */
void ring_remove_index(struct ring *r, uint64_t index);

/* ring_at: the i-th entry, 0 being the oldest; i < r->len. */
struct ring_entry *ring_at(const struct ring *r, size_t i);

/* ring_drop_oldest: drops the oldest entry (the ring is not empty) and says
 * whether it was a delivery "one" message, now lost. */
bool ring_drop_oldest(struct ring *r);

/* ring_remove_once_between: removes the `once` entries whose index is above
 * `floor` (a negative floor: any) and at most `last` (those a replay handed
 * over), keeping the rest in order. */
void ring_remove_once_between(struct ring *r, int64_t floor, uint64_t last);

/* ring_ages_oldest: the ring holding the oldest line of all, or NULL when
 * every ring is empty. */
static inline struct ring *ring_ages_oldest(const struct ring_ages *ages)
{
    return ages->oldest ? ages->oldest->cached_in : NULL;
}

/* ring_index_above: whether `index` is above a (possibly negative) floor. */
static inline bool ring_index_above(uint64_t index, int64_t floor)
{
    return floor < 0 || index > (uint64_t)floor;
}

#endif
