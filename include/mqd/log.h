/*
 * log: one line per event, "2026-11-25T03:37:03.123Z WARN message", to a
 * stream chosen by the owner of the struct log (stderr by default), or
 * appended to a file that log_reopen can open anew after logrotate moved it.
 *
 * Log lines cannot be forged: bytes from a client only reach a message
 * through log_quote, and log_write replaces any control character left in a
 * message, so a client can never start a line of its own.
 */
#ifndef MQD_LOG_H
#define MQD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

struct log {
    enum log_level level; /* events above this level are not written */
    FILE *out;
    const char *path; /* the file `out` appends to; NULL when `out` is not ours */
};

/* log_open_file: makes `l` append to the file at `path`, created (mode 0640)
 * if missing. 0, or -1 with errno set, leaving `l` as it was. The path must
 * outlive `l`; log_close closes the file. */
int log_open_file(struct log *l, const char *path);

/* log_reopen: opens the file at l->path anew and closes the old stream, so
 * lines go to a new file once logrotate has moved the old one away. 0, or -1
 * with errno set, and the lines keep going to the old stream. */
int log_reopen(struct log *l);

/* log_close: closes the file log_open_file opened, if any. */
void log_close(struct log *l);

/* log_level_parse: "error", "warn", "info" or "debug". 0, or -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);

static inline bool log_enabled(const struct log *l, enum log_level level)
{
    return level <= l->level;
}

/* log_write: writes one line, if `level` is enabled; the message is cut to
 * fit one line of at most 1 KiB. */
void log_write(const struct log *l, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_quote: at most LOG_QUOTE_MAX bytes of client data as a quoted string
 * for a log message: printable ASCII as is, '"' and '\\' escaped with a
 * backslash, every other byte as \xNN, and "..." after the quote when cut.
 * Returns `out`, a NUL-terminated string of less than LOG_QUOTE_SIZE bytes. */
#define LOG_QUOTE_MAX 64
#define LOG_QUOTE_SIZE (4 * LOG_QUOTE_MAX + 6)
const char *log_quote(char out[LOG_QUOTE_SIZE], const char *in, size_t len);

/* log_limit: lets through one event of a kind per second and counts the
 * others, so a flood of the same warning cannot flood the log. */
struct log_limit {
    time_t second;
    uint64_t held; /* events held back since the last one let through */
};

/* log_limit_allow: whether to log this event now; if so, *held_back is how
 * many of its kind were held back since the last one logged. */
bool log_limit_allow(struct log_limit *limit, uint64_t *held_back);

#define log_error(l, ...) log_write((l), LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(l, ...) log_write((l), LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(l, ...) log_write((l), LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(l, ...) log_write((l), LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
