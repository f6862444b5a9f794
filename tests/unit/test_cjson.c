/* The cJSON cross-check of the strict parser (see cjson_agree.h), on lines
 * chosen to be hard for one of the two: every escape, surrogate pairs and
 * raw multi-byte UTF-8, escaped keys and values, whitespace everywhere it
 * may go, integers of any size. The fuzz target fuzz_cjson does the same on
 * whatever libFuzzer makes of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson_agree.h"
#include "mqd/proto.h"

static enum cjson_agree agree(const char *line, char *why, size_t why_size)
{
    return cjson_agree_line(line, strlen(line), why, why_size);
}

static void assert_all_agree(const char *const *lines, size_t n)
{
    char why[256];
    for (size_t i = 0; i < n; i++) {
        enum cjson_agree rc = agree(lines[i], why, sizeof(why));
        if (rc == CJSON_NOT_ACCEPTED)
            fail_msg("mqd refuses it, so it tests nothing: %s", lines[i]);
        if (rc != CJSON_AGREES)
            fail_msg("%s: %s", why, lines[i]);
    }
}

#define ASSERT_ALL_AGREE(lines) assert_all_agree((lines), sizeof(lines) / sizeof((lines)[0]))

#define SEND(topic, msg)                                                                           \
    "{\"command\":\"send\",\"topic\":\"" topic "\",\"msg\":\"" msg "\",\"delivery\":\"all\"}"
#define SUB_LAST_SEEN(n) "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":" n "}"

static void plain_commands_agree(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":\"subscribe\",\"topic\":\"news\"}",
        "{\"command\":\"unsubscribe\",\"topic\":\"news\"}",
        "{\"command\":\"subscribe\",\"topic\":\"news\",\"last_seen\":3,\"cache\":false}",
        "{\"command\":\"subscribe\",\"topic\":\"news\",\"cache\":true}",
        SEND("news", "hello"),
        "{\"command\":\"send\",\"topic\":\"\",\"msg\":\"\",\"delivery\":\"one\",\"cache\":false}",
        "{\"delivery\":\"all\",\"msg\":\"m\",\"topic\":\"t\",\"command\":\"send\",\"cache\":true}",
    };
    ASSERT_ALL_AGREE(lines);
}

static void every_escape_agrees(void **state)
{
    (void)state;
    static const char *const lines[] = {
        SEND("\\\"\\\\\\/\\b\\f\\n\\r\\t", "\\\"\\\\\\/\\b\\f\\n\\r\\t"),
        SEND("\\u0041\\u00e9\\u20AC\\uFFFF\\u007f", "\\u0001\\u001f\\u0020\\u00FF\\u0800"),
        SEND("\\\\u0000", "\\\\u0000 is text"), /* an escaped backslash, then text */
        SEND("\\\\", "\\\\\\\\\\\""),
        SEND("x", "\\u005c\\u0022"),
        "{\"command\":\"subscribe\",\"topic\":\"a\\/b\\u002fc\"}",
    };
    ASSERT_ALL_AGREE(lines);
}

static void surrogate_pairs_and_raw_utf8_agree(void **state)
{
    (void)state;
    static const char *const lines[] = {
        SEND("\\ud83d\\ude00", "\\uD834\\uDD1E \\ud800\\udc00 \\udbff\\udfff"),
        SEND("\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf \xf0\x90\x80\x80 \xef\xbf\xbf \xc2\x80"),
        SEND("gr\xc3\xbc\xc3\x9f", "\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf\x7f"),
        SEND("\\ud83d\\ude00\xf0\x9f\x98\x80", "mixed \\ud83d\\ude00 and \xf0\x9f\x98\x80"),
    };
    ASSERT_ALL_AGREE(lines);
}

static void escaped_keys_and_values_agree(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"comm\\u0061nd\":\"subscribe\",\"\\u0074opic\":\"t\"}",
        "{\"command\":\"s\\u0065nd\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"\\u006fne\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"\\u006dsg\":\"m\",\"deliver\\u0079\":\"all\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"l\\u0061st_seen\":7,\"c\\u0061che\":true}",
    };
    ASSERT_ALL_AGREE(lines);
}

static void whitespace_agrees(void **state)
{
    (void)state;
    static const char *const lines[] = {
        " \t{ \"command\" :\t\"subscribe\" ,\r\n\"topic\" : \"t\" }\r\t ",
        "{\n\"command\"\n:\n\"send\"\n,\"topic\":\"t\",\"msg\":\" \\t \",\"delivery\":\"all\"\n}",
    };
    ASSERT_ALL_AGREE(lines);
}

static void integers_of_any_size_agree(void **state)
{
    (void)state;
    static const char *const lines[] = {
        SUB_LAST_SEEN("0"),
        SUB_LAST_SEEN("-0"),
        SUB_LAST_SEEN("-1"),
        SUB_LAST_SEEN("9007199254740993"),     /* 2^53 + 1: no double holds it */
        SUB_LAST_SEEN("9223372036854775807"),  /* a double rounds it to 2^63 */
        SUB_LAST_SEEN("-9223372036854775807"), /* and this to -2^63 */
        SUB_LAST_SEEN("9223372036854775000"),
        SUB_LAST_SEEN("9223372036854775808"),
        SUB_LAST_SEEN("-9223372036854775808"),
        SUB_LAST_SEEN("-9223372036854775809"),
        SUB_LAST_SEEN("99999999999999999999999"),
        SUB_LAST_SEEN("-99999999999999999999"),
    };
    ASSERT_ALL_AGREE(lines);
    char digits[401], positive[512], negative[512];
    memset(digits, '9', sizeof(digits) - 1);
    digits[sizeof(digits) - 1] = '\0';
    snprintf(positive, sizeof(positive), SUB_LAST_SEEN("%s"), digits);
    snprintf(negative, sizeof(negative), SUB_LAST_SEEN("-1%s"), digits + 100);
    const char *long_lines[] = {positive, negative};
    ASSERT_ALL_AGREE(long_lines);
}

static void long_topics_and_messages_agree(void **state)
{
    (void)state;
    enum { N = 5000 };
    char *line = malloc(12 * N + 200);
    assert_non_null(line);
    size_t at = (size_t)sprintf(line, "{\"command\":\"send\",\"topic\":\"");
    for (int i = 0; i < N; i++)
        at += (size_t)sprintf(line + at, "%s", i % 2 ? "\\ud83d\\ude00" : "x\xc3\xa9");
    at += (size_t)sprintf(line + at, "\",\"msg\":\"");
    for (int i = 0; i < N; i++)
        at += (size_t)sprintf(line + at, "%s", i % 3 ? "\\n\\\"" : "\xf0\x9f\x98\x80");
    sprintf(line + at, "\",\"delivery\":\"all\"}");
    const char *lines[] = {line};
    ASSERT_ALL_AGREE(lines);
    free(line);
}

/* U+0000 ends cJSON's strings: a msg holding it is skipped, not failed;
 * the rest of the line is still compared */
static void a_msg_holding_u0000_is_skipped(void **state)
{
    (void)state;
    static const char *const lines[] = {
        SEND("t", "a\\u0000b"),
        SEND("t", "\\u0000"),
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"\\u0000\",\"delivery\":\"one\",\"cache\":"
        "false}",
    };
    ASSERT_ALL_AGREE(lines);
}

/* lines mqd refuses are not compared: cJSON accepts several of them */
static void refused_lines_are_not_compared(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"topic\":\"u\"}", /* duplicate key */
        "{\"command\":\"subscribe\",\"topic\":\"t\tx\"}",              /* raw tab */
        "\xef\xbb\xbf{\"command\":\"subscribe\",\"topic\":\"t\"}",     /* BOM */
        "{\"command\":\"subscribe\",\x0b\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"a\\u0000b\"}",
        "{\"command\":\"subscribe\",\"topic\":\"\\ud800\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":1.5}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":01}",
        "{\"command\":\"subscribe\",\"topic\":\"t\"}x",
        "[[[[[[[[[[]]]]]]]]]]",
        "{\"command\":\"subscribe\",\"topic\":\"\xff\"}",
    };
    char why[256];
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (agree(lines[i], why, sizeof(why)) != CJSON_NOT_ACCEPTED)
            fail_msg("compared: %s", lines[i]);
}

/* compared_with: cjson_compare of `mqd_line` with cJSON's reading of
 * `other`, which differs from it in one way */
static enum cjson_agree compared_with(const char *mqd_line, const char *other)
{
    char why[256];
    cJSON *tree = cJSON_Parse(other);
    enum cjson_agree rc = cjson_compare(mqd_line, strlen(mqd_line), tree, why, sizeof(why));
    cJSON_Delete(tree);
    return rc;
}

/* the check would see a difference in any field it compares */
static void every_difference_is_seen(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {SEND("t", "m"), SEND("u", "m")},
        {SEND("t", "m"), SEND("t", "n")},
        {SEND("t", "m\\u00e9"), SEND("t", "m\\u00e8")},
        {SEND("t", "m"),
         "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"one\"}"},
        {SEND("t", "m"), "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\","
                         "\"cache\":false}"},
        {SEND("t", "m"), "{\"command\":\"send\",\"topic\":\"t\",\"msg\":1,\"delivery\":\"all\"}"},
        {SEND("t", "m"),
         "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\",\"x\":1}"},
        {SEND("t", "m"), "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\"}"},
        {SEND("t", "m"), "[\"t\",\"m\"]"},
        {SEND("t", "m"), "{"},
        {"{\"command\":\"unsubscribe\",\"topic\":\"t\"}",
         "{\"command\":\"subscribe\",\"topic\":\"t\"}"},
        {"{\"command\":\"subscribe\",\"topic\":\"t\"}",
         "{\"command\":\"subscribe\",\"topic\":\"T\"}"},
        {"{\"command\":\"subscribe\",\"topic\":\"t\"}",
         "{\"Command\":\"subscribe\",\"topic\":\"t\"}"},
        {SUB_LAST_SEEN("5"), SUB_LAST_SEEN("6")},
        {SUB_LAST_SEEN("5"), "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":\"5\"}"},
        {SUB_LAST_SEEN("99999999999999999999"), SUB_LAST_SEEN("-99999999999999999999")},
        {SUB_LAST_SEEN("5"), "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":true}"},
        {"{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}",
         "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":true}"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (compared_with(pairs[i][0], pairs[i][1]) != CJSON_DISAGREES)
            fail_msg("no difference seen between %s and %s", pairs[i][0], pairs[i][1]);
    /* the one blind spot, on purpose: a msg holding U+0000 */
    assert_int_equal(compared_with(SEND("t", "m\\u0000x"), SEND("t", "n")), CJSON_AGREES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_commands_agree),
        cmocka_unit_test(every_escape_agrees),
        cmocka_unit_test(surrogate_pairs_and_raw_utf8_agree),
        cmocka_unit_test(escaped_keys_and_values_agree),
        cmocka_unit_test(whitespace_agrees),
        cmocka_unit_test(integers_of_any_size_agree),
        cmocka_unit_test(long_topics_and_messages_agree),
        cmocka_unit_test(a_msg_holding_u0000_is_skipped),
        cmocka_unit_test(refused_lines_are_not_compared),
        cmocka_unit_test(every_difference_is_seen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
