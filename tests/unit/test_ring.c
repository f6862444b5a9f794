#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fail_alloc.h"
#include "mqd/ring.h"

static struct buf *line(void)
{
    char *data;
    struct buf *b = buf_new(1, &data);
    data[0] = 'x';
    return b;
}

static void push(struct ring *r, uint64_t index, bool once)
{
    assert_int_equal(ring_reserve(r), 0);
    ring_push(r, line(), index, once);
}

static void assert_indexes(const struct ring *r, const uint64_t *want, size_t n)
{
    assert_int_equal(r->len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ring_at(r, i)->index, want[i]);
}

static void keeps_the_newest_max_entries(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 3, &ages);
    for (uint64_t i = 0; i < 10; i++)
        push(&r, i, false);
    assert_indexes(&r, (uint64_t[]){7, 8, 9}, 3);
    assert_int_equal(r.cap, 3);
    ring_clear(&r);
    assert_int_equal(r.len, 0);
}

/* assert_age_order: the age order, oldest first, holds exactly the ring's
 * lines in the ring's order */
static void assert_age_order(const struct ring *r)
{
    const struct buf *line = r->ages->oldest;
    for (size_t i = 0; i < r->len; i++, line = line->newer)
        assert_ptr_equal(line, ring_at(r, i)->line);
    assert_null(line);
    assert_int_equal(r->ages->messages, r->len);
}

static void a_returned_line_goes_back_in_index_order(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 4, &ages);
    push(&r, 1, false);
    push(&r, 5, false);
    assert_int_equal(ring_reserve(&r), 0);
    assert_true(ring_insert(&r, line(), 3, true)); /* between */
    assert_int_equal(ring_reserve(&r), 0);
    assert_true(ring_insert(&r, line(), 0, true)); /* first */
    assert_indexes(&r, (uint64_t[]){0, 1, 3, 5}, 4);
    assert_true(ring_at(&r, 0)->once && ring_at(&r, 2)->once && !ring_at(&r, 1)->once);
    assert_age_order(&r);
    assert_true(ring_insert(&r, line(), 4, true)); /* full: the oldest goes */
    assert_indexes(&r, (uint64_t[]){1, 3, 4, 5}, 4);
    assert_age_order(&r);
    assert_false(ring_insert(&r, line(), 0, true)); /* older than a full cache: dropped */
    assert_indexes(&r, (uint64_t[]){1, 3, 4, 5}, 4);
    assert_true(ring_insert(&r, line(), 6, true)); /* newest */
    assert_indexes(&r, (uint64_t[]){3, 4, 5, 6}, 4);
    assert_age_order(&r);
    ring_remove_index(&r, 4);
    ring_remove_index(&r, 9); /* none: nothing changes */
    assert_indexes(&r, (uint64_t[]){3, 5, 6}, 3);
    assert_age_order(&r);
    assert_int_equal(ages.messages, 3);
    ring_clear(&r);
    assert_int_equal(ages.messages, 0);
}

static void grows_on_demand_up_to_max(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 100, &ages);
    push(&r, 0, false);
    assert_true(r.cap < 100);
    for (uint64_t i = 1; i < 150; i++)
        push(&r, i, false);
    assert_int_equal(r.cap, 100);
    assert_int_equal(ring_at(&r, 0)->index, 50);
    assert_int_equal(ring_at(&r, 99)->index, 149);
    ring_clear(&r);
}

static void zero_max_caches_nothing(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 0, &ages);
    push(&r, 0, false);
    assert_int_equal(r.len, 0);
    ring_clear(&r);
}

static void removes_handed_over_once_entries_only(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 4, &ages);
    for (uint64_t i = 0; i < 6; i++) /* wraps: holds 2..5 */
        push(&r, i, i % 2 == 1);
    ring_remove_once_between(&r, 3, 5); /* 5 is once and above 3 */
    assert_indexes(&r, (uint64_t[]){2, 3, 4}, 3);
    push(&r, 7, true);
    ring_remove_once_between(&r, -1, 4); /* 3 goes too, 7 is above the last */
    assert_indexes(&r, (uint64_t[]){2, 4, 7}, 3);
    ring_remove_once_between(&r, 6, 7);
    assert_indexes(&r, (uint64_t[]){2, 4}, 2);
    push(&r, 6, false);
    assert_indexes(&r, (uint64_t[]){2, 4, 6}, 3);
    ring_clear(&r);
}

static struct buf *line_of(size_t len)
{
    char *data;
    struct buf *b = buf_new(len, &data);
    memset(data, 'x', len);
    return b;
}

static void the_ages_count_what_every_ring_holds(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r, other;
    ring_init(&r, 3, &ages);
    ring_init(&other, 3, &ages);
    for (uint64_t i = 0; i < 3; i++) { /* 1 + 2 + 3 bytes */
        assert_int_equal(ring_reserve(&r), 0);
        ring_push(&r, line_of(i + 1), i, i == 1);
    }
    assert_int_equal(ring_reserve(&other), 0);
    ring_push(&other, line_of(100), 0, false);
    assert_int_equal(ages.messages, 4);
    assert_int_equal(ages.bytes, 106);
    assert_int_equal(ring_reserve(&r), 0);
    ring_push(&r, line_of(10), 3, false); /* drops the 1-byte oldest */
    assert_int_equal(ages.bytes, 115);
    ring_remove_once_between(&r, -1, 3); /* the 2-byte once entry */
    assert_int_equal(ages.messages, 3);
    assert_int_equal(ages.bytes, 113);
    ring_clear(&r);
    assert_int_equal(ages.messages, 1);
    assert_int_equal(ages.bytes, 100);
    ring_clear(&other);
    assert_int_equal(ages.messages, 0);
    assert_int_equal(ages.bytes, 0);
    assert_null(ages.oldest);
    assert_null(ages.newest);
}

/* push_to: caches a one-byte line with this index in r */
static void push_to(struct ring *r, uint64_t index)
{
    assert_int_equal(ring_reserve(r), 0);
    ring_push(r, line(), index, false);
}

static void the_oldest_line_of_all_rings_comes_first(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring a, b;
    ring_init(&a, 2, &ages);
    ring_init(&b, 10, &ages);
    assert_null(ring_ages_oldest(&ages));
    push_to(&b, 0);
    push_to(&a, 0);
    push_to(&b, 1);
    push_to(&a, 1);
    push_to(&a, 2); /* a drops its 0: b's 0 is now the oldest of all */
    /* cached in the order b0 a0 b1 a1 a2, and a0 is gone */
    const struct ring *order[] = {&b, &b, &a, &a};
    const uint64_t indexes[] = {0, 1, 1, 2};
    for (size_t i = 0; i < 4; i++) {
        struct ring *oldest = ring_ages_oldest(&ages);
        assert_ptr_equal(oldest, order[i]);
        assert_int_equal(ring_at(oldest, 0)->index, indexes[i]);
        assert_false(ring_drop_oldest(oldest));
    }
    assert_null(ring_ages_oldest(&ages));
    assert_int_equal(a.len + b.len, 0);
    assert_int_equal(ages.messages, 0);
    ring_clear(&a);
    ring_clear(&b);
}

static void dropping_the_oldest_says_whether_it_was_once(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 4, &ages);
    push(&r, 0, true);
    push(&r, 1, false);
    assert_true(ring_drop_oldest(&r));
    assert_false(ring_drop_oldest(&r));
    assert_int_equal(r.len, 0);
    push(&r, 2, true); /* usable again, and in the age order again */
    assert_ptr_equal(ring_ages_oldest(&ages), &r);
    ring_clear(&r);
}

/* removing from the middle keeps the age order of the others intact */
static void removing_once_entries_keeps_the_age_order(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring a, b;
    ring_init(&a, 10, &ages);
    ring_init(&b, 10, &ages);
    push_to(&a, 0);
    assert_int_equal(ring_reserve(&b), 0);
    ring_push(&b, line(), 0, true);
    push_to(&a, 1);
    ring_remove_once_between(&b, -1, 0);
    assert_int_equal(ages.messages, 2);
    assert_ptr_equal(ring_ages_oldest(&ages), &a);
    assert_false(ring_drop_oldest(&a));
    assert_ptr_equal(ring_ages_oldest(&ages), &a);
    assert_int_equal(ring_at(&a, 0)->index, 1);
    ring_clear(&a);
    ring_clear(&b);
}

static void index_above_a_floor(void **state)
{
    (void)state;
    assert_true(ring_index_above(0, -1));
    assert_true(ring_index_above(0, INT64_MIN));
    assert_false(ring_index_above(5, 5));
    assert_true(ring_index_above(6, 5));
    assert_false(ring_index_above(UINT64_C(1) << 62, INT64_MAX));
}

static void a_full_ring_pushes_without_allocating(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 5, &ages);
    for (uint64_t i = 0; i < 5; i++)
        push(&r, i, false);
    struct buf *extra = line();
    fail_alloc_after(0);
    assert_int_equal(ring_reserve(&r), 0);
    ring_push(&r, extra, 5, false);
    assert_int_equal(fail_alloc_calls(), 0);
    fail_alloc_reset();
    assert_indexes(&r, (uint64_t[]){1, 2, 3, 4, 5}, 5);
    ring_clear(&r);
    assert_int_equal(r.max, 5);
    assert_null(r.items);
}

static void reserve_fails_cleanly_out_of_memory(void **state)
{
    (void)state;
    struct ring_ages ages = {0};
    struct ring r;
    ring_init(&r, 10, &ages);
    for (uint64_t i = 0; i < 4; i++)
        push(&r, i, false);
    fail_alloc_after(0);
    assert_int_equal(ring_reserve(&r), -1);
    assert_indexes(&r, (uint64_t[]){0, 1, 2, 3}, 4);
    fail_alloc_reset();
    push(&r, 4, false);
    assert_indexes(&r, (uint64_t[]){0, 1, 2, 3, 4}, 5);
    ring_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_the_newest_max_entries),
        cmocka_unit_test(grows_on_demand_up_to_max),
        cmocka_unit_test(a_returned_line_goes_back_in_index_order),
        cmocka_unit_test(zero_max_caches_nothing),
        cmocka_unit_test(removes_handed_over_once_entries_only),
        cmocka_unit_test(the_ages_count_what_every_ring_holds),
        cmocka_unit_test(the_oldest_line_of_all_rings_comes_first),
        cmocka_unit_test(dropping_the_oldest_says_whether_it_was_once),
        cmocka_unit_test(removing_once_entries_keeps_the_age_order),
        cmocka_unit_test(index_above_a_floor),
        cmocka_unit_test(a_full_ring_pushes_without_allocating),
        cmocka_unit_test(reserve_fails_cleanly_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
