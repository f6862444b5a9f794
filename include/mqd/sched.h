/*
 * sched: how the loop shares itself between its clients: how much one client
 * may run before the others are served, and when queued output is written.
 * Every rule of the loop's fairness lives here; conn.c asks, server.c runs
 * the passes.
 *
 * Work is counted in units of about a nanosecond on a small machine: a byte
 * read costs 1, a byte of a line run SCHED_LINE_BYTE_WORK (it is scanned,
 * validated and copied into the delivered line), a line queued to a
 * receiver SCHED_DELIVERY_WORK.
 *
 * Input. A client runs its lines in turns, one turn each time its bytes
 * arrive or it is resumed. A turn ends before the first line that would
 * start past SCHED_TURN_WORK; the line running when the bound is crossed is
 * finished, since a command and its fan-out are one step (splitting a
 * fan-out would let a later index overtake an earlier one). What the client
 * sent beyond is held, and it is read no more until that is run.
 *
 * A pass's turns together have SCHED_PASS_WORK. Once it is spent, a turn
 * only runs lines of at most SCHED_LIGHT_LINE bytes, for SCHED_LIGHT_WORK,
 * and a socket is read SCHED_LIGHT_LINE bytes at a time instead of
 * SCHED_READ_SIZE: a client with a short command is served in the pass its
 * bytes arrive in, while long lines and pipelines wait. Held clients resume after the
 * clients whose bytes have just arrived, oldest first; the oldest always
 * gets a whole turn, so every held client gets on.
 *
 * The bound, stated in docs/ARCHITECTURE.md: a client whose command is short
 * waits behind one busy client for at most the rest of one pass: one turn
 * (SCHED_TURN_WORK, plus the line that crossed it and its fan-out), and
 * SCHED_FLUSH_WORK of writes.
 *
 * Output. A conn given output is put on a flush list, in the order it got
 * it, so a fan-out's receivers are written before the sender's reply. The
 * output of a turn that ended light (its client sent no more than a turn's
 * worth) is on the fresh list, written whole at the end of the pass; a
 * turn that ended held moves what it queued to the bulk list, written
 * after, for at most SCHED_FLUSH_WORK a pass (a write costs
 * SCHED_WRITE_WORK and a unit a byte), the rest in the next passes, first.
 * (A conn already on the fresh list when such a turn queues to it stays
 * there: a busy sender's reply can then be written before its receivers'
 * lines, which is no promise broken: PROTOCOL.md orders each connection's
 * own lines, not lines across connections.)
 * Held clients resume only once the bulk list is written, so a busy client
 * cannot queue faster than its receivers are written, and a fan-out to
 * thousands costs the others one bounded share of writes a pass. Each
 * flush writes at most SCHED_FLUSH_BYTES per conn. A conn on the fresh
 * list with less than SCHED_DEFER_BELOW queued that has not waited yet may
 * wait one more pass while input keeps coming, so its next write carries
 * more lines; nothing waits once the loop is about to block.
 */
#ifndef MQD_SCHED_H
#define MQD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_DELIVERY_WORK 64
#define SCHED_LINE_BYTE_WORK 3
#define SCHED_TURN_WORK (2 * 1024 * 1024)
#define SCHED_PASS_WORK (2 * 1024 * 1024)
#define SCHED_LIGHT_LINE 4096
#define SCHED_LIGHT_WORK (64 * 1024)
#define SCHED_READ_SIZE (64 * 1024)
#define SCHED_FLUSH_BYTES (1024 * 1024)
#define SCHED_DEFER_BELOW 2048
#define SCHED_WRITE_WORK 8192
#define SCHED_FLUSH_WORK (3 * 1024 * 1024)

struct conn;

/* sched_list: conns linked through next_flush, in order */
struct sched_list {
    struct conn *head;
    struct conn **tail; /* &head when empty */
};

/* sched_rearm_fn: the loop's business once a conn's state changed (written,
 * or no longer held): what it waits for on the conn's socket */
typedef void (*sched_rearm_fn)(void *ctx, struct conn *c);

struct sched {
    uint64_t work;       /* done since the start */
    uint64_t turn_start; /* `work` when the current turn began */
    uint64_t pass_end;   /* `work` at which the pass's budget is spent */
    /* conns with output queued since their last flush: from light turns,
     * and from turns that ended held */
    struct sched_list fresh, bulk;
    struct conn **turn_mark; /* where in `fresh` the current turn's conns begin */
    size_t flush_work;       /* SCHED_FLUSH_WORK; tests lower it */
    struct conn *held;       /* conns with input held, oldest first */
    struct conn **held_tail;
    uint64_t pass;               /* passes begun, to tell who was held before this one */
    uint64_t passes_over_budget; /* passes that ended with input held */
    sched_rearm_fn rearm;
    void *rearm_ctx;
};

/* sched_init: no work done, nothing to flush or resume. */
void sched_init(struct sched *s, sched_rearm_fn rearm, void *rearm_ctx);

/* sched_pass_begin: a new loop pass, with its whole budget. */
static inline void sched_pass_begin(struct sched *s)
{
    s->pass++;
    s->pass_end = s->work + SCHED_PASS_WORK;
}

/* sched_turn_begin: a client's turn begins. */
static inline void sched_turn_begin(struct sched *s)
{
    s->turn_start = s->work;
    s->turn_mark = s->fresh.tail;
}

/* sched_charge: `work` units were done. */
static inline void sched_charge(struct sched *s, size_t work) { s->work += work; }

/* sched_may_run: whether the current turn may run a line of `len` bytes
 * now, by the rules above. */
static inline bool sched_may_run(const struct sched *s, size_t len)
{
    uint64_t used = s->work - s->turn_start;
    if (used >= SCHED_TURN_WORK)
        return false;
    return s->work < s->pass_end || (len <= SCHED_LIGHT_LINE && used < SCHED_LIGHT_WORK);
}

/* sched_read_size: how many bytes to read from a client's socket now. */
static inline size_t sched_read_size(const struct sched *s)
{
    return s->work < s->pass_end ? SCHED_READ_SIZE : SCHED_LIGHT_LINE;
}

/* sched_want_flush: `c` has output to write; it joins the flush list once. */
void sched_want_flush(struct sched *s, struct conn *c);

/* sched_unflush: `c` leaves whichever flush list it is on (a conn being
 * freed). O(conns listed): the loop frees a listed conn only once the
 * flush has dropped it (server.c, free_closed), so this is a safety net. */
void sched_unflush(struct sched *s, struct conn *c);

/* sched_flush: one coalesced write per conn on the fresh list, but that
 * with `may_defer` a conn with little queued may wait one pass; then conns
 * of the bulk list until SCHED_FLUSH_WORK is spent (one at least). Closing
 * conns are only dropped from the lists. O(conns written). */
void sched_flush(struct sched *s, bool may_defer);

/* sched_flush_all: every conn on the lists written once, for shutdown. */
void sched_flush_all(struct sched *s);

/* sched_hold: `c` has input held; it joins the held list once, and the
 * conns its current turn gave output move to the bulk list. */
void sched_hold(struct sched *s, struct conn *c);

/* sched_rearm: tells the loop that `c`'s state changed outside a flush
 * or a held turn (its password check ended). */
static inline void sched_rearm(struct sched *s, struct conn *c) { s->rearm(s->rearm_ctx, c); }

/* sched_unhold: `c` leaves the held list, wherever it is (a conn being
 * freed). O(1). */
void sched_unhold(struct sched *s, struct conn *c);

/* sched_resume: once the bulk list is written, each conn held before this
 * pass that is not closing gets a turn, oldest first, whose output goes to
 * the bulk list; those with input still left that they may run are held
 * again, the others re-armed. O(held conns). */
void sched_resume(struct sched *s);

/* sched_pending: whether a pass has work left for the next one, so the
 * loop must not block. */
static inline bool sched_pending(const struct sched *s)
{
    return s->fresh.head || s->bulk.head || s->held;
}

#endif
