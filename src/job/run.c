/*
 * run.c - check the rows of a job into the store, on an event loop (see job.h).
 *
 * One "pump" event does all the work, a little per loop turn: it sends the current chunk
 * to the engine while fewer than JOB_WINDOW addresses are in flight, and when the chunk
 * is sent it reads the next JOB_SLICE rows. A finished check re-arms the pump (job_yield:
 * at the next loop turn, after the sockets are polled). The end
 * callback also runs from the pump, so callers never see it re-enter their own calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/job.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/str.h"

#define PEND_BUCKETS (1u << 18) /* > JOB_CHUNK: chains stay short (2 MiB of pointers) */

/* One address in the engine (or about to be), and every row that wants its result. */
typedef struct pend {
    char *addr;
    const char *domain;     /* after the last '@' (grouping key) */
    uint64_t seq;           /* order of first appearance */
    uint64_t hash;          /* of addr */
    int64_t *rows;
    size_t nrows, cap;
    struct pend *next;
    job_run_t *run;
} pend_t;

struct job_run {
    job_run_opts_t o;
    bulkio_ropts_t ro;
    char id[STORE_ID_MAX];
    bulkio_reader_t *rd;
    store_bitmap_t done;    /* rows stored by earlier runs */
    int64_t age_s;
    pend_t **tab;           /* PEND_BUCKETS chains */
    pend_t **chunk;         /* read, not yet sent to the engine */
    size_t nchunk, nsent;
    bool chunk_sorted;
    uint64_t seq;
    job_counts_t c;
    struct event *pump;
    bool stopped, failed, ended, detached;
    char msg[STORE_ERR_MAX + 64];
};

static pend_t *pend_find(job_run_t *r, const char *addr, uint64_t h)
{
    for (pend_t *p = r->tab[h % PEND_BUCKETS]; p; p = p->next)
        if (p->hash == h && strcmp(p->addr, addr) == 0)
            return p;
    return NULL;
}

static bool pend_add_row(pend_t *p, int64_t row)
{
    int64_t *nr = mp_array_grow(p->rows, &p->cap, p->nrows, sizeof *nr, 2);
    if (!nr)
        return false;
    p->rows = nr;
    p->rows[p->nrows++] = row;
    return true;
}

static void pend_remove(job_run_t *r, pend_t *p)
{
    pend_t **pp = &r->tab[p->hash % PEND_BUCKETS];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    free(p->addr);
    free(p->rows);
    free(p);
}

void job_yield(struct event *ev)
{
    static const struct timeval zero = {0, 0};
    event_add(ev, &zero);
}

static void kick(job_run_t *r)
{
    if (r->pump)
        job_yield(r->pump);
}

static void fail(job_run_t *r, const char *what, const char *detail)
{
    if (r->failed)
        return;
    r->failed = true;
    snprintf(r->msg, sizeof r->msg, "%s: %s", what, detail);
    kick(r);
}

/* Store one row's result (the JSON of a check, or nothing for a row error). */
static void put_row(job_run_t *r, int64_t row_no, const char *address, const char *row_error,
                    const char *verdict, const char *reason, int score, const char *json,
                    int64_t checked_at)
{
    store_result_t res = {row_no, address ? address : "", row_error, verdict, reason, score,
                          json, checked_at};
    if (store_result_put(r->o.st, r->id, &res) != MP_OK)
        fail(r, "job store", store_errmsg(r->o.st));
}

static void free_all(job_run_t *r)
{
    for (size_t i = 0; r->tab && i < PEND_BUCKETS; i++)
        while (r->tab[i])
            pend_remove(r, r->tab[i]);
    free(r->tab);
    if (r->pump)
        event_free(r->pump);
    bulkio_reader_free(r->rd);
    store_bitmap_free(&r->done);
    free(r->chunk);
    free(r);
}

/* A check came back: store it for every row that wants it; false when the run is gone
 * (the pend is freed). */
static bool pend_done(pend_t *p)
{
    job_run_t *r = p->run;
    r->c.inflight--;
    if (r->detached) {
        pend_remove(r, p);
        if (!r->c.inflight)
            free_all(r);
        return false;
    }
    return true;
}

/* Store a check's result (its JSON and the three columns) for every row of p. */
static void pend_store(job_run_t *r, pend_t *p, const char *verdict, const char *reason,
                       int score, const char *json)
{
    for (size_t i = 0; i < p->nrows; i++)
        put_row(r, p->rows[i], p->addr, NULL, verdict, reason, score, json, 0);
    for (unsigned v = 0; v < 4; v++)
        if (strcmp(verdict, vd_verdict_name((vd_verdict_t)v)) == 0)
            r->c.by_verdict[v] += p->nrows;
    if (store_cache_put(r->o.st, p->addr, verdict, json, mp_wall_s()) != MP_OK)
        fail(r, "job store", store_errmsg(r->o.st));
    r->c.rows_checked_now += p->nrows;
}

static void on_result(vd_result_t *res, void *arg)
{
    pend_t *p = arg;
    job_run_t *r = p->run;
    if (!pend_done(p)) {
        vd_result_free(res);
        return;
    }
    if (r->o.on_result)
        r->o.on_result(res, r->o.arg);
    char *json = vd_to_json(res, false);
    if (!json)
        fail(r, "result", "out of memory");
    else
        pend_store(r, p, vd_verdict_name(res->verdict), vd_reason_name(res->reason),
                   res->score, json);
    free(json);
    vd_result_free(res);
    pend_remove(r, p);
    kick(r);
}

/* A result from elsewhere (job_remote_fn): the same, its head read from the JSON text
 * without a tree (bulkio_result_head: jansson's json_loadb was a tenth of a pool's CPU). */
static void on_remote(const char *json, size_t len, void *arg)
{
    pend_t *p = arg;
    job_run_t *r = p->run;
    if (!pend_done(p))
        return;
    bulkio_result_head_t h;
    bool ok = bulkio_result_head(json, len, &h);
    if (ok && h.verdict[0] && !memchr(json, '\0', len)) {
        pend_store(r, p, h.verdict, h.reason[0] ? h.reason : NULL, h.score, json);
    } else {
        /* not checked (e.g. delivered to workers too many times): a row error */
        const char *error = ok && h.error[0] ? h.error : "bad_result";
        for (size_t i = 0; i < p->nrows; i++)
            put_row(r, p->rows[i], p->addr, error, NULL, NULL, 0, NULL, 0);
        r->c.rows_error += p->nrows;
    }
    pend_remove(r, p);
    kick(r);
}

/* An address answered by the store: seen earlier in this job, or fresh enough. */
static bool reuse_cached(job_run_t *r, int64_t row_no, const char *addr)
{
    store_cached_t c;
    bool found = false;
    if (store_cache_get(r->o.st, addr, r->age_s, &c, &found) != MP_OK) {
        fail(r, "job store", store_errmsg(r->o.st));
        return false;
    }
    if (!found)
        return false;
    bulkio_result_head_t h;
    (void)bulkio_result_head(c.result_json, strlen(c.result_json), &h); /* ours: well formed */
    const char *reason = h.reason[0] ? h.reason : NULL;
    int score = h.score;
    put_row(r, row_no, addr, NULL, c.verdict, reason, score, c.result_json, c.checked_at);
    for (unsigned v = 0; v < 4; v++)
        if (strcmp(c.verdict, vd_verdict_name((vd_verdict_t)v)) == 0)
            r->c.by_verdict[v]++;
    free(c.result_json);
    r->c.rows_reused++;
    return true;
}

static int chunk_cmp(const void *a, const void *b)
{
    const pend_t *x = *(const pend_t *const *)a, *y = *(const pend_t *const *)b;
    int c = strcmp(x->domain, y->domain);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One input row into the chunk, the store or an address already waiting. */
static void take_row(job_run_t *r, const bulkio_row_t *row)
{
    r->c.rows_read++;
    int64_t rn = (int64_t)row->row_no;
    if (store_bitmap_has(&r->done, (uint64_t)rn)) {
        r->c.rows_skipped++;
        return;
    }
    if (row->err != BULKIO_ROW_OK) {
        put_row(r, rn, row->address, bulkio_row_err_name(row->err), NULL, NULL, 0, NULL, 0);
        r->c.rows_error++;
        return;
    }
    uint64_t h = mp_fnv1a_str(MP_FNV_BASIS, row->address);
    pend_t *p = pend_find(r, row->address, h);
    if (p) {
        if (!pend_add_row(p, rn))
            fail(r, "memory", "out of memory");
        return;
    }
    if (reuse_cached(r, rn, row->address))
        return;
    p = calloc(1, sizeof *p);
    if (!p || !(p->addr = strdup(row->address)) || !pend_add_row(p, rn)) {
        if (p)
            free(p->addr);
        free(p);
        fail(r, "memory", "out of memory");
        return;
    }
    p->run = r;
    const char *at = strrchr(p->addr, '@');
    p->domain = at ? at + 1 : "";
    p->seq = ++r->seq;
    p->hash = h;
    p->next = r->tab[h % PEND_BUCKETS];
    r->tab[h % PEND_BUCKETS] = p;
    r->chunk[r->nchunk++] = p;
}

/* Read up to JOB_SLICE rows into the chunk. */
static void read_slice(job_run_t *r)
{
    for (size_t n = 0; n < JOB_SLICE && r->nchunk < JOB_CHUNK && !r->failed; n++) {
        const bulkio_row_t *row;
        if (bulkio_reader_next(r->rd, &row) != MP_OK) {
            fail(r, "input", bulkio_reader_error(r->rd));
            return;
        }
        if (!row) {
            r->c.eof = true;
            if (store_job_set_total(r->o.st, r->id, (int64_t)r->c.rows_read) != MP_OK)
                fail(r, "job store", store_errmsg(r->o.st));
            return;
        }
        take_row(r, row);
    }
}

static void end(job_run_t *r, job_end_t how)
{
    r->ended = true;
    if (store_flush(r->o.st) != MP_OK && how == JOB_END_DONE) {
        how = JOB_END_FAILED;
        snprintf(r->msg, sizeof r->msg, "job store: %s", store_errmsg(r->o.st));
    }
    r->o.on_end(r, how, how == JOB_END_DONE ? NULL : r->msg, r->o.arg);
}

static void pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_run_t *r = arg;
    if (r->ended)
        return;
    r->c.slices++;
    if (r->failed || r->stopped) {
        if (!r->failed)
            mp_strlcpy(r->msg, "interrupted", sizeof r->msg);
        end(r, r->failed ? JOB_END_FAILED : JOB_END_STOPPED);
        return;
    }
    /* a full chunk (or the last one) goes to the engine grouped by domain */
    if (!r->chunk_sorted && r->nchunk && (r->nchunk == JOB_CHUNK || r->c.eof)) {
        qsort(r->chunk, r->nchunk, sizeof r->chunk[0], chunk_cmp);
        r->chunk_sorted = true;
    }
    if (r->chunk_sorted) {
        while (r->nsent < r->nchunk && r->c.inflight < JOB_WINDOW && !r->failed) {
            pend_t *p = r->chunk[r->nsent++];
            r->c.inflight++;
            mp_status_t st = r->o.remote
                ? r->o.remote(r->o.remote_ctx, p->rows[0], p->addr, on_remote, p)
                : engine_check(r->o.engine, p->addr, on_result, p);
            if (st != MP_OK) {
                r->c.inflight--;
                fail(r, "engine", mp_strerror(st));
            }
        }
        if (r->nsent < r->nchunk || r->failed)
            return; /* a finished check kicks the pump again */
        r->nchunk = r->nsent = 0;
        r->chunk_sorted = false;
    }
    if (!r->c.eof) {
        read_slice(r);
        kick(r);
        return;
    }
    if (!r->c.inflight && !r->nchunk)
        end(r, JOB_END_DONE);
}

mp_status_t job_run_start(const job_run_opts_t *o, job_run_t **out, char *err, size_t errsize)
{
    *out = NULL;
    job_run_t *r = calloc(1, sizeof *r);
    if (!r || !(r->chunk = calloc(JOB_CHUNK, sizeof *r->chunk)) ||
        !(r->tab = calloc(PEND_BUCKETS, sizeof *r->tab))) {
        if (r)
            free(r->chunk);
        free(r);
        snprintf(err, errsize, "out of memory");
        return MP_ERR_NOMEM;
    }
    r->o = *o;
    r->ro = *o->ro;
    r->o.ro = &r->ro;
    mp_strlcpy(r->id, o->job_id, sizeof r->id);
    r->o.job_id = r->id;
    mp_status_t st = bulkio_reader_open(o->input, &r->ro, &r->rd, err, errsize);
    r->o.input = NULL; /* the caller's string: only needed to open */
    if (st == MP_OK && store_rows_done(o->st, r->id, &r->done) != MP_OK) {
        snprintf(err, errsize, "job store: %s", store_errmsg(o->st));
        st = MP_ERR_IO;
    }
    if (st == MP_OK && !(r->pump = event_new(o->base, -1, 0, pump, r))) {
        snprintf(err, errsize, "out of memory");
        st = MP_ERR_NOMEM;
    }
    if (st != MP_OK) {
        free_all(r);
        return st;
    }
    /* an address checked earlier in this job is always reused */
    int64_t job_age = mp_wall_s() - o->job_created + 1;
    r->age_s = o->max_age_s > job_age ? o->max_age_s : job_age;
    kick(r);
    *out = r;
    return MP_OK;
}

void job_run_stop(job_run_t *r)
{
    r->stopped = true;
    kick(r);
}

void job_run_counts(const job_run_t *r, job_counts_t *out)
{
    *out = r->c;
}

const char *job_run_id(const job_run_t *r)
{
    return r->id;
}

void job_run_free(job_run_t *r, bool engine_gone)
{
    if (!r)
        return;
    if (r->c.inflight && !engine_gone) {
        /* the engine still holds pointers to our pends: go when the last comes back */
        r->detached = true;
        if (r->pump) {
            event_free(r->pump);
            r->pump = NULL;
        }
        return;
    }
    free_all(r);
}
