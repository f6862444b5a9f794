#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqd/options.h"

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
    assert_int_equal(o.log_level, LOG_LEVEL_INFO);
    assert_false(o.metrics);
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
    else if (strcmp(name, "metrics") == 0)
        snprintf(out, cap, "%s %s %u", o->metrics ? "on" : "off", o->metrics_at.host,
                 o->metrics_at.port);
    else
        snprintf(out, cap, "level %d", (int)o->log_level);
}

static void every_long_option_in_both_forms(void **state)
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
        {"log-level", "debug", "level 3"},
        {"metrics", "[::1]:9100", "on ::1 9100"},
        {"metrics", "9100", "on 127.0.0.1 9100"},
        {"metrics", "0.0.0.0:0", "on 0.0.0.0 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char flag[32], joined[64], got[64];
        snprintf(flag, sizeof(flag), "--%s", cases[i].name);
        snprintf(joined, sizeof(joined), "--%s=%s", cases[i].name, cases[i].value);
        struct options o;
        assert_int_equal(PARSE(&o, flag, (char *)cases[i].value), OPTIONS_OK);
        field_text(&o, cases[i].name, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
        assert_int_equal(PARSE(&o, joined), OPTIONS_OK);
        field_text(&o, cases[i].name, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
    }
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
    assert_int_equal(PARSE(&o, "--max-line=1", "--max-clients=1", "--max-output=1"), OPTIONS_OK);
    assert_int_equal(o.max_line, 1);
    assert_int_equal(o.max_clients, 1);
    assert_int_equal(o.max_output, 1);
    assert_int_equal(PARSE(&o, "--max-line=1g", "--max-clients=1000000"), OPTIONS_OK);
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
        "--port",      "7000",      "--bind",       "127.0.0.1", "--cache-size",  "100",
        "--max-line",  "1m",        "--max-output", "32m",       "--max-clients", "10000",
        "--log-level", "info",      "--help",       "--version", "PORT",          "CACHE_SIZE",
        "--metrics",   "ADDR:PORT", "[::1]:9100",
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(positional_port_and_cache_size),
        cmocka_unit_test(every_long_option_in_both_forms),
        cmocka_unit_test(help_and_version_short_and_long),
        cmocka_unit_test(later_settings_win),
        cmocka_unit_test(every_log_level),
        cmocka_unit_test(values_at_their_bounds),
        cmocka_unit_test(sizes_take_a_suffix_in_either_case),
        cmocka_unit_test(malformed_and_oversized_sizes_are_refused),
        cmocka_unit_test(usage_lists_every_option_with_its_default),
        cmocka_unit_test(errors_name_what_is_wrong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
