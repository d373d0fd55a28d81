/*
 * test_classify.c - unit tests of the classify module (what an SMTP reply means).
 *
 * The golden file tests/data/replies.tsv holds real replies from many MTAs and providers
 * with what each must mean; every line is asserted, and every rule of the tables must be
 * the deciding rule of at least one line (so each rule is backed by a real reply).
 * Focused cases cover what golden data cannot: enhanced codes whose class differs from
 * the reply, empty and huge texts, codes outside the ranges, names, and the promise that
 * no reply before RCPT ever yields a mailbox verdict. Reads one file, no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify/classify.h"
#include "util/str.h"

#ifndef MP_SOURCE_DIR
#define MP_SOURCE_DIR "."
#endif
#define REPLIES_TSV MP_SOURCE_DIR "/tests/data/replies.tsv"
#define LINE_MAX_LEN 8192
#define MAX_RULES 256

/* ---- golden file ---------------------------------------------------------------------- */

typedef struct {
    unsigned lineno;
    cl_stage_t stage;
    int code;
    const char *enh;
    char *text; /* "\n" escapes turned into line breaks */
    const char *outcome;
    const char *reason;     /* the engine's reading without controls, "-" for none */
    const char *controlled; /* ... when postmaster@ was accepted, "-" when the same */
    const char *source;
} golden_t;

/* Split s at tabs into at most n fields; returns how many. */
static size_t split_tabs(char *s, char **f, size_t n)
{
    size_t k = 0;
    f[k++] = s;
    for (char *p = s; *p && k < n; p++) {
        if (*p == '\t') {
            *p = '\0';
            f[k++] = p + 1;
        }
    }
    return k;
}

/* Turn the two characters "\n" into a line break, in place. */
static void unescape_nl(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] == 'n') {
            *w++ = '\n';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static bool stage_from_name(const char *name, cl_stage_t *out)
{
    for (int s = CL_STAGE_BANNER; s <= CL_STAGE_OTHER; s++) {
        if (strcmp(classify_stage_name((cl_stage_t)s), name) == 0) {
            *out = (cl_stage_t)s;
            return true;
        }
    }
    return false;
}

static bool outcome_known(const char *name)
{
    for (int o = 0; o < CL__COUNT; o++)
        if (strcmp(classify_outcome_name((cl_outcome_t)o), name) == 0)
            return true;
    return false;
}

/* Parse one data line (modified in place); fails the test on a malformed line. */
static void golden_parse(char *line, unsigned lineno, golden_t *g)
{
    char *f[9];
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    size_t n = split_tabs(line, f, 9);
    if (n != 8)
        fail_msg("replies.tsv:%u: %zu fields, want 8", lineno, n);
    uint64_t code;
    g->lineno = lineno;
    if (!stage_from_name(f[0], &g->stage))
        fail_msg("replies.tsv:%u: unknown stage '%s'", lineno, f[0]);
    if (!mp_parse_uint(f[1], 0, 999, &code))
        fail_msg("replies.tsv:%u: bad code '%s'", lineno, f[1]);
    g->code = (int)code;
    g->enh = f[2];
    unescape_nl(f[3]);
    g->text = f[3];
    if (!outcome_known(f[4]))
        fail_msg("replies.tsv:%u: unknown outcome '%s'", lineno, f[4]);
    g->outcome = f[4];
    g->reason = f[5];
    g->controlled = f[6];
    g->source = f[7];
    if (g->source[0] == '\0')
        fail_msg("replies.tsv:%u: no source", lineno);
}

typedef void (*golden_fn)(const golden_t *g, void *arg);

/* Call fn for every data line of the golden file; returns the number of lines. */
static unsigned golden_each(golden_fn fn, void *arg)
{
    FILE *fp = fopen(REPLIES_TSV, "r");
    if (!fp)
        fail_msg("cannot open %s", REPLIES_TSV);
    static char line[LINE_MAX_LEN];
    unsigned lineno = 0, count = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (strlen(line) == sizeof line - 1)
            fail_msg("replies.tsv:%u: line too long", lineno);
        if (lineno == 1) {
            static const char header[] = "stage\tcode\tenhanced\ttext\toutcome\treason\tcontrolled\tsource";
            assert_true(strncmp(line, header, sizeof header - 1) == 0);
            continue;
        }
        if (line[0] == '\n' || line[0] == '#')
            continue;
        golden_t g;
        golden_parse(line, lineno, &g);
        fn(&g, arg);
        count++;
    }
    fclose(fp);
    return count;
}

typedef struct {
    unsigned failed;
    bool rule_hit[MAX_RULES];
} golden_state_t;

static void check_golden_line(const golden_t *g, void *arg)
{
    golden_state_t *st = arg;
    cl_result_t r;
    cl_outcome_t o = classify_reply(g->stage, g->code, g->enh, g->text, &r);
    assert_int_equal(o, r.outcome);
    assert_non_null(r.rule);
    assert_non_null(r.why);
    if (strcmp(classify_outcome_name(o), g->outcome) != 0) {
        st->failed++;
        print_message("replies.tsv:%u: %s %d %s \"%.100s\": got %s (rule %s), want %s\n", g->lineno,
                      classify_stage_name(g->stage), g->code, g->enh, g->text,
                      classify_outcome_name(o), r.rule, g->outcome);
    }
    for (size_t i = 0; i < classify_rule_count() && i < MAX_RULES; i++)
        if (strcmp(classify_rule_id(i), r.rule) == 0)
            st->rule_hit[i] = true;
}

static void test_golden_replies(void **state)
{
    (void)state;
    static golden_state_t st;
    memset(&st, 0, sizeof st);
    assert_true(classify_rule_count() <= MAX_RULES);
    unsigned n = golden_each(check_golden_line, &st);
    print_message("replies.tsv: %u replies, %u misread\n", n, st.failed);
    assert_true(n >= 160);
    assert_int_equal(st.failed, 0);

    unsigned unused = 0;
    for (size_t i = 0; i < classify_rule_count(); i++) {
        if (!st.rule_hit[i]) {
            print_message("rule %s decides no line of replies.tsv\n", classify_rule_id(i));
            unused++;
        }
    }
    assert_int_equal(unused, 0);
}

/* Before RCPT the only possible readings are about the session, us or the sender. */
static void check_no_mailbox_before_rcpt(const golden_t *g, void *arg)
{
    (void)arg;
    const cl_stage_t early[] = {CL_STAGE_BANNER, CL_STAGE_EHLO, CL_STAGE_STARTTLS, CL_STAGE_MAIL,
                                CL_STAGE_OTHER};
    for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
        cl_result_t r;
        cl_outcome_t o = classify_reply(early[i], g->code, g->enh, g->text, &r);
        if (o == CL_ANTI_ENUM || o == CL_MAILBOX_ABSENT || o == CL_MAILBOX_DISABLED ||
            o == CL_MAILBOX_FULL || o == CL_RELAY_DENIED ||
            (o == CL_DOMAIN_ABSENT && g->code != 521 && g->code != 556))
            fail_msg("replies.tsv:%u at %s: %s (rule %s)", g->lineno, classify_stage_name(early[i]),
                     classify_outcome_name(o), r.rule);
    }
}

static void test_no_mailbox_verdict_before_rcpt(void **state)
{
    (void)state;
    golden_each(check_no_mailbox_before_rcpt, NULL);
}

/* ---- focused cases -------------------------------------------------------------------- */

static cl_outcome_t rd(cl_stage_t st, int code, const char *enh, const char *text)
{
    cl_result_t r;
    cl_outcome_t o = classify_reply(st, code, enh, text, &r);
    assert_int_equal(o, r.outcome);
    assert_non_null(r.rule);
    assert_non_null(r.why);
    return o;
}

static void test_enh_class_mismatch(void **state)
{
    (void)state;
    /* "550 4.2.2": the enhanced code is dropped; a bare 550 at RCPT remains, which
     * proves nothing by itself (the session's controls decide, sched/trouble.c). */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, "4.2.2", ""), CL_PERM_OTHER);
    /* "452 5.2.2": a 4xx stays temporary; 5.2.2 must not make it "full". */
    assert_int_equal(rd(CL_STAGE_RCPT, 452, "5.2.2", ""), CL_TEMPORARY);
    /* "554 5.1.1" is read as 5.1.1; "554 2.1.1" and malformed codes are ignored. */
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1.1", ""), CL_MAILBOX_ABSENT);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "2.1.1", ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1.1x", ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1", ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1.1234", ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5..1", ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, " 5.1.1", ""), CL_POLICY_BLOCKED);
    /* 5.1.10 is not 5.1.1 (no prefix matching of codes). */
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1.10", ""), CL_DOMAIN_ABSENT);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1.100", ""), CL_POLICY_BLOCKED);
    /* 5.7.x is a policy refusal whatever the basic code. */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, "5.7.1", ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 550, "5.7.999", ""), CL_POLICY_BLOCKED);
    /* Undecided enhanced codes leave the reading to the basic code. */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, "5.0.0", ""), CL_PERM_OTHER);
    assert_int_equal(rd(CL_STAGE_RCPT, 553, "5.0.0", ""), CL_PERM_OTHER);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, NULL), CL_PERM_OTHER);
    assert_int_equal(rd(CL_STAGE_RCPT, 550, "", ""), CL_PERM_OTHER);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, NULL, ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 450, NULL, NULL), CL_TEMPORARY);
    assert_int_equal(rd(CL_STAGE_RCPT, 421, NULL, NULL), CL_RATE_LIMITED);
    assert_int_equal(rd(CL_STAGE_RCPT, 250, NULL, NULL), CL_ACCEPTED);
    assert_int_equal(rd(CL_STAGE_RCPT, 252, NULL, NULL), CL_ANTI_ENUM);
    assert_int_equal(rd(CL_STAGE_RCPT, 333, NULL, NULL), CL_PROTOCOL_ERROR);
    assert_int_equal(rd(CL_STAGE_MAIL, 550, NULL, NULL), CL_SENDER_REJECTED);
    assert_int_equal(rd(CL_STAGE_BANNER, 554, NULL, NULL), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_EHLO, 550, NULL, ""), CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_OTHER, 550, NULL, ""), CL_PERM_OTHER);
    /* Only white space, and text that is nothing but an enhanced code. */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, " \t\r\n \n"), CL_PERM_OTHER);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, "5.1.1", "5.1.1\n5.1.1 "), CL_MAILBOX_ABSENT);
    /* out may be NULL. */
    assert_int_equal(classify_reply(CL_STAGE_RCPT, 550, "5.1.1", "x", NULL), CL_MAILBOX_ABSENT);
}

static void test_huge_text(void **state)
{
    (void)state;
    const size_t n = 1u << 20;
    char *t = malloc(n + 1);
    assert_non_null(t);
    memset(t, 'a', n);
    t[n] = '\0';
    assert_int_equal(rd(CL_STAGE_RCPT, 554, NULL, t), CL_POLICY_BLOCKED);
    /* A telling phrase at the start is read ... */
    memcpy(t, "no such user ", 13);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, NULL, t), CL_MAILBOX_ABSENT);
    /* ... one far beyond what is scanned is not (bounded work on hostile input). */
    memset(t, 'a', 13);
    memcpy(t + n - 20, "no such user", 12);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, NULL, t), CL_POLICY_BLOCKED);
    /* Lines full of white space collapse; phrases still match across line breaks. */
    memset(t, '\n', n);
    memcpy(t + 10, "mailbox\n\n\n   \t full", 19);
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, t), CL_MAILBOX_FULL);
    free(t);
}

static void test_unknown_codes(void **state)
{
    (void)state;
    const int bad[] = {-1, 0, 1, 99, 199, 600, 999, 1000, 25000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rd(CL_STAGE_RCPT, bad[i], "5.1.1", "user unknown"), CL_PROTOCOL_ERROR);
    assert_int_equal(rd(CL_STAGE_RCPT, 299, NULL, ""), CL_PROTOCOL_ERROR);
    assert_int_equal(rd(CL_STAGE_RCPT, 220, NULL, ""), CL_PROTOCOL_ERROR);
    assert_int_equal(rd(CL_STAGE_EHLO, 299, NULL, ""), CL_ACCEPTED);
    assert_int_equal(rd(CL_STAGE_RCPT, 354, NULL, ""), CL_PROTOCOL_ERROR);
    assert_int_equal(rd(CL_STAGE_BANNER, 354, NULL, ""), CL_PROTOCOL_ERROR);
    assert_int_equal(rd(CL_STAGE_RCPT, 499, NULL, ""), CL_TEMPORARY);
    assert_int_equal(rd(CL_STAGE_RCPT, 599, NULL, ""), CL_PERM_OTHER);
    assert_int_equal(rd(CL_STAGE_RCPT, 558, NULL, "blah"), CL_PERM_OTHER);
    /* An out-of-range stage is read as "other", never as RCPT. */
    assert_int_equal(rd((cl_stage_t)42, 550, "5.1.1", "user unknown"), CL_PERM_OTHER);
}

static void test_421_any_stage(void **state)
{
    (void)state;
    for (int s = CL_STAGE_BANNER; s <= CL_STAGE_OTHER; s++)
        assert_int_equal(rd((cl_stage_t)s, 421, "4.7.0", "closing connection"), CL_RATE_LIMITED);
}

static void test_rule_order(void **state)
{
    (void)state;
    cl_result_t r;
    /* "Relay access denied" contains "access denied": the relay rule is tried first. */
    classify_reply(CL_STAGE_RCPT, 550, "5.4.1", "Relay access denied", &r);
    assert_int_equal(r.outcome, CL_RELAY_DENIED);
    assert_string_equal(r.rule, "text:relay-denied");
    /* Microsoft DBEB. */
    classify_reply(CL_STAGE_RCPT, 550, "5.4.1",
                   "Recipient address rejected: Access denied. AS(201806281)", &r);
    assert_int_equal(r.outcome, CL_MAILBOX_ABSENT);
    assert_string_equal(r.rule, "ms:dbeb");
    /* The same words under another enhanced code are a refusal of us. */
    classify_reply(CL_STAGE_RCPT, 550, "5.7.1", "Recipient address rejected: Access denied", &r);
    assert_int_equal(r.outcome, CL_POLICY_BLOCKED);
    /* A DNSBL text under 5.1.1. */
    classify_reply(CL_STAGE_RCPT, 550, "5.1.1",
                   "Client host [192.0.2.1] blocked using zen.spamhaus.org", &r);
    assert_int_equal(r.outcome, CL_POLICY_BLOCKED);
    assert_string_equal(r.rule, "text:dnsbl");
    /* "user unknown" about our sender, at RCPT. */
    classify_reply(CL_STAGE_RCPT, 550, "5.1.1",
                   "<a@b>: Sender address rejected: User unknown in local recipient table", &r);
    assert_int_equal(r.outcome, CL_SENDER_REJECTED);
    /* Greylisting is only ever temporary: the same words at 5xx are not greylisting. */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, "Greylisted, try again later"),
                     CL_PERM_OTHER);
    /* Echoed addresses never match a rule's words ("spam", "rbl", "blocked" ...). */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, "5.1.1",
                        "<spamtrap@marble-blocked.example>: Recipient address rejected: "
                        "User unknown in virtual mailbox table"),
                     CL_MAILBOX_ABSENT);
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, "unknown or illegal alias: spf@rbl.example"),
                     CL_MAILBOX_ABSENT);
    /* ... while the words around them still do. */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, "failure (x@example.com:blocked)"),
                     CL_POLICY_BLOCKED);
    assert_int_equal(rd(CL_STAGE_RCPT, 554, NULL, "RBL Reject."), CL_POLICY_BLOCKED);
    /* A 5xx whose wording is unknown is never "mailbox absent" on its own. */
    assert_int_equal(rd(CL_STAGE_RCPT, 550, NULL, "garble marble"), CL_PERM_OTHER);
    /* Exact enhanced-code rules report their id. */
    classify_reply(CL_STAGE_RCPT, 550, "5.1.1", "", &r);
    assert_string_equal(r.rule, "enh:5.1.1");
    classify_reply(CL_STAGE_RCPT, 550, NULL, "", &r);
    assert_string_equal(r.rule, "code:550");
}

static void test_names(void **state)
{
    (void)state;
    for (int a = 0; a < CL__COUNT; a++) {
        const char *na = classify_outcome_name((cl_outcome_t)a);
        assert_non_null(na);
        assert_string_not_equal(na, "invalid");
        for (int b = a + 1; b < CL__COUNT; b++)
            assert_string_not_equal(na, classify_outcome_name((cl_outcome_t)b));
    }
    assert_string_equal(classify_outcome_name(CL_MAILBOX_ABSENT), "mailbox_absent");
    assert_string_equal(classify_outcome_name(CL__COUNT), "invalid");
    assert_string_equal(classify_outcome_name((cl_outcome_t)-1), "invalid");
    assert_string_equal(classify_stage_name(CL_STAGE_RCPT), "rcpt");
    assert_string_equal(classify_stage_name(CL_STAGE_BANNER), "banner");
    assert_string_equal(classify_stage_name((cl_stage_t)99), "invalid");
    for (size_t i = 0; i < classify_rule_count(); i++) {
        const char *id = classify_rule_id(i);
        assert_non_null(id);
        for (size_t j = i + 1; j < classify_rule_count(); j++)
            assert_string_not_equal(id, classify_rule_id(j));
    }
    assert_null(classify_rule_id(classify_rule_count()));
}

static void test_is_temporary(void **state)
{
    (void)state;
    for (int o = 0; o < CL__COUNT; o++) {
        bool want = o == CL_RATE_LIMITED || o == CL_GREYLISTED || o == CL_TEMPORARY ||
                    o == CL_TOO_MANY_RCPTS;
        assert_int_equal(classify_is_temporary((cl_outcome_t)o), want);
    }
    assert_false(classify_is_temporary(CL__COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_replies),
        cmocka_unit_test(test_no_mailbox_verdict_before_rcpt),
        cmocka_unit_test(test_enh_class_mismatch),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_huge_text),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_421_any_stage),
        cmocka_unit_test(test_rule_order),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_is_temporary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
