#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/broker.h"

/* The fake receivers: every delivery is recorded as (receiver, line). */
enum { MAX_DELIVERIES = 4096 };
struct delivery {
    int receiver;
    struct buf *line; /* a reference, dropped by reset_deliveries */
};
static struct delivery deliveries[MAX_DELIVERIES];
static size_t ndeliveries;
static int receivers[8] = {0, 1, 2, 3, 4, 5, 6, 7};

static void record(void *ctx, struct buf *line)
{
    assert_true(ndeliveries < MAX_DELIVERIES);
    deliveries[ndeliveries].receiver = *(int *)ctx;
    deliveries[ndeliveries].line = buf_ref(line);
    ndeliveries++;
}

static void reset_deliveries(void)
{
    for (size_t i = 0; i < ndeliveries; i++)
        buf_unref(deliveries[i].line);
    ndeliveries = 0;
}

static struct broker *make_broker(size_t cache_size)
{
    struct broker_config config = {.cache_size = cache_size, .random_seed = 42, .deliver = record};
    memset(config.hash_seed, 7, sizeof(config.hash_seed));
    struct broker *b = broker_new(&config);
    assert_non_null(b);
    return b;
}

static struct broker_client *client(struct broker *b, int id)
{
    struct broker_client *c = broker_client_new(b, &receivers[id]);
    assert_non_null(c);
    return c;
}

static int subscribe(struct broker *b, struct broker_client *c, const char *topic)
{
    return broker_subscribe(b, c, topic, strlen(topic));
}

static void replay(struct broker *b, struct broker_client *c, const char *topic, int64_t last_seen)
{
    broker_replay(b, c, topic, strlen(topic), last_seen);
}

/* send: a send of `msg` as a sender would write it. */
static int send_msg(struct broker *b, const char *topic, const char *msg, bool one, bool cache)
{
    static char object[512];
    snprintf(object, sizeof(object), "{\"command\":\"send\",\"topic\":\"%s\",\"msg\":\"%s\"}",
             topic, msg);
    struct broker_message m = {topic, strlen(topic), object, strlen(object), one, cache};
    return broker_send(b, &m);
}

/* index_of: the index at the end of a delivered line. */
static long index_of(const struct buf *line)
{
    const char *key = strstr(line->data, "\"index\": ");
    assert_non_null(key);
    return strtol(key + 9, NULL, 10);
}

static void assert_delivered(size_t i, int receiver, long index)
{
    assert_true(i < ndeliveries);
    assert_int_equal(deliveries[i].receiver, receiver);
    assert_int_equal(index_of(deliveries[i].line), index);
}

static struct broker_stats stats_of(const struct broker *b)
{
    struct broker_stats s;
    broker_get_stats(b, &s);
    return s;
}

static void the_line_is_the_object_with_index_added(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "t");
    send_msg(b, "t", "a\\u0000b", false, true);
    const char want[] =
        "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"a\\u0000b\", \"index\": 0}\r\n";
    assert_int_equal(deliveries[0].line->len, sizeof(want) - 1);
    assert_memory_equal(deliveries[0].line->data, want, sizeof(want) - 1);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void indexes_count_per_topic_with_or_without_receivers(void **state)
{
    (void)state;
    struct broker *b = make_broker(0);
    struct broker_client *c = client(b, 1);
    send_msg(b, "a", "x", false, false);
    send_msg(b, "a", "x", true, false);
    subscribe(b, c, "a");
    subscribe(b, c, "b");
    send_msg(b, "a", "x", false, true);
    send_msg(b, "b", "x", false, true);
    assert_delivered(0, 1, 2);
    assert_delivered(1, 1, 0);
    assert_int_equal(stats_of(b).messages_received, 4);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void all_reaches_every_subscriber_with_one_shared_line(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *cs[4];
    for (int i = 0; i < 4; i++) {
        cs[i] = client(b, i);
        subscribe(b, cs[i], "t");
    }
    struct broker_client *outsider = client(b, 5);
    subscribe(b, outsider, "other");
    send_msg(b, "t", "m", false, true);
    assert_int_equal(ndeliveries, 4);
    int seen = 0;
    for (size_t i = 0; i < 4; i++) {
        seen |= 1 << deliveries[i].receiver;
        assert_ptr_equal(deliveries[i].line, deliveries[0].line);
    }
    assert_int_equal(seen, 0xf);
    /* the cache holds the same line: 4 receivers + the cache */
    assert_int_equal(deliveries[0].line->refs, 5);
    reset_deliveries();
    for (int i = 0; i < 4; i++)
        broker_client_free(cs[i]);
    broker_client_free(outsider);
    broker_free(b);
}

static void one_reaches_exactly_one_uniformly_and_is_not_cached(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *cs[3];
    for (int i = 0; i < 3; i++) {
        cs[i] = client(b, i);
        subscribe(b, cs[i], "t");
    }
    int counts[3] = {0};
    for (int n = 0; n < 3000; n++) {
        send_msg(b, "t", "m", true, true);
        assert_int_equal(ndeliveries, 1);
        counts[deliveries[0].receiver]++;
        reset_deliveries();
    }
    for (int i = 0; i < 3; i++)
        assert_true(counts[i] > 850 && counts[i] < 1150);
    assert_int_equal(stats_of(b).cached_messages, 0);
    for (int i = 0; i < 3; i++)
        broker_client_free(cs[i]);
    broker_free(b);
}

static void one_without_subscribers_waits_in_the_cache_for_one_taker(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    send_msg(b, "t", "kept", true, true);
    send_msg(b, "t", "shared", false, true);
    assert_int_equal(stats_of(b).cached_messages, 2);
    struct broker_client *first = client(b, 1), *second = client(b, 2);
    subscribe(b, first, "t");
    replay(b, first, "t", -1);
    assert_int_equal(ndeliveries, 2);
    assert_delivered(0, 1, 0);
    assert_delivered(1, 1, 1);
    reset_deliveries();
    subscribe(b, second, "t");
    replay(b, second, "t", -1);
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 2, 1);
    reset_deliveries();
    broker_client_free(first);
    broker_client_free(second);
    broker_free(b);
}

static void cache_false_is_never_cached(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    send_msg(b, "t", "a", false, false);
    send_msg(b, "t", "o", true, false);
    assert_int_equal(stats_of(b).cached_messages, 0);
    broker_free(b);
}

static void the_cache_keeps_the_last_n(void **state)
{
    (void)state;
    struct broker *b = make_broker(3);
    for (int i = 0; i < 10; i++)
        send_msg(b, "t", "m", false, true);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "t");
    replay(b, c, "t", -1);
    assert_int_equal(ndeliveries, 3);
    for (size_t i = 0; i < 3; i++)
        assert_delivered(i, 1, 7 + (long)i);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void replay_starts_after_last_seen_and_keeps_older_once_entries(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    for (int i = 0; i < 6; i++)
        send_msg(b, "t", "m", i % 2 == 0, true); /* 0, 2, 4 are "one" */
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "t");
    replay(b, c, "t", 2);
    assert_int_equal(ndeliveries, 3);
    assert_delivered(0, 1, 3);
    assert_delivered(1, 1, 4);
    assert_delivered(2, 1, 5);
    reset_deliveries();
    replay(b, c, "t", -1); /* 4 was handed over; 0 and 2 stayed */
    assert_int_equal(ndeliveries, 5);
    long want[] = {0, 1, 2, 3, 5};
    for (size_t i = 0; i < 5; i++)
        assert_delivered(i, 1, want[i]);
    reset_deliveries();
    replay(b, c, "t", INT64_MAX);
    assert_int_equal(ndeliveries, 0);
    broker_client_free(c);
    broker_free(b);
}

static void subscribing_twice_delivers_once(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    assert_int_equal(subscribe(b, c, "t"), 0);
    assert_int_equal(subscribe(b, c, "t"), 0);
    assert_int_equal(stats_of(b).subscriptions, 1);
    send_msg(b, "t", "m", false, true);
    assert_int_equal(ndeliveries, 1);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void unsubscribe_stops_delivery_and_unknown_topics_are_fine(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1), *d = client(b, 2);
    broker_unsubscribe(b, c, "never", 5);
    assert_int_equal(stats_of(b).topics, 0);
    subscribe(b, c, "t");
    subscribe(b, d, "t");
    broker_unsubscribe(b, d, "u", 1);
    broker_unsubscribe(b, c, "t", 1);
    send_msg(b, "t", "m", false, true);
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 2, 0);
    reset_deliveries();
    for (int i = 0; i < 10; i++)
        send_msg(b, "t", "m", true, false);
    for (size_t i = 0; i < ndeliveries; i++)
        assert_int_equal(deliveries[i].receiver, 2);
    reset_deliveries();
    broker_client_free(c);
    broker_client_free(d);
    broker_free(b);
}

static void a_departing_client_leaves_every_topic(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *gone = client(b, 1), *stays = client(b, 2);
    char name[16];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        subscribe(b, gone, name);
        if (i % 2)
            subscribe(b, stays, name);
    }
    assert_int_equal(stats_of(b).subscriptions, 75);
    broker_client_free(gone);
    assert_int_equal(stats_of(b).subscriptions, 25);
    assert_int_equal(stats_of(b).topics, 25); /* never sent to, nobody left: gone */
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        send_msg(b, name, "m", true, false);
    }
    assert_int_equal(ndeliveries, 25);
    for (size_t i = 0; i < ndeliveries; i++)
        assert_int_equal(deliveries[i].receiver, 2);
    reset_deliveries();
    broker_client_free(stays);
    assert_int_equal(stats_of(b).topics, 50); /* sent to: they keep their index */
    broker_free(b);
}

static void stats_count_topics_subscriptions_and_cache(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "a");
    send_msg(b, "b", "m", false, true);
    send_msg(b, "b", "m", false, true);
    struct broker_stats s = stats_of(b);
    assert_int_equal(s.topics, 2);
    assert_int_equal(s.subscriptions, 1);
    assert_int_equal(s.cached_messages, 2);
    assert_true(s.cached_bytes > 2 * 40);
    broker_client_free(c);
    broker_free(b);
}

static void a_hundred_thousand_topics(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct broker *b = make_broker(1);
    struct broker_client *c = client(b, 1);
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "topic-%d", i);
        assert_int_equal(subscribe(b, c, name), 0);
    }
    assert_int_equal(stats_of(b).topics, N);
    snprintf(name, sizeof(name), "topic-%d", N / 2);
    send_msg(b, name, "m", false, true);
    assert_int_equal(ndeliveries, 1);
    reset_deliveries();
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "topic-%d", i);
        broker_unsubscribe(b, c, name, strlen(name));
    }
    assert_int_equal(stats_of(b).subscriptions, N / 2);
    broker_client_free(c);
    assert_int_equal(stats_of(b).topics, 1);
    broker_free(b);
}

/* Allocation failure: each allocation of an operation fails in turn; every
 * failure must leave the broker as it was, and the retry must work. */

struct snapshot {
    struct broker_stats stats;
    size_t deliveries;
};

static struct snapshot snap(const struct broker *b)
{
    return (struct snapshot){stats_of(b), ndeliveries};
}

static void assert_unchanged(const struct snapshot *before, const struct broker *b)
{
    struct snapshot now = snap(b);
    assert_int_equal(now.stats.topics, before->stats.topics);
    assert_int_equal(now.stats.subscriptions, before->stats.subscriptions);
    assert_int_equal(now.stats.cached_messages, before->stats.cached_messages);
    assert_int_equal(now.stats.messages_received, before->stats.messages_received);
    assert_int_equal(now.deliveries, before->deliveries);
}

typedef int (*operation_fn)(struct broker *b, struct broker_client *c);

static int op_subscribe_new_topic(struct broker *b, struct broker_client *c)
{
    return subscribe(b, c, "fresh");
}
static int op_subscribe_existing_topic(struct broker *b, struct broker_client *c)
{
    return subscribe(b, c, "shared");
}
static int op_send_cached_new_topic(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "brand-new", "m", false, true);
}
static int op_send_uncached(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "shared", "m", false, false);
}
static int op_send_one_cached(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "empty", "m", true, true);
}

static void each_allocation_failing_leaves_the_broker_unchanged(void **state)
{
    (void)state;
    operation_fn ops[] = {op_subscribe_new_topic, op_subscribe_existing_topic,
                          op_send_cached_new_topic, op_send_uncached, op_send_one_cached};
    for (size_t op = 0; op < sizeof(ops) / sizeof(ops[0]); op++) {
        for (size_t fail_at = 0;; fail_at++) {
            struct broker *b = make_broker(4);
            struct broker_client *other = client(b, 2), *c = client(b, 1);
            subscribe(b, other, "shared");
            send_msg(b, "shared", "before", false, true);
            reset_deliveries();
            struct snapshot before = snap(b);
            fail_alloc_after(fail_at);
            int rc = ops[op](b, c);
            bool tripped = fail_alloc_tripped();
            fail_alloc_off();
            if (tripped) {
                assert_int_equal(rc, -1);
                assert_unchanged(&before, b);
                assert_int_equal(ops[op](b, c), 0); /* the retry works */
            } else {
                assert_int_equal(rc, 0);
            }
            /* nothing was lost: a send still gets the next index */
            reset_deliveries();
            send_msg(b, "shared", "after", false, true);
            assert_delivered(0, 2, op == 3 ? 2 : 1);
            reset_deliveries();
            broker_client_free(c);
            broker_client_free(other);
            broker_free(b);
            if (!tripped)
                break;
        }
    }
}

static void client_creation_fails_cleanly(void **state)
{
    (void)state;
    struct broker *b = make_broker(4);
    fail_alloc_after(0);
    assert_null(broker_client_new(b, &receivers[1]));
    fail_alloc_off();
    broker_free(b);
    fail_alloc_after(0);
    struct broker_config config = {.cache_size = 1, .deliver = record};
    assert_null(broker_new(&config));
    fail_alloc_after(1);
    assert_null(broker_new(&config));
    fail_alloc_after(2);
    assert_null(broker_new(&config));
    fail_alloc_off();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_line_is_the_object_with_index_added),
        cmocka_unit_test(indexes_count_per_topic_with_or_without_receivers),
        cmocka_unit_test(all_reaches_every_subscriber_with_one_shared_line),
        cmocka_unit_test(one_reaches_exactly_one_uniformly_and_is_not_cached),
        cmocka_unit_test(one_without_subscribers_waits_in_the_cache_for_one_taker),
        cmocka_unit_test(cache_false_is_never_cached),
        cmocka_unit_test(the_cache_keeps_the_last_n),
        cmocka_unit_test(replay_starts_after_last_seen_and_keeps_older_once_entries),
        cmocka_unit_test(subscribing_twice_delivers_once),
        cmocka_unit_test(unsubscribe_stops_delivery_and_unknown_topics_are_fine),
        cmocka_unit_test(a_departing_client_leaves_every_topic),
        cmocka_unit_test(stats_count_topics_subscriptions_and_cache),
        cmocka_unit_test(a_hundred_thousand_topics),
        cmocka_unit_test(each_allocation_failing_leaves_the_broker_unchanged),
        cmocka_unit_test(client_creation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
