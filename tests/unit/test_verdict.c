/* test_verdict.c - reasons, verdicts, score and rendering of results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "verdict/verdict.h"

static vd_result_t *valid_result(const char *email)
{
    vd_result_t *r = vd_result_new(email);
    assert_non_null(r);
    assert_int_equal(addr_parse(email, strlen(email), &r->addr), ADDR_OK);
    return r;
}

static void test_reason_table(void **state)
{
    (void)state;
    /* every reason has a name, a text and one of the four verdicts, names are unique */
    for (int i = 0; i < VR__COUNT; i++) {
        const char *n = vd_reason_name((vd_reason_t)i);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        assert_true(strlen(vd_reason_text((vd_reason_t)i)) > 10);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(n, vd_reason_name((vd_reason_t)k));
    }
    assert_int_equal(vd_reason_verdict(VR_ACCEPTED), VD_DELIVERABLE);
    assert_int_equal(vd_reason_verdict(VR_MAILBOX_ABSENT), VD_UNDELIVERABLE);
    assert_int_equal(vd_reason_verdict(VR_ACCEPT_ALL), VD_RISKY);
    assert_int_equal(vd_reason_verdict(VR_POLICY_BLOCKED), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(VR_DNS_FAILURE), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(VR_GREYLISTED), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(VR_UNROUTABLE_MX), VD_UNDELIVERABLE);
}

static void test_outcome_mapping(void **state)
{
    (void)state;
    assert_int_equal(vd_reason_from_outcome(CL_ACCEPTED), VR_ACCEPTED);
    assert_int_equal(vd_reason_from_outcome(CL_MAILBOX_ABSENT), VR_MAILBOX_ABSENT);
    assert_int_equal(vd_reason_from_outcome(CL_MAILBOX_FULL), VR_MAILBOX_FULL);
    assert_int_equal(vd_reason_from_outcome(CL_ANTI_ENUM), VR_ANTI_ENUMERATION);
    assert_int_equal(vd_reason_from_outcome(CL_RELAY_DENIED), VR_DOMAIN_NOT_SERVED);
    /* a 5xx that says nothing about the mailbox is never undeliverable */
    assert_int_equal(vd_reason_verdict(vd_reason_from_outcome(CL_PERM_OTHER)), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(vd_reason_from_outcome(CL_POLICY_BLOCKED)), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(vd_reason_from_outcome(CL_SENDER_REJECTED)), VD_UNKNOWN);
    /* smtp.result never says accepted unless the server accepted */
    for (int o = 0; o < CL__COUNT; o++)
        if (o != CL_ACCEPTED)
            assert_int_not_equal(vd_smtp_result_from_outcome((cl_outcome_t)o), VS_ACCEPTED);
    assert_int_equal(vd_smtp_result_from_outcome(CL_ANTI_ENUM), VS_UNAVAILABLE);
}

static void test_disposable_overrides_but_not_undeliverable(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("a@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    r->intel_done = true;
    r->intel.disposable = true;
    vd_finish(r, NULL);
    assert_int_equal(r->verdict, VD_RISKY);
    assert_int_equal(r->reason, VR_DISPOSABLE);
    vd_result_free(r);

    r = valid_result("a@example.com");
    vd_set(r, VR_MAILBOX_ABSENT, NULL);
    r->intel_done = true;
    r->intel.disposable = true;
    vd_finish(r, NULL);
    assert_int_equal(r->reason, VR_MAILBOX_ABSENT);
    assert_int_equal(r->verdict, VD_UNDELIVERABLE);
    vd_result_free(r);
}

static void test_role_risky_only_when_asked(void **state)
{
    (void)state;
    vd_opts_t o = {.role_risky = false};
    vd_result_t *r = valid_result("info@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    r->intel_done = true;
    r->intel.role = true;
    vd_finish(r, &o);
    assert_int_equal(r->reason, VR_ACCEPTED);
    int flagged_score = r->score;
    vd_result_free(r);

    o.role_risky = true;
    r = valid_result("info@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    r->intel_done = true;
    r->intel.role = true;
    vd_finish(r, &o);
    assert_int_equal(r->reason, VR_ROLE_ACCOUNT);
    assert_int_equal(r->verdict, VD_RISKY);
    assert_true(r->score <= flagged_score);
    vd_result_free(r);
}

static void test_score_monotone(void **state)
{
    (void)state;
    /* deliverable scores above every risky, risky above undeliverable; signals only lower */
    int min_deliv = 100, max_risky = 0, min_risky = 100, max_undeliv = 0;
    for (int i = 0; i < VR__COUNT; i++) {
        vd_result_t *r = valid_result("a@example.com");
        vd_set(r, (vd_reason_t)i, NULL);
        vd_finish(r, NULL);
        int s = r->score;
        assert_true(s >= 0 && s <= 100);
        switch (r->verdict) {
        case VD_DELIVERABLE: min_deliv = s < min_deliv ? s : min_deliv; break;
        case VD_RISKY:
            max_risky = s > max_risky ? s : max_risky;
            min_risky = s < min_risky ? s : min_risky;
            break;
        case VD_UNDELIVERABLE: max_undeliv = s > max_undeliv ? s : max_undeliv; break;
        case VD_UNKNOWN: break;
        }
        r->intel_done = true;
        r->intel.gibberish = true;
        r->intel.has_suggestion = true;
        assert_true(vd_score(r) <= s);
        vd_result_free(r);
    }
    assert_true(min_deliv > max_risky);
    assert_true(min_risky > max_undeliv);
}

static void test_json_fields(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("Alice@Example.COM");
    r->dns_checked = true;
    r->domain_exists = true;
    r->mx = calloc(1, sizeof *r->mx);
    r->nmx = 1;
    strcpy(r->mx[0].host, "mx.example.com");
    r->mx[0].pref = 10;
    strcpy(r->mx[0].ip[0], "192.0.2.1");
    r->mx[0].nip = 1;
    cl_result_t cl = {CL_MAILBOX_ABSENT, "enh:5.1.1", "no such user"};
    vd_set_reply(r, CL_STAGE_RCPT, 550, "5.1.1", "User unknown \xff\xfe", &cl);
    r->smtp_result = VS_REJECTED;
    vd_set(r, VR_MAILBOX_ABSENT, NULL);
    vd_add_line(r, "192.0.2.1", '>', 5, "RCPT TO:<Alice@example.com>");
    vd_finish(r, NULL);
    char *s = vd_to_json(r, true);
    assert_non_null(s);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "undeliverable");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "mailbox_absent");
    assert_string_equal(json_string_value(json_object_get(j, "normalized")), "Alice@example.com");
    json_t *smtp = json_object_get(j, "smtp");
    assert_int_equal(json_integer_value(json_object_get(smtp, "code")), 550);
    assert_string_equal(json_string_value(json_object_get(smtp, "enhanced")), "5.1.1");
    assert_string_equal(json_string_value(json_object_get(smtp, "result")), "rejected");
    assert_string_equal(json_string_value(json_object_get(smtp, "stage")), "rcpt");
    assert_true(json_is_null(json_object_get(smtp, "catch_all")));
    /* invalid UTF-8 from the wire is made printable, never dropped or fatal */
    assert_non_null(strstr(json_string_value(json_object_get(smtp, "message")), "User unknown"));
    json_t *mx = json_array_get(json_object_get(json_object_get(j, "domain"), "mx"), 0);
    assert_string_equal(json_string_value(json_object_get(mx, "host")), "mx.example.com");
    assert_int_equal(json_integer_value(json_object_get(mx, "pref")), 10);
    json_t *tr = json_object_get(j, "transcript");
    assert_int_equal(json_array_size(tr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tr, 0), "dir")), ">");
    json_decref(j);
    free(s);

    s = vd_to_json(r, false);
    j = json_loads(s, 0, &err);
    assert_null(json_object_get(j, "transcript"));
    json_decref(j);
    free(s);
    vd_result_free(r);
}

static void test_json_invalid_syntax(void **state)
{
    (void)state;
    vd_result_t *r = vd_result_new("not an address");
    addr_parse(r->email, strlen(r->email), &r->addr);
    vd_set(r, VR_INVALID_SYNTAX, "%s", addr_err_text(r->addr.err));
    vd_finish(r, NULL);
    char *s = vd_to_json(r, false);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    assert_non_null(j);
    json_t *syn = json_object_get(j, "syntax");
    assert_false(json_boolean_value(json_object_get(syn, "valid")));
    assert_string_equal(json_string_value(json_object_get(syn, "rule")), addr_err_rule(r->addr.err));
    assert_true(json_is_null(json_object_get(j, "normalized")));
    assert_int_equal(json_integer_value(json_object_get(j, "score")), 0);
    json_decref(j);
    free(s);
    vd_result_free(r);
}

/* ---- the renderer before issue 6: a jansson tree, then json_dumps. The direct writer
 * in render.c must give the same bytes. Only difference, on purpose: a string that is
 * not valid UTF-8 in a field that is not wire text used to make jansson drop the key
 * (json_string() returns NULL); now it is written with '?' like wire text. ---- */

static json_t *ref_str_or_null(const char *s)
{
    return (s && *s) ? json_string(s) : json_null();
}

static json_t *ref_wire(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        copy[i] = ((unsigned char)s[i] < 0x80) ? s[i] : '?';
    copy[n] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

static char *ref_to_json(const vd_result_t *r, bool with_transcript)
{
    json_t *o = json_object();
    bool valid = r->addr.err == ADDR_OK;
    json_object_set_new(o, "email", ref_wire(r->email));
    json_object_set_new(o, "normalized", valid ? ref_wire(r->addr.normalized) : json_null());
    json_object_set_new(o, "verdict", json_string(vd_verdict_name(r->verdict)));
    json_object_set_new(o, "reason", json_string(vd_reason_name(r->reason)));
    json_object_set_new(o, "reason_text", ref_wire(r->detail[0] ? r->detail
                                                                : vd_reason_text(r->reason)));
    json_object_set_new(o, "score", json_integer(r->score));
    json_t *fac = json_array();
    for (unsigned i = 0; i < r->nfactors; i++) {
        json_t *x = json_object();
        json_object_set_new(x, "factor", json_string(r->factors[i].factor));
        json_object_set_new(x, "points", json_integer(r->factors[i].points));
        json_array_append_new(fac, x);
    }
    json_object_set_new(o, "score_factors", fac);
    json_t *syn = json_object();
    json_object_set_new(syn, "valid", json_boolean(valid));
    json_object_set_new(syn, "local", valid ? ref_wire(r->addr.local) : json_null());
    json_object_set_new(syn, "domain", valid ? ref_wire(r->addr.domain) : json_null());
    json_object_set_new(syn, "domain_ascii", valid ? ref_wire(r->addr.domain_ascii) : json_null());
    json_object_set_new(syn, "utf8_local", json_boolean(valid && r->addr.local_utf8));
    json_object_set_new(syn, "rule", valid ? json_null() : json_string(addr_err_rule(r->addr.err)));
    json_object_set_new(o, "syntax", syn);
    json_t *dom = json_object();
    if (r->dns_checked) {
        json_object_set_new(dom, "exists", json_boolean(r->domain_exists));
        json_t *mxa = json_array();
        for (unsigned i = 0; i < r->nmx; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "host", ref_wire(r->mx[i].host));
            json_object_set_new(m, "pref", json_integer(r->mx[i].pref));
            json_t *ips = json_array();
            for (unsigned k = 0; k < r->mx[i].nip; k++)
                json_array_append_new(ips, json_string(r->mx[i].ip[k]));
            json_object_set_new(m, "ips", ips);
            json_array_append_new(mxa, m);
        }
        json_object_set_new(dom, "mx", mxa);
        json_object_set_new(dom, "null_mx", json_boolean(r->null_mx));
        json_object_set_new(dom, "implicit_mx", json_boolean(r->implicit_mx));
        json_object_set_new(dom, "spf", json_boolean(r->spf));
        json_object_set_new(dom, "dmarc", json_boolean(r->dmarc));
    } else {
        json_object_set_new(dom, "exists", json_null());
        json_object_set_new(dom, "mx", json_array());
        json_object_set_new(dom, "null_mx", json_null());
        json_object_set_new(dom, "implicit_mx", json_null());
        json_object_set_new(dom, "spf", json_null());
        json_object_set_new(dom, "dmarc", json_null());
    }
    json_object_set_new(dom, "provider", ref_str_or_null(r->provider));
    json_object_set_new(dom, "gateway", json_boolean(r->gateway));
    json_object_set_new(o, "domain", dom);
    json_t *smtp = json_object();
    json_object_set_new(smtp, "result", json_string(vd_smtp_result_name(r->smtp_result)));
    json_object_set_new(smtp, "code", r->has_reply ? json_integer(r->code) : json_null());
    json_object_set_new(smtp, "enhanced", r->has_reply ? ref_str_or_null(r->enhanced) : json_null());
    json_object_set_new(smtp, "message", r->has_reply ? ref_wire(r->message) : json_null());
    json_object_set_new(smtp, "stage", ref_str_or_null(r->stage));
    json_object_set_new(smtp, "rule", ref_str_or_null(r->rule));
    json_object_set_new(smtp, "catch_all", r->catch_all < 0 ? json_null()
                                                            : json_boolean(r->catch_all));
    if (r->probed) {
        json_t *pr = json_object();
        json_object_set_new(pr, "rcpt", ref_wire(r->probe_rcpt));
        json_object_set_new(pr, "code", json_integer(r->probe_code));
        json_object_set_new(pr, "enhanced", ref_str_or_null(r->probe_enh));
        json_object_set_new(pr, "message", ref_wire(r->probe_text));
        json_object_set_new(pr, "cached", json_boolean(r->probe_cached));
        json_object_set_new(smtp, "probe", pr);
    } else {
        json_object_set_new(smtp, "probe", json_null());
    }
    json_object_set_new(smtp, "mx_host", ref_str_or_null(r->mx_host));
    json_object_set_new(smtp, "mx_ip", ref_str_or_null(r->mx_ip));
    json_object_set_new(smtp, "egress", ref_str_or_null(r->egress));
    json_object_set_new(smtp, "tls", json_boolean(r->tls));
    json_object_set_new(smtp, "tls_verified", json_boolean(r->tls_verified));
    json_object_set_new(smtp, "attempts", json_integer(r->attempts));
    json_object_set_new(smtp, "round_trips", json_integer(r->round_trips));
    if (r->has_geo) {
        json_t *g = json_object();
        json_object_set_new(g, "country_code", ref_str_or_null(r->geo.country_code));
        json_object_set_new(g, "country", ref_str_or_null(r->geo.country));
        json_object_set_new(g, "city", ref_str_or_null(r->geo.city));
        json_object_set_new(g, "asn", r->geo.asn ? json_integer(r->geo.asn) : json_null());
        json_object_set_new(g, "as_org", ref_str_or_null(r->geo.as_org));
        json_object_set_new(g, "isp", ref_str_or_null(r->geo.isp));
        json_object_set_new(smtp, "mx_geo", g);
    } else {
        json_object_set_new(smtp, "mx_geo", json_null());
    }
    json_object_set_new(o, "smtp", smtp);
    json_t *fl = json_object();
    json_object_set_new(fl, "disposable", json_boolean(r->intel.disposable));
    json_object_set_new(fl, "free", json_boolean(r->intel.free));
    json_object_set_new(fl, "role", json_boolean(r->intel.role));
    json_object_set_new(fl, "gibberish", json_boolean(r->intel.gibberish));
    json_object_set_new(fl, "gibberish_score", json_real(r->intel.gibberish_score));
    json_object_set_new(o, "flags", fl);
    json_object_set_new(o, "suggestion",
                        r->intel.has_suggestion ? ref_wire(r->intel.suggestion) : json_null());
    json_object_set_new(o, "list_match", ref_str_or_null(r->list_match));
    json_object_set_new(o, "duration_ms", json_integer((json_int_t)r->duration_ms));
    if (with_transcript) {
        json_t *tr = json_array();
        for (unsigned i = 0; i < r->nlines; i++) {
            const vd_line_t *l = &r->lines[i];
            json_t *e = json_object();
            char dir[2] = {l->dir, '\0'};
            json_object_set_new(e, "ip", json_string(l->ip));
            json_object_set_new(e, "dir", json_string(dir));
            json_object_set_new(e, "t_ms", json_integer((json_int_t)l->t_ms));
            json_object_set_new(e, "line", ref_wire(l->line));
            json_array_append_new(tr, e);
        }
        json_object_set_new(o, "transcript", tr);
    }
    char *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return out;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((rnd_state >> 33) % n);
}

/* Text made of awkward pieces; with bad, possibly not valid UTF-8. */
static void rnd_text(char *out, size_t size, bool bad)
{
    static const char *const good[] = {
        "", "a", "Mailbox", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f", "\x01", "\x1f",
        "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "550 5.1.1 <x@y>", "{}[],:"};
    static const char *const evil[] = {"\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf",
                                       "\xf4\x90\x80\x80", "\xe2\x82", "\x80"};
    size_t pos = 0;
    out[0] = '\0';
    for (unsigned k = rnd(7); k > 0; k--) {
        const char *p = bad && rnd(4) == 0 ? evil[rnd(sizeof evil / sizeof evil[0])]
                                           : good[rnd(sizeof good / sizeof good[0])];
        size_t n = strlen(p);
        if (pos + n + 1 > size)
            break;
        memcpy(out + pos, p, n + 1);
        pos += n;
    }
}

static vd_result_t *rnd_result(void)
{
    static const char *const factors[] = {"accepted", "role", "catch_all_untested", "free"};
    static const char *const stages[] = {"rcpt", "mail", "banner"};
    static const double reals[] = {0, 1, 0.5, 0.1, 1.0 / 3, 0.14285714285714285, 1e-7,
                                   1e-300, 123456789012345678.0, -0.0, 2.5e-5};
    char email[128];
    rnd_text(email, sizeof email, true);
    vd_result_t *r = vd_result_new(email);
    assert_non_null(r);
    r->addr.err = rnd(3) ? ADDR_OK : (addr_err_t)(1 + rnd(ADDR_ERR__COUNT - 1));
    rnd_text(r->addr.local, sizeof r->addr.local, true);
    rnd_text(r->addr.domain, sizeof r->addr.domain, true);
    rnd_text(r->addr.domain_ascii, sizeof r->addr.domain_ascii, true);
    rnd_text(r->addr.normalized, sizeof r->addr.normalized, true);
    r->addr.local_utf8 = rnd(2);
    r->reason = (vd_reason_t)rnd(VR__COUNT);
    r->verdict = vd_reason_verdict(r->reason);
    r->score = (int)rnd(101) - (rnd(10) == 0 ? 1000 : 0);
    if (rnd(2))
        rnd_text(r->detail, sizeof r->detail, true);
    r->nfactors = rnd(4);
    for (unsigned i = 0; i < r->nfactors; i++) {
        r->factors[i].factor = factors[rnd(4)];
        r->factors[i].points = (int)rnd(200) - 100;
    }
    r->dns_checked = rnd(2);
    r->domain_exists = rnd(2);
    r->nmx = rnd(4);
    r->mx = r->nmx ? calloc(r->nmx, sizeof *r->mx) : NULL;
    for (unsigned i = 0; i < r->nmx; i++) {
        rnd_text(r->mx[i].host, sizeof r->mx[i].host, true);
        r->mx[i].pref = rnd(70000);
        r->mx[i].nip = rnd(4);
        for (unsigned k = 0; k < r->mx[i].nip; k++)
            rnd_text(r->mx[i].ip[k], sizeof r->mx[i].ip[k], false);
    }
    r->null_mx = rnd(2);
    r->implicit_mx = rnd(2);
    r->spf = rnd(2);
    r->dmarc = rnd(2);
    r->provider = rnd(2) ? "Google \"Workspace\"" : NULL;
    r->gateway = rnd(2);
    r->smtp_result = (vd_smtp_result_t)rnd(4);
    r->has_reply = rnd(2);
    r->code = (int)rnd(600);
    rnd_text(r->enhanced, sizeof r->enhanced, false);
    rnd_text(r->message, sizeof r->message, true);
    r->stage = rnd(2) ? stages[rnd(3)] : NULL;
    r->rule = rnd(2) ? "rule:\x01x" : NULL;
    r->catch_all = (int)rnd(3) - 1;
    r->probed = rnd(2);
    r->probe_cached = rnd(2);
    rnd_text(r->probe_rcpt, sizeof r->probe_rcpt, true);
    r->probe_code = (int)rnd(600);
    rnd_text(r->probe_enh, sizeof r->probe_enh, false);
    rnd_text(r->probe_text, sizeof r->probe_text, true);
    rnd_text(r->mx_host, sizeof r->mx_host, false);
    rnd_text(r->mx_ip, sizeof r->mx_ip, false);
    rnd_text(r->egress, sizeof r->egress, false);
    r->tls = rnd(2);
    r->tls_verified = rnd(2);
    r->attempts = rnd(5);
    r->round_trips = rnd(100);
    r->has_geo = rnd(2);
    rnd_text(r->geo.country_code, sizeof r->geo.country_code, false);
    rnd_text(r->geo.country, sizeof r->geo.country, false);
    rnd_text(r->geo.city, sizeof r->geo.city, false);
    r->geo.asn = rnd(2) ? rnd(70000) : 0;
    rnd_text(r->geo.as_org, sizeof r->geo.as_org, false);
    rnd_text(r->geo.isp, sizeof r->geo.isp, false);
    r->intel.disposable = rnd(2);
    r->intel.free = rnd(2);
    r->intel.role = rnd(2);
    r->intel.gibberish = rnd(2);
    r->intel.gibberish_score = reals[rnd(sizeof reals / sizeof reals[0])] * (rnd(5) ? 1 : -1);
    r->intel.has_suggestion = rnd(2);
    rnd_text(r->intel.suggestion, sizeof r->intel.suggestion, true);
    rnd_text(r->list_match, sizeof r->list_match, false);
    r->duration_ms = rnd(2) ? rnd(100000) : UINT64_MAX - rnd(10);
    for (unsigned i = rnd(4); i > 0; i--) {
        char ip[64], line[128];
        rnd_text(ip, sizeof ip, false);
        rnd_text(line, sizeof line, true);
        vd_add_line(r, ip, rnd(3) ? (rnd(2) ? '>' : '<') : '\0', rnd(100000), line);
    }
    return r;
}

static void test_json_same_as_jansson(void **state)
{
    (void)state;
    for (int i = 0; i < 20000; i++) {
        vd_result_t *r = rnd_result();
        for (int t = 0; t < 2; t++) {
            char *got = vd_to_json(r, t), *want = ref_to_json(r, t);
            assert_non_null(got);
            assert_non_null(want);
            if (strcmp(got, want) != 0)
                fail_msg("result %d differs:\n got  %s\n want %s", i, got, want);
            json_error_t err; /* and it parses */
            json_t *j = json_loads(got, 0, &err);
            assert_non_null(j);
            json_decref(j);
            free(got);
            free(want);
        }
        vd_result_free(r);
    }
}

/* Not valid UTF-8 where jansson would have dropped the key: now '?' and the key kept. */
static void test_json_bad_utf8_everywhere(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("a@example.com");
    strcpy(r->mx_host, "mx\xff.example.com");
    r->has_geo = true;
    strcpy(r->geo.city, "K\xf6ln");
    char *s = vd_to_json(r, false);
    assert_non_null(strstr(s, "\"mx_host\":\"mx?.example.com\""));
    assert_non_null(strstr(s, "\"city\":\"K?ln\""));
    free(s);
    vd_result_free(r);
}

/* U+2028 and U+2029 leave as escapes (JSON allows them raw; JavaScript before ES2019
 * does not), valid UTF-8 around them untouched. */
static void test_json_line_separators(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("a@example.com");
    strcpy(r->mx_host, "K\xc3\xb6ln\xe2\x80\xa8x\xe2\x80\xa9y");
    char *s = vd_to_json(r, false);
    assert_non_null(strstr(s, "\"mx_host\":\"K\xc3\xb6ln\\u2028x\\u2029y\""));
    assert_null(strstr(s, "\xe2\x80\xa8"));
    free(s);
    vd_result_free(r);
}

static void test_human(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("bob@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    strcpy(r->mx_host, "mx.example.com");
    strcpy(r->mx_ip, "192.0.2.1");
    cl_result_t cl = {CL_ACCEPTED, "code:250", "accepted"};
    vd_set_reply(r, CL_STAGE_RCPT, 250, "2.1.5", "Ok", &cl);
    vd_finish(r, NULL);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vd_print_human(r, f, false);
    fclose(f);
    assert_non_null(strstr(buf, "bob@example.com: deliverable (accepted)"));
    assert_non_null(strstr(buf, "MX: mx.example.com [192.0.2.1]"));
    assert_non_null(strstr(buf, "250 2.1.5 Ok"));
    assert_null(strchr(buf, '\033')); /* no colour when not asked */
    free(buf);
    vd_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_table),
        cmocka_unit_test(test_outcome_mapping),
        cmocka_unit_test(test_disposable_overrides_but_not_undeliverable),
        cmocka_unit_test(test_role_risky_only_when_asked),
        cmocka_unit_test(test_score_monotone),
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_invalid_syntax),
        cmocka_unit_test(test_json_same_as_jansson),
        cmocka_unit_test(test_json_line_separators),
        cmocka_unit_test(test_json_bad_utf8_everywhere),
        cmocka_unit_test(test_human),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
