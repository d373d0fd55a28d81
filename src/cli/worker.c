/*
 * worker.c - `mailprobe worker --redis URL`: join the pool of workers around one Redis
 * and check the batches that `bulk --pool` submits, with this process' engine and
 * options (--helo, --from, --source, --proxy, timeouts...), until stopped.
 *
 * SIGTERM or SIGINT: take no more batches, finish those held, exit 0. A second signal:
 * hand what is held back to the pool (the delayed set, moved into the stream at once)
 * and exit 0. The queue itself (reads, acknowledgements, reclaiming, back-off) is
 * fleet/queue.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "fleet/queue.h"
#include "util/log.h"
#include "util/str.h"

typedef struct {
    cli_cfg_t *cfg;
    struct event_base *base;
    engine_t *engine;
    fleet_worker_t *w;
    unsigned signals;
    bool stopped;
} worker_t;

static worker_t W;

static void print_help(void)
{
    fputs("usage: mailprobe worker --redis URL [options]\n"
          "\n"
          "Join the pool of workers around Redis and check the lists that\n"
          "`mailprobe bulk` and `serve` hand to the pool, until stopped (SIGTERM: finish\n"
          "the batches held; a second one: hand them back). Each worker checks with its\n"
          "own options (give every worker its own --source addresses); all share one\n"
          "per-server budget through the same Redis.\n"
          "\n"
          "  --redis URL            redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (required)\n"
          "  --batches N            batches (one domain's addresses each) held at once\n"
          "                         (default 64)\n"
          "  --claim-idle D         a batch another worker holds this long without a sign\n"
          "                         of life is taken over (default 2m)\n"
          "  --max-deliveries N     a batch given out N times without a result becomes\n"
          "                         error rows (not_checked) instead (default 5)\n",
          stdout);
    cli_cfg_help(CMD_WORKER);
}

static void on_checked(vd_result_t *res, void *item)
{
    char *json = vd_to_json(res, false);
    fleet_worker_done(W.w, item, json);
    free(json);
    vd_result_free(res);
}

static mp_status_t check(fleet_worker_t *w, void *item, const char *addr, void *arg)
{
    (void)w;
    (void)arg;
    return W.engine ? engine_check(W.engine, addr, on_checked, item) : MP_ERR_ARG;
}

static void on_stopped(fleet_worker_t *w, void *arg)
{
    (void)w;
    (void)arg;
    W.stopped = true;
    event_base_loopbreak(W.base);
}

static void on_note(const char *line, void *arg)
{
    (void)arg;
    cli_log(W.cfg, MP_LOG_WARN, "%s", line);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    fleet_wstats_t s;
    fleet_worker_stats(W.w, &s);
    if (++W.signals == 1) {
        cli_log(W.cfg, MP_LOG_INFO, "stopping: finishing the %u batches held (signal again "
                "to hand them back)", s.held);
        fleet_worker_stop(W.w, false);
    } else if (W.signals == 2) {
        cli_log(W.cfg, MP_LOG_INFO, "stopping: handing %u batches back", s.held);
        engine_free(W.engine); /* its checks will not call back: their batches go back */
        W.engine = NULL;
        fleet_worker_stop(W.w, true);
    }
}

int cli_worker(int argc, char **argv)
{
    static cli_cfg_t cfg;
    int first, rc = cli_cfg_parse(&cfg, CMD_WORKER, "worker", argc, argv, &first);
    if (rc == -1) {
        print_help();
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc)
        rc = cli_usage_error("worker: unexpected argument '%s'", argv[first]);
    if (!rc && !cfg.redis[0])
        rc = cli_usage_error("worker: --redis URL is required (the pool's Redis)");
    if (!rc)
        rc = cli_cfg_finish(&cfg);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&W, 0, sizeof W);
    W.cfg = &cfg;
    struct event *sigint = NULL, *sigterm = NULL;
    char err[400];
    mp_status_t est = MP_ERR_NOMEM;
    if (!cfg.eo.offline)
        cli_doctor_startup(&cfg, true);
    W.base = event_base_new();
    W.engine = W.base ? engine_new(W.base, &cfg.eo, &est) : NULL;
    if (!W.engine) {
        cli_log(&cfg, MP_LOG_ERROR, "%s", W.base ? mp_strerror(est) : "no event loop");
        rc = EXIT_RUNTIME;
        goto done;
    }
    fleet_wopts_t wo = {cfg.batches, cfg.claim_idle_ms, cfg.max_deliveries, NULL, check,
                        on_stopped, on_note, NULL};
    W.w = fleet_worker_open(W.base, cfg.redis, &wo, err, sizeof err);
    if (!W.w) {
        cli_log(&cfg, MP_LOG_ERROR, "%s", err);
        rc = EXIT_RUNTIME;
        goto done;
    }
    sigint = evsignal_new(W.base, SIGINT, on_signal, NULL);
    sigterm = evsignal_new(W.base, SIGTERM, on_signal, NULL);
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) || evsignal_add(sigterm, NULL)) {
        cli_log(&cfg, MP_LOG_ERROR, "cannot catch signals");
        rc = EXIT_RUNTIME;
        goto done;
    }
    cli_log(&cfg, MP_LOG_INFO, "worker %d joined the pool", (int)getpid());
    event_base_dispatch(W.base);
    if (W.engine)
        cli_finish_sessions(W.base, W.engine);
    fleet_wstats_t s;
    fleet_worker_stats(W.w, &s);
    cli_log(&cfg, MP_LOG_INFO, "worker stopped: %llu batches (%llu taken over from other "
            "workers, %llu handed back), %llu addresses",
            (unsigned long long)s.batches, (unsigned long long)s.reclaimed,
            (unsigned long long)s.handed_back, (unsigned long long)s.addresses);
    rc = 0;
done:
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    fleet_worker_free(W.w);
    engine_free(W.engine);
    if (W.base)
        event_base_free(W.base);
    cli_cfg_cleanup(&cfg);
    return rc;
}
