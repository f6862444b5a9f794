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
    mqd_free(t->old);
    mqd_free(t->slots);
    mqd_free(t);
}

/* probe: the slot holding this key in `slots`, or NULL */
static struct table_slot *probe(const struct table *t, struct table_slot *slots, size_t mask,
                                uint64_t hash, const void *key, size_t len)
{
    for (size_t i = hash & mask; slots[i].value; i = (i + 1) & mask) {
        if (slot_has_key(t, &slots[i], hash, key, len))
            return &slots[i];
    }
    return NULL;
}

void *table_find(const struct table *t, const void *key, size_t len)
{
    uint64_t hash = table_hash(t, key, len);
    struct table_slot *slot = probe(t, t->slots, t->mask, hash, key, len);
    if (!slot && t->old)
        slot = probe(t, t->old, t->old_mask, hash, key, len);
    return slot ? slot->value : NULL;
}

static void place(struct table_slot *slots, size_t mask, uint64_t hash, void *value)
{
    size_t i = hash & mask;
    while (slots[i].value)
        i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].value = value;
}

/* move_step: moves the old array's clusters into the new one until at
 * least `slots` old slots were visited, each cluster whole; frees the old
 * array once every slot was. */
static void move_step(struct table *t, size_t slots)
{
    if (!t->old)
        return;
    while (t->old_left > 0) {
        struct table_slot *slot = &t->old[t->old_at];
        if (slot->value) {
            place(t->slots, t->mask, slot->hash, slot->value);
            slot->value = NULL;
        } else if (slots == 0) {
            return; /* between clusters: a place to stop */
        }
        t->old_at = (t->old_at + 1) & t->old_mask;
        t->old_left--;
        slots -= slots > 0;
    }
    mqd_free(t->old);
    t->old = NULL;
}

/* start_move: a new array of `nslots` slots to move into, in steps */
static int start_move(struct table *t, size_t nslots)
{
    move_step(t, SIZE_MAX); /* the rest at once: growing again so soon is rare */
    struct table_slot *slots = mqd_calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    t->old = t->slots;
    t->old_mask = t->mask;
    t->old_left = t->mask + 1;
    t->old_at = 0; /* anywhere: a step only ever stops at an empty slot */
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
    return nslots == t->mask + 1 ? 0 : start_move(t, nslots);
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
    move_step(t, TABLE_MOVE_STEP);
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

/* remove_at: takes the value out of slot i of `slots`, shifting the rest of
 * its cluster back: no tombstones, so lookups never slow down, and nothing
 * leaves the cluster (a move in progress relies on that) */
static void *remove_at(struct table_slot *slots, size_t mask, size_t i)
{
    void *value = slots[i].value;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; slots[j].value; j = (j + 1) & mask) {
        if (in_run(hole, j, slots[j].hash & mask))
            continue;
        slots[hole] = slots[j];
        hole = j;
    }
    slots[hole].value = NULL;
    return value;
}

void *table_remove(struct table *t, const void *key, size_t len)
{
    uint64_t hash = table_hash(t, key, len);
    struct table_slot *slot = probe(t, t->slots, t->mask, hash, key, len);
    void *value;
    if (slot)
        value = remove_at(t->slots, t->mask, (size_t)(slot - t->slots));
    else if (t->old && (slot = probe(t, t->old, t->old_mask, hash, key, len)))
        value = remove_at(t->old, t->old_mask, (size_t)(slot - t->old));
    else
        return NULL;
    t->count--;
    move_step(t, TABLE_MOVE_STEP);
    /* a table that emptied gives memory back; keeping it is fine too */
    size_t nslots = t->mask + 1;
    if (!t->old && nslots > TABLE_MIN_SLOTS && t->count < nslots / 8)
        (void)start_move(t, nslots / 2);
    return value;
}

void *table_next(const struct table *t, size_t *cursor)
{
    size_t old_n = t->old ? t->old_mask + 1 : 0;
    while (*cursor < old_n) {
        void *value = t->old[(*cursor)++].value;
        if (value)
            return value;
    }
    while (*cursor - old_n <= t->mask) {
        void *value = t->slots[(*cursor)++ - old_n].value;
        if (value)
            return value;
    }
    return NULL;
}

static size_t longest_probe(const struct table_slot *slots, size_t mask)
{
    size_t longest = 0;
    for (size_t i = 0; i <= mask; i++) {
        if (!slots[i].value)
            continue;
        size_t run = ((i - (slots[i].hash & mask)) & mask) + 1;
        if (run > longest)
            longest = run;
    }
    return longest;
}

size_t table_longest_probe(const struct table *t)
{
    size_t longest = longest_probe(t->slots, t->mask);
    if (t->old) {
        size_t old = longest_probe(t->old, t->old_mask);
        longest = old > longest ? old : longest;
    }
    return longest;
}
