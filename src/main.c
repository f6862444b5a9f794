/* mqd: the command line and logging around one server. */
#include "mqd/budget.h"
#include "mqd/log.h"
#include "mqd/options.h"
#include "mqd/server.h"
#include "mqd/tls.h"
#include "mqd/check.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

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
    } else {
        rc = serve(&o);
    }
    options_free(&o);
    return rc;
}
