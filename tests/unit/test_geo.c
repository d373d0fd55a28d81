/*
 * test_geo.c - GeoIP enrichment (src/geo/) against the tiny databases of tests/data/geo/,
 * written by tests/data/geo/make_mmdb.py for the lab's addresses: opening good, missing,
 * garbage and truncated files; hits and misses for IPv4, IPv6 and IPv4-mapped IPv6;
 * missing and mistyped fields; several databases merged, the first one winning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "geo/geo.h"

#ifndef MP_SOURCE_DIR
#define MP_SOURCE_DIR "."
#endif
#define GEO_DIR MP_SOURCE_DIR "/tests/data/geo/"

static const char *const lab[] = {GEO_DIR "lab.mmdb"};

/* An address as a sockaddr_storage. */
static const struct sockaddr *addr(struct sockaddr_storage *ss, const char *ip)
{
    memset(ss, 0, sizeof *ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(25);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(25);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

static bool look(const geo_db_t *db, const char *ip, geo_info_t *out)
{
    struct sockaddr_storage ss;
    return geo_lookup(db, addr(&ss, ip), out);
}

static void test_open_good(void **state)
{
    char err[256] = "stale";
    geo_db_t *db;
    (void)state;

    db = geo_open(lab, 1, err, sizeof err);
    assert_non_null(db);
    assert_string_equal(err, "");
    assert_int_equal(geo_db_count(db), 1);
    assert_string_equal(geo_db_type(db, 0), "Mailprobe-Lab-City-ASN");
    assert_string_equal(geo_db_type(db, 1), "");
    geo_close(db);
    geo_close(NULL);
    assert_int_equal(geo_db_count(NULL), 0);
}

static void expect_open_error(const char *const *paths, size_t n, const char *needle)
{
    char err[512];
    geo_db_t *db = geo_open(paths, n, err, sizeof err);
    assert_null(db);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not say '%s'", err, needle);
    assert_true(strncmp(err, "geoip: ", 7) == 0);
}

static void test_open_errors(void **state)
{
    static const char *const missing[] = {GEO_DIR "no-such-file.mmdb"};
    static const char *const garbage[] = {GEO_DIR "garbage.mmdb"};
    static const char *const truncated[] = {GEO_DIR "truncated.mmdb"};
    static const char *const dir[] = {GEO_DIR};
    static const char *const second_bad[] = {GEO_DIR "lab.mmdb", GEO_DIR "garbage.mmdb"};
    static const char *const empty[] = {""};
    (void)state;

    expect_open_error(missing, 1, "no-such-file.mmdb: No such file or directory");
    expect_open_error(garbage, 1, "garbage.mmdb is not a MaxMind DB file");
    expect_open_error(truncated, 1, "truncated.mmdb is not a MaxMind DB file");
    expect_open_error(dir, 1, "Is a directory");
    /* The first file opened fine; it is closed again and the second one is named. */
    expect_open_error(second_bad, 2, "garbage.mmdb");
    expect_open_error(empty, 1, "empty database file name");
    expect_open_error(lab, 0, "no database file given");
    expect_open_error(NULL, 1, "no database file given");
    {
        char tmp[] = "/tmp/mp_geo_empty_XXXXXX";
        const char *const one[] = {tmp};
        int fd = mkstemp(tmp);
        assert_true(fd >= 0);
        close(fd);
        expect_open_error(one, 1, "is empty, not a MaxMind DB file");
        unlink(tmp);
    }
    /* err may be NULL or tiny. */
    assert_null(geo_open(missing, 1, NULL, 0));
    {
        char tiny[8];
        assert_null(geo_open(missing, 1, tiny, sizeof tiny));
        assert_int_equal(strlen(tiny), 7);
    }
}

static void test_lookup_hits(void **state)
{
    geo_info_t g;
    geo_db_t *db = geo_open(lab, 1, NULL, 0);
    (void)state;
    assert_non_null(db);

    assert_true(look(db, "127.0.1.10", &g));
    assert_string_equal(g.country_code, "ZZ");
    assert_string_equal(g.country, "Lab Country");
    assert_string_equal(g.city, "Lab City");
    assert_int_equal(g.asn, 64512);
    assert_string_equal(g.as_org, "Lab Networks");
    assert_string_equal(g.isp, "");

    /* A different network: no city, ISP and organisation instead of an AS org. */
    assert_true(look(db, "127.0.3.23", &g));
    assert_string_equal(g.country_code, "XA");
    assert_string_equal(g.country, "Second Lab Country");
    assert_string_equal(g.city, "");
    assert_int_equal(g.asn, 64513);
    assert_string_equal(g.isp, "Lab ISP");
    assert_string_equal(g.as_org, "Lab ISP");

    /* Only a registered country. */
    assert_true(look(db, "127.0.4.10", &g));
    assert_string_equal(g.country_code, "XB");
    assert_string_equal(g.country, "Registered Lab Country");
    assert_int_equal(g.asn, 0);

    /* IPv6, and IPv4-mapped IPv6 read as IPv4. */
    assert_true(look(db, "fd00:25::1", &g));
    assert_string_equal(g.country_code, "XC");
    assert_string_equal(g.city, "Lab City Six");
    assert_int_equal(g.asn, 64514);
    assert_string_equal(g.as_org, "Lab Networks v6");
    assert_true(look(db, "::ffff:127.0.1.99", &g));
    assert_string_equal(g.country_code, "ZZ");
    assert_int_equal(g.asn, 64512);
    geo_close(db);
}

static void test_lookup_misses(void **state)
{
    geo_info_t g;
    struct sockaddr_un un;
    geo_db_t *db = geo_open(lab, 1, NULL, 0);
    (void)state;
    assert_non_null(db);

    memset(&g, 0x55, sizeof g);
    assert_false(look(db, "127.0.2.10", &g)); /* between the lab networks */
    assert_string_equal(g.country_code, "");  /* cleared on a miss */
    assert_string_equal(g.as_org, "");
    assert_int_equal(g.asn, 0);
    assert_false(look(db, "192.0.2.1", &g));
    assert_false(look(db, "2001:db8::1", &g));
    assert_false(look(db, "fd00:26::1", &g));
    assert_false(look(db, "::1", &g));

    /* An entry whose fields all have unexpected types yields nothing, not garbage. */
    assert_false(look(db, "127.0.5.1", &g));
    assert_string_equal(g.country_code, "");
    assert_string_equal(g.city, "");
    assert_int_equal(g.asn, 0);

    /* Not an IP address, no address, no database. */
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    assert_false(geo_lookup(db, (const struct sockaddr *)&un, &g));
    assert_false(geo_lookup(db, NULL, &g));
    assert_false(geo_lookup(db, (const struct sockaddr *)&un, NULL));
    assert_false(look(NULL, "127.0.1.10", &g));
    geo_close(db);
}

/* Names longer than geo_info_t holds are cut at a character boundary. */
static void test_long_utf8_cut(void **state)
{
    geo_info_t g;
    geo_db_t *db = geo_open(lab, 1, NULL, 0);
    (void)state;
    assert_non_null(db);

    assert_true(look(db, "127.0.6.1", &g));
    /* 100 x U+00E9 (2 bytes) into 96 bytes: 47 characters, 94 bytes. */
    assert_int_equal(strlen(g.city), 94);
    for (size_t i = 0; i < 94; i += 2) {
        assert_int_equal((unsigned char)g.city[i], 0xC3);
        assert_int_equal((unsigned char)g.city[i + 1], 0xA9);
    }
    /* "Lab " + 100 x U+00FC into 128 bytes: 4 + 61 x 2 = 126 bytes. */
    assert_int_equal(strlen(g.as_org), 126);
    assert_memory_equal(g.as_org, "Lab \xc3\xbc", 6);
    geo_close(db);
}

/* A City database and an IPv4-only ASN database (28-bit records) together. */
static void test_merged(void **state)
{
    static const char *const city_asn[] = {GEO_DIR "lab-city.mmdb", GEO_DIR "lab-asn.mmdb"};
    static const char *const city_lab[] = {GEO_DIR "lab-city.mmdb", GEO_DIR "lab.mmdb"};
    static const char *const lab_city[] = {GEO_DIR "lab.mmdb", GEO_DIR "lab-city.mmdb"};
    char err[256];
    geo_info_t g;
    geo_db_t *db;
    (void)state;

    db = geo_open(city_asn, 2, err, sizeof err);
    assert_non_null(db);
    assert_int_equal(geo_db_count(db), 2);
    assert_string_equal(geo_db_type(db, 0), "Mailprobe-Lab-City");
    assert_string_equal(geo_db_type(db, 1), "Mailprobe-Lab-ASN");

    assert_true(look(db, "127.0.1.10", &g)); /* city from one file, ASN from the other */
    assert_string_equal(g.country_code, "ZZ");
    assert_string_equal(g.city, "Lab City (city db)");
    assert_int_equal(g.asn, 64512);
    assert_string_equal(g.as_org, "Lab Networks");

    assert_true(look(db, "127.0.2.10", &g));
    assert_string_equal(g.country_code, "XD");
    assert_string_equal(g.country, "Third Lab Country");
    assert_string_equal(g.city, "");
    assert_int_equal(g.asn, 64515);
    assert_string_equal(g.as_org, "Third Lab AS");

    /* IPv6 in an IPv4-only database is a miss there, not an error. */
    assert_false(look(db, "fd00:25::1", &g));
    assert_true(look(db, "::ffff:127.0.2.10", &g));
    assert_int_equal(g.asn, 64515);
    assert_false(look(db, "127.0.3.10", &g));
    geo_close(db);

    /* Earlier files win field by field. */
    db = geo_open(city_lab, 2, err, sizeof err);
    assert_non_null(db);
    assert_true(look(db, "127.0.1.10", &g));
    assert_string_equal(g.city, "Lab City (city db)");
    assert_int_equal(g.asn, 64512); /* only lab.mmdb has it */
    assert_true(look(db, "fd00:25::1", &g));
    assert_string_equal(g.city, "Lab City Six");
    geo_close(db);

    db = geo_open(lab_city, 2, err, sizeof err);
    assert_non_null(db);
    assert_true(look(db, "127.0.1.10", &g));
    assert_string_equal(g.city, "Lab City");
    assert_true(look(db, "127.0.2.10", &g)); /* only lab-city.mmdb has 127.0.2.0/24 */
    assert_string_equal(g.country_code, "XD");
    geo_close(db);
}

/* The committed .mmdb files are what make_mmdb.py writes today. */
static void test_databases_are_current(void **state)
{
    (void)state;
    if (system("python3 -c 'import sys' >/dev/null 2>&1") != 0)
        skip();
    if (system("python3 '" GEO_DIR "make_mmdb.py' --check") != 0)
        fail_msg("tests/data/geo/*.mmdb are stale: run tests/data/geo/make_mmdb.py");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_good),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_lookup_hits),
        cmocka_unit_test(test_lookup_misses),
        cmocka_unit_test(test_long_utf8_cut),
        cmocka_unit_test(test_merged),
        cmocka_unit_test(test_databases_are_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
