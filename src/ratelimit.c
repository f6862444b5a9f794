#include "mqd/ratelimit.h"

#include "mqd/alloc.h"

#include <string.h>

struct slot {
    int64_t full_at; /* when the bucket is full again; <= now: slot free */
    unsigned char len;
    unsigned char key[NET_PEER_KEY_LEN];
};

struct ratelimit {
    uint8_t seed[SIPHASH_KEY_LEN];
    int64_t interval;
    int64_t window; /* burst x interval: how far full_at may run ahead of now */
    struct slot slots[RATELIMIT_SLOTS];
};

struct ratelimit *ratelimit_new(const uint8_t seed[SIPHASH_KEY_LEN], unsigned burst,
                                unsigned interval_ms)
{
    struct ratelimit *r = mqd_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    memcpy(r->seed, seed, SIPHASH_KEY_LEN);
    r->interval = interval_ms;
    r->window = (int64_t)burst * interval_ms;
    for (size_t i = 0; i < RATELIMIT_SLOTS; i++)
        r->slots[i].full_at = INT64_MIN;
    return r;
}

void ratelimit_free(struct ratelimit *r) { mqd_free(r); }

static size_t home(const struct ratelimit *r, const unsigned char *key, size_t len)
{
    return (size_t)(siphash(key, len, r->seed) % RATELIMIT_SLOTS);
}

static bool holds(const struct slot *s, const unsigned char *key, size_t len, int64_t now)
{
    return s->full_at > now && s->len == len && memcmp(s->key, key, len) == 0;
}

/* find: the address's live slot, or NULL */
static struct slot *find(const struct ratelimit *r, const unsigned char *key, size_t len,
                         int64_t now)
{
    size_t at = home(r, key, len);
    for (size_t i = 0; i < RATELIMIT_PROBES; i++) {
        const struct slot *s = &r->slots[(at + i) % RATELIMIT_SLOTS];
        if (holds(s, key, len, now))
            return (struct slot *)s;
    }
    return NULL;
}

bool ratelimit_allows(const struct ratelimit *r, const unsigned char *key, size_t len,
                      int64_t now_ms)
{
    const struct slot *s = find(r, key, len, now_ms);
    /* each failure moves full_at one interval on: the bucket is empty once
     * it is a whole window ahead */
    return !s || s->full_at - now_ms <= r->window - r->interval;
}

/* claim: the slot to keep the address in: its own, a free one, or the one
 * nearest to full */
static struct slot *claim(struct ratelimit *r, const unsigned char *key, size_t len, int64_t now)
{
    size_t at = home(r, key, len);
    struct slot *pick = NULL;
    for (size_t i = 0; i < RATELIMIT_PROBES; i++) {
        struct slot *s = &r->slots[(at + i) % RATELIMIT_SLOTS];
        if (holds(s, key, len, now))
            return s;
        if (!pick || s->full_at < pick->full_at)
            pick = s;
    }
    pick->full_at = now;
    pick->len = (unsigned char)len;
    memcpy(pick->key, key, len);
    return pick;
}

void ratelimit_charge(struct ratelimit *r, const unsigned char *key, size_t len, int64_t now_ms)
{
    if (len > NET_PEER_KEY_LEN)
        return;
    struct slot *s = claim(r, key, len, now_ms);
    s->full_at += r->interval;
    if (s->full_at - now_ms > r->window)
        s->full_at = now_ms + r->window;
}

void ratelimit_refund(struct ratelimit *r, const unsigned char *key, size_t len, int64_t now_ms)
{
    struct slot *s = find(r, key, len, now_ms);
    if (s)
        s->full_at -= r->interval; /* at or below now_ms: the slot is free */
}
