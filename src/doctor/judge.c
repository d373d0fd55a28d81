/*
 * judge.c - the doctor's pure parts: HELO names, DNSBL answers, echoed client addresses.
 * No I/O, no state; see doctor.h.
 */
#include "doctor/doctor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "util/str.h"

const char *doc_level_name(doc_level_t l)
{
    switch (l) {
    case DOC_OK: return "ok";
    case DOC_WARN: return "warn";
    case DOC_FAIL: return "FAIL";
    case DOC_SKIP: return "skip";
    }
    return "?";
}

/* Names a stranger's HELO must not claim: the large providers' own domains. */
static const char *const providers[] = {
    "gmail.com", "google.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
    "msn.com", "office365.com", "yahoo.com", "ymail.com", "aol.com", "icloud.com",
    "me.com", "mac.com", "apple.com", "gmx.net", "gmx.com", "gmx.de", "web.de", "mail.ru",
    "yandex.ru", "yandex.com", "protonmail.com", "proton.me", "zoho.com", "qq.com",
    "163.com", "126.com", "comcast.net", "orange.fr", "free.fr", "t-online.de",
    "amazonses.com", "sendgrid.net", "mailgun.org", "microsoft.com", "protection.outlook.com",
    NULL
};

bool doc_name_is_provider(const char *name)
{
    char n[256];
    mp_strlcpy(n, name, sizeof n);
    mp_str_lower(n);
    size_t len = strlen(n);
    if (len > 0 && n[len - 1] == '.')
        n[--len] = '\0';
    for (const char *const *p = providers; *p; p++) {
        size_t pl = strlen(*p);
        if (len == pl && strcmp(n, *p) == 0)
            return true;
        if (len > pl && n[len - pl - 1] == '.' && strcmp(n + len - pl, *p) == 0)
            return true;
    }
    return false;
}

__attribute__((format(printf, 3, 4))) static void put(char *dst, size_t size,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

/* A host name (one trailing dot allowed); fqdn: two labels or more, the last not all
 * digits (else it is an address or a bare host name). */
static bool host_name_ok(const char *s, bool *fqdn)
{
    char n[256];
    *fqdn = false;
    if (mp_strlcpy(n, s, sizeof n) >= sizeof n)
        return false;
    size_t len = strlen(n);
    if (len > 1 && n[len - 1] == '.')
        n[--len] = '\0';
    if (!dns_name_valid(n))
        return false;
    const char *last = strrchr(n, '.');
    bool digits = true;
    for (const char *p = last ? last + 1 : n; *p; p++)
        digits = digits && mp_is_digit((unsigned char)*p);
    *fqdn = last != NULL && !digits;
    return true;
}

doc_level_t doc_helo_judge(const char *helo, char *why, size_t whysz, char *fix, size_t fixsz)
{
    why[0] = fix[0] = '\0';
    if (!helo || !*helo) {
        put(why, whysz, "no HELO name");
        put(fix, fixsz, "set --helo (or 'helo = NAME' in the config file) to this host's "
                        "public name, the one its PTR record gives");
        return DOC_FAIL;
    }
    if (helo[0] == '[') {
        put(why, whysz, "HELO %s is an address literal: many servers refuse or score it", helo);
        put(fix, fixsz, "use a host name whose A record is this host's public address");
        return DOC_WARN;
    }
    char low[256];
    mp_strlcpy(low, helo, sizeof low);
    mp_str_lower(low);
    if (strcmp(low, "localhost") == 0 || strncmp(low, "localhost.", 10) == 0) {
        put(why, whysz, "HELO %s: servers refuse 'localhost' from a remote client", helo);
        put(fix, fixsz, "set --helo to this host's public name (its PTR)");
        return DOC_FAIL;
    }
    bool fqdn;
    if (!host_name_ok(helo, &fqdn)) {
        put(why, whysz, "HELO '%s' is not a host name", helo);
        put(fix, fixsz, "use a fully qualified host name: letters, digits, '-', dots");
        return DOC_FAIL;
    }
    if (!fqdn) {
        put(why, whysz, "HELO %s is not fully qualified (RFC 5321 §4.1.1.1): Postfix's "
                        "reject_non_fqdn_helo_hostname and others refuse it", helo);
        put(fix, fixsz, "use the full name, e.g. the PTR of this host's public address");
        return DOC_FAIL;
    }
    if (doc_name_is_provider(helo)) {
        put(why, whysz, "HELO %s claims to be a large provider: its servers and others "
                        "refuse such forgeries", helo);
        put(fix, fixsz, "use a name of your own domain that resolves to this host");
        return DOC_FAIL;
    }
    put(why, whysz, "HELO %s", helo);
    return DOC_OK;
}

bool doc_dnsbl_name(const char *ip, const char *zone, char *out, size_t size)
{
    unsigned char b[16];
    size_t pos = 0;
    out[0] = '\0';
    if (inet_pton(AF_INET, ip, b) == 1)
        return mp_appendf(out, size, &pos, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0], zone);
    if (inet_pton(AF_INET6, ip, b) != 1)
        return false;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--)
        if (!mp_appendf(out, size, &pos, "%c.%c.", hex[b[i] & 15], hex[b[i] >> 4]))
            return false;
    return mp_appendf(out, size, &pos, "%s", zone);
}

/* Spamhaus ZEN return codes (https://www.spamhaus.org/faq/section/DNSBL%20Usage). */
static const char *zen_meaning(unsigned last)
{
    switch (last) {
    case 2: return "SBL: a known spam source or spam operation";
    case 3: return "SBL CSS: low-reputation sending (snowshoe spam)";
    case 4: case 5: case 6: case 7:
        return "XBL: an exploited or infected host (botnet, open proxy)";
    case 9: return "DROP: a hijacked or criminal network";
    case 10: return "PBL (ISP): an end-user range that the ISP says must not send mail "
                    "directly to MX servers";
    case 11: return "PBL (Spamhaus): an end-user or dynamic range that should not send "
                    "mail directly to MX servers";
    default: return NULL;
    }
}

doc_bl_t doc_dnsbl_read(const char *zone, const char *const *answers, size_t n, char *meaning,
                        size_t size)
{
    size_t pos = 0;
    meaning[0] = '\0';
    if (n == 0)
        return DOC_BL_CLEAN;
    bool zen = strncmp(zone, "zen.", 4) == 0;
    doc_bl_t kind = DOC_BL_LISTED;
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4];
        if (inet_pton(AF_INET, answers[i], b) != 1 || b[0] != 127) {
            mp_appendf(meaning, size, &pos, "%s%s: not a blocklist code (a resolver that "
                       "rewrites NXDOMAIN?)", pos ? "; " : "", answers[i]);
            return DOC_BL_BOGUS;
        }
        if (b[1] == 255 && b[2] == 255) {
            pos = 0;
            meaning[0] = '\0';
            mp_appendf(meaning, size, &pos, "%s: the list refuses queries from this resolver "
                       "(public or too busy), this is not a listing", answers[i]);
            return DOC_BL_REFUSED;
        }
        const char *m = zen ? zen_meaning(b[3]) : NULL;
        mp_appendf(meaning, size, &pos, "%s%s%s%s", pos ? "; " : "", answers[i],
                   m ? " " : "", m ? m : "");
    }
    return kind;
}

bool doc_echoed_addr(const char *text, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *p = strchr(text, '['); p; p = strchr(p + 1, '[')) {
        const char *close = strchr(p, ']');
        if (!close)
            return false;
        const char *a = p + 1;
        if (strncasecmp(a, "IPv6:", 5) == 0)
            a += 5;
        size_t len = (size_t)(close - a);
        char ip[INET6_ADDRSTRLEN];
        unsigned char bin[16];
        if (len == 0 || len >= sizeof ip)
            continue;
        memcpy(ip, a, len);
        ip[len] = '\0';
        if (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1) {
            mp_strlcpy(out, ip, size);
            return true;
        }
    }
    return false;
}
