#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
#include "mqd/retired.h"

static const uint8_t key[SIPHASH_KEY_LEN] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};

static struct retired *store(size_t max_entries)
{
    struct retired *r = retired_new(max_entries, key);
    assert_non_null(r);
    return r;
}

/* put: a topic retired after reserving its room */
static void put(struct retired *r, const char *name, uint64_t next_index)
{
    assert_int_equal(retired_reserve(r), RETIRED_RESERVED);
    retired_put(r, name, strlen(name), next_index, true);
}

static uint64_t take(struct retired *r, const char *name, bool *reserved)
{
    return retired_take(r, name, strlen(name), reserved);
}

static void a_kept_index_comes_back_once(void **state)
{
    (void)state;
    struct retired *r = store(100);
    put(r, "a", 7);
    put(r, "b", 3);
    assert_int_equal(retired_count(r), 2);
    bool reserved;
    assert_int_equal(take(r, "a", &reserved), 7);
    assert_true(reserved); /* the topic owns that room again */
    assert_int_equal(retired_count(r), 1);
    assert_int_equal(take(r, "a", &reserved), 0); /* forgotten: a fresh topic */
    assert_false(reserved);
    assert_int_equal(take(r, "b", &reserved), 3);
    assert_int_equal(take(r, "never", &reserved), 0);
    assert_false(reserved);
    retired_free(r);
}

static void thousands_survive_growth_and_removal(void **state)
{
    (void)state;
    struct retired *r = store(100000);
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "topic %d", i);
        put(r, name, (uint64_t)i + 1);
    }
    assert_int_equal(retired_count(r), 20000);
    bool reserved;
    for (int i = 0; i < 20000; i += 2) { /* holes all over the probe runs */
        snprintf(name, sizeof(name), "topic %d", i);
        assert_int_equal(take(r, name, &reserved), (uint64_t)i + 1);
        retired_put(r, name, strlen(name), (uint64_t)i + 2, reserved);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "topic %d", i);
        assert_int_equal(take(r, name, &reserved), (uint64_t)i + 1 + (i % 2 == 0));
    }
    assert_int_equal(retired_count(r), 0);
    assert_int_equal(retired_folded(r), 0);
    retired_free(r);
}

/* past max_entries, kept and reserved together, an index is folded: a topic
 * of its bucket starts at or above it, never below, and never at an index
 * one used before */
static void a_full_store_folds_and_never_lowers_an_index(void **state)
{
    (void)state;
    struct retired *r = store(2);
    put(r, "a", 5);
    assert_int_equal(retired_reserve(r), RETIRED_RESERVED);
    assert_int_equal(retired_reserve(r), RETIRED_FULL);
    retired_put(r, "b", 1, 9, true);     /* in the room reserved */
    retired_put(r, "c", 1, 1000, false); /* no room: folded */
    assert_int_equal(retired_count(r), 2);
    assert_int_equal(retired_folded(r), 1);
    bool reserved;
    assert_int_equal(take(r, "c", &reserved), 1000);
    assert_false(reserved);
    /* every name of c's bucket now starts there; find one */
    char name[32];
    int raised = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        uint64_t start = take(r, name, &reserved);
        assert_true(start == 0 || start == 1000);
        raised += start == 1000;
    }
    assert_in_range(raised, 1, 100); /* about 100000 / 4096 */
    assert_int_equal(take(r, "a", &reserved), 5);
    assert_int_equal(retired_reserve(r), RETIRED_FULL); /* a holds its room again */
    retired_unreserve(r);
    assert_int_equal(retired_reserve(r), RETIRED_RESERVED);
    retired_free(r);
}

static void retiring_never_allocates(void **state)
{
    (void)state;
    struct retired *r = store(1000);
    for (int i = 0; i < 500; i++)
        assert_int_equal(retired_reserve(r), RETIRED_RESERVED);
    fail_alloc_after(0);
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        retired_put(r, name, strlen(name), 1, true);
    }
    assert_false(fail_alloc_tripped());
    fail_alloc_reset();
    assert_int_equal(retired_count(r), 500);
    retired_free(r);
}

static void a_reservation_that_cannot_grow_fails_cleanly(void **state)
{
    (void)state;
    struct retired *r = store(1000);
    size_t reserved = 0;
    while (retired_reserve_cost(r) == 0 || reserved == 0) {
        assert_int_equal(retired_reserve(r), RETIRED_RESERVED);
        reserved++;
    }
    size_t cost = retired_reserve_cost(r), before = mqd_allocated();
    fail_alloc_after(0);
    assert_int_equal(retired_reserve(r), RETIRED_NO_MEMORY);
    fail_alloc_reset();
    assert_int_equal(mqd_allocated(), before);
    assert_int_equal(retired_reserve(r), RETIRED_RESERVED);
    assert_true(mqd_allocated() - before <= cost); /* the cost it said */
    retired_free(r);
}

struct dump {
    uint64_t hashes[64], indexes[64];
    size_t n;
    size_t buckets[8];
    uint64_t floors[8];
    size_t nfloors;
};

static void dump_entry(void *ctx, uint64_t hash, uint64_t next_index)
{
    struct dump *d = ctx;
    assert_true(d->n < 64);
    d->hashes[d->n] = hash;
    d->indexes[d->n++] = next_index;
}

static void dump_floor(void *ctx, size_t bucket, uint64_t floor)
{
    struct dump *d = ctx;
    assert_true(d->nfloors < 8);
    d->buckets[d->nfloors] = bucket;
    d->floors[d->nfloors++] = floor;
}

/* a store written out with retired_each and read back with a key, the
 * entries and the floors answers as the first did, under another key too */
static void a_store_written_out_reads_back_the_same(void **state)
{
    (void)state;
    struct retired *a = store(3);
    char name[16];
    for (int i = 0; i < 5; i++) { /* three kept, two folded */
        snprintf(name, sizeof(name), "topic%d", i);
        bool reserved = retired_reserve(a) == RETIRED_RESERVED;
        retired_put(a, name, strlen(name), (uint64_t)(10 + i), reserved);
    }
    struct dump d = {0};
    retired_each(a, dump_entry, dump_floor, &d);
    assert_int_equal(d.n, 3);
    assert_true(d.nfloors >= 1 && d.nfloors <= 2);
    static const uint8_t other[SIPHASH_KEY_LEN] = {9};
    struct retired *b = retired_new(100, other);
    assert_non_null(b);
    assert_int_equal(retired_set_key(b, retired_key(a)), 0);
    for (size_t i = 0; i < d.n; i++)
        assert_int_equal(retired_restore(b, d.hashes[i], d.indexes[i]), 0);
    for (size_t i = 0; i < d.nfloors; i++)
        assert_int_equal(retired_raise_floor(b, d.buckets[i], d.floors[i]), 0);
    assert_int_equal(retired_raise_floor(b, RETIRED_BUCKETS, 1), -1);
    assert_int_equal(retired_set_key(b, other), -1); /* too late: entries kept */
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "topic%d", i);
        bool ra, rb;
        assert_true(retired_take(a, name, strlen(name), &ra) ==
                    retired_take(b, name, strlen(name), &rb));
    }
    retired_free(a);
    retired_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_kept_index_comes_back_once),
        cmocka_unit_test(a_store_written_out_reads_back_the_same),
        cmocka_unit_test(thousands_survive_growth_and_removal),
        cmocka_unit_test(a_full_store_folds_and_never_lowers_an_index),
        cmocka_unit_test(retiring_never_allocates),
        cmocka_unit_test(a_reservation_that_cannot_grow_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
