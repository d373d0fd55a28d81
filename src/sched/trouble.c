/*
 * trouble.c - what an SMTP answer means for one check, in context (see trouble.h).
 *
 * Does: read each reply once (classify), then apply what the reply alone cannot say:
 * the stage (nothing before RCPT is about the mailbox; a 5xx to MAIL FROM is about our
 * sender), the controls of the same transaction (postmaster@ accepted or refused, other
 * recipients accepted), SMTPUTF8, "too many recipients", the catch-all and provider
 * facts. Does not: keep time, count retries, open sessions or touch a vd_result_t; the
 * engine does that with the trouble_t it receives back.
 *
 * The controls only ever speak for a refusal whose words say nothing known
 * (CL_PERM_OTHER): a wording that settles the meaning ("user unknown", "blocked using
 * zen.spamhaus.org") is not overridden. RFC 5321 §4.5.1 requires every domain to accept
 * postmaster@; a server that accepts it and refuses this address in the same transaction
 * refused this recipient, not us; one that refuses postmaster@ too refused us (or has no
 * postmaster, which proves nothing either).
 */
#include "sched/trouble.h"

#include <stdio.h>
#include <string.h>

#include "util/str.h"

static const char *const trouble_next_names[] = {
    [TR_FINISH] = "finish",           [TR_ACCEPTED] = "accepted",
    [TR_ALONE] = "alone",             [TR_THROTTLED] = "throttled",
    [TR_RETRY_ROUND] = "retry_round", [TR_NEXT_TARGET] = "next_target",
    [TR_IN_CLEAR] = "in_clear",
};

int trouble_rank(vd_reason_t r)
{
    switch (r) {
    case VR_CONNECT_FAILED: return 1;
    case VR_TIMEOUT: return 2;
    case VR_TLS_FAILED: return 3;
    case VR_PROTOCOL_ERROR: return 4;
    case VR_TEMPORARY_FAILURE:
    case VR_GREYLISTED: return 5;
    case VR_RATE_LIMITED:
    case VR_TOO_MANY_RECIPIENTS: return 6;
    case VR_POLICY_BLOCKED:
    case VR_SENDER_REJECTED: return 7;
    default: return 8;
    }
}

const char *trouble_next_name(trouble_next_t n)
{
    return (unsigned)n <= TR_IN_CLEAR ? trouble_next_names[n] : "invalid";
}

cl_stage_t trouble_stage_of(smtp_state_t st)
{
    switch (st) {
    case SMTP_ST_CONNECT:
    case SMTP_ST_BANNER: return CL_STAGE_BANNER;
    case SMTP_ST_EHLO:
    case SMTP_ST_HELO: return CL_STAGE_EHLO;
    case SMTP_ST_STARTTLS:
    case SMTP_ST_TLS_HANDSHAKE: return CL_STAGE_STARTTLS;
    case SMTP_ST_MAIL: return CL_STAGE_MAIL;
    case SMTP_ST_RCPT: return CL_STAGE_RCPT;
    default: return CL_STAGE_OTHER;
    }
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Read the reply (or take its reading) and fill the parts every path shares. */
static cl_outcome_t trouble_read(const smtp_reply_t *rp, const cl_result_t *cl, cl_stage_t stage,
                                 trouble_t *out)
{
    memset(out, 0, sizeof *out);
    out->stage = stage;
    if (cl)
        out->cl = *cl;
    else
        classify_reply(stage, rp->code, rp->enh, rp->text, &out->cl);
    cl_outcome_t o = out->cl.outcome;
    out->reason = vd_reason_from_outcome(o);
    out->smtp_result = vd_smtp_result_from_outcome(o);
    out->next = TR_FINISH;
    return o;
}

/* A refusal whose words say nothing known, read against the controls. */
static void trouble_controls(const smtp_reply_t *rp, const trouble_ctx_t *c, trouble_t *out)
{
    const char *host = c->host ? c->host : "the server";
    if (c->postmaster == TR_CTL_REFUSED) {
        out->controlled = true;
        out->reason = VR_POLICY_BLOCKED;
        out->smtp_result = VS_UNAVAILABLE;
        snprintf(out->why, sizeof out->why,
                 "%s refused this address (%d%s%s) and postmaster@ too (%d%s%s), which "
                 "every domain must accept (RFC 5321 §4.5.1): it refuses us, not this "
                 "mailbox", host, rp->code, rp->enh[0] ? " " : "", rp->enh, c->postmaster_code,
                 nz(c->postmaster_enh)[0] ? " " : "", nz(c->postmaster_enh));
        return;
    }
    if (c->postmaster == TR_CTL_ACCEPTED || c->other_accepted) {
        out->controlled = true;
        out->reason = VR_RECIPIENT_REFUSED;
        out->smtp_result = VS_REJECTED;
        snprintf(out->why, sizeof out->why,
                 "%s accepted %s in the same transaction and refused this address (%d%s%s): "
                 "the refusal is about this recipient, though its words do not say the "
                 "mailbox is absent", host,
                 c->postmaster == TR_CTL_ACCEPTED ? "postmaster@" : "another recipient",
                 rp->code, rp->enh[0] ? " " : "", rp->enh);
        return;
    }
    snprintf(out->why, sizeof out->why,
             "%s refused this address (%d%s%s) in words that do not say why, and no control "
             "(postmaster@, another recipient) answered in the same transaction: %s", host,
             rp->code, rp->enh[0] ? " " : "", rp->enh, nz(out->cl.why));
}

void trouble_read_session(const smtp_result_t *sr, cl_result_t *cls, size_t n)
{
    memset(cls, 0, n * sizeof *cls);
    for (size_t i = 0; i < sr->nrcpt && i < n; i++) {
        const smtp_reply_t *rp = &sr->rcpt[i].reply;
        if (sr->rcpt[i].has_reply)
            classify_reply(CL_STAGE_RCPT, rp->code, rp->enh, rp->text, &cls[i]);
    }
}

void trouble_rcpt(const smtp_reply_t *rp, const cl_result_t *cl, const trouble_ctx_t *c,
                  trouble_t *out)
{
    cl_outcome_t o = trouble_read(rp, cl, CL_STAGE_RCPT, out);
    const char *host = nz(c->host), *ip = nz(c->ip);

    if (c->local_utf8 && !c->smtputf8_offered && !classify_is_temporary(o)) {
        /* RFC 6531 §3.2: a UTF-8 mailbox cannot be reached through a server that does
         * not offer SMTPUTF8, whatever it answered. */
        out->reason = VR_SMTPUTF8_UNSUPPORTED;
        out->smtp_result = VS_UNAVAILABLE;
        snprintf(out->why, sizeof out->why,
                 "%s does not offer SMTPUTF8, so it cannot take mail for this UTF-8 "
                 "mailbox (RFC 6531 §3.2); it answered %d", host, rp->code);
        return;
    }
    if (o == CL_TOO_MANY_RCPTS || smtp_reply_too_many_rcpts(rp)) {
        out->reason = VR_TOO_MANY_RECIPIENTS;
        out->smtp_result = VS_UNAVAILABLE;
        if (!c->solo) {
            /* The session already tried this recipient in later transactions as far as
             * the server let it (smtp/session.c). Ask again in a session of our own (not
             * a verdict, not a retry round). */
            out->next = TR_ALONE;
            snprintf(out->why, sizeof out->why, "%s [%s] took no more recipients in the "
                     "session; asked again alone", host, ip);
            return;
        }
        /* Even alone: the limit is on us (per sender or per hour), retried like a 421. */
        out->next = TR_THROTTLED;
        snprintf(out->why, sizeof out->why, "%s [%s] refused even a lone recipient as "
                 "\"too many recipients\": %s", host, ip, nz(out->cl.why));
        return;
    }
    if (o == CL_RATE_LIMITED) {
        out->next = TR_THROTTLED;
        snprintf(out->why, sizeof out->why, "%s [%s] asked us to slow down at RCPT", host, ip);
        return;
    }
    if (classify_is_temporary(o)) {
        /* Greylisting and other 4xx at RCPT: this server knows the mailbox's fate; ask
         * it again later rather than its backups. */
        out->next = TR_RETRY_ROUND;
        snprintf(out->why, sizeof out->why, "%s [%s] still refused temporarily at RCPT "
                 "after %u attempt(s) over %llu s: %s", host, ip, c->attempts, c->elapsed_s,
                 nz(out->cl.why));
        return;
    }
    mp_strlcpy(out->why, nz(out->cl.why), sizeof out->why);
    if (o == CL_ACCEPTED) {
        out->next = TR_ACCEPTED;
        return;
    }
    if (o == CL_PERM_OTHER)
        trouble_controls(rp, c, out);
}

void trouble_early(const smtp_reply_t *rp, cl_stage_t stage, const trouble_ctx_t *c,
                   trouble_t *out)
{
    cl_outcome_t o = trouble_read(rp, NULL, stage, out);
    vd_reason_t r = out->reason;
    if (stage == CL_STAGE_MAIL && rp->code >= 500 && o != CL_POLICY_BLOCKED &&
        o != CL_RATE_LIMITED)
        r = VR_SENDER_REJECTED; /* a 5xx to MAIL FROM is about our sender */
    if (rp->code == 530 && c->tls_failed_seen)
        r = VR_TLS_FAILED;      /* it demands TLS and TLS did not work with it */
    if (r == VR_MAILBOX_ABSENT || r == VR_MAILBOX_DISABLED || r == VR_ACCEPTED ||
        r == VR_ANTI_ENUMERATION || r == VR_MAILBOX_FULL || r == VR_RECIPIENT_REFUSED ||
        r == VR_TOO_MANY_RECIPIENTS)
        r = stage == CL_STAGE_MAIL ? VR_SENDER_REJECTED : VR_POLICY_BLOCKED;
    out->reason = r;
    out->smtp_result = VS_UNAVAILABLE;
    snprintf(out->why, sizeof out->why, "%s [%s] answered %s with %d%s%s: %s", nz(c->host),
             nz(c->ip), classify_stage_name(stage), rp->code, rp->enh[0] ? " " : "", rp->enh,
             nz(out->cl.why));
    /* 4xx before RCPT may be greylisting at MAIL or EHLO: retried like one. A 421 (or
     * another "slow down") is not: it moves on, and is reported as rate_limited. */
    out->temporary = (o == CL_GREYLISTED || o == CL_TEMPORARY) && rp->code != 421;
    if (rp->code == 421)
        out->next = TR_THROTTLED;
    else if (r == VR_SENDER_REJECTED || (stage == CL_STAGE_MAIL && r == VR_POLICY_BLOCKED))
        out->next = TR_FINISH; /* every MX of the domain judges our sender the same way */
    else
        out->next = TR_NEXT_TARGET;
}

void trouble_end(const smtp_result_t *sr, const trouble_ctx_t *c, trouble_t *out)
{
    const char *host = nz(c->host), *ip = nz(c->ip);
    memset(out, 0, sizeof *out);
    out->stage = trouble_stage_of(sr->end_state);
    out->smtp_result = VS_UNAVAILABLE;
    out->next = TR_NEXT_TARGET;
    out->reason = VR_PROTOCOL_ERROR;
    switch (sr->end) {
    case SMTP_END_OK:
        if (!c->solo) {
            /* the session stopped opening transactions before this recipient's turn
             * (smtp/session.h): as for "too many recipients", a session of its own */
            out->next = TR_ALONE;
            out->reason = VR_NOT_CHECKED;
            snprintf(out->why, sizeof out->why, "%s [%s] stopped before this recipient's "
                     "turn; asked again alone", host, ip);
            return;
        }
        snprintf(out->why, sizeof out->why, "%s [%s] gave no answer to RCPT", host, ip);
        return;
    case SMTP_END_REPLY: /* a stopping reply that could not be kept */
        snprintf(out->why, sizeof out->why, "%s [%s]: %s", host, ip, sr->detail);
        return;
    case SMTP_END_TLS:
        out->reason = VR_TLS_FAILED;
        snprintf(out->why, sizeof out->why, "TLS with %s [%s] failed: %s", host, ip, sr->detail);
        if (!c->tls_retried)
            out->next = TR_IN_CLEAR;
        return;
    case SMTP_END_CONNECT:
        out->reason = VR_CONNECT_FAILED;
        snprintf(out->why, sizeof out->why, "could not connect to %s [%s] port %u: %s%s", host,
                 ip, c->port, sr->detail,
                 c->via_proxy ? "" /* the proxy's network, not ours */
                              : " (outbound port 25 may be blocked on this network)");
        return;
    case SMTP_END_TIMEOUT:
        out->reason = VR_TIMEOUT;
        snprintf(out->why, sizeof out->why, "%s [%s] did not answer in time (%s): %s", host,
                 ip, smtp_state_name(sr->end_state), sr->detail);
        return;
    case SMTP_END_CLOSED:
        snprintf(out->why, sizeof out->why, "%s [%s] closed the connection during %s", host, ip,
                 smtp_state_name(sr->end_state));
        return;
    case SMTP_END_PROTOCOL:
        snprintf(out->why, sizeof out->why, "%s [%s] sent an invalid reply during %s: %s", host,
                 ip, smtp_state_name(sr->end_state), sr->detail);
        return;
    case SMTP_END_LOCAL:
        out->reason = VR_NOT_CHECKED;
        snprintf(out->why, sizeof out->why, "local failure talking to %s: %s", host, sr->detail);
        return;
    }
}

int trouble_probe_evidence(const cl_result_t *cl, bool ctl_accepted)
{
    switch (cl->outcome) {
    case CL_ACCEPTED: return 1;
    case CL_MAILBOX_ABSENT:
    case CL_MAILBOX_DISABLED:
    case CL_RECIPIENT_REFUSED: return 0;
    case CL_PERM_OTHER: return ctl_accepted ? 0 : -1;
    default: return -1; /* 252, 4xx, policy, too many recipients: no evidence */
    }
}

void trouble_accepted(const trouble_accept_t *a, trouble_t *out)
{
    const char *host = nz(a->mx_host);
    const char *pname = a->provider ? a->provider->name : "";
    out->next = TR_FINISH;
    if (a->catch_all == 1) {
        out->reason = VR_ACCEPT_ALL;
        out->smtp_result = VS_UNAVAILABLE;
        snprintf(out->why, sizeof out->why, "%s accepted this address and also %s, an "
                 "address that cannot exist, so its yes proves nothing%s%s%s", host,
                 nz(a->probe_rcpt), a->provider ? " (" : "", pname, a->provider ? ")" : "");
    } else if (a->catch_all < 0 && a->provider &&
               (a->provider->behaviour & (PROVIDER_ACCEPTS_ALL_AT_EDGE | PROVIDER_HIDES_MAILBOX))) {
        out->reason = VR_ACCEPT_ALL;
        out->smtp_result = VS_UNAVAILABLE;
        snprintf(out->why, sizeof out->why, "%s is known to accept every recipient at RCPT "
                 "and reject later, so its yes proves nothing", pname);
    } else if (a->catch_all == 0 && a->told_apart_code) {
        out->reason = VR_ACCEPTED;
        out->smtp_result = VS_ACCEPTED;
        snprintf(out->why, sizeof out->why, "%s accepted this address and refused another "
                 "address of the domain as unknown (%d%s%s): it tells addresses apart, so its "
                 "yes is meaningful (no catch-all probe needed)", host, a->told_apart_code,
                 nz(a->told_apart_enh)[0] ? " " : "", nz(a->told_apart_enh));
    } else if (a->catch_all == 0) {
        out->reason = VR_ACCEPTED;
        out->smtp_result = VS_ACCEPTED;
        snprintf(out->why, sizeof out->why, "%s accepted this address and rejected %s, an "
                 "address that cannot exist, so its yes is meaningful", host,
                 nz(a->probe_rcpt));
    } else {
        out->reason = VR_ACCEPTED;
        out->smtp_result = VS_ACCEPTED;
        snprintf(out->why, sizeof out->why, "%s accepted this address; whether it accepts "
                 "any address could not be tested%s", host,
                 a->probe_enabled ? " (the probe got no clear answer)" : "");
    }
}

window_outcome_t trouble_session_window(const smtp_result_t *sr, const cl_result_t *cls)
{
    if (sr->has_reply && sr->reply.code == 421)
        return WIN_THROTTLE;
    for (size_t i = 0; i < sr->nrcpt; i++) {
        const smtp_reply_t *rp = &sr->rcpt[i].reply;
        if (sr->rcpt[i].has_reply && rp->code >= 400 &&
            (rp->code == 421 || cls[i].outcome == CL_RATE_LIMITED))
            return WIN_THROTTLE;
    }
    if (sr->end == SMTP_END_OK || sr->end == SMTP_END_REPLY)
        return WIN_OK;
    return WIN_NEUTRAL;
}
