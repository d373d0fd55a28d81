/*
 * schema.c - the job store's schema: the migrations that build it, step by step, and
 * every SQL statement the store prepares at open (store_sql[], indexed by the S_* ids of
 * store_int.h), so that the tables and what reads and writes them are read in one place.
 *
 * Does not: open the file or set connection pragmas (store.c), or run the statements
 * (jobs.c, results.c, cache.c). The address history's table is not here: history.c
 * keeps its own schema and version in the same file.
 */
#include "store/store_int.h"

#include "util/str.h"

#include <stdio.h>

#define APP_ID 0x4d50524a /* "MPRJ" */

/* migrations[v] takes a store from user_version v to v + 1. Never edit a released one. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE jobs("
    " num INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " input_path TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " options TEXT NOT NULL,"
    " output_path TEXT,"
    " state TEXT NOT NULL CHECK(state IN ('queued','running','done','failed','interrupted')),"
    " message TEXT,"
    " total_rows INTEGER NOT NULL DEFAULT -1,"
    " done_rows INTEGER NOT NULL DEFAULT 0,"
    " n_deliverable INTEGER NOT NULL DEFAULT 0,"
    " n_undeliverable INTEGER NOT NULL DEFAULT 0,"
    " n_risky INTEGER NOT NULL DEFAULT 0,"
    " n_unknown INTEGER NOT NULL DEFAULT 0,"
    " n_error INTEGER NOT NULL DEFAULT 0,"
    " ckpt_row INTEGER NOT NULL DEFAULT 0,"
    " ckpt_offset INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_by_fingerprint ON jobs(fingerprint, options, created);"
    "CREATE TABLE results("
    " key INTEGER PRIMARY KEY," /* (job num << 32) | row_no */
    " job INTEGER GENERATED ALWAYS AS (key >> 32) VIRTUAL,"
    " row_no INTEGER GENERATED ALWAYS AS (key & 4294967295) VIRTUAL,"
    " address TEXT NOT NULL,"
    " row_error TEXT,"
    " verdict TEXT,"
    " reason TEXT,"
    " score INTEGER,"
    " result TEXT,"
    " checked_at INTEGER NOT NULL);"
    "CREATE TABLE cache("
    " address TEXT PRIMARY KEY,"
    " verdict TEXT,"
    " result TEXT NOT NULL,"
    " checked_at INTEGER NOT NULL);"
    "CREATE INDEX cache_by_age ON cache(checked_at);",

    /* 1 -> 2: results in arrival order, JSON shared by reference, the cache referring to
     * results instead of copying them, and its append-only staging log. */
    "CREATE TABLE results2("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT," /* arrival order: every insert appends */
    " job INTEGER NOT NULL,"
    " row_no INTEGER NOT NULL,"
    " address TEXT NOT NULL,"
    " row_error TEXT,"
    " verdict TEXT,"
    " reason TEXT,"
    " score INTEGER,"
    " result TEXT,"                           /* NULL when ref is set */
    " ref INTEGER,"                           /* seq of the row of this job holding the JSON */
    " checked_at INTEGER NOT NULL);"
    "INSERT INTO results2(job, row_no, address, row_error, verdict, reason, score, result,"
    " checked_at) SELECT key >> 32, key & 4294967295, address, row_error, verdict, reason,"
    " score, result, checked_at FROM results ORDER BY key;"
    "DROP TABLE results;"
    "ALTER TABLE results2 RENAME TO results;"
    "CREATE INDEX results_by_job ON results(job, seq, row_no);"
    "CREATE TABLE cache2("
    " address TEXT PRIMARY KEY,"
    " verdict TEXT,"
    " checked_at INTEGER NOT NULL,"
    " ref INTEGER,"                           /* results.seq holding the JSON, or NULL */
    " result TEXT"                            /* the JSON when ref is NULL */
    ") WITHOUT ROWID;"
    "INSERT INTO cache2(address, verdict, checked_at, result)"
    " SELECT address, verdict, checked_at, result FROM cache ORDER BY address;"
    "DROP TABLE cache;"
    "ALTER TABLE cache2 RENAME TO cache;"
    "CREATE INDEX cache_by_age ON cache(checked_at);"
    "CREATE TABLE cache_log("
    " seq INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL,"
    " verdict TEXT,"
    " checked_at INTEGER NOT NULL,"
    " ref INTEGER,"
    " result TEXT);",

    /* 2 -> 3: rows per reason kept with the job, so a status page does not count them */
    "CREATE TABLE job_reasons("
    " job INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"                  /* reason, else row error, else not_checked */
    " n INTEGER NOT NULL,"
    " PRIMARY KEY(job, reason)) WITHOUT ROWID;"
    "INSERT INTO job_reasons(job, reason, n)"
    " SELECT job, coalesce(reason, row_error, 'not_checked'), count(*) FROM results"
    " GROUP BY 1, 2;",
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

#define JOB_COLS "id, created, updated, input_path, fingerprint, options, output_path, state, " \
                 "message, total_rows, done_rows, n_deliverable, n_undeliverable, n_risky, " \
                 "n_unknown, n_error, ckpt_row, ckpt_offset"

const char *const store_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_JOB_NUM] = "SELECT num FROM jobs WHERE id = ?1",
    [S_JOB_INSERT] = "INSERT INTO jobs(id, created, updated, input_path, fingerprint, options,"
                     " output_path, state, total_rows) VALUES(?1, ?2, ?2, ?3, ?4, ?5, ?6,"
                     " 'queued', ?7)",
    [S_JOB_FIND] = "SELECT " JOB_COLS " FROM jobs WHERE fingerprint = ?1 AND options = ?2"
                   " ORDER BY created DESC, num DESC LIMIT 1",
    [S_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [S_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs ORDER BY created DESC, num DESC",
    [S_JOB_STATE] = "UPDATE jobs SET state = ?2, message = ?3, updated = ?4 WHERE id = ?1",
    [S_JOB_TOTAL] = "UPDATE jobs SET total_rows = ?2, updated = ?3 WHERE id = ?1",
    [S_JOB_CKPT] = "UPDATE jobs SET ckpt_row = ?2, ckpt_offset = ?3 WHERE id = ?1",
    [S_JOB_DELTA] = "UPDATE jobs SET done_rows = done_rows + ?2, n_deliverable = n_deliverable + ?3,"
                    " n_undeliverable = n_undeliverable + ?4, n_risky = n_risky + ?5,"
                    " n_unknown = n_unknown + ?6, n_error = n_error + ?7, updated = ?8"
                    " WHERE num = ?1",
    [S_JOB_DEL] = "DELETE FROM jobs WHERE num = ?1",
    [S_JOB_DEL_RESULTS] = "DELETE FROM results WHERE job = ?1",
    [S_JOB_REASON_ADD] = "INSERT INTO job_reasons(job, reason, n) VALUES(?1, ?2, ?3)"
                         " ON CONFLICT(job, reason) DO UPDATE SET n = n + excluded.n",
    [S_JOB_REASONS] = "SELECT reason, n FROM job_reasons WHERE job = ?1 ORDER BY n DESC, reason",
    [S_JOB_DEL_REASONS] = "DELETE FROM job_reasons WHERE job = ?1",
    /* cache entries that refer to a job's results go with it: a deleted job's data is
     * gone (and copying them made a delete grow the file by a copy of every result) */
    [S_JOB_UNREF_CACHE] = "DELETE FROM cache WHERE ref IN (SELECT seq FROM results"
                          " WHERE job = ?1)",
    [S_JOB_UNREF_LOG] = "DELETE FROM cache_log WHERE ref IN (SELECT seq FROM results"
                        " WHERE job = ?1)",
    [S_RES_PUT] = "INSERT INTO results(job, row_no, address, row_error, verdict, reason, score,"
                  " result, ref, checked_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_RES_ROWS] = "SELECT row_no, seq FROM results WHERE job = ?1 AND row_no >= ?2",
    [S_RES_NEW] = "SELECT job, row_no FROM results WHERE seq > ?1",
    [S_RES_MAXSEQ] = "SELECT coalesce(max(seq), 0) FROM results",
    [S_RES_GET] = "SELECT r.row_no, r.address, r.row_error, r.verdict, r.reason, r.score,"
                  " coalesce(r.result, b.result), r.checked_at"
                  " FROM results r LEFT JOIN results b ON b.seq = r.ref WHERE r.seq = ?1",
    [S_CACHE_GET] = "SELECT c.verdict, c.checked_at, coalesce(c.result, r.result), c.ref, r.job"
                    " FROM cache c LEFT JOIN results r ON r.seq = c.ref WHERE c.address = ?1",
    [S_CACHE_PRUNE] = "DELETE FROM cache WHERE checked_at < ?1",
    [S_LOG_PUT] = "INSERT INTO cache_log(address, verdict, checked_at, ref, result)"
                  " VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_LOG_GET] = "SELECT l.address, l.verdict, l.checked_at, coalesce(l.result, r.result),"
                  " l.ref, r.job FROM cache_log l LEFT JOIN results r ON r.seq = l.ref"
                  " WHERE l.seq = ?1",
    [S_LOG_ALL] = "SELECT seq, address FROM cache_log",
    /* in address order, so that the cache's B-tree takes the entries page after page;
     * within one address the newest comes last and wins */
    [S_LOG_MERGE] = "INSERT INTO cache(address, verdict, checked_at, ref, result)"
                    " SELECT address, verdict, checked_at, ref, result FROM cache_log WHERE true"
                    " ORDER BY address, checked_at, seq"
                    " ON CONFLICT(address) DO UPDATE SET verdict = excluded.verdict,"
                    " checked_at = excluded.checked_at, ref = excluded.ref,"
                    " result = excluded.result WHERE excluded.checked_at >= cache.checked_at",
    [S_LOG_CLEAR] = "DELETE FROM cache_log",
};

/* Bring the schema to STORE_SCHEMA_VERSION, inside one write transaction (so two
 * processes opening a new store at once do not both migrate). */
mp_status_t store_schema_migrate(store_t *st)
{
    mp_status_t rc = store_exec(st, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    int64_t app = store_pragma_int(st, "PRAGMA application_id");
    int64_t ver = store_pragma_int(st, "PRAGMA user_version");
    int64_t ntab = store_pragma_int(st, "SELECT count(*) FROM sqlite_master");
    if (app < 0 || ver < 0 || ntab < 0) {
        rc = store_db_fail(st, sqlite3_errcode(st->db), "reading the schema");
        goto fail;
    }
    if ((app != 0 && app != APP_ID) || (app == 0 && ntab > 0)) {
        mp_err_set(st->err, sizeof st->err, "%s: not a mailprobe job store", st->path);
        rc = MP_ERR_IO;
        goto fail;
    }
    if (ver > STORE_SCHEMA_VERSION) {
        mp_err_set(st->err, sizeof st->err,
                "%s: written by a newer mailprobe (schema %lld, this one knows %d)", st->path,
                (long long)ver, STORE_SCHEMA_VERSION);
        rc = MP_ERR_IO;
        goto fail;
    }
    for (int64_t v = ver; v < STORE_SCHEMA_VERSION && (size_t)v < NMIGRATIONS; v++) {
        if ((rc = store_exec(st, migrations[v])) != MP_OK)
            goto fail;
        char q[64];
        snprintf(q, sizeof q, "PRAGMA user_version = %lld", (long long)v + 1);
        if ((rc = store_exec(st, q)) != MP_OK)
            goto fail;
    }
    if (app == 0) {
        char q[64];
        snprintf(q, sizeof q, "PRAGMA application_id = %d", APP_ID);
        if ((rc = store_exec(st, q)) != MP_OK)
            goto fail;
    }
    if ((rc = store_exec(st, "COMMIT")) != MP_OK)
        goto fail;
    st->version = STORE_SCHEMA_VERSION;
    return MP_OK;
fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
