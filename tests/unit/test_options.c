#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
    assert_int_equal(PARSE(&o, "--", "7002"), OPTIONS_OK);
    assert_int_equal(o.port, 7002);
}

static void long_options_in_both_forms(void **state)
{
    (void)state;
    struct options o;
    assert_int_equal(PARSE(&o, "--port", "1", "--bind=::1", "--cache-size", "0", "--max-line=2k",
                           "--max-output", "3M", "--max-clients=4", "--log-level", "debug"),
                     OPTIONS_OK);
    assert_int_equal(o.port, 1);
    assert_string_equal(o.bind, "::1");
    assert_int_equal(o.cache_size, 0);
    assert_int_equal(o.max_line, 2048);
    assert_int_equal(o.max_output, 3 << 20);
    assert_int_equal(o.max_clients, 4);
    assert_int_equal(o.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(PARSE(&o, "-h", "-V"), OPTIONS_OK);
    assert_true(o.help && o.version);
    assert_int_equal(PARSE(&o, "--port=5", "--port", "6"), OPTIONS_OK);
    assert_int_equal(o.port, 6); /* the later one wins */
}

static void sizes(void **state)
{
    (void)state;
    size_t n;
    assert_int_equal(options_parse_size("123", &n), 0);
    assert_int_equal(n, 123);
    assert_int_equal(options_parse_size("64k", &n), 0);
    assert_int_equal(n, 65536);
    assert_int_equal(options_parse_size("1G", &n), 0);
    assert_int_equal(n, 1 << 30);
    const char *bad[] = {
        "", "k", "-1", "1kb", "1t", " 1", "1 ", "0x10", "99999999999999999999", "99999999999g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (options_parse_size(bad[i], &n) == 0)
            fail_msg("accepted size '%s'", bad[i]);
    }
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
        {{"--bind="}, "--bind"},
        {{"--version=1"}, "--version"},
        {{"-p"}, "-p"},
        {{"1", "2", "3"}, "'3'"},
        {{"x"}, "PORT 'x'"},
        {{"1", "y"}, "CACHE_SIZE 'y'"},
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
        cmocka_unit_test(long_options_in_both_forms),
        cmocka_unit_test(sizes),
        cmocka_unit_test(errors_name_what_is_wrong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
