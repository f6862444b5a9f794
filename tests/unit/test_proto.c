#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
#include "mqd/proto.h"

static enum proto_status parse(const char *line, struct proto_request *req)
{
    return proto_parse(line, strlen(line), req);
}

static enum proto_status status_of(const char *line)
{
    struct proto_request req;
    enum proto_status st = parse(line, &req);
    if (st == PROTO_OK)
        proto_request_release(&req);
    return st;
}

static void assert_all_status(const char *const *lines, size_t n, enum proto_status want)
{
    for (size_t i = 0; i < n; i++) {
        enum proto_status st = status_of(lines[i]);
        if (st != want)
            fail_msg("status %d, not %d: %s", st, want, lines[i]);
    }
}

#define ASSERT_ALL_STATUS(lines, want)                                                             \
    assert_all_status((lines), sizeof(lines) / sizeof((lines)[0]), (want))

/* long_escaped_topic: a subscribe whose topic is `n` escaped 'B's (6n raw
 * bytes) followed by `tail`, into `line`. */
static const char *long_escaped_topic(char *line, size_t cap, int n, const char *tail)
{
    size_t at = (size_t)snprintf(line, cap, "{\"command\":\"subscribe\",\"topic\":\"");
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(line + at, cap - at, "\\u0042");
    snprintf(line + at, cap - at, "%s\"}", tail);
    return line;
}

static void checks_utf8_first(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":\"subscribe\",\"topic\":\"x\xff\"}",
        "{\xff,}",                                       /* bad JSON too */
        "{\"command\":\"nope\",\"x\":\"\xed\xa0\x80\"}", /* malformed too */
        "{\"command\":\"subscribe\",\"topic\":\"\xc0\xaf\"}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_BAD_UTF8);
}

static void checks_json_second(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":\"nope\",}", /* malformed too */
        "{\"command\":\"subscribe\",\"topic\":\"t\"} x",
        "{\"command\":\"subscribe\",\"topic\":\"\\ud800\"}", /* unpaired surrogate */
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"a\tb\",\"delivery\":\"all\"}",
        "\v{\"command\":\"subscribe\",\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":NaN}",
        "{\"command\":\"subscribe\",\"topic\":'t'}",
        "",
    };
    ASSERT_ALL_STATUS(lines, PROTO_BAD_JSON);
}

static void parses_subscribe_with_defaults(void **state)
{
    (void)state;
    const char *line = "{\"command\":\"subscribe\",\"topic\":\"news\"}";
    struct proto_request req;
    assert_int_equal(parse(line, &req), PROTO_OK);
    assert_int_equal(req.command, PROTO_SUBSCRIBE);
    assert_int_equal(req.topic_len, 4);
    assert_ptr_equal(req.topic, strstr(line, "news")); /* unescaped: points into the line */
    assert_int_equal(req.last_seen, -1);
    assert_true(req.cache);
    proto_request_release(&req);
}

static void parses_subscribe_options_in_any_order(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(
        parse("{\"cache\":false,\"last_seen\":42,\"topic\":\"\",\"command\":\"subscribe\"}", &req),
        PROTO_OK);
    assert_int_equal(req.command, PROTO_SUBSCRIBE);
    assert_int_equal(req.last_seen, 42);
    assert_false(req.cache);
    assert_int_equal(req.topic_len, 0);
    proto_request_release(&req);
    assert_int_equal(
        parse("{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":true,\"last_seen\":-1}", &req),
        PROTO_OK);
    assert_true(req.cache);
    assert_int_equal(req.last_seen, -1);
    proto_request_release(&req);
}

static void parses_unsubscribe(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(parse(" {\"topic\":\"a b\",\"command\":\"unsubscribe\"}\t", &req), PROTO_OK);
    assert_int_equal(req.command, PROTO_UNSUBSCRIBE);
    assert_int_equal(req.topic_len, 3);
    assert_memory_equal(req.topic, "a b", 3);
    proto_request_release(&req);
}

static void clamps_last_seen_to_64_bits(void **state)
{
    (void)state;
    static const struct {
        const char *digits;
        int64_t want;
    } cases[] = {
        {"9223372036854775806", INT64_MAX - 1},
        {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", INT64_MAX},
        {"18446744073709551616", INT64_MAX},
        {"99999999999999999999999999999999999999", INT64_MAX},
        {"-9223372036854775807", INT64_MIN + 1},
        {"-9223372036854775808", INT64_MIN},
        {"-9223372036854775809", INT64_MIN},
        {"-99999999999999999999999999999999999999", INT64_MIN},
        {"-0", 0},
        {"0", 0},
        {"-1", -1},
        {"-2", -2},
        {"123", 123},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":%s}",
                 cases[i].digits);
        struct proto_request req;
        assert_int_equal(parse(line, &req), PROTO_OK);
        if (req.last_seen != cases[i].want)
            fail_msg("last_seen %s read as %lld", cases[i].digits, (long long)req.last_seen);
        proto_request_release(&req);
    }
}

static void parses_send_keeping_the_raw_object(void **state)
{
    (void)state;
    const char *line = " {\"command\":\"send\",\"topic\":\"t\",\"msg\":\"a\\u0000\\ud83d\\ude00\","
                       "\"delivery\":\"one\",\"cache\":false} ";
    struct proto_request req;
    assert_int_equal(parse(line, &req), PROTO_OK); /* U+0000 is fine in msg */
    assert_int_equal(req.command, PROTO_SEND);
    assert_true(req.one);
    assert_false(req.cache);
    assert_ptr_equal(req.object, line + 1);
    assert_int_equal(req.object_len, strlen(line) - 2);
    proto_request_release(&req);
    assert_int_equal(
        parse("{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"\",\"delivery\":\"all\"}", &req),
        PROTO_OK);
    assert_false(req.one);
    assert_true(req.cache);
    proto_request_release(&req);
}

static void names_and_values_may_be_spelled_with_escapes(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(parse("{\"comm\\u0061nd\":\"s\\u0065nd\",\"top\\u0069c\":\"t\",\"msg\":\"m\","
                           "\"delivery\":\"\\u006fne\"}",
                           &req),
                     PROTO_OK);
    assert_int_equal(req.command, PROTO_SEND);
    assert_true(req.one);
    proto_request_release(&req);
}

static void refuses_missing_keys(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{}",
        "{\"topic\":\"t\"}",
        "{\"command\":\"subscribe\"}",
        "{\"command\":\"unsubscribe\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"delivery\":\"all\"}",
        "{\"command\":\"send\",\"msg\":\"m\",\"delivery\":\"all\"}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_MALFORMED);
}

static void refuses_extra_keys(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"x\":1}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"Topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"msg\":\"m\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"delivery\":\"all\"}",
        "{\"command\":\"unsubscribe\",\"topic\":\"t\",\"cache\":true}",
        "{\"command\":\"unsubscribe\",\"topic\":\"t\",\"last_seen\":1}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\",\"last_seen\":1}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\",\"index\":1}",
        "{\"command\":\"subscribe\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,"
        "\"topic\":\"t\"}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_MALFORMED);
}

static void refuses_duplicate_keys_however_spelled(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"topic\":\"u\"}",
        "{\"command\":\"subscribe\",\"command\":\"subscribe\",\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"comm\\u0061nd\":\"subscribe\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":true,\"cache\":false}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":1,\"last\\u005fseen\":2}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_MALFORMED);
}

static void refuses_unknown_commands_and_non_objects(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "[]",
        "1",
        "\"subscribe\"",
        "null",
        "true",
        "[{\"command\":\"subscribe\",\"topic\":\"t\"}]",
        "{\"command\":\"Subscribe\",\"topic\":\"t\"}",
        "{\"command\":\"publish\",\"topic\":\"t\"}",
        "{\"command\":\"subscribe \",\"topic\":\"t\"}",
        "{\"command\":\"\",\"topic\":\"t\"}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_MALFORMED);
}

static void refuses_wrong_types(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"command\":1,\"topic\":\"t\"}",
        "{\"command\":[\"subscribe\"],\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":1}",
        "{\"command\":\"subscribe\",\"topic\":null}",
        "{\"command\":\"subscribe\",\"topic\":[\"t\"]}",
        "{\"command\":\"subscribe\",\"topic\":{}}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":1}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":\"true\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":null}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":1,\"delivery\":\"all\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":{\"a\":1},\"delivery\":\"all\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"any\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"ALL\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"one \"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":1}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":true}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\",\"cache\":0}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_MALFORMED);
}

static void last_seen_must_be_an_integer_literal(void **state)
{
    (void)state;
    static const char *const values[] = {"true", "false", "null", "1.5",     "1.0", "-1.0",
                                         "1e2",  "1E2",   "0e0",  "\"123\"", "[1]", "{}"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":%s}",
                 values[i]);
        if (status_of(line) != PROTO_MALFORMED)
            fail_msg("last_seen %s accepted", values[i]);
    }
}

static void refuses_u0000_in_a_topic(void **state)
{
    (void)state;
    char line[1024];
    static const char *const lines[] = {
        "{\"command\":\"subscribe\",\"topic\":\"\\u0000\"}",
        "{\"command\":\"subscribe\",\"topic\":\"a\\u0000\"}",
        "{\"command\":\"unsubscribe\",\"topic\":\"\\u0000b\"}",
        "{\"command\":\"send\",\"topic\":\"a\\u0000b\",\"msg\":\"m\",\"delivery\":\"all\"}",
    };
    ASSERT_ALL_STATUS(lines, PROTO_MALFORMED);
    /* the heap copy of a long topic is freed on the way out (LeakSanitizer) */
    assert_int_equal(status_of(long_escaped_topic(line, sizeof(line), 40, "\\u0000")),
                     PROTO_MALFORMED);
}

static void parses_auth_decoding_user_and_password(void **state)
{
    (void)state;
    struct proto_request req;
    fail_alloc_reset();
    assert_int_equal(
        parse("{\"command\":\"auth\",\"user\":\"alice\",\"password\":\"s3cret\"}", &req), PROTO_OK);
    assert_int_equal(req.command, PROTO_AUTH);
    assert_int_equal(req.user_len, 5);
    assert_memory_equal(req.user, "alice", 5);
    assert_int_equal(req.password_len, 6);
    assert_memory_equal(req.password, "s3cret", 6);
    assert_int_equal(fail_alloc_calls(), 0); /* unescaped: in place */
    proto_request_release(&req);
    /* escapes decoded; a password may hold U+0000, a user may not */
    assert_int_equal(
        parse("{\"password\":\"a\\u0000\\\"b\",\"user\":\"\\u00e9\",\"command\":\"auth\"}", &req),
        PROTO_OK);
    assert_int_equal(req.user_len, 2);
    assert_memory_equal(req.user, "\xc3\xa9", 2);
    assert_int_equal(req.password_len, 4);
    assert_memory_equal(req.password, "a\0\"b", 4);
    proto_request_release(&req);
    static const char *const malformed[] = {
        "{\"command\":\"auth\",\"user\":\"a\\u0000\",\"password\":\"p\"}",
        "{\"command\":\"auth\",\"user\":\"a\"}",
        "{\"command\":\"auth\",\"password\":\"p\"}",
        "{\"command\":\"auth\",\"user\":\"a\",\"password\":1}",
        "{\"command\":\"auth\",\"user\":null,\"password\":\"p\"}",
        "{\"command\":\"auth\",\"user\":\"a\",\"password\":\"p\",\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"user\":\"a\"}",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        if (parse(malformed[i], &req) != PROTO_MALFORMED)
            fail_msg("not refused: %s", malformed[i]);
    }
    /* each decoding allocation failing is out of memory, with nothing held */
    size_t before = mqd_allocated();
    for (size_t n = 0; n < 2; n++) {
        fail_alloc_after(n);
        assert_int_equal(
            parse("{\"command\":\"auth\",\"user\":\"\\u0061\",\"password\":\"\\u0062\"}", &req),
            PROTO_NO_MEMORY);
        fail_alloc_reset();
        assert_int_equal(mqd_allocated(), before);
    }
}

static void decodes_an_escaped_topic(void **state)
{
    (void)state;
    struct proto_request req;
    fail_alloc_reset();
    assert_int_equal(
        parse("{\"command\":\"unsubscribe\",\"topic\":\"\\u0041\\u00e9\\/\\n\"}", &req), PROTO_OK);
    assert_int_equal(req.topic_len, 5);
    assert_memory_equal(req.topic, "A\xc3\xa9/\n", 5);
    assert_ptr_equal(req.topic, req.topic_inline);
    assert_int_equal(fail_alloc_calls(), 0);
    proto_request_release(&req);
}

static void an_escaped_topic_longer_than_the_inline_room_goes_to_the_heap(void **state)
{
    (void)state;
    char line[1024];
    struct proto_request req;
    /* 10 escapes and 4 plain bytes: 64 raw bytes fit inline */
    fail_alloc_reset();
    assert_int_equal(parse(long_escaped_topic(line, sizeof(line), 10, "BBBB"), &req), PROTO_OK);
    assert_ptr_equal(req.topic, req.topic_inline);
    assert_int_equal(req.topic_len, 14);
    assert_int_equal(fail_alloc_calls(), 0);
    proto_request_release(&req);
    /* 65 raw bytes do not */
    assert_int_equal(parse(long_escaped_topic(line, sizeof(line), 10, "BBBBB"), &req), PROTO_OK);
    assert_ptr_equal(req.topic, req.topic_heap);
    assert_int_equal(req.topic_len, 15);
    assert_memory_equal(req.topic, "BBBBBBBBBBBBBBB", 15);
    proto_request_release(&req);
    assert_null(req.topic_heap);
}

static void a_long_unescaped_topic_is_not_copied(void **state)
{
    (void)state;
    char line[1024], topic[301];
    memset(topic, 'x', 300);
    topic[300] = '\0';
    snprintf(line, sizeof(line), "{\"command\":\"subscribe\",\"topic\":\"%s\"}", topic);
    struct proto_request req;
    fail_alloc_reset();
    assert_int_equal(parse(line, &req), PROTO_OK);
    assert_int_equal(fail_alloc_calls(), 0);
    assert_ptr_equal(req.topic, strstr(line, topic));
    assert_int_equal(req.topic_len, 300);
    proto_request_release(&req);
}

static void the_heap_topic_out_of_memory_is_no_memory(void **state)
{
    (void)state;
    char line[1024];
    struct proto_request req;
    fail_alloc_after(0);
    assert_int_equal(parse(long_escaped_topic(line, sizeof(line), 40, ""), &req), PROTO_NO_MEMORY);
    assert_true(fail_alloc_tripped());
    assert_int_equal(fail_alloc_calls(), 1);
    fail_alloc_reset();
    assert_int_equal(parse(line, &req), PROTO_OK);
    assert_int_equal(req.topic_len, 40);
    proto_request_release(&req);
}

static void replies_are_the_protocol_lines(void **state)
{
    (void)state;
    static const struct {
        enum proto_reply r;
        const char *text;
    } cases[] = {
        {PROTO_REPLY_SUCCESS, "{\"success\": true}\r\n"},
        {PROTO_REPLY_BAD_UTF8,
         "{\"success\": false, \"reason\": \"Could not decode input as UTF-8\"}\r\n"},
        {PROTO_REPLY_BAD_JSON, "{\"success\": false, \"reason\": \"Could not parse json\"}\r\n"},
        {PROTO_REPLY_MALFORMED, "{\"success\": false, \"reason\": \"Malformed json message\"}\r\n"},
        {PROTO_REPLY_NO_MEMORY, "{\"success\": false, \"reason\": \"Out of memory\"}\r\n"},
        {PROTO_REPLY_LINE_TOO_LONG, "{\"success\": false, \"reason\": \"Line too long\"}\r\n"},
        {PROTO_REPLY_TOO_MANY_CONNECTIONS,
         "{\"success\": false, \"reason\": \"Too many connections\"}\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf *b = proto_reply(cases[i].r);
        assert_int_equal(b->len, strlen(cases[i].text));
        assert_memory_equal(b->data, cases[i].text, b->len);
        assert_int_equal(b->refs, BUF_REFS_STATIC);
        buf_unref(buf_ref(b));
        buf_unref(b); /* static: never freed */
        assert_int_equal(b->refs, BUF_REFS_STATIC);
    }
}

static void every_status_has_its_reply(void **state)
{
    (void)state;
    assert_int_equal(proto_status_reply(PROTO_OK), PROTO_REPLY_SUCCESS);
    assert_int_equal(proto_status_reply(PROTO_BAD_UTF8), PROTO_REPLY_BAD_UTF8);
    assert_int_equal(proto_status_reply(PROTO_BAD_JSON), PROTO_REPLY_BAD_JSON);
    assert_int_equal(proto_status_reply(PROTO_MALFORMED), PROTO_REPLY_MALFORMED);
    assert_int_equal(proto_status_reply(PROTO_NO_MEMORY), PROTO_REPLY_NO_MEMORY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_utf8_first),
        cmocka_unit_test(checks_json_second),
        cmocka_unit_test(parses_subscribe_with_defaults),
        cmocka_unit_test(parses_subscribe_options_in_any_order),
        cmocka_unit_test(parses_unsubscribe),
        cmocka_unit_test(clamps_last_seen_to_64_bits),
        cmocka_unit_test(parses_send_keeping_the_raw_object),
        cmocka_unit_test(names_and_values_may_be_spelled_with_escapes),
        cmocka_unit_test(refuses_missing_keys),
        cmocka_unit_test(refuses_extra_keys),
        cmocka_unit_test(refuses_duplicate_keys_however_spelled),
        cmocka_unit_test(refuses_unknown_commands_and_non_objects),
        cmocka_unit_test(refuses_wrong_types),
        cmocka_unit_test(last_seen_must_be_an_integer_literal),
        cmocka_unit_test(refuses_u0000_in_a_topic),
        cmocka_unit_test(parses_auth_decoding_user_and_password),
        cmocka_unit_test(decodes_an_escaped_topic),
        cmocka_unit_test(an_escaped_topic_longer_than_the_inline_room_goes_to_the_heap),
        cmocka_unit_test(a_long_unescaped_topic_is_not_copied),
        cmocka_unit_test(the_heap_topic_out_of_memory_is_no_memory),
        cmocka_unit_test(replies_are_the_protocol_lines),
        cmocka_unit_test(every_status_has_its_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
