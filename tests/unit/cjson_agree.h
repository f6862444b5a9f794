/*
 * cjson_agree: a second opinion on mqd's strict parser, from cJSON.
 *
 * Every line that proto_parse accepts must read the same to cJSON, an
 * independent parser that any client may use: an object with as many
 * members, the same command, decoded topic, and the same msg, delivery,
 * cache and last_seen. mqd is stricter than cJSON (duplicate keys, raw
 * control characters, a BOM, bytes between tokens), so only this direction
 * is checked: a line mqd refuses is not compared.
 *
 * cJSON strings are C strings, cut at U+0000: a msg holding one is not
 * compared (a topic cannot hold one: mqd refuses it). cJSON numbers are
 * doubles: mqd's 64-bit last_seen must convert to cJSON's double, or, where
 * mqd clamped it to 64 bits, cJSON's must be beyond 2^63 in magnitude.
 *
 * Shared by tests/unit/test_cjson.c and tests/fuzz/fuzz_cjson.c.
 */
#ifndef MQD_TEST_CJSON_AGREE_H
#define MQD_TEST_CJSON_AGREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

enum cjson_agree {
    CJSON_NOT_ACCEPTED, /* proto_parse refused the line: nothing to compare */
    CJSON_AGREES,
    CJSON_DISAGREES, /* `why` says where */
};

/* cjson_agree_line: parses `len` bytes at `line` with proto_parse and with
 * cJSON (the whole line, nothing after the value), and compares. */
enum cjson_agree cjson_agree_line(const char *line, size_t len, char *why, size_t why_size);

/* cjson_compare: compares what proto_parse makes of `line` with `tree`, a
 * cJSON reading of a line (the same one, unless a test wants them to
 * differ). */
enum cjson_agree cjson_compare(const char *line, size_t len, const cJSON *tree, char *why,
                               size_t why_size);

#endif
