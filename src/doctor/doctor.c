/*
 * doctor.c - one doctor run on the event loop: the look-ups and connections of the
 * eight checks, in phases, then the report. See doctor.h.
 *
 * Phases (each waits for everything it started; `pending` counts them):
 *   EGRESS   the local address (the --source, or what the kernel would pick: a UDP
 *            connect(), no packet sent) and the public one (the myip name asked at the
 *            myip server, from the source address)
 *   PTR      PTR of the egress address, then A/AAAA of each name (forward-confirmed)
 *   IDENT    HELO A/AAAA and SPF; MAIL FROM MX and SPF; DNSBL honesty + listing;
 *            reference MX addresses
 *   CONNECT  TCP to port 25 (or the given port) of each reference MX, per family
 *   EHLO     banner, EHLO, QUIT with the first reference MX that connected
 * Quick mode stops after IDENT (and asks no DNSBL, MAIL FROM or reference MX question).
 * Through a SOCKS5 proxy the order is EGRESS (the reference MX addresses), CONNECT,
 * EHLO, PTR, IDENT: every connection goes through the proxy (the handshake is
 * net/socks5.c's state machine, driven here as smtp/session.c drives it), and the
 * egress address is the client address the EHLO's server echoed.
 *
 * Never MAIL, RCPT or DATA: the only commands written are EHLO and QUIT. Ownership: the
 * run owns its three resolvers, its SPF answer stores and its connections; they are
 * freed before the callback, which may free the run.
 */
#include "doctor/doctor.h"
#include "doctor/doctor_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "dns/dns.h"
#include "dns/spf.h"
#include "net/egress.h"
#include "net/socks5.h"
#include "smtp/reply.h"
#include "util/log.h"
#include "util/str.h"

const char *const doc_default_reference_mx[] = {
    "gmail-smtp-in.l.google.com", "mta5.am0.yahoodns.net",
    "outlook-com.olc.protection.outlook.com", NULL
};
const char *const doc_default_dnsbl[] = {
    "zen.spamhaus.org", "b.barracudacentral.org", "bl.spamcop.net", "psbl.surriel.com", NULL
};

static void run_advance(doc_run_t *r);

/* ---- helpers ---------------------------------------------------------------------- */

const char *doc_conn_res_name(conn_res_t r)
{
    switch (r) {
    case C_NONE: return "not tried";
    case C_OK: return "connected";
    case C_REFUSED: return "refused";
    case C_TIMEOUT: return "timeout";
    case C_RESET: return "reset";
    case C_UNREACHABLE: return "unreachable";
    case C_ERROR: return "error";
    case C_PROXY: return "proxy failed";
    case C_DENIED: return "refused by the proxy";
    }
    return "?";
}

void doc_text_put(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, DOC_TEXT_MAX, fmt, ap);
    va_end(ap);
}

void doc_detail_add(doc_check_t *c, const char *fmt, ...)
{
    if (c->ndetails >= DOC_DETAILS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->details[c->ndetails++], DOC_TEXT_MAX, fmt, ap);
    va_end(ap);
}

static dq_t *dq_new(doc_run_t *r, int what, size_t idx, size_t sub)
{
    if (r->ndq >= DQ_MAX)
        return NULL;
    dq_t *q = &r->dq[r->ndq++];
    q->run = r;
    q->what = what;
    q->idx = idx;
    q->sub = sub;
    return q;
}

static void on_records(const dns_records_t *res, void *arg);

/* Ask a question; pending counts it until its answer. */
static void question_ask(doc_run_t *r, dns_resolver_t *res, dns_rr_type_t type, const char *name,
                         int what, size_t idx, size_t sub)
{
    dq_t *q = dq_new(r, what, idx, sub);
    if (!q) {
        mp_log(MP_LOG_WARN, "doctor: too many questions, %s/%s not asked", name,
               dns_rr_type_name(type));
        return;
    }
    if (dns_records_lookup(res, type, name, on_records, q) != 0)
        r->pending++;
}

bool doc_addr_is_private(const char *ip)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1)
        return b[0] == 10 || b[0] == 127 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
               (b[0] == 192 && b[1] == 168) || (b[0] == 100 && (b[1] & 0xc0) == 64) ||
               (b[0] == 169 && b[1] == 254);
    if (inet_pton(AF_INET6, ip, b) == 1)
        return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||
               (memcmp(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0);
    return false;
}

bool doc_addr_same(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;
    if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
        return false;
    return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

bool doc_conn_echo(const conn_t *e, char *out, size_t size)
{
    out[0] = '\0';
    if (!e || !e->have_banner)
        return false;
    if (e->have_ehlo && e->ehlo.code / 100 == 2 && doc_echoed_addr(e->ehlo.text, out, size))
        return true;
    return doc_echoed_addr(e->banner.text, out, size);
}

/* "HOST", "HOST:PORT", "IP", "[IPv6]", "[IPv6]:PORT" (port 25 by default). */
static bool ref_parse(const char *s, ref_t *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->port = 25;
    const char *port = NULL;
    size_t hl;
    unsigned char bin[16];
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return false;
        hl = (size_t)(close - s - 1);
        if (hl >= sizeof ref->host)
            return false;
        mp_strlcpyn(ref->host, s + 1, hl, sizeof ref->host);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return false;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            colon = NULL;   /* a bare IPv6 address */
        }
        hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl == 0 || hl >= sizeof ref->host)
            return false;
        mp_strlcpyn(ref->host, s, hl, sizeof ref->host);
        if (colon)
            port = colon + 1;
    }
    if (port) {
        uint64_t p;
        if (!mp_parse_uint(port, 1, 65535, &p))
            return false;
        ref->port = (unsigned)p;
    }
    if (inet_pton(AF_INET, ref->host, bin) == 1) {
        ref->literal = true;
        mp_strlcpy(ref->ip4, ref->host, sizeof ref->ip4);
    } else if (inet_pton(AF_INET6, ref->host, bin) == 1) {
        ref->literal = true;
        mp_strlcpy(ref->ip6, ref->host, sizeof ref->ip6);
    }
    return ref->host[0] != '\0';
}

static bool sa_fill(const char *ip, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof *s4;
        return true;
    }
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return true;
    }
    return false;
}

/* The server part of "IP", "IP:PORT", "[IPv6]:PORT" (first of a comma list). */
static bool server_addr(const char *spec, char *ip, size_t size, unsigned *port)
{
    char first[128];
    mp_strlcpyn(first, spec, strcspn(spec, ","), sizeof first);
    *port = 53;
    ref_t tmp;
    if (!ref_parse(first, &tmp) || !tmp.literal)
        return false;
    *port = tmp.port == 25 && !strchr(first, ']') && !strchr(first + 1, ':') ? 53 : tmp.port;
    mp_strlcpy(ip, tmp.ip4[0] ? tmp.ip4 : tmp.ip6, size);
    return true;
}

/* The address the kernel would send from towards ip (no packet is sent). */
static bool local_addr_towards(const char *ip, unsigned port, char *out, size_t size)
{
    struct sockaddr_storage ss, me;
    socklen_t len, mlen = sizeof me;
    if (!sa_fill(ip, port, &ss, &len))
        return false;
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&ss, len) == 0 &&
              getsockname(fd, (struct sockaddr *)&me, &mlen) == 0;
    close(fd);
    if (!ok)
        return false;
    const void *a = me.ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)&me)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr;
    return inet_ntop(me.ss_family, a, out, (socklen_t)size) != NULL;
}

/* ---- SPF jobs -------------------------------------------------------------------------- */

static const dns_records_t *spf_get(void *arg, dns_rr_type_t type, const char *name)
{
    spf_job_t *j = arg;
    for (size_t i = 0; i < j->nstore; i++)
        if (j->store[i]->type == type && strcmp(j->store[i]->name, name) == 0)
            return j->store[i];
    return NULL;
}

static void spf_step(spf_job_t *j)
{
    doc_run_t *r = j->run;
    spf_eval(r->rep.egress, j->domain, j->sender, r->rep.helo, spf_get, j, &j->out);
    if (!j->out.need) {
        j->done = true;
        r->pending--;
        return;
    }
    if (j->nstore >= SPF_STORE_MAX) {
        j->out.need = false;
        j->out.result = SPF_TEMPERROR;
        mp_strlcpy(j->out.why, "too many DNS answers needed", sizeof j->out.why);
        j->done = true;
        r->pending--;
        return;
    }
    dq_t *q = dq_new(r, Q_SPF, j->helo ? 0 : 1, 0);
    if (!q || dns_records_lookup(r->dns, j->out.need_type, j->out.need_name, on_records, q) == 0) {
        j->out.need = false;
        j->out.result = SPF_TEMPERROR;
        mp_strlcpy(j->out.why, "out of resources", sizeof j->out.why);
        j->done = true;
        r->pending--;
    }
}

static void spf_start(doc_run_t *r, spf_job_t *j, bool helo, const char *domain,
                      const char *sender)
{
    j->run = r;
    j->helo = helo;
    j->active = true;
    mp_strlcpy(j->domain, domain, sizeof j->domain);
    mp_strlcpy(j->sender, sender, sizeof j->sender);
    r->pending++;
    spf_step(j);
}

static void spf_answer(spf_job_t *j, const dns_records_t *res)
{
    dns_records_t *copy = malloc(sizeof *copy);
    if (!copy) {
        j->out.result = SPF_TEMPERROR;
        j->done = true;
        j->run->pending--;
        return;
    }
    *copy = *res;
    j->store[j->nstore++] = copy;
    spf_step(j);
}

static void spf_cleanup(spf_job_t *j)
{
    for (size_t i = 0; i < j->nstore; i++)
        free(j->store[i]);
    j->nstore = 0;
}

/* ---- DNS answers ----------------------------------------------------------------------- */

static void copy_addrs(const dns_records_t *res, char (*dst)[64], size_t max, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < res->n && *n < max; i++)
        mp_strlcpy(dst[(*n)++], res->rr[i].text, 64);
}

static void on_records(const dns_records_t *res, void *arg)
{
    dq_t *q = arg;
    doc_run_t *r = q->run;
    r->pending--;
    switch (q->what) {
    case Q_MYIP_A:
    case Q_MYIP_TXT:
        r->myip_st = res->status;
        for (size_t i = 0; i < res->n && !r->rep.public_addr[0]; i++) {
            unsigned char b[16];
            const char *t = res->rr[i].text;
            if (inet_pton(AF_INET, t, b) == 1 || inet_pton(AF_INET6, t, b) == 1)
                mp_strlcpy(r->rep.public_addr, t, sizeof r->rep.public_addr);
        }
        if (!r->rep.public_addr[0] && q->what == Q_MYIP_A && res->status != DNS_TIMEOUT)
            question_ask(r, r->myip, DNS_RR_TXT, r->o.myip_name, Q_MYIP_TXT, 0, 0);
        break;
    case Q_PTR:
        r->ptr_st = res->status;
        for (size_t i = 0; i < res->n && r->nptr < PTR_NAMES_MAX; i++) {
            size_t k = r->nptr++;
            mp_strlcpy(r->ptr_names[k], res->rr[i].text, sizeof r->ptr_names[k]);
            bool v6 = strchr(r->rep.egress, ':') != NULL;
            question_ask(r, r->dns, v6 ? DNS_RR_AAAA : DNS_RR_A, r->ptr_names[k], Q_PTR_FWD, k, 0);
        }
        break;
    case Q_PTR_FWD: {
        size_t pos = strlen(r->ptr_addrs[q->idx]);
        for (size_t i = 0; i < res->n; i++) {
            if (doc_addr_same(res->rr[i].text, r->rep.egress))
                r->ptr_ok[q->idx] = true;
            mp_appendf(r->ptr_addrs[q->idx], sizeof r->ptr_addrs[q->idx], &pos, "%s%s",
                       pos ? " " : "", res->rr[i].text);
        }
        if (res->n == 0)
            mp_appendf(r->ptr_addrs[q->idx], sizeof r->ptr_addrs[q->idx], &pos, "%s",
                       dns_status_name(res->status));
        break;
    }
    case Q_HELO_A:
    case Q_HELO_AAAA: {
        if (q->what == Q_HELO_A)
            r->helo_a_st = res->status;
        else
            r->helo_aaaa_st = res->status;
        size_t pos = strlen(r->helo_addrs);
        for (size_t i = 0; i < res->n; i++) {
            if (doc_addr_same(res->rr[i].text, r->rep.egress))
                r->helo_match = true;
            mp_appendf(r->helo_addrs, sizeof r->helo_addrs, &pos, "%s%s", pos ? " " : "",
                       res->rr[i].text);
        }
        break;
    }
    case Q_FROM_MX: {
        r->from_mx_st = res->status;
        size_t pos = 0;
        size_t real = 0;
        for (size_t i = 0; i < res->n; i++) {
            if (res->rr[i].text[0])
                real++;
            mp_appendf(r->from_mx, sizeof r->from_mx, &pos, "%s%u %s", pos ? ", " : "",
                       res->rr[i].pref, res->rr[i].text[0] ? res->rr[i].text : ".");
        }
        r->from_null_mx = res->n > 0 && real == 0;
        if (res->status == DNS_NODATA) {
            const char *at = strrchr(r->rep.from, '@');
            question_ask(r, r->dns, DNS_RR_A, at ? at + 1 : "", Q_FROM_A, 0, 0);
        }
        break;
    }
    case Q_FROM_A: r->from_a_st = res->status; break;
    case Q_BL2: {
        bl_t *b = &r->bl[q->idx];
        b->st2 = res->status;
        copy_addrs(res, b->a2, 4, &b->n2);
        break;
    }
    case Q_BL1: {
        bl_t *b = &r->bl[q->idx];
        b->st1 = res->status;
        copy_addrs(res, b->a1, 4, &b->n1);
        break;
    }
    case Q_BL: {
        bl_t *b = &r->bl[q->idx];
        b->st = res->status;
        copy_addrs(res, b->a, 4, &b->n);
        break;
    }
    case Q_BL_TXT:
        if (res->n > 0)
            mp_strlcpy(r->bl[q->idx].txt, res->rr[0].text, sizeof r->bl[q->idx].txt);
        break;
    case Q_REF_A:
    case Q_REF_AAAA: {
        ref_t *ref = &r->ref[q->idx];
        bool v6 = q->what == Q_REF_AAAA;
        if (v6)
            ref->st6 = res->status;
        else
            ref->st4 = res->status;
        if (res->n > 0)
            mp_strlcpy(v6 ? ref->ip6 : ref->ip4, res->rr[0].text, sizeof ref->ip4);
        break;
    }
    case Q_SPF:
        r->pending++;   /* the job holds its own count until it is done */
        spf_answer(q->idx == 0 ? &r->spf_helo : &r->spf_from, res);
        break;
    default: break;
    }
    if (r->pending == 0)
        run_advance(r);
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_close(conn_t *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->timer)
        evtimer_del(c->timer);
}

static void conn_free(conn_t *c)
{
    if (!c)
        return;
    conn_close(c);
    if (c->timer)
        event_free(c->timer);
    free(c);
}

static void conn_finish(conn_t *c, conn_res_t res)
{
    if (!c->bev && c->res != C_NONE)
        return;   /* already finished */
    if (c->res == C_NONE || res != C_OK)
        c->res = res;
    conn_close(c);
    if (c->kind == K_PORT) {
        if (c->v6)
            c->ref->c6 = c->res;
        else
            c->ref->c4 = c->res;
    }
    doc_run_t *r = c->run;
    r->pending--;
    if (r->pending == 0)
        run_advance(r);
}

static void conn_arm(conn_t *c)
{
    struct timeval tv = { c->run->o.timeout_ms / 1000, (c->run->o.timeout_ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
}

static void conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_t *c = arg;
    if (c->via_proxy && !c->tunnel) {
        /* after our CONNECT request the proxy is waiting for the server: its silence is
         * the server's (a dropped SYN); before, the proxy's own */
        bool asked = c->proxy_up && c->socks.state == SOCKS5_ST_REPLY;
        mp_strlcpy(c->err, !c->proxy_up ? "no connection to the proxy in time"
                           : asked      ? "the proxy got no answer from the server in time"
                                        : "no answer to the SOCKS5 handshake in time",
                   sizeof c->err);
        conn_finish(c, asked ? C_TIMEOUT : C_PROXY);
        return;
    }
    mp_strlcpy(c->err, c->res == C_OK ? "no reply in time" : "no answer to the connection",
               sizeof c->err);
    conn_finish(c, c->res == C_OK ? C_OK : C_TIMEOUT);
}

static void conn_send(conn_t *c, const char *cmd)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "%s\r\n", cmd);
}

/* Send what the SOCKS5 handshake has to say next. */
static void conn_socks_flush(conn_t *c)
{
    size_t n;
    const unsigned char *p = socks5_out(&c->socks, &n);
    if (n)
        bufferevent_write(c->bev, p, n);
}

/* What a failed handshake means for the port check: the server's answer relayed by the
 * proxy (REP 3-6), the proxy's refusal (other REP codes), or the proxy's own failure. */
static conn_res_t conn_socks_res(const socks5_t *s)
{
    if (s->err == SOCKS5_E_REP && !socks5_fault_is_proxy(s))
        return s->rep == 5 ? C_REFUSED : s->rep == 6 ? C_TIMEOUT : C_UNREACHABLE;
    if (s->err == SOCKS5_E_REP || s->err == SOCKS5_E_ATYP)
        return C_DENIED;
    return C_PROXY;
}

/* Feed the proxy's bytes to the handshake (net/socks5.h). True when the tunnel is open
 * and SMTP may be read (what follows the proxy's reply stays in the buffer). */
static bool conn_socks_read(conn_t *c, struct evbuffer *in)
{
    for (;;) {
        size_t len = evbuffer_get_length(in), used = 0;
        if (len == 0)
            return false;
        if (len > 512)   /* the longest SOCKS5 reply is 262 bytes */
            len = 512;
        const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)len);
        if (!p) {
            mp_strlcpy(c->err, "out of memory", sizeof c->err);
            conn_finish(c, C_ERROR);
            return false;
        }
        socks5_step_t st = socks5_read(&c->socks, p, len, &used);
        evbuffer_drain(in, used);
        switch (st) {
        case SOCKS5_MORE:
            return false;
        case SOCKS5_WRITE:
            conn_socks_flush(c);
            conn_arm(c);
            continue;
        case SOCKS5_DONE:
            c->tunnel = true;
            c->res = C_OK;   /* connected to the server, through the proxy */
            if (c->kind == K_PORT) {
                conn_finish(c, C_OK);
                return false;
            }
            conn_arm(c);
            return true;
        case SOCKS5_FAIL:
            break;
        }
        mp_strlcpy(c->err, socks5_why(&c->socks), sizeof c->err);
        conn_finish(c, conn_socks_res(&c->socks));
        return false;
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->via_proxy && !c->tunnel && !conn_socks_read(c, in))
        return;
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        unsigned char *data = evbuffer_pullup(in, -1);
        smtp_reply_t rep;
        size_t used = 0;
        smtp_rd_status_t st = smtp_reply_parse(data, len, &rep, &used);
        if (st == SMTP_RD_MORE) {
            if (len > REPLY_BUF_MAX) {
                mp_strlcpy(c->err, "reply too long", sizeof c->err);
                conn_finish(c, C_ERROR);
            }
            return;
        }
        if (st != SMTP_RD_REPLY) {
            mp_strlcpy(c->err, smtp_rd_status_text(st), sizeof c->err);
            conn_finish(c, C_ERROR);
            return;
        }
        evbuffer_drain(in, used);
        conn_arm(c);
        if (c->step == 0) {
            c->banner = rep;
            c->have_banner = true;
            if (rep.code / 100 != 2) {
                conn_send(c, "QUIT");
                c->step = 2;
                continue;
            }
            char cmd[300];
            size_t pos = 0;
            mp_appendf(cmd, sizeof cmd, &pos, "EHLO %s", c->run->rep.helo);
            conn_send(c, cmd);
            c->step = 1;
        } else if (c->step == 1) {
            c->ehlo = rep;
            c->have_ehlo = true;
            conn_send(c, "QUIT");   /* never MAIL, RCPT or DATA here */
            c->step = 2;
        } else {
            conn_finish(c, C_OK);
            return;
        }
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn_t *c = arg;
    if (c->via_proxy && !c->tunnel) {
        if (what & BEV_EVENT_CONNECTED) {   /* to the proxy: offer our methods (§3) */
            c->proxy_up = true;
            conn_arm(c);
            conn_socks_flush(c);
            bufferevent_enable(c->bev, EV_READ | EV_WRITE);
            return;
        }
        int perr = EVUTIL_SOCKET_ERROR();
        if (!c->proxy_up)
            snprintf(c->err, sizeof c->err, "cannot connect to the proxy: %s",
                     evutil_socket_error_to_string(perr));
        else
            mp_strlcpy(c->err, "the proxy closed the connection during the handshake",
                       sizeof c->err);
        conn_finish(c, C_PROXY);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        c->res = C_OK;
        if (c->kind == K_PORT) {
            conn_finish(c, C_OK);
            return;
        }
        conn_arm(c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    conn_res_t res = C_ERROR;
    if (what & BEV_EVENT_EOF) {
        mp_strlcpy(c->err, "connection closed by the server", sizeof c->err);
        res = c->res == C_OK ? C_OK : C_RESET;
    } else {
        if (err == ECONNREFUSED)
            res = C_REFUSED;
        else if (err == ECONNRESET || err == EPIPE)
            res = C_RESET;
        else if (err == ETIMEDOUT)
            res = C_TIMEOUT;
        else if (err == ENETUNREACH || err == EHOSTUNREACH || err == EADDRNOTAVAIL ||
                 err == EAFNOSUPPORT)
            res = C_UNREACHABLE;
        mp_strlcpy(c->err, evutil_socket_error_to_string(err), sizeof c->err);
        if (c->res == C_OK && res != C_RESET)
            res = C_OK;   /* an error after the conversation started: keep what we have */
    }
    conn_finish(c, res);
}

/* Open a connection to ip:port from the source address; pending counts it. */
static conn_t *conn_start(doc_run_t *r, conn_kind_t kind, ref_t *ref, bool v6)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->run = r;
    c->kind = kind;
    c->ref = ref;
    c->v6 = v6;
    c->timer = evtimer_new(r->base, conn_timeout_cb, c);
    struct sockaddr_storage ss, src;
    socklen_t len, slen;
    const char *ip = v6 ? ref->ip6 : ref->ip4;
    r->pending++;
    if (!c->timer || !sa_fill(ip, ref->port, &ss, &len)) {
        c->res = C_ERROR;
        r->pending--;
        return c;
    }
    int fd;
    if (r->has_proxy) {
        /* ask the proxy for ip:port (never a name, as a session does), connect to it */
        const net_egress_t *px = &r->proxy;
        c->via_proxy = true;
        if (socks5_init(&c->socks, (struct sockaddr *)&ss, px->user[0] ? px->user : NULL,
                        px->user[0] ? px->pass : NULL) != MP_OK) {
            mp_strlcpy(c->err, "credentials longer than RFC 1929 allows", sizeof c->err);
            c->res = C_PROXY;
            r->pending--;
            return c;
        }
        memcpy(&ss, &px->addr, sizeof ss);
        len = px->addrlen;
        fd = net_egress_socket(px, ss.ss_family, c->err, sizeof c->err);
    } else {
        fd = socket(ss.ss_family, SOCK_STREAM, 0);
        if (fd < 0)
            mp_strlcpy(c->err, strerror(errno), sizeof c->err);
    }
    if (fd < 0) {
        c->res = r->has_proxy ? C_PROXY : C_UNREACHABLE;
        r->pending--;
        return c;
    }
    if (r->o.source && sa_fill(r->o.source, 0, &src, &slen)) {
        if (src.ss_family != ss.ss_family || bind(fd, (struct sockaddr *)&src, slen) != 0) {
            c->res = C_UNREACHABLE;
            mp_strlcpy(c->err, src.ss_family != ss.ss_family ? "source of another family"
                                                              : strerror(errno), sizeof c->err);
            close(fd);
            r->pending--;
            return c;
        }
    }
    evutil_make_socket_nonblocking(fd);
    c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        c->res = C_ERROR;
        r->pending--;
        return c;
    }
    bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, REPLY_BUF_MAX + 1);   /* read no further */
    conn_arm(c);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) != 0) {
        /* refused at once (loopback) or no route: the event callback is not called */
        int err = EVUTIL_SOCKET_ERROR();
        conn_res_t res = c->via_proxy ? C_PROXY : err == ECONNREFUSED ? C_REFUSED : C_UNREACHABLE;
        snprintf(c->err, sizeof c->err, "%s%s", c->via_proxy ? "cannot connect to the proxy: " : "",
                 evutil_socket_error_to_string(err));
        conn_close(c);
        c->res = res;
        if (kind == K_PORT) {
            if (v6)
                ref->c6 = res;
            else
                ref->c4 = res;
        }
        r->pending--;
    }
    return c;
}

/* ---- phases ----------------------------------------------------------------------------- */

/* A / AAAA of every reference MX that is not an address literal. */
static void start_refs(doc_run_t *r)
{
    for (size_t i = 0; i < r->o.nreference_mx; i++) {
        ref_t *ref = &r->ref[i];
        if (!ref_parse(r->o.reference_mx[i], ref))
            continue;
        if (ref->literal)
            continue;
        question_ask(r, r->dns, DNS_RR_A, ref->host, Q_REF_A, i, 0);
        question_ask(r, r->dns, DNS_RR_AAAA, ref->host, Q_REF_AAAA, i, 0);
    }
}

/* Through a proxy: the local address towards it, the HELO (the proxy's, else --helo,
 * else the fallback: there is no PTR to default to before the EHLO), the reference MX. */
static void start_egress_proxy(doc_run_t *r)
{
    const struct sockaddr_storage *pa = &r->proxy.addr;
    const struct sockaddr_in6 *p6 = (const struct sockaddr_in6 *)pa;
    const struct sockaddr_in *p4 = (const struct sockaddr_in *)pa;
    char ip[64];
    bool v6 = pa->ss_family == AF_INET6;
    if (inet_ntop(pa->ss_family, v6 ? (const void *)&p6->sin6_addr : (const void *)&p4->sin_addr,
                  ip, sizeof ip))
        local_addr_towards(ip, ntohs(v6 ? p6->sin6_port : p4->sin_port), r->rep.local_addr,
                           sizeof r->rep.local_addr);
    mp_strlcpy(r->rep.helo, r->o.helo ? r->o.helo : r->o.fallback_helo ? r->o.fallback_helo : "",
               sizeof r->rep.helo);
    start_refs(r);
}

static void start_egress(doc_run_t *r)
{
    char ip[64];
    unsigned port;
    if (r->has_proxy) {
        start_egress_proxy(r);
        return;
    }
    /* without a myip server: the route towards the resolver, or towards TEST-NET-1 */
    const char *towards = r->myip ? r->o.myip_dns : r->o.dns ? r->o.dns : "192.0.2.1";
    if (r->o.source) {
        mp_strlcpy(r->rep.local_addr, r->o.source, sizeof r->rep.local_addr);
    } else if (server_addr(towards, ip, sizeof ip, &port)) {
        local_addr_towards(ip, port, r->rep.local_addr, sizeof r->rep.local_addr);
    }
    if (r->myip)
        question_ask(r, r->myip, DNS_RR_A, r->o.myip_name, Q_MYIP_A, 0, 0);
}

static void start_ptr(doc_run_t *r)
{
    if (r->has_proxy) {
        /* the proxy's public address is what the server saw; this machine's local
         * address is not what any server sees: unknown without an echo */
        doc_conn_echo(r->ehlo, r->rep.public_addr, sizeof r->rep.public_addr);
        mp_strlcpy(r->rep.egress, r->rep.public_addr, sizeof r->rep.egress);
    } else {
        mp_strlcpy(r->rep.egress, r->rep.public_addr[0] ? r->rep.public_addr : r->rep.local_addr,
                   sizeof r->rep.egress);
    }
    char name[DNS_NAME_TEXT_MAX];
    if (!r->rep.egress[0] || !doc_dnsbl_name(r->rep.egress, "", name, sizeof name)) {
        r->ptr_st = DNS_ERROR;
        return;
    }
    size_t n = strlen(name);   /* "4.3.2.1." + "in-addr.arpa" */
    mp_strlcpy(name + n, strchr(r->rep.egress, ':') ? "ip6.arpa" : "in-addr.arpa",
               sizeof name - n);
    question_ask(r, r->dns, DNS_RR_PTR, name, Q_PTR, 0, 0);
}

static void start_ident(doc_run_t *r)
{
    for (size_t i = 0; i < r->nptr; i++) {
        if (r->ptr_ok[i] && !r->rep.ptr[0])
            mp_strlcpy(r->rep.ptr, r->ptr_names[i], sizeof r->rep.ptr);
    }
    if (r->has_proxy) {
        /* set before the EHLO (start_egress_proxy) */
    } else if (r->o.helo) {
        mp_strlcpy(r->rep.helo, r->o.helo, sizeof r->rep.helo);
    } else if (r->rep.ptr[0]) {
        mp_strlcpy(r->rep.helo, r->rep.ptr, sizeof r->rep.helo);
        r->rep.helo_defaulted = true;
    } else if (r->o.fallback_helo) {
        mp_strlcpy(r->rep.helo, r->o.fallback_helo, sizeof r->rep.helo);
    }
    bool fqdn = strchr(r->rep.helo, '.') && r->rep.helo[0] != '[';
    if (fqdn) {
        question_ask(r, r->dns, DNS_RR_A, r->rep.helo, Q_HELO_A, 0, 0);
        question_ask(r, r->dns, DNS_RR_AAAA, r->rep.helo, Q_HELO_AAAA, 0, 0);
        char sender[300];
        size_t pos = 0;
        mp_appendf(sender, sizeof sender, &pos, "postmaster@%s", r->rep.helo);
        if (r->rep.egress[0])
            spf_start(r, &r->spf_helo, true, r->rep.helo, sender);   /* RFC 7208 §2.3 */
    }
    if (r->o.quick)
        return;
    const char *at = strrchr(r->rep.from, '@');
    if (at && at[1]) {
        question_ask(r, r->dns, DNS_RR_MX, at + 1, Q_FROM_MX, 0, 0);
        if (r->rep.egress[0])
            spf_start(r, &r->spf_from, false, at + 1, r->rep.from);
    }
    for (size_t i = 0; i < r->o.ndnsbl; i++) {
        bl_t *b = &r->bl[i];
        char name[DNS_NAME_TEXT_MAX];
        mp_strlcpy(b->zone, r->o.dnsbl[i], sizeof b->zone);
        doc_dnsbl_name("127.0.0.2", b->zone, name, sizeof name);
        question_ask(r, r->bl_dns, DNS_RR_A, name, Q_BL2, i, 0);
        doc_dnsbl_name("127.0.0.1", b->zone, name, sizeof name);
        question_ask(r, r->bl_dns, DNS_RR_A, name, Q_BL1, i, 0);
        if (r->rep.egress[0] && doc_dnsbl_name(r->rep.egress, b->zone, name, sizeof name)) {
            question_ask(r, r->bl_dns, DNS_RR_A, name, Q_BL, i, 0);
            question_ask(r, r->bl_dns, DNS_RR_TXT, name, Q_BL_TXT, i, 0);
        }
    }
    if (!r->has_proxy)
        start_refs(r);   /* through a proxy: asked in EGRESS */
}

static void start_connect(doc_run_t *r)
{
    for (size_t i = 0; i < r->o.nreference_mx; i++) {
        ref_t *ref = &r->ref[i];
        for (int v6 = 0; v6 < 2; v6++) {
            if (!(v6 ? ref->ip6 : ref->ip4)[0] || r->nconns >= sizeof r->conns / sizeof r->conns[0])
                continue;
            conn_t *c = conn_start(r, K_PORT, ref, v6 != 0);
            if (c)
                r->conns[r->nconns++] = c;
        }
    }
}

static void start_ehlo(doc_run_t *r)
{
    for (int v6 = 0; v6 < 2 && !r->ehlo; v6++) {
        for (size_t i = 0; i < r->o.nreference_mx && !r->ehlo; i++) {
            ref_t *ref = &r->ref[i];
            if ((v6 ? ref->c6 : ref->c4) == C_OK) {
                r->ehlo = conn_start(r, K_EHLO, ref, v6 != 0);
            }
        }
    }
}

static void run_finish(doc_run_t *r)
{
    r->phase = PH_DONE;
    doc_report_build(r);
    dns_resolver_free(r->dns);
    dns_resolver_free(r->bl_dns);
    dns_resolver_free(r->myip);
    r->dns = r->bl_dns = r->myip = NULL;
    spf_cleanup(&r->spf_helo);
    spf_cleanup(&r->spf_from);
    r->cb(r, &r->rep, r->arg);   /* may free r */
}

/* The phase after r->phase in this run's order (doctor_int.h). */
static int phase_next(const doc_run_t *r)
{
    static const int direct[] = { PH_EGRESS, PH_PTR, PH_IDENT, PH_CONNECT, PH_EHLO, PH_DONE };
    static const int proxy[] = { PH_EGRESS, PH_CONNECT, PH_EHLO, PH_PTR, PH_IDENT, PH_DONE };
    const int *order = r->has_proxy ? proxy : direct;
    for (size_t i = 0; i + 1 < sizeof direct / sizeof direct[0]; i++)
        if (order[i] == r->phase)
            return order[i + 1];
    return PH_DONE;
}

static void run_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    doc_run_t *r = arg;
    while (r->pending == 0 && r->phase < PH_DONE) {
        r->phase = phase_next(r);
        switch (r->phase) {
        case PH_PTR: start_ptr(r); break;
        case PH_IDENT: start_ident(r); break;
        case PH_CONNECT: if (!r->o.quick) start_connect(r); break;
        case PH_EHLO: if (!r->o.quick) start_ehlo(r); break;
        case PH_DONE:
            run_finish(r);
            return;
        default: break;
        }
    }
}

/* Advance from the loop, never from inside a callback of a resolver or bufferevent that
 * the next phase (or finish) may free. */
static void run_advance(doc_run_t *r)
{
    static const struct timeval zero = { 0, 0 };
    evtimer_add(r->kick, &zero);
}

/* ---- public ------------------------------------------------------------------------------ */

static const char *opt_keep(char *dst, size_t size, const char *src)
{
    if (!src || !*src)
        return NULL;
    mp_strlcpy(dst, src, size);
    return dst;
}

doc_run_t *doc_run_start(struct event_base *base, const doc_opts_t *o, doc_done_cb cb,
                         void *arg, mp_status_t *st)
{
    doc_run_t *r = calloc(1, sizeof *r);
    if (!r) {
        *st = MP_ERR_NOMEM;
        return NULL;
    }
    r->base = base;
    r->cb = cb;
    r->arg = arg;
    r->o = *o;
    r->o.helo = opt_keep(r->s_helo, sizeof r->s_helo, o->helo);
    r->o.fallback_helo = opt_keep(r->s_fallback, sizeof r->s_fallback, o->fallback_helo);
    r->o.from = opt_keep(r->s_from, sizeof r->s_from, o->from);
    r->o.source = opt_keep(r->s_source, sizeof r->s_source, o->source);
    r->o.dns = opt_keep(r->s_dns, sizeof r->s_dns, o->dns);
    r->o.dnsbl_dns = opt_keep(r->s_bldns, sizeof r->s_bldns, o->dnsbl_dns);
    r->o.myip_dns = opt_keep(r->s_myip_dns, sizeof r->s_myip_dns,
                             o->myip_dns ? o->myip_dns : DOC_DEFAULT_MYIP_DNS);
    r->o.myip_name = opt_keep(r->s_myip_name, sizeof r->s_myip_name,
                              o->myip_name ? o->myip_name : DOC_DEFAULT_MYIP_NAME);
    if (!r->o.timeout_ms)
        r->o.timeout_ms = DOC_DEFAULT_TIMEOUT_MS;
    r->o.nreference_mx = o->nreference_mx < DOC_LIST_MAX ? o->nreference_mx : DOC_LIST_MAX;
    for (size_t i = 0; i < r->o.nreference_mx; i++)
        r->o.reference_mx[i] = opt_keep(r->s_ref[i], sizeof r->s_ref[i], o->reference_mx[i]);
    r->o.ndnsbl = o->ndnsbl < DOC_LIST_MAX ? o->ndnsbl : DOC_LIST_MAX;
    for (size_t i = 0; i < r->o.ndnsbl; i++)
        r->o.dnsbl[i] = opt_keep(r->s_bl[i], sizeof r->s_bl[i], o->dnsbl[i]);
    mp_strlcpy(r->rep.source, r->o.source ? r->o.source : "", sizeof r->rep.source);
    mp_strlcpy(r->rep.from, r->o.from ? r->o.from : "", sizeof r->rep.from);
    static const char *const ids[] = { "config", "egress", "port25", "rdns", "helo", "dnsbl",
                                       "mail_from", "ehlo" };
    static const char *const titles[] = { "Configuration", "Egress address", "Port 25",
                                          "Reverse DNS", "HELO name", "DNS blocklists",
                                          "MAIL FROM domain", "Live EHLO" };
    for (int i = 0; i < DOC_NCHECKS; i++) {
        r->rep.check[i].id = ids[i];
        r->rep.check[i].title = titles[i];
        r->rep.check[i].level = DOC_SKIP;
        doc_text_put(r->rep.check[i].message, "not run (quick checks only)");
    }
    unsigned char bin[16];
    if (r->o.source && inet_pton(AF_INET, r->o.source, bin) != 1 &&
        inet_pton(AF_INET6, r->o.source, bin) != 1) {
        *st = MP_ERR_ARG;
        goto fail;
    }
    if (o->proxy) {
        if (o->proxy->kind != NET_EGRESS_SOCKS5 || r->o.source || o->quick) {
            *st = MP_ERR_ARG;
            goto fail;
        }
        r->proxy = *o->proxy;
        r->has_proxy = true;
        r->o.proxy = &r->proxy;
        mp_strlcpy(r->rep.proxy, r->proxy.name, sizeof r->rep.proxy);
    }
    unsigned tries_ms = r->o.timeout_ms < 2000 ? r->o.timeout_ms : r->o.timeout_ms / 2;
    dns_opts_t d = { .server = r->o.dns, .timeout_ms = tries_ms, .tries = 2,
                     .local_addr = r->o.source };
    r->dns = dns_resolver_new(base, &d, st);
    if (!r->dns)
        goto fail;
    d.server = r->o.dnsbl_dns ? r->o.dnsbl_dns : r->o.dns;
    r->bl_dns = dns_resolver_new(base, &d, st);
    if (!r->bl_dns)
        goto fail;
    d.server = r->o.myip_dns;
    bool want_myip = strcmp(r->o.myip_dns, "none") != 0 && !r->has_proxy; /* see PH_PTR */
    if (want_myip && !(r->myip = dns_resolver_new(base, &d, st)))
        goto fail;
    r->kick = evtimer_new(base, run_kick_cb, r);
    if (!r->kick) {
        *st = MP_ERR_NOMEM;
        goto fail;
    }
    r->phase = PH_EGRESS;
    start_egress(r);
    if (r->pending == 0)
        run_advance(r);
    *st = MP_OK;
    return r;
fail:
    doc_run_free(r);
    return NULL;
}

void doc_run_free(doc_run_t *r)
{
    if (!r)
        return;
    dns_resolver_free(r->dns);
    dns_resolver_free(r->bl_dns);
    dns_resolver_free(r->myip);
    spf_cleanup(&r->spf_helo);
    spf_cleanup(&r->spf_from);
    for (size_t i = 0; i < r->nconns; i++)
        conn_free(r->conns[i]);
    conn_free(r->ehlo);
    if (r->kick)
        event_free(r->kick);
    free(r);
}

typedef struct {
    doc_report_t *out;
    bool done;
} sync_t;

static void sync_cb(doc_run_t *run, const doc_report_t *rep, void *arg)
{
    (void)run;
    sync_t *s = arg;
    *s->out = *rep;
    s->done = true;
}

mp_status_t doc_run_sync(const doc_opts_t *o, doc_report_t *rep)
{
    struct event_base *base = event_base_new();
    if (!base)
        return MP_ERR_NOMEM;
    sync_t s = { .out = rep };
    mp_status_t st = MP_OK;
    doc_run_t *r = doc_run_start(base, o, sync_cb, &s, &st);
    if (r) {
        while (!s.done && event_base_loop(base, EVLOOP_ONCE) == 0) {
        }
        doc_run_free(r);
        if (!s.done)
            st = MP_ERR_INTERNAL;
    }
    event_base_free(base);
    return st;
}
