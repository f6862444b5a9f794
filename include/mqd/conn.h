/*
 * conn: one client connection: its input framing, its commands, its output
 * queue, its byte counts and limits. It never touches epoll: the server reads
 * for it, flushes it and frees it, guided by the lists and flags below.
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

#include "mqd/broker.h"
#include "mqd/framer.h"
#include "mqd/log.h"
#include "mqd/outq.h"
#include "mqd/proto.h"

#define CONN_ADDR_LEN 64

struct conn;

/* conn_stats: counters kept across connections, for operators. */
struct conn_stats {
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t error_replies[PROTO_REPLY_COUNT]; /* by reply; success is not counted */
    uint64_t slow_consumers;
};

/* conn_env: what all conns share; owned by the server. */
struct conn_env {
    struct broker *broker;
    const struct log *log;
    size_t max_line;
    size_t max_output;
    /* conns with output queued since the last flush, in the order they got
     * it, so a fan-out's receivers are written before the sender's reply;
     * except that a conn whose small queue was held back one iteration
     * (server.c, flush_clients) keeps its earlier place or is written after */
    struct conn *flush_list;
    struct conn **flush_tail;
    struct conn *close_list; /* conns to free once the iteration is over */
    struct conn_stats stats;
    /* one warning a second of each kind, so a crowd cannot flood the log */
    struct log_limit line_warnings;
    struct log_limit output_warnings;
};

struct conn {
    int fd;
    struct conn_env *env;
    struct broker_client *client; /* NULL once the conn left the broker */
    struct framer framer;
    struct outq out;
    struct conn *next_flush;
    struct conn *next_close;
    struct conn *prev, *next; /* every live conn, for shutdown */
    bool in_flush_list;
    bool flush_deferred;      /* kept in the flush list for one more iteration */
    bool closing;             /* on the close list: deliver nothing more */
    bool draining;            /* quit or end of input: close once output is written */
    bool want_write;          /* output is waiting for the socket to drain */
    uint32_t events;          /* registered with epoll; the server's business */
    char addr[CONN_ADDR_LEN]; /* "127.0.0.1:5000" or "[::1]:5000" */
};

/* conn_new: a conn for an accepted socket (which it then owns). NULL when
 * out of memory (the caller still owns and closes `fd`). */
struct conn *conn_new(struct conn_env *env, int fd, const char *addr);

/* conn_free: leaves the broker, drops queued output, closes the socket. */
void conn_free(struct conn *c);

/* conn_receive: handles bytes read from the client: every complete line runs
 * as a command. Stops early when the conn starts draining or closing. */
void conn_receive(struct conn *c, const char *data, size_t len);

/* conn_end_of_input: the client will send no more: runs an unfinished last
 * line, then drains. */
void conn_end_of_input(struct conn *c);

/* conn_close: marks the conn to be freed after this iteration (idempotent).
 * `why` is logged at debug level. */
void conn_close(struct conn *c, const char *why);

/* conn_deliver: queues a line (a broker_deliver_fn). A conn whose queue would
 * pass max_output, or cannot grow, is closed instead. False when the line
 * will not be written: the conn is closing, or just closed for it. */
bool conn_deliver(void *conn, struct buf *line);

/* conn_flush: writes queued output. Returns the outq status; on OUTQ_ERROR
 * the conn is already closed. A draining conn whose output is all written is
 * closed. */
enum outq_status conn_flush(struct conn *c);

#endif
