/*
 * utf8: strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences.
 */
#ifndef MQD_UTF8_H
#define MQD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* utf8_valid: whether the `len` bytes at `s` are strictly valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

/* utf8_stream: the validation of a text that arrives in pieces (a
 * WebSocket message): the end of a sequence cut between two pieces is
 * carried over. Start it zeroed. */
struct utf8_stream {
    unsigned char carry[4];
    size_t n;
};

/* utf8_stream_feed: validates the next `len` bytes; false once the text is
 * invalid (whatever follows). O(len). */
bool utf8_stream_feed(struct utf8_stream *u, const char *s, size_t len);

/* utf8_stream_end: whether the text ends whole (no sequence cut short);
 * the stream is then ready for the next text. */
bool utf8_stream_end(struct utf8_stream *u);

#endif
