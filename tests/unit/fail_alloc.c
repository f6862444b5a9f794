#include "fail_alloc.h"

#include "mqd/alloc.h"

#include <stdlib.h>

/* test-only state: this file stands in for malloc, which is global too */
static bool armed;
static bool tripped;
static size_t left;
static size_t calls;

void fail_alloc_after(size_t n)
{
    armed = true;
    tripped = false;
    left = n;
    calls = 0;
}

void fail_alloc_reset(void)
{
    armed = false;
    tripped = false;
    calls = 0;
}

bool fail_alloc_tripped(void) { return tripped; }

size_t fail_alloc_calls(void) { return calls; }

/* should_fail: counts one allocation call and says whether it is the trapped one. */
static bool should_fail(void)
{
    calls++;
    if (!armed)
        return false;
    if (left > 0) {
        left--;
        return false;
    }
    armed = false;
    tripped = true;
    return true;
}

void *alloc_system_malloc(size_t size) { return should_fail() ? NULL : malloc(size); }
void *alloc_system_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count, size);
}
void *alloc_system_realloc(void *ptr, size_t size)
{
    return should_fail() ? NULL : realloc(ptr, size);
}
