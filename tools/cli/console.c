#include "console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mqd-cli: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int print_line(const char *text, size_t len)
{
    if (fwrite(text, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout) == EOF) {
        report("cannot write to standard output: %s", strerror(errno));
        return CLI_FAILED;
    }
    return CLI_OK;
}

int read_stdin(struct buffer *b, bool *ended)
{
    ssize_t n = buffer_read(b, STDIN_FILENO);
    if (n < 0 && errno != EINTR) {
        report("cannot read standard input: %s", strerror(errno));
        return CLI_FAILED;
    }
    if (n == 0)
        *ended = true;
    return CLI_GO_ON;
}
