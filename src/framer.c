#include "mqd/framer.h"

#include "mqd/alloc.h"
#include "mqd/budget.h"

#include <string.h>

void framer_init(struct framer *f, size_t max_line, struct budget *budget)
{
    memset(f, 0, sizeof(*f));
    f->max_line = max_line;
    f->budget = budget;
}

void framer_reset(struct framer *f)
{
    mqd_free(f->tail);
    framer_init(f, f->max_line, f->budget);
}

static void drop_tail(struct framer *f)
{
    mqd_free(f->tail);
    f->tail = NULL;
    f->tail_len = f->tail_cap = 0;
}

/* keep_tail: appends bytes of an unfinished line; false when out of memory
 * or the budget has no room. */
static bool keep_tail(struct framer *f, const char *data, size_t len, void *ctx)
{
    size_t need = f->tail_len + len;
    if (need > f->tail_cap) {
        /* double, but never past the line limit: the bound is on memory too */
        size_t cap = f->tail_cap ? f->tail_cap * 2 : 256;
        if (cap > f->max_line)
            cap = f->max_line;
        if (cap < need)
            cap = need;
        if (!budget_make_room(f->budget, cap - f->tail_cap, ctx))
            return false;
        char *tail = mqd_realloc(f->tail, cap);
        if (!tail)
            return false;
        f->tail = tail;
        f->tail_cap = cap;
    }
    memcpy(f->tail + f->tail_len, data, len);
    f->tail_len += len;
    return true;
}

/* start_discarding: the current line is dropped up to its '\n' after one event. */
static enum framer_next start_discarding(struct framer *f, enum framer_event why,
                                         framer_fn fn, void *ctx)
{
    drop_tail(f);
    f->discarding = true;
    return fn(ctx, why, NULL, 0);
}

/* take_partial: the bytes of a line whose '\n' has not come yet: kept, or
 * discarded with the line (whatever fn says, nothing is left to stop) */
static void take_partial(struct framer *f, const char *data, size_t len, framer_fn fn, void *ctx)
{
    if (f->discarding)
        return;
    if (f->tail_len + len > f->max_line)
        (void)start_discarding(f, FRAMER_TOO_LONG, fn, ctx);
    else if (!keep_tail(f, data, len, ctx))
        (void)start_discarding(f, FRAMER_NO_MEMORY, fn, ctx);
}

/* take_line: the rest of a line, `len` bytes before its '\n'. */
static enum framer_next take_line(struct framer *f, const char *data, size_t len, framer_fn fn,
                                  void *ctx)
{
    if (f->discarding) {
        f->discarding = false;
        return FRAMER_GO_ON;
    }
    if (f->tail_len + len > f->max_line) {
        drop_tail(f);
        return fn(ctx, FRAMER_TOO_LONG, NULL, 0);
    }
    if (!f->tail)
        return fn(ctx, FRAMER_LINE, data, len);
    if (!keep_tail(f, data, len, ctx)) {
        drop_tail(f);
        return fn(ctx, FRAMER_NO_MEMORY, NULL, 0);
    }
    /* the callback may feed nothing back into us, but keep the tail owned
     * here until it returns, then free it, or keep it as it was when the
     * line is put back */
    char *line = f->tail;
    size_t line_len = f->tail_len, cap = f->tail_cap;
    f->tail = NULL;
    f->tail_len = f->tail_cap = 0;
    enum framer_next next = fn(ctx, FRAMER_LINE, line, line_len);
    if (next == FRAMER_PUT_BACK) {
        f->tail = line;
        f->tail_len = line_len - len;
        f->tail_cap = cap;
        return next;
    }
    mqd_free(line);
    return next;
}

size_t framer_feed(struct framer *f, const char *data, size_t len, framer_fn fn, void *ctx)
{
    size_t taken = 0;
    while (taken < len) {
        const char *nl = memchr(data + taken, '\n', len - taken);
        if (!nl) {
            take_partial(f, data + taken, len - taken, fn, ctx);
            return len;
        }
        size_t n = (size_t)(nl - (data + taken));
        enum framer_next next = take_line(f, data + taken, n, fn, ctx);
        if (next == FRAMER_PUT_BACK)
            return taken;
        taken += n + 1;
        if (next == FRAMER_STOP)
            return taken;
    }
    return len;
}

bool framer_finish(struct framer *f, framer_fn fn, void *ctx)
{
    if (f->discarding || !f->tail) {
        framer_reset(f);
        return true;
    }
    char *line = f->tail;
    size_t line_len = f->tail_len;
    f->tail = NULL;
    f->tail_len = f->tail_cap = 0;
    enum framer_next next = fn(ctx, FRAMER_LINE, line, line_len);
    mqd_free(line);
    return next == FRAMER_GO_ON;
}
