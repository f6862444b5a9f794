#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* connect_to: one blocking connect to one address, then the socket made
 * non-blocking; -1 with errno set. */
static int connect_to(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int dial(const struct endpoint *at, char *err, size_t err_size)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list;
    int rc = getaddrinfo(at->host, at->port, &hints, &list);
    if (rc != 0) {
        snprintf(err, err_size, "cannot resolve %s: %s", at->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    int why = ECONNREFUSED;
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_to(ai);
        if (fd < 0)
            why = errno;
    }
    freeaddrinfo(list);
    if (fd < 0) {
        /* an IPv6 address is bracketed so that its port stays readable */
        int v6 = strchr(at->host, ':') != NULL;
        snprintf(err, err_size, "cannot connect to %s%s%s:%s: %s", v6 ? "[" : "", at->host,
                 v6 ? "]" : "", at->port, strerror(why));
    }
    return fd;
}
