#include "mqd/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_labels[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i <= LOG_LEVEL_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* append_to: a stream appending to `path`; NULL with errno set. */
static FILE *append_to(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "a");
    if (!f) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return f;
}

int log_open_file(struct log *l, const char *path)
{
    FILE *f = append_to(path);
    if (!f)
        return -1;
    l->out = f;
    l->path = path;
    return 0;
}

int log_reopen(struct log *l)
{
    FILE *f = append_to(l->path);
    if (!f)
        return -1;
    fclose(l->out);
    l->out = f;
    return 0;
}

void log_close(struct log *l)
{
    if (!l->path)
        return;
    fclose(l->out);
    l->out = NULL;
    l->path = NULL;
}

/* replace_controls: a message is one line of text, whatever reached it */
static void replace_controls(char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            text[i] = '?';
}

const char *log_quote(char out[LOG_QUOTE_SIZE], const char *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, shown = len < LOG_QUOTE_MAX ? len : LOG_QUOTE_MAX;
    out[n++] = '"';
    for (size_t i = 0; i < shown; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            out[n++] = (char)ch;
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n++] = '"';
    if (shown < len)
        n += (size_t)snprintf(out + n, LOG_QUOTE_SIZE - n, "...");
    out[n] = '\0';
    return out;
}

void log_write(const struct log *l, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(l, level))
        return;
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", now.tv_nsec / 1000000L,
                          level_labels[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m > 0) {
        size_t len = (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
        replace_controls(line + n, len);
        n += len;
    }
    line[n++] = '\n';
    /* one write per line, so lines from a crash or another process never mix */
    fwrite(line, 1, n, l->out);
    fflush(l->out);
}

bool log_limit_allow(struct log_limit *limit, uint64_t *held_back)
{
    time_t now = time(NULL);
    if (now == limit->second) {
        limit->held++;
        return false;
    }
    limit->second = now;
    *held_back = limit->held;
    limit->held = 0;
    return true;
}
