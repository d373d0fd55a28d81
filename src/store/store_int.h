/*
 * store_int.h - what the pieces of the job store share, private to src/store/: the
 * handle's layout, the statement ids, and the helpers for errors, statements, batches,
 * the rows stored per job, the last JSON, packed JSON and the cache's staging index.
 *
 *   store.c    the handle: open/close, errors, wall clock, statements, batches, room
 *   schema.c   migrations and every SQL statement (store_sql[])
 *   jobs.c     jobs, their rows per reason, fingerprints, job locks
 *   results.c  results, rows stored per job, batch counters, iteration in row order
 *   cache.c    the address cache and its staging
 *   pack.c     packed JSON
 *
 * Does not: declare anything for callers (store.h does); nothing outside src/store/
 * includes it. history.c has its own connection and does not use it either.
 */
#ifndef MP_STORE_INT_H
#define MP_STORE_INT_H

#include "store/store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define MAX_DELTA_JOBS 8
#define MAX_JOBBITS 4                       /* jobs whose stored rows are tracked at once */
#define BITS_SHIFT 19                       /* rows per bitmap block: 2^19 (64 KiB) */
#define BITS_NBLOCKS ((UINT32_MAX >> BITS_SHIFT) + 1)

/* Every statement, prepared once at open (schema.c has their text). */
enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_DATA_VERSION,
    S_JOB_NUM, S_JOB_INSERT, S_JOB_FIND, S_JOB_GET, S_JOB_LIST, S_JOB_STATE, S_JOB_TOTAL,
    S_JOB_CKPT, S_JOB_DELTA, S_JOB_DEL, S_JOB_DEL_RESULTS, S_JOB_UNREF_CACHE, S_JOB_UNREF_LOG,
    S_JOB_REASON_ADD, S_JOB_REASONS, S_JOB_DEL_REASONS,
    S_RES_PUT, S_RES_ROWS, S_RES_NEW, S_RES_MAXSEQ, S_RES_GET,
    S_CACHE_GET, S_CACHE_PRUNE, S_LOG_PUT, S_LOG_GET, S_LOG_ALL, S_LOG_MERGE, S_LOG_CLEAR,
    S__COUNT
};

extern const char *const store_sql[S__COUNT];

#define DELTA_REASONS 64 /* distinct reasons per job per batch (the vocabulary has ~35) */
#define REASON_MAX 40

typedef struct {
    int64_t num;
    int64_t d[6]; /* done, deliverable, undeliverable, risky, unknown, error */
    struct {
        char name[REASON_MAX];
        int64_t n;
    } r[DELTA_REASONS];
    size_t nr;
} delta_t;

/* The rows of one job that have a result: 2^32 bits in blocks allocated on demand. */
typedef struct {
    int64_t num;                /* 0 = free */
    uint64_t **blk;             /* BITS_NBLOCKS pointers */
    uint64_t used;              /* for eviction: last use */
} jobbits_t;

/* Hash index of cache_log rows in memory. A slot is (tag << 32) | seq, 0 = empty; the
 * tag is the high half of the address hash and its top bits pick the home slot, so the
 * table can grow without reading the addresses again. A tag match is checked against
 * the row's address, so a stale or colliding slot only costs a look-up. */
typedef struct {
    uint64_t *slot;
    size_t cap, n;              /* cap: a power of two, at most half full */
    unsigned shift;             /* 32 - log2(cap) */
    bool loaded;                /* rows of earlier runs indexed */
} stage_t;

struct store {
    sqlite3 *db;
    sqlite3_stmt *s[S__COUNT];
    char path[1024];
    int version;
    /* the open batch */
    bool in_tx;
    unsigned pending;
    uint64_t tx_start_ms;
    unsigned batch_rows, batch_ms;
    delta_t delta[MAX_DELTA_JOBS];
    size_t ndelta;
    /* what other connections changed: PRAGMA data_version, and results seen up to seq */
    int64_t data_version;
    int64_t seen_seq;
    /* first put wins */
    jobbits_t bits[MAX_JOBBITS];
    uint64_t bits_clock;
    /* the last JSON stored in full, for references (lj_seq 0 = none) */
    char *lj;
    size_t lj_len, lj_cap;
    int64_t lj_seq, lj_job;
    /* a read transaction of our own (no batch open): around an iteration, or cache
     * look-ups; ended by any write, and by a look-up or tick once STORE_BATCH_MS old */
    bool rd_tx;
    uint64_t rd_start_ms;
    /* cache staging */
    stage_t stage;
    uint64_t last_merge_ms;
    /* last id -> num lookup */
    char last_id[STORE_ID_MAX];
    int64_t last_num;
    /* iteration in row order: seq of each row of a window of rows */
    bool iterating;
    int64_t it_num, it_lo, it_next;     /* it_next: first row of the next window, 0 = none */
    int64_t *it_map;
    size_t it_len, it_pos;
    /* packed JSON (see pack): one compressor, and one output buffer per reader so that
     * an iteration's row and a cache look-up do not overwrite each other */
    z_stream zd, zi;
    bool zd_ok, zi_ok;
    unsigned char *pk;
    size_t pk_cap;
    char *unpk[2];
    size_t unpk_cap[2];
    char err[STORE_ERR_MAX];
};

/* ---- store.c: errors, wall clock, statements, batches -------------------------------- */

/** Record an SQLite failure rc of `what` in st->err; MP_ERR_NOMEM or MP_ERR_IO. */
mp_status_t store_db_fail(store_t *st, int rc, const char *what);
/** Record "out of memory"; MP_ERR_NOMEM. */
mp_status_t store_nomem(store_t *st);
/** Wall-clock seconds, or the hook set by store_wall_set. */
int64_t store_wall_now(void);
/** sqlite3_exec q; on failure st->err is set. */
mp_status_t store_exec(store_t *st, const char *q);
/** The integer a one-row statement q returns, -1 on any failure. */
int64_t store_pragma_int(store_t *st, const char *q);
/** Prepared statement `which` (S_*), reset and with its bindings cleared. */
sqlite3_stmt *store_stmt(store_t *st, int which);
/** Bind text v (not copied) at i, NULL for NULL. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
/** Step a statement that returns no rows, and reset it; `what` names it in errors. */
mp_status_t store_stmt_run(store_t *st, sqlite3_stmt *s, const char *what);
/** Column i as text (NULL for NULL). */
const char *store_col_text(sqlite3_stmt *s, int i);
/** Open a batch (BEGIN IMMEDIATE) unless one is open, ending the read transaction, and
 *  take in what other connections committed. */
mp_status_t store_batch_begin(store_t *st);
/** Roll the open batch back (as if killed) and forget what the handle kept in memory. */
void store_batch_abort(store_t *st);
/** Start the shared read transaction unless a batch or one is open. */
void store_read_begin(store_t *st);
/** End the shared read transaction, if any. */
void store_read_end(store_t *st);
/** End the read transaction unless iterating: job metadata and bitmaps are read fresh. */
void store_read_fresh(store_t *st);

/* ---- schema.c ------------------------------------------------------------------------ */

/** Bring the schema to STORE_SCHEMA_VERSION in one write transaction, or refuse a file
 *  that is not a job store or is newer (st->err says why). */
mp_status_t store_schema_migrate(store_t *st);

/* ---- jobs.c -------------------------------------------------------------------------- */

/** Job number of id (the last one is remembered); MP_ERR_ARG for an unknown id. */
mp_status_t store_job_num(store_t *st, const char *id, int64_t *num);

/* ---- results.c: rows stored per job, the last JSON stored in full -------------------- */

/** Free a job's bitmap (the slot becomes free). */
void store_bits_free(jobbits_t *b);
/** Free every bitmap: they are read again when needed. */
void store_bits_drop_all(store_t *st);
/** The bitmap of job num, or NULL when not tracked. */
jobbits_t *store_bits_find(store_t *st, int64_t num);
/** Set a row; false when it was set already or memory ran out (*nomem). */
bool store_bits_set(jobbits_t *b, uint64_t row, bool *nomem);
/** The bitmap of job num, read from the index the first time (inside a batch). */
mp_status_t store_bits_for(store_t *st, int64_t num, jobbits_t **out);
/** Remember json (len bytes) as stored in full at row seq of job. */
void store_last_json_keep(store_t *st, const char *json, size_t len, int64_t seq, int64_t job);
/** True when json is the text remembered by store_last_json_keep. */
bool store_last_json_same(const store_t *st, const char *json, size_t len);

/* ---- pack.c -------------------------------------------------------------------------- */

/** Bind json (len bytes) packed at i; MP_ERR_LIMIT past 1 MiB. */
mp_status_t store_json_bind(store_t *st, sqlite3_stmt *s, int i, const char *json, size_t len);
/** Column i's JSON as text, unpacked into buffer which (0 or 1) when packed; NULL for
 *  NULL or for damage (*rc set). */
const char *store_json_col(store_t *st, sqlite3_stmt *s, int i, int which, mp_status_t *rc);

/* ---- cache.c ------------------------------------------------------------------------- */

/** Drop the staging index: it is read again from cache_log when needed. */
void store_stage_free(stage_t *sg);
/** Merge cache_log into the cache, in address order, in a transaction of its own. */
mp_status_t store_cache_merge(store_t *st);

#endif
