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
 * topics). A topic lives from the first command that names it; one that has
 * never been sent to and has neither subscribers nor cache is freed again,
 * since nobody could tell it apart from one that never existed.
 *
 * Every operation that can fail for lack of memory fails whole: it changes
 * nothing and returns -1.
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

/* broker_deliver_fn: queue `line` (take a reference to keep it) for the client
 * whose context this is. False when the client did not take it because it is
 * going away (closed earlier in this loop iteration, or cut by this line):
 * delivery "one" then picks another subscriber. */
typedef bool (*broker_deliver_fn)(void *client_ctx, struct buf *line);

struct broker_config {
    size_t cache_size; /* messages kept per topic; 0 caches nothing */
    uint8_t hash_seed[SIPHASH_KEY_LEN];
    uint64_t random_seed; /* for delivery "one" */
    broker_deliver_fn deliver;
};

struct broker_stats {
    size_t topics;
    size_t subscriptions;
    size_t cached_messages;
    size_t cached_bytes;
    uint64_t messages_received;  /* accepted sends */
    uint64_t messages_delivered; /* lines handed to clients, replays included */
};

/* broker_new: an empty broker, or NULL when out of memory. */
struct broker *broker_new(const struct broker_config *config);

/* broker_free: frees every topic and cached line. Clients must be freed first. */
void broker_free(struct broker *b);

/* broker_client_new: a client that can subscribe; `ctx` is passed to deliver.
 * NULL when out of memory. */
struct broker_client *broker_client_new(struct broker *b, void *ctx);

/* broker_client_free: the client leaves every topic and is freed. NULL is a no-op. */
void broker_client_free(struct broker_client *c);

/* broker_subscribe: `c` joins the topic (at most once; joining again changes
 * nothing). 0, or -1 when out of memory. The caller replies, then replays. */
int broker_subscribe(struct broker *b, struct broker_client *c, const char *topic, size_t len);

/* broker_replay: delivers to `c`, in index order, the topic's cached messages
 * with an index above `last_seen`; the delivery "one" messages among them
 * leave the cache. */
void broker_replay(struct broker *b, struct broker_client *c, const char *topic, size_t len,
                   int64_t last_seen);

/* broker_unsubscribe: `c` leaves the topic; leaving one it is not in is fine. */
void broker_unsubscribe(struct broker *b, struct broker_client *c, const char *topic, size_t len);

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
 * is the sender's object with "index" added, ended by "\r\n". 0, or -1 when
 * out of memory (then no index was used). */
int broker_send(struct broker *b, const struct broker_message *m);

/* broker_get_stats: the figures operators watch, in O(1). */
void broker_get_stats(const struct broker *b, struct broker_stats *out);

#endif
