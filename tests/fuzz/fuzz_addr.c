/*
 * fuzz_addr.c - libFuzzer target for addr_parse().
 *
 * Feeds arbitrary bytes to the parser and aborts when an invariant of addr.h breaks: the
 * result is consistent with err, every string of a valid address is within its limits,
 * and parsing is idempotent (the normalized form, and the Unicode spelling of the
 * domain, parse to the same normalized form). Replayed over tests/fuzz/corpus/addr/ in
 * every build through replay.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_addr: invariant failed at line %d: %s\n", __LINE__,   \
                    #cond);                                                              \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static bool all_empty(const addr_t *a)
{
    return !a->local[0] && !a->domain[0] && !a->domain_ascii[0] && !a->normalized[0] &&
           !a->quoted && !a->local_utf8 && !a->domain_idn && !a->literal;
}

static bool has_high(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* A domain name (not a literal) in A-label form: lower-case LDH labels, dot-separated. */
static bool is_ldh_name(const char *d)
{
    size_t label = 0, labels = 1;
    for (const char *p = d; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            labels++;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
        if (c == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && d[strlen(d) - 1] != '-' && labels >= 2;
}

static void check_same(const addr_t *a, const addr_t *b)
{
    CHECK(b->err == ADDR_OK);
    CHECK(strcmp(a->normalized, b->normalized) == 0);
    CHECK(strcmp(a->local, b->local) == 0);
    CHECK(strcmp(a->domain, b->domain) == 0);
    CHECK(strcmp(a->domain_ascii, b->domain_ascii) == 0);
    CHECK(a->quoted == b->quoted && a->local_utf8 == b->local_utf8);
    CHECK(a->domain_idn == b->domain_idn && a->literal == b->literal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static addr_t a, b; /* static: 2 KB each, keep the fuzzer's stack small */
    char buf[ADDR_INPUT_MAX + 1];

    addr_err_t err = addr_parse((const char *)data, size, &a);
    CHECK(err == a.err);
    CHECK((unsigned)err < ADDR_ERR__COUNT);
    CHECK(addr_err_rule(err)[0] != '\0' && strcmp(addr_err_rule(err), "unknown") != 0);
    CHECK(addr_err_text(err)[0] != '\0');
    if (err != ADDR_OK) {
        CHECK(all_empty(&a));
        return 0;
    }

    size_t ll = strlen(a.local), dl = strlen(a.domain_ascii), nl = strlen(a.normalized);
    CHECK(ll >= 1 && ll <= ADDR_LOCAL_MAX);
    CHECK(dl >= 1 && dl <= ADDR_DOMAIN_MAX);
    CHECK(nl >= 3 && nl <= ADDR_ADDRESS_MAX && nl == ll + 1 + dl);
    CHECK(memcmp(a.normalized, a.local, ll) == 0 && a.normalized[ll] == '@');
    CHECK(strcmp(a.normalized + ll + 1, a.domain_ascii) == 0);
    CHECK(a.domain[0] != '\0');
    CHECK(!has_high(a.domain_ascii));
    CHECK(a.quoted == (a.local[0] == '"'));
    CHECK(a.local_utf8 == has_high(a.local));
    CHECK(a.literal == (a.domain_ascii[0] == '['));
    if (a.literal) {
        CHECK(strcmp(a.domain, a.domain_ascii) == 0 && !a.domain_idn);
    } else {
        CHECK(is_ldh_name(a.domain_ascii));
        CHECK(a.domain_idn == (strncmp(a.domain_ascii, "xn--", 4) == 0 ||
                               strstr(a.domain_ascii, ".xn--") != NULL));
        if (!a.domain_idn)
            CHECK(strcmp(a.domain, a.domain_ascii) == 0);
    }

    /* Idempotence: the normalized form is itself valid and normalises to itself. */
    addr_parse(a.normalized, nl, &b);
    check_same(&a, &b);

    /* IDN equivalence: local@<Unicode domain> gives the same result. */
    size_t ul = strlen(a.domain);
    if (ll + 1 + ul <= ADDR_INPUT_MAX) {
        memcpy(buf, a.local, ll);
        buf[ll] = '@';
        memcpy(buf + ll + 1, a.domain, ul);
        addr_parse(buf, ll + 1 + ul, &b);
        check_same(&a, &b);
    }
    return 0;
}
