/* fuzz_users: any bytes as a users file parse without reading outside them
 * or leaking, and what is accepted is what the file says: one user a line
 * that is neither blank nor a comment, each found by its name, and the same
 * text with a comment and a blank line added parses the same. The hashes in
 * the lines exercise passwd_parse too. */
#include "mqd/alloc.h"
#include "mqd/users.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

/* check_names: every user line's first field names a user; the count of such lines */
static size_t check_names(const struct users *us, const char *text, size_t size)
{
    size_t lines = 0;
    const char *p = text, *end = text + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        while (p < stop && is_blank(*p))
            p++;
        if (p < stop && *p != '#') {
            const char *name = p;
            while (p < stop && !is_blank(*p))
                p++;
            const struct user *u = users_find(us, name, (size_t)(p - name));
            if (!u || strlen(user_name(u)) > (size_t)(p - name))
                abort();
            /* the rest of the line as a topic: any answer, no fault */
            (void)user_may(u, USERS_PUBLISH, p, (size_t)(stop - p));
            (void)user_may(u, USERS_SUBSCRIBE, p, (size_t)(stop - p));
            lines++;
        }
        p = nl ? nl + 1 : end;
    }
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t before = mqd_allocated();
    /* a copy of exactly `size` bytes, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    char err[256];
    struct users *us = users_parse(text, size, err, sizeof(err));
    if (us) {
        if (check_names(us, text, size) != users_count(us))
            abort();
    } else if (strncmp(err, "line ", 5) != 0) {
        abort(); /* every refusal names its line */
    }
    char *more = malloc(size + 16);
    memcpy(more, text, size);
    memcpy(more + size, "\n# c\n\n", 6);
    struct users *again = users_parse(more, size + 6, err, sizeof(err));
    if ((us == NULL) != (again == NULL) || (us && users_count(us) != users_count(again)))
        abort();
    users_unref(us);
    users_unref(again);
    free(more);
    free(text);
    if (mqd_allocated() != before)
        abort();
    return 0;
}
