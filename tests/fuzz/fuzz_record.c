/* fuzz_record: any bytes as a data directory log (the first byte says
 * whether a good head is put before them, and the cache size of a broker
 * they are loaded into): the scan never reads out of bounds, and what it
 * reports holds: the good records tile the log from its head to `end`, each
 * encodes back to exactly its bytes, a clean log ends at its end, and a
 * torn or damaged one has no good record at `end`. Every good record is
 * then restored into a broker, whatever the records say (indexes out of
 * order, removals of what is not there, a topic of any bytes): the broker
 * stays whole (ASan, UBSan), no cache holds more than its size, and a
 * subscriber then replays at most a cache of each topic. A second broker
 * rebuilt from a snapshot of the first (broker_each_kept, as compaction
 * writes it) holds the same caches and answers the same next indexes. */
#include "mqd/broker.h"
#include "mqd/datadir.h"
#include "mqd/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
    const char *log;
    size_t next; /* where the next good record must start */
    size_t records;
    struct broker *broker;
    char topics[4][16]; /* the first topics met, up to 15 bytes, replayed at the end */
    size_t topic_lens[4];
    size_t ntopics;
};

/* restore: the record as the broker's change, as the store hands it */
static void restore(struct check *c, const struct record *r)
{
    struct broker_change change = datadir_change(r);
    if (r->type == RECORD_MESSAGE) {
        char *bytes;
        change.line = buf_new(r->line_len, &bytes);
        if (!change.line)
            abort();
        memcpy(bytes, r->line, r->line_len);
    }
    enum broker_status status = broker_restore(c->broker, &change);
    if (status != BROKER_OK && !(status == BROKER_OUT_OF_ORDER && r->type == RECORD_HASH_KEY))
        abort(); /* only memory, or a key too late, can fail it */
    buf_unref(change.line);
    if (c->ntopics < 4 && r->topic_len < 16) {
        memcpy(c->topics[c->ntopics], r->topic, r->topic_len);
        c->topic_lens[c->ntopics++] = r->topic_len;
    }
}

struct replayed {
    size_t lines;
    uint64_t last_index; /* of the last line, when broker_send built it */
};

/* count_line: a replay's lines, counted (restored lines are any bytes); a
 * probe's index read back from its line's end */
static bool count_line(void *ctx, struct buf *line)
{
    struct replayed *r = ctx;
    r->lines++;
    r->last_index = 0;
    size_t at = line->len >= 3 ? line->len - 3 : 0; /* before "}\r\n" */
    uint64_t scale = 1;
    while (at > 0 && line->data[at - 1] >= '0' && line->data[at - 1] <= '9') {
        r->last_index += (uint64_t)(line->data[at - 1] - '0') * scale;
        scale *= 10;
        at--;
    }
    return true;
}

static void check_record(void *ctx, const struct record *r, size_t offset)
{
    struct check *c = ctx;
    if (offset != c->next)
        abort(); /* the good records tile the log */
    size_t size = record_size(r);
    char *again = malloc(size ? size : 1);
    if (!size || !again || record_encode(r, again) != size ||
        memcmp(again, c->log + offset, size) != 0)
        abort(); /* what was read is what was written */
    free(again);
    c->next += size;
    c->records++;
    restore(c, r);
}

/* restore_kept: a change of the first broker's snapshot into the second,
 * through its record, as a compaction writes and a start reads it */
static void restore_kept(void *ctx, const struct broker_change *c)
{
    struct record r = datadir_record(c);
    size_t size = record_size(&r);
    char *bytes = malloc(size ? size : 1);
    struct record back;
    size_t used;
    if (!size || !bytes || record_encode(&r, bytes) != size ||
        record_decode(bytes, size, &back, &used) != RECORD_OK)
        abort(); /* every change the snapshot tells is a good record */
    free(bytes);
    if (broker_restore(ctx, c) != BROKER_OK)
        abort();
}

/* next_index: the index a probe send to the topic gets */
static uint64_t next_index(struct broker *b, const char *topic, size_t len)
{
    struct replayed seen = {0};
    struct broker_client *sub = broker_client_new(b, &seen);
    static const char object[] = "{\"msg\": \"p\"}";
    struct broker_message m = {topic, len, object, sizeof(object) - 1, false, false};
    if (!sub || broker_subscribe(b, sub, topic, len) != BROKER_OK)
        abort();
    broker_replay(b, sub, topic, len, INT64_MAX); /* nothing: only what follows counts */
    seen.lines = 0;
    if (broker_send(b, &m) != BROKER_OK || seen.lines != 1)
        abort();
    broker_client_free(sub);
    return seen.last_index;
}

/* same_after_a_snapshot: a broker rebuilt from the snapshot of `a` */
static void same_after_a_snapshot(struct broker *a, const struct broker_config *bc,
                                  const struct check *c)
{
    struct broker_config other = *bc;
    other.hash_seed[0] ^= 1; /* the snapshot brings the retired topics' key */
    struct broker *b = broker_new(&other);
    if (!b)
        abort();
    broker_each_kept(a, restore_kept, b);
    struct broker_stats sa, sb;
    broker_get_stats(a, &sa);
    broker_get_stats(b, &sb);
    if (sa.cached_messages != sb.cached_messages || sa.cached_bytes != sb.cached_bytes)
        abort();
    for (size_t i = 0; i < c->ntopics; i++) {
        if (next_index(a, c->topics[i], c->topic_lens[i]) !=
            next_index(b, c->topics[i], c->topic_lens[i]))
            abort();
    }
    broker_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool with_head = data[0] & 1;
    size_t len = size - 1 + (with_head ? RECORD_HEAD_LEN : 0);
    char *log = malloc(len ? len : 1);
    if (!log)
        return 0;
    if (with_head)
        record_write_head(log);
    memcpy(log + (with_head ? RECORD_HEAD_LEN : 0), data + 1, size - 1);
    struct broker_config bc = {.cache_size = data[0] >> 1 & 7, .max_retired = 64,
                               .deliver = count_line};
    struct check c = {.log = log, .next = RECORD_HEAD_LEN, .broker = broker_new(&bc)};
    if (!c.broker)
        abort();
    struct record_scan scan;
    record_scan(log, len, check_record, &c, &scan);
    struct broker_stats before;
    broker_get_stats(c.broker, &before);
    if (before.cached_messages > before.topics * bc.cache_size)
        abort(); /* no cache holds more than its size */
    for (size_t i = 0; i < c.ntopics; i++) {
        struct replayed seen = {0};
        struct broker_client *sub = broker_client_new(c.broker, &seen);
        if (!sub || broker_subscribe(c.broker, sub, c.topics[i], c.topic_lens[i]) != BROKER_OK)
            abort();
        broker_replay(c.broker, sub, c.topics[i], c.topic_lens[i], -1);
        if (seen.lines > bc.cache_size)
            abort();
        broker_client_free(sub);
    }
    same_after_a_snapshot(c.broker, &bc, &c);
    broker_free(c.broker);
    if (scan.end > len || scan.records != c.records)
        abort();
    if (scan.status != RECORD_SCAN_NOT_LOG && len >= RECORD_HEAD_LEN && scan.end != c.next)
        abort();
    if (scan.status == RECORD_SCAN_CLEAN && scan.end != len)
        abort();
    if (scan.status == RECORD_SCAN_TORN || scan.status == RECORD_SCAN_DAMAGED) {
        struct record r;
        size_t used;
        if (scan.end >= RECORD_HEAD_LEN &&
            record_decode(log + scan.end, len - scan.end, &r, &used) == RECORD_OK)
            abort();
    }
    free(log);
    return 0;
}
