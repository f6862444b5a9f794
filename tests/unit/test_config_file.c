#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqd/config_file.h"

/* record: the settings handed over, as "key=value|" each; the visitor fails
 * on the key `refuse`. */
struct record {
    char text[1024];
    size_t calls;
};

static int on_setting(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct record *r = ctx;
    r->calls++;
    if (strcmp(key, "refuse") == 0) {
        snprintf(err, err_len, "refused '%s'", value);
        return -1;
    }
    size_t used = strlen(r->text);
    snprintf(r->text + used, sizeof(r->text) - used, "%s=%s|", key, value);
    return 0;
}

static char err[512];

/* read_bytes: runs config_file_read over `len` bytes named "test.conf". */
static int read_bytes(const char *bytes, size_t len, struct record *r)
{
    memset(r, 0, sizeof(*r));
    err[0] = '\0';
    FILE *in = len ? fmemopen((void *)bytes, len, "r") : fopen("/dev/null", "r");
    assert_non_null(in);
    int rc = config_file_read(in, "test.conf", on_setting, r, err, sizeof(err));
    fclose(in);
    if (rc < 0)
        assert_null(strchr(err, '\n'));
    return rc;
}

static int read_text(const char *text, struct record *r)
{
    return read_bytes(text, strlen(text), r);
}

static void settings_come_in_file_order(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("port 7001\nbind ::1\nport 7002\n", &r), 0);
    assert_string_equal(r.text, "port=7001|bind=::1|port=7002|");
}

static void an_empty_file_has_no_settings(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("", &r), 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(read_text("\n\n# only a comment\n   \n\t\n", &r), 0);
    assert_int_equal(r.calls, 0);
}

static void comments_and_blank_lines_are_skipped(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("# port 1\n\n   # indented comment\n\t#tab\nport 2\n#end", &r), 0);
    assert_string_equal(r.text, "port=2|");
}

static void whitespace_around_lines_and_words_is_trimmed(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("  port 1  \n\tbind\t\t::1\t\r\nmax-line  \t 2k\r\n", &r), 0);
    assert_string_equal(r.text, "port=1|bind=::1|max-line=2k|");
}

static void a_last_line_without_newline_counts(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("port 1\nport 2", &r), 0);
    assert_string_equal(r.text, "port=1|port=2|");
}

static void a_hash_inside_a_value_is_part_of_it(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("log-file /var/log/a#b\n", &r), 0);
    assert_string_equal(r.text, "log-file=/var/log/a#b|");
}

static void a_missing_value_names_the_key_and_line(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("# comment\n\nport\n", &r), -1);
    assert_string_equal(err, "test.conf:3: no value for 'port'");
    assert_int_equal(read_text("port   \t\n", &r), -1);
    assert_string_equal(err, "test.conf:1: no value for 'port'");
}

static void more_than_one_value_is_refused(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("port 1\nbind 1.2.3.4  5.6.7.8\n", &r), -1);
    assert_string_equal(err, "test.conf:2: 'bind' takes one value, not '1.2.3.4  5.6.7.8'");
    assert_int_equal(read_text("port 7000 # the default\n", &r), -1);
    assert_string_equal(err, "test.conf:1: 'port' takes one value, not '7000 # the default'");
}

/* line_of: "k " and then `len` bytes in all, the value made of 'x'. */
static char *line_of(size_t len)
{
    char *line = malloc(len + 2);
    assert_non_null(line);
    memset(line, 'x', len);
    memcpy(line, "k ", 2);
    line[len] = '\n';
    line[len + 1] = '\0';
    return line;
}

static void a_line_at_the_limit_is_read_one_over_it_is_refused(void **state)
{
    (void)state;
    struct record r;
    char *longest = line_of(CONFIG_FILE_LINE_MAX);
    assert_int_equal(read_text(longest, &r), 0);
    assert_int_equal(r.calls, 1);
    free(longest);

    char *over = line_of(CONFIG_FILE_LINE_MAX + 1);
    char text[CONFIG_FILE_LINE_MAX + 32];
    snprintf(text, sizeof(text), "port 1\n%s", over);
    assert_int_equal(read_text(text, &r), -1);
    assert_string_equal(err, "test.conf:2: line longer than 4096 bytes");
    assert_int_equal(r.calls, 1);
    free(over);
}

static void control_characters_are_refused(void **state)
{
    (void)state;
    static const char *const lines[] = {"port 1\x01", "bi\x7fnd x", "port\v1", "port 1\fx"};
    struct record r;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        assert_int_equal(read_text(lines[i], &r), -1);
        assert_string_equal(err, "test.conf:1: control character in line");
    }
    static const char with_nul[] = "port 1\nbind a\0b\n";
    assert_int_equal(read_bytes(with_nul, sizeof(with_nul) - 1, &r), -1);
    assert_string_equal(err, "test.conf:2: control character in line");
    assert_string_equal(r.text, "port=1|");
}

static void a_visitor_error_gets_file_and_line_and_stops_reading(void **state)
{
    (void)state;
    struct record r;
    assert_int_equal(read_text("port 1\n\n#\nrefuse me\nport 2\n", &r), -1);
    assert_string_equal(err, "test.conf:4: refused 'me'");
    assert_string_equal(r.text, "port=1|");
    assert_int_equal(r.calls, 2);
}

static void a_read_error_names_the_file(void **state)
{
    (void)state;
    struct record r = {0};
    FILE *dir = fopen("/", "r"); /* opens; reading says EISDIR */
    assert_non_null(dir);
    assert_int_equal(config_file_read(dir, "/", on_setting, &r, err, sizeof(err)), -1);
    fclose(dir);
    assert_string_equal(err, "cannot read /: Is a directory");
    assert_int_equal(r.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settings_come_in_file_order),
        cmocka_unit_test(an_empty_file_has_no_settings),
        cmocka_unit_test(comments_and_blank_lines_are_skipped),
        cmocka_unit_test(whitespace_around_lines_and_words_is_trimmed),
        cmocka_unit_test(a_last_line_without_newline_counts),
        cmocka_unit_test(a_hash_inside_a_value_is_part_of_it),
        cmocka_unit_test(a_missing_value_names_the_key_and_line),
        cmocka_unit_test(more_than_one_value_is_refused),
        cmocka_unit_test(a_line_at_the_limit_is_read_one_over_it_is_refused),
        cmocka_unit_test(control_characters_are_refused),
        cmocka_unit_test(a_visitor_error_gets_file_and_line_and_stops_reading),
        cmocka_unit_test(a_read_error_names_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
