/*
 * store.h - the SQLite job store: bulk jobs, their per-row results, and a cross-job
 * address cache.
 *
 * One SQLite file (WAL, synchronous=NORMAL, busy timeout) holds every job of a user.
 * A job is identified by a short random id and found again by the fingerprint of its
 * input plus the options that change results, so re-running the same command resumes
 * it. Results are written in batched transactions: store_result_put() only queues into
 * the open transaction, which commits every STORE_BATCH_ROWS results, every
 * STORE_BATCH_MS, or on store_flush(); a kill -9 loses at most what was not committed.
 * The job's progress counters are updated in the same transaction as its results, so
 * they always agree with them.
 *
 * It does NOT read input files (except for the fingerprint), render results, or decide
 * what a result means: verdict, reason and score are stored as given, the result JSON
 * as opaque text. Schema, guarantees and limits: docs/internals/store.md.
 *
 * Ownership: store_open() / store_close(); strings in a store_job_t are owned by it
 * (store_job_cleanup()); strings in a store_result_t from the iterator are borrowed
 * until the next store_results_next() / store_results_close(). One store_t per thread.
 */
#ifndef MP_STORE_H
#define MP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailprobe.h"

/** Schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 3
/** Default batch: commit after this many queued results ... */
#define STORE_BATCH_ROWS 1000u
/** ... or when the oldest queued write is this old (checked on each write and store_tick). */
#define STORE_BATCH_MS 200u
/** Cache entries are staged (appended, indexed in memory) and merged into the cache in
 *  address order when this many are staged ... */
#define STORE_CACHE_STAGE_MAX (1u << 20)
/** ... or this long after the last merge (checked by writes and store_tick), and when a
 *  job changes state or the store is closed. */
#define STORE_CACHE_MERGE_MS 60000u
/** Size of a job id buffer (ids are 10 characters). */
#define STORE_ID_MAX 16u
/** Size of a fingerprint buffer. */
#define STORE_FP_MAX 128u
/** Bytes of the input hashed for the fingerprint. */
#define STORE_FP_HEAD (64u * 1024u)
/** Size of the error buffer callers pass to store_open / store_fingerprint. */
#define STORE_ERR_MAX 512u
/** Room a job's row is given in the store when a job is accepted: a packed result
 *  (~200-300 bytes), its row, index and cache entries (~370 bytes measured), with room
 *  for longer results. A job of N rows needs N x this, plus its input. */
#define STORE_ROW_BUDGET 1024u
/** Free space never promised to a job: this much, or 5 % of a smaller file system. */
#define STORE_FREE_RESERVE (256ull << 20)

typedef struct store store_t;

typedef enum {
    STORE_JOB_QUEUED,
    STORE_JOB_RUNNING,
    STORE_JOB_DONE,
    STORE_JOB_FAILED,
    STORE_JOB_INTERRUPTED
} store_job_state_t;

/** "queued", "running", "done", "failed", "interrupted". */
const char *store_job_state_name(store_job_state_t s);

/* A job as stored. Strings are owned (store_job_cleanup). */
typedef struct {
    char id[STORE_ID_MAX];
    int64_t created, updated;   /* wall seconds */
    char *input_path;
    char *fingerprint;          /* store_fingerprint() of the input */
    char *options;              /* the caller's canonical text of the options that matter */
    char *output_path;          /* may be NULL */
    char *message;              /* why it failed / was interrupted; may be NULL */
    store_job_state_t state;
    int64_t total_rows;         /* -1 until known */
    int64_t done_rows;          /* rows with a stored result */
    int64_t n_deliverable, n_undeliverable, n_risky, n_unknown;
    int64_t n_error;            /* rows stored with a row error */
    int64_t ckpt_row, ckpt_offset; /* optional reader checkpoint (0 = none) */
} store_job_t;

/* One row's result. For store_result_put, NULL strings are stored as NULL. */
typedef struct {
    int64_t row_no;             /* 1-based, < 2^32 */
    const char *address;        /* as read from the input (not NULL) */
    const char *row_error;      /* bulkio row error name, or NULL / "" */
    const char *verdict;        /* vd_verdict_name(), or NULL when not checked */
    const char *reason;         /* vd_reason_name(), or NULL */
    int score;
    const char *result_json;    /* vd_to_json() text, or NULL */
    int64_t checked_at;         /* wall seconds; 0 on put = now */
} store_result_t;

/* Rows of a job that have a result: a bitmap indexed by row number. */
typedef struct {
    uint64_t *words;
    uint64_t nbits;             /* highest row number + 1 */
    uint64_t count;             /* rows set */
} store_bitmap_t;

/** True when row_no is set. */
static inline bool store_bitmap_has(const store_bitmap_t *b, uint64_t row_no)
{
    return row_no < b->nbits && (b->words[row_no >> 6] >> (row_no & 63)) & 1u;
}
/** Free the bitmap's words (the struct itself is the caller's). */
void store_bitmap_free(store_bitmap_t *b);

/* A cached result. result_json is owned (free()). */
typedef struct {
    char *result_json;
    char verdict[32];
    int64_t checked_at;
} store_cached_t;

/* ---- wall clock hook (tests) -------------------------------------------------------- */

typedef int64_t (*store_wall_fn)(void *arg);
/** Replace the wall clock the store uses for timestamps and ages (NULL: mp_wall_s()). */
void store_wall_set(store_wall_fn fn, void *arg);

/* ---- paths and fingerprints --------------------------------------------------------- */

/**
 * The default store path: $STATE_DIRECTORY/jobs.sqlite (systemd's StateDirectory=),
 * else $XDG_STATE_HOME/mailprobe/jobs.sqlite, else ~/.local/state/mailprobe/jobs.sqlite;
 * but a store left at the old place ($XDG_DATA_HOME/mailprobe or ~/.local/share/mailprobe)
 * is kept while none exists at the new one. Creates the directory (0700) if missing.
 * @return MP_OK; MP_ERR_ARG when neither variable is set; MP_ERR_LIMIT when too long;
 *         MP_ERR_IO when the directory cannot be created.
 */
mp_status_t store_default_path(char *out, size_t size);

/**
 * The same path, for a reader that only looks (check's address history, `mailprobe
 * config`): nothing is created. */
mp_status_t store_default_path_peek(char *out, size_t size);

/**
 * Fingerprint of an input file: "v1:SIZE:MTIME_NS:SHA256(first 64 KiB)". Changes when
 * the file is edited, appended to or replaced. Only regular files have one.
 * @return MP_OK; MP_ERR_IO (cannot stat/read, message in err); MP_ERR_ARG (not a regular
 *         file, e.g. stdin); MP_ERR_LIMIT (buffer too small).
 */
mp_status_t store_fingerprint(const char *path, char *out, size_t size, char *err, size_t errsize);

/* ---- open / close ------------------------------------------------------------------- */

/**
 * Open or create the store at PATH, migrating its schema to STORE_SCHEMA_VERSION.
 * @return MP_OK; MP_ERR_IO (cannot open, not a mailprobe store, written by a newer
 *         mailprobe, locked past the busy timeout) with a message in err; MP_ERR_NOMEM.
 */
mp_status_t store_open(const char *path, store_t **out, char *err, size_t errsize);

/** Commit what is queued and close. NULL is a no-op. */
mp_status_t store_close(store_t *st);

/** The message of the last failure ("" when none). */
const char *store_errmsg(const store_t *st);

/** True when err (store_open's message, or store_errmsg) says the file is damaged (not a
 *  database, or corrupt): running again will not help. */
bool store_err_damaged(const char *err);

/**
 * Is there room on the store's file system for a job of `rows` rows (STORE_ROW_BUDGET
 * each) plus extra_bytes, keeping STORE_FREE_RESERVE free?
 * @return MP_OK (also when it cannot be told); MP_ERR_LIMIT with the figures in
 *         store_errmsg.
 */
mp_status_t store_space_check(store_t *st, int64_t rows, uint64_t extra_bytes);

/**
 * Take the job's run lock (flock on STORE_PATH.d/ID.lock, holding this pid), so that two
 * processes never run one job. Held until store_job_unlock or the process ends.
 * @return MP_OK with *fd; MP_ERR_LIMIT when another process holds it (*holder = its pid
 *         when known; message in store_errmsg); MP_ERR_IO.
 */
mp_status_t store_job_lock(store_t *st, const char *id, int *fd, long *holder);

/** Release (and remove) a lock taken by store_job_lock; fd < 0 is a no-op. */
void store_job_unlock(store_t *st, const char *id, int fd);

/** Schema version of the open file (after migration: STORE_SCHEMA_VERSION). */
int store_schema_version(const store_t *st);

/** Change the batch size (rows; 0 = default) and age (ms; 0 = default). */
void store_set_batch(store_t *st, unsigned rows, unsigned ms);

/* ---- jobs --------------------------------------------------------------------------- */

/**
 * Create a job in state queued. Uses input_path, fingerprint, options, output_path and
 * total_rows (0 = not known yet, stored as -1) of INIT, ignores the other fields, and
 * writes the new id into INIT->id. Commits queued results first.
 */
mp_status_t store_job_create(store_t *st, store_job_t *init);

/**
 * The most recent job with this fingerprint and options (any state).
 * @param out    filled when *found (store_job_cleanup it)
 */
mp_status_t store_job_find(store_t *st, const char *fingerprint, const char *options,
                           store_job_t *out, bool *found);

/** The job with this id. */
mp_status_t store_job_get(store_t *st, const char *id, store_job_t *out, bool *found);

/** Every job, newest first. *jobs is an array of *n (store_jobs_free). */
mp_status_t store_job_list(store_t *st, store_job_t **jobs, size_t *n);

/** Change state (and message, NULL to clear); commits queued results first. */
mp_status_t store_job_set_state(store_t *st, const char *id, store_job_state_t s,
                                const char *message);

/** Record the total number of input rows once known. */
mp_status_t store_job_set_total(store_t *st, const char *id, int64_t total_rows);

/** Record a reader checkpoint (see bulkio_reader_seek); committed with the next batch. */
mp_status_t store_job_set_checkpoint(store_t *st, const char *id, int64_t row_no, int64_t offset);

/** Called once per reason (or row error) with the number of the job's rows that have it. */
typedef void (*store_reason_fn)(const char *reason, int64_t n, void *arg);
/** Rows of a job per reason (row errors by their name), most frequent first; committed
 *  rows only. Kept as counters with the job (one row per reason), so this costs the same
 *  for ten rows or a million. */
mp_status_t store_job_reasons(store_t *st, const char *id, store_reason_fn fn, void *arg);

/** Delete a job and its results. */
mp_status_t store_job_delete(store_t *st, const char *id);

/** Free the strings of a job filled by find/get (the struct itself is the caller's). */
void store_job_cleanup(store_job_t *j);
/** Free an array from store_job_list. */
void store_jobs_free(store_job_t *jobs, size_t n);

/* ---- results ------------------------------------------------------------------------ */

/**
 * Queue one row's result into the open batch (committing it when due). The first
 * result stored for a row wins: a second put for the same row is ignored.
 * @return MP_OK; MP_ERR_ARG (unknown job, bad row number); MP_ERR_IO.
 */
mp_status_t store_result_put(store_t *st, const char *job_id, const store_result_t *r);

/** Commit everything queued. */
mp_status_t store_flush(store_t *st);

/** Commit if the batch is older than its age limit (call from a timer). */
mp_status_t store_tick(store_t *st);

/** Rows of the job that have a result (committed or queued). store_bitmap_free it. */
mp_status_t store_rows_done(store_t *st, const char *job_id, store_bitmap_t *out);

/**
 * Iterate the job's results in row order from row FROM_ROW (1 = all). One iteration at
 * a time per store; do not put results while iterating. Results are stored in the order
 * they were put: the row order is rebuilt 2^20 rows at a time (8 MiB).
 */
mp_status_t store_results_open(store_t *st, const char *job_id, int64_t from_row);
/** Next result; *have is false at the end. Strings borrowed until the next call. */
mp_status_t store_results_next(store_t *st, store_result_t *out, bool *have);
/** End the iteration (also done by reaching the end). */
void store_results_close(store_t *st);

/* ---- cross-job address cache -------------------------------------------------------- */

/**
 * The cached result for a normalised address if it was checked at most MAX_AGE_S
 * seconds ago (max_age_s < 0: any age). Sees this handle's own entries at once, and
 * other handles' entries once merged (see STORE_CACHE_STAGE_MAX), through a read
 * snapshot at most STORE_BATCH_MS old.
 * @param out  filled when *found; free out->result_json
 */
mp_status_t store_cache_get(store_t *st, const char *norm_address, int64_t max_age_s,
                            store_cached_t *out, bool *found);

/** Queue a cache entry (kept only if newer than the cached one). checked_at 0 = now.
 *  If result_json is the text of the last result stored or read, the entry refers to
 *  that result instead of copying it. */
mp_status_t store_cache_put(store_t *st, const char *norm_address, const char *verdict,
                            const char *result_json, int64_t checked_at);

/** Merge staged entries, then delete cache entries older than MAX_AGE_S; *deleted
 *  receives the count (may be NULL). */
mp_status_t store_cache_prune(store_t *st, int64_t max_age_s, int64_t *deleted);

#endif
