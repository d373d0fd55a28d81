/* window.c - per-server session window; see window.h. */
#include "sched/window.h"

void window_init(window_t *w, const window_cfg_t *c)
{
    w->window = c->limit ? (double)c->limit : 1.0;
    w->active = 0;
    w->throttles = 0;
    w->next_start_ms = 0;
}

unsigned window_allowed(const window_t *w)
{
    unsigned n = (unsigned)w->window;
    return n ? n : 1;
}

bool window_can_start(const window_t *w, uint64_t now_ms)
{
    return w->active < window_allowed(w) && now_ms >= w->next_start_ms;
}

void window_on_start(window_t *w, const window_cfg_t *c, uint64_t now_ms)
{
    w->active++;
    uint64_t next = now_ms + c->min_interval_ms;
    if (next > w->next_start_ms)
        w->next_start_ms = next;
}

void window_on_end(window_t *w, const window_cfg_t *c, uint64_t now_ms, window_outcome_t o)
{
    if (w->active)
        w->active--;
    double limit = c->limit ? (double)c->limit : 1.0;
    switch (o) {
    case WIN_OK:
        w->throttles = 0;
        w->window += 1.0 / w->window;
        if (w->window > limit)
            w->window = limit;
        break;
    case WIN_THROTTLE: {
        w->window /= 2.0;
        if (w->window < 1.0)
            w->window = 1.0;
        uint64_t pen = c->penalty_ms;
        for (unsigned i = 0; i < w->throttles && pen < c->penalty_cap_ms; i++)
            pen *= 2;
        if (pen > c->penalty_cap_ms)
            pen = c->penalty_cap_ms;
        w->throttles++;
        if (now_ms + pen > w->next_start_ms)
            w->next_start_ms = now_ms + pen;
        break;
    }
    case WIN_NEUTRAL:
        break;
    }
}
