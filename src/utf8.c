#include "mqd/utf8.h"

#include <stdint.h>
#include <string.h>

static bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

/* sequence_length: bytes in the valid sequence starting at p (at most `left`
 * bytes available), or 0 when it is invalid. The ranges are RFC 3629's table. */
static size_t sequence_length(const uint8_t *p, size_t left)
{
    uint8_t b = p[0];
    if (b >= 0xC2 && b <= 0xDF)
        return left >= 2 && is_continuation(p[1]) ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
        uint8_t lo = b == 0xE0 ? 0xA0 : 0x80; /* E0: no overlongs */
        uint8_t hi = b == 0xED ? 0x9F : 0xBF; /* ED: no surrogates */
        if (left < 3 || p[1] < lo || p[1] > hi || !is_continuation(p[2]))
            return 0;
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        uint8_t lo = b == 0xF0 ? 0x90 : 0x80; /* F0: no overlongs */
        uint8_t hi = b == 0xF4 ? 0x8F : 0xBF; /* F4: nothing above U+10FFFF */
        if (left < 4 || p[1] < lo || p[1] > hi || !is_continuation(p[2]) || !is_continuation(p[3]))
            return 0;
        return 4;
    }
    return 0;
}

bool utf8_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs dominate real traffic: test eight bytes at a time */
        if (len - i >= 8) {
            uint64_t word;
            memcpy(&word, p + i, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = sequence_length(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* sequence_need: the length of the sequence a lead byte starts; 0 when it
 * starts none */
static size_t sequence_need(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* cut_start: where the sequence cut by the end of the `len` bytes at p
 * begins (len when none is cut) */
static size_t cut_start(const uint8_t *p, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        uint8_t b = p[len - back];
        if (is_continuation(b))
            continue;
        size_t need = sequence_need(b);
        return need > back ? len - back : len;
    }
    return len;
}

bool utf8_stream_feed(struct utf8_stream *u, const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    while (u->n > 0 && len > 0) { /* finish the sequence carried over */
        u->carry[u->n++] = *p++;
        len--;
        size_t need = sequence_need(u->carry[0]);
        if (need == 0 || (u->n > 1 && !is_continuation(u->carry[u->n - 1])))
            return false;
        if (u->n == need) {
            if (sequence_length(u->carry, need) != need)
                return false;
            u->n = 0;
        }
    }
    size_t cut = cut_start(p, len);
    if (!utf8_valid((const char *)p, cut))
        return false;
    memcpy(u->carry + u->n, p + cut, len - cut);
    u->n += len - cut;
    return true;
}

bool utf8_stream_end(struct utf8_stream *u)
{
    bool whole = u->n == 0;
    u->n = 0;
    return whole;
}
