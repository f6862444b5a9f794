/*
 * record: the data directory's log records as bytes, and a log's recovery
 * scan. Pure: no I/O; the store (which writes, syncs and compacts files)
 * is built on it.
 *
 * A log is a head, RECORD_HEAD_LEN bytes ("mqd-log\n" and a little-endian
 * u32 version), then records, each:
 *
 *     u32 body length | u32 CRC-32C of the body | body        (little-endian)
 *
 * and a body:
 *
 *     u8 type | u32 topic length | topic | u64 index | then by type:
 *         MESSAGE: u8 flags, line        RETIRED, FLOOR: u64 hash
 *         HASH_KEY: 16 bytes of key
 *
 * where the line, to the end of the body, is the delivered line exactly as
 * subscribers receive it ("\r\n" included). A log holds MESSAGE, INDEX and
 * REMOVED records; a snapshot (the live state, written by compaction) holds
 * INDEX and MESSAGE records of the live topics and, since a retired topic is
 * kept only as a keyed hash of its name (retired.h), its HASH_KEY, RETIRED
 * and FLOOR records, which carry no topic. A body is at most
 * RECORD_MAX_BODY bytes; anything else about it (an unknown type or flag, a
 * topic running past the body, bytes after an index) makes it bad.
 *
 * Recovery: a bad or incomplete record after which no good record can be
 * found is a torn tail (a write cut by a crash), to be cut off; one with a
 * good record after it is damage in the middle, which no cut can mend.
 */
#ifndef MQD_RECORD_H
#define MQD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC "mqd-log\n"
#define RECORD_VERSION 1
#define RECORD_HEAD_LEN 12 /* magic and version */
#define RECORD_FRAME_LEN 8 /* body length and checksum */
#define RECORD_MAX_BODY (3u << 30) /* above any line and topic the options allow */

enum record_type {
    RECORD_MESSAGE = 1, /* a message entered its topic's cache */
    RECORD_INDEX = 2,   /* a topic's next index is `index` (a send not cached, a snapshot) */
    RECORD_REMOVED = 3, /* the cached message `index` left the cache (taken, or evicted) */
    RECORD_HASH_KEY = 4, /* the key retired topics' names are hashed with: `key` */
    RECORD_RETIRED = 5,  /* a retired topic: its name's `hash`, its next index `index` */
    RECORD_FLOOR = 6,    /* the floor of retired topics' bucket `hash` is `index` */
};

#define RECORD_KEY_LEN 16 /* SIPHASH_KEY_LEN */

#define RECORD_ONE 0x01 /* MESSAGE flag: delivery "one" */

struct record {
    enum record_type type;
    const char *topic; /* decoded: points into the bytes read */
    uint32_t topic_len;
    uint64_t index;
    uint8_t flags;     /* MESSAGE */
    const char *line;  /* MESSAGE: the delivered line */
    uint32_t line_len;
    uint64_t hash;     /* RETIRED: the name's hash; FLOOR: the bucket */
    const uint8_t *key; /* HASH_KEY: RECORD_KEY_LEN bytes */
};

/* record_size: the bytes record_encode writes for `r`; 0 when the body
 * would pass RECORD_MAX_BODY. */
size_t record_size(const struct record *r);

/* record_encode: writes `r` framed to `out`, which has record_size(r)
 * bytes; returns that size. */
size_t record_encode(const struct record *r, char *out);

/* record_write_head: the RECORD_HEAD_LEN bytes a log begins with. */
void record_write_head(char *out);

enum record_status {
    RECORD_OK,
    RECORD_SHORT, /* the bytes end inside the record */
    RECORD_BAD,   /* checksum or structure */
};

/* record_decode: the record at the start of `len` bytes; on RECORD_OK, *r
 * points into them and *used is its framed size. */
enum record_status record_decode(const char *buf, size_t len, struct record *r, size_t *used);

enum record_scan_status {
    RECORD_SCAN_CLEAN,   /* every byte is a good record */
    RECORD_SCAN_TORN,    /* a torn tail from `end` on: cut it */
    RECORD_SCAN_DAMAGED, /* a bad record at `end` with good ones after it */
    RECORD_SCAN_NOT_LOG, /* the head is not a log's, or of another version */
};

struct record_scan {
    enum record_scan_status status;
    size_t end;     /* where the good records end */
    size_t records; /* good records before `end` */
};

/* record_scan_fn: receives each good record in order, with its offset */
typedef void (*record_scan_fn)(void *ctx, const struct record *r, size_t offset);

/* record_scan: checks a whole log's bytes, head included, and hands each
 * good record to `fn` (which may be NULL). A log shorter than its head is
 * torn at 0 (a crash while it was being made). O(len), but a bad record
 * costs a search of what follows it for a good one. */
void record_scan(const char *buf, size_t len, record_scan_fn fn, void *ctx,
                 struct record_scan *out);

#endif
