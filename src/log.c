#include "mqd/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

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
    if (m > 0)
        n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
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
