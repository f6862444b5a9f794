#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "mqd/alloc.h"
#include "mqd/users.h"

#define HASH                                                                                       \
    "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M"

static struct users *parse(const char *text, char *err)
{
    return users_parse(text, strlen(text), err, 200);
}

static bool may(const struct user *u, enum users_right r, const char *topic)
{
    return user_may(u, r, topic, strlen(topic));
}

static void rights_follow_exact_topics_and_prefixes(void **state)
{
    (void)state;
    char err[200];
    struct users *us = parse("# the users\n"
                             "\n"
                             "alice " HASH " publish=orders.*,logs subscribe=*\n"
                             "  bob\t" HASH "\tsubscribe=orders.eu.*,news   \r\n"
                             "carol " HASH "\n",
                             err);
    assert_non_null(us);
    assert_int_equal(users_count(us), 3);
    const struct user *alice = users_find(us, "alice", 5);
    const struct user *bob = users_find(us, "bob", 3);
    const struct user *carol = users_find(us, "carol", 5);
    assert_non_null(alice);
    assert_non_null(bob);
    assert_non_null(carol);
    assert_null(users_find(us, "alic", 4));
    assert_null(users_find(us, "alicee", 6));
    assert_string_equal(user_name(bob), "bob");
    assert_int_equal(user_passwd(alice)->iterations, 1000);
    assert_ptr_equal(users_stand_in(us), user_passwd(alice));

    assert_true(may(alice, USERS_PUBLISH, "orders."));
    assert_true(may(alice, USERS_PUBLISH, "orders.eu.1"));
    assert_true(may(alice, USERS_PUBLISH, "logs"));
    assert_false(may(alice, USERS_PUBLISH, "orders"));
    assert_false(may(alice, USERS_PUBLISH, "logs2"));
    assert_false(may(alice, USERS_PUBLISH, "log"));
    assert_false(may(alice, USERS_PUBLISH, ""));
    assert_true(may(alice, USERS_SUBSCRIBE, ""));
    assert_true(may(alice, USERS_SUBSCRIBE, "anything at all"));

    assert_false(may(bob, USERS_PUBLISH, "news"));
    assert_true(may(bob, USERS_SUBSCRIBE, "news"));
    assert_true(may(bob, USERS_SUBSCRIBE, "orders.eu.7"));
    assert_false(may(bob, USERS_SUBSCRIBE, "orders.us.7"));
    assert_false(may(bob, USERS_SUBSCRIBE, "news\r"));

    assert_false(may(carol, USERS_PUBLISH, "logs")); /* a right left out is not granted */
    assert_false(may(carol, USERS_SUBSCRIBE, ""));
    users_unref(us);
}

static void a_backslash_makes_the_next_byte_plain(void **state)
{
    (void)state;
    char err[200];
    struct users *us = parse("u " HASH " publish=a\\ b,c\\,d,e\\*,f\\\\,g\\*h*\n", err);
    assert_non_null(us);
    const struct user *u = users_find(us, "u", 1);
    assert_true(may(u, USERS_PUBLISH, "a b"));
    assert_true(may(u, USERS_PUBLISH, "c,d"));
    assert_false(may(u, USERS_PUBLISH, "c"));
    assert_true(may(u, USERS_PUBLISH, "e*"));
    assert_false(may(u, USERS_PUBLISH, "e*x")); /* an escaped star is no prefix */
    assert_true(may(u, USERS_PUBLISH, "f\\"));
    assert_true(may(u, USERS_PUBLISH, "g*h"));
    assert_true(may(u, USERS_PUBLISH, "g*hij"));
    assert_false(may(u, USERS_PUBLISH, "gxh"));
    users_unref(us);
}

static void each_bad_line_is_named(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"alice\n", "line 1: no password hash after the name"},
        {"# c\nalice notahash\n", "line 2: not a password hash"},
        {"a " HASH "\na " HASH "\n", "line 2: a user named twice"},
        {"a " HASH " publish=x publish=y\n", "line 1: a right given twice"},
        {"a " HASH " read=x\n", "line 1: expected publish=PATTERNS or subscribe=PATTERNS"},
        {"a " HASH " publish=\n", "line 1: an empty pattern"},
        {"a " HASH " publish=x,,y\n", "line 1: an empty pattern"},
        {"a " HASH " publish=x,\n", "line 1: an empty pattern"},
        {"a " HASH " publish=a*b\n", "line 1: '*' may only end a pattern"},
        {"a " HASH " publish=**\n", "line 1: '*' may only end a pattern"},
        {"a " HASH " publish=x\\\n", "line 1: a pattern ends in a lone backslash"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[200] = "";
        struct users *us = parse(bad[i].text, err);
        if (us)
            fail_msg("accepted: %s", bad[i].text);
        if (strncmp(err, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("%s: said \"%s\", not \"%s\"", bad[i].text, err, bad[i].why);
    }
}

static void an_empty_file_has_no_users(void **state)
{
    (void)state;
    char err[200];
    struct users *us = parse("# nobody yet\n\n   \n", err);
    assert_non_null(us);
    assert_int_equal(users_count(us), 0);
    assert_null(users_find(us, "", 0));
    assert_int_equal(users_stand_in(us)->kind, PASSWD_PBKDF2_SHA256); /* still a real cost */
    assert_int_equal(users_stand_in(us)->iterations, PASSWD_DEFAULT_ITERATIONS);
    users_unref(us);
}

static void the_stand_in_is_the_costliest_line(void **state)
{
    (void)state;
    char err[200];
    struct users *us = parse("cheap " HASH "\n"
                             "dear $pbkdf2-sha256$i=600000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76"
                             "szThf5ehfyBz991ay6PT8Srwk4M\n"
                             "mid $pbkdf2-sha256$i=2001$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76"
                             "szThf5ehfyBz991ay6PT8Srwk4M\n",
                             err);
    assert_non_null(us);
    assert_ptr_equal(users_stand_in(us), user_passwd(users_find(us, "dear", 4)));
    assert_true(users_costs_differ(us));
    users_unref(us);
    /* within twice of each other: alike */
    us = parse("a " HASH "\n"
               "b $pbkdf2-sha256$i=2000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991"
               "ay6PT8Srwk4M\n",
               err);
    assert_false(users_costs_differ(us));
    assert_ptr_equal(users_stand_in(us), user_passwd(users_find(us, "b", 1)));
    users_unref(us);
}

static void references_keep_the_users_alive(void **state)
{
    (void)state;
    char err[200];
    size_t before = mqd_allocated();
    struct users *us = parse("a " HASH " publish=x\n", err);
    const struct user *a = users_find(us, "a", 1);
    assert_ptr_equal(users_ref(us), us);
    users_unref(us);
    assert_true(may(a, USERS_PUBLISH, "x")); /* still held once */
    users_unref(us);
    assert_int_equal(mqd_allocated(), before);
}

static void every_allocation_failing_is_reported(void **state)
{
    (void)state;
    const char *text = "a " HASH " publish=x,y*,z subscribe=*\nb " HASH " subscribe=q\n";
    size_t before = mqd_allocated();
    for (size_t n = 0;; n++) {
        char err[200] = "";
        fail_alloc_after(n);
        struct users *us = users_parse(text, strlen(text), err, sizeof(err));
        bool tripped = fail_alloc_tripped();
        fail_alloc_reset();
        if (!tripped) {
            assert_non_null(us);
            assert_int_equal(users_count(us), 2);
            users_unref(us);
            break;
        }
        assert_null(us);
        assert_non_null(strstr(err, "out of memory"));
        assert_int_equal(mqd_allocated(), before);
    }
}

static void a_file_is_read_from_disk(void **state)
{
    (void)state;
    char path[] = "/tmp/mqd-users-XXXXXX", err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "a " HASH " publish=x\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct users *us = users_load(path, err, sizeof(err));
    assert_non_null(us);
    assert_non_null(users_find(us, "a", 1));
    users_unref(us);
    unlink(path);
    assert_null(users_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read users file"));
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rights_follow_exact_topics_and_prefixes),
        cmocka_unit_test(a_backslash_makes_the_next_byte_plain),
        cmocka_unit_test(each_bad_line_is_named),
        cmocka_unit_test(an_empty_file_has_no_users),
        cmocka_unit_test(the_stand_in_is_the_costliest_line),
        cmocka_unit_test(references_keep_the_users_alive),
        cmocka_unit_test(every_allocation_failing_is_reported),
        cmocka_unit_test(a_file_is_read_from_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
