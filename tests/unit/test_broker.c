#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
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
static bool going_away[8]; /* receivers that refuse lines, as a closing conn */
/* receivers that take this many more lines, then go away as a slow consumer
 * cut by the next one does; 0: no such limit */
static int lines_left[8];

static bool record(void *ctx, struct buf *line)
{
    int id = *(int *)ctx;
    if (lines_left[id] > 0 && --lines_left[id] == 0)
        going_away[id] = true;
    else if (going_away[id])
        return false;
    assert_true(ndeliveries < MAX_DELIVERIES);
    deliveries[ndeliveries].receiver = *(int *)ctx;
    deliveries[ndeliveries].line = buf_ref(line);
    ndeliveries++;
    return true;
}

static void reset_deliveries(void)
{
    for (size_t i = 0; i < ndeliveries; i++)
        buf_unref(deliveries[i].line);
    ndeliveries = 0;
}

static struct broker_config config_of(size_t cache_size)
{
    struct broker_config config = {
        .cache_size = cache_size, .max_retired = 1000, .random_seed = 42, .deliver = record};
    memset(config.hash_seed, 7, sizeof(config.hash_seed));
    return config;
}

static struct broker *make_broker_with(const struct broker_config *config)
{
    struct broker *b = broker_new(config);
    assert_non_null(b);
    return b;
}

static struct broker *make_broker(size_t cache_size)
{
    struct broker_config config = config_of(cache_size);
    return make_broker_with(&config);
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

/* subscribed_clients: clients 0..n-1, each subscribed to `topic`. */
static void subscribed_clients(struct broker *b, struct broker_client **cs, int n,
                               const char *topic)
{
    for (int i = 0; i < n; i++) {
        cs[i] = client(b, i);
        assert_int_equal(subscribe(b, cs[i], topic), 0);
    }
}

static void unsubscribe(struct broker *b, struct broker_client *c, const char *topic)
{
    broker_unsubscribe(b, c, topic, strlen(topic));
}

static void replay(struct broker *b, struct broker_client *c, const char *topic, int64_t last_seen)
{
    broker_replay(b, c, topic, strlen(topic), last_seen);
}

/* object_of: a send command as a sender would write it. */
static const char *object_of(const char *topic, const char *msg)
{
    static char object[512];
    snprintf(object, sizeof(object), "{\"command\":\"send\",\"topic\":\"%s\",\"msg\":\"%s\"}",
             topic, msg);
    return object;
}

static int send_msg(struct broker *b, const char *topic, const char *msg, bool one, bool cache)
{
    const char *object = object_of(topic, msg);
    struct broker_message m = {topic, strlen(topic), object, strlen(object), one, cache};
    return broker_send(b, &m);
}

static int send_all(struct broker *b, const char *topic)
{
    return send_msg(b, topic, "m", false, true);
}

/* index_of: the index at the end of a delivered line. */
static long index_of(const struct buf *line)
{
    /* the line is not NUL-terminated: its digits end at the '}' */
    const char *key = memmem(line->data, line->len, ", \"index\": ", 11);
    assert_non_null(key);
    return strtol(key + 11, NULL, 10);
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

/* line_len: the length of the line delivered for object_of(topic, msg) at `index`. */
static size_t line_len(const char *topic, const char *msg, long index)
{
    char number[24];
    return strlen(object_of(topic, msg)) + strlen(", \"index\": ") +
           (size_t)snprintf(number, sizeof(number), "%ld", index) + strlen("\r\n");
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

static void the_index_is_written_in_full(void **state)
{
    (void)state;
    struct broker *b = make_broker(0);
    struct broker_client *c = client(b, 1);
    for (int i = 0; i < 12345; i++)
        send_msg(b, "t", "m", false, false);
    subscribe(b, c, "t");
    send_msg(b, "t", "m", false, false);
    const char *want = "\"msg\":\"m\", \"index\": 12345}\r\n";
    const struct buf *line = deliveries[0].line;
    assert_int_equal(line->len, line_len("t", "m", 12345));
    assert_memory_equal(line->data + line->len - strlen(want), want, strlen(want));
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
    send_msg(b, "a", "x", true, true);
    assert_int_equal(ndeliveries, 3);
    assert_delivered(0, 1, 2);
    assert_delivered(1, 1, 0);
    assert_delivered(2, 1, 3);
    assert_int_equal(stats_of(b).messages_received, 5);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void all_reaches_every_subscriber_with_one_shared_line(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *cs[4];
    subscribed_clients(b, cs, 4, "t");
    struct broker_client *outsider = client(b, 5);
    subscribe(b, outsider, "other");
    send_all(b, "t");
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
    subscribed_clients(b, cs, 3, "t");
    int counts[3] = {0};
    for (long n = 0; n < 3000; n++) {
        send_msg(b, "t", "m", true, true);
        assert_int_equal(ndeliveries, 1);
        assert_int_equal(index_of(deliveries[0].line), n);
        counts[deliveries[0].receiver]++;
        reset_deliveries();
    }
    for (int i = 0; i < 3; i++) /* 1000 expected, sd about 26 */
        assert_in_range(counts[i], 850, 1150);
    assert_int_equal(stats_of(b).cached_messages, 0);
    for (int i = 0; i < 3; i++)
        broker_client_free(cs[i]);
    broker_free(b);
}

static void one_skips_subscribers_going_away_and_is_cached_when_all_are(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *cs[3];
    subscribed_clients(b, cs, 3, "t");
    going_away[0] = going_away[2] = true;
    for (long n = 0; n < 50; n++) { /* whoever is picked, only 1 takes it */
        send_msg(b, "t", "m", true, true);
        assert_int_equal(ndeliveries, 1);
        assert_delivered(0, 1, n);
        reset_deliveries();
    }
    assert_int_equal(stats_of(b).messages_delivered, 50);
    assert_int_equal(stats_of(b).cached_messages, 0);
    going_away[1] = true; /* nobody takes it: cached for the next taker */
    send_msg(b, "t", "m", true, true);
    assert_int_equal(ndeliveries, 0);
    assert_int_equal(stats_of(b).cached_messages, 1);
    assert_int_equal(stats_of(b).messages_delivered, 50);
    memset(going_away, 0, sizeof(going_away));
    for (int i = 0; i < 3; i++)
        broker_client_free(cs[i]);
    broker_free(b);
}

static bool backlogged[8]; /* receivers with something queued to them */

static bool keeping_up(void *ctx) { return !backlogged[*(int *)ctx]; }

/* delivery "one" goes to a subscriber keeping up, uniformly among them;
 * when none is, uniformly among all */
static void one_prefers_subscribers_keeping_up(void **state)
{
    (void)state;
    struct broker_config config = config_of(10);
    config.keeping_up = keeping_up;
    struct broker *b = make_broker_with(&config);
    struct broker_client *cs[4];
    subscribed_clients(b, cs, 4, "t");
    backlogged[0] = backlogged[2] = true;
    int counts[4] = {0};
    for (int n = 0; n < 2000; n++) {
        send_msg(b, "t", "m", true, true);
        assert_int_equal(ndeliveries, 1);
        counts[deliveries[0].receiver]++;
        reset_deliveries();
    }
    assert_int_equal(counts[0] + counts[2], 0);
    assert_in_range(counts[1], 850, 1150); /* 1000 expected, sd about 22 */
    backlogged[1] = backlogged[3] = true;  /* nobody keeps up: any of them */
    memset(counts, 0, sizeof(counts));
    for (int n = 0; n < 2000; n++) {
        send_msg(b, "t", "m", true, true);
        counts[deliveries[0].receiver]++;
        reset_deliveries();
    }
    for (int i = 0; i < 4; i++)
        assert_in_range(counts[i], 380, 620);
    backlogged[1] = false; /* one keeping up but going away: another takes it */
    going_away[1] = true;
    send_msg(b, "t", "m", true, true);
    assert_int_equal(ndeliveries, 1);
    assert_true(deliveries[0].receiver != 1);
    reset_deliveries();
    memset(backlogged, 0, sizeof(backlogged));
    memset(going_away, 0, sizeof(going_away));
    for (int i = 0; i < 4; i++)
        broker_client_free(cs[i]);
    broker_free(b);
}

static void one_goes_only_to_current_subscribers(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *stays = client(b, 1), *leaves = client(b, 2);
    subscribe(b, stays, "t");
    subscribe(b, leaves, "t");
    unsubscribe(b, leaves, "t");
    for (int i = 0; i < 50; i++)
        send_msg(b, "t", "m", true, true);
    assert_int_equal(ndeliveries, 50);
    for (size_t i = 0; i < ndeliveries; i++)
        assert_int_equal(deliveries[i].receiver, 1);
    reset_deliveries();
    broker_client_free(stays);
    broker_client_free(leaves);
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
    assert_int_equal(stats_of(b).cached_messages, 1); /* the "one" left the cache */
    reset_deliveries();
    subscribe(b, second, "t");
    replay(b, second, "t", -1);
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 2, 1);
    reset_deliveries();
    replay(b, first, "t", -1); /* a second replay to the first taker: no "one" either */
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 1, 1);
    reset_deliveries();
    broker_client_free(first);
    broker_client_free(second);
    broker_free(b);
}

/* a subscriber cut during its replay (a slow consumer) takes nothing after
 * the line that cut it: the "one" messages it did not take stay cached for
 * the next subscriber */
static void a_replay_stops_at_the_first_refused_line(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    for (int i = 0; i < 3; i++)
        send_msg(b, "t", "once", true, true);
    send_msg(b, "t", "all", false, true);
    struct broker_client *cut = client(b, 1), *next = client(b, 2);
    subscribe(b, cut, "t");
    lines_left[1] = 1; /* takes index 0, then goes away */
    replay(b, cut, "t", -1);
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 1, 0);
    assert_int_equal(stats_of(b).messages_delivered, 1);
    assert_int_equal(stats_of(b).cached_messages, 3);
    reset_deliveries();
    subscribe(b, next, "t");
    replay(b, next, "t", -1);
    assert_int_equal(ndeliveries, 3);
    for (long i = 0; i < 3; i++)
        assert_delivered((size_t)i, 2, i + 1);
    assert_int_equal(stats_of(b).cached_messages, 1); /* the "all" stays */
    reset_deliveries();
    memset(going_away, 0, sizeof(going_away));
    broker_client_free(cut);
    broker_client_free(next);
    broker_free(b);
}

static void a_closing_subscriber_takes_no_replay(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    send_msg(b, "t", "once", true, true);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "t");
    going_away[1] = true;
    replay(b, c, "t", -1);
    assert_int_equal(ndeliveries, 0);
    assert_int_equal(stats_of(b).cached_messages, 1);
    assert_int_equal(stats_of(b).messages_delivered, 0);
    memset(going_away, 0, sizeof(going_away));
    broker_client_free(c);
    broker_free(b);
}

/* eviction takes the oldest cached message of all topics, and a replay
 * afterwards starts at the oldest message still held */
static void eviction_takes_the_oldest_across_topics(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    send_msg(b, "a", "m", false, true); /* a0 */
    send_msg(b, "b", "m", true, true);  /* b0, "one" */
    send_msg(b, "a", "m", false, true); /* a1 */
    send_msg(b, "b", "m", false, true); /* b1 */
    bool was_one = true;
    assert_true(broker_evict_oldest(b, &was_one));
    assert_false(was_one);
    assert_true(broker_evict_oldest(b, &was_one));
    assert_true(was_one);
    struct broker_stats st = stats_of(b);
    assert_int_equal(st.cache_evictions, 2);
    assert_int_equal(st.cache_evicted_one, 1);
    assert_int_equal(st.cached_messages, 2);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "a");
    replay(b, c, "a", -1);
    subscribe(b, c, "b");
    replay(b, c, "b", -1);
    assert_int_equal(ndeliveries, 2);
    assert_delivered(0, 1, 1);
    assert_delivered(1, 1, 1);
    reset_deliveries();
    broker_client_free(c);
    /* evicting the last message of a topic nobody listens to frees it */
    assert_true(broker_evict_oldest(b, &was_one));
    assert_int_equal(stats_of(b).topics, 1);
    assert_true(broker_evict_oldest(b, &was_one));
    assert_false(broker_evict_oldest(b, &was_one));
    st = stats_of(b);
    assert_int_equal(st.topics, 0);
    assert_int_equal(st.retired_topics, 2);
    assert_int_equal(st.cached_messages, 0);
    assert_int_equal(st.cached_bytes, 0);
    send_all(b, "a"); /* its counter goes on */
    c = client(b, 1);
    subscribe(b, c, "a");
    replay(b, c, "a", -1);
    assert_delivered(0, 1, 2);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void max_topics_counts_topics_alive(void **state)
{
    (void)state;
    struct broker_config config = config_of(10);
    config.max_topics = 2;
    struct broker *b = make_broker_with(&config);
    struct broker_client *c = client(b, 1);
    assert_int_equal(subscribe(b, c, "a"), BROKER_OK);
    assert_int_equal(send_msg(b, "b", "m", false, true), BROKER_OK);
    assert_int_equal(subscribe(b, c, "c"), BROKER_TOO_MANY_TOPICS);
    assert_int_equal(send_msg(b, "c", "m", false, true), BROKER_TOO_MANY_TOPICS);
    assert_int_equal(send_msg(b, "a", "m", false, true), BROKER_OK); /* existing ones work */
    assert_int_equal(subscribe(b, c, "b"), BROKER_OK);
    struct broker_stats st = stats_of(b);
    assert_int_equal(st.topics, 2);
    assert_int_equal(st.messages_received, 2);
    unsubscribe(b, c, "a"); /* "a" keeps a cached message: still alive */
    assert_int_equal(subscribe(b, c, "c"), BROKER_TOO_MANY_TOPICS);
    bool was_one;
    broker_evict_oldest(b, &was_one); /* "b"'s message: "b" still has c */
    broker_evict_oldest(b, &was_one); /* "a"'s: "a" goes */
    assert_int_equal(subscribe(b, c, "c"), BROKER_OK);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void max_subscriptions_is_per_client(void **state)
{
    (void)state;
    struct broker_config config = config_of(10);
    config.max_subscriptions = 2;
    struct broker *b = make_broker_with(&config);
    struct broker_client *c = client(b, 1), *d = client(b, 2);
    assert_int_equal(subscribe(b, c, "a"), BROKER_OK);
    assert_int_equal(subscribe(b, c, "b"), BROKER_OK);
    assert_int_equal(subscribe(b, c, "b"), BROKER_OK); /* again: adds nothing */
    assert_int_equal(subscribe(b, c, "c"), BROKER_TOO_MANY_SUBSCRIPTIONS);
    assert_int_equal(stats_of(b).topics, 2); /* "c" was not made */
    assert_int_equal(subscribe(b, d, "c"), BROKER_OK);
    unsubscribe(b, c, "a");
    assert_int_equal(subscribe(b, c, "c"), BROKER_OK);
    assert_int_equal(stats_of(b).subscriptions, 3);
    broker_client_free(c);
    broker_client_free(d);
    broker_free(b);
}

static void cache_false_is_never_cached(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    send_msg(b, "t", "a", false, false);
    send_msg(b, "t", "o", true, false); /* "one", nobody there: dropped */
    subscribe(b, c, "t");
    send_msg(b, "t", "a", false, false);
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 1, 2);
    assert_int_equal(stats_of(b).cached_messages, 0);
    reset_deliveries();
    replay(b, c, "t", -1);
    assert_int_equal(ndeliveries, 0);
    broker_client_free(c);
    broker_free(b);
}

static void the_cache_keeps_the_last_n(void **state)
{
    (void)state;
    struct broker *b = make_broker(3);
    for (int i = 0; i < 10; i++)
        send_all(b, "t");
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

static void cache_size_zero_caches_nothing(void **state)
{
    (void)state;
    struct broker *b = make_broker(0);
    send_all(b, "t");
    send_msg(b, "t", "m", true, true);
    assert_int_equal(stats_of(b).cached_messages, 0);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "t");
    replay(b, c, "t", -1);
    assert_int_equal(ndeliveries, 0);
    send_all(b, "t"); /* the two sends above still used their index */
    assert_delivered(0, 1, 2);
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
    static const long want[] = {0, 1, 2, 3, 5};
    for (size_t i = 0; i < 5; i++)
        assert_delivered(i, 1, want[i]);
    reset_deliveries();
    replay(b, c, "t", INT64_MAX);
    replay(b, c, "t", 5);
    assert_int_equal(ndeliveries, 0);
    replay(b, c, "t", INT64_MIN); /* far below: all that is left, 1, 3 and 5 */
    assert_int_equal(ndeliveries, 3);
    assert_delivered(0, 1, 1);
    assert_delivered(2, 1, 5);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void replay_of_an_unknown_topic_delivers_and_creates_nothing(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    replay(b, c, "nowhere", -1);
    assert_int_equal(ndeliveries, 0);
    assert_int_equal(stats_of(b).topics, 0);
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
    send_all(b, "t");
    assert_int_equal(ndeliveries, 1);
    reset_deliveries();
    unsubscribe(b, c, "t"); /* once is enough to leave */
    send_all(b, "t");
    assert_int_equal(ndeliveries, 0);
    broker_client_free(c);
    broker_free(b);
}

static void unsubscribe_stops_delivery_and_unknown_topics_are_fine(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1), *d = client(b, 2);
    unsubscribe(b, c, "never");
    assert_int_equal(stats_of(b).topics, 0);
    subscribe(b, c, "t");
    subscribe(b, d, "t");
    unsubscribe(b, d, "u");
    unsubscribe(b, c, "t");
    unsubscribe(b, c, "t");
    send_all(b, "t");
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 2, 0);
    reset_deliveries();
    struct broker_client *never_joined = client(b, 3);
    unsubscribe(b, never_joined, "t");
    assert_int_equal(stats_of(b).subscriptions, 1);
    broker_client_free(never_joined);
    broker_client_free(c);
    broker_client_free(d);
    broker_free(b);
}

static void a_client_can_subscribe_again_after_leaving(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "t");
    unsubscribe(b, c, "t");
    subscribe(b, c, "t");
    send_all(b, "t");
    assert_int_equal(ndeliveries, 1);
    reset_deliveries();
    broker_client_free(c);
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
    /* nobody left and nothing cached: freed, keeping only their index */
    assert_int_equal(stats_of(b).topics, 0);
    assert_int_equal(stats_of(b).retired_topics, 50);
    broker_free(b);
}

/* a detached client takes no more lines and leaves its topics in steps of
 * a budget; the broker frees it once it is in none */
static void a_detached_client_leaves_in_steps(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *leaving = client(b, 1), *stays = client(b, 2);
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        subscribe(b, leaving, name);
    }
    subscribe(b, stays, "t7");
    broker_client_detach(leaving);
    send_all(b, "t7"); /* only the one still attached gets it */
    assert_int_equal(ndeliveries, 1);
    assert_delivered(0, 2, 0);
    reset_deliveries();
    send_msg(b, "t8", "m", true, false); /* "one": nobody takes it, not even the detached */
    assert_int_equal(ndeliveries, 0);
    assert_int_equal(stats_of(b).subscriptions, 101);
    assert_false(broker_depart(b, 30));
    assert_int_equal(stats_of(b).subscriptions, 71);
    assert_false(broker_depart(b, 60));
    assert_int_equal(stats_of(b).subscriptions, 11);
    assert_true(broker_depart(b, 30)); /* done, and freed */
    assert_int_equal(stats_of(b).subscriptions, 1);
    assert_true(broker_depart(b, 30));
    struct broker_stats st = stats_of(b);
    assert_int_equal(st.topics, 1);         /* t7, which stays has */
    assert_int_equal(st.retired_topics, 1); /* t8, sent to: its index kept */
    broker_client_free(stays);
    /* a client detached with no subscription goes at once; one still
     * departing when the broker goes is freed with it */
    broker_client_detach(client(b, 3));
    struct broker_client *late = client(b, 4);
    subscribe(b, late, "x");
    broker_client_detach(late);
    broker_free(b);
}

static void unused_topics_are_freed(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "a");
    subscribe(b, c, "b");
    assert_int_equal(stats_of(b).topics, 2);
    unsubscribe(b, c, "a");
    assert_int_equal(stats_of(b).topics, 1);
    assert_int_equal(stats_of(b).retired_topics, 0); /* "a" had no index to keep */
    send_msg(b, "b", "m", false, false);             /* now "b" has an index to keep */
    unsubscribe(b, c, "b");
    assert_int_equal(stats_of(b).topics, 0);
    assert_int_equal(stats_of(b).retired_topics, 1);
    reset_deliveries();
    subscribe(b, c, "b"); /* back, with its counter */
    assert_int_equal(stats_of(b).retired_topics, 0);
    send_msg(b, "b", "m", false, false);
    assert_delivered(0, 1, 1);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void a_retired_topic_resumes_its_index(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    for (int i = 0; i < 3; i++) /* nobody listens, nothing cached: retired each time */
        assert_int_equal(send_msg(b, "quiet", "m", false, false), 0);
    assert_int_equal(stats_of(b).topics, 0);
    assert_int_equal(stats_of(b).retired_topics, 1);
    struct broker_client *c = client(b, 1);
    subscribe(b, c, "quiet");
    send_all(b, "quiet");
    assert_delivered(0, 1, 3);
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void past_max_retired_indexes_fold_and_are_never_reused(void **state)
{
    (void)state;
    struct broker_config config = config_of(0);
    config.max_retired = 10;
    struct broker *b = make_broker_with(&config);
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        for (int k = 0; k <= i % 5; k++)
            send_msg(b, name, "m", false, false);
    }
    assert_int_equal(stats_of(b).retired_topics, 10);
    struct broker_client *c = client(b, 1);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        subscribe(b, c, name);
        send_msg(b, name, "m", false, false);
        assert_true(index_of(deliveries[ndeliveries - 1].line) >= i % 5 + 1);
    }
    reset_deliveries();
    broker_client_free(c);
    broker_free(b);
}

static void stats_count_topics_subscriptions_cache_and_traffic(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c = client(b, 1), *d = client(b, 2);
    subscribe(b, c, "a");
    subscribe(b, d, "a");
    subscribe(b, c, "z");
    send_all(b, "a");                   /* 2 deliveries, cached */
    send_msg(b, "bb", "m", true, true); /* cached, waits for a taker */
    send_msg(b, "bb", "mm", false, false);
    struct broker_stats s = stats_of(b);
    assert_int_equal(s.topics, 3);
    assert_int_equal(s.subscriptions, 3);
    assert_int_equal(s.cached_messages, 2);
    assert_int_equal(s.cached_bytes, line_len("a", "m", 0) + line_len("bb", "m", 0));
    assert_int_equal(s.messages_received, 3);
    assert_int_equal(s.messages_delivered, 2);
    subscribe(b, d, "bb");
    replay(b, d, "bb", -1); /* replays count as deliveries */
    s = stats_of(b);
    assert_int_equal(s.messages_delivered, 3);
    assert_int_equal(s.cached_messages, 1);
    assert_int_equal(s.cached_bytes, line_len("a", "m", 0));
    reset_deliveries();
    broker_client_free(c);
    broker_client_free(d);
    broker_free(b);
}

static void cache_stats_follow_eviction_and_taken_messages(void **state)
{
    (void)state;
    struct broker *b = make_broker(2);
    struct broker_client *c = client(b, 1);
    send_msg(b, "t", "m", false, true);
    send_msg(b, "t", "mm", true, true);
    send_msg(b, "t", "mmm", false, true); /* a full cache drops index 0 */
    send_msg(b, "u", "m", false, false);  /* never cached */
    struct broker_stats s = stats_of(b);
    assert_int_equal(s.cached_messages, 2);
    assert_int_equal(s.cached_bytes, line_len("t", "mm", 1) + line_len("t", "mmm", 2));
    subscribe(b, c, "t");
    replay(b, c, "t", -1); /* takes the "one" at index 1 */
    s = stats_of(b);
    assert_int_equal(s.cached_messages, 1);
    assert_int_equal(s.cached_bytes, line_len("t", "mmm", 2));
    reset_deliveries();
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
    send_all(b, name);
    assert_int_equal(ndeliveries, 1);
    reset_deliveries();
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "topic-%d", i);
        unsubscribe(b, c, name);
    }
    assert_int_equal(stats_of(b).subscriptions, N / 2);
    assert_int_equal(stats_of(b).topics, N / 2 + 1);
    broker_client_free(c);
    assert_int_equal(stats_of(b).subscriptions, 0);
    assert_int_equal(stats_of(b).topics, 1);
    broker_free(b);
}

/* replay, unsubscribe and a client's departure cannot fail: an allocation
 * they make (to keep a retired index, to shrink a table) failing changes
 * nothing anyone can see */
static void operations_that_cannot_fail_keep_every_index(void **state)
{
    (void)state;
    bool tripped = true;
    for (size_t fail_at = 0; tripped; fail_at++) {
        struct broker *b = make_broker(10);
        struct broker_client *c = client(b, 1);
        subscribe(b, c, "t");
        send_msg(b, "t", "m", true, true); /* to c */
        send_msg(b, "u", "m", true, true); /* cached */
        reset_deliveries();
        fail_alloc_after(fail_at);
        replay(b, c, "u", -1);
        unsubscribe(b, c, "t");
        unsubscribe(b, c, "u");
        broker_client_free(c);
        tripped = fail_alloc_tripped();
        fail_alloc_reset();
        assert_int_equal(ndeliveries, 1);
        assert_int_equal(stats_of(b).topics, 0);
        reset_deliveries();
        c = client(b, 1);
        subscribe(b, c, "t");
        subscribe(b, c, "u");
        assert_int_equal(ndeliveries, 0); /* "u" was taken */
        send_all(b, "t");
        send_all(b, "u");
        assert_delivered(0, 1, 1);
        assert_delivered(1, 1, 1);
        reset_deliveries();
        broker_client_free(c);
        broker_free(b);
    }
}

/* Allocation failure: each allocation of an operation fails in turn; every
 * failure must leave the broker as it was, and the same call must then work. */

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
    assert_int_equal(now.stats.cached_bytes, before->stats.cached_bytes);
    assert_int_equal(now.stats.messages_received, before->stats.messages_received);
    assert_int_equal(now.stats.messages_delivered, before->stats.messages_delivered);
    assert_int_equal(now.deliveries, before->deliveries);
}

typedef int (*operation_fn)(struct broker *b, struct broker_client *c);

/* The stage every operation runs on: "shared" has a subscriber (receiver 2)
 * and one cached message (index 0); "fresh" does not exist. */
static int op_subscribe_new_topic(struct broker *b, struct broker_client *c)
{
    return subscribe(b, c, "fresh");
}
static int op_subscribe_existing_topic(struct broker *b, struct broker_client *c)
{
    return subscribe(b, c, "shared");
}
static int op_send_all_cached_new_topic(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "fresh", "m", false, true);
}
static int op_send_all_uncached_new_topic(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "fresh", "m", false, false);
}
static int op_send_all_cached_existing_topic(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "shared", "m", false, true);
}
static int op_send_all_uncached_existing_topic(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "shared", "m", false, false);
}
static int op_send_one_cached_new_topic(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "fresh", "m", true, true);
}
static int op_send_one_to_a_subscriber(struct broker *b, struct broker_client *c)
{
    (void)c;
    return send_msg(b, "shared", "m", true, true);
}

static const struct scenario {
    const char *name;
    operation_fn op;
    const char *topic;     /* the topic it touches */
    long next_index_after; /* that topic's next index once it succeeded */
} scenarios[] = {
    {"subscribe, new topic", op_subscribe_new_topic, "fresh", 0},
    {"subscribe, existing topic", op_subscribe_existing_topic, "shared", 1},
    {"send all cached, new topic", op_send_all_cached_new_topic, "fresh", 1},
    {"send all uncached, new topic", op_send_all_uncached_new_topic, "fresh", 1},
    {"send all cached, existing topic", op_send_all_cached_existing_topic, "shared", 2},
    {"send all uncached, existing topic", op_send_all_uncached_existing_topic, "shared", 2},
    {"send one cached, new topic", op_send_one_cached_new_topic, "fresh", 1},
    {"send one to a subscriber", op_send_one_to_a_subscriber, "shared", 2},
};

/* run_failing_at: the scenario on a fresh stage with allocation `fail_at`
 * failing; returns whether that failure happened (else the run was whole). */
static bool run_failing_at(const struct scenario *sc, size_t fail_at)
{
    struct broker *b = make_broker(4);
    struct broker_client *other = client(b, 2), *c = client(b, 1);
    subscribe(b, other, "shared");
    send_all(b, "shared");
    reset_deliveries();
    struct snapshot before = snap(b);
    fail_alloc_after(fail_at);
    int rc = sc->op(b, c);
    bool tripped = fail_alloc_tripped();
    fail_alloc_reset();
    if (tripped && rc != 0) {
        if (rc != BROKER_NO_MEMORY)
            fail_msg("%s: allocation %zu failed, yet it returned %d", sc->name, fail_at, rc);
        assert_unchanged(&before, b);
        assert_int_equal(sc->op(b, c), 0);
    } /* else whole, or an allocation it can do without (keeping an index) failed */
    /* no index was used by the failed call: a probe sees the next one */
    reset_deliveries();
    struct broker_client *probe = client(b, 3);
    subscribe(b, probe, sc->topic);
    send_msg(b, sc->topic, "probe", false, false);
    assert_true(ndeliveries >= 1);
    assert_int_equal(index_of(deliveries[ndeliveries - 1].line), sc->next_index_after);
    reset_deliveries();
    broker_client_free(probe);
    broker_client_free(c);
    broker_client_free(other);
    broker_free(b);
    return tripped;
}

static void each_allocation_failing_leaves_the_broker_unchanged(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        size_t fail_at = 0;
        while (run_failing_at(&scenarios[i], fail_at))
            fail_at++;
        if (fail_at == 0)
            fail_msg("%s: allocates nothing, nothing was tested", scenarios[i].name);
    }
}

/* room_needed: what broker_room_needed promises for a send or subscribe */
static size_t room_needed(struct broker *b, struct broker_client *c, const char *topic)
{
    size_t line_len = strlen(object_of(topic, "m")) + BROKER_INDEX_ROOM;
    size_t need = broker_room_needed(b, c, topic, strlen(topic), line_len);
    size_t bound = broker_room_bound(b, c, strlen(topic), line_len, 0, 0);
    if (need > bound)
        fail_msg("%s: room needed %zu is above the bound %zu", topic, need, bound);
    return need;
}

/* A memory budget makes room for broker_room_needed before each command:
 * no command may take more, whatever it grows (tables, arrays, caches). */
static void no_command_takes_more_than_room_needed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        struct broker *b = make_broker(4);
        struct broker_client *other = client(b, 2), *c = client(b, 1);
        subscribe(b, other, "shared");
        send_all(b, "shared");
        size_t need = room_needed(b, c, scenarios[i].topic);
        size_t before = mqd_allocated();
        assert_int_equal(scenarios[i].op(b, c), 0);
        if (mqd_allocated() - before > need)
            fail_msg("%s took %zu bytes, room was made for %zu", scenarios[i].name,
                     mqd_allocated() - before, need);
        reset_deliveries();
        broker_client_free(c);
        broker_client_free(other);
        broker_free(b);
    }
    /* many topics, subscriptions and cached messages: every table and array
     * grows on the way */
    struct broker *b = make_broker(100);
    struct broker_client *c = client(b, 1);
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "topic %d", i % 1500);
        size_t need = room_needed(b, c, name), before = mqd_allocated();
        if (i < 1500)
            assert_int_equal(subscribe(b, c, name), 0);
        else
            assert_int_equal(send_msg(b, name, "m", false, true), 0);
        size_t taken = mqd_allocated() > before ? mqd_allocated() - before : 0;
        if (taken > need)
            fail_msg("command %d took %zu bytes, room was made for %zu", i, taken, need);
    }
    reset_deliveries();
    broker_client_free(c);
    /* one topic's subscriber array growing: 300 clients join "crowded" */
    struct broker_client *many[300];
    for (int i = 0; i < 300; i++) {
        many[i] = client(b, i % 8);
        size_t need = room_needed(b, many[i], "crowded"), before = mqd_allocated();
        assert_int_equal(subscribe(b, many[i], "crowded"), 0);
        /* it may free too: a table's move ending lets its old array go */
        assert_true(mqd_allocated() <= before || mqd_allocated() - before <= need);
    }
    for (int i = 0; i < 300; i++)
        broker_client_free(many[i]);
    broker_free(b);
}

static void client_creation_fails_cleanly(void **state)
{
    (void)state;
    struct broker *b = make_broker(4);
    struct broker_client *c = NULL;
    for (size_t fail_at = 0; !c; fail_at++) {
        struct snapshot before = snap(b);
        fail_alloc_after(fail_at);
        c = broker_client_new(b, &receivers[1]);
        bool tripped = fail_alloc_tripped();
        fail_alloc_reset();
        assert_true(tripped == (c == NULL));
        assert_unchanged(&before, b);
    }
    assert_int_equal(subscribe(b, c, "t"), 0);
    broker_client_free(c);
    broker_free(b);
}

static void broker_creation_fails_cleanly(void **state)
{
    (void)state;
    struct broker_config config = {.cache_size = 1, .deliver = record};
    struct broker *b = NULL;
    for (size_t fail_at = 0; !b; fail_at++) {
        fail_alloc_after(fail_at);
        b = broker_new(&config);
        bool tripped = fail_alloc_tripped();
        fail_alloc_reset();
        assert_true(tripped == (b == NULL));
    }
    broker_free(b);
}

/* send_one: a delivery "one" message as a sender writes it */
static int send_one(struct broker *b, const char *topic, const char *msg, bool cache)
{
    char object[256];
    snprintf(object, sizeof(object),
             "{\"command\":\"send\",\"topic\":\"%s\",\"msg\":\"%s\",\"delivery\":\"one\"%s}", topic,
             msg, cache ? "" : ",\"cache\":false");
    struct broker_message m = {topic, strlen(topic), object, strlen(object), true, cache};
    return broker_send(b, &m);
}

/* return_lines_of: what receiver `id` was handed goes back, as when its
 * conn closes before writing any of it */
static void return_lines_of(struct broker *b, int id)
{
    for (size_t i = 0; i < ndeliveries; i++)
        if (deliveries[i].receiver == id && deliveries[i].line->once)
            broker_return(b, buf_ref(deliveries[i].line));
}

static void returned_one_lines_go_to_a_subscriber_that_may_take_them(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *cs[2];
    subscribed_clients(b, cs, 2, "t");
    going_away[1] = true; /* everything goes to 0 */
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_one(b, "t", "m", true), 0);
    going_away[1] = false;
    assert_int_equal(ndeliveries, 3);
    broker_client_detach(cs[0]); /* its conn closed */
    return_lines_of(b, 0);
    reset_deliveries();
    assert_true(broker_reroute(b, 100));
    assert_int_equal(ndeliveries, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(deliveries[i].receiver, 1);
        assert_int_equal(index_of(deliveries[i].line), i);
    }
    struct broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.one_rerouted, 3);
    assert_int_equal(st.one_recached + st.one_lost + st.cached_messages, 0);
    reset_deliveries();
    broker_client_free(cs[1]);
    broker_free(b);
}

static void a_subscriber_handed_a_later_index_is_passed_over_for_the_cache(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *cs[3];
    subscribed_clients(b, cs, 2, "t");
    going_away[1] = true;
    assert_int_equal(send_one(b, "t", "a", true), 0); /* 0 and 1 to client 0 */
    assert_int_equal(send_one(b, "t", "b", true), 0);
    going_away[1] = false;
    assert_int_equal(send_msg(b, "t", "c", false, true), 0); /* 2 to both, cached */
    broker_client_detach(cs[0]);
    return_lines_of(b, 0);
    reset_deliveries();
    assert_false(broker_reroute(b, 1)); /* in steps */
    assert_true(broker_reroute(b, 1));
    assert_int_equal(ndeliveries, 0); /* client 1 has seen 2: 0 and 1 would go backwards */
    struct broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.one_recached, 2);
    assert_int_equal(st.cached_messages, 3);
    cs[2] = client(b, 2); /* a new subscriber takes them from the cache, in order */
    assert_int_equal(subscribe(b, cs[2], "t"), 0);
    replay(b, cs[2], "t", -1);
    assert_int_equal(ndeliveries, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(index_of(deliveries[i].line), i);
    broker_get_stats(b, &st);
    assert_int_equal(st.cached_messages, 1); /* the "one" messages were taken */
    reset_deliveries();
    broker_client_free(cs[1]);
    broker_client_free(cs[2]);
    broker_free(b);
}

static void a_line_not_to_be_cached_with_nobody_to_take_it_is_lost(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c0 = client(b, 0), *c1 = client(b, 1);
    assert_int_equal(subscribe(b, c0, "t"), 0);
    assert_int_equal(send_one(b, "t", "m", false), 0);
    assert_int_equal(subscribe(b, c1, "t"), 0); /* after the send: not for it */
    broker_client_detach(c0);
    return_lines_of(b, 0);
    reset_deliveries();
    assert_true(broker_reroute(b, 100));
    assert_int_equal(ndeliveries, 0);
    struct broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.one_lost, 1);
    assert_int_equal(st.cached_messages, 0);
    broker_client_free(c1);
    broker_free(b);
}

static void returned_lines_left_at_the_end_are_freed(void **state)
{
    (void)state;
    struct broker *b = make_broker(10);
    struct broker_client *c0 = client(b, 0);
    assert_int_equal(subscribe(b, c0, "t"), 0);
    assert_int_equal(send_one(b, "t", "m", true), 0);
    broker_client_detach(c0);
    return_lines_of(b, 0);
    reset_deliveries();
    broker_free(b); /* ASan: nothing leaks */
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* the changes a broker told, copied (their lines too), for another to restore */
struct told {
    struct broker_change change;
    char topic[16];
};
static struct told told[4096];
static size_t ntold;
static bool telling = true;

static void keep_change(void *ctx, const struct broker_change *c)
{
    (void)ctx;
    if (!telling)
        return;
    assert_true(ntold < 4096 && c->topic_len < 16);
    struct told *t = &told[ntold++];
    t->change = *c;
    memcpy(t->topic, c->topic, c->topic_len);
    t->change.topic = t->topic;
    if (c->line) {
        char *bytes;
        t->change.line = buf_new(c->line->len, &bytes);
        assert_non_null(t->change.line);
        memcpy(bytes, c->line->data, c->line->len);
    }
}

/* telling_broker: a broker made with `config` whose changes are kept in
 * told[], from 0 */
static struct broker *telling_broker(struct broker_config *config)
{
    config->changed = keep_change;
    ntold = 0;
    telling = true;
    return make_broker_with(config);
}

/* lines_of: the lines receiver `id` was handed, joined */
static size_t lines_of(int id, char *out, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < ndeliveries; i++) {
        if (deliveries[i].receiver != id)
            continue;
        assert_true(len + deliveries[i].line->len < cap);
        memcpy(out + len, deliveries[i].line->data, deliveries[i].line->len);
        len += deliveries[i].line->len;
    }
    return len;
}

/* restore_told: broker `b` takes told[from, to) */
static void restore_told(struct broker *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        assert_int_equal(broker_restore(b, &told[i].change), BROKER_OK);
}

static void a_broker_restored_from_what_it_told_is_the_same(void **state)
{
    (void)state;
    static const char *const topics[] = {"a", "b", "c", "d"};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        uint64_t rng = seed * 0x9E3779B97F4A7C15ULL;
        struct broker_config config = config_of(1 + seed % 4);
        config.changed = keep_change;
        config.max_retired = seed % 3 ? 1000 : 1; /* some fold into the floors */
        struct broker *a = make_broker_with(&config);
        struct broker_client *cs[4];
        for (int i = 0; i < 4; i++)
            cs[i] = client(a, i);
        ntold = 0;
        telling = true;
        for (int op = 0; op < 300; op++) {
            uint64_t r = next_random(&rng);
            const char *t = topics[(r >> 8) % 4];
            int k = (int)((r >> 16) % 4);
            switch (r % 8) {
            case 0:
            case 1: assert_int_equal(send_one(a, t, "o", (r >> 20) & 1), 0); break;
            case 2:
            case 3: assert_int_equal(send_msg(a, t, "m", false, (r >> 20) & 1), 0); break;
            case 4:
            case 5:
                assert_int_equal(subscribe(a, cs[k], t), 0);
                replay(a, cs[k], t, (r >> 24) % 3 == 0 ? -1 : (int64_t)((r >> 28) % 40));
                break;
            case 6: unsubscribe(a, cs[k], t); break;
            case 7: {
                bool was_one;
                (void)broker_evict_oldest(a, &was_one);
                break;
            }
            }
            reset_deliveries();
        }
        /* b from every change told, c from a snapshot of a's state */
        size_t history = ntold;
        broker_each_kept(a, keep_change, NULL);
        telling = false;
        config.changed = NULL;
        struct broker *b = make_broker_with(&config);
        restore_told(b, 0, history);
        config.hash_seed[0] ^= 1; /* another key: the snapshot brings a's */
        struct broker *c = make_broker_with(&config);
        restore_told(c, history, ntold);
        for (size_t i = 0; i < ntold; i++)
            buf_unref(told[i].change.line);
        struct broker_stats sa, sb, sc;
        broker_get_stats(a, &sa);
        broker_get_stats(b, &sb);
        broker_get_stats(c, &sc);
        assert_int_equal(sa.cached_messages, sb.cached_messages);
        assert_int_equal(sa.cached_bytes, sb.cached_bytes);
        assert_int_equal(sa.cached_messages, sc.cached_messages);
        assert_int_equal(sa.cached_bytes, sc.cached_bytes);
        /* each topic's cache, replayed, and its next index, sent to */
        for (int i = 0; i < 4; i++) {
            struct broker_client *pa = client(a, 6), *pb = client(b, 7), *pc = client(c, 5);
            assert_int_equal(subscribe(a, pa, topics[i]), 0);
            assert_int_equal(subscribe(b, pb, topics[i]), 0);
            assert_int_equal(subscribe(c, pc, topics[i]), 0);
            replay(a, pa, topics[i], -1);
            replay(b, pb, topics[i], -1);
            replay(c, pc, topics[i], -1);
            assert_int_equal(send_msg(a, topics[i], "probe", false, false), 0);
            assert_int_equal(send_msg(b, topics[i], "probe", false, false), 0);
            assert_int_equal(send_msg(c, topics[i], "probe", false, false), 0);
            static char la[65536], lb[65536], lc[65536];
            size_t na = lines_of(6, la, sizeof(la)), nb = lines_of(7, lb, sizeof(lb));
            size_t nc = lines_of(5, lc, sizeof(lc));
            assert_true(na > 0);
            assert_int_equal(na, nb);
            assert_memory_equal(la, lb, na);
            assert_int_equal(na, nc);
            assert_memory_equal(la, lc, na);
            reset_deliveries();
            broker_client_free(pa);
            broker_client_free(pb);
            broker_client_free(pc);
        }
        for (int i = 0; i < 4; i++)
            broker_client_free(cs[i]);
        broker_free(a);
        broker_free(b);
        broker_free(c);
    }
}

/* a floor of a bucket the retired store does not have cannot be one mqd
 * wrote: refused, not ignored (a floor lost could let an index be reused) */
static void a_floor_of_no_bucket_is_refused(void **state)
{
    (void)state;
    struct broker_config config = config_of(4);
    struct broker *b = make_broker_with(&config);
    struct broker_change c = {.kind = BROKER_FLOOR, .topic = "", .index = 9, .hash = 4095};
    assert_int_equal(broker_restore(b, &c), BROKER_OK);
    c.hash = 4096;
    assert_int_equal(broker_restore(b, &c), BROKER_OUT_OF_ORDER);
    broker_free(b);
}

static void a_smaller_cache_at_restore_tells_what_it_drops(void **state)
{
    (void)state;
    struct broker_config config = config_of(10);
    struct broker *a = telling_broker(&config);
    for (int i = 0; i < 8; i++)
        assert_int_equal(send_msg(a, "t", "m", false, true), 0);
    size_t first = ntold;
    /* restored under a cache of 3: the five oldest are told gone */
    config = config_of(3);
    config.changed = keep_change;
    struct broker *b = make_broker_with(&config);
    restore_told(b, 0, first);
    assert_int_equal(ntold - first, 5);
    for (size_t i = first; i < ntold; i++) {
        assert_int_equal(told[i].change.kind, BROKER_UNCACHED);
        assert_true(told[i].change.index == i - first);
    }
    size_t second = ntold;
    /* and under a cache of 0, every message */
    config = config_of(0);
    config.changed = keep_change;
    struct broker *c = make_broker_with(&config);
    restore_told(c, 0, second);
    assert_int_equal(ntold - second, 8);
    telling = false;
    /* a cache of 10 again, from everything told: only what none dropped */
    config = config_of(10);
    struct broker *d = make_broker_with(&config);
    restore_told(d, 0, second);
    struct broker_stats stats;
    broker_get_stats(d, &stats);
    assert_int_equal(stats.cached_messages, 3);
    for (size_t i = 0; i < ntold; i++)
        buf_unref(told[i].change.line);
    broker_free(a);
    broker_free(b);
    broker_free(c);
    broker_free(d);
}

static void lines_put_back_out_of_order_are_restored_in_order(void **state)
{
    (void)state;
    struct broker_config config = config_of(10);
    struct broker *a = telling_broker(&config);
    struct broker_client *cs[2];
    subscribed_clients(a, cs, 2, "t");
    going_away[1] = true;
    assert_int_equal(send_one(a, "t", "x", true), 0); /* 0 and 1 to client 0 */
    assert_int_equal(send_one(a, "t", "y", true), 0);
    going_away[1] = false;
    assert_int_equal(send_msg(a, "t", "z", false, true), 0); /* 2, cached */
    broker_client_detach(cs[0]);
    return_lines_of(a, 0);
    reset_deliveries();
    assert_true(broker_reroute(a, 100)); /* 0 and 1 go back before 2 */
    telling = false;
    assert_int_equal(told[ntold - 1].change.kind, BROKER_CACHED);
    assert_true(told[ntold - 1].change.index == 1);
    config.changed = NULL;
    struct broker *b = make_broker_with(&config);
    for (size_t i = 0; i < ntold; i++) {
        assert_int_equal(broker_restore(b, &told[i].change), BROKER_OK);
        buf_unref(told[i].change.line);
    }
    struct broker_client *pb = client(b, 7);
    assert_int_equal(subscribe(b, pb, "t"), 0);
    replay(b, pb, "t", -1);
    assert_int_equal(ndeliveries, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(index_of(deliveries[i].line), i);
    reset_deliveries();
    broker_client_free(pb);
    broker_client_free(cs[1]);
    broker_free(a);
    broker_free(b);
}

static void a_restored_one_line_is_marked_one_for_re_routing(void **state)
{
    (void)state;
    struct broker *b = make_broker(4);
    char *bytes;
    const char text[] = "{\"command\":\"send\",\"topic\":\"t\",\"msg\":\"m\",\"delivery\":"
                        "\"one\", \"index\": 3}\r\n";
    struct buf *line = buf_new(sizeof(text) - 1, &bytes);
    memcpy(bytes, text, sizeof(text) - 1);
    struct broker_change c = {.kind = BROKER_CACHED,
                              .topic = "t",
                              .topic_len = 1,
                              .index = 3,
                              .once = true,
                              .line = line};
    assert_int_equal(broker_restore(b, &c), BROKER_OK);
    buf_unref(line);
    struct broker_client *sub = client(b, 1);
    assert_int_equal(subscribe(b, sub, "t"), 0);
    replay(b, sub, "t", -1);
    assert_int_equal(ndeliveries, 1);
    assert_true(deliveries[0].line->once); /* so a close before it is written hands it back */
    broker_client_detach(sub);
    broker_return(b, buf_ref(deliveries[0].line));
    reset_deliveries();
    assert_true(broker_reroute(b, 10));
    struct broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.one_recached, 1);
    broker_free(b);
}

static void a_malformed_restored_line_is_lost_not_read_past(void **state)
{
    (void)state;
    struct broker *b = make_broker(4);
    const char *const texts[] = {"", "}\r\n", "x}\r\n", ", \"index\": }\r\n", "{\"a\": 1}\r\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *bytes;
        struct buf *line = buf_new(strlen(texts[i]), &bytes);
        memcpy(bytes, texts[i], strlen(texts[i]));
        line->once = true;
        broker_return(b, line);
    }
    assert_true(broker_reroute(b, 10));
    struct broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.one_lost, 5);
    broker_free(b);
}

static void a_restored_topic_without_a_cache_keeps_its_index(void **state)
{
    (void)state;
    struct broker_config config = config_of(4);
    struct broker *a = telling_broker(&config);
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_msg(a, "quiet", "m", false, false), 0); /* nothing cached */
    assert_int_equal(ntold, 5);
    assert_int_equal(told[4].change.kind, BROKER_INDEXED);
    assert_true(told[4].change.index == 5);
    telling = false;
    config.changed = NULL;
    struct broker *b = make_broker_with(&config);
    for (size_t i = 0; i < ntold; i++)
        assert_int_equal(broker_restore(b, &told[i].change), BROKER_OK);
    struct broker_stats st;
    broker_get_stats(b, &st);
    assert_int_equal(st.topics, 0); /* retired, its index kept */
    assert_int_equal(st.retired_topics, 1);
    struct broker_client *c = client(b, 1);
    assert_int_equal(subscribe(b, c, "quiet"), 0);
    assert_int_equal(send_msg(b, "quiet", "m", false, false), 0);
    assert_int_equal(ndeliveries, 1);
    assert_int_equal(index_of(deliveries[0].line), 5);
    reset_deliveries();
    broker_client_free(c);
    broker_free(a);
    broker_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_line_is_the_object_with_index_added),
        cmocka_unit_test(the_index_is_written_in_full),
        cmocka_unit_test(indexes_count_per_topic_with_or_without_receivers),
        cmocka_unit_test(all_reaches_every_subscriber_with_one_shared_line),
        cmocka_unit_test(one_reaches_exactly_one_uniformly_and_is_not_cached),
        cmocka_unit_test(one_skips_subscribers_going_away_and_is_cached_when_all_are),
        cmocka_unit_test(one_prefers_subscribers_keeping_up),
        cmocka_unit_test(one_goes_only_to_current_subscribers),
        cmocka_unit_test(one_without_subscribers_waits_in_the_cache_for_one_taker),
        cmocka_unit_test(a_replay_stops_at_the_first_refused_line),
        cmocka_unit_test(a_closing_subscriber_takes_no_replay),
        cmocka_unit_test(eviction_takes_the_oldest_across_topics),
        cmocka_unit_test(max_topics_counts_topics_alive),
        cmocka_unit_test(max_subscriptions_is_per_client),
        cmocka_unit_test(cache_false_is_never_cached),
        cmocka_unit_test(the_cache_keeps_the_last_n),
        cmocka_unit_test(cache_size_zero_caches_nothing),
        cmocka_unit_test(replay_starts_after_last_seen_and_keeps_older_once_entries),
        cmocka_unit_test(replay_of_an_unknown_topic_delivers_and_creates_nothing),
        cmocka_unit_test(subscribing_twice_delivers_once),
        cmocka_unit_test(unsubscribe_stops_delivery_and_unknown_topics_are_fine),
        cmocka_unit_test(a_client_can_subscribe_again_after_leaving),
        cmocka_unit_test(a_departing_client_leaves_every_topic),
        cmocka_unit_test(a_detached_client_leaves_in_steps),
        cmocka_unit_test(unused_topics_are_freed),
        cmocka_unit_test(stats_count_topics_subscriptions_cache_and_traffic),
        cmocka_unit_test(cache_stats_follow_eviction_and_taken_messages),
        cmocka_unit_test(a_hundred_thousand_topics),
        cmocka_unit_test(operations_that_cannot_fail_keep_every_index),
        cmocka_unit_test(a_retired_topic_resumes_its_index),
        cmocka_unit_test(past_max_retired_indexes_fold_and_are_never_reused),
        cmocka_unit_test(each_allocation_failing_leaves_the_broker_unchanged),
        cmocka_unit_test(no_command_takes_more_than_room_needed),
        cmocka_unit_test(client_creation_fails_cleanly),
        cmocka_unit_test(broker_creation_fails_cleanly),
        cmocka_unit_test(returned_one_lines_go_to_a_subscriber_that_may_take_them),
        cmocka_unit_test(a_subscriber_handed_a_later_index_is_passed_over_for_the_cache),
        cmocka_unit_test(a_line_not_to_be_cached_with_nobody_to_take_it_is_lost),
        cmocka_unit_test(returned_lines_left_at_the_end_are_freed),
        cmocka_unit_test(a_broker_restored_from_what_it_told_is_the_same),
        cmocka_unit_test(a_restored_topic_without_a_cache_keeps_its_index),
        cmocka_unit_test(a_restored_one_line_is_marked_one_for_re_routing),
        cmocka_unit_test(a_malformed_restored_line_is_lost_not_read_past),
        cmocka_unit_test(lines_put_back_out_of_order_are_restored_in_order),
        cmocka_unit_test(a_smaller_cache_at_restore_tells_what_it_drops),
        cmocka_unit_test(a_floor_of_no_bucket_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
