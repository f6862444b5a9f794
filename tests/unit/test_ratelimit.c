#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mqd/alloc.h"
#include "mqd/ratelimit.h"

static const uint8_t seed[SIPHASH_KEY_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                              9, 10, 11, 12, 13, 14, 15, 16};
static const unsigned char a[5] = {4, 10, 0, 0, 1}, b[5] = {4, 10, 0, 0, 2};

static void an_address_spends_its_burst_then_waits_for_the_refill(void **state)
{
    (void)state;
    struct ratelimit *r = ratelimit_new(seed, 3, 1000);
    assert_non_null(r);
    int64_t t = 5000;
    for (int i = 0; i < 3; i++) {
        assert_true(ratelimit_allows(r, a, 5, t));
        ratelimit_charge(r, a, 5, t);
    }
    assert_false(ratelimit_allows(r, a, 5, t));
    assert_false(ratelimit_allows(r, a, 5, t + 999));
    assert_true(ratelimit_allows(r, b, 5, t)); /* others are not affected */
    assert_true(ratelimit_allows(r, a, 5, t + 1000));
    ratelimit_charge(r, a, 5, t + 1000);
    assert_false(ratelimit_allows(r, a, 5, t + 1000)); /* one back, one spent */
    assert_true(ratelimit_allows(r, a, 5, t + 2000));
    /* a long quiet fills the bucket whole again, and no more */
    t += 100000;
    for (int i = 0; i < 3; i++) {
        assert_true(ratelimit_allows(r, a, 5, t));
        ratelimit_charge(r, a, 5, t);
    }
    assert_false(ratelimit_allows(r, a, 5, t));
    ratelimit_free(r);
}

static void failures_past_the_limit_do_not_lengthen_it(void **state)
{
    (void)state;
    struct ratelimit *r = ratelimit_new(seed, 2, 1000);
    for (int i = 0; i < 50; i++)
        ratelimit_charge(r, a, 5, 0);
    assert_false(ratelimit_allows(r, a, 5, 999));
    assert_true(ratelimit_allows(r, a, 5, 1000));
    ratelimit_free(r);
}

static void a_flood_of_addresses_only_makes_it_forget(void **state)
{
    (void)state;
    struct ratelimit *r = ratelimit_new(seed, 1, 1000000);
    size_t before = mqd_allocated();
    unsigned char key[5] = {4, 0, 0, 0, 0};
    int64_t now = 1;
    for (unsigned i = 0; i < 4 * RATELIMIT_SLOTS; i++) {
        key[2] = (unsigned char)(i >> 16);
        key[3] = (unsigned char)(i >> 8);
        key[4] = (unsigned char)i;
        ratelimit_charge(r, key, 5, now);
    }
    assert_int_equal(mqd_allocated(), before); /* a fixed table */
    /* the last address charged is remembered; a stranger is never refused */
    assert_false(ratelimit_allows(r, key, 5, now));
    assert_true(ratelimit_allows(r, a, 5, now));
    ratelimit_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_address_spends_its_burst_then_waits_for_the_refill),
        cmocka_unit_test(failures_past_the_limit_do_not_lengthen_it),
        cmocka_unit_test(a_flood_of_addresses_only_makes_it_forget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
