/*
 * history.h - what real mail proved about addresses, per address and over time: the
 * hard and soft bounces and the deliveries `mailprobe learn` read, and what bulk checks
 * proved while a domain still told addresses apart (the catch-all assessment's history). Kept in its own table
 * (address_history) of the job store's SQLite file, created on first use with its own
 * schema version (history_meta), so it neither depends on nor changes the job store's
 * migrations.
 *
 * One row per address, event kind and day: learning the same mailbox twice does not
 * grow the table. Does not: decide what an event means (learn/), keep the deny list
 * (the user's deny-list file does that, intel/userlist.h).
 * Ownership: history_open() / history_close(). One history_t per thread.
 */
#ifndef MP_STORE_HISTORY_H
#define MP_STORE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "mailprobe.h"

typedef struct history history_t;

/** One remembered event. */
typedef struct {
    const char *addr;    /* lower-cased address */
    const char *kind;    /* "hard", "soft", "delivered" (learned from real mail);
                          * "accepted", "refused" (a check while the domain told addresses
                          * apart: accepted, or mailbox_absent / mailbox_disabled) */
    const char *status;  /* RFC 3463 status or "" */
    const char *outcome; /* classify's reading or "" */
    const char *reason;  /* the server's words */
    const char *source;  /* where it was learned: file, message or line */
    int64_t when;        /* Unix time of the event (0: unknown; the learn time is used) */
} history_event_t;

/**
 * Open (creating when needed) the history in the SQLite file at path.
 * @return MP_OK; MP_ERR_IO with err set when the file cannot be opened or migrated
 */
mp_status_t history_open(const char *path, history_t **out, char *err, size_t errsize);

/** Commit and close. NULL is fine. */
void history_close(history_t *h);

/** Record one event (inside the open transaction; history_commit makes it durable).
 *  @return MP_OK; MP_ERR_IO */
mp_status_t history_put(history_t *h, const history_event_t *ev);

/** Commit what was put so far. @return MP_OK; MP_ERR_IO */
mp_status_t history_commit(history_t *h);

/** Count of remembered events of one kind for an address (tests, later evidence).
 *  kind NULL counts all. @return the count, or -1 on error */
int64_t history_count(history_t *h, const char *addr, const char *kind);

/** The latest proof for and against an address (Unix times, 0 when none): proven_at
 *  from "delivered" and "accepted" events, refused_at from "hard" and "refused".
 *  @return MP_OK; MP_ERR_IO */
mp_status_t history_summary(history_t *h, const char *addr, int64_t *proven_at,
                            int64_t *refused_at);

#endif
