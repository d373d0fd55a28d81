/*
 * engine.c - one check per address: the flow between the pure modules and the network.
 *
 *   new -> (syntax invalid | offline) -> finish
 *       -> DNS look-up -> targets (MX by preference, each address in turn)
 *       -> for each target: wait for a slot -> SMTP session -> read the RCPT reply
 *            accepted / absent / full / policy ...      -> finish
 *            refused connection, timeout, 421, 4xx before RCPT, bad protocol -> next target
 *            4xx at RCPT (greylisting), or only temporary failures on every target
 *                                                       -> retry after a backoff while the
 *                                                          greylist wait lasts
 *       -> finish: verdict, score, callback (from the event loop, exactly once)
 *
 * What a reply or a session's end MEANS (reason, why, smtp.result, next step) is decided
 * in sched/trouble.c, with the session's controls (postmaster@, the other recipients);
 * this file does what comes next: time, order, sessions and politeness.
 *
 * Politeness: a server address never has more than per_ip_limit of our sessions open,
 * and the engine never more than max_sessions, idle ones in the connection cache
 * included (a conn_t holds its slots from connect to close; a batch is one run on it).
 * Waiting checks queue in arrival order, one queue per server address.
 * A check cancels every operation it started (DNS look-up by id, SMTP session, timers)
 * before it is freed, and dns/smtp guarantee no callback after a cancel, so a late
 * answer never reaches a freed check.
 */
#include "sched/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "classify/provider.h"
#include "intel/intel.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"
#include "sched/conncache.h"
#include "sched/lease.h"
#include "sched/trouble.h"
#include "sched/window.h"
#include "util/str.h"
#include "util/strmap.h"

#define TARGETS_MAX (DNS_MX_MAX * 4)

/* Delays between attempts after a temporary refusal, seconds. Sized for greylisting:
 * postgrey's default delay is 300 s, so with the default wait (360 s) the attempts at
 * 0, 15, 60, 150 and 330 s succeed against it with one attempt to spare. */
static const unsigned retry_delays_s[] = {15, 45, 90, 180, 300};

typedef struct dest dest_t;

typedef struct {
    char host[256];
    dns_ip_t ip;
    dest_t *dest;           /* the server address's record (lives as long as the engine) */
} target_t;

typedef struct chk chk_t;

/* A server address in a dispatch pass's heap, under the arrival number of its first
 * waiting check when it was put there. */
typedef struct {
    uint64_t seq;
    dest_t *d;
} wait_entry_t;

/* What the controls of one session said (sched/trouble.h): postmaster@'s answer and how
 * many ordinary recipients were accepted. */
typedef struct sess_ctl {
    trouble_ctl_t pm;
    int pm_code;
    char pm_enh[16];
    unsigned accepted;
    bool other_accepted;     /* for one check: an ordinary recipient other than itself */
} sess_ctl_t;

/* Sessions open to one MX host name, whatever its addresses. */
typedef struct host {
    char name[256];
    unsigned active;
} host_t;

struct dest {
    char ip[64];
    window_t win;           /* sessions allowed now, and when the next may start */
    uint64_t blocked_pass;  /* dispatch pass in which it was found full */
    unsigned open;          /* sessions open now, idle ones included */
    /* its wait queue: the checks whose current target is this server address, in arrival
     * order (chk_t.wait_link); see "the wait queues" below */
    mp_list_t waits;
    unsigned nwait, nriders; /* checks in it, and how many of them are riders */
    mp_list_node_t wlink;   /* on engine.wdests while its queue is not empty */
    uint64_t heap_pass;     /* the dispatch pass whose heap holds it (0: none) */
};

/* One SMTP connection: it holds one slot of its server address, of its MX host name and
 * of the global cap from connect to close, whether it runs a batch, waits idle in the
 * connection cache or says QUIT. */
typedef struct conn {
    struct engine *e;
    smtp_sess_t *sess;      /* NULL once the session ended (it frees itself) */
    dest_t *dest;
    host_t *hostc;
    uint64_t id, born_ms;
    unsigned runs;          /* batches it carried */
    int egress;             /* its way out (index in the egress pool), or -1 */
    window_outcome_t outcome; /* for the window at close: a throttle in any run wins */
    lease_hold_t *hold;     /* its fleet lease (--redis), released at close */
    char key[CONNCACHE_KEY_MAX];
    char host[256];
    char domains[200];      /* the domains its earlier runs served (--trace) */
    strmap_t *txn_rcpts;    /* the mailboxes asked in its open transaction: never twice */
    mp_list_node_t link;          /* on e->conns */
} conn_t;

/* One check: one address on its way from syntax to verdict ("job" is a bulk job, src/job/). */
struct chk {
    uint64_t id;
    engine_t *e;
    vd_result_t *res;
    engine_done_cb cb;
    void *arg;
    uint64_t start_ms;
    uint64_t grey_end_ms;   /* last moment a retry may start */
    uint64_t dns_id;
    target_t *targets;      /* MX addresses in the order they are tried */
    unsigned ntargets, cur;
    unsigned round_start;   /* target a new round starts at (the greylisting server) */
    unsigned retry_no;      /* retries done after temporary refusals */
    bool round_temp;        /* this round saw a temporary refusal before RCPT */
    bool no_tls_for_cur;    /* the current target failed TLS: retry it in clear */
    int next_act;           /* what the pending timer does (ACT_*) */
    bool tls_failed_seen;
    struct batch *batch;    /* the session this check's RCPT rides in, if one runs */
    size_t batch_idx;       /* its place in that batch (batch_t.chks) */
    bool solo;              /* the server refused several RCPTs at once: go alone */
    bool resent;            /* a session died before its RCPT's answer: asked again once */
    unsigned throttled;     /* times a server's 421 sent this check back to it */
    struct event *timer;    /* retry delay and deferred finish */
    struct event *deadline; /* max_time */
    int fail_rank;          /* strength of the failure recorded so far */
    const provider_t *provider;
    char probe_rcpt[320];   /* the catch-all probe address for this domain */
    bool probe_alone;       /* the running/next session carries only the probe */
    bool need_probe_alone;  /* the server refused a second RCPT (452 4.5.3) */
    bool waiting_fact;      /* accepted; waiting for another check's probe */
    bool ctl_rider;         /* refused in words that say nothing known with no control in
                               its write: rides again with postmaster@ (a rider), its
                               reply held until the control answers */
    smtp_reply_t *held;     /* that reply */
    uint64_t accepted_conn; /* the connection on which its RCPT was accepted: its probe,
                               read on the same one, has that acceptance as a control */
    sess_ctl_t ctl;         /* the controls of the last session this check rode in */
    int told_code;          /* accepted, and the MX refused another address of the domain
                               as unknown: its code and enhanced code (no probe needed) */
    char told_enh[16];
    dest_t *wait_dest;      /* the server address whose queue it waits in, or NULL */
    mp_list_node_t wait_link; /* on wait_dest->waits */
    uint64_t wait_seq;      /* its arrival number in the wait queues (engine.wait_seq) */
    bool wait_rider;        /* counted in wait_dest->nriders */
    mp_list_node_t all_link; /* on e->all */
    chk_t *next_waiter;
    struct fetching *fetching; /* waiting for the domain's shared facts (--redis) */
    chk_t *next_fetch;
};

enum { ACT_TARGET, ACT_FINISH, ACT_ACCEPTED, ACT_MX_MEMO };

#define BATCH_MAX 100
#define BATCH_GROUPS_MAX 32
/* A write whose error budget allows at most this many RCPTs is the session's last: QUIT
 * goes with it, one round trip earlier. A smaller rest is not worth the round trips it
 * would take (bench (e), docs/benchmarks.md: 2 -> 1,064, 3 -> 1,164, 4 -> 1,126
 * addresses/s; past 3 the per-server interval between new sessions binds). */
#define BATCH_LAST_ROOM 3

/* One domain's part of a run: its checks' RCPTs, then its postmaster@ control; its
 * catch-all probe, when it goes up front, at the end of the write. */
typedef struct bgroup {
    bool has_pm;             /* a postmaster@ control RCPT rides along */
    size_t pm_idx;
    chk_t *prober;           /* the check whose probe rides along, or NULL */
    size_t probe_idx;
} bgroup_t;

/* One run of a session (one write with PIPELINING): the RCPTs of checks of one or several
 * domains on one server address, each domain with its control, and the catch-all probes
 * asked for by earlier runs (riders: probe_alone checks), on a new connection or an idle
 * one, sized by the session's error budget. */
typedef struct batch {
    engine_t *e;
    chk_t *chks[BATCH_MAX];  /* NULL once a check was dropped while the session ran */
    size_t ridx[BATCH_MAX];  /* the RCPT of chks[i]: its address, or a rider's probe */
    int grp[BATCH_MAX];      /* its domain group in g[], -1 for a rider */
    size_t n, live;
    bgroup_t g[BATCH_GROUPS_MAX];
    size_t ng;
    conn_t *conn;            /* the connection it runs on */
    char host[256];
    char ip[64];
    int egress;              /* index in the egress pool, or -1 */
} batch_t;

/* A domain whose catch-all probe is running in some check's session. */
typedef struct probing {
    char domain[256];
    chk_t *prober;
    chk_t *waiters;         /* accepted checks waiting for the answer */
} probing_t;

struct engine {
    struct event_base *base;
    engine_opts_t o;
    dns_resolver_t *dns;
    SSL_CTX *ssl;           /* made when a server first offers STARTTLS (engine_ssl) */
    bool ssl_failed;        /* ... and could not be: sessions go on in clear */
    uint64_t next_id;
    unsigned pending;
    unsigned active_sessions;
    strmap_t *dests;              /* server address -> dest_t */
    strmap_t *hosts;              /* MX host name -> host_t */
    uint64_t pass;                /* dispatch passes so far */
    mp_list_t all;                /* every live check (chk_t.all_link) */
    facts_t *facts;               /* domain facts (catch-all) */
    bool own_facts;
    strmap_t *probing;            /* domain -> probing_t: probes in flight */
    net_pool_t egress;            /* --source / --proxy, and which of them rest */
    engine_stats_t stats;
    /* checks waiting for a session: a queue per server address (dest_t.waits) */
    mp_list_t wdests;             /* server addresses with waiting checks (dest_t.wlink) */
    uint64_t wait_seq;            /* arrivals in the wait queues so far */
    unsigned nwait;               /* checks waiting */
    wait_entry_t *heap;           /* a dispatch pass's server addresses by first arrival */
    size_t heap_n, heap_cap;
    bool dispatching;             /* a dispatch pass runs (slots_dispatch) */
    struct event *dispatch_ev;    /* starts sessions for waiting checks, once per loop turn */
    struct event *wake_ev;        /* dispatch again when a server's wait is over */
    window_cfg_t wcfg;
    bool dispatch_pending;
    conncache_t *cc;              /* idle connections */
    bool give_way;                /* one of them is wanted by another process (fleet) */
    struct event *cc_ev;          /* closes idle connections past their time */
    mp_list_t conns;              /* every open connection (conn_t.link) */
    uint64_t next_conn_id;
    fleet_t *fleet;               /* --redis, or NULL */
    lease_pool_t *lease;          /* the fleet leases per (egress, server address) */
    char lease_next[64];          /* a lease taken for the session conn_open makes next */
    strmap_t *fetching;           /* domain -> fetching_t: shared facts asked of Redis */
    strmap_t *mxfetch;            /* domain -> fetching_t: MX answers asked of Redis */
    strmap_t *mxmemo;             /* domain -> mx_memo_t: MX answers the fleet shared */
    strmap_t *canone;             /* domain -> uint64_t: until when the catch-all fact,
                                     asked along with the MX answer, counts as absent */
};

/* A domain's MX answer as the fleet has it (lease_mx_encode's text), until it expires. */
typedef struct {
    uint64_t until_ms;
    size_t len;
    char txt[];
} mx_memo_t;

#define MX_MEMO_MAX 4096 /* domains kept; when full, the memo starts afresh */
#define CA_NONE_MS 60000 /* a catch-all fact absent with the MX answer is not asked again */

/* A domain's shared facts asked of Redis, and the checks waiting for the answer. */
typedef struct fetching {
    engine_t *e;
    char domain[256];
    chk_t *waiters;
} fetching_t;

static void chk_try_target(chk_t *j);
static void chk_finish(chk_t *j);
static void chk_later(chk_t *j, uint64_t delay_ms, int act);
static void chk_mx_memo(chk_t *j);
static void on_dns(const dns_mail_t *m, void *arg);
static void chk_accepted(chk_t *j);
static void probing_release(engine_t *e, chk_t *prober);
static void waiter_remove(engine_t *e, chk_t *j);

void engine_opts_default(engine_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->helo = "localhost";
    o->mail_from = "";
    smtp_timeouts_default(&o->to);
    o->max_time_ms = 600000;
    o->greylist_wait_ms = 360000;
    o->starttls = true;
    o->per_ip_limit = 2;
    o->per_host_limit = 4;
    o->max_sessions = 20;
    o->port = 25;
    o->catch_all_probe = true;
    o->postmaster_control = true;
    o->max_rcpt = 25;
    o->min_interval_ms = 100;
    o->penalty_ms = 1000;
    o->penalty_cap_ms = 60000;
    o->throttle_retries = 2;
    o->session_errors = SMTP_ERROR_BUDGET_DEFAULT;
    o->reuse_time_ms = CONNCACHE_REUSE_MS_DEFAULT;
    o->reuse_count = CONNCACHE_REUSE_MAX_DEFAULT;
    o->idle_time_ms = CONNCACHE_IDLE_MS_DEFAULT;
    o->catch_all_ttl_ms = 24ull * 3600 * 1000;
    o->not_catch_all_ttl_ms = 6ull * 3600 * 1000;
}

static bool ipv4_unroutable(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
           (a >> 16) == 0xa9fe ||          /* 169.254/16 link-local */
           (a >> 20) == 0xac1 ||           /* 172.16/12 */
           (a >> 16) == 0xc0a8 ||          /* 192.168/16 */
           (a >> 22) == (100u << 2 | 1) || /* 100.64/10 shared address space */
           (a >> 17) == (0xc612u >> 1) ||  /* 198.18/15 benchmarking (RFC 2544) */
           (a >> 28) >= 0xe;               /* 224/4 multicast, 240/4 reserved */
}

bool engine_addr_unroutable(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return ipv4_unroutable(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *b = s6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            return ipv4_unroutable((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                                   (uint32_t)b[14] << 8 | b[15]);
        /* the prefixes that embed an IPv4 address or reach one through a translator
         * (NAT64, 6to4, IPv4-compatible) are refused whole: a public host has an address
         * of its own, and the IPv4 one inside may be private */
        static const unsigned char zero12[12], nat64[12] = {0, 0x64, 0xff, 0x9b};
        static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
        return memcmp(b, zero12, 12) == 0 ||                /* ::/96 (::, ::1 included) */
               memcmp(b, nat64, 12) == 0 ||                 /* 64:ff9b::/96 NAT64 */
               memcmp(b, nat64_local, 6) == 0 ||            /* 64:ff9b:1::/48 local NAT64 */
               (b[0] == 0x20 && b[1] == 0x02) ||            /* 2002::/16 6to4 */
               (b[0] & 0xfe) == 0xfc ||                     /* fc00::/7 unique local */
               (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||   /* fe80::/10 link-local */
               (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) ||   /* fec0::/10 site-local */
               b[0] == 0xff;                                /* multicast */
    }
    return true;
}

/* ---- failures: keep the most telling one across targets ----------------------- */

/* An address literal's target is named by its address: "[192.0.2.1] [192.0.2.1]" and
 * "[IPv6:2001:db8::1] [2001:db8::1]" say it twice. Copy in to out saying it once. */
static void literal_once(const char *in, char *out, size_t size)
{
    size_t o = 0;
    while (*in && o + 1 < size) {
        const char *e = *in == '[' ? strchr(in, ']') : NULL;
        if (e && e[1] == ' ' && e[2] == '[') {
            const char *inner = in + 1;
            if (strncasecmp(inner, "IPv6:", 5) == 0)
                inner += 5;
            size_t il = (size_t)(e - inner);
            if (strncmp(e + 3, inner, il) == 0 && e[3 + il] == ']') {
                size_t n = (size_t)(e - in) + 1;
                if (o + n >= size)
                    break;
                memcpy(out + o, in, n);
                o += n;
                in = e + 4 + il;
                continue;
            }
        }
        out[o++] = *in++;
    }
    out[o] = '\0';
}

/* Record a failure unless a more telling one (trouble_rank) is already recorded. */
static void chk_fail(chk_t *j, vd_reason_t reason, const char *detail)
{
    int rank = trouble_rank(reason);
    if (rank < j->fail_rank)
        return;
    j->fail_rank = rank;
    char once[1024];
    literal_once(detail, once, sizeof once);
    vd_set(j->res, reason, "%s", once);
}

static uint64_t chk_elapsed(const chk_t *j)
{
    return mp_now_ms() - j->start_ms;
}

/* ---- slots: per server address and global ------------------------------------- */

static dest_t *dest_get(engine_t *e, const char *ip)
{
    dest_t *d = strmap_get(e->dests, ip);
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    mp_strlcpy(d->ip, ip, sizeof d->ip);
    window_init(&d->win, &e->wcfg);
    if (!strmap_put(e->dests, ip, d)) {
        free(d);
        return NULL;
    }
    return d;
}

static host_t *host_get(engine_t *e, const char *name)
{
    host_t *h = strmap_get(e->hosts, name);
    if (h)
        return h;
    h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    mp_strlcpy(h->name, name, sizeof h->name);
    if (!strmap_put(e->hosts, name, h)) {
        free(h);
        return NULL;
    }
    return h;
}

/* May a session to this target start now: under the global cap, the MX host's cap and
 * the server address's window? */
static bool slot_free(engine_t *e, const target_t *t)
{
    if (e->active_sessions >= e->o.max_sessions)
        return false;
    host_t *h = host_get(e, t->host);
    if (h && h->active >= e->o.per_host_limit)
        return false;
    dest_t *d = t->dest ? t->dest : dest_get(e, t->ip.text);
    return !d || window_can_start(&d->win, mp_now_ms());
}

/* ---- the wait queues: one per server address, merged in arrival order ----------- */

/* A check waiting for a session is in the queue of its current target's server address
 * (dest_t.waits), in arrival order, numbered by its arrival (wait_seq, engine-wide).
 * Only the first check of a queue can start a session (the others of that address wait
 * behind it or ride along with it, batch_fill), so a dispatch pass looks at one check
 * per server address with waiting checks, never at the checks waiting behind: it takes
 * the addresses in the order of their first check's arrival (a binary heap built per
 * pass, keyed by that number), which is the arrival order of the checks across servers
 * that one list of every waiting check gave, at a cost that follows the number of
 * server addresses waited for, not the number of checks. A key goes stale when the first
 * check leaves its queue (it started, rode along, was cancelled): the next one arrived
 * later, so the entry is put back under its true number when it comes out (keys only
 * grow). chk_try_target is the only way into a queue, wait_remove the only way out; a
 * debug build checks the queues against the checks after every pass (wait_audit). */

static bool chk_is_rider(const chk_t *j);

static chk_t *wait_first(const dest_t *d)
{
    return MP_LIST_ITEM(d->waits.head, chk_t, wait_link);
}

static void heap_swap(wait_entry_t *h, size_t a, size_t b)
{
    wait_entry_t t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static void heap_push(engine_t *e, dest_t *d, uint64_t seq)
{
    if (e->heap_n == e->heap_cap) {
        size_t cap = e->heap_cap ? 2 * e->heap_cap : 64;
        wait_entry_t *h = realloc(e->heap, cap * sizeof *h);
        if (!h)
            mp_panic("out of memory");
        e->heap = h;
        e->heap_cap = cap;
    }
    size_t i = e->heap_n++;
    e->heap[i].seq = seq;
    e->heap[i].d = d;
    while (i > 0 && e->heap[(i - 1) / 2].seq > e->heap[i].seq) {
        heap_swap(e->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static dest_t *heap_pop(engine_t *e, uint64_t *seq)
{
    wait_entry_t *h = e->heap;
    dest_t *d = h[0].d;
    *seq = h[0].seq;
    h[0] = h[--e->heap_n];
    for (size_t i = 0;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < e->heap_n && h[l].seq < h[m].seq)
            m = l;
        if (r < e->heap_n && h[r].seq < h[m].seq)
            m = r;
        if (m == i)
            break;
        heap_swap(h, i, m);
        i = m;
    }
    return d;
}

/* During a pass: put d in the pass's heap under its first check's number, unless its
 * queue is empty, it is there already or it was found full in this pass. */
static void wait_offer(engine_t *e, dest_t *d)
{
    if (!e->dispatching || !d->nwait || d->heap_pass == e->pass || d->blocked_pass == e->pass)
        return;
    d->heap_pass = e->pass;
    heap_push(e, d, wait_first(d)->wait_seq);
}

/* j waits at the end of its current target's queue. */
static void wait_add(engine_t *e, chk_t *j)
{
    dest_t *d = j->targets[j->cur].dest;
    if (j->wait_dest)
        mp_panic("%s waits already", j->res->email);
    j->wait_dest = d;
    j->wait_seq = ++e->wait_seq;
    j->wait_rider = chk_is_rider(j);
    mp_list_push_tail(&d->waits, &j->wait_link);
    d->nriders += j->wait_rider ? 1 : 0;
    if (d->nwait++ == 0)
        mp_list_push_tail(&e->wdests, &d->wlink);
    e->nwait++;
    wait_offer(e, d); /* arrived during a pass: its turn comes in it, after the others */
}

static void wait_remove(engine_t *e, chk_t *j)
{
    dest_t *d = j->wait_dest;
    if (!d)
        return;
    mp_list_unlink(&d->waits, &j->wait_link);
    d->nriders -= j->wait_rider ? 1 : 0;
    if (--d->nwait == 0)
        mp_list_unlink(&e->wdests, &d->wlink);
    e->nwait--;
    j->wait_dest = NULL;
}

/* A dispatch pass begins: every server address with waiting checks goes in its heap. */
static void wait_pass_begin(engine_t *e)
{
    e->dispatching = true;
    e->heap_n = 0;
    for (mp_list_node_t *n = e->wdests.head; n; n = n->next)
        wait_offer(e, MP_LIST_ITEM(n, dest_t, wlink));
}

/* The server address whose first waiting check arrived first, among those not found
 * full in this pass (out of the heap: wait_offer puts it back), or NULL. */
static dest_t *wait_next(engine_t *e)
{
    while (e->heap_n > 0) {
        uint64_t seq;
        dest_t *d = heap_pop(e, &seq);
        d->heap_pass = 0;
        if (d->nwait && wait_first(d)->wait_seq == seq && d->blocked_pass != e->pass)
            return d;
        wait_offer(e, d); /* its first check left the queue: back under the next one's */
    }
    return NULL;
}

#ifndef NDEBUG
static void wait_audit_dest(const char *key, void *value, void *arg)
{
    const dest_t *d = value;
    unsigned *with_waits = arg;
    (void)key;
    if (d->nwait)
        (*with_waits)++;
}

/* Debug builds: the wait queues agree with the checks - every waiting check is in the
 * queue of its current target's server address, once, in arrival order; the counts and
 * the list of server addresses with waiting checks are right. Aborts loudly if not. */
static void wait_audit(engine_t *e)
{
    unsigned waiting = 0, queued = 0, ndests = 0, with_waits = 0;
    for (mp_list_node_t *n = e->all.head; n; n = n->next) {
        const chk_t *j = MP_LIST_ITEM(n, chk_t, all_link);
        if (!j->wait_dest)
            continue;
        waiting++;
        if (j->cur >= j->ntargets || j->wait_dest != j->targets[j->cur].dest ||
            j->wait_rider != chk_is_rider(j))
            mp_panic("%s waits in the wrong queue", j->res->email);
    }
    for (mp_list_node_t *n = e->wdests.head; n; n = n->next) {
        const dest_t *d = MP_LIST_ITEM(n, dest_t, wlink);
        unsigned k = 0, riders = 0;
        uint64_t last = 0;
        for (mp_list_node_t *m = d->waits.head; m; m = m->next) {
            const chk_t *j = MP_LIST_ITEM(m, chk_t, wait_link);
            if (j->wait_dest != d || j->wait_seq <= last)
                mp_panic("the queue of %s is out of order", d->ip);
            last = j->wait_seq;
            k++;
            riders += j->wait_rider ? 1 : 0;
        }
        if (k == 0 || k != d->nwait || riders != d->nriders)
            mp_panic("the counts of %s's queue are wrong", d->ip);
        queued += k;
        ndests++;
    }
    strmap_each(e->dests, wait_audit_dest, &with_waits);
    if (waiting != queued || queued != e->nwait || ndests != with_waits)
        mp_panic("%u checks wait, %u are queued, %u counted; %u/%u server addresses",
                 waiting, queued, e->nwait, ndests, with_waits);
}
#endif

static void batch_start(chk_t *j, conn_t *reuse);
static void conn_quit(conn_t *c);
static void conncache_arm(engine_t *e);
static conn_t *conn_take(engine_t *e, const target_t *t, const char *domain, bool utf8);
static void conn_evict_for(engine_t *e, const target_t *t);
static void dispatch_soon(engine_t *e);

/* ---- egress: source addresses and proxies (net/egress.h) ------------------------ */

/* The egress for a session to t of the domain: the same one for every session of the
 * domain while it works (greylisting remembers the client address). A target of a
 * family no source has still receives one: the session then fails with a clear reason and
 * the check moves to its next target. Sets the HELO name that belongs to it. */
static int egress_index(engine_t *e, const char *domain, const target_t *t)
{
    if (!e->egress.n)
        return -1;
    uint64_t now = mp_now_ms();
    int i = net_pool_pick(&e->egress, domain, t->ip.sa.ss_family, now);
    if (i < 0)
        i = net_pool_pick(&e->egress, domain, AF_UNSPEC, now);
    return i;
}

static int egress_pick(engine_t *e, const char *domain, const target_t *t, smtp_opts_t *so)
{
    int i = egress_index(e, domain, t);
    if (i < 0)
        return -1;
    so->egress = e->egress.eg[i];
    if (so->egress->helo[0])
        so->helo = so->egress->helo;
    return i;
}

/* A session through egress i ended: rest a proxy that failed, forgive one that worked. */
static void egress_on_done(engine_t *e, int i, const smtp_result_t *sr)
{
    if (i < 0)
        return;
    if (sr->egress_failed) {
        uint64_t ms = net_pool_rest(&e->egress, i, mp_now_ms());
        mp_log(MP_LOG_WARN, "%s: resting it for %llu s", sr->detail,
               (unsigned long long)(ms / 1000));
    } else if (sr->end != SMTP_END_CONNECT) {
        net_pool_ok(&e->egress, i);
    }
}

/* ---- the fleet (--redis): a lease per new session, shared facts ---------------------- */

static const char *egress_name(const engine_t *e, int i)
{
    return i >= 0 ? e->egress.eg[i]->name : LEASE_EGRESS_SYSTEM;
}

/* The fleet's consent to a new session of j to t: a lease granted by Redis, kept in
 * lease_next for conn_open. False: asked (the answer dispatches again) or waiting until
 * a time folded into *earliest. */
static bool fleet_slot(engine_t *e, chk_t *j, const target_t *t, uint64_t now,
                       uint64_t *earliest)
{
    uint64_t at = 0;
    int i = egress_index(e, j->res->addr.domain_ascii, t);
    if (lease_pool_take(e->lease, egress_name(e, i), t->ip.text, e->lease_next,
                        sizeof e->lease_next, now, &at))
        return true;
    if (at > now && at < *earliest)
        *earliest = at;
    return false;
}

static void on_lease_wake(void *arg)
{
    dispatch_soon(arg);
}

static bool conn_wanted(void *sess, void *arg)
{
    const conn_t *c = sess;
    (void)arg;
    return lease_hold_wanted(c->hold);
}

/* Another process waits for a server address of which we keep sessions idle: QUIT them,
 * so that the slot (released when the QUIT is answered) goes to it, not 2 s later. */
static void conns_give_way(engine_t *e)
{
    conn_t *c;
    e->give_way = false;
    while ((c = conncache_pop_oldest(e->cc, conn_wanted, NULL)) != NULL)
        conn_quit(c);
    conncache_arm(e);
}

static void on_lease_want(void *arg)
{
    conns_give_way(arg);
}

static fleet_outcome_t fleet_outcome(window_outcome_t o)
{
    return o == WIN_OK ? FLEET_OK : o == WIN_THROTTLE ? FLEET_THROTTLE : FLEET_NEUTRAL;
}

/* Tell the fleet a catch-all fact learnt here. */
static void fact_share(engine_t *e, const char *domain, const facts_domain_t *f,
                       uint64_t ttl_ms)
{
    char txt[LEASE_FACT_MAX];
    size_t n = e->fleet ? lease_fact_encode(f, txt, sizeof txt) : 0;
    if (n)
        (void)fleet_fact_put(e->fleet, FLEET_FACT_CATCH_ALL, domain, txt, n, ttl_ms, NULL, NULL);
}

static void on_fact(const char *error, const char *value, size_t len, uint64_t ttl_ms,
                    void *arg)
{
    fetching_t *fe = arg;
    engine_t *e = fe->e;
    facts_domain_t f;
    if (!error && value && ttl_ms && lease_fact_decode(value, len, &f))
        facts_put(e->facts, fe->domain, &f, ttl_ms); /* the local cache: first level */
    strmap_del(e->fetching, fe->domain);
    for (chk_t *w = fe->waiters, *next; w; w = next) {
        next = w->next_fetch;
        w->next_fetch = NULL;
        w->fetching = NULL;
        chk_try_target(w);
    }
    free(fe);
}

/* The catch-all fact read along with the MX answer (before on_mx_fact, which frees fe):
 * into the local cache, or, absent, remembered so that chk_fetch_facts does not ask. */
static void on_ca_along(const char *error, const char *value, size_t len, uint64_t ttl_ms,
                        void *arg)
{
    fetching_t *fe = arg;
    engine_t *e = fe->e;
    facts_domain_t f;
    if (error)
        return;
    if (value && ttl_ms && lease_fact_decode(value, len, &f)) {
        facts_put(e->facts, fe->domain, &f, ttl_ms);
        return;
    }
    if (strmap_count(e->canone) >= MX_MEMO_MAX) {
        strmap_free(e->canone, free);
        if (!(e->canone = strmap_new()))
            mp_panic("out of memory");
    }
    uint64_t *until = malloc(sizeof *until);
    if (!until)
        return;
    *until = mp_now_ms() + CA_NONE_MS;
    free(strmap_get(e->canone, fe->domain));
    if (!strmap_put(e->canone, fe->domain, until)) {
        strmap_del(e->canone, fe->domain);
        free(until);
    }
}

/* j waits for a fact of its domain from Redis: it joins the question in flight (map:
 * domain -> fetching_t) or asks one (an MX answer with the catch-all fact when that is
 * wanted and not known here: one round trip). False: no question could be asked (the
 * caller goes on without the fact). */
static bool fetch_join(chk_t *j, strmap_t *map, fleet_fact_t kind, fleet_fact_cb cb)
{
    engine_t *e = j->e;
    const char *d = j->res->addr.domain_ascii;
    fetching_t *fe = strmap_get(map, d);
    if (!fe) {
        fe = calloc(1, sizeof *fe);
        if (!fe || !strmap_put(map, d, fe)) {
            free(fe);
            return false;
        }
        fe->e = e;
        mp_strlcpy(fe->domain, d, sizeof fe->domain);
        fleet_fact_ask_t asks[2] = {{FLEET_FACT_CATCH_ALL, on_ca_along, fe}, {kind, cb, fe}};
        facts_domain_t f;
        size_t along = kind == FLEET_FACT_MX && e->o.catch_all_probe &&
                       !facts_get(e->facts, d, &f) ? 0 : 1;
        if (fleet_facts_get(e->fleet, d, asks + along, 2 - along) != MP_OK) {
            strmap_del(map, d);
            free(fe);
            return false;
        }
        e->stats.fleet_calls++;
    }
    chk_t **wp = &fe->waiters; /* in arrival order */
    while (*wp)
        wp = &(*wp)->next_fetch;
    *wp = j;
    j->fetching = fe;
    return true;
}

/* Before the first session of j: the domain's catch-all fact from Redis when it is not
 * known here, so that a domain is probed once per fleet; one question per domain, the
 * checks of the domain that arrive meanwhile wait for the same answer. */
static void chk_fetch_facts(chk_t *j)
{
    engine_t *e = j->e;
    const char *d = j->res->addr.domain_ascii;
    facts_domain_t f;
    const uint64_t *none = e->fleet ? strmap_get(e->canone, d) : NULL;
    if (!e->fleet || !e->o.catch_all_probe || facts_get(e->facts, d, &f) ||
        (none && *none > mp_now_ms())) {
        chk_try_target(j);
        return;
    }
    if (!fetch_join(j, e->fetching, FLEET_FACT_CATCH_ALL, on_fact))
        chk_try_target(j);
}

/* ---- shared MX answers: Redis before DNS, a memo of what it said ---------------- */

static void mx_memo_put(engine_t *e, const char *d, const char *txt, size_t len,
                        uint64_t ttl_ms)
{
    if (strmap_count(e->mxmemo) >= MX_MEMO_MAX) {
        strmap_free(e->mxmemo, free);
        if (!(e->mxmemo = strmap_new()))
            mp_panic("out of memory");
    }
    mx_memo_t *mm = malloc(sizeof *mm + len + 1);
    if (!mm)
        return;
    mm->until_ms = mp_now_ms() + ttl_ms;
    mm->len = len;
    memcpy(mm->txt, txt, len);
    mm->txt[len] = '\0';
    free(strmap_get(e->mxmemo, d));
    if (!strmap_put(e->mxmemo, d, mm)) {
        strmap_del(e->mxmemo, d);
        free(mm);
    }
}

/* The domain's MX answer from the memo (heap, the caller frees), or NULL. */
static dns_mail_t *mx_memo_get(engine_t *e, const char *d)
{
    mx_memo_t *mm = strmap_get(e->mxmemo, d);
    uint64_t now = mp_now_ms();
    if (mm && mm->until_ms <= now) {
        strmap_del(e->mxmemo, d);
        free(mm);
        mm = NULL;
    }
    dns_mail_t *m = mm ? malloc(sizeof *m) : NULL;
    if (m && !lease_mx_decode(mm->txt, mm->len, m)) {
        free(m);
        m = NULL;
    }
    if (m)
        m->ttl_ms = mm->until_ms - now;
    return m;
}

/* A DNS answer of j's domain that this process asked the network for: to the fleet (and
 * the memo) for its TTL, so that the other processes need not ask. */
static void mx_share(engine_t *e, const char *d, const dns_mail_t *m)
{
    char txt[LEASE_MX_MAX];
    size_t n = e->fleet && m->queries && m->ttl_ms >= 1000
                   ? lease_mx_encode(m, txt, sizeof txt) : 0;
    if (!n)
        return;
    mx_memo_put(e, d, txt, n, m->ttl_ms);
    (void)fleet_fact_put(e->fleet, FLEET_FACT_MX, d, txt, n, m->ttl_ms, NULL, NULL);
}

static void chk_dns(chk_t *j)
{
    j->dns_id = dns_mail_lookup(j->e->dns, j->res->addr.domain_ascii, on_dns, j);
}

static void chk_mx_memo(chk_t *j)
{
    dns_mail_t *m = mx_memo_get(j->e, j->res->addr.domain_ascii);
    if (m)
        on_dns(m, j);
    else
        chk_dns(j);
    free(m);
}

static void on_mx_fact(const char *error, const char *value, size_t len, uint64_t ttl_ms,
                       void *arg)
{
    fetching_t *fe = arg;
    engine_t *e = fe->e;
    strmap_del(e->mxfetch, fe->domain);
    if (!error && value && ttl_ms)
        mx_memo_put(e, fe->domain, value, len, ttl_ms);
    dns_mail_t *m = mx_memo_get(e, fe->domain);
    chk_t *w = fe->waiters;
    free(fe);
    for (chk_t *next; w; w = next) {
        next = w->next_fetch;
        w->next_fetch = NULL;
        w->fetching = NULL;
        if (m)
            on_dns(m, w); /* may finish w: its successor was read first */
        else
            chk_dns(w);
    }
    free(m);
}

/* Where j's domain takes mail: with a fleet, what another process already learnt (the
 * memo, else one GET per domain: checks arriving meanwhile wait for the same answer),
 * else DNS. */
static void chk_resolve(chk_t *j)
{
    engine_t *e = j->e;
    const char *d = j->res->addr.domain_ascii;
    if (!e->fleet) {
        chk_dns(j);
        return;
    }
    if (strmap_get(e->mxmemo, d)) {
        chk_later(j, 0, ACT_MX_MEMO); /* on_dns from the loop, never inside engine_check */
        return;
    }
    if (!fetch_join(j, e->mxfetch, FLEET_FACT_MX, on_mx_fact))
        chk_dns(j);
}

static void fetch_remove(chk_t *j)
{
    if (!j->fetching)
        return;
    for (chk_t **wp = &j->fetching->waiters; *wp; wp = &(*wp)->next_fetch)
        if (*wp == j) {
            *wp = j->next_fetch;
            break;
        }
    j->fetching = NULL;
    j->next_fetch = NULL;
}

/* Start sessions for waiting checks whose server has an idle connection or a free slot, in
 * arrival order; each session takes along the waiting checks of the same domain on the
 * same server. A server address found full is left alone for the rest of the pass. */
static void slots_dispatch(engine_t *e)
{
    uint64_t pass = ++e->pass, now = mp_now_ms(), earliest = UINT64_MAX;
    dest_t *d;
    if (e->pending == 0)
        engine_close_idle(e); /* nothing left to check: no reason to keep them */
    wait_pass_begin(e);
    while ((e->active_sessions < e->o.max_sessions || conncache_count(e->cc, NULL)) &&
           (d = wait_next(e)) != NULL) {
        chk_t *j = wait_first(d); /* the first to arrive of those that may start now */
        const target_t *t = &j->targets[j->cur];
        conn_t *idle = conn_take(e, t, j->res->addr.domain_ascii, j->res->addr.local_utf8);
        if (!idle && !slot_free(e, t)) {
            conn_evict_for(e, t);
            d->blocked_pass = pass; /* skip its other waiting checks in this pass */
            if (d->win.active < window_allowed(&d->win) && d->win.next_start_ms > now &&
                d->win.next_start_ms < earliest)
                earliest = d->win.next_start_ms; /* waits for time, not for a slot */
            continue;
        }
        if (!idle && e->lease && !fleet_slot(e, j, t, now, &earliest)) {
            d->blocked_pass = pass; /* asked, or waiting: the answer dispatches again */
            continue;
        }
        wait_remove(e, j);
        batch_start(j, idle);
        wait_offer(e, d); /* the next check of this server address, in its turn */
    }
    e->dispatching = false;
#ifndef NDEBUG
    wait_audit(e);
#endif
    if (e->give_way) /* parked sessions another process waits for, that nothing took */
        conns_give_way(e);
    if (earliest != UINT64_MAX) {
        /* dispatch again when the first server's minimum interval or penalty is over */
        uint64_t ms = earliest - now;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(e->wake_ev, &tv);
    }
}

static void on_dispatch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_t *e = arg;
    e->dispatch_pending = false;
    slots_dispatch(e);
}

/* Dispatch at the end of this loop turn, so that checks whose DNS answers arrive together
 * (one coalesced query) can share a session. */
static void dispatch_soon(engine_t *e)
{
    if (!e->dispatch_pending) {
        e->dispatch_pending = true;
        event_active(e->dispatch_ev, EV_TIMEOUT, 0);
    }
}

/* ---- connections: slots, the connection cache ---------------------------------- */

/* A new connection to t takes a slot of its server address, MX host name and the
 * global cap (the caller checked slot_free). */
/* The connection cache's key: the way out (egress name, "" for the system's choice),
 * the server address and the port. */
static void conn_key(engine_t *e, int egress, const target_t *t, char *key, size_t size)
{
    conncache_key(key, size, egress >= 0 ? e->egress.eg[egress]->name : "", t->ip.text,
                  e->o.port);
}

static conn_t *conn_open(engine_t *e, const target_t *t, dest_t *d, int egress)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        mp_panic("out of memory");
    c->e = e;
    c->id = ++e->next_conn_id;
    c->born_ms = mp_now_ms();
    c->dest = d;
    c->outcome = WIN_NEUTRAL;
    c->egress = egress;
    conn_key(e, egress, t, c->key, sizeof c->key);
    mp_strlcpy(c->host, t->host, sizeof c->host);
    if (e->lease_next[0]) {
        c->hold = lease_hold_new(e->lease, egress_name(e, egress), t->ip.text, e->lease_next);
        e->lease_next[0] = '\0';
    }
    c->txn_rcpts = strmap_new();
    if (!c->txn_rcpts)
        mp_panic("out of memory");
    window_on_start(&d->win, &e->wcfg, c->born_ms);
    if (++d->open > e->stats.max_per_ip)
        e->stats.max_per_ip = d->open;
    e->active_sessions++;
    c->hostc = host_get(e, t->host);
    if (c->hostc)
        c->hostc->active++;
    e->stats.sessions++;
    mp_list_push_head(&e->conns, &c->link);
    return c;
}

/* The connection is closed: give its slots back and free it. */
static void conn_release(conn_t *c)
{
    engine_t *e = c->e;
    window_on_end(&c->dest->win, &e->wcfg, mp_now_ms(), c->outcome);
    lease_hold_end(c->hold, fleet_outcome(c->outcome)); /* its socket is closed */
    c->dest->open--;
    e->active_sessions--;
    if (c->hostc)
        c->hostc->active--;
    mp_list_unlink(&e->conns, &c->link);
    strmap_free(c->txn_rcpts, NULL);
    free(c);
}

static void on_conn_quit(const smtp_result_t *sr, void *arg)
{
    conn_t *c = arg;
    engine_t *e = c->e;
    (void)sr;
    c->sess = NULL; /* it frees itself after this callback */
    conn_release(c);
    dispatch_soon(e);
}

/* End an idle connection politely; its slot is free once the QUIT is answered. */
static void conn_quit(conn_t *c)
{
    smtp_sess_quit(c->sess, on_conn_quit, c);
}

static void conncache_arm(engine_t *e)
{
    uint64_t at = conncache_next_expiry(e->cc), now = mp_now_ms();
    if (at == UINT64_MAX) {
        evtimer_del(e->cc_ev);
        return;
    }
    uint64_t ms = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(e->cc_ev, &tv);
}

static void on_conncache_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_t *e = arg;
    conn_t *c;
    while ((c = conncache_expire(e->cc, mp_now_ms())) != NULL)
        conn_quit(c);
    conncache_arm(e);
}

/* Room an idle connection has for a batch: RCPTs in its open transaction (a batch of
 * ordinary checks continues it), or in a new one when the transaction cannot take
 * this batch (SMTPUTF8). One is worth a write: the QUIT goes with it. */
static size_t conn_room(const conn_t *c, bool smtputf8)
{
    size_t more = smtp_sess_room_txn(c->sess, smtputf8);
    return more ? more : smtp_sess_room(c->sess);
}

/* A run is over and the session waits idle: keep it for the next batch to the same
 * server address, or QUIT it when it may not be reused (error budget, a slow reply,
 * reuse age or count, QUIT already sent) or when no check is pending. */
static void conn_park(conn_t *c)
{
    engine_t *e = c->e;
    if (e->pending == 0 || conn_room(c, false) < 1 || lease_hold_lost(c->hold) ||
        !conncache_put(e->cc, c->key, c, c->born_ms, c->runs, mp_now_ms())) {
        conn_quit(c);
        return;
    }
    /* another process waits for its server address: only a check of ours waiting for it
     * now (the dispatch that follows) may take it, else it ends (conns_give_way) */
    if (lease_hold_wanted(c->hold))
        e->give_way = true;
    conncache_arm(e);
}

/* An idle connection to t's server address that may carry a batch, or NULL. Dead ones
 * met on the way are closed. */
static conn_t *conn_take(engine_t *e, const target_t *t, const char *domain, bool utf8)
{
    char key[CONNCACHE_KEY_MAX];
    conn_key(e, egress_index(e, domain, t), t, key, sizeof key);
    uint64_t now = mp_now_ms();
    dest_t *d = t->dest;
    if (d && d->win.throttles > 0 && now < d->win.next_start_ms)
        return NULL; /* the server asked us to slow down: its penalty holds for reuse too */
    conn_t *c;
    while ((c = conncache_take(e->cc, key, now)) != NULL) {
        /* a window halved by a throttle below the sessions open: close, do not reuse */
        if (conn_room(c, utf8) >= 1 && !lease_hold_lost(c->hold) &&
            (!d || d->open <= window_allowed(&d->win)))
            return c;
        conn_quit(c);
    }
    return NULL;
}

static bool conn_of_host(void *sess, void *arg)
{
    const conn_t *c = sess;
    return strcmp(c->host, arg) == 0;
}

/* t waits for a slot that idle connections hold (the global cap, or its MX host's):
 * QUIT the one idle the longest; the slot frees when its QUIT is answered. */
static void conn_evict_for(engine_t *e, const target_t *t)
{
    conn_t *c = NULL;
    if (e->active_sessions >= e->o.max_sessions) {
        c = conncache_pop_oldest(e->cc, NULL, NULL);
    } else {
        host_t *h = host_get(e, t->host);
        if (h && h->active >= e->o.per_host_limit)
            c = conncache_pop_oldest(e->cc, conn_of_host, (void *)t->host);
    }
    if (c)
        conn_quit(c);
}

void engine_close_idle(engine_t *e)
{
    conn_t *c;
    while ((c = conncache_pop_oldest(e->cc, NULL, NULL)) != NULL)
        conn_quit(c);
    evtimer_del(e->cc_ev);
    if (e->pending == 0)
        lease_pool_drop_ready(e->lease);
    fleet_facts_flush(e->fleet); /* the facts learnt last go now, not 100 ms later */
}

unsigned engine_sessions(const engine_t *e)
{
    return e->active_sessions + lease_pool_inflight(e->lease) + fleet_facts_pending(e->fleet);
}

/* A check leaves the session it rides in (the check is being freed); the last one out
 * cancels the session. */
static void batch_leave(chk_t *j)
{
    batch_t *b = j->batch;
    if (!b)
        return;
    b->chks[j->batch_idx] = NULL;
    for (size_t g = 0; g < b->ng; g++)
        if (b->g[g].prober == j)
            b->g[g].prober = NULL;
    j->batch = NULL;
    if (--b->live == 0) {
        conn_t *c = b->conn;
        if (c) {
            if (c->sess)
                smtp_sess_cancel(c->sess);
            c->sess = NULL;
            conn_release(c);
        }
        free(b);
    }
}

/* ---- finishing --------------------------------------------------------------- */

static void chk_unlink(chk_t *j)
{
    engine_t *e = j->e;
    wait_remove(e, j);
    mp_list_unlink(&e->all, &j->all_link);
}

/* Cancel everything the check started, then free it. */
static void chk_free(chk_t *j)
{
    batch_leave(j);
    fetch_remove(j);
    if (j->dns_id)
        dns_cancel(j->e->dns, j->dns_id);
    waiter_remove(j->e, j);
    probing_release(j->e, j);
    if (j->timer)
        event_free(j->timer);
    if (j->deadline)
        event_free(j->deadline);
    vd_result_free(j->res);
    free(j->held);
    free(j->targets);
    free(j);
}

static void chk_finish(chk_t *j)
{
    engine_t *e = j->e;
    /* give up the domain's probe (waking its waiters) while the domain is still known */
    waiter_remove(e, j);
    probing_release(e, j);
    vd_result_t *res = j->res;
    j->res = NULL;
    res->duration_ms = chk_elapsed(j);
    facts_domain_t f;
    if (res->catch_all < 0 &&
        (res->reason == VR_MAILBOX_ABSENT || res->reason == VR_MAILBOX_DISABLED)) {
        /* the server refused this very mailbox by name: it tells addresses apart,
         * whichever session the domain's probe (if any) went out in */
        res->catch_all = 0;
    } else if (res->dns_checked && !res->probed &&
               facts_get(e->facts, res->addr.domain_ascii, &f) && f.told_apart) {
        res->catch_all = 0; /* told apart by a refused address: no probe to report */
    } else if (res->dns_checked && !res->probed &&
               facts_get(e->facts, res->addr.domain_ascii, &f)) {
        /* whatever decided this address, report what is known of its domain */
        res->catch_all = f.catch_all ? 1 : 0;
        res->probed = true;
        res->probe_cached = true;
        mp_strlcpy(res->probe_rcpt, f.probe_rcpt, sizeof res->probe_rcpt);
        res->probe_code = f.probe_code;
        mp_strlcpy(res->probe_enh, f.probe_enh, sizeof res->probe_enh);
        mp_strlcpy(res->probe_text, f.probe_text, sizeof res->probe_text);
    }
    vd_finish(res, &e->o.vd);
    chk_unlink(j);
    e->pending--;
    e->stats.checks++;
    engine_done_cb cb = j->cb;
    void *arg = j->arg;
    chk_free(j);
    dispatch_soon(e);
    cb(res, arg);
}

static void on_chk_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chk_t *j = arg;
    switch (j->next_act) {
    case ACT_FINISH: chk_finish(j); break;
    case ACT_ACCEPTED: chk_accepted(j); break;
    case ACT_MX_MEMO: chk_mx_memo(j); break;
    default: chk_try_target(j); break;
    }
}

/* Run the check's next step from the event loop after delay_ms: a target attempt, the
 * finish, or the end of a wait for catch-all evidence (callbacks never run inside
 * engine_check). */
static void chk_later(chk_t *j, uint64_t delay_ms, int act)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
    if (!j->timer)
        j->timer = evtimer_new(j->e->base, on_chk_timer, j);
    if (!j->timer)
        mp_panic("cannot create a timer");
    j->next_act = act;
    if (delay_ms == 0) {
        /* now, but from the loop: the active queue keeps the order of the calls (a timer
         * heap would not), so checks submitted together queue in submission order */
        evtimer_del(j->timer);
        event_active(j->timer, EV_TIMEOUT, 1);
        return;
    }
    evtimer_add(j->timer, &tv);
}

static void on_chk_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chk_t *j = arg;
    if (j->fail_rank < 5) {
        char why[160];
        snprintf(why, sizeof why, "gave up after %llu s (the per-address time limit)",
                 (unsigned long long)(j->e->o.max_time_ms / 1000));
        j->fail_rank = 0;
        chk_fail(j, VR_TIMEOUT, why);
    }
    chk_finish(j);
}

/* ---- the per-address flow ---------------------------------------------------- */

/* Every target of this round was tried: retry after a backoff while the greylist wait
 * lasts if the round saw a temporary refusal, else finish with what was recorded. */
static void chk_round_over(chk_t *j)
{
    uint64_t now = mp_now_ms();
    j->cur = j->round_start;
    j->no_tls_for_cur = false;
    if (j->round_temp && now < j->grey_end_ms) {
        unsigned n = sizeof retry_delays_s / sizeof retry_delays_s[0];
        uint64_t delay = (uint64_t)retry_delays_s[j->retry_no < n ? j->retry_no : n - 1] * 1000;
        if (now + delay > j->grey_end_ms)
            delay = j->grey_end_ms - now;
        j->retry_no++;
        j->e->stats.retries++;
        j->round_temp = false;
        mp_log(MP_LOG_DEBUG, "%s: temporary refusal, retry %u in %llu ms", j->res->email,
               j->retry_no, (unsigned long long)delay);
        chk_later(j, delay, ACT_TARGET);
        return;
    }
    chk_finish(j);
}

static void chk_next_target(chk_t *j)
{
    j->cur++;
    j->no_tls_for_cur = false;
    chk_try_target(j);
}

static void chk_try_target(chk_t *j)
{
    engine_t *e = j->e;
    if (j->cur >= j->ntargets) {
        chk_round_over(j);
        return;
    }
    wait_add(e, j);
    dispatch_soon(e);
}

/* ---- catch-all probe and domain facts ----------------------------------------- */

static probing_t *probing_find(engine_t *e, const char *domain)
{
    return strmap_get(e->probing, domain);
}

/* Take the wait list of a finished probe and let each waiter read the fact (or its
 * absence) from the event loop. */
static void probing_release(engine_t *e, chk_t *prober)
{
    if (!prober->res || !prober->res->addr.domain_ascii[0])
        return;
    probing_t *p = probing_find(e, prober->res->addr.domain_ascii);
    if (!p || p->prober != prober)
        return;
    strmap_del(e->probing, p->domain);
    for (chk_t *w = p->waiters, *next; w; w = next) {
        next = w->next_waiter;
        w->next_waiter = NULL;
        w->waiting_fact = false;
        chk_later(w, 0, ACT_ACCEPTED);
    }
    free(p);
}

static void waiter_remove(engine_t *e, chk_t *j)
{
    if (!j->waiting_fact || !j->res)
        return;
    probing_t *p = probing_find(e, j->res->addr.domain_ascii);
    if (p)
        for (chk_t **wp = &p->waiters; *wp; wp = &(*wp)->next_waiter)
            if (*wp == j) {
                *wp = j->next_waiter;
                break;
            }
    j->next_waiter = NULL;
    j->waiting_fact = false;
}

/* A local part that cannot exist: 20 random letters and digits, starting with a letter,
 * from the kernel's CSPRNG, so it is never a real-looking name and never guessable. */
static void probe_make_rcpt(chk_t *j)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[20];
    char local[21];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t x = mp_now_ms() ^ (j->id * 0x9e3779b97f4a7c15ull);
        for (size_t i = 0; i < sizeof rnd; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rnd[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        local[i] = alnum[i == 0 ? rnd[i] % 26 : rnd[i] % 36];
    local[20] = '\0';
    snprintf(j->probe_rcpt, sizeof j->probe_rcpt, "%s@%s", local, j->res->addr.domain_ascii);
}

/* Does the next session of this check carry the probe? Only when no fact is known and no
 * other check is probing the domain right now (then this one becomes the prober). */
static bool probe_wanted(chk_t *j)
{
    engine_t *e = j->e;
    if (!e->o.catch_all_probe)
        return false;
    facts_domain_t f;
    const char *d = j->res->addr.domain_ascii;
    if (facts_get(e->facts, d, &f))
        return false;
    probing_t *p = probing_find(e, d);
    if (p)
        return p->prober == j;
    p = calloc(1, sizeof *p);
    if (!p)
        return false;
    mp_strlcpy(p->domain, d, sizeof p->domain);
    p->prober = j;
    if (!strmap_put(e->probing, d, p)) {
        free(p);
        return false;
    }
    return true;
}

/* Read the probe's reply, if the session got one, into the result and the facts.
 * need_probe_alone is set again from this session alone: the probe still needs a
 * session of its own only when this one left it without a real answer. */
static void probe_evaluate(chk_t *j, const smtp_result_t *sr, size_t idx,
                           const cl_result_t *cls, bool ctl_accepted)
{
    engine_t *e = j->e;
    vd_result_t *r = j->res;
    j->need_probe_alone = false;
    if ((idx >= sr->nrcpt || !sr->rcpt[idx].has_reply) && sr->end == SMTP_END_OK &&
        !j->probe_alone) {
        /* the session answered what it sent but stopped opening transactions before
         * the probe's turn (smtp/session.h) */
        j->need_probe_alone = true;
    } else if (idx < sr->nrcpt && sr->rcpt[idx].has_reply) {
        const smtp_reply_t *rp = &sr->rcpt[idx].reply;
        r->probed = true;
        r->probe_cached = false;
        mp_strlcpy(r->probe_rcpt, j->probe_rcpt, sizeof r->probe_rcpt);
        r->probe_code = rp->code;
        mp_strlcpy(r->probe_enh, rp->enh, sizeof r->probe_enh);
        mp_strlcpy(r->probe_text, rp->text, sizeof r->probe_text);
        if (!j->probe_alone && smtp_reply_too_many_rcpts(rp)) {
            /* the session could not get past "too many recipients" for it (the server
             * refused it even first in a fresh transaction): no evidence either way */
            j->need_probe_alone = true;
        } else {
            int v = trouble_probe_evidence(&cls[idx], ctl_accepted);
            r->catch_all = v;
            if (v >= 0) {
                facts_domain_t f;
                memset(&f, 0, sizeof f);
                f.catch_all = v == 1;
                mp_strlcpy(f.mx_host, j->targets[j->cur].host, sizeof f.mx_host);
                mp_strlcpy(f.probe_rcpt, j->probe_rcpt, sizeof f.probe_rcpt);
                f.probe_code = rp->code;
                mp_strlcpy(f.probe_enh, rp->enh, sizeof f.probe_enh);
                mp_strlcpy(f.probe_text, rp->text, sizeof f.probe_text);
                uint64_t ttl = v ? e->o.catch_all_ttl_ms : e->o.not_catch_all_ttl_ms;
                facts_put(e->facts, r->addr.domain_ascii, &f, ttl);
                fact_share(e, r->addr.domain_ascii, &f, ttl);
            }
        }
    }
    if (!j->need_probe_alone)
        probing_release(e, j);
}

/* The real recipient was accepted: decide with the catch-all evidence. */
static void chk_accepted(chk_t *j)
{
    engine_t *e = j->e;
    vd_result_t *r = j->res;
    const char *d = r->addr.domain_ascii;

    if (j->need_probe_alone) {
        /* the probe got no real answer in the shared session ("too many recipients"
         * to the end): probe in a session of its own */
        j->need_probe_alone = false;
        j->probe_alone = true;
        chk_try_target(j);
        return;
    }
    facts_domain_t f;
    if (r->catch_all < 0 && facts_get(e->facts, d, &f)) {
        r->catch_all = f.catch_all ? 1 : 0;
        if (f.told_apart) {
            j->told_code = f.probe_code;
            mp_strlcpy(j->told_enh, f.probe_enh, sizeof j->told_enh);
        } else if (!r->probed) {
            r->probed = true;
            r->probe_cached = true;
            mp_strlcpy(r->probe_rcpt, f.probe_rcpt, sizeof r->probe_rcpt);
            r->probe_code = f.probe_code;
            mp_strlcpy(r->probe_enh, f.probe_enh, sizeof r->probe_enh);
            mp_strlcpy(r->probe_text, f.probe_text, sizeof r->probe_text);
        }
    }
    if (r->catch_all < 0 && e->o.catch_all_probe) {
        probing_t *p = probing_find(e, d);
        if (p && p->prober != j) {
            j->waiting_fact = true;
            j->next_waiter = p->waiters;
            p->waiters = j;
            return; /* probing_release() resumes us */
        }
    }
    trouble_accept_t a = {r->mx_host,        r->catch_all, r->probe_rcpt, j->provider,
                          e->o.catch_all_probe, j->told_code, j->told_enh};
    trouble_t tr;
    trouble_accepted(&a, &tr);
    r->smtp_result = tr.smtp_result;
    vd_set(r, tr.reason, "%s", tr.why);
    j->fail_rank = 9;
    chk_finish(j);
}

static void on_smtp_done(const smtp_result_t *sr, void *arg);
static void chk_on_session(chk_t *j, const smtp_result_t *sr, size_t idx,
                           const cl_result_t *cls, uint64_t conn_id);

/* Add j to the batch: to domain group g (its RCPT is its address), or as a rider (g -1:
 * its RCPT is its catch-all probe or its domain's control; its address is not asked
 * again, so it is no attempt). The RCPTs are laid out once the batch is complete. */
static void batch_add(batch_t *b, chk_t *j, int g)
{
    j->batch = b;
    j->batch_idx = b->n;
    b->chks[b->n] = j;
    b->grp[b->n] = g;
    b->n++;
    b->live++;
    if (g >= 0)
        j->res->attempts++;
}

/* May w, waiting for the same server address as j (its queue), ride in j's session:
 * the same way out, the same TLS choice and SMTPUTF8 need, and not a check that must go
 * alone? */
static bool batch_fits(engine_t *e, const chk_t *j, const chk_t *w, int egress)
{
    if (w->solo || w->no_tls_for_cur != j->no_tls_for_cur ||
        w->res->addr.local_utf8 != j->res->addr.local_utf8)
        return false;
    return e->egress.n == 0 ||
           egress_index(e, w->res->addr.domain_ascii, &w->targets[w->cur]) == egress;
}

static size_t room_take(size_t room, size_t cost)
{
    return room > cost ? room - cost : 0;
}

static bool chk_is_rider(const chk_t *j)
{
    return j->probe_alone || j->ctl_rider;
}

/* Was w's mailbox asked in the open transaction of txn (NULL: a new transaction)? The
 * same mailbox is never asked twice in one transaction (a second check of it, a retry
 * after greylisting): it goes in a new transaction or another session. */
static bool conn_asked(const conn_t *txn, const chk_t *w)
{
    return txn && strmap_get(txn->txn_rcpts, w->res->addr.normalized) != NULL;
}

/* Remember the mailboxes of the batch's write in its connection's open transaction; a
 * write that opens a new one (a new session, RSET) forgets the previous ones. */
static void batch_note_rcpts(const batch_t *b, conn_t *c, bool same_txn)
{
    if (!same_txn) {
        strmap_free(c->txn_rcpts, NULL);
        c->txn_rcpts = strmap_new();
        if (!c->txn_rcpts)
            mp_panic("out of memory");
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->grp[i] >= 0 && !strmap_put(c->txn_rcpts, b->chks[i]->res->addr.normalized, c))
            mp_panic("out of memory");
}

/* Is there a control rider of j's domain among the first n of the batch? */
static bool batch_has_ctl_of(const batch_t *b, size_t n, const chk_t *j)
{
    for (size_t i = 0; i < n; i++)
        if (b->chks[i]->ctl_rider &&
            strcmp(b->chks[i]->res->addr.domain_ascii, j->res->addr.domain_ascii) == 0)
            return true;
    return false;
}

/* Take along waiting checks for the same server while the write's error budget lasts:
 * first the riders (a probe, or a postmaster@ control shared by the domain's riders),
 * whose checks hold a result, then ordinary checks of any domain; each in arrival order,
 * from the server address's own queue. */
static void batch_fill(batch_t *b, chk_t *j, const target_t *t, int egress, size_t *room,
                       const conn_t *txn)
{
    engine_t *e = b->e;
    unsigned max = e->o.max_rcpt ? e->o.max_rcpt : 1;
    size_t nreal = chk_is_rider(j) ? 0 : 1, nctl = j->ctl_rider ? 1 : 0;
    const char *dom[BATCH_GROUPS_MAX];
    if (!chk_is_rider(j))
        dom[0] = j->res->addr.domain_ascii;
    for (int pass = t->dest->nriders ? 0 : 1; pass < 2; pass++)
        for (chk_t *w = wait_first(t->dest), *next; w && *room > 0 && b->n < BATCH_MAX;
             w = next) {
            next = MP_LIST_ITEM(w->wait_link.next, chk_t, wait_link);
            if (chk_is_rider(w) != (pass == 0) || !batch_fits(e, j, w, egress))
                continue;
            if (w->ctl_rider) {
                bool shared = batch_has_ctl_of(b, b->n, w);
                if (!shared && nctl >= BATCH_GROUPS_MAX)
                    continue;
                wait_remove(e, w);
                batch_add(b, w, -1);
                if (!shared) {
                    nctl++;
                    (*room)--;
                }
                continue;
            }
            if (w->probe_alone) {
                wait_remove(e, w);
                batch_add(b, w, -1);
                (*room)--;
                continue;
            }
            if (nreal >= max)
                break; /* only ordinary checks are taken in this pass: no more of them */
            if (conn_asked(txn, w))
                continue;
            const char *d = w->res->addr.domain_ascii;
            int g = -1;
            for (size_t k = 0; k < b->ng && g < 0; k++)
                if (strcmp(dom[k], d) == 0)
                    g = (int)k;
            if (g < 0 && b->ng >= BATCH_GROUPS_MAX)
                continue;
            bool dup = false; /* the same mailbox twice in one transaction: no */
            for (size_t i = 0; g >= 0 && i < b->n && !dup; i++)
                dup = b->grp[i] == g &&
                      strcmp(b->chks[i]->res->addr.normalized, w->res->addr.normalized) == 0;
            if (dup)
                continue;
            if (g < 0) {
                g = (int)b->ng++;
                dom[g] = d;
            }
            wait_remove(e, w);
            batch_add(b, w, g);
            nreal++;
            (*room)--;
        }
}

/* The order of the write: each domain's RCPTs in submission order, domain after domain,
 * then the riders' probes. */
static void batch_sort(batch_t *b)
{
    for (size_t i = 1; i < b->n; i++)
        for (size_t k = i; k > 0; k--) {
            long ga = b->grp[k - 1] < 0 ? BATCH_GROUPS_MAX : b->grp[k - 1];
            long gb = b->grp[k] < 0 ? BATCH_GROUPS_MAX : b->grp[k];
            if (ga < gb || (ga == gb && b->chks[k - 1]->id < b->chks[k]->id))
                break;
            chk_t *tc = b->chks[k - 1];
            int tg = b->grp[k - 1];
            b->chks[k - 1] = b->chks[k];
            b->grp[k - 1] = b->grp[k];
            b->chks[k] = tc;
            b->grp[k] = tg;
        }
    for (size_t i = 0; i < b->n; i++)
        b->chks[i]->batch_idx = i;
}

#define BATCH_RCPTS_MAX (BATCH_MAX + 3 * BATCH_GROUPS_MAX)

/* Lay out the RCPTs: per domain its recipients (then, up front, its postmaster@
 * control: RFC 5321 §4.5.1 requires every domain to accept it; after the real recipients,
 * whose answers come first, untouched by it; a check of postmaster@ itself is its own
 * control), then the riders' controls (one per domain) and probes, then the probes that
 * go up front (last: after every real answer, so a tarpit that slows down after an
 * unknown recipient cannot touch them). Controls and probes go up front only when
 * nothing else waits for this server address (lone): the session will most likely serve
 * no one else, so its budget is not worth saving and a round trip is. Otherwise each is
 * asked for later, only when it can tell something (on_smtp_done). pm_rcpt: storage for
 * the controls. Returns the number of RCPTs. */
static size_t batch_layout(batch_t *b, bool pm, bool lone, size_t room, const char **rcpts,
                           char (*pm_rcpt)[320], bool *utf8)
{
    engine_t *e = b->e;
    size_t nrcpt = 0, npm = 0;
    for (size_t i = 0; i < b->n; i++) {
        chk_t *x = b->chks[i];
        int g = b->grp[i];
        if (g < 0)
            continue;
        b->ridx[i] = nrcpt;
        rcpts[nrcpt++] = x->res->addr.normalized;
        *utf8 |= x->res->addr.local_utf8;
        if (!pm || !lone || room == 0 || (i + 1 < b->n && b->grp[i + 1] == g))
            continue;
        bool have = false;
        for (size_t k = 0; k <= i && !have; k++)
            have = b->grp[k] == g && mp_str_ieq(b->chks[k]->res->addr.local, "postmaster");
        if (have)
            continue;
        snprintf(pm_rcpt[npm], sizeof pm_rcpt[npm], "postmaster@%s", x->res->addr.domain_ascii);
        b->g[g].has_pm = true;
        b->g[g].pm_idx = nrcpt;
        rcpts[nrcpt++] = pm_rcpt[npm++];
        room--;
        e->stats.controls++;
    }
    for (size_t i = 0; i < b->n; i++) {
        chk_t *x = b->chks[i];
        if (b->grp[i] >= 0)
            continue;
        if (x->probe_alone) {
            b->ridx[i] = nrcpt;
            rcpts[nrcpt++] = x->probe_rcpt;
            continue;
        }
        size_t k = 0; /* a control rider: the domain's control, once in the write */
        while (k < i && !(strcmp(b->chks[k]->res->addr.domain_ascii,
                                 x->res->addr.domain_ascii) == 0 &&
                          (b->grp[k] < 0 ? b->chks[k]->ctl_rider : b->g[b->grp[k]].has_pm)))
            k++;
        if (k < i) {
            b->ridx[i] = b->grp[k] < 0 ? b->ridx[k] : b->g[b->grp[k]].pm_idx;
            continue;
        }
        snprintf(pm_rcpt[npm], sizeof pm_rcpt[npm], "postmaster@%s", x->res->addr.domain_ascii);
        b->ridx[i] = nrcpt;
        rcpts[nrcpt++] = pm_rcpt[npm++];
        e->stats.controls++;
    }
    if (!lone || !e->o.catch_all_probe)
        return nrcpt;
    for (size_t i = 0; i < b->n && room > 0; i++) {
        chk_t *x = b->chks[i];
        int g = b->grp[i];
        if (g < 0 || b->g[g].prober || !probe_wanted(x))
            continue;
        if (!x->probe_rcpt[0])
            probe_make_rcpt(x);
        b->g[g].prober = x;
        b->g[g].probe_idx = nrcpt;
        rcpts[nrcpt++] = x->probe_rcpt;
        room--;
    }
    return nrcpt;
}

/* The TLS context, made when a server first offers or demands STARTTLS rather than at
 * start: reading OpenSSL's algorithms and the CA directory costs every process a
 * millisecond or two, and most runs (a pool's workers, one check) may never need it. */
static SSL_CTX *engine_ssl(void *arg)
{
    engine_t *e = arg;
    if (!e->ssl && !e->ssl_failed) {
        e->ssl = smtp_tls_ctx_new();
        if (!e->ssl) {
            e->ssl_failed = true;
            mp_log(MP_LOG_WARN, "%s: sessions go on without STARTTLS",
                   mp_strerror(MP_ERR_TLS_INIT));
        }
    }
    return e->ssl;
}

/* Start a batch for j (and the waiting checks for the same server address that the
 * session's error budget allows) on the idle connection `reuse`, or on a new one. */
static void batch_start(chk_t *j, conn_t *reuse)
{
    engine_t *e = j->e;
    target_t *t = &j->targets[j->cur];
    batch_t *b = calloc(1, sizeof *b);
    dest_t *d = dest_get(e, t->ip.text);
    if (!b || !d)
        mp_panic("out of memory");
    b->e = e;
    mp_strlcpy(b->host, t->host, sizeof b->host);
    mp_strlcpy(b->ip, t->ip.text, sizeof b->ip);
    const char *domain = j->res->addr.domain_ascii;
    bool utf8 = j->res->addr.local_utf8;
    /* the session's error budget: every command of the write might be refused
     * (smtp/session.h). A reused session continues its open transaction when it can:
     * then no RSET and no MAIL FROM take a share of it */
    bool more = reuse && smtp_sess_room_txn(reuse->sess, utf8) > 0 && !conn_asked(reuse, j);
    size_t room = !reuse ? smtp_room_fresh(e->o.session_errors)
                  : more ? smtp_sess_room_txn(reuse->sess, utf8)
                         : smtp_sess_room(reuse->sess);
    size_t room0 = room;
    bool pm = !j->solo && e->o.postmaster_control;
    int egress = reuse ? reuse->egress : egress_index(e, domain, t);
    if (chk_is_rider(j)) {
        batch_add(b, j, -1);
    } else {
        b->ng = 1;
        batch_add(b, j, 0);
    }
    room = room_take(room, 1);
    if (!j->solo)
        batch_fill(b, j, t, egress, &room, more ? reuse : NULL);
    batch_sort(b);
    const char *rcpts[BATCH_RCPTS_MAX];
    char pm_rcpt[2 * BATCH_GROUPS_MAX][320];
    size_t nreal = 0, nriders = 0, nprobes = 0;
    for (size_t i = 0; i < b->n; i++)
        b->grp[i] >= 0 ? nreal++ : b->chks[i]->probe_alone ? nriders++ : 0;
    /* lone: nothing else waits for this server address */
    size_t nrcpt = batch_layout(b, pm, d->nwait == 0, room, rcpts, pm_rcpt, &utf8);
    for (size_t g = 0; g < b->ng; g++)
        nprobes += b->g[g].prober ? 1 : 0;
    /* the session takes nothing after a write that leaves it (almost) no budget: QUIT
     * rides with it, one round trip earlier (RFC 2920 §3.1) */
    bool quit = more && room0 <= BATCH_LAST_ROOM;
    e->stats.runs++;
    e->stats.rcpts += nreal;
    e->stats.probes += nriders + nprobes;

    struct sockaddr_storage ss;
    memcpy(&ss, &t->ip.sa, sizeof ss);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)e->o.port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)e->o.port);
    smtp_opts_t so;
    memset(&so, 0, sizeof so);
    so.helo = e->o.helo;
    so.mail_from = e->o.mail_from;
    so.to = e->o.to;
    so.starttls = e->o.starttls && !j->no_tls_for_cur && !e->ssl_failed;
    so.smtputf8 = utf8;
    so.ssl_ctx = e->ssl;
    so.ssl_ctx_get = e->o.starttls ? engine_ssl : NULL;
    so.ssl_ctx_arg = e;
    so.sni = t->host;
    so.rcpt_per_txn = e->o.rcpt_per_txn;
    b->egress = egress_pick(e, domain, t, &so);
    so.pipeline_mail = true;
    so.keep_open = true;
    so.error_budget = e->o.session_errors;
    if (reuse) {
        mp_log(MP_LOG_DEBUG, "session %llu to %s [%s] reused%s: %zu recipient(s) of %zu "
               "domain(s), %zu probe(s)%s", (unsigned long long)reuse->id, t->host,
               t->ip.text, more ? " in its open transaction" : "", nreal, b->ng,
               nriders + nprobes, quit ? ", then QUIT" : "");
        b->conn = reuse;
        b->egress = reuse->egress; /* the same by the cache's key */
        reuse->runs++;
        e->stats.reused++;
        batch_note_rcpts(b, reuse, more);
        int rc = more ? smtp_sess_more(reuse->sess, rcpts, nrcpt, utf8, quit, on_smtp_done, b)
                      : smtp_sess_next(reuse->sess, rcpts, nrcpt, utf8, on_smtp_done, b);
        if (rc == 0)
            return;
        /* cannot happen (conn_take checked it): the checks wait for another session */
        b->conn = NULL;
        conn_quit(reuse);
        chk_t *chks[BATCH_MAX];
        size_t n = b->n;
        memcpy(chks, b->chks, n * sizeof chks[0]);
        for (size_t i = 0; i < n; i++)
            if (b->grp[i] >= 0)
                chks[i]->res->attempts--;
        free(b);
        for (size_t i = 0; i < n; i++) {
            chks[i]->batch = NULL;
            probing_release(e, chks[i]);
            chk_try_target(chks[i]);
        }
        return;
    }
    b->conn = conn_open(e, t, d, b->egress);
    b->conn->runs = 1;
    batch_note_rcpts(b, b->conn, true);
    mp_log(MP_LOG_DEBUG, "session %llu to %s [%s]: %zu recipient(s) of %zu domain(s), %zu "
           "probe(s)", (unsigned long long)b->conn->id, t->host, t->ip.text, nreal, b->ng,
           nriders + nprobes);
    if (smtp_sess_start(e->base, &so, (struct sockaddr *)&ss, t->ip.salen, rcpts, nrcpt,
                        on_smtp_done, b, &b->conn->sess) != 0) {
        /* our own failure (bad argument, memory): every job moves on */
        b->conn->sess = NULL;
        conn_release(b->conn);
        b->conn = NULL;
        chk_t *chks[BATCH_MAX];
        size_t n = b->n;
        memcpy(chks, b->chks, n * sizeof chks[0]);
        for (size_t i = 0; i < n; i++) {
            chks[i]->batch = NULL;
            probing_release(e, chks[i]);
        }
        free(b);
        char why[400];
        snprintf(why, sizeof why, "could not open a session to %s [%s]", t->host, t->ip.text);
        for (size_t i = 0; i < n; i++) {
            chk_fail(chks[i], VR_NOT_CHECKED, why);
            chk_next_target(chks[i]);
        }
    }
}

/* The transcript's note on the connection: which session, its how-manieth run, and the
 * domains its earlier runs served (RFC 5321 allows many transactions per session, and
 * many recipients per transaction; the run's own lines show the other domains of its
 * write). */
static void record_conn_note(chk_t *j, const smtp_result_t *sr, const char *domains,
                             uint64_t at)
{
    const target_t *t = &j->targets[j->cur];
    char note[400];
    snprintf(note, sizeof note, "%s: session reused for its run %u; earlier runs for %s",
             t->host, sr->run + 1, domains[0] ? domains : "?");
    vd_add_line(j->res, t->ip.text, '*', at, note);
}

static void record_session(chk_t *j, const smtp_result_t *sr, const char *domains)
{
    vd_result_t *r = j->res;
    const target_t *t = &j->targets[j->cur];
    mp_strlcpy(r->mx_host, t->host, sizeof r->mx_host);
    mp_strlcpy(r->mx_ip, t->ip.text, sizeof r->mx_ip);
    mp_strlcpy(r->egress, sr->egress ? sr->egress->name : "", sizeof r->egress);
    r->tls = sr->tls;
    r->tls_verified = sr->tls_verified;
    r->round_trips = sr->round_trips;
    if (j->e->o.geo)
        r->has_geo = geo_lookup(j->e->o.geo, (const struct sockaddr *)&t->ip.sa, &r->geo);
    if (j->e->o.keep_transcript) {
        uint64_t now = chk_elapsed(j);
        uint64_t base = now >= sr->duration_ms ? now - sr->duration_ms : 0;
        if (sr->run > 0)
            record_conn_note(j, sr, domains, base);
        for (size_t i = 0; i < sr->nlines; i++)
            vd_add_line(r, t->ip.text, sr->lines[i].from_client ? '>' : '<',
                        base + sr->lines[i].at_ms, sr->lines[i].line);
        if (sr->end != SMTP_END_OK && sr->end != SMTP_END_REPLY) {
            /* a note ('*') for what has no line of its own: refused, timed out, TLS */
            char note[400];
            snprintf(note, sizeof note, "%s %s during %s: %s", t->host,
                     smtp_end_name(sr->end), smtp_state_name(sr->end_state), sr->detail);
            vd_add_line(r, t->ip.text, '*', now, note);
        }
    }
}

/* The context trouble.c reads a reply in: the server, the check's facts. */
static void chk_trouble_ctx(const chk_t *j, const smtp_result_t *sr, trouble_ctx_t *c)
{
    const target_t *t = &j->targets[j->cur];
    memset(c, 0, sizeof *c);
    c->host = t->host;
    c->ip = t->ip.text;
    c->local_utf8 = j->res->addr.local_utf8;
    c->smtputf8_offered = sr->smtputf8_offered;
    c->solo = j->solo;
    c->tls_failed_seen = j->tls_failed_seen;
    c->tls_retried = j->no_tls_for_cur;
    c->via_proxy = sr->egress_failed || (sr->egress && sr->egress->kind == NET_EGRESS_SOCKS5);
    c->port = j->e->o.port;
    c->attempts = j->res->attempts;
    c->postmaster = j->ctl.pm;
    c->postmaster_code = j->ctl.pm_code;
    c->postmaster_enh = j->ctl.pm_enh;
    c->other_accepted = j->ctl.other_accepted;
    c->elapsed_s = (unsigned long long)(chk_elapsed(j) / 1000);
}

/* A server asked us to slow down: back to it once its penalty is over (window.h) while
 * the throttle budget lasts, then the next target. */
static void chk_throttled(chk_t *j)
{
    if (j->throttled < j->e->o.throttle_retries) {
        j->throttled++;
        chk_try_target(j);
        return;
    }
    chk_next_target(j);
}

/* The session reached RCPT and our recipient got an answer: trouble.c says what it
 * means, the engine does what comes next. */
static void chk_on_rcpt_reply(chk_t *j, const smtp_reply_t *rp, const cl_result_t *cl,
                              const trouble_ctx_t *ctx)
{
    vd_result_t *r = j->res;
    trouble_t tr;
    trouble_rcpt(rp, cl, ctx, &tr);
    vd_set_reply(r, CL_STAGE_RCPT, rp->code, rp->enh, rp->text, &tr.cl);
    r->smtp_result = tr.smtp_result;
    switch (tr.next) {
    case TR_ALONE:
        j->solo = true;
        chk_try_target(j);
        return;
    case TR_THROTTLED:
        chk_fail(j, tr.reason, tr.why);
        chk_throttled(j);
        return;
    case TR_RETRY_ROUND:
        j->fail_rank = 0;
        chk_fail(j, tr.reason, tr.why);
        j->round_temp = true;
        j->round_start = j->cur; /* same server again on the next round */
        chk_round_over(j);
        return;
    case TR_NEXT_TARGET:
    case TR_IN_CLEAR: /* never for an answer to RCPT */
        chk_fail(j, tr.reason, tr.why);
        chk_next_target(j);
        return;
    case TR_ACCEPTED:
    case TR_FINISH:
        break;
    }
    j->fail_rank = 9;
    vd_set(r, tr.reason, "%s", tr.why);
    if (tr.next == TR_ACCEPTED) {
        chk_accepted(j);
        return;
    }
    chk_finish(j);
}

/* A reply before RCPT ended the session. */
static void chk_on_early_reply(chk_t *j, const smtp_result_t *sr)
{
    vd_result_t *r = j->res;
    const smtp_reply_t *rp = &sr->reply;
    trouble_ctx_t ctx;
    trouble_t tr;
    chk_trouble_ctx(j, sr, &ctx);
    trouble_early(rp, trouble_stage_of(sr->end_state), &ctx, &tr);
    if (trouble_rank(tr.reason) >= j->fail_rank)
        vd_set_reply(r, tr.stage, rp->code, rp->enh, rp->text, &tr.cl);
    chk_fail(j, tr.reason, tr.why);
    r->smtp_result = tr.smtp_result;
    if (tr.temporary)
        j->round_temp = true;
    switch (tr.next) {
    case TR_THROTTLED: chk_throttled(j); return;
    case TR_FINISH: chk_finish(j); return;
    default: chk_next_target(j); return;
    }
}

static bool rcpt_accepted(const smtp_result_t *sr, size_t idx)
{
    return idx < sr->nrcpt && sr->rcpt[idx].has_reply &&
           (sr->rcpt[idx].reply.code == 250 || sr->rcpt[idx].reply.code == 251);
}

/* What one domain's part of a run says about its catch-all fact. With its probe up front,
 * the probe's answer (shared by the domain's checks of the run). Without it, the other
 * answers may make a probe needless: a server that refused an address of the domain as
 * unknown (trouble.c's reading, CL_MAILBOX_ABSENT) tells addresses apart, which is a fact
 * of the domain as a probe's refusal is; one that refused them all is not asked either.
 * Only when some recipient was accepted and none was told apart does a probe follow: its
 * check rides in a next write (probe_alone) and the others wait for its answer. */
static void batch_evidence(engine_t *e, const smtp_result_t *sr, chk_t *const *chks,
                           const size_t *ridx, const int *grp, size_t n, int g,
                           const bgroup_t *bg, const sess_ctl_t *ctl, const cl_result_t *cls)
{
    chk_t *prober = bg->prober;
    if (prober) {
        probe_evaluate(prober, sr, bg->probe_idx, cls,
                       ctl->pm == TR_CTL_ACCEPTED || ctl->accepted > 0);
        /* the others of this domain saw the same probe */
        for (size_t i = 0; i < n; i++)
            if (chks[i] && grp[i] == g && chks[i] != prober && prober->res->probed) {
                vd_result_t *r = chks[i]->res, *p = prober->res;
                r->probed = true;
                r->probe_cached = false;
                r->catch_all = p->catch_all;
                mp_strlcpy(r->probe_rcpt, p->probe_rcpt, sizeof r->probe_rcpt);
                r->probe_code = p->probe_code;
                mp_strlcpy(r->probe_enh, p->probe_enh, sizeof r->probe_enh);
                mp_strlcpy(r->probe_text, p->probe_text, sizeof r->probe_text);
                if (prober->need_probe_alone)
                    chks[i]->res->catch_all = -1;
            }
        return;
    }
    if (!e->o.catch_all_probe)
        return;
    chk_t *first_ok = NULL, *any = NULL;
    const smtp_reply_t *told = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!chks[i] || grp[i] != g || ridx[i] >= sr->nrcpt || !sr->rcpt[ridx[i]].has_reply)
            continue;
        any = chks[i];
        if (cls[ridx[i]].outcome == CL_MAILBOX_ABSENT && !told)
            told = &sr->rcpt[ridx[i]].reply;
        else if (!first_ok && rcpt_accepted(sr, ridx[i]) &&
                 !(chks[i]->res->addr.local_utf8 && !sr->smtputf8_offered))
            first_ok = chks[i];
    }
    if (told && any) {
        const char *d = any->res->addr.domain_ascii;
        facts_domain_t f;
        for (size_t i = 0; i < n; i++)
            if (chks[i] && grp[i] == g && rcpt_accepted(sr, ridx[i]) &&
                chks[i]->res->catch_all < 0) {
                chks[i]->res->catch_all = 0;
                chks[i]->told_code = told->code;
                mp_strlcpy(chks[i]->told_enh, told->enh, sizeof chks[i]->told_enh);
            }
        if (!facts_get(e->facts, d, &f)) {
            /* no address and no text kept: they may name another person's mailbox */
            memset(&f, 0, sizeof f);
            f.told_apart = true;
            mp_strlcpy(f.mx_host, any->targets[any->cur].host, sizeof f.mx_host);
            f.probe_code = told->code;
            mp_strlcpy(f.probe_enh, told->enh, sizeof f.probe_enh);
            facts_put(e->facts, d, &f, e->o.not_catch_all_ttl_ms);
            fact_share(e, d, &f, e->o.not_catch_all_ttl_ms);
        }
        return;
    }
    if (first_ok && probe_wanted(first_ok)) {
        if (!first_ok->probe_rcpt[0])
            probe_make_rcpt(first_ok);
        first_ok->need_probe_alone = true; /* chk_accepted sends it on its way */
    }
}

/* A refusal in words that say nothing known (the only one trouble.c reads against the
 * controls) with no postmaster@ in its write: the control is asked in a next write of the
 * session, in the same transaction (a rider), and the reply is read once it answers.
 * True when held. */
static bool chk_hold_for_control(chk_t *j, const smtp_result_t *sr, size_t idx,
                                 const cl_result_t *cls)
{
    if (!j->e->o.postmaster_control || j->solo || idx >= sr->nrcpt ||
        !sr->rcpt[idx].has_reply || cls[idx].outcome != CL_PERM_OTHER ||
        (j->res->addr.local_utf8 && !sr->smtputf8_offered) ||
        mp_str_ieq(j->res->addr.local, "postmaster"))
        return false;
    if (!j->held)
        j->held = malloc(sizeof *j->held);
    if (!j->held)
        return false; /* read without a control */
    *j->held = sr->rcpt[idx].reply;
    j->ctl_rider = true;
    chk_try_target(j);
    return true;
}

/* A control rider's postmaster@ answered (or not): read the held reply with it. */
static void chk_on_control(chk_t *j, const smtp_result_t *sr, size_t idx)
{
    j->ctl_rider = false;
    j->ctl.pm = TR_CTL_NONE;
    if (idx < sr->nrcpt && sr->rcpt[idx].has_reply) {
        const smtp_reply_t *pr = &sr->rcpt[idx].reply;
        j->ctl.pm = pr->code / 100 == 2 ? TR_CTL_ACCEPTED
                    : pr->code / 100 == 5 ? TR_CTL_REFUSED : TR_CTL_NONE;
        j->ctl.pm_code = pr->code;
        mp_strlcpy(j->ctl.pm_enh, pr->enh, sizeof j->ctl.pm_enh);
    }
    smtp_reply_t *rp = j->held;
    j->held = NULL;
    trouble_ctx_t ctx;
    chk_trouble_ctx(j, sr, &ctx);
    chk_on_rcpt_reply(j, rp, NULL, &ctx);
    free(rp);
}

static void on_smtp_done(const smtp_result_t *sr, void *arg)
{
    batch_t *b = arg;
    engine_t *e = b->e;
    conn_t *c = b->conn;
    uint64_t cid = c->id;
    if (!sr->idle && (unsigned)sr->end < ENGINE_SESS_ENDS)
        e->stats.sess_end[sr->end]++;
    if (sr->refusals > e->stats.max_refusals)
        e->stats.max_refusals = sr->refusals;
    chk_t *chks[BATCH_MAX];
    size_t ridx[BATCH_MAX];
    int grp[BATCH_MAX];
    bgroup_t g[BATCH_GROUPS_MAX];
    size_t n = b->n, ng = b->ng;
    memcpy(chks, b->chks, n * sizeof chks[0]);
    memcpy(ridx, b->ridx, n * sizeof ridx[0]);
    memcpy(grp, b->grp, n * sizeof grp[0]);
    memcpy(g, b->g, ng * sizeof g[0]);
    /* the controls of each domain: its postmaster@'s answer, its accepted recipients */
    sess_ctl_t ctl[BATCH_GROUPS_MAX];
    memset(ctl, 0, sizeof ctl);
    for (size_t k = 0; k < ng; k++)
        if (g[k].has_pm && g[k].pm_idx < sr->nrcpt && sr->rcpt[g[k].pm_idx].has_reply) {
            const smtp_reply_t *pr = &sr->rcpt[g[k].pm_idx].reply;
            ctl[k].pm = pr->code / 100 == 2 ? TR_CTL_ACCEPTED
                        : pr->code / 100 == 5 ? TR_CTL_REFUSED : TR_CTL_NONE;
            ctl[k].pm_code = pr->code;
            mp_strlcpy(ctl[k].pm_enh, pr->enh, sizeof ctl[k].pm_enh);
        }
    for (size_t i = 0; i < n; i++)
        if (chks[i] && grp[i] >= 0 && rcpt_accepted(sr, ridx[i]))
            ctl[grp[i]].accepted++;
    egress_on_done(e, b->egress, sr);
    cl_result_t cls[BATCH_RCPTS_MAX]; /* each RCPT reply read once (trouble.h) */
    trouble_read_session(sr, cls, BATCH_RCPTS_MAX);
    window_outcome_t o = trouble_session_window(sr, cls);
    if (c->outcome != WIN_THROTTLE)
        c->outcome = o;
    char domains[sizeof c->domains];
    mp_strlcpy(domains, c->domains, sizeof domains);
    if (!sr->idle) {
        c->sess = NULL; /* it frees itself after this callback */
        conn_release(c);
        c = NULL;
    }
    free(b);
    for (size_t i = 0; i < n; i++)
        if (chks[i]) {
            chks[i]->batch = NULL;
            record_session(chks[i], sr, domains);
        }
    for (size_t i = 0; c && i < n; i++) {
        /* remember the domains for the transcript of the next runs */
        if (!chks[i] || (i > 0 && grp[i] == grp[i - 1]))
            continue;
        const char *dom = chks[i]->res->addr.domain_ascii;
        size_t used = strlen(c->domains);
        if (used + strlen(dom) + 2 < sizeof c->domains) {
            snprintf(c->domains + used, sizeof c->domains - used, "%s%s", used ? " " : "",
                     dom);
        } else if (used + 4 < sizeof c->domains && !strstr(c->domains, "...")) {
            mp_strlcpy(c->domains + used, " ...", sizeof c->domains - used);
        }
    }
    for (size_t k = 0; k < ng; k++)
        batch_evidence(e, sr, chks, ridx, grp, n, (int)k, &g[k], &ctl[k], cls);
    for (size_t i = 0; i < n; i++)
        if (chks[i]) {
            chk_t *x = chks[i];
            if (grp[i] >= 0) {
                bool self = rcpt_accepted(sr, ridx[i]);
                x->ctl = ctl[grp[i]];
                x->ctl.other_accepted = ctl[grp[i]].accepted > (self ? 1u : 0u);
                if (self)
                    x->accepted_conn = cid;
                if (!g[grp[i]].has_pm && chk_hold_for_control(x, sr, ridx[i], cls))
                    continue;
            }
            chk_on_session(x, sr, ridx[i], cls, cid);
        }
    if (c)
        conn_park(c);
    dispatch_soon(e);
}

/* Did the session break off in the middle of the run rather than refuse us: closed, timed
 * out, garbled or refused RSET, on a reused session or after answering some RCPTs? */
static bool session_died_midway(const smtp_result_t *sr)
{
    bool broke = sr->end == SMTP_END_CLOSED || sr->end == SMTP_END_TIMEOUT ||
                 sr->end == SMTP_END_PROTOCOL ||
                 (sr->end == SMTP_END_REPLY && sr->end_state == SMTP_ST_RSET);
    if (!broke)
        return false;
    if (sr->run > 0)
        return true;
    for (size_t i = 0; i < sr->nrcpt; i++)
        if (sr->rcpt[i].has_reply)
            return true;
    return false;
}

/* What one session meant for one of its checks, whose RCPT had index idx. */
static void chk_on_session(chk_t *j, const smtp_result_t *sr, size_t idx,
                           const cl_result_t *cls, uint64_t conn_id)
{
    if (j->ctl_rider) {
        chk_on_control(j, sr, idx);
        return;
    }
    if (j->probe_alone) {
        /* a rider: its probe, after its real answer (accepted) came in an earlier run
         * (or after "too many recipients"); on the same connection, that acceptance is a
         * control for a refusal of the probe in words that say nothing known */
        probe_evaluate(j, sr, idx, cls, j->accepted_conn == conn_id);
        j->probe_alone = false;
        chk_accepted(j);
        return;
    }
    if (idx < sr->nrcpt && sr->rcpt[idx].has_reply) {
        trouble_ctx_t ctx;
        chk_trouble_ctx(j, sr, &ctx);
        chk_on_rcpt_reply(j, &sr->rcpt[idx].reply, &cls[idx], &ctx);
        return;
    }
    if (!j->resent && sr->egress_failed && j->e->egress.n > 1) {
        /* the way out failed (a proxy down), not the server: nothing was asked. Once more,
         * by another way out (the failed one rests): a session carries several domains,
         * and each deserves the chance a session of its own had after the first failed */
        j->resent = true;
        chk_try_target(j);
        return;
    }
    if (!j->resent && session_died_midway(sr)) {
        /* the connection was lost (or refused RSET) in the middle of a run, after other
         * answers or on a reused session: this recipient was not answered, so it goes
         * to another session once - nothing lost, and nothing answered is asked twice */
        j->resent = true;
        chk_try_target(j);
        return;
    }
    if (sr->end == SMTP_END_REPLY && sr->has_reply) {
        chk_on_early_reply(j, sr);
        return;
    }
    trouble_ctx_t ctx;
    trouble_t tr;
    chk_trouble_ctx(j, sr, &ctx);
    trouble_end(sr, &ctx, &tr);
    if (sr->end == SMTP_END_TLS)
        j->tls_failed_seen = true;
    switch (tr.next) {
    case TR_ALONE:
        j->solo = true;
        chk_try_target(j);
        return;
    case TR_IN_CLEAR:
        chk_fail(j, tr.reason, tr.why);
        j->no_tls_for_cur = true;
        chk_try_target(j);
        return;
    default:
        chk_fail(j, tr.reason, tr.why);
        chk_next_target(j);
        return;
    }
}

/* ---- DNS ---------------------------------------------------------------------- */

static void add_target(chk_t *j, const char *host, const dns_ip_t *ip)
{
    if (j->ntargets >= TARGETS_MAX)
        return;
    target_t *nt = realloc(j->targets, (j->ntargets + 1) * sizeof *nt);
    if (!nt)
        return;
    j->targets = nt;
    target_t *t = &j->targets[j->ntargets++];
    mp_strlcpy(t->host, host, sizeof t->host);
    t->ip = *ip;
    t->dest = dest_get(j->e, ip->text); /* its wait queue is there */
    if (!t->dest)
        mp_panic("out of memory");
}

static void on_dns(const dns_mail_t *m, void *arg)
{
    chk_t *j = arg;
    vd_result_t *r = j->res;
    char why[600];
    j->dns_id = 0;
    mx_share(j->e, r->addr.domain_ascii, m);
    r->dns_checked = true;
    r->null_mx = m->null_mx;
    r->implicit_mx = m->implicit_mx;
    r->spf = m->spf;
    r->dmarc = m->dmarc;
    r->domain_exists = m->status != DNS_NXDOMAIN;
    if (m->nmx) {
        r->mx = calloc(m->nmx, sizeof *r->mx);
        if (r->mx) {
            r->nmx = (unsigned)m->nmx;
            for (size_t i = 0; i < m->nmx; i++) {
                vd_mx_t *x = &r->mx[i];
                mp_strlcpy(x->host, m->mx[i].host, sizeof x->host);
                x->pref = m->mx[i].pref;
                for (size_t k = 0; k < m->mx[i].nip && x->nip < 16; k++)
                    mp_strlcpy(x->ip[x->nip++], m->mx[i].ip[k].text, sizeof x->ip[0]);
            }
        }
    }
    switch (m->status) {
    case DNS_OK: break;
    case DNS_NXDOMAIN:
        vd_set(r, VR_NO_SUCH_DOMAIN, "the domain %s does not exist (NXDOMAIN)",
               r->addr.domain_ascii);
        chk_finish(j);
        return;
    case DNS_NODATA:
        vd_set(r, VR_NO_MAIL_SERVER, "%s has no MX record and no address", r->addr.domain_ascii);
        chk_finish(j);
        return;
    default:
        vd_set(r, VR_DNS_FAILURE, "DNS could not answer for %s: %s", r->addr.domain_ascii,
               m->detail[0] ? m->detail : dns_status_name(m->status));
        chk_finish(j);
        return;
    }
    if (m->null_mx) {
        vd_set(r, VR_NO_MAIL_SERVER, "%s publishes a null MX (RFC 7505): it accepts no mail",
               r->addr.domain_ascii);
        chk_finish(j);
        return;
    }
    if (m->nmx) {
        const char *hosts[DNS_MX_MAX];
        unsigned prefs[DNS_MX_MAX];
        for (size_t i = 0; i < m->nmx; i++) {
            hosts[i] = m->mx[i].host;
            prefs[i] = m->mx[i].pref;
        }
        j->provider = provider_for_mx_set(hosts, prefs, m->nmx, NULL);
        if (j->provider) {
            r->provider = j->provider->id;
            r->gateway = provider_is_gateway(j->provider);
            r->provider_flags = j->provider->behaviour;
        }
    }
    unsigned unroutable = 0, failed_hosts = 0, with_ip = 0;
    const char *unroutable_ip = "";
    for (size_t i = 0; i < m->nmx; i++) {
        const dns_mx_t *x = &m->mx[i];
        if (x->nip)
            with_ip++;
        else if (x->status != DNS_NXDOMAIN && x->status != DNS_NODATA && x->status != DNS_OK)
            failed_hosts++;
        for (size_t k = 0; k < x->nip; k++) {
            if (!j->e->o.allow_private_mx &&
                engine_addr_unroutable((const struct sockaddr *)&x->ip[k].sa)) {
                unroutable++;
                unroutable_ip = x->ip[k].text;
                continue;
            }
            add_target(j, x->host, &x->ip[k]);
        }
    }
    if (j->ntargets == 0) {
        if (failed_hosts)
            vd_set(r, VR_DNS_FAILURE, "the addresses of %s's mail servers could not be "
                   "looked up (%u host(s) failed)", r->addr.domain_ascii, failed_hosts);
        else if (with_ip == 0)
            vd_set(r, VR_NO_MAIL_SERVER, "none of %s's %u MX host(s) has an address",
                   r->addr.domain_ascii, (unsigned)m->nmx);
        else
            vd_set(r, VR_UNROUTABLE_MX, "every mail server address of %s is loopback, "
                   "private, link-local or multicast (e.g. %s); --allow-private-mx checks "
                   "them anyway", r->addr.domain_ascii, unroutable_ip);
        chk_finish(j);
        return;
    }
    if (unroutable)
        mp_log(MP_LOG_INFO, "%s: skipped %u unroutable MX address(es)", r->email, unroutable);
    snprintf(why, sizeof why, "no mail server of %s could be reached", r->addr.domain_ascii);
    vd_set(r, VR_CONNECT_FAILED, "%s", why);
    chk_fetch_facts(j);
}

/* ---- public ------------------------------------------------------------------- */

engine_t *engine_new(struct event_base *base, const engine_opts_t *opts, mp_status_t *st)
{
    engine_t *e = calloc(1, sizeof *e);
    if (!e) {
        *st = MP_ERR_NOMEM;
        return NULL;
    }
    e->base = base;
    e->o = *opts;
    if (!e->o.per_ip_limit)
        e->o.per_ip_limit = 2;
    if (!e->o.max_sessions)
        e->o.max_sessions = 20;
    if (!e->o.per_host_limit)
        e->o.per_host_limit = 4;
    if (!e->o.port)
        e->o.port = 25;
    net_pool_init(&e->egress, e->o.egress, e->o.negress);
    e->wcfg.limit = e->o.per_ip_limit;
    e->wcfg.min_interval_ms = e->o.min_interval_ms;
    e->wcfg.penalty_ms = e->o.penalty_ms ? e->o.penalty_ms : 1000;
    e->wcfg.penalty_cap_ms = e->o.penalty_cap_ms ? e->o.penalty_cap_ms : 60000;

    *st = MP_ERR_NOMEM;
    e->dests = strmap_new();
    e->hosts = strmap_new();
    e->probing = strmap_new();
    if (!e->dests || !e->hosts || !e->probing)
        goto fail;
    e->dispatch_ev = event_new(base, -1, 0, on_dispatch, e);
    e->wake_ev = evtimer_new(base, on_dispatch, e);
    e->cc_ev = evtimer_new(base, on_conncache_timer, e);
    {
        conncache_cfg_t cc = {e->o.idle_time_ms, e->o.reuse_time_ms, e->o.reuse_count};
        e->cc = conncache_new(&cc);
    }
    if (!e->dispatch_ev || !e->wake_ev || !e->cc_ev || !e->cc)
        goto fail;
    if (e->o.redis_url && !e->o.offline) {
        char err[512];
        e->fleet = fleet_open(base, e->o.redis_url, 0, err, sizeof err);
        if (!e->fleet) {
            mp_log(MP_LOG_ERROR, "fleet: %s", err);
            *st = MP_ERR_IO;
            goto fail;
        }
        lease_cfg_t lc = {{e->o.per_ip_limit, e->o.min_interval_ms, LEASE_MS_DEFAULT,
                           e->wcfg.penalty_ms, e->wcfg.penalty_cap_ms},
                          e->o.caps};
        e->lease = lease_pool_new(base, e->fleet, &lc, on_lease_wake, e);
        lease_pool_on_want(e->lease, on_lease_want);
        e->fetching = strmap_new();
        e->mxfetch = strmap_new();
        e->mxmemo = strmap_new();
        e->canone = strmap_new();
        if (!e->lease || !e->fetching || !e->mxfetch || !e->mxmemo || !e->canone)
            goto fail;
    }
    e->facts = e->o.facts;
    if (!e->facts) {
        e->facts = facts_mem_new(4096);
        e->own_facts = true;
        if (!e->facts)
            goto fail;
    }
    if (!e->o.offline) {
        e->dns = dns_resolver_new(base, &e->o.dns, st);
        if (!e->dns)
            goto fail;
    }
    *st = MP_OK;
    return e;
fail:
    engine_free(e);
    return NULL;
}

void engine_free(engine_t *e)
{
    if (!e)
        return;
    while (e->all.head) {
        chk_t *j = MP_LIST_ITEM(e->all.head, chk_t, all_link);
        chk_unlink(j);
        chk_free(j);
    }
    /* connections left: idle, or saying QUIT (engine_close_idle lets them finish) */
    while (e->conns.head) {
        conn_t *c = MP_LIST_ITEM(e->conns.head, conn_t, link);
        if (e->cc)
            conncache_remove(e->cc, c);
        if (c->sess)
            smtp_sess_cancel(c->sess);
        c->sess = NULL;
        conn_release(c);
    }
    conncache_free(e->cc);
    /* the fleet first: it drops the answers still to come, which name the pool's and
     * the fetches' records */
    fleet_free(e->fleet);
    lease_pool_free(e->lease);
    strmap_free(e->fetching, free); /* fetches not answered: their checks are gone */
    strmap_free(e->mxfetch, free);
    strmap_free(e->mxmemo, free);
    strmap_free(e->canone, free);
    if (e->cc_ev)
        event_free(e->cc_ev);
    strmap_free(e->dests, free);
    free(e->heap);
    strmap_free(e->hosts, free);
    strmap_free(e->probing, free); /* empty once every check released its probe */
    if (e->dns)
        dns_resolver_free(e->dns);
    if (e->ssl)
        SSL_CTX_free(e->ssl);
    if (e->own_facts)
        facts_free(e->facts);
    if (e->dispatch_ev)
        event_free(e->dispatch_ev);
    if (e->wake_ev)
        event_free(e->wake_ev);
    free(e);
}

void engine_stats(const engine_t *e, engine_stats_t *out)
{
    *out = e->stats;
    out->fleet_calls += lease_pool_calls(e->lease) + fleet_facts_batches(e->fleet);
    if (e->dns)
        dns_stats(e->dns, &out->dns);
}

unsigned engine_pending(const engine_t *e)
{
    return e->pending;
}

mp_status_t engine_check(engine_t *e, const char *email, engine_done_cb cb, void *arg)
{
    chk_t *j = calloc(1, sizeof *j);
    if (!j)
        return MP_ERR_NOMEM;
    j->res = vd_result_new(email);
    if (!j->res) {
        free(j);
        return MP_ERR_NOMEM;
    }
    j->e = e;
    j->id = ++e->next_id;
    j->cb = cb;
    j->arg = arg;
    j->start_ms = mp_now_ms();
    mp_list_push_head(&e->all, &j->all_link);
    e->pending++;

    vd_result_t *r = j->res;
    mp_str_trim(r->email);
    addr_parse(r->email, strlen(r->email), &r->addr);
    if (r->addr.err != ADDR_OK) {
        vd_set(r, VR_INVALID_SYNTAX, "%s (%s)", addr_err_text(r->addr.err),
               addr_err_rule(r->addr.err));
        chk_later(j, 0, ACT_FINISH);
        return MP_OK;
    }
    intel_analyze(&r->addr, &r->intel);
    r->intel_done = true;
    userlist_match_t m;
    const char *which = NULL;
    vd_reason_t lr = VR_NOT_CHECKED;
    if (e->o.allow && userlist_match(e->o.allow, &r->addr, &m)) {
        which = "allow";
        lr = VR_ALLOW_LISTED;
    } else if (e->o.deny && userlist_match(e->o.deny, &r->addr, &m)) {
        which = "deny";
        lr = VR_DENY_LISTED;
    }
    if (which) {
        /* the user's own lists decide before any network call; allow wins over deny */
        snprintf(r->list_match, sizeof r->list_match, "%s list %s:%u (%s %s)", which, m.file,
                 m.line, m.is_domain ? "domain" : "address", m.entry);
        vd_set(r, lr, "on your %s list: %s line %u, %s entry '%s'", which, m.file, m.line,
               m.is_domain ? "domain" : "address", m.entry);
        chk_later(j, 0, ACT_FINISH);
        return MP_OK;
    }
    if (e->o.offline) {
        vd_set(r, VR_NOT_CHECKED, "offline: syntax and address signals only, no DNS or "
               "SMTP");
        chk_later(j, 0, ACT_FINISH);
        return MP_OK;
    }
    uint64_t grey = e->o.greylist_wait_ms;
    j->grey_end_ms = j->start_ms + (grey < e->o.max_time_ms ? grey : e->o.max_time_ms);
    j->deadline = evtimer_new(e->base, on_chk_deadline, j);
    if (!j->deadline)
        mp_panic("cannot create a timer");
    struct timeval tv = {(time_t)(e->o.max_time_ms / 1000),
                         (suseconds_t)((e->o.max_time_ms % 1000) * 1000)};
    evtimer_add(j->deadline, &tv);

    if (r->addr.literal) {
        /* an address literal names the server itself (RFC 5321 §4.1.3) */
        dns_ip_t ip;
        memset(&ip, 0, sizeof ip);
        char lit[ADDR_DOMAIN_MAX + 1];
        const char *in = r->addr.domain_ascii;
        size_t n = strlen(in);
        mp_strlcpyn(lit, in + 1, n >= 2 ? n - 2 : 0, sizeof lit);
        const char *txt = strncmp(lit, "IPv6:", 5) == 0 ? lit + 5 : lit;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ip.sa;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ip.sa;
        if (inet_pton(AF_INET, txt, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            ip.salen = sizeof *s4;
        } else if (inet_pton(AF_INET6, txt, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            ip.salen = sizeof *s6;
        }
        mp_strlcpy(ip.text, txt, sizeof ip.text);
        if (!ip.salen || (!e->o.allow_private_mx &&
                          engine_addr_unroutable((const struct sockaddr *)&ip.sa))) {
            vd_set(r, VR_UNROUTABLE_MX, "the address literal %s is not a routable address",
                   in);
            chk_later(j, 0, ACT_FINISH);
            return MP_OK;
        }
        add_target(j, in, &ip);
        vd_set(r, VR_CONNECT_FAILED, "the server %s could not be reached", in);
        chk_later(j, 0, ACT_TARGET);
        return MP_OK;
    }
    chk_resolve(j);
    return MP_OK;
}
