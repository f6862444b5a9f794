/*
 * test_sched: a client's turns, driven as the loop drives them, over socket
 * pairs: a turn ends at its budget with the rest held, held clients resume
 * oldest first and in order, a spent pass runs only light lines, and a conn
 * freed while held leaves no trace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "mqd/broker.h"
#include "mqd/conn.h"
#include "mqd/sched.h"

#define OK "{\"success\": true}\r\n"

struct world {
    struct log log;
    struct conn_env env;
    struct conn *conns[3];
    int peers[3];
    size_t rearmed;
    struct conn *rearm_order[16];
};

static void count_rearm(void *ctx, struct conn *c)
{
    struct world *w = ctx;
    if (w->rearmed < 16)
        w->rearm_order[w->rearmed] = c;
    w->rearmed++;
}

/* written: the loop wrote everything the flush lists name (here: only
 * forgotten, so the queues keep counting what was queued) */
static void written(struct sched *s)
{
    struct sched_list *lists[] = {&s->fresh, &s->bulk};
    for (int i = 0; i < 2; i++) {
        struct conn *c;
        while ((c = lists[i]->head)) {
            lists[i]->head = c->next_flush;
            c->in_flush_list = false;
        }
        lists[i]->tail = &lists[i]->head;
    }
}

static struct world *world_new(void)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->log = (struct log){.level = LOG_LEVEL_ERROR, .out = stderr};
    struct broker_config bc = {.max_retired = 100, .random_seed = 7, .deliver = conn_deliver};
    w->env.broker = broker_new(&bc);
    assert_non_null(w->env.broker);
    w->env.log = &w->log;
    w->env.max_line = 1 << 20;
    w->env.max_output = 1 << 30;
    w->env.max_topic_length = 1024;
    sched_init(&w->env.sched, count_rearm, w);
    for (int i = 0; i < 3; i++) {
        int fds[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        w->conns[i] = conn_new(&w->env, fds[0], "test");
        assert_non_null(w->conns[i]);
        w->peers[i] = fds[1];
    }
    return w;
}

static void world_free(struct world *w)
{
    for (int i = 0; i < 3; i++) {
        if (w->conns[i])
            conn_free(w->conns[i]);
        close(w->peers[i]);
    }
    broker_depart(w->env.broker, SIZE_MAX);
    broker_free(w->env.broker);
    free(w);
}

static void run(struct world *w, int i, const char *text)
{
    conn_receive(w->conns[i], text, strlen(text));
}

/* endless_pass: a pass whose budget never runs out, so that only the turns'
 * count (the chunks fed here are far bigger than a read) */
static void endless_pass(struct sched *s)
{
    sched_pass_begin(s);
    s->pass_end = UINT64_MAX;
}

/* lines_queued: the lines queued to conn i and not yet written */
static size_t lines_queued(struct world *w, int i) { return w->conns[i]->out.count; }

/* sends: n pipelined sends to topic "t", in one chunk */
static char *sends(size_t n, size_t msg_len)
{
    char *msg = malloc(msg_len + 1);
    memset(msg, 'x', msg_len);
    msg[msg_len] = '\0';
    size_t one = msg_len + 80;
    char *text = malloc(n * one + 1), *at = text;
    for (size_t i = 0; i < n; i++)
        at += sprintf(at, "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"%s\",\"delivery\":\"all\"}\n",
                      msg);
    free(msg);
    return text;
}

static void a_turn_stops_at_its_budget_and_the_rest_runs_in_later_passes(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    /* each send costs its line, one delivery to conn 1 and its reply */
    run(w, 1, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    size_t cost = (strlen("{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"\",\"delivery\":\"all\"}") +
                   1000) * SCHED_LINE_BYTE_WORK +
                  2 * SCHED_DELIVERY_WORK;
    size_t per_turn = (SCHED_TURN_WORK + cost - 1) / cost; /* the last crosses the bound */
    size_t n = 3 * per_turn;
    char *text = sends(n, 1000);
    endless_pass(s);
    run(w, 0, text);
    assert_true(conn_held(w->conns[0]));
    assert_int_equal(lines_queued(w, 0), per_turn); /* the replies of the lines run */
    assert_int_equal(lines_queued(w, 1), 1 + per_turn);
    assert_ptr_equal(s->held, w->conns[0]);

    sched_resume(s); /* held in this pass: it waits for the next */
    assert_int_equal(lines_queued(w, 0), per_turn);

    size_t passes = 0;
    while (conn_held(w->conns[0])) {
        written(s);
        endless_pass(s);
        sched_resume(s);
        passes++;
        assert_true(passes < 10);
    }
    assert_int_equal(passes, 2);
    assert_int_equal(lines_queued(w, 0), n);
    assert_int_equal(lines_queued(w, 1), 1 + n);
    assert_null(s->held);
    assert_int_equal(w->rearmed, 1); /* once it held nothing more */
    assert_ptr_equal(w->rearm_order[0], w->conns[0]);
    assert_int_equal(s->passes_over_budget, 2);
    free(text);
    world_free(w);
}

static void held_lines_keep_their_order(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    run(w, 1, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    size_t n = 5000;
    char *text = sends(n, 1000);
    endless_pass(s);
    run(w, 0, text);
    assert_true(conn_held(w->conns[0]));
    while (conn_held(w->conns[0])) {
        written(s);
        endless_pass(s);
        sched_resume(s);
    }
    /* the deliveries' indexes run 0, 1, 2, ... in the queue */
    struct outq *q = &w->conns[1]->out;
    for (size_t i = 1; i < q->count; i++) {
        const struct buf *b = q->items[(q->head + i) % q->cap];
        char want[32];
        int len = snprintf(want, sizeof(want), "\"index\": %zu}", i - 1);
        assert_true(b->len > (size_t)len + 2);
        assert_memory_equal(b->data + b->len - 2 - (size_t)len, want, (size_t)len);
    }
    assert_int_equal(q->count, 1 + n);
    free(text);
    world_free(w);
}

static void a_spent_pass_runs_only_light_lines(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    sched_pass_begin(s);
    sched_charge(s, SCHED_PASS_WORK); /* the others spent it */
    assert_int_equal(sched_read_size(s), SCHED_LIGHT_LINE);
    char *heavy = sends(1, SCHED_LIGHT_LINE);
    run(w, 0, heavy);
    assert_true(conn_held(w->conns[0]));
    assert_int_equal(lines_queued(w, 0), 0);
    char *light = sends(3, 10);
    run(w, 1, light);
    assert_false(conn_held(w->conns[1]));
    assert_int_equal(lines_queued(w, 1), 3);

    /* light lines, but only for SCHED_LIGHT_WORK */
    char *many = sends(2000, 10);
    run(w, 2, many);
    assert_true(conn_held(w->conns[2]));
    size_t ran = lines_queued(w, 2), cost = (strlen(many) / 2000 - 1) * SCHED_LINE_BYTE_WORK + SCHED_DELIVERY_WORK;
    assert_int_equal(ran, (SCHED_LIGHT_WORK + cost - 1) / cost);
    free(many);

    /* a new pass, once the output is written: the heavy line runs */
    written(s);
    sched_pass_begin(s);
    assert_int_equal(sched_read_size(s), SCHED_READ_SIZE);
    sched_resume(s);
    assert_false(conn_held(w->conns[0]));
    assert_int_equal(lines_queued(w, 0), 1);
    free(heavy);
    free(light);
    world_free(w);
}

static void the_oldest_held_gets_a_whole_turn_in_a_spent_pass(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    char *heavy = sends(1, SCHED_LIGHT_LINE);
    sched_pass_begin(s);
    sched_charge(s, SCHED_PASS_WORK);
    run(w, 0, heavy);
    run(w, 1, heavy);
    assert_true(conn_held(w->conns[0]) && conn_held(w->conns[1]));
    sched_pass_begin(s);
    sched_charge(s, SCHED_PASS_WORK); /* new arrivals spent this one too */
    sched_resume(s);
    assert_false(conn_held(w->conns[0])); /* the oldest got on */
    assert_int_equal(lines_queued(w, 0), 1);
    assert_true(conn_held(w->conns[1])); /* the next waits */
    assert_int_equal(lines_queued(w, 1), 0);
    free(heavy);
    world_free(w);
}

static void a_conn_freed_while_held_leaves_the_list(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    char *heavy = sends(1, SCHED_LIGHT_LINE);
    sched_pass_begin(s);
    sched_charge(s, SCHED_PASS_WORK);
    for (int i = 0; i < 3; i++)
        run(w, i, heavy);
    conn_free(w->conns[1]); /* from the middle */
    w->conns[1] = NULL;
    conn_free(w->conns[2]); /* the last: the tail moves back */
    w->conns[2] = NULL;
    assert_ptr_equal(s->held, w->conns[0]);
    assert_null(w->conns[0]->next_held);
    assert_ptr_equal(s->held_tail, &w->conns[0]->next_held);
    sched_pass_begin(s);
    sched_resume(s);
    assert_null(s->held);
    assert_ptr_equal(s->held_tail, &s->held);
    free(heavy);
    world_free(w);
}

static void held_input_counts_as_the_conns_memory(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    char *heavy = sends(2, SCHED_LIGHT_LINE);
    size_t before = conn_memory(w->conns[0]);
    sched_pass_begin(s);
    sched_charge(s, SCHED_PASS_WORK);
    run(w, 0, heavy);
    assert_int_equal(conn_memory(w->conns[0]), before + strlen(heavy));
    free(heavy);
    world_free(w);
}

static void a_held_turns_output_is_written_after_the_fresh_and_in_shares(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    s->flush_work = 1; /* one bulk write a pass */
    run(w, 1, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    run(w, 2, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    written(s);
    char *text = sends(3 * ((SCHED_TURN_WORK + 999) / 1000), 1000);
    endless_pass(s);
    run(w, 0, text); /* held: its receivers and itself go to the bulk list */
    assert_true(conn_held(w->conns[0]));
    assert_null(s->fresh.head);
    assert_ptr_equal(s->bulk.head, w->conns[1]);
    run(w, 2, "{\"command\":\"unsubscribe\",\"topic\":\"other\"}\n"); /* light */
    /* conn 2 is on the bulk list already: it stays there, in its place */
    assert_null(s->fresh.head);
    w->rearmed = 0;
    sched_flush(s, false);
    assert_int_equal(w->rearmed, 1);
    assert_ptr_equal(w->rearm_order[0], w->conns[1]);
    size_t ran = w->conns[0]->input_off;
    endless_pass(s);
    sched_resume(s); /* the bulk list is not written yet: no turn */
    assert_int_equal(w->conns[0]->input_off, ran);
    sched_flush(s, false);
    sched_flush(s, false);
    assert_int_equal(w->rearmed, 3);
    assert_ptr_equal(w->rearm_order[1], w->conns[2]);
    assert_ptr_equal(w->rearm_order[2], w->conns[0]);
    assert_null(s->bulk.head);
    endless_pass(s);
    sched_resume(s);
    assert_true(w->conns[0]->input_off > ran);
    free(text);
    world_free(w);
}

static void a_light_turns_output_is_written_before_the_bulk(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    s->flush_work = 1;
    run(w, 1, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    written(s);
    char *text = sends(3 * ((SCHED_TURN_WORK + 999) / 1000), 1000);
    endless_pass(s);
    run(w, 0, text);
    run(w, 2, "{\"command\":\"unsubscribe\",\"topic\":\"other\"}\n");
    assert_ptr_equal(s->fresh.head, w->conns[2]);
    w->rearmed = 0;
    sched_flush(s, false);
    assert_int_equal(w->rearmed, 2); /* the fresh list whole, then one bulk write */
    assert_ptr_equal(w->rearm_order[0], w->conns[2]);
    assert_ptr_equal(w->rearm_order[1], w->conns[1]);
    sched_flush_all(s);
    assert_null(s->bulk.head);
    free(text);
    world_free(w);
}

static void a_conn_freed_while_on_the_bulk_list_leaves_it(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct sched *s = &w->env.sched;
    s->flush_work = 1;
    run(w, 1, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    run(w, 2, "{\"command\":\"subscribe\",\"topic\":\"t\",\"cache\":false}\n");
    written(s);
    char *text = sends(3 * ((SCHED_TURN_WORK + 999) / 1000), 1000);
    endless_pass(s);
    run(w, 0, text); /* held: 1, 2 and 0 on the bulk list */
    conn_close(w->conns[2], "test");
    sched_flush(s, false); /* writes 1 only: 2 and 0 stay listed */
    assert_true(w->conns[2]->in_flush_list);
    conn_free(w->conns[2]); /* from the middle (ASan: nothing refers to it after) */
    w->conns[2] = NULL;
    sched_flush(s, false);
    assert_null(s->bulk.head);
    assert_ptr_equal(s->bulk.tail, &s->bulk.head);
    /* and the last of a list */
    endless_pass(s);
    sched_resume(s);
    assert_ptr_equal(s->bulk.head, w->conns[1]);
    conn_free(w->conns[0]);
    w->conns[0] = NULL;
    sched_flush_all(s);
    assert_null(s->bulk.head);
    free(text);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_turn_stops_at_its_budget_and_the_rest_runs_in_later_passes),
        cmocka_unit_test(held_lines_keep_their_order),
        cmocka_unit_test(a_spent_pass_runs_only_light_lines),
        cmocka_unit_test(the_oldest_held_gets_a_whole_turn_in_a_spent_pass),
        cmocka_unit_test(a_conn_freed_while_held_leaves_the_list),
        cmocka_unit_test(held_input_counts_as_the_conns_memory),
        cmocka_unit_test(a_held_turns_output_is_written_after_the_fresh_and_in_shares),
        cmocka_unit_test(a_light_turns_output_is_written_before_the_bulk),
        cmocka_unit_test(a_conn_freed_while_on_the_bulk_list_leaves_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
