/* util.c - names, UTF-8 validation and JSON string escaping for bulkio; see bulkio_int.h. */
#include "bulkio/bulkio.h"
#include "bulkio/bulkio_int.h"
#include "util/str.h"

#include <string.h>

const char *bulkio_row_err_name(bulkio_row_err_t e)
{
    switch (e) {
    case BULKIO_ROW_OK: return "";
    case BULKIO_ROW_BAD_QUOTING: return "bad_quoting";
    case BULKIO_ROW_NO_ADDRESS: return "no_address";
    case BULKIO_ROW_NOT_UTF8: return "not_utf8";
    case BULKIO_ROW_TOO_LONG: return "too_long";
    case BULKIO_ROW_BAD_JSON: return "bad_json";
    }
    return "unknown";
}

const char *bulkio_format_name(bulkio_format_t f)
{
    switch (f) {
    case BULKIO_FMT_AUTO: return "auto";
    case BULKIO_FMT_CSV: return "csv";
    case BULKIO_FMT_NDJSON: return "ndjson";
    }
    return "unknown";
}

/* Length of the UTF-8 sequence at p (1..4), or 0 when it is malformed. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else
        return 0;
    if (n < len)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

bool bulkio_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* fast path over ASCII */
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

mp_status_t bulkio_json_str(mp_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    mp_status_t st = mp_buf_add(b, "\"", 1);
    size_t i = 0, run = 0; /* run: start of the pending plain bytes */
    while (!st && i < n) {
        unsigned c = p[i];
        char esc[8];
        size_t el = 0, adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            el = 2;
        } else if (c < 0x20) {
            esc[0] = '\\';
            switch (c) {
            case '\n': esc[1] = 'n'; el = 2; break;
            case '\r': esc[1] = 'r'; el = 2; break;
            case '\t': esc[1] = 't'; el = 2; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
        } else if (c == 0xE2 && n - i >= 3 && p[i + 1] == 0x80 &&
                   (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
            /* U+2028/U+2029: valid JSON, but line ends to older JavaScript */
            memcpy(esc, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            el = 6;
            adv = 3;
        } else if (c >= 0x80) {
            size_t l = utf8_seq(p + i, n - i);
            if (l) {
                i += l;
                continue;
            }
            memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for a byte that is not UTF-8 */
            el = 3;
        } else {
            i++;
            continue;
        }
        st = mp_buf_add(b, s + run, i - run);
        if (!st)
            st = mp_buf_add(b, esc, el);
        i += adv;
        run = i;
    }
    if (!st)
        st = mp_buf_add(b, s + run, n - run);
    if (!st)
        st = mp_buf_add(b, "\"", 1);
    return st;
}

void bulkio_name_norm(const char *s, size_t n, char *out, size_t outsize)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outsize; i++)
        if (mp_is_alnum((unsigned char)s[i]))
            out[o++] = (char)mp_to_lower((unsigned char)s[i]);
    if (outsize)
        out[o] = '\0';
}

int bulkio_email_name_rank(const char *norm)
{
    /* Most specific first; "address" alone may be a street address, so it ranks last. */
    static const char *const names[] = {"email", "emailaddress", "email1", "mail", "emailaddr",
                                        "mailaddress", "address", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(norm, names[i]) == 0)
            return i + 1;
    return 0;
}
