/*
 * args: mqd-cli's command line.
 *
 *   mqd-cli [-H HOST] [-p PORT] [--tls ...] [--user U --password-file F]
 *           COMMAND [ARGS...]
 *
 * Options may stand anywhere, before or after the command; "--" ends them,
 * for a topic or message that starts with '-'. An option that another
 * command takes is an error, not silently ignored.
 */
#ifndef MQD_CLI_ARGS_H
#define MQD_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dial.h"

enum cli_command { CLI_SUB, CLI_PUB, CLI_RAW };

enum sub_format {
    FORMAT_MSG,   /* the msg text alone */
    FORMAT_JSON,  /* the delivered object, as the server sent it */
    FORMAT_INDEX, /* TOPIC, INDEX and MSG, separated by tabs */
};

struct sub_options {
    char *const *topics; /* at least one */
    size_t ntopics;
    bool has_last_seen;
    int64_t last_seen;
    bool cache;               /* false: --no-cache, replay nothing */
    unsigned long long count; /* exit after this many messages; 0: never */
    enum sub_format format;
};

struct pub_options {
    const char *topic;
    const char *msg; /* NULL: each line of stdin is a message */
    bool one;        /* delivery "one" instead of "all" */
    bool cache;      /* false: --no-cache */
};

struct cli_args {
    struct endpoint at;
    enum cli_command command;
    struct sub_options sub;
    struct pub_options pub;
};

enum args_status { ARGS_OK, ARGS_HELP, ARGS_VERSION, ARGS_ERROR };

/* args_parse: reads argv into *a (pointing into argv, which it may reorder).
 * On ARGS_ERROR, `err` says what is wrong in one line, naming the argument. */
enum args_status args_parse(int argc, char *argv[], struct cli_args *a, char *err, size_t err_size);

/* args_usage: the usage, every command and option, and the exit statuses. */
void args_usage(FILE *f);

#endif
