#include "mqd/table.h"

#include "mqd/alloc.h"

#include <string.h>

#define TABLE_MIN_SLOTS 16

static uint64_t table_hash(const struct table *t, const void *key, size_t len)
{
    return siphash(key, len, t->seed);
}

static int slot_has_key(const struct table *t, const struct table_slot *slot, uint64_t hash,
                        const void *key, size_t len)
{
    if (slot->hash != hash)
        return 0;
    size_t slot_len;
    const void *slot_key = t->key_of(slot->value, &slot_len);
    return slot_len == len && memcmp(slot_key, key, len) == 0;
}

struct table *table_new(table_key_fn key_of, const uint8_t seed[SIPHASH_KEY_LEN])
{
    struct table *t = mqd_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->slots = mqd_calloc(TABLE_MIN_SLOTS, sizeof(*t->slots));
    if (!t->slots) {
        mqd_free(t);
        return NULL;
    }
    t->mask = TABLE_MIN_SLOTS - 1;
    t->key_of = key_of;
    memcpy(t->seed, seed, SIPHASH_KEY_LEN);
    return t;
}

void table_free(struct table *t)
{
    if (!t)
        return;
    mqd_free(t->slots);
    mqd_free(t);
}

void *table_find(const struct table *t, const void *key, size_t len)
{
    uint64_t hash = table_hash(t, key, len);
    for (size_t i = hash & t->mask; t->slots[i].value; i = (i + 1) & t->mask) {
        if (slot_has_key(t, &t->slots[i], hash, key, len))
            return t->slots[i].value;
    }
    return NULL;
}

static void place(struct table_slot *slots, size_t mask, uint64_t hash, void *value)
{
    size_t i = hash & mask;
    while (slots[i].value)
        i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].value = value;
}

static int table_resize(struct table *t, size_t nslots)
{
    struct table_slot *slots = mqd_calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        if (t->slots[i].value)
            place(slots, nslots - 1, t->slots[i].hash, t->slots[i].value);
    }
    mqd_free(t->slots);
    t->slots = slots;
    t->mask = nslots - 1;
    return 0;
}

/* slots_for: the slot count that holds `count` values at a load of at most
 * 3/4 (probe runs stay short with a good hash); 0 when too many */
static size_t slots_for(const struct table *t, size_t count)
{
    size_t nslots = t->mask + 1;
    while (count > nslots / 4 * 3) {
        if (nslots > SIZE_MAX / 2 / sizeof(struct table_slot))
            return 0;
        nslots *= 2;
    }
    return nslots;
}

int table_reserve(struct table *t, size_t extra)
{
    size_t nslots = slots_for(t, t->count + extra);
    if (!nslots)
        return -1;
    return nslots == t->mask + 1 ? 0 : table_resize(t, nslots);
}

size_t table_reserve_cost(const struct table *t, size_t extra)
{
    size_t nslots = slots_for(t, t->count + extra);
    if (!nslots)
        return SIZE_MAX;
    return nslots == t->mask + 1 ? 0 : nslots * sizeof(struct table_slot);
}

int table_insert(struct table *t, void *value)
{
    if (table_reserve(t, 1) < 0)
        return -1;
    size_t len;
    const void *key = t->key_of(value, &len);
    place(t->slots, t->mask, table_hash(t, key, len), value);
    t->count++;
    return 0;
}

/* in_run: whether slot `home` lies cyclically in (hole, pos], i.e. an entry at
 * `pos` whose home is there must not move back into the hole. */
static int in_run(size_t hole, size_t pos, size_t home)
{
    if (hole <= pos)
        return hole < home && home <= pos;
    return hole < home || home <= pos;
}

void *table_remove(struct table *t, const void *key, size_t len)
{
    uint64_t hash = table_hash(t, key, len);
    size_t i = hash & t->mask;
    while (t->slots[i].value && !slot_has_key(t, &t->slots[i], hash, key, len))
        i = (i + 1) & t->mask;
    void *value = t->slots[i].value;
    if (!value)
        return NULL;
    /* backward-shift deletion: no tombstones, so lookups never slow down */
    size_t hole = i;
    for (size_t j = (i + 1) & t->mask; t->slots[j].value; j = (j + 1) & t->mask) {
        if (in_run(hole, j, t->slots[j].hash & t->mask))
            continue;
        t->slots[hole] = t->slots[j];
        hole = j;
    }
    t->slots[hole].value = NULL;
    t->count--;
    /* a table that emptied gives memory back; keeping it is fine too */
    size_t nslots = t->mask + 1;
    if (nslots > TABLE_MIN_SLOTS && t->count < nslots / 8)
        (void)table_resize(t, nslots / 2);
    return value;
}

void *table_next(const struct table *t, size_t *cursor)
{
    while (*cursor <= t->mask) {
        void *value = t->slots[(*cursor)++].value;
        if (value)
            return value;
    }
    return NULL;
}

size_t table_longest_probe(const struct table *t)
{
    size_t longest = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        if (!t->slots[i].value)
            continue;
        size_t run = ((i - (t->slots[i].hash & t->mask)) & t->mask) + 1;
        if (run > longest)
            longest = run;
    }
    return longest;
}
