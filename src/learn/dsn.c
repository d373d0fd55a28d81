/*
 * dsn.c - the recipients a bounce message speaks of, and what happened to each.
 *
 * Pure over one message (bytes in, events out). In order of trust:
 *   1. an RFC 3464 delivery-status part (message/delivery-status, or RFC 6533's
 *      message/global-delivery-status): Final-Recipient, Action, Status,
 *      Diagnostic-Code, Last-Attempt-Date per recipient block (§2.3);
 *   2. Exim's X-Failed-Recipients header;
 *   3. the human text of non-standard bounces (qmail, Postfix without DSN, Sendmail,
 *      Exchange, Gmail, Yahoo, ...): the first address in a recipient-like place of the
 *      text before the copy of the original message, and the first status or reply code
 *      after it.
 * An ordinary message (no bounce sender, subject or status part) yields nothing. What a
 * failure means (hard or soft) is decided by learn_event_judge through classify.
 * Does not: read files (reader.c), store anything. GMime objects live only inside
 * learn_message_read.
 */
#include "learn/learn.h"

#include <gmime/gmime.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_start(void)
{
    g_mime_init();
}

typedef struct {
    mp_buf_t dsn;   /* delivery-status fields */
    mp_buf_t text;  /* human text before the original message */
    mp_buf_t orig;  /* headers of the returned original message */
} parts_t;

static void take_stream(GMimeStream *s, mp_buf_t *to)
{
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
    size_t room = to->max > to->len ? to->max - to->len : 0;
    size_t n = ba->len < room ? ba->len : room;
    if (n)
        (void)mp_buf_add(to, ba->data, n);
    (void)mp_buf_add(to, "\n", 1);
}

static void take_part(GMimePart *p, mp_buf_t *to)
{
    GMimeDataWrapper *w = g_mime_part_get_content(p);
    if (!w)
        return;
    GMimeStream *s = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(w, s);
    take_stream(s, to);
    g_object_unref(s);
}

static void take_object(GMimeObject *o, mp_buf_t *to, bool headers_only)
{
    char *str = headers_only ? g_mime_object_get_headers(o, NULL) : g_mime_object_to_string(o, NULL);
    if (str) {
        size_t len = strlen(str), room = to->max > to->len ? to->max - to->len : 0;
        (void)mp_buf_add(to, str, len < room ? len : room);
        (void)mp_buf_add(to, "\n", 1);
        g_free(str);
    }
}

/* Strip tags from an HTML part so its text reads like a text/plain one. */
static void html_to_text(mp_buf_t *b, size_t from)
{
    char *s = b->data + from, *w = s;
    bool tag = false;
    for (char *r = s; r < b->data + b->len; r++) {
        if (*r == '<' && (mp_is_alpha((unsigned char)r[1]) || r[1] == '/' || r[1] == '!'))
            tag = true;
        else if (tag && *r == '>') {
            tag = false;
            *w++ = ' ';
        } else if (!tag)
            *w++ = *r;
    }
    b->len = (size_t)(w - b->data);
    b->data[b->len] = '\0';
}

static void walk(GMimeObject *o, parts_t *p, bool *seen_orig)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    if (GMIME_IS_MULTIPART(o)) {
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
        for (int i = 0; i < n; i++)
            walk(g_mime_multipart_get_part(GMIME_MULTIPART(o), i), p, seen_orig);
        return;
    }
    bool status = ct && (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
                         g_mime_content_type_is_type(ct, "message", "global-delivery-status"));
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        if (m && status)
            take_object(GMIME_OBJECT(m), &p->dsn, false);
        else if (m) {
            take_object(GMIME_OBJECT(m), &p->orig, true);
            *seen_orig = true;
        }
        return;
    }
    if (!GMIME_IS_PART(o))
        return;
    if (status)
        take_part(GMIME_PART(o), &p->dsn);
    else if (ct && g_mime_content_type_is_type(ct, "text", "rfc822-headers")) {
        take_part(GMIME_PART(o), &p->orig);
        *seen_orig = true;
    } else if (!*seen_orig && ct && g_mime_content_type_is_type(ct, "text", "plain"))
        take_part(GMIME_PART(o), &p->text);
    else if (!*seen_orig && ct && g_mime_content_type_is_type(ct, "text", "html") &&
             p->text.len == 0) {
        size_t from = p->text.len;
        take_part(GMIME_PART(o), &p->text);
        html_to_text(&p->text, from);
    }
}

/* ---- small text helpers ---- */

/* Copy a value to one bounded line: control characters become spaces, runs collapse. */
static void one_line(char *dst, size_t size, const char *s, size_t n)
{
    size_t w = 0;
    bool sp = true;
    for (size_t i = 0; i < n && s[i] && w + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            if (!sp)
                dst[w++] = ' ';
            sp = true;
            continue;
        }
        if (c == ' ' && sp)
            continue;
        dst[w++] = (char)c;
        sp = c == ' ';
    }
    while (w && dst[w - 1] == ' ')
        w--;
    dst[w] = '\0';
}

static bool addr_char(unsigned char c)
{
    return mp_is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '=' ||
           c == '%' || c == '\'' || c == '!' || c == '#' || c == '$' || c == '&' ||
           c == '*' || c == '/' || c == '?' || c == '^' || c == '`' || c == '{' ||
           c == '|' || c == '}' || c == '~' || c >= 0x80;
}

static bool dom_char(unsigned char c)
{
    return mp_is_alnum(c) || c == '.' || c == '-' || c >= 0x80;
}

/* Find the next address-looking token at or after s. Sets [*b, *e). */
static bool next_addr(const char *s, const char *end, const char **b, const char **e)
{
    for (const char *at = s; at < end; at++) {
        if (*at != '@')
            continue;
        const char *l = at;
        while (l > s && addr_char((unsigned char)l[-1]))
            l--;
        while (l < at && (*l == '.' || *l == '\''))
            l++;
        const char *r = at + 1;
        bool dot = false;
        while (r < end && dom_char((unsigned char)*r)) {
            dot |= *r == '.';
            r++;
        }
        while (r > at + 1 && (r[-1] == '.' || r[-1] == '-'))
            r--;
        if (l == at || r == at + 1 || !dot)
            continue;
        *b = l;
        *e = r;
        return true;
    }
    return false;
}

/* The first "c.s.d" RFC 3463 status in [s, end), with class 2, 4 or 5. */
static bool find_status(const char *s, const char *end, char *out, size_t size)
{
    for (const char *p = s; p + 5 <= end; p++) {
        if ((*p != '2' && *p != '4' && *p != '5') || p[1] != '.')
            continue;
        if (p > s && (mp_is_alnum((unsigned char)p[-1]) || p[-1] == '.'))
            continue;
        const char *q = p + 2;
        size_t d1 = 0, d2 = 0;
        while (q < end && mp_is_digit((unsigned char)*q) && d1 < 4) {
            q++;
            d1++;
        }
        if (!d1 || d1 > 3 || q >= end || *q != '.')
            continue;
        q++;
        while (q < end && mp_is_digit((unsigned char)*q) && d2 < 4) {
            q++;
            d2++;
        }
        if (!d2 || d2 > 3 || (q < end && (mp_is_alnum((unsigned char)*q) ||
                                          (*q == '.' && q + 1 < end &&
                                           mp_is_digit((unsigned char)q[1])))))
            continue;
        size_t n = (size_t)(q - p);
        if (n >= size)
            continue;
        memcpy(out, p, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

/* The first SMTP reply code ("550 ", "550-", "421 ") of class 4 or 5 in [s, end); *at
 * (when not NULL) receives where it starts. */
static int find_code(const char *s, const char *end, const char **at)
{
    for (const char *p = s; p + 4 <= end; p++) {
        if ((*p != '4' && *p != '5') || !mp_is_digit((unsigned char)p[1]) ||
            !mp_is_digit((unsigned char)p[2]) || (p[3] != ' ' && p[3] != '-'))
            continue;
        if (p > s && (mp_is_alnum((unsigned char)p[-1]) || p[-1] == '.' || p[-1] == '-' ||
                      p[-1] == ':' || p[-1] == '/'))
            continue;
        if (p[1] > '5')
            continue;
        if (at)
            *at = p;
        return (*p - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    }
    return 0;
}

static const char *line_end(const char *s, const char *end)
{
    const char *n = memchr(s, '\n', (size_t)(end - s));
    return n ? n : end;
}

/* ---- RFC 3464 fields ---- */

typedef struct {
    char final[320], orig[320], action[24], status[16], diag[400];
    int64_t when;
} rcpt_t;

/* Value of "rfc822; user@example.com" or "<user@example.com>": the address. */
static void field_addr(const char *v, char *out, size_t size)
{
    const char *semi = strchr(v, ';');
    if (semi)
        v = semi + 1;
    while (*v == ' ' || *v == '\t' || *v == '<' || *v == '"')
        v++;
    size_t n = 0;
    while (v[n] && v[n] != '>' && v[n] != ' ' && v[n] != '\t' && v[n] != '"' && v[n] != '\r' &&
           v[n] != '\n')
        n++;
    if (n >= size)
        n = 0;
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool is_field(const char *line, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    *val = v;
    return true;
}

static bool rcpt_done(const rcpt_t *r)
{
    return r->final[0] || r->orig[0];
}

/* Parse the fields of the delivery-status text (unfolded line by line). */
static size_t dsn_fields(char *text, rcpt_t *r, size_t max, int64_t *arrival)
{
    size_t n = 0;
    rcpt_t cur = {0};
    char *save = text;
    /* unfold: a line starting with white space continues the previous one (RFC 5322 §2.2.3) */
    for (char *p = text; *p; p++)
        if (*p == '\r')
            *p = ' ';
    for (char *p = text; (p = strchr(p, '\n'));) {
        if (p[1] == ' ' || p[1] == '\t')
            *p = ' ';
        p++;
    }
    while (save && *save) {
        char *nl = strchr(save, '\n');
        if (nl)
            *nl = '\0';
        char *line = save;
        save = nl ? nl + 1 : NULL;
        const char *v;
        if (line[0] == '\0' || (line[0] == ' ' && line[strspn(line, " ")] == '\0')) {
            /* a blank line ends a recipient's block (RFC 3464 §2.1) */
            if (rcpt_done(&cur) && n < max)
                r[n++] = cur;
            memset(&cur, 0, sizeof cur);
        } else if (is_field(line, "Final-Recipient", &v)) {
            if (cur.final[0]) { /* no blank line between two recipients */
                if (n < max)
                    r[n++] = cur;
                memset(&cur, 0, sizeof cur);
            }
            field_addr(v, cur.final, sizeof cur.final);
        } else if (is_field(line, "Original-Recipient", &v)) {
            if (cur.orig[0]) {
                if (n < max)
                    r[n++] = cur;
                memset(&cur, 0, sizeof cur);
            }
            field_addr(v, cur.orig, sizeof cur.orig);
        } else if (is_field(line, "Action", &v)) {
            one_line(cur.action, sizeof cur.action, v, strlen(v));
            mp_str_lower(cur.action);
        } else if (is_field(line, "Status", &v)) {
            if (!find_status(v, v + strlen(v), cur.status, sizeof cur.status))
                cur.status[0] = '\0';
        } else if (is_field(line, "Diagnostic-Code", &v)) {
            const char *semi = strchr(v, ';');
            if (semi && semi - v < 16)
                v = semi + 1;
            one_line(cur.diag, sizeof cur.diag, v, strlen(v));
        } else if (is_field(line, "Last-Attempt-Date", &v)) {
            cur.when = learn_date_parse(v);
        } else if (is_field(line, "Arrival-Date", &v)) {
            *arrival = learn_date_parse(v);
        }
    }
    if (rcpt_done(&cur) && n < max)
        r[n++] = cur;
    return n;
}

/* ---- events ---- */

static void fill_status(learn_event_t *ev, const char *given)
{
    /* the Status field gives way to a code of the same class in the diagnostic text,
     * which is the remote server's own word (the reporting MTA often writes its own
     * generic or guessed Status) */
    char diag[16] = "";
    const char *r = ev->reason, *re = r + strlen(r);
    /* the code right after the server's reply code is the server's; one before it (as
     * in "5.1.0 - Unknown address error 550-'5.7.1 ...") is the reporter's gloss */
    const char *cp = NULL;
    (void)find_code(r, re, &cp);
    bool have = (cp && find_status(cp, re, diag, sizeof diag)) ||
                find_status(r, re, diag, sizeof diag);
    if (given && given[0] && (!have || diag[0] != given[0]))
        mp_strlcpy(ev->status, given, sizeof ev->status);
    else if (have)
        mp_strlcpy(ev->status, diag, sizeof ev->status);
    else
        ev->status[0] = '\0';
}

static bool usable_addr(const char *a)
{
    const char *at = strrchr(a, '@');
    return at && at != a && strchr(at, '.') && strlen(a) < 320;
}

/* The human text's line for addr, when the DSN gave no diagnostic (OpenSMTPD writes the
 * server's reply only there: "user@example.com: 550 5.1.1 <user@...>: User unknown"). */
static void diag_from_text(const mp_buf_t *text, const char *addr, char *out, size_t size)
{
    const char *s = text->data ? text->data : "", *end = s + text->len;
    size_t an = strlen(addr);
    for (const char *ls = s; ls < end;) {
        const char *le = line_end(ls, end);
        const char *q = ls;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '<'))
            q++;
        if ((size_t)(le - q) > an && strncasecmp(q, addr, an) == 0) {
            q += an;
            while (q < le && (*q == '>' || *q == ':' || *q == ' ' || *q == '.'))
                q++;
            if (find_code(q, le, NULL)) {
                one_line(out, size, q, (size_t)(le - q));
                return;
            }
        }
        ls = le < end ? le + 1 : end;
    }
}

static size_t from_dsn(mp_buf_t *dsn, const mp_buf_t *text, learn_event_t *ev, int64_t date)
{
    rcpt_t *r = calloc(LEARN_EVENTS_MAX, sizeof *r);
    if (!r)
        return 0;
    int64_t arrival = 0;
    size_t nr = dsn_fields(dsn->data, r, LEARN_EVENTS_MAX, &arrival);
    size_t n = 0;
    for (size_t i = 0; i < nr; i++) {
        const char *a = r[i].final[0] && usable_addr(r[i].final) ? r[i].final : r[i].orig;
        if (!usable_addr(a))
            continue;
        learn_event_t *e = &ev[n];
        memset(e, 0, sizeof *e);
        mp_strlcpy(e->addr, a, sizeof e->addr);
        mp_strlcpy(e->reason, r[i].diag, sizeof e->reason);
        if (!e->reason[0])
            diag_from_text(text, a, e->reason, sizeof e->reason);
        fill_status(e, r[i].status);
        e->when = r[i].when ? r[i].when : arrival ? arrival : date;
        const char *act = r[i].action;
        /* "deliverable" is not RFC 3464's, but some MTAs answer a NOTIFY=SUCCESS so */
        if (!strncmp(act, "delivered", 9) || !strncmp(act, "relayed", 7) ||
            !strncmp(act, "expanded", 8) || !strncmp(act, "deliverable", 11) ||
            e->status[0] == '2') {
            if (e->status[0] == '4' || e->status[0] == '5')
                learn_event_judge(e, e->status[0] == '5');
            else
                e->kind = LEARN_DELIVERED;
        } else if (!strncmp(act, "delayed", 7) || e->status[0] == '4')
            learn_event_judge(e, false);
        else
            learn_event_judge(e, true);
        n++;
    }
    free(r);
    return n;
}

/* Copy delivery-status fields found in the human text (non-MIME bounces that paste the
 * RFC 3464 fields, or multiparts whose boundary is broken) into p->dsn. */
static bool dsn_in_text(parts_t *p)
{
    const char *t = p->text.data ? p->text.data : "";
    const char *f = mp_str_icase_find(t, "\nFinal-Recipient:");
    if (!f)
        f = mp_str_icase_find(t, "\nOriginal-Recipient:");
    if (!f)
        return false;
    const char *b = f;
    /* include the per-message block before it (Arrival-Date) */
    const char *r = mp_str_icase_find(t, "\nReporting-MTA:");
    if (r && r < f)
        b = r;
    mp_buf_reset(&p->dsn);
    (void)mp_buf_add(&p->dsn, b + 1, strlen(b + 1));
    return true;
}

/* The next event of an SES notification for the address in v, or NULL (not an address,
 * or LEARN_EVENTS_MAX reached). */
static learn_event_t *ses_event(learn_event_t *ev, size_t *n, json_t *v, int64_t when)
{
    const char *a = json_string_value(v);
    if (!a || !usable_addr(a) || *n >= LEARN_EVENTS_MAX)
        return NULL;
    learn_event_t *x = &ev[(*n)++];
    memset(x, 0, sizeof *x);
    mp_strlcpy(x->addr, a, sizeof x->addr);
    x->when = when;
    return x;
}

/* Amazon SES notifications (sent by SNS as mail, or kept from its feed): a JSON object
 * with notificationType Bounce or Delivery and its recipients. */
static size_t from_ses_json(const mp_buf_t *text, learn_event_t *ev, int64_t date)
{
    const char *t = text->data ? text->data : "";
    const char *b = strstr(t, "{\"notificationType\"");
    if (!b)
        b = strstr(t, "{\"eventType\"");
    const char *e = strrchr(t, '}');
    if (!b || !e || e < b)
        return 0;
    /* mail folds long lines; JSON strings hold no raw line breaks, so drop them */
    size_t len = (size_t)(e - b + 1);
    char *flat = malloc(len + 1);
    if (!flat)
        return 0;
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        if (b[i] != '\n' && b[i] != '\r')
            flat[w++] = b[i];
    json_error_t jerr;
    json_t *root = json_loadb(flat, w, 0, &jerr);
    free(flat);
    if (!root)
        return 0;
    size_t n = 0;
    const char *type = json_string_value(json_object_get(root, "notificationType"));
    if (!type)
        type = json_string_value(json_object_get(root, "eventType"));
    json_t *bounce = json_object_get(root, "bounce"), *dlv = json_object_get(root, "delivery");
    int64_t when = date;
    if (type && strcmp(type, "Bounce") == 0 && bounce) {
        const char *btype = json_string_value(json_object_get(bounce, "bounceType"));
        const char *ts = json_string_value(json_object_get(bounce, "timestamp"));
        if (ts && learn_date_parse(ts))
            when = learn_date_parse(ts);
        json_t *list = json_object_get(bounce, "bouncedRecipients"), *r;
        size_t i;
        json_array_foreach(list, i, r) {
            learn_event_t *x = ses_event(ev, &n, json_object_get(r, "emailAddress"), when);
            if (!x)
                continue;
            const char *d = json_string_value(json_object_get(r, "diagnosticCode"));
            if (d) {
                const char *semi = strchr(d, ';');
                one_line(x->reason, sizeof x->reason, semi && semi - d < 16 ? semi + 1 : d,
                         strlen(d));
            }
            fill_status(x, json_string_value(json_object_get(r, "status")));
            learn_event_judge(x, !btype || strcmp(btype, "Transient") != 0);
        }
    } else if (type && strcmp(type, "Delivery") == 0 && dlv) {
        const char *ts = json_string_value(json_object_get(dlv, "timestamp"));
        if (ts && learn_date_parse(ts))
            when = learn_date_parse(ts);
        const char *resp = json_string_value(json_object_get(dlv, "smtpResponse"));
        json_t *list = json_object_get(dlv, "recipients"), *r;
        size_t i;
        json_array_foreach(list, i, r) {
            learn_event_t *x = ses_event(ev, &n, r, when);
            if (!x)
                continue;
            if (resp)
                one_line(x->reason, sizeof x->reason, resp, strlen(resp));
            fill_status(x, NULL);
            x->kind = LEARN_DELIVERED;
        }
    }
    json_decref(root);
    return n;
}

/* Lines that carry message ids or trace data, whose "@" is no recipient. */
static bool skip_line(const char *l, const char *end)
{
    static const char *const heads[] = {"message-id:", "in-reply-to:", "references:",
                                        "received:", "return-path:", "from:", "sender:",
                                        "reply-to:", "x-", "dkim", "list-", "content-id:"};
    while (l < end && (*l == ' ' || *l == '\t' || *l == '>'))
        l++;
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        size_t n = strlen(heads[i]);
        if ((size_t)(end - l) >= n && strncasecmp(l, heads[i], n) == 0)
            return true;
    }
    return false;
}

static bool same_addr(const char *a, size_t an, const char *list)
{
    if (!list)
        return false;
    /* list is a header value: search for the address as a whole word */
    const char *end = list + strlen(list);
    const char *b, *e;
    for (const char *s = list; next_addr(s, end, &b, &e); s = e)
        if ((size_t)(e - b) == an && strncasecmp(a, b, an) == 0)
            return true;
    return false;
}

static bool daemon_addr(const char *a, size_t n)
{
    /* authentication results quoted in the text: "smtp.mailfrom=user@example.com",
     * "header.from=...", "envelope-from=..." name the sender, never a recipient */
    const char *eq = memchr(a, '=', n);
    const char *at = memchr(a, '@', n);
    if (eq && at && eq < at) {
        bool word = true;
        for (const char *q = a; q < eq; q++)
            word &= mp_is_alpha((unsigned char)*q) || *q == '.' || *q == '-';
        if (word)
            return true;
    }
    static const char *const names[] = {"mailer-daemon@", "postmaster@", "mail-daemon@",
                                        "mailerdaemon@", "double-bounce@", "noreply@",
                                        "no-reply@", "bounce@", "bounces@"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t k = strlen(names[i]);
        if (n > k && strncasecmp(a, names[i], k) == 0)
            return true;
    }
    return false;
}

/* Where the text stops speaking of the failure and starts quoting the original. */
static const char *copy_start(const char *s, const char *end)
{
    static const char *const marks[] = {
        "------ This is a copy of the message", "--- Below this line is a copy",
        "----- Original message -----", "------ Original message ------",
        "-----Original Message-----", "--- The header of the original message",
        "----- The following addresses had permanent fatal errors", /* sendmail lists them */
        "Original message headers:", "----- Transcript of session follows",
        "Content-Type: message/rfc822", "Received: from", "------ The body of the message"};
    const char *first = end;
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
        const char *m = mp_str_icase_find(s, marks[i]);
        if (m && m < first && i != 6 && i != 8)
            first = m;
    }
    return first;
}

static bool looks_like_bounce(GMimeMessage *m, const char *text)
{
    const char *from = g_mime_object_get_header(GMIME_OBJECT(m), "From");
    const char *subj = g_mime_object_get_header(GMIME_OBJECT(m), "Subject");
    static const char *const froms[] = {"mailer-daemon", "postmaster", "mail delivery",
                                        "mail-daemon", "mailerdaemon", "mail administrator",
                                        "mail system", "bounce", "mdaemon"};
    static const char *const subjects[] = {
        "undeliver", "delivery status", "delivery fail", "failure notice", "returned mail",
        "mail delivery", "delivery notification", "not delivered", "could not be delivered",
        "rejected", "non remis", "unzustellbar", "nondeliverable", "delivery problem",
        "error", "warning", "bounce", "failed", "returned", "delayed"};
    for (size_t i = 0; from && i < sizeof froms / sizeof *froms; i++)
        if (mp_str_icase_find(from, froms[i]))
            return true;
    for (size_t i = 0; subj && i < sizeof subjects / sizeof *subjects; i++)
        if (mp_str_icase_find(subj, subjects[i]))
            return true;
    return text && (mp_str_icase_find(text, "could not be delivered") ||
                    mp_str_icase_find(text, "delivery has failed") ||
                    mp_str_icase_find(text, "permanent error") ||
                    mp_str_icase_find(text, "undeliverable"));
}

/* Does the line start with an address (after blanks, '<' or '"')? The usual shape of a
 * recipient in qmail, Exim, Sendmail and Postfix texts: "<user@example.com>: ...",
 * "  user@example.com", "user@example.com... User unknown". */
static bool line_starts_with(const char *ls, const char *b)
{
    while (ls < b && (*ls == ' ' || *ls == '\t' || *ls == '>')) /* '>': a quoted bounce */
        ls++;
    /* Sendmail's transcript: "554 <user@example.com>... Service unavailable" */
    if (b - ls > 4 && (*ls == '4' || *ls == '5') && mp_is_digit((unsigned char)ls[1]) &&
        mp_is_digit((unsigned char)ls[2]) && (ls[3] == ' ' || ls[3] == '-') && ls[4] == '<')
        ls += 4;
    /* a transcript's recipient command: "RCPT TO: <user@example.com>" */
    if (b - ls > 8 && strncasecmp(ls, "RCPT TO:", 8) == 0) {
        ls += 8;
        while (ls < b && *ls == ' ')
            ls++;
    }
    while (ls < b && (*ls == '<' || *ls == '"'))
        ls++;
    return ls == b;
}

typedef struct {
    char addr[320];
    const char *pos;
} cand_t;

static bool have_cand(const cand_t *c, size_t n, const char *a)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(c[i].addr, a) == 0)
            return true;
    return false;
}

/* One event for a recipient found at pos, its reply searched in [pos, until). */
static void text_event(learn_event_t *x, const char *addr, const char *s, const char *pos,
                       const char *until, const char *stop, bool temp, int64_t date)
{
    memset(x, 0, sizeof *x);
    mp_strlcpy(x->addr, addr, sizeof x->addr);
    x->when = date;
    const char *from = pos ? pos : s;
    char st[16] = "";
    const char *cp = NULL;
    int code = find_code(from, until, &cp);
    if (!find_status(from, until, st, sizeof st) && !code)
        (void)find_status(s, stop, st, sizeof st);
    if (!code && !st[0])
        code = find_code(s, stop, NULL);
    const char *rs = cp && cp < until ? cp : from;
    one_line(x->reason, sizeof x->reason, rs, (size_t)((cp && cp < until ? stop : until) - rs));
    mp_strlcpy(x->status, st, sizeof x->status);
    if (!st[0] && code)
        mp_strlcpy(x->status, code / 100 == 4 ? "4.0.0" : "5.0.0", sizeof x->status);
    temp = temp || x->status[0] == '4';
    learn_event_judge(x, !temp);
}

static size_t from_text(GMimeMessage *m, parts_t *p, learn_event_t *ev, int64_t date)
{
    const char *s = p->text.data ? p->text.data : "";
    const char *end = s + p->text.len;
    const char *stop = copy_start(s, end);
    const char *sender = g_mime_object_get_header(GMIME_OBJECT(m), "To");
    const char *bfrom = g_mime_object_get_header(GMIME_OBJECT(m), "From");
    const char *b = NULL, *e = NULL;
    cand_t *c = calloc(LEARN_EVENTS_MAX, sizeof *c);
    if (!c)
        return 0;
    size_t nc = 0;
    /* Exim says it in a header */
    const char *xf = g_mime_object_get_header(GMIME_OBJECT(m), "X-Failed-Recipients");
    for (const char *q = xf; q && nc < LEARN_EVENTS_MAX && next_addr(q, q + strlen(q), &b, &e);
         q = e)
        if ((size_t)(e - b) < sizeof c[0].addr) {
            memcpy(c[nc].addr, b, (size_t)(e - b));
            c[nc].addr[e - b] = '\0';
            if (!have_cand(c, nc, c[nc].addr))
                nc++;
        }
    /* positions in the text: every address that starts a line; else the first address */
    size_t nx = nc;
    for (int pass = 0; pass < 2 && nc == nx; pass++) {
        for (const char *ls = s; ls < stop && nc < LEARN_EVENTS_MAX;) {
            const char *le = line_end(ls, stop);
            for (const char *q = ls; !skip_line(ls, le) && next_addr(q, le, &b, &e); q = e) {
                size_t n = (size_t)(e - b);
                /* the bounce's To is the sender (us): not a recipient, unless a line
                 * starts with it (a message to oneself) */
                if (n >= sizeof c[0].addr || daemon_addr(b, n) ||
                    (same_addr(b, n, sender) && (pass == 1 || !line_starts_with(ls, b))) ||
                    same_addr(b, n, bfrom) || (pass == 0 && !line_starts_with(ls, b)))
                    continue;
                char a[320];
                memcpy(a, b, n);
                a[n] = '\0';
                size_t k = 0;
                while (k < nc && strcasecmp(c[k].addr, a) != 0)
                    k++;
                if (k < nc) { /* already named (X-Failed-Recipients): keep its place */
                    if (!c[k].pos)
                        c[k].pos = b;
                } else if (nx == 0 || pass == 0) {
                    /* a recipient's words start with its line: "554 <user@...>... why" */
                    mp_strlcpy(c[nc].addr, a, sizeof c[nc].addr);
                    c[nc++].pos = pass == 0 ? ls : b;
                }
                if (pass == 1)
                    break;
            }
            if (pass == 1 && nc > nx)
                break;
            ls = le < stop ? le + 1 : stop;
        }
    }
    if (!nc) {
        /* last resort: the To of the returned original */
        const char *o = p->orig.data ? p->orig.data : "";
        const char *oe = o + p->orig.len;
        for (const char *ls = o; ls < oe; ) {
            const char *le = line_end(ls, oe);
            if ((size_t)(le - ls) > 3 && strncasecmp(ls, "To:", 3) == 0 &&
                next_addr(ls, le, &b, &e) && (size_t)(e - b) < sizeof c[0].addr) {
                memcpy(c[0].addr, b, (size_t)(e - b));
                c[0].addr[e - b] = '\0';
                nc = 1;
                break;
            }
            ls = le < oe ? le + 1 : oe;
        }
    }
    bool temp = mp_str_icase_find(s, "will be retried") || mp_str_icase_find(s, "still trying") ||
                mp_str_icase_find(s, "delivery is delayed") ||
                mp_str_icase_find(s, "has been delayed") ||
                mp_str_icase_find(s, "not yet been delivered");
    size_t n = 0;
    for (size_t i = 0; i < nc; i++) {
        if (!usable_addr(c[i].addr))
            continue;
        /* this recipient's words run until the next recipient's position */
        const char *until = stop;
        for (size_t k = 0; k < nc; k++)
            if (c[k].pos && c[i].pos && c[k].pos > c[i].pos && c[k].pos < until)
                until = c[k].pos;
        text_event(&ev[n++], c[i].addr, s, c[i].pos, until, stop, temp, date);
    }
    free(c);
    return n;
}

mp_status_t learn_message_read(const char *data, size_t len, learn_event_t *ev, size_t *n)
{
    *n = 0;
    pthread_once(&gmime_once, gmime_start);
    /* line ends to LF: mbox, Maildir and .eml files come in all three conventions */
    char *copy = malloc(len + 1);
    if (!copy)
        return MP_ERR_NOMEM;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\r') {
            copy[w++] = '\n';
            if (i + 1 < len && data[i + 1] == '\n')
                i++;
        } else
            copy[w++] = data[i];
    }
    copy[w] = '\0';
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(copy, w);
    GMimeParser *ps = g_mime_parser_new_with_stream(s);
    GMimeMessage *m = g_mime_parser_construct_message(ps, NULL);
    parts_t p;
    mp_buf_init(&p.dsn, LEARN_TEXT_MAX);
    mp_buf_init(&p.text, LEARN_TEXT_MAX);
    mp_buf_init(&p.orig, LEARN_TEXT_MAX);
    if (!m)
        goto done;
    bool seen_orig = false;
    GMimeObject *body = g_mime_message_get_mime_part(m);
    if (body)
        walk(body, &p, &seen_orig);
    int64_t date = 0;
    GDateTime *dt = g_mime_message_get_date(m);
    if (dt)
        date = g_date_time_to_unix(dt);
    if (p.dsn.len)
        *n = from_dsn(&p.dsn, &p.text, ev, date);
    if (!*n && !looks_like_bounce(m, p.text.data) &&
        !(p.text.data && strstr(p.text.data, "\"notificationType\"")))
        goto done;
    if (!*n && p.text.len == 0) {
        /* broken MIME (a boundary the body never uses, as some MTAs write): read the
         * raw body as the text */
        const char *body_start = strstr(copy, "\n\n");
        if (body_start)
            (void)mp_buf_add(&p.text, body_start + 2,
                             strlen(body_start + 2) < LEARN_TEXT_MAX ? strlen(body_start + 2)
                                                                      : LEARN_TEXT_MAX);
    }
    if (!*n)
        *n = from_ses_json(&p.text, ev, date);
    if (!*n && dsn_in_text(&p)) /* delivery-status fields pasted into the text */
        *n = from_dsn(&p.dsn, &p.text, ev, date);
    /* an SES notification of another kind (Complaint...) is no bounce text to guess from */
    if (!*n && !(p.text.data && strstr(p.text.data, "\"notificationType\"")))
        *n = from_text(m, &p, ev, date);
done:
    mp_buf_cleanup(&p.dsn);
    mp_buf_cleanup(&p.text);
    mp_buf_cleanup(&p.orig);
    if (m)
        g_object_unref(m);
    g_object_unref(ps);
    g_object_unref(s);
    free(copy);
    return MP_OK;
}
