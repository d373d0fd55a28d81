/*
 * cache.h - private to src/dns: parsed answers and the TTL cache that holds them.
 *
 * A dns_answer_t is what one query (type, name) told us, already reduced to what
 * the resolver needs: MX (pref, host), A/AAAA address bytes, TXT reduced to "has an
 * SPF record" / "has a DMARC record", or "the name is a CNAME to X and X's records
 * were not in the answer". The cache maps (type, lower-case name) to an answer and an
 * absolute expiry in milliseconds; it never reads the clock itself (the caller passes
 * now_ms), so it is a pure data structure, tested with an injected time.
 *
 * Bounded: at most max_entries; when full, the least recently used entry is evicted.
 * Ownership: dns_cache_put() always takes the answer (stores or frees it); pointers
 * returned by dns_cache_get() stay valid until the next put, clear or free.
 */
#ifndef MP_DNS_CACHE_H
#define MP_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

#define DNS_ANSWER_MAX 64   /* records kept per answer */

/** One record of an answer. */
typedef struct {
    unsigned pref;              /* MX preference */
    unsigned char addr[16];     /* A: 4 bytes, AAAA: 16 bytes */
    char *host;                 /* MX target, lower-case, no trailing dot ("" = root) */
} dns_rr_t;

/** The parsed answer to one (type, name) query. */
typedef struct {
    unsigned type;              /* DNS_T_* of the query */
    dns_status_t status;
    char *cname;                /* status OK, n == 0: the CNAME chain ends here, query it */
    size_t n;
    dns_rr_t *rr;               /* n records, at most DNS_ANSWER_MAX */
    bool spf, dmarc;            /* TXT: a "v=spf1" / "v=DMARC1" record was present */
} dns_answer_t;

/** New empty answer; NULL on allocation failure. */
dns_answer_t *dns_answer_new(unsigned type, dns_status_t status);
/** Free an answer and its records (NULL is ignored). */
void dns_answer_free(dns_answer_t *a);
/** Append a record; false when DNS_ANSWER_MAX is reached or allocation fails. */
bool dns_answer_add_mx(dns_answer_t *a, unsigned pref, const char *host);
bool dns_answer_add_addr(dns_answer_t *a, const void *addr, size_t addrlen);
/** Set the CNAME target; false on allocation failure. */
bool dns_answer_set_cname(dns_answer_t *a, const char *target);

/** How long answers live, in seconds. */
typedef struct {
    uint32_t pos_max_s;    /* cap on positive TTLs */
    uint32_t neg_max_s;    /* cap on negative TTLs (NXDOMAIN, NODATA) */
    uint32_t fail_s;       /* SERVFAIL / TIMEOUT / malformed answers; 0 = never cached */
} dns_cache_policy_t;

/**
 * Lifetime of an answer in milliseconds, 0 = do not cache.
 * st: the answer's status; have_ttl/ttl_s: for OK the minimum TTL of the answer RRs,
 * for NXDOMAIN/NODATA the SOA-derived negative TTL (RFC 2308 §5; without an SOA
 * negative answers are not cached, as §5 asks).
 */
uint64_t dns_cache_lifetime_ms(const dns_cache_policy_t *p, dns_status_t st, bool have_ttl,
                               uint32_t ttl_s);

typedef struct dns_cache dns_cache_t;

/** New cache holding at most max_entries (>= 1). NULL on allocation failure. */
dns_cache_t *dns_cache_new(size_t max_entries);
/** Free the cache and every answer in it (NULL is ignored). */
void dns_cache_free(dns_cache_t *c);
/**
 * The live answer for (type, name) at now_ms, or NULL (absent or expired; an expired
 * entry is dropped). A hit makes the entry most recently used.
 */
const dns_answer_t *dns_cache_get(dns_cache_t *c, unsigned type, const char *name,
                                  uint64_t now_ms);
/** dns_cache_get, also telling when the answer expires (*expires_ms, if found). */
const dns_answer_t *dns_cache_get_until(dns_cache_t *c, unsigned type, const char *name,
                                        uint64_t now_ms, uint64_t *expires_ms);
/**
 * Store a (taking ownership), replacing any entry for (type, name). An answer whose
 * expiry is not after now_ms, or a name longer than 255, is freed instead.
 * Returns true when stored.
 */
bool dns_cache_put(dns_cache_t *c, unsigned type, const char *name, dns_answer_t *a,
                   uint64_t expires_ms, uint64_t now_ms);
/** Number of entries (live or not yet noticed to be expired). */
size_t dns_cache_count(const dns_cache_t *c);
/** Drop every entry. */
void dns_cache_clear(dns_cache_t *c);

#endif
