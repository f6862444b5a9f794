/*
 * test_budget: --max-memory's order of reclaiming, on a real broker and
 * real conns over socket pairs: cached messages oldest first, then the
 * client holding the most, then refusal; and the cgroup limit's text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
#include "mqd/broker.h"
#include "mqd/budget.h"
#include "mqd/conn.h"

/* the loop's business, which these tests do by hand */
static void no_rearm(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
}

struct world {
    struct log log;
    struct conn_env env;
    struct conn *conns[3];
    int peers[3]; /* the clients' ends of the socket pairs */
};

static struct world *world_new(void)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->log = (struct log){.level = LOG_LEVEL_ERROR, .out = stderr};
    struct broker_config bc = {
        .cache_size = 100, .max_retired = 100, .random_seed = 7, .deliver = conn_deliver};
    w->env.broker = broker_new(&bc);
    assert_non_null(w->env.broker);
    w->env.log = &w->log;
    w->env.max_line = 1 << 20;
    w->env.max_output = 64 << 20;
    w->env.max_topic_length = 1024;
    sched_init(&w->env.sched, no_rearm, NULL);
    for (int i = 0; i < 3; i++) {
        int fds[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        w->conns[i] = conn_new(&w->env, fds[0], "test");
        assert_non_null(w->conns[i]);
        w->peers[i] = fds[1];
    }
    return w;
}

/* budget_over: a budget `room` bytes above what is held now */
static struct budget *budget_over(struct world *w, size_t room)
{
    struct budget_config bc = {.limit = mqd_allocated() + room,
                               .slack = 0,
                               .broker = w->env.broker,
                               .clients = &w->env,
                               .log = &w->log};
    struct budget *b = budget_new(&bc);
    assert_non_null(b);
    return b;
}

static void world_free(struct world *w, struct budget *b)
{
    budget_free(b);
    while (w->env.conns)
        conn_free(w->env.conns);
    for (int i = 0; i < 3; i++)
        close(w->peers[i]);
    broker_free(w->env.broker);
    free(w);
}

static void run(struct conn *c, const char *line) { conn_receive(c, line, strlen(line)); }

static struct broker_stats stats(struct world *w)
{
    struct broker_stats st;
    broker_get_stats(w->env.broker, &st);
    return st;
}

/* cache: n messages of `size` bytes to topic t, sent by conn 0 */
static void cache(struct world *w, const char *t, int n, size_t size)
{
    char *line = malloc(size + 128);
    assert_non_null(line);
    int len = snprintf(line, size + 128, "{\"command\":\"send\",\"topic\":\"%s\",\"msg\":\"", t);
    memset(line + len, 'x', size);
    strcpy(line + len + size, "\",\"delivery\":\"all\"}\n");
    for (int i = 0; i < n; i++)
        run(w->conns[0], line);
    free(line);
}

/* send_uncached: n messages of 200 bytes to topic t, not cached, by conn 0 */
static void send_uncached(struct world *w, const char *t, int n)
{
    char line[300];
    snprintf(line, sizeof(line),
             "{\"command\":\"send\",\"topic\":\"%s\",\"msg\":\"%0200d\",\"delivery\":"
             "\"all\",\"cache\":false}\n",
             t, 0);
    for (int i = 0; i < n; i++)
        run(w->conns[0], line);
}

static void without_a_limit_there_is_always_room(void **state)
{
    (void)state;
    assert_true(budget_make_room(NULL, SIZE_MAX, NULL));
    struct world *w = world_new();
    struct budget_config bc = {.limit = 0, .broker = w->env.broker, .clients = &w->env,
                               .log = &w->log};
    struct budget *b = budget_new(&bc);
    assert_true(budget_make_room(b, SIZE_MAX / 2, NULL));
    assert_int_equal(budget_limit(b), 0);
    void *big = mqd_malloc(1 << 20); /* and no ceiling */
    assert_non_null(big);
    mqd_free(big);
    world_free(w, b);
}

static void cached_messages_go_first_oldest_first(void **state)
{
    (void)state;
    struct world *w = world_new();
    /* a client holding enough to be worth disconnecting: it must stay */
    run(w->conns[2], "{\"command\":\"subscribe\",\"topic\":\"big\",\"cache\":false}\n");
    send_uncached(w, "big", 400);
    assert_true(conn_memory(w->conns[2]) >= 64 * 1024);
    cache(w, "old", 10, 1000);
    cache(w, "new", 10, 1000);
    struct budget *b = budget_over(w, 5000);
    assert_true(budget_make_room(b, 12000, NULL)); /* needs about 7000 back */
    struct broker_stats st = stats(w);
    assert_true(st.cache_evictions >= 7 && st.cache_evictions <= 10);
    assert_int_equal(st.cached_messages, 20 - st.cache_evictions);
    /* the oldest went: "old"'s messages, "new" untouched */
    assert_int_equal(st.topics, st.cache_evictions == 10 ? 2 : 3); /* and "big" */
    assert_true(mqd_allocated() + 12000 <= budget_limit(b));
    assert_int_equal(w->env.stats.evicted_for_memory, 0);
    world_free(w, b);
}

static void then_the_client_holding_the_most_is_disconnected(void **state)
{
    (void)state;
    struct world *w = world_new();
    /* conns 1 and 2 subscribe and never read; 2 gets more queued */
    run(w->conns[1], "{\"command\":\"subscribe\",\"topic\":\"a\",\"cache\":false}\n");
    run(w->conns[2], "{\"command\":\"subscribe\",\"topic\":\"b\",\"cache\":false}\n");
    send_uncached(w, "a", 400); /* about 90 KiB to conn 1 */
    send_uncached(w, "b", 800); /* about 180 KiB to conn 2 */
    assert_true(conn_memory(w->conns[2]) > conn_memory(w->conns[1]));
    assert_true(conn_memory(w->conns[1]) >= 64 * 1024);
    struct budget *b = budget_over(w, 0);
    assert_true(budget_make_room(b, 100000, w->conns[0]));
    assert_true(w->conns[2]->closing);
    assert_false(w->conns[1]->closing); /* one was enough */
    assert_int_equal(conn_memory(w->conns[2]), sizeof(struct conn)); /* released at once */
    assert_int_equal(w->env.stats.evicted_for_memory, 1);
    /* what conn 2 freed is not enough for this: conn 1 goes too */
    assert_true(mqd_allocated() + 300000 > budget_limit(b));
    assert_true(budget_make_room(b, 300000, w->conns[0]));
    assert_true(w->conns[1]->closing);
    /* more than the whole budget: refused before anything is thrown away */
    assert_false(budget_make_room(b, 1 << 20, w->conns[0]));
    assert_false(w->conns[0]->closing);
    assert_int_equal(w->env.stats.evicted_for_memory, 2);
    world_free(w, b);
}

static void a_client_cut_for_memory_frees_its_one_lines_too(void **state)
{
    (void)state;
    struct world *w = world_new();
    /* as above, but conn 2's queue is delivery "one" lines: they must go
     * with it (counted lost), or cutting it would free nothing */
    run(w->conns[1], "{\"command\":\"subscribe\",\"topic\":\"a\",\"cache\":false}\n");
    run(w->conns[2], "{\"command\":\"subscribe\",\"topic\":\"b\",\"cache\":false}\n");
    send_uncached(w, "a", 400);
    char line[300];
    snprintf(line, sizeof(line),
             "{\"command\":\"send\",\"topic\":\"b\",\"msg\":\"%0200d\",\"delivery\":"
             "\"one\",\"cache\":false}\n",
             0);
    for (int i = 0; i < 800; i++)
        run(w->conns[0], line);
    assert_true(conn_memory(w->conns[2]) > conn_memory(w->conns[1]));
    struct budget *b = budget_over(w, 0);
    assert_true(budget_make_room(b, 100000, w->conns[0]));
    assert_true(w->conns[2]->closing);
    assert_false(w->conns[1]->closing); /* one was enough */
    assert_int_equal(stats(w).one_lost, 800);
    world_free(w, b);
}

static void the_requester_itself_may_be_the_one(void **state)
{
    (void)state;
    struct world *w = world_new();
    run(w->conns[1], "{\"command\":\"subscribe\",\"topic\":\"a\",\"cache\":false}\n");
    send_uncached(w, "a", 400);
    size_t held = conn_memory(w->conns[1]);
    struct budget *b = budget_over(w, 0);
    assert_false(budget_make_room(b, 1000, w->conns[1]));
    assert_true(w->conns[1]->closing);
    assert_int_equal(conn_memory(w->conns[1]), held); /* freed after the iteration */
    world_free(w, b);
}

/* a conn closed during the iteration (a slow consumer, a requester cut for
 * memory) still holds its queue until the loop frees it: making room gives
 * that back first, before anyone else is disconnected */
static void what_closed_conns_hold_goes_before_anyone_else(void **state)
{
    (void)state;
    struct world *w = world_new();
    run(w->conns[1], "{\"command\":\"subscribe\",\"topic\":\"a\",\"cache\":false}\n");
    run(w->conns[2], "{\"command\":\"subscribe\",\"topic\":\"b\",\"cache\":false}\n");
    send_uncached(w, "a", 400); /* about 90 KiB queued to conn 1 */
    send_uncached(w, "b", 100); /* and some to conn 2 */
    conn_close(w->conns[1], "slow consumer");
    struct budget *b = budget_over(w, 0);
    assert_true(budget_make_room(b, 50000, w->conns[0]));
    assert_int_equal(conn_memory(w->conns[1]), sizeof(struct conn));
    assert_false(w->conns[2]->closing);
    assert_int_equal(w->env.stats.evicted_for_memory, 0);
    world_free(w, b);
}

/* a new connection or a scrape, which no client asked for, gets room from
 * the caches only; and a need over the whole budget is refused before
 * anything is thrown away for it */
static void room_nobody_asked_for_never_costs_a_client(void **state)
{
    (void)state;
    struct world *w = world_new();
    run(w->conns[1], "{\"command\":\"subscribe\",\"topic\":\"a\",\"cache\":false}\n");
    send_uncached(w, "a", 400);
    cache(w, "c", 3, 1000);
    struct budget *b = budget_over(w, 0);
    assert_true(budget_make_room_from_cache(b, 2000));
    assert_true(stats(w).cache_evictions > 0);
    assert_false(budget_make_room_from_cache(b, 50000)); /* the cache is not enough */
    assert_false(w->conns[1]->closing);
    assert_false(budget_make_room(b, budget_limit(b) + 1, w->conns[0]));
    assert_false(w->conns[1]->closing);
    assert_int_equal(w->env.stats.evicted_for_memory, 0);
    world_free(w, b);
}

static void a_growing_unfinished_line_asks_first(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct budget *b = budget_over(w, 100000);
    w->env.budget = b;
    w->conns[1]->framer.budget = b;
    char *part = malloc(200000);
    memset(part, 'x', 200000);
    part[0] = '{';
    conn_receive(w->conns[1], part, 90000); /* fits */
    assert_false(w->conns[1]->closing);
    assert_int_equal(w->conns[1]->framer.tail_len, 90000);
    conn_receive(w->conns[1], part, 90000); /* would pass: it holds the most */
    assert_true(w->conns[1]->closing);
    assert_true(mqd_allocated() <= budget_limit(b) + 200000);
    free(part);
    w->env.budget = NULL;
    world_free(w, b);
}

static void cgroup_limits_are_read_as_the_kernel_writes_them(void **state)
{
    (void)state;
    assert_int_equal(budget_parse_cgroup_limit("max\n"), 0);
    assert_int_equal(budget_parse_cgroup_limit("268435456\n"), 268435456);
    assert_int_equal(budget_parse_cgroup_limit("1073741824"), 1073741824);
    assert_int_equal(budget_parse_cgroup_limit("9223372036854771712\n"), 0); /* v1: none */
    assert_int_equal(budget_parse_cgroup_limit(""), 0);
    assert_int_equal(budget_parse_cgroup_limit("12ab\n"), 0);
    char why[128] = "";
    size_t limit = budget_default_limit(why, sizeof(why));
    assert_true(limit > 0);
    assert_non_null(strstr(why, "half of the"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(without_a_limit_there_is_always_room),
        cmocka_unit_test(cached_messages_go_first_oldest_first),
        cmocka_unit_test(then_the_client_holding_the_most_is_disconnected),
        cmocka_unit_test(a_client_cut_for_memory_frees_its_one_lines_too),
        cmocka_unit_test(the_requester_itself_may_be_the_one),
        cmocka_unit_test(what_closed_conns_hold_goes_before_anyone_else),
        cmocka_unit_test(room_nobody_asked_for_never_costs_a_client),
        cmocka_unit_test(a_growing_unfinished_line_asks_first),
        cmocka_unit_test(cgroup_limits_are_read_as_the_kernel_writes_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
