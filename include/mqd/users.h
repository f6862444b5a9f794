/*
 * users: the users file (--users FILE): who may connect, and which topics
 * each may publish to and subscribe to.
 *
 * One user a line, fields separated by blanks; blank lines and lines
 * starting with '#' are ignored:
 *
 *   NAME  HASH  [publish=PATTERNS]  [subscribe=PATTERNS]
 *
 * NAME is any bytes but blanks; HASH a password hash (passwd.h); PATTERNS a
 * comma-separated list, each an exact topic or, ending in '*', every topic
 * starting with what comes before it ("*" alone: every topic). A backslash
 * makes the next byte plain (a blank, ',', '*' or '\' in a topic). A right
 * left out is not granted. Names are unique.
 *
 * A parsed file is shared by reference: connections that authenticated keep
 * the one they authenticated against while a reload brings a new one.
 *
 * Costs: users_find O(users); user_may O(the user's patterns for that
 * right) byte comparisons.
 */
#ifndef MQD_USERS_H
#define MQD_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "mqd/passwd.h"

#define USERS_MAX_FILE (16 * 1024 * 1024) /* a file longer is refused */

struct users;
struct user;

enum users_right { USERS_PUBLISH, USERS_SUBSCRIBE };

/* users_parse: the `len` bytes at `text` as a users file; NULL with a
 * one-line reason naming the line in `err` (or "out of memory"). */
struct users *users_parse(const char *text, size_t len, char *err, size_t err_len);

/* users_load: the file at `path` parsed; NULL with a reason naming it. */
struct users *users_load(const char *path, char *err, size_t err_len);

/* users_ref, users_unref: one more holder; one fewer (the last frees it). */
struct users *users_ref(struct users *u);
void users_unref(struct users *u);

size_t users_count(const struct users *u);

/* users_find: the user named by the `len` bytes at `name`, or NULL. */
const struct user *users_find(const struct users *u, const char *name, size_t len);

/* users_stand_in: a hash to check a password against for a name that is no
 * user's: the costliest line's, so that an unknown name costs what a wrong
 * password does (for every user when the lines cost alike). */
const struct passwd *users_stand_in(const struct users *u);

/* users_costs_differ: whether some line costs more than twice another
 * (passwd_cost): a client can then tell a cheap line's user by timing. */
bool users_costs_differ(const struct users *u);

const char *user_name(const struct user *u);
const struct passwd *user_passwd(const struct user *u);

/* user_may: whether the user has `right` on the topic (the decoded `len`
 * bytes at `topic`). */
bool user_may(const struct user *u, enum users_right right, const char *topic, size_t len);

#endif
