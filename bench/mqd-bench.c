/*
 * mqd-bench: a load generator for mqd, and for Redis pub/sub, Redis Streams
 * and NATS to compare.
 *
 * One thread, one epoll loop, non-blocking sockets. S subscribers join T
 * topics (subscriber i takes topic i % T); once every subscribe is answered,
 * P publishers send round-robin over the topics with at most W sends each
 * waiting for their reply. Every msg carries its send time, its publisher and
 * a sequence number per (publisher, topic), padded to --size bytes, so a
 * subscriber measures latency and finds lost or repeated deliveries without
 * parsing JSON. Counters reset after the warm-up; loss is counted over the
 * whole run, after a drain.
 *
 * Redis pub/sub keeps nothing (PUBLISH never reaches the AOF), so the
 * durable counterpart of mqd's cached topics is Redis Streams
 * (--proto redis-streams): a publisher XADDs each msg as field "m" of an
 * entry, a subscriber loops on XREAD BLOCK 0 from the last id it read.
 *
 * --tls puts every connection in TLS (OpenSSL, non-blocking, in the same
 * loop), and --handshakes measures instead how many new connections a
 * second the server takes: each connects, does a full handshake, one
 * request and its reply, and closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (256 * 1024)
#define HEADER_LEN 32 /* 16 hex time, 4 hex publisher, 12 hex sequence */
#define HIST_SUB 16
#define HIST_BUCKETS (64 * HIST_SUB)
#define MAX_PREFIX 64    /* commands are built in fixed buffers */
#define STREAM_ID_LEN 48 /* "ms-seq", two 64-bit numbers */
#define TLS_DESC_LEN 96  /* "TLSv1.3 TLS_AES_256_GCM_SHA384 x25519" */
#define REPLY_MAX 4096   /* --handshakes: the longest reply line kept */

enum proto { PROTO_MQD, PROTO_REDIS, PROTO_NATS, PROTO_REDIS_STREAMS };

struct config {
    unsigned port;
    enum proto proto;
    size_t subscribers, publishers, topics, size, window;
    double duration, warmup, rate;
    long server_pid;
    const char *prefix; /* topic names are prefix + number */
    bool json, idle;
    size_t fill;
    size_t maxlen; /* redis-streams: XADD's MAXLEN ~ (0: no trim) */
    bool tls;
    const char *tls_ca; /* verify the server's certificate against it (NULL: not) */
    size_t nats_ping;   /* nats: verbose off, a PING after every nats_ping sends */
    double handshakes;  /* seconds of new connections to measure (0: a load run) */
    size_t concurrency; /* --handshakes: connections in flight */
};

/* redis-streams subscribers: where the reader is in the reply to its one
 * outstanding command (XREVRANGE when subscribing, XREAD after). An entry
 * has one field, so it is always eight lines: *2, $len, id, *2, $1, m,
 * $len, payload. */
struct stream_reader {
    size_t head_left;            /* XREAD's lines before the entry count: *1, *2, $len, key */
    size_t entries_left;         /* 0: the next line after the head is the entry count */
    size_t line;                 /* line inside the current entry */
    char last_id[STREAM_ID_LEN]; /* the newest entry read: where the next XREAD starts */
};

struct client {
    int fd;
    bool publisher;
    size_t id;
    char *in; /* unfinished input line */
    size_t in_len;
    char *out; /* bytes not yet written */
    size_t out_len, out_cap;
    size_t line_in_msg;    /* redis subscribers: line position inside a message */
    size_t replies_wanted; /* subscribe replies still expected */
    /* publishers */
    size_t inflight;
    size_t next_topic;
    size_t *ring; /* topics of the sends waiting for replies, oldest first */
    size_t ring_head;
    uint64_t *seq; /* next sequence number per topic */
    /* subscribers */
    uint64_t *last_seq; /* per publisher: last sequence seen, +1 (0: none) */
    size_t msg_at;      /* mqd: where "msg"'s text begins in a delivery of its topic */
    struct stream_reader stream;
    /* --nats-ping publishers: a PONG acknowledges the sends before its PING */
    size_t unpinged; /* sends since the last PING */
    size_t *pings;   /* sends each PING in flight answers for, oldest first */
    size_t pings_head, npings;
    /* --tls */
    SSL *ssl;
    size_t tls_retry;      /* length of the SSL_write to repeat (0: none) */
    bool write_wants_read; /* that SSL_write waits for input, not for room */
    bool read_wants_write; /* the last SSL_read waits for room to write */
    bool tls_more;         /* the last read filled the buffer: more may be inside */
};

/* --handshakes: one connection from its connect to its reply */
enum dial_state { DIAL_CONNECTING, DIAL_INFO, DIAL_HANDSHAKE, DIAL_REQUEST, DIAL_REPLY, DIAL_DONE };

struct dial {
    struct client c; /* fd, ssl and output, as for the load */
    enum dial_state state;
    uint64_t started;
    char reply[REPLY_MAX]; /* input not yet a whole line */
    size_t reply_len;
};

struct counters {
    uint64_t acked, delivered, payload_bytes;
    uint64_t hist[HIST_BUCKETS];
};

struct bench {
    struct config cfg;
    int epoll_fd, timer_fd;
    struct client *clients; /* subscribers first, then publishers */
    size_t nclients;
    size_t *subs_per_topic;
    char **topic_names;
    bool publishing;
    struct counters window, total;
    uint64_t expected, lost, duplicated, paced_sent;
    /* one clock reading per batch: the lines of one read arrived together,
     * the sends of one write leave together, and the clock is not free */
    uint64_t read_at, send_at;
    double paced_start;
    char xadd_trim[64]; /* redis-streams: XADD's "MAXLEN ~ N" arguments, or "" */
    int xadd_args;
    SSL_CTX *tls;
    char tls_desc[TLS_DESC_LEN]; /* what the first connection negotiated */
    /* --handshakes */
    struct dial *dials;
    double dial_end;  /* no new connection starts after it */
    uint64_t resumed; /* handshakes that resumed a session: none should */
    char read_buf[READ_SIZE];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "mqd-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        die("calloc");
    return p;
}

/* histogram: log-linear buckets, 16 per power of two (about 6% wide) */
static size_t hist_bucket(uint64_t v)
{
    if (v < HIST_SUB)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v);
    uint64_t sub = (v >> (e - 4)) & (HIST_SUB - 1);
    return (size_t)(e - 3) * HIST_SUB + (size_t)sub;
}

static double hist_value(size_t bucket)
{
    if (bucket < HIST_SUB)
        return (double)bucket;
    size_t e = bucket / HIST_SUB + 3, sub = bucket % HIST_SUB;
    double low = (double)((UINT64_C(1) << e) + ((uint64_t)sub << (e - 4)));
    return low + (double)(UINT64_C(1) << (e - 4)) / 2;
}

static double hist_quantile(const uint64_t *hist, double q)
{
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        total += hist[i];
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > rank)
            return hist_value(i);
    }
    return hist_value(HIST_BUCKETS - 1);
}

static void put_hex(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

static uint64_t get_hex(const char *in, int digits)
{
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        /* without a branch: the digits are random, a branch would miss half
         * the time ('0'-'9' have bit 6 clear, 'a'-'f' set and low bits 1-6) */
        unsigned c = (unsigned char)in[i];
        v = v * 16 + (c & 0xf) + 9 * (c >> 6);
    }
    return v;
}

static void out_reserve(struct client *c, size_t more)
{
    if (c->out_len + more <= c->out_cap)
        return;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more)
        cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out)
        die("realloc");
    c->out_cap = cap;
}

static void out_append(struct client *c, const char *data, size_t len)
{
    out_reserve(c, len);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

/* tls_fail: the library's reason for a failure, and exit */
static void tls_fail(const char *what, int ssl_error)
{
    char why[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, why, sizeof(why));
    else if (ssl_error == SSL_ERROR_SYSCALL && errno)
        snprintf(why, sizeof(why), "%s", strerror(errno));
    else
        snprintf(why, sizeof(why), "the server closed the connection");
    fprintf(stderr, "mqd-bench: tls: %s: %s\n", what, why);
    exit(1);
}

/* skip_chain_check: without --tls-ca the certificate is taken as it is, so
 * its chain's signatures are not checked either: the generator's share of
 * a handshake stays what every client does (key exchange, the server's
 * signature over the handshake), and the server's share is measured */
static int skip_chain_check(X509_STORE_CTX *store, void *arg)
{
    (void)store;
    (void)arg;
    return 1;
}

/* tls_context: one client context for every connection. It caches no
 * session (OpenSSL clients do not unless told), so each handshake is full. */
static SSL_CTX *tls_context(const struct config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        tls_fail("SSL_CTX_new", 0);
    /* a write to repeat is repeated from c->out, which appends may move */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!cfg->tls_ca) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, skip_chain_check, NULL);
        return ctx;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
        tls_fail(cfg->tls_ca, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* the server is always on the loopback address: its certificate must name it */
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1") != 1)
        tls_fail("X509_VERIFY_PARAM_set1_ip_asc", 0);
    return ctx;
}

static SSL *tls_new(struct bench *b, int fd)
{
    SSL *ssl = SSL_new(b->tls);
    if (!ssl || SSL_set_fd(ssl, fd) != 1)
        tls_fail("SSL_new", 0);
    SSL_set_connect_state(ssl);
    return ssl;
}

/* tls_describe: what the first connection negotiated, for the report */
static void tls_describe(struct bench *b, SSL *ssl)
{
    if (b->tls_desc[0])
        return;
    const char *group = SSL_group_to_name(ssl, (int)SSL_get_negotiated_group(ssl));
    snprintf(b->tls_desc, sizeof(b->tls_desc), "%s %s %s", SSL_get_version(ssl),
             SSL_get_cipher_name(ssl), group ? group : "?");
}

/* tls_write: write's counterpart (-1 with EAGAIN: not now). After a WANT
 * the library must be given the same bytes again, so the length tried is
 * kept and tried again; the caller starts from the same byte. */
static ssize_t tls_write(struct client *c, const char *p, size_t len)
{
    if (c->tls_retry)
        len = c->tls_retry;
    else if (len > INT_MAX)
        len = INT_MAX;
    ERR_clear_error();
    int n = SSL_write(c->ssl, p, (int)len);
    c->write_wants_read = false;
    if (n > 0) {
        c->tls_retry = 0;
        return n;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        tls_fail("write", e);
    c->tls_retry = len;
    c->write_wants_read = e == SSL_ERROR_WANT_READ;
    errno = EAGAIN;
    return -1;
}

/* tls_read: read's counterpart (0: closed), but it goes on until the
 * library wants more from the socket: epoll watches the socket, not the
 * records already taken from it. If buf fills first, tls_more says so. */
static ssize_t tls_read(struct client *c, char *buf, size_t cap)
{
    size_t got = 0;
    int e = SSL_ERROR_NONE;
    while (got < cap) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf + got, cap - got > INT_MAX ? INT_MAX : (int)(cap - got));
        if (n <= 0) {
            e = SSL_get_error(c->ssl, n);
            break;
        }
        got += (size_t)n;
    }
    c->tls_more = got == cap;
    c->read_wants_write = e == SSL_ERROR_WANT_WRITE;
    if (got)
        return (ssize_t)got;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !ERR_peek_error()))
        return 0;
    tls_fail("read", e);
    return -1;
}

static ssize_t conn_write(struct client *c, const char *p, size_t len)
{
    return c->ssl ? tls_write(c, p, len) : write(c->fd, p, len);
}

static ssize_t conn_read(struct client *c, char *buf, size_t cap)
{
    return c->ssl ? tls_read(c, buf, cap) : read(c->fd, buf, cap);
}

/* interest: what c waits for. Plain: input always, room while output is
 * left. TLS may invert it: a write that waits for input needs no room,
 * a read that waits for room does. */
static uint32_t interest(const struct client *c)
{
    bool room = (c->out_len && !c->write_wants_read) || c->read_wants_write;
    return EPOLLIN | (room ? EPOLLOUT : 0);
}

static void flush_out(struct bench *b, struct client *c)
{
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = conn_write(c, c->out + done, c->out_len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            die("write");
        }
        done += (size_t)n;
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    struct epoll_event ev = {.events = interest(c), .data.ptr = c};
    epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void append_subscribe(struct bench *b, struct client *c, const char *topic)
{
    char line[256];
    int n;
    switch (b->cfg.proto) {
    case PROTO_MQD:
        /* no cache replay: the others have none, and runs must not see each other */
        n = snprintf(line, sizeof(line),
                     "{\"command\":\"subscribe\",\"topic\":\"%s\",\"cache\":false}\n", topic);
        break;
    case PROTO_REDIS:
        n = snprintf(line, sizeof(line), "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(topic),
                     topic);
        break;
    case PROTO_REDIS_STREAMS:
        /* the stream's newest id, to read from: entries of earlier runs are
         * not delivered, as mqd's subscribers ask for no replay */
        n = snprintf(line, sizeof(line),
                     "*6\r\n$9\r\nXREVRANGE\r\n$%zu\r\n%s\r\n$1\r\n+\r\n$1\r\n-\r\n"
                     "$5\r\nCOUNT\r\n$1\r\n1\r\n",
                     strlen(topic), topic);
        strcpy(c->stream.last_id, "0-0"); /* if the stream is empty or missing */
        break;
    default:
        /* quiet NATS answers SUB with nothing: the PONG says it is done */
        n = snprintf(line, sizeof(line), "SUB %s %zu\r\n%s", topic, c->id + 1,
                     b->cfg.nats_ping ? "PING\r\n" : "");
        break;
    }
    out_append(c, line, (size_t)n);
}

/* append_xread: redis-streams: wait for the entries after the last one
 * read. One XREAD at a time: each answer carries all entries since. */
static void append_xread(struct bench *b, struct client *c)
{
    const char *topic = b->topic_names[c->id % b->cfg.topics], *id = c->stream.last_id;
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "*6\r\n$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n"
                     "$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                     strlen(topic), topic, strlen(id), id);
    out_append(c, line, (size_t)n);
    c->stream.head_left = 4;
}

/* append_connect: NATS only; "verbose" makes the server acknowledge every
 * command with +OK, as mqd and Redis answer every publish. NATS clients
 * keep it off and flush with PING instead (--nats-ping): then the server
 * answers CONNECT with nothing. */
static void append_connect(struct bench *b, struct client *c)
{
    static const char line[] = "CONNECT {\"verbose\":true,\"pedantic\":false}\r\n";
    static const char quiet[] = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
    if (b->cfg.nats_ping) {
        out_append(c, quiet, sizeof(quiet) - 1);
        return;
    }
    out_append(c, line, sizeof(line) - 1);
    c->replies_wanted++;
}

/* append_ping: --nats-ping: the PONG will acknowledge the sends since the last PING */
static void append_ping(struct bench *b, struct client *c)
{
    out_append(c, "PING\r\n", 6);
    c->pings[(c->pings_head + c->npings) % b->cfg.window] = c->unpinged;
    c->npings++;
    c->unpinged = 0;
}

/* an mqd send, as written by append_send */
#define SEND_HEAD "{\"command\":\"send\",\"topic\":\""
#define SEND_MSG "\",\"msg\":\""

/* append_send: one publish of a fresh payload to topic t. */
static void append_send(struct bench *b, struct client *c, size_t t)
{
    const char *topic = b->topic_names[t];
    size_t tlen = strlen(topic), size = b->cfg.size;
    char head[256]; /* fits any command with a prefix of MAX_PREFIX */
    int n;
    switch (b->cfg.proto) {
    case PROTO_MQD: n = snprintf(head, sizeof(head), SEND_HEAD "%s" SEND_MSG, topic); break;
    case PROTO_REDIS:
        n = snprintf(head, sizeof(head), "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n", tlen,
                     topic, size);
        break;
    case PROTO_REDIS_STREAMS:
        n = snprintf(head, sizeof(head),
                     "*%d\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n%s$1\r\n*\r\n$1\r\nm\r\n$%zu\r\n",
                     b->xadd_args, tlen, topic, b->xadd_trim, size);
        break;
    default: n = snprintf(head, sizeof(head), "PUB %s %zu\r\n", topic, size); break;
    }
    const char *tail = b->cfg.proto == PROTO_MQD ? "\",\"delivery\":\"all\"}\n" : "\r\n";
    size_t tail_len = strlen(tail);
    out_reserve(c, (size_t)n + size + tail_len);
    char *p = c->out + c->out_len;
    memcpy(p, head, (size_t)n);
    p += n;
    put_hex(p, b->send_at, 16);
    put_hex(p + 16, c->id, 4);
    put_hex(p + 20, c->seq[t]++, 12);
    memset(p + HEADER_LEN, 'x', size - HEADER_LEN);
    memcpy(p + size, tail, tail_len);
    c->out_len += (size_t)n + size + tail_len;
    c->ring[(c->ring_head + c->inflight) % b->cfg.window] = t;
    c->inflight++;
}

static void fill_window(struct bench *b, struct client *c, size_t limit)
{
    size_t sent = 0;
    b->send_at = now_ns();
    while (c->inflight < b->cfg.window && sent < limit) {
        append_send(b, c, c->next_topic);
        c->next_topic = (c->next_topic + 1) % b->cfg.topics;
        sent++;
        if (b->cfg.nats_ping && ++c->unpinged == b->cfg.nats_ping)
            append_ping(b, c);
    }
    /* a full window waits for acknowledgements: the last sends need their PING */
    if (c->unpinged && c->inflight == b->cfg.window)
        append_ping(b, c);
    b->paced_sent += sent;
    if (c->out_len)
        flush_out(b, c);
}

static void on_ack(struct bench *b, struct client *c)
{
    size_t t = c->ring[c->ring_head];
    c->ring_head = (c->ring_head + 1) % b->cfg.window;
    c->inflight--;
    b->window.acked++;
    b->total.acked++;
    b->expected += b->subs_per_topic[t];
}

static void on_payload(struct bench *b, struct client *c, const char *p, size_t len)
{
    if (len < HEADER_LEN)
        return;
    uint64_t sent = get_hex(p, 16), pub = get_hex(p + 16, 4), seq = get_hex(p + 20, 12);
    uint64_t latency = b->read_at - sent;
    b->window.hist[hist_bucket(latency)]++;
    b->window.delivered++;
    b->total.delivered++;
    b->window.payload_bytes += b->cfg.size;
    if (pub < b->cfg.publishers) {
        if (seq + 1 <= c->last_seq[pub])
            b->duplicated++;
        else
            c->last_seq[pub] = seq + 1;
    }
}

/* on_pong: --nats-ping: a subscriber's SUB is done, or a publisher's
 * sends before its PING are */
static void on_pong(struct bench *b, struct client *c)
{
    if (c->replies_wanted > 0) {
        c->replies_wanted--;
        return;
    }
    if (!c->publisher || c->npings == 0)
        return;
    size_t n = c->pings[c->pings_head];
    c->pings_head = (c->pings_head + 1) % b->cfg.window;
    c->npings--;
    while (n--)
        on_ack(b, c);
}

/* on_nats_line: NATS sends +OK for each command (verbose), PONG for each
 * PING, and a message as a MSG line followed by its payload line. */
static void on_nats_line(struct bench *b, struct client *c, const char *line, size_t len)
{
    if (c->line_in_msg) {
        c->line_in_msg = 0;
        on_payload(b, c, line, len);
    } else if (len >= 3 && memcmp(line, "+OK", 3) == 0) {
        if (c->replies_wanted > 0)
            c->replies_wanted--;
        else if (c->publisher)
            on_ack(b, c);
    } else if (len >= 4 && memcmp(line, "MSG ", 4) == 0) {
        c->line_in_msg = 1;
    } else if (len >= 4 && memcmp(line, "PING", 4) == 0) {
        out_append(c, "PONG\r\n", 6);
        flush_out(b, c);
    } else if (len >= 4 && memcmp(line, "PONG", 4) == 0) {
        on_pong(b, c);
    } else if (len >= 4 && memcmp(line, "-ERR", 4) == 0) {
        fprintf(stderr, "mqd-bench: nats: %.*s\n", (int)len, line);
        exit(1);
    } /* INFO: nothing to do */
}

/* stream_reply_done: a subscriber's XREVRANGE or XREAD is answered: the
 * next XREAD goes out at once */
static void stream_reply_done(struct bench *b, struct client *c)
{
    if (c->replies_wanted > 0)
        c->replies_wanted--; /* the XREVRANGE: subscribed */
    c->stream.entries_left = 0;
    append_xread(b, c);
    flush_out(b, c);
}

/* on_stream_entry_line: line c->stream.line of an entry; the id is kept
 * (the next XREAD starts after it) and the payload counted */
static void on_stream_entry_line(struct bench *b, struct client *c, const char *line, size_t len)
{
    struct stream_reader *r = &c->stream;
    if (r->line == 2 && len < sizeof(r->last_id)) {
        memcpy(r->last_id, line, len);
        r->last_id[len] = 0;
    }
    if (++r->line < 8)
        return;
    r->line = 0;
    if (c->replies_wanted == 0) /* XREVRANGE's entry is older: only its id counts */
        on_payload(b, c, line, len);
    if (--r->entries_left == 0)
        stream_reply_done(b, c);
}

/* on_stream_line: redis-streams. A publisher's XADD is answered with the
 * new id as a bulk string, two lines; a subscriber's read as above. */
static void on_stream_line(struct bench *b, struct client *c, const char *line, size_t len)
{
    if (len > 0 && line[0] == '-') {
        fprintf(stderr, "mqd-bench: redis: %.*s\n", (int)len, line);
        exit(1);
    }
    struct stream_reader *r = &c->stream;
    if (c->publisher) {
        if (++c->line_in_msg == 2) {
            c->line_in_msg = 0;
            on_ack(b, c);
        }
    } else if (r->head_left > 0) {
        if (len == 3 && memcmp(line, "*-1", 3) == 0) /* nil: timed out, nothing new */
            stream_reply_done(b, c);
        else
            r->head_left--;
    } else if (r->entries_left == 0) {
        long n = len > 1 ? strtol(line + 1, NULL, 10) : 0;
        if (n <= 0)
            stream_reply_done(b, c);
        else
            r->entries_left = (size_t)n;
    } else {
        on_stream_entry_line(b, c, line, len);
    }
}

/* on_line: one complete input line (without "\r\n"). */
static void on_line(struct bench *b, struct client *c, const char *line, size_t len)
{
    if (b->cfg.proto == PROTO_NATS) {
        on_nats_line(b, c, line, len);
        return;
    }
    if (b->cfg.proto == PROTO_REDIS_STREAMS) {
        on_stream_line(b, c, line, len);
        return;
    }
    if (c->replies_wanted > 0) {
        /* redis answers a subscribe with six lines, mqd with one */
        if (b->cfg.proto == PROTO_MQD || ++c->line_in_msg == 6) {
            c->line_in_msg = 0;
            c->replies_wanted--;
        }
        return;
    }
    if (c->publisher) {
        on_ack(b, c);
        return;
    }
    if (b->cfg.proto == PROTO_REDIS) {
        if (++c->line_in_msg < 7)
            return;
        c->line_in_msg = 0;
        on_payload(b, c, line, len);
        return;
    }
    /* a delivery is the send as it was written, its index added: the text
     * is where it was, as the 7th line is in Redis's reply */
    size_t at = c->msg_at, mark = strlen(SEND_MSG);
    if (len > at && memcmp(line + at - mark, SEND_MSG, mark) == 0) {
        on_payload(b, c, line + at, len - at);
        return;
    }
    const char *msg = memmem(line, len, SEND_MSG, mark);
    if (msg)
        on_payload(b, c, msg + mark, len - (size_t)(msg + mark - line));
}

/* read_once: one read of c's input, taken line by line: false when there
 * was nothing to read */
static bool read_once(struct bench *b, struct client *c)
{
    ssize_t n = conn_read(c, b->read_buf, sizeof(b->read_buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n <= 0) {
        fprintf(stderr, "mqd-bench: the server closed a %s connection\n",
                c->publisher ? "publisher" : "subscriber");
        exit(1);
    }
    b->read_at = now_ns();
    const char *p = b->read_buf, *end = p + n;
    size_t acked_before = c->inflight;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            c->in = realloc(c->in, c->in_len + (size_t)(end - p));
            memcpy(c->in + c->in_len, p, (size_t)(end - p));
            c->in_len += (size_t)(end - p);
            break;
        }
        if (c->in_len) {
            c->in = realloc(c->in, c->in_len + (size_t)(nl - p));
            memcpy(c->in + c->in_len, p, (size_t)(nl - p));
            size_t len = c->in_len + (size_t)(nl - p);
            on_line(b, c, c->in, len && c->in[len - 1] == '\r' ? len - 1 : len);
            c->in_len = 0;
        } else {
            size_t len = (size_t)(nl - p);
            on_line(b, c, p, len && p[len - 1] == '\r' ? len - 1 : len);
        }
        p = nl + 1;
    }
    if (c->publisher && b->publishing && b->cfg.rate == 0 && c->inflight < acked_before)
        fill_window(b, c, SIZE_MAX);
    return true;
}

/* read_client: TLS reads again while the last read filled the buffer (the
 * rest is inside the library, where epoll does not see it), and a read
 * that moved the handshake on may let a waiting write go */
static void read_client(struct bench *b, struct client *c)
{
    bool wanted_room = c->read_wants_write;
    while (read_once(b, c) && c->ssl && c->tls_more)
        ;
    if (!c->ssl)
        return;
    if (c->write_wants_read)
        flush_out(b, c);
    else if (c->read_wants_write != wanted_room) {
        struct epoll_event ev = {.events = interest(c), .data.ptr = c};
        epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static int connect_one(struct bench *b)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)b->cfg.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* read_info: NATS says INFO in the clear, then waits for the client to
 * start TLS, so nothing follows the line: all of it may be read. Returns
 * true once its end has come. */
static bool read_info(int fd)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n <= 0) {
        fprintf(stderr, "mqd-bench: nats: the server closed before its INFO\n");
        exit(1);
    }
    return buf[n - 1] == '\n';
}

/* tls_attach: c's connection in TLS from here on. The first step only
 * sends the hello: every connection's handshake goes on at once, inside
 * its reads and writes, as the replies come. */
static void tls_attach(struct bench *b, struct client *c)
{
    if (b->cfg.proto == PROTO_NATS) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        while (!read_info(c->fd))
            if (poll(&p, 1, 10000) == 0) {
                fprintf(stderr, "mqd-bench: nats: no INFO in 10 s\n");
                exit(1);
            }
    }
    c->ssl = tls_new(b, c->fd);
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    int e = SSL_get_error(c->ssl, r);
    if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        tls_fail("handshake", e);
    c->read_wants_write = e == SSL_ERROR_WANT_WRITE; /* the next read goes on with it */
}

/* xadd_trim: XADD's "MAXLEN ~ N", which bounds a stream's memory as
 * --cache-size bounds mqd's cache. The stream is Redis's delivery path as
 * well, so N must exceed how far a subscriber falls behind. "~" lets Redis
 * trim whole nodes, its cheap way. */
static void xadd_trim(struct bench *b)
{
    b->xadd_args = 5; /* XADD key * m payload */
    if (!b->cfg.maxlen)
        return;
    char n[24];
    int len = snprintf(n, sizeof(n), "%zu", b->cfg.maxlen);
    snprintf(b->xadd_trim, sizeof(b->xadd_trim), "$6\r\nMAXLEN\r\n$1\r\n~\r\n$%d\r\n%s\r\n", len,
             n);
    b->xadd_args = 8;
}

static void setup(struct bench *b)
{
    struct config *cfg = &b->cfg;
    xadd_trim(b);
    b->topic_names = xcalloc(cfg->topics, sizeof(char *));
    b->subs_per_topic = xcalloc(cfg->topics, sizeof(size_t));
    for (size_t t = 0; t < cfg->topics; t++) {
        size_t len = strlen(cfg->prefix) + 24;
        b->topic_names[t] = xcalloc(len, 1);
        snprintf(b->topic_names[t], len, "%s%zu", cfg->prefix, t);
    }
    b->nclients = cfg->subscribers + cfg->publishers;
    b->clients = xcalloc(b->nclients, sizeof(struct client));
    b->epoll_fd = epoll_create1(0);
    for (size_t i = 0; i < b->nclients; i++) {
        struct client *c = &b->clients[i];
        c->fd = connect_one(b);
        if (cfg->tls)
            tls_attach(b, c);
        c->publisher = i >= cfg->subscribers;
        c->id = c->publisher ? i - cfg->subscribers : i;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
        if (cfg->proto == PROTO_NATS)
            append_connect(b, c);
        if (c->publisher) {
            c->ring = xcalloc(cfg->window, sizeof(size_t));
            if (cfg->nats_ping)
                c->pings = xcalloc(cfg->window, sizeof(size_t));
            c->seq = xcalloc(cfg->topics, sizeof(uint64_t));
            c->next_topic = c->id % cfg->topics;
        } else {
            c->last_seq = xcalloc(cfg->publishers, sizeof(uint64_t));
            size_t t = i % cfg->topics;
            b->subs_per_topic[t]++;
            c->replies_wanted++;
            append_subscribe(b, c, b->topic_names[t]);
            c->msg_at = strlen(SEND_HEAD) + strlen(b->topic_names[t]) + strlen(SEND_MSG);
        }
        if (c->out_len)
            flush_out(b, c);
    }
}

static void handle_event(struct bench *b, const struct epoll_event *e)
{
    if (e->data.ptr == &b->timer_fd) {
        uint64_t ticks;
        if (read(b->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
            die("timerfd");
        return;
    }
    struct client *c = e->data.ptr;
    uint32_t ev = e->events;
    /* a TLS write may wait for input, a TLS read for room */
    if ((ev & EPOLLOUT) || (c->write_wants_read && (ev & EPOLLIN)))
        flush_out(b, c);
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) || (c->read_wants_write && (ev & EPOLLOUT)))
        read_client(b, c);
}

static bool is_publisher(const struct bench *b, const struct epoll_event *e)
{
    return e->data.ptr != &b->timer_fd && ((const struct client *)e->data.ptr)->publisher;
}

/* handle_events: the publishers' events first: their replies refill the
 * window at once, so the server has the next sends while this one process
 * reads the deliveries, as publishers of their own would (otherwise the
 * window waits behind every subscriber's read, and a server that is not
 * busy waits for the generator) */
static void handle_events(struct bench *b, int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait(b->epoll_fd, events, 256, timeout_ms);
    for (int i = 0; i < n; i++)
        if (is_publisher(b, &events[i]))
            handle_event(b, &events[i]);
    for (int i = 0; i < n; i++)
        if (!is_publisher(b, &events[i]))
            handle_event(b, &events[i]);
}

static size_t pending_subscribes(const struct bench *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->cfg.subscribers; i++)
        n += b->clients[i].replies_wanted;
    return n;
}

static void wait_for_subscribes(struct bench *b)
{
    double deadline = now_s() + 60;
    while (pending_subscribes(b) > 0) {
        if (now_s() > deadline) {
            fprintf(stderr, "mqd-bench: subscribe replies did not come\n");
            exit(1);
        }
        handle_events(b, 100);
    }
}

/* pace: sends what the rate says is due by now, spread over the publishers */
static void pace(struct bench *b)
{
    double due = (now_s() - b->paced_start) * b->cfg.rate;
    size_t pubs = b->cfg.publishers;
    while ((double)b->paced_sent < due) {
        uint64_t before = b->paced_sent;
        for (size_t j = 0; j < pubs && (double)b->paced_sent < due; j++)
            fill_window(b, &b->clients[b->cfg.subscribers + j], 1);
        if (b->paced_sent == before)
            break; /* every window full */
    }
}

static void publish_until(struct bench *b, double end)
{
    while (now_s() < end) {
        if (b->cfg.rate > 0)
            pace(b);
        handle_events(b, b->cfg.rate > 0 ? 1 : 50);
    }
}

static void start_publishing(struct bench *b)
{
    b->publishing = true;
    if (b->cfg.rate > 0) {
        b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
        struct itimerspec its = {{0, 200000}, {0, 200000}}; /* 0.2 ms ticks */
        timerfd_settime(b->timer_fd, 0, &its, NULL);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &b->timer_fd};
        epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, b->timer_fd, &ev);
        b->paced_start = now_s();
        return;
    }
    for (size_t j = 0; j < b->cfg.publishers; j++)
        fill_window(b, &b->clients[b->cfg.subscribers + j], SIZE_MAX);
}

/* ping_leftovers: --nats-ping: the last sends are acknowledged too */
static void ping_leftovers(struct bench *b)
{
    for (size_t j = 0; j < b->cfg.publishers; j++) {
        struct client *c = &b->clients[b->cfg.subscribers + j];
        if (c->unpinged) {
            append_ping(b, c);
            flush_out(b, c);
        }
    }
}

static void drain(struct bench *b)
{
    b->publishing = false;
    if (b->cfg.nats_ping)
        ping_leftovers(b);
    double deadline = now_s() + 2;
    for (;;) {
        size_t inflight = 0;
        for (size_t j = 0; j < b->cfg.publishers; j++)
            inflight += b->clients[b->cfg.subscribers + j].inflight;
        if ((inflight == 0 && b->total.delivered >= b->expected) || now_s() > deadline)
            break;
        handle_events(b, 10);
    }
    b->lost = b->expected > b->total.delivered ? b->expected - b->total.delivered : 0;
}

static long rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return kib;
}

/* process_cpu_seconds: user and system time of process pid, all its
 * threads (NATS runs on several), or -1 */
static double process_cpu_seconds(long pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
    fclose(f);
    unsigned long utime, stime;
    /* after the name: state, ppid, pgrp, session, tty, tpgid, flags, four
     * fault counts, then utime and stime in clock ticks */
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void report_load(struct bench *b, double seconds, double cpu)
{
    const uint64_t *h = b->window.hist;
    double pub = (double)b->window.acked / seconds, del = (double)b->window.delivered / seconds;
    double mb = (double)b->window.payload_bytes / seconds / 1e6;
    double p50 = hist_quantile(h, 0.5) / 1e3, p99 = hist_quantile(h, 0.99) / 1e3,
           p999 = hist_quantile(h, 0.999) / 1e3;
    long rss = b->cfg.server_pid ? rss_kib(b->cfg.server_pid) : -1;
    if (b->cfg.json) {
        printf(
            "{\"published_per_s\": %.0f, \"delivered_per_s\": %.0f, \"delivered_mb_per_s\": %.2f, "
            "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"acked\": %" PRIu64
            ", \"delivered\": %" PRIu64 ", \"expected\": %" PRIu64 ", \"lost\": %" PRIu64
            ", \"duplicated\": %" PRIu64 ", \"cpu_percent\": %.0f, \"server_rss_kib\": %ld",
            pub, del, mb, p50, p99, p999, b->total.acked, b->total.delivered, b->expected, b->lost,
            b->duplicated, 100 * cpu / seconds, rss);
        if (b->cfg.tls)
            printf(", \"tls\": \"%s\"", b->tls_desc);
        printf("}\n");
        return;
    }
    printf(
        "published %.0f msg/s, delivered %.0f msg/s (%.1f MB/s), latency p50 %.1f us p99 %.1f us "
        "p99.9 %.1f us, lost %" PRIu64 ", duplicated %" PRIu64 ", bench cpu %.0f%%, server rss "
        "%ld KiB",
        pub, del, mb, p50, p99, p999, b->lost, b->duplicated, 100 * cpu / seconds, rss);
    if (b->cfg.tls)
        printf(", %s", b->tls_desc);
    printf("\n");
}

static void run_load(struct bench *b)
{
    setup(b);
    wait_for_subscribes(b);
    start_publishing(b);
    publish_until(b, now_s() + b->cfg.warmup);
    memset(&b->window, 0, sizeof(b->window));
    double cpu0 = cpu_seconds(), t0 = now_s();
    publish_until(b, t0 + b->cfg.duration);
    double seconds = now_s() - t0, cpu = cpu_seconds() - cpu0;
    struct counters measured = b->window;
    drain(b);
    b->window = measured;
    if (b->cfg.tls)
        tls_describe(b, b->clients[0].ssl);
    report_load(b, seconds, cpu);
}

static void run_idle(struct bench *b)
{
    long before = b->cfg.server_pid ? rss_kib(b->cfg.server_pid) : -1;
    b->cfg.topics = b->cfg.subscribers;
    b->cfg.publishers = 0;
    setup(b);
    wait_for_subscribes(b);
    long after = b->cfg.server_pid ? rss_kib(b->cfg.server_pid) : -1;
    double per = (double)(after - before) * 1024 / (double)b->cfg.subscribers;
    if (b->cfg.json)
        printf("{\"connections\": %zu, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
               "\"bytes_per_connection\": %.0f}\n",
               b->cfg.subscribers, before, after, per);
    else
        printf("%zu idle subscribed connections: server rss %ld -> %ld KiB, %.0f bytes each\n",
               b->cfg.subscribers, before, after, per);
}

static void run_fill(struct bench *b)
{
    long before = b->cfg.server_pid ? rss_kib(b->cfg.server_pid) : -1;
    b->cfg.subscribers = 0;
    b->cfg.publishers = 1;
    setup(b);
    struct client *c = &b->clients[0];
    /* b->publishing stays false: read_client would refill the window past
     * the total; this loop refills it with what is left */
    size_t total = b->cfg.fill * b->cfg.topics;
    while (b->total.acked < total) {
        size_t left = total - b->total.acked - c->inflight;
        if (left)
            fill_window(b, c, left);
        handle_events(b, 100);
    }
    long after = b->cfg.server_pid ? rss_kib(b->cfg.server_pid) : -1;
    /* a cached line: the send object with `, "index": N` and "\r\n" */
    double line =
        (double)strlen(
            "{\"command\":\"send\",\"topic\":\"t0000\",\"msg\":\"\",\"delivery\":\"all\"}") +
        (double)b->cfg.size + strlen(", \"index\": 00}\r\n");
    double raw = line * (double)total;
    if (b->cfg.json)
        printf("{\"messages\": %zu, \"raw_bytes\": %.0f, \"rss_before_kib\": %ld, "
               "\"rss_after_kib\": %ld, \"rss_over_raw\": %.3f}\n",
               total, raw, before, after, (double)(after - before) * 1024 / raw);
    else
        printf("%zu messages cached (%.0f raw bytes): server rss %ld -> %ld KiB, %.3f x raw\n",
               total, raw, before, after, (double)(after - before) * 1024 / raw);
}

/* dial_request: --handshakes: the one request of a connection, which the
 * server answers with one line */
static void dial_request(struct bench *b, struct client *c)
{
    char line[256];
    int n;
    switch (b->cfg.proto) {
    case PROTO_MQD:
        n = snprintf(line, sizeof(line),
                     "{\"command\":\"subscribe\",\"topic\":\"%s0\",\"cache\":false}\n",
                     b->cfg.prefix);
        break;
    case PROTO_NATS:
        n = snprintf(line, sizeof(line),
                     "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"
                     "PING\r\n");
        break;
    default: n = snprintf(line, sizeof(line), "*1\r\n$4\r\nPING\r\n"); break;
    }
    out_append(c, line, (size_t)n);
}

/* dial_line: one line of the reply: true once it is the one awaited */
static bool dial_line(struct bench *b, const char *line, size_t len)
{
    bool ok;
    switch (b->cfg.proto) {
    case PROTO_MQD: ok = memmem(line, len, "true", 4) != NULL; break;
    case PROTO_NATS:
        if (len >= 5 && memcmp(line, "INFO ", 5) == 0)
            return false; /* before TLS it came in the clear */
        ok = len == 4 && memcmp(line, "PONG", 4) == 0;
        break;
    default: ok = len == 5 && memcmp(line, "+PONG", 5) == 0; break;
    }
    if (!ok) {
        fprintf(stderr, "mqd-bench: unexpected reply: %.*s\n", (int)len, line);
        exit(1);
    }
    return true;
}

static void dial_watch(struct bench *b, struct dial *d, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = d};
    if (epoll_ctl(b->epoll_fd, op, d->c.fd, &ev) < 0)
        die("epoll_ctl");
}

static void dial_start(struct bench *b, struct dial *d)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)b->cfg.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
        die(errno == EADDRNOTAVAIL ? "connect: out of local ports" : "connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    d->c.fd = fd;
    d->state = DIAL_CONNECTING;
    d->started = now_ns();
    d->reply_len = 0;
    dial_watch(b, d, EPOLLOUT, EPOLL_CTL_ADD);
}

/* dial_connected: the connect's outcome; then NATS's INFO (in the clear
 * before TLS), the handshake, or the request */
static bool dial_connected(struct bench *b, struct dial *d)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(d->c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        die("connect");
    }
    if (!b->cfg.tls)
        d->state = DIAL_REQUEST;
    else if (b->cfg.proto == PROTO_NATS)
        d->state = DIAL_INFO;
    else
        d->state = DIAL_HANDSHAKE;
    if (d->state == DIAL_HANDSHAKE)
        d->c.ssl = tls_new(b, d->c.fd);
    return true;
}

static bool dial_info(struct bench *b, struct dial *d)
{
    if (!read_info(d->c.fd))
        return false;
    d->c.ssl = tls_new(b, d->c.fd);
    d->state = DIAL_HANDSHAKE;
    return true;
}

static bool dial_handshake(struct bench *b, struct dial *d)
{
    (void)b;
    ERR_clear_error();
    int r = SSL_connect(d->c.ssl);
    if (r == 1) {
        d->state = DIAL_REQUEST;
        return true;
    }
    int e = SSL_get_error(d->c.ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        tls_fail("handshake", e);
    d->c.write_wants_read = e == SSL_ERROR_WANT_READ; /* what to wait for */
    return false;
}

static bool dial_send(struct bench *b, struct dial *d)
{
    struct client *c = &d->c;
    if (!c->out_len && !c->tls_retry)
        dial_request(b, c);
    while (c->out_len) {
        ssize_t n = conn_write(c, c->out, c->out_len);
        if (n < 0 && errno == EAGAIN)
            return false;
        if (n < 0)
            die("write");
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    d->state = DIAL_REPLY;
    return true;
}

/* dial_receive: reads until a whole line is the reply awaited */
static bool dial_receive(struct bench *b, struct dial *d)
{
    ssize_t n = conn_read(&d->c, d->reply + d->reply_len, sizeof(d->reply) - d->reply_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n <= 0) {
        fprintf(stderr, "mqd-bench: the server closed a connection before its reply\n");
        exit(1);
    }
    d->reply_len += (size_t)n;
    char *nl;
    while ((nl = memchr(d->reply, '\n', d->reply_len))) {
        size_t len = (size_t)(nl - d->reply);
        if (dial_line(b, d->reply, len && nl[-1] == '\r' ? len - 1 : len)) {
            d->state = DIAL_DONE;
            return true;
        }
        d->reply_len -= len + 1;
        memmove(d->reply, nl + 1, d->reply_len);
    }
    if (d->reply_len == sizeof(d->reply)) {
        fprintf(stderr, "mqd-bench: a reply line longer than %d bytes\n", REPLY_MAX);
        exit(1);
    }
    return false; /* tls_read took all the library held */
}

/* dial_finish: counted, closed (TLS with a close_notify, sent and not
 * waited for, as clients do), and the next connection started */
static void dial_finish(struct bench *b, struct dial *d)
{
    uint64_t t = now_ns();
    b->window.acked++;
    b->window.hist[hist_bucket(t - d->started)]++;
    if (d->c.ssl) {
        tls_describe(b, d->c.ssl);
        b->resumed += (uint64_t)SSL_session_reused(d->c.ssl);
        SSL_shutdown(d->c.ssl);
        SSL_free(d->c.ssl);
    }
    close(d->c.fd);
    d->c.ssl = NULL;
    d->c.out_len = d->c.tls_retry = 0;
    d->c.write_wants_read = d->c.read_wants_write = false;
    if (now_s() < b->dial_end)
        dial_start(b, d);
}

/* dial_step: d as far on as it goes now, then what it waits for */
static void dial_step(struct bench *b, struct dial *d)
{
    static bool (*const steps[])(struct bench *,
                                 struct dial *) = {[DIAL_CONNECTING] = dial_connected,
                                                   [DIAL_INFO] = dial_info,
                                                   [DIAL_HANDSHAKE] = dial_handshake,
                                                   [DIAL_REQUEST] = dial_send,
                                                   [DIAL_REPLY] = dial_receive};
    while (d->state != DIAL_DONE && steps[d->state](b, d))
        ;
    if (d->state == DIAL_DONE) {
        dial_finish(b, d);
        return;
    }
    const struct client *c = &d->c;
    bool room = d->state == DIAL_HANDSHAKE || d->state == DIAL_REQUEST ? !c->write_wants_read
                                                                       : c->read_wants_write;
    dial_watch(b, d, room ? EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
}

static void dial_until(struct bench *b, double end)
{
    struct epoll_event events[256];
    while (now_s() < end) {
        int n = epoll_wait(b->epoll_fd, events, 256, 50);
        for (int i = 0; i < n; i++)
            dial_step(b, events[i].data.ptr);
    }
}

/* report_handshakes: the rate, each connection's time from connect to
 * reply, and what the server spent on one: the figure that compares
 * servers when the generator, not the server, is what runs out of CPU
 * (server_cpu: -1 without --server-pid) */
static void report_handshakes(struct bench *b, double seconds, double cpu, double server_cpu)
{
    const uint64_t *h = b->window.hist;
    uint64_t n = b->window.acked;
    double rate = (double)n / seconds, p50 = hist_quantile(h, 0.5) / 1e3,
           p99 = hist_quantile(h, 0.99) / 1e3, p999 = hist_quantile(h, 0.999) / 1e3;
    double server_pct = server_cpu < 0 ? -1 : 100 * server_cpu / seconds;
    double server_us = server_cpu < 0 || !n ? -1 : server_cpu * 1e6 / (double)n;
    long rss = b->cfg.server_pid ? rss_kib(b->cfg.server_pid) : -1;
    const char *tls = b->cfg.tls ? b->tls_desc : "none";
    if (b->cfg.json)
        printf("{\"connections_per_s\": %.0f, \"connections\": %" PRIu64 ", \"resumed\": %" PRIu64
               ", \"p50_us\": %.1f, \"p99_us\": %.1f, "
               "\"p999_us\": %.1f, \"cpu_percent\": %.0f, \"server_cpu_percent\": %.0f, "
               "\"server_cpu_us_per_connection\": %.0f, \"server_rss_kib\": %ld, "
               "\"tls\": \"%s\"}\n",
               rate, n, b->resumed, p50, p99, p999, 100 * cpu / seconds, server_pct, server_us, rss,
               tls);
    else
        printf("%.0f connections/s (%s, %zu in flight), each p50 %.1f us p99 %.1f us p99.9 "
               "%.1f us, resumed %" PRIu64 ", bench cpu %.0f%%, server cpu %.0f%% (%.0f us "
               "a connection), server rss %ld KiB\n",
               rate, tls, b->cfg.concurrency, p50, p99, p999, b->resumed, 100 * cpu / seconds,
               server_pct, server_us, rss);
}

/* run_handshakes: --concurrency connections at a time, each replaced by a
 * new one as it ends; counted over --handshakes seconds after --warmup */
static void run_handshakes(struct bench *b)
{
    b->epoll_fd = epoll_create1(0);
    b->dials = xcalloc(b->cfg.concurrency, sizeof(struct dial));
    double t0 = now_s() + b->cfg.warmup;
    b->dial_end = t0 + b->cfg.handshakes;
    for (size_t i = 0; i < b->cfg.concurrency; i++)
        dial_start(b, &b->dials[i]);
    dial_until(b, t0);
    memset(&b->window, 0, sizeof(b->window));
    b->resumed = 0;
    long pid = b->cfg.server_pid;
    double cpu0 = cpu_seconds(), server0 = pid ? process_cpu_seconds(pid) : -1;
    t0 = now_s();
    dial_until(b, b->dial_end);
    double seconds = now_s() - t0, cpu = cpu_seconds() - cpu0;
    double server = server0 >= 0 ? process_cpu_seconds(pid) - server0 : -1;
    report_handshakes(b, seconds, cpu, server);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: mqd-bench --port N [options]\n"
            "  --proto mqd|redis|redis-streams|nats  protocol of the server (default mqd)\n"
            "  --subscribers S     subscriber connections (default 100)\n"
            "  --publishers P      publisher connections (default 1)\n"
            "  --topics T          topics; subscriber i takes topic i %% T (default 1)\n"
            "  --prefix NAME       topic names are NAME0, NAME1, ... (default t; at most\n"
            "                      %d bytes)\n"
            "  --size BYTES        msg length, at least %d (default 64)\n"
            "  --window W          unacknowledged sends per publisher (default 256)\n"
            "  --duration SEC      measured time (default 5)\n"
            "  --warmup SEC        time before measuring (default 1)\n"
            "  --rate N            total msg/s over all publishers, 0 = unpaced (default 0)\n"
            "  --server-pid PID    report the server's RSS\n"
            "  --idle              connect and subscribe only, then report RSS (scenario D)\n"
            "  --fill N            publish N messages per topic, no subscribers (scenario E)\n"
            "  --maxlen N          redis-streams: XADD trims a stream to about N entries\n"
            "                      (MAXLEN ~ N; default 0, no trim: a subscriber further\n"
            "                      behind than N would miss entries, counted as lost)\n"
            "  --nats-ping K       nats: verbose off, as NATS clients run; a publisher\n"
            "                      sends PING after every K msgs (and when its window\n"
            "                      fills), and the PONG acknowledges them (default 0:\n"
            "                      verbose on, the server acknowledges each msg with +OK)\n"
            "  --tls               every connection in TLS (OpenSSL, non-blocking). The\n"
            "                      server's certificate is NOT verified unless --tls-ca is\n"
            "                      given (its signature over the handshake still is)\n"
            "  --tls-ca FILE       with --tls: verify the server's certificate against the\n"
            "                      PEM CAs in FILE, for the address 127.0.0.1\n"
            "  --handshakes SEC    measure new connections per second for SEC seconds\n"
            "                      after --warmup instead: each connects, with --tls does a\n"
            "                      full handshake (no resumption), sends one request (mqd\n"
            "                      subscribe to PREFIX0, Redis PING, NATS CONNECT and PING),\n"
            "                      reads its reply and closes\n"
            "  --concurrency N     --handshakes: connections in flight (default 50)\n"
            "  --json              print one JSON object\n",
            MAX_PREFIX, HEADER_LEN);
}

static double number(const char *flag, const char *text)
{
    char *end;
    double v = strtod(text, &end);
    if (*end || v < 0) {
        fprintf(stderr, "mqd-bench: invalid value '%s' for %s\n", text, flag);
        usage(stderr);
        exit(2);
    }
    return v;
}

static enum proto proto_named(const char *name)
{
    static const char *const names[] = {[PROTO_MQD] = "mqd",
                                        [PROTO_REDIS] = "redis",
                                        [PROTO_NATS] = "nats",
                                        [PROTO_REDIS_STREAMS] = "redis-streams"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return (enum proto)i;
    fprintf(stderr, "mqd-bench: unknown protocol '%s'\n", name);
    usage(stderr);
    exit(2);
}

static void parse_args(int argc, char **argv, struct config *c)
{
    *c = (struct config){.subscribers = 100,
                         .publishers = 1,
                         .topics = 1,
                         .size = 64,
                         .window = 256,
                         .duration = 5,
                         .warmup = 1,
                         .prefix = "t",
                         .concurrency = 50};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strcmp(a, "--idle") == 0) {
            c->idle = true;
            continue;
        }
        if (strcmp(a, "--tls") == 0) {
            c->tls = true;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "mqd-bench: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            exit(2);
        }
        i++;
        if (strcmp(a, "--port") == 0)
            c->port = (unsigned)number(a, v);
        else if (strcmp(a, "--proto") == 0)
            c->proto = proto_named(v);
        else if (strcmp(a, "--subscribers") == 0)
            c->subscribers = (size_t)number(a, v);
        else if (strcmp(a, "--publishers") == 0)
            c->publishers = (size_t)number(a, v);
        else if (strcmp(a, "--topics") == 0)
            c->topics = (size_t)number(a, v);
        else if (strcmp(a, "--size") == 0)
            c->size = (size_t)number(a, v);
        else if (strcmp(a, "--window") == 0)
            c->window = (size_t)number(a, v);
        else if (strcmp(a, "--duration") == 0)
            c->duration = number(a, v);
        else if (strcmp(a, "--warmup") == 0)
            c->warmup = number(a, v);
        else if (strcmp(a, "--rate") == 0)
            c->rate = number(a, v);
        else if (strcmp(a, "--server-pid") == 0)
            c->server_pid = (long)number(a, v);
        else if (strcmp(a, "--prefix") == 0)
            c->prefix = v;
        else if (strcmp(a, "--fill") == 0)
            c->fill = (size_t)number(a, v);
        else if (strcmp(a, "--maxlen") == 0)
            c->maxlen = (size_t)number(a, v);
        else if (strcmp(a, "--nats-ping") == 0)
            c->nats_ping = (size_t)number(a, v);
        else if (strcmp(a, "--tls-ca") == 0)
            c->tls_ca = v;
        else if (strcmp(a, "--handshakes") == 0)
            c->handshakes = number(a, v);
        else if (strcmp(a, "--concurrency") == 0)
            c->concurrency = (size_t)number(a, v);
        else {
            fprintf(stderr, "mqd-bench: unknown option '%s'\n", a);
            usage(stderr);
            exit(2);
        }
    }
    if (!c->port || c->size < HEADER_LEN || !c->topics || !c->window ||
        (c->publishers == 0 && !c->idle) || strlen(c->prefix) > MAX_PREFIX) {
        fprintf(stderr,
                "mqd-bench: need --port, --size >= %d, --prefix of at most %d bytes, and "
                "topics, window, publishers > 0\n",
                HEADER_LEN, MAX_PREFIX);
        exit(2);
    }
    if ((c->tls_ca && !c->tls) || (c->nats_ping && c->proto != PROTO_NATS) || !c->concurrency) {
        fprintf(stderr, "mqd-bench: --tls-ca needs --tls, --nats-ping needs --proto nats, "
                        "--concurrency must be > 0\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    static struct bench b;
    parse_args(argc, argv, &b.cfg);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (b.cfg.tls) {
        /* a write to a closed connection fails with its reason, not a silent death */
        signal(SIGPIPE, SIG_IGN);
        b.tls = tls_context(&b.cfg);
    }
    if (b.cfg.handshakes > 0)
        run_handshakes(&b);
    else if (b.cfg.idle)
        run_idle(&b);
    else if (b.cfg.fill)
        run_fill(&b);
    else
        run_load(&b);
    return 0;
}
