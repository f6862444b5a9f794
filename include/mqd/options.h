/*
 * options: the command line, `mqd [OPTIONS] [PORT [CACHE_SIZE]]`, and the
 * configuration file that `--config FILE` names.
 *
 * The two positionals make mqd a drop-in for the aiomemq servers, which test
 * suites start as `PROG PORT CACHE_SIZE`. Long options take their value as
 * `--name value` or `--name=value`; byte sizes accept k, m and g suffixes
 * (powers of 1024). Later settings win over earlier ones.
 *
 * Every long option but --config, --help and --version can also be a line
 * `name value` of the configuration file (format in config_file.h). Both read
 * one table of options (in options.c: name, setter, field, bounds), so an
 * option added to it works in both places. The command line wins over the
 * file, wherever --config stands in it.
 */
#ifndef MQD_OPTIONS_H
#define MQD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mqd/log.h"
#include "mqd/store.h"
#include "mqd/net.h"

#define OPTIONS_DEFAULT_BIND "127.0.0.1"
#define OPTIONS_DEFAULT_PORT 7000
#define OPTIONS_DEFAULT_CACHE_SIZE 100
#define OPTIONS_DEFAULT_MAX_LINE (1024 * 1024)
#define OPTIONS_DEFAULT_MAX_OUTPUT (32 * 1024 * 1024)
#define OPTIONS_DEFAULT_MAX_CLIENTS 10000
/* --max-memory not given: half of the machine's or the cgroup's memory,
 * which the caller finds out (budget_default_limit) */
#define OPTIONS_MAX_MEMORY_AUTO SIZE_MAX
#define OPTIONS_DEFAULT_MAX_TOPIC_LENGTH 1024
#define OPTIONS_DEFAULT_MAX_TOPICS 1000000
#define OPTIONS_DEFAULT_MAX_SUBSCRIPTIONS 100000
#define OPTIONS_DEFAULT_TCP_KEEPALIVE 300
#define OPTIONS_DEFAULT_TLS_HANDSHAKE_TIMEOUT 10

struct options_text; /* a value read from the file, kept for the options */

/* options_endpoint: an address to listen on, off unless an option sets it */
struct options_endpoint {
    bool on;
    struct net_endpoint at;
};

struct options {
    /* text values point into argv, into `file_texts` or at a literal */
    const char *bind;
    const char *config;   /* NULL: no configuration file */
    const char *log_file; /* NULL: log to stderr */
    unsigned port;        /* 0: any free port */
    size_t cache_size;
    size_t max_line;
    size_t max_output;
    size_t max_clients;
    size_t max_memory; /* OPTIONS_MAX_MEMORY_AUTO unless set */
    size_t max_topic_length;
    size_t max_topics;
    size_t max_subscriptions;
    size_t max_clients_per_address; /* 0: no limit */
    unsigned tcp_keepalive;         /* seconds, 0: off */
    unsigned idle_timeout;          /* seconds, 0: off */
    const char *data_dir;           /* NULL: nothing kept across restarts */
    enum store_fsync fsync;
    size_t compact_min;
    const char *check_data; /* --check-data DIR: check it and exit */
    enum log_level log_level;
    struct options_endpoint metrics; /* where to serve /metrics */
    bool tls_on;                     /* --tls-port given */
    unsigned tls_port;               /* 0: any free port */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca; /* NULL: no client CA */
    bool tls_verify_clients;
    unsigned tls_handshake_timeout;    /* seconds */
    bool no_plain;                     /* TLS only */
    const char *users;                 /* --users FILE; NULL: no logins */
    struct options_endpoint websocket; /* --websocket ADDR:PORT */
    bool websocket_tls;                /* wss:// */
    const char *websocket_origins;     /* NULL: the same origin only */
    bool insecure;                     /* beyond loopback without --users */
    const char *hash_password;         /* --hash-password NAME: print a line and exit */
    bool hash_scrypt;                  /* --hash-function scrypt */
    bool help;
    bool version;
    struct options_text *file_texts; /* owned; see options_free */
};

enum options_status {
    OPTIONS_OK,
    OPTIONS_ERROR,        /* a bad command line: show the usage too */
    OPTIONS_CONFIG_ERROR, /* a bad or unreadable configuration file */
    OPTIONS_CONFLICT      /* valid options that cannot work together */
};

/* options_parse: fills *out from the defaults, then the configuration file
 * if argv names one, then argv. The file is not read when argv asks for
 * --help or --version. On an error, `err` holds a one-line message naming the
 * offending option or value (for the file: its path and line number), or
 * the two that conflict (--max-output must hold the longest delivered line:
 * --max-line plus BROKER_INDEX_ROOM). Call options_free on *out afterwards,
 * whatever the status. */
enum options_status options_parse(int argc, char *const argv[], struct options *out, char *err,
                                  size_t err_len);

/* options_free: frees the values kept from the configuration file. */
void options_free(struct options *o);

/* options_usage: the usage text, every option with its default. */
void options_usage(FILE *out);

/* options_parse_size: a byte size, "123", "64k", "32m", "1g" (any case).
 * 0, or -1 when it is not one or does not fit. */
int options_parse_size(const char *text, size_t *out);

#endif
