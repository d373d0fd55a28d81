/*
 * out.c - write a job's output: every input row, in input order, with its stored result
 * (see job.h). The input and the results (ordered by row) are read side by side; a
 * row with a catch-all assessment (assess.c, computed at open) has it spliced into its
 * result's JSON, which the writer turns into the CSV columns and the split files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job/job.h"
#include "util/buf.h"
#include "util/str.h"

struct job_out {
    store_t *st;
    job_assess_t *assess;
    mp_buf_t spliced; /* a result with its catch-all assessment */
    bulkio_reader_t *rd;
    bulkio_writer_t *w;
    bool iterating;
    store_result_t res;
    bool have;
    bool done;
    job_tally_t verdicts[JOB_TALLY_VERDICTS], reasons[JOB_TALLY_REASONS];
    size_t nv, nr;
    char err[BULKIO_ERR_MAX + STORE_ERR_MAX];
};

static void tally_add(job_tally_t *t, size_t max, size_t *n, const char *name)
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

mp_status_t job_out_open(store_t *st, const char *job_id, const char *input,
                         const bulkio_ropts_t *ro, history_t *hist, bool record,
                         bulkio_writer_t *w, job_out_t **out, char *err, size_t errsize)
{
    *out = NULL;
    job_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        bulkio_writer_free(w);
        snprintf(err, errsize, "out of memory");
        return MP_ERR_NOMEM;
    }
    o->st = st;
    o->w = w;
    mp_buf_init(&o->spliced, 64u * 1024u * 1024u);
    mp_status_t s = job_assess_build(st, job_id, input, ro, hist, record,
                                     (int64_t)time(NULL), &o->assess, err, errsize);
    if (s == MP_OK)
        s = bulkio_reader_open(input, ro, &o->rd, err, errsize);
    if (s == MP_OK) {
        if (store_results_open(st, job_id, 1) != MP_OK) {
            snprintf(err, errsize, "job store: %s", store_errmsg(st));
            s = MP_ERR_IO;
        } else {
            o->iterating = true;
            if (store_results_next(st, &o->res, &o->have) != MP_OK)
                o->have = false;
        }
    }
    if (s != MP_OK) {
        job_out_free(o);
        return s;
    }
    *out = o;
    return MP_OK;
}

/* The result with its catch-all assessment spliced in; the result alone when there is
 * no assessment (or it does not fit). */
static const char *splice(job_out_t *o, const char *json, const char *assessment)
{
    if (!json || !assessment || assess_splice(json, assessment, &o->spliced) != MP_OK)
        return json;
    return mp_buf_str(&o->spliced);
}

mp_status_t job_out_step(job_out_t *o, size_t max_rows, bool *done)
{
    *done = o->done;
    for (size_t n = 0; n < max_rows && !o->done; n++) {
        const bulkio_row_t *row;
        if (bulkio_reader_next(o->rd, &row) != MP_OK) {
            snprintf(o->err, sizeof o->err, "input: %s", bulkio_reader_error(o->rd));
            return MP_ERR_IO;
        }
        if (!row) {
            store_results_close(o->st);
            o->iterating = false;
            if (bulkio_writer_commit(o->w) != MP_OK) {
                snprintf(o->err, sizeof o->err, "%s", bulkio_writer_error(o->w));
                return MP_ERR_IO;
            }
            o->done = *done = true;
            break;
        }
        while (o->have && o->res.row_no < (int64_t)row->row_no)
            if (store_results_next(o->st, &o->res, &o->have) != MP_OK)
                o->have = false;
        const char *json = NULL, *rerr = NULL;
        if (o->have && o->res.row_no == (int64_t)row->row_no) {
            json = splice(o, o->res.result_json, job_assess_get(o->assess, row->row_no));
            tally_add(o->verdicts, JOB_TALLY_VERDICTS, &o->nv,
                      o->res.verdict ? o->res.verdict : "error");
            tally_add(o->reasons, JOB_TALLY_REASONS, &o->nr,
                      o->res.reason ? o->res.reason
                                    : (o->res.row_error ? o->res.row_error : "-"));
        } else {
            rerr = "not_checked";
            tally_add(o->verdicts, JOB_TALLY_VERDICTS, &o->nv, "error");
            tally_add(o->reasons, JOB_TALLY_REASONS, &o->nr, "not_checked");
        }
        if (bulkio_writer_put(o->w, row, json, rerr) != MP_OK) {
            snprintf(o->err, sizeof o->err, "output: %s", bulkio_writer_error(o->w));
            return MP_ERR_IO;
        }
    }
    return MP_OK;
}

const char *job_out_error(const job_out_t *o)
{
    return o->err;
}

void job_out_tally(const job_out_t *o, const job_tally_t **verdicts, size_t *nv,
                   const job_tally_t **reasons, size_t *nr)
{
    *verdicts = o->verdicts;
    *nv = o->nv;
    *reasons = o->reasons;
    *nr = o->nr;
}

void job_out_assess_summary(const job_out_t *o, assess_prior_t *prior, uint64_t labels[3])
{
    job_assess_summary(o ? o->assess : NULL, prior, labels);
}

void job_out_free(job_out_t *o)
{
    if (!o)
        return;
    job_assess_free(o->assess);
    mp_buf_cleanup(&o->spliced);
    if (o->iterating)
        store_results_close(o->st);
    bulkio_writer_free(o->w);
    bulkio_reader_free(o->rd);
    for (size_t i = 0; i < o->nv; i++)
        free((char *)o->verdicts[i].name);
    for (size_t i = 0; i < o->nr; i++)
        free((char *)o->reasons[i].name);
    free(o);
}
