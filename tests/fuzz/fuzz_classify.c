/*
 * fuzz_classify.c - libFuzzer target for classify_reply().
 *
 * Input: "stage<TAB>code<TAB>enhanced<TAB>text" (the layout of tests/data/replies.tsv,
 * so seeds are readable); a stage that is not a stage name takes its first byte as the
 * raw enum value (out-of-range values included), a code that is not digits reads as -1,
 * and missing fields are empty. The text may hold any bytes up to the first NUL.
 * Aborts when an invariant of classify.h breaks: the outcome is in range and equals
 * out->outcome, rule and why are set, the reading is deterministic, no stage before
 * RCPT yields a mailbox verdict, and only a 4xx reads as greylisted or temporary. Replayed over
 * tests/fuzz/corpus/classify/ in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify/classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_classify: invariant failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define FIELD_MAX 64
#define TEXT_MAX (1u << 16)

/* Copy the bytes up to the next TAB (or the end) into dst as a C string. */
static size_t take_field(const uint8_t *data, size_t size, size_t pos, char *dst, size_t cap,
                         bool last)
{
    size_t n = 0;
    while (pos < size && (last || data[pos] != '\t')) {
        if (n + 1 < cap)
            dst[n++] = (char)data[pos];
        pos++;
    }
    dst[n] = '\0';
    return pos < size ? pos + 1 : pos;
}

static int parse_code(const char *s)
{
    int v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static cl_stage_t parse_stage(const char *s)
{
    for (int st = CL_STAGE_BANNER; st <= CL_STAGE_OTHER; st++)
        if (strcmp(s, classify_stage_name((cl_stage_t)st)) == 0)
            return (cl_stage_t)st;
    return (cl_stage_t)(unsigned char)s[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char stage_s[FIELD_MAX], code_s[FIELD_MAX], enh_s[FIELD_MAX], text[TEXT_MAX];
    size_t pos = 0;
    pos = take_field(data, size, pos, stage_s, sizeof stage_s, false);
    pos = take_field(data, size, pos, code_s, sizeof code_s, false);
    pos = take_field(data, size, pos, enh_s, sizeof enh_s, false);
    take_field(data, size, pos, text, sizeof text, true);

    cl_stage_t stage = parse_stage(stage_s);
    int code = parse_code(code_s);
    const char *enh = enh_s[0] == '-' ? NULL : enh_s; /* "-" stands for NULL */

    cl_result_t a, b;
    memset(&a, 0xa5, sizeof a);
    cl_outcome_t o = classify_reply(stage, code, enh, text, &a);
    CHECK((unsigned)o < CL__COUNT);
    CHECK(o == a.outcome);
    CHECK(a.rule != NULL && a.rule[0] != '\0');
    CHECK(a.why != NULL && a.why[0] != '\0');
    CHECK(strcmp(classify_outcome_name(o), "invalid") != 0);

    /* Deterministic, and the result pointer is optional. */
    CHECK(classify_reply(stage, code, enh, text, &b) == o);
    CHECK(strcmp(a.rule, b.rule) == 0);
    CHECK(classify_reply(stage, code, enh, text, NULL) == o);

    /* Never a mailbox verdict before RCPT. */
    if (stage != CL_STAGE_RCPT) {
        CHECK(o != CL_ANTI_ENUM && o != CL_MAILBOX_ABSENT && o != CL_MAILBOX_DISABLED &&
              o != CL_MAILBOX_FULL && o != CL_RELAY_DENIED);
        CHECK(o != CL_DOMAIN_ABSENT || code == 521 || code == 556);
    }
    /* Codes outside 200..599 are never anything but a protocol error. */
    if (code < 200 || code > 599)
        CHECK(o == CL_PROTOCOL_ERROR);
    /* Greylisting and other temporary readings only come from a 4xx (a rate limit may
     * come as a 5xx: "550 5.2.1 ... receiving mail at a rate ..."). */
    if (o == CL_GREYLISTED || o == CL_TEMPORARY)
        CHECK(code / 100 == 4);
    if (classify_is_temporary(o))
        CHECK(code / 100 == 4 || code / 100 == 5);
    return 0;
}
