/*
 * test_sched_lease.c - the engine's side of the fleet lease (src/sched/lease.c) against a
 * real redis-server (tests/fleet/redis_fixture.h), two pools on two connections standing
 * for two processes:
 *  - a grant is handed out once; the other process is refused while the pair is full
 *    and the release hands it the slot (the safety poll made 20 s long, and no request
 *    of its own after the refusal: the release, not a poll, brought the lease);
 *  - a slot handed over inside the minimum interval is taken only when the interval
 *    has passed; a grant the pool cannot use (unknown pair, a lease already ready) is
 *    given back at once;
 *  - a waiter that died (its subscription gone) does not hold up the live one behind it;
 *  - a lost wake-up (the waiter's entry deleted in Redis) is made up by the safety poll;
 *  - a waiter not refused again for long (its entry's time set back) is passed over;
 *  - the minimum interval: the refusal says how long to wait;
 *  - a grant nobody takes is given back (lease_pool_drop_ready) and the other gets it;
 *    the requests in flight and the untaken grants count until settled;
 *  - a renewal after the lease expired (the loop was held up) marks the session lost;
 *  - a cap per egress: the second session of the minute waits for the next window;
 *  - Redis killed: no session, a back-off of 1 s then 2 s; Redis back: granted again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <hiredis/hiredis.h>

#include "../fleet/redis_fixture.h"
#include "sched/lease.h"
#include "util/clock.h"

typedef struct {
    unsigned wakes;
    uint64_t at_ms; /* when the last wake came: the waits are measured from it */
} waker_t;

static void on_wake(void *arg)
{
    waker_t *w = arg;
    w->wakes++;
    w->at_ms = mp_now_ms();
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Run the loop until w was woken once more (at most 5 s: then the test fails). */
static void wait_wake(waker_t *w)
{
    unsigned before = w->wakes;
    bool expired = false;
    struct event *guard = evtimer_new(base, on_guard, &expired);
    struct timeval tv = {5, 0};
    evtimer_add(guard, &tv);
    while (w->wakes == before && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
    if (expired)
        fail_msg("no wake within 5 s");
}

/* Run the loop for ms milliseconds. */
static void run_for(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Run the loop until mp_now_ms() passes at (+10 ms). */
static void run_until(uint64_t at)
{
    uint64_t now = mp_now_ms();
    run_for(at > now ? (unsigned)(at - now) + 10 : 10);
}

/* Run the loop until the pool has nothing in flight (at most 5 s). */
static void settle(lease_pool_t *p)
{
    for (int i = 0; i < 500 && lease_pool_inflight(p); i++)
        run_for(10);
    assert_int_equal(lease_pool_inflight(p), 0);
}

typedef struct {
    fleet_t *f;
    lease_pool_t *p;
    waker_t w;
} proc_t;

/* A process: its pool subscribed to its wake-ups (so that a refusal registers it as a
 * waiter), the safety poll 20 s long unless the test says otherwise. */
static void proc_open(proc_t *pr, const lease_cfg_t *cfg)
{
    char err[256] = "";
    memset(pr, 0, sizeof *pr);
    pr->f = fleet_open(base, url, 2000, err, sizeof err);
    if (!pr->f)
        fail_msg("fleet_open: %s", err);
    pr->p = lease_pool_new(base, pr->f, cfg, on_wake, &pr->w);
    assert_non_null(pr->p);
    lease_pool_safety_set(pr->p, 20000);
    for (int i = 0; i < 500 && !fleet_wake_ready(pr->f); i++)
        run_for(10);
    assert_true(fleet_wake_ready(pr->f));
}

static void proc_close(proc_t *pr)
{
    fleet_free(pr->f);
    lease_pool_free(pr->p);
}

/* Take a lease for (eg, ip): ask, wait for the answer, take it. False: refused, and
 * *at is when to ask again (the answer's wait, counted from the wake). */
static bool take_now(proc_t *pr, const char *eg, const char *ip, char *lease, uint64_t *at)
{
    *at = 0;
    if (lease_pool_take(pr->p, eg, ip, lease, 64, mp_now_ms(), at))
        return true;
    if (*at)
        return false; /* waiting, no request sent */
    wait_wake(&pr->w);
    return lease_pool_take(pr->p, eg, ip, lease, 64, pr->w.at_ms, at);
}

static lease_cfg_t cfg_of(unsigned limit, unsigned interval_ms, unsigned lease_ms)
{
    lease_cfg_t c;
    memset(&c, 0, sizeof c);
    c.lim = (fleet_limits_t){limit, interval_ms, lease_ms, 1000, 60000};
    return c;
}

static void test_full_then_released(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 0, 30000);
    proc_t a, b;
    proc_open(&a, &c);
    proc_open(&b, &c);
    char la[64], lb[64];
    uint64_t at;
    assert_true(take_now(&a, "10.0.0.1", "192.0.2.1", la, &at));
    assert_true(la[0] != '\0');
    lease_hold_t *h = lease_hold_new(a.p, "10.0.0.1", "192.0.2.1", la);
    assert_non_null(h);
    /* b: refused, registered as a waiter: the next question is the safety poll's (20 s
     * here), not the lease's 30 s nor a 100 ms poll */
    assert_false(take_now(&b, "10.0.0.1", "192.0.2.1", lb, &at));
    assert_true(at >= b.w.at_ms + 15000 && at <= b.w.at_ms + 20000);
    /* the grant was handed out once: a's next acquire is refused (a waits behind b) */
    run_for(5);
    assert_false(take_now(&a, "10.0.0.1", "192.0.2.1", la, &at));
    /* another egress is another pair */
    assert_true(take_now(&b, "10.0.0.2", "192.0.2.1", lb, &at));
    lease_hold_end(lease_hold_new(b.p, "10.0.0.2", "192.0.2.1", lb), FLEET_OK);
    settle(b.p);
    /* a releases: the release hands the slot to b, whose pool wakes its owner with the
     * lease, long before any poll and with no request of its own */
    uint64_t calls = lease_pool_calls(b.p), grants = lease_pool_grants(b.p);
    unsigned wakes = b.w.wakes;
    lease_hold_end(h, FLEET_OK);
    wait_wake(&b.w);
    assert_int_equal(b.w.wakes, wakes + 1);
    assert_int_equal(lease_pool_calls(b.p), calls);
    assert_int_equal(lease_pool_grants(b.p), grants + 1);
    assert_true(lease_pool_take(b.p, "10.0.0.1", "192.0.2.1", lb, 64, mp_now_ms(), &at));
    lease_hold_end(lease_hold_new(b.p, "10.0.0.1", "192.0.2.1", lb), FLEET_OK);
    settle(a.p);
    settle(b.p);
    proc_close(&a);
    proc_close(&b);
}

static unsigned wanted_calls;
static void on_want(void *arg)
{
    (void)arg;
    wanted_calls++;
}

/* b refused for a pair a holds: a's pool is told, its hold reads "wanted" for
 * LEASE_WANT_MS (its sessions of the pair give way), then no longer; a hold of another
 * pair is not wanted. */
static void test_wanted(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 0, 30000);
    proc_t a, b;
    proc_open(&a, &c);
    proc_open(&b, &c);
    lease_pool_on_want(a.p, on_want);
    char la[64], la2[64], lb[64];
    uint64_t at;
    assert_true(take_now(&a, "10.0.0.1", "192.0.2.3", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "10.0.0.1", "192.0.2.3", la);
    assert_true(take_now(&a, "10.0.0.1", "192.0.2.4", la2, &at));
    lease_hold_t *h2 = lease_hold_new(a.p, "10.0.0.1", "192.0.2.4", la2);
    assert_false(lease_hold_wanted(h));
    wanted_calls = 0;
    assert_false(take_now(&b, "10.0.0.1", "192.0.2.3", lb, &at));
    for (int i = 0; i < 500 && !wanted_calls; i++)
        run_for(10);
    assert_int_equal(wanted_calls, 1);
    assert_true(lease_hold_wanted(h));
    assert_false(lease_hold_wanted(h2));
    assert_false(lease_hold_wanted(NULL));
    run_for(LEASE_WANT_MS + 100);
    assert_false(lease_hold_wanted(h));
    lease_hold_end(h, FLEET_OK);
    lease_hold_end(h2, FLEET_OK);
    wait_wake(&b.w); /* the release handed b the slot */
    assert_true(lease_pool_take(b.p, "10.0.0.1", "192.0.2.3", lb, 64, mp_now_ms(), &at));
    lease_hold_end(lease_hold_new(b.p, "10.0.0.1", "192.0.2.3", lb), FLEET_OK);
    settle(a.p);
    settle(b.p);
    proc_close(&a);
    proc_close(&b);
}

static void test_interval_and_untaken_grant(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(2, 2000, 30000);
    proc_t a, b;
    proc_open(&a, &c);
    proc_open(&b, &c);
    char la[64], lb[64];
    uint64_t at;
    assert_true(take_now(&a, "e1", "192.0.2.2", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "e1", "192.0.2.2", la);
    /* the interval: b waits what Redis says (2 s from a's start), not the 100 ms poll */
    assert_false(take_now(&b, "e1", "192.0.2.2", lb, &at));
    assert_true(at > b.w.at_ms + 1000 && at <= b.w.at_ms + 2000);
    lease_hold_end(h, FLEET_OK);
    settle(a.p);

    /* limit 1: a grant nobody takes counts until given back, then b has it */
    lease_cfg_t c1 = cfg_of(1, 0, 30000);
    proc_t x, y;
    proc_open(&x, &c1);
    proc_open(&y, &c1);
    at = 0;
    assert_false(lease_pool_take(x.p, "e2", "192.0.2.3", la, 64, mp_now_ms(), &at));
    assert_int_equal(lease_pool_inflight(x.p), 1); /* the acquire */
    wait_wake(&x.w);
    assert_int_equal(lease_pool_inflight(x.p), 1); /* the grant, not taken */
    assert_false(take_now(&y, "e2", "192.0.2.3", lb, &at));
    lease_pool_drop_ready(x.p);
    settle(x.p);
    run_for(LEASE_POLL_MS + 20);
    assert_true(take_now(&y, "e2", "192.0.2.3", lb, &at));
    lease_hold_end(lease_hold_new(y.p, "e2", "192.0.2.3", lb), FLEET_NEUTRAL);
    settle(y.p);
    proc_close(&a);
    proc_close(&b);
    proc_close(&x);
    proc_close(&y);
}

/* A synchronous connection to the fixture's Redis, for what no process would do; the
 * reply's first string (or array element) into out when out is not NULL. */
static void redis_run(const char *cmd, char *out, size_t size)
{
    redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    if (out) {
        const redisReply *v = r->type == REDIS_REPLY_ARRAY && r->elements ? r->element[0] : r;
        assert_int_equal(v->type, REDIS_REPLY_STRING);
        snprintf(out, size, "%s", v->str);
    }
    freeReplyObject(r);
    redisFree(c);
}

static void redis_publish(const char *channel, const char *msg)
{
    redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "PUBLISH %s %s", channel, msg);
    assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    redisFree(c);
}

/* A slot handed over inside the minimum interval: the pool has the lease at once, but
 * a take is refused until the interval has passed (retry_at says when), then it is
 * granted without another request. */
static void test_grant_inside_the_interval(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 1500, 30000);
    proc_t a, b;
    proc_open(&a, &c);
    proc_open(&b, &c);
    char la[64], lb[64];
    uint64_t at;
    assert_true(take_now(&a, "e9", "192.0.2.12", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "e9", "192.0.2.12", la);
    assert_false(take_now(&b, "e9", "192.0.2.12", lb, &at));
    uint64_t calls = lease_pool_calls(b.p);
    lease_hold_end(h, FLEET_OK);
    wait_wake(&b.w);
    uint64_t now = mp_now_ms();
    at = 0;
    assert_false(lease_pool_take(b.p, "e9", "192.0.2.12", lb, 64, now, &at));
    assert_true(at > now + 1000 && at <= now + 1500);
    run_until(at);
    assert_true(lease_pool_take(b.p, "e9", "192.0.2.12", lb, 64, mp_now_ms(), &at));
    assert_int_equal(lease_pool_calls(b.p), calls);
    lease_hold_end(lease_hold_new(b.p, "e9", "192.0.2.12", lb), FLEET_OK);
    settle(a.p);
    settle(b.p);
    proc_close(&a);
    proc_close(&b);
}

/* A grant the pool has no use for is released at once: one for a pair it already holds
 * a lease ready for, one for a pair it never asked for, one after the pool was told that
 * nothing is pending (all published by hand, as a release of another process would). */
static void test_unneeded_grant_given_back(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(2, 0, 30000);
    proc_t a;
    proc_open(&a, &c);
    char la[64], ch[64], msg[200];
    uint64_t at = 0;
    assert_false(lease_pool_take(a.p, "e10", "192.0.2.13", la, 64, mp_now_ms(), &at));
    wait_wake(&a.w); /* granted, ready, not taken */
    assert_int_equal(lease_pool_inflight(a.p), 1);
    char worker[32];
    redis_run("ZRANGE mp:lease:{e10|192.0.2.13} 0 0", worker, sizeof worker);
    *strchr(worker, ':') = '\0';
    uint64_t calls = lease_pool_calls(a.p);
    snprintf(ch, sizeof ch, "mp:wake:%s", worker);
    snprintf(msg, sizeof msg, "grant e10|192.0.2.13 %s:g1 0", worker);
    redis_publish(ch, msg);
    snprintf(msg, sizeof msg, "grant e11|192.0.2.14 %s:g2 0", worker);
    redis_publish(ch, msg);
    for (int i = 0; i < 500 && lease_pool_calls(a.p) < calls + 2; i++)
        run_for(10);
    assert_int_equal(lease_pool_calls(a.p), calls + 2); /* two releases */
    assert_int_equal(lease_pool_grants(a.p), 0);
    /* the lease ready is still the first one */
    assert_true(lease_pool_take(a.p, "e10", "192.0.2.13", la, 64, mp_now_ms(), &at));
    assert_null(strstr(la, ":g"));
    lease_hold_end(lease_hold_new(a.p, "e10", "192.0.2.13", la), FLEET_OK);
    settle(a.p);
    /* a pool with nothing pending any more gives a grant of its own pair back at once */
    lease_pool_drop_ready(a.p);
    calls = lease_pool_calls(a.p);
    snprintf(msg, sizeof msg, "grant e10|192.0.2.13 %s:g3 0", worker);
    redis_publish(ch, msg);
    for (int i = 0; i < 500 && lease_pool_calls(a.p) < calls + 1; i++)
        run_for(10);
    assert_int_equal(lease_pool_calls(a.p), calls + 1);
    settle(a.p);
    assert_int_equal(lease_pool_grants(a.p), 0);
    proc_close(&a);
}

static void test_dead_waiter(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 0, 30000);
    proc_t a, dead, b;
    proc_open(&a, &c);
    proc_open(&dead, &c);
    proc_open(&b, &c);
    char la[64], lb[64];
    uint64_t at;
    assert_true(take_now(&a, "e6", "192.0.2.9", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "e6", "192.0.2.9", la);
    /* the first waiter, then it dies (its subscription with it); b waits behind it */
    assert_false(take_now(&dead, "e6", "192.0.2.9", lb, &at));
    run_for(20);
    assert_false(take_now(&b, "e6", "192.0.2.9", lb, &at));
    proc_close(&dead);
    /* the release passes over the dead waiter (nobody heard it) and hands b the slot */
    uint64_t calls = lease_pool_calls(b.p);
    lease_hold_end(h, FLEET_OK);
    wait_wake(&b.w);
    assert_int_equal(lease_pool_calls(b.p), calls);
    assert_int_equal(lease_pool_grants(b.p), 1);
    assert_true(lease_pool_take(b.p, "e6", "192.0.2.9", lb, 64, mp_now_ms(), &at));
    lease_hold_end(lease_hold_new(b.p, "e6", "192.0.2.9", lb), FLEET_OK);
    settle(a.p);
    settle(b.p);
    proc_close(&a);
    proc_close(&b);
}

static void test_lost_wakeup(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 0, 30000);
    proc_t a, b;
    proc_open(&a, &c);
    proc_open(&b, &c);
    lease_pool_safety_set(b.p, 400);
    char la[64], lb[64];
    uint64_t at;
    assert_true(take_now(&a, "e7", "192.0.2.10", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "e7", "192.0.2.10", la);
    assert_false(take_now(&b, "e7", "192.0.2.10", lb, &at));
    assert_true(at >= b.w.at_ms + 300 && at <= b.w.at_ms + 400); /* 75-100 % of it */
    /* the wake-up is lost: Redis forgot that b waits */
    redis_run("DEL mp:wait:{e7|192.0.2.10} mp:seen:{e7|192.0.2.10}", NULL, 0);
    unsigned wakes = b.w.wakes;
    lease_hold_end(h, FLEET_OK);
    settle(a.p);
    assert_int_equal(b.w.wakes, wakes); /* nobody woke b */
    /* the safety poll asks again and gets the pair */
    run_until(at);
    assert_true(take_now(&b, "e7", "192.0.2.10", lb, &at));
    lease_hold_end(lease_hold_new(b.p, "e7", "192.0.2.10", lb), FLEET_OK);
    settle(b.p);
    proc_close(&a);
    proc_close(&b);
}

static void test_stale_waiter(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 0, 30000);
    proc_t a, stale, b;
    proc_open(&a, &c);
    proc_open(&stale, &c);
    proc_open(&b, &c);
    char la[64], lb[64], id[64], cmd[160];
    uint64_t at;
    assert_true(take_now(&a, "e8", "192.0.2.11", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "e8", "192.0.2.11", la);
    assert_false(take_now(&stale, "e8", "192.0.2.11", lb, &at));
    run_for(20);
    assert_false(take_now(&b, "e8", "192.0.2.11", lb, &at));
    /* the first waiter, alive and listening, was last refused long ago (as if it had
     * stopped asking): the release passes it over for b */
    redis_run("ZRANGE mp:wait:{e8|192.0.2.11} 0 0", id, sizeof id);
    snprintf(cmd, sizeof cmd, "HSET mp:seen:{e8|192.0.2.11} %s 1", id);
    redis_run(cmd, NULL, 0);
    unsigned stale_wakes = stale.w.wakes;
    lease_hold_end(h, FLEET_OK);
    wait_wake(&b.w);
    assert_true(lease_pool_take(b.p, "e8", "192.0.2.11", lb, 64, mp_now_ms(), &at));
    lease_hold_end(lease_hold_new(b.p, "e8", "192.0.2.11", lb), FLEET_OK);
    settle(a.p);
    settle(b.p);
    assert_int_equal(stale.w.wakes, stale_wakes);
    proc_close(&a);
    proc_close(&stale);
    proc_close(&b);
}

static void test_renewal_too_late(void **state)
{
    (void)state;
    /* a 300 ms lease is renewed every 100 ms; the loop held up 400 ms misses it */
    lease_cfg_t c = cfg_of(1, 0, 300);
    proc_t a;
    proc_open(&a, &c);
    char la[64];
    uint64_t at;
    assert_true(take_now(&a, "e3", "192.0.2.4", la, &at));
    lease_hold_t *h = lease_hold_new(a.p, "e3", "192.0.2.4", la);
    run_for(250); /* renewed in time */
    assert_false(lease_hold_lost(h));
    usleep(400000);
    run_for(250);
    assert_true(lease_hold_lost(h));
    lease_hold_end(h, FLEET_NEUTRAL);
    settle(a.p);
    proc_close(&a);
}

static void test_cap_per_egress(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(2, 0, 30000);
    c.caps.per_minute = 1;
    proc_t a;
    proc_open(&a, &c);
    char la[64];
    uint64_t at;
    assert_true(take_now(&a, "e4", "192.0.2.5", la, &at));
    lease_hold_end(lease_hold_new(a.p, "e4", "192.0.2.5", la), FLEET_OK);
    settle(a.p);
    /* the minute's one session is used (on any server): wait for the next minute */
    assert_false(take_now(&a, "e4", "192.0.2.6", la, &at));
    assert_true(at > a.w.at_ms && at <= a.w.at_ms + 60000);
    settle(a.p); /* the refused cap gave its lease back */
    proc_close(&a);
}

static void test_redis_lost_backoff(void **state)
{
    (void)state;
    lease_cfg_t c = cfg_of(1, 0, 30000);
    proc_t a;
    proc_open(&a, &c);
    char la[64];
    uint64_t at;
    redis_kill(SIGKILL);
    assert_false(take_now(&a, "e5", "192.0.2.7", la, &at));
    uint64_t now = a.w.at_ms;
    assert_true(at > now + 900 && at <= now + 1000); /* 1 s, every pair */
    uint64_t other = 0;
    assert_false(lease_pool_take(a.p, "other", "192.0.2.8", la, 64, now, &other));
    assert_int_equal(other, at);
    run_until(at);
    assert_false(take_now(&a, "e5", "192.0.2.7", la, &at)); /* still down: 2 s */
    now = a.w.at_ms;
    assert_true(at > now + 1900 && at <= now + 2000);
    redis_start();
    run_until(at);
    assert_true(take_now(&a, "e5", "192.0.2.7", la, &at)); /* a new connection */
    lease_hold_end(lease_hold_new(a.p, "e5", "192.0.2.7", la), FLEET_OK);
    settle(a.p);
    proc_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_then_released),
        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_interval_and_untaken_grant),
        cmocka_unit_test(test_grant_inside_the_interval),
        cmocka_unit_test(test_unneeded_grant_given_back),
        cmocka_unit_test(test_dead_waiter),
        cmocka_unit_test(test_lost_wakeup),
        cmocka_unit_test(test_stale_waiter),
        cmocka_unit_test(test_renewal_too_late),
        cmocka_unit_test(test_cap_per_egress),
        cmocka_unit_test(test_redis_lost_backoff),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
