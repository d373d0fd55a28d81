/*
 * doctor_int.h - private to src/doctor: the state of one run (doctor.c drives it, report.c
 * turns it into the report) and the helpers both use. Not for other modules.
 */
#ifndef MP_DOCTOR_INT_H
#define MP_DOCTOR_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dns/dns.h"
#include "dns/spf.h"
#include "doctor/doctor.h"
#include "net/socks5.h"
#include "smtp/reply.h"

#define PTR_NAMES_MAX 4
#define SPF_STORE_MAX 48
#define REPLY_BUF_MAX 65536   /* bytes of server replies kept before giving up */

/* Phases; a run goes through them in the order of its mode (doctor.c phase_next):
 * direct EGRESS PTR IDENT CONNECT EHLO DONE; through a proxy EGRESS CONNECT EHLO PTR
 * IDENT DONE (the egress address is known only from the EHLO's echo). */
enum { PH_EGRESS, PH_PTR, PH_IDENT, PH_CONNECT, PH_EHLO, PH_DONE };

/* C_PROXY: the proxy itself failed (not reachable, not SOCKS5, methods, authentication);
 * C_DENIED: the proxy refused the CONNECT on its own account (REP 1, 2, 7, 8, unassigned).
 * Through a proxy, REP 5 is C_REFUSED, REP 3/4 C_UNREACHABLE, REP 6 and silence after
 * the CONNECT request C_TIMEOUT: the server's answers, relayed. */
typedef enum { C_NONE = 0, C_OK, C_REFUSED, C_TIMEOUT, C_RESET, C_UNREACHABLE, C_ERROR,
               C_PROXY, C_DENIED } conn_res_t;


typedef struct doc_run doc_run_t;

typedef struct {
    doc_run_t *run;
    bool helo;                         /* the HELO's SPF, else MAIL FROM's */
    bool active, done;
    char domain[256], sender[600];
    spf_out_t out;
    dns_records_t *store[SPF_STORE_MAX];
    size_t nstore;
} spf_job_t;

typedef struct {
    char zone[256];
    dns_status_t st2, st1, st;         /* test entry 127.0.0.2, 127.0.0.1, the egress */
    char a2[4][64], a1[4][64], a[4][64];
    size_t n2, n1, n;
    char txt[256];
} bl_t;

typedef struct {
    char host[256];
    unsigned port;
    bool literal;
    dns_status_t st4, st6;
    char ip4[64], ip6[64];             /* first address of each family, "" none */
    conn_res_t c4, c6;
} ref_t;

typedef enum { K_PORT, K_EHLO } conn_kind_t;

typedef struct conn {
    doc_run_t *run;
    conn_kind_t kind;
    ref_t *ref;
    bool v6;
    struct bufferevent *bev;
    struct event *timer;
    int step;                          /* EHLO: 0 banner, 1 EHLO reply, 2 QUIT reply */
    conn_res_t res;
    smtp_reply_t banner, ehlo;
    bool have_banner, have_ehlo;
    char err[160];
    /* through the proxy (run->has_proxy): connected to it, tunnel open, the handshake */
    bool via_proxy, proxy_up, tunnel;
    socks5_t socks;
} conn_t;

/* One DNS question's context (the arg of its callback). */
typedef struct {
    doc_run_t *run;
    int what;
    size_t idx, sub;
} dq_t;

enum { Q_MYIP_A, Q_MYIP_TXT, Q_PTR, Q_PTR_FWD, Q_HELO_A, Q_HELO_AAAA, Q_FROM_MX, Q_FROM_A,
       Q_BL2, Q_BL1, Q_BL, Q_BL_TXT, Q_REF_A, Q_REF_AAAA, Q_SPF };

#define DQ_MAX 256

struct doc_run {
    struct event_base *base;
    doc_opts_t o;
    net_egress_t proxy;                /* o.proxy points here when has_proxy */
    bool has_proxy;
    char s_helo[256], s_fallback[256], s_from[512], s_source[64], s_dns[128], s_bldns[128],
        s_myip_dns[128], s_myip_name[256];
    char s_ref[DOC_LIST_MAX][300], s_bl[DOC_LIST_MAX][256];
    dns_resolver_t *dns, *bl_dns, *myip;
    doc_done_cb cb;
    void *arg;
    int phase;
    unsigned pending;
    struct event *kick;
    doc_report_t rep;
    dq_t dq[DQ_MAX];
    size_t ndq;
    /* egress */
    dns_status_t myip_st;
    /* PTR */
    dns_status_t ptr_st;
    size_t nptr;
    char ptr_names[PTR_NAMES_MAX][256];
    bool ptr_ok[PTR_NAMES_MAX];
    char ptr_addrs[PTR_NAMES_MAX][160];
    /* HELO */
    dns_status_t helo_a_st, helo_aaaa_st;
    bool helo_match;
    char helo_addrs[300];
    spf_job_t spf_helo, spf_from;
    /* MAIL FROM */
    dns_status_t from_mx_st, from_a_st;
    char from_mx[300];
    bool from_null_mx;
    /* DNSBL, reference MX, connections */
    bl_t bl[DOC_LIST_MAX];
    ref_t ref[DOC_LIST_MAX];
    conn_t *conns[2 * DOC_LIST_MAX + 1];
    size_t nconns;
    conn_t *ehlo;
};

/** "connected", "refused", "timeout", ... */
const char *doc_conn_res_name(conn_res_t r);

/** Private, loopback, CGNAT, link-local (IPv4); ULA, link-local, ::1 (IPv6). */
bool doc_addr_is_private(const char *ip);

/** The same address, whatever the spelling. */
bool doc_addr_same(const char *a, const char *b);

/** The client address the server of an EHLO connection echoed (EHLO reply when
 *  accepted, else the banner); false and "" when none. */
bool doc_conn_echo(const conn_t *e, char *out, size_t size);

/** Format into a DOC_TEXT_MAX line. */
__attribute__((format(printf, 2, 3))) void doc_text_put(char *dst, const char *fmt, ...);

/** Append a detail line to a check (beyond DOC_DETAILS_MAX: dropped). */
__attribute__((format(printf, 2, 3))) void doc_detail_add(doc_check_t *c, const char *fmt, ...);

/** Every check's level, message, fix and details from the run's findings (report.c). */
void doc_report_build(doc_run_t *r);

#endif
