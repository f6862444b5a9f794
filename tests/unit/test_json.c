#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mqd/json.h"

static bool scans(const char *s)
{
    struct json_value v;
    return json_scan(s, strlen(s), &v);
}

static void accepts_every_kind_of_value(void **state)
{
    (void)state;
    const char *good[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "12",
        "-12",
        "1.5",
        "1e5",
        "1E+5",
        "1.25e-3",
        "\"\"",
        "\"x\"",
        "true",
        "false",
        "null",
        " \t\r\n{ \"a\" : [ 1 , { } , [ ] ] } \r",
        "{\"a\":{\"b\":{\"c\":[true,false,null]}}}",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\uD83D\\uDE00\"",
        "\"\xc3\xa9\xf0\x9f\x98\x80\"",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!scans(good[i]))
            fail_msg("refused: %s", good[i]);
    }
}

static void refuses_what_rfc_8259_refuses(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        " ",
        "NaN",
        "Infinity",
        "-Infinity",
        "nan",
        "tru",
        "nul",
        "True",
        "'a'",
        "{'a':1}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{1:2}",
        "01",
        "-",
        "1.",
        ".5",
        "+1",
        "1e",
        "1e+",
        "0x10",
        "--1",
        "1 2",
        "{}{}",
        "{} x",
        "// c\n{}",
        "{/* c */}",
        "\"a\tb\"",
        "\"a\x01b\"",
        "\"a\x1f\"",
        "\"\\x41\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800x\"",
        "\"\\ud800\\\"",
        "\"unterminated",
        "\"\\",
        "[",
        "]",
        "{",
        "}",
        "\v{}",
        "{}\v",
        "\f1",
        "[1\v]",
        "\"a\" \"b\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (scans(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    }
    struct json_value v;
    assert_false(json_scan("{}\0", 3, &v));
    assert_false(json_scan("\0{}", 3, &v));
}

static char *nested(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void nesting_is_limited(void **state)
{
    (void)state;
    char *ok = nested(JSON_MAX_DEPTH), *deep = nested(JSON_MAX_DEPTH + 1);
    assert_true(scans(ok));
    assert_false(scans(deep));
    free(ok);
    free(deep);
    char *huge = nested(200000); /* no stack overflow */
    assert_false(scans(huge));
    free(huge);
}

static void reports_the_members_of_the_top_object(void **state)
{
    (void)state;
    const char *s = "  {\"a\\u0062\": \"x\\ny\", \"n\":-12, \"f\":1.5, \"e\":1e2, \"t\":true, "
                    "\"o\":{\"in\":1}, \"l\":[1]} ";
    struct json_value v;
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.type, JSON_OBJECT);
    assert_int_equal(v.nmembers, 7);
    assert_ptr_equal(v.raw.start, s + 2);
    assert_int_equal(v.raw.len, strlen(s) - 3);
    assert_true(json_string_equals(v.members[0].key, "ab"));
    assert_int_equal(v.members[0].type, JSON_STRING);
    assert_true(v.members[0].escaped);
    assert_memory_equal(v.members[0].value.start, "x\\ny", 4);
    assert_int_equal(v.members[1].type, JSON_NUMBER);
    assert_true(v.members[1].integer);
    assert_memory_equal(v.members[1].value.start, "-12", 3);
    assert_false(v.members[2].integer);
    assert_false(v.members[3].integer);
    assert_int_equal(v.members[4].type, JSON_TRUE);
    assert_int_equal(v.members[5].type, JSON_OBJECT);
    assert_int_equal(v.members[6].type, JSON_ARRAY);
}

static void counts_members_beyond_the_array(void **state)
{
    (void)state;
    const char *s =
        "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1}";
    struct json_value v;
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.nmembers, 10);
}

static void decodes_strings_to_utf8(void **state)
{
    (void)state;
    const char *raw = "a\\u0000b\\u00e9\\u20ac\\ud83d\\ude00\\n\\\"\\/\\\\";
    char out[64];
    size_t n = json_decode_string(raw, strlen(raw), out);
    const char want[] = "a\0b\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n\"/\\";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
}

static void compares_raw_strings_by_decoded_value(void **state)
{
    (void)state;
    struct json_span plain = {"topic", 5}, escaped = {"\\u0074opic", 10}, other = {"topi", 4};
    assert_true(json_string_equals(plain, "topic"));
    assert_true(json_string_equals(escaped, "topic"));
    assert_false(json_string_equals(other, "topic"));
    assert_false(json_string_equals(plain, "topics"));
}

static void equality_is_by_decoded_value_only(void **state)
{
    (void)state;
    /* the raw bytes equal the text, but they decode to "topic" */
    struct json_span spelled = {"\\u0074opic", 10}, long_raw = {NULL, 0};
    assert_false(json_string_equals(spelled, "\\u0074opic"));
    char raw[181] = "", text[31] = "";
    for (int i = 0; i < 30; i++) { /* 180 raw bytes for 30 decoded ones */
        strcat(raw, "\\u0061");
        strcat(text, "a");
    }
    long_raw.start = raw;
    long_raw.len = strlen(raw);
    assert_true(json_string_equals(long_raw, text));
    text[29] = 'b';
    assert_false(json_string_equals(long_raw, text));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_every_kind_of_value),
        cmocka_unit_test(refuses_what_rfc_8259_refuses),
        cmocka_unit_test(nesting_is_limited),
        cmocka_unit_test(reports_the_members_of_the_top_object),
        cmocka_unit_test(counts_members_beyond_the_array),
        cmocka_unit_test(decodes_strings_to_utf8),
        cmocka_unit_test(compares_raw_strings_by_decoded_value),
        cmocka_unit_test(equality_is_by_decoded_value_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
