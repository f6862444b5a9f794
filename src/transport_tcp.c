/* transport_tcp: the plain TCP transport (transport.h): the socket itself. */
#include "mqd/transport.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* a few short lines are copied into one buffer and sent with one send():
 * cheaper in the kernel than writev's vfs layer and per-iovec work; many
 * lines go by writev, where copying them first would cost more than it saves */
#define GATHER_MAX (16 * 1024)
#define GATHER_LINES 8

static ssize_t tcp_read(struct transport *t, void *buf, size_t len)
{
    return read(t->fd, buf, len);
}

static ssize_t tcp_writev(struct transport *t, const struct iovec *iov, size_t n)
{
    if (n > GATHER_LINES)
        return writev(t->fd, iov, (int)n);
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += iov[i].iov_len;
    if (want > GATHER_MAX)
        return writev(t->fd, iov, (int)n);
    char gathered[GATHER_MAX];
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(gathered + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    return send(t->fd, gathered, at, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static uint32_t tcp_events(const struct transport *t)
{
    (void)t;
    return 0;
}

static bool tcp_buffered(const struct transport *t)
{
    (void)t;
    return false;
}

static const char *tcp_why(const struct transport *t)
{
    (void)t;
    return NULL;
}

static bool tcp_handshaking(const struct transport *t)
{
    (void)t;
    return false;
}

static void tcp_free(struct transport *t) { close(t->fd); }

static const struct transport_ops tcp_ops = {
    .name = "tcp",
    .read = tcp_read,
    .writev = tcp_writev,
    .events = tcp_events,
    .buffered = tcp_buffered,
    .why = tcp_why,
    .handshaking = tcp_handshaking,
    .free = tcp_free,
};

void transport_tcp_init(struct transport *t, int fd)
{
    t->ops = &tcp_ops;
    t->fd = fd;
}
