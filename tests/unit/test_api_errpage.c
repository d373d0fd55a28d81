/*
 * test_api_errpage.c - unit tests for src/api/errpage.c: evhttp's own error page, added to
 * a connection's output piece by piece as evhttp adds it, is replaced by a JSON answer
 * with the same status; anything else (the server's own answers, an HTML page that is not
 * evhttp's template, a response already being written) is left byte for byte alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_int.h"
#include "util/log.h"

typedef struct {
    api_errpage_t w;
    bool answering;
    int code;    /* last status rewritten */
    int pending; /* a settle was asked for */
} watch_t;

static void on_out(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    watch_t *t = arg;
    int rc = api_errpage_see(&t->w, out, info, t->answering, 65536);
    if (rc > 0)
        t->code = rc;
    else if (rc < 0)
        t->pending = 1;
}

static struct evbuffer *out_new(watch_t *t)
{
    memset(t, 0, sizeof *t);
    struct evbuffer *out = evbuffer_new();
    assert_non_null(out);
    assert_non_null(evbuffer_add_cb(out, on_out, t));
    return out;
}

static char *text(struct evbuffer *out)
{
    static char s[4096];
    ev_ssize_t n = evbuffer_copyout(out, s, sizeof s - 1);
    s[n < 0 ? 0 : n] = '\0';
    return s;
}

/* What evhttp adds for evhttp_send_error(code, reason), in its pieces. */
static void evhttp_page(struct evbuffer *out, int code, const char *reason, bool body)
{
    char page[256];
    int pl = snprintf(page, sizeof page,
                      "<HTML><HEAD>\n<TITLE>%d %s</TITLE>\n</HEAD><BODY>\n<H1>%s</H1>\n"
                      "</BODY></HTML>\n",
                      code, reason, reason);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code, reason);
    evbuffer_add_printf(out, "Content-Type: text/html\r\n");
    evbuffer_add_printf(out, "Connection: close\r\n");
    evbuffer_add_printf(out, "Date: Sun, 06 Dec 2026 10:00:00 GMT\r\n");
    evbuffer_add_printf(out, "Content-Length: %d\r\n", pl);
    evbuffer_add(out, "\r\n", 2);
    if (body)
        evbuffer_add(out, page, (size_t)pl);
}

/* The whole buffer is one JSON answer with this status and error code. */
static void assert_json(struct evbuffer *out, const char *status_line, const char *error)
{
    const char *s = text(out);
    assert_memory_equal(s, status_line, strlen(status_line));
    assert_non_null(strstr(s, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s, "\r\nConnection: close\r\n"));
    const char *body = strstr(s, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    const char *cl = strstr(s, "Content-Length: ");
    assert_non_null(cl);
    assert_int_equal(strtol(cl + 16, NULL, 10), (long)strlen(body));
    char want[64];
    snprintf(want, sizeof want, "{\"error\":\"%s\",\"message\":\"", error);
    assert_memory_equal(body, want, strlen(want));
    assert_null(strstr(s, "<HTML>"));
}

static void test_bad_request_page_becomes_json(void **state)
{
    (void)state;
    watch_t t;
    struct evbuffer *out = out_new(&t);
    evhttp_page(out, 400, "Bad Request", true);
    assert_int_equal(t.code, 400);
    assert_json(out, "HTTP/1.1 400 Bad Request\r\n", "bad_request");
    evbuffer_free(out);
}

static void test_each_status_has_its_code(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *reason, *line, *error;
    } cases[] = {
        {413, "Request Entity Too Large", "HTTP/1.1 413 Request Entity Too Large\r\n", "too_large"},
        {417, "Expectation Failed", "HTTP/1.1 417 Expectation Failed\r\n", "expectation_failed"},
        {501, "Not Implemented", "HTTP/1.1 501 Not Implemented\r\n", "not_implemented"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        watch_t t;
        struct evbuffer *out = out_new(&t);
        evhttp_page(out, cases[i].code, cases[i].reason, true);
        assert_int_equal(t.code, cases[i].code);
        assert_json(out, cases[i].line, cases[i].error);
        if (cases[i].code == 413)
            assert_non_null(strstr(text(out), "65536"));
        evbuffer_free(out);
    }
}

/* Expect: 100-continue: evhttp sends the head alone; whole once the callbacks are over. */
static void test_page_without_body_settled(void **state)
{
    (void)state;
    watch_t t;
    struct evbuffer *out = out_new(&t);
    evhttp_page(out, 413, "Request Entity Too Large", false);
    assert_int_equal(t.code, 0);
    assert_int_equal(t.pending, 1);
    assert_int_equal(api_errpage_settle(&t.w, out, 65536), 413);
    assert_json(out, "HTTP/1.1 413 Request Entity Too Large\r\n", "too_large");
    assert_int_equal(api_errpage_settle(&t.w, out, 65536), 0); /* done with */
    evbuffer_free(out);
}

static void test_server_answers_left_alone(void **state)
{
    (void)state;
    watch_t t;
    struct evbuffer *out = out_new(&t);
    /* the same page, but while a handler answers: the server's, not evhttp's */
    t.answering = true;
    evhttp_page(out, 400, "Bad Request", true);
    char before[1024];
    snprintf(before, sizeof before, "%s", text(out));
    assert_int_equal(t.code, 0);
    assert_int_equal(api_errpage_settle(&t.w, out, 65536), 0);
    assert_string_equal(text(out), before);
    evbuffer_free(out);

    /* an HTML page that is not evhttp's template (the web page) */
    out = out_new(&t);
    const char *page = "<!doctype html><html>mailprobe</html>\n";
    evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\n");
    evbuffer_add_printf(out, "Content-Type: text/html\r\nConnection: close\r\n");
    evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", strlen(page));
    evbuffer_add(out, page, strlen(page));
    snprintf(before, sizeof before, "%s", text(out));
    assert_int_equal(api_errpage_settle(&t.w, out, 65536), 0);
    assert_string_equal(text(out), before);
    evbuffer_free(out);

    /* evhttp's template with another reason than the status line's */
    out = out_new(&t);
    evbuffer_add_printf(out, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n");
    evbuffer_add_printf(out, "Connection: close\r\n\r\n");
    evbuffer_add_printf(out, "<HTML><HEAD>\n<TITLE>400 Bad</TITLE>\n</HEAD><BODY>\n<H1>Bad"
                             "</H1>\n</BODY></HTML>\n");
    snprintf(before, sizeof before, "%s", text(out));
    assert_int_equal(api_errpage_settle(&t.w, out, 65536), 0);
    assert_string_equal(text(out), before);
    evbuffer_free(out);
}

/* A "100 Continue" still unsent before the page stays in front of the JSON answer. */
static void test_unsent_bytes_before_kept(void **state)
{
    (void)state;
    watch_t t;
    struct evbuffer *out = out_new(&t);
    evbuffer_add_printf(out, "HTTP/1.1 100 Continue\r\n\r\n");
    evhttp_page(out, 413, "Request Entity Too Large", true);
    assert_int_equal(t.code, 413);
    const char *s = text(out);
    assert_memory_equal(s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 ", 38);
    assert_non_null(strstr(s, "\"error\":\"too_large\""));
    assert_null(strstr(s, "<HTML>"));
    evbuffer_free(out);
}

/* The socket bufferevent keeps its output's front frozen: rewritten, and frozen again. */
static void test_frozen_front(void **state)
{
    (void)state;
    watch_t t;
    struct evbuffer *out = out_new(&t);
    evbuffer_freeze(out, 1);
    evhttp_page(out, 400, "Bad Request", true);
    assert_int_equal(t.code, 400);
    assert_int_equal(evbuffer_drain(out, 1), -1); /* still frozen */
    evbuffer_unfreeze(out, 1);
    assert_json(out, "HTTP/1.1 400 Bad Request\r\n", "bad_request");
    evbuffer_free(out);
}

/* Once part of it left, a response is never rewritten. */
static void test_partly_written_left_alone(void **state)
{
    (void)state;
    watch_t t;
    struct evbuffer *out = out_new(&t);
    evbuffer_add_printf(out, "HTTP/1.1 400 Bad Request\r\n");
    evbuffer_drain(out, 4);
    evbuffer_add_printf(out, "Content-Type: text/html\r\nConnection: close\r\n\r\n");
    evbuffer_add_printf(out, "<HTML><HEAD>\n<TITLE>400 Bad Request</TITLE>\n</HEAD><BODY>\n"
                             "<H1>Bad Request</H1>\n</BODY></HTML>\n");
    assert_int_equal(t.code, 0);
    assert_int_equal(api_errpage_settle(&t.w, out, 65536), 0);
    assert_memory_equal(text(out), "/1.1 400 Bad Request\r\nContent-Type: text/html", 45);
    evbuffer_free(out);
}

/* libevent's own warnings reach the project's log (issue 17, item 6), not stderr: an
 * event on a descriptor that is not open makes the epoll backend warn. */
static char logged[512];

static void capture(mp_log_level_t level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    if (strstr(msg, "libevent: "))
        snprintf(logged, sizeof logged, "%s", msg);
}

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void test_libevent_log_routed(void **state)
{
    (void)state;
    mp_log_set(capture, MP_LOG_DEBUG, NULL);
    api_libevent_log_install();
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    assert_non_null(base);
    assert_string_equal(event_base_get_method(base), "epoll");
    int fd = dup(0);
    assert_true(fd >= 0);
    close(fd); /* a descriptor number that is certainly not open */
    struct event *ev = event_new(base, fd, EV_READ, noop_cb, NULL);
    logged[0] = '\0';
    (void)event_add(ev, NULL); /* epoll_ctl fails: libevent warns */
    event_free(ev);
    event_base_free(base);
    mp_log_set(NULL, MP_LOG_INFO, NULL);
    assert_non_null(strstr(logged, "libevent: Epoll"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_request_page_becomes_json),
        cmocka_unit_test(test_each_status_has_its_code),
        cmocka_unit_test(test_page_without_body_settled),
        cmocka_unit_test(test_server_answers_left_alone),
        cmocka_unit_test(test_unsent_bytes_before_kept),
        cmocka_unit_test(test_frozen_front),
        cmocka_unit_test(test_partly_written_left_alone),
        cmocka_unit_test(test_libevent_log_routed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
