/* facts.c - the in-memory domain-facts store; see facts.h. */
#include "sched/facts.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/list.h"
#include "util/str.h"
#include "util/strmap.h"

typedef struct mem_entry {
    char domain[256];        /* lower-case */
    facts_domain_t fact;
    uint64_t expires_ms;
    mp_list_node_t age;      /* in mem_store_t.by_age */
} mem_entry_t;

typedef struct {
    strmap_t *map;           /* domain -> entry */
    mp_list_t by_age;        /* storage order, head = oldest: evicted first */
    size_t max;
} mem_store_t;

static void key_of(const char *domain, char *key, size_t size)
{
    mp_strlcpy(key, domain, size);
    mp_str_lower(key);
}

static void mem_drop(mem_store_t *m, mem_entry_t *e)
{
    mp_list_unlink(&m->by_age, &e->age);
    strmap_del(m->map, e->domain);
    free(e);
}

static bool mem_get(void *ctx, const char *domain, facts_domain_t *out)
{
    mem_store_t *m = ctx;
    char key[256];
    if (strlen(domain) >= sizeof key)
        return false;
    key_of(domain, key, sizeof key);
    mem_entry_t *e = strmap_get(m->map, key);
    if (!e)
        return false;
    if (mp_now_ms() >= e->expires_ms) {
        mem_drop(m, e);
        return false;
    }
    *out = e->fact;
    return true;
}

static void mem_put(void *ctx, const char *domain, const facts_domain_t *f, uint64_t ttl_ms)
{
    mem_store_t *m = ctx;
    char key[256];
    if (strlen(domain) >= sizeof key || ttl_ms == 0)
        return;
    key_of(domain, key, sizeof key);
    mem_entry_t *e = strmap_get(m->map, key);
    if (e) {
        mp_list_unlink(&m->by_age, &e->age);
    } else {
        if (strmap_count(m->map) >= m->max && m->by_age.head)
            mem_drop(m, MP_LIST_ITEM(m->by_age.head, mem_entry_t, age));
        e = calloc(1, sizeof *e);
        if (!e)
            return;
        mp_strlcpy(e->domain, key, sizeof e->domain);
        if (!strmap_put(m->map, key, e)) {
            free(e);
            return;
        }
    }
    e->fact = *f;
    e->expires_ms = mp_now_ms() + ttl_ms;
    mp_list_push_tail(&m->by_age, &e->age);
}

static void mem_free(void *ctx)
{
    mem_store_t *m = ctx;
    strmap_free(m->map, free);
    free(m);
}

static const facts_ops_t mem_ops = {mem_get, mem_put, mem_free};

facts_t *facts_mem_new(size_t max_entries)
{
    facts_t *f = calloc(1, sizeof *f);
    mem_store_t *m = calloc(1, sizeof *m);
    if (!f || !m || !(m->map = strmap_new())) {
        free(f);
        free(m);
        return NULL;
    }
    m->max = max_entries ? max_entries : 1;
    f->ops = &mem_ops;
    f->ctx = m;
    return f;
}

bool facts_get(facts_t *f, const char *domain, facts_domain_t *out)
{
    return f && f->ops->get(f->ctx, domain, out);
}

void facts_put(facts_t *f, const char *domain, const facts_domain_t *fact, uint64_t ttl_ms)
{
    if (f)
        f->ops->put(f->ctx, domain, fact, ttl_ms);
}

void facts_free(facts_t *f)
{
    if (!f)
        return;
    f->ops->free(f->ctx);
    free(f);
}
