/*
 * auth: the `auth` command's password checks, off the loop.
 *
 * A password hash is made to cost a fifth of a second (passwd.h); checked
 * on the loop, every login would stall every client. So auth_check hands
 * the check to one thread of its own and returns at once; the thread
 * signals an eventfd (auth_fd) that the loop watches, and auth_collect,
 * called on the loop, hands each result to the function given. Checks run
 * one at a time, in the order asked: a crowd logging in waits for its
 * turn, but the messages of those already in never do.
 *
 * A name that is no user's is checked against a stand-in hash (the
 * costliest line's), so that it costs and answers what a wrong password
 * does. Each address (an IPv6 one by its /64) may fail AUTH_BURST times,
 * then once every AUTH_REFILL_MS (ratelimit.h): past that a check fails at
 * once, without being run. A check counts as a failure from when it is
 * asked until it succeeds, so checks asked at once are held to the limit
 * too.
 *
 * The users file is read at auth_new and again at auth_reload (SIGHUP): a
 * check uses the file as it was when it was asked, and a connection keeps
 * the file it logged in with (users.h), so a reload takes effect for the
 * logins after it.
 *
 * The thread allocates through alloc.h as a helper: a check's memory
 * (scrypt's, 128 x N x r bytes) is counted apart, beside --max-memory, not
 * in it. auth_new runs each hash once, cheaply, on the calling thread, so
 * that what the library keeps for them is the loop's, not the thread's.
 */
#ifndef MQD_AUTH_H
#define MQD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqd/log.h"
#include "mqd/siphash.h"
#include "mqd/users.h"

#define AUTH_BURST 10
#define AUTH_REFILL_MS 6000 /* 10 failures a minute per address, once spent */

struct auth;
struct auth_job;

enum auth_result {
    AUTH_ACCEPTED,
    AUTH_REJECTED,  /* unknown name or wrong password: the client is not told which */
    AUTH_LIMITED,   /* the address failed too often lately: not checked */
    AUTH_NO_MEMORY, /* the check could not run */
};

/* auth_done_fn: a check's end, on the loop. With AUTH_ACCEPTED, `user`
 * belongs to `users`, of which the function takes a reference to keep it. */
typedef void (*auth_done_fn)(void *ctx, enum auth_result result, struct users *users,
                             const struct user *user);

/* auth_new: reads the users file and starts the thread; NULL with a
 * one-line reason in `err`. */
struct auth *auth_new(const char *users_path, const struct log *log,
                      const uint8_t seed[SIPHASH_KEY_LEN], char *err, size_t err_len);

/* auth_free: stops the thread (after the check it is running) and drops
 * the checks not collected, without calling back. */
void auth_free(struct auth *a);

/* auth_fd: readable when results wait for auth_collect. */
int auth_fd(const struct auth *a);

/* auth_reload: reads the users file again; 0, or -1 with the reason in
 * `err` (the old file stays in force). */
int auth_reload(struct auth *a, char *err, size_t err_len);

/* auth_check: begins checking `password` for the user `name` from the
 * address `peer` (a net_peer_key); `done` will be called with `ctx` from
 * auth_collect. *job is set for auth_cancel. Returns AUTH_LIMITED or
 * AUTH_NO_MEMORY when the check does not begin (nothing will be called),
 * else AUTH_ACCEPTED (meaning: under way). `now_ms`: the loop's clock. */
enum auth_result auth_check(struct auth *a, const char *name, size_t name_len, const char *password,
                            size_t password_len, const unsigned char *peer, size_t peer_len,
                            int64_t now_ms, void *ctx, struct auth_job **job);

/* auth_cancel: the check's `ctx` is going away: its result is dropped, and
 * a check that has not begun yet is skipped. */
void auth_cancel(struct auth_job *job);

/* auth_collect: calls `done` for every check finished since the last call,
 * in order, and charges each failure to its address. O(results). */
void auth_collect(struct auth *a, auth_done_fn done, int64_t now_ms);

/* auth_stats: counters for operators */
struct auth_stats {
    uint64_t accepted;
    uint64_t rejected;
    uint64_t limited;
    size_t waiting; /* checks asked and not collected */
};
void auth_get_stats(const struct auth *a, struct auth_stats *out);

#endif
