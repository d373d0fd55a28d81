/*
 * names.h - people's names as mail systems turn them into local parts, and the naming
 * pattern of a domain (first.last, flast, ...), for the evidence on accept-all domains.
 *
 * Pure (no I/O). Names are folded to ASCII the way directory and mail systems do it
 * (ICU's "Any-Latin; Latin-ASCII" transliterator: é -> e, ß -> ss, Иван -> ivan,
 * Γιώργος -> giorgos, 王小明 -> wang xiao ming), with the German umlaut spelling
 * (ü -> ue), or for Cyrillic the BGN/PCGN spelling of passports and directories
 * (Зайцева -> zaytseva beside ICU's zajceva), as a second variant; hyphenated and multi-part names (Smith-Jones,
 * van der Berg, Marie-Claire) yield the variants real systems use (smithjones,
 * smith-jones, berg...). A name written in Han or Hangul is read family name first.
 *
 * Does not: decide anything about deliverability (the assessment will weigh what this
 * says), guess names from local parts alone, or know nicknames (Bob for Robert).
 * Thread-safe; the transliterator is opened once and shared under a lock.
 */
#ifndef MP_EVIDENCE_NAMES_H
#define MP_EVIDENCE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "mailprobe.h"

#define NAMES_PARTS_MAX 4   /* tokens kept of a first or of a last name */
#define NAMES_PART_LEN 48   /* bytes of one folded token (longer ones are cut) */

/** The naming patterns, by the local part they give for "John Smith". */
typedef enum {
    NP_FIRST_DOT_LAST,  /* john.smith */
    NP_FLAST,           /* jsmith */
    NP_FIRST,           /* john */
    NP_F_DOT_LAST,      /* j.smith */
    NP_FIRST_US_LAST,   /* john_smith */
    NP_FIRSTLAST,       /* johnsmith */
    NP_LAST_DOT_FIRST,  /* smith.john */
    NP_LASTF,           /* smithj */
    NP_LAST,            /* smith */
    NP_FIRST_DASH_LAST, /* john-smith */
    NP_FIRSTL,          /* johns */
    NP_FIRST_DOT_L,     /* john.s */
    NP_LASTFIRST,       /* smithjohn */
    NP_LAST_US_FIRST,   /* smith_john */
    NP_F_LAST_US,       /* j_smith */
    NP__COUNT
} names_pattern_t;

/** A person's name, folded: ASCII lower-case tokens. */
typedef struct {
    char first[NAMES_PARTS_MAX][NAMES_PART_LEN];
    size_t nfirst;
    char last[NAMES_PARTS_MAX][NAMES_PART_LEN];
    size_t nlast;
    bool first_hyphen, last_hyphen; /* the name was written with a hyphen ("Smith-Jones") */
    bool umlaut;                    /* a second spelling exists: ä/ö/ü as "ue", or Cyrillic
                                     * in BGN/PCGN (the field keeps its first name) */
    char first_de[NAMES_PART_LEN];  /* first name in the second spelling (when umlaut) */
    char last_de[NAMES_PART_LEN];   /* last name (all parts joined) in the second spelling */
} names_person_t;

/** The pattern's stable name: "first.last", "flast", ... */
const char *names_pattern_name(names_pattern_t p);

/**
 * Fold one Unicode string to ASCII lower case as mail systems do (see above); characters
 * that are not letters or digits become single spaces, apostrophes vanish (O'Brien ->
 * obrien), hyphens stay.
 * @param utf8 NUL-terminated UTF-8 (invalid bytes are dropped)
 * @param out  receives the folded text (always NUL-terminated when size > 0)
 * @return MP_OK; MP_ERR_LIMIT when it did not fit (out is cut); MP_ERR_NOMEM
 */
mp_status_t names_fold(const char *utf8, char *out, size_t size);

/**
 * Build a person from a row's name columns: first and last (either may be NULL or ""),
 * or a full name ("John Smith", "Smith, John", "王小明") when both are empty.
 * @return MP_OK; MP_ERR_ARG when no letter is left after folding; MP_ERR_NOMEM
 */
mp_status_t names_person_parse(const char *first, const char *last, const char *full,
                               names_person_t *out);

/**
 * Which patterns give this local part for this person? ASCII case-insensitive; a
 * "+tag" subaddress is ignored (john.smith+news is john.smith's); a local part with
 * non-ASCII letters is compared folded.
 * @return a bit mask, bit p set when pattern p (with some variant of the name) gives
 *         exactly local; 0 when none does
 */
unsigned names_match(const char *local, const names_person_t *person);

/** What a domain's named addresses say about its pattern. */
typedef struct {
    names_pattern_t best; /* the pattern most named addresses fit (valid when support > 0) */
    size_t support;       /* named addresses that fit best */
    size_t named;         /* addresses with a usable name */
    size_t counts[NP__COUNT]; /* how many fit each pattern (one address may fit several) */
    double share;         /* support / named; 0 when named is 0 */
} names_domain_t;

/**
 * Infer a domain's pattern from its addresses (local parts) and their rows' names. An
 * address fitting several patterns (a one-letter first name...) counts for each; the best
 * pattern is the most frequent, ties going to the earlier (more common) pattern.
 * @param locals  n local parts
 * @param people  n people (entries with nfirst + nlast == 0 are skipped)
 * @param out     the inference
 */
void names_domain_infer(const char *const *locals, const names_person_t *people, size_t n,
                        names_domain_t *out);

/** How one address compares with its domain's pattern and its row's name. */
typedef enum {
    NAMES_NO_EVIDENCE,    /* no usable name */
    NAMES_FITS_PATTERN,   /* the domain's pattern applied to the name gives the address */
    NAMES_FITS_OTHER,     /* the name gives the address through another pattern (or the
                           * domain has no known pattern) */
    NAMES_FITS_NEITHER    /* the address is not made from the name by any known pattern */
} names_fit_t;

/** Stable identifier: "no_evidence", "fits_pattern", "fits_other_pattern", "fits_neither". */
const char *names_fit_name(names_fit_t f);

/**
 * Does the address fit its domain's pattern and its row's name?
 * @param d       the domain's inference (NULL or support == 0: no pattern known)
 * @param local   the address's local part
 * @param person  its row's name (NULL or empty: no name)
 */
names_fit_t names_fit(const names_domain_t *d, const char *local, const names_person_t *person);

/**
 * The local part the pattern p gives for this person, from the name's plainest spelling
 * (first part of the given name, all parts of the last name joined): what a correctly
 * typed address would be, to compare a near miss with.
 * @return true and out set; false when the pattern needs a part the name lacks
 */
bool names_render(names_pattern_t p, const names_person_t *person, char *out, size_t size);

#endif
