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
    struct ring r;
    ring_init(&r, 3);
    for (uint64_t i = 0; i < 10; i++)
        push(&r, i, false);
    assert_indexes(&r, (uint64_t[]){7, 8, 9}, 3);
    assert_int_equal(r.cap, 3);
    ring_clear(&r);
    assert_int_equal(r.len, 0);
}

static void grows_on_demand_up_to_max(void **state)
{
    (void)state;
    struct ring r;
    ring_init(&r, 100);
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
    struct ring r;
    ring_init(&r, 0);
    push(&r, 0, false);
    assert_int_equal(r.len, 0);
    ring_clear(&r);
}

static void removes_handed_over_once_entries_only(void **state)
{
    (void)state;
    struct ring r;
    ring_init(&r, 4);
    for (uint64_t i = 0; i < 6; i++) /* wraps: holds 2..5 */
        push(&r, i, i % 2 == 1);
    ring_remove_once_after(&r, 3); /* 5 is once and above 3 */
    assert_indexes(&r, (uint64_t[]){2, 3, 4}, 3);
    ring_remove_once_after(&r, -1); /* 3 goes too */
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

static void counts_the_bytes_it_holds(void **state)
{
    (void)state;
    struct ring r;
    ring_init(&r, 3);
    for (uint64_t i = 0; i < 3; i++) { /* 1 + 2 + 3 bytes */
        assert_int_equal(ring_reserve(&r), 0);
        ring_push(&r, line_of(i + 1), i, i == 1);
    }
    assert_int_equal(r.bytes, 6);
    assert_int_equal(ring_reserve(&r), 0);
    ring_push(&r, line_of(10), 3, false); /* drops the 1-byte oldest */
    assert_int_equal(r.bytes, 15);
    ring_remove_once_after(&r, -1); /* the 2-byte once entry */
    assert_int_equal(r.bytes, 13);
    ring_clear(&r);
    assert_int_equal(r.bytes, 0);
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
    struct ring r;
    ring_init(&r, 5);
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
    struct ring r;
    ring_init(&r, 10);
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
        cmocka_unit_test(zero_max_caches_nothing),
        cmocka_unit_test(removes_handed_over_once_entries_only),
        cmocka_unit_test(counts_the_bytes_it_holds),
        cmocka_unit_test(index_above_a_floor),
        cmocka_unit_test(a_full_ring_pushes_without_allocating),
        cmocka_unit_test(reserve_fails_cleanly_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
