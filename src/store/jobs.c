/*
 * jobs.c - bulk jobs in the store: create, find, list, state, progress, checkpoint,
 * delete, the rows per reason, the input's fingerprint a job is found again by, and the
 * lock that gives a job one runner.
 *
 * Does not: store or read a job's results (results.c) or its cache entries (cache.c);
 * a delete removes them with the job through the statements of schema.c.
 * Ownership: strings of a store_job_t belong to it (store_job_cleanup).
 */
#include "store/store_int.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/str.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Job number for an id (cached for the last id). */
mp_status_t store_job_num(store_t *st, const char *id, int64_t *num)
{
    if (!id || !*id) {
        mp_err_set(st->err, sizeof st->err, "no job id");
        return MP_ERR_ARG;
    }
    if (st->last_id[0] && strcmp(st->last_id, id) == 0) {
        *num = st->last_num;
        return MP_OK;
    }
    sqlite3_stmt *s = store_stmt(st, S_JOB_NUM);
    store_bind_text(s, 1, id);
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
        return store_db_fail(st, rc, "looking up a job");
    mp_err_set(st->err, sizeof st->err, "%s: no job %s", st->path, id);
    return MP_ERR_ARG;
}

/* ---- jobs --------------------------------------------------------------------------- */

static char *dup_col(sqlite3_stmt *s, int i)
{
    const char *t = store_col_text(s, i);
    return t ? strdup(t) : NULL;
}

static mp_status_t read_job(sqlite3_stmt *s, store_job_t *j)
{
    memset(j, 0, sizeof *j);
    mp_strlcpy(j->id, store_col_text(s, 0) ? store_col_text(s, 0) : "", sizeof j->id);
    j->created = sqlite3_column_int64(s, 1);
    j->updated = sqlite3_column_int64(s, 2);
    j->input_path = dup_col(s, 3);
    j->fingerprint = dup_col(s, 4);
    j->options = dup_col(s, 5);
    j->output_path = dup_col(s, 6);
    j->state = state_parse(store_col_text(s, 7));
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
    store_read_fresh(st);
    int rc = sqlite3_step(s);
    mp_status_t r = MP_OK;
    if (rc == SQLITE_ROW) {
        r = read_job(s, out);
        *found = r == MP_OK;
    } else if (rc != SQLITE_DONE)
        r = store_db_fail(st, rc, "reading a job");
    sqlite3_reset(s);
    return r;
}

mp_status_t store_job_create(store_t *st, store_job_t *init)
{
    static const char alphabet[] = "23456789abcdefghjkmnpqrstuvwxyz"; /* no 0/1/i/l/o */
    mp_status_t rc;
    if (!init->input_path || !init->fingerprint || !init->options) {
        mp_err_set(st->err, sizeof st->err,
                   "job_create: input_path, fingerprint, options needed");
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
        sqlite3_stmt *s = store_stmt(st, S_JOB_INSERT);
        store_bind_text(s, 1, init->id);
        sqlite3_bind_int64(s, 2, store_wall_now());
        store_bind_text(s, 3, init->input_path);
        store_bind_text(s, 4, init->fingerprint);
        store_bind_text(s, 5, init->options);
        store_bind_text(s, 6, init->output_path);
        sqlite3_bind_int64(s, 7, init->total_rows ? init->total_rows : -1);
        int src = sqlite3_step(s);
        sqlite3_reset(s);
        if (src == SQLITE_DONE)
            return MP_OK;
        if (src != SQLITE_CONSTRAINT_UNIQUE)
            return store_db_fail(st, src, "creating a job");
    }
    mp_err_set(st->err, sizeof st->err, "cannot find a free job id");
    return MP_ERR_INTERNAL;
}

mp_status_t store_job_find(store_t *st, const char *fingerprint, const char *options,
                           store_job_t *out, bool *found)
{
    sqlite3_stmt *s = store_stmt(st, S_JOB_FIND);
    store_bind_text(s, 1, fingerprint);
    store_bind_text(s, 2, options);
    return one_job(st, s, out, found);
}

mp_status_t store_job_get(store_t *st, const char *id, store_job_t *out, bool *found)
{
    sqlite3_stmt *s = store_stmt(st, S_JOB_GET);
    store_bind_text(s, 1, id);
    return one_job(st, s, out, found);
}

mp_status_t store_job_list(store_t *st, store_job_t **jobs, size_t *n)
{
    store_read_fresh(st);
    sqlite3_stmt *s = store_stmt(st, S_JOB_LIST);
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
        r = store_db_fail(st, rc, "listing jobs");
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
    mp_status_t rc = store_stmt_run(st, s, what);
    if (!rc && sqlite3_changes(st->db) == 0) {
        mp_err_set(st->err, sizeof st->err, "%s: no such job", what);
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
    store_cache_merge(st);
    sqlite3_stmt *s = store_stmt(st, S_JOB_STATE);
    store_bind_text(s, 1, id);
    store_bind_text(s, 2, store_job_state_name(state));
    store_bind_text(s, 3, message);
    sqlite3_bind_int64(s, 4, store_wall_now());
    return job_update(st, s, "setting the job state");
}

mp_status_t store_job_set_total(store_t *st, const char *id, int64_t total_rows)
{
    mp_status_t rc = store_flush(st);
    if (rc)
        return rc;
    sqlite3_stmt *s = store_stmt(st, S_JOB_TOTAL);
    store_bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, total_rows);
    sqlite3_bind_int64(s, 3, store_wall_now());
    return job_update(st, s, "setting the job total");
}

mp_status_t store_job_set_checkpoint(store_t *st, const char *id, int64_t row_no, int64_t offset)
{
    mp_status_t rc = store_batch_begin(st); /* goes with the results it describes */
    if (rc)
        return rc;
    sqlite3_stmt *s = store_stmt(st, S_JOB_CKPT);
    store_bind_text(s, 1, id);
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
    store_read_end(st);
    int64_t mode = store_pragma_int(st, "PRAGMA auto_vacuum");
    if (mode == 0)
        (void)store_exec(st, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM");
    else
        (void)store_exec(st, "PRAGMA incremental_vacuum");
    (void)store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
    st->err[0] = '\0';
}

mp_status_t store_job_delete(store_t *st, const char *id)
{
    int64_t num;
    mp_status_t rc;
    if ((rc = store_flush(st)) != MP_OK || (rc = store_job_num(st, id, &num)) != MP_OK)
        return rc;
    if ((rc = store_batch_begin(st)) != MP_OK)
        return rc;
    static const int steps[] = {S_JOB_UNREF_CACHE, S_JOB_UNREF_LOG, S_JOB_DEL_RESULTS,
                                S_JOB_DEL_REASONS, S_JOB_DEL};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !rc; i++) {
        sqlite3_stmt *s = store_stmt(st, steps[i]);
        sqlite3_bind_int64(s, 1, num);
        rc = store_stmt_run(st, s, "deleting a job");
    }
    if (rc) {
        store_batch_abort(st);
        return rc;
    }
    jobbits_t *b = store_bits_find(st, num);
    if (b)
        store_bits_free(b);
    if (st->lj_job == num)
        st->lj_seq = 0;
    st->last_id[0] = '\0';
    store_stage_free(&st->stage); /* staged entries may be gone: read the log again */
    if ((rc = store_flush(st)) != MP_OK)
        return rc;
    reclaim(st);
    return MP_OK;
}

/* ---- rows per reason --------------------------------------------------------------- */

/* ---- per-job tallies ---------------------------------------------------------------- */

mp_status_t store_job_reasons(store_t *st, const char *id, store_reason_fn fn, void *arg)
{
    int64_t num;
    store_read_fresh(st);
    mp_status_t rc = store_job_num(st, id, &num);
    if (rc != MP_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, S_JOB_REASONS);
    sqlite3_bind_int64(s, 1, num);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), arg);
    rc = src == SQLITE_DONE ? MP_OK : store_db_fail(st, src, "reading job reasons");
    sqlite3_reset(s);
    return rc;
}

/* ---- fingerprints ------------------------------------------------------------------ */

mp_status_t store_fingerprint(const char *path, char *out, size_t size, char *err, size_t errsize)
{
    struct stat sb;
    unsigned char *head = NULL, md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    mp_status_t st = MP_ERR_IO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        mp_err_set(err, errsize, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        mp_err_set(err, errsize, "%s: not a regular file: it cannot be resumed", path);
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
            mp_err_set(err, errsize, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    if (!EVP_Digest(head, n, md, &mdlen, EVP_sha256(), NULL)) {
        mp_err_set(err, errsize, "sha256 failed");
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

/* ---- job locks --------------------------------------------------------------------- */

mp_status_t store_job_lock(store_t *st, const char *id, int *fd_out, long *holder)
{
    *fd_out = -1;
    *holder = 0;
    char p[sizeof st->path + 64];
    snprintf(p, sizeof p, "%s.d", st->path);
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        mp_err_set(st->err, sizeof st->err, "cannot create %s: %s", p, strerror(errno));
        return MP_ERR_IO;
    }
    snprintf(p, sizeof p, "%s.d/%s.lock", st->path, id);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        mp_err_set(st->err, sizeof st->err, "cannot open %s: %s", p, strerror(errno));
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
                mp_err_set(st->err, sizeof st->err, "job %s is being run by another process "
                        "(pid %ld)", id, *holder);
            else
                mp_err_set(st->err, sizeof st->err,
                           "job %s is being run by another process", id);
            return MP_ERR_LIMIT;
        }
        mp_err_set(st->err, sizeof st->err, "cannot lock %s: %s", p, strerror(e));
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
