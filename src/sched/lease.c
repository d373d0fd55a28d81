/*
 * lease.c - the engine's side of the fleet lease, and the shared facts' text form.
 * See lease.h; the contract of the scripts is in docs/internals/fleet.md.
 *
 * Every answer from Redis names a record that lives as long as the pool (a pair, or a
 * hold kept in the pool's list until its last answer came), so an answer never reaches
 * freed memory; fleet_free() drops the answers still to come, then lease_pool_free()
 * frees the records.
 */
#include "sched/lease.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/strmap.h"

typedef struct pair {
    lease_pool_t *p;
    char egress[320], ip[64];
    bool asking;            /* an acquire (or its quota) is in flight */
    char granted[64];       /* granted, its quota being taken */
    uint64_t granted_delay; /* ... usable this long after the quota's answer */
    char ready[64];         /* granted and not taken by a session yet */
    uint64_t ready_at;      /* ... and no session starts with it before this (mp_now_ms) */
    uint64_t wait_until;    /* no request before this (mp_now_ms) */
    uint64_t wanted_until;  /* another process waits for this pair until then */
    struct event *ready_ev; /* gives an untaken lease back */
} pair_t;

struct lease_hold {
    lease_pool_t *p;
    char egress[320], ip[64], lease[64];
    struct event *renew_ev;
    unsigned renewing;      /* renewals in flight */
    bool lost, ended;
    lease_hold_t *next, *prev;
};

struct lease_pool {
    struct event_base *base;
    fleet_t *f;
    lease_cfg_t cfg;
    void (*wake)(void *arg);
    void (*want)(void *arg);
    void *arg;
    strmap_t *pairs;        /* "egress|ip" -> pair_t */
    lease_hold_t *holds;    /* every hold alive or waiting for an answer */
    unsigned inflight;      /* releases and renewals not answered yet */
    unsigned asking;        /* pairs with an acquire (or its quota) in flight */
    unsigned ready;         /* granted leases not taken yet */
    uint64_t calls;         /* requests sent */
    uint64_t grants;        /* leases handed over by another process's release */
    bool draining;          /* nothing pending: leases handed over go back at once */
    uint64_t down_until;    /* Redis failed: no request before this */
    uint64_t backoff_ms;    /* 0 while Redis answers */
    unsigned safety_ms;     /* the safety poll of a pair waiting for a wake-up */
    uint32_t jitter;        /* xorshift state for the safety poll's jitter */
};

static bool caps_set(const fleet_caps_t *c)
{
    return c->per_minute || c->per_hour || c->per_day;
}

/* Redis failed: wait 1 s, doubling to 30 s, before any pair asks again. The sessions
 * open keep their leases (they expire by themselves); none starts meanwhile. */
static void pool_redis_failed(lease_pool_t *p, const char *why)
{
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 1000;
    if (p->backoff_ms > LEASE_BACKOFF_MAX_MS)
        p->backoff_ms = LEASE_BACKOFF_MAX_MS;
    p->down_until = mp_now_ms() + p->backoff_ms;
    mp_log(MP_LOG_WARN, "fleet: %s; no new session for %llu ms", why,
           (unsigned long long)p->backoff_ms);
}

static void pool_redis_ok(lease_pool_t *p)
{
    if (p->backoff_ms)
        mp_log(MP_LOG_INFO, "fleet: Redis answers again");
    p->backoff_ms = 0;
    p->down_until = 0;
}

static void on_release(const fleet_lease_t *l, void *arg)
{
    lease_pool_t *p = arg;
    p->inflight--;
    if (l->error)
        mp_log(MP_LOG_DEBUG, "fleet: release: %s (the lease expires by itself)", l->error);
}

static void pool_release(lease_pool_t *p, const char *egress, const char *ip,
                         const char *lease, fleet_outcome_t o)
{
    if (fleet_lease_release(p->f, egress, ip, lease, o, &p->cfg.lim, on_release, p) == MP_OK) {
        p->inflight++;
        p->calls++;
    }
}

/* ---- acquire ---------------------------------------------------------------------- */

/* The one place pr->asking changes: the pool counts them. */
static void pair_asking(pair_t *pr, bool on)
{
    if (pr->asking != on)
        pr->p->asking += on ? 1 : (unsigned)-1;
    pr->asking = on;
}

static void pair_unready(pair_t *pr)
{
    if (pr->ready[0])
        pr->p->ready--;
    pr->ready[0] = '\0';
    evtimer_del(pr->ready_ev);
}

/* A lease granted, usable from delay_ms on (a grant handed over inside the minimum
 * interval): ready for the next take. */
static void pair_ready(pair_t *pr, const char *lease, uint64_t delay_ms)
{
    if (!pr->ready[0])
        pr->p->ready++;
    mp_strlcpy(pr->ready, lease, sizeof pr->ready);
    pr->ready_at = mp_now_ms() + delay_ms;
    /* a lease nobody takes within a second of being usable (the check went elsewhere)
     * goes back */
    uint64_t ms = delay_ms + 1000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(pr->ready_ev, &tv);
    pr->p->wake(pr->p->arg);
}

static void on_ready_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pair_t *pr = arg;
    if (!pr->ready[0])
        return;
    pool_release(pr->p, pr->egress, pr->ip, pr->ready, FLEET_NEUTRAL);
    pair_unready(pr);
}

static void on_quota(const fleet_quota_t *q, void *arg)
{
    pair_t *pr = arg;
    lease_pool_t *p = pr->p;
    pair_asking(pr, false);
    if (q->error || !q->granted) {
        pool_release(p, pr->egress, pr->ip, pr->granted, FLEET_NEUTRAL);
        pr->granted[0] = '\0';
        if (q->error) {
            pool_redis_failed(p, q->error);
        } else {
            pr->wait_until = mp_now_ms() + q->wait_ms;
            mp_log(MP_LOG_INFO, "fleet: %s has used its sessions cap; next in %llu s",
                   pr->egress, (unsigned long long)(q->wait_ms / 1000));
        }
        p->wake(p->arg);
        return;
    }
    pool_redis_ok(p);
    pair_ready(pr, pr->granted, pr->granted_delay);
    pr->granted[0] = '\0';
}

/* The safety poll of a pair waiting for a wake-up: 75-100 % of safety_ms, spread so
 * that the processes of a fleet do not ask in step. */
static uint64_t pool_safety_ms(lease_pool_t *p)
{
    uint32_t x = p->jitter;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p->jitter = x;
    uint64_t s = p->safety_ms;
    return s - s / 4 + (s / 4 ? x % (s / 4 + 1) : 0);
}

/* A lease for the pair, from an acquire or handed over by a release: with caps, its
 * quota is taken first; then it is ready. */
static void pair_granted(pair_t *pr, const char *lease, uint64_t delay_ms)
{
    lease_pool_t *p = pr->p;
    if (caps_set(&p->cfg.caps)) {
        mp_strlcpy(pr->granted, lease, sizeof pr->granted);
        pr->granted_delay = delay_ms;
        if (fleet_quota_take(p->f, pr->egress, "*", 1, &p->cfg.caps, on_quota, pr) == MP_OK) {
            pair_asking(pr, true);
            p->calls++;
            return;
        }
        pool_release(p, pr->egress, pr->ip, pr->granted, FLEET_NEUTRAL);
        pr->granted[0] = '\0';
        pool_redis_failed(p, "cannot reach Redis");
        p->wake(p->arg);
        return;
    }
    pair_ready(pr, lease, delay_ms);
}

static void on_acquire(const fleet_lease_t *l, void *arg)
{
    pair_t *pr = arg;
    lease_pool_t *p = pr->p;
    pair_asking(pr, false);
    if (l->error) {
        pool_redis_failed(p, l->error);
        p->wake(p->arg);
        return;
    }
    pool_redis_ok(p);
    if (!l->granted) {
        /* full: a release usually comes before the earliest expiry; registered as a
         * waiter, its wake-up asks again (on_fleet_wake), else ask again soon. An
         * interval or a penalty: wait_ms exactly */
        uint64_t w = l->wait_ms;
        uint64_t poll = l->waiting ? pool_safety_ms(p) : LEASE_POLL_MS;
        if (l->active >= l->allowed && w > poll)
            w = poll;
        pr->wait_until = mp_now_ms() + w;
        p->wake(p->arg);
        return;
    }
    pair_granted(pr, l->lease, 0);
}

/* Send the pair's acquire: MP_OK (the answer comes to on_acquire), MP_ERR_ARG (a name
 * Redis keys cannot hold), else Redis is unreachable (the pool backs off). */
static mp_status_t pair_acquire(pair_t *pr)
{
    lease_pool_t *p = pr->p;
    mp_status_t st = fleet_lease_acquire(p->f, pr->egress, pr->ip, &p->cfg.lim, on_acquire,
                                         pr);
    if (st == MP_OK) {
        pair_asking(pr, true);
        p->calls++;
    } else if (st != MP_ERR_ARG) {
        pool_redis_failed(p, "cannot reach Redis");
    }
    return st;
}

static pair_t *pair_get(lease_pool_t *p, const char *egress, const char *ip)
{
    char key[400];
    snprintf(key, sizeof key, "%s|%s", egress, ip);
    pair_t *pr = strmap_get(p->pairs, key);
    if (pr)
        return pr;
    pr = calloc(1, sizeof *pr);
    if (!pr)
        return NULL;
    pr->p = p;
    mp_strlcpy(pr->egress, egress, sizeof pr->egress);
    mp_strlcpy(pr->ip, ip, sizeof pr->ip);
    pr->ready_ev = evtimer_new(p->base, on_ready_timer, pr);
    if (!pr->ready_ev || !strmap_put(p->pairs, key, pr)) {
        if (pr->ready_ev)
            event_free(pr->ready_ev);
        free(pr);
        return NULL;
    }
    return pr;
}

bool lease_pool_take(lease_pool_t *p, const char *egress, const char *ip, char *lease,
                     size_t size, uint64_t now, uint64_t *retry_at)
{
    pair_t *pr = pair_get(p, egress, ip);
    if (!pr) {
        *retry_at = now + LEASE_POLL_MS;
        return false;
    }
    if (pr->ready[0]) {
        if (pr->ready_at > now) { /* handed over inside the minimum interval */
            *retry_at = pr->ready_at;
            return false;
        }
        mp_strlcpy(lease, pr->ready, size);
        pair_unready(pr);
        return true;
    }
    if (pr->asking)
        return false; /* the answer wakes the owner */
    uint64_t w = pr->wait_until > p->down_until ? pr->wait_until : p->down_until;
    if (w > now) {
        *retry_at = w;
        return false;
    }
    mp_status_t st = pair_acquire(pr);
    if (st == MP_ERR_ARG) {
        /* a name Redis keys cannot hold: the local limits alone */
        mp_log(MP_LOG_WARN, "fleet: no lease for %s to %s (name too long); local limits only",
               egress, ip);
        lease[0] = '\0';
        return true;
    }
    if (st != MP_OK) {
        *retry_at = p->down_until;
        return false;
    }
    return false;
}

/* The pair a message from Redis names ("egress|ip", len bytes), if we know it. */
static pair_t *pair_named(lease_pool_t *p, const char *name, size_t len)
{
    char key[400];
    if (len >= sizeof key)
        return NULL;
    memcpy(key, name, len);
    key[len] = '\0';
    return strmap_get(p->pairs, key);
}

/* A release freed a slot of the pair while we waited: ask now rather than at the safety
 * poll. A grant nobody takes goes back within a second (on_ready_timer), and that
 * release wakes the next waiter. */
static void on_fleet_wake(const char *name, size_t len, void *arg)
{
    lease_pool_t *p = arg;
    pair_t *pr = pair_named(p, name, len);
    if (!pr || pr->asking || pr->ready[0] || pr->granted[0] || p->down_until > mp_now_ms())
        return;
    pr->wait_until = 0;
    (void)pair_acquire(pr);
}

/* A release handed us the slot it freed (we were the pair's oldest waiter): it is ours
 * like an acquired lease. A pair already asking or holding a lease not taken yet, or a
 * pool with nothing pending any more (lease_pool_drop_ready), gives it back at once, and
 * that release hands it to the next waiter. */
static void on_fleet_grant(const char *name, size_t len, const char *lease, uint64_t delay_ms,
                           void *arg)
{
    lease_pool_t *p = arg;
    pair_t *pr = pair_named(p, name, len);
    if (!pr) { /* not a pair of ours (cannot be: we waited for it); give it back */
        char key[400];
        size_t bar = len;
        while (bar > 0 && name[bar - 1] != '|')
            bar--;
        if (bar > 1 && bar < len && len < sizeof key) { /* "egress|ip": the ip has no '|' */
            memcpy(key, name, len);
            key[len] = '\0';
            key[bar - 1] = '\0';
            pool_release(p, key, key + bar, lease, FLEET_NEUTRAL);
        }
        return;
    }
    if (pr->asking || pr->granted[0] || pr->ready[0] || p->draining) {
        pool_release(p, pr->egress, pr->ip, lease, FLEET_NEUTRAL);
        return;
    }
    pool_redis_ok(p);
    p->grants++;
    pr->wait_until = 0; /* no longer a waiter: its next check asks at once */
    pair_granted(pr, lease, delay_ms);
}

/* Another process was refused a pair of which we hold a lease (fleet_want_listen). */
static void on_fleet_want(const char *name, size_t len, void *arg)
{
    lease_pool_t *p = arg;
    pair_t *pr = pair_named(p, name, len);
    if (!pr)
        return;
    pr->wanted_until = mp_now_ms() + LEASE_WANT_MS;
    if (p->want)
        p->want(p->arg);
}

void lease_pool_on_want(lease_pool_t *p, void (*want)(void *arg))
{
    if (p)
        p->want = want;
}

unsigned lease_pool_inflight(const lease_pool_t *p)
{
    return p ? p->inflight + p->asking + p->ready : 0;
}

static void pair_drop_ready(const char *key, void *v, void *arg)
{
    (void)key;
    (void)arg;
    on_ready_timer(-1, 0, v);
}

void lease_pool_drop_ready(lease_pool_t *p)
{
    if (!p)
        return;
    p->draining = true;
    if (p->ready)
        strmap_each(p->pairs, pair_drop_ready, NULL);
}

void lease_pool_safety_set(lease_pool_t *p, unsigned ms)
{
    if (p && ms)
        p->safety_ms = ms;
}

uint64_t lease_pool_calls(const lease_pool_t *p)
{
    return p ? p->calls : 0;
}

uint64_t lease_pool_grants(const lease_pool_t *p)
{
    return p ? p->grants : 0;
}

/* ---- holds: renew while open, release at close ----------------------------------- */

static void hold_unlink_free(lease_hold_t *h)
{
    lease_pool_t *p = h->p;
    if (h->prev)
        h->prev->next = h->next;
    else
        p->holds = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (h->renew_ev)
        event_free(h->renew_ev);
    free(h);
}

static void hold_arm(lease_hold_t *h)
{
    uint64_t ms = h->p->cfg.lim.lease_ms / 3;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(h->renew_ev, &tv);
}

static void on_renew(const fleet_lease_t *l, void *arg)
{
    lease_hold_t *h = arg;
    h->renewing--;
    h->p->inflight--;
    if (l->error) {
        /* Redis lost: the lease will expire there, so the session must not outlive it
         * carrying new batches */
        h->lost = true;
        pool_redis_failed(h->p, l->error);
    } else if (!l->granted) {
        h->lost = true;
        mp_log(MP_LOG_WARN, "fleet: the lease for %s to %s expired; the session ends "
               "after its batch", h->egress, h->ip);
    }
    if (h->ended && !h->renewing)
        hold_unlink_free(h);
}

static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lease_hold_t *h = arg;
    lease_pool_t *p = h->p;
    if (fleet_lease_renew(p->f, h->egress, h->ip, h->lease, &p->cfg.lim, on_renew, h) ==
        MP_OK) {
        h->renewing++;
        p->inflight++;
        p->calls++;
    } else {
        h->lost = true;
    }
    hold_arm(h);
}

lease_hold_t *lease_hold_new(lease_pool_t *p, const char *egress, const char *ip,
                             const char *lease)
{
    if (!p || !lease || !lease[0])
        return NULL;
    lease_hold_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->p = p;
    mp_strlcpy(h->egress, egress, sizeof h->egress);
    mp_strlcpy(h->ip, ip, sizeof h->ip);
    mp_strlcpy(h->lease, lease, sizeof h->lease);
    h->renew_ev = evtimer_new(p->base, on_renew_timer, h);
    if (!h->renew_ev) {
        free(h);
        return NULL;
    }
    h->next = p->holds;
    if (p->holds)
        p->holds->prev = h;
    p->holds = h;
    hold_arm(h);
    return h;
}

bool lease_hold_lost(const lease_hold_t *h)
{
    return h && h->lost;
}

bool lease_hold_wanted(const lease_hold_t *h)
{
    if (!h || h->ended)
        return false;
    char key[400];
    snprintf(key, sizeof key, "%s|%s", h->egress, h->ip);
    const pair_t *pr = strmap_get(h->p->pairs, key);
    return pr && pr->wanted_until > mp_now_ms();
}

void lease_hold_end(lease_hold_t *h, fleet_outcome_t o)
{
    if (!h)
        return;
    evtimer_del(h->renew_ev);
    pool_release(h->p, h->egress, h->ip, h->lease, o);
    h->ended = true;
    if (!h->renewing)
        hold_unlink_free(h);
}

/* ---- the pool ---------------------------------------------------------------------- */

lease_pool_t *lease_pool_new(struct event_base *base, fleet_t *f, const lease_cfg_t *cfg,
                             void (*wake)(void *arg), void *arg)
{
    lease_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->f = f;
    p->cfg = *cfg;
    if (!p->cfg.lim.lease_ms)
        p->cfg.lim.lease_ms = LEASE_MS_DEFAULT;
    p->safety_ms = LEASE_SAFETY_MS;
    p->jitter = (uint32_t)mp_now_ms() ^ (uint32_t)(uintptr_t)p;
    if (!p->jitter)
        p->jitter = 1;
    p->wake = wake;
    p->arg = arg;
    p->pairs = strmap_new();
    if (!p->pairs) {
        free(p);
        return NULL;
    }
    /* wake-ups: without them (not subscribed yet) a full pair is asked every 100 ms */
    fleet_want_listen(f, on_fleet_want, p);
    if (fleet_wake_listen(f, on_fleet_wake, on_fleet_grant, p) != MP_OK)
        mp_log(MP_LOG_DEBUG, "fleet: no wake-up subscription yet; the next acquire tries");
    return p;
}

static void pair_free(void *v)
{
    pair_t *pr = v;
    event_free(pr->ready_ev);
    free(pr);
}

void lease_pool_free(lease_pool_t *p)
{
    if (!p)
        return;
    while (p->holds)
        hold_unlink_free(p->holds);
    strmap_free(p->pairs, pair_free);
    free(p);
}

/* ---- facts as text ----------------------------------------------------------------- */

/* Copy s into out with tabs and line ends made spaces. */
static void field_clean(const char *s, char *out, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = (s[i] == '\t' || s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    out[i] = '\0';
}

size_t lease_fact_encode(const facts_domain_t *f, char *buf, size_t size)
{
    char host[256], rcpt[320], enh[16], text[512];
    field_clean(f->mx_host, host, sizeof host);
    field_clean(f->probe_rcpt, rcpt, sizeof rcpt);
    field_clean(f->probe_enh, enh, sizeof enh);
    field_clean(f->probe_text, text, sizeof text);
    /* the flag: 1 catch-all, 0 not (the probe refused), t not (told apart: an address of
     * the domain refused as unknown; no address or text is kept for it) */
    int n = snprintf(buf, size, "v1\t%s\t%d\t%s\t%s\t%s\t%s",
                     f->catch_all ? "1" : f->told_apart ? "t" : "0", f->probe_code, host,
                     f->told_apart ? "" : rcpt, enh, f->told_apart ? "" : text);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* The next tab-separated field of [*s, end) into out (size bytes); false when it does
 * not fit or (unless last) no tab ends it. */
static bool field_next(const char **s, const char *end, char *out, size_t size, bool last)
{
    const char *t = last ? end : memchr(*s, '\t', (size_t)(end - *s));
    if (!t)
        return false;
    size_t n = (size_t)(t - *s);
    if (n >= size || memchr(*s, '\0', n))
        return false;
    memcpy(out, *s, n);
    out[n] = '\0';
    *s = last ? end : t + 1;
    return true;
}

bool lease_fact_decode(const char *s, size_t len, facts_domain_t *out)
{
    const char *end = s + len;
    char v[4], ca[4], code[8];
    facts_domain_t f;
    memset(&f, 0, sizeof f);
    uint64_t c;
    if (!field_next(&s, end, v, sizeof v, false) || strcmp(v, "v1") != 0 ||
        !field_next(&s, end, ca, sizeof ca, false) ||
        (strcmp(ca, "0") && strcmp(ca, "1") && strcmp(ca, "t")) ||
        !field_next(&s, end, code, sizeof code, false) || !mp_parse_uint(code, 0, 599, &c) ||
        !field_next(&s, end, f.mx_host, sizeof f.mx_host, false) ||
        !field_next(&s, end, f.probe_rcpt, sizeof f.probe_rcpt, false) ||
        !field_next(&s, end, f.probe_enh, sizeof f.probe_enh, false) ||
        !field_next(&s, end, f.probe_text, sizeof f.probe_text, true))
        return false;
    f.catch_all = ca[0] == '1';
    f.told_apart = ca[0] == 't';
    f.probe_code = (int)c;
    *out = f;
    return true;
}

/* ---- MX answers as text --------------------------------------------------------- */

static bool mx_shared_status(dns_status_t st)
{
    return st == DNS_OK || st == DNS_NODATA || st == DNS_NXDOMAIN;
}

size_t lease_mx_encode(const dns_mail_t *m, char *buf, size_t size)
{
    size_t pos = 0;
    if (!mx_shared_status(m->status) || m->nmx > DNS_MX_MAX ||
        !mp_appendf(buf, size, &pos, "m1\t%d\t%d\t%d\t%d\t%d", (int)m->status,
                    m->null_mx ? 1 : 0, m->implicit_mx ? 1 : 0, m->spf ? 1 : 0,
                    m->dmarc ? 1 : 0))
        return 0;
    for (size_t i = 0; i < m->nmx; i++) {
        const dns_mx_t *x = &m->mx[i];
        if (!dns_name_valid(x->host) || x->nip > DNS_IP_MAX ||
            !mp_appendf(buf, size, &pos, "\n%u\t%s\t%d\t", x->pref, x->host, (int)x->status))
            return 0;
        for (size_t k = 0; k < x->nip; k++)
            if (!mp_appendf(buf, size, &pos, "%s%s", k ? "," : "", x->ip[k].text))
                return 0;
    }
    return pos;
}

/* "0" or "1" into *b. */
static bool flag_parse(const char *s, bool *b)
{
    if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
        return false;
    *b = s[0] == '1';
    return true;
}

/* A printable address into a dns_ip_t (port 0). */
static bool ip_parse(const char *s, dns_ip_t *ip)
{
    memset(ip, 0, sizeof *ip);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ip->sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ip->sa;
    if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        ip->salen = sizeof *s4;
    } else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        ip->salen = sizeof *s6;
    } else {
        return false;
    }
    return inet_ntop(ip->sa.ss_family, ip->sa.ss_family == AF_INET ? (void *)&s4->sin_addr
                                                                   : (void *)&s6->sin6_addr,
                     ip->text, sizeof ip->text) != NULL;
}

/* One MX line: "pref\thost\tstatus\tip,ip". */
static bool mx_line_parse(const char *s, const char *end, dns_mx_t *x)
{
    char pref[8], st[4], ips[DNS_IP_MAX * 48];
    uint64_t p, v;
    if (!field_next(&s, end, pref, sizeof pref, false) || !mp_parse_uint(pref, 0, 65535, &p) ||
        !field_next(&s, end, x->host, sizeof x->host, false) || !dns_name_valid(x->host) ||
        !field_next(&s, end, st, sizeof st, false) || !mp_parse_uint(st, 0, DNS_ERROR, &v) ||
        !field_next(&s, end, ips, sizeof ips, true))
        return false;
    x->pref = (unsigned)p;
    x->status = (dns_status_t)v;
    for (char *ip = ips, *comma; *ip; ip = comma + 1) {
        comma = strchr(ip, ',');
        if (comma)
            *comma = '\0';
        if (x->nip >= DNS_IP_MAX || !ip_parse(ip, &x->ip[x->nip]))
            return false;
        x->nip++;
        if (!comma)
            break;
    }
    return true;
}

bool lease_mx_decode(const char *s, size_t len, dns_mail_t *out)
{
    memset(out, 0, sizeof *out);
    const char *end = s + len;
    const char *nl = memchr(s, '\n', len);
    const char *hend = nl ? nl : end;
    char v[4], st[4], f[4][4];
    uint64_t stv;
    if (!field_next(&s, hend, v, sizeof v, false) || strcmp(v, "m1") != 0 ||
        !field_next(&s, hend, st, sizeof st, false) || !mp_parse_uint(st, 0, DNS_ERROR, &stv) ||
        !mx_shared_status((dns_status_t)stv))
        goto bad;
    for (int i = 0; i < 4; i++)
        if (!field_next(&s, hend, f[i], sizeof f[i], i == 3))
            goto bad;
    out->status = (dns_status_t)stv;
    if (!flag_parse(f[0], &out->null_mx) || !flag_parse(f[1], &out->implicit_mx) ||
        !flag_parse(f[2], &out->spf) || !flag_parse(f[3], &out->dmarc))
        goto bad;
    while (nl) {
        const char *line = nl + 1;
        nl = memchr(line, '\n', (size_t)(end - line));
        if (out->nmx >= DNS_MX_MAX || !mx_line_parse(line, nl ? nl : end, &out->mx[out->nmx]))
            goto bad;
        out->nmx++;
    }
    return true;
bad:
    memset(out, 0, sizeof *out);
    return false;
}
