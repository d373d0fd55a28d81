/*
 * test_doctor.c - unit tests of the doctor's pure parts: HELO name judgement, DNSBL answer
 * reading and question names, the client address a server echoes in its EHLO reply
 * (judge.c), and the levels report.c gives to a run's findings (a run state built here,
 * no DNS, no socket).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "doctor/doctor.h"
#include "doctor/doctor_int.h"
#include "util/str.h"

static doc_level_t helo(const char *name, char *why)
{
    char fix[512];
    doc_level_t l = doc_helo_judge(name, why, 512, fix, sizeof fix);
    if (l != DOC_OK)
        assert_true(fix[0] != '\0');   /* every problem says what to do */
    return l;
}

static void test_helo_judge(void **state)
{
    (void)state;
    char why[512];
    assert_int_equal(helo("mail.example.org", why), DOC_OK);
    assert_int_equal(helo("mail.example.org.", why), DOC_OK);
    assert_int_equal(helo("probe-1.lab.test", why), DOC_OK);
    assert_int_equal(helo("", why), DOC_FAIL);
    assert_int_equal(helo(NULL, why), DOC_FAIL);
    assert_int_equal(helo("localhost", why), DOC_FAIL);
    assert_int_equal(helo("LocalHost.localdomain", why), DOC_FAIL);
    assert_int_equal(helo("myhost", why), DOC_FAIL);
    assert_non_null(strstr(why, "not fully qualified"));
    assert_int_equal(helo("192.0.2.7", why), DOC_FAIL);   /* last label all digits */
    assert_int_equal(helo("bad_name..example.org", why), DOC_FAIL);
    assert_int_equal(helo("-x.example.org", why), DOC_FAIL);
    assert_int_equal(helo("x-.example.org", why), DOC_FAIL);
    assert_int_equal(helo("a b.example.org", why), DOC_FAIL);
    assert_int_equal(helo("[192.0.2.7]", why), DOC_WARN);
    assert_int_equal(helo("mx.google.com", why), DOC_FAIL);
    assert_non_null(strstr(why, "large provider"));
    assert_int_equal(helo("GMAIL.COM", why), DOC_FAIL);
    assert_int_equal(helo("notgmail.com", why), DOC_OK);
    assert_true(doc_name_is_provider("mail.protection.outlook.com"));
    assert_false(doc_name_is_provider("outlook.com.example.org"));
}

static void test_dnsbl_read(void **state)
{
    (void)state;
    char m[512];
    const char *pbl[] = { "127.0.0.11" };
    assert_int_equal(doc_dnsbl_read("zen.spamhaus.org", pbl, 1, m, sizeof m), DOC_BL_LISTED);
    assert_non_null(strstr(m, "PBL"));
    assert_non_null(strstr(m, "should not send mail directly"));
    const char *two[] = { "127.0.0.2", "127.0.0.4" };
    assert_int_equal(doc_dnsbl_read("zen.dnsbl.test", two, 2, m, sizeof m), DOC_BL_LISTED);
    assert_non_null(strstr(m, "SBL"));
    assert_non_null(strstr(m, "XBL"));
    const char *plain[] = { "127.0.0.2" };
    assert_int_equal(doc_dnsbl_read("bl.spamcop.net", plain, 1, m, sizeof m), DOC_BL_LISTED);
    assert_string_equal(m, "127.0.0.2");
    assert_int_equal(doc_dnsbl_read("bl.spamcop.net", NULL, 0, m, sizeof m), DOC_BL_CLEAN);
    const char *refused[] = { "127.255.255.254" };
    assert_int_equal(doc_dnsbl_read("zen.spamhaus.org", refused, 1, m, sizeof m),
                     DOC_BL_REFUSED);
    assert_non_null(strstr(m, "not a listing"));
    const char *mixed[] = { "127.0.0.2", "127.255.255.255" };
    assert_int_equal(doc_dnsbl_read("zen.spamhaus.org", mixed, 2, m, sizeof m), DOC_BL_REFUSED);
    const char *bogus[] = { "198.51.100.1" };   /* an ISP resolver's "search page" address */
    assert_int_equal(doc_dnsbl_read("zen.spamhaus.org", bogus, 1, m, sizeof m), DOC_BL_BOGUS);
}

static void test_dnsbl_name(void **state)
{
    (void)state;
    char n[300];
    assert_true(doc_dnsbl_name("192.0.2.7", "zen.spamhaus.org", n, sizeof n));
    assert_string_equal(n, "7.2.0.192.zen.spamhaus.org");
    assert_true(doc_dnsbl_name("2001:db8::1", "zen.spamhaus.org", n, sizeof n));
    assert_string_equal(n, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
                           "zen.spamhaus.org");
    assert_false(doc_dnsbl_name("not-an-ip", "zen.spamhaus.org", n, sizeof n));
    assert_false(doc_dnsbl_name("192.0.2.7", "zen.spamhaus.org", n, 10));
}

static void test_echoed_addr(void **state)
{
    (void)state;
    char a[64];
    assert_true(doc_echoed_addr("mx.exim.test Hello probe.lab.test [127.0.7.10]\nSIZE 52428800",
                                a, sizeof a));
    assert_string_equal(a, "127.0.7.10");
    assert_true(doc_echoed_addr("mx.google.com at your service, [192.0.2.7]", a, sizeof a));
    assert_string_equal(a, "192.0.2.7");
    assert_true(doc_echoed_addr("mx Hello x [IPv6:2001:db8::1]", a, sizeof a));
    assert_string_equal(a, "2001:db8::1");
    /* a bracketed word that is not an address is skipped */
    assert_true(doc_echoed_addr("mx [ESMTP] Hello [192.0.2.9]", a, sizeof a));
    assert_string_equal(a, "192.0.2.9");
    assert_false(doc_echoed_addr("mx.postfix.test\nPIPELINING\nSIZE 10240000", a, sizeof a));
    assert_false(doc_echoed_addr("unclosed [192.0.2.1", a, sizeof a));
    assert_string_equal(doc_level_name(DOC_FAIL), "FAIL");
}

/* ---- report.c: findings -> levels, without DNS or sockets ------------------------------ */

/* A run whose every finding is good: egress 192.0.2.7, PTR and HELO mail.example.org,
 * SPF pass, one list clean, one reference MX reachable, MAIL FROM with MX and SPF pass. */
static doc_run_t *run_good(void)
{
    doc_run_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->o.helo = "mail.example.org";
    mp_strlcpy(r->rep.helo, "mail.example.org", sizeof r->rep.helo);
    mp_strlcpy(r->rep.from, "verify@example.org", sizeof r->rep.from);
    mp_strlcpy(r->rep.local_addr, "192.0.2.7", sizeof r->rep.local_addr);
    mp_strlcpy(r->rep.public_addr, "192.0.2.7", sizeof r->rep.public_addr);
    mp_strlcpy(r->rep.egress, "192.0.2.7", sizeof r->rep.egress);
    mp_strlcpy(r->rep.ptr, "mail.example.org", sizeof r->rep.ptr);
    r->nptr = 1;
    mp_strlcpy(r->ptr_names[0], "mail.example.org", sizeof r->ptr_names[0]);
    r->ptr_ok[0] = true;
    mp_strlcpy(r->helo_addrs, "192.0.2.7", sizeof r->helo_addrs);
    r->helo_match = true;
    r->spf_helo.out.result = SPF_PASS;
    r->spf_from.out.result = SPF_PASS;
    r->from_mx_st = DNS_OK;
    mp_strlcpy(r->from_mx, "10 mx.example.org", sizeof r->from_mx);
    r->o.ndnsbl = 1;
    mp_strlcpy(r->bl[0].zone, "zen.spamhaus.org", sizeof r->bl[0].zone);
    r->bl[0].st2 = DNS_OK;
    r->bl[0].n2 = 1;
    mp_strlcpy(r->bl[0].a2[0], "127.0.0.2", sizeof r->bl[0].a2[0]);
    r->bl[0].st1 = r->bl[0].st = DNS_NXDOMAIN;
    r->o.nreference_mx = 1;
    mp_strlcpy(r->ref[0].host, "mx.example.net", sizeof r->ref[0].host);
    r->ref[0].port = 25;
    mp_strlcpy(r->ref[0].ip4, "198.51.100.25", sizeof r->ref[0].ip4);
    r->ref[0].c4 = C_OK;
    return r;
}

static doc_level_t level(doc_run_t *r, doc_check_id_t id)
{
    memset(r->rep.check, 0, sizeof r->rep.check);
    doc_report_build(r);
    return r->rep.check[id].level;
}

static void test_report_good_then_broken(void **state)
{
    (void)state;
    doc_run_t *r = run_good();
    doc_report_build(r);
    for (int i = 0; i < DOC_NCHECKS; i++)
        if (i != DOC_EHLO)   /* no conversation in this run: FAIL, see below */
            assert_int_equal(r->rep.check[i].level, DOC_OK);
    assert_int_equal(r->rep.check[DOC_EHLO].level, DOC_FAIL);
    assert_int_equal(r->rep.worst, DOC_FAIL);

    /* reverse DNS: confirmed but another HELO -> warn; unconfirmed -> FAIL; none -> FAIL */
    mp_strlcpy(r->rep.helo, "other.example.org", sizeof r->rep.helo);
    assert_int_equal(level(r, DOC_RDNS), DOC_WARN);
    assert_non_null(strstr(r->rep.check[DOC_RDNS].fix, "--helo mail.example.org"));
    r->rep.ptr[0] = '\0';
    assert_int_equal(level(r, DOC_RDNS), DOC_FAIL);
    r->nptr = 0;
    r->ptr_st = DNS_NXDOMAIN;
    assert_int_equal(level(r, DOC_RDNS), DOC_FAIL);
    r->ptr_st = DNS_TIMEOUT;
    assert_int_equal(level(r, DOC_RDNS), DOC_WARN);
    r->rep.egress[0] = '\0';
    assert_int_equal(level(r, DOC_RDNS), DOC_WARN);
    free(r);

    /* HELO: elsewhere -> warn; no address -> FAIL; SPF softfail -> warn, fail -> FAIL */
    r = run_good();
    r->helo_match = false;
    assert_int_equal(level(r, DOC_HELO), DOC_WARN);
    r->helo_addrs[0] = '\0';
    assert_int_equal(level(r, DOC_HELO), DOC_FAIL);
    free(r);
    r = run_good();
    r->spf_helo.out.result = SPF_SOFTFAIL;
    assert_int_equal(level(r, DOC_HELO), DOC_WARN);
    r->spf_helo.out.result = SPF_NONE;
    assert_int_equal(level(r, DOC_HELO), DOC_WARN);
    assert_non_null(strstr(r->rep.check[DOC_HELO].fix, "v=spf1 a -all"));
    r->spf_helo.out.result = SPF_PERMERROR;
    assert_int_equal(level(r, DOC_HELO), DOC_FAIL);
    free(r);

    /* MAIL FROM: null MX, no MX but A, nothing, null sender */
    r = run_good();
    r->from_null_mx = true;
    assert_int_equal(level(r, DOC_MAIL_FROM), DOC_FAIL);
    r->from_null_mx = false;
    r->from_mx_st = DNS_NODATA;
    r->from_a_st = DNS_OK;
    assert_int_equal(level(r, DOC_MAIL_FROM), DOC_WARN);
    r->from_a_st = DNS_NODATA;
    assert_int_equal(level(r, DOC_MAIL_FROM), DOC_FAIL);
    r->rep.from[0] = '\0';
    assert_int_equal(level(r, DOC_MAIL_FROM), DOC_SKIP);
    assert_int_equal(r->rep.check[DOC_CONFIG].level, DOC_WARN);   /* the null sender */
    free(r);
}

static void test_report_dnsbl_and_port25(void **state)
{
    (void)state;
    doc_run_t *r = run_good();
    bl_t *b = &r->bl[0];
    /* listed with a PBL code: FAIL, and the fix says why removal does not help */
    b->st = DNS_OK;
    b->n = 1;
    mp_strlcpy(b->a[0], "127.0.0.10", sizeof b->a[0]);
    assert_int_equal(level(r, DOC_DNSBL), DOC_FAIL);
    assert_non_null(strstr(r->rep.check[DOC_DNSBL].fix, "PBL"));
    /* the test entry answers 127.255.255.254: refused, a warning, not a listing */
    mp_strlcpy(b->a2[0], "127.255.255.254", sizeof b->a2[0]);
    assert_int_equal(level(r, DOC_DNSBL), DOC_WARN);
    assert_non_null(strstr(r->rep.check[DOC_DNSBL].details[0], "refused via this resolver"));
    /* 127.0.0.1 listed: the resolver answers everything */
    mp_strlcpy(b->a2[0], "127.0.0.2", sizeof b->a2[0]);
    b->st1 = DNS_OK;
    b->n1 = 1;
    mp_strlcpy(b->a1[0], "127.0.0.2", sizeof b->a1[0]);
    assert_int_equal(level(r, DOC_DNSBL), DOC_WARN);
    /* the test entry missing */
    b->st2 = DNS_NXDOMAIN;
    b->n2 = 0;
    assert_int_equal(level(r, DOC_DNSBL), DOC_WARN);
    free(r);

    r = run_good();
    ref_t *ref = &r->ref[0];
    mp_strlcpy(ref->ip6, "2001:db8::25", sizeof ref->ip6);
    ref->c6 = C_UNREACHABLE;   /* no IPv6 route: not held against port 25 */
    assert_int_equal(level(r, DOC_PORT25), DOC_OK);
    ref->c6 = C_TIMEOUT;       /* IPv6 filtered while IPv4 works: a warning */
    assert_int_equal(level(r, DOC_PORT25), DOC_WARN);
    ref->c4 = C_TIMEOUT;
    assert_int_equal(level(r, DOC_PORT25), DOC_FAIL);
    assert_non_null(strstr(r->rep.check[DOC_PORT25].fix, "filtered"));
    assert_non_null(strstr(r->rep.check[DOC_PORT25].fix, "587/465"));
    ref->c4 = ref->c6 = C_REFUSED;
    assert_int_equal(level(r, DOC_PORT25), DOC_FAIL);
    assert_non_null(strstr(r->rep.check[DOC_PORT25].message, "2 refused"));
    r->o.quick = true;          /* quick mode: 3, 6, 7, 8 not judged */
    for (int i = 0; i < DOC_NCHECKS; i++)
        r->rep.check[i].level = DOC_SKIP;
    doc_report_build(r);
    assert_int_equal(r->rep.check[DOC_PORT25].level, DOC_SKIP);
    assert_int_equal(r->rep.worst, DOC_OK);
    free(r);
}

/* Through a proxy: check 2 is the proxy (each RFC 1928/1929 failure named, with its fix),
 * 3 and 8 are skipped when it failed, and an unknown public address is a warning. */
static doc_run_t *run_proxy(conn_t *k, const char *user)
{
    doc_run_t *r = run_good();
    r->has_proxy = true;
    r->proxy.kind = NET_EGRESS_SOCKS5;
    mp_strlcpy(r->proxy.user, user, sizeof r->proxy.user);
    mp_strlcpy(r->proxy.name, "socks5://u@192.0.2.80:1080", sizeof r->proxy.name);
    memset(k, 0, sizeof *k);
    k->run = r;
    k->kind = K_PORT;
    k->ref = &r->ref[0];
    k->via_proxy = true;
    r->conns[0] = k;
    r->nconns = 1;
    return r;
}

static void proxy_fails(conn_t *k, bool up, socks5_err_t err, const char *why)
{
    k->proxy_up = up;
    k->socks.state = up ? SOCKS5_ST_FAILED : SOCKS5_ST_METHOD;
    k->socks.err = err;
    k->res = k->ref->c4 = C_PROXY;
    mp_strlcpy(k->err, why, sizeof k->err);
}

static void test_report_proxy(void **state)
{
    (void)state;
    conn_t k;
    doc_run_t *r = run_proxy(&k, "u");
    k.proxy_up = k.tunnel = true;
    k.res = C_OK;
    doc_report_build(r);
    assert_int_equal(r->rep.check[DOC_EGRESS].level, DOC_OK);
    assert_non_null(strstr(r->rep.check[DOC_EGRESS].message, "authentication (RFC 1929) ok"));
    assert_non_null(strstr(r->rep.check[DOC_PORT25].message, "reachable through the proxy"));
    /* no echo: the public address is unknown, the checks that need it warn */
    r->rep.public_addr[0] = r->rep.egress[0] = '\0';
    assert_int_equal(level(r, DOC_EGRESS), DOC_WARN);
    for (int i = DOC_RDNS; i <= DOC_MAIL_FROM; i++)
        if (i != DOC_HELO)
            assert_int_equal(r->rep.check[i].level, DOC_WARN);
    assert_int_equal(r->rep.check[DOC_HELO].level, DOC_WARN);   /* it resolves */
    /* the proxy refused port 25 by rule: the proxy works, port 25 FAIL with its fix */
    k.tunnel = false;
    k.socks.state = SOCKS5_ST_FAILED;
    k.socks.err = SOCKS5_E_REP;
    k.socks.rep = 2;
    k.res = r->ref[0].c4 = C_DENIED;
    assert_int_equal(level(r, DOC_PORT25), DOC_FAIL);
    assert_int_equal(r->rep.check[DOC_EGRESS].level, DOC_WARN);
    assert_non_null(strstr(r->rep.check[DOC_PORT25].message, "1 refused by the proxy"));
    assert_non_null(strstr(r->rep.check[DOC_PORT25].fix, "allow port 25"));
    free(r);

    static const struct {
        bool up;
        socks5_err_t err;
        const char *user, *fix;
    } cases[] = {
        { false, SOCKS5_E_NONE, "u", "start it, or correct HOST:PORT" },
        { true, SOCKS5_E_AUTH, "u", "correct USER:PASS" },
        { true, SOCKS5_E_NO_METHOD, "", "socks5://USER:PASS@HOST:PORT (RFC 1929)" },
        { true, SOCKS5_E_NO_METHOD, "u", "method X'FF'" },
        { true, SOCKS5_E_VERSION, "u", "RFC 1928 version 5" },
        { true, SOCKS5_E_METHOD, "u", "did not offer" },
        { true, SOCKS5_E_NONE, "u", "does not complete the SOCKS5 handshake" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = run_proxy(&k, cases[i].user);
        proxy_fails(&k, cases[i].up, cases[i].err, "why");
        r->rep.public_addr[0] = r->rep.egress[0] = '\0';
        assert_int_equal(level(r, DOC_EGRESS), DOC_FAIL);
        assert_non_null(
            strstr(r->rep.check[DOC_EGRESS].message, "socks5://u@192.0.2.80:1080: why"));
        assert_non_null(strstr(r->rep.check[DOC_EGRESS].fix, cases[i].fix));
        assert_int_equal(r->rep.check[DOC_PORT25].level, DOC_SKIP);
        assert_int_equal(r->rep.check[DOC_EHLO].level, DOC_SKIP);
        assert_int_equal(r->rep.worst, DOC_FAIL);
        if (cases[i].err == SOCKS5_E_AUTH)
            assert_non_null(strstr(r->rep.check[DOC_EGRESS].message, "RFC 1929"));
        free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helo_judge),
        cmocka_unit_test(test_dnsbl_read),
        cmocka_unit_test(test_dnsbl_name),
        cmocka_unit_test(test_echoed_addr),
        cmocka_unit_test(test_report_good_then_broken),
        cmocka_unit_test(test_report_dnsbl_and_port25),
        cmocka_unit_test(test_report_proxy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
