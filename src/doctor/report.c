/*
 * report.c - what a doctor run found, judged: each check's level (ok, warn, FAIL, skip),
 * one line of what was found, one of what to do, and detail lines. Pure over the run's
 * state (doctor_int.h): no I/O. The levels are tabled in the README.
 */
#include <string.h>

#include "doctor/doctor.h"
#include "doctor/doctor_int.h"
#include "util/str.h"

/* ---- the report ------------------------------------------------------------------------- */

static void level_raise(doc_check_t *c, doc_level_t l)
{
    if (c->level == DOC_SKIP || l > c->level)
        c->level = l;
}

static void report_config(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_CONFIG];
    char why[DOC_TEXT_MAX], fix[DOC_TEXT_MAX];
    doc_level_t l = doc_helo_judge(r->rep.helo, why, sizeof why, fix, sizeof fix);
    c->level = l;
    if (r->rep.helo_defaulted)
        doc_text_put(c->message, "HELO %s (the forward-confirmed PTR of %s; no --helo given)",
                     r->rep.helo, r->rep.egress);
    else
        doc_text_put(c->message, "%s", why);
    if (l != DOC_OK)
        doc_text_put(c->fix, "%s", fix);
    if (!r->o.helo && r->has_proxy) {
        level_raise(c, DOC_WARN);
        doc_detail_add(c, "no HELO given for the proxy (socks5://...=HELO) nor --helo: the "
                          "HELO falls back to this host's name, '%s'", r->rep.helo);
        if (!c->fix[0])
            doc_text_put(c->fix, "give the proxy its HELO name (--proxy socks5://...=NAME), a "
                                 "name whose A record is the proxy's public address");
    } else if (!r->o.helo && !r->rep.helo_defaulted) {
        level_raise(c, DOC_WARN);
        doc_detail_add(c,
                       "no --helo and no forward-confirmed PTR for %s: the HELO falls back to "
                       "this host's name, '%s'",
                       r->rep.egress[0] ? r->rep.egress : "the egress address", r->rep.helo);
        if (!c->fix[0])
            doc_text_put(c->fix,
                         "set --helo to a name whose A record is the egress address, and get "
                         "the address's PTR set to it");
    }
    if (!r->rep.from[0]) {
        level_raise(c, DOC_WARN);
        doc_detail_add(c,
                       "MAIL FROM is the null sender <>: some servers (Microsoft 365 among them, "
                       "by one vendor's account) refuse recipient checks from it");
        if (!c->fix[0])
            doc_text_put(c->fix,
                         "set --from to an address of a domain you control, with MX and SPF");
    } else {
        const char *at = strrchr(r->rep.from, '@');
        doc_detail_add(c, "MAIL FROM <%s>", r->rep.from);
        if (at && doc_name_is_provider(at + 1)) {
            level_raise(c, DOC_WARN);
            doc_detail_add(c, "MAIL FROM at %s: that provider's SPF does not cover this host",
                           at + 1);
            if (!c->fix[0])
                doc_text_put(c->fix, "use a MAIL FROM of a domain whose SPF you control");
        }
    }
}

/* Did this connection get past the proxy's methods and authentication (the proxy then
 * answered, or is waiting for, our CONNECT request)? */
static bool conn_past_auth(const conn_t *k)
{
    return k->tunnel || (k->proxy_up && k->socks.state == SOCKS5_ST_REPLY) ||
           k->socks.err == SOCKS5_E_REP || k->socks.err == SOCKS5_E_ATYP;
}

/* The connection that tells best how the proxy itself did: one past authentication,
 * else the first that failed on the proxy's account; NULL when none was tried. */
static const conn_t *proxy_witness(const doc_run_t *r, bool *ok)
{
    const conn_t *bad = NULL;
    *ok = false;
    for (size_t i = 0; i <= r->nconns; i++) {
        const conn_t *k = i < r->nconns ? r->conns[i] : r->ehlo;
        if (!k)
            continue;
        if (conn_past_auth(k)) {
            *ok = true;
            return k;
        }
        if (!bad && k->res == C_PROXY)
            bad = k;
    }
    return bad;
}

/* What to do about a proxy that failed, by the step that failed (RFC 1928 §3, RFC 1929). */
static void proxy_fix(const doc_run_t *r, const conn_t *k, char *fix)
{
    if (!k->proxy_up) {
        doc_text_put(fix, "the proxy does not accept connections: start it, or correct "
                          "HOST:PORT in --proxy (a firewall on the way may drop them)");
        return;
    }
    switch (k->socks.err) {
    case SOCKS5_E_AUTH:
        doc_text_put(fix, "correct USER:PASS in --proxy (%%-encode ':', '@' and '%%' in them), "
                          "or ask the proxy's operator to let user '%s' in",
                     r->proxy.user);
        break;
    case SOCKS5_E_NO_METHOD:
        if (r->proxy.user[0])
            doc_text_put(fix, "the proxy takes neither no authentication nor user/password "
                              "(RFC 1928 method X'FF'): mailprobe offers only these two; use "
                              "a proxy that accepts one of them");
        else
            doc_text_put(fix, "give the proxy's user name and password: socks5://USER:PASS@"
                              "HOST:PORT (RFC 1929)");
        break;
    case SOCKS5_E_VERSION:
        doc_text_put(fix, "this address does not answer as a SOCKS5 server (RFC 1928 version "
                          "5): check the port; a SOCKS4 or HTTP proxy does not do");
        break;
    case SOCKS5_E_METHOD:
        doc_text_put(fix, "the proxy chose a method mailprobe did not offer (RFC 1928 §3): it "
                          "is broken or not SOCKS5; use another");
        break;
    default:
        doc_text_put(fix, "the proxy does not complete the SOCKS5 handshake: check that it "
                          "is a SOCKS5 server, and its logs");
        break;
    }
}

/* Check 2 through a proxy: the proxy itself, and the public address the EHLO's server
 * echoed (the only view of it a proxy run has). */
static void report_egress_proxy(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_EGRESS];
    bool ok;
    const conn_t *k = proxy_witness(r, &ok);
    doc_detail_add(c, "local address towards the proxy: %s",
                   r->rep.local_addr[0] ? r->rep.local_addr : "unknown");
    if (!k) {
        c->level = DOC_WARN;
        doc_text_put(c->message, "SOCKS5 proxy %s not tried: no reference MX address to ask "
                                 "it for", r->proxy.name);
        doc_text_put(c->fix, "see check 3");
        return;
    }
    if (!ok) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "SOCKS5 proxy %s: %s%s", r->proxy.name, k->err,
                     k->socks.err == SOCKS5_E_AUTH ? " (RFC 1929 authentication failed)" : "");
        proxy_fix(r, k, c->fix);
        return;
    }
    const char *hs = r->proxy.user[0] ? "handshake and authentication (RFC 1929) ok"
                                      : "handshake ok (no authentication)";
    conn_t *e = r->ehlo;
    if (r->rep.public_addr[0]) {
        c->level = DOC_OK;
        doc_text_put(c->message, "SOCKS5 proxy %s: %s; public address %s (echoed by %s)",
                     r->proxy.name, hs, r->rep.public_addr, e ? e->ref->host : "?");
        return;
    }
    c->level = DOC_WARN;
    doc_text_put(c->message, "SOCKS5 proxy %s: %s; its public address is unknown: %s",
                 r->proxy.name, hs,
                 e && e->have_banner ? "the reference MX does not echo the client address"
                                     : "no EHLO got through it (check 8)");
    doc_text_put(c->fix,
                 "reverse DNS, HELO, SPF and blocklist checks need the address servers see: "
                 "give a reference MX that echoes the client address (Exim does; "
                 "--reference-mx), or ask the proxy's operator for its outgoing address");
}

static void report_egress(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_EGRESS];
    if (r->has_proxy) {
        report_egress_proxy(r);
        return;
    }
    c->level = DOC_OK;
    const char *loc = r->rep.local_addr[0] ? r->rep.local_addr : "unknown";
    if (r->rep.public_addr[0]) {
        bool nat = r->rep.local_addr[0] && !doc_addr_same(r->rep.local_addr, r->rep.public_addr);
        doc_text_put(
            c->message, "public %s, local %s%s", r->rep.public_addr, loc,
            nat ? (doc_addr_is_private(r->rep.local_addr) ? " (private: behind NAT)" : " (NAT)")
                : "");
    } else if (!r->myip) {
        c->level = doc_addr_is_private(loc) || !r->rep.local_addr[0] ? DOC_WARN : DOC_OK;
        doc_text_put(c->message, "local %s; public address not looked up (--myip-dns none)", loc);
        if (c->level == DOC_WARN)
            doc_text_put(c->fix,
                         "a private or unknown address is not what servers see: give a myip "
                         "server (--myip-dns) or the public address (--source)");
    } else {
        c->level = DOC_WARN;
        doc_text_put(c->message,
                     "public address not found through DNS (%s at %s: %s); using the "
                     "local address %s",
                     r->o.myip_name, r->o.myip_dns, dns_status_name(r->myip_st), loc);
        doc_text_put(c->fix,
                     "let DNS queries reach %s, or name another server that answers with "
                     "the client's address (--myip-dns, --myip-name)",
                     r->o.myip_dns);
        if (r->rep.local_addr[0] && doc_addr_is_private(r->rep.local_addr))
            doc_detail_add(c,
                           "%s is private: this host is behind NAT, and the checks below judge "
                           "an address the internet does not see",
                           r->rep.local_addr);
    }
}

static void report_port25(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_PORT25];
    size_t ok4 = 0, ok6 = 0, tried4 = 0, tried6 = 0, bad6 = 0, n = 0;
    unsigned ntimeout = 0, nrefused = 0, nreset = 0, ndenied = 0;
    bool proxy_ok = true;
    if (r->has_proxy && proxy_witness(r, &proxy_ok) && !proxy_ok) {
        c->level = DOC_SKIP;
        doc_text_put(c->message, "not checked: the SOCKS5 proxy failed (check 2)");
        return;
    }
    const char *via = r->has_proxy ? " through the proxy" : "";
    for (size_t i = 0; i < r->o.nreference_mx; i++) {
        ref_t *ref = &r->ref[i];
        if (!ref->host[0]) {
            doc_detail_add(c, "%s: not HOST[:PORT]", r->o.reference_mx[i]);
            continue;
        }
        if (!ref->ip4[0] && !ref->ip6[0]) {
            doc_detail_add(c, "%s: no address (A %s, AAAA %s)", ref->host,
                           dns_status_name(ref->st4), dns_status_name(ref->st6));
            continue;
        }
        for (int v6 = 0; v6 < 2; v6++) {
            const char *ip = v6 ? ref->ip6 : ref->ip4;
            conn_res_t cr = v6 ? ref->c6 : ref->c4;
            if (!ip[0])
                continue;
            n++;
            const char *err = "";
            for (size_t k = 0; k < r->nconns; k++)
                if (r->conns[k]->ref == ref && r->conns[k]->v6 == (v6 != 0))
                    err = r->conns[k]->err;
            doc_detail_add(c, "%s [%s]:%u %s%s%s%s", ref->host, ip, ref->port,
                           doc_conn_res_name(cr), err[0] && cr != C_OK ? " (" : "",
                           cr != C_OK ? err : "", err[0] && cr != C_OK ? ")" : "");
            if (v6) {
                tried6++;
                ok6 += cr == C_OK;
                bad6 += cr != C_OK && cr != C_UNREACHABLE;
            } else {
                tried4++;
                ok4 += cr == C_OK;
            }
            ntimeout += cr == C_TIMEOUT;
            nrefused += cr == C_REFUSED;
            nreset += cr == C_RESET;
            ndenied += cr == C_DENIED;
        }
    }
    if (ok4 + ok6 > 0) {
        c->level = (tried4 > ok4 || bad6 > 0) ? DOC_WARN : DOC_OK;
        doc_text_put(c->message,
                     "port 25 reachable%s: %zu of %zu addresses (IPv4 %zu/%zu, IPv6 %zu/%zu)",
                     via, ok4 + ok6, n, ok4, tried4, ok6, tried6);
        if (c->level == DOC_WARN)
            doc_text_put(c->fix, "some reference MX did not answer: see the lines below; a family "
                                 "that never connects is blocked or has no route");
        return;
    }
    c->level = DOC_FAIL;
    if (n == 0) {
        doc_text_put(c->message, "no reference MX address to try");
        doc_text_put(c->fix,
                     "check the resolver (--dns) and the reference MX list (--reference-mx)");
        return;
    }
    if (r->has_proxy) {
        doc_text_put(c->message,
                     "port 25 unreachable through the proxy: %u timeout, %u refused by the "
                     "server, %u refused by the proxy of %zu",
                     ntimeout, nrefused, ndenied, n);
        if (ndenied)
            doc_text_put(c->fix,
                         "the proxy refuses the connections itself (its rules: REP 2 \"not "
                         "allowed by ruleset\" is what providers that block port 25 answer): "
                         "ask its operator to allow port 25, or use another proxy");
        else
            doc_text_put(c->fix,
                         "the proxy's network %s outbound port 25: use a SOCKS5 proxy on a host "
                         "with port 25 open (ports 587/465 do not help: a receiving MX only "
                         "listens on 25)",
                         ntimeout >= nrefused ? "filters" : "refuses");
        return;
    }
    doc_text_put(c->message, "port 25 unreachable: %u timeout, %u refused, %u reset of %zu",
                 ntimeout, nrefused, nreset, n);
    doc_text_put(c->fix,
                 "outbound port 25 is %s. Ports 587/465 do not help: they are for "
                 "submitting mail with an account, a receiving MX only listens on 25. "
                 "Run mailprobe on a host with port 25 open (many VPS providers unblock it "
                 "on request) or through a SOCKS5 proxy on such a host",
                 ntimeout >= nrefused + nreset
                     ? "filtered (timeouts: a provider or firewall drops it)"
                     : "refused or reset on the way (a firewall answers "
                       "for the servers)");
}

static void report_rdns(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_RDNS];
    const char *ip = r->rep.egress;
    if (!ip[0]) {
        c->level = DOC_WARN;
        doc_text_put(c->message, r->has_proxy
                                     ? "the proxy's public address is unknown: reverse DNS not "
                                       "checked"
                                     : "no egress address found: reverse DNS not checked");
        doc_text_put(c->fix, r->has_proxy ? "see check 2" : "see check 2 (or give --source)");
        return;
    }
    for (size_t i = 0; i < r->nptr; i++)
        doc_detail_add(c, "PTR %s -> %s%s", r->ptr_names[i], r->ptr_addrs[i],
                       r->ptr_ok[i] ? " (confirmed)" : "");
    if (r->nptr == 0) {
        if (r->ptr_st == DNS_NXDOMAIN || r->ptr_st == DNS_NODATA) {
            c->level = DOC_FAIL;
            doc_text_put(c->message, "no PTR for %s (%s)", ip, dns_status_name(r->ptr_st));
            doc_text_put(c->fix,
                         "ask whoever owns %s (hosting provider, ISP) to set its PTR to your "
                         "HELO name, and give that name an A record with %s",
                         ip, ip);
        } else {
            c->level = DOC_WARN;
            doc_text_put(c->message, "PTR of %s not known: %s", ip, dns_status_name(r->ptr_st));
            doc_text_put(c->fix, "check the resolver (--dns)");
        }
        return;
    }
    if (!r->rep.ptr[0]) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "PTR %s does not resolve back to %s (not forward-confirmed)",
                     r->ptr_names[0], ip);
        doc_text_put(c->fix,
                     "give %s an A/AAAA record with %s, or change the PTR to a name that has "
                     "one",
                     r->ptr_names[0], ip);
        return;
    }
    if (!mp_str_ieq(r->rep.ptr, r->rep.helo)) {
        c->level = DOC_WARN;
        doc_text_put(c->message, "PTR %s is forward-confirmed, but the HELO is %s", r->rep.ptr,
                     r->rep.helo[0] ? r->rep.helo : "empty");
        doc_text_put(c->fix, "use --helo %s (servers compare them)", r->rep.ptr);
        return;
    }
    c->level = DOC_OK;
    doc_text_put(c->message, "PTR %s, forward-confirmed, equal to the HELO", r->rep.ptr);
}

static doc_level_t spf_level(spf_result_t res, bool strict)
{
    switch (res) {
    case SPF_PASS: return DOC_OK;
    case SPF_FAIL:
    case SPF_PERMERROR: return DOC_FAIL;
    case SPF_NONE: return strict ? DOC_FAIL : DOC_WARN;
    default: return DOC_WARN;
    }
}

static void spf_detail(doc_check_t *c, const char *what, const spf_job_t *j)
{
    doc_detail_add(c, "%s SPF for %s: %s%s%s%s", what, j->domain, spf_result_name(j->out.result),
                   j->out.matched[0] ? " (" : "", j->out.matched, j->out.matched[0] ? ")" : "");
    if (j->out.why[0] && j->out.result != SPF_PASS)
        doc_detail_add(c, "  %s", j->out.why);
}

static void report_helo(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_HELO];
    const char *h = r->rep.helo;
    const char *ip = r->rep.egress;
    if (!strchr(h, '.') || h[0] == '[') {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "HELO '%s' is not a domain name: nothing to resolve", h);
        doc_text_put(c->fix, "see check 1");
        return;
    }
    c->level = DOC_OK;
    if (!ip[0]) {
        c->level = r->helo_addrs[0] ? DOC_WARN : DOC_FAIL;
        doc_text_put(c->message,
                     "HELO %s %s%s; the egress address is unknown: neither its address "
                     "nor its SPF can be compared",
                     h, r->helo_addrs[0] ? "resolves to " : "has no A/AAAA record", r->helo_addrs);
        doc_text_put(c->fix, "see check 2 (or give --source)%s",
                     r->helo_addrs[0] ? "" : "; and give the HELO name an A record");
        return;
    }
    char spf[160];
    size_t pos = 0;
    mp_appendf(spf, sizeof spf, &pos, "SPF %s", spf_result_name(r->spf_helo.out.result));
    if (!r->helo_addrs[0]) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "HELO %s has no A/AAAA record (A %s, AAAA %s); %s", h,
                     dns_status_name(r->helo_a_st), dns_status_name(r->helo_aaaa_st), spf);
        doc_text_put(c->fix, "add an A record %s -> %s (servers check that the HELO resolves)", h,
                     ip);
    } else if (!r->helo_match) {
        c->level = DOC_WARN;
        doc_text_put(c->message, "HELO %s resolves to %s, not to %s; %s", h, r->helo_addrs, ip,
                     spf);
        doc_text_put(c->fix, "point %s at %s, or use a HELO name that does", h, ip);
    } else {
        doc_text_put(c->message, "HELO %s resolves to %s; %s", h, ip, spf);
    }
    spf_detail(c, "HELO", &r->spf_helo);
    doc_level_t sl = spf_level(r->spf_helo.out.result, false);
    if (sl > c->level) {
        c->level = sl;
        if (r->spf_helo.out.result == SPF_NONE)
            doc_text_put(c->fix,
                         "publish \"v=spf1 a -all\" in a TXT record at %s (RFC 7208 §2.3: "
                         "servers check the HELO's SPF, and with MAIL FROM <> it is the only "
                         "one)",
                         h);
        else
            doc_text_put(c->fix,
                         "make the SPF record of %s cover %s (e.g. \"v=spf1 a -all\" or "
                         "ip4:%s)",
                         h, ip, ip);
    }
}

static void report_dnsbl(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_DNSBL];
    size_t listed = 0, unusable = 0, clean = 0;
    bool pbl = false;
    if (!r->rep.egress[0]) {
        c->level = DOC_WARN;
        doc_text_put(c->message, "the egress address is unknown: no blocklist looked up");
        doc_text_put(c->fix, "see check 2");
        return;
    }
    for (size_t i = 0; i < r->o.ndnsbl; i++) {
        bl_t *b = &r->bl[i];
        const char *a2[4], *a1[4], *a[4];
        for (size_t k = 0; k < 4; k++) {
            a2[k] = b->a2[k];
            a1[k] = b->a1[k];
            a[k] = b->a[k];
        }
        char m[DOC_TEXT_MAX];
        doc_bl_t k2 = doc_dnsbl_read(b->zone, a2, b->n2, m, sizeof m);
        if (b->st2 != DNS_OK && b->st2 != DNS_NXDOMAIN) {
            unusable++;
            doc_detail_add(c,
                           "%s: no answer for the test entry 127.0.0.2 (%s): list not usable here",
                           b->zone, dns_status_name(b->st2));
            continue;
        }
        if (k2 == DOC_BL_REFUSED) {
            unusable++;
            doc_detail_add(c, "%s: refused via this resolver (%s); not a listing", b->zone, m);
            continue;
        }
        if (k2 != DOC_BL_LISTED) {
            unusable++;
            doc_detail_add(c,
                           "%s: the test entry 127.0.0.2 is not listed (%s): the resolver or "
                           "the list does not answer honestly",
                           b->zone, k2 == DOC_BL_CLEAN ? dns_status_name(b->st2) : m);
            continue;
        }
        doc_bl_t k1 = doc_dnsbl_read(b->zone, a1, b->n1, m, sizeof m);
        if (k1 != DOC_BL_CLEAN) {
            unusable++;
            doc_detail_add(c,
                           "%s: 127.0.0.1 is listed (%s): the resolver answers everything, "
                           "its answers prove nothing",
                           b->zone, m);
            continue;
        }
        doc_bl_t k = doc_dnsbl_read(b->zone, a, b->n, m, sizeof m);
        if (b->st != DNS_OK && b->st != DNS_NXDOMAIN && b->st != DNS_NODATA) {
            unusable++;
            doc_detail_add(c, "%s: %s", b->zone, dns_status_name(b->st));
        } else if (k == DOC_BL_CLEAN) {
            clean++;
            doc_detail_add(c, "%s: not listed", b->zone);
        } else if (k == DOC_BL_LISTED) {
            listed++;
            pbl = pbl || strstr(m, "PBL") != NULL;
            doc_detail_add(c, "%s: LISTED: %s%s%s", b->zone, m, b->txt[0] ? " - " : "", b->txt);
        } else {
            unusable++;
            doc_detail_add(c, "%s: %s", b->zone, m);
        }
    }
    if (listed) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "%s is listed on %zu of %zu blocklists", r->rep.egress, listed,
                     r->o.ndnsbl);
        doc_text_put(
            c->fix,
            "servers using these lists refuse this address whatever the mailbox: "
            "follow each list's removal procedure, or verify from another address%s",
            pbl ? "; a PBL listing means the address should not send mail directly at all: "
                  "no removal helps, use a host meant to send mail"
                : "");
    } else if (unusable) {
        c->level = DOC_WARN;
        doc_text_put(c->message,
                     "not listed on %zu lists; %zu could not be checked through this "
                     "resolver",
                     clean, unusable);
        doc_text_put(c->fix, "query the lists through your own recursive resolver (--dnsbl-dns), "
                             "not a public one");
    } else {
        c->level = DOC_OK;
        doc_text_put(c->message, "%s is not listed (%zu list%s, each answering its test entry)",
                     r->rep.egress, clean, clean == 1 ? "" : "s");
    }
}

static void report_from(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_MAIL_FROM];
    const char *at = strrchr(r->rep.from, '@');
    if (!at) {
        c->level = DOC_SKIP;
        doc_text_put(c->message,
                     "null sender: receivers evaluate the HELO's SPF instead (check 5)");
        return;
    }
    const char *d = at + 1;
    c->level = DOC_OK;
    if (r->from_mx_st == DNS_OK && !r->from_null_mx) {
        doc_text_put(c->message, "%s: MX %s; SPF %s", d, r->from_mx,
                     r->rep.egress[0] ? spf_result_name(r->spf_from.out.result)
                                      : "not evaluated (egress address unknown)");
    } else if (r->from_null_mx) {
        c->level = DOC_FAIL;
        doc_text_put(c->message,
                     "%s publishes a null MX (RFC 7505): it takes no mail, bounces "
                     "and call-backs to it fail",
                     d);
        doc_text_put(c->fix, "use a MAIL FROM of a domain that receives mail");
    } else if (r->from_mx_st == DNS_NODATA && r->from_a_st == DNS_OK) {
        c->level = DOC_WARN;
        doc_text_put(c->message, "%s has no MX, only an A record (implicit MX)", d);
        doc_text_put(c->fix,
                     "publish an MX record for %s: servers that check the sender domain "
                     "expect one",
                     d);
    } else if (r->from_mx_st == DNS_NODATA || r->from_mx_st == DNS_NXDOMAIN) {
        c->level = DOC_FAIL;
        doc_text_put(c->message,
                     "%s has no MX (%s) and no address: servers refuse a sender domain "
                     "that cannot receive replies",
                     d, dns_status_name(r->from_mx_st));
        doc_text_put(c->fix, "use a MAIL FROM of a domain with an MX record");
    } else {
        c->level = DOC_WARN;
        doc_text_put(c->message, "MX of %s not known: %s", d, dns_status_name(r->from_mx_st));
        doc_text_put(c->fix, "check the resolver (--dns)");
    }
    if (!r->rep.egress[0]) {
        level_raise(c, DOC_WARN);
        doc_detail_add(c, "SPF of %s not evaluated: the egress address is unknown", d);
        if (!c->fix[0])
            doc_text_put(c->fix, "see check 2");
        return;
    }
    spf_detail(c, "MAIL FROM", &r->spf_from);
    doc_level_t sl = spf_level(r->spf_from.out.result, false);
    if (sl > c->level) {
        c->level = sl;
        doc_text_put(c->fix,
                     "make the SPF record of %s cover %s (add ip4:%s or an include of this "
                     "host's domain)",
                     d, r->rep.egress, r->rep.egress);
    }
}

static void report_ehlo(doc_run_t *r)
{
    doc_check_t *c = &r->rep.check[DOC_EHLO];
    conn_t *e = r->ehlo;
    bool proxy_ok = true;
    if (r->has_proxy && proxy_witness(r, &proxy_ok) && !proxy_ok) {
        c->level = DOC_SKIP;
        doc_text_put(c->message, "not tried: the SOCKS5 proxy failed (check 2)");
        return;
    }
    if (!e) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "no reference MX reachable on port 25: no conversation possible");
        doc_text_put(c->fix, "see check 3");
        return;
    }
    const char *ip = e->v6 ? e->ref->ip6 : e->ref->ip4;
    if (e->have_banner)
        doc_detail_add(c, "< %d %s", e->banner.code, e->banner.text);
    if (e->have_ehlo)
        doc_detail_add(c, "< %d %s", e->ehlo.code, e->ehlo.text);
    if (!e->have_banner) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "%s [%s]: no banner (%s: %s)", e->ref->host, ip,
                     doc_conn_res_name(e->res), e->err);
        doc_text_put(c->fix, "a server that accepts the connection and says nothing is dropping "
                             "this client: see checks 4-6");
        return;
    }
    if (e->banner.code / 100 != 2) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "%s [%s] refused this client in its banner: %d %s", e->ref->host,
                     ip, e->banner.code, e->banner.enh);
        doc_text_put(c->fix, "the banner text says why (blocklist, reverse DNS, reputation); fix "
                             "that, or verify from another address");
        return;
    }
    if (!e->have_ehlo || e->ehlo.code / 100 != 2) {
        c->level = DOC_FAIL;
        doc_text_put(c->message, "%s [%s] refused EHLO %s: %s", e->ref->host, ip, r->rep.helo,
                     e->have_ehlo ? "see the reply below" : e->err);
        doc_text_put(c->fix, "the reply says why: usually the HELO name (checks 1, 4, 5)");
        return;
    }
    char echo[64] = "";
    doc_conn_echo(e, echo, sizeof echo);
    mp_strlcpy(r->rep.echoed, echo, sizeof r->rep.echoed);
    c->level = DOC_OK;
    if (r->has_proxy) {
        if (echo[0])
            doc_text_put(c->message,
                         "%s [%s] accepted EHLO %s through the proxy and sees this client as %s "
                         "(the proxy's public address: the egress address of checks 4-7)",
                         e->ref->host, ip, r->rep.helo, echo);
        else
            doc_text_put(c->message,
                         "%s [%s] accepted EHLO %s through the proxy (it does not echo the "
                         "client address: the proxy's public address stays unknown)",
                         e->ref->host, ip, r->rep.helo);
        return;
    }
    if (!echo[0]) {
        doc_text_put(c->message, "%s [%s] accepted EHLO %s (it does not echo the client address)",
                     e->ref->host, ip, r->rep.helo);
    } else if (r->rep.egress[0] && doc_addr_same(echo, r->rep.egress)) {
        doc_text_put(c->message, "%s [%s] accepted EHLO %s and sees this client as %s, as expected",
                     e->ref->host, ip, r->rep.helo, echo);
    } else {
        c->level = DOC_WARN;
        doc_text_put(c->message, "%s [%s] sees this client as %s, not %s", e->ref->host, ip, echo,
                     r->rep.egress[0] ? r->rep.egress : "the egress address found");
        doc_text_put(c->fix,
                     "the connections leave from another address than the DNS check found "
                     "(several NAT addresses?): run the checks for %s (--source, or the "
                     "network set-up)",
                     echo);
    }
}

void doc_report_build(doc_run_t *r)
{
    doc_report_t *rep = &r->rep;
    report_config(r);
    report_egress(r);
    report_rdns(r);
    report_helo(r);
    if (!r->o.quick) {
        report_port25(r);
        report_dnsbl(r);
        report_from(r);
        report_ehlo(r);
    }
    rep->worst = DOC_OK;
    for (int i = 0; i < DOC_NCHECKS; i++)
        if (rep->check[i].level != DOC_SKIP && rep->check[i].level > rep->worst)
            rep->worst = rep->check[i].level;
}
