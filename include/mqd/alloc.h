/*
 * alloc: the one allocator every mqd module calls.
 *
 * It is malloc with two additions. It counts: mqd_allocated() is the exact
 * number of bytes held through it (the usable size of every block), which is
 * what --max-memory measures (budget.h). And it can refuse: with a ceiling
 * set, an allocation that would take the count past it fails as if malloc
 * had, so whatever the estimates made before a command, mqd never holds more
 * than the ceiling.
 *
 * Under the counting lies a seam, the alloc_system_* functions: production
 * links src/alloc_system.c (malloc itself), unit tests link their own
 * (tests/unit/fail_alloc.c) that can fail the Nth call, so every allocation
 * on the command path is proven to fail cleanly. Code must treat a NULL
 * return as "this command is out of memory", never as fatal.
 *
 * The count and the ceiling are process-wide, as malloc's heap is, and
 * belong to the server's thread. A helper thread (auth.h's password checks,
 * whose OpenSSL calls allocate) says so once with alloc_thread_is_helper:
 * what it allocates is counted apart, atomically (alloc_helper_allocated),
 * and is held to no ceiling, for it is not what clients make mqd hold but a
 * fixed cost of its own (one check at a time). A helper frees what it
 * allocated, and the server's thread what it did, so each count is exact.
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

/* alloc_held_bytes: alloc.c's count; read it through mqd_allocated() */
extern size_t alloc_held_bytes;

/* mqd_allocated: bytes the server's thread holds now through these
 * functions. O(1). */
static inline size_t mqd_allocated(void) { return alloc_held_bytes; }

/* alloc_helper_allocated: bytes helper threads hold now. */
size_t alloc_helper_allocated(void);

/* alloc_thread_is_helper: the calling thread is not the server's: what it
 * allocates and frees from now on is counted apart, with no ceiling. */
void alloc_thread_is_helper(void);

/* mqd_set_ceiling: from now on, refuse an allocation that would take
 * mqd_allocated() past `bytes`; 0 removes the ceiling. */
void mqd_set_ceiling(size_t bytes);

/* the seam: malloc, calloc and realloc, or a test's stand-ins for them */
void *alloc_system_malloc(size_t size);
void *alloc_system_calloc(size_t count, size_t size);
void *alloc_system_realloc(void *ptr, size_t size);

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
