/*
 * bulkio_int.h - helpers shared by the bulkio reader and writer. Not for other modules.
 */
#ifndef MP_BULKIO_INT_H
#define MP_BULKIO_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/** True when p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
bool bulkio_utf8_valid(const unsigned char *p, size_t n);

/** Append p[0..n) as a JSON string literal (with quotes); invalid UTF-8 becomes U+FFFD. */
mp_status_t bulkio_json_str(mp_buf_t *b, const char *p, size_t n);

/** Normalise a column name for matching: ASCII letters and digits only, lower case. */
void bulkio_name_norm(const char *s, size_t n, char *out, size_t outsize);

/** Rank of a normalised name as an email column (1 best, 0 = not an email name). */
int bulkio_email_name_rank(const char *norm);

/** Result columns taken from the result JSON (bulkio_result_columns[] minus "error"). */
#define BULKIO_NCOLS_JSON 15u

/**
 * Extract the CSV result columns from a result JSON object without building a tree.
 * Column i's text is scratch->data[off[i] .. off[i] + len[i]) (strings decoded, numbers
 * as written, booleans true/false, null and absent keys empty).
 * @return false when json is not one well-formed JSON object.
 */
bool bulkio_result_cols(const char *json, mp_buf_t *scratch, size_t off[BULKIO_NCOLS_JSON],
                        size_t len[BULKIO_NCOLS_JSON]);

#endif
