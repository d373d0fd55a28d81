/*
 * render.c - a result as one JSON object (the design's result format) or as text for
 * people. See verdict.h.
 *
 * The JSON is written straight into one growing buffer, in a fixed key order: no tree
 * of jansson objects is built. Bulk renders one result per input row, and building the
 * tree, dumping it and freeing it cost about 15 us a result, a third of the CPU of a
 * bulk run (docs/benchmarks.md). The output is byte for byte what
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) gave (tests/unit/test_verdict.c keeps
 * that jansson version and compares): same escapes, same spelling of numbers, except
 * that U+2028 and U+2029 are escaped (see jb_str).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict/verdict.h"

/* ---- a growing output buffer; an allocation failure sticks and makes the result NULL */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf_t;

static bool jb_room(jbuf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
        b->oom = true;
        return false;
    }
    b->p = q;
    b->cap = cap;
    return true;
}

static void jb_raw(jbuf_t *b, const char *s, size_t n)
{
    if (jb_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* A literal: key fragments such as ",\"score\":" */
#define JB(b, lit) jb_raw((b), (lit), sizeof(lit) - 1)

/* Strict UTF-8 as jansson checks it: no overlong forms, no surrogates, <= U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t v;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            v = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            v = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            v = c & 0x07;
        } else {
            return false;
        }
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            v = (v << 6) | (s[i + k] & 0x3F);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) ||
            (len == 4 && v < 0x10000))
            return false;
        i += len;
    }
    return true;
}

/* A JSON string. Text that is not valid UTF-8 (wire text from a hostile server may be
 * anything) is written with every byte >= 0x80 as '?'. Escapes as jansson writes them:
 * \" \\ \b \f \n \r \t, other control characters as \u00XX; '/' and DEL as they are.
 * Unlike jansson, U+2028 and U+2029 are written as \u2028 and \u2029. */
static void jb_str(jbuf_t *b, const char *str)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    bool ascii_only = !utf8_valid(s, n);
    /* worst case 6 bytes per input byte, plus the quotes */
    if (!jb_room(b, 6 * n + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == 0xE2 && !ascii_only && i + 2 < n && s[i + 1] == 0x80 &&
            (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
            /* U+2028/U+2029 are legal in JSON but end a line in JavaScript before
             * ES2019: escaped, so the output can be embedded in a script as it is. */
            memcpy(o, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 2;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)(c >= 0x80 && ascii_only ? '?' : c);
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

/* A string, or null when NULL or empty. */
static void jb_str_or_null(jbuf_t *b, const char *s)
{
    if (s && *s)
        jb_str(b, s);
    else
        JB(b, "null");
}

static void jb_int(jbuf_t *b, long long v)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    jb_raw(b, p, (size_t)(e - p));
}

static void jb_bool(jbuf_t *b, bool v)
{
    if (v)
        JB(b, "true");
    else
        JB(b, "false");
}

/* A real as jansson 2.14 writes it: "%.17g", with ".0" added when there is neither a
 * point nor an exponent, and no '+' or leading zeros in the exponent. */
static void jb_real(jbuf_t *b, double v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp - 3, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof tmp - 3)
        return;
    size_t len = (size_t)n;
    char *dot = NULL, *e = NULL;
    for (size_t i = 0; i < len; i++) {
        if (tmp[i] == '.' || tmp[i] == ',') { /* a locale's decimal comma, as jansson */
            tmp[i] = '.';
            dot = tmp + i;
        } else if (tmp[i] == 'e') {
            e = tmp + i;
        }
    }
    if (!dot && !e) {
        tmp[len++] = '.';
        tmp[len++] = '0';
    }
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - tmp));
            len -= (size_t)(end - start);
        }
    }
    jb_raw(b, tmp, len);
}

char *vd_to_json(const vd_result_t *r, bool with_transcript)
{
    jbuf_t jb = {0}, *b = &jb;
    bool valid = r->addr.err == ADDR_OK;
    JB(b, "{\"email\":");
    jb_str(b, r->email);
    JB(b, ",\"normalized\":");
    if (valid)
        jb_str(b, r->addr.normalized);
    else
        JB(b, "null");
    JB(b, ",\"verdict\":");
    jb_str(b, vd_verdict_name(r->verdict));
    JB(b, ",\"reason\":");
    jb_str(b, vd_reason_name(r->reason));
    JB(b, ",\"reason_text\":");
    jb_str(b, r->detail[0] ? r->detail : vd_reason_text(r->reason));
    JB(b, ",\"score\":");
    jb_int(b, r->score);
    JB(b, ",\"score_factors\":[");
    for (unsigned i = 0; i < r->nfactors; i++) {
        JB(b, "{\"factor\":");
        jb_str_or_null(b, r->factors[i].factor);
        JB(b, ",\"points\":");
        jb_int(b, r->factors[i].points);
        if (i + 1 < r->nfactors)
            JB(b, "},");
        else
            JB(b, "}");
    }

    JB(b, "],\"syntax\":{\"valid\":");
    jb_bool(b, valid);
    if (valid) {
        JB(b, ",\"local\":");
        jb_str(b, r->addr.local);
        JB(b, ",\"domain\":");
        jb_str(b, r->addr.domain);
        JB(b, ",\"domain_ascii\":");
        jb_str(b, r->addr.domain_ascii);
    } else {
        JB(b, ",\"local\":null,\"domain\":null,\"domain_ascii\":null");
    }
    JB(b, ",\"utf8_local\":");
    jb_bool(b, valid && r->addr.local_utf8);
    JB(b, ",\"rule\":");
    if (valid)
        JB(b, "null");
    else
        jb_str_or_null(b, addr_err_rule(r->addr.err));

    JB(b, "},\"domain\":{");
    if (r->dns_checked) {
        JB(b, "\"exists\":");
        jb_bool(b, r->domain_exists);
        JB(b, ",\"mx\":[");
        for (unsigned i = 0; i < r->nmx; i++) {
            JB(b, "{\"host\":");
            jb_str(b, r->mx[i].host);
            JB(b, ",\"pref\":");
            jb_int(b, r->mx[i].pref);
            JB(b, ",\"ips\":[");
            for (unsigned k = 0; k < r->mx[i].nip; k++) {
                if (k)
                    JB(b, ",");
                jb_str(b, r->mx[i].ip[k]);
            }
            if (i + 1 < r->nmx)
                JB(b, "]},");
            else
                JB(b, "]}");
        }
        JB(b, "],\"null_mx\":");
        jb_bool(b, r->null_mx);
        JB(b, ",\"implicit_mx\":");
        jb_bool(b, r->implicit_mx);
        JB(b, ",\"spf\":");
        jb_bool(b, r->spf);
        JB(b, ",\"dmarc\":");
        jb_bool(b, r->dmarc);
    } else {
        JB(b, "\"exists\":null,\"mx\":[],\"null_mx\":null,\"implicit_mx\":null,\"spf\":null,"
              "\"dmarc\":null");
    }
    JB(b, ",\"provider\":");
    jb_str_or_null(b, r->provider);
    JB(b, ",\"gateway\":");
    jb_bool(b, r->gateway);

    JB(b, "},\"smtp\":{\"result\":");
    jb_str(b, vd_smtp_result_name(r->smtp_result));
    if (r->has_reply) {
        JB(b, ",\"code\":");
        jb_int(b, r->code);
        JB(b, ",\"enhanced\":");
        jb_str_or_null(b, r->enhanced);
        JB(b, ",\"message\":");
        jb_str(b, r->message);
    } else {
        JB(b, ",\"code\":null,\"enhanced\":null,\"message\":null");
    }
    JB(b, ",\"stage\":");
    jb_str_or_null(b, r->stage);
    JB(b, ",\"rule\":");
    jb_str_or_null(b, r->rule);
    JB(b, ",\"catch_all\":");
    if (r->catch_all < 0)
        JB(b, "null");
    else
        jb_bool(b, r->catch_all);
    JB(b, ",\"probe\":");
    if (r->probed) {
        JB(b, "{\"rcpt\":");
        jb_str(b, r->probe_rcpt);
        JB(b, ",\"code\":");
        jb_int(b, r->probe_code);
        JB(b, ",\"enhanced\":");
        jb_str_or_null(b, r->probe_enh);
        JB(b, ",\"message\":");
        jb_str(b, r->probe_text);
        JB(b, ",\"cached\":");
        jb_bool(b, r->probe_cached);
        JB(b, "}");
    } else {
        JB(b, "null");
    }
    JB(b, ",\"mx_host\":");
    jb_str_or_null(b, r->mx_host);
    JB(b, ",\"mx_ip\":");
    jb_str_or_null(b, r->mx_ip);
    JB(b, ",\"egress\":");
    jb_str_or_null(b, r->egress);
    JB(b, ",\"tls\":");
    jb_bool(b, r->tls);
    JB(b, ",\"tls_verified\":");
    jb_bool(b, r->tls_verified);
    JB(b, ",\"attempts\":");
    jb_int(b, r->attempts);
    JB(b, ",\"round_trips\":");
    jb_int(b, r->round_trips);
    JB(b, ",\"mx_geo\":");
    if (r->has_geo) {
        JB(b, "{\"country_code\":");
        jb_str_or_null(b, r->geo.country_code);
        JB(b, ",\"country\":");
        jb_str_or_null(b, r->geo.country);
        JB(b, ",\"city\":");
        jb_str_or_null(b, r->geo.city);
        JB(b, ",\"asn\":");
        if (r->geo.asn)
            jb_int(b, r->geo.asn);
        else
            JB(b, "null");
        JB(b, ",\"as_org\":");
        jb_str_or_null(b, r->geo.as_org);
        JB(b, ",\"isp\":");
        jb_str_or_null(b, r->geo.isp);
        JB(b, "}");
    } else {
        JB(b, "null");
    }

    JB(b, "},\"flags\":{\"disposable\":");
    jb_bool(b, r->intel.disposable);
    JB(b, ",\"free\":");
    jb_bool(b, r->intel.free);
    JB(b, ",\"role\":");
    jb_bool(b, r->intel.role);
    JB(b, ",\"gibberish\":");
    jb_bool(b, r->intel.gibberish);
    JB(b, ",\"gibberish_score\":");
    jb_real(b, r->intel.gibberish_score);
    JB(b, "},\"suggestion\":");
    if (r->intel.has_suggestion)
        jb_str(b, r->intel.suggestion);
    else
        JB(b, "null");
    JB(b, ",\"list_match\":");
    jb_str_or_null(b, r->list_match);
    JB(b, ",\"duration_ms\":");
    jb_int(b, (long long)r->duration_ms);

    if (with_transcript) {
        JB(b, ",\"transcript\":[");
        for (unsigned i = 0; i < r->nlines; i++) {
            const vd_line_t *l = &r->lines[i];
            char dir[2] = {l->dir, '\0'};
            JB(b, "{\"ip\":");
            jb_str(b, l->ip);
            JB(b, ",\"dir\":");
            jb_str(b, dir);
            JB(b, ",\"t_ms\":");
            jb_int(b, (long long)l->t_ms);
            JB(b, ",\"line\":");
            jb_str(b, l->line ? l->line : "");
            if (i + 1 < r->nlines)
                JB(b, "},");
            else
                JB(b, "}");
        }
        JB(b, "]");
    }
    JB(b, "}");
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    b->p[b->len] = '\0';
    return b->p;
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
        fprintf(out, "  MX: %s [%s]%s%s%s\n", r->mx_host, r->mx_ip, r->tls ? " (TLS)" : "",
                r->egress[0] ? ", via " : "", r->egress);
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
