/*
 * provider.h - which mail provider or security gateway runs an MX host, and what its
 * RCPT answers are known to mean.
 *
 * Pure data look-up: an MX host name goes in, a static row of the table generated from
 * data/providers.tsv (scripts/gen-providers -> gen_providers.c) comes out. No I/O, no
 * allocation, no locale; every returned pointer is static and never freed. It does not
 * decide a verdict: sched and verdict read the kind and behaviour flags (a gateway that
 * accepts a random probe is `accept_all`, a provider that verifies recipients is trusted).
 * See docs/internals/providers.md for the table format, sources and how to refresh it.
 */
#ifndef MP_CLASSIFY_PROVIDER_H
#define MP_CLASSIFY_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

/** What kind of service answers at the MX. */
typedef enum {
    PROVIDER_MAILBOX, /* hosts the mailboxes itself (Gmail, Microsoft 365, iCloud, ...) */
    PROVIDER_GATEWAY, /* filtering service in front of the real mailboxes (Proofpoint, ...) */
    PROVIDER_HOSTING  /* web host / registrar mail, forwarders, inbound mail APIs */
} provider_kind_t;

/* Behaviour flags (data/providers.tsv column 4). No flag set means "unknown". */
/** Rejects unknown mailboxes at RCPT: its 5.1.1 is evidence. (`verifies_recipients`) */
#define PROVIDER_VERIFIES_RECIPIENTS 0x01u
/** Says 250 to any recipient and rejects later: a 250 proves nothing. (`accepts_all_at_edge`) */
#define PROVIDER_ACCEPTS_ALL_AT_EDGE 0x02u
/** Answers alike for existing and absent mailboxes on purpose. (`hides_mailbox_existence`) */
#define PROVIDER_HIDES_MAILBOX 0x04u
/** Recipient validation is a per-customer setting: probe to find out. (`tenant_configurable`) */
#define PROVIDER_TENANT_CONFIGURABLE 0x08u
/** Unknown recipients get a 4xx by default (e.g. Mimecast 451). (`defers_unknown`) */
#define PROVIDER_DEFERS_UNKNOWN 0x10u
/** A forwarding service: the mailbox, if any, lives elsewhere. (`forwards`) */
#define PROVIDER_FORWARDS 0x20u

/** One row of the table. All strings are static. */
typedef struct {
    const char *id;   /* short stable id, e.g. "proofpoint" (domain.provider) */
    const char *name; /* display name, e.g. "Proofpoint" */
    provider_kind_t kind;
    unsigned behaviour;  /* PROVIDER_* flags */
    const char *pattern; /* the matching pattern, e.g. ".pphosted.com" (for --trace) */
} provider_t;

/**
 * The provider of one MX host.
 * @param mx_host host name as found in the MX record; ASCII case-insensitive, one trailing
 *                dot tolerated. NULL, "" or longer than 253 characters match nothing.
 * @return the row whose pattern matches with the longest key (an exact host or a suffix
 *         at a label boundary: ".pphosted.com" matches "mx0a-1.pphosted.com" but never
 *         "notpphosted.com" nor "pphosted.com.evil.example"), or NULL when unknown.
 *         O(labels x log rows) string compares, no allocation.
 */
const provider_t *provider_lookup(const char *mx_host);

/**
 * The provider of a domain from its MX set: the first MX, by preference, that matches.
 * @param hosts MX host names (n of them); NULL entries are skipped
 * @param prefs their preferences (lower = tried first), or NULL when hosts are already in
 *              order; equal preferences keep array order
 * @param n     number of hosts
 * @param index if not NULL, receives the index of the deciding host (unchanged on NULL)
 * @return the provider, or NULL when no MX matches
 */
const provider_t *provider_for_mx_set(const char *const *hosts, const unsigned *prefs, size_t n,
                                      size_t *index);

/** Stable name of a kind: "mailbox_provider", "security_gateway" or "hosting". */
const char *provider_kind_name(provider_kind_t kind);

/** True when the row is a security gateway (domain.gateway in the result). */
bool provider_is_gateway(const provider_t *p);

/**
 * Write the behaviour ids of a flag set, comma-separated ("tenant_configurable,
 * defers_unknown"; "unknown" when none), into buf (size bytes, always terminated when
 * size > 0). Returns the length it needed, like snprintf.
 */
size_t provider_behaviour_str(unsigned behaviour, char *buf, size_t size);

/** Number of rows in the table, and row i (0 <= i < count), for tests and listings. */
size_t provider_count(void);
const provider_t *provider_at(size_t i);

/* ---- The generated table (gen_providers.c); only provider.c reads it. ---- */

/** A reversed pattern and its row; a key ending in '.' is a suffix rule. */
typedef struct {
    const char *rkey;
    unsigned row;
} provider_key_t;

extern const provider_t provider_rows[];
extern const size_t provider_row_count;
extern const provider_key_t provider_keys[]; /* sorted by strcmp */
extern const size_t provider_key_count;

#endif
