/* log.c - the one logging sink; see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0. p[0] >= 0x80. */
static size_t utf8_seq_len(const unsigned char *p)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2, min = 0x80, cp = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3, min = 0x800, cp = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4, min = 0x10000, cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static const char *const level_names[] = {"debug", "info", "warning", "error"};
static const char level_prio[] = {'7', '6', '4', '3'};

size_t mp_log_format_line(char *out, size_t size, mp_log_level_t level, const char *msg,
                          mp_log_format_t fmt, bool journal, int64_t now_s)
{
    if (size < 8)
        return 0;
    size_t pos = 0, room = size - 2; /* keep space for "\n\0" */
    if (journal) {
        out[pos++] = '<';
        out[pos++] = level_prio[level];
        out[pos++] = '>';
    }
    if (fmt == MP_LOG_TEXT) {
        int n = snprintf(out + pos, size - pos, "mailprobe: %s: %s", level_names[level], msg);
        pos = n < 0 ? pos : pos + (size_t)n;
    } else {
        time_t t = (time_t)now_s;
        struct tm tm;
        char ts[32] = "";
        if (gmtime_r(&t, &tm))
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int n = snprintf(out + pos, size - pos, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                         ts, level_names[level]);
        pos = n < 0 ? pos : pos + (size_t)n;
        /* JSON string escapes (RFC 8259 section 7). The text stays valid UTF-8 whatever
         * a peer put in the message: a broken sequence becomes U+FFFD; U+2028 and
         * U+2029 are escaped as in every JSON output of mailprobe. */
        const unsigned char *p = (const unsigned char *)msg;
        while (*p && pos + 8 < room) {
            size_t len = *p < 0x80 ? 1 : utf8_seq_len(p);
            if (*p == '"' || *p == '\\') {
                out[pos++] = '\\';
                out[pos++] = (char)*p;
            } else if (*p < 0x20 || *p == 0x7f) {
                pos += (size_t)snprintf(out + pos, size - pos, "\\u%04x", *p);
            } else if (len == 0) {
                memcpy(out + pos, "\\ufffd", 6);
                pos += 6;
                len = 1;
            } else if (len == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
                memcpy(out + pos, p[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
                pos += 6;
            } else {
                memcpy(out + pos, p, len);
                pos += len;
            }
            p += len;
        }
        if (pos + 2 < room) {
            out[pos++] = '"';
            out[pos++] = '}';
        }
    }
    if (pos > room)
        pos = room;
    out[pos++] = '\n';
    out[pos] = '\0';
    return pos;
}

bool mp_log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    struct stat sb;
    if (!js || !*js || fstat(2, &sb) != 0)
        return false;
    char *end;
    unsigned long long dev = strtoull(js, &end, 10);
    if (end == js || *end != ':')
        return false;
    const char *ino_s = end + 1;
    unsigned long long ino = strtoull(ino_s, &end, 10);
    return end != ino_s && *end == '\0' && dev == (unsigned long long)sb.st_dev &&
           ino == (unsigned long long)sb.st_ino;
}
