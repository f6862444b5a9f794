#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqd/alloc.h"
#include "mqd/auth.h"

/* "correct horse", made by Python's hashlib */
#define HASH                                                                                       \
    "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M"

static const uint8_t seed[SIPHASH_KEY_LEN] = {3};
static const unsigned char here[5] = {4, 127, 0, 0, 1}, there[5] = {4, 127, 0, 0, 2};
static const struct log quiet = {LOG_LEVEL_ERROR, NULL, NULL};

/* what the callbacks saw */
struct seen {
    int calls;
    enum auth_result result;
    const char *user;
    struct users *users;
};

static void done(void *ctx, enum auth_result result, struct users *users, const struct user *user)
{
    struct seen *s = ctx;
    s->calls++;
    s->result = result;
    s->user = user ? user_name(user) : NULL;
    if (user)
        s->users = users_ref(users);
}

static char path[64];

static void write_users(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/mqd-auth-%d", (int)getpid());
    write_users("alice " HASH " publish=x\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

/* wait_for: collects until `n` callbacks came in all */
static void wait_for(struct auth *a, int *calls, int n)
{
    while (*calls < n) {
        struct pollfd p = {.fd = auth_fd(a), .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        auth_collect(a, done, 0);
    }
}

static struct auth *start(void)
{
    char err[256];
    struct auth *a = auth_new(path, &quiet, seed, err, sizeof(err));
    if (!a)
        fail_msg("%s", err);
    return a;
}

static enum auth_result check(struct auth *a, const char *name, const char *password,
                              const unsigned char *peer, struct seen *s, struct auth_job **job)
{
    return auth_check(a, name, strlen(name), password, strlen(password), peer, 5, 0, s, job);
}

static void the_right_password_logs_in_and_others_do_not(void **state)
{
    (void)state;
    struct auth *a = start();
    struct seen s[3] = {0};
    struct auth_job *jobs[3];
    assert_int_equal(check(a, "alice", "correct horse", here, &s[0], &jobs[0]), AUTH_ACCEPTED);
    assert_non_null(jobs[0]);
    assert_int_equal(check(a, "alice", "wrong", here, &s[1], &jobs[1]), AUTH_ACCEPTED);
    assert_int_equal(check(a, "mallory", "correct horse", here, &s[2], &jobs[2]), AUTH_ACCEPTED);
    int calls = 0;
    while (s[0].calls + s[1].calls + s[2].calls < 3) {
        struct pollfd p = {.fd = auth_fd(a), .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        auth_collect(a, done, 0);
        calls++;
    }
    assert_int_equal(s[0].result, AUTH_ACCEPTED);
    assert_string_equal(s[0].user, "alice");
    assert_int_equal(s[1].result, AUTH_REJECTED);
    assert_null(s[1].user);
    assert_int_equal(s[2].result, AUTH_REJECTED); /* unknown name: the same answer */
    for (int i = 0; i < 3; i++)
        assert_null(jobs[i]); /* cleared once told */
    struct auth_stats st;
    auth_get_stats(a, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.waiting, 0);
    users_unref(s[0].users);
    auth_free(a);
}

static void an_address_that_fails_too_often_is_not_checked(void **state)
{
    (void)state;
    struct auth *a = start();
    struct seen s = {0};
    struct auth_job *job;
    for (int i = 0; i < AUTH_BURST; i++) {
        assert_int_equal(check(a, "alice", "guess", here, &s, &job), AUTH_ACCEPTED);
        wait_for(a, &s.calls, i + 1);
        assert_int_equal(s.result, AUTH_REJECTED);
    }
    assert_int_equal(check(a, "alice", "correct horse", here, &s, &job), AUTH_LIMITED);
    /* another address is not held back */
    assert_int_equal(check(a, "alice", "correct horse", there, &s, &job), AUTH_ACCEPTED);
    wait_for(a, &s.calls, AUTH_BURST + 1);
    assert_int_equal(s.result, AUTH_ACCEPTED);
    users_unref(s.users);
    struct auth_stats st;
    auth_get_stats(a, &st);
    assert_int_equal(st.limited, 1);
    auth_free(a);
}

static void a_cancelled_check_calls_nobody(void **state)
{
    (void)state;
    struct auth *a = start();
    struct seen gone = {0}, kept = {0};
    struct auth_job *j1, *j2;
    assert_int_equal(check(a, "alice", "correct horse", here, &gone, &j1), AUTH_ACCEPTED);
    assert_int_equal(check(a, "alice", "correct horse", here, &kept, &j2), AUTH_ACCEPTED);
    auth_cancel(j1);
    assert_null(j1);
    wait_for(a, &kept.calls, 1);
    assert_int_equal(gone.calls, 0);
    users_unref(kept.users);
    /* and checks never collected are dropped with the module */
    assert_int_equal(check(a, "alice", "correct horse", here, &gone, &j1), AUTH_ACCEPTED);
    auth_free(a);
    assert_int_equal(gone.calls, 0);
    assert_null(j1);
}

static void a_reload_serves_the_logins_after_it(void **state)
{
    (void)state;
    struct auth *a = start();
    struct seen s = {0};
    struct auth_job *job;
    assert_int_equal(check(a, "alice", "correct horse", here, &s, &job), AUTH_ACCEPTED);
    wait_for(a, &s.calls, 1);
    struct users *before = s.users;
    write_users("bob " HASH "\n");
    char err[256];
    assert_int_equal(auth_reload(a, err, sizeof(err)), 0);
    assert_int_equal(check(a, "alice", "correct horse", here, &s, &job), AUTH_ACCEPTED);
    wait_for(a, &s.calls, 2);
    assert_int_equal(s.result, AUTH_REJECTED);
    assert_int_equal(check(a, "bob", "correct horse", here, &s, &job), AUTH_ACCEPTED);
    wait_for(a, &s.calls, 3);
    assert_int_equal(s.result, AUTH_ACCEPTED);
    /* the old login keeps the file it logged in with */
    assert_non_null(users_find(before, "alice", 5));
    users_unref(before);
    users_unref(s.users);
    /* a bad file keeps the one in force */
    write_users("bob nothash\n");
    assert_int_equal(auth_reload(a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 1"));
    assert_int_equal(check(a, "bob", "correct horse", here, &s, &job), AUTH_ACCEPTED);
    wait_for(a, &s.calls, 4);
    assert_int_equal(s.result, AUTH_ACCEPTED);
    users_unref(s.users);
    auth_free(a);
    write_users("alice " HASH " publish=x\n");
}

static void a_missing_file_is_said(void **state)
{
    (void)state;
    char err[256];
    assert_null(auth_new("/nonexistent/users", &quiet, seed, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/users"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_right_password_logs_in_and_others_do_not),
        cmocka_unit_test(an_address_that_fails_too_often_is_not_checked),
        cmocka_unit_test(a_cancelled_check_calls_nobody),
        cmocka_unit_test(a_reload_serves_the_logins_after_it),
        cmocka_unit_test(a_missing_file_is_said),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
