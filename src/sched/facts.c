/* facts.c - the in-memory domain-facts store; see facts.h. */
#include "sched/facts.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/str.h"

typedef struct mem_entry {
    char domain[256];
    facts_domain_t fact;
    uint64_t expires_ms;
    uint64_t stored_seq;
    struct mem_entry *next;
} mem_entry_t;

typedef struct {
    mem_entry_t *head;
    size_t n, max;
    uint64_t seq;
} mem_store_t;

static mem_entry_t *mem_find(mem_store_t *m, const char *domain, mem_entry_t **prev)
{
    mem_entry_t *p = NULL;
    for (mem_entry_t *e = m->head; e; p = e, e = e->next)
        if (mp_str_ieq(e->domain, domain)) {
            if (prev)
                *prev = p;
            return e;
        }
    return NULL;
}

static void mem_unlink(mem_store_t *m, mem_entry_t *e, mem_entry_t *prev)
{
    if (prev)
        prev->next = e->next;
    else
        m->head = e->next;
    m->n--;
    free(e);
}

static bool mem_get(void *ctx, const char *domain, facts_domain_t *out)
{
    mem_store_t *m = ctx;
    mem_entry_t *prev = NULL;
    mem_entry_t *e = mem_find(m, domain, &prev);
    if (!e)
        return false;
    if (mp_now_ms() >= e->expires_ms) {
        mem_unlink(m, e, prev);
        return false;
    }
    *out = e->fact;
    return true;
}

static void mem_put(void *ctx, const char *domain, const facts_domain_t *f, uint64_t ttl_ms)
{
    mem_store_t *m = ctx;
    if (strlen(domain) >= sizeof m->head->domain || ttl_ms == 0)
        return;
    mem_entry_t *e = mem_find(m, domain, NULL);
    if (!e) {
        if (m->n >= m->max) { /* evict the oldest */
            mem_entry_t *old = NULL, *oldprev = NULL, *p = NULL;
            for (mem_entry_t *x = m->head; x; p = x, x = x->next)
                if (!old || x->stored_seq < old->stored_seq) {
                    old = x;
                    oldprev = p;
                }
            if (old)
                mem_unlink(m, old, oldprev);
        }
        e = calloc(1, sizeof *e);
        if (!e)
            return;
        mp_strlcpy(e->domain, domain, sizeof e->domain);
        e->next = m->head;
        m->head = e;
        m->n++;
    }
    e->fact = *f;
    e->expires_ms = mp_now_ms() + ttl_ms;
    e->stored_seq = ++m->seq;
}

static void mem_free(void *ctx)
{
    mem_store_t *m = ctx;
    while (m->head) {
        mem_entry_t *e = m->head;
        m->head = e->next;
        free(e);
    }
    free(m);
}

static const facts_ops_t mem_ops = {mem_get, mem_put, mem_free};

facts_t *facts_mem_new(size_t max_entries)
{
    facts_t *f = calloc(1, sizeof *f);
    mem_store_t *m = calloc(1, sizeof *m);
    if (!f || !m) {
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
