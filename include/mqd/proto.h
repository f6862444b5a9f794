/*
 * proto: one line of input -> one validated command, or the reason it is not.
 *
 * The checks run in PROTOCOL.md's order: UTF-8, then JSON (strict, see
 * json.h), then the command schema. A request points into the line it was
 * parsed from: the line must outlive it. Topics are compared by their decoded
 * value, so the request carries the decoded topic; a send also carries the raw
 * bytes of the object, from which the delivered line is built byte-exact.
 */
#ifndef MQD_PROTO_H
#define MQD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/buf.h"

enum proto_status {
    PROTO_OK,
    PROTO_BAD_UTF8,  /* "Could not decode input as UTF-8" */
    PROTO_BAD_JSON,  /* "Could not parse json" */
    PROTO_MALFORMED, /* "Malformed json message" */
    PROTO_NO_MEMORY, /* "Out of memory" */
};

enum proto_command { PROTO_SUBSCRIBE, PROTO_UNSUBSCRIBE, PROTO_SEND, PROTO_AUTH };

struct proto_request {
    enum proto_command command;
    const char *topic; /* decoded; may contain any byte but NUL */
    size_t topic_len;
    int64_t last_seen;  /* subscribe: -1 when absent; clamped to 64 bits */
    bool cache;         /* subscribe and send: true when absent */
    bool one;           /* send: delivery "one" */
    const char *object; /* send: the raw object, '{' to '}' */
    size_t object_len;
    char *topic_heap; /* owned: a decoded topic too long for topic_inline */
    char topic_inline[64];
    /* auth (an mqd extension): decoded, may hold any byte (the user no NUL) */
    const char *user;
    size_t user_len;
    const char *password;
    size_t password_len;
    char *user_heap;     /* owned: decoded when escaped */
    char *password_heap; /* owned: decoded when escaped, wiped when released */
};

/* proto_parse: validates `len` bytes at `line` (one line, framing already
 * stripped) into *req. On anything but PROTO_OK there is nothing to release. */
enum proto_status proto_parse(const char *line, size_t len, struct proto_request *req);

/* proto_request_release: frees what a successful parse allocated. */
void proto_request_release(struct proto_request *req);

enum proto_reply {
    PROTO_REPLY_SUCCESS,
    PROTO_REPLY_BAD_UTF8,
    PROTO_REPLY_BAD_JSON,
    PROTO_REPLY_MALFORMED,
    PROTO_REPLY_NO_MEMORY,
    PROTO_REPLY_LINE_TOO_LONG,
    PROTO_REPLY_TOO_MANY_CONNECTIONS,
    PROTO_REPLY_TOPIC_TOO_LONG, /* mqd extensions: the topic quotas */
    PROTO_REPLY_TOO_MANY_TOPICS,
    PROTO_REPLY_TOO_MANY_SUBSCRIPTIONS,
    PROTO_REPLY_NOT_PERSISTED, /* mqd extension: --data-dir cannot keep a send */
    PROTO_REPLY_AUTH_REQUIRED, /* mqd extensions: --users */
    PROTO_REPLY_AUTH_FAILED,
    PROTO_REPLY_PERMISSION_DENIED,
    PROTO_REPLY_AUTH_NOT_ENABLED,
    PROTO_REPLY_COUNT, /* not a reply: the size of a table indexed by reply */
};

/* proto_reply: the reply line (with its "\r\n"), a static buf: queuing it
 * never allocates a buf. */
struct buf *proto_reply(enum proto_reply reply);

/* proto_reply_reason: the reply's "reason" text ("success" for success). */
const char *proto_reply_reason(enum proto_reply reply);

/* proto_status_reply: the reply for a failed parse. */
enum proto_reply proto_status_reply(enum proto_status status);

#endif
