#include "mqd/json.h"

#include <stdint.h>
#include <string.h>

struct scanner {
    const char *s;
    size_t len;
    size_t pos;
};

static bool at(const struct scanner *sc, char c)
{
    return sc->pos < sc->len && sc->s[sc->pos] == c;
}

static bool is_digit(const struct scanner *sc)
{
    return sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9';
}

static void skip_ws(struct scanner *sc)
{
    while (sc->pos < sc->len) {
        char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return;
        sc->pos++;
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* hex4: the code unit of the four hex digits at p, or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool is_high_surrogate(long u) { return u >= 0xD800 && u <= 0xDBFF; }
static bool is_low_surrogate(long u) { return u >= 0xDC00 && u <= 0xDFFF; }

/* scan_unicode_escape: at the 'u' of "\u"; a high surrogate must be followed
 * by "\u" and a low one, and a low one must not stand alone. */
static bool scan_unicode_escape(struct scanner *sc)
{
    if (sc->len - sc->pos < 5)
        return false;
    long unit = hex4(sc->s + sc->pos + 1);
    sc->pos += 5;
    if (unit < 0 || is_low_surrogate(unit))
        return false;
    if (!is_high_surrogate(unit))
        return true;
    if (sc->len - sc->pos < 6 || sc->s[sc->pos] != '\\' || sc->s[sc->pos + 1] != 'u')
        return false;
    long low = hex4(sc->s + sc->pos + 2);
    sc->pos += 6;
    return is_low_surrogate(low);
}

static bool scan_escape(struct scanner *sc)
{
    sc->pos++; /* the backslash */
    if (sc->pos >= sc->len)
        return false;
    switch (sc->s[sc->pos]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't': sc->pos++; return true;
    case 'u': return scan_unicode_escape(sc);
    default: return false;
    }
}

/* skip_plain: moves over the bytes of a string that need no look (none is
 * '"', '\\' or below 0x20), eight at a time, and stops at the first that
 * does or fewer than eight before the end. A string's text is most of a
 * line, and bytewise it cost a third of a send's scan. */
static void skip_plain(struct scanner *sc)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, highs = ones << 7;
    while (sc->pos + 8 <= sc->len) {
        uint64_t w;
        memcpy(&w, sc->s + sc->pos, 8);
        uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
        /* a byte's high bit set where it is zero (or below 0x20 for w
         * itself); a borrow can only mark bytes after a true hit, so the
         * lowest mark is the first byte to look at */
        uint64_t hit =
            ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | ((w - ones * 0x20) & ~w);
        hit &= highs;
        if (hit) {
            sc->pos += (size_t)__builtin_ctzll(hit) / 8;
            return;
        }
        sc->pos += 8;
    }
#else
    (void)sc;
#endif
}

static bool scan_string(struct scanner *sc, struct json_span *span, bool *escaped)
{
    sc->pos++; /* the opening quote */
    size_t start = sc->pos;
    *escaped = false;
    for (;;) {
        skip_plain(sc);
        if (sc->pos >= sc->len)
            break;
        unsigned char c = (unsigned char)sc->s[sc->pos];
        if (c == '"') {
            span->start = sc->s + start;
            span->len = sc->pos - start;
            sc->pos++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            *escaped = true;
            if (!scan_escape(sc))
                return false;
            continue;
        }
        sc->pos++;
    }
    return false;
}

static bool scan_digits(struct scanner *sc)
{
    if (!is_digit(sc))
        return false;
    while (is_digit(sc))
        sc->pos++;
    return true;
}

static bool scan_number(struct scanner *sc, bool *integer)
{
    if (at(sc, '-'))
        sc->pos++;
    if (at(sc, '0'))
        sc->pos++;
    else if (!scan_digits(sc))
        return false;
    *integer = true;
    if (at(sc, '.')) {
        sc->pos++;
        *integer = false;
        if (!scan_digits(sc))
            return false;
    }
    if (at(sc, 'e') || at(sc, 'E')) {
        sc->pos++;
        *integer = false;
        if (at(sc, '+') || at(sc, '-'))
            sc->pos++;
        if (!scan_digits(sc))
            return false;
    }
    return true;
}

static bool scan_word(struct scanner *sc, const char *word)
{
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return false;
    sc->pos += n;
    return true;
}

static bool scan_value(struct scanner *sc, int depth, struct json_member *m);

/* scan_object: at '{'; records members into `top` when scanning the
 * top-level object, only validates nested ones. */
static bool scan_object(struct scanner *sc, int depth, struct json_value *top)
{
    if (depth > JSON_MAX_DEPTH)
        return false;
    sc->pos++;
    skip_ws(sc);
    if (at(sc, '}')) {
        sc->pos++;
        return true;
    }
    for (;;) {
        struct json_member m;
        if (!at(sc, '"') || !scan_string(sc, &m.key, &m.key_escaped))
            return false;
        skip_ws(sc);
        if (!at(sc, ':'))
            return false;
        sc->pos++;
        skip_ws(sc);
        if (!scan_value(sc, depth, &m))
            return false;
        if (top && top->nmembers < JSON_MAX_MEMBERS)
            top->members[top->nmembers] = m;
        if (top)
            top->nmembers++;
        skip_ws(sc);
        if (at(sc, '}')) {
            sc->pos++;
            return true;
        }
        if (!at(sc, ','))
            return false;
        sc->pos++;
        skip_ws(sc);
    }
}

static bool scan_array(struct scanner *sc, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return false;
    sc->pos++;
    skip_ws(sc);
    if (at(sc, ']')) {
        sc->pos++;
        return true;
    }
    for (;;) {
        struct json_member ignored;
        if (!scan_value(sc, depth, &ignored))
            return false;
        skip_ws(sc);
        if (at(sc, ']')) {
            sc->pos++;
            return true;
        }
        if (!at(sc, ','))
            return false;
        sc->pos++;
        skip_ws(sc);
    }
}

/* scan_value: one value at sc->pos, described into *m (type, span, flags). */
static bool scan_value(struct scanner *sc, int depth, struct json_member *m)
{
    if (sc->pos >= sc->len)
        return false;
    size_t start = sc->pos;
    bool ok;
    m->escaped = false;
    m->integer = false;
    switch (sc->s[sc->pos]) {
    case '{':
        m->type = JSON_OBJECT;
        ok = scan_object(sc, depth + 1, NULL);
        break;
    case '[':
        m->type = JSON_ARRAY;
        ok = scan_array(sc, depth + 1);
        break;
    case '"': m->type = JSON_STRING; return scan_string(sc, &m->value, &m->escaped);
    case 't':
        m->type = JSON_TRUE;
        ok = scan_word(sc, "true");
        break;
    case 'f':
        m->type = JSON_FALSE;
        ok = scan_word(sc, "false");
        break;
    case 'n':
        m->type = JSON_NULL;
        ok = scan_word(sc, "null");
        break;
    default:
        m->type = JSON_NUMBER;
        ok = scan_number(sc, &m->integer);
        break;
    }
    m->value.start = sc->s + start;
    m->value.len = sc->pos - start;
    return ok;
}

bool json_scan(const char *s, size_t len, struct json_value *out)
{
    struct scanner sc = {s, len, 0};
    struct json_member top;
    out->nmembers = 0;
    skip_ws(&sc);
    size_t start = sc.pos;
    if (at(&sc, '{')) {
        top.type = JSON_OBJECT;
        if (!scan_object(&sc, 1, out))
            return false;
    } else if (!scan_value(&sc, 0, &top)) {
        return false;
    }
    out->type = top.type;
    out->raw.start = s + start;
    out->raw.len = sc.pos - start;
    skip_ws(&sc);
    return sc.pos == len;
}

static size_t encode_utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static char simple_escape(char c)
{
    switch (c) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return c; /* '"', '\\' and '/' stand for themselves */
    }
}

/* decode_next: decodes the escape or byte at raw[*i] into out (up to four
 * bytes), advancing *i; returns the bytes written. raw was scanned valid. */
static size_t decode_next(const char *raw, size_t *i, char *out)
{
    if (raw[*i] != '\\') {
        out[0] = raw[(*i)++];
        return 1;
    }
    if (raw[*i + 1] != 'u') {
        out[0] = simple_escape(raw[*i + 1]);
        *i += 2;
        return 1;
    }
    unsigned long cp = (unsigned long)hex4(raw + *i + 2);
    *i += 6;
    if (is_high_surrogate((long)cp)) {
        unsigned long low = (unsigned long)hex4(raw + *i + 2);
        *i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    return encode_utf8(cp, out);
}

size_t json_decode_string(const char *raw, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;)
        o += decode_next(raw, &i, out + o);
    return o;
}

bool json_string_equals(struct json_span raw, const char *text)
{
    return json_text_is(raw, memchr(raw.start, '\\', raw.len) != NULL, text, strlen(text));
}

bool json_text_is(struct json_span raw, bool escaped, const char *text, size_t text_len)
{
    if (!escaped) /* the raw bytes are the text */
        return raw.len == text_len && memcmp(raw.start, text, text_len) == 0;
    if (raw.len < text_len)
        return false; /* decoding never grows */
    size_t o = 0;
    for (size_t i = 0; i < raw.len;) {
        char piece[4];
        size_t n = decode_next(raw.start, &i, piece);
        if (n > text_len - o || memcmp(piece, text + o, n) != 0)
            return false;
        o += n;
    }
    return o == text_len;
}
