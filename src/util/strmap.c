/* strmap.c - string-keyed hash map; see strmap.h. */
#include "util/strmap.h"

#include "util/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key;
    void *value;
    uint64_t hash;
    struct entry *next;
} entry_t;

struct strmap {
    entry_t **b;
    size_t nb, n;
};

strmap_t *strmap_new(void)
{
    strmap_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nb = 64;
    m->b = calloc(m->nb, sizeof *m->b);
    if (!m->b) {
        free(m);
        return NULL;
    }
    return m;
}

void strmap_each(const strmap_t *m, void (*fn)(const char *key, void *value, void *arg),
                 void *arg)
{
    for (size_t i = 0; m && i < m->nb; i++)
        for (entry_t *e = m->b[i], *next; e; e = next) {
            next = e->next;
            fn(e->key, e->value, arg);
        }
}

void strmap_free(strmap_t *m, void (*free_value)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nb; i++)
        for (entry_t *e = m->b[i], *next; e; e = next) {
            next = e->next;
            if (free_value)
                free_value(e->value);
            free(e->key);
            free(e);
        }
    free(m->b);
    free(m);
}

static entry_t **find(const strmap_t *m, const char *key, uint64_t h)
{
    entry_t **pp = &m->b[h & (m->nb - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    entry_t *e = *find(m, key, mp_fnv1a_str(MP_FNV_BASIS, key));
    return e ? e->value : NULL;
}

static void grow(strmap_t *m)
{
    size_t nb = m->nb * 2;
    entry_t **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* stays correct, only slower */
    for (size_t i = 0; i < m->nb; i++)
        for (entry_t *e = m->b[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

bool strmap_put(strmap_t *m, const char *key, void *value)
{
    uint64_t h = mp_fnv1a_str(MP_FNV_BASIS, key);
    entry_t **pp = find(m, key, h);
    if (*pp) {
        (*pp)->value = value;
        return true;
    }
    entry_t *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return false;
    }
    e->value = value;
    e->hash = h;
    *pp = e;
    if (++m->n > m->nb * 2)
        grow(m);
    return true;
}

void *strmap_del(strmap_t *m, const char *key)
{
    entry_t **pp = find(m, key, mp_fnv1a_str(MP_FNV_BASIS, key));
    entry_t *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e->key);
    free(e);
    m->n--;
    return v;
}

size_t strmap_count(const strmap_t *m)
{
    return m->n;
}
