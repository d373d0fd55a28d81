/*
 * test_bulkio.c - unit tests for src/bulkio: CSV/NDJSON reading (sniffing, column
 * detection, malformed rows, checkpoints) and the atomic output writers.
 *
 * Files live in a fresh mkdtemp() directory removed at the end. Set MP_BULKIO_BENCH=1
 * to also time reading a generated 1,000,000-row CSV (printed, never asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <csv.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkio/bulkio.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static void put_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return s;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Number of files in tmpdir whose name contains s. */
static int count_files(const char *dir, const char *s)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, s))
            n++;
    if (d)
        closedir(d);
    return n;
}

static bulkio_reader_t *open_str(const char *data, size_t n, const bulkio_ropts_t *o)
{
    put_file(tpath("in"), data, n);
    bulkio_reader_t *r = NULL;
    char err[BULKIO_ERR_MAX];
    mp_status_t st = bulkio_reader_open(tpath("in"), o, &r, err, sizeof err);
    if (st)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(st, MP_OK);
    return r;
}

#define OPEN(s, o) open_str((s), sizeof(s) - 1, (o))

static const bulkio_row_t *next(bulkio_reader_t *r)
{
    const bulkio_row_t *row = NULL;
    assert_int_equal(bulkio_reader_next(r, &row), MP_OK);
    return row;
}

static void expect_row(bulkio_reader_t *r, uint64_t no, const char *addr, bulkio_row_err_t e)
{
    const bulkio_row_t *row = next(r);
    assert_non_null(row);
    assert_int_equal(row->row_no, no);
    assert_string_equal(row->address, addr);
    assert_int_equal(row->err, e);
}

static void expect_end(bulkio_reader_t *r)
{
    assert_null(next(r));
    assert_null(next(r)); /* stays at the end */
}

/* ---- reader ----------------------------------------------------------------------- */

static void test_delimiters(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        char delim;
        size_t col;
    } cases[] = {
        {"name,email\nAl,a@x.com\nBo,b@x.com\n", ',', 1},
        {"name;email;city\nSmith, J;j@x.com;Paris, FR\nB;b@x.com;Rome\n", ';', 1},
        {"email\tname\na@x.com\tAl Smith\nb@x.com\tBo\n", '\t', 0},
        {"id|name|mail\n1|Al|a@x.com\n2|Bo|b@x.com\n", '|', 2},
        {"\"x,y\";e\n\"1,2\";a@x.com\n\"3,4\";b@x.com\n", ';', 1}, /* commas only in quotes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bulkio_reader_t *r = open_str(cases[i].in, strlen(cases[i].in), NULL);
        const bulkio_schema_t *s = bulkio_reader_schema(r);
        assert_int_equal(s->format, BULKIO_FMT_CSV);
        assert_int_equal(s->delim, cases[i].delim);
        assert_true(s->has_header);
        assert_int_equal(s->column, cases[i].col);
        expect_row(r, 1, i == 1 ? "j@x.com" : "a@x.com", BULKIO_ROW_OK);
        expect_row(r, 2, "b@x.com", BULKIO_ROW_OK);
        expect_end(r);
        bulkio_reader_free(r);
    }
}

static void test_quoted_fields(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("name,email,note\n"
                              "\"Smith, J \"\"JJ\"\"\nsecond line\",\" j@x.com \",\"a\r\nb\"\n"
                              "Bo \"the\" B,b@x.com,\n",
                              NULL);
    const bulkio_row_t *row = next(r);
    assert_non_null(row);
    assert_int_equal(row->nfields, 3);
    assert_string_equal(row->fields[0], "Smith, J \"JJ\"\nsecond line");
    assert_string_equal(row->fields[1], " j@x.com ");
    assert_string_equal(row->address, "j@x.com");
    assert_string_equal(row->fields[2], "a\r\nb");
    assert_int_equal(row->line_no, 2);
    assert_int_equal(row->err, BULKIO_ROW_OK);
    row = next(r);
    assert_non_null(row);
    assert_int_equal(row->line_no, 5); /* the quoted CRLF counted a line too */
    assert_string_equal(row->fields[0], "Bo \"the\" B"); /* literal quote mid-field: accepted */
    assert_int_equal(row->nfields, 3);
    assert_string_equal(row->fields[2], "");
    assert_int_equal(row->err, BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);
}

static void test_header_sniff(void **state)
{
    (void)state;
    /* no header: every row holds an address */
    bulkio_reader_t *r = OPEN("a@x.com\nb@x.com\n", NULL);
    assert_false(bulkio_reader_schema(r)->has_header);
    assert_int_equal(bulkio_reader_schema(r)->ncols, 1);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    expect_row(r, 2, "b@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);

    /* header by '@': the first row has none, later ones do */
    r = OPEN("id,contact\n1,a@x.com\n2,b@x.com\n", NULL);
    assert_true(bulkio_reader_schema(r)->has_header);
    assert_string_equal(bulkio_reader_schema(r)->header[1], "contact");
    assert_int_equal(bulkio_reader_schema(r)->column, 1);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);

    /* header by name, case-insensitive; "E-Mail" beats "Address" */
    r = OPEN("Address,E-Mail\n1 Main St,a@x.com\n", NULL);
    assert_true(bulkio_reader_schema(r)->has_header);
    assert_int_equal(bulkio_reader_schema(r)->column, 1);
    bulkio_reader_free(r);

    /* no header, two columns, the '@' column is detected */
    r = OPEN("Al,a@x.com\nBo,b@x.com\nCy,nope\n", NULL);
    assert_false(bulkio_reader_schema(r)->has_header);
    assert_int_equal(bulkio_reader_schema(r)->column, 1);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    expect_row(r, 2, "b@x.com", BULKIO_ROW_OK);
    expect_row(r, 3, "nope", BULKIO_ROW_OK);
    bulkio_reader_free(r);

    /* a header alone: no rows; one address without a newline: one row */
    r = OPEN("Email\r\n", NULL);
    assert_true(bulkio_reader_schema(r)->has_header);
    expect_end(r);
    bulkio_reader_free(r);
    r = OPEN("a@x.com", NULL);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);

    /* forced: header=no keeps the first line as a row */
    bulkio_ropts_t o = {.header = BULKIO_HEADER_NO, .column = "1"};
    r = OPEN("email\na@x.com\n", &o);
    expect_row(r, 1, "email", BULKIO_ROW_OK);
    expect_row(r, 2, "a@x.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);
}

static void test_column_choice(void **state)
{
    (void)state;
    bulkio_ropts_t o = {.column = "Work Email"};
    bulkio_reader_t *r = OPEN("email,work email\na@home.com,a@work.com\n", &o);
    assert_int_equal(bulkio_reader_schema(r)->column, 1);
    expect_row(r, 1, "a@work.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);

    o.column = "1";
    r = OPEN("email,work email\na@home.com,a@work.com\n", &o);
    expect_row(r, 1, "a@home.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);

    /* a name given, no header by the usual signs, but the first row holds the name */
    o.column = "Contact";
    r = OPEN("who,contact\nAl,a@x.com\n", &o);
    assert_true(bulkio_reader_schema(r)->has_header);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);

    /* a wide file: the named column past the 256 columns whose '@' are counted */
    char wide[4096];
    size_t wp = 0;
    for (int i = 0; i < 299; i++)
        wp += (size_t)snprintf(wide + wp, sizeof wide - wp, "c%d,", i);
    wp += (size_t)snprintf(wide + wp, sizeof wide - wp, "email\n");
    for (int i = 0; i < 299; i++)
        wide[wp++] = ',';
    wp += (size_t)snprintf(wide + wp, sizeof wide - wp, "a@x.com\n");
    r = open_str(wide, wp, NULL);
    assert_int_equal(bulkio_reader_schema(r)->column, 299);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);

    /* "address" that is a street address: the '@' column wins */
    r = OPEN("address,contact\n1 Main St,a@x.com\n2 Elm St,b@x.com\n", NULL);
    assert_int_equal(bulkio_reader_schema(r)->column, 1);
    bulkio_reader_free(r);
}

static void expect_open_error(const char *data, const bulkio_ropts_t *o, mp_status_t want,
                              const char *msg_part)
{
    put_file(tpath("in"), data, strlen(data));
    bulkio_reader_t *r = NULL;
    char err[BULKIO_ERR_MAX];
    assert_int_equal(bulkio_reader_open(tpath("in"), o, &r, err, sizeof err), want);
    assert_null(r);
    if (!strstr(err, msg_part))
        fail_msg("error \"%s\" lacks \"%s\"", err, msg_part);
}

static void test_missing_column(void **state)
{
    (void)state;
    bulkio_ropts_t o = {.column = "mail_addr"};
    expect_open_error("name,email\nAl,a@x.com\n", &o, MP_ERR_ARG, "mail_addr");
    expect_open_error("name,email\nAl,a@x.com\n", &o, MP_ERR_ARG, "\"email\"");
    o.column = "3";
    expect_open_error("name,email\nAl,a@x.com\n", &o, MP_ERR_ARG, "only 2 columns");
    expect_open_error("name,city\nAl,Paris\nBo,Rome\n", NULL, MP_ERR_ARG, "--column");
    o.column = "mail";
    expect_open_error("{\"email\":\"a@x.com\"}\n", &o, MP_ERR_ARG, "no such key");
    expect_open_error("{\"name\":\"Al\"}\n", NULL, MP_ERR_ARG, "email key");
    expect_open_error("\xFF\xFE" "e\0m\0", NULL, MP_ERR_ARG, "UTF-16");

    bulkio_reader_t *r = NULL;
    char err[BULKIO_ERR_MAX];
    assert_int_equal(bulkio_reader_open(tpath("does-not-exist"), NULL, &r, err, sizeof err),
                     MP_ERR_IO);
    assert_non_null(strstr(err, "does-not-exist"));
}

static void test_bom_crlf(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("\xEF\xBB\xBF" "email,name\r\na@x.com,Al\r\nb@x.com,Bo\nc@x.com,Cy\rd@x.com,Di", NULL);
    const bulkio_schema_t *s = bulkio_reader_schema(r);
    assert_true(s->bom);
    assert_true(s->has_header);
    assert_string_equal(s->header[0], "email");
    assert_int_equal(s->data_offset, 3 + 12);
    const bulkio_row_t *row = next(r);
    assert_string_equal(row->address, "a@x.com");
    assert_string_equal(row->fields[1], "Al");
    assert_int_equal(row->offset, 15);
    assert_int_equal(row->next_offset, 15 + 12);
    expect_row(r, 2, "b@x.com", BULKIO_ROW_OK);
    expect_row(r, 3, "c@x.com", BULKIO_ROW_OK);
    row = next(r);
    assert_string_equal(row->address, "d@x.com");
    assert_string_equal(row->fields[1], "Di"); /* last line without terminator */
    expect_end(r);
    bulkio_reader_free(r);
}

static void test_bad_quoting(void **state)
{
    (void)state;
    /* text after a closing quote: that line alone is bad */
    bulkio_reader_t *r = OPEN("name,email\nAl,a@x.com\n\"Bo\"x,b@x.com\nCy,c@x.com\n", NULL);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    const bulkio_row_t *row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_BAD_QUOTING);
    assert_int_equal(row->nfields, 2);
    assert_string_equal(row->fields[0], "\"Bo\"x"); /* best effort: split, quotes kept */
    assert_string_equal(row->address, "b@x.com");
    expect_row(r, 3, "c@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);

    /* a stray opening quote that would swallow the rest: recovered at the next quote */
    r = OPEN("name,email\n\"Al,a@x.com\nBo,b@x.com\n\"Cy\",c@x.com\nDi,d@x.com\n", NULL);
    row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_BAD_QUOTING);
    assert_int_equal(row->line_no, 2);
    expect_row(r, 2, "b@x.com", BULKIO_ROW_OK);
    expect_row(r, 3, "c@x.com", BULKIO_ROW_OK);
    expect_row(r, 4, "d@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);

    /* ... and at the end of the input */
    r = OPEN("name,email\nAl,a@x.com\n\"Bo,b@x.com\nCy,c@x.com\n", NULL);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_BAD_QUOTING);
    expect_row(r, 3, "c@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);

    /* unterminated quote on the last line */
    r = OPEN("email\na@x.com\n\"b@x.com", NULL);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_BAD_QUOTING);
    expect_end(r);
    bulkio_reader_free(r);
}

static void test_empty_rows(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("name,email\n\nAl,a@x.com\n\r\n,\nBo,\n  ,  \nCy\n\n\n", NULL);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    const bulkio_row_t *row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_NO_ADDRESS);
    assert_int_equal(row->line_no, 5);
    expect_row(r, 3, "", BULKIO_ROW_NO_ADDRESS);
    expect_row(r, 4, "", BULKIO_ROW_NO_ADDRESS);
    row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_NO_ADDRESS); /* missing column */
    assert_int_equal(row->nfields, 1);
    expect_end(r);
    bulkio_reader_free(r);

    /* an empty input is not an error: no rows */
    r = OPEN("", NULL);
    expect_end(r);
    bulkio_reader_free(r);
}

static void test_not_utf8(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("name,email\nJos\xE9,jose@x.com\nAl,al\xE9@x.com\nBo,b@x.com\n", NULL);
    const bulkio_row_t *row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_OK); /* Latin-1 in another column: kept as bytes */
    assert_string_equal(row->fields[0], "Jos\xE9");
    expect_row(r, 2, "al\xE9@x.com", BULKIO_ROW_NOT_UTF8);
    expect_row(r, 3, "b@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);

    /* overlong, surrogate, NUL */
    r = OPEN("email\na\xC0\xAF@x.com\n\xED\xA0\x80@x.com\na\0b@x.com\nj\xC3\xBC@x.com\n", NULL);
    expect_row(r, 1, "a\xC0\xAF@x.com", BULKIO_ROW_NOT_UTF8);
    expect_row(r, 2, "\xED\xA0\x80@x.com", BULKIO_ROW_NOT_UTF8);
    assert_int_equal(next(r)->err, BULKIO_ROW_NOT_UTF8);
    expect_row(r, 4, "j\xC3\xBC@x.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);
}

static void test_huge_row(void **state)
{
    (void)state;
    /* a small row_max: a long row in the middle, unquoted and quoted */
    size_t n = 5000;
    char *big = malloc(3 * n + 200);
    size_t p = 0;
    p += (size_t)snprintf(big + p, 100, "name,email\nAl,a@x.com\n");
    memset(big + p, 'x', n);
    p += n;
    p += (size_t)snprintf(big + p, 100, ",x@x.com\nBo,b@x.com\n\"");
    memset(big + p, 'y', n);
    p += n;
    p += (size_t)snprintf(big + p, 100, "\",y@x.com\nCy,c@x.com\n");
    bulkio_ropts_t o = {.row_max = 1024};
    bulkio_reader_t *r = open_str(big, p, &o);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    const bulkio_row_t *row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_TOO_LONG);
    assert_null(row->raw);
    assert_int_equal(row->nfields, 0);
    expect_row(r, 3, "b@x.com", BULKIO_ROW_OK);
    assert_int_equal(next(r)->err, BULKIO_ROW_TOO_LONG);
    row = next(r);
    assert_int_equal(row->row_no, 5);
    assert_string_equal(row->address, "c@x.com");
    assert_int_equal(row->line_no, 6);
    expect_end(r);
    bulkio_reader_free(r);
    free(big);

    /* the default 1 MiB limit with a 3 MiB line: memory stays bounded, stream goes on */
    n = 3u << 20;
    big = malloc(n + 100);
    p = (size_t)snprintf(big, 100, "email\na@x.com\n");
    memset(big + p, 'z', n);
    p += n;
    p += (size_t)snprintf(big + p, 100, "\nb@x.com\n");
    r = open_str(big, p, NULL);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    assert_int_equal(next(r)->err, BULKIO_ROW_TOO_LONG);
    expect_row(r, 3, "b@x.com", BULKIO_ROW_OK);
    expect_end(r);
    bulkio_reader_free(r);
    free(big);
}

static void test_ndjson(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("  {\"name\":\"Al\",\"email\":\" a@x.com \"}\n"
                              "not json\n"
                              "\n"
                              "{\"email\":5}\n"
                              "[1,2]\n"
                              "{\"name\":\"Bo\"}\r\n"
                              "{\"email\":\"b\xFF@x.com\"}\n"
                              "{\"email\":\"c@x.com\"",
                              NULL);
    const bulkio_schema_t *s = bulkio_reader_schema(r);
    assert_int_equal(s->format, BULKIO_FMT_NDJSON);
    assert_string_equal(s->key, "email");
    const bulkio_row_t *row = next(r);
    assert_string_equal(row->address, "a@x.com");
    assert_int_equal(row->err, BULKIO_ROW_OK);
    assert_memory_equal(row->raw, "  {\"name\"", 9);
    expect_row(r, 2, "", BULKIO_ROW_BAD_JSON);
    expect_row(r, 3, "", BULKIO_ROW_NO_ADDRESS);
    expect_row(r, 4, "", BULKIO_ROW_BAD_JSON);
    row = next(r);
    assert_int_equal(row->err, BULKIO_ROW_NO_ADDRESS);
    assert_int_equal(row->raw_len, strlen("{\"name\":\"Bo\"}")); /* CR stripped */
    expect_row(r, 6, "", BULKIO_ROW_NOT_UTF8);
    expect_row(r, 7, "", BULKIO_ROW_BAD_JSON);
    expect_end(r);
    bulkio_reader_free(r);

    bulkio_ropts_t o = {.column = "work"};
    r = OPEN("{\"email\":\"a@home.com\",\"work\":\"a@work.com\"}\n", &o);
    expect_row(r, 1, "a@work.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);
}

static void test_seek(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("email\na@x.com\n\"b@x.com\"\nc@x.com\nd@x.com\n", NULL);
    uint64_t off3 = 0, next2 = 0;
    const bulkio_row_t *row;
    while ((row = next(r)) != NULL) {
        if (row->row_no == 2)
            next2 = row->next_offset;
        if (row->row_no == 3)
            off3 = row->offset;
    }
    assert_int_equal(off3, next2);
    assert_int_equal(bulkio_reader_seek(r, 3, off3), MP_OK);
    expect_row(r, 3, "c@x.com", BULKIO_ROW_OK);
    expect_row(r, 4, "d@x.com", BULKIO_ROW_OK);
    expect_end(r);
    assert_int_equal(bulkio_reader_seek(r, 1, bulkio_reader_schema(r)->data_offset), MP_OK);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    assert_int_equal(bulkio_reader_seek(r, 0, 0), MP_ERR_ARG);
    bulkio_reader_free(r);
}

/* ---- writer ----------------------------------------------------------------------- */

static const char *RES_OK =
    "{\"email\":\"a@x.com\",\"verdict\":\"deliverable\",\"reason\":\"accepted\",\"score\":95,"
    "\"flags\":{\"disposable\":false,\"free\":true,\"role\":false,\"gibberish\":false},"
    "\"suggestion\":null,\"smtp\":{\"code\":250,\"enhanced\":\"2.1.5\",\"message\":\"OK, \\\"fine\\\"\","
    "\"catch_all\":false,\"mx_host\":\"mx.x.com\"}}";
static const char *RES_BAD =
    "{\"verdict\":\"undeliverable\",\"reason\":\"mailbox_absent\",\"score\":2,"
    "\"flags\":{\"disposable\":false,\"free\":false,\"role\":true,\"gibberish\":false},"
    "\"suggestion\":\"b@gmail.com\",\"smtp\":{\"code\":550,\"enhanced\":\"5.1.1\","
    "\"message\":\"no such user\\nhere\",\"catch_all\":null,\"mx_host\":\"mx.y.com\"}}";

typedef struct {
    size_t nrows, nf[16];
    char *f[16][40];
} parsed_t;

static void p_field(void *s, size_t n, void *arg)
{
    parsed_t *p = arg;
    if (p->nrows < 16 && p->nf[p->nrows] < 40)
        p->f[p->nrows][p->nf[p->nrows]++] = strndup(s ? s : "", s ? n : 0);
}

static void p_row(int c, void *arg)
{
    (void)c;
    ((parsed_t *)arg)->nrows++;
}

static void parse_csv_file(const char *path, char delim, parsed_t *p)
{
    size_t n;
    char *s = slurp(path, &n);
    assert_non_null(s);
    struct csv_parser cp;
    memset(p, 0, sizeof *p);
    csv_init(&cp, CSV_STRICT | CSV_APPEND_NULL);
    csv_set_delim(&cp, (unsigned char)delim);
    size_t used = csv_parse(&cp, s, n, p_field, p_row, p);
    if (used != n)
        fail_msg("%s: libcsv stops at byte %zu: %.40s", path, used, s + used);
    csv_fini(&cp, p_field, p_row, p);
    csv_free(&cp);
    free(s);
}

static void parsed_free(parsed_t *p)
{
    for (size_t i = 0; i < 16; i++)
        for (size_t j = 0; j < p->nf[i]; j++)
            free(p->f[i][j]);
}

/* Read every row of the input and write it with the result chosen by row number. */
static void copy_through(bulkio_reader_t *r, bulkio_writer_t *w)
{
    const bulkio_row_t *row;
    while ((row = next(r)) != NULL) {
        const char *res = row->err ? NULL : (row->row_no % 2 ? RES_OK : RES_BAD);
        assert_int_equal(bulkio_writer_put(w, row, res, NULL), MP_OK);
    }
}

static void test_writer_roundtrip(void **state)
{
    (void)state;
    bulkio_reader_t *r = OPEN("name;email;note\n"
                              "\"Smith; J \"\"JJ\"\"\";a@x.com;\"two\nlines\"\n"
                              "Bo;b@x.com;;extra1;extra2\n"
                              "Cy;\n"
                              "\"bad\"x;c@x.com;\n",
                              NULL);
    bulkio_wopts_t wo = {.path = tpath("out.csv")};
    bulkio_writer_t *w = NULL;
    char err[BULKIO_ERR_MAX];
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    copy_through(r, w);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);

    parsed_t p;
    parse_csv_file(tpath("out.csv"), ';', &p);
    assert_int_equal(p.nrows, 5);
    assert_int_equal(p.nf[0], 3 + 16);
    assert_string_equal(p.f[0][0], "name");
    assert_string_equal(p.f[0][3], "verdict");
    assert_string_equal(p.f[0][16], "catch_all_assessment");
    assert_string_equal(p.f[0][17], "catch_all_probability");
    assert_string_equal(p.f[0][18], "error");
    /* row 1: input kept exactly, result columns */
    assert_string_equal(p.f[1][0], "Smith; J \"JJ\"");
    assert_string_equal(p.f[1][2], "two\nlines");
    assert_string_equal(p.f[1][3], "deliverable");
    assert_string_equal(p.f[1][4], "accepted");
    assert_string_equal(p.f[1][5], "95");
    assert_string_equal(p.f[1][7], "true"); /* free */
    assert_string_equal(p.f[1][10], "");    /* suggestion null */
    assert_string_equal(p.f[1][11], "mx.x.com");
    assert_string_equal(p.f[1][12], "250");
    assert_string_equal(p.f[1][13], "2.1.5");
    assert_string_equal(p.f[1][14], "OK, \"fine\"");
    assert_string_equal(p.f[1][15], "false");
    assert_string_equal(p.f[1][16], ""); /* no catch-all assessment */
    assert_string_equal(p.f[1][18], "");
    /* row 2: surplus fields after ours */
    assert_int_equal(p.nf[2], 3 + 16 + 2);
    assert_string_equal(p.f[2][3], "undeliverable");
    assert_string_equal(p.f[2][10], "b@gmail.com");
    assert_string_equal(p.f[2][14], "no such user\nhere");
    assert_string_equal(p.f[2][15], "");
    assert_string_equal(p.f[2][19], "extra1");
    assert_string_equal(p.f[2][20], "extra2");
    /* row 3: short row padded, no address */
    assert_int_equal(p.nf[3], 19);
    assert_string_equal(p.f[3][3], "");
    assert_string_equal(p.f[3][18], "no_address");
    /* row 4: bad quoting, the raw text kept in its column */
    assert_string_equal(p.f[4][0], "\"bad\"x");
    assert_string_equal(p.f[4][18], "bad_quoting");
    parsed_free(&p);

    /* and the output reads back through our own reader */
    r = NULL;
    assert_int_equal(bulkio_reader_open(tpath("out.csv"), NULL, &r, err, sizeof err), MP_OK);
    assert_int_equal(bulkio_reader_schema(r)->delim, ';');
    assert_int_equal(bulkio_reader_schema(r)->column, 1);
    expect_row(r, 1, "a@x.com", BULKIO_ROW_OK);
    bulkio_reader_free(r);
}

static void test_writer_ndjson(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX];
    bulkio_writer_t *w = NULL;
    /* NDJSON in, NDJSON out: the object plus "mailprobe" */
    bulkio_reader_t *r = OPEN("{\"email\":\"a@x.com\",\"n\":1.50}\n{}\nbroken\"\n", NULL);
    bulkio_wopts_t wo = {.path = tpath("out.ndjson")};
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    const bulkio_row_t *row;
    while ((row = next(r)) != NULL)
        assert_int_equal(bulkio_writer_put(w, row, row->err ? NULL : RES_OK, NULL), MP_OK);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);
    char *s = slurp(tpath("out.ndjson"), NULL);
    char want[2048];
    snprintf(want, sizeof want,
             "{\"email\":\"a@x.com\",\"n\":1.50,\"mailprobe\":%s}\n"
             "{\"mailprobe\":{\"error\":\"no_address\"}}\n"
             "{\"input\":\"broken\\\"\",\"mailprobe\":{\"error\":\"bad_json\"}}\n",
             RES_OK);
    assert_string_equal(s, want);
    free(s);

    /* CSV in, NDJSON out: columns keyed by header (duplicates suffixed) */
    r = OPEN("email,name,name\na@x.com,Al,\"A\xFF\"\n", NULL);
    wo.format = BULKIO_FMT_NDJSON;
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    row = next(r);
    assert_int_equal(bulkio_writer_put(w, row, RES_OK, "engine_error"), MP_OK);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);
    s = slurp(tpath("out.ndjson"), NULL);
    snprintf(want, sizeof want,
             "{\"email\":\"a@x.com\",\"name\":\"Al\",\"name_2\":\"A\xEF\xBF\xBD\","
             "\"mailprobe\":{\"error\":\"engine_error\",%s}\n",
             RES_OK + 1);
    assert_string_equal(s, want);
    free(s);

    /* NDJSON in, CSV out: email and the raw object */
    r = OPEN("{\"email\":\"a@x.com\",\"x\":\"y,z\"}\n", NULL);
    wo.format = BULKIO_FMT_CSV;
    wo.path = tpath("nd.csv");
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    copy_through(r, w);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);
    parsed_t p;
    parse_csv_file(tpath("nd.csv"), ',', &p);
    assert_int_equal(p.nrows, 2);
    assert_string_equal(p.f[0][0], "email");
    assert_string_equal(p.f[0][1], "input");
    assert_string_equal(p.f[1][0], "a@x.com");
    assert_string_equal(p.f[1][1], "{\"email\":\"a@x.com\",\"x\":\"y,z\"}");
    assert_string_equal(p.f[1][2], "deliverable");
    parsed_free(&p);

    /* CSV in, NDJSON out: U+2028/U+2029 in a field leave escaped */
    r = OPEN("email,note\na@x.com,\"l1\xE2\x80\xA8l2\xE2\x80\xA9\xC3\xA9\"\n", NULL);
    wo.format = BULKIO_FMT_NDJSON;
    wo.path = tpath("ls.ndjson");
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    row = next(r);
    assert_int_equal(bulkio_writer_put(w, row, RES_OK, NULL), MP_OK);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);
    s = slurp(tpath("ls.ndjson"), NULL);
    assert_non_null(strstr(s, "\"note\":\"l1\\u2028l2\\u2029\xC3\xA9\""));
    free(s);
}

static void test_writer_atomic(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX];
    bulkio_writer_t *w = NULL;
    bulkio_reader_t *r = OPEN("email\na@x.com\nb@x.com\n", NULL);
    const char *out = tpath("atomic.csv");
    put_file(out, "OLD\n", 4); /* an earlier output stays until commit */
    bulkio_wopts_t wo = {.path = out};
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    assert_int_equal(count_files(tmpdir, "atomic.csv.tmp-"), 1);
    copy_through(r, w);
    char *s = slurp(out, NULL);
    assert_string_equal(s, "OLD\n");
    free(s);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    assert_int_equal(count_files(tmpdir, "atomic.csv.tmp-"), 0);
    s = slurp(out, NULL);
    assert_non_null(strstr(s, "a@x.com,deliverable"));
    assert_non_null(strstr(s, "b@x.com,undeliverable"));
    free(s);
    bulkio_reader_free(r);

    /* abort: no output, no temporary file */
    r = OPEN("email\na@x.com\n", NULL);
    wo.path = tpath("aborted.csv");
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    copy_through(r, w);
    bulkio_writer_free(w);
    assert_false(exists(tpath("aborted.csv")));
    assert_int_equal(count_files(tmpdir, "aborted.csv.tmp-"), 0);
    bulkio_reader_free(r);
}

static void test_writer_unwritable(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX];
    bulkio_writer_t *w = NULL;
    bulkio_reader_t *r = OPEN("email\na@x.com\n", NULL);
    const bulkio_schema_t *s = bulkio_reader_schema(r);
    bulkio_wopts_t wo = {.path = tpath("no/such/dir/out.csv")};
    assert_int_equal(bulkio_writer_open(&wo, s, &w, err, sizeof err), MP_ERR_IO);
    assert_null(w);
    assert_non_null(strstr(err, "no/such/dir/out.csv"));
    assert_non_null(strstr(err, "No such file"));

    wo.path = tmpdir; /* a directory */
    assert_int_equal(bulkio_writer_open(&wo, s, &w, err, sizeof err), MP_ERR_IO);
    assert_non_null(strstr(err, "directory"));

    put_file(tpath("plainfile"), "x", 1); /* a file as parent directory */
    wo.path = tpath("plainfile/out.csv");
    assert_int_equal(bulkio_writer_open(&wo, s, &w, err, sizeof err), MP_ERR_IO);

    wo.path = NULL;
    wo.split_dir = tpath("plainfile");
    assert_int_equal(bulkio_writer_open(&wo, s, &w, err, sizeof err), MP_ERR_IO);
    assert_non_null(strstr(err, "directory"));

    /* the main output fine, the split directory not: nothing is left behind */
    wo.path = tpath("half.csv");
    wo.split_dir = tpath("plainfile/sub");
    assert_int_equal(bulkio_writer_open(&wo, s, &w, err, sizeof err), MP_ERR_IO);
    assert_int_equal(count_files(tmpdir, "half.csv"), 0);

    wo.path = NULL;
    wo.split_dir = NULL;
    assert_int_equal(bulkio_writer_open(&wo, s, &w, err, sizeof err), MP_ERR_ARG);
    bulkio_reader_free(r);
}

static void test_writer_split(void **state)
{
    (void)state;
    char err[BULKIO_ERR_MAX];
    bulkio_writer_t *w = NULL;
    bulkio_reader_t *r = OPEN("email\ta\na@x.com\t1\nb@x.com\t2\nc@x.com\t3\n\t4\n", NULL);
    bulkio_wopts_t wo = {.path = tpath("all.csv"), .split_dir = tpath("split")};
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    assert_false(exists(tpath("split/deliverable.csv")));
    copy_through(r, w);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);

    parsed_t p;
    parse_csv_file(tpath("split/deliverable.csv"), '\t', &p);
    assert_int_equal(p.nrows, 3); /* header, rows 1 and 3 */
    assert_string_equal(p.f[0][0], "email");
    assert_string_equal(p.f[1][0], "a@x.com");
    assert_string_equal(p.f[2][0], "c@x.com");
    parsed_free(&p);
    parse_csv_file(tpath("split/undeliverable.csv"), '\t', &p);
    assert_int_equal(p.nrows, 2);
    assert_string_equal(p.f[1][0], "b@x.com");
    parsed_free(&p);
    parse_csv_file(tpath("split/unknown.csv"), '\t', &p);
    assert_int_equal(p.nrows, 2); /* the row without a result */
    assert_string_equal(p.f[1][1], "4");
    parsed_free(&p);
    parse_csv_file(tpath("split/risky.csv"), '\t', &p);
    assert_int_equal(p.nrows, 1);
    parsed_free(&p);
    /* without split_assessed (serve's jobs): the four verdict files only, and an assessed
     * risky row stays in risky */
    assert_false(exists(tpath("split/risky_likely_valid.csv")));
    r = OPEN("email\na@x.com\n", NULL);
    bulkio_wopts_t wo2 = {.path = tpath("all2.csv"), .split_dir = tpath("split2")};
    assert_int_equal(bulkio_writer_open(&wo2, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    assert_int_equal(bulkio_writer_put(w, next(r),
                                       "{\"verdict\":\"risky\",\"catch_all_assessment\":"
                                       "{\"assessment\":\"likely_valid\"}}", NULL), MP_OK);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);
    parse_csv_file(tpath("split2/risky.csv"), ',', &p);
    assert_int_equal(p.nrows, 2);
    parsed_free(&p);
    assert_false(exists(tpath("split2/risky_likely_valid.csv")));
    parse_csv_file(tpath("all.csv"), '\t', &p);
    assert_int_equal(p.nrows, 5);
    parsed_free(&p);
    assert_int_equal(count_files(tpath("split"), ".tmp-"), 0);
}

/* The result columns come from a scanner, not a JSON tree: escapes, nesting, junk. */
static void test_writer_result_scan(void **state)
{
    (void)state;
    static const char *full =
        " {\"email\":\"a@x.com\",\"verdict\":\"risky\",\"reason\":\"accept_all\",\"score\":-5,"
        "\"score_factors\":[{\"factor\":\"x\",\"points\":1.5e2},[],{}],"
        "\"domain\":{\"mx\":[{\"host\":\"mx\",\"ips\":[\"1.2.3.4\"]}],\"verdict\":\"nope\"},"
        "\"flags\":{\"disposable\":true,\"free\":false,\"role\":null},"
        "\"suggestion\":\"a@gmail.com\",\"smtp\":{\"result\":\"unavailable\",\"code\":250,"
        "\"message\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\t\",\"catch_all\":true,"
        "\"probe\":{\"code\":550,\"message\":\"no\"},\"mx_host\":\"mx.x.com\"},\"duration_ms\":12,"
        "\"catch_all_assessment\":{\"assessment\":\"likely_invalid\",\"probability\":0.031,"
        "\"evidence\":[{\"factor\":\"gibberish\",\"weight\":-4.16}]}} ";
    /* risky without an assessment, and with likely_valid / no_evidence */
    static const char *risky[] = {
        "{\"verdict\":\"risky\",\"reason\":\"accept_all\"}",
        "{\"verdict\":\"risky\",\"catch_all_assessment\":{\"assessment\":\"likely_valid\","
        "\"probability\":0.9,\"evidence\":[]}}",
        "{\"verdict\":\"risky\",\"catch_all_assessment\":{\"assessment\":\"no_evidence\","
        "\"probability\":0.5,\"evidence\":[]}}",
        "{\"verdict\":\"unknown\",\"catch_all_assessment\":{\"assessment\":\"likely_valid\"}}"};
    static const char *bad[] = {"{\"verdict\":\"deliverable\"", "{\"verdict\":\"a\\ud800\"}",
                                "[1]", "{\"verdict\":\"x\"} trailing", "{\"a\":tru}", ""};
    char err[BULKIO_ERR_MAX];
    bulkio_writer_t *w = NULL;
    bulkio_reader_t *r = OPEN("email\na@x.com\nb@x.com\nc@x.com\nd@x.com\ne@x.com\nf@x.com\ng@x.com\n"
                              "h@x.com\ni@x.com\nj@x.com\nk@x.com\n", NULL);
    bulkio_wopts_t wo = {.path = tpath("scan.csv"), .split_dir = tpath("scansplit"),
                         .split_assessed = true};
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    assert_int_equal(bulkio_writer_put(w, next(r), full, NULL), MP_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bulkio_writer_put(w, next(r), bad[i], NULL), MP_OK);
    for (size_t i = 0; i < sizeof risky / sizeof risky[0]; i++)
        assert_int_equal(bulkio_writer_put(w, next(r), risky[i], NULL), MP_OK);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    bulkio_writer_free(w);
    bulkio_reader_free(r);
    parsed_t p;
    parse_csv_file(tpath("scan.csv"), ',', &p);
    assert_int_equal(p.nrows, 12);
    static const char *want[] = {"a@x.com", "risky", "accept_all", "-5", "true", "false", "", "",
                                 "a@gmail.com", "mx.x.com", "250", "",
                                 "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ / \t", "true",
                                 "likely_invalid", "0.031", ""};
    for (size_t i = 0; i < 17; i++)
        assert_string_equal(p.f[1][i], want[i]);
    for (size_t i = 2; i < 8; i++) {
        assert_string_equal(p.f[i][1], "");
        assert_string_equal(p.f[i][16], "bad_result");
    }
    assert_string_equal(p.f[9][14], "likely_valid");
    assert_string_equal(p.f[9][15], "0.9");
    parsed_free(&p);
    parse_csv_file(tpath("scansplit/risky.csv"), ',', &p);
    assert_int_equal(p.nrows, 3); /* header, no assessment, no_evidence */
    assert_string_equal(p.f[1][0], "h@x.com");
    assert_string_equal(p.f[2][0], "j@x.com");
    parsed_free(&p);
    parse_csv_file(tpath("scansplit/risky_likely_invalid.csv"), ',', &p);
    assert_int_equal(p.nrows, 2);
    assert_string_equal(p.f[1][0], "a@x.com");
    parsed_free(&p);
    parse_csv_file(tpath("scansplit/risky_likely_valid.csv"), ',', &p);
    assert_int_equal(p.nrows, 2);
    assert_string_equal(p.f[1][0], "i@x.com");
    parsed_free(&p);
    parse_csv_file(tpath("scansplit/unknown.csv"), ',', &p);
    assert_int_equal(p.nrows, 8); /* the bad ones and an unknown (never split by assessment) */
    parsed_free(&p);
}

/* ---- optional timing -------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bench_million(void **state)
{
    (void)state;
    if (!getenv("MP_BULKIO_BENCH"))
        skip();
    const char *path = tpath("million.csv");
    FILE *f = fopen(path, "wb");
    fprintf(f, "id,first_name,last_name,email,company\n");
    for (unsigned i = 1; i <= 1000000; i++)
        fprintf(f, "%u,First%u,\"Last, %u\",user%u@domain%u.example,Company %u\n", i, i, i, i,
                i % 20000, i % 977);
    fclose(f);
    struct stat sb;
    stat(path, &sb);
    char err[BULKIO_ERR_MAX];
    bulkio_reader_t *r = NULL;
    double t0 = now_s();
    assert_int_equal(bulkio_reader_open(path, NULL, &r, err, sizeof err), MP_OK);
    const bulkio_row_t *row;
    uint64_t n = 0, mid_off = 0;
    while ((row = next(r)) != NULL) {
        if (row->row_no == 900000)
            mid_off = row->offset;
        n++;
    }
    double t1 = now_s();
    bulkio_wopts_t wo = {.path = tpath("million.out.csv")};
    bulkio_writer_t *w = NULL;
    assert_int_equal(bulkio_reader_seek(r, 1, bulkio_reader_schema(r)->data_offset), MP_OK);
    assert_int_equal(bulkio_writer_open(&wo, bulkio_reader_schema(r), &w, err, sizeof err), MP_OK);
    double t2 = now_s();
    /* a result the size of a real vd_to_json() one (~1.3 KB, nested) */
    char big[2048];
    size_t bp = (size_t)snprintf(big, sizeof big, "{\"domain\":{\"exists\":true,\"mx\":[");
    for (int i = 0; i < 4; i++)
        bp += (size_t)snprintf(big + bp, sizeof big - bp,
                               "%s{\"host\":\"mx%d.mail.example.com\",\"pref\":%d,\"ips\":"
                               "[\"192.0.2.%d\",\"2001:db8::%d\"]}", i ? "," : "", i, i * 10, i, i);
    bp += (size_t)snprintf(big + bp, sizeof big - bp,
                           "],\"null_mx\":false,\"spf\":true,\"dmarc\":true,\"provider\":\"google\"},"
                           "\"score_factors\":[{\"factor\":\"accepted\",\"points\":95},"
                           "{\"factor\":\"free\",\"points\":-2}],\"syntax\":{\"valid\":true,"
                           "\"local\":\"user\",\"domain\":\"mail.example.com\"},%s",
                           RES_OK + 1);
    while ((row = next(r)) != NULL)
        bulkio_writer_put(w, row, big, NULL);
    assert_int_equal(bulkio_writer_commit(w), MP_OK);
    double t3 = now_s();
    bulkio_writer_free(w);
    double t4 = now_s();
    assert_int_equal(bulkio_reader_seek(r, 900000, mid_off), MP_OK);
    uint64_t m = 0;
    while ((row = next(r)) != NULL)
        m++;
    double t5 = now_s();
    bulkio_reader_free(r);
    printf("bench: %llu rows, %.1f MB: read %.3f s (%.2f us/row, %.0f MB/s); "
           "write CSV with %zu B results %.3f s (%.2f us/row); seek to row 900000 + read %llu rows "
           "%.3f s\n",
           (unsigned long long)n, (double)sb.st_size / 1e6, t1 - t0, (t1 - t0) * 1e6 / (double)n,
           (double)sb.st_size / 1e6 / (t1 - t0), strlen(big), t3 - t2, (t3 - t2) * 1e6 / (double)n,
           (unsigned long long)m, t5 - t4);
    assert_int_equal(n, 1000000);
    assert_int_equal(m, 100001);
    unlink(path);
    unlink(tpath("million.out.csv"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_bulkio.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The head of a result as a pool's submitter reads it: verdict, reason, score, error;
 * nested keys of the same names do not count; malformed or oversized text is refused. */
static void test_result_head(void **state)
{
    (void)state;
    bulkio_result_head_t h;
    const char *ok = "{\"email\":\"a@b.example\",\"smtp\":{\"verdict\":\"x\",\"score\":7},"
                     "\"verdict\":\"undeliverable\",\"reason\":\"mailbox_absent\","
                     "\"score\":3,\"flags\":{\"role\":false},\"list\":[1,{\"error\":\"no\"}]}";
    assert_true(bulkio_result_head(ok, strlen(ok), &h));
    assert_string_equal(h.verdict, "undeliverable");
    assert_string_equal(h.reason, "mailbox_absent");
    assert_int_equal(h.score, 3);
    assert_string_equal(h.error, "");
    const char *err = "{\"error\":\"too_many_deliveries\",\"deliveries\":5}";
    assert_true(bulkio_result_head(err, strlen(err), &h));
    assert_string_equal(h.error, "too_many_deliveries");
    assert_string_equal(h.verdict, "");
    const char *esc = " {\"verdict\":\"ris\\u006by\",\"score\":100} ";
    assert_true(bulkio_result_head(esc, strlen(esc), &h));
    assert_string_equal(h.verdict, "risky");
    assert_int_equal(h.score, 100);
    /* only len bytes count */
    assert_true(bulkio_result_head("{\"verdict\":\"unknown\"}garbage", 21, &h));
    assert_string_equal(h.verdict, "unknown");
    const char *bad[] = {"", "[]", "{\"verdict\":\"risky\"", "{\"verdict\":1}",
                         "{\"score\":-1}", "{\"score\":1.5}", "{\"verdict\":\"risky\"} x",
                         "{\"reason\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                         "{\"verdict\":\"a\\u0000b\"}", NULL};
    for (int k = 0; bad[k]; k++) {
        assert_false(bulkio_result_head(bad[k], strlen(bad[k]), &h));
        assert_string_equal(h.verdict, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delimiters),       cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_header_sniff),     cmocka_unit_test(test_column_choice),
        cmocka_unit_test(test_missing_column),   cmocka_unit_test(test_bom_crlf),
        cmocka_unit_test(test_bad_quoting),      cmocka_unit_test(test_empty_rows),
        cmocka_unit_test(test_not_utf8),         cmocka_unit_test(test_huge_row),
        cmocka_unit_test(test_ndjson),           cmocka_unit_test(test_seek),
        cmocka_unit_test(test_writer_roundtrip), cmocka_unit_test(test_writer_ndjson),
        cmocka_unit_test(test_writer_atomic),    cmocka_unit_test(test_writer_unwritable),
        cmocka_unit_test(test_writer_split),     cmocka_unit_test(test_writer_result_scan),
        cmocka_unit_test(test_result_head),      cmocka_unit_test(test_bench_million),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
