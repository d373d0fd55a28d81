/*
 * geo.h - where an MX address is: country, city, AS number and organisation, read from
 * MaxMind-format databases (libmaxminddb) that the user supplies with --geoip FILE.mmdb.
 *
 * Works with any MaxMind DB file: GeoLite2/GeoIP2 Country, City, ASN or ISP, DB-IP lite,
 * or one merged file. Several files can be opened together (say, a City and an ASN
 * database): each field of the answer comes from the first file, in the order given,
 * that has it. Fields a database lacks stay empty; a field of an unexpected type is
 * ignored, never misread.
 *
 * Does not: download or update databases, resolve names, log, or read anything but the
 * files given. Lookups are pure reads of memory-mapped files: a geo_db_t can be shared
 * by threads once opened. The caller owns the handle (geo_open / geo_close); geo_info_t
 * is a plain value with fixed-size, always-terminated UTF-8 strings.
 * See docs/internals/geo.md.
 */
#ifndef MP_GEO_H
#define MP_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/** Opened databases (opaque). */
typedef struct geo_db geo_db_t;

/** What the databases say about one address. Empty string / 0 = not known. */
typedef struct {
    char country_code[4]; /* ISO 3166-1 alpha-2, e.g. "DE" ("country/iso_code", else
                             "registered_country/iso_code") */
    char country[64];     /* English name ("country/names/en", else registered_country) */
    char city[96];        /* English name ("city/names/en") */
    unsigned asn;         /* "autonomous_system_number" */
    char as_org[128];     /* "autonomous_system_organization", else the isp field below,
                             so ASN-less ISP databases still name the network */
    char isp[128];        /* "isp", else "organization" (GeoIP2 ISP, DB-IP ISP) */
} geo_info_t;

/**
 * Open one or more MaxMind DB files.
 * @param paths  n file names; earlier files win when several have the same field
 * @param n      number of files (at least 1)
 * @param err    buffer for a one-line message on failure, e.g. "geoip: cannot open
 *               x.mmdb: No such file or directory" or "geoip: x.mmdb is not a MaxMind
 *               DB file (invalid metadata)"; may be NULL
 * @param errlen size of err
 * @return the handle (free with geo_close), or NULL on failure (nothing stays open)
 */
geo_db_t *geo_open(const char *const *paths, size_t n, char *err, size_t errlen);

/** Close the databases; NULL is allowed. */
void geo_close(geo_db_t *db);

/**
 * Look an address up in every database.
 * @param db  opened databases (NULL: nothing found)
 * @param sa  an AF_INET or AF_INET6 address (port ignored); IPv4-mapped IPv6 addresses
 *            (::ffff:a.b.c.d) are looked up as IPv4
 * @param out always cleared first, then filled with what was found
 * @return true when at least one field was found
 */
bool geo_lookup(const geo_db_t *db, const struct sockaddr *sa, geo_info_t *out);

/** Number of open files. */
size_t geo_db_count(const geo_db_t *db);

/** The metadata "database_type" of file i, e.g. "GeoLite2-City"; "" when out of range. */
const char *geo_db_type(const geo_db_t *db, size_t i);

#endif
