/*
 * addr.c - parse and normalise one email address as SMTP accepts it.
 *
 * Grammar: RFC 5321 §4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ), with
 * RFC 6531 §3.3 extensions (UTF-8 in atext and qtext, U-labels in the domain). Limits:
 * RFC 5321 §4.5.3.1. The domain goes to its A-label form through addr_idn.c.
 *
 * Rules are checked in reading order and the first one broken is reported: input size,
 * whitespace-only, UTF-8, the '@', the local part, the domain, then the whole length.
 *
 * It does not look anything up, unquote or otherwise rewrite the local part, or judge
 * whether an address literal is a sensible place to send mail. Everything it produces is
 * copied into the caller's addr_t; nothing allocated here outlives the call.
 */
#include <arpa/inet.h>
#include <string.h>

#include "addr/addr.h"
#include "addr/addr_int.h"
#include "util/log.h"
#include "util/str.h"

#define LABEL_MAX 63 /* octets, RFC 1035 §2.3.4 */

size_t addr_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0)
        len = 3, lo = 0xA0; /* no overlong 3-byte forms */
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        len = 3;
    else if (c == 0xED)
        len = 3, hi = 0x9F; /* no UTF-16 surrogates */
    else if (c == 0xF0)
        len = 4, lo = 0x90; /* no overlong 4-byte forms */
    else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else if (c == 0xF4)
        len = 4, hi = 0x8F; /* nothing above U+10FFFF */
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* C1 controls U+0080..U+009F: UTF-8 but never part of a mailbox name (RFC 5198 §2). */
static bool is_c1(const unsigned char *s)
{
    return s[0] == 0xC2 && s[1] <= 0x9F;
}

/* atext, RFC 5322 §3.2.3 (ASCII part; RFC 6531 adds UTF8-non-ascii). */
static bool is_atext(unsigned char c)
{
    if (mp_is_alnum(c))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
        return true;
    default:
        return false;
    }
}

/* qtextSMTP, RFC 5321 §4.1.2: printable ASCII except '"' and '\'; no tab, no controls. */
static bool is_qtext(unsigned char c)
{
    return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/*
 * Dot-string local part: everything before the last '@' (a domain never contains one).
 * Sets *at to the index of that '@'.
 */
static addr_err_t local_dot_string(const unsigned char *s, size_t n, size_t *at, addr_t *out)
{
    size_t i = n;
    while (i > 0 && s[i - 1] != '@')
        i--;
    if (i == 0)
        return ADDR_ERR_NO_AT;
    *at = i - 1;
    if (*at == 0)
        return ADDR_ERR_LOCAL_EMPTY;

    for (i = 0; i < *at;) {
        unsigned char c = s[i];
        if (c == '.') {
            if (i == 0 || s[i - 1] == '.')
                return ADDR_ERR_LOCAL_DOT;
            i++;
        } else if (c >= 0x80) {
            if (is_c1(s + i))
                return ADDR_ERR_LOCAL_CHAR;
            out->local_utf8 = true; /* RFC 6531 §3.3: atext =/ UTF8-non-ascii */
            i += addr_utf8_len(s + i, n - i); /* validated already: >= 2 */
        } else if (is_atext(c)) {
            i++;
        } else {
            return ADDR_ERR_LOCAL_CHAR;
        }
    }
    if (s[*at - 1] == '.')
        return ADDR_ERR_LOCAL_DOT;
    return ADDR_OK;
}

/*
 * Quoted-string local part (RFC 5321 §4.1.2: qtextSMTP / quoted-pairSMTP, RFC 6531 adds
 * UTF-8 to qtextSMTP but not to quoted-pairSMTP). s[0] is '"'. Sets *at to the '@'.
 */
static addr_err_t local_quoted(const unsigned char *s, size_t n, size_t *at, addr_t *out)
{
    size_t i = 1;

    out->quoted = true;
    for (;;) {
        if (i >= n)
            return ADDR_ERR_QUOTE; /* unterminated */
        unsigned char c = s[i];
        if (c == '"')
            break;
        if (c == '\\') {
            if (i + 1 >= n || s[i + 1] < 32 || s[i + 1] > 126)
                return ADDR_ERR_QUOTE;
            i += 2;
        } else if (c >= 0x80) {
            if (is_c1(s + i))
                return ADDR_ERR_QUOTE;
            out->local_utf8 = true;
            i += addr_utf8_len(s + i, n - i);
        } else if (is_qtext(c)) {
            i++;
        } else {
            return ADDR_ERR_QUOTE; /* CR, LF, NUL, tab, DEL, other controls */
        }
    }
    /*
     * '""' is a Quoted-string by the grammar, but it names no mailbox a server could
     * have; treat it as the empty local part it is.
     */
    if (i == 1)
        return ADDR_ERR_LOCAL_EMPTY;
    *at = i + 1;
    if (*at >= n)
        return ADDR_ERR_NO_AT;
    if (s[*at] != '@')
        return ADDR_ERR_QUOTE; /* text after the closing quote */
    return ADDR_OK;
}

/*
 * Label syntax, RFC 1035 §2.3.1 as relaxed by RFC 1123 §2.1 (LDH, 1..63 octets, no
 * hyphen at either end). raw: the domain as given, before IDNA; non-ASCII bytes are
 * allowed there and a label holding some is not measured (its A-label is, later).
 */
static addr_err_t domain_labels(const unsigned char *d, size_t n, bool raw)
{
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.')
            continue;
        const unsigned char *l = d + start;
        size_t len = i - start;
        bool ascii = true;
        if (len == 0)
            return ADDR_ERR_LABEL_EMPTY;
        for (size_t j = 0; j < len; j++) {
            if (l[j] >= 0x80 && raw)
                ascii = false;
            else if (!mp_is_alnum(l[j]) && l[j] != '-')
                return ADDR_ERR_DOMAIN_CHAR;
        }
        if (ascii && len > LABEL_MAX)
            return ADDR_ERR_LABEL_TOO_LONG;
        if (l[0] == '-' || l[len - 1] == '-')
            return ADDR_ERR_LABEL_HYPHEN;
        start = i + 1;
    }
    return ADDR_OK;
}

/* Whole-name rules on the A-label form: length, more than one label, a non-numeric TLD. */
static addr_err_t domain_name(const char *d)
{
    size_t n = strlen(d);
    const char *tld = strrchr(d, '.');

    if (n > ADDR_DOMAIN_MAX)
        return ADDR_ERR_DOMAIN_TOO_LONG;
    if (!tld)
        return ADDR_ERR_DOMAIN_SINGLE;
    /* RFC 3696 §2: a TLD is never all-numeric; "1.2.3.4" wants to be a literal. */
    for (tld++; *tld; tld++)
        if (!mp_is_digit((unsigned char)*tld))
            return ADDR_OK;
    return ADDR_ERR_DOMAIN_NUMERIC;
}

/* True when some label starts with "xn--" (an A-label, or something posing as one). */
static bool has_alabel(const unsigned char *d, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if (i > 0 && d[i - 1] != '.')
            continue;
        if (mp_to_lower(d[i]) == 'x' && mp_to_lower(d[i + 1]) == 'n' && d[i + 2] == '-' &&
            d[i + 3] == '-')
            return true;
    }
    return false;
}

/*
 * Address literal, RFC 5321 §4.1.3: "[" IPv4 "]" or "[IPv6:" IPv6 "]". Other tags
 * (General-address-literal) have no registered meaning and are refused. The result is
 * the canonical text inet_ntop gives, so equal addresses compare equal.
 */
static addr_err_t domain_literal(const unsigned char *d, size_t n, addr_t *out)
{
    char txt[64], canon[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    size_t cn = n - 2;
    const char *tag = "";

    if (n < 3 || d[n - 1] != ']' || cn >= sizeof txt)
        return ADDR_ERR_LITERAL;
    for (size_t i = 1; i < n - 1; i++)
        if (d[i] < 33 || d[i] > 126 || d[i] == '[' || d[i] == ']' || d[i] == '\\')
            return ADDR_ERR_LITERAL; /* dcontent, RFC 5321 §4.1.3; no NUL for inet_pton */
    memcpy(txt, d + 1, cn);
    txt[cn] = '\0';

    if (cn > 5 && mp_to_lower((unsigned char)txt[0]) == 'i' &&
        mp_to_lower((unsigned char)txt[1]) == 'p' && mp_to_lower((unsigned char)txt[2]) == 'v' &&
        txt[3] == '6' && txt[4] == ':') {
        if (inet_pton(AF_INET6, txt + 5, bin) != 1 ||
            !inet_ntop(AF_INET6, bin, canon, sizeof canon))
            return ADDR_ERR_LITERAL;
        tag = "IPv6:";
    } else if (memchr(txt, ':', cn)) {
        return ADDR_ERR_LITERAL; /* General-address-literal */
    } else if (inet_pton(AF_INET, txt, bin) != 1 ||
               !inet_ntop(AF_INET, bin, canon, sizeof canon)) {
        return ADDR_ERR_LITERAL;
    }

    size_t pos = 0;
    if (!mp_appendf(out->domain_ascii, sizeof out->domain_ascii, &pos, "[%s%s]", tag, canon))
        return ADDR_ERR_LITERAL;
    mp_strlcpy(out->domain, out->domain_ascii, sizeof out->domain);
    out->literal = true;
    return ADDR_OK;
}

/* The part after '@': literal, or a domain name converted to A-labels and checked. */
static addr_err_t domain_parse(const unsigned char *d, size_t n, addr_t *out)
{
    char raw[ADDR_INPUT_MAX + 1];
    bool ascii = true;
    addr_err_t err;

    if (n == 0)
        return ADDR_ERR_DOMAIN_EMPTY;
    if (d[0] == '[')
        return domain_literal(d, n, out);

    /* Syntax of the text as given first, so ASCII mistakes get their precise rule. */
    err = domain_labels(d, n, true);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++)
        if (d[i] >= 0x80)
            ascii = false;
    memcpy(raw, d, n); /* n <= ADDR_INPUT_MAX; labels hold no NUL (checked above) */
    raw[n] = '\0';

    if (ascii && !has_alabel(d, n)) {
        if (n > ADDR_DOMAIN_MAX)
            return ADDR_ERR_DOMAIN_TOO_LONG;
        mp_strlcpy(out->domain_ascii, raw, sizeof out->domain_ascii);
        mp_str_lower(out->domain_ascii);
    } else {
        err = addr_idn_to_ascii(raw, out->domain_ascii, sizeof out->domain_ascii);
        if (err)
            return err;
    }

    /* Then the A-label form: UTS#46 mapping may have produced dots or other ASCII. */
    const char *a = out->domain_ascii;
    err = domain_labels((const unsigned char *)a, strlen(a), false);
    if (!err)
        err = domain_name(a);
    if (err)
        return err;

    if (has_alabel((const unsigned char *)a, strlen(a))) {
        out->domain_idn = true;
        return addr_idn_to_unicode(a, out->domain, sizeof out->domain);
    }
    mp_strlcpy(out->domain, a, sizeof out->domain);
    return ADDR_OK;
}

static addr_err_t parse(const unsigned char *s, size_t n, addr_t *out)
{
    size_t at = 0;
    addr_err_t err;

    if (n > ADDR_INPUT_MAX)
        return ADDR_ERR_TOO_LONG;
    while (n > 0 && mp_is_space(s[0]))
        s++, n--;
    while (n > 0 && mp_is_space(s[n - 1]))
        n--;
    if (n == 0)
        return ADDR_ERR_EMPTY;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = addr_utf8_len(s + i, n - i)) == 0)
            return ADDR_ERR_UTF8;

    err = s[0] == '"' ? local_quoted(s, n, &at, out) : local_dot_string(s, n, &at, out);
    if (err)
        return err;
    if (at > ADDR_LOCAL_MAX) /* octets as written, quotes included (RFC 5321 §4.5.3.1.1) */
        return ADDR_ERR_LOCAL_TOO_LONG;

    err = domain_parse(s + at + 1, n - at - 1, out);
    if (err)
        return err;

    /* RFC 5321 §4.5.3.1.3: a path is at most 256 octets including "<" and ">". */
    if (at + 1 + strlen(out->domain_ascii) > ADDR_ADDRESS_MAX)
        return ADDR_ERR_TOO_LONG;
    mp_strlcpyn(out->local, (const char *)s, at, sizeof out->local);
    size_t pos = 0;
    mp_appendf(out->normalized, sizeof out->normalized, &pos, "%s@%s", out->local,
               out->domain_ascii);
    return ADDR_OK;
}

addr_err_t addr_parse(const char *in, size_t len, addr_t *out)
{
    if (!out || (!in && len))
        mp_panic("NULL argument");
    memset(out, 0, sizeof *out);
    addr_err_t err = parse((const unsigned char *)(in ? in : ""), len, out);
    if (err) {
        /* On error nothing half-parsed is left for a caller to trust by mistake. */
        memset(out, 0, sizeof *out);
        out->err = err;
    }
    return err;
}
