/*
 * intel.h - what the address itself reveals, offline: disposable, free provider, role
 * account, likely typo, gibberish local part.
 *
 * Pure look-ups in tables compiled into the binary (data/ -> generated C), no I/O.
 */
#ifndef MP_INTEL_H
#define MP_INTEL_H

#include <stdbool.h>

#include "addr/addr.h"

typedef struct {
    bool disposable;      /* domain (or a parent) is a known disposable-mail provider */
    bool free;            /* domain is a free mailbox provider */
    bool role;            /* local part is a role (admin, info, sales, ...) */
    bool gibberish;       /* local part looks like a keyboard mash */
    double gibberish_score; /* 0..1, higher = more random-looking */
    bool has_suggestion;
    char suggestion[512]; /* corrected address, when a likely typo is found */
} intel_t;

/** Analyse a valid parsed address. */
void intel_analyze(const addr_t *a, intel_t *out);

#endif
