/*
 * spf.h - an RFC 7208 SPF evaluator (check_host(), §4), restartable and pure.
 *
 * spf_eval() evaluates a policy against answers the caller already has, read through
 * a callback. When it needs an answer the caller does not have yet, it stops and names
 * the question (out->need); the caller asks it (dns_records_lookup()), stores the answer
 * and calls spf_eval() again from the start. An evaluation needs at most a few dozen
 * answers (10 DNS-querying terms, 10 names per mx or ptr, RFC 7208 §4.6.4), so a re-run
 * per answer costs nothing and keeps the evaluator free of I/O, state and callbacks into
 * the event loop: unit tests drive it from a table.
 *
 * Covered: record selection (§4.5), ip4, ip6, a, mx, ptr, include, exists, all,
 * redirect, qualifiers, dual CIDR lengths, macros (§7: s l o d i p v h, digits, 'r',
 * delimiters, %% %_ %-), the 10-look-up limit, the 2-void-look-up limit, the 10-name
 * limit of mx and ptr. Not covered: exp= (an explanation for a rejection, §6.2; a
 * verifier has no use for it), %{c} %{r} %{t} (only allowed in exp).
 * It does not ask DNS itself and does not decide what a result means to the user.
 */
#ifndef MP_DNS_SPF_H
#define MP_DNS_SPF_H

#include <stdbool.h>

#include "dns/dns.h"

/** Results of check_host() (RFC 7208 §2.6). */
typedef enum {
    SPF_NONE = 0,   /* no SPF record at the domain */
    SPF_NEUTRAL,    /* "?" or no mechanism matched and no redirect */
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,  /* a DNS failure */
    SPF_PERMERROR   /* a broken record, or a limit exceeded */
} spf_result_t;

/** "pass", "fail", ... as RFC 7208 names them. */
const char *spf_result_name(spf_result_t r);

/**
 * The answers the caller has: the records of (type, name), name lower-case without
 * trailing dot; NULL when not known yet (spf_eval() then asks for it through out->need).
 */
typedef const dns_records_t *(*spf_answer_fn)(void *arg, dns_rr_type_t type, const char *name);

#define SPF_TEXT_MAX 256

typedef struct {
    spf_result_t result;
    bool need;                        /* stopped: (need_type, need_name) is wanted */
    dns_rr_type_t need_type;
    char need_name[DNS_NAME_TEXT_MAX];
    unsigned lookups;                 /* DNS-querying terms counted (limit 10) */
    unsigned void_lookups;            /* answers with no records (limit 2) */
    char matched[SPF_TEXT_MAX];       /* the term that decided, e.g. "-all", "ip4:192.0.2.0/24" */
    char why[SPF_TEXT_MAX];           /* for errors and none: what went wrong, where */
} spf_out_t;

/**
 * check_host(ip, domain, sender) of RFC 7208 §4.
 * @param ip      the client address, printable IPv4 or IPv6
 * @param domain  the domain whose policy is evaluated (MAIL FROM's domain, or the HELO)
 * @param sender  MAIL FROM, or "postmaster@<helo>" when checking the HELO (§2.3, §2.4)
 * @param helo    the HELO name (macro %{h})
 * @param fn,arg  the answers known so far
 * @param out     result; when out->need is set the result is not meaningful yet
 */
void spf_eval(const char *ip, const char *domain, const char *sender, const char *helo,
              spf_answer_fn fn, void *arg, spf_out_t *out);

#endif
