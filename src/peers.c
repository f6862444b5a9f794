#include "mqd/peers.h"

#include "mqd/alloc.h"
#include "mqd/table.h"

#include <string.h>

struct peer {
    size_t count;
    size_t len;
    unsigned char key[NET_PEER_KEY_LEN];
};

struct peers {
    struct table *table;
};

static const void *peer_key(const void *value, size_t *len)
{
    const struct peer *p = value;
    *len = p->len;
    return p->key;
}

struct peers *peers_new(const uint8_t seed[SIPHASH_KEY_LEN])
{
    struct peers *p = mqd_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->table = table_new(peer_key, seed);
    if (!p->table) {
        mqd_free(p);
        return NULL;
    }
    return p;
}

void peers_free(struct peers *p)
{
    if (!p)
        return;
    size_t cursor = 0;
    struct peer *peer;
    while ((peer = table_next(p->table, &cursor)))
        mqd_free(peer);
    table_free(p->table);
    mqd_free(p);
}

long peers_add(struct peers *p, const unsigned char *key, size_t len, size_t max)
{
    struct peer *peer = table_find(p->table, key, len);
    if (peer) {
        if (max && peer->count >= max)
            return 0;
        return (long)++peer->count;
    }
    if (len > NET_PEER_KEY_LEN)
        return -1;
    peer = mqd_calloc(1, sizeof(*peer));
    if (!peer)
        return -1;
    memcpy(peer->key, key, len);
    peer->len = len;
    peer->count = 1;
    if (table_insert(p->table, peer) < 0) {
        mqd_free(peer);
        return -1;
    }
    return 1;
}

void peers_remove(struct peers *p, const unsigned char *key, size_t len)
{
    struct peer *peer = table_find(p->table, key, len);
    if (!peer || --peer->count > 0)
        return;
    table_remove(p->table, key, len);
    mqd_free(peer);
}

size_t peers_count(const struct peers *p, const unsigned char *key, size_t len)
{
    const struct peer *peer = table_find(p->table, key, len);
    return peer ? peer->count : 0;
}
