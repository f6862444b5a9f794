#include "mqd/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* parse_port: 1 to 5 digits, at most 65535, and nothing else. */
static int parse_port(const char *text, unsigned *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 5 || strspn(text, "0123456789") != len)
        return -1;
    unsigned long v = strtoul(text, NULL, 10);
    if (v > 65535)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* copy_host: keeps `len` bytes of `text` as the host if they are an address
 * of `family`. */
static int copy_host(const char *text, size_t len, int family, struct net_endpoint *out)
{
    struct in6_addr probe;
    if (len == 0 || len >= sizeof(out->host))
        return -1;
    memcpy(out->host, text, len);
    out->host[len] = '\0';
    return inet_pton(family, out->host, &probe) == 1 ? 0 : -1;
}

int net_parse_endpoint(const char *text, const char *default_host, struct net_endpoint *out)
{
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' ||
            copy_host(text + 1, (size_t)(close - text - 1), AF_INET6, out) < 0)
            return -1;
        colon = close + 1;
    } else if ((colon = strrchr(text, ':'))) {
        if (copy_host(text, (size_t)(colon - text), AF_INET, out) < 0)
            return -1;
    } else {
        snprintf(out->host, sizeof(out->host), "%s", default_host);
        return parse_port(text, &out->port);
    }
    return parse_port(colon + 1, &out->port);
}

void net_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, len, "%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, len, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(out, len, "unknown");
    }
}

size_t net_peer_key(const struct sockaddr *sa, unsigned char key[NET_PEER_KEY_LEN])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
        return 5;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) { /* one host, whichever socket it came by */
            key[0] = 4;
            memcpy(key + 1, in6->sin6_addr.s6_addr + 12, 4);
            return 5;
        }
        key[0] = 6;
        memcpy(key + 1, &in6->sin6_addr, 16);
        return 17;
    }
    return 0;
}

int net_keepalive(int fd, unsigned seconds)
{
    int on = seconds > 0;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0)
        return -1;
    if (!on)
        return 0;
    int idle = (int)seconds, interval = seconds >= 3 ? (int)seconds / 3 : 1, count = 3;
    /* the peer is given up when the last probe goes unanswered: unacknowledged
     * data gets the same time, not the kernel's fifteen minutes of retries */
    unsigned user_timeout = (unsigned)(idle + interval * count) * 1000;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout)) < 0)
        return -1;
    return 0;
}

static int open_socket(const struct addrinfo *ai, int backlog)
{
    int one = 1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* listen_failed: "HOST:PORT: why" in `err`; -1. */
static int listen_failed(const char *host, unsigned port, const char *why, char *err,
                         size_t err_len)
{
    bool ipv6 = strchr(host, ':') != NULL;
    snprintf(err, err_len, "%s%s%s:%u: %s", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port, why);
    return -1;
}

/* numeric_hints: how net_listen reads --bind: numbers only, never a lookup */
static const struct addrinfo numeric_hints = {.ai_family = AF_UNSPEC,
                                              .ai_socktype = SOCK_STREAM,
                                              .ai_flags =
                                                  AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};

int net_listen(struct net_listener *l, const char *host, unsigned port, int backlog, char *err,
               size_t err_len)
{
    char service[16];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, service, &numeric_hints, &ai);
    if (gai != 0)
        return listen_failed(host, port, gai_strerror(gai), err, err_len);
    l->fd = open_socket(ai, backlog);
    freeaddrinfo(ai);
    if (l->fd < 0)
        return listen_failed(host, port, strerror(errno), err, err_len);
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);
    if (getsockname(l->fd, (struct sockaddr *)&bound, &len) < 0) {
        listen_failed(host, port, strerror(errno), err, err_len);
        close(l->fd);
        l->fd = -1;
        return -1;
    }
    net_format_addr((struct sockaddr *)&bound, l->addr, sizeof(l->addr));
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/* is_loopback: whether the address is 127.0.0.0/8, ::1 or ::ffff:127.x */
static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

bool net_is_loopback(const char *host)
{
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, "0", &numeric_hints, &ai) != 0)
        return false;
    bool loopback = true;
    for (const struct addrinfo *p = ai; p; p = p->ai_next)
        loopback = loopback && is_loopback(p->ai_addr);
    freeaddrinfo(ai);
    return loopback;
}

bool net_is_address(const char *host)
{
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, "0", &numeric_hints, &ai) != 0)
        return false;
    freeaddrinfo(ai);
    return true;
}
