/*
 * fleet.c - the shared politeness budget and domain facts in Redis; see fleet.h and
 * docs/internals/fleet.md (key layout, the scripts' contracts).
 *
 * Every decision about a (egress, server) pair is one Lua script run by Redis, which
 * runs scripts one at a time: reading the leases, checking the window and the interval,
 * and taking the slot cannot interleave with another worker's request. The scripts read
 * the time with TIME (allowed since Redis 5 replicates a script's effects, not the
 * script), so no worker's clock matters. Scripts are loaded once at open and called by
 * their SHA1; a Redis that forgot them (restarted) answers NOSCRIPT and the request is
 * sent again with the script's text.
 *
 * Ownership: each request owns copies of its arguments (req_t) and holds a reference on
 * the handle, so fleet_free() from anywhere, even inside a callback, frees the handle
 * only after hiredis has given back every request.
 */
#include "fleet/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "util/str.h"

#define NAME_MAX_LEN 200          /* egress and server names in keys */
#define FACT_MAX (64 * 1024)      /* bytes of one fact */
#define IDLE_TTL_MS 3600000       /* a pair's state outlives its last use by an hour */
#define WAITER_TTL_MS 10000       /* a waiter not refused again within this is passed over */
#define WANT_EVERY_MS 1000        /* a waiter tells the holders it waits at most this often */
#define ARGV_MAX 512        /* arguments of one request (a batch of fact writes: 3 + 3 per fact) */
#define PUTS_MAX 128         /* fact writes sent as one request */
#define PUTS_BYTES (256 * 1024) /* ... or once their values reach this */
#define PUTS_WAIT_MS 100     /* a fact write waits at most this for others to go with it */
#define GETS_MAX 128         /* fact reads sent as one request (the rest: the next one) */

/* ---- the scripts (contracts in docs/internals/fleet.md) ------------------------------ */

/* KEYS: leases (zset lease -> expiry ms), state (hash next, win, strikes), waiters (zset
 * waiter id -> first refused ms), seen (hash waiter id -> last refused ms, and
 * "<waiter id>>w" -> when it last told the holders)
 * ARGV: limit, min_interval_ms, lease_ms, lease id, idle_ttl_ms, waiter id ("" = none),
 * waiter_ttl_ms, pair name "E|M", want_every_ms -> {granted 0|1, wait_ms, now_ms, active,
 * allowed}. A waiter refused tells every other handle holding a lease of the pair that it
 * is wanted ("want E|M" on mp:wake:<holder>), at most once per want_every_ms: a holder
 * gives its idle sessions back and keeps no session for long while it is wanted. */
static const char script_acquire[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local limit = tonumber(ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local active = redis.call('ZCARD', KEYS[1])\n"
    "local st = redis.call('HMGET', KEYS[2], 'next', 'win')\n"
    "local nxt = tonumber(st[1]) or 0\n"
    "local win = tonumber(st[2]) or limit\n"
    "if win > limit then win = limit end\n"
    "local allowed = math.max(1, math.floor(win))\n"
    "if active >= allowed then\n"
    "  if ARGV[6] ~= '' then\n"
    "    local ttl = tonumber(ARGV[7])\n"
    "    redis.call('ZADD', KEYS[3], 'NX', now, ARGV[6])\n"
    "    redis.call('HSET', KEYS[4], ARGV[6], now)\n"
    "    redis.call('PEXPIRE', KEYS[3], ttl)\n"
    "    redis.call('PEXPIRE', KEYS[4], ttl)\n"
    "    local wk = ARGV[6] .. '>w'\n"
    "    local lastw = tonumber(redis.call('HGET', KEYS[4], wk)) or 0\n"
    "    if now - lastw >= tonumber(ARGV[9]) then\n"
    "      redis.call('HSET', KEYS[4], wk, now)\n"
    "      local told = {}\n"
    "      for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "        local h = string.match(id, '^([^:]+):')\n"
    "        if h and h ~= ARGV[6] and not told[h] then\n"
    "          told[h] = true\n"
    "          redis.pcall('PUBLISH', 'mp:wake:' .. h, 'want ' .. ARGV[8])\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  local wait = tonumber(first[2]) - now\n"
    "  if nxt - now > wait then wait = nxt - now end\n"
    "  return {0, wait, now, active, allowed}\n"
    "end\n"
    "if ARGV[6] ~= '' then\n"
    "  redis.call('ZREM', KEYS[3], ARGV[6])\n"
    "  redis.call('HDEL', KEYS[4], ARGV[6])\n"
    "end\n"
    "if nxt > now then return {0, nxt - now, now, active, allowed} end\n"
    "local lease_ms = tonumber(ARGV[3])\n"
    "redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[1], lease_ms + 1000)\n"
    "redis.call('HSET', KEYS[2], 'next', now + tonumber(ARGV[2]))\n"
    "redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))\n"
    "return {1, 0, now, active + 1, allowed}\n";

/* KEYS: leases, state.  ARGV: lease id, lease_ms
 * -> {held 0|1, 0, now_ms, active, 0} */
static const char script_renew[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local held = 0\n"
    "if redis.call('ZSCORE', KEYS[1], ARGV[1]) then\n"
    "  local exp = now + tonumber(ARGV[2])\n"
    "  redis.call('ZADD', KEYS[1], exp, ARGV[1])\n"
    "  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) + 1000 then\n"
    "    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)\n"
    "  end\n"
    "  held = 1\n"
    "end\n"
    "return {held, 0, now, redis.call('ZCARD', KEYS[1]), 0}\n";

/* KEYS: leases, state, waiters, seen.  ARGV: lease id, outcome ok|neutral|throttle, limit,
 * penalty_ms, penalty_cap_ms, idle_ttl_ms, waiter_ttl_ms, pair name "E|M", lease_ms,
 * min_interval_ms -> {held 0|1, 0, now_ms, active, allowed}; then each slot free goes to
 * the oldest waiter seen within waiter_ttl_ms and still subscribed: the script takes the
 * slot in the waiter's name (lease id <waiter>:g<n>, the interval counted from its start)
 * and publishes "grant E|M <lease> <delay_ms>" on mp:wake:<waiter>, delay_ms being what
 * is left of the minimum interval. The waiters it passes over are removed. A grant nobody
 * received (PUBLISH reached no one, or was refused: an ACL user without channels) is taken
 * back at once and wakes nobody; the waiters' safety poll covers it. */
static const char script_release[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local held = redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "local limit = tonumber(ARGV[3])\n"
    "local win = tonumber(redis.call('HGET', KEYS[2], 'win')) or limit\n"
    "if win > limit then win = limit end\n"
    "if ARGV[2] == 'throttle' then\n"
    "  local strikes = (tonumber(redis.call('HGET', KEYS[2], 'strikes')) or 0) + 1\n"
    "  win = math.max(1, win / 2)\n"
    "  local pen = tonumber(ARGV[4]) * 2 ^ math.min(strikes - 1, 30)\n"
    "  if pen > tonumber(ARGV[5]) then pen = tonumber(ARGV[5]) end\n"
    "  local nxt = tonumber(redis.call('HGET', KEYS[2], 'next')) or 0\n"
    "  if now + pen > nxt then redis.call('HSET', KEYS[2], 'next', now + pen) end\n"
    "  redis.call('HSET', KEYS[2], 'strikes', strikes)\n"
    "elseif ARGV[2] == 'ok' then\n"
    "  win = math.min(limit, win + 1 / win)\n"
    "  redis.call('HSET', KEYS[2], 'strikes', 0)\n"
    "end\n"
    "redis.call('HSET', KEYS[2], 'win', tostring(win))\n"
    "redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local active = redis.call('ZCARD', KEYS[1])\n"
    "local allowed = math.max(1, math.floor(win))\n"
    "local free, tries = allowed - active, 0\n"
    "local lease_ms, gap = tonumber(ARGV[9]), tonumber(ARGV[10])\n"
    "while free > 0 and tries < 16 do\n"
    "  tries = tries + 1\n"
    "  local w = redis.call('ZRANGE', KEYS[3], 0, 0)[1]\n"
    "  if not w then break end\n"
    "  local seen = tonumber(redis.call('HGET', KEYS[4], w)) or 0\n"
    "  redis.call('ZREM', KEYS[3], w)\n"
    "  redis.call('HDEL', KEYS[4], w)\n"
    "  if seen >= now - tonumber(ARGV[7]) then\n"
    "    local nxt = tonumber(redis.call('HGET', KEYS[2], 'next')) or 0\n"
    "    local start = math.max(now, nxt)\n"
    "    local id = w .. ':g' .. redis.call('HINCRBY', KEYS[2], 'gseq', 1)\n"
    "    redis.call('ZADD', KEYS[1], start + lease_ms, id)\n"
    "    local n = redis.pcall('PUBLISH', 'mp:wake:' .. w,\n"
    "                          'grant ' .. ARGV[8] .. ' ' .. id .. ' ' .. (start - now))\n"
    "    if type(n) == 'number' and n > 0 then\n"
    "      free = free - 1\n"
    "      active = active + 1\n"
    "      redis.call('HSET', KEYS[2], 'next', start + gap)\n"
    "      if redis.call('PTTL', KEYS[1]) < start - now + lease_ms + 1000 then\n"
    "        redis.call('PEXPIRE', KEYS[1], start - now + lease_ms + 1000)\n"
    "      end\n"
    "    else\n"
    "      redis.call('ZREM', KEYS[1], id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {held, 0, now, active, allowed}\n";

/* KEYS: prefix "mp:quota:{E}:<scope>".  ARGV: n, cap per minute, per hour, per day
 * (0 = none) -> {granted 0|1, wait_ms, now_ms, used minute, used hour, used day} */
static const char script_quota[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local n = tonumber(ARGV[1])\n"
    "local spans = {60000, 3600000, 86400000}\n"
    "local names = {':m:', ':h:', ':d:'}\n"
    "local keys, used, wait = {}, {}, 0\n"
    "for i = 1, 3 do\n"
    "  local idx = math.floor(now / spans[i])\n"
    "  keys[i] = KEYS[1] .. names[i] .. idx\n"
    "  used[i] = tonumber(redis.call('GET', keys[i])) or 0\n"
    "  local cap = tonumber(ARGV[i + 1])\n"
    "  if cap > 0 and used[i] + n > cap then\n"
    "    local w = (idx + 1) * spans[i] - now\n"
    "    if w > wait then wait = w end\n"
    "  end\n"
    "end\n"
    "if wait > 0 then return {0, wait, now, used[1], used[2], used[3]} end\n"
    "for i = 1, 3 do\n"
    "  if tonumber(ARGV[i + 1]) > 0 then\n"
    "    used[i] = redis.call('INCRBY', keys[i], n)\n"
    "    redis.call('PEXPIRE', keys[i], spans[i] + 60000)\n"
    "  end\n"
    "end\n"
    "return {1, 0, now, used[1], used[2], used[3]}\n";

/* KEYS: facts  -> {value or nil, pttl, ...} per key, value and remaining TTL from one
 * moment; several facts of a domain in one round trip */
static const char script_facts[] =
    "local r = {}\n"
    "for i = 1, #KEYS do\n"
    "  r[#r + 1] = redis.call('GET', KEYS[i])\n"
    "  r[#r + 1] = redis.call('PTTL', KEYS[i])\n"
    "end\n"
    "return r\n";

/* KEYS: facts  ARGV: value, ttl_ms per key -> the number written; the writes of a
 * moment (fleet_fact_put) in one round trip */
static const char script_puts[] =
    "for i = 1, #KEYS do\n"
    "  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i])\n"
    "end\n"
    "return #KEYS\n";

enum { SC_ACQUIRE, SC_RENEW, SC_RELEASE, SC_QUOTA, SC_FACTS, SC_PUTS, SC__COUNT };
static const char *const scripts[SC__COUNT] = {script_acquire, script_renew, script_release,
                                               script_quota, script_facts, script_puts};

/* ---- handle and requests --------------------------------------------------------------- */

/* A fact write waiting for the next batch (fleet_fact_put), and, once sent, its
 * callback waiting for the batch's reply. */
typedef struct {
    char *key, *value;
    size_t klen, vlen;
    uint64_t ttl_ms;
    fleet_fact_cb cb;
    void *arg;
} fact_put_t;

struct fleet {
    struct event_base *base;
    fleet_url_t url;
    redisAsyncContext *ac;      /* NULL while disconnected */
    redisAsyncContext *sub;     /* the wake-up subscription; NULL while disconnected */
    bool subscribed;            /* sub confirmed SUBSCRIBE: acquires register as waiter */
    fleet_wake_cb wake_cb;      /* NULL: not listening */
    fleet_grant_cb grant_cb;    /* a slot handed over by a release (with wake_cb) */
    void *wake_arg;
    fleet_wake_cb want_cb;      /* another handle waits for a pair we hold; NULL: ignored */
    void *want_arg;
    char sha[SC__COUNT][41];
    char worker[17];            /* random id: lease ids are <worker>:<seq> */
    uint64_t seq;
    unsigned refs;              /* the owner's + one per request in flight */
    unsigned timeout_ms;        /* a request not answered by then fails */
    bool closing;
    fact_put_t *puts;           /* fact writes not sent yet, in order */
    size_t nputs, putscap, putsbytes;
    struct event *puts_ev;      /* sends them PUTS_WAIT_MS after the first */
    unsigned puts_sent;         /* batches sent, not answered yet */
    uint64_t puts_batches;      /* batches sent in all */
    void *getting;              /* the fact reads of this loop turn, one request (req_t) */
    struct event *gets_ev;      /* sends it once the turn's callbacks are done */
    uint64_t gets_batches;      /* read requests sent in all */
};

typedef struct {
    fleet_t *f;
    int script;                 /* SC_*, or -1 for a plain command */
    bool eval_sent;             /* NOSCRIPT: sent again as EVAL */
    bool answered;              /* the callback ran (reply, or the deadline passed) */
    bool waiter;                /* an acquire that registers the handle as a waiter */
    struct event *deadline;
    bool fact;                  /* a fact request: fcb; a quota request: qcb; else lcb */
    fleet_lease_cb lcb;
    fleet_quota_cb qcb;
    fleet_fact_cb fcb;          /* a write's callback */
    fleet_fact_ask_t *asks;     /* a read's: one per fact, in order (several domains) */
    size_t nasks, askscap;
    fleet_reply_cb rcb;         /* a command (fleet_command): the raw reply */
    void *arg;
    char lease[64];
    int argc;
    char **argv;                /* argc of them, room for argcap */
    size_t *argvlen;
    int argcap;
    fact_put_t *puts;           /* a batch of writes: each one's callback, after the reply */
    size_t nputs;
} req_t;

static void fleet_unref(fleet_t *f)
{
    if (--f->refs == 0)
        free(f);
}

static void req_free(req_t *rq)
{
    if (rq->deadline)
        event_free(rq->deadline);
    for (int i = 0; i < rq->argc; i++)
        free(rq->argv[i]);
    free(rq->argv);
    free(rq->argvlen);
    free(rq->puts);
    free(rq->asks);
    fleet_t *f = rq->f;
    free(rq);
    fleet_unref(f);
}

static bool req_arg(req_t *rq, const char *p, size_t n)
{
    if (rq->argc >= rq->argcap) {
        int cap = rq->argcap ? rq->argcap * 2 : 16;
        if (rq->argc >= ARGV_MAX || cap > ARGV_MAX)
            return false;
        char **v = realloc(rq->argv, (size_t)cap * sizeof *v);
        if (!v)
            return false;
        rq->argv = v;
        size_t *l = realloc(rq->argvlen, (size_t)cap * sizeof *l);
        if (!l)
            return false;
        rq->argvlen = l;
        rq->argcap = cap;
    }
    char *c = malloc(n + 1);
    if (!c)
        return false;
    memcpy(c, p, n);
    c[n] = '\0';
    rq->argv[rq->argc] = c;
    rq->argvlen[rq->argc++] = n;
    return true;
}

static bool req_argf(req_t *rq, unsigned long long v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%llu", v);
    return req_arg(rq, b, (size_t)n);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x7f || c == '{' || c == '}')
            return false;
    }
    return true;
}

/* ---- URL -------------------------------------------------------------------------- */

mp_status_t fleet_url_parse(const char *url, fleet_url_t *out, char *err, size_t errsize)
{
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        goto bad;
    const char *h = url + sizeof scheme - 1, *end = h + strlen(h);
    const char *at = strrchr(h, '@');
    if (at) {
        const char *colon = memchr(h, ':', (size_t)(at - h));
        if (!colon ||
            mp_pct_decode(h, (size_t)(colon - h), out->user, sizeof out->user) != 0 ||
            mp_pct_decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof out->pass) != 0 ||
            !out->pass[0])
            goto bad;
        h = at + 1;
    }
    const char *slash = strchr(h, '/');
    if (slash) {
        uint64_t db;
        if (!mp_parse_uint(slash + 1, 0, 15, &db))
            goto bad;
        out->db = (unsigned)db;
        end = slash;
    }
    const char *hend = end, *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            goto bad;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 != end && !colon)
            goto bad;
        h++;
        hend = rb;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        if (colon)
            hend = colon;
    }
    if (colon) {
        char port[8];
        uint64_t p;
        size_t n = (size_t)(end - colon - 1);
        if (n == 0 || n >= sizeof port)
            goto bad;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
        if (!mp_parse_uint(port, 1, 65535, &p))
            goto bad;
        out->port = (unsigned)p;
    }
    if (hend == h || (size_t)(hend - h) >= sizeof out->host)
        goto bad;
    memcpy(out->host, h, (size_t)(hend - h));
    out->host[hend - h] = '\0';
    return MP_OK;
bad:
    memset(out->pass, 0, sizeof out->pass);
    if (strchr(url, '@')) /* never echo a password */
        snprintf(err, errsize, "the Redis URL is not redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] "
                 "(DB 0-15)");
    else {
        char q[300];
        snprintf(err, errsize, "'%s' is not a Redis URL (redis://[[USER]:PASSWORD@]HOST"
                 "[:PORT][/DB], DB 0-15)", mp_str_printable(url, q, sizeof q));
    }
    return MP_ERR_ARG;
}

/* ---- connection ------------------------------------------------------------------------- */

static void on_connect(const redisAsyncContext *ac, int status)
{
    fleet_t *f = ac->data;
    if (status != REDIS_OK && f && f->ac == ac)
        f->ac = NULL; /* hiredis frees it; the next request connects again */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    fleet_t *f = ac->data;
    (void)status;
    if (f && f->ac == ac)
        f->ac = NULL;
}

/* A new asynchronous connection on the loop, AUTH queued first; NULL when it cannot
 * be started. */
static redisAsyncContext *fleet_ac_new(fleet_t *f, redisConnectCallback *conn_cb,
                                       redisDisconnectCallback *disc_cb)
{
    redisAsyncContext *ac = redisAsyncConnect(f->url.host, (int)f->url.port);
    if (!ac)
        return NULL;
    if (ac->err || redisLibeventAttach(ac, f->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = f;
    redisAsyncSetConnectCallback(ac, conn_cb);
    redisAsyncSetDisconnectCallback(ac, disc_cb);
    if (f->url.pass[0]) { /* first in the queue: AUTH before anything else */
        const char *argv[] = {"AUTH", f->url.user, f->url.pass};
        int n = f->url.user[0] ? 3 : 2;
        if (!f->url.user[0])
            argv[1] = f->url.pass;
        if (redisAsyncCommandArgv(ac, NULL, NULL, n, argv, NULL) != REDIS_OK) {
            ac->data = NULL;
            redisAsyncFree(ac);
            return NULL;
        }
    }
    return ac;
}

/* The asynchronous connection, made when none is up (at open, after a loss). */
static mp_status_t fleet_connect(fleet_t *f)
{
    if (f->ac)
        return MP_OK;
    redisAsyncContext *ac = fleet_ac_new(f, on_connect, on_disconnect);
    if (!ac)
        return MP_ERR_IO;
    f->ac = ac;
    if (f->url.db) {
        char db[8];
        snprintf(db, sizeof db, "%u", f->url.db);
        const char *argv[] = {"SELECT", db};
        if (redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL) != REDIS_OK)
            return MP_ERR_IO;
    }
    return MP_OK;
}

/* ---- wake-ups: one subscribed connection per handle ----------------------------------- */

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    fleet_t *f = ac->data;
    if (status != REDIS_OK && f && f->sub == ac) {
        f->sub = NULL; /* hiredis frees it; the next acquire subscribes again */
        f->subscribed = false;
    }
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    fleet_t *f = ac->data;
    (void)status;
    if (f && f->sub == ac) {
        f->sub = NULL;
        f->subscribed = false;
    }
}

/* A grant's text after "grant ": "<pair> <lease> <delay_ms>" (pair names and lease ids
 * have no spaces) to the grant callback; anything else is dropped. */
static void sub_grant(fleet_t *f, const char *s, size_t len)
{
    const char *sp1 = memchr(s, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - s)) : NULL;
    char lease[64], delay[16];
    uint64_t d;
    if (!sp2 || sp1 == s || (size_t)(sp2 - sp1 - 1) >= sizeof lease || sp2 == sp1 + 1 ||
        (size_t)(s + len - sp2 - 1) >= sizeof delay)
        return;
    memcpy(lease, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    lease[sp2 - sp1 - 1] = '\0';
    memcpy(delay, sp2 + 1, (size_t)(s + len - sp2 - 1));
    delay[s + len - sp2 - 1] = '\0';
    if (!mp_parse_uint(delay, 0, 24 * 3600 * 1000, &d))
        return;
    f->grant_cb(s, (size_t)(sp1 - s), lease, d, f->wake_arg);
}

/* Every push on the subscription: ["subscribe", channel, n] once, then ["message",
 * channel, text]: "<pair>" (a wake-up), "grant <pair> <lease> <delay_ms>" (a slot handed
 * over) or "want <pair>" (a pair we hold is wanted; pair names have no spaces). A NULL
 * reply (the connection freed or lost) is nothing to us. */
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    fleet_t *f = ac->data;
    const redisReply *r = reply;
    (void)privdata;
    if (!f || f->closing || f->sub != ac || !r || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = r->element[0], *v = r->element[2];
    if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0)
        f->subscribed = true;
    else if (kind->len != 7 || memcmp(kind->str, "message", 7) != 0 ||
             v->type != REDIS_REPLY_STRING)
        return;
    else if (v->len > 5 && memcmp(v->str, "want ", 5) == 0) {
        if (f->want_cb)
            f->want_cb(v->str + 5, v->len - 5, f->want_arg);
    } else if (v->len > 6 && memcmp(v->str, "grant ", 6) == 0) {
        if (f->grant_cb)
            sub_grant(f, v->str + 6, v->len - 6);
    } else if (f->wake_cb)
        f->wake_cb(v->str, v->len, f->wake_arg);
}

/* Subscribe to mp:wake:<worker> on a connection of its own (a subscribed connection can
 * send nothing else). Until Redis confirms, acquires do not register as waiter. */
static void fleet_sub_connect(fleet_t *f)
{
    char ch[32];
    if (f->sub || f->closing)
        return;
    redisAsyncContext *ac = fleet_ac_new(f, on_sub_connect, on_sub_disconnect);
    if (!ac)
        return;
    snprintf(ch, sizeof ch, "mp:wake:%s", f->worker);
    const char *argv[] = {"SUBSCRIBE", ch};
    if (redisAsyncCommandArgv(ac, on_sub_reply, NULL, 2, argv, NULL) != REDIS_OK) {
        ac->data = NULL;
        redisAsyncFree(ac);
        return;
    }
    f->sub = ac;
}

mp_status_t fleet_wake_listen(fleet_t *f, fleet_wake_cb cb, fleet_grant_cb grant, void *arg)
{
    if (!f || f->closing || !cb || !grant)
        return MP_ERR_ARG;
    f->wake_cb = cb;
    f->grant_cb = grant;
    f->wake_arg = arg;
    fleet_sub_connect(f);
    return f->sub ? MP_OK : MP_ERR_IO;
}

void fleet_want_listen(fleet_t *f, fleet_wake_cb cb, void *arg)
{
    if (!f)
        return;
    f->want_cb = cb;
    f->want_arg = arg;
}

bool fleet_wake_ready(const fleet_t *f)
{
    return f && f->subscribed;
}

/* Check Redis and load the scripts, synchronously: a clear error before any work. */
static mp_status_t fleet_check(fleet_t *f, unsigned timeout_ms, char *err, size_t errsize)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    mp_status_t st = MP_ERR_IO;
    redisReply *r = NULL;
    redisContext *c = redisConnectWithTimeout(f->url.host, (int)f->url.port, tv);
    if (!c || c->err) {
        snprintf(err, errsize, "redis %s:%u: %s", f->url.host, f->url.port,
                 c ? c->errstr : "out of memory");
        goto done;
    }
    redisSetTimeout(c, tv);
    if (f->url.pass[0]) {
        r = f->url.user[0] ? redisCommand(c, "AUTH %s %s", f->url.user, f->url.pass)
                           : redisCommand(c, "AUTH %s", f->url.pass);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errsize, "redis %s:%u: AUTH: %s", f->url.host, f->url.port,
                     r ? r->str : c->errstr);
            goto done;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (f->url.db) {
        r = redisCommand(c, "SELECT %u", f->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errsize, "redis %s:%u: SELECT %u: %s", f->url.host, f->url.port,
                     f->url.db, r ? r->str : c->errstr);
            goto done;
        }
        freeReplyObject(r);
        r = NULL;
    }
    for (int i = 0; i < SC__COUNT; i++) {
        r = redisCommand(c, "SCRIPT LOAD %s", scripts[i]);
        if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
            snprintf(err, errsize, "redis %s:%u: cannot load a script: %s", f->url.host,
                     f->url.port, !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str
                                                                             : "bad reply");
            goto done;
        }
        memcpy(f->sha[i], r->str, 41);
        freeReplyObject(r);
        r = NULL;
    }
    st = MP_OK;
done:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return st;
}

static void on_puts_timer(evutil_socket_t fd, short what, void *arg);
static void on_gets_ev(evutil_socket_t fd, short what, void *arg);
static void puts_free(fact_put_t *v, size_t n);

fleet_t *fleet_open(struct event_base *base, const char *url, unsigned timeout_ms, char *err,
                    size_t errsize)
{
    fleet_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    f->base = base;
    f->refs = 1;
    f->timeout_ms = timeout_ms ? timeout_ms : 5000;
    f->puts_ev = evtimer_new(base, on_puts_timer, f);
    f->gets_ev = event_new(base, -1, 0, on_gets_ev, f);
    if (!f->puts_ev || !f->gets_ev) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    unsigned char rnd[8];
    if (fleet_url_parse(url, &f->url, err, errsize) != MP_OK)
        goto fail;
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errsize, "getrandom failed");
        goto fail;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(f->worker + 2 * i, 3, "%02x", rnd[i]);
    if (fleet_check(f, f->timeout_ms, err, errsize) != MP_OK)
        goto fail;
    if (fleet_connect(f) != MP_OK) {
        snprintf(err, errsize, "redis %s:%u: cannot start a connection", f->url.host,
                 f->url.port);
        goto fail;
    }
    return f;
fail:
    fleet_free(f);
    return NULL;
}

void fleet_free(fleet_t *f)
{
    if (!f || f->closing)
        return;
    f->closing = true;
    if (f->puts_ev)
        event_free(f->puts_ev);
    f->puts_ev = NULL;
    puts_free(f->puts, f->nputs); /* unsent writes are dropped, as unanswered requests */
    f->puts = NULL;
    f->nputs = 0;
    if (f->gets_ev)
        event_free(f->gets_ev);
    f->gets_ev = NULL;
    if (f->getting) /* so are unsent reads */
        req_free(f->getting);
    f->getting = NULL;
    redisAsyncContext *ac = f->ac;
    f->ac = NULL;
    if (ac) {
        /* may call every pending callback now (or later, from inside a callback): each
         * drops its request's reference; the owner's keeps f alive until here */
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    redisAsyncContext *sub = f->sub;
    f->sub = NULL;
    f->subscribed = false;
    if (sub) {
        sub->data = NULL;
        redisAsyncFree(sub);
    }
    fleet_unref(f); /* the owner's */
}

/* ---- replies ---------------------------------------------------------------------------- */

static void req_send(req_t *rq, const char **err_out);

static void lease_answer(req_t *rq, const redisReply *r, const char *error)
{
    fleet_lease_t l;
    memset(&l, 0, sizeof l);
    l.error = error;
    if (!error) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
            l.error = "unexpected reply from the lease script";
        } else {
            long long v[5];
            for (size_t i = 0; i < 5; i++) {
                const redisReply *e = r->element[i];
                v[i] = e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
            }
            l.granted = v[0] == 1;
            l.wait_ms = v[1] > 0 ? (uint64_t)v[1] : 0;
            l.now_ms = v[2] > 0 ? (uint64_t)v[2] : 0;
            l.active = v[3] > 0 ? (unsigned)v[3] : 0;
            l.allowed = v[4] > 0 ? (unsigned)v[4] : 0;
            mp_strlcpy(l.lease, rq->lease, sizeof l.lease);
            if (rq->script == SC_ACQUIRE && !l.granted)
                l.lease[0] = '\0';
            l.waiting = rq->waiter && !l.granted && l.active >= l.allowed;
        }
    }
    if (rq->lcb)
        rq->lcb(&l, rq->arg);
}

static void fact_answer(req_t *rq, const redisReply *r, const char *error)
{
    if (rq->nasks) { /* a read: {value, pttl} per fact, each callback in order */
        if (!error && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * rq->nasks))
            error = "unexpected reply to a fact request";
        for (size_t i = 0; i < rq->nasks; i++) {
            const fleet_fact_ask_t *a = &rq->asks[i];
            if (error) {
                a->cb(error, NULL, 0, 0, a->arg);
                continue;
            }
            const redisReply *v = r->element[2 * i], *t = r->element[2 * i + 1];
            uint64_t ttl = t->type == REDIS_REPLY_INTEGER && t->integer > 0
                               ? (uint64_t)t->integer : 0;
            if (v->type == REDIS_REPLY_STRING)
                a->cb(NULL, v->str, v->len, ttl, a->arg);
            else
                a->cb(NULL, NULL, 0, 0, a->arg);
        }
        return;
    }
    if (!rq->fcb) /* a write: status OK */
        return;
    if (error)
        rq->fcb(error, NULL, 0, 0, rq->arg);
    else if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_NIL)
        rq->fcb(NULL, NULL, 0, 0, rq->arg);
    else
        rq->fcb("unexpected reply to a fact request", NULL, 0, 0, rq->arg);
}

static void quota_answer(req_t *rq, const redisReply *r, const char *error)
{
    fleet_quota_t q;
    memset(&q, 0, sizeof q);
    q.error = error;
    if (!error && (r->type != REDIS_REPLY_ARRAY || r->elements != 6))
        q.error = "unexpected reply from the quota script";
    if (!q.error) {
        long long v[6];
        for (size_t i = 0; i < 6; i++)
            v[i] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
        q.granted = v[0] == 1;
        q.wait_ms = v[1] > 0 ? (uint64_t)v[1] : 0;
        q.now_ms = v[2] > 0 ? (uint64_t)v[2] : 0;
        for (int i = 0; i < 3; i++)
            q.used[i] = v[3 + i] > 0 ? (unsigned)v[3 + i] : 0;
    }
    rq->qcb(&q, rq->arg);
}

static void puts_answer(req_t *rq, const redisReply *r, const char *error)
{
    rq->f->puts_sent--;
    if (!error && r->type != REDIS_REPLY_INTEGER)
        error = "unexpected reply to the fact writes";
    for (size_t i = 0; i < rq->nputs; i++)
        if (rq->puts[i].cb)
            rq->puts[i].cb(error, NULL, 0, 0, rq->puts[i].arg);
}

/* The one way a request's callback runs: once. */
static void req_answer(req_t *rq, const redisReply *r, const char *error)
{
    rq->answered = true;
    if (rq->rcb)
        rq->rcb(error, error ? NULL : r, rq->arg);
    else if (rq->script == SC_PUTS)
        puts_answer(rq, r, error);
    else if (rq->fact)
        fact_answer(rq, r, error);
    else if (rq->qcb)
        quota_answer(rq, r, error);
    else
        lease_answer(rq, r, error);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    req_t *rq = privdata;
    const redisReply *r = reply;
    (void)ac;
    if (rq->f->closing || rq->answered) { /* late: the deadline answered it */
        req_free(rq);
        return;
    }
    char ebuf[200];
    const char *error = NULL;
    if (!r) {
        error = "connection to Redis lost";
    } else if (r->type == REDIS_REPLY_ERROR) {
        if (rq->script >= 0 && !rq->eval_sent && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            /* Redis forgot the script (restarted): send its text this once */
            free(rq->argv[0]);
            free(rq->argv[1]);
            rq->argv[0] = rq->argv[1] = NULL;
            rq->argvlen[0] = rq->argvlen[1] = 0;
            rq->eval_sent = true;
            const char *e = NULL;
            rq->argv[0] = strdup("EVAL");
            rq->argv[1] = strdup(scripts[rq->script]);
            if (rq->argv[0] && rq->argv[1]) {
                rq->argvlen[0] = 4;
                rq->argvlen[1] = strlen(scripts[rq->script]);
                req_send(rq, &e);
                if (!e)
                    return;
            }
            error = e ? e : "out of memory";
        } else {
            snprintf(ebuf, sizeof ebuf, "redis: %s", r->str);
            error = ebuf;
        }
    } else if (r->type == REDIS_REPLY_ARRAY && rq->fact && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_ERROR) {
        snprintf(ebuf, sizeof ebuf, "redis: %s", r->element[0]->str);
        error = ebuf;
    }
    req_answer(rq, r, error);
    req_free(rq);
}

/* A request Redis did not answer in time (a hung or overloaded server): its callback
 * receives an error now; the request stays with hiredis, and a late reply is dropped. */
static void on_req_deadline(evutil_socket_t fd, short what, void *arg)
{
    req_t *rq = arg;
    char e[80];
    (void)fd;
    (void)what;
    if (rq->f->closing || rq->answered)
        return;
    snprintf(e, sizeof e, "no answer from Redis within %u ms", rq->f->timeout_ms);
    req_answer(rq, NULL, e);
}

/* Send a request; *err_out set (and the request still ours) when it could not be. */
static void req_send(req_t *rq, const char **err_out)
{
    fleet_t *f = rq->f;
    *err_out = NULL;
    if (fleet_connect(f) != MP_OK || !f->ac) {
        *err_out = "cannot connect to Redis";
        return;
    }
    if (redisAsyncCommandArgv(f->ac, on_reply, rq, rq->argc, (const char **)rq->argv,
                              rq->argvlen) != REDIS_OK)
        *err_out = "cannot send to Redis";
}

static req_t *req_new(fleet_t *f, int script, void *arg)
{
    req_t *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->f = f;
    f->refs++;
    rq->script = script;
    rq->arg = arg;
    rq->deadline = evtimer_new(f->base, on_req_deadline, rq);
    if (!rq->deadline) {
        req_free(rq);
        return NULL;
    }
    return rq;
}

/* Submit: MP_OK (the callback will come) or an error (no callback, request freed). */
static mp_status_t req_submit(req_t *rq, bool args_ok)
{
    const char *e = NULL;
    if (!args_ok) {
        req_free(rq);
        return MP_ERR_NOMEM;
    }
    req_send(rq, &e);
    if (e) {
        req_free(rq);
        return MP_ERR_IO;
    }
    struct timeval tv = {(time_t)(rq->f->timeout_ms / 1000),
                         (suseconds_t)(rq->f->timeout_ms % 1000) * 1000};
    evtimer_add(rq->deadline, &tv);
    return MP_OK;
}

/* EVALSHA sha 2 mp:lease:{E|M} mp:dest:{E|M}, and with waiters (acquire, release)
 * 4 ... mp:wait:{E|M} mp:seen:{E|M} */
static bool script_head(req_t *rq, const char *egress, const char *mx, bool waiters)
{
    static const char *const kinds[] = {"lease", "dest", "wait", "seen"};
    char key[2 * NAME_MAX_LEN + 32];
    int nkeys = waiters ? 4 : 2;
    bool ok = req_arg(rq, "EVALSHA", 7) &&
              req_arg(rq, rq->f->sha[rq->script], 40) && req_argf(rq, (unsigned)nkeys);
    for (int i = 0; ok && i < nkeys; i++) {
        int n = snprintf(key, sizeof key, "mp:%s:{%s|%s}", kinds[i], egress, mx);
        ok = req_arg(rq, key, (size_t)n);
    }
    return ok;
}

static bool limits_ok(const fleet_limits_t *lim)
{
    return lim && lim->limit >= 1 && lim->lease_ms >= 1;
}

mp_status_t fleet_lease_acquire(fleet_t *f, const char *egress, const char *mx,
                                const fleet_limits_t *lim, fleet_lease_cb cb, void *arg)
{
    if (!f || f->closing || !cb || !name_ok(egress) || !name_ok(mx) || !limits_ok(lim))
        return MP_ERR_ARG;
    req_t *rq = req_new(f, SC_ACQUIRE, arg);
    if (!rq)
        return MP_ERR_NOMEM;
    rq->lcb = cb;
    snprintf(rq->lease, sizeof rq->lease, "%s:%llu", f->worker, (unsigned long long)++f->seq);
    /* registered as a waiter only while a wake-up can reach us */
    if (f->wake_cb && !f->sub)
        fleet_sub_connect(f);
    const char *waiter = f->subscribed ? f->worker : "";
    rq->waiter = f->subscribed;
    char pair[2 * NAME_MAX_LEN + 2];
    int n = snprintf(pair, sizeof pair, "%s|%s", egress, mx);
    bool ok = n > 0 && (size_t)n < sizeof pair && script_head(rq, egress, mx, true) &&
              req_argf(rq, lim->limit) && req_argf(rq, lim->min_interval_ms) &&
              req_argf(rq, lim->lease_ms) && req_arg(rq, rq->lease, strlen(rq->lease)) &&
              req_argf(rq, IDLE_TTL_MS) && req_arg(rq, waiter, strlen(waiter)) &&
              req_argf(rq, WAITER_TTL_MS) && req_arg(rq, pair, (size_t)n) &&
              req_argf(rq, WANT_EVERY_MS);
    return req_submit(rq, ok);
}

/* A renew or release request for a held lease: arguments checked, head built. NULL with
 * *st set when it cannot be. */
static req_t *held_req(fleet_t *f, int script, const char *egress, const char *mx,
                       const char *lease, const fleet_limits_t *lim, fleet_lease_cb cb,
                       void *arg, mp_status_t *st)
{
    *st = MP_ERR_ARG;
    if (!f || f->closing || !name_ok(egress) || !name_ok(mx) || !lease || !*lease ||
        strlen(lease) >= sizeof ((req_t *)0)->lease || !limits_ok(lim))
        return NULL;
    *st = MP_ERR_NOMEM;
    req_t *rq = req_new(f, script, arg);
    if (!rq)
        return NULL;
    rq->lcb = cb;
    mp_strlcpy(rq->lease, lease, sizeof rq->lease);
    if (!script_head(rq, egress, mx, script == SC_RELEASE) ||
        !req_arg(rq, lease, strlen(lease))) {
        req_free(rq);
        return NULL;
    }
    *st = MP_OK;
    return rq;
}

mp_status_t fleet_lease_renew(fleet_t *f, const char *egress, const char *mx,
                              const char *lease, const fleet_limits_t *lim,
                              fleet_lease_cb cb, void *arg)
{
    mp_status_t st;
    req_t *rq = held_req(f, SC_RENEW, egress, mx, lease, lim, cb, arg, &st);
    if (!rq)
        return st;
    return req_submit(rq, req_argf(rq, lim->lease_ms));
}

mp_status_t fleet_lease_release(fleet_t *f, const char *egress, const char *mx,
                                const char *lease, fleet_outcome_t o,
                                const fleet_limits_t *lim, fleet_lease_cb cb, void *arg)
{
    static const char *const names[] = {[FLEET_OK] = "ok", [FLEET_NEUTRAL] = "neutral",
                                        [FLEET_THROTTLE] = "throttle"};
    mp_status_t st;
    if ((unsigned)o > FLEET_THROTTLE)
        return MP_ERR_ARG;
    req_t *rq = held_req(f, SC_RELEASE, egress, mx, lease, lim, cb, arg, &st);
    if (!rq)
        return st;
    char pair[2 * NAME_MAX_LEN + 2];
    int n = snprintf(pair, sizeof pair, "%s|%s", egress, mx);
    bool ok = req_arg(rq, names[o], strlen(names[o])) && req_argf(rq, lim->limit) &&
              req_argf(rq, lim->penalty_ms) && req_argf(rq, lim->penalty_cap_ms) &&
              req_argf(rq, IDLE_TTL_MS) && req_argf(rq, WAITER_TTL_MS) &&
              req_arg(rq, pair, (size_t)n) && req_argf(rq, lim->lease_ms) &&
              req_argf(rq, lim->min_interval_ms);
    return req_submit(rq, ok);
}

mp_status_t fleet_quota_take(fleet_t *f, const char *egress, const char *scope, unsigned n,
                             const fleet_caps_t *caps, fleet_quota_cb cb, void *arg)
{
    char key[2 * NAME_MAX_LEN + 32];
    if (!f || f->closing || !cb || !caps || n == 0 || !name_ok(egress) || !name_ok(scope))
        return MP_ERR_ARG;
    req_t *rq = req_new(f, SC_QUOTA, arg);
    if (!rq)
        return MP_ERR_NOMEM;
    rq->qcb = cb;
    int len = snprintf(key, sizeof key, "mp:quota:{%s}:%s", egress, scope);
    bool ok = req_arg(rq, "EVALSHA", 7) && req_arg(rq, f->sha[SC_QUOTA], 40) &&
              req_arg(rq, "1", 1) && req_arg(rq, key, (size_t)len) && req_argf(rq, n) &&
              req_argf(rq, caps->per_minute) && req_argf(rq, caps->per_hour) &&
              req_argf(rq, caps->per_day);
    return req_submit(rq, ok);
}

/* ---- facts -------------------------------------------------------------------------------- */

static const char *fact_name(fleet_fact_t k)
{
    switch (k) {
    case FLEET_FACT_MX: return "mx";
    case FLEET_FACT_CATCH_ALL: return "catchall";
    case FLEET_FACT_PROVIDER: return "provider";
    }
    return NULL;
}

static int fact_key_text(fleet_fact_t kind, const char *domain, char *key, size_t size)
{
    return snprintf(key, size, "mp:fact:%s:%s", fact_name(kind), domain);
}

static bool fact_key(req_t *rq, fleet_fact_t kind, const char *domain)
{
    char key[NAME_MAX_LEN + 32];
    int n = fact_key_text(kind, domain, key, sizeof key);
    return req_arg(rq, key, (size_t)n);
}

static req_t *fact_req(fleet_t *f, int script, fleet_fact_cb cb, void *arg)
{
    req_t *rq = req_new(f, script, arg);
    if (rq) {
        rq->fact = true;
        rq->fcb = cb;
    }
    return rq;
}

/* Send the reads of this loop turn as one request (the facts script with every key);
 * if it cannot be sent, each callback now, with the error. */
static void gets_send(fleet_t *f)
{
    req_t *rq = f->getting;
    f->getting = NULL;
    if (!rq)
        return;
    char n[24];
    int nl = snprintf(n, sizeof n, "%zu", rq->nasks);
    char *c = malloc((size_t)nl + 1);
    if (c) { /* argv[2], the key count, known now */
        memcpy(c, n, (size_t)nl + 1);
        free(rq->argv[2]);
        rq->argv[2] = c;
        rq->argvlen[2] = (size_t)nl;
    }
    fleet_fact_ask_t *asks = rq->asks;
    size_t na = rq->nasks;
    rq->asks = NULL; /* kept here until sent: req_submit frees rq when it fails */
    rq->nasks = 0;
    req_t *sent = rq;
    mp_status_t st = req_submit(rq, c != NULL);
    if (st == MP_OK) {
        sent->asks = asks;
        sent->nasks = na;
        f->gets_batches++;
        return;
    }
    const char *e = st == MP_ERR_NOMEM ? "out of memory" : "cannot reach Redis";
    for (size_t i = 0; i < na; i++)
        asks[i].cb(e, NULL, 0, 0, asks[i].arg);
    free(asks);
}

static void on_gets_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gets_send(arg);
}

/* The reads asked during one turn of the loop (a worker hands out a read of 16
 * domains' batches at once) go as one request when the turn's callbacks are done: one
 * round trip for all, instead of one per domain. */
mp_status_t fleet_facts_get(fleet_t *f, const char *domain, const fleet_fact_ask_t *asks,
                            size_t n)
{
    if (!f || f->closing || !f->gets_ev || !name_ok(domain) || n < 1 || n > FLEET_FACTS_MAX)
        return MP_ERR_ARG;
    for (size_t i = 0; i < n; i++)
        if (!asks[i].cb || !fact_name(asks[i].kind))
            return MP_ERR_ARG;
    req_t *rq = f->getting;
    if (!rq) {
        rq = fact_req(f, SC_FACTS, NULL, NULL);
        if (!rq)
            return MP_ERR_NOMEM;
        if (!req_arg(rq, "EVALSHA", 7) || !req_arg(rq, f->sha[SC_FACTS], 40) ||
            !req_arg(rq, "0", 1)) {
            req_free(rq);
            return MP_ERR_NOMEM;
        }
        f->getting = rq;
        event_active(f->gets_ev, EV_TIMEOUT, 0);
    }
    if (rq->nasks + n > rq->askscap) {
        size_t cap = rq->askscap ? rq->askscap * 2 : 16;
        while (cap < rq->nasks + n)
            cap *= 2;
        fleet_fact_ask_t *v = realloc(rq->asks, cap * sizeof *v);
        if (!v)
            return MP_ERR_NOMEM;
        rq->asks = v;
        rq->askscap = cap;
    }
    int argc0 = rq->argc;
    for (size_t i = 0; i < n; i++)
        if (!fact_key(rq, asks[i].kind, domain)) {
            while (rq->argc > argc0) /* this domain's keys out again */
                free(rq->argv[--rq->argc]);
            return MP_ERR_NOMEM;
        }
    memcpy(rq->asks + rq->nasks, asks, n * sizeof *asks);
    rq->nasks += n;
    if (rq->nasks + FLEET_FACTS_MAX > GETS_MAX)
        gets_send(f); /* full: this one now, the next reads in a request of their own */
    return MP_OK;
}

uint64_t fleet_facts_get_batches(const fleet_t *f)
{
    return f ? f->gets_batches : 0;
}

mp_status_t fleet_fact_get(fleet_t *f, fleet_fact_t kind, const char *domain,
                           fleet_fact_cb cb, void *arg)
{
    fleet_fact_ask_t a = {kind, cb, arg};
    return fleet_facts_get(f, domain, &a, 1);
}

/* Free the writes' keys and values (their callbacks stay). */
static void puts_strings_free(fact_put_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
        v[i].key = v[i].value = NULL;
    }
}

/* Free the writes (their callbacks are the caller's business). */
static void puts_free(fact_put_t *v, size_t n)
{
    puts_strings_free(v, n);
    free(v);
}

/* Send the writes waiting as one request (the puts script): their callbacks run from its
 * reply; if it cannot be sent, now, with the error. */
static void puts_send(fleet_t *f)
{
    if (f->puts_ev)
        evtimer_del(f->puts_ev);
    size_t n = f->nputs;
    fact_put_t *v = f->puts;
    f->puts = NULL;
    f->nputs = f->putscap = f->putsbytes = 0;
    if (!n)
        return;
    req_t *rq = req_new(f, SC_PUTS, NULL);
    mp_status_t st = MP_ERR_NOMEM;
    if (rq) {
        bool ok = req_arg(rq, "EVALSHA", 7) && req_arg(rq, f->sha[SC_PUTS], 40) &&
                  req_argf(rq, (unsigned long long)n);
        for (size_t i = 0; ok && i < n; i++)
            ok = req_arg(rq, v[i].key, v[i].klen);
        for (size_t i = 0; ok && i < n; i++)
            ok = req_arg(rq, v[i].value, v[i].vlen) && req_argf(rq, v[i].ttl_ms);
        st = req_submit(rq, ok); /* rq freed unless MP_OK; no reply before we return */
    }
    puts_strings_free(v, n); /* copied into the request, or not sent */
    if (st == MP_OK) {
        rq->puts = v;
        rq->nputs = n;
        f->puts_sent++;
        f->puts_batches++;
        return;
    }
    const char *e = st == MP_ERR_NOMEM ? "out of memory" : "cannot reach Redis";
    for (size_t i = 0; i < n; i++)
        if (v[i].cb)
            v[i].cb(e, NULL, 0, 0, v[i].arg);
    free(v);
}

static void on_puts_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    puts_send(arg);
}

mp_status_t fleet_fact_put(fleet_t *f, fleet_fact_t kind, const char *domain,
                           const char *value, size_t len, uint64_t ttl_ms, fleet_fact_cb cb,
                           void *arg)
{
    if (!f || f->closing || !f->puts_ev || !fact_name(kind) || !name_ok(domain) || !value ||
        len > FACT_MAX || ttl_ms == 0)
        return MP_ERR_ARG;
    if (f->nputs == f->putscap) {
        size_t cap = f->putscap ? f->putscap * 2 : 16;
        fact_put_t *v = realloc(f->puts, cap * sizeof *v);
        if (!v)
            return MP_ERR_NOMEM;
        f->puts = v;
        f->putscap = cap;
    }
    char key[NAME_MAX_LEN + 32];
    int kn = fact_key_text(kind, domain, key, sizeof key);
    fact_put_t *w = &f->puts[f->nputs];
    memset(w, 0, sizeof *w);
    w->key = malloc((size_t)kn + 1);
    w->value = malloc(len + 1);
    if (!w->key || !w->value) {
        free(w->key);
        free(w->value);
        return MP_ERR_NOMEM;
    }
    memcpy(w->key, key, (size_t)kn + 1);
    memcpy(w->value, value, len);
    w->value[len] = '\0';
    w->klen = (size_t)kn;
    w->vlen = len;
    w->ttl_ms = ttl_ms;
    w->cb = cb;
    w->arg = arg;
    f->nputs++;
    f->putsbytes += len + (size_t)kn;
    if (f->nputs >= PUTS_MAX || f->putsbytes >= PUTS_BYTES) {
        puts_send(f);
    } else if (!evtimer_pending(f->puts_ev, NULL)) {
        struct timeval tv = {0, PUTS_WAIT_MS * 1000};
        evtimer_add(f->puts_ev, &tv);
    }
    return MP_OK;
}

void fleet_facts_flush(fleet_t *f)
{
    if (f && !f->closing)
        puts_send(f);
}

uint64_t fleet_facts_batches(const fleet_t *f)
{
    return f ? f->puts_batches : 0;
}

unsigned fleet_facts_pending(const fleet_t *f)
{
    return f ? (unsigned)f->nputs + f->puts_sent : 0;
}

/* ---- commands (the job queue, queue.c) ---------------------------------------------------- */

/* A command sent as argv (hiredis formats it) or as RESP already formatted (cmd). */
static mp_status_t command_send(fleet_t *f, int argc, const char **argv, const size_t *lens,
                                const char *cmd, size_t len, fleet_reply_cb cb, void *arg)
{
    req_t *rq = req_new(f, -1, arg);
    if (!rq)
        return MP_ERR_NOMEM;
    rq->rcb = cb;
    /* hiredis puts the command in its output buffer now: nothing of the caller's is kept */
    if (fleet_connect(f) != MP_OK || !f->ac ||
        (cmd ? redisAsyncFormattedCommand(f->ac, on_reply, rq, cmd, len)
             : redisAsyncCommandArgv(f->ac, on_reply, rq, argc, argv, lens)) != REDIS_OK) {
        req_free(rq);
        return MP_ERR_IO;
    }
    struct timeval tv = {(time_t)(f->timeout_ms / 1000),
                         (suseconds_t)(f->timeout_ms % 1000) * 1000};
    evtimer_add(rq->deadline, &tv);
    return MP_OK;
}

mp_status_t fleet_command(fleet_t *f, int argc, const char **argv, const size_t *lens,
                          fleet_reply_cb cb, void *arg)
{
    if (!f || f->closing || !cb || argc < 1)
        return MP_ERR_ARG;
    return command_send(f, argc, argv, lens, NULL, 0, cb, arg);
}

mp_status_t fleet_command_resp(fleet_t *f, const char *cmd, size_t len, fleet_reply_cb cb,
                               void *arg)
{
    if (!f || f->closing || !cb || !cmd || len < 4 || cmd[0] != '*')
        return MP_ERR_ARG;
    return command_send(f, 0, NULL, NULL, cmd, len, cb, arg);
}

bool fleet_connected(const fleet_t *f)
{
    return f && f->ac && (f->ac->c.flags & REDIS_CONNECTED);
}
