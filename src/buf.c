#include "mqd/buf.h"

#include "mqd/alloc.h"

struct buf *buf_new(size_t len, char **data)
{
    if (len > BUF_MAX_LEN)
        return NULL;
    struct buf *b = mqd_malloc(sizeof(*b) + len);
    if (!b)
        return NULL;
    char *bytes = (char *)(b + 1);
    *b = (struct buf){.refs = 1, .len = (uint32_t)len, .data = bytes};
    *data = bytes;
    return b;
}

struct buf *buf_ref(struct buf *b)
{
    if (b->refs != BUF_REFS_STATIC)
        b->refs++;
    return b;
}

void buf_unref(struct buf *b)
{
    if (!b || b->refs == BUF_REFS_STATIC)
        return;
    if (--b->refs == 0)
        mqd_free(b);
}
