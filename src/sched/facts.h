/*
 * facts.h - what mailprobe learnt about a domain's mail servers, cached by domain.
 *
 * Today one fact: whether the domain's MX accepts any recipient (catch-all), with the
 * probe reply that proved it. Only conclusive facts are stored, with separate TTLs for
 * "catch-all" and "not catch-all" (Postfix's verify cache keeps positive and negative
 * answers apart for the same reason: they go stale at different speeds).
 *
 * facts_t is an interface: the in-memory store below backs `mailprobe check`; the bulk
 * job store and the distributed mode plug their own get/put in. Expiry uses mp_now_ms,
 * so tests drive it with an injected clock.
 */
#ifndef MP_SCHED_FACTS_H
#define MP_SCHED_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    bool catch_all;        /* the MX accepted a recipient that cannot exist */
    char mx_host[256];     /* the MX that answered the probe */
    char probe_rcpt[320];  /* the probe address used */
    int probe_code;        /* its reply */
    char probe_enh[16];
    char probe_text[512];
    bool told_apart;       /* not a probe's answer: the MX refused a real address of the
                              domain as unknown (its code in probe_code/probe_enh; no
                              address or text is kept), so it does not accept all */
} facts_domain_t;

typedef struct {
    /** Fill *out and return true when a fresh fact is known for domain. */
    bool (*get)(void *ctx, const char *domain, facts_domain_t *out);
    /** Store a fact for ttl_ms. */
    void (*put)(void *ctx, const char *domain, const facts_domain_t *f, uint64_t ttl_ms);
    /** Free the store. */
    void (*free)(void *ctx);
} facts_ops_t;

typedef struct {
    const facts_ops_t *ops;
    void *ctx;
} facts_t;

/** An in-memory store holding at most max_entries domains (oldest evicted first). */
facts_t *facts_mem_new(size_t max_entries);

/** Look up / store / free through whichever implementation f is. */
bool facts_get(facts_t *f, const char *domain, facts_domain_t *out);
void facts_put(facts_t *f, const char *domain, const facts_domain_t *fact, uint64_t ttl_ms);
void facts_free(facts_t *f);

#endif
