/*
 * intel_eval.h - measure address intelligence against the labelled sets in
 * tests/data/intel/ (typos.tsv, correct.tsv, gibberish-local.tsv, real-local.tsv).
 *
 * Shared by bench/intel/eval.c (prints the figures) and tests/unit/test_intel.c (asserts
 * the floors), so that the number in docs/benchmarks.md and the one CI checks are
 * computed by the same code. Everything goes through the whole path: addr_parse, then
 * intel_analyze. Header-only, static functions; reads files with stdio.
 */
#ifndef MP_BENCH_INTEL_EVAL_H
#define MP_BENCH_INTEL_EVAL_H

#include <stdio.h>
#include <string.h>

#include "addr/addr.h"
#include "intel/intel.h"
#include "util/str.h"

typedef struct {
    unsigned typos, typo_right, typo_wrong, typo_none; /* typos.tsv */
    unsigned correct, correct_suggested;               /* correct.tsv: any suggestion is wrong */
    unsigned gib, gib_flagged, real, real_flagged;     /* gibberish / real local parts */
    double typo_precision, typo_recall;
    double gib_precision; /* at an even mix of gibberish and real local parts */
    double gib_recall, real_fp_rate;
    int verbose;                                       /* print every miss to stdout */
} intel_eval_t;

/* Read the first two tab-separated fields of each non-comment line; calls fn. */
static int intel_eval_each(const char *path, void (*fn)(intel_eval_t *, const char *, const char *),
                           intel_eval_t *ev)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "intel_eval: cannot open %s\n", path);
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        const char *second = "";
        if (tab) {
            *tab = '\0';
            second = tab + 1;
            char *tab2 = strchr(second, '\t');
            if (tab2)
                *tab2 = '\0';
        }
        fn(ev, line, second);
    }
    fclose(f);
    return 0;
}

static void intel_eval_analyze(const char *address, addr_t *a, intel_t *in)
{
    addr_parse(address, strlen(address), a);
    intel_analyze(a, in);
}

static void intel_eval_typo(intel_eval_t *ev, const char *typo, const char *meant)
{
    char address[600], want[600];
    size_t p = 0, q = 0;
    mp_appendf(address, sizeof address, &p, "user@%s", typo);
    mp_appendf(want, sizeof want, &q, "user@%s", meant);
    addr_t a;
    intel_t in;
    intel_eval_analyze(address, &a, &in);
    ev->typos++;
    if (!in.has_suggestion) {
        ev->typo_none++;
        if (ev->verbose)
            printf("typo missed: %s (want %s)\n", typo, meant);
    } else if (strcmp(in.suggestion, want) == 0) {
        ev->typo_right++;
    } else {
        ev->typo_wrong++;
        if (ev->verbose)
            printf("typo wrong:  %s -> %s (want %s)\n", typo, in.suggestion, meant);
    }
}

static void intel_eval_correct(intel_eval_t *ev, const char *address, const char *kind)
{
    addr_t a;
    intel_t in;
    intel_eval_analyze(address, &a, &in);
    ev->correct++;
    if (in.has_suggestion) {
        ev->correct_suggested++;
        if (ev->verbose)
            printf("false typo:  %s -> %s (%s)\n", address, in.suggestion, kind);
    }
}

static void intel_eval_local(intel_eval_t *ev, const char *local, int is_gib)
{
    char address[600];
    size_t p = 0;
    mp_appendf(address, sizeof address, &p, "%s@example.org", local);
    addr_t a;
    intel_t in;
    intel_eval_analyze(address, &a, &in);
    if (a.err != ADDR_OK) /* the sets hold valid local parts only; count as not flagged */
        in.gibberish = false;
    if (is_gib) {
        ev->gib++;
        ev->gib_flagged += in.gibberish;
        if (ev->verbose && !in.gibberish)
            printf("gibberish missed: %s (%.3f)\n", local, in.gibberish_score);
    } else {
        ev->real++;
        ev->real_flagged += in.gibberish;
        if (ev->verbose && in.gibberish)
            printf("real flagged:     %s (%.3f)\n", local, in.gibberish_score);
    }
}

static void intel_eval_gib(intel_eval_t *ev, const char *local, const char *kind)
{
    (void)kind;
    intel_eval_local(ev, local, 1);
}

static void intel_eval_real(intel_eval_t *ev, const char *local, const char *kind)
{
    (void)kind;
    intel_eval_local(ev, local, 0);
}

/** Run every set found under dir (tests/data/intel). Returns 0, or -1 if a file is missing. */
static int intel_eval_run(const char *dir, intel_eval_t *ev)
{
    char path[4096];
    size_t p;
    static const struct {
        const char *file;
        void (*fn)(intel_eval_t *, const char *, const char *);
    } sets[] = {
        {"typos.tsv", intel_eval_typo},
        {"correct.tsv", intel_eval_correct},
        {"gibberish-local.tsv", intel_eval_gib},
        {"real-local.tsv", intel_eval_real},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        p = 0;
        mp_appendf(path, sizeof path, &p, "%s/%s", dir, sets[i].file);
        if (intel_eval_each(path, sets[i].fn, ev) != 0)
            return -1;
    }
    unsigned made = ev->typo_right + ev->typo_wrong + ev->correct_suggested;
    ev->typo_precision = made ? (double)ev->typo_right / made : 0.0;
    ev->typo_recall = ev->typos ? (double)ev->typo_right / ev->typos : 0.0;
    /* The two local-part sets differ in size; precision depends on the mix, so it is
     * given for an even one (as many gibberish as real local parts):
     * recall / (recall + false-positive rate). */
    ev->gib_recall = ev->gib ? (double)ev->gib_flagged / ev->gib : 0.0;
    ev->real_fp_rate = ev->real ? (double)ev->real_flagged / ev->real : 0.0;
    ev->gib_precision = ev->gib_recall + ev->real_fp_rate > 0
                            ? ev->gib_recall / (ev->gib_recall + ev->real_fp_rate)
                            : 0.0;
    return 0;
}

#endif
