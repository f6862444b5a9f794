/* fuzz_framer: the input is split into chunks at sizes taken from its first
 * bytes; the lines handed over must be the same as for one unsplit feed. */
#include "mqd/framer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct collected {
    char *bytes; /* each event as a length-prefixed record */
    size_t len;
};

static bool collect(void *ctx, enum framer_event event, const char *line, size_t len)
{
    struct collected *c = ctx;
    c->bytes = realloc(c->bytes, c->len + len + sizeof(size_t) + 1);
    c->bytes[c->len++] = (char)event;
    memcpy(c->bytes + c->len, &len, sizeof(len));
    c->len += sizeof(len);
    if (len)
        memcpy(c->bytes + c->len, line, len);
    c->len += len;
    return true;
}

static struct collected feed(const uint8_t *data, size_t size, const uint8_t *cuts,
                             size_t ncuts, size_t max_line)
{
    struct framer f;
    struct collected out = {0};
    framer_init(&f, max_line, NULL);
    size_t at = 0;
    for (size_t i = 0; at < size; i++) {
        size_t n = ncuts ? (size_t)cuts[i % ncuts] % 17 + 1 : size;
        if (n > size - at)
            n = size - at;
        framer_feed(&f, (const char *)data + at, n, collect, &out);
        if (f.tail_len > max_line)
            abort(); /* never holds more than the limit */
        at += n;
    }
    framer_finish(&f, collect, &out);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = data[0] % 64 + 1, ncuts = data[1] % 8;
    if (size < 2 + ncuts)
        return 0;
    const uint8_t *cuts = data + 2, *body = data + 2 + ncuts;
    size_t body_len = size - 2 - ncuts;
    struct collected whole = feed(body, body_len, NULL, 0, max_line);
    struct collected split = feed(body, body_len, cuts, ncuts, max_line);
    if (whole.len != split.len || (whole.len && memcmp(whole.bytes, split.bytes, whole.len)))
        abort();
    free(whole.bytes);
    free(split.bytes);
    return 0;
}
