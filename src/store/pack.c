/*
 * pack.c - a result's JSON as the store keeps it: packed with deflate and a preset
 * dictionary on the way in (store_json_bind), unpacked on the way out (store_json_col),
 * and TEXT of older stores read as it is.
 *
 * Does not: look inside the JSON, or decide which rows share one (results.c, cache.c).
 * Ownership: the text store_json_col returns is one of the handle's two buffers, valid
 * until the next read into the same buffer.
 */
#include "store/store_int.h"

#include "util/str.h"

#include <stdlib.h>
#include <string.h>

#define JSON_MAX (1u << 20)                 /* a stored result's JSON, uncompressed */
#define PACK_V1 0x01                        /* packed JSON: deflate with zdict_v1 */

/* ---- packed JSON ---------------------------------------------------------------------
 *
 * A result's JSON is stored as a BLOB: PACK_V1, its length (4 bytes, little-endian) and
 * raw deflate with a preset dictionary, the text results share (keys, verdicts, common
 * reasons and values). A 1.2 KB result packs to ~200 bytes; without the dictionary
 * deflate saves half. Rows written before are TEXT and read as they are. The dictionary
 * of PACK_V1 never changes: a better one is PACK_V2, read beside it. */
static const char zdict_v1[] =
    "\"mx_geo\":null},\"flags\":{\"disposable\":false,\"free\":false,\"role\":false,"
    "\"gibberish\":false,\"gibberish_score\":0.0},\"suggestion\":null,\"list_match\":null,"
    "\"duration_ms\":\"tls\":false,\"tls_verified\":false,\"attempts\":1,\"round_trips\":"
    "\"smtp\":{\"result\":\"not_checked\",\"code\":null,\"enhanced\":null,\"message\":null,"
    "\"stage\":null,\"rule\":null,\"catch_all\":null,\"probe\":null,\"mx_host\":null,"
    "\"mx_ip\":null,\"domain\":{\"exists\":false,\"mx\":[],\"null_mx\":false,"
    "\"implicit_mx\":false,\"spf\":false,\"dmarc\":false,\"provider\":null,\"gateway\":false},"
    "\"reason\":\"no_such_domain\",\"reason_text\":\"the domain does not exist\","
    "\"reason\":\"no_mail_server\",\"reason_text\":\"the domain has no mail server\","
    "\"reason\":\"invalid_syntax\",\"verdict\":\"unknown\",\"reason\":\"timeout\","
    "\"reason\":\"connect_failed\",\"reason\":\"greylisted\",\"policy_blocked\","
    "\"verdict\":\"risky\",\"reason\":\"accept_all\",\"catch_all\":true,"
    "\"message\":\"Recipient address rejected: User unknown in virtual mailbox table\","
    "\"verdict\":\"undeliverable\",\"reason\":\"mailbox_absent\",\"reason_text\":"
    "\"the server says there is no such user\",\"score\":1,\"score_factors\":[{\"factor\":"
    "\"mailbox_absent\",\"points\":1}],\"code\":550,\"enhanced\":\"5.1.1\",\"stage\":\"rcpt\","
    "\"rule\":\"code:550\",\"result\":\"rejected\",\"accepted this address and rejected\","
    "\"an address that cannot exist, so its yes is meaningful\",\"score\":95,"
    "\"score_factors\":[{\"factor\":\"accepted\",\"points\":95}],\"syntax\":{\"valid\":true,"
    "\"local\":\"\",\"domain\":\"\",\"domain_ascii\":\"\",\"utf8_local\":false,\"rule\":null},"
    "\"domain\":{\"exists\":true,\"mx\":[{\"host\":\"\",\"pref\":10,\"ips\":[\"\"]}],"
    "\"null_mx\":false,\"implicit_mx\":false,\"spf\":true,\"dmarc\":true,\"provider\":null,"
    "\"gateway\":false},\"smtp\":{\"result\":\"accepted\",\"code\":250,\"enhanced\":\"2.1.5\","
    "\"message\":\"Ok\",\"stage\":\"rcpt\",\"rule\":\"code:250\",\"catch_all\":false,"
    "\"probe\":{\"rcpt\":\"\",\"code\":550,\"enhanced\":\"5.1.1\",\"message\":\"\","
    "\"cached\":false},\"mx_host\":\"\",\"mx_ip\":\"\",\"tls\":true,\"tls_verified\":false,"
    "\"attempts\":1,\"round_trips\":6,\"mx_geo\":null},\"flags\":{\"disposable\":false,"
    "\"free\":false,\"role\":false,\"gibberish\":false,\"gibberish_score\":0.0},"
    "{\"email\":\"\",\"normalized\":\"\",\"verdict\":\"deliverable\",\"reason\":\"accepted\","
    "\"reason_text\":\"";

/* Pack JSON into st->pk; out and outlen are valid until the next pack. */
static mp_status_t pack(store_t *st, const char *json, size_t len, const unsigned char **out,
                        size_t *outlen)
{
    if (len > JSON_MAX) {
        mp_err_set(st->err, sizeof st->err, "a result of %zu bytes (at most %u)", len, JSON_MAX);
        return MP_ERR_LIMIT;
    }
    if (!st->zd_ok) {
        if (deflateInit2(&st->zd, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return store_nomem(st);
        st->zd_ok = true;
    } else if (deflateReset(&st->zd) != Z_OK) {
        return store_nomem(st);
    }
    size_t need = 5 + deflateBound(&st->zd, (uLong)len);
    if (need > st->pk_cap) {
        unsigned char *n = realloc(st->pk, need);
        if (!n)
            return store_nomem(st);
        st->pk = n;
        st->pk_cap = need;
    }
    deflateSetDictionary(&st->zd, (const Bytef *)zdict_v1, (uInt)(sizeof zdict_v1 - 1));
    st->pk[0] = PACK_V1;
    for (int i = 0; i < 4; i++)
        st->pk[1 + i] = (unsigned char)(len >> (8 * i));
    st->zd.next_in = (Bytef *)(uintptr_t)json;
    st->zd.avail_in = (uInt)len;
    st->zd.next_out = st->pk + 5;
    st->zd.avail_out = (uInt)(st->pk_cap - 5);
    if (deflate(&st->zd, Z_FINISH) != Z_STREAM_END) {
        mp_err_set(st->err, sizeof st->err, "packing a result failed");
        return MP_ERR_INTERNAL;
    }
    *out = st->pk;
    *outlen = 5 + st->zd.total_out;
    return MP_OK;
}

/* Bind a result's JSON packed (NULL stays NULL). */
mp_status_t store_json_bind(store_t *st, sqlite3_stmt *s, int i, const char *json, size_t len)
{
    const unsigned char *b = NULL;
    size_t bl = 0;
    mp_status_t rc = pack(st, json, len, &b, &bl);
    if (rc == MP_OK)
        sqlite3_bind_blob(s, i, b, (int)bl, SQLITE_STATIC);
    return rc;
}

/* A result's JSON from column i, packed or not, as text in buffer `which` (or the
 * column's own text); NULL for NULL, or for a value that does not unpack (err set). */
const char *store_json_col(store_t *st, sqlite3_stmt *s, int i, int which, mp_status_t *rc)
{
    *rc = MP_OK;
    if (sqlite3_column_type(s, i) != SQLITE_BLOB)
        return store_col_text(s, i);
    const unsigned char *b = sqlite3_column_blob(s, i);
    size_t bl = (size_t)sqlite3_column_bytes(s, i);
    if (bl < 5 || b[0] != PACK_V1)
        goto bad;
    size_t len = 0;
    for (int k = 0; k < 4; k++)
        len |= (size_t)b[1 + k] << (8 * k);
    if (len > JSON_MAX)
        goto bad;
    if (len + 1 > st->unpk_cap[which]) {
        char *n = realloc(st->unpk[which], len + 1);
        if (!n) {
            *rc = store_nomem(st);
            return NULL;
        }
        st->unpk[which] = n;
        st->unpk_cap[which] = len + 1;
    }
    if (!st->zi_ok) {
        if (inflateInit2(&st->zi, -15) != Z_OK) {
            *rc = store_nomem(st);
            return NULL;
        }
        st->zi_ok = true;
    } else if (inflateReset(&st->zi) != Z_OK) {
        goto bad;
    }
    if (inflateSetDictionary(&st->zi, (const Bytef *)zdict_v1, (uInt)(sizeof zdict_v1 - 1)) !=
        Z_OK)
        goto bad;
    st->zi.next_in = (Bytef *)(uintptr_t)(b + 5);
    st->zi.avail_in = (uInt)(bl - 5);
    st->zi.next_out = (Bytef *)st->unpk[which];
    st->zi.avail_out = (uInt)len;
    if (inflate(&st->zi, Z_FINISH) != Z_STREAM_END || st->zi.total_out != len)
        goto bad;
    st->unpk[which][len] = '\0';
    return st->unpk[which];
bad:
    mp_err_set(st->err, sizeof st->err, "%s: a stored result is damaged", st->path);
    *rc = MP_ERR_IO;
    return NULL;
}
