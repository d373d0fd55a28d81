/*
 * fleet.h - what several mailprobe processes share through Redis: the politeness budget
 * per (outbound address, server address) and the domain facts.
 *
 * Does: keep one hiredis connection on the caller's libevent loop (and a second one
 * subscribed to this handle's wake-ups, fleet_wake_listen); lease a session slot
 * for (egress, server) - at most N at once and a minimum interval between two starts,
 * decided atomically by one Lua script on Redis' own clock (TIME), so workers on many
 * machines with unsynchronised clocks see one budget; leases expire by themselves when a
 * worker dies; a 421 (throttle) halves the shared window and delays the next start for
 * every worker; get/put domain facts (MX answers, catch-all, provider) with a TTL.
 * Does not: decide when to open a session (sched), read our clock, keep local state
 * beyond the connection, or distribute jobs (queue.h does, over this module's commands).
 * Key layout and the scripts' contracts: docs/internals/fleet.md.
 *
 * Lifetime: fleet_open() checks Redis synchronously (a clear error and NULL when it is
 * unreachable), then works asynchronously; fleet_free() drops pending requests without
 * calling back. Callbacks run from the loop, never inside the call that started them;
 * their arguments are borrowed.
 */
#ifndef MP_FLEET_FLEET_H
#define MP_FLEET_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "mailprobe.h"

typedef struct fleet fleet_t;

/** redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], parsed (USER and PASSWORD %-encoded;
 *  Redis 6 ACL users, or the requirepass password alone). */
typedef struct {
    char user[128], pass[256]; /* "" = none */
    char host[256];
    unsigned port; /* default 6379 */
    unsigned db;   /* default 0 */
} fleet_url_t;

/** Parse a Redis URL (no TLS: hiredis 0.14 has none; reach a remote Redis through a
 *  tunnel). @return MP_OK or MP_ERR_ARG with a one-line reason in err. */
mp_status_t fleet_url_parse(const char *url, fleet_url_t *out, char *err, size_t errsize);

/**
 * Connect to Redis: PING and load the scripts synchronously (at most timeout_ms), then
 * keep an asynchronous connection on base. A lost connection fails the requests in
 * flight (with an error in their callback) and is made again by the next request; a
 * request not answered within timeout_ms (0: 5 s) fails with an error too.
 * @return the handle, or NULL with a one-line reason in err ("redis 127.0.0.1:6390:
 *         Connection refused")
 */
fleet_t *fleet_open(struct event_base *base, const char *url, unsigned timeout_ms, char *err,
                    size_t errsize);

/** Close; pending requests are dropped without their callbacks. NULL is ignored. */
void fleet_free(fleet_t *f);

/** The politeness rules of one (egress, server) pair; every worker passes the same. */
typedef struct {
    unsigned limit;           /* sessions at once, fleet-wide (>= 1) */
    unsigned min_interval_ms; /* between two session starts */
    unsigned lease_ms;        /* a lease not renewed or released expires after this */
    unsigned penalty_ms;      /* after a throttle, doubling per consecutive one */
    unsigned penalty_cap_ms;  /* longest penalty */
} fleet_limits_t;

/** How a leased session went, for the shared window (AIMD, as sched/window.c). */
typedef enum { FLEET_OK, FLEET_NEUTRAL, FLEET_THROTTLE } fleet_outcome_t;

/** The answer to a lease request (borrowed by the callback). */
typedef struct {
    const char *error;   /* non-NULL: Redis failed (connection lost, script error) */
    bool granted;        /* acquire: a slot is ours; renew: the lease was still held;
                            release: the lease was still held when released */
    char lease[64];      /* acquire: the lease id, to renew or release */
    uint64_t wait_ms;    /* acquire refused: try again after at most this */
    uint64_t now_ms;     /* Redis' clock when the script ran (ms since the epoch) */
    unsigned active;     /* leases held for the pair after the decision */
    unsigned allowed;    /* sessions the shared window allows now (<= limit) */
    bool waiting;        /* acquire refused, the pair full: registered as a waiter, the
                            release that frees a slot wakes us (fleet_wake_listen) */
} fleet_lease_t;

typedef void (*fleet_lease_cb)(const fleet_lease_t *l, void *arg);

/**
 * Ask for a session slot toward server `mx` through `egress` (names without '{', '}',
 * control bytes; at most 200 bytes each).
 * @return MP_OK (the callback will come), MP_ERR_ARG, MP_ERR_NOMEM or MP_ERR_IO (no
 *         connection could be started; no callback)
 */
mp_status_t fleet_lease_acquire(fleet_t *f, const char *egress, const char *mx,
                                const fleet_limits_t *lim, fleet_lease_cb cb, void *arg);

/** Keep a lease alive for another lim->lease_ms (a session longer than a lease).
 *  cb may be NULL. granted false: it had expired (and may have been reclaimed). */
mp_status_t fleet_lease_renew(fleet_t *f, const char *egress, const char *mx,
                              const char *lease, const fleet_limits_t *lim,
                              fleet_lease_cb cb, void *arg);

/** Give a lease back with the session's outcome; a throttle halves the shared window and
 *  sets the shared penalty. cb may be NULL. */
mp_status_t fleet_lease_release(fleet_t *f, const char *egress, const char *mx,
                                const char *lease, fleet_outcome_t o,
                                const fleet_limits_t *lim, fleet_lease_cb cb, void *arg);

/** A wake-up: a release freed a slot of `pair` ("egress|server", len bytes, borrowed)
 *  while this handle waited for it. */
typedef void (*fleet_wake_cb)(const char *pair, size_t len, void *arg);

/** A slot handed over: a release gave the slot it freed of `pair` (len bytes, borrowed)
 *  to this handle, the pair's oldest waiter, as `lease` (borrowed). The lease is held in
 *  this handle's name from now on: start a session with it no sooner than delay_ms from
 *  now (what is left of the minimum interval), renew it while the session lasts, and
 *  release it (FLEET_NEUTRAL when unused) like a lease of fleet_lease_acquire. */
typedef void (*fleet_grant_cb)(const char *pair, size_t len, const char *lease,
                               uint64_t delay_ms, void *arg);

/**
 * Listen for wake-ups on a second connection (subscribed to mp:wake:<this handle's id>):
 * from then on an acquire refused because the pair is full registers the handle as a
 * waiter of the pair, and the release that frees a slot hands it to the oldest waiter
 * still listening (grant). cb is the older form, a wake-up after which the waiter asks
 * again: this version's releases always hand the slot over. A message can be lost (Redis restarted, the connection
 * lost and made again by the next acquire): callers keep a slow poll of their own, and a
 * grant lost is a lease that expires by itself.
 * @return MP_OK, MP_ERR_ARG (a callback missing), or MP_ERR_IO (no connection could be
 *         started now; the next acquire tries again)
 */
mp_status_t fleet_wake_listen(fleet_t *f, fleet_wake_cb cb, fleet_grant_cb grant, void *arg);

/**
 * Be told when another handle waits for a pair this handle holds a lease of: its
 * refused acquire publishes "want <pair>" to every holder (on the wake-up subscription
 * of fleet_wake_listen, which this needs). cb is given the pair ("egress|server"); the
 * holder may give back sessions it keeps idle. NULL cb: ignored again.
 */
void fleet_want_listen(fleet_t *f, fleet_wake_cb cb, void *arg);

/** Whether Redis confirmed the wake-up subscription (acquires register as waiter). */
bool fleet_wake_ready(const fleet_t *f);

/** Caps per outbound address, counted as providers count (0 = no cap). */
typedef struct {
    unsigned per_minute, per_hour, per_day;
} fleet_caps_t;

/** The answer to a quota request (borrowed by the callback). */
typedef struct {
    const char *error;   /* non-NULL: Redis failed */
    bool granted;        /* the n units were counted: go ahead */
    uint64_t wait_ms;    /* refused: when the fullest window ends */
    uint64_t now_ms;     /* Redis' clock */
    unsigned used[3];    /* units counted in this minute, hour, day (after a grant) */
} fleet_quota_t;

typedef void (*fleet_quota_cb)(const fleet_quota_t *q, void *arg);

/**
 * Take n units (sessions, or RCPTs) from the caps of `egress` for `scope` ("*" for all
 * servers, or a provider name: Gmail and Microsoft count per sending address), all or
 * nothing, in fixed minute/hour/day windows of Redis' clock (UTC days).
 * @return MP_OK (the callback will come), MP_ERR_ARG, MP_ERR_NOMEM or MP_ERR_IO
 */
mp_status_t fleet_quota_take(fleet_t *f, const char *egress, const char *scope, unsigned n,
                             const fleet_caps_t *caps, fleet_quota_cb cb, void *arg);

/** Kinds of shared domain facts. */
typedef enum { FLEET_FACT_MX, FLEET_FACT_CATCH_ALL, FLEET_FACT_PROVIDER } fleet_fact_t;

/** A fact's answer: value NULL when absent; ttl_ms what is left of its TTL. */
typedef void (*fleet_fact_cb)(const char *error, const char *value, size_t len,
                              uint64_t ttl_ms, void *arg);

/** Read a fact of a domain (lower-case A-label form). */
mp_status_t fleet_fact_get(fleet_t *f, fleet_fact_t kind, const char *domain,
                           fleet_fact_cb cb, void *arg);

#define FLEET_FACTS_MAX 3

/** One fact to read and where its answer goes. */
typedef struct {
    fleet_fact_t kind;
    fleet_fact_cb cb;
    void *arg;
} fleet_fact_ask_t;

/** Send the fact writes waiting now (a process about to stop). */
void fleet_facts_flush(fleet_t *f);

/** Requests that carried fact writes (each one batch). */
uint64_t fleet_facts_batches(const fleet_t *f);

/** Fact writes waiting or sent and not answered yet. */
unsigned fleet_facts_pending(const fleet_t *f);

/** Read up to FLEET_FACTS_MAX facts of a domain. The reads asked during one turn of the
 *  loop go as one request (one script, up to 128 facts) once the turn's callbacks are
 *  done; the callbacks run in the order asked, from the same answer (or each with the
 *  error that kept it from being sent). Reads not sent or not answered when the handle is
 *  freed are dropped. */
mp_status_t fleet_facts_get(fleet_t *f, const char *domain, const fleet_fact_ask_t *asks,
                            size_t n);

/** Requests that carried fact reads (each one loop turn's). */
uint64_t fleet_facts_get_batches(const fleet_t *f);

/** Store a fact (opaque bytes, at most 64 KiB) for ttl_ms (>= 1). The writes of a moment go
 *  as one request: a write waits at most 100 ms for others (or until 128 are waiting),
 *  then all are sent (fleet_facts_flush sends them now). cb may be NULL; it receives value
 *  NULL, from the batch's reply, or the error that kept the batch from being sent. Writes
 *  not sent or not answered when the handle is freed are dropped. */
mp_status_t fleet_fact_put(fleet_t *f, fleet_fact_t kind, const char *domain,
                           const char *value, size_t len, uint64_t ttl_ms, fleet_fact_cb cb,
                           void *arg);

/* ---- commands ---------------------------------------------------------------------------- */

struct redisReply;

/** A command's answer: error non-NULL (connection lost, no answer in time, an error reply:
 *  "redis: ERR ...") or the reply (borrowed, hiredis' redisReply). */
typedef void (*fleet_reply_cb)(const char *error, const struct redisReply *r, void *arg);

/**
 * Send one command (argv with lengths) on the handle's connection, connecting again first
 * when it was lost; the answer comes to cb once, within the handle's timeout (a blocking
 * command needs a handle opened with a timeout above its block time).
 * @return MP_OK (the callback will come), MP_ERR_ARG, MP_ERR_NOMEM or MP_ERR_IO (no
 *         connection could be started; no callback)
 */
mp_status_t fleet_command(fleet_t *f, int argc, const char **argv, const size_t *lens,
                          fleet_reply_cb cb, void *arg);

/**
 * The same for a command already in Redis' protocol (RESP: "*<n>\r\n" then n bulk
 * strings), as the job queue builds its own: hiredis copies it once into its output
 * buffer instead of formatting each argument again.
 * @return as fleet_command; MP_ERR_ARG for something that does not start as an array
 */
mp_status_t fleet_command_resp(fleet_t *f, const char *cmd, size_t len, fleet_reply_cb cb,
                               void *arg);

/** Whether the asynchronous connection is up now. */
bool fleet_connected(const fleet_t *f);

#endif
