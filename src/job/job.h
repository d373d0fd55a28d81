/*
 * job.h - running a bulk job on an event loop: check every row of an input file into
 * the job store (job_run), then write the output from the store (job_out).
 *
 * Both are driven by the caller's event loop and never block it for long: job_run reads
 * a slice of rows per loop turn and keeps at most JOB_WINDOW addresses in the engine;
 * job_out writes a given number of rows per step. So the same code serves the CLI (`bulk`,
 * which only runs the loop until the job ends) and the HTTP server (`serve`, which also
 * answers requests on that loop while jobs run).
 *
 * job_run, per row: a row already stored (an earlier, interrupted run of the same job)
 * is skipped; a malformed row is stored with its error; an address seen before in this
 * job, or checked within max_age, is answered from the store; the rest go to the engine
 * in chunks sorted by domain, so that a shuffled list still gives the engine runs of one
 * domain's addresses, which share SMTP sessions. Results are committed in the store's
 * small batches: `kill -9` loses at most the checks in flight.
 *
 * It does not own the engine, the store or the loop, and prints nothing.
 */
#ifndef MP_JOB_H
#define MP_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "bulkio/bulkio.h"
#include "evidence/assess.h"
#include "sched/engine.h"
#include "store/history.h"
#include "store/store.h"

#define JOB_WINDOW 2048     /* addresses in the engine at once, per job */
#define JOB_CHUNK 100000    /* distinct addresses read, then sent to the engine by domain */
#define JOB_SLICE 4096      /* input rows read per loop turn */

typedef struct job_run job_run_t;

/**
 * Run ev's callback (an event without descriptor, from event_new(base, -1, 0, ...)) at
 * the next turn of the loop, after the loop has polled its sockets. event_active() is
 * not that: libevent 2.1 runs an event activated from a callback again in the same loop
 * iteration, before any socket is read, so a task that re-activates itself "a slice per
 * turn" in fact runs to its end. A zero timeout goes through the timer heap, which the
 * loop reads only after polling. Re-arming a pending one is harmless.
 */
void job_yield(struct event *ev);

typedef enum {
    JOB_END_DONE,     /* every row has a result; the total is stored */
    JOB_END_STOPPED,  /* job_run_stop() */
    JOB_END_FAILED    /* the input or the store failed (message given) */
} job_end_t;

/* What one run did (rows of earlier runs are "skipped"). */
typedef struct {
    uint64_t rows_read, rows_skipped, rows_checked_now, rows_reused, rows_error;
    uint64_t by_verdict[4];  /* rows checked or reused in this run, per vd_verdict_t */
    uint64_t inflight;       /* addresses in the engine now */
    bool eof;                /* the whole input has been read */
    uint64_t slices;         /* turns of the pump (one per loop turn at most) */
} job_counts_t;

/** Called once when the run ends (from the loop, never from inside job_run_* calls). */
typedef void (*job_end_cb)(job_run_t *r, job_end_t end, const char *message, void *arg);
/** Called for every check the engine finishes for this job (e.g. metrics); may be NULL. */
typedef void (*job_result_cb)(const vd_result_t *res, void *arg);

/** A result checked elsewhere: the check's JSON (vd_to_json), or {"error": NAME, ...}
 *  when it could not be checked (the row is stored as a row error NAME). Borrowed. */
typedef void (*job_remote_cb)(const char *json, size_t len, void *arg);

/** Check addr elsewhere (a pool of workers, fleet/queue.h) under key row (its first
 *  input row); cb comes once, from the loop. MP_OK or an error (no callback). */
typedef mp_status_t (*job_remote_fn)(void *ctx, int64_t row, const char *addr,
                                     job_remote_cb cb, void *arg);

typedef struct {
    struct event_base *base;
    engine_t *engine;
    store_t *st;
    const char *job_id;          /* an existing job of st */
    int64_t job_created;         /* its creation time (wall seconds) */
    const char *input;           /* the input file */
    const bulkio_ropts_t *ro;    /* reader options (copied) */
    int64_t max_age_s;           /* reuse cached results this fresh (0: only this job's) */
    job_end_cb on_end;
    job_result_cb on_result;     /* may be NULL */
    void *arg;
    job_remote_fn remote;        /* set: addresses go here, not to engine (may be NULL) */
    void *remote_ctx;
} job_run_opts_t;

/**
 * Open the input and start checking on o->base. The job should be in state running
 * (the caller sets states; job_run only stores results and the total).
 * @return MP_OK; MP_ERR_IO / MP_ERR_ARG with a message in err (input cannot be read,
 *         store failed); MP_ERR_NOMEM.
 */
mp_status_t job_run_start(const job_run_opts_t *o, job_run_t **out, char *err, size_t errsize);

/** Stop reading and sending; on_end(JOB_END_STOPPED) follows from the loop. Results of
 *  checks still in the engine are stored when they come, until job_run_free. */
void job_run_stop(job_run_t *r);

/** Counters so far. */
void job_run_counts(const job_run_t *r, job_counts_t *out);

/** The job's id. */
const char *job_run_id(const job_run_t *r);

/**
 * Free the run. With checks still in the engine and engine_gone false, the run is only
 * detached: their results are dropped as they come and the memory goes with the last
 * one. Pass engine_gone = true after engine_free() (no callback will come).
 */
void job_run_free(job_run_t *r, bool engine_gone);

/* ---- output ------------------------------------------------------------------------- */

typedef struct job_out job_out_t;

/* Rows per verdict / reason written so far (names borrowed from static tables or owned). */
typedef struct {
    const char *name;
    uint64_t n;
} job_tally_t;

#define JOB_TALLY_VERDICTS 8
#define JOB_TALLY_REASONS 64

/**
 * Prepare to write every input row, in input order, with its stored result (a row
 * without one is given the error not_checked) through the writer w, opened by the caller on
 * the input's schema (so that a bad output path fails before any work); job_out owns w
 * from here on, even on failure. st must not be iterating results for anyone else (one
 * iterator per store_t). First one pass over the input and the results computes the
 * catch-all assessment of the accept_all / anti_enumeration rows (job_assess_build),
 * which every such row's result then carries as "catch_all_assessment".
 * @param hist    the address history (read for the assessment), or NULL
 * @param record  also give hist what this job proved (accepted / refused)
 * @return MP_OK; MP_ERR_* with a message in err.
 */
mp_status_t job_out_open(store_t *st, const char *job_id, const char *input,
                         const bulkio_ropts_t *ro, history_t *hist, bool record,
                         bulkio_writer_t *w, job_out_t **out, char *err, size_t errsize);

/** The list prior and the assessments per assess_label_t of the output (job_assess_summary). */
void job_out_assess_summary(const job_out_t *o, assess_prior_t *prior, uint64_t labels[3]);

/** Write up to max_rows rows; *done is set once every row is written and the output
 *  committed (renamed into place). On failure: MP_ERR_* and job_out_error(). */
mp_status_t job_out_step(job_out_t *o, size_t max_rows, bool *done);

/** The failure message of the last step. */
const char *job_out_error(const job_out_t *o);

/** Tallies of what was written: rows per verdict ("error" for row errors), per reason. */
void job_out_tally(const job_out_t *o, const job_tally_t **verdicts, size_t *nv,
                   const job_tally_t **reasons, size_t *nr);

/** Free; an uncommitted output is removed (bulkio_writer_free). */
void job_out_free(job_out_t *o);

/* ---- catch-all assessment (assess.c) ------------------------------------------------- */

typedef struct job_assess job_assess_t;

/**
 * Read the input and the job's stored results once: count the list prior (undeliverable
 * among deliverable + undeliverable, syntax errors and the user's deny list left out),
 * with record, record in hist what the job proved (accepted / refused while the domain
 * told addresses apart), and weigh every accept_all / anti_enumeration row with all rows
 * of its domain and its history (evidence/assess.h). Blocks for one pass; st must not be
 * iterating.
 * @param hist    the address history, or NULL (no history evidence, nothing recorded)
 * @param record  write to hist (false: only read it, for a caller whose job store
 *                connection may hold a write transaction on the same file)
 * @param now     Unix time (ages of the history)
 * @return MP_OK; MP_ERR_* with a message in err
 */
mp_status_t job_assess_build(store_t *st, const char *job_id, const char *input,
                             const bulkio_ropts_t *ro, history_t *hist, bool record,
                             int64_t now, job_assess_t **out, char *err, size_t errsize);

/** The assessment's JSON object of one row, or NULL when the row has none. Borrowed. */
const char *job_assess_get(const job_assess_t *a, uint64_t row_no);

/** The list prior and how many rows got each assess_label_t. a may be NULL (zeros). */
void job_assess_summary(const job_assess_t *a, assess_prior_t *prior, uint64_t labels[3]);

/** Free. NULL is fine. */
void job_assess_free(job_assess_t *a);

#endif
