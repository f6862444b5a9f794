#include "mqd/ws.h"

#include "mqd/alloc.h"
#include "mqd/http.h"
#include "mqd/utf8.h"
#include "mqd/web.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <wslay/wslay.h>

/* decoded input kept for the reader: a read stops taking frames past
 * IN_MAX, and wslay hands at most a buffer of its own (4 KiB) at a time */
#define IN_MAX (64 * 1024)
#define IN_CAP (IN_MAX + 8 * 1024)
#define HEADER_MAX 10
#define WHY_LEN 96
#define FRAMES_MAX 64 /* data frames one writev gathers */
#define CONTROL_MAX 4 /* control frames queued before reading stops */
#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum state {
    UPGRADING,  /* reading the HTTP request */
    RESPONDING, /* writing a page or an error, then the end */
    OPEN,       /* WebSocket */
};

struct ws_transport {
    struct transport base;
    struct transport *inner;
    const struct ws_config *config;
    enum state state;
    wslay_event_context_ptr ctx;
    /* UPGRADING: the request head; OPEN: what came after it, for wslay */
    char *head;
    size_t head_len, head_off;
    /* bytes to write before anything else: the 101 or a response */
    char *out;
    size_t out_len, out_off;
    /* decoded input: the text of messages, each ended by "\n" */
    char *in;
    size_t in_len;
    struct utf8_stream text;
    bool in_message;  /* a message begun (its first frame seen) and not ended */
    bool frame_fin;   /* the frame being read is its message's last */
    bool frame_data;  /* the frame being read belongs to a text message */
    bool peer_closed; /* the socket's end of input came */
    bool end_told;    /* a read said 0: the end of input is the reader's */
    int inner_errno;  /* a failure of the inner transport */
    /* a data frame begun and not all written: the rest of its header, and
     * how many bytes of its line's payload are still to go */
    unsigned char header[HEADER_MAX];
    size_t header_len;
    size_t payload_left;
    bool mid_frame;
    char addr[64];
    char why[WHY_LEN];
};

static struct ws_transport *of(struct transport *t) { return (struct ws_transport *)t; }
static const struct ws_transport *of_const(const struct transport *t)
{
    return (const struct ws_transport *)t;
}

void ws_accept_key(const char *key, size_t len, char out[29])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    char joined[128];
    size_t n = len < sizeof(joined) - sizeof(GUID) ? len : sizeof(joined) - sizeof(GUID);
    memcpy(joined, key, n);
    memcpy(joined + n, GUID, sizeof(GUID) - 1);
    (void)EVP_Digest(joined, n + sizeof(GUID) - 1, digest, &digest_len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, digest, (int)digest_len); /* 20 bytes: 28 and NUL */
}

/* host_of: the host and port of an origin ("scheme://host[:port]") */
static bool host_of(const char *origin, size_t len, const char **host, size_t *host_len)
{
    const char *sep = len >= 3 ? memmem(origin, len, "://", 3) : NULL;
    if (!sep)
        return false;
    *host = sep + 3;
    *host_len = len - (size_t)(*host - origin);
    return *host_len > 0;
}

static bool same_text(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && strncasecmp(a, b, a_len) == 0;
}

bool ws_origin_allowed(const struct ws_config *config, const char *origin, size_t origin_len,
                       const char *host, size_t host_len)
{
    if (!origin || (config->origins && strcmp(config->origins, "*") == 0))
        return true; /* no Origin: not a browser, which the rule is about */
    if (!config->origins) {
        const char *h;
        size_t h_len;
        return host_of(origin, origin_len, &h, &h_len) && same_text(h, h_len, host, host_len);
    }
    const char *p = config->origins;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (same_text(p, n, origin, origin_len))
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

/* set_why: the reason of a failure, for the log */
static void set_why(struct ws_transport *w, const char *why)
{
    if (!w->why[0])
        snprintf(w->why, sizeof(w->why), "%s", why);
}

/* queue_out: `len` bytes to write before anything else */
static int queue_out(struct ws_transport *w, const char *data, size_t len)
{
    char *grown = mqd_realloc(w->out, w->out_len + len);
    if (!grown)
        return -1;
    w->out = grown;
    memcpy(w->out + w->out_len, data, len);
    w->out_len += len;
    return 0;
}

/* push_out: writes what queue_out holds; true once it is all written */
static bool push_out(struct ws_transport *w)
{
    while (w->out_off < w->out_len) {
        struct iovec iov = {w->out + w->out_off, w->out_len - w->out_off};
        ssize_t n = transport_writev(w->inner, &iov, 1);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                w->inner_errno = errno;
            return false;
        }
        w->out_off += (size_t)n;
    }
    mqd_free(w->out);
    w->out = NULL;
    w->out_len = w->out_off = 0;
    return true;
}

/* respond: an HTTP response, then the end of the connection */
static void respond(struct ws_transport *w, unsigned status, const char *type, const char *body,
                    size_t body_len, bool head_only, const char *extra)
{
    char head[512];
    struct http_response r = {status, type, body_len, extra ? extra : "", time(NULL)};
    size_t n = http_format_head(&r, head, sizeof(head));
    w->state = RESPONDING;
    if (n >= sizeof(head) || queue_out(w, head, n) < 0 ||
        (!head_only && queue_out(w, body, body_len) < 0))
        w->inner_errno = ENOMEM;
    if (status >= 400) {
        char why[64];
        snprintf(why, sizeof(why), "WebSocket handshake refused: %u %s", status,
                 http_reason(status));
        set_why(w, why);
    }
}

static void respond_error(struct ws_transport *w, unsigned status, const char *extra)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%u %s\n", status, http_reason(status));
    respond(w, status, "text/plain; charset=utf-8", body, (size_t)n, false, extra);
}

#define PAGE_HEADERS                                                                               \
    "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"                               \
    "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "                   \
    "frame-ancestors 'none'\r\n"                                                                   \
    "Access-Control-Allow-Origin: *\r\n" /* the client module, for pages of other origins */

/* serve_page: GET or HEAD of a page of the console */
static void serve_page(struct ws_transport *w, const struct http_request *req)
{
    const struct web_file *f = web_find(req->path, req->path_len);
    if (!f)
        respond_error(w, 404, NULL);
    else if (req->method == HTTP_OTHER_METHOD)
        respond_error(w, 405, "Allow: GET, HEAD\r\n");
    else
        respond(w, 200, f->type, (const char *)f->data, f->len, req->method == HTTP_HEAD,
                PAGE_HEADERS);
}

static bool header_is(const char *head, const struct http_request *req, const char *name,
                      const char *token)
{
    const char *v;
    size_t len;
    return http_header(head, req, name, &v, &len) == 1 && http_has_token(v, len, token);
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user);
static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user);
/* make_room: the input buffer, taken when input comes (and given back when
 * it is all read), with room for `len` more bytes */
static bool make_room(struct ws_transport *w, size_t len)
{
    if (!w->in && !(w->in = mqd_malloc(IN_CAP)))
        w->inner_errno = ENOMEM;
    else if (w->in_len + len > IN_CAP)
        w->inner_errno = ENOBUFS; /* wslay hands more than it reads at once: never */
    else
        return true;
    wslay_event_shutdown_read(w->ctx);
    return false;
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user);
static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user);
static void on_frame_end(wslay_event_context_ptr ctx, void *user);

/* open_websocket: the 101, and wslay for what follows */
static void open_websocket(struct ws_transport *w, const char *key, size_t key_len)
{
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .on_frame_recv_start_callback = on_frame_start,
        .on_frame_recv_chunk_callback = on_frame_chunk,
        .on_frame_recv_end_callback = on_frame_end,
    };
    char accept[29], response[160];
    ws_accept_key(key, key_len, accept);
    int n = snprintf(response, sizeof(response),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    wslay_event_context_ptr ctx = NULL;
    if (queue_out(w, response, (size_t)n) < 0 ||
        wslay_event_context_server_init(&ctx, &callbacks, w) != 0) {
        w->inner_errno = ENOMEM; /* wslay frees what it began on a failure */
        return;
    }
    w->ctx = ctx;
    wslay_event_config_set_no_buffering(w->ctx, 1);
    w->state = OPEN;
}

/* answer_request: the request head, whole and parsed: the 101, a page or
 * an error */
static void answer_request(struct ws_transport *w, const struct http_request *req)
{
    const char *head = w->head;
    const char *key = NULL, *origin = NULL, *host = "", *version = NULL;
    size_t key_len = 0, origin_len = 0, host_len = 0, version_len = 0;
    if (!header_is(head, req, "Upgrade", "websocket")) {
        serve_page(w, req);
        return;
    }
    if (req->method != HTTP_GET || req->minor_version < 1 ||
        !header_is(head, req, "Connection", "upgrade") ||
        http_header(head, req, "Sec-WebSocket-Key", &key, &key_len) != 1 || key_len != 24) {
        respond_error(w, 400, NULL);
        return;
    }
    if (http_header(head, req, "Sec-WebSocket-Version", &version, &version_len) != 1 ||
        !same_text(version, version_len, "13", 2)) {
        respond_error(w, 426, "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    (void)http_header(head, req, "Host", &host, &host_len);
    size_t origins = http_header(head, req, "Origin", &origin, &origin_len);
    if (origins > 1 ||
        !ws_origin_allowed(w->config, origins ? origin : NULL, origin_len, host, host_len)) {
        respond_error(w, 403, NULL);
        return;
    }
    open_websocket(w, key, key_len);
}

/* upgrade: reads the request head; its answer once it is whole */
static void upgrade(struct ws_transport *w)
{
    while (w->state == UPGRADING && !w->inner_errno && !w->peer_closed) {
        if (!w->head && !(w->head = mqd_malloc(HTTP_MAX_HEAD))) {
            w->inner_errno = ENOMEM;
            return;
        }
        ssize_t n = transport_read(w->inner, w->head + w->head_len, HTTP_MAX_HEAD - w->head_len);
        if (n == 0)
            w->peer_closed = true;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            w->inner_errno = errno;
        if (n <= 0)
            return;
        w->head_len += (size_t)n;
        struct http_request req;
        enum http_parse parsed = http_parse_request(w->head, w->head_len, HTTP_MAX_HEAD, &req);
        if (parsed == HTTP_PARSE_MORE)
            continue;
        if (parsed != HTTP_PARSE_DONE) {
            respond_error(w, http_status_of(parsed, &req, "/"), NULL);
            return;
        }
        answer_request(w, &req);
        w->head_off = req.head_len; /* frames sent behind the request are wslay's */
        if (w->state != OPEN || w->head_off == w->head_len) {
            mqd_free(w->head);
            w->head = NULL;
            w->head_len = w->head_off = 0;
        }
    }
}

/* at_frame_boundary: no data frame is half written: a control frame may go */
static bool at_frame_boundary(const struct ws_transport *w) { return !w->mid_frame; }

/* closing_later: the client's close came: the close sent back waits
 * until the replies to what it sent before are written (ws_free) */
static bool closing_later(const struct ws_transport *w)
{
    return w->state == OPEN && wslay_event_get_close_received(w->ctx) &&
           !wslay_event_get_close_sent(w->ctx);
}

/* wants_control: whether wslay has control frames to send now */
static bool wants_control(const struct ws_transport *w)
{
    return w->state == OPEN && !closing_later(w) && wslay_event_want_write(w->ctx);
}

/* send_control: what wslay queued (pongs, a close), between data frames */
static int send_control(struct ws_transport *w)
{
    if (!at_frame_boundary(w) || !wants_control(w))
        return 0;
    if (wslay_event_send(w->ctx) != 0) {
        if (!w->inner_errno)
            w->inner_errno = EPIPE;
        return -1;
    }
    return 0;
}

/* ended: no more input will come (the peer closed, or the WebSocket was
 * closed or failed) */
static bool ended(const struct ws_transport *w)
{
    return w->peer_closed || w->state == RESPONDING ||
           (w->state == OPEN && !wslay_event_get_read_enabled(w->ctx));
}

static ssize_t ws_read(struct transport *t, void *buf, size_t len)
{
    struct ws_transport *w = of(t);
    if (transport_events(w->inner) & EPOLLOUT) /* bytes the inner one kept (TLS) go on */
        (void)transport_writev(w->inner, NULL, 0);
    if (w->state == UPGRADING)
        upgrade(w);
    if (w->out && !push_out(w) && !w->inner_errno) {
        errno = EAGAIN;
        return -1;
    }
    if (w->state == OPEN && w->in_len < IN_MAX && wslay_event_get_read_enabled(w->ctx)) {
        int r = wslay_event_recv(w->ctx);
        if (r != 0 && !w->inner_errno && !w->peer_closed) /* else a callback said why */
            w->inner_errno = r == WSLAY_ERR_NOMEM ? ENOMEM : EPROTO;
    }
    if (w->state == OPEN)
        (void)send_control(w);
    if (w->in_len > 0) {
        size_t n = len < w->in_len ? len : w->in_len;
        memcpy(buf, w->in, n);
        memmove(w->in, w->in + n, w->in_len - n);
        w->in_len -= n;
        if (w->in_len == 0) { /* an idle client keeps no buffer */
            mqd_free(w->in);
            w->in = NULL;
        }
        return (ssize_t)n;
    }
    if (w->inner_errno) {
        errno = w->inner_errno;
        return -1;
    }
    if (ended(w) && w->in_message) { /* a message cut short is not run */
        set_why(w, "the WebSocket ended in the middle of a message");
        errno = ECONNRESET;
        return -1;
    }
    if (ended(w) && (w->peer_closed || !wants_control(w))) {
        w->end_told = true;
        return 0; /* what was to be said is said, or cannot be any more */
    }
    errno = EAGAIN;
    return -1;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct ws_transport *w = user;
    /* the reader has enough for now, or the client's pings have piled up
     * pongs it does not read: wslay queues them on a heap of its own */
    if (w->in_len >= IN_MAX || wslay_event_get_queued_msg_count(ctx) >= CONTROL_MAX) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (w->head_off < w->head_len) { /* frames that came with the request */
        size_t n = w->head_len - w->head_off < len ? w->head_len - w->head_off : len;
        memcpy(buf, w->head + w->head_off, n);
        w->head_off += n;
        if (w->head_off == w->head_len) {
            mqd_free(w->head);
            w->head = NULL;
            w->head_len = w->head_off = 0;
        }
        return (ssize_t)n;
    }
    ssize_t n = transport_read(w->inner, buf, len);
    if (n > 0)
        return n;
    if (n == 0)
        w->peer_closed = true;
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
        w->inner_errno = errno;
    wslay_event_set_error(ctx, n < 0 && !w->inner_errno ? WSLAY_ERR_WOULDBLOCK
                                                        : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    struct ws_transport *w = user;
    struct iovec iov = {(void *)data, len};
    ssize_t n = transport_writev(w->inner, &iov, 1);
    if (n >= 0)
        return n;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        w->inner_errno = errno;
    wslay_event_set_error(ctx, w->inner_errno ? WSLAY_ERR_CALLBACK_FAILURE : WSLAY_ERR_WOULDBLOCK);
    return -1;
}

/* fail: closes the WebSocket with `code`, reading nothing more; what it
 * sent and was not read yet is dropped */
static void fail(struct ws_transport *w, uint16_t code, const char *why)
{
    set_why(w, why);
    w->in_len = 0;
    w->in_message = false;
    wslay_event_shutdown_read(w->ctx);
    (void)wslay_event_queue_close(w->ctx, code, NULL, 0);
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    (void)ctx;
    struct ws_transport *w = user;
    w->frame_data = false;
    if (arg->opcode & 0x8u)
        return; /* a control frame: wslay's */
    if (arg->opcode == WSLAY_BINARY_FRAME ||
        (arg->opcode == WSLAY_CONTINUATION_FRAME && !w->in_message)) {
        fail(w, WSLAY_CODE_UNSUPPORTED_DATA, "a binary WebSocket message");
        return;
    }
    w->in_message = true;
    w->frame_data = true;
    w->frame_fin = arg->fin;
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    (void)ctx;
    struct ws_transport *w = user;
    if (!w->frame_data || !wslay_event_get_read_enabled(w->ctx))
        return;
    if (!utf8_stream_feed(&w->text, (const char *)arg->data, arg->data_length)) {
        fail(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "a WebSocket message not UTF-8");
        return;
    }
    if (!make_room(w, arg->data_length))
        return;
    memcpy(w->in + w->in_len, arg->data, arg->data_length);
    w->in_len += arg->data_length;
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
    (void)ctx;
    struct ws_transport *w = user;
    if (!w->frame_data || !w->frame_fin || !wslay_event_get_read_enabled(w->ctx))
        return;
    w->in_message = false;
    if (!utf8_stream_end(&w->text)) {
        fail(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "a WebSocket message not UTF-8");
        return;
    }
    if (make_room(w, 1))
        w->in[w->in_len++] = '\n'; /* the message ends its line */
}

/* frame_header: a final text frame's header for `len` bytes of payload
 * (server frames are not masked); its length */
static size_t frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x80 | WSLAY_TEXT_FRAME;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* account: after the inner write took `written` bytes of the frames laid
 * out from `lines`, how many bytes of the lines are done, and where the
 * next call resumes */
static size_t account(struct ws_transport *w, const struct iovec *lines, size_t nlines,
                      unsigned char (*headers)[HEADER_MAX], const size_t *header_lens,
                      size_t written)
{
    size_t consumed = 0;
    for (size_t i = 0; i < nlines; i++) {
        size_t header = header_lens[i];
        size_t payload = lines[i].iov_len - 2; /* without its "\r\n" */
        if (written < header) {                /* stopped inside the header */
            memcpy(w->header, headers[i] + written, header - written);
            w->header_len = header - written;
            w->payload_left = payload;
            w->mid_frame = true;
            return consumed;
        }
        written -= header;
        w->header_len = 0;
        if (written < payload) { /* stopped inside the payload */
            w->payload_left = payload - written;
            w->mid_frame = true;
            return consumed + written;
        }
        written -= payload;
        consumed += payload + 2;
        w->mid_frame = false;
        w->payload_left = 0;
    }
    return consumed;
}

static ssize_t ws_writev(struct transport *t, const struct iovec *iov, size_t n)
{
    struct ws_transport *w = of(t);
    if (w->state != OPEN || w->out || send_control(w) < 0 ||
        (w->state == OPEN && wslay_event_get_close_sent(w->ctx))) {
        errno = w->inner_errno                                           ? w->inner_errno
                : w->state == OPEN && wslay_event_get_close_sent(w->ctx) ? EPIPE
                                                                         : EAGAIN;
        return -1;
    }
    if (at_frame_boundary(w) && wants_control(w)) {
        errno = EAGAIN; /* a control frame is half written */
        return -1;
    }
    /* every item is one line ended by "\r\n" (the first may be the rest of
     * one begun): a frame each, its header gathered before it */
    struct iovec out[2 * FRAMES_MAX];
    unsigned char headers[FRAMES_MAX][HEADER_MAX];
    size_t header_lens[FRAMES_MAX];
    struct iovec lines[FRAMES_MAX];
    size_t k = 0, nlines = 0;
    for (size_t i = 0; i < n && nlines < FRAMES_MAX; i++) {
        const char *line = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (len < 2)
            break; /* the last bytes of a "\r\n": not a line's start */
        size_t payload = len - 2;
        if (i == 0 && w->mid_frame) { /* the rest of a frame begun */
            if (w->header_len > 0) {
                memcpy(headers[0], w->header, w->header_len);
                out[k++] = (struct iovec){headers[0], w->header_len};
            }
            header_lens[0] = w->header_len;
            payload = w->payload_left; /* the queue resumes where the frame stopped */
        } else {
            header_lens[nlines] = frame_header(headers[nlines], payload);
            out[k++] = (struct iovec){headers[nlines], header_lens[nlines]};
        }
        if (payload > 0)
            out[k++] = (struct iovec){(void *)line, payload};
        lines[nlines++] = (struct iovec){(void *)line, payload + 2};
    }
    if (nlines == 0) {
        /* only the "\r\n" of a line whose payload is all out */
        w->mid_frame = false;
        return iov[0].iov_len > 0 ? (ssize_t)iov[0].iov_len : 0;
    }
    ssize_t written = transport_writev(w->inner, out, k);
    if (written < 0)
        return -1;
    size_t done = account(w, lines, nlines, headers, header_lens, (size_t)written);
    if (done == 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)done;
}

static uint32_t ws_events(const struct transport *t)
{
    const struct ws_transport *w = of_const(t);
    uint32_t events = transport_events(w->inner);
    if (w->out || (at_frame_boundary(w) && wants_control(w)))
        events |= EPOLLOUT;
    return events;
}

static bool ws_buffered(const struct transport *t)
{
    /* an end the reader has not heard of is news too: no socket event may
     * come to tell it (the close was decided on bytes already read) */
    const struct ws_transport *w = of_const(t);
    return w->in_len > 0 || transport_buffered(w->inner) ||
           (ended(w) && !w->end_told && !w->out && (w->peer_closed || !wants_control(w)));
}

static const char *ws_why(const struct transport *t)
{
    const struct ws_transport *w = of_const(t);
    return w->why[0] ? w->why : transport_why(w->inner);
}

static bool ws_handshaking(const struct transport *t)
{
    const struct ws_transport *w = of_const(t);
    return w->state != OPEN || transport_handshaking(w->inner);
}

static void ws_free(struct transport *t)
{
    struct ws_transport *w = of(t);
    if (w->ctx && closing_later(w) && !w->mid_frame && !w->inner_errno) {
        /* the replies are out: the close goes back now, if the socket
         * takes it (the inner transport's own end writes what it kept) */
        (void)wslay_event_send(w->ctx);
    }
    if (w->ctx)
        wslay_event_context_free(w->ctx);
    transport_free(w->inner);
    mqd_free(w->head);
    mqd_free(w->out);
    mqd_free(w->in);
    mqd_free(w);
}

static const struct transport_ops ws_ops = {
    .name = "WebSocket",
    .read = ws_read,
    .writev = ws_writev,
    .events = ws_events,
    .buffered = ws_buffered,
    .why = ws_why,
    .handshaking = ws_handshaking,
    .free = ws_free,
};

struct transport *ws_transport_new(struct transport *inner, const struct ws_config *config,
                                   const char *addr)
{
    struct ws_transport *w = mqd_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->base.ops = &ws_ops;
    w->base.fd = inner->fd;
    w->inner = inner;
    w->config = config;
    w->state = UPGRADING;
    snprintf(w->addr, sizeof(w->addr), "%s", addr);
    return &w->base;
}
