/*
 * dial: where the server is, and the connection to it.
 *
 * struct endpoint holds everything needed to reach and open a session with
 * a server: a host and a port, TLS (link.h does the handshake) and a user
 * (session.h logs in), so that no command has to know of them.
 */
#ifndef MQD_CLI_DIAL_H
#define MQD_CLI_DIAL_H

#include <stdbool.h>
#include <stddef.h>

#define DIAL_DEFAULT_HOST "127.0.0.1"
#define DIAL_DEFAULT_PORT "7000"

struct endpoint {
    const char *host; /* a name or a numeric IPv4 or IPv6 address */
    const char *port; /* decimal, 1 to 65535 */
    bool tls;
    const char *tls_ca;   /* NULL: the system's CAs */
    const char *tls_cert; /* a client certificate, with tls_key */
    const char *tls_key;
    const char *user;          /* NULL: no login */
    const char *password_file; /* its first line is the user's password */
};

/* dial: a connected TCP socket to `at`, non-blocking and with Nagle's
 * algorithm off (commands are short lines that wait for a reply), trying each
 * address the host resolves to in turn. -1 when none answers, with a one-line
 * reason in `err` ("cannot connect to 127.0.0.1:7000: Connection refused"). */
int dial(const struct endpoint *at, char *err, size_t err_size);

#endif
