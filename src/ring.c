#include "mqd/ring.h"

#include "mqd/alloc.h"

#include <string.h>

void ring_init(struct ring *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
}

void ring_clear(struct ring *r)
{
    for (size_t i = 0; i < r->len; i++)
        buf_unref(ring_at(r, i)->line);
    mqd_free(r->items);
    ring_init(r, r->max);
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

void ring_push(struct ring *r, struct buf *line, uint64_t index, bool once)
{
    if (r->max == 0) {
        buf_unref(line);
        return;
    }
    if (r->len == r->max) {
        r->bytes -= ring_at(r, 0)->line->len;
        buf_unref(ring_at(r, 0)->line);
        r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
        r->len--;
    }
    struct ring_entry *slot = ring_at(r, r->len);
    slot->line = line;
    slot->index = index;
    slot->once = once;
    r->len++;
    r->bytes += line->len;
}

void ring_remove_once_after(struct ring *r, int64_t index_floor)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->len; i++) {
        struct ring_entry entry = *ring_at(r, i);
        if (entry.once && ring_index_above(entry.index, index_floor)) {
            r->bytes -= entry.line->len;
            buf_unref(entry.line);
            continue;
        }
        *ring_at(r, kept++) = entry;
    }
    r->len = kept;
}
