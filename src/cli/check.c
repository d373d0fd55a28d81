/*
 * check.c - `mailprobe check`: options (config file, then flags), the event loop, and
 * results printed in input order as soon as every earlier one is done.
 *
 * Addresses are fed to the engine a window at a time, so a long stdin list does not
 * start every DNS look-up at once; politeness per server is the engine's job.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "util/log.h"
#include "util/str.h"

#define CHECK_WINDOW 256 /* addresses in flight at once */

enum {
    O_JSON = 1000, O_TRACE, O_DNS, O_HELO, O_FROM, O_TIMEOUT, O_CONNECT_TIMEOUT,
    O_MAX_TIME, O_GREYLIST_WAIT, O_ALLOW_PRIVATE, O_NO_STARTTLS, O_MAX_SESSIONS,
    O_PER_SERVER, O_PORT, O_OFFLINE, O_ROLE_RISKY, O_CONFIG, O_COLOR, O_NO_COLOR,
    O_VERBOSE, O_HELP, O_NO_PROBE, O_GEOIP, O_DENY, O_ALLOW, O_RCPT_PER_SESSION
};

static const struct option long_opts[] = {
    {"json", no_argument, NULL, O_JSON},
    {"trace", no_argument, NULL, O_TRACE},
    {"dns", required_argument, NULL, O_DNS},
    {"helo", required_argument, NULL, O_HELO},
    {"from", required_argument, NULL, O_FROM},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
    {"max-time", required_argument, NULL, O_MAX_TIME},
    {"greylist-wait", required_argument, NULL, O_GREYLIST_WAIT},
    {"allow-private-mx", no_argument, NULL, O_ALLOW_PRIVATE},
    {"no-starttls", no_argument, NULL, O_NO_STARTTLS},
    {"max-sessions", required_argument, NULL, O_MAX_SESSIONS},
    {"per-server", required_argument, NULL, O_PER_SERVER},
    {"port", required_argument, NULL, O_PORT},
    {"offline", no_argument, NULL, O_OFFLINE},
    {"role-risky", no_argument, NULL, O_ROLE_RISKY},
    {"config", required_argument, NULL, O_CONFIG},
    {"color", no_argument, NULL, O_COLOR},
    {"no-color", no_argument, NULL, O_NO_COLOR},
    {"verbose", no_argument, NULL, O_VERBOSE},
    {"help", no_argument, NULL, O_HELP},
    {"no-catch-all-probe", no_argument, NULL, O_NO_PROBE},
    {"rcpt-per-session", required_argument, NULL, O_RCPT_PER_SESSION},
    {"geoip", required_argument, NULL, O_GEOIP},
    {"deny-list", required_argument, NULL, O_DENY},
    {"allow-list", required_argument, NULL, O_ALLOW},
    {NULL, 0, NULL, 0},
};

typedef struct {
    engine_opts_t eo;
    bool json, trace, verbose, help;
    int colour; /* -1 auto */
    char helo[256];
    char from[512];
    char dns[128];
    char config[1024];
    bool config_given;
#define CFG_FILES_MAX 8
    const char *geoip[CFG_FILES_MAX];
    size_t ngeoip;
    const char *deny[CFG_FILES_MAX];
    size_t ndeny;
    const char *allow[CFG_FILES_MAX];
    size_t nallow;
} check_cfg_t;

/* Keep a copy of a file name option (config-file values live in a reused buffer). */
static int add_file(const char **arr, size_t *n, const char *v, const char *opt,
                    const char *where)
{
    if (!*v)
        return cli_usage_error("%s: %s needs a file name", where, opt);
    if (*n >= CFG_FILES_MAX)
        return cli_usage_error("%s: %s given more than %d times", where, opt, CFG_FILES_MAX);
    char *copy = strdup(v);
    if (!copy)
        return cli_usage_error("out of memory");
    arr[(*n)++] = copy;
    return 0;
}

typedef struct {
    check_cfg_t *cfg;
    engine_t *engine;
    struct event_base *base;
    char **addrs;
    size_t n, cap;
    size_t submitted, printed;
    vd_result_t **res;
    bool colour;
    int worst; /* exit code so far */
    bool failed;
} check_run_t;

static void print_help(void)
{
    fputs(
        "usage: mailprobe check [options] ADDRESS... | -\n"
        "\n"
        "  --json                 one JSON object per address per line (NDJSON)\n"
        "  --trace                print the SMTP transcript to stderr (and in --json):\n"
        "                         '>' our commands, '<' replies, '*' notes (refused...)\n"
        "  --helo NAME            name to send in EHLO/HELO (default: this host's name)\n"
        "  --from ADDRESS         envelope sender for MAIL FROM; '<>' for the null sender\n"
        "                         (default: <>)\n"
        "  --dns IP[:PORT]        DNS server to ask (default: /etc/resolv.conf)\n"
        "  --timeout SECONDS      deadline for each SMTP step (default 60; banner 60)\n"
        "  --connect-timeout S    deadline for the TCP connection (default 30)\n"
        "  --max-time SECONDS     cap on one address, retries included (default 600)\n"
        "  --greylist-wait S      how long temporary refusals are retried (default 360)\n"
        "  --allow-private-mx     also talk to MX hosts on loopback/private addresses\n"
        "  --no-starttls          never use STARTTLS (unless the server demands it: then\n"
        "                         the check is unknown/tls_failed)\n"
        "  --max-sessions N       SMTP sessions open at once in all (default 20)\n"
        "  --per-server N         SMTP sessions open at once per server address (default 2)\n"
        "  --rcpt-per-session N   addresses of one domain one session may carry (default 25)\n"
        "  --port N               SMTP port (default 25; for test set-ups)\n"
        "  --offline              syntax and address signals only: no DNS, no SMTP\n"
        "  --role-risky           report role accounts (info@, sales@) as risky\n"
        "  --no-catch-all-probe   do not probe a random address to detect accept-all\n"
        "                         domains (one RCPT per address)\n"
        "  --deny-list FILE       addresses/domains that are undeliverable for you (spam\n"
        "                         traps, past bounces); repeatable\n"
        "  --allow-list FILE      addresses/domains that are deliverable for you; wins\n"
        "                         over the deny list; repeatable\n"
        "  --geoip FILE.mmdb      MaxMind-format database(s) for the MX's country, city\n"
        "                         and network; repeatable (e.g. a City and an ASN file)\n"
        "  --config FILE          read options from FILE (default: $MAILPROBE_CONFIG,\n"
        "                         else ~/.config/mailprobe/config if it exists)\n"
        "  --color, --no-color    force colour on or off (default: on a terminal)\n"
        "  --verbose              log what the engine does to stderr\n"
        "Durations take a unit: 30, 30s, 500ms, 2m.\n",
        stdout);
}

static bool parse_secs(const char *v, uint64_t *ms)
{
    return mp_parse_duration_ms(v, ms) && *ms > 0;
}

/* Apply one option; `where` names its source for error messages. 0 or EXIT_USAGE. */
static int apply_opt(check_cfg_t *c, int id, const char *v, const char *where)
{
    uint64_t n;
    switch (id) {
    case O_JSON: c->json = true; break;
    case O_TRACE: c->trace = true; break;
    case O_VERBOSE: c->verbose = true; break;
    case O_HELP: c->help = true; break;
    case O_COLOR: c->colour = 1; break;
    case O_NO_COLOR: c->colour = 0; break;
    case O_ALLOW_PRIVATE: c->eo.allow_private_mx = true; break;
    case O_NO_STARTTLS: c->eo.starttls = false; break;
    case O_OFFLINE: c->eo.offline = true; break;
    case O_ROLE_RISKY: c->eo.vd.role_risky = true; break;
    case O_DNS:
        if (mp_strlcpy(c->dns, v, sizeof c->dns) >= sizeof c->dns || !*v)
            return cli_usage_error("%s: --dns needs IP[:PORT]", where);
        break;
    case O_HELO:
        if (!*v || mp_strlcpy(c->helo, v, sizeof c->helo) >= sizeof c->helo ||
            strpbrk(v, " \t\r\n<>"))
            return cli_usage_error("%s: --helo needs a host name", where);
        break;
    case O_FROM: {
        const char *f = v;
        if (strcmp(f, "<>") == 0 || *f == '\0') {
            c->from[0] = '\0';
            break;
        }
        addr_t a;
        if (addr_parse(f, strlen(f), &a) != ADDR_OK)
            return cli_usage_error("%s: --from '%s' is not a valid address (%s)", where, f,
                                   addr_err_text(a.err));
        mp_strlcpy(c->from, a.normalized, sizeof c->from);
        break;
    }
    case O_TIMEOUT:
        if (!parse_secs(v, &n) || n > 3600000)
            return cli_usage_error("%s: --timeout needs a duration up to 1h, got '%s'", where, v);
        c->eo.to.command_ms = c->eo.to.banner_ms = (unsigned)n;
        break;
    case O_CONNECT_TIMEOUT:
        if (!parse_secs(v, &n) || n > 3600000)
            return cli_usage_error("%s: --connect-timeout needs a duration, got '%s'", where, v);
        c->eo.to.connect_ms = (unsigned)n;
        break;
    case O_MAX_TIME:
        if (!parse_secs(v, &n) || n > 86400000)
            return cli_usage_error("%s: --max-time needs a duration, got '%s'", where, v);
        c->eo.max_time_ms = n;
        break;
    case O_GREYLIST_WAIT:
        if (!mp_parse_duration_ms(v, &n) || n > 86400000)
            return cli_usage_error("%s: --greylist-wait needs a duration, got '%s'", where, v);
        c->eo.greylist_wait_ms = n;
        break;
    case O_MAX_SESSIONS:
        if (!mp_parse_uint(v, 1, 10000, &n))
            return cli_usage_error("%s: --max-sessions needs a number 1..10000", where);
        c->eo.max_sessions = (unsigned)n;
        break;
    case O_PER_SERVER:
        if (!mp_parse_uint(v, 1, 100, &n))
            return cli_usage_error("%s: --per-server needs a number 1..100", where);
        c->eo.per_ip_limit = (unsigned)n;
        break;
    case O_PORT:
        if (!mp_parse_uint(v, 1, 65535, &n))
            return cli_usage_error("%s: --port needs a number 1..65535", where);
        c->eo.port = (unsigned)n;
        break;
    case O_NO_PROBE: c->eo.catch_all_probe = false; break;
    case O_RCPT_PER_SESSION:
        if (!mp_parse_uint(v, 1, 99, &n))
            return cli_usage_error("%s: --rcpt-per-session needs a number 1..99", where);
        c->eo.max_rcpt = (unsigned)n;
        break;
    case O_GEOIP: return add_file(c->geoip, &c->ngeoip, v, "--geoip", where);
    case O_DENY: return add_file(c->deny, &c->ndeny, v, "--deny-list", where);
    case O_ALLOW: return add_file(c->allow, &c->nallow, v, "--allow-list", where);
    case O_CONFIG:
        break; /* handled before */
    default:
        return cli_usage_error("%s: unknown option", where);
    }
    return 0;
}

/* Config file: one option a line, "name = value" or "name value" or "name";
 * '#' starts a comment. Names are the long options without "--". */
static int load_config(check_cfg_t *c, const char *path, bool must_exist)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!must_exist && errno == ENOENT)
            return 0;
        return cli_usage_error("cannot read config file %s: %s", path, strerror(errno));
    }
    char line[2048];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char where[1200];
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = cli_usage_error("%s: line too long", where);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        mp_str_trim(line);
        if (!*line)
            continue;
        char *val = line + strcspn(line, " \t=");
        if (*val) {
            *val++ = '\0';
            while (*val == ' ' || *val == '\t' || *val == '=')
                val++;
        }
        const struct option *o = long_opts;
        while (o->name && strcmp(o->name, line) != 0)
            o++;
        if (!o->name || o->val == O_CONFIG || o->val == O_HELP) {
            rc = cli_usage_error("%s: unknown option '%s'", where, line);
            break;
        }
        if (o->has_arg == required_argument && !*val) {
            rc = cli_usage_error("%s: '%s' needs a value", where, line);
            break;
        }
        if (o->has_arg == no_argument && *val && strcmp(val, "true") != 0 &&
            strcmp(val, "yes") != 0) {
            rc = cli_usage_error("%s: '%s' takes no value", where, line);
            break;
        }
        if ((rc = apply_opt(c, o->val, val, where)) != 0)
            break;
    }
    fclose(f);
    return rc;
}

static void log_to_stderr(mp_log_level_t level, const char *msg, void *arg)
{
    (void)arg;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "mailprobe: %s: %s\n", names[level], msg);
}

static int exit_for(vd_verdict_t v)
{
    switch (v) {
    case VD_DELIVERABLE: return EXIT_ALL_DELIVERABLE;
    case VD_UNDELIVERABLE: return EXIT_UNDELIVERABLE;
    case VD_UNKNOWN: return EXIT_UNKNOWN;
    case VD_RISKY: return EXIT_RISKY;
    }
    return EXIT_UNKNOWN;
}

/* Undeliverable > unknown > risky > deliverable. */
static int exit_rank(int code)
{
    switch (code) {
    case EXIT_UNDELIVERABLE: return 3;
    case EXIT_UNKNOWN: return 2;
    case EXIT_RISKY: return 1;
    default: return 0;
    }
}

static void print_trace(const vd_result_t *r)
{
    for (unsigned i = 0; i < r->nlines; i++) {
        const vd_line_t *l = &r->lines[i];
        fprintf(stderr, "[%s %s +%llums] %c ", r->email, l->ip, (unsigned long long)l->t_ms,
                l->dir);
        for (const char *p = l->line; *p; p++)
            fputc(((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p, stderr);
        fputc('\n', stderr);
    }
}

static void submit_more(check_run_t *run);

static void flush_ready(check_run_t *run)
{
    while (run->printed < run->n && run->res[run->printed]) {
        vd_result_t *r = run->res[run->printed];
        if (run->cfg->trace)
            print_trace(r);
        if (run->cfg->json) {
            char *s = vd_to_json(r, run->cfg->trace);
            if (s) {
                puts(s);
                free(s);
            } else {
                run->failed = true;
            }
        } else {
            vd_print_human(r, stdout, run->colour);
        }
        fflush(stdout);
        int code = exit_for(r->verdict);
        if (exit_rank(code) > exit_rank(run->worst))
            run->worst = code;
        vd_result_free(r);
        run->res[run->printed] = NULL;
        free(run->addrs[run->printed]);
        run->addrs[run->printed] = NULL;
        run->printed++;
    }
}

typedef struct {
    check_run_t *run;
    size_t idx;
} slot_arg_t;

static void on_result(vd_result_t *res, void *arg)
{
    slot_arg_t *sa = arg;
    check_run_t *run = sa->run;
    run->res[sa->idx] = res;
    free(sa);
    flush_ready(run);
    submit_more(run);
}

static void submit_more(check_run_t *run)
{
    while (run->submitted < run->n && run->submitted - run->printed < CHECK_WINDOW) {
        slot_arg_t *sa = malloc(sizeof *sa);
        if (!sa) {
            run->failed = true;
            return;
        }
        sa->run = run;
        sa->idx = run->submitted;
        mp_status_t st = engine_check(run->engine, run->addrs[run->submitted], on_result, sa);
        if (st) {
            free(sa);
            fprintf(stderr, "mailprobe: %s\n", mp_strerror(st));
            run->failed = true;
            return;
        }
        run->submitted++;
    }
}

static int add_addr(check_run_t *run, const char *s)
{
    if (run->n == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 16;
        char **na = realloc(run->addrs, cap * sizeof *na);
        if (!na)
            return -1;
        run->addrs = na;
        run->cap = cap;
    }
    run->addrs[run->n] = strdup(s);
    if (!run->addrs[run->n])
        return -1;
    run->n++;
    return 0;
}

static int read_stdin(check_run_t *run)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            continue;
        if (add_addr(run, p) != 0) {
            free(line);
            return -1;
        }
    }
    free(line);
    return ferror(stdin) ? -1 : 0;
}

static int out_of_memory(void)
{
    fprintf(stderr, "mailprobe: out of memory\n");
    return EXIT_RUNTIME;
}

static void default_helo(char *buf, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0])
        mp_strlcpy(host, "localhost", sizeof host);
    host[sizeof host - 1] = '\0';
    mp_strlcpy(buf, host, size);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int cli_check(int argc, char **argv)
{
    static check_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    engine_opts_default(&cfg.eo);
    cfg.colour = -1;

    /* pass 1: find --config; pass 2 (after the file): every flag, so flags win */
    opterr = 0;
    optind = 0;
    int id;
    while ((id = getopt_long(argc, argv, "+v", long_opts, NULL)) != -1) {
        if (id == O_CONFIG) {
            mp_strlcpy(cfg.config, optarg, sizeof cfg.config);
            cfg.config_given = true;
        }
    }
    int rc = 0;
    if (cfg.config_given) {
        rc = load_config(&cfg, cfg.config, true);
    } else if (getenv("MAILPROBE_CONFIG") && *getenv("MAILPROBE_CONFIG")) {
        rc = load_config(&cfg, getenv("MAILPROBE_CONFIG"), true);
    } else if (getenv("HOME")) {
        char path[1024];
        snprintf(path, sizeof path, "%s/.config/mailprobe/config", getenv("HOME"));
        rc = load_config(&cfg, path, false);
    }
    if (rc)
        return rc;

    opterr = 0;
    optind = 0;
    while ((id = getopt_long(argc, argv, ":v", long_opts, NULL)) != -1) {
        if (id == '?')
            return cli_usage_error("check: unknown option '%s' (try --help)", argv[optind - 1]);
        if (id == ':')
            return cli_usage_error("check: option '%s' needs a value", argv[optind - 1]);
        if (id == 'v')
            id = O_VERBOSE;
        char where[64];
        snprintf(where, sizeof where, "check");
        if ((rc = apply_opt(&cfg, id, optarg ? optarg : "", where)) != 0)
            return rc;
    }
    if (cfg.help) {
        print_help();
        return 0;
    }
    if (optind >= argc)
        return cli_usage_error("check: no address given (try 'mailprobe check --help')");

    if (!cfg.helo[0])
        default_helo(cfg.helo, sizeof cfg.helo);
    cfg.eo.helo = cfg.helo;
    cfg.eo.mail_from = cfg.from;
    cfg.eo.dns.server = cfg.dns[0] ? cfg.dns : NULL;
    cfg.eo.keep_transcript = cfg.trace;
    mp_log_set(log_to_stderr, cfg.verbose ? MP_LOG_DEBUG : MP_LOG_WARN, NULL);

    userlist_t *allow = NULL, *deny = NULL;
    geo_db_t *geo = NULL;
    char err[1024];
    rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        const char **files = pass ? cfg.deny : cfg.allow;
        size_t n = pass ? cfg.ndeny : cfg.nallow;
        userlist_t **ul = pass ? &deny : &allow;
        for (size_t i = 0; i < n && !rc; i++) {
            if (!*ul && userlist_new(ul) != MP_OK) {
                rc = cli_usage_error("out of memory");
                break;
            }
            if (userlist_load(*ul, files[i], err, sizeof err) != MP_OK)
                rc = cli_usage_error("%s list: %s", pass ? "deny" : "allow", err);
        }
    }
    if (!rc && cfg.ngeoip) {
        geo = geo_open(cfg.geoip, cfg.ngeoip, err, sizeof err);
        if (!geo)
            rc = cli_usage_error("%s", err);
    }
    if (rc) {
        userlist_free(allow);
        userlist_free(deny);
        return rc;
    }
    cfg.eo.allow = allow;
    cfg.eo.deny = deny;
    cfg.eo.geo = geo;

    check_run_t run;
    memset(&run, 0, sizeof run);
    run.cfg = &cfg;
    bool stdin_used = false;
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            if (stdin_used)
                return cli_usage_error("check: '-' given twice");
            stdin_used = true;
            if (read_stdin(&run) != 0) {
                fprintf(stderr, "mailprobe: cannot read addresses from stdin: %s\n",
                        strerror(errno));
                return EXIT_RUNTIME;
            }
        } else if (add_addr(&run, argv[i]) != 0) {
            return out_of_memory();
        }
    }
    if (run.n == 0)
        return cli_usage_error("check: no address on stdin");
    run.res = calloc(run.n, sizeof *run.res);
    if (!run.res)
        return out_of_memory();
    run.colour = cfg.colour < 0 ? (isatty(STDOUT_FILENO) && !getenv("NO_COLOR")) : cfg.colour;
    run.worst = EXIT_ALL_DELIVERABLE;

    signal(SIGPIPE, SIG_IGN);
    run.base = event_base_new();
    if (!run.base) {
        fprintf(stderr, "mailprobe: cannot create the event loop\n");
        return EXIT_RUNTIME;
    }
    mp_status_t st;
    run.engine = engine_new(run.base, &cfg.eo, &st);
    if (!run.engine) {
        fprintf(stderr, "mailprobe: %s\n", mp_strerror(st));
        event_base_free(run.base);
        return EXIT_RUNTIME;
    }
    struct event *sigint = evsignal_new(run.base, SIGINT, on_signal, run.base);
    struct event *sigterm = evsignal_new(run.base, SIGTERM, on_signal, run.base);
    if (sigint)
        evsignal_add(sigint, NULL);
    if (sigterm)
        evsignal_add(sigterm, NULL);

    submit_more(&run);
    while (run.printed < run.n && !run.failed) {
        if (event_base_loop(run.base, EVLOOP_ONCE) != 0)
            break;
        if (event_base_got_break(run.base))
            break;
    }
    bool interrupted = run.printed < run.n;
    if (interrupted)
        fprintf(stderr, "mailprobe: interrupted: %zu of %zu address(es) printed\n",
                run.printed, run.n);

    engine_free(run.engine);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    event_base_free(run.base);
    for (size_t i = 0; i < run.n; i++) {
        free(run.addrs[i]);
        vd_result_free(run.res[i]);
    }
    free(run.addrs);
    free(run.res);
    userlist_free(allow);
    userlist_free(deny);
    geo_close(geo);
    if (run.failed || interrupted)
        return interrupted ? 130 : EXIT_RUNTIME;
    return run.worst;
}
