/*
 * errpage.c - evhttp's own error answers, rewritten as JSON before they leave (see
 * api_int.h). libevent 2.1's evhttp answers a request it cannot hand to the server itself,
 * with evhttp_send_error(): a malformed request line or header, an HTTP version other than
 * 0.x/1.x, a head over its limit, a bad Content-Length or chunk (400), a body over
 * --max-body (413), an Expect other than 100-continue (417), a method it does not know
 * (501). The page is HTML and 2.1 has no hook to change it (2.2's evhttp_set_errorcb).
 *
 * The server owns every connection's bufferevent (conns.c), so it watches the output
 * buffer (an evbuffer callback). evhttp writes such an answer in one call chain, head and
 * body, and the socket is written only when the loop polls again; in between the answer
 * is replaced whole. It is recognised exactly, never by guess: a response that starts
 * while mailprobe's handler answers no request, whose head says text/html and
 * Connection: close, and whose body is byte for byte evhttp's template for the status
 * and reason of its status line. Anything else is left alone and no longer looked at.
 * It does not parse requests, and never touches what the server's handlers answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "api/api_int.h"

#define PAGE_MAX 2048   /* evhttp's error answers are ~250 bytes */
#define BEFORE_MAX 4096 /* unsent bytes before it ("100 Continue"): beyond, left alone */

/* evhttp_send_error's template (http.c, ERR_FORMAT) */
static int page_render(char *out, size_t size, int code, const char *reason)
{
    return snprintf(out, size,
                    "<HTML><HEAD>\n<TITLE>%d %s</TITLE>\n</HEAD><BODY>\n<H1>%s</H1>\n"
                    "</BODY></HTML>\n",
                    code, reason, reason);
}

static const char *mem_find(const char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0)
            return p + i;
    return NULL;
}

/* Does the head (status line and header lines, CRLF each) carry this header line exactly? */
static bool head_has(const char *head, size_t n, const char *line)
{
    const char *p = mem_find(head, n, line);
    return p && p > head && p[-1] == '\n' && (size_t)(p - head) + strlen(line) + 2 <= n &&
           memcmp(p + strlen(line), "\r\n", 2) == 0;
}

static void json_answer(struct evbuffer *dst, const char *version, int code, const char *reason,
                        size_t max_body)
{
    const char *error = "http_error";
    char msg[200];
    snprintf(msg, sizeof msg, "%s", reason);
    switch (code) {
    case 400:
        error = "bad_request";
        snprintf(msg, sizeof msg,
                 "the request could not be read as HTTP/1.x: a malformed request line or "
                 "header, an unsupported HTTP version, a bad Content-Length or chunk, or a "
                 "head over 16 KiB");
        break;
    case 413:
        error = "too_large";
        snprintf(msg, sizeof msg, "the body is larger than the server's --max-body (%zu bytes)",
                 max_body);
        break;
    case 417:
        error = "expectation_failed";
        snprintf(msg, sizeof msg, "only \\\"Expect: 100-continue\\\" is understood");
        break;
    case 501:
        error = "not_implemented";
        snprintf(msg, sizeof msg, "unknown method: the API uses GET, POST and DELETE");
        break;
    default: break;
    }
    char body[320];
    int bl = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}\n", error, msg);
    if (bl < 0 || (size_t)bl >= sizeof body)
        bl = 0;
    evbuffer_add_printf(dst,
                        "%s %d %s\r\nContent-Type: application/json\r\n"
                        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                        "Connection: close\r\nContent-Length: %d\r\n\r\n",
                        version, code, reason, bl);
    evbuffer_add(dst, body, (size_t)bl);
}

/* Replace out's bytes from w->at to the end with src's; returns -1 when it cannot. The
 * socket bufferevent may keep its output's front frozen (it unfreezes it to write). */
static int replace_tail(api_errpage_t *w, struct evbuffer *out, struct evbuffer *src)
{
    struct evbuffer *before = evbuffer_new();
    if (!before)
        return -1;
    int rc = -1;
    bool frozen = evbuffer_drain(out, 0) != 0;
    w->rewriting = true;
    if (frozen)
        evbuffer_unfreeze(out, 1);
    if (evbuffer_remove_buffer(out, before, w->at) == (int)w->at &&
        evbuffer_drain(out, evbuffer_get_length(out)) == 0 &&
        evbuffer_add_buffer(out, before) == 0 && evbuffer_add_buffer(out, src) == 0)
        rc = 0;
    if (frozen)
        evbuffer_freeze(out, 1);
    w->rewriting = false;
    evbuffer_free(before);
    return rc;
}

/* Look at the watched response: rewrite it when it is evhttp's page, stop watching when
 * it cannot be one; whole: no more bytes will come for now. */
static int page_check(api_errpage_t *w, struct evbuffer *out, bool whole, size_t max_body)
{
    size_t len = evbuffer_get_length(out);
    if (w->at > BEFORE_MAX || len - w->at > PAGE_MAX)
        goto stop;
    const char *all = (const char *)evbuffer_pullup(out, (ev_ssize_t)len);
    if (!all)
        goto stop;
    const char *p = all + w->at;
    size_t n = len - w->at;
    const char *end = mem_find(p, n, "\r\n\r\n");
    if (!end)
        goto wait;
    size_t head_len = (size_t)(end - p) + 2; /* through the last header line's CRLF */
    const char *body = end + 4;
    size_t body_len = n - head_len - 2;
    /* "HTTP/1.x NNN Reason\r\n" */
    const char *eol = mem_find(p, head_len, "\r\n");
    if (!eol || eol - p < 13 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[12] != ' ')
        goto stop;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            goto stop;
        code = code * 10 + (p[i] - '0');
    }
    char version[9], reason[64];
    memcpy(version, p, 8);
    version[8] = '\0';
    size_t rl = (size_t)(eol - (p + 13));
    if (code < 400 || rl == 0 || rl >= sizeof reason)
        goto stop;
    memcpy(reason, p + 13, rl);
    reason[rl] = '\0';
    if (!head_has(p, head_len, "Content-Type: text/html") ||
        !head_has(p, head_len, "Connection: close"))
        goto stop;
    char page[256];
    int pl = page_render(page, sizeof page, code, reason);
    if (pl <= 0 || (size_t)pl >= sizeof page)
        goto stop;
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %d", pl);
    bool has_cl = mem_find(p, head_len, "Content-Length:") != NULL;
    if (has_cl && !head_has(p, head_len, cl))
        goto stop;
    if (body_len < (size_t)pl && memcmp(body, page, body_len) == 0) {
        /* the body is still to come; or evhttp leaves it out (a request that said
         * Expect: 100-continue), which shows once the callbacks are over */
        if (!whole || body_len > 0 || !has_cl)
            goto wait;
    } else if (body_len != (size_t)pl || memcmp(body, page, body_len) != 0) {
        goto stop;
    }
    struct evbuffer *json = evbuffer_new();
    if (!json)
        goto stop;
    json_answer(json, version, code, reason, max_body);
    int rc = replace_tail(w, out, json);
    evbuffer_free(json);
    w->watching = false;
    return rc == 0 ? code : 0;
wait:
    if (whole)
        goto stop;
    return -1;
stop:
    w->watching = false;
    return 0;
}

int api_errpage_see(api_errpage_t *w, struct evbuffer *out, const struct evbuffer_cb_info *info,
                    bool answering, size_t max_body)
{
    if (w->rewriting)
        return 0;
    if (w->watching && info->n_deleted) {
        if (info->n_deleted > w->at) {
            w->watching = false; /* it is being written already */
            return 0;
        }
        w->at -= info->n_deleted;
    }
    if (!w->watching && info->n_added && !answering) {
        size_t len = evbuffer_get_length(out);
        if (len < info->n_added || len - info->n_added > BEFORE_MAX || info->n_added < 7)
            return 0;
        size_t at = len - info->n_added;
        const unsigned char *all = evbuffer_pullup(out, (ev_ssize_t)(at + 7));
        if (!all || memcmp(all + at, "HTTP/1.", 7) != 0)
            return 0;
        w->watching = true;
        w->at = at;
    }
    if (!w->watching || !info->n_added)
        return 0;
    return page_check(w, out, false, max_body);
}

int api_errpage_settle(api_errpage_t *w, struct evbuffer *out, size_t max_body)
{
    if (!w->watching)
        return 0;
    return page_check(w, out, true, max_body);
}
