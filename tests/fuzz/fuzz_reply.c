/*
 * fuzz_reply.c - libFuzzer target for the SMTP reply reader (src/smtp/reply.c).
 *
 * Feeds the input as a stream of server bytes: reads replies one after the other as the
 * session does, and checks the reader's invariants (abort() on violation):
 *  - a reply consumes 1..len bytes and has a code in 200..599 and 1..LINES_MAX lines;
 *  - the enhanced code, when kept, has the reply's class; text is NUL-terminated;
 *  - a reply read from a longer buffer reads the same from exactly its own bytes;
 *  - "need more bytes" for a buffer means "need more bytes" for any prefix of it.
 * Also runs smtp_reply_from_string() on the input as a string.
 * Replayed over tests/fuzz/corpus/reply/ in every build (replay.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/reply.h"

static void check_reply(const smtp_reply_t *r)
{
    if (r->code < 200 || r->code > 599)
        abort();
    if (r->nlines < 1 || r->nlines > SMTP_REPLY_LINES_MAX)
        abort();
    if (memchr(r->text, '\0', sizeof r->text) == NULL)
        abort();
    if (memchr(r->enh, '\0', sizeof r->enh) == NULL)
        abort();
    if (r->enh[0] && r->enh[0] - '0' != r->code / 100)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smtp_reply_t r, r2;
    size_t off = 0;

    while (off < size) {
        size_t used = 0;
        smtp_rd_status_t st = smtp_reply_parse(data + off, size - off, &r, &used);
        if (st == SMTP_RD_REPLY) {
            if (used == 0 || used > size - off)
                abort();
            check_reply(&r);
            size_t used2 = 0;
            if (smtp_reply_parse(data + off, used, &r2, &used2) != SMTP_RD_REPLY ||
                used2 != used || r2.code != r.code || strcmp(r2.text, r.text) != 0 ||
                strcmp(r2.enh, r.enh) != 0)
                abort();
            off += used;
            continue;
        }
        if (st == SMTP_RD_MORE) {
            size_t half = (size - off) / 2;
            if (smtp_reply_parse(data + off, half, &r2, &used) != SMTP_RD_MORE)
                abort();
            if (size - off > SMTP_REPLY_TOTAL_MAX)
                abort(); /* the reader must have refused that much */
        } else if (st != SMTP_RD_ERR_LINE && st != SMTP_RD_ERR_SYNTAX &&
                   st != SMTP_RD_ERR_SIZE) {
            abort();
        }
        break;
    }

    if (size <= 65536) {
        char *s = malloc(size + 1);
        if (!s)
            return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        const char *err = NULL;
        if (smtp_reply_from_string(s, &r, &err)) {
            check_reply(&r);
            if (err)
                abort();
        } else if (!err) {
            abort();
        }
        free(s);
    }
    return 0;
}
