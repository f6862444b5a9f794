/*
 * link: the byte stream to the server, plain TCP or TLS, for session.h.
 *
 * link_open dials (dial.h) and, with --tls, does the TLS handshake there
 * and then, blocking (nothing else waits yet): the server's certificate is
 * checked against --tls-ca (or the system's CAs) and the host name, and
 * --tls-cert/--tls-key present a client certificate. After it, reads and
 * writes never block: -1 with EAGAIN when they would, and link_wants_write
 * tells whether TLS needs the socket writable to go on.
 */
#ifndef MQD_CLI_LINK_H
#define MQD_CLI_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "dial.h"

struct link {
    int fd;
    void *ssl;       /* SSL *, NULL over plain TCP */
    void *ctx;       /* SSL_CTX * */
    bool want_write; /* the last TLS call waits for the socket to take bytes */
};

/* link_open: connected, and with --tls shaken hands; -1 with a one-line
 * reason in `err`. */
int link_open(struct link *l, const struct endpoint *at, char *err, size_t err_size);

/* link_read, link_write: as read(2) and send(2), through TLS when on;
 * 0 from link_read is the server's end. */
ssize_t link_read(struct link *l, void *buf, size_t len);
ssize_t link_write(struct link *l, const void *data, size_t len);

/* link_pending: whether TLS holds decoded bytes a read would return now */
bool link_pending(const struct link *l);

/* link_shutdown_write: no more bytes for the server (TLS: a close_notify);
 * reading goes on. 0, or -1 with errno. */
int link_shutdown_write(struct link *l);

void link_close(struct link *l);

#endif
