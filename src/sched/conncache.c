/* conncache.c - idle sessions kept for reuse; see conncache.h. A small array scanned
 * linearly: it holds at most the engine's session limit (tens, a few hundred). */
#include "sched/conncache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"

typedef struct {
    char key[CONNCACHE_KEY_MAX];
    void *sess;
    uint64_t born_ms, idle_since_ms;
} cc_entry_t;

struct conncache {
    conncache_cfg_t cfg;
    cc_entry_t *v;
    size_t n, cap;
};

conncache_t *conncache_new(const conncache_cfg_t *cfg)
{
    conncache_t *cc = calloc(1, sizeof *cc);
    if (!cc)
        return NULL;
    if (cfg)
        cc->cfg = *cfg;
    if (!cc->cfg.idle_ms)
        cc->cfg.idle_ms = CONNCACHE_IDLE_MS_DEFAULT;
    if (!cc->cfg.reuse_ms)
        cc->cfg.reuse_ms = CONNCACHE_REUSE_MS_DEFAULT;
    if (!cc->cfg.reuse_max)
        cc->cfg.reuse_max = CONNCACHE_REUSE_MAX_DEFAULT;
    return cc;
}

void conncache_free(conncache_t *cc)
{
    if (!cc)
        return;
    free(cc->v);
    free(cc);
}

void conncache_key(char *buf, size_t size, const char *src, const char *ip, unsigned port)
{
    snprintf(buf, size, "%s|%s|%u", src ? src : "", ip, port);
}

static bool too_old(const conncache_t *cc, const cc_entry_t *x, uint64_t now)
{
    return now - x->born_ms >= cc->cfg.reuse_ms;
}

static bool expired(const conncache_t *cc, const cc_entry_t *x, uint64_t now)
{
    return now - x->idle_since_ms >= cc->cfg.idle_ms || too_old(cc, x, now);
}

static void *take_at(conncache_t *cc, size_t i)
{
    void *s = cc->v[i].sess;
    memmove(&cc->v[i], &cc->v[i + 1], (cc->n - i - 1) * sizeof cc->v[0]);
    cc->n--;
    return s;
}

bool conncache_put(conncache_t *cc, const char *key, void *sess, uint64_t born_ms,
                   unsigned runs, uint64_t now_ms)
{
    if (runs >= cc->cfg.reuse_max || now_ms - born_ms >= cc->cfg.reuse_ms)
        return false;
    if (strlen(key) >= CONNCACHE_KEY_MAX)
        return false;
    cc_entry_t *v = mp_array_grow(cc->v, &cc->cap, cc->n, sizeof *v, 16);
    if (!v)
        return false;
    cc->v = v;
    cc_entry_t *x = &cc->v[cc->n++]; /* in the order returned: the last is the warmest */
    mp_strlcpy(x->key, key, sizeof x->key);
    x->sess = sess;
    x->born_ms = born_ms;
    x->idle_since_ms = now_ms;
    return true;
}

void *conncache_take(conncache_t *cc, const char *key, uint64_t now_ms)
{
    for (size_t i = cc->n; i-- > 0;)
        if (strcmp(cc->v[i].key, key) == 0 && !expired(cc, &cc->v[i], now_ms))
            return take_at(cc, i);
    return NULL;
}

void *conncache_expire(conncache_t *cc, uint64_t now_ms)
{
    for (size_t i = 0; i < cc->n; i++)
        if (expired(cc, &cc->v[i], now_ms))
            return take_at(cc, i);
    return NULL;
}

void *conncache_pop_oldest(conncache_t *cc, bool (*match)(void *sess, void *arg), void *arg)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < cc->n; i++)
        if ((!match || match(cc->v[i].sess, arg)) &&
            (best == SIZE_MAX || cc->v[i].idle_since_ms < cc->v[best].idle_since_ms))
            best = i;
    return best == SIZE_MAX ? NULL : take_at(cc, best);
}

bool conncache_remove(conncache_t *cc, const void *sess)
{
    for (size_t i = 0; i < cc->n; i++)
        if (cc->v[i].sess == sess) {
            take_at(cc, i);
            return true;
        }
    return false;
}

size_t conncache_count(const conncache_t *cc, const char *key)
{
    if (!key)
        return cc->n;
    size_t k = 0;
    for (size_t i = 0; i < cc->n; i++)
        k += strcmp(cc->v[i].key, key) == 0;
    return k;
}

uint64_t conncache_next_expiry(const conncache_t *cc)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < cc->n; i++) {
        uint64_t idle = cc->v[i].idle_since_ms + cc->cfg.idle_ms;
        uint64_t age = cc->v[i].born_ms + cc->cfg.reuse_ms;
        uint64_t x = idle < age ? idle : age;
        if (x < t)
            t = x;
    }
    return t;
}
