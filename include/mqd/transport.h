/*
 * transport: a client connection's byte I/O behind one small interface, so
 * that TLS (and WebSocket over it) never spread through conn, outq and
 * server. Above it, the framing, the limits, the output queue and the
 * broker see only bytes; below it, a transport may have a handshake,
 * records and buffers of its own.
 *
 * Contract of every transport (all calls are non-blocking, on the loop's
 * thread; errno is set whenever -1 is returned):
 *   - read: up to `len` bytes of what the peer sent: > 0 bytes, 0 when the
 *     peer closed cleanly, -1 with EAGAIN when nothing can be had now (a
 *     handshake under way counts as nothing yet), -1 with another errno
 *     when the connection failed (its reason: transport_error says more).
 *   - writev: takes bytes from the front of the gather list, as writev
 *     does, and says how many (> 0), or -1 with EAGAIN when none can be
 *     taken now. A transport that returns EAGAIN after taking nothing may
 *     need the same bytes again on the next call (TLS does): callers write
 *     from the front of a queue that only grows at its end, which gives it
 *     at least those bytes. A transport may keep bytes it took (TLS
 *     gathers a pass's records into one send): it then asks for EPOLLOUT
 *     in `events` until they are gone, and its caller writes them on by
 *     reading on EPOLLOUT, and does not close a connection as drained
 *     while they wait.
 *   - events: the epoll events the transport itself needs now, beyond the
 *     caller's (a TLS handshake or renegotiation waiting to write, a write
 *     waiting for the peer's bytes). 0 for plain TCP.
 *   - buffered: whether a read would return bytes without the socket
 *     becoming readable (data decoded but not yet read): the loop must
 *     read again before it waits. False for plain TCP.
 *   - handshaking: whether the transport is still in its handshake (TLS's,
 *     a WebSocket upgrade): the caller puts a deadline on it. False for
 *     plain TCP.
 *   - why: after a failure, the transport's own words for it (TLS: the
 *     library's reason), or NULL when strerror(errno) says it all.
 *   - free: closes the socket and frees the transport.
 * The plain TCP transport costs one indirect call per read and per
 * writev, and lives inside its conn (no allocation of its own).
 */
#ifndef MQD_TRANSPORT_H
#define MQD_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct transport;

struct transport_ops {
    const char *name; /* "tcp", "TLS", "WebSocket": for logs */
    ssize_t (*read)(struct transport *t, void *buf, size_t len);
    ssize_t (*writev)(struct transport *t, const struct iovec *iov, size_t n);
    uint32_t (*events)(const struct transport *t);
    bool (*buffered)(const struct transport *t);
    const char *(*why)(const struct transport *t);
    bool (*handshaking)(const struct transport *t);
    void (*free)(struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    int fd;
};

/* transport_tcp_init: `t` becomes the plain TCP transport of `fd`. */
void transport_tcp_init(struct transport *t, int fd);

static inline ssize_t transport_read(struct transport *t, void *buf, size_t len)
{
    return t->ops->read(t, buf, len);
}

static inline ssize_t transport_writev(struct transport *t, const struct iovec *iov, size_t n)
{
    return t->ops->writev(t, iov, n);
}

static inline uint32_t transport_events(const struct transport *t) { return t->ops->events(t); }

static inline bool transport_buffered(const struct transport *t) { return t->ops->buffered(t); }

static inline const char *transport_why(const struct transport *t) { return t->ops->why(t); }

static inline bool transport_handshaking(const struct transport *t)
{
    return t->ops->handshaking(t);
}

static inline void transport_free(struct transport *t) { t->ops->free(t); }

#endif
