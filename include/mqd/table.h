/*
 * table: a hash table of values that carry their own keys.
 *
 * Open addressing with linear probing and backward-shift deletion; lookups are
 * O(1) expected. Keys are hashed with SipHash under a seed given at creation
 * (random per process), so probe sequences cannot be steered from outside.
 * The table never owns the values: it stores pointers and asks `key_of` for a
 * value's key bytes, which must stay unchanged while the value is in the table.
 *
 * Resizing never stops the caller for the table's size: growing to twice,
 * or shrinking to half once under 1/8 full, allocates the new slot array
 * and then moves the values a few clusters at a time, TABLE_MOVE_STEP slots
 * or more of the old array with each insert and remove. Meanwhile values
 * are in either array: lookups try the new one, then the old; inserts go to
 * the new one. A cluster (a run of full slots) is moved whole, so every
 * value left in the old array is still found from its home slot. Only when
 * a table must grow again before a move is done does the rest of the move
 * happen at once, which at 3/4 load is after far more inserts than the move
 * needs.
 */
#ifndef MQD_TABLE_H
#define MQD_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "mqd/siphash.h"

typedef const void *(*table_key_fn)(const void *value, size_t *len);

struct table_slot {
    uint64_t hash;
    void *value; /* NULL: empty slot */
};

struct table {
    struct table_slot *slots;
    size_t mask; /* slot count - 1; the slot count is a power of two */
    size_t count; /* values in both arrays */
    struct table_slot *old; /* being moved out of; NULL: no move under way */
    size_t old_mask;
    size_t old_at;   /* the next old slot to visit: the move began at an empty one */
    size_t old_left; /* old slots not yet visited */
    table_key_fn key_of;
    uint8_t seed[SIPHASH_KEY_LEN];
};

/* the old slots a move visits with each insert and remove, at least */
#define TABLE_MOVE_STEP 64

/* table_new: an empty table, or NULL when out of memory. */
struct table *table_new(table_key_fn key_of, const uint8_t seed[SIPHASH_KEY_LEN]);

/* table_free: frees the table, not the values. NULL is a no-op. */
void table_free(struct table *t);

/* table_find: the value whose key is these bytes, or NULL. */
void *table_find(const struct table *t, const void *key, size_t len);

/* table_reserve: makes the next `extra` inserts unable to fail. 0, or -1 when
 * out of memory (the table is unchanged). */
int table_reserve(struct table *t, size_t extra);

/* table_reserve_cost: the bytes table_reserve(t, extra) would allocate now
 * (0: none), for a memory budget to make room first. */
size_t table_reserve_cost(const struct table *t, size_t extra);

/* table_insert_cost: table_reserve_cost(t, 1), inline for hot paths: one
 * insert grows the table by one doubling or not at all. */
static inline size_t table_insert_cost(const struct table *t)
{
    size_t nslots = t->mask + 1;
    return t->count + 1 > nslots / 4 * 3 ? 2 * nslots * sizeof(struct table_slot) : 0;
}

/* table_insert: adds a value whose key is not in the table yet. 0, or -1 when
 * out of memory (the table is unchanged). */
int table_insert(struct table *t, void *value);

/* table_remove: takes out and returns the value with this key, or NULL.
 * A table left under 1/8 full starts shrinking by half when memory allows. */
void *table_remove(struct table *t, const void *key, size_t len);

/* table_next: iterates the values (in both arrays during a move): start
 * with *cursor = 0; NULL at the end. The table must not change during the
 * iteration. */
void *table_next(const struct table *t, size_t *cursor);

/* table_longest_probe: the longest run of slots a lookup walks (for tests and
 * metrics on how well the hash spreads keys). */
size_t table_longest_probe(const struct table *t);

#endif
