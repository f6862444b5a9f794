/*
 * alloc: the one allocator every mqd module calls.
 *
 * It is malloc, with one seam: unit tests link their own definition of these
 * functions (tests/unit/fail_alloc.c) that can fail the Nth call, so every
 * allocation on the command path is proven to fail cleanly. Code must treat a
 * NULL return as "this command is out of memory", never as fatal.
 */
#ifndef MQD_ALLOC_H
#define MQD_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *mqd_malloc(size_t size);
void *mqd_calloc(size_t count, size_t size);
/* mqd_realloc: on failure returns NULL and leaves ptr untouched, as realloc. */
void *mqd_realloc(void *ptr, size_t size);
void mqd_free(void *ptr);

/* mqd_grow_array: makes *items hold at least `need` elements of `size` bytes,
 * doubling its capacity (*cap) from at least `min_cap`. Returns 0, or -1 when
 * out of memory (leaving *items and *cap as they were). */
static inline int mqd_grow_array(void **items, size_t *cap, size_t need, size_t size,
                                 size_t min_cap)
{
    if (need <= *cap)
        return 0;
    size_t new_cap = *cap ? *cap : min_cap;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2 / size)
            return -1;
        new_cap *= 2;
    }
    void *grown = mqd_realloc(*items, new_cap * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = new_cap;
    return 0;
}

#endif
