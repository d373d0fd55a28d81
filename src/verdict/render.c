/*
 * render.c - a result as one JSON object (the design's result format) or as text for
 * people. See verdict.h.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "verdict/verdict.h"

static json_t *str_or_null(const char *s)
{
    return (s && *s) ? json_string(s) : json_null();
}

/* jansson refuses invalid UTF-8; wire text from a hostile server may be anything. */
static json_t *wire_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return json_string("");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        copy[i] = (c < 0x80) ? (char)c : '?';
    }
    copy[n] = '\0';
    j = json_string(copy);
    free(copy);
    return j ? j : json_string("");
}

char *vd_to_json(const vd_result_t *r, bool with_transcript)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool valid = r->addr.err == ADDR_OK;
    json_object_set_new(o, "email", wire_string(r->email));
    json_object_set_new(o, "normalized", valid ? wire_string(r->addr.normalized) : json_null());
    json_object_set_new(o, "verdict", json_string(vd_verdict_name(r->verdict)));
    json_object_set_new(o, "reason", json_string(vd_reason_name(r->reason)));
    json_object_set_new(o, "reason_text", wire_string(r->detail[0] ? r->detail
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
    json_object_set_new(syn, "local", valid ? wire_string(r->addr.local) : json_null());
    json_object_set_new(syn, "domain", valid ? wire_string(r->addr.domain) : json_null());
    json_object_set_new(syn, "domain_ascii", valid ? wire_string(r->addr.domain_ascii)
                                                   : json_null());
    json_object_set_new(syn, "utf8_local", json_boolean(valid && r->addr.local_utf8));
    json_object_set_new(syn, "rule", valid ? json_null() : json_string(addr_err_rule(r->addr.err)));
    json_object_set_new(o, "syntax", syn);

    json_t *dom = json_object();
    if (r->dns_checked) {
        json_object_set_new(dom, "exists", json_boolean(r->domain_exists));
        json_t *mxa = json_array();
        for (unsigned i = 0; i < r->nmx; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "host", wire_string(r->mx[i].host));
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
    json_object_set_new(dom, "provider", str_or_null(r->provider));
    json_object_set_new(dom, "gateway", json_boolean(r->gateway));
    json_object_set_new(o, "domain", dom);

    json_t *smtp = json_object();
    json_object_set_new(smtp, "result", json_string(vd_smtp_result_name(r->smtp_result)));
    json_object_set_new(smtp, "code", r->has_reply ? json_integer(r->code) : json_null());
    json_object_set_new(smtp, "enhanced", r->has_reply ? str_or_null(r->enhanced) : json_null());
    json_object_set_new(smtp, "message", r->has_reply ? wire_string(r->message) : json_null());
    json_object_set_new(smtp, "stage", str_or_null(r->stage));
    json_object_set_new(smtp, "rule", str_or_null(r->rule));
    json_object_set_new(smtp, "catch_all", r->catch_all < 0 ? json_null()
                                                            : json_boolean(r->catch_all));
    if (r->probed) {
        json_t *pr = json_object();
        json_object_set_new(pr, "rcpt", wire_string(r->probe_rcpt));
        json_object_set_new(pr, "code", json_integer(r->probe_code));
        json_object_set_new(pr, "enhanced", str_or_null(r->probe_enh));
        json_object_set_new(pr, "message", wire_string(r->probe_text));
        json_object_set_new(pr, "cached", json_boolean(r->probe_cached));
        json_object_set_new(smtp, "probe", pr);
    } else {
        json_object_set_new(smtp, "probe", json_null());
    }
    json_object_set_new(smtp, "mx_host", str_or_null(r->mx_host));
    json_object_set_new(smtp, "mx_ip", str_or_null(r->mx_ip));
    json_object_set_new(smtp, "tls", json_boolean(r->tls));
    json_object_set_new(smtp, "tls_verified", json_boolean(r->tls_verified));
    json_object_set_new(smtp, "attempts", json_integer(r->attempts));
    json_object_set_new(smtp, "round_trips", json_integer(r->round_trips));
    if (r->has_geo) {
        json_t *g = json_object();
        json_object_set_new(g, "country_code", str_or_null(r->geo.country_code));
        json_object_set_new(g, "country", str_or_null(r->geo.country));
        json_object_set_new(g, "city", str_or_null(r->geo.city));
        json_object_set_new(g, "asn", r->geo.asn ? json_integer(r->geo.asn) : json_null());
        json_object_set_new(g, "as_org", str_or_null(r->geo.as_org));
        json_object_set_new(g, "isp", str_or_null(r->geo.isp));
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
                        r->intel.has_suggestion ? wire_string(r->intel.suggestion) : json_null());
    json_object_set_new(o, "list_match", str_or_null(r->list_match));
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
            json_object_set_new(e, "line", wire_string(l->line));
            json_array_append_new(tr, e);
        }
        json_object_set_new(o, "transcript", tr);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static const char *verdict_colour(vd_verdict_t v)
{
    switch (v) {
    case VD_DELIVERABLE: return "\033[32m";
    case VD_UNDELIVERABLE: return "\033[31m";
    case VD_RISKY: return "\033[33m";
    case VD_UNKNOWN: return "\033[35m";
    }
    return "";
}

/* Print wire text on one line, control characters made visible. */
static void print_oneline(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs(" / ", out);
        else if (c < 0x20 || c == 0x7f)
            fputc('?', out);
        else
            fputc(c, out);
    }
}

void vd_print_human(const vd_result_t *r, FILE *out, bool colour)
{
    const char *on = colour ? verdict_colour(r->verdict) : "";
    const char *bold = colour ? "\033[1m" : "";
    const char *off = colour ? "\033[0m" : "";
    fprintf(out, "%s", bold);
    print_oneline(out, r->email);
    fprintf(out, "%s: %s%s%s (%s), score %d\n", off, on, vd_verdict_name(r->verdict), off,
            vd_reason_name(r->reason), r->score);
    fputs("  ", out);
    print_oneline(out, r->detail[0] ? r->detail : vd_reason_text(r->reason));
    fputc('\n', out);
    if (r->mx_host[0] || r->mx_ip[0])
        fprintf(out, "  MX: %s [%s]%s\n", r->mx_host, r->mx_ip, r->tls ? " (TLS)" : "");
    else if (r->dns_checked && r->nmx)
        fprintf(out, "  MX: %s (pref %u)%s\n", r->mx[0].host, r->mx[0].pref,
                r->implicit_mx ? " (implicit: the domain's own address)" : "");
    if (r->provider)
        fprintf(out, "  Provider: %s%s\n", r->provider, r->gateway ? " (security gateway)" : "");
    if (r->has_geo && (r->geo.country_code[0] || r->geo.asn))
        fprintf(out, "  MX location: %s%s%s, AS%u %s\n", r->geo.city, r->geo.city[0] ? ", " : "",
                r->geo.country_code, r->geo.asn, r->geo.as_org);
    if (r->has_reply) {
        fprintf(out, "  Reply to %s: %d%s%s ", r->stage ? r->stage : "?", r->code,
                r->enhanced[0] ? " " : "", r->enhanced);
        print_oneline(out, r->message);
        fputc('\n', out);
    }
    if (r->probed) {
        fprintf(out, "  Catch-all probe%s: %d%s%s ", r->probe_cached ? " (cached)" : "",
                r->probe_code, r->probe_enh[0] ? " " : "", r->probe_enh);
        print_oneline(out, r->probe_text);
        fprintf(out, " -> %s\n", r->catch_all == 1 ? "accepts any address"
                                  : r->catch_all == 0 ? "rejects unknown addresses"
                                                      : "inconclusive");
    }
    if (r->intel_done) {
        const intel_t *in = &r->intel;
        if (in->disposable || in->free || in->role || in->gibberish)
            fprintf(out, "  Flags:%s%s%s%s\n", in->disposable ? " disposable" : "",
                    in->free ? " free-provider" : "", in->role ? " role" : "",
                    in->gibberish ? " gibberish" : "");
        if (in->has_suggestion) {
            fputs("  Did you mean: ", out);
            print_oneline(out, in->suggestion);
            fputs("?\n", out);
        }
    }
    if (r->list_match[0])
        fprintf(out, "  Matched: %s\n", r->list_match);
}
