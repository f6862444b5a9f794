#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mqd/crc32c.h"

static void known_values(void **state)
{
    (void)state;
    /* the check value of the CRC catalogue, and RFC 3720's vectors */
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c("", 0), 0);
    unsigned char zeros[32] = {0}, ones[32], rising[32];
    memset(ones, 0xFF, sizeof(ones));
    for (int i = 0; i < 32; i++)
        rising[i] = (unsigned char)i;
    assert_int_equal(crc32c(zeros, 32), 0x8A9136AAu);
    assert_int_equal(crc32c(ones, 32), 0x62A8AB43u);
    assert_int_equal(crc32c(rising, 32), 0x46DD794Eu);
    assert_int_equal(crc32c_portable("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_portable(rising, 32), 0x46DD794Eu);
}

static void the_fast_path_agrees_at_every_length_and_alignment(void **state)
{
    (void)state;
    unsigned char bytes[1100];
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < sizeof(bytes); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes[i] = (unsigned char)x;
    }
    for (size_t start = 0; start < 9; start++)
        for (size_t len = 0; len + start <= 1024; len++)
            assert_int_equal(crc32c(bytes + start, len), crc32c_portable(bytes + start, len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_values),
        cmocka_unit_test(the_fast_path_agrees_at_every_length_and_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
