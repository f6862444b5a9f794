/*
 * utf8: strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences.
 */
#ifndef MQD_UTF8_H
#define MQD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* utf8_valid: whether the `len` bytes at `s` are strictly valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

#endif
