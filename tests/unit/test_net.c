#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
    /* the longest text an address and port print as fits NET_ADDR_LEN whole */
    in6.sin6_port = htons(65535);
    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &in6.sin6_addr);
    net_format_addr((struct sockaddr *)&in6, out, sizeof(out));
    assert_string_equal(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    inet_pton(AF_INET6, "::ffff:255.255.255.255", &in6.sin6_addr);
    net_format_addr((struct sockaddr *)&in6, out, sizeof(out));
    assert_string_equal(out, "[::ffff:255.255.255.255]:65535");
    struct sockaddr other = {.sa_family = AF_UNIX};
    net_format_addr(&other, out, sizeof(out));
    assert_string_equal(out, "unknown");
}

static size_t key_of(int family, const char *text, unsigned port, unsigned char *key)
{
    struct sockaddr_storage ss = {0};
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    }
    return net_peer_key((struct sockaddr *)&ss, key);
}

static void a_peer_key_is_the_address_without_the_port(void **state)
{
    (void)state;
    unsigned char a[NET_PEER_KEY_LEN], b[NET_PEER_KEY_LEN];
    size_t la = key_of(AF_INET, "10.1.2.3", 1000, a), lb = key_of(AF_INET, "10.1.2.3", 2000, b);
    assert_int_equal(la, 5);
    assert_memory_equal(a, b, la);
    assert_int_equal(lb, la);
    lb = key_of(AF_INET, "10.1.2.4", 1000, b);
    assert_memory_not_equal(a, b, la);
    lb = key_of(AF_INET6, "::ffff:10.1.2.3", 3000, b); /* the same host, mapped */
    assert_int_equal(lb, la);
    assert_memory_equal(a, b, la);
    la = key_of(AF_INET6, "2001:db8::1", 1, a);
    assert_int_equal(la, 17);
    lb = key_of(AF_INET6, "2001:db8::2", 1, b);
    assert_memory_not_equal(a, b, la);
    struct sockaddr unknown = {.sa_family = AF_UNIX};
    assert_int_equal(net_peer_key(&unknown, a), 0);
}

static int get_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static void keepalive_probes_and_the_user_timeout_agree(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(net_keepalive(fd, 300), 0);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 300);
    assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 100);
    assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
    assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 600000);
    assert_int_equal(net_keepalive(fd, 2), 0); /* short: probes every second */
    assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 1);
    assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 5000);
    assert_int_equal(net_keepalive(fd, 0), 0);
    assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bare_port_means_the_default_host),
        cmocka_unit_test(ipv4_and_bracketed_ipv6_addresses),
        cmocka_unit_test(anything_else_is_refused),
        cmocka_unit_test(a_host_that_does_not_fit_is_refused),
        cmocka_unit_test(addresses_print_with_their_port),
        cmocka_unit_test(a_peer_key_is_the_address_without_the_port),
        cmocka_unit_test(keepalive_probes_and_the_user_timeout_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
