/*
 * classify_int.h - private to src/classify: the rule record and the rule tables.
 *
 * The engine (classify.c) walks three tables defined in rules.c, in this order:
 *   cl_exceptions[]  text patterns proven by real replies to override the codes;
 *   cl_enh_rules[]   RFC 3463 enhanced status codes (RCPT only);
 *   cl_hints[]       text that explains a reply whose codes did not decide (RCPT only);
 * then falls back to the basic code and the stage (classify.c, cl_default()).
 * The first rule that matches decides. docs/internals/classify.md explains the order.
 * Nothing here allocates; every string is static.
 */
#ifndef MP_CLASSIFY_INT_H
#define MP_CLASSIFY_INT_H

#include <stddef.h>

#include "classify/classify.h"

/* Stage bits for cl_rule_t.stages. */
#define CL_S(st) (1u << (unsigned)(st))
#define CL_S_RCPT CL_S(CL_STAGE_RCPT)
#define CL_S_ANY 0x3fu

/* Reply-class bits for cl_rule_t.classes (first digit of the basic code). */
#define CL_C4 0x1u
#define CL_C5 0x2u
#define CL_C45 (CL_C4 | CL_C5)

/** One rule. A rule matches when every condition that is set holds. */
typedef struct {
    const char *id;    /* stable id reported in cl_result_t.rule, e.g. "text:dnsbl" */
    unsigned stages;   /* CL_S(...) bits; CL_S_ANY for every stage */
    unsigned classes;  /* CL_C4 / CL_C5 bits */
    int code;          /* exact basic code, 0 = any */
    const char *enh;   /* enhanced-code pattern "5.4.1", "5.7.*", "*.2.2", or several
                          joined by '|'; NULL = any, including none. A pattern never
                          matches an absent code. */
    const char *text;  /* '|'-separated lower-case alternatives, one must occur in the
                          normalised text; NULL = no text condition */
    const char *text2; /* a second such condition that must also hold; NULL = none */
    cl_outcome_t outcome;
    const char *why; /* one human sentence */
} cl_rule_t;

extern const cl_rule_t cl_exceptions[];
extern const size_t cl_exceptions_len;
extern const cl_rule_t cl_enh_rules[];
extern const size_t cl_enh_rules_len;
extern const cl_rule_t cl_hints[];
extern const size_t cl_hints_len;

#endif
