/*
 * test_record: the data directory's record format and a log's recovery
 * scan: every record type round trip, a log torn at every byte of its last
 * record (and of its head), every bit of a record flipped, damage in the
 * middle told from a torn tail, an empty file, a file that is not a log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mqd/crc32c.h"
#include "mqd/record.h"

/* a log made by the tests: its bytes and where each record starts */
struct log {
    char bytes[16384];
    size_t len;
    size_t starts[64];
    size_t n;
};

static void log_begin(struct log *l)
{
    memset(l, 0, sizeof(*l));
    record_write_head(l->bytes);
    l->len = RECORD_HEAD_LEN;
}

static void log_add(struct log *l, const struct record *r)
{
    size_t size = record_size(r);
    assert_true(size > 0 && l->len + size <= sizeof(l->bytes) && l->n < 64);
    l->starts[l->n++] = l->len;
    assert_int_equal(record_encode(r, l->bytes + l->len), size);
    l->len += size;
}

static struct record message(const char *topic, uint64_t index, uint8_t flags, const char *line)
{
    return (struct record){.type = RECORD_MESSAGE,
                           .topic = topic,
                           .topic_len = (uint32_t)strlen(topic),
                           .index = index,
                           .flags = flags,
                           .line = line,
                           .line_len = (uint32_t)strlen(line)};
}

static struct record plain(enum record_type type, const char *topic, uint64_t index)
{
    return (struct record){
        .type = type, .topic = topic, .topic_len = (uint32_t)strlen(topic), .index = index};
}

/* a_log: a head and ten records of every kind */
static void a_log(struct log *l)
{
    log_begin(l);
    struct record m0 = message("jobs", 0, RECORD_ONE,
                               "{\"command\": \"send\", \"topic\": \"jobs\", \"msg\": \"a\", "
                               "\"delivery\": \"one\", \"index\": 0}\r\n");
    struct record m1 = message("news", 41, 0, "{\"msg\": \"\\u0000 \\ud83d\\ude00\", \"index\": 41}\r\n");
    struct record i0 = plain(RECORD_INDEX, "quiet", 7);
    struct record r0 = plain(RECORD_REMOVED, "jobs", 0);
    struct record empty_topic = plain(RECORD_INDEX, "", UINT64_MAX);
    struct record m2 = message("t\x01\xff", UINT64_MAX - 1, 0, "");
    struct record i1 = plain(RECORD_INDEX, "news", 42);
    static const uint8_t key[RECORD_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xff};
    struct record k0 = {.type = RECORD_HASH_KEY, .key = key};
    struct record t0 = {.type = RECORD_RETIRED, .hash = 0x0123456789abcdefu, .index = 9};
    struct record f0 = {.type = RECORD_FLOOR, .hash = 4095, .index = UINT64_MAX};
    const struct record *all[] = {&m0, &m1, &i0, &r0, &empty_topic, &m2, &i1, &k0, &t0, &f0};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        log_add(l, all[i]);
}

struct seen {
    struct record records[64];
    size_t offsets[64];
    size_t n;
};

static void collect(void *ctx, const struct record *r, size_t offset)
{
    struct seen *s = ctx;
    assert_true(s->n < 64);
    s->records[s->n] = *r;
    s->offsets[s->n++] = offset;
}

static void every_record_reads_back_as_written(void **state)
{
    (void)state;
    struct log l;
    a_log(&l);
    struct seen seen = {0};
    struct record_scan scan;
    record_scan(l.bytes, l.len, collect, &seen, &scan);
    assert_int_equal(scan.status, RECORD_SCAN_CLEAN);
    assert_int_equal(scan.end, l.len);
    assert_int_equal(scan.records, l.n);
    assert_int_equal(seen.n, l.n);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(seen.offsets[i], l.starts[i]);
        /* encoding what was read gives the same bytes */
        char again[1024];
        size_t size = record_encode(&seen.records[i], again);
        size_t end = i + 1 < l.n ? l.starts[i + 1] : l.len;
        assert_int_equal(size, end - l.starts[i]);
        assert_memory_equal(again, l.bytes + l.starts[i], size);
    }
    assert_int_equal(seen.records[0].flags, RECORD_ONE);
    assert_true(seen.records[4].index == UINT64_MAX);
    assert_int_equal(seen.records[4].topic_len, 0);
    assert_int_equal(seen.records[7].key[15], 0xff);
    assert_true(seen.records[8].hash == 0x0123456789abcdefu && seen.records[8].index == 9);
    assert_true(seen.records[9].hash == 4095 && seen.records[9].index == UINT64_MAX);
}

/* a power cut can leave a file's last blocks zeros: no frame of zeros is a
 * good record, so they read as a torn tail, never as damage */
static void a_tail_of_zeros_is_torn(void **state)
{
    (void)state;
    struct log l;
    a_log(&l);
    size_t good = l.len;
    memset(l.bytes + l.len, 0, 4096);
    struct record_scan scan;
    record_scan(l.bytes, good + 4096, NULL, NULL, &scan);
    assert_int_equal(scan.status, RECORD_SCAN_TORN);
    assert_int_equal(scan.end, good);
    assert_int_equal(scan.records, l.n);
}

static void a_head_alone_and_an_empty_file(void **state)
{
    (void)state;
    struct log l;
    log_begin(&l);
    struct record_scan scan;
    record_scan(l.bytes, l.len, NULL, NULL, &scan);
    assert_int_equal(scan.status, RECORD_SCAN_CLEAN);
    assert_int_equal(scan.end, RECORD_HEAD_LEN);
    assert_int_equal(scan.records, 0);
    /* empty, or a head cut short: torn at 0, to be made anew */
    for (size_t cut = 0; cut < RECORD_HEAD_LEN; cut++) {
        record_scan(l.bytes, cut, NULL, NULL, &scan);
        assert_int_equal(scan.status, RECORD_SCAN_TORN);
        assert_int_equal(scan.end, 0);
    }
}

static void a_log_torn_at_every_byte_of_its_last_record_is_cut_there(void **state)
{
    (void)state;
    struct log l;
    a_log(&l);
    size_t last = l.starts[l.n - 1];
    /* the last record is a MESSAGE with a line, to tear across its body */
    struct record long_one = message("tail", 9, 0, "{\"msg\": \"a line long enough\"}\r\n");
    log_add(&l, &long_one);
    last = l.starts[l.n - 1];
    for (size_t cut = last; cut < l.len; cut++) {
        struct seen seen = {0};
        struct record_scan scan;
        record_scan(l.bytes, cut, collect, &seen, &scan);
        assert_int_equal(scan.status, cut == last ? RECORD_SCAN_CLEAN : RECORD_SCAN_TORN);
        assert_int_equal(scan.end, last);
        assert_int_equal(scan.records, l.n - 1);
        assert_int_equal(seen.n, l.n - 1);
    }
}

static void every_flipped_bit_is_found(void **state)
{
    (void)state;
    struct log l;
    a_log(&l);
    for (size_t k = 0; k < l.n; k++) {
        size_t start = l.starts[k], end = k + 1 < l.n ? l.starts[k + 1] : l.len;
        for (size_t byte = start; byte < end; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                l.bytes[byte] ^= (char)(1 << bit);
                struct record_scan scan;
                record_scan(l.bytes, l.len, NULL, NULL, &scan);
                /* never read as good; in the last record a torn tail, before
                 * it damage that stops a start */
                assert_int_equal(scan.end, start);
                assert_int_equal(scan.records, k);
                assert_int_equal(scan.status,
                                 k + 1 < l.n ? RECORD_SCAN_DAMAGED : RECORD_SCAN_TORN);
                l.bytes[byte] ^= (char)(1 << bit);
            }
        }
    }
}

static void a_file_that_is_not_a_log_is_refused(void **state)
{
    (void)state;
    struct log l;
    a_log(&l);
    struct record_scan scan;
    for (size_t byte = 0; byte < RECORD_HEAD_LEN; byte++) {
        l.bytes[byte] ^= 0x20;
        record_scan(l.bytes, l.len, NULL, NULL, &scan);
        assert_int_equal(scan.status, RECORD_SCAN_NOT_LOG);
        record_scan(l.bytes, byte + 1, NULL, NULL, &scan); /* even cut short */
        assert_int_equal(scan.status, RECORD_SCAN_NOT_LOG);
        l.bytes[byte] ^= 0x20;
    }
}

/* framed: a body of the caller's making, framed with a right checksum */
static size_t framed(char *out, const unsigned char *body, size_t len)
{
    uint32_t n = (uint32_t)len, crc = crc32c(body, len);
    for (int i = 0; i < 4; i++) {
        out[i] = (char)(n >> (8 * i));
        out[4 + i] = (char)(crc >> (8 * i));
    }
    memcpy(out + RECORD_FRAME_LEN, body, len);
    return RECORD_FRAME_LEN + len;
}

static void a_well_summed_body_of_the_wrong_shape_is_bad(void **state)
{
    (void)state;
    /* type, topic length 1, "t", index 5 */
    unsigned char good[] = {RECORD_INDEX, 1, 0, 0, 0, 't', 5, 0, 0, 0, 0, 0, 0, 0};
    char out[64];
    struct record r;
    size_t used;
    size_t n = framed(out, good, sizeof(good));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_OK);
    assert_int_equal(used, n);
    assert_true(r.index == 5);

    unsigned char bad_type[sizeof(good)];
    memcpy(bad_type, good, sizeof(good));
    bad_type[0] = 7;
    n = framed(out, bad_type, sizeof(bad_type));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);

    unsigned char long_topic[sizeof(good)];
    memcpy(long_topic, good, sizeof(good));
    long_topic[1] = 2; /* runs into the index, leaving it 7 bytes */
    n = framed(out, long_topic, sizeof(long_topic));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);

    unsigned char trailing[sizeof(good) + 1];
    memcpy(trailing, good, sizeof(good));
    trailing[sizeof(good)] = 'x';
    n = framed(out, trailing, sizeof(trailing));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);

    unsigned char flags[sizeof(good) + 2];
    memcpy(flags, good, sizeof(good));
    flags[0] = RECORD_MESSAGE;
    flags[sizeof(good)] = 0x02; /* an unknown flag */
    flags[sizeof(good) + 1] = 'l';
    n = framed(out, flags, sizeof(flags));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);
    flags[sizeof(good)] = RECORD_ONE;
    n = framed(out, flags, sizeof(flags));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_OK);
    assert_int_equal(r.line_len, 1);

    unsigned char message_without_flags[sizeof(good)];
    memcpy(message_without_flags, good, sizeof(good));
    message_without_flags[0] = RECORD_MESSAGE;
    n = framed(out, message_without_flags, sizeof(message_without_flags));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);

    /* the snapshot's records carry no topic, and exactly their fields */
    unsigned char retired[] = {RECORD_RETIRED, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0,
                               1, 0, 0, 0, 0, 0, 0, 0};
    n = framed(out, retired, sizeof(retired));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_OK);
    assert_true(r.hash == 1 && r.index == 5);
    n = framed(out, retired, sizeof(retired) - 1);
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);
    retired[0] = RECORD_FLOOR;
    n = framed(out, retired, sizeof(retired));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_OK);
    unsigned char named[sizeof(retired) + 1] = {RECORD_FLOOR, 1, 0, 0, 0, 't'};
    n = framed(out, named, sizeof(named));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);
    unsigned char key[13 + RECORD_KEY_LEN] = {RECORD_HASH_KEY};
    n = framed(out, key, sizeof(key));
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_OK);
    n = framed(out, key, sizeof(key) - 1);
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);

    n = framed(out, good, 12); /* shorter than any body */
    assert_int_equal(record_decode(out, n, &r, &used), RECORD_BAD);
}

static void a_length_past_the_limit_is_bad_and_never_read(void **state)
{
    (void)state;
    char out[RECORD_FRAME_LEN] = {0};
    uint32_t n = RECORD_MAX_BODY + 1;
    for (int i = 0; i < 4; i++)
        out[i] = (char)(n >> (8 * i));
    struct record r;
    size_t used;
    assert_int_equal(record_decode(out, sizeof(out), &r, &used), RECORD_BAD);
    struct record huge = message("t", 0, 0, "");
    huge.line_len = RECORD_MAX_BODY;
    assert_int_equal(record_size(&huge), 0);
    huge.line_len = RECORD_MAX_BODY - 15; /* the body exactly at the limit */
    assert_int_equal(record_size(&huge), RECORD_FRAME_LEN + RECORD_MAX_BODY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_record_reads_back_as_written),
        cmocka_unit_test(a_head_alone_and_an_empty_file),
        cmocka_unit_test(a_tail_of_zeros_is_torn),
        cmocka_unit_test(a_log_torn_at_every_byte_of_its_last_record_is_cut_there),
        cmocka_unit_test(every_flipped_bit_is_found),
        cmocka_unit_test(a_file_that_is_not_a_log_is_refused),
        cmocka_unit_test(a_well_summed_body_of_the_wrong_shape_is_bad),
        cmocka_unit_test(a_length_past_the_limit_is_bad_and_never_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
