#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqd/log.h"

static const char *quote(const char *in, size_t len)
{
    static char out[LOG_QUOTE_SIZE];
    return log_quote(out, in, len);
}

static void printable_ascii_stays(void **state)
{
    (void)state;
    assert_string_equal(quote("", 0), "\"\"");
    assert_string_equal(quote("{\"a\": 1}", 8), "\"{\\\"a\\\": 1}\"");
    assert_string_equal(quote("back\\slash ~", 12), "\"back\\\\slash ~\"");
}

static void every_other_byte_is_hex(void **state)
{
    (void)state;
    assert_string_equal(quote("a\r\nb\x1b[31m", 9), "\"a\\x0d\\x0ab\\x1b[31m\"");
    assert_string_equal(quote("\x00\x7f\x80\xff", 4), "\"\\x00\\x7f\\x80\\xff\"");
    assert_string_equal(quote("\xc3\xa9", 2), "\"\\xc3\\xa9\""); /* é, as its bytes */
}

static void long_input_is_cut_and_marked(void **state)
{
    (void)state;
    char in[LOG_QUOTE_MAX + 1];
    memset(in, 'x', sizeof(in));
    const char *exact = quote(in, LOG_QUOTE_MAX);
    assert_int_equal(strlen(exact), LOG_QUOTE_MAX + 2);
    assert_int_equal(exact[LOG_QUOTE_MAX + 1], '"');
    const char *cut = quote(in, sizeof(in));
    assert_int_equal(strlen(cut), LOG_QUOTE_MAX + 5);
    assert_string_equal(cut + LOG_QUOTE_MAX + 1, "\"...");
}

static void the_worst_input_fits(void **state)
{
    (void)state;
    char in[LOG_QUOTE_MAX * 2];
    memset(in, 0x01, sizeof(in));
    const char *out = quote(in, sizeof(in));
    assert_int_equal(strlen(out), LOG_QUOTE_SIZE - 1);
}

/* logged: what log_write wrote for one event, at the given levels. */
static char *logged(enum log_level level, enum log_level event, const char *message)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    struct log l = {.level = level, .out = out};
    log_write(&l, event, "%s", message);
    fclose(out);
    return text;
}

static void a_message_is_one_line_whatever_it_holds(void **state)
{
    (void)state;
    char *text = logged(LOG_LEVEL_INFO, LOG_LEVEL_WARN, "a\nb\r2026-01-01T00:00:00.000Z ERROR x\x1b");
    const char *message = strstr(text, " WARN ");
    assert_non_null(message);
    assert_string_equal(message, " WARN a?b?2026-01-01T00:00:00.000Z ERROR x?\n");
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    free(text);
}

static void a_long_message_is_cut_to_one_line(void **state)
{
    (void)state;
    char big[4096];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *text = logged(LOG_LEVEL_INFO, LOG_LEVEL_INFO, big);
    assert_true(strlen(text) <= 1024);
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    free(text);
}

static void levels_above_the_setting_are_not_written(void **state)
{
    (void)state;
    char *text = logged(LOG_LEVEL_WARN, LOG_LEVEL_INFO, "quiet");
    assert_string_equal(text, "");
    free(text);
    text = logged(LOG_LEVEL_WARN, LOG_LEVEL_ERROR, "loud");
    assert_non_null(strstr(text, " ERROR loud\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(printable_ascii_stays),
        cmocka_unit_test(every_other_byte_is_hex),
        cmocka_unit_test(long_input_is_cut_and_marked),
        cmocka_unit_test(the_worst_input_fits),
        cmocka_unit_test(a_message_is_one_line_whatever_it_holds),
        cmocka_unit_test(a_long_message_is_cut_to_one_line),
        cmocka_unit_test(levels_above_the_setting_are_not_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
