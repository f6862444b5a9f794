/*
 * conn: one client connection: its input framing, its commands, its output
 * queue, its byte counts and limits. It never touches epoll: the server reads
 * for it and frees it, and sched.h decides when it runs and is written.
 *
 * A conn that must go (a failed write, a slow consumer, out of memory) is
 * only marked and put on the close list; the server frees it after the loop
 * iteration, so no fan-out ever holds a pointer to freed memory.
 */
#ifndef MQD_CONN_H
#define MQD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/auth.h"
#include "mqd/broker.h"
#include "mqd/framer.h"
#include "mqd/log.h"
#include "mqd/net.h"
#include "mqd/outq.h"
#include "mqd/proto.h"
#include "mqd/sched.h"

#define CONN_ADDR_LEN NET_ADDR_LEN
/* what one subscription costs, about: the sub, its two array slots and its
 * share of the subscription table */
#define CONN_SUBSCRIPTION_COST 128

struct conn;
struct budget;

/* the `auth` failures after which a connection is closed */
#define CONN_MAX_AUTH_FAILURES 3

/* conn_stats: counters kept across connections, for operators. */
struct conn_stats {
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t error_replies[PROTO_REPLY_COUNT]; /* by reply; success is not counted */
    uint64_t slow_consumers;
    uint64_t evicted_for_memory; /* disconnected to make room (budget.h) */
    uint64_t idle_closes;        /* --idle-timeout */
    uint64_t timed_out;          /* the peer stopped answering: keepalive, user timeout */
};

/* conn_env: what all conns share; owned by the server. */
struct conn_env {
    struct broker *broker;
    struct budget *budget; /* NULL: no memory limit */
    struct auth *auth;     /* NULL: no --users, every client may do anything */
    const struct log *log;
    size_t max_line;
    size_t max_output;
    size_t max_topic_length;
    struct conn *conns; /* every conn not yet freed */
    size_t nconns;
    size_t queue_bytes;      /* every conn's queue slot array added up, for room bounds */
    int64_t now;             /* the loop's clock, monotonic milliseconds, for idle times */
    struct sched sched;      /* turns and flushes */
    struct conn *close_list; /* conns to free once the iteration is over */
    size_t handshakes;       /* conns with a ready_by */
    struct conn_stats stats;
    /* one warning a second of each kind, so a crowd cannot flood the log */
    struct log_limit line_warnings;
    struct log_limit output_warnings;
    struct log_limit memory_warnings;
};

/* what a delivery and a flush touch first, in the first two cache lines;
 * then the rest, the small fields packed after the pointers: a server
 * holds one of these per connection, idle ones included */
struct conn {
    struct transport *tr; /* its I/O: &tcp, or a transport of its own (TLS) */
    struct conn_env *env;
    struct broker_client *client; /* NULL once the conn left the broker */
    int fd;
    uint32_t events; /* registered with epoll; the server's business */
    bool in_flush_list;
    bool flush_deferred;     /* kept in the flush list for one more iteration */
    bool closing;            /* on the close list: deliver nothing more */
    bool draining;           /* quit or end of input: close once output is written */
    bool want_write;         /* output is waiting for the socket to drain */
    bool unpaced;            /* runs lines whatever its turn's budget */
    bool in_buffered;        /* on the server's list of transports holding input */
    bool ended;              /* its input ended: it drains once nothing waits */
    struct conn *next_flush; /* the sched's lists */
    struct outq out;
    struct framer framer;
    struct transport tcp; /* the plain transport, kept here: no allocation */
    struct conn *next_held;
    struct conn **held_pprev; /* NULL: not held */
    uint64_t held_stamp;
    char *input; /* held input (sched.h): what is left of it, input_off on */
    size_t input_off;
    size_t input_len;
    struct conn *next_close;
    struct conn *prev, *next; /* env->conns */
    struct conn *next_buffered;
    int64_t last_active; /* env->now when it last sent or was sent bytes */
    int64_t ready_by;    /* env->now by which its TLS handshake must end; 0: none */
    /* with --users: who it logged in as (a reference to the file it was in),
     * and the check under way, during which its input waits */
    struct users *users;
    const struct user *user; /* NULL: not logged in */
    struct auth_job *auth_job;
    unsigned auth_failures;
    unsigned char peer_len;               /* 0: not counted per address */
    unsigned char peer[NET_PEER_KEY_LEN]; /* its address without the port */
    char addr[CONN_ADDR_LEN];             /* "127.0.0.1:5000" or "[::1]:5000" */
};

/* conn_new: a conn for an accepted socket (which it then owns), in
 * env->conns. NULL when out of memory (the caller still owns and closes
 * `fd`). */
struct conn *conn_new(struct conn_env *env, int fd, const char *addr);

/* conn_free: leaves the broker, drops queued output, closes the socket and
 * leaves env->conns. */
void conn_free(struct conn *c);

/* conn_memory: what the conn holds for its client: itself, output queued (a
 * line shared with others counted whole), the queue's slots, an unfinished
 * input line, held input, and its subscriptions at CONN_SUBSCRIPTION_COST
 * each. */
size_t conn_memory(const struct conn *c);

enum conn_eviction {
    CONN_EVICTED_NONE,      /* no client is left to close */
    CONN_EVICTED_OTHER,     /* one was closed and its memory released */
    CONN_EVICTED_REQUESTER, /* the requester held the most: it is closed */
};

/* conn_evict_biggest: closes the client holding the most memory, whatever
 * it holds (many small clients fill a budget as well as one big one), with a
 * warning naming the budget `limit`; its unwritten delivery "one" lines are
 * lost (broker_lose_one), not handed back. Any
 * conn but `requester` has its memory released at once (it is at no point
 * of a command: room is only made between commands); the requester's goes
 * when it is freed. O(clients). */
enum conn_eviction conn_evict_biggest(struct conn_env *env, const void *requester, size_t limit);

/* conn_release_closed: gives back at once what the conns closed since the
 * loop iteration began still hold (a slow consumer's queue, a requester cut
 * for memory), but the requester's. Only between commands, as room is made.
 * O(conns closed). */
void conn_release_closed(struct conn_env *env, const void *requester);

/* conn_receive: handles bytes read from the client, in a turn of its own:
 * complete lines run as commands while the turn's budget lasts (sched.h),
 * and what is left is held for a later pass. Stops early when the conn
 * starts draining or closing. When the held bytes cannot be stored for
 * memory they run now, past the budget. */
void conn_receive(struct conn *c, const char *data, size_t len);

/* conn_resume: the held conn's next turn, on what it held. */
void conn_resume(struct conn *c);

/* conn_held: whether the conn holds input that has not run yet, or waits
 * for its password check; it is then read no more until neither. */
static inline bool conn_held(const struct conn *c) { return c->input != NULL || c->auth_job; }

/* conn_runnable: whether the conn holds input it may run now: it has
 * a turn to take (sched.h). */
static inline bool conn_runnable(const struct conn *c) { return c->input != NULL && !c->auth_job; }

/* conn_authenticated: a check's end (an auth_done_fn): the reply, the
 * login or the failure counted (the conn closed at the last one allowed),
 * and the conn's input runs again. */
void conn_authenticated(void *conn, enum auth_result result, struct users *users,
                        const struct user *user);

/* conn_end_of_input: the client will send no more: runs an unfinished last
 * line, then drains. */
void conn_end_of_input(struct conn *c);

/* conn_close: marks the conn to be freed after this iteration (idempotent).
 * `why` is logged at debug level. */
void conn_close(struct conn *c, const char *why);

/* conn_keeping_up: whether nothing is queued to the conn and it is not
 * closing (a broker_keeping_up_fn). */
bool conn_keeping_up(void *conn);

/* conn_queue_growth: what queuing `lines` more lines to the conn would
 * allocate (a broker_queue_growth_fn). */
size_t conn_queue_growth(void *conn, size_t lines);

/* conn_deliver: queues a line (a broker_deliver_fn). A conn whose queue would
 * pass max_output, or cannot grow, is closed instead. False when the line
 * will not be written: the conn is closing, or just closed for it. */
bool conn_deliver(void *conn, struct buf *line);

/* conn_flush: writes queued output. Returns the outq status; on OUTQ_ERROR
 * the conn is already closed. A draining conn whose output is all written,
 * by its transport too (which may gather it: TLS records), is closed. */
enum outq_status conn_flush(struct conn *c);

/* conn_failed: the socket failed with `err` (an errno): closes the conn,
 * counting a peer that stopped answering (ETIMEDOUT: keepalive probes or
 * unacknowledged data went unanswered). */
void conn_failed(struct conn *c, int err);

/* conn_close_idle: closes every conn that neither sent nor was sent a byte
 * for `timeout` seconds up to env->now. O(conns). */
void conn_close_idle(struct conn_env *env, unsigned timeout);

#endif
