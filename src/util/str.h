/*
 * str.h - bounded string helpers, locale-independent ASCII classes.
 *
 * Replaces the unbounded C string calls and <ctype.h> for wire and file data (STYLE.md). Every copy
 * takes the destination size and always NUL-terminates when size > 0.
 */
#ifndef MP_UTIL_STR_H
#define MP_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Copy src into dst (size bytes). Returns strlen(src); >= size means truncated. */
size_t mp_strlcpy(char *dst, const char *src, size_t size);
/** Copy at most n bytes of src. Returns n; >= size means truncated. */
size_t mp_strlcpyn(char *dst, const char *src, size_t n, size_t size);
/** Append src to dst (size bytes). Returns the length it tried to create. */
size_t mp_strlcat(char *dst, const char *src, size_t size);
/** snprintf that appends at dst[*pos], advancing *pos (clamped); returns false on truncation. */
bool mp_appendf(char *dst, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** snprintf into an error buffer dst of size bytes (truncated to fit); nothing when dst
 *  is NULL or size is 0, so that a caller's err, errsize pair can be passed on as is. */
void mp_err_set(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline bool mp_is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool mp_is_alpha(int c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline bool mp_is_alnum(int c) { return mp_is_digit(c) || mp_is_alpha(c); }
static inline bool mp_is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
static inline int mp_to_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/** Lower-case ASCII letters in place. */
void mp_str_lower(char *s);
/** ASCII case-insensitive equality. */
bool mp_str_ieq(const char *a, const char *b);
/** ASCII case-insensitive substring search; NULL when absent. */
const char *mp_str_icase_find(const char *hay, const char *needle);
/** True when s ends with suffix, ASCII case-insensitively. */
bool mp_str_iends(const char *s, const char *suffix);

/** Parse a decimal unsigned integer of the whole string within [min, max]. */
bool mp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/** Parse a duration: "30", "30s", "500ms", "2m", "1h" into milliseconds. */
bool mp_parse_duration_ms(const char *s, uint64_t *out_ms);

/** Copy s into buf (size bytes, truncated) with control bytes as '?': text a user typed,
 *  safe to quote in a one-line message. Returns buf. */
char *mp_str_printable(const char *s, char *buf, size_t size);

/** %-decode s[0..n) (RFC 3986 §2.1; '+' stays '+') into out (size bytes, NUL-ended).
 *  @return 0, or -1 on a bad escape, %00, or no room */
int mp_pct_decode(const char *s, size_t n, char *out, size_t size);

/** Trim ASCII whitespace at both ends in place; returns s. */
char *mp_str_trim(char *s);

/**
 * Escape U+2028 and U+2029 in JSON text as \u2028 and \u2029 (valid JSON either way,
 * but line terminators in JavaScript before ES2019). @p json is a heap string from
 * malloc (jansson's json_dumps); it is returned as it is when there is nothing to
 * escape, else freed and replaced. Returns NULL (and frees @p json) on allocation failure.
 */
char *mp_json_escape_ls(char *json);

#endif
