/*
 * msg.h - private to src/dns: a bounded walker over a raw DNS response (RFC 1035 §4).
 *
 * c-ares 1.18's MX and TXT parse helpers do not return TTLs, and none of them tell
 * "CNAME only" from NODATA, so the resolver reads those facts here: rcode, the
 * minimum TTL of the answer section, the negative-caching TTL from an SOA in the
 * authority section (RFC 2308 §5), and where the question name's CNAME chain inside
 * the answer ends. It does not extract record data (the c-ares helpers do that).
 *
 * Every read is bounds-checked against the buffer length; names are decoded with
 * ares_expand_name(), which rejects out-of-range and looping compression pointers.
 * A malformed packet yields false, never a read past the end. Pure: no I/O, no state.
 */
#ifndef MP_DNS_MSG_H
#define MP_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 256  /* presentation name incl. NUL (RFC 1035 §2.3.4: 255 octets) */

/** DNS RR types used by the resolver (RFC 1035 §3.2.2, RFC 3596). */
enum { DNS_T_A = 1, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12, DNS_T_MX = 15,
       DNS_T_TXT = 16, DNS_T_AAAA = 28 };

/** DNS response codes (RFC 1035 §4.1.1). */
enum { DNS_RC_NOERROR = 0, DNS_RC_FORMERR = 1, DNS_RC_SERVFAIL = 2, DNS_RC_NXDOMAIN = 3,
       DNS_RC_NOTIMP = 4, DNS_RC_REFUSED = 5 };

/** What dns_msg_scan() learnt from one response. */
typedef struct {
    unsigned id;            /* header ID */
    unsigned rcode;         /* header RCODE (4 bits) */
    bool tc;                /* truncated */
    unsigned qtype;         /* type of the (first) question */
    unsigned ancount, nscount;
    char qname[DNS_NAME_MAX]; /* question name, lower-case, no trailing dot ("" = root) */
    char final[DNS_NAME_MAX]; /* qname after following CNAMEs in the answer section */
    unsigned cnames;        /* CNAME links followed (final != qname when > 0) */
    unsigned nfinal;        /* answer RRs of qtype owned by final */
    bool have_ttl;          /* min_ttl is meaningful (answer had at least one RR) */
    uint32_t min_ttl;       /* minimum TTL over all answer RRs, seconds */
    bool have_soa;          /* an SOA was found in the authority section */
    uint32_t soa_ttl;       /* min(SOA TTL, SOA MINIMUM) of the first such SOA */
} dns_msg_info_t;

/**
 * Walk a DNS response of len bytes: header, one question, answer and authority
 * sections (the additional section is not read). The CNAME chain is followed in
 * the order the records appear, as resolvers emit it (and as c-ares' helpers do).
 * TTLs with the top bit set count as 0 (RFC 2181 §8).
 * Returns true and fills *out, or false when the packet is malformed or truncated.
 */
bool dns_msg_scan(const unsigned char *buf, size_t len, dns_msg_info_t *out);

/** Lower-case an ASCII name in place and drop one trailing dot ("." becomes ""). */
void dns_name_norm(char *name);

#endif
