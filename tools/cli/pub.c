#include "pub.h"

#include "buffer.h"
#include "console.h"
#include "session.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* bytes queued for the server above which stdin is not read: a fast stdin
 * must not pile up in memory while the socket is full */
#define MAX_QUEUED (256 * 1024)

struct pub {
    const struct pub_options *o;
    struct session s;
    struct buffer input;       /* stdin not sent yet */
    bool input_ended;          /* stdin said end of file, or the one MSG is queued */
    unsigned long long bad_at; /* a stdin line that cannot be sent, or 0 */
};

/* queue_message: the send command of one message. */
static int queue_message(struct pub *pub, const char *msg, size_t len)
{
    if (memchr(msg, '\0', len)) {
        /* cJSON would cut it there: refuse it rather than send part of it,
         * once the lines before it are answered */
        pub->bad_at = pub->s.commands + 1;
        return CLI_GO_ON;
    }
    char *line = wire_send(pub->o->topic, msg, pub->o->one, pub->o->cache);
    int rc = session_command(&pub->s, line);
    return rc == CLI_OK ? CLI_GO_ON : rc;
}

static bool window_open(const struct pub *pub)
{
    return pub->s.commands - pub->s.replies < PUB_IN_FLIGHT &&
           session_pending(&pub->s) < MAX_QUEUED;
}

/* input_done: nothing more to send */
static bool input_done(const struct pub *pub)
{
    return pub->bad_at || (pub->input_ended && pub->input.len == 0);
}

/* queue_input: sends the stdin lines held, as far as the window goes; once
 * stdin has ended, its unfinished last line too. */
static int queue_input(struct pub *pub)
{
    int rc = CLI_GO_ON;
    while (rc == CLI_GO_ON && !pub->bad_at && window_open(pub)) {
        size_t len;
        char *line = buffer_take_line(&pub->input, &len);
        if (!line && pub->input_ended)
            line = buffer_take_rest(&pub->input, &len);
        if (!line)
            break;
        rc = queue_message(pub, line, len);
    }
    return rc;
}

/* read_input: one read of stdin, and the lines it completes. After end of
 * file stdin is not read again: on a terminal, a second read would wait for
 * more typing after Ctrl-D. */
static int read_input(struct pub *pub)
{
    int rc = read_stdin(&pub->input, &pub->input_ended);
    return rc == CLI_GO_ON ? queue_input(pub) : rc;
}

/* handle_reply: one line from the server (a session_line_fn) */
static int handle_reply(void *ctx, char *line, size_t len)
{
    struct pub *pub = ctx;
    struct wire_line l;
    char context[64];
    snprintf(context, sizeof(context), "stdin line %llu", pub->s.replies + 1);
    wire_parse(line, len, &l);
    int rc = session_reply(&pub->s, &l, line, pub->o->msg ? NULL : context);
    wire_line_free(&l);
    return rc;
}

/* finished: every message sent is answered and nothing is left to send */
static bool finished(const struct pub *pub)
{
    return input_done(pub) && pub->s.replies == pub->s.commands && session_pending(&pub->s) == 0;
}

/* step: one round of the loop; CLI_GO_ON or the exit status. */
static int step(struct pub *pub)
{
    bool want_input = !pub->input_ended && !pub->bad_at && window_open(pub);
    bool input_ready;
    int rc = session_wait(&pub->s, want_input ? STDIN_FILENO : -1, &input_ready);
    if (rc == CLI_GO_ON && input_ready)
        rc = read_input(pub);
    if (rc == CLI_GO_ON)
        rc = session_each_line(&pub->s, handle_reply, pub);
    if (rc == CLI_GO_ON)
        rc = queue_input(pub); /* replies opened the window */
    /* a server that closes after the last reply has done its part */
    if (rc == CLI_GO_ON && pub->s.state != SESSION_OPEN && !finished(pub))
        rc = session_report_end(&pub->s);
    return rc;
}

int pub_run(const struct endpoint *at, const struct pub_options *o)
{
    struct pub pub = {.o = o};
    buffer_init(&pub.input);
    int rc = session_open(&pub.s, at);
    if (rc != CLI_OK)
        return rc;
    rc = CLI_GO_ON;
    if (o->msg) {
        rc = queue_message(&pub, o->msg, strlen(o->msg));
        pub.input_ended = true;
    }
    while (rc == CLI_GO_ON && !finished(&pub))
        rc = step(&pub);
    if (rc == CLI_GO_ON && pub.bad_at) {
        report("stdin line %llu holds a NUL byte, which cannot be sent", pub.bad_at);
        rc = CLI_FAILED;
    }
    session_close(&pub.s);
    buffer_free(&pub.input);
    return rc == CLI_GO_ON ? CLI_OK : rc;
}
