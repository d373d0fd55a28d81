/* test_verdict.c - reasons, verdicts, score and rendering of results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "verdict/verdict.h"

static vd_result_t *valid_result(const char *email)
{
    vd_result_t *r = vd_result_new(email);
    assert_non_null(r);
    assert_int_equal(addr_parse(email, strlen(email), &r->addr), ADDR_OK);
    return r;
}

static void test_reason_table(void **state)
{
    (void)state;
    /* every reason has a name, a text and one of the four verdicts, names are unique */
    for (int i = 0; i < VR__COUNT; i++) {
        const char *n = vd_reason_name((vd_reason_t)i);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        assert_true(strlen(vd_reason_text((vd_reason_t)i)) > 10);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(n, vd_reason_name((vd_reason_t)k));
    }
    assert_int_equal(vd_reason_verdict(VR_ACCEPTED), VD_DELIVERABLE);
    assert_int_equal(vd_reason_verdict(VR_MAILBOX_ABSENT), VD_UNDELIVERABLE);
    assert_int_equal(vd_reason_verdict(VR_ACCEPT_ALL), VD_RISKY);
    assert_int_equal(vd_reason_verdict(VR_POLICY_BLOCKED), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(VR_DNS_FAILURE), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(VR_GREYLISTED), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(VR_UNROUTABLE_MX), VD_UNDELIVERABLE);
}

static void test_outcome_mapping(void **state)
{
    (void)state;
    assert_int_equal(vd_reason_from_outcome(CL_ACCEPTED), VR_ACCEPTED);
    assert_int_equal(vd_reason_from_outcome(CL_MAILBOX_ABSENT), VR_MAILBOX_ABSENT);
    assert_int_equal(vd_reason_from_outcome(CL_MAILBOX_FULL), VR_MAILBOX_FULL);
    assert_int_equal(vd_reason_from_outcome(CL_ANTI_ENUM), VR_ANTI_ENUMERATION);
    assert_int_equal(vd_reason_from_outcome(CL_RELAY_DENIED), VR_DOMAIN_NOT_SERVED);
    /* a 5xx that says nothing about the mailbox is never undeliverable */
    assert_int_equal(vd_reason_verdict(vd_reason_from_outcome(CL_PERM_OTHER)), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(vd_reason_from_outcome(CL_POLICY_BLOCKED)), VD_UNKNOWN);
    assert_int_equal(vd_reason_verdict(vd_reason_from_outcome(CL_SENDER_REJECTED)), VD_UNKNOWN);
    /* smtp.result never says accepted unless the server accepted */
    for (int o = 0; o < CL__COUNT; o++)
        if (o != CL_ACCEPTED)
            assert_int_not_equal(vd_smtp_result_from_outcome((cl_outcome_t)o), VS_ACCEPTED);
    assert_int_equal(vd_smtp_result_from_outcome(CL_ANTI_ENUM), VS_UNAVAILABLE);
}

static void test_disposable_overrides_but_not_undeliverable(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("a@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    r->intel_done = true;
    r->intel.disposable = true;
    vd_finish(r, NULL);
    assert_int_equal(r->verdict, VD_RISKY);
    assert_int_equal(r->reason, VR_DISPOSABLE);
    vd_result_free(r);

    r = valid_result("a@example.com");
    vd_set(r, VR_MAILBOX_ABSENT, NULL);
    r->intel_done = true;
    r->intel.disposable = true;
    vd_finish(r, NULL);
    assert_int_equal(r->reason, VR_MAILBOX_ABSENT);
    assert_int_equal(r->verdict, VD_UNDELIVERABLE);
    vd_result_free(r);
}

static void test_role_risky_only_when_asked(void **state)
{
    (void)state;
    vd_opts_t o = {.role_risky = false};
    vd_result_t *r = valid_result("info@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    r->intel_done = true;
    r->intel.role = true;
    vd_finish(r, &o);
    assert_int_equal(r->reason, VR_ACCEPTED);
    int flagged_score = r->score;
    vd_result_free(r);

    o.role_risky = true;
    r = valid_result("info@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    r->intel_done = true;
    r->intel.role = true;
    vd_finish(r, &o);
    assert_int_equal(r->reason, VR_ROLE_ACCOUNT);
    assert_int_equal(r->verdict, VD_RISKY);
    assert_true(r->score <= flagged_score);
    vd_result_free(r);
}

static void test_score_monotone(void **state)
{
    (void)state;
    /* deliverable scores above every risky, risky above undeliverable; signals only lower */
    int min_deliv = 100, max_risky = 0, min_risky = 100, max_undeliv = 0;
    for (int i = 0; i < VR__COUNT; i++) {
        vd_result_t *r = valid_result("a@example.com");
        vd_set(r, (vd_reason_t)i, NULL);
        vd_finish(r, NULL);
        int s = r->score;
        assert_true(s >= 0 && s <= 100);
        switch (r->verdict) {
        case VD_DELIVERABLE: min_deliv = s < min_deliv ? s : min_deliv; break;
        case VD_RISKY:
            max_risky = s > max_risky ? s : max_risky;
            min_risky = s < min_risky ? s : min_risky;
            break;
        case VD_UNDELIVERABLE: max_undeliv = s > max_undeliv ? s : max_undeliv; break;
        case VD_UNKNOWN: break;
        }
        r->intel_done = true;
        r->intel.gibberish = true;
        r->intel.has_suggestion = true;
        assert_true(vd_score(r) <= s);
        vd_result_free(r);
    }
    assert_true(min_deliv > max_risky);
    assert_true(min_risky > max_undeliv);
}

static void test_json_fields(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("Alice@Example.COM");
    r->dns_checked = true;
    r->domain_exists = true;
    r->mx = calloc(1, sizeof *r->mx);
    r->nmx = 1;
    strcpy(r->mx[0].host, "mx.example.com");
    r->mx[0].pref = 10;
    strcpy(r->mx[0].ip[0], "192.0.2.1");
    r->mx[0].nip = 1;
    cl_result_t cl = {CL_MAILBOX_ABSENT, "enh:5.1.1", "no such user"};
    vd_set_reply(r, CL_STAGE_RCPT, 550, "5.1.1", "User unknown \xff\xfe", &cl);
    r->smtp_result = VS_REJECTED;
    vd_set(r, VR_MAILBOX_ABSENT, NULL);
    vd_add_line(r, "192.0.2.1", '>', 5, "RCPT TO:<Alice@example.com>");
    vd_finish(r, NULL);
    char *s = vd_to_json(r, true);
    assert_non_null(s);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "undeliverable");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "mailbox_absent");
    assert_string_equal(json_string_value(json_object_get(j, "normalized")), "Alice@example.com");
    json_t *smtp = json_object_get(j, "smtp");
    assert_int_equal(json_integer_value(json_object_get(smtp, "code")), 550);
    assert_string_equal(json_string_value(json_object_get(smtp, "enhanced")), "5.1.1");
    assert_string_equal(json_string_value(json_object_get(smtp, "result")), "rejected");
    assert_string_equal(json_string_value(json_object_get(smtp, "stage")), "rcpt");
    assert_true(json_is_null(json_object_get(smtp, "catch_all")));
    /* invalid UTF-8 from the wire is made printable, never dropped or fatal */
    assert_non_null(strstr(json_string_value(json_object_get(smtp, "message")), "User unknown"));
    json_t *mx = json_array_get(json_object_get(json_object_get(j, "domain"), "mx"), 0);
    assert_string_equal(json_string_value(json_object_get(mx, "host")), "mx.example.com");
    assert_int_equal(json_integer_value(json_object_get(mx, "pref")), 10);
    json_t *tr = json_object_get(j, "transcript");
    assert_int_equal(json_array_size(tr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tr, 0), "dir")), ">");
    json_decref(j);
    free(s);

    s = vd_to_json(r, false);
    j = json_loads(s, 0, &err);
    assert_null(json_object_get(j, "transcript"));
    json_decref(j);
    free(s);
    vd_result_free(r);
}

static void test_json_invalid_syntax(void **state)
{
    (void)state;
    vd_result_t *r = vd_result_new("not an address");
    addr_parse(r->email, strlen(r->email), &r->addr);
    vd_set(r, VR_INVALID_SYNTAX, "%s", addr_err_text(r->addr.err));
    vd_finish(r, NULL);
    char *s = vd_to_json(r, false);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    assert_non_null(j);
    json_t *syn = json_object_get(j, "syntax");
    assert_false(json_boolean_value(json_object_get(syn, "valid")));
    assert_string_equal(json_string_value(json_object_get(syn, "rule")), addr_err_rule(r->addr.err));
    assert_true(json_is_null(json_object_get(j, "normalized")));
    assert_int_equal(json_integer_value(json_object_get(j, "score")), 0);
    json_decref(j);
    free(s);
    vd_result_free(r);
}

static void test_human(void **state)
{
    (void)state;
    vd_result_t *r = valid_result("bob@example.com");
    vd_set(r, VR_ACCEPTED, NULL);
    strcpy(r->mx_host, "mx.example.com");
    strcpy(r->mx_ip, "192.0.2.1");
    cl_result_t cl = {CL_ACCEPTED, "code:250", "accepted"};
    vd_set_reply(r, CL_STAGE_RCPT, 250, "2.1.5", "Ok", &cl);
    vd_finish(r, NULL);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vd_print_human(r, f, false);
    fclose(f);
    assert_non_null(strstr(buf, "bob@example.com: deliverable (accepted)"));
    assert_non_null(strstr(buf, "MX: mx.example.com [192.0.2.1]"));
    assert_non_null(strstr(buf, "250 2.1.5 Ok"));
    assert_null(strchr(buf, '\033')); /* no colour when not asked */
    free(buf);
    vd_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_table),
        cmocka_unit_test(test_outcome_mapping),
        cmocka_unit_test(test_disposable_overrides_but_not_undeliverable),
        cmocka_unit_test(test_role_risky_only_when_asked),
        cmocka_unit_test(test_score_monotone),
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_invalid_syntax),
        cmocka_unit_test(test_human),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
