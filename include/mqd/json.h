/*
 * json: a strict RFC 8259 scanner for one line holding one JSON value.
 *
 * It validates without building a tree and, when the value is an object,
 * reports the raw byte spans of its members, so the caller can check a schema
 * and still deliver the sender's bytes exactly. Strict means: only space, tab,
 * CR and LF between tokens; no raw control character in a string; only the
 * escapes of RFC 8259; \u surrogates must pair up (a lone one has no UTF-8
 * form); numbers in RFC 8259's lexical form only; nothing after the value.
 * The input must already be valid UTF-8 (see utf8.h).
 *
 * Nesting deeper than JSON_MAX_DEPTH is refused as invalid, as RFC 8259 §9
 * allows, so that a line of brackets cannot exhaust the stack.
 */
#ifndef MQD_JSON_H
#define MQD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 512
#define JSON_MAX_MEMBERS 8

enum json_type {
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
    JSON_OBJECT,
    JSON_ARRAY
};

struct json_span {
    const char *start; /* strings: the bytes between the quotes, still escaped */
    size_t len;
};

struct json_member {
    struct json_span key; /* raw, as for a string value */
    bool key_escaped;     /* the key holds at least one backslash escape */
    enum json_type type;
    struct json_span value;
    bool escaped; /* a string value holding at least one backslash escape */
    bool integer; /* a number with neither fraction nor exponent */
};

struct json_value {
    enum json_type type;  /* of the top-level value */
    struct json_span raw; /* the whole value, from '{' to '}' for an object */
    size_t nmembers;      /* for an object: members seen, even past the array */
    struct json_member members[JSON_MAX_MEMBERS];
};

/* json_scan: whether `len` bytes at `s` are exactly one JSON value, with
 * optional whitespace around it; fills *out when they are. */
bool json_scan(const char *s, size_t len, struct json_value *out);

/* json_decode_string: decodes the raw bytes of a string scanned valid into
 * UTF-8 at `out`, which needs room for `len` bytes (decoding never grows).
 * Returns the decoded length. */
size_t json_decode_string(const char *raw, size_t len, char *out);

/* json_string_equals: whether a scanned raw string decodes to `text`. */
bool json_string_equals(struct json_span raw, const char *text);

/* json_text_is: the same, for a raw string the scanner said holds an escape
 * (`escaped`) or not, and `text_len` bytes of text: without an escape one
 * length check and a memcmp, which is what a line's keys and command are
 * matched with. O(raw.len). */
bool json_text_is(struct json_span raw, bool escaped, const char *text, size_t text_len);

#endif
