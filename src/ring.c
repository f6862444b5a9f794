#include "mqd/ring.h"

#include "mqd/alloc.h"

#include <string.h>

void ring_init(struct ring *r, size_t max, struct ring_ages *ages)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
    r->ages = ages;
}

/* age_link_before: the line enters the age order, held by r, right before
 * `next` (NULL: as the newest) */
static void age_link_before(struct ring *r, struct buf *line, struct buf *next)
{
    struct ring_ages *a = r->ages;
    struct buf *older = next ? next->older : a->newest;
    line->cached_in = r;
    line->newer = next;
    line->older = older;
    if (older)
        older->newer = line;
    else
        a->oldest = line;
    if (next)
        next->older = line;
    else
        a->newest = line;
    a->messages++;
    a->bytes += line->len;
}

/* age_link: the line becomes the newest cached line, held by r. */
static void age_link(struct ring *r, struct buf *line) { age_link_before(r, line, NULL); }

/* age_unlink: the line leaves the age order, and its reference is dropped. */
static inline void age_unlink(struct ring *r, struct buf *line)
{
    struct ring_ages *a = r->ages;
    if (line->older)
        line->older->newer = line->newer;
    else
        a->oldest = line->newer;
    if (line->newer)
        line->newer->older = line->older;
    else
        a->newest = line->older;
    line->cached_in = NULL;
    line->older = line->newer = NULL;
    a->messages--;
    a->bytes -= line->len;
    buf_unref(line);
}

void ring_clear(struct ring *r)
{
    for (size_t i = 0; i < r->len; i++)
        age_unlink(r, ring_at(r, i)->line);
    mqd_free(r->items);
    ring_init(r, r->max, r->ages);
}

struct ring_entry *ring_at(const struct ring *r, size_t i)
{
    size_t pos = r->head + i;
    if (pos >= r->cap)
        pos -= r->cap;
    return &r->items[pos];
}

/* ring_grow: reallocates to `cap` entries with the oldest entry moved to 0. */
static int ring_grow(struct ring *r, size_t cap)
{
    struct ring_entry *items = mqd_malloc(cap * sizeof(*items));
    if (!items)
        return -1;
    for (size_t i = 0; i < r->len; i++)
        items[i] = *ring_at(r, i);
    mqd_free(r->items);
    r->items = items;
    r->cap = cap;
    r->head = 0;
    return 0;
}

int ring_reserve(struct ring *r)
{
    if (r->len < r->cap || r->cap == r->max)
        return 0;
    size_t cap = r->cap ? r->cap * 2 : 4;
    if (cap > r->max)
        cap = r->max;
    return ring_grow(r, cap);
}

/* drop_oldest: ring_drop_oldest, inline for ring_push's full-ring path */
static inline bool drop_oldest(struct ring *r)
{
    struct ring_entry *oldest = &r->items[r->head];
    bool once = oldest->once;
    age_unlink(r, oldest->line);
    r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
    r->len--;
    return once;
}

bool ring_drop_oldest(struct ring *r) { return drop_oldest(r); }

void ring_push(struct ring *r, struct buf *line, uint64_t index, bool once)
{
    if (r->max == 0) {
        buf_unref(line);
        return;
    }
    if (r->len == r->max)
        (void)drop_oldest(r); /* a full cache forgets its oldest: the rule, not a loss */
    struct ring_entry *slot = ring_at(r, r->len);
    slot->line = line;
    slot->index = index;
    slot->once = once;
    r->len++;
    age_link(r, line);
}

bool ring_insert(struct ring *r, struct buf *line, uint64_t index, bool once)
{
    if (r->max == 0 || (r->len == r->max && index < ring_at(r, 0)->index)) {
        buf_unref(line);
        return false;
    }
    if (r->len == r->max)
        (void)drop_oldest(r);
    size_t at = r->len;
    while (at > 0 && ring_at(r, at - 1)->index > index) {
        *ring_at(r, at) = *ring_at(r, at - 1);
        at--;
    }
    *ring_at(r, at) = (struct ring_entry){.line = line, .index = index, .once = once};
    r->len++;
    /* before its successor in the ring, so the ring's order stays the age order */
    age_link_before(r, line, at + 1 < r->len ? ring_at(r, at + 1)->line : NULL);
    return true;
}

void ring_remove_once_between(struct ring *r, int64_t floor, uint64_t last)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->len; i++) {
        struct ring_entry entry = *ring_at(r, i);
        if (entry.once && ring_index_above(entry.index, floor) && entry.index <= last) {
            age_unlink(r, entry.line);
            continue;
        }
        *ring_at(r, kept++) = entry;
    }
    r->len = kept;
}

void ring_remove_index(struct ring *r, uint64_t index)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->len; i++) {
        struct ring_entry entry = *ring_at(r, i);
        if (entry.index == index) {
            age_unlink(r, entry.line);
            continue;
        }
        *ring_at(r, kept++) = entry;
    }
    r->len = kept;
}
