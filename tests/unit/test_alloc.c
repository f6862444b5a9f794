#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"

static void every_byte_is_counted_and_given_back(void **state)
{
    (void)state;
    size_t base = mqd_allocated();
    char *a = mqd_malloc(1000);
    assert_true(mqd_allocated() >= base + 1000);
    char *b = mqd_calloc(10, 100);
    size_t both = mqd_allocated();
    assert_true(both >= base + 2000);
    a = mqd_realloc(a, 100000);
    assert_non_null(a);
    assert_true(mqd_allocated() >= both + 99000);
    a = mqd_realloc(a, 10);
    assert_true(mqd_allocated() < both);
    mqd_free(a);
    mqd_free(b);
    mqd_free(NULL);
    assert_int_equal(mqd_allocated(), base);
}

static void the_ceiling_refuses_what_would_pass_it(void **state)
{
    (void)state;
    size_t base = mqd_allocated();
    mqd_set_ceiling(base + 10000);
    void *p = mqd_malloc(5000);
    assert_non_null(p);
    assert_null(mqd_malloc(6000));
    assert_null(mqd_calloc(6, 1000));
    assert_null(mqd_realloc(p, 20000)); /* p is left as it was */
    p = mqd_realloc(p, 100);            /* shrinking is always allowed */
    assert_non_null(p);
    void *q = mqd_malloc(8000); /* room again */
    assert_non_null(q);
    mqd_set_ceiling(0);
    void *big = mqd_malloc(1 << 20);
    assert_non_null(big);
    mqd_free(big);
    mqd_free(q);
    mqd_free(p);
    assert_int_equal(mqd_allocated(), base);
}

static void a_failed_allocation_counts_nothing(void **state)
{
    (void)state;
    size_t base = mqd_allocated();
    fail_alloc_after(0);
    assert_null(mqd_malloc(100));
    fail_alloc_after(0);
    void *p = mqd_malloc(10);
    assert_null(p);
    assert_int_equal(mqd_allocated(), base);
    p = mqd_malloc(10);
    fail_alloc_after(0);
    assert_null(mqd_realloc(p, 1000));
    fail_alloc_reset();
    size_t held = mqd_allocated();
    mqd_free(p);
    assert_true(mqd_allocated() < held);
    assert_int_equal(mqd_allocated(), base);
    assert_null(mqd_calloc(SIZE_MAX / 2, 4)); /* overflow: refused, not wrapped */
}

/* helper: allocates 100 blocks of 1000 bytes past the ceiling, counted as
 * its own, and frees them */
static void *helper(void *arg)
{
    size_t *held = arg;
    void *blocks[100];
    alloc_thread_is_helper();
    for (int i = 0; i < 100; i++)
        blocks[i] = mqd_malloc(1000);
    held[0] = alloc_helper_allocated();
    held[1] = mqd_allocated();
    for (int i = 0; i < 100; i++)
        mqd_free(blocks[i]);
    return NULL;
}

static void a_helper_thread_counts_apart_with_no_ceiling(void **state)
{
    (void)state;
    size_t before = mqd_allocated();
    mqd_set_ceiling(before + 10000);
    size_t held[2];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, helper, held), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(held[0] >= 100 * 1000); /* its own count, past the ceiling */
    assert_int_equal(held[1], before);  /* the server's did not move */
    assert_int_equal(alloc_helper_allocated(), 0);
    assert_null(mqd_malloc(20000)); /* the server's thread still has its ceiling */
    mqd_set_ceiling(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_byte_is_counted_and_given_back),
        cmocka_unit_test(the_ceiling_refuses_what_would_pass_it),
        cmocka_unit_test(a_failed_allocation_counts_nothing),
        cmocka_unit_test(a_helper_thread_counts_apart_with_no_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
