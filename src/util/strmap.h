/*
 * strmap.h - a string-keyed hash map of pointers (chained, grows by doubling).
 *
 * Keys are copied (case kept; the caller lower-cases when it wants case-insensitive
 * keys); values are the caller's. No iteration order is promised. Owner: strmap_new /
 * strmap_free (which frees keys, not values).
 */
#ifndef MP_UTIL_STRMAP_H
#define MP_UTIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strmap strmap_t;

strmap_t *strmap_new(void);
/** Free the map and its keys; call free_value on each value first when not NULL. */
void strmap_free(strmap_t *m, void (*free_value)(void *));
/** The value for key, or NULL. */
void *strmap_get(const strmap_t *m, const char *key);
/** Set key's value (replacing any). False when out of memory. */
bool strmap_put(strmap_t *m, const char *key, void *value);
/** Remove key; returns its value or NULL. */
void *strmap_del(strmap_t *m, const char *key);
size_t strmap_count(const strmap_t *m);
/** Call fn for every entry, in no particular order. fn must not add or remove entries. */
void strmap_each(const strmap_t *m, void (*fn)(const char *key, void *value, void *arg),
                 void *arg);

#endif
