/*
 * intel.h - what the address itself reveals, offline: disposable, free provider, role
 * account, likely typo, gibberish local part.
 *
 * Pure look-ups in tables compiled into the binary (data/ -> scripts/update-data ->
 * src/intel/gen_*.c), no I/O, no allocation, no global state: every function is
 * thread-safe and re-entrant. It does not decide a verdict (verdict does), and knows
 * nothing of DNS: a typo domain that exists and accepts mail still receives a suggestion.
 * The user's own allow/deny lists are a separate module, intel/userlist.h.
 *
 * Domains are expected in A-label, lower-case form (addr_t.domain_ascii); the
 * functions taking a domain also accept upper case and one trailing dot.
 * Algorithms and data formats: docs/internals/intel.md.
 */
#ifndef MP_INTEL_H
#define MP_INTEL_H

#include <stdbool.h>
#include <stddef.h>

#include "addr/addr.h"

/* Which list named a domain (bits of intel_t.disposable_src / free_src). */
#define INTEL_SRC_MAILCHECKER 0x01u   /* npm mailchecker (disposable) */
#define INTEL_SRC_DISPOSABLE 0x02u    /* npm disposable-email-domains */
#define INTEL_SRC_BURNER 0x04u        /* npm burner-email-providers */
#define INTEL_SRC_EXACT 0x08u         /* listed name is a public suffix: no subdomain match */
#define INTEL_SRC_FREE 0x10u          /* npm free-email-domains */
#define INTEL_SRC_PROVIDERS 0x20u     /* npm email-providers */
#define INTEL_SRC_ALLOW 0x40u         /* data/allow.txt: never disposable */
#define INTEL_SRC_POPULAR 0x80u       /* data/popular.txt: never disposable, never corrected */
#define INTEL_SRC_DISPOSABLE_ANY (INTEL_SRC_MAILCHECKER | INTEL_SRC_DISPOSABLE | INTEL_SRC_BURNER)
#define INTEL_SRC_FREE_ANY (INTEL_SRC_FREE | INTEL_SRC_PROVIDERS | INTEL_SRC_POPULAR)

/* A local part scoring at or above this is flagged gibberish. Chosen on the labelled
 * evaluation set (tests/data/intel/) for precision >= 95%; see docs/benchmarks.md. */
#define INTEL_GIBBERISH_THRESHOLD 0.5

/** What kind of correction a suggestion is. */
typedef enum {
    INTEL_TYPO_NONE = 0,
    INTEL_TYPO_TLD,      /* only the top-level domain was fixed: x.con -> x.com */
    INTEL_TYPO_DOMAIN    /* the domain is a misspelling of a popular one: gmial.com */
} intel_typo_t;

typedef struct {
    bool disposable;      /* domain (or a parent) is a known disposable-mail provider */
    bool free;            /* domain is a free mailbox provider */
    bool role;            /* local part is a role (admin, info, sales, ...) */
    bool gibberish;       /* local part looks like a keyboard mash */
    double gibberish_score; /* 0..1, higher = more random-looking */
    bool has_suggestion;
    char suggestion[512]; /* corrected address, when a likely typo is found */
    /* extensions */
    unsigned disposable_src; /* INTEL_SRC_* of the lists that named the matching name */
    size_t disposable_at;    /* offset in domain_ascii of the listed name (0: the domain
                                itself; else the parent that matched) */
    unsigned free_src;       /* INTEL_SRC_* of the lists naming the domain free */
    bool known_provider;     /* domain or a parent is on data/allow.txt or popular.txt:
                                never disposable (not the user's --allow-list) */
    intel_typo_t typo;       /* kind of the suggestion */
} intel_t;

/**
 * Analyse a parsed address. An address with a->err != ADDR_OK receives an all-false result.
 * Flags: disposable (allow list wins), free (exact domain, never when disposable or when
 * the domain itself looks like a typo), role (local part without +tag and separators),
 * gibberish (score >= INTEL_GIBBERISH_THRESHOLD), suggestion (local@corrected-domain).
 * @param a    parsed address (not modified)
 * @param out  filled in completely
 */
void intel_analyze(const addr_t *a, intel_t *out);

/**
 * Name of one INTEL_SRC_* bit, for explanations ("mailchecker", "allow-list", ...);
 * "?" for anything else.
 */
const char *intel_src_name(unsigned bit);

/**
 * Raw table look-up of one exact name (no parent walk).
 * @return the INTEL_SRC_* bits of the lists that name it; 0 when absent
 */
unsigned intel_domain_lookup(const char *domain, size_t len);

/**
 * Is the domain disposable? Walks from the domain up to its parents (x.mailinator.com
 * matches mailinator.com); at each level an allow / popular entry ends the walk with
 * "not disposable" before a disposable entry is considered; a listed public suffix
 * matches only itself.
 * @param domain  A-label domain, NUL-terminated
 * @param src     when not NULL: the INTEL_SRC_* bits of the matching entry (0 if none)
 * @param at      when not NULL: offset of the matching name in domain
 * @param allowed when not NULL: set when an allow/popular entry decided
 * @return true when disposable
 */
bool intel_domain_disposable(const char *domain, unsigned *src, size_t *at, bool *allowed);

/**
 * Is the domain a reserved name (RFC 2606, RFC 6761): under the TLDs .test, .example,
 * .invalid or .localhost, or example.com / example.net / example.org or below them?
 * Such names are documentation and test names, never a disposable provider's.
 * @param domain A-label domain, NUL-terminated, any case; a trailing dot is allowed
 */
bool intel_domain_reserved(const char *domain);

/**
 * Is the domain (exactly, not its parents) a free mailbox provider and not disposable?
 * @param src  when not NULL: INTEL_SRC_* bits (FREE / PROVIDERS / POPULAR)
 */
bool intel_domain_free(const char *domain, unsigned *src);

/** Is the local part a role account? Case, '.', '-', '_' and a "+tag" are ignored. */
bool intel_local_role(const char *local);

/**
 * Gibberish score of a local part, 0..1, from a character-trigram model of names and
 * words: the evidence that the letters were typed at random rather than spelled.
 * Separators, digits and a "+tag" are handled (see docs/internals/intel.md); short or
 * non-ASCII local parts score low (too little evidence).
 */
double intel_gibberish_score(const char *local);

/**
 * Typo suggestion for a domain.
 * @param domain  A-label domain
 * @param out     receives the corrected domain (NUL-terminated) on success
 * @param size    size of out
 * @return kind of correction; INTEL_TYPO_NONE when none (out then is "")
 */
intel_typo_t intel_suggest_domain(const char *domain, char *out, size_t size);

/**
 * Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions,
 * each substring edited once), bounded: any distance above max returns max + 1.
 */
int intel_osa_distance(const char *a, size_t alen, const char *b, size_t blen, int max);

/** Is tld (one label, lower case, no dot) delegated in the root zone? */
bool intel_tld_known(const char *tld, size_t len);

#endif
