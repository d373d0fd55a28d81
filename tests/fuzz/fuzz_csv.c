/*
 * fuzz_csv.c - libFuzzer target for the bulk list reader (src/bulkio/reader.c).
 *
 * The first input byte picks the options (format, delimiter, header, column, a small or
 * the default row_max); the rest is the file, read through fmemopen(). Checks the
 * reader's invariants (abort() on violation):
 *  - rows are numbered 1, 2, 3... and their byte ranges are increasing and inside input;
 *  - an address is trimmed and a row without error has a non-empty UTF-8 address;
 *  - a too_long row has no fields and no raw text; other raws fit within row_max;
 *  - seeking back to the third row's checkpoint yields the same row again.
 * The same bytes also go through the result-column scanner (bulkio_result_cols), whose
 * columns must lie inside its scratch buffer.
 * Replayed over tests/fuzz/corpus/csv/ in every build (replay.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkio/bulkio.h"
#include "bulkio/bulkio_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char delims[] = {0, ',', ';', '\t'};
    static const char *const cols[] = {NULL, "2", "email", "1"};
    uint8_t sel = data[0];
    bulkio_ropts_t o = {
        .format = (bulkio_format_t)(sel % 3),
        .delim = delims[(sel >> 2) & 3],
        .header = (bulkio_header_t)((sel >> 4) % 3),
        .column = cols[(sel >> 6) & 3],
        .row_max = (sel & 0x20) ? 0 : 64,
    };
    size_t row_max = o.row_max ? o.row_max : BULKIO_ROW_MAX_DEFAULT;
    data++;
    size--;

    if (size <= 65536) {
        char *s = malloc(size + 1);
        if (s) {
            memcpy(s, data, size);
            s[size] = '\0';
            mp_buf_t scratch;
            size_t off[BULKIO_NCOLS_JSON], len[BULKIO_NCOLS_JSON];
            mp_buf_init(&scratch, 1u << 20);
            if (bulkio_result_cols(s, &scratch, off, len))
                for (size_t i = 0; i < BULKIO_NCOLS_JSON; i++)
                    if (off[i] + len[i] > scratch.len)
                        abort();
            mp_buf_cleanup(&scratch);
            free(s);
        }
    }

    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return 0;
    bulkio_reader_t *r = NULL;
    char err[BULKIO_ERR_MAX];
    if (bulkio_reader_open_file(f, true, "fuzz", &o, &r, err, sizeof err) != MP_OK) {
        if (!err[0])
            abort(); /* a failure always says why */
        return 0;
    }
    const bulkio_row_t *row;
    uint64_t n = 0, last_end = bulkio_reader_schema(r)->data_offset;
    uint64_t off3 = 0;
    char *raw3 = NULL, *addr3 = NULL;
    size_t raw3_len = 0;
    int err3 = -1;
    while (bulkio_reader_next(r, &row) == MP_OK && row) {
        n++;
        if (row->row_no != n)
            abort();
        if (row->offset < last_end || row->next_offset <= row->offset || row->next_offset > size)
            abort();
        last_end = row->next_offset;
        size_t al = strlen(row->address);
        if (al && (is_space((unsigned char)row->address[0]) ||
                   is_space((unsigned char)row->address[al - 1])))
            abort();
        if (row->err == BULKIO_ROW_OK && al == 0)
            abort();
        if (row->err == BULKIO_ROW_TOO_LONG && (row->nfields || row->raw))
            abort();
        if (row->raw && row->raw_len > row_max + 1)
            abort();
        if (row->nfields > BULKIO_FIELDS_MAX)
            abort();
        for (size_t i = 0; i < row->nfields; i++)
            if (row->fields[i][row->field_len[i]] != '\0')
                abort();
        if (n == 3) {
            off3 = row->offset;
            err3 = (int)row->err;
            addr3 = strdup(row->address);
            raw3_len = row->raw ? row->raw_len : 0;
            raw3 = malloc(raw3_len + 1);
            if (raw3 && row->raw)
                memcpy(raw3, row->raw, raw3_len);
        }
    }
    if (n >= 3 && addr3 && raw3 && bulkio_reader_seek(r, 3, off3) == MP_OK) {
        if (bulkio_reader_next(r, &row) != MP_OK || !row || row->row_no != 3 ||
            (int)row->err != err3 || strcmp(row->address, addr3) != 0 ||
            (row->raw ? row->raw_len : 0) != raw3_len ||
            (raw3_len && memcmp(row->raw, raw3, raw3_len) != 0))
            abort();
    }
    free(raw3);
    free(addr3);
    bulkio_reader_free(r);
    return 0;
}
