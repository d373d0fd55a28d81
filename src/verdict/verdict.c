/*
 * verdict.c - reasons, verdicts, score; see verdict.h.
 *
 * The reason is chosen by the engine from the facts; the verdict always follows from the
 * reason through one table, so the two can never disagree.
 */
#include "verdict/verdict.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

static const struct {
    const char *name;
    vd_verdict_t verdict;
    int score;
    const char *text;
} reasons[VR__COUNT] = {
    [VR_ACCEPTED] = {"accepted", VD_DELIVERABLE, 95,
                     "The mail server accepted this recipient."},
    [VR_ALLOW_LISTED] = {"allow_listed", VD_DELIVERABLE, 90,
                         "The address or its domain is on your allow list."},
    [VR_INVALID_SYNTAX] = {"invalid_syntax", VD_UNDELIVERABLE, 0,
                           "The address is not valid as SMTP accepts it."},
    [VR_NO_SUCH_DOMAIN] = {"no_such_domain", VD_UNDELIVERABLE, 0,
                           "The domain does not exist (NXDOMAIN)."},
    [VR_NO_MAIL_SERVER] = {"no_mail_server", VD_UNDELIVERABLE, 2,
                           "The domain has no usable mail server (null MX, or no MX "
                           "host with an address)."},
    [VR_UNROUTABLE_MX] = {"unroutable_mx", VD_UNDELIVERABLE, 3,
                          "Every mail server of the domain is on a loopback, private, "
                          "link-local or multicast address that mail from the Internet "
                          "cannot reach."},
    [VR_MAILBOX_ABSENT] = {"mailbox_absent", VD_UNDELIVERABLE, 1,
                           "The mail server says this mailbox does not exist."},
    [VR_MAILBOX_DISABLED] = {"mailbox_disabled", VD_UNDELIVERABLE, 2,
                             "The mailbox exists but is disabled."},
    [VR_RECIPIENT_REFUSED] = {"recipient_refused", VD_UNDELIVERABLE, 3,
                              "The mail server refused this recipient while it accepted "
                              "postmaster@ (or another recipient) in the same "
                              "transaction: the refusal is about this address."},
    [VR_SMTPUTF8_UNSUPPORTED] = {"smtputf8_unsupported", VD_UNDELIVERABLE, 3,
                                 "The address has a UTF-8 local part and the domain's mail "
                                 "server does not offer SMTPUTF8 (RFC 6531), so it cannot "
                                 "receive mail for it."},
    [VR_DOMAIN_NOT_SERVED] = {"domain_not_served", VD_UNDELIVERABLE, 3,
                              "The domain's mail server says it does not take mail "
                              "for this domain."},
    [VR_DENY_LISTED] = {"deny_listed", VD_UNDELIVERABLE, 0,
                        "The address or its domain is on your deny list."},
    [VR_ACCEPT_ALL] = {"accept_all", VD_RISKY, 50,
                       "The server accepts any recipient, so its yes proves nothing."},
    [VR_ANTI_ENUMERATION] = {"anti_enumeration", VD_RISKY, 50,
                             "The server will take mail but will not say whether the "
                             "mailbox exists (252)."},
    [VR_MAILBOX_FULL] = {"mailbox_full", VD_RISKY, 30,
                         "The mailbox exists but is full."},
    [VR_DISPOSABLE] = {"disposable", VD_RISKY, 20,
                       "The domain belongs to a disposable-mail provider."},
    [VR_ROLE_ACCOUNT] = {"role_account", VD_RISKY, 55,
                         "The address is a role account (shared by a team)."},
    [VR_GREYLISTED] = {"greylisted", VD_UNKNOWN, 45,
                       "The server greylisted us and still refused after retrying "
                       "for the whole greylist wait."},
    [VR_TEMPORARY_FAILURE] = {"temporary_failure", VD_UNKNOWN, 40,
                              "The server refused temporarily; the mailbox was not "
                              "judged."},
    [VR_POLICY_BLOCKED] = {"policy_blocked", VD_UNKNOWN, 40,
                           "The server refused us (our IP address, name or "
                           "reputation), which says nothing about the mailbox."},
    [VR_SENDER_REJECTED] = {"sender_rejected", VD_UNKNOWN, 40,
                            "The server refused our sender address (MAIL FROM), "
                            "which says nothing about the recipient."},
    [VR_RATE_LIMITED] = {"rate_limited", VD_UNKNOWN, 40,
                         "The server asked us to slow down (421 or too many "
                         "connections)."},
    [VR_TOO_MANY_RECIPIENTS] = {"too_many_recipients", VD_UNKNOWN, 40,
                                "The server refused more recipients in this transaction "
                                "or from this sender (452 4.5.3); the mailbox was not "
                                "judged."},
    [VR_CONNECT_FAILED] = {"connect_failed", VD_UNKNOWN, 35,
                           "No mail server of the domain accepted a connection on "
                           "port 25."},
    [VR_TIMEOUT] = {"timeout", VD_UNKNOWN, 35,
                    "The mail server did not answer in time."},
    [VR_TLS_FAILED] = {"tls_failed", VD_UNKNOWN, 35,
                       "The server demanded TLS and the TLS handshake failed."},
    [VR_PROTOCOL_ERROR] = {"protocol_error", VD_UNKNOWN, 35,
                           "The server's answers were not valid SMTP."},
    [VR_DNS_FAILURE] = {"dns_failure", VD_UNKNOWN, 35,
                        "DNS could not tell where mail for the domain goes "
                        "(SERVFAIL, timeout or lame delegation)."},
    [VR_NOT_CHECKED] = {"not_checked", VD_UNKNOWN, 40,
                        "The mailbox was not checked over SMTP."},
};

static const char *const verdict_names[] = {"deliverable", "undeliverable", "risky",
                                            "unknown"};
static const char *const smtp_names[] = {"not_checked", "accepted", "rejected",
                                         "unavailable"};

vd_result_t *vd_result_new(const char *email)
{
    vd_result_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->email = strdup(email ? email : "");
    if (!r->email) {
        free(r);
        return NULL;
    }
    r->verdict = VD_UNKNOWN;
    r->reason = VR_NOT_CHECKED;
    r->catch_all = -1;
    r->smtp_result = VS_NOT_CHECKED;
    return r;
}

void vd_result_free(vd_result_t *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->nlines; i++)
        free(r->lines[i].line);
    free(r->lines);
    free(r->mx);
    free(r->email);
    free(r);
}

const char *vd_verdict_name(vd_verdict_t v)
{
    return (unsigned)v < 4 ? verdict_names[v] : "unknown";
}

const char *vd_reason_name(vd_reason_t r)
{
    return (unsigned)r < VR__COUNT ? reasons[r].name : "not_checked";
}

vd_verdict_t vd_reason_verdict(vd_reason_t r)
{
    return (unsigned)r < VR__COUNT ? reasons[r].verdict : VD_UNKNOWN;
}

const char *vd_reason_text(vd_reason_t r)
{
    return (unsigned)r < VR__COUNT ? reasons[r].text : "";
}

const char *vd_smtp_result_name(vd_smtp_result_t s)
{
    return (unsigned)s < 4 ? smtp_names[s] : "not_checked";
}

void vd_set(vd_result_t *r, vd_reason_t reason, const char *fmt, ...)
{
    r->reason = reason;
    r->verdict = vd_reason_verdict(reason);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->detail, sizeof r->detail, fmt, ap);
        va_end(ap);
    } else {
        mp_strlcpy(r->detail, vd_reason_text(reason), sizeof r->detail);
    }
}

vd_reason_t vd_reason_from_outcome(cl_outcome_t o)
{
    switch (o) {
    case CL_ACCEPTED: return VR_ACCEPTED;
    case CL_ANTI_ENUM: return VR_ANTI_ENUMERATION;
    case CL_MAILBOX_ABSENT: return VR_MAILBOX_ABSENT;
    case CL_MAILBOX_DISABLED: return VR_MAILBOX_DISABLED;
    case CL_MAILBOX_FULL: return VR_MAILBOX_FULL;
    case CL_DOMAIN_ABSENT:
    case CL_RELAY_DENIED: return VR_DOMAIN_NOT_SERVED;
    case CL_POLICY_BLOCKED: return VR_POLICY_BLOCKED;
    case CL_SENDER_REJECTED: return VR_SENDER_REJECTED;
    case CL_RATE_LIMITED: return VR_RATE_LIMITED;
    case CL_GREYLISTED: return VR_GREYLISTED;
    case CL_TEMPORARY: return VR_TEMPORARY_FAILURE;
    /* A 5xx that says nothing reliable about the mailbox must never become
     * undeliverable: it is read as a refusal of us. */
    case CL_PERM_OTHER: return VR_POLICY_BLOCKED;
    case CL_RECIPIENT_REFUSED: return VR_RECIPIENT_REFUSED;
    case CL_TOO_MANY_RCPTS: return VR_TOO_MANY_RECIPIENTS;
    case CL_PROTOCOL_ERROR: return VR_PROTOCOL_ERROR;
    case CL__COUNT: break;
    }
    return VR_NOT_CHECKED;
}

vd_smtp_result_t vd_smtp_result_from_outcome(cl_outcome_t o)
{
    switch (o) {
    case CL_ACCEPTED: return VS_ACCEPTED;
    case CL_MAILBOX_ABSENT:
    case CL_MAILBOX_DISABLED:
    case CL_DOMAIN_ABSENT:
    case CL_RELAY_DENIED:
    case CL_RECIPIENT_REFUSED: return VS_REJECTED;
    case CL_ANTI_ENUM:
    case CL_MAILBOX_FULL:
    case CL_POLICY_BLOCKED:
    case CL_SENDER_REJECTED:
    case CL_RATE_LIMITED:
    case CL_GREYLISTED:
    case CL_TEMPORARY:
    case CL_PERM_OTHER:
    case CL_TOO_MANY_RCPTS:
    case CL_PROTOCOL_ERROR: return VS_UNAVAILABLE;
    case CL__COUNT: break;
    }
    return VS_NOT_CHECKED;
}

void vd_set_reply(vd_result_t *r, cl_stage_t stage, int code, const char *enh,
                  const char *text, const cl_result_t *cl)
{
    r->has_reply = true;
    r->code = code;
    mp_strlcpy(r->enhanced, enh ? enh : "", sizeof r->enhanced);
    mp_strlcpy(r->message, text ? text : "", sizeof r->message);
    r->stage = classify_stage_name(stage);
    r->rule = cl ? cl->rule : NULL;
}

void vd_add_line(vd_result_t *r, const char *ip, char dir, uint64_t t_ms, const char *line)
{
    if (r->nlines == r->cap_lines) {
        unsigned cap = r->cap_lines ? r->cap_lines * 2 : 32;
        if (cap > 4096)
            return; /* bounded: a hostile server cannot grow the transcript forever */
        vd_line_t *nl = realloc(r->lines, cap * sizeof *nl);
        if (!nl)
            return;
        r->lines = nl;
        r->cap_lines = cap;
    }
    vd_line_t *l = &r->lines[r->nlines];
    l->line = strdup(line);
    if (!l->line)
        return;
    mp_strlcpy(l->ip, ip ? ip : "", sizeof l->ip);
    l->dir = dir;
    l->t_ms = t_ms;
    r->nlines++;
}

static void factor(vd_factor_t *f, unsigned *nf, const char *name, int points)
{
    if (f && *nf < VD_FACTORS_MAX)
        f[(*nf)++] = (vd_factor_t){name, points};
}

int vd_score_explain(const vd_result_t *r, vd_factor_t *f, unsigned *nf)
{
    unsigned dummy = 0;
    if (!nf)
        nf = &dummy;
    *nf = 0;
    int s = (unsigned)r->reason < VR__COUNT ? reasons[r->reason].score : 40;
    factor(f, nf, vd_reason_name(r->reason), s);
    if (r->verdict == VD_UNDELIVERABLE)
        return s; /* nothing moves a proven failure */
    /* Signals only ever lower the score, each by a fixed documented amount, and only
     * when the signal is not already the reason (its base score then says it). */
    int adj = 0;
#define ADJ(cond, name, pts)                                                                   \
    do {                                                                                       \
        if (cond) {                                                                            \
            adj += (pts);                                                                      \
            factor(f, nf, name, pts);                                                          \
        }                                                                                      \
    } while (0)
    if (r->intel_done) {
        ADJ(r->intel.disposable && r->reason != VR_DISPOSABLE, "disposable", -30);
        ADJ(r->intel.has_suggestion, "likely_typo", -25);
        ADJ(r->intel.role && r->reason != VR_ROLE_ACCOUNT, "role", -10);
        ADJ(r->intel.gibberish, "gibberish", -10);
        ADJ(r->intel.free, "free_provider", -5);
    }
    ADJ(r->catch_all == 1 && r->reason != VR_ACCEPT_ALL, "catch_all", -20);
    ADJ(r->reason == VR_ACCEPTED && r->catch_all < 0, "catch_all_untested", -15);
    ADJ(r->reason == VR_ACCEPTED && r->gateway, "security_gateway", -5);
#undef ADJ
    s += adj;
    if (s < 0)
        s = 0;
    if (s > 100)
        s = 100;
    return s;
}

int vd_score(const vd_result_t *r)
{
    return vd_score_explain(r, NULL, NULL);
}

void vd_finish(vd_result_t *r, const vd_opts_t *o)
{
    if (r->intel_done && r->reason != VR_ALLOW_LISTED && r->reason != VR_DENY_LISTED) {
        bool undeliverable = r->verdict == VD_UNDELIVERABLE;
        /* A disposable domain is risky whatever its server said, unless the server
         * proved the address cannot receive mail. */
        if (r->intel.disposable && !undeliverable)
            vd_set(r, VR_DISPOSABLE, "%s", vd_reason_text(VR_DISPOSABLE));
        else if (o && o->role_risky && r->intel.role && r->verdict == VD_DELIVERABLE)
            vd_set(r, VR_ROLE_ACCOUNT, "%s", vd_reason_text(VR_ROLE_ACCOUNT));
    }
    r->score = vd_score_explain(r, r->factors, &r->nfactors);
}
