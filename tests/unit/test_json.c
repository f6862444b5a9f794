#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqd/json.h"

static bool scans(const char *s)
{
    struct json_value v;
    return json_scan(s, strlen(s), &v);
}

static void assert_all_scan(const char *const *cases, size_t n, bool want)
{
    for (size_t i = 0; i < n; i++) {
        if (scans(cases[i]) != want)
            fail_msg("%s: %s", want ? "refused" : "accepted", cases[i]);
    }
}

#define ASSERT_ALL_SCAN(cases, want)                                                               \
    assert_all_scan((cases), sizeof(cases) / sizeof((cases)[0]), (want))

static void accepts_every_kind_of_value(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}",
        "[]",
        "\"\"",
        "\"x\"",
        "true",
        "false",
        "null",
        "[[],{}]",
        "{\"\":\"\"}",
        " \t\r\n{ \"a\" : [ 1 , { } , [ ] ] } \r\n\t ",
        "{\"a\":{\"b\":{\"c\":[true,false,null]}}}",
        "\"\xc3\xa9\xf0\x9f\x98\x80\"",
        "\"\x7f\"", /* DEL is no control character to RFC 8259 */
    };
    ASSERT_ALL_SCAN(good, true);
}

static void accepts_numbers_in_rfc_8259_form(void **state)
{
    (void)state;
    static const char *const good[] = {
        "0",   "-0",   "12",   "-12",  "1.5",     "0.0",   "-0.0e-0",
        "1e5", "1E+5", "1e-5", "1e05", "1.25e-3", "1e999", "123456789012345678901234567890",
    };
    ASSERT_ALL_SCAN(good, true);
}

static void refuses_numbers_out_of_rfc_8259_form(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "01",  "-01",  "00",       "-",         "--1",       "+1",    "- 1",        "1.",    "2.e5",
        ".5",  ".e1",  "1e",       "1e+",       "1E-",       "0x10",  "1.5.2",      "1e5e5", "NaN",
        "nan", "-NaN", "Infinity", "-Infinity", "+Infinity", "1true", "{\"a\":01}", "[1.]",
    };
    ASSERT_ALL_SCAN(bad, false);
}

static void accepts_every_escape(void **state)
{
    (void)state;
    static const char *const good[] = {
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u0000\"",
        "\"\\u00e9\\u00E9\\uFFFF\"",
        "\"\\ud83d\\ude00\"",
        "\"\\uD83D\\uDE00\"",
        "\"\\ud800\\udc00\\udbff\\udfff\"",
    };
    ASSERT_ALL_SCAN(good, true);
}

static void refuses_unknown_escapes_and_unpaired_surrogates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"\\x41\"",
        "\"\\'\"",
        "\"\\a\"",
        "\"\\0\"",
        "\"\\U0041\"",
        "\"\\u\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\\"",
        "\"\\",
        "\"\\ud800\"", /* high alone */
        "\"\\udc00\"", /* low alone */
        "\"\\udfff\"",
        "\"\\udc00\\ud800\"", /* a pair the wrong way round */
        "\"\\ud800\\ud800\"", /* high then high */
        "\"\\ud800\\u0041\"", /* high then no low */
        "\"\\ud800x\"",
        "\"\\ud800\\n\"",
        "\"\\ud800\\\"",
        "\"\\ud800\\udc0\"",
    };
    ASSERT_ALL_SCAN(bad, false);
}

static void refuses_every_raw_control_character_in_a_string(void **state)
{
    (void)state;
    for (int c = 0; c < 0x20; c++) {
        char s[] = "\"a?b\"";
        s[2] = (char)c;
        struct json_value v;
        if (json_scan(s, sizeof(s) - 1, &v))
            fail_msg("raw 0x%02x in a string accepted", c);
    }
}

static void allows_only_four_whitespace_bytes_between_tokens(void **state)
{
    (void)state;
    /* the byte goes before the value, between tokens and after the value */
    static const char *const shapes[] = {"?{}", "{?}", "{\"a\"?:1}", "{\"a\":?1}", "[1?,2]", "{}?"};
    for (int c = 0; c < 0x80; c++) { /* the scanner's input is valid UTF-8 */
        if (c == '"' || c == '-' || (c >= '0' && c <= '9'))
            continue; /* would make another value, not whitespace */
        bool whitespace = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
            char s[16];
            strcpy(s, shapes[i]);
            *strchr(s, '?') = (char)c;
            struct json_value v;
            if (json_scan(s, strlen(shapes[i]), &v) != whitespace)
                fail_msg("byte 0x%02x in %s: %s", c, shapes[i],
                         whitespace ? "refused" : "accepted");
        }
    }
    /* multi-byte blanks: a BOM, U+00A0 */
    static const char *const bad[] = {"\xef\xbb\xbf{}", "{}\xef\xbb\xbf", "\xc2\xa0{}",
                                      "[1,\xc2\xa0 2]"};
    ASSERT_ALL_SCAN(bad, false);
}

static void refuses_other_syntax_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "tru",
        "nul",
        "True",
        "NULL",
        "undefined",
        "'a'",
        "{'a':1}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{,}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{\"a\"::1}",
        "{1:2}",
        "{null:1}",
        "1 2",
        "{}{}",
        "{} x",
        "\"a\" \"b\"",
        "// c\n{}",
        "{/* c */}",
        "{} // c",
        "\"unterminated",
        "[",
        "]",
        "{",
        "}",
        "[[]",
        "{\"a\":[}",
    };
    ASSERT_ALL_SCAN(bad, false);
    struct json_value v;
    assert_false(json_scan("{}\0", 3, &v));
    assert_false(json_scan("\0{}", 3, &v));
    assert_false(json_scan("\"a\0b\"", 5, &v));
}

/* nested: `open` `depth` times, then `core`, then `close` `depth` times. */
static char *nested(const char *open, const char *core, const char *close, size_t depth)
{
    size_t lo = strlen(open), lk = strlen(core), lc = strlen(close);
    char *s = malloc(depth * (lo + lc) + lk + 1), *p = s;
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, core, lk);
    p += lk;
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

/* assert_depth_limit: JSON_MAX_DEPTH levels scan, one more does not; each
 * `open` opens `levels` of them. */
static void assert_depth_limit(const char *open, const char *core, const char *close, size_t levels)
{
    char *ok = nested(open, core, close, JSON_MAX_DEPTH / levels);
    char *deep = nested(open, core, close, JSON_MAX_DEPTH / levels + 1);
    assert_true(scans(ok));
    assert_false(scans(deep));
    free(ok);
    free(deep);
}

static void nesting_is_limited_to_json_max_depth(void **state)
{
    (void)state;
    assert_depth_limit("[", "", "]", 1);
    assert_depth_limit("{\"a\":", "0", "}", 1);
    assert_depth_limit("{\"a\":[", "", "]}", 2);
    char *huge = nested("[", "", "]", 200000); /* refused, and no stack overflow */
    assert_false(scans(huge));
    free(huge);
}

static void span_is(struct json_span span, const char *want)
{
    assert_int_equal(span.len, strlen(want));
    assert_memory_equal(span.start, want, span.len);
}

static void reports_the_members_of_the_top_object(void **state)
{
    (void)state;
    const char *s = "  {\"a\\u0062\": \"x\\ny\", \"n\":-12, \"f\":1.5, \"e\":1e2, \"t\":true, "
                    "\"o\":{\"in\":1, \"x\":2}, \"l\":[1, 2], \"z\":null} ";
    struct json_value v;
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.type, JSON_OBJECT);
    assert_int_equal(v.nmembers, 8);
    assert_ptr_equal(v.raw.start, s + 2);
    assert_int_equal(v.raw.len, strlen(s) - 3);
    const struct json_member *m = v.members;
    span_is(m[0].key, "a\\u0062");
    assert_true(m[0].key_escaped);
    assert_false(m[1].key_escaped);
    assert_int_equal(m[0].type, JSON_STRING);
    assert_true(m[0].escaped);
    span_is(m[0].value, "x\\ny");
    span_is(m[1].key, "n");
    assert_int_equal(m[1].type, JSON_NUMBER);
    assert_true(m[1].integer);
    span_is(m[1].value, "-12");
    assert_false(m[2].integer);
    span_is(m[2].value, "1.5");
    assert_false(m[3].integer);
    span_is(m[3].value, "1e2");
    assert_int_equal(m[4].type, JSON_TRUE);
    span_is(m[4].value, "true");
    assert_int_equal(m[5].type, JSON_OBJECT);
    span_is(m[5].value, "{\"in\":1, \"x\":2}");
    assert_int_equal(m[6].type, JSON_ARRAY);
    span_is(m[6].value, "[1, 2]");
    assert_int_equal(m[7].type, JSON_NULL);
    assert_false(m[7].escaped);
}

static void flags_integers_by_their_lexical_form(void **state)
{
    (void)state;
    static const struct {
        const char *number;
        bool integer;
    } cases[] = {
        {"0", true},
        {"-0", true},
        {"7", true},
        {"-9", true},
        {"12345678901234567890", true},
        {"1.0", false},
        {"0.5", false},
        {"1e2", false},
        {"1E2", false},
        {"-1e-2", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char s[64];
        snprintf(s, sizeof(s), "{\"n\":%s}", cases[i].number);
        struct json_value v;
        assert_true(json_scan(s, strlen(s), &v));
        assert_int_equal(v.members[0].type, JSON_NUMBER);
        if (v.members[0].integer != cases[i].integer)
            fail_msg("%s: integer should be %d", cases[i].number, cases[i].integer);
    }
}

static void a_string_value_is_escaped_only_with_a_backslash(void **state)
{
    (void)state;
    const char *s = "{\"a\":\"plain \xc3\xa9\",\"b\":\"\\/\"}";
    struct json_value v;
    assert_true(json_scan(s, strlen(s), &v));
    assert_false(v.members[0].escaped);
    assert_true(v.members[1].escaped);
}

static void describes_a_top_value_that_is_not_an_object(void **state)
{
    (void)state;
    struct json_value v;
    const char *s = " \"text\" ";
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.type, JSON_STRING);
    assert_int_equal(v.nmembers, 0);
    span_is(v.raw, "\"text\"");
    s = "[{\"a\":1}]";
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.type, JSON_ARRAY);
    assert_int_equal(v.nmembers, 0);
    assert_true(json_scan("-1.5", 4, &v));
    assert_int_equal(v.type, JSON_NUMBER);
    assert_true(json_scan("null", 4, &v));
    assert_int_equal(v.type, JSON_NULL);
}

static void counts_top_members_beyond_the_array_and_only_those(void **state)
{
    (void)state;
    const char *s = "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,"
                    "\"j\":{\"x\":1,\"y\":2}}";
    struct json_value v;
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.nmembers, 10);
    span_is(v.members[JSON_MAX_MEMBERS - 1].key, "h");
    s = "{\"o\":{\"x\":1,\"y\":2}}";
    assert_true(json_scan(s, strlen(s), &v));
    assert_int_equal(v.nmembers, 1);
}

static void decodes_strings_to_utf8(void **state)
{
    (void)state;
    const char *raw = "a\\u0000b\\u00e9\\u07FF\\u0800\\u20ac\\uffff\\ud83d\\ude00\\udbff\\udfff"
                      "\\b\\f\\n\\r\\t\\\"\\/\\\\\xc3\xa9";
    char out[128];
    size_t n = json_decode_string(raw, strlen(raw), out);
    const char want[] = "a\0b\xc3\xa9\xdf\xbf\xe0\xa0\x80\xe2\x82\xac\xef\xbf\xbf"
                        "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\b\f\n\r\t\"/\\\xc3\xa9";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_int_equal(json_decode_string("", 0, out), 0);
}

static struct json_span raw_of(const char *s) { return (struct json_span){s, strlen(s)}; }

/* string_value: scans {"k":"<text>"} (text of `len` bytes); true when it is
 * accepted, with its value's raw span and escape flag */
static bool string_value(const char *text, size_t len, struct json_member *out)
{
    char line[128];
    assert_true(len + 9 <= sizeof(line));
    memcpy(line, "{\"k\":\"", 6);
    memcpy(line + 6, text, len);
    memcpy(line + 6 + len, "\"}", 2);
    struct json_value v;
    if (!json_scan(line, len + 8, &v))
        return false;
    *out = v.members[0];
    out->value.start = text + (out->value.start - (line + 6)); /* as an offset into text */
    return true;
}

/* the scanner looks at eight bytes at a time: a byte that ends the string,
 * starts an escape or is refused is found at every offset in the word and
 * across words, and every other byte is passed over */
static void finds_each_byte_that_matters_at_every_offset(void **state)
{
    (void)state;
    static const unsigned char passed[] = {'a', ' ', '/', 0x7f, 0x80, 0xa0, 0xc3, 0xff, '!', '#'};
    for (size_t len = 0; len <= 40; len++) {
        char text[64] = {0};
        for (size_t i = 0; i < len; i++)
            text[i] = (char)passed[(i * 7 + len) % sizeof(passed)];
        struct json_member m;
        assert_true(string_value(text, len, &m));
        assert_int_equal(m.value.len, len);
        assert_false(m.escaped);
        for (size_t at = 0; at < len; at++) {
            char edited[64];
            memcpy(edited, text, len);
            /* a control byte, the lowest and the highest, is refused */
            edited[at] = 0x00;
            assert_false(string_value(edited, len, &m));
            edited[at] = 0x1f;
            assert_false(string_value(edited, len, &m));
            /* a quote ends the string there: what follows is not JSON */
            edited[at] = '"';
            assert_false(string_value(edited, len, &m));
            /* an escaped quote is text, and flags the string */
            char escaped[64];
            memcpy(escaped, text, at);
            memcpy(escaped + at, "\\\"", 2);
            memcpy(escaped + at + 2, text + at, len - at);
            assert_true(string_value(escaped, len + 2, &m));
            assert_int_equal(m.value.len, len + 2);
            assert_true(m.escaped);
        }
    }
}

/* an unterminated string at the very end of a block of its exact size: the
 * word-at-a-time scan never reads past it (AddressSanitizer would say so) */
static void an_unterminated_string_is_not_read_past_its_end(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 40; len++) {
        char *line = malloc(6 + len);
        assert_non_null(line);
        memcpy(line, "{\"k\":\"", 6);
        memset(line + 6, 'a', len);
        struct json_value v;
        assert_false(json_scan(line, 6 + len, &v));
        if (len > 0) { /* ending inside an escape too */
            line[6 + len - 1] = '\\';
            assert_false(json_scan(line, 6 + len, &v));
        }
        free(line);
    }
}

static void compares_raw_strings_by_decoded_value(void **state)
{
    (void)state;
    assert_true(json_string_equals(raw_of("topic"), "topic"));
    assert_true(json_string_equals(raw_of("\\u0074opic"), "topic"));
    assert_true(json_string_equals(raw_of("\\u0074\\u006F\\u0070\\u0069\\u0063"), "topic"));
    assert_true(json_string_equals(raw_of("a\\/b"), "a/b"));
    assert_true(json_string_equals(raw_of("\\ud83d\\ude00"), "\xf0\x9f\x98\x80"));
    assert_true(json_string_equals(raw_of(""), ""));
    assert_false(json_string_equals(raw_of("topi"), "topic"));
    assert_false(json_string_equals(raw_of("topic"), "topics"));
    assert_false(json_string_equals(raw_of("\\u0074opik"), "topic"));
    assert_false(json_string_equals(raw_of("\\u0074"), ""));
    assert_false(json_string_equals(raw_of(""), "t"));
}

static void compares_by_the_scanners_word_on_escapes(void **state)
{
    (void)state;
    /* unescaped: the bytes, and the length, are the text */
    assert_true(json_text_is(raw_of("send"), false, "send", 4));
    assert_false(json_text_is(raw_of("sends"), false, "send", 4));
    assert_false(json_text_is(raw_of("sen"), false, "send", 4));
    assert_false(json_text_is(raw_of("sene"), false, "send", 4));
    assert_true(json_text_is(raw_of(""), false, "", 0));
    /* escaped: decoded, so a raw spelling equal to the text is not it */
    assert_true(json_text_is(raw_of("s\\u0065nd"), true, "send", 4));
    assert_false(json_text_is(raw_of("s\\u0065nd"), true, "s\\u0065nd", 10));
    assert_true(json_text_is(raw_of("a\\\\b"), true, "a\\b", 3));
    assert_false(json_text_is(raw_of("\\u0073"), true, "se", 2));
    /* the text may be shorter than a NUL-terminated name: only text_len counts */
    assert_true(json_text_is(raw_of("one"), false, "one two", 3));
}

static void a_raw_spelling_that_equals_the_text_still_gets_decoded(void **state)
{
    (void)state;
    /* the raw string decodes to "topic", not to the six bytes "\u0074" + "opic" */
    assert_false(json_string_equals(raw_of("\\u0074opic"), "\\u0074opic"));
    assert_true(json_string_equals(raw_of("a\\\\b"), "a\\b"));
}

static void compares_escaped_spellings_of_any_length(void **state)
{
    (void)state;
    /* 30 letters, each spelled as \u0061: 180 raw bytes */
    char raw[181] = "", text[31] = "";
    for (int i = 0; i < 30; i++) {
        strcat(raw, "\\u0061");
        strcat(text, "a");
    }
    assert_true(json_string_equals(raw_of(raw), text));
    text[29] = 'b';
    assert_false(json_string_equals(raw_of(raw), text));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_every_kind_of_value),
        cmocka_unit_test(accepts_numbers_in_rfc_8259_form),
        cmocka_unit_test(refuses_numbers_out_of_rfc_8259_form),
        cmocka_unit_test(accepts_every_escape),
        cmocka_unit_test(refuses_unknown_escapes_and_unpaired_surrogates),
        cmocka_unit_test(refuses_every_raw_control_character_in_a_string),
        cmocka_unit_test(allows_only_four_whitespace_bytes_between_tokens),
        cmocka_unit_test(refuses_other_syntax_errors),
        cmocka_unit_test(nesting_is_limited_to_json_max_depth),
        cmocka_unit_test(reports_the_members_of_the_top_object),
        cmocka_unit_test(flags_integers_by_their_lexical_form),
        cmocka_unit_test(a_string_value_is_escaped_only_with_a_backslash),
        cmocka_unit_test(describes_a_top_value_that_is_not_an_object),
        cmocka_unit_test(counts_top_members_beyond_the_array_and_only_those),
        cmocka_unit_test(decodes_strings_to_utf8),
        cmocka_unit_test(finds_each_byte_that_matters_at_every_offset),
        cmocka_unit_test(an_unterminated_string_is_not_read_past_its_end),
        cmocka_unit_test(compares_raw_strings_by_decoded_value),
        cmocka_unit_test(compares_by_the_scanners_word_on_escapes),
        cmocka_unit_test(a_raw_spelling_that_equals_the_text_still_gets_decoded),
        cmocka_unit_test(compares_escaped_spellings_of_any_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
