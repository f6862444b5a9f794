#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "mqd/options.h"

#include <unistd.h>

static char err[256];

#define PARSE(o, ...)                                                                              \
    options_parse(sizeof((char *[]){"mqd", __VA_ARGS__}) / sizeof(char *),                         \
                  (char *[]){"mqd", __VA_ARGS__}, (o), err, sizeof(err))

static void defaults(void **state)
{
    (void)state;
    struct options o;
    char *argv[] = {"mqd"};
    assert_int_equal(options_parse(1, argv, &o, err, sizeof(err)), OPTIONS_OK);
    assert_string_equal(o.bind, "127.0.0.1");
    assert_int_equal(o.port, 7000);
    assert_int_equal(o.cache_size, 100);
    assert_int_equal(o.max_line, 1 << 20);
    assert_int_equal(o.max_output, 32 << 20);
    assert_int_equal(o.max_clients, 10000);
    assert_true(o.max_memory == OPTIONS_MAX_MEMORY_AUTO);
    assert_int_equal(o.max_topic_length, 1024);
    assert_int_equal(o.max_topics, 1000000);
    assert_int_equal(o.max_subscriptions, 100000);
    assert_int_equal(o.log_level, LOG_LEVEL_INFO);
    assert_null(o.log_file);
    assert_null(o.config);
    assert_false(o.metrics.on);
    assert_false(o.help);
    assert_false(o.version);
}

static void positional_port_and_cache_size(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "7001", "2"), OPTIONS_OK);
    assert_int_equal(o.port, 7001);
    assert_int_equal(o.cache_size, 2);
    assert_int_equal(PARSE(&o, "--", "7002", "3"), OPTIONS_OK);
    assert_int_equal(o.port, 7002);
    assert_int_equal(o.cache_size, 3);
    assert_int_equal(PARSE(&o, "0"), OPTIONS_OK);
    assert_int_equal(o.port, 0);
    assert_int_equal(o.cache_size, 100);
}

/* field_text: the field the option `name` sets, printed. */
static void field_text(const struct options *o, const char *name, char *out, size_t cap)
{
    if (strcmp(name, "bind") == 0)
        snprintf(out, cap, "%s", o->bind);
    else if (strcmp(name, "port") == 0)
        snprintf(out, cap, "%u", o->port);
    else if (strcmp(name, "cache-size") == 0)
        snprintf(out, cap, "%zu", o->cache_size);
    else if (strcmp(name, "max-line") == 0)
        snprintf(out, cap, "%zu", o->max_line);
    else if (strcmp(name, "max-output") == 0)
        snprintf(out, cap, "%zu", o->max_output);
    else if (strcmp(name, "max-clients") == 0)
        snprintf(out, cap, "%zu", o->max_clients);
    else if (strcmp(name, "max-memory") == 0)
        snprintf(out, cap, "%zu", o->max_memory);
    else if (strcmp(name, "max-topic-length") == 0)
        snprintf(out, cap, "%zu", o->max_topic_length);
    else if (strcmp(name, "max-topics") == 0)
        snprintf(out, cap, "%zu", o->max_topics);
    else if (strcmp(name, "max-subscriptions") == 0)
        snprintf(out, cap, "%zu", o->max_subscriptions);
    else if (strcmp(name, "log-file") == 0)
        snprintf(out, cap, "%s", o->log_file);
    else if (strcmp(name, "metrics") == 0)
        snprintf(out, cap, "%s %s %u", o->metrics.on ? "on" : "off", o->metrics.at.host,
                 o->metrics.at.port);
    else
        snprintf(out, cap, "level %d", (int)o->log_level);
}

/* config_path: a file holding `text`, made by write_config, removed by
 * remove_config. */
static char config_path[64];

static char *write_config(const char *text)
{
    snprintf(config_path, sizeof(config_path), "/tmp/mqd-test-XXXXXX");
    int fd = mkstemp(config_path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return config_path;
}

static void remove_config(void) { assert_int_equal(unlink(config_path), 0); }

static void every_long_option_in_all_three_forms(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value, *want;
    } cases[] = {
        {"port", "7100", "7100"},
        {"bind", "::1", "::1"},
        {"cache-size", "5", "5"},
        {"max-line", "2k", "2048"},
        {"max-output", "3M", "3145728"},
        {"max-clients", "4", "4"},
        {"max-memory", "64m", "67108864"},
        {"max-memory", "0", "0"},
        {"max-memory", "1m", "1048576"},
        {"max-topic-length", "2k", "2048"},
        {"max-topics", "5", "5"},
        {"max-subscriptions", "6", "6"},
        {"log-level", "debug", "level 3"},
        {"log-file", "/var/log/m.log", "/var/log/m.log"},
        {"metrics", "[::1]:9100", "on ::1 9100"},
        {"metrics", "9100", "on 127.0.0.1 9100"},
        {"metrics", "0.0.0.0:0", "on 0.0.0.0 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char flag[32], joined[64], line[64], got[64];
        snprintf(flag, sizeof(flag), "--%s", cases[i].name);
        snprintf(joined, sizeof(joined), "--%s=%s", cases[i].name, cases[i].value);
        snprintf(line, sizeof(line), "%s %s\n", cases[i].name, cases[i].value);
        struct options o;
        assert_int_equal(PARSE(&o, flag, (char *)cases[i].value), OPTIONS_OK);
        field_text(&o, cases[i].name, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
        assert_int_equal(PARSE(&o, joined), OPTIONS_OK);
        field_text(&o, cases[i].name, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
        assert_int_equal(PARSE(&o, "--config", write_config(line)), OPTIONS_OK);
        remove_config(); /* text values must not depend on the file any more */
        field_text(&o, cases[i].name, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
        options_free(&o);
    }
}

static void a_file_sets_many_options_and_later_lines_win(void **state)
{
    (void)state;
    struct options o;
    char *path = write_config("# mqd\n"
                              "bind 0.0.0.0\n"
                              "port 7001\n"
                              "max-output 64m\n"
                              "\n"
                              "bind ::\n");
    assert_int_equal(PARSE(&o, "--config", path), OPTIONS_OK);
    assert_string_equal(o.config, path);
    assert_string_equal(o.bind, "::");
    assert_int_equal(o.port, 7001);
    assert_int_equal(o.max_output, 64 << 20);
    assert_int_equal(o.cache_size, 100); /* not in the file: the default */
    assert_null(o.log_file);
    options_free(&o);
    remove_config();
}

static void the_command_line_wins_over_the_file_in_any_order(void **state)
{
    (void)state;
    char *path = write_config("port 7001\ncache-size 7\nbind ::1\nlog-level warn\n"
                              "metrics [::1]:9100\n");
    struct options o;
    assert_int_equal(PARSE(&o, "--config", path, "--port", "7100"), OPTIONS_OK);
    assert_int_equal(o.port, 7100);
    assert_int_equal(o.cache_size, 7);
    assert_string_equal(o.metrics.at.host, "::1");
    options_free(&o);
    assert_int_equal(
        PARSE(&o, "--port=7100", "--bind", "127.0.0.2", "--metrics", "9200", "--config", path),
        OPTIONS_OK);
    assert_int_equal(o.port, 7100);
    assert_string_equal(o.bind, "127.0.0.2");
    assert_int_equal(o.log_level, LOG_LEVEL_WARN);
    /* the endpoint is replaced whole: the file's address does not stay */
    assert_string_equal(o.metrics.at.host, "127.0.0.1");
    assert_int_equal(o.metrics.at.port, 9200);
    options_free(&o);
    assert_int_equal(PARSE(&o, "7200", "3", "--config", path), OPTIONS_OK);
    assert_int_equal(o.port, 7200);
    assert_int_equal(o.cache_size, 3);
    options_free(&o);
    remove_config();
}

static void config_help_and_version_are_refused_in_the_file(void **state)
{
    (void)state;
    static const char *const lines[] = {"config /etc/mqd.conf\n", "help yes\n",
                                        "version yes\n"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct options o;
        char *path = write_config(lines[i]);
        assert_int_equal(PARSE(&o, "--config", path), OPTIONS_CONFIG_ERROR);
        char want[128];
        snprintf(want, sizeof(want), "%s:1: '%.*s' is only allowed on the command line", path,
                 (int)strcspn(lines[i], " "), lines[i]);
        assert_string_equal(err, want);
        options_free(&o);
        remove_config();
    }
}

static void file_errors_name_the_file_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *text, *says;
    } cases[] = {
        {"port 1\n# x\nmax-outptu 3\n", ":3: unknown key 'max-outptu'"},
        {"--port 1\n", ":1: unknown key '--port'"},
        {"port=1\n", ":1: no value for 'port=1'"},
        {"port 70000\n", ":1: invalid value '70000' for port"},
        {"\ncache-size -1\n", ":2: invalid value '-1' for cache-size"},
        {"max-line 0\n", ":1: invalid value '0' for max-line"},
        {"max-output 1t\n", ":1: invalid value '1t' for max-output"},
        {"max-clients 0\n", ":1: invalid value '0' for max-clients"},
        {"log-level INFO\n", ":1: invalid value 'INFO' for log-level"},
        {"bind\n", ":1: no value for 'bind'"},
        {"log-file a b\n", ":1: 'log-file' takes one value, not 'a b'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct options o;
        char *path = write_config(cases[i].text);
        assert_int_equal(PARSE(&o, "--config", path), OPTIONS_CONFIG_ERROR);
        char want[256];
        snprintf(want, sizeof(want), "%s%s", path, cases[i].says);
        assert_string_equal(err, want);
        options_free(&o);
        remove_config();
    }
}

static void an_unreadable_file_is_a_config_error(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--config", "/nonexistent/mqd.conf"), OPTIONS_CONFIG_ERROR);
    assert_string_equal(err, "cannot read /nonexistent/mqd.conf: No such file or directory");
    options_free(&o);
    assert_int_equal(PARSE(&o, "--config="), OPTIONS_ERROR);
    assert_string_equal(err, "invalid value '' for --config");
}

static void command_line_errors_come_before_the_file(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--config", "/nonexistent/mqd.conf", "--bogus"), OPTIONS_ERROR);
    assert_string_equal(err, "unknown option '--bogus'");
    options_free(&o);
}

static void help_and_version_do_not_read_the_file(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--config", "/nonexistent/mqd.conf", "--help"), OPTIONS_OK);
    assert_true(o.help);
    options_free(&o);
    assert_int_equal(PARSE(&o, "-V", "--config", "/nonexistent/mqd.conf"), OPTIONS_OK);
    assert_true(o.version);
    options_free(&o);
}

static void out_of_memory_in_the_file_fails_whole(void **state)
{
    (void)state;
    char *path = write_config("bind ::1\nlog-file /tmp/a.log\n");
    for (size_t n = 0;; n++) {
        struct options o;
        fail_alloc_after(n);
        enum options_status status = PARSE(&o, "--config", path);
        bool tripped = fail_alloc_tripped();
        fail_alloc_reset();
        if (!tripped) {
            assert_int_equal(status, OPTIONS_OK);
            assert_string_equal(o.log_file, "/tmp/a.log");
            options_free(&o);
            assert_int_equal(n, 2);
            break;
        }
        assert_int_equal(status, OPTIONS_CONFIG_ERROR);
        assert_non_null(strstr(err, ": out of memory"));
        options_free(&o);
    }
    remove_config();
}

static void help_and_version_short_and_long(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "-h"), OPTIONS_OK);
    assert_true(o.help && !o.version);
    assert_int_equal(PARSE(&o, "--help"), OPTIONS_OK);
    assert_true(o.help);
    assert_int_equal(PARSE(&o, "-V"), OPTIONS_OK);
    assert_true(o.version && !o.help);
    assert_int_equal(PARSE(&o, "--version"), OPTIONS_OK);
    assert_true(o.version);
}

static void later_settings_win(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--port=5", "--port", "6"), OPTIONS_OK);
    assert_int_equal(o.port, 6);
    assert_int_equal(PARSE(&o, "7001", "--port", "7002"), OPTIONS_OK);
    assert_int_equal(o.port, 7002);
}

static void every_log_level(void **state)
{
    (void)state;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const enum log_level levels[] = {LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO,
                                            LOG_LEVEL_DEBUG};
    for (size_t i = 0; i < 4; i++) {
        struct options o;
        assert_int_equal(PARSE(&o, "--log-level", (char *)names[i]), OPTIONS_OK);
        assert_int_equal(o.log_level, levels[i]);
    }
}

static void values_at_their_bounds(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--port", "0", "--cache-size", "0"), OPTIONS_OK);
    assert_int_equal(o.port, 0);
    assert_int_equal(o.cache_size, 0);
    assert_int_equal(PARSE(&o, "65535", "1000000"), OPTIONS_OK);
    assert_int_equal(o.port, 65535);
    assert_int_equal(o.cache_size, 1000000);
    assert_int_equal(PARSE(&o, "--max-line=1", "--max-clients=1", "--max-output=34"), OPTIONS_OK);
    assert_int_equal(o.max_line, 1);
    assert_int_equal(o.max_clients, 1);
    assert_int_equal(o.max_output, 34);
    assert_int_equal(PARSE(&o, "--max-topic-length=1", "--max-topics=1", "--max-subscriptions=1"),
                     OPTIONS_OK);
    assert_int_equal(o.max_topic_length, 1);
    assert_int_equal(o.max_topics, 1);
    assert_int_equal(o.max_subscriptions, 1);
    assert_int_equal(PARSE(&o, "--max-line=1g", "--max-output=2g", "--max-clients=1000000"),
                     OPTIONS_OK);
    assert_int_equal(o.max_line, 1 << 30);
    assert_int_equal(o.max_clients, 1000000);
}

static void sizes_take_a_suffix_in_either_case(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t want;
    } cases[] = {
        {"0", 0},          {"123", 123},    {"1k", 1024},      {"1K", 1024},
        {"64k", 65536},    {"1m", 1 << 20}, {"32M", 32 << 20}, {"1g", 1 << 30},
        {"2G", 2UL << 30}, {"0k", 0},       {"007", 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        assert_int_equal(options_parse_size(cases[i].text, &n), 0);
        if (n != cases[i].want)
            fail_msg("'%s' read as %zu", cases[i].text, n);
    }
}

static void malformed_and_oversized_sizes_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "+1",
        "1kb",
        "1t",
        "1b",
        " 1",
        "1 ",
        "0x10",
        "1.5k",
        "1e3",
        "99999999999999999999",
        "99999999999g",
        "18446744073709551615k",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        if (options_parse_size(bad[i], &n) == 0)
            fail_msg("accepted size '%s'", bad[i]);
    }
}

static void usage_lists_every_option_with_its_default(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    options_usage(out);
    fclose(out);
    static const char *const wanted[] = {
        "--port",      "7000",     "--bind",       "127.0.0.1", "--cache-size",  "100",
        "--max-line",  "1m",       "--max-output", "32m",       "--max-clients", "10000",
        "--log-level", "info",     "--help",       "--version", "PORT",          "CACHE_SIZE",
        "--log-file",  "--config", "--metrics",    "ADDR:PORT", "[::1]:9100",
        "--max-memory", "--max-topic-length", "1k", "--max-topics", "1000000",
        "--max-subscriptions", "100000",
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (!strstr(text, wanted[i]))
            fail_msg("usage does not mention %s", wanted[i]);
    }
    free(text);
}

static void errors_name_what_is_wrong(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *named;
    } cases[] = {
        {{"--nope"}, "--nope"},
        {{"--port", "x"}, "'x' for --port"},
        {{"--port", "65536"}, "65536"},
        {{"--port"}, "--port"},
        {{"--cache-size", "-1"}, "-1"},
        {{"--cache-size", "1000001"}, "1000001"},
        {{"--max-line", "0"}, "--max-line"},
        {{"--max-line", "2g"}, "--max-line"},
        {{"--max-clients", "0"}, "--max-clients"},
        {{"--log-level", "loud"}, "loud"},
        {{"--log-level", "INFO"}, "INFO"},
        {{"--port", "12x"}, "12x"},
        {{"--port="}, "--port"},
        {{"--port", "-1"}, "-1"},
        {{"--max-output", "0"}, "--max-output"},
        {{"--max-line", "1q"}, "1q"},
        {{"--max-clients", "1000001"}, "1000001"},
        {{"--help=yes"}, "--help"},
        {{"-x"}, "-x"},
        {{"--", "--port"}, "PORT '--port'"},
        {{"--", "1", "2", "3"}, "'3'"},
        {{"65536"}, "PORT '65536'"},
        {{"1", "-1"}, "'-1'"},
        {{"--bind="}, "--bind"},
        {{"--version=1"}, "--version"},
        {{"-p"}, "-p"},
        {{"1", "2", "3"}, "'3'"},
        {{"x"}, "PORT 'x'"},
        {{"1", "y"}, "CACHE_SIZE 'y'"},
        {{"--metrics"}, "--metrics"},
        {{"--metrics="}, "--metrics"},
        {{"--metrics", "localhost:9100"}, "'localhost:9100' for --metrics"},
        {{"--metrics", "::1:9100"}, "'::1:9100' for --metrics"},
        {{"--metrics", "127.0.0.1:65536"}, "'127.0.0.1:65536' for --metrics"},
        {{"--metrics", "127.0.0.1"}, "'127.0.0.1' for --metrics"},
        {{"--max-memory", "1023k"}, "'1023k' for --max-memory"},
        {{"--max-memory", "-1"}, "--max-memory"},
        {{"--max-topic-length", "0"}, "--max-topic-length"},
        {{"--max-topics", "0"}, "--max-topics"},
        {{"--max-subscriptions", "0"}, "--max-subscriptions"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[5] = {"mqd"};
        int argc = 1;
        for (int k = 0; k < 4 && cases[i].args[k]; k++)
            argv[argc++] = (char *)cases[i].args[k];
        struct options o;
        assert_int_equal(options_parse(argc, argv, &o, err, sizeof(err)), OPTIONS_ERROR);
        if (!strstr(err, cases[i].named))
            fail_msg("error '%s' does not name '%s'", err, cases[i].named);
        assert_null(strchr(err, '\n'));
    }
}

/* --max-output must hold the longest line a client can be delivered: the
 * longest input line and its index */
static void max_output_must_hold_the_longest_line(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--max-line", "1k", "--max-output", "1057"), OPTIONS_OK);
    assert_int_equal(PARSE(&o, "--max-line", "1k", "--max-output", "1056"), OPTIONS_CONFLICT);
    assert_non_null(strstr(err, "--max-output 1056"));
    assert_non_null(strstr(err, "--max-line 1024"));
    assert_null(strchr(err, '\n'));
    assert_int_equal(PARSE(&o, "--max-output", "512k"), OPTIONS_CONFLICT); /* --max-line 1m */
    assert_int_equal(PARSE(&o, "--config", write_config("max-output 1m\n")), OPTIONS_CONFLICT);
    remove_config();
    options_free(&o);
    assert_int_equal(PARSE(&o, "--config", write_config("max-line 1k\nmax-output 2k\n")),
                     OPTIONS_OK);
    remove_config();
    options_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(positional_port_and_cache_size),
        cmocka_unit_test(every_long_option_in_all_three_forms),
        cmocka_unit_test(a_file_sets_many_options_and_later_lines_win),
        cmocka_unit_test(the_command_line_wins_over_the_file_in_any_order),
        cmocka_unit_test(config_help_and_version_are_refused_in_the_file),
        cmocka_unit_test(file_errors_name_the_file_and_line),
        cmocka_unit_test(an_unreadable_file_is_a_config_error),
        cmocka_unit_test(command_line_errors_come_before_the_file),
        cmocka_unit_test(help_and_version_do_not_read_the_file),
        cmocka_unit_test(out_of_memory_in_the_file_fails_whole),
        cmocka_unit_test(help_and_version_short_and_long),
        cmocka_unit_test(later_settings_win),
        cmocka_unit_test(every_log_level),
        cmocka_unit_test(values_at_their_bounds),
        cmocka_unit_test(sizes_take_a_suffix_in_either_case),
        cmocka_unit_test(malformed_and_oversized_sizes_are_refused),
        cmocka_unit_test(usage_lists_every_option_with_its_default),
        cmocka_unit_test(errors_name_what_is_wrong),
        cmocka_unit_test(max_output_must_hold_the_longest_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
