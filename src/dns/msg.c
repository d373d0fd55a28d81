/*
 * msg.c - bounded walker over a raw DNS response; see msg.h.
 *
 * Does: header, question, answer and authority sections; TTLs, SOA minimum, the
 * question's CNAME chain. Does not: decode record data other than CNAME targets and
 * SOA fields, read the additional section, allocate anything the caller must free.
 */
#include "dns/msg.h"

#include <string.h>

#include <ares.h>

#include "util/str.h"

#define HDR_LEN 12u

static unsigned get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | (unsigned)p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

/* RFC 2181 §8: a TTL with the most significant bit set is treated as zero. */
static uint32_t ttl_value(uint32_t raw)
{
    return (raw & 0x80000000u) ? 0 : raw;
}

void dns_name_norm(char *name)
{
    mp_str_lower(name);
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        name[n - 1] = '\0';
}

/*
 * Decode the name at buf[*off] into out (may be NULL to skip it) and advance *off
 * past its encoding. False when malformed or longer than DNS_NAME_MAX - 1.
 */
static bool read_name(const unsigned char *buf, size_t len, size_t *off, char *out)
{
    if (*off >= len)
        return false;
    char *name = NULL;
    long enclen = 0;
    if (ares_expand_name(buf + *off, buf, (int)len, &name, &enclen) != ARES_SUCCESS)
        return false;
    bool ok = enclen > 0 && (size_t)enclen <= len - *off;
    if (ok && out) {
        ok = mp_strlcpy(out, name, DNS_NAME_MAX) < DNS_NAME_MAX;
        if (ok)
            dns_name_norm(out);
    }
    ares_free_string(name);
    if (ok)
        *off += (size_t)enclen;
    return ok;
}

/* Fixed part of an RR after its owner name (RFC 1035 §4.1.3). */
typedef struct {
    unsigned type, klass;
    uint32_t ttl;
    size_t rdoff, rdlen;
} rr_t;

static bool read_rr(const unsigned char *buf, size_t len, size_t *off, char *owner, rr_t *rr)
{
    if (!read_name(buf, len, off, owner))
        return false;
    if (len - *off < 10)
        return false;
    const unsigned char *p = buf + *off;
    rr->type = get16(p);
    rr->klass = get16(p + 2);
    rr->ttl = ttl_value(get32(p + 4));
    rr->rdlen = get16(p + 8);
    rr->rdoff = *off + 10;
    if (rr->rdlen > len - rr->rdoff)
        return false;
    *off = rr->rdoff + rr->rdlen;
    return true;
}

/* SOA RDATA: MNAME, RNAME, then five 32-bit fields; MINIMUM is the last. */
static bool read_soa_minimum(const unsigned char *buf, size_t len, const rr_t *rr,
                             uint32_t *minimum)
{
    size_t end = rr->rdoff + rr->rdlen;
    size_t off = rr->rdoff;
    if (!read_name(buf, len, &off, NULL) || off > end)
        return false;
    if (!read_name(buf, len, &off, NULL) || off > end)
        return false;
    if (end - off < 20)
        return false;
    *minimum = ttl_value(get32(buf + off + 16));
    return true;
}

bool dns_msg_scan(const unsigned char *buf, size_t len, dns_msg_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (!buf || len < HDR_LEN || len > 65535)
        return false;
    out->id = get16(buf);
    out->tc = (buf[2] & 0x02) != 0;
    out->rcode = buf[3] & 0x0f;
    unsigned qdcount = get16(buf + 4);
    out->ancount = get16(buf + 6);
    out->nscount = get16(buf + 8);
    if (qdcount != 1)
        return false;

    size_t off = HDR_LEN;
    if (!read_name(buf, len, &off, out->qname) || len - off < 4)
        return false;
    out->qtype = get16(buf + off);
    off += 4;
    memcpy(out->final, out->qname, sizeof out->final);

    char owner[DNS_NAME_MAX];
    for (unsigned i = 0; i < out->ancount; i++) {
        rr_t rr;
        if (!read_rr(buf, len, &off, owner, &rr))
            return false;
        if (!out->have_ttl || rr.ttl < out->min_ttl)
            out->min_ttl = rr.ttl;
        out->have_ttl = true;
        if (strcmp(owner, out->final) != 0)
            continue;
        if (rr.type == DNS_T_CNAME && out->qtype != DNS_T_CNAME) {
            size_t t = rr.rdoff;
            char target[DNS_NAME_MAX];
            if (!read_name(buf, len, &t, target) || t > rr.rdoff + rr.rdlen)
                return false;
            memcpy(out->final, target, sizeof out->final);
            out->cnames++;
        } else if (rr.type == out->qtype) {
            out->nfinal++;
        }
    }
    for (unsigned i = 0; i < out->nscount; i++) {
        rr_t rr;
        if (!read_rr(buf, len, &off, NULL, &rr))
            return false;
        if (rr.type == DNS_T_SOA && !out->have_soa) {
            uint32_t minimum;
            if (!read_soa_minimum(buf, len, &rr, &minimum))
                return false;
            out->soa_ttl = minimum < rr.ttl ? minimum : rr.ttl;
            out->have_soa = true;
        }
    }
    return true;
}
