/*
 * conncache.h - idle SMTP sessions kept for reuse, by (source address, server address,
 * port): Postfix's SMTP client connection cache, as pure bookkeeping.
 *
 * The cache holds opaque pointers (the engine's connections) with the times that decide
 * whether they may still be used: when the session was opened, how many runs it
 * carried, since when it is idle. It does no I/O and reads no clock (times are passed
 * in), so the take/return/expire rules are unit-tested on their own. It never frees an
 * entry: what comes out of conncache_take/expire/pop is the caller's to use or close.
 *
 * Rules:
 *  - put: refused (the caller closes the session) when the session has carried
 *    reuse_max runs or is older than reuse_ms;
 *  - take: the most recently returned session of the key (LIFO: the warmest connection;
 *    older ones expire first) that is neither idle longer than idle_ms nor older than
 *    reuse_ms; others are left for conncache_expire;
 *  - expire: one entry idle longer than idle_ms or older than reuse_ms, removed.
 */
#ifndef MP_SCHED_CONNCACHE_H
#define MP_SCHED_CONNCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned idle_ms;   /* an idle session is closed after this (default 2 s) */
    unsigned reuse_ms;  /* no reuse of a session older than this (default 300 s) */
    unsigned reuse_max; /* runs one session carries at most (default 50) */
} conncache_cfg_t;

#define CONNCACHE_IDLE_MS_DEFAULT 2000
#define CONNCACHE_REUSE_MS_DEFAULT 300000
#define CONNCACHE_REUSE_MAX_DEFAULT 50

#define CONNCACHE_KEY_MAX 400 /* an egress name (320), an address, a port */

typedef struct conncache conncache_t;

/** A new empty cache; zero fields of cfg take the defaults. NULL when out of memory. */
conncache_t *conncache_new(const conncache_cfg_t *cfg);

/** Free the cache itself (entries still in it are not touched: take them out first). */
void conncache_free(conncache_t *cc);

/** The key of a session: source address ("" = the system's choice), server address and
 *  port, written into buf (CONNCACHE_KEY_MAX bytes). */
void conncache_key(char *buf, size_t size, const char *src, const char *ip, unsigned port);

/**
 * Return an idle session to the cache.
 * @param born_ms when the session was opened; @param runs runs it has carried
 * @return true when kept; false when it is past its reuse limits (or out of memory):
 *         the caller closes it
 */
bool conncache_put(conncache_t *cc, const char *key, void *sess, uint64_t born_ms,
                   unsigned runs, uint64_t now_ms);

/** Take an idle session for key (see the rules above); NULL when none may be used. */
void *conncache_take(conncache_t *cc, const char *key, uint64_t now_ms);

/** Remove and return one entry past its idle time or reuse age; NULL when none. */
void *conncache_expire(conncache_t *cc, uint64_t now_ms);

/** Remove and return the entry idle the longest for which match(sess, arg) is true
 *  (match NULL: any); NULL when none. Used to free a slot for another server. */
void *conncache_pop_oldest(conncache_t *cc, bool (*match)(void *sess, void *arg), void *arg);

/** Remove a given session (e.g. it died); true when it was there. */
bool conncache_remove(conncache_t *cc, const void *sess);

/** Entries for key (NULL: all). */
size_t conncache_count(const conncache_t *cc, const char *key);

/** When the first entry expires (UINT64_MAX when the cache is empty). */
uint64_t conncache_next_expiry(const conncache_t *cc);

#endif
