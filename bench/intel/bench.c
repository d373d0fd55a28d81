/*
 * bench.c - throughput of address intelligence on one core.
 *
 * Usage: bench [SECONDS]   (run from the repository root; default 3 s per measurement)
 *
 * Builds a deterministic mix of 100,000 addresses from the labelled sets and the data:
 * real local parts (tests/data/intel/real-local.tsv) on correct domains (correct.tsv:
 * popular and ordinary), typo domains (typos.tsv) and disposable domains
 * (data/disposable.txt), in the proportions given by MIX_* below, parses them once,
 * then times intel_analyze() alone and addr_parse() + intel_analyze() together, single
 * threaded, in thread CPU time. Built by bench/intel/run.sh with cc directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr/addr.h"
#include "intel/intel.h"
#include "util/str.h"

#define N_ADDR 100000
#define MIX_CORRECT 80    /* percent: popular and ordinary domains */
#define MIX_TYPO 10       /* percent: misspelt domains */
                          /* the rest: disposable domains */

typedef struct {
    char **v;
    size_t n, cap;
} strv_t;

static void strv_add(strv_t *s, const char *x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            exit(1);
    }
    s->v[s->n] = strdup(x);
    if (!s->v[s->n])
        exit(1);
    s->n++;
}

/* First field of each line; after_at: only the part after '@'. */
static void load(const char *path, strv_t *s, int after_at, size_t limit)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench: cannot open %s (run from the repository root)\n", path);
        exit(1);
    }
    char line[1024];
    while (fgets(line, sizeof line, f) && s->n < limit) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\t\r\n")] = '\0';
        const char *x = line;
        if (after_at) {
            const char *at = strchr(line, '@');
            x = at ? at + 1 : line;
        }
        strv_add(s, x);
    }
    fclose(f);
}

/* CPU time of this thread: "per core" even when the machine is shared (a busy CI
 * host descheduling us would otherwise look like a slow intel). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd_state = 88172645463325252u;
static size_t rnd(size_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (size_t)(rnd_state % n);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;
    if (secs <= 0)
        secs = 3.0;
    strv_t locals = {0}, correct = {0}, typos = {0}, disp = {0};
    load("tests/data/intel/real-local.tsv", &locals, 0, SIZE_MAX);
    load("tests/data/intel/correct.tsv", &correct, 1, SIZE_MAX);
    load("tests/data/intel/typos.tsv", &typos, 0, SIZE_MAX);
    load("data/disposable.txt", &disp, 0, SIZE_MAX);

    char (*text)[300] = malloc(N_ADDR * sizeof *text);
    addr_t *parsed = malloc(N_ADDR * sizeof *parsed);
    if (!text || !parsed)
        return 1;
    for (size_t i = 0; i < N_ADDR; i++) {
        size_t r = rnd(100);
        const char *d = r < MIX_CORRECT ? correct.v[rnd(correct.n)]
                        : r < MIX_CORRECT + MIX_TYPO ? typos.v[rnd(typos.n)]
                                                     : disp.v[rnd(disp.n)];
        size_t pos = 0;
        mp_appendf(text[i], sizeof text[i], &pos, "%s@%s", locals.v[rnd(locals.n)], d);
        addr_parse(text[i], strlen(text[i]), &parsed[i]);
    }

    intel_t in;
    size_t flags[5] = {0};
    /* intel_analyze alone */
    size_t done = 0;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < N_ADDR; i++) {
            intel_analyze(&parsed[i], &in);
            flags[0] += in.disposable;
            flags[1] += in.free;
            flags[2] += in.role;
            flags[3] += in.gibberish;
            flags[4] += in.has_suggestion;
        }
        done += N_ADDR;
        t = now() - t0;
    } while (t < secs);
    double rate_intel = (double)done / t;

    /* addr_parse + intel_analyze */
    addr_t a;
    size_t done2 = 0;
    t0 = now();
    do {
        for (size_t i = 0; i < N_ADDR; i++) {
            addr_parse(text[i], strlen(text[i]), &a);
            intel_analyze(&a, &in);
        }
        done2 += N_ADDR;
        t = now() - t0;
    } while (t < secs);
    double rate_both = (double)done2 / t;

    printf("mix: %d%% correct domains, %d%% typo domains, %d%% disposable domains; "
           "%d addresses\n", MIX_CORRECT, MIX_TYPO, 100 - MIX_CORRECT - MIX_TYPO, N_ADDR);
    printf("flag rates: disposable %.1f%% free %.1f%% role %.1f%% gibberish %.1f%% "
           "suggestion %.1f%%\n",
           100.0 * (double)flags[0] / (double)done, 100.0 * (double)flags[1] / (double)done,
           100.0 * (double)flags[2] / (double)done, 100.0 * (double)flags[3] / (double)done,
           100.0 * (double)flags[4] / (double)done);
    printf("intel_analyze:               %.2f M addresses/s (%.0f ns each)\n", rate_intel / 1e6,
           1e9 / rate_intel);
    printf("addr_parse + intel_analyze:  %.2f M addresses/s (%.0f ns each)\n", rate_both / 1e6,
           1e9 / rate_both);
    return 0;
}
