/*
 * jscan.c - pull the CSV result columns out of a result JSON text without building a
 * tree; see bulkio_int.h.
 *
 * Why not jansson: json_loads() of a full vd_to_json() result builds a hash table per
 * object and costs tens of microseconds, more than the whole per-address CPU budget of
 * a bulk run (issue 6: 50 us). This scanner reads the object once, keeps only the
 * fifteen values it needs, skips everything else, and rejects malformed JSON (the
 * caller then writes the row as "bad_result"). Nesting is bounded (JSCAN_DEPTH).
 * bulkio_result_head() reads the four top-level values a store needs (a pool's results
 * arrive as JSON text from the workers), with the same scanner.
 */
#include "bulkio/bulkio.h"
#include "bulkio/bulkio_int.h"

#include <string.h>

#define JSCAN_DEPTH 64

typedef struct {
    const char *p, *e;
    mp_buf_t *out;
} js_t;

static void ws(js_t *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool hex4(js_t *j, unsigned *v)
{
    if (j->e - j->p < 4)
        return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return false;
        *v = *v << 4 | (unsigned)h;
    }
    j->p += 4;
    return true;
}

static bool put_utf8(mp_buf_t *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return mp_buf_add(b, u, n) == MP_OK;
}

/* A string at j->p (at its opening quote); decoded into out when out is not NULL. */
static bool str(js_t *j, mp_buf_t *out)
{
    if (j->p >= j->e || *j->p != '"')
        return false;
    j->p++;
    const char *run = j->p;
    while (j->p < j->e) {
        char c = *j->p;
        if (c == '"') {
            if (out && mp_buf_add(out, run, (size_t)(j->p - run)))
                return false;
            j->p++;
            return true;
        }
        if ((unsigned char)c < 0x20)
            return false;
        if (c != '\\') {
            j->p++;
            continue;
        }
        if (out && mp_buf_add(out, run, (size_t)(j->p - run)))
            return false;
        j->p++;
        if (j->p >= j->e)
            return false;
        char x = *j->p++, lit = 0;
        switch (x) {
        case '"': case '\\': case '/': lit = x; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(j, &cp))
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->e - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
                    return false;
                j->p += 2;
                if (!hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF)
                return false;
            if (out && !put_utf8(out, cp))
                return false;
            break;
        }
        default:
            return false;
        }
        if (lit && out && mp_buf_add(out, &lit, 1))
            return false;
        run = j->p;
    }
    return false;
}

static bool lit(js_t *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->e - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool num(js_t *j)
{
    const char *s = j->p;
    if (j->p < j->e && *j->p == '-')
        j->p++;
    size_t digits = 0;
    while (j->p < j->e && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
                           *j->p == 'E' || *j->p == '+' || *j->p == '-')) {
        digits += *j->p >= '0' && *j->p <= '9';
        j->p++;
    }
    return digits > 0 && j->p > s;
}

static bool skip(js_t *j, int depth);

/* Members of an object (at its '{'), calling on(key) for each; on returns false to skip. */
typedef bool (*member_fn)(js_t *j, const char *key, size_t klen, void *arg, bool *handled);

static bool object(js_t *j, int depth, member_fn on, void *arg)
{
    char key[32];
    if (depth > JSCAN_DEPTH || j->p >= j->e || *j->p != '{')
        return false;
    j->p++;
    ws(j);
    if (j->p < j->e && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        ws(j);
        const char *ks = j->p + 1;
        if (!str(j, NULL))
            return false;
        size_t klen = (size_t)(j->p - 1 - ks);
        size_t kc = klen < sizeof key - 1 ? klen : sizeof key - 1;
        memcpy(key, ks, kc); /* our keys have no escapes; others only need to not match */
        key[kc] = '\0';
        ws(j);
        if (j->p >= j->e || *j->p++ != ':')
            return false;
        ws(j);
        bool handled = false;
        if (on && klen < sizeof key && !on(j, key, klen, arg, &handled))
            return false;
        if (!handled && !skip(j, depth + 1))
            return false;
        ws(j);
        if (j->p >= j->e)
            return false;
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == '}') {
            j->p++;
            return true;
        }
        return false;
    }
}

static bool skip(js_t *j, int depth)
{
    if (depth > JSCAN_DEPTH || j->p >= j->e)
        return false;
    switch (*j->p) {
    case '{':
        return object(j, depth, NULL, NULL);
    case '[':
        j->p++;
        ws(j);
        if (j->p < j->e && *j->p == ']') {
            j->p++;
            return true;
        }
        for (;;) {
            ws(j);
            if (!skip(j, depth + 1))
                return false;
            ws(j);
            if (j->p >= j->e)
                return false;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == ']') {
                j->p++;
                return true;
            }
            return false;
        }
    case '"':
        return str(j, NULL);
    case 't':
        return lit(j, "true");
    case 'f':
        return lit(j, "false");
    case 'n':
        return lit(j, "null");
    default:
        return num(j);
    }
}

/* A scalar value as column text: strings decoded, numbers as written, booleans as
 * true/false, null as empty. Objects and arrays are skipped (empty column). */
static bool scalar(js_t *j, size_t *off, size_t *len)
{
    *off = j->out->len;
    *len = 0;
    if (j->p >= j->e)
        return false;
    const char *s = j->p;
    bool ok;
    switch (*j->p) {
    case '"':
        ok = str(j, j->out);
        break;
    case 't':
        ok = lit(j, "true") && mp_buf_add(j->out, "true", 4) == MP_OK;
        break;
    case 'f':
        ok = lit(j, "false") && mp_buf_add(j->out, "false", 5) == MP_OK;
        break;
    case 'n':
        ok = lit(j, "null");
        break;
    case '{':
    case '[':
        ok = skip(j, 1);
        break;
    default:
        ok = num(j) && mp_buf_add(j->out, s, (size_t)(j->p - s)) == MP_OK;
    }
    *len = j->out->len - *off;
    return ok;
}

typedef struct {
    const char *name;
    size_t col;
} jkey_t;

/* Column numbers follow bulkio_result_columns[] (minus the final "error"). */
static const jkey_t top_keys[] = {{"verdict", 0}, {"reason", 1}, {"score", 2}, {"suggestion", 7}, {NULL, 0}};
static const jkey_t flag_keys[] = {{"disposable", 3}, {"free", 4}, {"role", 5}, {"gibberish", 6}, {NULL, 0}};
static const jkey_t smtp_keys[] = {{"mx_host", 8}, {"code", 9}, {"enhanced", 10}, {"message", 11},
                                  {"catch_all", 12}, {NULL, 0}};
static const jkey_t assess_keys[] = {{"assessment", 13}, {"probability", 14}, {NULL, 0}};

typedef struct {
    const jkey_t *keys;
    size_t *off, *len;
} level_t;

static bool on_member(js_t *j, const char *key, size_t klen, void *arg, bool *handled)
{
    (void)klen;
    const level_t *lv = arg;
    if (lv->keys == top_keys && j->p < j->e && *j->p == '{') {
        const jkey_t *sub = strcmp(key, "flags") == 0 ? flag_keys
                           : strcmp(key, "smtp") == 0 ? smtp_keys
                           : strcmp(key, "catch_all_assessment") == 0 ? assess_keys : NULL;
        if (sub) {
            level_t l2 = {sub, lv->off, lv->len};
            *handled = true;
            return object(j, 1, on_member, &l2);
        }
    }
    for (const jkey_t *k = lv->keys; k->name; k++)
        if (strcmp(key, k->name) == 0) {
            *handled = true;
            return scalar(j, &lv->off[k->col], &lv->len[k->col]);
        }
    return true;
}

bool bulkio_result_cols(const char *json, mp_buf_t *scratch, size_t off[BULKIO_NCOLS_JSON],
                        size_t len[BULKIO_NCOLS_JSON])
{
    js_t j = {json, json + strlen(json), scratch};
    level_t top = {top_keys, off, len};
    mp_buf_reset(scratch);
    for (size_t i = 0; i < BULKIO_NCOLS_JSON; i++)
        off[i] = len[i] = 0;
    ws(&j);
    if (!object(&j, 0, on_member, &top))
        return false;
    ws(&j);
    return j.p == j.e;
}

/* ---- the head: verdict, reason, score, error -------------------------------------- */

/* A string value into dst (size bytes, NUL included); false when it is no string or
 * does not fit. */
static bool head_str(js_t *j, char *dst, size_t size)
{
    size_t off = j->out->len;
    if (j->p >= j->e || *j->p != '"' || !str(j, j->out))
        return false;
    size_t n = j->out->len - off;
    if (n >= size || memchr(j->out->data + off, '\0', n))
        return false;
    memcpy(dst, j->out->data + off, n);
    dst[n] = '\0';
    return true;
}

static bool on_head(js_t *j, const char *key, size_t klen, void *arg, bool *handled)
{
    (void)klen;
    bulkio_result_head_t *h = arg;
    if (strcmp(key, "verdict") == 0) {
        *handled = true;
        return head_str(j, h->verdict, sizeof h->verdict);
    }
    if (strcmp(key, "reason") == 0) {
        *handled = true;
        return head_str(j, h->reason, sizeof h->reason);
    }
    if (strcmp(key, "error") == 0) {
        *handled = true;
        return head_str(j, h->error, sizeof h->error);
    }
    if (strcmp(key, "score") == 0) {
        /* an integer 0..100 as vd_to_json writes it; anything else is refused */
        *handled = true;
        const char *s = j->p;
        if (!num(j))
            return false;
        long v = 0;
        for (const char *c = s; c < j->p; c++) {
            if (*c < '0' || *c > '9' || v > 1000)
                return false;
            v = v * 10 + (*c - '0');
        }
        h->score = (int)v;
    }
    return true;
}

bool bulkio_result_head(const char *json, size_t len, bulkio_result_head_t *out)
{
    mp_buf_t scratch;
    mp_buf_init(&scratch, len + 1);
    memset(out, 0, sizeof *out);
    js_t j = {json, json + len, &scratch};
    ws(&j);
    bool ok = object(&j, 0, on_head, out);
    ws(&j);
    ok = ok && j.p == j.e;
    mp_buf_cleanup(&scratch);
    if (!ok)
        memset(out, 0, sizeof *out);
    return ok;
}
