/* fuzz_http: any bytes parse without reading outside them, and the parse of
 * a head does not depend on how it arrived: every prefix of a complete head
 * asks for more, and the head alone parses the same as with what follows. */
#include "mqd/http.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the limit is taken small too, so inputs reach it without being huge */
static size_t limit_of(const uint8_t *data, size_t size)
{
    return size > 0 && data[0] < 16 ? (size_t)data[0] * 64 + 1 : HTTP_MAX_HEAD;
}

static void check_done(const char *text, size_t size, size_t limit, const struct http_request *r)
{
    if (r->head_len == 0 || r->head_len > size || r->head_len > limit)
        abort();
    bool inside = r->path >= text && r->path + r->path_len <= text + r->head_len;
    if (!inside && !(r->path_len == 1 && r->path[0] == '/')) /* "http://host" */
        abort();
    struct http_request again;
    if (http_parse_request(text, r->head_len, limit, &again) != HTTP_PARSE_DONE ||
        again.head_len != r->head_len || again.method != r->method ||
        again.path_len != r->path_len || memcmp(again.path, r->path, r->path_len) != 0)
        abort();
    for (size_t k = 0; k < r->head_len; k++) {
        if (http_parse_request(text, k, limit, &again) != HTTP_PARSE_MORE)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t limit = limit_of(data, size);
    /* a copy of exactly `size` bytes, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    struct http_request req;
    enum http_parse parsed = http_parse_request(text, size, limit, &req);
    if (parsed == HTTP_PARSE_DONE)
        check_done(text, size, limit, &req);
    else if (parsed == HTTP_PARSE_MORE && size >= limit)
        abort();
    unsigned status =
        http_status_of(parsed == HTTP_PARSE_MORE ? HTTP_PARSE_BAD : parsed, &req, "/metrics");
    if (http_reason(status)[0] == 'U')
        abort();
    free(text);
    return 0;
}
