/* mqd: the command line and logging around one server. */
#include "mqd/budget.h"
#include "mqd/log.h"
#include "mqd/options.h"
#include "mqd/server.h"
#include "mqd/tls.h"
#include "mqd/check.h"
#include "mqd/net.h"
#include "mqd/passwd.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* tune_malloc: no fastbins. Freed small blocks (a departing client's
 * subscriptions, a topic) are then merged as they are freed, instead of
 * piling up until the next large allocation or free merges them all at once:
 * after a client with a million subscriptions left, that pile took 30 ms
 * of one loop pass. The hot path's blocks still come back from the
 * per-thread cache, so throughput does not move (BENCHMARKS.md). */
static void tune_malloc(void)
{
    /* refused only by another allocator (a sanitizer's): nothing to say,
     * since only pauses, never correctness, depend on it */
    (void)mallopt(M_MXFAST, 0);
}

/* read_password: the first line of stdin, whole, without echo when it is
 * a terminal; a block for free(), or NULL, with its length in *len */
static char *read_password(size_t *len)
{
    struct termios saved, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        fputs("Password: ", stderr);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    *len = strcspn(line, "\r\n");
    return line;
}

/* hash_password: --hash-password NAME: a users file line for NAME; the
 * exit status */
static int hash_password(const char *name, bool scrypt)
{
    if (strpbrk(name, " \t\r\n") || name[0] == '#') {
        fprintf(stderr, "mqd: a user name cannot hold blanks or start with '#'\n");
        return 2;
    }
    char line[PASSWD_TEXT_MAX];
    size_t len = 0;
    char *password = read_password(&len);
    int rc = 0;
    if (!password || len == 0) {
        fprintf(stderr, "mqd: no password on stdin\n");
        rc = 1;
    } else if (passwd_make(scrypt ? PASSWD_SCRYPT : PASSWD_PBKDF2_SHA256, password, len, line,
                           sizeof(line)) < 0) {
        fprintf(stderr, "mqd: cannot hash the password: out of memory\n");
        rc = 1;
    } else {
        printf("%s %s\n", name, line);
        fprintf(stderr, "mqd: add publish=PATTERNS and subscribe=PATTERNS to the line (see "
                        "mqd(1), USERS)\n");
    }
    if (password)
        explicit_bzero(password, len);
    free(password);
    return rc;
}

/* exposed: whether clients could reach `host` from beyond this machine (an
 * address that is none is left for the listener to refuse) */
static bool exposed(const char *host) { return net_is_address(host) && !net_is_loopback(host); }

/* protected: whether the options keep mqd from opening every topic to the
 * network: without --users, only loopback addresses for the client ports
 * (--bind, --websocket), unless --insecure */
static bool protected(const struct options *o)
{
    const char *open = exposed(o->bind)                                   ? o->bind
                       : o->websocket.on && exposed(o->websocket.at.host) ? o->websocket.at.host
                                                                          : NULL;
    if (o->users || o->insecure || !open)
        return true;
    fprintf(stderr,
            "mqd: refusing to listen on %s without --users: anyone who reaches it could read "
            "and write every topic. Give --users FILE (lines made by mqd --hash-password), "
            "bind to 127.0.0.1, or add --insecure if the network is trusted\n",
            open);
    return false;
}

/* serve: runs the server the options describe; the exit status. */
static int serve(const struct options *o)
{
    char err[256];
    struct log log = {o->log_level, stderr, NULL};
    if (o->log_file && log_open_file(&log, o->log_file) < 0) {
        fprintf(stderr, "mqd: cannot open log file %s: %s\n", o->log_file, strerror(errno));
        return 1;
    }
    char memory_why[128] = "--max-memory";
    size_t max_memory = o->max_memory;
    if (max_memory == OPTIONS_MAX_MEMORY_AUTO)
        max_memory = budget_default_limit(memory_why, sizeof(memory_why));
    struct server_config config = {
        .bind = o->bind,
        .port = o->port,
        .cache_size = o->cache_size,
        .max_line = o->max_line,
        .max_output = o->max_output,
        .max_clients = o->max_clients,
        .max_memory = max_memory,
        .max_memory_why = memory_why,
        .max_topic_length = o->max_topic_length,
        .max_topics = o->max_topics,
        .max_subscriptions = o->max_subscriptions,
        .max_clients_per_address = o->max_clients_per_address,
        .tcp_keepalive = o->tcp_keepalive,
        .idle_timeout = o->idle_timeout,
        .data_dir = o->data_dir,
        .fsync = o->fsync,
        .compact_min = o->compact_min,
        .metrics = o->metrics.on ? &o->metrics.at : NULL,
        .tls = o->tls_on,
        .tls_port = o->tls_port,
        .tls_cert = o->tls_cert,
        .tls_key = o->tls_key,
        .tls_ca = o->tls_ca,
        .tls_verify_clients = o->tls_verify_clients,
        .tls_handshake_timeout = o->tls_handshake_timeout,
        .no_plain = o->no_plain,
        .users = o->users,
        .websocket = o->websocket.on ? &o->websocket.at : NULL,
        .websocket_tls = o->websocket_tls,
        .websocket_origins = o->websocket_origins,
        .log = &log,
    };
    struct server *s = server_new(&config, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "mqd: %s\n", err);
        log_close(&log);
        return 1;
    }
    int rc = server_run(s);
    server_free(s);
    log_close(&log);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char *argv[])
{
    tune_malloc();
    /* first, so that --max-memory counts what TLS holds; nothing of OpenSSL
     * has allocated yet, so it cannot fail */
    (void)tls_count_memory();
    struct options o;
    char err[512];
    enum options_status status = options_parse(argc, argv, &o, err, sizeof(err));
    int rc;
    if (status != OPTIONS_OK) {
        fprintf(stderr, "mqd: %s\n", err);
        if (status == OPTIONS_ERROR)
            options_usage(stderr);
        rc = 2;
    } else if (o.help) {
        options_usage(stdout);
        rc = 0;
    } else if (o.version) {
        printf("mqd %s\n", MQD_VERSION);
        rc = 0;
    } else if (o.check_data) {
        rc = check_data(o.check_data, stdout);
    } else if (o.hash_password) {
        rc = hash_password(o.hash_password, o.hash_scrypt);
    } else if (!protected(&o)) {
        rc = 1;
    } else {
        rc = serve(&o);
    }
    options_free(&o);
    return rc;
}
