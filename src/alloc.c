#include "mqd/alloc.h"

#include <malloc.h>
#include <stdlib.h>

/* the allocator's own figures: process-wide, as the heap they describe */
size_t alloc_held_bytes;
static size_t ceiling;

/* fits: whether `more` bytes may be taken now. The block malloc returns may
 * be a little larger than asked; that is counted, but only the asked size
 * is held against the ceiling, which a few bytes of rounding cannot matter to. */
static int fits(size_t more)
{
    return ceiling == 0 || (more <= ceiling && alloc_held_bytes <= ceiling - more);
}

static void *counted(void *p)
{
    if (p)
        alloc_held_bytes += malloc_usable_size(p);
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
    alloc_held_bytes -= before;
    return counted(p);
}

void mqd_free(void *ptr)
{
    if (ptr)
        alloc_held_bytes -= malloc_usable_size(ptr);
    free(ptr);
}

void mqd_set_ceiling(size_t bytes) { ceiling = bytes; }
