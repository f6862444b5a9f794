/*
 * net: the socket chores shared by the broker's listener and the metrics
 * endpoint: reading "ADDR:PORT", listening, and printing addresses.
 */
#ifndef MQD_NET_H
#define MQD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NET_HOST_LEN 46 /* INET6_ADDRSTRLEN */
/* "[host]:port": "[", an IPv6 address's text (45 at most), "]:", a port (5)
 * and the NUL: 54, rounded up to 8 */
#define NET_ADDR_LEN 56

/* net_endpoint: a numeric address and a port to listen on. */
struct net_endpoint {
    char host[NET_HOST_LEN]; /* "127.0.0.1" or "::1", without brackets */
    unsigned port;           /* 0: any free port */
};

/* net_parse_endpoint: "ADDR:PORT" with ADDR an IPv4 address, "[ADDR]:PORT"
 * with ADDR an IPv6 address, or a bare "PORT", which means `default_host`.
 * 0, or -1 when `text` is none of these (names are refused: an endpoint is
 * an address). */
int net_parse_endpoint(const char *text, const char *default_host, struct net_endpoint *out);

/* net_listener: a listening socket and where it listens. */
struct net_listener {
    int fd;                  /* non-blocking, close-on-exec */
    unsigned port;           /* the port bound, the free one chosen for 0 */
    char addr[NET_ADDR_LEN]; /* "127.0.0.1:7000" or "[::1]:7000" */
};

/* net_listen: binds `host` (an address or a name) and `port`, and listens.
 * 0, or -1 with `err` saying where and why, e.g. "127.0.0.1:7000: Address
 * already in use", for the caller to put after what it was listening for. */
int net_listen(struct net_listener *l, const char *host, unsigned port, int backlog, char *err,
               size_t err_len);

/* net_format_addr: "1.2.3.4:5" or "[::1]:5"; "unknown" for other families. */
void net_format_addr(const struct sockaddr *sa, char *out, size_t len);

#define NET_PEER_KEY_LEN 17 /* a family byte and up to 16 address bytes */

/* net_peer_key: the address of `sa` without its port, as bytes that compare
 * equal for one host (an IPv4-mapped IPv6 address as its IPv4 one). Its
 * length, 0 for a family without addresses. */
size_t net_peer_key(const struct sockaddr *sa, unsigned char key[NET_PEER_KEY_LEN]);

/* net_keepalive: TCP keepalive on `fd`: the first probe after `seconds`
 * of silence, then a probe every seconds/3 (at least 1), the peer given up
 * after 3 unanswered; and TCP_USER_TIMEOUT to match, so that data the peer
 * never acknowledges fails in the same time. 0 turns keepalive off. 0, or
 * -1 with errno. */
int net_keepalive(int fd, unsigned seconds);

/* net_is_loopback: whether the numeric address `host`, read as net_listen
 * reads it (so "0" is 0.0.0.0), is a loopback one: 127.0.0.0/8, ::1 or
 * ::ffff:127.0.0.0/104. */
bool net_is_loopback(const char *host);

/* net_is_address: whether net_listen would take `host` as an address. */
bool net_is_address(const char *host);

#endif
