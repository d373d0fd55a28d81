/*
 * provider.c - MX host -> provider row, by longest matching pattern; see provider.h.
 *
 * The generated table holds every pattern reversed and sorted ("mx0a-1.pphosted.com" is
 * looked up as "moc.detsohpp.1-a0xm"). A host matches an exact key when the reversed host
 * equals it, and a suffix key ("moc.detsohpp.") when that key is a prefix of the reversed
 * host ending at a label boundary with at least one more character after it. So the
 * candidates are: the whole reversed host, then each prefix ending in '.', longest first;
 * each is one binary search, and the first hit is the longest match. Nothing is
 * allocated: the reversed host lives in a stack buffer.
 */
#include "classify/provider.h"

#include <string.h>

#include "util/str.h"

#define HOST_MAX 253 /* RFC 1035 §2.3.4: 255 octets on the wire, 253 as text */

/* strcmp order between a table key and the first len bytes of s. */
static int key_cmp(const char *key, const char *s, size_t len)
{
    size_t klen = strlen(key);
    int c = memcmp(key, s, klen < len ? klen : len);
    if (c)
        return c;
    return klen < len ? -1 : klen > len ? 1 : 0;
}

/* The row whose key is exactly s[0..len), or NULL. */
static const provider_t *find_key(const char *s, size_t len)
{
    size_t lo = 0, hi = provider_key_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(provider_keys[mid].rkey, s, len);
        if (c == 0)
            return &provider_rows[provider_keys[mid].row];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const provider_t *provider_lookup(const char *mx_host)
{
    char rev[HOST_MAX + 1];
    size_t len, i;
    const provider_t *p;

    if (!mx_host)
        return NULL;
    len = strnlen(mx_host, HOST_MAX + 2);
    if (len && mx_host[len - 1] == '.')
        len--; /* the root label: "aspmx.l.google.com." */
    if (len == 0 || len > HOST_MAX)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)mx_host[len - 1 - i];
        if (c == '\0')
            return NULL;
        rev[i] = (char)mp_to_lower(c);
    }
    rev[len] = '\0';

    p = find_key(rev, len); /* exact host */
    if (p)
        return p;
    /* Suffix keys end in '.', and need at least one character of host after the dot:
     * i + 1 < len, so ".pphosted.com" never matches the bare "pphosted.com". */
    for (i = len - 1; i-- > 0;) {
        if (rev[i] == '.' && (p = find_key(rev, i + 1)) != NULL)
            return p;
    }
    return NULL;
}

const provider_t *provider_for_mx_set(const char *const *hosts, const unsigned *prefs, size_t n,
                                      size_t *index)
{
    const provider_t *best = NULL;
    size_t best_i = 0;

    if (!hosts)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const provider_t *p;
        if (!hosts[i])
            continue;
        if (best && (!prefs || prefs[i] >= prefs[best_i]))
            continue; /* not preferred over the current answer: skip the look-up */
        p = provider_lookup(hosts[i]);
        if (p) {
            best = p;
            best_i = i;
            if (!prefs)
                break;
        }
    }
    if (best && index)
        *index = best_i;
    return best;
}

const char *provider_kind_name(provider_kind_t kind)
{
    switch (kind) {
    case PROVIDER_MAILBOX: return "mailbox_provider";
    case PROVIDER_GATEWAY: return "security_gateway";
    case PROVIDER_HOSTING: return "hosting";
    }
    return "unknown";
}

bool provider_is_gateway(const provider_t *p)
{
    return p && p->kind == PROVIDER_GATEWAY;
}

size_t provider_behaviour_str(unsigned behaviour, char *buf, size_t size)
{
    static const struct {
        unsigned flag;
        const char *id;
    } names[] = {
        {PROVIDER_VERIFIES_RECIPIENTS, "verifies_recipients"},
        {PROVIDER_ACCEPTS_ALL_AT_EDGE, "accepts_all_at_edge"},
        {PROVIDER_HIDES_MAILBOX, "hides_mailbox_existence"},
        {PROVIDER_TENANT_CONFIGURABLE, "tenant_configurable"},
        {PROVIDER_DEFERS_UNKNOWN, "defers_unknown"},
        {PROVIDER_FORWARDS, "forwards"},
    };
    size_t need = 0;

    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(behaviour & names[i].flag))
            continue;
        if (need) {
            need++;
            if (size)
                mp_strlcat(buf, ",", size);
        }
        need += strlen(names[i].id);
        if (size)
            mp_strlcat(buf, names[i].id, size);
    }
    if (!need) {
        need = strlen("unknown");
        if (size)
            mp_strlcpy(buf, "unknown", size);
    }
    return need;
}

size_t provider_count(void)
{
    return provider_row_count;
}

const provider_t *provider_at(size_t i)
{
    return i < provider_row_count ? &provider_rows[i] : NULL;
}
