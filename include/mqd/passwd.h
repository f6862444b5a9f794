/*
 * passwd: password hashes as the users file holds them (users.h), in the
 * PHC string format that passlib, Django and others write:
 *
 *   $pbkdf2-sha256$i=ITERATIONS$SALT$HASH    PBKDF2-HMAC-SHA256
 *   $scrypt$ln=LOG2_N,r=R,p=P$SALT$HASH      scrypt
 *
 * SALT and HASH in base64 (standard alphabet, '=' padding optional). Both
 * functions come from OpenSSL's libcrypto; the cost is in the line, so old
 * lines keep working when the defaults grow.
 *
 * Cost: passwd_check is deliberately slow (PASSWD_DEFAULT_* take about
 * 0.2 s of one core, and scrypt its memory: 128 x N x r bytes): never call
 * it on the server's loop (auth.h runs it on a thread of its own).
 */
#ifndef MQD_PASSWD_H
#define MQD_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWD_SALT_LEN 16 /* what passwd_make draws */
#define PASSWD_HASH_LEN 32 /* what passwd_make derives */
#define PASSWD_MIN_SALT 8
#define PASSWD_MAX_SALT 64
#define PASSWD_MIN_HASH 16
#define PASSWD_MAX_HASH 64
/* the bounds a line's cost must keep, so that a users file cannot ask for
 * more than a second or so of work or 1 GiB of memory per check */
#define PASSWD_MAX_ITERATIONS 10000000u
#define PASSWD_MAX_LOG2_N 20
#define PASSWD_MAX_SCRYPT_MEMORY (1024u * 1024 * 1024)
#define PASSWD_MAX_P 16
#define PASSWD_MAX_SCRYPT_WORK (1u << 23) /* N x r x p: the 1 GiB of ln=20, r=8, once */
/* what passwd_make uses: OWASP's figures for each function */
#define PASSWD_DEFAULT_ITERATIONS 600000u
#define PASSWD_DEFAULT_LOG2_N 16
#define PASSWD_DEFAULT_R 8
#define PASSWD_DEFAULT_P 1
#define PASSWD_TEXT_MAX 256 /* room for any line passwd_make writes */

enum passwd_kind { PASSWD_PBKDF2_SHA256, PASSWD_SCRYPT };

struct passwd {
    enum passwd_kind kind;
    uint32_t iterations; /* PBKDF2 */
    unsigned log2_n;     /* scrypt: N = 2^log2_n */
    uint32_t r, p;       /* scrypt */
    uint8_t salt[PASSWD_MAX_SALT];
    size_t salt_len;
    uint8_t hash[PASSWD_MAX_HASH];
    size_t hash_len;
};

/* passwd_parse: the `len` bytes at `text` as one of the two forms, with its
 * cost in bounds. 0, or -1 (and *out undefined) when it is not. */
int passwd_parse(const char *text, size_t len, struct passwd *out);

/* passwd_cost: about how long a check of `h` takes, in units of one PBKDF2
 * iteration (scrypt's N x r x p counts 1.4 of them, as measured), to tell
 * which of two lines costs more. */
uint64_t passwd_cost(const struct passwd *h);

/* passwd_check: 1 when `password` hashes to h's hash (compared in constant
 * time), 0 when not, -1 when the library failed (out of memory). */
int passwd_check(const struct passwd *h, const char *password, size_t len);

/* passwd_make: a new line for `password`, with a random salt and the
 * default cost, NUL-terminated in `out` (PASSWD_TEXT_MAX bytes). 0, or -1
 * when the library failed. */
int passwd_make(enum passwd_kind kind, const char *password, size_t len, char *out, size_t out_len);

/* passwd_base64_decode: standard base64, padding optional, into at most
 * `max` bytes; the length, or -1 when it is not base64 or does not fit.
 * (Exposed for tests.) */
long passwd_base64_decode(const char *text, size_t len, uint8_t *out, size_t max);

#endif
