/*
 * lease.h - the engine's side of the fleet (fleet/fleet.h): a lease from Redis before a
 * session to (egress, server address) opens, renewals while it is open, the release with
 * the session's outcome once its socket is closed; and the shared domain facts' text form.
 *
 * Does: keep per (egress, server address) pair whether a request is in flight, a granted
 * lease not used yet, and until when the pair waits (a refusal's wait, a cap's window,
 * Redis lost: a back-off of 1 s doubling to 30 s during which no session starts); take
 * one unit of the caps per egress after a grant; wake the owner when a lease is granted
 * or a wait is over (the owner also learns the time to ask again). A pair refused because
 * it is full waits for Redis' wake-up (the release that frees a slot publishes it; the
 * pool then asks at once), with a slow safety poll in case a wake-up is lost.
 * Does not: choose which check goes first, count local slots (engine.c), or talk to Redis
 * itself (fleet.c). It does not own the fleet handle: free the pool after fleet_free(),
 * which drops the answers still to come (docs/internals/fleet.md, "The engine").
 */
#ifndef MP_SCHED_LEASE_H
#define MP_SCHED_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "fleet/fleet.h"
#include "sched/facts.h"

/* The egress name of "the system's address" (no --source/--proxy) in the lease keys:
 * every process without one shares it, which counts them as one client address. */
#define LEASE_EGRESS_SYSTEM "system"
#define LEASE_MS_DEFAULT 30000      /* a lease not renewed expires after this */
#define LEASE_POLL_MS 100           /* the pair full and no wake-up to come: ask again */
#define LEASE_SAFETY_MS 2000        /* the pair full, a wake-up to come: ask again anyway
                                       after 75-100 % of this (a wake-up can be lost) */
#define LEASE_BACKOFF_MAX_MS 30000  /* Redis lost: longest wait before asking again */
#define LEASE_WANT_MS 2500          /* another process waits for a pair we hold: our
                                       sessions of it give way this long (its refusals,
                                       at least every LEASE_SAFETY_MS, say it again) */

typedef struct lease_pool lease_pool_t;
typedef struct lease_hold lease_hold_t;

typedef struct {
    fleet_limits_t lim;   /* the engine's per-server limit, interval and penalty */
    fleet_caps_t caps;    /* sessions per egress per minute/hour/day (0 = none) */
} lease_cfg_t;

/** A pool on f (borrowed: it must outlive every call but lease_pool_free).
 *  wake(arg) runs from the loop when a lease was granted or a wait ended early. */
lease_pool_t *lease_pool_new(struct event_base *base, fleet_t *f, const lease_cfg_t *cfg,
                             void (*wake)(void *arg), void *arg);

/** Free the pool and whatever it holds (call fleet_free() first). NULL is ignored. */
void lease_pool_free(lease_pool_t *p);

/**
 * May a session to server `ip` through `egress` start now?
 * @param lease receives the lease id (size >= 64) when the answer is true; "" when the
 *        pair cannot be named in Redis (an over-long name: the local limits hold alone)
 * @param retry_at set to when to ask again (ms, mp_now_ms' clock) when false and the
 *        pool does not call wake by itself; left alone otherwise
 * @return true: a lease is the caller's, who must hand it to lease_hold_new()
 */
bool lease_pool_take(lease_pool_t *p, const char *egress, const char *ip, char *lease,
                     size_t size, uint64_t now, uint64_t *retry_at);

/** Leases this process still has a part in besides its sessions: releases and renewals
 *  not answered yet, acquires in flight, granted leases not taken (a process waits for
 *  them to settle before it ends, so that the others need not wait for an expiry). */
unsigned lease_pool_inflight(const lease_pool_t *p);

/** Give back now every granted lease no session took (nothing is pending), and from now
 *  on every lease another process's release hands over. */
void lease_pool_drop_ready(lease_pool_t *p);

/** The safety poll of a pair waiting for a wake-up (default LEASE_SAFETY_MS; tests make
 *  it long to tell a wake-up from the poll, or short to recover a lost one). */
void lease_pool_safety_set(lease_pool_t *p, unsigned ms);

/** Leases handed to this pool by another process's release (it was the oldest waiter),
 *  each without a request of its own. */
uint64_t lease_pool_grants(const lease_pool_t *p);

/** Requests sent to Redis so far (acquire, caps, renew, release). */
uint64_t lease_pool_calls(const lease_pool_t *p);

/** want(arg) runs from the loop when another process waits for a pair of which this pool
 *  holds a lease: the owner gives back the sessions it keeps idle (lease_hold_wanted). */
void lease_pool_on_want(lease_pool_t *p, void (*want)(void *arg));

/** Keep `lease` (from lease_pool_take) alive while its session is open: renewed every
 *  lease_ms / 3. NULL when lease is "" or out of memory. */
lease_hold_t *lease_hold_new(lease_pool_t *p, const char *egress, const char *ip,
                             const char *lease);

/** True when a renewal found the lease gone (expired: Redis restarted, or too slow): the
 *  session should not carry another batch. */
bool lease_hold_lost(const lease_hold_t *h);

/** True when another process waited for h's pair within LEASE_WANT_MS: a session of it
 *  with nothing of ours to carry should end rather than wait idle. */
bool lease_hold_wanted(const lease_hold_t *h);

/** The session's socket is closed: release the lease with its outcome and forget h. */
void lease_hold_end(lease_hold_t *h, fleet_outcome_t o);

/* ---- shared domain facts: one line of text per fact -------------------------------- */

#define LEASE_FACT_MAX 1400

/** Write a catch-all fact as text ("v1", fields tab-separated, the reply text last, tabs
 *  and line ends in it made spaces; the flag "t" for a domain told apart by a refused
 *  address, with no address and no text). @return its length, 0 when it does not fit. */
size_t lease_fact_encode(const facts_domain_t *f, char *buf, size_t size);

/** Read what lease_fact_encode wrote (bytes from Redis: anything else is refused).
 *  @return true when it was one such fact */
bool lease_fact_decode(const char *s, size_t len, facts_domain_t *out);

/* ---- shared MX answers ------------------------------------------------------------- */

#define LEASE_MX_MAX 8192

/** Write a domain's mail routing as text: a line "m1", status, null MX, implicit MX, SPF,
 *  DMARC, then a line per MX host: preference, name, status, its addresses (comma-
 *  separated). Only a definitive answer is worth sharing (OK, NODATA, NXDOMAIN): others
 *  give 0. @return its length, 0 when it does not fit or is not shared. */
size_t lease_mx_encode(const dns_mail_t *m, char *buf, size_t size);

/** Read what lease_mx_encode wrote into *out (zeroed first: no detail, queries 0,
 *  ttl_ms 0); anything else from Redis is refused whole. */
bool lease_mx_decode(const char *s, size_t len, dns_mail_t *out);

#endif
