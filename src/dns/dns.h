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
} dns_mail_t;

typedef struct dns_resolver dns_resolver_t;

/** Options; zero values take defaults. */
typedef struct {
    const char *server;   /* "IP", "IP:PORT", "[IPv6]:PORT", or NULL for /etc/resolv.conf */
    unsigned timeout_ms;  /* per try, default 3000 */
    unsigned tries;       /* default 3 */
    unsigned max_inflight;/* queries on the wire at once, default 64 */
    unsigned neg_ttl_max; /* cap on negative caching, seconds, default 300 */
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

/** Cancel a pending look-up; its callback will not be called. Unknown ids are ignored. */
void dns_cancel(dns_resolver_t *r, uint64_t id);

/** Cache statistics since creation. */
typedef struct { uint64_t hits, misses, queries_sent; } dns_stats_t;
void dns_stats(const dns_resolver_t *r, dns_stats_t *out);

#endif
