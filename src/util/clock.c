/* clock.c - monotonic clock with a test hook; see clock.h. */
#include "util/clock.h"

#include <time.h>

static mp_clock_fn clock_fn;
static void *clock_arg;

uint64_t mp_now_ms(void)
{
    if (clock_fn)
        return clock_fn(clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t mp_wall_s(void)
{
    return (int64_t)time(NULL);
}

void mp_clock_set(mp_clock_fn fn, void *arg)
{
    clock_fn = fn;
    clock_arg = arg;
}
