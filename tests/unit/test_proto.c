#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fail_alloc.h"
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

static void checks_utf8_then_json_then_schema(void **state)
{
    (void)state;
    assert_int_equal(status_of("{\"command\":\"x\xff\"}"), PROTO_BAD_UTF8);
    assert_int_equal(status_of("{\xff,}"), PROTO_BAD_UTF8);
    assert_int_equal(status_of("{\"command\":\"nope\",}"), PROTO_BAD_JSON);
    assert_int_equal(status_of("{\"command\":\"nope\"}"), PROTO_MALFORMED);
}

static void parses_subscribe_with_defaults_and_options(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(parse("{\"command\":\"subscribe\",\"topic\":\"news\"}", &req), PROTO_OK);
    assert_int_equal(req.command, PROTO_SUBSCRIBE);
    assert_int_equal(req.topic_len, 4);
    assert_memory_equal(req.topic, "news", 4);
    assert_int_equal(req.last_seen, -1);
    assert_true(req.cache);
    proto_request_release(&req);
    assert_int_equal(
        parse("{\"cache\":false,\"last_seen\":42,\"topic\":\"\",\"command\":\"subscribe\"}", &req),
        PROTO_OK);
    assert_int_equal(req.last_seen, 42);
    assert_false(req.cache);
    assert_int_equal(req.topic_len, 0);
    proto_request_release(&req);
}

static void clamps_last_seen_to_64_bits(void **state)
{
    (void)state;
    struct {
        const char *digits;
        int64_t want;
    } cases[] = {
        {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", INT64_MAX},
        {"99999999999999999999999", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"-9223372036854775809", INT64_MIN},
        {"-99999999999999999999", INT64_MIN},
        {"-0", 0},
        {"0", 0},
        {"-1", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":%s}",
                 cases[i].digits);
        struct proto_request req;
        assert_int_equal(parse(line, &req), PROTO_OK);
        assert_true(req.last_seen == cases[i].want);
        proto_request_release(&req);
    }
}

static void parses_send_keeping_the_raw_object(void **state)
{
    (void)state;
    const char *line =
        " {\"command\":\"send\",\"topic\":\"t\",\"msg\":\"a\\u0000\",\"delivery\":\"one\","
        "\"cache\":false} ";
    struct proto_request req;
    assert_int_equal(parse(line, &req), PROTO_OK);
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

static void refuses_every_schema_violation(void **state)
{
    (void)state;
    const char *bad[] = {
        "[]",
        "1",
        "\"subscribe\"",
        "null",
        "{}",
        "{\"topic\":\"t\"}",
        "{\"command\":\"Subscribe\",\"topic\":\"t\"}",
        "{\"command\":1,\"topic\":\"t\"}",
        "{\"command\":\"subscribe\"}",
        "{\"command\":\"unsubscribe\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"delivery\":\"all\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"x\":1}",
        "{\"command\":\"unsubscribe\",\"topic\":\"t\",\"cache\":true}",
        "{\"command\":\"unsubscribe\",\"topic\":\"t\",\"last_seen\":1}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\",\"last_seen\":1}",
        "{\"command\":\"subscribe\",\"topic\":1}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":true}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":1.5}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":1.0}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":1e2}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"last_seen\":\"123\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":1}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":1,\"delivery\":\"all\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"any\"}",
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":1}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"topic\":\"t\"}",
        "{\"command\":\"subscribe\",\"topic\":\"t\",\"comm\\u0061nd\":\"subscribe\"}",
        "{\"command\":\"subscribe\",\"topic\":\"a\\u0000\"}",
        "{\"command\":\"subscribe\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,"
        "\"topic\":\"t\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (status_of(bad[i]) != PROTO_MALFORMED)
            fail_msg("not malformed: %s", bad[i]);
    }
}

static void decodes_escaped_topics_short_and_long(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(parse("{\"command\":\"unsubscribe\",\"topic\":\"\\u0041\\u00e9\"}", &req),
                     PROTO_OK);
    assert_int_equal(req.topic_len, 3);
    assert_memory_equal(req.topic, "A\xc3\xa9", 3);
    proto_request_release(&req);

    char line[512] = "{\"command\":\"unsubscribe\",\"topic\":\"";
    for (int i = 0; i < 40; i++)
        strcat(line, "\\u0042");
    strcat(line, "\"}");
    assert_int_equal(parse(line, &req), PROTO_OK);
    assert_int_equal(req.topic_len, 40);
    assert_non_null(req.topic_heap);
    proto_request_release(&req);
}

static void a_long_escaped_topic_out_of_memory(void **state)
{
    (void)state;
    char line[512] = "{\"command\":\"unsubscribe\",\"topic\":\"";
    for (int i = 0; i < 40; i++)
        strcat(line, "\\u0042");
    strcat(line, "\"}");
    struct proto_request req;
    fail_alloc_after(0);
    assert_int_equal(parse(line, &req), PROTO_NO_MEMORY);
    assert_true(fail_alloc_tripped());
    strcpy(line + strlen(line) - 2, "\\u0000\"}");
    assert_int_equal(parse(line, &req), PROTO_MALFORMED); /* heap copy freed */
}

static void replies_are_the_protocol_lines(void **state)
{
    (void)state;
    struct {
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
        buf_unref(buf_ref(b)); /* static: never freed */
    }
    assert_int_equal(proto_status_reply(PROTO_BAD_JSON), PROTO_REPLY_BAD_JSON);
    assert_int_equal(proto_status_reply(PROTO_NO_MEMORY), PROTO_REPLY_NO_MEMORY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_utf8_then_json_then_schema),
        cmocka_unit_test(parses_subscribe_with_defaults_and_options),
        cmocka_unit_test(clamps_last_seen_to_64_bits),
        cmocka_unit_test(parses_send_keeping_the_raw_object),
        cmocka_unit_test(refuses_every_schema_violation),
        cmocka_unit_test(decodes_escaped_topics_short_and_long),
        cmocka_unit_test(a_long_escaped_topic_out_of_memory),
        cmocka_unit_test(replies_are_the_protocol_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
