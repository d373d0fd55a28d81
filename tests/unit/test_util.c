/* test_util.c - the log line formatter (text, JSON, journal priorities), the
 * journal stream check, mp_array_grow, mp_json_escape_ls, the intrusive list, FNV-1a
 * and mp_err_set. */
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
#include "util/hash.h"
#include "util/list.h"
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

typedef struct {
    int v;
    mp_list_node_t link;
} item_t;

/* The values of l from head to tail, then from tail to head, as "123|321". */
static void list_order(const mp_list_t *l, char *out, size_t size)
{
    size_t pos = 0;
    for (item_t *it = MP_LIST_ITEM(l->head, item_t, link); it;
         it = MP_LIST_ITEM(it->link.next, item_t, link))
        mp_appendf(out, size, &pos, "%d", it->v);
    mp_appendf(out, size, &pos, "|");
    for (item_t *it = MP_LIST_ITEM(l->tail, item_t, link); it;
         it = MP_LIST_ITEM(it->link.prev, item_t, link))
        mp_appendf(out, size, &pos, "%d", it->v);
}

/* mp_list: both ends, unlinking the head, a middle node and the tail, down to empty */
static void test_list(void **state)
{
    (void)state;
    item_t it[5] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}, {5, {0}}};
    mp_list_t l = {0};
    char s[32];
    assert_null(MP_LIST_ITEM(l.head, item_t, link));
    mp_list_push_tail(&l, &it[1].link);
    mp_list_push_tail(&l, &it[2].link);
    mp_list_push_head(&l, &it[0].link);
    mp_list_push_tail(&l, &it[3].link);
    list_order(&l, s, sizeof s);
    assert_string_equal(s, "1234|4321");
    assert_ptr_equal(MP_LIST_ITEM(l.head, item_t, link), &it[0]);
    mp_list_unlink(&l, &it[1].link); /* middle */
    assert_null(it[1].link.prev);
    assert_null(it[1].link.next);
    list_order(&l, s, sizeof s);
    assert_string_equal(s, "134|431");
    mp_list_unlink(&l, &it[0].link); /* head */
    mp_list_unlink(&l, &it[3].link); /* tail */
    list_order(&l, s, sizeof s);
    assert_string_equal(s, "3|3");
    mp_list_push_head(&l, &it[4].link); /* an unlinked node goes back in */
    mp_list_push_tail(&l, &it[1].link);
    list_order(&l, s, sizeof s);
    assert_string_equal(s, "532|235");
    mp_list_unlink(&l, &it[2].link);
    mp_list_unlink(&l, &it[4].link);
    mp_list_unlink(&l, &it[1].link);
    assert_null(l.head);
    assert_null(l.tail);
}

/* mp_fnv1a: the published FNV-1a 64 test vectors; strings and bytes agree and chain */
static void test_fnv1a(void **state)
{
    (void)state;
    assert_true(mp_fnv1a_str(MP_FNV_BASIS, "") == 0xcbf29ce484222325ull);
    assert_true(mp_fnv1a_str(MP_FNV_BASIS, "a") == 0xaf63dc4c8601ec8cull);
    assert_true(mp_fnv1a_str(MP_FNV_BASIS, "foobar") == 0x85944171f73967e8ull);
    assert_true(mp_fnv1a(MP_FNV_BASIS, "foobar", 6) == 0x85944171f73967e8ull);
    assert_true(mp_fnv1a_str(mp_fnv1a_str(MP_FNV_BASIS, "foo"), "bar") ==
                0x85944171f73967e8ull);
    const unsigned char high[] = {0xc3, 0xa9}; /* bytes above 0x7f are not sign-extended */
    assert_true(mp_fnv1a(MP_FNV_BASIS, high, 2) == mp_fnv1a_str(MP_FNV_BASIS, "\xc3\xa9"));
    assert_true(mp_fnv1a(MP_FNV_BASIS, high, 2) != mp_fnv1a_str(MP_FNV_BASIS, "\xa9\xc3"));
}

/* mp_err_set: formats and truncates; a NULL or empty buffer is left alone */
static void test_err_set(void **state)
{
    (void)state;
    char e[8] = "xxxxxxx";
    mp_err_set(e, sizeof e, "%s: %d", "row", 12345);
    assert_string_equal(e, "row: 12");
    mp_err_set(e, 0, "%s", "untouched");
    assert_string_equal(e, "row: 12");
    mp_err_set(NULL, 100, "%s", "nowhere"); /* must not crash */
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
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_fnv1a),
        cmocka_unit_test(test_err_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
