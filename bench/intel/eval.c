/*
 * eval.c - print the accuracy of address intelligence on tests/data/intel/.
 *
 * Usage: eval [-v] [DIR]   (DIR defaults to tests/data/intel; -v lists every miss)
 * Built by bench/intel/run.sh with cc directly (no CMake target). Same code as the
 * floors asserted by tests/unit/test_intel.c: bench/intel/intel_eval.h.
 */
#include <stdio.h>
#include <string.h>

#include "intel_eval.h"

int main(int argc, char **argv)
{
    intel_eval_t ev;
    memset(&ev, 0, sizeof ev);
    const char *dir = "tests/data/intel";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            ev.verbose = 1;
        else
            dir = argv[i];
    }
    if (intel_eval_run(dir, &ev) != 0)
        return 1;
    printf("typo:      %u typo pairs, %u correct addresses\n", ev.typos, ev.correct);
    printf("           right %u, wrong %u, missed %u, false suggestions on correct %u\n",
           ev.typo_right, ev.typo_wrong, ev.typo_none, ev.correct_suggested);
    printf("           precision %.2f%%  recall %.2f%%\n", 100 * ev.typo_precision,
           100 * ev.typo_recall);
    printf("gibberish: %u gibberish, %u real local parts, threshold %.2f\n", ev.gib, ev.real,
           INTEL_GIBBERISH_THRESHOLD);
    printf("           flagged %u gibberish, %u real\n", ev.gib_flagged, ev.real_flagged);
    printf("           precision %.2f%% (even mix)  recall %.2f%%  false-positive rate %.2f%%\n",
           100 * ev.gib_precision, 100 * ev.gib_recall, 100 * ev.real_fp_rate);
    return 0;
}
