#include "mqd/broker.h"

#include "mqd/alloc.h"
#include "mqd/ring.h"
#include "mqd/table.h"

#include <string.h>

struct topic {
    struct sub **subs; /* swap-remove array; each sub knows its position */
    size_t nsubs;
    size_t subs_cap;
    uint64_t next_index;
    struct ring cache;
    size_t name_len;
    char name[]; /* not NUL-terminated; any byte but NUL */
};

/* sub_key: what identifies a subscription in the broker's subscription table */
struct sub_key {
    struct topic *topic;
    struct broker_client *client;
};

struct sub {
    struct sub_key key;
    size_t topic_pos;  /* index in key.topic->subs */
    size_t client_pos; /* index in key.client->subs */
};

struct broker_client {
    struct broker *broker;
    void *ctx;
    struct sub **subs;
    size_t nsubs;
    size_t subs_cap;
};

struct broker {
    struct table *topics;
    struct table *subs; /* (topic, client) -> sub: O(1) unsubscribe */
    size_t cache_size;
    uint64_t random_state;
    broker_deliver_fn deliver;
    uint64_t messages_received;
    uint64_t messages_delivered;
    /* every topic's cache added up, kept as the caches change so that
     * reading the stats never walks the topics */
    size_t cached_messages;
    size_t cached_bytes;
};

static const void *topic_key(const void *value, size_t *len)
{
    const struct topic *t = value;
    *len = t->name_len;
    return t->name;
}

static const void *sub_key(const void *value, size_t *len)
{
    const struct sub *s = value;
    *len = sizeof(s->key);
    return &s->key;
}

struct broker *broker_new(const struct broker_config *config)
{
    struct broker *b = mqd_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->topics = table_new(topic_key, config->hash_seed);
    b->subs = table_new(sub_key, config->hash_seed);
    if (!b->topics || !b->subs) {
        table_free(b->topics);
        table_free(b->subs);
        mqd_free(b);
        return NULL;
    }
    b->cache_size = config->cache_size;
    b->random_state = config->random_seed ? config->random_seed : 0x9E3779B97F4A7C15ULL;
    b->deliver = config->deliver;
    return b;
}

static void topic_free(struct topic *t)
{
    ring_clear(&t->cache);
    mqd_free(t->subs);
    mqd_free(t);
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    size_t cursor = 0;
    struct topic *t;
    while ((t = table_next(b->topics, &cursor)))
        topic_free(t);
    table_free(b->topics);
    table_free(b->subs);
    mqd_free(b);
}

/* uncount_cache, count_cache: bracket every change to a topic's cache. */
static void uncount_cache(struct broker *b, const struct topic *t)
{
    b->cached_messages -= t->cache.len;
    b->cached_bytes -= t->cache.bytes;
}

static void count_cache(struct broker *b, const struct topic *t)
{
    b->cached_messages += t->cache.len;
    b->cached_bytes += t->cache.bytes;
}

static struct topic *find_topic(const struct broker *b, const char *name, size_t len)
{
    return table_find(b->topics, name, len);
}

static struct topic *find_or_create_topic(struct broker *b, const char *name, size_t len)
{
    struct topic *t = find_topic(b, name, len);
    if (t)
        return t;
    t = mqd_calloc(1, sizeof(*t) + len);
    if (!t)
        return NULL;
    memcpy(t->name, name, len);
    t->name_len = len;
    ring_init(&t->cache, b->cache_size);
    if (table_insert(b->topics, t) < 0) {
        mqd_free(t);
        return NULL;
    }
    return t;
}

/* free_topic_if_unused: a topic nobody could tell from a missing one goes. */
static void free_topic_if_unused(struct broker *b, struct topic *t)
{
    if (t->nsubs > 0 || t->cache.len > 0 || t->next_index > 0)
        return;
    table_remove(b->topics, t->name, t->name_len);
    topic_free(t);
}

struct broker_client *broker_client_new(struct broker *b, void *ctx)
{
    struct broker_client *c = mqd_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->broker = b;
    c->ctx = ctx;
    return c;
}

static struct sub *find_sub(const struct broker *b, struct topic *t, struct broker_client *c)
{
    struct sub_key key = {t, c};
    return table_find(b->subs, &key, sizeof(key));
}

/* remove_sub: unlinks a subscription from both arrays and the table. */
static void remove_sub(struct broker *b, struct sub *s)
{
    struct topic *t = s->key.topic;
    struct broker_client *c = s->key.client;
    t->subs[s->topic_pos] = t->subs[--t->nsubs];
    t->subs[s->topic_pos]->topic_pos = s->topic_pos;
    c->subs[s->client_pos] = c->subs[--c->nsubs];
    c->subs[s->client_pos]->client_pos = s->client_pos;
    table_remove(b->subs, &s->key, sizeof(s->key));
    mqd_free(s);
}

void broker_client_free(struct broker_client *c)
{
    if (!c)
        return;
    struct broker *b = c->broker;
    while (c->nsubs > 0) {
        struct topic *t = c->subs[c->nsubs - 1]->key.topic;
        remove_sub(b, c->subs[c->nsubs - 1]);
        free_topic_if_unused(b, t);
    }
    mqd_free(c->subs);
    mqd_free(c);
}

/* reserve_sub: room in every array and table the new subscription enters. */
static int reserve_sub(struct broker *b, struct topic *t, struct broker_client *c)
{
    void *tsubs = t->subs, *csubs = c->subs;
    int failed = mqd_grow_array(&tsubs, &t->subs_cap, t->nsubs + 1, sizeof(*t->subs), 4) ||
                 mqd_grow_array(&csubs, &c->subs_cap, c->nsubs + 1, sizeof(*c->subs), 4) ||
                 table_reserve(b->subs, 1);
    t->subs = tsubs;
    c->subs = csubs;
    return failed ? -1 : 0;
}

int broker_subscribe(struct broker *b, struct broker_client *c, const char *name, size_t len)
{
    struct topic *t = find_or_create_topic(b, name, len);
    if (!t)
        return -1;
    if (find_sub(b, t, c))
        return 0;
    struct sub *s = mqd_malloc(sizeof(*s));
    if (!s || reserve_sub(b, t, c) < 0) {
        mqd_free(s);
        free_topic_if_unused(b, t);
        return -1;
    }
    s->key.topic = t;
    s->key.client = c;
    s->topic_pos = t->nsubs;
    s->client_pos = c->nsubs;
    t->subs[t->nsubs++] = s;
    c->subs[c->nsubs++] = s;
    int inserted = table_insert(b->subs, s); /* reserved: cannot fail */
    (void)inserted;
    return 0;
}

void broker_unsubscribe(struct broker *b, struct broker_client *c, const char *name, size_t len)
{
    struct topic *t = find_topic(b, name, len);
    if (!t)
        return;
    struct sub *s = find_sub(b, t, c);
    if (!s)
        return;
    remove_sub(b, s);
    free_topic_if_unused(b, t);
}

static bool deliver(struct broker *b, struct broker_client *c, struct buf *line)
{
    if (!b->deliver(c->ctx, line))
        return false;
    b->messages_delivered++;
    return true;
}

void broker_replay(struct broker *b, struct broker_client *c, const char *name, size_t len,
                   int64_t last_seen)
{
    struct topic *t = find_topic(b, name, len);
    if (!t)
        return;
    bool handed_once = false;
    for (size_t i = 0; i < t->cache.len; i++) {
        struct ring_entry *e = ring_at(&t->cache, i);
        if (!ring_index_above(e->index, last_seen))
            continue;
        deliver(b, c, e->line);
        handed_once |= e->once;
    }
    if (handed_once) {
        uncount_cache(b, t);
        ring_remove_once_after(&t->cache, last_seen);
        count_cache(b, t);
    }
}

/* random_below: a uniform pick in [0, n), n > 0: xorshift64*, rejecting the
 * draws above the largest multiple of n so no subscriber is favoured. */
static size_t random_below(struct broker *b, size_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        b->random_state ^= b->random_state >> 12;
        b->random_state ^= b->random_state << 25;
        b->random_state ^= b->random_state >> 27;
        uint64_t r = b->random_state * 0x2545F4914F6CDD1DULL;
        if (r < limit)
            return (size_t)(r % n);
    }
}

static size_t format_u64(char *out, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

/* build_line: the sender's object with `"index": N` added before its closing
 * brace, and "\r\n": serialized once, shared by every receiver. */
static struct buf *build_line(const struct broker_message *m, uint64_t index)
{
    static const char key[] = ", \"index\": ";
    char number[20];
    size_t nlen = format_u64(number, index);
    size_t body = m->object_len - 1; /* without the closing '}' */
    char *out;
    struct buf *line = buf_new(body + sizeof(key) - 1 + nlen + 3, &out);
    if (!line)
        return NULL;
    memcpy(out, m->object, body);
    out += body;
    memcpy(out, key, sizeof(key) - 1);
    out += sizeof(key) - 1;
    memcpy(out, number, nlen);
    memcpy(out + nlen, "}\r\n", 3);
    return line;
}

/* deliver_to_one: hands the line to one subscriber picked uniformly at
 * random; one that is going away refuses it, and the next one is tried.
 * False when none took it. */
static bool deliver_to_one(struct broker *b, struct topic *t, struct buf *line)
{
    size_t n = t->nsubs;
    if (n == 0)
        return false;
    size_t first = random_below(b, n);
    for (size_t k = 0; k < n; k++)
        if (deliver(b, t->subs[(first + k) % n]->key.client, line))
            return true;
    return false;
}

int broker_send(struct broker *b, const struct broker_message *m)
{
    struct topic *t = find_or_create_topic(b, m->topic, m->topic_len);
    if (!t)
        return -1;
    /* a "one" message is cached when no subscriber takes it, which is only
     * known after trying: room is made first, so that cannot fail */
    bool may_cache = m->cache && b->cache_size > 0;
    struct buf *line = NULL;
    if ((may_cache && ring_reserve(&t->cache) < 0) || !(line = build_line(m, t->next_index))) {
        free_topic_if_unused(b, t);
        return -1;
    }
    uint64_t index = t->next_index++;
    b->messages_received++;
    bool to_cache = may_cache;
    if (m->one) {
        to_cache &= !deliver_to_one(b, t, line);
    } else {
        for (size_t i = 0; i < t->nsubs; i++)
            deliver(b, t->subs[i]->key.client, line);
    }
    if (to_cache) {
        uncount_cache(b, t);
        ring_push(&t->cache, line, index, m->one);
        count_cache(b, t);
    } else
        buf_unref(line);
    return 0;
}

void broker_get_stats(const struct broker *b, struct broker_stats *out)
{
    out->topics = b->topics->count;
    out->subscriptions = b->subs->count;
    out->cached_messages = b->cached_messages;
    out->cached_bytes = b->cached_bytes;
    out->messages_received = b->messages_received;
    out->messages_delivered = b->messages_delivered;
}
