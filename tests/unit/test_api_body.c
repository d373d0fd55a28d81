/*
 * test_api_body.c - unit tests for src/api/body.c: what the HTTP API reads from a request
 * (check parameters from a query string or a JSON body, job options, jobs sent as JSON,
 * the webhook URL) and the token file.
 *
 * Every refusal is checked for its message too: the message goes back to the caller in a
 * 400 answer, so it must name what was wrong (the parameter, the element, the line).
 * No files: job output goes to open_memstream(), write errors to /dev/full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"

static char err[512];

/* The last error contains s. */
#define assert_err_has(s)                                                                  \
    do {                                                                                   \
        if (!strstr(err, (s)))                                                             \
            fail_msg("error \"%s\" does not mention \"%s\"", err, (s));                    \
    } while (0)

static int query(const char *q, api_check_req_t *r)
{
    err[0] = '\0';
    int rc = api_check_from_query(q, r, err, sizeof err);
    if (rc)
        assert_true(err[0] != '\0');
    return rc;
}

static int json(const char *body, api_check_req_t *r)
{
    err[0] = '\0';
    int rc = api_check_from_json(body, strlen(body), r, err, sizeof err);
    if (rc)
        assert_true(err[0] != '\0');
    return rc;
}

/* ---- GET /v1/check?... ---- */

static void test_query_basic(void **state)
{
    (void)state;
    api_check_req_t r;
    assert_int_equal(query("email=a@example.com", &r), 0);
    assert_string_equal(r.email, "a@example.com");
    assert_int_equal(r.wait_ms, -1); /* server default */
    assert_false(r.transcript);
    assert_false(r.fresh);

    assert_int_equal(query("email=a@x&timeout=10&transcript=1&fresh=true", &r), 0);
    assert_string_equal(r.email, "a@x");
    assert_int_equal(r.wait_ms, 10000);
    assert_true(r.transcript);
    assert_true(r.fresh);

    /* empty segments and a parameter without '=' */
    assert_int_equal(query("&&email=a@x&&transcript&", &r), 0);
    assert_string_equal(r.email, "a@x");
    assert_true(r.transcript);
}

static void test_query_decoding(void **state)
{
    (void)state;
    api_check_req_t r;
    /* '+' stays a '+' (RFC 3986, not form encoding): addresses use it */
    assert_int_equal(query("email=user+tag@x", &r), 0);
    assert_string_equal(r.email, "user+tag@x");
    assert_int_equal(query("email=user%2Btag%40example.com", &r), 0);
    assert_string_equal(r.email, "user+tag@example.com");
    assert_int_equal(query("email=user%2btag%40Example.COM", &r), 0); /* lower-case hex */
    assert_string_equal(r.email, "user+tag@Example.COM");
    assert_int_equal(query("email=%22a%20b%22@x", &r), 0);
    assert_string_equal(r.email, "\"a b\"@x");
    assert_int_equal(query("email=%C3%BC@x", &r), 0); /* UTF-8 passes through */
    assert_string_equal(r.email, "\xc3\xbc@x");
    assert_int_equal(query("email=a%26b%3Dc@x", &r), 0); /* escaped & and = are data */
    assert_string_equal(r.email, "a&b=c@x");
    /* the name is decoded too */
    assert_int_equal(query("%65mail=a@x", &r), 0);
    assert_string_equal(r.email, "a@x");
}

static void test_query_bad_escapes(void **state)
{
    (void)state;
    api_check_req_t r;
    static const char *const bad[] = {
        "email=a%00b@x", /* a NUL would cut the address short */
        "email=a%zzb@x", "email=a%4@x", "email=a@x%", "email=a@x%4", "email=a%g0@x",
        "email=a%0g@x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(query(bad[i], &r), -1);
        assert_err_has("'email'");
    }
    assert_int_equal(query("em%00ail=a@x", &r), -1);
    assert_err_has("parameter name");
    assert_int_equal(query("em%zail=a@x", &r), -1);
    assert_err_has("parameter name");
    /* a name longer than any we know */
    char q[200];
    snprintf(q, sizeof q, "%0100d=1&email=a@x", 0);
    assert_int_equal(query(q, &r), -1);
    assert_err_has("parameter name");
}

static void test_query_unknown_and_missing(void **state)
{
    (void)state;
    api_check_req_t r;
    assert_int_equal(query("email=a@x&verbose=1", &r), -1);
    assert_err_has("'verbose'");
    assert_err_has("email, timeout, transcript, fresh"); /* and says what is known */
    assert_int_equal(query("Email=a@x", &r), -1); /* names are case-sensitive */
    assert_err_has("'Email'");
    assert_int_equal(query("timeout=5", &r), -1);
    assert_err_has("email parameter is missing");
    assert_int_equal(query("email=", &r), -1);
    assert_err_has("email");
    assert_int_equal(query("email", &r), -1);
    assert_err_has("email");
    assert_int_equal(query("", &r), -1);
    assert_err_has("email");
    assert_int_equal(query(NULL, &r), -1);
    assert_err_has("email");
}

static void test_query_timeout(void **state)
{
    (void)state;
    api_check_req_t r;
    static const struct {
        const char *v;
        int64_t ms;
    } ok[] = {
        {"0", 0},       {"300", 300000}, {"1.5", 1500},  {"0.001", 1},
        {"299.9999", 300000}, {"10", 10000},
    };
    char q[128];
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        snprintf(q, sizeof q, "email=a@x&timeout=%s", ok[i].v);
        assert_int_equal(query(q, &r), 0);
        assert_int_equal(r.wait_ms, ok[i].ms);
    }
    static const char *const bad[] = {"300.5", "-1", "abc", "", "5x", "nan", "inf",
                                      "-inf", "1e9", "300.001", "1,5", "2.5e1",
                                      "0x10", "%201", "1.", ".5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(q, sizeof q, "email=a@x&timeout=%s", bad[i]);
        assert_int_equal(query(q, &r), -1);
        assert_err_has("timeout");
        assert_err_has("300");
    }
    assert_int_equal(query("email=a@x&timeout", &r), -1); /* no value at all */
    assert_err_has("timeout");
    /* a parameter given twice is refused, not "last one wins" */
    assert_int_equal(query("email=a@x&timeout=1&timeout=2", &r), -1);
    assert_err_has("twice");
    assert_int_equal(query("email=a@x&email=b@y", &r), -1);
    assert_err_has("email");
}

static void test_query_booleans(void **state)
{
    (void)state;
    api_check_req_t r;
    static const char *const yes[] = {"1", "true", "yes", ""};
    static const char *const no[] = {"0", "false", "no"};
    char q[128];
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        snprintf(q, sizeof q, "email=a@x&transcript=%s&fresh=%s", yes[i], yes[i]);
        assert_int_equal(query(q, &r), 0);
        assert_true(r.transcript);
        assert_true(r.fresh);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        snprintf(q, sizeof q, "email=a@x&transcript=%s&fresh=%s", no[i], no[i]);
        assert_int_equal(query(q, &r), 0);
        assert_false(r.transcript);
        assert_false(r.fresh);
    }
    assert_int_equal(query("email=a@x&fresh", &r), 0); /* "?fresh" alone means yes */
    assert_true(r.fresh);
    assert_false(r.transcript);

    assert_int_equal(query("email=a@x&transcript=maybe", &r), -1);
    assert_err_has("transcript");
    assert_int_equal(query("email=a@x&fresh=2", &r), -1);
    assert_err_has("fresh");
}

static void test_query_long_email(void **state)
{
    (void)state;
    api_check_req_t r;
    size_t qmax = 6 + API_URL_MAX + 16;
    char *q = malloc(qmax);
    assert_non_null(q);

    /* API_EMAIL_MAX - 1 bytes fit */
    memcpy(q, "email=", 6);
    memset(q + 6, 'a', API_EMAIL_MAX - 1);
    q[6 + API_EMAIL_MAX - 1] = '\0';
    assert_int_equal(query(q, &r), 0);
    assert_int_equal(strlen(r.email), API_EMAIL_MAX - 1);

    /* one more does not */
    memset(q + 6, 'a', API_EMAIL_MAX);
    q[6 + API_EMAIL_MAX] = '\0';
    assert_int_equal(query(q, &r), -1);
    assert_err_has("email is longer than 1023");

    /* longer than the decoding buffer: still an error that names the parameter */
    memset(q + 6, 'a', API_URL_MAX + 8);
    q[6 + API_URL_MAX + 8] = '\0';
    assert_int_equal(query(q, &r), -1);
    assert_err_has("'email'");
    assert_err_has("too long");
    free(q);
}

static void test_query_small_err_buffer(void **state)
{
    (void)state;
    api_check_req_t r;
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(api_check_from_query("nope=1", &r, small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1); /* truncated, still terminated */
}

/* ---- POST /v1/check {...} ---- */

static void test_json_basic(void **state)
{
    (void)state;
    api_check_req_t r;
    assert_int_equal(json("{\"email\": \"a@example.com\"}", &r), 0);
    assert_string_equal(r.email, "a@example.com");
    assert_int_equal(r.wait_ms, -1);
    assert_false(r.transcript);
    assert_false(r.fresh);

    assert_int_equal(
        json("{\"email\":\"user+tag@x\",\"timeout\":1.5,\"transcript\":true,\"fresh\":false}",
             &r),
        0);
    assert_string_equal(r.email, "user+tag@x");
    assert_int_equal(r.wait_ms, 1500);
    assert_true(r.transcript);
    assert_false(r.fresh);

    assert_int_equal(json("{\"fresh\":true,\"email\":\"\\u00fc@x\"}", &r), 0);
    assert_string_equal(r.email, "\xc3\xbc@x");
    assert_true(r.fresh);

    /* len is respected: what follows the body is not read */
    static const char body[] = "{\"email\":\"a@x\"}GARBAGE";
    assert_int_equal(api_check_from_json(body, 15, &r, err, sizeof err), 0);
    assert_string_equal(r.email, "a@x");
}

static void test_json_timeout(void **state)
{
    (void)state;
    api_check_req_t r;
    assert_int_equal(json("{\"email\":\"a@x\",\"timeout\":0}", &r), 0);
    assert_int_equal(r.wait_ms, 0);
    assert_int_equal(json("{\"email\":\"a@x\",\"timeout\":300}", &r), 0);
    assert_int_equal(r.wait_ms, 300000);
    assert_int_equal(json("{\"email\":\"a@x\",\"timeout\":300.0}", &r), 0);
    assert_int_equal(r.wait_ms, 300000);
    assert_int_equal(json("{\"email\":\"a@x\",\"timeout\":0.25}", &r), 0);
    assert_int_equal(r.wait_ms, 250);

    static const char *const bad[] = {
        "{\"email\":\"a@x\",\"timeout\":300.5}", "{\"email\":\"a@x\",\"timeout\":-1}",
        "{\"email\":\"a@x\",\"timeout\":\"5\"}", "{\"email\":\"a@x\",\"timeout\":null}",
        "{\"email\":\"a@x\",\"timeout\":true}",  "{\"email\":\"a@x\",\"timeout\":301}",
        "{\"email\":\"a@x\",\"timeout\":[5]}",   "{\"email\":\"a@x\",\"timeout\":1e300}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(json(bad[i], &r), -1);
        assert_err_has("\"timeout\"");
    }
    /* too big for jansson's integers or doubles: refused as not JSON */
    assert_int_equal(json("{\"email\":\"a@x\",\"timeout\":99999999999999999999}", &r), -1);
    assert_int_equal(json("{\"email\":\"a@x\",\"timeout\":1e999}", &r), -1);
}

static void test_json_bad(void **state)
{
    (void)state;
    api_check_req_t r;
    assert_int_equal(json("[\"a@x\"]", &r), -1);
    assert_err_has("JSON object");
    assert_err_has("\"email\"");
    /* a bare string, number or null: jansson is called without JSON_DECODE_ANY, so these
       are refused as "not JSON: '[' or '{' expected" before the object check */
    static const char *const scalar[] = {"\"a@x\"", "5", "null"};
    for (size_t i = 0; i < sizeof scalar / sizeof *scalar; i++)
        assert_int_equal(json(scalar[i], &r), -1);

    assert_int_equal(json("{\"email\":", &r), -1);
    assert_err_has("not JSON");
    assert_int_equal(json("", &r), -1);
    assert_err_has("not JSON");
    assert_int_equal(api_check_from_json(NULL, 0, &r, err, sizeof err), -1);
    assert_err_has("not JSON");
    assert_int_equal(json("{\"email\":\"a@x\"} {}", &r), -1); /* two documents */
    assert_err_has("not JSON");

    static const char *const not_string[] = {"{\"email\":5}", "{\"email\":null}",
                                             "{\"email\":[\"a@x\"]}", "{}",
                                             "{\"fresh\":true}"};
    for (size_t i = 0; i < sizeof not_string / sizeof *not_string; i++) {
        assert_int_equal(json(not_string[i], &r), -1);
        assert_err_has("\"email\" must be a string");
    }

    assert_int_equal(json("{\"email\":\"a@x\",\"verbose\":true}", &r), -1);
    assert_err_has("\"verbose\"");
    assert_err_has("email, timeout, transcript, fresh");

    assert_int_equal(json("{\"email\":\"a@x\",\"email\":\"b@x\"}", &r), -1);
    assert_err_has("duplicate");

    /* a NUL inside the string: never reaches the address (jansson refuses \u0000) */
    assert_int_equal(json("{\"email\":\"a\\u0000b@x\"}", &r), -1);
    assert_int_equal(r.email[0], '\0');
    /* and a raw NUL byte in the body */
    static const char raw_nul[] = "{\"email\":\"a\0b@x\"}";
    assert_int_equal(api_check_from_json(raw_nul, sizeof raw_nul - 1, &r, err, sizeof err), -1);

    assert_int_equal(json("{\"email\":\"a@x\",\"transcript\":\"yes\"}", &r), -1);
    assert_err_has("\"transcript\"");
    assert_int_equal(json("{\"email\":\"a@x\",\"fresh\":1}", &r), -1);
    assert_err_has("\"fresh\"");
}

static void test_json_long_email(void **state)
{
    (void)state;
    api_check_req_t r;
    size_t n = API_EMAIL_MAX + 32;
    char *body = malloc(n);
    assert_non_null(body);
    snprintf(body, n, "{\"email\":\"%0*d\"}", (int)API_EMAIL_MAX - 1, 0);
    assert_int_equal(json(body, &r), 0);
    assert_int_equal(strlen(r.email), API_EMAIL_MAX - 1);
    snprintf(body, n, "{\"email\":\"%0*d\"}", (int)API_EMAIL_MAX, 0);
    assert_int_equal(json(body, &r), -1);
    assert_err_has("longer than 1023");
    free(body);
}

/* ---- webhook URLs ---- */

static int hook(const char *url)
{
    err[0] = '\0';
    int rc = api_webhook_check(url, err, sizeof err);
    if (rc)
        assert_true(err[0] != '\0');
    return rc;
}

static void test_results_query(void **state)
{
    (void)state;
    api_results_req_t r;
    assert_int_equal(api_results_from_query(NULL, &r, err, sizeof err), 0);
    assert_false(r.ndjson);
    assert_string_equal(r.verdict, "");
    assert_int_equal(api_results_from_query("format=ndjson&verdict=risky", &r, err, sizeof err),
                     0);
    assert_true(r.ndjson);
    assert_string_equal(r.verdict, "risky");
    assert_int_equal(api_results_from_query("verdict=un%6Bnown", &r, err, sizeof err), 0);
    assert_string_equal(r.verdict, "unknown");
    assert_int_equal(api_results_from_query("format=xml", &r, err, sizeof err), -1);
    assert_err_has("format");
    assert_int_equal(api_results_from_query("verdict=good", &r, err, sizeof err), -1);
    assert_err_has("verdict");
    assert_int_equal(api_results_from_query("format", &r, err, sizeof err), -1);
    assert_err_has("format");
    assert_int_equal(api_results_from_query("page=2", &r, err, sizeof err), -1);
    assert_err_has("'page'");
    assert_int_equal(api_results_from_query("format=csv&format=ndjson", &r, err, sizeof err),
                     -1);
    assert_err_has("twice");
}

static void test_webhook(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "http://h",          "http://hooks.example.com/done", "http://h:80/x?y=1#z",
        "http://h:1",        "http://h:65535",                "http://127.0.0.1:8080/cb",
        "http://h?x",        "http://h#frag",                 "http://[::1]:8080/cb",
        "http://[::1]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (hook(ok[i]) != 0)
            fail_msg("%s refused: %s", ok[i], err);

    static const char *const scheme[] = {"https://h/x", "ftp://h", "h/x", "", "http:/h",
                                         "http//h"};
    for (size_t i = 0; i < sizeof scheme / sizeof *scheme; i++) {
        assert_int_equal(hook(scheme[i]), -1);
        assert_err_has("http://");
    }
    static const char *const port[] = {"http://h:0",      "http://h:65536/", "http://h:/x",
                                       "http://h:",       "http://h:abc/",   "http://h:8o",
                                       "http://h:123456789", "http://h:-1",  "http://h:+80",
                                       "http://h:80:81"};
    for (size_t i = 0; i < sizeof port / sizeof *port; i++) {
        if (hook(port[i]) != -1)
            fail_msg("%s accepted", port[i]);
        assert_err_has("port");
    }
    static const char *const nohost[] = {"http://", "http:///x", "http://:80/x", "http://?x"};
    for (size_t i = 0; i < sizeof nohost / sizeof *nohost; i++) {
        assert_int_equal(hook(nohost[i]), -1);
        assert_err_has("no host");
    }
    static const char *const ctl[] = {"http://h/a b", "http://h/\t", "http://h/\x7f",
                                      "http://h/\r\nX-Injected: 1"};
    for (size_t i = 0; i < sizeof ctl / sizeof *ctl; i++) {
        assert_int_equal(hook(ctl[i]), -1);
        assert_err_has("control character");
    }
    static const char *const v6[] = {"http://[::1", "http://[]/", "http://[::1]x/"};
    for (size_t i = 0; i < sizeof v6 / sizeof *v6; i++) {
        assert_int_equal(hook(v6[i]), -1);
        assert_err_has("IPv6");
    }
    assert_int_equal(hook("http://[::1]:0/"), -1);
    assert_err_has("port");
}

/* ---- job options (query) ---- */

static void test_job_opts_query(void **state)
{
    (void)state;
    api_job_opts_t o;
    memset(&o, 'x', sizeof o);
    assert_int_equal(api_job_opts_from_query("", &o, err, sizeof err), 0);
    assert_string_equal(o.column, "");
    assert_string_equal(o.webhook, "");
    assert_int_equal(api_job_opts_from_query(NULL, &o, err, sizeof err), 0);

    assert_int_equal(api_job_opts_from_query(
                         "column=e%2Dmail&webhook=http%3A%2F%2Fh.example%3A8080%2Fdone%3Fa%3D1",
                         &o, err, sizeof err),
                     0);
    assert_string_equal(o.column, "e-mail");
    assert_string_equal(o.webhook, "http://h.example:8080/done?a=1");
    assert_int_equal(api_job_opts_from_query("column=3", &o, err, sizeof err), 0);
    assert_string_equal(o.column, "3");
    assert_string_equal(o.webhook, ""); /* reset on every call */

    assert_int_equal(api_job_opts_from_query("column=", &o, err, sizeof err), -1);
    assert_err_has("column");
    assert_int_equal(api_job_opts_from_query("webhook=https://h/x", &o, err, sizeof err), -1);
    assert_err_has("http://");
    assert_int_equal(api_job_opts_from_query("webhook=http://h:99999/x", &o, err, sizeof err),
                     -1);
    assert_err_has("port");
    assert_int_equal(api_job_opts_from_query("webhook=http://h/a%20b", &o, err, sizeof err), -1);
    assert_err_has("space");
    assert_int_equal(api_job_opts_from_query("format=csv", &o, err, sizeof err), -1);
    assert_err_has("'format'");
    assert_err_has("column, webhook");
    assert_int_equal(api_job_opts_from_query("column=a%00b", &o, err, sizeof err), -1);
    assert_err_has("'column'");

    /* a column name longer than API_COLUMN_MAX - 1 */
    char q[API_COLUMN_MAX + 16];
    memcpy(q, "column=", 7);
    memset(q + 7, 'c', API_COLUMN_MAX);
    q[7 + API_COLUMN_MAX] = '\0';
    assert_int_equal(api_job_opts_from_query(q, &o, err, sizeof err), -1);
    assert_err_has("column");
    q[7 + API_COLUMN_MAX - 1] = '\0';
    assert_int_equal(api_job_opts_from_query(q, &o, err, sizeof err), 0);
    assert_int_equal(strlen(o.column), API_COLUMN_MAX - 1);
}

/* ---- jobs sent as JSON ---- */

typedef struct {
    char *buf;
    size_t len;
    FILE *f;
    api_job_opts_t opts;
    size_t rows;
    int rc;
} job_out_t;

/* Run api_job_json_to_ndjson on body into memory; out->buf holds what was written. */
static void job(const char *body, job_out_t *out)
{
    memset(out, 0, sizeof *out);
    out->f = open_memstream(&out->buf, &out->len);
    assert_non_null(out->f);
    err[0] = '\0';
    out->rows = 12345;
    out->rc = api_job_json_to_ndjson(body, strlen(body), out->f, &out->opts, &out->rows, err,
                                     sizeof err);
    assert_int_equal(fclose(out->f), 0);
    if (out->rc)
        assert_true(err[0] != '\0');
}

static void job_free(job_out_t *out)
{
    free(out->buf);
    out->buf = NULL;
}

static void test_jobs_json_array(void **state)
{
    (void)state;
    job_out_t o;
    job("[\"a@x\", \"user+tag@y\"]", &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.rows, 2);
    assert_string_equal(o.buf, "{\"email\":\"a@x\"}\n{\"email\":\"user+tag@y\"}\n");
    assert_string_equal(o.opts.column, "");
    assert_string_equal(o.opts.webhook, "");
    job_free(&o);

    /* objects are kept with their other keys, in order */
    job("[{\"email\":\"a@x\",\"id\":7,\"tags\":[\"x\"]}]", &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.rows, 1);
    assert_string_equal(o.buf, "{\"email\":\"a@x\",\"id\":7,\"tags\":[\"x\"]}\n");
    job_free(&o);

    /* mixed; non-ASCII goes out escaped (one line per row whatever the bytes) */
    job("[\"a@x\", {\"email\":\"b@x\",\"crm\":\"42\"}, \"\\u00fc@x\", \"l\\nf@x\"]", &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.rows, 4);
    assert_string_equal(o.buf, "{\"email\":\"a@x\"}\n"
                               "{\"email\":\"b@x\",\"crm\":\"42\"}\n"
                               "{\"email\":\"\\u00FC@x\"}\n"
                               "{\"email\":\"l\\nf@x\"}\n");
    job_free(&o);
}

static void test_jobs_json_bad(void **state)
{
    (void)state;
    job_out_t o;
    job("[]", &o);
    assert_int_equal(o.rc, -1);
    assert_int_equal(o.rows, 0);
    assert_err_has("no addresses");
    job_free(&o);

    job("{\"emails\":[]}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("no addresses");
    job_free(&o);

    job("[\"a@x\", \"b@x\", 5]", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("element 3");
    assert_int_equal(o.rows, 2); /* what came before was written */
    job_free(&o);

    static const char *const elems[] = {"[null]", "[true]", "[[\"a@x\"]]", "[1.5]"};
    for (size_t i = 0; i < sizeof elems / sizeof *elems; i++) {
        job(elems[i], &o);
        assert_int_equal(o.rc, -1);
        assert_err_has("element 1");
        assert_int_equal(o.rows, 0);
        job_free(&o);
    }

    static const char *const shape[] = {"{\"emails\":\"a@x\"}", "{\"column\":\"email\"}", "{}",
                                        "{\"emails\":{\"a\":1}}", "{\"emails\":null}"};
    for (size_t i = 0; i < sizeof shape / sizeof *shape; i++) {
        job(shape[i], &o);
        assert_int_equal(o.rc, -1);
        assert_err_has("JSON array");
        job_free(&o);
    }
    /* a bare string, number or null: refused by jansson itself ('[' or '{' expected) */
    static const char *const scalar[] = {"\"a@x\"", "5", "null"};
    for (size_t i = 0; i < sizeof scalar / sizeof *scalar; i++) {
        job(scalar[i], &o);
        assert_int_equal(o.rc, -1);
        assert_int_equal(o.rows, 0);
        job_free(&o);
    }

    job("[\"a@x\"", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("not JSON");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"emails\":[\"b@x\"]}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("duplicate");
    job_free(&o);

    job("[\"a\\u0000b@x\"]", &o); /* no NUL reaches the job file */
    assert_int_equal(o.rc, -1);
    assert_int_equal(o.len, 0);
    job_free(&o);
}

static void test_jobs_json_object_form(void **state)
{
    (void)state;
    job_out_t o;
    job("{\"emails\":[\"a@x\",{\"email\":\"b@x\",\"n\":1}],\"column\":\"mail\","
        "\"webhook\":\"http://hooks.example:8080/done\"}",
        &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.rows, 2);
    assert_string_equal(o.buf, "{\"email\":\"a@x\"}\n{\"email\":\"b@x\",\"n\":1}\n");
    assert_string_equal(o.opts.column, "mail");
    assert_string_equal(o.opts.webhook, "http://hooks.example:8080/done");
    job_free(&o);

    /* options may come before the list */
    job("{\"webhook\":\"http://h/\",\"emails\":[\"a@x\"]}", &o);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.opts.webhook, "http://h/");
    assert_string_equal(o.opts.column, "");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"webhook\":\"https://h/x\"}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("http://");
    assert_int_equal(o.rows, 0);
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"webhook\":\"http://h:0/x\"}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("port");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"webhook\":\"http://h:70000\"}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("port");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"column\":2}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("\"column\" must be a string");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"column\":\"\"}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("column");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"priority\":\"high\"}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("'priority'");
    job_free(&o);

    job("{\"emails\":[\"a@x\"],\"priority\":1}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("priority");
    job_free(&o);

    job("{\"emails\":[\"a@x\", 7]}", &o);
    assert_int_equal(o.rc, -1);
    assert_err_has("element 2");
    job_free(&o);
}

static void test_jobs_json_write_error(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        skip();
        return;
    }
    api_job_opts_t opts;
    memset(&opts, 0, sizeof opts);
    size_t rows;
    static const char body[] = "[\"a@x\",\"b@x\"]";
    assert_int_equal(
        api_job_json_to_ndjson(body, sizeof body - 1, f, &opts, &rows, err, sizeof err), -1);
    assert_err_has("cannot write");
    fclose(f);
}

/* ---- token file ---- */

static int tokens(const char *text, api_tokens_t *t)
{
    err[0] = '\0';
    int rc = api_tokens_parse(text, strlen(text), t, err, sizeof err);
    if (rc) {
        assert_true(err[0] != '\0');
        assert_null(t->tok); /* nothing left to free */
        assert_int_equal(t->n, 0);
    }
    return rc;
}

#define TOK_A "abcdefghijklmnop"                     /* exactly API_TOKEN_MIN */
#define TOK_B "0123456789abcdef0123456789ABCDEF-_.~" /* longer */

static void test_tokens_parse(void **state)
{
    (void)state;
    api_tokens_t t;
    assert_int_equal(tokens("# API tokens\n"
                            "\n"
                            "   # indented comment\n" TOK_A "\n"
                            "  \t" TOK_B "  \t\n"
                            "\n",
                            &t),
                     0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.tok[0], TOK_A);
    assert_string_equal(t.tok[1], TOK_B);
    api_tokens_free(&t);
    assert_null(t.tok);
    assert_int_equal(t.n, 0);
    api_tokens_free(&t); /* twice is harmless */

    /* CRLF, no newline at the end */
    assert_int_equal(tokens(TOK_A "\r\n\r\n" TOK_B, &t), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.tok[0], TOK_A);
    assert_string_equal(t.tok[1], TOK_B);
    api_tokens_free(&t);

    /* '#' inside a token is part of it */
    assert_int_equal(tokens("abcdefgh#ijklmnop\n", &t), 0);
    assert_string_equal(t.tok[0], "abcdefgh#ijklmnop");
    api_tokens_free(&t);

    /* API_TOKEN_MAX characters fit */
    char *big = malloc(API_TOKEN_MAX + 3);
    assert_non_null(big);
    memset(big, 'k', API_TOKEN_MAX);
    memcpy(big + API_TOKEN_MAX, "\n", 2);
    assert_int_equal(tokens(big, &t), 0);
    assert_int_equal(strlen(t.tok[0]), API_TOKEN_MAX);
    api_tokens_free(&t);
    /* one more does not */
    memset(big, 'k', API_TOKEN_MAX + 1);
    big[API_TOKEN_MAX + 1] = '\0';
    assert_int_equal(tokens(big, &t), -1);
    assert_err_has("line 1");
    free(big);

    /* text is not NUL-terminated: len counts */
    static const char text[] = TOK_A "\n" TOK_B;
    assert_int_equal(api_tokens_parse(text, strlen(TOK_A), &t, err, sizeof err), 0);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.tok[0], TOK_A);
    api_tokens_free(&t);
}

static void test_tokens_bad(void **state)
{
    (void)state;
    api_tokens_t t;
    assert_int_equal(tokens("# comment\n\nshort-token\n" TOK_A "\n", &t), -1);
    assert_err_has("line 3");
    assert_err_has("16");
    assert_int_equal(tokens(TOK_A "\n" TOK_B "\nabc\n", &t), -1); /* after good ones: freed */
    assert_err_has("line 3");
    assert_int_equal(tokens(TOK_A "\r\n\r\nabc\r\n", &t), -1);
    assert_err_has("line 3");

    assert_int_equal(tokens(TOK_A "\nabcdefgh ijklmnop\n", &t), -1);
    assert_err_has("line 2");
    assert_err_has("spaces");
    assert_int_equal(tokens("abcdefgh\tijklmnop\n", &t), -1);
    assert_err_has("line 1");
    assert_int_equal(tokens("abcdefgh\x01ijklmnop\n", &t), -1);
    assert_err_has("line 1");
    assert_int_equal(tokens("abcdefgh\x7fijklmnop\n", &t), -1);
    assert_err_has("line 1");
    assert_int_equal(tokens("abcdefgh\rijklmnop\n", &t), -1); /* a lone CR inside */
    assert_err_has("line 1");
    static const char nul[] = "abcdefgh\0ijklmnop\n";
    assert_int_equal(api_tokens_parse(nul, sizeof nul - 1, &t, err, sizeof err), -1);
    assert_err_has("line 1");
    assert_null(t.tok);

    static const char *const empty[] = {"", "\n\n", "# only a comment\n", "  \r\n\t\n"};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        assert_int_equal(tokens(empty[i], &t), -1);
        assert_err_has("no token");
    }
    assert_int_equal(api_tokens_parse(NULL, 0, &t, err, sizeof err), -1);
    assert_err_has("no token");
}

static void test_tokens_find(void **state)
{
    (void)state;
    api_tokens_t t;
    assert_int_equal(tokens(TOK_A "\n" TOK_B "\n" TOK_A "x\n", &t), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(api_tokens_find(&t, TOK_A), 0);
    assert_int_equal(api_tokens_find(&t, TOK_B), 1);
    assert_int_equal(api_tokens_find(&t, TOK_A "x"), 2);
    /* a prefix or an extension of a token is not that token */
    assert_int_equal(api_tokens_find(&t, "abcdefghijklmno"), -1);
    assert_int_equal(api_tokens_find(&t, TOK_B "z"), -1);
    assert_int_equal(api_tokens_find(&t, "0123456789abcdef"), -1);
    assert_int_equal(api_tokens_find(&t, TOK_A "xx"), -1);
    assert_int_equal(api_tokens_find(&t, ""), -1);
    assert_int_equal(api_tokens_find(&t, "ABCDEFGHIJKLMNOP"), -1); /* case counts */
    assert_int_equal(api_tokens_find(&t, TOK_A " "), -1);
    api_tokens_free(&t);

    /* the first of two equal lines */
    assert_int_equal(tokens(TOK_B "\n" TOK_A "\n" TOK_A "\n", &t), 0);
    assert_int_equal(api_tokens_find(&t, TOK_A), 1);
    api_tokens_free(&t);

    /* an empty set finds nothing */
    api_tokens_t none = {NULL, 0};
    assert_int_equal(api_tokens_find(&none, TOK_A), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_basic),
        cmocka_unit_test(test_query_decoding),
        cmocka_unit_test(test_query_bad_escapes),
        cmocka_unit_test(test_query_unknown_and_missing),
        cmocka_unit_test(test_query_timeout),
        cmocka_unit_test(test_query_booleans),
        cmocka_unit_test(test_query_long_email),
        cmocka_unit_test(test_query_small_err_buffer),
        cmocka_unit_test(test_json_basic),
        cmocka_unit_test(test_json_timeout),
        cmocka_unit_test(test_json_bad),
        cmocka_unit_test(test_json_long_email),
        cmocka_unit_test(test_results_query),
        cmocka_unit_test(test_webhook),
        cmocka_unit_test(test_job_opts_query),
        cmocka_unit_test(test_jobs_json_array),
        cmocka_unit_test(test_jobs_json_bad),
        cmocka_unit_test(test_jobs_json_object_form),
        cmocka_unit_test(test_jobs_json_write_error),
        cmocka_unit_test(test_tokens_parse),
        cmocka_unit_test(test_tokens_bad),
        cmocka_unit_test(test_tokens_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
