#include "mqd/outq.h"

#include "mqd/alloc.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* a drained queue keeps small storage for the next burst, and gives big storage
 * back: idle clients should cost little memory */
#define OUTQ_KEEP_CAP 64
#define OUTQ_IOV_MAX 1024

void outq_init(struct outq *q, size_t *slot_bytes)
{
    memset(q, 0, sizeof(*q));
    q->slot_bytes = slot_bytes;
}

/* set_cap: the slot array now has `cap` slots, in the owner's total too */
static void set_cap(struct outq *q, size_t cap)
{
    if (q->slot_bytes)
        *q->slot_bytes += (cap - q->cap) * sizeof(*q->items); /* modular: shrinks too */
    q->cap = cap;
}

static struct buf **slot(const struct outq *q, size_t i)
{
    size_t pos = q->head + i;
    return &q->items[pos >= q->cap ? pos - q->cap : pos];
}

void outq_clear(struct outq *q)
{
    for (size_t i = 0; i < q->count; i++)
        buf_unref(*slot(q, i));
    mqd_free(q->items);
    set_cap(q, 0);
    outq_init(q, q->slot_bytes);
}

size_t outq_growth(const struct outq *q, size_t lines)
{
    if (q->count + lines <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap : 8, before = q->cap;
    while (cap < q->count + lines) {
        before = cap;
        cap *= 2;
    }
    /* it doubles step by step, each array freed once the next holds it all:
     * the most held at once is the last array and the one before it */
    size_t peak = cap + (before > q->cap ? before : q->cap);
    return (peak - q->cap) * sizeof(*q->items);
}

static int outq_grow(struct outq *q)
{
    size_t cap = q->cap ? q->cap * 2 : 8;
    if (cap > SIZE_MAX / sizeof(*q->items))
        return -1;
    struct buf **items = mqd_malloc(cap * sizeof(*items));
    if (!items)
        return -1;
    for (size_t i = 0; i < q->count; i++)
        items[i] = *slot(q, i);
    mqd_free(q->items);
    q->items = items;
    set_cap(q, cap);
    q->head = 0;
    return 0;
}

int outq_push(struct outq *q, struct buf *b)
{
    if (q->count == q->cap && outq_grow(q) < 0)
        return -1;
    *slot(q, q->count++) = buf_ref(b);
    q->bytes += b->len;
    return 0;
}

/* consume: forgets `n` written bytes from the front of the queue. */
static void consume(struct outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        struct buf *b = q->items[q->head];
        size_t left = b->len - q->offset;
        if (n < left) {
            q->offset += n;
            return;
        }
        n -= left;
        buf_unref(b);
        q->offset = 0;
        q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
        q->count--;
    }
}

static size_t fill_iov(const struct outq *q, struct iovec *iov, size_t max_bytes)
{
    size_t n = 0, total = 0;
    for (size_t i = 0; i < q->count && n < OUTQ_IOV_MAX && total < max_bytes; i++) {
        struct buf *b = *slot(q, i);
        size_t skip = i == 0 ? q->offset : 0;
        iov[n].iov_base = (char *)b->data + skip;
        iov[n].iov_len = b->len - skip;
        total += iov[n].iov_len;
        n++;
    }
    return n;
}

enum outq_status outq_flush(struct outq *q, struct transport *t, size_t budget)
{
    struct iovec iov[OUTQ_IOV_MAX];
    size_t written = 0;
    while (q->count > 0) {
        if (written >= budget)
            return OUTQ_FULL;
        size_t n = fill_iov(q, iov, budget - written);
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += iov[i].iov_len;
        ssize_t done = transport_writev(t, iov, n);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? OUTQ_FULL : OUTQ_ERROR;
        }
        consume(q, (size_t)done);
        written += (size_t)done;
        /* a short write means the socket buffer is full: another write now
         * would only cost a syscall to learn EAGAIN */
        if ((size_t)done < want)
            return q->count ? OUTQ_FULL : OUTQ_EMPTY;
    }
    if (q->cap > OUTQ_KEEP_CAP) {
        mqd_free(q->items);
        set_cap(q, 0);
        outq_init(q, q->slot_bytes);
    }
    return OUTQ_EMPTY;
}

void outq_each_unwritten(const struct outq *q, void (*fn)(void *ctx, struct buf *b), void *ctx)
{
    for (size_t i = q->offset > 0 ? 1 : 0; i < q->count; i++)
        fn(ctx, q->items[(q->head + i) % q->cap]);
}
