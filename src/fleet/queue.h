/*
 * queue.h - jobs over Redis Streams: a submitter hands one job's addresses to a pool of
 * workers, batches of one domain at a time, and collects their results.
 *
 * Does: the submitting side (fleet_jobq: batch addresses by domain, XADD them to the
 * job's stream, follow the results the workers publish, answer each address once) and
 * the working side (fleet_worker: read batches through the consumer group with
 * XREADGROUP on a second connection, hand each address to the caller's check, write the
 * results idempotently before XACK, reclaim a dead worker's batches with XAUTOCLAIM,
 * keep held batches claimed, turn a batch delivered too often into error results, hand
 * batches back when stopped). Redis lost: back off (1 s doubling to 30 s) and go on;
 * nothing is lost (a batch is acknowledged only after its results are written).
 * Does not: check addresses (the caller's engine), keep results beyond the job (the
 * caller's store), print. Key layout and scripts: docs/internals/fleet.md.
 *
 * Callbacks run from the loop, never inside the call that started the work.
 */
#ifndef MP_FLEET_QUEUE_H
#define MP_FLEET_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "mailprobe.h"

#define FLEET_BATCH_MAX 25       /* addresses of one domain in one batch (a session's) */
#define FLEET_JOB_ID_MAX 64

/** What a message callback receives (Redis lost and back, a warning): one line. */
typedef void (*fleet_note_cb)(const char *line, void *arg);

/* ---- submitting ------------------------------------------------------------------------ */

typedef struct fleet_jobq fleet_jobq_t;

/** One address' answer: json is the check's result (vd_to_json), or an error object
 *  {"error":"too_many_deliveries",...} when the pool could not check it. Borrowed. */
typedef void (*fleet_result_cb)(const char *json, size_t len, void *arg);

/**
 * Open job `job` (letters, digits, '-', '_') on the pool at url: Redis is checked
 * synchronously (unreachable: NULL and one line in err, nothing submitted). Batches left
 * in the job's stream by an earlier run of the same job are dropped (what is pending is
 * submitted again; results already written are answered from Redis).
 */
fleet_jobq_t *fleet_jobq_open(struct event_base *base, const char *url, const char *job,
                              fleet_note_cb note, void *note_arg, char *err, size_t errsize);

/**
 * Submit one address under key (unique in the job: the input row it answers). Calls of
 * one domain in a row share batches; batches are sent at the next loop turn. The answer
 * comes once to cb (a result Redis already holds for key comes without a check).
 * @return MP_OK, MP_ERR_ARG (key used, closed), MP_ERR_NOMEM
 */
mp_status_t fleet_jobq_add(fleet_jobq_t *q, int64_t key, const char *addr,
                           fleet_result_cb cb, void *arg);

/** Addresses submitted and not answered yet. */
size_t fleet_jobq_pending(const fleet_jobq_t *q);

/**
 * Close: pending answers are dropped without callbacks. complete: the job is over, its
 * keys are deleted; else (interrupted) the batches are withdrawn and the results kept
 * seven days for a later run of the same job. done(arg) runs from the loop once Redis
 * answered (or failed): keep the loop running until then. Not from a result callback.
 */
void fleet_jobq_close(fleet_jobq_t *q, bool complete, void (*done)(void *arg), void *arg);

/** Free now, telling Redis nothing (the loop will not run again: a server stopping):
 *  the job's batches stay, and the next run of the job takes them over. */
void fleet_jobq_abandon(fleet_jobq_t *q);

/* ---- working ----------------------------------------------------------------------------- */

typedef struct fleet_worker fleet_worker_t;

/** Check one address; call fleet_worker_done(w, item, json) later, from the loop. */
typedef mp_status_t (*fleet_check_fn)(fleet_worker_t *w, void *item, const char *addr,
                                      void *arg);

/** Called once when a stopped worker holds nothing more. */
typedef void (*fleet_stopped_cb)(fleet_worker_t *w, void *arg);

typedef struct {
    unsigned batches;         /* batches held at once (default 64) */
    uint64_t claim_idle_ms;   /* a batch unacknowledged this long is reclaimed (120 s) */
    unsigned max_deliveries;  /* deliveries before a batch becomes error results (5) */
    const char *name;         /* consumer name (default host:pid:random) */
    fleet_check_fn check;
    fleet_stopped_cb stopped;
    fleet_note_cb note;       /* may be NULL */
    void *arg;
} fleet_wopts_t;

/** Join the pool at url: Redis checked synchronously (NULL and one line in err). */
fleet_worker_t *fleet_worker_open(struct event_base *base, const char *url,
                                  const fleet_wopts_t *o, char *err, size_t errsize);

/** An address' result (json copied; NULL: out of memory, the batch is not acknowledged
 *  and comes back later). */
void fleet_worker_done(fleet_worker_t *w, void *item, const char *json);

/**
 * Stop taking batches. hand_back false: what is held is finished, then stopped() runs;
 * true: what is held goes back to the pool now (its checks' results will be dropped)
 * and stopped() follows.
 */
void fleet_worker_stop(fleet_worker_t *w, bool hand_back);

/** What a worker did. */
typedef struct {
    uint64_t batches, addresses, reclaimed, handed_back, failed_batches;
    unsigned held;
} fleet_wstats_t;

/** What the worker did so far, and the batches it holds now. */
void fleet_worker_stats(const fleet_worker_t *w, fleet_wstats_t *out);

/** Free; held batches stay pending in Redis (reclaimed by others). NULL is ignored. */
void fleet_worker_free(fleet_worker_t *w);

#endif
