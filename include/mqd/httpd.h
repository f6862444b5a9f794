/*
 * httpd: a small HTTP/1.1 responder for one read-only resource (the metrics),
 * run by the server's loop without ever blocking it.
 *
 * It owns its listener, its connections and an epoll set of its own; the
 * server watches that set's descriptor, and when it is readable calls
 * httpd_run, which handles what is ready and returns. A scrape so costs the
 * loop one render and a few syscalls, and a slow HTTP client costs it nothing.
 *
 * Each connection gets one response, then "Connection: close". A connection
 * has HTTPD_HEAD_TIMEOUT_MS from its accept to send its request head, then
 * HTTPD_TIMEOUT_MS to read the response; then it is cut. After a refusal
 * (4xx) it reads at most HTTP_MAX_HEAD more bytes, enough for the response
 * not to be lost to a reset, and closes. At most HTTPD_MAX_CONNS are open at
 * a time, more waiting in the listen backlog until one closes, and at most
 * HTTPD_MAX_PER_ADDRESS from one address: one more is closed at once. So
 * slow clients from one address cannot keep the others' scrapes out.
 */
#ifndef MQD_HTTPD_H
#define MQD_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "mqd/log.h"
#include "mqd/net.h"

#define HTTPD_MAX_CONNS 16
#define HTTPD_MAX_PER_ADDRESS 4
#define HTTPD_HEAD_TIMEOUT_MS 2000
#define HTTPD_TIMEOUT_MS 5000
/* descriptors it may hold: its connections, listener, epoll set and timer */
#define HTTPD_MAX_FDS (HTTPD_MAX_CONNS + 3)

/* httpd_render_fn: the resource's body, snprintf-like (see metrics_render). */
typedef size_t (*httpd_render_fn)(void *ctx, char *out, size_t cap);

struct httpd_config {
    const struct net_endpoint *at;
    const char *path; /* the one resource, e.g. "/metrics" */
    const char *content_type;
    httpd_render_fn render;
    void *ctx;
    const struct log *log;
    /* the longest body `render` can make: each connection's response
     * buffer is allocated once, at start, so a scrape never allocates and
     * is answered whatever the memory budget holds */
    size_t max_body;
};

struct httpd;

/* httpd_new: listens and prepares the epoll set. NULL on failure, with `err`
 * saying where and why ("127.0.0.1:9100: Address already in use"). */
struct httpd *httpd_new(const struct httpd_config *config, char *err, size_t err_len);

/* httpd_fd: the descriptor to watch for EPOLLIN: readable when there is work. */
int httpd_fd(const struct httpd *h);

/* httpd_address: where it listens, "127.0.0.1:9100" or "[::1]:9100". */
const char *httpd_address(const struct httpd *h);

/* httpd_run: accepts, reads, answers and cuts whatever is ready; never waits. */
void httpd_run(struct httpd *h);

/* httpd_free: closes every connection and the listener. NULL is a no-op. */
void httpd_free(struct httpd *h);

#endif
