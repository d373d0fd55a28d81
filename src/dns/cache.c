/*
 * cache.c - parsed DNS answers and their bounded TTL cache; see cache.h.
 *
 * Does: (type, lower-case name) -> answer + expiry, LRU eviction at a fixed bound,
 * the TTL policy. Does not: read the clock, talk to the network, know about look-ups.
 * A chained hash table (power-of-two buckets, grown up to the entry bound) plus one
 * doubly linked LRU list; every operation is O(1) expected.
 */
#include "dns/cache.h"

#include <stdlib.h>
#include <string.h>

#include "dns/msg.h"
#include "util/hash.h"
#include "util/list.h"
#include "util/str.h"

dns_answer_t *dns_answer_new(unsigned type, dns_status_t status)
{
    dns_answer_t *a = calloc(1, sizeof *a);
    if (a) {
        a->type = type;
        a->status = status;
    }
    return a;
}

void dns_answer_free(dns_answer_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->rr[i].host);
    free(a->rr);
    free(a->cname);
    free(a);
}

static dns_rr_t *answer_grow(dns_answer_t *a)
{
    if (a->n >= DNS_ANSWER_MAX)
        return NULL;
    dns_rr_t *rr = realloc(a->rr, (a->n + 1) * sizeof *rr);
    if (!rr)
        return NULL;
    a->rr = rr;
    memset(&rr[a->n], 0, sizeof rr[a->n]);
    return &rr[a->n];
}

bool dns_answer_add_mx(dns_answer_t *a, unsigned pref, const char *host)
{
    dns_rr_t *rr = answer_grow(a);
    if (!rr)
        return false;
    rr->host = strdup(host);
    if (!rr->host)
        return false;
    dns_name_norm(rr->host);
    rr->pref = pref;
    a->n++;
    return true;
}

bool dns_answer_add_addr(dns_answer_t *a, const void *addr, size_t addrlen)
{
    if (addrlen > sizeof a->rr[0].addr)
        return false;
    dns_rr_t *rr = answer_grow(a);
    if (!rr)
        return false;
    memcpy(rr->addr, addr, addrlen);
    a->n++;
    return true;
}

bool dns_answer_set_cname(dns_answer_t *a, const char *target)
{
    char *t = strdup(target);
    if (!t)
        return false;
    free(a->cname);
    a->cname = t;
    return true;
}

uint64_t dns_cache_lifetime_ms(const dns_cache_policy_t *p, dns_status_t st, bool have_ttl,
                               uint32_t ttl_s)
{
    uint32_t s = 0;
    switch (st) {
    case DNS_OK:
        s = have_ttl ? (ttl_s < p->pos_max_s ? ttl_s : p->pos_max_s) : 0;
        break;
    case DNS_NODATA:
    case DNS_NXDOMAIN:
        s = have_ttl ? (ttl_s < p->neg_max_s ? ttl_s : p->neg_max_s) : 0;
        break;
    case DNS_SERVFAIL:
    case DNS_TIMEOUT:
    case DNS_ERROR:
        s = p->fail_s;
        break;
    }
    return (uint64_t)s * 1000u;
}

typedef struct entry {
    struct entry *hnext;              /* hash chain */
    mp_list_node_t lru;               /* in dns_cache.lru */
    uint64_t hash;
    uint64_t expires_ms;
    unsigned type;
    dns_answer_t *ans;
    char name[DNS_NAME_MAX];
} entry_t;

struct dns_cache {
    entry_t **bucket;
    size_t nbucket;                   /* power of two */
    size_t count, max;
    mp_list_t lru;                    /* head = most recently used */
};

#define CACHE_MIN_BUCKETS 64u

/* FNV-1a over the type and the lower-cased name. */
static uint64_t key_hash(unsigned type, const char *name)
{
    unsigned char t[2] = {(unsigned char)(type & 0xffu), (unsigned char)((type >> 8) & 0xffu)};
    return mp_fnv1a_str(mp_fnv1a(MP_FNV_BASIS, t, sizeof t), name);
}

/* Lower-case name into out; false when it does not fit. */
static bool key_name(const char *name, char out[DNS_NAME_MAX])
{
    if (mp_strlcpy(out, name, DNS_NAME_MAX) >= DNS_NAME_MAX)
        return false;
    mp_str_lower(out);
    return true;
}

dns_cache_t *dns_cache_new(size_t max_entries)
{
    dns_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max = max_entries ? max_entries : 1;
    c->nbucket = CACHE_MIN_BUCKETS;
    c->bucket = calloc(c->nbucket, sizeof *c->bucket);
    if (!c->bucket) {
        free(c);
        return NULL;
    }
    return c;
}

/* The entry of an LRU node (NULL for NULL). */
static entry_t *lru_entry(mp_list_node_t *n)
{
    return MP_LIST_ITEM(n, entry_t, lru);
}

/* Used now: to the head of the LRU list. */
static void lru_touch(dns_cache_t *c, entry_t *e)
{
    mp_list_unlink(&c->lru, &e->lru);
    mp_list_push_head(&c->lru, &e->lru);
}

static void entry_remove(dns_cache_t *c, entry_t *e)
{
    entry_t **pp = &c->bucket[e->hash & (c->nbucket - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    mp_list_unlink(&c->lru, &e->lru);
    dns_answer_free(e->ans);
    free(e);
    c->count--;
}

void dns_cache_clear(dns_cache_t *c)
{
    while (c->lru.head)
        entry_remove(c, lru_entry(c->lru.head));
}

void dns_cache_free(dns_cache_t *c)
{
    if (!c)
        return;
    dns_cache_clear(c);
    free(c->bucket);
    free(c);
}

static entry_t *entry_find(dns_cache_t *c, unsigned type, const char *key, uint64_t h)
{
    for (entry_t *e = c->bucket[h & (c->nbucket - 1)]; e; e = e->hnext)
        if (e->hash == h && e->type == type && strcmp(e->name, key) == 0)
            return e;
    return NULL;
}

/* Double the bucket array while it is smaller than the entry count (best effort). */
static void maybe_grow(dns_cache_t *c)
{
    if (c->count < c->nbucket || c->nbucket >= c->max)
        return;
    size_t n = c->nbucket * 2;
    entry_t **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->nbucket; i++) {
        entry_t *e = c->bucket[i];
        while (e) {
            entry_t *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->bucket);
    c->bucket = b;
    c->nbucket = n;
}

const dns_answer_t *dns_cache_get(dns_cache_t *c, unsigned type, const char *name,
                                  uint64_t now_ms)
{
    return dns_cache_get_until(c, type, name, now_ms, NULL);
}

const dns_answer_t *dns_cache_get_until(dns_cache_t *c, unsigned type, const char *name,
                                        uint64_t now_ms, uint64_t *expires_ms)
{
    char key[DNS_NAME_MAX];
    if (!key_name(name, key))
        return NULL;
    entry_t *e = entry_find(c, type, key, key_hash(type, key));
    if (!e)
        return NULL;
    if (e->expires_ms <= now_ms) {
        entry_remove(c, e);
        return NULL;
    }
    lru_touch(c, e);
    if (expires_ms)
        *expires_ms = e->expires_ms;
    return e->ans;
}

bool dns_cache_put(dns_cache_t *c, unsigned type, const char *name, dns_answer_t *a,
                   uint64_t expires_ms, uint64_t now_ms)
{
    char key[DNS_NAME_MAX];
    if (!a)
        return false;
    if (expires_ms <= now_ms || !key_name(name, key)) {
        dns_answer_free(a);
        return false;
    }
    uint64_t h = key_hash(type, key);
    entry_t *e = entry_find(c, type, key, h);
    if (e) {
        dns_answer_free(e->ans);
        e->ans = a;
        e->expires_ms = expires_ms;
        lru_touch(c, e);
        return true;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        dns_answer_free(a);
        return false;
    }
    while (c->count >= c->max && c->lru.tail)
        entry_remove(c, lru_entry(c->lru.tail));
    e->hash = h;
    e->type = type;
    e->ans = a;
    e->expires_ms = expires_ms;
    memcpy(e->name, key, sizeof e->name);
    size_t b = h & (c->nbucket - 1);
    e->hnext = c->bucket[b];
    c->bucket[b] = e;
    mp_list_push_head(&c->lru, &e->lru);
    c->count++;
    maybe_grow(c);
    return true;
}

size_t dns_cache_count(const dns_cache_t *c)
{
    return c->count;
}
