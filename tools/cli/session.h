/*
 * session: one connection to mqd, driven by the caller's poll(2) loop.
 *
 * Lines queued for the server are written as the socket takes them; lines
 * from the server are kept until the caller takes them, each without its
 * "\r\n". Neither side ever blocks, so a command can write while replies
 * come back (and keep reading stdin or signals) without a deadlock.
 */
#ifndef MQD_CLI_SESSION_H
#define MQD_CLI_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"
#include "dial.h"
#include "link.h"
#include "wire.h"

enum session_state {
    SESSION_OPEN,
    SESSION_CLOSED, /* the server closed the connection */
    SESSION_LOST,   /* reading or writing failed; `error` is the errno */
};

struct session {
    struct link link;
    enum session_state state;
    int error;
    struct buffer in;            /* from the server, not taken yet */
    struct buffer out;           /* for the server, not written yet */
    unsigned long long commands; /* queued with session_command */
    unsigned long long replies;  /* of those, answered */
};

/* session_open: connects to `at` (TLS as it says) and, with a user, logs
 * in, waiting for the reply. CLI_OK, or CLI_FAILED once it has reported
 * why (a refused login: "login as USER refused: REASON"). */
int session_open(struct session *s, const struct endpoint *at);

void session_close(struct session *s);

/* session_queue: queues `len` bytes for the server (the caller ends a line
 * with its '\n'). CLI_OK, or CLI_FAILED once it has reported running out of
 * memory. */
int session_queue(struct session *s, const char *bytes, size_t len);

/* session_command: queues `line`, a command ending with '\n' (NULL: it
 * could not be built for lack of memory), and counts it as waiting for its
 * reply; frees it. CLI_OK, or CLI_FAILED once it has reported why not. */
int session_command(struct session *s, char *line);

/* session_reply: handles a line from the server `l` (parsed from `line`)
 * that is not a delivery the caller takes: a success answers the oldest
 * command waiting, and CLI_GO_ON comes back. Anything else is reported
 * (`context`, such as "stdin line 3", follows a refusal's reason unless
 * NULL) and its exit status returned: CLI_REFUSED for a refused command,
 * CLI_FAILED for the rest. */
int session_reply(struct session *s, const struct wire_line *l, const char *line,
                  const char *context);

/* session_pending: bytes queued and not written yet. */
size_t session_pending(const struct session *s);

/* session_wait: waits until the connection or `other` (a descriptor to
 * read, or -1) is ready, then writes and reads what the connection allows;
 * s->state then tells whether it is still open. Lines read before the server
 * closed can still be taken after it did. CLI_GO_ON, with *other_ready
 * telling whether `other` is readable (or at its end), or CLI_FAILED once it
 * has reported why poll(2) failed. Only for an open session: a closed one
 * has nothing more to wait for. */
int session_wait(struct session *s, int other, bool *other_ready);

/* session_line_fn: handles one line from the server, without its "\r\n" and
 * '\0'-terminated; CLI_GO_ON for the next, anything else stops. */
typedef int (*session_line_fn)(void *ctx, char *line, size_t len);

/* session_each_line: hands every whole line from the server that has
 * arrived to `fn`, in order, until it returns other than CLI_GO_ON; returns
 * that, or CLI_GO_ON. */
int session_each_line(struct session *s, session_line_fn fn, void *ctx);

/* session_report_end: reports how a session that is no longer open ended;
 * returns CLI_FAILED. */
int session_report_end(const struct session *s);

#endif
