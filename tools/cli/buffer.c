#include "buffer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* bytes asked of read(2) at a time: a few lines of a busy topic */
#define READ_SIZE 65536

void buffer_init(struct buffer *b) { memset(b, 0, sizeof(*b)); }

void buffer_free(struct buffer *b)
{
    free(b->data);
    buffer_init(b);
}

/* reserve: room for `more` bytes after those held, and a '\0' after them.
 * Taken bytes are moved out of the way before the storage grows. */
static int reserve(struct buffer *b, size_t more)
{
    if (more >= SIZE_MAX / 2 - b->len)
        return -1;
    size_t need = b->len + more + 1;
    if (b->start + need <= b->cap)
        return 0;
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, b->len);
        b->start = 0;
        if (need <= b->cap)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int buffer_append(struct buffer *b, const void *data, size_t len)
{
    if (reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->start + b->len, data, len);
    b->len += len;
    return 0;
}

ssize_t buffer_read(struct buffer *b, int fd)
{
    if (reserve(b, READ_SIZE) < 0) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = read(fd, b->data + b->start + b->len, READ_SIZE);
    if (n > 0)
        b->len += (size_t)n;
    return n;
}

/* take: hands over the first `n` bytes, '\0'-terminated in place of the byte
 * after them, and `skip` more bytes (the '\n') that are not handed over. */
static char *take(struct buffer *b, size_t n, size_t skip, size_t *len)
{
    char *at = b->data + b->start;
    at[n] = '\0';
    b->start += n + skip;
    b->len -= n + skip;
    b->scanned = 0;
    if (b->len == 0)
        b->start = 0; /* the bytes stay where they are until the next change */
    *len = n;
    return at;
}

char *buffer_take_line(struct buffer *b, size_t *len)
{
    if (b->len == b->scanned)
        return NULL;
    char *from = b->data + b->start;
    char *nl = memchr(from + b->scanned, '\n', b->len - b->scanned);
    if (!nl) {
        /* a long line arriving in many reads is searched once, not once per read */
        b->scanned = b->len;
        return NULL;
    }
    return take(b, (size_t)(nl - from), 1, len);
}

char *buffer_take_rest(struct buffer *b, size_t *len)
{
    if (b->len == 0)
        return NULL;
    return take(b, b->len, 0, len);
}

void buffer_drop(struct buffer *b, size_t n)
{
    b->start += n;
    b->len -= n;
    b->scanned = b->scanned > n ? b->scanned - n : 0;
    if (b->len == 0)
        b->start = 0;
}
