#include "mqd/users.h"

#include "mqd/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pattern {
    char *text;
    size_t len;
    bool prefix; /* ended in '*': every topic starting with text */
};

struct patterns {
    struct pattern *items;
    size_t n, cap;
};

struct user {
    char *name;
    size_t name_len;
    struct passwd passwd;
    struct patterns rights[2]; /* by enum users_right */
};

struct users {
    unsigned refs;
    struct user *items;
    size_t n, cap;
    size_t costliest; /* the user whose line costs the most */
    uint64_t min_cost, max_cost;
};

/* a line being read: its number, for errors, and where the reading is */
struct cursor {
    const char *p, *end;
    size_t line;
    char *err;
    size_t err_len;
};

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

static void skip_blanks(struct cursor *c)
{
    while (c->p < c->end && is_blank(*c->p))
        c->p++;
}

/* token: the next blank-delimited field of the line */
static bool token(struct cursor *c, const char **start, size_t *len)
{
    skip_blanks(c);
    *start = c->p;
    while (c->p < c->end && !is_blank(*c->p))
        c->p++;
    *len = (size_t)(c->p - *start);
    return *len > 0;
}

static void patterns_clear(struct patterns *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        mqd_free(ps->items[i].text);
    mqd_free(ps->items);
}

static void user_clear(struct user *u)
{
    mqd_free(u->name);
    patterns_clear(&u->rights[USERS_PUBLISH]);
    patterns_clear(&u->rights[USERS_SUBSCRIBE]);
}

static int fail(struct cursor *c, const char *why)
{
    snprintf(c->err, c->err_len, "line %zu: %s", c->line, why);
    return -1;
}

/* add_pattern: one pattern, its escapes resolved, read from c->p up to an
 * unescaped ',' or blank */
static int add_pattern(struct cursor *c, struct patterns *ps)
{
    const char *start = c->p;
    while (c->p < c->end && *c->p != ',' && !is_blank(*c->p))
        c->p += *c->p == '\\' && c->p + 1 < c->end ? 2 : 1;
    size_t raw = (size_t)(c->p - start);
    struct pattern pat = {mqd_malloc(raw ? raw : 1), 0, false};
    if (!pat.text)
        return fail(c, "out of memory");
    for (const char *q = start; q < c->p; q++) {
        if (*q == '\\') {
            if (++q == c->p) {
                mqd_free(pat.text);
                return fail(c, "a pattern ends in a lone backslash");
            }
        } else if (*q == '*') {
            if (q + 1 != c->p) {
                mqd_free(pat.text);
                return fail(c, "'*' may only end a pattern (write \\* for the character)");
            }
            pat.prefix = true;
            break;
        }
        pat.text[pat.len++] = *q;
    }
    if (pat.len == 0 && !pat.prefix) {
        mqd_free(pat.text);
        return fail(c, "an empty pattern");
    }
    if (mqd_grow_array((void **)&ps->items, &ps->cap, ps->n + 1, sizeof(*ps->items), 4) < 0) {
        mqd_free(pat.text);
        return fail(c, "out of memory");
    }
    ps->items[ps->n++] = pat;
    return 0;
}

/* add_right: "publish=P,Q" or "subscribe=P,Q" at c->p */
static int add_right(struct cursor *c, struct user *u)
{
    static const char *const names[] = {
        [USERS_PUBLISH] = "publish=", [USERS_SUBSCRIBE] = "subscribe="};
    for (int r = USERS_PUBLISH; r <= USERS_SUBSCRIBE; r++) {
        size_t n = strlen(names[r]);
        if ((size_t)(c->end - c->p) < n || memcmp(c->p, names[r], n) != 0)
            continue;
        if (u->rights[r].n > 0)
            return fail(c, "a right given twice");
        c->p += n;
        for (;;) {
            if (add_pattern(c, &u->rights[r]) < 0)
                return -1;
            if (c->p == c->end || *c->p != ',')
                return 0;
            c->p++;
        }
    }
    return fail(c, "expected publish=PATTERNS or subscribe=PATTERNS");
}

static bool same_name(const struct user *u, const char *name, size_t len)
{
    return u->name_len == len && memcmp(u->name, name, len) == 0;
}

/* add_user: the line at c->p (not blank, not a comment) */
static int add_user(struct cursor *c, struct users *us)
{
    const char *name, *hash;
    size_t name_len, hash_len;
    (void)token(c, &name, &name_len);
    if (users_find(us, name, name_len))
        return fail(c, "a user named twice");
    if (!token(c, &hash, &hash_len))
        return fail(c, "no password hash after the name");
    struct user u = {0};
    if (passwd_parse(hash, hash_len, &u.passwd) < 0)
        return fail(c, "not a password hash ($pbkdf2-sha256$i=N$SALT$HASH or "
                       "$scrypt$ln=N,r=R,p=P$SALT$HASH, made by mqd --hash-password)");
    u.name = mqd_malloc(name_len + 1);
    if (!u.name)
        return fail(c, "out of memory");
    memcpy(u.name, name, name_len);
    u.name[name_len] = '\0';
    u.name_len = name_len;
    for (skip_blanks(c); c->p < c->end; skip_blanks(c)) {
        if (add_right(c, &u) < 0 || (c->p < c->end && !is_blank(*c->p) &&
                                     fail(c, "a blank must follow a right's patterns") < 0)) {
            user_clear(&u);
            return -1;
        }
    }
    if (mqd_grow_array((void **)&us->items, &us->cap, us->n + 1, sizeof(*us->items), 4) < 0) {
        user_clear(&u);
        return fail(c, "out of memory");
    }
    uint64_t cost = passwd_cost(&u.passwd);
    if (us->n == 0 || cost > us->max_cost) {
        us->costliest = us->n;
        us->max_cost = cost;
    }
    if (us->n == 0 || cost < us->min_cost)
        us->min_cost = cost;
    us->items[us->n++] = u;
    return 0;
}

struct users *users_parse(const char *text, size_t len, char *err, size_t err_len)
{
    struct users *us = mqd_calloc(1, sizeof(*us));
    if (!us) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    us->refs = 1;
    struct cursor c = {.p = text, .line = 0, .err = err, .err_len = err_len};
    const char *end = text + len;
    while (c.p < end) {
        const char *nl = memchr(c.p, '\n', (size_t)(end - c.p));
        c.end = nl ? nl : end;
        c.line++;
        skip_blanks(&c);
        if (c.p < c.end && *c.p != '#' && add_user(&c, us) < 0) {
            users_unref(us);
            return NULL;
        }
        c.p = nl ? nl + 1 : end;
    }
    return us;
}

struct users *users_load(const char *path, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, err_len, "cannot read users file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (st.st_size > USERS_MAX_FILE) {
        snprintf(err, err_len, "users file %s: longer than %d bytes", path, USERS_MAX_FILE);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    char *text = mqd_malloc(size ? size : 1);
    size_t got = 0;
    ssize_t n = 1;
    while (text && got < size && (n = read(fd, text + got, size - got)) > 0)
        got += (size_t)n;
    int read_errno = errno;
    close(fd);
    if (!text || n < 0) {
        snprintf(err, err_len, "cannot read users file %s: %s", path,
                 text ? strerror(read_errno) : "out of memory");
        mqd_free(text);
        return NULL;
    }
    char why[200];
    struct users *us = users_parse(text, got, why, sizeof(why));
    mqd_free(text);
    if (!us)
        snprintf(err, err_len, "users file %s: %s", path, why);
    return us;
}

struct users *users_ref(struct users *u)
{
    u->refs++;
    return u;
}

void users_unref(struct users *u)
{
    if (!u || --u->refs > 0)
        return;
    for (size_t i = 0; i < u->n; i++)
        user_clear(&u->items[i]);
    mqd_free(u->items);
    mqd_free(u);
}

size_t users_count(const struct users *u) { return u->n; }

const struct user *users_find(const struct users *u, const char *name, size_t len)
{
    for (size_t i = 0; i < u->n; i++) {
        if (same_name(&u->items[i], name, len))
            return &u->items[i];
    }
    return NULL;
}

bool users_costs_differ(const struct users *u) { return u->max_cost / 2 > u->min_cost; }

const struct passwd *users_stand_in(const struct users *u)
{
    static const struct passwd fallback = {.kind = PASSWD_PBKDF2_SHA256,
                                           .iterations = PASSWD_DEFAULT_ITERATIONS,
                                           .salt_len = PASSWD_SALT_LEN,
                                           .hash_len = PASSWD_HASH_LEN};
    return u->n > 0 ? &u->items[u->costliest].passwd : &fallback;
}

const char *user_name(const struct user *u) { return u->name; }

const struct passwd *user_passwd(const struct user *u) { return &u->passwd; }

static bool matches(const struct pattern *p, const char *topic, size_t len)
{
    if (p->prefix)
        return len >= p->len && memcmp(topic, p->text, p->len) == 0;
    return len == p->len && memcmp(topic, p->text, len) == 0;
}

bool user_may(const struct user *u, enum users_right right, const char *topic, size_t len)
{
    const struct patterns *ps = &u->rights[right];
    for (size_t i = 0; i < ps->n; i++) {
        if (matches(&ps->items[i], topic, len))
            return true;
    }
    return false;
}
