/*
 * phase2.c - what the catch-all assessment adds to a bulk job's output phase: the time
 * of job_assess_build (one more read of the input and of the stored results, the list
 * prior, the history recorded and looked up, every accept-all domain weighed) on a
 * synthetic job of N rows, 30 % of them on accept-all domains (20 rows a domain,
 * first.last with names), the others deliverable. Built and run by bench/assess/phase2.sh.
 *
 * usage: phase2 [ROWS]      (default 100000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "job/job.h"

static const char *const first[] = {"anna", "john", "maria", "peter", "lena", "omar",
                                    "yuki", "sven", "ines", "paul", "chen", "ravi"};
static const char *const last[] = {"smith", "garcia", "novak", "berg", "tanaka", "okafor",
                                   "muller", "rossi", "kowalski", "silva", "khan", "dubois"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "phase2: %s: %s\n", what, why);
    return 1;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    char dir[] = "/tmp/mp-phase2-XXXXXX", input[64], db[64], err[512];
    if (!mkdtemp(dir))
        return fail("mkdtemp", "cannot");
    snprintf(input, sizeof input, "%s/list.csv", dir);
    snprintf(db, sizeof db, "%s/jobs.sqlite", dir);
    FILE *f = fopen(input, "w");
    if (!f)
        return fail(input, "cannot write");
    fprintf(f, "first_name,last_name,email\n");
    size_t accept_all = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = i / 20;
        const char *fi = first[i % 12], *la = last[(i / 12) % 12];
        fprintf(f, "%s,%s,%s.%s@d%zu.example\n", fi, la, fi, la, d);
        accept_all += d % 10 < 3;
    }
    fclose(f);

    store_t *st = NULL;
    if (store_open(db, &st, err, sizeof err) != MP_OK)
        return fail(db, err);
    store_job_t job;
    memset(&job, 0, sizeof job);
    job.input_path = input;
    job.fingerprint = (char *)"bench";
    job.options = (char *)"bench";
    if (store_job_create(st, &job) != MP_OK)
        return fail("job", store_errmsg(st));
    char addr[128];
    for (size_t i = 0; i < n; i++) {
        size_t d = i / 20;
        bool aa = d % 10 < 3;
        const char *fi = first[i % 12], *la = last[(i / 12) % 12];
        snprintf(addr, sizeof addr, "%s.%s@d%zu.example", fi, la, d);
        store_result_t r = {(int64_t)i + 1, addr, NULL, aa ? "risky" : "deliverable",
                            aa ? "accept_all" : "accepted", aa ? 50 : 95,
                            aa ? "{\"verdict\":\"risky\",\"reason\":\"accept_all\"}"
                               : "{\"verdict\":\"deliverable\",\"reason\":\"accepted\"}",
                            0};
        if (store_result_put(st, job.id, &r) != MP_OK)
            return fail("result", store_errmsg(st));
    }
    store_flush(st);

    for (int with_hist = 0; with_hist < 2; with_hist++) {
        history_t *h = NULL;
        if (with_hist && history_open(db, &h, err, sizeof err) != MP_OK)
            return fail("history", err);
        job_assess_t *a = NULL;
        double t0 = now_ms();
        if (job_assess_build(st, job.id, input, NULL, h, true, (int64_t)time(NULL), &a,
                             err, sizeof err) != MP_OK)
            return fail("job_assess_build", err);
        double ms = now_ms() - t0;
        assess_prior_t pr;
        uint64_t l[3];
        job_assess_summary(a, &pr, l);
        printf("%zu rows (%zu accept-all), history %s: %.0f ms, %.2f us a row; "
               "%llu likely_valid, %llu likely_invalid, %llu no_evidence\n",
               n, accept_all, with_hist ? "on (recorded and read)" : "off", ms,
               ms * 1000.0 / (double)n, (unsigned long long)l[ASSESS_LIKELY_VALID],
               (unsigned long long)l[ASSESS_LIKELY_INVALID],
               (unsigned long long)l[ASSESS_NO_EVIDENCE]);
        job_assess_free(a);
        history_close(h);
    }
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
