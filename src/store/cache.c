/*
 * cache.c - the cross-job address cache: look-up by normalised address and age, put,
 * prune, and the staging that keeps writes appends.
 *
 * Cache entries are appended to cache_log, found through a hash index in memory (the
 * staging index), and merged into the cache in address order from time to time
 * (store_cache_merge): a cache keyed by address would take a bulk job's entries on
 * random pages. An entry given the JSON of the last result stored refers to that row.
 *
 * Does not: decide how old is too old (the caller passes max_age_s), or commit on its
 * own (entries go into store.c's batch; a merge is a transaction of its own).
 * Ownership: store_cached_t.result_json is the caller's to free.
 */
#include "store/store_int.h"

#include "util/clock.h"
#include "util/hash.h"
#include "util/str.h"

#include <stdlib.h>
#include <string.h>

/* ---- cache -------------------------------------------------------------------------- */

/* FNV-1a with a final mix (the tag and the home slot come from the high bits). */
static uint64_t addr_hash(const char *s)
{
    uint64_t h = mp_fnv1a_str(MP_FNV_BASIS, s);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

void store_stage_free(stage_t *sg)
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
        sqlite3_stmt *s = store_stmt(st, S_LOG_GET);
        sqlite3_bind_int64(s, 1, seq);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const char *a = store_col_text(s, 0);
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
            return store_db_fail(st, rc, "reading the cache");
    }
    return MP_OK;
}

/* Index what cache_log holds (entries of a run that did not merge, e.g. killed). */
static mp_status_t stage_load(store_t *st)
{
    stage_t *sg = &st->stage;
    if (sg->loaded)
        return MP_OK;
    sqlite3_stmt *s = store_stmt(st, S_LOG_ALL);
    int rc;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *a = store_col_text(s, 1);
        ok = stage_add(sg, (uint32_t)(addr_hash(a ? a : "") >> 32), sqlite3_column_int64(s, 0));
    }
    sqlite3_reset(s);
    if (!ok) {
        store_stage_free(sg);
        return store_nomem(st);
    }
    if (rc != SQLITE_DONE) {
        store_stage_free(sg);
        return store_db_fail(st, rc, "reading the cache");
    }
    sg->loaded = true;
    return MP_OK;
}

/* Move cache_log into the cache, in address order, in a transaction of its own. */
mp_status_t store_cache_merge(store_t *st)
{
    if (!st->stage.n)
        return MP_OK;
    mp_status_t rc = store_flush(st);
    if (rc || (rc = store_batch_begin(st)) != MP_OK)
        return rc;
    /* the index goes first, so that it and the merge's sort are not in memory together;
     * after a failure it is read again from cache_log when needed */
    store_stage_free(&st->stage);
    if ((rc = store_stmt_run(st, store_stmt(st, S_LOG_MERGE), "merging the cache")) != MP_OK ||
        (rc = store_stmt_run(st, store_stmt(st, S_LOG_CLEAR), "merging the cache")) != MP_OK) {
        store_batch_abort(st);
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
    const char *v = store_col_text(s, col), *j = store_json_col(st, s, col + 2, 1, &jr);
    if (jr)
        return jr;
    mp_strlcpy(out->verdict, v ? v : "", sizeof out->verdict);
    out->checked_at = sqlite3_column_int64(s, col + 1);
    out->result_json = strdup(j ? j : "");
    if (!out->result_json)
        return store_nomem(st);
    if (j && sqlite3_column_type(s, col + 3) == SQLITE_INTEGER)
        store_last_json_keep(st, j, strlen(j), sqlite3_column_int64(s, col + 3),
                sqlite3_column_int64(s, col + 4));
    return MP_OK;
}

mp_status_t store_cache_get(store_t *st, const char *norm_address, int64_t max_age_s,
                            store_cached_t *out, bool *found)
{
    *found = false;
    memset(out, 0, sizeof *out);
    if (st->rd_tx && !st->iterating && mp_now_ms() - st->rd_start_ms >= st->batch_ms)
        store_read_end(st);
    store_read_begin(st);
    mp_status_t r = stage_load(st);
    if (r)
        return r;
    uint32_t tag = (uint32_t)(addr_hash(norm_address) >> 32);
    size_t at;
    int64_t t_staged = 0;
    if ((r = stage_find(st, norm_address, tag, &at, &t_staged)) != MP_OK)
        return r;
    int64_t min_t = max_age_s < 0 ? INT64_MIN : store_wall_now() - max_age_s;
    sqlite3_stmt *s = store_stmt(st, S_CACHE_GET);
    store_bind_text(s, 1, norm_address);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = store_db_fail(st, rc, "reading the cache");
    } else if (rc == SQLITE_ROW && (at == SIZE_MAX || sqlite3_column_int64(s, 1) > t_staged)) {
        if (sqlite3_column_int64(s, 1) >= min_t && (r = cached_fill(st, s, 0, out)) == MP_OK)
            *found = true;
    } else if (at != SIZE_MAX && t_staged >= min_t) {
        sqlite3_reset(s);
        s = store_stmt(st, S_LOG_GET);
        sqlite3_bind_int64(s, 1, (int64_t)(st->stage.slot[at] & UINT32_MAX));
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            if ((r = cached_fill(st, s, 1, out)) == MP_OK)
                *found = true;
        } else if (rc != SQLITE_DONE) {
            r = store_db_fail(st, rc, "reading the cache");
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
    mp_status_t rc = store_batch_begin(st);
    if (rc || (rc = stage_load(st)) != MP_OK)
        return rc;
    if (!checked_at)
        checked_at = store_wall_now();
    size_t len = strlen(result_json);
    bool ref = store_last_json_same(st, result_json, len);
    sqlite3_stmt *s = store_stmt(st, S_LOG_PUT);
    store_bind_text(s, 1, norm_address);
    store_bind_text(s, 2, verdict);
    sqlite3_bind_int64(s, 3, checked_at);
    if (ref)
        sqlite3_bind_int64(s, 4, st->lj_seq);
    else if ((rc = store_json_bind(st, s, 5, result_json, len)) != MP_OK)
        return rc;
    if ((rc = store_stmt_run(st, s, "storing a cache entry")) != MP_OK)
        return rc;
    int64_t seq = sqlite3_last_insert_rowid(st->db);
    uint32_t tag = (uint32_t)(addr_hash(norm_address) >> 32);
    size_t at;
    int64_t t = 0;
    if ((rc = stage_find(st, norm_address, tag, &at, &t)) != MP_OK)
        return rc;
    if (at == SIZE_MAX) {
        if (!stage_add(&st->stage, tag, seq))
            return store_nomem(st);
    } else if (checked_at >= t && seq <= (int64_t)UINT32_MAX) {
        st->stage.slot[at] = ((uint64_t)tag << 32) | (uint64_t)seq;
    } /* else older than what is staged: the merge keeps the newest anyway */
    /* not counted in the batch size: a lost cache entry costs a check, not a row; the
     * batch's age still bounds how long it waits */
    if (st->stage.n >= STORE_CACHE_STAGE_MAX)
        return store_cache_merge(st);
    return store_tick(st);
}

mp_status_t store_cache_prune(store_t *st, int64_t max_age_s, int64_t *deleted)
{
    mp_status_t rc = store_flush(st);
    if (rc || (rc = stage_load(st)) != MP_OK || (rc = store_cache_merge(st)) != MP_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, S_CACHE_PRUNE);
    sqlite3_bind_int64(s, 1, store_wall_now() - max_age_s);
    rc = store_stmt_run(st, s, "pruning the cache");
    if (!rc && deleted)
        *deleted = sqlite3_changes(st->db);
    return rc;
}
