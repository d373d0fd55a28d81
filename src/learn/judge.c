/*
 * judge.c - what a failure reported in a bounce means for the mailbox, and dates.
 *
 * A bounce's diagnostic is the remote server's SMTP reply, so it is read by classify,
 * exactly as the reply to our own RCPT would be: only "the mailbox (or its domain) does
 * not exist / is disabled" makes a hard bounce; a policy block, a full mailbox, a
 * timeout or a content rejection is a soft one, however permanent the sender's MTA
 * called it. Does not: look at anything but the event's own fields.
 */
#include "learn/learn.h"

#include <stdlib.h>
#include <string.h>

#include "classify/classify.h"
#include "util/str.h"

const char *learn_kind_name(learn_kind_t k)
{
    switch (k) {
    case LEARN_HARD: return "hard";
    case LEARN_SOFT: return "soft";
    case LEARN_DELIVERED: return "delivered";
    }
    return "?";
}

void learn_event_judge(learn_event_t *ev, bool permanent)
{
    const char *t = ev->reason;
    while (*t == ' ')
        t++;
    int code = 0;
    if ((t[0] == '4' || t[0] == '5') && mp_is_digit((unsigned char)t[1]) &&
        mp_is_digit((unsigned char)t[2]) && (t[3] == ' ' || t[3] == '-' || t[3] == '\0')) {
        code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
        t += t[3] ? 4 : 3;
    }
    while (*t == ' ')
        t++;
    /* "550 5.1.1 ...": the enhanced code right after the reply code, when none was given */
    size_t sl = 0;
    if (!ev->status[0] && (t[0] == '4' || t[0] == '5') && t[1] == '.') {
        sl = 2;
        while (sl < 12 && (mp_is_digit((unsigned char)t[sl]) || t[sl] == '.'))
            sl++;
        if (sl > 4 && sl < sizeof ev->status && t[sl - 1] != '.')
            mp_strlcpy(ev->status, t, sl + 1);
    }
    if (!code)
        code = ev->status[0] == '4' ? 450 : ev->status[0] == '5' ? 550 : permanent ? 550 : 450;
    const char *enh = ev->status[0] == (char)('0' + code / 100) ? ev->status : NULL;
    if (!ev->status[0]) /* no code in the bounce: the class, as Postfix writes it */
        mp_strlcpy(ev->status, code / 100 == 4 ? "4.0.0" : "5.0.0", sizeof ev->status);
    cl_result_t r;
    cl_outcome_t o = classify_reply(CL_STAGE_RCPT, code, enh, t, &r);
    mp_strlcpy(ev->outcome, classify_outcome_name(o), sizeof ev->outcome);
    /* A bounce does not say which command the reply answered, and a bare 550 is only
     * "mailbox unavailable" at RCPT: hard needs the enhanced code or the text to say
     * so (classify's rule is not the basic code alone), and no sign that the refusal
     * came after DATA, where it is about the message (content, spam, size) */
    bool by_code_only = r.rule && strncmp(r.rule, "code:", 5) == 0;
    bool after_data = mp_str_icase_find(ev->reason, "end of DATA") ||
                      mp_str_icase_find(ev->reason, "after DATA") ||
                      mp_str_icase_find(ev->reason, "reply to DATA") ||
                      mp_str_icase_find(ev->reason, "end of data");
    /* and the status reported must be a permanent one too: "550 2.2.1" or "554 4.4.7"
     * (an MTA contradicting itself, RFC 3463 §2) is no proof */
    ev->kind = permanent && code / 100 == 5 && ev->status[0] == '5' && !by_code_only &&
                       !after_data &&
                       (o == CL_MAILBOX_ABSENT || o == CL_MAILBOX_DISABLED ||
                        o == CL_DOMAIN_ABSENT)
                   ? LEARN_HARD
                   : LEARN_SOFT;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *v)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mp_is_digit((unsigned char)s[i]))
            return false;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    *v = x;
    return true;
}

int64_t learn_date_parse(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '"')
        s++;
    unsigned y, mo, d, h = 0, mi = 0, se = 0;
    size_t n = strlen(s);
    if (n >= 10 && s[4] == '-' && s[7] == '-' && digits(s, 4, &y) && digits(s + 5, 2, &mo) &&
        digits(s + 8, 2, &d)) {
        /* RFC 3339 / ISO 8601 "2026-11-30T10:20:30Z", "2026-11-30 10:20" */
        if (n >= 16 && (s[10] == 'T' || s[10] == ' ') && digits(s + 11, 2, &h) &&
            s[13] == ':' && digits(s + 14, 2, &mi) && n >= 19 && s[16] == ':')
            (void)digits(s + 17, 2, &se);
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
            return 0;
        int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
        /* a numeric offset after the time: "+02:00" / "-0500" */
        const char *z = s + 19;
        while (n > 19 && *z == '.' ) {
            z++;
            while (mp_is_digit((unsigned char)*z))
                z++;
        }
        if (n > 19 && (*z == '+' || *z == '-')) {
            unsigned oh, om = 0;
            if (digits(z + 1, 2, &oh)) {
                const char *m2 = z + 3 + (z[3] == ':');
                (void)digits(m2, 2, &om);
                int64_t off = (int64_t)(oh * 3600 + om * 60);
                t += *z == '+' ? -off : off;
            }
        }
        return t;
    }
    uint64_t secs;
    if (n >= 9 && n <= 13 && mp_parse_uint(s, 100000000, 99999999999999ull, &secs))
        return (int64_t)(secs > 9999999999ull ? secs / 1000 : secs); /* seconds or ms */
    /* RFC 5322 "Mon, 30 Nov 2026 10:20:30 +0000" */
    const char *comma = strchr(s, ',');
    const char *p = comma ? comma + 1 : s;
    while (*p == ' ')
        p++;
    static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};
    char *e;
    long dd = strtol(p, &e, 10);
    if (e == p || dd < 1 || dd > 31)
        return 0;
    while (*e == ' ' || *e == '-')
        e++;
    int mm = -1;
    for (int i = 0; i < 12; i++)
        if (strncasecmp(e, mon[i], 3) == 0)
            mm = i;
    if (mm < 0)
        return 0;
    e += 3;
    while (*e == ' ' || *e == '-')
        e++;
    char *e2;
    long yy = strtol(e, &e2, 10);
    if (e2 == e)
        return 0;
    if (yy < 100)
        yy += yy < 50 ? 2000 : 1900;
    unsigned hh = 0, mn = 0, ss = 0;
    while (*e2 == ' ')
        e2++;
    if (digits(e2, 2, &hh) && e2[2] == ':' && digits(e2 + 3, 2, &mn)) {
        e2 += 5;
        if (*e2 == ':' && digits(e2 + 1, 2, &ss))
            e2 += 3;
    }
    if (hh > 23 || mn > 59 || ss > 60)
        return 0;
    int64_t t = days_from_civil(yy, (unsigned)mm + 1, (unsigned)dd) * 86400 + hh * 3600 +
                mn * 60 + ss;
    while (*e2 == ' ')
        e2++;
    unsigned oz;
    if ((*e2 == '+' || *e2 == '-') && digits(e2 + 1, 4, &oz)) {
        int64_t off = (int64_t)((oz / 100) * 3600 + (oz % 100) * 60);
        t += *e2 == '+' ? -off : off;
    }
    return t;
}
