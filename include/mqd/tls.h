/*
 * tls: TLS for client connections with OpenSSL 3, non-blocking, in the
 * loop: a server context (certificate, key, optional client CA) and a
 * transport (transport.h) per connection.
 *
 * Versions TLS 1.2 and 1.3 only, with the library's default ciphers. The
 * handshake happens inside the transport's first reads (and writes): until
 * it is done, a read says EAGAIN and the transport asks the loop for the
 * events the library waits for. The caller puts a deadline on it
 * (transport_handshaking tells whether it is still under way).
 *
 * A handshake that fails is logged once a second at most (WARN, with the
 * peer's address and the library's reason), with a count of those held
 * back. tls_server_reload builds a new context from the same files; a
 * connection keeps the context it began with, new ones get the new one,
 * and a reload that fails keeps the old one and says why.
 *
 * Writing: the records a writev makes are gathered by a write BIO of
 * mqd's own and leave in one send() (a socket BIO would write each 16 KiB
 * record apart); what the socket does not take yet stays there, and the
 * transport asks for EPOLLOUT until it has gone, so a caller must not
 * close a connection as drained while transport_events says EPOLLOUT.
 *
 * Cost: a context is built once per start and reload; a connection holds
 * an SSL object (tens of KiB with its buffers). OpenSSL allocates through
 * mqd's allocator (tls_count_memory), so --max-memory counts and bounds it
 * like everything else: a handshake that finds no memory fails alone.
 */
#ifndef MQD_TLS_H
#define MQD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "mqd/log.h"
#include "mqd/transport.h"

struct tls_config {
    const char *cert;    /* PEM certificate chain */
    const char *key;     /* PEM private key */
    const char *ca;      /* PEM CAs for client certificates; NULL: none */
    bool verify_clients; /* require a client certificate signed by `ca` */
    const struct log *log;
};

struct tls_server;

/* tls_count_memory: OpenSSL allocates through alloc.h from now on. Call it
 * first thing in main, before anything of OpenSSL allocates; 0, or -1 when
 * the library had allocated already (its memory then goes uncounted). */
int tls_count_memory(void);

/* tls_server_new: a context from the files; NULL with a one-line reason in
 * `err`. A key file that others may read is a warning. */
struct tls_server *tls_server_new(const struct tls_config *config, char *err, size_t err_len);

/* tls_server_reload: the files read again; 0, or -1 with the reason in
 * `err` (the old context stays). */
int tls_server_reload(struct tls_server *s, char *err, size_t err_len);

void tls_server_free(struct tls_server *s);

/* tls_transport_new: a server-side TLS transport over the accepted,
 * non-blocking socket `fd` from `addr` (for logs), which it owns from then
 * on; NULL when out of memory (the caller still owns `fd`). */
struct transport *tls_transport_new(struct tls_server *s, int fd, const char *addr);

#endif
