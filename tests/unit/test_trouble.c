/*
 * test_trouble.c - unit tests of sched/trouble.c: what a reply means for one check in
 * context (stage x controls x facts -> reason, smtp.result, next step).
 *
 * Table-driven: each row is a reply, its stage and the session's controls, with the
 * reason and the next step the engine must get. Then tests/data/replies.tsv is replayed:
 * every line must give its `reason` without controls and its `controlled` reason when
 * postmaster@ was accepted in the same transaction. Reads one file, no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/trouble.h"
#include "util/str.h"

#ifndef MP_SOURCE_DIR
#define MP_SOURCE_DIR "."
#endif
#define REPLIES_TSV MP_SOURCE_DIR "/tests/data/replies.tsv"

static smtp_reply_t reply(int code, const char *enh, const char *text)
{
    smtp_reply_t r;
    memset(&r, 0, sizeof r);
    r.code = code;
    mp_strlcpy(r.enh, enh, sizeof r.enh);
    mp_strlcpy(r.text, text, sizeof r.text);
    return r;
}

enum { NO_CTL, PM_OK, PM_REFUSED, OTHER_OK, UTF8_NO, ALONE };

typedef struct {
    int ctx;
    cl_stage_t stage;
    int code;
    const char *enh, *text;
    vd_reason_t reason;
    vd_smtp_result_t smtp;
    trouble_next_t next;
} row_t;

static const row_t rows[] = {
    /* a refusal in words that say nothing known: the controls decide */
    {NO_CTL, CL_STAGE_RCPT, 550, "", "Administrative prohibition", VR_POLICY_BLOCKED,
     VS_UNAVAILABLE, TR_FINISH},
    {PM_OK, CL_STAGE_RCPT, 550, "", "Administrative prohibition", VR_RECIPIENT_REFUSED,
     VS_REJECTED, TR_FINISH},
    {OTHER_OK, CL_STAGE_RCPT, 550, "", "Requested action not taken: mailbox unavailable",
     VR_RECIPIENT_REFUSED, VS_REJECTED, TR_FINISH},
    {PM_REFUSED, CL_STAGE_RCPT, 550, "", "Administrative prohibition", VR_POLICY_BLOCKED,
     VS_UNAVAILABLE, TR_FINISH},
    {PM_OK, CL_STAGE_RCPT, 501, "5.1.3", "Invalid address", VR_RECIPIENT_REFUSED, VS_REJECTED,
     TR_FINISH},
    /* words that settle it are not overridden by the controls */
    {PM_REFUSED, CL_STAGE_RCPT, 550, "5.1.1", "User unknown", VR_MAILBOX_ABSENT, VS_REJECTED,
     TR_FINISH},
    {PM_OK, CL_STAGE_RCPT, 554, "5.7.1", "Client host blocked using zen.spamhaus.org",
     VR_POLICY_BLOCKED, VS_UNAVAILABLE, TR_FINISH},
    {NO_CTL, CL_STAGE_RCPT, 550, "5.1.1", "RCP-P2 Refused due to recipient preferences",
     VR_RECIPIENT_REFUSED, VS_REJECTED, TR_FINISH},
    /* accepted, temporary, throttled */
    {NO_CTL, CL_STAGE_RCPT, 250, "2.1.5", "Ok", VR_ACCEPTED, VS_ACCEPTED, TR_ACCEPTED},
    {NO_CTL, CL_STAGE_RCPT, 450, "4.2.0", "Greylisted", VR_GREYLISTED, VS_UNAVAILABLE,
     TR_RETRY_ROUND},
    {NO_CTL, CL_STAGE_RCPT, 421, "4.7.0", "Try again later, closing connection.",
     VR_RATE_LIMITED, VS_UNAVAILABLE, TR_THROTTLED},
    /* too many recipients: alone first, then a throttle */
    {NO_CTL, CL_STAGE_RCPT, 452, "4.5.3", "Error: too many recipients",
     VR_TOO_MANY_RECIPIENTS, VS_UNAVAILABLE, TR_ALONE},
    {ALONE, CL_STAGE_RCPT, 452, "4.5.3", "Error: too many recipients",
     VR_TOO_MANY_RECIPIENTS, VS_UNAVAILABLE, TR_THROTTLED},
    /* a UTF-8 mailbox at a server without SMTPUTF8: what it is, accepted or refused */
    {UTF8_NO, CL_STAGE_RCPT, 250, "2.1.5", "Ok", VR_SMTPUTF8_UNSUPPORTED, VS_UNAVAILABLE,
     TR_FINISH},
    {UTF8_NO, CL_STAGE_RCPT, 553, "5.6.7", "SMTPUTF8 required", VR_SMTPUTF8_UNSUPPORTED,
     VS_UNAVAILABLE, TR_FINISH},
    {UTF8_NO, CL_STAGE_RCPT, 450, "4.2.0", "Greylisted", VR_GREYLISTED, VS_UNAVAILABLE,
     TR_RETRY_ROUND},
    /* before RCPT: never about the mailbox */
    {NO_CTL, CL_STAGE_MAIL, 550, "5.1.1", "User unknown", VR_SENDER_REJECTED, VS_UNAVAILABLE,
     TR_FINISH},
    {NO_CTL, CL_STAGE_MAIL, 550, "5.7.1", "Client host blocked using zen.spamhaus.org",
     VR_POLICY_BLOCKED, VS_UNAVAILABLE, TR_FINISH},
    {NO_CTL, CL_STAGE_BANNER, 554, "", "No SMTP service here", VR_POLICY_BLOCKED,
     VS_UNAVAILABLE, TR_NEXT_TARGET},
    {NO_CTL, CL_STAGE_BANNER, 550, "", "Administrative prohibition", VR_POLICY_BLOCKED,
     VS_UNAVAILABLE, TR_NEXT_TARGET},
    {NO_CTL, CL_STAGE_EHLO, 421, "4.7.0", "Try again later", VR_RATE_LIMITED, VS_UNAVAILABLE,
     TR_THROTTLED},
    {NO_CTL, CL_STAGE_MAIL, 451, "4.7.1", "Greylisting in action", VR_GREYLISTED,
     VS_UNAVAILABLE, TR_NEXT_TARGET},
};

static void ctx_for(int kind, trouble_ctx_t *c)
{
    memset(c, 0, sizeof *c);
    c->host = "mx.example.net";
    c->ip = "192.0.2.25";
    c->smtputf8_offered = true;
    switch (kind) {
    case PM_OK: c->postmaster = TR_CTL_ACCEPTED; break;
    case PM_REFUSED:
        c->postmaster = TR_CTL_REFUSED;
        c->postmaster_code = 550;
        c->postmaster_enh = "";
        break;
    case OTHER_OK: c->other_accepted = true; break;
    case UTF8_NO:
        c->local_utf8 = true;
        c->smtputf8_offered = false;
        break;
    case ALONE: c->solo = true; break;
    }
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row_t *w = &rows[i];
        trouble_ctx_t c;
        trouble_t t;
        smtp_reply_t rp = reply(w->code, w->enh, w->text);
        ctx_for(w->ctx, &c);
        if (w->stage == CL_STAGE_RCPT)
            trouble_rcpt(&rp, NULL, &c, &t);
        else
            trouble_early(&rp, w->stage, &c, &t);
        if (t.reason != w->reason || t.smtp_result != w->smtp || t.next != w->next)
            fail_msg("row %zu (%d %s %s): got %s/%s/%s, want %s/%s/%s", i, w->code, w->enh,
                     w->text, vd_reason_name(t.reason), vd_smtp_result_name(t.smtp_result),
                     trouble_next_name(t.next), vd_reason_name(w->reason),
                     vd_smtp_result_name(w->smtp), trouble_next_name(w->next));
        assert_true(t.why[0] != '\0');
        assert_non_null(t.cl.rule);
    }
}

static void test_controls_why(void **state)
{
    (void)state;
    trouble_ctx_t c;
    trouble_t t;
    smtp_reply_t rp = reply(550, "", "Administrative prohibition");
    ctx_for(PM_OK, &c);
    trouble_rcpt(&rp, NULL, &c, &t);
    assert_true(t.controlled);
    assert_non_null(strstr(t.why, "accepted postmaster@"));
    ctx_for(NO_CTL, &c);
    trouble_rcpt(&rp, NULL, &c, &t);
    assert_false(t.controlled);
    assert_non_null(strstr(t.why, "no control"));
}

static void test_accepted(void **state)
{
    (void)state;
    trouble_t t;
    trouble_accept_t a = {"mx.example.net", 1, "zzz@example.net", NULL, true, 0, NULL};
    trouble_accepted(&a, &t);
    assert_int_equal(t.reason, VR_ACCEPT_ALL);
    assert_int_equal(t.smtp_result, VS_UNAVAILABLE);
    a.catch_all = 0;
    trouble_accepted(&a, &t);
    assert_int_equal(t.reason, VR_ACCEPTED);
    assert_int_equal(t.smtp_result, VS_ACCEPTED);
    assert_non_null(strstr(t.why, "cannot exist"));
    /* not catch-all because another address of the domain was refused as unknown: the
     * same verdict, said as it is, naming no other address */
    a.told_apart_code = 550;
    a.told_apart_enh = "5.1.1";
    trouble_accepted(&a, &t);
    assert_int_equal(t.reason, VR_ACCEPTED);
    assert_int_equal(t.smtp_result, VS_ACCEPTED);
    assert_non_null(strstr(t.why, "refused another address of the domain as unknown "
                                  "(550 5.1.1)"));
    assert_null(strstr(t.why, "zzz@"));
    a.told_apart_code = 0;
    a.catch_all = -1;
    trouble_accepted(&a, &t);
    assert_int_equal(t.reason, VR_ACCEPTED);
    assert_non_null(strstr(t.why, "could not be tested"));
}

static void test_session_window(void **state)
{
    (void)state;
    smtp_result_t sr;
    smtp_rcpt_result_t rc[1];
    memset(&sr, 0, sizeof sr);
    memset(rc, 0, sizeof rc);
    sr.end = SMTP_END_OK;
    sr.nrcpt = 1;
    sr.rcpt = rc;
    rc[0].has_reply = true;
    rc[0].reply = reply(550, "5.1.1", "User unknown");
    cl_result_t cls[1];
    trouble_read_session(&sr, cls, 1);
    assert_int_equal(trouble_session_window(&sr, cls), WIN_OK);
    rc[0].reply = reply(450, "4.2.1", "receiving mail too quickly");
    trouble_read_session(&sr, cls, 1);
    assert_int_equal(trouble_session_window(&sr, cls), WIN_THROTTLE);
    sr.end = SMTP_END_TIMEOUT;
    rc[0].has_reply = false;
    trouble_read_session(&sr, cls, 1);
    assert_int_equal(trouble_session_window(&sr, cls), WIN_NEUTRAL);
}

static void test_session_end(void **state)
{
    (void)state;
    static const struct {
        smtp_end_t end;
        bool solo, tls_retried;
        vd_reason_t reason;
        trouble_next_t next;
    } ends[] = {
        {SMTP_END_OK, false, false, VR_NOT_CHECKED, TR_ALONE},
        {SMTP_END_OK, true, false, VR_PROTOCOL_ERROR, TR_NEXT_TARGET},
        {SMTP_END_TLS, false, false, VR_TLS_FAILED, TR_IN_CLEAR},
        {SMTP_END_TLS, false, true, VR_TLS_FAILED, TR_NEXT_TARGET},
        {SMTP_END_CONNECT, false, false, VR_CONNECT_FAILED, TR_NEXT_TARGET},
        {SMTP_END_TIMEOUT, false, false, VR_TIMEOUT, TR_NEXT_TARGET},
        {SMTP_END_CLOSED, false, false, VR_PROTOCOL_ERROR, TR_NEXT_TARGET},
        {SMTP_END_PROTOCOL, false, false, VR_PROTOCOL_ERROR, TR_NEXT_TARGET},
        {SMTP_END_LOCAL, false, false, VR_NOT_CHECKED, TR_NEXT_TARGET},
    };
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        smtp_result_t sr;
        trouble_ctx_t c;
        trouble_t t;
        memset(&sr, 0, sizeof sr);
        sr.end = ends[i].end;
        sr.end_state = SMTP_ST_RCPT;
        mp_strlcpy(sr.detail, "detail", sizeof sr.detail);
        ctx_for(NO_CTL, &c);
        c.solo = ends[i].solo;
        c.tls_retried = ends[i].tls_retried;
        c.port = 25;
        trouble_end(&sr, &c, &t);
        if (t.reason != ends[i].reason || t.next != ends[i].next)
            fail_msg("row %zu: got %s/%s", i, vd_reason_name(t.reason),
                     trouble_next_name(t.next));
        assert_true(t.why[0] != '\0');
    }
    /* a refused connection through a proxy is the proxy's network, not our port 25 */
    smtp_result_t sr;
    trouble_ctx_t c;
    trouble_t t;
    memset(&sr, 0, sizeof sr);
    sr.end = SMTP_END_CONNECT;
    ctx_for(NO_CTL, &c);
    trouble_end(&sr, &c, &t);
    assert_non_null(strstr(t.why, "port 25 may be blocked"));
    c.via_proxy = true;
    trouble_end(&sr, &c, &t);
    assert_null(strstr(t.why, "port 25 may be blocked"));
}

static void test_rank(void **state)
{
    (void)state;
    assert_true(trouble_rank(VR_POLICY_BLOCKED) > trouble_rank(VR_RATE_LIMITED));
    assert_true(trouble_rank(VR_RATE_LIMITED) == trouble_rank(VR_TOO_MANY_RECIPIENTS));
    assert_true(trouble_rank(VR_RATE_LIMITED) > trouble_rank(VR_GREYLISTED));
    assert_true(trouble_rank(VR_GREYLISTED) > trouble_rank(VR_PROTOCOL_ERROR));
    assert_true(trouble_rank(VR_PROTOCOL_ERROR) > trouble_rank(VR_TLS_FAILED));
    assert_true(trouble_rank(VR_TLS_FAILED) > trouble_rank(VR_TIMEOUT));
    assert_true(trouble_rank(VR_TIMEOUT) > trouble_rank(VR_CONNECT_FAILED));
    assert_true(trouble_rank(VR_MAILBOX_ABSENT) > trouble_rank(VR_POLICY_BLOCKED));
}

static void test_probe_evidence(void **state)
{
    (void)state;
    cl_result_t cl;
    classify_reply(CL_STAGE_RCPT, 250, "2.1.5", "Ok", &cl);
    assert_int_equal(trouble_probe_evidence(&cl, false), 1);
    classify_reply(CL_STAGE_RCPT, 550, "5.1.1", "User unknown", &cl);
    assert_int_equal(trouble_probe_evidence(&cl, false), 0);
    /* a refusal in unknown words: evidence only when a control was accepted */
    classify_reply(CL_STAGE_RCPT, 550, "", "Administrative prohibition", &cl);
    assert_int_equal(trouble_probe_evidence(&cl, false), -1);
    assert_int_equal(trouble_probe_evidence(&cl, true), 0);
    classify_reply(CL_STAGE_RCPT, 451, "4.7.1", "Greylisted, try again later", &cl);
    assert_int_equal(trouble_probe_evidence(&cl, true), -1);
    classify_reply(CL_STAGE_RCPT, 554, "5.7.1", "blocked using zen.spamhaus.org", &cl);
    assert_int_equal(trouble_probe_evidence(&cl, true), -1);
}

/* ---- the corpus, read in context ---------------------------------------------------- */

static cl_stage_t stage_named(const char *n)
{
    for (int s = CL_STAGE_BANNER; s <= CL_STAGE_OTHER; s++)
        if (strcmp(classify_stage_name((cl_stage_t)s), n) == 0)
            return (cl_stage_t)s;
    fail_msg("unknown stage %s", n);
    return CL_STAGE_OTHER;
}

static const char *read_line(cl_stage_t st, const smtp_reply_t *rp, bool pm_ok)
{
    trouble_ctx_t c;
    trouble_t t;
    ctx_for(pm_ok ? PM_OK : ALONE, &c);
    c.solo = true; /* a corpus line is the final answer */
    if (st == CL_STAGE_RCPT)
        trouble_rcpt(rp, NULL, &c, &t);
    else
        trouble_early(rp, st, &c, &t);
    return vd_reason_name(t.reason);
}

static void test_corpus(void **state)
{
    (void)state;
    FILE *fp = fopen(REPLIES_TSV, "r");
    if (!fp)
        fail_msg("cannot open %s", REPLIES_TSV);
    static char line[8192];
    unsigned lineno = 0, n = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1 || !line[0] || line[0] == '#')
            continue;
        char *f[8];
        size_t k = 0;
        f[k++] = line;
        for (char *p = line; *p && k < 8; p++)
            if (*p == '\t') {
                *p = '\0';
                f[k++] = p + 1;
            }
        assert_int_equal(k, 8);
        if (strcmp(f[5], "-") == 0)
            continue;
        uint64_t code;
        assert_true(mp_parse_uint(f[1], 200, 599, &code));
        char text[2048];
        size_t w = 0;
        for (const char *r = f[3]; *r && w < sizeof text - 1; r++) {
            if (r[0] == '\\' && r[1] == 'n') {
                text[w++] = '\n';
                r++;
            } else {
                text[w++] = *r;
            }
        }
        text[w] = '\0';
        smtp_reply_t rp = reply((int)code, f[2], text);
        cl_stage_t st = stage_named(f[0]);
        const char *bare = read_line(st, &rp, false);
        const char *want_ctl = strcmp(f[6], "-") == 0 ? f[5] : f[6];
        const char *ctl = read_line(st, &rp, true);
        if (strcmp(bare, f[5]) != 0)
            fail_msg("replies.tsv:%u: want %s, got %s (%s %s %s)", lineno, f[5], bare, f[1],
                     f[2], f[3]);
        if (strcmp(ctl, want_ctl) != 0)
            fail_msg("replies.tsv:%u: with postmaster@ accepted want %s, got %s", lineno,
                     want_ctl, ctl);
        n++;
    }
    fclose(fp);
    assert_true(n > 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_controls_why),
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_session_window),
        cmocka_unit_test(test_session_end),
        cmocka_unit_test(test_probe_evidence),
        cmocka_unit_test(test_rank),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
