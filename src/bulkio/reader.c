/*
 * reader.c - streaming CSV / NDJSON reader for bulk lists; see bulkio.h.
 *
 * The input goes through one window of row_max + 2 + 64 KiB bytes. A framer finds where
 * each record ends (RFC 4180 quoting: a quote opens a quoted field only as the field's
 * first byte, "" escapes, CR, LF or CRLF end a record outside quotes) and decides what is
 * malformed; libcsv then splits a well-formed record into fields. Framing ourselves is
 * what makes recovery possible: a stray quote would otherwise swallow the rest of the
 * file into one field. Rule (docs/internals/bulkio.md): when a record whose quoted field
 * spans lines turns out malformed (text after a closing quote, end of input inside the
 * quotes, or more than row_max bytes), only its first physical line is the bad row and
 * reading resumes on the next line.
 *
 * Does not: check or normalise addresses, deduplicate, or buffer more than one window.
 */
#include "bulkio/bulkio.h"
#include "bulkio/bulkio_int.h"
#include "util/buf.h"
#include "util/str.h"

#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define WIN_EXTRA (64u * 1024u)
#define SNIFF_RECORDS 20u
#define SAMPLE_COLS_MAX 256u

enum { FR_MORE, FR_REC, FR_BLANK, FR_LONG };

typedef struct {
    int kind;
    size_t end;     /* record content length from the record start */
    size_t next;    /* bytes to consume (content + terminator) */
    bool bad;       /* bad quoting */
    bool discard;   /* FR_LONG: after next bytes, skip to the next LF */
    size_t nfields; /* delimiters outside quotes + 1 */
} frame_t;

struct bulkio_reader {
    FILE *f;
    bool own;
    char name[256];
    bulkio_ropts_t o;
    char *column; /* copy of o.column */
    bulkio_schema_t schema;
    char **hdr;   /* header names (schema.header) */
    char *key;    /* NDJSON key (schema.key) */

    unsigned char *win;
    size_t cap, len, pos;
    uint64_t base; /* input offset of win[0] */
    bool eof;
    uint64_t row_no, line_no;

    struct csv_parser csv;
    bool csv_init;
    mp_buf_t fb;          /* field bytes, each NUL-terminated */
    size_t *foff, *flen;  /* per field: offset in fb, length */
    const char **fptr;
    size_t nf, capf;
    bool f_over;          /* too many fields / bytes */
    mp_buf_t ab;          /* the address */
    bulkio_row_t row;
    char err[BULKIO_ERR_MAX];
};

/* ---- framing ---------------------------------------------------------------------- */

enum { ST_FS, ST_U, ST_Q, ST_QQ, ST_RAW };

/* Frame one CSV record at p[0..n). eof: no more bytes will follow. */
static void frame_csv(const unsigned char *p, size_t n, bool eof, unsigned char d, size_t max,
                      frame_t *fr)
{
    size_t lim = n < max + 2 ? n : max + 2;
    int st = ST_FS;
    size_t nl_end = SIZE_MAX, nl_next = 0, nf = 1, i;
    bool bad = false;
    unsigned c = 0;

    memset(fr, 0, sizeof *fr);
    for (i = 0; i < lim; i++) {
        c = p[i];
        if (st == ST_Q) {
            if (c == '"')
                st = ST_QQ;
            else if ((c == '\n' || c == '\r') && nl_end == SIZE_MAX) {
                nl_end = i;
                nl_next = (c == '\r' && i + 1 < n && p[i + 1] == '\n') ? i + 2 : i + 1;
            }
            continue;
        }
        if (st == ST_QQ) {
            if (c == '"') {
                st = ST_Q;
                continue;
            }
            if (c == d) {
                st = ST_FS;
                nf++;
                continue;
            }
            if (c == '\n' || c == '\r')
                goto term;
            if (nl_end != SIZE_MAX)
                goto first_line; /* a stray quote swallowed lines: only the first is bad */
            bad = true;          /* "abc"def: keep the physical line as one bad row */
            st = ST_RAW;
            continue;
        }
        if (c == '\n' || c == '\r')
            goto term;
        if (st == ST_RAW)
            continue;
        if (c == d) {
            st = ST_FS;
            nf++;
            continue;
        }
        if (st == ST_FS && c == '"') {
            st = ST_Q;
            continue;
        }
        st = ST_U; /* a quote inside an unquoted field is kept literally (unambiguous) */
    }

    if (n >= max + 2) { /* no end within max bytes */
        if ((st == ST_Q || st == ST_QQ) && nl_end != SIZE_MAX)
            goto first_line;
        fr->kind = FR_LONG;
        fr->next = lim;
        fr->discard = true;
        return;
    }
    if (!eof || n == 0) {
        fr->kind = FR_MORE;
        return;
    }
    if (st == ST_Q && nl_end != SIZE_MAX)
        goto first_line;
    fr->kind = FR_REC;
    fr->end = fr->next = n;
    fr->bad = bad || st == ST_Q;
    fr->nfields = nf;
    return;

term:
    fr->end = i;
    if (c == '\r') {
        if (i + 1 < n)
            fr->next = i + 1 + (p[i + 1] == '\n');
        else if (eof)
            fr->next = i + 1;
        else {
            fr->kind = FR_MORE;
            return;
        }
    } else
        fr->next = i + 1;
    fr->bad = bad;
    fr->nfields = nf;
    fr->kind = i == 0 ? FR_BLANK : (i > max ? FR_LONG : FR_REC);
    return;

first_line:
    fr->end = nl_end;
    fr->next = nl_next;
    fr->bad = true;
    fr->nfields = 1;
    fr->kind = nl_end > max ? FR_LONG : FR_REC;
}

/* Frame one NDJSON line. */
static void frame_nd(const unsigned char *p, size_t n, bool eof, size_t max, frame_t *fr)
{
    size_t lim = n < max + 2 ? n : max + 2;
    const unsigned char *nl = memchr(p, '\n', lim);
    size_t end;

    memset(fr, 0, sizeof *fr);
    if (nl) {
        end = (size_t)(nl - p);
        fr->next = end + 1;
    } else if (n >= max + 2) {
        fr->kind = FR_LONG;
        fr->next = lim;
        fr->discard = true;
        return;
    } else if (!eof || n == 0) {
        fr->kind = FR_MORE;
        return;
    } else {
        end = n;
        fr->next = n;
    }
    if (end && p[end - 1] == '\r')
        end--;
    fr->end = end;
    if (end > max) {
        fr->kind = FR_LONG;
        return;
    }
    size_t i = 0;
    while (i < end && mp_is_space(p[i]))
        i++;
    fr->kind = i == end ? FR_BLANK : FR_REC;
}

/* ---- window ----------------------------------------------------------------------- */

static mp_status_t fill(bulkio_reader_t *r)
{
    if (r->pos) {
        memmove(r->win, r->win + r->pos, r->len - r->pos);
        r->base += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len < r->cap && !r->eof) {
        size_t want = r->cap - r->len;
        size_t n = fread(r->win + r->len, 1, want, r->f);
        r->len += n;
        if (n < want) {
            if (ferror(r->f)) {
                mp_err_set(r->err, sizeof r->err, "%s: read error: %s", r->name, strerror(errno));
                return MP_ERR_IO;
            }
            r->eof = true;
        }
    }
    return MP_OK;
}

static void consume(bulkio_reader_t *r, size_t n)
{
    const unsigned char *p = r->win + r->pos, *e = p + n;
    while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
        r->line_no++;
        p++;
    }
    r->pos += n;
}

static void frame_at(bulkio_reader_t *r, frame_t *fr)
{
    if (r->schema.format == BULKIO_FMT_NDJSON)
        frame_nd(r->win + r->pos, r->len - r->pos, r->eof, r->o.row_max, fr);
    else
        frame_csv(r->win + r->pos, r->len - r->pos, r->eof, (unsigned char)r->schema.delim,
                  r->o.row_max, fr);
}

/* Frame the next record, reading as needed (unless sampling: then FR_MORE = stop). */
static mp_status_t next_frame(bulkio_reader_t *r, frame_t *fr, bool sampling)
{
    for (;;) {
        frame_at(r, fr);
        if (fr->kind != FR_MORE)
            return MP_OK;
        if (r->eof || sampling)
            return MP_OK; /* FR_MORE with eof: end of input */
        mp_status_t st = fill(r);
        if (st)
            return st;
    }
}

/* After an FR_LONG with discard: skip to just past the next LF. */
static mp_status_t discard_line(bulkio_reader_t *r)
{
    for (;;) {
        const unsigned char *p = r->win + r->pos;
        const unsigned char *nl = memchr(p, '\n', r->len - r->pos);
        if (nl) {
            consume(r, (size_t)(nl - p) + 1);
            return MP_OK;
        }
        consume(r, r->len - r->pos);
        if (r->eof)
            return MP_OK;
        mp_status_t st = fill(r);
        if (st)
            return st;
    }
}

/* ---- rows ------------------------------------------------------------------------- */

static int no_space(unsigned char c)
{
    (void)c;
    return 0; /* RFC 4180: spaces are part of a field; libcsv would trim them */
}

static void add_field(bulkio_reader_t *r, const void *s, size_t len)
{
    if (r->f_over)
        return;
    if (r->nf >= BULKIO_FIELDS_MAX) {
        r->f_over = true;
        return;
    }
    if (r->nf == r->capf) {
        size_t nc = r->capf ? r->capf * 2 : 64;
        size_t *no = realloc(r->foff, nc * sizeof *no);
        if (no)
            r->foff = no;
        size_t *nl = realloc(r->flen, nc * sizeof *nl);
        if (nl)
            r->flen = nl;
        const char **np = realloc(r->fptr, nc * sizeof *np);
        if (np)
            r->fptr = np;
        if (!no || !nl || !np) {
            r->f_over = true;
            return;
        }
        r->capf = nc;
    }
    size_t off = r->fb.len;
    if (mp_buf_add(&r->fb, s ? s : "", s ? len : 0) || mp_buf_add(&r->fb, "", 1)) {
        r->f_over = true;
        return;
    }
    r->foff[r->nf] = off;
    r->flen[r->nf] = s ? len : 0;
    r->nf++;
}

static void csv_field_cb(void *s, size_t len, void *arg)
{
    add_field(arg, s, len);
}

static void csv_row_cb(int c, void *arg)
{
    (void)c;
    (void)arg;
}

static void fields_reset(bulkio_reader_t *r)
{
    mp_buf_reset(&r->fb);
    r->nf = 0;
    r->f_over = false;
}

static void fields_finish(bulkio_reader_t *r)
{
    for (size_t i = 0; i < r->nf; i++)
        r->fptr[i] = r->fb.data + r->foff[i];
}

/* Split a bad record on the delimiter, quotes kept as they are (best effort). */
static void split_raw(bulkio_reader_t *r, const unsigned char *p, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || p[i] == (unsigned char)r->schema.delim) {
            add_field(r, p + s, i - s);
            s = i + 1;
        }
}

/* Trim and check a candidate address into r->ab; sets r->row.err when bad. */
static void set_address(bulkio_reader_t *r, const char *s, size_t n, bool check_utf8)
{
    const char *nul = memchr(s, '\0', n);
    if (nul) { /* callers get a C string: cut at the NUL, and the row is not text */
        n = (size_t)(nul - s);
        if (!r->row.err)
            r->row.err = BULKIO_ROW_NOT_UTF8;
    }
    while (n && mp_is_space((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && mp_is_space((unsigned char)s[n - 1]))
        n--;
    mp_buf_reset(&r->ab);
    if (n == 0) {
        if (!r->row.err)
            r->row.err = BULKIO_ROW_NO_ADDRESS;
        return;
    }
    if (check_utf8 && !bulkio_utf8_valid((const unsigned char *)s, n)) {
        if (!r->row.err)
            r->row.err = BULKIO_ROW_NOT_UTF8;
    }
    if (mp_buf_add(&r->ab, s, n) && !r->row.err)
        r->row.err = BULKIO_ROW_TOO_LONG;
}

/* Build r->row from a framed record at the window position (not consumed yet). */
static void build_csv_row(bulkio_reader_t *r, const frame_t *fr, bool want_address)
{
    const unsigned char *p = r->win + r->pos;
    fields_reset(r);
    if (fr->kind == FR_LONG) {
        r->row.err = BULKIO_ROW_TOO_LONG;
    } else if (fr->bad) {
        r->row.err = BULKIO_ROW_BAD_QUOTING;
        split_raw(r, p, fr->end);
    } else {
        csv_parse(&r->csv, p, fr->end, csv_field_cb, csv_row_cb, r);
        csv_fini(&r->csv, csv_field_cb, csv_row_cb, r);
    }
    if (r->f_over) {
        r->row.err = BULKIO_ROW_TOO_LONG;
        fields_reset(r);
    }
    fields_finish(r);
    r->row.nfields = r->nf;
    r->row.fields = r->fptr;
    r->row.field_len = r->flen;
    mp_buf_reset(&r->ab);
    if (!want_address || r->row.err == BULKIO_ROW_TOO_LONG)
        return;
    size_t c = r->schema.column;
    if (c < r->nf)
        set_address(r, r->fptr[c], r->flen[c], true);
    else if (!r->row.err)
        r->row.err = BULKIO_ROW_NO_ADDRESS;
}

/* Parse one NDJSON object; returns it (caller decrefs) or NULL with row.err set. */
static json_t *parse_nd(bulkio_reader_t *r, const unsigned char *p, size_t n)
{
    if (!bulkio_utf8_valid(p, n)) {
        r->row.err = BULKIO_ROW_NOT_UTF8;
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        r->row.err = BULKIO_ROW_BAD_JSON;
        return NULL;
    }
    return j;
}

static void build_nd_row(bulkio_reader_t *r, const frame_t *fr)
{
    fields_reset(r);
    fields_finish(r);
    r->row.nfields = 0;
    r->row.fields = r->fptr;
    r->row.field_len = r->flen;
    mp_buf_reset(&r->ab);
    if (fr->kind == FR_LONG) {
        r->row.err = BULKIO_ROW_TOO_LONG;
        return;
    }
    json_t *j = parse_nd(r, r->win + r->pos, fr->end);
    if (!j)
        return;
    json_t *v = r->key ? json_object_get(j, r->key) : NULL;
    if (json_is_string(v))
        set_address(r, json_string_value(v), json_string_length(v), true);
    else
        r->row.err = BULKIO_ROW_NO_ADDRESS;
    json_decref(j);
}

static void row_begin(bulkio_reader_t *r, const frame_t *fr)
{
    memset(&r->row, 0, sizeof r->row);
    r->row.line_no = r->line_no + 1;
    r->row.offset = r->base + r->pos;
    r->row.next_offset = r->row.offset + fr->next;
    if (fr->kind != FR_LONG) {
        r->row.raw = (const char *)r->win + r->pos;
        r->row.raw_len = fr->end;
    }
}

mp_status_t bulkio_reader_next(bulkio_reader_t *r, const bulkio_row_t **row)
{
    frame_t fr;
    mp_status_t st;
    *row = NULL;
    r->err[0] = '\0';
    for (;;) {
        st = next_frame(r, &fr, false);
        if (st)
            return st;
        if (fr.kind == FR_MORE)
            return MP_OK; /* end of input */
        if (fr.kind == FR_BLANK) {
            consume(r, fr.next);
            continue;
        }
        break;
    }
    row_begin(r, &fr);
    if (r->schema.format == BULKIO_FMT_NDJSON)
        build_nd_row(r, &fr);
    else
        build_csv_row(r, &fr, true);
    r->row.row_no = ++r->row_no;
    r->row.address = mp_buf_str(&r->ab);
    consume(r, fr.next);
    if (fr.discard) {
        /* The row's bytes are gone: it has no raw text and ends after the next LF. */
        st = discard_line(r);
        if (st)
            return st;
        r->row.next_offset = r->base + r->pos;
    }
    *row = &r->row;
    return MP_OK;
}

mp_status_t bulkio_reader_seek(bulkio_reader_t *r, uint64_t row_no, uint64_t offset)
{
    if (row_no == 0 || offset < r->schema.data_offset) {
        mp_err_set(r->err, sizeof r->err, "%s: bad checkpoint (row %llu, offset %llu)", r->name,
                   (unsigned long long)row_no, (unsigned long long)offset);
        return MP_ERR_ARG;
    }
    if (offset > (uint64_t)INT64_MAX || fseeko(r->f, (off_t)offset, SEEK_SET) != 0) {
        mp_err_set(r->err, sizeof r->err, "%s: cannot seek: %s", r->name, strerror(errno));
        return MP_ERR_IO;
    }
    clearerr(r->f);
    r->len = r->pos = 0;
    r->base = offset;
    r->eof = false;
    r->row_no = row_no - 1;
    r->line_no = 0; /* unknown after a seek: line_no counts from the checkpoint */
    return MP_OK;
}

/* ---- open: sniffing --------------------------------------------------------------- */

/* Choose the delimiter: the candidate whose field count (outside quotes) is the same,
 * and > 1, on all the first records; else the one whose most frequent count (> 1) is
 * shared by the most records; ties go to more fields, then to the order , ; TAB |. */
static char sniff_delim(bulkio_reader_t *r)
{
    static const char cands[] = {',', ';', '\t', '|'};
    char best = ',';
    size_t best_nf = 1;
    size_t best_freq = 0;
    int best_rank = 0; /* 2 consistent, 1 most frequent */
    for (size_t k = 0; k < sizeof cands; k++) {
        size_t pos = r->pos, counts[SNIFF_RECORDS], n = 0;
        frame_t fr;
        while (n < SNIFF_RECORDS) {
            frame_csv(r->win + pos, r->len - pos, r->eof, (unsigned char)cands[k], r->o.row_max,
                      &fr);
            if (fr.kind == FR_MORE || (fr.kind == FR_LONG && fr.discard))
                break;
            if (fr.kind == FR_REC && !fr.bad)
                counts[n++] = fr.nfields;
            pos += fr.next;
        }
        if (n == 0)
            continue;
        /* the most frequent count, and how often */
        size_t mode = 0, freq = 0;
        for (size_t i = 0; i < n; i++) {
            size_t f = 0;
            for (size_t j = 0; j < n; j++)
                f += counts[j] == counts[i];
            if (f > freq || (f == freq && counts[i] > mode)) {
                freq = f;
                mode = counts[i];
            }
        }
        if (mode < 2)
            continue;
        /* all records agree, else the most records sharing one count */
        int rank = freq == n ? 2 : 1;
        if (rank > best_rank || (rank == best_rank && (freq > best_freq ||
                                                       (freq == best_freq && mode > best_nf)))) {
            best = cands[k];
            best_nf = mode;
            best_freq = freq;
            best_rank = rank;
        }
    }
    return best;
}

static bool field_has_at(const char *s, size_t n)
{
    return memchr(s, '@', n) != NULL;
}

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!mp_is_digit((unsigned char)*s))
            return false;
    return true;
}

static mp_status_t copy_header(bulkio_reader_t *r, const char *const *f, const size_t *fl, size_t n)
{
    r->hdr = calloc(n ? n : 1, sizeof *r->hdr);
    if (!r->hdr)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        r->hdr[i] = malloc(fl[i] + 1);
        if (!r->hdr[i])
            return MP_ERR_NOMEM;
        memcpy(r->hdr[i], f[i], fl[i]);
        r->hdr[i][fl[i]] = '\0';
    }
    r->schema.header = (const char *const *)r->hdr;
    return MP_OK;
}

/* Column names for an error message. */
static void list_names(char *out, size_t size, char *const *names, size_t n)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < 20; i++)
        mp_appendf(out, size, &pos, "%s\"%s\"", i ? ", " : "", names[i]);
    if (n > 20)
        mp_appendf(out, size, &pos, ", ...");
}

static mp_status_t sample_csv(bulkio_reader_t *r, char *err, size_t errsize)
{
    size_t start = r->pos;
    uint64_t line0 = r->line_no;
    size_t at[SAMPLE_COLS_MAX] = {0}; /* data rows (after the first) with '@' per column */
    size_t nrows = 0, maxf = 0, first_next = 0, first_lines = 0;
    bool first_at = false, first_name = false, later_at = false, have_first = false;
    char **first = NULL;
    size_t nfirst = 0;
    mp_status_t st = MP_OK;
    frame_t fr;
    size_t first_rank_col = SIZE_MAX;
    int first_rank = 0;
    char norm[64];

    while (nrows < BULKIO_SAMPLE_ROWS + 1) {
        next_frame(r, &fr, true);
        if (fr.kind == FR_MORE || (fr.kind == FR_LONG && fr.discard))
            break;
        if (fr.kind == FR_BLANK) {
            consume(r, fr.next);
            continue;
        }
        memset(&r->row, 0, sizeof r->row);
        build_csv_row(r, &fr, false);
        if (!have_first) {
            have_first = true;
            nfirst = r->nf;
            first = calloc(nfirst ? nfirst : 1, sizeof *first);
            if (!first) {
                st = MP_ERR_NOMEM;
                goto done;
            }
            for (size_t i = 0; i < nfirst; i++) {
                first[i] = strndup(r->fptr[i], r->flen[i]);
                if (!first[i]) {
                    st = MP_ERR_NOMEM;
                    goto done;
                }
                if (field_has_at(r->fptr[i], r->flen[i]))
                    first_at = true;
                bulkio_name_norm(r->fptr[i], r->flen[i], norm, sizeof norm);
                int rank = bulkio_email_name_rank(norm);
                if (rank && (!first_rank || rank < first_rank)) {
                    first_rank = rank;
                    first_rank_col = i;
                    first_name = true;
                }
            }
            consume(r, fr.next);
            first_next = r->pos;
            first_lines = (size_t)(r->line_no - line0);
        } else {
            for (size_t i = 0; i < r->nf && i < SAMPLE_COLS_MAX; i++)
                if (field_has_at(r->fptr[i], r->flen[i])) {
                    at[i]++;
                    later_at = true;
                }
            consume(r, fr.next);
        }
        if (r->nf > maxf)
            maxf = r->nf;
        nrows++;
    }
    r->pos = start;
    r->line_no = line0;
    if (!have_first)
        goto done; /* empty input: nothing to detect */

    /* header? */
    bool hdr;
    const char *col = r->column;
    bool col_num = col && is_number(col);
    if (r->o.header == BULKIO_HEADER_YES)
        hdr = true;
    else if (r->o.header == BULKIO_HEADER_NO)
        hdr = false;
    else {
        hdr = first_name || (!first_at && later_at);
        if (!hdr && col && !col_num)
            for (size_t i = 0; i < nfirst; i++)
                if (mp_str_ieq(mp_str_trim(first[i]) , col))
                    hdr = true;
    }
    r->schema.has_header = hdr;

    /* the first row counts as data when it is not a header */
    if (!hdr)
        for (size_t i = 0; i < nfirst && i < SAMPLE_COLS_MAX; i++)
            if (strchr(first[i], '@'))
                at[i]++;
    size_t ndata = hdr ? nrows - 1 : nrows;

    if (hdr) {
        /* re-read the first record raw to keep the header exactly (first[] was trimmed) */
        next_frame(r, &fr, true);
        while (fr.kind == FR_BLANK) {
            consume(r, fr.next);
            next_frame(r, &fr, true);
        }
        build_csv_row(r, &fr, false);
        r->schema.ncols = r->nf;
        st = copy_header(r, r->fptr, r->flen, r->nf);
        if (st)
            goto done;
        r->pos = start;
        r->line_no = line0;
    } else {
        r->schema.ncols = maxf;
    }

    /* the email column */
    if (col_num) {
        uint64_t n;
        if (!mp_parse_uint(col, 1, SIZE_MAX, &n) || n > (r->schema.ncols > maxf ? r->schema.ncols : maxf)) {
            mp_err_set(err, errsize, "%s: --column %s: the input has only %zu column%s", r->name,
                       col, r->schema.ncols, r->schema.ncols == 1 ? "" : "s");
            st = MP_ERR_ARG;
            goto done;
        }
        r->schema.column = (size_t)n - 1;
    } else if (col) {
        size_t i;
        for (i = 0; hdr && i < r->schema.ncols; i++) {
            char tmp[1024];
            mp_strlcpy(tmp, r->hdr[i], sizeof tmp);
            if (mp_str_ieq(mp_str_trim(tmp), col))
                break;
        }
        if (!hdr || i == r->schema.ncols) {
            char names[600];
            if (hdr)
                list_names(names, sizeof names, r->hdr, r->schema.ncols);
            mp_err_set(err, errsize, "%s: --column %s: no such column%s%s", r->name, col,
                       hdr ? "; the header has " : " (the input has no header line)",
                       hdr ? names : "");
            st = MP_ERR_ARG;
            goto done;
        }
        r->schema.column = i;
    } else {
        size_t best = SIZE_MAX, bestn = 0;
        for (size_t i = 0; i < SAMPLE_COLS_MAX && i < maxf; i++)
            if (at[i] > bestn) {
                bestn = at[i];
                best = i;
            }
        /* '@' counts are kept for the first SAMPLE_COLS_MAX columns only */
        size_t at_named = first_rank_col < SAMPLE_COLS_MAX ? at[first_rank_col] : 1;
        if (hdr && first_name && first_rank_col < r->schema.ncols &&
            (at_named > 0 || ndata == 0 || bestn * 2 <= ndata))
            best = first_rank_col; /* the named column, unless it is clearly not it */
        if (best == SIZE_MAX) {
            mp_err_set(err, errsize,
                       "%s: cannot find the email column: no column of the first %zu rows "
                       "contains '@'; use --column NAME|N",
                       r->name, ndata);
            st = MP_ERR_ARG;
            goto done;
        }
        r->schema.column = best;
    }
    if (hdr) {
        r->pos = first_next;
        r->line_no = line0 + first_lines;
    }
done:
    for (size_t i = 0; first && i < nfirst; i++)
        free(first[i]);
    free(first);
    return st;
}

static mp_status_t sample_nd(bulkio_reader_t *r, char *err, size_t errsize)
{
    size_t start = r->pos;
    uint64_t line0 = r->line_no;
    size_t nobj = 0, nkey = 0;
    int best_rank = 0;
    char *best = NULL;
    mp_status_t st = MP_OK;
    frame_t fr;
    char norm[64];

    for (size_t n = 0; n < BULKIO_SAMPLE_ROWS;) {
        next_frame(r, &fr, true);
        if (fr.kind == FR_MORE || (fr.kind == FR_LONG && fr.discard))
            break;
        if (fr.kind == FR_REC) {
            json_t *j = parse_nd(r, r->win + r->pos, fr.end);
            if (j) {
                nobj++;
                if (r->column && json_object_get(j, r->column))
                    nkey++;
                const char *k;
                json_t *v;
                json_object_foreach(j, k, v) {
                    bulkio_name_norm(k, strlen(k), norm, sizeof norm);
                    int rank = bulkio_email_name_rank(norm);
                    if (rank && json_is_string(v) && (!best_rank || rank < best_rank)) {
                        char *c = strdup(k);
                        if (!c) {
                            json_decref(j);
                            st = MP_ERR_NOMEM;
                            goto done;
                        }
                        free(best);
                        best = c;
                        best_rank = rank;
                    }
                }
                json_decref(j);
            }
            n++;
        }
        consume(r, fr.next);
    }
    r->pos = start;
    r->line_no = line0;
    memset(&r->row, 0, sizeof r->row);
    if (nobj == 0) { /* nothing to check against: use --column as given, rows report errors */
        if (r->column && !(r->key = strdup(r->column)))
            st = MP_ERR_NOMEM;
        r->schema.key = r->key;
        goto done;
    }
    if (r->column) {
        if (is_number(r->column)) {
            mp_err_set(err, errsize, "%s: --column %s: NDJSON input needs a key name, not a number",
                       r->name, r->column);
            st = MP_ERR_ARG;
            goto done;
        }
        if (!nkey) {
            mp_err_set(err, errsize, "%s: --column %s: no such key in the first %zu objects",
                       r->name, r->column, nobj);
            st = MP_ERR_ARG;
            goto done;
        }
        r->key = strdup(r->column);
        if (!r->key)
            st = MP_ERR_NOMEM;
    } else if (best) {
        r->key = best;
        best = NULL;
    } else {
        mp_err_set(err, errsize,
                   "%s: cannot find the email key (email, e-mail, mail, address) in the first %zu "
                   "objects; use --column KEY",
                   r->name, nobj);
        st = MP_ERR_ARG;
    }
    r->schema.key = r->key;
done:
    free(best);
    return st;
}

mp_status_t bulkio_reader_open_file(FILE *f, bool take_ownership, const char *name,
                                    const bulkio_ropts_t *o, bulkio_reader_t **out, char *err,
                                    size_t errsize)
{
    static const bulkio_ropts_t defaults;
    mp_status_t st = MP_ERR_NOMEM;
    bulkio_reader_t *r = calloc(1, sizeof *r);
    *out = NULL;
    if (err && errsize)
        err[0] = '\0';
    if (!r) {
        if (take_ownership)
            fclose(f);
        mp_err_set(err, errsize, "out of memory");
        return MP_ERR_NOMEM;
    }
    r->f = f;
    r->own = take_ownership;
    mp_strlcpy(r->name, name ? name : "input", sizeof r->name);
    r->o = o ? *o : defaults;
    r->o.column = NULL;
    if (!r->o.row_max)
        r->o.row_max = BULKIO_ROW_MAX_DEFAULT;
    if (r->o.row_max > (SIZE_MAX - WIN_EXTRA) / 4) {
        mp_err_set(err, errsize, "row_max too large");
        st = MP_ERR_ARG;
        goto fail;
    }
    if (o && o->column && *o->column) {
        r->column = strdup(o->column);
        if (!r->column)
            goto fail;
        mp_str_trim(r->column);
    }
    r->cap = r->o.row_max + 2 + WIN_EXTRA;
    r->win = malloc(r->cap);
    if (!r->win)
        goto fail;
    mp_buf_init(&r->fb, r->o.row_max + BULKIO_FIELDS_MAX + 16);
    mp_buf_init(&r->ab, r->o.row_max + 16);
    if (csv_init(&r->csv, CSV_APPEND_NULL) != 0)
        goto fail;
    r->csv_init = true;
    csv_set_space_func(&r->csv, no_space);

    st = fill(r);
    if (st) {
        mp_err_set(err, errsize, "%s", r->err);
        goto fail;
    }
    if (r->len >= 2 && ((r->win[0] == 0xFF && r->win[1] == 0xFE) ||
                        (r->win[0] == 0xFE && r->win[1] == 0xFF))) {
        mp_err_set(err, errsize, "%s: UTF-16 input is not supported; convert it to UTF-8", r->name);
        st = MP_ERR_ARG;
        goto fail;
    }
    if (r->len >= 3 && memcmp(r->win, "\xEF\xBB\xBF", 3) == 0) {
        r->pos = 3;
        r->schema.bom = true;
    }
    r->schema.format = r->o.format;
    if (r->schema.format == BULKIO_FMT_AUTO) {
        size_t i = r->pos;
        while (i < r->len && mp_is_space(r->win[i]))
            i++;
        r->schema.format = (i < r->len && r->win[i] == '{') ? BULKIO_FMT_NDJSON : BULKIO_FMT_CSV;
    }
    if (r->schema.format == BULKIO_FMT_NDJSON) {
        r->schema.delim = ',';
        st = sample_nd(r, err, errsize);
    } else {
        if (r->o.delim == '"' || r->o.delim == '\r' || r->o.delim == '\n') {
            mp_err_set(err, errsize, "invalid CSV delimiter");
            st = MP_ERR_ARG;
            goto fail;
        }
        r->schema.delim = r->o.delim ? r->o.delim : sniff_delim(r);
        csv_set_delim(&r->csv, (unsigned char)r->schema.delim);
        st = sample_csv(r, err, errsize);
    }
    if (st) {
        if (st == MP_ERR_NOMEM)
            mp_err_set(err, errsize, "out of memory");
        goto fail;
    }
    r->schema.data_offset = r->base + r->pos;
    st = bulkio_names_find(&r->schema, o ? o->name_column : NULL, &r->schema.names, err,
                           errsize);
    if (st)
        goto fail;
    *out = r;
    return MP_OK;
fail:
    bulkio_reader_free(r);
    return st;
}

mp_status_t bulkio_reader_open(const char *path, const bulkio_ropts_t *o, bulkio_reader_t **out,
                               char *err, size_t errsize)
{
    *out = NULL;
    if (!path) {
        mp_err_set(err, errsize, "no input path");
        return MP_ERR_ARG;
    }
    if (strcmp(path, "-") == 0)
        return bulkio_reader_open_file(stdin, false, "stdin", o, out, err, errsize);
    FILE *f = fopen(path, "rb");
    if (!f) {
        mp_err_set(err, errsize, "%s: cannot open: %s", path, strerror(errno));
        return MP_ERR_IO;
    }
    return bulkio_reader_open_file(f, true, path, o, out, err, errsize);
}

const bulkio_schema_t *bulkio_reader_schema(const bulkio_reader_t *r)
{
    return &r->schema;
}

const char *bulkio_reader_error(const bulkio_reader_t *r)
{
    return r->err;
}

void bulkio_reader_free(bulkio_reader_t *r)
{
    if (!r)
        return;
    if (r->own && r->f)
        fclose(r->f);
    if (r->csv_init)
        csv_free(&r->csv);
    if (r->hdr)
        for (size_t i = 0; i < r->schema.ncols; i++)
            free(r->hdr[i]);
    free(r->hdr);
    free(r->key);
    free(r->column);
    free(r->win);
    free(r->foff);
    free(r->flen);
    free(r->fptr);
    mp_buf_cleanup(&r->fb);
    mp_buf_cleanup(&r->ab);
    free(r);
}
