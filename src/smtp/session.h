/*
 * session.h - one SMTP client session on the event loop, up to RCPT and no further.
 *
 * connect -> banner -> EHLO (HELO fallback) -> STARTTLS when offered or demanded ->
 * EHLO again -> MAIL FROM -> RCPT x n (pipelined when PIPELINING is advertised) -> QUIT.
 * Recipients the server refuses with "too many recipients" (452 4.5.3) go into further
 * transactions of the same session (RSET -> MAIL FROM -> RCPT ...), in their order.
 * There is no DATA state: never sending DATA is structural.
 * A deadline per step plus a cap on the whole session. The session reports raw replies
 * and failures; it never decides what a reply means (classify does).
 *
 * Lifetime: smtp_sess_start() creates and starts it; it calls the done callback exactly
 * once (from the event loop, never from inside smtp_sess_start), then frees itself.
 * smtp_sess_cancel() frees it without calling back. The result passed to the callback
 * is borrowed for the duration of the call.
 */
#ifndef MP_SMTP_SESSION_H
#define MP_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "net/egress.h"
#include "smtp/reply.h"
#include "util/buf.h"

/* Session states (the order of a conversation). See session.c for the transitions. */
typedef enum {
    SMTP_ST_CONNECT,
    SMTP_ST_PROXY,        /* SOCKS5 handshake with the proxy (opts.egress), RFC 1928 */
    SMTP_ST_BANNER,
    SMTP_ST_EHLO,
    SMTP_ST_HELO,
    SMTP_ST_STARTTLS,
    SMTP_ST_TLS_HANDSHAKE,
    SMTP_ST_MAIL,
    SMTP_ST_RCPT,
    SMTP_ST_RSET,
    SMTP_ST_DRAIN,  /* reading the replies to commands pipelined after a refused one */
    SMTP_ST_IDLE,   /* kept open between transactions (opts.keep_open) */
    SMTP_ST_QUIT,
    SMTP_ST_DONE,
    SMTP_ST__COUNT
} smtp_state_t;

const char *smtp_state_name(smtp_state_t st);

/** How a session ended. SMTP_END_OK: every RCPT sent got a reply (whatever it said). */
typedef enum {
    SMTP_END_OK = 0,
    SMTP_END_CONNECT,   /* connection refused / unreachable */
    SMTP_END_TIMEOUT,   /* a step deadline or the session cap passed */
    SMTP_END_CLOSED,    /* the peer closed the connection unexpectedly */
    SMTP_END_PROTOCOL,  /* garbage, oversized or malformed replies */
    SMTP_END_TLS,       /* STARTTLS handshake failed */
    SMTP_END_REPLY,     /* a reply before RCPT stopped the session (banner 554, 421,
                           EHLO+HELO refused, STARTTLS refused, MAIL refused, 530 ...) */
    SMTP_END_LOCAL      /* our own machinery failed (socket, memory) */
} smtp_end_t;

const char *smtp_end_name(smtp_end_t e);

/** Per-step deadlines in milliseconds (RFC 5321 §4.5.3.2 gives the classic values).
 *  A field left at 0 takes the default of smtp_timeouts_default(). */
typedef struct {
    unsigned connect_ms;  /* default 30 s */
    unsigned banner_ms;   /* default 300 s per RFC; we default to 60 s */
    unsigned command_ms;  /* EHLO/HELO/STARTTLS/MAIL/RCPT/RSET/QUIT replies, default 60 s */
    unsigned session_ms;  /* whole session cap, default 180 s */
} smtp_timeouts_t;

typedef struct {
    const char *helo;        /* EHLO/HELO name (required) */
    const char *mail_from;   /* MAIL FROM address without brackets; "" = null sender <> */
    smtp_timeouts_t to;
    bool starttls;           /* use STARTTLS when offered (always tried when demanded) */
    bool smtputf8;           /* add SMTPUTF8 to MAIL FROM when advertised (RFC 6531) */
    SSL_CTX *ssl_ctx;        /* client context (no verification abort); may be NULL
                                when starttls is false, or when ssl_ctx_get is set */
    SSL_CTX *(*ssl_ctx_get)(void *arg); /* ssl_ctx NULL: asked once, when a server first
                                           offers or demands STARTTLS (NULL: no TLS) */
    void *ssl_ctx_arg;
    const char *sni;         /* name for SNI, usually the MX host; may be NULL */
    size_t rcpt_per_txn;     /* RCPTs per transaction, 0 = all in one; a 452 4.5.3 lowers
                                it for the rest of the session (RFC 5321 §4.5.3.1.10) */
    unsigned max_txn;        /* transactions per session, 0 = SMTP_TXN_MAX_DEFAULT */
    const net_egress_t *egress; /* send from this source address or through this SOCKS5
                                   proxy; NULL = the system's choice. Borrowed: must
                                   outlive the session. A proxy's failures end the session
                                   as END_CONNECT with the proxy named in detail */
    bool pipeline_mail;      /* with PIPELINING: MAIL FROM and the RCPTs in one write, and
                                RSET + MAIL FROM + RCPTs for a later transaction */
    bool keep_open;          /* when every recipient has its answer, go idle instead of
                                QUIT: the owner reuses the session (smtp_sess_next) or
                                ends it (smtp_sess_quit) */
    unsigned error_budget;   /* refusals (4xx/5xx replies) one session may take over its
                                whole life, 0 = SMTP_ERROR_BUDGET_DEFAULT; see
                                smtp_sess_room() */
} smtp_opts_t;

/** Refusals one session takes at most when opts.error_budget is 0: the most that never
 *  reaches Postfix's smtpd_soft_error_limit (10), past which every reply is delayed by a
 *  second, and far below its hard limit (20, "421 4.7.0 Error: too many errors").
 *  Postfix counts over the whole connection; RSET does not reset it. */
#define SMTP_ERROR_BUDGET_DEFAULT 9

/** A reply is "slow" when it takes longer than the fastest reply of the session plus
 *  this (ms): Postfix past its soft error limit sleeps 1 s before each reply. */
#define SMTP_SLOW_REPLY_MS 700

/** Transactions one session runs at most when opts.max_txn is 0. */
#define SMTP_TXN_MAX_DEFAULT 30

/** One line of the transcript. */
typedef struct {
    bool from_client;  /* true: our command; false: a server reply line */
    uint64_t at_ms;    /* milliseconds since the session started */
    char *line;        /* without CRLF */
} smtp_line_t;

/** What became of one recipient. */
typedef struct {
    const char *rcpt;  /* the address as given */
    bool has_reply;
    smtp_reply_t reply;
} smtp_rcpt_result_t;

/** The outcome of a session, passed to the done callback (borrowed).
 *  END_OK with a recipient that has no reply, or whose reply is still "too many
 *  recipients" (smtp_reply_too_many_rcpts), means the session stopped starting new
 *  transactions before that recipient got a real answer: the server refused the first
 *  RCPT of a fresh transaction too, or max_txn was reached, or the server went away. */
typedef struct {
    smtp_end_t end;
    smtp_state_t end_state;       /* state in which the session ended: for END_OK the last
                                     state reached (DONE after a clean QUIT; QUIT, or the
                                     RSET/MAIL/RCPT of a later transaction, when those
                                     failed, which does not change end);
                                     for END_REPLY the state of the stopping reply (the
                                     polite QUIT that follows is not counted) */
    char detail[256];             /* human detail for failures, e.g. "connection refused" */
    bool has_reply;               /* reply that stopped the session (SMTP_END_REPLY) */
    smtp_reply_t reply;
    bool has_mail_reply;          /* reply to the first MAIL FROM */
    smtp_reply_t mail_reply;
    size_t nrcpt;
    smtp_rcpt_result_t *rcpt;     /* nrcpt entries, in the order given */
    bool esmtp;                   /* EHLO was accepted */
    bool pipelining, starttls_offered, smtputf8_offered;
    bool tls;                     /* the session ran over TLS */
    char tls_version[32];         /* e.g. "TLSv1.3" */
    bool tls_verified;            /* certificate verified against system CAs and SNI */
    char tls_verify_error[128];   /* why not, when tls && !tls_verified */
    uint64_t duration_ms;
    unsigned round_trips;         /* writes after which we waited for the server (the
                                     banner is not counted; pipelined RCPTs count once) */
    unsigned transactions;        /* MAIL FROM accepted, i.e. transactions opened */
    size_t nlines;
    const smtp_line_t *lines;     /* transcript */
    bool lines_truncated;         /* the transcript hit its cap (500 lines) */
    const net_egress_t *egress;   /* opts.egress (the way out), or NULL */
    bool egress_failed;           /* the egress itself failed (proxy down, refused our
                                     credentials or its rules, not SOCKS5, silent; a
                                     source address that cannot be bound): the server
                                     was never asked, and the egress deserves a rest */
    /* reuse (opts.keep_open) */
    bool idle;                    /* the session is open and idle: the owner must call
                                     smtp_sess_next(), smtp_sess_quit() or
                                     smtp_sess_cancel() */
    unsigned run;                 /* 0 for the first run, 1 for the first smtp_sess_next() */
    unsigned refusals;            /* 4xx/5xx replies over the whole session so far */
    bool slow;                    /* a reply of this session came slowly (see
                                     SMTP_SLOW_REPLY_MS) */
} smtp_result_t;

typedef struct smtp_sess smtp_sess_t;

/** Done callback: called once; res is borrowed; the session frees itself afterwards. */
typedef void (*smtp_done_cb)(const smtp_result_t *res, void *arg);

/**
 * Start a session.
 * @param base    the event loop
 * @param opts    options (copied)
 * @param sa,salen the server address and port
 * @param rcpts,nrcpt recipients (copied), at least one
 * @param cb,arg  done callback
 * @param out     the new session (only for smtp_sess_cancel); may be NULL
 * @return MP_OK (0) when started: the callback will come, even for a connect that fails
 *         at once; MP_ERR_ARG (missing HELO name, no recipient, a CR/LF/control byte or
 *         more than 512 bytes in a name or address, not AF_INET/AF_INET6) or
 *         MP_ERR_NOMEM, and then no callback.
 */
int smtp_sess_start(struct event_base *base, const smtp_opts_t *opts,
                    const struct sockaddr *sa, socklen_t salen,
                    const char *const *rcpts, size_t nrcpt,
                    smtp_done_cb cb, void *arg, smtp_sess_t **out);

/**
 * Run a new transaction on an idle session (after a callback with res->idle):
 * RSET, MAIL FROM, then the recipients (RSET + MAIL FROM + RCPTs in one write when the
 * server offers PIPELINING and opts.pipeline_mail is set; one command at a time
 * otherwise). The transcript and the recipients' results start afresh; the callback
 * comes once more, as for smtp_sess_start(). Call it after reading the previous result.
 * @param rcpts,nrcpt recipients (copied), 1..smtp_sess_room(s)
 * @param smtputf8 add SMTPUTF8 to MAIL FROM when the server advertised it
 * @return MP_OK, MP_ERR_ARG (not idle, closed, retired, too many or bad recipients; the
 *         session stays as it was), MP_ERR_NOMEM
 */
int smtp_sess_next(smtp_sess_t *s, const char *const *rcpts, size_t nrcpt, bool smtputf8,
                   smtp_done_cb cb, void *arg);

/**
 * Continue the open transaction of an idle session with more recipients: RCPTs only, no
 * RSET, no second MAIL FROM (RFC 5321 §4.1.1.3: RCPT may be repeated, each recipient has
 * its own reply), all in one write with PIPELINING. Several domains may share the
 * transaction this way. Recipients refused "too many recipients" go into later
 * transactions as in any run.
 * @param rcpts,nrcpt recipients (copied), 1..smtp_sess_room_txn(s, smtputf8)
 * @param smtputf8 some recipient needs SMTPUTF8 (the open transaction must carry it)
 * @param quit     the session takes nothing after this run: with PIPELINING, QUIT goes in
 *                 the write of the last RCPT (RFC 2920 §3.1). The callback still comes
 *                 with res->idle set once every RCPT has its reply (before the 221 is
 *                 read); smtp_sess_room() is then 0 and the owner calls smtp_sess_quit(),
 *                 which sends nothing more and calls back on the 221 or the close.
 * @return MP_OK, MP_ERR_ARG (not idle, closed, retired, too many or bad recipients; the
 *         session stays as it was), MP_ERR_NOMEM
 */
int smtp_sess_more(smtp_sess_t *s, const char *const *rcpts, size_t nrcpt, bool smtputf8,
                   bool quit, smtp_done_cb cb, void *arg);

/** End an idle session politely: QUIT, then the callback (res->idle false, end OK) once
 *  the server answered or closed, then the session frees itself. A session the server
 *  closed while idle calls back at once (from the loop). */
void smtp_sess_quit(smtp_sess_t *s, smtp_done_cb cb, void *arg);

/** Is the session idle with its connection open (the server has not closed it nor sent
 *  anything unasked since)? */
bool smtp_sess_alive(const smtp_sess_t *s);

/**
 * How many recipients the next transaction of this idle session may carry so that the
 * session's refusals can never pass its error budget, even if every RCPT, the MAIL FROM
 * and the RSET were refused; 0 when it must not be reused (not idle, closed, a slow
 * reply seen, or the budget spent).
 */
size_t smtp_sess_room(const smtp_sess_t *s);

/**
 * How many recipients smtp_sess_more() may add to the open transaction of this idle
 * session so that its refusals can never pass its error budget, even if every one of
 * them were refused (no RSET or MAIL FROM is sent: only they count); 0 when the session
 * must not be reused, or when smtputf8 is wanted, offered and the open transaction's
 * MAIL FROM did not carry it.
 */
size_t smtp_sess_room_txn(const smtp_sess_t *s, bool smtputf8);

/** Recipients a new session may carry in its first transaction within an error budget
 *  (0 = the default): every RCPT and the MAIL FROM might be refused. */
size_t smtp_room_fresh(unsigned error_budget);

/** Stop and free a session without calling its callback. NULL is ignored; called from
 *  inside the session's own done callback it does nothing (the session is freed when
 *  the callback returns). */
void smtp_sess_cancel(smtp_sess_t *s);

/** Does a reply say "too many recipients" for this transaction (RFC 5321 §4.5.3.1.10:
 *  452, or 552 from older servers; RFC 3463 X.5.3)? The enhanced code X.5.3 or the words
 *  decide: a bare 452 is not enough (452 4.2.2 is a full mailbox). A 421 is never this
 *  (the server is closing the channel). */
bool smtp_reply_too_many_rcpts(const smtp_reply_t *r);

/** Default timeouts. */
void smtp_timeouts_default(smtp_timeouts_t *to);

/** A client SSL_CTX suited to MX connections: no verification abort (verification is
 *  recorded), TLS 1.0+ accepted, system CA store loaded. NULL on failure. */
SSL_CTX *smtp_tls_ctx_new(void);

#endif
