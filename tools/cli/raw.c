#include "raw.h"

#include "buffer.h"
#include "console.h"
#include "session.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* bytes queued for the server above which stdin is not read */
#define MAX_QUEUED (256 * 1024)

struct raw {
    struct session s;
    struct buffer input; /* stdin not yet a whole line */
    bool input_ended;    /* end of stdin, or a quit sent */
    bool shut;           /* the sending side is shut */
};

/* is_quit: whether mqd reads `line` as quit: it drops one '\r' at the end,
 * then spaces and tabs around it (docs/PROTOCOL.md) */
static bool is_quit(const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    return len == 4 && memcmp(line, "quit", 4) == 0;
}

/* forward: sends the whole stdin lines held, as they are; after a quit,
 * nothing (the server ignores it). At the end of stdin, the unfinished last
 * line goes without a '\n': mqd runs it all the same. */
static int forward(struct raw *raw)
{
    char *line;
    size_t len;
    int rc = CLI_GO_ON;
    while (rc == CLI_GO_ON && !raw->input_ended && (line = buffer_take_line(&raw->input, &len))) {
        line[len] = '\n'; /* back where it was: the line goes as it came */
        rc = session_queue(&raw->s, line, len + 1) == CLI_OK ? CLI_GO_ON : CLI_FAILED;
        raw->input_ended = is_quit(line, len);
    }
    return rc;
}

static int read_input(struct raw *raw)
{
    bool ended = false;
    int rc = read_stdin(&raw->input, &ended);
    if (rc == CLI_GO_ON)
        rc = forward(raw);
    if (rc == CLI_GO_ON && ended && !raw->input_ended) {
        size_t len;
        char *rest = buffer_take_rest(&raw->input, &len);
        raw->input_ended = true;
        if (rest && session_queue(&raw->s, rest, len) != CLI_OK)
            rc = CLI_FAILED;
    }
    return rc;
}

/* shut_when_sent: once stdin ended and all of it is written, tells the
 * server so: it answers what it has and closes */
static int shut_when_sent(struct raw *raw)
{
    if (raw->shut || !raw->input_ended || session_pending(&raw->s) || raw->s.state != SESSION_OPEN)
        return CLI_GO_ON;
    raw->shut = true;
    if (link_shutdown_write(&raw->s.link) < 0 && errno != ENOTCONN) {
        report("shutdown: %s", strerror(errno));
        return CLI_FAILED;
    }
    return CLI_GO_ON;
}

/* show: one line from the server, pretty-printed (a session_line_fn) */
static int show(void *ctx, char *line, size_t len)
{
    (void)ctx;
    cJSON *tree = cJSON_ParseWithLengthOpts(line, len + 1, NULL, true);
    char *pretty = tree ? cJSON_Print(tree) : NULL;
    cJSON_Delete(tree);
    int rc = pretty ? print_line(pretty, strlen(pretty)) : print_line(line, len);
    cJSON_free(pretty);
    return rc == CLI_OK ? CLI_GO_ON : rc;
}

/* step: one round of the loop; CLI_GO_ON or the exit status */
static int step(struct raw *raw)
{
    bool want_input = !raw->input_ended && session_pending(&raw->s) < MAX_QUEUED;
    bool input_ready;
    int rc = session_wait(&raw->s, want_input ? STDIN_FILENO : -1, &input_ready);
    if (rc == CLI_GO_ON && input_ready)
        rc = read_input(raw);
    if (rc == CLI_GO_ON)
        rc = session_each_line(&raw->s, show, NULL);
    if (rc == CLI_GO_ON)
        rc = shut_when_sent(raw);
    if (rc == CLI_GO_ON && raw->s.state == SESSION_CLOSED && raw->input_ended)
        rc = CLI_OK;
    if (rc == CLI_GO_ON && raw->s.state != SESSION_OPEN)
        rc = session_report_end(&raw->s);
    return rc;
}

int raw_run(const struct endpoint *at)
{
    struct raw raw = {0};
    buffer_init(&raw.input);
    int rc = session_open(&raw.s, at);
    if (rc == CLI_OK) {
        do
            rc = step(&raw);
        while (rc == CLI_GO_ON);
    }
    session_close(&raw.s);
    buffer_free(&raw.input);
    return rc;
}
