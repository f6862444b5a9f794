/*
 * retired: the next index of each topic that was freed while its index was
 * in use, kept in 16 bytes whatever the topic's name.
 *
 * A topic with no subscribers and nothing cached costs the broker nothing to
 * forget, except its counter: a message sent to it later must not reuse an
 * index that already meant something. So the broker frees the topic and
 * keeps here a 64-bit keyed hash of its name (SipHash under a per-process
 * random key, so names cannot be chosen to collide) with its next index.
 *
 * Room is reserved while the topic is alive, when its index is first used
 * (retired_reserve), so that retiring it never allocates and never fails:
 * what a topic gives back when it goes must not depend on memory then.
 *
 * The store is bounded: at most `max_entries` topics, kept or reserved. A
 * topic that finds no room is folded when it retires into a fixed table of
 * floors: the highest next index of the folded topics whose names fall into
 * each of its 4096 buckets. A new topic starts at its bucket's floor, which
 * is 0 until a topic of that bucket was folded. So no index is ever reused:
 * at worst a new topic starts above 0. Two names with the same 64-bit hash
 * (a chance of about n^2 / 2^65 among n topics kept, 3 in 10^8 for a
 * million) share one slot holding the higher index, and the first to come
 * back takes it: the other then starts at its bucket's floor and could
 * reuse an index. That chance is the price of not keeping names.
 *
 * Costs: every call is O(1) expected; the store holds at most 43 bytes per
 * topic kept or reserved (16-byte slots, 3/8 to 3/4 of them used) plus
 * 32 KiB of floors.
 */
#ifndef MQD_RETIRED_H
#define MQD_RETIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/siphash.h"

struct retired;

/* retired_new: an empty store, or NULL when out of memory. */
struct retired *retired_new(size_t max_entries, const uint8_t key[SIPHASH_KEY_LEN]);

void retired_free(struct retired *r);

enum retired_reservation {
    RETIRED_RESERVED = 0, /* retired_put(..., true) will find room */
    RETIRED_NO_MEMORY = -1,
    RETIRED_FULL = 1, /* max_entries reached: the index will be folded */
};

/* retired_reserve: room for one more topic, taken now. */
enum retired_reservation retired_reserve(struct retired *r);

/* retired_reserve_cost: the bytes retired_reserve may allocate now. */
size_t retired_reserve_cost(const struct retired *r);

/* retired_unreserve: gives back a reservation no topic will use. */
void retired_unreserve(struct retired *r);

/* retired_put: remembers the next index of a topic being freed, in the room
 * it reserved, or folded into the floors when it has none. Never fails and
 * never allocates. */
void retired_put(struct retired *r, const char *name, size_t len, uint64_t next_index,
                 bool reserved);

/* retired_take: the index a topic so named starts at: the one kept for it,
 * which the store then forgets, handing its room over to the topic as a
 * reservation (*reserved true); else its bucket's floor (*reserved false). */
uint64_t retired_take(struct retired *r, const char *name, size_t len, bool *reserved);

/* the store's whole state, for a snapshot (the data directory's
 * compaction) and to be handed back when it is read: the key, each topic
 * kept as its hash and next index, and each floor above 0 */
typedef void (*retired_entry_fn)(void *ctx, uint64_t hash, uint64_t next_index);
typedef void (*retired_floor_fn)(void *ctx, size_t bucket, uint64_t floor);

/* retired_key: the key names are hashed with (SIPHASH_KEY_LEN bytes). */
const uint8_t *retired_key(const struct retired *r);

/* retired_each: every entry kept, then every floor above 0. O(slots + 4096). */
void retired_each(const struct retired *r, retired_entry_fn entry, retired_floor_fn floor,
                  void *ctx);

/* retired_set_key: names are hashed with `key` from now on; only while
 * nothing is kept, reserved or folded (a snapshot's state is read back
 * before anything else). 0, or -1 when too late. */
int retired_set_key(struct retired *r, const uint8_t key[SIPHASH_KEY_LEN]);

/* retired_restore: keeps an entry read back, the higher index when its
 * hash is kept already; folded into its floor when the store is full. 0,
 * or -1 when out of memory. */
int retired_restore(struct retired *r, uint64_t hash, uint64_t next_index);

/* retired_raise_floor: bucket's floor is at least `floor`; a bucket past
 * RETIRED_BUCKETS is ignored (-1). */
int retired_raise_floor(struct retired *r, size_t bucket, uint64_t floor);

#define RETIRED_BUCKETS 4096

/* retired_count: topics kept exactly; retired_folded: topics folded so far. */
size_t retired_count(const struct retired *r);
uint64_t retired_folded(const struct retired *r);

#endif
