#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mqd/utf8.h"

static bool valid(const char *s) { return utf8_valid(s, strlen(s)); }

static void accepts_every_length_of_sequence(void **state)
{
    (void)state;
    assert_true(valid(""));
    assert_true(valid("plain ascii"));
    assert_true(valid("\xc2\x80"));         /* U+0080 */
    assert_true(valid("\xdf\xbf"));         /* U+07FF */
    assert_true(valid("\xe0\xa0\x80"));     /* U+0800 */
    assert_true(valid("\xed\x9f\xbf"));     /* U+D7FF */
    assert_true(valid("\xee\x80\x80"));     /* U+E000 */
    assert_true(valid("\xef\xbb\xbf"));     /* BOM */
    assert_true(valid("\xf0\x90\x80\x80")); /* U+10000 */
    assert_true(valid("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    assert_true(utf8_valid("a\0b", 3));
}

static void refuses_overlong_forms(void **state)
{
    (void)state;
    assert_false(valid("\xc0\xaf"));
    assert_false(valid("\xc1\xbf"));
    assert_false(valid("\xe0\x80\xaf"));
    assert_false(valid("\xe0\x9f\xbf"));
    assert_false(valid("\xf0\x80\x80\xaf"));
    assert_false(valid("\xf0\x8f\xbf\xbf"));
}

static void refuses_surrogates_and_beyond_u10ffff(void **state)
{
    (void)state;
    assert_false(valid("\xed\xa0\x80"));
    assert_false(valid("\xed\xbf\xbf"));
    assert_false(valid("\xf4\x90\x80\x80"));
    assert_false(valid("\xf5\x80\x80\x80"));
    assert_false(valid("\xff"));
    assert_false(valid("\xfe"));
}

static void refuses_truncated_and_stray_bytes(void **state)
{
    (void)state;
    assert_false(valid("\xc3"));
    assert_false(valid("\xe2\x82"));
    assert_false(valid("\xf0\x9f\x98"));
    assert_false(valid("\x80"));
    assert_false(valid("a\xbf"));
    assert_false(valid("\xe2\x28\xa1"));
    assert_false(valid("\xc3\x28"));
}

static void the_word_at_a_time_path_sees_every_byte(void **state)
{
    (void)state;
    /* a bad byte at every position of lines around the 8-byte boundaries */
    for (size_t len = 1; len <= 33; len++) {
        for (size_t bad = 0; bad < len; bad++) {
            char s[40];
            memset(s, 'a', len);
            s[bad] = (char)0xff;
            assert_false(utf8_valid(s, len));
            s[bad] = 'a';
            assert_true(utf8_valid(s, len));
        }
    }
    assert_true(valid("12345678\xc3\xa9"));
    assert_false(valid("1234567\xc3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_every_length_of_sequence),
        cmocka_unit_test(refuses_overlong_forms),
        cmocka_unit_test(refuses_surrogates_and_beyond_u10ffff),
        cmocka_unit_test(refuses_truncated_and_stray_bytes),
        cmocka_unit_test(the_word_at_a_time_path_sees_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
