/*
 * framer: splits a byte stream into lines, whatever its chunking.
 *
 * A line ends at '\n'. Complete lines are handed over straight from the
 * caller's chunk; only an unfinished tail is copied, into storage owned by the
 * framer, which is freed again as soon as the line completes (an idle client
 * holds no buffer). A line longer than `max_line` bytes (every byte before the
 * '\n' counts) is reported once as too long and discarded up to its '\n'; the
 * framer never holds more than `max_line` bytes.
 *
 * With a memory budget, the framer asks it before its storage grows, naming
 * the feed's context as the requester (budget.h); a refusal is reported as
 * out of memory.
 *
 * The handed-over line is raw: the caller strips "\r" and blanks.
 */
#ifndef MQD_FRAMER_H
#define MQD_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct budget;

enum framer_event { FRAMER_LINE, FRAMER_TOO_LONG, FRAMER_NO_MEMORY };

/* what the framer does after handing over a line or an event */
enum framer_next {
    FRAMER_GO_ON,    /* the line is taken: on to the next one */
    FRAMER_STOP,     /* the line is taken: stop here */
    FRAMER_PUT_BACK, /* the line is not taken (FRAMER_LINE only): stop before it */
};

/* framer_fn: receives each line (or event: line is then NULL). */
typedef enum framer_next (*framer_fn)(void *ctx, enum framer_event event, const char *line,
                                      size_t len);

struct framer {
    char *tail; /* the unfinished line, or NULL */
    size_t tail_len;
    size_t tail_cap;
    size_t max_line;
    struct budget *budget; /* NULL: none */
    bool discarding; /* inside a line already reported too long */
};

void framer_init(struct framer *f, size_t max_line, struct budget *budget);

/* framer_reset: frees the tail and forgets any partial line. */
void framer_reset(struct framer *f);

/* framer_feed: hands every line completed by this chunk to `fn`, in order, and
 * keeps the unfinished tail. Returns how many bytes of the chunk it took: all
 * of them, unless `fn` stopped (the bytes up to that line's '\n') or put a
 * line back (the bytes before that line; a line begun in earlier chunks is
 * kept as it was, so feeding the rest again hands the same line over). A
 * tail that cannot be stored for lack of memory is reported as
 * FRAMER_NO_MEMORY and discarded up to its '\n', like a line too long. */
size_t framer_feed(struct framer *f, const char *data, size_t len, framer_fn fn, void *ctx);

/* framer_finish: at end of input, hands over an unfinished last line, if any,
 * as if it had ended with '\n' (it cannot be put back). False when `fn`
 * did not say go on. */
bool framer_finish(struct framer *f, framer_fn fn, void *ctx);

#endif
