/*
 * list.h - an intrusive doubly linked list: the node lives inside the caller's object, so
 * linking and unlinking never allocate, and an object leaves its list in O(1) knowing
 * only itself. The recency and age orders of the DNS cache, the domain facts and the
 * HTTP server's connections are kept with it.
 *
 * Does not: own, allocate or free the objects, count them, or check that a node is on
 * the list it is unlinked from (an object that is on two lists has two nodes).
 */
#ifndef MP_UTIL_LIST_H
#define MP_UTIL_LIST_H

#include <stddef.h>
#include <stdint.h>

/** A link, embedded in the object it links. */
typedef struct mp_list_node {
    struct mp_list_node *prev, *next;
} mp_list_node_t;

/** A list: head is the first node, tail the last; both NULL when empty. Zero it to init. */
typedef struct {
    mp_list_node_t *head, *tail;
} mp_list_t;

/** Link n in front of the first node. n must not be on a list. */
void mp_list_push_head(mp_list_t *l, mp_list_node_t *n);
/** Link n after the last node. n must not be on a list. */
void mp_list_push_tail(mp_list_t *l, mp_list_node_t *n);
/** Take n off l (it must be on l); its links become NULL. */
void mp_list_unlink(mp_list_t *l, mp_list_node_t *n);

/** The object at `offset` bytes before node n, or NULL when n is NULL (MP_LIST_ITEM). */
static inline void *mp_list_item_at(const mp_list_node_t *n, size_t offset)
{
    return n ? (void *)((char *)(uintptr_t)n - offset) : NULL;
}

/** The object of type `type` whose member `member` is the node n; NULL for NULL. */
#define MP_LIST_ITEM(n, type, member) ((type *)mp_list_item_at((n), offsetof(type, member)))

#endif
