/*
 * names.c - the name columns of a bulk list (first/last/full name), found like the email
 * column: by --name-column, or by the usual header names. The values feed the naming-
 * pattern evidence of accept-all domains (evidence/names.h); this file only finds them.
 * Does not: fold or interpret names, fail a list that has none.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkio/bulkio.h"
#include "bulkio/bulkio_int.h"
#include "util/str.h"

/* Header names, normalised by bulkio_name_norm (lower case, letters and digits only),
 * most specific first. */
static const char *const first_names[] = {"firstname", "givenname", "first", "fname",
                                          "forename", "prenom", "vorname", "nombre",
                                          "contactfirstname", NULL};
static const char *const last_names[] = {"lastname", "surname", "familyname", "last",
                                         "lname", "nachname", "apellido", "apellidos",
                                         "contactlastname", NULL};
static const char *const full_names[] = {"fullname", "name", "contactname", "displayname",
                                         "personname", "contact", NULL};

static int rank(const char *norm, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(norm, list[i]) == 0)
            return i + 1;
    return 0;
}

/* One spec item (a header name or a 1-based number) -> column index, or -1. */
static long resolve(const bulkio_schema_t *s, const char *item)
{
    uint64_t n;
    if (mp_parse_uint(item, 1, 1u << 20, &n))
        return n <= s->ncols ? (long)n - 1 : -1;
    for (size_t i = 0; s->header && i < s->ncols; i++) {
        char tmp[1024];
        mp_strlcpy(tmp, s->header[i], sizeof tmp);
        if (mp_str_ieq(mp_str_trim(tmp), item))
            return (long)i;
    }
    return -1;
}

mp_status_t bulkio_names_find(const bulkio_schema_t *s, const char *spec, bulkio_names_t *out,
                              char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    out->first = out->last = out->full = -1;
    if (spec && *spec) {
        char a[256], b[256] = "";
        const char *comma = strchr(spec, ',');
        if (comma) {
            mp_strlcpyn(a, spec, (size_t)(comma - spec), sizeof a);
            mp_strlcpy(b, comma + 1, sizeof b);
        } else
            mp_strlcpy(a, spec, sizeof a);
        char *fa = mp_str_trim(a), *fb = mp_str_trim(b);
        if (!*fa || (comma && !*fb) || strchr(fb, ',')) {
            snprintf(err, errsize, "--name-column %s: give FULL or FIRST,LAST", spec);
            return MP_ERR_ARG;
        }
        if (s->format == BULKIO_FMT_NDJSON) {
            mp_strlcpy(comma ? out->first_key : out->full_key, fa, sizeof out->first_key);
            if (comma)
                mp_strlcpy(out->last_key, fb, sizeof out->last_key);
            out->found = true;
            return MP_OK;
        }
        long ia = resolve(s, fa), ib = comma ? resolve(s, fb) : 0;
        if (ia < 0 || ib < 0) {
            snprintf(err, errsize, "--name-column %s: no such column%s", ia < 0 ? fa : fb,
                     s->header ? "" : " (the input has no header line: give numbers)");
            return MP_ERR_ARG;
        }
        if (comma) {
            out->first = ia;
            out->last = ib;
        } else
            out->full = ia;
        out->found = true;
        return MP_OK;
    }
    if (s->format == BULKIO_FMT_NDJSON) {
        out->found = true; /* looked up per row by the usual keys */
        return MP_OK;
    }
    int bf = 0, bl = 0, bn = 0;
    for (size_t i = 0; s->header && i < s->ncols; i++) {
        if ((long)i == (long)s->column)
            continue;
        char norm[64];
        bulkio_name_norm(s->header[i], strlen(s->header[i]), norm, sizeof norm);
        int r;
        if ((r = rank(norm, first_names)) && (!bf || r < bf)) {
            bf = r;
            out->first = (long)i;
        } else if ((r = rank(norm, last_names)) && (!bl || r < bl)) {
            bl = r;
            out->last = (long)i;
        } else if ((r = rank(norm, full_names)) && (!bn || r < bn)) {
            bn = r;
            out->full = (long)i;
        }
    }
    out->found = out->first >= 0 || out->last >= 0 || out->full >= 0;
    return MP_OK;
}

static void field(const bulkio_row_t *row, long i, char *out, size_t size)
{
    out[0] = '\0';
    if (i < 0 || (size_t)i >= row->nfields || !row->fields)
        return;
    mp_strlcpyn(out, row->fields[i], row->field_len[i], size);
    char *t = mp_str_trim(out);
    if (t != out)
        memmove(out, t, strlen(t) + 1);
}

static void key(json_t *j, const char *given, const char *const *usual, char *out, size_t size)
{
    out[0] = '\0';
    json_t *v = NULL;
    if (given && *given)
        v = json_object_get(j, given);
    else {
        /* the usual names, compared normalised: "First Name", "first_name", "firstName" */
        const char *k;
        json_t *val;
        int best = 0;
        json_object_foreach(j, k, val) {
            char norm[64];
            bulkio_name_norm(k, strlen(k), norm, sizeof norm);
            int r = rank(norm, usual);
            if (r && (!best || r < best) && json_is_string(val)) {
                best = r;
                v = val;
            }
        }
    }
    if (json_is_string(v)) {
        mp_strlcpy(out, json_string_value(v), size);
        char *t = mp_str_trim(out);
        if (t != out)
            memmove(out, t, strlen(t) + 1);
    }
}

void bulkio_row_names(const bulkio_names_t *n, const bulkio_row_t *row, char *first,
                      char *last, char *full, size_t size)
{
    first[0] = last[0] = full[0] = '\0';
    if (!n->found || !row)
        return;
    if (n->first >= 0 || n->last >= 0 || n->full >= 0) {
        field(row, n->first, first, size);
        field(row, n->last, last, size);
        field(row, n->full, full, size);
        return;
    }
    if (!row->raw || row->nfields) /* a CSV row without name columns, or a too long row */
        return;
    json_t *j = json_loadb(row->raw, row->raw_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    bool given = n->first_key[0] || n->last_key[0] || n->full_key[0];
    if (!given || n->first_key[0])
        key(j, n->first_key, first_names, first, size);
    if (!given || n->last_key[0])
        key(j, n->last_key, last_names, last, size);
    if (!given || n->full_key[0])
        key(j, n->full_key, full_names, full, size);
    json_decref(j);
}
