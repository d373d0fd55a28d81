/*
 * store.c - the SQLite job store; see store.h and docs/internals/store.md.
 *
 * Every statement is prepared once at open (persistent). Writes of results and cache
 * entries go into one open transaction (BEGIN IMMEDIATE at the first write of a batch)
 * that store_flush() commits, together with the per-job counter deltas gathered in
 * memory. Job metadata changes commit any batch first and then run on their own, so a
 * state change is durable when the call returns.
 *
 * Every write of a batch is an append. Results are stored in arrival order (an
 * AUTOINCREMENT key): the engine finishes rows in domain order, not row order, and a
 * B-tree keyed by row would take each batch's rows on as many random pages, rewritten
 * whole into the WAL at every commit (26 KB written per row at a million rows). The row
 * order is rebuilt when reading, from the (job, seq, row_no) index. "First put wins" is
 * kept by a bitmap of stored rows per job in memory instead of a unique index. A result
 * whose JSON is the same text as the previous one of its job refers to it (ref) instead
 * of copying it. Cache entries are appended to cache_log, found through a hash index in
 * memory, and merged into the cache in address order from time to time (cache_merge).
 *
 * Does not: interpret results, read input rows, or share a connection between threads.
 */
#include "store/store.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/str.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#define APP_ID 0x4d50524a /* "MPRJ" */
#define BUSY_MS 5000
#define MAX_DELTA_JOBS 8
#define MAX_JOBBITS 4                       /* jobs whose stored rows are tracked at once */
#define BITS_SHIFT 19                       /* rows per bitmap block: 2^19 (64 KiB) */
#define BITS_NBLOCKS ((UINT32_MAX >> BITS_SHIFT) + 1)
#define WINDOW_ROWS ((int64_t)1 << 20)      /* rows ordered at once when iterating (8 MiB) */
#define CACHE_PAGES_KIB 16384               /* SQLite page cache: 16 MiB */
#define WAL_CKPT_PAGES 4096                 /* checkpoint when the WAL reaches 16 MiB */
#define WAL_KEEP_BYTES (64 << 20)           /* a checkpointed WAL is cut back to this */
#define JSON_MAX (1u << 20)                 /* a stored result's JSON, uncompressed */
#define PACK_V1 0x01                        /* packed JSON: deflate with zdict_v1 */

/* ---- schema and migrations ---------------------------------------------------------- */

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

enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_DATA_VERSION,
    S_JOB_NUM, S_JOB_INSERT, S_JOB_FIND, S_JOB_GET, S_JOB_LIST, S_JOB_STATE, S_JOB_TOTAL,
    S_JOB_CKPT, S_JOB_DELTA, S_JOB_DEL, S_JOB_DEL_RESULTS, S_JOB_UNREF_CACHE, S_JOB_UNREF_LOG,
    S_JOB_REASON_ADD, S_JOB_REASONS, S_JOB_DEL_REASONS,
    S_RES_PUT, S_RES_ROWS, S_RES_NEW, S_RES_MAXSEQ, S_RES_GET,
    S_CACHE_GET, S_CACHE_PRUNE, S_LOG_PUT, S_LOG_GET, S_LOG_ALL, S_LOG_MERGE, S_LOG_CLEAR,
    S__COUNT
};

#define JOB_COLS "id, created, updated, input_path, fingerprint, options, output_path, state, " \
                 "message, total_rows, done_rows, n_deliverable, n_undeliverable, n_risky, " \
                 "n_unknown, n_error, ckpt_row, ckpt_offset"

static const char *const sql[S__COUNT] = {
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

static store_wall_fn wall_fn;
static void *wall_arg;

void store_wall_set(store_wall_fn fn, void *arg)
{
    wall_fn = fn;
    wall_arg = arg;
}

static int64_t wall_now(void)
{
    return wall_fn ? wall_fn(wall_arg) : mp_wall_s();
}

static void set_err(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *dst, size_t size, const char *fmt, ...)
{
    if (!dst || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

/* Record an SQLite failure and map it to a status. */
#define DAMAGED " is damaged: "

static mp_status_t db_fail(store_t *st, int rc, const char *what)
{
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
        set_err(st->err, sizeof st->err, "%s" DAMAGED "%s (%s)", st->path, msg, what);
    else if ((rc & 0xff) == SQLITE_FULL)
        set_err(st->err, sizeof st->err, "%s: %s: the disk is full", st->path, what);
    else
        set_err(st->err, sizeof st->err, "%s: %s: %s", st->path, what, msg);
    return (rc & 0xff) == SQLITE_NOMEM ? MP_ERR_NOMEM : MP_ERR_IO;
}

bool store_err_damaged(const char *err)
{
    return err && strstr(err, DAMAGED) != NULL;
}

static mp_status_t no_memory(store_t *st)
{
    set_err(st->err, sizeof st->err, "%s: out of memory", st->path);
    return MP_ERR_NOMEM;
}

const char *store_job_state_name(store_job_state_t s)
{
    switch (s) {
    case STORE_JOB_QUEUED: return "queued";
    case STORE_JOB_RUNNING: return "running";
    case STORE_JOB_DONE: return "done";
    case STORE_JOB_FAILED: return "failed";
    case STORE_JOB_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

static store_job_state_t state_parse(const char *s)
{
    for (int i = STORE_JOB_QUEUED; i <= STORE_JOB_INTERRUPTED; i++)
        if (s && strcmp(s, store_job_state_name((store_job_state_t)i)) == 0)
            return (store_job_state_t)i;
    return STORE_JOB_FAILED;
}

/* ---- paths and fingerprints --------------------------------------------------------- */

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

mp_status_t store_default_path(char *out, size_t size)
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
    if (mkdir_p(dir, 0700))
        return MP_ERR_IO;
    return MP_OK;
}

mp_status_t store_fingerprint(const char *path, char *out, size_t size, char *err, size_t errsize)
{
    struct stat sb;
    unsigned char *head = NULL, md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    mp_status_t st = MP_ERR_IO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        set_err(err, errsize, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        set_err(err, errsize, "%s: not a regular file: it cannot be resumed", path);
        st = MP_ERR_ARG;
        goto done;
    }
    head = malloc(STORE_FP_HEAD);
    if (!head) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    size_t n = 0;
    while (n < STORE_FP_HEAD) {
        ssize_t k = read(fd, head + n, STORE_FP_HEAD - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            set_err(err, errsize, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    if (!EVP_Digest(head, n, md, &mdlen, EVP_sha256(), NULL)) {
        set_err(err, errsize, "sha256 failed");
        st = MP_ERR_INTERNAL;
        goto done;
    }
    size_t pos = 0;
    bool ok = mp_appendf(out, size, &pos, "v1:%lld:%lld%09ld:", (long long)sb.st_size,
                         (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
    for (unsigned i = 0; ok && i < mdlen; i++)
        ok = mp_appendf(out, size, &pos, "%02x", md[i]);
    st = ok ? MP_OK : MP_ERR_LIMIT;
done:
    if (fd >= 0)
        close(fd);
    free(head);
    return st;
}

/* ---- open / close ------------------------------------------------------------------- */

static mp_status_t exec(store_t *st, const char *q)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, q, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err(st->err, sizeof st->err, "%s: %s", st->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return (rc & 0xff) == SQLITE_NOMEM ? MP_ERR_NOMEM : MP_ERR_IO;
    }
    return MP_OK;
}

static int64_t pragma_int(store_t *st, const char *q)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(st->db, q, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Bring the schema to STORE_SCHEMA_VERSION, inside one write transaction (so two
 * processes opening a new store at once do not both migrate). */
static mp_status_t migrate(store_t *st)
{
    mp_status_t rc = exec(st, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    int64_t app = pragma_int(st, "PRAGMA application_id");
    int64_t ver = pragma_int(st, "PRAGMA user_version");
    int64_t ntab = pragma_int(st, "SELECT count(*) FROM sqlite_master");
    if (app < 0 || ver < 0 || ntab < 0) {
        rc = db_fail(st, sqlite3_errcode(st->db), "reading the schema");
        goto fail;
    }
    if ((app != 0 && app != APP_ID) || (app == 0 && ntab > 0)) {
        set_err(st->err, sizeof st->err, "%s: not a mailprobe job store", st->path);
        rc = MP_ERR_IO;
        goto fail;
    }
    if (ver > STORE_SCHEMA_VERSION) {
        set_err(st->err, sizeof st->err,
                "%s: written by a newer mailprobe (schema %lld, this one knows %d)", st->path,
                (long long)ver, STORE_SCHEMA_VERSION);
        rc = MP_ERR_IO;
        goto fail;
    }
    for (int64_t v = ver; v < STORE_SCHEMA_VERSION && (size_t)v < NMIGRATIONS; v++) {
        if ((rc = exec(st, migrations[v])) != MP_OK)
            goto fail;
        char q[64];
        snprintf(q, sizeof q, "PRAGMA user_version = %lld", (long long)v + 1);
        if ((rc = exec(st, q)) != MP_OK)
            goto fail;
    }
    if (app == 0) {
        char q[64];
        snprintf(q, sizeof q, "PRAGMA application_id = %d", APP_ID);
        if ((rc = exec(st, q)) != MP_OK)
            goto fail;
    }
    if ((rc = exec(st, "COMMIT")) != MP_OK)
        goto fail;
    st->version = STORE_SCHEMA_VERSION;
    return MP_OK;
fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

mp_status_t store_open(const char *path, store_t **out, char *err, size_t errsize)
{
    mp_status_t rc = MP_ERR_NOMEM;
    *out = NULL;
    if (err && errsize)
        err[0] = '\0';
    store_t *st = calloc(1, sizeof *st);
    if (!st) {
        set_err(err, errsize, "out of memory");
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
        rc = db_fail(st, src, "cannot open the job store");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, BUSY_MS);
    sqlite3_extended_result_codes(st->db, 1);
    /* WAL: readers (mailprobe jobs) never block the writer; NORMAL: a commit is not
     * fsync'd until checkpoint, so a power cut may lose the last batches but never
     * corrupts; a killed process loses nothing committed. */
    /* a new file frees the pages of deleted jobs at the end of the file, for
     * store_job_delete to give back (it must be set before the first table) */
    if (pragma_int(st, "PRAGMA page_count") == 0 &&
        (rc = exec(st, "PRAGMA auto_vacuum=INCREMENTAL")) != MP_OK)
        goto fail;
    sqlite3_stmt *s = NULL;
    const unsigned char *mode = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        mode = sqlite3_column_text(s, 0);
    bool wal = mode && strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        rc = db_fail(st, sqlite3_errcode(st->db), "cannot open the job store (WAL mode)");
        goto fail;
    }
    /* A page cache that holds a batch's pages and the upper B-tree levels; checkpoints
     * (two fsyncs each) every 16 MiB of WAL instead of 4. Neither is stored in the file. */
    char q[160];
    snprintf(q, sizeof q, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-%d;"
             " PRAGMA wal_autocheckpoint=%d; PRAGMA journal_size_limit=%d", CACHE_PAGES_KIB,
             WAL_CKPT_PAGES, WAL_KEEP_BYTES);
    if ((rc = exec(st, q)) != MP_OK)
        goto fail;
    if ((rc = migrate(st)) != MP_OK)
        goto fail;
    for (int i = 0; i < S__COUNT; i++) {
        src = sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->s[i], NULL);
        if (src != SQLITE_OK) {
            rc = db_fail(st, src, "preparing statements");
            goto fail;
        }
    }
    *out = st;
    return MP_OK;
fail:
    set_err(err, errsize, "%s", st->err[0] ? st->err : "cannot open the job store");
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st->s[i]);
    sqlite3_close(st->db);
    free(st);
    return rc;
}

static void bits_drop_all(store_t *st);
static void stage_free(stage_t *sg);
static mp_status_t cache_merge(store_t *st);

mp_status_t store_close(store_t *st)
{
    if (!st)
        return MP_OK;
    if (st->iterating)
        store_results_close(st);
    mp_status_t rc = store_flush(st);
    mp_status_t rc2 = cache_merge(st);
    if (!rc)
        rc = rc2;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st->s[i]);
    sqlite3_close(st->db);
    bits_drop_all(st);
    stage_free(&st->stage);
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

/* ---- statements --------------------------------------------------------------------- */

static sqlite3_stmt *stmt(store_t *st, int which)
{
    sqlite3_stmt *s = st->s[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Step a statement that returns no rows. */
static mp_status_t run(store_t *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(st, rc, what);
    return MP_OK;
}

/* Job number for an id (cached for the last id). */
static mp_status_t job_num(store_t *st, const char *id, int64_t *num)
{
    if (!id || !*id) {
        set_err(st->err, sizeof st->err, "no job id");
        return MP_ERR_ARG;
    }
    if (st->last_id[0] && strcmp(st->last_id, id) == 0) {
        *num = st->last_num;
        return MP_OK;
    }
    sqlite3_stmt *s = stmt(st, S_JOB_NUM);
    bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *num = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        mp_strlcpy(st->last_id, id, sizeof st->last_id);
        st->last_num = *num;
        return MP_OK;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(st, rc, "looking up a job");
    set_err(st->err, sizeof st->err, "%s: no job %s", st->path, id);
    return MP_ERR_ARG;
}

/* One integer from a one-row statement. */
static mp_status_t one_int(store_t *st, sqlite3_stmt *s, int64_t *v, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? MP_OK : db_fail(st, rc, what);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* ---- packed JSON ---------------------------------------------------------------------
 *
 * A result's JSON is stored as a BLOB: PACK_V1, its length (4 bytes, little-endian) and
 * raw deflate with a preset dictionary, the text results share (keys, verdicts, common
 * reasons and values). A 1.2 KB result packs to ~200 bytes; without the dictionary
 * deflate saves half. Rows written before are TEXT and read as they are. The dictionary
 * of PACK_V1 never changes: a better one is PACK_V2, read beside it. */
static const char zdict_v1[] =
    "\"mx_geo\":null},\"flags\":{\"disposable\":false,\"free\":false,\"role\":false,"
    "\"gibberish\":false,\"gibberish_score\":0.0},\"suggestion\":null,\"list_match\":null,"
    "\"duration_ms\":\"tls\":false,\"tls_verified\":false,\"attempts\":1,\"round_trips\":"
    "\"smtp\":{\"result\":\"not_checked\",\"code\":null,\"enhanced\":null,\"message\":null,"
    "\"stage\":null,\"rule\":null,\"catch_all\":null,\"probe\":null,\"mx_host\":null,"
    "\"mx_ip\":null,\"domain\":{\"exists\":false,\"mx\":[],\"null_mx\":false,"
    "\"implicit_mx\":false,\"spf\":false,\"dmarc\":false,\"provider\":null,\"gateway\":false},"
    "\"reason\":\"no_such_domain\",\"reason_text\":\"the domain does not exist\","
    "\"reason\":\"no_mail_server\",\"reason_text\":\"the domain has no mail server\","
    "\"reason\":\"invalid_syntax\",\"verdict\":\"unknown\",\"reason\":\"timeout\","
    "\"reason\":\"connect_failed\",\"reason\":\"greylisted\",\"policy_blocked\","
    "\"verdict\":\"risky\",\"reason\":\"accept_all\",\"catch_all\":true,"
    "\"message\":\"Recipient address rejected: User unknown in virtual mailbox table\","
    "\"verdict\":\"undeliverable\",\"reason\":\"mailbox_absent\",\"reason_text\":"
    "\"the server says there is no such user\",\"score\":1,\"score_factors\":[{\"factor\":"
    "\"mailbox_absent\",\"points\":1}],\"code\":550,\"enhanced\":\"5.1.1\",\"stage\":\"rcpt\","
    "\"rule\":\"code:550\",\"result\":\"rejected\",\"accepted this address and rejected\","
    "\"an address that cannot exist, so its yes is meaningful\",\"score\":95,"
    "\"score_factors\":[{\"factor\":\"accepted\",\"points\":95}],\"syntax\":{\"valid\":true,"
    "\"local\":\"\",\"domain\":\"\",\"domain_ascii\":\"\",\"utf8_local\":false,\"rule\":null},"
    "\"domain\":{\"exists\":true,\"mx\":[{\"host\":\"\",\"pref\":10,\"ips\":[\"\"]}],"
    "\"null_mx\":false,\"implicit_mx\":false,\"spf\":true,\"dmarc\":true,\"provider\":null,"
    "\"gateway\":false},\"smtp\":{\"result\":\"accepted\",\"code\":250,\"enhanced\":\"2.1.5\","
    "\"message\":\"Ok\",\"stage\":\"rcpt\",\"rule\":\"code:250\",\"catch_all\":false,"
    "\"probe\":{\"rcpt\":\"\",\"code\":550,\"enhanced\":\"5.1.1\",\"message\":\"\","
    "\"cached\":false},\"mx_host\":\"\",\"mx_ip\":\"\",\"tls\":true,\"tls_verified\":false,"
    "\"attempts\":1,\"round_trips\":6,\"mx_geo\":null},\"flags\":{\"disposable\":false,"
    "\"free\":false,\"role\":false,\"gibberish\":false,\"gibberish_score\":0.0},"
    "{\"email\":\"\",\"normalized\":\"\",\"verdict\":\"deliverable\",\"reason\":\"accepted\","
    "\"reason_text\":\"";

/* Pack JSON into st->pk; out and outlen are valid until the next pack. */
static mp_status_t pack(store_t *st, const char *json, size_t len, const unsigned char **out,
                        size_t *outlen)
{
    if (len > JSON_MAX) {
        set_err(st->err, sizeof st->err, "a result of %zu bytes (at most %u)", len, JSON_MAX);
        return MP_ERR_LIMIT;
    }
    if (!st->zd_ok) {
        if (deflateInit2(&st->zd, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return no_memory(st);
        st->zd_ok = true;
    } else if (deflateReset(&st->zd) != Z_OK) {
        return no_memory(st);
    }
    size_t need = 5 + deflateBound(&st->zd, (uLong)len);
    if (need > st->pk_cap) {
        unsigned char *n = realloc(st->pk, need);
        if (!n)
            return no_memory(st);
        st->pk = n;
        st->pk_cap = need;
    }
    deflateSetDictionary(&st->zd, (const Bytef *)zdict_v1, (uInt)(sizeof zdict_v1 - 1));
    st->pk[0] = PACK_V1;
    for (int i = 0; i < 4; i++)
        st->pk[1 + i] = (unsigned char)(len >> (8 * i));
    st->zd.next_in = (Bytef *)(uintptr_t)json;
    st->zd.avail_in = (uInt)len;
    st->zd.next_out = st->pk + 5;
    st->zd.avail_out = (uInt)(st->pk_cap - 5);
    if (deflate(&st->zd, Z_FINISH) != Z_STREAM_END) {
        set_err(st->err, sizeof st->err, "packing a result failed");
        return MP_ERR_INTERNAL;
    }
    *out = st->pk;
    *outlen = 5 + st->zd.total_out;
    return MP_OK;
}

/* Bind a result's JSON packed (NULL stays NULL). */
static mp_status_t bind_json(store_t *st, sqlite3_stmt *s, int i, const char *json, size_t len)
{
    const unsigned char *b;
    size_t bl;
    mp_status_t rc = pack(st, json, len, &b, &bl);
    if (rc == MP_OK)
        sqlite3_bind_blob(s, i, b, (int)bl, SQLITE_STATIC);
    return rc;
}

/* A result's JSON from column i, packed or not, as text in buffer `which` (or the
 * column's own text); NULL for NULL, or for a value that does not unpack (err set). */
static const char *col_json(store_t *st, sqlite3_stmt *s, int i, int which, mp_status_t *rc)
{
    *rc = MP_OK;
    if (sqlite3_column_type(s, i) != SQLITE_BLOB)
        return col_text(s, i);
    const unsigned char *b = sqlite3_column_blob(s, i);
    size_t bl = (size_t)sqlite3_column_bytes(s, i);
    if (bl < 5 || b[0] != PACK_V1)
        goto bad;
    size_t len = 0;
    for (int k = 0; k < 4; k++)
        len |= (size_t)b[1 + k] << (8 * k);
    if (len > JSON_MAX)
        goto bad;
    if (len + 1 > st->unpk_cap[which]) {
        char *n = realloc(st->unpk[which], len + 1);
        if (!n) {
            *rc = no_memory(st);
            return NULL;
        }
        st->unpk[which] = n;
        st->unpk_cap[which] = len + 1;
    }
    if (!st->zi_ok) {
        if (inflateInit2(&st->zi, -15) != Z_OK) {
            *rc = no_memory(st);
            return NULL;
        }
        st->zi_ok = true;
    } else if (inflateReset(&st->zi) != Z_OK) {
        goto bad;
    }
    if (inflateSetDictionary(&st->zi, (const Bytef *)zdict_v1, (uInt)(sizeof zdict_v1 - 1)) !=
        Z_OK)
        goto bad;
    st->zi.next_in = (Bytef *)(uintptr_t)(b + 5);
    st->zi.avail_in = (uInt)(bl - 5);
    st->zi.next_out = (Bytef *)st->unpk[which];
    st->zi.avail_out = (uInt)len;
    if (inflate(&st->zi, Z_FINISH) != Z_STREAM_END || st->zi.total_out != len)
        goto bad;
    st->unpk[which][len] = '\0';
    return st->unpk[which];
bad:
    set_err(st->err, sizeof st->err, "%s: a stored result is damaged", st->path);
    *rc = MP_ERR_IO;
    return NULL;
}

/* ---- rows stored per job: first put wins --------------------------------------------- */

static void bits_free(jobbits_t *b)
{
    if (b->blk)
        for (size_t i = 0; i < BITS_NBLOCKS; i++)
            free(b->blk[i]);
    free(b->blk);
    memset(b, 0, sizeof *b);
}

static void bits_drop_all(store_t *st)
{
    for (size_t i = 0; i < MAX_JOBBITS; i++)
        bits_free(&st->bits[i]);
}

static jobbits_t *bits_find(store_t *st, int64_t num)
{
    for (size_t i = 0; i < MAX_JOBBITS; i++)
        if (st->bits[i].num == num)
            return &st->bits[i];
    return NULL;
}

static bool bits_test(const jobbits_t *b, uint64_t row)
{
    const uint64_t *w = b->blk[row >> BITS_SHIFT];
    uint64_t i = row & (((uint64_t)1 << BITS_SHIFT) - 1);
    return w && (w[i >> 6] >> (i & 63)) & 1u;
}

/* Set a row; false when it was set already or memory ran out (*nomem). */
static bool bits_set(jobbits_t *b, uint64_t row, bool *nomem)
{
    uint64_t **w = &b->blk[row >> BITS_SHIFT];
    if (!*w && !(*w = calloc(((size_t)1 << BITS_SHIFT) / 64, sizeof **w))) {
        *nomem = true;
        return false;
    }
    uint64_t i = row & (((uint64_t)1 << BITS_SHIFT) - 1), bit = (uint64_t)1 << (i & 63);
    if ((*w)[i >> 6] & bit)
        return false;
    (*w)[i >> 6] |= bit;
    return true;
}

/* The stored rows of job NUM, read from the index the first time. Called inside a
 * batch, so that nobody else writes between the read and our inserts. */
static mp_status_t bits_for(store_t *st, int64_t num, jobbits_t **out)
{
    jobbits_t *b = bits_find(st, num);
    if (!b) {
        b = &st->bits[0];
        for (size_t i = 1; i < MAX_JOBBITS && b->num; i++)
            if (!st->bits[i].num || st->bits[i].used < b->used)
                b = &st->bits[i];
        bits_free(b);
        if (!(b->blk = calloc(BITS_NBLOCKS, sizeof *b->blk)))
            return no_memory(st);
        b->num = num;
        sqlite3_stmt *s = stmt(st, S_RES_ROWS);
        sqlite3_bind_int64(s, 1, num);
        sqlite3_bind_int64(s, 2, 0);
        int rc;
        bool nomem = false;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && !nomem) {
            int64_t row = sqlite3_column_int64(s, 0);
            if (row >= 0 && row <= (int64_t)UINT32_MAX)
                bits_set(b, (uint64_t)row, &nomem);
        }
        sqlite3_reset(s);
        if (nomem || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
            bits_free(b);
            return nomem ? no_memory(st) : db_fail(st, rc, "reading stored rows");
        }
    }
    b->used = ++st->bits_clock;
    *out = b;
    return MP_OK;
}

/* ---- the last JSON stored in full ---------------------------------------------------- */

static void lj_keep(store_t *st, const char *json, size_t len, int64_t seq, int64_t job)
{
    if (len + 1 > st->lj_cap) {
        size_t cap = len + 1 > 2 * st->lj_cap ? len + 1 : 2 * st->lj_cap;
        char *n = realloc(st->lj, cap);
        if (!n) {
            st->lj_seq = 0; /* only an optimisation */
            return;
        }
        st->lj = n;
        st->lj_cap = cap;
    }
    memcpy(st->lj, json, len);
    st->lj[len] = '\0';
    st->lj_len = len;
    st->lj_seq = seq;
    st->lj_job = job;
}

static bool lj_same(const store_t *st, const char *json, size_t len)
{
    return st->lj_seq && len == st->lj_len && memcmp(json, st->lj, len) == 0;
}

/* ---- batches ------------------------------------------------------------------------ */

static void stage_free(stage_t *sg);

/* What this handle remembers about the file may be wrong after a rollback: forget it.
 * The staging index is read again from cache_log when next needed. */
static void forget(store_t *st)
{
    bits_drop_all(st);
    st->lj_seq = 0;
    st->last_id[0] = '\0';
    stage_free(&st->stage);
}

/* Called at the start of each batch, holding the write lock: if another connection
 * committed since our last look, take its new results into our bitmaps. */
static mp_status_t see_others(store_t *st)
{
    int64_t dv = 0;
    mp_status_t rc = one_int(st, stmt(st, S_DATA_VERSION), &dv, "reading the data version");
    if (rc || dv == st->data_version)
        return rc;
    st->data_version = dv;
    st->last_id[0] = '\0'; /* a job may have been deleted */
    st->lj_seq = 0;
    bool tracking = false;
    for (size_t i = 0; i < MAX_JOBBITS; i++)
        tracking |= st->bits[i].num != 0;
    if (tracking) {
        sqlite3_stmt *s = stmt(st, S_RES_NEW);
        sqlite3_bind_int64(s, 1, st->seen_seq);
        int src;
        bool nomem = false;
        while ((src = sqlite3_step(s)) == SQLITE_ROW) {
            jobbits_t *b = bits_find(st, sqlite3_column_int64(s, 0));
            int64_t row = sqlite3_column_int64(s, 1);
            if (b && row >= 0 && row <= (int64_t)UINT32_MAX)
                bits_set(b, (uint64_t)row, &nomem);
        }
        sqlite3_reset(s);
        if (nomem || src != SQLITE_DONE) {
            bits_drop_all(st); /* read again when needed */
            if (src != SQLITE_DONE)
                return db_fail(st, src, "reading new results");
        }
    }
    return one_int(st, stmt(st, S_RES_MAXSEQ), &st->seen_seq, "reading new results");
}

/* Give up the open batch (as if killed); its rows will be checked again on resume. */
static void batch_abort(store_t *st)
{
    if (st->in_tx) {
        sqlite3_step(stmt(st, S_ROLLBACK));
        sqlite3_reset(st->s[S_ROLLBACK]);
    }
    st->in_tx = false;
    st->pending = 0;
    st->ndelta = 0;
    forget(st);
}

/* Reads outside a batch share one read transaction: a statement outside any
 * transaction takes and drops the file locks (fcntl, 4 system calls) every time. */
static void read_begin(store_t *st)
{
    if (st->in_tx || st->rd_tx)
        return;
    st->rd_tx = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    st->rd_start_ms = mp_now_ms();
}

/* End it: before writing, and when it grows old, so that this handle sees what others
 * commit and does not hold back their checkpoints. An iteration goes on without it. */
static void end_read(store_t *st)
{
    if (st->rd_tx) {
        st->rd_tx = false;
        sqlite3_reset(st->s[S_RES_GET]);
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    }
}

static mp_status_t batch_begin(store_t *st)
{
    if (st->in_tx)
        return MP_OK;
    end_read(st);
    mp_status_t rc = run(st, stmt(st, S_BEGIN), "starting a batch");
    if (rc)
        return rc;
    st->in_tx = true;
    st->pending = 0;
    st->tx_start_ms = mp_now_ms();
    if ((rc = see_others(st)) != MP_OK)
        batch_abort(st);
    return rc;
}

mp_status_t store_flush(store_t *st)
{
    mp_status_t rc = MP_OK;
    end_read(st);
    if (!st->in_tx)
        return MP_OK;
    int64_t now = wall_now();
    for (size_t i = 0; i < st->ndelta && !rc; i++) {
        sqlite3_stmt *s = stmt(st, S_JOB_DELTA);
        sqlite3_bind_int64(s, 1, st->delta[i].num);
        for (int k = 0; k < 6; k++)
            sqlite3_bind_int64(s, 2 + k, st->delta[i].d[k]);
        sqlite3_bind_int64(s, 8, now);
        rc = run(st, s, "updating job progress");
        for (size_t k = 0; k < st->delta[i].nr && !rc; k++) {
            s = stmt(st, S_JOB_REASON_ADD);
            sqlite3_bind_int64(s, 1, st->delta[i].num);
            bind_text(s, 2, st->delta[i].r[k].name);
            sqlite3_bind_int64(s, 3, st->delta[i].r[k].n);
            rc = run(st, s, "updating job reasons");
        }
    }
    if (!rc)
        rc = run(st, stmt(st, S_COMMIT), "committing");
    if (rc) {
        batch_abort(st);
        return rc;
    }
    st->in_tx = false;
    st->pending = 0;
    st->ndelta = 0;
    return MP_OK;
}

/* Job metadata and bitmaps are read fresh, not from a look-up's snapshot. */
static void fresh_read(store_t *st)
{
    if (st->rd_tx && !st->iterating)
        end_read(st);
}

mp_status_t store_tick(store_t *st)
{
    if (st->rd_tx && !st->iterating && mp_now_ms() - st->rd_start_ms >= st->batch_ms)
        end_read(st);
    if (st->in_tx && (st->pending >= st->batch_rows || mp_now_ms() - st->tx_start_ms >= st->batch_ms)) {
        mp_status_t rc = store_flush(st);
        if (rc)
            return rc;
    }
    if (st->stage.n && mp_now_ms() - st->last_merge_ms >= STORE_CACHE_MERGE_MS)
        return cache_merge(st);
    return MP_OK;
}

/* Where a row of this reason is counted in the batch: its slot, or -1 (a new name). */
static int delta_slot(const delta_t *d, const char *name)
{
    for (size_t i = 0; i < d->nr; i++)
        if (strncmp(d->r[i].name, name, REASON_MAX - 1) == 0)
            return (int)i;
    return -1;
}

/* True when the batch can count one more row of this reason. */
static bool delta_room(const delta_t *d, const char *name)
{
    return d->nr < DELTA_REASONS || delta_slot(d, name) >= 0;
}

/* Count one row for its reason (delta_room() said there is room). */
static void delta_reason(delta_t *d, const char *name)
{
    int i = delta_slot(d, name);
    if (i < 0) {
        i = (int)d->nr++;
        mp_strlcpy(d->r[i].name, name, REASON_MAX);
        d->r[i].n = 0;
    }
    d->r[i].n++;
}

static delta_t *delta_for(store_t *st, int64_t num)
{
    for (size_t i = 0; i < st->ndelta; i++)
        if (st->delta[i].num == num)
            return &st->delta[i];
    if (st->ndelta == MAX_DELTA_JOBS)
        return NULL;
    delta_t *d = &st->delta[st->ndelta++];
    memset(d, 0, sizeof *d);
    d->num = num;
    return d;
}

/* ---- results ------------------------------------------------------------------------ */

mp_status_t store_result_put(store_t *st, const char *job_id, const store_result_t *r)
{
    int64_t num;
    mp_status_t rc;
    if (r->row_no < 1 || r->row_no > (int64_t)UINT32_MAX || !r->address) {
        set_err(st->err, sizeof st->err, "bad result row %lld", (long long)r->row_no);
        return MP_ERR_ARG;
    }
    if ((rc = job_num(st, job_id, &num)) != MP_OK)
        return rc;
    if ((rc = batch_begin(st)) != MP_OK)
        return rc;
    /* batch_begin may have found the job deleted by another process */
    if ((rc = job_num(st, job_id, &num)) != MP_OK)
        return rc;
    const char *reason = r->reason && *r->reason       ? r->reason
                         : r->row_error && *r->row_error ? r->row_error
                                                         : "not_checked";
    delta_t *d = delta_for(st, num);
    if (!d || !delta_room(d, reason)) {
        /* many jobs, or many new reason names, in one batch: commit what we have */
        if ((rc = store_flush(st)) != MP_OK || (rc = batch_begin(st)) != MP_OK)
            return rc;
        d = delta_for(st, num);
    }
    jobbits_t *b = NULL;
    if ((rc = bits_for(st, num, &b)) != MP_OK)
        return rc;
    if (!bits_test(b, (uint64_t)r->row_no)) {
        const char *json = r->result_json;
        size_t len = json ? strlen(json) : 0;
        bool ref = json && st->lj_job == num && lj_same(st, json, len);
        sqlite3_stmt *s = stmt(st, S_RES_PUT);
        sqlite3_bind_int64(s, 1, num);
        sqlite3_bind_int64(s, 2, r->row_no);
        bind_text(s, 3, r->address);
        bind_text(s, 4, r->row_error && *r->row_error ? r->row_error : NULL);
        bind_text(s, 5, r->verdict);
        bind_text(s, 6, r->reason);
        if (r->verdict)
            sqlite3_bind_int(s, 7, r->score);
        if (json && !ref && (rc = bind_json(st, s, 8, json, len)) != MP_OK)
            return rc;
        if (ref)
            sqlite3_bind_int64(s, 9, st->lj_seq);
        sqlite3_bind_int64(s, 10, r->checked_at ? r->checked_at : wall_now());
        if ((rc = run(st, s, "storing a result")) != MP_OK)
            return rc;
        int64_t seq = sqlite3_last_insert_rowid(st->db);
        st->seen_seq = seq;
        bool nomem = false;
        bits_set(b, (uint64_t)r->row_no, &nomem);
        if (nomem) /* read again from the file when next needed */
            bits_free(b);
        if (json && !ref)
            lj_keep(st, json, len, seq, num);
        d->d[0]++;
        delta_reason(d, reason);
        if (r->row_error && *r->row_error)
            d->d[5]++;
        else if (r->verdict) {
            static const char *const v[] = {"deliverable", "undeliverable", "risky", "unknown"};
            for (int k = 0; k < 4; k++)
                if (strcmp(r->verdict, v[k]) == 0)
                    d->d[1 + k]++;
        }
    }
    st->pending++;
    return store_tick(st);
}

mp_status_t store_rows_done(store_t *st, const char *job_id, store_bitmap_t *out)
{
    int64_t num;
    mp_status_t rc;
    memset(out, 0, sizeof *out);
    fresh_read(st);
    if ((rc = job_num(st, job_id, &num)) != MP_OK)
        return rc;
    sqlite3_stmt *s = stmt(st, S_RES_ROWS);
    sqlite3_bind_int64(s, 1, num);
    sqlite3_bind_int64(s, 2, 0);
    int src;
    size_t nwords = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t row = (uint64_t)sqlite3_column_int64(s, 0) & UINT32_MAX;
        size_t w = (size_t)(row >> 6);
        if (w >= nwords) {
            size_t nn = nwords ? nwords : 256;
            while (nn <= w)
                nn *= 2;
            uint64_t *nw = realloc(out->words, nn * sizeof *nw);
            if (!nw) {
                sqlite3_reset(s);
                store_bitmap_free(out);
                return no_memory(st);
            }
            memset(nw + nwords, 0, (nn - nwords) * sizeof *nw);
            out->words = nw;
            nwords = nn;
        }
        uint64_t bit = (uint64_t)1 << (row & 63);
        if (!(out->words[w] & bit))
            out->count++;
        out->words[w] |= bit;
        if (row + 1 > out->nbits)
            out->nbits = row + 1;
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE) {
        store_bitmap_free(out);
        return db_fail(st, src, "reading done rows");
    }
    return MP_OK;
}

void store_bitmap_free(store_bitmap_t *b)
{
    free(b->words);
    memset(b, 0, sizeof *b);
}

/* Map rows [lo, lo + WINDOW_ROWS) of the iterated job to their seq (0: no result) and
 * find where the next window starts. One pass over the job's index entries. */
static mp_status_t it_load(store_t *st, int64_t lo)
{
    if (!st->it_map && !(st->it_map = malloc((size_t)WINDOW_ROWS * sizeof *st->it_map)))
        return no_memory(st);
    size_t len = 0;
    int64_t next = 0;
    sqlite3_stmt *s = stmt(st, S_RES_ROWS);
    sqlite3_bind_int64(s, 1, st->it_num);
    sqlite3_bind_int64(s, 2, lo);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t row = sqlite3_column_int64(s, 0), seq = sqlite3_column_int64(s, 1);
        if (row - lo >= WINDOW_ROWS) {
            if (!next || row < next)
                next = row;
            continue;
        }
        size_t i = (size_t)(row - lo);
        while (len <= i) /* only what is used is touched: small jobs stay small */
            st->it_map[len++] = 0;
        st->it_map[i] = seq;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(st, rc, "reading results");
    st->it_lo = lo;
    st->it_len = len;
    st->it_pos = 0;
    st->it_next = next;
    return MP_OK;
}

mp_status_t store_results_open(store_t *st, const char *job_id, int64_t from_row)
{
    int64_t num;
    mp_status_t rc;
    if (st->iterating) {
        set_err(st->err, sizeof st->err, "an iteration is already open");
        return MP_ERR_ARG;
    }
    if ((rc = job_num(st, job_id, &num)) != MP_OK)
        return rc;
    if (from_row < 1)
        from_row = 1;
    if (from_row > (int64_t)UINT32_MAX)
        from_row = UINT32_MAX;
    st->it_num = num;
    end_read(st); /* a fresh snapshot for the whole iteration */
    read_begin(st);
    st->iterating = true;
    if ((rc = it_load(st, from_row)) != MP_OK)
        store_results_close(st);
    return rc;
}

mp_status_t store_results_next(store_t *st, store_result_t *out, bool *have)
{
    *have = false;
    memset(out, 0, sizeof *out);
    if (!st->iterating)
        return MP_OK;
    for (;;) {
        while (st->it_pos < st->it_len && !st->it_map[st->it_pos])
            st->it_pos++;
        if (st->it_pos == st->it_len) {
            mp_status_t rc = st->it_next ? it_load(st, st->it_next) : MP_OK;
            if (rc || st->it_pos == st->it_len) { /* error, or the end (no next window) */
                store_results_close(st);
                return rc;
            }
            continue;
        }
        sqlite3_stmt *s = stmt(st, S_RES_GET);
        sqlite3_bind_int64(s, 1, st->it_map[st->it_pos++]);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            continue; /* deleted meanwhile by another process */
        if (rc != SQLITE_ROW) {
            store_results_close(st);
            return db_fail(st, rc, "reading results");
        }
        out->row_no = sqlite3_column_int64(s, 0);
        out->address = col_text(s, 1);
        out->row_error = col_text(s, 2);
        out->verdict = col_text(s, 3);
        out->reason = col_text(s, 4);
        out->score = sqlite3_column_int(s, 5);
        mp_status_t jr;
        out->result_json = col_json(st, s, 6, 0, &jr);
        if (jr) {
            store_results_close(st);
            return jr;
        }
        out->checked_at = sqlite3_column_int64(s, 7);
        if (!out->address)
            out->address = "";
        *have = true;
        return MP_OK;
    }
}

void store_results_close(store_t *st)
{
    sqlite3_reset(st->s[S_RES_GET]);
    end_read(st);
    free(st->it_map);
    st->it_map = NULL;
    st->it_len = st->it_pos = 0;
    st->it_next = 0;
    st->iterating = false;
}

/* ---- jobs --------------------------------------------------------------------------- */

static char *dup_col(sqlite3_stmt *s, int i)
{
    const char *t = col_text(s, i);
    return t ? strdup(t) : NULL;
}

static mp_status_t read_job(sqlite3_stmt *s, store_job_t *j)
{
    memset(j, 0, sizeof *j);
    mp_strlcpy(j->id, col_text(s, 0) ? col_text(s, 0) : "", sizeof j->id);
    j->created = sqlite3_column_int64(s, 1);
    j->updated = sqlite3_column_int64(s, 2);
    j->input_path = dup_col(s, 3);
    j->fingerprint = dup_col(s, 4);
    j->options = dup_col(s, 5);
    j->output_path = dup_col(s, 6);
    j->state = state_parse(col_text(s, 7));
    j->message = dup_col(s, 8);
    j->total_rows = sqlite3_column_int64(s, 9);
    j->done_rows = sqlite3_column_int64(s, 10);
    j->n_deliverable = sqlite3_column_int64(s, 11);
    j->n_undeliverable = sqlite3_column_int64(s, 12);
    j->n_risky = sqlite3_column_int64(s, 13);
    j->n_unknown = sqlite3_column_int64(s, 14);
    j->n_error = sqlite3_column_int64(s, 15);
    j->ckpt_row = sqlite3_column_int64(s, 16);
    j->ckpt_offset = sqlite3_column_int64(s, 17);
    if (!j->input_path || !j->fingerprint || !j->options) {
        store_job_cleanup(j);
        return MP_ERR_NOMEM;
    }
    return MP_OK;
}

void store_job_cleanup(store_job_t *j)
{
    free(j->input_path);
    free(j->fingerprint);
    free(j->options);
    free(j->output_path);
    free(j->message);
    memset(j, 0, sizeof *j);
}

void store_jobs_free(store_job_t *jobs, size_t n)
{
    for (size_t i = 0; jobs && i < n; i++)
        store_job_cleanup(&jobs[i]);
    free(jobs);
}

/* Query one job: *found false when no row. */
static mp_status_t one_job(store_t *st, sqlite3_stmt *s, store_job_t *out, bool *found)
{
    *found = false;
    fresh_read(st);
    int rc = sqlite3_step(s);
    mp_status_t r = MP_OK;
    if (rc == SQLITE_ROW) {
        r = read_job(s, out);
        *found = r == MP_OK;
    } else if (rc != SQLITE_DONE)
        r = db_fail(st, rc, "reading a job");
    sqlite3_reset(s);
    return r;
}

mp_status_t store_job_create(store_t *st, store_job_t *init)
{
    static const char alphabet[] = "23456789abcdefghjkmnpqrstuvwxyz"; /* no 0/1/i/l/o */
    mp_status_t rc;
    if (!init->input_path || !init->fingerprint || !init->options) {
        set_err(st->err, sizeof st->err, "job_create: input_path, fingerprint, options needed");
        return MP_ERR_ARG;
    }
    if ((rc = store_flush(st)) != MP_OK)
        return rc;
    for (int tries = 0; tries < 10; tries++) {
        unsigned char rnd[10];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            uint64_t x = mp_now_ms() ^ ((uint64_t)getpid() << 20) ^ (uint64_t)tries;
            for (size_t i = 0; i < sizeof rnd; i++, x = x * 6364136223846793005u + 1)
                rnd[i] = (unsigned char)(x >> 33);
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            init->id[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
        init->id[sizeof rnd] = '\0';
        sqlite3_stmt *s = stmt(st, S_JOB_INSERT);
        bind_text(s, 1, init->id);
        sqlite3_bind_int64(s, 2, wall_now());
        bind_text(s, 3, init->input_path);
        bind_text(s, 4, init->fingerprint);
        bind_text(s, 5, init->options);
        bind_text(s, 6, init->output_path);
        sqlite3_bind_int64(s, 7, init->total_rows ? init->total_rows : -1);
        int src = sqlite3_step(s);
        sqlite3_reset(s);
        if (src == SQLITE_DONE)
            return MP_OK;
        if (src != SQLITE_CONSTRAINT_UNIQUE)
            return db_fail(st, src, "creating a job");
    }
    set_err(st->err, sizeof st->err, "cannot find a free job id");
    return MP_ERR_INTERNAL;
}

mp_status_t store_job_find(store_t *st, const char *fingerprint, const char *options,
                           store_job_t *out, bool *found)
{
    sqlite3_stmt *s = stmt(st, S_JOB_FIND);
    bind_text(s, 1, fingerprint);
    bind_text(s, 2, options);
    return one_job(st, s, out, found);
}

mp_status_t store_job_get(store_t *st, const char *id, store_job_t *out, bool *found)
{
    sqlite3_stmt *s = stmt(st, S_JOB_GET);
    bind_text(s, 1, id);
    return one_job(st, s, out, found);
}

mp_status_t store_job_list(store_t *st, store_job_t **jobs, size_t *n)
{
    fresh_read(st);
    sqlite3_stmt *s = stmt(st, S_JOB_LIST);
    size_t cap = 0;
    mp_status_t r = MP_OK;
    int rc;
    *jobs = NULL;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store_job_t *nj = mp_array_grow(*jobs, &cap, *n, sizeof *nj, 16);
        if (!nj) {
            r = MP_ERR_NOMEM;
            break;
        }
        *jobs = nj;
        if ((r = read_job(s, &(*jobs)[*n])) != MP_OK)
            break;
        (*n)++;
    }
    if (!r && rc != SQLITE_DONE)
        r = db_fail(st, rc, "listing jobs");
    sqlite3_reset(s);
    if (r) {
        store_jobs_free(*jobs, *n);
        *jobs = NULL;
        *n = 0;
    }
    return r;
}

/* Run a one-row job update outside any batch; MP_ERR_ARG when the id is unknown. */
static mp_status_t job_update(store_t *st, sqlite3_stmt *s, const char *what)
{
    mp_status_t rc = run(st, s, what);
    if (!rc && sqlite3_changes(st->db) == 0) {
        set_err(st->err, sizeof st->err, "%s: no such job", what);
        return MP_ERR_ARG;
    }
    return rc;
}

mp_status_t store_job_set_state(store_t *st, const char *id, store_job_state_t state,
                                const char *message)
{
    mp_status_t rc = store_flush(st);
    if (rc)
        return rc;
    /* a job that starts or ends publishes the addresses it checked to other processes;
     * if that fails (locked), the entries stay staged and the state is still recorded */
    cache_merge(st);
    sqlite3_stmt *s = stmt(st, S_JOB_STATE);
    bind_text(s, 1, id);
    bind_text(s, 2, store_job_state_name(state));
    bind_text(s, 3, message);
    sqlite3_bind_int64(s, 4, wall_now());
    return job_update(st, s, "setting the job state");
}

mp_status_t store_job_set_total(store_t *st, const char *id, int64_t total_rows)
{
    mp_status_t rc = store_flush(st);
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_JOB_TOTAL);
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, total_rows);
    sqlite3_bind_int64(s, 3, wall_now());
    return job_update(st, s, "setting the job total");
}

mp_status_t store_job_set_checkpoint(store_t *st, const char *id, int64_t row_no, int64_t offset)
{
    mp_status_t rc = batch_begin(st); /* goes with the results it describes */
    if (rc)
        return rc;
    sqlite3_stmt *s = stmt(st, S_JOB_CKPT);
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, row_no);
    sqlite3_bind_int64(s, 3, offset);
    return job_update(st, s, "setting the job checkpoint");
}

/* Give the space of deleted rows back to the file system: free pages off the end of the
 * file (incremental vacuum), then the WAL that holds them checkpointed and cut. A store
 * made before auto_vacuum was set is rewritten once (VACUUM: as long as it takes to copy
 * the file; needs room for a copy). Failures leave the space free inside the file, to
 * be reused by the next rows: the delete itself is done. */
static void reclaim(store_t *st)
{
    end_read(st);
    int64_t mode = pragma_int(st, "PRAGMA auto_vacuum");
    if (mode == 0)
        (void)exec(st, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM");
    else
        (void)exec(st, "PRAGMA incremental_vacuum");
    (void)exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
    st->err[0] = '\0';
}

mp_status_t store_job_delete(store_t *st, const char *id)
{
    int64_t num;
    mp_status_t rc;
    if ((rc = store_flush(st)) != MP_OK || (rc = job_num(st, id, &num)) != MP_OK)
        return rc;
    if ((rc = batch_begin(st)) != MP_OK)
        return rc;
    static const int steps[] = {S_JOB_UNREF_CACHE, S_JOB_UNREF_LOG, S_JOB_DEL_RESULTS,
                                S_JOB_DEL_REASONS, S_JOB_DEL};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !rc; i++) {
        sqlite3_stmt *s = stmt(st, steps[i]);
        sqlite3_bind_int64(s, 1, num);
        rc = run(st, s, "deleting a job");
    }
    if (rc) {
        batch_abort(st);
        return rc;
    }
    jobbits_t *b = bits_find(st, num);
    if (b)
        bits_free(b);
    if (st->lj_job == num)
        st->lj_seq = 0;
    st->last_id[0] = '\0';
    stage_free(&st->stage); /* staged entries may be gone: read the log again */
    if ((rc = store_flush(st)) != MP_OK)
        return rc;
    reclaim(st);
    return MP_OK;
}

/* ---- cache -------------------------------------------------------------------------- */

/* FNV-1a with a final mix (the tag and the home slot come from the high bits). */
static uint64_t addr_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static void stage_free(stage_t *sg)
{
    free(sg->slot);
    sg->slot = NULL;
    sg->cap = sg->n = 0;
    sg->loaded = false;
}

static bool stage_grow(stage_t *sg)
{
    size_t ncap = sg->cap ? sg->cap * 2 : 1024;
    unsigned bits = 0;
    while (((size_t)1 << bits) < ncap)
        bits++;
    if (bits > 31)
        return false;
    uint64_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    unsigned shift = 32 - bits;
    for (size_t i = 0; i < sg->cap; i++) {
        uint64_t v = sg->slot[i];
        if (!v)
            continue;
        size_t k = (size_t)((uint32_t)(v >> 32) >> shift);
        while (ns[k])
            k = (k + 1) & (ncap - 1);
        ns[k] = v;
    }
    free(sg->slot);
    sg->slot = ns;
    sg->cap = ncap;
    sg->shift = shift;
    return true;
}

/* Index log row SEQ under TAG. A seq past 32 bits is not indexed: the entry is found
 * after the next merge. False when out of memory. */
static bool stage_add(stage_t *sg, uint32_t tag, int64_t seq)
{
    if (seq <= 0 || seq > (int64_t)UINT32_MAX)
        return true;
    if ((sg->n + 1) * 2 > sg->cap && !stage_grow(sg))
        return false;
    size_t k = (size_t)(tag >> sg->shift);
    while (sg->slot[k])
        k = (k + 1) & (sg->cap - 1);
    sg->slot[k] = ((uint64_t)tag << 32) | (uint64_t)seq;
    sg->n++;
    return true;
}

/* The newest staged entry for ADDR: *at is its slot (SIZE_MAX: none), *checked_at its time. */
static mp_status_t stage_find(store_t *st, const char *addr, uint32_t tag, size_t *at,
                              int64_t *checked_at)
{
    stage_t *sg = &st->stage;
    int64_t best_seq = 0;
    *at = SIZE_MAX;
    if (!sg->n)
        return MP_OK;
    for (size_t k = (size_t)(tag >> sg->shift); sg->slot[k]; k = (k + 1) & (sg->cap - 1)) {
        uint64_t v = sg->slot[k];
        if ((uint32_t)(v >> 32) != tag)
            continue;
        int64_t seq = (int64_t)(v & UINT32_MAX);
        sqlite3_stmt *s = stmt(st, S_LOG_GET);
        sqlite3_bind_int64(s, 1, seq);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const char *a = col_text(s, 0);
            int64_t t = sqlite3_column_int64(s, 2);
            /* a slot whose row was merged by another process, or reused, fails here */
            if (a && strcmp(a, addr) == 0 &&
                (*at == SIZE_MAX || t > *checked_at || (t == *checked_at && seq > best_seq))) {
                *at = k;
                *checked_at = t;
                best_seq = seq;
            }
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return db_fail(st, rc, "reading the cache");
    }
    return MP_OK;
}

/* Index what cache_log holds (entries of a run that did not merge, e.g. killed). */
static mp_status_t stage_load(store_t *st)
{
    stage_t *sg = &st->stage;
    if (sg->loaded)
        return MP_OK;
    sqlite3_stmt *s = stmt(st, S_LOG_ALL);
    int rc;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *a = col_text(s, 1);
        ok = stage_add(sg, (uint32_t)(addr_hash(a ? a : "") >> 32), sqlite3_column_int64(s, 0));
    }
    sqlite3_reset(s);
    if (!ok) {
        stage_free(sg);
        return no_memory(st);
    }
    if (rc != SQLITE_DONE) {
        stage_free(sg);
        return db_fail(st, rc, "reading the cache");
    }
    sg->loaded = true;
    return MP_OK;
}

/* Move cache_log into the cache, in address order, in a transaction of its own. */
static mp_status_t cache_merge(store_t *st)
{
    if (!st->stage.n)
        return MP_OK;
    mp_status_t rc = store_flush(st);
    if (rc || (rc = batch_begin(st)) != MP_OK)
        return rc;
    /* the index goes first, so that it and the merge's sort are not in memory together;
     * after a failure it is read again from cache_log when needed */
    stage_free(&st->stage);
    if ((rc = run(st, stmt(st, S_LOG_MERGE), "merging the cache")) != MP_OK ||
        (rc = run(st, stmt(st, S_LOG_CLEAR), "merging the cache")) != MP_OK) {
        batch_abort(st);
        return rc;
    }
    if ((rc = store_flush(st)) != MP_OK)
        return rc;
    st->stage.loaded = true; /* cache_log is empty */
    st->last_merge_ms = mp_now_ms();
    return MP_OK;
}

/* Fill OUT from a cache row (columns: verdict, checked_at, json, ref, ref's job) and
 * remember the JSON, so that a result put with the same text refers to the same row. */
static mp_status_t cached_fill(store_t *st, sqlite3_stmt *s, int col, store_cached_t *out)
{
    mp_status_t jr;
    const char *v = col_text(s, col), *j = col_json(st, s, col + 2, 1, &jr);
    if (jr)
        return jr;
    mp_strlcpy(out->verdict, v ? v : "", sizeof out->verdict);
    out->checked_at = sqlite3_column_int64(s, col + 1);
    out->result_json = strdup(j ? j : "");
    if (!out->result_json)
        return no_memory(st);
    if (j && sqlite3_column_type(s, col + 3) == SQLITE_INTEGER)
        lj_keep(st, j, strlen(j), sqlite3_column_int64(s, col + 3),
                sqlite3_column_int64(s, col + 4));
    return MP_OK;
}

mp_status_t store_cache_get(store_t *st, const char *norm_address, int64_t max_age_s,
                            store_cached_t *out, bool *found)
{
    *found = false;
    memset(out, 0, sizeof *out);
    if (st->rd_tx && !st->iterating && mp_now_ms() - st->rd_start_ms >= st->batch_ms)
        end_read(st);
    read_begin(st);
    mp_status_t r = stage_load(st);
    if (r)
        return r;
    uint32_t tag = (uint32_t)(addr_hash(norm_address) >> 32);
    size_t at;
    int64_t t_staged = 0;
    if ((r = stage_find(st, norm_address, tag, &at, &t_staged)) != MP_OK)
        return r;
    int64_t min_t = max_age_s < 0 ? INT64_MIN : wall_now() - max_age_s;
    sqlite3_stmt *s = stmt(st, S_CACHE_GET);
    bind_text(s, 1, norm_address);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = db_fail(st, rc, "reading the cache");
    } else if (rc == SQLITE_ROW && (at == SIZE_MAX || sqlite3_column_int64(s, 1) > t_staged)) {
        if (sqlite3_column_int64(s, 1) >= min_t && (r = cached_fill(st, s, 0, out)) == MP_OK)
            *found = true;
    } else if (at != SIZE_MAX && t_staged >= min_t) {
        sqlite3_reset(s);
        s = stmt(st, S_LOG_GET);
        sqlite3_bind_int64(s, 1, (int64_t)(st->stage.slot[at] & UINT32_MAX));
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            if ((r = cached_fill(st, s, 1, out)) == MP_OK)
                *found = true;
        } else if (rc != SQLITE_DONE) {
            r = db_fail(st, rc, "reading the cache");
        }
    }
    sqlite3_reset(s);
    return r;
}

mp_status_t store_cache_put(store_t *st, const char *norm_address, const char *verdict,
                            const char *result_json, int64_t checked_at)
{
    if (!norm_address || !result_json)
        return MP_ERR_ARG;
    mp_status_t rc = batch_begin(st);
    if (rc || (rc = stage_load(st)) != MP_OK)
        return rc;
    if (!checked_at)
        checked_at = wall_now();
    size_t len = strlen(result_json);
    bool ref = lj_same(st, result_json, len);
    sqlite3_stmt *s = stmt(st, S_LOG_PUT);
    bind_text(s, 1, norm_address);
    bind_text(s, 2, verdict);
    sqlite3_bind_int64(s, 3, checked_at);
    if (ref)
        sqlite3_bind_int64(s, 4, st->lj_seq);
    else if ((rc = bind_json(st, s, 5, result_json, len)) != MP_OK)
        return rc;
    if ((rc = run(st, s, "storing a cache entry")) != MP_OK)
        return rc;
    int64_t seq = sqlite3_last_insert_rowid(st->db);
    uint32_t tag = (uint32_t)(addr_hash(norm_address) >> 32);
    size_t at;
    int64_t t = 0;
    if ((rc = stage_find(st, norm_address, tag, &at, &t)) != MP_OK)
        return rc;
    if (at == SIZE_MAX) {
        if (!stage_add(&st->stage, tag, seq))
            return no_memory(st);
    } else if (checked_at >= t && seq <= (int64_t)UINT32_MAX) {
        st->stage.slot[at] = ((uint64_t)tag << 32) | (uint64_t)seq;
    } /* else older than what is staged: the merge keeps the newest anyway */
    /* not counted in the batch size: a lost cache entry costs a check, not a row; the
     * batch's age still bounds how long it waits */
    if (st->stage.n >= STORE_CACHE_STAGE_MAX)
        return cache_merge(st);
    return store_tick(st);
}

mp_status_t store_cache_prune(store_t *st, int64_t max_age_s, int64_t *deleted)
{
    mp_status_t rc = store_flush(st);
    if (rc || (rc = stage_load(st)) != MP_OK || (rc = cache_merge(st)) != MP_OK)
        return rc;
    sqlite3_stmt *s = stmt(st, S_CACHE_PRUNE);
    sqlite3_bind_int64(s, 1, wall_now() - max_age_s);
    rc = run(st, s, "pruning the cache");
    if (!rc && deleted)
        *deleted = sqlite3_changes(st->db);
    return rc;
}

/* ---- per-job tallies ---------------------------------------------------------------- */

mp_status_t store_job_reasons(store_t *st, const char *id, store_reason_fn fn, void *arg)
{
    int64_t num;
    fresh_read(st);
    mp_status_t rc = job_num(st, id, &num);
    if (rc != MP_OK)
        return rc;
    sqlite3_stmt *s = stmt(st, S_JOB_REASONS);
    sqlite3_bind_int64(s, 1, num);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), arg);
    rc = src == SQLITE_DONE ? MP_OK : db_fail(st, src, "reading job reasons");
    sqlite3_reset(s);
    return rc;
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
    set_err(st->err, sizeof st->err,
            "not enough room for the job: %lld rows need about %.1f MB in the job store "
            "(%u bytes a row) and %s has %.1f MB free, of which %.1f MB stay free",
            (long long)rows, (double)need / 1e6, STORE_ROW_BUDGET, dir, (double)avail / 1e6,
            (double)reserve / 1e6);
    return MP_ERR_LIMIT;
}

mp_status_t store_job_lock(store_t *st, const char *id, int *fd_out, long *holder)
{
    *fd_out = -1;
    *holder = 0;
    char p[sizeof st->path + 64];
    snprintf(p, sizeof p, "%s.d", st->path);
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        set_err(st->err, sizeof st->err, "cannot create %s: %s", p, strerror(errno));
        return MP_ERR_IO;
    }
    snprintf(p, sizeof p, "%s.d/%s.lock", st->path, id);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(st->err, sizeof st->err, "cannot open %s: %s", p, strerror(errno));
        return MP_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        *holder = strtol(buf, NULL, 10);
        close(fd);
        if (e == EWOULDBLOCK) {
            if (*holder > 0)
                set_err(st->err, sizeof st->err, "job %s is being run by another process "
                        "(pid %ld)", id, *holder);
            else
                set_err(st->err, sizeof st->err, "job %s is being run by another process", id);
            return MP_ERR_LIMIT;
        }
        set_err(st->err, sizeof st->err, "cannot lock %s: %s", p, strerror(e));
        return MP_ERR_IO;
    }
    char pid[32];
    int pl = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pl > 0)
        (void)!pwrite(fd, pid, (size_t)pl, 0);
    *fd_out = fd;
    return MP_OK;
}

void store_job_unlock(store_t *st, const char *id, int fd)
{
    if (fd < 0)
        return;
    char p[sizeof st->path + 64];
    snprintf(p, sizeof p, "%s.d/%s.lock", st->path, id);
    unlink(p); /* while still holding it: a waiting process locks a file no one reuses */
    close(fd);
}
