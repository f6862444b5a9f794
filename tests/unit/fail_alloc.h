/*
 * fail_alloc: the unit tests' definition of alloc.h, malloc with a trap.
 *
 * fail_alloc_after(n) lets the next n allocations through and fails the one
 * after them (that one only); fail_alloc_off() disarms it. Every test can so
 * walk a command through each of its allocations failing in turn.
 */
#ifndef FAIL_ALLOC_H
#define FAIL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void fail_alloc_after(size_t n);
void fail_alloc_off(void);

/* fail_alloc_tripped: whether the armed failure has happened. */
bool fail_alloc_tripped(void);

#endif
