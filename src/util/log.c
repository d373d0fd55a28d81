/* log.c - the one logging sink; see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static mp_log_cb log_cb;
static void *log_arg;
static mp_log_level_t log_min = MP_LOG_WARN;

void mp_log_set(mp_log_cb cb, mp_log_level_t min_level, void *arg)
{
    log_cb = cb;
    log_min = min_level;
    log_arg = arg;
}

void mp_log(mp_log_level_t level, const char *fmt, ...)
{
    if (!log_cb || level < log_min)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_cb(level, buf, log_arg);
}

void mp_panic_at(const char *func, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mailprobe: panic in %s: %s\n", func, buf);
    abort();
}
