#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "mqd/net.h"

static void assert_endpoint(const char *text, const char *host, unsigned port)
{
    struct net_endpoint e;
    assert_int_equal(net_parse_endpoint(text, "127.0.0.1", &e), 0);
    assert_string_equal(e.host, host);
    assert_int_equal(e.port, port);
}

static void assert_refused(const char *text)
{
    struct net_endpoint e;
    if (net_parse_endpoint(text, "127.0.0.1", &e) != -1)
        fail_msg("'%s' was taken for an endpoint", text);
}

static void a_bare_port_means_the_default_host(void **state)
{
    (void)state;
    assert_endpoint("9100", "127.0.0.1", 9100);
    assert_endpoint("0", "127.0.0.1", 0);
    assert_endpoint("65535", "127.0.0.1", 65535);
    assert_endpoint("00080", "127.0.0.1", 80);
}

static void ipv4_and_bracketed_ipv6_addresses(void **state)
{
    (void)state;
    assert_endpoint("0.0.0.0:9100", "0.0.0.0", 9100);
    assert_endpoint("127.0.0.2:1", "127.0.0.2", 1);
    assert_endpoint("[::1]:9100", "::1", 9100);
    assert_endpoint("[::]:0", "::", 0);
    assert_endpoint("[2001:db8::ff00:42:8329]:80", "2001:db8::ff00:42:8329", 80);
    assert_endpoint("[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80);
}

static void anything_else_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "abc",
        "65536",
        "99999999999999999999",
        "-1",
        "+80",
        " 80",
        "80 ",
        "0x50",
        ":9100",
        "1.2.3.4:",
        "1.2.3.4",
        "1.2.3:80",
        "1.2.3.4.5:80",
        "256.0.0.1:80",
        "::1:9100",
        "[::1]",
        "[::1]9100",
        "[::1]:",
        "[]:80",
        "[1.2.3.4]:80",
        "[::1:80",
        "localhost:80",
        "[::1]:65536",
        "1.2.3.4:80:80",
        "[::1]:80x",
        "[fe80::1%lo]:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused(bad[i]);
}

static void a_host_that_does_not_fit_is_refused(void **state)
{
    (void)state;
    char text[128] = "[";
    memset(text + 1, '1', 80);
    strcat(text, "]:80");
    assert_refused(text);
}

static void addresses_print_with_their_port(void **state)
{
    (void)state;
    char out[NET_ADDR_LEN];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(7000)};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    net_format_addr((struct sockaddr *)&in, out, sizeof(out));
    assert_string_equal(out, "127.0.0.1:7000");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(9100)};
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    net_format_addr((struct sockaddr *)&in6, out, sizeof(out));
    assert_string_equal(out, "[::1]:9100");
    struct sockaddr other = {.sa_family = AF_UNIX};
    net_format_addr(&other, out, sizeof(out));
    assert_string_equal(out, "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bare_port_means_the_default_host),
        cmocka_unit_test(ipv4_and_bracketed_ipv6_addresses),
        cmocka_unit_test(anything_else_is_refused),
        cmocka_unit_test(a_host_that_does_not_fit_is_refused),
        cmocka_unit_test(addresses_print_with_their_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
