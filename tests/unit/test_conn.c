/*
 * test_conn: the command path whole, from bytes read to bytes written, with
 * every allocation on it failing in turn. Each time, the command is answered
 * "Out of memory" with nothing changed, or the connection alone is dropped;
 * the same command then works, and nothing leaks (ASan checks that).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "mqd/broker.h"
#include "mqd/conn.h"

/* the loop's business, which these tests do by hand */
static void no_rearm(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
}

#define OK "{\"success\": true}\r\n"
#define NO_MEMORY "{\"success\": false, \"reason\": \"Out of memory\"}\r\n"

struct peer {
    struct conn *conn;
    int fd; /* the client's end of the socket pair */
};

struct world {
    struct log log;
    struct conn_env env;
    struct peer a, b; /* a sends; b may subscribe */
};

static void peer_open(struct world *w, struct peer *p)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    p->conn = conn_new(&w->env, fds[0], "test");
    assert_non_null(p->conn);
    p->fd = fds[1];
}

static void peer_close(struct peer *p)
{
    conn_free(p->conn); /* closes its end */
    close(p->fd);
}

static struct world *world_new(size_t cache_size)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->log = (struct log){.level = LOG_LEVEL_ERROR, .out = stderr};
    struct broker_config bc = {
        .cache_size = cache_size, .max_retired = 100, .random_seed = 7, .deliver = conn_deliver};
    w->env.broker = broker_new(&bc);
    assert_non_null(w->env.broker);
    w->env.log = &w->log;
    w->env.max_line = 4096;
    w->env.max_output = 1 << 20;
    w->env.max_topic_length = 1024;
    sched_init(&w->env.sched, no_rearm, NULL);
    peer_open(w, &w->a);
    peer_open(w, &w->b);
    return w;
}

/* flush: what the server's loop does after a batch of events. */
static void flush(struct world *w)
{
    struct sched_list *lists[] = {&w->env.sched.fresh, &w->env.sched.bulk};
    for (int i = 0; i < 2; i++) {
        struct conn *c;
        while ((c = lists[i]->head)) {
            lists[i]->head = c->next_flush;
            c->in_flush_list = false;
            if (!c->closing)
                assert_int_equal(conn_flush(c), OUTQ_EMPTY);
        }
        lists[i]->tail = &lists[i]->head;
    }
}

static void world_free(struct world *w)
{
    peer_close(&w->a);
    peer_close(&w->b);
    broker_free(w->env.broker);
    free(w);
}

/* received: everything written to the peer so far, NUL-terminated. */
static char *received(struct peer *p)
{
    static char buf[8192];
    ssize_t n = read(p->fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void run(struct peer *p, const char *lines) { conn_receive(p->conn, lines, strlen(lines)); }

struct case_ {
    const char *name;
    /* brings the world to the state the command meets; never fails */
    void (*prepare)(struct world *w);
    const char *command; /* sent by a, in two pieces to exercise the framer */
    const char *a_gets;  /* what a receives when it works */
    const char *b_gets;
    bool allocates; /* whether anything on its path allocates */
};

static void nothing(struct world *w) { (void)w; }

static void b_subscribed(struct world *w)
{
    run(&w->b, "{\"command\":\"subscribe\",\"topic\":\"t\"}\n");
    flush(w);
    assert_string_equal(received(&w->b), OK);
}

static void t_cached(struct world *w)
{
    run(&w->b, "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\"}\n");
    flush(w);
    assert_string_equal(received(&w->b), OK);
}

static const struct case_ cases[] = {
    {"subscribe to a new topic", nothing, "{\"command\":\"subscribe\",\"topic\":\"new\"}\n", OK, "",
     true},
    {"subscribe with a replay", t_cached, "{\"command\":\"subscribe\",\"topic\":\"t\"}\n",
     OK
     "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":\"all\", \"index\": 0}\r\n",
     "", true},
    {"send to nobody, cached", nothing,
     "{\"command\":\"send\",\"topic\":\"\\u00e9\",\"msg\":\"x\",\"delivery\":\"all\"}\n", OK, "",
     true},
    {"send to a subscriber", b_subscribed,
     "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"x\",\"delivery\":\"one\"}\n", OK,
     "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"x\",\"delivery\":\"one\", \"index\": 0}\r\n",
     true},
    {"unsubscribe", b_subscribed, "{\"command\":\"unsubscribe\",\"topic\":\"t\"}\n", OK, "", true},
    {"a refused line", nothing, "{\"command\":\"jump\"}\n",
     "{\"success\": false, \"reason\": \"Malformed json message\"}\r\n", "", true},
};

static void stats_of(struct world *w, struct broker_stats *st)
{
    broker_get_stats(w->env.broker, st);
    st->messages_delivered = 0; /* replays of the prepared state count again */
}

/* run_failing: the command with allocation n failing; true when it tripped. */
static bool run_failing(const struct case_ *k, size_t n)
{
    struct world *w = world_new(10);
    k->prepare(w);
    struct broker_stats before, after;
    stats_of(w, &before);
    size_t half = strlen(k->command) / 2;
    fail_alloc_after(n);
    conn_receive(w->a.conn, k->command, half);
    conn_receive(w->a.conn, k->command + half, strlen(k->command) - half);
    bool tripped = fail_alloc_tripped();
    fail_alloc_reset();
    flush(w);
    const char *a_got = received(&w->a);
    if (!tripped) {
        assert_string_equal(a_got, k->a_gets);
        assert_string_equal(received(&w->b), k->b_gets);
    } else if (w->a.conn->closing || w->b.conn->closing) {
        /* a queue could not grow: that connection alone is dropped, and
         * the other one goes on */
        if (!w->a.conn->closing) {
            assert_string_equal(a_got, k->a_gets);
            run(&w->a, "{\"command\":\"unsubscribe\",\"topic\":\"z\"}\n");
            flush(w);
            assert_string_equal(received(&w->a), OK);
        }
    } else {
        /* refused whole: the reply says so, nothing changed, and the same
         * command then works */
        assert_string_equal(a_got, NO_MEMORY);
        assert_string_equal(received(&w->b), "");
        stats_of(w, &after);
        assert_memory_equal(&before, &after, sizeof(before));
        conn_receive(w->a.conn, k->command, strlen(k->command));
        flush(w);
        assert_string_equal(received(&w->a), k->a_gets);
        assert_string_equal(received(&w->b), k->b_gets);
    }
    world_free(w);
    return tripped;
}

static void every_allocation_of_every_command_fails_cleanly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        while (run_failing(&cases[i], n))
            n++;
        if ((n > 0) != cases[i].allocates)
            fail_msg("%s: %zu allocations on its path", cases[i].name, n);
    }
}

/* gathering: a transport that takes every byte and holds it until told
 * it went (TLS gathers records so) */
struct gathering {
    struct transport base;
    bool holding;
};

static ssize_t gathering_writev(struct transport *t, const struct iovec *iov, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    ((struct gathering *)t)->holding = true;
    return (ssize_t)total;
}

static uint32_t gathering_events(const struct transport *t)
{
    return ((const struct gathering *)t)->holding ? EPOLLOUT : 0;
}

static void draining_waits_for_what_the_transport_holds(void **state)
{
    (void)state;
    struct world *w = world_new(10);
    struct transport *tcp = w->a.conn->tr;
    struct transport_ops ops = *tcp->ops;
    ops.writev = gathering_writev;
    ops.events = gathering_events;
    struct gathering g = {.base = {&ops, tcp->fd}};
    w->a.conn->tr = &g.base;
    run(&w->a, "{\"command\":\"subscribe\",\"topic\":\"t\"}\n");
    flush(w); /* the reply is taken, and held */
    assert_true(g.holding);
    run(&w->a, "quit\n");
    assert_false(w->a.conn->closing); /* its reply has not gone yet */
    assert_int_equal(conn_flush(w->a.conn), OUTQ_EMPTY);
    assert_false(w->a.conn->closing);
    g.holding = false; /* it went */
    assert_int_equal(conn_flush(w->a.conn), OUTQ_EMPTY);
    assert_true(w->a.conn->closing);
    w->a.conn->tr = tcp;
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_of_every_command_fails_cleanly),
        cmocka_unit_test(draining_waits_for_what_the_transport_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
