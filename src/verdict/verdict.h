/*
 * verdict.h - the result of one check, its verdict, reason and score, and its renderings.
 *
 * Pure: the engine (sched) records facts in a vd_result_t — syntax, DNS routing, the SMTP
 * reply that decided, intel flags — through the vd_set_* functions, which choose the
 * verdict and reason; vd_finish() applies the address-level signals (disposable, role,
 * the user's lists) and computes the score. Rendering to JSON (written directly, in
 * jansson's compact spelling) and to text for people lives here too. No I/O except writing to a FILE* the caller gives.
 *
 * Ownership: vd_result_new() / vd_result_free(); every string inside is owned.
 */
#ifndef MP_VERDICT_H
#define MP_VERDICT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "addr/addr.h"
#include "classify/classify.h"
#include "geo/geo.h"
#include "intel/intel.h"

typedef enum {
    VD_DELIVERABLE,
    VD_UNDELIVERABLE,
    VD_RISKY,
    VD_UNKNOWN
} vd_verdict_t;

/* The single most important cause. Order matters only for the name table. */
typedef enum {
    VR_ACCEPTED,
    VR_ALLOW_LISTED,
    VR_INVALID_SYNTAX,
    VR_NO_SUCH_DOMAIN,
    VR_NO_MAIL_SERVER,
    VR_UNROUTABLE_MX,
    VR_MAILBOX_ABSENT,
    VR_MAILBOX_DISABLED,
    VR_RECIPIENT_REFUSED,   /* refused this recipient; the session's controls prove it */
    VR_SMTPUTF8_UNSUPPORTED, /* a UTF-8 mailbox at a server without SMTPUTF8 */
    VR_DOMAIN_NOT_SERVED,
    VR_DENY_LISTED,
    VR_ACCEPT_ALL,
    VR_ANTI_ENUMERATION,
    VR_MAILBOX_FULL,
    VR_DISPOSABLE,
    VR_ROLE_ACCOUNT,
    VR_GREYLISTED,
    VR_TEMPORARY_FAILURE,
    VR_POLICY_BLOCKED,
    VR_SENDER_REJECTED,
    VR_RATE_LIMITED,
    VR_TOO_MANY_RECIPIENTS, /* the server limits recipients per transaction or sender */
    VR_CONNECT_FAILED,
    VR_TIMEOUT,
    VR_TLS_FAILED,
    VR_PROTOCOL_ERROR,
    VR_DNS_FAILURE,
    VR_NOT_CHECKED,
    VR__COUNT
} vd_reason_t;

/* smtp.result: what the SMTP step proved about this mailbox. */
typedef enum {
    VS_NOT_CHECKED,
    VS_ACCEPTED,
    VS_REJECTED,
    VS_UNAVAILABLE
} vd_smtp_result_t;

typedef struct {
    char host[256];
    unsigned pref;
    unsigned nip;
    char ip[16][64];
} vd_mx_t;

typedef struct {
    char ip[64];
    char dir;        /* '>' our command, '<' a server reply line */
    uint64_t t_ms;   /* since the check started */
    char *line;
} vd_line_t;

/* One signal that moved the score, for the result's explanation. */
typedef struct {
    const char *factor;        /* static id, e.g. "accepted", "role", "catch_all_untested" */
    int points;                /* the base for the reason, then signed adjustments */
} vd_factor_t;

#define VD_FACTORS_MAX 10

typedef struct {
    char *email;               /* the input, trimmed */
    addr_t addr;
    vd_verdict_t verdict;
    vd_reason_t reason;
    int score;                 /* 0..100 */
    char detail[512];          /* one human sentence: why this verdict */

    /* domain */
    bool dns_checked;
    bool domain_exists;
    bool null_mx, implicit_mx, spf, dmarc;
    unsigned nmx;
    vd_mx_t *mx;
    const char *provider;      /* static string or NULL */
    bool gateway;

    /* smtp */
    vd_smtp_result_t smtp_result;
    bool has_reply;
    int code;
    char enhanced[16];
    char message[2048];
    const char *stage;         /* classify_stage_name of the deciding reply, or NULL */
    const char *rule;          /* classify rule that decided, or NULL */
    int catch_all;             /* -1 unknown (not probed or inconclusive), 0 no, 1 yes */
    bool probed;               /* a catch-all probe reply is known (now or cached) */
    bool probe_cached;         /* ... and it came from the domain-facts cache */
    char probe_rcpt[320];      /* the probe address */
    int probe_code;            /* its reply */
    char probe_enh[16];
    char probe_text[512];
    unsigned provider_flags;   /* PROVIDER_* behaviour of domain.provider */
    char mx_host[256];
    char mx_ip[64];
    char egress[320];          /* --source address or --proxy it went out by; "" = the
                                  system's choice */
    bool tls;
    bool tls_verified;
    unsigned attempts;         /* SMTP sessions opened for this address */
    unsigned round_trips;      /* times the last session waited for the server */
    bool has_geo;              /* geo facts for mx_ip (--geoip) */
    geo_info_t geo;

    /* address signals */
    intel_t intel;
    bool intel_done;
    char list_match[512];      /* "deny list FILE:LINE" when a user list decided */

    uint64_t duration_ms;
    unsigned nfactors;
    vd_factor_t factors[VD_FACTORS_MAX]; /* how the score was reached (vd_finish) */

    unsigned nlines, cap_lines;
    vd_line_t *lines;          /* transcript, when tracing */
} vd_result_t;

/** New empty result for an input (copied). NULL on allocation failure. */
vd_result_t *vd_result_new(const char *email);
void vd_result_free(vd_result_t *r);

const char *vd_verdict_name(vd_verdict_t v);
const char *vd_reason_name(vd_reason_t r);
/** The verdict a reason belongs to. */
vd_verdict_t vd_reason_verdict(vd_reason_t r);
/** A sentence explaining a reason to a person. */
const char *vd_reason_text(vd_reason_t r);
const char *vd_smtp_result_name(vd_smtp_result_t s);

/** Set verdict and reason (the verdict follows from the reason) with a detail sentence. */
void vd_set(vd_result_t *r, vd_reason_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Map a reply reading to the reason it stands for (final, after retries). */
vd_reason_t vd_reason_from_outcome(cl_outcome_t o);

/** What a reply reading proves about the mailbox (smtp.result). */
vd_smtp_result_t vd_smtp_result_from_outcome(cl_outcome_t o);

/** Record the reply that decided (code, enhanced, text, stage, rule). */
void vd_set_reply(vd_result_t *r, cl_stage_t stage, int code, const char *enh,
                  const char *text, const cl_result_t *cl);

/** Append a transcript line (copied). */
void vd_add_line(vd_result_t *r, const char *ip, char dir, uint64_t t_ms, const char *line);

/** Options that change how address signals weigh. */
typedef struct {
    bool role_risky;  /* a role account is risky instead of just flagged */
} vd_opts_t;

/** Apply address signals (intel must be set) and compute the score. */
void vd_finish(vd_result_t *r, const vd_opts_t *o);

/** The score for a verdict/reason and flags; documented in docs/verdicts.md.
 *  When f is not NULL it receives up to VD_FACTORS_MAX factors and *nf their count. */
int vd_score_explain(const vd_result_t *r, vd_factor_t *f, unsigned *nf);
int vd_score(const vd_result_t *r);

/** One NDJSON line (no newline). Returned string is malloc'd; NULL on failure.
 *  with_transcript adds "transcript". */
char *vd_to_json(const vd_result_t *r, bool with_transcript);

/** Human rendering; colour when colour is true. */
void vd_print_human(const vd_result_t *r, FILE *out, bool colour);

#endif
