/*
 * results.c - a job's results: store_result_put in the open batch, the rows done, and
 * reading them back in row order; with what that needs in memory: the rows stored per
 * job (first put wins), the counters of the batch, and the last JSON stored in full.
 *
 * Every write is an append. Results are stored in arrival order (an AUTOINCREMENT key):
 * the engine finishes rows in domain order, not row order, and a B-tree keyed by row
 * would take each batch's rows on as many random pages, rewritten whole into the WAL at
 * every commit (26 KB written per row at a million rows). The row order is rebuilt when
 * reading, from the (job, seq, row_no) index. "First put wins" is kept by a bitmap of
 * stored rows per job in memory instead of a unique index. A result whose JSON is the
 * same text as the previous one of its job refers to it (ref) instead of copying it.
 *
 * Does not: commit (store.c's batch does), pack JSON (pack.c), or interpret a result.
 * Ownership: strings of an iterated store_result_t are borrowed until the next call.
 */
#include "store/store_int.h"

#include "util/str.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW_ROWS ((int64_t)1 << 20)      /* rows ordered at once when iterating (8 MiB) */

/* ---- rows stored per job: first put wins --------------------------------------------- */

void store_bits_free(jobbits_t *b)
{
    if (b->blk)
        for (size_t i = 0; i < BITS_NBLOCKS; i++)
            free(b->blk[i]);
    free(b->blk);
    memset(b, 0, sizeof *b);
}

void store_bits_drop_all(store_t *st)
{
    for (size_t i = 0; i < MAX_JOBBITS; i++)
        store_bits_free(&st->bits[i]);
}

jobbits_t *store_bits_find(store_t *st, int64_t num)
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
bool store_bits_set(jobbits_t *b, uint64_t row, bool *nomem)
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
mp_status_t store_bits_for(store_t *st, int64_t num, jobbits_t **out)
{
    jobbits_t *b = store_bits_find(st, num);
    if (!b) {
        b = &st->bits[0];
        for (size_t i = 1; i < MAX_JOBBITS && b->num; i++)
            if (!st->bits[i].num || st->bits[i].used < b->used)
                b = &st->bits[i];
        store_bits_free(b);
        if (!(b->blk = calloc(BITS_NBLOCKS, sizeof *b->blk)))
            return store_nomem(st);
        b->num = num;
        sqlite3_stmt *s = store_stmt(st, S_RES_ROWS);
        sqlite3_bind_int64(s, 1, num);
        sqlite3_bind_int64(s, 2, 0);
        int rc;
        bool nomem = false;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && !nomem) {
            int64_t row = sqlite3_column_int64(s, 0);
            if (row >= 0 && row <= (int64_t)UINT32_MAX)
                store_bits_set(b, (uint64_t)row, &nomem);
        }
        sqlite3_reset(s);
        if (nomem || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
            store_bits_free(b);
            return nomem ? store_nomem(st) : store_db_fail(st, rc, "reading stored rows");
        }
    }
    b->used = ++st->bits_clock;
    *out = b;
    return MP_OK;
}

/* ---- the last JSON stored in full ---------------------------------------------------- */

void store_last_json_keep(store_t *st, const char *json, size_t len, int64_t seq, int64_t job)
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

bool store_last_json_same(const store_t *st, const char *json, size_t len)
{
    return st->lj_seq && len == st->lj_len && memcmp(json, st->lj, len) == 0;
}

/* ---- counters of the batch --------------------------------------------------------- */

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
        mp_err_set(st->err, sizeof st->err, "bad result row %lld", (long long)r->row_no);
        return MP_ERR_ARG;
    }
    if ((rc = store_job_num(st, job_id, &num)) != MP_OK)
        return rc;
    if ((rc = store_batch_begin(st)) != MP_OK)
        return rc;
    /* store_batch_begin may have found the job deleted by another process */
    if ((rc = store_job_num(st, job_id, &num)) != MP_OK)
        return rc;
    const char *reason = r->reason && *r->reason       ? r->reason
                         : r->row_error && *r->row_error ? r->row_error
                                                         : "not_checked";
    delta_t *d = delta_for(st, num);
    if (!d || !delta_room(d, reason)) {
        /* many jobs, or many new reason names, in one batch: commit what we have */
        if ((rc = store_flush(st)) != MP_OK || (rc = store_batch_begin(st)) != MP_OK)
            return rc;
        d = delta_for(st, num);
    }
    jobbits_t *b = NULL;
    if ((rc = store_bits_for(st, num, &b)) != MP_OK)
        return rc;
    if (!bits_test(b, (uint64_t)r->row_no)) {
        const char *json = r->result_json;
        size_t len = json ? strlen(json) : 0;
        bool ref = json && st->lj_job == num && store_last_json_same(st, json, len);
        sqlite3_stmt *s = store_stmt(st, S_RES_PUT);
        sqlite3_bind_int64(s, 1, num);
        sqlite3_bind_int64(s, 2, r->row_no);
        store_bind_text(s, 3, r->address);
        store_bind_text(s, 4, r->row_error && *r->row_error ? r->row_error : NULL);
        store_bind_text(s, 5, r->verdict);
        store_bind_text(s, 6, r->reason);
        if (r->verdict)
            sqlite3_bind_int(s, 7, r->score);
        if (json && !ref && (rc = store_json_bind(st, s, 8, json, len)) != MP_OK)
            return rc;
        if (ref)
            sqlite3_bind_int64(s, 9, st->lj_seq);
        sqlite3_bind_int64(s, 10, r->checked_at ? r->checked_at : store_wall_now());
        if ((rc = store_stmt_run(st, s, "storing a result")) != MP_OK)
            return rc;
        int64_t seq = sqlite3_last_insert_rowid(st->db);
        st->seen_seq = seq;
        bool nomem = false;
        store_bits_set(b, (uint64_t)r->row_no, &nomem);
        if (nomem) /* read again from the file when next needed */
            store_bits_free(b);
        if (json && !ref)
            store_last_json_keep(st, json, len, seq, num);
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
    store_read_fresh(st);
    if ((rc = store_job_num(st, job_id, &num)) != MP_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, S_RES_ROWS);
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
                return store_nomem(st);
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
        return store_db_fail(st, src, "reading done rows");
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
        return store_nomem(st);
    size_t len = 0;
    int64_t next = 0;
    sqlite3_stmt *s = store_stmt(st, S_RES_ROWS);
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
        return store_db_fail(st, rc, "reading results");
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
        mp_err_set(st->err, sizeof st->err, "an iteration is already open");
        return MP_ERR_ARG;
    }
    if ((rc = store_job_num(st, job_id, &num)) != MP_OK)
        return rc;
    if (from_row < 1)
        from_row = 1;
    if (from_row > (int64_t)UINT32_MAX)
        from_row = UINT32_MAX;
    st->it_num = num;
    store_read_end(st); /* a fresh snapshot for the whole iteration */
    store_read_begin(st);
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
        sqlite3_stmt *s = store_stmt(st, S_RES_GET);
        sqlite3_bind_int64(s, 1, st->it_map[st->it_pos++]);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            continue; /* deleted meanwhile by another process */
        if (rc != SQLITE_ROW) {
            store_results_close(st);
            return store_db_fail(st, rc, "reading results");
        }
        out->row_no = sqlite3_column_int64(s, 0);
        out->address = store_col_text(s, 1);
        out->row_error = store_col_text(s, 2);
        out->verdict = store_col_text(s, 3);
        out->reason = store_col_text(s, 4);
        out->score = sqlite3_column_int(s, 5);
        mp_status_t jr;
        out->result_json = store_json_col(st, s, 6, 0, &jr);
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
    store_read_end(st);
    free(st->it_map);
    st->it_map = NULL;
    st->it_len = st->it_pos = 0;
    st->it_next = 0;
    st->iterating = false;
}
