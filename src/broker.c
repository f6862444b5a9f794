#include "mqd/broker.h"

#include "mqd/alloc.h"
#include "mqd/proto.h"
#include "mqd/retired.h"
#include "mqd/ring.h"
#include "mqd/table.h"

#include <stddef.h>
#include <string.h>

/* the allocator's overhead on each of the few blocks one command allocates */
#define BLOCK_OVERHEAD 64

struct topic {
    struct sub **subs; /* swap-remove array; each sub knows its position */
    size_t nsubs;
    size_t subs_cap;
    uint64_t next_index;
    bool index_reserved; /* room in the retired store for when it goes */
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
    /* the lowest index a re-routed line may have for it: it was handed
     * everything below, or subscribed after */
    uint64_t next_ok;
};

struct broker_client {
    struct broker *broker;
    void *ctx; /* NULL once detached: it takes no more lines */
    struct broker_client *next_departing;
    struct sub **subs;
    size_t nsubs;
    size_t subs_cap;
};

struct broker {
    struct table *topics;
    struct table *subs; /* (topic, client) -> sub: O(1) unsubscribe */
    struct retired *retired;
    /* every cached line in the order it was cached, and their totals, so
     * eviction and the stats never walk the topics */
    struct ring_ages ages;
    size_t cache_size;
    size_t max_topics;
    size_t max_subscriptions;
    uint64_t random_state;
    broker_deliver_fn deliver;
    broker_queue_growth_fn queue_growth;
    broker_keeping_up_fn keeping_up;
    broker_change_fn changed;
    broker_room_fn room;
    void *change_ctx;
    uint64_t messages_received;
    uint64_t messages_delivered;
    uint64_t cache_evictions;
    uint64_t cache_evicted_one;
    struct broker_client *departing;      /* detached, leaving their topics step by step */
    struct buf *returned, *returned_tail; /* "one" lines to re-route, oldest first */
    uint64_t one_rerouted;
    uint64_t one_recached;
    uint64_t one_lost;
    size_t room_constant; /* broker_room_bound's terms that never change */
    size_t retired_cost;  /* retired_reserve_cost, kept as the store changes */
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
    /* the retired store gets a key of its own */
    uint8_t retired_key[SIPHASH_KEY_LEN];
    memcpy(retired_key, config->hash_seed, SIPHASH_KEY_LEN);
    retired_key[0] ^= 0x5a;
    b->topics = table_new(topic_key, config->hash_seed);
    b->subs = table_new(sub_key, config->hash_seed);
    b->retired = retired_new(config->max_retired, retired_key);
    if (!b->topics || !b->subs || !b->retired) {
        table_free(b->topics);
        table_free(b->subs);
        retired_free(b->retired);
        mqd_free(b);
        return NULL;
    }
    b->cache_size = config->cache_size;
    b->max_topics = config->max_topics;
    b->max_subscriptions = config->max_subscriptions;
    size_t first_ring = b->cache_size < 4 ? b->cache_size : 4; /* as ring_reserve */
    b->retired_cost = retired_reserve_cost(b->retired);
    /* with --max-subscriptions, a client's subscription array doubles to
     * at most twice it: a constant */
    size_t client_array = 2 * 2 * b->max_subscriptions * sizeof(struct sub *);
    b->room_constant = client_array + sizeof(struct buf) + sizeof(struct sub) + 4 * BLOCK_OVERHEAD +
                       sizeof(struct topic) +
                       (first_ring + b->cache_size) * sizeof(struct ring_entry) +
                       4 * sizeof(struct sub *);
    b->random_state = config->random_seed ? config->random_seed : 0x9E3779B97F4A7C15ULL;
    b->deliver = config->deliver;
    b->queue_growth = config->queue_growth;
    b->keeping_up = config->keeping_up;
    b->changed = config->changed;
    b->room = config->room;
    b->change_ctx = config->change_ctx;
    return b;
}

static void topic_free(struct topic *t)
{
    ring_clear(&t->cache);
    mqd_free(t->subs);
    mqd_free(t);
}

/* take_returned: the oldest returned line, or NULL */
static struct buf *take_returned(struct broker *b)
{
    struct buf *line = b->returned;
    if (line) {
        b->returned = line->newer;
        line->newer = NULL;
    }
    return line;
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    struct buf *line;
    while ((line = take_returned(b)))
        buf_unref(line);
    broker_depart(b, SIZE_MAX);
    size_t cursor = 0;
    struct topic *t;
    while ((t = table_next(b->topics, &cursor)))
        topic_free(t);
    table_free(b->topics);
    table_free(b->subs);
    retired_free(b->retired);
    mqd_free(b);
}

static struct topic *find_topic(const struct broker *b, const char *name, size_t len)
{
    return table_find(b->topics, name, len);
}

/* create_topic: a new topic, with
 * the next index a retired one of that name had. */
static enum broker_status create_topic(struct broker *b, const char *name, size_t len, bool counts,
                                       struct topic **out)
{
    struct topic *t;
    if (counts && b->max_topics && b->topics->count >= b->max_topics)
        return BROKER_TOO_MANY_TOPICS;
    t = mqd_calloc(1, sizeof(*t) + len);
    if (!t || table_reserve(b->topics, 1) < 0) {
        mqd_free(t);
        return BROKER_NO_MEMORY;
    }
    memcpy(t->name, name, len);
    t->name_len = len;
    ring_init(&t->cache, b->cache_size, &b->ages);
    t->next_index = retired_take(b->retired, name, len, &t->index_reserved);
    b->retired_cost = retired_reserve_cost(b->retired);
    int inserted = table_insert(b->topics, t); /* reserved: cannot fail */
    (void)inserted;
    *out = t;
    return BROKER_OK;
}

/* find_or_create_topic: a new topic `counts` against --max-topics unless the
 * command cannot leave it alive (a send that caches nothing to a topic nobody
 * is subscribed to: it is freed again at once) */
static inline enum broker_status find_or_create_topic(struct broker *b, const char *name,
                                                      size_t len, bool counts, struct topic **out)
{
    *out = find_topic(b, name, len);
    return *out ? BROKER_OK : create_topic(b, name, len, counts, out);
}

/* free_topic_if_unused: a topic with no subscribers and nothing cached goes,
 * keeping only its next index when one was used. */
static void free_topic_if_unused(struct broker *b, struct topic *t)
{
    if (t->nsubs > 0 || t->cache.len > 0)
        return;
    if (t->next_index > 0)
        retired_put(b->retired, t->name, t->name_len, t->next_index, t->index_reserved);
    else if (t->index_reserved)
        retired_unreserve(b->retired);
    b->retired_cost = retired_reserve_cost(b->retired);
    table_remove(b->topics, t->name, t->name_len);
    topic_free(t);
}

size_t broker_client_subscriptions(const struct broker_client *c) { return c->nsubs; }

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

/* tell: a change a restart must keep */
static void tell(struct broker *b, enum broker_change_kind kind, const struct topic *t,
                 uint64_t index, bool once, struct buf *line)
{
    if (!b->changed)
        return;
    struct broker_change c = {.kind = kind,
                              .topic = t->name,
                              .topic_len = t->name_len,
                              .index = index,
                              .once = once,
                              .line = line};
    b->changed(b->change_ctx, &c);
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

/* leave_some: `c` leaves up to *budget of its topics, the budget counted
 * down; true when it is in none */
static bool leave_some(struct broker *b, struct broker_client *c, size_t *budget)
{
    while (c->nsubs > 0 && *budget > 0) {
        struct topic *t = c->subs[c->nsubs - 1]->key.topic;
        remove_sub(b, c->subs[c->nsubs - 1]);
        free_topic_if_unused(b, t);
        --*budget;
    }
    return c->nsubs == 0;
}

static void client_free(struct broker_client *c)
{
    mqd_free(c->subs);
    mqd_free(c);
}

void broker_client_free(struct broker_client *c)
{
    if (!c)
        return;
    size_t all = SIZE_MAX;
    leave_some(c->broker, c, &all);
    client_free(c);
}

void broker_client_detach(struct broker_client *c)
{
    if (!c)
        return;
    struct broker *b = c->broker;
    c->ctx = NULL;
    if (c->nsubs == 0) {
        client_free(c);
        return;
    }
    c->next_departing = b->departing;
    b->departing = c;
}

bool broker_depart(struct broker *b, size_t budget)
{
    while (b->departing && budget > 0) {
        struct broker_client *c = b->departing;
        if (!leave_some(b, c, &budget))
            break;
        b->departing = c->next_departing;
        client_free(c);
    }
    return b->departing == NULL;
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

enum broker_status broker_subscribe(struct broker *b, struct broker_client *c, const char *name,
                                    size_t len)
{
    struct topic *t = find_topic(b, name, len);
    if (t && find_sub(b, t, c))
        return BROKER_OK;
    if (b->max_subscriptions && c->nsubs >= b->max_subscriptions)
        return BROKER_TOO_MANY_SUBSCRIPTIONS;
    enum broker_status status = find_or_create_topic(b, name, len, true, &t);
    if (status != BROKER_OK)
        return status;
    struct sub *s = mqd_malloc(sizeof(*s));
    if (!s || reserve_sub(b, t, c) < 0) {
        mqd_free(s);
        free_topic_if_unused(b, t);
        return BROKER_NO_MEMORY;
    }
    s->key.topic = t;
    s->key.client = c;
    s->next_ok = t->next_index;
    s->topic_pos = t->nsubs;
    s->client_pos = c->nsubs;
    t->subs[t->nsubs++] = s;
    c->subs[c->nsubs++] = s;
    int inserted = table_insert(b->subs, s); /* reserved: cannot fail */
    (void)inserted;
    return BROKER_OK;
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

void broker_unsubscribe_unless(struct broker *b, struct broker_client *c, broker_keep_fn keep,
                               const void *ctx)
{
    /* backwards: a swap-remove moves the last sub into the hole, which was
     * already seen */
    for (size_t i = c->nsubs; i-- > 0;) {
        struct topic *t = c->subs[i]->key.topic;
        if (keep(ctx, t->name, t->name_len))
            continue;
        remove_sub(b, c->subs[i]);
        free_topic_if_unused(b, t);
    }
}

static bool deliver(struct broker *b, struct broker_client *c, struct buf *line)
{
    if (!c->ctx || !b->deliver(c->ctx, line)) /* a detached client takes nothing */
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
    /* a client that refuses a line (cut as a slow consumer, or closing)
     * takes none after it: the "one" messages it did not take stay cached */
    bool took_once = false;
    uint64_t last_taken = 0;
    for (size_t i = 0; i < t->cache.len; i++) {
        struct ring_entry *e = ring_at(&t->cache, i);
        if (!ring_index_above(e->index, last_seen))
            continue;
        if (!deliver(b, c, e->line))
            break;
        took_once |= e->once;
        last_taken = e->index;
    }
    struct sub *s;
    if (last_taken >= 1 && (s = find_sub(b, t, c)) && s->next_ok <= last_taken)
        s->next_ok = last_taken + 1;
    if (took_once) {
        for (size_t i = 0; b->changed && i < t->cache.len; i++) {
            const struct ring_entry *e = ring_at(&t->cache, i);
            if (e->once && ring_index_above(e->index, last_seen) && e->index <= last_taken)
                tell(b, BROKER_UNCACHED, t, e->index, true, NULL);
        }
        ring_remove_once_between(&t->cache, last_seen, last_taken);
        free_topic_if_unused(b, t);
    }
}

/* array_growth: the bytes mqd_grow_array would allocate to add one element */
static size_t array_growth(size_t n, size_t cap, size_t size, size_t min_cap)
{
    if (n < cap)
        return 0;
    return (cap ? cap * 2 : min_cap) * size;
}

/* ring_growth: the bytes ring_reserve would allocate now, at most */
static size_t ring_growth(const struct ring *r)
{
    if (r->len < r->cap || r->cap == r->max)
        return 0;
    size_t cap = r->cap ? r->cap * 2 : 4;
    return (cap < r->max ? cap : r->max) * sizeof(struct ring_entry);
}

size_t broker_room_needed(const struct broker *b, const struct broker_client *c, const char *name,
                          size_t len, size_t line_len)
{
    const struct topic *t = find_topic(b, name, len);
    size_t need = line_len + sizeof(struct buf) + sizeof(struct sub) + table_insert_cost(b->subs) +
                  retired_reserve_cost(b->retired) +
                  array_growth(c->nsubs, c->subs_cap, sizeof(*c->subs), 4) + 4 * BLOCK_OVERHEAD;
    if (b->queue_growth) /* a reply, and a replay of the whole cache */
        need += b->queue_growth(c->ctx, (t ? t->cache.len : 0) + 1);
    if (b->changed) /* its records: the line again, the topic twice, frames */
        need += line_len + 2 * len + 64;
    if (t) {
        need += ring_growth(&t->cache) + array_growth(t->nsubs, t->subs_cap, sizeof(*t->subs), 4);
        for (size_t i = 0; b->queue_growth && i < t->nsubs; i++) { /* the fan-out */
            void *ctx = t->subs[i]->key.client->ctx;
            need += ctx ? b->queue_growth(ctx, 1) : 0;
        }
    } else {
        size_t first_ring = b->cache_size < 4 ? b->cache_size : 4; /* as ring_reserve */
        need += sizeof(struct topic) + len + table_insert_cost(b->topics) +
                first_ring * sizeof(struct ring_entry) + 4 * sizeof(*t->subs);
    }
    return need;
}

/* table_doubling: what a table's next growth allocates, whenever it comes */
static size_t table_doubling(const struct table *t)
{
    return 2 * (t->mask + 1) * sizeof(struct table_slot);
}

size_t broker_room_bound(const struct broker *b, const struct broker_client *c, size_t len,
                         size_t line_len, size_t per_subscription, size_t per_line)
{
    /* broker_room_needed's terms, each at its largest for any topic, few
     * enough to cost less than the lookup they save: the constant ones
     * were added up once (room_constant), an existing topic's subscriber
     * array doubles at most to twice all subscriptions, and a table's growth
     * is taken as due */
    return line_len + len + b->room_constant + table_doubling(b->topics) + table_doubling(b->subs) +
           (b->subs->count + 4) * (2 * sizeof(struct sub *)) +
           (b->subs->count + 1) * per_subscription + (b->cache_size + 1) * per_line +
           b->retired_cost +
           (b->max_subscriptions ? 0 : array_growth(c->nsubs, c->subs_cap, sizeof(*c->subs), 4));
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
    line->once = m->one;
    return line;
}

/* the subscribers looked at for one keeping up, per delivery "one" */
#define ONE_SCAN 64

/* pick_sub: a subscription that may be handed `index` and, with
 * `keeping_up`, whose client has nothing queued: uniform among those in a
 * window of ONE_SCAN from a random start (all of them, up to ONE_SCAN
 * subscribers), or NULL */
static struct sub *pick_sub(struct broker *b, struct topic *t, uint64_t index, bool keeping_up)
{
    size_t n = t->nsubs, first = random_below(b, n), scan = n < ONE_SCAN ? n : ONE_SCAN;
    struct sub *pick = NULL;
    size_t seen = 0;
    for (size_t k = 0; k < scan; k++) {
        struct sub *s = t->subs[(first + k) % n];
        void *ctx = s->key.client->ctx;
        if (ctx && s->next_ok <= index && (!keeping_up || b->keeping_up(ctx)) &&
            random_below(b, ++seen) == 0)
            pick = s;
    }
    return pick;
}

/* hand_to: delivers the line to the subscription; false when its client
 * refused it */
static bool hand_to(struct broker *b, struct sub *s, struct buf *line, uint64_t index)
{
    if (!deliver(b, s->key.client, line))
        return false;
    s->next_ok = index + 1;
    return true;
}

/* deliver_to_one: hands the line to a subscriber keeping up (nothing
 * queued to it) when there is one, else to one picked uniformly at random;
 * one that is going away refuses it, and the next one is tried. False when
 * none took it. */
static bool deliver_to_one(struct broker *b, struct topic *t, struct buf *line, uint64_t index)
{
    size_t n = t->nsubs;
    if (n == 0)
        return false;
    struct sub *ready = b->keeping_up ? pick_sub(b, t, index, true) : NULL;
    if (ready && hand_to(b, ready, line, index))
        return true;
    size_t first = random_below(b, n);
    for (size_t k = 0; k < n; k++)
        if (hand_to(b, t->subs[(first + k) % n], line, index))
            return true;
    return false;
}

/* reserve_index: room in the retired store for the topic's index, taken
 * when it is first used so that retiring it later cannot fail; without
 * room (the store is full) the index will be folded. False when out of
 * memory. */
static bool reserve_index(struct broker *b, struct topic *t)
{
    if (t->index_reserved)
        return true;
    enum retired_reservation r = retired_reserve(b->retired);
    b->retired_cost = retired_reserve_cost(b->retired);
    t->index_reserved = r == RETIRED_RESERVED;
    return r != RETIRED_NO_MEMORY;
}

enum broker_status broker_send(struct broker *b, const struct broker_message *m)
{
    bool may_cache = m->cache && b->cache_size > 0;
    struct topic *t;
    enum broker_status status = find_or_create_topic(b, m->topic, m->topic_len, may_cache, &t);
    if (status != BROKER_OK)
        return status;
    /* a "one" message is cached when no subscriber takes it, which is only
     * known after trying: room is made first, so that cannot fail */
    struct buf *line = NULL;
    if (!reserve_index(b, t) || (may_cache && ring_reserve(&t->cache) < 0) ||
        !(line = build_line(m, t->next_index))) {
        free_topic_if_unused(b, t);
        return BROKER_NO_MEMORY;
    }
    if (b->room && !b->room(b->change_ctx, t->name_len, line->len)) {
        buf_unref(line);
        free_topic_if_unused(b, t);
        return BROKER_NOT_KEPT;
    }
    uint64_t index = t->next_index++;
    b->messages_received++;
    bool to_cache = may_cache;
    if (m->one) {
        to_cache &= !deliver_to_one(b, t, line, index);
    } else {
        for (size_t i = 0; i < t->nsubs; i++) {
            struct sub *s = t->subs[i];
            s->next_ok = index + 1;
            deliver(b, s->key.client, line);
        }
    }
    if (to_cache) {
        if (t->cache.len == t->cache.max) /* the rule drops the oldest: told, so
                                           * a bigger cache after a restart
                                           * does not bring it back */
            tell(b, BROKER_UNCACHED, t, ring_at(&t->cache, 0)->index, false, NULL);
        tell(b, BROKER_CACHED, t, index, m->one, line);
        ring_push(&t->cache, line, index, m->one);
    } else {
        tell(b, BROKER_INDEXED, t, index + 1, false, NULL);
        buf_unref(line);
    }
    if (t->nsubs == 0 && t->cache.len == 0) /* sent to nobody and not cached */
        free_topic_if_unused(b, t);
    return BROKER_OK;
}

void broker_return(struct broker *b, struct buf *line)
{
    line->older = NULL;
    line->newer = NULL;
    if (b->returned)
        b->returned_tail->newer = line;
    else
        b->returned = line;
    b->returned_tail = line;
}

/* parse_line: the send command a delivered line was built from (build_line
 * added `, "index": N` before its closing brace) and its index. The caller
 * releases *req on PROTO_OK. */
static enum proto_status parse_line(const struct buf *line, struct proto_request *req,
                                    char **object, uint64_t *index)
{
    static const char key[] = ", \"index\": ";
    const size_t key_len = sizeof(key) - 1;
    *object = NULL;
    /* a line restored from a data directory is only as well formed as the
     * log: check the shape build_line gives before trusting it */
    if (line->len < key_len + 5 || memcmp(line->data + line->len - 3, "}\r\n", 3) != 0)
        return PROTO_MALFORMED;
    size_t at = line->len - 4; /* the last digit */
    uint64_t scale = 1;
    for (*index = 0; at > key_len && line->data[at] >= '0' && line->data[at] <= '9';
         at--, scale *= 10)
        *index += (uint64_t)(line->data[at] - '0') * scale;
    if (at == line->len - 4 || memcmp(line->data + at + 1 - key_len, key, key_len) != 0)
        return PROTO_MALFORMED;
    size_t body = at + 1 - key_len;
    if (!(*object = mqd_malloc(body + 1)))
        return PROTO_NO_MEMORY;
    memcpy(*object, line->data, body);
    (*object)[body] = '}';
    return proto_parse(*object, body + 1, req);
}

/* recache: the line goes back to its topic's cache in index order, taking
 * over the caller's reference; false when it cannot (not to be cached, no
 * room, older than a full cache): the line is then dropped */
static bool recache(struct broker *b, const struct proto_request *req, struct buf *line,
                    uint64_t index)
{
    struct topic *t;
    if (!req->cache || b->cache_size == 0 ||
        find_or_create_topic(b, req->topic, req->topic_len, true, &t) != BROKER_OK) {
        buf_unref(line);
        return false;
    }
    if (ring_reserve(&t->cache) < 0) {
        free_topic_if_unused(b, t);
        buf_unref(line);
        return false;
    }
    struct buf *told = buf_ref(line);
    struct ring *r = &t->cache;
    if (r->len == r->max && r->max > 0 && ring_at(r, 0)->index < index)
        tell(b, BROKER_UNCACHED, t, ring_at(r, 0)->index, false, NULL); /* it makes room */
    bool kept = ring_insert(&t->cache, line, index, true);
    if (kept)
        tell(b, BROKER_CACHED, t, index, true, told);
    buf_unref(told);
    free_topic_if_unused(b, t);
    return kept;
}

/* hand_to_any: the line to any subscription that may take it, looked for
 * through them all from a random start (pick_sub's window looks at 64, and
 * the one that may is sometimes the only one) */
static bool hand_to_any(struct broker *b, struct topic *t, struct buf *line, uint64_t index)
{
    size_t n = t->nsubs;
    size_t first = n ? random_below(b, n) : 0;
    for (size_t k = 0; k < n; k++) {
        struct sub *s = t->subs[(first + k) % n];
        if (s->key.client->ctx && s->next_ok <= index && hand_to(b, s, line, index))
            return true;
    }
    return false;
}

/* reroute: one returned line to a subscriber that may take it, or the
 * cache, or nowhere */
static void reroute(struct broker *b, struct buf *line)
{
    struct proto_request req;
    char *object;
    uint64_t index;
    if (parse_line(line, &req, &object, &index) != PROTO_OK) { /* memory, or a bad restored line */
        mqd_free(object);
        b->one_lost++;
        buf_unref(line);
        return;
    }
    struct topic *t = find_topic(b, req.topic, req.topic_len);
    /* one keeping up when the window has one, else any that may take it */
    struct sub *s = t && t->nsubs && b->keeping_up ? pick_sub(b, t, index, true) : NULL;
    if ((s && hand_to(b, s, line, index)) || (t && hand_to_any(b, t, line, index))) {
        b->one_rerouted++;
        buf_unref(line);
    } else if (recache(b, &req, line, index)) {
        b->one_recached++;
    } else {
        b->one_lost++;
    }
    proto_request_release(&req);
    mqd_free(object);
}

void broker_lose_one(struct broker *b) { b->one_lost++; }

bool broker_reroute(struct broker *b, size_t budget)
{
    struct buf *line;
    while (budget-- > 0 && (line = take_returned(b)))
        reroute(b, line);
    return b->returned == NULL;
}

bool broker_evict_oldest(struct broker *b, bool *was_one)
{
    struct ring *oldest = ring_ages_oldest(&b->ages);
    if (!oldest)
        return false;
    struct topic *t = (struct topic *)((char *)oldest - offsetof(struct topic, cache));
    tell(b, BROKER_UNCACHED, t, ring_at(oldest, 0)->index, false, NULL);
    *was_one = ring_drop_oldest(oldest);
    b->cache_evictions++;
    b->cache_evicted_one += *was_one;
    free_topic_if_unused(b, t);
    return true;
}

void broker_tell_changes(struct broker *b, broker_change_fn fn, broker_room_fn room, void *ctx)
{
    b->changed = fn;
    b->room = room;
    b->change_ctx = ctx;
}

/* restore_cached: the entry goes where it was: at the end, or in index
 * order. What the cache's rule drops (a smaller cache than the one it was
 * kept with) is told, as in memory: a bigger cache later brings none of it
 * back. */
static enum broker_status restore_cached(struct broker *b, struct topic *t,
                                         const struct broker_change *c)
{
    if (t->next_index <= c->index)
        t->next_index = c->index + 1;
    struct ring *r = &t->cache;
    if (ring_reserve(r) < 0)
        return BROKER_NO_MEMORY;
    if (r->max == 0 || (r->len == r->max && c->index < ring_at(r, 0)->index)) {
        tell(b, BROKER_UNCACHED, t, c->index, c->once, NULL);
        return BROKER_OK;
    }
    if (r->len == r->max)
        tell(b, BROKER_UNCACHED, t, ring_at(r, 0)->index, ring_at(r, 0)->once, NULL);
    c->line->once = c->once; /* as build_line marks it, for broker_return */
    if (r->len == 0 || ring_at(r, r->len - 1)->index < c->index)
        ring_push(r, buf_ref(c->line), c->index, c->once);
    else
        (void)ring_insert(r, buf_ref(c->line), c->index, c->once); /* as when it was told */
    return BROKER_OK;
}

/* restore_retired: a retired topic's change, which names no topic */
static enum broker_status restore_retired(struct broker *b, const struct broker_change *c)
{
    switch (c->kind) {
    case BROKER_HASH_KEY:
        if (retired_set_key(b->retired, c->key) < 0)
            return BROKER_OUT_OF_ORDER;
        break;
    case BROKER_RETIRED:
        if (retired_restore(b->retired, c->hash, c->index) < 0)
            return BROKER_NO_MEMORY;
        break;
    default:
        if (retired_raise_floor(b->retired, (size_t)c->hash, c->index) < 0)
            return BROKER_OUT_OF_ORDER; /* no such bucket: not a floor mqd wrote */
        break;
    }
    b->retired_cost = retired_reserve_cost(b->retired);
    return BROKER_OK;
}

enum broker_status broker_restore(struct broker *b, const struct broker_change *c)
{
    if (c->kind >= BROKER_HASH_KEY)
        return restore_retired(b, c);
    struct topic *t;
    enum broker_status status = find_or_create_topic(b, c->topic, c->topic_len, false, &t);
    if (status != BROKER_OK)
        return status;
    if (!reserve_index(b, t)) {
        free_topic_if_unused(b, t);
        return BROKER_NO_MEMORY;
    }
    switch (c->kind) {
    case BROKER_CACHED: status = restore_cached(b, t, c); break;
    case BROKER_INDEXED:
        if (t->next_index < c->index)
            t->next_index = c->index;
        break;
    case BROKER_UNCACHED:
        if (t->next_index <= c->index) /* its index was used, whatever came before */
            t->next_index = c->index + 1;
        ring_remove_index(&t->cache, c->index);
        break;
    default: break; /* restore_retired's */
    }
    free_topic_if_unused(b, t);
    return status;
}

struct kept_walk {
    broker_change_fn fn;
    void *ctx;
};

static void tell_retired(void *ctx, uint64_t hash, uint64_t next_index)
{
    struct kept_walk *w = ctx;
    struct broker_change c = {
        .kind = BROKER_RETIRED, .topic = "", .index = next_index, .hash = hash};
    w->fn(w->ctx, &c);
}

static void tell_floor(void *ctx, size_t bucket, uint64_t floor)
{
    struct kept_walk *w = ctx;
    struct broker_change c = {.kind = BROKER_FLOOR, .topic = "", .index = floor, .hash = bucket};
    w->fn(w->ctx, &c);
}

/* tell_topic: what rebuilds one live topic: its next index, then its cache */
static void tell_topic(const struct topic *t, broker_change_fn fn, void *ctx)
{
    if (t->next_index == 0)
        return; /* nothing sent yet: nothing to keep */
    struct broker_change c = {
        .kind = BROKER_INDEXED, .topic = t->name, .topic_len = t->name_len, .index = t->next_index};
    fn(ctx, &c);
    c.kind = BROKER_CACHED;
    for (size_t i = 0; i < t->cache.len; i++) {
        const struct ring_entry *e = ring_at(&t->cache, i);
        c.index = e->index;
        c.once = e->once;
        c.line = e->line;
        fn(ctx, &c);
    }
}

void broker_each_kept(const struct broker *b, broker_change_fn fn, void *ctx)
{
    struct broker_change key = {
        .kind = BROKER_HASH_KEY, .topic = "", .key = retired_key(b->retired)};
    fn(ctx, &key);
    struct kept_walk w = {fn, ctx};
    retired_each(b->retired, tell_retired, tell_floor, &w);
    struct topic *t;
    size_t cursor = 0;
    while ((t = table_next(b->topics, &cursor)))
        tell_topic(t, fn, ctx);
}

void broker_get_stats(const struct broker *b, struct broker_stats *out)
{
    out->topics = b->topics->count;
    out->retired_topics = retired_count(b->retired);
    out->subscriptions = b->subs->count;
    out->cached_messages = b->ages.messages;
    out->cached_bytes = b->ages.bytes;
    out->messages_received = b->messages_received;
    out->messages_delivered = b->messages_delivered;
    out->cache_evictions = b->cache_evictions;
    out->cache_evicted_one = b->cache_evicted_one;
    out->one_rerouted = b->one_rerouted;
    out->one_recached = b->one_recached;
    out->one_lost = b->one_lost;
}
