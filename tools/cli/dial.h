/*
 * dial: where the server is, and the connection to it.
 *
 * struct endpoint holds everything needed to reach and open a session with
 * a server. Today that is a host and a port over plain TCP; once mqd has TLS
 * and users, their settings (--tls ..., --user, --password-file) belong here,
 * and the handshake and login in dial(), so that no command has to change.
 */
#ifndef MQD_CLI_DIAL_H
#define MQD_CLI_DIAL_H

#include <stddef.h>

#define DIAL_DEFAULT_HOST "127.0.0.1"
#define DIAL_DEFAULT_PORT "7000"

struct endpoint {
    const char *host; /* a name or a numeric IPv4 or IPv6 address */
    const char *port; /* decimal, 1 to 65535 */
};

/* dial: a connected TCP socket to `at`, non-blocking and with Nagle's
 * algorithm off (commands are short lines that wait for a reply), trying each
 * address the host resolves to in turn. -1 when none answers, with a one-line
 * reason in `err` ("cannot connect to 127.0.0.1:7000: Connection refused"). */
int dial(const struct endpoint *at, char *err, size_t err_size);

#endif
