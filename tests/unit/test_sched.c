/* test_sched.c - engine pieces that need no network: unroutable addresses, offline and
 * invalid-syntax checks through the real event loop; and one shared session against the
 * scripted server on 127.0.0.1 (tests/smtp/smtpd_script.h), reached through address
 * literals so that no DNS is needed. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "../smtp/smtpd_script.h"
#include "sched/conncache.h"
#include "sched/engine.h"
#include "sched/facts.h"
#include "sched/lease.h"
#include "sched/window.h"
#include "util/clock.h"

static bool unroutable(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
        s6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return engine_addr_unroutable((struct sockaddr *)&ss);
}

/* The catch-all fact as the fleet stores it in Redis (sched/lease.h): what one process
 * writes another reads back; tabs and line ends of the reply text cannot break the
 * fields; anything else found under the key is refused, not half-read. */
static void test_lease_fact_text(void **state)
{
    (void)state;
    facts_domain_t f, g;
    memset(&f, 0, sizeof f);
    f.catch_all = true;
    snprintf(f.mx_host, sizeof f.mx_host, "%s", "mx.example.org");
    snprintf(f.probe_rcpt, sizeof f.probe_rcpt, "%s", "x7k2q9m4p1z8c3v6b5n0@example.org");
    f.probe_code = 250;
    snprintf(f.probe_enh, sizeof f.probe_enh, "%s", "2.1.5");
    snprintf(f.probe_text, sizeof f.probe_text, "%s", "Ok\tfine\r\nreally");
    char buf[LEASE_FACT_MAX];
    size_t n = lease_fact_encode(&f, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(strlen(buf), n);
    assert_null(memchr(buf, '\n', n));
    assert_true(lease_fact_decode(buf, n, &g));
    assert_true(g.catch_all);
    assert_string_equal(g.mx_host, "mx.example.org");
    assert_string_equal(g.probe_rcpt, f.probe_rcpt);
    assert_int_equal(g.probe_code, 250);
    assert_string_equal(g.probe_enh, "2.1.5");
    assert_string_equal(g.probe_text, "Ok fine  really");
    /* not catch-all, empty fields */
    memset(&f, 0, sizeof f);
    f.probe_code = 550;
    n = lease_fact_encode(&f, buf, sizeof buf);
    assert_true(lease_fact_decode(buf, n, &g));
    assert_false(g.catch_all);
    assert_int_equal(g.probe_code, 550);
    assert_string_equal(g.probe_text, "");
    /* told apart by a refused address: the flag says so, no address or text travels */
    memset(&f, 0, sizeof f);
    f.told_apart = true;
    f.probe_code = 550;
    snprintf(f.probe_enh, sizeof f.probe_enh, "%s", "5.1.1");
    snprintf(f.probe_rcpt, sizeof f.probe_rcpt, "%s", "someone@example.org");
    n = lease_fact_encode(&f, buf, sizeof buf);
    assert_non_null(strstr(buf, "v1\tt\t550\t"));
    assert_null(strstr(buf, "someone"));
    assert_true(lease_fact_decode(buf, n, &g));
    assert_false(g.catch_all);
    assert_true(g.told_apart);
    assert_int_equal(g.probe_code, 550);
    assert_string_equal(g.probe_enh, "5.1.1");
    assert_string_equal(g.probe_rcpt, "");
    /* too small a buffer: nothing */
    assert_int_equal(lease_fact_encode(&f, buf, 8), 0);
    /* refused: another version, a bad flag or code, fields missing, a NUL, too long */
    static const char *bad[] = {"v2\t1\t250\th\tr\te\tt", "v1\t2\t250\th\tr\te\tt",
                                "v1\t1\t600\th\tr\te\tt", "v1\t1\t25x\th\tr\te\tt",
                                "v1\t1\t250\th\tr\te", "", "v1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(lease_fact_decode(bad[i], strlen(bad[i]), &g));
    const char nul[] = "v1\t1\t250\th\0x\tr\te\tt";
    assert_false(lease_fact_decode(nul, sizeof nul - 1, &g));
    char longer[700];
    int k = snprintf(longer, sizeof longer, "v1\t1\t250\th\tr\t%0600d\tt", 0);
    assert_false(lease_fact_decode(longer, (size_t)k, &g));
}

/* An MX answer as the fleet shares it: read back equal, failures not shared, anything
 * malformed refused whole. */
static void test_lease_mx_text(void **state)
{
    (void)state;
    dns_mail_t *m = calloc(1, sizeof *m), *g = calloc(1, sizeof *g);
    assert_non_null(m);
    assert_non_null(g);
    m->status = DNS_OK;
    m->spf = true;
    m->nmx = 2;
    m->mx[0].pref = 10;
    snprintf(m->mx[0].host, sizeof m->mx[0].host, "%s", "mx1.example.org");
    m->mx[0].nip = 2;
    snprintf(m->mx[0].ip[0].text, sizeof m->mx[0].ip[0].text, "%s", "192.0.2.25");
    snprintf(m->mx[0].ip[1].text, sizeof m->mx[0].ip[1].text, "%s", "2001:db8::25");
    m->mx[1].pref = 20;
    m->mx[1].status = DNS_NXDOMAIN;
    snprintf(m->mx[1].host, sizeof m->mx[1].host, "%s", "gone.example.org");
    m->queries = 7;
    m->ttl_ms = 300000;
    char buf[LEASE_MX_MAX];
    size_t n = lease_mx_encode(m, buf, sizeof buf);
    assert_true(n > 0);
    assert_true(lease_mx_decode(buf, n, g));
    assert_int_equal(g->status, DNS_OK);
    assert_true(g->spf);
    assert_false(g->dmarc || g->null_mx || g->implicit_mx);
    assert_int_equal(g->nmx, 2);
    assert_int_equal(g->mx[0].pref, 10);
    assert_string_equal(g->mx[0].host, "mx1.example.org");
    assert_int_equal(g->mx[0].nip, 2);
    assert_string_equal(g->mx[0].ip[0].text, "192.0.2.25");
    assert_int_equal(g->mx[0].ip[0].sa.ss_family, AF_INET);
    assert_int_equal(g->mx[0].ip[0].salen, sizeof(struct sockaddr_in));
    assert_string_equal(g->mx[0].ip[1].text, "2001:db8::25");
    assert_int_equal(g->mx[0].ip[1].sa.ss_family, AF_INET6);
    assert_int_equal(g->mx[1].status, DNS_NXDOMAIN);
    assert_int_equal(g->mx[1].nip, 0);
    assert_int_equal(g->queries, 0); /* from the fleet, not the network */
    assert_int_equal(g->ttl_ms, 0);
    /* a null MX and an NXDOMAIN are answers too */
    memset(m, 0, sizeof *m);
    m->status = DNS_NXDOMAIN;
    n = lease_mx_encode(m, buf, sizeof buf);
    assert_true(lease_mx_decode(buf, n, g));
    assert_int_equal(g->status, DNS_NXDOMAIN);
    assert_int_equal(g->nmx, 0);
    /* a failure is not shared */
    m->status = DNS_SERVFAIL;
    assert_int_equal(lease_mx_encode(m, buf, sizeof buf), 0);
    /* refused: another version, a failure, bad flags, a bad host, address or count */
    static const char *bad[] = {
        "m2\t0\t0\t0\t0\t0", "m1\t3\t0\t0\t0\t0", "m1\t0\t2\t0\t0\t0",
        "m1\t0\t0\t0\t0", "m1\t0\t0\t0\t0\t0\n10\tbad host\t0\t192.0.2.1",
        "m1\t0\t0\t0\t0\t0\n10\tmx.test\t0\t192.0.2.300",
        "m1\t0\t0\t0\t0\t0\n70000\tmx.test\t0\t192.0.2.1",
        "m1\t0\t0\t0\t0\t0\n10\tmx.test\t9\t",
        "m1\t0\t0\t0\t0\t0\n10\tmx.test\t0\t1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,"
        "1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g->nmx = 99;
        assert_false(lease_mx_decode(bad[i], strlen(bad[i]), g));
        assert_int_equal(g->nmx, 0);
    }
    /* more hosts than a look-up keeps */
    char many[4096];
    size_t pos = (size_t)snprintf(many, sizeof many, "m1\t0\t0\t0\t0\t0");
    for (int i = 0; i <= DNS_MX_MAX; i++)
        pos += (size_t)snprintf(many + pos, sizeof many - pos, "\n%d\tmx%d.test\t0\t", i, i);
    assert_false(lease_mx_decode(many, pos, g));
    free(m);
    free(g);
}

static void test_unroutable(void **state)
{
    (void)state;
    const char *bad[] = {"127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                         "192.168.1.1", "169.254.3.4", "0.0.0.0", "224.0.0.1", "239.1.1.1",
                         "255.255.255.255", "100.64.0.1", "::1", "::", "fe80::1", "fd00::5",
                         "fc00::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
                         /* embedding or translating to IPv4, site-local, benchmarking */
                         "64:ff9b::a00:1", "64:ff9b::808:808", "64:ff9b::", "64:ff9b::ffff:ffff",
                         "64:ff9b:1::1", "64:ff9b:1:ffff::1", "::a00:1", "::808:808",
                         "::ffff:ffff", "2002:a00:1::1", "2002:808:808::1", "2002::",
                         "2002:ffff:ffff:ffff::1", "fec0::1", "feff:ffff::1", "fed0::1",
                         "198.18.0.1", "198.18.0.0", "198.19.255.255", "198.19.1.1"};
    const char *good[] = {"8.8.8.8", "172.15.255.255", "172.32.0.1", "192.0.2.1",
                          "100.63.255.255", "100.128.0.1", "2001:db8::1", "2a00:1450::1",
                          "::ffff:8.8.4.4", "11.0.0.1", "223.255.255.255",
                          "198.17.255.255", "198.20.0.0", "64:ff9a:ffff::1", "64:ff9b:0:1::1",
                          "64:ff9b:2::1", "::1:0:0:1", "2001::1", "2003::1", "2001:ffff::1",
                          "fe7f:ffff::1", "1::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!unroutable(bad[i]))
            fail_msg("%s allowed", bad[i]);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (unroutable(good[i]))
            fail_msg("%s refused", good[i]);
}

typedef struct {
    vd_result_t *res[8];
    unsigned n;
} collect_t;

static void on_done(vd_result_t *res, void *arg)
{
    collect_t *c = arg;
    c->res[c->n++] = res;
}

static void run_until(struct event_base *base, engine_t *e)
{
    while (engine_pending(e) > 0)
        event_base_loop(base, EVLOOP_ONCE);
    /* the results come before the sessions' QUIT: let those finish too */
    while (engine_sessions(e) > 0)
        event_base_loop(base, EVLOOP_ONCE);
}

static void test_offline_and_invalid(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    engine_opts_t o;
    engine_opts_default(&o);
    o.offline = true;
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    collect_t c = {0};
    assert_int_equal(engine_check(e, "  alice@mailprobe-unit.org ", on_done, &c), MP_OK);
    assert_int_equal(engine_check(e, "alice@@example.com", on_done, &c), MP_OK);
    /* the callback never runs inside engine_check */
    assert_int_equal(c.n, 0);
    run_until(base, e);
    assert_int_equal(c.n, 2);
    for (unsigned i = 0; i < c.n; i++) {
        vd_result_t *r = c.res[i];
        if (strcmp(r->email, "alice@mailprobe-unit.org") == 0) {
            assert_int_equal(r->reason, VR_NOT_CHECKED);
            assert_int_equal(r->smtp_result, VS_NOT_CHECKED);
            assert_true(r->intel_done);
        } else {
            assert_int_equal(r->reason, VR_INVALID_SYNTAX);
            assert_int_equal(r->verdict, VD_UNDELIVERABLE);
            assert_int_equal(r->attempts, 0);
        }
        vd_result_free(r);
    }
    engine_free(e);
    event_base_free(base);
}

static void test_literal_unroutable_refused_without_network(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    engine_opts_t o;
    engine_opts_default(&o);
    o.dns.server = "127.0.0.1:9"; /* never asked: literals need no DNS */
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    collect_t c = {0};
    assert_int_equal(engine_check(e, "bob@[10.0.0.1]", on_done, &c), MP_OK);
    run_until(base, e);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.res[0]->reason, VR_UNROUTABLE_MX);
    assert_int_equal(c.res[0]->attempts, 0);
    vd_result_free(c.res[0]);
    engine_free(e);
    event_base_free(base);
}

/* Engine options for a scripted server on 127.0.0.1:port reached through an address
 * literal (no DNS is ever asked). */
static void script_opts(engine_opts_t *o, unsigned short port)
{
    engine_opts_default(o);
    o->dns.server = "127.0.0.1:9"; /* never asked: literals need no DNS */
    o->helo = "probe.example";
    o->mail_from = "check@probe.example";
    o->allow_private_mx = true;
    o->starttls = false;
    o->port = port;
    o->max_time_ms = 20000;
}

static const vd_result_t *result_for(const collect_t *c, const char *email)
{
    for (unsigned i = 0; i < c->n; i++)
        if (strcmp(c->res[i]->email, email) == 0)
            return c->res[i];
    fail_msg("no result for %s", email);
    return NULL;
}

/* Three checks of one domain share a session; the server takes one RCPT per transaction
 * and says 452 4.5.3 to the others. The engine gets every answer from that one session:
 * RSET + MAIL FROM + RCPT for each refused recipient, in submission order, the
 * postmaster@ control after the real ones, the catch-all probe last, and the probe's
 * answer counts as evidence. */
static void test_batch_452_new_transactions(void **state)
{
    (void)state;
#define TOO_MANY "452 4.5.3 Error: too many recipients\r\n"
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(5),
        SS_SEND_("250 2.1.5 Ok\r\n" TOO_MANY TOO_MANY TOO_MANY TOO_MANY),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 User unknown\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 User unknown\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
#undef TOO_MANY
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    struct event_base *base = event_base_new();
    engine_opts_t o;
    script_opts(&o, d->port);
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    collect_t c = {0};
    const char *addrs[] = {"a@[127.0.0.1]", "b@[127.0.0.1]", "c@[127.0.0.1]"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(engine_check(e, addrs[i], on_done, &c), MP_OK);
    run_until(base, e);
    smtpd_wait(d);
    assert_int_equal(c.n, 3);
    const vd_result_t *a = result_for(&c, addrs[0]), *b = result_for(&c, addrs[1]),
                      *cc = result_for(&c, addrs[2]);
    char want[2048];
    snprintf(want, sizeof want,
             "S: 220 mx.test ESMTP\n"
             "C: EHLO probe.example\n"
             "S: 250-mx.test\nS: 250 PIPELINING\n"
             /* MAIL FROM and the RCPTs in one write; RSET + MAIL FROM + RCPT in one */
             "C: MAIL FROM:<check@probe.example>\n"
             "C: RCPT TO:<a@[127.0.0.1]>\nC: RCPT TO:<b@[127.0.0.1]>\n"
             "C: RCPT TO:<c@[127.0.0.1]>\nC: RCPT TO:<postmaster@[127.0.0.1]>\n"
             "C: RCPT TO:<%s>\n"
             "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
             "S: 452 4.5.3 Error: too many recipients\n"
             "S: 452 4.5.3 Error: too many recipients\n"
             "S: 452 4.5.3 Error: too many recipients\n"
             "S: 452 4.5.3 Error: too many recipients\n"
             "C: RSET\nC: MAIL FROM:<check@probe.example>\nC: RCPT TO:<b@[127.0.0.1]>\n"
             "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
             "C: RSET\nC: MAIL FROM:<check@probe.example>\nC: RCPT TO:<c@[127.0.0.1]>\n"
             "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\nS: 550 5.1.1 User unknown\n"
             "C: RSET\nC: MAIL FROM:<check@probe.example>\n"
             "C: RCPT TO:<postmaster@[127.0.0.1]>\n"
             "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
             "C: RSET\nC: MAIL FROM:<check@probe.example>\nC: RCPT TO:<%s>\n"
             "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\nS: 550 5.1.1 User unknown\n"
             "C: QUIT\nS: 221 2.0.0 Bye\n",
             a->probe_rcpt, a->probe_rcpt);
    if (strcmp(d->log, want) != 0)
        fail_msg("server log:\n%s\n--- expected:\n%s", d->log, want);
    assert_null(strstr(d->log, "C: DATA"));
    assert_int_equal(a->reason, VR_ACCEPTED);
    assert_int_equal(b->reason, VR_ACCEPTED);
    assert_int_equal(cc->reason, VR_MAILBOX_ABSENT);
    for (size_t i = 0; i < 3; i++) {
        const vd_result_t *r = c.res[i];
        assert_int_equal(r->attempts, 1);
        assert_true(r->probed);
        assert_int_equal(r->catch_all, 0); /* the probe's 550 is evidence */
        assert_int_equal(r->probe_code, 550);
        assert_string_equal(r->probe_rcpt, a->probe_rcpt);
    }
    engine_stats_t es;
    engine_stats(e, &es);
    assert_int_equal(es.sessions, 1);
    assert_int_equal(es.rcpts, 3);
    assert_int_equal(es.probes, 1);
    assert_int_equal(es.controls, 1);
    for (unsigned i = 0; i < c.n; i++)
        vd_result_free(c.res[i]);
    engine_free(e);
    event_base_free(base);
    smtpd_free(d);
}

/* One check against a server that answers its RCPT, the postmaster@ control and the
 * catch-all probe (pipelined, in that order) with the replies given; returns the result
 * (caller frees) after asserting the exact commands sent. */
static vd_result_t *check_with_controls(const char *rcpt_replies)
{
    const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(3),
        SS_SEND_(rcpt_replies),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    struct event_base *base = event_base_new();
    engine_opts_t o;
    script_opts(&o, d->port);
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    collect_t c = {0};
    assert_int_equal(engine_check(e, "x@[127.0.0.1]", on_done, &c), MP_OK);
    run_until(base, e);
    smtpd_wait(d);
    assert_int_equal(c.n, 1);
    vd_result_t *r = c.res[0];
    /* the replies as the log shows them: "S: " before each line, no CR */
    char sent[512];
    size_t w = 0;
    for (const char *p = rcpt_replies; *p && w < sizeof sent - 8;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        w += (size_t)snprintf(sent + w, sizeof sent - w, "S: %.*s\n", (int)len, p);
        p += len + (eol ? 2 : 0);
    }
    char want[2048];
    snprintf(want, sizeof want,
             "S: 220 mx.test ESMTP\n"
             "C: EHLO probe.example\n"
             "S: 250-mx.test\nS: 250 PIPELINING\n"
             "C: MAIL FROM:<check@probe.example>\n" /* with the RCPTs, one write */
             "C: RCPT TO:<x@[127.0.0.1]>\nC: RCPT TO:<postmaster@[127.0.0.1]>\n"
             "C: RCPT TO:<%s>\n"
             "S: 250 2.1.0 Ok\n"
             "%s"
             "C: QUIT\nS: 221 2.0.0 Bye\n",
             r->probe_rcpt, sent);
    if (strcmp(d->log, want) != 0)
        fail_msg("server log:\n%s\n--- expected:\n%s", d->log, want);
    engine_stats_t es;
    engine_stats(e, &es);
    assert_int_equal(es.sessions, 1);
    assert_int_equal(es.controls, 1);
    engine_free(e);
    event_base_free(base);
    smtpd_free(d);
    return r;
}

/* A refusal in words that say nothing known, read against postmaster@ in the same
 * transaction: accepted -> the refusal is about this recipient (undeliverable);
 * refused the same way -> the server refuses us (unknown). */
static void test_postmaster_control(void **state)
{
    (void)state;
    static const struct {
        const char *replies; /* to the address, postmaster@, the probe */
        vd_reason_t reason;
        vd_verdict_t verdict;
        vd_smtp_result_t smtp;
        const char *why;     /* in reason_text */
    } cases[] = {
        {"550 Administrative prohibition\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n",
         VR_RECIPIENT_REFUSED, VD_UNDELIVERABLE, VS_REJECTED, "accepted postmaster@"},
        {"550 Administrative prohibition\r\n550 Administrative prohibition\r\n"
         "550 Administrative prohibition\r\n",
         VR_POLICY_BLOCKED, VD_UNKNOWN, VS_UNAVAILABLE, "postmaster@ too"},
        /* words that settle it are not overridden: a domain without postmaster@ */
        {"550 5.1.1 User unknown\r\n550 5.1.1 User unknown\r\n550 5.1.1 User unknown\r\n",
         VR_MAILBOX_ABSENT, VD_UNDELIVERABLE, VS_REJECTED, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vd_result_t *r = check_with_controls(cases[i].replies);
        assert_int_equal(r->reason, cases[i].reason);
        assert_int_equal(r->verdict, cases[i].verdict);
        assert_int_equal(r->smtp_result, cases[i].smtp);
        assert_non_null(strstr(r->detail, cases[i].why));
        vd_result_free(r);
    }
}

/* A UTF-8 local part at a server that offers no SMTPUTF8 (RFC 6531 §3.2): whatever it
 * answers, the result says what it is, smtputf8_unsupported, not "accepted". */
static void test_utf8_without_smtputf8(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(3),
        SS_SEND_("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    struct event_base *base = event_base_new();
    engine_opts_t o;
    script_opts(&o, d->port);
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    collect_t c = {0};
    assert_int_equal(engine_check(e, "j\xc3\xbcrgen@[127.0.0.1]", on_done, &c), MP_OK);
    run_until(base, e);
    smtpd_wait(d);
    assert_int_equal(c.n, 1);
    vd_result_t *r = c.res[0];
    /* no SMTPUTF8 on MAIL FROM: the server did not offer it */
    assert_non_null(strstr(d->log, "C: MAIL FROM:<check@probe.example>\n"));
    assert_non_null(strstr(d->log, "C: RCPT TO:<j\xc3\xbcrgen@[127.0.0.1]>\n"));
    assert_int_equal(r->reason, VR_SMTPUTF8_UNSUPPORTED);
    assert_int_equal(r->verdict, VD_UNDELIVERABLE);
    assert_int_equal(r->smtp_result, VS_UNAVAILABLE);
    assert_non_null(strstr(r->detail, "SMTPUTF8"));
    vd_result_free(r);
    engine_free(e);
    event_base_free(base);
    smtpd_free(d);
}

/* A second check of the server, submitted when the first one's result comes in, takes
 * the idle session: its RCPT and control in the open transaction (no RSET, no second MAIL
 * FROM), one write, no second connection, no second probe (the domain's catch-all fact
 * is known); the result came before the QUIT; the transcript says the session was
 * shared. */
typedef struct {
    collect_t c;
    engine_t *e;
    const char *second;
} chain_t;

static void on_done_chain(vd_result_t *res, void *arg)
{
    chain_t *ch = arg;
    ch->c.res[ch->c.n++] = res;
    if (ch->c.n == 1)
        assert_int_equal(engine_check(ch->e, ch->second, on_done_chain, ch), MP_OK);
}

static void test_engine_reuses_idle_session(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(4),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"),
        SS_READ_(2),
        SS_SEND_("550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    struct event_base *base = event_base_new();
    engine_opts_t o;
    script_opts(&o, d->port);
    o.keep_transcript = true;
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    static chain_t ch;
    memset(&ch, 0, sizeof ch);
    ch.e = e;
    ch.second = "b@[127.0.0.1]";
    assert_int_equal(engine_check(e, "a@[127.0.0.1]", on_done_chain, &ch), MP_OK);
    while (ch.c.n < 2)
        event_base_loop(base, EVLOOP_ONCE);
    /* the results came before the QUIT; the session still counts until it is closed */
    assert_int_equal(engine_sessions(e), 1);
    while (engine_sessions(e) > 0)
        event_base_loop(base, EVLOOP_ONCE);
    smtpd_wait(d);
    const vd_result_t *a = ch.c.res[0], *b = ch.c.res[1];
    char want[2048];
    snprintf(want, sizeof want,
             "S: 220 mx.test ESMTP\n"
             "C: EHLO probe.example\n"
             "S: 250-mx.test\nS: 250 PIPELINING\n"
             "C: MAIL FROM:<check@probe.example>\n"
             "C: RCPT TO:<a@[127.0.0.1]>\nC: RCPT TO:<postmaster@[127.0.0.1]>\n"
             "C: RCPT TO:<%s>\n"
             "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 250 2.1.5 Ok\nS: 550 5.1.1 User unknown\n"
             "C: RCPT TO:<b@[127.0.0.1]>\nC: RCPT TO:<postmaster@[127.0.0.1]>\n"
             "S: 550 5.1.1 User unknown\nS: 250 2.1.5 Ok\n"
             "C: QUIT\nS: 221 2.0.0 Bye\n",
             a->probe_rcpt);
    if (strcmp(d->log, want) != 0)
        fail_msg("server log:\n%s\n--- expected:\n%s", d->log, want);
    assert_int_equal(d->recv_chunks, 4);
    assert_int_equal(a->reason, VR_ACCEPTED);
    assert_int_equal(b->reason, VR_MAILBOX_ABSENT);
    /* the first result has no QUIT: it was reported before */
    for (unsigned i = 0; i < a->nlines; i++)
        assert_null(strstr(a->lines[i].line, "QUIT"));
    bool noted = false;
    for (unsigned i = 0; i < b->nlines; i++)
        noted |= b->lines[i].dir == '*' &&
                 strstr(b->lines[i].line, "session reused for its run 2; earlier runs for "
                                          "[127.0.0.1]") != NULL;
    assert_true(noted);
    engine_stats_t es;
    engine_stats(e, &es);
    assert_int_equal(es.sessions, 1);
    assert_int_equal(es.runs, 2);
    assert_int_equal(es.reused, 1);
    assert_int_equal(es.max_refusals, 2);
    assert_int_equal(es.max_per_ip, 1);
    assert_int_equal(es.probes, 1);
    vd_result_free(ch.c.res[0]);
    vd_result_free(ch.c.res[1]);
    engine_free(e);
    event_base_free(base);
    smtpd_free(d);
}

/* Checks a, b, c... of [127.0.0.1] against the scripted server, one session at a time
 * and at most max_rcpt addresses per write (so that the others wait for the same server:
 * no probe or control goes up front), with the given error budget; submitted together,
 * they queue in submission order. The server's log is compared with want (%s in it: the
 * probe address, when one was sent). */
static void run_engine_script(const ss_step_t *steps, const char *const *addrs, size_t n,
                              unsigned max_rcpt, unsigned session_errors,
                              collect_t *c, engine_stats_t *es, const char *want)
{
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    struct event_base *base = event_base_new();
    engine_opts_t o;
    script_opts(&o, d->port);
    o.per_ip_limit = 1;
    o.max_rcpt = max_rcpt;
    o.session_errors = session_errors;
    mp_status_t st;
    engine_t *e = engine_new(base, &o, &st);
    assert_non_null(e);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(engine_check(e, addrs[i], on_done, c), MP_OK);
    run_until(base, e);
    smtpd_wait(d);
    assert_int_equal(c->n, n);
    const char *probe = "";
    for (unsigned i = 0; i < c->n && !probe[0]; i++)
        probe = c->res[i]->probe_rcpt;
    char w[2048];
    const char *ph = strstr(want, "%s");
    if (ph)
        snprintf(w, sizeof w, "%.*s%s%s", (int)(ph - want), want, probe, ph + 2);
    else
        snprintf(w, sizeof w, "%s", want);
    if (strcmp(d->log, w) != 0)
        fail_msg("server log:\n%s\n--- expected:\n%s", d->log, w);
    assert_null(strstr(d->log, "C: DATA"));
    engine_stats(e, es);
    engine_free(e);
    event_base_free(base);
    smtpd_free(d);
}

static void collect_free(collect_t *c)
{
    for (unsigned i = 0; i < c->n; i++)
        vd_result_free(c->res[i]);
}

#define S_BANNER SS_SEND_("220 mx.test ESMTP\r\n"), SS_READ_(1), \
                 SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n")
#define LOG_START "S: 220 mx.test ESMTP\nC: EHLO probe.example\n" \
                  "S: 250-mx.test\nS: 250 PIPELINING\nC: MAIL FROM:<check@probe.example>\n"
#define PM_RCPT "C: RCPT TO:<postmaster@[127.0.0.1]>\n"

/* The catch-all probe only when it can tell something. a is accepted and nothing in its
 * write was refused as unknown: its probe follows in the session's next write, with b's
 * RCPT (no RSET, no second MAIL FROM: the open transaction); b, accepted meanwhile, waits
 * for that probe's answer instead of probing again; c, refused as unknown, needs no
 * probe, and goes alone with its control up front (nothing else waits). Every verdict
 * as with the probe up front. */
static void test_probe_on_demand(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        S_BANNER,
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(2), /* b, a's probe */
        SS_SEND_("250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"),
        SS_READ_(2),
        SS_SEND_("550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    static const char *const addrs[] = {"a@[127.0.0.1]", "b@[127.0.0.1]", "c@[127.0.0.1]"};
    collect_t c = {0};
    engine_stats_t es;
    run_engine_script(steps, addrs, 3, 1, 0, &c, &es,
                      LOG_START "C: RCPT TO:<a@[127.0.0.1]>\n"
                      "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
                      "C: RCPT TO:<b@[127.0.0.1]>\nC: RCPT TO:<%s>\n"
                      "S: 250 2.1.5 Ok\nS: 550 5.1.1 User unknown\n"
                      "C: RCPT TO:<c@[127.0.0.1]>\n" PM_RCPT
                      "S: 550 5.1.1 User unknown\nS: 250 2.1.5 Ok\n"
                      "C: QUIT\nS: 221 2.0.0 Bye\n");
    const vd_result_t *a = result_for(&c, addrs[0]), *b = result_for(&c, addrs[1]),
                      *cc = result_for(&c, addrs[2]);
    assert_int_equal(a->reason, VR_ACCEPTED);
    assert_int_equal(b->reason, VR_ACCEPTED);
    assert_int_equal(cc->reason, VR_MAILBOX_ABSENT);
    assert_true(a->probed);
    assert_int_equal(a->catch_all, 0);
    assert_int_equal(a->probe_code, 550);
    assert_int_equal(b->catch_all, 0); /* from a's probe (the domain's fact) */
    assert_non_null(strstr(b->detail, "cannot exist"));
    assert_int_equal(es.sessions, 1);
    assert_int_equal(es.probes, 1);
    assert_int_equal(es.controls, 1);
    assert_int_equal(es.max_refusals, 2);
    collect_free(&c);
}

/* An address of the domain refused as unknown in the same write: the domain tells
 * addresses apart, which the probe would only repeat with one more refusal. No probe is
 * ever sent; the accepted addresses say why their yes is meaningful; the fact is kept for
 * the domain (c, later, is not probed either). */
static void test_probe_needless_when_told_apart(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        S_BANNER,
        SS_READ_(3),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"),
        SS_READ_(2),
        SS_SEND_("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    static const char *const addrs[] = {"a@[127.0.0.1]", "b@[127.0.0.1]", "c@[127.0.0.1]"};
    collect_t c = {0};
    engine_stats_t es;
    run_engine_script(steps, addrs, 3, 2, 0, &c, &es,
                      LOG_START "C: RCPT TO:<a@[127.0.0.1]>\nC: RCPT TO:<b@[127.0.0.1]>\n"
                      "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 550 5.1.1 User unknown\n"
                      "C: RCPT TO:<c@[127.0.0.1]>\n" PM_RCPT
                      "S: 250 2.1.5 Ok\nS: 250 2.1.5 Ok\n"
                      "C: QUIT\nS: 221 2.0.0 Bye\n");
    const vd_result_t *a = result_for(&c, addrs[0]), *b = result_for(&c, addrs[1]),
                      *cc = result_for(&c, addrs[2]);
    assert_int_equal(b->reason, VR_MAILBOX_ABSENT);
    for (size_t i = 0; i < 2; i++) {
        const vd_result_t *r = i ? cc : a;
        assert_int_equal(r->reason, VR_ACCEPTED);
        assert_int_equal(r->verdict, VD_DELIVERABLE);
        assert_int_equal(r->catch_all, 0);
        assert_false(r->probed);
        assert_non_null(strstr(r->detail, "refused another address of the domain as "
                                          "unknown (550 5.1.1)"));
        assert_null(strstr(r->detail, "b@"));
    }
    assert_int_equal(es.probes, 0);
    assert_int_equal(es.sessions, 1);
    collect_free(&c);
}

/* The postmaster@ control only when a reply needs it: a's refusal says nothing known and
 * no control was in its write, so postmaster@ is asked in the session's next write, in
 * the same transaction, and a's reply is read against it (accepted: the refusal is about
 * a, undeliverable). b rides in that write with its own probe (nothing else waits). */
static void test_control_on_demand(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        S_BANNER,
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n550 Administrative prohibition\r\n"),
        SS_READ_(3), /* b, postmaster@ (b's and a's), b's probe */
        SS_SEND_("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    static const char *const addrs[] = {"a@[127.0.0.1]", "b@[127.0.0.1]"};
    collect_t c = {0};
    engine_stats_t es;
    run_engine_script(steps, addrs, 2, 1, 0, &c, &es,
                      LOG_START "C: RCPT TO:<a@[127.0.0.1]>\n"
                      "S: 250 2.1.0 Ok\nS: 550 Administrative prohibition\n"
                      "C: RCPT TO:<b@[127.0.0.1]>\n" PM_RCPT "C: RCPT TO:<%s>\n"
                      "S: 250 2.1.5 Ok\nS: 250 2.1.5 Ok\nS: 550 5.1.1 User unknown\n"
                      "C: QUIT\nS: 221 2.0.0 Bye\n");
    const vd_result_t *a = result_for(&c, addrs[0]), *b = result_for(&c, addrs[1]);
    assert_int_equal(a->reason, VR_RECIPIENT_REFUSED);
    assert_int_equal(a->verdict, VD_UNDELIVERABLE);
    assert_int_equal(a->smtp_result, VS_REJECTED);
    assert_int_equal(a->code, 550);
    assert_non_null(strstr(a->detail, "accepted postmaster@"));
    assert_int_equal(b->reason, VR_ACCEPTED);
    assert_int_equal(b->catch_all, 0);
    assert_int_equal(es.controls, 1);
    assert_int_equal(es.sessions, 1);
    collect_free(&c);
}

/* The same mailbox twice (a list with a duplicate, a retry after greylisting) is never
 * asked twice in one transaction: the second check waits for the next write, which opens
 * a new transaction (RSET, MAIL FROM) on the same session; the first one's probe rides
 * in it, and nothing else waits, so the second one's control goes up front. */
static void test_same_mailbox_new_transaction(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        S_BANNER,
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(5),
        SS_SEND_("250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                 "550 5.1.1 User unknown\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    static const char *const addrs[] = {"a@[127.0.0.1]", "a@[127.0.0.1]"};
    collect_t c = {0};
    engine_stats_t es;
    run_engine_script(steps, addrs, 2, 25, 0, &c, &es,
                      LOG_START "C: RCPT TO:<a@[127.0.0.1]>\n"
                      "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
                      "C: RSET\nC: MAIL FROM:<check@probe.example>\n"
                      "C: RCPT TO:<a@[127.0.0.1]>\n" PM_RCPT "C: RCPT TO:<%s>\n"
                      "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 250 2.1.5 Ok\n"
                      "S: 550 5.1.1 User unknown\n"
                      "C: QUIT\nS: 221 2.0.0 Bye\n");
    for (unsigned i = 0; i < c.n; i++) {
        assert_int_equal(c.res[i]->reason, VR_ACCEPTED);
        assert_int_equal(c.res[i]->catch_all, 0);
        assert_int_equal(c.res[i]->attempts, 1);
    }
    assert_int_equal(es.sessions, 1);
    assert_int_equal(es.probes, 1);
    collect_free(&c);
}

/* A write that leaves the session (almost) no error budget is its last: QUIT goes in the
 * same write as its RCPTs. Budget 3: the first write is MAIL FROM and a (b waits: no
 * control up front); after a's refusal 2 are left, b and its control (nothing else
 * waits), then QUIT with them. */
static void test_quit_pipelined_when_budget_spent(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        S_BANNER,
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n550 5.1.1 User unknown\r\n"),
        SS_READ_(3), /* b, postmaster@ and QUIT before any reply */
        SS_SEND_("550 5.1.1 User unknown\r\n250 2.1.5 Ok\r\n221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    static const char *const addrs[] = {"a@[127.0.0.1]", "b@[127.0.0.1]"};
    collect_t c = {0};
    engine_stats_t es;
    run_engine_script(steps, addrs, 2, 1, 3, &c, &es,
                      LOG_START "C: RCPT TO:<a@[127.0.0.1]>\n"
                      "S: 250 2.1.0 Ok\nS: 550 5.1.1 User unknown\n"
                      "C: RCPT TO:<b@[127.0.0.1]>\n" PM_RCPT "C: QUIT\n"
                      "S: 550 5.1.1 User unknown\nS: 250 2.1.5 Ok\nS: 221 2.0.0 Bye\n");
    assert_int_equal(result_for(&c, addrs[0])->reason, VR_MAILBOX_ABSENT);
    assert_int_equal(result_for(&c, addrs[1])->reason, VR_MAILBOX_ABSENT);
    assert_int_equal(es.sessions, 1);
    assert_int_equal(es.max_refusals, 2);
    collect_free(&c);
}

static uint64_t fake_now;
static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static void test_facts_ttl_and_eviction(void **state)
{
    (void)state;
    mp_clock_set(fake_clock, NULL);
    fake_now = 1000;
    facts_t *f = facts_mem_new(2);
    assert_non_null(f);
    facts_domain_t d, out;
    memset(&d, 0, sizeof d);
    d.catch_all = true;
    d.probe_code = 250;
    assert_false(facts_get(f, "a.test", &out));
    facts_put(f, "a.test", &d, 500);
    assert_true(facts_get(f, "A.TEST", &out)); /* domains compare case-insensitively */
    assert_true(out.catch_all);
    assert_int_equal(out.probe_code, 250);
    fake_now = 1499;
    assert_true(facts_get(f, "a.test", &out));
    fake_now = 1500; /* expired exactly at its TTL */
    assert_false(facts_get(f, "a.test", &out));
    /* negative and positive facts keep their own TTLs */
    d.catch_all = false;
    facts_put(f, "neg.test", &d, 100);
    d.catch_all = true;
    facts_put(f, "pos.test", &d, 10000);
    fake_now += 200;
    assert_false(facts_get(f, "neg.test", &out));
    assert_true(facts_get(f, "pos.test", &out));
    /* bounded: the oldest entry goes first */
    facts_put(f, "b.test", &d, 10000);
    facts_put(f, "c.test", &d, 10000);
    assert_false(facts_get(f, "pos.test", &out));
    assert_true(facts_get(f, "b.test", &out));
    assert_true(facts_get(f, "c.test", &out));
    /* a zero TTL stores nothing */
    facts_put(f, "zero.test", &d, 0);
    assert_false(facts_get(f, "zero.test", &out));
    facts_free(f);
    mp_clock_set(NULL, NULL);
}

static void test_window_aimd(void **state)
{
    (void)state;
    window_cfg_t c = {.limit = 4, .min_interval_ms = 100, .penalty_ms = 1000,
                      .penalty_cap_ms = 5000};
    window_t w;
    window_init(&w, &c);
    assert_int_equal(window_allowed(&w), 4);
    /* the minimum interval between two starts */
    assert_true(window_can_start(&w, 0));
    window_on_start(&w, &c, 0);
    assert_false(window_can_start(&w, 99));
    assert_true(window_can_start(&w, 100));
    window_on_start(&w, &c, 100);
    window_on_start(&w, &c, 200);
    window_on_start(&w, &c, 300);
    assert_false(window_can_start(&w, 10000)); /* 4 running: the limit */
    /* a throttle halves the window and waits the penalty */
    window_on_end(&w, &c, 1000, WIN_THROTTLE);
    assert_int_equal(window_allowed(&w), 2);
    assert_int_equal(w.active, 3);
    assert_int_equal(w.next_start_ms, 2000);
    window_on_end(&w, &c, 1100, WIN_NEUTRAL);
    window_on_end(&w, &c, 1200, WIN_NEUTRAL);
    assert_int_equal(w.active, 1);
    assert_false(window_can_start(&w, 1999));
    assert_true(window_can_start(&w, 2000));
    /* consecutive throttles double the penalty up to the cap; never below one session */
    window_on_end(&w, &c, 3000, WIN_THROTTLE); /* window 1, penalty 2000 */
    assert_int_equal(window_allowed(&w), 1);
    assert_int_equal(w.next_start_ms, 5000);
    window_on_end(&w, &c, 5000, WIN_THROTTLE); /* penalty 4000 */
    assert_int_equal(w.next_start_ms, 9000);
    window_on_end(&w, &c, 9000, WIN_THROTTLE); /* 8000, capped at 5000 */
    assert_int_equal(w.next_start_ms, 14000);
    assert_int_equal(window_allowed(&w), 1);
    /* success grows it back slowly (about a window's worth of successes per step), never
     * above the limit, and resets the penalty */
    window_on_end(&w, &c, 20000, WIN_OK);
    assert_int_equal(window_allowed(&w), 2);
    assert_int_equal(w.throttles, 0);
    unsigned oks = 0;
    while (window_allowed(&w) < 3) {
        window_on_end(&w, &c, 20000, WIN_OK);
        oks++;
    }
    assert_int_equal(oks, 3); /* 2 -> 2.5 -> 2.9 -> 3.24 */
    for (int i = 0; i < 100; i++)
        window_on_end(&w, &c, 20000, WIN_OK);
    assert_int_equal(window_allowed(&w), 4);
    window_on_end(&w, &c, 30000, WIN_THROTTLE); /* first throttle again: 1 s */
    assert_int_equal(w.next_start_ms, 31000);
}

/* The connection cache's rules: LIFO take by key, idle time, reuse age and count,
 * expiry order, eviction of the longest idle. Times are injected. */
static bool match_b(void *sess, void *arg)
{
    (void)arg;
    return *(const char *)sess == 'b';
}

static void test_conncache_rules(void **state)
{
    (void)state;
    conncache_cfg_t cfg = {.idle_ms = 2000, .reuse_ms = 300000, .reuse_max = 3};
    conncache_t *cc = conncache_new(&cfg);
    assert_non_null(cc);
    char k1[CONNCACHE_KEY_MAX], k2[CONNCACHE_KEY_MAX];
    conncache_key(k1, sizeof k1, "", "192.0.2.1", 25);
    conncache_key(k2, sizeof k2, "", "192.0.2.2", 25);
    assert_string_equal(k1, "|192.0.2.1|25");
    static char a[] = "a", b[] = "b", c[] = "c", d[] = "d";

    /* nothing to take from an empty cache */
    assert_null(conncache_take(cc, k1, 1000));
    assert_int_equal(conncache_next_expiry(cc), UINT64_MAX);

    /* put / take: the most recently returned first, only for its key */
    assert_true(conncache_put(cc, k1, a, 0, 1, 1000));
    assert_true(conncache_put(cc, k1, b, 0, 1, 1500));
    assert_true(conncache_put(cc, k2, c, 0, 1, 1200));
    assert_int_equal(conncache_count(cc, k1), 2);
    assert_int_equal(conncache_count(cc, NULL), 3);
    assert_int_equal(conncache_next_expiry(cc), 3000); /* a: idle since 1000 + 2000 */
    assert_ptr_equal(conncache_take(cc, k1, 1600), b);
    assert_ptr_equal(conncache_take(cc, k1, 1600), a);
    assert_null(conncache_take(cc, k1, 1600));
    assert_ptr_equal(conncache_take(cc, k2, 1600), c);
    assert_int_equal(conncache_count(cc, NULL), 0);

    /* idle too long: not taken, expired instead (oldest first) */
    assert_true(conncache_put(cc, k1, a, 0, 1, 1000));
    assert_true(conncache_put(cc, k1, b, 0, 1, 2500));
    assert_null(conncache_expire(cc, 2999));
    assert_ptr_equal(conncache_take(cc, k1, 3000), b); /* a is past its 2 s, b is not */
    assert_null(conncache_take(cc, k1, 3000));
    assert_ptr_equal(conncache_expire(cc, 3000), a);
    assert_null(conncache_expire(cc, 3000));

    /* reuse count: the session that carried reuse_max runs is not kept */
    assert_false(conncache_put(cc, k1, a, 0, 3, 1000));
    assert_true(conncache_put(cc, k1, a, 0, 2, 1000));
    assert_ptr_equal(conncache_take(cc, k1, 1000), a);

    /* reuse age: refused when returned too old; expires when it gets too old idle */
    assert_false(conncache_put(cc, k1, a, 0, 1, 300000));
    assert_true(conncache_put(cc, k1, a, 0, 1, 299000));
    assert_int_equal(conncache_next_expiry(cc), 300000);
    assert_null(conncache_take(cc, k1, 300000));
    assert_ptr_equal(conncache_expire(cc, 300000), a);

    /* eviction: the longest idle (matching) one; remove */
    assert_true(conncache_put(cc, k1, a, 0, 1, 100));
    assert_true(conncache_put(cc, k2, b, 0, 1, 200));
    assert_true(conncache_put(cc, k2, c, 0, 1, 300));
    assert_true(conncache_put(cc, k1, d, 0, 1, 50));
    assert_ptr_equal(conncache_pop_oldest(cc, match_b, NULL), b);
    assert_ptr_equal(conncache_pop_oldest(cc, NULL, NULL), d);
    assert_true(conncache_remove(cc, c));
    assert_false(conncache_remove(cc, c));
    assert_int_equal(conncache_count(cc, NULL), 1);
    assert_ptr_equal(conncache_pop_oldest(cc, NULL, NULL), a);
    assert_null(conncache_pop_oldest(cc, NULL, NULL));

    /* defaults */
    conncache_free(cc);
    cc = conncache_new(NULL);
    assert_true(conncache_put(cc, k1, a, 0, CONNCACHE_REUSE_MAX_DEFAULT - 1, 1000));
    assert_int_equal(conncache_next_expiry(cc), 1000 + CONNCACHE_IDLE_MS_DEFAULT);
    assert_false(conncache_put(cc, k1, b, 0, CONNCACHE_REUSE_MAX_DEFAULT, 1000));
    assert_ptr_equal(conncache_take(cc, k1, 1000), a);
    conncache_free(cc);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the application's job; libevent does not do it */
    (void)smtpd_closed_port;  /* a header-only helper this file has no use for */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unroutable),
        cmocka_unit_test(test_lease_fact_text),
        cmocka_unit_test(test_lease_mx_text),
        cmocka_unit_test(test_facts_ttl_and_eviction),
        cmocka_unit_test(test_window_aimd),
        cmocka_unit_test(test_conncache_rules),
        cmocka_unit_test(test_offline_and_invalid),
        cmocka_unit_test(test_literal_unroutable_refused_without_network),
        cmocka_unit_test(test_batch_452_new_transactions),
        cmocka_unit_test(test_postmaster_control),
        cmocka_unit_test(test_utf8_without_smtputf8),
        cmocka_unit_test(test_engine_reuses_idle_session),
        cmocka_unit_test(test_probe_on_demand),
        cmocka_unit_test(test_probe_needless_when_told_apart),
        cmocka_unit_test(test_control_on_demand),
        cmocka_unit_test(test_same_mailbox_new_transaction),
        cmocka_unit_test(test_quit_pipelined_when_budget_spent),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    smtpd_tls_global_cleanup();
    return rc;
}
