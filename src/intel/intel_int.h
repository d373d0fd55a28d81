/*
 * intel_int.h - private to src/intel/: the generated tables (src/intel/gen_*.c, written
 * by scripts/update-data from data/) and the helpers the intel files share.
 *
 * Nothing outside src/intel/ includes this file. The tables are const data: no parsing
 * and no allocation at start-up. Formats are described in docs/internals/intel.md.
 */
#ifndef MP_INTEL_INT_H
#define MP_INTEL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "intel/intel.h"

/* gen_domains.c: every listed domain as a 46-bit fingerprint of intel_hash(name):
 * bucket = top INTEL_DOM_BUCKET_BITS bits, key = the next 32 bits. Keys are sorted by
 * (bucket, key); intel_dom_bucket[b] .. intel_dom_bucket[b + 1] is bucket b's range
 * (about 10 keys: one cache line), intel_dom_flags[i] the INTEL_SRC_* bits of key i. */
#define INTEL_DOM_BUCKET_BITS 14
#define INTEL_DOM_KEY_BITS 32
extern const uint32_t intel_dom_bucket[(1u << INTEL_DOM_BUCKET_BITS) + 1];
extern const size_t intel_dom_count;
extern const uint32_t intel_dom_key[];
extern const unsigned char intel_dom_flags[];

/* gen_role.c: role local parts (separators removed) as sorted 64-bit intel_hash(). */
extern const uint64_t intel_role_hash[];
extern const size_t intel_role_count;

/* gen_popular.c: popular mail domains by rank (string i is intel_pop_blob[
 * intel_pop_off[i] .. intel_pop_off[i + 1])); an index of them by the length of their
 * first label with that label's character mask; delegated top-level domains as sorted
 * 64-bit intel_hash() values. */
extern const char intel_pop_blob[];
extern const uint32_t intel_pop_off[];
extern const size_t intel_pop_count;
#define INTEL_POP_LEN_MAX 64
extern const unsigned char intel_pop_by_len[];
extern const uint64_t intel_pop_label_mask[];
extern const unsigned short intel_pop_len_start[INTEL_POP_LEN_MAX + 1];
extern const uint64_t intel_tld_hash[];
extern const size_t intel_tld_count;

/* gen_gibberish.c: character trigram costs, 1/8 bit units; 26 = word boundary. */
#define INTEL_GIB_BOUNDARY 26
extern const unsigned char intel_gib_cost[27][27][27];

/** intel_suggest_domain, with the table flags of the domain already looked up (known,
 * when not NULL) so that intel_analyze looks each name up once. */
intel_typo_t intel_suggest_with(const char *domain, const unsigned *known, char *out, size_t size);

/** FNV-1a 64 over ASCII-lower-cased bytes, finished with the splitmix64 mixer. Must
 * match intel_hash() in scripts/update-data. */
uint64_t intel_hash(const char *s, size_t len);

/* The same hash fed one byte at a time (already lower case): start with
 * INTEL_HASH_INIT, intel_hash_step() each byte, intel_hash_finish() at the end. */
#define INTEL_HASH_INIT UINT64_C(0xcbf29ce484222325)
static inline uint64_t intel_hash_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * UINT64_C(0x100000001b3);
}
static inline uint64_t intel_hash_finish(uint64_t h)
{
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h;
}

/** Is h one of the sorted values of a fingerprint table? A branch-free lower bound:
 * the comparisons are unpredictable, a conditional move is not. */
static inline bool intel_hash_find(const uint64_t *tab, size_t count, uint64_t h)
{
    if (count == 0)
        return false;
    const uint64_t *base = tab;
    size_t n = count;
    while (n > 1) {
        size_t half = n / 2;
        base = base[half - 1] < h ? base + half : base;
        n -= half;
    }
    return *base == h;
}

/** Character-set mask of s[0..len): bits 0-25 a-z, 26-35 0-9, 36 '.', 37 other. */
uint64_t intel_char_mask(const char *s, size_t len);

#endif
