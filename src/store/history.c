/*
 * history.c - the address history table; see history.h.
 *
 * Its own connection to the store's file and its own schema version, so the job
 * store's code and migrations stay untouched: history_meta(version) says which
 * version of address_history the file holds; version 1 is the first.
 */
#include "store/history.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/str.h"

#define HISTORY_VERSION 1

struct history {
    sqlite3 *db;
    sqlite3_stmt *put, *sum;
    bool in_tx;
};

static const char *const migrations[HISTORY_VERSION] = {
    /* 1: one row per address, kind and day; the latest event of the day wins */
    "CREATE TABLE address_history ("
    " addr TEXT NOT NULL, kind TEXT NOT NULL, day INTEGER NOT NULL,"
    " at INTEGER NOT NULL, status TEXT NOT NULL, outcome TEXT NOT NULL,"
    " reason TEXT NOT NULL, source TEXT NOT NULL, learned_at INTEGER NOT NULL,"
    " PRIMARY KEY (addr, kind, day)) WITHOUT ROWID;",
};

static mp_status_t fail(history_t *h, char *err, size_t errsize, const char *what)
{
    if (errsize)
        snprintf(err, errsize, "%s: %s", what, h->db ? sqlite3_errmsg(h->db) : "out of memory");
    return MP_ERR_IO;
}

mp_status_t history_open(const char *path, history_t **out, char *err, size_t errsize)
{
    *out = NULL;
    history_t *h = calloc(1, sizeof *h);
    if (!h)
        return MP_ERR_NOMEM;
    mp_status_t st = MP_OK;
    int version = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = fail(h, err, errsize, "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(h->db, 10000);
    if (sqlite3_exec(h->db,
                     "BEGIN IMMEDIATE;"
                     "CREATE TABLE IF NOT EXISTS history_meta (version INTEGER NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        st = fail(h, err, errsize, "cannot create the history table");
        goto done;
    }
    if (sqlite3_prepare_v2(h->db, "SELECT max(version) FROM history_meta", -1, &q, NULL) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (version > HISTORY_VERSION) {
        if (errsize)
            snprintf(err, errsize, "address history version %d is newer than this mailprobe "
                     "(%d)", version, HISTORY_VERSION);
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
        st = MP_ERR_IO;
        goto done;
    }
    for (; version < HISTORY_VERSION; version++) {
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO history_meta VALUES (%d);", version + 1);
        if (sqlite3_exec(h->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(h->db, "DELETE FROM history_meta;", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(h->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            st = fail(h, err, errsize, "cannot migrate the history table");
            sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
            goto done;
        }
    }
    if (sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h->db,
                           "INSERT OR REPLACE INTO address_history VALUES "
                           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &h->put, NULL) != SQLITE_OK) {
        st = fail(h, err, errsize, "cannot prepare the history");
        goto done;
    }
done:
    if (st) {
        history_close(h);
        return st;
    }
    *out = h;
    return MP_OK;
}

mp_status_t history_commit(history_t *h)
{
    if (!h->in_tx)
        return MP_OK;
    h->in_tx = false;
    return sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? MP_OK : MP_ERR_IO;
}

void history_close(history_t *h)
{
    if (!h)
        return;
    if (h->db)
        (void)history_commit(h);
    sqlite3_finalize(h->put);
    sqlite3_finalize(h->sum);
    sqlite3_close(h->db);
    free(h);
}

mp_status_t history_put(history_t *h, const history_event_t *ev)
{
    if (!h->in_tx) {
        if (sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return MP_ERR_IO;
        h->in_tx = true;
    }
    int64_t now = (int64_t)time(NULL);
    int64_t at = ev->when ? ev->when : now;
    char addr[400];
    mp_strlcpy(addr, ev->addr, sizeof addr);
    mp_str_lower(addr);
    sqlite3_reset(h->put);
    sqlite3_bind_text(h->put, 1, addr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(h->put, 2, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(h->put, 3, at / 86400);
    sqlite3_bind_int64(h->put, 4, at);
    sqlite3_bind_text(h->put, 5, ev->status ? ev->status : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(h->put, 6, ev->outcome ? ev->outcome : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(h->put, 7, ev->reason ? ev->reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(h->put, 8, ev->source ? ev->source : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(h->put, 9, now);
    int rc = sqlite3_step(h->put);
    sqlite3_reset(h->put);
    return rc == SQLITE_DONE ? MP_OK : MP_ERR_IO;
}

int64_t history_count(history_t *h, const char *addr, const char *kind)
{
    sqlite3_stmt *q = NULL;
    int64_t n = -1;
    char a[400];
    mp_strlcpy(a, addr, sizeof a);
    mp_str_lower(a);
    if (sqlite3_prepare_v2(h->db,
                           "SELECT count(*) FROM address_history WHERE addr = ?1 AND "
                           "(?2 IS NULL OR kind = ?2)",
                           -1, &q, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, a, -1, SQLITE_TRANSIENT);
    if (kind)
        sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 2);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

mp_status_t history_summary(history_t *h, const char *addr, int64_t *proven_at,
                            int64_t *refused_at)
{
    *proven_at = *refused_at = 0;
    if (!h->sum &&
        sqlite3_prepare_v2(h->db,
                           "SELECT max(CASE WHEN kind IN ('delivered','accepted') THEN at END),"
                           " max(CASE WHEN kind IN ('hard','refused') THEN at END)"
                           " FROM address_history WHERE addr = ?1",
                           -1, &h->sum, NULL) != SQLITE_OK)
        return MP_ERR_IO;
    char a[400];
    mp_strlcpy(a, addr, sizeof a);
    mp_str_lower(a);
    sqlite3_reset(h->sum);
    sqlite3_bind_text(h->sum, 1, a, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(h->sum);
    if (rc == SQLITE_ROW) {
        *proven_at = sqlite3_column_int64(h->sum, 0);
        *refused_at = sqlite3_column_int64(h->sum, 1);
    }
    sqlite3_reset(h->sum);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MP_OK : MP_ERR_IO;
}
