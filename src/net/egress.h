/*
 * egress.h - the ways out of this machine for an SMTP session: a local source address
 * (bind before connect) or a SOCKS5 proxy, each with the HELO name that belongs to it,
 * and the pool that picks one per domain.
 *
 * Does: parse `--source ADDR[=HELO]` and `--proxy socks5://[USER:PASS@]HOST:PORT[=HELO]`,
 * check that a source address can be bound here, open a socket bound to it, pick an
 * egress per domain (rendezvous hashing: the same domain always receives the same egress,
 * in every process, so greylisting retries come from the address that started them;
 * family AF_UNSPEC: any egress)
 * and rest an egress that failed (a penalty window, doubling per consecutive failure).
 * Does not: connect, speak SOCKS (socks5.h, driven by smtp/session.c) or read the clock
 * (callers pass the time). A proxy's host name is resolved once, when it is parsed.
 */
#ifndef MP_NET_EGRESS_H
#define MP_NET_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mailprobe.h"

#define NET_EGRESS_MAX 64          /* egresses in one pool */
#define NET_REST_FIRST_MS 30000    /* first rest of a failed proxy */
#define NET_REST_MAX_MS 600000     /* longest rest (doubling per consecutive failure) */

typedef enum { NET_EGRESS_SOURCE = 1, NET_EGRESS_SOCKS5 } net_egress_kind_t;

typedef struct {
    net_egress_kind_t kind;
    struct sockaddr_storage addr;  /* SOURCE: local address (port 0); SOCKS5: the proxy */
    socklen_t addrlen;
    char user[256], pass[256];     /* SOCKS5 credentials; user "" = none */
    char helo[256];                /* HELO name through this egress; "" = the default */
    char name[320];                /* for messages and logs; never holds the password */
} net_egress_t;

/**
 * Parse a source address `ADDR[=HELO-NAME]` (IPv4, IPv6, or [IPv6]).
 * @return MP_OK, or MP_ERR_ARG with a one-line reason in err
 */
mp_status_t net_egress_parse_source(const char *spec, net_egress_t *out, char *err,
                                    size_t errsize);

/**
 * Parse `socks5://[USER:PASS@]HOST:PORT[=HELO-NAME]` (USER and PASS may be
 * %-encoded; HOST an address, [IPv6] or a name, resolved here with getaddrinfo).
 * @return MP_OK, or MP_ERR_ARG with a one-line reason in err
 */
mp_status_t net_egress_parse_proxy(const char *spec, net_egress_t *out, char *err,
                                   size_t errsize);

/** Can this source address be bound on this machine? (SOCKS5: always MP_OK.)
 *  @return MP_OK, or MP_ERR_ARG with a one-line reason in err */
mp_status_t net_egress_check(const net_egress_t *eg, char *err, size_t errsize);

/**
 * A non-blocking TCP socket for a connection of `family` through eg: bound to the
 * source address without a port (IP_BIND_ADDRESS_NO_PORT: the port is chosen at
 * connect, so thousands of sessions do not exhaust ephemeral ports per source); for a
 * SOCKS5 egress, a plain socket of the proxy's family.
 * @return the socket, or -1 with the reason in err
 */
int net_egress_socket(const net_egress_t *eg, int family, char *err, size_t errsize);

/** A set of egresses with their rest state (embedded, no allocation). */
typedef struct {
    const net_egress_t *eg[NET_EGRESS_MAX];
    uint64_t rest_until_ms[NET_EGRESS_MAX];
    unsigned strikes[NET_EGRESS_MAX];
    size_t n;
} net_pool_t;

/** Fill a pool from n egresses (borrowed; at most NET_EGRESS_MAX). */
void net_pool_init(net_pool_t *p, const net_egress_t *eg, size_t n);

/**
 * The egress for `key` (the domain) toward an address of `family`: the highest
 * rendezvous hash of (key, egress name) among those usable for that family and not
 * resting; when all such are resting, the highest among them.
 * @return the index, or -1 when no egress can reach that family (or the pool is empty)
 */
int net_pool_pick(const net_pool_t *p, const char *key, int family, uint64_t now_ms);

/** An egress failed (a proxy refused, failed authentication, timed out or was down):
 *  rest it. @return the rest in ms */
uint64_t net_pool_rest(net_pool_t *p, int i, uint64_t now_ms);

/** An egress worked: its next failure rests it for the shortest time again. */
void net_pool_ok(net_pool_t *p, int i);

#endif
