#include "mqd/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FIGURE(name) offsetof(struct metrics_figures, name)

/* sample: one line of a family: its label value (NULL when the family has no
 * label) and where its figure is */
struct sample {
    const char *label_value;
    size_t offset;
};

#define MAX_SAMPLES 13

struct family {
    const char *name;
    const char *type;
    const char *help;
    const char *label;                  /* NULL: one sample, unlabelled */
    struct sample samples[MAX_SAMPLES]; /* labelled: up to the first without a value */
};

/* clang-format off */
#define SINGLE(name, type, help, figure) {name, type, help, NULL, {{NULL, FIGURE(figure)}}}
/* clang-format on */

static const struct family families[] = {
    SINGLE("mqd_connections", "gauge", "Client connections open now.", connections),
    SINGLE("mqd_connections_accepted_total", "counter", "Client connections accepted.",
           connections_accepted),
    {"mqd_connections_rejected_total",
     "counter",
     "Client connections refused, by reason: --max-clients reached, out of file descriptors, "
     "out of memory, --max-clients-per-address reached.",
     "reason",
     {{"max_clients", FIGURE(rejected_max_clients)},
      {"fd_exhausted", FIGURE(rejected_fd_exhausted)},
      {"out_of_memory", FIGURE(rejected_out_of_memory)},
      {"per_address", FIGURE(rejected_per_address)}}},
    SINGLE("mqd_topics", "gauge", "Topics now with subscribers or cached messages.", topics),
    SINGLE("mqd_retired_topics", "gauge",
           "Topics freed with no subscribers and nothing cached, their next index kept.",
           retired_topics),
    SINGLE("mqd_subscriptions", "gauge", "Subscriptions now, one per client and topic.",
           subscriptions),
    SINGLE("mqd_messages_received_total", "counter", "Sends accepted.", messages_received),
    SINGLE("mqd_messages_delivered_total", "counter",
           "Message lines queued to subscribers, cache replays included.", messages_delivered),
    SINGLE("mqd_received_bytes_total", "counter", "Bytes read from clients.", bytes_received),
    SINGLE("mqd_sent_bytes_total", "counter", "Bytes written to clients.", bytes_sent),
    SINGLE("mqd_cached_messages", "gauge", "Messages held in the topics' caches.", cached_messages),
    SINGLE("mqd_cached_bytes", "gauge", "Bytes of the messages held in the topics' caches.",
           cached_bytes),
    SINGLE("mqd_slow_consumer_disconnects_total", "counter",
           "Clients disconnected for queuing more than --max-output.", slow_consumer_disconnects),
    SINGLE("mqd_idle_disconnects_total", "counter",
           "Clients closed for neither sending nor being sent anything for --idle-timeout.",
           idle_closes),
    SINGLE("mqd_timed_out_disconnects_total", "counter",
           "Clients dropped because their peer stopped answering: keepalive probes or data "
           "went unacknowledged.",
           timed_out),
    SINGLE("mqd_loop_passes_over_budget_total", "counter",
           "Loop passes that ended with a client's input put off to a later pass, its work "
           "for the pass spent.",
           passes_over_budget),
    SINGLE("mqd_memory_used_bytes", "gauge",
           "Bytes mqd holds now, counted where they are allocated, as --max-memory counts them.",
           memory_used),
    SINGLE("mqd_memory_limit_bytes", "gauge", "The --max-memory budget in bytes; 0: none.",
           memory_limit),
    SINGLE("mqd_cache_evictions_total", "counter",
           "Cached messages evicted, oldest first, to keep within --max-memory.", cache_evictions),
    SINGLE("mqd_cache_evicted_one_total", "counter",
           "Of the evicted messages, delivery \"one\" messages no subscriber had taken: lost.",
           cache_evicted_one),
    {"mqd_one_returned_total",
     "counter",
     "Delivery \"one\" lines queued to a client that closed before they were written, by "
     "where they went: another subscriber, back to the cache, or lost.",
     "to",
     {{"subscriber", FIGURE(one_rerouted)},
      {"cache", FIGURE(one_recached)},
      {"lost", FIGURE(one_lost)}}},
    SINGLE("mqd_clients_evicted_total", "counter",
           "Clients disconnected for holding the most memory when --max-memory was reached.",
           clients_evicted),
    {"mqd_protocol_errors_total",
     "counter",
     "Error replies sent to clients, by reason.",
     "reason",
     {{"utf8", FIGURE(errors_utf8)},
      {"json", FIGURE(errors_json)},
      {"malformed", FIGURE(errors_malformed)},
      {"line_too_long", FIGURE(errors_line_too_long)},
      {"out_of_memory", FIGURE(errors_out_of_memory)},
      {"topic_too_long", FIGURE(errors_topic_too_long)},
      {"too_many_topics", FIGURE(errors_too_many_topics)},
      {"too_many_subscriptions", FIGURE(errors_too_many_subscriptions)},
      {"not_persisted", FIGURE(errors_not_persisted)},
      {"auth_required", FIGURE(errors_auth_required)},
      {"auth_failed", FIGURE(errors_auth_failed)},
      {"permission_denied", FIGURE(errors_permission_denied)},
      {"auth_not_enabled", FIGURE(errors_auth_not_enabled)}}},
    {"mqd_auth_checks_total",
     "counter",
     "Password checks of the auth command (--users), by result; limited: refused unchecked "
     "for the address's recent failures.",
     "result",
     {{"accepted", FIGURE(auth_accepted)},
      {"rejected", FIGURE(auth_rejected)},
      {"limited", FIGURE(auth_limited)}}},
    SINGLE("mqd_auth_checks_waiting", "gauge", "Password checks asked for and not finished yet.",
           auth_waiting),
    SINGLE("mqd_persist_records_total", "counter",
           "Records written to the data directory's log (--data-dir).", persist_records),
    SINGLE("mqd_persist_written_bytes_total", "counter",
           "Bytes of records written to the data directory's log.", persist_bytes),
    SINGLE("mqd_persist_errors_total", "counter",
           "Writes, syncs, allocations and compactions of the data directory that failed.",
           persist_errors),
    SINGLE("mqd_persist_log_bytes", "gauge",
           "Bytes of the logs since the last snapshot, which compaction weighs.",
           persist_log_bytes),
    SINGLE("mqd_persist_snapshot_bytes", "gauge", "Bytes of the last snapshot.",
           persist_snapshot_bytes),
    {"mqd_persist_compactions_total",
     "counter",
     "Compactions of the data directory, by result.",
     "result",
     {{"done", FIGURE(persist_compactions)}, {"failed", FIGURE(persist_compactions_failed)}}},
    SINGLE("mqd_persist_last_compaction_timestamp_seconds", "gauge",
           "When the last compaction finished, in unix time; 0: none yet.",
           persist_last_compaction),
};

/* text: an snprintf-like writer that goes on counting once out of room */
struct text {
    char *out;
    size_t cap;
    size_t len;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    size_t room = t->len < t->cap ? t->cap - t->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? t->out + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n;
}

static void put_head(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* put_label_value: a label value with backslash, quote and newline escaped,
 * as the format asks. */
static void put_label_value(struct text *t, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            put(t, "\\%c", *p);
        else if (*p == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *p);
    }
}

static void put_family(struct text *t, const struct family *fam, const struct metrics_figures *f)
{
    put_head(t, fam->name, fam->type, fam->help);
    for (size_t i = 0; i < MAX_SAMPLES && (i == 0 || fam->samples[i].label_value); i++) {
        const struct sample *s = &fam->samples[i];
        uint64_t value = *(const uint64_t *)((const char *)f + s->offset);
        if (fam->label)
            put(t, "%s{%s=\"%s\"} %" PRIu64 "\n", fam->name, fam->label, s->label_value, value);
        else
            put(t, "%s %" PRIu64 "\n", fam->name, value);
    }
}

static const uint64_t pass_bounds_us[METRICS_PASS_BUCKETS - 1] = METRICS_PASS_BOUNDS_US;

void metrics_observe(struct metrics_histogram *h, uint64_t ns)
{
    size_t i = 0;
    while (i < METRICS_PASS_BUCKETS - 1 && ns > pass_bounds_us[i] * 1000)
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_ns += ns;
}

/* put_histogram: a histogram family, its buckets cumulative as the format
 * wants, the sum in seconds */
static void put_histogram(struct text *t, const char *name, const char *help,
                          const struct metrics_histogram *h)
{
    static const struct metrics_histogram none;
    if (!h)
        h = &none;
    put_head(t, name, "histogram", help);
    uint64_t below = 0;
    for (size_t i = 0; i < METRICS_PASS_BUCKETS - 1; i++) {
        below += h->counts[i];
        put(t, "%s_bucket{le=\"%" PRIu64 ".%06" PRIu64 "\"} %" PRIu64 "\n", name,
            pass_bounds_us[i] / 1000000, pass_bounds_us[i] % 1000000, below);
    }
    put(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    put(t, "%s_sum %" PRIu64 ".%09" PRIu64 "\n", name, h->sum_ns / 1000000000,
        h->sum_ns % 1000000000);
    put(t, "%s_count %" PRIu64 "\n", name, h->count);
}

size_t metrics_render(const struct metrics_figures *f, char *out, size_t cap)
{
    struct text t = {out, cap, 0};
    if (cap > 0)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        put_family(&t, &families[i], f);
    put_histogram(&t, "mqd_loop_pass_seconds",
                  "How long the event loop's passes took, from waking to the end of their writes.",
                  f->loop_passes);
    put_histogram(&t, "mqd_persist_fsync_seconds",
                  "How long each fdatasync of the data directory's log took.", f->fsyncs);
    put_head(&t, "mqd_persist_last_compaction_duration_seconds", "gauge",
             "How long the last compaction took, from its fork to its snapshot in place.");
    put(&t, "mqd_persist_last_compaction_duration_seconds %" PRIu64 ".%09" PRIu64 "\n",
        f->persist_last_compaction_ns / 1000000000, f->persist_last_compaction_ns % 1000000000);
    put_head(&t, "mqd_start_time_seconds", "gauge", "Start time of the process, in unix time.");
    put(&t, "mqd_start_time_seconds %" PRId64 "\n", f->start_time);
    put_head(&t, "mqd_build_info", "gauge", "The version of mqd, as a label; the value is 1.");
    put(&t, "mqd_build_info{version=\"");
    put_label_value(&t, f->version);
    put(&t, "\"} 1\n");
    return t.len;
}

size_t metrics_max_size(const char *version)
{
    /* every figure before start_time is a uint64_t (metrics.h) */
    struct metrics_figures widest;
    uint64_t *figure = (uint64_t *)&widest;
    for (size_t i = 0; i < offsetof(struct metrics_figures, start_time) / sizeof(uint64_t); i++)
        figure[i] = UINT64_MAX;
    widest.start_time = INT64_MIN;
    widest.version = version;
    struct metrics_histogram passes;
    memset(&passes, 0xff, sizeof(passes));
    widest.loop_passes = &passes;
    widest.fsyncs = &passes;
    return metrics_render(&widest, NULL, 0);
}
