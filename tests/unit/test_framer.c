#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/framer.h"

/* record: what the framer handed over, as "L:<line>" or "TOO_LONG"/"NO_MEMORY" */
struct record {
    char items[64][128];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static bool on_frame(void *ctx, enum framer_event event, const char *line, size_t len)
{
    struct record *r = ctx;
    char *out = r->items[r->n++];
    if (event == FRAMER_LINE)
        snprintf(out, 128, "L:%.*s", (int)len, line);
    else
        snprintf(out, 128, "%s", event == FRAMER_TOO_LONG ? "TOO_LONG" : "NO_MEMORY");
    return r->stop_after == 0 || r->n < r->stop_after;
}

static void feed_in_chunks(struct framer *f, const char *data, const size_t *sizes,
                           struct record *r)
{
    size_t len = strlen(data), at = 0;
    for (size_t i = 0; at < len; i++) {
        size_t n = sizes ? sizes[i] : len;
        if (n > len - at)
            n = len - at;
        framer_feed(f, data + at, n, on_frame, r);
        at += n;
    }
}

static const char stream[] = "first\nsecond\r\n\nthird line\n  \nlast";
static const char *const stream_lines[] = {"L:first", "L:second\r", "L:", "L:third line", "L:  "};

static void assert_stream_lines(const struct record *r)
{
    assert_int_equal(r->n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(r->items[i], stream_lines[i]);
}

static void splits_lines_whatever_the_chunking(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 100);
    feed_in_chunks(&f, stream, NULL, &r);
    assert_stream_lines(&r);
    assert_true(framer_finish(&f, on_frame, &r));
    assert_string_equal(r.items[5], "L:last");

    size_t ones[64];
    for (size_t i = 0; i < 64; i++)
        ones[i] = 1;
    memset(&r, 0, sizeof(r));
    feed_in_chunks(&f, stream, ones, &r);
    assert_stream_lines(&r);
    framer_reset(&f);

    srand(7);
    for (int round = 0; round < 500; round++) {
        size_t sizes[64];
        for (size_t i = 0; i < 64; i++)
            sizes[i] = 1 + (size_t)rand() % 9;
        memset(&r, 0, sizeof(r));
        feed_in_chunks(&f, stream, sizes, &r);
        assert_stream_lines(&r);
        framer_reset(&f);
    }
}

static void holds_no_buffer_between_lines(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 100);
    framer_feed(&f, "par", 3, on_frame, &r);
    assert_non_null(f.tail);
    framer_feed(&f, "tial\nnext\n", 10, on_frame, &r);
    assert_null(f.tail);
    assert_string_equal(r.items[0], "L:partial");
    assert_string_equal(r.items[1], "L:next");
}

static void a_line_of_max_bytes_passes_and_one_more_does_not(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 5);
    framer_feed(&f, "12345\n123456\nok\n", 16, on_frame, &r);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.items[0], "L:12345");
    assert_string_equal(r.items[1], "TOO_LONG");
    assert_string_equal(r.items[2], "L:ok");

    memset(&r, 0, sizeof(r));
    framer_feed(&f, "123", 3, on_frame, &r);
    framer_feed(&f, "45\n", 3, on_frame, &r); /* exactly 5 over two chunks */
    assert_string_equal(r.items[0], "L:12345");
    framer_reset(&f);
}

static void a_trickling_long_line_is_reported_once_and_skipped(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 8);
    for (int i = 0; i < 100; i++)
        framer_feed(&f, "xyz", 3, on_frame, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.items[0], "TOO_LONG");
    assert_null(f.tail); /* nothing buffered while discarding */
    framer_feed(&f, "xyz\nafter\n", 10, on_frame, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.items[1], "L:after");
    assert_true(framer_finish(&f, on_frame, &r));
    assert_int_equal(r.n, 2);
}

static void never_holds_more_than_the_limit(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 1000);
    for (int i = 0; i < 99; i++)
        framer_feed(&f, "0123456789", 10, on_frame, &r);
    assert_int_equal(f.tail_len, 990);
    assert_true(f.tail_cap <= 1000);
    framer_feed(&f, "0123456789", 10, on_frame, &r);
    assert_true(f.tail_cap <= 1000);
    framer_feed(&f, "!", 1, on_frame, &r);
    assert_string_equal(r.items[0], "TOO_LONG");
    framer_reset(&f);
}

static void a_tail_without_memory_is_reported_and_skipped(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 100);
    fail_alloc_after(0);
    framer_feed(&f, "abc", 3, on_frame, &r);
    assert_true(fail_alloc_tripped());
    assert_string_equal(r.items[0], "NO_MEMORY");
    framer_feed(&f, "def\nnext\n", 9, on_frame, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.items[1], "L:next");

    framer_reset(&f);
}

static void a_line_completing_without_memory_is_reported(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 1000);
    framer_feed(&f, "ab", 2, on_frame, &r); /* the tail starts small */
    char rest[301];
    memset(rest, 'x', 300);
    rest[300] = '\n';
    fail_alloc_after(0); /* completing the line must grow the tail */
    framer_feed(&f, rest, sizeof(rest), on_frame, &r);
    assert_true(fail_alloc_tripped());
    framer_feed(&f, "next\n", 5, on_frame, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.items[0], "NO_MEMORY");
    assert_string_equal(r.items[1], "L:next");
    assert_null(f.tail);
}

static void the_callback_can_stop_the_feed(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {.stop_after = 2};
    framer_init(&f, 100);
    assert_false(framer_feed(&f, "a\nb\nc\nd\n", 8, on_frame, &r));
    assert_int_equal(r.n, 2);
    framer_reset(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splits_lines_whatever_the_chunking),
        cmocka_unit_test(holds_no_buffer_between_lines),
        cmocka_unit_test(a_line_of_max_bytes_passes_and_one_more_does_not),
        cmocka_unit_test(a_trickling_long_line_is_reported_once_and_skipped),
        cmocka_unit_test(never_holds_more_than_the_limit),
        cmocka_unit_test(a_tail_without_memory_is_reported_and_skipped),
        cmocka_unit_test(a_line_completing_without_memory_is_reported),
        cmocka_unit_test(the_callback_can_stop_the_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
