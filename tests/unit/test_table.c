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
    assert_true(table_longest_probe(t) < 64);
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
    assert_int_equal(table_insert(t, &items[N]), 0);
    for (size_t i = 0; i <= N; i++)
        assert_ptr_equal(table_find(t, items[i].key, items[i].len), &items[i]);
    table_free(t);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(siphash_depends_on_the_seed_and_every_byte),
        cmocka_unit_test(finds_what_was_inserted_and_not_what_was_not),
        cmocka_unit_test(hundred_thousand_topics_in_and_out),
        cmocka_unit_test(a_million_topics_keep_probe_runs_short),
        cmocka_unit_test(removing_a_missing_key_changes_nothing),
        cmocka_unit_test(iterates_every_value_once),
        cmocka_unit_test(growth_fails_cleanly_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
