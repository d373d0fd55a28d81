/*
 * conns.c - the server's guard over its connections (see api_int.h): a deadline for each
 * request's head and body, a cap per client address, and room for new callers when the
 * connection limit is near. It never reads or writes HTTP itself except the one-line
 * JSON answer it sends to a connection it refuses or times out; evhttp does the rest.
 * Each connection's output buffer is watched for evhttp's own error page, which
 * errpage.c replaces with a JSON answer before it is sent.
 *
 * evhttp (libevent 2.1) has no deadline for a whole request, only an idle timeout that
 * every byte resets, and no hook at accept time. So the server creates each connection's
 * bufferevent itself (evhttp_set_bevcb) and keeps one reference of its own on it: the
 * record stays valid after evhttp frees the connection, which the guard sees (the
 * bufferevent's event callback is gone) and then drops its reference, which closes the
 * socket. A connection to end is shut down (shutdown(2)): evhttp reads the end of
 * stream and frees it the usual way.
 *
 * - New connections are looked at right after evhttp took them (a deferred event in the
 *   same loop turn): the client's address is read and counted; past --max-per-client
 *   the connection is answered 503 too_many_connections and closed; past the
 *   connection limit the oldest connection waiting for a request (one that never
 *   carried a valid token first) makes room.
 * - A connection waiting for a request (a new one, or a kept-alive one whose last answer
 *   went out) must deliver the whole request, head and body, within --request-timeout;
 *   within 2 s when 7/8 of the limit is in use. Else 408 request_timeout and closed.
 *   The 200 ms tick checks the deadlines.
 * Time spent answering (a large download) is not counted: evhttp's idle timeout (120 s)
 * covers a reader that stops reading.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>

#include <event2/bufferevent.h>

#include "api/api_int.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"
#include "util/str.h"

#define PRESSURE_DEADLINE_MS 2000

typedef struct api_conn {
    struct bufferevent *bev;  /* one reference of ours */
    evutil_socket_t fd;       /* -1 until looked at */
    char key[24];             /* "%p" of bev: the by_bev key */
    char peer[INET6_ADDRSTRLEN];
    uint64_t since_ms;        /* waiting for a request since */
    bool busy;                /* a request is being answered */
    bool trusted;             /* a request on it carried a valid token */
    bool ending;              /* shut down: evhttp will free it */
    bool held;                /* reading held while pipelined requests wait */
    bool settle;              /* its output is to be looked at again (errpage.c) */
    api_errpage_t page;       /* evhttp's own error answer, watched (errpage.c) */
    struct evbuffer_cb_entry *out_cb;
    api_conns_t *g;
    mp_list_node_t link;      /* in api_conns.conns */
} api_conn_t;

struct api_conns {
    api_t *a;
    mp_list_t conns;         /* oldest first */
    size_t n;                /* not ending */
    strmap_t *by_bev;
    strmap_t *per_peer;      /* address -> connections (as a pointer-sized integer) */
    struct event *fresh_ev;
    struct event *settle_ev;
    bool fresh;
};

static void peer_count(api_conns_t *g, const char *peer, int delta, size_t *out)
{
    uintptr_t n = (uintptr_t)strmap_get(g->per_peer, peer);
    n = delta > 0 ? n + 1 : n ? n - 1 : 0;
    if (n)
        strmap_put(g->per_peer, peer, (void *)n);
    else
        strmap_del(g->per_peer, peer);
    if (out)
        *out = (size_t)n;
}

/* The connection of a node of g->conns (NULL for NULL). */
static api_conn_t *conn_at(mp_list_node_t *n)
{
    return MP_LIST_ITEM(n, api_conn_t, link);
}

static void conn_release(api_conns_t *g, api_conn_t *c)
{
    mp_list_unlink(&g->conns, &c->link);
    strmap_del(g->by_bev, c->key);
    if (c->out_cb)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    if (c->peer[0])
        peer_count(g, c->peer, -1, NULL);
    if (!c->ending)
        g->n--;
    bufferevent_decref(c->bev); /* the last reference: closes the socket */
    free(c);
}

/* evhttp freed the connection: bufferevent_free clears the callbacks. (The event
 * callback, not the read one: evhttp clears the read callback itself while it writes an
 * answer.) */
static bool conn_gone(const api_conn_t *c)
{
    bufferevent_event_cb ev = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &ev, NULL);
    return ev == NULL;
}

/* Answer (best effort, never blocking) and shut the connection down. */
static void conn_end(api_conns_t *g, api_conn_t *c, int code, const char *error,
                     const char *message)
{
    if (c->ending)
        return;
    c->ending = true;
    g->n--;
    if (c->fd < 0)
        c->fd = bufferevent_getfd(c->bev);
    if (c->fd < 0)
        return;
    if (code) {
        char body[256], msg[512];
        int bl = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}\n", error,
                          message);
        int ml = snprintf(msg, sizeof msg,
                          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                          "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                          code, code == 408 ? "Request Timeout" : "Service Unavailable", bl,
                          body);
        if (ml > 0 && (size_t)ml < sizeof msg)
            (void)!send(c->fd, msg, (size_t)ml, MSG_NOSIGNAL | MSG_DONTWAIT);
        api_metrics_code(&g->a->m, code);
    }
    shutdown(c->fd, SHUT_RDWR);
}

static api_conn_t *conn_of(api_conns_t *g, struct evhttp_request *req)
{
    struct evhttp_connection *ec = req ? evhttp_request_get_connection(req) : NULL;
    struct bufferevent *bev = ec ? evhttp_connection_get_bufferevent(ec) : NULL;
    if (!bev)
        return NULL;
    char key[24];
    snprintf(key, sizeof key, "%p", (void *)bev);
    return strmap_get(g->by_bev, key);
}

/* The output buffer changed: evhttp's own error page becomes JSON (errpage.c). */
static void on_output(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    api_conn_t *c = arg;
    api_conns_t *g = c->g;
    int code = api_errpage_see(&c->page, out, info, c->busy, g->a->o.max_body);
    if (code > 0)
        api_metrics_code(&g->a->m, code);
    else if (code < 0 && !c->settle) {
        c->settle = true;
        event_active(g->settle_ev, 0, 0); /* runs in this loop turn, before the next poll */
    }
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_conns_t *g = arg;
    for (api_conn_t *c = conn_at(g->conns.head); c; c = conn_at(c->link.next))
        if (c->settle) {
            c->settle = false;
            int code = api_errpage_settle(&c->page, bufferevent_get_output(c->bev),
                                          g->a->o.max_body);
            if (code > 0)
                api_metrics_code(&g->a->m, code);
        }
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    api_conns_t *g = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    api_conn_t *c = bev ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        if (bev)
            bufferevent_free(bev);
        return NULL; /* evhttp makes its own: this connection goes unguarded */
    }
    c->bev = bev;
    c->fd = -1;
    c->g = g;
    snprintf(c->key, sizeof c->key, "%p", (void *)bev);
    if (!strmap_put(g->by_bev, c->key, c)) {
        free(c);
        return bev;
    }
    bufferevent_incref(bev);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, c);
    c->since_ms = mp_now_ms();
    mp_list_push_tail(&g->conns, &c->link);
    g->n++;
    g->fresh = true;
    /* evhttp sets the socket after this returns: look at it once it has, before the
     * loop polls again (an event activated here runs later in this same turn) */
    event_active(g->fresh_ev, 0, 0);
    return bev;
}

/* Make room: end the oldest connection waiting for a request, one that never carried a
 * valid token first. */
static void make_room(api_conns_t *g, const api_conn_t *keep)
{
    for (int pass = 0; pass < 2; pass++)
        for (api_conn_t *c = conn_at(g->conns.head); c; c = conn_at(c->link.next))
            if (c != keep && !c->ending && !c->busy && c->fd >= 0 && (pass || !c->trusted)) {
                conn_end(g, c, 503, "busy", "the server is at its connection limit");
                return;
            }
}

/* Release the records of connections evhttp has freed (their sockets close now). */
static void collect(api_conns_t *g)
{
    for (api_conn_t *c = conn_at(g->conns.head), *next; c; c = next) {
        next = conn_at(c->link.next);
        if (c->fd >= 0 && conn_gone(c))
            conn_release(g, c);
    }
}

static void on_fresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api_conns_t *g = arg;
    if (!g->fresh)
        return;
    g->fresh = false;
    api_t *a = g->a;
    /* the new ones are at the end, not looked at yet */
    api_conn_t *c = conn_at(g->conns.tail);
    while (c && c->link.prev && conn_at(c->link.prev)->fd < 0)
        c = conn_at(c->link.prev);
    for (api_conn_t *next; c; c = next) {
        next = conn_at(c->link.next);
        if (c->fd >= 0 || c->ending)
            continue;
        if (conn_gone(c) || (c->fd = bufferevent_getfd(c->bev)) < 0) {
            conn_release(g, c);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
            const void *bin = ss.ss_family == AF_INET6
                                  ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                  : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
            if (!inet_ntop(ss.ss_family, bin, c->peer, sizeof c->peer))
                c->peer[0] = '\0';
        }
        size_t same = 0;
        if (c->peer[0])
            peer_count(g, c->peer, +1, &same);
        if ((a->o.max_per_client && same > a->o.max_per_client) || g->n > a->conns_max) {
            /* over a limit: first forget the connections that are closed already (the
             * tick does it otherwise); the new ones are never collected here */
            collect(g);
            same = (size_t)(uintptr_t)strmap_get(g->per_peer, c->peer);
        }
        if (a->o.max_per_client && same > a->o.max_per_client) {
            char why[96];
            snprintf(why, sizeof why, "more than %u connections at once from one address",
                     a->o.max_per_client);
            conn_end(g, c, 503, "too_many_connections", why);
            continue;
        }
        if (g->n > a->conns_max)
            make_room(g, c);
    }
}

api_conns_t *api_conns_new(api_t *a)
{
    api_conns_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->a = a;
    g->by_bev = strmap_new();
    g->per_peer = strmap_new();
    g->fresh_ev = event_new(a->base, -1, 0, on_fresh, g);
    g->settle_ev = event_new(a->base, -1, 0, on_settle, g);
    if (!g->by_bev || !g->per_peer || !g->fresh_ev || !g->settle_ev) {
        api_conns_free(g);
        return NULL;
    }
    evhttp_set_bevcb(a->http, on_new_bev, g);
    return g;
}

void api_conns_free(api_conns_t *g)
{
    if (!g)
        return;
    while (g->conns.head)
        conn_release(g, conn_at(g->conns.head));
    if (g->fresh_ev)
        event_free(g->fresh_ev);
    if (g->settle_ev)
        event_free(g->settle_ev);
    strmap_free(g->by_bev, NULL);
    strmap_free(g->per_peer, NULL);
    free(g);
}

/* An answer went out completely; evhttp reads the next request now. When the client
 * pipelined more requests, they wait in the input buffer, and evhttp would read the
 * socket before parsing them: a client that half-closed its side after sending them
 * (shutdown, nc -N) gives an end of stream there, and evhttp drops the connection with
 * the buffered requests unanswered. So the socket is not read while the buffer holds as
 * much as now (a read high-water mark): evhttp parses the buffered requests first, and
 * each one it takes leaves the buffer below the mark. The tick clears a mark that a
 * partial request would otherwise hold up. */
static void on_request_done(struct evhttp_request *req, void *arg)
{
    api_conn_t *c = conn_of(arg, req);
    if (!c)
        return;
    c->busy = false;
    c->since_ms = mp_now_ms(); /* the next request's deadline starts now */
    size_t pending = evbuffer_get_length(bufferevent_get_input(c->bev));
    bufferevent_setwatermark(c->bev, EV_READ, 0, pending);
    c->held = pending > 0;
}

void api_conns_request(api_conns_t *g, struct evhttp_request *req, bool trusted)
{
    api_conn_t *c = g ? conn_of(g, req) : NULL;
    if (!c)
        return;
    c->busy = true;
    c->trusted |= trusted;
    evhttp_request_set_on_complete_cb(req, on_request_done, g);
}

void api_conns_tick(api_conns_t *g)
{
    if (!g)
        return;
    api_t *a = g->a;
    uint64_t now = mp_now_ms();
    uint64_t limit = a->o.request_timeout_ms;
    if (g->n >= a->conns_max - a->conns_max / 8 && limit > PRESSURE_DEADLINE_MS)
        limit = PRESSURE_DEADLINE_MS;
    for (api_conn_t *c = conn_at(g->conns.head), *next; c; c = next) {
        next = conn_at(c->link.next);
        if (conn_gone(c)) {
            conn_release(g, c);
            continue;
        }
        if (c->held && !c->busy) {
            /* what is left in the buffer is not a whole request: read the rest */
            bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
            c->held = false;
        }
        if (!c->busy && !c->ending && c->fd >= 0 && limit && now - c->since_ms > limit) {
            char why[96];
            snprintf(why, sizeof why, "the request did not arrive within %.1f s",
                     (double)limit / 1000.0);
            conn_end(g, c, 408, "request_timeout", why);
        }
    }
}

size_t api_conns_open(const api_conns_t *g)
{
    return g ? g->n : 0;
}
