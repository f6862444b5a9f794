/*
 * fuzz_broker: random sequences of connect, subscribe (with and without a
 * replay), unsubscribe, send ("all"/"one", cached or not), disconnect and
 * eviction of the oldest cached message, some with an allocation made to
 * fail, checked after every step against a small model of PROTOCOL.md's
 * rules: indexes (kept across a topic's retirement), cache contents, who
 * received which message in what order, no message twice to one
 * subscription, a "one" message never lost to a subscriber that is going
 * away or cut during its replay, eviction oldest first across topics, the
 * topic and subscription quotas, and that an operation failing for memory
 * changed nothing.
 *
 * Input: byte 0 picks the cache size (bits 0-2, % 5), --max-topics (bits
 * 3-4, 0: none) and --max-subscriptions (bits 5-6, 0: none), and seeds; then
 * each operation is 4 bytes: op, slot, topic, argument. Bit 7 of op arms the
 * allocator to fail the (argument % 16)-th allocation of that operation. A
 * connect of a connected client with bit 3 set marks it closed but not yet
 * freed, as a conn closed earlier in a loop iteration: it refuses every
 * line. A subscribe's argument bits 1-3, k > 0, make the subscriber take
 * k - 1 lines of its replay and then go away, as a slow consumer cut by the
 * next. An unsubscribe with bit 6 of op evicts the oldest cached message.
 * A disconnect with bit 3 detaches the client instead of freeing it: it
 * takes no more lines and leaves its topics in steps of 1 to 4 per later
 * operation (bits 6-7 of the argument); while any client is departing the
 * model does not know which of its topics are left, and checks the topic
 * and subscription counts again once it is gone.
 */
#include "../unit/fail_alloc.h"
#include "mqd/broker.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 5
#define TOPICS 4
#define MAX_CACHE 4
#define MAX_GOT 64 /* deliveries in one step: at most SLOTS, or a replay of MAX_CACHE */
#define LINE_MAX 160

static const char *const topic_names[TOPICS] = {
    "", "a", "b", "a topic name long enough to need more than one hash block"};

struct cached {
    uint64_t id;
    uint64_t index;
    bool once;
    uint64_t age; /* order of caching across topics */
};

struct model_topic {
    uint64_t next_index;
    bool sent_to;
    bool subscribed[SLOTS];
    struct cached cache[MAX_CACHE];
    size_t cache_len;
};

struct got {
    size_t slot;
    char line[LINE_MAX];
    size_t len;
};

struct slot {
    struct broker_client *client;
    size_t index; /* its own position, the deliver context */
    struct run *run;
    bool going_away; /* closed, not yet freed: refuses every line */
    int lines_left;  /* > 0: takes this many more, then goes away */
};

struct run {
    struct broker *broker;
    size_t cache_size;
    size_t max_topics;        /* 0: none */
    size_t max_subscriptions; /* 0: none */
    uint64_t next_age;
    struct slot slots[SLOTS];
    struct model_topic topics[TOPICS];
    struct got got[MAX_GOT];
    size_t got_len;
    uint64_t next_id;
    uint64_t received; /* accepted sends */
    uint64_t delivered;
    uint64_t evicted;
    uint64_t evicted_one;
    bool departing; /* a detached client still leaves its topics */
};

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_broker: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                            \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* record: the deliver callback; copies the line so the step can be checked. */
static bool record(void *ctx, struct buf *line)
{
    struct slot *s = ctx;
    struct run *r = s->run;
    if (s->going_away)
        return false;
    if (s->lines_left > 0 && --s->lines_left == 0)
        s->going_away = true; /* this line cuts it: refused, and all after it */
    if (s->going_away)
        return false;
    CHECK(r->got_len < MAX_GOT);
    CHECK(line->len < LINE_MAX);
    struct got *g = &r->got[r->got_len++];
    g->slot = s->index;
    memcpy(g->line, line->data, line->len);
    g->len = line->len;
    return true;
}

/* message_object: the sender's object for message `id` on topic `t`. */
static size_t message_object(char *out, size_t t, uint64_t id)
{
    return (size_t)snprintf(out, LINE_MAX, "{\"t\":%zu,\"m\":%" PRIu64 "}", t, id);
}

/* expected_line: the delivered line: the object with "index" added. */
static size_t expected_line(char *out, size_t t, uint64_t id, uint64_t index)
{
    return (size_t)snprintf(out, LINE_MAX, "{\"t\":%zu,\"m\":%" PRIu64 ", \"index\": %" PRIu64 "}\r\n",
                            t, id, index);
}

/* take_delivery: finds and removes the step's delivery of this exact line to
 * `slot`; false when there is none. */
static bool take_delivery(struct run *r, size_t slot, const char *line, size_t len)
{
    for (size_t i = 0; i < r->got_len; i++) {
        struct got *g = &r->got[i];
        if (g->slot == slot && g->len == len && memcmp(g->line, line, len) == 0) {
            r->got[i] = r->got[--r->got_len];
            return true;
        }
    }
    return false;
}

static size_t subscriber_count(const struct model_topic *mt)
{
    size_t n = 0;
    for (size_t s = 0; s < SLOTS; s++)
        n += mt->subscribed[s];
    return n;
}

/* alive: a topic the broker holds whole, with subscribers or a cache; one
 * without either that was sent to is retired, keeping its next index */
static bool alive(const struct model_topic *mt)
{
    return subscriber_count(mt) > 0 || mt->cache_len > 0;
}

static size_t topics_alive(const struct run *r)
{
    size_t n = 0;
    for (size_t t = 0; t < TOPICS; t++)
        n += alive(&r->topics[t]);
    return n;
}

/* over_max_topics: whether making topic t alive would pass --max-topics */
static bool over_max_topics(const struct run *r, size_t t)
{
    return r->max_topics && !alive(&r->topics[t]) && topics_alive(r) >= r->max_topics;
}

/* takes: whether slot s takes a line of this topic now */
static bool takes(const struct run *r, const struct model_topic *mt, size_t s)
{
    return mt->subscribed[s] && !r->slots[s].going_away;
}

static size_t taker_count(const struct run *r, const struct model_topic *mt)
{
    size_t n = 0;
    for (size_t s = 0; s < SLOTS; s++)
        n += takes(r, mt, s);
    return n;
}

static void cache_push(struct run *r, struct model_topic *mt, uint64_t id, uint64_t index,
                       bool once)
{
    if (r->cache_size == 0)
        return;
    if (mt->cache_len == r->cache_size) {
        memmove(mt->cache, mt->cache + 1, (mt->cache_len - 1) * sizeof(mt->cache[0]));
        mt->cache_len--;
    }
    mt->cache[mt->cache_len++] = (struct cached){id, index, once, r->next_age++};
}

static void do_send(struct run *r, size_t t, uint8_t arg)
{
    struct model_topic *mt = &r->topics[t];
    bool one = arg & 1, cache = !(arg & 2);
    uint64_t id = r->next_id++;
    char object[LINE_MAX];
    size_t object_len = message_object(object, t, id);
    struct broker_message m = {topic_names[t], strlen(topic_names[t]), object, object_len, one,
                               cache};
    enum broker_status status = broker_send(r->broker, &m);
    /* only a send that may cache can bring a new topic alive; topics held
     * by a departing client count too, which the model cannot tell */
    if ((cache && r->cache_size > 0 && over_max_topics(r, t)) ||
        (r->departing && status == BROKER_TOO_MANY_TOPICS)) {
        CHECK(status == BROKER_TOO_MANY_TOPICS);
        CHECK(r->got_len == 0);
        return;
    }
    if (status != BROKER_OK) {
        CHECK(status == BROKER_NO_MEMORY && fail_alloc_tripped());
        CHECK(r->got_len == 0);
        return;
    }
    uint64_t index = mt->next_index++;
    mt->sent_to = true;
    r->received++;
    char line[LINE_MAX];
    size_t len = expected_line(line, t, id, index);
    size_t takers = taker_count(r, mt);
    if (!one) {
        for (size_t s = 0; s < SLOTS; s++)
            if (takes(r, mt, s))
                CHECK(take_delivery(r, s, line, len)); /* each exactly once */
        r->delivered += takers;
    } else if (takers > 0) { /* one that takes it, never one going away */
        CHECK(r->got_len == 1);
        CHECK(takes(r, mt, r->got[0].slot));
        CHECK(take_delivery(r, r->got[0].slot, line, len));
        r->delivered++;
    }
    CHECK(r->got_len == 0); /* nobody else, nothing twice */
    if (cache && !(one && takers > 0))
        cache_push(r, mt, id, index, one);
}

/* last_seen_of: a floor from the argument: absent (-1), negative, or around
 * the topic's indexes. */
static int64_t last_seen_of(const struct model_topic *mt, uint8_t arg)
{
    switch (arg >> 4) {
    case 0: return -1;
    case 1: return INT64_MIN;
    case 2: return INT64_MAX;
    default: return (int64_t)mt->next_index - (int64_t)(arg >> 4) + 4;
    }
}

static size_t subscriptions_of(const struct run *r, size_t slot)
{
    size_t n = 0;
    for (size_t t = 0; t < TOPICS; t++)
        n += r->topics[t].subscribed[slot];
    return n;
}

static void do_subscribe(struct run *r, size_t slot, size_t t, uint8_t arg)
{
    struct model_topic *mt = &r->topics[t];
    const char *name = topic_names[t];
    enum broker_status status =
        broker_subscribe(r->broker, r->slots[slot].client, name, strlen(name));
    CHECK(r->got_len == 0);
    if (!mt->subscribed[slot] && r->max_subscriptions &&
        subscriptions_of(r, slot) >= r->max_subscriptions) {
        CHECK(status == BROKER_TOO_MANY_SUBSCRIPTIONS);
        return;
    }
    if (!mt->subscribed[slot] &&
        (over_max_topics(r, t) || (r->departing && status == BROKER_TOO_MANY_TOPICS))) {
        CHECK(status == BROKER_TOO_MANY_TOPICS);
        return;
    }
    if (status != BROKER_OK) {
        CHECK(status == BROKER_NO_MEMORY && fail_alloc_tripped());
        return;
    }
    mt->subscribed[slot] = true;
    if (arg & 1) /* "cache": false, no replay */
        return;
    int64_t floor = last_seen_of(mt, arg);
    int takes = (arg >> 1) & 7; /* 0: every line; else takes - 1 of them */
    r->slots[slot].lines_left = takes;
    broker_replay(r->broker, r->slots[slot].client, name, strlen(name), floor);
    r->slots[slot].lines_left = 0;
    size_t kept = 0, next_got = 0;
    int taken = 0;
    for (size_t i = 0; i < mt->cache_len; i++) {
        struct cached *c = &mt->cache[i];
        if ((floor < 0 || c->index > (uint64_t)floor) && (takes == 0 || taken < takes - 1)) {
            taken++;
            /* handed over, in index order */
            char line[LINE_MAX];
            size_t len = expected_line(line, t, c->id, c->index);
            CHECK(next_got < r->got_len);
            struct got *g = &r->got[next_got++];
            CHECK(g->slot == slot && g->len == len && memcmp(g->line, line, len) == 0);
            r->delivered++;
            if (c->once)
                continue; /* delivered once: it leaves the cache */
        }
        mt->cache[kept++] = *c;
    }
    CHECK(next_got == r->got_len);
    mt->cache_len = kept;
    r->got_len = 0;
}

/* do_evict: the oldest cached message of all topics goes */
static void do_evict(struct run *r)
{
    struct model_topic *oldest = NULL;
    for (size_t t = 0; t < TOPICS; t++) {
        struct model_topic *mt = &r->topics[t];
        if (mt->cache_len && (!oldest || mt->cache[0].age < oldest->cache[0].age))
            oldest = mt;
    }
    bool was_one = false;
    bool evicted = broker_evict_oldest(r->broker, &was_one);
    CHECK(evicted == (oldest != NULL));
    if (!oldest)
        return;
    CHECK(was_one == oldest->cache[0].once);
    r->evicted++;
    r->evicted_one += was_one;
    memmove(oldest->cache, oldest->cache + 1, (oldest->cache_len - 1) * sizeof(oldest->cache[0]));
    oldest->cache_len--;
    CHECK(r->got_len == 0);
}

static void do_unsubscribe(struct run *r, size_t slot, size_t t)
{
    const char *name = topic_names[t];
    broker_unsubscribe(r->broker, r->slots[slot].client, name, strlen(name));
    r->topics[t].subscribed[slot] = false;
    CHECK(r->got_len == 0);
}

static void do_connect(struct run *r, size_t slot)
{
    struct broker_client *c = broker_client_new(r->broker, &r->slots[slot]);
    if (!c) {
        CHECK(fail_alloc_tripped());
        return;
    }
    r->slots[slot].client = c;
}

static void do_disconnect(struct run *r, size_t slot, bool detach)
{
    if (detach) {
        broker_client_detach(r->slots[slot].client);
        r->departing = true;
    } else {
        broker_client_free(r->slots[slot].client);
    }
    r->slots[slot].client = NULL;
    r->slots[slot].going_away = false;
    for (size_t t = 0; t < TOPICS; t++)
        r->topics[t].subscribed[slot] = false;
    CHECK(r->got_len == 0);
}

/* check_stats: the broker's own figures agree with the model's. */
static void check_stats(const struct run *r)
{
    struct broker_stats st;
    broker_get_stats(r->broker, &st);
    size_t topics = 0, retired = 0, subs = 0, cached = 0, cached_bytes = 0;
    bool known = !r->departing; /* the topics a departing client still holds are not */
    for (size_t t = 0; t < TOPICS; t++) {
        const struct model_topic *mt = &r->topics[t];
        size_t n = subscriber_count(mt);
        topics += alive(mt);
        retired += !alive(mt) && mt->next_index > 0;
        subs += n;
        cached += mt->cache_len;
        for (size_t i = 0; i < mt->cache_len; i++) {
            char line[LINE_MAX];
            cached_bytes += expected_line(line, t, mt->cache[i].id, mt->cache[i].index);
        }
    }
    CHECK(known ? st.topics == topics : st.topics >= topics);
    CHECK(!known || st.retired_topics == retired);
    CHECK(st.cache_evictions == r->evicted);
    CHECK(st.cache_evicted_one == r->evicted_one);
    CHECK(known ? st.subscriptions == subs : st.subscriptions >= subs);
    CHECK(st.cached_messages == cached);
    CHECK(st.cached_bytes == cached_bytes);
    CHECK(st.messages_received == r->received);
    CHECK(st.messages_delivered == r->delivered);
}

static void step(struct run *r, const uint8_t op[4])
{
    size_t slot = op[1] % SLOTS, t = op[2] % TOPICS;
    uint8_t arg = op[3];
    bool connected = r->slots[slot].client != NULL;
    /* a conn going away runs no more commands; it is only freed */
    bool live = connected && !r->slots[slot].going_away;
    if (op[0] & 0x80)
        fail_alloc_after(arg % 16);
    switch (op[0] & 7) {
    case 0:
    case 1: do_send(r, t, arg); break;
    case 2:
    case 3:
        if (live)
            do_subscribe(r, slot, t, arg);
        break;
    case 4:
        if (op[0] & 0x40)
            do_evict(r);
        else if (live)
            do_unsubscribe(r, slot, t);
        break;
    case 5:
    case 6:
        if (!connected)
            do_connect(r, slot);
        else if (op[0] & 8) /* closed: it refuses lines until it is freed */
            r->slots[slot].going_away = true;
        break;
    case 7:
        if (connected)
            do_disconnect(r, slot, op[0] & 8);
        break;
    }
    if (r->departing && broker_depart(r->broker, 1 + (arg >> 6)))
        r->departing = false;
    fail_alloc_reset();
    check_stats(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct run r = {0};
    r.cache_size = (data[0] & 7) % (MAX_CACHE + 1);
    r.max_topics = (data[0] >> 3) & 3;
    r.max_subscriptions = (data[0] >> 5) & 3;
    struct broker_config config = {.cache_size = r.cache_size,
                                   .max_topics = r.max_topics,
                                   .max_subscriptions = r.max_subscriptions,
                                   .max_retired = TOPICS, /* every index kept exactly */
                                   .random_seed = data[0] | 1u,
                                   .deliver = record};
    config.hash_seed[0] = data[0];
    r.broker = broker_new(&config);
    CHECK(r.broker);
    for (size_t s = 0; s < SLOTS; s++)
        r.slots[s] = (struct slot){.index = s, .run = &r};
    for (size_t at = 1; at + 4 <= size; at += 4)
        step(&r, data + at);
    for (size_t s = 0; s < SLOTS; s++)
        broker_client_free(r.slots[s].client);
    broker_free(r.broker);
    return 0;
}
