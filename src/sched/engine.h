/*
 * engine.h - checks addresses: syntax -> intel -> DNS -> SMTP sessions -> verdict.
 *
 * The engine owns the resolver and every SMTP session. Per address it walks the MX
 * targets in preference order (each host's addresses in turn), moving to the next on a
 * refused connection, a timeout, a 421 or a 4xx before RCPT; it retries temporary
 * refusals (greylisting) on a backoff schedule within the greylist wait; it keeps at most
 * per_ip_limit sessions open to one server address and max_sessions in all.
 *
 * Catch-all: in the same session as the real RCPT, one RCPT for a random local part that
 * cannot exist tells whether the server's 250 means anything. The answer is a fact about
 * the domain, cached (facts.h), and probed once per domain: other checks of the domain
 * that run meanwhile wait for the prober's answer instead of probing again.
 *
 * Sessions are reused (the connection cache, conncache.h): when a batch's RCPTs are
 * answered its results are reported and its session waits idle for the next batch to the
 * same server address (RSET, MAIL FROM, RCPTs: another domain, its own probe); idle
 * sessions count against every limit, are retired on their error budget, a slow reply or
 * Postfix-like reuse limits, and are QUIT after idle_time_ms or when nothing is pending.
 *
 * With redis_url (a fleet, docs/internals/fleet.md), a new session also needs a lease
 * from Redis for its (egress, server address) pair (sched/lease.h), held until its
 * socket is closed; MX answers and catch-all facts are asked of Redis before the DNS and
 * the probe, and written after.
 *
 * It does not print; results go to the caller's callback, which owns them.
 */
#ifndef MP_SCHED_ENGINE_H
#define MP_SCHED_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "fleet/fleet.h"
#include "geo/geo.h"
#include "intel/userlist.h"
#include "mailprobe.h"
#include "net/egress.h"
#include "sched/facts.h"
#include "smtp/session.h"
#include "verdict/verdict.h"

typedef struct {
    const char *helo;            /* EHLO name (required) */
    const char *mail_from;       /* "" = null sender */
    smtp_timeouts_t to;          /* per-step deadlines */
    uint64_t max_time_ms;        /* cap per address, all attempts and waits included */
    uint64_t greylist_wait_ms;   /* how long temporary refusals are retried */
    dns_opts_t dns;
    bool allow_private_mx;       /* allow MX targets on loopback/private/... addresses */
    bool starttls;               /* STARTTLS when offered */
    unsigned per_ip_limit;       /* concurrent sessions per server address (default 2) */
    unsigned max_sessions;       /* concurrent sessions in all (default 20) */
    unsigned per_host_limit;     /* concurrent sessions per MX host name, all its addresses
                                    together (default 4) */
    unsigned port;               /* SMTP port (25) */
    bool keep_transcript;        /* record the SMTP transcript in results */
    bool offline;                /* syntax and intel only: no DNS, no SMTP */
    vd_opts_t vd;
    const userlist_t *allow;     /* the user's allow list (wins over deny), or NULL */
    const userlist_t *deny;      /* the user's deny list, or NULL */
    bool catch_all_probe;        /* probe one random recipient per domain (default on) */
    bool postmaster_control;     /* RCPT postmaster@<domain> in every shared session, after
                                    the real recipients and before the probe, so that a
                                    refusal in unknown words can be read (sched/trouble.h;
                                    default on) */
    unsigned min_interval_ms;    /* between two connections to one server address (100) */
    unsigned penalty_ms;         /* wait after a 421, doubling per consecutive one (1 s) */
    unsigned penalty_cap_ms;     /* longest such wait (60 s) */
    unsigned throttle_retries;   /* times a check goes back to a server that said 421 (2) */
    unsigned max_rcpt;           /* recipients one session may carry (default 25): waiting
                                    checks of one domain on one server share a session */
    unsigned rcpt_per_txn;       /* RCPTs per transaction in a session, 0 = all in one
                                    (default); more go into further transactions */
    uint64_t catch_all_ttl_ms;   /* how long "catch-all" is remembered (default 24 h) */
    uint64_t not_catch_all_ttl_ms; /* how long "not catch-all" is remembered (6 h) */
    unsigned session_errors;     /* refusals one session may take over its life (error
                                    budget, default 8: below Postfix's soft limit 10) */
    unsigned reuse_time_ms;      /* no reuse of a session older than this (300 s) */
    unsigned reuse_count;        /* runs (transactions for a batch) one session carries at
                                    most (50); 1 = no reuse */
    unsigned idle_time_ms;       /* an idle session is kept this long for reuse (2 s) */
    facts_t *facts;              /* domain facts store; NULL: the engine keeps its own */
    const geo_db_t *geo;         /* --geoip databases, or NULL */
    const net_egress_t *egress;  /* source addresses / SOCKS5 proxies (--source, --proxy),
                                    borrowed; a domain always goes out through the same
                                    one while it works (net_pool_pick); none: the system's */
    size_t negress;              /* at most NET_EGRESS_MAX */
    const char *redis_url;       /* --redis: share the per-server limits, intervals, 421
                                    penalties and domain facts with every process on this
                                    Redis (docs/internals/fleet.md); NULL: alone */
    fleet_caps_t caps;           /* sessions per egress per minute/hour/day over the whole
                                    fleet (0: none; needs redis_url) */
} engine_opts_t;

/** Defaults: HELO and MAIL FROM still must be set by the caller. */
void engine_opts_default(engine_opts_t *o);

typedef struct engine engine_t;

/** Done callback: the result is handed over; free it with vd_result_free. */
typedef void (*engine_done_cb)(vd_result_t *res, void *arg);

/** Create an engine on base (opts copied, strings must outlive the engine). With
 *  redis_url, Redis is reached first: unreachable gives NULL, MP_ERR_IO and one error
 *  line logged ("fleet: redis 127.0.0.1:6390: Connection refused"). */
engine_t *engine_new(struct event_base *base, const engine_opts_t *opts, mp_status_t *st);

/** Free the engine; checks still running are dropped without callbacks. */
void engine_free(engine_t *e);

/** Start checking one address; the callback runs later from the event loop. */
mp_status_t engine_check(engine_t *e, const char *email, engine_done_cb cb, void *arg);

#define ENGINE_SESS_ENDS 8 /* smtp_end_t values */

/** What the engine did since it was created. */
typedef struct {
    uint64_t sessions;      /* SMTP sessions opened */
    uint64_t rcpts;         /* RCPT commands sent for checks (probes not counted) */
    uint64_t probes;        /* catch-all probe RCPTs sent */
    uint64_t controls;      /* postmaster@ control RCPTs sent */
    uint64_t retries;       /* retry rounds after temporary refusals */
    uint64_t checks;        /* checks finished */
    uint64_t runs;          /* batches run: a session's first and every reuse */
    uint64_t reused;        /* batches run on an idle session taken from the cache */
    unsigned max_refusals;  /* the most refusals one session took */
    unsigned max_per_ip;    /* the most sessions open at once to one server address */
    uint64_t fleet_calls;   /* requests sent to Redis (leases, caps, facts) */
    uint64_t sess_end[ENGINE_SESS_ENDS]; /* sessions finished, by smtp_end_t */
    dns_stats_t dns;        /* the resolver's cache hits and misses */
} engine_stats_t;

void engine_stats(const engine_t *e, engine_stats_t *out);

/** SMTP sessions open (running, idle in the cache, or saying QUIT), plus lease releases
 *  sent to Redis and not answered yet (so that a caller running the loop until this is 0
 *  lets the other processes have the slots at once), plus shared fact writes not answered
 *  yet (so that the facts learnt last reach the fleet). */
unsigned engine_sessions(const engine_t *e);

/** QUIT every idle session now (they are also closed after idle_time_ms and when no
 *  check is pending), and send the shared fact writes waiting. The caller runs the loop until engine_sessions() is 0 to let the
 *  QUITs finish before engine_free(). */
void engine_close_idle(engine_t *e);

/** Checks not finished yet. */
unsigned engine_pending(const engine_t *e);

/** True for loopback, private, link-local, multicast, unspecified, reserved addresses. */
bool engine_addr_unroutable(const struct sockaddr *sa);

#endif
