/*
 * addr.h - email address grammar and normalisation, as SMTP accepts it.
 *
 * Pure: no I/O, no allocation. Parses one address (RFC 5321 §4.1.2 Mailbox: dot-atom or
 * quoted-string local part, domain or address literal; RFC 6531 UTF-8 local parts and
 * U-label domains), checks length limits (RFC 5321 §4.5.3.1: local part 64 octets,
 * domain 255, path 256 incl. brackets => address 254) and converts the domain to its
 * A-label form with libidn2 (IDNA2008, UTS#46 non-transitional mapping) so that the
 * Unicode and the punycode spelling of a domain give the same result.
 *
 * It does not decide deliverability and knows nothing of DNS.
 */
#ifndef MP_ADDR_H
#define MP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_INPUT_MAX 1024   /* longer input is rejected as too_long before parsing */
#define ADDR_LOCAL_MAX 64     /* octets, RFC 5321 §4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255   /* octets, RFC 5321 §4.5.3.1.2 */
#define ADDR_ADDRESS_MAX 254  /* octets of local@domain (path 256 minus the brackets) */

/** Which rule an invalid address broke. ADDR_OK for a valid one. */
typedef enum {
    ADDR_OK = 0,
    ADDR_ERR_EMPTY,           /* nothing but whitespace */
    ADDR_ERR_TOO_LONG,        /* whole address over 254 octets (or input over 1024) */
    ADDR_ERR_NO_AT,           /* no '@' separating local part and domain */
    ADDR_ERR_LOCAL_EMPTY,     /* nothing before '@' */
    ADDR_ERR_LOCAL_TOO_LONG,  /* local part over 64 octets */
    ADDR_ERR_LOCAL_DOT,       /* leading, trailing or consecutive dots in a dot-atom */
    ADDR_ERR_LOCAL_CHAR,      /* character not allowed in an unquoted local part */
    ADDR_ERR_QUOTE,           /* malformed quoted string (unbalanced, bad escape, control) */
    ADDR_ERR_DOMAIN_EMPTY,    /* nothing after '@' */
    ADDR_ERR_DOMAIN_TOO_LONG, /* domain over 255 octets in A-label form */
    ADDR_ERR_LABEL_EMPTY,     /* empty label: leading/trailing/double dot in the domain */
    ADDR_ERR_LABEL_TOO_LONG,  /* a label over 63 octets */
    ADDR_ERR_LABEL_HYPHEN,    /* a label starting or ending with '-' */
    ADDR_ERR_DOMAIN_CHAR,     /* character not allowed in a domain */
    ADDR_ERR_DOMAIN_NUMERIC,  /* all-numeric top-level label (not a host name) */
    ADDR_ERR_DOMAIN_SINGLE,   /* a single label (no dot): not routable on the Internet */
    ADDR_ERR_LITERAL,         /* malformed address literal [..] */
    ADDR_ERR_IDN,             /* libidn2 refused the internationalised domain */
    ADDR_ERR_UTF8,            /* bytes that are not valid UTF-8 */
    ADDR_ERR__COUNT
} addr_err_t;

/** A parsed address. Strings are NUL-terminated copies owned by the struct. */
typedef struct {
    addr_err_t err;
    char local[4 * ADDR_LOCAL_MAX + 8]; /* local part as given (quotes kept if quoted) */
    char domain[1024];                  /* domain, lower-case, Unicode (U-label) form */
    char domain_ascii[ADDR_DOMAIN_MAX + 1]; /* domain, lower-case, A-label form; for a
                                                literal: the bracketed literal */
    char normalized[4 * ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 16]; /* local@domain_ascii */
    bool quoted;       /* local part is a quoted-string */
    bool local_utf8;   /* local part has non-ASCII: needs SMTPUTF8 (RFC 6531) */
    bool domain_idn;   /* domain had a U-label or xn-- label */
    bool literal;      /* domain is an address literal [IPv4] or [IPv6:...] */
} addr_t;

/**
 * Parse and normalise one address.
 * @param in   the text; leading/trailing ASCII whitespace is ignored
 * @param len  its length in bytes (need not be NUL-terminated)
 * @param out  filled in completely, also on error (err set, strings possibly empty)
 * @return out->err
 */
addr_err_t addr_parse(const char *in, size_t len, addr_t *out);

/** Stable short identifier of a rule, e.g. "local_too_long"; "ok" for ADDR_OK. */
const char *addr_err_rule(addr_err_t err);

/** One-sentence human explanation of a rule. */
const char *addr_err_text(addr_err_t err);

#endif
