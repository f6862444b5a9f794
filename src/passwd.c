#include "mqd/passwd.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define PBKDF2_PREFIX "$pbkdf2-sha256$"
#define SCRYPT_PREFIX "$scrypt$"
#define MAX_R 64

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* sextet: the value of a base64 digit, or -1 */
static int sextet(char ch)
{
    const char *at = ch ? strchr(alphabet, ch) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

long passwd_base64_decode(const char *text, size_t len, uint8_t *out, size_t max)
{
    while (len > 0 && text[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = sextet(text[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == max)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* bits past the last byte must be zero: one text per value */
        return -1;
    return (long)n;
}

/* base64_encode: without padding, as PHC strings are written; NUL-ended */
static void base64_encode(const uint8_t *in, size_t len, char *out)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = alphabet[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* parse_number: a decimal number in [min, max] spanning [p, end) whole */
static bool parse_number(const char *p, const char *end, uint64_t min, uint64_t max, uint64_t *out)
{
    if (p == end || end - p > 10 || (*p == '0' && end - p > 1))
        return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return v >= min && v <= max;
}

/* field: the text from *p to the next '$' (or `end`); *p moves past it */
static bool field(const char **p, const char *end, const char **start, const char **stop)
{
    *start = *p;
    const char *dollar = memchr(*p, '$', (size_t)(end - *p));
    *stop = dollar ? dollar : end;
    *p = dollar ? dollar + 1 : end;
    return dollar != NULL;
}

/* parse_param: "name=N" in [min, max] at the start of [p, end), up to a
 * ',' or `end`, where *p is left */
static bool parse_param(const char **p, const char *end, const char *name, uint64_t min,
                        uint64_t max, uint64_t *out)
{
    size_t n = strlen(name);
    if ((size_t)(end - *p) <= n || memcmp(*p, name, n) != 0 || (*p)[n] != '=')
        return false;
    const char *start = *p + n + 1;
    const char *comma = memchr(start, ',', (size_t)(end - start));
    *p = comma ? comma : end;
    return parse_number(start, *p, min, max, out);
}

/* comma: whether a ',' is at *p, stepping over it */
static bool comma(const char **p, const char *end) { return *p < end && *(*p)++ == ','; }

static bool parse_scrypt_params(const char *p, const char *end, struct passwd *out)
{
    uint64_t ln, r, pp;
    if (!parse_param(&p, end, "ln", 1, PASSWD_MAX_LOG2_N, &ln) || !comma(&p, end) ||
        !parse_param(&p, end, "r", 1, MAX_R, &r) || !comma(&p, end) ||
        !parse_param(&p, end, "p", 1, PASSWD_MAX_P, &pp) || p != end)
        return false;
    out->log2_n = (unsigned)ln;
    out->r = (uint32_t)r;
    out->p = (uint32_t)pp;
    return (128u * r) << ln <= PASSWD_MAX_SCRYPT_MEMORY && (r * pp) << ln <= PASSWD_MAX_SCRYPT_WORK;
}

int passwd_parse(const char *text, size_t len, struct passwd *out)
{
    const char *p = text, *end = text + len, *start, *stop;
    memset(out, 0, sizeof(*out));
    if (len > strlen(PBKDF2_PREFIX) && memcmp(text, PBKDF2_PREFIX, strlen(PBKDF2_PREFIX)) == 0) {
        out->kind = PASSWD_PBKDF2_SHA256;
        p += strlen(PBKDF2_PREFIX);
        uint64_t i;
        if (!field(&p, end, &start, &stop) ||
            !parse_param(&start, stop, "i", 1, PASSWD_MAX_ITERATIONS, &i) || start != stop)
            return -1;
        out->iterations = (uint32_t)i;
    } else if (len > strlen(SCRYPT_PREFIX) &&
               memcmp(text, SCRYPT_PREFIX, strlen(SCRYPT_PREFIX)) == 0) {
        out->kind = PASSWD_SCRYPT;
        p += strlen(SCRYPT_PREFIX);
        if (!field(&p, end, &start, &stop) || !parse_scrypt_params(start, stop, out))
            return -1;
    } else {
        return -1;
    }
    if (!field(&p, end, &start, &stop))
        return -1;
    long salt = passwd_base64_decode(start, (size_t)(stop - start), out->salt, PASSWD_MAX_SALT);
    if (field(&p, end, &start, &stop)) /* the hash is the last field */
        return -1;
    long hash = passwd_base64_decode(start, (size_t)(stop - start), out->hash, PASSWD_MAX_HASH);
    if (salt < PASSWD_MIN_SALT || hash < PASSWD_MIN_HASH)
        return -1;
    out->salt_len = (size_t)salt;
    out->hash_len = (size_t)hash;
    return 0;
}

uint64_t passwd_cost(const struct passwd *h)
{
    if (h->kind == PASSWD_PBKDF2_SHA256)
        return h->iterations;
    return (((uint64_t)h->r * h->p) << h->log2_n) * 14 / 10;
}

/* derive: h's function over the password into `key` (`key_len` bytes) */
static int derive(const struct passwd *h, const char *password, size_t len, uint8_t *key,
                  size_t key_len)
{
    if (len > INT32_MAX)
        return -1;
    if (h->kind == PASSWD_PBKDF2_SHA256)
        return PKCS5_PBKDF2_HMAC(password, (int)len, h->salt, (int)h->salt_len, (int)h->iterations,
                                 EVP_sha256(), (int)key_len, key) == 1
                   ? 0
                   : -1;
    uint64_t max_memory = 2 * (uint64_t)PASSWD_MAX_SCRYPT_MEMORY; /* V and B, with room */
    return EVP_PBE_scrypt(password, len, h->salt, h->salt_len, (uint64_t)1 << h->log2_n, h->r, h->p,
                          max_memory, key, key_len) == 1
               ? 0
               : -1;
}

int passwd_check(const struct passwd *h, const char *password, size_t len)
{
    uint8_t key[PASSWD_MAX_HASH];
    if (derive(h, password, len, key, h->hash_len) < 0)
        return -1;
    int same = CRYPTO_memcmp(key, h->hash, h->hash_len) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    return same;
}

int passwd_make(enum passwd_kind kind, const char *password, size_t len, char *out, size_t out_len)
{
    struct passwd h = {.kind = kind,
                       .iterations = PASSWD_DEFAULT_ITERATIONS,
                       .log2_n = PASSWD_DEFAULT_LOG2_N,
                       .r = PASSWD_DEFAULT_R,
                       .p = PASSWD_DEFAULT_P,
                       .salt_len = PASSWD_SALT_LEN,
                       .hash_len = PASSWD_HASH_LEN};
    if (RAND_bytes(h.salt, (int)h.salt_len) != 1 ||
        derive(&h, password, len, h.hash, h.hash_len) < 0)
        return -1;
    char salt[PASSWD_MAX_SALT * 2], hash[PASSWD_MAX_HASH * 2];
    base64_encode(h.salt, h.salt_len, salt);
    base64_encode(h.hash, h.hash_len, hash);
    int n = kind == PASSWD_PBKDF2_SHA256
                ? snprintf(out, out_len, PBKDF2_PREFIX "i=%u$%s$%s", h.iterations, salt, hash)
                : snprintf(out, out_len, SCRYPT_PREFIX "ln=%u,r=%u,p=%u$%s$%s", h.log2_n, h.r, h.p,
                           salt, hash);
    OPENSSL_cleanse(&h, sizeof(h));
    return n > 0 && (size_t)n < out_len ? 0 : -1;
}
