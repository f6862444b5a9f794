/* ws: the WebSocket transport over a scripted one: the upgrade, frames
 * read, and lines written as frames however little the socket takes at a
 * time (each cut inside a header or a payload resumes where it stopped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
#include "mqd/utf8.h"
#include "mqd/ws.h"

/* fake: a transport reading a script and taking at most max_write bytes
 * a write, into `out` */
struct fake {
    struct transport base;
    const char *in;
    size_t in_len, in_off;
    char *out;
    size_t out_len, out_cap;
    size_t max_write;
};

static ssize_t fake_read(struct transport *t, void *buf, size_t len)
{
    struct fake *f = (struct fake *)t;
    if (f->in_off == f->in_len) {
        errno = EAGAIN;
        return -1;
    }
    size_t n = f->in_len - f->in_off < len ? f->in_len - f->in_off : len;
    memcpy(buf, f->in + f->in_off, n);
    f->in_off += n;
    return (ssize_t)n;
}

static ssize_t fake_writev(struct transport *t, const struct iovec *iov, size_t n)
{
    struct fake *f = (struct fake *)t;
    size_t took = 0;
    for (size_t i = 0; i < n && took < f->max_write; i++) {
        size_t take = iov[i].iov_len < f->max_write - took ? iov[i].iov_len : f->max_write - took;
        if (f->out_len + take > f->out_cap) {
            f->out_cap = (f->out_len + take) * 2;
            f->out = realloc(f->out, f->out_cap);
        }
        memcpy(f->out + f->out_len, iov[i].iov_base, take);
        f->out_len += take;
        took += take;
    }
    if (took == 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)took;
}

static uint32_t fake_events(const struct transport *t)
{
    (void)t;
    return 0;
}
static bool fake_no(const struct transport *t)
{
    (void)t;
    return false;
}
static const char *fake_why(const struct transport *t)
{
    (void)t;
    return NULL;
}
static void fake_free(struct transport *t) { free(((struct fake *)t)->out); }

static const struct transport_ops fake_ops = {"fake",  fake_read, fake_writev, fake_events,
                                              fake_no, fake_why,  fake_no,     fake_free};

static const char upgrade[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";
static const struct log quiet = {LOG_LEVEL_ERROR, NULL, NULL};
static const struct ws_config config = {NULL, &quiet};

/* opened: a WebSocket transport over `f`, past its upgrade, `f` emptied */
static struct transport *opened(struct fake *f, const char *more, size_t more_len)
{
    static char script[4096];
    memcpy(script, upgrade, sizeof(upgrade) - 1);
    memcpy(script + sizeof(upgrade) - 1, more, more_len);
    *f = (struct fake){.base = {&fake_ops, 3},
                       .in = script,
                       .in_len = sizeof(upgrade) - 1 + more_len,
                       .max_write = SIZE_MAX};
    struct transport *t = ws_transport_new(&f->base, &config, "127.0.0.1:1");
    assert_non_null(t);
    assert_true(transport_handshaking(t));
    return t;
}

static void the_upgrade_is_answered_101_with_the_rfc_s_key(void **state)
{
    (void)state;
    struct fake f;
    struct transport *t = opened(&f, "", 0);
    char buf[64];
    assert_int_equal(transport_read(t, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
    assert_false(transport_handshaking(t));
    const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_int_equal(f.out_len, sizeof(want) - 1);
    assert_memory_equal(f.out, want, sizeof(want) - 1);
    char key[29];
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, key);
    assert_string_equal(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    transport_free(t);
}

/* masked: a client's frame */
static size_t masked(unsigned char *out, unsigned opcode, bool fin, const char *payload, size_t len)
{
    static const unsigned char key[4] = {1, 2, 3, 4};
    size_t n = 0;
    out[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    out[n++] = (unsigned char)(0x80 | len); /* short ones only */
    memcpy(out + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n++] = (unsigned char)payload[i] ^ key[i % 4];
    return n;
}

static void messages_are_read_as_lines(void **state)
{
    (void)state;
    unsigned char frames[512];
    size_t n = masked(frames, 1, true, "one", 3);
    n += masked(frames + n, 1, false, "tw", 2); /* fragmented, a ping inside */
    n += masked(frames + n, 9, true, "p", 1);
    n += masked(frames + n, 0, true, "o", 1);
    struct fake f;
    struct transport *t = opened(&f, (const char *)frames, n);
    char buf[64];
    ssize_t got = transport_read(t, buf, sizeof(buf));
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "one\ntwo\n", 8);
    /* the pong went out after the 101 */
    const char *pong = memmem(f.out, f.out_len, "\x8a\x01p", 3);
    assert_non_null(pong);
    transport_free(t);
}

/* written_as_frames: lines of these sizes written through `t` as a queue
 * would, the socket taking `max_write` bytes a time; what came out must
 * be their frames, in order */
static void written_as_frames(size_t max_write)
{
    static const size_t sizes[] = {1, 125, 126, 127, 65535, 65536, 70000, 3};
    enum { LINES = sizeof(sizes) / sizeof(sizes[0]) };
    struct fake f;
    struct transport *t = opened(&f, "", 0);
    char scratch[8];
    (void)transport_read(t, scratch, sizeof(scratch));
    f.out_len = 0;
    f.max_write = max_write;
    char *lines[LINES];
    for (size_t i = 0; i < LINES; i++) {
        lines[i] = malloc(sizes[i] + 2);
        memset(lines[i], 'a' + (int)i, sizes[i]);
        memcpy(lines[i] + sizes[i], "\r\n", 2);
    }
    size_t first = 0, offset = 0; /* the queue's front */
    while (first < LINES) {
        struct iovec iov[LINES];
        size_t n = 0;
        for (size_t i = first; i < LINES; i++, n++)
            iov[n] = (struct iovec){lines[i] + (i == first ? offset : 0),
                                    sizes[i] + 2 - (i == first ? offset : 0)};
        ssize_t took = transport_writev(t, iov, n);
        if (took < 0) {
            assert_int_equal(errno, EAGAIN); /* a header's bytes only: again */
            continue;
        }
        offset += (size_t)took;
        while (first < LINES && offset >= sizes[first] + 2)
            offset -= sizes[first++] + 2;
    }
    size_t at = 0;
    for (size_t i = 0; i < LINES; i++) {
        const unsigned char *h = (const unsigned char *)f.out + at;
        assert_true(at + 2 <= f.out_len);
        assert_int_equal(h[0], 0x81);
        size_t len = h[1], head = 2;
        if (len == 126) {
            len = (size_t)h[2] << 8 | h[3];
            head = 4;
        } else if (len == 127) {
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | h[2 + k];
            head = 10;
        }
        assert_int_equal(len, sizes[i]);
        assert_memory_equal(f.out + at + head, lines[i], len);
        at += head + len;
        free(lines[i]);
    }
    assert_int_equal(at, f.out_len);
    transport_free(t);
}

static void lines_go_out_whole_however_the_socket_takes_them(void **state)
{
    (void)state;
    static const size_t takes[] = {1, 2, 3, 4, 5, 7, 9, 11, 13, 4096, 65537, SIZE_MAX};
    for (size_t i = 0; i < sizeof(takes) / sizeof(takes[0]); i++)
        written_as_frames(takes[i]);
}

static size_t text_len(const char *s) { return s ? strlen(s) : 0; }

static void origins(void **state)
{
    (void)state;
    struct ws_config same = {NULL, &quiet},
                     listed = {"https://a.example,http://b.example:8", &quiet}, any = {"*", &quiet};
#define ALLOWED(c, o, h) ws_origin_allowed(&(c), (o), text_len(o), (h), strlen(h))
    assert_true(ALLOWED(same, "http://h:1", "h:1"));
    assert_true(ALLOWED(same, "https://H:1", "h:1"));
    assert_false(ALLOWED(same, "http://h:2", "h:1"));
    assert_false(ALLOWED(same, "http://evil", "h:1"));
    assert_false(ALLOWED(same, "null", "h:1"));
    assert_true(ALLOWED(same, NULL, "h:1"));
    assert_true(ALLOWED(listed, "https://a.example", "x"));
    assert_true(ALLOWED(listed, "http://b.example:8", "x"));
    assert_false(ALLOWED(listed, "https://a.example.evil", "x"));
    assert_false(ALLOWED(listed, "https://a.exampl", "x"));
    assert_false(ALLOWED(listed, "http://x", "x"));
    assert_true(ALLOWED(listed, NULL, "x"));
    assert_true(ALLOWED(any, "http://anything", "x"));
#undef ALLOWED
}

static void utf8_in_pieces_agrees_with_whole(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "plain",
        "h\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80!",
        "\xed\x9f\xbf",
        "\xed\xa0\x80",     /* a surrogate */
        "\xc0\xaf",         /* overlong */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "ab\xc3",           /* cut */
        "\xe2\x82",         /* cut */
        "\x80",             /* a lone continuation */
        "a\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9z",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t len = strlen(texts[i]);
        bool whole = utf8_valid(texts[i], len);
        for (size_t cut1 = 0; cut1 <= len; cut1++) {
            for (size_t cut2 = cut1; cut2 <= len; cut2++) {
                struct utf8_stream u = {0};
                bool ok = utf8_stream_feed(&u, texts[i], cut1) &&
                          utf8_stream_feed(&u, texts[i] + cut1, cut2 - cut1) &&
                          utf8_stream_feed(&u, texts[i] + cut2, len - cut2);
                ok = utf8_stream_end(&u) && ok;
                if (ok != whole)
                    fail_msg("text %zu cut at %zu and %zu: %d, whole %d", i, cut1, cut2, ok, whole);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_upgrade_is_answered_101_with_the_rfc_s_key),
        cmocka_unit_test(messages_are_read_as_lines),
        cmocka_unit_test(lines_go_out_whole_however_the_socket_takes_them),
        cmocka_unit_test(origins),
        cmocka_unit_test(utf8_in_pieces_agrees_with_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
