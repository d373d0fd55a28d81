/*
 * socks5.c - SOCKS5 client handshake (RFC 1928, RFC 1929) over bytes; see socks5.h.
 *
 *   init: out = VER 5, NMETHODS, METHODS (0x00; 0x00 0x02 with credentials)   §3
 *   METHOD --05 00--> REPLY (out = CONNECT request)                           §4
 *          --05 02, credentials given--> AUTH (out = 01 ULEN UNAME PLEN PASSWD) RFC 1929 §2
 *          --05 FF--> FAILED (no acceptable method)  --other--> FAILED
 *   AUTH   --xx 00--> REPLY (out = CONNECT request)  --xx other--> FAILED    RFC 1929 §2
 *   REPLY  --05 00 00 ATYP BND.ADDR BND.PORT--> DONE                         §6
 *          --05 REP (REP != 0)--> FAILED, decided on the first two bytes: a proxy may
 *            close right after a refusal without the rest
 * Pure: no I/O, no clock, no allocation.
 */
#include "net/socks5.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/str.h"

#define VER 0x05
#define M_NONE 0x00
#define M_USERPASS 0x02
#define M_REFUSED 0xFF

static const char *const rep_names[] = {
    [0] = "succeeded",
    [1] = "general SOCKS server failure",
    [2] = "connection not allowed by ruleset",
    [3] = "network unreachable",
    [4] = "host unreachable",
    [5] = "connection refused",
    [6] = "TTL expired",
    [7] = "command not supported",
    [8] = "address type not supported",
};

const char *socks5_rep_name(unsigned rep)
{
    if (rep < sizeof rep_names / sizeof rep_names[0])
        return rep_names[rep];
    return "unassigned reply code";
}

static socks5_step_t fail(socks5_t *s, socks5_err_t e, const char *why)
{
    s->state = SOCKS5_ST_FAILED;
    s->err = e;
    s->outlen = 0;
    if (e == SOCKS5_E_REP)
        snprintf(s->why, sizeof s->why, "the proxy refused the connection: %s (REP %u)",
                 socks5_rep_name(s->rep), (unsigned)s->rep);
    else
        mp_strlcpy(s->why, why, sizeof s->why);
    return SOCKS5_FAIL;
}

mp_status_t socks5_init(socks5_t *s, const struct sockaddr *dst, const char *user,
                        const char *pass)
{
    memset(s, 0, sizeof *s);
    if (!dst || (!user) != (!pass))
        return MP_ERR_ARG;
    if (user) {
        s->ulen = strlen(user);
        s->plen = strlen(pass);
        if (!s->ulen || s->ulen > SOCKS5_CRED_MAX || !s->plen || s->plen > SOCKS5_CRED_MAX)
            return MP_ERR_ARG;
        memcpy(s->user, user, s->ulen);
        memcpy(s->pass, pass, s->plen);
        s->auth = true;
    }
    /* §4: VER CMD=CONNECT RSV ATYP DST.ADDR DST.PORT, in network order */
    s->req[0] = VER;
    s->req[1] = 0x01;
    s->req[2] = 0x00;
    if (dst->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)dst;
        s->req[3] = 0x01;
        memcpy(s->req + 4, &in->sin_addr, 4);
        memcpy(s->req + 8, &in->sin_port, 2);
        s->reqlen = 10;
    } else if (dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)dst;
        s->req[3] = 0x04;
        memcpy(s->req + 4, &in6->sin6_addr, 16);
        memcpy(s->req + 20, &in6->sin6_port, 2);
        s->reqlen = 22;
    } else {
        return MP_ERR_ARG;
    }
    /* §3: offer "no authentication", and user/password when we have credentials */
    s->out[0] = VER;
    s->out[1] = s->auth ? 2 : 1;
    s->out[2] = M_NONE;
    s->out[3] = M_USERPASS;
    s->outlen = s->auth ? 4 : 3;
    s->state = SOCKS5_ST_METHOD;
    return MP_OK;
}

static void out_request(socks5_t *s)
{
    memcpy(s->out, s->req, s->reqlen);
    s->outlen = s->reqlen;
}

static void out_credentials(socks5_t *s)
{
    size_t n = 0;
    s->out[n++] = 0x01; /* RFC 1929 §2: sub-negotiation version 1 */
    s->out[n++] = (unsigned char)s->ulen;
    memcpy(s->out + n, s->user, s->ulen);
    n += s->ulen;
    s->out[n++] = (unsigned char)s->plen;
    memcpy(s->out + n, s->pass, s->plen);
    n += s->plen;
    s->outlen = n;
}

socks5_step_t socks5_read(socks5_t *s, const unsigned char *in, size_t len, size_t *used)
{
    *used = 0;
    s->outlen = 0;
    switch (s->state) {
    case SOCKS5_ST_METHOD:
        if (len >= 1 && in[0] != VER)
            return fail(s, SOCKS5_E_VERSION, "not a SOCKS5 proxy (wrong version in its answer)");
        if (len < 2)
            return SOCKS5_MORE;
        *used = 2;
        if (in[1] == M_NONE) {
            s->state = SOCKS5_ST_REPLY;
            out_request(s);
            return SOCKS5_WRITE;
        }
        if (in[1] == M_USERPASS && s->auth) {
            s->state = SOCKS5_ST_AUTH;
            out_credentials(s);
            return SOCKS5_WRITE;
        }
        if (in[1] == M_REFUSED)
            return fail(s, SOCKS5_E_NO_METHOD,
                        s->auth ? "the proxy accepts none of our methods (none, user/password)"
                                : "the proxy requires authentication (give USER:PASS)");
        return fail(s, SOCKS5_E_METHOD, "the proxy chose a method we did not offer");
    case SOCKS5_ST_AUTH:
        /* RFC 1929 says VER 0x01; some servers answer 0x05: only the status matters */
        if (len < 2)
            return SOCKS5_MORE;
        *used = 2;
        if (in[1] != 0x00)
            return fail(s, SOCKS5_E_AUTH, "the proxy refused the user name or password");
        s->state = SOCKS5_ST_REPLY;
        out_request(s);
        return SOCKS5_WRITE;
    case SOCKS5_ST_REPLY: {
        if (len >= 1 && in[0] != VER)
            return fail(s, SOCKS5_E_VERSION, "not a SOCKS5 proxy (wrong version in its reply)");
        if (len < 2)
            return SOCKS5_MORE;
        if (in[1] != 0x00) {
            s->rep = in[1];
            *used = len < 10 ? len : 10; /* nothing after a refusal is ours to keep */
            return fail(s, SOCKS5_E_REP, NULL);
        }
        if (len < 5)
            return SOCKS5_MORE;
        size_t need;
        switch (in[3]) {
        case 0x01: need = 4 + 4 + 2; break;
        case 0x04: need = 4 + 16 + 2; break;
        case 0x03: need = 4 + 1 + (size_t)in[4] + 2; break;
        default: return fail(s, SOCKS5_E_ATYP, "the proxy's reply has an unknown address type");
        }
        if (len < need)
            return SOCKS5_MORE;
        *used = need;
        s->state = SOCKS5_ST_DONE;
        return SOCKS5_DONE;
    }
    case SOCKS5_ST_DONE:
    case SOCKS5_ST_FAILED:
        break;
    }
    if (s->state == SOCKS5_ST_FAILED)
        return SOCKS5_FAIL;
    return fail(s, SOCKS5_E_STATE, "socks5_read after the handshake ended");
}

const unsigned char *socks5_out(const socks5_t *s, size_t *len)
{
    *len = s->outlen;
    return s->out;
}

const char *socks5_why(const socks5_t *s)
{
    return s->why;
}

bool socks5_fault_is_proxy(const socks5_t *s)
{
    if (s->err != SOCKS5_E_REP)
        return s->err != SOCKS5_E_NONE;
    return !(s->rep >= 3 && s->rep <= 6);
}
