/*
 * trouble.h - what an SMTP answer means for one check, in context: the one place where
 * a reply becomes a reason, a "why" sentence, smtp.result and the engine's next step.
 *
 * Modelled on Postfix's smtp_trouble.c: the reply (read once by classify), the stage it
 * answers, the session's other answers (the controls: postmaster@ and the other
 * recipients of the same transaction) and the domain's facts (catch-all, provider,
 * SMTPUTF8) go in; a trouble_t comes out. The engine (engine.c) keeps time, order and
 * politeness: it switches on trouble_t.next and counts its own retries.
 *
 * Pure: no I/O, no clock, no allocation; strings in trouble_t are copied into it.
 */
#ifndef MP_SCHED_TROUBLE_H
#define MP_SCHED_TROUBLE_H

#include <stdbool.h>
#include <stddef.h>

#include "classify/classify.h"
#include "classify/provider.h"
#include "sched/window.h"
#include "smtp/reply.h"
#include "smtp/session.h"
#include "verdict/verdict.h"

/** What the engine does next with the check. */
typedef enum {
    TR_FINISH,      /* the reason is final: report it */
    TR_ACCEPTED,    /* the recipient was accepted: weigh the catch-all evidence */
    TR_ALONE,       /* "too many recipients": ask again in a session of its own */
    TR_THROTTLED,   /* the server asked us to slow down: back to it after its penalty
                       while the engine's throttle budget lasts, else the next target */
    TR_RETRY_ROUND, /* a temporary refusal at RCPT: same server, next retry round */
    TR_NEXT_TARGET, /* this server cannot answer for the mailbox: try the next MX */
    TR_IN_CLEAR     /* opportunistic TLS failed: the same server once more without it,
                       as Postfix does */
} trouble_next_t;

/** How a control recipient of the same transaction fared. */
typedef enum {
    TR_CTL_NONE,     /* not asked, or no answer */
    TR_CTL_ACCEPTED, /* 250/251 */
    TR_CTL_REFUSED   /* a 5xx */
} trouble_ctl_t;

/** The context of one reply. Strings are borrowed for the call. */
typedef struct {
    const char *host, *ip;       /* the server, for the why sentence */
    trouble_ctl_t postmaster;    /* postmaster@<domain> in the same transaction */
    int postmaster_code;         /* its reply code when refused */
    const char *postmaster_enh;  /* ... and enhanced code ("" when none) */
    bool other_accepted;         /* another ordinary recipient of the session was accepted */
    bool local_utf8;             /* the address has a UTF-8 local part (RFC 6531) */
    bool smtputf8_offered;       /* the server advertised SMTPUTF8 */
    bool solo;                   /* the check already asked alone after "too many recipients" */
    bool tls_failed_seen;        /* a TLS handshake with this domain failed earlier */
    bool tls_retried;            /* this server is already being tried without TLS */
    bool via_proxy;              /* the session went through a proxy (or the proxy failed):
                                    a refused connection is not our network's port 25 */
    unsigned port;               /* the SMTP port (why text) */
    unsigned attempts;           /* sessions opened for this check so far (why text) */
    unsigned long long elapsed_s;/* seconds since the check started (why text) */
} trouble_ctx_t;

/** The meaning of one reply for one check. */
typedef struct {
    cl_result_t cl;              /* the reading of the reply itself (classify) */
    cl_stage_t stage;
    vd_reason_t reason;
    vd_smtp_result_t smtp_result;
    trouble_next_t next;
    bool temporary;              /* before RCPT: a temporary refusal (the round is retried
                                    if every target answers only temporarily) */
    bool controlled;             /* the controls changed the reading of the reply */
    char why[600];
} trouble_t;

/**
 * Read every RCPT reply of a finished session once (classify), so that the window
 * outcome, the probe and each check use the same reading.
 * @param sr  the session's result
 * @param cls n readings; cls[i] is set for i < sr->nrcpt with a reply, else zeroed
 * @param n   room in cls
 */
void trouble_read_session(const smtp_result_t *sr, cl_result_t *cls, size_t n);

/**
 * The answer to our RCPT for this check.
 * @param rp  the reply (raw, from smtp)
 * @param cl  its reading from trouble_read_session(), or NULL to read it here
 * @param ctx the session's controls and the check's facts
 * @param out the meaning and the next step
 */
void trouble_rcpt(const smtp_reply_t *rp, const cl_result_t *cl, const trouble_ctx_t *ctx,
                  trouble_t *out);

/**
 * A reply before RCPT that ended the session (banner, EHLO, STARTTLS, MAIL).
 * Never a mailbox verdict: nothing before RCPT is about the mailbox.
 * @param rp    the reply
 * @param stage the command it answers
 * @param ctx   the check's facts (tls_failed_seen)
 * @param out   reason, why, next (TR_THROTTLED for 421, TR_FINISH for a refusal of our
 *              sender, else TR_NEXT_TARGET) and temporary
 */
void trouble_early(const smtp_reply_t *rp, cl_stage_t stage, const trouble_ctx_t *ctx,
                   trouble_t *out);

/**
 * A session that ended without an answer to this check's RCPT and without a reply that
 * stopped it (those go to trouble_rcpt / trouble_early): refused, timed out, closed, TLS,
 * garbage, our own failure, or a session that stopped before this recipient's turn.
 * @param sr  the session's result (end, end_state, detail)
 * @param ctx the check's facts (solo, tls_retried, host, ip, port)
 * @param out reason, why and next (TR_ALONE, TR_IN_CLEAR or TR_NEXT_TARGET)
 */
void trouble_end(const smtp_result_t *sr, const trouble_ctx_t *ctx, trouble_t *out);

/** The stage of a reply that ended a session in state st. */
cl_stage_t trouble_stage_of(smtp_state_t st);

/**
 * What the catch-all probe's reply proves about the domain: 1 it accepts any address,
 * 0 it tells addresses apart, -1 nothing either way.
 * @param cl          the reading of the probe's reply
 * @param ctl_accepted postmaster@ or an ordinary recipient was accepted in the same
 *                    session: then a refusal of the probe in unknown words is about the
 *                    probe's address, so the server does not take every address
 */
int trouble_probe_evidence(const cl_result_t *cl, bool ctl_accepted);

/** Facts that decide what an accepted recipient is worth. */
typedef struct {
    const char *mx_host;
    int catch_all;               /* 1 yes, 0 no, -1 unknown */
    const char *probe_rcpt;      /* the probe address, when probed */
    const provider_t *provider;  /* from the MX host names, or NULL */
    bool probe_enabled;          /* the catch-all probe is on */
    int told_apart_code;         /* catch_all 0 without a probe: the code with which the
                                    MX refused another address of the domain as unknown
                                    (0: the evidence is the probe's answer) */
    const char *told_apart_enh;  /* ... and its enhanced code, or NULL */
} trouble_accept_t;

/** The reason of an accepted recipient: accepted, or accept_all when the server (or its
 *  provider, when the probe could not tell) accepts any address. */
void trouble_accepted(const trouble_accept_t *a, trouble_t *out);

/** What a session says about its server's capacity: a 421 or a "slow down" anywhere is a
 *  throttle; a conversation that went its course is a success. cls: the readings of
 *  trouble_read_session() (at least sr->nrcpt of them). */
window_outcome_t trouble_session_window(const smtp_result_t *sr, const cl_result_t *cls);

/** How telling a failure is, when several targets failed differently: a refusal of us
 *  (7) over a rate limit (6) over a temporary refusal (5) over a protocol error (4), TLS
 *  (3), a timeout (2), a refused connection (1); a final reason is 8. The engine reports
 *  the highest. */
int trouble_rank(vd_reason_t r);

/** Name of a next step, for tests and traces. */
const char *trouble_next_name(trouble_next_t n);

#endif
