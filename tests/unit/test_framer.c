#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/framer.h"

/* record: what the framer handed over, as text: each line followed by '|',
 * and "#TOO_LONG|" or "#NO_MEMORY|" for the events. */
struct record {
    char text[16384];
    size_t len;
    size_t calls;
    size_t stop_after; /* 0: never stop */
    size_t put_back_at; /* the call that puts its line back; 0: none */
};

static void append(struct record *r, const char *bytes, size_t n)
{
    assert_true(r->len + n < sizeof(r->text));
    memcpy(r->text + r->len, bytes, n);
    r->len += n;
    r->text[r->len] = '\0';
}

static enum framer_next on_frame(void *ctx, enum framer_event event, const char *line, size_t len)
{
    struct record *r = ctx;
    if (event == FRAMER_LINE && ++r->calls == r->put_back_at) {
        append(r, "^", 1);
        return FRAMER_PUT_BACK;
    }
    if (event != FRAMER_LINE)
        r->calls++;
    if (event == FRAMER_LINE) {
        assert_non_null(line);
        append(r, line, len);
        append(r, "|", 1);
    } else {
        assert_null(line);
        const char *name = event == FRAMER_TOO_LONG ? "#TOO_LONG|" : "#NO_MEMORY|";
        append(r, name, strlen(name));
    }
    return r->stop_after == 0 || r->calls < r->stop_after ? FRAMER_GO_ON : FRAMER_STOP;
}

static void feed(struct framer *f, const char *data, struct record *r)
{
    framer_feed(f, data, strlen(data), on_frame, r);
}

/* expected_events: what a framer must report for `stream` once finished,
 * worked out line by line in the plainest way. */
static void expected_events(const char *stream, size_t len, size_t max_line, struct record *want)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        bool end = i == len;
        if (!end && stream[i] != '\n')
            continue;
        size_t n = i - start;
        if (n > max_line) {
            append(want, "#TOO_LONG|", 10);
        } else if (!end || n > 0) {
            append(want, stream + start, n);
            append(want, "|", 1);
        }
        start = i + 1;
    }
}

/* next_random: xorshift64, a fixed sequence on every platform. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* random_stream: up to 40 lines of 0 to max_line + 3 bytes, the last one
 * unfinished half of the time. Returns the length. */
static size_t random_stream(char *out, size_t max_line, uint64_t *rng)
{
    static const char alphabet[] = "abc xyz\r\t{}";
    size_t len = 0;
    size_t lines = 1 + next_random(rng) % 40;
    for (size_t l = 0; l < lines; l++) {
        size_t n = next_random(rng) % (max_line + 4);
        for (size_t i = 0; i < n; i++)
            out[len++] = alphabet[next_random(rng) % (sizeof(alphabet) - 1)];
        if (l + 1 < lines || next_random(rng) % 2)
            out[len++] = '\n';
    }
    return len;
}

static void random_chunkings_give_the_lines_of_the_stream(void **state)
{
    (void)state;
    enum { MAX_LINE = 16, ROUNDS = 3000 };
    static char stream[40 * (MAX_LINE + 4)];
    static struct record got, want;
    uint64_t rng = 2024;
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = random_stream(stream, MAX_LINE, &rng);
        memset(&want, 0, sizeof(want));
        expected_events(stream, len, MAX_LINE, &want);
        memset(&got, 0, sizeof(got));
        struct framer f;
        framer_init(&f, MAX_LINE, NULL);
        /* every third round byte by byte, the others in chunks of 1 to 40 */
        for (size_t at = 0; at < len;) {
            size_t n = round % 3 == 0 ? 1 : 1 + next_random(&rng) % 40;
            if (n > len - at)
                n = len - at;
            assert_int_equal(framer_feed(&f, stream + at, n, on_frame, &got), n);
            assert_true(f.tail_len <= MAX_LINE);
            at += n;
        }
        assert_true(framer_finish(&f, on_frame, &got));
        assert_null(f.tail);
        if (strcmp(got.text, want.text) != 0)
            fail_msg("round %d:\n got  %s\n want %s", round, got.text, want.text);
    }
}

static void holds_no_buffer_between_lines(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 100, NULL);
    feed(&f, "par", &r);
    assert_non_null(f.tail);
    feed(&f, "tial\nnext\n", &r);
    assert_null(f.tail);
    assert_string_equal(r.text, "partial|next|");
}

static void a_line_of_exactly_max_line_bytes_passes(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 5, NULL);
    feed(&f, "12345\n", &r);
    feed(&f, "123", &r);
    feed(&f, "45\n", &r);
    feed(&f, "12345", &r);
    feed(&f, "\n", &r);
    feed(&f, "12345\r\n", &r); /* the '\r' counts */
    assert_string_equal(r.text, "12345|12345|12345|#TOO_LONG|");
    assert_null(f.tail);
}

static void one_byte_more_is_refused_once_in_one_chunk(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 5, NULL);
    feed(&f, "123456\nok\n", &r);
    assert_string_equal(r.text, "#TOO_LONG|ok|");
}

static void one_byte_more_is_refused_once_byte_by_byte(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 5, NULL);
    const char *bytes = "123456789\nok\n";
    for (size_t i = 0; bytes[i]; i++)
        framer_feed(&f, bytes + i, 1, on_frame, &r);
    assert_string_equal(r.text, "#TOO_LONG|ok|");
}

static void one_byte_more_is_refused_when_it_comes_with_the_newline(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 5, NULL);
    feed(&f, "12345", &r);
    feed(&f, "6\nok\n", &r);
    assert_string_equal(r.text, "#TOO_LONG|ok|");
    assert_null(f.tail);
}

static void a_trickling_long_line_is_reported_once_and_skipped(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 8, NULL);
    for (int i = 0; i < 100; i++)
        feed(&f, "xyz", &r);
    assert_string_equal(r.text, "#TOO_LONG|");
    assert_null(f.tail); /* nothing buffered while discarding */
    feed(&f, "xyz\nafter\n", &r);
    assert_string_equal(r.text, "#TOO_LONG|after|");
}

static void never_holds_more_than_the_limit(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 1000, NULL);
    for (int i = 0; i < 100; i++) {
        feed(&f, "0123456789", &r);
        assert_true(f.tail_cap <= 1000);
    }
    assert_int_equal(f.tail_len, 1000);
    feed(&f, "!", &r);
    assert_string_equal(r.text, "#TOO_LONG|");
    assert_null(f.tail);
    framer_reset(&f);
}

static void a_tail_without_memory_is_reported_and_skipped(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 100, NULL);
    fail_alloc_after(0);
    feed(&f, "abc", &r);
    assert_true(fail_alloc_tripped());
    assert_string_equal(r.text, "#NO_MEMORY|");
    assert_null(f.tail);
    feed(&f, "def\nnext\n", &r);
    assert_string_equal(r.text, "#NO_MEMORY|next|");
    framer_reset(&f);
}

static void a_line_completing_without_memory_is_reported(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 1000, NULL);
    feed(&f, "ab", &r); /* the tail starts small */
    char rest[302];
    memset(rest, 'x', 300);
    strcpy(rest + 300, "\n");
    fail_alloc_after(0); /* completing the line must grow the tail */
    feed(&f, rest, &r);
    assert_true(fail_alloc_tripped());
    assert_null(f.tail);
    feed(&f, "next\n", &r);
    assert_string_equal(r.text, "#NO_MEMORY|next|");
}

static void finish_hands_over_an_unfinished_line(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 100, NULL);
    feed(&f, "done\nlast", &r);
    assert_true(framer_finish(&f, on_frame, &r));
    assert_string_equal(r.text, "done|last|");
    assert_null(f.tail);
}

static void finish_without_an_unfinished_line_reports_nothing(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {0};
    framer_init(&f, 4, NULL);
    assert_true(framer_finish(&f, on_frame, &r));
    feed(&f, "done\n", &r);
    assert_true(framer_finish(&f, on_frame, &r));
    feed(&f, "too long, unfinished", &r);
    assert_true(framer_finish(&f, on_frame, &r));
    assert_string_equal(r.text, "done|#TOO_LONG|");
    assert_false(f.discarding);
}

static void finish_returns_what_the_callback_returned(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {.stop_after = 1};
    framer_init(&f, 100, NULL);
    feed(&f, "last", &r);
    assert_false(framer_finish(&f, on_frame, &r));
    assert_string_equal(r.text, "last|");
    assert_null(f.tail);
}

static void the_callback_can_stop_the_feed(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {.stop_after = 2};
    framer_init(&f, 100, NULL);
    assert_int_equal(framer_feed(&f, "a\nb\nc\nd", 7, on_frame, &r), 4);
    assert_string_equal(r.text, "a|b|");
    r.stop_after = 0; /* the caller feeds the rest of that chunk when it wants */
    assert_int_equal(framer_feed(&f, "c\nde\n", 5, on_frame, &r), 5);
    assert_string_equal(r.text, "a|b|c|de|");
}

static void a_line_put_back_in_the_chunk_is_not_taken(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {.put_back_at = 2};
    framer_init(&f, 100, NULL);
    assert_int_equal(framer_feed(&f, "ab\ncd\nef", 8, on_frame, &r), 3);
    assert_string_equal(r.text, "ab|^");
    assert_null(f.tail);
    assert_int_equal(framer_feed(&f, "cd\nef", 5, on_frame, &r), 5);
    assert_string_equal(r.text, "ab|^cd|");
    assert_int_equal(framer_feed(&f, "\n", 1, on_frame, &r), 1);
    assert_string_equal(r.text, "ab|^cd|ef|");
}

static void a_line_put_back_from_the_tail_is_kept_as_it_was(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {.put_back_at = 1};
    framer_init(&f, 100, NULL);
    assert_int_equal(framer_feed(&f, "abc", 3, on_frame, &r), 3);
    assert_int_equal(framer_feed(&f, "de\nfg\n", 6, on_frame, &r), 0);
    assert_string_equal(r.text, "^");
    assert_int_equal(f.tail_len, 3);
    assert_int_equal(framer_feed(&f, "de\nfg\n", 6, on_frame, &r), 6);
    assert_string_equal(r.text, "^abcde|fg|");
    assert_null(f.tail);
}

static void the_callback_can_stop_the_feed_at_a_too_long_line(void **state)
{
    (void)state;
    struct framer f;
    struct record r = {.stop_after = 1};
    framer_init(&f, 3, NULL);
    assert_int_equal(framer_feed(&f, "abcd\nnext\n", 10, on_frame, &r), 5);
    assert_string_equal(r.text, "#TOO_LONG|");
    framer_reset(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_chunkings_give_the_lines_of_the_stream),
        cmocka_unit_test(a_line_put_back_in_the_chunk_is_not_taken),
        cmocka_unit_test(a_line_put_back_from_the_tail_is_kept_as_it_was),
        cmocka_unit_test(holds_no_buffer_between_lines),
        cmocka_unit_test(a_line_of_exactly_max_line_bytes_passes),
        cmocka_unit_test(one_byte_more_is_refused_once_in_one_chunk),
        cmocka_unit_test(one_byte_more_is_refused_once_byte_by_byte),
        cmocka_unit_test(one_byte_more_is_refused_when_it_comes_with_the_newline),
        cmocka_unit_test(a_trickling_long_line_is_reported_once_and_skipped),
        cmocka_unit_test(never_holds_more_than_the_limit),
        cmocka_unit_test(a_tail_without_memory_is_reported_and_skipped),
        cmocka_unit_test(a_line_completing_without_memory_is_reported),
        cmocka_unit_test(finish_hands_over_an_unfinished_line),
        cmocka_unit_test(finish_without_an_unfinished_line_reports_nothing),
        cmocka_unit_test(finish_returns_what_the_callback_returned),
        cmocka_unit_test(the_callback_can_stop_the_feed),
        cmocka_unit_test(the_callback_can_stop_the_feed_at_a_too_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
