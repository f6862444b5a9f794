#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mqd/utf8.h"

static bool valid(const char *s) { return utf8_valid(s, strlen(s)); }

static void assert_all(const char *const *cases, size_t n, bool want)
{
    for (size_t i = 0; i < n; i++) {
        if (valid(cases[i]) != want)
            fail_msg("case %zu wrongly %s", i, want ? "refused" : "accepted");
    }
}

#define ASSERT_ALL(cases, want) assert_all((cases), sizeof(cases) / sizeof((cases)[0]), (want))

static void accepts_every_length_of_sequence_at_its_bounds(void **state)
{
    (void)state;
    static const char *const good[] = {
        "",
        "plain ascii",
        "\x7f",             /* U+007F, the last one-byte form */
        "\xc2\x80",         /* U+0080 */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800 */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above them */
        "\xef\xbb\xbf",     /* U+FEFF, a BOM is a character like another */
        "\xef\xbf\xbe",     /* U+FFFE, a noncharacter is still valid */
        "\xef\xbf\xbf",     /* U+FFFF */
        "\xf0\x90\x80\x80", /* U+10000 */
        "\xf3\xbf\xbf\xbf", /* U+FFFFF */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last code point */
        "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z",
    };
    ASSERT_ALL(good, true);
    assert_true(utf8_valid("a\0b", 3)); /* U+0000 is valid UTF-8 */
}

static void refuses_overlong_forms(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc0\x80",                 /* NUL in two bytes */
        "\xc0\xaf",                 /* '/' in two bytes */
        "\xc1\xbf",                 /* U+007F in two bytes */
        "\xe0\x80\x80",             /* NUL in three bytes */
        "\xe0\x80\xaf",             /* '/' in three bytes */
        "\xe0\x9f\xbf",             /* U+07FF in three bytes */
        "\xf0\x80\x80\x80",         /* NUL in four bytes */
        "\xf0\x80\x80\xaf",         /* '/' in four bytes */
        "\xf0\x8f\xbf\xbf",         /* U+FFFF in four bytes */
        "\xf8\x88\x80\x80\x80",     /* the old five-byte form */
        "\xfc\x84\x80\x80\x80\x80", /* the old six-byte form */
    };
    ASSERT_ALL(bad, false);
}

static void refuses_surrogates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xed\xa0\x80",             /* U+D800 */
        "\xed\xad\xbf",             /* U+DB7F */
        "\xed\xb0\x80",             /* U+DC00 */
        "\xed\xbf\xbf",             /* U+DFFF */
        "\xed\xa0\xbd\xed\xb8\x80", /* a pair as CESU-8 writes it */
    };
    ASSERT_ALL(bad, false);
}

static void refuses_code_points_beyond_u10ffff(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf4\xbf\xbf\xbf", /* U+13FFFF */
        "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", "\xfe", "\xff",
    };
    ASSERT_ALL(bad, false);
}

static void refuses_truncated_sequences(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc3",         "\xe2\x82",      "\xe2",
        "\xf0\x9f\x98", "\xf0\x9f",      "\xf0",
        "\xc3z",                                             /* cut short by an ASCII byte */
        "\xe2\x82z",    "\xf0\x9f\x98z", "\xe2\x82\xc3\xa9", /* cut short by a valid sequence */
    };
    ASSERT_ALL(bad, false);
}

static void refuses_stray_and_out_of_range_continuation_bytes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x80",
        "\xbf",
        "a\xbf",
        "\xc3\xa9\x80", /* one continuation too many */
        "\xc2\x7f",     /* below the continuation range */
        "\xc2\xc0",     /* above it */
        "\xe2\x28\xa1",
        "\xe2\x82\x28",
        "\xf0\x9f\x98\x28",
        "\xf0\x28\x98\x80",
    };
    ASSERT_ALL(bad, false);
}

/* boundary_lengths: lines around the multiples of 8, where the ASCII fast
 * path (eight bytes at a time) hands over to the byte-wise one. */
static const size_t boundary_lengths[] = {7, 8, 9, 15, 16, 17, 24, 25};

static void the_word_at_a_time_path_sees_a_bad_byte_anywhere(void **state)
{
    (void)state;
    static const unsigned char stray[] = {0x80, 0xc3, 0xff};
    for (size_t l = 0; l < sizeof(boundary_lengths) / sizeof(boundary_lengths[0]); l++) {
        size_t len = boundary_lengths[l];
        for (size_t bad = 0; bad < len; bad++) {
            char s[32];
            memset(s, 'a', len);
            assert_true(utf8_valid(s, len));
            for (size_t b = 0; b < sizeof(stray); b++) {
                s[bad] = (char)stray[b];
                if (utf8_valid(s, len))
                    fail_msg("0x%02x at %zu of %zu accepted", stray[b], bad, len);
            }
        }
    }
}

static void sequences_straddling_the_word_boundaries(void **state)
{
    (void)state;
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t l = 0; l < sizeof(boundary_lengths) / sizeof(boundary_lengths[0]); l++) {
        size_t len = boundary_lengths[l];
        for (size_t c = 0; c < 3; c++) {
            size_t n = strlen(chars[c]);
            for (size_t at = 0; at + n <= len; at++) {
                char s[32];
                memset(s, 'a', len);
                memcpy(s + at, chars[c], n);
                if (!utf8_valid(s, len))
                    fail_msg("valid %zu-byte form at %zu of %zu refused", n, at, len);
                /* the same bytes cut off by the end of the line */
                if (at + n == len && utf8_valid(s, len - 1))
                    fail_msg("%zu-byte form truncated at %zu accepted", n, len - 1);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_every_length_of_sequence_at_its_bounds),
        cmocka_unit_test(refuses_overlong_forms),
        cmocka_unit_test(refuses_surrogates),
        cmocka_unit_test(refuses_code_points_beyond_u10ffff),
        cmocka_unit_test(refuses_truncated_sequences),
        cmocka_unit_test(refuses_stray_and_out_of_range_continuation_bytes),
        cmocka_unit_test(the_word_at_a_time_path_sees_a_bad_byte_anywhere),
        cmocka_unit_test(sequences_straddling_the_word_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
