#include "session.h"

#include "console.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* read_password: the first line of the file, without its line end; NULL
 * once reported why not */
static char *read_password(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f || getline(&line, &cap, f) < 0) {
        report("cannot read the password from %s: %s", path, f ? "it is empty" : strerror(errno));
        if (f)
            fclose(f);
        free(line);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

/* login_reply: the reply to the auth command, the first line to come */
static int login_reply(void *ctx, char *line, size_t len)
{
    const struct endpoint *at = ctx;
    struct wire_line l;
    int rc = CLI_OK;
    if (wire_parse(line, len, &l) != WIRE_SUCCESS) {
        report("login as %s refused: %s", at->user,
               l.kind == WIRE_FAILURE || l.kind == WIRE_TURNED_AWAY ? l.reason : line);
        rc = CLI_FAILED;
    }
    wire_line_free(&l);
    return rc;
}

/* login: the auth command, and its reply awaited */
static int login(struct session *s, const struct endpoint *at)
{
    char *password = read_password(at->password_file);
    if (!password)
        return CLI_FAILED;
    char *line = wire_auth(at->user, password);
    explicit_bzero(password, strlen(password));
    free(password);
    int rc = line ? session_queue(s, line, strlen(line)) : CLI_FAILED;
    if (line) {
        explicit_bzero(line, strlen(line));
        free(line);
    } else {
        report("out of memory");
    }
    while (rc == CLI_OK) {
        bool other;
        if (session_wait(s, -1, &other) != CLI_GO_ON)
            return CLI_FAILED;
        int got = session_each_line(s, login_reply, (void *)at);
        if (got != CLI_GO_ON)
            return got;
        if (s->state != SESSION_OPEN)
            return session_report_end(s);
    }
    return rc;
}

int session_open(struct session *s, const struct endpoint *at)
{
    char err[512];
    memset(s, 0, sizeof(*s));
    buffer_init(&s->in);
    buffer_init(&s->out);
    if (link_open(&s->link, at, err, sizeof(err)) < 0) {
        report("%s", err);
        return CLI_FAILED;
    }
    s->state = SESSION_OPEN;
    return at->user ? login(s, at) : CLI_OK;
}

void session_close(struct session *s)
{
    link_close(&s->link);
    buffer_free(&s->in);
    buffer_free(&s->out);
}

int session_queue(struct session *s, const char *bytes, size_t len)
{
    if (buffer_append(&s->out, bytes, len) < 0) {
        report("out of memory");
        return CLI_FAILED;
    }
    return CLI_OK;
}

int session_command(struct session *s, char *line)
{
    if (!line) {
        report("out of memory");
        return CLI_FAILED;
    }
    int rc = session_queue(s, line, strlen(line));
    free(line);
    if (rc == CLI_OK)
        s->commands++;
    return rc;
}

int session_reply(struct session *s, const struct wire_line *l, const char *line,
                  const char *context)
{
    switch (l->kind) {
    case WIRE_SUCCESS:
        if (s->replies == s->commands)
            break;
        s->replies++;
        return CLI_GO_ON;
    case WIRE_FAILURE:
        report("%s%s%s%s", l->reason, context ? " (" : "", context ? context : "",
               context ? ")" : "");
        return CLI_REFUSED;
    case WIRE_TURNED_AWAY:
        report("connection refused by the server: %s", l->reason);
        return CLI_FAILED;
    case WIRE_DELIVERY:
    case WIRE_INVALID: break;
    }
    report("the server sent a line that answers no command: %.100s", line);
    return CLI_FAILED;
}

size_t session_pending(const struct session *s) { return s->out.len; }

static void lose(struct session *s, int error)
{
    s->state = SESSION_LOST;
    s->error = error;
}

/* flush: writes what the socket takes now. MSG_NOSIGNAL: a server gone away
 * is an EPIPE to report, not a SIGPIPE that kills mqd-cli without a word. */
static void flush(struct session *s)
{
    while (s->out.len && s->state == SESSION_OPEN) {
        ssize_t n = link_write(&s->link, s->out.data + s->out.start, s->out.len);
        if (n >= 0)
            buffer_drop(&s->out, (size_t)n);
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        else if (errno != EINTR)
            lose(s, errno);
    }
}

/* fill: reads what has come; through TLS, until the library holds nothing
 * more (poll(2) cannot see what it decoded) */
static void fill(struct session *s)
{
    char chunk[64 * 1024];
    do {
        ssize_t n = link_read(&s->link, chunk, sizeof(chunk));
        if (n > 0 && buffer_append(&s->in, chunk, (size_t)n) < 0)
            lose(s, ENOMEM);
        else if (n == 0)
            s->state = SESSION_CLOSED;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            lose(s, errno);
        if (n <= 0)
            return;
    } while (s->state == SESSION_OPEN);
}

/* pump: writes and reads what poll(2) said is ready */
static void pump(struct session *s, short revents)
{
    if (revents & POLLOUT) {
        flush(s);
        if (s->link.want_write) /* a TLS read waited to write */
            revents |= POLLIN;
    }
    /* POLLHUP and POLLERR too: the read says what happened */
    if (s->state == SESSION_OPEN && (revents & (POLLIN | POLLHUP | POLLERR)))
        fill(s);
}

int session_wait(struct session *s, int other, bool *other_ready)
{
    short events = (short)(POLLIN | (s->out.len || s->link.want_write ? POLLOUT : 0));
    struct pollfd fds[2] = {{s->state == SESSION_OPEN ? s->link.fd : -1, events, 0},
                            {other, POLLIN, 0}};
    *other_ready = false;
    if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR)
            return CLI_GO_ON;
        report("poll: %s", strerror(errno));
        return CLI_FAILED;
    }
    *other_ready = fds[1].revents != 0;
    pump(s, fds[0].revents);
    return CLI_GO_ON;
}

int session_each_line(struct session *s, session_line_fn fn, void *ctx)
{
    char *line;
    size_t len;
    int rc = CLI_GO_ON;
    while (rc == CLI_GO_ON && (line = buffer_take_line(&s->in, &len))) {
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        rc = fn(ctx, line, len);
    }
    return rc;
}

int session_report_end(const struct session *s)
{
    if (s->state == SESSION_LOST)
        report("connection lost: %s", strerror(s->error));
    else
        report("connection closed by the server");
    return CLI_FAILED;
}
