/* buf.c - bounded growable buffer; see buf.h. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mp_buf_init(mp_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void mp_buf_cleanup(mp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

mp_status_t mp_buf_add(mp_buf_t *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return MP_ERR_LIMIT;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *d = realloc(b->data, cap);
        if (!d)
            return MP_ERR_NOMEM;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return MP_OK;
}

mp_status_t mp_buf_adds(mp_buf_t *b, const char *s)
{
    return mp_buf_add(b, s, strlen(s));
}

mp_status_t mp_buf_addf(mp_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MP_ERR_ARG;
    if ((size_t)n < sizeof small)
        return mp_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return MP_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    mp_status_t st = mp_buf_add(b, big, (size_t)n);
    free(big);
    return st;
}

void mp_buf_reset(mp_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

const char *mp_buf_str(const mp_buf_t *b)
{
    return b->data ? b->data : "";
}

void *mp_array_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return arr;
    size_t nc = *cap ? *cap * 2 : first;
    if (nc <= *cap || elem == 0 || nc > SIZE_MAX / elem)
        return NULL;
    void *p = realloc(arr, nc * elem);
    if (p)
        *cap = nc;
    return p;
}
