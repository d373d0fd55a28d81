/*
 * clock.h - the only place that reads the clock.
 *
 * mp_now_ms() returns monotonic milliseconds. Tests install a fake clock with
 * mp_clock_set() to drive TTLs and backoffs without sleeping.
 */
#ifndef MP_UTIL_CLOCK_H
#define MP_UTIL_CLOCK_H

#include <stdint.h>

typedef uint64_t (*mp_clock_fn)(void *arg);

/** Monotonic milliseconds (or the injected clock's value). */
uint64_t mp_now_ms(void);

/** Wall-clock seconds since the epoch (for timestamps in results and stores). */
int64_t mp_wall_s(void);

/** Replace the clock (NULL restores the real monotonic clock). */
void mp_clock_set(mp_clock_fn fn, void *arg);

#endif
