/*
 * typo.c - typo suggestion for the domain of an address.
 *
 * Precision before recall (a wrong "did you mean" sends a real person's mail away):
 *  1. TLD rule: a top-level domain that is not delegated (con, cmo, ent, ogr, comm) is
 *     replaced by the best-ranked common TLD one edit away (x.con -> x.com), for any
 *     domain.
 *  2. Popular domains: the (TLD-fixed) domain is compared with a ranked list of popular
 *     mail domains, first label and the rest apart, allowing only the typing errors
 *     people make and fewer of them the shorter the name (candidate_dist); the
 *     closest wins, ties go to the higher rank.
 * A domain on the popular or allow list is never changed; the unchanged domain is
 * never suggested. Does not: look at DNS (a typo domain may exist), allocate, or keep
 * state. Details: docs/internals/intel.md.
 */
#include <stdint.h>
#include <string.h>

#include "intel/intel.h"
#include "intel/intel_int.h"
#include "util/str.h"

#define DOMAIN_BUF 256

int intel_osa_distance(const char *a, size_t alen, const char *b, size_t blen, int max)
{
    /* Domains are short: rows of at most 64 cells, else "too far". */
    enum { W = 64 };
    if (alen >= W || blen >= W) {
        if (alen == blen && memcmp(a, b, alen) == 0)
            return 0;
        return max + 1;
    }
    size_t diff = alen > blen ? alen - blen : blen - alen;
    if (diff > (size_t)max)
        return max + 1;
    int r0[W], r1[W], r2[W]; /* rows i-2, i-1, i */
    int *pp = r0, *p = r1, *c = r2;
    for (size_t j = 0; j <= blen; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= alen; i++) {
        c[0] = (int)i;
        int rowmin = c[0];
        for (size_t j = 1; j <= blen; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
            if (v < rowmin)
                rowmin = v;
        }
        if (rowmin > max)
            return max + 1;
        int *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[blen] > max ? max + 1 : p[blen];
}

/* Is b (length n) a with two adjacent characters swapped? */
static bool is_transposition(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    while (i < n && a[i] == b[i])
        i++;
    if (i + 1 >= n || a[i] != b[i + 1] || a[i + 1] != b[i])
        return false;
    return memcmp(a + i + 2, b + i + 2, n - i - 2) == 0;
}

bool intel_tld_known(const char *tld, size_t len)
{
    return len > 0 && intel_hash_find(intel_tld_hash, intel_tld_count, intel_hash(tld, len));
}

/* Common TLDs by rank: the only replacements the TLD rule proposes. */
static const char *const common_tld[] = {
    "com", "net", "org", "edu", "gov", "de", "uk", "fr", "it", "es", "ru", "nl", "ca",
    "au", "br", "jp", "in", "info", "biz", "us", "ch", "at", "be", "pl", "se", "no",
    "dk", "fi", "cz", "mx", "ar", "cn", "io", "co",
};
#define N_COMMON_TLD (sizeof common_tld / sizeof common_tld[0])
#define N_TOP_TLD 3 /* com, net, org: a tie with a lower-ranked TLD still goes to these */

/* Best replacement for an undelegated TLD, or NULL when none is clearly best. */
static const char *fix_tld(const char *tld, size_t len)
{
    int best = -1, ties = 0;
    for (size_t i = 0; i < N_COMMON_TLD; i++) {
        const char *t = common_tld[i];
        if (intel_osa_distance(tld, len, t, strlen(t), 1) == 1) {
            if (best < 0)
                best = (int)i;
            else
                ties++;
        }
    }
    if (best < 0 || (ties > 0 && best >= (int)N_TOP_TLD))
        return NULL;
    return common_tld[best];
}

/* Keyboard neighbours on a staggered QWERTY layout: each row sits half a key right of
 * the one above, so key (r, c) touches (r, c +- 1), (r - 1, c), (r - 1, c + 1),
 * (r + 1, c - 1) and (r + 1, c). */
static bool key_adjacent(char x, char y)
{
    static const char *const rows[] = {"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"};
    int rx = -1, cx = -1, ry = -1, cy = -1;
    for (int r = 0; r < 4; r++) {
        const char *px = strchr(rows[r], x), *py = strchr(rows[r], y);
        if (x && px) {
            rx = r;
            cx = (int)(px - rows[r]);
        }
        if (y && py) {
            ry = r;
            cy = (int)(py - rows[r]);
        }
    }
    if (rx < 0 || ry < 0)
        return false;
    if (rx == ry)
        return cx - cy == 1 || cy - cx == 1;
    if (ry == rx - 1)
        return cy == cx || cy == cx + 1;
    if (ry == rx + 1)
        return cy == cx || cy == cx - 1;
    return false;
}

/* d (dlen) is p (dlen - 1) with one character inserted: is that character a doubled
 * letter (gmaill) or a neighbour on the keyboard of a letter next to it (gmaikl)? */
static bool is_keyboard_insertion(const char *d, const char *p, size_t dlen)
{
    size_t i = 0;
    while (i < dlen - 1 && d[i] == p[i])
        i++;
    if (memcmp(d + i + 1, p + i, dlen - 1 - i) != 0)
        return false;
    char c = d[i];
    char before = i > 0 ? d[i - 1] : '\0', after = i + 1 < dlen ? d[i + 1] : '\0';
    return c == before || c == after || key_adjacent(c, before) || key_adjacent(c, after);
}

/* d and p (same length n) differ in exactly one place, by neighbouring keys? */
static bool is_keyboard_substitution(const char *d, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && d[i] == p[i])
        i++;
    if (i == n || memcmp(d + i + 1, p + i + 1, n - i - 1) != 0)
        return false;
    return key_adjacent(d[i], p[i]);
}

/*
 * May domain d be corrected to popular domain p, and at what cost? -1 when not.
 * The first label ("gmail") carries the typo in most cases. The rest ("com", "co.uk")
 * may differ only when the input's TLD is not delegated (gmail.nry), or when the
 * popular one ends in com/net/org and the input's is one edit away from it (gmail.co,
 * yahoo.cm, comcast.ne, bellsouth.bet): a popular name under a neighbouring TLD is
 * almost always a typo.
 * The first label may differ by one typing error of the kinds people make (Damerau):
 * two adjacent letters swapped, a letter doubled or a neighbouring key hit as well,
 * a letter dropped, a neighbouring key hit instead. Everything else - a non-adjacent
 * substitution, two edits - is more often another real name than a typo (lastmail,
 * hockeymail, hotmart, t-online/online.de). The shorter the popular label, the more
 * a single edit makes another real name (bol.com, gmc.com, life.com, email.ru), so:
 *   label <= 2: no edit   3: swap, keyboard insertion
 *   4: also a dropped letter   >= 5: also a neighbouring-key substitution
 */
static int candidate_dist(const char *d, size_t dlen, const char *p, size_t plen,
                          bool tld_invalid)
{
    const char *ddot = memchr(d, '.', dlen), *pdot = memchr(p, '.', plen);
    if (!ddot || !pdot)
        return -1;
    size_t dl = (size_t)(ddot - d), pl = (size_t)(pdot - p);
    const char *drest = ddot + 1, *prest = pdot + 1;
    size_t drl = dlen - dl - 1, prl = plen - pl - 1;

    int rest_d = 0;
    if (drl != prl || memcmp(drest, prest, drl) != 0) {
        bool generic = (prl == 3 && (memcmp(prest, "com", 3) == 0 || memcmp(prest, "net", 3) == 0 ||
                                     memcmp(prest, "org", 3) == 0));
        if (tld_invalid)
            rest_d = intel_osa_distance(drest, drl, prest, prl, 2);
        else if (generic && memchr(drest, '.', drl) == NULL)
            rest_d = intel_osa_distance(drest, drl, prest, prl, 1);
        else
            return -1;
        if (rest_d > (tld_invalid ? 2 : 1))
            return -1;
    }
    if (dl == pl && memcmp(d, p, pl) == 0)
        return rest_d;
    if (rest_d > 1 || (rest_d && pl <= 4))
        return -1; /* a typo in the name and in the TLD of a short name: too far */
    if (pl <= 2 || intel_osa_distance(d, dl, p, pl, 1) != 1)
        return -1;
    bool ok;
    if (dl == pl)
        ok = is_transposition(d, p, pl) || (pl >= 5 && is_keyboard_substitution(d, p, pl));
    else if (dl == pl + 1)
        ok = is_keyboard_insertion(d, p, dl);
    else
        ok = pl >= 4; /* dl == pl - 1: a dropped letter */
    return ok ? 1 + rest_d : -1;
}

intel_typo_t intel_suggest_domain(const char *domain, char *out, size_t size)
{
    return intel_suggest_with(domain, NULL, out, size);
}

intel_typo_t intel_suggest_with(const char *domain, const unsigned *known, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    char d[DOMAIN_BUF];
    size_t n = strnlen(domain, DOMAIN_BUF), n0 = n;
    if (n == 0 || n >= DOMAIN_BUF - 8)
        return INTEL_TYPO_NONE;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)mp_to_lower((unsigned char)domain[i]);
    if (d[n - 1] == '.')
        n--;
    d[n] = '\0';
    if (n == 0 || d[0] == '[')
        return INTEL_TYPO_NONE;

    unsigned f = known ? *known : intel_domain_lookup(d, n);
    if (f & (INTEL_SRC_POPULAR | INTEL_SRC_ALLOW))
        return INTEL_TYPO_NONE;

    /* 1. TLD rule */
    intel_typo_t kind = INTEL_TYPO_NONE;
    const char *lastdot = NULL;
    for (size_t i = n; i > 0; i--)
        if (d[i - 1] == '.') {
            lastdot = d + i - 1;
            break;
        }
    if (!lastdot)
        return INTEL_TYPO_NONE;
    const char *tld = lastdot + 1;
    size_t tlen = n - (size_t)(tld - d);
    bool tld_invalid = tlen == 0 || !intel_tld_known(tld, tlen);
    if (tld_invalid && strncmp(tld, "xn--", 4) != 0) {
        const char *fix = fix_tld(tld, tlen);
        if (fix) {
            tld_invalid = false;
            size_t flen = strlen(fix);
            size_t base = (size_t)(tld - d);
            memcpy(d + base, fix, flen + 1);
            n = base + flen;
            kind = INTEL_TYPO_TLD;
            f = intel_domain_lookup(d, n);
        }
    }

    /* 2. popular domains */
    if (!(f & INTEL_SRC_POPULAR)) {
        size_t best = SIZE_MAX;
        int bestd = 3;
        const char *dot = memchr(d, '.', n);
        size_t dl = dot ? (size_t)(dot - d) : n;
        uint64_t m = intel_char_mask(d, dl);
        /* The first label may differ by one edit at most: candidates whose first label
         * is within one character of its length and of its character set. */
        size_t lmin = dl > 1 ? dl - 1 : 0;
        size_t lmax = dl + 1 < INTEL_POP_LEN_MAX ? dl + 1 : INTEL_POP_LEN_MAX - 1;
        if (lmin > lmax) /* longer than any popular label */
            lmin = lmax + 1;
        for (size_t k = intel_pop_len_start[lmin]; k < intel_pop_len_start[lmax + 1]; k++) {
            uint64_t x = m ^ intel_pop_label_mask[k];
            x &= x - 1; /* drop two set bits: what is left means more than two differ */
            if (x & (x - 1))
                continue;
            size_t i = intel_pop_by_len[k];
            size_t plen = intel_pop_off[i + 1] - intel_pop_off[i];
            int dist = candidate_dist(d, n, intel_pop_blob + intel_pop_off[i], plen, tld_invalid);
            if (dist > 0 && (dist < bestd || (dist == bestd && i < best))) {
                bestd = dist;
                best = i;
            }
        }
        if (best != SIZE_MAX) {
            size_t plen = intel_pop_off[best + 1] - intel_pop_off[best];
            mp_strlcpyn(d, intel_pop_blob + intel_pop_off[best], plen, sizeof d);
            n = plen;
            kind = INTEL_TYPO_DOMAIN;
        }
    }
    if (kind == INTEL_TYPO_NONE)
        return INTEL_TYPO_NONE;
    /* never the unchanged domain (case and a trailing dot are not corrections) */
    if (n0 >= n && strncmp(domain, d, n) == 0 &&
        (domain[n] == '\0' || (domain[n] == '.' && domain[n + 1] == '\0')))
        return INTEL_TYPO_NONE;
    if (mp_strlcpy(out, d, size) >= size) {
        if (size)
            out[0] = '\0';
        return INTEL_TYPO_NONE;
    }
    return kind;
}

uint64_t intel_char_mask(const char *s, size_t len)
{
    uint64_t m = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'a' && c <= 'z')
            m |= UINT64_C(1) << (c - 'a');
        else if (c >= '0' && c <= '9')
            m |= UINT64_C(1) << (26 + c - '0');
        else if (c == '.')
            m |= UINT64_C(1) << 36;
        else
            m |= UINT64_C(1) << 37;
    }
    return m;
}
