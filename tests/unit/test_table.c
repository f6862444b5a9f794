#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/table.h"

struct item {
    size_t len;
    char key[24];
};

static const void *item_key(const void *value, size_t *len)
{
    const struct item *it = value;
    *len = it->len;
    return it->key;
}

static const uint8_t seed_a[SIPHASH_KEY_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t seed_b[SIPHASH_KEY_LEN] = {16, 15, 14, 13, 12, 11, 10, 9,
                                                8,  7,  6,  5,  4,  3,  2,  1};

static struct item *items_new(size_t n)
{
    struct item *items = calloc(n, sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i].len = (size_t)snprintf(items[i].key, sizeof(items[i].key), "topic-%zu", i);
    return items;
}

/* sip_reference: SipHash-c-d written from the paper (Aumasson & Bernstein),
 * independently of src/siphash.c; with c = 2, d = 4 it must give the paper's
 * published vector, which anchors it for checking the module's c = 1, d = 3. */
static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void sip_rounds(uint64_t v[4], int n)
{
    for (int i = 0; i < n; i++) {
        v[0] += v[1];
        v[1] = rotl(v[1], 13) ^ v[0];
        v[0] = rotl(v[0], 32);
        v[2] += v[3];
        v[3] = rotl(v[3], 16) ^ v[2];
        v[0] += v[3];
        v[3] = rotl(v[3], 21) ^ v[0];
        v[2] += v[1];
        v[1] = rotl(v[1], 17) ^ v[2];
        v[2] = rotl(v[2], 32);
    }
}

static uint64_t le64(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static uint64_t sip_reference(int c, int d, const uint8_t *m, size_t len, const uint8_t key[16])
{
    uint64_t k0 = le64(key, 8), k1 = le64(key + 8, 8);
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    for (size_t i = 0; i <= len / 8; i++) {
        bool last = i == len / 8;
        uint64_t w = le64(m + 8 * i, last ? len % 8 : 8);
        if (last)
            w |= (uint64_t)len << 56;
        v[3] ^= w;
        sip_rounds(v, c);
        v[0] ^= w;
    }
    v[2] ^= 0xff;
    sip_rounds(v, d);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void siphash_13_agrees_with_a_reference_checked_on_the_papers_vector(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    /* SipHash-2-4, key 00..0f: the paper's appendix A (15 bytes) and the
     * first entry of the reference vectors.h (empty message) */
    assert_true(sip_reference(2, 4, msg, 15, key) == 0xa129ca6149be45e5ULL);
    assert_true(sip_reference(2, 4, msg, 0, key) == 0x726fdb47dd0e0e31ULL);
    for (size_t len = 0; len <= sizeof(msg); len++)
        assert_true(siphash(msg, len, key) == sip_reference(1, 3, msg, len, key));
}

static void siphash_depends_on_the_seed_and_every_byte(void **state)
{
    (void)state;
    assert_int_equal(siphash("news", 4, seed_a), siphash("news", 4, seed_a));
    assert_int_not_equal(siphash("news", 4, seed_a), siphash("news", 4, seed_b));
    assert_int_not_equal(siphash("news", 4, seed_a), siphash("newt", 4, seed_a));
    assert_int_not_equal(siphash("", 0, seed_a), siphash("\0", 1, seed_a));
    assert_int_not_equal(siphash("12345678", 8, seed_a), siphash("123456789", 9, seed_a));
}

static void finds_what_was_inserted_and_not_what_was_not(void **state)
{
    (void)state;
    struct table *t = table_new(item_key, seed_a);
    struct item a = {1, "a"}, b = {2, "bb"}, empty = {0, ""};
    assert_int_equal(table_insert(t, &a), 0);
    assert_int_equal(table_insert(t, &b), 0);
    assert_int_equal(table_insert(t, &empty), 0);
    assert_ptr_equal(table_find(t, "a", 1), &a);
    assert_ptr_equal(table_find(t, "bb", 2), &b);
    assert_ptr_equal(table_find(t, "", 0), &empty);
    assert_null(table_find(t, "b", 1));
    assert_null(table_find(t, "a\0", 2));
    assert_int_equal(t->count, 3);
    table_free(t);
}

static void hundred_thousand_topics_in_and_out(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_a);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(table_insert(t, &items[i]), 0);
    assert_int_equal(t->count, N);
    assert_true(table_longest_probe(t) < 128); /* the array being moved out of is 3/4 full */
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(table_find(t, items[i].key, items[i].len), &items[i]);
    for (size_t i = 0; i < N; i += 2) /* every other one: backward shifts */
        assert_ptr_equal(table_remove(t, items[i].key, items[i].len), &items[i]);
    for (size_t i = 0; i < N; i++) {
        void *found = table_find(t, items[i].key, items[i].len);
        assert_ptr_equal(found, i % 2 ? &items[i] : NULL);
    }
    for (size_t i = 1; i < N; i += 2)
        assert_ptr_equal(table_remove(t, items[i].key, items[i].len), &items[i]);
    assert_int_equal(t->count, 0);
    size_t cursor = 0;
    assert_null(table_next(t, &cursor));
    table_free(t);
    free(items);
}

static void a_million_topics_keep_probe_runs_short(void **state)
{
    (void)state;
    enum { N = 1000000 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_b);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(table_insert(t, &items[i]), 0);
    /* at a load of at most 3/4, linear probing with a good hash keeps the
     * longest run in the tens; a crafted or weak hash would give thousands */
    assert_true(table_longest_probe(t) < 128);
    assert_ptr_equal(table_find(t, items[N - 1].key, items[N - 1].len), &items[N - 1]);
    table_free(t);
    free(items);
}

static void removing_a_missing_key_changes_nothing(void **state)
{
    (void)state;
    struct table *t = table_new(item_key, seed_a);
    struct item a = {1, "a"};
    table_insert(t, &a);
    assert_null(table_remove(t, "z", 1));
    assert_int_equal(t->count, 1);
    table_free(t);
}

static void iterates_every_value_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_b);
    for (size_t i = 0; i < N; i++)
        table_insert(t, &items[i]);
    size_t cursor = 0, seen = 0;
    char *marks = calloc(N, 1);
    struct item *it;
    while ((it = table_next(t, &cursor))) {
        size_t i = (size_t)(it - items);
        assert_int_equal(marks[i], 0);
        marks[i] = 1;
        seen++;
    }
    assert_int_equal(seen, N);
    free(marks);
    table_free(t);
    free(items);
}

static void churn_keeps_every_live_key_findable(void **state)
{
    (void)state;
    enum { N = 100000, WINDOW = 5000 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_a);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(table_insert(t, &items[i]), 0);
        if (i >= WINDOW)
            assert_ptr_equal(table_remove(t, items[i - WINDOW].key, items[i - WINDOW].len),
                             &items[i - WINDOW]);
        if (i % 9973 == 0 && i >= WINDOW) {
            assert_null(table_find(t, items[i - WINDOW].key, items[i - WINDOW].len));
            for (size_t k = i - WINDOW + 1; k <= i; k++)
                assert_ptr_equal(table_find(t, items[k].key, items[k].len), &items[k]);
        }
    }
    assert_int_equal(t->count, WINDOW);
    assert_true(table_longest_probe(t) < 64);
    for (size_t i = N - WINDOW; i < N; i++)
        assert_ptr_equal(table_remove(t, items[i].key, items[i].len), &items[i]);
    assert_int_equal(t->count, 0);
    table_free(t);
    free(items);
}

/* next_random: xorshift64, a fixed sequence on every platform. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void a_small_table_matches_a_model_under_random_inserts_and_removes(void **state)
{
    (void)state;
    /* 12 keys stay in the 16 first slots, at up to 3/4 load: long runs that
     * wrap around the end, so every case of the backward shift comes up */
    enum { KEYS = 12, OPS = 50000 };
    struct item *items = items_new(KEYS);
    bool in[KEYS] = {false};
    struct table *t = table_new(item_key, seed_b);
    uint64_t rng = 12345;
    for (int op = 0; op < OPS; op++) {
        size_t k = next_random(&rng) % KEYS;
        if (in[k])
            assert_ptr_equal(table_remove(t, items[k].key, items[k].len), &items[k]);
        else
            assert_int_equal(table_insert(t, &items[k]), 0);
        in[k] = !in[k];
        size_t live = 0;
        for (size_t i = 0; i < KEYS; i++) {
            assert_ptr_equal(table_find(t, items[i].key, items[i].len), in[i] ? &items[i] : NULL);
            live += in[i];
        }
        assert_int_equal(t->count, live);
    }
    assert_int_equal(t->mask, 15);
    table_free(t);
    free(items);
}

static void reserve_makes_the_next_inserts_unable_to_fail(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_a);
    assert_int_equal(table_reserve(t, N), 0);
    fail_alloc_after(0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(table_insert(t, &items[i]), 0);
    assert_false(fail_alloc_tripped());
    assert_int_equal(fail_alloc_calls(), 0);
    fail_alloc_reset();
    table_free(t);
    free(items);
}

static void creation_fails_cleanly_out_of_memory(void **state)
{
    (void)state;
    for (size_t fail_at = 0; fail_at < 2; fail_at++) {
        fail_alloc_after(fail_at);
        assert_null(table_new(item_key, seed_a));
        assert_true(fail_alloc_tripped());
    }
    fail_alloc_reset();
}

static void growth_fails_cleanly_out_of_memory(void **state)
{
    (void)state;
    enum { N = 12 }; /* the 13th insert must grow 16 slots */
    struct item *items = items_new(N + 1);
    struct table *t = table_new(item_key, seed_a);
    for (size_t i = 0; i < N; i++)
        table_insert(t, &items[i]);
    fail_alloc_after(0);
    assert_int_equal(table_insert(t, &items[N]), -1);
    assert_true(fail_alloc_tripped());
    assert_int_equal(t->count, N);
    assert_null(table_find(t, items[N].key, items[N].len));
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(table_find(t, items[i].key, items[i].len), &items[i]);
    assert_int_equal(table_insert(t, &items[N]), 0);
    for (size_t i = 0; i <= N; i++)
        assert_ptr_equal(table_find(t, items[i].key, items[i].len), &items[i]);
    table_free(t);
    free(items);
}

static void a_growing_and_shrinking_table_matches_a_model_through_its_moves(void **state)
{
    (void)state;
    /* the number of keys swings between 0 and 3,000, so the table grows and
     * shrinks many times, with lookups, inserts and removes in the middle of
     * every move */
    enum { KEYS = 3000, OPS = 400000 };
    struct item *items = items_new(KEYS);
    bool in[KEYS] = {false};
    struct table *t = table_new(item_key, seed_b);
    uint64_t rng = 777;
    size_t live = 0, moves_seen = 0, old_seen = 0;
    for (int op = 0; op < OPS; op++) {
        bool filling = (op / 20000) % 2 == 0;
        size_t k = next_random(&rng) % KEYS;
        if (in[k] && (!filling || next_random(&rng) % 8 == 0)) {
            assert_ptr_equal(table_remove(t, items[k].key, items[k].len), &items[k]);
            in[k] = false;
            live--;
        } else if (!in[k] && (filling || next_random(&rng) % 8 == 0)) {
            assert_int_equal(table_insert(t, &items[k]), 0);
            in[k] = true;
            live++;
        }
        size_t probe = next_random(&rng) % KEYS;
        assert_ptr_equal(table_find(t, items[probe].key, items[probe].len),
                         in[probe] ? &items[probe] : NULL);
        assert_int_equal(t->count, live);
        if (t->old) {
            moves_seen++;
            size_t in_old = 0;
            for (size_t i = 0; i <= t->old_mask; i++)
                in_old += t->old[i].value != NULL;
            old_seen += in_old > 0;
        }
        if (op % 5000 == 0) {
            for (size_t i = 0; i < KEYS; i++)
                assert_ptr_equal(table_find(t, items[i].key, items[i].len),
                                 in[i] ? &items[i] : NULL);
            size_t cursor = 0, seen = 0;
            while (table_next(t, &cursor))
                seen++;
            assert_int_equal(seen, live);
        }
    }
    assert_true(moves_seen > 1000);
    assert_true(old_seen > 100); /* values really were in the old array meanwhile */
    table_free(t);
    free(items);
}

static void a_move_is_done_in_steps(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_a);
    for (size_t i = 0; i < N / 4 * 3; i++)
        assert_int_equal(table_insert(t, &items[i]), 0);
    assert_int_equal(t->mask + 1, N);
    assert_null(t->old);
    assert_int_equal(table_insert(t, &items[N / 4 * 3]), 0); /* grows */
    assert_int_equal(t->mask + 1, 2 * N);
    assert_non_null(t->old);
    assert_true(t->old_left >= N - 2 * TABLE_MOVE_STEP); /* only a step was taken */
    size_t inserts = 1;
    for (size_t i = N / 4 * 3 + 1; t->old; i++, inserts++)
        assert_int_equal(table_insert(t, &items[i]), 0);
    assert_true(inserts >= N / (2 * TABLE_MOVE_STEP)); /* clusters make steps longer */
    assert_true(inserts <= N / TABLE_MOVE_STEP + 1);
    for (size_t i = 0; i < N / 4 * 3 + inserts; i++)
        assert_ptr_equal(table_find(t, items[i].key, items[i].len), &items[i]);
    table_free(t);
    free(items);
}

static void growing_again_in_the_middle_of_a_move_finishes_it_first(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct item *items = items_new(N);
    struct table *t = table_new(item_key, seed_a);
    size_t i = 0;
    while (!t->old)
        assert_int_equal(table_insert(t, &items[i++]), 0);
    assert_int_equal(table_reserve(t, 8 * i), 0); /* a bigger array, now */
    assert_non_null(t->old);
    for (size_t k = 0; k < i; k++)
        assert_ptr_equal(table_find(t, items[k].key, items[k].len), &items[k]);
    size_t cursor = 0, seen = 0;
    while (table_next(t, &cursor))
        seen++;
    assert_int_equal(seen, i);
    table_free(t); /* ASan: no array was lost */
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(siphash_13_agrees_with_a_reference_checked_on_the_papers_vector),
        cmocka_unit_test(siphash_depends_on_the_seed_and_every_byte),
        cmocka_unit_test(finds_what_was_inserted_and_not_what_was_not),
        cmocka_unit_test(hundred_thousand_topics_in_and_out),
        cmocka_unit_test(a_million_topics_keep_probe_runs_short),
        cmocka_unit_test(removing_a_missing_key_changes_nothing),
        cmocka_unit_test(iterates_every_value_once),
        cmocka_unit_test(churn_keeps_every_live_key_findable),
        cmocka_unit_test(a_small_table_matches_a_model_under_random_inserts_and_removes),
        cmocka_unit_test(reserve_makes_the_next_inserts_unable_to_fail),
        cmocka_unit_test(creation_fails_cleanly_out_of_memory),
        cmocka_unit_test(growth_fails_cleanly_out_of_memory),
        cmocka_unit_test(a_growing_and_shrinking_table_matches_a_model_through_its_moves),
        cmocka_unit_test(a_move_is_done_in_steps),
        cmocka_unit_test(growing_again_in_the_middle_of_a_move_finishes_it_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
