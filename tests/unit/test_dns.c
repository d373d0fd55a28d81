/*
 * test_dns.c - unit tests of src/dns: the TTL cache (pure, injected time), the DNS
 * message walker (hand-built, truncated and malformed packets) and the resolver
 * against an in-test mock DNS server.
 *
 * The mock is a UDP socket on 127.0.0.1 (ephemeral port) served on the same libevent
 * loop as the resolver. It holds a tiny zone of records and answers like a recursive
 * resolver would: records, CNAME chains (chased or not), NODATA/NXDOMAIN with an SOA
 * in the authority section, or SERVFAIL / REFUSED / silence for chosen names. It logs
 * every question, so tests assert what the resolver asked as well as what it found.
 * Nothing here touches the real network.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns/cache.h"
#include "dns/dns.h"
#include "dns/msg.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

/* ---- packet builder ----------------------------------------------------------------- */

typedef struct {
    unsigned char b[4096];
    size_t n;
} pkt_t;

static void put8(pkt_t *p, unsigned v)
{
    assert_true(p->n < sizeof p->b);
    p->b[p->n++] = (unsigned char)(v & 0xffu);
}

static void put16(pkt_t *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v);
}

static void put32(pkt_t *p, uint32_t v)
{
    put16(p, (unsigned)(v >> 16));
    put16(p, (unsigned)(v & 0xffffu));
}

/* Uncompressed name; "" is the root. */
static void put_name(pkt_t *p, const char *name)
{
    const char *s = name;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        put8(p, (unsigned)len);
        for (size_t i = 0; i < len; i++)
            put8(p, (unsigned char)s[i]);
        s += len;
        if (*s == '.')
            s++;
    }
    put8(p, 0);
}

static void pkt_begin(pkt_t *p, unsigned id, unsigned rcode, const char *qname, unsigned qtype)
{
    p->n = 0;
    put16(p, id);
    put16(p, 0x8180u | (rcode & 0xfu)); /* QR, RD, RA */
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, 0);
    put_name(p, qname);
    put16(p, qtype);
    put16(p, 1);
}

static void count_inc(pkt_t *p, size_t off)
{
    unsigned v = ((unsigned)p->b[off] << 8 | p->b[off + 1]) + 1;
    p->b[off] = (unsigned char)(v >> 8);
    p->b[off + 1] = (unsigned char)(v & 0xffu);
}

enum { SEC_AN = 6, SEC_NS = 8 };

/* RR header; returns the offset of RDLENGTH for rr_end(). */
static size_t rr_begin(pkt_t *p, int sec, const char *owner, unsigned type, uint32_t ttl)
{
    count_inc(p, (size_t)sec);
    put_name(p, owner);
    put16(p, type);
    put16(p, 1);
    put32(p, ttl);
    size_t at = p->n;
    put16(p, 0);
    return at;
}

static void rr_end(pkt_t *p, size_t at)
{
    size_t len = p->n - at - 2;
    p->b[at] = (unsigned char)(len >> 8);
    p->b[at + 1] = (unsigned char)(len & 0xffu);
}

static void rr_a(pkt_t *p, int sec, const char *owner, uint32_t ttl, const char *ip)
{
    unsigned char a[16];
    bool v6 = strchr(ip, ':') != NULL;
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, ip, a), 1);
    size_t at = rr_begin(p, sec, owner, v6 ? DNS_T_AAAA : DNS_T_A, ttl);
    for (size_t i = 0; i < (v6 ? 16u : 4u); i++)
        put8(p, a[i]);
    rr_end(p, at);
}

static void rr_mx(pkt_t *p, int sec, const char *owner, uint32_t ttl, unsigned pref,
                  const char *host)
{
    size_t at = rr_begin(p, sec, owner, DNS_T_MX, ttl);
    put16(p, pref);
    put_name(p, host);
    rr_end(p, at);
}

static void rr_cname(pkt_t *p, int sec, const char *owner, uint32_t ttl, const char *target)
{
    size_t at = rr_begin(p, sec, owner, DNS_T_CNAME, ttl);
    put_name(p, target);
    rr_end(p, at);
}

static void rr_txt(pkt_t *p, int sec, const char *owner, uint32_t ttl, const char *text)
{
    size_t at = rr_begin(p, sec, owner, DNS_T_TXT, ttl);
    size_t len = strlen(text);
    assert_true(len < 256);
    put8(p, (unsigned)len);
    for (size_t i = 0; i < len; i++)
        put8(p, (unsigned char)text[i]);
    rr_end(p, at);
}

static void rr_soa(pkt_t *p, int sec, const char *owner, uint32_t ttl, uint32_t minimum)
{
    size_t at = rr_begin(p, sec, owner, DNS_T_SOA, ttl);
    put_name(p, "ns.test");
    put_name(p, "hostmaster.test");
    put32(p, 1);
    put32(p, 3600);
    put32(p, 600);
    put32(p, 86400);
    put32(p, minimum);
    rr_end(p, at);
}

/* ---- cache -------------------------------------------------------------------------- */

static dns_answer_t *mk_a(const char *ip)
{
    dns_answer_t *a = dns_answer_new(DNS_T_A, DNS_OK);
    unsigned char b[4];
    assert_int_equal(inet_pton(AF_INET, ip, b), 1);
    assert_true(dns_answer_add_addr(a, b, 4));
    return a;
}

static void test_cache_expiry(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(16);
    assert_non_null(c);
    assert_true(dns_cache_put(c, DNS_T_A, "mx.example.test", mk_a("192.0.2.1"), 61000, 1000));
    const dns_answer_t *a = dns_cache_get(c, DNS_T_A, "MX.Example.TEST", 60999);
    assert_non_null(a);
    assert_int_equal(a->n, 1);
    assert_int_equal(a->rr[0].addr[3], 1);
    /* another type under the same name is another key */
    assert_null(dns_cache_get(c, DNS_T_AAAA, "mx.example.test", 2000));
    /* at the expiry instant the entry is gone, and dropped */
    assert_null(dns_cache_get(c, DNS_T_A, "mx.example.test", 61000));
    assert_int_equal(dns_cache_count(c), 0);
    /* an answer already expired is not stored (and freed: valgrind) */
    assert_false(dns_cache_put(c, DNS_T_A, "x.test", mk_a("192.0.2.2"), 500, 500));
    assert_int_equal(dns_cache_count(c), 0);
    dns_cache_free(c);
}

static void test_cache_replace(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(16);
    assert_true(dns_cache_put(c, DNS_T_A, "h.test", mk_a("192.0.2.1"), 10000, 0));
    assert_true(dns_cache_put(c, DNS_T_A, "H.TEST", mk_a("192.0.2.9"), 5000, 0));
    assert_int_equal(dns_cache_count(c), 1);
    const dns_answer_t *a = dns_cache_get(c, DNS_T_A, "h.test", 4999);
    assert_non_null(a);
    assert_int_equal(a->rr[0].addr[3], 9);
    assert_null(dns_cache_get(c, DNS_T_A, "h.test", 5000)); /* the new expiry counts */
    dns_cache_free(c);
}

static void test_cache_eviction(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(8);
    char name[64];
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "h%u.test", i);
        assert_true(dns_cache_put(c, DNS_T_A, name, mk_a("192.0.2.1"), 100000, 0));
        assert_true(dns_cache_count(c) <= 8);
        if (i == 3) /* keep h0 recently used: LRU must spare it for a while */
            assert_non_null(dns_cache_get(c, DNS_T_A, "h0.test", 1));
    }
    assert_int_equal(dns_cache_count(c), 8);
    assert_non_null(dns_cache_get(c, DNS_T_A, "h999.test", 1));
    assert_non_null(dns_cache_get(c, DNS_T_A, "h992.test", 1));
    assert_null(dns_cache_get(c, DNS_T_A, "h991.test", 1));
    dns_cache_free(c);

    /* LRU: after filling, touching the oldest entry saves it from the next eviction */
    c = dns_cache_new(3);
    dns_cache_put(c, DNS_T_A, "a.test", mk_a("192.0.2.1"), 100, 0);
    dns_cache_put(c, DNS_T_A, "b.test", mk_a("192.0.2.2"), 100, 0);
    dns_cache_put(c, DNS_T_A, "c.test", mk_a("192.0.2.3"), 100, 0);
    assert_non_null(dns_cache_get(c, DNS_T_A, "a.test", 1));
    dns_cache_put(c, DNS_T_A, "d.test", mk_a("192.0.2.4"), 100, 0);
    assert_non_null(dns_cache_get(c, DNS_T_A, "a.test", 1));
    assert_null(dns_cache_get(c, DNS_T_A, "b.test", 1));
    dns_cache_free(c);

    /* many entries: the bucket array grows, every entry stays reachable */
    c = dns_cache_new(5000);
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "n%u.test", i);
        dns_cache_put(c, DNS_T_MX, name, dns_answer_new(DNS_T_MX, DNS_NODATA), 100, 0);
    }
    for (unsigned i = 0; i < 5000; i += 97) {
        snprintf(name, sizeof name, "n%u.test", i);
        assert_non_null(dns_cache_get(c, DNS_T_MX, name, 1));
    }
    assert_int_equal(dns_cache_count(c), 5000);
    dns_cache_free(c);
}

static void test_cache_policy(void **state)
{
    (void)state;
    dns_cache_policy_t p = { .pos_max_s = 86400, .neg_max_s = 300, .fail_s = 5 };
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_OK, true, 60), 60000);
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_OK, true, 999999), 86400000);
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_OK, true, 0), 0);
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_NXDOMAIN, true, 3600), 300000);
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_NODATA, true, 30), 30000);
    /* RFC 2308 §5: no SOA, no negative caching */
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_NXDOMAIN, false, 0), 0);
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_SERVFAIL, false, 0), 5000);
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_TIMEOUT, false, 0), 5000);
    p.fail_s = 0;
    assert_int_equal(dns_cache_lifetime_ms(&p, DNS_TIMEOUT, false, 0), 0);
}

static void test_cache_name_too_long(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(4);
    char name[400];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_false(dns_cache_put(c, DNS_T_A, name, mk_a("192.0.2.1"), 100, 0));
    assert_null(dns_cache_get(c, DNS_T_A, name, 1));
    dns_cache_free(c);
}

/* ---- message walker ------------------------------------------------------------------ */

static void build_mx_answer(pkt_t *p)
{
    pkt_begin(p, 0x1234, 0, "Example.TEST", DNS_T_MX);
    rr_mx(p, SEC_AN, "example.test", 300, 10, "mx1.example.test");
    rr_mx(p, SEC_AN, "example.test", 120, 20, "mx2.example.test");
    rr_soa(p, SEC_NS, "example.test", 900, 600);
}

static void test_msg_basic(void **state)
{
    (void)state;
    pkt_t p;
    dns_msg_info_t info;
    build_mx_answer(&p);
    assert_true(dns_msg_scan(p.b, p.n, &info));
    assert_int_equal(info.id, 0x1234);
    assert_int_equal(info.rcode, 0);
    assert_int_equal(info.qtype, DNS_T_MX);
    assert_string_equal(info.qname, "example.test");
    assert_string_equal(info.final, "example.test");
    assert_int_equal(info.cnames, 0);
    assert_int_equal(info.nfinal, 2);
    assert_true(info.have_ttl);
    assert_int_equal(info.min_ttl, 120);
    assert_true(info.have_soa);
    assert_int_equal(info.soa_ttl, 600);  /* min(SOA TTL 900, MINIMUM 600) */

    /* NXDOMAIN: SOA TTL lower than MINIMUM wins (RFC 2308 §5) */
    pkt_begin(&p, 1, DNS_RC_NXDOMAIN, "nope.test", DNS_T_A);
    rr_soa(&p, SEC_NS, "test", 30, 3600);
    assert_true(dns_msg_scan(p.b, p.n, &info));
    assert_int_equal(info.rcode, DNS_RC_NXDOMAIN);
    assert_false(info.have_ttl);
    assert_int_equal(info.soa_ttl, 30);

    /* TTL with the top bit set counts as 0 (RFC 2181 §8) */
    pkt_begin(&p, 1, 0, "h.test", DNS_T_A);
    rr_a(&p, SEC_AN, "h.test", 0x80000010u, "192.0.2.1");
    assert_true(dns_msg_scan(p.b, p.n, &info));
    assert_int_equal(info.min_ttl, 0);
}

static void test_msg_cname(void **state)
{
    (void)state;
    pkt_t p;
    dns_msg_info_t info;
    pkt_begin(&p, 7, 0, "mx.example.test", DNS_T_A);
    rr_cname(&p, SEC_AN, "mx.example.test", 300, "Alias1.test.");
    rr_cname(&p, SEC_AN, "alias1.test", 200, "real.test");
    rr_a(&p, SEC_AN, "real.test", 100, "192.0.2.7");
    rr_a(&p, SEC_AN, "other.test", 50, "192.0.2.8"); /* not on the chain */
    assert_true(dns_msg_scan(p.b, p.n, &info));
    assert_string_equal(info.final, "real.test");
    assert_int_equal(info.cnames, 2);
    assert_int_equal(info.nfinal, 1);
    assert_int_equal(info.min_ttl, 50);

    pkt_begin(&p, 7, 0, "mx.example.test", DNS_T_A);
    rr_cname(&p, SEC_AN, "mx.example.test", 300, "real.test");
    assert_true(dns_msg_scan(p.b, p.n, &info));
    assert_string_equal(info.final, "real.test");
    assert_int_equal(info.nfinal, 0);
}

static void test_msg_truncated(void **state)
{
    (void)state;
    pkt_t p;
    dns_msg_info_t info;
    build_mx_answer(&p);
    for (size_t len = 0; len < p.n; len++) {
        unsigned char *copy = malloc(len ? len : 1); /* exact size: valgrind sees overreads */
        memcpy(copy, p.b, len);
        assert_false(dns_msg_scan(copy, len, &info));
        free(copy);
    }
    assert_false(dns_msg_scan(NULL, 0, &info));
}

static void test_msg_malformed(void **state)
{
    (void)state;
    pkt_t p;
    dns_msg_info_t info;

    /* compression pointer to itself in the question */
    p.n = 0;
    put16(&p, 1); put16(&p, 0x8180); put16(&p, 1); put16(&p, 0); put16(&p, 0); put16(&p, 0);
    put8(&p, 0xc0); put8(&p, 12);
    put16(&p, 1); put16(&p, 1);
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* pointer beyond the end */
    p.n = 12;
    put8(&p, 0xc0); put8(&p, 200);
    put16(&p, 1); put16(&p, 1);
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* two-pointer loop inside an answer owner name */
    pkt_begin(&p, 1, 0, "h.test", DNS_T_A);
    count_inc(&p, SEC_AN);
    size_t at = p.n;
    put8(&p, 0xc0); put8(&p, (unsigned)(at + 2));
    put8(&p, 0xc0); put8(&p, (unsigned)at);
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* RDLENGTH past the end */
    pkt_begin(&p, 1, 0, "h.test", DNS_T_A);
    rr_a(&p, SEC_AN, "h.test", 60, "192.0.2.1");
    p.b[p.n - 6] = 0x10;
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* CNAME whose target runs past its RDATA */
    pkt_begin(&p, 1, 0, "h.test", DNS_T_A);
    at = rr_begin(&p, SEC_AN, "h.test", DNS_T_CNAME, 60);
    put_name(&p, "target.test");
    p.b[at] = 0;
    p.b[at + 1] = 2;   /* claims 2 bytes of RDATA */
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* SOA too short for its five counters */
    pkt_begin(&p, 1, DNS_RC_NXDOMAIN, "h.test", DNS_T_A);
    at = rr_begin(&p, SEC_NS, "test", DNS_T_SOA, 60);
    put_name(&p, "ns.test");
    put_name(&p, "hm.test");
    put32(&p, 1);
    rr_end(&p, at);
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* no question, or two */
    pkt_begin(&p, 1, 0, "h.test", DNS_T_A);
    p.b[5] = 0;
    assert_false(dns_msg_scan(p.b, p.n, &info));
    p.b[5] = 2;
    assert_false(dns_msg_scan(p.b, p.n, &info));

    /* answer count larger than the records present */
    pkt_begin(&p, 1, 0, "h.test", DNS_T_A);
    rr_a(&p, SEC_AN, "h.test", 60, "192.0.2.1");
    p.b[7] = 50;
    assert_false(dns_msg_scan(p.b, p.n, &info));
}

/* Deterministic mutation fuzz: never crash, never read outside (valgrind / ASan). */
static void test_msg_mutations(void **state)
{
    (void)state;
    pkt_t base;
    pkt_begin(&base, 9, 0, "mx.example.test", DNS_T_A);
    rr_cname(&base, SEC_AN, "mx.example.test", 300, "real.test");
    rr_a(&base, SEC_AN, "real.test", 100, "192.0.2.7");
    rr_soa(&base, SEC_NS, "test", 60, 60);
    uint32_t seed = 12345;
    unsigned ok = 0;
    for (unsigned iter = 0; iter < 20000; iter++) {
        unsigned char *copy = malloc(base.n);
        memcpy(copy, base.b, base.n);
        for (unsigned k = 0; k < 1 + iter % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % base.n;
            seed = seed * 1103515245u + 12345u;
            copy[pos] = (unsigned char)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        size_t len = base.n - (seed >> 8) % 4;
        dns_msg_info_t info;
        if (dns_msg_scan(copy, len, &info))
            ok++;
        free(copy);
    }
    assert_true(ok > 0); /* some mutations stay valid; the point is no crash */
}

/* ---- mock DNS server ----------------------------------------------------------------- */

typedef struct {
    const char *owner;
    unsigned type;
    uint32_t ttl;
    unsigned pref;
    const char *data;
} mrec_t;

typedef enum { M_SERVFAIL = 1, M_REFUSED, M_DROP, M_GARBAGE } mspecial_kind_t;

typedef struct {
    const char *name;
    unsigned type; /* 0 = any */
    mspecial_kind_t kind;
} mspecial_t;

typedef struct {
    unsigned char b[512];
    size_t n;
    struct sockaddr_storage peer;
    socklen_t peerlen;
} held_t;

typedef struct {
    int fd, tfd;            /* UDP socket; TCP listener on the same port */
    unsigned short port;
    struct event *ev, *tev;
    struct event *conn[8];  /* TCP connections */
    size_t nconn, ntcp;
    struct event *flush;
    mrec_t rec[64];
    size_t nrec;
    mspecial_t spec[16];
    size_t nspec;
    bool chase;             /* follow CNAMEs like a recursive resolver */
    uint32_t soa_ttl, soa_min;
    bool hold;              /* answer in batches from a timer */
    held_t held[64];
    size_t nheld, max_held;
    char log[256][DNS_NAME_MAX + 8];
    unsigned logtype[256];
    size_t nlog;
} mock_t;

static void mock_add(mock_t *m, const char *owner, unsigned type, uint32_t ttl, unsigned pref,
                     const char *data)
{
    assert_true(m->nrec < 64);
    m->rec[m->nrec++] = (mrec_t){ owner, type, ttl, pref, data };
}

static void mock_special(mock_t *m, const char *name, unsigned type, mspecial_kind_t kind)
{
    assert_true(m->nspec < 16);
    m->spec[m->nspec++] = (mspecial_t){ name, type, kind };
}

static size_t mock_count(const mock_t *m, const char *name, unsigned type)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nlog; i++)
        if (strcmp(m->log[i], name) == 0 && (type == 0 || m->logtype[i] == type))
            n++;
    return n;
}

static bool mock_exists(const mock_t *m, const char *name)
{
    for (size_t i = 0; i < m->nrec; i++)
        if (mp_str_ieq(m->rec[i].owner, name))
            return true;
    return false;
}

static void mock_put_rec(pkt_t *p, const mrec_t *r)
{
    switch (r->type) {
    case DNS_T_A:
    case DNS_T_AAAA: rr_a(p, SEC_AN, r->owner, r->ttl, r->data); break;
    case DNS_T_MX: rr_mx(p, SEC_AN, r->owner, r->ttl, r->pref, r->data); break;
    case DNS_T_CNAME: rr_cname(p, SEC_AN, r->owner, r->ttl, r->data); break;
    case DNS_T_PTR: {
        size_t at = rr_begin(p, SEC_AN, r->owner, DNS_T_PTR, r->ttl);
        put_name(p, r->data);
        rr_end(p, at);
        break;
    }
    case DNS_T_TXT: rr_txt(p, SEC_AN, r->owner, r->ttl, r->data); break;
    default: fail();
    }
}

/* Build the response to (id, qname, qtype); false = stay silent. */
static bool mock_answer(mock_t *m, unsigned id, const char *qname, unsigned qtype, pkt_t *p)
{
    for (size_t i = 0; i < m->nspec; i++) {
        const mspecial_t *s = &m->spec[i];
        if (!mp_str_ieq(s->name, qname) || (s->type && s->type != qtype))
            continue;
        switch (s->kind) {
        case M_DROP: return false;
        case M_SERVFAIL: pkt_begin(p, id, DNS_RC_SERVFAIL, qname, qtype); return true;
        case M_REFUSED: pkt_begin(p, id, DNS_RC_REFUSED, qname, qtype); return true;
        case M_GARBAGE:
            pkt_begin(p, id, 0, qname, qtype);
            p->b[7] = 3; /* three answers promised, none present */
            return true;
        }
    }
    pkt_begin(p, id, 0, qname, qtype);
    const char *cur = qname;
    for (int depth = 0; depth < 12; depth++) {
        bool found = false;
        for (size_t i = 0; i < m->nrec; i++)
            if (mp_str_ieq(m->rec[i].owner, cur) && m->rec[i].type == qtype) {
                mock_put_rec(p, &m->rec[i]);
                found = true;
            }
        if (found)
            return true;
        const mrec_t *cn = NULL;
        for (size_t i = 0; i < m->nrec; i++)
            if (mp_str_ieq(m->rec[i].owner, cur) && m->rec[i].type == DNS_T_CNAME)
                cn = &m->rec[i];
        if (!cn)
            break;
        mock_put_rec(p, cn);
        if (!m->chase)
            return true;
        cur = cn->data;
    }
    if (!mock_exists(m, cur))
        p->b[3] = (unsigned char)((p->b[3] & 0xf0u) | DNS_RC_NXDOMAIN);
    rr_soa(p, SEC_NS, "test", m->soa_ttl, m->soa_min);
    return true;
}

static void mock_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_t *m = arg;
    for (size_t i = 0; i < m->nheld; i++)
        sendto(m->fd, m->held[i].b, m->held[i].n, 0, (struct sockaddr *)&m->held[i].peer,
               m->held[i].peerlen);
    m->nheld = 0;
}

/* Parse a raw query, log it and build the response; false = stay silent. */
static bool mock_handle(mock_t *m, const unsigned char *q, ssize_t n, pkt_t *p)
{
    if (n < 12)
        return false;
    /* parse the (uncompressed) question */
    char name[DNS_NAME_MAX] = "";
    size_t off = 12, pos = 0;
    while (off < (size_t)n && q[off] != 0) {
        size_t len = q[off++];
        if (off + len > (size_t)n || pos + len + 2 > sizeof name)
            return false;
        if (pos)
            name[pos++] = '.';
        memcpy(name + pos, q + off, len);
        pos += len;
        name[pos] = '\0';
        off += len;
    }
    if (off + 5 > (size_t)n)
        return false;
    unsigned qtype = (unsigned)q[off + 1] << 8 | q[off + 2];
    unsigned id = (unsigned)q[0] << 8 | q[1];
    if (m->nlog < 256) {
        mp_strlcpy(m->log[m->nlog], name, sizeof m->log[0]);
        m->logtype[m->nlog++] = qtype;
    }
    return mock_answer(m, id, name, qtype, p);
}

static void mock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mock_t *m = arg;
    unsigned char q[1500];
    struct sockaddr_storage peer;
    socklen_t peerlen = sizeof peer;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&peer, &peerlen);
    pkt_t p;
    if (!mock_handle(m, q, n, &p))
        return;
    if (p.n > 1232) { /* too big for the EDNS size c-ares offers: truncate (RFC 2181 §9) */
        size_t qend = 12;
        while (p.b[qend] != 0)
            qend += (size_t)p.b[qend] + 1;
        p.n = qend + 5;
        p.b[2] |= 0x02;
        memset(p.b + 6, 0, 6);
    }
    if (m->hold) {
        assert_true(m->nheld < 64 && p.n <= sizeof m->held[0].b);
        held_t *h = &m->held[m->nheld++];
        memcpy(h->b, p.b, p.n);
        h->n = p.n;
        h->peer = peer;
        h->peerlen = peerlen;
        if (m->nheld > m->max_held)
            m->max_held = m->nheld;
        struct timeval tv = { 0, 20000 };
        if (!evtimer_pending(m->flush, NULL))
            evtimer_add(m->flush, &tv);
        return;
    }
    sendto(fd, p.b, p.n, 0, (struct sockaddr *)&peer, peerlen);
}

static void mock_conn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mock_t *m = arg;
    unsigned char buf[2048];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
        for (size_t i = 0; i < m->nconn; i++)
            if (m->conn[i] && event_get_fd(m->conn[i]) == fd) {
                event_free(m->conn[i]);
                m->conn[i] = NULL;
            }
        close(fd);
        return;
    }
    size_t off = 0;
    while (off + 2 <= (size_t)n) { /* frames: 2-byte length + message (RFC 1035 §4.2.2) */
        size_t len = (size_t)buf[off] << 8 | buf[off + 1];
        if (off + 2 + len > (size_t)n)
            break;
        pkt_t p;
        if (mock_handle(m, buf + off + 2, (ssize_t)len, &p)) {
            unsigned char out[2 + sizeof p.b];
            out[0] = (unsigned char)(p.n >> 8);
            out[1] = (unsigned char)(p.n & 0xffu);
            memcpy(out + 2, p.b, p.n);
            assert_int_equal(send(fd, out, p.n + 2, 0), (ssize_t)(p.n + 2));
            m->ntcp++;
        }
        off += 2 + len;
    }
}

static void mock_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mock_t *m = arg;
    int c = accept(fd, NULL, NULL);
    if (c < 0)
        return;
    if (m->nconn >= 8) {
        close(c);
        return;
    }
    m->conn[m->nconn] = event_new(event_get_base(m->tev), c, EV_READ | EV_PERSIST,
                                  mock_conn_cb, m);
    event_add(m->conn[m->nconn++], NULL);
}

static mock_t *mock_new(struct event_base *base)
{
    mock_t *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->soa_ttl = 3600;
    m->soa_min = 60;
    /* a UDP and a TCP socket on the same ephemeral port; another process may hold the
     * TCP side of the port the kernel gave us for UDP, so try a few ports */
    struct sockaddr_in sin;
    bool bound = false;
    for (int attempt = 0; attempt < 50 && !bound; attempt++) {
        m->fd = socket(AF_INET, SOCK_DGRAM, 0);
        m->tfd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(m->fd >= 0 && m->tfd >= 0);
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(m->fd, (struct sockaddr *)&sin, sizeof sin), 0);
        socklen_t sl = sizeof sin;
        assert_int_equal(getsockname(m->fd, (struct sockaddr *)&sin, &sl), 0);
        int one = 1;
        setsockopt(m->tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(m->tfd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(m->tfd, 8) == 0) {
            bound = true;
        } else {
            close(m->fd);
            close(m->tfd);
        }
    }
    assert_true(bound);
    m->port = ntohs(sin.sin_port);
    evutil_make_socket_nonblocking(m->fd);
    m->ev = event_new(base, m->fd, EV_READ | EV_PERSIST, mock_read_cb, m);
    m->flush = evtimer_new(base, mock_flush_cb, m);
    event_add(m->ev, NULL);
    m->tev = event_new(base, m->tfd, EV_READ | EV_PERSIST, mock_accept_cb, m);
    event_add(m->tev, NULL);
    return m;
}

static void mock_free(mock_t *m)
{
    for (size_t i = 0; i < m->nconn; i++)
        if (m->conn[i]) {
            close(event_get_fd(m->conn[i]));
            event_free(m->conn[i]);
        }
    event_free(m->tev);
    close(m->tfd);
    event_free(m->ev);
    event_free(m->flush);
    close(m->fd);
    free(m);
}

/* ---- resolver harness ---------------------------------------------------------------- */

typedef struct {
    struct event_base *base;
    mock_t *mock;
    dns_resolver_t *r;
    int ncalls;
    int nok;
    dns_mail_t res[4];
    bool expired;
} env_t;

static uint64_t fake_now_ms;
static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now_ms;
}

static env_t *env_new(unsigned timeout_ms, unsigned tries, unsigned max_inflight,
                      unsigned neg_ttl_max)
{
    env_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->base = event_base_new();
    e->mock = mock_new(e->base);
    char server[64];
    snprintf(server, sizeof server, "127.0.0.1:%u", (unsigned)e->mock->port);
    dns_opts_t o = { .server = server, .timeout_ms = timeout_ms, .tries = tries,
                     .max_inflight = max_inflight, .neg_ttl_max = neg_ttl_max };
    mp_status_t st = MP_ERR_INTERNAL;
    e->r = dns_resolver_new(e->base, &o, &st);
    assert_int_equal(st, MP_OK);
    assert_non_null(e->r);
    fake_now_ms = 1000000;
    mp_clock_set(fake_clock, NULL);
    return e;
}

static void env_free(env_t *e)
{
    dns_resolver_free(e->r);
    mock_free(e->mock);
    event_base_free(e->base);
    mp_clock_set(NULL, NULL);
    free(e);
}

static void got_cb(const dns_mail_t *res, void *arg)
{
    env_t *e = arg;
    if (e->ncalls < 4)
        e->res[e->ncalls] = *res;
    e->ncalls++;
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    env_t *e = arg;
    e->expired = true;
    event_base_loopbreak(e->base);
}

/* Run the loop until n callbacks have happened or ms have passed (a safety net). */
static void run_until(env_t *e, int n, int ms)
{
    struct event *dl = evtimer_new(e->base, deadline_cb, e);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    e->expired = false;
    evtimer_add(dl, &tv);
    while (e->ncalls < n && !e->expired)
        event_base_loop(e->base, EVLOOP_ONCE);
    event_free(dl);
}

/* One look-up to completion; returns the result slot. */
static const dns_mail_t *lookup(env_t *e, const char *domain)
{
    int before = e->ncalls;
    uint64_t id = dns_mail_lookup(e->r, domain, got_cb, e);
    assert_true(id != 0);
    assert_int_equal(e->ncalls, before); /* never called from inside dns_mail_lookup */
    run_until(e, before + 1, 5000);
    assert_int_equal(e->ncalls, before + 1);
    return &e->res[before < 4 ? before : 3];
}

static void zone_basic(mock_t *m)
{
    mock_add(m, "example.test", DNS_T_MX, 300, 20, "b.example.test");
    mock_add(m, "example.test", DNS_T_MX, 300, 10, "c.example.test");
    mock_add(m, "example.test", DNS_T_MX, 300, 10, "A.Example.TEST");
    mock_add(m, "example.test", DNS_T_MX, 300, 30, "d.example.test");
    mock_add(m, "example.test", DNS_T_TXT, 300, 0, "google-site-verification=x");
    mock_add(m, "example.test", DNS_T_TXT, 300, 0, "V=SPF1 ip4:192.0.2.0/24 -all");
    mock_add(m, "_dmarc.example.test", DNS_T_TXT, 300, 0, "v=DMARC1; p=reject");
    mock_add(m, "a.example.test", DNS_T_A, 300, 0, "192.0.2.1");
    mock_add(m, "a.example.test", DNS_T_AAAA, 300, 0, "2001:db8::1");
    mock_add(m, "a.example.test", DNS_T_A, 300, 0, "192.0.2.11");
    mock_add(m, "b.example.test", DNS_T_A, 300, 0, "192.0.2.2");
    mock_add(m, "c.example.test", DNS_T_AAAA, 300, 0, "2001:db8::3");
    mock_add(m, "d.example.test", DNS_T_A, 100, 0, "192.0.2.4");
}

/* ---- resolver tests -------------------------------------------------------------------- */

static void test_status_name(void **state)
{
    (void)state;
    assert_string_equal(dns_status_name(DNS_OK), "OK");
    assert_string_equal(dns_status_name(DNS_NXDOMAIN), "NXDOMAIN");
    assert_string_equal(dns_status_name(DNS_TIMEOUT), "TIMEOUT");
    assert_string_equal(dns_status_name((dns_status_t)99), "UNKNOWN");
}

static void test_server_option(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *bad[] = { "bogus", "1.2.3.4:0", "1.2.3.4:99999", "[::1", "[::1]x", "1.2.3.4:",
                          "", "1.2.3.4,", "300.1.1.1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dns_opts_t o = { .server = bad[i] };
        mp_status_t st = MP_OK;
        assert_null(dns_resolver_new(base, &o, &st));
        assert_int_equal(st, MP_ERR_ARG);
    }
    const char *good[] = { "127.0.0.1", "127.0.0.1:5353", "[::1]:5353", "::1", "[::1]",
                           "127.0.0.1:53, 127.0.0.2" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        dns_opts_t o = { .server = good[i] };
        mp_status_t st = MP_ERR_INTERNAL;
        dns_resolver_t *r = dns_resolver_new(base, &o, &st);
        assert_int_equal(st, MP_OK);
        assert_non_null(r);
        dns_resolver_free(r);
    }
    /* resolv.conf path */
    mp_status_t st = MP_ERR_INTERNAL;
    dns_resolver_t *r = dns_resolver_new(base, NULL, &st);
    assert_int_equal(st, MP_OK);
    dns_resolver_free(r);
    event_base_free(base);
}

static void test_mx_sorted(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    const dns_mail_t *m = lookup(e, "Example.TEST.");
    assert_int_equal(m->status, DNS_OK);
    assert_false(m->null_mx);
    assert_false(m->implicit_mx);
    assert_int_equal(m->nmx, 4);
    assert_string_equal(m->mx[0].host, "a.example.test");
    assert_int_equal(m->mx[0].pref, 10);
    assert_string_equal(m->mx[1].host, "c.example.test");
    assert_string_equal(m->mx[2].host, "b.example.test");
    assert_int_equal(m->mx[2].pref, 20);
    assert_string_equal(m->mx[3].host, "d.example.test");
    /* IPv4 first, then IPv6 */
    assert_int_equal(m->mx[0].status, DNS_OK);
    assert_int_equal(m->mx[0].nip, 3);
    assert_string_equal(m->mx[0].ip[0].text, "192.0.2.1");
    assert_string_equal(m->mx[0].ip[1].text, "192.0.2.11");
    assert_string_equal(m->mx[0].ip[2].text, "2001:db8::1");
    assert_int_equal(m->mx[0].ip[0].sa.ss_family, AF_INET);
    assert_int_equal(m->mx[0].ip[2].sa.ss_family, AF_INET6);
    assert_int_equal(m->mx[0].ip[2].salen, sizeof(struct sockaddr_in6));
    assert_int_equal(m->mx[1].nip, 1);
    assert_string_equal(m->mx[1].ip[0].text, "2001:db8::3");
    assert_true(m->spf);
    assert_true(m->dmarc);
    /* MX + 2 TXT + A/AAAA for 4 hosts */
    assert_int_equal(m->queries, 11);
    assert_int_equal(e->mock->nlog, 11);
    assert_int_equal(mock_count(e->mock, "_dmarc.example.test", DNS_T_TXT), 1);
    assert_string_equal(m->detail, "");
    env_free(e);
}

static void test_cache_second_lookup(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    e->mock->soa_min = 600; /* NODATA answers live 300 s (the default cap) */
    const dns_mail_t *m1 = lookup(e, "example.test");
    assert_int_equal(m1->queries, 11);
    assert_int_equal(m1->ttl_ms, 100000); /* the shortest TTL: d.example.test's A */
    const dns_mail_t *m2 = lookup(e, "EXAMPLE.test");
    assert_int_equal(m2->queries, 0);
    assert_int_equal(m2->ttl_ms, 100000);
    assert_int_equal(e->mock->nlog, 11);
    assert_int_equal(m2->nmx, 4);
    assert_string_equal(m2->mx[0].ip[2].text, "2001:db8::1");
    assert_true(m2->spf && m2->dmarc);
    dns_stats_t s;
    dns_stats(e->r, &s);
    assert_int_equal(s.queries_sent, 11);
    assert_int_equal(s.misses, 11);
    assert_int_equal(s.hits, 11);

    /* d.example.test's A has TTL 100, the rest 300: at +101 s only that is re-asked */
    fake_now_ms += 101 * 1000;
    const dns_mail_t *m3 = lookup(e, "example.test");
    assert_int_equal(m3->queries, 1);
    assert_int_equal(m3->ttl_ms, 100000); /* d's fresh 100 s; the others have 199 s */
    assert_int_equal(mock_count(e->mock, "d.example.test", DNS_T_A), 2);
    /* and at +301 s everything again (d's fresh entry lives to +201 s... +101+100) */
    fake_now_ms += 200 * 1000;
    const dns_mail_t *m4 = lookup(e, "example.test");
    assert_int_equal(m4->queries, 11);
    assert_int_equal(m4->nmx, 4);
    env_free(e);
}

/* ttl_ms: the shortest time left of the answers a look-up was read from (the fleet
 * shares the answer that long) */
static void test_mail_ttl(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    e->mock->soa_min = 600;
    assert_int_equal(lookup(e, "example.test")->ttl_ms, 100000);
    fake_now_ms += 40 * 1000;
    const dns_mail_t *m = lookup(e, "example.test");
    assert_int_equal(m->queries, 0);
    assert_int_equal(m->ttl_ms, 60000);
    assert_int_equal(lookup(e, "bad..name")->ttl_ms, 0);
    env_free(e);
}

static void test_mx_cname_chased(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    mock_t *mk = e->mock;
    mk->chase = true;
    mock_add(mk, "cn.test", DNS_T_MX, 300, 10, "mx.cn.test");
    mock_add(mk, "mx.cn.test", DNS_T_CNAME, 300, 0, "real.cn.test");
    mock_add(mk, "real.cn.test", DNS_T_A, 300, 0, "192.0.2.50");
    const dns_mail_t *m = lookup(e, "cn.test");
    assert_int_equal(m->status, DNS_OK);
    assert_int_equal(m->nmx, 1);
    assert_string_equal(m->mx[0].host, "mx.cn.test");
    assert_int_equal(m->mx[0].status, DNS_OK);
    assert_int_equal(m->mx[0].nip, 1);
    assert_string_equal(m->mx[0].ip[0].text, "192.0.2.50");
    /* the resolver chased: no question for the target */
    assert_int_equal(mock_count(mk, "real.cn.test", 0), 0);
    env_free(e);
}

static void test_mx_cname_requery(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    mock_t *mk = e->mock;
    mk->chase = false; /* answers carry only the CNAME: we must ask the target */
    mock_add(mk, "cn.test", DNS_T_MX, 300, 10, "mx.cn.test");
    mock_add(mk, "mx.cn.test", DNS_T_CNAME, 300, 0, "mid.cn.test");
    mock_add(mk, "mid.cn.test", DNS_T_CNAME, 300, 0, "real.cn.test");
    mock_add(mk, "real.cn.test", DNS_T_A, 300, 0, "192.0.2.50");
    mock_add(mk, "real.cn.test", DNS_T_AAAA, 300, 0, "2001:db8::50");
    const dns_mail_t *m = lookup(e, "cn.test");
    assert_int_equal(m->mx[0].status, DNS_OK);
    assert_int_equal(m->mx[0].nip, 2);
    assert_string_equal(m->mx[0].ip[0].text, "192.0.2.50");
    assert_string_equal(m->mx[0].ip[1].text, "2001:db8::50");
    assert_int_equal(mock_count(mk, "mid.cn.test", DNS_T_A), 1);
    assert_int_equal(mock_count(mk, "real.cn.test", DNS_T_A), 1);
    assert_int_equal(mock_count(mk, "real.cn.test", DNS_T_AAAA), 1);
    env_free(e);
}

static void test_mx_cname_loop(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    mock_t *mk = e->mock;
    mock_add(mk, "loop.test", DNS_T_MX, 300, 10, "x.loop.test");
    mock_add(mk, "x.loop.test", DNS_T_CNAME, 300, 0, "y.loop.test");
    mock_add(mk, "y.loop.test", DNS_T_CNAME, 300, 0, "x.loop.test");
    const dns_mail_t *m = lookup(e, "loop.test");
    assert_int_equal(m->status, DNS_OK);
    assert_int_equal(m->mx[0].status, DNS_ERROR);
    assert_int_equal(m->mx[0].nip, 0);
    /* 1 + 8 re-queries per family at most; the cache answers the repeats */
    assert_true(mock_count(mk, "x.loop.test", DNS_T_A) <= 1);
    env_free(e);
}

static void test_null_mx(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    mock_add(e->mock, "null.test", DNS_T_MX, 300, 0, "");
    const dns_mail_t *m = lookup(e, "null.test");
    assert_int_equal(m->status, DNS_OK);
    assert_true(m->null_mx);
    assert_int_equal(m->nmx, 0);
    assert_int_equal(m->queries, 3); /* no address look-ups */
    env_free(e);
}

static void test_implicit_mx(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    mock_add(e->mock, "impl.test", DNS_T_A, 300, 0, "192.0.2.77");
    mock_add(e->mock, "bare.test", DNS_T_TXT, 300, 0, "hello");
    const dns_mail_t *m = lookup(e, "impl.test");
    assert_int_equal(m->status, DNS_OK);
    assert_true(m->implicit_mx);
    assert_int_equal(m->nmx, 1);
    assert_string_equal(m->mx[0].host, "impl.test");
    assert_int_equal(m->mx[0].pref, 0);
    assert_int_equal(m->mx[0].status, DNS_OK);
    assert_int_equal(m->mx[0].nip, 1);
    assert_string_equal(m->mx[0].ip[0].text, "192.0.2.77");
    assert_false(m->spf);

    /* the name exists but has no address either: routing known, no host with address */
    m = lookup(e, "bare.test");
    assert_int_equal(m->status, DNS_OK);
    assert_true(m->implicit_mx);
    assert_int_equal(m->nmx, 1);
    assert_int_equal(m->mx[0].status, DNS_NODATA);
    assert_int_equal(m->mx[0].nip, 0);
    assert_string_not_equal(m->detail, "");
    env_free(e);
}

static void test_nxdomain(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    e->mock->soa_min = 30;
    const dns_mail_t *m = lookup(e, "nope.test");
    assert_int_equal(m->status, DNS_NXDOMAIN);
    assert_int_equal(m->nmx, 0);
    assert_false(m->spf || m->dmarc);
    assert_string_equal(m->detail, "MX query: NXDOMAIN");
    assert_int_equal(m->queries, 3);
    /* negative caching by the SOA minimum (30 s) */
    m = lookup(e, "nope.test");
    assert_int_equal(m->status, DNS_NXDOMAIN);
    assert_int_equal(m->queries, 0);
    fake_now_ms += 31 * 1000;
    m = lookup(e, "nope.test");
    assert_int_equal(m->queries, 3);
    env_free(e);
}

static void test_negative_ttl_cap(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 10); /* neg_ttl_max 10 s */
    e->mock->soa_min = 3600;
    lookup(e, "nope.test");
    fake_now_ms += 9 * 1000;
    assert_int_equal(lookup(e, "nope.test")->queries, 0);
    fake_now_ms += 2 * 1000;
    assert_int_equal(lookup(e, "nope.test")->queries, 3);
    env_free(e);
}

static void test_servfail(void **state)
{
    (void)state;
    env_t *e = env_new(500, 1, 0, 0);
    mock_special(e->mock, "sf.test", DNS_T_MX, M_SERVFAIL);
    mock_special(e->mock, "ref.test", 0, M_REFUSED);
    mock_special(e->mock, "bad.test", DNS_T_MX, M_GARBAGE);
    const dns_mail_t *m = lookup(e, "sf.test");
    assert_int_equal(m->status, DNS_SERVFAIL);
    assert_string_equal(m->detail, "MX query: SERVFAIL");
    m = lookup(e, "ref.test");
    assert_int_equal(m->status, DNS_SERVFAIL);
    m = lookup(e, "bad.test");
    assert_true(m->status == DNS_ERROR || m->status == DNS_SERVFAIL);
    /* failures are cached briefly (5 s), then asked again */
    size_t before = mock_count(e->mock, "sf.test", DNS_T_MX);
    assert_int_equal(lookup(e, "sf.test")->status, DNS_SERVFAIL);
    assert_int_equal(mock_count(e->mock, "sf.test", DNS_T_MX), before);
    fake_now_ms += 6000;
    lookup(e, "sf.test");
    assert_true(mock_count(e->mock, "sf.test", DNS_T_MX) > before);
    env_free(e);
}

static void test_mx_host_failures(void **state)
{
    (void)state;
    env_t *e = env_new(150, 1, 0, 0);
    mock_t *mk = e->mock;
    mock_add(mk, "mixed.test", DNS_T_MX, 300, 10, "sf.mixed.test");
    mock_add(mk, "mixed.test", DNS_T_MX, 300, 20, "gone.mixed.test");
    mock_add(mk, "mixed.test", DNS_T_MX, 300, 30, "slow.mixed.test");
    mock_add(mk, "mixed.test", DNS_T_MX, 300, 40, "ok.mixed.test");
    mock_add(mk, "mixed.test", DNS_T_MX, 300, 50, "bad_host!.mixed.test");
    mock_special(mk, "sf.mixed.test", 0, M_SERVFAIL);
    mock_special(mk, "slow.mixed.test", DNS_T_A, M_DROP);
    mock_add(mk, "ok.mixed.test", DNS_T_A, 300, 0, "192.0.2.9");
    const dns_mail_t *m = lookup(e, "mixed.test");
    assert_int_equal(m->status, DNS_OK);
    assert_int_equal(m->nmx, 5);
    assert_string_equal(m->mx[0].host, "sf.mixed.test");
    assert_int_equal(m->mx[0].status, DNS_SERVFAIL);
    assert_int_equal(m->mx[1].status, DNS_NXDOMAIN);
    assert_int_equal(m->mx[1].nip, 0);
    assert_int_equal(m->mx[2].status, DNS_TIMEOUT);
    assert_int_equal(m->mx[3].status, DNS_OK);
    assert_int_equal(m->mx[4].status, DNS_ERROR);   /* not a host name: never asked */
    assert_int_equal(mock_count(mk, "bad_host!.mixed.test", 0), 0);
    env_free(e);
}

static void test_timeout(void **state)
{
    (void)state;
    env_t *e = env_new(100, 1, 0, 0);
    mock_special(e->mock, "slow.test", DNS_T_MX, M_DROP);
    mock_add(e->mock, "slow.test", DNS_T_TXT, 300, 0, "v=spf1 -all");
    const dns_mail_t *m = lookup(e, "slow.test");
    assert_int_equal(m->status, DNS_TIMEOUT);
    assert_string_equal(m->detail, "MX query: TIMEOUT");
    assert_true(m->spf); /* TXT answered even though MX timed out */
    env_free(e);
}

static void test_txt_failures_do_not_fail(void **state)
{
    (void)state;
    env_t *e = env_new(100, 1, 0, 0);
    mock_add(e->mock, "t.test", DNS_T_MX, 300, 10, "mx.t.test");
    mock_add(e->mock, "mx.t.test", DNS_T_A, 300, 0, "192.0.2.1");
    mock_special(e->mock, "t.test", DNS_T_TXT, M_DROP);
    mock_special(e->mock, "_dmarc.t.test", DNS_T_TXT, M_SERVFAIL);
    const dns_mail_t *m = lookup(e, "t.test");
    assert_int_equal(m->status, DNS_OK);
    assert_false(m->spf || m->dmarc);
    assert_int_equal(m->mx[0].nip, 1);
    env_free(e);
}

static void test_spf_dmarc_strict(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    mock_add(e->mock, "s.test", DNS_T_MX, 300, 10, "mx.s.test");
    mock_add(e->mock, "s.test", DNS_T_TXT, 300, 0, "v=spf10 nope");
    mock_add(e->mock, "_dmarc.s.test", DNS_T_TXT, 300, 0, "v=DMARC1");
    const dns_mail_t *m = lookup(e, "s.test");
    assert_false(m->spf);
    assert_true(m->dmarc);
    env_free(e);
}

static void test_tcp_fallback(void **state)
{
    (void)state;
    static char txt[10][201];
    env_t *e = env_new(500, 2, 0, 0);
    mock_add(e->mock, "big.test", DNS_T_MX, 300, 10, "mx.big.test");
    mock_add(e->mock, "mx.big.test", DNS_T_A, 300, 0, "192.0.2.80");
    for (unsigned i = 0; i < 9; i++) {
        memset(txt[i], 'a' + (int)i, 200);
        txt[i][200] = '\0';
        mock_add(e->mock, "big.test", DNS_T_TXT, 300, 0, txt[i]);
    }
    mock_add(e->mock, "big.test", DNS_T_TXT, 300, 0, "v=spf1 include:_spf.big.test -all");
    const dns_mail_t *m = lookup(e, "big.test");
    assert_int_equal(m->status, DNS_OK);
    assert_true(m->spf);               /* the last of 10 TXT records, only over TCP */
    assert_int_equal(e->mock->ntcp, 1);
    assert_int_equal(m->mx[0].nip, 1);
    env_free(e);
}

static void test_cancel_before_answer(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    e->mock->hold = true;
    uint64_t id = dns_mail_lookup(e->r, "example.test", got_cb, e);
    dns_cancel(e->r, id);
    dns_cancel(e->r, id);      /* twice: ignored */
    dns_cancel(e->r, 987654);  /* unknown: ignored */
    run_until(e, 1, 200);
    assert_int_equal(e->ncalls, 0);
    /* the late answers were harmless and cached: only the host addresses are new */
    assert_int_equal(e->mock->nlog, 3);
    const dns_mail_t *m = lookup(e, "example.test");
    assert_int_equal(m->queries, 8);
    assert_int_equal(m->nmx, 4);
    env_free(e);
}

static void test_cancel_drops_queued(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 1, 0);
    zone_basic(e->mock);
    mock_add(e->mock, "other.test", DNS_T_MX, 300, 10, "a.example.test");
    e->mock->hold = true;
    dns_mail_lookup(e->r, "example.test", got_cb, e);
    uint64_t id = dns_mail_lookup(e->r, "other.test", got_cb, e);
    dns_cancel(e->r, id);
    run_until(e, 1, 5000);
    assert_int_equal(e->ncalls, 1);
    assert_int_equal(e->res[0].nmx, 4);
    /* queued behind the in-flight bound and wanted by nobody: never sent */
    assert_int_equal(mock_count(e->mock, "other.test", 0), 0);
    assert_int_equal(mock_count(e->mock, "_dmarc.other.test", 0), 0);
    env_free(e);
}

static void test_free_with_pending(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 1, 0);
    zone_basic(e->mock);
    e->mock->hold = true;
    dns_mail_lookup(e->r, "example.test", got_cb, e);
    dns_mail_lookup(e->r, "other.test", got_cb, e);
    run_until(e, 1, 5); /* let a query reach the wire */
    dns_resolver_free(e->r);
    e->r = NULL;
    run_until(e, 1, 100); /* late answers arrive at a closed socket */
    assert_int_equal(e->ncalls, 0);
    e->r = dns_resolver_new(e->base, NULL, NULL);
    env_free(e);
}

static void test_coalescing(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    e->mock->hold = true;
    dns_mail_lookup(e->r, "example.test", got_cb, e);
    dns_mail_lookup(e->r, "example.test", got_cb, e);
    run_until(e, 2, 5000);
    assert_int_equal(e->ncalls, 2);
    assert_int_equal(mock_count(e->mock, "example.test", DNS_T_MX), 1);
    assert_int_equal(e->mock->nlog, 11);
    assert_int_equal(e->res[0].queries + e->res[1].queries, 11);
    assert_int_equal(e->res[1].nmx, 4);
    assert_string_equal(e->res[1].mx[3].ip[0].text, "192.0.2.4");
    env_free(e);
}

static void test_max_inflight(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 1, 0);
    zone_basic(e->mock);
    e->mock->hold = true;
    const dns_mail_t *m = lookup(e, "example.test");
    assert_int_equal(m->nmx, 4);
    assert_int_equal(m->mx[0].nip, 3);
    assert_int_equal(e->mock->max_held, 1);
    env_free(e);

    /* control: without the bound, the mock sees them together */
    e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    e->mock->hold = true;
    lookup(e, "example.test");
    assert_true(e->mock->max_held >= 3);
    env_free(e);
}

static void test_cached_answer_is_deferred(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    zone_basic(e->mock);
    lookup(e, "example.test");
    /* fully cached: still not called from inside dns_mail_lookup */
    uint64_t id1 = dns_mail_lookup(e->r, "example.test", got_cb, e);
    uint64_t id2 = dns_mail_lookup(e->r, "example.test", got_cb, e);
    assert_true(id1 != id2);
    assert_int_equal(e->ncalls, 1);
    dns_cancel(e->r, id2);
    run_until(e, 3, 200);
    assert_int_equal(e->ncalls, 2);
    assert_int_equal(e->res[1].queries, 0);
    env_free(e);
}

static void many_cb(const dns_mail_t *res, void *arg)
{
    env_t *e = arg;
    e->ncalls++;
    if (res->status == DNS_OK && res->nmx == 1 && res->mx[0].nip == 1 && res->spf)
        e->nok++;
}

/* 40 look-ups over 20 domains sharing 5 MX hosts, every 7th cancelled, 4 on the wire. */
static void test_many_lookups(void **state)
{
    (void)state;
    static char dom[20][32], mx[5][32];
    env_t *e = env_new(500, 2, 4, 0);
    e->mock->hold = true;
    for (unsigned i = 0; i < 5; i++) {
        snprintf(mx[i], sizeof mx[i], "mx%u.test", i);
        mock_add(e->mock, mx[i], DNS_T_A, 300, 0, "192.0.2.25");
    }
    for (unsigned i = 0; i < 20; i++) {
        snprintf(dom[i], sizeof dom[i], "d%u.test", i);
        mock_add(e->mock, dom[i], DNS_T_MX, 300, 10, mx[i % 5]);
        mock_add(e->mock, dom[i], DNS_T_TXT, 300, 0, "v=spf1 mx -all");
    }
    int expected = 0;
    for (unsigned k = 0; k < 40; k++) {
        uint64_t id = dns_mail_lookup(e->r, dom[k % 20], many_cb, e);
        if (k % 7 == 3)
            dns_cancel(e->r, id);
        else
            expected++;
    }
    run_until(e, expected, 10000);
    assert_int_equal(e->ncalls, expected);
    assert_int_equal(e->nok, expected);
    assert_true(e->mock->max_held <= 4);
    /* every question asked once: 20 x (MX, TXT, _dmarc TXT) + 5 x (A, AAAA) */
    assert_int_equal(e->mock->nlog, 70);
    dns_stats_t s;
    dns_stats(e->r, &s);
    assert_int_equal(s.queries_sent, 70);
    env_free(e);
}

static void test_invalid_domain(void **state)
{
    (void)state;
    env_t *e = env_new(500, 2, 0, 0);
    const char *bad[] = { "", "a..b", "-.", "exa mple.test", ".lead.test", "x\\y.test" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const dns_mail_t *m = lookup(e, bad[i]);
        assert_int_equal(m->status, DNS_ERROR);
    }
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(lookup(e, longname)->status, DNS_ERROR);
    assert_int_equal(e->mock->nlog, 0);
    env_free(e);
}

/* ---- dns_records_lookup ------------------------------------------------------------- */

typedef struct {
    int ncalls;
    dns_records_t res;
} rec_env_t;

static void rec_cb(const dns_records_t *res, void *arg)
{
    rec_env_t *re = arg;
    re->res = *res;
    re->ncalls++;
}

static const dns_records_t *records(env_t *e, rec_env_t *re, dns_rr_type_t type,
                                    const char *name)
{
    re->ncalls = 0;
    uint64_t id = dns_records_lookup(e->r, type, name, rec_cb, re);
    assert_true(id != 0);
    assert_int_equal(re->ncalls, 0);   /* never from inside the call */
    struct event *dl = evtimer_new(e->base, deadline_cb, e);
    struct timeval tv = { 5, 0 };
    e->expired = false;
    evtimer_add(dl, &tv);
    while (re->ncalls == 0 && !e->expired)
        event_base_loop(e->base, EVLOOP_ONCE);
    event_free(dl);
    assert_int_equal(re->ncalls, 1);
    return &re->res;
}

static void test_records(void **state)
{
    (void)state;
    env_t *e = env_new(300, 1, 0, 0);
    rec_env_t re;
    zone_basic(e->mock);
    mock_add(e->mock, "10.7.0.127.in-addr.arpa", DNS_T_PTR, 300, 0, "Good.Doctor.TEST");
    mock_add(e->mock, "10.7.0.127.in-addr.arpa", DNS_T_PTR, 300, 0, "other.doctor.test");
    mock_add(e->mock, "host.test", DNS_T_A, 300, 0, "192.0.2.7");
    mock_add(e->mock, "host.test", DNS_T_AAAA, 300, 0, "2001:db8::7");
    mock_special(e->mock, "broken.test", 0, M_SERVFAIL);

    const dns_records_t *r = records(e, &re, DNS_RR_PTR, "10.7.0.127.in-addr.arpa.");
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n, 2);
    assert_string_equal(r->rr[0].text, "good.doctor.test");
    assert_string_equal(r->rr[1].text, "other.doctor.test");
    assert_string_equal(r->name, "10.7.0.127.in-addr.arpa");

    r = records(e, &re, DNS_RR_TXT, "example.test");
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n, 2);
    assert_string_equal(r->rr[1].text, "V=SPF1 ip4:192.0.2.0/24 -all");

    r = records(e, &re, DNS_RR_A, "host.test");
    assert_int_equal(r->status, DNS_OK);
    assert_string_equal(r->rr[0].text, "192.0.2.7");
    assert_int_equal(r->rr[0].ip.sa.ss_family, AF_INET);
    r = records(e, &re, DNS_RR_AAAA, "host.test");
    assert_string_equal(r->rr[0].text, "2001:db8::7");

    r = records(e, &re, DNS_RR_MX, "example.test");
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n, 4);
    assert_string_equal(r->rr[0].text, "b.example.test");
    assert_int_equal(r->rr[0].pref, 20);

    assert_int_equal(records(e, &re, DNS_RR_A, "nosuch.test")->status, DNS_NXDOMAIN);
    assert_int_equal(records(e, &re, DNS_RR_PTR, "host.test")->status, DNS_NODATA);
    assert_int_equal(records(e, &re, DNS_RR_TXT, "broken.test")->status, DNS_SERVFAIL);
    size_t asked = e->mock->nlog;
    assert_int_equal(records(e, &re, DNS_RR_A, "bad name.test")->status, DNS_ERROR);
    assert_int_equal(e->mock->nlog, asked);   /* no query for an invalid name */
    /* uncached: the same question goes to the server again */
    records(e, &re, DNS_RR_A, "host.test");
    assert_int_equal(e->mock->nlog, asked + 1);
    assert_string_equal(dns_rr_type_name(DNS_RR_PTR), "PTR");
    env_free(e);
}

static void test_records_cancel_and_free(void **state)
{
    (void)state;
    env_t *e = env_new(300, 1, 0, 0);
    rec_env_t re = { 0 };
    mock_add(e->mock, "host.test", DNS_T_A, 300, 0, "192.0.2.7");
    uint64_t id = dns_records_lookup(e->r, DNS_RR_A, "host.test", rec_cb, &re);
    dns_cancel(e->r, id);
    run_until(e, 1, 300);   /* nothing may call back */
    assert_int_equal(re.ncalls, 0);
    dns_records_lookup(e->r, DNS_RR_A, "host.test", rec_cb, &re);
    env_free(e);            /* pending: freed without a callback */
    assert_int_equal(re.ncalls, 0);
}

static void test_local_addr_option(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    mp_status_t st = MP_OK;
    dns_opts_t o = { .server = "127.0.0.1", .local_addr = "not-an-address" };
    assert_null(dns_resolver_new(base, &o, &st));
    assert_int_equal(st, MP_ERR_ARG);
    o.local_addr = "127.0.0.1";
    dns_resolver_t *r = dns_resolver_new(base, &o, &st);
    assert_non_null(r);
    dns_resolver_free(r);
    event_base_free(base);
}

static void log_cb(mp_log_level_t level, const char *msg, void *arg)
{
    (void)arg;
    printf("log[%d] %s\n", (int)level, msg);
}

int main(void)
{
    if (getenv("MP_TEST_LOG"))   /* debugging aid: show the resolver's log */
        mp_log_set(log_cb, MP_LOG_DEBUG, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_replace),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_cache_policy),
        cmocka_unit_test(test_cache_name_too_long),
        cmocka_unit_test(test_msg_basic),
        cmocka_unit_test(test_msg_cname),
        cmocka_unit_test(test_msg_truncated),
        cmocka_unit_test(test_msg_malformed),
        cmocka_unit_test(test_msg_mutations),
        cmocka_unit_test(test_status_name),
        cmocka_unit_test(test_server_option),
        cmocka_unit_test(test_mx_sorted),
        cmocka_unit_test(test_cache_second_lookup),
        cmocka_unit_test(test_mail_ttl),
        cmocka_unit_test(test_mx_cname_chased),
        cmocka_unit_test(test_mx_cname_requery),
        cmocka_unit_test(test_mx_cname_loop),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test(test_implicit_mx),
        cmocka_unit_test(test_nxdomain),
        cmocka_unit_test(test_negative_ttl_cap),
        cmocka_unit_test(test_servfail),
        cmocka_unit_test(test_mx_host_failures),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_txt_failures_do_not_fail),
        cmocka_unit_test(test_spf_dmarc_strict),
        cmocka_unit_test(test_tcp_fallback),
        cmocka_unit_test(test_cancel_before_answer),
        cmocka_unit_test(test_cancel_drops_queued),
        cmocka_unit_test(test_free_with_pending),
        cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_max_inflight),
        cmocka_unit_test(test_cached_answer_is_deferred),
        cmocka_unit_test(test_invalid_domain),
        cmocka_unit_test(test_many_lookups),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_records_cancel_and_free),
        cmocka_unit_test(test_local_addr_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
