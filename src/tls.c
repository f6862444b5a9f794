#include "mqd/tls.h"

#include "mqd/alloc.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHY_LEN 160
/* what one writev gathers, written one record (RECORD_MAX) at a time */
#define GATHER_MAX (64 * 1024)
#define RECORD_MAX (16 * 1024)

struct tls_server {
    struct tls_config config;
    SSL_CTX *ctx;
    BIO_METHOD *gather;        /* the write side of every connection (gather_write) */
    struct log_limit failures; /* handshakes that failed, one WARN a second */
};

struct tls_transport {
    struct transport base;
    struct tls_server *server;
    SSL *ssl;
    uint32_t wants;   /* EPOLLIN/EPOLLOUT the library waits for */
    bool established; /* the handshake is done */
    bool starved;     /* the last read waited for the peer: what is pending
                       * inside is a record not whole yet, not bytes to read */
    bool failed_in_handshake;
    bool fatal; /* a failure after which no close_notify may be sent */
    /* records made and not yet sent: the BIO gathers a pass's records so
     * that they leave in one send(), not one each */
    char *out;
    size_t out_len, out_off;
    int out_errno; /* a send that failed */
    char addr[64];
    char why[WHY_LEN];
};

static void *counted_malloc(size_t num, const char *file, int line)
{
    (void)file;
    (void)line;
    return mqd_malloc(num);
}

static void *counted_realloc(void *addr, size_t num, const char *file, int line)
{
    (void)file;
    (void)line;
    return mqd_realloc(addr, num);
}

static void counted_free(void *addr, const char *file, int line)
{
    (void)file;
    (void)line;
    mqd_free(addr);
}

int tls_count_memory(void)
{
    return CRYPTO_set_mem_functions(counted_malloc, counted_realloc, counted_free) ? 0 : -1;
}

/* library_reason: the library's last error as text (and its queue cleared) */
static void library_reason(char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, len);
    else
        snprintf(out, len, "%s", "no reason given");
    ERR_clear_error();
}

/* make_context: a server context from the configured files */
static SSL_CTX *make_context(const struct tls_config *c, char *err, size_t err_len)
{
    char why[WHY_LEN];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        library_reason(why, sizeof(why));
        snprintf(err, err_len, "cannot make a TLS context: %s", why);
        return NULL;
    }
    const char *step = "TLS versions";
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        goto fail;
    step = c->cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1)
        goto fail;
    step = c->key;
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (c->ca) {
        step = c->ca;
        if (SSL_CTX_load_verify_locations(ctx, c->ca, NULL) != 1)
            goto fail;
    }
    if (c->verify_clients)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* sessions resume only in the context that made them: without an id,
     * a resuming client is refused as soon as client certificates count */
    static const unsigned char session_context[] = "mqd";
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1);
    /* writes of the gather list as it is: a retry may come from another
     * buffer holding the same bytes, and each record written counts */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* read what the socket has, several records at once, in one syscall:
     * the records then wait decoded inside, which the loop is told of */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* a peer that closes without a close_notify ends its input as a plain
     * close does: lines are whole or not at all, so a cut cannot forge one */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return ctx;
fail:
    library_reason(why, sizeof(why));
    snprintf(err, err_len, "TLS: %s: %s", step, why);
    SSL_CTX_free(ctx);
    return NULL;
}

/* warn_if_readable: a private key others may read is said at start */
static void warn_if_readable(const struct tls_config *c)
{
    struct stat st;
    if (stat(c->key, &st) == 0 && (st.st_mode & 077))
        log_warn(c->log, "TLS key %s can be read by others (mode %03o): chmod 600 it", c->key,
                 (unsigned)(st.st_mode & 0777));
}

/* send_out: sends what the records gathered; 1 when all went, 0 when the
 * socket is full, -1 when it failed (out_errno) */
static int send_out(struct tls_transport *t)
{
    while (t->out_off < t->out_len) {
        ssize_t n = send(t->base.fd, t->out + t->out_off, t->out_len - t->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            t->out_off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else if (n < 0 && errno != EINTR) {
            t->out_errno = errno;
            return -1;
        }
    }
    mqd_free(t->out); /* an idle connection keeps no buffer */
    t->out = NULL;
    t->out_len = t->out_off = 0;
    return 1;
}

/* gather_write: the library's records, kept to be sent together. It takes
 * every record whole (tls_writev bounds how many it makes), so the library
 * never holds one to retry: another write, a WebSocket's pong between its
 * messages, may come next with other bytes. */
static int gather_write(BIO *b, const char *data, int len)
{
    struct tls_transport *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->out_errno) {
        errno = t->out_errno;
        return -1;
    }
    if (t->out_off > 0) { /* what went is dropped from the front */
        memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
        t->out_len -= t->out_off;
        t->out_off = 0;
    }
    char *grown = mqd_realloc(t->out, t->out_len + (size_t)len);
    if (!grown) {
        errno = ENOMEM; /* the connection fails */
        return -1;
    }
    memcpy(grown + t->out_len, data, (size_t)len);
    t->out = grown;
    t->out_len += (size_t)len;
    return len;
}

static long gather_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct tls_transport *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: { /* the end of a handshake flight */
        BIO_clear_retry_flags(b);
        int sent = send_out(t);
        if (sent == 0)
            BIO_set_retry_write(b);
        return sent > 0 ? 1 : sent;
    }
    case BIO_CTRL_WPENDING: return (long)(t->out_len - t->out_off);
    case BIO_CTRL_PENDING: return 0;
    default: return 0;
    }
}

static int gather_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* new_gather_method: the BIO kind of gather_write */
static BIO_METHOD *new_gather_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mqd gather");
    if (m && (!BIO_meth_set_write(m, gather_write) || !BIO_meth_set_ctrl(m, gather_ctrl) ||
              !BIO_meth_set_create(m, gather_create))) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

struct tls_server *tls_server_new(const struct tls_config *config, char *err, size_t err_len)
{
    struct tls_server *s = mqd_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->config = *config;
    if (!(s->gather = new_gather_method())) {
        snprintf(err, err_len, "out of memory");
        mqd_free(s);
        return NULL;
    }
    if (!(s->ctx = make_context(config, err, err_len))) {
        BIO_meth_free(s->gather);
        mqd_free(s);
        return NULL;
    }
    warn_if_readable(config);
    return s;
}

int tls_server_reload(struct tls_server *s, char *err, size_t err_len)
{
    SSL_CTX *ctx = make_context(&s->config, err, err_len);
    if (!ctx)
        return -1;
    SSL_CTX_free(s->ctx); /* connections hold their own reference to the old one */
    s->ctx = ctx;
    warn_if_readable(&s->config);
    return 0;
}

void tls_server_free(struct tls_server *s)
{
    if (!s)
        return;
    SSL_CTX_free(s->ctx);
    BIO_meth_free(s->gather);
    mqd_free(s);
}

/* failure: a call that did not go through, as errno and events; -1 */
static ssize_t failure(struct tls_transport *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret);
    t->wants = 0;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        t->wants = EPOLLIN;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        t->wants = EPOLLOUT;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: return 0; /* the peer's close_notify */
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            errno = ECONNRESET; /* the peer went without a close_notify */
        snprintf(t->why, sizeof(t->why), "%s", strerror(errno));
        break;
    default:
        library_reason(t->why, sizeof(t->why));
        errno = EPROTO;
        break;
    }
    if (!t->established)
        t->failed_in_handshake = true;
    t->fatal = true;
    ERR_clear_error();
    return -1;
}

/* handshake_failed: said, at most once a second */
static void handshake_failed(struct tls_transport *t)
{
    uint64_t held;
    if (log_limit_allow(&t->server->failures, &held))
        log_warn(t->server->config.log,
                 "client %s: TLS handshake failed: %s (%llu similar not "
                 "logged)",
                 t->addr, t->why, (unsigned long long)held);
}

static ssize_t tls_read(struct transport *base, void *buf, size_t len)
{
    struct tls_transport *t = (struct tls_transport *)base;
    if (t->out && send_out(t) < 0) { /* records waiting go first */
        errno = t->out_errno;
        snprintf(t->why, sizeof(t->why), "%s", strerror(errno));
        t->fatal = true;
        return -1;
    }
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    t->established |= SSL_is_init_finished(t->ssl) != 0;
    if (n > 0) {
        t->wants = 0;
        t->starved = false;
        return n;
    }
    t->starved = true;
    ssize_t r = failure(t, n);
    if (r < 0 && errno != EAGAIN && t->failed_in_handshake)
        handshake_failed(t);
    return r;
}

static ssize_t tls_writev(struct transport *base, const struct iovec *iov, size_t n)
{
    struct tls_transport *t = (struct tls_transport *)base;
    if (!t->established) {
        errno = EAGAIN; /* the reads drive the handshake; nothing is queued before it */
        return -1;
    }
    char gathered[GATHER_MAX];
    size_t len = 0;
    for (size_t i = 0; i < n && len < GATHER_MAX; i++) {
        size_t take = iov[i].iov_len < GATHER_MAX - len ? iov[i].iov_len : GATHER_MAX - len;
        memcpy(gathered + len, iov[i].iov_base, take);
        len += take;
    }
    /* record by record until the socket is full: a retry starts at the
     * same front of the queue, so it repeats a record that could not go
     * with at least its bytes, as OpenSSL wants */
    size_t taken = 0;
    while (taken < len) {
        /* a gather's worth waits already: it goes first, or nothing more is
         * made of the queue (no record is ever left to retry) */
        if (t->out_len - t->out_off >= GATHER_MAX && send_out(t) == 0 &&
            t->out_len - t->out_off >= GATHER_MAX)
            break;
        size_t chunk = len - taken < RECORD_MAX ? len - taken : RECORD_MAX;
        ERR_clear_error();
        int done = SSL_write(t->ssl, gathered + taken, (int)chunk);
        if (done <= 0) {
            ssize_t r = failure(t, done);
            if (taken > 0 && r < 0 && errno == EAGAIN)
                break; /* what went, went: the rest is retried */
            if (r == 0)
                errno = EPIPE; /* closed while written to */
            return -1;
        }
        taken += (size_t)done;
    }
    if (send_out(t) < 0 && taken == 0) {
        errno = t->out_errno;
        t->fatal = true;
        return -1;
    }
    if (taken == 0 && len > 0) { /* the socket is full */
        t->wants = EPOLLOUT;
        errno = EAGAIN;
        return -1;
    }
    /* records still waiting for the socket: the loop writes them on */
    t->wants = t->out ? EPOLLOUT : taken == len ? 0 : t->wants;
    return (ssize_t)taken;
}

static uint32_t tls_events(const struct transport *base)
{
    const struct tls_transport *t = (const struct tls_transport *)base;
    return t->wants | (t->out ? EPOLLOUT : 0);
}

static bool tls_buffered(const struct transport *base)
{
    const struct tls_transport *t = (const struct tls_transport *)base;
    /* with read-ahead, a record still arriving counts as pending too: only
     * after a read that returned bytes is there surely more to read */
    return !t->starved && SSL_has_pending(t->ssl) != 0;
}

static const char *tls_why(const struct transport *base)
{
    const struct tls_transport *t = (const struct tls_transport *)base;
    return t->why[0] ? t->why : NULL;
}

static void tls_free(struct transport *base)
{
    struct tls_transport *t = (struct tls_transport *)base;
    if (t->established && !t->fatal)
        (void)SSL_shutdown(t->ssl); /* a close_notify if the socket takes it now */
    if (!t->fatal)
        (void)send_out(t); /* and what is left, as far as the socket takes it */
    ERR_clear_error();
    SSL_free(t->ssl);
    close(t->base.fd);
    mqd_free(t->out);
    mqd_free(t);
}

static bool tls_handshaking(const struct transport *base)
{
    return !((const struct tls_transport *)base)->established;
}

static const struct transport_ops tls_ops = {
    .name = "TLS",
    .read = tls_read,
    .writev = tls_writev,
    .events = tls_events,
    .buffered = tls_buffered,
    .why = tls_why,
    .handshaking = tls_handshaking,
    .free = tls_free,
};

struct transport *tls_transport_new(struct tls_server *s, int fd, const char *addr)
{
    struct tls_transport *t = mqd_calloc(1, sizeof(*t));
    SSL *ssl = t ? SSL_new(s->ctx) : NULL;
    BIO *in = ssl ? BIO_new_socket(fd, BIO_NOCLOSE) : NULL;
    BIO *out = in ? BIO_new(s->gather) : NULL;
    if (!out) {
        BIO_free(in);
        SSL_free(ssl);
        mqd_free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(out, t);
    SSL_set_bio(ssl, in, out); /* the SSL owns both from here */
    SSL_set_accept_state(ssl);
    t->base.ops = &tls_ops;
    t->base.fd = fd;
    t->server = s;
    t->ssl = ssl;
    t->wants = EPOLLIN; /* the ClientHello */
    snprintf(t->addr, sizeof(t->addr), "%s", addr);
    return &t->base;
}
