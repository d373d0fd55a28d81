/*
 * classify.c - read one SMTP reply: structural checks, the rule tables of rules.c, then
 * the basic code and the stage.
 *
 * Does: decide an outcome from (stage, code, enhanced code, text); explain which rule
 * decided and why. Does not: look at the MX host or provider (that is a later layer),
 * keep state, allocate, or log. All returned strings are static.
 *
 * Order (docs/internals/classify.md):
 *   1. the code itself: outside 200..599 is a protocol error; 2xx and 3xx are decided
 *      by the code alone (250/251 accepted, 252 anti-enumeration, 3xx never valid here);
 *   2. the enhanced code is dropped when its class differs from the code's first digit
 *      (Postfix smtp_chat.c does the same: "550 4.1.1" is a 550 without enhanced code);
 *   3. cl_exceptions[]: text proven to override the codes (DNSBL under 5.1.1, ...);
 *   4. at any stage but RCPT: the stage decides (never a mailbox verdict there);
 *   5. at RCPT: cl_enh_rules[], then cl_hints[], then the basic code (cl_default()).
 */
#include "classify/classify_int.h"

#include <string.h>

#include "util/str.h"

/* Only this much of a reply's text is read (smtp keeps 2 KiB; the rest never decides). */
#define CL_TEXT_SCAN_MAX 4096

/** A parsed enhanced status code; cls == 0 when absent or malformed. */
typedef struct {
    int cls, subj, det;
} cl_enh_t;

static const char *const cl_outcome_names[CL__COUNT] = {
    [CL_ACCEPTED] = "accepted",
    [CL_ANTI_ENUM] = "anti_enum",
    [CL_MAILBOX_ABSENT] = "mailbox_absent",
    [CL_MAILBOX_DISABLED] = "mailbox_disabled",
    [CL_MAILBOX_FULL] = "mailbox_full",
    [CL_DOMAIN_ABSENT] = "domain_absent",
    [CL_RELAY_DENIED] = "relay_denied",
    [CL_POLICY_BLOCKED] = "policy_blocked",
    [CL_SENDER_REJECTED] = "sender_rejected",
    [CL_RATE_LIMITED] = "rate_limited",
    [CL_GREYLISTED] = "greylisted",
    [CL_TEMPORARY] = "temporary",
    [CL_PERM_OTHER] = "perm_other",
    [CL_RECIPIENT_REFUSED] = "recipient_refused",
    [CL_TOO_MANY_RCPTS] = "too_many_rcpts",
    [CL_PROTOCOL_ERROR] = "protocol_error",
};

static const char *const cl_stage_names[] = {
    [CL_STAGE_BANNER] = "banner", [CL_STAGE_EHLO] = "ehlo", [CL_STAGE_STARTTLS] = "starttls",
    [CL_STAGE_MAIL] = "mail",     [CL_STAGE_RCPT] = "rcpt", [CL_STAGE_OTHER] = "other",
};

const char *classify_outcome_name(cl_outcome_t o)
{
    if ((unsigned)o >= CL__COUNT)
        return "invalid";
    return cl_outcome_names[o];
}

const char *classify_stage_name(cl_stage_t s)
{
    if ((unsigned)s > CL_STAGE_OTHER)
        return "invalid";
    return cl_stage_names[s];
}

bool classify_is_temporary(cl_outcome_t o)
{
    return o == CL_RATE_LIMITED || o == CL_GREYLISTED || o == CL_TEMPORARY ||
           o == CL_TOO_MANY_RCPTS;
}

size_t classify_rule_count(void)
{
    return cl_exceptions_len + cl_enh_rules_len + cl_hints_len;
}

const char *classify_rule_id(size_t i)
{
    if (i < cl_exceptions_len)
        return cl_exceptions[i].id;
    i -= cl_exceptions_len;
    if (i < cl_enh_rules_len)
        return cl_enh_rules[i].id;
    i -= cl_enh_rules_len;
    if (i < cl_hints_len)
        return cl_hints[i].id;
    return NULL;
}

/* Read 1..3 digits at *p into *out; advance *p. */
static bool cl_num3(const char **p, int *out)
{
    int v = 0, n = 0;
    while (n < 3 && mp_is_digit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || mp_is_digit((unsigned char)**p))
        return false;
    *out = v;
    return true;
}

/* Parse "c.sss.ddd" at s (RFC 3463 §2: class 2/4/5, subject and detail 1-3 digits);
 * *end is set to the first byte after it. Returns false when s does not start with one. */
static bool cl_enh_scan(const char *s, cl_enh_t *e, const char **end)
{
    const char *p = s;
    if (*p != '2' && *p != '4' && *p != '5')
        return false;
    e->cls = *p++ - '0';
    if (*p++ != '.' || !cl_num3(&p, &e->subj) || *p++ != '.' || !cl_num3(&p, &e->det))
        return false;
    *end = p;
    return true;
}

/* The whole of enh must be one enhanced code; anything else counts as absent. */
static cl_enh_t cl_enh_parse(const char *enh)
{
    cl_enh_t e = {0, 0, 0};
    const char *end;
    if (enh && cl_enh_scan(enh, &e, &end) && *end == '\0')
        return e;
    e.cls = 0;
    return e;
}

/* Match one pattern "5.4.1", "5.7.*", "*.2.2" at p (up to '|' or the end) against a
 * parsed code. */
static bool cl_enh_match1(const char *p, const cl_enh_t *e)
{
    int have[3] = {e->cls, e->subj, e->det};
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        int want = -1;
        if (*p == '*')
            p++;
        else if (!cl_num3(&p, &want))
            return false;
        if (want >= 0 && want != have[i])
            ok = false;
        if (i < 2 && *p++ != '.')
            return false;
    }
    return ok && (*p == '\0' || *p == '|');
}

/* Match '|'-separated patterns against a parsed code; an absent code never matches. */
static bool cl_enh_match(const char *pat, const cl_enh_t *e)
{
    if (e->cls == 0)
        return false;
    for (const char *p = pat;;) {
        if (cl_enh_match1(p, e))
            return true;
        const char *bar = strchr(p, '|');
        if (!bar)
            return false;
        p = bar + 1;
    }
}

/* A byte that may be part of an address a reply echoes (RFC 5322 atext, dots, UTF-8). */
static bool cl_addr_byte(unsigned char c)
{
    return mp_is_alnum(c) || c >= 0x80 || (c != 0 && strchr(".-_+=%!#$&'*/?^`{|}~", c));
}

/* Replace every address in buf (the run of address bytes around each '@') by a lone "@"
 * in place, so that an echoed address ("<spamtrap@marble.example>: User unknown") never
 * matches a rule's words while its surroundings still do ("(x@example.com:blocked)").
 * Returns the new length. */
static size_t cl_drop_addresses(char *buf, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        if (buf[r] != '@') {
            buf[w++] = buf[r++];
            continue;
        }
        while (w > 0 && cl_addr_byte((unsigned char)buf[w - 1]))
            w--; /* the local part was already copied: take it back */
        r++;
        while (r < n && (buf[r] == '@' || cl_addr_byte((unsigned char)buf[r])))
            r++;
        buf[w++] = '@';
    }
    buf[w] = '\0';
    return w;
}

/*
 * Normalise the reply text into buf (size CL_TEXT_SCAN_MAX): one leading space (so a
 * rule may ask for a word start, " rbl"), ASCII lower case, every run of white space (line
 * breaks included) as one space, an enhanced code repeated at the start of a continuation
 * line dropped, so that a phrase broken over lines of a multi-line reply ("...does not
 * exist. Please try\n5.1.1 double-checking...") still matches, and addresses replaced by
 * "@". Returns the length.
 */
static size_t cl_text_norm(const char *text, char *buf)
{
    size_t n = 0;
    bool space = true; /* the leading space is written below */
    bool line_start = true;
    buf[n++] = ' ';
    for (const char *p = text; *p && n < CL_TEXT_SCAN_MAX - 1;) {
        unsigned char c = (unsigned char)*p;
        if (line_start) {
            cl_enh_t skip;
            const char *end;
            line_start = false;
            if (cl_enh_scan(p, &skip, &end) && (*end == ' ' || *end == '\t')) {
                p = end;
                continue;
            }
        }
        if (mp_is_space(c)) {
            if (c == '\n')
                line_start = true;
            if (!space)
                buf[n++] = ' ';
            space = true;
            p++;
            continue;
        }
        buf[n++] = (char)mp_to_lower(c);
        space = false;
        p++;
    }
    buf[n] = '\0';
    return cl_drop_addresses(buf, n);
}

/* True when needle[0..nl) occurs in hay[0..hl). */
static bool cl_find(const char *hay, size_t hl, const char *needle, size_t nl)
{
    if (nl == 0)
        return true;
    if (nl > hl)
        return false;
    for (const char *p = hay, *last = hay + (hl - nl); p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return false;
        if (memcmp(p, needle, nl) == 0)
            return true;
    }
    return false;
}

/* True when one of the '|'-separated alternatives of alts occurs in the text. */
static bool cl_text_any(const char *alts, const char *text, size_t tl)
{
    const char *a = alts;
    for (;;) {
        const char *bar = strchr(a, '|');
        size_t al = bar ? (size_t)(bar - a) : strlen(a);
        if (al > 0 && cl_find(text, tl, a, al))
            return true;
        if (!bar)
            return false;
        a = bar + 1;
    }
}

static bool cl_rule_match(const cl_rule_t *r, cl_stage_t stage, int code, const cl_enh_t *e,
                          const char *text, size_t tl)
{
    unsigned cls = code / 100 == 4 ? CL_C4 : code / 100 == 5 ? CL_C5 : 0;
    if (!(r->stages & CL_S(stage)) || !(r->classes & cls))
        return false;
    if (r->code && r->code != code)
        return false;
    if (r->enh && !cl_enh_match(r->enh, e))
        return false;
    if (r->text && !cl_text_any(r->text, text, tl))
        return false;
    if (r->text2 && !cl_text_any(r->text2, text, tl))
        return false;
    return true;
}

static const cl_rule_t *cl_first_match(const cl_rule_t *rules, size_t n, cl_stage_t stage, int code,
                                       const cl_enh_t *e, const char *text, size_t tl)
{
    for (size_t i = 0; i < n; i++)
        if (cl_rule_match(&rules[i], stage, code, e, text, tl))
            return &rules[i];
    return NULL;
}

static cl_outcome_t cl_set(cl_result_t *out, cl_outcome_t o, const char *rule, const char *why)
{
    out->outcome = o;
    out->rule = rule;
    out->why = why;
    return o;
}

/* What a 4xx/5xx means when no rule decided, by stage then basic code. */
static cl_outcome_t cl_default(cl_stage_t stage, int code, const cl_enh_t *e, cl_result_t *out)
{
    if (code == 500 || code == 502 || code == 503 || code == 504 || code == 555)
        return cl_set(out, CL_PROTOCOL_ERROR, "code:50x",
                      "the server did not accept the command's syntax or sequence "
                      "(RFC 5321 §4.2.4)");
    if (code / 100 == 4)
        return cl_set(out, CL_TEMPORARY, "code:4xx",
                      "a temporary failure (RFC 5321 §4.2.1): try again later");
    if (code == 521 || code == 556)
        return cl_set(out, CL_DOMAIN_ABSENT, "code:521",
                      "the host or domain does not accept mail (RFC 7504)");

    switch (stage) {
    case CL_STAGE_BANNER:
    case CL_STAGE_EHLO:
        return cl_set(out, CL_POLICY_BLOCKED, "stage:connect",
                      "the server refused the session before any address was given");
    case CL_STAGE_MAIL:
        if ((e->cls == 5 && e->subj == 7) || code == 530 || code == 554)
            return cl_set(out, CL_POLICY_BLOCKED, "stage:mail-policy",
                          "the server refused our MAIL FROM for policy reasons");
        return cl_set(out, CL_SENDER_REJECTED, "stage:mail",
                      "the server refused our envelope sender (MAIL FROM)");
    case CL_STAGE_STARTTLS:
    case CL_STAGE_OTHER:
        return cl_set(out, CL_PERM_OTHER, "stage:other",
                      "a refusal of a command that says nothing about the mailbox");
    case CL_STAGE_RCPT: break;
    }

    switch (code) {
    case 550:
        /* RFC 5321 §4.2.3 gives 550 for "mailbox unavailable" AND for a refusal for
         * policy reasons: the bare code proves nothing about the mailbox. */
        return cl_set(out, CL_PERM_OTHER, "code:550",
                      "550 at RCPT with no wording that says why: mailbox unavailable or "
                      "refused by policy (RFC 5321 §4.2.3)");
    case 552:
        return cl_set(out, CL_MAILBOX_FULL, "code:552",
                      "552 at RCPT: exceeded storage allocation (RFC 5321 §4.2.3)");
    case 530:
    case 554:
        return cl_set(out, CL_POLICY_BLOCKED, "code:554",
                      "the server refused the transaction; this says nothing about the "
                      "mailbox");
    default:
        return cl_set(out, CL_PERM_OTHER, "code:5xx",
                      "a permanent refusal that says nothing reliable about the mailbox");
    }
}

cl_outcome_t classify_reply(cl_stage_t stage, int code, const char *enh, const char *text,
                            cl_result_t *out)
{
    cl_result_t scratch;
    char buf[CL_TEXT_SCAN_MAX];
    if (!out)
        out = &scratch;
    if ((unsigned)stage > CL_STAGE_OTHER)
        stage = CL_STAGE_OTHER;
    if (!text)
        text = "";

    if (code < 200 || code > 599)
        return cl_set(out, CL_PROTOCOL_ERROR, "code:invalid",
                      "not an SMTP reply code (RFC 5321 §4.2)");
    if (code / 100 == 3)
        return cl_set(out, CL_PROTOCOL_ERROR, "code:3xx",
                      "an intermediate reply where a final one was due (we never send DATA)");
    if (code / 100 == 2) {
        if (stage != CL_STAGE_RCPT)
            return cl_set(out, CL_ACCEPTED, "code:2xx", "the command was accepted");
        if (code == 250 || code == 251)
            return cl_set(out, CL_ACCEPTED, "code:250", "the server accepted the recipient");
        if (code == 252)
            return cl_set(out, CL_ANTI_ENUM, "code:252",
                          "252: the server will try to deliver but does not verify "
                          "recipients (RFC 5321 §3.5.3)");
        return cl_set(out, CL_PROTOCOL_ERROR, "code:2xx-rcpt",
                      "a 2xx reply RCPT TO never receives (RFC 5321 §4.3.2)");
    }

    cl_enh_t e = cl_enh_parse(enh);
    if (e.cls != code / 100)
        e.cls = 0; /* class mismatch: ignore it, as Postfix smtp_chat.c does */

    size_t tl = cl_text_norm(text, buf);
    const cl_rule_t *r = cl_first_match(cl_exceptions, cl_exceptions_len, stage, code, &e, buf, tl);
    if (!r && stage == CL_STAGE_RCPT) {
        r = cl_first_match(cl_enh_rules, cl_enh_rules_len, stage, code, &e, buf, tl);
        if (!r)
            r = cl_first_match(cl_hints, cl_hints_len, stage, code, &e, buf, tl);
    }
    if (r)
        return cl_set(out, r->outcome, r->id, r->why);
    return cl_default(stage, code, &e, out);
}
