/*
 * http: the head of an HTTP/1.1 request, read strictly (RFC 9112), the
 * status that answers it, and the head of a response. Pure: no I/O, no
 * allocation; a parsed request points into the bytes it was parsed from
 * (but for the path "/" of an absolute-form target with an empty path).
 *
 * It reads what a responder of one read-only resource needs: the method, the
 * path and the version. Header fields are checked for their form, Host for
 * its count (HTTP/1.1 needs exactly one), and are otherwise ignored. A
 * request body is never read: the responder closes the connection after its
 * one response.
 */
#ifndef MQD_HTTP_H
#define MQD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define HTTP_MAX_HEAD 8192

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER_METHOD };

struct http_request {
    enum http_method method;
    const char *path; /* the target's path, query left out; "*" for "*";
                       * "/" for "http://host" */
    size_t path_len;
    unsigned minor_version; /* HTTP/1.x */
    size_t head_len;        /* bytes up to and including the empty line */
};

enum http_parse {
    HTTP_PARSE_DONE,      /* *req is a complete, well-formed head */
    HTTP_PARSE_MORE,      /* well-formed so far: read more */
    HTTP_PARSE_BAD,       /* malformed: 400 */
    HTTP_PARSE_TOO_LARGE, /* no end of the head within max_head bytes: 431 */
    HTTP_PARSE_VERSION,   /* a well-formed version other than 1.x: 505 */
};

/* http_parse_request: reads the head at the start of `len` bytes. Empty lines
 * before the request line are skipped; lines may end with CRLF or LF. A
 * malformed line is reported as soon as it is complete, without waiting for
 * the rest of the head. */
enum http_parse http_parse_request(const char *data, size_t len, size_t max_head,
                                   struct http_request *req);

/* http_header: the value of the header field `name` (any case) in the
 * head at `data` that http_parse_request parsed into *req, its blanks
 * trimmed, in *value and *len; how many such fields the head has (0: none,
 * and *value is untouched; more than 1: *value is the first). */
size_t http_header(const char *data, const struct http_request *req, const char *name,
                   const char **value, size_t *len);

/* http_has_token: whether the comma-separated list `value` (a Connection or
 * Upgrade field) holds `token`, in any case. */
bool http_has_token(const char *value, size_t len, const char *token);

/* http_status_of: the status that answers a parse (any but MORE) of a request
 * for `path`, the one resource served: 200 for GET or HEAD of it, 404 for
 * any other path, 405 for another method, 400, 431 or 505 for a bad head. */
unsigned http_status_of(enum http_parse parsed, const struct http_request *req, const char *path);

/* http_reason: the reason phrase of a status this module answers with,
 * "Unknown" for others. */
const char *http_reason(unsigned status);

struct http_response {
    unsigned status;
    const char *content_type;
    size_t content_length;
    const char *extra_headers; /* whole header lines, each ended by CRLF, or "" */
    time_t date;
};

/* http_format_head: "HTTP/1.1 STATUS REASON", Date, Content-Type,
 * Content-Length, "Connection: close", the extra headers and the empty line,
 * snprintf-like: the head's length, of which at most cap - 1 bytes are
 * written, then a NUL (nothing when cap is 0). */
size_t http_format_head(const struct http_response *r, char *out, size_t cap);

#endif
