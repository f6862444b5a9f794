/*
 * wire: mqd's commands and server lines (docs/PROTOCOL.md), with cJSON.
 *
 * Commands are built as cJSON objects and printed, so any topic and message
 * is escaped right: quotes, backslashes and control characters become
 * escapes, and UTF-8 goes through as it is (the server checks it, and says
 * "Could not decode input as UTF-8" when it is not). cJSON strings are C
 * strings: text that holds a NUL cannot be sent, and the caller must refuse it.
 *
 * A line from the server is a reply ({"success": ...}) or a delivery (the
 * sender's send command with "index" added). cJSON cuts a decoded string at
 * U+0000, so the topic and msg of a delivery end at their first U+0000; the
 * line itself keeps all of it.
 */
#ifndef MQD_CLI_WIRE_H
#define MQD_CLI_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* wire_subscribe: the subscribe command for `topic`, with "last_seen" when
 * `last_seen` is not NULL and "cache": false unless `cache`; one line ending
 * with '\n', to free(). NULL when out of memory. */
char *wire_subscribe(const char *topic, const int64_t *last_seen, bool cache);

/* wire_send: the send command of `msg` to `topic`, delivery "one" or "all",
 * with "cache": false unless `cache`; as wire_subscribe. */
char *wire_send(const char *topic, const char *msg, bool one, bool cache);

/* wire_auth: the auth command of `user` with `password` (a server run with
 * --users), as the others. */
char *wire_auth(const char *user, const char *password);

enum wire_kind {
    WIRE_SUCCESS,     /* {"success": true} */
    WIRE_FAILURE,     /* {"success": false, "reason": ...}: a command was refused */
    WIRE_TURNED_AWAY, /* "Too many connections": the server closes at once */
    WIRE_DELIVERY,    /* a message */
    WIRE_INVALID,     /* anything else: not JSON, or not a line of mqd's */
};

struct wire_line {
    enum wire_kind kind;
    const char *reason; /* FAILURE, TURNED_AWAY */
    const char *topic;  /* DELIVERY: each cut at its first U+0000 */
    const char *msg;
    int64_t index;
    cJSON *tree; /* owns the strings above */
};

/* wire_parse: classifies the server line `line`, `len` bytes without its
 * "\r\n" and '\0'-terminated. Release it with wire_line_free whatever its
 * kind. A line cJSON cannot parse for lack of memory is WIRE_INVALID. */
enum wire_kind wire_parse(const char *line, size_t len, struct wire_line *out);

void wire_line_free(struct wire_line *l);

#endif
