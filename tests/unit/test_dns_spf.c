/*
 * test_dns_spf.c - unit tests of the SPF evaluator (src/dns/spf.c), driven from a table
 * of DNS answers the way the doctor drives it from the resolver: evaluate, answer the
 * question it names, evaluate again. Asked-for names missing from the table answer
 * NXDOMAIN; every question asked is counted so the limits can be checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dns/spf.h"
#include "util/str.h"

typedef struct {
    dns_rr_type_t type;
    const char *name;
    const char *data;   /* one record; NULL: SERVFAIL */
} zrec_t;

#define STORE_MAX 64

typedef struct {
    const zrec_t *zone;
    dns_records_t *have[STORE_MAX];
    size_t nhave;
    unsigned asked;
} table_t;

static const dns_records_t *table_get(void *arg, dns_rr_type_t type, const char *name)
{
    table_t *t = arg;
    for (size_t i = 0; i < t->nhave; i++)
        if (t->have[i]->type == type && strcmp(t->have[i]->name, name) == 0)
            return t->have[i];
    return NULL;
}

/* Answer a question from the zone into the store. */
static void table_answer(table_t *t, dns_rr_type_t type, const char *name)
{
    assert_true(t->nhave < STORE_MAX);
    dns_records_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->type = type;
    mp_strlcpy(r->name, name, sizeof r->name);
    bool exists = false;
    r->status = DNS_NXDOMAIN;
    for (const zrec_t *z = t->zone; z->name; z++) {
        if (strcmp(z->name, name) != 0)
            continue;
        exists = true;
        if (z->type != type)
            continue;
        if (!z->data) {
            r->status = DNS_SERVFAIL;
            break;
        }
        dns_rr_data_t *d = &r->rr[r->n++];
        if (type == DNS_RR_MX) {
            const char *sp = strchr(z->data, ' ');
            d->pref = (unsigned)strtoul(z->data, NULL, 10);
            mp_strlcpy(d->text, sp + 1, sizeof d->text);
        } else {
            mp_strlcpy(d->text, z->data, sizeof d->text);
        }
        r->status = DNS_OK;
    }
    if (r->status == DNS_NXDOMAIN && exists)
        r->status = DNS_NODATA;
    t->have[t->nhave++] = r;
    t->asked++;
}

static spf_result_t run(const zrec_t *zone, const char *ip, const char *domain,
                        const char *sender, spf_out_t *out, unsigned *asked)
{
    table_t t = { .zone = zone };
    for (int round = 0; round < STORE_MAX; round++) {
        spf_eval(ip, domain, sender, "helo.example.test", table_get, &t, out);
        if (!out->need)
            break;
        table_answer(&t, out->need_type, out->need_name);
    }
    assert_false(out->need);
    if (asked)
        *asked = t.asked;
    for (size_t i = 0; i < t.nhave; i++)
        free(t.have[i]);
    return out->result;
}

static const zrec_t zone[] = {
    { DNS_RR_TXT, "ex.test",
      "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx include:inc.test -all" },
    { DNS_RR_TXT, "ex.test", "google-site-verification=abc" },
    { DNS_RR_A, "ex.test", "198.51.100.1" },
    { DNS_RR_MX, "ex.test", "10 mx.ex.test" },
    { DNS_RR_A, "mx.ex.test", "198.51.100.2" },
    { DNS_RR_AAAA, "mx.ex.test", "2001:db9::25" },
    { DNS_RR_TXT, "inc.test", "v=spf1 ip4:203.0.113.7 ~all" },
    { DNS_RR_TXT, "soft.test", "v=spf1 a:host.soft.test/28 ~all" },
    { DNS_RR_A, "host.soft.test", "198.51.100.33" },
    { DNS_RR_TXT, "redir.test", "v=spf1 redirect=ex.test" },
    { DNS_RR_TXT, "redir-none.test", "v=spf1 redirect=nospf.test" },
    { DNS_RR_A, "nospf.test", "192.0.2.1" },
    { DNS_RR_TXT, "two.test", "v=spf1 -all" },
    { DNS_RR_TXT, "two.test", "v=spf1 +all" },
    { DNS_RR_TXT, "neutral.test", "v=spf1 ip4:192.0.2.1" },
    { DNS_RR_TXT, "bad.test", "v=spf1 ip4:192.0.2.1 frobnicate:x -all" },
    { DNS_RR_TXT, "badcidr.test", "v=spf1 ip4:192.0.2.1/33 -all" },
    { DNS_RR_TXT, "temp.test", "v=spf1 a:broken.test -all" },
    { DNS_RR_A, "broken.test", NULL },
    { DNS_RR_TXT, "loop.test", "v=spf1 include:loop.test -all" },
    { DNS_RR_TXT, "many.test", "v=spf1 a:a1.test a:a2.test a:a3.test a:a4.test a:a5.test "
                               "mx:a6.test mx:a7.test exists:a8.test ptr include:inc.test "
                               "a:a11.test -all" },
    { DNS_RR_A, "a1.test", "10.0.0.1" }, { DNS_RR_A, "a2.test", "10.0.0.1" },
    { DNS_RR_A, "a3.test", "10.0.0.1" }, { DNS_RR_A, "a4.test", "10.0.0.1" },
    { DNS_RR_A, "a5.test", "10.0.0.1" }, { DNS_RR_MX, "a6.test", "1 a1.test" },
    { DNS_RR_MX, "a7.test", "1 a1.test" }, { DNS_RR_A, "a11.test", "203.0.113.99" },
    { DNS_RR_TXT, "voids.test", "v=spf1 a:v1.test a:v2.test a:v3.test +all" },
    { DNS_RR_TXT, "macro.test", "v=spf1 exists:%{ir}.%{l1r-}._spf.%{d} -all" },
    { DNS_RR_A, "1.2.0.192.local._spf.macro.test", "127.0.0.2" },
    { DNS_RR_TXT, "ptr.test", "v=spf1 ptr -all" },
    { DNS_RR_PTR, "1.2.0.192.in-addr.arpa", "host.ptr.test" },
    { DNS_RR_A, "host.ptr.test", "192.0.2.1" },
    { DNS_RR_TXT, "dual.test", "v=spf1 a//64 -all" },
    { DNS_RR_AAAA, "dual.test", "2001:db8:1:2::1" },
    { DNS_RR_TXT, "incnone.test", "v=spf1 include:nospf.test -all" },
    { DNS_RR_TXT, "tmptxt.test", NULL },
    { 0, NULL, NULL }
};

static void test_mechanisms(void **state)
{
    (void)state;
    spf_out_t o;
    assert_int_equal(run(zone, "192.0.2.77", "ex.test", "a@ex.test", &o, NULL), SPF_PASS);
    assert_string_equal(o.matched, "ex.test: ip4:192.0.2.0/24");
    assert_int_equal(o.lookups, 0);
    assert_int_equal(run(zone, "2001:db8::5", "ex.test", "a@ex.test", &o, NULL), SPF_PASS);
    assert_int_equal(run(zone, "198.51.100.1", "ex.test", "a@ex.test", &o, NULL), SPF_PASS);
    assert_string_equal(o.matched, "ex.test: a");
    assert_int_equal(run(zone, "198.51.100.2", "ex.test", "a@ex.test", &o, NULL), SPF_PASS);
    assert_string_equal(o.matched, "ex.test: mx");
    assert_int_equal(run(zone, "2001:db9::25", "ex.test", "a@ex.test", &o, NULL), SPF_PASS);
    /* include passes: the include term decides, its record's ~all does not leak out */
    assert_int_equal(run(zone, "203.0.113.7", "ex.test", "a@ex.test", &o, NULL), SPF_PASS);
    assert_int_equal(run(zone, "203.0.113.8", "ex.test", "a@ex.test", &o, NULL), SPF_FAIL);
    assert_string_equal(o.matched, "ex.test: -all");
    assert_int_equal(o.lookups, 3);   /* a, mx, include */
    assert_int_equal(run(zone, "198.51.100.40", "soft.test", "x@soft.test", &o, NULL),
                     SPF_PASS);       /* /28 covers .32-.47 */
    assert_int_equal(run(zone, "198.51.100.50", "soft.test", "x@soft.test", &o, NULL),
                     SPF_SOFTFAIL);
    assert_int_equal(run(zone, "192.0.2.9", "neutral.test", "x@neutral.test", &o, NULL),
                     SPF_NEUTRAL);
    assert_int_equal(run(zone, "2001:db8:1:2::ffff", "dual.test", "x@dual.test", &o, NULL),
                     SPF_PASS);
    assert_int_equal(run(zone, "2001:db8:1:3::1", "dual.test", "x@dual.test", &o, NULL),
                     SPF_FAIL);
}

static void test_redirect_and_errors(void **state)
{
    (void)state;
    spf_out_t o;
    assert_int_equal(run(zone, "192.0.2.77", "redir.test", "a@redir.test", &o, NULL), SPF_PASS);
    assert_int_equal(run(zone, "192.0.2.77", "redir-none.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_int_equal(run(zone, "192.0.2.77", "nospf.test", "a@x", &o, NULL), SPF_NONE);
    assert_string_equal(o.why, "nospf.test: no SPF record");
    assert_int_equal(run(zone, "192.0.2.77", "nxdomain.test", "a@x", &o, NULL), SPF_NONE);
    assert_int_equal(run(zone, "192.0.2.77", "two.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_string_equal(o.why, "two.test: more than one SPF record");
    /* a syntax error anywhere is permerror, even after a matching term */
    assert_int_equal(run(zone, "192.0.2.1", "bad.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_int_equal(run(zone, "192.0.2.1", "badcidr.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_int_equal(run(zone, "192.0.2.1", "temp.test", "a@x", &o, NULL), SPF_TEMPERROR);
    assert_int_equal(run(zone, "192.0.2.1", "tmptxt.test", "a@x", &o, NULL), SPF_TEMPERROR);
    assert_int_equal(run(zone, "192.0.2.1", "incnone.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_int_equal(run(zone, "192.0.2.1", "localhost", "a@x", &o, NULL), SPF_NONE);
    assert_int_equal(run(zone, "not-an-ip", "ex.test", "a@x", &o, NULL), SPF_PERMERROR);
}

static void test_limits(void **state)
{
    (void)state;
    spf_out_t o;
    unsigned asked = 0;
    assert_int_equal(run(zone, "192.0.2.1", "loop.test", "a@x", &o, &asked), SPF_PERMERROR);
    assert_int_equal(o.lookups, 11);
    assert_string_equal(o.why, "loop.test: more than 10 DNS look-ups");
    assert_int_equal(asked, 1);   /* the one TXT answer, read again and again */
    /* the 11th DNS-querying term is over the limit even though it would match */
    assert_int_equal(run(zone, "203.0.113.99", "many.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_int_equal(o.lookups, 11);
    /* a:v1 and a:v2 have no answer (2 allowed), a:v3 is the third void */
    assert_int_equal(run(zone, "192.0.2.1", "voids.test", "a@x", &o, NULL), SPF_PERMERROR);
    assert_int_equal(o.void_lookups, 3);
}

static void test_macros_and_ptr(void **state)
{
    (void)state;
    spf_out_t o;
    assert_int_equal(run(zone, "192.0.2.1", "macro.test", "local-part@macro.test", &o, NULL),
                     SPF_PASS);
    assert_int_equal(run(zone, "192.0.2.2", "macro.test", "local-part@macro.test", &o, NULL),
                     SPF_FAIL);
    assert_int_equal(run(zone, "192.0.2.1", "ptr.test", "a@ptr.test", &o, NULL), SPF_PASS);
    assert_int_equal(run(zone, "192.0.2.3", "ptr.test", "a@ptr.test", &o, NULL), SPF_FAIL);
    assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_redirect_and_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_macros_and_ptr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
