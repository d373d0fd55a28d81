/*
 * test_store.c - unit tests for src/store: jobs, resume, batching and crash loss, row
 * order, the address cache with injected clocks, schema versions, two handles (WAL).
 *
 * Stores live in a fresh mkdtemp() directory removed at the end. A crash is simulated
 * by a forked child that writes and _exit()s without committing. The million-row insert
 * is timed and printed, never asserted, and runs only with MP_STORE_BENCH=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/clock.h"

static char tmpdir[256];
static int64_t fake_wall = 1700000000;
static uint64_t fake_mono = 1000;

static int64_t wall_cb(void *arg)
{
    (void)arg;
    return fake_wall;
}

static uint64_t mono_cb(void *arg)
{
    (void)arg;
    return fake_mono;
}

static const char *tpath(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static store_t *open_store(const char *name)
{
    store_t *st = NULL;
    char err[STORE_ERR_MAX];
    mp_status_t rc = store_open(tpath(name), &st, err, sizeof err);
    if (rc)
        fail_msg("store_open: %s", err);
    return st;
}

static void new_job(store_t *st, const char *fp, const char *opts, store_job_t *j)
{
    memset(j, 0, sizeof *j);
    j->input_path = (char *)"/data/list.csv";
    j->fingerprint = (char *)fp;
    j->options = (char *)opts;
    j->output_path = (char *)"/data/out.csv";
    assert_int_equal(store_job_create(st, j), MP_OK);
    assert_int_equal(strlen(j->id), 10);
}

static void put(store_t *st, const char *job, int64_t row, const char *verdict)
{
    char addr[64], json[128];
    snprintf(addr, sizeof addr, "user%lld@x.com", (long long)row);
    snprintf(json, sizeof json, "{\"email\":\"%s\",\"verdict\":\"%s\"}", addr, verdict);
    store_result_t r = {.row_no = row, .address = addr, .verdict = verdict, .reason = "accepted",
                        .score = 90, .result_json = json};
    assert_int_equal(store_result_put(st, job, &r), MP_OK);
}

static int64_t sql_int(const char *file, const char *q);

static void add_reason(const char *reason, int64_t n, void *arg)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 2048 - len, "%s%s=%lld", len ? "," : "", reason, (long long)n);
}

/* "reason=n,..." most frequent first, as store_job_reasons gives them. */
static const char *reasons_of(store_t *st, const char *job)
{
    static char buf[2048];
    buf[0] = '\0';
    assert_int_equal(store_job_reasons(st, job, add_reason, buf), MP_OK);
    return buf;
}

static void test_job_reasons(void **state)
{
    (void)state;
    store_t *st = open_store("reasons.sqlite");
    store_job_t j = {.input_path = (char *)"in.csv", .fingerprint = (char *)"fp",
                     .options = (char *)"o"};
    assert_int_equal(store_job_create(st, &j), MP_OK);
    assert_string_equal(reasons_of(st, j.id), "");
    put(st, j.id, 1, "deliverable");
    put(st, j.id, 2, "deliverable");
    store_result_t bad = {.row_no = 3, .address = "", .row_error = "no_address"};
    assert_int_equal(store_result_put(st, j.id, &bad), MP_OK);
    store_result_t absent = {.row_no = 4, .address = "z@x.com", .verdict = "undeliverable",
                             .reason = "mailbox_absent", .result_json = "{}"};
    assert_int_equal(store_result_put(st, j.id, &absent), MP_OK);
    assert_int_equal(store_result_put(st, j.id, &absent), MP_OK); /* ignored: row 4 is done */
    /* 70 distinct names in one batch: more than a batch counts, so it commits midway */
    for (int i = 0; i < 70; i++) {
        char reason[32];
        snprintf(reason, sizeof reason, "r%02d", i);
        store_result_t r = {.row_no = 10 + i, .address = "y@x.com", .verdict = "unknown",
                            .reason = reason, .result_json = "{}"};
        assert_int_equal(store_result_put(st, j.id, &r), MP_OK);
    }
    assert_int_equal(store_flush(st), MP_OK);
    const char *got = reasons_of(st, j.id);
    assert_true(strncmp(got, "accepted=2,mailbox_absent=1,no_address=1,r00=1,", 47) == 0);
    assert_non_null(strstr(got, ",r69=1"));
    store_job_t g;
    bool found;
    assert_int_equal(store_job_get(st, j.id, &g, &found), MP_OK);
    assert_int_equal(g.done_rows, 74);
    store_job_cleanup(&g);
    char id[STORE_ID_MAX];
    snprintf(id, sizeof id, "%s", j.id);
    assert_int_equal(store_job_delete(st, id), MP_OK);
    assert_int_equal(sql_int("reasons.sqlite", "SELECT count(*) FROM job_reasons"), 0);
    store_close(st);
}

static void test_open_schema(void **state)
{
    (void)state;
    store_t *st = open_store("a.sqlite");
    assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
    assert_int_equal(store_close(st), MP_OK);
    st = open_store("a.sqlite"); /* reopen: no migration needed */
    assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
    store_close(st);

    /* a newer schema is refused with a clear message */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(tpath("a.sqlite"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[STORE_ERR_MAX];
    st = NULL;
    assert_int_equal(store_open(tpath("a.sqlite"), &st, err, sizeof err), MP_ERR_IO);
    assert_null(st);
    assert_non_null(strstr(err, "newer mailprobe"));

    /* some other SQLite database is not taken over */
    assert_int_equal(sqlite3_open(tpath("other.sqlite"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(tpath("other.sqlite"), &st, err, sizeof err), MP_ERR_IO);
    assert_non_null(strstr(err, "not a mailprobe job store"));

    /* not a database at all; an unwritable place */
    FILE *f = fopen(tpath("text.sqlite"), "w");
    fputs("hello, this is not SQLite, not at all, no.\n", f);
    fclose(f);
    assert_int_equal(store_open(tpath("text.sqlite"), &st, err, sizeof err), MP_ERR_IO);
    assert_int_equal(store_open(tpath("no/such/dir/x.sqlite"), &st, err, sizeof err), MP_ERR_IO);
    assert_non_null(strstr(err, "no/such/dir"));
}

static void test_fingerprint_and_default(void **state)
{
    (void)state;
    char fp1[STORE_FP_MAX], fp2[STORE_FP_MAX], err[STORE_ERR_MAX];
    FILE *f = fopen(tpath("in.csv"), "w");
    fputs("email\na@x.com\n", f);
    fclose(f);
    assert_int_equal(store_fingerprint(tpath("in.csv"), fp1, sizeof fp1, err, sizeof err), MP_OK);
    assert_int_equal(strncmp(fp1, "v1:14:", 6), 0);
    assert_int_equal(store_fingerprint(tpath("in.csv"), fp2, sizeof fp2, err, sizeof err), MP_OK);
    assert_string_equal(fp1, fp2);
    f = fopen(tpath("in.csv"), "a");
    fputs("b@x.com\n", f);
    fclose(f);
    assert_int_equal(store_fingerprint(tpath("in.csv"), fp2, sizeof fp2, err, sizeof err), MP_OK);
    assert_string_not_equal(fp1, fp2);
    assert_int_equal(store_fingerprint(tmpdir, fp2, sizeof fp2, err, sizeof err), MP_ERR_ARG);
    assert_int_equal(store_fingerprint(tpath("nope"), fp2, sizeof fp2, err, sizeof err), MP_ERR_IO);
    assert_int_equal(store_fingerprint(tpath("in.csv"), fp2, 10, err, sizeof err), MP_ERR_LIMIT);

    char p[512];
    unsetenv("STATE_DIRECTORY");
    unsetenv("XDG_DATA_HOME");
    setenv("XDG_STATE_HOME", tpath("xdg/state"), 1);
    assert_int_equal(store_default_path(p, sizeof p), MP_OK);
    assert_string_equal(p, tpath("xdg/state/mailprobe/jobs.sqlite"));
    struct stat sb;
    assert_int_equal(stat(tpath("xdg/state/mailprobe"), &sb), 0);
    unsetenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char *saved = home ? strdup(home) : NULL;
    setenv("HOME", tpath("home"), 1);
    assert_int_equal(store_default_path(p, sizeof p), MP_OK);
    assert_string_equal(p, tpath("home/.local/state/mailprobe/jobs.sqlite"));
    assert_int_equal(store_default_path(p, 8), MP_ERR_LIMIT);
    /* a store at the old place (XDG_DATA_HOME) is kept while the new place has none */
    setenv("XDG_DATA_HOME", tpath("xdg/data"), 1);
    assert_int_equal(mkdir(tpath("xdg/data"), 0700), 0);
    assert_int_equal(mkdir(tpath("xdg/data/mailprobe"), 0700), 0);
    f = fopen(tpath("xdg/data/mailprobe/jobs.sqlite"), "w");
    fclose(f);
    assert_int_equal(store_default_path(p, sizeof p), MP_OK);
    assert_string_equal(p, tpath("xdg/data/mailprobe/jobs.sqlite"));
    unsetenv("XDG_DATA_HOME");
    f = fopen(tpath("home/.local/state/mailprobe/jobs.sqlite"), "w");
    fclose(f);
    assert_int_equal(store_default_path(p, sizeof p), MP_OK);
    assert_string_equal(p, tpath("home/.local/state/mailprobe/jobs.sqlite"));
    /* systemd's StateDirectory= wins, first of its list */
    setenv("STATE_DIRECTORY", tpath("sd:/elsewhere"), 1);
    assert_int_equal(store_default_path(p, sizeof p), MP_OK);
    assert_string_equal(p, tpath("sd/jobs.sqlite"));
    unsetenv("STATE_DIRECTORY");
    if (saved)
        setenv("HOME", saved, 1);
    free(saved);
}

static void test_create_find_resume(void **state)
{
    (void)state;
    store_t *st = open_store("jobs.sqlite");
    store_job_t j, got;
    bool found;
    new_job(st, "fp-1", "col=email", &j);
    assert_int_equal(store_job_find(st, "fp-1", "col=email", &got, &found), MP_OK);
    assert_true(found);
    assert_string_equal(got.id, j.id);
    assert_int_equal(got.state, STORE_JOB_QUEUED);
    assert_int_equal(got.total_rows, -1);
    assert_string_equal(got.output_path, "/data/out.csv");
    store_job_cleanup(&got);
    assert_int_equal(store_job_find(st, "fp-1", "col=work", &got, &found), MP_OK);
    assert_false(found);
    assert_int_equal(store_job_set_state(st, j.id, STORE_JOB_RUNNING, NULL), MP_OK);
    assert_int_equal(store_job_set_total(st, j.id, 6), MP_OK);

    put(st, j.id, 1, "deliverable");
    put(st, j.id, 2, "undeliverable");
    put(st, j.id, 5, "risky");
    store_result_t bad = {.row_no = 4, .address = "", .row_error = "no_address"};
    assert_int_equal(store_result_put(st, j.id, &bad), MP_OK);
    put(st, j.id, 2, "deliverable"); /* a second put for a row is ignored */
    assert_int_equal(store_job_set_checkpoint(st, j.id, 3, 1234), MP_OK);
    assert_int_equal(store_job_set_state(st, j.id, STORE_JOB_INTERRUPTED, "SIGINT"), MP_OK);
    assert_int_equal(store_close(st), MP_OK);

    /* "re-running the same command": find the job again, skip what is done */
    st = open_store("jobs.sqlite");
    assert_int_equal(store_job_find(st, "fp-1", "col=email", &got, &found), MP_OK);
    assert_true(found);
    assert_string_equal(got.id, j.id);
    assert_int_equal(got.state, STORE_JOB_INTERRUPTED);
    assert_string_equal(got.message, "SIGINT");
    assert_int_equal(got.done_rows, 4);
    assert_int_equal(got.total_rows, 6);
    assert_int_equal(got.n_deliverable, 1);
    assert_int_equal(got.n_undeliverable, 1);
    assert_int_equal(got.n_risky, 1);
    assert_int_equal(got.n_unknown, 0);
    assert_int_equal(got.n_error, 1);
    assert_int_equal(got.ckpt_row, 3);
    assert_int_equal(got.ckpt_offset, 1234);
    store_job_cleanup(&got);
    store_bitmap_t bm;
    assert_int_equal(store_rows_done(st, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, 4);
    assert_true(store_bitmap_has(&bm, 1));
    assert_true(store_bitmap_has(&bm, 2));
    assert_false(store_bitmap_has(&bm, 3));
    assert_true(store_bitmap_has(&bm, 4));
    assert_true(store_bitmap_has(&bm, 5));
    assert_false(store_bitmap_has(&bm, 6));
    assert_false(store_bitmap_has(&bm, 1000000));
    store_bitmap_free(&bm);

    assert_int_equal(store_job_get(st, j.id, &got, &found), MP_OK);
    assert_true(found);
    store_job_cleanup(&got);
    assert_int_equal(store_job_get(st, "nosuchjob", &got, &found), MP_OK);
    assert_false(found);
    store_result_t r = {.row_no = 1, .address = "a@x.com"};
    assert_int_equal(store_result_put(st, "nosuchjob", &r), MP_ERR_ARG);
    r.row_no = 0;
    assert_int_equal(store_result_put(st, j.id, &r), MP_ERR_ARG);
    assert_int_equal(store_job_set_state(st, "nosuchjob", STORE_JOB_DONE, NULL), MP_ERR_ARG);

    /* delete */
    assert_int_equal(store_job_delete(st, j.id), MP_OK);
    assert_int_equal(store_job_get(st, j.id, &got, &found), MP_OK);
    assert_false(found);
    assert_int_equal(store_rows_done(st, j.id, &bm), MP_ERR_ARG);
    store_close(st);
}

/* A child process writes, commits some, then dies without committing the rest. */
static void test_crash(void **state)
{
    (void)state;
    store_t *st = open_store("crash.sqlite");
    store_job_t j;
    new_job(st, "fp-crash", "", &j);
    store_close(st);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_t *c = NULL;
        char err[STORE_ERR_MAX];
        if (store_open(tpath("crash.sqlite"), &c, err, sizeof err))
            _exit(2);
        store_set_batch(c, 4, 60000); /* auto-commit every 4 writes */
        for (int64_t i = 1; i <= 10; i++) {
            store_result_t r = {.row_no = i, .address = "a@x.com", .verdict = "unknown"};
            if (store_result_put(c, j.id, &r))
                _exit(3);
        }
        if (store_flush(c)) /* rows 1..10 committed */
            _exit(4);
        for (int64_t i = 11; i <= 17; i++) { /* 11..14 auto-committed, 15..17 in flight */
            store_result_t r = {.row_no = i, .address = "a@x.com", .verdict = "unknown"};
            if (store_result_put(c, j.id, &r))
                _exit(5);
        }
        raise(SIGKILL); /* kill -9: no flush, no close */
        _exit(6);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("child did not die by SIGKILL (status %d)", status);

    st = open_store("crash.sqlite");
    store_bitmap_t bm;
    assert_int_equal(store_rows_done(st, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, 14);
    assert_true(store_bitmap_has(&bm, 14));
    assert_false(store_bitmap_has(&bm, 15));
    store_bitmap_free(&bm);
    store_job_t got;
    bool found;
    assert_int_equal(store_job_get(st, j.id, &got, &found), MP_OK);
    assert_int_equal(got.done_rows, 14); /* counters committed with their rows */
    assert_int_equal(got.n_unknown, 14);
    store_job_cleanup(&got);
    store_close(st);
}

static void test_row_order(void **state)
{
    (void)state;
    store_t *st = open_store("order.sqlite");
    store_job_t j, k;
    new_job(st, "fp-o", "", &j);
    new_job(st, "fp-o2", "", &k);
    static const int64_t rows[] = {5, 3, 1000000, 1, 4, 2};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        put(st, j.id, rows[i], "deliverable");
    put(st, k.id, 3, "risky"); /* another job's row 3 is not ours */
    static const int64_t want[] = {1, 2, 3, 4, 5, 1000000};
    /* queued (not flushed) results are visible to the iteration too */
    assert_int_equal(store_results_open(st, j.id, 1), MP_OK);
    assert_int_equal(store_results_open(st, j.id, 1), MP_ERR_ARG); /* one at a time */
    store_result_t r;
    bool have;
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(store_results_next(st, &r, &have), MP_OK);
        assert_true(have);
        assert_int_equal(r.row_no, want[i]);
        char addr[64];
        snprintf(addr, sizeof addr, "user%lld@x.com", (long long)want[i]);
        assert_string_equal(r.address, addr);
        assert_string_equal(r.verdict, "deliverable");
        assert_string_equal(r.reason, "accepted");
        assert_int_equal(r.score, 90);
        assert_non_null(strstr(r.result_json, addr));
        assert_null(r.row_error);
    }
    assert_int_equal(store_results_next(st, &r, &have), MP_OK);
    assert_false(have);
    assert_int_equal(store_flush(st), MP_OK);
    assert_int_equal(store_results_open(st, j.id, 4), MP_OK);
    assert_int_equal(store_results_next(st, &r, &have), MP_OK);
    assert_int_equal(r.row_no, 4);
    store_results_close(st);
    store_close(st);
}

static void test_cache(void **state)
{
    (void)state;
    store_wall_set(wall_cb, NULL);
    fake_wall = 1700000000;
    store_t *st = open_store("cache.sqlite");
    store_cached_t c;
    bool found;
    assert_int_equal(store_cache_get(st, "a@x.com", -1, &c, &found), MP_OK);
    assert_false(found);
    assert_int_equal(store_cache_put(st, "a@x.com", "deliverable", "{\"v\":1}", 0), MP_OK);
    fake_wall += 3600;
    assert_int_equal(store_cache_get(st, "a@x.com", 7200, &c, &found), MP_OK);
    assert_true(found);
    assert_string_equal(c.result_json, "{\"v\":1}");
    assert_string_equal(c.verdict, "deliverable");
    assert_int_equal(c.checked_at, 1700000000);
    free(c.result_json);
    assert_int_equal(store_cache_get(st, "a@x.com", 3600, &c, &found), MP_OK);
    assert_true(found); /* exactly max_age old: still fresh */
    free(c.result_json);
    assert_int_equal(store_cache_get(st, "a@x.com", 3599, &c, &found), MP_OK);
    assert_false(found);
    assert_int_equal(store_cache_get(st, "a@x.com", -1, &c, &found), MP_OK);
    assert_true(found);
    free(c.result_json);

    /* a newer check replaces, an older one does not */
    assert_int_equal(store_cache_put(st, "a@x.com", "unknown", "{\"v\":2}", 0), MP_OK);
    assert_int_equal(store_cache_put(st, "a@x.com", "risky", "{\"v\":0}", 1600000000), MP_OK);
    assert_int_equal(store_cache_get(st, "a@x.com", 10, &c, &found), MP_OK);
    assert_true(found);
    assert_string_equal(c.result_json, "{\"v\":2}");
    free(c.result_json);

    /* persisted, prunable */
    assert_int_equal(store_cache_put(st, "old@x.com", "deliverable", "{}", 1600000000), MP_OK);
    store_close(st);
    st = open_store("cache.sqlite");
    int64_t n = 0;
    assert_int_equal(store_cache_prune(st, 86400, &n), MP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_cache_get(st, "old@x.com", -1, &c, &found), MP_OK);
    assert_false(found);
    store_close(st);
    store_wall_set(NULL, NULL);
}

/* The batch age limit uses the monotonic clock (mp_clock_set). */
static void test_batch_age(void **state)
{
    (void)state;
    mp_clock_set(mono_cb, NULL);
    fake_mono = 1000;
    store_t *a = open_store("age.sqlite");
    store_t *b = open_store("age.sqlite"); /* a second handle sees only commits */
    store_job_t j;
    new_job(a, "fp-age", "", &j);
    put(a, j.id, 1, "deliverable");
    fake_mono += 100;
    assert_int_equal(store_tick(a), MP_OK);
    store_bitmap_t bm;
    assert_int_equal(store_rows_done(b, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, 0); /* not committed yet */
    store_bitmap_free(&bm);
    fake_mono += 100; /* 200 ms since the batch began */
    put(a, j.id, 2, "deliverable");
    assert_int_equal(store_rows_done(b, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, 2);
    store_bitmap_free(&bm);
    put(a, j.id, 3, "deliverable");
    fake_mono += 250;
    assert_int_equal(store_tick(a), MP_OK); /* a timer's tick commits an idle batch */
    assert_int_equal(store_rows_done(b, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, 3);
    store_bitmap_free(&bm);
    store_close(a);
    store_close(b);
    mp_clock_set(NULL, NULL);
}

static void test_two_handles(void **state)
{
    (void)state;
    store_t *a = open_store("two.sqlite");
    store_t *b = open_store("two.sqlite");
    store_job_t j, k;
    new_job(a, "fp-two", "", &j);
    put(a, j.id, 1, "deliverable"); /* a's batch is open */
    /* b reads while a writes (WAL) and sees the committed job, not the queued row */
    store_job_t got;
    bool found;
    assert_int_equal(store_job_get(b, j.id, &got, &found), MP_OK);
    assert_true(found);
    assert_int_equal(got.done_rows, 0);
    store_job_cleanup(&got);
    assert_int_equal(store_flush(a), MP_OK);
    assert_int_equal(store_job_get(b, j.id, &got, &found), MP_OK);
    assert_int_equal(got.done_rows, 1);
    store_job_cleanup(&got);
    /* both write, one after the other's commit */
    new_job(b, "fp-two-b", "", &k);
    put(b, k.id, 1, "risky");
    assert_int_equal(store_flush(b), MP_OK);
    put(a, j.id, 2, "risky");
    assert_int_equal(store_flush(a), MP_OK);
    store_job_t *jobs;
    size_t n;
    assert_int_equal(store_job_list(a, &jobs, &n), MP_OK);
    assert_int_equal(n, 2);
    store_jobs_free(jobs, n);
    store_close(a);
    store_close(b);
}

/* ---- schema 2: shared JSON, staged cache, first put wins across handles ------------ */

static int64_t sql_int(const char *file, const char *q)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(tpath(file), &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* A store written by schema 1 (the DDL of migrations[0], kept here as it was released)
 * opens, is migrated, and its job resumes. */
static void test_migrate_v1(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(tpath("v1.sqlite"), &db), SQLITE_OK);
    static const char *const v1 =
        "PRAGMA journal_mode=WAL;"
        "BEGIN;"
        "CREATE TABLE jobs(num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " created INTEGER NOT NULL, updated INTEGER NOT NULL, input_path TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, options TEXT NOT NULL, output_path TEXT,"
        " state TEXT NOT NULL CHECK(state IN ('queued','running','done','failed','interrupted')),"
        " message TEXT, total_rows INTEGER NOT NULL DEFAULT -1,"
        " done_rows INTEGER NOT NULL DEFAULT 0, n_deliverable INTEGER NOT NULL DEFAULT 0,"
        " n_undeliverable INTEGER NOT NULL DEFAULT 0, n_risky INTEGER NOT NULL DEFAULT 0,"
        " n_unknown INTEGER NOT NULL DEFAULT 0, n_error INTEGER NOT NULL DEFAULT 0,"
        " ckpt_row INTEGER NOT NULL DEFAULT 0, ckpt_offset INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX jobs_by_fingerprint ON jobs(fingerprint, options, created);"
        "CREATE TABLE results(key INTEGER PRIMARY KEY,"
        " job INTEGER GENERATED ALWAYS AS (key >> 32) VIRTUAL,"
        " row_no INTEGER GENERATED ALWAYS AS (key & 4294967295) VIRTUAL,"
        " address TEXT NOT NULL, row_error TEXT, verdict TEXT, reason TEXT, score INTEGER,"
        " result TEXT, checked_at INTEGER NOT NULL);"
        "CREATE TABLE cache(address TEXT PRIMARY KEY, verdict TEXT, result TEXT NOT NULL,"
        " checked_at INTEGER NOT NULL);"
        "CREATE INDEX cache_by_age ON cache(checked_at);"
        "INSERT INTO jobs(num, id, created, updated, input_path, fingerprint, options, state,"
        " total_rows, done_rows, n_deliverable, n_error)"
        " VALUES(7, 'abcdefghjk', 1700000000, 1700000000, '/data/v1.csv', 'fp-v1', 'o',"
        " 'interrupted', 5, 3, 2, 1);"
        "INSERT INTO results(key, address, verdict, reason, score, result, checked_at) VALUES"
        " ((7 << 32) | 2, 'b@x.com', 'deliverable', 'accepted', 90, '{\"r\":2}', 1700000000),"
        " ((7 << 32) | 1, 'a@x.com', 'deliverable', 'accepted', 91, '{\"r\":1}', 1700000000);"
        "INSERT INTO results(key, address, row_error, checked_at) VALUES"
        " ((7 << 32) | 4, '', 'no_address', 1700000000);"
        "INSERT INTO cache VALUES('a@x.com', 'deliverable', '{\"r\":1}', 1700000000);"
        "PRAGMA application_id = 1297109578;" /* 0x4d50524a */
        "PRAGMA user_version = 1;"
        "COMMIT;";
    char *msg = NULL;
    if (sqlite3_exec(db, v1, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("v1 schema: %s", msg);
    sqlite3_close(db);

    store_t *st = open_store("v1.sqlite");
    assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
    assert_string_equal(reasons_of(st, "abcdefghjk"), "accepted=2,no_address=1");
    store_job_t got;
    bool found;
    assert_int_equal(store_job_find(st, "fp-v1", "o", &got, &found), MP_OK);
    assert_true(found);
    assert_string_equal(got.id, "abcdefghjk");
    assert_int_equal(got.done_rows, 3);
    store_job_cleanup(&got);
    store_bitmap_t bm;
    assert_int_equal(store_rows_done(st, "abcdefghjk", &bm), MP_OK);
    assert_int_equal(bm.count, 3);
    assert_true(store_bitmap_has(&bm, 1) && store_bitmap_has(&bm, 2) && store_bitmap_has(&bm, 4));
    assert_false(store_bitmap_has(&bm, 3));
    store_bitmap_free(&bm);

    /* resume: a migrated row still wins over a second put; a new row is stored */
    put(st, "abcdefghjk", 2, "risky");
    put(st, "abcdefghjk", 3, "risky");
    assert_int_equal(store_flush(st), MP_OK);
    static const int64_t want[] = {1, 2, 3, 4};
    static const char *const wjson[] = {"{\"r\":1}", "{\"r\":2}", NULL, NULL};
    assert_int_equal(store_results_open(st, "abcdefghjk", 1), MP_OK);
    for (size_t i = 0; i < 4; i++) {
        store_result_t r;
        bool have;
        assert_int_equal(store_results_next(st, &r, &have), MP_OK);
        assert_true(have);
        assert_int_equal(r.row_no, want[i]);
        if (wjson[i])
            assert_string_equal(r.result_json, wjson[i]);
        if (i == 1)
            assert_string_equal(r.verdict, "deliverable");
        if (i == 2)
            assert_string_equal(r.verdict, "risky");
        if (i == 3)
            assert_string_equal(r.row_error, "no_address");
    }
    store_results_close(st);
    assert_int_equal(store_job_get(st, "abcdefghjk", &got, &found), MP_OK);
    assert_int_equal(got.done_rows, 4);
    assert_int_equal(got.n_risky, 1);
    store_job_cleanup(&got);
    /* the counters follow new rows, not the ignored second put of row 2 */
    assert_string_equal(reasons_of(st, "abcdefghjk"), "accepted=3,no_address=1");
    store_cached_t c;
    assert_int_equal(store_cache_get(st, "a@x.com", -1, &c, &found), MP_OK);
    assert_true(found);
    assert_string_equal(c.result_json, "{\"r\":1}");
    assert_int_equal(c.checked_at, 1700000000);
    free(c.result_json);
    store_close(st);

    /* ad-hoc SQL still reads the same way; new rows come after the migrated ones */
    assert_int_equal(sql_int("v1.sqlite", "SELECT count(*) FROM results WHERE job = 7"), 4);
    assert_int_equal(sql_int("v1.sqlite", "SELECT row_no FROM results WHERE job = 7"
                                          " ORDER BY seq DESC LIMIT 1"), 3);
    assert_int_equal(sql_int("v1.sqlite", "SELECT count(*) FROM sqlite_sequence"
                                          " WHERE name = 'results'"), 1);
    assert_int_equal(sql_int("v1.sqlite", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
}

/* Repeated JSON is stored once per job and referred to; the cache refers to results, and
 * such entries go with the job. */
static void test_shared_json(void **state)
{
    (void)state;
    store_wall_set(wall_cb, NULL);
    fake_wall = 1700000000;
    store_t *st = open_store("shared.sqlite");
    store_job_t j, k;
    new_job(st, "fp-s", "", &j);
    new_job(st, "fp-s2", "", &k);
    const char *json = "{\"email\":\"dup@x.com\",\"verdict\":\"deliverable\"}";
    for (int64_t row = 1; row <= 3; row++) {
        store_result_t r = {.row_no = row, .address = "dup@x.com", .verdict = "deliverable",
                            .reason = "accepted", .score = 90, .result_json = json};
        assert_int_equal(store_result_put(st, j.id, &r), MP_OK);
    }
    assert_int_equal(store_cache_put(st, "dup@x.com", "deliverable", json, 0), MP_OK);
    store_result_t other = {.row_no = 1, .address = "dup@x.com", .verdict = "deliverable",
                            .result_json = json};
    assert_int_equal(store_result_put(st, k.id, &other), MP_OK); /* another job: a copy */
    assert_int_equal(store_flush(st), MP_OK);
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM results WHERE result"
                                              " IS NOT NULL"), 2);
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM results WHERE ref"
                                              " IS NOT NULL"), 2);
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM cache_log WHERE ref"
                                              " IS NOT NULL AND result IS NULL"), 1);
    assert_int_equal(store_results_open(st, j.id, 1), MP_OK);
    for (int64_t row = 1; row <= 3; row++) {
        store_result_t r;
        bool have;
        assert_int_equal(store_results_next(st, &r, &have), MP_OK);
        assert_true(have);
        assert_int_equal(r.row_no, row);
        assert_string_equal(r.result_json, json);
        assert_int_equal(r.score, 90);
    }
    store_results_close(st);

    /* a result answered from the cache refers to the cached row when in the same job */
    store_cached_t c;
    bool found;
    assert_int_equal(store_cache_get(st, "dup@x.com", -1, &c, &found), MP_OK);
    assert_true(found);
    store_result_t again = {.row_no = 4, .address = "dup@x.com", .verdict = "deliverable",
                            .result_json = c.result_json};
    assert_int_equal(store_result_put(st, j.id, &again), MP_OK);
    free(c.result_json);
    store_close(st); /* merges the staged entry: the cache refers to job j's row */
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM results WHERE ref"
                                              " IS NOT NULL"), 3);
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM cache WHERE ref IS NOT NULL"
                                              " AND result IS NULL"), 1);
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM cache_log"), 0);

    /* deleting the job deletes the cache entries that refer to it (no copy: a delete
     * never grows the file) */
    st = open_store("shared.sqlite");
    assert_int_equal(store_job_delete(st, j.id), MP_OK);
    assert_int_equal(store_cache_get(st, "dup@x.com", -1, &c, &found), MP_OK);
    assert_false(found);
    assert_int_equal(store_results_open(st, k.id, 1), MP_OK);
    store_result_t r;
    bool have;
    assert_int_equal(store_results_next(st, &r, &have), MP_OK);
    assert_true(have);
    assert_string_equal(r.result_json, json);
    store_results_close(st);
    store_close(st);
    assert_int_equal(sql_int("shared.sqlite", "SELECT count(*) FROM cache"), 0);
    store_wall_set(NULL, NULL);
}

static void sql_exec(const char *file, const char *q)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(tpath(file), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", q, msg);
    sqlite3_close(db);
}

static int64_t file_size(const char *name)
{
    struct stat sb;
    return stat(tpath(name), &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* A result as vd_to_json writes it, for one address. */
static void real_json(char *out, size_t size, int64_t i)
{
    snprintf(out, size,
             "{\"email\":\"user%lld@d%lld.example\",\"normalized\":\"user%lld@d%lld.example\","
             "\"verdict\":\"undeliverable\",\"reason\":\"mailbox_absent\",\"reason_text\":\"the "
             "server says there is no such user\",\"score\":1,\"score_factors\":[{\"factor\":"
             "\"mailbox_absent\",\"points\":1}],\"syntax\":{\"valid\":true,\"local\":\"user%lld\","
             "\"domain\":\"d%lld.example\",\"domain_ascii\":\"d%lld.example\",\"utf8_local\":false,"
             "\"rule\":null},\"domain\":{\"exists\":true,\"mx\":[{\"host\":\"mx%lld.example\","
             "\"pref\":10,\"ips\":[\"192.0.2.%lld\"]}],\"null_mx\":false,\"implicit_mx\":false,"
             "\"spf\":true,\"dmarc\":false,\"provider\":null,\"gateway\":false},\"smtp\":{\"result\":"
             "\"rejected\",\"code\":550,\"enhanced\":\"5.1.1\",\"message\":\"<user%lld@d%lld.example>"
             ": Recipient address rejected: User unknown in virtual mailbox table\",\"stage\":"
             "\"rcpt\",\"rule\":\"code:550\",\"catch_all\":false,\"probe\":null,\"mx_host\":"
             "\"mx%lld.example\",\"mx_ip\":\"192.0.2.%lld\",\"tls\":true,\"tls_verified\":false,"
             "\"attempts\":1,\"round_trips\":%lld,\"mx_geo\":null},\"flags\":{\"disposable\":false,"
             "\"free\":false,\"role\":false,\"gibberish\":false,\"gibberish_score\":0.%04lld},"
             "\"suggestion\":null,\"list_match\":null,\"duration_ms\":%lld}",
             (long long)i, (long long)(i % 97), (long long)i, (long long)(i % 97), (long long)i,
             (long long)(i % 97), (long long)(i % 97), (long long)(i % 97),
             (long long)(i % 250 + 1), (long long)i, (long long)(i % 97), (long long)(i % 97),
             (long long)(i % 250 + 1), (long long)(4 + i % 5), (long long)(i * 7919 % 10000),
             (long long)(20 + i % 300));
}

/* Results are packed (a few hundred bytes a row), read back exactly, rows of the older
 * TEXT form read as they are, a damaged one is an error; deleting a job gives the space
 * back to the file system (incremental vacuum, WAL cut), also for a store made before
 * auto_vacuum (rewritten once). */
static void test_packed_and_reclaimed(void **state)
{
    (void)state;
    for (int old = 0; old < 2; old++) {
        const char *name = old ? "pack-old.sqlite" : "pack.sqlite";
        store_t *st = open_store(name);
        if (old) { /* as a store of the previous release: no auto_vacuum */
            store_close(st);
            sql_exec(name, "PRAGMA auto_vacuum=NONE; VACUUM");
            assert_int_equal(sql_int(name, "PRAGMA auto_vacuum"), 0);
            st = open_store(name);
        } else {
            assert_int_equal(sql_int(name, "PRAGMA auto_vacuum"), 2);
        }
        store_job_t j;
        new_job(st, old ? "fp-pack-old" : "fp-pack", "", &j);
        enum { N = 20000 };
        char json[2048];
        size_t text_bytes = 0;
        for (int64_t i = 1; i <= N; i++) {
            char addr[64];
            snprintf(addr, sizeof addr, "user%lld@d%lld.example", (long long)i,
                     (long long)(i % 97));
            real_json(json, sizeof json, i);
            text_bytes += strlen(json);
            store_result_t r = {.row_no = i, .address = addr, .verdict = "undeliverable",
                                .reason = "mailbox_absent", .score = 1, .result_json = json};
            assert_int_equal(store_result_put(st, j.id, &r), MP_OK);
            assert_int_equal(store_cache_put(st, addr, "undeliverable", json, 0), MP_OK);
        }
        store_close(st); /* merges the cache */
        assert_int_equal(sql_int(name, "SELECT count(*) FROM results WHERE typeof(result)"
                                       " <> 'blob'"), 0);
        int64_t packed = sql_int(name, "SELECT sum(length(result)) FROM results");
        assert_true(packed * 4 < (int64_t)text_bytes); /* 1.2 KB -> under 300 bytes */
        int64_t before = file_size(name) + file_size(old ? "pack-old.sqlite-wal"
                                                          : "pack.sqlite-wal");
        assert_true(before / N < 700);
        /* a row of the TEXT form, and a damaged packed one */
        sql_exec(name, "UPDATE results SET result = '{\"old\":1}' WHERE row_no = 5");
        st = open_store(name);
        assert_int_equal(store_results_open(st, j.id, 1), MP_OK);
        store_result_t r;
        bool have;
        for (int64_t i = 1; i <= N; i++) {
            assert_int_equal(store_results_next(st, &r, &have), MP_OK);
            assert_true(have);
            real_json(json, sizeof json, i);
            assert_string_equal(r.result_json, i == 5 ? "{\"old\":1}" : json);
        }
        store_results_close(st);
        store_cached_t c;
        bool found;
        assert_int_equal(store_cache_get(st, "user77@d77.example", -1, &c, &found), MP_OK);
        assert_true(found);
        real_json(json, sizeof json, 77);
        assert_string_equal(c.result_json, json);
        free(c.result_json);
        store_close(st);
        sql_exec(name, "UPDATE results SET result = x'01ff000000abcdef' WHERE row_no = 6");
        st = open_store(name);
        assert_int_equal(store_results_open(st, j.id, 6), MP_OK);
        assert_int_equal(store_results_next(st, &r, &have), MP_ERR_IO);
        assert_non_null(strstr(store_errmsg(st), "damaged"));
        /* delete: the file shrinks to its bare tables, the WAL is cut */
        assert_int_equal(store_job_delete(st, j.id), MP_OK);
        int64_t after = file_size(name) + file_size(old ? "pack-old.sqlite-wal"
                                                         : "pack.sqlite-wal");
        assert_true(after * 10 < before);
        assert_true(file_size(old ? "pack-old.sqlite-wal" : "pack.sqlite-wal") < 1 << 20);
        store_close(st);
        assert_int_equal(sql_int(name, "PRAGMA auto_vacuum"), 2);
        print_message("store %s: %lld bytes a row, %lld after the delete\n", name,
                      (long long)(before / N), (long long)after);
    }
}

/* Staged cache entries: found by the handle that staged them at once, by others after a
 * merge (job state change, close); a killed writer's entries are found after reopening. */
static void test_cache_staging(void **state)
{
    (void)state;
    store_wall_set(wall_cb, NULL);
    fake_wall = 1700000000;
    mp_clock_set(mono_cb, NULL);
    fake_mono = 1000;
    store_t *a = open_store("stage.sqlite");
    store_t *b = open_store("stage.sqlite");
    store_job_t j;
    new_job(a, "fp-stage", "", &j);
    store_cached_t c;
    bool found;
    /* b indexes cache_log now (empty): what a stages later, b sees once merged */
    assert_int_equal(store_cache_get(b, "u4321@x.com", -1, &c, &found), MP_OK);
    assert_false(found);
    char addr[64], json[64];
    for (int i = 0; i < 5000; i++) { /* enough to grow the index a few times */
        snprintf(addr, sizeof addr, "u%d@x.com", i);
        snprintf(json, sizeof json, "{\"u\":%d}", i);
        assert_int_equal(store_cache_put(a, addr, "deliverable", json, 0), MP_OK);
    }
    assert_int_equal(store_flush(a), MP_OK);
    assert_int_equal(store_cache_get(a, "u4321@x.com", 60, &c, &found), MP_OK);
    assert_true(found);
    assert_string_equal(c.result_json, "{\"u\":4321}");
    free(c.result_json);
    assert_int_equal(store_cache_get(a, "u5000@x.com", -1, &c, &found), MP_OK);
    assert_false(found);
    assert_int_equal(store_cache_get(b, "u4321@x.com", -1, &c, &found), MP_OK);
    assert_false(found); /* staged, not merged yet */
    /* newest wins between staged and merged entries, whatever the order of the puts */
    assert_int_equal(store_job_set_state(a, j.id, STORE_JOB_DONE, NULL), MP_OK); /* merges */
    fake_mono += STORE_BATCH_MS; /* b's look-ups read a snapshot at most this old */
    assert_int_equal(store_cache_get(b, "u4321@x.com", -1, &c, &found), MP_OK);
    assert_true(found);
    free(c.result_json);
    assert_int_equal(store_cache_put(a, "u1@x.com", "risky", "{\"old\":1}", 1600000000), MP_OK);
    assert_int_equal(store_cache_put(a, "u2@x.com", "risky", "{\"new\":2}", 1700000001), MP_OK);
    assert_int_equal(store_cache_get(a, "u1@x.com", -1, &c, &found), MP_OK);
    assert_string_equal(c.result_json, "{\"u\":1}");
    free(c.result_json);
    assert_int_equal(store_cache_get(a, "u2@x.com", -1, &c, &found), MP_OK);
    assert_string_equal(c.result_json, "{\"new\":2}");
    assert_string_equal(c.verdict, "risky");
    free(c.result_json);
    store_close(a);
    fake_mono += STORE_BATCH_MS;
    assert_int_equal(store_cache_get(b, "u1@x.com", -1, &c, &found), MP_OK);
    assert_string_equal(c.result_json, "{\"u\":1}");
    free(c.result_json);
    assert_int_equal(store_cache_get(b, "u2@x.com", -1, &c, &found), MP_OK);
    assert_string_equal(c.result_json, "{\"new\":2}");
    free(c.result_json);
    store_close(b);

    /* a writer killed with staged entries: they are in cache_log, found after reopening */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_t *w = NULL;
        char err[STORE_ERR_MAX];
        if (store_open(tpath("stage.sqlite"), &w, err, sizeof err))
            _exit(2);
        if (store_cache_put(w, "killed@x.com", "unknown", "{\"k\":1}", 0) || store_flush(w))
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(sql_int("stage.sqlite", "SELECT count(*) FROM cache_log"), 1);
    a = open_store("stage.sqlite");
    assert_int_equal(store_cache_get(a, "killed@x.com", -1, &c, &found), MP_OK);
    assert_true(found);
    assert_string_equal(c.result_json, "{\"k\":1}");
    free(c.result_json);
    store_close(a); /* and merged */
    assert_int_equal(sql_int("stage.sqlite", "SELECT count(*) FROM cache_log"), 0);
    assert_int_equal(sql_int("stage.sqlite", "SELECT count(*) FROM cache"), 5001);
    store_wall_set(NULL, NULL);
    mp_clock_set(NULL, NULL);
}

/* Two handles put rows of one job in turn: the first put of a row wins, counted once. */
static void test_first_put_two_handles(void **state)
{
    (void)state;
    store_t *a = open_store("fp2.sqlite");
    store_t *b = open_store("fp2.sqlite");
    store_job_t j;
    new_job(a, "fp-fp2", "", &j);
    put(a, j.id, 1, "deliverable");
    assert_int_equal(store_flush(a), MP_OK);
    put(b, j.id, 1, "risky"); /* b reads the job's rows: row 1 is there */
    put(b, j.id, 2, "risky");
    assert_int_equal(store_flush(b), MP_OK);
    put(a, j.id, 2, "deliverable"); /* a learns of b's row 2 when its batch begins */
    put(a, j.id, 3, "deliverable");
    assert_int_equal(store_flush(a), MP_OK);
    put(b, j.id, 3, "risky");
    assert_int_equal(store_flush(b), MP_OK);
    store_job_t got;
    bool found;
    assert_int_equal(store_job_get(a, j.id, &got, &found), MP_OK);
    assert_int_equal(got.done_rows, 3);
    assert_int_equal(got.n_deliverable, 2);
    assert_int_equal(got.n_risky, 1);
    store_job_cleanup(&got);
    assert_int_equal(store_results_open(a, j.id, 1), MP_OK);
    static const char *const want[] = {"deliverable", "risky", "deliverable"};
    for (int i = 0; i < 3; i++) {
        store_result_t r;
        bool have;
        assert_int_equal(store_results_next(a, &r, &have), MP_OK);
        assert_true(have);
        assert_string_equal(r.verdict, want[i]);
    }
    store_results_close(a);
    store_close(a);
    store_close(b);
}

/* Row order across iteration windows (2^20 rows each) and up to the last row number. */
static void test_row_order_far(void **state)
{
    (void)state;
    store_t *st = open_store("far.sqlite");
    store_job_t j;
    new_job(st, "fp-far", "", &j);
    static const int64_t rows[] = {4294967295, 3000000, 7, 1048577, 1048576, 2};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        put(st, j.id, rows[i], "unknown");
    static const int64_t want[] = {7, 1048576, 1048577, 3000000, 4294967295};
    assert_int_equal(store_results_open(st, j.id, 3), MP_OK);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        store_result_t r;
        bool have;
        assert_int_equal(store_results_next(st, &r, &have), MP_OK);
        assert_true(have);
        assert_int_equal(r.row_no, want[i]);
    }
    store_result_t r;
    bool have;
    assert_int_equal(store_results_next(st, &r, &have), MP_OK);
    assert_false(have);
    store_bitmap_t bm;
    assert_int_equal(store_rows_done(st, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, 6);
    assert_true(store_bitmap_has(&bm, 4294967295));
    store_bitmap_free(&bm);
    store_close(st);
}

static void test_job_list(void **state)
{
    (void)state;
    store_wall_set(wall_cb, NULL);
    store_t *st = open_store("list.sqlite");
    store_job_t *jobs;
    size_t n;
    assert_int_equal(store_job_list(st, &jobs, &n), MP_OK);
    assert_int_equal(n, 0);
    store_jobs_free(jobs, n);
    store_job_t j[3];
    for (int i = 0; i < 3; i++) {
        fake_wall = 1700000000 + i * 60;
        char fp[16];
        snprintf(fp, sizeof fp, "fp-%d", i);
        new_job(st, fp, "", &j[i]);
    }
    assert_int_equal(store_job_set_state(st, j[0].id, STORE_JOB_DONE, NULL), MP_OK);
    assert_int_equal(store_job_set_state(st, j[1].id, STORE_JOB_FAILED, "disk full"), MP_OK);
    put(st, j[2].id, 1, "unknown");
    assert_int_equal(store_job_list(st, &jobs, &n), MP_OK); /* flushes nothing: sees committed */
    assert_int_equal(n, 3);
    assert_string_equal(jobs[0].id, j[2].id); /* newest first */
    assert_string_equal(jobs[1].id, j[1].id);
    assert_string_equal(jobs[2].id, j[0].id);
    assert_int_equal(jobs[1].state, STORE_JOB_FAILED);
    assert_string_equal(jobs[1].message, "disk full");
    assert_int_equal(jobs[2].state, STORE_JOB_DONE);
    assert_int_equal(jobs[2].created, 1700000000);
    assert_string_equal(store_job_state_name(jobs[0].state), "queued");
    store_jobs_free(jobs, n);
    store_close(st);
    store_wall_set(NULL, NULL);
}

/* CPU time (user + system) of this process: the machine is shared, wall time would
 * measure the neighbours and the disk. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes this process has written with write(2)/pwrite(2) so far (/proc/self/io wchar). */
static double written_mb(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    double v = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "wchar:", 6) == 0)
            v = strtod(line + 6, NULL) / 1e6;
    if (f)
        fclose(f);
    return v;
}

/* What the bulk command does, at N rows (MP_STORE_BENCH_N, default 1,000,000): a cache
 * look-up (a miss), a result of ~730 bytes of JSON and a cache entry per distinct
 * address, in the order a shuffled list is checked (100,000 rows at a time, grouped by
 * domain, 100 addresses per domain), then the done-rows bitmap, the output pass in row
 * order and the close (which merges the cache entries). */
static void test_million(void **state)
{
    (void)state;
    /* a measurement, not a check: 1 GB and a few seconds, so only on request */
    const char *b = getenv("MP_STORE_BENCH");
    if (!b || strcmp(b, "1") != 0)
        skip();
    const char *ns = getenv("MP_STORE_BENCH_N");
    const unsigned N = ns && *ns ? (unsigned)strtoul(ns, NULL, 10) : 1000000u;
    const unsigned ndom = N / 100 ? N / 100 : 1;
    store_t *st = open_store("million.sqlite");
    store_job_t j;
    new_job(st, "fp-m", "", &j);
    /* row r has domain d(r) (a fixed shuffle); bulk reads 100,000 rows, then the engine
     * finishes them by domain: the order of the puts, chunk after chunk */
    const unsigned chunk = 100000;
    unsigned *order = malloc(N * sizeof *order), *dom = malloc(N * sizeof *dom);
    unsigned *count = calloc(ndom + 1, sizeof *count);
    assert_non_null(order);
    assert_non_null(dom);
    assert_non_null(count);
    for (unsigned i = 0; i < N; i++)
        dom[i] = (unsigned)(((uint64_t)(i + 1) * 2654435761u) % ndom);
    for (unsigned c0 = 0; c0 < N; c0 += chunk) {
        unsigned c1 = N - c0 < chunk ? N : c0 + chunk;
        memset(count, 0, (ndom + 1) * sizeof *count);
        for (unsigned i = c0; i < c1; i++)
            count[dom[i] + 1]++;
        for (unsigned d = 0; d < ndom; d++)
            count[d + 1] += count[d];
        for (unsigned i = c0; i < c1; i++)
            order[c0 + count[dom[i]]++] = i + 1;
    }
    size_t json_bytes = 0;
    double w0 = written_mb(), t0 = now_s();
    for (unsigned k = 0; k < N; k++) {
        unsigned i = order[k];
        char addr[64], json[2048];
        snprintf(addr, sizeof addr, "u%u@n%05u.bench", i, dom[i - 1]);
        real_json(json, sizeof json, i); /* a result as vd_to_json writes it */
        json_bytes += strlen(json);
        store_result_t r = {.row_no = i, .address = addr, .verdict = "undeliverable",
                            .reason = "no_mail_server", .score = 2, .result_json = json};
        store_cached_t c;
        bool found = true;
        /* bulk asks the cache first (a miss here), then stores the result and the entry */
        if (store_cache_get(st, addr, 86400, &c, &found) || found ||
            store_result_put(st, j.id, &r) || store_cache_put(st, addr, "undeliverable", json, 0))
            fail_msg("put %u: %s", i, store_errmsg(st));
    }
    assert_int_equal(store_flush(st), MP_OK);
    double t1 = now_s(), w1 = written_mb();
    store_bitmap_t bm;
    assert_int_equal(store_rows_done(st, j.id, &bm), MP_OK);
    assert_int_equal(bm.count, N);
    store_bitmap_free(&bm);
    double t2 = now_s();
    assert_int_equal(store_results_open(st, j.id, 1), MP_OK);
    store_result_t r;
    bool have;
    unsigned n = 0;
    while (store_results_next(st, &r, &have) == MP_OK && have)
        if (r.row_no == (int64_t)++n && !r.result_json)
            break;
    double t3 = now_s();
    assert_int_equal(n, N);
    assert_int_equal(store_close(st), MP_OK); /* merges the staged cache entries */
    double t4 = now_s(), w4 = written_mb();
    int64_t size = file_size("million.sqlite") + file_size("million.sqlite-wal");
    st = open_store("million.sqlite");
    double t5 = now_s();
    assert_int_equal(store_job_delete(st, j.id), MP_OK);
    double t6 = now_s();
    int64_t after = file_size("million.sqlite") + file_size("million.sqlite-wal");
    assert_int_equal(store_close(st), MP_OK);
    printf("store (CPU time): %u cache misses, results and cache entries (%.0f B JSON) in bulk order: get+put+commit "
           "%.2f s (%.2f us/row, %.0f B written/row), done-rows bitmap %.2f s, iterate %.2f s, "
           "close (cache merge) %.2f s (%.0f B written/row), file + WAL %.0f MB (%.0f B/row); "
           "delete %.2f s, then %lld bytes\n",
           N, (double)json_bytes / N, t1 - t0, (t1 - t0) * 1e6 / N, (w1 - w0) * 1e6 / N, t2 - t1,
           t3 - t2, t4 - t3, (w4 - w1) * 1e6 / N, (double)size / 1e6, (double)size / N,
           t6 - t5, (long long)after);
    free(order);
    free(dom);
    free(count);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_store.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_schema),     cmocka_unit_test(test_fingerprint_and_default),
        cmocka_unit_test(test_create_find_resume), cmocka_unit_test(test_crash),
        cmocka_unit_test(test_row_order),       cmocka_unit_test(test_cache),
        cmocka_unit_test(test_batch_age),       cmocka_unit_test(test_two_handles),
        cmocka_unit_test(test_job_list),        cmocka_unit_test(test_migrate_v1),
        cmocka_unit_test(test_job_reasons),
        cmocka_unit_test(test_shared_json),     cmocka_unit_test(test_cache_staging),
        cmocka_unit_test(test_packed_and_reclaimed),
        cmocka_unit_test(test_first_put_two_handles), cmocka_unit_test(test_row_order_far),        cmocka_unit_test(test_million),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
