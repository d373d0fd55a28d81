/*
 * spf.c - RFC 7208 check_host(), restartable: see spf.h.
 *
 * One evaluation walks the record of the domain, then of every include and redirect,
 * depth first. A question whose answer the caller lacks sets out->need and unwinds
 * (SPF_STOP below); the caller fills it in and starts again. Syntax is checked for the
 * whole record before any term is evaluated (§4.6: a syntax error anywhere is permerror).
 */
#include "dns/spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dns/msg.h"
#include "util/str.h"

#define SPF_LOOKUP_MAX 10      /* DNS-querying terms (§4.6.4) */
#define SPF_VOID_MAX 2         /* look-ups with no answer (§4.6.4) */
#define SPF_NAMES_MAX 10       /* names looked at by mx and ptr (§4.6.4) */
#define SPF_DEPTH_MAX 12       /* nesting of include/redirect (the look-up limit binds first) */
#define SPF_STOP ((spf_result_t)-1)

typedef struct {
    int fam;                  /* AF_INET or AF_INET6 */
    unsigned char ip[16];
    const char *ip_text, *sender, *helo;
    spf_answer_fn fn;
    void *arg;
    spf_out_t *out;
} ev_t;

const char *spf_result_name(spf_result_t r)
{
    switch (r) {
    case SPF_NONE: return "none";
    case SPF_NEUTRAL: return "neutral";
    case SPF_PASS: return "pass";
    case SPF_FAIL: return "fail";
    case SPF_SOFTFAIL: return "softfail";
    case SPF_TEMPERROR: return "temperror";
    case SPF_PERMERROR: return "permerror";
    }
    return "?";
}

static spf_result_t why_set(ev_t *e, spf_result_t r, const char *domain, const char *what)
{
    if (!e->out->why[0]) {
        size_t pos = 0;
        mp_appendf(e->out->why, sizeof e->out->why, &pos, "%s: %s", domain, what);
    }
    return r;
}

/* The answer to (type, name), or NULL after asking for it (the evaluation stops). */
static const dns_records_t *answer_get(ev_t *e, dns_rr_type_t type, const char *name)
{
    char key[DNS_NAME_TEXT_MAX];
    mp_strlcpy(key, name, sizeof key);
    dns_name_norm(key);
    const dns_records_t *r = e->fn(e->arg, type, key);
    if (!r) {
        e->out->need = true;
        e->out->need_type = type;
        mp_strlcpy(e->out->need_name, key, sizeof e->out->need_name);
    }
    return r;
}

static bool failed(const dns_records_t *r)
{
    return r->status == DNS_SERVFAIL || r->status == DNS_TIMEOUT || r->status == DNS_ERROR;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* Does an address record (A or AAAA text) fall in the client's network of this size? */
static bool addr_match(const ev_t *e, const char *text, unsigned c4, unsigned c6)
{
    unsigned char bin[16];
    if (inet_pton(e->fam, text, bin) != 1)
        return false;
    return prefix_match(e->ip, bin, e->fam == AF_INET ? c4 : c6);
}

/* ---- macros (§7) ------------------------------------------------------------------ */

static void ip_dotted(const ev_t *e, char *buf, size_t size)
{
    if (e->fam == AF_INET) {
        inet_ntop(AF_INET, e->ip, buf, (socklen_t)size);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    size_t pos = 0;
    for (size_t i = 0; i < 16 && pos + 4 < size; i++) {
        buf[pos++] = hex[e->ip[i] >> 4];
        buf[pos++] = '.';
        buf[pos++] = hex[e->ip[i] & 15];
        buf[pos++] = i < 15 ? '.' : '\0';
    }
    buf[pos < size ? pos : size - 1] = '\0';
}

/* One macro letter's value into val. False: unknown letter. */
static bool macro_value(const ev_t *e, char letter, const char *domain, char *val, size_t size)
{
    const char *at = strrchr(e->sender, '@');
    switch (mp_to_lower((unsigned char)letter)) {
    case 's': mp_strlcpy(val, e->sender, size); return true;
    case 'l':
        if (at && at > e->sender)
            mp_strlcpyn(val, e->sender, (size_t)(at - e->sender), size);
        else
            mp_strlcpy(val, "postmaster", size);
        return true;
    case 'o': mp_strlcpy(val, at ? at + 1 : e->sender, size); return true;
    case 'd': mp_strlcpy(val, domain, size); return true;
    case 'i': ip_dotted(e, val, size); return true;
    case 'p': mp_strlcpy(val, "unknown", size); return true;   /* §7.3: SHOULD NOT be used */
    case 'v': mp_strlcpy(val, e->fam == AF_INET ? "in-addr" : "ip6", size); return true;
    case 'h': mp_strlcpy(val, e->helo, size); return true;
    default: return false;
    }
}

/* Split val at delimiters, keep the rightmost `keep` parts (0: all), reverse if asked,
 * join with '.', append at out[*pos]. */
static bool macro_transform(const char *val, unsigned keep, bool rev, const char *delims,
                            char *out, size_t size, size_t *pos)
{
    const char *part[128];
    size_t len[128], n = 0;
    const char *p = val;
    for (;;) {
        size_t l = strcspn(p, delims);
        if (n == 128)
            return false;
        part[n] = p;
        len[n++] = l;
        if (!p[l])
            break;
        p += l + 1;
    }
    if (rev) {
        for (size_t i = 0; i < n / 2; i++) {
            const char *tp = part[i];
            size_t tl = len[i];
            part[i] = part[n - 1 - i];
            len[i] = len[n - 1 - i];
            part[n - 1 - i] = tp;
            len[n - 1 - i] = tl;
        }
    }
    size_t first = keep && keep < n ? n - keep : 0;
    for (size_t i = first; i < n; i++) {
        if (i > first && !mp_appendf(out, size, pos, "."))
            return false;
        if (!mp_appendf(out, size, pos, "%.*s", (int)len[i], part[i]))
            return false;
    }
    return true;
}

/* Expand a domain-spec (§7.1) into out; false: a syntax error (permerror). */
static bool macro_expand(const ev_t *e, const char *spec, size_t speclen, const char *domain,
                         char *out, size_t size)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < speclen; i++) {
        char c = spec[i];
        if (c != '%') {
            if (!mp_appendf(out, size, &pos, "%c", c))
                return false;
            continue;
        }
        if (++i >= speclen)
            return false;
        c = spec[i];
        if (c == '%' || c == '_' || c == '-') {
            if (!mp_appendf(out, size, &pos, "%s", c == '%' ? "%" : c == '_' ? " " : "%20"))
                return false;
            continue;
        }
        if (c != '{' || ++i >= speclen)
            return false;
        char letter = spec[i++];
        unsigned keep = 0;
        while (i < speclen && mp_is_digit((unsigned char)spec[i]) && keep < 1000)
            keep = keep * 10 + (unsigned)(spec[i++] - '0');
        bool rev = false;
        if (i < speclen && (spec[i] == 'r' || spec[i] == 'R')) {
            rev = true;
            i++;
        }
        char delims[8];
        size_t nd = 0;
        while (i < speclen && spec[i] != '}' && strchr(".-+,/_=", spec[i]) &&
               nd + 1 < sizeof delims)
            delims[nd++] = spec[i++];
        delims[nd] = '\0';
        if (nd == 0)
            mp_strlcpy(delims, ".", sizeof delims);
        if (i >= speclen || spec[i] != '}')
            return false;
        char val[DNS_NAME_TEXT_MAX * 2];
        if (!macro_value(e, letter, domain, val, sizeof val) ||
            !macro_transform(val, keep, rev, delims, out, size, &pos))
            return false;
    }
    /* §7.3: longer than 253 octets: drop labels from the left */
    char *p = out;
    while (strlen(p) > 253) {
        char *dot = strchr(p, '.');
        if (!dot)
            return false;
        p = dot + 1;
    }
    if (p != out)
        memmove(out, p, strlen(p) + 1);
    size_t n = strlen(out);
    if (n > 0 && out[n - 1] == '.')
        out[n - 1] = '\0';
    return out[0] != '\0';
}

/* ---- terms -------------------------------------------------------------------------- */

typedef enum { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS, M_MOD } mech_t;

typedef struct {
    mech_t m;
    spf_result_t qual;     /* result when it matches */
    const char *arg;       /* after ':' (or '=' for a modifier); NULL: none */
    size_t arglen;         /* up to the CIDR part */
    unsigned c4, c6;       /* CIDR lengths (32 / 128 when absent) */
    const char *text;      /* the whole term */
    size_t textlen;
    bool redirect;         /* M_MOD: redirect= */
} term_t;

static bool parse_cidr(const char *s, size_t n, unsigned max, unsigned *out)
{
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mp_is_digit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Split "arg/c4//c6" (which parts are allowed depends on the mechanism). */
static bool parse_dual_cidr(term_t *t, const char *s, size_t n, bool v4, bool v6)
{
    const char *slash = memchr(s, '/', n);
    t->arglen = slash ? (size_t)(slash - s) : n;
    if (!slash)
        return true;
    const char *c = slash + 1, *end = s + n;
    if (c < end && *c == '/') {   /* "//c6" */
        return v6 && parse_cidr(c + 1, (size_t)(end - c - 1), 128, &t->c6);
    }
    const char *dbl = NULL;
    for (const char *p = c; p + 1 < end; p++)
        if (p[0] == '/' && p[1] == '/')
            dbl = p;
    if (dbl) {
        return v4 && v6 && parse_cidr(c, (size_t)(dbl - c), 32, &t->c4) &&
               parse_cidr(dbl + 2, (size_t)(end - dbl - 2), 128, &t->c6);
    }
    if (v4 && !v6)
        return parse_cidr(c, (size_t)(end - c), 32, &t->c4);
    if (v6 && !v4)
        return parse_cidr(c, (size_t)(end - c), 128, &t->c6);
    return parse_cidr(c, (size_t)(end - c), 32, &t->c4);
}

static bool name_ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* One term of the record; false: syntax error. */
static bool term_parse(const char *s, size_t n, term_t *t)
{
    memset(t, 0, sizeof *t);
    t->text = s;
    t->textlen = n;
    t->c4 = 32;
    t->c6 = 128;
    /* modifier: name "=" ... where name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
    size_t k = 0;
    while (k < n && (mp_is_alnum((unsigned char)s[k]) || s[k] == '-' || s[k] == '_' ||
                     s[k] == '.'))
        k++;
    if (k > 0 && k < n && s[k] == '=' && mp_is_alpha((unsigned char)s[0])) {
        t->m = M_MOD;
        t->redirect = name_ieq(s, k, "redirect");
        t->arg = s + k + 1;
        t->arglen = n - k - 1;
        return !(t->redirect || name_ieq(s, k, "exp")) || t->arglen > 0;
    }
    t->qual = SPF_PASS;
    if (n > 0 && strchr("+-~?", s[0])) {
        t->qual = s[0] == '+' ? SPF_PASS : s[0] == '-' ? SPF_FAIL : s[0] == '~' ? SPF_SOFTFAIL
                                                                                  : SPF_NEUTRAL;
        s++;
        n--;
    }
    size_t nl = 0;
    while (nl < n && s[nl] != ':' && s[nl] != '/')
        nl++;
    const char *rest = s + nl;
    size_t rn = n - nl;
    bool colon = rn > 0 && rest[0] == ':';
    if (colon) {
        t->arg = rest + 1;
        rn--;
    }
    const char *a = colon ? rest + 1 : rest;
    if (name_ieq(s, nl, "all")) {
        t->m = M_ALL;
        return rn == 0;
    }
    if (name_ieq(s, nl, "include") || name_ieq(s, nl, "exists")) {
        t->m = mp_to_lower((unsigned char)s[0]) == 'i' ? M_INCLUDE : M_EXISTS;
        t->arglen = rn;
        return colon && rn > 0;
    }
    if (name_ieq(s, nl, "a") || name_ieq(s, nl, "mx")) {
        t->m = nl == 1 ? M_A : M_MX;
        if (colon && parse_dual_cidr(t, a, rn, true, true))
            return t->arglen > 0;
        if (!colon)
            t->arg = NULL;
        return !colon && parse_dual_cidr(t, a, rn, true, true) && t->arglen == 0;
    }
    if (name_ieq(s, nl, "ptr")) {
        t->m = M_PTR;
        t->arglen = rn;
        return !colon ? rn == 0 : rn > 0;
    }
    if (name_ieq(s, nl, "ip4") || name_ieq(s, nl, "ip6")) {
        bool v4 = s[2] == '4';
        t->m = v4 ? M_IP4 : M_IP6;
        if (!colon || !parse_dual_cidr(t, a, rn, v4, !v4) || t->arglen == 0 ||
            t->arglen >= INET6_ADDRSTRLEN)
            return false;
        char ip[INET6_ADDRSTRLEN];
        unsigned char bin[16];
        mp_strlcpyn(ip, t->arg, t->arglen, sizeof ip);
        return inet_pton(v4 ? AF_INET : AF_INET6, ip, bin) == 1;
    }
    return false;   /* unknown mechanism (§4.6.1: permerror) */
}

static spf_result_t check_host(ev_t *e, const char *domain, unsigned depth);

static bool count_lookup(ev_t *e)
{
    return ++e->out->lookups <= SPF_LOOKUP_MAX;
}

/* A void answer counts; false once over the limit. */
static bool count_void(ev_t *e, const dns_records_t *r)
{
    if (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA)
        return ++e->out->void_lookups <= SPF_VOID_MAX;
    return true;
}

enum { ANS_OK = 0, ANS_STOP, ANS_TEMP, ANS_VOIDS };

/* The answer to (type, name) for a term: ANS_OK with *out, ANS_STOP (asked for it),
 * ANS_TEMP (a DNS failure) or ANS_VOIDS (one void look-up too many, when counted). */
static int term_answer(ev_t *e, dns_rr_type_t type, const char *name, bool count_voids,
                       const dns_records_t **out)
{
    const dns_records_t *r = answer_get(e, type, name);
    if (!r)
        return ANS_STOP;
    if (failed(r))
        return ANS_TEMP;
    if (count_voids && !count_void(e, r))
        return ANS_VOIDS;
    *out = r;
    return ANS_OK;
}

/* Does any address of host match? *match, or what term_answer() said. */
static int host_match(ev_t *e, const char *host, unsigned c4, unsigned c6, bool count_voids,
                      bool *match)
{
    const dns_records_t *r = NULL;
    int st = term_answer(e, e->fam == AF_INET ? DNS_RR_A : DNS_RR_AAAA, host, count_voids, &r);
    *match = false;
    for (size_t i = 0; st == ANS_OK && i < r->n && !*match; i++)
        *match = addr_match(e, r->rr[i].text, c4, c6);
    return st;
}

static const char *reverse_name(const ev_t *e, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    if (e->fam == AF_INET) {
        mp_appendf(buf, size, &pos, "%u.%u.%u.%u.in-addr.arpa", e->ip[3], e->ip[2], e->ip[1],
                   e->ip[0]);
        return buf;
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--)
        mp_appendf(buf, size, &pos, "%c.%c.", hex[e->ip[i] & 15], hex[e->ip[i] >> 4]);
    mp_appendf(buf, size, &pos, "ip6.arpa");
    return buf;
}

/* Evaluate one mechanism: 1 match, 0 no match, or a result to return at once. */
static int mech_eval(ev_t *e, const term_t *t, const char *domain, unsigned depth,
                     spf_result_t *res)
{
    char target[DNS_NAME_TEXT_MAX];
    if (t->arg && t->arglen > 0 && t->m != M_IP4 && t->m != M_IP6) {
        if (!macro_expand(e, t->arg, t->arglen, domain, target, sizeof target)) {
            *res = why_set(e, SPF_PERMERROR, domain, "bad domain-spec");
            return -1;
        }
    } else {
        mp_strlcpy(target, domain, sizeof target);
    }
    int st = ANS_OK;
    bool match = false;
    switch (t->m) {
    case M_ALL: return 1;
    case M_IP4:
    case M_IP6: {
        if ((t->m == M_IP4) != (e->fam == AF_INET))
            return 0;
        char ip[INET6_ADDRSTRLEN];
        mp_strlcpyn(ip, t->arg, t->arglen, sizeof ip);
        return addr_match(e, ip, t->c4, t->c6) ? 1 : 0;
    }
    case M_INCLUDE: {
        if (!count_lookup(e))
            goto too_many;
        spf_result_t r = check_host(e, target, depth + 1);
        switch (r) {
        case SPF_PASS: return 1;
        case SPF_FAIL:
        case SPF_SOFTFAIL:
        case SPF_NEUTRAL: return 0;
        case SPF_NONE: *res = why_set(e, SPF_PERMERROR, target, "include of a domain without SPF");
            return -1;
        default: *res = r; return -1;   /* temperror, permerror, stop */
        }
    }
    case M_A:
    case M_EXISTS:
    case M_MX: {
        if (!count_lookup(e))
            goto too_many;
        const dns_records_t *r = NULL;
        if (t->m == M_A) {
            st = host_match(e, target, t->c4, t->c6, true, &match);
            break;
        }
        st = term_answer(e, t->m == M_MX ? DNS_RR_MX : DNS_RR_A, target, true, &r);
        if (st != ANS_OK || t->m == M_EXISTS) {
            match = st == ANS_OK && r->n > 0;
            break;
        }
        if (r->n > SPF_NAMES_MAX || r->truncated) {
            *res = why_set(e, SPF_PERMERROR, target, "more than 10 MX names");
            return -1;
        }
        char hosts[SPF_NAMES_MAX][DNS_NAME_TEXT_MAX];
        size_t nh = r->n;
        for (size_t i = 0; i < nh; i++)
            mp_strlcpy(hosts[i], r->rr[i].text, sizeof hosts[i]);   /* r may go away */
        for (size_t i = 0; i < nh && st == ANS_OK && !match; i++)
            if (hosts[i][0])   /* not the null MX "." */
                st = host_match(e, hosts[i], t->c4, t->c6, false, &match);
        break;
    }
    case M_PTR: {
        if (!count_lookup(e))
            goto too_many;
        char rev[DNS_NAME_TEXT_MAX];
        const dns_records_t *r = NULL;
        st = term_answer(e, DNS_RR_PTR, reverse_name(e, rev, sizeof rev), true, &r);
        if (st == ANS_TEMP)
            return 0;   /* §5.5: a failed PTR look-up is no match */
        if (st != ANS_OK)
            break;
        char names[SPF_NAMES_MAX][DNS_NAME_TEXT_MAX];
        size_t nn = r->n < SPF_NAMES_MAX ? r->n : SPF_NAMES_MAX;
        for (size_t i = 0; i < nn; i++)
            mp_strlcpy(names[i], r->rr[i].text, sizeof names[i]);
        for (size_t i = 0; i < nn; i++) {
            size_t ln = strlen(names[i]), lt = strlen(target);
            bool under = mp_str_ieq(names[i], target) ||
                         (ln > lt && names[i][ln - lt - 1] == '.' &&
                          mp_str_ieq(names[i] + ln - lt, target));
            if (!under)
                continue;
            bool valid = false;
            if (host_match(e, names[i], 32, 128, false, &valid) == ANS_STOP)
                goto stop;
            if (valid)
                return 1;   /* validated (§5.5); failures just do not validate */
        }
        return 0;
    }
    case M_MOD: return 0;
    }
    if (st == ANS_STOP)
        goto stop;
    if (st == ANS_TEMP)
        goto temp;
    if (st == ANS_VOIDS)
        goto voids;
    return match ? 1 : 0;
too_many:
    *res = why_set(e, SPF_PERMERROR, domain, "more than 10 DNS look-ups");
    return -1;
voids:
    *res = why_set(e, SPF_PERMERROR, target, "more than 2 look-ups without an answer");
    return -1;
temp:
    *res = why_set(e, SPF_TEMPERROR, target, "DNS failure");
    return -1;
stop:
    *res = SPF_STOP;
    return -1;
}

/* The one "v=spf1" record of domain into rec; a result when there is none or trouble. */
static bool record_find(ev_t *e, const char *domain, char *rec, size_t size, spf_result_t *res)
{
    const dns_records_t *r = answer_get(e, DNS_RR_TXT, domain);
    if (!r) {
        *res = SPF_STOP;
        return false;
    }
    if (failed(r)) {
        *res = why_set(e, SPF_TEMPERROR, domain, "DNS failure reading TXT");
        return false;
    }
    size_t found = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *t = r->rr[i].text;
        if (strncasecmp(t, "v=spf1", 6) == 0 && (t[6] == '\0' || t[6] == ' ')) {
            if (found++ == 0)
                mp_strlcpy(rec, t, size);
        }
    }
    if (found == 0) {
        *res = why_set(e, SPF_NONE, domain, "no SPF record");
        return false;
    }
    if (found > 1) {
        *res = why_set(e, SPF_PERMERROR, domain, "more than one SPF record");
        return false;
    }
    return true;
}

static spf_result_t check_host(ev_t *e, const char *domain, unsigned depth)
{
    spf_result_t res = SPF_NEUTRAL;
    if (depth > SPF_DEPTH_MAX)
        return why_set(e, SPF_PERMERROR, domain, "include/redirect nested too deep");
    char rec[DNS_RR_TEXT_MAX];
    if (!record_find(e, domain, rec, sizeof rec, &res))
        return res;
    term_t terms[64];
    size_t nt = 0;
    const term_t *redirect = NULL;
    /* pass 1: syntax of every term (§4.6) */
    for (const char *p = rec + 6; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == 0)
            break;
        if (nt == sizeof terms / sizeof terms[0])
            return why_set(e, SPF_PERMERROR, domain, "too many terms");
        if (!term_parse(p, n, &terms[nt])) {
            char msg[SPF_TEXT_MAX];
            size_t pos = 0;
            mp_appendf(msg, sizeof msg, &pos, "bad term '%.*s'", (int)(n < 80 ? n : 80), p);
            return why_set(e, SPF_PERMERROR, domain, msg);
        }
        if (terms[nt].m == M_MOD && terms[nt].redirect) {
            if (redirect)
                return why_set(e, SPF_PERMERROR, domain, "two redirect modifiers");
            redirect = &terms[nt];
        }
        nt++;
        p += n;
    }
    /* pass 2: mechanisms in order, first match wins (§4.6.2) */
    for (size_t i = 0; i < nt; i++) {
        const term_t *t = &terms[i];
        if (t->m == M_MOD)
            continue;
        int m = mech_eval(e, t, domain, depth, &res);
        if (m < 0)
            return res;
        if (m == 1) {
            size_t pos = 0;
            e->out->matched[0] = '\0';
            mp_appendf(e->out->matched, sizeof e->out->matched, &pos, "%s: %.*s", domain,
                       (int)(t->textlen < 120 ? t->textlen : 120), t->text);
            return t->qual;
        }
    }
    if (!redirect) {
        return SPF_NEUTRAL;
    }
    /* §6.1: redirect applies only when no mechanism matched (and "all" was absent) */
    if (!count_lookup(e))
        return why_set(e, SPF_PERMERROR, domain, "more than 10 DNS look-ups");
    char target[DNS_NAME_TEXT_MAX];
    if (!macro_expand(e, redirect->arg, redirect->arglen, domain, target, sizeof target))
        return why_set(e, SPF_PERMERROR, domain, "bad redirect domain-spec");
    res = check_host(e, target, depth + 1);
    if (res == SPF_NONE)
        return why_set(e, SPF_PERMERROR, target, "redirect to a domain without SPF");
    return res;
}

void spf_eval(const char *ip, const char *domain, const char *sender, const char *helo,
              spf_answer_fn fn, void *arg, spf_out_t *out)
{
    memset(out, 0, sizeof *out);
    ev_t e = { .ip_text = ip, .sender = sender ? sender : "", .helo = helo ? helo : "",
               .fn = fn, .arg = arg, .out = out };
    if (inet_pton(AF_INET, ip, e.ip) == 1) {
        e.fam = AF_INET;
    } else if (inet_pton(AF_INET6, ip, e.ip) == 1) {
        e.fam = AF_INET6;
    } else {
        out->result = SPF_PERMERROR;
        mp_strlcpy(out->why, "not an IP address", sizeof out->why);
        return;
    }
    char d[DNS_NAME_TEXT_MAX];
    mp_strlcpy(d, domain ? domain : "", sizeof d);
    dns_name_norm(d);
    if (!d[0] || !strchr(d, '.')) {
        out->result = SPF_NONE;   /* §4.3: not a fully qualified domain */
        why_set(&e, SPF_NONE, d[0] ? d : "(empty)", "not a fully qualified domain name");
        return;
    }
    spf_result_t r = check_host(&e, d, 0);
    out->result = r == SPF_STOP ? SPF_TEMPERROR : r;
}
