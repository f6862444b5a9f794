#include "mqd/config_file.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

enum { LINE_END = -1, LINE_TOO_LONG = -2, LINE_READ_ERROR = -3 };

/* the most of a line that an error message repeats */
#define QUOTED_MAX 100

/* read_line: the next line of `in`, without its '\n', into `line` (room for
 * CONFIG_FILE_LINE_MAX bytes and a NUL): its length, or one of LINE_END,
 * LINE_TOO_LONG, LINE_READ_ERROR. A last line without '\n' still counts. */
static long read_line(FILE *in, char *line)
{
    size_t n = 0;
    int c;
    while ((c = getc(in)) != EOF && c != '\n') {
        if (n == CONFIG_FILE_LINE_MAX)
            return LINE_TOO_LONG;
        line[n++] = (char)c;
    }
    if (ferror(in))
        return LINE_READ_ERROR;
    if (c == EOF && n == 0)
        return LINE_END;
    line[n] = '\0';
    return (long)n;
}

static bool is_trimmed(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* has_control_character: counts a NUL too, which is why it takes a length. */
static bool has_control_character(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

/* split: "key value" into its two words, in place; -1 (with `err` set) when
 * the value is missing or more follows it. */
static int split(char *text, char **key, char **value, char *err, size_t err_len)
{
    char *end = text + strcspn(text, " \t");
    *key = text;
    if (*end == '\0') {
        snprintf(err, err_len, "no value for '%.*s'", QUOTED_MAX, text);
        return -1;
    }
    *end++ = '\0';
    end += strspn(end, " \t");
    *value = end;
    if (end[strcspn(end, " \t")] != '\0') {
        snprintf(err, err_len, "'%.*s' takes one value, not '%.*s'", QUOTED_MAX, *key, QUOTED_MAX,
                 end);
        return -1;
    }
    return 0;
}

/* read_setting: one line of `len` bytes: skipped, handed to `visit`, or -1
 * with `err` set. */
static int read_setting(char *line, size_t len, config_visit visit, void *ctx, char *err,
                        size_t err_len)
{
    while (len > 0 && is_trimmed(line[len - 1]))
        len--;
    while (len > 0 && is_trimmed(*line)) {
        line++;
        len--;
    }
    if (len == 0 || *line == '#')
        return 0;
    if (has_control_character(line, len)) {
        snprintf(err, err_len, "control character in line");
        return -1;
    }
    line[len] = '\0';
    char *key, *value;
    if (split(line, &key, &value, err, err_len) < 0)
        return -1;
    return visit(ctx, key, value, err, err_len);
}

int config_file_read(FILE *in, const char *name, config_visit visit, void *ctx, char *err,
                     size_t err_len)
{
    char line[CONFIG_FILE_LINE_MAX + 1];
    char why[256];
    for (unsigned long number = 1;; number++) {
        long len = read_line(in, line);
        if (len == LINE_END)
            return 0;
        if (len == LINE_READ_ERROR) {
            snprintf(err, err_len, "cannot read %s: %s", name, strerror(errno));
            return -1;
        }
        int rc = 0;
        if (len == LINE_TOO_LONG) {
            snprintf(why, sizeof(why), "line longer than %d bytes", CONFIG_FILE_LINE_MAX);
            rc = -1;
        } else {
            rc = read_setting(line, (size_t)len, visit, ctx, why, sizeof(why));
        }
        if (rc < 0) {
            snprintf(err, err_len, "%s:%lu: %s", name, number, why);
            return -1;
        }
    }
}
