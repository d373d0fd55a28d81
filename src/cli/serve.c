/*
 * serve.c - `mailprobe serve`: the HTTP API and the web page (src/api) on one event loop
 * with the engine and the job store. SIGINT/SIGTERM stop it cleanly: the running job
 * stays in the store and continues at the next start. Under systemd (Type=notify) it
 * says READY=1 once the listener is open and STOPPING=1 when it begins to stop.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "fleet/fleet.h"
#include "store/store.h"
#include "util/log.h"
#include "util/str.h"

#ifndef MP_VERSION
#define MP_VERSION "dev"
#endif

static void print_help(void)
{
    fputs("usage: mailprobe serve [options]\n"
          "\n"
          "Serve the HTTP API (/v1/check, /v1/jobs, /healthz, /metrics; described at\n"
          "/v1/openapi.json) and the web page at /.\n"
          "\n"
          "  --listen ADDR:PORT     where to listen (default 127.0.0.1:8080; [::1]:8080\n"
          "                         for IPv6; port 0 = any free port, printed at start)\n"
          "  --store PATH           the job store (default: ~/.local/state/mailprobe/\n"
          "                         jobs.sqlite); job files go to PATH.d/\n"
          "  --tokens FILE          API tokens, one a line; callers send\n"
          "                         'Authorization: Bearer TOKEN'. Without it the server\n"
          "                         only listens on loopback and asks for no token\n"
          "  --rate-limit N         requests per second per token (per client address\n"
          "                         without tokens) before 429 (default 20, burst 2N+1;\n"
          "                         0 = no limit)\n"
          "  --max-body SIZE        largest request body, e.g. 100M (default 100M): 413\n"
          "  --wait D               how long /v1/check waits for a result when the caller\n"
          "                         gives no timeout (default 30s); then it answers\n"
          "                         unknown/timeout with retry_after and keeps checking\n"
          "  --max-age D            answer from results this fresh (default 10m; 0 = always\n"
          "                         check again)\n"
          "  --allow-private-webhooks  also call webhooks on loopback, private, link-local\n"
          "                         or reserved addresses (refused by default)\n"
          "  --request-timeout D    a request's head and body must arrive within D\n"
          "                         (default 30s); near the connection limit, 2s\n"
          "  --max-per-client N     connections per client address (default 32)\n"
          "  --max-connections N    connections at once (default: the open files limit\n"
          "                         less a quarter, at most 256, for the rest)\n"
          "  --pool                 jobs are checked by the `mailprobe worker`s around the\n"
          "                         --redis Redis (/v1/check stays in this process)\n",
          stdout);
    cli_cfg_help(CMD_SERVE);
}

/* sd_notify(3)'s protocol by hand: one datagram to the AF_UNIX socket $NOTIFY_SOCKET
 * names ('@' = abstract namespace). Nothing happens without the variable. */
static void notify_systemd(const cli_cfg_t *c, const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t n = path ? strlen(path) : 0;
    if (n < 2 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        cli_log(c, MP_LOG_WARN, "cannot notify systemd (%s): %s", path, strerror(errno));
    close(fd);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int cli_serve(int argc, char **argv)
{
    static cli_cfg_t cfg;
    int first, rc = cli_cfg_parse(&cfg, CMD_SERVE, "serve", argc, argv, &first);
    if (rc == -1) {
        print_help();
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc)
        rc = cli_usage_error("serve: unexpected argument '%s' (try --help)", argv[first]);
    if (!rc && !cfg.tokens[0] && !api_host_is_loopback(cfg.listen_host))
        rc = cli_usage_error("serve: without --tokens the server answers anyone who can "
                             "reach it: listen on a loopback address (127.0.0.1, ::1) or "
                             "give a token file");
    if (!rc)
        rc = cli_cfg_finish(&cfg);
    char path[1024], err[2048];
    if (!rc) {
        if (cfg.store[0])
            mp_strlcpy(path, cfg.store, sizeof path);
        else if (store_default_path(path, sizeof path) != MP_OK)
            rc = cli_usage_error("cannot find a place for the job store: give --store PATH");
    }
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);
    cfg.eo.keep_transcript = true; /* callers may ask for it */

    store_t *st = NULL;
    struct event_base *base = NULL;
    engine_t *engine = NULL;
    api_t *api = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    char *doctor = NULL; /* the start-up doctor report as JSON */
    if (store_open(path, &st, err, sizeof err) != MP_OK) {
        rc = cli_usage_error("job store %s: %s", path, err);
        goto done;
    }
    if (!cfg.eo.offline)   /* identity checks, served at GET /v1/doctor */
        cli_doctor_startup(&cfg, false); /* warns once serving */
    doctor = cfg.startup ? cli_doctor_json(cfg.startup, 1) : NULL;
    base = event_base_new();
    if (cfg.pool && base) { /* unreachable: one line, exit 5, before serving */
        fleet_t *f = fleet_open(base, cfg.redis, 5000, err, sizeof err);
        if (!f) {
            cli_log(&cfg, MP_LOG_ERROR, "%s", err);
            rc = EXIT_RUNTIME;
            goto done;
        }
        fleet_free(f);
    }
    mp_status_t est = MP_ERR_NOMEM;
    engine = base ? engine_new(base, &cfg.eo, &est) : NULL;
    if (!engine) {
        cli_log(&cfg, MP_LOG_ERROR, "%s", mp_strerror(est));
        rc = EXIT_RUNTIME;
        goto done;
    }
    api_opts_t ao = {
        .host = cfg.listen_host,
        .port = cfg.listen_port,
        .store_path = path,
        .tokens_path = cfg.tokens[0] ? cfg.tokens : NULL,
        .rate = cfg.rate_limit,
        .burst = cfg.rate_limit > 0 ? (unsigned)(cfg.rate_limit * 2 + 1) : 0,
        .max_body = (size_t)cfg.max_body,
        .wait_ms = cfg.wait_ms,
        .max_age_ms = cfg.max_age_ms,
        .allow_private_hooks = cfg.allow_private_hooks,
        .request_timeout_ms = cfg.request_timeout_ms,
        .max_per_client = cfg.max_per_client,
        .max_conns = cfg.max_conns,
        .version = MP_VERSION,
        .doctor_json = doctor,
        .redis = cfg.pool ? cfg.redis : NULL,
    };
    /* caught before anything says "serving": a stop right after it is a clean one */
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) || evsignal_add(sigterm, NULL)) {
        cli_log(&cfg, MP_LOG_ERROR, "cannot catch signals");
        rc = EXIT_RUNTIME;
        goto done;
    }
    api = api_new(base, engine, st, &ao, err, sizeof err);
    if (!api) {
        rc = cli_usage_error("serve: %s", err);
        goto done;
    }
    bool v6 = strchr(cfg.listen_host, ':') != NULL;
    cli_log(&cfg, MP_LOG_INFO, "serving on http://%s%s%s:%u/ (job store %s)%s",
            v6 ? "[" : "", cfg.listen_host, v6 ? "]" : "", api_port(api), path,
            cfg.tokens[0] ? "" : "; no token file: loopback only, no authentication");
    cli_doctor_warn(&cfg);   /* after the line that says where: tools wait for that one */
    char status[256];
    snprintf(status, sizeof status, "READY=1\nSTATUS=serving on port %u\nMAINPID=%ld",
             api_port(api), (long)getpid());
    notify_systemd(&cfg, status);
    event_base_dispatch(base);
    notify_systemd(&cfg, "STOPPING=1");
    cli_log(&cfg, MP_LOG_INFO, "stopping");
    api_shutdown(api);
    /* a few turns of the loop so that the 503s just queued reach their callers */
    struct timeval grace = {0, 200000};
    event_base_loopexit(base, &grace);
    event_base_dispatch(base);
    rc = 0;

done:
    api_shutdown(api);
    engine_free(engine); /* checks in flight end here; api_free answers their callers */
    api_free(api);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (base)
        event_base_free(base);
    store_close(st);
    free(doctor);
    cli_cfg_cleanup(&cfg);
    return rc;
}
