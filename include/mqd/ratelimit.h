/*
 * ratelimit: how often each client address may fail to authenticate.
 *
 * Each address has a bucket of `burst` failures that refills one every
 * `interval_ms` (a generic cell rate: one time stamp per address). An
 * address that spent its bucket is refused until it refills, whatever it
 * sends, so guessing passwords from one address goes no faster than the
 * refill; other addresses are not affected.
 *
 * The table is fixed (RATELIMIT_SLOTS addresses at a time, under a random
 * SipHash key, so a client cannot steer its probes). An address whose
 * bucket is full again takes no slot; when every slot an address may use is
 * taken, the address nearest to a full bucket gives its slot up: a flood of
 * addresses can only make the limit forget, never refuse a stranger.
 *
 * Costs: both calls O(RATELIMIT_PROBES); the table holds RATELIMIT_SLOTS
 * small entries from creation on.
 */
#ifndef MQD_RATELIMIT_H
#define MQD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/net.h"
#include "mqd/siphash.h"

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_PROBES 8

struct ratelimit;

/* ratelimit_new: every bucket full; NULL when out of memory. */
struct ratelimit *ratelimit_new(const uint8_t seed[SIPHASH_KEY_LEN], unsigned burst,
                                unsigned interval_ms);

void ratelimit_free(struct ratelimit *r);

/* ratelimit_allows: whether the address (a net_peer_key of `len` bytes)
 * may try again at `now_ms` (a monotonic clock). */
bool ratelimit_allows(const struct ratelimit *r, const unsigned char *key, size_t len,
                      int64_t now_ms);

/* ratelimit_charge: the address failed once at `now_ms` (or tries once,
 * to be refunded if it succeeds). */
void ratelimit_charge(struct ratelimit *r, const unsigned char *key, size_t len, int64_t now_ms);

/* ratelimit_refund: gives back one charge of the address (a try that
 * succeeded after all), if it still has one. */
void ratelimit_refund(struct ratelimit *r, const unsigned char *key, size_t len, int64_t now_ms);

#endif
