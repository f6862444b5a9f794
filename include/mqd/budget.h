/*
 * budget: --max-memory, one limit on all the memory mqd holds for its
 * clients: cached lines, queued output, unfinished input lines, topics with
 * their names, subscriptions, and everything else it allocates.
 *
 * The measure is alloc.h's exact count, never a sample of RSS. Before mqd
 * takes memory on a client's behalf (a command that may add a topic, a
 * subscription or a message; an unfinished input line growing; a new
 * connection) it asks budget_make_room for the bytes it expects to need.
 * When they do not fit, the budget frees memory in this order:
 *   0. what conns closed in this loop iteration still hold (a slow
 *      consumer's queue, a requester cut for memory), given back at once;
 *   1. cached messages, oldest first across all topics (broker.h); a
 *      delivery "one" message evicted so is lost: counted, and a warning;
 *   2. the client holding the most memory (output, input, subscriptions),
 *      disconnected with a warning (conn.h), then the next;
 *   3. and only then it refuses: the caller answers "Out of memory" and
 *      changes nothing.
 * Room is made between commands, never inside one, so no fan-out or replay
 * ever sees a cache entry or a client vanish under it.
 *
 * What one command takes beyond its estimate, should the estimate fall
 * short, is bounded by the ceiling set on the allocator: the limit plus one
 * line of --max-line. Past that an allocation fails as if
 * the system had no more, through the paths proven by the allocation tests.
 * So mqd never holds more than the budget plus one line.
 */
#ifndef MQD_BUDGET_H
#define MQD_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/alloc.h"
#include "mqd/log.h"

struct broker;
struct conn_env;

struct budget_config {
    size_t limit; /* bytes; 0: no limit */
    size_t slack; /* the allocator's ceiling is limit + slack: one line */
    struct broker *broker;
    struct conn_env *clients;
    const struct log *log;
};

/* budget: public so that the check every command makes inlines; its
 * fields are budget.c's business */
struct budget {
    size_t limit;
    struct broker *broker;
    struct conn_env *clients;
    const struct log *log;
    size_t high_water; /* the most held since the last trim */
    struct log_limit one_warnings;
};

/* budget_new: a budget over the broker's caches and the clients; sets the
 * allocator's ceiling. NULL when out of memory. */
struct budget *budget_new(const struct budget_config *config);

/* budget_free: removes the ceiling and frees the budget. NULL is a no-op. */
void budget_free(struct budget *b);

/* budget_make_room: whether `need` more bytes fit, after freeing what the
 * order above allows. `requester` is the conn asking (NULL: none): it may be
 * the one disconnected, and is then closed, not freed (its memory goes once
 * the loop iteration ends), and the answer is false. A NULL budget always
 * has room. O(1) while there is room; each client evicted costs a walk over
 * the clients. */
bool budget_make_room(struct budget *b, size_t need, const void *requester);

/* budget_make_room_from_cache: budget_make_room that only evicts cached
 * messages: for what no client asked for (a new connection), which must
 * never cost a client its connection. */
bool budget_make_room_from_cache(struct budget *b, size_t need);

/* budget_has_room: whether `need` more bytes fit now, freeing nothing. A
 * NULL budget always has room. O(1). */
static inline bool budget_has_room(const struct budget *b, size_t need)
{
    if (!b || b->limit == 0)
        return true;
    size_t held = mqd_allocated();
    return need <= b->limit && held <= b->limit - need;
}

/* budget_give_back: returns freed heap pages to the system, so RSS follows
 * what mqd holds: when `idle` (the loop is about to wait), once the count
 * has fallen by 1 MiB since it was last high; never while busy, since a
 * trim after a big fall takes tens of milliseconds (freed memory is reused
 * meanwhile, so RSS does not grow past its peak). Cheap to call every loop
 * iteration. */
void budget_give_back(struct budget *b, bool idle);

/* budget_limit: the limit, 0 for none. */
size_t budget_limit(const struct budget *b);

/* budget_default_limit: half of the machine's memory, or of the memory
 * limit of the cgroup mqd runs in when that is lower; 0 when neither can be
 * read. `why` says which ("half of the machine's 24.0 GiB"). */
size_t budget_default_limit(char *why, size_t why_len);

/* budget_parse_cgroup_limit: a cgroup memory limit file's text, "max\n" or
 * a number of bytes; 0 when there is none (max, or a v1 "unlimited" number
 * beyond any real machine). Pure, for tests. */
size_t budget_parse_cgroup_limit(const char *text);

#endif
