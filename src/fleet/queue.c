/*
 * queue.c - jobs over Redis Streams (see queue.h; key layout and the scripts' contracts
 * in docs/internals/fleet.md).
 *
 * Both sides keep two fleet handles: one for short commands and scripts, one for the
 * blocking read (XREADGROUP for a worker, XREAD of the results for a submitter), which
 * holds its connection while it waits. Every change of the job's state in Redis is one
 * script, so that a result is written and its batch acknowledged together: a worker that
 * dies before the script ran leaves the batch pending (reclaimed later), one that dies
 * after has nothing left to lose. Results are keyed by input row, so a batch checked
 * twice (reclaimed from a worker that was only slow) writes the same keys twice.
 *
 * A failed request (Redis lost, no answer in time) keeps its work: batches to submit or
 * to finish wait in memory and are sent again after a back-off of 1 s doubling to 30 s.
 */
#include "fleet/queue.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "fleet/fleet.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/str.h"
#include "util/strmap.h"

#define GROUP "mp:workers"
#define JOBS_KEY "mp:jobs"
#define BLOCK_MS 2000             /* one blocking read waits this long at most */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define KEEP_INTERRUPTED_MS (7ull * 86400 * 1000) /* results of an interrupted job */
#define SUBMIT_MAX 2000           /* addresses per submit script */
#define READ_COUNT_MAX 16         /* batches per XREADGROUP */
#define FINISH_WAIT_MS 50         /* a checked batch waits this long for others to share
                                     its finish script (and the submitter's read); 20 ms
                                     made a third more scripts with four workers */
#define FINISH_MANY 16            /* ... unless this many are waiting */
#define JOBS_MAX 32               /* jobs a worker reads at once */
#define RESULTS_COUNT 512         /* result entries per XREAD of the submitter */
#define RESULTS_PAUSE_MS 50       /* after a read that found less than that, the next one
                                     waits this long, so that the results of several
                                     finish scripts come in one read */
#define KEY_MAX (FLEET_JOB_ID_MAX + 32)

/* ---- the scripts ----------------------------------------------------------------------- */

/* KEYS: work, results, job, jobs set.  ARGV: job id, then per batch: n, key1, addr1, ...
 * -> {key, result, ...} of the keys whose result Redis holds already (not queued) */
static const char script_submit[] =
    "redis.call('SADD', KEYS[4], ARGV[1])\n"
    "redis.call('HSET', KEYS[3], 'state', 'running')\n"
    "redis.pcall('XGROUP', 'CREATE', KEYS[1], '" GROUP "', '0', 'MKSTREAM')\n"
    "local found, i = {}, 2\n"
    "while i <= #ARGV do\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  local f = {}\n"
    "  for j = 1, n do\n"
    "    local v = redis.call('HGET', KEYS[2], ARGV[i])\n"
    "    if v then found[#found + 1] = ARGV[i]; found[#found + 1] = v\n"
    "    else f[#f + 1] = ARGV[i]; f[#f + 1] = ARGV[i + 1] end\n"
    "    i = i + 2\n"
    "  end\n"
    "  if #f > 0 then redis.call('XADD', KEYS[1], '*', unpack(f)) end\n"
    "end\n"
    "return found\n";

/* KEYS: work, results, done, job.  ARGV: group, then per batch: entry id, n, key1,
 * result1, ...  Results first (HSET: a second write of a key is harmless), published on
 * the done stream, then XACK. A job that is gone only acknowledges. -> acknowledged */
static const char script_finish[] =
    "local alive = redis.call('EXISTS', KEYS[4]) == 1\n"
    "local i, acked = 2, 0\n"
    "while i <= #ARGV do\n"
    "  local id, n = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2\n"
    "  if alive and n > 0 then\n"
    "    local f = {}\n"
    "    for j = 1, n do\n"
    "      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])\n"
    "      f[#f + 1] = ARGV[i]; f[#f + 1] = ARGV[i + 1]\n"
    "      i = i + 2\n"
    "    end\n"
    "    redis.call('XADD', KEYS[3], '*', unpack(f))\n"
    "  else i = i + 2 * n end\n"
    "  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], id)\n"
    "end\n"
    "return acked\n";

/* KEYS: work, results, done, job.  ARGV: group, consumer, min idle ms, max deliveries,
 * count.  Claims batches idle that long (XAUTOCLAIM); one delivered more than max times
 * becomes error results (published, acknowledged) instead of being returned.
 * -> {{id, {key, addr, ...}}, ...} claimed for the caller */
static const char script_reclaim[] =
    "if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  return {} end\n"
    "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT',\n"
    "                     ARGV[5])\n"
    "local out = {}\n"
    "for _, e in ipairs(r[2]) do\n"
    "  local id, fields = e[1], e[2]\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)\n"
    "  local n = p[1] and tonumber(p[1][4]) or 0\n"
    "  if n > tonumber(ARGV[4]) and type(fields) == 'table' then\n"
    "    local err = '{\"error\":\"too_many_deliveries\",\"deliveries\":' .. (n - 1) .. '}'\n"
    "    local f = {}\n"
    "    for i = 1, #fields, 2 do\n"
    "      redis.call('HSETNX', KEYS[2], fields[i], err)\n"
    "      f[#f + 1] = fields[i]; f[#f + 1] = redis.call('HGET', KEYS[2], fields[i])\n"
    "    end\n"
    "    if #f > 0 then redis.call('XADD', KEYS[3], '*', unpack(f)) end\n"
    "    redis.call('XACK', KEYS[1], ARGV[1], id)\n"
    "  elseif type(fields) == 'table' then\n"
    "    out[#out + 1] = e\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: work, later.  ARGV: group, delay ms, then per batch: entry id, n, key1, addr1...
 * Hands batches back: each goes to the delayed set, due after delay (Redis' clock), and
 * is acknowledged. -> number handed back */
static const char script_handback[] =
    "local t = redis.call('TIME')\n"
    "local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])\n"
    "local i, n = 3, 0\n"
    "while i <= #ARGV do\n"
    "  local id, c = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2\n"
    "  local f = {}\n"
    "  for j = 1, 2 * c do f[j] = ARGV[i + j - 1] end\n"
    "  i = i + 2 * c\n"
    "  if redis.call('EXISTS', KEYS[1]) == 1 and c > 0 then\n"
    "    redis.call('ZADD', KEYS[2], due, id .. ' ' .. cjson.encode(f))\n"
    "    n = n + 1\n"
    "  end\n"
    "  redis.call('XACK', KEYS[1], ARGV[1], id)\n"
    "end\n"
    "return n\n";

/* KEYS: later, work.  Moves the delayed batches that are due into the stream, at most
 * 100 at a time, atomically (ZRANGEBYSCORE, XADD, ZREM). -> number moved */
static const char script_promote[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)\n"
    "local alive = redis.call('EXISTS', KEYS[2]) == 1\n"
    "for _, m in ipairs(due) do\n"
    "  local sp = string.find(m, ' ', 1, true)\n"
    "  local f = sp and cjson.decode(string.sub(m, sp + 1)) or {}\n"
    "  if alive and #f > 0 then redis.call('XADD', KEYS[2], '*', unpack(f)) end\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "end\n"
    "return #due\n";

/* ---- shared pieces ------------------------------------------------------------------------ */

/* A command under construction, already in Redis' protocol (RESP): each argument is
 * written once as it comes ("$<len>\r\n<bytes>\r\n"), and the count goes in front at
 * the end, into room kept for it (ARGS_HEAD). Before, each argument was copied here, then
 * formatted again by redisAsyncCommandArgv (a malloc and a printf-style header each): a
 * pool's results and batches passed through three copies instead of one. */
#define ARGS_HEAD 24 /* "*" + 20 digits + CRLF */
typedef struct {
    char *b;         /* ARGS_HEAD bytes kept, then the arguments */
    size_t len, cap; /* len counts the ARGS_HEAD bytes */
    size_t n;        /* arguments */
    bool oom;
} args_t;

/* The decimal digits of v, written backwards so that they end at end: their start. */
static char *u64_digits(char *end, unsigned long long v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static bool args_room(args_t *a, size_t more)
{
    if (a->oom)
        return false;
    size_t len = a->b ? a->len : ARGS_HEAD;
    if (more > SIZE_MAX / 2 - len) {
        a->oom = true;
        return false;
    }
    if (len + more > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < len + more)
            cap *= 2;
        char *nb = realloc(a->b, cap);
        if (!nb) {
            a->oom = true;
            return false;
        }
        a->b = nb;
        a->cap = cap;
    }
    a->len = len;
    return true;
}

static void args_add(args_t *a, const char *s, size_t n)
{
    char num[24];
    char *d = u64_digits(num + sizeof num, n);
    size_t dl = (size_t)(num + sizeof num - d);
    if (!args_room(a, 1 + dl + 2 + n + 2))
        return;
    char *o = a->b + a->len;
    *o++ = '$';
    memcpy(o, d, dl);
    o += dl;
    *o++ = '\r';
    *o++ = '\n';
    if (n)
        memcpy(o, s, n);
    o += n;
    *o++ = '\r';
    *o++ = '\n';
    a->len = (size_t)(o - a->b);
    a->n++;
}

static void args_str(args_t *a, const char *s)
{
    args_add(a, s, strlen(s));
}

static void args_num(args_t *a, unsigned long long v)
{
    char num[24];
    char *d = u64_digits(num + sizeof num, v);
    args_add(a, d, (size_t)(num + sizeof num - d));
}

static void args_free(args_t *a)
{
    free(a->b);
    memset(a, 0, sizeof *a);
}

/* Send the arguments as one command; MP_OK: cb will come. The arguments are freed. */
static mp_status_t args_send(fleet_t *f, args_t *a, fleet_reply_cb cb, void *arg)
{
    mp_status_t st = a->oom ? MP_ERR_NOMEM : MP_ERR_ARG;
    if (!a->oom && a->n) {
        char *h = a->b + ARGS_HEAD; /* "*<n>\r\n" right before the first argument */
        *--h = '\n';
        *--h = '\r';
        h = u64_digits(h, a->n);
        *--h = '*';
        st = fleet_command_resp(f, h, (size_t)(a->b + a->len - h), cb, arg);
    }
    args_free(a);
    return st;
}

/* EVAL script nkeys keys... for a job's keys given by suffix ("" = the job's hash). */
static void args_eval(args_t *a, const char *script, const char *job,
                      const char *const *suffixes, size_t nkeys)
{
    char key[KEY_MAX];
    args_str(a, "EVAL");
    args_str(a, script);
    args_num(a, nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        if (!suffixes[i])
            args_str(a, JOBS_KEY);
        else {
            snprintf(key, sizeof key, "mp:job:{%s}%s", job, suffixes[i]);
            args_str(a, key);
        }
    }
}

static const char *const keys_submit[] = {":work", ":res", "", NULL};
static const char *const keys_finish[] = {":work", ":res", ":done", ""};
static const char *const keys_handback[] = {":work", ":later"};
static const char *const keys_promote[] = {":later", ":work"};

static bool job_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= FLEET_JOB_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

/* Back-off after a failed request: 1 s, doubling, at most 30 s; one note per outage. */
typedef struct {
    uint64_t ms;
    fleet_note_cb note;
    void *arg;
} backoff_t;

static struct timeval backoff_fail(backoff_t *b, const char *error)
{
    b->ms = b->ms ? b->ms * 2 : BACKOFF_MIN_MS;
    if (b->ms > BACKOFF_MAX_MS)
        b->ms = BACKOFF_MAX_MS;
    if (b->note) {
        char line[300];
        snprintf(line, sizeof line, "redis: %s; trying again in %llu s", error,
                 (unsigned long long)(b->ms / 1000));
        b->note(line, b->arg);
    }
    struct timeval tv = {(time_t)(b->ms / 1000), (suseconds_t)(b->ms % 1000) * 1000};
    return tv;
}

static void backoff_ok(backoff_t *b)
{
    if (b->ms && b->note)
        b->note("redis: working again", b->arg);
    b->ms = 0;
}

static void arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(ev, &tv);
}

/* Both handles of a side: short commands, and the blocking read. */
static mp_status_t open_pair(struct event_base *base, const char *url, fleet_t **cmd,
                             fleet_t **blk, char *err, size_t errsize)
{
    *cmd = fleet_open(base, url, 5000, err, errsize);
    *blk = *cmd ? fleet_open(base, url, BLOCK_MS + 5000, err, errsize) : NULL;
    if (!*blk) {
        fleet_free(*cmd);
        *cmd = NULL;
        return MP_ERR_IO;
    }
    return MP_OK;
}

/* ---- submitting ------------------------------------------------------------------------ */

typedef struct submit_ctx *submit_ctx_t_ptr;

typedef struct qitem {
    int64_t key;
    char *addr;
    const char *domain;
    fleet_result_cb cb;
    void *arg;
} qitem_t;

struct fleet_jobq {
    struct event_base *base;
    fleet_t *cmd, *blk;
    char job[FLEET_JOB_ID_MAX];
    strmap_t *pending;          /* decimal key -> qitem_t */
    int64_t *out;               /* keys to submit, batched by domain runs */
    size_t nout, capout;
    unsigned *bat;              /* batch sizes over out */
    size_t nbat, capbat;
    const char *cur_domain;     /* the open batch's domain (of its first item) */
    unsigned cur_n;
    bool submitting, reading, checking, closing;
    char last_id[48];           /* of the done stream */
    struct event *flush_ev, *read_ev, *tick_ev;
    backoff_t bo;
    submit_ctx_t_ptr inflight;  /* the submission in flight (freed with the handle) */
    void (*closed_cb)(void *);
    void *closed_arg;
};

static void jobq_kick_flush(fleet_jobq_t *q, uint64_t ms)
{
    if (ms)
        arm(q->flush_ev, ms);
    else {
        static const struct timeval zero = {0, 0};
        event_add(q->flush_ev, &zero);
    }
}

static void qitem_free(void *p)
{
    qitem_t *it = p;
    if (it) {
        free(it->addr);
        free(it);
    }
}

static bool jobq_queue(fleet_jobq_t *q, qitem_t *it)
{
    int64_t *no = mp_array_grow(q->out, &q->capout, q->nout, sizeof *no, 64);
    if (!no)
        return false;
    q->out = no;
    bool same = q->nbat && q->cur_n < FLEET_BATCH_MAX && q->cur_domain &&
                strcmp(q->cur_domain, it->domain) == 0;
    if (!same) {
        unsigned *nb = mp_array_grow(q->bat, &q->capbat, q->nbat, sizeof *nb, 16);
        if (!nb)
            return false;
        q->bat = nb;
        q->bat[q->nbat++] = 0;
        q->cur_n = 0;
        q->cur_domain = it->domain;
    }
    q->out[q->nout++] = it->key;
    q->bat[q->nbat - 1]++;
    q->cur_n++;
    return true;
}

static qitem_t *jobq_take(fleet_jobq_t *q, const char *key)
{
    return strmap_del(q->pending, key);
}

/* One result came (or was found): answer and forget the key. Unknown keys: a result for
 * a key already answered (a batch checked twice), ignored. */
static void jobq_answer(fleet_jobq_t *q, const redisReply *k, const redisReply *v)
{
    if (q->closing || k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        k->len > 30)
        return;
    qitem_t *it = jobq_take(q, k->str);
    if (!it)
        return;
    it->cb(v->str, v->len, it->arg);
    qitem_free(it);
}

typedef struct submit_ctx {
    fleet_jobq_t *q;
    int64_t *keys;
    size_t n;
} submit_ctx_t;

static void on_submit(const char *error, const redisReply *r, void *arg)
{
    submit_ctx_t *sc = arg;
    fleet_jobq_t *q = sc->q;
    q->submitting = false;
    q->inflight = NULL;
    if (!error && r->type != REDIS_REPLY_ARRAY)
        error = "unexpected reply to a submission";
    if (error) {
        /* what is still pending goes into the next submission */
        char k[32];
        for (size_t i = 0; i < sc->n; i++) {
            snprintf(k, sizeof k, "%lld", (long long)sc->keys[i]);
            qitem_t *it = strmap_get(q->pending, k);
            if (it && !jobq_queue(q, it))
                break; /* out of memory: the tick's check submits it again */
        }
        struct timeval tv = backoff_fail(&q->bo, error);
        event_add(q->flush_ev, &tv);
    } else {
        backoff_ok(&q->bo);
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            jobq_answer(q, r->element[i], r->element[i + 1]);
        if (q->nout)
            jobq_kick_flush(q, 0);
    }
    free(sc->keys);
    free(sc);
}

/* Send what is queued (at most SUBMIT_MAX addresses) in one script. */
static void jobq_flush(evutil_socket_t fd, short what, void *arg)
{
    fleet_jobq_t *q = arg;
    (void)fd;
    (void)what;
    if (q->submitting || q->closing || !q->nout)
        return;
    submit_ctx_t *sc = calloc(1, sizeof *sc);
    size_t take = 0, nb = 0;
    while (nb < q->nbat && take + q->bat[nb] <= SUBMIT_MAX)
        take += q->bat[nb++];
    if (!nb) { /* cannot happen: batches hold at most FLEET_BATCH_MAX */
        nb = 1;
        take = q->bat[0];
    }
    if (!sc || !(sc->keys = malloc(take * sizeof *sc->keys))) {
        free(sc);
        jobq_kick_flush(q, BACKOFF_MIN_MS);
        return;
    }
    sc->q = q;
    sc->n = take;
    memcpy(sc->keys, q->out, take * sizeof *sc->keys);
    args_t a = {0};
    args_eval(&a, script_submit, q->job, keys_submit, 4);
    args_str(&a, q->job);
    size_t at = 0;
    char k[32];
    for (size_t b = 0; b < nb; b++) {
        args_num(&a, q->bat[b]);
        for (unsigned i = 0; i < q->bat[b]; i++, at++) {
            snprintf(k, sizeof k, "%lld", (long long)q->out[at]);
            qitem_t *it = strmap_get(q->pending, k);
            args_str(&a, k);
            args_str(&a, it ? it->addr : "");
        }
    }
    memmove(q->out, q->out + take, (q->nout - take) * sizeof *q->out);
    q->nout -= take;
    memmove(q->bat, q->bat + nb, (q->nbat - nb) * sizeof *q->bat);
    q->nbat -= nb;
    if (!q->nbat)
        q->cur_domain = NULL;
    q->submitting = true;
    q->inflight = sc;
    mp_status_t st = args_send(q->cmd, &a, on_submit, sc);
    if (st != MP_OK)
        on_submit(st == MP_ERR_NOMEM ? "out of memory" : "cannot connect", NULL, sc);
}

static void jobq_read(fleet_jobq_t *q);

static void on_read(const char *error, const redisReply *r, void *arg)
{
    fleet_jobq_t *q = arg;
    q->reading = false;
    if (q->closing)
        return;
    if (error) {
        struct timeval tv = backoff_fail(&q->bo, error);
        event_add(q->read_ev, &tv);
        return;
    }
    backoff_ok(&q->bo);
    /* nil (nothing within the block time) or [[stream, [[id, [k, v, ...]], ...]]] */
    size_t got = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        const redisReply *ents = r->element[0]->element[1];
        if (ents->type == REDIS_REPLY_ARRAY)
            got = ents->elements;
        for (size_t i = 0; i < got; i++) {
            const redisReply *e = ents->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            mp_strlcpy(q->last_id, e->element[0]->str, sizeof q->last_id);
            const redisReply *f = e->element[1];
            for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2)
                jobq_answer(q, f->element[j], f->element[j + 1]);
        }
    }
    /* A blocking read returns as soon as one finish script wrote: read again at once
     * only after a full read (a backlog) or an empty one (the block time ran out), else
     * let the next finish scripts' entries gather for RESULTS_PAUSE_MS. Every worker
     * finishes on its own timer (FINISH_WAIT_MS): reading at once woke the submitter for
     * every script of every worker, a read, its reply and a wake-up per few batches. */
    if (got > 0 && got < RESULTS_COUNT)
        arm(q->read_ev, RESULTS_PAUSE_MS);
    else
        jobq_read(q);
}

/* Follow the done stream: XREAD COUNT 512 BLOCK 2000 STREAMS done <last id>
 * (RESULTS_COUNT, BLOCK_MS). */
static void jobq_read(fleet_jobq_t *q)
{
    if (q->reading || q->closing)
        return;
    char key[KEY_MAX];
    snprintf(key, sizeof key, "mp:job:{%s}:done", q->job);
    args_t a = {0};
    args_str(&a, "XREAD");
    args_str(&a, "COUNT");
    args_num(&a, RESULTS_COUNT);
    args_str(&a, "BLOCK");
    args_num(&a, BLOCK_MS);
    args_str(&a, "STREAMS");
    args_str(&a, key);
    args_str(&a, q->last_id);
    q->reading = true;
    mp_status_t st = args_send(q->blk, &a, on_read, q);
    if (st != MP_OK)
        on_read(st == MP_ERR_NOMEM ? "out of memory" : "cannot connect", NULL, q);
}

static void jobq_read_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    jobq_read(arg);
}

static void requeue_one(const char *key, void *value, void *arg)
{
    (void)key;
    jobq_queue(arg, value);
}

static void on_exists(const char *error, const redisReply *r, void *arg)
{
    fleet_jobq_t *q = arg;
    q->checking = false;
    if (error || q->closing || r->type != REDIS_REPLY_INTEGER || r->integer != 0)
        return;
    /* the job is gone from Redis (restarted without its data): submit again what is
     * pending, and read the results from the start */
    q->nout = q->nbat = 0;
    q->cur_domain = NULL;
    strmap_each(q->pending, requeue_one, q);
    mp_strlcpy(q->last_id, "0", sizeof q->last_id);
    jobq_kick_flush(q, 0);
}

/* Every 2 s while addresses are pending: is the job still in Redis? */
static void jobq_tick(evutil_socket_t fd, short what, void *arg)
{
    fleet_jobq_t *q = arg;
    (void)fd;
    (void)what;
    if (q->closing || q->checking || q->submitting || !strmap_count(q->pending))
        return;
    char key[KEY_MAX];
    snprintf(key, sizeof key, "mp:job:{%s}", q->job);
    /* HEXISTS: a command the scripts never call, so INFO commandstats counts round trips */
    const char *argv[] = {"HEXISTS", key, "state"};
    size_t lens[] = {7, strlen(key), 5};
    q->checking = fleet_command(q->cmd, 3, argv, lens, on_exists, q) == MP_OK;
}

static void on_ignore(const char *error, const redisReply *r, void *arg)
{
    (void)error;
    (void)r;
    (void)arg;
}

/* CMD key... [extra] on some of the job's keys, answer ignored (best effort). */
static void jobq_keys_cmd(fleet_jobq_t *q, const char *cmd, const char *const *suffixes,
                          size_t n)
{
    char key[KEY_MAX];
    args_t a = {0};
    args_str(&a, cmd);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "mp:job:{%s}%s", q->job, suffixes[i]);
        args_str(&a, key);
    }
    args_send(q->cmd, &a, on_ignore, NULL);
}

static void jobq_free(fleet_jobq_t *q)
{
    if (q->flush_ev)
        event_free(q->flush_ev);
    if (q->read_ev)
        event_free(q->read_ev);
    if (q->tick_ev)
        event_free(q->tick_ev);
    fleet_free(q->blk);
    fleet_free(q->cmd); /* drops the callbacks of requests in flight */
    if (q->inflight) {
        free(q->inflight->keys);
        free(q->inflight);
    }
    strmap_free(q->pending, qitem_free);
    free(q->out);
    free(q->bat);
    free(q);
}

fleet_jobq_t *fleet_jobq_open(struct event_base *base, const char *url, const char *job,
                              fleet_note_cb note, void *note_arg, char *err, size_t errsize)
{
    if (!job_id_ok(job)) {
        snprintf(err, errsize, "job id '%s' cannot name Redis keys", job);
        return NULL;
    }
    fleet_jobq_t *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    q->base = base;
    mp_strlcpy(q->job, job, sizeof q->job);
    mp_strlcpy(q->last_id, "0", sizeof q->last_id);
    q->bo.note = note;
    q->bo.arg = note_arg;
    if (open_pair(base, url, &q->cmd, &q->blk, err, errsize) != MP_OK)
        goto fail;
    q->pending = strmap_new();
    q->flush_ev = event_new(base, -1, 0, jobq_flush, q);
    q->read_ev = event_new(base, -1, 0, jobq_read_ev, q);
    q->tick_ev = event_new(base, -1, EV_PERSIST, jobq_tick, q);
    if (!q->pending || !q->flush_ev || !q->read_ev || !q->tick_ev) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    /* an earlier run's batches go (what is pending now is submitted again); results of
     * an interrupted run are kept for good again */
    jobq_keys_cmd(q, "DEL", (const char *const[]){":work", ":later"}, 2);
    jobq_keys_cmd(q, "PERSIST", (const char *const[]){":res"}, 1);
    jobq_keys_cmd(q, "PERSIST", (const char *const[]){":done"}, 1);
    jobq_keys_cmd(q, "PERSIST", (const char *const[]){""}, 1);
    arm(q->tick_ev, 2000);
    jobq_read(q);
    return q;
fail:
    jobq_free(q);
    return NULL;
}

mp_status_t fleet_jobq_add(fleet_jobq_t *q, int64_t key, const char *addr,
                           fleet_result_cb cb, void *arg)
{
    char k[32];
    if (!q || q->closing || !cb || key < 0)
        return MP_ERR_ARG;
    snprintf(k, sizeof k, "%lld", (long long)key);
    if (strmap_get(q->pending, k))
        return MP_ERR_ARG;
    qitem_t *it = calloc(1, sizeof *it);
    if (!it || !(it->addr = strdup(addr))) {
        free(it);
        return MP_ERR_NOMEM;
    }
    it->key = key;
    const char *at = strrchr(it->addr, '@');
    it->domain = at ? at + 1 : "";
    it->cb = cb;
    it->arg = arg;
    if (!strmap_put(q->pending, k, it)) {
        qitem_free(it);
        return MP_ERR_NOMEM;
    }
    if (!jobq_queue(q, it)) {
        qitem_free(strmap_del(q->pending, k));
        return MP_ERR_NOMEM;
    }
    if (!q->submitting && !q->bo.ms)
        jobq_kick_flush(q, 0);
    return MP_OK;
}

size_t fleet_jobq_pending(const fleet_jobq_t *q)
{
    return q ? strmap_count(q->pending) : 0;
}

typedef struct {
    fleet_jobq_t *q;
    unsigned left;
} close_ctx_t;

static void on_close_reply(const char *error, const redisReply *r, void *arg)
{
    close_ctx_t *cc = arg;
    (void)error;
    (void)r;
    if (--cc->left == 0) {
        fleet_jobq_t *q = cc->q;
        void (*done)(void *) = q->closed_cb;
        void *darg = q->closed_arg;
        free(cc);
        jobq_free(q);
        if (done)
            done(darg);
    }
}

void fleet_jobq_abandon(fleet_jobq_t *q)
{
    if (q)
        jobq_free(q);
}

void fleet_jobq_close(fleet_jobq_t *q, bool complete, void (*done)(void *arg), void *arg)
{
    if (!q || q->closing)
        return;
    q->closing = true;
    q->closed_cb = done;
    q->closed_arg = arg;
    char work[KEY_MAX], res[KEY_MAX], dkey[KEY_MAX], later[KEY_MAX], job[KEY_MAX];
    snprintf(work, sizeof work, "mp:job:{%s}:work", q->job);
    snprintf(res, sizeof res, "mp:job:{%s}:res", q->job);
    snprintf(dkey, sizeof dkey, "mp:job:{%s}:done", q->job);
    snprintf(later, sizeof later, "mp:job:{%s}:later", q->job);
    snprintf(job, sizeof job, "mp:job:{%s}", q->job);
    close_ctx_t *cc = calloc(1, sizeof *cc);
    if (!cc) {
        jobq_free(q);
        if (done)
            done(arg);
        return;
    }
    cc->q = q;
    /* one transaction: workers see the job whole or gone */
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *srem[] = {"SREM", JOBS_KEY, q->job};
    const char *del_all[] = {"DEL", work, res, dkey, later, job};
    const char *del_work[] = {"DEL", work, later};
    char keep[32];
    snprintf(keep, sizeof keep, "%llu", KEEP_INTERRUPTED_MS);
    const char *exp_res[] = {"PEXPIRE", res, keep}, *exp_done[] = {"PEXPIRE", dkey, keep},
               *exp_job[] = {"PEXPIRE", job, keep};
    const char *const *cmds[8];
    int argc[8];
    size_t n = 0;
    cmds[n] = multi, argc[n++] = 1;
    cmds[n] = srem, argc[n++] = 3;
    if (complete) {
        cmds[n] = del_all, argc[n++] = 6;
    } else {
        cmds[n] = del_work, argc[n++] = 3;
        cmds[n] = exp_res, argc[n++] = 3;
        cmds[n] = exp_done, argc[n++] = 3;
        cmds[n] = exp_job, argc[n++] = 3;
    }
    cmds[n] = exec, argc[n++] = 1;
    for (size_t i = 0; i < n; i++) {
        size_t lens[8];
        for (int j = 0; j < argc[i]; j++)
            lens[j] = strlen(cmds[i][j]);
        cc->left++;
        if (fleet_command(q->cmd, argc[i], (const char **)cmds[i], lens, on_close_reply, cc) !=
            MP_OK)
            cc->left--;
    }
    if (!cc->left) {
        cc->left = 1;
        on_close_reply(NULL, NULL, cc);
    }
}

/* ---- working ----------------------------------------------------------------------------- */

typedef struct wentry wentry_t;

typedef struct {
    wentry_t *e;
    char *key, *addr, *json;
    bool done;
} witem_t;

struct wentry {
    char job[FLEET_JOB_ID_MAX];
    char id[48];
    size_t n, ndone;
    bool sending;           /* in a finish or hand-back script now */
    wentry_t *next;
    witem_t items[];
};

/* A request's context, kept in the worker (fleet_free drops callbacks: nothing to leak). */
typedef struct {
    fleet_worker_t *w;
    char job[FLEET_JOB_ID_MAX];
    bool hand_back, used;
} wreq_t;

#define TICK_REQS (JOBS_MAX * 3)

struct fleet_worker {
    struct event_base *base;
    wreq_t fin;             /* the finish (or hand-back) script in flight */
    wreq_t tick[TICK_REQS]; /* keep-alive, reclaim, promote requests in flight */
    fleet_t *cmd, *blk;
    fleet_wopts_t o;
    char name[128];
    char jobs[JOBS_MAX][FLEET_JOB_ID_MAX];
    size_t njobs;
    uint64_t jobs_at;       /* when the job list was read (mp_now_ms) */
    wentry_t *held;         /* every batch held, finished or not */
    unsigned nheld;
    unsigned nready;        /* of those, checked and not in a script (wentry_ready) */
    bool reading, listing, finishing, ticking, stopping, hand_back, stopped;
    unsigned ticks_out;     /* keep-alive / reclaim / promote requests in flight */
    struct event *read_ev, *finish_ev, *tick_ev, *stop_ev;
    backoff_t bo;
    fleet_wstats_t st;
};

static void worker_read(fleet_worker_t *w);
static void worker_check_stopped(fleet_worker_t *w);

static void wentry_free(wentry_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->items[i].key);
        free(e->items[i].addr);
        free(e->items[i].json);
    }
    free(e);
}

/* Checked and not being sent: what the next finish script takes. The worker counts them
 * (nready) where a batch becomes or stops being so, rather than walking its list at
 * every finished check. */
static bool wentry_ready(const wentry_t *e)
{
    return e->ndone == e->n && !e->sending;
}

static void worker_unhold(fleet_worker_t *w, wentry_t *e)
{
    if (wentry_ready(e))
        w->nready--;
    for (wentry_t **pp = &w->held; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            w->nheld--;
            break;
        }
    wentry_free(e);
}

static bool worker_holds(const fleet_worker_t *w, const char *job, const char *id)
{
    for (const wentry_t *e = w->held; e; e = e->next)
        if (strcmp(e->id, id) == 0 && strcmp(e->job, job) == 0)
            return true;
    return false;
}

static void finish_soon(fleet_worker_t *w);

static void zero_timer(struct event *ev)
{
    static const struct timeval zero = {0, 0};
    event_add(ev, &zero);
}

/* A batch from the stream ({id, {key, addr, ...}}): hold it, hand its addresses out. */
static void worker_take(fleet_worker_t *w, const char *job, const redisReply *e, bool reclaimed)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= 48 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *f = e->element[1];
    if (worker_holds(w, job, e->element[0]->str))
        return; /* ours already (a reclaim of a batch we are still finishing) */
    size_t n = f->elements / 2;
    wentry_t *we = calloc(1, sizeof *we + n * sizeof(witem_t));
    if (!we)
        return; /* stays pending: reclaimed later */
    mp_strlcpy(we->job, job, sizeof we->job);
    mp_strlcpy(we->id, e->element[0]->str, sizeof we->id);
    we->n = n;
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = f->element[2 * i], *a = f->element[2 * i + 1];
        we->items[i].e = we;
        if (k->type != REDIS_REPLY_STRING || a->type != REDIS_REPLY_STRING ||
            !(we->items[i].key = strdup(k->str)) || !(we->items[i].addr = strdup(a->str))) {
            wentry_free(we);
            return;
        }
    }
    we->next = w->held;
    w->held = we;
    w->nheld++;
    if (n == 0)
        w->nready++;
    w->st.batches++;
    if (reclaimed)
        w->st.reclaimed++;
    if (n == 0) {
        finish_soon(w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        w->st.addresses++;
        if (w->o.check(w, &we->items[i], we->items[i].addr, w->o.arg) != MP_OK)
            fleet_worker_done(w, &we->items[i], "{\"error\":\"check_failed\"}");
    }
}

/* Checked batches not sent yet: finish them in one script, at once when there are many
 * (or the worker stops), else after FINISH_WAIT_MS, so that batches ending close together
 * share a script, a result entry and the submitter's read. */
static void finish_soon(fleet_worker_t *w)
{
#ifndef NDEBUG
    unsigned ready = 0;
    for (const wentry_t *e = w->held; e; e = e->next)
        ready += wentry_ready(e);
    assert(ready == w->nready);
#endif
    if (!w->nready)
        return;
    if (w->nready >= FINISH_MANY || w->stopping) {
        zero_timer(w->finish_ev);
    } else if (!evtimer_pending(w->finish_ev, NULL)) {
        struct timeval tv = {0, FINISH_WAIT_MS * 1000};
        event_add(w->finish_ev, &tv);
    }
}

void fleet_worker_done(fleet_worker_t *w, void *item, const char *json)
{
    witem_t *it = item;
    if (it->done)
        return;
    it->done = true;
    it->json = json ? strdup(json) : NULL;
    if (++it->e->ndone == it->e->n) {
        if (!it->e->sending)
            w->nready++;
        finish_soon(w);
    }
}

static const char *job_of_stream(const redisReply *k, char *out, size_t size)
{
    /* mp:job:{J}:work */
    if (k->type != REDIS_REPLY_STRING || k->len < 14 || strncmp(k->str, "mp:job:{", 8) != 0)
        return NULL;
    const char *end = strchr(k->str + 8, '}');
    if (!end || (size_t)(end - k->str - 8) >= size)
        return NULL;
    memcpy(out, k->str + 8, (size_t)(end - k->str - 8));
    out[end - k->str - 8] = '\0';
    return out;
}

static void on_jobs(const char *error, const redisReply *r, void *arg)
{
    fleet_worker_t *w = arg;
    w->listing = false;
    if (error) {
        struct timeval tv = backoff_fail(&w->bo, error);
        event_add(w->read_ev, &tv);
    } else {
        backoff_ok(&w->bo);
        w->jobs_at = mp_now_ms();
        w->njobs = 0;
        for (size_t i = 0;
             r->type == REDIS_REPLY_ARRAY && i < r->elements && w->njobs < JOBS_MAX; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING && job_id_ok(r->element[i]->str))
                mp_strlcpy(w->jobs[w->njobs++], r->element[i]->str, FLEET_JOB_ID_MAX);
        if (!w->njobs)
            arm(w->read_ev, 1000); /* nothing to do: look again in a second */
        else
            worker_read(w);
    }
    /* a stop asked while the list was being read waited for this answer */
    worker_check_stopped(w);
}

static void on_xread(const char *error, const redisReply *r, void *arg)
{
    fleet_worker_t *w = arg;
    w->reading = false;
    if (error) {
        if (strstr(error, "NOGROUP") || strstr(error, "no longer exists")) {
            w->jobs_at = 0; /* a job ended meanwhile: read the list again */
            zero_timer(w->read_ev);
        } else {
            struct timeval tv = backoff_fail(&w->bo, error);
            event_add(w->read_ev, &tv);
        }
        worker_check_stopped(w);
        return;
    }
    backoff_ok(&w->bo);
    /* nil, or [[stream, [[id, [k, v, ...]], ...]], ...] */
    for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
        const redisReply *sr = r->element[s];
        char job[FLEET_JOB_ID_MAX];
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
            !job_of_stream(sr->element[0], job, sizeof job))
            continue;
        const redisReply *ents = sr->element[1];
        for (size_t i = 0; ents->type == REDIS_REPLY_ARRAY && i < ents->elements; i++)
            worker_take(w, job, ents->element[i], false);
    }
    zero_timer(w->read_ev);
    worker_check_stopped(w);
}

/* Read more batches while there is room: XREADGROUP ... BLOCK on the second handle. */
static void worker_read(fleet_worker_t *w)
{
    if (w->reading || w->listing || w->stopping || w->nheld >= w->o.batches)
        return;
    if (!w->jobs_at || mp_now_ms() - w->jobs_at >= 2000 || !w->njobs) {
        const char *argv[] = {"SMEMBERS", JOBS_KEY};
        size_t lens[] = {8, strlen(JOBS_KEY)};
        w->listing = true;
        if (fleet_command(w->cmd, 2, argv, lens, on_jobs, w) != MP_OK)
            on_jobs("cannot connect", NULL, w);
        return;
    }
    unsigned room = w->o.batches - w->nheld;
    unsigned least = w->o.batches / 16 < READ_COUNT_MAX ? w->o.batches / 16 : READ_COUNT_MAX;
    if (w->nheld && room < least)
        return; /* enough in hand: read when a sixteenth is free (a finish calls again);
                   waiting for a quarter left the engine fewer domains per server to put
                   in one session: 8 % more sessions */
    args_t a = {0};
    args_str(&a, "XREADGROUP");
    args_str(&a, "GROUP");
    args_str(&a, GROUP);
    args_str(&a, w->name);
    args_str(&a, "COUNT");
    args_num(&a, room < READ_COUNT_MAX ? room : READ_COUNT_MAX);
    args_str(&a, "BLOCK");
    args_num(&a, BLOCK_MS);
    args_str(&a, "STREAMS");
    char key[KEY_MAX];
    for (size_t i = 0; i < w->njobs; i++) {
        snprintf(key, sizeof key, "mp:job:{%s}:work", w->jobs[i]);
        args_str(&a, key);
    }
    for (size_t i = 0; i < w->njobs; i++)
        args_str(&a, ">");
    w->reading = true;
    mp_status_t st = args_send(w->blk, &a, on_xread, w);
    if (st != MP_OK)
        on_xread(st == MP_ERR_NOMEM ? "out of memory" : "cannot connect", NULL, w);
}

static void worker_read_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_read(arg);
}

/* Add a batch's (id, n, key, value...) to a finish or hand-back script. */
static void args_entry(args_t *a, const wentry_t *e, bool results)
{
    args_str(a, e->id);
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        n += !results || e->items[i].json;
    args_num(a, n);
    for (size_t i = 0; i < e->n; i++) {
        if (results && !e->items[i].json)
            continue;
        args_str(a, e->items[i].key);
        args_str(a, results ? e->items[i].json : e->items[i].addr);
    }
}

static void on_finish(const char *error, const redisReply *r, void *arg)
{
    wreq_t *rq = arg;
    fleet_worker_t *w = rq->w;
    (void)r;
    w->finishing = false;
    for (wentry_t *e = w->held, *next; e; e = next) {
        next = e->next;
        if (!e->sending || strcmp(e->job, rq->job) != 0)
            continue;
        e->sending = false;
        if (wentry_ready(e))
            w->nready++;
        if (!error) {
            if (rq->hand_back)
                w->st.handed_back++;
            worker_unhold(w, e);
        }
    }
    rq->used = false;
    if (error) {
        struct timeval tv = backoff_fail(&w->bo, error);
        event_add(w->finish_ev, &tv);
    } else {
        backoff_ok(&w->bo);
        finish_soon(w);
        zero_timer(w->read_ev);
    }
    worker_check_stopped(w);
}

/* Finished batches of one job (or, handing back, every batch) in one script. */
static void worker_finish(evutil_socket_t fd, short what, void *arg)
{
    fleet_worker_t *w = arg;
    (void)fd;
    (void)what;
    if (w->finishing)
        return;
    const char *job = NULL;
    for (wentry_t *e = w->held; e && !job; e = e->next)
        if (w->hand_back || e->ndone == e->n)
            job = e->job;
    if (!job)
        return;
    wreq_t *rq = &w->fin;
    rq->w = w;
    rq->used = true;
    rq->hand_back = w->hand_back;
    mp_strlcpy(rq->job, job, sizeof rq->job);
    args_t a = {0};
    if (rq->hand_back) {
        args_eval(&a, script_handback, job, keys_handback, 2);
        args_str(&a, GROUP);
        args_str(&a, "0");
    } else {
        args_eval(&a, script_finish, job, keys_finish, 4);
        args_str(&a, GROUP);
    }
    unsigned n = 0;
    for (wentry_t *e = w->held; e && n < 64; e = e->next) {
        if (strcmp(e->job, rq->job) != 0 || (!rq->hand_back && e->ndone != e->n))
            continue;
        args_entry(&a, e, !rq->hand_back);
        if (wentry_ready(e))
            w->nready--;
        e->sending = true;
        n++;
    }
    w->finishing = true;
    mp_status_t st = args_send(w->cmd, &a, on_finish, rq);
    if (st != MP_OK)
        on_finish(st == MP_ERR_NOMEM ? "out of memory" : "cannot connect", NULL, rq);
}

static void on_tick_reply(const char *error, const redisReply *r, void *arg)
{
    wreq_t *rq = arg;
    fleet_worker_t *w = rq->w;
    w->ticks_out--;
    if (!error && r->type == REDIS_REPLY_ARRAY && !w->stopping)
        for (size_t i = 0; i < r->elements; i++)
            worker_take(w, rq->job, r->element[i], true);
    rq->used = false;
    worker_check_stopped(w);
}

static void worker_tick_send(fleet_worker_t *w, const char *job, args_t *a)
{
    wreq_t *rq = NULL;
    for (size_t i = 0; i < TICK_REQS && !rq; i++)
        if (!w->tick[i].used)
            rq = &w->tick[i];
    if (!rq) {
        args_free(a);
        return;
    }
    rq->w = w;
    rq->used = true;
    mp_strlcpy(rq->job, job, sizeof rq->job);
    w->ticks_out++;
    if (args_send(w->cmd, a, on_tick_reply, rq) != MP_OK) {
        w->ticks_out--;
        rq->used = false;
    }
}

/* Every claim_idle / 3 (at most 5 s): keep held batches claimed (XCLAIM ... JUSTID resets their idle
 * time, so a long greylisting wait is not mistaken for a dead worker), reclaim batches
 * idle for claim_idle (XAUTOCLAIM, in the reclaim script), move due delayed batches. */
static void worker_tick(evutil_socket_t fd, short what, void *arg)
{
    fleet_worker_t *w = arg;
    (void)fd;
    (void)what;
    if (w->bo.ms || w->ticks_out)
        return; /* Redis is away, or the last tick is not answered yet */
    char key[KEY_MAX];
    for (size_t j = 0; j < w->njobs; j++) {
        const char *job = w->jobs[j];
        args_t a = {0};
        unsigned n = 0;
        snprintf(key, sizeof key, "mp:job:{%s}:work", job);
        args_str(&a, "XCLAIM");
        args_str(&a, key);
        args_str(&a, GROUP);
        args_str(&a, w->name);
        args_str(&a, "0");
        for (wentry_t *e = w->held; e; e = e->next)
            if (strcmp(e->job, job) == 0 && !e->sending) {
                args_str(&a, e->id);
                n++;
            }
        args_str(&a, "JUSTID");
        if (n)
            worker_tick_send(w, job, &a);
        else
            args_free(&a);
        if (!w->stopping && w->nheld < w->o.batches) {
            args_eval(&a, script_reclaim, job, keys_finish, 4);
            args_str(&a, GROUP);
            args_str(&a, w->name);
            args_num(&a, w->o.claim_idle_ms);
            args_num(&a, w->o.max_deliveries);
            args_num(&a, w->o.batches - w->nheld);
            worker_tick_send(w, job, &a);
            args_eval(&a, script_promote, job, keys_promote, 2);
            worker_tick_send(w, job, &a);
        }
    }
}

static void worker_stop_ev(evutil_socket_t fd, short what, void *arg)
{
    fleet_worker_t *w = arg;
    (void)fd;
    (void)what;
    if (!w->stopped) {
        w->stopped = true;
        w->o.stopped(w, w->o.arg);
    }
}

/* A stopping worker that holds nothing and waits for no read is done. */
static void worker_check_stopped(fleet_worker_t *w)
{
    if (w->stopping && !w->nheld && !w->reading && !w->listing && !w->finishing &&
        !w->ticks_out && !w->stopped)
        zero_timer(w->stop_ev);
}

fleet_worker_t *fleet_worker_open(struct event_base *base, const char *url,
                                  const fleet_wopts_t *o, char *err, size_t errsize)
{
    fleet_worker_t *w = calloc(1, sizeof *w);
    if (!w || !o->check || !o->stopped) {
        free(w);
        snprintf(err, errsize, w ? "out of memory" : "no check function");
        return NULL;
    }
    w->base = base;
    w->o = *o;
    if (!w->o.batches)
        w->o.batches = 64;
    if (!w->o.claim_idle_ms)
        w->o.claim_idle_ms = 120000;
    if (!w->o.max_deliveries)
        w->o.max_deliveries = 5;
    w->bo.note = o->note;
    w->bo.arg = o->arg;
    if (o->name && *o->name) {
        mp_strlcpy(w->name, o->name, sizeof w->name);
    } else {
        char host[64] = "worker";
        unsigned char rnd[4] = {0};
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            memset(rnd, 0, sizeof rnd);
        snprintf(w->name, sizeof w->name, "%s:%ld:%02x%02x%02x%02x", host, (long)getpid(),
                 rnd[0], rnd[1], rnd[2], rnd[3]);
    }
    w->o.name = w->name;
    if (open_pair(base, url, &w->cmd, &w->blk, err, errsize) != MP_OK)
        goto fail;
    w->read_ev = event_new(base, -1, 0, worker_read_ev, w);
    w->finish_ev = event_new(base, -1, 0, worker_finish, w);
    w->tick_ev = event_new(base, -1, EV_PERSIST, worker_tick, w);
    w->stop_ev = event_new(base, -1, 0, worker_stop_ev, w);
    if (!w->read_ev || !w->finish_ev || !w->tick_ev || !w->stop_ev) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    uint64_t every = w->o.claim_idle_ms / 3; /* at most 5 s: handed-back batches wait */
    arm(w->tick_ev, every < 100 ? 100 : every > 5000 ? 5000 : every);
    zero_timer(w->read_ev);
    return w;
fail:
    fleet_worker_free(w);
    return NULL;
}

void fleet_worker_stop(fleet_worker_t *w, bool hand_back)
{
    if (!w)
        return;
    w->stopping = true;
    if (hand_back && !w->hand_back) {
        w->hand_back = true;
        zero_timer(w->finish_ev);
    }
    worker_check_stopped(w);
}

void fleet_worker_stats(const fleet_worker_t *w, fleet_wstats_t *out)
{
    *out = w->st;
    out->held = w->nheld;
}

void fleet_worker_free(fleet_worker_t *w)
{
    if (!w)
        return;
    fleet_free(w->blk);
    fleet_free(w->cmd); /* drops the callbacks in flight: their requests are freed below */
    while (w->held)
        worker_unhold(w, w->held);
    if (w->read_ev)
        event_free(w->read_ev);
    if (w->finish_ev)
        event_free(w->finish_ev);
    if (w->tick_ev)
        event_free(w->tick_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    free(w);
}
