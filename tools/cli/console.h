/*
 * console: mqd-cli's exit statuses and its standard streams: error messages,
 * output lines and reads of stdin.
 *
 * Every error is one line on stderr, "mqd-cli: " and what went wrong, so a
 * script can show it as it is. Output lines go to stdout one at a time and
 * are flushed at once: `mqd-cli sub x | grep y` must see each message as it
 * arrives, not when a stdio buffer fills.
 */
#ifndef MQD_CLI_CONSOLE_H
#define MQD_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"

enum cli_status {
    CLI_OK = 0,      /* done */
    CLI_FAILED = 1,  /* no connection, connection lost, or a local error */
    CLI_USAGE = 2,   /* a bad command line */
    CLI_REFUSED = 3, /* the server refused a command; its reason was reported */
    CLI_GO_ON = -1,  /* not an exit status: the command is not finished yet */
};

/* report: prints "mqd-cli: " and the formatted text as one line on stderr. */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* print_line: writes `len` bytes and a '\n' to stdout and flushes them.
 * CLI_OK, or CLI_FAILED once it has reported why it could not. */
int print_line(const char *text, size_t len);

/* read_stdin: one read(2) of stdin into the end of `b`; sets *ended at end
 * of file. CLI_GO_ON, or CLI_FAILED once it has reported why it could not. */
int read_stdin(struct buffer *b, bool *ended);

#endif
