/*
 * server: the process's one event loop. It owns the listening socket, epoll,
 * the signal descriptor, every conn and the broker; it accepts, reads, runs
 * the coalesced flush after each batch of events, and frees closed conns late.
 *
 * Loop iteration: wait for events; for each readable client, one read of up
 * to 64 KiB whose complete lines all run; then one writev flush for every
 * client that got output; then free the conns closed meanwhile.
 *
 * With a metrics endpoint, its descriptor is one more in the loop (see
 * httpd.h); a scrape renders the counters the server keeps, read in O(1).
 */
#ifndef MQD_SERVER_H
#define MQD_SERVER_H

#include <stddef.h>

#include "mqd/log.h"
#include "mqd/store.h"
#include "mqd/net.h"

struct server_config {
    const char *bind;
    unsigned port; /* 0: a free port, see server_port() */
    size_t cache_size;
    size_t max_line;
    size_t max_output;
    size_t max_clients;         /* may be lowered to fit RLIMIT_NOFILE */
    size_t max_memory;          /* bytes, 0: no limit (budget.h) */
    const char *max_memory_why; /* for the log: where the figure comes from */
    size_t max_topic_length;    /* bytes of a decoded topic name */
    size_t max_topics;
    size_t max_subscriptions;       /* per client */
    size_t max_clients_per_address; /* 0: no limit */
    unsigned tcp_keepalive;         /* seconds, 0: off (net_keepalive) */
    unsigned idle_timeout;          /* seconds, 0: off */
    const char *data_dir;           /* NULL: nothing kept (store.h) */
    enum store_fsync fsync;
    size_t compact_min;                 /* store.h: no compaction below */
    const struct net_endpoint *metrics; /* NULL: no metrics endpoint */
    bool tls;                           /* a TLS listener on tls_port (tls.h) */
    unsigned tls_port;                  /* 0: a free port */
    const char *tls_cert, *tls_key, *tls_ca;
    bool tls_verify_clients;
    unsigned tls_handshake_timeout;       /* seconds */
    bool no_plain;                        /* no plain listener */
    const char *users;                    /* --users FILE (auth.h); NULL: no logins */
    const struct net_endpoint *websocket; /* NULL: no WebSocket listener (ws.h) */
    bool websocket_tls;                   /* wss:// with the TLS files */
    const char *websocket_origins;        /* NULL: the same origin only */
    struct log *log;                      /* SIGHUP reopens its file, if it has one */
};

struct server;

/* server_new: binds, listens and prepares the loop. NULL on failure, with a
 * message for the user in `err` (e.g. "cannot listen on 127.0.0.1:7000:
 * Address already in use", or "cannot serve metrics on ..."). */
struct server *server_new(const struct server_config *config, char *err, size_t err_len);

/* server_run: serves until SIGTERM or SIGINT. 0, or -1 if the loop failed.
 * SIGHUP reopens the log file (see log_reopen). */
int server_run(struct server *s);

/* server_port: the port actually listened on. */
unsigned server_port(const struct server *s);

/* server_free: closes every client and frees everything. NULL is a no-op. */
void server_free(struct server *s);

#endif
