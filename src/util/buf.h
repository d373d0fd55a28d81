/*
 * buf.h - a growable byte buffer with a hard maximum (curl's dynbuf).
 *
 * Anything grown by a peer or a file goes through one of these: going past the maximum
 * is an error the caller turns into a protocol failure, never an OOM. The contents are
 * always NUL-terminated for convenience. Owner: whoever called mp_buf_init.
 */
#ifndef MP_UTIL_BUF_H
#define MP_UTIL_BUF_H

#include <stddef.h>

#include "mailprobe.h"

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} mp_buf_t;

/** Start empty, allowing up to max bytes of content. */
void mp_buf_init(mp_buf_t *b, size_t max);
/** Free the storage; the buffer can be reused after mp_buf_init. */
void mp_buf_cleanup(mp_buf_t *b);
/** Append n bytes; MP_ERR_LIMIT past max, MP_ERR_NOMEM on allocation failure. */
mp_status_t mp_buf_add(mp_buf_t *b, const void *p, size_t n);
/** Append a NUL-terminated string. */
mp_status_t mp_buf_adds(mp_buf_t *b, const char *s);
/** Append formatted text. */
mp_status_t mp_buf_addf(mp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Empty the buffer, keeping its storage. */
void mp_buf_reset(mp_buf_t *b);
/** The contents ("" when empty, never NULL). */
const char *mp_buf_str(const mp_buf_t *b);

/**
 * Room for one more element in a growable array of n elements of elem bytes: when
 * n == *cap the array is reallocated to twice its capacity (first elements when empty).
 * The one grow-by-doubling of the tree; callers keep their own maximum where a peer or a
 * file grows the array.
 * @return the array (moved or not), with *cap updated; NULL on overflow or allocation
 *         failure, arr and *cap left as they were
 */
void *mp_array_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);

#endif
