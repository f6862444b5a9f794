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
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#define MAX_PREFIX 64 /* commands are built in fixed buffers */
#define STREAM_ID_LEN 48 /* "ms-seq", two 64-bit numbers */

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
};

/* redis-streams subscribers: where the reader is in the reply to its one
 * outstanding command (XREVRANGE when subscribing, XREAD after). An entry
 * has one field, so it is always eight lines: *2, $len, id, *2, $1, m,
 * $len, payload. */
struct stream_reader {
    size_t head_left;    /* XREAD's lines before the entry count: *1, *2, $len, key */
    size_t entries_left; /* 0: the next line after the head is the entry count */
    size_t line;         /* line inside the current entry */
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
    struct stream_reader stream;
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
        char c = in[i];
        v = v * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
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

static void flush_out(struct bench *b, struct client *c)
{
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = write(c->fd, c->out + done, c->out_len - done);
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
    struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c};
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
        n = snprintf(line, sizeof(line), "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                     strlen(topic), topic);
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
    default: n = snprintf(line, sizeof(line), "SUB %s %zu\r\n", topic, c->id + 1); break;
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
 * command with +OK, as mqd and Redis answer every publish */
static void append_connect(struct client *c)
{
    static const char line[] = "CONNECT {\"verbose\":true,\"pedantic\":false}\r\n";
    out_append(c, line, sizeof(line) - 1);
    c->replies_wanted++;
}

/* append_send: one publish of a fresh payload to topic t. */
static void append_send(struct bench *b, struct client *c, size_t t)
{
    const char *topic = b->topic_names[t];
    size_t tlen = strlen(topic), size = b->cfg.size;
    char head[256]; /* fits any command with a prefix of MAX_PREFIX */
    int n;
    switch (b->cfg.proto) {
    case PROTO_MQD:
        n = snprintf(head, sizeof(head), "{\"command\":\"send\",\"topic\":\"%s\",\"msg\":\"",
                     topic);
        break;
    case PROTO_REDIS:
        n = snprintf(head, sizeof(head), "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                     tlen, topic, size);
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
    }
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

/* on_nats_line: NATS sends +OK for each command, and a message as a MSG
 * line followed by its payload line. */
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
    } else if (len >= 4 && memcmp(line, "-ERR", 4) == 0) {
        fprintf(stderr, "mqd-bench: nats: %.*s\n", (int)len, line);
        exit(1);
    } /* INFO, PONG: nothing to do */
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
static void on_stream_entry_line(struct bench *b, struct client *c, const char *line,
                                 size_t len)
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
    const char *msg = memmem(line, len, "\"msg\":\"", 7);
    if (msg)
        on_payload(b, c, msg + 7, len - (size_t)(msg + 7 - line));
}

static void read_client(struct bench *b, struct client *c)
{
    ssize_t n = read(c->fd, b->read_buf, sizeof(b->read_buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
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
    snprintf(b->xadd_trim, sizeof(b->xadd_trim), "$6\r\nMAXLEN\r\n$1\r\n~\r\n$%d\r\n%s\r\n",
             len, n);
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
        c->publisher = i >= cfg->subscribers;
        c->id = c->publisher ? i - cfg->subscribers : i;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
        if (cfg->proto == PROTO_NATS)
            append_connect(c);
        if (c->publisher) {
            c->ring = xcalloc(cfg->window, sizeof(size_t));
            c->seq = xcalloc(cfg->topics, sizeof(uint64_t));
            c->next_topic = c->id % cfg->topics;
        } else {
            c->last_seq = xcalloc(cfg->publishers, sizeof(uint64_t));
            size_t t = i % cfg->topics;
            b->subs_per_topic[t]++;
            c->replies_wanted++;
            append_subscribe(b, c, b->topic_names[t]);
        }
        if (c->out_len)
            flush_out(b, c);
    }
}

static void handle_events(struct bench *b, int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait(b->epoll_fd, events, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == &b->timer_fd) {
            uint64_t ticks;
            if (read(b->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                die("timerfd");
            continue;
        }
        struct client *c = events[i].data.ptr;
        if (events[i].events & EPOLLOUT)
            flush_out(b, c);
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            read_client(b, c);
    }
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

static void drain(struct bench *b)
{
    b->publishing = false;
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
            ", \"duplicated\": %" PRIu64 ", \"cpu_percent\": %.0f, \"server_rss_kib\": %ld}\n",
            pub, del, mb, p50, p99, p999, b->total.acked, b->total.delivered, b->expected, b->lost,
            b->duplicated, 100 * cpu / seconds, rss);
        return;
    }
    printf(
        "published %.0f msg/s, delivered %.0f msg/s (%.1f MB/s), latency p50 %.1f us p99 %.1f us "
        "p99.9 %.1f us, lost %" PRIu64 ", duplicated %" PRIu64 ", bench cpu %.0f%%, server rss "
        "%ld KiB\n",
        pub, del, mb, p50, p99, p999, b->lost, b->duplicated, 100 * cpu / seconds, rss);
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
    static const char *const names[] = {[PROTO_MQD] = "mqd", [PROTO_REDIS] = "redis",
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
                         .prefix = "t"};
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
    if (b.cfg.idle)
        run_idle(&b);
    else if (b.cfg.fill)
        run_fill(&b);
    else
        run_load(&b);
    return 0;
}
