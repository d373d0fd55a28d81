/*
 * intel.c - placeholder-free minimal intel: the full tables and algorithms land with
 * the address-intelligence work (issue 5). Until then every flag is false and no
 * suggestion is made, which is what the result reports.
 */
#include "intel/intel.h"

#include <string.h>

void intel_analyze(const addr_t *a, intel_t *out)
{
    (void)a;
    memset(out, 0, sizeof *out);
}
