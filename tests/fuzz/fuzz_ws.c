/* fuzz_ws: whatever a client sends after its WebSocket upgrade, arriving in
 * pieces of any size, is read through the transport without reading
 * outside it, leaking or looping: the reads end (in bytes, an end or a
 * failure), what they hand on is text, and lines written back meanwhile
 * leave as frames however little the socket takes. The first byte picks
 * the piece size and the write size. */
#include "mqd/alloc.h"
#include "mqd/utf8.h"
#include "mqd/ws.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct script {
    struct transport base;
    const uint8_t *in;
    size_t len, off, piece, max_write, written;
};

static ssize_t script_read(struct transport *t, void *buf, size_t len)
{
    struct script *s = (struct script *)t;
    if (s->off == s->len)
        return 0; /* the client's end */
    size_t n = s->len - s->off;
    n = n < len ? n : len;
    n = n < s->piece ? n : s->piece;
    memcpy(buf, s->in + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static ssize_t script_writev(struct transport *t, const struct iovec *iov, size_t n)
{
    struct script *s = (struct script *)t;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    total = total < s->max_write ? total : s->max_write;
    s->written += total;
    return (ssize_t)total;
}

static uint32_t script_events(const struct transport *t)
{
    (void)t;
    return 0;
}
static bool script_no(const struct transport *t)
{
    (void)t;
    return false;
}
static const char *script_why(const struct transport *t)
{
    (void)t;
    return NULL;
}
static void script_free(struct transport *t) { (void)t; }

static const struct transport_ops script_ops = {"script",  script_read, script_writev,
                                                script_events, script_no, script_why,
                                                script_no, script_free};

static const char upgrade[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t before = mqd_allocated();
    uint8_t *in = malloc(sizeof(upgrade) - 1 + size - 1);
    memcpy(in, upgrade, sizeof(upgrade) - 1);
    memcpy(in + sizeof(upgrade) - 1, data + 1, size - 1);
    struct script s = {.base = {&script_ops, -1},
                       .in = in,
                       .len = sizeof(upgrade) - 1 + size - 1,
                       .piece = 1 + (data[0] & 0x0F) * 97,
                       .max_write = 1 + (data[0] >> 4) * 3};
    struct log quiet = {LOG_LEVEL_ERROR, NULL, NULL};
    struct ws_config config = {NULL, &quiet};
    struct transport *t = ws_transport_new(&s.base, &config, "fuzz");
    struct utf8_stream text = {0};
    static const char line[] = "{\"success\": true}\r\n";
    char buf[4096];
    size_t written = 0;
    for (size_t round = 0; round < 4 * size + 64; round++) {
        ssize_t n = transport_read(t, buf, sizeof(buf));
        if (n > 0) {
            if (!utf8_stream_feed(&text, buf, (size_t)n))
                abort(); /* only UTF-8 text is handed on */
        } else if (n == 0 || errno != EAGAIN) {
            break;
        }
        struct iovec iov = {(void *)(line + written % (sizeof(line) - 1)),
                            sizeof(line) - 1 - written % (sizeof(line) - 1)};
        ssize_t w = transport_handshaking(t) ? -1 : transport_writev(t, &iov, 1);
        if (w > 0)
            written += (size_t)w;
        if (n < 0 && s.off == s.len && w <= 0)
            break; /* all read, nothing to write: it would wait */
    }
    transport_free(t);
    free(in);
    if (mqd_allocated() != before)
        abort();
    return 0;
}
