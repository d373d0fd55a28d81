/* list.c - the intrusive doubly linked list; see list.h. */
#include "util/list.h"

void mp_list_push_head(mp_list_t *l, mp_list_node_t *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

void mp_list_push_tail(mp_list_t *l, mp_list_node_t *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

void mp_list_unlink(mp_list_t *l, mp_list_node_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}
