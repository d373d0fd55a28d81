/*
 * fuzz_fleet_url.c - libFuzzer target for the option values that name ways out and the
 * fleet's Redis: fleet_url_parse() (src/fleet/fleet.c) and net_egress_parse_source()
 * (src/net/egress.c), which read what users type. (The proxy parser is left out: it
 * resolves host names, and fuzzing makes no DNS queries.)
 * Invariants (abort() on violation): a parse either succeeds with sane fields or fails
 * with a one-line reason; a password never appears in a reason.
 * Replayed over tests/fuzz/corpus/fleet_url/ in every build (replay.c).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"
#include "net/egress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[512], err[512];
    if (size >= sizeof in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';

    fleet_url_t u;
    err[0] = '\0';
    if (fleet_url_parse(in, &u, err, sizeof err) == MP_OK) {
        if (!u.host[0] || u.port < 1 || u.port > 65535 || u.db > 15)
            abort();
    } else {
        if (!err[0] || strchr(err, '\n'))
            abort();
        /* a URL with credentials is not echoed (short inputs match the usage text) */
        if (strchr(in, '@') && strlen(in) >= 12 && strstr(err, in))
            abort();
    }

    net_egress_t eg;
    err[0] = '\0';
    if (net_egress_parse_source(in, &eg, err, sizeof err) == MP_OK) {
        if (eg.kind != NET_EGRESS_SOURCE || !eg.name[0] ||
            (eg.addr.ss_family != AF_INET && eg.addr.ss_family != AF_INET6))
            abort();
        for (const char *p = eg.helo; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                abort();
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
