/*
 * peers: how many connections each client address has open, for
 * --max-clients-per-address.
 *
 * Keyed by the address without its port (net_peer_key), in a table under a
 * random SipHash key, so a flood of addresses cannot steer its probes. An
 * address with no connection left takes no memory.
 *
 * Costs: peers_add and peers_remove are O(1) expected; each address with
 * connections open holds one small allocation.
 */
#ifndef MQD_PEERS_H
#define MQD_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "mqd/net.h"
#include "mqd/siphash.h"

struct peers;

/* peers_new: an empty count, or NULL when out of memory. */
struct peers *peers_new(const uint8_t seed[SIPHASH_KEY_LEN]);

void peers_free(struct peers *p);

/* peers_add: one more connection from this address, unless it has `max`
 * open already (max 0: no limit). Its count after, or 0 when refused for
 * the limit, -1 when out of memory (nothing counted either way). */
long peers_add(struct peers *p, const unsigned char *key, size_t len, size_t max);

/* peers_remove: one connection from this address closed. */
void peers_remove(struct peers *p, const unsigned char *key, size_t len);

/* peers_count: connections open from this address. */
size_t peers_count(const struct peers *p, const unsigned char *key, size_t len);

#endif
