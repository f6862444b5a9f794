/*
 * buffer: a growable byte buffer, filled at the end and taken from the
 * front, and the lines in it.
 *
 * mqd-cli keeps a few: what the server sent and is not handled yet, what is
 * queued for the server and not written yet, and what stdin gave that is not
 * a whole line yet. A line ends at '\n' alone; callers strip a '\r' when they
 * want to. Memory grows with the longest line: a line is handed over whole.
 */
#ifndef MQD_CLI_BUFFER_H
#define MQD_CLI_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buffer {
    char *data;
    size_t start;   /* bytes before it were taken */
    size_t len;     /* bytes held, from start on */
    size_t cap;     /* always above start + len: room for a '\0' after them */
    size_t scanned; /* bytes from start on known to hold no '\n' */
};

void buffer_init(struct buffer *b);
void buffer_free(struct buffer *b);

/* buffer_append: adds `len` bytes at the end; -1 when out of memory, and then
 * nothing was added. */
int buffer_append(struct buffer *b, const void *data, size_t len);

/* buffer_read: one read(2) of `fd` into the end: the bytes read, 0 at end of
 * input, -1 with errno set (ENOMEM when the buffer could not grow). */
ssize_t buffer_read(struct buffer *b, int fd);

/* buffer_take_line: the next whole line, its '\n' replaced by '\0' (a line
 * holding no NUL is then a C string too), and its length in *len; NULL when
 * no whole line is held. The line stays valid until the buffer is next
 * changed. */
char *buffer_take_line(struct buffer *b, size_t *len);

/* buffer_take_rest: what is left, an unfinished last line once the input
 * has ended, '\0'-terminated; NULL when nothing is left. Valid as above. */
char *buffer_take_rest(struct buffer *b, size_t *len);

/* buffer_drop: forgets the first `n` bytes held (n <= len), once written. */
void buffer_drop(struct buffer *b, size_t n);

#endif
