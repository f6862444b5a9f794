/* fuzz_record: any bytes as a data directory log (the first byte says
 * whether a good head is put before them, and the cache size of a broker
 * they are loaded into): the scan never reads out of bounds, and what it
 * reports holds: the good records tile the log from its head to `end`, each
 * encodes back to exactly its bytes, a clean log ends at its end, and a
 * torn or damaged one has no good record at `end`. Every good record is
 * then restored into a broker, whatever the records say (indexes out of
 * order, removals of what is not there, a topic of any bytes): the broker
 * stays whole (ASan, UBSan), no cache holds more than its size, and a
 * subscriber then replays at most a cache of each topic. */
#include "mqd/broker.h"
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

static const enum broker_change_kind kinds[] = {
    [RECORD_MESSAGE] = BROKER_CACHED, [RECORD_INDEX] = BROKER_INDEXED,
    [RECORD_REMOVED] = BROKER_UNCACHED};

/* restore: the record as the broker's change, as a store will hand it */
static void restore(struct check *c, const struct record *r)
{
    struct broker_change change = {kinds[r->type], r->topic, r->topic_len, r->index,
                                   (r->flags & RECORD_ONE) != 0, NULL};
    if (r->type == RECORD_MESSAGE) {
        char *bytes;
        change.line = buf_new(r->line_len, &bytes);
        if (!change.line)
            abort();
        memcpy(bytes, r->line, r->line_len);
    }
    if (broker_restore(c->broker, &change) != BROKER_OK)
        abort(); /* only memory can fail it */
    buf_unref(change.line);
    if (c->ntopics < 4 && r->topic_len < 16) {
        memcpy(c->topics[c->ntopics], r->topic, r->topic_len);
        c->topic_lens[c->ntopics++] = r->topic_len;
    }
}

struct replayed {
    size_t lines;
};

/* count_line: a replay's lines, counted (restored lines are any bytes) */
static bool count_line(void *ctx, struct buf *line)
{
    (void)line;
    ((struct replayed *)ctx)->lines++;
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
