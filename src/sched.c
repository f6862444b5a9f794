#include "mqd/sched.h"

#include "mqd/conn.h"

static void list_init(struct sched_list *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void list_append(struct sched_list *l, struct conn *c)
{
    c->next_flush = NULL;
    *l->tail = c;
    l->tail = &c->next_flush;
}

static struct conn *list_pop(struct sched_list *l)
{
    struct conn *c = l->head;
    if (c && !(l->head = c->next_flush))
        l->tail = &l->head;
    return c;
}

void sched_init(struct sched *s, sched_rearm_fn rearm, void *rearm_ctx)
{
    *s = (struct sched){.rearm = rearm, .rearm_ctx = rearm_ctx};
    list_init(&s->fresh);
    list_init(&s->bulk);
    s->turn_mark = s->fresh.tail;
    s->flush_work = SCHED_FLUSH_WORK;
    s->held_tail = &s->held;
    sched_pass_begin(s);
}

void sched_want_flush(struct sched *s, struct conn *c)
{
    if (c->in_flush_list)
        return;
    c->in_flush_list = true;
    list_append(&s->fresh, c);
}

/* list_remove: takes `c` out of `l` if it is there; true if it was */
static bool list_remove(struct sched *s, struct sched_list *l, struct conn *c)
{
    for (struct conn **at = &l->head; *at; at = &(*at)->next_flush) {
        if (*at != c)
            continue;
        *at = c->next_flush;
        if (l->tail == &c->next_flush)
            l->tail = at;
        if (s->turn_mark == &c->next_flush)
            s->turn_mark = at;
        c->next_flush = NULL;
        return true;
    }
    return false;
}

void sched_unflush(struct sched *s, struct conn *c)
{
    if (!c->in_flush_list)
        return;
    if (!list_remove(s, &s->fresh, c))
        (void)list_remove(s, &s->bulk, c);
    c->in_flush_list = false;
    c->flush_deferred = false;
}

/* turn_to_bulk: the conns the current turn put on the fresh list move, in
 * their order, to the end of the bulk list: O(1) */
static void turn_to_bulk(struct sched *s)
{
    struct conn *first = *s->turn_mark;
    if (!first)
        return;
    *s->bulk.tail = first;
    s->bulk.tail = s->fresh.tail;
    *s->turn_mark = NULL;
    s->fresh.tail = s->turn_mark;
}

/* flush_one: one flush of `c`, which has left its list; what it cost */
static size_t flush_one(struct sched *s, struct conn *c)
{
    c->in_flush_list = false;
    c->flush_deferred = false;
    if (c->closing)
        return 0;
    size_t before = c->out.bytes;
    c->want_write = conn_flush(c) == OUTQ_FULL;
    s->rearm(s->rearm_ctx, c);
    return SCHED_WRITE_WORK + (before - c->out.bytes);
}

void sched_flush(struct sched *s, bool may_defer)
{
    struct sched_list deferred;
    list_init(&deferred);
    struct conn *c;
    while ((c = list_pop(&s->fresh))) {
        if (!c->closing && may_defer && !c->flush_deferred && c->out.bytes < SCHED_DEFER_BELOW) {
            c->flush_deferred = true;
            list_append(&deferred, c);
            continue;
        }
        (void)flush_one(s, c);
    }
    s->fresh = deferred;
    if (!s->fresh.head)
        s->fresh.tail = &s->fresh.head;
    size_t spent = 0;
    while (spent < s->flush_work && (c = list_pop(&s->bulk)))
        spent += flush_one(s, c);
}

void sched_flush_all(struct sched *s)
{
    sched_flush(s, false);
    struct conn *c;
    while ((c = list_pop(&s->bulk)))
        (void)flush_one(s, c);
}

void sched_hold(struct sched *s, struct conn *c)
{
    turn_to_bulk(s);
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
    while (!s->bulk.head && (c = s->held) && c->held_stamp < s->pass) {
        sched_unhold(s, c);
        if (c->closing)
            continue;
        uint64_t pass_end = s->pass_end;
        if (oldest && s->work >= pass_end)
            s->pass_end = s->work + SCHED_TURN_WORK; /* it gets on, */
        oldest = false;
        sched_turn_begin(s);
        conn_resume(c);
        turn_to_bulk(s);
        if (s->pass_end != pass_end)
            s->pass_end = pass_end; /* and the others keep to the pass */
        if (conn_runnable(c))
            sched_hold(s, c);
        else
            s->rearm(s->rearm_ctx, c);
    }
    if (s->held)
        s->passes_over_budget++;
}
