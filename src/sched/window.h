/*
 * window.h - how many sessions one server address may have, and when the next may start.
 *
 * Pure arithmetic on an injected clock (AIMD, as TCP and OpenSMTPD's per-route limits do):
 * the window starts at the configured limit; a session that ends in a throttle (421, a
 * "slow down" reply) halves it (never below 1) and sets a penalty delay that doubles with
 * each consecutive throttle up to a cap; each successful session grows the window by
 * 1/window, so it takes about a window's worth of successes to earn one more session, and
 * never above the limit. Every new connection also waits a minimum interval after the
 * previous one to the same address.
 */
#ifndef MP_SCHED_WINDOW_H
#define MP_SCHED_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    unsigned limit;          /* configured maximum concurrent sessions (>= 1) */
    unsigned min_interval_ms;/* between two connection starts */
    unsigned penalty_ms;     /* first penalty after a throttle */
    unsigned penalty_cap_ms; /* largest penalty */
} window_cfg_t;

typedef struct {
    double window;           /* allowed concurrency, 1..limit */
    unsigned active;         /* sessions running */
    unsigned throttles;      /* consecutive throttles (0 after a success) */
    uint64_t next_start_ms;  /* no new session before this time */
} window_t;

typedef enum {
    WIN_OK,        /* the session did its work */
    WIN_THROTTLE,  /* 421 or an explicit "slow down" */
    WIN_NEUTRAL    /* failed for other reasons (refused, timeout): no signal */
} window_outcome_t;

void window_init(window_t *w, const window_cfg_t *c);
/** May a session start now? */
bool window_can_start(const window_t *w, uint64_t now_ms);
/** A session starts now. */
void window_on_start(window_t *w, const window_cfg_t *c, uint64_t now_ms);
/** A session ended with this outcome. */
void window_on_end(window_t *w, const window_cfg_t *c, uint64_t now_ms, window_outcome_t o);
/** Sessions allowed now (floor of the window). */
unsigned window_allowed(const window_t *w);

#endif
