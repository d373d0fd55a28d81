/*
 * fuzz_api_body.c - libFuzzer target for what the HTTP API reads from requests
 * (src/api/body.c): check parameters (query string and JSON body), job options, jobs sent
 * as JSON, webhook URLs and the token file.
 *
 * The first input byte picks the parser (byte % 8: 0 check query, 1 check JSON, 2 job
 * options query, 3 jobs JSON, 4 webhook URL, 5 token file, 6 and 7 all of them in turn);
 * the rest is the request text. The query parsers and the webhook check get a
 * NUL-terminated copy. Checks (abort() on violation):
 *  - every call returns 0 or -1, and -1 always comes with a message that is one line of
 *    well-formed UTF-8 (the server puts it in a JSON answer);
 *  - an accepted check request has a non-empty terminated address shorter than
 *    API_EMAIL_MAX and a wait of -1 or 0..API_WAIT_MAX_MS; the address, sent again
 *    %-encoded in a query or as a JSON string, reads back the same;
 *  - accepted job options hold a terminated column and a webhook that passes
 *    api_webhook_check again;
 *  - a jobs upload writes exactly *rows lines, each a JSON object; those lines sent back
 *    as an array produce the same bytes (the conversion is idempotent);
 *  - an accepted webhook starts with http:// and holds no space or control byte;
 *  - a parsed token file has 1+ tokens of API_TOKEN_MIN..API_TOKEN_MAX visible bytes,
 *    each found by api_tokens_find (at its own index or an earlier equal one), while its
 *    prefixes and extensions are not; a refused file leaves nothing allocated.
 * Replayed over tests/fuzz/corpus/api_body/ in every build (replay.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 65536u

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or
   code points past U+10FFFF; what jansson accepts), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min, cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* The server sends err in a JSON answer (api_error: json_pack needs UTF-8), on one line
   (body.h). */
static void check_msg(const char *err)
{
    const unsigned char *p = (const unsigned char *)err;
    while (*p) {
        size_t n = utf8_len(p);
        if (!n || (n == 1 && (*p < 0x20 || *p == 0x7f)))
            abort();
        p += n;
    }
}

static void check_err(int rc, const char *err, size_t errsize)
{
    if (rc != 0 && rc != -1)
        abort();
    if (rc == 0)
        return; /* err is left alone on success */
    if (memchr(err, '\0', errsize) == NULL || !err[0])
        abort(); /* a refusal always says why, in a terminated string */
    check_msg(err);
}

static void check_req(const api_check_req_t *r)
{
    size_t n = strnlen(r->email, sizeof r->email);
    if (n == 0 || n >= sizeof r->email)
        abort();
    if (r->wait_ms != -1 && (r->wait_ms < 0 || r->wait_ms > (int64_t)API_WAIT_MAX_MS))
        abort();
}

/* The address, %-encoded into a query, must read back the same. */
static void requery(const api_check_req_t *r)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(r->email);
    char *q = malloc(64 + 3 * n);
    if (!q)
        return;
    memcpy(q, "email=", 6);
    size_t o = 6;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)r->email[i];
        q[o++] = '%';
        q[o++] = hex[c >> 4];
        q[o++] = hex[c & 15];
    }
    q[o] = '\0';
    api_check_req_t r2;
    char err[256];
    /* the decoding buffer bounds the decoded bytes, so every accepted address fits */
    int rc = api_check_from_query(q, &r2, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc != 0 || strcmp(r2.email, r->email) != 0)
        abort();
    free(q);
}

/* The address as a JSON string must read back the same (if it is UTF-8: jansson
   refuses anything else, which the query form lets through). */
static void rejson(const api_check_req_t *r)
{
    json_t *s = json_string(r->email);
    if (!s)
        return; /* not UTF-8 */
    json_t *o = json_pack("{so}", "email", s);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body)
        return;
    api_check_req_t r2;
    char err[256];
    int rc = api_check_from_json(body, strlen(body), &r2, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc != 0 || strcmp(r2.email, r->email) != 0)
        abort();
    free(body);
}

static void check_opts(const api_job_opts_t *o)
{
    if (!memchr(o->column, '\0', sizeof o->column) || !memchr(o->webhook, '\0', sizeof o->webhook))
        abort();
    if (o->webhook[0]) {
        char err[256];
        if (api_webhook_check(o->webhook, err, sizeof err) != 0)
            abort();
    }
}

static void fuzz_check_query(const char *s)
{
    api_check_req_t r;
    char err[256];
    int rc = api_check_from_query(s, &r, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc == 0) {
        check_req(&r);
        requery(&r);
        rejson(&r);
    }
}

static void fuzz_check_json(const uint8_t *data, size_t size)
{
    api_check_req_t r;
    char err[256];
    int rc = api_check_from_json((const char *)data, size, &r, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc == 0) {
        check_req(&r);
        rejson(&r);
    }
}

static void fuzz_opts_query(const char *s)
{
    api_job_opts_t o;
    char err[256];
    int rc = api_job_opts_from_query(s, &o, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc == 0)
        check_opts(&o);
}

/* Run the jobs conversion into memory; returns its rc, *out (malloc'd) what was written. */
static int jobs(const char *body, size_t len, api_job_opts_t *opts, size_t *rows, char **out,
                size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    FILE *f = open_memstream(out, outlen);
    if (!f)
        return -2;
    char err[256];
    int rc = api_job_json_to_ndjson(body, len, f, opts, rows, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (fclose(f) != 0) {
        free(*out);
        *out = NULL;
        return -2;
    }
    return rc;
}

static void fuzz_jobs_json(const uint8_t *data, size_t size)
{
    api_job_opts_t opts;
    memset(&opts, 0, sizeof opts);
    size_t rows = 0, len = 0;
    char *buf = NULL;
    int rc = jobs((const char *)data, size, &opts, &rows, &buf, &len);
    if (rc == -2)
        return;
    check_opts(&opts);

    /* exactly rows lines, each a JSON object */
    size_t lines = 0;
    for (size_t p = 0; p < len;) {
        const char *nl = memchr(buf + p, '\n', len - p);
        if (!nl)
            abort(); /* every line ends with '\n' */
        size_t n = (size_t)(nl - (buf + p));
        json_t *j = json_loadb(buf + p, n, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
        p += n + 1;
        lines++;
    }
    if (lines != rows)
        abort();
    if (rc == 0 && rows == 0)
        abort();

    /* idempotent: the lines, sent back as an array, give the same bytes */
    if (rc == 0) {
        char *arr = malloc(len + 2);
        if (!arr)
            goto done;
        size_t a = 0;
        arr[a++] = '[';
        for (size_t i = 0; i < len; i++)
            arr[a++] = buf[i] == '\n' ? (i + 1 == len ? ']' : ',') : buf[i];
        api_job_opts_t opts2;
        memset(&opts2, 0, sizeof opts2);
        size_t rows2 = 0, len2 = 0;
        char *buf2 = NULL;
        int rc2 = jobs(arr, a, &opts2, &rows2, &buf2, &len2);
        if (rc2 != -2 && (rc2 != 0 || rows2 != rows || len2 != len || memcmp(buf, buf2, len)))
            abort();
        free(buf2);
        free(arr);
    }
done:
    free(buf);
}

static void fuzz_webhook(const char *s)
{
    char err[256];
    int rc = api_webhook_check(s, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc == 0) {
        if (strncmp(s, "http://", 7) != 0)
            abort();
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                abort();
    }
}

static void fuzz_tokens(const uint8_t *data, size_t size)
{
    api_tokens_t t;
    char err[256];
    memset(&t, 0xa5, sizeof t); /* parse must not read what was there */
    int rc = api_tokens_parse((const char *)data, size, &t, err, sizeof err);
    check_err(rc, err, sizeof err);
    if (rc != 0) {
        if (t.tok || t.n)
            abort();
        return;
    }
    if (t.n == 0)
        abort();
    char probe[API_TOKEN_MAX + 2];
    /* bounded: find is linear in the number of tokens */
    for (size_t i = 0; i < t.n && i < 32; i++) {
        const char *k = t.tok[i];
        size_t n = strlen(k);
        if (n < API_TOKEN_MIN || n > API_TOKEN_MAX)
            abort();
        for (size_t c = 0; c < n; c++)
            if ((unsigned char)k[c] <= ' ' || k[c] == 0x7f)
                abort();
        int f = api_tokens_find(&t, k);
        if (f < 0 || (size_t)f > i || strcmp(t.tok[f], k) != 0)
            abort();
        /* a prefix or an extension finds only a token equal to it */
        memcpy(probe, k, n - 1);
        probe[n - 1] = '\0';
        f = api_tokens_find(&t, probe);
        if (f >= 0 && strcmp(t.tok[f], probe) != 0)
            abort();
        memcpy(probe, k, n);
        probe[n] = 'x';
        probe[n + 1] = '\0';
        f = api_tokens_find(&t, probe);
        if (f >= 0 && strcmp(t.tok[f], probe) != 0)
            abort();
    }
    if (api_tokens_find(&t, "") != -1)
        abort();
    api_tokens_free(&t);
    if (t.tok || t.n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX)
        return 0;
    unsigned sel = data[0] % 8u;
    data++;
    size--;

    char *s = malloc(size + 1); /* for the parsers of C strings */
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    if (sel == 0 || sel >= 6)
        fuzz_check_query(s);
    if (sel == 1 || sel >= 6)
        fuzz_check_json(data, size);
    if (sel == 2 || sel >= 6)
        fuzz_opts_query(s);
    if (sel == 3 || sel >= 6)
        fuzz_jobs_json(data, size);
    if (sel == 4 || sel >= 6)
        fuzz_webhook(s);
    if (sel == 5 || sel >= 6)
        fuzz_tokens(data, size);
    free(s);
    return 0;
}
