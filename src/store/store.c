/*
 * store.c - the job store's handle: open and close, errors, the wall clock, the
 * statement helpers, and the batch that every write goes into; see store.h and
 * docs/internals/store.md.
 *
 * Writes of results and cache entries go into one open transaction (BEGIN IMMEDIATE at
 * the first write of a batch) that store_flush() commits, together with the per-job
 * counter deltas gathered in memory. Job metadata changes commit any batch first and then
 * run on their own, so a state change is durable when the call returns. Reads outside a
 * batch share one read transaction. Also here: where the store's file lives by default,
 * and whether its file system has room for a job.
 *
 * Does not: hold the schema or the SQL (schema.c), or know jobs (jobs.c), results and the
 * rows stored per job (results.c), the address cache (cache.c) or packed JSON (pack.c).
 * Does not interpret results, read input rows, or share a connection between threads.
 */
#include "store/store_int.h"

#include "util/clock.h"
#include "util/str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define BUSY_MS 5000
#define CACHE_PAGES_KIB 16384               /* SQLite page cache: 16 MiB */
#define WAL_CKPT_PAGES 4096                 /* checkpoint when the WAL reaches 16 MiB */
#define WAL_KEEP_BYTES (64 << 20)           /* a checkpointed WAL is cut back to this */

/* ---- errors and the wall clock ----------------------------------------------------- */

static store_wall_fn wall_fn;
static void *wall_arg;

void store_wall_set(store_wall_fn fn, void *arg)
{
    wall_fn = fn;
    wall_arg = arg;
}

int64_t store_wall_now(void)
{
    return wall_fn ? wall_fn(wall_arg) : mp_wall_s();
}

/* Record an SQLite failure and map it to a status. */
#define DAMAGED " is damaged: "

mp_status_t store_db_fail(store_t *st, int rc, const char *what)
{
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
        mp_err_set(st->err, sizeof st->err, "%s" DAMAGED "%s (%s)", st->path, msg, what);
    else if ((rc & 0xff) == SQLITE_FULL)
        mp_err_set(st->err, sizeof st->err, "%s: %s: the disk is full", st->path, what);
    else
        mp_err_set(st->err, sizeof st->err, "%s: %s: %s", st->path, what, msg);
    return (rc & 0xff) == SQLITE_NOMEM ? MP_ERR_NOMEM : MP_ERR_IO;
}

bool store_err_damaged(const char *err)
{
    return err && strstr(err, DAMAGED) != NULL;
}

mp_status_t store_nomem(store_t *st)
{
    mp_err_set(st->err, sizeof st->err, "%s: out of memory", st->path);
    return MP_ERR_NOMEM;
}

/* ---- where the file lives ---------------------------------------------------------- */

static mp_status_t mkdir_p(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, mode);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return MP_ERR_IO;
    }
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return MP_ERR_IO;
    return MP_OK;
}

/* "<base>/<sub>" into out; false when too long. */
static bool path_join(char *out, size_t size, const char *base, const char *sub)
{
    size_t pos = 0;
    return mp_appendf(out, size, &pos, "%s%s", base, sub);
}

static mp_status_t default_path(char *out, size_t size, bool create)
{
    /* systemd's StateDirectory= (a colon-separated list: the first is ours), then XDG */
    const char *sd = getenv("STATE_DIRECTORY");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[1024];
    bool ok;
    if (sd && sd[0] == '/') {
        size_t n = strcspn(sd, ":");
        ok = n < sizeof dir;
        if (ok)
            mp_strlcpyn(dir, sd, n, sizeof dir);
    } else if (xdg && xdg[0] == '/') {
        ok = path_join(dir, sizeof dir, xdg, "/mailprobe");
    } else if (home && *home) {
        ok = path_join(dir, sizeof dir, home, "/.local/state/mailprobe");
    } else {
        return MP_ERR_ARG;
    }
    if (!ok || !path_join(out, size, dir, "/jobs.sqlite"))
        return MP_ERR_LIMIT;
    /* Before 0.2 the store lived under XDG_DATA_HOME: keep using one found there (and
     * none at the new place), so nobody's jobs disappear on upgrade. */
    struct stat sb;
    if (!(sd && sd[0] == '/') && stat(out, &sb) != 0) {
        const char *data = getenv("XDG_DATA_HOME");
        char old[1024];
        if ((data && data[0] == '/' &&
             path_join(old, sizeof old, data, "/mailprobe/jobs.sqlite")) ||
            (home && *home &&
             path_join(old, sizeof old, home, "/.local/share/mailprobe/jobs.sqlite"))) {
            if (stat(old, &sb) == 0 && S_ISREG(sb.st_mode))
                return mp_strlcpy(out, old, size) < size ? MP_OK : MP_ERR_LIMIT;
        }
    }
    if (create && mkdir_p(dir, 0700))
        return MP_ERR_IO;
    return MP_OK;
}

mp_status_t store_default_path(char *out, size_t size)
{
    return default_path(out, size, true);
}

mp_status_t store_default_path_peek(char *out, size_t size)
{
    return default_path(out, size, false);
}

/* ---- open / close ------------------------------------------------------------------ */

mp_status_t store_exec(store_t *st, const char *q)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, q, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        mp_err_set(st->err, sizeof st->err, "%s: %s", st->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return (rc & 0xff) == SQLITE_NOMEM ? MP_ERR_NOMEM : MP_ERR_IO;
    }
    return MP_OK;
}

int64_t store_pragma_int(store_t *st, const char *q)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(st->db, q, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

mp_status_t store_open(const char *path, store_t **out, char *err, size_t errsize)
{
    mp_status_t rc = MP_ERR_NOMEM;
    *out = NULL;
    if (err && errsize)
        err[0] = '\0';
    store_t *st = calloc(1, sizeof *st);
    if (!st) {
        mp_err_set(err, errsize, "out of memory");
        return MP_ERR_NOMEM;
    }
    mp_strlcpy(st->path, path, sizeof st->path);
    st->batch_rows = STORE_BATCH_ROWS;
    st->batch_ms = STORE_BATCH_MS;
    st->data_version = -1;
    st->last_merge_ms = mp_now_ms();
    int src = sqlite3_open_v2(path, &st->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                              NULL);
    if (src != SQLITE_OK) {
        rc = store_db_fail(st, src, "cannot open the job store");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, BUSY_MS);
    sqlite3_extended_result_codes(st->db, 1);
    /* WAL: readers (mailprobe jobs) never block the writer; NORMAL: a commit is not
     * fsync'd until checkpoint, so a power cut may lose the last batches but never
     * corrupts; a killed process loses nothing committed. */
    /* a new file frees the pages of deleted jobs at the end of the file, for
     * store_job_delete to give back (it must be set before the first table) */
    if (store_pragma_int(st, "PRAGMA page_count") == 0 &&
        (rc = store_exec(st, "PRAGMA auto_vacuum=INCREMENTAL")) != MP_OK)
        goto fail;
    sqlite3_stmt *s = NULL;
    const unsigned char *mode = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        mode = sqlite3_column_text(s, 0);
    bool wal = mode && strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        rc = store_db_fail(st, sqlite3_errcode(st->db), "cannot open the job store (WAL mode)");
        goto fail;
    }
    /* A page cache that holds a batch's pages and the upper B-tree levels; checkpoints
     * (two fsyncs each) every 16 MiB of WAL instead of 4. Neither is stored in the file. */
    char q[160];
    snprintf(q, sizeof q, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-%d;"
             " PRAGMA wal_autocheckpoint=%d; PRAGMA journal_size_limit=%d", CACHE_PAGES_KIB,
             WAL_CKPT_PAGES, WAL_KEEP_BYTES);
    if ((rc = store_exec(st, q)) != MP_OK)
        goto fail;
    if ((rc = store_schema_migrate(st)) != MP_OK)
        goto fail;
    for (int i = 0; i < S__COUNT; i++) {
        src = sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->s[i],
                                 NULL);
        if (src != SQLITE_OK) {
            rc = store_db_fail(st, src, "preparing statements");
            goto fail;
        }
    }
    *out = st;
    return MP_OK;
fail:
    mp_err_set(err, errsize, "%s", st->err[0] ? st->err : "cannot open the job store");
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st->s[i]);
    sqlite3_close(st->db);
    free(st);
    return rc;
}

mp_status_t store_close(store_t *st)
{
    if (!st)
        return MP_OK;
    if (st->iterating)
        store_results_close(st);
    mp_status_t rc = store_flush(st);
    mp_status_t rc2 = store_cache_merge(st);
    if (!rc)
        rc = rc2;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st->s[i]);
    sqlite3_close(st->db);
    store_bits_drop_all(st);
    store_stage_free(&st->stage);
    free(st->lj);
    free(st->it_map);
    if (st->zd_ok)
        deflateEnd(&st->zd);
    if (st->zi_ok)
        inflateEnd(&st->zi);
    free(st->pk);
    free(st->unpk[0]);
    free(st->unpk[1]);
    free(st);
    return rc;
}

const char *store_errmsg(const store_t *st)
{
    return st->err;
}

int store_schema_version(const store_t *st)
{
    return st->version;
}

void store_set_batch(store_t *st, unsigned rows, unsigned ms)
{
    st->batch_rows = rows ? rows : STORE_BATCH_ROWS;
    st->batch_ms = ms ? ms : STORE_BATCH_MS;
}

/* ---- statements -------------------------------------------------------------------- */

sqlite3_stmt *store_stmt(store_t *st, int which)
{
    sqlite3_stmt *s = st->s[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Step a statement that returns no rows. */
mp_status_t store_stmt_run(store_t *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store_db_fail(st, rc, what);
    return MP_OK;
}

/* One integer from a one-row statement. */
static mp_status_t one_int(store_t *st, sqlite3_stmt *s, int64_t *v, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? MP_OK : store_db_fail(st, rc, what);
}

const char *store_col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* ---- batches ----------------------------------------------------------------------- */

/* What this handle remembers about the file may be wrong after a rollback: forget it.
 * The staging index is read again from cache_log when next needed. */
static void forget(store_t *st)
{
    store_bits_drop_all(st);
    st->lj_seq = 0;
    st->last_id[0] = '\0';
    store_stage_free(&st->stage);
}

/* Called at the start of each batch, holding the write lock: if another connection
 * committed since our last look, take its new results into our bitmaps. */
static mp_status_t see_others(store_t *st)
{
    int64_t dv = 0;
    mp_status_t rc = one_int(st, store_stmt(st, S_DATA_VERSION), &dv, "reading the data version");
    if (rc || dv == st->data_version)
        return rc;
    st->data_version = dv;
    st->last_id[0] = '\0'; /* a job may have been deleted */
    st->lj_seq = 0;
    bool tracking = false;
    for (size_t i = 0; i < MAX_JOBBITS; i++)
        tracking |= st->bits[i].num != 0;
    if (tracking) {
        sqlite3_stmt *s = store_stmt(st, S_RES_NEW);
        sqlite3_bind_int64(s, 1, st->seen_seq);
        int src;
        bool nomem = false;
        while ((src = sqlite3_step(s)) == SQLITE_ROW) {
            jobbits_t *b = store_bits_find(st, sqlite3_column_int64(s, 0));
            int64_t row = sqlite3_column_int64(s, 1);
            if (b && row >= 0 && row <= (int64_t)UINT32_MAX)
                store_bits_set(b, (uint64_t)row, &nomem);
        }
        sqlite3_reset(s);
        if (nomem || src != SQLITE_DONE) {
            store_bits_drop_all(st); /* read again when needed */
            if (src != SQLITE_DONE)
                return store_db_fail(st, src, "reading new results");
        }
    }
    return one_int(st, store_stmt(st, S_RES_MAXSEQ), &st->seen_seq, "reading new results");
}

/* Give up the open batch (as if killed); its rows will be checked again on resume. */
void store_batch_abort(store_t *st)
{
    if (st->in_tx) {
        sqlite3_step(store_stmt(st, S_ROLLBACK));
        sqlite3_reset(st->s[S_ROLLBACK]);
    }
    st->in_tx = false;
    st->pending = 0;
    st->ndelta = 0;
    forget(st);
}

/* Reads outside a batch share one read transaction: a statement outside any
 * transaction takes and drops the file locks (fcntl, 4 system calls) every time. */
void store_read_begin(store_t *st)
{
    if (st->in_tx || st->rd_tx)
        return;
    st->rd_tx = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    st->rd_start_ms = mp_now_ms();
}

/* End it: before writing, and when it grows old, so that this handle sees what others
 * commit and does not hold back their checkpoints. An iteration goes on without it. */
void store_read_end(store_t *st)
{
    if (st->rd_tx) {
        st->rd_tx = false;
        sqlite3_reset(st->s[S_RES_GET]);
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    }
}

mp_status_t store_batch_begin(store_t *st)
{
    if (st->in_tx)
        return MP_OK;
    store_read_end(st);
    mp_status_t rc = store_stmt_run(st, store_stmt(st, S_BEGIN), "starting a batch");
    if (rc)
        return rc;
    st->in_tx = true;
    st->pending = 0;
    st->tx_start_ms = mp_now_ms();
    if ((rc = see_others(st)) != MP_OK)
        store_batch_abort(st);
    return rc;
}

mp_status_t store_flush(store_t *st)
{
    mp_status_t rc = MP_OK;
    store_read_end(st);
    if (!st->in_tx)
        return MP_OK;
    int64_t now = store_wall_now();
    for (size_t i = 0; i < st->ndelta && !rc; i++) {
        sqlite3_stmt *s = store_stmt(st, S_JOB_DELTA);
        sqlite3_bind_int64(s, 1, st->delta[i].num);
        for (int k = 0; k < 6; k++)
            sqlite3_bind_int64(s, 2 + k, st->delta[i].d[k]);
        sqlite3_bind_int64(s, 8, now);
        rc = store_stmt_run(st, s, "updating job progress");
        for (size_t k = 0; k < st->delta[i].nr && !rc; k++) {
            s = store_stmt(st, S_JOB_REASON_ADD);
            sqlite3_bind_int64(s, 1, st->delta[i].num);
            store_bind_text(s, 2, st->delta[i].r[k].name);
            sqlite3_bind_int64(s, 3, st->delta[i].r[k].n);
            rc = store_stmt_run(st, s, "updating job reasons");
        }
    }
    if (!rc)
        rc = store_stmt_run(st, store_stmt(st, S_COMMIT), "committing");
    if (rc) {
        store_batch_abort(st);
        return rc;
    }
    st->in_tx = false;
    st->pending = 0;
    st->ndelta = 0;
    return MP_OK;
}

/* Job metadata and bitmaps are read fresh, not from a look-up's snapshot. */
void store_read_fresh(store_t *st)
{
    if (st->rd_tx && !st->iterating)
        store_read_end(st);
}

mp_status_t store_tick(store_t *st)
{
    if (st->rd_tx && !st->iterating && mp_now_ms() - st->rd_start_ms >= st->batch_ms)
        store_read_end(st);
    if (st->in_tx && (st->pending >= st->batch_rows || mp_now_ms() - st->tx_start_ms >= st->batch_ms)) {
        mp_status_t rc = store_flush(st);
        if (rc)
            return rc;
    }
    if (st->stage.n && mp_now_ms() - st->last_merge_ms >= STORE_CACHE_MERGE_MS)
        return store_cache_merge(st);
    return MP_OK;
}

/* ---- room on disk, job locks ---------------------------------------------------------- */

/* The directory holding the store's file (for statvfs and the lock files). */
static void store_dir(const store_t *st, char *out, size_t size)
{
    mp_strlcpy(out, st->path, size);
    char *slash = strrchr(out, '/');
    if (!slash)
        mp_strlcpy(out, ".", size);
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

mp_status_t store_space_check(store_t *st, int64_t rows, uint64_t extra_bytes)
{
    char dir[sizeof st->path];
    store_dir(st, dir, sizeof dir);
    struct statvfs vs;
    if (statvfs(dir, &vs) != 0)
        return MP_OK; /* cannot tell: SQLite will say when the disk is full */
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
    uint64_t total = (uint64_t)vs.f_blocks * vs.f_frsize;
    uint64_t reserve = total / 20 < STORE_FREE_RESERVE ? total / 20 : STORE_FREE_RESERVE;
    uint64_t need = (uint64_t)(rows > 0 ? rows : 0) * STORE_ROW_BUDGET + extra_bytes;
    if (avail >= need + reserve)
        return MP_OK;
    mp_err_set(st->err, sizeof st->err,
            "not enough room for the job: %lld rows need about %.1f MB in the job store "
            "(%u bytes a row) and %s has %.1f MB free, of which %.1f MB stay free",
            (long long)rows, (double)need / 1e6, STORE_ROW_BUDGET, dir, (double)avail / 1e6,
            (double)reserve / 1e6);
    return MP_ERR_LIMIT;
}
