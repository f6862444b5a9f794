#include "cjson_agree.h"

#include "mqd/json.h"
#include "mqd/proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^63: a double at least this large in magnitude is beyond int64_t */
#define INT64_BOUND 9223372036854775808.0

struct compare {
    const struct proto_request *req;
    const struct json_value *scan; /* mqd's reading of the whole line */
    const cJSON *tree;
    char *why;
    size_t why_size;
};

static enum cjson_agree differ(struct compare *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum cjson_agree differ(struct compare *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->why_size, fmt, ap);
    va_end(ap);
    return CJSON_DISAGREES;
}

/* member_string: cJSON's string `key` (case-sensitive, as mqd), or NULL */
static const char *member_string(const struct compare *c, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->tree, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static bool same_text(const char *cjson, const char *mqd, size_t mqd_len)
{
    return cjson && strlen(cjson) == mqd_len && memcmp(cjson, mqd, mqd_len) == 0;
}

static enum cjson_agree compare_command(struct compare *c)
{
    static const char *const names[] = {"subscribe", "unsubscribe", "send"};
    const char *want = names[c->req->command];
    int n = cJSON_GetArraySize(c->tree);
    if (n < 0 || (size_t)n != c->scan->nmembers)
        return differ(c, "cJSON sees %d members, mqd %zu", n, c->scan->nmembers);
    if (!same_text(member_string(c, "command"), want, strlen(want)))
        return differ(c, "cJSON's command is not %s", want);
    if (!same_text(member_string(c, "topic"), c->req->topic, c->req->topic_len))
        return differ(c, "cJSON decodes another topic than mqd's %zu bytes", c->req->topic_len);
    return CJSON_AGREES;
}

/* compare_cache: "cache" as cJSON reads it against mqd's, true when absent */
static enum cjson_agree compare_cache(struct compare *c)
{
    const cJSON *cache = cJSON_GetObjectItemCaseSensitive(c->tree, "cache");
    bool value = cache ? cJSON_IsTrue(cache) : true;
    if ((cache && !cJSON_IsBool(cache)) || value != c->req->cache)
        return differ(c, "cJSON's cache is not mqd's %s", c->req->cache ? "true" : "false");
    return CJSON_AGREES;
}

static enum cjson_agree compare_last_seen(struct compare *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(c->tree, "last_seen");
    int64_t mine = c->req->last_seen;
    if (!n)
        return mine == -1 ? CJSON_AGREES : differ(c, "cJSON has no last_seen");
    if (!cJSON_IsNumber(n))
        return differ(c, "cJSON's last_seen is not a number");
    double d = n->valuedouble;
    /* strtod and the int64_t to double conversion both round to nearest, so
     * a value mqd holds converts to cJSON's double; one that mqd clamped is
     * beyond 2^63 in magnitude to cJSON too. (Near 2^63, a value mqd holds
     * can round to 2^63: that is the first case, not the second.) */
    bool clamped = fabs(d) >= INT64_BOUND && mine == (d < 0 ? INT64_MIN : INT64_MAX);
    bool same = (double)mine == d || clamped;
    return same ? CJSON_AGREES
                : differ(c, "cJSON's last_seen %.17g, mqd's %lld", d, (long long)mine);
}

/* mqd_msg: the decoded msg, as mqd's scanner reads it, in a new buffer */
static char *mqd_msg(const struct json_value *v, size_t *len)
{
    for (size_t i = 0; i < v->nmembers && i < JSON_MAX_MEMBERS; i++) {
        const struct json_member *m = &v->members[i];
        if (!json_string_equals(m->key, "msg"))
            continue;
        char *text = malloc(m->value.len + 1);
        if (text)
            *len = json_decode_string(m->value.start, m->value.len, text);
        return text;
    }
    return NULL;
}

static enum cjson_agree compare_msg(struct compare *c)
{
    size_t len = 0;
    char *mine = mqd_msg(c->scan, &len);
    if (!mine)
        return differ(c, "no msg from mqd's scanner (or out of memory)");
    const char *theirs = member_string(c, "msg");
    enum cjson_agree rc = CJSON_AGREES;
    /* U+0000 ends a C string: cJSON cannot hold such a msg, so it is skipped */
    if (!memchr(mine, '\0', len) && !same_text(theirs, mine, len))
        rc = differ(c, "cJSON decodes another msg than mqd's %zu bytes", len);
    free(mine);
    return rc;
}

static enum cjson_agree compare_send(struct compare *c)
{
    const char *delivery = c->req->one ? "one" : "all";
    if (!same_text(member_string(c, "delivery"), delivery, strlen(delivery)))
        return differ(c, "cJSON's delivery is not %s", delivery);
    enum cjson_agree rc = compare_cache(c);
    return rc == CJSON_AGREES ? compare_msg(c) : rc;
}

enum cjson_agree cjson_compare(const char *line, size_t len, const cJSON *tree, char *why,
                               size_t why_size)
{
    struct proto_request req;
    struct json_value scan;
    if (proto_parse(line, len, &req) != PROTO_OK)
        return CJSON_NOT_ACCEPTED;
    struct compare c = {&req, &scan, tree, why, why_size};
    enum cjson_agree rc;
    if (!json_scan(line, len, &scan))
        rc = differ(&c, "proto_parse accepted what json_scan refuses");
    else if (!tree)
        rc = differ(&c, "cJSON refuses the line");
    else if (!cJSON_IsObject(tree))
        rc = differ(&c, "cJSON does not read an object");
    else
        rc = compare_command(&c);
    if (rc == CJSON_AGREES && req.command == PROTO_SEND)
        rc = compare_send(&c);
    else if (rc == CJSON_AGREES && req.command == PROTO_SUBSCRIBE)
        rc = compare_cache(&c) == CJSON_AGREES ? compare_last_seen(&c) : CJSON_DISAGREES;
    proto_request_release(&req);
    return rc;
}

enum cjson_agree cjson_agree_line(const char *line, size_t len, char *why, size_t why_size)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        snprintf(why, why_size, "out of memory");
        return CJSON_DISAGREES;
    }
    memcpy(copy, line, len);
    copy[len] = '\0';
    /* the '\0' is part of the length, so that anything after the value fails */
    const char *end = NULL;
    cJSON *tree = cJSON_ParseWithLengthOpts(copy, len + 1, &end, true);
    enum cjson_agree rc = cjson_compare(copy, len, tree, why, why_size);
    if (rc == CJSON_AGREES && end != copy + len) {
        snprintf(why, why_size, "cJSON stops at byte %td of %zu", end - copy, len);
        rc = CJSON_DISAGREES;
    }
    cJSON_Delete(tree);
    free(copy);
    return rc;
}
