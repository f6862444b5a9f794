#include "mqd/http.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* line: one line of the head, its end of line left out */
struct line {
    const char *text;
    size_t len;
    size_t next; /* offset of the byte after its '\n' */
};

/* next_line: the complete line starting at `pos`, if there is one. */
static bool next_line(const char *data, size_t len, size_t pos, struct line *out)
{
    const char *nl = memchr(data + pos, '\n', len - pos);
    if (!nl)
        return false;
    out->text = data + pos;
    out->len = (size_t)(nl - out->text);
    out->next = (size_t)(nl - data) + 1;
    if (out->len > 0 && out->text[out->len - 1] == '\r')
        out->len--;
    return true;
}

/* is_tchar: a character of a token (RFC 9110 5.6.2). */
static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* token_len: how many characters from the start are a token. */
static size_t token_len(const char *text, size_t len)
{
    size_t n = 0;
    while (n < len && is_tchar((unsigned char)text[n]))
        n++;
    return n;
}

static bool is_visible(unsigned char ch) { return ch > 0x20 && ch < 0x7f; }

static enum http_method method_of(const char *text, size_t len)
{
    if (len == 3 && memcmp(text, "GET", 3) == 0)
        return HTTP_GET;
    if (len == 4 && memcmp(text, "HEAD", 4) == 0)
        return HTTP_HEAD;
    return HTTP_OTHER_METHOD;
}

/* set_path: the path of an origin-form ("/p?q") or absolute-form
 * ("http://host/p?q") target; any other form is kept whole, and matches no
 * path. */
static void set_path(const char *target, size_t len, struct http_request *req)
{
    size_t start = 0;
    if (len > 7 && strncasecmp(target, "http://", 7) == 0)
        start = 7;
    else if (len > 8 && strncasecmp(target, "https://", 8) == 0)
        start = 8;
    if (start) {
        while (start < len && target[start] != '/' && target[start] != '?')
            start++;
        if (start == len || target[start] == '?') {
            req->path = "/";
            req->path_len = 1;
            return;
        }
    }
    size_t end = start;
    while (end < len && target[end] != '?')
        end++;
    req->path = target + start;
    req->path_len = end - start;
}

/* parse_version: "HTTP/d.d" and nothing else. */
static enum http_parse parse_version(const char *text, size_t len, struct http_request *req)
{
    if (len != 8 || memcmp(text, "HTTP/", 5) != 0 || text[6] != '.' || text[5] < '0' ||
        text[5] > '9' || text[7] < '0' || text[7] > '9')
        return HTTP_PARSE_BAD;
    if (text[5] != '1')
        return HTTP_PARSE_VERSION;
    req->minor_version = (unsigned)(text[7] - '0');
    return HTTP_PARSE_DONE;
}

/* parse_request_line: METHOD SP TARGET SP VERSION, one space each. */
static enum http_parse parse_request_line(const struct line *l, struct http_request *req)
{
    size_t method_len = token_len(l->text, l->len);
    if (method_len == 0 || method_len == l->len || l->text[method_len] != ' ')
        return HTTP_PARSE_BAD;
    const char *target = l->text + method_len + 1;
    const char *end = l->text + l->len;
    size_t target_len = 0;
    while (target + target_len < end && is_visible((unsigned char)target[target_len]))
        target_len++;
    if (target_len == 0 || target + target_len == end || target[target_len] != ' ')
        return HTTP_PARSE_BAD;
    const char *version = target + target_len + 1;
    enum http_parse parsed = parse_version(version, (size_t)(end - version), req);
    if (parsed != HTTP_PARSE_DONE)
        return parsed;
    req->method = method_of(l->text, method_len);
    set_path(target, target_len, req);
    return HTTP_PARSE_DONE;
}

/* is_field_value: visible characters, obs-text, spaces and tabs only. */
static bool is_field_value(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (!is_visible(ch) && ch < 0x80 && ch != ' ' && ch != '\t')
            return false;
    }
    return true;
}

/* parse_field: NAME ":" VALUE; a line starting with a blank would be a
 * folded continuation, which RFC 9112 lets a server refuse. */
static enum http_parse parse_field(const struct line *l, unsigned *hosts)
{
    size_t name_len = token_len(l->text, l->len);
    if (name_len == 0 || name_len == l->len || l->text[name_len] != ':' ||
        !is_field_value(l->text + name_len + 1, l->len - name_len - 1))
        return HTTP_PARSE_BAD;
    if (name_len == 4 && strncasecmp(l->text, "host", 4) == 0)
        (*hosts)++;
    return HTTP_PARSE_DONE;
}

static enum http_parse need_more(size_t len, size_t max_head)
{
    return len >= max_head ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_MORE;
}

enum http_parse http_parse_request(const char *data, size_t len, size_t max_head,
                                   struct http_request *req)
{
    struct line l;
    size_t pos = 0;
    do {
        if (!next_line(data, len, pos, &l))
            return need_more(len, max_head);
        pos = l.next;
    } while (l.len == 0);
    enum http_parse parsed = parse_request_line(&l, req);
    unsigned hosts = 0;
    while (parsed == HTTP_PARSE_DONE) {
        if (!next_line(data, len, pos, &l))
            return need_more(len, max_head);
        pos = l.next;
        if (l.len == 0)
            break;
        parsed = parse_field(&l, &hosts);
    }
    if (parsed != HTTP_PARSE_DONE)
        return parsed;
    if (pos > max_head)
        return HTTP_PARSE_TOO_LARGE;
    if (hosts > 1 || (hosts == 0 && req->minor_version >= 1))
        return HTTP_PARSE_BAD;
    req->head_len = pos;
    return HTTP_PARSE_DONE;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* trim: [*text, *text + *len) without its leading and trailing blanks */
static void trim(const char **text, size_t *len)
{
    while (*len > 0 && is_blank(**text)) {
        (*text)++;
        (*len)--;
    }
    while (*len > 0 && is_blank((*text)[*len - 1]))
        (*len)--;
}

size_t http_header(const char *data, const struct http_request *req, const char *name,
                   const char **value, size_t *len)
{
    struct line l;
    size_t pos = 0, found = 0, name_len = strlen(name);
    bool request_line = true;
    while (pos < req->head_len && next_line(data, req->head_len, pos, &l)) {
        pos = l.next;
        if (l.len == 0 || request_line) { /* the empty lines before it, and it */
            request_line = request_line && l.len == 0;
            continue;
        }
        if (l.len <= name_len || l.text[name_len] != ':' ||
            strncasecmp(l.text, name, name_len) != 0)
            continue;
        if (found++ == 0) {
            *value = l.text + name_len + 1;
            *len = l.len - name_len - 1;
            trim(value, len);
        }
    }
    return found;
}

bool http_has_token(const char *value, size_t len, const char *token)
{
    size_t token_len = strlen(token);
    while (len > 0) {
        const char *comma = memchr(value, ',', len);
        size_t item_len = comma ? (size_t)(comma - value) : len;
        const char *item = value;
        size_t n = item_len;
        trim(&item, &n);
        if (n == token_len && strncasecmp(item, token, n) == 0)
            return true;
        if (!comma)
            break;
        len -= item_len + 1;
        value = comma + 1;
    }
    return false;
}

unsigned http_status_of(enum http_parse parsed, const struct http_request *req, const char *path)
{
    switch (parsed) {
    case HTTP_PARSE_DONE: break;
    case HTTP_PARSE_TOO_LARGE: return 431;
    case HTTP_PARSE_VERSION: return 505;
    case HTTP_PARSE_BAD:
    case HTTP_PARSE_MORE: return 400;
    }
    if (req->path_len != strlen(path) || memcmp(req->path, path, req->path_len) != 0)
        return 404;
    return req->method == HTTP_OTHER_METHOD ? 405 : 200;
}

const char *http_reason(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

size_t http_format_head(const struct http_response *r, char *out, size_t cap)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&r->date, &tm);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %u %s\r\n"
                     "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "%s\r\n",
                     r->status, http_reason(r->status), days[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     r->content_type, r->content_length, r->extra_headers);
    return n < 0 ? 0 : (size_t)n;
}
