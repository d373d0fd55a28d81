/*
 * bulk.c - `mailprobe bulk INPUT [-o OUTPUT]` and `mailprobe jobs`.
 *
 * A bulk run is a job in the SQLite job store, in two phases:
 *   1. check: stream the input rows; rows already stored (an earlier, interrupted run of
 *      the same job) are skipped; a malformed row is stored with its error; an address
 *      seen before in this job or checked within --max-age is answered from the store;
 *      the rest go to the engine, a window at a time, so that checks of one domain wait
 *      together and share SMTP sessions. Results are committed in small batches, so
 *      `kill -9` loses at most the checks in flight.
 *   2. output: read the input again and write every row, in input order, with all its
 *      columns and mailprobe's, from the stored results - to a temporary file renamed
 *      into place at the end.
 * Ctrl-C stops phase 1 cleanly (results so far are kept, the job is "interrupted");
 * running the same command again continues it.
 *
 * stdin is spooled to a temporary file first, since phase 2 reads the input again.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "bulkio/bulkio.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define BULK_WINDOW 2048 /* addresses in the engine at once */
#define BULK_CHUNK 100000 /* distinct addresses read, then sent to the engine by domain */
#define PEND_BUCKETS 8192

/* One address in the engine, and every row that wants its result. */
typedef struct pend {
    char *addr;
    const char *domain;     /* after the last '@' (grouping key) */
    uint64_t seq;           /* order of first appearance */
    int64_t *rows;
    size_t nrows, cap;
    struct pend *next;
    struct bulk *b;
} pend_t;

typedef struct bulk {
    cli_cfg_t *cfg;
    store_t *st;
    store_job_t job;
    engine_t *engine;
    struct event_base *base;
    pend_t *tab[PEND_BUCKETS];
    pend_t **chunk;         /* read, not yet sent to the engine */
    size_t nchunk;
    uint64_t seq;
    size_t inflight;
    bool stop;          /* Ctrl-C / SIGTERM */
    bool failed;
    char failmsg[STORE_ERR_MAX + 64];
    uint64_t rows_read, rows_skipped, rows_checked_now, rows_reused, rows_error;
    uint64_t by_verdict[4];  /* rows checked or reused in this run, per vd_verdict_t */
    uint64_t start_ms;
    bool tty;
    struct event *progress_ev;
    uint64_t last_line_ms;
} bulk_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static pend_t *pend_find(bulk_t *b, const char *addr)
{
    for (pend_t *p = b->tab[hash_str(addr) % PEND_BUCKETS]; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    return NULL;
}

static bool pend_add_row(pend_t *p, int64_t row)
{
    if (p->nrows == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 2;
        int64_t *nr = realloc(p->rows, cap * sizeof *nr);
        if (!nr)
            return false;
        p->rows = nr;
        p->cap = cap;
    }
    p->rows[p->nrows++] = row;
    return true;
}

static void pend_remove(bulk_t *b, pend_t *p)
{
    pend_t **pp = &b->tab[hash_str(p->addr) % PEND_BUCKETS];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    free(p->addr);
    free(p->rows);
    free(p);
}

static void bulk_fail(bulk_t *b, const char *what, const char *detail)
{
    if (b->failed)
        return;
    b->failed = true;
    snprintf(b->failmsg, sizeof b->failmsg, "%s: %s", what, detail);
    event_base_loopbreak(b->base);
}

/* Store one row's result (the JSON of a check, or nothing for a row error). */
static void put_row(bulk_t *b, int64_t row_no, const char *address, const char *row_error,
                    const char *verdict, const char *reason, int score, const char *json,
                    int64_t checked_at)
{
    store_result_t r = {row_no, address ? address : "", row_error, verdict, reason, score,
                        json, checked_at};
    if (store_result_put(b->st, b->job.id, &r) != MP_OK)
        bulk_fail(b, "job store", store_errmsg(b->st));
}

static void on_result(vd_result_t *res, void *arg)
{
    pend_t *p = arg;
    bulk_t *b = p->b;
    char *json = vd_to_json(res, false);
    if (!json) {
        bulk_fail(b, "result", "out of memory");
    } else {
        const char *verdict = vd_verdict_name(res->verdict);
        for (size_t i = 0; i < p->nrows; i++)
            put_row(b, p->rows[i], p->addr, NULL, verdict, vd_reason_name(res->reason),
                    res->score, json, 0);
        if ((unsigned)res->verdict < 4)
            b->by_verdict[res->verdict] += p->nrows;
        if (store_cache_put(b->st, p->addr, verdict, json, mp_wall_s()) != MP_OK)
            bulk_fail(b, "job store", store_errmsg(b->st));
        b->rows_checked_now += p->nrows;
        free(json);
    }
    vd_result_free(res);
    b->inflight--;
    pend_remove(b, p);
}

/* An address answered by the store: seen earlier in this job, or fresh enough. */
static bool reuse_cached(bulk_t *b, int64_t row_no, const char *addr, int64_t max_age_s)
{
    store_cached_t c;
    bool found = false;
    if (store_cache_get(b->st, addr, max_age_s, &c, &found) != MP_OK) {
        bulk_fail(b, "job store", store_errmsg(b->st));
        return false;
    }
    if (!found)
        return false;
    json_error_t jerr;
    json_t *j = json_loads(c.result_json, 0, &jerr);
    const char *reason = j ? json_string_value(json_object_get(j, "reason")) : NULL;
    int score = j ? (int)json_integer_value(json_object_get(j, "score")) : 0;
    put_row(b, row_no, addr, NULL, c.verdict, reason, score, c.result_json, c.checked_at);
    for (unsigned v = 0; v < 4; v++)
        if (strcmp(c.verdict, vd_verdict_name((vd_verdict_t)v)) == 0)
            b->by_verdict[v]++;
    json_decref(j);
    free(c.result_json);
    b->rows_reused++;
    return true;
}

static void print_progress(bulk_t *b, bool final)
{
    if (b->cfg->no_progress)
        return;
    uint64_t now = mp_now_ms();
    double secs = (double)(now - b->start_ms) / 1000.0;
    uint64_t done = b->rows_checked_now + b->rows_reused + b->rows_error;
    double rate = secs > 0 ? (double)b->rows_checked_now / secs : 0;
    int64_t total = b->job.total_rows;
    char eta[32] = "";
    if (total > 0 && rate > 0 && !final) {
        double left = (double)((uint64_t)total - b->rows_skipped - done) / rate;
        snprintf(eta, sizeof eta, ", ETA %.0fs", left > 0 ? left : 0);
    }
    if (b->tty && !final && now - b->last_line_ms < 500)
        return;
    char counts[160];
    snprintf(counts, sizeof counts, "deliverable %llu, undeliverable %llu, risky %llu, "
             "unknown %llu, errors %llu", (unsigned long long)b->by_verdict[VD_DELIVERABLE],
             (unsigned long long)b->by_verdict[VD_UNDELIVERABLE],
             (unsigned long long)b->by_verdict[VD_RISKY],
             (unsigned long long)b->by_verdict[VD_UNKNOWN], (unsigned long long)b->rows_error);
    if (b->tty) {
        b->last_line_ms = now;
        char bar[22] = "";
        if (total > 0) {
            size_t fill = (size_t)(20.0 * (double)(done + b->rows_skipped) / (double)total);
            for (size_t i = 0; i < 20; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[20] = '\0';
        }
        char tot[24] = "?";
        if (total > 0)
            snprintf(tot, sizeof tot, "%lld", (long long)total);
        fprintf(stderr, "\r\033[K[%s] %llu/%s rows, %.0f/s%s | %s", bar,
                (unsigned long long)(done + b->rows_skipped), tot, rate, eta, counts);
        if (final)
            fputc('\n', stderr);
    } else if (final || now - b->last_line_ms >= 10000) {
        fprintf(stderr, "mailprobe: progress: %llu rows done (%llu checked now, %llu reused, "
                "%llu from an earlier run), %.0f addresses/s%s; %s\n",
                (unsigned long long)(done + b->rows_skipped),
                (unsigned long long)b->rows_checked_now, (unsigned long long)b->rows_reused,
                (unsigned long long)b->rows_skipped, rate, eta, counts);
        b->last_line_ms = now;
    }
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bulk_t *b = arg;
    print_progress(b, false);
    if (store_tick(b->st) != MP_OK)
        bulk_fail(b, "job store", store_errmsg(b->st));
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    bulk_t *b = arg;
    b->stop = true;
    event_base_loopbreak(b->base);
}

static void run_once(bulk_t *b)
{
    event_base_loop(b->base, EVLOOP_ONCE);
    if (store_tick(b->st) != MP_OK)
        bulk_fail(b, "job store", store_errmsg(b->st));
}

static int chunk_cmp(const void *a, const void *b)
{
    const pend_t *x = *(const pend_t *const *)a, *y = *(const pend_t *const *)b;
    int c = strcmp(x->domain, y->domain);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Send the chunk to the engine grouped by domain: a shuffled list then still gives the
 * engine runs of one domain's addresses, which share SMTP sessions. */
static void chunk_flush(bulk_t *b)
{
    qsort(b->chunk, b->nchunk, sizeof b->chunk[0], chunk_cmp);
    size_t i = 0;
    for (; i < b->nchunk && !b->stop && !b->failed; i++) {
        pend_t *p = b->chunk[i];
        b->inflight++;
        mp_status_t st = engine_check(b->engine, p->addr, on_result, p);
        if (st) {
            b->inflight--;
            bulk_fail(b, "engine", mp_strerror(st));
            i++;
            break;
        }
        while (b->inflight >= BULK_WINDOW && !b->stop && !b->failed)
            run_once(b);
    }
    /* what was not sent (stopped) stays in the table and is freed at the end */
    b->nchunk = 0;
}

/* Phase 1. Returns false when stopped or failed. */
static bool phase_check(bulk_t *b, bulkio_reader_t *rd)
{
    store_bitmap_t done;
    memset(&done, 0, sizeof done);
    if (store_rows_done(b->st, b->job.id, &done) != MP_OK) {
        bulk_fail(b, "job store", store_errmsg(b->st));
        return false;
    }
    b->chunk = calloc(BULK_CHUNK, sizeof *b->chunk);
    if (!b->chunk) {
        store_bitmap_free(&done);
        bulk_fail(b, "memory", "out of memory");
        return false;
    }
    int64_t age_s = (int64_t)(b->cfg->max_age_ms / 1000);
    int64_t job_age = mp_wall_s() - b->job.created + 1;
    if (age_s < job_age)
        age_s = job_age; /* an address checked earlier in this job is always reused */
    bool eof = false;
    while (!b->stop && !b->failed) {
        const bulkio_row_t *row;
        if (bulkio_reader_next(rd, &row) != MP_OK) {
            bulk_fail(b, "input", bulkio_reader_error(rd));
            break;
        }
        if (!row) {
            eof = true;
            break;
        }
        b->rows_read++;
        int64_t rn = (int64_t)row->row_no;
        if (store_bitmap_has(&done, (uint64_t)rn)) {
            b->rows_skipped++;
            continue;
        }
        if (row->err != BULKIO_ROW_OK) {
            put_row(b, rn, row->address, bulkio_row_err_name(row->err), NULL, NULL, 0, NULL, 0);
            b->rows_error++;
            continue;
        }
        pend_t *p = pend_find(b, row->address);
        if (p) {
            if (!pend_add_row(p, rn))
                bulk_fail(b, "memory", "out of memory");
            continue;
        }
        if (reuse_cached(b, rn, row->address, age_s))
            continue;
        p = calloc(1, sizeof *p);
        if (!p || !(p->addr = strdup(row->address)) || !pend_add_row(p, rn)) {
            if (p)
                free(p->addr);
            free(p);
            bulk_fail(b, "memory", "out of memory");
            break;
        }
        p->b = b;
        const char *at = strrchr(p->addr, '@');
        p->domain = at ? at + 1 : "";
        p->seq = ++b->seq;
        size_t h = hash_str(p->addr) % PEND_BUCKETS;
        p->next = b->tab[h];
        b->tab[h] = p;
        b->chunk[b->nchunk++] = p;
        if (b->nchunk == BULK_CHUNK)
            chunk_flush(b);
    }
    if (b->nchunk && !b->stop && !b->failed)
        chunk_flush(b);
    store_bitmap_free(&done);
    if (eof && !b->failed) {
        b->job.total_rows = (int64_t)b->rows_read;
        if (store_job_set_total(b->st, b->job.id, b->job.total_rows) != MP_OK)
            bulk_fail(b, "job store", store_errmsg(b->st));
    }
    while (b->inflight && !b->stop && !b->failed)
        run_once(b);
    if (store_flush(b->st) != MP_OK)
        bulk_fail(b, "job store", store_errmsg(b->st));
    return !b->stop && !b->failed;
}

typedef struct {
    const char *name;
    uint64_t n;
} tally_t;

static void tally_add(tally_t *t, size_t max, size_t *n, const char *name)
{
    if (!name || !*name)
        name = "-";
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].name, name) == 0) {
            t[i].n++;
            return;
        }
    if (*n < max) {
        t[*n].name = strdup(name);
        if (t[*n].name)
            t[(*n)++].n = 1;
    }
}

/* Phase 2: every input row, in order, with its stored result. */
static bool phase_output(bulk_t *b, bulkio_reader_t *rd, bulkio_writer_t *w, tally_t *verdicts,
                         size_t *nv, tally_t *reasons, size_t *nr)
{
    if (store_results_open(b->st, b->job.id, 1) != MP_OK) {
        bulk_fail(b, "job store", store_errmsg(b->st));
        return false;
    }
    store_result_t res;
    bool have = false;
    if (store_results_next(b->st, &res, &have) != MP_OK)
        have = false;
    bool ok = true;
    for (;;) {
        const bulkio_row_t *row;
        if (bulkio_reader_next(rd, &row) != MP_OK) {
            bulk_fail(b, "input", bulkio_reader_error(rd));
            ok = false;
            break;
        }
        if (!row)
            break;
        while (have && res.row_no < (int64_t)row->row_no)
            if (store_results_next(b->st, &res, &have) != MP_OK)
                have = false;
        const char *json = NULL, *err = NULL;
        if (have && res.row_no == (int64_t)row->row_no) {
            json = res.result_json;
            tally_add(verdicts, 8, nv, res.verdict ? res.verdict : "error");
            tally_add(reasons, 64, nr, res.reason ? res.reason
                                                  : (res.row_error ? res.row_error : "-"));
        } else {
            err = "not_checked";
            tally_add(verdicts, 8, nv, "error");
            tally_add(reasons, 64, nr, "not_checked");
        }
        if (bulkio_writer_put(w, row, json, err) != MP_OK) {
            bulk_fail(b, "output", bulkio_writer_error(w));
            ok = false;
            break;
        }
    }
    store_results_close(b->st);
    return ok;
}

/* Copy stdin to a temporary file: phase 2 reads the input a second time. */
static int spool_stdin(char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/mailprobe-stdin-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        if (write(fd, buf, n) != (ssize_t)n) {
            close(fd);
            unlink(path);
            return -1;
        }
    }
    close(fd);
    return ferror(stdin) ? -1 : 0;
}

/* The options that change results: a job only continues with the same ones. */
static void canonical_options(const cli_cfg_t *c, char *out, size_t size)
{
    snprintf(out, size, "column=%s;helo=%s;from=%s;probe=%d;role_risky=%d;offline=%d;"
             "private=%d;port=%u",
             c->column, c->helo, c->from, c->eo.catch_all_probe, c->eo.vd.role_risky,
             c->eo.offline, c->eo.allow_private_mx, c->eo.port);
}

static void print_help(void)
{
    fputs("usage: mailprobe bulk [options] INPUT|-\n"
          "       mailprobe bulk --resume JOB [options]\n"
          "\n"
          "Check every address of a CSV or NDJSON list. The output keeps every input row,\n"
          "in order, with all its columns, and appends mailprobe's.\n"
          "\n"
          "  -o, --output FILE      where to write (default: stdout); written to a\n"
          "                         temporary file and renamed when complete\n"
          "  --format csv|ndjson    output format (default: the input's)\n"
          "  --column NAME|N        the email column (default: detected)\n"
          "  --split-by-verdict DIR also write DIR/deliverable.csv, undeliverable.csv, ...\n"
          "  --store PATH           the job store (default: ~/.local/share/mailprobe/\n"
          "                         jobs.sqlite); the same command again continues a job\n"
          "  --resume JOB           continue job JOB (see `mailprobe jobs`)\n"
          "  --max-age DURATION     reuse results of earlier checks this fresh (e.g. 24h)\n"
          "  --no-progress          no progress on stderr\n",
          stdout);
    cli_cfg_help(CMD_BULK);
}

static int open_store(cli_cfg_t *cfg, store_t **st)
{
    char path[1024], err[STORE_ERR_MAX];
    if (cfg->store[0])
        mp_strlcpy(path, cfg->store, sizeof path);
    else if (store_default_path(path, sizeof path) != MP_OK)
        return cli_usage_error("cannot find a place for the job store: give --store PATH");
    if (store_open(path, st, err, sizeof err) != MP_OK)
        return cli_usage_error("job store %s: %s", path, err);
    return 0;
}

static void print_tally(const char *title, tally_t *t, size_t n)
{
    fprintf(stderr, "  %-22s %10s\n", title, "rows");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %-22s %10llu\n", t[i].name, (unsigned long long)t[i].n);
}

int cli_bulk(int argc, char **argv)
{
    static cli_cfg_t cfg;
    int first, rc = cli_cfg_parse(&cfg, CMD_BULK, "bulk", argc, argv, &first);
    if (rc == -1) {
        print_help();
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc - 1)
        rc = cli_usage_error("bulk: one input at a time (got %d)", argc - first);
    if (!rc && first >= argc && !cfg.resume[0])
        rc = cli_usage_error("bulk: no input given (a file, or - for stdin; try --help)");
    if (!rc)
        rc = cli_cfg_finish(&cfg);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);

    static bulk_t b;
    memset(&b, 0, sizeof b);
    b.cfg = &cfg;
    bulkio_reader_t *rd = NULL;
    bulkio_writer_t *w = NULL;
    char err[BULKIO_ERR_MAX + STORE_ERR_MAX];
    char input[1024] = "", spooled[1024] = "";
    char options[2048], fp[STORE_FP_MAX];
    rc = open_store(&cfg, &b.st);
    if (rc)
        goto done;

    /* which job: --resume, or the same input and options as an earlier run */
    bool found = false;
    canonical_options(&cfg, options, sizeof options);
    if (cfg.resume[0]) {
        if (store_job_get(b.st, cfg.resume, &b.job, &found) != MP_OK || !found) {
            rc = cli_usage_error("bulk: no job '%s' in the store (see mailprobe jobs)",
                                 cfg.resume);
            goto done;
        }
        mp_strlcpy(input, b.job.input_path, sizeof input);
        if (first < argc && strcmp(argv[first], input) != 0) {
            rc = cli_usage_error("bulk: job %s reads %s, not %s", cfg.resume, input,
                                 argv[first]);
            goto done;
        }
        if (!cfg.output[0] && b.job.output_path)
            mp_strlcpy(cfg.output, b.job.output_path, sizeof cfg.output);
    } else if (strcmp(argv[first], "-") == 0) {
        if (spool_stdin(spooled, sizeof spooled) != 0) {
            fprintf(stderr, "mailprobe: cannot read the input from stdin: %s\n",
                    strerror(errno));
            rc = EXIT_RUNTIME;
            goto done;
        }
        mp_strlcpy(input, spooled, sizeof input);
    } else {
        mp_strlcpy(input, argv[first], sizeof input);
    }

    /* everything that can fail on bad input fails here, before any work */
    bulkio_ropts_t ro;
    memset(&ro, 0, sizeof ro);
    ro.column = cfg.column[0] ? cfg.column : NULL;
    if (bulkio_reader_open(input, &ro, &rd, err, sizeof err) != MP_OK) {
        rc = cli_usage_error("bulk: %s", err);
        goto done;
    }
    bulkio_wopts_t wo;
    memset(&wo, 0, sizeof wo);
    wo.format = !cfg.format[0] ? BULKIO_FMT_AUTO
                : strcmp(cfg.format, "csv") == 0 ? BULKIO_FMT_CSV : BULKIO_FMT_NDJSON;
    wo.path = cfg.output[0] ? cfg.output : "-";
    wo.split_dir = cfg.split_dir[0] ? cfg.split_dir : NULL;
    if (bulkio_writer_open(&wo, bulkio_reader_schema(rd), &w, err, sizeof err) != MP_OK) {
        rc = cli_usage_error("bulk: %s", err);
        goto done;
    }
    if (store_fingerprint(input, fp, sizeof fp, err, sizeof err) != MP_OK) {
        rc = cli_usage_error("bulk: %s", err);
        goto done;
    }
    if (cfg.resume[0]) {
        if (strcmp(fp, b.job.fingerprint) != 0) {
            rc = cli_usage_error("bulk: %s changed since job %s started; start a new job",
                                 input, b.job.id);
            goto done;
        }
    } else if (!spooled[0] &&
               store_job_find(b.st, fp, options, &b.job, &found) == MP_OK && found &&
               b.job.state != STORE_JOB_DONE) {
        fprintf(stderr, "mailprobe: continuing job %s (%lld rows already done)\n", b.job.id,
                (long long)b.job.done_rows);
    } else {
        store_job_cleanup(&b.job);
        memset(&b.job, 0, sizeof b.job);
        b.job.input_path = spooled[0] ? (char *)"-" : input;
        b.job.fingerprint = fp;
        b.job.options = options;
        b.job.output_path = cfg.output[0] ? cfg.output : NULL;
        b.job.total_rows = -1;
        mp_status_t st = store_job_create(b.st, &b.job);
        /* store_job_create copied what it keeps; drop our borrowed pointers */
        b.job.input_path = b.job.fingerprint = b.job.options = b.job.output_path = NULL;
        if (st != MP_OK) {
            fprintf(stderr, "mailprobe: job store: %s\n", store_errmsg(b.st));
            rc = EXIT_RUNTIME;
            goto done;
        }
        bool f2 = false;
        char id[STORE_ID_MAX];
        mp_strlcpy(id, b.job.id, sizeof id);
        if (store_job_get(b.st, id, &b.job, &f2) != MP_OK || !f2) {
            fprintf(stderr, "mailprobe: job store: %s\n", store_errmsg(b.st));
            rc = EXIT_RUNTIME;
            goto done;
        }
        fprintf(stderr, "mailprobe: job %s started\n", b.job.id);
    }
    store_job_set_state(b.st, b.job.id, STORE_JOB_RUNNING, NULL);
    if (b.job.total_rows < 0 && !cfg.no_progress) {
        /* count the rows first (about a second per million) so progress has a total */
        bulkio_reader_t *cnt = NULL;
        if (bulkio_reader_open(input, &ro, &cnt, err, sizeof err) == MP_OK) {
            const bulkio_row_t *row;
            int64_t n = 0;
            while (bulkio_reader_next(cnt, &row) == MP_OK && row)
                n++;
            b.job.total_rows = n;
        }
        bulkio_reader_free(cnt);
    }

    b.base = event_base_new();
    mp_status_t est;
    b.engine = b.base ? engine_new(b.base, &cfg.eo, &est) : NULL;
    if (!b.engine) {
        fprintf(stderr, "mailprobe: %s\n", b.base ? mp_strerror(est) : "no event loop");
        rc = EXIT_RUNTIME;
        goto done;
    }
    struct event *sigint = evsignal_new(b.base, SIGINT, on_signal, &b);
    struct event *sigterm = evsignal_new(b.base, SIGTERM, on_signal, &b);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    b.tty = isatty(STDERR_FILENO);
    b.start_ms = mp_now_ms();
    b.last_line_ms = b.start_ms;
    b.progress_ev = event_new(b.base, -1, EV_PERSIST, on_progress, &b);
    struct timeval tick = {0, 200000}; /* commits idle stretches too (store_tick) */
    event_add(b.progress_ev, &tick);

    bool checked = phase_check(&b, rd);
    print_progress(&b, true);
    engine_stats_t es;
    engine_stats(b.engine, &es);
    uint64_t wall = mp_now_ms() - b.start_ms;

    if (!checked) {
        /* results so far are committed; the job continues next time */
        store_flush(b.st);
        const char *why = b.failed ? b.failmsg : "interrupted";
        store_job_set_state(b.st, b.job.id,
                            b.failed ? STORE_JOB_FAILED : STORE_JOB_INTERRUPTED, why);
        fprintf(stderr, "mailprobe: %s; job %s keeps %llu checked rows: run the same command "
                "again (or mailprobe bulk --resume %s) to continue\n", why, b.job.id,
                (unsigned long long)(b.rows_checked_now + b.rows_reused + b.rows_error +
                                     b.rows_skipped), b.job.id);
        rc = b.failed ? EXIT_RUNTIME : 130;
    } else {
        /* phase 2 */
        bulkio_reader_free(rd);
        rd = NULL;
        tally_t verdicts[8], reasons[64];
        size_t nv = 0, nr = 0;
        memset(verdicts, 0, sizeof verdicts);
        memset(reasons, 0, sizeof reasons);
        bool ok = bulkio_reader_open(input, &ro, &rd, err, sizeof err) == MP_OK &&
                  phase_output(&b, rd, w, verdicts, &nv, reasons, &nr) &&
                  bulkio_writer_commit(w) == MP_OK;
        if (!ok) {
            const char *why = b.failed ? b.failmsg : (w ? bulkio_writer_error(w) : err);
            store_job_set_state(b.st, b.job.id, STORE_JOB_FAILED, why);
            fprintf(stderr, "mailprobe: writing the output failed: %s\n", why);
            rc = EXIT_RUNTIME;
        } else {
            store_job_set_state(b.st, b.job.id, STORE_JOB_DONE, NULL);
            double secs = (double)wall / 1000.0;
            fprintf(stderr, "mailprobe: job %s done: %llu rows in %.1f s, %.0f addresses/s "
                    "checked\n", b.job.id, (unsigned long long)b.rows_read, secs,
                    secs > 0 ? (double)b.rows_checked_now / secs : 0.0);
            print_tally("verdict", verdicts, nv);
            print_tally("reason", reasons, nr);
            fprintf(stderr, "  sessions opened %llu, RCPTs %llu, catch-all probes %llu, "
                    "retries %llu; rows reused %llu, row errors %llu, from earlier runs %llu\n",
                    (unsigned long long)es.sessions, (unsigned long long)es.rcpts,
                    (unsigned long long)es.probes, (unsigned long long)es.retries,
                    (unsigned long long)b.rows_reused, (unsigned long long)b.rows_error,
                    (unsigned long long)b.rows_skipped);
            rc = 0;
        }
        for (size_t i = 0; i < nv; i++)
            free((char *)verdicts[i].name);
        for (size_t i = 0; i < nr; i++)
            free((char *)reasons[i].name);
    }
    event_free(b.progress_ev);
    event_free(sigint);
    event_free(sigterm);

done:
    free(b.chunk);
    for (size_t i = 0; i < PEND_BUCKETS; i++)
        while (b.tab[i])
            pend_remove(&b, b.tab[i]);
    engine_free(b.engine);
    if (b.base)
        event_base_free(b.base);
    bulkio_writer_free(w); /* removes the temporary output unless committed */
    bulkio_reader_free(rd);
    store_job_cleanup(&b.job);
    if (b.st)
        store_close(b.st);
    if (spooled[0])
        unlink(spooled);
    cli_cfg_cleanup(&cfg);
    return rc;
}

int cli_jobs(int argc, char **argv)
{
    static cli_cfg_t cfg;
    int first, rc = cli_cfg_parse(&cfg, CMD_BULK, "jobs", argc, argv, &first);
    if (rc == -1) {
        puts("usage: mailprobe jobs [--store PATH]\nList the bulk jobs of a job store.");
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc)
        rc = cli_usage_error("jobs: unexpected argument '%s'", argv[first]);
    store_t *st = NULL;
    if (!rc)
        rc = open_store(&cfg, &st);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    store_job_t *jobs = NULL;
    size_t n = 0;
    if (store_job_list(st, &jobs, &n) != MP_OK) {
        fprintf(stderr, "mailprobe: job store: %s\n", store_errmsg(st));
        store_close(st);
        cli_cfg_cleanup(&cfg);
        return EXIT_RUNTIME;
    }
    printf("%-16s %-12s %12s %12s  %s\n", "JOB", "STATE", "DONE", "ROWS", "INPUT");
    for (size_t i = 0; i < n; i++) {
        char total[32];
        if (jobs[i].total_rows >= 0)
            snprintf(total, sizeof total, "%lld", (long long)jobs[i].total_rows);
        else
            mp_strlcpy(total, "?", sizeof total);
        printf("%-16s %-12s %12lld %12s  %s\n", jobs[i].id, store_job_state_name(jobs[i].state),
               (long long)jobs[i].done_rows, total,
               jobs[i].input_path ? jobs[i].input_path : "");
    }
    store_jobs_free(jobs, n);
    store_close(st);
    cli_cfg_cleanup(&cfg);
    return 0;
}
