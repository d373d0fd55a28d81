/*
 * fuzz_learn.c - libFuzzer target for learn_message_read(), the bounce parser.
 *
 * Input: one raw message (any bytes). Aborts when an invariant of learn.h breaks: at
 * most LEARN_EVENTS_MAX events; each has an address with an '@', a valid kind, a status
 * that is empty or "c.s.d" of class 2, 4 or 5, single-line text fields; a hard event
 * is a 5.x.x failure; the reading is deterministic. Replayed over
 * tests/fuzz/corpus/learn/ (real bounces and broken variants) in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learn/learn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_learn: invariant failed at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_line(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    CHECK(n < size);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static learn_event_t a[LEARN_EVENTS_MAX], b[LEARN_EVENTS_MAX];
    size_t na = 0, nb = 0;
    if (size > (1u << 20))
        return 0;
    CHECK(learn_message_read((const char *)data, size, a, &na) == MP_OK);
    CHECK(na <= LEARN_EVENTS_MAX);
    for (size_t i = 0; i < na; i++) {
        const learn_event_t *e = &a[i];
        CHECK(strnlen(e->addr, sizeof e->addr) < sizeof e->addr);
        CHECK(strchr(e->addr, '@') != NULL);
        CHECK(e->kind == LEARN_HARD || e->kind == LEARN_SOFT || e->kind == LEARN_DELIVERED);
        check_line(e->reason, sizeof e->reason);
        check_line(e->outcome, sizeof e->outcome);
        check_line(e->status, sizeof e->status);
        if (e->status[0]) {
            CHECK(e->status[0] == '2' || e->status[0] == '4' || e->status[0] == '5');
            CHECK(e->status[1] == '.');
        }
        if (e->kind == LEARN_HARD)
            CHECK(e->status[0] == '5');
    }
    CHECK(learn_message_read((const char *)data, size, b, &nb) == MP_OK);
    CHECK(na == nb);
    for (size_t i = 0; i < na; i++)
        CHECK(memcmp(&a[i], &b[i], sizeof a[i]) == 0);
    return 0;
}
