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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "bulkio/bulkio.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "fleet/fleet.h"
#include "fleet/queue.h"
#include "job/job.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

typedef struct bulk {
    cli_cfg_t *cfg;
    store_t *st;
    store_job_t job;
    engine_t *engine;
    struct event_base *base;
    job_run_t *run;
    bool ended;
    job_end_t end;
    char endmsg[STORE_ERR_MAX + 64];
    uint64_t start_ms;
    bool tty;
    struct event *progress_ev;
    uint64_t last_line_ms;
    fleet_jobq_t *pool;   /* --pool: the workers check, this process collects */
} bulk_t;

/* --pool: an address goes to the workers (job_remote_fn). */
static mp_status_t pool_check(void *ctx, int64_t row, const char *addr, job_remote_cb cb,
                              void *arg)
{
    return fleet_jobq_add(ctx, row, addr, cb, arg);
}

static void pool_note(const char *line, void *arg)
{
    (void)arg;
    fprintf(stderr, "\nmailprobe: %s\n", line);
}

static void pool_closed(void *arg)
{
    bulk_t *b = arg;
    b->pool = NULL;
    event_base_loopbreak(b->base);
}

/* --pool: Redis answers before anything is stored or submitted (else one line, 5). */
static int pool_reachable(const char *url)
{
    char err[400] = "cannot start an event loop";
    struct event_base *base = event_base_new();
    fleet_t *f = base ? fleet_open(base, url, 5000, err, sizeof err) : NULL;
    fleet_free(f);
    if (base)
        event_base_free(base);
    if (f)
        return 0;
    fprintf(stderr, "mailprobe: %s; nothing was submitted\n", err);
    return EXIT_RUNTIME;
}

static void print_progress(bulk_t *b, bool final)
{
    if (b->cfg->no_progress || !b->run)
        return;
    job_counts_t c;
    job_run_counts(b->run, &c);
    uint64_t now = mp_now_ms();
    double secs = (double)(now - b->start_ms) / 1000.0;
    uint64_t done = c.rows_checked_now + c.rows_reused + c.rows_error;
    double rate = secs > 0 ? (double)c.rows_checked_now / secs : 0;
    int64_t total = b->job.total_rows;
    char eta[32] = "";
    if (total > 0 && rate > 0 && !final) {
        double left = (double)((uint64_t)total - c.rows_skipped - done) / rate;
        snprintf(eta, sizeof eta, ", ETA %.0fs", left > 0 ? left : 0);
    }
    if (b->tty && !final && now - b->last_line_ms < 500)
        return;
    char counts[160];
    snprintf(counts, sizeof counts, "deliverable %llu, undeliverable %llu, risky %llu, "
             "unknown %llu, errors %llu", (unsigned long long)c.by_verdict[VD_DELIVERABLE],
             (unsigned long long)c.by_verdict[VD_UNDELIVERABLE],
             (unsigned long long)c.by_verdict[VD_RISKY],
             (unsigned long long)c.by_verdict[VD_UNKNOWN], (unsigned long long)c.rows_error);
    if (b->tty) {
        b->last_line_ms = now;
        char bar[22] = "";
        if (total > 0) {
            size_t fill = (size_t)(20.0 * (double)(done + c.rows_skipped) / (double)total);
            for (size_t i = 0; i < 20; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[20] = '\0';
        }
        char tot[24] = "?";
        if (total > 0)
            snprintf(tot, sizeof tot, "%lld", (long long)total);
        fprintf(stderr, "\r\033[K[%s] %llu/%s rows, %.0f/s%s | %s", bar,
                (unsigned long long)(done + c.rows_skipped), tot, rate, eta, counts);
        if (final)
            fputc('\n', stderr);
    } else if (final || now - b->last_line_ms >= 10000) {
        fprintf(stderr, "mailprobe: progress: %llu rows done (%llu checked now, %llu reused, "
                "%llu from an earlier run), %.0f addresses/s%s; %s\n",
                (unsigned long long)(done + c.rows_skipped),
                (unsigned long long)c.rows_checked_now, (unsigned long long)c.rows_reused,
                (unsigned long long)c.rows_skipped, rate, eta, counts);
        b->last_line_ms = now;
    }
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bulk_t *b = arg;
    print_progress(b, false);
    if (store_tick(b->st) != MP_OK && b->run)
        job_run_stop(b->run); /* the run fails on its next store write anyway */
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    bulk_t *b = arg;
    if (b->run)
        job_run_stop(b->run);
}

static void on_end(job_run_t *r, job_end_t end, const char *message, void *arg)
{
    (void)r;
    bulk_t *b = arg;
    b->ended = true;
    b->end = end;
    mp_strlcpy(b->endmsg, message ? message : "", sizeof b->endmsg);
    event_base_loopbreak(b->base);
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
          "  --name-column FULL|FIRST,LAST  the name column(s) (default: detected from\n"
          "                         first_name/last_name/name...): evidence of the\n"
          "                         catch-all assessment of accept-all rows\n"
          "  --split-by-verdict DIR also write DIR/deliverable.csv, undeliverable.csv, ...;\n"
          "                         risky rows assessed likely_valid / likely_invalid go\n"
          "                         to risky_likely_valid.csv / risky_likely_invalid.csv\n"
          "  --store PATH           the job store (default: ~/.local/state/mailprobe/\n"
          "                         jobs.sqlite); the same command again continues a job\n"
          "  --resume JOB           continue job JOB (see `mailprobe jobs`)\n"
          "  --max-age DURATION     reuse results of earlier checks this fresh (e.g. 24h)\n"
          "  --no-progress          no progress on stderr\n"
          "  --pool                 let the `mailprobe worker`s around the --redis Redis\n"
          "                         check the list; the output is the same\n",
          stdout);
    cli_cfg_help(CMD_BULK);
}

/* A damaged store: say so once, and how to go on (running again cannot help). */
static int store_damaged(const char *path, const char *err)
{
    const char *from = *path && strstr(err, path) ? strstr(err, path) : err;
    fprintf(stderr, "mailprobe: job store %s\nmailprobe: running again will not help: start "
            "afresh with --store NEW.sqlite (rows are checked again), or first save what it "
            "holds: sqlite3 %s .recover | sqlite3 NEW.sqlite, then --store NEW.sqlite\n",
            from, *path ? path : "STORE");
    return EXIT_RUNTIME;
}

/* The store failed: the damage advice, or its message. EXIT_RUNTIME. */
static int store_failed(const char *path, store_t *st)
{
    if (store_err_damaged(store_errmsg(st)))
        return store_damaged(path, store_errmsg(st));
    fprintf(stderr, "mailprobe: job store: %s\n", store_errmsg(st));
    return EXIT_RUNTIME;
}

static int open_store(cli_cfg_t *cfg, store_t **st, char *path, size_t psize)
{
    char err[STORE_ERR_MAX];
    if (cfg->store[0])
        mp_strlcpy(path, cfg->store, psize);
    else if (store_default_path(path, psize) != MP_OK)
        return cli_usage_error("cannot find a place for the job store: give --store PATH");
    if (store_open(path, st, err, sizeof err) != MP_OK) {
        if (store_err_damaged(err))
            return store_damaged(path, err);
        /* the message names the file already */
        return strstr(err, path) ? cli_usage_error("job store: %s", err)
                                 : cli_usage_error("job store %s: %s", path, err);
    }
    return 0;
}

static void print_engine_stats(const engine_stats_t *es, const job_counts_t *c)
{
    fprintf(stderr, "  sessions opened %llu, RCPTs %llu, catch-all probes %llu, "
            "retries %llu; rows reused %llu, row errors %llu, from earlier runs %llu\n",
            (unsigned long long)es->sessions, (unsigned long long)es->rcpts,
            (unsigned long long)es->probes, (unsigned long long)es->retries,
            (unsigned long long)c->rows_reused, (unsigned long long)c->rows_error,
            (unsigned long long)c->rows_skipped);
    fprintf(stderr, "  batches %llu (%llu on a reused session), most refusals in "
            "one session %u, most sessions open at once to one server address %u\n",
            (unsigned long long)es->runs, (unsigned long long)es->reused,
            es->max_refusals, es->max_per_ip);
}

static void print_tally(const char *title, const job_tally_t *t, size_t n)
{
    fprintf(stderr, "  %-22s %10s\n", title, "rows");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %-22s %10llu\n", t[i].name, (unsigned long long)t[i].n);
}

/* The list prior and the catch-all assessments, under the tallies. */
static void print_assessment(const job_out_t *out)
{
    assess_prior_t pr;
    uint64_t l[3];
    job_out_assess_summary(out, &pr, l);
    if (pr.known)
        fprintf(stderr, "  list prior: %.1f %% undeliverable among %llu checkable addresses "
                "(the prior of the catch-all assessment)\n", pr.share * 100.0,
                (unsigned long long)pr.rows);
    else
        fprintf(stderr, "  list prior: none (%llu checkable addresses, %d needed)\n",
                (unsigned long long)pr.rows, ASSESS_PRIOR_MIN_ROWS);
    if (l[0] + l[1] + l[2])
        fprintf(stderr, "  catch-all assessment: %llu likely_valid, %llu likely_invalid, "
                "%llu no_evidence\n", (unsigned long long)l[ASSESS_LIKELY_VALID],
                (unsigned long long)l[ASSESS_LIKELY_INVALID],
                (unsigned long long)l[ASSESS_NO_EVIDENCE]);
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
    int lock_fd = -1;
    bool continuing = false;
    char store_path[1024] = "";
    rc = open_store(&cfg, &b.st, store_path, sizeof store_path);
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
        char given[PATH_MAX];
        if (first < argc && strcmp(realpath(argv[first], given) ? given : argv[first],
                                   input) != 0) {
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
        /* stored absolute: --resume ID works from any directory */
        char abs[PATH_MAX];
        mp_strlcpy(input, realpath(argv[first], abs) ? abs : argv[first], sizeof input);
    }

    /* everything that can fail on bad input fails here, before any work */
    bulkio_ropts_t ro;
    memset(&ro, 0, sizeof ro);
    ro.column = cfg.column[0] ? cfg.column : NULL;
    ro.name_column = cfg.name_column[0] ? cfg.name_column : NULL;
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
    wo.split_assessed = true;
    if (bulkio_writer_open(&wo, bulkio_reader_schema(rd), &w, err, sizeof err) != MP_OK) {
        rc = cli_usage_error("bulk: %s", err);
        goto done;
    }
    if (store_fingerprint(input, fp, sizeof fp, err, sizeof err) != MP_OK) {
        rc = cli_usage_error("bulk: %s", err);
        goto done;
    }
    if (cfg.pool && (rc = pool_reachable(cfg.redis)) != 0)
        goto done;
    if (!cfg.eo.offline) {   /* identity checks; without --helo the PTR may become it */
        cli_doctor_startup(&cfg, false);   /* warns once the job holds its lock */
        canonical_options(&cfg, options, sizeof options);
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
        continuing = true; /* said once its lock is taken */
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
            rc = store_failed(store_path, b.st);
            goto done;
        }
        bool f2 = false;
        char id[STORE_ID_MAX];
        mp_strlcpy(id, b.job.id, sizeof id);
        if (store_job_get(b.st, id, &b.job, &f2) != MP_OK || !f2) {
            rc = store_failed(store_path, b.st);
            goto done;
        }
        fprintf(stderr, "mailprobe: job %s started\n", b.job.id);
    }
    long holder = 0;
    mp_status_t lst = store_job_lock(b.st, b.job.id, &lock_fd, &holder);
    if (lst != MP_OK) {
        fprintf(stderr, "mailprobe: %s%s\n", store_errmsg(b.st),
                lst == MP_ERR_LIMIT ? "; let it finish (or stop it) and run this again" : "");
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (continuing)
        fprintf(stderr, "mailprobe: continuing job %s (%lld rows already done)\n", b.job.id,
                (long long)b.job.done_rows);
    store_job_set_state(b.st, b.job.id, STORE_JOB_RUNNING, NULL);
    cli_doctor_warn(&cfg);
    if (b.job.total_rows < 0) {
        /* count the rows first (about a second per million): progress has a total, and
         * the room the job needs is known */
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

    {
        /* room for what is left, before any work (rows unknown: 24 bytes a row guessed) */
        struct stat isb;
        int64_t in_size = stat(input, &isb) == 0 ? (int64_t)isb.st_size : 0;
        int64_t left = (b.job.total_rows >= 0 ? b.job.total_rows : in_size / 24) -
                       b.job.done_rows;
        if (store_space_check(b.st, left, 0) != MP_OK) {
            fprintf(stderr, "mailprobe: %s\n", store_errmsg(b.st));
            store_job_set_state(b.st, b.job.id, STORE_JOB_FAILED, store_errmsg(b.st));
            rc = EXIT_RUNTIME;
            goto done;
        }
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

    bulkio_reader_free(rd); /* it validated the input; the run reads it again */
    rd = NULL;
    int64_t age_s = (int64_t)(cfg.max_age_ms / 1000);
    job_run_opts_t jo = {b.base, b.engine, b.st, b.job.id, b.job.created, input, &ro, age_s,
                         on_end, NULL, &b, NULL, NULL};
    if (cfg.pool) {
        b.pool = fleet_jobq_open(b.base, cfg.redis, b.job.id, pool_note, &b, err, sizeof err);
        if (!b.pool) {
            fprintf(stderr, "mailprobe: %s; nothing was submitted\n", err);
            store_job_set_state(b.st, b.job.id, STORE_JOB_INTERRUPTED, err);
            rc = EXIT_RUNTIME;
            event_free(b.progress_ev);
            event_free(sigint);
            event_free(sigterm);
            goto done;
        }
        jo.remote = pool_check;
        jo.remote_ctx = b.pool;
    }
    if (job_run_start(&jo, &b.run, err, sizeof err) != MP_OK) {
        b.ended = true;
        b.end = JOB_END_FAILED;
        mp_strlcpy(b.endmsg, err, sizeof b.endmsg);
    } else {
        event_base_dispatch(b.base);
        if (b.end == JOB_END_DONE && !b.pool)
            cli_finish_sessions(b.base, b.engine);
    }
    if (b.pool) {
        /* complete: the job's keys go; else its batches are withdrawn */
        fleet_jobq_close(b.pool, b.end == JOB_END_DONE, pool_closed, &b);
        while (b.pool)
            event_base_dispatch(b.base);
    }
    print_progress(&b, true);
    job_counts_t c;
    memset(&c, 0, sizeof c);
    if (b.run)
        job_run_counts(b.run, &c);
    engine_stats_t es;
    engine_stats(b.engine, &es);
    uint64_t wall = mp_now_ms() - b.start_ms;
    uint64_t kept = c.rows_checked_now + c.rows_reused + c.rows_error + c.rows_skipped;

    if (b.end != JOB_END_DONE) {
        /* results so far are committed; the job continues next time */
        bool failed = b.end == JOB_END_FAILED;
        store_flush(b.st);
        store_job_set_state(b.st, b.job.id, failed ? STORE_JOB_FAILED : STORE_JOB_INTERRUPTED,
                            b.endmsg);
        /* what the store holds, not what this run counted (a failed commit lost some) */
        store_job_t now;
        bool have = false;
        memset(&now, 0, sizeof now);
        if (store_job_get(b.st, b.job.id, &now, &have) == MP_OK && have)
            kept = (uint64_t)now.done_rows;
        store_job_cleanup(&now);
        if (store_err_damaged(b.endmsg))
            rc = store_damaged(store_path, b.endmsg);
        else
            fprintf(stderr, "mailprobe: %s; job %s keeps %llu checked rows: run the same "
                    "command again (or mailprobe bulk --resume %s) to continue\n", b.endmsg,
                    b.job.id, (unsigned long long)kept, b.job.id);
        if (!store_err_damaged(b.endmsg))
            rc = failed ? EXIT_RUNTIME : 130;
    } else {
        /* phase 2: the writer was opened before any work (a bad path fails early) */
        job_out_t *out = NULL;
        bool fin = false;
        /* the address history of the same file, for the catch-all assessment */
        history_t *hist = NULL;
        char herr[STORE_ERR_MAX];
        if (history_open(store_path, &hist, herr, sizeof herr) != MP_OK)
            fprintf(stderr, "mailprobe: address history unavailable (%s): the catch-all "
                    "assessment goes without it\n", herr);
        mp_status_t ost = job_out_open(b.st, b.job.id, input, &ro, hist, true, w, &out, err,
                                       sizeof err);
        w = NULL; /* job_out owns it now */
        if (ost == MP_OK && job_out_step(out, SIZE_MAX, &fin) != MP_OK)
            mp_strlcpy(err, job_out_error(out), sizeof err);
        if (!fin) {
            store_job_set_state(b.st, b.job.id, STORE_JOB_FAILED, err);
            fprintf(stderr, "mailprobe: writing the output failed: %s\n", err);
            rc = EXIT_RUNTIME;
        } else {
            store_job_set_state(b.st, b.job.id, STORE_JOB_DONE, NULL);
            double secs = (double)wall / 1000.0;
            fprintf(stderr, "mailprobe: job %s done: %llu rows in %.1f s, %.0f addresses/s "
                    "checked\n", b.job.id, (unsigned long long)c.rows_read, secs,
                    secs > 0 ? (double)c.rows_checked_now / secs : 0.0);
            const job_tally_t *tv, *tr;
            size_t nv, nr;
            job_out_tally(out, &tv, &nv, &tr, &nr);
            print_tally("verdict", tv, nv);
            print_tally("reason", tr, nr);
            print_assessment(out);
            if (cfg.pool) /* the sessions were the workers' (see their logs) */
                fprintf(stderr, "  checked by the pool's workers; rows reused %llu, row errors "
                        "%llu, from earlier runs %llu\n", (unsigned long long)c.rows_reused,
                        (unsigned long long)c.rows_error, (unsigned long long)c.rows_skipped);
            else
                print_engine_stats(&es, &c);
            rc = 0;
        }
        job_out_free(out); /* removes the temporary output unless committed */
        history_close(hist);
    }
    event_free(b.progress_ev);
    event_free(sigint);
    event_free(sigterm);

done:
    if (lock_fd >= 0)
        store_job_unlock(b.st, b.job.id, lock_fd);
    engine_free(b.engine);
    job_run_free(b.run, true);
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
        puts("usage: mailprobe jobs [--store PATH]\n"
             "List the bulk jobs of a job store.\n"
             "\n"
             "  --store PATH           the job store (default: as for bulk,\n"
             "                         ~/.local/state/mailprobe/jobs.sqlite)\n"
             "  --config FILE          read options from FILE alone");
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc)
        rc = cli_usage_error("jobs: unexpected argument '%s'", argv[first]);
    store_t *st = NULL;
    char path[1024];
    if (!rc)
        rc = open_store(&cfg, &st, path, sizeof path);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    store_job_t *jobs = NULL;
    size_t n = 0;
    if (store_job_list(st, &jobs, &n) != MP_OK) {
        store_failed(path, st);
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
