/*
 * fuzz_evidence.c - libFuzzer target for the name functions (src/evidence/names.c).
 *
 * Input: "first<TAB>last<TAB>full<TAB>local" (any bytes; missing fields are empty).
 * Aborts when an invariant of names.h breaks: folded text is ASCII lower-case letters,
 * digits, '-' and single spaces; a parsed person has ASCII tokens within bounds; the
 * match mask has only pattern bits; a domain inferred from the one address agrees with
 * names_fit; everything is deterministic. Replayed over tests/fuzz/corpus/evidence/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_evidence: invariant failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_folded(const char *s)
{
    for (; *s; s++)
        CHECK((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              (*s == ' ' && s[1] != ' '));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char f[4][512];
    size_t k = 0, w = 0;
    memset(f, 0, sizeof f);
    for (size_t i = 0; i < size && k < 4; i++) {
        if (data[i] == '\t') {
            k++;
            w = 0;
        } else if (data[i] && w + 1 < sizeof f[0])
            f[k][w++] = (char)data[i];
    }
    char out[256];
    mp_status_t st = names_fold(f[0], out, sizeof out);
    CHECK(st == MP_OK || st == MP_ERR_LIMIT);
    check_folded(out);
    names_person_t p, q;
    st = names_person_parse(f[0], f[1], f[2], &p);
    CHECK(st == MP_OK || st == MP_ERR_ARG);
    if (st != MP_OK)
        return 0;
    CHECK(p.nfirst <= NAMES_PARTS_MAX && p.nlast <= NAMES_PARTS_MAX);
    CHECK(p.nfirst + p.nlast > 0);
    for (size_t i = 0; i < p.nfirst; i++)
        check_folded(p.first[i]);
    for (size_t i = 0; i < p.nlast; i++)
        check_folded(p.last[i]);
    CHECK(names_person_parse(f[0], f[1], f[2], &q) == MP_OK);
    CHECK(memcmp(&p, &q, sizeof p) == 0);
    unsigned m = names_match(f[3], &p);
    CHECK((m >> NP__COUNT) == 0);
    CHECK(names_match(f[3], &p) == m);
    const char *locals[1] = {f[3]};
    names_domain_t d;
    names_domain_infer(locals, &p, 1, &d);
    CHECK(d.named == 1);
    CHECK((d.support > 0) == (m != 0));
    names_fit_t fit = names_fit(&d, f[3], &p);
    CHECK(fit == (m ? NAMES_FITS_PATTERN : NAMES_FITS_NEITHER));
    return 0;
}
