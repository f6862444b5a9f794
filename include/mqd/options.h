/*
 * options: the command line, `mqd [OPTIONS] [PORT [CACHE_SIZE]]`.
 *
 * The two positionals make mqd a drop-in for the aiomemq servers, which test
 * suites start as `PROG PORT CACHE_SIZE`. Long options take their value as
 * `--name value` or `--name=value`; byte sizes accept k, m and g suffixes
 * (powers of 1024). Later settings win over earlier ones.
 */
#ifndef MQD_OPTIONS_H
#define MQD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mqd/log.h"
#include "mqd/net.h"

#define OPTIONS_DEFAULT_BIND "127.0.0.1"
#define OPTIONS_DEFAULT_PORT 7000
#define OPTIONS_DEFAULT_CACHE_SIZE 100
#define OPTIONS_DEFAULT_MAX_LINE (1024 * 1024)
#define OPTIONS_DEFAULT_MAX_OUTPUT (32 * 1024 * 1024)
#define OPTIONS_DEFAULT_MAX_CLIENTS 10000

struct options {
    const char *bind; /* points into argv or a literal */
    unsigned port;    /* 0: any free port */
    size_t cache_size;
    size_t max_line;
    size_t max_output;
    size_t max_clients;
    enum log_level log_level;
    bool metrics;                   /* --metrics given */
    struct net_endpoint metrics_at; /* where to serve /metrics */
    bool help;
    bool version;
};

enum options_status { OPTIONS_OK, OPTIONS_ERROR };

/* options_parse: fills *out from argv (defaults first). On OPTIONS_ERROR,
 * `err` holds a one-line message naming the offending option or value. */
enum options_status options_parse(int argc, char *const argv[], struct options *out, char *err,
                                  size_t err_len);

/* options_usage: the usage text, every option with its default. */
void options_usage(FILE *out);

/* options_parse_size: a byte size, "123", "64k", "32m", "1g" (any case).
 * 0, or -1 when it is not one or does not fit. */
int options_parse_size(const char *text, size_t *out);

#endif
