/* fuzz_framer: the input is split into chunks at sizes taken from its first
 * bytes, and the split feed puts lines back at points taken from them too
 * (then feeds the rest again, as a conn held back for its budget does); the
 * lines handed over must be the same as for one unsplit feed. */
#include "mqd/framer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct collected {
    char *bytes; /* each event as a length-prefixed record */
    size_t len;
    const uint8_t *cuts; /* NULL: never put a line back */
    size_t ncuts;
    size_t lines;
    bool put_back; /* the last line was put back: this one is taken */
};

static enum framer_next collect(void *ctx, enum framer_event event, const char *line, size_t len)
{
    struct collected *c = ctx;
    if (event == FRAMER_LINE && c->cuts && !c->put_back &&
        c->cuts[c->lines++ % c->ncuts] & 0x80) {
        c->put_back = true; /* once: then it is taken */
        return FRAMER_PUT_BACK;
    }
    c->put_back = false;
    c->bytes = realloc(c->bytes, c->len + len + sizeof(size_t) + 1);
    c->bytes[c->len++] = (char)event;
    memcpy(c->bytes + c->len, &len, sizeof(len));
    c->len += sizeof(len);
    if (len)
        memcpy(c->bytes + c->len, line, len);
    c->len += len;
    return FRAMER_GO_ON;
}

static struct collected feed(const uint8_t *data, size_t size, const uint8_t *cuts,
                             size_t ncuts, size_t max_line)
{
    struct framer f;
    struct collected out = {.cuts = ncuts ? cuts : NULL, .ncuts = ncuts};
    framer_init(&f, max_line, NULL);
    size_t at = 0;
    for (size_t i = 0; at < size; i++) {
        size_t n = ncuts ? (size_t)cuts[i % ncuts] % 17 + 1 : size;
        if (n > size - at)
            n = size - at;
        for (size_t taken = 0; taken < n;) {
            taken += framer_feed(&f, (const char *)data + at + taken, n - taken, collect, &out);
            if (f.tail_len > max_line)
                abort(); /* never holds more than the limit */
        }
        at += n;
    }
    out.cuts = NULL; /* the last line cannot be put back: nothing comes after it */
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
