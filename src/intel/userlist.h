/*
 * userlist.h - the user's own lists of addresses and domains (--deny-list FILE,
 * --allow-list FILE): spam traps, complainers, past hard bounces; trusted partners.
 *
 * A list is loaded from one or more files, then only read: lookups are O(log n) binary
 * searches in a sorted array and safe from several threads once loading is done. It
 * answers "does this address match, and where is the entry"; what a match means (deny
 * -> undeliverable, allow -> deliverable, allow beating deny) is the caller's policy.
 *
 * File format, one entry per line:
 *   - "user@example.com"   an address; matched ASCII case-insensitively on the whole
 *                           address (local part included: lists come from many sources
 *                           with inconsistent case), "+tag" kept as written
 *   - "example.com", "@example.com", "*.example.com" or ".example.com"   a domain:
 *                           matches the domain and every subdomain
 *   - blank lines, and comments: '#' at the start of a line or after whitespace; the
 *     comment of an entry's own line is its note ("user@example.com  # hard bounce
 *     2026-11-30: 550 5.1.1 User unknown", as `mailprobe learn` writes them), shown with
 *     the entry when it matches
 *   - Unicode domains are accepted and matched in A-label form (via addr_parse)
 * A line that is none of these fails the load with its file and line number.
 *
 * Ownership: userlist_new allocates, userlist_free frees everything; match results
 * point into the list and are valid until userlist_free.
 */
#ifndef MP_INTEL_USERLIST_H
#define MP_INTEL_USERLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "addr/addr.h"
#include "mailprobe.h"

#define USERLIST_LINE_MAX 1024      /* longer lines are an error, not truncated */
#define USERLIST_ENTRIES_MAX 50000000u /* entries in one list, all files together */

typedef struct userlist userlist_t;

/** Where an address matched. */
typedef struct {
    const char *file;  /* path of the file, as given to userlist_load */
    unsigned line;     /* 1-based line number in that file */
    const char *entry; /* for display: the key, then the line's note in parentheses when
                        * it has one: "user@domain (hard bounce 2026-11-30: ...)" */
    const char *key;   /* the entry as stored: "user@domain" or "domain" (A-label, lower) */
    const char *note;  /* the line's comment, "" when none */
    bool is_domain;    /* a domain entry (the address's domain or one of its parents) */
} userlist_match_t;

/** A new empty list. @return MP_OK or MP_ERR_NOMEM */
mp_status_t userlist_new(userlist_t **out);

/** Free the list and every string it handed out. NULL is fine. */
void userlist_free(userlist_t *ul);

/**
 * Add the entries of one file. Several files may be loaded into one list; on a
 * duplicate entry the first loaded wins.
 * @param ul       the list
 * @param path     file to read
 * @param err      receives "path:line: reason" (or "path: reason") on failure
 * @param errsize  size of err
 * @return MP_OK; MP_ERR_IO when the file cannot be read; MP_ERR_CONFIG for a bad line
 *         (nothing of that file is kept); MP_ERR_LIMIT past USERLIST_ENTRIES_MAX;
 *         MP_ERR_NOMEM
 */
mp_status_t userlist_load(userlist_t *ul, const char *path, char *err, size_t errsize);

/**
 * Does a parsed address match? The address entry is tried first, then its domain,
 * then each parent domain.
 * @param ul  the list
 * @param a   a valid parsed address (a->err == ADDR_OK), else no match
 * @param m   when not NULL and matched: where
 * @return true on a match
 */
bool userlist_match(const userlist_t *ul, const addr_t *a, userlist_match_t *m);

/** Entries loaded so far. */
size_t userlist_count(const userlist_t *ul);

#endif
