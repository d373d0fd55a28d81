/*
 * jobs.c - bulk jobs over HTTP: upload, status, results, delete, webhooks (see api.h).
 *
 * A job's input is saved as a file under STORE_PATH.d/ and the job itself lives in the
 * store, recorded with options "api:{json}" so that a restarted server knows which jobs
 * are its own and continues them. Jobs run one at a time, first come first served, on
 * the engine the single checks use (the engine's per-server limits hold for both).
 *
 * Results are written once per format when first asked for - the whole output and one
 * file per verdict in the same pass (bulkio's split writer) - a slice of rows per loop
 * turn, then sent from the file (evbuffer file segments: sendfile, not memory). Writing
 * reads the results through a second store connection so that the running job's batched
 * writes on the first are never in its way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/dns.h>
#include <event2/keyvalq_struct.h>

#include "api/api_int.h"
#include "fleet/queue.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define OUT_SLICE 5000        /* output rows written per loop turn */
#define HOOK_ATTEMPTS 8       /* webhook tries: after 0, 1, 2, 4 ... 64 s */
#define QUEUE_MAX 1024        /* jobs waiting at most */
#define COUNT_NOW_MAX (1u << 20) /* uploads up to 1 MiB are counted before the answer */
#define COUNT_SLICE 20000     /* rows counted per loop turn for larger ones */

typedef struct out_wait {
    struct evhttp_request *req;
    char verdict[16];         /* "" = all rows */
    struct out_wait *next;
} out_wait_t;

/* Writing one job's output in one format. */
typedef struct out_task {
    char id[STORE_ID_MAX];
    bulkio_format_t fmt;
    job_out_t *out;
    out_wait_t *waiters;
    struct out_task *next;
} out_task_t;

/* Counting a large upload's rows, a slice per loop turn (for progress and ETA). */
typedef struct counter {
    char id[STORE_ID_MAX];
    bulkio_reader_t *rd;
    int64_t n;
    struct counter *next;
} counter_t;

typedef struct hook {
    api_t *a;
    char id[STORE_ID_MAX];
    char url[API_URL_MAX];
    unsigned attempt;
    struct event *timer;
    struct evdns_getaddrinfo_request *gai; /* resolving the host now */
    bool orphan;              /* freed while resolving: the answer frees it */
    char *body;               /* this attempt's status JSON */
    char host[API_URL_MAX];   /* the URL's host, IPv6 brackets removed */
    char host_hdr[API_URL_MAX + 8];
    char path[API_URL_MAX];
    ev_uint16_t port;
    struct evhttp_connection *con; /* the POST waiting for its answer (hook_done) */
    struct hook *next;
} hook_t;

struct api_jobs {
    char queue[QUEUE_MAX][STORE_ID_MAX];
    size_t nq;
    job_run_t *run;
    uint64_t run_start_ms;
    job_end_t run_end;
    bool run_ended;
    char run_msg[STORE_ERR_MAX + 64];
    int run_lock;             /* the running job's lock (store_job_lock), or -1 */
    char run_id[STORE_ID_MAX];
    struct event *next_ev;    /* deferred: finish the ended run, start the next */
    fleet_jobq_t *pool;       /* --redis: the running job's queue to the workers */
    store_t *rst;             /* reader connection for outputs */
    struct evdns_base *dns;   /* webhook host names, resolved without blocking the loop */
    out_task_t *tasks;        /* first = the one being written */
    struct event *out_ev;
    hook_t *hooks;
    counter_t *counters;      /* first = the one being counted */
    struct event *count_ev;
};

/* ---- files and options -------------------------------------------------------------- */

static void job_file(const api_t *a, const char *id, const char *suffix, char *out,
                     size_t size)
{
    snprintf(out, size, "%s/%s%s", a->dir, id, suffix);
}

static const char *fmt_ext(bulkio_format_t f)
{
    return f == BULKIO_FMT_NDJSON ? "ndjson" : "csv";
}

/* The job's own options, from "api:{...}"; false for a job that is not the API's. */
static bool job_opts(const store_job_t *j, api_job_opts_t *o)
{
    memset(o, 0, sizeof *o);
    if (!j->options || strncmp(j->options, "api:", 4) != 0)
        return false;
    json_t *js = json_loads(j->options + 4, 0, NULL);
    const char *c = json_string_value(json_object_get(js, "column"));
    const char *w = json_string_value(json_object_get(js, "webhook"));
    mp_strlcpy(o->column, c ? c : "", sizeof o->column);
    mp_strlcpy(o->webhook, w ? w : "", sizeof o->webhook);
    json_decref(js);
    return true;
}

static void reader_opts(const api_job_opts_t *jo, bulkio_ropts_t *ro)
{
    memset(ro, 0, sizeof *ro);
    ro->column = jo->column[0] ? jo->column : NULL;
}

/* ---- job status --------------------------------------------------------------------- */

static void add_reason(const char *reason, int64_t n, void *arg)
{
    json_object_set_new(arg, reason ? reason : "-", json_integer(n));
}

static json_t *job_json(api_t *a, const store_job_t *j)
{
    api_jobs_t *q = a->jobs;
    api_job_opts_t jo;
    job_opts(j, &jo);
    json_t *reasons = json_object();
    if (store_job_reasons(a->st, j->id, add_reason, reasons) != MP_OK)
        mp_log(MP_LOG_WARN, "job store: %s", store_errmsg(a->st));
    json_t *total = j->total_rows >= 0 ? json_integer(j->total_rows) : json_null();
    double progress = j->state == STORE_JOB_DONE ? 1.0
                      : j->total_rows > 0 ? (double)j->done_rows / (double)j->total_rows
                                          : 0.0;
    json_t *eta = json_null();
    if (q->run && strcmp(job_run_id(q->run), j->id) == 0 && j->total_rows > 0) {
        job_counts_t c;
        job_run_counts(q->run, &c);
        double secs = (double)(mp_now_ms() - q->run_start_ms) / 1000.0;
        uint64_t now_done = c.rows_checked_now + c.rows_reused + c.rows_error;
        if (secs > 1 && now_done) {
            double left = (double)(j->total_rows - j->done_rows) / ((double)now_done / secs);
            eta = json_integer(left > 0 ? (json_int_t)(left + 0.5) : 0);
        }
    }
    char self[64], results[96];
    snprintf(self, sizeof self, "/v1/jobs/%s", j->id);
    snprintf(results, sizeof results, "/v1/jobs/%s/results", j->id);
    return json_pack("{sssssIsIsosIsfsos{sIsIsIsIsI}soss?ss?s{ssss}}", "id", j->id, "state",
                     store_job_state_name(j->state), "created", (json_int_t)j->created,
                     "updated", (json_int_t)j->updated, "rows_total", total, "rows_done",
                     (json_int_t)j->done_rows, "progress", progress, "eta_seconds", eta,
                     "counts", "deliverable", (json_int_t)j->n_deliverable, "undeliverable",
                     (json_int_t)j->n_undeliverable, "risky", (json_int_t)j->n_risky,
                     "unknown", (json_int_t)j->n_unknown, "error", (json_int_t)j->n_error,
                     "reasons", reasons, "message", j->message, "webhook",
                     jo.webhook[0] ? jo.webhook : NULL, "links", "self", self, "results",
                     results);
}

/* The job, or a 404 answer (false). */
static bool get_job(api_t *a, struct evhttp_request *req, const char *id, store_job_t *j)
{
    bool found = false;
    memset(j, 0, sizeof *j);
    if (store_job_get(a->st, id, j, &found) != MP_OK) {
        api_error(a, req, 500, "internal", "job store: %s", store_errmsg(a->st));
        return false;
    }
    api_job_opts_t jo;
    if (!found || !job_opts(j, &jo)) {
        store_job_cleanup(j);
        api_error(a, req, 404, "not_found", "no job %s", id);
        return false;
    }
    return true;
}

void api_jobs_get(api_t *a, struct evhttp_request *req, const char *id)
{
    store_job_t j;
    if (!get_job(a, req, id, &j))
        return;
    api_reply_json(a, req, 200, job_json(a, &j));
    store_job_cleanup(&j);
}

void api_jobs_list(api_t *a, struct evhttp_request *req)
{
    store_job_t *jobs = NULL;
    size_t n = 0;
    if (store_job_list(a->st, &jobs, &n) != MP_OK) {
        api_error(a, req, 500, "internal", "job store: %s", store_errmsg(a->st));
        return;
    }
    json_t *arr = json_array();
    api_job_opts_t jo;
    for (size_t i = 0; i < n; i++)
        if (job_opts(&jobs[i], &jo))
            json_array_append_new(arr, job_json(a, &jobs[i]));
    store_jobs_free(jobs, n);
    api_reply_json(a, req, 200, json_pack("{so}", "jobs", arr));
}

uint64_t api_jobs_pump_turns(const api_t *a)
{
    job_counts_t c = {0};
    if (a->jobs && a->jobs->run)
        job_run_counts(a->jobs->run, &c);
    return a->m.slices_job + c.slices;
}

void api_jobs_depth(const api_t *a, unsigned *queued, bool *running)
{
    *queued = a->jobs ? (unsigned)a->jobs->nq : 0;
    *running = a->jobs && a->jobs->run;
}

/* ---- webhooks ----------------------------------------------------------------------- */

static void hook_send(evutil_socket_t fd, short what, void *arg);

static void hook_free(hook_t *h)
{
    api_jobs_t *q = h->a->jobs;
    for (hook_t **pp = &q->hooks; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    if (h->timer)
        event_free(h->timer);
    h->timer = NULL;
    free(h->body);
    h->body = NULL;
    if (h->con) { /* a POST in flight (its job deleted, the server stopping): dropped with
                     its connection, hook_done never called into freed memory */
        evhttp_connection_free(h->con);
        h->con = NULL;
    }
    if (h->gai) { /* the resolver calls back (cancelled) later: free it then */
        h->orphan = true;
        evdns_getaddrinfo_cancel(h->gai);
        return;
    }
    free(h);
}

static void hook_give_up(hook_t *h, const char *why)
{
    h->a->m.webhooks_failed++;
    mp_log(MP_LOG_WARN, "job %s: webhook %s: %s; giving up", h->id, h->url, why);
    hook_free(h);
}

static void hook_retry(hook_t *h, const char *why)
{
    free(h->body);
    h->body = NULL;
    if (++h->attempt >= HOOK_ATTEMPTS) {
        char last[160];
        snprintf(last, sizeof last, "failed %u times (last: %s)", HOOK_ATTEMPTS, why);
        hook_give_up(h, last);
        return;
    }
    mp_log(MP_LOG_INFO, "job %s: webhook %s: %s; retrying", h->id, h->url, why);
    struct timeval tv = {1 << (h->attempt - 1), 0};
    evtimer_add(h->timer, &tv);
}

static void hook_done(struct evhttp_request *req, void *arg)
{
    hook_t *h = arg;
    h->con = NULL; /* freed by libevent once this returns (free on completion) */
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code >= 200 && code < 300) {
        char mark[1200];
        job_file(h->a, h->id, ".webhook-done", mark, sizeof mark);
        int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            close(fd);
        h->a->m.webhooks_ok++;
        hook_free(h);
        return;
    }
    char why[64];
    if (code)
        snprintf(why, sizeof why, "answered %d", code);
    else
        mp_strlcpy(why, "no answer", sizeof why);
    hook_retry(h, why);
}

/* Connect to the address just checked (not to the name again: a second resolution could
 * answer differently, which is how DNS rebinding reaches inside) and post the status. */
static void hook_post(hook_t *h, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN];
    const void *bin = sa->sa_family == AF_INET6
                          ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                          : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, bin, ip, sizeof ip)) {
        hook_retry(h, "bad address");
        return;
    }
    struct evhttp_connection *con = evhttp_connection_base_new(h->a->base, NULL, ip, h->port);
    struct evhttp_request *req = con ? evhttp_request_new(hook_done, h) : NULL;
    if (!req) {
        if (con)
            evhttp_connection_free(con);
        hook_retry(h, "cannot connect");
        return;
    }
    evhttp_connection_set_timeout(con, 10);
    evhttp_connection_free_on_completion(con);
    h->con = con;
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Host", h->host_hdr);
    evhttp_add_header(hd, "Content-Type", "application/json");
    evhttp_add_header(hd, "User-Agent", "mailprobe");
    evbuffer_add(evhttp_request_get_output_buffer(req), h->body, strlen(h->body));
    free(h->body);
    h->body = NULL;
    if (evhttp_make_request(con, req, EVHTTP_REQ_POST, h->path) != 0) {
        h->con = NULL;
        hook_retry(h, "cannot send"); /* evhttp freed the request and the connection */
    }
}

static void hook_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    hook_t *h = arg;
    h->gai = NULL;
    if (h->orphan) {
        if (res)
            evutil_freeaddrinfo(res);
        free(h);
        return;
    }
    if (result != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        hook_retry(h, evutil_gai_strerror(result));
        return;
    }
    const struct evutil_addrinfo *pick = NULL;
    for (const struct evutil_addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            (h->a->o.allow_private_hooks || !engine_addr_unroutable(ai->ai_addr)))
            pick = ai;
    if (!pick) {
        evutil_freeaddrinfo(res);
        hook_give_up(h, "the host has only loopback, private, link-local or reserved "
                        "addresses (refused; serve --allow-private-webhooks allows them)");
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, pick->ai_addr, pick->ai_addrlen);
    evutil_freeaddrinfo(res);
    hook_post(h, (const struct sockaddr *)&ss);
}

static void hook_send(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hook_t *h = arg;
    api_t *a = h->a;
    store_job_t j;
    bool found = false;
    memset(&j, 0, sizeof j);
    if (store_job_get(a->st, h->id, &j, &found) != MP_OK || !found) {
        hook_free(h); /* the job was deleted */
        return;
    }
    json_t *js = job_json(a, &j);
    free(h->body);
    h->body = js ? mp_json_escape_ls(json_dumps(js, JSON_COMPACT)) : NULL;
    json_decref(js);
    store_job_cleanup(&j);
    struct evhttp_uri *u = evhttp_uri_parse(h->url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    int port = u ? evhttp_uri_get_port(u) : -1;
    if (!host || !h->body) {
        evhttp_uri_free(u);
        hook_retry(h, "cannot connect");
        return;
    }
    /* evhttp keeps an IPv6 literal's brackets: the Host header wants them, the
     * resolver does not */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
        snprintf(h->host, sizeof h->host, "%.*s", (int)(hl - 2), host + 1);
    else
        mp_strlcpy(h->host, host, sizeof h->host);
    h->port = (ev_uint16_t)(port > 0 ? port : 80);
    if (port > 0)
        snprintf(h->host_hdr, sizeof h->host_hdr, "%s:%d", host, port);
    else
        mp_strlcpy(h->host_hdr, host, sizeof h->host_hdr);
    const char *p = evhttp_uri_get_path(u), *qs = evhttp_uri_get_query(u);
    snprintf(h->path, sizeof h->path, "%s%s%s", p && *p ? p : "/", qs ? "?" : "",
             qs ? qs : "");
    evhttp_uri_free(u);
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* may call back at once (a literal): set h->gai only when it did not */
    struct evdns_getaddrinfo_request *g =
        evdns_getaddrinfo(a->jobs->dns, h->host, NULL, &hints, hook_resolved, h);
    if (g)
        h->gai = g;
}

/* A webhook the server refuses at once: its host is an address literal (or localhost)
 * that the private-address rule refuses. Names are checked again when resolved. */
static bool hook_refused(const api_t *a, const char *url, char *err, size_t errsize)
{
    if (a->o.allow_private_hooks)
        return false;
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    char h[API_URL_MAX];
    size_t hl = host ? strlen(host) : 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
        snprintf(h, sizeof h, "%.*s", (int)(hl - 2), host + 1);
    else
        mp_strlcpy(h, host ? host : "", sizeof h);
    evhttp_uri_free(u);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    bool refused;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        refused = engine_addr_unroutable((struct sockaddr *)&ss);
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        refused = engine_addr_unroutable((struct sockaddr *)&ss);
    } else {
        refused = mp_str_ieq(h, "localhost") || mp_str_iends(h, ".localhost") ||
                  mp_str_ieq(h, "localhost.");
    }
    if (refused)
        snprintf(err, errsize, "webhook host %s is a loopback, private, link-local or "
                 "reserved address: refused (the server allows such webhooks only when "
                 "started with --allow-private-webhooks)", h);
    return refused;
}

/* Call the job's webhook (unless it already was). */
static void hook_start(api_t *a, const store_job_t *j)
{
    api_job_opts_t jo;
    char mark[1200];
    job_file(a, j->id, ".webhook-done", mark, sizeof mark);
    if (!job_opts(j, &jo) || !jo.webhook[0] || access(mark, F_OK) == 0)
        return;
    hook_t *h = calloc(1, sizeof *h);
    if (!h || !(h->timer = evtimer_new(a->base, hook_send, h))) {
        free(h);
        mp_log(MP_LOG_WARN, "job %s: out of memory for the webhook", j->id);
        return;
    }
    h->a = a;
    mp_strlcpy(h->id, j->id, sizeof h->id);
    mp_strlcpy(h->url, jo.webhook, sizeof h->url);
    h->next = a->jobs->hooks;
    a->jobs->hooks = h;
    event_active(h->timer, EV_TIMEOUT, 0);
}

/* ---- running jobs ------------------------------------------------------------------- */

static void on_job_result(const vd_result_t *res, void *arg)
{
    api_t *a = arg;
    api_metrics_result(&a->m, res);
}

static void on_job_end(job_run_t *r, job_end_t end, const char *message, void *arg)
{
    (void)r;
    api_t *a = arg;
    mp_strlcpy(a->jobs->run_msg, message ? message : "", sizeof a->jobs->run_msg);
    a->jobs->run_end = end;
    a->jobs->run_ended = true;
    event_active(a->jobs->next_ev, 0, 0); /* freed and followed outside its own callback */
}

/* --redis: the running job's addresses go to the pool (job_remote_fn). */
static mp_status_t pool_check(void *ctx, int64_t row, const char *addr, job_remote_cb cb,
                              void *arg)
{
    return fleet_jobq_add(ctx, row, addr, cb, arg);
}

static void pool_note(const char *line, void *arg)
{
    (void)arg;
    mp_log(MP_LOG_WARN, "%s", line);
}

/* Free the running job after its pool (whose pending answers are dropped first): complete,
 * the job's keys go from Redis; else its batches are withdrawn. */
static void run_free(api_jobs_t *q, bool complete)
{
    bool pooled = q->pool != NULL;
    fleet_jobq_close(q->pool, complete, NULL, NULL);
    q->pool = NULL;
    job_run_free(q->run, pooled); /* pooled: no answer will come any more */
    q->run = NULL;
}

static void set_state(api_t *a, const char *id, store_job_state_t s, const char *msg)
{
    if (store_job_set_state(a->st, id, s, msg) != MP_OK)
        mp_log(MP_LOG_WARN, "job %s: job store: %s", id, store_errmsg(a->st));
}

static void run_unlock(api_t *a)
{
    api_jobs_t *q = a->jobs;
    store_job_unlock(a->st, q->run_id, q->run_lock);
    q->run_lock = -1;
}

/* Start the next queued job, if none runs. */
static void start_next(api_t *a)
{
    api_jobs_t *q = a->jobs;
    while (!q->run && q->nq && !a->shutting) {
        char id[STORE_ID_MAX];
        mp_strlcpy(id, q->queue[0], sizeof id);
        memmove(q->queue[0], q->queue[1], (q->nq - 1) * sizeof q->queue[0]);
        q->nq--;
        store_job_t j;
        bool found = false;
        api_job_opts_t jo;
        memset(&j, 0, sizeof j);
        if (store_job_get(a->st, id, &j, &found) != MP_OK || !found || !job_opts(&j, &jo)) {
            store_job_cleanup(&j);
            continue; /* deleted meanwhile */
        }
        bulkio_ropts_t ro;
        reader_opts(&jo, &ro);
        job_run_opts_t o = {a->base, a->engine, a->st, j.id, j.created, j.input_path, &ro,
                            (int64_t)(a->o.max_age_ms / 1000), on_job_end, on_job_result, a,
                            NULL, NULL};
        char err[BULKIO_ERR_MAX + STORE_ERR_MAX];
        long holder = 0;
        if (store_job_lock(a->st, id, &q->run_lock, &holder) != MP_OK) {
            /* `mailprobe bulk --resume` runs it: it is not ours to run now */
            mp_log(MP_LOG_WARN, "job %s: %s; not run here", id, store_errmsg(a->st));
            store_job_cleanup(&j);
            continue;
        }
        mp_strlcpy(q->run_id, id, sizeof q->run_id);
        set_state(a, id, STORE_JOB_RUNNING, NULL);
        if (a->o.redis && *a->o.redis) {
            q->pool = fleet_jobq_open(a->base, a->o.redis, id, pool_note, a, err, sizeof err);
            o.remote = q->pool ? pool_check : NULL;
            o.remote_ctx = q->pool;
        }
        if ((a->o.redis && *a->o.redis && !q->pool) ||
            job_run_start(&o, &q->run, err, sizeof err) != MP_OK) {
            fleet_jobq_close(q->pool, false, NULL, NULL);
            q->pool = NULL;
            run_unlock(a);
            set_state(a, id, STORE_JOB_FAILED, err);
            hook_start(a, &j);
        } else {
            q->run_start_ms = mp_now_ms();
            q->run_ended = false;
        }
        store_job_cleanup(&j);
    }
}

static void on_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_t *a = arg;
    api_jobs_t *q = a->jobs;
    if (a->shutting)
        return; /* the stopped run is freed with the engine gone (api_jobs_free) */
    if (q->run && q->run_ended) {
        char id[STORE_ID_MAX];
        mp_strlcpy(id, job_run_id(q->run), sizeof id);
        job_counts_t c;
        job_run_counts(q->run, &c);
        a->m.slices_job += c.slices;
        run_free(q, q->run_end == JOB_END_DONE);
        run_unlock(a);
        if (q->run_end != JOB_END_STOPPED) {
            /* stopped = shutting down: the job stays "running" and continues next start */
            set_state(a, id, q->run_end == JOB_END_DONE ? STORE_JOB_DONE : STORE_JOB_FAILED,
                      q->run_end == JOB_END_DONE ? NULL : q->run_msg);
            store_job_t j;
            bool found = false;
            memset(&j, 0, sizeof j);
            if (store_job_get(a->st, id, &j, &found) == MP_OK && found)
                hook_start(a, &j);
            store_job_cleanup(&j);
        }
    }
    start_next(a);
}

static bool enqueue(api_t *a, const char *id)
{
    api_jobs_t *q = a->jobs;
    if (q->nq >= QUEUE_MAX)
        return false;
    mp_strlcpy(q->queue[q->nq++], id, sizeof q->queue[0]);
    event_active(q->next_ev, 0, 0);
    return true;
}

/* ---- POST /v1/jobs ------------------------------------------------------------------ */

static bool is_json(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    return ct && strncasecmp(ct, "application/json", 16) == 0;
}

/* Save the body as the job's input: JSON is turned into NDJSON, anything else is kept
 * as sent (CSV or NDJSON, sniffed by the reader). 0, or an HTTP code after answering. */
/* store_space_check's message without the server's directory. */
static const char *space_msg(api_t *a)
{
    static char out[STORE_ERR_MAX];
    const char *m = store_errmsg(a->st);
    const char *dir = strstr(m, " and ");
    const char *has = dir ? strstr(dir, " has ") : NULL;
    if (!dir || !has) {
        mp_strlcpy(out, "not enough room for the job in the job store", sizeof out);
        return out;
    }
    snprintf(out, sizeof out, "%.*s and the server has%s", (int)(dir - m), m, has + 4);
    return out;
}

static int save_input(api_t *a, struct evhttp_request *req, api_job_opts_t *jo, char *path,
                      size_t size)
{
    size_t len;
    const char *body = api_body(req, &len);
    if (!body) {
        api_error(a, req, 400, "bad_request", "the body is empty: send a CSV file or a JSON "
                  "array of addresses");
        return 400;
    }
    /* room for the input and its results (24 bytes a row guessed: the rows are counted
     * later), before anything is written */
    if (store_space_check(a->st, (int64_t)(len / 24), len) != MP_OK) {
        api_error(a, req, 507, "insufficient_storage", "%s", space_msg(a));
        return 507;
    }
    snprintf(path, size, "%s/in-XXXXXX", a->dir);
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        api_error(a, req, 500, "internal", "cannot save the input: %s", strerror(errno));
        return 500;
    }
    char err[512];
    size_t rows;
    int rc = 0;
    if (is_json(req)) {
        if (api_job_json_to_ndjson(body, len, f, jo, &rows, err, sizeof err) != 0) {
            api_error(a, req, 400, "bad_request", "%s", err);
            rc = 400;
        }
    } else if (fwrite(body, 1, len, f) != len) {
        rc = errno == ENOSPC ? 507 : 500;
    }
    if (fclose(f) != 0 && !rc)
        rc = errno == ENOSPC ? 507 : 500;
    if (rc == 507)
        api_error(a, req, 507, "insufficient_storage", "the disk of the job store is full");
    else if (rc == 500)
        api_error(a, req, 500, "internal", "cannot save the input: %s", strerror(errno));
    if (rc)
        unlink(path);
    return rc;
}

/* Refuse bad input before the job exists: no email column, no row. A small upload is
 * counted now (*rows); a larger one is counted later in slices (*rows = 0: not known),
 * so that a million-row upload does not hold the loop for half a second. */
/* 400 bad_input: the reader's message speaks of the saved file by its path, which is
 * the server's business: the caller hears of "the upload", and of the column= parameter
 * rather than the command line's --column. */
static void input_error(api_t *a, struct evhttp_request *req, const char *path,
                        const char *msg)
{
    char out[BULKIO_ERR_MAX + 64];
    size_t o = 0, pl = strlen(path);
    while (*msg && o + 16 < sizeof out) {
        if (strncmp(msg, path, pl) == 0) {
            o += (size_t)snprintf(out + o, sizeof out - o, "the upload");
            msg += pl;
        } else if (strncmp(msg, "--column", 8) == 0) {
            o += (size_t)snprintf(out + o, sizeof out - o, "column=");
            msg += 8;
            if (*msg == ' ')
                msg++;
        } else {
            out[o++] = *msg++;
        }
    }
    out[o] = '\0';
    api_error(a, req, 400, "bad_input", "%s", out);
}

static int validate_input(api_t *a, struct evhttp_request *req, const char *path,
                          const api_job_opts_t *jo, size_t size, int64_t *rows)
{
    bulkio_ropts_t ro;
    reader_opts(jo, &ro);
    bulkio_reader_t *rd = NULL;
    char err[BULKIO_ERR_MAX];
    if (bulkio_reader_open(path, &ro, &rd, err, sizeof err) != MP_OK) {
        input_error(a, req, path, err);
        return 400;
    }
    const bulkio_row_t *row;
    int64_t n = 0;
    mp_status_t st;
    while ((st = bulkio_reader_next(rd, &row)) == MP_OK && row)
        if (++n == 1 && size > COUNT_NOW_MAX)
            break;
    if (st != MP_OK) {
        input_error(a, req, path, bulkio_reader_error(rd));
        bulkio_reader_free(rd);
        return 400;
    }
    bulkio_reader_free(rd);
    if (!n) {
        api_error(a, req, 400, "bad_input", "the input has no rows");
        return 400;
    }
    *rows = size > COUNT_NOW_MAX ? 0 : n;
    return 0;
}

static void count_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_t *a = arg;
    api_jobs_t *q = a->jobs;
    counter_t *c = q->counters;
    if (!c)
        return;
    a->m.slices_count++;
    const bulkio_row_t *row;
    mp_status_t st = MP_OK;
    size_t i = 0;
    while (i < COUNT_SLICE && (st = bulkio_reader_next(c->rd, &row)) == MP_OK && row) {
        c->n++;
        i++;
    }
    if (i == COUNT_SLICE && st == MP_OK) {
        job_yield(q->count_ev);
        return;
    }
    /* the end (or a read error: the run will report it); the run stores the same total
     * when it reaches the end itself */
    if (st == MP_OK && store_job_set_total(a->st, c->id, c->n) != MP_OK)
        mp_log(MP_LOG_WARN, "job %s: job store: %s", c->id, store_errmsg(a->st));
    q->counters = c->next;
    bulkio_reader_free(c->rd);
    free(c);
    if (q->counters)
        job_yield(q->count_ev);
}

/* Count a job's rows in the background. */
static void count_later(api_t *a, const char *id, const char *path, const api_job_opts_t *jo)
{
    bulkio_ropts_t ro;
    reader_opts(jo, &ro);
    char err[BULKIO_ERR_MAX];
    counter_t *c = calloc(1, sizeof *c);
    if (!c || bulkio_reader_open(path, &ro, &c->rd, err, sizeof err) != MP_OK) {
        free(c);
        return; /* no total until the run reaches the end: progress shows rows done */
    }
    mp_strlcpy(c->id, id, sizeof c->id);
    counter_t **tail = &a->jobs->counters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    job_yield(a->jobs->count_ev);
}

static void count_cancel(api_t *a, const char *id)
{
    for (counter_t **pp = &a->jobs->counters; *pp;) {
        counter_t *c = *pp;
        if (!id || strcmp(c->id, id) == 0) {
            *pp = c->next;
            bulkio_reader_free(c->rd);
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

void api_jobs_post(api_t *a, struct evhttp_request *req, const char *query)
{
    api_job_opts_t jo;
    char err[512], path[1200];
    if (api_job_opts_from_query(query, &jo, err, sizeof err) != 0) {
        api_error(a, req, 400, "bad_request", "%s", err);
        return;
    }
    if (jo.webhook[0] && hook_refused(a, jo.webhook, err, sizeof err)) {
        api_error(a, req, 400, "bad_request", "%s", err);
        return;
    }
    if (a->jobs->nq >= QUEUE_MAX) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "60");
        api_error(a, req, 503, "queue_full", "%u jobs are waiting already", QUEUE_MAX);
        return;
    }
    size_t body_len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    if (save_input(a, req, &jo, path, sizeof path) != 0)
        return;
    int64_t rows = 0;
    if (validate_input(a, req, path, &jo, body_len, &rows) != 0) {
        unlink(path);
        return;
    }

    char fp[STORE_FP_MAX], ferr[STORE_ERR_MAX];
    json_t *oj = json_pack("{ssss}", "column", jo.column, "webhook", jo.webhook);
    char *oj_text = oj ? json_dumps(oj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(oj);
    size_t olen = oj_text ? strlen(oj_text) + 5 : 0;
    char *options = oj_text ? malloc(olen) : NULL;
    if (options)
        snprintf(options, olen, "api:%s", oj_text);
    free(oj_text);
    store_job_t j;
    memset(&j, 0, sizeof j);
    if (!options || store_fingerprint(path, fp, sizeof fp, ferr, sizeof ferr) != MP_OK) {
        free(options);
        unlink(path);
        api_error(a, req, 500, "internal", "cannot record the job: %s",
                  options ? ferr : "out of memory");
        return;
    }
    j.input_path = path;
    j.fingerprint = fp;
    j.options = options;
    j.total_rows = rows;
    mp_status_t st = store_job_create(a->st, &j);
    free(options);
    if (st != MP_OK) {
        unlink(path);
        api_error(a, req, 500, "internal", "job store: %s", store_errmsg(a->st));
        return;
    }
    if (!rows)
        count_later(a, j.id, path, &jo);
    enqueue(a, j.id);
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/jobs/%s", j.id);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", loc);
    api_reply_json(a, req, 202, json_pack("{sssssos{ss}}", "id", j.id, "state", "queued",
                                          "rows_total",
                                          rows ? json_integer(rows) : json_null(), "links",
                                          "self", loc));
}

/* ---- results ------------------------------------------------------------------------ */

static void out_step(evutil_socket_t fd, short what, void *arg);

/* The file holding a job's output in this format, optionally one verdict's rows. */
static void out_path(const api_t *a, const char *id, bulkio_format_t f, const char *verdict,
                     char *out, size_t size)
{
    char suffix[64];
    if (verdict && *verdict)
        snprintf(suffix, sizeof suffix, ".%s.split/%s.%s", fmt_ext(f), verdict, fmt_ext(f));
    else
        snprintf(suffix, sizeof suffix, ".%s", fmt_ext(f));
    job_file(a, id, suffix, out, size);
}

static void send_file(api_t *a, struct evhttp_request *req, const char *id,
                      bulkio_format_t f, const char *verdict)
{
    char path[1300];
    out_path(a, id, f, verdict, path, sizeof path);
    int fd = open(path, O_RDONLY);
    struct stat sb;
    struct evbuffer *b = evbuffer_new();
    if (fd < 0 || fstat(fd, &sb) != 0 || !b ||
        (sb.st_size && evbuffer_add_file(b, fd, 0, sb.st_size) != 0)) {
        if (fd >= 0)
            close(fd);
        if (b)
            evbuffer_free(b);
        api_error(a, req, 500, "internal", "cannot read the results: %s", strerror(errno));
        return;
    }
    if (!sb.st_size)
        close(fd); /* evbuffer_add_file owns fd only when it took it */
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", f == BULKIO_FMT_NDJSON ? "application/x-ndjson"
                                                                : "text/csv; charset=utf-8");
    char cd[160];
    snprintf(cd, sizeof cd, "attachment; filename=\"mailprobe-%s%s%s.%s\"", id,
             verdict && *verdict ? "-" : "", verdict ? verdict : "", fmt_ext(f));
    evhttp_add_header(h, "Content-Disposition", cd);
    api_reply(a, req, 200, b);
    evbuffer_free(b);
}

static void task_answer(api_t *a, out_task_t *t, const char *error)
{
    while (t->waiters) {
        out_wait_t *w = t->waiters;
        t->waiters = w->next;
        if (error)
            api_error(a, w->req, 500, "internal", "writing the results failed: %s", error);
        else
            send_file(a, w->req, t->id, t->fmt, w->verdict);
        free(w);
    }
}

static void task_free(api_t *a, out_task_t *t, const char *error)
{
    task_answer(a, t, error);
    job_out_free(t->out);
    for (out_task_t **pp = &a->jobs->tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    free(t);
}

/* Open the writer of the first task (the store connection serves one at a time). */
static int task_open(api_t *a, out_task_t *t, char *err, size_t errsize)
{
    store_job_t j;
    bool found = false;
    api_job_opts_t jo;
    memset(&j, 0, sizeof j);
    if (store_job_get(a->st, t->id, &j, &found) != MP_OK || !found || !job_opts(&j, &jo)) {
        store_job_cleanup(&j);
        snprintf(err, errsize, "the job is gone");
        return -1;
    }
    bulkio_ropts_t ro;
    reader_opts(&jo, &ro);
    bulkio_reader_t *rd = NULL;
    bulkio_writer_t *w = NULL;
    char path[1300], split[1300];
    out_path(a, t->id, t->fmt, NULL, path, sizeof path);
    snprintf(split, sizeof split, "%s.split", path);
    bulkio_wopts_t wo = {t->fmt, path, split, false}; /* verdict=risky: every risky row */
    int rc = -1;
    if (bulkio_reader_open(j.input_path, &ro, &rd, err, errsize) == MP_OK &&
        bulkio_writer_open(&wo, bulkio_reader_schema(rd), &w, err, errsize) == MP_OK &&
        job_out_open(a->jobs->rst, t->id, j.input_path, &ro, a->hist, false, w, &t->out, err,
                     errsize) ==
            MP_OK)
        rc = 0;
    bulkio_reader_free(rd);
    store_job_cleanup(&j);
    return rc;
}

static void out_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_t *a = arg;
    out_task_t *t = a->jobs->tasks;
    if (!t)
        return;
    a->m.slices_results++;
    char err[BULKIO_ERR_MAX + STORE_ERR_MAX];
    if (!t->out && task_open(a, t, err, sizeof err) != 0) {
        task_free(a, t, err);
    } else {
        bool done = false;
        if (job_out_step(t->out, OUT_SLICE, &done) != MP_OK)
            task_free(a, t, job_out_error(t->out));
        else if (done)
            task_free(a, t, NULL);
    }
    if (a->jobs->tasks)
        job_yield(a->jobs->out_ev);
}

void api_jobs_results(api_t *a, struct evhttp_request *req, const char *id, const char *query)
{
    api_results_req_t rq;
    char err[512];
    if (api_results_from_query(query, &rq, err, sizeof err) != 0) {
        api_error(a, req, 400, "bad_request", "%s", err);
        return;
    }
    bulkio_format_t f = rq.ndjson ? BULKIO_FMT_NDJSON : BULKIO_FMT_CSV;
    const char *verdict = rq.verdict;
    store_job_t j;
    if (!get_job(a, req, id, &j))
        return;
    store_job_state_t state = j.state;
    int64_t done = j.done_rows, total = j.total_rows;
    store_job_cleanup(&j);
    if (state != STORE_JOB_DONE) {
        api_reply_json(a, req, 409,
                       json_pack("{sssssssIsI}", "error", "not_done", "message",
                                 "the results come when the job is done", "state",
                                 store_job_state_name(state), "rows_done", (json_int_t)done,
                                 "rows_total", (json_int_t)total));
        return;
    }
    char path[1300];
    out_path(a, id, f, NULL, path, sizeof path);
    if (access(path, F_OK) == 0) {
        send_file(a, req, id, f, verdict);
        return;
    }
    /* write it first: join the task for this job and format, or queue one */
    out_task_t *t = a->jobs->tasks, **tail = &a->jobs->tasks;
    while (t && !(strcmp(t->id, id) == 0 && t->fmt == f)) {
        tail = &t->next;
        t = t->next;
    }
    out_wait_t *w = calloc(1, sizeof *w);
    if (!w || (!t && !(t = calloc(1, sizeof *t)))) {
        free(w);
        api_error(a, req, 500, "internal", "out of memory");
        return;
    }
    if (!t->id[0]) { /* new: goes last */
        mp_strlcpy(t->id, id, sizeof t->id);
        t->fmt = f;
        *tail = t;
    }
    w->req = req;
    mp_strlcpy(w->verdict, verdict, sizeof w->verdict);
    w->next = t->waiters;
    t->waiters = w;
    job_yield(a->jobs->out_ev);
}

/* ---- DELETE ------------------------------------------------------------------------- */

static void remove_tree(const char *path)
{
    const char *const *names = bulkio_split_files;
    for (size_t f = 0; f < 2; f++)
        for (size_t i = 0; names[i]; i++) {
            char p[1400];
            snprintf(p, sizeof p, "%s.%s.split/%s.%s", path, f ? "ndjson" : "csv", names[i],
                     f ? "ndjson" : "csv");
            unlink(p);
        }
    for (size_t f = 0; f < 2; f++) {
        char p[1400];
        snprintf(p, sizeof p, "%s.%s.split", path, f ? "ndjson" : "csv");
        rmdir(p);
        snprintf(p, sizeof p, "%s.%s", path, f ? "ndjson" : "csv");
        unlink(p);
    }
}

void api_jobs_delete(api_t *a, struct evhttp_request *req, const char *id)
{
    store_job_t j;
    if (!get_job(a, req, id, &j))
        return;
    api_jobs_t *q = a->jobs;
    if (q->run && strcmp(job_run_id(q->run), id) == 0) {
        run_free(q, true); /* checks in flight finish into nothing */
        run_unlock(a);
        event_active(q->next_ev, 0, 0);
    }
    for (size_t i = 0; i < q->nq; i++)
        if (strcmp(q->queue[i], id) == 0) {
            memmove(q->queue[i], q->queue[i + 1], (q->nq - i - 1) * sizeof q->queue[0]);
            q->nq--;
            break;
        }
    for (out_task_t *t = q->tasks, *next; t; t = next) {
        next = t->next;
        if (strcmp(t->id, id) == 0) {
            while (t->waiters) {
                out_wait_t *w = t->waiters;
                t->waiters = w->next;
                api_error(a, w->req, 404, "not_found", "job %s was deleted", id);
                free(w);
            }
            task_free(a, t, NULL);
        }
    }
    for (hook_t *h = q->hooks, *next; h; h = next) {
        next = h->next;
        if (strcmp(h->id, id) == 0)
            hook_free(h);
    }
    count_cancel(a, id);
    if (store_job_delete(a->st, id) != MP_OK) {
        api_error(a, req, 500, "internal", "job store: %s", store_errmsg(a->st));
        store_job_cleanup(&j);
        return;
    }
    char base[1200];
    job_file(a, id, "", base, sizeof base);
    remove_tree(base);
    job_file(a, id, ".webhook-done", base, sizeof base);
    unlink(base);
    if (j.input_path && strncmp(j.input_path, a->dir, strlen(a->dir)) == 0)
        unlink(j.input_path);
    store_job_cleanup(&j);
    api_reply_json(a, req, 200, json_pack("{ss}", "deleted", id));
}

/* ---- life cycle --------------------------------------------------------------------- */

int api_jobs_init(api_t *a, char *err, size_t errsize)
{
    api_jobs_t *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    a->jobs = q;
    q->run_lock = -1;
    q->next_ev = event_new(a->base, -1, 0, on_next, a);
    q->out_ev = event_new(a->base, -1, 0, out_step, a);
    q->count_ev = event_new(a->base, -1, 0, count_step, a);
    if (!q->next_ev || !q->out_ev || !q->count_ev) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    /* the system's resolvers (resolv.conf); a webhook to an IP address needs none */
    q->dns = evdns_base_new(a->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                         EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!q->dns)
        q->dns = evdns_base_new(a->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    char serr[STORE_ERR_MAX];
    if (store_open(a->store_path, &q->rst, serr, sizeof serr) != MP_OK) {
        snprintf(err, errsize, "job store %s: %s", a->store_path, serr);
        return -1;
    }
    /* the store's own jobs, oldest first: unfinished ones continue, done ones get their
     * webhook if it was never delivered */
    store_job_t *jobs = NULL;
    size_t n = 0;
    if (store_job_list(a->st, &jobs, &n) != MP_OK) {
        snprintf(err, errsize, "job store: %s", store_errmsg(a->st));
        return -1;
    }
    api_job_opts_t jo;
    for (size_t i = n; i-- > 0;) {
        if (!job_opts(&jobs[i], &jo))
            continue;
        store_job_state_t s = jobs[i].state;
        if (s == STORE_JOB_QUEUED || s == STORE_JOB_RUNNING || s == STORE_JOB_INTERRUPTED) {
            if (!enqueue(a, jobs[i].id))
                mp_log(MP_LOG_WARN, "job %s: the queue is full; not resumed", jobs[i].id);
            else
                mp_log(MP_LOG_INFO, "job %s: resumed", jobs[i].id);
            if (jobs[i].total_rows < 0)
                count_later(a, jobs[i].id, jobs[i].input_path, &jo);
        } else {
            hook_start(a, &jobs[i]);
        }
    }
    store_jobs_free(jobs, n);
    return 0;
}

void api_jobs_shutdown(api_t *a)
{
    api_jobs_t *q = a->jobs;
    if (q && q->run) {
        /* no new checks; the job stays "running" in the store: the next start continues
         * it from what was stored */
        job_run_stop(q->run);
        store_flush(a->st);
    }
    /* downloads waiting for an output file */
    for (out_task_t *t = q ? q->tasks : NULL; t; t = t->next)
        while (t->waiters) {
            out_wait_t *w = t->waiters;
            t->waiters = w->next;
            api_error(a, w->req, 503, "shutting_down", "the server is stopping");
            free(w);
        }
}

void api_jobs_free(api_t *a)
{
    api_jobs_t *q = a->jobs;
    if (!q)
        return;
    fleet_jobq_abandon(q->pool); /* the job continues at the next start */
    q->pool = NULL;
    job_run_free(q->run, true);
    run_unlock(a);
    while (q->tasks) {
        out_task_t *t = q->tasks;
        while (t->waiters) {
            out_wait_t *w = t->waiters;
            t->waiters = w->next;
            api_error(a, w->req, 503, "shutting_down", "the server is stopping");
            free(w);
        }
        task_free(a, t, NULL);
    }
    while (q->hooks)
        hook_free(q->hooks);
    count_cancel(a, NULL);
    if (q->count_ev)
        event_free(q->count_ev);
    if (q->next_ev)
        event_free(q->next_ev);
    if (q->out_ev)
        event_free(q->out_ev);
    store_close(q->rst);
    if (q->dns)
        evdns_base_free(q->dns, 0);
    free(q);
    a->jobs = NULL;
}
