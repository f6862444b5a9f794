#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* tls_reason: the library's last error, as text */
static void tls_reason(char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, len);
    else
        snprintf(out, len, "%s", errno ? strerror(errno) : "the server closed the connection");
    ERR_clear_error();
}

/* make_context: TLS 1.2 or 1.3, the server checked, a client certificate
 * if given */
static SSL_CTX *make_context(const struct endpoint *at, char *err, size_t err_size)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((at->tls_ca ? SSL_CTX_load_verify_locations(ctx, at->tls_ca, NULL)
                    : SSL_CTX_set_default_verify_paths(ctx)) != 1)
        goto fail;
    if (at->tls_cert && (SSL_CTX_use_certificate_chain_file(ctx, at->tls_cert) != 1 ||
                         SSL_CTX_use_PrivateKey_file(ctx, at->tls_key, SSL_FILETYPE_PEM) != 1))
        goto fail;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
fail:
    tls_reason(why, sizeof(why));
    snprintf(err, err_size, "TLS: %s", why);
    SSL_CTX_free(ctx);
    return NULL;
}

/* handshake: blocking, then the socket back to non-blocking */
static int handshake(struct link *l, const struct endpoint *at, char *err, size_t err_size)
{
    char why[256];
    SSL *ssl = SSL_new(l->ctx);
    int flags = fcntl(l->fd, F_GETFL);
    if (!ssl || SSL_set_fd(ssl, l->fd) != 1 || !SSL_set_tlsext_host_name(ssl, at->host) ||
        !SSL_set1_host(ssl, at->host) || fcntl(l->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        tls_reason(why, sizeof(why));
        snprintf(err, err_size, "TLS: %s", why);
        SSL_free(ssl);
        return -1;
    }
    errno = 0;
    if (SSL_connect(ssl) != 1) {
        long verify = SSL_get_verify_result(ssl);
        tls_reason(why, sizeof(why));
        snprintf(err, err_size, "TLS handshake with %s:%s failed: %s", at->host, at->port,
                 verify != X509_V_OK ? X509_verify_cert_error_string(verify) : why);
        SSL_free(ssl);
        return -1;
    }
    fcntl(l->fd, F_SETFL, flags);
    l->ssl = ssl;
    return 0;
}

int link_open(struct link *l, const struct endpoint *at, char *err, size_t err_size)
{
    memset(l, 0, sizeof(*l));
    l->fd = dial(at, err, err_size);
    if (l->fd < 0)
        return -1;
    if (!at->tls)
        return 0;
    if (!(l->ctx = make_context(at, err, err_size)) || handshake(l, at, err, err_size) < 0) {
        link_close(l);
        return -1;
    }
    return 0;
}

/* tls_result: a TLS call's result as read(2) or send(2) would give it */
static ssize_t tls_result(struct link *l, int n)
{
    l->want_write = false;
    if (n > 0)
        return n;
    switch (SSL_get_error(l->ssl, n)) {
    case SSL_ERROR_WANT_WRITE: l->want_write = true; /* fall through */
    case SSL_ERROR_WANT_READ: errno = EAGAIN; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0; /* the server went without a close_notify: an end all the same */
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

ssize_t link_read(struct link *l, void *buf, size_t len)
{
    if (!l->ssl)
        return read(l->fd, buf, len);
    errno = 0;
    return tls_result(l, SSL_read(l->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len));
}

ssize_t link_write(struct link *l, const void *data, size_t len)
{
    if (!l->ssl)
        return send(l->fd, data, len, MSG_NOSIGNAL);
    errno = 0;
    return tls_result(l, SSL_write(l->ssl, data, len > 1 << 30 ? 1 << 30 : (int)len));
}

bool link_pending(const struct link *l) { return l->ssl && SSL_pending(l->ssl) > 0; }

int link_shutdown_write(struct link *l)
{
    if (!l->ssl)
        return shutdown(l->fd, SHUT_WR);
    (void)SSL_shutdown(l->ssl); /* its close_notify: mqd reads it as the end */
    ERR_clear_error();
    return 0;
}

void link_close(struct link *l)
{
    if (l->ssl) {
        (void)SSL_shutdown(l->ssl);
        SSL_free(l->ssl);
    }
    SSL_CTX_free(l->ctx);
    if (l->fd >= 0)
        close(l->fd);
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}
