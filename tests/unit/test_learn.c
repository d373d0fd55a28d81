/*
 * test_learn.c - the bounce reader (src/learn/): real bounces from sisimai's corpus kept
 * in tests/data/bounces/ (see its README for sources), the hard/soft judgement, dates,
 * the mbox / Maildir / directory reader and CSV exports, and bad inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "learn/learn.h"

#define DATA MP_SOURCE_DIR "/tests/data/bounces/"

static char tmpdir[256];

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Read one file of tests/data/bounces/ into ev; return the count. */
static size_t read_bounce(const char *name, learn_event_t *ev)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", DATA, name);
    size_t len, n = 0;
    char *data = slurp(path, &len);
    assert_int_equal(learn_message_read(data, len, ev, &n), MP_OK);
    free(data);
    return n;
}

static learn_event_t ev[LEARN_EVENTS_MAX];

static void test_rfc3464_two_recipients(void **state)
{
    (void)state;
    /* Postfix DSN: two recipient blocks, each with its Original-Recipient after the Final */
    assert_int_equal(read_bounce("lhost-postfix-02.eml", ev), 2);
    assert_string_equal(ev[0].addr, "filtered@example.co.jp");
    assert_string_equal(ev[0].status, "5.2.1");
    assert_string_equal(ev[1].addr, "userunknown@example.co.jp");
    assert_string_equal(ev[1].status, "5.1.1");
    assert_int_equal(ev[1].kind, LEARN_HARD);
    assert_string_equal(ev[1].outcome, "mailbox_absent");
    assert_non_null(strstr(ev[1].reason, "User Unknown"));
    assert_true(ev[1].when > 0);
}

static void test_status_from_server_not_reporter(void **state)
{
    (void)state;
    /* Sendmail wrote Status 5.1.1, the remote server said 550 5.7.1 IP blacklisted: a
     * block of our IP, never a deny-list entry */
    assert_int_equal(read_bounce("lhost-sendmail-33.eml", ev), 1);
    assert_string_equal(ev[0].addr, "mailboxfull@neko.example.org");
    assert_string_equal(ev[0].status, "5.7.1");
    assert_int_equal(ev[0].kind, LEARN_SOFT);
    assert_string_equal(ev[0].outcome, "policy_blocked");
}

static void test_non_standard(void **state)
{
    (void)state;
    /* Exim, no DSN: X-Failed-Recipients; the reply is a policy refusal -> soft */
    assert_int_equal(read_bounce("lhost-exim-01.eml", ev), 1);
    assert_string_equal(ev[0].addr, "kijitora@example.ed.jp");
    assert_string_equal(ev[0].status, "5.7.0");
    assert_int_equal(ev[0].kind, LEARN_SOFT);
    /* qmail: "<addr>:" then "Remote host said: 550 Unknown user ... (#5.5.0)" */
    assert_int_equal(read_bounce("lhost-qmail-01.eml", ev), 1);
    assert_string_equal(ev[0].addr, "kijitora@example.ne.jp");
    assert_string_equal(ev[0].status, "5.5.0");
    assert_int_equal(ev[0].kind, LEARN_HARD);
    /* Gmail and Office 365 */
    assert_int_equal(read_bounce("lhost-gmail-01.eml", ev), 1);
    assert_string_equal(ev[0].addr, "userunknown@example.jp");
    assert_string_equal(ev[0].status, "5.1.1");
    assert_int_equal(ev[0].kind, LEARN_HARD);
    assert_int_equal(read_bounce("lhost-office365-01.eml", ev), 1); /* no sender taken */
    assert_string_equal(ev[0].addr, "kijitora@example.com");
    assert_string_equal(ev[0].status, "5.1.10");
    /* Sendmail V5 transcript: four recipients, each with its own line's reply */
    assert_int_equal(read_bounce("lhost-v5sendmail-05.eml", ev), 4);
    assert_string_equal(ev[0].addr, "kijitora@example.edu");
    assert_string_equal(ev[3].addr, "mikeneko@example.co.jp");
    assert_int_equal(ev[3].kind, LEARN_HARD);
    assert_int_equal(ev[0].kind, LEARN_SOFT); /* "Remote protocol error" is no proof */
}

static void test_broken_mime_and_deliveries(void **state)
{
    (void)state;
    /* the header's boundary differs from the body's: read as raw text */
    assert_int_equal(read_bounce("rhost-google-02.eml", ev), 1);
    assert_string_equal(ev[0].addr, "neko-nyaan@example.org");
    assert_string_equal(ev[0].status, "5.1.1");
    assert_int_equal(ev[0].kind, LEARN_HARD);
    /* Amazon SES delivery notification (JSON) */
    assert_int_equal(read_bounce("lhost-amazonses-12.eml", ev), 1);
    assert_string_equal(ev[0].addr, "success@simulator.amazonses.com");
    assert_int_equal(ev[0].kind, LEARN_DELIVERED);
    /* a complaint (ARF) is not a bounce */
    assert_int_equal(read_bounce("arf-01.eml", ev), 0);
}

static void test_not_a_bounce(void **state)
{
    (void)state;
    const char *msg = "From: alice@example.com\nTo: bob@example.org\nSubject: lunch\n\n"
                      "See you at noon, carol@example.net will come too.\n";
    size_t n = 9;
    assert_int_equal(learn_message_read(msg, strlen(msg), ev, &n), MP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(learn_message_read("", 0, ev, &n), MP_OK);
    assert_int_equal(n, 0);
    const char *junk = "\x01\x02 not mail at all \xff\xfe";
    assert_int_equal(learn_message_read(junk, strlen(junk), ev, &n), MP_OK);
    assert_int_equal(n, 0);
}

static void test_judge(void **state)
{
    (void)state;
    static const struct {
        const char *status, *reason;
        bool permanent;
        learn_kind_t kind;
    } cases[] = {
        {"5.1.1", "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown", true,
         LEARN_HARD},
        {"5.0.0", "550 Message rejected", true, LEARN_SOFT},   /* a bare 550 proves nothing */
        {"", "550 5.1.1 User unknown (in reply to end of DATA command)", true, LEARN_SOFT},
        {"5.7.1", "554 5.7.1 Service unavailable; blocked using zen.spamhaus.org", true,
         LEARN_SOFT},
        {"4.2.2", "452 4.2.2 Mailbox full", false, LEARN_SOFT},
        {"5.1.1", "550 5.1.1 User unknown", false, LEARN_SOFT}, /* a delay is never hard */
        {"5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", true,
         LEARN_HARD},
        /* an MTA contradicting itself (found by fuzz_learn): no proof */
        {"2.2.1", "550 2.2.1 <a@example.com>... User Unknown", true, LEARN_SOFT},
        {"4.4.7", "554 4.4.7 Message expired: unable to deliver", true, LEARN_SOFT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        learn_event_t e;
        memset(&e, 0, sizeof e);
        snprintf(e.status, sizeof e.status, "%s", cases[i].status);
        snprintf(e.reason, sizeof e.reason, "%s", cases[i].reason);
        learn_event_judge(&e, cases[i].permanent);
        if (e.kind != cases[i].kind)
            fail_msg("case %zu (%s): got %s", i, cases[i].reason, learn_kind_name(e.kind));
        assert_true(e.status[0] != '\0'); /* at least the class */
    }
}

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(learn_date_parse("Thu, 29 Apr 2010 23:34:45 +0900"), 1272551685);
    assert_int_equal(learn_date_parse("29 Apr 2010 14:34:45 +0000"), 1272551685);
    assert_int_equal(learn_date_parse("2010-04-29T14:34:45Z"), 1272551685);
    assert_int_equal(learn_date_parse("2010-04-29T16:34:45+02:00"), 1272551685);
    assert_int_equal(learn_date_parse("2010-04-29 14:34:45"), 1272551685);
    assert_int_equal(learn_date_parse("2010-04-29T14:34:45.123Z"), 1272551685);
    assert_int_equal(learn_date_parse("1272551685"), 1272551685);
    assert_int_equal(learn_date_parse("1272551685000"), 1272551685);
    assert_int_equal(learn_date_parse("2010-04-29"), 1272499200);
    assert_int_equal(learn_date_parse("yesterday"), 0);
    assert_int_equal(learn_date_parse("2010-13-01"), 0);
    assert_int_equal(learn_date_parse(""), 0);
}

/* ---------------------------------------------------------------- the reader */

typedef struct {
    size_t n;
    char addr[16][320];
    learn_kind_t kind[16];
    char src[16][512];
    int64_t when[16];
    char reason[16][400];
    size_t stop_after; /* return MP_ERR_IO after this many (0: never) */
} seen_t;

static mp_status_t collect(const learn_event_t *e, const char *src, void *arg)
{
    seen_t *s = arg;
    if (s->n < 16) {
        snprintf(s->addr[s->n], sizeof s->addr[0], "%s", e->addr);
        snprintf(s->src[s->n], sizeof s->src[0], "%s", src);
        snprintf(s->reason[s->n], sizeof s->reason[0], "%s", e->reason);
        s->kind[s->n] = e->kind;
        s->when[s->n] = e->when;
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? MP_ERR_IO : MP_OK;
}

static const char *tmp_path(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void copy_into(FILE *out, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", DATA, name);
    size_t len;
    char *d = slurp(path, &len);
    fwrite(d, 1, len, out);
    free(d);
}

static void test_mbox_maildir(void **state)
{
    (void)state;
    /* an mbox of two bounces and an ordinary message */
    const char *mbox = tmp_path("bounces.mbox");
    FILE *f = fopen(mbox, "wb");
    assert_non_null(f);
    fputs("From MAILER-DAEMON Thu Apr 29 23:34:45 2010\n", f);
    copy_into(f, "lhost-gmail-01.eml");
    fputs("\nFrom alice@example.com Thu Apr 29 23:34:45 2010\n"
          "From: alice@example.com\nSubject: hi\n\nNothing new from the office.\n\n", f);
    fputs("From MAILER-DAEMON Thu Apr 29 23:34:46 2010\n", f);
    copy_into(f, "lhost-qmail-01.eml");
    fclose(f);
    seen_t s = {0};
    learn_stats_t st = {0};
    char err[512];
    assert_int_equal(learn_path_read(mbox, NULL, collect, &s, &st, err, sizeof err), MP_OK);
    assert_int_equal(st.messages, 3);
    assert_int_equal(st.bounces, 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.addr[0], "userunknown@example.jp");
    assert_non_null(strstr(s.src[0], "bounces.mbox:message 1"));
    assert_string_equal(s.addr[1], "kijitora@example.ne.jp");
    assert_non_null(strstr(s.src[1], ":message 3"));

    /* a Maildir: cur/ and new/ read, tmp/ (messages being written) skipped */
    const char *md = tmp_path("Maildir");
    char sub[600];
    mkdir(md, 0700);
    const char *subs[] = {"cur", "new", "tmp"};
    const char *files[] = {"lhost-postfix-02.eml", "lhost-exim-01.eml", "lhost-gmail-01.eml"};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", md, subs[i]);
        mkdir(sub, 0700);
        snprintf(sub, sizeof sub, "%s/%s/1.%d.host:2,S", md, subs[i], i);
        f = fopen(sub, "wb");
        assert_non_null(f);
        copy_into(f, files[i]);
        fclose(f);
    }
    memset(&s, 0, sizeof s);
    memset(&st, 0, sizeof st);
    assert_int_equal(learn_path_read(md, NULL, collect, &s, &st, err, sizeof err), MP_OK);
    assert_int_equal(st.messages, 2);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.addr[0], "filtered@example.co.jp"); /* cur/ before new/ */
    assert_string_equal(s.addr[2], "kijitora@example.ed.jp");

    /* a plain directory: mail and .csv files read, anything else skipped and counted */
    snprintf(sub, sizeof sub, "%s/README.md", md);
    write_text(sub, "# my bounces\n\nsome notes, with commas\n");
    snprintf(sub, sizeof sub, "%s/export.csv", md);
    write_text(sub, "email,event\nx@example.com,delivered\n");
    memset(&s, 0, sizeof s);
    memset(&st, 0, sizeof st);
    assert_int_equal(learn_path_read(md, NULL, collect, &s, &st, err, sizeof err), MP_OK);
    assert_int_equal(st.skipped_files, 1);
    assert_int_equal(s.n, 4);
    /* named on its own, the same file is read as a CSV, and fails clearly */
    snprintf(sub, sizeof sub, "%s/README.md", md);
    assert_int_equal(learn_path_read(sub, NULL, collect, &s, &st, err, sizeof err),
                     MP_ERR_CONFIG);

    /* a callback failure stops the walk with its status; what it got is its own */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(learn_path_read(md, NULL, collect, &s, &st, err, sizeof err), MP_ERR_IO);
    assert_int_equal(s.n, 1);
}

static void test_csv(void **state)
{
    (void)state;
    const char *csv = tmp_path("export.csv");
    write_text(csv, "Email,Event,Reason,Timestamp,Campaign\n"
                    "gone@example.com,bounce,550 5.1.1 The email account does not exist,"
                    "2026-11-30T10:00:00Z,c1\n"
                    "blocked@example.com,bounce,554 5.7.1 blocked using spamhaus,1796032800,c1\n"
                    "full@example.com,deferred,452 4.2.2 Mailbox full,2026-11-30,c1\n"
                    "ok@example.com,delivered,,2026-11-30,c1\n"
                    "reader@example.com,open,,2026-11-30,c1\n"
                    "\"\"\"quoted, name\"\"@example.com\",Hard Bounce,,2026-11-30,c1\n"
                    "not-an-address,bounce,,2026-11-30,c1\n");
    seen_t s = {0};
    learn_stats_t st = {0};
    char err[512];
    assert_int_equal(learn_path_read(csv, NULL, collect, &s, &st, err, sizeof err), MP_OK);
    assert_int_equal(st.rows, 7);
    assert_int_equal(st.skipped, 2); /* the open, the row without an address */
    assert_int_equal(s.n, 5);
    assert_string_equal(s.addr[0], "gone@example.com");
    assert_int_equal(s.kind[0], LEARN_HARD);
    assert_int_equal(s.when[0], 1796032800);
    assert_non_null(strstr(s.src[0], "export.csv:line 2"));
    assert_int_equal(s.kind[1], LEARN_SOFT); /* a "bounce" that is a block of our IP */
    assert_int_equal(s.kind[2], LEARN_SOFT);
    assert_int_equal(s.kind[3], LEARN_DELIVERED);
    assert_string_equal(s.addr[4], "\"quoted, name\"@example.com");
    assert_int_equal(s.kind[4], LEARN_HARD); /* the export's word, nothing to read */

    /* semicolons, and columns named by the caller */
    const char *csv2 = tmp_path("export2.csv");
    write_text(csv2, "who;what;why\nx@example.com;hard;550 5.1.1 no such user\n");
    memset(&s, 0, sizeof s);
    assert_int_equal(learn_path_read(csv2, NULL, collect, &s, &st, err, sizeof err),
                     MP_ERR_CONFIG);
    assert_non_null(strstr(err, "export2.csv"));
    assert_non_null(strstr(err, "--email-column"));
    learn_csv_opts_t o = {.email_col = "who", .type_col = "What", .reason_col = "why"};
    assert_int_equal(learn_path_read(csv2, &o, collect, &s, &st, err, sizeof err), MP_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.kind[0], LEARN_HARD);
    assert_string_equal(s.reason[0], "550 5.1.1 no such user");
}

static void test_bad_inputs(void **state)
{
    (void)state;
    seen_t s = {0};
    learn_stats_t st = {0};
    char err[512];
    assert_int_equal(learn_path_read(tmp_path("missing.eml"), NULL, collect, &s, &st, err,
                                     sizeof err),
                     MP_ERR_IO);
    assert_non_null(strstr(err, "missing.eml"));
    const char *bad = tmp_path("bad.csv");
    write_text(bad, "email,type\n\"unterminated,bounce\n");
    assert_int_equal(learn_path_read(bad, NULL, collect, &s, &st, err, sizeof err),
                     MP_ERR_CONFIG);
    assert_non_null(strstr(err, "bad.csv"));
    const char *empty = tmp_path("empty.mbox");
    write_text(empty, "");
    assert_int_equal(learn_path_read(empty, NULL, collect, &s, &st, err, sizeof err), MP_OK);
    const char *mboxbad = tmp_path("notmbox.txt");
    write_text(mboxbad, "hello world\n");
    assert_int_equal(learn_path_read(mboxbad, NULL, collect, &s, &st, err, sizeof err),
                     MP_ERR_CONFIG);
    assert_int_equal(s.n, 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_learn.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3464_two_recipients),
        cmocka_unit_test(test_status_from_server_not_reporter),
        cmocka_unit_test(test_non_standard),
        cmocka_unit_test(test_broken_mime_and_deliveries),
        cmocka_unit_test(test_not_a_bounce),
        cmocka_unit_test(test_judge),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_mbox_maildir),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_bad_inputs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
