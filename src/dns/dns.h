/*
 * dns.h - the resolver: c-ares on the libevent loop, mail-routing look-ups, TTL cache.
 *
 * dns_mail_lookup() answers "where does mail for this domain go": MX records by
 * preference (RFC 5321 §5.1), each MX host's A and AAAA addresses (CNAMEs followed),
 * null MX "0 ." (RFC 7505), implicit MX from the domain's own A/AAAA when it has no MX,
 * plus whether the domain publishes SPF (TXT "v=spf1") and DMARC (TXT at _dmarc.).
 * Every query's answer is cached by its TTL (negative answers by the SOA minimum,
 * capped); concurrent look-ups of the same name share one query.
 *
 * dns_records_lookup() asks one question (A, AAAA, TXT, PTR or MX) and returns its
 * records as text and addresses, for diagnostics (`mailprobe doctor`: PTR, SPF TXT,
 * DNSBL A/TXT). It bypasses the cache and the in-flight bound: its callers ask a few
 * dozen questions, not millions.
 *
 * Async answers are matched by id, not pointer: dns_cancel() with the id makes a late
 * answer find nothing. It does not decide what the facts mean for a verdict.
 */
#ifndef MP_DNS_H
#define MP_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "mailprobe.h"

#define DNS_MX_MAX 16   /* MX hosts kept per domain (by preference) */
#define DNS_IP_MAX 8    /* addresses kept per host (IPv6 keeps at least half) */
#define DNS_NAME_TEXT_MAX 256 /* a presentation name incl. NUL (RFC 1035 §2.3.4) */

/** Result of one query or of a whole look-up. */
typedef enum {
    DNS_OK = 0,     /* answer with data */
    DNS_NODATA,     /* the name exists, no records of this type */
    DNS_NXDOMAIN,   /* the name does not exist */
    DNS_SERVFAIL,   /* server failure, lame delegation, refused */
    DNS_TIMEOUT,    /* no answer in time */
    DNS_ERROR       /* anything else (bad answer, local failure) */
} dns_status_t;

const char *dns_status_name(dns_status_t st);

typedef struct {
    struct sockaddr_storage sa;  /* port 0; the caller sets the port */
    socklen_t salen;
    char text[64];               /* printable address */
} dns_ip_t;

typedef struct {
    char host[256];        /* MX target, lower-case, no trailing dot */
    unsigned pref;
    dns_status_t status;   /* of its address look-ups: OK when it has any address */
    size_t nip;
    dns_ip_t ip[DNS_IP_MAX]; /* IPv4 first, then IPv6 */
} dns_mx_t;

/** Where mail for a domain goes. */
typedef struct {
    dns_status_t status;   /* DNS_OK when mail routing is known (even null MX / no host);
                              NXDOMAIN; SERVFAIL/TIMEOUT/ERROR = could not find out */
    bool null_mx;          /* RFC 7505 "0 ." */
    bool implicit_mx;      /* no MX: the domain's own addresses are its MX (RFC 5321 §5) */
    size_t nmx;
    dns_mx_t mx[DNS_MX_MAX]; /* sorted by preference, then host name */
    bool spf;              /* TXT "v=spf1 ..." at the domain */
    bool dmarc;            /* TXT "v=DMARC1 ..." at _dmarc.<domain> */
    char detail[192];      /* human detail on failure, e.g. "MX query: SERVFAIL" */
    unsigned queries;      /* queries sent to the network for this look-up (0 = all cached) */
    uint64_t ttl_ms;       /* how long the answer holds: the shortest time left of the
                              answers it was read from, as the cache keeps them (0: not
                              to be kept) */
} dns_mail_t;

typedef struct dns_resolver dns_resolver_t;

/** Options; zero values take defaults. */
typedef struct {
    const char *server;   /* "IP", "IP:PORT", "[IPv6]:PORT", or NULL for /etc/resolv.conf */
    unsigned timeout_ms;  /* per try, default 3000 */
    unsigned tries;       /* default 3 */
    unsigned max_inflight;/* queries on the wire at once, default 64 */
    unsigned neg_ttl_max; /* cap on negative caching, seconds, default 300 */
    const char *local_addr; /* IPv4 or IPv6 address queries are sent from, NULL: any */
} dns_opts_t;

/** Create a resolver on base. NULL on failure with *st set. */
dns_resolver_t *dns_resolver_new(struct event_base *base, const dns_opts_t *opts,
                                 mp_status_t *st);

/** Free the resolver; pending look-ups are dropped without callbacks. */
void dns_resolver_free(dns_resolver_t *r);

/** Callback: res is borrowed for the duration of the call. */
typedef void (*dns_mail_cb)(const dns_mail_t *res, void *arg);

/**
 * Look up mail routing for an A-label domain (no trailing dot).
 * The callback is always called from the event loop, never from inside this call,
 * even when everything is cached. Returns a non-zero id for dns_cancel().
 */
uint64_t dns_mail_lookup(dns_resolver_t *r, const char *domain_ascii, dns_mail_cb cb,
                         void *arg);

/** Cancel a pending look-up (either kind); its callback will not be called. Unknown ids
 *  are ignored. */
void dns_cancel(dns_resolver_t *r, uint64_t id);

/** Record types dns_records_lookup() knows (RFC 1035 §3.2.2, RFC 3596). */
typedef enum {
    DNS_RR_A = 1,
    DNS_RR_PTR = 12,
    DNS_RR_MX = 15,
    DNS_RR_TXT = 16,
    DNS_RR_AAAA = 28
} dns_rr_type_t;

#define DNS_RR_MAX 16         /* records kept per answer */
#define DNS_RR_TEXT_MAX 1024  /* bytes kept per record's text, NUL included */

typedef struct {
    unsigned pref;               /* MX preference */
    char text[DNS_RR_TEXT_MAX];  /* TXT: its strings joined (RFC 7208 §3.3); PTR, MX:
                                    the name, lower-case, no trailing dot ("" = root);
                                    A, AAAA: the printable address */
    dns_ip_t ip;                 /* A, AAAA */
} dns_rr_data_t;

/** The records of one question. */
typedef struct {
    dns_status_t status;   /* DNS_OK (n >= 1), NODATA, NXDOMAIN or a failure */
    dns_rr_type_t type;
    char name[DNS_NAME_TEXT_MAX]; /* the question, as asked (normalised) */
    size_t n;
    bool truncated;        /* more records, or a longer text, than kept */
    dns_rr_data_t rr[DNS_RR_MAX]; /* in answer order (a CNAME chain is followed) */
} dns_records_t;

/** Callback: res is borrowed for the duration of the call. */
typedef void (*dns_records_cb)(const dns_records_t *res, void *arg);

/**
 * Ask one question, uncached. name: an A-label name (no trailing dot); an invalid one
 * gives DNS_ERROR without a query. The callback is always called from the event loop.
 * Returns a non-zero id for dns_cancel(), 0 when out of memory (no callback then).
 */
uint64_t dns_records_lookup(dns_resolver_t *r, dns_rr_type_t type, const char *name,
                            dns_records_cb cb, void *arg);

/** True for an A-label host name (RFC 1123 §2.1): letters, digits, '-' (not at either
 *  end of a label) and '_', labels of 1..63, 253 characters at most, no trailing dot. */
bool dns_name_valid(const char *name);

/** Name for a record type ("A", "TXT", ...). */
const char *dns_rr_type_name(dns_rr_type_t type);

/** Cache statistics since creation. */
typedef struct { uint64_t hits, misses, queries_sent; } dns_stats_t;
void dns_stats(const dns_resolver_t *r, dns_stats_t *out);

#endif
