#include "mqd/retired.h"

#include "mqd/alloc.h"

#include <string.h>

#define MIN_SLOTS 64

struct slot {
    uint64_t hash; /* 0: empty (a hash of 0 is stored as 1) */
    uint64_t next_index;
};

struct retired {
    struct slot *slots; /* NULL until the first reservation */
    size_t mask;        /* slot count - 1, a power of two */
    size_t count;       /* entries kept */
    size_t reserved;    /* room promised to topics alive */
    size_t max_entries;
    uint64_t folded;
    uint8_t key[SIPHASH_KEY_LEN];
    uint64_t floors[RETIRED_BUCKETS];
};

struct retired *retired_new(size_t max_entries, const uint8_t key[SIPHASH_KEY_LEN])
{
    struct retired *r = mqd_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->max_entries = max_entries;
    memcpy(r->key, key, SIPHASH_KEY_LEN);
    return r;
}

void retired_free(struct retired *r)
{
    if (!r)
        return;
    mqd_free(r->slots);
    mqd_free(r);
}

static uint64_t name_hash(const struct retired *r, const char *name, size_t len)
{
    uint64_t h = siphash(name, len, r->key);
    return h ? h : 1;
}

/* floor_of: the bucket of the floors a hash falls into; the low bits pick
 * the slot, so the high ones pick the bucket */
static uint64_t *floor_of(struct retired *r, uint64_t hash) { return &r->floors[hash >> 52]; }

/* find: the slot holding `hash`, or the empty slot where it would go. */
static struct slot *find(const struct retired *r, uint64_t hash)
{
    size_t i = hash & r->mask;
    while (r->slots[i].hash && r->slots[i].hash != hash)
        i = (i + 1) & r->mask;
    return &r->slots[i];
}

/* resize: moves every entry into `nslots` slots; -1 when out of memory */
static int resize(struct retired *r, size_t nslots)
{
    struct slot *old = r->slots;
    size_t old_n = old ? r->mask + 1 : 0;
    struct slot *slots = mqd_calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    r->slots = slots;
    r->mask = nslots - 1;
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].hash)
            *find(r, old[i].hash) = old[i];
    }
    mqd_free(old);
    return 0;
}

/* slots_needed: the slot count that holds every entry kept or reserved at a
 * load of at most 3/4 (probe runs stay short with a keyed hash), or 0 when
 * the present one does */
static size_t slots_needed(const struct retired *r)
{
    size_t promised = r->count + r->reserved + 1;
    if (!r->slots)
        return MIN_SLOTS;
    return promised > (r->mask + 1) / 4 * 3 ? (r->mask + 1) * 2 : 0;
}

enum retired_reservation retired_reserve(struct retired *r)
{
    if (r->count + r->reserved >= r->max_entries)
        return RETIRED_FULL;
    size_t nslots = slots_needed(r);
    if (nslots && resize(r, nslots) < 0)
        return RETIRED_NO_MEMORY;
    r->reserved++;
    return RETIRED_RESERVED;
}

size_t retired_reserve_cost(const struct retired *r)
{
    if (r->count + r->reserved >= r->max_entries)
        return 0;
    return slots_needed(r) * sizeof(struct slot);
}

void retired_unreserve(struct retired *r) { r->reserved--; }

void retired_put(struct retired *r, const char *name, size_t len, uint64_t next_index,
                 bool reserved)
{
    uint64_t hash = name_hash(r, name, len);
    if (!reserved) {
        uint64_t *floor = floor_of(r, hash);
        if (*floor < next_index)
            *floor = next_index;
        r->folded++;
        return;
    }
    r->reserved--;
    struct slot *s = find(r, hash);
    if (s->hash) { /* the same hash: keep the higher index, in one slot */
        if (s->next_index < next_index)
            s->next_index = next_index;
        return;
    }
    *s = (struct slot){hash, next_index};
    r->count++;
}

/* remove_slot: backward-shift deletion, so lookups never need tombstones */
static void remove_slot(struct retired *r, struct slot *s)
{
    size_t hole = (size_t)(s - r->slots);
    for (size_t i = (hole + 1) & r->mask; r->slots[i].hash; i = (i + 1) & r->mask) {
        size_t home = r->slots[i].hash & r->mask;
        /* it may move back unless its home lies cyclically in (hole, i] */
        if (((i - home) & r->mask) >= ((i - hole) & r->mask)) {
            r->slots[hole] = r->slots[i];
            hole = i;
        }
    }
    r->slots[hole].hash = 0;
    r->count--;
}

uint64_t retired_take(struct retired *r, const char *name, size_t len, bool *reserved)
{
    uint64_t hash = name_hash(r, name, len);
    uint64_t floor = *floor_of(r, hash);
    *reserved = false;
    if (!r->slots || r->count == 0)
        return floor;
    struct slot *s = find(r, hash);
    if (!s->hash)
        return floor;
    uint64_t next_index = s->next_index > floor ? s->next_index : floor;
    remove_slot(r, s);
    r->reserved++;
    *reserved = true;
    return next_index;
}

const uint8_t *retired_key(const struct retired *r) { return r->key; }

void retired_each(const struct retired *r, retired_entry_fn entry, retired_floor_fn floor,
                  void *ctx)
{
    for (size_t i = 0; r->slots && i <= r->mask; i++) {
        if (r->slots[i].hash)
            entry(ctx, r->slots[i].hash, r->slots[i].next_index);
    }
    for (size_t b = 0; b < RETIRED_BUCKETS; b++) {
        if (r->floors[b])
            floor(ctx, b, r->floors[b]);
    }
}

int retired_set_key(struct retired *r, const uint8_t key[SIPHASH_KEY_LEN])
{
    if (r->count || r->reserved || r->folded)
        return -1;
    for (size_t b = 0; b < RETIRED_BUCKETS; b++) {
        if (r->floors[b])
            return -1;
    }
    memcpy(r->key, key, SIPHASH_KEY_LEN);
    return 0;
}

int retired_restore(struct retired *r, uint64_t hash, uint64_t next_index)
{
    hash = hash ? hash : 1;
    if (r->slots && r->count) {
        struct slot *s = find(r, hash);
        if (s->hash) {
            if (s->next_index < next_index)
                s->next_index = next_index;
            return 0;
        }
    }
    enum retired_reservation room = retired_reserve(r);
    if (room == RETIRED_NO_MEMORY)
        return -1;
    if (room == RETIRED_FULL) {
        uint64_t *floor = floor_of(r, hash);
        if (*floor < next_index)
            *floor = next_index;
        r->folded++;
        return 0;
    }
    r->reserved--;
    *find(r, hash) = (struct slot){hash, next_index};
    r->count++;
    return 0;
}

int retired_raise_floor(struct retired *r, size_t bucket, uint64_t floor)
{
    if (bucket >= RETIRED_BUCKETS)
        return -1;
    if (r->floors[bucket] < floor)
        r->floors[bucket] = floor;
    return 0;
}

size_t retired_count(const struct retired *r) { return r->count; }

uint64_t retired_folded(const struct retired *r) { return r->folded; }
