/* str.c - bounded string helpers; see str.h. */
#include "util/str.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

size_t mp_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

size_t mp_strlcpyn(char *dst, const char *src, size_t n, size_t size)
{
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

size_t mp_strlcat(char *dst, const char *src, size_t size)
{
    size_t d = strnlen(dst, size);
    if (d == size)
        return size + strlen(src);
    return d + mp_strlcpy(dst + d, src, size - d);
}

bool mp_appendf(char *dst, size_t size, size_t *pos, const char *fmt, ...)
{
    if (*pos >= size)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst + *pos, size - *pos, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n >= size - *pos) {
        *pos = size - 1;
        return false;
    }
    *pos += (size_t)n;
    return true;
}

void mp_err_set(char *dst, size_t size, const char *fmt, ...)
{
    if (!dst || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

void mp_str_lower(char *s)
{
    for (; *s; s++)
        *s = (char)mp_to_lower((unsigned char)*s);
}

bool mp_str_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (mp_to_lower((unsigned char)*a) != mp_to_lower((unsigned char)*b))
            return false;
    return *a == *b;
}

const char *mp_str_icase_find(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0)
        return hay;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] &&
               mp_to_lower((unsigned char)hay[i]) == mp_to_lower((unsigned char)needle[i]))
            i++;
        if (i == nl)
            return hay;
    }
    return NULL;
}

bool mp_str_iends(const char *s, const char *suffix)
{
    size_t sl = strlen(s), xl = strlen(suffix);
    return sl >= xl && mp_str_ieq(s + sl - xl, suffix);
}

bool mp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!mp_is_digit((unsigned char)*s))
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool mp_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    char num[32];
    size_t i = 0;
    while (s[i] && mp_is_digit((unsigned char)s[i]) && i < sizeof num - 1) {
        num[i] = s[i];
        i++;
    }
    num[i] = '\0';
    uint64_t v;
    if (!mp_parse_uint(num, 0, UINT64_MAX / 3600000u, &v))
        return false;
    const char *unit = s + i;
    uint64_t mul;
    if (!*unit || strcmp(unit, "s") == 0)
        mul = 1000;
    else if (strcmp(unit, "ms") == 0)
        mul = 1;
    else if (strcmp(unit, "m") == 0)
        mul = 60000;
    else if (strcmp(unit, "h") == 0)
        mul = 3600000;
    else
        return false;
    *out_ms = v * mul;
    return true;
}

char *mp_str_trim(char *s)
{
    size_t n = strlen(s);
    while (n && mp_is_space((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] && mp_is_space((unsigned char)s[i]))
        i++;
    if (i)
        memmove(s, s + i, n - i + 1);
    return s;
}

char *mp_json_escape_ls(char *json)
{
    if (!json)
        return NULL;
    size_t n = strlen(json), hits = 0;
    for (size_t i = 0; i + 2 < n; i++)
        if ((unsigned char)json[i] == 0xE2 && (unsigned char)json[i + 1] == 0x80 &&
            ((unsigned char)json[i + 2] == 0xA8 || (unsigned char)json[i + 2] == 0xA9))
            hits++;
    if (!hits)
        return json;
    char *out = malloc(n + 3 * hits + 1); /* 3 bytes become 6 */
    if (!out) {
        free(json);
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && (unsigned char)json[i] == 0xE2 && (unsigned char)json[i + 1] == 0x80 &&
            ((unsigned char)json[i + 2] == 0xA8 || (unsigned char)json[i + 2] == 0xA9)) {
            memcpy(out + o, (unsigned char)json[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 2;
        } else {
            out[o++] = json[i];
        }
    }
    out[o] = '\0';
    free(json);
    return out;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mp_pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int a = i + 1 < n ? hex_digit((unsigned char)s[i + 1]) : -1;
            int b = i + 2 < n ? hex_digit((unsigned char)s[i + 2]) : -1;
            if (a < 0 || b < 0 || (a | b) == 0)
                return -1; /* a bad escape, or %00 */
            c = a * 16 + b;
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = (char)c;
    }
    if (size == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

char *mp_str_printable(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return buf;
    for (; *s && o + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[o] = '\0';
    return buf;
}
