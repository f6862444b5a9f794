/*
 * buf: an immutable, reference-counted byte string.
 *
 * One delivered line is built once into a buf; every receiver's output queue
 * and the topic's cache hold a reference to that same buf. The bytes never
 * change after buf_new() returns them to their creator to fill.
 *
 * A static buf (BUF_STATIC) lives for the whole process: ref and unref leave it
 * alone, so constant replies can be queued without allocating.
 *
 * At most one topic cache holds a line; while it does, the line also carries
 * its place in the age order of all caches, which ring.h keeps. A delivery
 * "one" line that a closed client was never written is handed back to the
 * broker, which links it through the same two fields until it is re-routed
 * (broker.h); it is in no cache then.
 */
#ifndef MQD_BUF_H
#define MQD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring;

struct buf {
    uint32_t refs; /* BUF_REFS_STATIC for static bufs */
    uint32_t len;
    const char *data;
    /* ring.h's business: the cache holding the line (NULL: none) and its
     * neighbours in the caches' age order */
    struct ring *cached_in;
    struct buf *older, *newer;
    bool once; /* a delivery "one" line: it has exactly one receiver */
};

#define BUF_REFS_STATIC UINT32_MAX
#define BUF_MAX_LEN (UINT32_MAX - 1)
#define BUF_STATIC(literal)                                                                        \
    {                                                                                              \
        .refs = BUF_REFS_STATIC, .len = (uint32_t)(sizeof(literal) - 1), .data = (literal)         \
    }

/* buf_new: a buf of `len` bytes with one reference, its bytes in *data for the
 * caller to fill before sharing it. NULL when out of memory or len > BUF_MAX_LEN. */
struct buf *buf_new(size_t len, char **data);

/* buf_ref: takes one more reference; returns b for convenience. */
struct buf *buf_ref(struct buf *b);

/* buf_unref: drops one reference; the last one frees the buf. NULL is a no-op. */
void buf_unref(struct buf *b);

#endif
