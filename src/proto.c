#include "mqd/proto.h"

#include "mqd/alloc.h"
#include "mqd/json.h"
#include "mqd/utf8.h"

#include <string.h>

enum key {
    KEY_COMMAND = 1 << 0,
    KEY_TOPIC = 1 << 1,
    KEY_MSG = 1 << 2,
    KEY_DELIVERY = 1 << 3,
    KEY_LAST_SEEN = 1 << 4,
    KEY_CACHE = 1 << 5,
    KEY_USER = 1 << 6,
    KEY_PASSWORD = 1 << 7,
};

/* a name and its length, for json_text_is */
#define NAME(text) text, sizeof(text) - 1

static const struct {
    const char *name;
    size_t len;
    enum key key;
} known_keys[] = {
    {NAME("command"), KEY_COMMAND},
    {NAME("topic"), KEY_TOPIC},
    {NAME("msg"), KEY_MSG},
    {NAME("delivery"), KEY_DELIVERY},
    {NAME("last_seen"), KEY_LAST_SEEN},
    {NAME("cache"), KEY_CACHE},
    {NAME("user"), KEY_USER},
    {NAME("password"), KEY_PASSWORD},
};

static const struct {
    const char *name;
    size_t len;
    enum proto_command command;
    unsigned required, optional;
} schemas[] = {
    {NAME("subscribe"), PROTO_SUBSCRIBE, KEY_COMMAND | KEY_TOPIC, KEY_LAST_SEEN | KEY_CACHE},
    {NAME("unsubscribe"), PROTO_UNSUBSCRIBE, KEY_COMMAND | KEY_TOPIC, 0},
    {NAME("send"), PROTO_SEND, KEY_COMMAND | KEY_TOPIC | KEY_MSG | KEY_DELIVERY, KEY_CACHE},
    {NAME("auth"), PROTO_AUTH, KEY_COMMAND | KEY_USER | KEY_PASSWORD, 0},
};

static enum key key_of_member(const struct json_member *m)
{
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
        if (json_text_is(m->key, m->key_escaped, known_keys[i].name, known_keys[i].len))
            return known_keys[i].key;
    }
    return 0;
}

/* parse_int64_clamped: a JSON integer literal of any length, clamped to the
 * 64-bit range (PROTOCOL.md: beyond it acts like the nearest 64-bit value). */
static int64_t parse_int64_clamped(struct json_span digits)
{
    const char *p = digits.start, *end = digits.start + digits.len;
    bool negative = *p == '-';
    if (negative)
        p++;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; p < end; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (limit - d) / 10)
            return negative ? INT64_MIN : INT64_MAX;
        v = v * 10 + d;
    }
    if (!negative)
        return (int64_t)v;
    return v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
}

static bool is_boolean(const struct json_member *m)
{
    return m->type == JSON_TRUE || m->type == JSON_FALSE;
}

/* set_topic: decodes the topic into the request; a decoded NUL is refused
 * because the topic could not be told apart from a shorter one. */
static enum proto_status set_topic(struct proto_request *req, const struct json_member *m)
{
    if (!m->escaped) {
        req->topic = m->value.start;
        req->topic_len = m->value.len;
        return PROTO_OK;
    }
    char *out = req->topic_inline;
    if (m->value.len > sizeof(req->topic_inline)) {
        req->topic_heap = mqd_malloc(m->value.len);
        if (!req->topic_heap)
            return PROTO_NO_MEMORY;
        out = req->topic_heap;
    }
    req->topic = out;
    req->topic_len = json_decode_string(m->value.start, m->value.len, out);
    if (memchr(out, '\0', req->topic_len)) {
        proto_request_release(req);
        return PROTO_MALFORMED;
    }
    return PROTO_OK;
}

/* decode_text: a string member's decoded value: in place when it has no
 * escape, else in a new block (*heap, NULL when none was needed) */
static enum proto_status decode_text(const struct json_member *m, const char **out, size_t *len,
                                     char **heap)
{
    if (!m->escaped) {
        *out = m->value.start;
        *len = m->value.len;
        return PROTO_OK;
    }
    *heap = mqd_malloc(m->value.len ? m->value.len : 1);
    if (!*heap)
        return PROTO_NO_MEMORY;
    *out = *heap;
    *len = json_decode_string(m->value.start, m->value.len, *heap);
    return PROTO_OK;
}

/* set_credentials: an auth's user and password, decoded; a user name with
 * a NUL is refused as a topic with one is */
static enum proto_status set_credentials(struct proto_request *req, const struct json_member *user,
                                         const struct json_member *password)
{
    enum proto_status status = decode_text(user, &req->user, &req->user_len, &req->user_heap);
    if (status == PROTO_OK)
        status = decode_text(password, &req->password, &req->password_len, &req->password_heap);
    if (status == PROTO_OK && memchr(req->user, '\0', req->user_len))
        status = PROTO_MALFORMED;
    if (status != PROTO_OK)
        proto_request_release(req);
    return status;
}

/* apply_member: checks one member's type and stores its value. */
static bool apply_member(struct proto_request *req, enum key key, const struct json_member *m)
{
    switch (key) {
    case KEY_COMMAND:
    case KEY_TOPIC:
    case KEY_MSG:
    case KEY_USER:
    case KEY_PASSWORD: return m->type == JSON_STRING;
    case KEY_DELIVERY:
        if (m->type != JSON_STRING)
            return false;
        req->one = json_text_is(m->value, m->escaped, NAME("one"));
        return req->one || json_text_is(m->value, m->escaped, NAME("all"));
    case KEY_LAST_SEEN:
        if (m->type != JSON_NUMBER || !m->integer)
            return false;
        req->last_seen = parse_int64_clamped(m->value);
        return true;
    case KEY_CACHE:
        if (!is_boolean(m))
            return false;
        req->cache = m->type == JSON_TRUE;
        return true;
    }
    return false;
}

static int find_schema(const struct json_member *command)
{
    if (command->type != JSON_STRING)
        return -1;
    for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
        if (json_text_is(command->value, command->escaped, schemas[i].name, schemas[i].len))
            return (int)i;
    }
    return -1;
}

static enum proto_status check_schema(const struct json_value *v, struct proto_request *req)
{
    if (v->type != JSON_OBJECT || v->nmembers > JSON_MAX_MEMBERS)
        return PROTO_MALFORMED;
    unsigned seen = 0;
    enum key keys[JSON_MAX_MEMBERS];
    const struct json_member *command = NULL, *topic = NULL, *user = NULL, *password = NULL;
    for (size_t i = 0; i < v->nmembers; i++) {
        keys[i] = key_of_member(&v->members[i]);
        if (!keys[i] || (seen & keys[i]))
            return PROTO_MALFORMED;
        seen |= keys[i];
        if (keys[i] == KEY_COMMAND)
            command = &v->members[i];
        if (keys[i] == KEY_TOPIC)
            topic = &v->members[i];
        if (keys[i] == KEY_USER)
            user = &v->members[i];
        if (keys[i] == KEY_PASSWORD)
            password = &v->members[i];
    }
    int s = command ? find_schema(command) : -1;
    if (s < 0 || (seen & schemas[s].required) != schemas[s].required ||
        (seen & ~(schemas[s].required | schemas[s].optional)) != 0)
        return PROTO_MALFORMED;
    req->command = schemas[s].command;
    for (size_t i = 0; i < v->nmembers; i++) {
        if (!apply_member(req, keys[i], &v->members[i]))
            return PROTO_MALFORMED;
    }
    if (req->command == PROTO_AUTH)
        return set_credentials(req, user, password);
    return set_topic(req, topic);
}

enum proto_status proto_parse(const char *line, size_t len, struct proto_request *req)
{
    if (!utf8_valid(line, len))
        return PROTO_BAD_UTF8;
    struct json_value v;
    if (!json_scan(line, len, &v))
        return PROTO_BAD_JSON;
    req->topic_heap = NULL;
    req->topic = NULL;
    req->topic_len = 0;
    req->user_heap = req->password_heap = NULL;
    req->last_seen = -1;
    req->cache = true;
    req->one = false;
    req->object = v.raw.start;
    req->object_len = v.raw.len;
    return check_schema(&v, req);
}

void proto_request_release(struct proto_request *req)
{
    mqd_free(req->topic_heap);
    req->topic_heap = NULL;
    mqd_free(req->user_heap);
    req->user_heap = NULL;
    if (req->password_heap) {
        explicit_bzero(req->password_heap, req->password_len);
        mqd_free(req->password_heap);
        req->password_heap = NULL;
    }
}

#define REASON_BAD_UTF8 "Could not decode input as UTF-8"
#define REASON_BAD_JSON "Could not parse json"
#define REASON_MALFORMED "Malformed json message"
#define REASON_NO_MEMORY "Out of memory"
#define REASON_LINE_TOO_LONG "Line too long"
#define REASON_TOO_MANY_CONNECTIONS "Too many connections"
#define REASON_TOPIC_TOO_LONG "Topic too long"
#define REASON_TOO_MANY_TOPICS "Too many topics"
#define REASON_TOO_MANY_SUBSCRIPTIONS "Too many subscriptions"
#define REASON_NOT_PERSISTED "Could not persist"
#define REASON_AUTH_REQUIRED "Authentication required"
#define REASON_AUTH_FAILED "Authentication failed"
#define REASON_PERMISSION_DENIED "Permission denied"
#define REASON_AUTH_NOT_ENABLED "Authentication not enabled"
#define REPLY_FAILURE(reason) "{\"success\": false, \"reason\": \"" reason "\"}\r\n"

/* never written: static bufs ignore ref and unref */
static struct buf replies[] = {
    [PROTO_REPLY_SUCCESS] = BUF_STATIC("{\"success\": true}\r\n"),
    [PROTO_REPLY_BAD_UTF8] = BUF_STATIC(REPLY_FAILURE(REASON_BAD_UTF8)),
    [PROTO_REPLY_BAD_JSON] = BUF_STATIC(REPLY_FAILURE(REASON_BAD_JSON)),
    [PROTO_REPLY_MALFORMED] = BUF_STATIC(REPLY_FAILURE(REASON_MALFORMED)),
    [PROTO_REPLY_NO_MEMORY] = BUF_STATIC(REPLY_FAILURE(REASON_NO_MEMORY)),
    [PROTO_REPLY_LINE_TOO_LONG] = BUF_STATIC(REPLY_FAILURE(REASON_LINE_TOO_LONG)),
    [PROTO_REPLY_TOO_MANY_CONNECTIONS] = BUF_STATIC(REPLY_FAILURE(REASON_TOO_MANY_CONNECTIONS)),
    [PROTO_REPLY_TOPIC_TOO_LONG] = BUF_STATIC(REPLY_FAILURE(REASON_TOPIC_TOO_LONG)),
    [PROTO_REPLY_TOO_MANY_TOPICS] = BUF_STATIC(REPLY_FAILURE(REASON_TOO_MANY_TOPICS)),
    [PROTO_REPLY_TOO_MANY_SUBSCRIPTIONS] = BUF_STATIC(REPLY_FAILURE(REASON_TOO_MANY_SUBSCRIPTIONS)),
    [PROTO_REPLY_NOT_PERSISTED] = BUF_STATIC(REPLY_FAILURE(REASON_NOT_PERSISTED)),
    [PROTO_REPLY_AUTH_REQUIRED] = BUF_STATIC(REPLY_FAILURE(REASON_AUTH_REQUIRED)),
    [PROTO_REPLY_AUTH_FAILED] = BUF_STATIC(REPLY_FAILURE(REASON_AUTH_FAILED)),
    [PROTO_REPLY_PERMISSION_DENIED] = BUF_STATIC(REPLY_FAILURE(REASON_PERMISSION_DENIED)),
    [PROTO_REPLY_AUTH_NOT_ENABLED] = BUF_STATIC(REPLY_FAILURE(REASON_AUTH_NOT_ENABLED)),
};

static const char *const reasons[] = {
    [PROTO_REPLY_SUCCESS] = "success",
    [PROTO_REPLY_BAD_UTF8] = REASON_BAD_UTF8,
    [PROTO_REPLY_BAD_JSON] = REASON_BAD_JSON,
    [PROTO_REPLY_MALFORMED] = REASON_MALFORMED,
    [PROTO_REPLY_NO_MEMORY] = REASON_NO_MEMORY,
    [PROTO_REPLY_LINE_TOO_LONG] = REASON_LINE_TOO_LONG,
    [PROTO_REPLY_TOO_MANY_CONNECTIONS] = REASON_TOO_MANY_CONNECTIONS,
    [PROTO_REPLY_TOPIC_TOO_LONG] = REASON_TOPIC_TOO_LONG,
    [PROTO_REPLY_TOO_MANY_TOPICS] = REASON_TOO_MANY_TOPICS,
    [PROTO_REPLY_TOO_MANY_SUBSCRIPTIONS] = REASON_TOO_MANY_SUBSCRIPTIONS,
    [PROTO_REPLY_NOT_PERSISTED] = REASON_NOT_PERSISTED,
    [PROTO_REPLY_AUTH_REQUIRED] = REASON_AUTH_REQUIRED,
    [PROTO_REPLY_AUTH_FAILED] = REASON_AUTH_FAILED,
    [PROTO_REPLY_PERMISSION_DENIED] = REASON_PERMISSION_DENIED,
    [PROTO_REPLY_AUTH_NOT_ENABLED] = REASON_AUTH_NOT_ENABLED,
};

const char *proto_reply_reason(enum proto_reply reply) { return reasons[reply]; }

struct buf *proto_reply(enum proto_reply reply) { return &replies[reply]; }

enum proto_reply proto_status_reply(enum proto_status status)
{
    switch (status) {
    case PROTO_OK: return PROTO_REPLY_SUCCESS;
    case PROTO_BAD_UTF8: return PROTO_REPLY_BAD_UTF8;
    case PROTO_BAD_JSON: return PROTO_REPLY_BAD_JSON;
    case PROTO_MALFORMED: return PROTO_REPLY_MALFORMED;
    case PROTO_NO_MEMORY: return PROTO_REPLY_NO_MEMORY;
    }
    return PROTO_REPLY_MALFORMED;
}
