/*
 * intel.c - address intelligence: domain lists (disposable / free / allow), role local
 * parts, and intel_analyze() which puts every signal of one address together.
 *
 * Does not: read files (the user's lists are intel/userlist.c), allocate, or keep state.
 * The typo suggestion lives in typo.c, the gibberish score in gibberish.c. Tables are
 * generated (gen_*.c); see intel_int.h for their layout.
 */
#include "intel/intel.h"

#include <string.h>

#include "intel/intel_int.h"
#include "util/str.h"

#define DOMAIN_BUF 256 /* A-label domains are at most 253 octets (+ dot + NUL) */

uint64_t intel_hash(const char *s, size_t len)
{
    uint64_t h = INTEL_HASH_INIT;
    for (size_t i = 0; i < len; i++)
        h = intel_hash_step(h, (unsigned char)mp_to_lower((unsigned char)s[i]));
    return intel_hash_finish(h);
}

unsigned intel_domain_lookup(const char *domain, size_t len)
{
    if (len == 0)
        return 0;
    uint64_t h = intel_hash(domain, len);
    size_t b = (size_t)(h >> (64 - INTEL_DOM_BUCKET_BITS));
    uint32_t key = (uint32_t)(h >> (64 - INTEL_DOM_BUCKET_BITS - INTEL_DOM_KEY_BITS));
    size_t lo = intel_dom_bucket[b], n = intel_dom_bucket[b + 1] - lo;
    if (n == 0)
        return 0;
    /* ~10 keys in one or two cache lines: a branch-free lower bound */
    const uint32_t *base = intel_dom_key + lo;
    while (n > 1) {
        size_t half = n / 2;
        base = base[half - 1] < key ? base + half : base;
        n -= half;
    }
    return *base == key ? intel_dom_flags[base - intel_dom_key] : 0;
}

const char *intel_src_name(unsigned bit)
{
    switch (bit) {
    case INTEL_SRC_MAILCHECKER: return "mailchecker";
    case INTEL_SRC_DISPOSABLE: return "disposable-email-domains";
    case INTEL_SRC_BURNER: return "burner-email-providers";
    case INTEL_SRC_EXACT: return "public-suffix";
    case INTEL_SRC_FREE: return "free-email-domains";
    case INTEL_SRC_PROVIDERS: return "email-providers";
    case INTEL_SRC_ALLOW: return "allow-list";
    case INTEL_SRC_POPULAR: return "popular";
    default: return "?";
    }
}

/* Length without one trailing dot; 0 for an unusable domain. */
static size_t domain_len(const char *d)
{
    size_t n = strnlen(d, DOMAIN_BUF);
    if (n >= DOMAIN_BUF)
        return 0;
    if (n && d[n - 1] == '.')
        n--;
    return n;
}

/* Does the domain of length n end with the lower-case name s, as whole labels, in
 * any case? */
static bool ends_with_name(const char *d, size_t n, const char *s)
{
    size_t k = strlen(s);
    if (n < k || (n > k && d[n - k - 1] != '.'))
        return false;
    for (size_t i = 0; i < k; i++)
        if (mp_to_lower((unsigned char)d[n - k + i]) != s[i])
            return false;
    return true;
}

static bool reserved_n(const char *d, size_t n)
{
    /* RFC 2606 §2-3 and RFC 6761 §6: reserved TLDs and second-level names */
    static const char *const names[] = {"test", "example", "invalid", "localhost",
                                        "example.com", "example.net", "example.org"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ends_with_name(d, n, names[i]))
            return true;
    return false;
}

bool intel_domain_reserved(const char *domain)
{
    size_t n = domain_len(domain);
    return n > 0 && reserved_n(domain, n);
}

/* The walk of intel_domain_disposable; f0 = table flags of the whole domain. */
static bool disposable_walk(const char *domain, size_t n, unsigned f0, unsigned *src,
                            size_t *at, bool *allowed)
{
    size_t off = 0;
    unsigned f = f0;
    if (reserved_n(domain, n))
        return false; /* some lists carry example.com; a reserved name is nobody's */
    /* Walk x.y.example.com, y.example.com, example.com, com: the most specific listed
     * name decides, and at one level the allow list beats the disposable lists. */
    for (;;) {
        if (f & (INTEL_SRC_ALLOW | INTEL_SRC_POPULAR)) {
            *allowed = true;
            return false;
        }
        if ((f & INTEL_SRC_DISPOSABLE_ANY) && (off == 0 || !(f & INTEL_SRC_EXACT))) {
            *src = f & (INTEL_SRC_DISPOSABLE_ANY | INTEL_SRC_EXACT);
            *at = off;
            return true;
        }
        const char *dot = off < n ? memchr(domain + off, '.', n - off) : NULL;
        /* the lists hold no single-label names: stop before the TLD */
        if (!dot || !memchr(dot + 1, '.', n - (size_t)(dot + 1 - domain)))
            return false;
        off = (size_t)(dot - domain) + 1;
        f = intel_domain_lookup(domain + off, n - off);
    }
}

bool intel_domain_disposable(const char *domain, unsigned *src, size_t *at, bool *allowed)
{
    unsigned s = 0;
    size_t o = 0;
    bool al = false;
    size_t n = domain_len(domain);
    bool r = n > 0 && disposable_walk(domain, n, intel_domain_lookup(domain, n), &s, &o, &al);
    if (src)
        *src = s;
    if (at)
        *at = o;
    if (allowed)
        *allowed = al;
    return r;
}

bool intel_domain_free(const char *domain, unsigned *src)
{
    if (src)
        *src = 0;
    if (intel_domain_reserved(domain))
        return false;
    size_t n = domain_len(domain);
    unsigned f = intel_domain_lookup(domain, n);
    if (!(f & INTEL_SRC_FREE_ANY))
        return false;
    if (!(f & (INTEL_SRC_POPULAR | INTEL_SRC_ALLOW)) && intel_domain_disposable(domain, NULL, NULL, NULL))
        return false; /* the free lists also carry throwaway domains */
    if (src)
        *src = f & INTEL_SRC_FREE_ANY;
    return true;
}

/* The role list is matched on the local part in lower case, up to a '+' (sub-address
 * tag), without '.', '-', '_': hashed on the fly, no copy. False for a quoted or
 * non-ASCII local part, or one longer than any role. */
#define ROLE_KEY_MAX 64

bool intel_local_role(const char *local)
{
    uint64_t h = INTEL_HASH_INIT;
    size_t k = 0;
    for (const char *p = local; *p && *p != '+'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c >= 0x80)
            return false;
        if (c == '.' || c == '-' || c == '_')
            continue;
        if (++k > ROLE_KEY_MAX)
            return false;
        h = intel_hash_step(h, (unsigned char)mp_to_lower(c));
    }
    return k > 0 && intel_hash_find(intel_role_hash, intel_role_count, intel_hash_finish(h));
}

/* Append n bytes at *pos if they fit (keeping room for the NUL). */
static bool put(char *dst, size_t size, size_t *pos, const char *src, size_t n)
{
    if (n >= size - *pos)
        return false;
    memcpy(dst + *pos, src, n);
    *pos += n;
    return true;
}

/* out->suggestion = local@fixed, keeping the Unicode spelling of an IDN domain when
 * only its TLD changed. */
static void make_suggestion(const addr_t *a, const char *fixed, intel_t *out)
{
    char *dst = out->suggestion;
    size_t size = sizeof out->suggestion, pos = 0;
    const char *dot = strrchr(a->domain, '.'), *fdot = strrchr(fixed, '.');
    bool ok = put(dst, size, &pos, a->local, strlen(a->local)) && put(dst, size, &pos, "@", 1);
    if (out->typo == INTEL_TYPO_TLD && a->domain_idn && dot && fdot)
        ok = ok && put(dst, size, &pos, a->domain, (size_t)(dot - a->domain)) &&
             put(dst, size, &pos, fdot, strlen(fdot));
    else
        ok = ok && put(dst, size, &pos, fixed, strlen(fixed));
    dst[ok ? pos : 0] = '\0';
    out->has_suggestion = ok;
    if (!ok)
        out->typo = INTEL_TYPO_NONE;
}

void intel_analyze(const addr_t *a, intel_t *out)
{
    out->disposable = out->free = out->role = out->gibberish = false;
    out->gibberish_score = 0.0;
    out->has_suggestion = false;
    out->suggestion[0] = '\0';
    out->disposable_src = 0;
    out->disposable_at = 0;
    out->free_src = 0;
    out->known_provider = false;
    out->typo = INTEL_TYPO_NONE;
    if (!a || a->err != ADDR_OK || a->domain_ascii[0] == '\0')
        return;

    if (!a->literal && !intel_domain_reserved(a->domain_ascii)) {
        /* a reserved name (RFC 2606/6761) is nobody's provider, free or disposable,
         * whatever a list says (the free lists carry example.com) */
        const char *d = a->domain_ascii; /* lower case, A-label (addr.h) */
        size_t n = domain_len(d);
        unsigned f0 = intel_domain_lookup(d, n);
        if (f0 & INTEL_SRC_POPULAR) {
            /* the bulk of real traffic: a popular provider, nothing else to look at */
            out->known_provider = true;
            out->free_src = f0 & INTEL_SRC_FREE_ANY;
            out->free = true;
        } else {
            out->disposable = disposable_walk(d, n, f0, &out->disposable_src,
                                              &out->disposable_at, &out->known_provider);
            char fixed[DOMAIN_BUF];
            out->typo = intel_suggest_with(d, &f0, fixed, sizeof fixed);
            if (out->typo != INTEL_TYPO_NONE)
                make_suggestion(a, fixed, out);
            /* a domain that looks like a misspelling is not a provider, even if a list
             * says so; nor is a disposable one */
            if (out->typo == INTEL_TYPO_NONE && !out->disposable) {
                out->free_src = f0 & INTEL_SRC_FREE_ANY;
                out->free = out->free_src != 0;
            }
        }
    }
    if (!a->quoted && !a->local_utf8) {
        out->role = intel_local_role(a->local);
        out->gibberish_score = intel_gibberish_score(a->local);
        out->gibberish = out->gibberish_score >= INTEL_GIBBERISH_THRESHOLD;
    }
}
