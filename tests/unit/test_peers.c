#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
#include "mqd/peers.h"

static const uint8_t seed[SIPHASH_KEY_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
static const unsigned char a[5] = {4, 127, 0, 0, 1}, b[5] = {4, 127, 0, 0, 2};

static void each_address_has_its_own_count_up_to_max(void **state)
{
    (void)state;
    struct peers *p = peers_new(seed);
    assert_non_null(p);
    assert_int_equal(peers_add(p, a, 5, 2), 1);
    assert_int_equal(peers_add(p, a, 5, 2), 2);
    assert_int_equal(peers_add(p, a, 5, 2), 0); /* refused: the count stays */
    assert_int_equal(peers_count(p, a, 5), 2);
    assert_int_equal(peers_add(p, b, 5, 2), 1);
    peers_remove(p, a, 5);
    assert_int_equal(peers_add(p, a, 5, 2), 2);
    assert_int_equal(peers_add(p, a, 5, 0), 3); /* max 0: no limit */
    peers_free(p);
}

static void an_address_with_no_connection_left_takes_no_memory(void **state)
{
    (void)state;
    struct peers *p = peers_new(seed);
    size_t before = mqd_allocated();
    unsigned char key[5] = {4, 10, 0, 0, 0};
    for (int i = 0; i < 1000; i++) {
        key[4] = (unsigned char)i;
        key[3] = (unsigned char)(i >> 8);
        assert_int_equal(peers_add(p, key, 5, 0), 1);
    }
    for (int i = 0; i < 1000; i++) {
        key[4] = (unsigned char)i;
        key[3] = (unsigned char)(i >> 8);
        peers_remove(p, key, 5);
        assert_int_equal(peers_count(p, key, 5), 0);
    }
    assert_true(mqd_allocated() <= before + 64 * 24); /* the table back near its smallest */
    peers_remove(p, a, 5); /* never added: nothing happens */
    peers_free(p);
}

static void out_of_memory_counts_nothing(void **state)
{
    (void)state;
    struct peers *p = peers_new(seed);
    fail_alloc_after(0);
    assert_int_equal(peers_add(p, a, 5, 0), -1);
    fail_alloc_reset();
    assert_int_equal(peers_count(p, a, 5), 0);
    assert_int_equal(peers_add(p, a, 5, 0), 1);
    peers_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_address_has_its_own_count_up_to_max),
        cmocka_unit_test(an_address_with_no_connection_left_takes_no_memory),
        cmocka_unit_test(out_of_memory_counts_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
