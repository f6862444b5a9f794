/*
 * siphash: SipHash-1-3, a keyed hash. With a secret random key per process,
 * nobody outside can predict which topic names collide, so crafted names
 * cannot turn the topic table's lookups linear (the reason Redis uses it).
 */
#ifndef MQD_SIPHASH_H
#define MQD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

/* siphash: the 64-bit SipHash-1-3 of `len` bytes at `data` under `key`. */
uint64_t siphash(const void *data, size_t len, const uint8_t key[SIPHASH_KEY_LEN]);

#endif
