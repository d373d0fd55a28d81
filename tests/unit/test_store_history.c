/*
 * test_store_history.c - the address history table (src/store/history.c): created on
 * first open with its own version, one row per address/kind/day, kept across opens,
 * next to the job store's tables in the same file, and a newer version refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/history.h"
#include "store/store.h"

static char path[256];

static void test_history(void **state)
{
    (void)state;
    char err[512];
    /* the job store first, then the history in the same file: neither disturbs the other */
    store_t *st = NULL;
    assert_int_equal(store_open(path, &st, err, sizeof err), MP_OK);
    history_t *h = NULL;
    assert_int_equal(history_open(path, &h, err, sizeof err), MP_OK);
    history_event_t ev = {"Gone@Example.COM", "hard", "5.1.1", "mailbox_absent",
                          "550 5.1.1 User unknown", "bounces.mbox:message 1", 1796032800};
    assert_int_equal(history_put(h, &ev), MP_OK);
    assert_int_equal(history_put(h, &ev), MP_OK); /* same day: one row */
    ev.when += 86400;
    assert_int_equal(history_put(h, &ev), MP_OK); /* next day: another */
    history_event_t ok = {"ok@example.com", "delivered", "", "", "", "x.csv:line 2", 0};
    assert_int_equal(history_put(h, &ok), MP_OK);
    assert_int_equal(history_commit(h), MP_OK);
    assert_int_equal(history_count(h, "gone@example.com", "hard"), 2);
    assert_int_equal(history_count(h, "gone@example.com", "soft"), 0);
    assert_int_equal(history_count(h, "ok@example.com", NULL), 1);
    /* the summary the catch-all assessment reads: latest proof for and against */
    int64_t pro = -1, con = -1;
    assert_int_equal(history_summary(h, "GONE@example.com", &pro, &con), MP_OK);
    assert_int_equal(pro, 0);
    assert_int_equal(con, 1796032800 + 86400);
    history_event_t acc = {"gone@example.com", "accepted", "2.1.5", "accepted", "250 OK",
                           "job j1", 1700000000};
    assert_int_equal(history_put(h, &acc), MP_OK);
    history_event_t ref = {"x@example.com", "refused", "5.1.1", "mailbox_absent", "550",
                           "job j1", 1700000000};
    assert_int_equal(history_put(h, &ref), MP_OK);
    assert_int_equal(history_summary(h, "gone@example.com", &pro, &con), MP_OK);
    assert_int_equal(pro, 1700000000);
    assert_int_equal(con, 1796032800 + 86400);
    assert_int_equal(history_summary(h, "x@example.com", &pro, &con), MP_OK);
    assert_int_equal(pro, 0);
    assert_int_equal(con, 1700000000);
    assert_int_equal(history_summary(h, "never@example.com", &pro, &con), MP_OK);
    assert_true(pro == 0 && con == 0);
    history_close(h);
    store_close(st);

    /* kept across opens */
    assert_int_equal(history_open(path, &h, err, sizeof err), MP_OK);
    assert_int_equal(history_count(h, "GONE@example.com", NULL), 3);
    history_close(h);
    assert_int_equal(store_open(path, &st, err, sizeof err), MP_OK);
    store_close(st);

    /* a file from a newer mailprobe is refused with a message, not changed */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE history_meta SET version = 99", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(history_open(path, &h, err, sizeof err), MP_ERR_IO);
    assert_null(h);
    assert_non_null(strstr(err, "newer"));

    /* an unusable path */
    assert_int_equal(history_open("/nonexistent/dir/x.db", &h, err, sizeof err), MP_ERR_IO);
    assert_null(h);
    assert_true(err[0] != '\0');
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/test_history.%ld.db", (long)getpid());
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_history)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    char more[300];
    snprintf(more, sizeof more, "%s-wal", path);
    unlink(more);
    snprintf(more, sizeof more, "%s-shm", path);
    unlink(more);
    return rc;
}
