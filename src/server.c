#include "mqd/server.h"

#include "mqd/alloc.h"
#include "mqd/auth.h"
#include "mqd/broker.h"
#include "mqd/budget.h"
#include "mqd/conn.h"
#include "mqd/httpd.h"
#include "mqd/metrics.h"
#include "mqd/net.h"
#include "mqd/peers.h"
#include "mqd/proto.h"
#include "mqd/sched.h"
#include "mqd/tls.h"
#include "mqd/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
/* descriptors kept for the listener, epoll, signals, the spare and logs */
#define RESERVED_FDS 32
#define LISTEN_BACKLOG 4096
/* subscriptions departing clients leave per loop pass: about 2 ms here,
 * each a few cache misses in two large tables */
#define DEPART_PER_PASS 4096
/* delivery "one" lines of closed clients re-routed per loop pass */
#define REROUTE_PER_PASS 4096
/* while the store cannot write, the loop tries again this often (ms) */
#define STORE_RETRY_MS 100
/* what a new connection takes: the conn, its broker client, the allocator's
 * share of both */
#define CONN_ROOM (sizeof(struct conn) + 256)

/* listener: a listening socket, plain, TLS or WebSocket (over either);
 * epoll's pointer for it */
struct listener {
    int fd; /* -1: none */
    bool tls;
    bool websocket;
    bool paused; /* out of descriptors: not accepting until a client leaves */
    unsigned port;
    char addr[NET_ADDR_LEN];
};

enum { PLAIN, TLS, WEBSOCKET, LISTENERS };

struct server {
    struct server_config config;
    struct conn_env env;
    int epoll_fd;
    struct listener listeners[LISTENERS];
    struct ws_config ws;    /* the WebSocket listener's */
    struct tls_server *tls; /* NULL: no TLS listener */
    struct conn *buffered;  /* conns whose transport holds decoded input */
    int signal_fd;
    int spare_fd;          /* closed to accept-and-drop when out of descriptors */
    int tick_fd;           /* a timerfd, once a second, for --idle-timeout; -1: none */
    struct peers *peers;   /* connections per address, for --max-clients-per-address */
    struct httpd *metrics; /* NULL: no metrics endpoint */
    struct store *store;   /* NULL: no --data-dir */
    time_t start_time;
    size_t max_clients;
    bool stopping;
    bool departed; /* no client is still leaving its topics */
    bool rerouted; /* no line of a closed client is waiting to be re-routed */
    struct log_limit fd_warnings;
    struct log_limit handshake_warnings;
    struct log_limit reject_warnings;
    uint64_t connections_total;
    uint64_t rejected_max_clients;
    uint64_t rejected_no_fd;
    uint64_t rejected_no_memory;
    uint64_t rejected_per_address;
    struct metrics_histogram loop_passes;
    char read_buf[SCHED_READ_SIZE];
};

unsigned server_port(const struct server *s) { return s->listeners[PLAIN].port; }

static int watch(struct server *s, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

/* fit_max_clients: raises the descriptor limit as far as allowed, and lowers
 * max_clients (with a warning) when even that is not enough. */
static void fit_max_clients(struct server *s)
{
    struct rlimit rl;
    size_t reserved = RESERVED_FDS + (s->config.metrics ? HTTPD_MAX_FDS : 0);
    size_t want = s->config.max_clients + reserved;
    s->max_clients = s->config.max_clients;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rlim_t raised = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    struct rlimit wanted = {raised, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &wanted) == 0)
        rl.rlim_cur = raised;
    if (rl.rlim_cur >= want)
        return;
    s->max_clients = rl.rlim_cur > reserved + 1 ? rl.rlim_cur - reserved : 1;
    log_warn(s->config.log, "--max-clients lowered from %zu to %zu to fit RLIMIT_NOFILE (%llu)",
             s->config.max_clients, s->max_clients, (unsigned long long)rl.rlim_cur);
}

static int open_listener(struct listener *to, const char *host, unsigned port, char *err,
                         size_t err_len)
{
    struct net_listener l;
    char why[NET_ADDR_LEN + 128];
    if (net_listen(&l, host, port, LISTEN_BACKLOG, why, sizeof(why)) < 0) {
        snprintf(err, err_len, "cannot listen on %s", why);
        return -1;
    }
    to->fd = l.fd;
    to->port = l.port;
    snprintf(to->addr, sizeof(to->addr), "%s", l.addr);
    return 0;
}

/* open_listeners: the plain one unless --no-plain, the TLS one with its
 * context when asked, the WebSocket one (over TLS with --websocket-tls) */
static int open_listeners(struct server *s, char *err, size_t err_len)
{
    const struct server_config *c = &s->config;
    s->listeners[TLS].tls = true;
    s->listeners[WEBSOCKET].websocket = true;
    s->listeners[WEBSOCKET].tls = c->websocket_tls;
    s->ws.origins = c->websocket_origins;
    s->ws.log = c->log;
    if (!c->no_plain && open_listener(&s->listeners[PLAIN], c->bind, c->port, err, err_len) < 0)
        return -1;
    if (c->tls || c->websocket_tls) {
        struct tls_config tc = {.cert = c->tls_cert,
                                .key = c->tls_key,
                                .ca = c->tls_ca,
                                .verify_clients = c->tls_verify_clients,
                                .log = c->log};
        if (!(s->tls = tls_server_new(&tc, err, err_len)))
            return -1;
    }
    if (c->tls && open_listener(&s->listeners[TLS], c->bind, c->tls_port, err, err_len) < 0)
        return -1;
    if (c->websocket && open_listener(&s->listeners[WEBSOCKET], c->websocket->host,
                                      c->websocket->port, err, err_len) < 0)
        return -1;
    return 0;
}

/* open_signals: SIGTERM, SIGINT and SIGHUP arrive through a descriptor in
 * the loop, so no handler runs in the middle of the loop's work. */
static int open_signals(struct server *s)
{
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    struct sigaction deflt = {.sa_handler = SIG_DFL};
    /* the store waits for its compaction child: SIGCHLD must not be
     * ignored, even if whoever started mqd ignored it */
    if (sigaction(SIGCHLD, &deflt, NULL) < 0)
        return -1;
    sigemptyset(&ignore.sa_mask);
    /* a write past RLIMIT_FSIZE fails with EFBIG, which the store handles,
     * instead of killing the process */
    if (sigaction(SIGPIPE, &ignore, NULL) < 0 || sigaction(SIGXFSZ, &ignore, NULL) < 0)
        return -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    s->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return s->signal_fd < 0 ? -1 : 0;
}

/* the retired topics' indexes may take this share of --max-memory at most */
#define RETIRED_SHARE 16
#define RETIRED_ENTRY_BYTES 43 /* retired.h: 16-byte slots, at least 3/8 used */

static size_t max_retired(const struct server_config *c)
{
    size_t n = c->max_topics;
    if (c->max_memory && c->max_memory / RETIRED_SHARE / RETIRED_ENTRY_BYTES < n)
        n = c->max_memory / RETIRED_SHARE / RETIRED_ENTRY_BYTES;
    return n;
}

static int make_broker(struct server *s)
{
    struct broker_config bc = {.cache_size = s->config.cache_size,
                               .max_topics = s->config.max_topics,
                               .max_subscriptions = s->config.max_subscriptions,
                               .max_retired = max_retired(&s->config),
                               .deliver = conn_deliver,
                               .queue_growth = conn_queue_growth,
                               .keeping_up = conn_keeping_up};
    if (getrandom(bc.hash_seed, sizeof(bc.hash_seed), 0) != (ssize_t)sizeof(bc.hash_seed) ||
        getrandom(&bc.random_seed, sizeof(bc.random_seed), 0) != (ssize_t)sizeof(bc.random_seed))
        return -1;
    s->env.broker = broker_new(&bc);
    return s->env.broker ? 0 : -1;
}

/* make_budget: --max-memory over the broker and the clients; the ceiling
 * leaves room for the one line a command may take beyond its estimate */
static int make_budget(struct server *s)
{
    struct budget_config bc = {.limit = s->config.max_memory,
                               .slack = s->config.max_line + BROKER_INDEX_ROOM,
                               .broker = s->env.broker,
                               .clients = &s->env,
                               .log = s->config.log};
    s->env.budget = budget_new(&bc);
    if (!s->env.budget)
        return -1;
    /* a state read back from --data-dir may hold more than the limit: the
     * oldest cached messages go, as they would have in memory (and the
     * store keeps that they went) */
    (void)budget_make_room_from_cache(s->env.budget, 0);
    return 0;
}

/* collect_store_figures: the data directory's part of a scrape; its fsync
 * histogram is copied, the sync thread adding to it meanwhile */
static void collect_store_figures(const struct server *s, struct store_stats *st,
                                  struct metrics_figures *f)
{
    store_get_stats(s->store, st);
    f->persist_records = st->records;
    f->persist_bytes = st->bytes;
    f->persist_errors = st->errors;
    f->persist_log_bytes = st->log_bytes;
    f->persist_snapshot_bytes = st->snapshot_bytes;
    f->persist_compactions = st->compactions;
    f->persist_compactions_failed = st->compactions_failed;
    f->persist_last_compaction = (uint64_t)st->last_compaction;
    f->persist_last_compaction_ns = st->last_compaction_ns;
    f->fsyncs = &st->fsyncs;
}

/* collect_figures: what a scrape shows, from the counters the loop keeps;
 * `st` holds the store's copy that f->fsyncs points into. */
static void collect_figures(const struct server *s, struct store_stats *st,
                            struct metrics_figures *f)
{
    struct broker_stats b;
    broker_get_stats(s->env.broker, &b);
    const struct conn_stats *c = &s->env.stats;
    *f = (struct metrics_figures){
        .connections = s->env.nconns,
        .connections_accepted = s->connections_total,
        .rejected_max_clients = s->rejected_max_clients,
        .rejected_fd_exhausted = s->rejected_no_fd,
        .rejected_out_of_memory = s->rejected_no_memory,
        .rejected_per_address = s->rejected_per_address,
        .idle_closes = c->idle_closes,
        .timed_out = c->timed_out,
        .passes_over_budget = s->env.sched.passes_over_budget,
        .topics = b.topics,
        .retired_topics = b.retired_topics,
        .subscriptions = b.subscriptions,
        .messages_received = b.messages_received,
        .messages_delivered = b.messages_delivered,
        .bytes_received = c->bytes_in,
        .bytes_sent = c->bytes_out,
        .cached_messages = b.cached_messages,
        .cached_bytes = b.cached_bytes,
        .slow_consumer_disconnects = c->slow_consumers,
        .memory_used = mqd_allocated(),
        .memory_limit = s->config.max_memory,
        .cache_evictions = b.cache_evictions,
        .cache_evicted_one = b.cache_evicted_one,
        .one_rerouted = b.one_rerouted,
        .one_recached = b.one_recached,
        .one_lost = b.one_lost,
        .clients_evicted = c->evicted_for_memory,
        .errors_utf8 = c->error_replies[PROTO_REPLY_BAD_UTF8],
        .errors_json = c->error_replies[PROTO_REPLY_BAD_JSON],
        .errors_malformed = c->error_replies[PROTO_REPLY_MALFORMED],
        .errors_line_too_long = c->error_replies[PROTO_REPLY_LINE_TOO_LONG],
        .errors_out_of_memory = c->error_replies[PROTO_REPLY_NO_MEMORY],
        .errors_topic_too_long = c->error_replies[PROTO_REPLY_TOPIC_TOO_LONG],
        .errors_too_many_topics = c->error_replies[PROTO_REPLY_TOO_MANY_TOPICS],
        .errors_too_many_subscriptions = c->error_replies[PROTO_REPLY_TOO_MANY_SUBSCRIPTIONS],
        .errors_not_persisted = c->error_replies[PROTO_REPLY_NOT_PERSISTED],
        .errors_auth_required = c->error_replies[PROTO_REPLY_AUTH_REQUIRED],
        .errors_auth_failed = c->error_replies[PROTO_REPLY_AUTH_FAILED],
        .errors_permission_denied = c->error_replies[PROTO_REPLY_PERMISSION_DENIED],
        .errors_auth_not_enabled = c->error_replies[PROTO_REPLY_AUTH_NOT_ENABLED],
        .start_time = s->start_time,
        .version = MQD_VERSION,
        .loop_passes = &s->loop_passes,
    };
    if (s->store)
        collect_store_figures(s, st, f);
    if (s->env.auth) {
        struct auth_stats a;
        auth_get_stats(s->env.auth, &a);
        f->auth_accepted = a.accepted;
        f->auth_rejected = a.rejected;
        f->auth_limited = a.limited;
        f->auth_waiting = a.waiting;
    }
}

static size_t render_metrics(void *ctx, char *out, size_t cap)
{
    struct metrics_figures f;
    struct store_stats st;
    collect_figures(ctx, &st, &f);
    return metrics_render(&f, out, cap);
}

static int open_metrics(struct server *s, char *err, size_t err_len)
{
    if (!s->config.metrics)
        return 0;
    struct httpd_config hc = {.at = s->config.metrics,
                              .path = "/metrics",
                              .content_type = METRICS_CONTENT_TYPE,
                              .render = render_metrics,
                              .ctx = s,
                              .log = s->config.log,
                              .max_body = metrics_max_size(MQD_VERSION)};
    char why[NET_ADDR_LEN + 128];
    s->metrics = httpd_new(&hc, why, sizeof(why));
    if (!s->metrics) {
        snprintf(err, err_len, "cannot serve metrics on %s", why);
        return -1;
    }
    return 0;
}

static int restore_change(void *broker, const struct broker_change *c)
{
    return broker_restore(broker, c) == BROKER_OK ? 0 : -1;
}

/* walk_broker: the whole kept state, for a compaction's snapshot */
static void walk_broker(void *broker, broker_change_fn fn, void *ctx)
{
    broker_each_kept(broker, fn, ctx);
}

/* open_store: --data-dir read back into the broker, which then tells it
 * every change and asks it for room before each send */
static int open_store(struct server *s, char *err, size_t err_len)
{
    if (!s->config.data_dir)
        return 0;
    struct store_config sc = {.dir = s->config.data_dir,
                              .fsync = s->config.fsync,
                              .compact_min = s->config.compact_min,
                              .log = s->config.log,
                              .walk = walk_broker,
                              .walk_state = s->env.broker};
    s->store = store_open(&sc, err, err_len);
    if (!s->store)
        return -1;
    broker_tell_changes(s->env.broker, store_tell, store_room, s->store);
    return store_load(s->store, restore_change, s->env.broker, err, err_len);
}

static int make_peers(struct server *s)
{
    uint8_t seed[SIPHASH_KEY_LEN];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        return -1;
    s->peers = peers_new(seed);
    return s->peers ? 0 : -1;
}

/* open_auth: with --users, the users file and the thread that checks
 * passwords (auth.h), watched by the loop */
static int open_auth(struct server *s, char *err, size_t err_len)
{
    if (!s->config.users)
        return 0;
    uint8_t seed[SIPHASH_KEY_LEN];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        snprintf(err, err_len, "cannot start: %s", strerror(errno));
        return -1;
    }
    s->env.auth = auth_new(s->config.users, s->config.log, seed, err, err_len);
    if (!s->env.auth)
        return -1;
    if (watch(s, auth_fd(s->env.auth), EPOLLIN, &s->env.auth) < 0) {
        snprintf(err, err_len, "cannot start: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* open_tick: a timerfd firing once a second, for --idle-timeout, the
 * store (its everysec syncs, its compactions) and handshake deadlines */
static int open_tick(struct server *s)
{
    if (!s->config.idle_timeout && !s->store && !s->tls && !s->config.websocket)
        return 0;
    s->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec every_second = {{1, 0}, {1, 0}};
    if (s->tick_fd < 0 || timerfd_settime(s->tick_fd, 0, &every_second, NULL) < 0)
        return -1;
    return watch(s, s->tick_fd, EPOLLIN, &s->tick_fd);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* read_clock: the loop's clock, read once per iteration */
static void read_clock(struct server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    s->env.now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* cut_slow_handshakes: TLS and WebSocket clients past
 * --tls-handshake-timeout with their handshake unfinished are closed: a
 * client that connects and says nothing, or trickles a ClientHello or an
 * HTTP request, holds a slot only that long */
static void cut_slow_handshakes(struct server *s)
{
    for (struct conn *c = s->env.conns; c; c = c->next) {
        if (!c->ready_by || c->closing || s->env.now < c->ready_by)
            continue;
        uint64_t held;
        if (log_limit_allow(&s->handshake_warnings, &held))
            log_warn(s->config.log,
                     "client %s: %s handshake not finished in %u s: cut (%llu similar not "
                     "logged)",
                     c->addr, c->tr->ops->name, s->config.tls_handshake_timeout,
                     (unsigned long long)held);
        conn_close(c, "handshake timeout");
    }
}

static void tick(struct server *s)
{
    uint64_t expirations;
    ssize_t n = read(s->tick_fd, &expirations, sizeof(expirations));
    (void)n; /* level-triggered: an unread tick only comes back */
    if (s->config.idle_timeout)
        conn_close_idle(&s->env, s->config.idle_timeout);
    if (s->env.handshakes)
        cut_slow_handshakes(s);
    if (s->store)
        store_tick(s->store);
}

static void set_events(struct server *s, struct conn *c);

/* note_buffered: a conn whose transport holds input its socket will not
 * announce (TLS records read ahead) is read again before the loop waits */
static void note_buffered(struct server *s, struct conn *c)
{
    if (c->closing || c->in_buffered || conn_held(c) || !transport_buffered(c->tr))
        return;
    c->in_buffered = true;
    c->next_buffered = s->buffered;
    s->buffered = c;
}

/* rearm: the sched's word that a conn's state changed (its held input
 * ran: what its transport holds is next) */
static void rearm(void *ctx, struct conn *c)
{
    note_buffered(ctx, c);
    set_events(ctx, c);
}

static int watch_listeners(struct server *s);

struct server *server_new(const struct server_config *config, char *err, size_t err_len)
{
    struct server *s = mqd_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->config = *config;
    s->epoll_fd = s->signal_fd = s->spare_fd = s->tick_fd = -1;
    for (size_t i = 0; i < LISTENERS; i++)
        s->listeners[i].fd = -1;
    s->departed = s->rerouted = true;
    s->env.log = config->log;
    s->env.max_line = config->max_line;
    s->env.max_output = config->max_output;
    s->env.max_topic_length = config->max_topic_length;
    sched_init(&s->env.sched, rearm, s);
    s->start_time = time(NULL);
    fit_max_clients(s);
    if (open_listeners(s, err, err_len) < 0 || open_metrics(s, err, err_len) < 0) {
        server_free(s);
        return NULL;
    }
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->epoll_fd < 0 || open_signals(s) < 0 || make_broker(s) < 0) {
        snprintf(err, err_len, "cannot start: %s", strerror(errno ? errno : ENOMEM));
        server_free(s);
        return NULL;
    }
    if (open_store(s, err, err_len) < 0 || open_auth(s, err, err_len) < 0) {
        server_free(s);
        return NULL;
    }
    if (make_peers(s) < 0 || open_tick(s) < 0 || watch_listeners(s) < 0 ||
        watch(s, s->signal_fd, EPOLLIN, &s->signal_fd) < 0 ||
        (s->metrics && watch(s, httpd_fd(s->metrics), EPOLLIN, &s->metrics) < 0) ||
        make_budget(s) < 0) {
        snprintf(err, err_len, "cannot start: %s", strerror(errno ? errno : ENOMEM));
        server_free(s);
        return NULL;
    }
    return s;
}

/* watch_listeners: every listener open, in the loop */
static int watch_listeners(struct server *s)
{
    for (size_t i = 0; i < LISTENERS; i++) {
        if (s->listeners[i].fd >= 0 && watch(s, s->listeners[i].fd, EPOLLIN, &s->listeners[i]) < 0)
            return -1;
    }
    return 0;
}

/* set_events: what epoll reports for a conn: input until it drains, but
 * while it holds input its last turn left; output only while a flush could
 * not finish (so idle clients cost no wake-ups). */
static void set_events(struct server *s, struct conn *c)
{
    uint32_t events = (c->draining || conn_held(c) ? 0 : EPOLLIN) | (c->want_write ? EPOLLOUT : 0) |
                      transport_events(c->tr);
    if (events == c->events || c->closing)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        conn_close(c, "epoll failed");
        return;
    }
    c->events = events;
}

/* reject: tells a connection over the limit why, as its listener speaks
 * (a TLS client could read no plain text: it is only closed), and closes it */
static void reject(int fd, const struct listener *l)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    struct buf *why = proto_reply(PROTO_REPLY_TOO_MANY_CONNECTIONS);
    ssize_t sent = 0;
    if (!l->tls)
        sent = l->websocket ? send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL)
                            : send(fd, why->data, why->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)sent; /* best effort: the socket is new, its buffer empty */
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* use_transport: the conn speaks TLS, WebSocket or both from now on, as its
 * listener does, with a deadline for its handshake; false when out of
 * memory */
static bool use_transport(struct server *s, struct conn *c, const struct listener *l)
{
    if (!l->tls && !l->websocket)
        return true;
    /* each step owns the one before; on a failure the conn frees the last */
    struct transport *t;
    if (l->tls) {
        if (!(t = tls_transport_new(s->tls, c->fd, c->addr)))
            return false;
        c->tr = t;
    }
    if (l->websocket) {
        if (!(t = ws_transport_new(c->tr, &s->ws, c->addr)))
            return false;
        c->tr = t;
    }
    c->ready_by = s->env.now + (int64_t)s->config.tls_handshake_timeout * 1000;
    s->env.handshakes++;
    return true;
}

static void add_conn(struct server *s, int fd, const struct sockaddr *sa, const struct listener *l)
{
    char addr[CONN_ADDR_LEN];
    net_format_addr(sa, addr, sizeof(addr));
    unsigned char peer[NET_PEER_KEY_LEN];
    size_t peer_len = net_peer_key(sa, peer);
    if (s->env.nconns >= s->max_clients) {
        s->rejected_max_clients++;
        uint64_t held;
        if (log_limit_allow(&s->reject_warnings, &held))
            log_warn(s->config.log,
                     "client %s rejected: --max-clients %zu reached (%llu similar not logged)",
                     addr, s->max_clients, (unsigned long long)held);
        reject(fd, l);
        return;
    }
    long from_peer = peers_add(s->peers, peer, peer_len, s->config.max_clients_per_address);
    if (from_peer == 0) {
        s->rejected_per_address++;
        uint64_t held;
        if (log_limit_allow(&s->reject_warnings, &held))
            log_warn(s->config.log,
                     "client %s rejected: --max-clients-per-address %zu reached (%llu similar not "
                     "logged)",
                     addr, s->config.max_clients_per_address, (unsigned long long)held);
        reject(fd, l);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (net_keepalive(fd, s->config.tcp_keepalive) < 0)
        log_debug(s->config.log, "client %s: no keepalive: %s", addr, strerror(errno));
    struct conn *c = NULL;
    if (budget_make_room_from_cache(s->env.budget, CONN_ROOM))
        c = conn_new(&s->env, fd, addr);
    if (!c || !use_transport(s, c, l) || watch(s, fd, EPOLLIN, c) < 0) {
        /* conn_new fails for memory only, adding to epoll for memory or
         * for the limit on watches: the kernel's memory */
        s->rejected_no_memory++;
        log_warn(s->config.log, "client %s rejected: %s", addr,
                 c ? strerror(errno) : "out of memory");
        if (c)
            conn_free(c);
        else
            close(fd);
        if (from_peer > 0)
            peers_remove(s->peers, peer, peer_len);
        return;
    }
    if (from_peer > 0) { /* counted: the conn gives it back when freed */
        memcpy(c->peer, peer, peer_len);
        c->peer_len = peer_len;
    }
    c->events = EPOLLIN;
    s->connections_total++;
    log_debug(s->config.log, "client %s connected", addr);
}

/* out_of_descriptors: accept-and-close through the spare descriptor, so the
 * level-triggered listener does not spin; without a spare, stop accepting
 * until a client leaves. */
static void refuse_for_descriptors(struct server *s, int fd, const struct listener *l)
{
    s->rejected_no_fd++;
    uint64_t held;
    if (log_limit_allow(&s->fd_warnings, &held))
        log_warn(s->config.log,
                 "out of file descriptors: connection refused (%llu similar not logged)",
                 (unsigned long long)held);
    reject(fd, l);
}

static void out_of_descriptors(struct server *s, struct listener *l)
{
    if (s->spare_fd >= 0) {
        close(s->spare_fd);
        /* EMFILE comes even with nobody waiting: only a connection taken
         * here was refused */
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            refuse_for_descriptors(s, fd, l);
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->spare_fd >= 0)
            return;
    }
    struct epoll_event ev = {.events = 0, .data.ptr = l};
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, l->fd, &ev) == 0)
        l->paused = true;
}

static void accept_clients(struct server *s, struct listener *l)
{
    while (!l->paused) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            add_conn(s, fd, (struct sockaddr *)&sa, l);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Linux reports EMFILE before it looks at the queue, so even an
             * empty backlog says EMFILE: retrying here would spin; epoll tells
             * us again if a connection is still waiting */
            out_of_descriptors(s, l);
            return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_error(s->config.log, "accept failed: %s", strerror(errno));
        return;
    }
}

static void resume_accepting(struct server *s)
{
    for (size_t i = 0; i < LISTENERS; i++) {
        struct listener *l = &s->listeners[i];
        if (!l->paused)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
        if (s->spare_fd < 0)
            s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, l->fd, &ev) == 0)
            l->paused = false;
    }
}

/* reopen_log: SIGHUP, which logrotate sends once it has moved the file. */
static void reopen_log(struct server *s)
{
    struct log *log = s->config.log;
    if (!log->path)
        log_info(log, "received SIGHUP, no log file to reopen");
    else if (log_reopen(log) < 0)
        log_error(log, "cannot reopen log file %s: %s (still writing here)", log->path,
                  strerror(errno));
    else
        log_info(log, "received SIGHUP, log file reopened");
}

/* reload_tls: SIGHUP reads the certificate and key again; new clients get
 * them, and a bad file keeps the old ones */
static void reload_tls(struct server *s)
{
    char err[256];
    if (!s->tls)
        return;
    if (tls_server_reload(s->tls, err, sizeof(err)) == 0)
        log_info(s->config.log, "received SIGHUP, TLS certificate and key read again");
    else
        log_warn(s->config.log, "received SIGHUP, TLS files not reloaded, the old ones stay: %s",
                 err);
}

/* reload_users: SIGHUP reads the users file again, for the logins after
 * it; a bad file keeps the old one */
static void reload_users(struct server *s)
{
    char err[256];
    if (!s->env.auth)
        return;
    if (auth_reload(s->env.auth, err, sizeof(err)) == 0)
        log_info(s->config.log, "received SIGHUP, users file read again");
    else
        log_warn(s->config.log, "received SIGHUP, users file not reloaded, the old one stays: %s",
                 err);
}

static void read_signals(struct server *s)
{
    struct signalfd_siginfo info;
    while (read(s->signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        if (info.ssi_signo == SIGHUP) {
            reopen_log(s);
            reload_tls(s);
            reload_users(s);
            continue;
        }
        log_info(s->config.log, "received SIG%s, shutting down", sigabbrev_np((int)info.ssi_signo));
        s->stopping = true;
    }
}

static void read_client(struct server *s, struct conn *c)
{
    if (conn_held(c))
        return; /* what it sent before runs first */
    ssize_t n = transport_read(c->tr, s->read_buf, sched_read_size(&s->env.sched));
    if (c->ready_by && !transport_handshaking(c->tr)) {
        c->ready_by = 0; /* the handshake is done */
        s->env.handshakes--;
    }
    if (n > 0)
        conn_receive(c, s->read_buf, (size_t)n);
    else if (n == 0)
        conn_end_of_input(c);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        conn_failed(c, errno);
    note_buffered(s, c);
    set_events(s, c);
}

/* socket_error: why a socket failed, as its pending error says */
static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
        return ECONNRESET;
    return err;
}

static void handle_client_event(struct server *s, struct conn *c, uint32_t events)
{
    if (c->closing)
        return;
    if (events & EPOLLIN)
        read_client(s, c);
    else if (events & (EPOLLERR | EPOLLHUP))
        conn_failed(c, socket_error(c->fd));
    if ((events & EPOLLOUT) && (transport_events(c->tr) & EPOLLOUT) && !c->closing)
        read_client(s, c); /* a handshake (or renegotiation) waits to write */
    if ((events & EPOLLOUT) && !c->closing && !c->in_flush_list) {
        c->want_write = conn_flush(c) == OUTQ_FULL;
        set_events(s, c);
    }
}

/* read_buffered: a read for each conn whose transport held decoded input
 * at its last read, as if its socket had said so */
static void read_buffered(struct server *s)
{
    struct conn *c = s->buffered;
    s->buffered = NULL;
    while (c) {
        struct conn *next = c->next_buffered;
        c->in_buffered = false;
        if (!c->closing)
            read_client(s, c);
        c = next;
    }
}

/* free_closed: conns closed during the iteration are freed only now, when no
 * fan-out or event batch can still point at them; one still on a flush
 * list (its share of writes not come yet) waits until the flush drops it */
static void free_closed(struct server *s)
{
    struct conn *c, *listed = NULL;
    bool any = false;
    while ((c = s->env.close_list)) {
        s->env.close_list = c->next_close;
        /* while the store cannot write, no flush comes to drop it: it goes
         * now, or its socket (a reset, a hang-up) would wake every pass */
        if (c->in_flush_list && s->store && store_failing(s->store))
            sched_unflush(&s->env.sched, c);
        if (c->in_flush_list || c->in_buffered) {
            c->next_close = listed;
            listed = c;
            continue;
        }
        if (c->peer_len)
            peers_remove(s->peers, c->peer, c->peer_len);
        conn_free(c);
        any = true;
    }
    s->env.close_list = listed;
    if (any)
        resume_accepting(s);
}

/* end_pass: what every loop pass ends with, once its events are handled:
 * the turns of clients held back, the coalesced flush, the conns closed
 * meanwhile freed, a step of the clients leaving their topics, memory given
 * back */
static void end_pass(struct server *s, bool may_defer)
{
    sched_resume(&s->env.sched);
    /* the pass's records reach the kernel (and the disk, with --fsync
     * always) before any of its replies or deliveries is written */
    if (s->store && store_commit(s->store) < 0) {
        /* a failure was said; nothing of the pass may be told until its
         * records are written: the output waits for a later commit */
    } else {
        sched_flush(&s->env.sched, may_defer);
    }
    free_closed(s);
    s->departed = broker_depart(s->env.broker, DEPART_PER_PASS);
    s->rerouted = broker_reroute(s->env.broker, REROUTE_PER_PASS);
    /* the loop is about to wait: the time to give memory back */
    budget_give_back(s->env.budget, !sched_pending(&s->env.sched) && s->departed && s->rerouted);
}

static void log_budget(const struct server *s)
{
    if (!s->config.max_memory) {
        log_info(s->config.log, "memory budget: none (--max-memory 0)");
        return;
    }
    log_info(s->config.log, "memory budget: %zu bytes (%.1f MiB, %s)", s->config.max_memory,
             (double)s->config.max_memory / (1024.0 * 1024), s->config.max_memory_why);
}

int server_run(struct server *s)
{
    struct epoll_event events[MAX_EVENTS];
    if (s->metrics)
        log_info(s->config.log, "metrics on http://%s/metrics", httpd_address(s->metrics));
    log_budget(s);
    if (s->listeners[PLAIN].fd >= 0)
        log_info(s->config.log, "listening on %s", s->listeners[PLAIN].addr);
    if (s->listeners[TLS].fd >= 0)
        log_info(s->config.log, "listening for TLS on %s", s->listeners[TLS].addr);
    if (s->listeners[WEBSOCKET].fd >= 0)
        log_info(s->config.log, "listening for WebSocket%s on %s",
                 s->listeners[WEBSOCKET].tls ? " over TLS" : "", s->listeners[WEBSOCKET].addr);
    while (!s->stopping) {
        /* with input or output held back or clients still leaving their
         * topics, only look for more input; block once everything is done */
        bool pending = sched_pending(&s->env.sched) || !s->departed || !s->rerouted || s->buffered;
        int timeout = pending ? 0 : -1;
        if (s->store && store_failing(s->store))
            timeout = STORE_RETRY_MS; /* a commit is tried again this soon */
        int n = epoll_wait(s->epoll_fd, events, MAX_EVENTS, timeout);
        uint64_t woke = now_ns();
        read_clock(s);
        sched_pass_begin(&s->env.sched);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error(s->config.log, "epoll_wait failed: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            read_buffered(s);
            end_pass(s, false);
            metrics_observe(&s->loop_passes, now_ns() - woke);
            continue;
        }
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr >= (void *)s->listeners && ptr < (void *)(s->listeners + LISTENERS))
                accept_clients(s, ptr);
            else if (ptr == &s->signal_fd)
                read_signals(s);
            else if (ptr == &s->metrics)
                httpd_run(s->metrics);
            else if (ptr == &s->tick_fd)
                tick(s);
            else if (ptr == &s->env.auth)
                auth_collect(s->env.auth, conn_authenticated, s->env.now);
            else
                handle_client_event(s, ptr, events[i].events);
        }
        read_buffered(s);
        end_pass(s, true);
        metrics_observe(&s->loop_passes, now_ns() - woke);
    }
    return 0;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    /* one last non-blocking flush: replies already earned are not thrown
     * away, unless their records could not be written: then nothing of
     * them may be told (a failure was said) */
    if (!s->store || store_commit(s->store) == 0)
        sched_flush_all(&s->env.sched);
    while (s->env.conns)
        conn_free(s->env.conns);
    /* the "one" lines clients were never written go back to the caches
     * while the store still keeps what changes */
    if (s->env.broker)
        (void)broker_reroute(s->env.broker, SIZE_MAX);
    budget_free(s->env.budget);
    if (s->env.broker)
        broker_tell_changes(s->env.broker, NULL, NULL, NULL); /* what goes now is not a change */
    store_free(s->store);
    broker_free(s->env.broker);
    httpd_free(s->metrics);
    peers_free(s->peers);
    auth_free(s->env.auth); /* after the conns, which cancelled their checks */
    tls_server_free(s->tls);
    int fds[] = {s->listeners[PLAIN].fd,
                 s->listeners[TLS].fd,
                 s->listeners[WEBSOCKET].fd,
                 s->signal_fd,
                 s->spare_fd,
                 s->tick_fd,
                 s->epoll_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    mqd_free(s);
}
