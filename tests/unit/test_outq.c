#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "mqd/outq.h"

static struct buf *line_of(size_t len, char fill)
{
    char *data;
    struct buf *b = buf_new(len, &data);
    memset(data, fill, len);
    return b;
}

/* flush_fd: outq_flush through the plain transport of `fd` */
static enum outq_status flush_fd(struct outq *q, int fd, size_t budget)
{
    struct transport t;
    transport_tcp_init(&t, fd);
    return outq_flush(q, &t, budget);
}

static void socket_pair(int fds[2], int sndbuf)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    if (sndbuf)
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static size_t read_all(int fd, char *out, size_t cap)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t n = 0;
    ssize_t got;
    while (n < cap && (got = read(fd, out + n, cap - n)) > 0)
        n += (size_t)got;
    return n;
}

static void pushing_counts_bytes_and_takes_references(void **state)
{
    (void)state;
    struct outq q;
    outq_init(&q, NULL);
    struct buf *b = line_of(10, 'a');
    for (int i = 0; i < 100; i++)
        assert_int_equal(outq_push(&q, b), 0);
    assert_int_equal(q.bytes, 1000);
    assert_int_equal(b->refs, 101);
    outq_clear(&q);
    assert_int_equal(b->refs, 1);
    buf_unref(b);
}

static void flush_writes_everything_in_order(void **state)
{
    (void)state;
    int fds[2];
    socket_pair(fds, 0);
    struct outq q;
    outq_init(&q, NULL);
    for (int i = 0; i < 26; i++) {
        struct buf *b = line_of((size_t)i + 1, (char)('a' + i));
        outq_push(&q, b);
        buf_unref(b);
    }
    assert_int_equal(flush_fd(&q, fds[0], SIZE_MAX), OUTQ_EMPTY);
    assert_true(outq_empty(&q));
    assert_int_equal(q.bytes, 0);
    char got[400];
    size_t n = read_all(fds[1], got, sizeof(got));
    assert_int_equal(n, 26 * 27 / 2);
    for (size_t i = 0, at = 0; i < 26; at += ++i)
        for (size_t k = 0; k <= i; k++)
            assert_int_equal(got[at + k], 'a' + (int)i);
    outq_clear(&q);
    close(fds[0]);
    close(fds[1]);
}

static void a_few_lines_go_out_gathered_in_order(void **state)
{
    (void)state;
    int fds[2];
    socket_pair(fds, 0);
    struct outq q;
    outq_init(&q, NULL);
    for (int i = 0; i < 3; i++) {
        struct buf *b = line_of(4, (char)('x' + i));
        outq_push(&q, b);
        buf_unref(b);
    }
    q.offset = 1; /* the first line half written already */
    q.bytes -= 1;
    assert_int_equal(flush_fd(&q, fds[0], SIZE_MAX), OUTQ_EMPTY);
    char got[16];
    assert_int_equal(read_all(fds[1], got, sizeof(got)), 11);
    assert_memory_equal(got, "xxxyyyyzzzz", 11);
    outq_clear(&q);
    close(fds[0]);
    close(fds[1]);
}

static void partial_writes_resume_where_they_stopped(void **state)
{
    (void)state;
    int fds[2];
    socket_pair(fds, 4096);
    struct outq q;
    outq_init(&q, NULL);
    enum { LINES = 300, LEN = 1000 };
    for (int i = 0; i < LINES; i++) {
        struct buf *b = line_of(LEN, (char)('A' + i % 26));
        outq_push(&q, b);
        buf_unref(b);
    }
    char *got = malloc(LINES * LEN);
    size_t n = 0;
    int rounds = 0;
    enum outq_status st;
    while ((st = flush_fd(&q, fds[0], SIZE_MAX)) == OUTQ_FULL) {
        n += read_all(fds[1], got + n, LINES * LEN - n);
        /* every byte written was counted out of the queue, no more */
        assert_int_equal(n, (size_t)LINES * LEN - q.bytes);
        rounds++;
    }
    assert_int_equal(st, OUTQ_EMPTY);
    n += read_all(fds[1], got + n, LINES * LEN - n);
    assert_true(rounds > 1);
    assert_int_equal(n, LINES * LEN);
    for (size_t i = 0; i < LINES * LEN; i++)
        assert_int_equal(got[i], 'A' + (int)(i / LEN) % 26);
    free(got);
    outq_clear(&q);
    close(fds[0]);
    close(fds[1]);
}

static void a_flush_stops_within_a_line_past_the_budget(void **state)
{
    (void)state;
    enum { LINES = 10, LEN = 100, BUDGET = 250 };
    int fds[2];
    socket_pair(fds, 0);
    struct outq q;
    outq_init(&q, NULL);
    for (int i = 0; i < LINES; i++) {
        struct buf *b = line_of(LEN, (char)('0' + i));
        outq_push(&q, b);
        buf_unref(b);
    }
    char got[LINES * LEN];
    size_t n = 0;
    while (!outq_empty(&q)) {
        size_t before = q.bytes;
        enum outq_status st = flush_fd(&q, fds[0], BUDGET);
        size_t written = before - q.bytes;
        /* the socket takes it all: only the budget, or the end, stops it */
        assert_true(written >= (before < BUDGET ? before : BUDGET));
        assert_true(written < BUDGET + LEN);
        assert_int_equal(st, outq_empty(&q) ? OUTQ_EMPTY : OUTQ_FULL);
        n += read_all(fds[1], got + n, sizeof(got) - n);
    }
    assert_int_equal(n, sizeof(got));
    for (size_t i = 0; i < sizeof(got); i++)
        assert_int_equal(got[i], '0' + (int)(i / LEN));
    outq_clear(&q);
    close(fds[0]);
    close(fds[1]);
}

/* push_lines: `n` lines of `len` bytes, filled with 'A', 'B', ... from `first`. */
static void push_lines(struct outq *q, int first, int n, size_t len)
{
    for (int i = first; i < first + n; i++) {
        struct buf *b = line_of(len, (char)('A' + i % 26));
        assert_int_equal(outq_push(q, b), 0);
        buf_unref(b);
    }
}

static void the_queue_keeps_its_order_when_it_wraps_and_grows(void **state)
{
    (void)state;
    enum { LEN = 2000, LINES = 16 };
    int fds[2];
    socket_pair(fds, 4096);
    struct outq q;
    outq_init(&q, NULL);
    push_lines(&q, 0, LINES / 2, LEN); /* fills the first 8 slots */
    static char got[LINES * LEN];
    assert_int_equal(flush_fd(&q, fds[0], SIZE_MAX), OUTQ_FULL);
    size_t n = read_all(fds[1], got, sizeof(got));
    assert_true(q.count > 0 && q.count < LINES / 2); /* the head moved on */
    push_lines(&q, LINES / 2, LINES / 2, LEN);       /* wraps, then grows */
    assert_int_equal(q.bytes, LINES * LEN - n);
    while (flush_fd(&q, fds[0], SIZE_MAX) == OUTQ_FULL)
        n += read_all(fds[1], got + n, sizeof(got) - n);
    n += read_all(fds[1], got + n, sizeof(got) - n);
    assert_int_equal(n, sizeof(got));
    for (size_t i = 0; i < sizeof(got); i++)
        assert_int_equal(got[i], 'A' + (int)(i / LEN) % 26);
    outq_clear(&q);
    close(fds[0]);
    close(fds[1]);
}

static void flushing_an_empty_queue_writes_nothing(void **state)
{
    (void)state;
    struct outq q;
    outq_init(&q, NULL);
    assert_int_equal(flush_fd(&q, -1, SIZE_MAX), OUTQ_EMPTY); /* no syscall: fd unused */
    outq_clear(&q);
}

/* assert_closed_peer_is_an_error: `lines` lines of `len` bytes to a socket
 * whose peer is gone; SIGPIPE is ignored, as mqd ignores it. */
static void assert_closed_peer_is_an_error(int lines, size_t len)
{
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    socket_pair(fds, 0);
    close(fds[1]);
    struct outq q;
    outq_init(&q, NULL);
    for (int i = 0; i < lines; i++) {
        struct buf *b = line_of(len, 'x');
        outq_push(&q, b);
        buf_unref(b);
    }
    assert_int_equal(flush_fd(&q, fds[0], SIZE_MAX), OUTQ_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(q.count, (size_t)lines); /* nothing counted as written */
    assert_int_equal(q.bytes, lines * len);
    outq_clear(&q);
    close(fds[0]);
}

static void a_closed_peer_is_an_error_for_a_few_short_lines(void **state)
{
    (void)state;
    assert_closed_peer_is_an_error(1, 10);
}

static void a_closed_peer_is_an_error_for_many_lines(void **state)
{
    (void)state;
    assert_closed_peer_is_an_error(100, 1000);
}

static void a_push_without_memory_changes_nothing(void **state)
{
    (void)state;
    struct outq q;
    outq_init(&q, NULL);
    struct buf *b = line_of(10, 'x');
    for (int i = 0; i < 8; i++) /* fills the first allocation */
        outq_push(&q, b);
    struct outq before = q;
    fail_alloc_after(0);
    assert_int_equal(outq_push(&q, b), -1);
    assert_true(fail_alloc_tripped());
    assert_memory_equal(&q, &before, sizeof(q));
    assert_int_equal(b->refs, 9);
    assert_int_equal(outq_push(&q, b), 0);
    assert_int_equal(q.count, 9);
    assert_int_equal(q.bytes, 90);
    assert_int_equal(b->refs, 10);
    outq_clear(&q);
    buf_unref(b);
}

/* the owner's total of slot arrays follows growth, the shrink of a drained
 * queue, and clearing; and outq_growth says what the next lines cost */
static void slot_arrays_are_counted_in_the_owners_total(void **state)
{
    (void)state;
    size_t total = 0;
    struct outq q;
    outq_init(&q, &total);
    assert_int_equal(outq_growth(&q, 1), OUTQ_FIRST_BYTES);
    /* 8, then 16, then 32 slots: at most 16 + 32 held at once */
    assert_int_equal(outq_growth(&q, 20), (16 + 32) * sizeof(struct buf *));
    push_lines(&q, 0, 100, 10);
    assert_int_equal(total, q.cap * sizeof(struct buf *));
    assert_int_equal(outq_growth(&q, q.cap - q.count), 0);
    assert_int_equal(outq_growth(&q, q.cap - q.count + 1), 2 * q.cap * sizeof(struct buf *));
    /* two doublings: 4 x cap and 2 x cap held at once, cap of it already */
    assert_int_equal(outq_growth(&q, 3 * q.cap), 5 * q.cap * sizeof(struct buf *));
    int fds[2];
    socket_pair(fds, 1 << 20);
    assert_int_equal(flush_fd(&q, fds[0], SIZE_MAX), OUTQ_EMPTY);
    assert_int_equal(total, 0); /* a big drained array is given back */
    push_lines(&q, 0, 5, 10);
    assert_int_equal(total, 8 * sizeof(struct buf *));
    outq_clear(&q);
    assert_int_equal(total, 0);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pushing_counts_bytes_and_takes_references),
        cmocka_unit_test(slot_arrays_are_counted_in_the_owners_total),
        cmocka_unit_test(flush_writes_everything_in_order),
        cmocka_unit_test(a_few_lines_go_out_gathered_in_order),
        cmocka_unit_test(partial_writes_resume_where_they_stopped),
        cmocka_unit_test(a_flush_stops_within_a_line_past_the_budget),
        cmocka_unit_test(the_queue_keeps_its_order_when_it_wraps_and_grows),
        cmocka_unit_test(flushing_an_empty_queue_writes_nothing),
        cmocka_unit_test(a_closed_peer_is_an_error_for_a_few_short_lines),
        cmocka_unit_test(a_closed_peer_is_an_error_for_many_lines),
        cmocka_unit_test(a_push_without_memory_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
