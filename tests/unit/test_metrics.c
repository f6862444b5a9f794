#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqd/metrics.h"

/* figures: every figure different, so one shown in the wrong place shows */
static const struct metrics_figures figures = {
    .connections = 1,
    .connections_accepted = 2,
    .rejected_max_clients = 3,
    .rejected_fd_exhausted = 4,
    .rejected_out_of_memory = 5,
    .topics = 6,
    .subscriptions = 7,
    .messages_received = 8,
    .messages_delivered = 9,
    .bytes_received = 10,
    .bytes_sent = 11,
    .cached_messages = 12,
    .cached_bytes = 13,
    .slow_consumer_disconnects = 14,
    .errors_utf8 = 15,
    .errors_json = 16,
    .errors_malformed = 17,
    .errors_line_too_long = 18,
    .errors_out_of_memory = 19,
    .retired_topics = 20,
    .memory_used = 21,
    .memory_limit = 22,
    .cache_evictions = 23,
    .cache_evicted_one = 24,
    .clients_evicted = 25,
    .one_rerouted = 33,
    .one_recached = 34,
    .one_lost = 35,
    .errors_topic_too_long = 26,
    .errors_too_many_topics = 27,
    .errors_too_many_subscriptions = 28,
    .rejected_per_address = 29,
    .idle_closes = 30,
    .timed_out = 31,
    .passes_over_budget = 32,
    .errors_not_persisted = 36,
    .errors_auth_required = 46,
    .errors_auth_failed = 47,
    .errors_permission_denied = 48,
    .errors_auth_not_enabled = 49,
    .auth_accepted = 50,
    .auth_rejected = 51,
    .auth_limited = 52,
    .auth_waiting = 53,
    .persist_records = 37,
    .persist_bytes = 38,
    .persist_errors = 39,
    .persist_log_bytes = 40,
    .persist_snapshot_bytes = 41,
    .persist_compactions = 42,
    .persist_compactions_failed = 43,
    .persist_last_compaction = 44,
    .persist_last_compaction_ns = 1500000045,
    .start_time = 1795589491,
    .version = "1.2.3",
};

/* the exposition expected, in two literals (C99 promises 4095 bytes for
 * one), joined by expected_text() */
static const char expected_head[] =
    "# HELP mqd_connections Client connections open now.\n"
    "# TYPE mqd_connections gauge\n"
    "mqd_connections 1\n"
    "# HELP mqd_connections_accepted_total Client connections accepted.\n"
    "# TYPE mqd_connections_accepted_total counter\n"
    "mqd_connections_accepted_total 2\n"
    "# HELP mqd_connections_rejected_total Client connections refused, by reason: "
    "--max-clients reached, out of file descriptors, out of memory, --max-clients-per-address "
    "reached.\n"
    "# TYPE mqd_connections_rejected_total counter\n"
    "mqd_connections_rejected_total{reason=\"max_clients\"} 3\n"
    "mqd_connections_rejected_total{reason=\"fd_exhausted\"} 4\n"
    "mqd_connections_rejected_total{reason=\"out_of_memory\"} 5\n"
    "mqd_connections_rejected_total{reason=\"per_address\"} 29\n"
    "# HELP mqd_topics Topics now with subscribers or cached messages.\n"
    "# TYPE mqd_topics gauge\n"
    "mqd_topics 6\n"
    "# HELP mqd_retired_topics Topics freed with no subscribers and nothing cached, their next "
    "index kept.\n"
    "# TYPE mqd_retired_topics gauge\n"
    "mqd_retired_topics 20\n"
    "# HELP mqd_subscriptions Subscriptions now, one per client and topic.\n"
    "# TYPE mqd_subscriptions gauge\n"
    "mqd_subscriptions 7\n"
    "# HELP mqd_messages_received_total Sends accepted.\n"
    "# TYPE mqd_messages_received_total counter\n"
    "mqd_messages_received_total 8\n"
    "# HELP mqd_messages_delivered_total Message lines queued to subscribers, cache replays "
    "included.\n"
    "# TYPE mqd_messages_delivered_total counter\n"
    "mqd_messages_delivered_total 9\n"
    "# HELP mqd_received_bytes_total Bytes read from clients.\n"
    "# TYPE mqd_received_bytes_total counter\n"
    "mqd_received_bytes_total 10\n"
    "# HELP mqd_sent_bytes_total Bytes written to clients.\n"
    "# TYPE mqd_sent_bytes_total counter\n"
    "mqd_sent_bytes_total 11\n"
    "# HELP mqd_cached_messages Messages held in the topics' caches.\n"
    "# TYPE mqd_cached_messages gauge\n"
    "mqd_cached_messages 12\n"
    "# HELP mqd_cached_bytes Bytes of the messages held in the topics' caches.\n"
    "# TYPE mqd_cached_bytes gauge\n"
    "mqd_cached_bytes 13\n"
    "# HELP mqd_slow_consumer_disconnects_total Clients disconnected for queuing more than "
    "--max-output.\n"
    "# TYPE mqd_slow_consumer_disconnects_total counter\n"
    "mqd_slow_consumer_disconnects_total 14\n";
static const char expected_tail[] =
    "# HELP mqd_idle_disconnects_total Clients closed for neither sending nor being sent "
    "anything for --idle-timeout.\n"
    "# TYPE mqd_idle_disconnects_total counter\n"
    "mqd_idle_disconnects_total 30\n"
    "# HELP mqd_timed_out_disconnects_total Clients dropped because their peer stopped "
    "answering: keepalive probes or data went unacknowledged.\n"
    "# TYPE mqd_timed_out_disconnects_total counter\n"
    "mqd_timed_out_disconnects_total 31\n"
    "# HELP mqd_loop_passes_over_budget_total Loop passes that ended with a client's input put "
    "off to a later pass, its work for the pass spent.\n"
    "# TYPE mqd_loop_passes_over_budget_total counter\n"
    "mqd_loop_passes_over_budget_total 32\n"
    "# HELP mqd_memory_used_bytes Bytes mqd holds now, counted where they are allocated, as "
    "--max-memory counts them.\n"
    "# TYPE mqd_memory_used_bytes gauge\n"
    "mqd_memory_used_bytes 21\n"
    "# HELP mqd_memory_limit_bytes The --max-memory budget in bytes; 0: none.\n"
    "# TYPE mqd_memory_limit_bytes gauge\n"
    "mqd_memory_limit_bytes 22\n"
    "# HELP mqd_cache_evictions_total Cached messages evicted, oldest first, to keep within "
    "--max-memory.\n"
    "# TYPE mqd_cache_evictions_total counter\n"
    "mqd_cache_evictions_total 23\n"
    "# HELP mqd_cache_evicted_one_total Of the evicted messages, delivery \"one\" messages no "
    "subscriber had taken: lost.\n"
    "# TYPE mqd_cache_evicted_one_total counter\n"
    "mqd_cache_evicted_one_total 24\n"
    "# HELP mqd_one_returned_total Delivery \"one\" lines queued to a client that closed before "
    "they were written, by where they went: another subscriber, back to the cache, or lost.\n"
    "# TYPE mqd_one_returned_total counter\n"
    "mqd_one_returned_total{to=\"subscriber\"} 33\n"
    "mqd_one_returned_total{to=\"cache\"} 34\n"
    "mqd_one_returned_total{to=\"lost\"} 35\n"
    "# HELP mqd_clients_evicted_total Clients disconnected for holding the most memory when "
    "--max-memory was reached.\n"
    "# TYPE mqd_clients_evicted_total counter\n"
    "mqd_clients_evicted_total 25\n"
    "# HELP mqd_protocol_errors_total Error replies sent to clients, by reason.\n"
    "# TYPE mqd_protocol_errors_total counter\n"
    "mqd_protocol_errors_total{reason=\"utf8\"} 15\n"
    "mqd_protocol_errors_total{reason=\"json\"} 16\n"
    "mqd_protocol_errors_total{reason=\"malformed\"} 17\n"
    "mqd_protocol_errors_total{reason=\"line_too_long\"} 18\n"
    "mqd_protocol_errors_total{reason=\"out_of_memory\"} 19\n"
    "mqd_protocol_errors_total{reason=\"topic_too_long\"} 26\n"
    "mqd_protocol_errors_total{reason=\"too_many_topics\"} 27\n"
    "mqd_protocol_errors_total{reason=\"too_many_subscriptions\"} 28\n"
    "mqd_protocol_errors_total{reason=\"not_persisted\"} 36\n";
static const char expected_auth[] =
    "mqd_protocol_errors_total{reason=\"auth_required\"} 46\n"
    "mqd_protocol_errors_total{reason=\"auth_failed\"} 47\n"
    "mqd_protocol_errors_total{reason=\"permission_denied\"} 48\n"
    "mqd_protocol_errors_total{reason=\"auth_not_enabled\"} 49\n"
    "# HELP mqd_auth_checks_total Password checks of the auth command (--users), by result; "
    "limited: refused unchecked for the address's recent failures.\n"
    "# TYPE mqd_auth_checks_total counter\n"
    "mqd_auth_checks_total{result=\"accepted\"} 50\n"
    "mqd_auth_checks_total{result=\"rejected\"} 51\n"
    "mqd_auth_checks_total{result=\"limited\"} 52\n"
    "# HELP mqd_auth_checks_waiting Password checks asked for and not finished yet.\n"
    "# TYPE mqd_auth_checks_waiting gauge\n"
    "mqd_auth_checks_waiting 53\n";
static const char expected_persist[] =
    "# HELP mqd_persist_records_total Records written to the data directory's log "
    "(--data-dir).\n"
    "# TYPE mqd_persist_records_total counter\n"
    "mqd_persist_records_total 37\n"
    "# HELP mqd_persist_written_bytes_total Bytes of records written to the data directory's "
    "log.\n"
    "# TYPE mqd_persist_written_bytes_total counter\n"
    "mqd_persist_written_bytes_total 38\n"
    "# HELP mqd_persist_errors_total Writes, syncs, allocations and compactions of the data "
    "directory that failed.\n"
    "# TYPE mqd_persist_errors_total counter\n"
    "mqd_persist_errors_total 39\n"
    "# HELP mqd_persist_log_bytes Bytes of the logs since the last snapshot, which compaction "
    "weighs.\n"
    "# TYPE mqd_persist_log_bytes gauge\n"
    "mqd_persist_log_bytes 40\n"
    "# HELP mqd_persist_snapshot_bytes Bytes of the last snapshot.\n"
    "# TYPE mqd_persist_snapshot_bytes gauge\n"
    "mqd_persist_snapshot_bytes 41\n"
    "# HELP mqd_persist_compactions_total Compactions of the data directory, by result.\n"
    "# TYPE mqd_persist_compactions_total counter\n"
    "mqd_persist_compactions_total{result=\"done\"} 42\n"
    "mqd_persist_compactions_total{result=\"failed\"} 43\n"
    "# HELP mqd_persist_last_compaction_timestamp_seconds When the last compaction finished, in "
    "unix time; 0: none yet.\n"
    "# TYPE mqd_persist_last_compaction_timestamp_seconds gauge\n"
    "mqd_persist_last_compaction_timestamp_seconds 44\n"
    "# HELP mqd_loop_pass_seconds How long the event loop's passes took, from waking to the end "
    "of their writes.\n"
    "# TYPE mqd_loop_pass_seconds histogram\n"
    "mqd_loop_pass_seconds_bucket{le=\"0.000100\"} 0\n"
    "mqd_loop_pass_seconds_bucket{le=\"0.001000\"} 0\n"
    "mqd_loop_pass_seconds_bucket{le=\"0.010000\"} 0\n"
    "mqd_loop_pass_seconds_bucket{le=\"0.100000\"} 0\n"
    "mqd_loop_pass_seconds_bucket{le=\"1.000000\"} 0\n"
    "mqd_loop_pass_seconds_bucket{le=\"+Inf\"} 0\n"
    "mqd_loop_pass_seconds_sum 0.000000000\n"
    "mqd_loop_pass_seconds_count 0\n"
    "# HELP mqd_persist_fsync_seconds How long each fdatasync of the data directory's log "
    "took.\n"
    "# TYPE mqd_persist_fsync_seconds histogram\n"
    "mqd_persist_fsync_seconds_bucket{le=\"0.000100\"} 0\n"
    "mqd_persist_fsync_seconds_bucket{le=\"0.001000\"} 0\n"
    "mqd_persist_fsync_seconds_bucket{le=\"0.010000\"} 0\n"
    "mqd_persist_fsync_seconds_bucket{le=\"0.100000\"} 0\n"
    "mqd_persist_fsync_seconds_bucket{le=\"1.000000\"} 0\n"
    "mqd_persist_fsync_seconds_bucket{le=\"+Inf\"} 0\n"
    "mqd_persist_fsync_seconds_sum 0.000000000\n"
    "mqd_persist_fsync_seconds_count 0\n"
    "# HELP mqd_persist_last_compaction_duration_seconds How long the last compaction took, "
    "from its fork to its snapshot in place.\n"
    "# TYPE mqd_persist_last_compaction_duration_seconds gauge\n"
    "mqd_persist_last_compaction_duration_seconds 1.500000045\n"
    "# HELP mqd_start_time_seconds Start time of the process, in unix time.\n"
    "# TYPE mqd_start_time_seconds gauge\n"
    "mqd_start_time_seconds 1795589491\n"
    "# HELP mqd_build_info The version of mqd, as a label; the value is 1.\n"
    "# TYPE mqd_build_info gauge\n"
    "mqd_build_info{version=\"1.2.3\"} 1\n";

static char expected[sizeof(expected_head) + sizeof(expected_auth) + sizeof(expected_tail) +
                     sizeof(expected_persist) - 3];

static int join_expected(void **state)
{
    (void)state;
    snprintf(expected, sizeof(expected), "%s%s%s%s", expected_head, expected_tail, expected_auth,
             expected_persist);
    return 0;
}

static void renders_every_family_in_the_text_format(void **state)
{
    (void)state;
    char out[8192];
    size_t len = metrics_render(&figures, out, sizeof(out));
    assert_string_equal(out, expected);
    assert_int_equal(len, sizeof(expected) - 1);
}

/* Each family: HELP, then TYPE, then its samples, all named after it; a
 * counter's name ends in _total, and no name is seen twice. */
static void families_are_well_formed(void **state)
{
    (void)state;
    char out[8192];
    metrics_render(&figures, out, sizeof(out));
    char family[128] = "", seen[8192] = " ";
    int families = 0;
    bool histogram = false; /* the family being read is one */
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], type[32];
        if (sscanf(line, "# HELP %127s", name) == 1) {
            char key[132];
            snprintf(key, sizeof(key), " %s ", name);
            assert_null(strstr(seen, key));
            strcat(seen, key + 1);
            snprintf(family, sizeof(family), "%s", name);
            families++;
            line = strtok(NULL, "\n");
            assert_non_null(line);
            assert_int_equal(sscanf(line, "# TYPE %127s %31s", name, type), 2);
            assert_string_equal(name, family);
            size_t n = strlen(name);
            bool total = n > 6 && strcmp(name + n - 6, "_total") == 0;
            histogram = strcmp(type, "histogram") == 0;
            assert_true(strcmp(type, "counter") == 0
                            ? total
                            : (strcmp(type, "gauge") == 0 || histogram) && !total);
            continue;
        }
        size_t n = strlen(family);
        assert_true(n > 0);
        assert_memory_equal(line, family, n);
        const char *rest = line + n;
        if (histogram) /* a histogram's samples: _bucket{le=...}, _sum, _count */
            rest += strncmp(rest, "_bucket{", 8) == 0  ? 7
                    : strncmp(rest, "_sum ", 5) == 0   ? 4
                    : strncmp(rest, "_count ", 7) == 0 ? 6
                                                       : 0;
        assert_true(*rest == ' ' || (*rest == '{' && !histogram) ||
                    (histogram && strncmp(rest, "{le=", 4) == 0));
    }
    assert_int_equal(families, 37);
}

static void measures_when_out_of_room(void **state)
{
    (void)state;
    size_t len = metrics_render(&figures, NULL, 0);
    assert_int_equal(len, sizeof(expected) - 1);
    char *exact = malloc(len + 1);
    assert_int_equal(metrics_render(&figures, exact, len + 1), len);
    assert_string_equal(exact, expected);
    char small[100];
    memset(small, 'x', sizeof(small));
    assert_int_equal(metrics_render(&figures, small, sizeof(small)), len);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, expected, sizeof(small) - 1);
    char one = 'x';
    assert_int_equal(metrics_render(&figures, &one, 1), len);
    assert_int_equal(one, '\0');
    free(exact);
}

static void the_largest_figures_print_whole(void **state)
{
    (void)state;
    struct metrics_figures f = figures;
    f.bytes_sent = UINT64_MAX;
    f.start_time = 0;
    char out[8192];
    metrics_render(&f, out, sizeof(out));
    assert_non_null(strstr(out, "\nmqd_sent_bytes_total 18446744073709551615\n"));
    assert_non_null(strstr(out, "\nmqd_start_time_seconds 0\n"));
}

static void the_version_label_is_escaped(void **state)
{
    (void)state;
    struct metrics_figures f = figures;
    f.version = "1\"2\\3\n4";
    char out[8192];
    metrics_render(&f, out, sizeof(out));
    assert_non_null(strstr(out, "\nmqd_build_info{version=\"1\\\"2\\\\3\\n4\"} 1\n"));
}

static void loop_passes_fall_in_cumulative_buckets(void **state)
{
    (void)state;
    struct metrics_histogram h = {0};
    metrics_observe(&h, 50000);         /* 50 us */
    metrics_observe(&h, 100000);        /* 100 us: on the bound, in it */
    metrics_observe(&h, 100001);        /* just over */
    metrics_observe(&h, 2500000000ULL); /* 2.5 s */
    struct metrics_figures f = figures;
    f.loop_passes = &h;
    char out[16384];
    metrics_render(&f, out, sizeof(out));
    assert_non_null(strstr(out, "mqd_loop_pass_seconds_bucket{le=\"0.000100\"} 2\n"));
    assert_non_null(strstr(out, "mqd_loop_pass_seconds_bucket{le=\"0.001000\"} 3\n"));
    assert_non_null(strstr(out, "mqd_loop_pass_seconds_bucket{le=\"1.000000\"} 3\n"));
    assert_non_null(strstr(out, "mqd_loop_pass_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(out, "mqd_loop_pass_seconds_sum 2.500250001\n"));
    assert_non_null(strstr(out, "mqd_loop_pass_seconds_count 4\n"));
}

static void the_widest_exposition_is_measured(void **state)
{
    (void)state;
    size_t max = metrics_max_size("1.2.3");
    assert_true(max >= sizeof(expected) - 1);
    /* the widest figure of all, 20 digits, in every sample but the time's */
    struct metrics_figures widest = figures;
    memset(&widest, 0xff, offsetof(struct metrics_figures, start_time));
    widest.start_time = INT64_MIN;
    struct metrics_histogram passes;
    memset(&passes, 0xff, sizeof(passes));
    widest.loop_passes = &passes;
    widest.fsyncs = &passes;
    size_t len = metrics_render(&widest, NULL, 0);
    assert_int_equal(len, max);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_every_family_in_the_text_format),
        cmocka_unit_test(families_are_well_formed),
        cmocka_unit_test(the_widest_exposition_is_measured),
        cmocka_unit_test(loop_passes_fall_in_cumulative_buckets),
        cmocka_unit_test(measures_when_out_of_room),
        cmocka_unit_test(the_largest_figures_print_whole),
        cmocka_unit_test(the_version_label_is_escaped),
    };
    return cmocka_run_group_tests(tests, join_expected, NULL);
}
