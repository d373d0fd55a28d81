/*
 * test_fleet.c - the fleet module (src/fleet/) against a real redis-server that the test
 * starts on 127.0.0.1 on a free port (Debian's redis-server; missing, the test fails) and
 * kills by pid:
 *  - four workers (four connections) ask for leases of one (egress, server) pair 100
 *    times, holding each a few ms: the leases' intervals on Redis' own clock never
 *    overlap more than the limit, and every request is served;
 *  - a worker that dies holding a lease: the lease expires and another worker gets it;
 *  - the minimum interval between starts; a throttle halves the shared window and delays
 *    every worker by the penalty; renewing a live and an expired lease;
 *  - caps per outbound address per minute/hour/day: all or nothing, per egress and scope;
 *  - a waiter refused tells the pair's other holders that it is wanted;
 *  - wake-ups: a refusal for a full pair registers only a handle that listens, and the
 *    release wakes it with the pair's name; a release by a Redis user not allowed to
 *    publish still releases (and wakes nobody);
 *  - a command already in Redis' protocol goes as it is, binary-safe; a malformed one is
 *    refused before anything is sent;
 *  - facts: put, get from another worker with the TTL left, absent, expired; two facts
 *    read in one round trip, each to its own callback in order; the reads of one loop
 *    turn (50 domains) in one request, 128 facts at most per request;
 *  - the job queue's submitter reads results written one at a time a few at a time
 *    (a pause after a read that found some), each answered once;
 *  - a Redis with a password: AUTH on both connections, a missing or wrong one refused
 *    at open (never echoed);
 *  - Redis unreachable at open: a clear one-line error; Redis killed: requests fail with
 *    an error in their callback; Redis back (scripts forgotten): work resumes;
 *  - Redis hung (SIGSTOP): a request fails at its deadline, and the late reply after
 *    SIGCONT is dropped, not delivered twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include <hiredis/hiredis.h>

#include "fleet/fleet.h"
#include "fleet/queue.h"

#include "../fleet/redis_fixture.h"

static fleet_t *open_ok(void)
{
    char err[256] = "";
    fleet_t *f = fleet_open(base, url, 2000, err, sizeof err);
    if (!f)
        fail_msg("fleet_open: %s", err);
    return f;
}

/* ---- synchronous wrappers for step-by-step tests -------------------------------------- */

typedef struct {
    bool done;
    fleet_lease_t l;
    char err[200];
} lease_wait_t;

static void lease_cb(const fleet_lease_t *l, void *arg)
{
    lease_wait_t *w = arg;
    w->l = *l;
    w->l.error = NULL;
    if (l->error)
        snprintf(w->err, sizeof w->err, "%s", l->error);
    w->done = true;
}

static void loop_until(bool *flag)
{
    for (int i = 0; !*flag && i < 100000; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(*flag);
}

static const fleet_limits_t lim_default = {.limit = 4, .min_interval_ms = 200, .lease_ms = 10000,
                                           .penalty_ms = 500, .penalty_cap_ms = 4000};

static lease_wait_t acquire(fleet_t *f, const char *mx, const fleet_limits_t *lim)
{
    lease_wait_t w = {0};
    assert_int_equal(fleet_lease_acquire(f, "127.0.9.1", mx, lim, lease_cb, &w), MP_OK);
    loop_until(&w.done);
    return w;
}

static lease_wait_t release(fleet_t *f, const char *mx, const char *lease, fleet_outcome_t o,
                            const fleet_limits_t *lim)
{
    lease_wait_t w = {0};
    assert_int_equal(fleet_lease_release(f, "127.0.9.1", mx, lease, o, lim, lease_cb, &w), MP_OK);
    loop_until(&w.done);
    return w;
}

/* ---- many workers, one budget ---------------------------------------------------------- */

#define WORKERS 4
#define ROUNDS 25
#define LIMIT 3

typedef struct {
    uint64_t start, end;
} span_t;

static span_t spans[WORKERS * ROUNDS];
static size_t nspans, finished;
static const fleet_limits_t lim_conc = {.limit = LIMIT, .min_interval_ms = 0, .lease_ms = 10000,
                                        .penalty_ms = 100, .penalty_cap_ms = 1000};

typedef struct worker {
    fleet_t *f;
    struct event *timer;
    char lease[64];
    size_t span;
    unsigned done;
    bool holding;
} worker_t;

static void worker_try(worker_t *w);

static void on_released(const fleet_lease_t *l, void *arg)
{
    worker_t *w = arg;
    if (l->error)
        fail_msg("release: %s", l->error);
    assert_true(l->granted); /* still held: 10 s leases do not expire here */
    spans[w->span].end = l->now_ms;
    if (++w->done < ROUNDS)
        worker_try(w);
    else if (++finished == WORKERS)
        event_base_loopbreak(base);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    if (w->holding) {
        w->holding = false;
        assert_int_equal(fleet_lease_release(w->f, "127.0.9.1", "192.0.2.25", w->lease,
                                             FLEET_NEUTRAL, &lim_conc, on_released, w),
                         MP_OK);
    } else {
        worker_try(w);
    }
}

static void after_ms(worker_t *w, uint64_t ms)
{
    struct timeval tv = {0, (suseconds_t)(ms * 1000)};
    evtimer_add(w->timer, &tv);
}

static void on_acquired(const fleet_lease_t *l, void *arg)
{
    worker_t *w = arg;
    if (l->error)
        fail_msg("acquire: %s", l->error);
    if (!l->granted) {
        assert_true(l->active >= l->allowed || l->wait_ms > 0);
        after_ms(w, l->wait_ms < 2 ? 1 : 2); /* poll: a release may come before the hint */
        return;
    }
    assert_true(l->active <= LIMIT);
    assert_true(nspans < WORKERS * ROUNDS);
    w->span = nspans++;
    spans[w->span].start = l->now_ms;
    snprintf(w->lease, sizeof w->lease, "%s", l->lease);
    w->holding = true;
    after_ms(w, 3 + (uint64_t)(rand() % 6)); /* the "session" */
}

static void worker_try(worker_t *w)
{
    assert_int_equal(fleet_lease_acquire(w->f, "127.0.9.1", "192.0.2.25", &lim_conc,
                                         on_acquired, w),
                     MP_OK);
}

static int cmp_ev(const void *a, const void *b)
{
    const int64_t *x = a, *y = b; /* {time, +1 grant | -1 release} */
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return (int)(x[1] - y[1]); /* at the same ms, releases first: Redis served them first,
                                  or the grant would have been refused */
}

static void test_never_more_than_the_limit(void **state)
{
    (void)state;
    worker_t w[WORKERS];
    memset(w, 0, sizeof w);
    srand(12);
    for (int i = 0; i < WORKERS; i++) {
        w[i].f = open_ok();
        w[i].timer = evtimer_new(base, on_timer, &w[i]);
    }
    for (int i = 0; i < WORKERS; i++)
        worker_try(&w[i]);
    event_base_dispatch(base);
    assert_int_equal(finished, WORKERS);
    assert_int_equal(nspans, WORKERS * ROUNDS);
    static int64_t ev[2 * WORKERS * ROUNDS][2];
    for (size_t i = 0; i < nspans; i++) {
        assert_true(spans[i].end >= spans[i].start);
        ev[2 * i][0] = (int64_t)spans[i].start;
        ev[2 * i][1] = 1;
        ev[2 * i + 1][0] = (int64_t)spans[i].end;
        ev[2 * i + 1][1] = -1;
    }
    qsort(ev, 2 * nspans, sizeof ev[0], cmp_ev);
    int cur = 0, max = 0;
    for (size_t i = 0; i < 2 * nspans; i++) {
        cur += (int)ev[i][1];
        if (cur > max)
            max = cur;
    }
    assert_true(max <= LIMIT);
    assert_true(max >= 2); /* the workers did overlap: the limit was what held them */
    for (int i = 0; i < WORKERS; i++) {
        event_free(w[i].timer);
        fleet_free(w[i].f);
    }
}

/* ---- a dead worker's lease ------------------------------------------------------------ */

static void test_expired_lease_is_reclaimed(void **state)
{
    (void)state;
    const fleet_limits_t lim = {.limit = 1, .lease_ms = 300, .penalty_ms = 100,
                                .penalty_cap_ms = 100};
    fleet_t *dead = open_ok(), *alive = open_ok();
    lease_wait_t a = acquire(dead, "192.0.2.30", &lim);
    assert_true(a.l.granted);
    fleet_free(dead); /* dies holding it */
    lease_wait_t b = acquire(alive, "192.0.2.30", &lim);
    assert_false(b.l.granted);
    assert_true(b.l.wait_ms > 0 && b.l.wait_ms <= 300);
    assert_int_equal(b.l.active, 1);
    int tries = 0;
    do {
        usleep((useconds_t)(b.l.wait_ms + 5) * 1000);
        b = acquire(alive, "192.0.2.30", &lim);
    } while (!b.l.granted && ++tries < 10);
    assert_true(b.l.granted);
    assert_true(b.l.now_ms >= a.l.now_ms + 300);
    /* renewing: the live lease is held, the dead one is gone */
    lease_wait_t r = {0};
    assert_int_equal(fleet_lease_renew(alive, "127.0.9.1", "192.0.2.30", b.l.lease, &lim,
                                       lease_cb, &r), MP_OK);
    loop_until(&r.done);
    assert_true(r.l.granted);
    memset(&r, 0, sizeof r);
    assert_int_equal(fleet_lease_renew(alive, "127.0.9.1", "192.0.2.30", a.l.lease, &lim,
                                       lease_cb, &r), MP_OK);
    loop_until(&r.done);
    assert_false(r.l.granted);
    fleet_free(alive);
}

/* ---- interval, shared penalty and window ---------------------------------------------- */

static void test_interval_and_shared_penalty(void **state)
{
    (void)state;
    fleet_t *w1 = open_ok(), *w2 = open_ok();
    lease_wait_t a = acquire(w1, "192.0.2.40", &lim_default);
    assert_true(a.l.granted);
    assert_int_equal(a.l.allowed, 4);
    lease_wait_t b = acquire(w2, "192.0.2.40", &lim_default);
    assert_false(b.l.granted); /* 200 ms between starts, whoever asks */
    assert_true(b.l.wait_ms > 0 && b.l.wait_ms <= 200);
    usleep((useconds_t)(b.l.wait_ms + 5) * 1000);
    b = acquire(w2, "192.0.2.40", &lim_default);
    assert_true(b.l.granted);
    assert_true(b.l.now_ms >= a.l.now_ms + 200);
    assert_int_equal(b.l.active, 2);
    /* w1's server said 421: the window halves and every worker waits the penalty */
    lease_wait_t r = release(w1, "192.0.2.40", a.l.lease, FLEET_THROTTLE, &lim_default);
    assert_true(r.l.granted);
    assert_int_equal(r.l.allowed, 2);
    assert_int_equal(r.l.active, 1);
    lease_wait_t c = acquire(w2, "192.0.2.40", &lim_default);
    assert_false(c.l.granted);
    assert_true(c.l.wait_ms > 200 && c.l.wait_ms <= 500);
    /* a second throttle in a row doubles the penalty; the window does not go below 1 */
    r = release(w2, "192.0.2.40", b.l.lease, FLEET_THROTTLE, &lim_default);
    assert_int_equal(r.l.allowed, 1);
    c = acquire(w1, "192.0.2.40", &lim_default);
    assert_false(c.l.granted);
    assert_true(c.l.wait_ms > 500 && c.l.wait_ms <= 1000);
    /* a release of a lease not held says so */
    r = release(w1, "192.0.2.40", a.l.lease, FLEET_NEUTRAL, &lim_default);
    assert_false(r.l.granted);
    fleet_free(w1);
    fleet_free(w2);
}

/* ---- caps per outbound address ---------------------------------------------------------- */

typedef struct {
    bool done;
    fleet_quota_t q;
    char err[200];
} quota_wait_t;

static void quota_cb(const fleet_quota_t *q, void *arg)
{
    quota_wait_t *w = arg;
    w->q = *q;
    w->q.error = NULL;
    if (q->error)
        snprintf(w->err, sizeof w->err, "%s", q->error);
    w->done = true;
}

static fleet_quota_t take(fleet_t *f, const char *egress, const char *scope, unsigned n,
                          const fleet_caps_t *caps)
{
    quota_wait_t w = {0};
    assert_int_equal(fleet_quota_take(f, egress, scope, n, caps, quota_cb, &w), MP_OK);
    loop_until(&w.done);
    assert_string_equal(w.err, "");
    return w.q;
}

static void test_caps(void **state)
{
    (void)state;
    fleet_t *a = open_ok(), *b = open_ok();
    const fleet_caps_t per_min = {.per_minute = 3};
    /* fixed windows: keep clear of a minute's end (hours and days end with one) */
    const fleet_caps_t none = {0};
    uint64_t now = take(a, "127.0.9.9", "clock", 1, &none).now_ms;
    if (60000 - now % 60000 < 3000)
        usleep((useconds_t)(60000 - now % 60000 + 200) * 1000);
    /* two workers share the count of one address; another address counts apart */
    for (unsigned i = 1; i <= 3; i++) {
        fleet_quota_t q = take(i % 2 ? a : b, "127.0.9.1", "*", 1, &per_min);
        assert_true(q.granted);
        assert_int_equal(q.used[0], i);
        assert_int_equal(q.used[2], 0); /* no daily cap: not counted */
    }
    fleet_quota_t q = take(b, "127.0.9.1", "*", 1, &per_min);
    assert_false(q.granted);
    assert_true(q.wait_ms > 0 && q.wait_ms <= 60000);
    assert_int_equal(q.used[0], 3);
    assert_true(take(a, "127.0.9.2", "*", 1, &per_min).granted);
    /* all or nothing, per scope; the tightest window decides */
    const fleet_caps_t caps = {.per_minute = 100, .per_hour = 5, .per_day = 1000};
    q = take(a, "127.0.9.1", "google", 4, &caps);
    assert_true(q.granted);
    assert_int_equal(q.used[1], 4);
    q = take(a, "127.0.9.1", "google", 2, &caps);
    assert_false(q.granted);
    assert_true(q.wait_ms > 0 && q.wait_ms <= 3600000);
    q = take(b, "127.0.9.1", "google", 1, &caps);
    assert_true(q.granted);
    assert_int_equal(q.used[0], 5);
    assert_int_equal(q.used[1], 5);
    assert_int_equal(q.used[2], 5);
    assert_int_equal(fleet_quota_take(a, "127.0.9.1", "*", 0, &caps, quota_cb, NULL), MP_ERR_ARG);
    fleet_free(a);
    fleet_free(b);
}

/* ---- wake-ups and grants ---------------------------------------------------------------- */

typedef struct {
    bool done;      /* a wake-up, a want or a grant came */
    bool granted;   /* ... and it was a grant: */
    char pair[128];
    char lease[64];
    uint64_t delay_ms;
} wake_wait_t;

static void wake_cb(const char *pair, size_t len, void *arg)
{
    wake_wait_t *w = arg;
    snprintf(w->pair, sizeof w->pair, "%.*s", (int)len, pair);
    w->done = true;
}

static void grant_cb(const char *pair, size_t len, const char *lease, uint64_t delay_ms,
                     void *arg)
{
    wake_wait_t *w = arg;
    snprintf(w->pair, sizeof w->pair, "%.*s", (int)len, pair);
    snprintf(w->lease, sizeof w->lease, "%s", lease);
    w->delay_ms = delay_ms;
    w->granted = w->done = true;
}

/* f listens for wake-ups and grants into *got, once Redis confirmed the subscription. */
static void listen_ready(fleet_t *f, wake_wait_t *got)
{
    assert_int_equal(fleet_wake_listen(f, wake_cb, NULL, got), MP_ERR_ARG);
    assert_int_equal(fleet_wake_listen(f, wake_cb, grant_cb, got), MP_OK);
    for (int i = 0; i < 100000 && !fleet_wake_ready(f); i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(fleet_wake_ready(f));
}

static void settle(void)
{
    for (int i = 0; i < 50; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

/* A release hands the slot it frees to the oldest waiter still listening: the lease is
 * taken in the waiter's name (a refused acquire of anyone else shows it held), and it
 * renews and releases like an acquired one. A waiter gone by then gets nothing, and the
 * slot stays free. */
static void test_grants(void **state)
{
    (void)state;
    const fleet_limits_t lim1 = {.limit = 1, .lease_ms = 10000, .penalty_ms = 500,
                                 .penalty_cap_ms = 4000};
    fleet_t *holder = open_ok(), *deaf = open_ok(), *listener = open_ok();
    wake_wait_t got = {0};
    listen_ready(listener, &got);
    assert_false(fleet_wake_ready(deaf));
    lease_wait_t a = acquire(holder, "192.0.2.61", &lim1);
    assert_true(a.l.granted);
    /* refused, full: only a handle that listens is registered as a waiter */
    lease_wait_t b = acquire(deaf, "192.0.2.61", &lim1);
    assert_false(b.l.granted);
    assert_false(b.l.waiting);
    lease_wait_t c = acquire(listener, "192.0.2.61", &lim1);
    assert_false(c.l.granted);
    assert_true(c.l.waiting);
    /* the release hands the slot over, naming the pair and the lease */
    lease_wait_t rel = release(holder, "192.0.2.61", a.l.lease, FLEET_OK, &lim1);
    assert_true(rel.l.granted);
    assert_int_equal(rel.l.active, 1);
    loop_until(&got.done);
    assert_true(got.granted);
    assert_string_equal(got.pair, "127.0.9.1|192.0.2.61");
    assert_non_null(strstr(got.lease, ":g"));
    assert_int_equal(got.delay_ms, 0);
    /* it is held: the old holder is refused; it renews, and its release frees the slot */
    a = acquire(holder, "192.0.2.61", &lim1);
    assert_false(a.l.granted);
    assert_int_equal(a.l.active, 1);
    lease_wait_t rn;
    memset(&rn, 0, sizeof rn);
    assert_int_equal(fleet_lease_renew(listener, "127.0.9.1", "192.0.2.61", got.lease, &lim1,
                                       lease_cb, &rn), MP_OK);
    loop_until(&rn.done);
    assert_true(rn.l.granted);
    rel = release(listener, "192.0.2.61", got.lease, FLEET_OK, &lim1);
    assert_true(rel.l.granted);
    assert_int_equal(rel.l.active, 0);
    /* a waiter gone before the release: no grant, the slot stays free */
    a = acquire(holder, "192.0.2.61", &lim1);
    assert_true(a.l.granted);
    got = (wake_wait_t){0};
    c = acquire(listener, "192.0.2.61", &lim1);
    assert_true(c.l.waiting);
    fleet_free(listener);
    settle();
    rel = release(holder, "192.0.2.61", a.l.lease, FLEET_OK, &lim1);
    assert_int_equal(rel.l.active, 0);
    b = acquire(deaf, "192.0.2.61", &lim1);
    assert_true(b.l.granted);
    release(deaf, "192.0.2.61", b.l.lease, FLEET_OK, &lim1);
    assert_false(got.done);
    fleet_free(holder);
    fleet_free(deaf);
}

/* A slot handed over inside the minimum interval comes with what is left of it, and
 * the interval counts from the grant's start: the next acquire waits a whole interval
 * more. */
static void test_grant_waits_the_interval(void **state)
{
    (void)state;
    const fleet_limits_t lim = {.limit = 1, .min_interval_ms = 3000, .lease_ms = 10000,
                                .penalty_ms = 500, .penalty_cap_ms = 4000};
    fleet_t *holder = open_ok(), *listener = open_ok();
    wake_wait_t got = {0};
    listen_ready(listener, &got);
    lease_wait_t a = acquire(holder, "192.0.2.63", &lim);
    assert_true(a.l.granted);
    lease_wait_t c = acquire(listener, "192.0.2.63", &lim);
    assert_true(c.l.waiting);
    release(holder, "192.0.2.63", a.l.lease, FLEET_NEUTRAL, &lim);
    loop_until(&got.done);
    assert_true(got.granted);
    assert_true(got.delay_ms > 2000 && got.delay_ms <= 3000);
    release(listener, "192.0.2.63", got.lease, FLEET_NEUTRAL, &lim);
    a = acquire(holder, "192.0.2.63", &lim);
    assert_false(a.l.granted);
    assert_true(a.l.wait_ms > got.delay_ms + 2000);
    fleet_free(holder);
    fleet_free(listener);
}

/* A waiter refused tells every other holder of the pair that it is wanted ("want" on the
 * holder's subscription, not a wake-up), at most once a second; a refusal that registers
 * no waiter tells nobody, and a handle holding a lease of the pair it waits for is not
 * told about itself. */
static void test_wanted(void **state)
{
    (void)state;
    const fleet_limits_t lim2 = {.limit = 2, .lease_ms = 10000, .penalty_ms = 500,
                                 .penalty_cap_ms = 4000};
    fleet_t *holder = open_ok(), *deaf = open_ok(), *waiter = open_ok();
    wake_wait_t hwake = {0}, hwant = {0}, wwake = {0}, wwant = {0};
    listen_ready(holder, &hwake);
    fleet_want_listen(holder, wake_cb, &hwant);
    listen_ready(waiter, &wwake);
    fleet_want_listen(waiter, wake_cb, &wwant);
    lease_wait_t a = acquire(holder, "192.0.2.62", &lim2);
    lease_wait_t w1 = acquire(waiter, "192.0.2.62", &lim2);
    assert_true(a.l.granted);
    assert_true(w1.l.granted);
    /* full: a refusal without a waiter tells nobody */
    lease_wait_t b = acquire(deaf, "192.0.2.62", &lim2);
    assert_false(b.l.granted);
    settle();
    assert_false(hwant.done);
    /* the waiter, itself a holder, is refused: the other holder is told, it is not */
    lease_wait_t c = acquire(waiter, "192.0.2.62", &lim2);
    assert_false(c.l.granted);
    assert_true(c.l.waiting);
    loop_until(&hwant.done);
    assert_string_equal(hwant.pair, "127.0.9.1|192.0.2.62");
    assert_false(hwake.done); /* a want is no wake-up */
    assert_false(wwant.done);
    /* refused again within a second: the holder was just told, not again */
    hwant.done = false;
    c = acquire(waiter, "192.0.2.62", &lim2);
    assert_true(c.l.waiting);
    settle();
    assert_false(hwant.done);
    /* a second later it is told again */
    usleep(1100 * 1000);
    c = acquire(waiter, "192.0.2.62", &lim2);
    assert_true(c.l.waiting);
    loop_until(&hwant.done);
    /* the holder gives way: its release hands the slot to the waiter */
    release(holder, "192.0.2.62", a.l.lease, FLEET_OK, &lim2);
    loop_until(&wwake.done);
    assert_true(wwake.granted);
    assert_string_equal(wwake.pair, "127.0.9.1|192.0.2.62");
    assert_false(wwant.done);
    release(waiter, "192.0.2.62", w1.l.lease, FLEET_OK, &lim2);
    release(waiter, "192.0.2.62", wwake.lease, FLEET_OK, &lim2);
    fleet_free(holder);
    fleet_free(deaf);
    fleet_free(waiter);
}

/* A release by a Redis user not allowed to publish still releases; it wakes nobody. */
static void test_release_without_publish_right(void **state)
{
    (void)state;
    const fleet_limits_t lim1 = {.limit = 1, .lease_ms = 10000, .penalty_ms = 500,
                                 .penalty_cap_ms = 4000};
    char err[256], nopub[128];
    redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "ACL SETUSER nopub on >pw ~* +@all resetchannels");
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    snprintf(nopub, sizeof nopub, "redis://nopub:pw@127.0.0.1:%u", redis_port);
    fleet_t *holder = fleet_open(base, nopub, 1000, err, sizeof err);
    if (!holder)
        fail_msg("%s", err);
    fleet_t *listener = open_ok();
    wake_wait_t got = {0};
    listen_ready(listener, &got);
    lease_wait_t a = acquire(holder, "192.0.2.62", &lim1);
    assert_true(a.l.granted);
    lease_wait_t b = acquire(listener, "192.0.2.62", &lim1);
    assert_true(b.l.waiting);
    lease_wait_t rel = release(holder, "192.0.2.62", a.l.lease, FLEET_OK, &lim1);
    assert_string_equal(rel.err, "");
    assert_true(rel.l.granted);
    assert_int_equal(rel.l.active, 0);
    b = acquire(listener, "192.0.2.62", &lim1); /* as its safety poll would */
    assert_true(b.l.granted);
    assert_false(got.done);
    release(listener, "192.0.2.62", b.l.lease, FLEET_OK, &lim1);
    fleet_free(holder);
    fleet_free(listener);
    r = redisCommand(c, "ACL DELUSER nopub");
    freeReplyObject(r);
    redisFree(c);
}

/* ---- facts ------------------------------------------------------------------------------ */

typedef struct {
    bool done;
    char err[200];
    char value[256];
    bool has;
    uint64_t ttl;
} fact_wait_t;

static void fact_cb(const char *error, const char *value, size_t len, uint64_t ttl, void *arg)
{
    fact_wait_t *w = arg;
    if (error)
        snprintf(w->err, sizeof w->err, "%s", error);
    w->has = value != NULL;
    if (value)
        snprintf(w->value, sizeof w->value, "%.*s", (int)len, value);
    w->ttl = ttl;
    w->done = true;
}

static fact_wait_t fact_get(fleet_t *f, fleet_fact_t k, const char *d)
{
    fact_wait_t w = {0};
    assert_int_equal(fleet_fact_get(f, k, d, fact_cb, &w), MP_OK);
    loop_until(&w.done);
    assert_string_equal(w.err, "");
    return w;
}

static void fact_put(fleet_t *f, fleet_fact_t k, const char *d, const char *v, uint64_t ttl)
{
    fact_wait_t w = {0};
    assert_int_equal(fleet_fact_put(f, k, d, v, strlen(v), ttl, fact_cb, &w), MP_OK);
    loop_until(&w.done);
    assert_string_equal(w.err, "");
}

static void test_facts(void **state)
{
    (void)state;
    fleet_t *a = open_ok(), *b = open_ok();
    fact_put(a, FLEET_FACT_MX, "example.test", "10 mx1.example.test 192.0.2.25", 5000);
    fact_put(a, FLEET_FACT_CATCH_ALL, "example.test", "1", 100);
    fact_wait_t w = fact_get(b, FLEET_FACT_MX, "example.test");
    assert_true(w.has);
    assert_string_equal(w.value, "10 mx1.example.test 192.0.2.25");
    assert_true(w.ttl > 0 && w.ttl <= 5000);
    w = fact_get(b, FLEET_FACT_PROVIDER, "example.test");
    assert_false(w.has);
    usleep(250000);
    w = fact_get(b, FLEET_FACT_CATCH_ALL, "example.test");
    assert_false(w.has); /* its TTL ran out */
    /* two facts in one round trip: each callback its own, in order (one absent) */
    fact_wait_t two[2] = {{0}, {0}};
    fleet_fact_ask_t asks[2] = {{FLEET_FACT_CATCH_ALL, fact_cb, &two[0]},
                                {FLEET_FACT_MX, fact_cb, &two[1]}};
    assert_int_equal(fleet_facts_get(b, "example.test", asks, 2), MP_OK);
    loop_until(&two[1].done);
    assert_true(two[0].done);
    assert_string_equal(two[0].err, "");
    assert_false(two[0].has);
    assert_true(two[1].has);
    assert_string_equal(two[1].value, "10 mx1.example.test 192.0.2.25");
    assert_true(two[1].ttl > 0 && two[1].ttl <= 5000);
    assert_int_equal(fleet_facts_get(b, "example.test", asks, 0), MP_ERR_ARG);
    assert_int_equal(fleet_fact_put(a, FLEET_FACT_MX, "bad{key}", "x", 1, 1000, NULL, NULL),
                     MP_ERR_ARG);
    assert_int_equal(fleet_fact_put(a, FLEET_FACT_MX, "a.test", "x", 1, 0, NULL, NULL),
                     MP_ERR_ARG);
    fleet_free(a);
    fleet_free(b);
}

static long long cmd_calls(const char *cmd);

/* The reads asked in one turn of the loop go as one request, each callback with its own
 * answer in the order asked; past 128 facts a request is sent and the next reads start
 * another; a handle freed with reads not sent drops them (no callback). */
static void test_fact_reads_batched(void **state)
{
    (void)state;
    fleet_t *a = open_ok(), *b = open_ok();
    char d[64], v[64];
    fact_wait_t put = {0};
    for (int i = 0; i < 50; i++) { /* written as one batch */
        snprintf(d, sizeof d, "r%d.test", i);
        snprintf(v, sizeof v, "mx of %d", i);
        assert_int_equal(fleet_fact_put(a, FLEET_FACT_MX, d, v, strlen(v), 5000,
                                        i == 49 ? fact_cb : NULL, &put), MP_OK);
    }
    fleet_facts_flush(a);
    loop_until(&put.done);
    assert_string_equal(put.err, "");
    long long before = cmd_calls("evalsha");
    uint64_t batches = fleet_facts_get_batches(b);
    static fact_wait_t w[50][2];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 50; i++) { /* 100 facts: one request */
        snprintf(d, sizeof d, "r%d.test", i);
        fleet_fact_ask_t asks[2] = {{FLEET_FACT_CATCH_ALL, fact_cb, &w[i][0]},
                                    {FLEET_FACT_MX, fact_cb, &w[i][1]}};
        assert_int_equal(fleet_facts_get(b, d, asks, 2), MP_OK);
    }
    assert_false(w[0][0].done); /* nothing before the loop runs */
    loop_until(&w[49][1].done);
    for (int i = 0; i < 50; i++) {
        snprintf(v, sizeof v, "mx of %d", i);
        assert_true(w[i][0].done && w[i][1].done);
        assert_string_equal(w[i][0].err, "");
        assert_false(w[i][0].has);
        assert_true(w[i][1].has);
        assert_string_equal(w[i][1].value, v);
    }
    assert_int_equal(fleet_facts_get_batches(b) - batches, 1);
    assert_int_equal(cmd_calls("evalsha") - before, 1);

    /* 150 facts: 126 in the first request (42 domains of 3), then the rest */
    static fact_wait_t x[50][3];
    memset(x, 0, sizeof x);
    batches = fleet_facts_get_batches(b);
    for (int i = 0; i < 50; i++) {
        snprintf(d, sizeof d, "r%d.test", i);
        fleet_fact_ask_t asks[3] = {{FLEET_FACT_MX, fact_cb, &x[i][0]},
                                    {FLEET_FACT_PROVIDER, fact_cb, &x[i][1]},
                                    {FLEET_FACT_MX, fact_cb, &x[i][2]}};
        assert_int_equal(fleet_facts_get(b, d, asks, 3), MP_OK);
    }
    assert_int_equal(fleet_facts_get_batches(b) - batches, 1); /* the full one, at once */
    loop_until(&x[49][2].done);
    assert_int_equal(fleet_facts_get_batches(b) - batches, 2);
    for (int i = 0; i < 50; i++) {
        snprintf(v, sizeof v, "mx of %d", i);
        assert_string_equal(x[i][0].value, v);
        assert_false(x[i][1].has);
        assert_string_equal(x[i][2].value, v);
    }

    /* freed before the loop ran: dropped, no callback */
    fact_wait_t late = {0};
    fleet_fact_ask_t one = {FLEET_FACT_MX, fact_cb, &late};
    assert_int_equal(fleet_facts_get(b, "r1.test", &one, 1), MP_OK);
    fleet_free(b);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_false(late.done);
    fleet_free(a);
}

/* ---- commands ------------------------------------------------------------------------ */

typedef struct {
    bool done;
    char err[200];
    int type;
    char str[64];
    size_t len;
} cmd_wait_t;

static void cmd_cb(const char *error, const redisReply *r, void *arg)
{
    cmd_wait_t *w = arg;
    if (error)
        snprintf(w->err, sizeof w->err, "%s", error);
    if (r) {
        w->type = r->type;
        w->len = r->type == REDIS_REPLY_STRING ? r->len : 0;
        if (w->len && w->len <= sizeof w->str)
            memcpy(w->str, r->str, r->len);
    }
    w->done = true;
}

/* A command already in RESP (as the job queue builds them) goes as it is: bulk strings
 * carry CR, LF and NUL bytes whole; something that is not an array is refused before
 * anything is sent. */
static void test_command_resp(void **state)
{
    (void)state;
    fleet_t *f = open_ok();
    static const char set[] = "*3\r\n$3\r\nSET\r\n$7\r\nmp:t:rs\r\n$5\r\na\r\n\0b\r\n";
    cmd_wait_t w = {0};
    assert_int_equal(fleet_command_resp(f, set, sizeof set - 1, cmd_cb, &w), MP_OK);
    loop_until(&w.done);
    assert_string_equal(w.err, "");
    assert_int_equal(w.type, REDIS_REPLY_STATUS);
    const char *argv[] = {"GET", "mp:t:rs"};
    size_t lens[] = {3, 7};
    cmd_wait_t g = {0};
    assert_int_equal(fleet_command(f, 2, argv, lens, cmd_cb, &g), MP_OK);
    loop_until(&g.done);
    assert_int_equal(g.type, REDIS_REPLY_STRING);
    assert_int_equal(g.len, 5);
    assert_memory_equal(g.str, "a\r\n\0b", 5);
    cmd_wait_t x = {0};
    assert_int_equal(fleet_command_resp(f, "PING\r\n", 6, cmd_cb, &x), MP_ERR_ARG);
    assert_int_equal(fleet_command_resp(f, "*1", 2, cmd_cb, &x), MP_ERR_ARG);
    assert_int_equal(fleet_command_resp(f, set, sizeof set - 1, NULL, NULL), MP_ERR_ARG);
    assert_false(x.done);
    fleet_free(f);
}

/* calls= of one command in INFO commandstats (a connection of its own) */
static long long cmd_calls(const char *cmd)
{
    redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "INFO commandstats");
    assert_true(r && r->type == REDIS_REPLY_STRING);
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, key);
    long long n = p ? strtoll(p + strlen(key), NULL, 10) : 0;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* ---- the job queue: the submitter's reads of the results ------------------------------ */

#define GATHER_N 60

static unsigned gathered[GATHER_N];
static size_t ngathered;

static void gather_cb(const char *json, size_t len, void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    char want[32];
    snprintf(want, sizeof want, "{\"n\":%zu}", i);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(json, want, len);
    gathered[i]++;
    ngathered++;
}

typedef struct {
    redisContext *c;
    struct event *ev;
    size_t next;
} writer_t;

/* One finish script's entry every 2 ms, as a pool of workers finishing one batch at a
 * time writes them. */
static void write_one(evutil_socket_t fd, short what, void *arg)
{
    writer_t *wr = arg;
    (void)fd;
    (void)what;
    char row[16], res[32];
    snprintf(row, sizeof row, "%zu", wr->next);
    snprintf(res, sizeof res, "{\"n\":%zu}", wr->next);
    redisReply *r = redisCommand(wr->c, "XADD mp:job:{tgather}:done * %s %s", row, res);
    assert_true(r && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    if (++wr->next < GATHER_N) {
        struct timeval tv = {0, 2000};
        evtimer_add(wr->ev, &tv);
    }
}

static void closed_cb(void *arg)
{
    *(bool *)arg = true;
}

/* Results written one at a time every 2 ms are read a few at a time: after a read that
 * found some (and less than a full read), the next one waits 50 ms. Reading again at
 * once made one XREAD (and one wake-up) per entry: about 60 here. Every result is
 * answered once, whole. */
static void test_jobq_results_gathered(void **state)
{
    (void)state;
    char err[256] = "";
    fleet_jobq_t *q = fleet_jobq_open(base, url, "tgather", NULL, NULL, err, sizeof err);
    if (!q)
        fail_msg("fleet_jobq_open: %s", err);
    char addr[64];
    for (size_t i = 0; i < GATHER_N; i++) { /* a domain each: a batch each */
        snprintf(addr, sizeof addr, "a@d%zu.test", i);
        assert_int_equal(fleet_jobq_add(q, (int64_t)i, addr, gather_cb, (void *)(uintptr_t)i),
                         MP_OK);
    }
    for (int i = 0; i < 50; i++) /* the submission goes, the blocking read is sent */
        event_base_loop(base, EVLOOP_NONBLOCK);
    usleep(100 * 1000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    long long before = cmd_calls("xread");
    writer_t wr = {redisConnect("127.0.0.1", (int)redis_port), NULL, 0};
    assert_true(wr.c && !wr.c->err);
    wr.ev = evtimer_new(base, write_one, &wr);
    struct timeval tv = {0, 2000};
    evtimer_add(wr.ev, &tv);
    for (int i = 0; ngathered < GATHER_N && i < 100000; i++)
        event_base_loop(base, EVLOOP_ONCE);
    long long reads = cmd_calls("xread") - before;
    assert_int_equal(ngathered, GATHER_N);
    for (size_t i = 0; i < GATHER_N; i++)
        assert_int_equal(gathered[i], 1);
    assert_int_equal(fleet_jobq_pending(q), 0);
    print_message("%d results written 2 ms apart, read in %lld XREADs\n", GATHER_N, reads);
    assert_true(reads >= 1); /* counted at all */
    assert_true(reads <= GATHER_N / 4);
    bool closed = false;
    fleet_jobq_close(q, true, closed_cb, &closed);
    loop_until(&closed);
    event_free(wr.ev);
    redisFree(wr.c);
}

/* The writes of a moment go as one request: three writes, one EVALSHA, each callback
 * from its reply; 128 writes go at once without waiting; fleet_facts_flush sends now; a
 * handle freed with writes waiting drops them. */
static void test_fact_writes_batched(void **state)
{
    (void)state;
    fleet_t *a = open_ok(), *b = open_ok();
    fact_wait_t w[3] = {{0}, {0}, {0}};
    char d[64];
    long long before = cmd_calls("evalsha");
    for (int i = 0; i < 3; i++) {
        snprintf(d, sizeof d, "batch%d.test", i);
        assert_int_equal(fleet_fact_put(a, FLEET_FACT_MX, d, d, strlen(d), 5000, fact_cb,
                                        &w[i]), MP_OK);
    }
    assert_int_equal(fleet_facts_pending(a), 3);
    loop_until(&w[2].done);
    assert_true(w[0].done && w[1].done);
    assert_string_equal(w[0].err, "");
    assert_int_equal(fleet_facts_pending(a), 0);
    assert_int_equal(cmd_calls("evalsha"), before + 1);
    fact_wait_t g = fact_get(b, FLEET_FACT_MX, "batch1.test");
    assert_string_equal(g.value, "batch1.test");
    /* 128 waiting: sent at once */
    for (int i = 0; i < 128; i++) {
        snprintf(d, sizeof d, "many%d.test", i);
        assert_int_equal(fleet_fact_put(a, FLEET_FACT_CATCH_ALL, d, "1", 1, 5000, NULL, NULL),
                         MP_OK);
    }
    assert_int_equal(fleet_facts_pending(a), 1); /* one batch in flight, none waiting */
    for (int i = 0; i < 100000 && fleet_facts_pending(a); i++)
        event_base_loop(base, EVLOOP_ONCE);
    g = fact_get(b, FLEET_FACT_CATCH_ALL, "many127.test");
    assert_true(g.has);
    /* flushed now */
    fact_wait_t one = {0};
    assert_int_equal(fleet_fact_put(a, FLEET_FACT_MX, "now.test", "n", 1, 5000, fact_cb, &one),
                     MP_OK);
    fleet_facts_flush(a);
    assert_int_equal(fleet_facts_pending(a), 1);
    loop_until(&one.done);
    /* freed with one waiting: dropped, no callback */
    fact_wait_t dropped = {0};
    assert_int_equal(fleet_fact_put(a, FLEET_FACT_MX, "gone.test", "g", 1, 5000, fact_cb,
                                    &dropped), MP_OK);
    fleet_free(a);
    settle();
    assert_false(dropped.done);
    g = fact_get(b, FLEET_FACT_MX, "gone.test");
    assert_false(g.has);
    fleet_free(b);
}

/* ---- Redis away ------------------------------------------------------------------------- */

static void test_urls(void **state)
{
    (void)state;
    fleet_url_t u;
    char err[256];
    assert_int_equal(fleet_url_parse("redis://10.0.0.5:6380/3", &u, err, sizeof err), MP_OK);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_int_equal(fleet_url_parse("redis://cache.internal", &u, err, sizeof err), MP_OK);
    assert_int_equal(u.port, 6379);
    assert_int_equal(fleet_url_parse("redis://[::1]:7000", &u, err, sizeof err), MP_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(fleet_url_parse("redis://:p%40ss@cache:6390/2", &u, err, sizeof err), MP_OK);
    assert_string_equal(u.user, "");
    assert_string_equal(u.pass, "p@ss");
    assert_string_equal(u.host, "cache");
    assert_int_equal(fleet_url_parse("redis://worker:s3cret@[::1]", &u, err, sizeof err), MP_OK);
    assert_string_equal(u.user, "worker");
    assert_string_equal(u.pass, "s3cret");
    assert_int_equal(fleet_url_parse("redis://s3cret@cache", &u, err, sizeof err), MP_ERR_ARG);
    assert_null(strstr(err, "s3cret")); /* a password is never echoed */
    const char *bad[] = {"http://x", "redis://", "redis://h:0", "redis://h:99999",
                         "redis://h/16", "redis://h/x", "redis://[::1", "redis://h:",
                         "redis://u:@h", "redis://u:%zz@h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fleet_url_parse(bad[i], &u, err, sizeof err) != MP_ERR_ARG)
            fail_msg("'%s' was taken", bad[i]);
}

static void test_unreachable_and_back(void **state)
{
    (void)state;
    char err[256], want[128], other[64];
    unsigned port = free_port();
    snprintf(other, sizeof other, "redis://127.0.0.1:%u", port);
    assert_null(fleet_open(base, other, 1000, err, sizeof err));
    snprintf(want, sizeof want, "redis 127.0.0.1:%u: Connection refused", port);
    assert_string_equal(err, want);
    assert_null(fleet_open(base, "redis://127.0.0.1:99999", 1000, err, sizeof err));
    assert_non_null(strstr(err, "not a Redis URL"));

    fleet_t *f = open_ok();
    const fleet_limits_t lim = {.limit = 2, .lease_ms = 1000};
    assert_true(acquire(f, "192.0.2.50", &lim).l.granted);
    redis_kill(SIGKILL); /* lost mid-way */
    lease_wait_t w = {0};
    mp_status_t st = fleet_lease_acquire(f, "127.0.9.1", "192.0.2.50", &lim, lease_cb, &w);
    if (st == MP_OK) {
        loop_until(&w.done);
        assert_true(w.err[0] != '\0'); /* an error, never a grant */
        assert_false(w.l.granted);
    } else {
        assert_int_equal(st, MP_ERR_IO);
    }
    redis_start(); /* back, empty: no scripts, no leases */
    lease_wait_t g = {0};
    for (int i = 0; i < 20 && !g.l.granted; i++) {
        memset(&g, 0, sizeof g);
        if (fleet_lease_acquire(f, "127.0.9.1", "192.0.2.50", &lim, lease_cb, &g) == MP_OK)
            loop_until(&g.done);
        else
            usleep(50000);
    }
    assert_true(g.l.granted); /* reconnected, script sent again after NOSCRIPT */
    assert_string_equal(g.err, "");
    fleet_free(f);
}

/* Redis with a password: AUTH first, on both connections; a wrong or missing one is a
 * clear error at open. */
static void test_password(void **state)
{
    (void)state;
    char err[256], with[128], wrong[128];
    redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "CONFIG SET requirepass s3cret");
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_null(fleet_open(base, url, 1000, err, sizeof err));
    assert_non_null(strstr(err, "NOAUTH"));
    snprintf(wrong, sizeof wrong, "redis://:nope@127.0.0.1:%u", redis_port);
    assert_null(fleet_open(base, wrong, 1000, err, sizeof err));
    assert_non_null(strstr(err, "AUTH: WRONGPASS"));
    assert_null(strstr(err, "nope"));
    snprintf(with, sizeof with, "redis://:s3cret@127.0.0.1:%u/1", redis_port);
    fleet_t *f = fleet_open(base, with, 1000, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    const fleet_limits_t lim = {.limit = 1, .lease_ms = 1000};
    lease_wait_t w = acquire(f, "192.0.2.70", &lim); /* the async connection authenticated */
    assert_string_equal(w.err, "");
    assert_true(w.l.granted);
    fleet_free(f);
    r = redisCommand(c, "AUTH s3cret");
    freeReplyObject(r);
    r = redisCommand(c, "CONFIG SET requirepass %s", "");
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

static unsigned hung_calls;

static void hung_cb(const fleet_lease_t *l, void *arg)
{
    lease_cb(l, arg);
    hung_calls++;
}

static void test_hung_redis(void **state)
{
    (void)state;
    char err[256];
    fleet_t *f = fleet_open(base, url, 300, err, sizeof err);
    assert_non_null(f);
    const fleet_limits_t lim = {.limit = 2, .lease_ms = 1000};
    kill(redis_pid, SIGSTOP);
    lease_wait_t w = {0};
    assert_int_equal(fleet_lease_acquire(f, "127.0.9.1", "192.0.2.60", &lim, hung_cb, &w),
                     MP_OK);
    loop_until(&w.done);
    assert_string_equal(w.err, "no answer from Redis within 300 ms");
    assert_false(w.l.granted);
    kill(redis_pid, SIGCONT);
    lease_wait_t g = acquire(f, "192.0.2.60", &lim); /* answered after the late one */
    assert_string_equal(g.err, "");
    assert_true(g.l.granted);
    assert_int_equal(hung_calls, 1); /* the late reply called nobody */
    fleet_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_never_more_than_the_limit),
        cmocka_unit_test(test_expired_lease_is_reclaimed),
        cmocka_unit_test(test_interval_and_shared_penalty),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_grants),
        cmocka_unit_test(test_grant_waits_the_interval),
        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_release_without_publish_right),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_fact_writes_batched),
        cmocka_unit_test(test_fact_reads_batched),
        cmocka_unit_test(test_command_resp),
        cmocka_unit_test(test_jobq_results_gathered),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_hung_redis),
        cmocka_unit_test(test_unreachable_and_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
