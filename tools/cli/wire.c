#include "wire.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mqd's only reply that answers no command: it closes right after it */
#define TURNED_AWAY_REASON "Too many connections"

/* the largest index a double holds exactly: mqd counts from 0 by one, so an
 * index above it is not one of mqd's */
#define MAX_EXACT_INDEX 9007199254740992.0

/* to_line: prints `command` on one line, adds the '\n', and frees `command`.
 * cJSON escapes '\n' inside strings, so the line has no other. */
static char *to_line(cJSON *command)
{
    char *json = command ? cJSON_PrintUnformatted(command) : NULL;
    cJSON_Delete(command);
    if (!json)
        return NULL;
    size_t len = strlen(json);
    char *line = malloc(len + 2);
    if (line) {
        memcpy(line, json, len);
        memcpy(line + len, "\n", 2);
    }
    cJSON_free(json);
    return line;
}

/* command: a new object {"command": name, "topic": topic}; NULL when out of memory. */
static cJSON *command(const char *name, const char *topic)
{
    cJSON *c = cJSON_CreateObject();
    if (c && cJSON_AddStringToObject(c, "command", name) &&
        cJSON_AddStringToObject(c, "topic", topic))
        return c;
    cJSON_Delete(c);
    return NULL;
}

/* add_no_cache: adds "cache": false unless `cache`; false when out of memory. */
static bool add_no_cache(cJSON *c, bool cache)
{
    return cache || cJSON_AddFalseToObject(c, "cache");
}

char *wire_subscribe(const char *topic, const int64_t *last_seen, bool cache)
{
    cJSON *c = command("subscribe", topic);
    if (c && last_seen) {
        /* raw digits: cJSON prints a number as a double ("1e+17", or an
         * approximation above 2^53), which mqd refuses as not an integer */
        char digits[24];
        snprintf(digits, sizeof(digits), "%" PRId64, *last_seen);
        if (!cJSON_AddRawToObject(c, "last_seen", digits)) {
            cJSON_Delete(c);
            c = NULL;
        }
    }
    if (c && !add_no_cache(c, cache)) {
        cJSON_Delete(c);
        c = NULL;
    }
    return to_line(c);
}

char *wire_send(const char *topic, const char *msg, bool one, bool cache)
{
    cJSON *c = command("send", topic);
    if (c &&
        (!cJSON_AddStringToObject(c, "msg", msg) ||
         !cJSON_AddStringToObject(c, "delivery", one ? "one" : "all") || !add_no_cache(c, cache))) {
        cJSON_Delete(c);
        c = NULL;
    }
    return to_line(c);
}

char *wire_auth(const char *user, const char *password)
{
    cJSON *c = cJSON_CreateObject();
    if (c && (!cJSON_AddStringToObject(c, "command", "auth") ||
              !cJSON_AddStringToObject(c, "user", user) ||
              !cJSON_AddStringToObject(c, "password", password))) {
        cJSON_Delete(c);
        c = NULL;
    }
    return to_line(c);
}

/* string_of: the string value of `key` in `object`, or NULL. Case-sensitive:
 * cJSON_GetObjectItem would take "Topic" for "topic". */
static const char *string_of(const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* as_delivery: whether `tree` is a delivery, filling `out` when it is. */
static bool as_delivery(const cJSON *tree, struct wire_line *out)
{
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(tree, "index");
    out->topic = string_of(tree, "topic");
    out->msg = string_of(tree, "msg");
    if (!out->topic || !out->msg || !cJSON_IsNumber(index))
        return false;
    double i = index->valuedouble;
    if (!(i >= 0 && i <= MAX_EXACT_INDEX && floor(i) == i))
        return false;
    out->index = (int64_t)i;
    return true;
}

/* as_reply: the kind of reply `tree` is, or WIRE_INVALID. */
static enum wire_kind as_reply(const cJSON *tree, struct wire_line *out)
{
    const cJSON *success = cJSON_GetObjectItemCaseSensitive(tree, "success");
    if (cJSON_IsTrue(success))
        return WIRE_SUCCESS;
    out->reason = string_of(tree, "reason");
    if (!cJSON_IsFalse(success) || !out->reason)
        return WIRE_INVALID;
    return strcmp(out->reason, TURNED_AWAY_REASON) == 0 ? WIRE_TURNED_AWAY : WIRE_FAILURE;
}

enum wire_kind wire_parse(const char *line, size_t len, struct wire_line *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = WIRE_INVALID;
    /* the '\0' after the line counts, so that anything after the value fails */
    out->tree = cJSON_ParseWithLengthOpts(line, len + 1, NULL, true);
    if (!cJSON_IsObject(out->tree))
        return out->kind;
    if (cJSON_GetObjectItemCaseSensitive(out->tree, "index"))
        out->kind = as_delivery(out->tree, out) ? WIRE_DELIVERY : WIRE_INVALID;
    else
        out->kind = as_reply(out->tree, out);
    return out->kind;
}

void wire_line_free(struct wire_line *l)
{
    cJSON_Delete(l->tree);
    l->tree = NULL;
}
