/*
 * server.c - the HTTP server: routing, authentication, rate limits, the web page,
 * /healthz, /metrics and /v1/check (see api.h). Jobs are in jobs.c.
 *
 * evhttp owns a request until we answer it, and an answer may come long after the
 * client went away (a check outlives its caller's wait). We therefore never drop a
 * request: every one is answered exactly once, by a result, the end of its wait, or
 * shutdown; answering a request whose connection closed only frees it (evhttp).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <sys/resource.h>

#include "addr/addr.h"
#include "api/api_int.h"
#include "intel/intel.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define BUCKETS_MAX 10000 /* rate-limit entries kept before they are all forgotten */

/* ---- replies ------------------------------------------------------------------------ */

void api_reply(api_t *a, struct evhttp_request *req, int code, struct evbuffer *body)
{
    api_metrics_code(&a->m, code);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!evhttp_find_header(h, "Cache-Control"))
        evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, code, NULL, body);
}

void api_reply_text(api_t *a, struct evhttp_request *req, int code, const char *ctype,
                    const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    api_reply(a, req, b ? code : 500, b);
    if (b)
        evbuffer_free(b);
}

void api_reply_json(api_t *a, struct evhttp_request *req, int code, json_t *j)
{
    char *text = j ? mp_json_escape_ls(json_dumps(j, JSON_COMPACT)) : NULL;
    if (!text) {
        api_reply_text(a, req, 500, "application/json",
                       "{\"error\":\"internal\",\"message\":\"out of memory\"}\n");
    } else {
        size_t n = strlen(text);
        struct evbuffer *b = evbuffer_new();
        if (b) {
            evbuffer_add(b, text, n);
            evbuffer_add(b, "\n", 1);
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        api_reply(a, req, b ? code : 500, b);
        if (b)
            evbuffer_free(b);
    }
    free(text);
    json_decref(j);
}

void api_error(api_t *a, struct evhttp_request *req, int code, const char *error,
               const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_text_clean(msg); /* it may quote a request's path or bytes */
    api_reply_json(a, req, code, json_pack("{ssss}", "error", error, "message", msg));
}

const char *api_body(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    if (!*len)
        return NULL;
    if (evbuffer_add(in, "", 1) != 0) /* NUL-terminate; len excludes it */
        return NULL;
    return (const char *)evbuffer_pullup(in, -1);
}

/* ---- authentication and rate limits ------------------------------------------------- */

typedef struct {
    double tokens;
    uint64_t last_ms;
} bucket_t;

/* The caller's key: its token, or its address when the server has no tokens. */
static bool authenticate(api_t *a, struct evhttp_request *req, char *key, size_t size)
{
    if (!a->auth) {
        char *host = NULL;
        ev_uint16_t port = 0;
        struct evhttp_connection *c = evhttp_request_get_connection(req);
        if (c)
            evhttp_connection_get_peer(c, &host, &port);
        snprintf(key, size, "ip:%s", host ? host : "?");
        return true;
    }
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    int i = api_tokens_find(&a->tokens, h);
    if (i < 0)
        return false;
    snprintf(key, size, "token:%d", i);
    return true;
}

/* Token bucket: rate per second, burst at once. True when the request may go on. */
static bool rate_ok(api_t *a, const char *key, double *retry_s)
{
    if (a->o.rate <= 0)
        return true;
    bucket_t *b = strmap_get(a->buckets, key);
    uint64_t now = mp_now_ms();
    if (!b) {
        if (strmap_count(a->buckets) >= BUCKETS_MAX) {
            /* many clients: forget them all rather than grow without bound */
            strmap_free(a->buckets, free);
            a->buckets = strmap_new();
            if (!a->buckets)
                return true;
        }
        b = calloc(1, sizeof *b);
        if (!b || !strmap_put(a->buckets, key, b)) {
            free(b);
            return true;
        }
        b->tokens = a->o.burst;
        b->last_ms = now;
    }
    b->tokens += (double)(now - b->last_ms) * a->o.rate / 1000.0;
    if (b->tokens > a->o.burst)
        b->tokens = a->o.burst;
    b->last_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    *retry_s = (1.0 - b->tokens) / a->o.rate;
    return false;
}

/* ---- /v1/check ---------------------------------------------------------------------- */

typedef struct chk chk_t;

typedef struct waiter {
    api_t *a;
    chk_t *chk;
    struct evhttp_request *req;
    struct event *timer;
    bool transcript;
    struct waiter *next;
} waiter_t;

struct chk {
    api_t *a;
    char *email;
    uint64_t started_ms;
    waiter_t *waiters;
};

/* ---- recent results ------------------------------------------------------------------ */

/* The last RECENT_MAX results, in memory, rendered with and without the transcript: a
 * repeat call is answered without a store read or a JSON parse, and the store's address
 * cache (for jobs and restarts) sees one write per address and minute at most. */
#define RECENT_MAX 10000
#define RECENT_STORE_MS 60000

typedef struct {
    char *plain, *full;     /* without / with the transcript */
    uint64_t at_ms;
    uint64_t seq;           /* the ring slot that owns it: seq % RECENT_MAX */
} recent_t;

static void recent_free(void *v)
{
    recent_t *e = v;
    free(e->plain);
    free(e->full);
    free(e);
}

/* Keep a result (takes plain and full); the oldest goes when the ring is full. */
static void recent_put(api_t *a, const char *email, char *plain, char *full)
{
    recent_t *e = strmap_get(a->recent, email);
    if (!e) {
        if (!(e = calloc(1, sizeof *e)) || !strmap_put(a->recent, email, e)) {
            free(e);
            free(plain);
            free(full);
            return;
        }
    } else {
        free(e->plain);
        free(e->full);
    }
    e->plain = plain;
    e->full = full;
    e->at_ms = mp_now_ms();
    uint64_t seq = a->recent_seq++;
    char **slot = &a->ring[seq % RECENT_MAX];
    if (*slot) {
        recent_t *old = strmap_get(a->recent, *slot);
        if (old && old->seq + RECENT_MAX == seq)
            recent_free(strmap_del(a->recent, *slot));
        free(*slot);
    }
    *slot = strdup(email);
    e->seq = seq;
    if (!*slot) /* no key to evict by later: forget the entry now */
        recent_free(strmap_del(a->recent, email));
}

/* A result as the answer body: as rendered, or marked "cached" (the JSON ends in '}'). */
static void reply_result(api_t *a, struct evhttp_request *req, const char *json, bool cached)
{
    struct evbuffer *b = evbuffer_new();
    size_t n = strlen(json);
    if (!b) {
        api_error(a, req, 500, "internal", "out of memory");
        return;
    }
    if (cached && n && json[n - 1] == '}') {
        evbuffer_add(b, json, n - 1);
        static const char mark[] = ",\"cached\":true}\n";
        evbuffer_add(b, mark, sizeof mark - 1);
    } else {
        evbuffer_add(b, json, n);
        evbuffer_add(b, "\n", 1);
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    api_reply(a, req, 200, b);
    evbuffer_free(b);
}

static void waiter_free(waiter_t *w)
{
    if (w->timer)
        event_free(w->timer);
    free(w);
}

static void chk_unlink(chk_t *c, waiter_t *w)
{
    for (waiter_t **pp = &c->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            return;
        }
}

/* Seconds a caller should wait before asking again: half what the check has taken so
 * far (a slow server stays slow), at least 1, at most 60. */
static unsigned retry_after(const chk_t *c)
{
    uint64_t el = (mp_now_ms() - c->started_ms) / 1000;
    uint64_t s = el / 2 + 1;
    return (unsigned)(s > 60 ? 60 : s);
}

/* The answer when the wait ran out: the address's own signals, verdict unknown/timeout. */
static json_t *pending_answer(const char *email, unsigned after)
{
    vd_result_t *r = vd_result_new(email);
    if (!r)
        return NULL;
    addr_parse(r->email, strlen(r->email), &r->addr);
    if (r->addr.err == ADDR_OK) {
        intel_analyze(&r->addr, &r->intel);
        r->intel_done = true;
    }
    vd_set(r, VR_TIMEOUT, "the check is still running: ask again in %u s for its result",
           after);
    vd_opts_t vo = {false};
    vd_finish(r, &vo);
    char *text = vd_to_json(r, false);
    vd_result_free(r);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (j) {
        json_object_set_new(j, "pending", json_true());
        json_object_set_new(j, "retry_after", json_integer(after));
    }
    return j;
}

static void answer_pending(api_t *a, struct evhttp_request *req, const char *email,
                           unsigned after)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%u", after);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
    a->m.check_timeouts++;
    api_reply_json(a, req, 200, pending_answer(email, after));
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waiter_t *w = arg;
    chk_unlink(w->chk, w);
    answer_pending(w->a, w->req, w->chk->email, retry_after(w->chk));
    waiter_free(w);
}

/* An accept-all (or anti-enumeration) result is given its catch-all assessment, from the
 * address history only (a single address has no list): *json is replaced. */
static void add_assessment(api_t *a, const char *local, const char *normalized, char **json)
{
    assess_hist_t h = {0, 0};
    if (a->hist)
        (void)history_summary(a->hist, normalized, &h.proven_at, &h.refused_at);
    assess_t as;
    assess_single(local, &h, mp_wall_s(), &as);
    mp_buf_t aj, b;
    mp_buf_init(&aj, 64 * 1024);
    mp_buf_init(&b, 64u * 1024u * 1024u);
    char *s = NULL;
    if (assess_to_json(&as, &aj) == MP_OK &&
        assess_splice(*json, mp_buf_str(&aj), &b) == MP_OK && (s = strdup(mp_buf_str(&b)))) {
        free(*json);
        *json = s;
    }
    mp_buf_cleanup(&aj);
    mp_buf_cleanup(&b);
}

static void with_assessment(api_t *a, const vd_result_t *res, char **json)
{
    if (*json && (res->reason == VR_ACCEPT_ALL || res->reason == VR_ANTI_ENUMERATION))
        add_assessment(a, res->addr.local, res->addr.normalized, json);
}

/* The same for a result from the store's cache, stored before it had one. */
static void with_assessment_cached(api_t *a, char **json)
{
    json_t *j = json_loads(*json, 0, NULL);
    const char *reason = j ? json_string_value(json_object_get(j, "reason")) : NULL;
    const char *norm = j ? json_string_value(json_object_get(j, "normalized")) : NULL;
    json_t *syn = j ? json_object_get(j, "syntax") : NULL;
    const char *local = syn ? json_string_value(json_object_get(syn, "local")) : NULL;
    if (reason && norm && local && !json_object_get(j, "catch_all_assessment") &&
        (strcmp(reason, "accept_all") == 0 || strcmp(reason, "anti_enumeration") == 0))
        add_assessment(a, local, norm, json);
    json_decref(j);
}

static void on_check_done(vd_result_t *res, void *arg)
{
    chk_t *c = arg;
    api_t *a = c->a;
    api_metrics_result(&a->m, res);
    char *plain = vd_to_json(res, false), *full = vd_to_json(res, true);
    with_assessment(a, res, &plain);
    with_assessment(a, res, &full);
    recent_t *prev = strmap_get(a->recent, c->email);
    if (plain && (!prev || mp_now_ms() - prev->at_ms >= RECENT_STORE_MS) &&
        store_cache_put(a->st, c->email, vd_verdict_name(res->verdict), plain, mp_wall_s()) !=
            MP_OK)
        mp_log(MP_LOG_WARN, "job store: %s", store_errmsg(a->st));
    vd_result_free(res);
    strmap_del(a->inflight, c->email);
    while (c->waiters) {
        waiter_t *w = c->waiters;
        c->waiters = w->next;
        const char *text = w->transcript ? full : plain;
        if (text)
            reply_result(a, w->req, text, false);
        else
            api_error(a, w->req, 500, "internal", "the result could not be rendered");
        waiter_free(w);
    }
    if (plain && full)
        recent_put(a, c->email, plain, full);
    else {
        free(plain);
        free(full);
    }
    free(c->email);
    free(c);
}

/* Answer from a fresh enough result (memory, else the store's cache); false if none. */
static bool answer_cached(api_t *a, struct evhttp_request *req, const api_check_req_t *cr)
{
    if (cr->fresh || !a->o.max_age_ms)
        return false;
    recent_t *e = strmap_get(a->recent, cr->email);
    if (e && mp_now_ms() - e->at_ms <= a->o.max_age_ms) {
        reply_result(a, req, cr->transcript ? e->full : e->plain, true);
        return true;
    }
    if (cr->transcript)
        return false; /* the store keeps results without their transcript */
    store_cached_t c;
    bool found = false;
    if (store_cache_get(a->st, cr->email, (int64_t)(a->o.max_age_ms / 1000), &c, &found) !=
            MP_OK ||
        !found)
        return false;
    with_assessment_cached(a, &c.result_json);
    reply_result(a, req, c.result_json, true);
    free(c.result_json);
    return true;
}

static void check_run(api_t *a, struct evhttp_request *req, api_check_req_t *cr)
{
    a->m.check_requests++;
    mp_str_trim(cr->email);
    if (!cr->email[0]) {
        api_error(a, req, 400, "bad_request", "the email is empty");
        return;
    }
    if (answer_cached(a, req, cr)) {
        a->m.check_cached++;
        return;
    }
    chk_t *c = strmap_get(a->inflight, cr->email);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || !(c->email = strdup(cr->email)) || !strmap_put(a->inflight, c->email, c)) {
            if (c)
                free(c->email);
            free(c);
            api_error(a, req, 500, "internal", "out of memory");
            return;
        }
        c->a = a;
        c->started_ms = mp_now_ms();
        if (engine_check(a->engine, c->email, on_check_done, c) != MP_OK) {
            strmap_del(a->inflight, c->email);
            free(c->email);
            free(c);
            api_error(a, req, 500, "internal", "the engine refused the check");
            return;
        }
    }
    uint64_t wait = cr->wait_ms >= 0 ? (uint64_t)cr->wait_ms : a->o.wait_ms;
    if (!wait) {
        answer_pending(a, req, cr->email, retry_after(c));
        return;
    }
    waiter_t *w = calloc(1, sizeof *w);
    if (!w || !(w->timer = evtimer_new(a->base, on_wait_over, w))) {
        free(w);
        api_error(a, req, 500, "internal", "out of memory");
        return;
    }
    w->a = a;
    w->chk = c;
    w->req = req;
    w->transcript = cr->transcript;
    w->next = c->waiters;
    c->waiters = w;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

static void handle_check(api_t *a, struct evhttp_request *req, const char *query)
{
    api_check_req_t cr;
    char err[512];
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m == EVHTTP_REQ_GET) {
        if (api_check_from_query(query, &cr, err, sizeof err) != 0) {
            api_error(a, req, 400, "bad_request", "%s", err);
            return;
        }
    } else if (m == EVHTTP_REQ_POST) {
        size_t len;
        const char *body = api_body(req, &len);
        if (api_check_from_json(body, len, &cr, err, sizeof err) != 0) {
            api_error(a, req, 400, "bad_request", "%s", err);
            return;
        }
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
        api_error(a, req, 405, "method_not_allowed", "use GET or POST");
        return;
    }
    check_run(a, req, &cr);
}

/* ---- static files, health, metrics -------------------------------------------------- */

static const api_asset_t *asset(const char *name)
{
    for (size_t i = 0; i < api_nassets; i++)
        if (strcmp(api_assets[i].name, name) == 0)
            return &api_assets[i];
    return NULL;
}

static void serve_asset(api_t *a, struct evhttp_request *req, const api_asset_t *f)
{
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add_reference(b, f->data, f->len, NULL, NULL) != 0) {
        if (b)
            evbuffer_free(b);
        api_error(a, req, 500, "internal", "out of memory");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", f->ctype);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                      "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    api_reply(a, req, 200, b);
    evbuffer_free(b);
}

static void handle_health(api_t *a, struct evhttp_request *req)
{
    unsigned queued;
    bool running;
    api_jobs_depth(a, &queued, &running);
    api_reply_json(a, req, 200,
                   json_pack("{sssssIsIsIsb}", "status", "ok", "version", a->version,
                             "uptime_seconds", (json_int_t)((mp_now_ms() - a->started_ms) / 1000),
                             "checks_in_flight", (json_int_t)engine_pending(a->engine),
                             "jobs_queued", (json_int_t)queued, "job_running", running));
}

static void handle_metrics(api_t *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        api_error(a, req, 500, "internal", "out of memory");
        return;
    }
    api_metrics_render(a, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    api_reply(a, req, 200, b);
    evbuffer_free(b);
}

/* ---- routing ------------------------------------------------------------------------ */

/* "/v1/jobs/ID" or "/v1/jobs/ID/results": the id (checked: [A-Za-z0-9]) and the rest. */
static bool job_path(const char *path, char *id, size_t size, const char **rest)
{
    const char *p = path + strlen("/v1/jobs/");
    size_t n = strcspn(p, "/");
    if (!n || n >= size)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9')))
            return false;
    memcpy(id, p, n);
    id[n] = '\0';
    *rest = p + n;
    return true;
}

static void method_not_allowed(api_t *a, struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    api_error(a, req, 405, "method_not_allowed", "allowed here: %s", allow);
}

static void route_jobs(api_t *a, struct evhttp_request *req, const char *path,
                       const char *query, enum evhttp_cmd_type m)
{
    if (strcmp(path, "/v1/jobs") == 0) {
        if (m == EVHTTP_REQ_POST)
            api_jobs_post(a, req, query);
        else if (m == EVHTTP_REQ_GET)
            api_jobs_list(a, req);
        else
            method_not_allowed(a, req, "GET, POST");
        return;
    }
    char id[STORE_ID_MAX];
    const char *rest;
    if (!job_path(path, id, sizeof id, &rest)) {
        api_error(a, req, 404, "not_found", "no such job");
        return;
    }
    if (!*rest || strcmp(rest, "/") == 0) {
        if (m == EVHTTP_REQ_GET)
            api_jobs_get(a, req, id);
        else if (m == EVHTTP_REQ_DELETE)
            api_jobs_delete(a, req, id);
        else
            method_not_allowed(a, req, "GET, DELETE");
    } else if (strcmp(rest, "/results") == 0) {
        if (m == EVHTTP_REQ_GET)
            api_jobs_results(a, req, id, query);
        else
            method_not_allowed(a, req, "GET");
    } else {
        api_error(a, req, 404, "not_found", "no such resource: %s", path);
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    api_t *a = arg;
    api_conns_request(a->conns, req, false);
    if (a->shutting) {
        api_error(a, req, 503, "shutting_down", "the server is stopping");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!path || !*path)
        path = "/";
    bool is_api = strncmp(path, "/v1/", 4) == 0 && strcmp(path, "/v1/openapi.json") != 0;
    if (is_api || strcmp(path, "/metrics") == 0) {
        char key[64];
        if (!authenticate(a, req, key, sizeof key)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              "Bearer realm=\"mailprobe\"");
            api_error(a, req, 401, "unauthorized",
                      "send a valid token: Authorization: Bearer TOKEN");
            return;
        }
        if (a->auth)
            api_conns_request(a->conns, req, true);
        double retry_s = 0;
        if (is_api && !rate_ok(a, key, &retry_s)) {
            char ra[16];
            snprintf(ra, sizeof ra, "%.0f", ceil(retry_s));
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
            api_error(a, req, 429, "rate_limited", "more than %g requests per second; "
                      "retry in %s s", a->o.rate, ra);
            return;
        }
    }
    if (strcmp(path, "/v1/check") == 0) {
        handle_check(a, req, query);
    } else if (strncmp(path, "/v1/jobs", 8) == 0 && (path[8] == '\0' || path[8] == '/')) {
        route_jobs(a, req, path, query, m);
    } else if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        method_not_allowed(a, req, "GET");
    } else if (strcmp(path, "/healthz") == 0) {
        handle_health(a, req);
    } else if (strcmp(path, "/metrics") == 0) {
        handle_metrics(a, req);
    } else if (strcmp(path, "/v1/doctor") == 0) {
        if (a->o.doctor_json)
            api_reply_text(a, req, 200, "application/json", a->o.doctor_json);
        else
            api_error(a, req, 404, "not_found", "no doctor report (serve --offline)");
    } else {
        const char *name = strcmp(path, "/") == 0 ? "index.html"
                           : strcmp(path, "/v1/openapi.json") == 0 ? "openapi.json"
                                                                   : path + 1;
        const api_asset_t *f = strchr(name, '/') ? NULL : asset(name);
        if (f)
            serve_asset(a, req, f);
        else
            api_error(a, req, 404, "not_found", "no such resource: %s", path);
    }
}

/* ---- life cycle --------------------------------------------------------------------- */

/* accept() failed. Out of descriptors (EMFILE/ENFILE), the listening socket stays
 * readable and libevent would retry at once, forever, logging each time: pause accepting
 * for a moment instead, and say so once a minute. */
static api_t *accept_owner; /* the error callback is handed evhttp's pointer, not ours: one
                               server per process, which serve is */

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg; /* the struct evhttp */
    api_t *a = accept_owner;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        mp_log(MP_LOG_WARN, "accept: %s", strerror(err));
        return;
    }
    evconnlistener_disable(l);
    struct timeval tv = {0, 200000};
    event_add(a->accept_ev, &tv);
    uint64_t now = mp_now_ms();
    if (now - a->accept_warned_ms >= 60000) {
        a->accept_warned_ms = now;
        mp_log(MP_LOG_WARN, "accept: %s: not taking connections for 200 ms (raise the open "
               "files limit, ulimit -n, for more clients)", strerror(err));
    }
}

static void on_accept_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_t *a = arg;
    if (a->sock && !a->shutting)
        evconnlistener_enable(evhttp_bound_socket_get_listener(a->sock));
}

/* Each connection is a descriptor: take the hard limit, not the soft 1,024. Returns the
 * connections to allow: the limit less what the engine, the store and the listener need
 * (a quarter, at most 256). */
static size_t raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 768;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 24) ? (1u << 24)
                                                                         : rl.rlim_cur;
    rlim_t keep = n / 4 < 256 ? n / 4 : 256;
    return n - keep > 8 ? (size_t)(n - keep) : 8;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_t *a = arg;
    api_conns_tick(a->conns);
    if (store_tick(a->st) != MP_OK)
        mp_log(MP_LOG_WARN, "job store: %s", store_errmsg(a->st));
}

bool api_host_is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return strcmp(host, "localhost") == 0;
}

static int load_tokens(api_t *a, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsize, "cannot read the token file %s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + n > (1u << 20)) {
            free(text);
            fclose(f);
            snprintf(err, errsize, "%s: token file larger than 1 MiB", path);
            return -1;
        }
        if (len + n > cap) {
            cap = (len + n) * 2;
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                fclose(f);
                snprintf(err, errsize, "out of memory");
                return -1;
            }
            text = nt;
        }
        memcpy(text + len, buf, n);
        len += n;
    }
    fclose(f);
    char perr[256];
    int rc = api_tokens_parse(text ? text : "", len, &a->tokens, perr, sizeof perr);
    free(text);
    if (rc != 0)
        snprintf(err, errsize, "token file %s: %s", path, perr);
    return rc;
}

/* libevent's own messages ("[warn] Epoll ADD...", evhttp's complaints about a peer) go
 * to the project's log like every other line, never straight to stderr. */
static void on_libevent_log(int severity, const char *msg)
{
    mp_log_level_t l = severity == EVENT_LOG_DEBUG ? MP_LOG_DEBUG
                       : severity == EVENT_LOG_MSG ? MP_LOG_INFO
                       : severity == EVENT_LOG_WARN ? MP_LOG_WARN
                                                    : MP_LOG_ERROR;
    mp_log(l, "libevent: %s", msg);
}

void api_libevent_log_install(void)
{
    event_set_log_callback(on_libevent_log);
}

api_t *api_new(struct event_base *base, engine_t *engine, store_t *st, const api_opts_t *o,
               char *err, size_t errsize)
{
    api_libevent_log_install();
    if (!o->tokens_path && !api_host_is_loopback(o->host)) {
        snprintf(err, errsize, "without --tokens the server answers anyone who can reach "
                 "it: listen on a loopback address (127.0.0.1, ::1) or give a token file");
        return NULL;
    }
    api_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    a->base = base;
    a->engine = engine;
    a->st = st;
    a->o = *o;
    a->started_ms = mp_now_ms();
    mp_strlcpy(a->store_path, o->store_path, sizeof a->store_path);
    char herr[256];
    if (history_open(a->store_path, &a->hist, herr, sizeof herr) != MP_OK)
        mp_log(MP_LOG_WARN, "address history unavailable (%s): catch-all assessments go "
               "without it", herr);
    snprintf(a->dir, sizeof a->dir, "%s.d", o->store_path);
    mp_strlcpy(a->version, o->version ? o->version : "dev", sizeof a->version);
    a->o.host = NULL;
    a->o.store_path = a->store_path;
    a->o.tokens_path = NULL;
    a->o.version = a->version;
    if (o->tokens_path) {
        if (load_tokens(a, o->tokens_path, err, errsize) != 0)
            goto fail;
        a->auth = true;
    }
    if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsize, "cannot create %s: %s", a->dir, strerror(errno));
        goto fail;
    }
    a->buckets = strmap_new();
    a->inflight = strmap_new();
    a->recent = strmap_new();
    a->ring = calloc(RECENT_MAX, sizeof *a->ring);
    a->http = evhttp_new(base);
    a->tick = event_new(base, -1, EV_PERSIST, on_tick, a);
    if (!a->buckets || !a->inflight || !a->recent || !a->ring || !a->http || !a->tick) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    struct timeval tv = {0, 200000};
    event_add(a->tick, &tv);
    evhttp_set_max_body_size(a->http, (ev_ssize_t)o->max_body);
    evhttp_set_max_headers_size(a->http, 16384);
    evhttp_set_timeout(a->http, 120);
    /* every method evhttp knows reaches on_request, which answers 405 in JSON (evhttp's
     * own answer to a method not allowed here would be a 501 page in HTML) */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, on_request, a);
    if (api_jobs_init(a, err, errsize) != 0)
        goto fail;
    a->conns_max = raise_fd_limit();
    if (o->max_conns)
        a->conns_max = o->max_conns;
    if (!(a->conns = api_conns_new(a))) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    a->sock = evhttp_bind_socket_with_handle(a->http, o->host, (ev_uint16_t)o->port);
    if (!a->sock) {
        snprintf(err, errsize, "cannot listen on %s:%u: %s", o->host, o->port,
                 strerror(errno));
        goto fail;
    }
    if (!(a->accept_ev = evtimer_new(base, on_accept_again, a))) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    accept_owner = a;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(a->sock), on_accept_error);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(a->sock), (struct sockaddr *)&ss, &sl) == 0)
        a->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return a;
fail:
    api_shutdown(a);
    api_free(a);
    return NULL;
}

unsigned api_port(const api_t *a)
{
    return a->port;
}

static void chk_tell_stopping(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    chk_t *c = value;
    while (c->waiters) {
        waiter_t *w = c->waiters;
        c->waiters = w->next;
        api_error(c->a, w->req, 503, "shutting_down", "the server is stopping");
        waiter_free(w);
    }
}

void api_shutdown(api_t *a)
{
    if (!a || a->shutting)
        return;
    a->shutting = true;
    if (a->sock && a->http)
        evhttp_del_accept_socket(a->http, a->sock);
    a->sock = NULL;
    /* callers waiting for checks are told now, so that the caller's grace turns of the
     * loop can deliver it; the checks stay with the engine until it is freed */
    strmap_each(a->inflight, chk_tell_stopping, NULL);
    api_jobs_shutdown(a);
    store_flush(a->st);
}

static void chk_drop(void *v)
{
    chk_t *c = v;
    chk_tell_stopping(NULL, c, NULL); /* none left after api_shutdown */
    free(c->email);
    free(c);
}

void api_free(api_t *a)
{
    if (!a)
        return;
    if (a->inflight)
        strmap_free(a->inflight, chk_drop);
    if (a->recent)
        strmap_free(a->recent, recent_free);
    for (size_t i = 0; a->ring && i < RECENT_MAX; i++)
        free(a->ring[i]);
    free(a->ring);
    api_jobs_free(a);
    if (a->http)
        evhttp_free(a->http);
    api_conns_free(a->conns); /* after evhttp: it closes what evhttp freed */
    if (a->tick)
        event_free(a->tick);
    if (a->accept_ev)
        event_free(a->accept_ev);
    if (accept_owner == a)
        accept_owner = NULL;
    if (a->buckets)
        strmap_free(a->buckets, free);
    api_tokens_free(&a->tokens);
    history_close(a->hist);
    free(a);
}
