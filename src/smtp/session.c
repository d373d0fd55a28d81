/*
 * session.c - one SMTP client session on a libevent loop; see session.h.
 *
 * Does: connect, read the banner, EHLO (HELO fallback), STARTTLS when offered or
 * demanded, MAIL FROM, RCPT TO for every recipient (pipelined when PIPELINING is
 * advertised), further transactions (RSET, MAIL FROM, RCPT) for recipients refused with
 * "too many recipients", and QUIT; record every command and reply line with its time,
 * every RCPT reply, TLS facts and how the session ended.
 * Does not: send DATA (there is no DATA state), decide what a reply means (classify),
 * resolve names (dns), retry or rate-limit (sched).
 *
 * Shape (OpenSMTPD smtp_client.c, curl smtp.c): an enum of states with a name table,
 * smtp_sess_enter() as the ONLY assignment to s->state (it logs, re-arms the step
 * deadline and sends the state's command), one reply dispatcher sess_on_reply() calling
 * one on_<cmd>_reply() per command, and one I/O event handler. Two exits: a polite QUIT
 * or sess_fail(); both end in sess_finish(), which stops all I/O and timers and
 * schedules the done callback on the loop. The session is freed after that callback
 * returns, never inside one of its own libevent callbacks.
 *
 * Ownership: the session owns copies of all options and recipients, its bufferevent
 * (and through it the socket and the SSL object) and its transcript. The SSL_CTX is
 * borrowed (SSL_new takes its own reference).
 */
#include "smtp/session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "net/socks5.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define SMTP_TRANSCRIPT_MAX 500 /* transcript lines kept per session */
#define SMTP_ARG_MAX 512        /* longest HELO name or address we put in a command */
#define SMTP_CMD_MAX 1024       /* longest command line we send (incl. CRLF) */
#define TXN_NONE SIZE_MAX       /* txn_refused: no recipient refused as too many */

/*
 * The conversation (RFC 5321 §3.1 session initiation, §4.1.1 commands, §4.3.2 reply
 * sequences; RFC 3207 STARTTLS; RFC 2920 PIPELINING):
 *
 *   CONNECT --connected--> BANNER --2xx--> EHLO --2xx, STARTTLS offered+wanted--> STARTTLS
 *                            |               |--5xx (not 530)--> HELO --2xx--> MAIL
 *                            |               |--530, TLS possible--> STARTTLS
 *                            |               '--2xx--> MAIL
 *   CONNECT --connected to the SOCKS5 proxy (opts.egress)--> PROXY --tunnel open--> BANNER
 *            (RFC 1928/1929, net/socks5.h; any failure: END_CONNECT naming the proxy)
 *   STARTTLS --220--> TLS_HANDSHAKE --ok--> EHLO (again, §4.2 of RFC 3207: forget caps)
 *            '--other: demanded--> stop (END_REPLY) ; opportunistic--> MAIL in clear
 *   MAIL --2xx--> RCPT ; --530 (TLS required), TLS offered, not yet tried--> STARTTLS
 *   RCPT --one reply per recipient of the transaction (all in one write with PIPELINING)
 *        --> QUIT      every recipient has its answer (§4.1.1.10: QUIT ends the
 *                      transaction, no RSET needed), or no progress, or max_txn reached
 *        --> RSET      some got 452 4.5.3 "too many recipients" (§4.5.3.1.10) after at
 *                      least one real answer in this transaction
 *   RSET (§4.1.1.5) --2xx--> MAIL --2xx--> RCPT (the refused ones, in their order, at most
 *                      as many as the server took in the transaction that refused)
 *   QUIT --any reply or close--> DONE
 *
 *   Any other reply before RCPT stops the session (END_REPLY) and goes to QUIT, except
 *   421 (§3.8: the server is closing the channel) which closes at once. Timeouts,
 *   closes, garbage and TLS failures end it through sess_fail() without QUIT. Once the
 *   first transaction's RCPTs are answered the outcome is END_OK, whatever the later
 *   transactions meet: what they did not answer keeps its earlier reply (or none).
 *   There is no DATA state: this client cannot send DATA.
 */
static const char *const smtp_state_names[SMTP_ST__COUNT] = {
    [SMTP_ST_CONNECT] = "CONNECT",
    [SMTP_ST_PROXY] = "PROXY",
    [SMTP_ST_BANNER] = "BANNER",
    [SMTP_ST_EHLO] = "EHLO",
    [SMTP_ST_HELO] = "HELO",
    [SMTP_ST_STARTTLS] = "STARTTLS",
    [SMTP_ST_TLS_HANDSHAKE] = "TLS_HANDSHAKE",
    [SMTP_ST_MAIL] = "MAIL",
    [SMTP_ST_RCPT] = "RCPT",
    [SMTP_ST_RSET] = "RSET",
    [SMTP_ST_DRAIN] = "DRAIN",
    [SMTP_ST_IDLE] = "IDLE",
    [SMTP_ST_QUIT] = "QUIT",
    [SMTP_ST_DONE] = "DONE",
};

static const char *const smtp_end_names[] = {
    [SMTP_END_OK] = "ok",
    [SMTP_END_CONNECT] = "connect",
    [SMTP_END_TIMEOUT] = "timeout",
    [SMTP_END_CLOSED] = "closed",
    [SMTP_END_PROTOCOL] = "protocol",
    [SMTP_END_TLS] = "tls",
    [SMTP_END_REPLY] = "reply",
    [SMTP_END_LOCAL] = "local",
};

struct smtp_sess {
    struct event_base *base;
    smtp_state_t state;
    uint64_t t0;
    char peer[64]; /* "ip:port", for log lines */

    /* options (copied) */
    char *helo, *mail_from, *sni;
    smtp_timeouts_t to;
    bool want_tls, smtputf8;
    bool pipeline_mail, keep_open;
    unsigned budget;  /* refusals the session may take (error budget) */
    SSL_CTX *ssl_ctx;
    SSL_CTX *(*ssl_ctx_get)(void *arg);
    void *ssl_ctx_arg;
    char **rcpts;
    size_t nrcpt;

    /* I/O */
    struct bufferevent *bev; /* socket bufferevent, or the TLS filter over it */
    struct event *step_ev, *sess_ev, *done_ev;

    /* transactions: recipients [0, rcpt_done) have their answer; the open transaction
     * carries [rcpt_done, txn_end); rcpt_sent/rcpt_replied run inside that range */
    size_t txn_limit; /* RCPTs per transaction, 0 = no limit; lowered by 452 4.5.3 */
    unsigned txn_max; /* transactions this session may open */
    size_t rcpt_done, txn_end;
    size_t txn_refused; /* first "too many recipients" of the open transaction, or TXN_NONE */

    /* progress */
    size_t rcpt_sent, rcpt_replied;
    bool tls_demanded; /* the server said TLS is required (530) */
    bool tls_tried;    /* STARTTLS was sent once: never loop */
    bool decided;      /* res.end is final; only polite steps (RSET/QUIT) remain */
    bool finished;     /* done callback scheduled; no more I/O */
    bool in_cb;        /* inside the done callback */
    bool cancel_pending; /* smtp_sess_cancel() inside the callback: free after it */
    bool mail_ahead;   /* MAIL FROM already sent, pipelined after RSET */
    bool quit_ahead;   /* the run's last RCPTs carry QUIT in their write (smtp_sess_more) */
    bool quit_sent;    /* ... and it was written: the server will close after its 221 */
    size_t drain;      /* DRAIN: replies still due to commands sent ahead */
    smtp_state_t drain_then; /* state after the drain */
    bool dead;         /* the server closed (or spoke unasked) while idle */
    uint64_t wait_since; /* last write, or last complete reply: the reply clock */
    uint64_t fastest;  /* fastest reply so far (ms), UINT64_MAX before the first */

    smtp_done_cb cb;
    void *arg;

    /* egress: a bound source address or a SOCKS5 proxy (socks != NULL) */
    const net_egress_t *egress;
    socks5_t *socks;

    smtp_result_t res;
    smtp_rcpt_result_t *rres;
    smtp_line_t *lines;
    size_t nlines, lines_cap;
};

static void smtp_sess_enter(smtp_sess_t *s, smtp_state_t st);
static void sess_read(smtp_sess_t *s);
static void sess_proxy_start(smtp_sess_t *s);
static bool sess_proxy_read(smtp_sess_t *s);
static void sess_drain_then(smtp_sess_t *s, smtp_state_t next);
static void sess_park(smtp_sess_t *s);

const char *smtp_state_name(smtp_state_t st)
{
    if ((unsigned)st >= SMTP_ST__COUNT)
        return "?";
    return smtp_state_names[st];
}

const char *smtp_end_name(smtp_end_t e)
{
    if ((unsigned)e >= sizeof smtp_end_names / sizeof smtp_end_names[0] || !smtp_end_names[e])
        return "?";
    return smtp_end_names[e];
}

bool smtp_reply_too_many_rcpts(const smtp_reply_t *r)
{
    if (r->code < 400 || r->code >= 600 || r->code == 421)
        return false;
    return (r->enh[0] && strcmp(r->enh + 1, ".5.3") == 0) ||
           mp_str_icase_find(r->text, "too many recipients") != NULL;
}

void smtp_timeouts_default(smtp_timeouts_t *to)
{
    to->connect_ms = 30000;
    to->banner_ms = 60000;
    to->command_ms = 60000;
    to->session_ms = 180000;
}

SSL_CTX *smtp_tls_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    /* Never abort on a certificate: most MX certificates do not match the MX name and
     * many are self-signed (RFC 7672 §1.3: opportunistic TLS). The result of the check is
     * recorded with SSL_get_verify_result() instead. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* The CA store is looked up by subject hash in its directory when a certificate is
     * checked (X509_LOOKUP_hash_dir; Debian's update-ca-certificates keeps the links),
     * not read whole now: SSL_CTX_set_default_verify_paths() also parses every CA of the
     * bundle file, 20 ms of CPU in every process that starts (two thirds of a worker's
     * start, and of a one-address check's CPU). SSL_CERT_DIR names the directory; a
     * file named by SSL_CERT_FILE is read only when no SSL_CERT_DIR is set (where both
     * are set they usually name one store, as Debian's layout does). */
    const char *dir = getenv(X509_get_default_cert_dir_env());
    const char *file = getenv(X509_get_default_cert_file_env());
    if (SSL_CTX_load_verify_dir(ctx, dir && *dir ? dir : X509_get_default_cert_dir()) != 1 ||
        (!(dir && *dir) && file && *file && SSL_CTX_load_verify_file(ctx, file) != 1))
        mp_log(MP_LOG_WARN, "smtp: cannot load the system CA store");
    /* Old MX software still speaks TLS 1.0 with weak keys: talking to it encrypted beats
     * falling back to plain text, so accept what OpenSSL 3 refuses by default. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_IGNORE_UNEXPECTED_EOF);
    ERR_clear_error();
    return ctx;
}

/* ---- transcript ---------------------------------------------------------------- */

static void tr_add(smtp_sess_t *s, bool from_client, const char *p, size_t n)
{
    if (s->nlines >= SMTP_TRANSCRIPT_MAX) {
        s->res.lines_truncated = true;
        return;
    }
    if (s->nlines == s->lines_cap) {
        size_t cap = s->lines_cap ? s->lines_cap * 2 : 16;
        if (cap > SMTP_TRANSCRIPT_MAX)
            cap = SMTP_TRANSCRIPT_MAX;
        smtp_line_t *nl = realloc(s->lines, cap * sizeof *nl);
        if (!nl) {
            s->res.lines_truncated = true;
            return;
        }
        s->lines = nl;
        s->lines_cap = cap;
    }
    char *line = malloc(n + 1);
    if (!line) {
        s->res.lines_truncated = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        line[i] = (char)(c == '\0' ? '?' : c);
    }
    line[n] = '\0';
    s->lines[s->nlines].from_client = from_client;
    s->lines[s->nlines].at_ms = mp_now_ms() - s->t0;
    s->lines[s->nlines].line = line;
    s->nlines++;
}

/* Record the lines of a reply (p, n bytes, each line ending in LF). */
static void tr_add_reply(smtp_sess_t *s, const unsigned char *p, size_t n)
{
    size_t b = 0;
    while (b < n) {
        const unsigned char *lf = memchr(p + b, '\n', n - b);
        size_t e = lf ? (size_t)(lf - p) : n;
        size_t c = e;
        if (c > b && p[c - 1] == '\r')
            c--;
        tr_add(s, false, (const char *)p + b, c - b);
        b = e + 1;
    }
}

/* ---- exits ---------------------------------------------------------------------- */

static void sess_free(smtp_sess_t *s)
{
    if (s->bev) {
        /* libevent closes a freed bufferevent's socket later, from a finalizer; end the
         * connection now, so that a server never sees more of our sessions open than the
         * per-server limit once the owner has counted this one as closed */
        evutil_socket_t fd = bufferevent_getfd(s->bev);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        bufferevent_free(s->bev); /* CLOSE_ON_FREE: closes the socket, frees SSL */
    }
    if (s->step_ev)
        event_free(s->step_ev);
    if (s->sess_ev)
        event_free(s->sess_ev);
    if (s->done_ev)
        event_free(s->done_ev);
    for (size_t i = 0; i < s->nlines; i++)
        free(s->lines[i].line);
    free(s->lines);
    for (size_t i = 0; i < s->nrcpt; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    free(s->rres);
    free(s->helo);
    free(s->mail_from);
    free(s->sni);
    free(s->socks);
    free(s);
}

static void sess_done_cb(evutil_socket_t fd, short what, void *arg)
{
    smtp_sess_t *s = arg;
    (void)fd;
    (void)what;
    /* the final callback frees the session; after an idle one it lives on (the owner
     * may already have started a new run or a QUIT from inside the callback) */
    bool final = s->finished;
    s->in_cb = true;
    s->cb(&s->res, s->arg);
    s->in_cb = false;
    if (final || s->cancel_pending)
        sess_free(s);
}

/* Stop all I/O and timers and schedule the done callback (never called from here). */
static void sess_finish(smtp_sess_t *s)
{
    if (s->finished)
        return;
    s->finished = true;
    s->res.idle = false;
    if (s->bev) {
        bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    }
    evtimer_del(s->step_ev);
    evtimer_del(s->sess_ev);
    if (s->res.end == SMTP_END_OK)
        s->res.end_state = s->state;
    s->res.duration_ms = mp_now_ms() - s->t0;
    s->res.nrcpt = s->nrcpt;
    s->res.rcpt = s->rres;
    s->res.nlines = s->nlines;
    s->res.lines = s->lines;
    mp_log(MP_LOG_DEBUG, "smtp %s: end %s in %s%s%s", s->peer, smtp_end_name(s->res.end),
           smtp_state_name(s->res.end_state), s->res.detail[0] ? ": " : "", s->res.detail);
    event_active(s->done_ev, EV_TIMEOUT, 1);
}

/* Fix the outcome (once). Later failures (of RSET/QUIT) do not change it. */
static void sess_decide(smtp_sess_t *s, smtp_end_t end, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void sess_decide(smtp_sess_t *s, smtp_end_t end, const char *fmt, va_list ap)
{
    if (s->decided)
        return;
    s->decided = true;
    s->res.end = end;
    s->res.end_state = s->state;
    if (fmt)
        vsnprintf(s->res.detail, sizeof s->res.detail, fmt, ap);
}

static void sess_decidef(smtp_sess_t *s, smtp_end_t end, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sess_decidef(smtp_sess_t *s, smtp_end_t end, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sess_decide(s, end, fmt, ap);
    va_end(ap);
}

/* The unpolite exit: record why (unless the outcome was already fixed) and finish. */
static void sess_fail(smtp_sess_t *s, smtp_end_t end, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sess_fail(smtp_sess_t *s, smtp_end_t end, const char *fmt, ...)
{
    if (s->finished)
        return;
    if (s->decided) {
        char why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        mp_log(MP_LOG_DEBUG, "smtp %s: after the outcome, in %s: %s", s->peer,
               smtp_state_name(s->state), why);
    } else {
        va_list ap;
        va_start(ap, fmt);
        sess_decide(s, end, fmt, ap);
        va_end(ap);
    }
    sess_finish(s);
}

/* Replies still due to commands pipelined after the one being answered (RFC 2920
 * §3.1: the server answers every command in order, a refused MAIL FROM's RCPTs with
 * 503): the MAIL FROM sent after an RSET, and RCPTs sent after RSET or MAIL FROM. */
static size_t sess_outstanding(const smtp_sess_t *s)
{
    if (s->state != SMTP_ST_RSET && s->state != SMTP_ST_MAIL)
        return 0;
    return (s->mail_ahead ? 1 : 0) + (s->rcpt_sent - s->rcpt_replied);
}

/* Go to `next`, after reading (and discarding) the replies still due to commands sent
 * ahead: reading them as replies to later commands would pair every reply with the
 * wrong command. */
static void sess_drain_then(smtp_sess_t *s, smtp_state_t next)
{
    size_t n = sess_outstanding(s);
    s->mail_ahead = false;
    if (n == 0) {
        s->rcpt_sent = s->rcpt_replied = s->rcpt_done;
        smtp_sess_enter(s, next);
        return;
    }
    s->drain = n;
    s->drain_then = next;
    smtp_sess_enter(s, SMTP_ST_DRAIN);
}

/* A reply that ends the session before the RCPT replies (END_REPLY): keep it, then
 * QUIT politely, or close at once after a 421 (RFC 5321 §3.8). In a later transaction
 * the outcome is already fixed (END_OK) and only the QUIT or the close remain. */
static void sess_stop(smtp_sess_t *s, const smtp_reply_t *r, const char *why)
{
    if (!s->decided) {
        s->res.has_reply = true;
        s->res.reply = *r;
    }
    sess_decidef(s, SMTP_END_REPLY, "%s: %d%s%s", why, r->code, r->enh[0] ? " " : "", r->enh);
    if (r->code == 421)
        smtp_sess_enter(s, SMTP_ST_DONE);
    else
        sess_drain_then(s, SMTP_ST_QUIT);
}

/* ---- sending ---------------------------------------------------------------------- */

/* Append one command (without CRLF) to out and to the transcript. */
static bool cmd_add(smtp_sess_t *s, struct evbuffer *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool cmd_add(smtp_sess_t *s, struct evbuffer *out, const char *fmt, ...)
{
    char cmd[SMTP_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd - 2)
        return false;
    tr_add(s, true, cmd, (size_t)n);
    cmd[n] = '\r';
    cmd[n + 1] = '\n';
    return evbuffer_add(out, cmd, (size_t)n + 2) == 0;
}

/* Write what was collected in out as one write; count one round trip. */
static void cmd_flush(smtp_sess_t *s, struct evbuffer *out)
{
    if (bufferevent_write_buffer(s->bev, out) != 0) {
        sess_fail(s, SMTP_END_LOCAL, "cannot queue %s command", smtp_state_name(s->state));
        return;
    }
    s->res.round_trips++;
    s->wait_since = mp_now_ms();
}

/* Refusals the session can still take, keeping `reserve` for commands that come
 * before the recipients (RSET, MAIL FROM): every one of them might be refused. */
static size_t budget_room(const smtp_sess_t *s, unsigned reserve)
{
    unsigned used = s->res.refusals + reserve;
    return s->budget > used ? s->budget - used : 0;
}

/* Plan the open transaction: the next recipients without an answer, at most txn_limit
 * of them and, for a later transaction of the run, no more than the error budget
 * allows (the first one carries what the caller gave: it checked smtp_sess_room). */
static void txn_plan(smtp_sess_t *s, unsigned reserve)
{
    size_t n = s->nrcpt - s->rcpt_done;
    if (s->txn_limit && n > s->txn_limit)
        n = s->txn_limit;
    if (s->res.transactions > 0) {
        size_t room = budget_room(s, reserve);
        if (n > room)
            n = room ? room : 1;
    }
    s->txn_end = s->rcpt_done + n;
    s->rcpt_sent = s->rcpt_replied = s->rcpt_done;
    s->txn_refused = TXN_NONE;
}

static bool mail_cmd_add(smtp_sess_t *s, struct evbuffer *out)
{
    /* RFC 6531 §3.4: SMTPUTF8 only when the server advertised it. */
    return cmd_add(s, out, "MAIL FROM:<%s>%s", s->mail_from,
                   s->smtputf8 && s->res.smtputf8_offered ? " SMTPUTF8" : "");
}

/* May MAIL FROM and the RCPTs ride in the write of the command before them? */
static bool sess_ahead(const smtp_sess_t *s)
{
    return s->pipeline_mail && s->res.pipelining;
}

static void sess_send_rcpts(smtp_sess_t *s, struct evbuffer *out)
{
    /* RFC 2920 §3.1: RCPT commands may be pipelined; send the rest of the transaction's
     * at once. */
    size_t last = s->res.pipelining ? s->txn_end : s->rcpt_sent + 1;
    for (; s->rcpt_sent < last; s->rcpt_sent++)
        if (!cmd_add(s, out, "RCPT TO:<%s>", s->rcpts[s->rcpt_sent]))
            break;
    /* RFC 2920 §3.1: QUIT may end a pipelined group. Sent with the run's last RCPT, it
     * ends the session one round trip earlier; the 221 follows the RCPT replies. */
    if (s->quit_ahead && !s->quit_sent && s->res.pipelining && s->rcpt_sent == s->nrcpt &&
        cmd_add(s, out, "QUIT"))
        s->quit_sent = true;
}

static void sess_tls_start(smtp_sess_t *s);

/* Keep (the start of) the first unread input line in the transcript, to show why a
 * session was stopped for garbage or unsolicited data. */
static void sess_record_unread(smtp_sess_t *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t n = evbuffer_get_length(in);
    if (n > 256)
        n = 256;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
    if (!p)
        return;
    const unsigned char *lf = memchr(p, '\n', n);
    size_t show = lf ? (size_t)(lf - p) : n;
    if (show && p[show - 1] == '\r')
        show--;
    tr_add(s, false, (const char *)p, show);
}

/* The state's action: send its command, or start the connection or the handshake. */
static void sess_act(smtp_sess_t *s)
{
    struct evbuffer *out = NULL;
    bool ok = true;

    switch (s->state) {
    case SMTP_ST_CONNECT:
    case SMTP_ST_BANNER:
        return; /* the connect is started by smtp_sess_start; the banner just comes */
    case SMTP_ST_PROXY:
        sess_proxy_start(s);
        return;
    case SMTP_ST_TLS_HANDSHAKE:
        sess_tls_start(s);
        return;
    case SMTP_ST_DONE:
        sess_finish(s);
        return;
    case SMTP_ST_IDLE:
        sess_park(s);
        return;
    case SMTP_ST_DRAIN:
        return; /* the replies just come */
    case SMTP_ST_QUIT:
        if (s->quit_sent)
            return; /* sent with the last RCPTs: its 221 just comes */
        break;
    case SMTP_ST_MAIL:
        if (s->mail_ahead) { /* sent with the RSET: wait for its reply */
            s->mail_ahead = false;
            return;
        }
        break;
    case SMTP_ST_RCPT:
        if (s->rcpt_sent > s->rcpt_replied || s->rcpt_sent >= s->txn_end)
            return; /* sent ahead with MAIL FROM: wait for the replies */
        break;
    default:
        break;
    }
    if (s->bev && evbuffer_get_length(bufferevent_get_input(s->bev)) != 0) {
        /* Bytes that arrived before this command cannot answer it (only RCPTs are
         * pipelined, and they are all sent at once). Reading them as its reply would pair
         * every later reply with the wrong command - a "250" meant for MAIL read as the
         * answer to RCPT - so stop here (RFC 5321 §4.3.1: one reply per command). */
        sess_record_unread(s);
        sess_fail(s, SMTP_END_PROTOCOL, "unsolicited data from the server before %s",
                  smtp_state_name(s->state));
        return;
    }
    out = evbuffer_new();
    if (!out) {
        sess_fail(s, SMTP_END_LOCAL, "out of memory");
        return;
    }
    switch (s->state) {
    case SMTP_ST_EHLO:
        ok = cmd_add(s, out, "EHLO %s", s->helo);
        break;
    case SMTP_ST_HELO:
        ok = cmd_add(s, out, "HELO %s", s->helo);
        break;
    case SMTP_ST_STARTTLS:
        s->tls_tried = true;
        ok = cmd_add(s, out, "STARTTLS");
        break;
    case SMTP_ST_MAIL:
        txn_plan(s, 1);
        ok = mail_cmd_add(s, out);
        if (ok && sess_ahead(s)) /* RFC 2920 §3.1: MAIL FROM and RCPTs in one write */
            sess_send_rcpts(s, out);
        break;
    case SMTP_ST_RCPT:
        sess_send_rcpts(s, out);
        ok = s->rcpt_sent > s->rcpt_replied;
        break;
    case SMTP_ST_RSET:
        ok = cmd_add(s, out, "RSET");
        if (ok && sess_ahead(s)) { /* RSET, MAIL FROM and the RCPTs in one write */
            txn_plan(s, 2);
            ok = mail_cmd_add(s, out);
            s->mail_ahead = ok;
            if (ok)
                sess_send_rcpts(s, out);
        }
        break;
    case SMTP_ST_QUIT:
        ok = cmd_add(s, out, "QUIT");
        break;
    default:
        mp_panic("no action for state %s", smtp_state_name(s->state));
    }
    if (ok)
        cmd_flush(s, out);
    else
        sess_fail(s, SMTP_END_LOCAL, "cannot build %s command", smtp_state_name(s->state));
    evbuffer_free(out);
}

static void sess_arm_step(smtp_sess_t *s)
{
    unsigned ms;
    switch (s->state) {
    case SMTP_ST_CONNECT:
    case SMTP_ST_PROXY: /* the proxy connects to the server meanwhile */
        ms = s->to.connect_ms;
        break;
    case SMTP_ST_BANNER:
        ms = s->to.banner_ms;
        break;
    case SMTP_ST_DONE:
        evtimer_del(s->step_ev);
        return;
    default:
        ms = s->to.command_ms;
        break;
    }
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->step_ev, &tv);
}

/*
 * The ONLY assignment to s->state. Logs the transition, re-arms the step deadline (a
 * fresh deadline per step; partial data never extends it) and performs the state's
 * action.
 */
static void smtp_sess_enter(smtp_sess_t *s, smtp_state_t st)
{
    if (s->finished)
        return;
    mp_log(MP_LOG_DEBUG, "smtp %s: %s -> %s", s->peer, smtp_state_name(s->state),
           smtp_state_name(st));
    s->state = st;
    sess_arm_step(s);
    sess_act(s);
}

/* ---- replies ------------------------------------------------------------------------ */

static bool is_2xx(const smtp_reply_t *r) { return r->code >= 200 && r->code < 300; }

/* Does a reply say "TLS first" (RFC 3207 §4: 530 5.7.0 Must issue a STARTTLS command)? */
static bool reply_wants_tls(const smtp_reply_t *r)
{
    return r->code == 530 ||
           (r->code >= 500 && mp_str_icase_find(r->text, "STARTTLS") != NULL);
}

/* Can we do STARTTLS now (not yet on TLS, a context, not tried before)? Only asked
 * once the server offers or demands it: the context is made then (ssl_ctx_get), so that
 * a process whose servers never offer TLS never pays for it (a millisecond or two). */
static bool tls_possible(smtp_sess_t *s)
{
    if (s->res.tls || s->tls_tried)
        return false;
    if (!s->ssl_ctx && s->ssl_ctx_get) {
        s->ssl_ctx = s->ssl_ctx_get(s->ssl_ctx_arg);
        s->ssl_ctx_get = NULL; /* asked once */
    }
    return s->ssl_ctx != NULL;
}

static bool kw_eq(const char *p, size_t n, const char *kw)
{
    size_t i = 0;
    for (; i < n && kw[i]; i++)
        if (mp_to_lower((unsigned char)p[i]) != mp_to_lower((unsigned char)kw[i]))
            return false;
    return i == n && kw[i] == '\0';
}

/* EHLO keywords (RFC 5321 §4.1.1.1): one per line after the greeting line. */
static void parse_ehlo_caps(smtp_sess_t *s, const smtp_reply_t *r)
{
    s->res.pipelining = false;
    s->res.smtputf8_offered = false;
    const char *p = strchr(r->text, '\n');
    while (p) {
        p++;
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        size_t k = 0;
        while (k < n && p[k] != ' ')
            k++;
        if (kw_eq(p, k, "PIPELINING"))
            s->res.pipelining = true;
        else if (kw_eq(p, k, "STARTTLS"))
            s->res.starttls_offered = true;
        else if (kw_eq(p, k, "SMTPUTF8"))
            s->res.smtputf8_offered = true;
        p = e;
    }
}

static void on_banner_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    /* RFC 5321 §3.1: 220 greets; 554 refuses (the client should QUIT). */
    if (is_2xx(r))
        smtp_sess_enter(s, SMTP_ST_EHLO);
    else
        sess_stop(s, r, "banner");
}

static void on_ehlo_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    if (is_2xx(r)) {
        s->res.esmtp = true;
        parse_ehlo_caps(s, r);
        if (s->res.starttls_offered && (s->want_tls || s->tls_demanded) && tls_possible(s))
            smtp_sess_enter(s, SMTP_ST_STARTTLS);
        else
            smtp_sess_enter(s, SMTP_ST_MAIL);
    } else if (r->code == 530 && tls_possible(s)) {
        s->tls_demanded = true;
        smtp_sess_enter(s, SMTP_ST_STARTTLS);
    } else if (r->code >= 500) {
        /* RFC 5321 §3.2: a server that does not know EHLO receives HELO. */
        smtp_sess_enter(s, SMTP_ST_HELO);
    } else {
        sess_stop(s, r, "EHLO");
    }
}

static void on_helo_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    if (is_2xx(r)) {
        s->res.esmtp = false;
        smtp_sess_enter(s, SMTP_ST_MAIL);
    } else {
        sess_stop(s, r, "HELO");
    }
}

static void on_starttls_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    if (r->code == 220) {
        /* RFC 3207 §5: nothing may follow the 220 in clear text; bytes here would be
         * taken as part of the TLS session (the CVE-2011-0411 class of injection). */
        if (evbuffer_get_length(bufferevent_get_input(s->bev)) != 0) {
            sess_fail(s, SMTP_END_PROTOCOL, "data after the STARTTLS reply (RFC 3207 §5)");
            return;
        }
        smtp_sess_enter(s, SMTP_ST_TLS_HANDSHAKE);
    } else if (s->tls_demanded || r->code == 421) {
        sess_stop(s, r, "STARTTLS");
    } else {
        /* Opportunistic TLS refused: carry on in clear text (RFC 3207 §4). */
        smtp_sess_enter(s, SMTP_ST_MAIL);
    }
}

/* MAIL FROM accepted: the transaction planned by txn_plan() is open; its RCPTs go out
 * now, or were sent with MAIL FROM and their replies follow. */
static void txn_begin(smtp_sess_t *s)
{
    s->res.transactions++;
    smtp_sess_enter(s, SMTP_ST_RCPT);
}

static void on_mail_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    if (s->res.transactions > 0) {
        /* MAIL FROM of a later transaction: the outcome is already fixed (END_OK), so a
         * refusal only ends the session politely; the recipients left keep their
         * "too many recipients" replies. */
        if (is_2xx(r))
            txn_begin(s);
        else
            sess_stop(s, r, "MAIL FROM (again)");
        return;
    }
    s->res.has_mail_reply = true;
    s->res.mail_reply = *r;
    if (is_2xx(r)) {
        txn_begin(s);
    } else if (reply_wants_tls(r) && s->res.starttls_offered && tls_possible(s)) {
        /* e.g. Postfix smtpd_tls_security_level=encrypt: "530 5.7.0 Must issue a
         * STARTTLS command first". No transaction was opened, so no RSET is needed. */
        s->tls_demanded = true;
        sess_drain_then(s, SMTP_ST_STARTTLS);
    } else {
        sess_stop(s, r, "MAIL FROM");
    }
}

/*
 * Every RCPT of the open transaction has its reply. The recipients before the first
 * "too many recipients" have their answer; that one and all after it go into the next
 * transaction, in their order, even one that got a real answer after the refusal: the
 * answered recipients then always form a prefix of the list, so the last recipient
 * given (the engine's catch-all probe) stays the last RCPT of the session, after every
 * real one. The next transaction takes at most as many as the server took in this one
 * (RFC 5321 §4.5.3.1.10: a server that refuses more has the ones it took; retrying the
 * rest in later transactions is what the RFC expects of a client).
 *
 * No new transaction when the server refused the first RCPT of a fresh transaction
 * (another would meet the same refusal: no progress, no loop) or when txn_max is
 * reached; those recipients keep their 452 and the caller decides (sched: a session
 * of their own, then the usual temporary-failure handling).
 */
static void txn_over(smtp_sess_t *s, const smtp_reply_t *last)
{
    size_t first = s->rcpt_done;
    size_t answered = s->txn_refused == TXN_NONE ? s->txn_end : s->txn_refused;
    s->rcpt_done = answered;
    if (s->txn_refused != TXN_NONE && answered > first &&
        (s->txn_limit == 0 || answered - first < s->txn_limit))
        s->txn_limit = answered - first;
    /* Every RCPT sent got a reply: the session has done its job; later transactions
     * are a bonus that cannot change that. */
    sess_decidef(s, SMTP_END_OK, "%s", "");
    if (last->code == 421) {
        smtp_sess_enter(s, SMTP_ST_DONE); /* §3.8: the server is gone */
    } else if (s->rcpt_done == s->nrcpt) {
        /* QUIT ends the open transaction too (RFC 5321 §4.1.1.10): no RSET spent on it;
         * a session kept open waits idle and its next run starts with RSET */
        smtp_sess_enter(s, s->keep_open ? SMTP_ST_IDLE : SMTP_ST_QUIT);
    } else if (s->quit_sent) {
        /* QUIT went with the RCPTs: no further transaction; the rest stay unanswered */
        smtp_sess_enter(s, SMTP_ST_QUIT);
    } else if (answered == first || s->res.transactions >= s->txn_max ||
               budget_room(s, 2) == 0) {
        mp_log(MP_LOG_DEBUG, "smtp %s: %zu recipient(s) left unanswered (%s)", s->peer,
               s->nrcpt - s->rcpt_done,
               answered == first ? "too many recipients at the first RCPT of a transaction"
               : s->res.transactions >= s->txn_max ? "transaction limit reached"
                                                   : "error budget spent");
        smtp_sess_enter(s, SMTP_ST_QUIT);
    } else {
        smtp_sess_enter(s, SMTP_ST_RSET);
    }
}

static void on_rcpt_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    size_t i = s->rcpt_replied++;
    s->rres[i].has_reply = true;
    s->rres[i].reply = *r;
    if (s->txn_refused == TXN_NONE && smtp_reply_too_many_rcpts(r))
        s->txn_refused = i;
    if (s->txn_refused != TXN_NONE && s->rcpt_replied == s->rcpt_sent)
        s->txn_end = s->rcpt_replied; /* one at a time: the rest would only meet the same
                                         refusal, so the transaction ends here */
    if (s->rcpt_replied == s->txn_end)
        txn_over(s, r);
    else if (r->code == 421)
        sess_stop(s, r, "RCPT TO");
    else if (s->rcpt_replied < s->rcpt_sent)
        sess_arm_step(s); /* pipelined: a fresh deadline for each complete reply */
    else
        smtp_sess_enter(s, SMTP_ST_RCPT);
}

static void on_rset_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    /* RFC 5321 §4.1.1.5: RSET is answered 250. Anything else: no new transaction on a
     * connection in an unknown state. */
    if (is_2xx(r))
        smtp_sess_enter(s, SMTP_ST_MAIL);
    else
        sess_stop(s, r, "RSET");
}

/* A reply to a command sent ahead of a refused one: counted, not read. */
static void on_drain_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    (void)r;
    if (--s->drain == 0) {
        s->rcpt_sent = s->rcpt_replied = s->rcpt_done;
        smtp_sess_enter(s, s->drain_then);
    } else {
        sess_arm_step(s);
    }
}

static void sess_on_reply(smtp_sess_t *s, const smtp_reply_t *r)
{
    /* Postfix smtpd counts every refused command of the connection (RSET does not reset
     * the count): the error budget counts them the same way */
    if (r->code >= 400 && s->state != SMTP_ST_BANNER && s->state != SMTP_ST_QUIT)
        s->res.refusals++;
    if (r->code == 421 && s->state != SMTP_ST_RCPT && s->state != SMTP_ST_QUIT) {
        sess_stop(s, r, smtp_state_name(s->state));
        return;
    }
    switch (s->state) {
    case SMTP_ST_BANNER:
        on_banner_reply(s, r);
        break;
    case SMTP_ST_EHLO:
        on_ehlo_reply(s, r);
        break;
    case SMTP_ST_HELO:
        on_helo_reply(s, r);
        break;
    case SMTP_ST_STARTTLS:
        on_starttls_reply(s, r);
        break;
    case SMTP_ST_MAIL:
        on_mail_reply(s, r);
        break;
    case SMTP_ST_RCPT:
        on_rcpt_reply(s, r);
        break;
    case SMTP_ST_RSET:
        on_rset_reply(s, r);
        break;
    case SMTP_ST_DRAIN:
        on_drain_reply(s, r);
        break;
    case SMTP_ST_QUIT:
        smtp_sess_enter(s, SMTP_ST_DONE);
        break;
    default:
        sess_fail(s, SMTP_END_PROTOCOL, "unexpected reply %d in state %s", r->code,
                  smtp_state_name(s->state));
        break;
    }
}

/* While idle the connection must stay silent: a close, or a reply nobody asked for
 * (typically "421 4.4.2 Error: timeout exceeded" before the server closes), ends its
 * usefulness. The socket is shut now; the owner finds the session not alive. */
static void sess_idle_lost(smtp_sess_t *s, const char *why)
{
    mp_log(MP_LOG_DEBUG, "smtp %s: idle session lost: %s", s->peer, why);
    s->dead = true;
    if (s->bev) {
        bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
        evutil_socket_t fd = bufferevent_getfd(s->bev);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
}

/* How long the reply just read took since our last write or the previous reply; a
 * reply much slower than the fastest one marks the session slow (smtp_sess_room). */
static void sess_clock_reply(smtp_sess_t *s)
{
    uint64_t now = mp_now_ms(), wait = now - s->wait_since;
    if (wait < s->fastest)
        s->fastest = wait;
    else if (wait > s->fastest + SMTP_SLOW_REPLY_MS && !s->res.slow) {
        mp_log(MP_LOG_DEBUG, "smtp %s: slow reply in %s (%llu ms)", s->peer,
               smtp_state_name(s->state), (unsigned long long)wait);
        s->res.slow = true;
    }
    s->wait_since = now;
}

/* Idle: stop the clocks and tell the owner, who reuses or ends the session. */
static void sess_park(smtp_sess_t *s)
{
    evtimer_del(s->step_ev);
    evtimer_del(s->sess_ev);
    s->res.idle = true;
    s->res.end_state = SMTP_ST_IDLE;
    s->res.duration_ms = mp_now_ms() - s->t0;
    s->res.nrcpt = s->nrcpt;
    s->res.rcpt = s->rres;
    s->res.nlines = s->nlines;
    s->res.lines = s->lines;
    event_active(s->done_ev, EV_TIMEOUT, 1);
}

/* Read every complete reply in the input (replies may be split across reads or several
 * may come in one) and dispatch each. */
static void sess_read(smtp_sess_t *s)
{
    while (!s->finished && s->bev) {
        struct evbuffer *in = bufferevent_get_input(s->bev);
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        if (s->state == SMTP_ST_PROXY) {
            if (!sess_proxy_read(s))
                return;
            continue; /* the banner may have come in the same segment */
        }
        if (s->state == SMTP_ST_CONNECT || s->state == SMTP_ST_TLS_HANDSHAKE)
            return;
        if (s->state == SMTP_ST_IDLE) {
            if (!s->quit_sent) /* after our QUIT, its 221: read by smtp_sess_quit() */
                sess_idle_lost(s, "the server spoke while the session was idle");
            return;
        }
        size_t n = len < SMTP_REPLY_TOTAL_MAX + 1 ? len : SMTP_REPLY_TOTAL_MAX + 1;
        const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
        if (!p) {
            sess_fail(s, SMTP_END_LOCAL, "out of memory reading a reply");
            return;
        }
        smtp_reply_t r;
        size_t used = 0;
        smtp_rd_status_t st = smtp_reply_parse(p, n, &r, &used);
        if (st == SMTP_RD_MORE) {
            if (n > SMTP_REPLY_TOTAL_MAX) /* cannot happen: the reader bounds it */
                sess_fail(s, SMTP_END_PROTOCOL, "reply too large");
            return;
        }
        if (st != SMTP_RD_REPLY) {
            sess_record_unread(s);
            sess_fail(s, SMTP_END_PROTOCOL, "%s (in %s)", smtp_rd_status_text(st),
                      smtp_state_name(s->state));
            return;
        }
        tr_add_reply(s, p, used);
        evbuffer_drain(in, used);
        if (s->state != SMTP_ST_BANNER)
            sess_clock_reply(s);
        sess_on_reply(s, &r);
    }
}

/* ---- egress: SOCKS5 proxy ------------------------------------------------------------- */

/* The proxy (not the server) failed us: END_CONNECT naming the proxy, never a word about
 * the mailbox. proxy_fault: the proxy's own failure (rest it), not the destination's. */
static void sess_proxy_fail(smtp_sess_t *s, bool proxy_fault, const char *why)
{
    s->res.egress_failed = proxy_fault;
    sess_fail(s, SMTP_END_CONNECT, "SOCKS5 proxy %s: %s", s->egress->name, why);
}

/* Send what the handshake has to say next. */
static void sess_proxy_flush(smtp_sess_t *s)
{
    size_t n;
    const unsigned char *p = socks5_out(s->socks, &n);
    if (n && bufferevent_write(s->bev, p, n) != 0)
        sess_fail(s, SMTP_END_LOCAL, "out of memory writing to the proxy");
}

/* PROXY entered, connected to the proxy: offer our methods (RFC 1928 §3). */
static void sess_proxy_start(smtp_sess_t *s)
{
    sess_proxy_flush(s);
}

/* Feed the proxy's bytes to the handshake (socks5.h); the bytes after its last reply
 * stay in the buffer for the reply reader. False when nothing more can be read now. */
static bool sess_proxy_read(smtp_sess_t *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len = evbuffer_get_length(in), used = 0;
    if (len > 512) /* the longest SOCKS5 reply is 262 bytes */
        len = 512;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)len);
    if (!p) {
        sess_fail(s, SMTP_END_LOCAL, "out of memory reading from the proxy");
        return false;
    }
    socks5_step_t st = socks5_read(s->socks, p, len, &used);
    evbuffer_drain(in, used);
    switch (st) {
    case SOCKS5_MORE:
        return false;
    case SOCKS5_WRITE:
        sess_proxy_flush(s);
        return !s->finished;
    case SOCKS5_DONE:
        mp_log(MP_LOG_DEBUG, "smtp %s: tunnel open through %s", s->peer, s->egress->name);
        smtp_sess_enter(s, SMTP_ST_BANNER);
        return !s->finished;
    case SOCKS5_FAIL:
        break;
    }
    sess_proxy_fail(s, socks5_fault_is_proxy(s->socks), socks5_why(s->socks));
    return false;
}

/* ---- TLS ------------------------------------------------------------------------------ */

static void sess_tls_record(smtp_sess_t *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    s->res.tls = true;
    if (!ssl)
        return;
    mp_strlcpy(s->res.tls_version, SSL_get_version(ssl), sizeof s->res.tls_version);
    long vr = SSL_get_verify_result(ssl);
    X509 *cert = SSL_get1_peer_certificate(ssl);
    s->res.tls_verified = vr == X509_V_OK && cert != NULL;
    if (!cert)
        mp_strlcpy(s->res.tls_verify_error, "no server certificate",
                   sizeof s->res.tls_verify_error);
    else if (vr != X509_V_OK)
        mp_strlcpy(s->res.tls_verify_error, X509_verify_cert_error_string(vr),
                   sizeof s->res.tls_verify_error);
    X509_free(cert);
}

static void sess_readcb(struct bufferevent *bev, void *arg);
static void sess_eventcb(struct bufferevent *bev, short what, void *arg);

static void sess_tls_start(smtp_sess_t *s)
{
    SSL *ssl = SSL_new(s->ssl_ctx);
    if (!ssl) {
        sess_fail(s, SMTP_END_LOCAL, "cannot create the TLS session");
        return;
    }
    if (s->sni && s->sni[0]) {
        /* SNI (RFC 6066 §3) and the name the certificate is checked against. */
        SSL_set_tlsext_host_name(ssl, s->sni);
        SSL_set1_host(ssl, s->sni);
    }
    ERR_clear_error();
    struct bufferevent *f = bufferevent_openssl_filter_new(
        s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!f) {
        /* libevent's error path may have released the SSL and the socket bufferevent
         * already: leak rather than risk a double free on this out-of-memory path. */
        s->bev = NULL;
        sess_fail(s, SMTP_END_LOCAL, "cannot create the TLS filter");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    s->bev = f;
    bufferevent_setcb(f, sess_readcb, NULL, sess_eventcb, s);
    bufferevent_enable(f, EV_READ | EV_WRITE);
}

static void tls_error_detail(smtp_sess_t *s, char *buf, size_t size)
{
    unsigned long e, first = 0;
    while ((e = bufferevent_get_openssl_error(s->bev)) != 0)
        if (!first)
            first = e;
    if (first) {
        ERR_error_string_n(first, buf, size);
    } else {
        int err = EVUTIL_SOCKET_ERROR();
        mp_strlcpy(buf, err ? evutil_socket_error_to_string(err) : "handshake failed", size);
    }
    ERR_clear_error();
}

/* ---- I/O events ------------------------------------------------------------------------- */

static void sess_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    sess_read(arg);
}

static void lower_first(char *p)
{
    if (p[0] >= 'A' && p[0] <= 'Z' && !(p[1] >= 'A' && p[1] <= 'Z'))
        p[0] = (char)(p[0] + 32);
}

static void sess_eventcb(struct bufferevent *bev, short what, void *arg)
{
    smtp_sess_t *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)bev;

    if (s->finished)
        return;
    if (s->state == SMTP_ST_IDLE) {
        sess_idle_lost(s, what & BEV_EVENT_EOF ? "closed by the server" : "I/O error");
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        if (s->state == SMTP_ST_CONNECT) {
            smtp_sess_enter(s, s->socks ? SMTP_ST_PROXY : SMTP_ST_BANNER);
        } else if (s->state == SMTP_ST_TLS_HANDSHAKE) {
            sess_tls_record(s);
            /* RFC 3207 §4.2: forget what was learnt before TLS; EHLO again. */
            s->res.pipelining = false;
            s->res.smtputf8_offered = false;
            smtp_sess_enter(s, SMTP_ST_EHLO);
        }
        return;
    }
    if (s->state == SMTP_ST_CONNECT) {
        char d[128];
        mp_strlcpy(d, err ? evutil_socket_error_to_string(err) : "connection failed", sizeof d);
        lower_first(d);
        if (s->socks)
            sess_proxy_fail(s, true, d);
        else
            sess_fail(s, SMTP_END_CONNECT, "%s", d);
        return;
    }
    if (s->state == SMTP_ST_PROXY) {
        sess_read(s); /* a refusal may have come with the close */
        if (!s->finished)
            sess_proxy_fail(s, true, "the proxy closed the connection during the handshake");
        return;
    }
    if (s->state == SMTP_ST_TLS_HANDSHAKE) {
        char d[200];
        if (what & BEV_EVENT_EOF)
            mp_strlcpy(d, "connection closed during the TLS handshake", sizeof d);
        else
            tls_error_detail(s, d, sizeof d);
        sess_fail(s, SMTP_END_TLS, "%s", d);
        return;
    }
    /* Replies that came with the close are read first. */
    sess_read(s);
    if (s->finished)
        return;
    if (s->state == SMTP_ST_QUIT) {
        smtp_sess_enter(s, SMTP_ST_DONE); /* closing after QUIT is what we asked for */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        sess_fail(s, SMTP_END_CLOSED, "connection closed by the server in %s",
                  smtp_state_name(s->state));
    } else {
        char d[200];
        if (s->res.tls)
            tls_error_detail(s, d, sizeof d);
        else
            mp_strlcpy(d, err ? evutil_socket_error_to_string(err) : "I/O error", sizeof d);
        lower_first(d);
        sess_fail(s, SMTP_END_CLOSED, "%s in %s", d, smtp_state_name(s->state));
    }
}

static void sess_step_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    smtp_sess_t *s = arg;
    (void)fd;
    (void)what;
    switch (s->state) {
    case SMTP_ST_CONNECT:
        if (s->socks)
            sess_proxy_fail(s, true, "no connection to the proxy in time");
        else
            sess_fail(s, SMTP_END_TIMEOUT, "no connection within %u ms", s->to.connect_ms);
        break;
    case SMTP_ST_PROXY:
        /* silent before the CONNECT request: the proxy's fault; after it, the proxy may
         * still be waiting for the server */
        sess_proxy_fail(s, s->socks->state != SOCKS5_ST_REPLY,
                        s->socks->state != SOCKS5_ST_REPLY
                            ? "no answer to the handshake in time"
                            : "no answer to CONNECT in time (the server may not answer)");
        break;
    case SMTP_ST_BANNER:
        sess_fail(s, SMTP_END_TIMEOUT, "no banner within %u ms", s->to.banner_ms);
        break;
    case SMTP_ST_TLS_HANDSHAKE:
        sess_fail(s, SMTP_END_TIMEOUT, "TLS handshake not done within %u ms",
                  s->to.command_ms);
        break;
    default:
        sess_fail(s, SMTP_END_TIMEOUT, "no reply to %s within %u ms", smtp_state_name(s->state),
                  s->to.command_ms);
        break;
    }
}

static void sess_cap_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    smtp_sess_t *s = arg;
    (void)fd;
    (void)what;
    sess_fail(s, SMTP_END_TIMEOUT, "session deadline of %u ms passed in %s", s->to.session_ms,
              smtp_state_name(s->state));
}

/* ---- start / cancel ----------------------------------------------------------------------- */

/* Text that goes into a command: bounded, and no CR, LF or other control bytes (they
 * would let an input inject commands, DATA included). */
static bool arg_ok(const char *a, bool may_be_empty)
{
    if (!a)
        return false;
    size_t n = strlen(a);
    if ((!may_be_empty && n == 0) || n > SMTP_ARG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static char *dup_str(const char *a)
{
    size_t n = strlen(a);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, a, n + 1);
    return d;
}

static void peer_name(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        evutil_inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(buf, size, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(buf, size, "[%s]:%u", ip, port);
    } else {
        mp_strlcpy(buf, "?", size);
    }
}

/* The egress of a session: a socket bound to the source address, or the SOCKS5
 * handshake and the proxy's address to connect to. A socket that cannot be made leaves
 * *fd at -1 with the reason in err: the session then fails through its callback. */
static mp_status_t sess_egress_open(smtp_sess_t *s, const net_egress_t *eg,
                                    const struct sockaddr *sa, const struct sockaddr **csa,
                                    socklen_t *clen, evutil_socket_t *fd, char *err,
                                    size_t errsize)
{
    s->egress = s->res.egress = eg;
    if (eg->kind == NET_EGRESS_SOCKS5) {
        s->socks = calloc(1, sizeof *s->socks);
        if (!s->socks)
            return MP_ERR_NOMEM;
        if (socks5_init(s->socks, sa, eg->user[0] ? eg->user : NULL,
                        eg->user[0] ? eg->pass : NULL) != MP_OK)
            return MP_ERR_ARG;
        *csa = (const struct sockaddr *)&eg->addr;
        *clen = eg->addrlen;
    }
    *fd = net_egress_socket(eg, sa->sa_family, err, errsize);
    return MP_OK;
}

int smtp_sess_start(struct event_base *base, const smtp_opts_t *opts,
                    const struct sockaddr *sa, socklen_t salen,
                    const char *const *rcpts, size_t nrcpt,
                    smtp_done_cb cb, void *arg, smtp_sess_t **out)
{
    smtp_sess_t *s = NULL;
    mp_status_t st = MP_OK;

    if (out)
        *out = NULL;
    if (!base || !opts || !sa || !cb || !rcpts || nrcpt == 0 || !arg_ok(opts->helo, false) ||
        (opts->mail_from && !arg_ok(opts->mail_from, true)) ||
        (opts->sni && !arg_ok(opts->sni, true)) ||
        (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        st = MP_ERR_ARG;
        goto done;
    }
    for (size_t i = 0; i < nrcpt; i++)
        if (!arg_ok(rcpts[i], false)) {
            st = MP_ERR_ARG;
            goto done;
        }
    s = calloc(1, sizeof *s);
    if (!s) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    s->base = base;
    s->state = SMTP_ST_CONNECT;
    s->t0 = mp_now_ms();
    s->cb = cb;
    s->arg = arg;
    s->to = opts->to;
    {
        smtp_timeouts_t def;
        smtp_timeouts_default(&def);
        if (!s->to.connect_ms)
            s->to.connect_ms = def.connect_ms;
        if (!s->to.banner_ms)
            s->to.banner_ms = def.banner_ms;
        if (!s->to.command_ms)
            s->to.command_ms = def.command_ms;
        if (!s->to.session_ms)
            s->to.session_ms = def.session_ms;
    }
    s->want_tls = opts->starttls;
    s->smtputf8 = opts->smtputf8;
    s->pipeline_mail = opts->pipeline_mail;
    s->keep_open = opts->keep_open;
    s->budget = opts->error_budget ? opts->error_budget : SMTP_ERROR_BUDGET_DEFAULT;
    s->fastest = UINT64_MAX;
    s->txn_limit = opts->rcpt_per_txn;
    s->txn_max = opts->max_txn ? opts->max_txn : SMTP_TXN_MAX_DEFAULT;
    s->ssl_ctx = opts->ssl_ctx;
    s->ssl_ctx_get = opts->ssl_ctx_get;
    s->ssl_ctx_arg = opts->ssl_ctx_arg;
    peer_name(sa, s->peer, sizeof s->peer);
    s->helo = dup_str(opts->helo);
    s->mail_from = dup_str(opts->mail_from ? opts->mail_from : "");
    s->sni = opts->sni ? dup_str(opts->sni) : NULL;
    s->rcpts = calloc(nrcpt, sizeof *s->rcpts);
    s->rres = calloc(nrcpt, sizeof *s->rres);
    if (!s->helo || !s->mail_from || (opts->sni && !s->sni) || !s->rcpts || !s->rres) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    s->nrcpt = nrcpt;
    for (size_t i = 0; i < nrcpt; i++) {
        s->rcpts[i] = dup_str(rcpts[i]);
        if (!s->rcpts[i]) {
            st = MP_ERR_NOMEM;
            goto done;
        }
        s->rres[i].rcpt = s->rcpts[i];
    }
    s->step_ev = evtimer_new(base, sess_step_timeout_cb, s);
    s->sess_ev = evtimer_new(base, sess_cap_timeout_cb, s);
    s->done_ev = event_new(base, -1, 0, sess_done_cb, s);
    const struct sockaddr *csa = sa; /* where we connect: the server, or the proxy */
    socklen_t clen = salen;
    evutil_socket_t fd = -1;
    char eerr[200] = "";
    if (opts->egress && (st = sess_egress_open(s, opts->egress, sa, &csa, &clen, &fd, eerr,
                                               sizeof eerr)) != MP_OK)
        goto done;
    /* Deferred callbacks: libevent never calls us back from inside its own API calls
     * (bufferevent_socket_connect may report an error synchronously otherwise). */
    s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!s->bev && fd >= 0)
        evutil_closesocket(fd);
    if (!s->step_ev || !s->sess_ev || !s->done_ev || !s->bev) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    s->res.end_state = SMTP_ST_CONNECT;
    bufferevent_setcb(s->bev, sess_readcb, NULL, sess_eventcb, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    {
        struct timeval tv = {.tv_sec = (time_t)(s->to.session_ms / 1000),
                             .tv_usec = (suseconds_t)(s->to.session_ms % 1000) * 1000};
        evtimer_add(s->sess_ev, &tv);
    }
    mp_log(MP_LOG_DEBUG, "smtp %s: start, %zu recipient(s)", s->peer, nrcpt);
    sess_arm_step(s); /* the CONNECT deadline; state is already CONNECT */
    if (opts->egress && fd < 0) {
        /* reported from the loop, like any failure; a source of the other address
         * family is not broken, only unfit for this server */
        s->res.egress_failed = opts->egress->kind == NET_EGRESS_SOCKS5 ||
                               opts->egress->addr.ss_family == sa->sa_family;
        sess_fail(s, SMTP_END_CONNECT, "%s", eerr);
    } else if (bufferevent_socket_connect(s->bev, csa, (int)clen) != 0) {
        char d[128];
        int err = EVUTIL_SOCKET_ERROR();
        mp_strlcpy(d, err ? evutil_socket_error_to_string(err) : "connect failed", sizeof d);
        lower_first(d);
        /* reported through the callback, from the loop, like any other failure */
        sess_fail(s, SMTP_END_CONNECT, "%s", d);
    }
    if (out)
        *out = s;
    s = NULL;
done:
    if (s)
        sess_free(s);
    return (int)st;
}

void smtp_sess_cancel(smtp_sess_t *s)
{
    if (!s)
        return;
    if (s->in_cb) { /* inside its own done callback: freed when that returns */
        s->cancel_pending = true;
        return;
    }
    mp_log(MP_LOG_DEBUG, "smtp %s: cancelled in %s", s->peer, smtp_state_name(s->state));
    sess_free(s);
}

/* ---- reuse: idle sessions ------------------------------------------------------------ */

bool smtp_sess_alive(const smtp_sess_t *s)
{
    return s && s->state == SMTP_ST_IDLE && !s->dead && !s->finished && s->bev &&
           !s->quit_sent;
}

size_t smtp_room_fresh(unsigned error_budget)
{
    unsigned b = error_budget ? error_budget : SMTP_ERROR_BUDGET_DEFAULT;
    return b > 1 ? b - 1 : 1; /* the MAIL FROM may be refused too */
}

size_t smtp_sess_room(const smtp_sess_t *s)
{
    if (!smtp_sess_alive(s) || s->res.slow)
        return 0;
    return budget_room(s, 2); /* RSET and MAIL FROM may be refused too */
}

size_t smtp_sess_room_txn(const smtp_sess_t *s, bool smtputf8)
{
    if (!smtp_sess_alive(s) || s->res.slow)
        return 0;
    /* RFC 6531 §3.4: a UTF-8 mailbox needs SMTPUTF8 on the transaction's MAIL FROM */
    if (smtputf8 && s->res.smtputf8_offered && !s->smtputf8)
        return 0;
    return budget_room(s, 0); /* no RSET, no MAIL FROM: only the RCPTs can be refused */
}

/* Forget the previous run: its recipients, transcript and per-run results. What is
 * known of the server (capabilities, TLS) and the session's refusals stay. */
static void sess_run_reset(smtp_sess_t *s, char **rcpts, smtp_rcpt_result_t *rres,
                           size_t nrcpt, smtp_done_cb cb, void *arg)
{
    for (size_t i = 0; i < s->nrcpt; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    free(s->rres);
    s->rcpts = rcpts;
    s->rres = rres;
    s->nrcpt = nrcpt;
    for (size_t i = 0; i < s->nlines; i++)
        free(s->lines[i].line);
    s->nlines = 0;
    smtp_result_t keep = s->res;
    memset(&s->res, 0, sizeof s->res);
    s->res.esmtp = keep.esmtp;
    s->res.pipelining = keep.pipelining;
    s->res.starttls_offered = keep.starttls_offered;
    s->res.smtputf8_offered = keep.smtputf8_offered;
    s->res.tls = keep.tls;
    memcpy(s->res.tls_version, keep.tls_version, sizeof s->res.tls_version);
    s->res.tls_verified = keep.tls_verified;
    memcpy(s->res.tls_verify_error, keep.tls_verify_error, sizeof s->res.tls_verify_error);
    s->res.egress = keep.egress; /* the same way out for every run */
    s->res.refusals = keep.refusals;
    s->res.slow = keep.slow;
    s->res.run = keep.run + 1;
    s->res.end = SMTP_END_OK;
    s->res.end_state = SMTP_ST_IDLE;
    s->t0 = mp_now_ms();
    s->decided = false;
    s->rcpt_done = s->rcpt_sent = s->rcpt_replied = s->txn_end = 0;
    s->txn_refused = TXN_NONE;
    s->quit_ahead = false;
    s->cb = cb;
    s->arg = arg;
    struct timeval tv = {.tv_sec = (time_t)(s->to.session_ms / 1000),
                         .tv_usec = (suseconds_t)(s->to.session_ms % 1000) * 1000};
    evtimer_add(s->sess_ev, &tv);
}

/* Copies of the recipients for a new run; false when out of memory (nothing kept). */
static bool rcpts_copy(const char *const *rcpts, size_t nrcpt, char ***nr_out,
                       smtp_rcpt_result_t **rr_out)
{
    char **nr = calloc(nrcpt, sizeof *nr);
    smtp_rcpt_result_t *rr = calloc(nrcpt, sizeof *rr);
    bool ok = nr && rr;
    for (size_t i = 0; ok && i < nrcpt; i++) {
        nr[i] = dup_str(rcpts[i]);
        ok = nr[i] != NULL;
        rr[i].rcpt = nr[i];
    }
    if (!ok) {
        for (size_t i = 0; nr && i < nrcpt; i++)
            free(nr[i]);
        free(nr);
        free(rr);
        return false;
    }
    *nr_out = nr;
    *rr_out = rr;
    return true;
}

/* A new run on an idle session: check the recipients against the room it has, copy them
 * and forget the previous run. MP_ERR_ARG leaves the session as it was. */
static int sess_run_begin(smtp_sess_t *s, const char *const *rcpts, size_t nrcpt,
                          size_t room, smtp_done_cb cb, void *arg)
{
    if (!cb || !rcpts || nrcpt == 0 || nrcpt > room)
        return MP_ERR_ARG;
    for (size_t i = 0; i < nrcpt; i++)
        if (!arg_ok(rcpts[i], false))
            return MP_ERR_ARG;
    char **nr;
    smtp_rcpt_result_t *rr;
    if (!rcpts_copy(rcpts, nrcpt, &nr, &rr))
        return MP_ERR_NOMEM;
    sess_run_reset(s, nr, rr, nrcpt, cb, arg);
    return MP_OK;
}

int smtp_sess_next(smtp_sess_t *s, const char *const *rcpts, size_t nrcpt, bool smtputf8,
                   smtp_done_cb cb, void *arg)
{
    int st = sess_run_begin(s, rcpts, nrcpt, smtp_sess_room(s), cb, arg);
    if (st != MP_OK)
        return st;
    s->smtputf8 = smtputf8;
    mp_log(MP_LOG_DEBUG, "smtp %s: run %u, %zu recipient(s), %u refusal(s) so far", s->peer,
           s->res.run, nrcpt, s->res.refusals);
    /* RFC 5321 §4.1.1.5: the previous transaction is still open (no DATA, no QUIT) */
    smtp_sess_enter(s, SMTP_ST_RSET);
    return MP_OK;
}

int smtp_sess_more(smtp_sess_t *s, const char *const *rcpts, size_t nrcpt, bool smtputf8,
                   bool quit, smtp_done_cb cb, void *arg)
{
    int st = sess_run_begin(s, rcpts, nrcpt, smtp_sess_room_txn(s, smtputf8), cb, arg);
    if (st != MP_OK)
        return st;
    s->quit_ahead = quit;
    s->res.transactions = 1; /* the open one: a 452 4.5.3 then opens a later one */
    mp_log(MP_LOG_DEBUG, "smtp %s: run %u, %zu recipient(s) in the open transaction%s, %u "
           "refusal(s) so far", s->peer, s->res.run, nrcpt, quit ? ", then QUIT" : "",
           s->res.refusals);
    /* RFC 5321 §4.1.1.3: RCPT may be repeated; replies are per recipient. The previous
     * run's MAIL FROM still holds (no DATA, no RSET was sent). */
    txn_plan(s, 0);
    smtp_sess_enter(s, SMTP_ST_RCPT);
    return MP_OK;
}

void smtp_sess_quit(smtp_sess_t *s, smtp_done_cb cb, void *arg)
{
    if (!s || !cb || s->state != SMTP_ST_IDLE || s->finished)
        mp_panic("the session is not idle");
    unsigned run = s->res.run;
    sess_run_reset(s, NULL, NULL, 0, cb, arg);
    s->res.run = run; /* a QUIT is not a run */
    s->decided = true; /* nothing a QUIT meets changes the outcome */
    if (s->dead) {
        sess_finish(s);
        return;
    }
    smtp_sess_enter(s, SMTP_ST_QUIT);
    if (s->quit_sent)
        sess_read(s); /* its 221 may have come while the session was parked */
}
