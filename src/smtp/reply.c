/*
 * reply.c - the SMTP reply reader; see reply.h.
 *
 * Does: find one complete reply at the start of a byte buffer (RFC 5321 §4.2, §4.2.1),
 * check its syntax and bounds, and copy its code, enhanced status code (RFC 3463, RFC
 * 2034) and text into a caller-owned smtp_reply_t.
 * Does not: keep state between calls, allocate (except smtp_reply_from_string), log, or
 * say what a reply means (classify does).
 *
 * Bounds are checked on the bytes seen so far, not only on complete lines, so a peer
 * trickling an endless line or reply is rejected as soon as it passes a limit.
 */
#include "smtp/reply.h"

#include <stdlib.h>
#include <string.h>

#include "util/str.h"

/* Length of an RFC 3463 enhanced status code "c.sss.ddd" at p (n bytes available) followed
 * by a space or the end of the text; 0 when there is none. class is 2, 4 or 5; subject
 * and detail are 1 to 3 digits (0..999). */
static size_t enh_code_len(const unsigned char *p, size_t n)
{
    size_t i = 0;
    if (n < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < n && d < 4 && mp_is_digit(p[i])) {
            i++;
            d++;
        }
        if (d == 0 || d > 3)
            return 0;
        if (part == 0) {
            if (i >= n || p[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && p[i] != ' ')
        return 0;
    return i;
}

/* Append text to out->text, replacing control bytes by spaces (wire text ends up in
 * terminals and JSON); sets out->truncated when it does not fit. */
static void text_append(smtp_reply_t *out, size_t *tl, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (*tl >= sizeof out->text - 1) {
            out->truncated = true;
            break;
        }
        unsigned char c = p[i];
        out->text[(*tl)++] = (char)((c < 0x20 && c != '\t') || c == 0x7f ? ' ' : c);
    }
    out->text[*tl] = '\0';
}

/* Checks that can be made on an incomplete line (bytes p[0..n), no LF among them). */
static smtp_rd_status_t partial_line_check(const unsigned char *p, size_t n, int code)
{
    if (memchr(p, '\0', n))
        return SMTP_RD_ERR_SYNTAX;
    if (n >= 1 && (p[0] < '2' || p[0] > '5'))
        return SMTP_RD_ERR_SYNTAX;
    if (n >= 2 && !mp_is_digit(p[1]))
        return SMTP_RD_ERR_SYNTAX;
    if (n >= 3 && !mp_is_digit(p[2]))
        return SMTP_RD_ERR_SYNTAX;
    if (n >= 3 && code >= 0 && (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0') != code)
        return SMTP_RD_ERR_SYNTAX;
    if (n >= 4 && p[3] != '-' && p[3] != ' ' && p[3] != '\r')
        return SMTP_RD_ERR_SYNTAX;
    return SMTP_RD_MORE;
}

smtp_rd_status_t smtp_reply_parse(const unsigned char *buf, size_t len, smtp_reply_t *out,
                                  size_t *used)
{
    size_t pos = 0, tl = 0;
    unsigned nlines = 0;
    int code = -1;
    /* raw enhanced code of the first line, stripped from continuation lines too */
    const unsigned char *enh = NULL;
    size_t enh_len = 0;

    if (!buf && len)
        return SMTP_RD_ERR_SYNTAX;
    out->code = 0;
    out->enh[0] = '\0';
    out->text[0] = '\0';
    out->truncated = false;
    out->nlines = 0;

    for (;;) {
        size_t avail = len - pos;
        size_t look = avail < SMTP_REPLY_LINE_MAX ? avail : SMTP_REPLY_LINE_MAX;
        const unsigned char *line = buf + pos;
        const unsigned char *lf = look ? memchr(line, '\n', look) : NULL;

        if (!lf) {
            /* Incomplete line: fail early on what can already be seen. */
            smtp_rd_status_t st = partial_line_check(line, look, code);
            if (st != SMTP_RD_MORE)
                return st;
            if (avail >= SMTP_REPLY_LINE_MAX)
                return SMTP_RD_ERR_LINE;
            if (nlines >= SMTP_REPLY_LINES_MAX || len > SMTP_REPLY_TOTAL_MAX)
                return SMTP_RD_ERR_SIZE;
            return SMTP_RD_MORE;
        }

        size_t linelen = (size_t)(lf - line) + 1; /* incl. LF */
        size_t clen = linelen - 1;                /* content, without CR LF */
        if (clen && line[clen - 1] == '\r')
            clen--;
        if (memchr(line, '\0', linelen))
            return SMTP_RD_ERR_SYNTAX;
        if (clen < 3 || line[0] < '2' || line[0] > '5' || !mp_is_digit(line[1]) ||
            !mp_is_digit(line[2]))
            return SMTP_RD_ERR_SYNTAX;
        int lcode = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code >= 0 && lcode != code)
            return SMTP_RD_ERR_SYNTAX;
        bool last;
        if (clen == 3 || line[3] == ' ')
            last = true;
        else if (line[3] == '-')
            last = false;
        else
            return SMTP_RD_ERR_SYNTAX;
        if (++nlines > SMTP_REPLY_LINES_MAX)
            return SMTP_RD_ERR_SIZE;
        if (pos + linelen > SMTP_REPLY_TOTAL_MAX)
            return SMTP_RD_ERR_SIZE;

        const unsigned char *t = clen > 4 ? line + 4 : line + clen;
        size_t tn = clen > 4 ? clen - 4 : 0;
        if (code < 0) {
            code = lcode;
            size_t el = enh_code_len(t, tn);
            /* RFC 3463 §2: the class must agree with the reply code (Postfix smtp_chat
             * keeps it only then); otherwise leave it in the text, untouched. */
            if (el && t[0] == line[0]) {
                enh = t;
                enh_len = el;
                mp_strlcpyn(out->enh, (const char *)t, el, sizeof out->enh);
            }
        } else if (tl < sizeof out->text - 1) {
            out->text[tl++] = '\n'; /* the line separator (not filtered as a control) */
            out->text[tl] = '\0';
        } else {
            out->truncated = true;
        }
        if (enh && tn >= enh_len && memcmp(t, enh, enh_len) == 0 &&
            (tn == enh_len || t[enh_len] == ' ')) {
            t += enh_len;
            tn -= enh_len;
            while (tn && *t == ' ') {
                t++;
                tn--;
            }
        }
        text_append(out, &tl, t, tn);
        pos += linelen;
        if (last)
            break;
    }
    out->code = code;
    out->nlines = nlines;
    *used = pos;
    return SMTP_RD_REPLY;
}

bool smtp_reply_from_string(const char *s, smtp_reply_t *out, const char **err)
{
    const char *e = NULL;
    bool ok = false;
    char *buf = NULL;

    if (!s) {
        e = "no reply given";
        goto done;
    }
    /* Skip leading blank lines/space; trim trailing ones. */
    while (*s && mp_is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && mp_is_space((unsigned char)s[n - 1]))
        n--;
    if (n == 0) {
        e = "empty reply";
        goto done;
    }
    if (n > SMTP_REPLY_TOTAL_MAX - 2) {
        e = "reply too long";
        goto done;
    }
    buf = malloc(n + 2);
    if (!buf) {
        e = "out of memory";
        goto done;
    }
    memcpy(buf, s, n);
    buf[n] = '\n';
    buf[n + 1] = '\0';
    /* Log files and people often write every line as "NNN text": treat every line but
     * the last as a continuation line (and the last as the last), so a pasted
     * multi-line reply reads as one. */
    for (size_t b = 0; b < n;) {
        const char *nl = memchr(buf + b, '\n', n - b);
        size_t le = nl ? (size_t)(nl - buf) : n;
        if (le - b >= 4) {
            if (nl && buf[b + 3] == ' ')
                buf[b + 3] = '-';
            else if (!nl && buf[b + 3] == '-')
                buf[b + 3] = ' ';
        }
        b = le + 1;
    }
    size_t used = 0;
    smtp_rd_status_t st = smtp_reply_parse((const unsigned char *)buf, n + 1, out, &used);
    if (st == SMTP_RD_MORE) {
        e = "incomplete reply";
        goto done;
    }
    if (st != SMTP_RD_REPLY) {
        e = st == SMTP_RD_ERR_SYNTAX
                ? "not an SMTP reply: each line must start with the same code 200..599 "
                  "followed by a space, '-' or the end of the line"
                : smtp_rd_status_text(st);
        goto done;
    }
    if (used != n + 1) {
        e = "text after the end of the reply";
        goto done;
    }
    ok = true;
done:
    free(buf);
    if (err)
        *err = e;
    return ok;
}

const char *smtp_rd_status_text(smtp_rd_status_t st)
{
    switch (st) {
    case SMTP_RD_MORE:
        return "incomplete reply";
    case SMTP_RD_REPLY:
        return "complete reply";
    case SMTP_RD_ERR_LINE:
        return "reply line too long";
    case SMTP_RD_ERR_SYNTAX:
        return "malformed reply";
    case SMTP_RD_ERR_SIZE:
        return "reply too large (lines or bytes)";
    }
    return "unknown reader status";
}
