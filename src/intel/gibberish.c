/*
 * gibberish.c - how random a local part looks, from a character trigram model.
 *
 * The model (gen_gibberish.c) was trained by scripts/update-data on ~260k names and
 * words (Debian wamerican/wbritish, npm humannames and first-name lists): the cost in
 * bits of each letter given the two before it. A local part is cut at '+' (the tag is
 * the user's choice, not their name) and split into alphabetic runs at '.', '-', '_'
 * and digits. For each run of at least GIB_MIN_RUN letters, the evidence that it was
 * typed at random is its cost under the model minus its cost under a uniform random
 * source (log2 26 bits a letter); shorter runs are initials or syllables and count as
 * no evidence either way. A digit run between two letters ("xk29qpl") is evidence of a
 * generated string and adds GIB_INTERLEAVE_BITS. The total maps monotonically to 0..1,
 * 0.5 at GIB_THRESHOLD_BITS (INTEL_GIBBERISH_THRESHOLD).
 *
 * Does not: look at the domain, use a list of patterns, allocate, or need libm.
 * Parameters (GIB_*) were chosen on tests/data/intel/ (docs/benchmarks.md).
 */
#include "intel/intel.h"
#include "intel/intel_int.h"

#define GIB_MIN_RUN 5             /* letters in a run before it counts as evidence */
#define GIB_UNIFORM_BITS8 37.6035 /* log2(26) in the table's 1/8-bit unit */
#define GIB_END_BITS8 16.0        /* a random string's end, 2 bits */
#define GIB_INTERLEAVE_BITS 8.0   /* per digit run inside letters */
#define GIB_THRESHOLD_BITS 7.5    /* evidence scoring 0.5 */
#define GIB_SCALE_BITS 3.0        /* evidence per step of the 0..1 squashing */
#define GIB_MAX_LOCAL 256         /* longer local parts: only the first 256 bytes count */

static int letter_index(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    return -1;
}

/* Evidence in bits that the letters local[start..start+len) are random. */
static double run_evidence(const char *s, size_t len)
{
    int a = INTEL_GIB_BOUNDARY, b = INTEL_GIB_BOUNDARY;
    unsigned cost = 0;
    for (size_t i = 0; i < len; i++) {
        int c = letter_index((unsigned char)s[i]);
        cost += intel_gib_cost[a][b][c];
        a = b;
        b = c;
    }
    cost += intel_gib_cost[a][b][INTEL_GIB_BOUNDARY];
    return ((double)cost - (double)len * GIB_UNIFORM_BITS8 - GIB_END_BITS8) / 8.0;
}

double intel_gibberish_score(const char *local)
{
    if (!local)
        return 0.0;
    double evidence = 0.0;
    size_t run = 0, i = 0;
    bool after_letter = false, in_digits = false;
    for (; i < GIB_MAX_LOCAL && local[i] && local[i] != '+'; i++) {
        unsigned char c = (unsigned char)local[i];
        if (c == '"' || c >= 0x80)
            return 0.0; /* quoted or UTF-8: the model knows neither */
        if (letter_index(c) >= 0) {
            if (in_digits && after_letter)
                evidence += GIB_INTERLEAVE_BITS;
            in_digits = false;
            after_letter = true;
            run++;
            continue;
        }
        if (run >= GIB_MIN_RUN)
            evidence += run_evidence(local + i - run, run);
        run = 0;
        if (c >= '0' && c <= '9') {
            in_digits = true;
        } else {
            in_digits = false;
            after_letter = false;
        }
    }
    if (run >= GIB_MIN_RUN)
        evidence += run_evidence(local + i - run, run);
    double x = (evidence - GIB_THRESHOLD_BITS) / GIB_SCALE_BITS;
    double ax = x < 0 ? -x : x;
    return 0.5 + 0.5 * x / (1.0 + ax);
}
