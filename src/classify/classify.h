/*
 * classify.h - what a server's reply means, and nothing else.
 *
 * Pure: a reply (stage, basic code, RFC 3463 enhanced code, text) goes in, an outcome
 * with the rule that decided it and a human explanation comes out. Order of trust:
 * basic code, then enhanced code, then text — with the known exceptions kept as data
 * (a table of text patterns, each citing a real reply), e.g. "550 5.7.1 ... blocked
 * using zen.spamhaus.org" is a policy refusal of *us*, not proof that the mailbox is
 * absent. smtp reports raw replies; only this module interprets them (STYLE.md).
 */
#ifndef MP_CLASSIFY_H
#define MP_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

/** The command whose reply is being read. */
typedef enum {
    CL_STAGE_BANNER,   /* the greeting, RFC 5321 §4.3.1 */
    CL_STAGE_EHLO,     /* EHLO or HELO */
    CL_STAGE_STARTTLS,
    CL_STAGE_MAIL,     /* MAIL FROM */
    CL_STAGE_RCPT,     /* RCPT TO */
    CL_STAGE_OTHER     /* RSET, QUIT, NOOP */
} cl_stage_t;

/** What a reply means. */
typedef enum {
    CL_ACCEPTED,         /* 250/251: recipient (or command) accepted */
    CL_ANTI_ENUM,        /* 252: will try to deliver, cannot verify (RFC 5321 §3.5.3) */
    CL_MAILBOX_ABSENT,   /* no such user (5.1.1, 5.1.0/550 with user-unknown text, ...) */
    CL_MAILBOX_DISABLED, /* mailbox exists but disabled / inactive (5.2.1) */
    CL_MAILBOX_FULL,     /* over quota (4.2.2 / 5.2.2 / 552) */
    CL_DOMAIN_ABSENT,    /* server says the domain is not served / bad destination (5.1.2) */
    CL_RELAY_DENIED,     /* relaying denied: this server does not accept mail for the domain */
    CL_POLICY_BLOCKED,   /* refusal aimed at us: IP/DNSBL/reputation/auth (5.7.x ...) */
    CL_SENDER_REJECTED,  /* our MAIL FROM refused (bad sender, sender verification failed) */
    CL_RATE_LIMITED,     /* 421 / too many connections / slow down */
    CL_GREYLISTED,       /* temporary refusal that reads as greylisting */
    CL_TEMPORARY,        /* other 4xx: try again later */
    CL_PERM_OTHER,       /* 5xx whose wording does not say why: the session's controls
                            (postmaster@ accepted or refused) decide (sched/trouble.h) */
    CL_RECIPIENT_REFUSED, /* refused this recipient for a reason other than its absence
                             (Facebook RCP-P2 "recipient preferences") */
    CL_TOO_MANY_RCPTS,   /* too many recipients in this transaction or from this sender
                            (RFC 5321 §4.5.3.1.10, X.5.3) */
    CL_PROTOCOL_ERROR,   /* not a meaningful reply for the stage (e.g. 3xx at RCPT) */
    CL__COUNT
} cl_outcome_t;

/** The reading of one reply. Strings are static; do not free. */
typedef struct {
    cl_outcome_t outcome;
    const char *rule; /* id of the rule that decided, e.g. "enh:5.1.1", "text:spamhaus" */
    const char *why;  /* one human sentence: why the reply means this */
} cl_result_t;

/**
 * Read one reply.
 * @param stage the command it answers
 * @param code  the basic reply code (200..599)
 * @param enh   the enhanced status code "c.s.d" or NULL/"" when absent; callers pass it
 *              only when its class matches the code's first digit
 * @param text  the reply text (all lines joined with '\n', codes stripped), may be ""
 * @param out   the reading
 * @return out->outcome
 */
cl_outcome_t classify_reply(cl_stage_t stage, int code, const char *enh, const char *text,
                            cl_result_t *out);

/** Stable identifier of an outcome, e.g. "mailbox_absent". */
const char *classify_outcome_name(cl_outcome_t o);

/** Stable identifier of a stage, e.g. "rcpt". */
const char *classify_stage_name(cl_stage_t s);

/** True for outcomes that are temporary (worth retrying later): rate_limited, greylisted,
 *  temporary, too_many_rcpts. A 4xx "mailbox full" is reported as CL_MAILBOX_FULL and is not retried. */
bool classify_is_temporary(cl_outcome_t o);

/** Number of rules in the tables (exceptions, enhanced codes, text hints), for tests and
 *  for explaining a reading (`mailprobe explain`). */
size_t classify_rule_count(void);

/** Id of rule i (0 <= i < classify_rule_count()), in the order they are tried within
 *  each table; NULL past the end. */
const char *classify_rule_id(size_t i);

#endif
