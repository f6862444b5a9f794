#include "mqd/sched.h"

#include "mqd/conn.h"

void sched_init(struct sched *s, sched_rearm_fn rearm, void *rearm_ctx)
{
    *s = (struct sched){.rearm = rearm, .rearm_ctx = rearm_ctx};
    s->flush_tail = &s->flush_list;
    s->held_tail = &s->held;
    sched_pass_begin(s);
}

void sched_want_flush(struct sched *s, struct conn *c)
{
    if (c->in_flush_list)
        return;
    c->in_flush_list = true;
    c->next_flush = NULL;
    if (!s->flush_list)
        s->flush_tail = &s->flush_list;
    *s->flush_tail = c;
    s->flush_tail = &c->next_flush;
}

void sched_flush(struct sched *s, bool may_defer)
{
    struct conn *c, *deferred = NULL, **deferred_tail = &deferred;
    while ((c = s->flush_list)) {
        s->flush_list = c->next_flush;
        if (!c->closing && may_defer && !c->flush_deferred && c->out.bytes < SCHED_DEFER_BELOW) {
            c->flush_deferred = true;
            c->next_flush = NULL;
            *deferred_tail = c;
            deferred_tail = &c->next_flush;
            continue;
        }
        c->in_flush_list = false;
        c->flush_deferred = false;
        if (c->closing)
            continue;
        c->want_write = conn_flush(c) == OUTQ_FULL;
        s->rearm(s->rearm_ctx, c);
    }
    s->flush_list = deferred;
    s->flush_tail = deferred ? deferred_tail : &s->flush_list;
}

void sched_hold(struct sched *s, struct conn *c)
{
    if (c->held_pprev)
        return;
    c->next_held = NULL;
    c->held_stamp = s->pass;
    c->held_pprev = s->held_tail;
    *s->held_tail = c;
    s->held_tail = &c->next_held;
}

void sched_unhold(struct sched *s, struct conn *c)
{
    if (!c->held_pprev)
        return;
    *c->held_pprev = c->next_held;
    if (c->next_held)
        c->next_held->held_pprev = c->held_pprev;
    else
        s->held_tail = c->held_pprev;
    c->held_pprev = NULL;
    c->next_held = NULL;
}

void sched_resume(struct sched *s)
{
    /* the conns held before this pass take a turn each; those held again,
     * like those held in this pass's own turns, wait for the next. A conn
     * can leave the list in the middle (released for memory by another's
     * turn). */
    bool oldest = true;
    struct conn *c;
    while ((c = s->held) && c->held_stamp < s->pass) {
        sched_unhold(s, c);
        if (c->closing)
            continue;
        uint64_t pass_end = s->pass_end;
        if (oldest && s->work >= pass_end)
            s->pass_end = s->work + SCHED_TURN_WORK; /* it gets on, */
        oldest = false;
        conn_resume(c);
        if (s->pass_end != pass_end)
            s->pass_end = pass_end; /* and the others keep to the pass */
        if (conn_held(c))
            sched_hold(s, c);
        else
            s->rearm(s->rearm_ctx, c);
    }
    if (s->held)
        s->passes_over_budget++;
}
