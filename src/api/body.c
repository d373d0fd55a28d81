/*
 * body.c - request parameters, JSON job uploads and token files (see body.h).
 *
 * Query strings are decoded as RFC 3986 says (%XX), and '+' stays a '+': addresses use
 * it (user+tag@example.com) far more than form-encoded spaces, which an address cannot
 * hold outside quotes anyway.
 */
#include "api/body.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/str.h"

static int fail(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or
   code points past U+10FFFF, as jansson wants), or 0. Stops at a NUL. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0], cp, min;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

static int fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    /* err goes back on one line of a JSON answer (json_pack refuses what is not UTF-8) and
       may quote request bytes: a decoded %FF or %0A in a parameter name, a JSON key, or a
       character cut by the truncation above. */
    if (errsize)
        api_text_clean(err);
    return -1;
}

void api_text_clean(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (!n || (n == 1 && (*p < 0x20 || *p == 0x7f)))
            *p++ = '?';
        else
            p += n;
    }
}

/* A boolean parameter: 1/true/yes or 0/false/no (empty = true: "?transcript"). */
static int parse_bool(const char *v, bool *out)
{
    if (!*v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) {
        *out = false;
        return 0;
    }
    return -1;
}

/* Seconds (fractions allowed) to ms within the wait limit. */
static int parse_wait(double secs, int64_t *ms)
{
    if (!(secs >= 0) || secs * 1000.0 > (double)API_WAIT_MAX_MS)
        return -1;
    *ms = (int64_t)(secs * 1000.0 + 0.5);
    return 0;
}

typedef int (*param_fn)(const char *key, const char *val, void *arg, char *err, size_t errsize);

/* Split a query string into decoded key=value pairs. */
static int each_param(const char *query, param_fn fn, void *arg, char *err, size_t errsize)
{
    const char *p = query ? query : "";
    char key[64], val[API_URL_MAX];
    char seen[8][64]; /* each parser knows fewer names: a 9th would be refused by fn */
    size_t nseen = 0;
    while (*p) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        if (klen) {
            if (mp_pct_decode(p, klen, key, sizeof key) != 0)
                return fail(err, errsize, "bad parameter name in the query string");
            const char *v = eq ? eq + 1 : p + n;
            size_t vlen = eq ? n - klen - 1 : 0;
            if (mp_pct_decode(v, vlen, val, sizeof val) != 0)
                return fail(err, errsize, "bad value for '%s' (a %%-escape, or too long)",
                            key);
            for (size_t i = 0; i < nseen; i++)
                if (strcmp(seen[i], key) == 0)
                    return fail(err, errsize, "parameter '%s' given twice", key);
            if (fn(key, val, arg, err, errsize) != 0)
                return -1;
            if (nseen < 8)
                mp_strlcpy(seen[nseen++], key, sizeof seen[0]);
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return 0;
}

static int set_email(api_check_req_t *out, const char *v, char *err, size_t errsize)
{
    if (strlen(v) >= sizeof out->email)
        return fail(err, errsize, "email is longer than %u bytes", API_EMAIL_MAX - 1);
    mp_strlcpy(out->email, v, sizeof out->email);
    return 0;
}

static int check_param(const char *k, const char *v, void *arg, char *err, size_t errsize)
{
    api_check_req_t *out = arg;
    if (!strcmp(k, "email"))
        return set_email(out, v, err, errsize);
    if (!strcmp(k, "timeout")) {
        /* plain decimal seconds only: strtod alone would take " 1", "0x10", "inf" */
        size_t digits = strspn(v, "0123456789");
        bool plain = digits && (!v[digits] || (v[digits] == '.' && v[digits + 1] &&
                                                !v[digits + 1 + strspn(v + digits + 1,
                                                                        "0123456789")]));
        char *end;
        double d = strtod(v, &end);
        if (!plain || *end || parse_wait(d, &out->wait_ms) != 0)
            return fail(err, errsize, "timeout must be seconds from 0 to %u",
                        API_WAIT_MAX_MS / 1000);
        return 0;
    }
    if (!strcmp(k, "transcript") || !strcmp(k, "fresh")) {
        bool *b = k[0] == 't' ? &out->transcript : &out->fresh;
        if (parse_bool(v, b) != 0)
            return fail(err, errsize, "%s must be true or false", k);
        return 0;
    }
    return fail(err, errsize, "unknown parameter '%s' (email, timeout, transcript, fresh)", k);
}

static void check_init(api_check_req_t *out)
{
    memset(out, 0, sizeof *out);
    out->wait_ms = -1;
}

int api_check_from_query(const char *query, api_check_req_t *out, char *err, size_t errsize)
{
    check_init(out);
    if (each_param(query, check_param, out, err, errsize) != 0)
        return -1;
    if (!out->email[0])
        return fail(err, errsize, "the email parameter is missing");
    return 0;
}

static int json_bool(json_t *v, const char *name, bool *out, char *err, size_t errsize)
{
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(err, errsize, "%s must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

int api_check_from_json(const char *body, size_t len, api_check_req_t *out, char *err,
                        size_t errsize)
{
    check_init(out);
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return fail(err, errsize, "the body is not JSON: %s (line %d)", je.text, je.line);
    int rc = -1;
    const char *key;
    json_t *v;
    if (!json_is_object(j)) {
        fail(err, errsize, "the body must be a JSON object with an \"email\"");
        goto done;
    }
    json_object_foreach(j, key, v) {
        if (strcmp(key, "email") && strcmp(key, "timeout") && strcmp(key, "transcript") &&
            strcmp(key, "fresh")) {
            fail(err, errsize, "unknown field \"%s\" (email, timeout, transcript, fresh)", key);
            goto done;
        }
    }
    v = json_object_get(j, "email");
    if (!json_is_string(v)) {
        fail(err, errsize, "\"email\" must be a string");
        goto done;
    }
    if (memchr(json_string_value(v), '\0', json_string_length(v))) {
        fail(err, errsize, "\"email\" holds a NUL character");
        goto done;
    }
    if (!json_string_length(v)) {
        fail(err, errsize, "\"email\" is empty");
        goto done;
    }
    if (set_email(out, json_string_value(v), err, errsize) != 0)
        goto done;
    v = json_object_get(j, "timeout");
    if (v && (!json_is_number(v) || parse_wait(json_number_value(v), &out->wait_ms) != 0)) {
        fail(err, errsize, "\"timeout\" must be seconds from 0 to %u", API_WAIT_MAX_MS / 1000);
        goto done;
    }
    if (json_bool(json_object_get(j, "transcript"), "\"transcript\"", &out->transcript, err,
                  errsize) != 0 ||
        json_bool(json_object_get(j, "fresh"), "\"fresh\"", &out->fresh, err, errsize) != 0)
        goto done;
    rc = 0;
done:
    json_decref(j);
    return rc;
}

static int results_param(const char *k, const char *v, void *arg, char *err, size_t errsize)
{
    api_results_req_t *out = arg;
    if (!strcmp(k, "format")) {
        if (strcmp(v, "csv") && strcmp(v, "ndjson"))
            return fail(err, errsize, "format is csv or ndjson, not '%s'", v);
        out->ndjson = v[0] == 'n';
        return 0;
    }
    if (!strcmp(k, "verdict")) {
        if (strcmp(v, "deliverable") && strcmp(v, "undeliverable") && strcmp(v, "risky") &&
            strcmp(v, "unknown"))
            return fail(err, errsize, "verdict is deliverable, undeliverable, risky or "
                        "unknown, not '%s'", v);
        mp_strlcpy(out->verdict, v, sizeof out->verdict);
        return 0;
    }
    return fail(err, errsize, "unknown parameter '%s' (format, verdict)", k);
}

int api_results_from_query(const char *query, api_results_req_t *out, char *err,
                           size_t errsize)
{
    memset(out, 0, sizeof *out);
    return each_param(query, results_param, out, err, errsize);
}

int api_webhook_check(const char *url, char *err, size_t errsize)
{
    if (strncmp(url, "http://", 7) != 0)
        return fail(err, errsize, "webhook must be an http:// URL");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return fail(err, errsize, "webhook URL holds a space or a control character");
    const char *host = url + 7;
    size_t hl;
    if (*host == '[') { /* an IPv6 literal: [::1] */
        const char *close = strchr(host, ']');
        if (!close || close == host + 1)
            return fail(err, errsize, "webhook URL has a bad IPv6 address");
        hl = (size_t)(close - host) + 1;
        if (host[hl] && !strchr(":/?#", host[hl]))
            return fail(err, errsize, "webhook URL has a bad IPv6 address");
    } else {
        hl = strcspn(host, ":/?#");
    }
    if (!hl)
        return fail(err, errsize, "webhook URL has no host");
    if (host[hl] == ':') {
        uint64_t port;
        char digits[8];
        size_t dl = strcspn(host + hl + 1, "/?#");
        if (!dl || dl >= sizeof digits)
            return fail(err, errsize, "webhook URL has a bad port");
        memcpy(digits, host + hl + 1, dl);
        digits[dl] = '\0';
        if (!mp_parse_uint(digits, 1, 65535, &port))
            return fail(err, errsize, "webhook URL has a bad port");
    }
    return 0;
}

static int set_job_opt(api_job_opts_t *o, const char *k, const char *v, char *err,
                       size_t errsize)
{
    if (!strcmp(k, "column")) {
        if (!*v || strlen(v) >= sizeof o->column)
            return fail(err, errsize, "column must be a name or a number (1-based)");
        mp_strlcpy(o->column, v, sizeof o->column);
        return 0;
    }
    if (!strcmp(k, "webhook")) {
        if (strlen(v) >= sizeof o->webhook)
            return fail(err, errsize, "webhook URL longer than %u bytes", API_URL_MAX - 1);
        if (api_webhook_check(v, err, errsize) != 0)
            return -1;
        mp_strlcpy(o->webhook, v, sizeof o->webhook);
        return 0;
    }
    return fail(err, errsize, "unknown job option '%s' (column, webhook)", k);
}

static int job_param(const char *k, const char *v, void *arg, char *err, size_t errsize)
{
    return set_job_opt(arg, k, v, err, errsize);
}

int api_job_opts_from_query(const char *query, api_job_opts_t *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    return each_param(query, job_param, out, err, errsize);
}

/* One element of the array as an NDJSON line. */
static int put_element(json_t *el, size_t idx, FILE *out, char *err, size_t errsize)
{
    json_t *line = NULL;
    if (json_is_string(el))
        line = json_pack("{sO}", "email", el);
    else if (json_is_object(el))
        line = json_incref(el);
    else
        return fail(err, errsize, "element %zu must be an address or an object", idx + 1);
    if (!line)
        return fail(err, errsize, "out of memory");
    int rc = json_dumpf(line, out, JSON_COMPACT | JSON_ENSURE_ASCII) == 0 && fputc('\n', out) != EOF
                 ? 0
                 : fail(err, errsize, "cannot write the job's input");
    json_decref(line);
    return rc;
}

int api_job_json_to_ndjson(const char *body, size_t len, FILE *out, api_job_opts_t *opts,
                           size_t *rows, char *err, size_t errsize)
{
    *rows = 0;
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return fail(err, errsize, "the body is not JSON: %s (line %d)", je.text, je.line);
    int rc = -1;
    json_t *arr = j;
    if (json_is_object(j)) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            if (!strcmp(key, "emails"))
                continue;
            if (!json_is_string(v)) {
                fail(err, errsize, "\"%s\" must be a string", key);
                goto done;
            }
            if (set_job_opt(opts, key, json_string_value(v), err, errsize) != 0)
                goto done;
        }
        arr = json_object_get(j, "emails");
    }
    if (!json_is_array(arr)) {
        fail(err, errsize, "send a JSON array of addresses, or {\"emails\": [...]}");
        goto done;
    }
    if (!json_array_size(arr)) {
        fail(err, errsize, "the job has no addresses");
        goto done;
    }
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el) {
        if (put_element(el, i, out, err, errsize) != 0)
            goto done;
        (*rows)++;
    }
    rc = fflush(out) == 0 ? 0 : fail(err, errsize, "cannot write the job's input");
done:
    json_decref(j);
    return rc;
}

int api_tokens_parse(const char *text, size_t len, api_tokens_t *out, char *err,
                     size_t errsize)
{
    memset(out, 0, sizeof *out);
    size_t line_no = 0, pos = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3; /* a BOM from an editor is not part of the first token */
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            n--;
        while (n && (*line == ' ' || *line == '\t')) {
            line++;
            n--;
        }
        if (!n || *line == '#')
            continue;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)line[i] <= ' ' || line[i] == 0x7f) {
                api_tokens_free(out);
                return fail(err, errsize, "line %zu: a token has no spaces or control "
                            "characters", line_no);
            }
        if (n < API_TOKEN_MIN || n > API_TOKEN_MAX) {
            api_tokens_free(out);
            return fail(err, errsize, "line %zu: a token has %u to %u characters", line_no,
                        API_TOKEN_MIN, API_TOKEN_MAX);
        }
        char **nt = realloc(out->tok, (out->n + 1) * sizeof *nt);
        char *t = nt ? strndup(line, n) : NULL;
        if (nt)
            out->tok = nt;
        if (!t) {
            api_tokens_free(out);
            return fail(err, errsize, "out of memory");
        }
        out->tok[out->n++] = t;
    }
    if (!out->n)
        return fail(err, errsize, "no token in the file");
    return 0;
}

int api_tokens_find(const api_tokens_t *t, const char *given)
{
    size_t gl = strlen(given);
    int found = -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t tl = strlen(t->tok[i]);
        unsigned char diff = (unsigned char)(tl != gl);
        for (size_t k = 0; k < tl; k++)
            diff |= (unsigned char)(t->tok[i][k] ^ (k < gl ? given[k] : 0));
        if (!diff && found < 0)
            found = (int)i;
    }
    return found;
}

void api_tokens_free(api_tokens_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->tok[i]);
    free(t->tok);
    memset(t, 0, sizeof *t);
}
