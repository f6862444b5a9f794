#include "mqd/alloc.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>

/* the allocator's own figures: process-wide, as the heap they describe */
size_t alloc_held_bytes;
static size_t helper_bytes; /* atomic */
static size_t ceiling;
/* set once by a helper thread for itself; the server's thread never pays
 * more than reading it */
static _Thread_local bool helper;

void alloc_thread_is_helper(void) { helper = true; }

size_t alloc_helper_allocated(void) { return __atomic_load_n(&helper_bytes, __ATOMIC_RELAXED); }

/* count: adds `delta` (wrapping, so a subtraction too) to this thread's figure */
static inline void count(size_t delta)
{
    if (__builtin_expect(helper, 0))
        __atomic_fetch_add(&helper_bytes, delta, __ATOMIC_RELAXED);
    else
        alloc_held_bytes += delta;
}

/* fits: whether `more` bytes may be taken now. The block malloc returns may
 * be a little larger than asked; that is counted, but only the asked size
 * is held against the ceiling, which a few bytes of rounding cannot matter to. */
static int fits(size_t more)
{
    return helper || ceiling == 0 || (more <= ceiling && alloc_held_bytes <= ceiling - more);
}

static void *counted(void *p)
{
    if (p)
        count(malloc_usable_size(p));
    return p;
}

void *mqd_malloc(size_t size) { return fits(size) ? counted(alloc_system_malloc(size)) : NULL; }

void *mqd_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return fits(count * size) ? counted(alloc_system_calloc(count, size)) : NULL;
}

void *mqd_realloc(void *ptr, size_t size)
{
    if (size == 0) /* realloc would free ptr: keep the promise that it is untouched */
        size = 1;
    size_t before = ptr ? malloc_usable_size(ptr) : 0;
    if (size > before && !fits(size - before))
        return NULL;
    void *p = alloc_system_realloc(ptr, size);
    if (!p)
        return NULL;
    count(-before);
    return counted(p);
}

void mqd_free(void *ptr)
{
    if (ptr)
        count(-malloc_usable_size(ptr));
    free(ptr);
}

void mqd_set_ceiling(size_t bytes) { ceiling = bytes; }
