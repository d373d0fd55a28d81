/*
 * egress.c - source addresses, SOCKS5 proxy specs and the per-domain pool; see egress.h.
 */
#include "net/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/hash.h"
#include "util/str.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 /* Linux 4.2 */
#endif

/* A HELO name: printable, no space, no @, 1..255 bytes (RFC 5321 §4.1.1.1 wants a domain or
 * an address literal; we only refuse what could break the command line). */
static bool helo_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == '@')
            return false;
    }
    return true;
}

/* A spec as quoted in a message: control bytes as '?', and for a proxy never the
 * password ("socks5://USER@HOST:PORT" for "socks5://USER:PASS@HOST:PORT"). */
static const char *shown(const char *spec, char *buf, size_t size)
{
    char tmp[1100];
    /* the last '@' of all: whatever the spec's mistakes, nothing before it but the user
     * name is shown */
    const char *start = strstr(spec, "://"), *at = strrchr(spec, '@');
    if (start && at && start < at) {
        start += 3;
        const char *colon = memchr(start, ':', (size_t)(at - start));
        size_t pos = 0;
        tmp[0] = '\0';
        mp_appendf(tmp, sizeof tmp, &pos, "%.*s%s", (int)((colon ? colon : at) - spec), spec,
                   at);
        spec = tmp;
    }
    return mp_str_printable(spec, buf, size);
}

/* Split "...=HELO": copies the part before '=' into buf, the HELO into out->helo. */
static bool split_helo(const char *spec, const char *from, char *buf, size_t size,
                       net_egress_t *out, const char *quote, char *err, size_t errsize)
{
    const char *eq = strchr(from, '=');
    size_t n = eq ? (size_t)(eq - spec) : strlen(spec);
    if (n >= size) {
        snprintf(err, errsize, "'%.60s...' is too long", quote);
        return false;
    }
    memcpy(buf, spec, n);
    buf[n] = '\0';
    if (eq) {
        if (!helo_ok(eq + 1)) {
            snprintf(err, errsize, "'%s': the HELO name after '=' must be 1-255 printable "
                     "characters without spaces or '@'", quote);
            return false;
        }
        mp_strlcpy(out->helo, eq + 1, sizeof out->helo);
    }
    return true;
}

/* An address literal: "192.0.2.1", "2001:db8::1" or "[2001:db8::1]", port 0. */
static bool parse_ip(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        if (n - 2 >= sizeof buf)
            return false;
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
    } else {
        if (n >= sizeof buf)
            return false;
        memcpy(buf, s, n + 1);
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (!strchr(buf, ':') && inet_pton(AF_INET, buf, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        *len = sizeof *in;
        return true;
    }
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return true;
    }
    return false;
}

mp_status_t net_egress_parse_source(const char *spec, net_egress_t *out, char *err,
                                    size_t errsize)
{
    char addr[128], q[300];
    memset(out, 0, sizeof *out);
    out->kind = NET_EGRESS_SOURCE;
    if (!split_helo(spec, spec, addr, sizeof addr, out, mp_str_printable(spec, q, sizeof q), err,
                    errsize))
        return MP_ERR_ARG;
    if (!parse_ip(addr, 0, &out->addr, &out->addrlen)) {
        snprintf(err, errsize, "'%s' is not an IPv4 or IPv6 address",
                 mp_str_printable(addr, q, sizeof q));
        return MP_ERR_ARG;
    }
    mp_strlcpy(out->name, addr, sizeof out->name);
    return MP_OK;
}

/* %-decoded credentials: 1..255 bytes (RFC 1929 §2). */
static bool cred_decode(const char *s, size_t n, char *dst, size_t size)
{
    return mp_pct_decode(s, n, dst, size) == 0 && dst[0] && strlen(dst) <= 255;
}

mp_status_t net_egress_parse_proxy(const char *spec, net_egress_t *out, char *err,
                                   size_t errsize)
{
    static const char scheme[] = "socks5://";
    char url[1024], q[300];
    memset(out, 0, sizeof *out);
    out->kind = NET_EGRESS_SOCKS5;
    if (strncmp(spec, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, errsize, "'%s': a proxy is socks5://[USER:PASS@]HOST:PORT[=HELO-NAME]",
                 shown(spec, q, sizeof q));
        return MP_ERR_ARG;
    }
    const char *rest = spec + sizeof scheme - 1;
    /* the credentials end at the last '@' (a HELO name has none), and the HELO name is
     * after the host, so look for '=' only after them: a password may hold '=' */
    const char *at = strrchr(rest, '@');
    if (!split_helo(rest, at ? at : rest, url, sizeof url, out, shown(spec, q, sizeof q), err,
                    errsize))
        return MP_ERR_ARG;
    char *hostport = url;
    char *uat = strrchr(url, '@');
    if (uat) {
        char *colon = memchr(url, ':', (size_t)(uat - url));
        if (!colon || !cred_decode(url, (size_t)(colon - url), out->user, sizeof out->user) ||
            !cred_decode(colon + 1, (size_t)(uat - colon - 1), out->pass, sizeof out->pass)) {
            snprintf(err, errsize, "'%s': credentials are USER:PASS, each 1-255 bytes "
                     "(%%-encode ':', '@', '=')", shown(spec, q, sizeof q));
            return MP_ERR_ARG;
        }
        hostport = uat + 1;
    }
    char *pcolon = strrchr(hostport, ':');
    uint64_t port;
    if (!pcolon || pcolon == hostport || !mp_parse_uint(pcolon + 1, 1, 65535, &port) ||
        (strchr(hostport, ':') != pcolon && hostport[0] != '[')) {
        snprintf(err, errsize, "'%s': needs HOST:PORT (an IPv6 address in brackets)",
                 shown(spec, q, sizeof q));
        return MP_ERR_ARG;
    }
    *pcolon = '\0';
    if (!parse_ip(hostport, (uint16_t)port, &out->addr, &out->addrlen)) {
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(hostport, NULL, &hints, &ai);
        if (rc != 0 || !ai || ai->ai_addrlen > sizeof out->addr) {
            char h[300];
            snprintf(err, errsize, "'%s': cannot resolve '%s': %s", shown(spec, q, sizeof q),
                     mp_str_printable(hostport, h, sizeof h), rc ? gai_strerror(rc) : "no address");
            if (ai)
                freeaddrinfo(ai);
            return MP_ERR_ARG;
        }
        memcpy(&out->addr, ai->ai_addr, ai->ai_addrlen);
        out->addrlen = (socklen_t)ai->ai_addrlen;
        if (out->addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&out->addr)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&out->addr)->sin6_port = htons((uint16_t)port);
        freeaddrinfo(ai);
    }
    snprintf(out->name, sizeof out->name, "socks5://%s%s%s:%u", out->user,
             out->user[0] ? "@" : "", hostport, (unsigned)port);
    return MP_OK;
}

int net_egress_socket(const net_egress_t *eg, int family, char *err, size_t errsize)
{
    int fam = eg->kind == NET_EGRESS_SOCKS5 ? eg->addr.ss_family : family;
    if (eg->kind == NET_EGRESS_SOURCE && eg->addr.ss_family != family) {
        snprintf(err, errsize, "source address %s cannot reach an IPv%c address", eg->name,
                 family == AF_INET6 ? '6' : '4');
        return -1;
    }
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsize, "socket: %s", strerror(errno));
        return -1;
    }
    if (eg->kind == NET_EGRESS_SOURCE) {
        int one = 1;
        /* not fatal: without it, bind() just reserves the port early */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)&eg->addr, eg->addrlen) != 0) {
            int e = errno;
            snprintf(err, errsize, "cannot send from %s: %s", eg->name,
                     e == EADDRNOTAVAIL ? "not an address of this machine" : strerror(e));
            close(fd);
            return -1;
        }
    }
    return fd;
}

mp_status_t net_egress_check(const net_egress_t *eg, char *err, size_t errsize)
{
    if (eg->kind != NET_EGRESS_SOURCE)
        return MP_OK;
    int fd = net_egress_socket(eg, eg->addr.ss_family, err, errsize);
    if (fd < 0)
        return MP_ERR_ARG;
    close(fd);
    return MP_OK;
}

/* ---- the pool --------------------------------------------------------------------- */

void net_pool_init(net_pool_t *p, const net_egress_t *eg, size_t n)
{
    memset(p, 0, sizeof *p);
    if (n > NET_EGRESS_MAX)
        n = NET_EGRESS_MAX;
    for (size_t i = 0; i < n; i++)
        p->eg[i] = &eg[i];
    p->n = n;
}

/* FNV-1a 64 of key, a separator, then name; a final mix spreads near keys. */
static uint64_t rendezvous(const char *key, const char *name)
{
    static const unsigned char sep = 0xff;
    uint64_t h = mp_fnv1a_str(mp_fnv1a(mp_fnv1a_str(MP_FNV_BASIS, key), &sep, 1), name);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

int net_pool_pick(const net_pool_t *p, const char *key, int family, uint64_t now_ms)
{
    int best = -1, best_rested = -1;
    uint64_t bh = 0, bhr = 0;
    for (size_t i = 0; i < p->n; i++) {
        const net_egress_t *eg = p->eg[i];
        if (family != AF_UNSPEC && eg->kind == NET_EGRESS_SOURCE &&
            eg->addr.ss_family != family)
            continue;
        uint64_t h = rendezvous(key, eg->name);
        if (p->rest_until_ms[i] > now_ms) {
            if (best_rested < 0 || h > bhr) {
                best_rested = (int)i;
                bhr = h;
            }
        } else if (best < 0 || h > bh) {
            best = (int)i;
            bh = h;
        }
    }
    return best >= 0 ? best : best_rested;
}

uint64_t net_pool_rest(net_pool_t *p, int i, uint64_t now_ms)
{
    if (i < 0 || (size_t)i >= p->n)
        return 0;
    uint64_t ms = NET_REST_FIRST_MS;
    for (unsigned k = 0; k < p->strikes[i] && ms < NET_REST_MAX_MS; k++)
        ms *= 2;
    if (ms > NET_REST_MAX_MS)
        ms = NET_REST_MAX_MS;
    p->strikes[i]++;
    p->rest_until_ms[i] = now_ms + ms;
    return ms;
}

void net_pool_ok(net_pool_t *p, int i)
{
    if (i >= 0 && (size_t)i < p->n) {
        p->strikes[i] = 0;
        p->rest_until_ms[i] = 0;
    }
}
