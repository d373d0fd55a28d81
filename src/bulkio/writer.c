/*
 * writer.c - bulk output writers (CSV, NDJSON, split by verdict); see bulkio.h.
 *
 * Every output file is an "atomic file": created at open as PATH.tmp-XXXXXX in PATH's
 * directory (O_EXCL, mode 0666 & ~umask), written through stdio, then on commit
 * flushed, fsync'd, renamed over PATH and the directory fsync'd. Until commit PATH is
 * untouched; on abort (free without commit) the temporary file is removed. Creating the
 * temporary file at open is how an unwritable destination fails before any work.
 *
 * Does not: read the input, order rows, or interpret results beyond copying the
 * fields of mailprobe's columns out of the result JSON.
 */
#include "bulkio/bulkio.h"
#include "bulkio/bulkio_int.h"
#include "util/buf.h"
#include "util/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64u * 1024u * 1024u)
#define STDIO_BUF (256u * 1024u)

const char *const bulkio_result_columns[] = {
    "verdict", "reason", "score", "disposable", "free", "role", "gibberish", "suggestion",
    "mx_host", "smtp_code", "smtp_enhanced", "smtp_message", "catch_all",
    "catch_all_assessment", "catch_all_probability", "error", NULL};

/* One file per verdict; risky rows with a catch-all assessment of likely_valid or
 * likely_invalid go to their own two files instead of risky's. */
const char *const bulkio_split_files[] = {"deliverable", "undeliverable", "risky", "unknown",
                                          "risky_likely_valid", "risky_likely_invalid", NULL};
#define NSPLIT 6u
#define SPLIT_UNKNOWN 3u
#define COL_VERDICT 0u
#define COL_ASSESSMENT 13u

typedef struct {
    char *path;  /* final name */
    char *tmp;   /* temporary name; NULL for stdout */
    FILE *f;
    char *vbuf;
} afile_t;

struct bulkio_writer {
    bulkio_format_t in_fmt, out_fmt;
    char delim;
    size_t ncols;
    char **names;    /* CSV input column names (header or column_N), ncols */
    char **jkeys;    /* the same as JSON keys, quoted and deduplicated */
    afile_t main;
    bool has_main;
    afile_t split[NSPLIT];
    bool has_split;
    size_t nsplit;   /* split files open: 4, or NSPLIT with split_assessed */
    bool committed;
    mp_buf_t line;
    size_t nout; /* fields in the CSV line being built */
    mp_buf_t scratch; /* result columns (bulkio_result_cols) */
    size_t off[BULKIO_NCOLS_JSON], len[BULKIO_NCOLS_JSON];
    char err[BULKIO_ERR_MAX];
};

/* ---- atomic files ----------------------------------------------------------------- */

static char *str_join(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static void dir_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        mp_strlcpy(out, ".", size);
    else if (slash == path)
        mp_strlcpy(out, "/", size);
    else
        mp_strlcpyn(out, path, (size_t)(slash - path), size);
}

static mp_status_t afile_open(afile_t *a, const char *path, char *err, size_t errsize)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    struct stat sb;
    memset(a, 0, sizeof *a);
    if (strcmp(path, "-") == 0) {
        a->f = stdout;
        a->path = strdup("-");
        return a->path ? MP_OK : MP_ERR_NOMEM;
    }
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        mp_err_set(err, errsize, "%s: cannot write the output: it is a directory", path);
        return MP_ERR_IO;
    }
    a->path = strdup(path);
    if (!a->path)
        return MP_ERR_NOMEM;
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        unsigned char rnd[6];
        char sfx[16] = ".tmp-";
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            for (size_t i = 0; i < sizeof rnd; i++)
                rnd[i] = (unsigned char)(rand() >> 3);
        for (size_t i = 0; i < sizeof rnd; i++)
            sfx[5 + i] = alnum[rnd[i] % 36];
        sfx[11] = '\0';
        free(a->tmp);
        a->tmp = str_join(path, sfx, "");
        if (!a->tmp)
            return MP_ERR_NOMEM;
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        char dir[4096];
        dir_of(path, dir, sizeof dir);
        mp_err_set(err, errsize, "%s: cannot write the output (creating a file in %s): %s", path,
                   dir, strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        return MP_ERR_IO;
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        close(fd);
        unlink(a->tmp);
        return MP_ERR_NOMEM;
    }
    a->vbuf = malloc(STDIO_BUF);
    if (a->vbuf)
        setvbuf(a->f, a->vbuf, _IOFBF, STDIO_BUF);
    return MP_OK;
}

static mp_status_t afile_commit(afile_t *a, char *err, size_t errsize)
{
    if (!a->f)
        return MP_OK;
    if (!a->tmp) { /* stdout */
        if (fflush(a->f) != 0) {
            mp_err_set(err, errsize, "stdout: write error: %s", strerror(errno));
            return MP_ERR_IO;
        }
        a->f = NULL;
        return MP_OK;
    }
    int e = 0;
    if (fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(a->f) != 0 && !e)
        e = errno;
    a->f = NULL;
    if (!e && rename(a->tmp, a->path) != 0)
        e = errno;
    if (e) {
        mp_err_set(err, errsize, "%s: cannot write the output: %s", a->path, strerror(e));
        unlink(a->tmp);
        return MP_ERR_IO;
    }
    char dir[4096];
    dir_of(a->path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* make the rename durable; failure here loses nothing already written */
        close(dfd);
    }
    free(a->tmp);
    a->tmp = NULL;
    return MP_OK;
}

static void afile_abort(afile_t *a)
{
    if (a->f && a->tmp) {
        fclose(a->f);
        unlink(a->tmp);
    } else if (a->f)
        fflush(a->f);
    a->f = NULL;
    free(a->tmp);
    free(a->path);
    free(a->vbuf);
    memset(a, 0, sizeof *a);
}

static mp_status_t afile_write(bulkio_writer_t *w, afile_t *a, const char *p, size_t n)
{
    if (fwrite(p, 1, n, a->f) != n) {
        mp_err_set(w->err, sizeof w->err, "%s: write error: %s", a->path, strerror(errno));
        return MP_ERR_IO;
    }
    return MP_OK;
}

/* ---- encoding --------------------------------------------------------------------- */

/* RFC 4180 section 2: quote a field holding the delimiter, a quote, CR or LF. */
static mp_status_t csv_field(bulkio_writer_t *w, const char *s, size_t n)
{
    mp_status_t st = MP_OK;
    mp_buf_t *b = &w->line;
    char delim = w->delim;
    if (w->nout++) /* each line is built alone, counting its fields */
        st = mp_buf_add(b, &delim, 1);
    bool q = false;
    for (size_t i = 0; i < n && !q; i++)
        q = s[i] == delim || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (st || !q)
        return st ? st : mp_buf_add(b, s, n);
    st = mp_buf_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; !st && i < n; i++)
        if (s[i] == '"') {
            st = mp_buf_add(b, s + run, i + 1 - run); /* up to and with the quote */
            if (!st)
                st = mp_buf_add(b, "\"", 1);
            run = i + 1;
        }
    if (!st)
        st = mp_buf_add(b, s + run, n - run);
    if (!st)
        st = mp_buf_add(b, "\"", 1);
    return st;
}

static mp_status_t csv_str(bulkio_writer_t *w, const char *s)
{
    return csv_field(w, s ? s : "", s ? strlen(s) : 0);
}

/* Our columns: from the scanned result (cols NULL: no result), then the error. */
static mp_status_t csv_result(bulkio_writer_t *w, bool have, const char *error)
{
    mp_status_t st = MP_OK;
    for (size_t i = 0; !st && i < BULKIO_NCOLS_JSON; i++)
        st = have ? csv_field(w, w->scratch.data + w->off[i], w->len[i]) : csv_field(w, "", 0);
    if (!st)
        st = csv_str(w, error);
    return st;
}

static mp_status_t build_csv(bulkio_writer_t *w, const bulkio_row_t *row, bool have,
                             const char *error)
{
    mp_status_t st = MP_OK;
    size_t i;
    if (w->in_fmt == BULKIO_FMT_NDJSON) {
        st = csv_field(w, row->address, strlen(row->address));
        if (!st)
            st = csv_field(w, row->raw ? row->raw : "", row->raw ? row->raw_len : 0);
    } else {
        for (i = 0; !st && i < w->ncols; i++)
            st = i < row->nfields ? csv_field(w, row->fields[i], row->field_len[i])
                                  : csv_field(w, "", 0);
    }
    if (!st)
        st = csv_result(w, have, error);
    /* Fields beyond the input's columns go after ours, so ours stay under their names. */
    for (i = w->ncols; !st && w->in_fmt == BULKIO_FMT_CSV && i < row->nfields; i++)
        st = csv_field(w, row->fields[i], row->field_len[i]);
    if (!st)
        st = mp_buf_add(&w->line, "\r\n", 2); /* RFC 4180: CRLF ends a record */
    return st;
}

/* The "mailprobe" value: the result, with "error" added when there is one. */
static mp_status_t nd_result(bulkio_writer_t *w, const char *result_json, const char *error)
{
    mp_status_t st;
    if (!result_json) {
        st = mp_buf_adds(&w->line, "{\"error\":");
        if (!st)
            st = bulkio_json_str(&w->line, error, strlen(error));
        return st ? st : mp_buf_add(&w->line, "}", 1);
    }
    const char *p = result_json;
    while (mp_is_space((unsigned char)*p))
        p++;
    if (!*error || *p != '{')
        return mp_buf_adds(&w->line, result_json);
    st = mp_buf_adds(&w->line, "{\"error\":");
    if (!st)
        st = bulkio_json_str(&w->line, error, strlen(error));
    p++;
    while (mp_is_space((unsigned char)*p))
        p++;
    if (!st && *p != '}')
        st = mp_buf_add(&w->line, ",", 1);
    return st ? st : mp_buf_adds(&w->line, p);
}

static mp_status_t build_nd(bulkio_writer_t *w, const bulkio_row_t *row, const char *result_json,
                            const char *error)
{
    mp_status_t st = MP_OK;
    if (w->in_fmt == BULKIO_FMT_NDJSON) {
        bool obj = row->raw && (row->err == BULKIO_ROW_OK || row->err == BULKIO_ROW_NO_ADDRESS);
        if (obj) {
            size_t n = row->raw_len;
            while (n && mp_is_space((unsigned char)row->raw[n - 1]))
                n--;
            if (n && row->raw[n - 1] == '}')
                n--;
            size_t m = n;
            while (m && mp_is_space((unsigned char)row->raw[m - 1]))
                m--;
            st = mp_buf_add(&w->line, row->raw, n);
            if (!st && !(m && row->raw[m - 1] == '{'))
                st = mp_buf_add(&w->line, ",", 1);
        } else {
            st = mp_buf_adds(&w->line, "{\"input\":");
            if (!st)
                st = row->raw ? bulkio_json_str(&w->line, row->raw, row->raw_len)
                              : mp_buf_adds(&w->line, "null");
            if (!st)
                st = mp_buf_add(&w->line, ",", 1);
        }
    } else {
        st = mp_buf_add(&w->line, "{", 1);
        for (size_t i = 0; !st && i < row->nfields; i++) {
            if (i < w->ncols)
                st = mp_buf_adds(&w->line, w->jkeys[i]);
            else
                st = mp_buf_addf(&w->line, "\"column_%zu\":", i + 1);
            if (!st)
                st = bulkio_json_str(&w->line, row->fields[i], row->field_len[i]);
            if (!st)
                st = mp_buf_add(&w->line, ",", 1);
        }
    }
    if (!st)
        st = mp_buf_adds(&w->line, "\"mailprobe\":");
    if (!st)
        st = nd_result(w, result_json, error);
    if (!st)
        st = mp_buf_add(&w->line, "}\n", 2);
    return st;
}

static mp_status_t write_all(bulkio_writer_t *w, afile_t *split_to)
{
    mp_status_t st = MP_OK;
    if (w->has_main)
        st = afile_write(w, &w->main, w->line.data, w->line.len);
    if (!st && split_to)
        st = afile_write(w, split_to, w->line.data, w->line.len);
    return st;
}

static bool col_is(const bulkio_writer_t *w, size_t col, const char *s)
{
    return w->len[col] == strlen(s) && memcmp(w->scratch.data + w->off[col], s, w->len[col]) == 0;
}

/* The split file of the row just scanned: its verdict's, risky split by its assessment. */
static size_t split_of(const bulkio_writer_t *w, bool have)
{
    if (!have)
        return SPLIT_UNKNOWN; /* no (readable) result */
    if (w->nsplit == NSPLIT && col_is(w, COL_VERDICT, "risky")) {
        if (col_is(w, COL_ASSESSMENT, "likely_valid"))
            return 4;
        if (col_is(w, COL_ASSESSMENT, "likely_invalid"))
            return 5;
    }
    for (size_t i = 0; i < 4; i++)
        if (col_is(w, COL_VERDICT, bulkio_split_files[i]))
            return i;
    return SPLIT_UNKNOWN;
}

mp_status_t bulkio_writer_put(bulkio_writer_t *w, const bulkio_row_t *row,
                              const char *result_json, const char *error)
{
    if (w->committed)
        return MP_ERR_ARG;
    mp_status_t st;
    bool have = false;
    if (!error || !*error)
        error = row->err ? bulkio_row_err_name(row->err) : (result_json ? "" : "not_checked");
    if (result_json && (w->out_fmt == BULKIO_FMT_CSV || w->has_split)) {
        have = bulkio_result_cols(result_json, &w->scratch, w->off, w->len);
        if (!have && !*error)
            error = "bad_result";
    }
    mp_buf_reset(&w->line);
    w->nout = 0;
    st = w->out_fmt == BULKIO_FMT_CSV ? build_csv(w, row, have, error)
                                       : build_nd(w, row, result_json, error);
    if (st) {
        mp_err_set(w->err, sizeof w->err, "row %llu: output row too large or out of memory",
                   (unsigned long long)row->row_no);
        return st;
    }
    afile_t *to = NULL;
    if (w->has_split)
        to = &w->split[split_of(w, have)];
    return write_all(w, to);
}

/* ---- open / commit / free --------------------------------------------------------- */

static mp_status_t write_header(bulkio_writer_t *w, afile_t *a)
{
    if (w->out_fmt != BULKIO_FMT_CSV)
        return MP_OK;
    mp_buf_reset(&w->line);
    w->nout = 0;
    mp_status_t st = MP_OK;
    if (w->in_fmt == BULKIO_FMT_NDJSON) {
        st = csv_str(w, "email");
        if (!st)
            st = csv_str(w, "input");
    }
    for (size_t i = 0; !st && i < w->ncols; i++)
        st = csv_str(w, w->names[i]);
    for (size_t i = 0; !st && bulkio_result_columns[i]; i++)
        st = csv_str(w, bulkio_result_columns[i]);
    if (!st)
        st = mp_buf_add(&w->line, "\r\n", 2);
    if (!st)
        st = afile_write(w, a, w->line.data, w->line.len);
    return st;
}

static mp_status_t setup_names(bulkio_writer_t *w, const bulkio_schema_t *s)
{
    if (w->in_fmt != BULKIO_FMT_CSV || !s->ncols)
        return MP_OK;
    w->names = calloc(s->ncols, sizeof *w->names);
    w->jkeys = calloc(s->ncols, sizeof *w->jkeys);
    if (!w->names || !w->jkeys)
        return MP_ERR_NOMEM;
    w->ncols = s->ncols;
    for (size_t i = 0; i < s->ncols; i++) {
        const char *h = s->has_header && s->header ? s->header[i] : NULL;
        char tmp[32];
        if (!h || !*h) {
            snprintf(tmp, sizeof tmp, "column_%zu", i + 1);
            h = tmp;
        }
        w->names[i] = strdup(h);
        if (!w->names[i])
            return MP_ERR_NOMEM;
    }
    /* JSON keys: unique (a repeated name takes _2, _3...), never "mailprobe" */
    for (size_t i = 0; i < w->ncols; i++) {
        mp_buf_t b;
        mp_buf_init(&b, 1u << 20);
        unsigned dup = 1;
        for (size_t j = 0; j < i; j++)
            dup += strcmp(w->names[i], w->names[j]) == 0;
        if (strcmp(w->names[i], "mailprobe") == 0)
            dup++;
        mp_status_t st;
        if (dup > 1) {
            mp_buf_t k;
            mp_buf_init(&k, 1u << 20);
            st = mp_buf_addf(&k, "%s_%u", w->names[i], dup);
            if (!st)
                st = bulkio_json_str(&b, k.data, k.len);
            mp_buf_cleanup(&k);
        } else
            st = bulkio_json_str(&b, w->names[i], strlen(w->names[i]));
        if (!st)
            st = mp_buf_add(&b, ":", 1);
        if (st) {
            mp_buf_cleanup(&b);
            return st;
        }
        w->jkeys[i] = b.data; /* ownership moves to jkeys */
    }
    return MP_OK;
}

mp_status_t bulkio_writer_open(const bulkio_wopts_t *o, const bulkio_schema_t *s,
                               bulkio_writer_t **out, char *err, size_t errsize)
{
    mp_status_t st = MP_ERR_NOMEM;
    *out = NULL;
    if (err && errsize)
        err[0] = '\0';
    if (!o || !s || (!o->path && !o->split_dir)) {
        mp_err_set(err, errsize, "no output given");
        return MP_ERR_ARG;
    }
    bulkio_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        goto fail;
    mp_buf_init(&w->line, LINE_MAX_BYTES);
    mp_buf_init(&w->scratch, LINE_MAX_BYTES);
    w->in_fmt = s->format == BULKIO_FMT_NDJSON ? BULKIO_FMT_NDJSON : BULKIO_FMT_CSV;
    w->out_fmt = o->format == BULKIO_FMT_AUTO ? w->in_fmt : o->format;
    w->delim = w->in_fmt == BULKIO_FMT_CSV && s->delim ? s->delim : ',';
    if ((st = setup_names(w, s)) != MP_OK)
        goto fail;
    if (o->path) {
        st = afile_open(&w->main, o->path, err, errsize);
        if (st)
            goto fail;
        w->has_main = true;
        if ((st = write_header(w, &w->main)) != MP_OK)
            goto fail_io;
    }
    if (o->split_dir) {
        struct stat sb;
        if (stat(o->split_dir, &sb) != 0) {
            if (errno != ENOENT || mkdir(o->split_dir, 0777) != 0) {
                mp_err_set(err, errsize, "%s: cannot create the split directory: %s", o->split_dir,
                           strerror(errno));
                st = MP_ERR_IO;
                goto fail;
            }
        } else if (!S_ISDIR(sb.st_mode)) {
            mp_err_set(err, errsize, "%s: --split-by-verdict needs a directory", o->split_dir);
            st = MP_ERR_IO;
            goto fail;
        }
        w->has_split = true;
        w->nsplit = o->split_assessed ? NSPLIT : 4;
        for (size_t i = 0; i < w->nsplit; i++) {
            char *p = str_join(o->split_dir, "/", bulkio_split_files[i]);
            char *q = p ? str_join(p, w->out_fmt == BULKIO_FMT_CSV ? ".csv" : ".ndjson", "") : NULL;
            free(p);
            if (!q) {
                st = MP_ERR_NOMEM;
                goto fail;
            }
            st = afile_open(&w->split[i], q, err, errsize);
            free(q);
            if (st)
                goto fail;
            if ((st = write_header(w, &w->split[i])) != MP_OK)
                goto fail_io;
        }
    }
    *out = w;
    return MP_OK;
fail_io:
    mp_err_set(err, errsize, "%s", w->err);
fail:
    if (st == MP_ERR_NOMEM)
        mp_err_set(err, errsize, "out of memory");
    bulkio_writer_free(w);
    return st;
}

mp_status_t bulkio_writer_commit(bulkio_writer_t *w)
{
    mp_status_t st = MP_OK;
    if (w->committed)
        return MP_OK;
    /* Split files first: the main output appearing is the sign that all are complete. */
    for (size_t i = 0; !st && w->has_split && i < w->nsplit; i++)
        st = afile_commit(&w->split[i], w->err, sizeof w->err);
    if (!st && w->has_main)
        st = afile_commit(&w->main, w->err, sizeof w->err);
    if (!st)
        w->committed = true;
    return st;
}

const char *bulkio_writer_error(const bulkio_writer_t *w)
{
    return w->err;
}

void bulkio_writer_free(bulkio_writer_t *w)
{
    if (!w)
        return;
    afile_abort(&w->main);
    for (size_t i = 0; i < NSPLIT; i++)
        afile_abort(&w->split[i]);
    for (size_t i = 0; i < w->ncols; i++) {
        free(w->names ? w->names[i] : NULL);
        free(w->jkeys ? w->jkeys[i] : NULL);
    }
    free(w->names);
    free(w->jkeys);
    mp_buf_cleanup(&w->line);
    mp_buf_cleanup(&w->scratch);
    free(w);
}
