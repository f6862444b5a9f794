/*
 * fail_alloc: the unit tests' definition of alloc.h's seam, malloc with a trap.
 *
 * fail_alloc_after(n) lets the next n allocation calls (mqd_malloc, mqd_calloc
 * and mqd_realloc alike) through and fails the one after them, that one only:
 * every later call succeeds again. fail_alloc_reset() disarms the trap. A test
 * can so walk an operation through each of its allocations failing in turn,
 * until an operation that no longer trips the trap has run whole.
 */
#ifndef FAIL_ALLOC_H
#define FAIL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void fail_alloc_after(size_t n);

/* fail_alloc_reset: disarms the trap and restarts the call counter. */
void fail_alloc_reset(void);

/* fail_alloc_tripped: whether the armed failure has happened. */
bool fail_alloc_tripped(void);

/* fail_alloc_calls: allocation calls since the last fail_alloc_after or
 * fail_alloc_reset, the failed one included. */
size_t fail_alloc_calls(void);

#endif
