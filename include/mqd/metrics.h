/*
 * metrics: the server's figures in the Prometheus text exposition format,
 * version 0.0.4. Pure: it renders figures the server collected, and knows
 * nothing of sockets or of where the figures come from.
 *
 * Every family has its HELP and TYPE lines; counters end in "_total". The
 * families and label values are fixed, so the output's shape never changes
 * and a missing sample always means a broken scrape.
 */
#ifndef MQD_METRICS_H
#define MQD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* metrics_histogram: how long the loop's passes took, in fixed buckets
 * whose upper bounds are METRICS_PASS_BOUNDS_US microseconds, then +Inf */
#define METRICS_PASS_BUCKETS 6
#define METRICS_PASS_BOUNDS_US                                                                     \
    {                                                                                              \
        100, 1000, 10000, 100000, 1000000                                                          \
    }
struct metrics_histogram {
    uint64_t counts[METRICS_PASS_BUCKETS]; /* per bucket, the last +Inf */
    uint64_t count;
    uint64_t sum_ns;
};

/* metrics_observe: one pass of `ns` nanoseconds. O(buckets). */
void metrics_observe(struct metrics_histogram *h, uint64_t ns);

struct metrics_figures {
    uint64_t connections; /* open now */
    uint64_t connections_accepted;
    uint64_t rejected_max_clients;
    uint64_t rejected_fd_exhausted;
    uint64_t rejected_out_of_memory;
    uint64_t rejected_per_address;
    uint64_t topics;
    uint64_t retired_topics;
    uint64_t subscriptions;
    uint64_t messages_received;  /* sends accepted */
    uint64_t messages_delivered; /* lines queued to subscribers */
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t cached_messages;
    uint64_t cached_bytes;
    uint64_t slow_consumer_disconnects;
    uint64_t idle_closes;
    uint64_t timed_out;
    uint64_t passes_over_budget; /* loop passes that ended with a client's input held */
    uint64_t memory_used;        /* bytes held, as --max-memory counts them */
    uint64_t memory_limit;       /* --max-memory, 0: none */
    uint64_t cache_evictions;
    uint64_t cache_evicted_one;
    uint64_t one_rerouted; /* "one" lines of closed clients: to a subscriber */
    uint64_t one_recached; /* back to the cache */
    uint64_t one_lost;     /* lost */
    uint64_t clients_evicted;
    uint64_t errors_utf8; /* error replies, by reason */
    uint64_t errors_json;
    uint64_t errors_malformed;
    uint64_t errors_line_too_long;
    uint64_t errors_out_of_memory;
    uint64_t errors_topic_too_long;
    uint64_t errors_too_many_topics;
    uint64_t errors_too_many_subscriptions;
    uint64_t errors_not_persisted;
    uint64_t errors_auth_required;
    uint64_t errors_auth_failed;
    uint64_t errors_permission_denied;
    uint64_t errors_auth_not_enabled;
    /* --users (auth.h); all 0 without it */
    uint64_t auth_accepted;
    uint64_t auth_rejected;
    uint64_t auth_limited;
    uint64_t auth_waiting;
    /* --data-dir (store.h); all 0 without it */
    uint64_t persist_records;
    uint64_t persist_bytes;
    uint64_t persist_errors;
    uint64_t persist_log_bytes;
    uint64_t persist_snapshot_bytes;
    uint64_t persist_compactions;
    uint64_t persist_compactions_failed;
    uint64_t persist_last_compaction;    /* unix time it finished, 0: none */
    uint64_t persist_last_compaction_ns; /* how long it took */
    int64_t start_time;                  /* unix time, seconds */
    const char *version;
    const struct metrics_histogram *loop_passes; /* NULL: all zero */
    const struct metrics_histogram *fsyncs;      /* NULL: all zero */
};

/* metrics_render: the exposition of `f`, snprintf-like: its length, of which
 * at most cap - 1 bytes are written, then a NUL (nothing when cap is 0). So
 * a first call with cap 0 tells how much room a second one needs. */
size_t metrics_render(const struct metrics_figures *f, char *out, size_t cap);

/* metrics_max_size: the longest exposition there can be, every figure at
 * its widest, for a buffer made once. */
size_t metrics_max_size(const char *version);

#endif
