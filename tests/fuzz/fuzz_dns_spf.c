/*
 * fuzz_dns_spf.c - libFuzzer target for the SPF evaluator (src/dns/spf.c): records,
 * terms, CIDR lengths and macros come from DNS, i.e. from anyone.
 *
 * The input is lines: line 0 is the TXT record of "f.test"; a TXT question for any other
 * name is answered with line 1 + (a hash of the name) % (lines - 1). A/AAAA answers are
 * one address made from the name's hash, MX one host "m<hash>.test", PTR one name
 * "f.test"; a name whose hash is divisible by 7 is NXDOMAIN, by 11 SERVFAIL. The
 * evaluation is driven like the doctor drives it (evaluate, answer, again).
 * Invariants (abort() on violation): a result in range, the evaluation ends within the
 * answers RFC 7208's limits allow, at most 11 DNS-querying terms and 3 void look-ups are
 * counted, texts NUL-terminated, a question is never asked twice.
 * Replayed over tests/fuzz/corpus/dns_spf/ in every build (replay.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/spf.h"
#include "util/str.h"

#define ROUNDS_MAX 200
#define LINES_MAX 16

typedef struct {
    const char *line[LINES_MAX];
    size_t nline;
    dns_records_t have[ROUNDS_MAX];
    size_t nhave;
} zone_t;

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static const dns_records_t *get(void *arg, dns_rr_type_t type, const char *name)
{
    zone_t *z = arg;
    for (size_t i = 0; i < z->nhave; i++)
        if (z->have[i].type == type && strcmp(z->have[i].name, name) == 0)
            return &z->have[i];
    return NULL;
}

static void answer(zone_t *z, dns_rr_type_t type, const char *name)
{
    dns_records_t *r = &z->have[z->nhave++];
    memset(r, 0, sizeof *r);
    r->type = type;
    mp_strlcpy(r->name, name, sizeof r->name);
    uint32_t h = hash(name);
    if (strcmp(name, "f.test") != 0 && h % 7 == 0) {
        r->status = DNS_NXDOMAIN;
        return;
    }
    if (strcmp(name, "f.test") != 0 && h % 11 == 0) {
        r->status = DNS_SERVFAIL;
        return;
    }
    r->status = DNS_OK;
    r->n = 1;
    char *t = r->rr[0].text;
    size_t sz = sizeof r->rr[0].text;
    switch (type) {
    case DNS_RR_TXT: {
        const char *l = strcmp(name, "f.test") == 0 || z->nline < 2
                            ? z->line[0] : z->line[1 + h % (z->nline - 1)];
        mp_strlcpy(t, l, sz);
        break;
    }
    case DNS_RR_A:
        snprintf(t, sz, "192.0.%u.%u", (h >> 8) & 3, h & 255);
        break;
    case DNS_RR_AAAA:
        snprintf(t, sz, "2001:db8::%x", h & 0xffff);
        break;
    case DNS_RR_MX:
        r->rr[0].pref = h & 31;
        snprintf(t, sz, "m%u.test", h % 50);
        break;
    case DNS_RR_PTR:
        mp_strlcpy(t, "f.test", sz);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static zone_t z;
    static char text[8192];
    static spf_out_t out;
    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    memset(&z, 0, sizeof z);
    char *p = text;
    while (z.nline < LINES_MAX) {
        z.line[z.nline++] = p;
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    const char *ip = size > 0 && (data[0] & 1) ? "2001:db8::7" : "192.0.2.7";
    for (size_t round = 0;; round++) {
        spf_eval(ip, "f.test", "a-b+c@f.test", "h.f.test", get, &z, &out);
        if ((int)out.result < SPF_NONE || out.result > SPF_PERMERROR)
            abort();
        if (out.lookups > 11 || out.void_lookups > 3)
            abort();
        if (!memchr(out.why, '\0', sizeof out.why) || !memchr(out.matched, '\0',
                                                               sizeof out.matched))
            abort();
        if (!out.need)
            break;
        if (get(&z, out.need_type, out.need_name))
            abort();   /* asked again for an answer it has */
        if (round + 1 >= ROUNDS_MAX)
            abort();   /* more answers than the limits allow */
        answer(&z, out.need_type, out.need_name);
    }
    return 0;
}
