/*
 * log.h - logging through one application-installed callback (libevent style).
 *
 * Library code never writes to stderr itself: it calls mp_log(), which forwards to the
 * callback the application installed (the CLI prints to stderr). mp_panic() reports a
 * broken invariant with the function name and aborts (Postfix msg_panic).
 */
#ifndef MP_UTIL_LOG_H
#define MP_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { MP_LOG_DEBUG, MP_LOG_INFO, MP_LOG_WARN, MP_LOG_ERROR } mp_log_level_t;

/** Log sink: level and a formatted, NUL-terminated message without newline. */
typedef void (*mp_log_cb)(mp_log_level_t level, const char *msg, void *arg);

/** Install the sink (NULL: discard everything) and the lowest level passed to it. */
void mp_log_set(mp_log_cb cb, mp_log_level_t min_level, void *arg);

/** Format and pass a message to the sink. */
void mp_log(mp_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How the application's sink writes a line: plain text, one JSON object, and whether
 * each line starts with a syslog priority ("<4>", sd-daemon(3)) for journald. */
typedef enum { MP_LOG_TEXT, MP_LOG_JSON } mp_log_format_t;

/**
 * Format one log line (with '\n') into out: "<P>" when journal is set (P: 7 debug,
 * 6 info, 4 warning, 3 error), then "mailprobe: LEVEL: MSG" or
 * {"time":"…","level":"…","msg":"…"} with time the wall clock in UTC (now_s).
 * @return the length written (truncated messages still end with a newline)
 */
size_t mp_log_format_line(char *out, size_t size, mp_log_level_t level, const char *msg,
                          mp_log_format_t fmt, bool journal, int64_t now_s);

/** True when stderr is the stream systemd connected to the journal ($JOURNAL_STREAM
 *  holds its device:inode), so lines should carry priorities. */
bool mp_log_stderr_is_journal(void);

/** Report a broken invariant and abort. */
#define mp_panic(...) mp_panic_at(__func__, __VA_ARGS__)
void mp_panic_at(const char *func, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
