/* test_util.c - the log line formatter (text, JSON, journal priorities) and the
 * journal stream check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"

static void test_text_and_journal(void **state)
{
    (void)state;
    char out[256];
    size_t n = mp_log_format_line(out, sizeof out, MP_LOG_WARN, "disk full", MP_LOG_TEXT,
                                  false, 0);
    assert_string_equal(out, "mailprobe: warning: disk full\n");
    assert_int_equal(n, strlen(out));
    mp_log_format_line(out, sizeof out, MP_LOG_DEBUG, "x", MP_LOG_TEXT, true, 0);
    assert_string_equal(out, "<7>mailprobe: debug: x\n");
    mp_log_format_line(out, sizeof out, MP_LOG_ERROR, "x", MP_LOG_TEXT, true, 0);
    assert_string_equal(out, "<3>mailprobe: error: x\n");
    mp_log_format_line(out, sizeof out, MP_LOG_INFO, "x", MP_LOG_TEXT, true, 0);
    assert_string_equal(out, "<6>mailprobe: info: x\n");
}

static void test_json(void **state)
{
    (void)state;
    char out[512];
    mp_log_format_line(out, sizeof out, MP_LOG_INFO, "say \"hi\"\\\n\tok", MP_LOG_JSON, false,
                       86400);
    assert_string_equal(out, "{\"time\":\"1970-01-02T00:00:00Z\",\"level\":\"info\","
                             "\"msg\":\"say \\\"hi\\\"\\\\\\u000a\\u0009ok\"}\n");
    /* UTF-8 kept, a broken byte replaced, line separators escaped */
    mp_log_format_line(out, sizeof out, MP_LOG_WARN, "caf\xc3\xa9 \xff \xc0\xaf \xe2\x80\xa8",
                       MP_LOG_JSON, true, 0);
    assert_string_equal(out, "<4>{\"time\":\"1970-01-01T00:00:00Z\",\"level\":\"warning\","
                             "\"msg\":\"caf\xc3\xa9 \\ufffd \\ufffd\\ufffd \\u2028\"}\n");
}

static void test_truncation(void **state)
{
    (void)state;
    char msg[300], out[64];
    memset(msg, 'a', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (int f = 0; f < 2; f++) {
        size_t n = mp_log_format_line(out, sizeof out, MP_LOG_INFO, msg, (mp_log_format_t)f,
                                      false, 0);
        assert_true(n < sizeof out);
        assert_int_equal(strlen(out), n);
        assert_int_equal(out[n - 1], '\n');
    }
}

static void test_journal_stream(void **state)
{
    (void)state;
    struct stat sb;
    assert_int_equal(fstat(2, &sb), 0);
    char v[64];
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    assert_true(mp_log_stderr_is_journal());
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino + 1);
    setenv("JOURNAL_STREAM", v, 1);
    assert_false(mp_log_stderr_is_journal());
    setenv("JOURNAL_STREAM", "garbage", 1);
    assert_false(mp_log_stderr_is_journal());
    unsetenv("JOURNAL_STREAM");
    assert_false(mp_log_stderr_is_journal());
}

/* mp_array_grow: doubles from `first`, keeps the array on failure, refuses overflow */
static void test_array_grow(void **state)
{
    (void)state;
    int *v = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 100; i++) {
        int *nv = mp_array_grow(v, &cap, n, sizeof *v, 4);
        assert_non_null(nv);
        v = nv;
        v[n++] = i;
    }
    assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    size_t same = cap;
    assert_ptr_equal(mp_array_grow(v, &cap, 5, sizeof *v, 4), v); /* room left: no move */
    assert_int_equal(cap, same);
    size_t huge = SIZE_MAX / 2 + 1;
    assert_null(mp_array_grow(v, &huge, huge, sizeof *v, 4)); /* doubling overflows */
    assert_int_equal(huge, SIZE_MAX / 2 + 1);
    free(v);
}

/* mp_json_escape_ls: U+2028/U+2029 escaped, the rest untouched, NULL passes through */
static void test_json_escape_ls(void **state)
{
    (void)state;
    char *s = mp_json_escape_ls(strdup("{\"a\":\"x\xe2\x80\xa8y\xe2\x80\xa9\xc3\xa9\"}"));
    assert_string_equal(s, "{\"a\":\"x\\u2028y\\u2029\xc3\xa9\"}");
    free(s);
    char *plain = strdup("{\"b\":1}");
    assert_ptr_equal(mp_json_escape_ls(plain), plain);
    free(plain);
    assert_null(mp_json_escape_ls(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_journal),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_journal_stream),
        cmocka_unit_test(test_array_grow),
        cmocka_unit_test(test_json_escape_ls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
