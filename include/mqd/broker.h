/*
 * broker: topics, their subscribers, index counters and caches: the delivery
 * and cache rules of PROTOCOL.md, with no sockets and no syscalls.
 *
 * The broker hands a delivered line to a client by calling the `deliver`
 * function it was created with; what the client does with it (queue it, drop
 * itself for exceeding a limit) is the caller's business. A line is built
 * once per send and shared by reference between every receiver and the cache.
 *
 * Costs: topic lookup O(1) expected; subscribe, unsubscribe and delivery
 * "one" O(1); delivery "all" O(subscribers); a client's departure O(its
 * topics); evicting the oldest cached message of all topics O(1).
 *
 * A topic lives from the first command that names it while it has
 * subscribers or cached messages. Once it has neither it is freed; if it was
 * ever sent to, its next index is kept in retired.h's compact store and
 * taken back when the topic is named again, so no index is ever reused.
 *
 * Every operation that can fail fails whole: it changes nothing and returns
 * a negative broker_status.
 */
#ifndef MQD_BROKER_H
#define MQD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/buf.h"
#include "mqd/siphash.h"

struct broker;
struct broker_client;

/* broker_queue_growth_fn: the bytes the client whose context this is would
 * allocate to queue `lines` more lines, for broker_room_needed. */
typedef size_t (*broker_queue_growth_fn)(void *client_ctx, size_t lines);

/* broker_keeping_up_fn: whether the client has nothing queued to it, so a
 * delivery "one" reaches it now rather than behind a backlog. */
typedef bool (*broker_keeping_up_fn)(void *client_ctx);

/* broker_deliver_fn: queue `line` (take a reference to keep it) for the client
 * whose context this is. False when the client did not take it because it is
 * going away (closed earlier in this loop iteration, or cut by this line):
 * delivery "one" then picks another subscriber. */
typedef bool (*broker_deliver_fn)(void *client_ctx, struct buf *line);

/* what a restart must keep, told as it happens (a store writes it down) and
 * handed back to broker_restore at start */
enum broker_change_kind {
    BROKER_CACHED,   /* a message entered its topic's cache: index, once, line */
    BROKER_INDEXED,  /* a send not cached: the topic's next index is now `index` */
    BROKER_UNCACHED, /* the cached message `index` left the cache (taken, evicted) */
    /* told only by broker_each_kept: the retired topics, kept without
     * their names (retired.h), and the key their names are hashed with */
    BROKER_HASH_KEY, /* key */
    BROKER_RETIRED,  /* a retired topic: its name's hash, its next index */
    BROKER_FLOOR,    /* retired topics' bucket `hash` starts at `index` */
};

struct broker_change {
    enum broker_change_kind kind;
    const char *topic;
    size_t topic_len;
    uint64_t index;
    bool once;          /* CACHED: delivery "one" */
    struct buf *line;   /* CACHED: the delivered line */
    uint64_t hash;      /* RETIRED: the name's hash; FLOOR: the bucket */
    const uint8_t *key; /* HASH_KEY: SIPHASH_KEY_LEN bytes */
};

/* broker_change_fn: one change, during the operation that made it; the
 * change and its line are only lent. A full cache dropping its oldest entry
 * is told too, so a restart with a bigger cache does not bring it back. */
typedef void (*broker_change_fn)(void *ctx, const struct broker_change *c);

/* broker_room_fn: whether the keeper of changes has room for those of a
 * send of a `line_len`-byte line to a topic named in `topic_len` bytes,
 * asked (with the change context) before the send changes anything: false
 * refuses the send with BROKER_NOT_KEPT. Only sends are asked: what a
 * subscribe or a departure changes is kept as well as it can be. */
typedef bool (*broker_room_fn)(void *ctx, size_t topic_len, size_t line_len);

struct broker_config {
    size_t cache_size;        /* messages kept per topic; 0 caches nothing */
    size_t max_topics;        /* topics alive at once; 0: no limit */
    size_t max_subscriptions; /* per client; 0: no limit */
    size_t max_retired;       /* retired topics whose index is kept exactly */
    uint8_t hash_seed[SIPHASH_KEY_LEN];
    uint64_t random_seed; /* for delivery "one" */
    broker_deliver_fn deliver;
    broker_queue_growth_fn queue_growth; /* NULL: queues cost nothing */
    broker_keeping_up_fn keeping_up;     /* NULL: every subscriber is */
    broker_change_fn changed;            /* NULL: nothing is kept */
    broker_room_fn room;                 /* NULL: always room */
    void *change_ctx;
};

enum broker_status {
    BROKER_OK = 0,
    BROKER_NO_MEMORY = -1,
    BROKER_TOO_MANY_TOPICS = -2,
    BROKER_TOO_MANY_SUBSCRIPTIONS = -3,
    BROKER_OUT_OF_ORDER = -4, /* broker_restore: a hash key after retired topics, a floor
                               * of no bucket */
    BROKER_NOT_KEPT = -5,     /* broker_send: the changes' keeper has no room */
};

/* the bytes a delivered line adds to the sender's object at most: ', "index": ',
 * 20 digits and "}\r\n" in place of the closing brace */
#define BROKER_INDEX_ROOM 33

struct broker_stats {
    size_t topics;         /* alive: with subscribers or cached messages */
    size_t retired_topics; /* freed, their next index kept exactly */
    size_t subscriptions;
    size_t cached_messages;
    size_t cached_bytes;
    uint64_t messages_received;  /* accepted sends */
    uint64_t messages_delivered; /* lines handed to clients, replays included */
    uint64_t cache_evictions;    /* cached messages evicted for memory */
    uint64_t cache_evicted_one;  /* of which delivery "one", delivered to nobody */
    /* delivery "one" lines a closed client was never written (broker_return):
     * handed to another subscriber, put back in the cache, or lost */
    uint64_t one_rerouted;
    uint64_t one_recached;
    uint64_t one_lost;
};

/* broker_new: an empty broker, or NULL when out of memory. */
struct broker *broker_new(const struct broker_config *config);

/* broker_free: frees every topic and cached line. Clients must be freed first. */
void broker_free(struct broker *b);

/* broker_client_new: a client that can subscribe; `ctx` is passed to deliver.
 * NULL when out of memory. */
struct broker_client *broker_client_new(struct broker *b, void *ctx);

/* broker_client_free: the client leaves every topic and is freed, at once:
 * O(its topics). NULL is a no-op. */
void broker_client_free(struct broker_client *c);

/* broker_client_detach: the client takes no more lines from now on and is
 * the broker's: it leaves its topics in the steps broker_depart takes, so a
 * client with a million subscriptions does not stall everyone for the time
 * it takes to leave them. O(1). NULL is a no-op. */
void broker_client_detach(struct broker_client *c);

/* broker_depart: detached clients leave up to `budget` subscriptions in all,
 * and are freed once in none. True when none is left departing. */
bool broker_depart(struct broker *b, size_t budget);

/* broker_client_subscriptions: how many topics `c` is subscribed to. */
size_t broker_client_subscriptions(const struct broker_client *c);

/* broker_subscribe: `c` joins the topic (at most once; joining again changes
 * nothing). BROKER_OK, or BROKER_NO_MEMORY, BROKER_TOO_MANY_TOPICS (a new
 * topic past max_topics), BROKER_TOO_MANY_SUBSCRIPTIONS (a client already in
 * max_subscriptions topics). The caller replies, then replays. */
enum broker_status broker_subscribe(struct broker *b, struct broker_client *c, const char *topic,
                                    size_t len);

/* broker_replay: delivers to `c`, in index order, the topic's cached messages
 * with an index above `last_seen`, and stops at the first line `c` does not
 * take. The delivery "one" messages it took leave the cache; the others stay
 * for the next subscriber. */
void broker_replay(struct broker *b, struct broker_client *c, const char *topic, size_t len,
                   int64_t last_seen);

/* broker_unsubscribe: `c` leaves the topic; leaving one it is not in is fine. */
void broker_unsubscribe(struct broker *b, struct broker_client *c, const char *topic, size_t len);

/* broker_keep_fn: whether a client may stay subscribed to the topic. */
typedef bool (*broker_keep_fn)(const void *ctx, const char *topic, size_t len);

/* broker_unsubscribe_unless: the client leaves every topic `keep` says no
 * to (its rights changed). O(its topics). */
void broker_unsubscribe_unless(struct broker *b, struct broker_client *c, broker_keep_fn keep,
                               const void *ctx);

struct broker_message {
    const char *topic; /* decoded topic name */
    size_t topic_len;
    const char *object; /* the sender's raw JSON object, '{' to '}' */
    size_t object_len;
    bool one;   /* delivery "one", else "all" */
    bool cache; /* false: never cached */
};

/* broker_send: gives the message the topic's next index and delivers it by the
 * rules of its delivery, then caches it when they say so. The delivered line
 * is the sender's object with "index" added, ended by "\r\n". BROKER_OK, or
 * BROKER_NO_MEMORY, BROKER_TOO_MANY_TOPICS or BROKER_NOT_KEPT (then no index
 * was used). */
enum broker_status broker_send(struct broker *b, const struct broker_message *m);

/* broker_room_needed: at most how many bytes a subscribe by `c` to this
 * topic, or a send to it of a delivered line of `line_len` bytes, can
 * allocate now: what a memory budget must find room for before running it.
 * Its receivers' queues are asked what one more line costs them
 * (queue_growth), and `c`'s what the replay of the whole cache and a reply
 * would; with a change function, the records that keep the send are
 * counted too. O(the topic's subscribers). */
size_t broker_room_needed(const struct broker *b, const struct broker_client *c, const char *topic,
                          size_t len, size_t line_len);

/* broker_room_bound: an upper bound on broker_room_needed for any topic of
 * `len` bytes, found without looking the topic up. Of the queues it counts
 * `per_subscription` bytes for every subscription (a queue's first slot
 * array) and `per_line` for every line of a whole cache and a reply; what
 * fuller queues add by doubling is their owner's to bound (conn.c). O(1). */
size_t broker_room_bound(const struct broker *b, const struct broker_client *c, size_t len,
                         size_t line_len, size_t per_subscription, size_t per_line);

/* broker_return: a delivery "one" line (line->once) queued to a client that
 * closed before any of it was written: the broker takes over the caller's
 * reference and hands the line on at a later broker_reroute. O(1); never
 * fails, so it may be called while memory is being made room for. */
void broker_return(struct broker *b, struct buf *line);

/* broker_lose_one: a delivery "one" line a closed client was never written
 * is dropped instead (its client was cut to make room for memory): counted
 * as lost. O(1). */
void broker_lose_one(struct broker *b);

/* broker_reroute: up to `budget` returned lines, oldest first, each go to a
 * subscriber of their topic that may take it without breaking its index
 * order (none was handed a later index of the topic, and it was subscribed
 * when the line was sent), one keeping up when there is one; else back to
 * the topic's cache in index order when the message may be cached; else
 * they are lost and counted. True when none is left. O(budget), but the
 * cache insertion's O(cache size). */
bool broker_reroute(struct broker *b, size_t budget);

/* broker_restore: applies a change told by a broker before a restart, in
 * the order told, before any client: the topics' next indexes and caches
 * come back as they were (a CACHED change takes its own reference to the
 * line), under this broker's cache size: what a smaller cache drops is
 * told as UNCACHED, so set the change function first. Topics do not count
 * against max_topics. BROKER_OK, BROKER_NO_MEMORY, or BROKER_OUT_OF_ORDER
 * for a hash key after retired topics. O(1), or O(cache size) for an entry
 * out of index order or one that left the cache. */
enum broker_status broker_restore(struct broker *b, const struct broker_change *c);

/* broker_each_kept: tells `fn` the changes that rebuild everything a
 * restart keeps, as broker_restore takes them: the hash key, the retired
 * topics and floors, then each live topic's next index and cached
 * messages, oldest first. Changes nothing. O(topics + cached + retired). */
void broker_each_kept(const struct broker *b, broker_change_fn fn, void *ctx);

/* broker_tell_changes: from now on, tells changes to `fn` (NULL: to nobody),
 * as config.changed does: set once what was kept has been restored. */
void broker_tell_changes(struct broker *b, broker_change_fn fn, broker_room_fn room, void *ctx);

/* broker_evict_oldest: drops the oldest cached message of all topics, for
 * memory. False when nothing is cached. *was_one tells whether it was a
 * delivery "one" message, which is then delivered to nobody. O(1). */
bool broker_evict_oldest(struct broker *b, bool *was_one);

/* broker_get_stats: the figures operators watch, in O(1). */
void broker_get_stats(const struct broker *b, struct broker_stats *out);

#endif
