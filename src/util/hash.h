/*
 * hash.h - FNV-1a (64 bits), the one hash of the in-memory tables (strmap, the DNS
 * resolver's queries and cache, the job runner's pending addresses, the store's cache
 * staging) and of the egress pool's rendezvous choice.
 *
 * Fast and simple for short keys; not for anything an attacker must not steer (no
 * secret seed) and not a checksum. A table that takes its slot from the high bits mixes
 * the result first (as store/cache.c does).
 */
#ifndef MP_UTIL_HASH_H
#define MP_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/** FNV-1a's 64-bit offset basis: the h to start from. */
#define MP_FNV_BASIS 14695981039346656037ull

/** h carried on over n bytes of data (FNV-1a). */
uint64_t mp_fnv1a(uint64_t h, const void *data, size_t n);
/** h carried on over the bytes of the string s, its NUL excluded (FNV-1a). */
uint64_t mp_fnv1a_str(uint64_t h, const char *s);

#endif
