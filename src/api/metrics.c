/*
 * metrics.c - /metrics in the Prometheus text format (version 0.0.4): checks by verdict
 * and reason, their duration, SMTP sessions and how they ended, the DNS cache, the
 * queues, HTTP answers by status code, webhooks.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "smtp/session.h"
#include "util/clock.h"

/* Upper bounds (seconds) of the check duration buckets: from a cached domain's answer
 * to a greylisted address retried for minutes. */
static const double lat_bounds[API_LAT_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                   5,    10,  30,   60,  120, 300};

void api_metrics_result(api_metrics_t *m, const vd_result_t *res)
{
    if ((unsigned)res->reason < VR__COUNT)
        m->checks[res->reason]++;
    double s = (double)res->duration_ms / 1000.0;
    size_t i = 0;
    while (i < API_LAT_BUCKETS && s > lat_bounds[i])
        i++;
    m->lat[i]++;
    m->lat_sum += s;
    m->lat_count++;
}

void api_metrics_code(api_metrics_t *m, int code)
{
    for (size_t i = 0; i < API_CODES; i++) {
        if (m->codes[i] == code || !m->codes[i]) {
            m->codes[i] = code;
            m->code_n[i]++;
            return;
        }
    }
}

static void head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void api_metrics_render(api_t *a, struct evbuffer *o)
{
    const api_metrics_t *m = &a->m;
    head(o, "mailprobe_checks_total", "counter",
         "Checks finished (single checks and job rows checked now), by verdict and reason.");
    for (unsigned r = 0; r < VR__COUNT; r++)
        evbuffer_add_printf(o, "mailprobe_checks_total{verdict=\"%s\",reason=\"%s\"} %llu\n",
                            vd_verdict_name(vd_reason_verdict((vd_reason_t)r)),
                            vd_reason_name((vd_reason_t)r), (unsigned long long)m->checks[r]);

    head(o, "mailprobe_check_duration_seconds", "histogram",
         "Time from the start of a check to its verdict, retries included.");
    uint64_t cum = 0;
    for (size_t i = 0; i < API_LAT_BUCKETS; i++) {
        cum += m->lat[i];
        evbuffer_add_printf(o, "mailprobe_check_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            lat_bounds[i], (unsigned long long)cum);
    }
    cum += m->lat[API_LAT_BUCKETS];
    evbuffer_add_printf(o, "mailprobe_check_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "mailprobe_check_duration_seconds_sum %.3f\n"
                        "mailprobe_check_duration_seconds_count %llu\n",
                        (unsigned long long)cum, m->lat_sum, (unsigned long long)m->lat_count);

    engine_stats_t es;
    engine_stats(a->engine, &es);
    head(o, "mailprobe_smtp_sessions_total", "counter", "SMTP sessions opened.");
    evbuffer_add_printf(o, "mailprobe_smtp_sessions_total %llu\n",
                        (unsigned long long)es.sessions);
    head(o, "mailprobe_smtp_sessions_ended_total", "counter",
         "SMTP sessions finished, by how they ended (ok: every RCPT got a reply).");
    for (unsigned e = 0; e < ENGINE_SESS_ENDS; e++)
        evbuffer_add_printf(o, "mailprobe_smtp_sessions_ended_total{outcome=\"%s\"} %llu\n",
                            smtp_end_name((smtp_end_t)e), (unsigned long long)es.sess_end[e]);
    head(o, "mailprobe_smtp_rcpts_total", "counter", "RCPT commands sent, by kind.");
    evbuffer_add_printf(o, "mailprobe_smtp_rcpts_total{kind=\"address\"} %llu\n"
                        "mailprobe_smtp_rcpts_total{kind=\"catch_all_probe\"} %llu\n"
                        "mailprobe_smtp_rcpts_total{kind=\"postmaster_control\"} %llu\n",
                        (unsigned long long)es.rcpts, (unsigned long long)es.probes,
                        (unsigned long long)es.controls);
    head(o, "mailprobe_retries_total", "counter",
         "Retry rounds after temporary refusals (greylisting, 4xx).");
    evbuffer_add_printf(o, "mailprobe_retries_total %llu\n", (unsigned long long)es.retries);

    head(o, "mailprobe_dns_cache_total", "counter", "DNS look-ups answered by the cache or not.");
    evbuffer_add_printf(o, "mailprobe_dns_cache_total{result=\"hit\"} %llu\n"
                        "mailprobe_dns_cache_total{result=\"miss\"} %llu\n",
                        (unsigned long long)es.dns.hits, (unsigned long long)es.dns.misses);
    head(o, "mailprobe_dns_queries_total", "counter", "DNS queries sent.");
    evbuffer_add_printf(o, "mailprobe_dns_queries_total %llu\n",
                        (unsigned long long)es.dns.queries_sent);

    unsigned queued;
    bool running;
    api_jobs_depth(a, &queued, &running);
    head(o, "mailprobe_checks_in_flight", "gauge", "Checks in the engine now (API and jobs).");
    evbuffer_add_printf(o, "mailprobe_checks_in_flight %u\n", engine_pending(a->engine));
    head(o, "mailprobe_jobs_queued", "gauge", "Jobs waiting for their turn.");
    evbuffer_add_printf(o, "mailprobe_jobs_queued %u\n", queued);
    head(o, "mailprobe_jobs_running", "gauge", "Jobs running (one at a time).");
    evbuffer_add_printf(o, "mailprobe_jobs_running %d\n", running ? 1 : 0);

    head(o, "mailprobe_api_check_requests_total", "counter",
         "/v1/check requests, by how they were answered.");
    evbuffer_add_printf(o, "mailprobe_api_check_requests_total{answer=\"any\"} %llu\n"
                        "mailprobe_api_check_requests_total{answer=\"cached\"} %llu\n"
                        "mailprobe_api_check_requests_total{answer=\"pending\"} %llu\n",
                        (unsigned long long)m->check_requests,
                        (unsigned long long)m->check_cached,
                        (unsigned long long)m->check_timeouts);
    head(o, "mailprobe_http_responses_total", "counter", "HTTP answers by status code.");
    for (size_t i = 0; i < API_CODES && m->codes[i]; i++)
        evbuffer_add_printf(o, "mailprobe_http_responses_total{code=\"%d\"} %llu\n",
                            m->codes[i], (unsigned long long)m->code_n[i]);
    head(o, "mailprobe_webhooks_total", "counter", "Webhook calls, by result.");
    evbuffer_add_printf(o, "mailprobe_webhooks_total{result=\"delivered\"} %llu\n"
                        "mailprobe_webhooks_total{result=\"failed\"} %llu\n",
                        (unsigned long long)m->webhooks_ok, (unsigned long long)m->webhooks_failed);
    head(o, "mailprobe_background_slices_total", "counter",
         "Slices of background work done, one per loop turn at most, by task: counting a "
         "large upload, writing results, the job pump.");
    evbuffer_add_printf(o, "mailprobe_background_slices_total{task=\"count\"} %llu\n"
                        "mailprobe_background_slices_total{task=\"results\"} %llu\n"
                        "mailprobe_background_slices_total{task=\"job\"} %llu\n",
                        (unsigned long long)m->slices_count,
                        (unsigned long long)m->slices_results,
                        (unsigned long long)api_jobs_pump_turns(a));
    head(o, "mailprobe_uptime_seconds", "gauge", "Seconds since the server started.");
    evbuffer_add_printf(o, "mailprobe_uptime_seconds %llu\n",
                        (unsigned long long)((mp_now_ms() - a->started_ms) / 1000));
}
