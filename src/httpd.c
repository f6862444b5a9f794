#include "mqd/httpd.h"

#include "mqd/alloc.h"
#include "mqd/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_BACKLOG 64
#define NS_PER_MS 1000000ULL
/* how long to wait before accepting again after running out of descriptors */
#define RETRY_ACCEPT_MS 1000
/* room for a response head: the status line and a handful of headers */
#define HEAD_MAX 1024

enum phase {
    PHASE_FREE,      /* the slot holds no connection */
    PHASE_READING,   /* the request head is arriving */
    PHASE_WRITING,   /* the response is going out */
    PHASE_LINGERING, /* answered, sending side shut: read and drop until the client closes */
};

struct httpd_conn {
    int fd;
    enum phase phase;
    uint64_t deadline; /* CLOCK_MONOTONIC, ns: cut then, whatever the phase */
    char *out;         /* the response, in a buffer kept for the slot's life */
    size_t out_cap;
    size_t out_len;
    size_t out_sent;
    size_t in_len;
    size_t linger_left; /* bytes it may still read after a refusal; 0: no cap */
    bool refused;       /* answered 4xx */
    char addr[NET_ADDR_LEN];
    unsigned char peer[NET_PEER_KEY_LEN];
    size_t peer_len;
    char in[HTTP_MAX_HEAD];
};

struct httpd {
    struct httpd_config config;
    int epoll_fd;
    int listen_fd;
    int timer_fd; /* armed at the next deadline or accept retry */
    char addr[NET_ADDR_LEN];
    bool accept_paused;
    uint64_t retry_accept_at; /* CLOCK_MONOTONIC, ns; 0: when a connection closes */
    struct log_limit fd_warnings;
    struct log_limit peer_warnings;
    struct httpd_conn conns[HTTPD_MAX_CONNS];
};

int httpd_fd(const struct httpd *h) { return h->epoll_fd; }

const char *httpd_address(const struct httpd *h) { return h->addr; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int watch(struct httpd *h, int op, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(h->epoll_fd, op, fd, &ev);
}

struct httpd *httpd_new(const struct httpd_config *config, char *err, size_t err_len)
{
    struct httpd *h = mqd_calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    h->config = *config;
    h->epoll_fd = h->listen_fd = h->timer_fd = -1;
    struct net_listener l;
    if (net_listen(&l, config->at->host, config->at->port, LISTEN_BACKLOG, err, err_len) < 0) {
        httpd_free(h);
        return NULL;
    }
    h->listen_fd = l.fd;
    snprintf(h->addr, sizeof(h->addr), "%s", l.addr);
    for (size_t i = 0; i < HTTPD_MAX_CONNS; i++) {
        h->conns[i].out_cap = HEAD_MAX + config->max_body + 1;
        if (!(h->conns[i].out = mqd_malloc(h->conns[i].out_cap))) {
            snprintf(err, err_len, "%s: out of memory", h->addr);
            httpd_free(h);
            return NULL;
        }
    }
    h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    h->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (h->epoll_fd < 0 || h->timer_fd < 0 ||
        watch(h, EPOLL_CTL_ADD, h->listen_fd, EPOLLIN, &h->listen_fd) < 0 ||
        watch(h, EPOLL_CTL_ADD, h->timer_fd, EPOLLIN, &h->timer_fd) < 0) {
        snprintf(err, err_len, "%s: %s", h->addr, strerror(errno));
        httpd_free(h);
        return NULL;
    }
    return h;
}

/* arm_timer: the timer fires at the earliest deadline or accept retry. */
static void arm_timer(struct httpd *h)
{
    uint64_t next = h->accept_paused ? h->retry_accept_at : 0;
    for (size_t i = 0; i < HTTPD_MAX_CONNS; i++) {
        const struct httpd_conn *c = &h->conns[i];
        if (c->phase != PHASE_FREE && (next == 0 || c->deadline < next))
            next = c->deadline;
    }
    struct itimerspec at = {.it_value = {.tv_sec = (time_t)(next / 1000000000ULL),
                                         .tv_nsec = (long)(next % 1000000000ULL)}};
    if (timerfd_settime(h->timer_fd, TFD_TIMER_ABSTIME, &at, NULL) < 0)
        log_error(h->config.log, "metrics: cannot set the timer: %s", strerror(errno));
}

/* pause_accepting: leaves new connections in the backlog, until a connection
 * closes or, when `retry_at` is not 0, until then. */
static void pause_accepting(struct httpd *h, uint64_t retry_at)
{
    if (watch(h, EPOLL_CTL_MOD, h->listen_fd, 0, &h->listen_fd) < 0)
        return; /* still watched: the next accept tries again */
    h->accept_paused = true;
    h->retry_accept_at = retry_at;
    arm_timer(h);
}

static void resume_accepting(struct httpd *h)
{
    if (h->accept_paused && watch(h, EPOLL_CTL_MOD, h->listen_fd, EPOLLIN, &h->listen_fd) == 0) {
        h->accept_paused = false;
        h->retry_accept_at = 0;
    }
}

static void close_conn(struct httpd *h, struct httpd_conn *c, const char *why)
{
    log_debug(h->config.log, "metrics client %s closed: %s", c->addr, why);
    close(c->fd);
    c->phase = PHASE_FREE;
    resume_accepting(h);
    arm_timer(h);
}

static void set_events(struct httpd *h, struct httpd_conn *c, uint32_t events)
{
    if (watch(h, EPOLL_CTL_MOD, c->fd, events, c) < 0)
        close_conn(h, c, strerror(errno));
}

/* from_peer: the conns open from this address */
static size_t from_peer(const struct httpd *h, const unsigned char *peer, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < HTTPD_MAX_CONNS; i++) {
        const struct httpd_conn *c = &h->conns[i];
        n += c->phase != PHASE_FREE && c->peer_len == len && memcmp(c->peer, peer, len) == 0;
    }
    return n;
}

static void open_conn(struct httpd *h, struct httpd_conn *c, int fd, const struct sockaddr *sa)
{
    net_format_addr(sa, c->addr, sizeof(c->addr));
    c->peer_len = net_peer_key(sa, c->peer);
    if (from_peer(h, c->peer, c->peer_len) >= HTTPD_MAX_PER_ADDRESS) {
        uint64_t held;
        if (log_limit_allow(&h->peer_warnings, &held))
            log_warn(h->config.log,
                     "metrics client %s refused: %d connections from its address already "
                     "(%llu similar not logged)",
                     c->addr, HTTPD_MAX_PER_ADDRESS, (unsigned long long)held);
        close(fd);
        return;
    }
    if (watch(h, EPOLL_CTL_ADD, fd, EPOLLIN, c) < 0) {
        log_warn(h->config.log, "metrics client %s refused: %s", c->addr, strerror(errno));
        close(fd);
        return;
    }
    c->fd = fd;
    c->phase = PHASE_READING;
    c->deadline = now_ns() + HTTPD_HEAD_TIMEOUT_MS * NS_PER_MS;
    c->in_len = c->out_len = c->out_sent = c->linger_left = 0;
    c->refused = false;
    log_debug(h->config.log, "metrics client %s connected", c->addr);
    arm_timer(h);
}

static struct httpd_conn *free_conn(struct httpd *h)
{
    for (size_t i = 0; i < HTTPD_MAX_CONNS; i++) {
        if (h->conns[i].phase == PHASE_FREE)
            return &h->conns[i];
    }
    return NULL;
}

static void out_of_descriptors(struct httpd *h)
{
    uint64_t held;
    if (log_limit_allow(&h->fd_warnings, &held))
        log_warn(h->config.log,
                 "metrics: out of file descriptors, not accepting for now (%llu similar not "
                 "logged)",
                 (unsigned long long)held);
    pause_accepting(h, now_ns() + RETRY_ACCEPT_MS * NS_PER_MS);
}

/* accept_clients: fills the free slots from the backlog; once none is free,
 * the rest wait there. */
static void accept_clients(struct httpd *h)
{
    for (;;) {
        struct httpd_conn *c = free_conn(h);
        if (!c) {
            pause_accepting(h, 0);
            return;
        }
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(h->listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            open_conn(h, c, fd, (struct sockaddr *)&sa);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            out_of_descriptors(h);
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_error(h->config.log, "metrics: accept failed: %s", strerror(errno));
        return;
    }
}

/* build_response: the whole response in c->out; the body left out for HEAD. */
static int build_response(struct httpd *h, struct httpd_conn *c, unsigned status, bool head_only)
{
    const char *reason = http_reason(status);
    struct http_response r = {
        .status = status,
        .content_type = status == 200 ? h->config.content_type : "text/plain; charset=utf-8",
        .extra_headers = status == 405 ? "Allow: GET, HEAD\r\n" : "",
        .date = time(NULL),
    };
    r.content_length =
        status == 200 ? h->config.render(h->config.ctx, NULL, 0) : strlen(reason) + 1;
    size_t head_len = http_format_head(&r, NULL, 0);
    if (head_len + r.content_length + 1 > c->out_cap)
        return -1; /* over max_body: the caller's promise was wrong */
    http_format_head(&r, c->out, head_len + 1);
    if (status == 200)
        h->config.render(h->config.ctx, c->out + head_len, r.content_length + 1);
    else
        snprintf(c->out + head_len, r.content_length + 1, "%s\n", reason);
    c->out_len = head_len + (head_only ? 0 : r.content_length);
    c->out_sent = 0;
    return 0;
}

/* linger: after the response, shut the sending side and read until the
 * client closes: closing with its unread bytes pending would reset the
 * connection and could destroy the response before the client reads it. */
static void linger(struct httpd *h, struct httpd_conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->phase = PHASE_LINGERING;
    /* a refused client that goes on sending is not read for long */
    c->linger_left = c->refused ? HTTP_MAX_HEAD : 0;
    set_events(h, c, EPOLLIN);
}

static void write_response(struct httpd *h, struct httpd_conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n >= 0) {
            c->out_sent += (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            set_events(h, c, EPOLLOUT);
            return;
        } else if (errno != EINTR) {
            close_conn(h, c, strerror(errno));
            return;
        }
    }
    linger(h, c);
}

static void respond(struct httpd *h, struct httpd_conn *c, enum http_parse parsed,
                    const struct http_request *req)
{
    unsigned status = http_status_of(parsed, req, h->config.path);
    bool head_only = parsed == HTTP_PARSE_DONE && req->method == HTTP_HEAD;
    log_debug(h->config.log, "metrics client %s answered %u", c->addr, status);
    c->refused = status >= 400 && status < 500;
    c->deadline = now_ns() + HTTPD_TIMEOUT_MS * NS_PER_MS; /* the head is in */
    if (build_response(h, c, status, head_only) < 0) {
        close_conn(h, c, "response over its buffer");
        return;
    }
    c->phase = PHASE_WRITING;
    write_response(h, c);
}

/* read_some: one read into the request buffer (or, lingering, over it). The
 * byte count, or 0 when the conn was closed or nothing came. */
static size_t read_some(struct httpd *h, struct httpd_conn *c)
{
    size_t room = c->phase == PHASE_READING ? sizeof(c->in) - c->in_len : sizeof(c->in);
    char *to = c->phase == PHASE_READING ? c->in + c->in_len : c->in;
    ssize_t n = read(c->fd, to, room);
    if (n > 0)
        return (size_t)n;
    if (n == 0)
        close_conn(h, c, c->phase == PHASE_READING ? "request not finished" : "done");
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        close_conn(h, c, strerror(errno));
    return 0;
}

static void read_request(struct httpd *h, struct httpd_conn *c)
{
    size_t n = read_some(h, c);
    if (n == 0)
        return;
    c->in_len += n;
    struct http_request req;
    /* the buffer holds HTTP_MAX_HEAD bytes, and a head that fills it without
     * ending is too large: so a read always has room */
    enum http_parse parsed = http_parse_request(c->in, c->in_len, sizeof(c->in), &req);
    if (parsed != HTTP_PARSE_MORE)
        respond(h, c, parsed, &req);
}

/* drain: a read while lingering; after a refusal, at most linger_left in all */
static void drain(struct httpd *h, struct httpd_conn *c)
{
    size_t n = read_some(h, c);
    if (n == 0 || !c->refused)
        return;
    if (n >= c->linger_left)
        close_conn(h, c, "refused, and no more is read");
    else
        c->linger_left -= n;
}

/* handle_conn: does what the conn's phase calls for. The event's flags are
 * not trusted: the syscall says what is really the matter, and a slot reused
 * within one batch of events cannot be misled by its predecessor's. */
static void handle_conn(struct httpd *h, struct httpd_conn *c)
{
    switch (c->phase) {
    case PHASE_FREE: break;
    case PHASE_READING: read_request(h, c); break;
    case PHASE_WRITING: write_response(h, c); break;
    case PHASE_LINGERING: drain(h, c); break;
    }
}

/* expire: cuts the conns past their deadline and retries accepting when due. */
static void expire(struct httpd *h)
{
    uint64_t fired;
    if (read(h->timer_fd, &fired, sizeof(fired)) < 0 && errno != EAGAIN)
        log_error(h->config.log, "metrics: cannot read the timer: %s", strerror(errno));
    uint64_t now = now_ns();
    for (size_t i = 0; i < HTTPD_MAX_CONNS; i++) {
        struct httpd_conn *c = &h->conns[i];
        if (c->phase != PHASE_FREE && c->deadline <= now)
            close_conn(h, c, "timed out");
    }
    if (h->accept_paused && h->retry_accept_at && h->retry_accept_at <= now)
        resume_accepting(h);
    arm_timer(h);
}

void httpd_run(struct httpd *h)
{
    struct epoll_event events[HTTPD_MAX_CONNS + 2];
    int n = epoll_wait(h->epoll_fd, events, HTTPD_MAX_CONNS + 2, 0);
    if (n < 0 && errno != EINTR)
        log_error(h->config.log, "metrics: epoll_wait failed: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        void *ptr = events[i].data.ptr;
        if (ptr == &h->listen_fd)
            accept_clients(h);
        else if (ptr == &h->timer_fd)
            expire(h);
        else
            handle_conn(h, ptr);
    }
}

void httpd_free(struct httpd *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < HTTPD_MAX_CONNS; i++) {
        if (h->conns[i].phase != PHASE_FREE)
            close(h->conns[i].fd);
        mqd_free(h->conns[i].out);
    }
    int fds[] = {h->listen_fd, h->timer_fd, h->epoll_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    mqd_free(h);
}
