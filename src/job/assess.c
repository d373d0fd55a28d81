/*
 * assess.c - the catch-all assessment of a bulk job, at output time (see job.h): one
 * pass over the input and the stored results before the output is written, because an
 * address's evidence needs every row of its domain (the domain's naming pattern, the
 * colleagues a slip is compared with) and the whole list (its prior).
 *
 * The pass also records in the address history (when asked) what the job proved while
 * domains still told addresses apart (accepted: "accepted"; mailbox_absent /
 * mailbox_disabled: "refused"), so a later job finds it when the domain has turned
 * accept-all.
 *
 * Memory: the accept_all / anti_enumeration rows only (address, name columns, then the
 * assessment's JSON text, a few hundred bytes each). Does not: change a verdict, write
 * output (out.c splices the JSON in), or weigh anything itself (evidence/assess.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/assess.h"
#include "job/job.h"
#include "util/buf.h"
#include "util/str.h"

#define NAME_MAX_BYTES 256

typedef struct {
    uint64_t row_no;
    char *addr;   /* lower-cased domain, local as written: "local@domain" */
    char *domain; /* points into addr */
    char *first, *last, *full; /* name columns, NULL when empty */
    char *json;   /* the assessment, once computed */
} target_t;

struct job_assess {
    target_t *t;
    size_t n, cap;
    uint64_t undeliverable, checkable;
    assess_prior_t prior;
    uint64_t labels[3]; /* per assess_label_t */
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static bool is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

static mp_status_t add_target(job_assess_t *a, const bulkio_schema_t *sc, const bulkio_row_t *row)
{
    const char *at = strrchr(row->address, '@');
    if (!at || at == row->address || !at[1])
        return MP_OK;
    target_t *nt = mp_array_grow(a->t, &a->cap, a->n, sizeof *a->t, 256);
    if (!nt)
        return MP_ERR_NOMEM;
    a->t = nt;
    target_t *t = &a->t[a->n];
    memset(t, 0, sizeof *t);
    t->row_no = row->row_no;
    t->addr = strdup(row->address);
    if (!t->addr)
        return MP_ERR_NOMEM;
    t->domain = t->addr + (at - row->address) + 1;
    mp_str_lower(t->domain);
    t->domain[-1] = '\0'; /* addr is now the local part; the '@' comes back for look-ups */
    if (sc->names.found) {
        char f[NAME_MAX_BYTES], l[NAME_MAX_BYTES], full[NAME_MAX_BYTES];
        bulkio_row_names(&sc->names, row, f, l, full, sizeof f);
        t->first = dup_or_null(f);
        t->last = dup_or_null(l);
        t->full = dup_or_null(full);
    }
    a->n++;
    return MP_OK;
}

/* What a checked row proved, for the history and for the prior. */
static mp_status_t see_result(job_assess_t *a, history_t *hist, const char *job_id,
                              const bulkio_row_t *row, const store_result_t *res)
{
    const char *kind = NULL;
    if (is(res->verdict, "deliverable")) {
        a->checkable++;
        if (is(res->reason, "accepted"))
            kind = "accepted";
    } else if (is(res->verdict, "undeliverable") && !is(res->reason, "invalid_syntax") &&
               !is(res->reason, "deny_listed")) {
        a->checkable++;
        a->undeliverable++;
        if (is(res->reason, "mailbox_absent") || is(res->reason, "mailbox_disabled"))
            kind = "refused";
    }
    if (kind && hist && *row->address) {
        char source[160];
        snprintf(source, sizeof source, "job %s, row %llu", job_id,
                 (unsigned long long)row->row_no);
        history_event_t ev = {row->address, kind, "", res->reason, "", source, res->checked_at};
        if (history_put(hist, &ev) != MP_OK)
            return MP_ERR_IO;
    }
    return MP_OK;
}

static int by_domain(const void *x, const void *y)
{
    const target_t *a = x, *b = y;
    int c = strcmp(a->domain, b->domain);
    return c ? c : (a->row_no > b->row_no) - (a->row_no < b->row_no);
}

static int by_row(const void *x, const void *y)
{
    const target_t *a = x, *b = y;
    return (a->row_no > b->row_no) - (a->row_no < b->row_no);
}

/* Weigh one domain's rows t[0..n). */
static mp_status_t weigh_domain(job_assess_t *a, target_t *t, size_t n, history_t *hist,
                                int64_t now)
{
    mp_status_t st = MP_OK;
    names_person_t *people = calloc(n, sizeof *people);
    assess_row_t *rows = calloc(n, sizeof *rows);
    assess_input_t *in = calloc(n, sizeof *in);
    mp_buf_t b;
    mp_buf_init(&b, 64 * 1024);
    if (!people || !rows || !in) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].local = t[i].addr;
        rows[i].target = true;
        if ((t[i].first || t[i].last || t[i].full) &&
            names_person_parse(t[i].first, t[i].last, t[i].full, &people[i]) == MP_OK)
            rows[i].person = &people[i];
        if (hist) {
            char addr[600];
            snprintf(addr, sizeof addr, "%s@%s", t[i].addr, t[i].domain);
            if (history_summary(hist, addr, &rows[i].hist.proven_at,
                                &rows[i].hist.refused_at) != MP_OK) {
                st = MP_ERR_IO;
                goto done;
            }
        }
    }
    assess_domain_inputs(rows, n, &a->prior, now, in);
    for (size_t i = 0; i < n; i++) {
        assess_t r;
        assess_compute(&in[i], &r);
        a->labels[r.label]++;
        mp_buf_reset(&b);
        if ((st = assess_to_json(&r, &b)) != MP_OK)
            goto done;
        if (!(t[i].json = strdup(mp_buf_str(&b)))) {
            st = MP_ERR_NOMEM;
            goto done;
        }
    }
done:
    mp_buf_cleanup(&b);
    free(people);
    free(rows);
    free(in);
    return st;
}

mp_status_t job_assess_build(store_t *st, const char *job_id, const char *input,
                             const bulkio_ropts_t *ro, history_t *hist, bool record,
                             int64_t now, job_assess_t **out, char *err, size_t errsize)
{
    *out = NULL;
    job_assess_t *a = calloc(1, sizeof *a);
    bulkio_reader_t *rd = NULL;
    bool iterating = false;
    mp_status_t s = MP_ERR_NOMEM;
    if (!a) {
        snprintf(err, errsize, "out of memory");
        goto done;
    }
    if ((s = bulkio_reader_open(input, ro, &rd, err, errsize)) != MP_OK)
        goto done;
    const bulkio_schema_t *sc = bulkio_reader_schema(rd);
    store_result_t res;
    bool have = false;
    if (store_results_open(st, job_id, 1) != MP_OK) {
        snprintf(err, errsize, "job store: %s", store_errmsg(st));
        s = MP_ERR_IO;
        goto done;
    }
    iterating = true;
    if (store_results_next(st, &res, &have) != MP_OK)
        have = false;
    for (;;) {
        const bulkio_row_t *row;
        if (bulkio_reader_next(rd, &row) != MP_OK) {
            snprintf(err, errsize, "input: %s", bulkio_reader_error(rd));
            s = MP_ERR_IO;
            goto done;
        }
        if (!row)
            break;
        while (have && res.row_no < (int64_t)row->row_no)
            if (store_results_next(st, &res, &have) != MP_OK)
                have = false;
        if (!have || res.row_no != (int64_t)row->row_no)
            continue;
        if ((s = see_result(a, record ? hist : NULL, job_id, row, &res)) != MP_OK) {
            snprintf(err, errsize, "address history: cannot record the job's results");
            goto done;
        }
        if ((is(res.reason, "accept_all") || is(res.reason, "anti_enumeration")) &&
            (s = add_target(a, sc, row)) != MP_OK) {
            snprintf(err, errsize, "out of memory");
            goto done;
        }
    }
    store_results_close(st);
    iterating = false;
    if (hist && record && history_commit(hist) != MP_OK) {
        snprintf(err, errsize, "address history: cannot commit");
        s = MP_ERR_IO;
        goto done;
    }
    assess_prior_make(a->undeliverable, a->checkable, &a->prior);
    if (a->n)
        qsort(a->t, a->n, sizeof *a->t, by_domain);
    for (size_t i = 0; i < a->n;) {
        size_t j = i + 1;
        while (j < a->n && strcmp(a->t[j].domain, a->t[i].domain) == 0)
            j++;
        if ((s = weigh_domain(a, a->t + i, j - i, hist, now)) != MP_OK) {
            snprintf(err, errsize, "%s", s == MP_ERR_IO ? "address history: cannot read"
                                                          : "out of memory");
            goto done;
        }
        i = j;
    }
    if (a->n)
        qsort(a->t, a->n, sizeof *a->t, by_row);
    s = MP_OK;
done:
    if (iterating)
        store_results_close(st);
    bulkio_reader_free(rd);
    if (s != MP_OK) {
        job_assess_free(a);
        return s;
    }
    *out = a;
    return MP_OK;
}

const char *job_assess_get(const job_assess_t *a, uint64_t row_no)
{
    size_t lo = 0, hi = a ? a->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->t[mid].row_no == row_no)
            return a->t[mid].json;
        if (a->t[mid].row_no < row_no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void job_assess_summary(const job_assess_t *a, assess_prior_t *prior, uint64_t labels[3])
{
    memset(prior, 0, sizeof *prior);
    memset(labels, 0, 3 * sizeof *labels);
    if (!a)
        return;
    *prior = a->prior;
    memcpy(labels, a->labels, sizeof a->labels);
}

void job_assess_free(job_assess_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->t[i].addr);
        free(a->t[i].first);
        free(a->t[i].last);
        free(a->t[i].full);
        free(a->t[i].json);
    }
    free(a->t);
    free(a);
}
