/*
 * assess.h - the catch-all assessment: for an address on a domain that accepts every
 * recipient (accept_all) or will not say (anti_enumeration), how likely the mailbox is
 * to exist, from honest evidence only, with every piece of evidence shown with its weight.
 *
 * The model is a logistic regression over a few named factors (assess_factor_t); its
 * weights are in assess_weights.h, trained by bench/assess/train.py on the labelled set
 * bench/assess/evalset.csv (provenance and figures: docs/internals/evidence.md,
 * docs/benchmarks.md). The factors come from the list itself (the domain's naming pattern
 * and the row's name, a near miss of the expected address or of a colleague's, a
 * random-looking or role local part), from the address's history (proven or refused while
 * the domain still told addresses apart, learned deliveries and bounces, with their age),
 * and from the list prior (share of undeliverable addresses among the list's checkable
 * domains).
 *
 * Does not: talk to anything, read the store (callers pass the history in), or change a
 * verdict (an assessed address stays `risky`). It cannot see departed employees: their
 * addresses carry the same evidence as current ones, so a likely_valid claim from names
 * alone is capped (ASSESS_NAME_CAP).
 * Pure and thread-safe (names.c's transliterator is shared under its own lock).
 */
#ifndef MP_EVIDENCE_ASSESS_H
#define MP_EVIDENCE_ASSESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evidence/names.h"
#include "mailprobe.h"
#include "util/buf.h"

/** The assessment. */
typedef enum {
    ASSESS_NO_EVIDENCE = 0, /* nothing, or not enough, either way */
    ASSESS_LIKELY_VALID,
    ASSESS_LIKELY_INVALID
} assess_label_t;

/** The factors, in the order of the model's weights. */
typedef enum {
    AF_FITS_PATTERN,    /* the domain's pattern applied to the row's name gives the address */
    AF_FITS_OTHER,      /* the name gives it through another pattern */
    AF_FITS_NEITHER,    /* the address is not made from the row's name */
    AF_NEAR_EXPECTED,   /* one or two edits from what the pattern makes of the name: a typo */
    AF_TYPO_COLLEAGUE,  /* one edit from an established colleague's address in the list */
    AF_GIBBERISH,       /* random-looking local part (intel's gibberish score) */
    AF_ROLE,            /* role address (info, sales, ...) */
    AF_PATTERN_PROVEN,  /* fits a pattern that addresses proven deliverable also follow */
    AF_PROVEN_RECENT,   /* accepted while the domain told addresses apart, or delivered, < 1 year */
    AF_PROVEN_OLD,      /* the same, a year ago or more (people leave) */
    AF_REFUSED_RECENT,  /* refused while the domain told addresses apart, or hard bounce, < 1 year */
    AF_REFUSED_OLD,     /* the same, a year ago or more */
    AF_LIST_PRIOR,      /* the list's share of undeliverable addresses (a number, not a flag) */
    AF__COUNT
} assess_factor_t;

#define ASSESS_YEAR_DAYS 365
/** Highest probability a likely_valid may carry without recent proof of the mailbox:
 *  a departed employee's address fits the pattern exactly like a current one's. */
#define ASSESS_NAME_CAP 0.95
/** A pattern is the domain's when this many named addresses and this share follow it. */
#define ASSESS_PATTERN_MIN_SUPPORT 3
#define ASSESS_PATTERN_MIN_SHARE 0.4
/** Established colleagues a near miss is compared with, at most (per domain). */
#define ASSESS_COLLEAGUES_MAX 5000
/** The list prior is used when at least this many checkable addresses back it. */
#define ASSESS_PRIOR_MIN_ROWS 20

/** Stable factor name: "fits_pattern", "list_prior", ... */
const char *assess_factor_name(assess_factor_t f);

/** Stable label name: "likely_valid", "likely_invalid", "no_evidence". */
const char *assess_label_name(assess_label_t l);

/** The evidence about one address, as the model reads it. */
typedef struct {
    bool has[AF__COUNT];
    double prior;                 /* AF_LIST_PRIOR: share of undeliverable, 0..1 */
    int64_t age_days[AF__COUNT];  /* history factors: days since the event */
    char pattern[24];             /* AF_FITS_PATTERN / AF_PATTERN_PROVEN: the pattern's name */
    char near[128];               /* AF_NEAR_EXPECTED / AF_TYPO_COLLEAGUE: the address it misses */
} assess_input_t;

#define ASSESS_DETAIL_MAX 160

/** One piece of evidence as shown to the user. */
typedef struct {
    assess_factor_t factor;
    double weight;                    /* its contribution to the log-odds of "valid" */
    char detail[ASSESS_DETAIL_MAX];   /* what was seen ("first.last", "412 days ago", ...) */
} assess_evidence_t;

typedef struct {
    assess_label_t label;
    double probability;   /* that the mailbox exists, 0..1 */
    size_t n;             /* evidence entries */
    assess_evidence_t ev[AF__COUNT];
} assess_t;

/**
 * Weigh the evidence: p = sigmoid(bias + sum of present factors' weights), the list
 * prior entering as w * (logit(prior) - logit(center)); capped at ASSESS_NAME_CAP without
 * AF_PROVEN_RECENT; likely_valid at or above the model's valid threshold, likely_invalid
 * at or below its invalid threshold, no_evidence otherwise and whenever nothing but the
 * prior is known about the address.
 */
void assess_compute(const assess_input_t *in, assess_t *out);

/** What the history says about one address (Unix times; 0: never). */
typedef struct {
    int64_t proven_at;   /* latest accepted-while-distinguishing or delivered */
    int64_t refused_at;  /* latest refused-while-distinguishing or hard bounce */
} assess_hist_t;

/** One address of a domain, as the list and the history give it. */
typedef struct {
    const char *local;               /* the local part */
    const names_person_t *person;    /* its row's name, or NULL */
    assess_hist_t hist;
    bool target;                     /* to be assessed (accept_all / anti_enumeration) */
} assess_row_t;

/** The list prior: share of undeliverable among the list's checkable addresses. */
typedef struct {
    bool known;      /* enough rows (ASSESS_PRIOR_MIN_ROWS) */
    double share;
    uint64_t rows;   /* checkable rows it is computed from */
} assess_prior_t;

/**
 * Turn a list's counts into its prior.
 * @param undeliverable  rows proven undeliverable (mailbox absent, no such domain...)
 * @param checkable      rows whose domain told (deliverable + undeliverable)
 */
void assess_prior_make(uint64_t undeliverable, uint64_t checkable, assess_prior_t *out);

/**
 * Gather the evidence of every address of one domain: infer the domain's pattern from
 * the rows' names (a proven-deliverable address counts three times), then per target row
 * its fit, near misses, gibberish, role, history (ages from now) and the prior.
 * @param rows   n addresses of one domain (all rows of the list on that domain)
 * @param prior  the list prior, or NULL
 * @param now    Unix time (ages of the history)
 * @param in     n inputs filled for target rows (others zeroed)
 */
void assess_domain_inputs(const assess_row_t *rows, size_t n, const assess_prior_t *prior,
                          int64_t now, assess_input_t *in);

/**
 * Append the assessment as a JSON object:
 * {"assessment":"likely_valid","probability":0.91,"evidence":[{"factor":"fits_pattern",
 * "weight":2.35,"detail":"first.last"},...]}
 * @return MP_OK; MP_ERR_LIMIT / MP_ERR_NOMEM from the buffer
 */
mp_status_t assess_to_json(const assess_t *a, mp_buf_t *b);

/**
 * Put ,"catch_all_assessment":ASSESSMENT before the closing brace of a JSON object.
 * @param json        a result object (vd_to_json() text)
 * @param assessment  an assess_to_json() object
 * @param b           receives the spliced object (reset first)
 * @return MP_OK; MP_ERR_ARG when json does not end with '}'; the buffer's errors
 */
mp_status_t assess_splice(const char *json, const char *assessment, mp_buf_t *b);

/**
 * The assessment of one address alone (a single `check`): no list, so no names, no
 * colleagues, no prior; its history only (no_evidence without one).
 */
void assess_single(const char *local, const assess_hist_t *hist, int64_t now, assess_t *out);

/**
 * Optimal-string-alignment distance (insert, delete, substitute, swap of neighbours)
 * between two ASCII strings, case-sensitive, stopping early above max (at most 8):
 * intel_osa_distance, which treats strings of 64 bytes or more (longer than a local
 * part may be) as equal or too far.
 * @return the distance, or max + 1 when it is larger
 */
size_t assess_edit_distance(const char *a, const char *b, size_t max);

#endif
