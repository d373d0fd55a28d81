/*
 * doctor.h - can this machine verify mail? The identity and reachability checks of
 * `mailprobe doctor` (and the quick ones `bulk` and `serve` run at start).
 *
 * One run checks one source address, in order: 1 configuration (HELO, MAIL FROM),
 * 2 egress address (local, and public as a "myip" DNS server sees it), 3 TCP port 25 to
 * reference MX hosts, 4 reverse DNS (PTR, forward-confirmed, equal to the HELO), 5 the
 * HELO name (A/AAAA hold the egress address, SPF passes), 6 DNS blocklists (resolver
 * honesty first), 7 the MAIL FROM domain (MX, SPF), 8 a live EHLO to one reference MX,
 * then QUIT. Each check ends ok, warn or fail with one line of what was found and one of
 * what to do. Quick mode runs 1, 2 (needed by the others), 4 and 5.
 *
 * Through a SOCKS5 proxy (opts.proxy) the same checks apply as far as they can: check 2
 * is the proxy itself (reachable, RFC 1928 handshake, RFC 1929 authentication), 3 and 8
 * go through it (net/socks5.h drives the handshake), and the egress address judged by
 * 4-7 is the client address the reference MX echoes in check 8 (a DNS "myip" question
 * would show this machine's address, not the proxy's), so a proxy run connects first
 * and looks up after; without an echo the egress address is unknown (warnings).
 *
 * It never sends MAIL, RCPT or DATA. It owns its resolvers and sockets and frees them
 * before calling back; the report is borrowed by the callback. It does not print: the
 * caller renders the report (text or JSON).
 */
#ifndef MP_DOCTOR_H
#define MP_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "mailprobe.h"
#include "net/egress.h"

#define DOC_LIST_MAX 16          /* reference MX hosts, DNSBL zones */
#define DOC_TEXT_MAX 512         /* one line of a check */
#define DOC_DETAILS_MAX 24       /* detail lines per check */

typedef enum { DOC_OK = 0, DOC_WARN, DOC_FAIL, DOC_SKIP } doc_level_t;

/** "ok", "warn", "FAIL", "skip". */
const char *doc_level_name(doc_level_t l);

typedef enum {
    DOC_CONFIG = 0, DOC_EGRESS, DOC_PORT25, DOC_RDNS, DOC_HELO, DOC_DNSBL, DOC_MAIL_FROM,
    DOC_EHLO, DOC_NCHECKS
} doc_check_id_t;

typedef struct {
    const char *id;            /* "config", "egress", ... (stable, for JSON) */
    const char *title;         /* "Configuration", ... */
    doc_level_t level;
    char message[DOC_TEXT_MAX];  /* what was found */
    char fix[DOC_TEXT_MAX];      /* what to do ("" when ok) */
    size_t ndetails;
    char details[DOC_DETAILS_MAX][DOC_TEXT_MAX];
} doc_check_t;

typedef struct {
    doc_check_t check[DOC_NCHECKS];
    doc_level_t worst;         /* over the checks run */
    char source[64];           /* --source, "" = the system's choice */
    char local_addr[64];       /* the local address of the probe connections */
    char public_addr[64];      /* as the myip server saw it; "" unknown */
    char egress[64];           /* public_addr, else local_addr */
    char ptr[256];             /* the forward-confirmed PTR of egress, "" none */
    char helo[256];            /* the HELO judged (given, or the PTR when defaulted) */
    bool helo_defaulted;       /* helo came from the PTR (no --helo) */
    char from[512];            /* MAIL FROM ("" = null sender) */
    char echoed[64];           /* the client address the reference MX echoed, "" none */
    char proxy[320];           /* the SOCKS5 proxy gone through (its name, never the
                                  password), "" none */
} doc_report_t;

typedef struct {
    const char *helo;          /* NULL or "": default to the confirmed PTR */
    const char *fallback_helo; /* judged when helo is unset and no PTR is confirmed */
    const char *from;          /* "" or NULL: null sender */
    const char *source;        /* local address to bind, NULL: any */
    const net_egress_t *proxy; /* a SOCKS5 egress to check and go through (copied), NULL:
                                  none; excludes source and quick */
    const char *dns;           /* resolver for everything but myip/DNSBL; NULL: resolv.conf */
    const char *dnsbl_dns;     /* resolver for DNSBL queries; NULL: dns */
    const char *myip_dns;      /* server answering the myip name with the client address */
    const char *myip_name;
    const char *reference_mx[DOC_LIST_MAX]; /* "HOST", "HOST:PORT", "IP", "[IPv6]:PORT" */
    size_t nreference_mx;
    const char *dnsbl[DOC_LIST_MAX];
    size_t ndnsbl;
    unsigned timeout_ms;       /* per DNS try, TCP connect and SMTP step */
    bool quick;                /* checks 1, 2, 4, 5 only */
} doc_opts_t;

/** Defaults (documented in README "mailprobe doctor"). */
extern const char *const doc_default_reference_mx[];
extern const char *const doc_default_dnsbl[];
#define DOC_DEFAULT_MYIP_DNS "208.67.222.222"
#define DOC_DEFAULT_MYIP_NAME "myip.opendns.com"
#define DOC_DEFAULT_TIMEOUT_MS 5000u

typedef struct doc_run doc_run_t;

/** Called once when every check is done; rep is borrowed. The run may be freed inside. */
typedef void (*doc_done_cb)(doc_run_t *run, const doc_report_t *rep, void *arg);

/**
 * Start a run on base. Options are copied. NULL with *st set on bad options (MP_ERR_ARG:
 * a --source or resolver address that does not parse, a proxy that is not SOCKS5 or
 * comes with a source or quick mode) or no memory.
 */
doc_run_t *doc_run_start(struct event_base *base, const doc_opts_t *o, doc_done_cb cb,
                         void *arg, mp_status_t *st);

/** Free a run (finished or not; no callback afterwards). */
void doc_run_free(doc_run_t *run);

/**
 * Run to completion on a private event loop (for callers not on a loop yet: bulk, serve
 * and check at start). Returns MP_OK and fills *rep.
 */
mp_status_t doc_run_sync(const doc_opts_t *o, doc_report_t *rep);

/* ---- pure parts (judge.c), unit-tested ------------------------------------------------ */

/**
 * Judge a HELO name for check 1: empty, "localhost", not fully qualified, not a host
 * name, an address literal, or a large provider's name (claiming to be Gmail).
 * Writes what is wrong and what to do; returns the level.
 */
doc_level_t doc_helo_judge(const char *helo, char *why, size_t whysz, char *fix, size_t fixsz);

/** Is name the domain (or a host in the domain) of a large mail provider? */
bool doc_name_is_provider(const char *name);

/** What a DNSBL answer means. */
typedef enum {
    DOC_BL_CLEAN = 0,     /* NXDOMAIN: not listed */
    DOC_BL_LISTED,        /* 127.0.0.0/8 answer (not 127.255.255.x) */
    DOC_BL_REFUSED,       /* 127.255.255.x: the list refuses this resolver (Spamhaus) */
    DOC_BL_BOGUS,         /* an answer outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN) */
    DOC_BL_ERROR          /* no answer (SERVFAIL, timeout) */
} doc_bl_t;

/**
 * Read the A records (printable IPv4) a DNSBL gave for one name. meaning receives a
 * human explanation of the return codes for known lists (Spamhaus ZEN: SBL, CSS, XBL,
 * PBL, DROP), else the codes themselves.
 */
doc_bl_t doc_dnsbl_read(const char *zone, const char *const *answers, size_t n, char *meaning,
                        size_t size);

/** The DNSBL question for an address: reversed octets (IPv4) or nibbles (IPv6) + zone. */
bool doc_dnsbl_name(const char *ip, const char *zone, char *out, size_t size);

/**
 * The client address a server echoes in its EHLO reply or banner, e.g.
 * "mx.example.com Hello probe.example [192.0.2.7]" or "at your service, [192.0.2.7]";
 * "[IPv6:2001:db8::1]" too. Returns false when there is none.
 */
bool doc_echoed_addr(const char *text, char *out, size_t size);

#endif
