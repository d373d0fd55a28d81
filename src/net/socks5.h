/*
 * socks5.h - the client side of a SOCKS5 handshake (RFC 1928) with username/password
 * authentication (RFC 1929), as a pure state machine over bytes.
 *
 * Does: build the bytes to send (method offer, credentials, CONNECT request for an IPv4
 * or IPv6 address) and read the proxy's answers, byte by byte if need be, naming every
 * refusal (each RFC 1928 §6 REP code, "no acceptable method", "authentication failed").
 * Does not: own a socket, read a clock or allocate: the caller (smtp/session.c) moves the
 * bytes and keeps the deadline. Bytes that follow the proxy's last reply (the SMTP banner
 * may come in the same segment) are not consumed: they belong to the tunnel.
 *
 * Use: socks5_init(); write socks5_out(); then for every chunk read, socks5_read(): on
 * SOCKS5_WRITE write socks5_out() and read on; on SOCKS5_MORE read on; on SOCKS5_DONE the
 * tunnel is open; on SOCKS5_FAIL socks5_why() says why. Everything lives in the struct.
 */
#ifndef MP_NET_SOCKS5_H
#define MP_NET_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "mailprobe.h"

#define SOCKS5_CRED_MAX 255 /* RFC 1929 §2: ULEN and PLEN are one byte each */

typedef enum {
    SOCKS5_MORE,  /* need more bytes from the proxy */
    SOCKS5_WRITE, /* socks5_out() holds bytes to send, then read on */
    SOCKS5_DONE,  /* the proxy connected us: what follows is the tunnel */
    SOCKS5_FAIL   /* the handshake failed: socks5_why(), socks5_fault() */
} socks5_step_t;

/** Why a handshake failed. */
typedef enum {
    SOCKS5_E_NONE = 0,
    SOCKS5_E_VERSION,   /* the answer is not SOCKS version 5: not a SOCKS5 proxy */
    SOCKS5_E_NO_METHOD, /* 0xFF: none of the methods we offered is acceptable */
    SOCKS5_E_METHOD,    /* the proxy chose a method we did not offer */
    SOCKS5_E_AUTH,      /* RFC 1929 status not 0: user name or password refused */
    SOCKS5_E_REP,       /* the CONNECT was refused: socks5_rep() holds the REP code */
    SOCKS5_E_ATYP,      /* the reply's address type is unknown */
    SOCKS5_E_STATE      /* bytes after the handshake ended, or after a failure */
} socks5_err_t;

typedef enum { SOCKS5_ST_METHOD, SOCKS5_ST_AUTH, SOCKS5_ST_REPLY, SOCKS5_ST_DONE,
               SOCKS5_ST_FAILED } socks5_state_t;

typedef struct {
    socks5_state_t state;
    socks5_err_t err;
    unsigned char rep;         /* REP of the CONNECT reply */
    bool auth;                 /* credentials given: offer method 0x02 */
    unsigned char user[SOCKS5_CRED_MAX], pass[SOCKS5_CRED_MAX];
    size_t ulen, plen;
    unsigned char req[22];     /* the CONNECT request: 10 (IPv4) or 22 (IPv6) bytes */
    size_t reqlen;
    unsigned char out[3 + 2 * SOCKS5_CRED_MAX];
    size_t outlen;
    char why[128];
} socks5_t;

/**
 * Prepare a handshake that asks the proxy to connect to dst (AF_INET or AF_INET6, with
 * its port); socks5_out() then holds the method offer.
 * @param user,pass NULL for no authentication; else 1..255 bytes each (RFC 1929)
 * @return MP_OK, or MP_ERR_ARG (bad address family, credentials too long or empty)
 */
mp_status_t socks5_init(socks5_t *s, const struct sockaddr *dst, const char *user,
                        const char *pass);

/**
 * Read what the proxy sent.
 * @param in,len the bytes received and not consumed yet
 * @param used   set to the bytes consumed (never past the proxy's last reply)
 * @return the next step (see the file comment)
 */
socks5_step_t socks5_read(socks5_t *s, const unsigned char *in, size_t len, size_t *used);

/** The bytes to send now (valid until the next call) and their length. */
const unsigned char *socks5_out(const socks5_t *s, size_t *len);

/** Why the handshake failed, one line ("" while it has not). */
const char *socks5_why(const socks5_t *s);

/** True when the failure is the proxy's own (unreachable rules, authentication, not a
 *  SOCKS5 server, general failure), false when the proxy reported the destination's
 *  (network or host unreachable, connection refused, TTL expired: REP 3-6). */
bool socks5_fault_is_proxy(const socks5_t *s);

/** Name of a REP code (RFC 1928 §6), e.g. "connection not allowed by ruleset". */
const char *socks5_rep_name(unsigned rep);

#endif
