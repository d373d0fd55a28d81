/*
 * test_net.c - the egress module (src/net/): the SOCKS5 handshake (RFC 1928, RFC 1929)
 * byte for byte - what we send and how each proxy answer is read, fed whole and one
 * byte at a time; --source and --proxy specs, good and bad; binding a source address;
 * the per-domain pick (sticky, spread, family, rests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/egress.h"
#include "net/socks5.h"

static const struct sockaddr *v4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
    memset(ss, 0, sizeof *ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return (const struct sockaddr *)ss;
}

static void expect_out(const socks5_t *s, const unsigned char *want, size_t n)
{
    size_t len;
    const unsigned char *p = socks5_out(s, &len);
    assert_int_equal(len, n);
    assert_memory_equal(p, want, n);
}

/* Feed the whole answer at once, or byte by byte (MORE until the last byte). */
static socks5_step_t feed(socks5_t *s, const unsigned char *in, size_t n, bool bytewise,
                          size_t *used)
{
    if (!bytewise)
        return socks5_read(s, in, n, used);
    for (size_t k = 1; k <= n; k++) {
        socks5_step_t st = socks5_read(s, in, k, used);
        if (st != SOCKS5_MORE)
            return st;
        assert_int_equal(*used, 0);
    }
    return SOCKS5_MORE;
}

static const unsigned char req_v4[] = {5, 1, 0, 1, 192, 0, 2, 25, 0, 25};
static const unsigned char ok_v4[] = {5, 0, 0, 1, 127, 0, 8, 1, 0x9c, 0x40};

static void test_socks5_no_auth(void **state)
{
    (void)state;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        socks5_t s;
        struct sockaddr_storage ss;
        size_t used;
        assert_int_equal(socks5_init(&s, v4(&ss, "192.0.2.25", 25), NULL, NULL), MP_OK);
        expect_out(&s, (const unsigned char[]){5, 1, 0}, 3);
        assert_int_equal(feed(&s, (const unsigned char[]){5, 0}, 2, bytewise, &used),
                         SOCKS5_WRITE);
        assert_int_equal(used, 2);
        expect_out(&s, req_v4, sizeof req_v4);
        /* the reply and the banner in one segment: the banner is not consumed */
        unsigned char seg[64];
        memcpy(seg, ok_v4, sizeof ok_v4);
        memcpy(seg + sizeof ok_v4, "220 hi\r\n", 8);
        assert_int_equal(feed(&s, seg, bytewise ? sizeof ok_v4 : sizeof ok_v4 + 8, bytewise,
                              &used),
                         SOCKS5_DONE);
        assert_int_equal(used, sizeof ok_v4);
        assert_string_equal(socks5_why(&s), "");
        /* nothing more is read once done */
        assert_int_equal(socks5_read(&s, seg, 1, &used), SOCKS5_FAIL);
        assert_int_equal(used, 0);
    }
}

static void test_socks5_user_pass(void **state)
{
    (void)state;
    socks5_t s;
    struct sockaddr_storage ss;
    size_t used;
    assert_int_equal(socks5_init(&s, v4(&ss, "192.0.2.25", 25), "bob", "s3cr"), MP_OK);
    expect_out(&s, (const unsigned char[]){5, 2, 0, 2}, 4);
    assert_int_equal(socks5_read(&s, (const unsigned char[]){5, 2}, 2, &used), SOCKS5_WRITE);
    expect_out(&s, (const unsigned char[]){1, 3, 'b', 'o', 'b', 4, 's', '3', 'c', 'r'}, 10);
    assert_int_equal(socks5_read(&s, (const unsigned char[]){1, 0}, 2, &used), SOCKS5_WRITE);
    expect_out(&s, req_v4, sizeof req_v4);
    /* a domain-name BND.ADDR (ATYP 3) is read by its length byte */
    const unsigned char dn[] = {5, 0, 0, 3, 4, 'p', 'r', 'x', 'y', 0, 80};
    assert_int_equal(feed(&s, dn, sizeof dn, true, &used), SOCKS5_DONE);
    assert_int_equal(used, sizeof dn);
}

static void test_socks5_ipv6(void **state)
{
    (void)state;
    socks5_t s;
    struct sockaddr_storage ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
    size_t used;
    memset(&ss, 0, sizeof ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(2525);
    inet_pton(AF_INET6, "2001:db8::25", &in6->sin6_addr);
    assert_int_equal(socks5_init(&s, (struct sockaddr *)&ss, NULL, NULL), MP_OK);
    assert_int_equal(socks5_read(&s, (const unsigned char[]){5, 0}, 2, &used), SOCKS5_WRITE);
    unsigned char want[22] = {5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8};
    want[19] = 0x25;
    want[20] = 2525 >> 8;
    want[21] = 2525 & 0xff;
    expect_out(&s, want, 22);
    unsigned char rep[22] = {5, 0, 0, 4};
    assert_int_equal(feed(&s, rep, 22, true, &used), SOCKS5_DONE);
}

/* Every refusal is named; REP 3-6 are about the destination, the rest about the proxy. */
static void test_socks5_refusals(void **state)
{
    (void)state;
    struct {
        const char *user;
        unsigned char a[2], b[2];
        socks5_err_t err;
        bool proxy_fault;
        const char *why;
    } cases[] = {
        {NULL, {5, 0xff}, {0}, SOCKS5_E_NO_METHOD, true, "requires authentication"},
        {"u", {5, 0xff}, {0}, SOCKS5_E_NO_METHOD, true, "accepts none of our methods"},
        {NULL, {5, 2}, {0}, SOCKS5_E_METHOD, true, "did not offer"},
        {NULL, {4, 0}, {0}, SOCKS5_E_VERSION, true, "not a SOCKS5 proxy"},
        {"u", {5, 2}, {1, 1}, SOCKS5_E_AUTH, true, "refused the user name or password"},
        {NULL, {5, 0}, {5, 1}, SOCKS5_E_REP, true, "general SOCKS server failure (REP 1)"},
        {NULL, {5, 0}, {5, 2}, SOCKS5_E_REP, true, "connection not allowed by ruleset (REP 2)"},
        {NULL, {5, 0}, {5, 3}, SOCKS5_E_REP, false, "network unreachable (REP 3)"},
        {NULL, {5, 0}, {5, 4}, SOCKS5_E_REP, false, "host unreachable (REP 4)"},
        {NULL, {5, 0}, {5, 5}, SOCKS5_E_REP, false, "connection refused (REP 5)"},
        {NULL, {5, 0}, {5, 6}, SOCKS5_E_REP, false, "TTL expired (REP 6)"},
        {NULL, {5, 0}, {5, 7}, SOCKS5_E_REP, true, "command not supported (REP 7)"},
        {NULL, {5, 0}, {5, 8}, SOCKS5_E_REP, true, "address type not supported (REP 8)"},
        {NULL, {5, 0}, {5, 9}, SOCKS5_E_REP, true, "unassigned reply code (REP 9)"},
        {NULL, {5, 0}, {'H', 'T'}, SOCKS5_E_VERSION, true, "not a SOCKS5 proxy"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        socks5_t s;
        struct sockaddr_storage ss;
        size_t used;
        assert_int_equal(socks5_init(&s, v4(&ss, "192.0.2.25", 25), cases[i].user,
                                     cases[i].user ? "p" : NULL),
                         MP_OK);
        socks5_step_t st = socks5_read(&s, cases[i].a, 2, &used);
        if (cases[i].b[0] || cases[i].b[1]) {
            assert_int_equal(st, SOCKS5_WRITE);
            st = socks5_read(&s, cases[i].b, 2, &used);
        }
        assert_int_equal(st, SOCKS5_FAIL);
        assert_int_equal(s.err, cases[i].err);
        assert_int_equal(socks5_fault_is_proxy(&s), cases[i].proxy_fault);
        if (!strstr(socks5_why(&s), cases[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, socks5_why(&s), cases[i].why);
        size_t n;
        socks5_out(&s, &n);
        assert_int_equal(n, 0);
    }
    /* a reply with an unknown address type */
    socks5_t s;
    struct sockaddr_storage ss;
    size_t used;
    socks5_init(&s, v4(&ss, "192.0.2.25", 25), NULL, NULL);
    socks5_read(&s, (const unsigned char[]){5, 0}, 2, &used);
    assert_int_equal(socks5_read(&s, (const unsigned char[]){5, 0, 0, 9, 1}, 5, &used),
                     SOCKS5_FAIL);
    assert_int_equal(s.err, SOCKS5_E_ATYP);
}

static void test_socks5_bad_init(void **state)
{
    (void)state;
    socks5_t s;
    struct sockaddr_storage ss;
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    v4(&ss, "192.0.2.1", 25);
    assert_int_equal(socks5_init(&s, (struct sockaddr *)&ss, "u", NULL), MP_ERR_ARG);
    assert_int_equal(socks5_init(&s, (struct sockaddr *)&ss, "", "p"), MP_ERR_ARG);
    assert_int_equal(socks5_init(&s, (struct sockaddr *)&ss, longer, "p"), MP_ERR_ARG);
    longer[255] = '\0';
    assert_int_equal(socks5_init(&s, (struct sockaddr *)&ss, longer, longer), MP_OK);
    expect_out(&s, (const unsigned char[]){5, 2, 0, 2}, 4);
    ss.ss_family = AF_UNIX;
    assert_int_equal(socks5_init(&s, (struct sockaddr *)&ss, NULL, NULL), MP_ERR_ARG);
}

static void test_parse_source(void **state)
{
    (void)state;
    net_egress_t eg;
    char err[256];
    assert_int_equal(net_egress_parse_source("127.0.9.1", &eg, err, sizeof err), MP_OK);
    assert_int_equal(eg.kind, NET_EGRESS_SOURCE);
    assert_int_equal(eg.addr.ss_family, AF_INET);
    assert_string_equal(eg.name, "127.0.9.1");
    assert_string_equal(eg.helo, "");
    assert_int_equal(net_egress_parse_source("127.0.9.2=mx2.lab.test", &eg, err, sizeof err),
                     MP_OK);
    assert_string_equal(eg.helo, "mx2.lab.test");
    assert_int_equal(net_egress_parse_source("[2001:db8::7]=a.test", &eg, err, sizeof err),
                     MP_OK);
    assert_int_equal(eg.addr.ss_family, AF_INET6);
    assert_int_equal(net_egress_parse_source("::1", &eg, err, sizeof err), MP_OK);
    const char *bad[] = {"", "host.example", "300.1.1.1", "127.0.0.1=", "127.0.0.1=a b",
                         "127.0.0.1:25", "[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (net_egress_parse_source(bad[i], &eg, err, sizeof err) != MP_ERR_ARG)
            fail_msg("'%s' was taken", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_parse_proxy(void **state)
{
    (void)state;
    net_egress_t eg;
    char err[256];
    assert_int_equal(net_egress_parse_proxy("socks5://127.0.8.1:1080", &eg, err, sizeof err),
                     MP_OK);
    assert_int_equal(eg.kind, NET_EGRESS_SOCKS5);
    assert_string_equal(eg.name, "socks5://127.0.8.1:1080");
    assert_int_equal(ntohs(((struct sockaddr_in *)&eg.addr)->sin_port), 1080);
    assert_int_equal(
        net_egress_parse_proxy("socks5://bob:p%40ss:w=rd@127.0.8.1:1080=out.lab.test", &eg,
                               err, sizeof err),
        MP_OK);
    assert_string_equal(eg.user, "bob");
    assert_string_equal(eg.pass, "p@ss:w=rd");
    assert_string_equal(eg.helo, "out.lab.test");
    assert_string_equal(eg.name, "socks5://bob@127.0.8.1:1080"); /* no password */
    assert_int_equal(net_egress_parse_proxy("socks5://[::1]:1080", &eg, err, sizeof err),
                     MP_OK);
    assert_int_equal(eg.addr.ss_family, AF_INET6);
    assert_int_equal(net_egress_parse_proxy("socks5://localhost:1080", &eg, err, sizeof err),
                     MP_OK);
    const char *bad[] = {"127.0.8.1:1080", "http://127.0.8.1:1080", "socks5://127.0.8.1",
                         "socks5://127.0.8.1:0", "socks5://127.0.8.1:65536",
                         "socks5://bob@127.0.8.1:1080", "socks5://:p@127.0.8.1:1080",
                         "socks5://bob:%4@127.0.8.1:1080", "socks5://::1:1080",
                         "socks5://127.0.8.1:1080="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (net_egress_parse_proxy(bad[i], &eg, err, sizeof err) != MP_ERR_ARG)
            fail_msg("'%s' was taken", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* a message quotes the spec without its password, on one line */
    const char *secret[] = {"socks5://bob:s3cret@127.0.8.1", "socks5://bob:s3cret@h:1080=a b",
                            "socks5://bob:s3%zzcret@127.0.8.1:1080",
                            "socks5://bob:s3cret\n@127.0.8.1"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        assert_int_equal(net_egress_parse_proxy(secret[i], &eg, err, sizeof err), MP_ERR_ARG);
        assert_null(strstr(err, "s3"));
        assert_null(strchr(err, '\n'));
        assert_non_null(strstr(err, "socks5://bob@"));
    }
}

/* 127.0.0.1 is always ours; 192.0.2.1 (TEST-NET-1) never is. */
static void test_bind_check(void **state)
{
    (void)state;
    net_egress_t eg;
    char err[256];
    net_egress_parse_source("127.0.0.1", &eg, err, sizeof err);
    assert_int_equal(net_egress_check(&eg, err, sizeof err), MP_OK);
    int fd = net_egress_socket(&eg, AF_INET, err, sizeof err);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(net_egress_socket(&eg, AF_INET6, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot reach an IPv6 address"));
    net_egress_parse_source("192.0.2.1", &eg, err, sizeof err);
    assert_int_equal(net_egress_check(&eg, err, sizeof err), MP_ERR_ARG);
    assert_string_equal(err, "cannot send from 192.0.2.1: not an address of this machine");
}

static void test_pool(void **state)
{
    (void)state;
    net_egress_t eg[4];
    char err[128], dom[32];
    net_pool_t p;
    net_egress_parse_source("127.0.9.1", &eg[0], err, sizeof err);
    net_egress_parse_source("127.0.9.2", &eg[1], err, sizeof err);
    net_egress_parse_source("127.0.9.3", &eg[2], err, sizeof err);
    net_egress_parse_source("::1", &eg[3], err, sizeof err);
    net_pool_init(&p, eg, 4);
    unsigned count[4] = {0};
    int first[300];
    for (int i = 0; i < 300; i++) {
        snprintf(dom, sizeof dom, "d%d.test", i);
        first[i] = net_pool_pick(&p, dom, AF_INET, 0);
        assert_true(first[i] >= 0 && first[i] < 3); /* never the IPv6 source for IPv4 */
        assert_int_equal(net_pool_pick(&p, dom, AF_INET, 999), first[i]); /* sticky */
        count[first[i]]++;
        assert_int_equal(net_pool_pick(&p, dom, AF_INET6, 0), 3);
    }
    for (int k = 0; k < 3; k++) /* spread: each gets a fair share (100 expected) */
        assert_true(count[k] > 60 && count[k] < 140);
    /* resting one moves only its domains, and only while it rests */
    assert_int_equal(net_pool_rest(&p, 1, 1000), NET_REST_FIRST_MS);
    for (int i = 0; i < 300; i++) {
        snprintf(dom, sizeof dom, "d%d.test", i);
        int now = net_pool_pick(&p, dom, AF_INET, 2000);
        if (first[i] == 1)
            assert_true(now == 0 || now == 2);
        else
            assert_int_equal(now, first[i]);
        assert_int_equal(net_pool_pick(&p, dom, AF_INET, 1000 + NET_REST_FIRST_MS), first[i]);
    }
    /* consecutive failures double the rest, up to the cap; success resets it */
    assert_int_equal(net_pool_rest(&p, 1, 0), 2 * NET_REST_FIRST_MS);
    assert_int_equal(net_pool_rest(&p, 1, 0), 4 * NET_REST_FIRST_MS);
    for (int i = 0; i < 10; i++)
        net_pool_rest(&p, 1, 0);
    assert_int_equal(net_pool_rest(&p, 1, 0), NET_REST_MAX_MS);
    net_pool_ok(&p, 1);
    assert_int_equal(net_pool_rest(&p, 1, 0), NET_REST_FIRST_MS);
    /* all resting: still the domain's own */
    net_pool_rest(&p, 0, 0);
    net_pool_rest(&p, 2, 0);
    assert_int_equal(net_pool_pick(&p, "d0.test", AF_INET, 1), first[0]);
    net_pool_t empty;
    net_pool_init(&empty, eg, 0);
    assert_int_equal(net_pool_pick(&empty, "d0.test", AF_INET, 0), -1);
    net_pool_init(&empty, eg, 3);
    assert_int_equal(net_pool_pick(&empty, "d0.test", AF_INET6, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socks5_no_auth),   cmocka_unit_test(test_socks5_user_pass),
        cmocka_unit_test(test_socks5_ipv6),      cmocka_unit_test(test_socks5_refusals),
        cmocka_unit_test(test_socks5_bad_init),  cmocka_unit_test(test_parse_source),
        cmocka_unit_test(test_parse_proxy),      cmocka_unit_test(test_bind_check),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
