/*
 * bulkio.h - bulk list input readers (CSV, NDJSON) and output writers.
 *
 * The reader turns a file or stdin into a stream of rows, one at a time, in bounded
 * memory: format detection (NDJSON when the first non-blank byte is '{', else CSV),
 * delimiter and header sniffing, choice of the email column, and per-row errors (a
 * malformed row is reported as a row with an error, it never stops the stream). CSV is
 * RFC 4180 as parsed by libcsv; record framing and bad-quoting recovery are ours.
 *
 * The writer produces the output of a bulk job: every input row with all its columns
 * and mailprobe's columns appended (CSV), or the input object plus a "mailprobe" key
 * (NDJSON); optionally one file per verdict (risky split by its catch-all assessment).
 * Files are written to a temporary name in the destination directory, fsync'd and
 * renamed on commit, so a reader never sees a half-written output.
 *
 * It does NOT check addresses, deduplicate, or know about the job store: the caller
 * feeds rows to the engine and hands results (JSON text from vd_to_json()) back to
 * the writer. Design, formats and limits: docs/internals/bulkio.md.
 *
 * Ownership: bulkio_reader_open*() / bulkio_reader_free(); bulkio_writer_open() /
 * bulkio_writer_free(). A row returned by bulkio_reader_next() is borrowed until the
 * next call on that reader. Not thread-safe per object.
 */
#ifndef MP_BULKIO_H
#define MP_BULKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mailprobe.h"

/** Default maximum size of one input row (bytes, terminator excluded). */
#define BULKIO_ROW_MAX_DEFAULT (1u << 20)
/** Maximum number of fields in one CSV row; more makes the row too_long. */
#define BULKIO_FIELDS_MAX 16384u
/** Rows examined at open to sniff the header and detect the email column. */
#define BULKIO_SAMPLE_ROWS 100u
/** Size of the error buffers callers pass to the open functions. */
#define BULKIO_ERR_MAX 512u

typedef enum {
    BULKIO_FMT_AUTO = 0, /* reader: detect; writer: same as the input */
    BULKIO_FMT_CSV,
    BULKIO_FMT_NDJSON
} bulkio_format_t;

typedef enum {
    BULKIO_HEADER_AUTO = 0, /* sniff */
    BULKIO_HEADER_YES,
    BULKIO_HEADER_NO
} bulkio_header_t;

/* What is wrong with one row; the row is still yielded (and must still be written). */
typedef enum {
    BULKIO_ROW_OK = 0,
    BULKIO_ROW_BAD_QUOTING, /* CSV: unterminated quote, or text after a closing quote */
    BULKIO_ROW_NO_ADDRESS,  /* the email column is missing or empty (or not a JSON string) */
    BULKIO_ROW_NOT_UTF8,    /* CSV: the address is not UTF-8 (or holds NUL); NDJSON: the line */
    BULKIO_ROW_TOO_LONG,    /* longer than row_max, or more than BULKIO_FIELDS_MAX fields */
    BULKIO_ROW_BAD_JSON     /* NDJSON: not a JSON object */
} bulkio_row_err_t;

/** Stable lower-case name of a row error ("bad_quoting", ...; "" for BULKIO_ROW_OK). */
const char *bulkio_row_err_name(bulkio_row_err_t e);

/** Name of a format: "auto", "csv", "ndjson". */
const char *bulkio_format_name(bulkio_format_t f);

/* Reader options. Zero-initialised means: detect everything, 1 MiB rows. */
typedef struct {
    bulkio_format_t format;  /* AUTO: '{' first -> NDJSON, else CSV */
    char delim;              /* CSV delimiter; 0 = sniff among , ; TAB | */
    bulkio_header_t header;  /* CSV header line */
    const char *column;      /* --column: "N" (1-based) or a header name / JSON key; NULL = detect */
    size_t row_max;          /* 0 = BULKIO_ROW_MAX_DEFAULT */
    const char *name_column; /* --name-column: "FULL" or "FIRST,LAST" (names or 1-based
                                numbers / JSON keys); NULL = detect (bulkio_names_find) */
} bulkio_ropts_t;

/* The columns (CSV) or keys (NDJSON) holding a row's person name, when the list has them:
 * a given and a family name, and/or a full name. */
typedef struct {
    bool found;                /* at least one of the three */
    long first, last, full;    /* CSV: 0-based column, -1 when absent */
    char first_key[128], last_key[128], full_key[128]; /* NDJSON: keys, "" when absent */
} bulkio_names_t;

/* What the reader found at open; stable for the reader's life. */
typedef struct {
    bulkio_format_t format;      /* CSV or NDJSON */
    char delim;                  /* CSV delimiter (',' for NDJSON) */
    bool has_header;             /* CSV: the first record is a header (not yielded as a row) */
    bool bom;                    /* a UTF-8 BOM was skipped */
    size_t ncols;                /* CSV: columns (header fields, or the widest sampled row) */
    const char *const *header;   /* CSV: ncols names when has_header, else NULL */
    size_t column;               /* CSV: 0-based index of the email column */
    const char *key;             /* NDJSON: the key holding the address */
    uint64_t data_offset;        /* byte offset of the first data row (after BOM and header) */
    bulkio_names_t names;        /* the name columns (bulkio_names_find at open) */
} bulkio_schema_t;

/* One input row. Borrowed: valid until the next bulkio_reader_next/seek/free. */
typedef struct {
    uint64_t row_no;             /* 1-based data row number (header and blank lines not counted) */
    uint64_t line_no;            /* 1-based physical line (LF count) where the row starts */
    uint64_t offset;             /* byte offset of the row's first byte in the input */
    uint64_t next_offset;        /* byte offset just past the row's terminator (a checkpoint) */
    bulkio_row_err_t err;
    const char *address;         /* trimmed, NUL-terminated; "" when none */
    size_t nfields;              /* CSV: fields of this row (0 for a too_long row) */
    const char *const *fields;   /* CSV: unquoted field values, NUL-terminated */
    const size_t *field_len;     /* CSV: their lengths (a field may hold NUL bytes) */
    const char *raw;             /* the row's bytes as read, terminator excluded (NDJSON: the
                                    object text); NULL for a too_long row */
    size_t raw_len;
} bulkio_row_t;

typedef struct bulkio_reader bulkio_reader_t;

/**
 * Open PATH ("-" = stdin) and read enough of it to detect the format, delimiter, header
 * and email column. Nothing is yielded yet.
 * @param path  file name, or "-" for stdin
 * @param o     options (NULL = all defaults)
 * @param out   receives the reader
 * @param err   receives a one-line message on failure (BULKIO_ERR_MAX bytes)
 * @return MP_OK; MP_ERR_IO (cannot open/read), MP_ERR_ARG (no email column, unknown
 *         --column NAME/N, UTF-16 input, bad options), MP_ERR_NOMEM.
 */
mp_status_t bulkio_reader_open(const char *path, const bulkio_ropts_t *o, bulkio_reader_t **out,
                               char *err, size_t errsize);

/**
 * Same over an open stream (stdin, fmemopen). The reader does not close F unless
 * take_ownership. NAME is used in messages.
 */
mp_status_t bulkio_reader_open_file(FILE *f, bool take_ownership, const char *name,
                                    const bulkio_ropts_t *o, bulkio_reader_t **out, char *err,
                                    size_t errsize);

/** What was detected at open. */
const bulkio_schema_t *bulkio_reader_schema(const bulkio_reader_t *r);

/**
 * Next row. *row is NULL at end of input. A malformed row is a row with row->err set.
 * @return MP_OK; MP_ERR_IO on a read error (message: bulkio_reader_error()); MP_ERR_NOMEM.
 */
mp_status_t bulkio_reader_next(bulkio_reader_t *r, const bulkio_row_t **row);

/**
 * Continue reading at a checkpoint: the next row read is ROW_NO, starting at byte
 * OFFSET (a row's offset, or the previous row's next_offset, as yielded earlier for the
 * same input). Needs a seekable input.
 * @return MP_OK; MP_ERR_IO when the input cannot seek (stdin): re-read and skip instead.
 */
mp_status_t bulkio_reader_seek(bulkio_reader_t *r, uint64_t row_no, uint64_t offset);

/** The last error message ("" when none). */
const char *bulkio_reader_error(const bulkio_reader_t *r);

/** Close (and free) the reader; NULL is a no-op. */
void bulkio_reader_free(bulkio_reader_t *r);

/**
 * Find a list's name columns, as the email column is found: from spec ("--name-column
 * FULL" or "FIRST,LAST", header names case-insensitively or 1-based numbers; JSON keys
 * for NDJSON), else by the usual header names (first_name / firstname / given_name /
 * first, last_name / surname / family_name / last, name / full_name / contact_name...;
 * spaces, '_' and '-' ignored). NDJSON without spec: the usual key names, looked up in
 * each row. Pure; called by the reader at open.
 * @param s     the schema (format, header, ncols)
 * @param spec  the --name-column value, or NULL/"" to detect
 * @param out   the columns found (out->found false: none, which is not an error)
 * @param err   a one-line message when spec names a column the input does not have
 * @return MP_OK; MP_ERR_ARG (bad spec)
 */
mp_status_t bulkio_names_find(const bulkio_schema_t *s, const char *spec, bulkio_names_t *out,
                              char *err, size_t errsize);

/**
 * A row's name values, trimmed ("" when absent or not text).
 * @param n     the name columns (schema->names)
 * @param row   a row as read
 * @param first,last,full receive the values; each size bytes
 */
void bulkio_row_names(const bulkio_names_t *n, const bulkio_row_t *row, char *first,
                      char *last, char *full, size_t size);

/* Writer options. */
typedef struct {
    bulkio_format_t format;   /* CSV or NDJSON; AUTO = same as the input */
    const char *path;         /* output file; "-" = stdout (not atomic); NULL = none */
    const char *split_dir;    /* --split-by-verdict DIR (created if missing); NULL = none */
    bool split_assessed;      /* with split_dir: risky rows assessed likely_valid /
                                 likely_invalid go to risky_likely_valid / _invalid
                                 instead of risky (false: every risky row in risky) */
} bulkio_wopts_t;

typedef struct bulkio_writer bulkio_writer_t;

/**
 * Create the temporary output file(s) now, so that an unwritable path fails before any
 * work. CSV output uses the input's delimiter and header; NDJSON output keys CSV columns
 * by header name (column_N without a header).
 * @param s   the input's schema (bulkio_reader_schema()); copied
 * @return MP_OK; MP_ERR_IO with a message naming the path; MP_ERR_ARG; MP_ERR_NOMEM.
 */
mp_status_t bulkio_writer_open(const bulkio_wopts_t *o, const bulkio_schema_t *s,
                               bulkio_writer_t **out, char *err, size_t errsize);

/**
 * Write one output row for an input row.
 * @param row          the input row (as read; its fields are written back unchanged)
 * @param result_json  the result (vd_to_json() text) or NULL when the row was not checked
 * @param error        error text for the error column / key; NULL = the row's own error name
 * @return MP_OK; MP_ERR_IO (disk full...: message from bulkio_writer_error()); MP_ERR_NOMEM.
 */
mp_status_t bulkio_writer_put(bulkio_writer_t *w, const bulkio_row_t *row,
                              const char *result_json, const char *error);

/** Flush, fsync and rename every output into place. After this, free only. */
mp_status_t bulkio_writer_commit(bulkio_writer_t *w);

/** The last error message ("" when none). */
const char *bulkio_writer_error(const bulkio_writer_t *w);

/** Free; an uncommitted writer removes its temporary files (abort). NULL is a no-op. */
void bulkio_writer_free(bulkio_writer_t *w);

/** What a store needs of a result JSON: its verdict, reason and score, or the error of a
 *  row that was not checked ({"error": ...}). Absent keys are "" (score 0). */
typedef struct {
    char verdict[16];
    char reason[64];
    char error[64];
    int score;
} bulkio_result_head_t;

/**
 * Read the head of a result JSON text (len bytes; a result from another process: any
 * bytes) without building a tree: the top-level "verdict", "reason", "score" and
 * "error". Strings longer than the fields are refused (false), as is anything that is
 * not one well-formed JSON object.
 */
bool bulkio_result_head(const char *json, size_t len, bulkio_result_head_t *out);

/** The columns mailprobe appends to CSV output, in order (NULL-terminated). */
extern const char *const bulkio_result_columns[];

/** The files --split-by-verdict writes (without extension), NULL-terminated: one per
 *  verdict, and (with split_assessed) risky_likely_valid / risky_likely_invalid for risky
 *  rows whose catch_all_assessment says so (the other risky rows stay in risky). */
extern const char *const bulkio_split_files[];

#endif
