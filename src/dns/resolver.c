/*
 * resolver.c - c-ares on the libevent loop, mail-routing look-ups, coalescing, cache.
 *
 * Three layers, bottom up:
 *   channel  one ares_channel; ARES_OPT_SOCK_STATE_CB keeps one libevent event per
 *            c-ares socket, and one timer follows ares_timeout(); both call
 *            ares_process_fd().
 *   query    one (type, name) question. Served from the cache, or joined to an
 *            identical query already pending (coalescing), or queued; at most
 *            max_inflight are on the wire. A query never points at a look-up: it
 *            keeps (look-up id, slot) pairs and finds the look-up through the id
 *            table when it completes, so a cancelled look-up is simply not found.
 *   look-up  dns_mail_lookup(): MX + TXT + TXT at _dmarc in parallel, then A and
 *            AAAA for every MX host (or for the domain itself: implicit MX); a
 *            "CNAME only" answer is re-asked at the CNAME's target.
 *
 * Does not: decide what the facts mean (verdict/classify do), validate DNSSEC,
 * open any socket itself. Ownership: the resolver owns queries, look-ups and the
 * cache; a look-up is freed after its callback returns or on dns_cancel().
 * User callbacks run only from a look-up's own zero-timeout event, never from
 * inside c-ares or inside dns_mail_lookup().
 */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns/cache.h"
#include "dns/msg.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/str.h"

#define DNS_CNAME_DEPTH 8         /* re-queries of a CNAME target per slot */
#define DNS_POS_TTL_MAX_S 86400u  /* cap on positive TTLs: one day */
#define DNS_FAIL_TTL_S 5u         /* SERVFAIL / timeout / malformed: briefly */
#define DNS_CACHE_MAX 65536u      /* cached answers */
#define DNS_EDNS_SIZE 1232        /* DNS flag day 2020 UDP payload size */
#define DNS_CLASS_IN 1
#define TABLE_SIZE 1024u          /* buckets of the query and look-up tables */

const char *dns_status_name(dns_status_t st)
{
    switch (st) {
    case DNS_OK: return "OK";
    case DNS_NODATA: return "NODATA";
    case DNS_NXDOMAIN: return "NXDOMAIN";
    case DNS_SERVFAIL: return "SERVFAIL";
    case DNS_TIMEOUT: return "TIMEOUT";
    case DNS_ERROR: return "ERROR";
    }
    return "UNKNOWN";
}

/* ---- types ----------------------------------------------------------------------- */

/* Slots of a look-up: what a query's answer is for. Host i: A = 3+2i, AAAA = 4+2i. */
enum { SLOT_MX = 0, SLOT_SPF = 1, SLOT_DMARC = 2, SLOT_HOST0 = 3 };

typedef struct {
    uint64_t lookup_id;
    unsigned slot;
} waiter_t;

typedef enum { Q_QUEUED, Q_WIRE, Q_DONE } qstate_t;

typedef struct query {
    struct query *hnext;      /* pending-query table chain */
    struct query *qnext;      /* FIFO of queued queries */
    dns_resolver_t *r;
    unsigned type;
    qstate_t state;
    bool starting;            /* inside ares_query(): the starter completes it */
    bool answered;            /* the c-ares callback has run */
    uint64_t hash;
    dns_answer_t *ans;        /* set by the c-ares callback */
    uint64_t life_ms;         /* cache lifetime of ans, 0 = not cached */
    waiter_t *wait;
    size_t nwait, capwait;
    char name[DNS_NAME_MAX];
} query_t;

typedef struct {
    unsigned depth;           /* CNAME targets followed */
    dns_status_t st;
} slot_t;

typedef struct {
    slot_t a, aaaa;
    size_t n4, n6;
    unsigned char v4[DNS_IP_MAX][4];
    unsigned char v6[DNS_IP_MAX][16];
} host_t;

typedef struct lookup {
    struct lookup *hnext;     /* id table chain */
    uint64_t id;
    dns_resolver_t *r;
    dns_mail_cb cb;
    void *arg;
    unsigned pending;         /* slot requests not yet answered */
    bool finished;
    struct event *done_ev;
    slot_t mx, spf, dmarc;
    host_t host[DNS_MX_MAX];
    char domain[DNS_NAME_MAX];
    dns_mail_t res;
    uint64_t until_ms;        /* the earliest expiry of the answers applied (res.ttl_ms) */
    dns_records_t *rec;       /* a record look-up (dns_records_lookup): its result */
    dns_records_cb rcb;
} lookup_t;

/* dns_records_lookup(): one uncached question, a look-up of its own kind (rec set).
 * c-ares receives a ticket (resolver, id), never the look-up, so a cancelled one is not found. */
typedef struct {
    dns_resolver_t *r;
    uint64_t id;
} ticket_t;

typedef struct sockev {
    struct sockev *next;
    ares_socket_t fd;
    struct event *ev;
} sockev_t;

struct dns_resolver {
    struct event_base *base;
    ares_channel channel;
    bool lib_init;            /* ares_library_init() succeeded (it is reference-counted) */
    bool have_channel;
    bool closing;
    struct event *timer;
    sockev_t *socks;
    dns_cache_t *cache;
    dns_cache_policy_t policy;
    unsigned max_inflight, inflight;
    query_t *qhead, *qtail;
    query_t *qtab[TABLE_SIZE];
    lookup_t *ltab[TABLE_SIZE];
    uint64_t next_id;
    dns_stats_t stats;
};

static void lookup_apply(lookup_t *l, unsigned slot, const dns_answer_t *a, uint64_t until);
static void pump(dns_resolver_t *r);

/* ---- channel on the event loop ------------------------------------------------- */

static void timer_rearm(dns_resolver_t *r)
{
    if (r->closing || !r->have_channel)
        return;
    struct timeval tv;
    struct timeval *tvp = ares_timeout(r->channel, NULL, &tv);
    if (tvp)
        evtimer_add(r->timer, tvp);
    else
        evtimer_del(r->timer);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    dns_resolver_t *r = arg;
    ares_process_fd(r->channel, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
    timer_rearm(r);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dns_resolver_t *r = arg;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    timer_rearm(r);
}

/* c-ares tells us which sockets it wants watched; one persistent event per fd. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    dns_resolver_t *r = data;
    sockev_t **pp = &r->socks;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    sockev_t *s = *pp;
    if (s && s->ev) {
        event_free(s->ev);
        s->ev = NULL;
    }
    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            free(s);
        }
        return;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            mp_log(MP_LOG_ERROR, "dns: out of memory watching socket %d", (int)fd);
            return;   /* the query will time out through the timer */
        }
        s->fd = fd;
        s->next = r->socks;
        r->socks = s;
    }
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    s->ev = event_new(r->base, (evutil_socket_t)fd, what, sock_cb, r);
    if (!s->ev || event_add(s->ev, NULL) != 0)
        mp_log(MP_LOG_ERROR, "dns: cannot watch socket %d", (int)fd);
}

/* ---- tables ---------------------------------------------------------------------- */

static uint64_t qkey_hash(unsigned type, const char *name)
{
    return mp_fnv1a_str(MP_FNV_BASIS ^ type, name);
}

static query_t *query_find(dns_resolver_t *r, unsigned type, const char *name, uint64_t h)
{
    for (query_t *q = r->qtab[h % TABLE_SIZE]; q; q = q->hnext)
        if (q->hash == h && q->type == type && strcmp(q->name, name) == 0)
            return q;
    return NULL;
}

static void query_unlink(dns_resolver_t *r, query_t *q)
{
    query_t **pp = &r->qtab[q->hash % TABLE_SIZE];
    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = q->hnext;
}

static void query_free(query_t *q)
{
    dns_answer_free(q->ans);
    free(q->wait);
    free(q);
}

static lookup_t *lookup_find(dns_resolver_t *r, uint64_t id)
{
    for (lookup_t *l = r->ltab[id % TABLE_SIZE]; l; l = l->hnext)
        if (l->id == id)
            return l;
    return NULL;
}

static void lookup_unlink(dns_resolver_t *r, lookup_t *l)
{
    lookup_t **pp = &r->ltab[l->id % TABLE_SIZE];
    while (*pp && *pp != l)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = l->hnext;
}

static void lookup_free(lookup_t *l)
{
    if (l->done_ev)
        event_free(l->done_ev);
    free(l->rec);
    free(l);
}

/* ---- answers from raw responses --------------------------------------------------- */

static bool txt_has_prefix(const unsigned char *s, size_t n, const char *prefix,
                           const char *after)
{
    size_t pl = strlen(prefix);
    if (n < pl)
        return false;
    for (size_t i = 0; i < pl; i++)
        if (mp_to_lower(s[i]) != mp_to_lower((unsigned char)prefix[i]))
            return false;
    return n == pl || strchr(after, s[pl]) != NULL;
}

/* Parse the records of a NOERROR answer into a; returns how many there were, -1 bad. */
static int parse_records(dns_answer_t *a, const unsigned char *abuf, int alen)
{
    int count = 0, rc;
    switch (a->type) {
    case DNS_T_A: {
        struct ares_addrttl t[DNS_ANSWER_MAX];
        int n = DNS_ANSWER_MAX;
        rc = ares_parse_a_reply(abuf, alen, NULL, t, &n);
        if (rc != ARES_SUCCESS && rc != ARES_ENODATA)
            return -1;
        for (int i = 0; i < n; i++)
            if (dns_answer_add_addr(a, &t[i].ipaddr, 4))
                count++;
        return count;
    }
    case DNS_T_AAAA: {
        struct ares_addr6ttl t[DNS_ANSWER_MAX];
        int n = DNS_ANSWER_MAX;
        rc = ares_parse_aaaa_reply(abuf, alen, NULL, t, &n);
        if (rc != ARES_SUCCESS && rc != ARES_ENODATA)
            return -1;
        for (int i = 0; i < n; i++)
            if (dns_answer_add_addr(a, &t[i].ip6addr, 16))
                count++;
        return count;
    }
    case DNS_T_MX: {
        struct ares_mx_reply *mx = NULL;
        rc = ares_parse_mx_reply(abuf, alen, &mx);
        if (rc == ARES_ENODATA)
            return 0;
        if (rc != ARES_SUCCESS)
            return -1;
        for (struct ares_mx_reply *m = mx; m; m = m->next)
            if (dns_answer_add_mx(a, m->priority, m->host ? m->host : ""))
                count++;
        ares_free_data(mx);
        return count;
    }
    case DNS_T_PTR: {   /* counted only (dns_records_lookup reads the names) */
        struct hostent *he = NULL;
        static const unsigned char any[4];
        rc = ares_parse_ptr_reply(abuf, alen, any, (int)sizeof any, AF_INET, &he);
        if (rc == ARES_ENODATA)
            return 0;
        if (rc != ARES_SUCCESS)
            return -1;
        for (char **al = he->h_aliases; al && *al; al++)
            count++;
        ares_free_hostent(he);
        return count > 0 ? count : 1;   /* c-ares lists every PTR target as an alias */
    }
    case DNS_T_TXT: {
        struct ares_txt_ext *txt = NULL;
        rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
        if (rc == ARES_ENODATA)
            return 0;
        if (rc != ARES_SUCCESS)
            return -1;
        for (struct ares_txt_ext *t = txt; t; t = t->next) {
            if (!t->record_start)
                continue;   /* a continuation string of the same record */
            count++;
            /* RFC 7208 §4.5: "v=spf1" then space or end; RFC 7489 §6.4: v=DMARC1 first. */
            if (txt_has_prefix(t->txt, t->length, "v=spf1", " "))
                a->spf = true;
            if (txt_has_prefix(t->txt, t->length, "v=DMARC1", " \t;"))
                a->dmarc = true;
        }
        ares_free_data(txt);
        return count;
    }
    default:
        return -1;
    }
}

/* Turn what c-ares delivered into an answer and its cache lifetime. NULL: no memory. */
static dns_answer_t *answer_build(dns_resolver_t *r, unsigned type, int status,
                                  const unsigned char *abuf, int alen, uint64_t *life_ms)
{
    dns_answer_t *a = dns_answer_new(type, DNS_ERROR);
    if (!a)
        return NULL;
    bool have_ttl = false, cacheable = true;
    uint32_t ttl = 0;
    dns_msg_info_t info;

    switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
        if (!abuf || alen <= 0 || !dns_msg_scan(abuf, (size_t)alen, &info)) {
            a->status = DNS_ERROR;   /* malformed answer: the server's fault, cache briefly */
            break;
        }
        if (info.rcode == DNS_RC_NXDOMAIN) {
            a->status = DNS_NXDOMAIN;
            have_ttl = info.have_soa;
            ttl = info.soa_ttl;
            break;
        }
        if (info.rcode == DNS_RC_SERVFAIL || info.rcode == DNS_RC_REFUSED) {
            a->status = DNS_SERVFAIL;
            break;
        }
        if (info.rcode != DNS_RC_NOERROR)
            break;
        int n = parse_records(a, abuf, alen);
        if (n < 0) {
            a->status = DNS_ERROR;
        } else if (n > 0) {
            a->status = DNS_OK;
            have_ttl = info.have_ttl;
            ttl = info.min_ttl;
        } else if (info.cnames > 0 && info.nfinal == 0 && !info.have_soa && info.final[0]) {
            /* only a CNAME chain and no SOA saying "the target has none": the server did
             * not chase it, so the target's records must be asked for (RFC 1034 §3.6.2) */
            a->status = DNS_OK;
            if (!dns_answer_set_cname(a, info.final)) {
                a->status = DNS_ERROR;
                cacheable = false;
                break;
            }
            have_ttl = info.have_ttl;
            ttl = info.min_ttl;
        } else {
            a->status = DNS_NODATA;
            have_ttl = info.have_soa;
            ttl = info.soa_ttl;
        }
        break;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
        a->status = DNS_SERVFAIL;
        break;
    case ARES_ETIMEOUT:
        a->status = DNS_TIMEOUT;
        break;
    case ARES_ECONNREFUSED:
    case ARES_EFORMERR:
    case ARES_ENOTIMP:
    case ARES_EBADRESP:
        a->status = DNS_ERROR;   /* the server's doing: cached like a failure */
        break;
    default:
        a->status = DNS_ERROR;   /* local trouble (memory, bad name): not cached */
        cacheable = false;
        break;
    }
    *life_ms = cacheable ? dns_cache_lifetime_ms(&r->policy, a->status, have_ttl, ttl) : 0;
    return a;
}

/* ---- queries ------------------------------------------------------------------------ */

static void query_complete(query_t *q)
{
    dns_resolver_t *r = q->r;
    r->inflight--;
    q->state = Q_DONE;
    /* Waiters may be appended while we deliver (a look-up asking the same question):
     * the loop re-reads nwait. The answer is cached only afterwards, so no eviction
     * can free it under our feet. */
    static const dns_answer_t oom = { .status = DNS_ERROR };
    const dns_answer_t *ans = q->ans ? q->ans : &oom;
    uint64_t until = q->ans && q->life_ms ? mp_now_ms() + q->life_ms : 0;
    for (size_t i = 0; i < q->nwait; i++) {
        lookup_t *l = lookup_find(r, q->wait[i].lookup_id);
        if (l)
            lookup_apply(l, q->wait[i].slot, ans, until);
    }
    query_unlink(r, q);
    if (q->ans && q->life_ms > 0) {
        uint64_t now = mp_now_ms();
        dns_cache_put(r->cache, q->type, q->name, q->ans, now + q->life_ms, now);
    } else {
        dns_answer_free(q->ans);
    }
    q->ans = NULL;
    query_free(q);
    pump(r);
}

static void ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    query_t *q = arg;
    dns_resolver_t *r = q->r;
    if (r->closing) {   /* ares_destroy() from dns_resolver_free(): nobody to tell */
        query_unlink(r, q);
        query_free(q);
        return;
    }
    q->life_ms = 0;
    mp_log(MP_LOG_DEBUG, "dns: %s/%u: %s", q->name, q->type, ares_strerror(status));
    q->ans = answer_build(r, q->type, status, abuf, alen, &q->life_ms);
    q->answered = true;
    if (!q->starting)
        query_complete(q);
}

static void query_start(query_t *q)
{
    dns_resolver_t *r = q->r;
    q->state = Q_WIRE;
    r->inflight++;
    r->stats.queries_sent++;
    q->starting = true;
    ares_query(r->channel, q->name, DNS_CLASS_IN, (int)q->type, ares_cb, q);
    q->starting = false;
    if (q->answered)
        query_complete(q);   /* c-ares answered synchronously (no memory, bad name) */
    timer_rearm(r);
}

/* A queued query whose look-ups were all cancelled is not worth sending. */
static bool query_wanted(dns_resolver_t *r, const query_t *q)
{
    for (size_t i = 0; i < q->nwait; i++)
        if (lookup_find(r, q->wait[i].lookup_id))
            return true;
    return false;
}

/* Start queued queries while fewer than max_inflight are on the wire. Re-entrant:
 * a start may complete synchronously and queue (and pump) further queries. */
static void pump(dns_resolver_t *r)
{
    while (!r->closing && r->inflight < r->max_inflight && r->qhead) {
        query_t *q = r->qhead;
        r->qhead = q->qnext;
        if (!r->qhead)
            r->qtail = NULL;
        q->qnext = NULL;
        if (!query_wanted(r, q)) {
            query_unlink(r, q);
            query_free(q);
            continue;
        }
        query_start(q);
    }
}

static bool query_add_waiter(query_t *q, uint64_t id, unsigned slot)
{
    waiter_t *w = mp_array_grow(q->wait, &q->capwait, q->nwait, sizeof *w, 4);
    if (!w)
        return false;
    q->wait = w;
    q->wait[q->nwait].lookup_id = id;
    q->wait[q->nwait].slot = slot;
    q->nwait++;
    return true;
}

/* Ask (type, name) for slot of look-up l: from the cache, a pending query, or a new one. */
static void slot_request(lookup_t *l, unsigned slot, unsigned type, const char *name)
{
    dns_resolver_t *r = l->r;
    l->pending++;
    uint64_t until = 0;
    const dns_answer_t *cached = dns_cache_get_until(r->cache, type, name, mp_now_ms(), &until);
    if (cached) {
        r->stats.hits++;
        lookup_apply(l, slot, cached, until);
        return;
    }
    r->stats.misses++;
    uint64_t h = qkey_hash(type, name);
    query_t *q = query_find(r, type, name, h);
    if (q) {
        if (query_add_waiter(q, l->id, slot))
            return;
        goto fail;
    }
    q = calloc(1, sizeof *q);
    if (!q)
        goto fail;
    q->r = r;
    q->type = type;
    q->hash = h;
    q->state = Q_QUEUED;
    mp_strlcpy(q->name, name, sizeof q->name);
    if (!query_add_waiter(q, l->id, slot)) {
        free(q);
        goto fail;
    }
    q->hnext = r->qtab[h % TABLE_SIZE];
    r->qtab[h % TABLE_SIZE] = q;
    if (r->qtail)
        r->qtail->qnext = q;
    else
        r->qhead = q;
    r->qtail = q;
    l->res.queries++;
    pump(r);
    return;
fail: {
        dns_answer_t err = { .type = type, .status = DNS_ERROR };
        lookup_apply(l, slot, &err, 0);
    }
}

/* ---- look-ups ----------------------------------------------------------------------- */

/*
 * A-label host name (RFC 1123 §2.1): letters, digits, '-' (not at either end of a
 * label), '_' (for _dmarc and the like), dots between non-empty labels of <= 63.
 */
bool dns_name_valid(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (c == '-' && label == 0) {
            return false;
        } else if (mp_is_alnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

static int mx_cmp(const void *pa, const void *pb)
{
    const dns_rr_t *a = pa, *b = pb;
    if (a->pref != b->pref)
        return a->pref < b->pref ? -1 : 1;
    return strcmp(a->host, b->host);
}

static void mx_apply(lookup_t *l, const dns_answer_t *a)
{
    dns_mail_t *res = &l->res;
    if (a->status == DNS_NODATA) {
        /* RFC 5321 §5.1: no MX, the domain itself is the implicit MX */
        res->implicit_mx = true;
        res->nmx = 1;
        mp_strlcpy(res->mx[0].host, l->domain, sizeof res->mx[0].host);
        res->mx[0].pref = 0;
        slot_request(l, SLOT_HOST0, DNS_T_A, l->domain);
        slot_request(l, SLOT_HOST0 + 1, DNS_T_AAAA, l->domain);
        return;
    }
    if (a->status != DNS_OK) {
        res->status = a->status;
        size_t pos = 0;
        mp_appendf(res->detail, sizeof res->detail, &pos, "MX query: %s",
                   dns_status_name(a->status));
        return;
    }
    /* copy and sort: the cached answer must not be touched once queries start */
    dns_rr_t sorted[DNS_ANSWER_MAX];
    size_t n = a->n < DNS_ANSWER_MAX ? a->n : DNS_ANSWER_MAX, nroot = 0;
    memcpy(sorted, a->rr, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, mx_cmp);
    for (size_t i = 0; i < n; i++)
        if (sorted[i].host[0] == '\0')
            nroot++;
    if (n > 0 && nroot == n) {
        res->null_mx = true;   /* RFC 7505 §3: "0 ." says the domain takes no mail */
        return;
    }
    for (size_t i = 0; i < n && res->nmx < DNS_MX_MAX; i++) {
        const char *h = sorted[i].host;
        if (h[0] == '\0')
            continue;   /* "." next to real MX hosts (RFC 7505 §3 violation): ignore it */
        bool dup = false;
        for (size_t j = 0; j < res->nmx; j++)
            if (strcmp(res->mx[j].host, h) == 0)
                dup = true;
        if (dup)
            continue;
        dns_mx_t *m = &res->mx[res->nmx++];
        mp_strlcpy(m->host, h, sizeof m->host);
        m->pref = sorted[i].pref;
    }
    for (size_t i = 0; i < res->nmx; i++) {
        unsigned slot = SLOT_HOST0 + 2 * (unsigned)i;
        char host[DNS_NAME_MAX];
        mp_strlcpy(host, res->mx[i].host, sizeof host);
        if (!dns_name_valid(host)) {
            l->host[i].a.st = DNS_ERROR;   /* not a host name: never asked */
            l->host[i].aaaa.st = DNS_ERROR;
            continue;
        }
        slot_request(l, slot, DNS_T_A, host);
        slot_request(l, slot + 1, DNS_T_AAAA, host);
    }
}

static void host_apply(lookup_t *l, unsigned slot, const dns_answer_t *a)
{
    size_t i = (slot - SLOT_HOST0) / 2;
    bool v6 = ((slot - SLOT_HOST0) % 2) != 0;
    host_t *h = &l->host[i];
    slot_t *s = v6 ? &h->aaaa : &h->a;
    s->st = a->status;
    if (a->status != DNS_OK)
        return;
    for (size_t k = 0; k < a->n; k++) {
        if (v6 && h->n6 < DNS_IP_MAX)
            memcpy(h->v6[h->n6++], a->rr[k].addr, 16);
        else if (!v6 && h->n4 < DNS_IP_MAX)
            memcpy(h->v4[h->n4++], a->rr[k].addr, 4);
    }
}

static slot_t *slot_of(lookup_t *l, unsigned slot, unsigned *type)
{
    switch (slot) {
    case SLOT_MX: *type = DNS_T_MX; return &l->mx;
    case SLOT_SPF: *type = DNS_T_TXT; return &l->spf;
    case SLOT_DMARC: *type = DNS_T_TXT; return &l->dmarc;
    default: break;
    }
    size_t i = (slot - SLOT_HOST0) / 2;
    if (i >= DNS_MX_MAX)
        mp_panic("slot %u out of range", slot);
    bool v6 = ((slot - SLOT_HOST0) % 2) != 0;
    *type = v6 ? DNS_T_AAAA : DNS_T_A;
    return v6 ? &l->host[i].aaaa : &l->host[i].a;
}

static void addr_fill(dns_ip_t *ip, int family, const unsigned char *bytes)
{
    memset(ip, 0, sizeof *ip);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ip->sa;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, bytes, 4);
        ip->salen = (socklen_t)sizeof *sin;
        inet_ntop(AF_INET, bytes, ip->text, sizeof ip->text);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ip->sa;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, bytes, 16);
        ip->salen = (socklen_t)sizeof *sin6;
        inet_ntop(AF_INET6, bytes, ip->text, sizeof ip->text);
    }
}

static bool status_is_failure(dns_status_t st)
{
    return st == DNS_SERVFAIL || st == DNS_TIMEOUT || st == DNS_ERROR;
}

/* No address: a failure to find out outranks NXDOMAIN, which outranks NODATA. */
static dns_status_t host_status(const host_t *h)
{
    if (h->n4 + h->n6 > 0)
        return DNS_OK;
    if (status_is_failure(h->a.st))
        return h->a.st;
    if (status_is_failure(h->aaaa.st))
        return h->aaaa.st;
    if (h->a.st == DNS_NXDOMAIN || h->aaaa.st == DNS_NXDOMAIN)
        return DNS_NXDOMAIN;
    return DNS_NODATA;
}

static void lookup_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lookup_t *l = arg;
    lookup_unlink(l->r, l);
    /* the callback may cancel, start look-ups or even free the resolver: l is ours */
    if (l->rec)
        l->rcb(l->rec, l->arg);
    else
        l->cb(&l->res, l->arg);
    lookup_free(l);
}

static void lookup_finish(lookup_t *l)
{
    dns_mail_t *res = &l->res;
    l->finished = true;
    size_t with_addr = 0, pos = strlen(res->detail);
    for (size_t i = 0; i < res->nmx; i++) {
        host_t *h = &l->host[i];
        dns_mx_t *m = &res->mx[i];
        /* IPv4 first, then IPv6; with both families keep at least half for IPv6 */
        size_t n4 = h->n4, n6 = h->n6;
        if (n4 + n6 > DNS_IP_MAX) {
            size_t keep6 = n6 < DNS_IP_MAX / 2 ? n6 : DNS_IP_MAX / 2;
            n4 = n4 < DNS_IP_MAX - keep6 ? n4 : DNS_IP_MAX - keep6;
            n6 = DNS_IP_MAX - n4 < n6 ? DNS_IP_MAX - n4 : n6;
        }
        m->nip = 0;
        for (size_t k = 0; k < n4; k++)
            addr_fill(&m->ip[m->nip++], AF_INET, h->v4[k]);
        for (size_t k = 0; k < n6; k++)
            addr_fill(&m->ip[m->nip++], AF_INET6, h->v6[k]);
        m->status = host_status(h);
        if (m->nip > 0)
            with_addr++;
        else if (res->status == DNS_OK && pos == 0)
            mp_appendf(res->detail, sizeof res->detail, &pos, "%s: A %s, AAAA %s", m->host,
                       dns_status_name(h->a.st), dns_status_name(h->aaaa.st));
    }
    if (res->status == DNS_OK && with_addr > 0) {
        res->detail[0] = '\0';   /* a host without address is not news when others have one */
        pos = 0;
    }
    if (res->status == DNS_OK && res->null_mx && pos == 0)
        mp_appendf(res->detail, sizeof res->detail, &pos, "null MX (RFC 7505)");
    uint64_t now = mp_now_ms();
    res->ttl_ms = l->until_ms > now && l->until_ms != UINT64_MAX ? l->until_ms - now : 0;
    static const struct timeval zero = { 0, 0 };
    if (evtimer_add(l->done_ev, &zero) != 0)
        mp_panic("look-up %llu: cannot schedule its callback", (unsigned long long)l->id);
}

/* until: when answer a expires (0: not kept), for the look-up's ttl_ms. */
static void lookup_apply(lookup_t *l, unsigned slot, const dns_answer_t *a, uint64_t until)
{
    if (until < l->until_ms)
        l->until_ms = until;
    unsigned type;
    slot_t *s = slot_of(l, slot, &type);
    dns_answer_t subst;
    if (a->status == DNS_OK && a->n == 0 && a->cname) {
        if (s->depth < DNS_CNAME_DEPTH) {
            char target[DNS_NAME_MAX];
            mp_strlcpy(target, a->cname, sizeof target);   /* a may be evicted meanwhile */
            s->depth++;
            slot_request(l, slot, type, target);
            goto done;
        }
        subst = (dns_answer_t){ .type = type, .status = DNS_ERROR };   /* chain too long */
        a = &subst;
    } else if (a->status == DNS_OK && a->n == 0 && type != DNS_T_TXT) {
        subst = (dns_answer_t){ .type = type, .status = DNS_NODATA };
        a = &subst;
    }
    switch (slot) {
    case SLOT_MX:
        l->mx.st = a->status;
        mx_apply(l, a);
        break;
    case SLOT_SPF:
        l->spf.st = a->status;
        l->res.spf = a->status == DNS_OK && a->spf;
        break;
    case SLOT_DMARC:
        l->dmarc.st = a->status;
        l->res.dmarc = a->status == DNS_OK && a->dmarc;
        break;
    default:
        host_apply(l, slot, a);
        break;
    }
done:
    if (l->pending == 0)
        mp_panic("look-up %llu: answer without request", (unsigned long long)l->id);
    if (--l->pending == 0 && !l->finished)
        lookup_finish(l);
}

/* ---- record look-ups ------------------------------------------------------------------ */

const char *dns_rr_type_name(dns_rr_type_t type)
{
    switch (type) {
    case DNS_RR_A: return "A";
    case DNS_RR_PTR: return "PTR";
    case DNS_RR_MX: return "MX";
    case DNS_RR_TXT: return "TXT";
    case DNS_RR_AAAA: return "AAAA";
    }
    return "?";
}

static dns_rr_data_t *rr_next(dns_records_t *res)
{
    if (res->n >= DNS_RR_MAX) {
        res->truncated = true;
        return NULL;
    }
    dns_rr_data_t *d = &res->rr[res->n++];
    memset(d, 0, sizeof *d);
    return d;
}

static void rr_name(dns_records_t *res, dns_rr_data_t *d, const char *name)
{
    if (mp_strlcpy(d->text, name, sizeof d->text) >= sizeof d->text)
        res->truncated = true;
    dns_name_norm(d->text);
}

/* The records of an answer that parse_records() found good (a: the mail look-up's
 * reading of it) into res as text. */
static void records_fill(dns_records_t *res, const dns_answer_t *a, const unsigned char *abuf,
                         int alen)
{
    if (res->type == DNS_RR_A || res->type == DNS_RR_AAAA || res->type == DNS_RR_MX) {
        for (size_t i = 0; i < a->n; i++) {
            dns_rr_data_t *d = rr_next(res);
            if (!d)
                return;
            if (res->type == DNS_RR_MX) {
                d->pref = a->rr[i].pref;
                rr_name(res, d, a->rr[i].host ? a->rr[i].host : "");
            } else {
                addr_fill(&d->ip, res->type == DNS_RR_A ? AF_INET : AF_INET6, a->rr[i].addr);
                mp_strlcpy(d->text, d->ip.text, sizeof d->text);
            }
        }
    } else if (res->type == DNS_RR_PTR) {
        struct hostent *he = NULL;
        static const unsigned char any[4];
        if (ares_parse_ptr_reply(abuf, alen, any, (int)sizeof any, AF_INET, &he) != ARES_SUCCESS)
            return;
        for (char **al = he->h_aliases; al && *al; al++) {
            dns_rr_data_t *d = rr_next(res);
            if (d)
                rr_name(res, d, *al);
        }
        if (res->n == 0 && he->h_name) {
            dns_rr_data_t *d = rr_next(res);
            if (d)
                rr_name(res, d, he->h_name);
        }
        ares_free_hostent(he);
    } else {   /* TXT */
        struct ares_txt_ext *txt = NULL;
        if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS)
            return;
        dns_rr_data_t *d = NULL;
        size_t pos = 0;
        for (struct ares_txt_ext *t = txt; t; t = t->next) {
            if (t->record_start) {
                d = rr_next(res);
                pos = 0;
            }
            if (!d)
                continue;
            /* RFC 7208 §3.3: the strings of one record are joined without spaces */
            for (size_t i = 0; i < t->length; i++) {
                if (pos + 1 >= sizeof d->text) {
                    res->truncated = true;
                    break;
                }
                unsigned char c = t->txt[i];
                d->text[pos++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
            }
            d->text[pos] = '\0';
        }
        ares_free_data(txt);
    }
}

static void records_finish(lookup_t *l)
{
    static const struct timeval zero = { 0, 0 };
    if (evtimer_add(l->done_ev, &zero) != 0)
        mp_panic("look-up %llu: cannot schedule its callback", (unsigned long long)l->id);
}

static void records_ares_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                            int alen)
{
    (void)timeouts;
    ticket_t *t = arg;
    dns_resolver_t *r = t->r;
    uint64_t id = t->id;
    free(t);
    if (r->closing)
        return;
    lookup_t *l = lookup_find(r, id);
    if (!l)
        return;   /* cancelled */
    dns_records_t *res = l->rec;
    mp_log(MP_LOG_DEBUG, "dns: %s/%s: %s", res->name, dns_rr_type_name(res->type),
           ares_strerror(status));
    uint64_t life_ms;   /* not cached: the status only */
    dns_answer_t *a = answer_build(r, res->type, status, abuf, alen, &life_ms);
    res->status = a ? a->status : DNS_ERROR;
    if (a && a->status == DNS_OK && a->cname)
        res->status = DNS_NODATA;   /* only a CNAME chain: the server did not chase it */
    if (res->status == DNS_OK)
        records_fill(res, a, abuf, alen);
    dns_answer_free(a);
    records_finish(l);
}

uint64_t dns_records_lookup(dns_resolver_t *r, dns_rr_type_t type, const char *name,
                            dns_records_cb cb, void *arg)
{
    if (!r || !name || !cb)
        mp_panic("NULL resolver, name or callback");
    lookup_t *l = calloc(1, sizeof *l);
    dns_records_t *res = calloc(1, sizeof *res);
    if (!l || !res) {
        free(l);
        free(res);
        return 0;
    }
    l->rec = res;
    l->done_ev = evtimer_new(r->base, lookup_done_cb, l);
    if (!l->done_ev) {
        lookup_free(l);
        return 0;
    }
    l->id = ++r->next_id;
    l->r = r;
    l->rcb = cb;
    l->arg = arg;
    res->type = type;
    res->status = DNS_ERROR;
    l->hnext = r->ltab[l->id % TABLE_SIZE];
    r->ltab[l->id % TABLE_SIZE] = l;
    bool fits = mp_strlcpy(res->name, name, sizeof res->name) < sizeof res->name;
    if (fits)
        dns_name_norm(res->name);
    bool known = type == DNS_RR_A || type == DNS_RR_AAAA || type == DNS_RR_TXT ||
                 type == DNS_RR_PTR || type == DNS_RR_MX;
    if (!fits || !known || !dns_name_valid(res->name)) {
        records_finish(l);   /* DNS_ERROR, no query */
        return l->id;
    }
    ticket_t *t = malloc(sizeof *t);
    if (!t) {
        records_finish(l);
        return l->id;
    }
    t->r = r;
    t->id = l->id;
    uint64_t id = l->id;
    r->stats.queries_sent++;
    /* may call records_ares_cb at once (bad name, no memory): the result is deferred */
    ares_query(r->channel, res->name, DNS_CLASS_IN, (int)type, records_ares_cb, t);
    timer_rearm(r);
    return id;
}

/* ---- public API ----------------------------------------------------------------------- */

/*
 * One server spec ("IP", "IP:PORT", "[IPv6]:PORT", "[IPv6]", bare IPv6) into c-ares'
 * ports-csv form ("IP:PORT" / "[IPv6]:PORT"), appended at out[*pos].
 */
static bool server_one(const char *s, size_t n, char *out, size_t outsz, size_t *pos)
{
    char host[INET6_ADDRSTRLEN + 1], port[8] = "53";
    unsigned char bin[16];
    const char *colon = memchr(s, ':', n);
    bool v6 = false;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || (size_t)(close - s) - 1 >= sizeof host)
            return false;
        mp_strlcpyn(host, s + 1, (size_t)(close - s) - 1, sizeof host);
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest > 0) {
            if (close[1] != ':' || rest - 1 >= sizeof port || rest < 2)
                return false;
            mp_strlcpyn(port, close + 2, rest - 1, sizeof port);
        }
        v6 = true;
    } else if (colon && memchr(colon + 1, ':', n - (size_t)(colon - s) - 1)) {
        if (n >= sizeof host)
            return false;
        mp_strlcpyn(host, s, n, sizeof host);   /* bare IPv6, default port */
        v6 = true;
    } else {
        size_t hl = colon ? (size_t)(colon - s) : n;
        if (hl >= sizeof host)
            return false;
        mp_strlcpyn(host, s, hl, sizeof host);
        if (colon) {
            size_t pl = n - hl - 1;
            if (pl == 0 || pl >= sizeof port)
                return false;
            mp_strlcpyn(port, colon + 1, pl, sizeof port);
        }
    }
    uint64_t portnum;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1 ||
        !mp_parse_uint(port, 1, 65535, &portnum))
        return false;
    return mp_appendf(out, outsz, pos, v6 ? "%s[%s]:%u" : "%s%s:%u", *pos ? "," : "", host,
                      (unsigned)portnum);
}

/* A comma-separated list of server specs into c-ares' csv form. */
static bool server_csv(const char *spec, char *out, size_t outsz)
{
    size_t pos = 0;
    out[0] = '\0';
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && mp_is_space((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n > 0 && mp_is_space((unsigned char)p[n - 1]))
            n--;
        if (!server_one(p, n, out, outsz, &pos))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

dns_resolver_t *dns_resolver_new(struct event_base *base, const dns_opts_t *opts,
                                 mp_status_t *st)
{
    mp_status_t dummy;
    if (!st)
        st = &dummy;
    dns_opts_t o = opts ? *opts : (dns_opts_t){ 0 };
    char csv[1024];
    if (!base || (o.server && !server_csv(o.server, csv, sizeof csv))) {
        *st = MP_ERR_ARG;
        return NULL;
    }
    dns_resolver_t *r = calloc(1, sizeof *r);
    if (!r) {
        *st = MP_ERR_NOMEM;
        return NULL;
    }
    r->base = base;
    r->max_inflight = o.max_inflight ? o.max_inflight : 64;
    r->policy.pos_max_s = DNS_POS_TTL_MAX_S;
    r->policy.neg_max_s = o.neg_ttl_max ? o.neg_ttl_max : 300;
    r->policy.fail_s = DNS_FAIL_TTL_S;
    r->cache = dns_cache_new(DNS_CACHE_MAX);
    r->timer = evtimer_new(base, timer_cb, r);
    if (!r->cache || !r->timer) {
        *st = MP_ERR_NOMEM;
        goto fail;
    }
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        *st = MP_ERR_DNS_INIT;
        goto fail;
    }
    r->lib_init = true;

    unsigned timeout_ms = o.timeout_ms ? o.timeout_ms : 3000;
    unsigned tries = o.tries ? o.tries : 3;
    struct ares_options ao;
    memset(&ao, 0, sizeof ao);
    /* absolute names only: no search list, no HOSTALIASES; EDNS0 for big TXT sets.
     * NOCHECKRESP: c-ares 1.18 would retry a SERVFAIL/REFUSED answer and then report
     * it as ECONNREFUSED; we want the rcode itself, at once (see docs/internals/dns.md). */
    ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS |
               ARES_FLAG_NOCHECKRESP;
    ao.timeout = (int)(timeout_ms < 600000 ? timeout_ms : 600000);
    ao.tries = (int)(tries < 16 ? tries : 16);
    ao.ednspsz = DNS_EDNS_SIZE;
    ao.sock_state_cb = sock_state_cb;
    ao.sock_state_cb_data = r;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ |
               ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&r->channel, &ao, mask);
    if (rc != ARES_SUCCESS) {
        mp_log(MP_LOG_ERROR, "dns: ares_init_options: %s", ares_strerror(rc));
        *st = rc == ARES_ENOMEM ? MP_ERR_NOMEM : MP_ERR_DNS_INIT;
        goto fail;
    }
    r->have_channel = true;
    if (o.local_addr) {
        unsigned char bin[16];
        if (inet_pton(AF_INET, o.local_addr, bin) == 1) {
            ares_set_local_ip4(r->channel, ((unsigned)bin[0] << 24) | ((unsigned)bin[1] << 16) |
                                               ((unsigned)bin[2] << 8) | bin[3]);
        } else if (inet_pton(AF_INET6, o.local_addr, bin) == 1) {
            ares_set_local_ip6(r->channel, bin);
        } else {
            *st = MP_ERR_ARG;
            goto fail;
        }
    }
    if (o.server) {
        rc = ares_set_servers_ports_csv(r->channel, csv);
        if (rc != ARES_SUCCESS) {
            mp_log(MP_LOG_ERROR, "dns: server %s: %s", o.server, ares_strerror(rc));
            *st = MP_ERR_ARG;
            goto fail;
        }
    }
    *st = MP_OK;
    return r;
fail:
    dns_resolver_free(r);
    return NULL;
}

void dns_resolver_free(dns_resolver_t *r)
{
    if (!r)
        return;
    r->closing = true;
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        while (r->ltab[i]) {
            lookup_t *l = r->ltab[i];
            r->ltab[i] = l->hnext;
            lookup_free(l);
        }
    }
    if (r->have_channel)
        ares_destroy(r->channel);   /* queries on the wire: ARES_EDESTRUCTION, freed in ares_cb */
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        while (r->qtab[i]) {
            query_t *q = r->qtab[i];
            r->qtab[i] = q->hnext;
            query_free(q);
        }
    }
    while (r->socks) {
        sockev_t *s = r->socks;
        r->socks = s->next;
        if (s->ev)
            event_free(s->ev);
        free(s);
    }
    if (r->timer)
        event_free(r->timer);
    dns_cache_free(r->cache);
    if (r->lib_init)
        ares_library_cleanup();
    free(r);
}

uint64_t dns_mail_lookup(dns_resolver_t *r, const char *domain_ascii, dns_mail_cb cb,
                         void *arg)
{
    if (!r || !domain_ascii || !cb)
        mp_panic("NULL resolver, domain or callback");
    lookup_t *l = calloc(1, sizeof *l);
    if (!l)
        return 0;
    l->done_ev = evtimer_new(r->base, lookup_done_cb, l);
    if (!l->done_ev) {
        free(l);
        return 0;
    }
    l->id = ++r->next_id;
    l->r = r;
    l->cb = cb;
    l->arg = arg;
    l->hnext = r->ltab[l->id % TABLE_SIZE];
    r->ltab[l->id % TABLE_SIZE] = l;
    l->res.status = DNS_OK;

    bool fits = mp_strlcpy(l->domain, domain_ascii, sizeof l->domain) < sizeof l->domain;
    if (fits)
        dns_name_norm(l->domain);
    if (!fits || !dns_name_valid(l->domain)) {
        l->res.status = DNS_ERROR;
        size_t pos = 0;
        mp_appendf(l->res.detail, sizeof l->res.detail, &pos, "invalid domain name");
        lookup_finish(l);
        return l->id;
    }
    /* a guard count so that answers from the cache cannot finish the look-up early */
    l->pending = 1;
    l->until_ms = UINT64_MAX;
    slot_request(l, SLOT_MX, DNS_T_MX, l->domain);
    slot_request(l, SLOT_SPF, DNS_T_TXT, l->domain);
    char dmarc[DNS_NAME_MAX];
    size_t pos = 0;
    if (mp_appendf(dmarc, sizeof dmarc, &pos, "_dmarc.%s", l->domain) && dns_name_valid(dmarc))
        slot_request(l, SLOT_DMARC, DNS_T_TXT, dmarc);
    if (--l->pending == 0 && !l->finished)
        lookup_finish(l);
    return l->id;
}

void dns_cancel(dns_resolver_t *r, uint64_t id)
{
    if (!r)
        return;
    lookup_t *l = lookup_find(r, id);
    if (!l)
        return;
    /* its queries go on and fill the cache; their waiters will find no look-up */
    lookup_unlink(r, l);
    lookup_free(l);
}

void dns_stats(const dns_resolver_t *r, dns_stats_t *out)
{
    *out = r->stats;
}
