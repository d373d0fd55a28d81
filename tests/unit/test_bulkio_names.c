/*
 * test_bulkio_names.c - the name columns of bulk lists (src/bulkio/names.c): detected
 * by header name like the email column, named with --name-column (FULL or FIRST,LAST, by
 * name or number), NDJSON keys, and the clear errors of a bad --name-column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bulkio/bulkio.h"

/* Open text as a list with an optional --name-column; returns the reader or NULL. */
static bulkio_reader_t *open_text(const char *text, const char *name_column, char *err)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    bulkio_ropts_t o = {0};
    o.name_column = name_column;
    bulkio_reader_t *r = NULL;
    mp_status_t st = bulkio_reader_open_file(f, true, "list.csv", &o, &r, err, BULKIO_ERR_MAX);
    return st == MP_OK ? r : NULL;
}

static void row_names(bulkio_reader_t *r, char *first, char *last, char *full)
{
    const bulkio_row_t *row;
    assert_int_equal(bulkio_reader_next(r, &row), MP_OK);
    assert_non_null(row);
    bulkio_row_names(&bulkio_reader_schema(r)->names, row, first, last, full, 128);
}

static void test_detect_csv(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX], f[128], l[128], n[128];
    bulkio_reader_t *r = open_text("Email,First Name,Last_Name,Company\n"
                                   "a@example.com, José ,García,ACME\n"
                                   "b@example.com,,,ACME\n",
                                   NULL, err);
    assert_non_null(r);
    const bulkio_names_t *nc = &bulkio_reader_schema(r)->names;
    assert_true(nc->found);
    assert_int_equal(nc->first, 1);
    assert_int_equal(nc->last, 2);
    assert_int_equal(nc->full, -1);
    row_names(r, f, l, n);
    assert_string_equal(f, "José");
    assert_string_equal(l, "García");
    assert_string_equal(n, "");
    row_names(r, f, l, n);
    assert_string_equal(f, "");
    bulkio_reader_free(r);

    /* a full-name column; "surname" and "given name" spellings */
    r = open_text("name;mail\nJan van der Berg;jan@example.nl\n", NULL, err);
    assert_non_null(r);
    assert_int_equal(bulkio_reader_schema(r)->names.full, 0);
    row_names(r, f, l, n);
    assert_string_equal(n, "Jan van der Berg");
    bulkio_reader_free(r);
    r = open_text("given-name,surname,email\nAnna,Schmidt,anna@example.de\n", NULL, err);
    assert_non_null(r);
    assert_int_equal(bulkio_reader_schema(r)->names.first, 0);
    assert_int_equal(bulkio_reader_schema(r)->names.last, 1);
    bulkio_reader_free(r);

    /* no name columns: not an error */
    r = open_text("email,company\na@example.com,ACME\n", NULL, err);
    assert_non_null(r);
    assert_false(bulkio_reader_schema(r)->names.found);
    row_names(r, f, l, n);
    assert_string_equal(f, "");
    bulkio_reader_free(r);
}

static void test_name_column_option(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX], f[128], l[128], n[128];
    const char *list = "email,Vorname,Nachname,Kontakt\na@example.de,Jürgen,Müller,J. Müller\n";
    bulkio_reader_t *r = open_text(list, "Kontakt", err);
    assert_non_null(r);
    assert_int_equal(bulkio_reader_schema(r)->names.full, 3);
    assert_int_equal(bulkio_reader_schema(r)->names.first, -1);
    bulkio_reader_free(r);
    r = open_text(list, "vorname, 3", err);
    assert_non_null(r);
    assert_int_equal(bulkio_reader_schema(r)->names.first, 1);
    assert_int_equal(bulkio_reader_schema(r)->names.last, 2);
    row_names(r, f, l, n);
    assert_string_equal(f, "Jürgen");
    assert_string_equal(l, "Müller");
    bulkio_reader_free(r);
    /* bad specs: one clear message, no reader */
    assert_null(open_text(list, "Spitzname", err));
    assert_string_equal(err, "--name-column Spitzname: no such column");
    assert_null(open_text(list, "9", err));
    assert_non_null(strstr(err, "no such column"));
    assert_null(open_text(list, "a,b,c", err));
    assert_non_null(strstr(err, "FIRST,LAST"));
    assert_null(open_text(list, "vorname,", err));
    assert_non_null(strstr(err, "FIRST,LAST"));
    /* no header: numbers only */
    assert_null(open_text("a@example.com,Ann Lee\n", "name", err));
    assert_non_null(strstr(err, "no header"));
    r = open_text("a@example.com,Ann Lee\n", "2", err);
    assert_non_null(r);
    row_names(r, f, l, n);
    assert_string_equal(n, "Ann Lee");
    bulkio_reader_free(r);
}

static void test_ndjson(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX], f[128], l[128], n[128];
    bulkio_reader_t *r = open_text("{\"email\":\"a@example.com\",\"firstName\":\"Иван\","
                                   "\"lastName\":\"Петров\"}\n"
                                   "{\"email\":\"b@example.com\",\"name\":\"Li Wei\"}\n"
                                   "{\"email\":\"c@example.com\",\"first_name\":5}\n",
                                   NULL, err);
    assert_non_null(r);
    assert_true(bulkio_reader_schema(r)->names.found);
    row_names(r, f, l, n);
    assert_string_equal(f, "Иван");
    assert_string_equal(l, "Петров");
    row_names(r, f, l, n);
    assert_string_equal(n, "Li Wei");
    assert_string_equal(f, "");
    row_names(r, f, l, n); /* not text: no name */
    assert_string_equal(f, "");
    bulkio_reader_free(r);
    r = open_text("{\"email\":\"a@example.com\",\"who\":\"Ann Lee\"}\n", "who", err);
    assert_non_null(r);
    row_names(r, f, l, n);
    assert_string_equal(n, "Ann Lee");
    bulkio_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_csv),
        cmocka_unit_test(test_name_column_option),
        cmocka_unit_test(test_ndjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
