/*
 * geo.c - MX address -> country, city, ASN, organisation through libmaxminddb; see geo.h.
 *
 * Each database is opened with MMDB_MODE_MMAP and only read afterwards. A lookup asks
 * every database in order and fills each field of geo_info_t from the first one that
 * has it with the expected type (a UTF-8 string, an unsigned integer); anything else
 * (a missing path, a map where a string was expected, a lookup error on a corrupt file)
 * leaves the field empty. Strings are cut at a UTF-8 character boundary to fit.
 */
#include "geo/geo.h"

#include <errno.h>
#include <limits.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/str.h"

struct geo_db {
    size_t n;
    MMDB_s mmdb[]; /* n opened databases, in the caller's order */
};

/* One line describing why path could not be opened. */
static void open_error(char *err, size_t errlen, const char *path, int status, int saved_errno)
{
    if (!err || !errlen)
        return;
    switch (status) {
    case MMDB_FILE_OPEN_ERROR:
    case MMDB_IO_ERROR:
        snprintf(err, errlen, "geoip: cannot open %s: %s", path,
                 saved_errno ? strerror(saved_errno) : MMDB_strerror(status));
        break;
    case MMDB_INVALID_METADATA_ERROR:
        snprintf(err, errlen, "geoip: %s is not a MaxMind DB file (invalid metadata)", path);
        break;
    case MMDB_UNKNOWN_DATABASE_FORMAT_ERROR:
        snprintf(err, errlen, "geoip: %s: unsupported MaxMind DB format version", path);
        break;
    case MMDB_OUT_OF_MEMORY_ERROR: snprintf(err, errlen, "geoip: %s: out of memory", path); break;
    default: snprintf(err, errlen, "geoip: %s is corrupt: %s", path, MMDB_strerror(status)); break;
    }
}

/* A directory or an empty file would only fail later in mmap() with a puzzling errno
 * ("No such device", "Invalid argument"); say what it is instead. A file that cannot be
 * stat()ed is left to MMDB_open, whose errno is the one to report. */
static bool plain_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return true;
    if (S_ISDIR(st.st_mode)) {
        if (err && errlen)
            snprintf(err, errlen, "geoip: cannot open %s: %s", path, strerror(EISDIR));
        return false;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        if (err && errlen)
            snprintf(err, errlen, "geoip: %s is empty, not a MaxMind DB file", path);
        return false;
    }
    return true;
}

geo_db_t *geo_open(const char *const *paths, size_t n, char *err, size_t errlen)
{
    geo_db_t *db;

    if (err && errlen)
        err[0] = '\0';
    if (!paths || n == 0) {
        if (err && errlen)
            mp_strlcpy(err, "geoip: no database file given", errlen);
        return NULL;
    }
    if (n > (SIZE_MAX - sizeof *db) / sizeof db->mmdb[0]) {
        if (err && errlen)
            mp_strlcpy(err, "geoip: too many database files", errlen);
        return NULL;
    }
    db = calloc(1, sizeof *db + n * sizeof db->mmdb[0]);
    if (!db) {
        if (err && errlen)
            mp_strlcpy(err, "geoip: out of memory", errlen);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int status, saved_errno;
        if (!paths[i] || !paths[i][0]) {
            if (err && errlen)
                mp_strlcpy(err, "geoip: empty database file name", errlen);
            geo_close(db);
            return NULL;
        }
        if (!plain_file(paths[i], err, errlen)) {
            geo_close(db);
            return NULL;
        }
        errno = 0;
        status = MMDB_open(paths[i], MMDB_MODE_MMAP, &db->mmdb[i]);
        saved_errno = errno;
        if (status != MMDB_SUCCESS) {
            open_error(err, errlen, paths[i], status, saved_errno);
            geo_close(db); /* closes the db->n files opened so far */
            return NULL;
        }
        db->n = i + 1;
    }
    return db;
}

void geo_close(geo_db_t *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->n; i++)
        MMDB_close(&db->mmdb[i]);
    free(db);
}

size_t geo_db_count(const geo_db_t *db)
{
    return db ? db->n : 0;
}

const char *geo_db_type(const geo_db_t *db, size_t i)
{
    if (!db || i >= db->n || !db->mmdb[i].metadata.database_type)
        return "";
    return db->mmdb[i].metadata.database_type;
}

/* Copy a UTF-8 string of len bytes into dst (size >= 1), cut before a partial character. */
static void copy_utf8(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    if (n < len) /* src[n] is the first byte left out: never split a character there */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Fill dst from the string at path when dst is still empty. Returns true when filled. */
static bool get_string(MMDB_entry_s *entry, char *dst, size_t size, const char *const *path)
{
    MMDB_entry_data_s d;
    if (dst[0] != '\0')
        return false;
    if (MMDB_aget_value(entry, &d, path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size == 0)
        return false;
    copy_utf8(dst, size, d.utf8_string, d.data_size);
    return dst[0] != '\0';
}

/* Fill *dst from the unsigned integer at path when *dst is still 0. */
static bool get_uint(MMDB_entry_s *entry, unsigned *dst, const char *const *path)
{
    MMDB_entry_data_s d;
    uint64_t v;
    if (*dst != 0)
        return false;
    if (MMDB_aget_value(entry, &d, path) != MMDB_SUCCESS || !d.has_data)
        return false;
    switch (d.type) {
    case MMDB_DATA_TYPE_UINT16: v = d.uint16; break;
    case MMDB_DATA_TYPE_UINT32: v = d.uint32; break;
    case MMDB_DATA_TYPE_UINT64: v = d.uint64; break;
    case MMDB_DATA_TYPE_INT32:
        if (d.int32 < 0)
            return false;
        v = (uint64_t)d.int32;
        break;
    default: return false;
    }
    if (v == 0 || v > UINT_MAX)
        return false;
    *dst = (unsigned)v;
    return true;
}

#define PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Take from one database's entry whatever out still lacks. Returns true if anything. */
static bool fill_from(MMDB_entry_s *e, geo_info_t *out)
{
    bool any = false;
    char *cc = out->country_code;

    any |= get_string(e, cc, sizeof out->country_code, PATH("country", "iso_code"));
    any |= get_string(e, cc, sizeof out->country_code, PATH("registered_country", "iso_code"));
    any |= get_string(e, out->country, sizeof out->country, PATH("country", "names", "en"));
    any |=
        get_string(e, out->country, sizeof out->country, PATH("registered_country", "names", "en"));
    any |= get_string(e, out->city, sizeof out->city, PATH("city", "names", "en"));
    any |= get_uint(e, &out->asn, PATH("autonomous_system_number"));
    any |= get_string(e, out->as_org, sizeof out->as_org, PATH("autonomous_system_organization"));
    any |= get_string(e, out->isp, sizeof out->isp, PATH("isp"));
    any |= get_string(e, out->isp, sizeof out->isp, PATH("organization"));
    return any;
}

bool geo_lookup(const geo_db_t *db, const struct sockaddr *sa, geo_info_t *out)
{
    struct sockaddr_in v4;
    bool any = false;

    if (!out)
        return false;
    memset(out, 0, sizeof *out);
    if (!db || !sa)
        return false;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            /* ::ffff:a.b.c.d is an IPv4 peer: IPv4-only databases can answer too. */
            memset(&v4, 0, sizeof v4);
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
            sa = (const struct sockaddr *)(const void *)&v4;
        }
    } else if (sa->sa_family != AF_INET) {
        return false;
    }

    for (size_t i = 0; i < db->n; i++) {
        int mmdb_error = MMDB_SUCCESS;
        /* libmaxminddb takes a non-const handle but only reads it after MMDB_open. */
        MMDB_lookup_result_s r =
            MMDB_lookup_sockaddr((MMDB_s *)(uintptr_t)&db->mmdb[i], sa, &mmdb_error);
        if (mmdb_error != MMDB_SUCCESS || !r.found_entry)
            continue; /* includes an IPv6 address asked of an IPv4-only database */
        any |= fill_from(&r.entry, out);
    }
    /* The AS organisation falls back to what the database calls organisation or ISP. */
    if (!out->as_org[0] && out->isp[0])
        mp_strlcpy(out->as_org, out->isp, sizeof out->as_org);
    return any;
}
