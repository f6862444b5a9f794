#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mqd/passwd.h"

/* made by Python's hashlib, an implementation of its own */
#define PBKDF2_LINE                                                                                \
    "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M"
#define SCRYPT_LINE                                                                                \
    "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M"
/* padded base64, a 64-byte hash, and a password holding a NUL */
#define PADDED_LINE                                                                                \
    "$pbkdf2-sha256$i=1$MDEyMzQ1Njc4OWFiY2RlZg==$NarchT9Gxm7doC6L+7JZjg6bIUeAPweQcS0jQaB77zV13W"   \
    "tfJY4EUeimnlE+e87qsUoxrTtzY5fb4ndsjrA0RQ=="

static int parse(const char *text, struct passwd *out)
{
    return passwd_parse(text, strlen(text), out);
}

static void lines_from_another_implementation_check(void **state)
{
    (void)state;
    struct passwd h;
    assert_int_equal(parse(PBKDF2_LINE, &h), 0);
    assert_int_equal(h.kind, PASSWD_PBKDF2_SHA256);
    assert_int_equal(h.iterations, 1000);
    assert_int_equal(h.salt_len, 16);
    assert_memory_equal(h.salt, "0123456789abcdef", 16);
    assert_int_equal(h.hash_len, 32);
    assert_int_equal(passwd_check(&h, "correct horse", 13), 1);
    assert_int_equal(passwd_check(&h, "correct horsE", 13), 0);
    assert_int_equal(passwd_check(&h, "correct hors", 12), 0);
    assert_int_equal(passwd_check(&h, "", 0), 0);

    assert_int_equal(parse(SCRYPT_LINE, &h), 0);
    assert_int_equal(h.kind, PASSWD_SCRYPT);
    assert_int_equal(h.log2_n, 10);
    assert_int_equal(h.r, 8);
    assert_int_equal(h.p, 1);
    assert_int_equal(passwd_check(&h, "correct horse", 13), 1);
    assert_int_equal(passwd_check(&h, "correct horse ", 14), 0);

    assert_int_equal(parse(PADDED_LINE, &h), 0);
    assert_int_equal(h.hash_len, 64);
    assert_int_equal(passwd_check(&h, "x\0y", 3), 1);
    assert_int_equal(passwd_check(&h, "x", 1), 0);
}

static void made_lines_check_and_differ_by_salt(void **state)
{
    (void)state;
    char a[PASSWD_TEXT_MAX], b[PASSWD_TEXT_MAX];
    struct passwd h;
    assert_int_equal(passwd_make(PASSWD_PBKDF2_SHA256, "s3cret", 6, a, sizeof(a)), 0);
    assert_int_equal(passwd_make(PASSWD_PBKDF2_SHA256, "s3cret", 6, b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
    assert_non_null(strstr(a, "$pbkdf2-sha256$i=600000$"));
    assert_int_equal(parse(a, &h), 0);
    assert_int_equal(h.iterations, PASSWD_DEFAULT_ITERATIONS);
    assert_int_equal(passwd_check(&h, "s3cret", 6), 1);
    assert_int_equal(passwd_check(&h, "s3creT", 6), 0);

    assert_int_equal(passwd_make(PASSWD_SCRYPT, "s3cret", 6, a, sizeof(a)), 0);
    assert_non_null(strstr(a, "$scrypt$ln=16,r=8,p=1$"));
    assert_int_equal(parse(a, &h), 0);
    assert_int_equal(passwd_check(&h, "s3cret", 6), 1);
    assert_int_equal(passwd_check(&h, "s3cre", 5), 0);

    assert_int_equal(passwd_make(PASSWD_SCRYPT, "s3cret", 6, a, 20), -1); /* no room */
}

static void lines_out_of_shape_or_bounds_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "$pbkdf2-sha256$",
        "$pbkdf2-sha1$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=0$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=10000001$MDEyMzQ1Njc4OWFiY2RlZg$"
        "cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=01000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=1000,x=1$MDEyMzQ1Njc4OWFiY2RlZg$"
        "cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$n=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        /* salt too short (7 bytes), hash too short (15 bytes) */
        "$pbkdf2-sha256$i=1000$MDEyMzQ1Ng$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szTh",
        /* not base64; bits left over; a field too many; one too few */
        "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2Rl*g$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZh$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M$",
        "$pbkdf2-sha256$i=1000$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M",
        "$scrypt$ln=10,r=8$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=21,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=20,r=9,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=17$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        /* memory in bounds, but 16 times the work of the largest */
        "$scrypt$ln=20,r=8,p=16$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=20,r=8,p=2$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$r=8,ln=10,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1,$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
    };
    struct passwd h;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &h) != -1)
            fail_msg("accepted: %s", bad[i]);
    }
    /* the limits themselves are accepted */
    assert_int_equal(parse("$scrypt$ln=20,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbb"
                           "TlgrvOEFcCItdwSjtPF67M",
                           &h),
                     0);
    assert_int_equal(
        parse("$pbkdf2-sha256$i=10000000$MDEyMzQ1Njc$cBg8D2DungRB9k76szThf5ehfyBz", &h), 0);
    assert_int_equal(h.salt_len, 8);
}

static void costs_compare_the_two_functions(void **state)
{
    (void)state;
    struct passwd p = {.kind = PASSWD_PBKDF2_SHA256, .iterations = 600000};
    struct passwd s = {.kind = PASSWD_SCRYPT, .log2_n = 16, .r = 8, .p = 1};
    assert_int_equal(passwd_cost(&p), 600000);
    assert_int_equal(passwd_cost(&s), 734003); /* 2^19 x 1.4: about the same time */
    s.p = 2;
    assert_int_equal(passwd_cost(&s), 1468006);
}

static void base64_decodes_every_length(void **state)
{
    (void)state;
    uint8_t out[8];
    assert_int_equal(passwd_base64_decode("", 0, out, 8), 0);
    assert_int_equal(passwd_base64_decode("YQ", 2, out, 8), 1);
    assert_memory_equal(out, "a", 1);
    assert_int_equal(passwd_base64_decode("YWI=", 4, out, 8), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(passwd_base64_decode("YWJj", 4, out, 8), 3);
    assert_int_equal(passwd_base64_decode("Y", 1, out, 8), -1);
    assert_int_equal(passwd_base64_decode("YWJjZA", 6, out, 3), -1); /* 4 bytes, room for 3 */
    assert_int_equal(passwd_base64_decode("YWJjZA", 6, out, 4), 4);
    assert_int_equal(passwd_base64_decode("+/+/", 4, out, 8), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_from_another_implementation_check),
        cmocka_unit_test(made_lines_check_and_differ_by_salt),
        cmocka_unit_test(lines_out_of_shape_or_bounds_are_refused),
        cmocka_unit_test(costs_compare_the_two_functions),
        cmocka_unit_test(base64_decodes_every_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
