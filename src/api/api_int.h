/*
 * api_int.h - what the files of the api module share: the server's state, replies,
 * metrics, jobs. Not for other modules.
 */
#ifndef MP_API_INT_H
#define MP_API_INT_H

#include <stdarg.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "api/api.h"
#include "api/body.h"
#include "job/job.h"
#include "util/strmap.h"

/* ---- metrics ------------------------------------------------------------------------ */

#define API_LAT_BUCKETS 12
#define API_CODES 16

typedef struct {
    uint64_t checks[VR__COUNT];         /* finished checks (API and jobs) by reason */
    uint64_t lat[API_LAT_BUCKETS + 1];  /* check duration histogram (last: +Inf) */
    double lat_sum;
    uint64_t lat_count;
    int codes[API_CODES];               /* HTTP status codes seen ... */
    uint64_t code_n[API_CODES];         /* ... and how many of each */
    uint64_t check_requests, check_cached, check_timeouts;
    uint64_t webhooks_ok, webhooks_failed;
    uint64_t slices_count, slices_results; /* background work, one slice per loop turn */
    uint64_t slices_job;                   /* pump turns of finished runs */
} api_metrics_t;

void api_metrics_result(api_metrics_t *m, const vd_result_t *res);
void api_metrics_code(api_metrics_t *m, int code);
struct api;
void api_metrics_render(struct api *a, struct evbuffer *out);

/* ---- jobs --------------------------------------------------------------------------- */

typedef struct api_jobs api_jobs_t;

/** Resume unfinished API jobs of the store, re-send webhooks not delivered. */
int api_jobs_init(struct api *a, char *err, size_t errsize);
void api_jobs_shutdown(struct api *a);
void api_jobs_free(struct api *a);
/** Queued jobs (the running one not counted) and whether one runs. */
void api_jobs_depth(const struct api *a, unsigned *queued, bool *running);
/** Turns of the job pump so far, finished runs and the running one. */
uint64_t api_jobs_pump_turns(const struct api *a);

void api_jobs_post(struct api *a, struct evhttp_request *req, const char *query);
void api_jobs_get(struct api *a, struct evhttp_request *req, const char *id);
void api_jobs_list(struct api *a, struct evhttp_request *req);
void api_jobs_results(struct api *a, struct evhttp_request *req, const char *id,
                      const char *query);
void api_jobs_delete(struct api *a, struct evhttp_request *req, const char *id);

/* ---- connections (conns.c) ---------------------------------------------------------- */

typedef struct api_conns api_conns_t;

/** Guard the server's connections (deadlines, per-client cap, room at the limit); installs
 *  evhttp's bufferevent callback. NULL when out of memory. */
api_conns_t *api_conns_new(struct api *a);
/** Release every record (after evhttp is freed). */
void api_conns_free(api_conns_t *g);
/** A request arrived whole on its connection (trusted: it carried a valid token). */
void api_conns_request(api_conns_t *g, struct evhttp_request *req, bool trusted);
/** Deadlines and the records of connections evhttp has freed (from the 200 ms tick). */
void api_conns_tick(api_conns_t *g);
/** Connections open now. */
size_t api_conns_open(const api_conns_t *g);

/* ---- evhttp's own error answers (errpage.c) ----------------------------------------- */

/** What is watched on one connection's output: a response that may be evhttp's page. */
typedef struct api_errpage {
    size_t at;      /* where it starts in the output buffer */
    bool watching;  /* a response began while no handler was answering */
    bool rewriting; /* our own change of the buffer: not looked at */
} api_errpage_t;

/** From the output buffer's evbuffer callback: note what was added or written (info);
 *  answering: a handler of the server answers a request on this connection now (its
 *  replies are never looked at). When the response being watched is evhttp's own error
 *  page, whole, it is replaced by a JSON answer with the same status (max_body names the
 *  limit in a 413). Returns the status rewritten, -1 when the page may be whole only once
 *  the current callbacks are over (then call api_errpage_settle), else 0. */
int api_errpage_see(api_errpage_t *w, struct evbuffer *out, const struct evbuffer_cb_info *info,
                    bool answering, size_t max_body);
/** After evhttp's call chain is over (before the socket is written): rewrite the page it
 *  wrote without a body (a request that said Expect: 100-continue), or stop watching.
 *  Returns the status rewritten, else 0. */
int api_errpage_settle(api_errpage_t *w, struct evbuffer *out, size_t max_body);

/* ---- the server --------------------------------------------------------------------- */

struct api {
    struct event_base *base;
    engine_t *engine;
    store_t *st;              /* jobs write here; the address cache */
    api_opts_t o;
    char store_path[1024];
    history_t *hist;          /* the store's address history (catch-all assessment), or NULL */
    char dir[1100];           /* STORE_PATH.d: job inputs and outputs */
    char version[64];
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    unsigned port;
    api_tokens_t tokens;
    bool auth;
    strmap_t *buckets;        /* rate limit: token or client address -> bucket */
    strmap_t *inflight;       /* address -> check in the engine */
    strmap_t *recent;         /* address -> its last result (server.c) */
    char **ring;              /* addresses of recent results, oldest overwritten first */
    uint64_t recent_seq;
    struct event *tick;       /* commits idle batches */
    struct event *accept_ev;  /* accepting again after running out of descriptors */
    uint64_t accept_warned_ms;
    api_metrics_t m;
    api_jobs_t *jobs;
    api_conns_t *conns;
    size_t conns_max;         /* connections at once (from the open files limit) */
    uint64_t started_ms;
    bool shutting;
};

/* Replies (every one is counted by status code). */
void api_reply(struct api *a, struct evhttp_request *req, int code, struct evbuffer *body);
void api_reply_json(struct api *a, struct evhttp_request *req, int code, json_t *j);
void api_reply_text(struct api *a, struct evhttp_request *req, int code, const char *ctype,
                    const char *text);
void api_error(struct api *a, struct evhttp_request *req, int code, const char *error,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The request body as one NUL-terminated string (pulled up in place); NULL when empty. */
const char *api_body(struct evhttp_request *req, size_t *len);

/* Embedded files (web/ and the OpenAPI description), generated at build time. */
typedef struct {
    const char *name;
    const char *ctype;
    const unsigned char *data;
    size_t len;
} api_asset_t;
extern const api_asset_t api_assets[];
extern const size_t api_nassets;

#endif
