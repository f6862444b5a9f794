#include "mqd/record.h"

#include "mqd/crc32c.h"

#include <string.h>

/* the fixed part of a body: type, topic length, index */
#define BODY_FIXED 13

static void put_u32(char *out, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        out[i] = (char)(v >> (8 * i));
}

static void put_u64(char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (char)(v >> (8 * i));
}

static uint32_t get_u32(const char *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)(unsigned char)in[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const char *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)(unsigned char)in[i] << (8 * i);
    return v;
}

static size_t body_size(const struct record *r)
{
    size_t n = BODY_FIXED + (size_t)r->topic_len;
    switch (r->type) {
    case RECORD_MESSAGE: return n + 1 + (size_t)r->line_len;
    case RECORD_RETIRED:
    case RECORD_FLOOR: return n + 8;
    case RECORD_HASH_KEY: return n + RECORD_KEY_LEN;
    case RECORD_INDEX:
    case RECORD_REMOVED: break;
    }
    return n;
}

size_t record_size(const struct record *r)
{
    size_t body = body_size(r);
    return body > RECORD_MAX_BODY ? 0 : RECORD_FRAME_LEN + body;
}

size_t record_encode(const struct record *r, char *out)
{
    size_t body = body_size(r);
    char *b = out + RECORD_FRAME_LEN;
    b[0] = (char)r->type;
    put_u32(b + 1, r->topic_len);
    if (r->topic_len > 0) /* a snapshot's retired records may have no topic at all */
        memcpy(b + 5, r->topic, r->topic_len);
    put_u64(b + 5 + r->topic_len, r->index);
    char *after = b + BODY_FIXED + r->topic_len;
    switch (r->type) {
    case RECORD_MESSAGE:
        after[0] = (char)r->flags;
        memcpy(after + 1, r->line, r->line_len);
        break;
    case RECORD_RETIRED:
    case RECORD_FLOOR: put_u64(after, r->hash); break;
    case RECORD_HASH_KEY: memcpy(after, r->key, RECORD_KEY_LEN); break;
    case RECORD_INDEX:
    case RECORD_REMOVED: break;
    }
    put_u32(out, (uint32_t)body);
    put_u32(out + 4, crc32c(b, body));
    return RECORD_FRAME_LEN + body;
}

void record_write_head(char *out)
{
    memcpy(out, RECORD_MAGIC, 8);
    put_u32(out + 8, RECORD_VERSION);
}

/* parse_body: the structure of a body whose checksum held */
static enum record_status parse_body(const char *b, size_t len, struct record *r)
{
    if (len < BODY_FIXED)
        return RECORD_BAD;
    memset(r, 0, sizeof(*r));
    r->type = (enum record_type)(unsigned char)b[0];
    r->topic_len = get_u32(b + 1);
    if (r->topic_len > len - BODY_FIXED)
        return RECORD_BAD;
    r->topic = b + 5;
    r->index = get_u64(b + 5 + r->topic_len);
    size_t rest = len - BODY_FIXED - r->topic_len;
    const char *after = b + BODY_FIXED + r->topic_len;
    switch (r->type) {
    case RECORD_MESSAGE:
        if (rest < 1 || ((unsigned char)after[0] & ~RECORD_ONE))
            return RECORD_BAD;
        r->flags = (uint8_t)after[0];
        r->line = after + 1;
        r->line_len = (uint32_t)(rest - 1);
        return RECORD_OK;
    case RECORD_INDEX:
    case RECORD_REMOVED: return rest == 0 ? RECORD_OK : RECORD_BAD;
    case RECORD_RETIRED:
    case RECORD_FLOOR:
        if (rest != 8 || r->topic_len != 0)
            return RECORD_BAD;
        r->hash = get_u64(after);
        return RECORD_OK;
    case RECORD_HASH_KEY:
        if (rest != RECORD_KEY_LEN || r->topic_len != 0)
            return RECORD_BAD;
        r->key = (const uint8_t *)after;
        return RECORD_OK;
    }
    return RECORD_BAD;
}

enum record_status record_decode(const char *buf, size_t len, struct record *r, size_t *used)
{
    if (len < RECORD_FRAME_LEN)
        return RECORD_SHORT;
    uint32_t body = get_u32(buf);
    if (body > RECORD_MAX_BODY)
        return RECORD_BAD;
    if (len - RECORD_FRAME_LEN < body)
        return RECORD_SHORT;
    const char *b = buf + RECORD_FRAME_LEN;
    if (crc32c(b, body) != get_u32(buf + 4))
        return RECORD_BAD;
    enum record_status status = parse_body(b, body, r);
    if (status == RECORD_OK)
        *used = RECORD_FRAME_LEN + body;
    return status;
}

/* good_record_after: whether a good record starts anywhere after `from` */
static bool good_record_after(const char *buf, size_t len, size_t from)
{
    for (size_t at = from + 1; at + RECORD_FRAME_LEN <= len; at++) {
        struct record r;
        size_t used;
        if (record_decode(buf + at, len - at, &r, &used) == RECORD_OK)
            return true;
    }
    return false;
}

void record_scan(const char *buf, size_t len, record_scan_fn fn, void *ctx,
                 struct record_scan *out)
{
    *out = (struct record_scan){.status = RECORD_SCAN_TORN, .end = 0, .records = 0};
    if (len < RECORD_HEAD_LEN) {
        /* a head cut short is torn, but only if what is there is its start */
        char head[RECORD_HEAD_LEN];
        record_write_head(head);
        if (memcmp(buf, head, len) != 0)
            out->status = RECORD_SCAN_NOT_LOG;
        return;
    }
    if (memcmp(buf, RECORD_MAGIC, 8) != 0 || get_u32(buf + 8) != RECORD_VERSION) {
        out->status = RECORD_SCAN_NOT_LOG;
        return;
    }
    size_t at = RECORD_HEAD_LEN;
    out->end = at;
    while (at < len) {
        struct record r;
        size_t used;
        enum record_status status = record_decode(buf + at, len - at, &r, &used);
        if (status != RECORD_OK) {
            /* a length field hit in the middle also reads as "short":
             * only what follows tells a torn tail from damage */
            out->status = good_record_after(buf, len, at) ? RECORD_SCAN_DAMAGED : RECORD_SCAN_TORN;
            return;
        }
        if (fn)
            fn(ctx, &r, at);
        at += used;
        out->end = at;
        out->records++;
    }
    out->status = RECORD_SCAN_CLEAN;
}
