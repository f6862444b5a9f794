#include "sub.h"

#include "console.h"
#include "session.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct sub {
    const struct sub_options *o;
    struct session s;
    int signal_fd;
    unsigned long long printed;
};

/* stop_signals: SIGINT and SIGTERM as a descriptor that poll(2) watches, so
 * that a signal ends the loop between two lines, never inside a write. */
static int stop_signals(struct sub *sub)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        (sub->signal_fd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        report("cannot watch for signals: %s", strerror(errno));
        return CLI_FAILED;
    }
    return CLI_OK;
}

static int queue_subscribes(struct sub *sub)
{
    const struct sub_options *o = sub->o;
    for (size_t i = 0; i < o->ntopics; i++) {
        char *line =
            wire_subscribe(o->topics[i], o->has_last_seen ? &o->last_seen : NULL, o->cache);
        int rc = session_command(&sub->s, line);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

/* print_delivery: one message in the chosen format. */
static int print_delivery(const struct sub *sub, const struct wire_line *m, const char *line,
                          size_t len)
{
    switch (sub->o->format) {
    case FORMAT_MSG: return print_line(m->msg, strlen(m->msg));
    case FORMAT_JSON: return print_line(line, len); /* as sent: nothing cut at U+0000 */
    case FORMAT_INDEX: break;
    }
    char *text;
    int n = asprintf(&text, "%s\t%" PRId64 "\t%s", m->topic, m->index, m->msg);
    if (n < 0) {
        report("out of memory");
        return CLI_FAILED;
    }
    int rc = print_line(text, (size_t)n);
    free(text);
    return rc;
}

/* handle_line: one line from the server (a session_line_fn) */
static int handle_line(void *ctx, char *line, size_t len)
{
    struct sub *sub = ctx;
    struct wire_line l;
    int rc;
    if (wire_parse(line, len, &l) == WIRE_DELIVERY) {
        rc = print_delivery(sub, &l, line, len);
        if (rc == CLI_OK)
            rc = ++sub->printed == sub->o->count ? CLI_OK : CLI_GO_ON;
    } else {
        rc = session_reply(&sub->s, &l, line, NULL);
    }
    wire_line_free(&l);
    return rc;
}

/* receive: the loop, until a message count, a signal, or the end */
static int receive(struct sub *sub)
{
    int rc = CLI_GO_ON;
    while (rc == CLI_GO_ON) {
        bool stopped;
        rc = session_wait(&sub->s, sub->signal_fd, &stopped);
        if (rc == CLI_GO_ON && stopped)
            rc = CLI_OK; /* as asked */
        if (rc == CLI_GO_ON)
            rc = session_each_line(&sub->s, handle_line, sub);
        if (rc == CLI_GO_ON && sub->s.state != SESSION_OPEN)
            rc = session_report_end(&sub->s);
    }
    return rc;
}

int sub_run(const struct endpoint *at, const struct sub_options *o)
{
    struct sub sub = {.o = o, .signal_fd = -1};
    int rc = session_open(&sub.s, at);
    if (rc != CLI_OK)
        return rc;
    rc = stop_signals(&sub);
    if (rc == CLI_OK)
        rc = queue_subscribes(&sub);
    if (rc == CLI_OK)
        rc = receive(&sub);
    if (sub.signal_fd >= 0)
        close(sub.signal_fd);
    session_close(&sub.s);
    return rc;
}
