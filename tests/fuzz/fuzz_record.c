/* fuzz_record: any bytes as a data directory log (the first byte says
 * whether a good head is put before them): the scan never reads out of
 * bounds, and what it reports holds: the good records tile the log from its
 * head to `end`, each encodes back to exactly its bytes, a clean log ends at
 * its end, and a torn or damaged one has no good record at `end`. */
#include "mqd/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
    const char *log;
    size_t next; /* where the next good record must start */
    size_t records;
};

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
    struct check c = {.log = log, .next = RECORD_HEAD_LEN};
    struct record_scan scan;
    record_scan(log, len, check_record, &c, &scan);
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
