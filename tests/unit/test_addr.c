/*
 * test_addr.c - unit tests of the addr module (address grammar and normalisation).
 *
 * Tables of valid addresses with their exact parsed fields, and of invalid addresses with
 * the exact rule each breaks; length limits built at their boundaries; IDN equivalence
 * in both directions. Pure: no network, no files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "addr/addr.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Append n copies of c to s[*pos], NUL-terminated. */
static void put_rep(char *s, size_t size, size_t *pos, char c, size_t n)
{
    assert_true(*pos + n < size);
    memset(s + *pos, c, n);
    *pos += n;
    s[*pos] = '\0';
}

static void put_str(char *s, size_t size, size_t *pos, const char *t)
{
    size_t n = strlen(t);
    assert_true(*pos + n < size);
    memcpy(s + *pos, t, n + 1);
    *pos += n;
}

static addr_err_t parse_z(const char *s, addr_t *a)
{
    return addr_parse(s, strlen(s), a);
}

static void expect_rule(const char *in, size_t len, addr_err_t want)
{
    addr_t a;
    addr_err_t got = addr_parse(in, len, &a);
    if (got != want)
        print_error("input [%.*s] (%zu bytes): got %s, want %s\n", (int)len, in, len,
                    addr_err_rule(got), addr_err_rule(want));
    assert_int_equal(got, want);
    assert_int_equal(a.err, want);
}

/* ---- valid addresses ---------------------------------------------------------------- */

#define Q 1 /* quoted */
#define U 2 /* local_utf8 */
#define I 4 /* domain_idn */
#define L 8 /* literal */

static const struct valid_case {
    const char *in;
    const char *local, *domain, *ascii; /* normalized = local "@" ascii */
    int flags;
} valid_cases[] = {
    {"user@example.com", "user", "example.com", "example.com", 0},
    {"a@b.co", "a", "b.co", "b.co", 0},
    {"User.Name+tag@Sub.Example.COM", "User.Name+tag", "sub.example.com", "sub.example.com", 0},
    {"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~", "example.com", "example.com", 0},
    {"a.b.c.d@example.com", "a.b.c.d", "example.com", "example.com", 0},
    {"0@123.example.com", "0", "123.example.com", "123.example.com", 0},
    {"a@example.c0m", "a", "example.c0m", "example.c0m", 0},
    {"a@a-b.c-d.example", "a", "a-b.c-d.example", "a-b.c-d.example", 0},
    {"a@ab--cd.de", "a", "ab--cd.de", "ab--cd.de", 0}, /* R-LDH label in an ASCII domain */
    /* quoted local parts: quotes kept, case kept */
    {"\"john..doe\"@x.com", "\"john..doe\"", "x.com", "x.com", Q},
    {"\".john.\"@x.com", "\".john.\"", "x.com", "x.com", Q},
    {"\"a b\"@x.com", "\"a b\"", "x.com", "x.com", Q},
    {"\" \"@x.com", "\" \"", "x.com", "x.com", Q},
    {"\"a@b\"@x.com", "\"a@b\"", "x.com", "x.com", Q},
    {"\"a\\\"b\"@x.com", "\"a\\\"b\"", "x.com", "x.com", Q},
    {"\"\\\\\"@x.com", "\"\\\\\"", "x.com", "x.com", Q},
    {"\"\\a\\ \"@x.com", "\"\\a\\ \"", "x.com", "x.com", Q},
    {"\"(comment?)<>[],;:\"@x.com", "\"(comment?)<>[],;:\"", "x.com", "x.com", Q},
    {"\"Joe\"@X.COM", "\"Joe\"", "x.com", "x.com", Q},
    /* RFC 6531 UTF-8 local parts */
    {"üser@example.com", "üser", "example.com", "example.com", U},
    {"\"é è\"@x.com", "\"é è\"", "x.com", "x.com", Q | U},
    {"用户@例子.广告", "用户", "例子.广告", "xn--fsqu00a.xn--4rr70v", U | I},
    {"Δοκιμή@παράδειγμα.δοκιμή", "Δοκιμή", "παράδειγμα.δοκιμή",
     "xn--hxajbheg2az3al.xn--jxalpdlp", U | I},
    /* IDN domains */
    {"user@bücher.de", "user", "bücher.de", "xn--bcher-kva.de", I},
    {"user@xn--bcher-kva.de", "user", "bücher.de", "xn--bcher-kva.de", I},
    {"user@BÜCHER.DE", "user", "bücher.de", "xn--bcher-kva.de", I},
    {"user@XN--BCHER-KVA.DE", "user", "bücher.de", "xn--bcher-kva.de", I},
    {"user@bu\xcc\x88" "cher.de", "user", "bücher.de", "xn--bcher-kva.de", I}, /* NFD input */
    {"user@bücher\xe3\x80\x82" "de", "user", "bücher.de", "xn--bcher-kva.de", I}, /* U+3002 */
    {"user@ПРИМЕР.РФ", "user", "пример.рф", "xn--e1afmkfd.xn--p1ai", I},
    {"user@faß.de", "user", "faß.de", "xn--fa-hia.de", I}, /* non-transitional: not fass */
    {"user@xn--zca.de", "user", "ß.de", "xn--zca.de", I},
    {"user@ｅｘａｍｐｌｅ.com", "user", "example.com", "example.com", 0}, /* UTS#46 width map */
    /* address literals, canonical text */
    {"a@[192.0.2.1]", "a", "[192.0.2.1]", "[192.0.2.1]", L},
    {"a@[IPv6:2001:DB8:0:0::1]", "a", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", L},
    {"a@[ipv6:::1]", "a", "[IPv6:::1]", "[IPv6:::1]", L},
    {"a@[IPv6:::ffff:192.0.2.1]", "a", "[IPv6:::ffff:192.0.2.1]", "[IPv6:::ffff:192.0.2.1]", L},
    /* surrounding ASCII whitespace */
    {"  user@example.com  ", "user", "example.com", "example.com", 0},
    {"\tuser@example.com\r\n", "user", "example.com", "example.com", 0},
    {"\v\f\"a b\"@x.com \n", "\"a b\"", "x.com", "x.com", Q},
};

static void test_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const struct valid_case *c = &valid_cases[i];
        addr_t a;
        char norm[600];
        size_t pos = 0;
        addr_err_t err = parse_z(c->in, &a);
        if (err != ADDR_OK)
            print_error("case %zu [%s]: %s\n", i, c->in, addr_err_rule(err));
        assert_int_equal(err, ADDR_OK);
        assert_string_equal(a.local, c->local);
        assert_string_equal(a.domain, c->domain);
        assert_string_equal(a.domain_ascii, c->ascii);
        put_str(norm, sizeof norm, &pos, c->local);
        put_str(norm, sizeof norm, &pos, "@");
        put_str(norm, sizeof norm, &pos, c->ascii);
        assert_string_equal(a.normalized, norm);
        assert_int_equal(a.quoted, (c->flags & Q) != 0);
        assert_int_equal(a.local_utf8, (c->flags & U) != 0);
        assert_int_equal(a.domain_idn, (c->flags & I) != 0);
        assert_int_equal(a.literal, (c->flags & L) != 0);
    }
}

/* ---- invalid addresses: each with the exact rule ------------------------------------ */

static const struct invalid_case {
    const char *in;
    addr_err_t err;
} invalid_cases[] = {
    {"", ADDR_ERR_EMPTY},
    {" \t\r\n\v\f", ADDR_ERR_EMPTY},
    {"abc", ADDR_ERR_NO_AT},
    {"example.com", ADDR_ERR_NO_AT},
    {"\"abc\"", ADDR_ERR_NO_AT},
    {"\"a@b\"", ADDR_ERR_NO_AT},
    {"@", ADDR_ERR_LOCAL_EMPTY},
    {"@example.com", ADDR_ERR_LOCAL_EMPTY},
    {"\"\"@example.com", ADDR_ERR_LOCAL_EMPTY},
    {"a@", ADDR_ERR_DOMAIN_EMPTY},
    {"\"a\"@", ADDR_ERR_DOMAIN_EMPTY},
    {"a@ ", ADDR_ERR_DOMAIN_EMPTY}, /* trailing whitespace trimmed first */
    /* dot-atom local part */
    {"john..doe@x.com", ADDR_ERR_LOCAL_DOT},
    {".john@x.com", ADDR_ERR_LOCAL_DOT},
    {"john.@x.com", ADDR_ERR_LOCAL_DOT},
    {".@x.com", ADDR_ERR_LOCAL_DOT},
    {"a b@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a\tb@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a(b)@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a,b@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a;b@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a:b@x.com", ADDR_ERR_LOCAL_CHAR},
    {"<a>@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a[b]@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a\\b@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a\"b\"@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a\x7f@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a\x01@x.com", ADDR_ERR_LOCAL_CHAR},
    {"a\xc2\x85@x.com", ADDR_ERR_LOCAL_CHAR}, /* C1 control U+0085 */
    {"a@b@x.com", ADDR_ERR_LOCAL_CHAR},       /* two '@' outside quotes */
    {"a@b@", ADDR_ERR_LOCAL_CHAR},            /* the last '@' splits; local first */
    {"@@x.com", ADDR_ERR_LOCAL_CHAR},
    /* quoted local part */
    {"\"abc@x.com", ADDR_ERR_QUOTE},
    {"\"a\"b@x.com", ADDR_ERR_QUOTE},
    {"\"a\".\"b\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\\\"@x.com", ADDR_ERR_QUOTE},  /* the escaped quote does not close */
    {"\"a\\", ADDR_ERR_QUOTE},
    {"\"a\\é\"@x.com", ADDR_ERR_QUOTE}, /* quoted-pairSMTP is ASCII only */
    {"\"a\\\x01\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\tb\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\r\nb\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\rb\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\nb\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\x7f\"@x.com", ADDR_ERR_QUOTE},
    {"\"a\xc2\x9b\"@x.com", ADDR_ERR_QUOTE}, /* C1 control U+009B */
    {"\"", ADDR_ERR_QUOTE},
    /* domain labels */
    {"a@example.com.", ADDR_ERR_LABEL_EMPTY},
    {"a@.example.com", ADDR_ERR_LABEL_EMPTY},
    {"a@example..com", ADDR_ERR_LABEL_EMPTY},
    {"a@.", ADDR_ERR_LABEL_EMPTY},
    {"a@bücher.de.", ADDR_ERR_LABEL_EMPTY},
    {"a@bücher\xe3\x80\x82" "de\xe3\x80\x82", ADDR_ERR_LABEL_EMPTY}, /* after UTS#46 mapping */
    {"a@-x.com", ADDR_ERR_LABEL_HYPHEN},
    {"a@x-.com", ADDR_ERR_LABEL_HYPHEN},
    {"a@x.-com", ADDR_ERR_LABEL_HYPHEN},
    {"a@x.com-", ADDR_ERR_LABEL_HYPHEN},
    {"a@-bücher.de", ADDR_ERR_LABEL_HYPHEN},
    {"a@bücher-.de", ADDR_ERR_LABEL_HYPHEN},
    {"a@x_y.com", ADDR_ERR_DOMAIN_CHAR},
    {"a@x y.com", ADDR_ERR_DOMAIN_CHAR},
    {"a@x!.com", ADDR_ERR_DOMAIN_CHAR},
    {"a@x.com]", ADDR_ERR_DOMAIN_CHAR},
    {"a@\"x\".com", ADDR_ERR_DOMAIN_CHAR},
    {"a@bü_cher.de", ADDR_ERR_DOMAIN_CHAR},
    {"a@x\xef\xbc\xbfy.com", ADDR_ERR_DOMAIN_CHAR}, /* fullwidth low line maps to '_' */
    {"a@1.2.3.4", ADDR_ERR_DOMAIN_NUMERIC},
    {"a@example.123", ADDR_ERR_DOMAIN_NUMERIC},
    {"a@bücher.123", ADDR_ERR_DOMAIN_NUMERIC},
    {"a@localhost", ADDR_ERR_DOMAIN_SINGLE},
    {"a@LOCALHOST", ADDR_ERR_DOMAIN_SINGLE},
    {"a@123", ADDR_ERR_DOMAIN_SINGLE},
    {"a@bücher", ADDR_ERR_DOMAIN_SINGLE},
    {"a@xn--bcher-kva", ADDR_ERR_DOMAIN_SINGLE},
    /* address literals */
    {"a@[1.2.3]", ADDR_ERR_LITERAL},
    {"a@[1.2.3.256]", ADDR_ERR_LITERAL},
    {"a@[01.2.3.4]", ADDR_ERR_LITERAL},
    {"a@[1.2.3.4", ADDR_ERR_LITERAL},
    {"a@[1.2.3.4].com", ADDR_ERR_LITERAL},
    {"a@[ 1.2.3.4]", ADDR_ERR_LITERAL},
    {"a@[]", ADDR_ERR_LITERAL},
    {"a@[", ADDR_ERR_LITERAL},
    {"a@[::1]", ADDR_ERR_LITERAL},              /* IPv6 needs its tag */
    {"a@[IPv6:1.2.3.4]", ADDR_ERR_LITERAL},
    {"a@[IPv6:2001:db8::g]", ADDR_ERR_LITERAL},
    {"a@[IPv6:fe80::1%eth0]", ADDR_ERR_LITERAL},
    {"a@[IPv6:]", ADDR_ERR_LITERAL},
    {"a@[x-tag:whatever]", ADDR_ERR_LITERAL},   /* General-address-literal */
    {"a@[1.2.3.4\\]", ADDR_ERR_LITERAL},
    /* IDNA2008 */
    {"a@xn--abc.de", ADDR_ERR_IDN},         /* fake A-label */
    {"a@xn--ss-kva.de", ADDR_ERR_IDN},
    {"a@xn--a.de", ADDR_ERR_IDN},
    {"a@xn--.de", ADDR_ERR_LABEL_HYPHEN},   /* LDH rules come first */
    {"a@a\xe2\x80\x8d" "b.com", ADDR_ERR_IDN}, /* ZWJ outside its context: no fallback */
    {"a@\xcc\x80" "a.de", ADDR_ERR_IDN},       /* leading combining mark */
    {"a@\xd9\xa1\xd9\xa2.de", ADDR_ERR_IDN},   /* bidi rule */
    {"a@ab--cd.bücher.de", ADDR_ERR_IDN},   /* IDNA processes the whole name */
    /* IDNA2008 DISALLOWED symbols (RFC 5892; RFC 6531 requires IDNA2008): no fallback */
    {"a@\xe2\x82\xac.com", ADDR_ERR_IDN},        /* € */
    {"a@\xc2\xa1hola.com", ADDR_ERR_IDN},         /* ¡ */
    {"a@\xf0\x9f\x92\xa9.la", ADDR_ERR_IDN},    /* emoji, IDNA2003 only */
    {"a@xn--ls8h.la", ADDR_ERR_IDN},            /* its A-label does not round-trip */
    {"a@\xe2\x98\x83.com", ADDR_ERR_IDN},        /* snowman, an IDNA2003 favourite */
    /* UTF-8 */
    {"a@ex\xc3" "ample.com", ADDR_ERR_UTF8},
    {"\xff@x.com", ADDR_ERR_UTF8},
    {"\xc0\xaf@x.com", ADDR_ERR_UTF8},         /* overlong '/' */
    {"\xe0\x80\xaf@x.com", ADDR_ERR_UTF8},     /* overlong, 3 bytes */
    {"\xed\xa0\x80@x.com", ADDR_ERR_UTF8},     /* surrogate */
    {"\xf4\x90\x80\x80@x.com", ADDR_ERR_UTF8}, /* above U+10FFFF */
    {"\xf8\x88\x80\x80\x80@x.com", ADDR_ERR_UTF8},
    {"a@x.com\xe2\x82", ADDR_ERR_UTF8},        /* truncated at the end */
    {"\"\xfe\"@x.com", ADDR_ERR_UTF8},
    {"abc\x80", ADDR_ERR_UTF8},                /* before looking for '@' */
    /* reading order: the local part is judged before the domain */
    {"a..b@-x", ADDR_ERR_LOCAL_DOT},
    {"a b@", ADDR_ERR_LOCAL_CHAR},
};

static void test_invalid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++)
        expect_rule(invalid_cases[i].in, strlen(invalid_cases[i].in), invalid_cases[i].err);
}

/* Inputs with a NUL inside len: a NUL is never part of an address. */
static void test_nul_inside(void **state)
{
    (void)state;
    expect_rule("a\0b@x.com", 9, ADDR_ERR_LOCAL_CHAR);
    expect_rule("\"a\0b\"@x.com", 11, ADDR_ERR_QUOTE);
    expect_rule("a@ex\0ample.com", 14, ADDR_ERR_DOMAIN_CHAR);
    expect_rule("a@x.com\0", 8, ADDR_ERR_DOMAIN_CHAR);
    expect_rule("a@[1.2.3.4\0]", 12, ADDR_ERR_LITERAL);
    expect_rule("\0", 1, ADDR_ERR_NO_AT);
    expect_rule("\0@x.com", 7, ADDR_ERR_LOCAL_CHAR);
}

/* len bounds the input: it need not be NUL-terminated, and bytes past len are ignored. */
static void test_len_bounds(void **state)
{
    (void)state;
    const char buf[] = {'a', '@', 'x', '.', 'c', 'o', 'm', 'X', 'Y'};
    addr_t a;
    assert_int_equal(addr_parse(buf, 7, &a), ADDR_OK);
    assert_string_equal(a.normalized, "a@x.com");
    assert_int_equal(addr_parse(buf, 9, &a), ADDR_OK);
    assert_string_equal(a.normalized, "a@x.comxy");
    assert_int_equal(addr_parse(buf, 2, &a), ADDR_ERR_DOMAIN_EMPTY);
    assert_int_equal(addr_parse(NULL, 0, &a), ADDR_ERR_EMPTY);
}

/* ---- length limits at their boundaries ---------------------------------------------- */

static void test_local_length(void **state)
{
    (void)state;
    char s[512];
    size_t pos = 0;
    addr_t a;

    put_rep(s, sizeof s, &pos, 'a', 64);
    put_str(s, sizeof s, &pos, "@x.com");
    assert_int_equal(parse_z(s, &a), ADDR_OK);
    assert_int_equal(strlen(a.local), 64);

    pos = 0;
    put_rep(s, sizeof s, &pos, 'a', 65);
    put_str(s, sizeof s, &pos, "@x.com");
    expect_rule(s, pos, ADDR_ERR_LOCAL_TOO_LONG);

    /* quoted: the quotes count (the local part is measured as written) */
    pos = 0;
    put_str(s, sizeof s, &pos, "\"");
    put_rep(s, sizeof s, &pos, 'a', 62);
    put_str(s, sizeof s, &pos, "\"@x.com");
    assert_int_equal(parse_z(s, &a), ADDR_OK);
    assert_int_equal(strlen(a.local), 64);
    pos = 0;
    put_str(s, sizeof s, &pos, "\"");
    put_rep(s, sizeof s, &pos, 'a', 63);
    put_str(s, sizeof s, &pos, "\"@x.com");
    expect_rule(s, pos, ADDR_ERR_LOCAL_TOO_LONG);

    /* UTF-8: octets, not characters. 32 x "é" = 64 octets. */
    pos = 0;
    for (int i = 0; i < 32; i++)
        put_str(s, sizeof s, &pos, "é");
    put_str(s, sizeof s, &pos, "@x.com");
    assert_int_equal(parse_z(s, &a), ADDR_OK);
    assert_true(a.local_utf8);
    pos = 0;
    for (int i = 0; i < 32; i++)
        put_str(s, sizeof s, &pos, "é");
    put_str(s, sizeof s, &pos, "a@x.com");
    expect_rule(s, pos, ADDR_ERR_LOCAL_TOO_LONG);
}

static void test_label_length(void **state)
{
    (void)state;
    char s[512];
    size_t pos = 0;
    addr_t a;

    put_str(s, sizeof s, &pos, "a@");
    put_rep(s, sizeof s, &pos, 'b', 63);
    put_str(s, sizeof s, &pos, ".com");
    assert_int_equal(parse_z(s, &a), ADDR_OK);

    pos = 0;
    put_str(s, sizeof s, &pos, "a@");
    put_rep(s, sizeof s, &pos, 'b', 64);
    put_str(s, sizeof s, &pos, ".com");
    expect_rule(s, pos, ADDR_ERR_LABEL_TOO_LONG);

    /* last label too */
    pos = 0;
    put_str(s, sizeof s, &pos, "a@x.");
    put_rep(s, sizeof s, &pos, 'c', 64);
    expect_rule(s, pos, ADDR_ERR_LABEL_TOO_LONG);

    /* IDN: the A-label is measured. 55 x 'a' + 'ü' -> 63 octets; 56 -> 64. */
    pos = 0;
    put_str(s, sizeof s, &pos, "a@");
    put_rep(s, sizeof s, &pos, 'a', 55);
    put_str(s, sizeof s, &pos, "ü.de");
    assert_int_equal(parse_z(s, &a), ADDR_OK);
    assert_int_equal(strlen(a.domain_ascii), 63 + 3);
    assert_true(a.domain_idn);

    pos = 0;
    put_str(s, sizeof s, &pos, "a@");
    put_rep(s, sizeof s, &pos, 'a', 56);
    put_str(s, sizeof s, &pos, "ü.de");
    expect_rule(s, pos, ADDR_ERR_LABEL_TOO_LONG);
}

/* A domain of labels 63.63.63.<last>: 192 + len(last) octets. */
static size_t put_domain(char *s, size_t size, size_t *pos, size_t last)
{
    size_t start = *pos;
    for (int i = 0; i < 3; i++) {
        put_rep(s, size, pos, (char)('a' + i), 63);
        put_str(s, size, pos, ".");
    }
    put_rep(s, size, pos, 'd', last);
    return *pos - start;
}

static void test_address_length(void **state)
{
    (void)state;
    char s[2048];
    size_t pos = 0;
    addr_t a;

    /* 59-octet local + '@' + 194-octet domain = 254 */
    put_rep(s, sizeof s, &pos, 'l', 59);
    put_str(s, sizeof s, &pos, "@");
    assert_int_equal(put_domain(s, sizeof s, &pos, 2), 194);
    assert_int_equal(pos, 254);
    assert_int_equal(parse_z(s, &a), ADDR_OK);
    assert_int_equal(strlen(a.normalized), 254);

    /* one more octet in the local part: 255 */
    pos = 0;
    put_rep(s, sizeof s, &pos, 'l', 60);
    put_str(s, sizeof s, &pos, "@");
    put_domain(s, sizeof s, &pos, 2);
    assert_int_equal(pos, 255);
    expect_rule(s, pos, ADDR_ERR_TOO_LONG);

    /* a 255-octet domain is a valid domain, but no address fits around it */
    pos = 0;
    put_str(s, sizeof s, &pos, "a@");
    assert_int_equal(put_domain(s, sizeof s, &pos, 63), 255);
    expect_rule(s, pos, ADDR_ERR_TOO_LONG);

    /* 256 octets: the domain itself is too long */
    pos = 0;
    put_str(s, sizeof s, &pos, "a@");
    assert_int_equal(put_domain(s, sizeof s, &pos, 62), 254);
    put_str(s, sizeof s, &pos, ".e");
    expect_rule(s, pos, ADDR_ERR_DOMAIN_TOO_LONG);

    /* an IDN domain over 255 octets once converted */
    pos = 0;
    put_str(s, sizeof s, &pos, "a@");
    for (int i = 0; i < 5; i++) {
        put_str(s, sizeof s, &pos, "ü");
        put_rep(s, sizeof s, &pos, 'a', 50);
        put_str(s, sizeof s, &pos, ".");
    }
    put_str(s, sizeof s, &pos, "de");
    expect_rule(s, pos, ADDR_ERR_DOMAIN_TOO_LONG);

    /* the total counts the A-label form: a short Unicode domain can make it too long */
    pos = 0;
    put_rep(s, sizeof s, &pos, 'l', 64);
    put_str(s, sizeof s, &pos, "@");
    for (int i = 0; i < 3; i++) {
        put_rep(s, sizeof s, &pos, 'a', 55);
        put_str(s, sizeof s, &pos, "ü.");
    }
    put_str(s, sizeof s, &pos, "de");
    expect_rule(s, pos, ADDR_ERR_TOO_LONG);
}

static void test_input_length(void **state)
{
    (void)state;
    char s[ADDR_INPUT_MAX + 2];
    size_t pos = 0;

    put_rep(s, sizeof s, &pos, ' ', ADDR_INPUT_MAX);
    expect_rule(s, pos, ADDR_ERR_EMPTY);
    put_rep(s, sizeof s, &pos, ' ', 1);
    expect_rule(s, pos, ADDR_ERR_TOO_LONG); /* refused before parsing */

    /* whitespace does not count towards the 254 */
    pos = 0;
    put_rep(s, sizeof s, &pos, ' ', 500);
    put_str(s, sizeof s, &pos, "a@x.com");
    put_rep(s, sizeof s, &pos, '\t', 500);
    expect_rule(s, pos, ADDR_OK);
}

/* ---- normalisation ------------------------------------------------------------------ */

static void assert_same(const addr_t *a, const addr_t *b)
{
    assert_string_equal(a->local, b->local);
    assert_string_equal(a->domain, b->domain);
    assert_string_equal(a->domain_ascii, b->domain_ascii);
    assert_string_equal(a->normalized, b->normalized);
    assert_int_equal(a->domain_idn, b->domain_idn);
}

static void test_idn_equivalence(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"user@bücher.de", "user@xn--bcher-kva.de"},
        {"user@BÜCHER.de", "user@XN--bcher-KVA.de"},
        {"user@例子.广告", "user@xn--fsqu00a.xn--4rr70v"},
        {"user@пример.рф", "user@xn--e1afmkfd.xn--p1ai"},
        {"user@faß.de", "user@xn--fa-hia.de"},
        {"user@mail.bücher.de", "user@MAIL.xn--bcher-kva.DE"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        addr_t u, x, again;
        assert_int_equal(parse_z(pairs[i][0], &u), ADDR_OK);
        assert_int_equal(parse_z(pairs[i][1], &x), ADDR_OK);
        assert_same(&u, &x); /* Unicode -> A-label and A-label -> Unicode agree */
        assert_true(u.domain_idn);
        /* and the normalized form is a fixed point */
        assert_int_equal(parse_z(u.normalized, &again), ADDR_OK);
        assert_same(&u, &again);
    }
}

static void test_case(void **state)
{
    (void)state;
    addr_t a, b;
    assert_int_equal(parse_z("John.Smith@EXAMPLE.Com", &a), ADDR_OK);
    assert_string_equal(a.local, "John.Smith"); /* RFC 5321 §2.4: local part may be case-sensitive */
    assert_string_equal(a.domain, "example.com");
    assert_string_equal(a.normalized, "John.Smith@example.com");
    assert_int_equal(parse_z("john.smith@example.com", &b), ADDR_OK);
    assert_string_not_equal(a.normalized, b.normalized);
}

/* On error every field but err is cleared, whatever was parsed before the error. */
static void test_error_clears(void **state)
{
    (void)state;
    addr_t a;
    memset(&a, 0x5a, sizeof a);
    assert_int_equal(parse_z("üser@bücher.123", &a), ADDR_ERR_DOMAIN_NUMERIC);
    assert_string_equal(a.local, "");
    assert_string_equal(a.domain, "");
    assert_string_equal(a.domain_ascii, "");
    assert_string_equal(a.normalized, "");
    assert_false(a.quoted || a.local_utf8 || a.domain_idn || a.literal);

    memset(&a, 0x5a, sizeof a);
    assert_int_equal(parse_z("\"x\"@[1.2.3.4]", &a), ADDR_OK);
    memset(&a, 0x5a, sizeof a);
    assert_int_equal(parse_z("\"x\"@[1.2.3.4", &a), ADDR_ERR_LITERAL);
    assert_false(a.quoted || a.literal);
    assert_string_equal(a.local, "");
}

/* ---- rule names --------------------------------------------------------------------- */

static void test_rule_names(void **state)
{
    (void)state;
    assert_string_equal(addr_err_rule(ADDR_OK), "ok");
    assert_string_equal(addr_err_rule(ADDR_ERR_LOCAL_TOO_LONG), "local_too_long");
    assert_string_equal(addr_err_rule(ADDR_ERR_UTF8), "utf8");
    assert_string_equal(addr_err_rule(ADDR_ERR__COUNT), "unknown");
    assert_string_equal(addr_err_rule((addr_err_t)-1), "unknown");
    assert_non_null(addr_err_text(ADDR_ERR__COUNT));
    for (int i = 0; i < ADDR_ERR__COUNT; i++) {
        const char *r = addr_err_rule((addr_err_t)i);
        const char *t = addr_err_text((addr_err_t)i);
        assert_non_null(r);
        assert_non_null(t);
        assert_true(strlen(r) > 1 && strlen(t) > 10);
        assert_string_not_equal(r, "unknown");
        for (const char *p = r; *p; p++) /* stable identifiers: [a-z0-9_] */
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(r, addr_err_rule((addr_err_t)j));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_nul_inside),
        cmocka_unit_test(test_len_bounds),
        cmocka_unit_test(test_local_length),
        cmocka_unit_test(test_label_length),
        cmocka_unit_test(test_address_length),
        cmocka_unit_test(test_input_length),
        cmocka_unit_test(test_idn_equivalence),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_error_clears),
        cmocka_unit_test(test_rule_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
