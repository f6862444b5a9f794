#include "fail_alloc.h"

#include "mqd/alloc.h"

#include <stdlib.h>

/* test-only state: this file stands in for malloc, which is global too */
static bool armed;
static bool tripped;
static size_t left;

void fail_alloc_after(size_t n)
{
    armed = true;
    tripped = false;
    left = n;
}

void fail_alloc_off(void) { armed = false; }

bool fail_alloc_tripped(void) { return tripped; }

static bool should_fail(void)
{
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

void *mqd_malloc(size_t size) { return should_fail() ? NULL : malloc(size); }
void *mqd_calloc(size_t count, size_t size) { return should_fail() ? NULL : calloc(count, size); }
void *mqd_realloc(void *ptr, size_t size) { return should_fail() ? NULL : realloc(ptr, size); }
void mqd_free(void *ptr) { free(ptr); }
