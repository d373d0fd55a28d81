/*
 * log.h - logging through one application-installed callback (libevent style).
 *
 * Library code never writes to stderr itself: it calls mp_log(), which forwards to the
 * callback the application installed (the CLI prints to stderr). mp_panic() reports a
 * broken invariant with the function name and aborts (Postfix msg_panic).
 */
#ifndef MP_UTIL_LOG_H
#define MP_UTIL_LOG_H

typedef enum { MP_LOG_DEBUG, MP_LOG_INFO, MP_LOG_WARN, MP_LOG_ERROR } mp_log_level_t;

/** Log sink: level and a formatted, NUL-terminated message without newline. */
typedef void (*mp_log_cb)(mp_log_level_t level, const char *msg, void *arg);

/** Install the sink (NULL: discard everything) and the lowest level passed to it. */
void mp_log_set(mp_log_cb cb, mp_log_level_t min_level, void *arg);

/** Format and pass a message to the sink. */
void mp_log(mp_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Report a broken invariant and abort. */
#define mp_panic(...) mp_panic_at(__func__, __VA_ARGS__)
void mp_panic_at(const char *func, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
