/*
 * api.h - `mailprobe serve`: the HTTP API (/v1), the web page, /healthz and /metrics,
 * on libevent's evhttp, on the caller's event loop, driving the caller's engine and job
 * store. The API is described in src/api/openapi.json (served at /v1/openapi.json) and
 * docs/api.md.
 *
 * Single-address checks share the engine with the jobs; identical checks in flight are
 * made once and answered to every caller; a finished result is kept in the store's
 * address cache so that a caller whose wait ran out receives it on the next call. Jobs run
 * one at a time in the order they were sent; their state is in the store, so a restarted
 * server continues them.
 */
#ifndef MP_API_H
#define MP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "sched/engine.h"
#include "store/store.h"

typedef struct {
    const char *host;          /* address to listen on ("127.0.0.1", "::1", "0.0.0.0") */
    unsigned port;             /* 0: any free port (api_port() tells) */
    const char *store_path;    /* the job store's file: job files go to STORE_PATH.d/ */
    const char *tokens_path;   /* token file, or NULL: no authentication (loopback only) */
    double rate;               /* requests per second per token (per client address
                                  without tokens); 0 = no limit */
    unsigned burst;            /* requests allowed at once above the rate */
    size_t max_body;           /* largest request body (bytes) */
    uint64_t wait_ms;          /* how long /v1/check waits when the caller does not say */
    uint64_t max_age_ms;       /* answer from results this fresh (checks and jobs) */
    bool allow_private_hooks;  /* webhooks may reach loopback, private, link-local ... */
    uint64_t request_timeout_ms; /* a request (head and body) must arrive within it */
    unsigned max_per_client;   /* connections per client address (0: no cap) */
    size_t max_conns;          /* connections at once (0: from the open files limit) */
    const char *version;
    const char *doctor_json;   /* the start-up doctor report, served at GET /v1/doctor
                                  (NULL: 404); the caller keeps it alive */
    const char *redis;         /* --redis URL: jobs are checked by the pool of workers
                                  (fleet/queue.h); NULL: by the engine */
} api_opts_t;

typedef struct api api_t;

/**
 * Load the tokens, bind, resume the store's unfinished API jobs, and serve on base.
 * Refuses a non-loopback host without tokens. The engine and store must outlive it.
 * @return NULL with a message in err.
 */
api_t *api_new(struct event_base *base, engine_t *engine, store_t *st, const api_opts_t *o,
               char *err, size_t errsize);

/** Route libevent's own messages through mp_log ("libevent: ..."), never straight to
 *  stderr. api_new calls it; process-wide and idempotent. */
void api_libevent_log_install(void);

/** True for 127.0.0.0/8, ::1 and "localhost". */
bool api_host_is_loopback(const char *host);

/** The port bound (useful with port 0). */
unsigned api_port(const api_t *a);

/** Stop taking requests and stop the running job (kept in the store as "running" so the
 *  next start continues it); answer waiting callers with 503. */
void api_shutdown(api_t *a);

/** Free (after api_shutdown, before the engine and the store). */
void api_free(api_t *a);

#endif
