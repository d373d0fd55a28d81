/*
 * reply.h - the SMTP reply reader: bytes in, one complete reply out.
 *
 * Pure and stateless (fuzzable): it looks at the bytes received so far and says whether
 * they start with a complete reply (RFC 5321 §4.2: "NNN-text" continuation lines, a last
 * "NNN text" or "NNN" line, CRLF; a bare LF is tolerated), how many bytes it used, or
 * why they can never form one. It requires [2-5][0-9][0-9], the same code on every line,
 * '-' / ' ' after the code, a bounded line length, line count and total size, and no NUL.
 * The enhanced status code (RFC 3463/2034) is kept only when its class digit matches the
 * reply's first digit (as Postfix smtp_chat does).
 *
 * It does not interpret replies (see classify).
 */
#ifndef MP_SMTP_REPLY_H
#define MP_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_LINE_MAX 2048   /* bytes per line incl. CRLF (RFC says 512; be lenient) */
#define SMTP_REPLY_LINES_MAX 128   /* lines per reply */
#define SMTP_REPLY_TOTAL_MAX 32768 /* bytes per reply */
#define SMTP_REPLY_TEXT_MAX 2048   /* text kept in smtp_reply_t; longer text is truncated */

typedef struct {
    int code;                          /* 200..599 */
    char enh[16];                      /* "5.1.1" or "" */
    char text[SMTP_REPLY_TEXT_MAX];    /* lines' text after code (and enhanced code of the
                                          first line, and the same code opening a later
                                          line), joined with '\n'; other control bytes
                                          become spaces */
    bool truncated;                    /* text was cut at SMTP_REPLY_TEXT_MAX - 1 */
    unsigned nlines;
} smtp_reply_t;

typedef enum {
    SMTP_RD_MORE = 0,     /* no complete reply yet and nothing wrong so far */
    SMTP_RD_REPLY,        /* *out holds a reply; *used bytes were consumed */
    SMTP_RD_ERR_LINE,     /* a line over SMTP_REPLY_LINE_MAX */
    SMTP_RD_ERR_SYNTAX,   /* not "[2-5]NN" + '-'/' '/EOL, NUL byte, or code changed mid-reply */
    SMTP_RD_ERR_SIZE      /* too many lines or bytes in one reply */
} smtp_rd_status_t;

/**
 * Try to read one reply from the start of buf.
 * @param buf,len bytes received and not yet consumed
 * @param out     filled when SMTP_RD_REPLY is returned
 * @param used    bytes consumed by that reply (only set on SMTP_RD_REPLY)
 */
smtp_rd_status_t smtp_reply_parse(const unsigned char *buf, size_t len, smtp_reply_t *out,
                                  size_t *used);

/** Parse a reply given as a string for `mailprobe explain`: accepts "550 5.1.1 text",
 *  multi-line text with \n, and no trailing CRLF. Returns false with *err set on error. */
bool smtp_reply_from_string(const char *s, smtp_reply_t *out, const char **err);

/** Text for a reader status. */
const char *smtp_rd_status_text(smtp_rd_status_t st);

#endif
