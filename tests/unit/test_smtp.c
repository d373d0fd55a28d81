/*
 * test_smtp.c - the smtp module: the reply reader (pure) and the session against a
 * scripted server on 127.0.0.1 (tests/smtp/smtpd_script.h).
 *
 * Session scenarios assert the exact commands the client sent (the server's log of the
 * conversation), that the client's own transcript says the same, and the result. No
 * assertion depends on timing: deadlines are only made short to end silent servers.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "../smtp/smtpd_script.h"
#include "smtp/reply.h"
#include "smtp/session.h"
#include "util/str.h"

/* ================================ reply reader ================================ */

static smtp_rd_status_t parse_n(const char *s, size_t n, smtp_reply_t *r, size_t *used)
{
    *used = 0;
    return smtp_reply_parse((const unsigned char *)s, n, r, used);
}

static smtp_rd_status_t parse(const char *s, smtp_reply_t *r, size_t *used)
{
    return parse_n(s, strlen(s), r, used);
}

static void test_single_line(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    const char *s = "250 2.1.5 Ok\r\n";
    assert_int_equal(parse(s, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(used, strlen(s));
    assert_int_equal(r.code, 250);
    assert_string_equal(r.enh, "2.1.5");
    assert_string_equal(r.text, "Ok");
    assert_int_equal(r.nlines, 1);
    assert_false(r.truncated);
}

static void test_multi_line(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    const char *s = "250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                    "250 8BITMIME\r\n";
    assert_int_equal(parse(s, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(used, strlen(s));
    assert_int_equal(r.code, 250);
    assert_string_equal(r.enh, "");
    assert_string_equal(r.text, "mx.example.com Hello\nPIPELINING\nSIZE 10240000\n8BITMIME");
    assert_int_equal(r.nlines, 4);
}

static void test_split_every_byte(void **state)
{
    (void)state;
    static const char *const samples[] = {
        "220 mx.example.com ESMTP Postfix\r\n",
        "250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
        ("550-5.1.1 The email account that you tried to reach does not exist.\r\n"
         "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser x-y.z - gsmtp\r\n"),
        "250\r\n",
        "250-\n250 x\n",
    };
    for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        const char *s = samples[k];
        size_t n = strlen(s), used;
        smtp_reply_t full, r;
        assert_int_equal(parse(s, &full, &used), SMTP_RD_REPLY);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(parse_n(s, i, &r, &used), SMTP_RD_MORE);
        assert_int_equal(parse_n(s, n, &r, &used), SMTP_RD_REPLY);
        assert_int_equal(used, n);
        assert_int_equal(r.code, full.code);
        assert_string_equal(r.text, full.text);
    }
}

static void test_several_in_one_buffer(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used, off = 0;
    static const char buf[] = "250 2.1.5 Ok\r\n550 5.1.1 <b@x.test>: User unknown\r\n221 Bye\r\n";
    const size_t n = sizeof buf - 1;
    assert_int_equal(parse_n(buf, n, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.code, 250);
    assert_int_equal(used, 14);
    off += used;
    assert_int_equal(parse_n(buf + off, n - off, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.enh, "5.1.1");
    assert_string_equal(r.text, "<b@x.test>: User unknown");
    off += used;
    assert_int_equal(parse_n(buf + off, n - off, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.code, 221);
    assert_int_equal(off + used, n);
}

static void test_bare_lf(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    const char *s = "250-one\n250 two\n";
    assert_int_equal(parse(s, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(used, strlen(s));
    assert_string_equal(r.text, "one\ntwo");
    /* a lone CR is not a line end */
    assert_int_equal(parse("250 ok\r", &r, &used), SMTP_RD_MORE);
}

static void test_enh_class_mismatch(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    assert_int_equal(parse("250 5.1.1 looks bad but is 250\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_string_equal(r.text, "5.1.1 looks bad but is 250");
    assert_int_equal(parse("550 2.0.0 ok?\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_int_equal(parse("451 4.7.1 Greylisted\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "4.7.1");
    assert_string_equal(r.text, "Greylisted");
    /* shapes */
    assert_int_equal(parse("550 5.1.10 x\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "5.1.10");
    assert_int_equal(parse("550 5.7.606 Access denied\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "5.7.606");
    assert_string_equal(r.text, "Access denied");
    assert_int_equal(parse("550 5.1234.1 x\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_int_equal(parse("550 5.1.1x\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_int_equal(parse("550 5.1.\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_int_equal(parse("550 3.1.1 x\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_int_equal(parse("550 5.1.1\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "5.1.1");
    assert_string_equal(r.text, "");
}

static void test_enh_continuation_stripped(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    assert_int_equal(parse("550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                           "550-5.1.1 Please try double-checking.\r\n"
                           "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser\r\n",
                           &r, &used),
                     SMTP_RD_REPLY);
    assert_string_equal(r.enh, "5.1.1");
    assert_string_equal(r.text, "The email account that you tried to reach does not exist.\n"
                                "Please try double-checking.\n"
                                "https://support.google.com/mail/?p=NoSuchUser");
    /* a different code on a continuation line stays in the text */
    assert_int_equal(parse("550-5.1.1 a\r\n550 5.7.1 b\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.text, "a\n5.7.1 b");
    /* nothing is stripped when the first line's code was not kept */
    assert_int_equal(parse("250-5.1.1 a\r\n250 5.1.1 b\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.enh, "");
    assert_string_equal(r.text, "5.1.1 a\n5.1.1 b");
}

static void test_code_alone(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    assert_int_equal(parse("250\r\n", &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.text, "");
    assert_int_equal(used, 5);
    assert_int_equal(parse("250-\r\n250\r\n", &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.nlines, 2);
    assert_string_equal(r.text, "\n");
    assert_int_equal(parse("354 \r\n", &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.code, 354);
}

static void test_bad_codes(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    static const char *const bad[] = {
        "199 x\r\n", "600 x\r\n", "abc\r\n",    "25\r\n",   "2500 x\r\n", "25a x\r\n",
        "250x\r\n",  "\r\n",      " 250 x\r\n", "250\tx\r\n", "099 x\r\n", "HTTP/1.1 400\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], &r, &used), SMTP_RD_ERR_SYNTAX);
    /* garbage is seen before the line ends */
    assert_int_equal(parse("abc", &r, &used), SMTP_RD_ERR_SYNTAX);
    assert_int_equal(parse("6", &r, &used), SMTP_RD_ERR_SYNTAX);
    assert_int_equal(parse("2500", &r, &used), SMTP_RD_ERR_SYNTAX);
    assert_int_equal(parse("2", &r, &used), SMTP_RD_MORE);
    assert_int_equal(parse("250", &r, &used), SMTP_RD_MORE);
    assert_int_equal(parse("", &r, &used), SMTP_RD_MORE);
}

static void test_code_change(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    assert_int_equal(parse("250-a\r\n251 b\r\n", &r, &used), SMTP_RD_ERR_SYNTAX);
    assert_int_equal(parse("250-a\r\n251", &r, &used), SMTP_RD_ERR_SYNTAX);
    assert_int_equal(parse("250-a\r\n550-b\r\n550 c\r\n", &r, &used), SMTP_RD_ERR_SYNTAX);
}

static void test_nul(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    static const char s[] = "250 a\0b\r\n";
    assert_int_equal(parse_n(s, sizeof s - 1, &r, &used), SMTP_RD_ERR_SYNTAX);
    assert_int_equal(parse_n(s, 6, &r, &used), SMTP_RD_ERR_SYNTAX); /* before the LF */
    static const char s2[] = "250-a\r\n\0";
    assert_int_equal(parse_n(s2, sizeof s2 - 1, &r, &used), SMTP_RD_ERR_SYNTAX);
}

static char *make_line(size_t total, bool lf)
{
    /* "250 xxxx...\r\n" of exactly total bytes (with CRLF when lf) */
    char *s = malloc(total + 1);
    assert_non_null(s);
    memset(s, 'x', total);
    memcpy(s, "250 ", 4);
    if (lf) {
        s[total - 2] = '\r';
        s[total - 1] = '\n';
    }
    s[total] = '\0';
    return s;
}

static void test_line_limit(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    char *s = make_line(SMTP_REPLY_LINE_MAX, true);
    assert_int_equal(parse(s, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(used, SMTP_REPLY_LINE_MAX);
    free(s);
    s = make_line(SMTP_REPLY_LINE_MAX + 1, true);
    assert_int_equal(parse(s, &r, &used), SMTP_RD_ERR_LINE);
    free(s);
    /* no newline yet: caught as soon as the line can no longer fit */
    s = make_line(SMTP_REPLY_LINE_MAX - 1, false);
    assert_int_equal(parse(s, &r, &used), SMTP_RD_MORE);
    free(s);
    s = make_line(SMTP_REPLY_LINE_MAX, false);
    assert_int_equal(parse(s, &r, &used), SMTP_RD_ERR_LINE);
    free(s);
    s = make_line(100000, false);
    assert_int_equal(parse(s, &r, &used), SMTP_RD_ERR_LINE);
    free(s);
}

static void test_too_many_lines(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    char *s = malloc(8 * (SMTP_REPLY_LINES_MAX + 2) + 1);
    assert_non_null(s);
    size_t n = 0;
    for (unsigned i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++) {
        memcpy(s + n, "250-ab\r\n", 8);
        n += 8;
    }
    memcpy(s + n, "250 ab\r\n", 8);
    assert_int_equal(parse_n(s, n + 8, &r, &used), SMTP_RD_REPLY);
    assert_int_equal(r.nlines, SMTP_REPLY_LINES_MAX);
    memcpy(s + n, "250-ab\r\n", 8);
    n += 8;
    assert_int_equal(parse_n(s, n, &r, &used), SMTP_RD_ERR_SIZE); /* 128 lines, still open */
    memcpy(s + n, "250 ab\r\n", 8);
    assert_int_equal(parse_n(s, n + 8, &r, &used), SMTP_RD_ERR_SIZE);
    free(s);
}

static void test_total_size(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    size_t linelen = 1000, nlines = SMTP_REPLY_TOTAL_MAX / linelen + 1;
    char *s = malloc(linelen * nlines + 1);
    assert_non_null(s);
    for (size_t i = 0; i < nlines; i++) {
        char *l = s + i * linelen;
        memset(l, 'y', linelen);
        memcpy(l, i + 1 < nlines ? "250-" : "250 ", 4);
        l[linelen - 2] = '\r';
        l[linelen - 1] = '\n';
    }
    assert_int_equal(parse_n(s, linelen * nlines, &r, &used), SMTP_RD_ERR_SIZE);
    /* incomplete but already too big */
    assert_int_equal(parse_n(s, SMTP_REPLY_TOTAL_MAX + 1, &r, &used), SMTP_RD_ERR_SIZE);
    /* just under: incomplete, fine */
    assert_int_equal(parse_n(s, SMTP_REPLY_TOTAL_MAX - 10, &r, &used), SMTP_RD_MORE);
    free(s);
}

static void test_text_truncated(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    char *s = malloc(10 * 504 + 1);
    assert_non_null(s);
    for (size_t i = 0; i < 10; i++) {
        char *l = s + i * 504;
        memset(l, 'z', 504);
        memcpy(l, i < 9 ? "250-" : "250 ", 4);
        l[502] = '\r';
        l[503] = '\n';
    }
    assert_int_equal(parse_n(s, 10 * 504, &r, &used), SMTP_RD_REPLY);
    assert_true(r.truncated);
    assert_int_equal(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
    free(s);
}

static void test_control_bytes(void **state)
{
    (void)state;
    smtp_reply_t r;
    size_t used;
    assert_int_equal(parse("250 a\tb\x01" "c\x1b[31m\r\r\n", &r, &used), SMTP_RD_REPLY);
    assert_string_equal(r.text, "a\tb c [31m ");
}

static void test_from_string(void **state)
{
    (void)state;
    smtp_reply_t r;
    const char *err = "x";
    assert_true(smtp_reply_from_string("550 5.1.1 <x@y>: Recipient address rejected: User unknown",
                                       &r, &err));
    assert_null(err);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.enh, "5.1.1");
    assert_string_equal(r.text, "<x@y>: Recipient address rejected: User unknown");
    assert_true(smtp_reply_from_string("550-5.1.1 a\n550 5.1.1 b", &r, &err));
    assert_string_equal(r.text, "a\nb");
    assert_int_equal(r.nlines, 2);
    /* log style: every line with a space; and CRLF; and surrounding blanks */
    assert_true(smtp_reply_from_string("\n  550 5.1.1 a\r\n550 5.1.1 b\r\n\n", &r, &err));
    assert_string_equal(r.text, "a\nb");
    assert_true(smtp_reply_from_string("452-4.2.2 full\n452-4.2.2 really", &r, &err));
    assert_int_equal(r.code, 452);
    assert_string_equal(r.text, "full\nreally");
    assert_true(smtp_reply_from_string("250", &r, &err));
    assert_int_equal(r.code, 250);

    assert_false(smtp_reply_from_string("", &r, &err));
    assert_non_null(err);
    assert_false(smtp_reply_from_string("   \n", &r, &err));
    assert_false(smtp_reply_from_string("hello", &r, &err));
    assert_non_null(err);
    assert_false(smtp_reply_from_string("550 a\n451 b", &r, &err));
    assert_false(smtp_reply_from_string("550 a\n\n550 b", &r, &err));
    assert_false(smtp_reply_from_string("700 x", &r, &err));
    assert_false(smtp_reply_from_string(NULL, &r, &err));
    assert_true(smtp_reply_from_string("550 x", &r, NULL));
}

static void test_status_text(void **state)
{
    (void)state;
    for (int st = SMTP_RD_MORE; st <= SMTP_RD_ERR_SIZE; st++) {
        const char *t = smtp_rd_status_text((smtp_rd_status_t)st);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
    }
    assert_string_equal(smtp_state_name(SMTP_ST_RCPT), "RCPT");
    assert_string_equal(smtp_state_name(SMTP_ST__COUNT), "?");
    assert_string_equal(smtp_end_name(SMTP_END_OK), "ok");
    assert_string_equal(smtp_end_name(SMTP_END_PROTOCOL), "protocol");
}

/* ================================ sessions ================================ */

#define MAX_RCPT 8

/* What a test keeps of a result (the result itself is borrowed by the callback). */
typedef struct {
    int calls;
    smtp_end_t end;
    smtp_state_t end_state;
    char detail[256];
    bool has_reply, has_mail_reply;
    smtp_reply_t reply, mail_reply;
    size_t nrcpt;
    bool rcpt_has[MAX_RCPT];
    smtp_reply_t rcpt[MAX_RCPT];
    bool esmtp, pipelining, starttls_offered, smtputf8_offered, tls, tls_verified;
    char tls_version[32], tls_verify_error[128];
    unsigned round_trips, transactions;
    bool lines_truncated;
    char transcript[65536];
} out_t;

static void done_cb(const smtp_result_t *res, void *arg)
{
    out_t *o = arg;
    o->calls++;
    o->end = res->end;
    o->end_state = res->end_state;
    memcpy(o->detail, res->detail, sizeof o->detail);
    o->has_reply = res->has_reply;
    o->reply = res->reply;
    o->has_mail_reply = res->has_mail_reply;
    o->mail_reply = res->mail_reply;
    o->nrcpt = res->nrcpt;
    for (size_t i = 0; i < res->nrcpt && i < MAX_RCPT; i++) {
        o->rcpt_has[i] = res->rcpt[i].has_reply;
        o->rcpt[i] = res->rcpt[i].reply;
    }
    o->esmtp = res->esmtp;
    o->pipelining = res->pipelining;
    o->starttls_offered = res->starttls_offered;
    o->smtputf8_offered = res->smtputf8_offered;
    o->tls = res->tls;
    o->tls_verified = res->tls_verified;
    memcpy(o->tls_version, res->tls_version, sizeof o->tls_version);
    memcpy(o->tls_verify_error, res->tls_verify_error, sizeof o->tls_verify_error);
    o->round_trips = res->round_trips;
    o->transactions = res->transactions;
    o->lines_truncated = res->lines_truncated;
    size_t pos = 0;
    for (size_t i = 0; i < res->nlines; i++) {
        assert_true(i == 0 || res->lines[i].at_ms >= res->lines[i - 1].at_ms);
        mp_appendf(o->transcript, sizeof o->transcript, &pos, "%s%s\n",
                   res->lines[i].from_client ? "C: " : "S: ", res->lines[i].line);
    }
}

static void default_opts(smtp_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->helo = "probe.example";
    o->mail_from = "check@probe.example";
    o->to.connect_ms = 5000;
    o->to.banner_ms = 5000;
    o->to.command_ms = 5000;
    o->to.session_ms = 20000;
}

static void run_port(unsigned short port, const smtp_opts_t *opts, const char *const *rcpts,
                     size_t n, out_t *o)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(o, 0, sizeof *o);
    smtp_sess_t *s = NULL;
    assert_int_equal(smtp_sess_start(base, opts, (struct sockaddr *)&sin, sizeof sin, rcpts, n,
                                     done_cb, o, &s),
                     0);
    assert_non_null(s);
    assert_int_equal(o->calls, 0); /* never called back from inside start */
    event_base_dispatch(base);
    event_base_free(base);
    assert_int_equal(o->calls, 1);
}

/* Run a session against a script; returns the server (caller frees) after both ended. */
static smtpd_t *run(const ss_step_t *steps, const smtp_opts_t *opts, const char *const *rcpts,
                    size_t n, out_t *o)
{
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    run_port(d->port, opts, rcpts, n, o);
    smtpd_wait(d);
    /* Never DATA, whatever happened. */
    assert_null(strstr(d->log, "C: DATA"));
    assert_null(strstr(o->transcript, "C: DATA"));
    return d;
}

static void assert_log(const smtpd_t *d, const out_t *o, const char *want)
{
    if (strcmp(d->log, want) != 0)
        fail_msg("server log:\n%s\n--- expected:\n%s\n--- server error: %s", d->log, want,
                 d->err);
    if (strcmp(o->transcript, want) != 0)
        fail_msg("client transcript:\n%s\n--- expected:\n%s", o->transcript, want);
}

static const char *const two_rcpts[] = {"a@x.test", "b@x.test"};
static const char *const one_rcpt[] = {"a@x.test"};

static void test_sess_pipelining(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250-PIPELINING\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(2), /* both RCPTs before any reply: only a pipelining client gets past */
        SS_SEND_("250 2.1.5 Ok\r\n550 5.1.1 <b@x.test>: Recipient address rejected: User "
                 "unknown in virtual mailbox table\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, two_rcpts, 2, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250-PIPELINING\nS: 250-SMTPUTF8\nS: 250 8BITMIME\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "C: RCPT TO:<b@x.test>\n"
               "S: 250 2.1.5 Ok\n"
               "S: 550 5.1.1 <b@x.test>: Recipient address rejected: User unknown in virtual "
               "mailbox table\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(d->recv_chunks_rcpt, 1); /* one write carried both RCPTs */
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.end_state, SMTP_ST_DONE);
    assert_true(o.esmtp);
    assert_true(o.pipelining);
    assert_true(o.smtputf8_offered);
    assert_false(o.starttls_offered);
    assert_false(o.tls);
    assert_false(o.has_reply);
    assert_true(o.has_mail_reply);
    assert_int_equal(o.mail_reply.code, 250);
    assert_int_equal(o.nrcpt, 2);
    assert_true(o.rcpt_has[0] && o.rcpt_has[1]);
    assert_int_equal(o.rcpt[0].code, 250);
    assert_string_equal(o.rcpt[0].enh, "2.1.5");
    assert_int_equal(o.rcpt[1].code, 550);
    assert_string_equal(o.rcpt[1].enh, "5.1.1");
    assert_string_equal(o.rcpt[1].text, "<b@x.test>: Recipient address rejected: User unknown "
                                        "in virtual mailbox table");
    assert_int_equal(o.round_trips, 4); /* EHLO, MAIL, RCPT x2 at once, QUIT */
    smtpd_free(d);
}

static void test_sess_no_pipelining(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 No such user\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.smtputf8 = true;
    opts.mail_from = "";
    out_t o;
    smtpd_t *d = run(steps, &opts, two_rcpts, 2, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250-SMTPUTF8\nS: 250 8BITMIME\n"
               "C: MAIL FROM:<> SMTPUTF8\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 550 5.1.1 No such user\n"
               "C: RCPT TO:<b@x.test>\n"
               "S: 250 2.1.5 Ok\n"
               "C: QUIT\n"
               "S: 221 Bye\n");
    assert_int_equal(d->recv_chunks_rcpt, 2);
    assert_int_equal(o.end, SMTP_END_OK);
    assert_false(o.pipelining);
    assert_int_equal(o.rcpt[0].code, 550);
    assert_int_equal(o.rcpt[1].code, 250);
    assert_int_equal(o.round_trips, 5); /* EHLO, MAIL, RCPT, RCPT, QUIT */
    smtpd_free(d);
}

static void test_sess_helo_fallback(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 old.test Sendmail 8.6\r\n"),
        SS_READ_(1),
        SS_SEND_("500 5.5.1 Command unrecognized: \"EHLO probe.example\"\r\n"),
        SS_READ_(1),
        SS_SEND_("250 old.test Hello\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Sender ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Recipient ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 closing\r\n"),
        SS_CLOSE_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.smtputf8 = true; /* not advertised: must not be sent */
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 old.test Sendmail 8.6\n"
               "C: EHLO probe.example\n"
               "S: 500 5.5.1 Command unrecognized: \"EHLO probe.example\"\n"
               "C: HELO probe.example\n"
               "S: 250 old.test Hello\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 Sender ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 250 Recipient ok\n"
               "C: QUIT\n"
               "S: 221 closing\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_false(o.esmtp);
    assert_int_equal(o.rcpt[0].code, 250);
    smtpd_free(d);
}

static void test_sess_banner_554(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("554 5.7.1 mx.test: no SMTP service for you\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 554 5.7.1 mx.test: no SMTP service for you\n"
               "C: QUIT\n"
               "S: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_REPLY);
    assert_int_equal(o.end_state, SMTP_ST_BANNER);
    assert_true(o.has_reply);
    assert_int_equal(o.reply.code, 554);
    assert_string_equal(o.reply.enh, "5.7.1");
    assert_false(o.rcpt_has[0]);
    smtpd_free(d);
}

static void test_sess_banner_421(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("421 4.3.2 mx.test Service not available, closing channel\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o, "S: 421 4.3.2 mx.test Service not available, closing channel\n");
    assert_int_equal(o.end, SMTP_END_REPLY);
    assert_int_equal(o.end_state, SMTP_ST_BANNER);
    assert_int_equal(o.reply.code, 421);
    assert_int_equal(o.round_trips, 0);
    smtpd_free(d);
}

static void test_sess_mail_rejected(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(1),
        SS_SEND_("553 5.7.1 <check@probe.example>: Sender address rejected: Access denied\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, two_rcpts, 2, &o);
    assert_log(d, &o,
               "S: 220 mx.test\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 553 5.7.1 <check@probe.example>: Sender address rejected: Access denied\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(o.end, SMTP_END_REPLY);
    assert_int_equal(o.end_state, SMTP_ST_MAIL);
    assert_true(o.has_mail_reply);
    assert_int_equal(o.mail_reply.code, 553);
    assert_int_equal(o.reply.code, 553);
    assert_false(o.rcpt_has[0] || o.rcpt_has[1]);
    smtpd_free(d);
}

static void test_sess_split_bytes(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_BYTES_("220 mx.test ESMTP\r\n", 0),
        SS_READ_(1),
        SS_BYTES_("250-mx.test\r\n250 PIPELINING\r\n", 0),
        SS_READ_(1),
        SS_BYTES_("250 2.1.0 Ok\r\n", 0),
        SS_READ_(1),
        SS_BYTES_("550-5.1.1 no\n550 5.1.1 such user\r\n", 0),
        SS_READ_(1),
        SS_BYTES_("221 Bye\r\n", 0),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 550-5.1.1 no\nS: 550 5.1.1 such user\n"
               "C: QUIT\n"
               "S: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.rcpt[0].code, 550);
    assert_string_equal(o.rcpt[0].text, "no\nsuch user");
    smtpd_free(d);
}

static void test_sess_garbage(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("HTTP/1.1 400 Bad Request\r\n\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_PROTOCOL);
    assert_int_equal(o.end_state, SMTP_ST_BANNER);
    assert_non_null(strstr(o.detail, "malformed"));
    assert_null(strstr(d->log, "C: ")); /* we said nothing */
    assert_string_equal(o.transcript, "S: HTTP/1.1 400 Bad Request\n");
    smtpd_free(d);
}

static void test_sess_garbage_mid(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n251 changed code\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_PROTOCOL);
    assert_int_equal(o.end_state, SMTP_ST_EHLO);
    assert_null(strstr(d->log, "C: MAIL"));
    smtpd_free(d);
}

static void test_sess_unsolicited(void **state)
{
    (void)state;
    /* a second reply before we said anything: it cannot answer our EHLO */
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n250 extra\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_PROTOCOL);
    assert_int_equal(o.end_state, SMTP_ST_EHLO);
    assert_non_null(strstr(o.detail, "unsolicited"));
    assert_null(strstr(d->log, "C: ")); /* no EHLO went out */
    assert_string_equal(o.transcript, "S: 220 mx.test\nS: 250 extra\n");
    smtpd_free(d);
}

static char long_line[SMTP_REPLY_LINE_MAX * 3];

static void test_sess_oversized_line(void **state)
{
    (void)state;
    memset(long_line, 'x', sizeof long_line - 1);
    memcpy(long_line, "250-", 4);
    long_line[sizeof long_line - 1] = '\0'; /* no newline at all */
    const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_(long_line),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_PROTOCOL);
    assert_int_equal(o.end_state, SMTP_ST_EHLO);
    assert_non_null(strstr(o.detail, "too long"));
    smtpd_free(d);
}

static void test_sess_silent_timeout(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {SS_SILENT_()};
    smtp_opts_t opts;
    default_opts(&opts);
    opts.to.banner_ms = 200;
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_TIMEOUT);
    assert_int_equal(o.end_state, SMTP_ST_BANNER);
    assert_non_null(strstr(o.detail, "banner"));
    assert_string_equal(d->log, "");
    smtpd_free(d);
}

static void test_sess_trickle_timeout(void **state)
{
    (void)state;
    /* 40 bytes, one every 20 ms: data keeps coming, but the step deadline holds */
    static const ss_step_t steps[] = {
        SS_BYTES_("220-mx.test slowly slowly slowly slow\r\n", 20),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.to.banner_ms = 250;
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_TIMEOUT);
    assert_int_equal(o.end_state, SMTP_ST_BANNER);
    smtpd_free(d);
}

static void test_sess_session_cap(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {SS_SILENT_()};
    smtp_opts_t opts;
    default_opts(&opts);
    opts.to.session_ms = 150;
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_TIMEOUT);
    assert_non_null(strstr(o.detail, "session deadline"));
    smtpd_free(d);
}

static void test_sess_refused(void **state)
{
    (void)state;
    unsigned short port = smtpd_closed_port();
    assert_true(port != 0);
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    run_port(port, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_CONNECT);
    assert_int_equal(o.end_state, SMTP_ST_CONNECT);
    assert_string_equal(o.detail, "connection refused");
    assert_string_equal(o.transcript, "");
}

static void test_sess_closed_after_rcpt(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_CLOSE_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, two_rcpts, 2, &o);
    assert_log(d, &o,
               "S: 220 mx.test\n"
               "C: EHLO probe.example\n"
               "S: 250 mx.test\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\n");
    assert_int_equal(o.end, SMTP_END_CLOSED);
    assert_int_equal(o.end_state, SMTP_ST_RCPT);
    assert_false(o.rcpt_has[0]);
    assert_false(o.rcpt_has[1]);
    smtpd_free(d);
}

static void test_sess_421_mid_rcpt(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_("421 4.7.0 Too many errors, closing\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, two_rcpts, 2, &o);
    assert_int_equal(o.end, SMTP_END_REPLY);
    assert_int_equal(o.end_state, SMTP_ST_RCPT);
    assert_true(o.rcpt_has[0]);
    assert_int_equal(o.rcpt[0].code, 421);
    assert_false(o.rcpt_has[1]);
    assert_null(strstr(d->log, "C: QUIT")); /* after 421 the server is gone */
    smtpd_free(d);
}

static void test_sess_quit_failure_keeps_ok(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("garbage after QUIT\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.end_state, SMTP_ST_QUIT);
    assert_int_equal(o.rcpt[0].code, 250);
    smtpd_free(d);
}

/* --- "too many recipients" (RFC 5321 §4.5.3.1.10): further transactions, same session --- */

static const char *const five_rcpts[] = {"a@x.test", "b@x.test", "c@x.test", "d@x.test",
                                         "e@x.test"};

#define EHLO_PIPE "250-mx.test\r\n250 PIPELINING\r\n"
#define TOO_MANY "452 4.5.3 Error: too many recipients\r\n"

/* The server takes two RCPTs per transaction: the client learns it from the first one,
 * sends the refused recipients in order, two per transaction, RSET before each new
 * MAIL FROM, QUIT right after the last RCPT reply. */
static void test_sess_452_new_transactions(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(5),
        SS_SEND_(
            "250 2.1.5 Ok\r\n550 5.1.1 <b@x.test>: User unknown\r\n" TOO_MANY TOO_MANY TOO_MANY),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_("550 5.1.1 <c@x.test>: User unknown\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, five_rcpts, 5, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\nC: RCPT TO:<c@x.test>\n"
               "C: RCPT TO:<d@x.test>\nC: RCPT TO:<e@x.test>\n"
               "S: 250 2.1.5 Ok\nS: 550 5.1.1 <b@x.test>: User unknown\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "C: RSET\n"
               "S: 250 2.0.0 Ok\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<c@x.test>\nC: RCPT TO:<d@x.test>\n"
               "S: 550 5.1.1 <c@x.test>: User unknown\nS: 250 2.1.5 Ok\n"
               "C: RSET\n"
               "S: 250 2.0.0 Ok\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<e@x.test>\n"
               "S: 250 2.1.5 Ok\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.end_state, SMTP_ST_DONE);
    assert_int_equal(o.transactions, 3);
    assert_int_equal(o.nrcpt, 5);
    int want[] = {250, 550, 550, 250, 250};
    for (size_t i = 0; i < 5; i++) {
        assert_true(o.rcpt_has[i]);
        assert_int_equal(o.rcpt[i].code, want[i]);
        assert_false(smtp_reply_too_many_rcpts(&o.rcpt[i]));
    }
    assert_string_equal(o.rcpt[2].text, "<c@x.test>: User unknown"); /* the later answer */
    assert_int_equal(o.mail_reply.code, 250);
    /* EHLO, MAIL, RCPT x5, then RSET, MAIL, RCPT x2, then RSET, MAIL, RCPT, QUIT */
    assert_int_equal(o.round_trips, 10);
    smtpd_free(d);
}

/* A server that refuses recipients out of order: everything from the first refusal on
 * goes again, so the last recipient (the engine's catch-all probe) is still the last
 * RCPT of the session, and the limit is what came before the refusal (one). */
static void test_sess_452_last_stays_last(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(3),
        SS_SEND_("250 Ok\r\n" TOO_MANY "550 5.1.1 no such user\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 no such user\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    static const char *const rcpts[] = {"a@x.test", "b@x.test", "probe@x.test"};
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, rcpts, 3, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\nC: RCPT TO:<probe@x.test>\n"
               "S: 250 Ok\nS: 452 4.5.3 Error: too many recipients\n"
               "S: 550 5.1.1 no such user\n"
               "C: RSET\nS: 250 Ok\n"
               "C: MAIL FROM:<check@probe.example>\nS: 250 Ok\n"
               "C: RCPT TO:<b@x.test>\nS: 250 Ok\n"
               "C: RSET\nS: 250 Ok\n"
               "C: MAIL FROM:<check@probe.example>\nS: 250 Ok\n"
               "C: RCPT TO:<probe@x.test>\nS: 550 5.1.1 no such user\n"
               "C: QUIT\nS: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.transactions, 3);
    assert_int_equal(o.rcpt[0].code, 250);
    assert_int_equal(o.rcpt[1].code, 250);
    assert_int_equal(o.rcpt[2].code, 550);
    smtpd_free(d);
}

/* 452 4.5.3 to every RCPT: the first transaction answers nothing, so no second one (it
 * would meet the same refusal); every recipient keeps its 452 for the caller. */
static void test_sess_452_first_rcpt_no_loop(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_(TOO_MANY TOO_MANY),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, two_rcpts, 2, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "C: QUIT\nS: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.end_state, SMTP_ST_DONE);
    assert_int_equal(o.transactions, 1);
    for (size_t i = 0; i < 2; i++) {
        assert_true(o.rcpt_has[i]);
        assert_true(smtp_reply_too_many_rcpts(&o.rcpt[i]));
    }
    smtpd_free(d);
}

/* Progress first, then the server refuses the first RCPT of the next transaction: stop
 * there, QUIT, the recipient keeps its 452. Without PIPELINING the refusal ends the
 * transaction at once: c is not sent into a refusal. */
static void test_sess_452_later_no_progress(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_(TOO_MANY),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("452 4.5.3 Too many recipients in this session\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    static const char *const rcpts[] = {"a@x.test", "b@x.test", "c@x.test"};
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, rcpts, 3, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250 mx.test\n"
               "C: MAIL FROM:<check@probe.example>\nS: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\nS: 250 Ok\n"
               "C: RCPT TO:<b@x.test>\nS: 452 4.5.3 Error: too many recipients\n"
               "C: RSET\nS: 250 Ok\n"
               "C: MAIL FROM:<check@probe.example>\nS: 250 Ok\n"
               "C: RCPT TO:<b@x.test>\nS: 452 4.5.3 Too many recipients in this session\n"
               "C: QUIT\nS: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.transactions, 2);
    assert_int_equal(o.rcpt[0].code, 250);
    assert_true(o.rcpt_has[1]);
    assert_string_equal(o.rcpt[1].text, "Too many recipients in this session");
    assert_false(o.rcpt_has[2]); /* never asked: the caller gives it a session of its own */
    smtpd_free(d);
}

/* rcpt_per_txn: two RCPTs per transaction from the start (pipelined per transaction),
 * and max_txn: a server that takes one per transaction gets no third transaction. */
static void test_sess_rcpt_per_txn_and_max_txn(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_("250 Ok\r\n" TOO_MANY),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 no\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.rcpt_per_txn = 2;
    opts.max_txn = 2;
    out_t o;
    smtpd_t *d = run(steps, &opts, five_rcpts, 5, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\nS: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\n"
               "S: 250 Ok\nS: 452 4.5.3 Error: too many recipients\n"
               "C: RSET\nS: 250 Ok\n"
               "C: MAIL FROM:<check@probe.example>\nS: 250 Ok\n"
               "C: RCPT TO:<b@x.test>\nS: 550 5.1.1 no\n"
               "C: QUIT\nS: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.transactions, 2);
    assert_int_equal(o.rcpt[0].code, 250);
    assert_int_equal(o.rcpt[1].code, 550);
    for (size_t i = 2; i < 5; i++)
        assert_false(o.rcpt_has[i]);
    smtpd_free(d);
}

/* A refused RSET, a refused second MAIL FROM and a 421 at RSET end the session politely;
 * the outcome stays OK and the first MAIL FROM's reply is the one reported. */
static void test_sess_later_transaction_refused(void **state)
{
    (void)state;
    static const ss_step_t mail_refused[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_("250 Ok\r\n" TOO_MANY),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("451 4.7.1 one message per connection\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    static const ss_step_t rset_421[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_("250 Ok\r\n" TOO_MANY),
        SS_READ_(1),
        SS_SEND_("421 4.7.0 closing\r\n"),
        SS_END_(),
    };
    static const ss_step_t rset_500[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(2),
        SS_SEND_("250 Ok\r\n" TOO_MANY),
        SS_READ_(1),
        SS_SEND_("502 5.5.1 RSET not implemented\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    const ss_step_t *scripts[] = {mail_refused, rset_421, rset_500};
    const char *tail[] = {
        ("C: RSET\nS: 250 Ok\nC: MAIL FROM:<check@probe.example>\n"
         "S: 451 4.7.1 one message per connection\nC: QUIT\nS: 221 Bye\n"),
        "C: RSET\nS: 421 4.7.0 closing\n",
        "C: RSET\nS: 502 5.5.1 RSET not implemented\nC: QUIT\nS: 221 Bye\n",
    };
    for (size_t k = 0; k < 3; k++) {
        smtp_opts_t opts;
        default_opts(&opts);
        out_t o;
        smtpd_t *d = run(scripts[k], &opts, two_rcpts, 2, &o);
        char want[1024];
        snprintf(want, sizeof want,
                 "S: 220 mx.test ESMTP\nC: EHLO probe.example\n"
                 "S: 250-mx.test\nS: 250 PIPELINING\n"
                 "C: MAIL FROM:<check@probe.example>\nS: 250 2.1.0 Ok\n"
                 "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\n"
                 "S: 250 Ok\nS: 452 4.5.3 Error: too many recipients\n%s",
                 tail[k]);
        assert_log(d, &o, want);
        assert_int_equal(o.end, SMTP_END_OK);
        assert_false(o.has_reply);
        assert_int_equal(o.mail_reply.code, 250);
        assert_int_equal(o.transactions, 1);
        assert_int_equal(o.rcpt[0].code, 250);
        assert_true(smtp_reply_too_many_rcpts(&o.rcpt[1]));
        smtpd_free(d);
    }
}


/* ============================ reuse: one session, many transactions ============================ */

/* A session kept open: each idle callback starts the next run (plan[k]) or, after the
 * last, QUITs; each callback's result is kept in outs[]. */
typedef struct {
    const char *const *const *plan; /* recipients of runs 2.., NULL-terminated lists */
    const size_t *nplan;
    size_t runs;                    /* runs planned after the first */
    size_t calls;
    out_t outs[4];
    bool idle[4];
    unsigned run[4], refusals[4];
    bool slow[4];
    size_t room[4];
    int next_rc[4];
    bool wait_dead;                 /* before QUIT, wait until the server's close is seen */
    bool more;                      /* later runs continue the open transaction
                                       (smtp_sess_more), the last one with QUIT */
    size_t room_txn[4];
    smtp_sess_t *s;
    struct event_base *base;
} reuse_t;

static void reuse_cb(const smtp_result_t *res, void *arg);

static void reuse_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reuse_t *u = arg;
    static int polls;
    if (smtp_sess_alive(u->s) && ++polls < 500) {
        struct timeval tv = {0, 10000};
        event_base_once(u->base, -1, EV_TIMEOUT, reuse_poll_cb, u, &tv);
        return;
    }
    polls = 0;
    assert_false(smtp_sess_alive(u->s));
    assert_int_equal(smtp_sess_room(u->s), 0);
    smtp_sess_quit(u->s, reuse_cb, u);
}

static void reuse_cb(const smtp_result_t *res, void *arg)
{
    reuse_t *u = arg;
    size_t k = u->calls++;
    assert_true(k < 4);
    done_cb(res, &u->outs[k]);
    u->idle[k] = res->idle;
    u->run[k] = res->run;
    u->refusals[k] = res->refusals;
    u->slow[k] = res->slow;
    if (!res->idle)
        return;
    u->room[k] = smtp_sess_room(u->s);
    u->room_txn[k] = smtp_sess_room_txn(u->s, false);
    size_t r = res->run; /* runs done so far - 1 */
    if (r < u->runs) {
        u->next_rc[k] = u->more ? smtp_sess_more(u->s, u->plan[r], u->nplan[r], false,
                                                 r + 1 == u->runs, reuse_cb, u)
                                : smtp_sess_next(u->s, u->plan[r], u->nplan[r], false, reuse_cb, u);
        if (u->next_rc[k] == 0)
            return;
    }
    if (u->wait_dead) {
        struct timeval tv = {0, 10000};
        event_base_once(u->base, -1, EV_TIMEOUT, reuse_poll_cb, u, &tv);
        return;
    }
    smtp_sess_quit(u->s, reuse_cb, u);
}

static smtpd_t *run_reuse(const ss_step_t *steps, const smtp_opts_t *opts,
                          const char *const *rcpts, size_t n, reuse_t *u)
{
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    u->base = event_base_new();
    assert_non_null(u->base);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(d->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(smtp_sess_start(u->base, opts, (struct sockaddr *)&sin, sizeof sin, rcpts,
                                     n, reuse_cb, u, &u->s),
                     0);
    event_base_dispatch(u->base);
    event_base_free(u->base);
    smtpd_wait(d);
    assert_null(strstr(d->log, "C: DATA"));
    return d;
}

/* The client's transcripts of every run, one after the other: the whole conversation. */
static void assert_reuse_log(const smtpd_t *d, const reuse_t *u, const char *want)
{
    char all[65536];
    size_t pos = 0;
    for (size_t k = 0; k < u->calls; k++)
        mp_appendf(all, sizeof all, &pos, "%s", u->outs[k].transcript);
    if (strcmp(d->log, want) != 0)
        fail_msg("server log:\n%s\n--- expected:\n%s\n--- server error: %s", d->log, want,
                 d->err);
    if (strcmp(all, want) != 0)
        fail_msg("client transcripts:\n%s\n--- expected:\n%s", all, want);
}

static const char *const y_rcpts[] = {"c@y.test", "d@y.test"};

/* The first run of the reuse scenarios, as both sides log it: a@x.test accepted, b@x.test
 * refused. */
#define REUSE_RUN1_LOG                                                                    \
    "S: 220 mx.test ESMTP\n"                                                              \
    "C: EHLO probe.example\n"                                                             \
    "S: 250-mx.test\nS: 250 PIPELINING\n"                                                 \
    "C: MAIL FROM:<check@probe.example>\n"                                                \
    "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\n"                                      \
    "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 550 5.1.1 <b@x.test>: User unknown\n"

/* The reuse driver, reset: after the first run, `runs` more with y_rcpts (0 or 1). */
static reuse_t *reuse_new(size_t runs)
{
    static const char *const *const plan[] = {y_rcpts};
    static const size_t nplan[] = {2};
    static reuse_t u;
    memset(&u, 0, sizeof u);
    u.plan = plan;
    u.nplan = nplan;
    u.runs = runs;
    return &u;
}

static void reuse_opts(smtp_opts_t *o)
{
    default_opts(o);
    o->keep_open = true;
    o->pipeline_mail = true;
}

/* Two domains in one session with PIPELINING: MAIL FROM + RCPTs in one write, no QUIT
 * after the first transaction, then RSET + MAIL FROM + RCPTs in one write, then QUIT. */
static void test_sess_reuse_pipelined(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(3), /* MAIL FROM and both RCPTs before any reply */
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <b@x.test>: User unknown\r\n"),
        SS_READ_(4), /* RSET, MAIL FROM and both RCPTs before any reply */
        SS_SEND_("250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n550 5.1.1 <c@y.test>: User unknown\r\n"
                 "250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(1);
    smtpd_t *d = run_reuse(steps, &opts, two_rcpts, 2, u);
    assert_reuse_log(d, u,
                     REUSE_RUN1_LOG
                     "C: RSET\nC: MAIL FROM:<check@probe.example>\n"
                     "C: RCPT TO:<c@y.test>\nC: RCPT TO:<d@y.test>\n"
                     "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\n"
                     "S: 550 5.1.1 <c@y.test>: User unknown\nS: 250 2.1.5 Ok\n"
                     "C: QUIT\n"
                     "S: 221 2.0.0 Bye\n");
    assert_int_equal(d->recv_chunks, 4); /* EHLO; MAIL+RCPTs; RSET+MAIL+RCPTs; QUIT */
    assert_int_equal(u->calls, 3);
    /* first run: idle, both answered */
    assert_true(u->idle[0]);
    assert_int_equal(u->run[0], 0);
    assert_int_equal(u->outs[0].end, SMTP_END_OK);
    assert_int_equal(u->outs[0].end_state, SMTP_ST_IDLE);
    assert_int_equal(u->outs[0].rcpt[0].code, 250);
    assert_int_equal(u->outs[0].rcpt[1].code, 550);
    assert_int_equal(u->outs[0].round_trips, 2); /* EHLO, MAIL+RCPTs */
    assert_int_equal(u->refusals[0], 1);
    assert_int_equal(u->room[0], SMTP_ERROR_BUDGET_DEFAULT - 1 - 2);
    /* second run: the other domain's recipients, capabilities still known */
    assert_true(u->idle[1]);
    assert_int_equal(u->run[1], 1);
    assert_int_equal(u->outs[1].nrcpt, 2);
    assert_int_equal(u->outs[1].rcpt[0].code, 550);
    assert_int_equal(u->outs[1].rcpt[1].code, 250);
    assert_true(u->outs[1].pipelining);
    assert_true(u->outs[1].has_mail_reply);
    assert_int_equal(u->outs[1].transactions, 1);
    assert_int_equal(u->outs[1].round_trips, 1);
    assert_int_equal(u->refusals[1], 2);
    /* the QUIT */
    assert_false(u->idle[2]);
    assert_int_equal(u->outs[2].end, SMTP_END_OK);
    assert_int_equal(u->outs[2].end_state, SMTP_ST_DONE);
    assert_int_equal(u->outs[2].nrcpt, 0);
    smtpd_free(d);
}

/* A later run that continues the open transaction (smtp_sess_more): another domain's
 * RCPTs with no RSET and no second MAIL FROM, and QUIT in the same write (the session
 * takes nothing after it). The run's result comes before the 221 is read; the QUIT that
 * follows sends nothing more. */
static void test_sess_more_quit_pipelined(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(3),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <b@x.test>: User unknown\r\n"),
        SS_READ_(3), /* both RCPTs and QUIT before any reply */
        SS_SEND_("550 5.1.1 <c@y.test>: User unknown\r\n250 2.1.5 Ok\r\n"
                 "221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(1);
    u->more = true;
    smtpd_t *d = run_reuse(steps, &opts, two_rcpts, 2, u);
    assert_reuse_log(d, u,
                     REUSE_RUN1_LOG
                     "C: RCPT TO:<c@y.test>\nC: RCPT TO:<d@y.test>\nC: QUIT\n"
                     "S: 550 5.1.1 <c@y.test>: User unknown\nS: 250 2.1.5 Ok\n"
                     "S: 221 2.0.0 Bye\n");
    assert_int_equal(d->recv_chunks, 3); /* EHLO; MAIL+RCPTs; RCPTs+QUIT */
    assert_int_equal(u->calls, 3);
    /* after the first run: the open transaction has room for budget - refusals RCPTs, a
     * new one (RSET, MAIL FROM) two fewer */
    assert_int_equal(u->room_txn[0], SMTP_ERROR_BUDGET_DEFAULT - 1);
    assert_int_equal(u->room[0], SMTP_ERROR_BUDGET_DEFAULT - 1 - 2);
    /* the second run reported with the replies to its RCPTs, before the 221 */
    assert_true(u->idle[1]);
    assert_int_equal(u->outs[1].end, SMTP_END_OK);
    assert_int_equal(u->outs[1].nrcpt, 2);
    assert_int_equal(u->outs[1].rcpt[0].code, 550);
    assert_int_equal(u->outs[1].rcpt[1].code, 250);
    assert_null(strstr(u->outs[1].transcript, "S: 221"));
    assert_int_equal(u->outs[1].round_trips, 1);
    assert_int_equal(u->refusals[1], 2);
    assert_int_equal(u->room[1], 0); /* QUIT is sent: no reuse */
    assert_int_equal(u->room_txn[1], 0);
    /* the QUIT's callback: nothing sent, the 221 read */
    assert_false(u->idle[2]);
    assert_int_equal(u->outs[2].end, SMTP_END_OK);
    assert_int_equal(u->outs[2].end_state, SMTP_ST_DONE);
    smtpd_free(d);
}

/* smtp_sess_more() within the budget only: with every RCPT refused, a transaction that
 * could pass it is refused before anything is sent. */
static void test_sess_more_budget(void **state)
{
    (void)state;
    static const char *const r8[] = {"a@y.test", "b@y.test", "c@y.test", "d@y.test",
                                     "e@y.test", "f@y.test", "g@y.test", "h@y.test"};
    static const char *const *const plan[] = {r8};
    static const size_t nplan[] = {SMTP_ERROR_BUDGET_DEFAULT - 1};
    _Static_assert(SMTP_ERROR_BUDGET_DEFAULT - 1 <= 8, "r8 too short");
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(3),
        SS_SEND_("250 2.1.0 Ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(1);
    u->plan = plan;
    u->nplan = nplan;
    u->more = true;
    smtpd_t *d = run_reuse(steps, &opts, two_rcpts, 2, u);
    /* 2 refusals of the budget: budget - 2 more may come, not budget - 1 */
    assert_int_equal(u->room_txn[0], SMTP_ERROR_BUDGET_DEFAULT - 2);
    assert_int_equal(u->next_rc[0], MP_ERR_ARG);
    assert_non_null(strstr(d->log, "S: 550 5.1.1 no\nC: QUIT\n"));
    smtpd_free(d);
}

/* Without PIPELINING a later transaction goes one command at a time. */
static void test_sess_reuse_no_pipelining(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.0.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 No such user\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(1);
    smtpd_t *d = run_reuse(steps, &opts, one_rcpt, 1, u);
    assert_reuse_log(d, u,
                     "S: 220 mx.test ESMTP\n"
                     "C: EHLO probe.example\n"
                     "S: 250 mx.test\n"
                     "C: MAIL FROM:<check@probe.example>\n"
                     "S: 250 2.1.0 Ok\n"
                     "C: RCPT TO:<a@x.test>\n"
                     "S: 250 2.1.5 Ok\n"
                     "C: RSET\n"
                     "S: 250 2.0.0 Ok\n"
                     "C: MAIL FROM:<check@probe.example>\n"
                     "S: 250 2.1.0 Ok\n"
                     "C: RCPT TO:<c@y.test>\n"
                     "S: 550 5.1.1 No such user\n"
                     "C: RCPT TO:<d@y.test>\n"
                     "S: 250 2.1.5 Ok\n"
                     "C: QUIT\n"
                     "S: 221 2.0.0 Bye\n");
    assert_int_equal(d->recv_chunks, 8); /* every command in a write of its own */
    assert_int_equal(u->calls, 3);
    assert_int_equal(u->outs[1].rcpt[0].code, 550);
    assert_int_equal(u->outs[1].rcpt[1].code, 250);
    assert_int_equal(u->outs[1].round_trips, 4);
    smtpd_free(d);
}

/* A refused MAIL FROM with pipelined RCPTs: the 503s that follow are read (and counted)
 * before QUIT, never taken for the replies of later commands; in the first run and in a
 * later one. */
static void test_sess_mail_refused_drained(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(3),
        SS_SEND_("553 5.7.1 Sender address rejected\r\n503 5.5.1 Error: need MAIL command\r\n"
                 "503 5.5.1 Error: need MAIL command\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(0);
    smtpd_t *d = run_reuse(steps, &opts, two_rcpts, 2, u);
    assert_reuse_log(d, u,
                     "S: 220 mx.test ESMTP\n"
                     "C: EHLO probe.example\n"
                     "S: 250-mx.test\nS: 250 PIPELINING\n"
                     "C: MAIL FROM:<check@probe.example>\n"
                     "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\n"
                     "S: 553 5.7.1 Sender address rejected\n"
                     "S: 503 5.5.1 Error: need MAIL command\n"
                     "S: 503 5.5.1 Error: need MAIL command\n"
                     "C: QUIT\n"
                     "S: 221 2.0.0 Bye\n");
    assert_int_equal(u->calls, 1);
    assert_false(u->idle[0]);
    assert_int_equal(u->outs[0].end, SMTP_END_REPLY);
    assert_int_equal(u->outs[0].end_state, SMTP_ST_MAIL);
    assert_int_equal(u->outs[0].mail_reply.code, 553);
    assert_false(u->outs[0].rcpt_has[0] || u->outs[0].rcpt_has[1]); /* 503s are not answers */
    assert_int_equal(u->refusals[0], 3);
    smtpd_free(d);

    static const ss_step_t steps2[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(4),
        SS_SEND_("250 2.0.0 Ok\r\n451 4.3.0 Try again\r\n503 5.5.1 Error: need MAIL command\r\n"
                 "503 5.5.1 Error: need MAIL command\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    u = reuse_new(1);
    d = run_reuse(steps2, &opts, one_rcpt, 1, u);
    assert_reuse_log(d, u,
                     "S: 220 mx.test ESMTP\n"
                     "C: EHLO probe.example\n"
                     "S: 250-mx.test\nS: 250 PIPELINING\n"
                     "C: MAIL FROM:<check@probe.example>\nC: RCPT TO:<a@x.test>\n"
                     "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
                     "C: RSET\nC: MAIL FROM:<check@probe.example>\n"
                     "C: RCPT TO:<c@y.test>\nC: RCPT TO:<d@y.test>\n"
                     "S: 250 2.0.0 Ok\nS: 451 4.3.0 Try again\n"
                     "S: 503 5.5.1 Error: need MAIL command\n"
                     "S: 503 5.5.1 Error: need MAIL command\n"
                     "C: QUIT\n"
                     "S: 221 2.0.0 Bye\n");
    assert_int_equal(u->calls, 2);
    assert_false(u->idle[1]);
    assert_int_equal(u->run[1], 1);
    assert_int_equal(u->outs[1].end, SMTP_END_REPLY);
    assert_int_equal(u->outs[1].mail_reply.code, 451);
    assert_false(u->outs[1].rcpt_has[0] || u->outs[1].rcpt_has[1]);
    assert_int_equal(u->refusals[1], 3);
    smtpd_free(d);
}

/* A server that closes in the middle of a reused session's transaction: the recipient
 * it answered keeps its answer, the other has none (the caller sends it again). */
static void test_sess_reuse_closed_mid_transaction(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        SS_READ_(4),
        SS_SEND_("250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
        SS_CLOSE_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(1);
    smtpd_t *d = run_reuse(steps, &opts, one_rcpt, 1, u);
    assert_int_equal(u->calls, 2);
    assert_false(u->idle[1]);
    assert_int_equal(u->outs[1].end, SMTP_END_CLOSED);
    assert_true(u->outs[1].rcpt_has[0]);
    assert_int_equal(u->outs[1].rcpt[0].code, 250);
    assert_false(u->outs[1].rcpt_has[1]);
    smtpd_free(d);
}

/* A server that closes an idle session: the session is no longer alive, has no room,
 * and its QUIT calls back at once without sending anything. */
static void test_sess_idle_closed(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n421 4.4.2 mx.test Error: timeout exceeded\r\n"),
        SS_CLOSE_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(0);
    u->wait_dead = true;
    smtpd_t *d = run_reuse(steps, &opts, one_rcpt, 1, u);
    assert_int_equal(u->calls, 2);
    assert_true(u->idle[0]);
    assert_int_equal(u->outs[0].rcpt[0].code, 250);
    assert_false(u->idle[1]);
    assert_int_equal(u->outs[1].end, SMTP_END_OK);
    assert_null(strstr(d->log, "C: QUIT"));
    assert_null(strstr(u->outs[1].transcript, "QUIT"));
    smtpd_free(d);
}

/* The error budget: a session that took as many refusals as it may has no room left,
 * and smtp_sess_next() refuses to run on it; a later transaction of one run (452 4.5.3)
 * is cut to the budget too. */
static void test_sess_error_budget(void **state)
{
    (void)state;
    static const char *const three[] = {"a@x.test", "b@x.test", "c@x.test"};
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(4),
        SS_SEND_("250 2.1.0 Ok\r\n550 5.1.1 a\r\n550 5.1.1 b\r\n550 5.1.1 c\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    opts.error_budget = 5;
    assert_int_equal(smtp_room_fresh(5), 4);
    assert_int_equal(smtp_room_fresh(0), SMTP_ERROR_BUDGET_DEFAULT - 1);
    reuse_t *u = reuse_new(1);
    smtpd_t *d = run_reuse(steps, &opts, three, 3, u);
    assert_int_equal(u->calls, 2);
    assert_true(u->idle[0]);
    assert_int_equal(u->refusals[0], 3);
    assert_int_equal(u->room[0], 0); /* 3 + RSET + MAIL FROM would reach 5 */
    assert_int_equal(u->next_rc[0], MP_ERR_ARG);
    assert_false(u->idle[1]); /* then QUIT */
    assert_non_null(strstr(d->log, "C: QUIT\nS: 221"));
    assert_null(strstr(d->log, "RSET"));
    smtpd_free(d);

    /* 452 4.5.3 in the first transaction: the next one takes no more than the budget */
    static const ss_step_t steps2[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(6),
        SS_SEND_("250 2.1.0 Ok\r\n550 5.1.1 a\r\n" TOO_MANY TOO_MANY TOO_MANY TOO_MANY),
        SS_READ_(3),
        SS_SEND_("250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n550 5.1.1 b\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    opts.keep_open = false;
    opts.error_budget = 8;
    out_t o;
    d = run(steps2, &opts, five_rcpts, 5, &o);
    /* 5 refusals after the first transaction: RSET and MAIL FROM may still be refused,
     * so the next transaction carries 8 - 5 - 2 = 1 recipient, and then none */
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "C: RCPT TO:<a@x.test>\nC: RCPT TO:<b@x.test>\nC: RCPT TO:<c@x.test>\n"
               "C: RCPT TO:<d@x.test>\nC: RCPT TO:<e@x.test>\n"
               "S: 250 2.1.0 Ok\nS: 550 5.1.1 a\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "S: 452 4.5.3 Error: too many recipients\n"
               "C: RSET\nC: MAIL FROM:<check@probe.example>\nC: RCPT TO:<b@x.test>\n"
               "S: 250 2.0.0 Ok\nS: 250 2.1.0 Ok\nS: 550 5.1.1 b\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.rcpt[1].code, 550);
    assert_true(smtp_reply_too_many_rcpts(&o.rcpt[2])); /* left for the caller */
    smtpd_free(d);
}

/* A reply much slower than the others marks the session slow: no room for reuse. */
static void test_sess_slow_reply_retires(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_(EHLO_PIPE),
        SS_READ_(2),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_SLEEP_(1500),
        SS_SEND_("550 5.1.1 a\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    reuse_opts(&opts);
    reuse_t *u = reuse_new(1);
    smtpd_t *d = run_reuse(steps, &opts, one_rcpt, 1, u);
    assert_int_equal(u->calls, 2);
    assert_true(u->idle[0]);
    assert_true(u->slow[0]);
    assert_int_equal(u->room[0], 0);
    assert_int_equal(u->next_rc[0], MP_ERR_ARG);
    assert_null(strstr(d->log, "RSET"));
    smtpd_free(d);
}

static void test_too_many_rcpts_predicate(void **state)
{
    (void)state;
    static const struct {
        const char *reply;
        bool want;
    } cases[] = {
        {"452 4.5.3 Error: too many recipients", true},
        {"452 4.5.3", true},
        {"552 5.5.3 Too many recipients", true},
        {"452 Too many recipients received this hour", true},
        {"451 4.5.3 Too many recipients", true},
        {"452 4.2.2 Mailbox full", false}, /* a bare 452 is not "too many" */
        {"452 Requested action not taken: insufficient system storage", false},
        {"421 4.7.0 Too many recipients, closing", false}, /* 421 closes, whatever it says */
        {"250 2.5.3 ok", false},
        {"550 5.1.1 User unknown", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_reply_t r;
        const char *err = NULL;
        assert_true(smtp_reply_from_string(cases[i].reply, &r, &err));
        if (smtp_reply_too_many_rcpts(&r) != cases[i].want)
            fail_msg("%s: want %d", cases[i].reply, cases[i].want);
    }
}

static char big_reply[4][128 * 16 + 1];

static void test_sess_transcript_cap(void **state)
{
    (void)state;
    /* four replies of 128 lines each: more than the 500 lines the transcript keeps */
    static const char *const codes[] = {"220", "250", "250", "250"};
    for (int k = 0; k < 4; k++) {
        size_t pos = 0;
        for (int i = 0; i < 128; i++)
            assert_true(mp_appendf(big_reply[k], sizeof big_reply[k], &pos,
                                   "%s%cline%03d\r\n", codes[k], i < 127 ? '-' : ' ', i));
    }
    const ss_step_t steps[] = {
        SS_SEND_(big_reply[0]), SS_READ_(1), SS_SEND_(big_reply[1]), SS_READ_(1),
        SS_SEND_(big_reply[2]), SS_READ_(1), SS_SEND_(big_reply[3]), SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),  SS_READ_(1), SS_SEND_("221 Bye\r\n"), SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_OK);
    assert_int_equal(o.rcpt[0].nlines, 128);
    size_t lines = 0;
    for (const char *p = o.transcript; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 500);
    assert_true(o.lines_truncated);
    smtpd_free(d);
}

static void test_sess_bad_args(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(25)};
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    memset(&o, 0, sizeof o);
    smtp_sess_t *s = (smtp_sess_t *)&o;
    const char *inject[] = {"a@x.test>\r\nDATA"};
    assert_int_equal(smtp_sess_start(base, &opts, (struct sockaddr *)&sin, sizeof sin, inject, 1,
                                     done_cb, &o, &s),
                     MP_ERR_ARG);
    assert_null(s);
    assert_int_equal(smtp_sess_start(base, &opts, (struct sockaddr *)&sin, sizeof sin, one_rcpt,
                                     0, done_cb, &o, &s),
                     MP_ERR_ARG);
    opts.helo = "bad\nname";
    assert_int_equal(smtp_sess_start(base, &opts, (struct sockaddr *)&sin, sizeof sin, one_rcpt,
                                     1, done_cb, &o, &s),
                     MP_ERR_ARG);
    opts.helo = NULL;
    assert_int_equal(smtp_sess_start(base, &opts, (struct sockaddr *)&sin, sizeof sin, one_rcpt,
                                     1, done_cb, &o, &s),
                     MP_ERR_ARG);
    event_base_dispatch(base);
    assert_int_equal(o.calls, 0);
    event_base_free(base);
}

static void test_sess_cancel(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {SS_SILENT_()};
    smtpd_t *d = smtpd_start(steps);
    assert_non_null(d);
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(d->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    smtp_opts_t opts;
    default_opts(&opts);
    out_t o;
    memset(&o, 0, sizeof o);
    smtp_sess_t *s = NULL;
    assert_int_equal(smtp_sess_start(base, &opts, (struct sockaddr *)&sin, sizeof sin, one_rcpt,
                                     1, done_cb, &o, &s),
                     0);
    smtp_sess_cancel(s);
    event_base_dispatch(base);
    event_base_free(base);
    assert_int_equal(o.calls, 0);
    smtpd_free(d);
}

/* --- STARTTLS against an in-test OpenSSL server with a throwaway certificate --- */

static const ss_step_t starttls_steps[] = {
    SS_SEND_("220 mx.test ESMTP\r\n"),
    SS_READ_(1),
    SS_SEND_("250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
    SS_READ_(1),
    SS_SEND_("220 2.0.0 Ready to start TLS\r\n"),
    SS_TLS_(),
    SS_READ_(1),
    SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
    SS_READ_(1),
    SS_SEND_("250 2.1.0 Ok\r\n"),
    SS_READ_(1),
    SS_SEND_("250 2.1.5 Ok\r\n"),
    SS_READ_(1),
    SS_SEND_("221 2.0.0 Bye\r\n"),
    SS_END_(),
};

static void test_sess_starttls(void **state)
{
    (void)state;
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = true;
    opts.ssl_ctx = smtp_tls_ctx_new();
    opts.sni = "mx.test";
    assert_non_null(opts.ssl_ctx);
    out_t o;
    smtpd_t *d = run(starttls_steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250-PIPELINING\nS: 250 STARTTLS\n"
               "C: STARTTLS\n"
               "S: 220 2.0.0 Ready to start TLS\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 PIPELINING\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 250 2.1.5 Ok\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_true(o.tls);
    assert_true(o.starttls_offered);
    assert_true(o.pipelining);
    assert_true(strncmp(o.tls_version, "TLSv1", 5) == 0);
    assert_false(o.tls_verified); /* self-signed */
    assert_true(o.tls_verify_error[0] != '\0');
    assert_int_equal(o.rcpt[0].code, 250);
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
}

/* The context made when it is first needed (ssl_ctx_get): asked once when the server
 * offers STARTTLS, never when it does not; a getter that cannot make one leaves the
 * session in clear. */
static int ctx_asked;
static SSL_CTX *ctx_made;

static SSL_CTX *ctx_get(void *arg)
{
    ctx_asked++;
    return arg ? (ctx_made = smtp_tls_ctx_new()) : NULL;
}

static void test_sess_starttls_lazy_ctx(void **state)
{
    (void)state;
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = true;
    opts.ssl_ctx_get = ctx_get;
    opts.ssl_ctx_arg = &opts;
    opts.sni = "mx.test";
    out_t o;
    ctx_asked = 0;
    smtpd_t *d = run(starttls_steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_OK);
    assert_true(o.tls);
    assert_int_equal(ctx_asked, 1);
    smtpd_free(d);
    SSL_CTX_free(ctx_made);

    static const ss_step_t clear[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 PIPELINING\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    ctx_asked = 0;
    d = run(clear, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_OK);
    assert_false(o.tls);
    assert_int_equal(ctx_asked, 0); /* no STARTTLS offered: no context made */
    smtpd_free(d);

    static const ss_step_t offered[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.5 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    opts.ssl_ctx_arg = NULL; /* the getter fails */
    ctx_asked = 0;
    d = run(offered, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250-PIPELINING\nS: 250 STARTTLS\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 250 2.1.5 Ok\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_false(o.tls);
    assert_int_equal(ctx_asked, 1);
    smtpd_free(d);
}

/* The CA store is looked up in its hashed directory (SSL_CERT_DIR here): the server's
 * certificate made a trusted root there (<subject hash>.0) is verified. */
static void test_sess_starttls_ca_dir(void **state)
{
    (void)state;
    /* the certificate exists once the script server made it: a first session makes it */
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = true;
    opts.ssl_ctx = smtp_tls_ctx_new();
    opts.sni = "mx.test";
    out_t o;
    smtpd_free(run(starttls_steps, &opts, one_rcpt, 1, &o));
    SSL_CTX_free(opts.ssl_ctx);
    assert_false(o.tls_verified);
    char dir[] = "/tmp/mp-ca-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%08lx.0", dir, X509_NAME_hash_ex(X509_get_subject_name(
                                                         smtpd_tls_cert), NULL, NULL, NULL));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, smtpd_tls_cert), 1);
    fclose(f);
    setenv("SSL_CERT_DIR", dir, 1);
    opts.ssl_ctx = smtp_tls_ctx_new();
    unsetenv("SSL_CERT_DIR");
    assert_non_null(opts.ssl_ctx);
    smtpd_t *d = run(starttls_steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_OK);
    assert_true(o.tls);
    assert_true(o.tls_verified);
    assert_string_equal(o.tls_verify_error, "");
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
    unlink(path);
    rmdir(dir);
}

static void test_sess_tls_demanded_at_mail(void **state)
{
    (void)state;
    /* Postfix with smtpd_tls_security_level=encrypt */
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test ESMTP\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 STARTTLS\r\n"),
        SS_READ_(1),
        SS_SEND_("530 5.7.0 Must issue a STARTTLS command first\r\n"),
        SS_READ_(1),
        SS_SEND_("220 2.0.0 Ready to start TLS\r\n"),
        SS_TLS_(),
        SS_READ_(1),
        SS_SEND_("250 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 2.1.0 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("550 5.1.1 unknown\r\n"),
        SS_READ_(1),
        SS_SEND_("221 2.0.0 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = false; /* not wanted, but demanded */
    opts.ssl_ctx = smtp_tls_ctx_new();
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 mx.test ESMTP\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 STARTTLS\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 530 5.7.0 Must issue a STARTTLS command first\n"
               "C: STARTTLS\n"
               "S: 220 2.0.0 Ready to start TLS\n"
               "C: EHLO probe.example\n"
               "S: 250 mx.test\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 2.1.0 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 550 5.1.1 unknown\n"
               "C: QUIT\n"
               "S: 221 2.0.0 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_true(o.tls);
    assert_int_equal(o.mail_reply.code, 250);
    assert_int_equal(o.rcpt[0].code, 550);
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
}

static void test_sess_tls_demanded_at_ehlo(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("530 5.7.0 Must issue a STARTTLS command first\r\n"),
        SS_READ_(1),
        SS_SEND_("220 2.0.0 Ready\r\n"),
        SS_TLS_(),
        SS_READ_(1),
        SS_SEND_("250 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.ssl_ctx = smtp_tls_ctx_new();
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 mx.test\n"
               "C: EHLO probe.example\n"
               "S: 530 5.7.0 Must issue a STARTTLS command first\n"
               "C: STARTTLS\n"
               "S: 220 2.0.0 Ready\n"
               "C: EHLO probe.example\n"
               "S: 250 mx.test\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 250 Ok\n"
               "C: QUIT\n"
               "S: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_true(o.tls);
    assert_true(o.esmtp);
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
}

static void test_sess_starttls_refused_clear(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 STARTTLS\r\n"),
        SS_READ_(1),
        SS_SEND_("454 4.7.0 TLS not available due to local problem\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("250 Ok\r\n"),
        SS_READ_(1),
        SS_SEND_("221 Bye\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = true;
    opts.ssl_ctx = smtp_tls_ctx_new();
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_log(d, &o,
               "S: 220 mx.test\n"
               "C: EHLO probe.example\n"
               "S: 250-mx.test\nS: 250 STARTTLS\n"
               "C: STARTTLS\n"
               "S: 454 4.7.0 TLS not available due to local problem\n"
               "C: MAIL FROM:<check@probe.example>\n"
               "S: 250 Ok\n"
               "C: RCPT TO:<a@x.test>\n"
               "S: 250 Ok\n"
               "C: QUIT\n"
               "S: 221 Bye\n");
    assert_int_equal(o.end, SMTP_END_OK);
    assert_false(o.tls);
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
}

static void test_sess_tls_handshake_fails(void **state)
{
    (void)state;
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 STARTTLS\r\n"),
        SS_READ_(1),
        SS_SEND_("220 go ahead\r\n"),
        SS_SLEEP_(50),
        SS_SEND_("this is not TLS\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = true;
    opts.ssl_ctx = smtp_tls_ctx_new();
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_TLS);
    assert_int_equal(o.end_state, SMTP_ST_TLS_HANDSHAKE);
    assert_true(o.detail[0] != '\0');
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
}

static void test_sess_starttls_injection(void **state)
{
    (void)state;
    /* plaintext after the 220 to STARTTLS (RFC 3207 §5; CVE-2011-0411 class) */
    static const ss_step_t steps[] = {
        SS_SEND_("220 mx.test\r\n"),
        SS_READ_(1),
        SS_SEND_("250-mx.test\r\n250 STARTTLS\r\n"),
        SS_READ_(1),
        SS_SEND_("220 go ahead\r\n250 injected\r\n"),
        SS_END_(),
    };
    smtp_opts_t opts;
    default_opts(&opts);
    opts.starttls = true;
    opts.ssl_ctx = smtp_tls_ctx_new();
    out_t o;
    smtpd_t *d = run(steps, &opts, one_rcpt, 1, &o);
    assert_int_equal(o.end, SMTP_END_PROTOCOL);
    assert_int_equal(o.end_state, SMTP_ST_STARTTLS);
    smtpd_free(d);
    SSL_CTX_free(opts.ssl_ctx);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the application's job; libevent does not do it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),
        cmocka_unit_test(test_multi_line),
        cmocka_unit_test(test_split_every_byte),
        cmocka_unit_test(test_several_in_one_buffer),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_enh_class_mismatch),
        cmocka_unit_test(test_enh_continuation_stripped),
        cmocka_unit_test(test_code_alone),
        cmocka_unit_test(test_bad_codes),
        cmocka_unit_test(test_code_change),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_too_many_lines),
        cmocka_unit_test(test_total_size),
        cmocka_unit_test(test_text_truncated),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_from_string),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_sess_pipelining),
        cmocka_unit_test(test_sess_no_pipelining),
        cmocka_unit_test(test_sess_helo_fallback),
        cmocka_unit_test(test_sess_banner_554),
        cmocka_unit_test(test_sess_banner_421),
        cmocka_unit_test(test_sess_mail_rejected),
        cmocka_unit_test(test_sess_split_bytes),
        cmocka_unit_test(test_sess_garbage),
        cmocka_unit_test(test_sess_garbage_mid),
        cmocka_unit_test(test_sess_unsolicited),
        cmocka_unit_test(test_sess_oversized_line),
        cmocka_unit_test(test_sess_silent_timeout),
        cmocka_unit_test(test_sess_trickle_timeout),
        cmocka_unit_test(test_sess_session_cap),
        cmocka_unit_test(test_sess_refused),
        cmocka_unit_test(test_sess_closed_after_rcpt),
        cmocka_unit_test(test_sess_421_mid_rcpt),
        cmocka_unit_test(test_sess_quit_failure_keeps_ok),
        cmocka_unit_test(test_sess_452_new_transactions),
        cmocka_unit_test(test_sess_452_last_stays_last),
        cmocka_unit_test(test_sess_452_first_rcpt_no_loop),
        cmocka_unit_test(test_sess_452_later_no_progress),
        cmocka_unit_test(test_sess_rcpt_per_txn_and_max_txn),
        cmocka_unit_test(test_sess_later_transaction_refused),
        cmocka_unit_test(test_sess_reuse_pipelined),
        cmocka_unit_test(test_sess_more_quit_pipelined),
        cmocka_unit_test(test_sess_more_budget),
        cmocka_unit_test(test_sess_reuse_no_pipelining),
        cmocka_unit_test(test_sess_mail_refused_drained),
        cmocka_unit_test(test_sess_reuse_closed_mid_transaction),
        cmocka_unit_test(test_sess_idle_closed),
        cmocka_unit_test(test_sess_error_budget),
        cmocka_unit_test(test_sess_slow_reply_retires),
        cmocka_unit_test(test_too_many_rcpts_predicate),
        cmocka_unit_test(test_sess_transcript_cap),
        cmocka_unit_test(test_sess_bad_args),
        cmocka_unit_test(test_sess_cancel),
        cmocka_unit_test(test_sess_starttls),
        cmocka_unit_test(test_sess_starttls_ca_dir),
        cmocka_unit_test(test_sess_starttls_lazy_ctx),
        cmocka_unit_test(test_sess_tls_demanded_at_mail),
        cmocka_unit_test(test_sess_tls_demanded_at_ehlo),
        cmocka_unit_test(test_sess_starttls_refused_clear),
        cmocka_unit_test(test_sess_tls_handshake_fails),
        cmocka_unit_test(test_sess_starttls_injection),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    smtpd_tls_global_cleanup();
    return rc;
}
