/*
 * fuzz_net_socks5.c - libFuzzer target for the SOCKS5 client handshake (src/net/socks5.c).
 *
 * Input: one flag byte (bit 0: with user/password, bit 1: IPv6 destination), then the
 * proxy's bytes, delivered in chunks whose sizes come from the input itself, kept in a
 * buffer the way smtp/session.c keeps its input. Invariants (abort() on violation):
 *  - a step consumes at most what it was given, and DONE/FAIL/WRITE say so consistently
 *    (WRITE has 1.. bytes to send, MORE and FAIL none);
 *  - the same bytes fed whole give the same end as fed in chunks;
 *  - FAIL always has a reason; after DONE or FAIL every read fails.
 * Replayed over tests/fuzz/corpus/net_socks5/ in every build (replay.c).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void start(socks5_t *s, uint8_t flags)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (flags & 2) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(25);
        in6->sin6_addr.s6_addr[15] = 1;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(25);
        in->sin_addr.s_addr = htonl(0xc0000219);
    }
    if (socks5_init(s, (struct sockaddr *)&ss, (flags & 1) ? "user" : NULL,
                    (flags & 1) ? "pass" : NULL) != MP_OK)
        abort();
}

/* Feed [p, p+n) as one stream in chunks; returns the final step and bytes consumed. */
static socks5_step_t run(uint8_t flags, const uint8_t *p, size_t n, int chunked,
                         size_t *consumed)
{
    socks5_t s;
    unsigned char buf[1024];
    size_t have = 0, off = 0, total = 0;
    socks5_step_t st = SOCKS5_MORE;
    start(&s, flags);
    while (off < n || have) {
        size_t take = n - off;
        if (chunked && take && take > (size_t)(p[off] % 7) + 1)
            take = (size_t)(p[off] % 7) + 1;
        if (take > sizeof buf - have)
            take = sizeof buf - have;
        memcpy(buf + have, p + off, take);
        have += take;
        off += take;
        size_t used = 0;
        st = socks5_read(&s, buf, have, &used);
        size_t outlen;
        socks5_out(&s, &outlen);
        if (used > have)
            abort();
        if ((st == SOCKS5_WRITE) != (outlen > 0))
            abort();
        if (st == SOCKS5_FAIL && socks5_why(&s)[0] == '\0')
            abort();
        memmove(buf, buf + used, have - used);
        have -= used;
        total += used;
        if (st == SOCKS5_DONE || st == SOCKS5_FAIL) {
            if (socks5_read(&s, buf, have, &used) != SOCKS5_FAIL || used)
                abort();
            break;
        }
        if (st == SOCKS5_MORE && take == 0)
            break;
    }
    *consumed = total;
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    size_t c1, c2;
    socks5_step_t a = run(data[0], data + 1, size - 1, 0, &c1);
    socks5_step_t b = run(data[0], data + 1, size - 1, 1, &c2);
    if (a != b || ((a == SOCKS5_DONE) && c1 != c2))
        abort();
    return 0;
}
