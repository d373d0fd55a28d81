/*
 * options.c - options shared by the commands, the config file, and what they load.
 * See options.h.
 */
#include "cli/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/log.h"
#include "util/str.h"

enum {
    O_JSON = 1000, O_TRACE, O_DNS, O_HELO, O_FROM, O_TIMEOUT, O_CONNECT_TIMEOUT,
    O_MAX_TIME, O_GREYLIST_WAIT, O_ALLOW_PRIVATE, O_NO_STARTTLS, O_MAX_SESSIONS,
    O_PER_SERVER, O_PORT, O_OFFLINE, O_ROLE_RISKY, O_CONFIG, O_COLOR, O_NO_COLOR,
    O_VERBOSE, O_HELP, O_NO_PROBE, O_GEOIP, O_DENY, O_ALLOW, O_RCPT_PER_SESSION, O_RCPT_PER_TXN,
    O_MIN_INTERVAL, O_PER_HOST, O_OUTPUT, O_FORMAT, O_COLUMN, O_NAME_COLUMN, O_SPLIT, O_STORE, O_RESUME, O_MAX_AGE, O_NO_PROGRESS,
    O_LISTEN, O_TOKENS, O_RATE_LIMIT, O_MAX_BODY, O_WAIT
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
    {"rcpt-per-transaction", required_argument, NULL, O_RCPT_PER_TXN},
    {"geoip", required_argument, NULL, O_GEOIP},
    {"deny-list", required_argument, NULL, O_DENY},
    {"allow-list", required_argument, NULL, O_ALLOW},
    {"min-interval", required_argument, NULL, O_MIN_INTERVAL},
    {"per-host", required_argument, NULL, O_PER_HOST},
    {"output", required_argument, NULL, O_OUTPUT},
    {"format", required_argument, NULL, O_FORMAT},
    {"column", required_argument, NULL, O_COLUMN},
    {"name-column", required_argument, NULL, O_NAME_COLUMN},
    {"split-by-verdict", required_argument, NULL, O_SPLIT},
    {"store", required_argument, NULL, O_STORE},
    {"resume", required_argument, NULL, O_RESUME},
    {"max-age", required_argument, NULL, O_MAX_AGE},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"listen", required_argument, NULL, O_LISTEN},
    {"tokens", required_argument, NULL, O_TOKENS},
    {"rate-limit", required_argument, NULL, O_RATE_LIMIT},
    {"max-body", required_argument, NULL, O_MAX_BODY},
    {"wait", required_argument, NULL, O_WAIT},
    {NULL, 0, NULL, 0},
};

/* Options only one command takes. */
static unsigned opt_cmds(int id)
{
    switch (id) {
    case O_OUTPUT: case O_FORMAT: case O_COLUMN: case O_NAME_COLUMN: case O_SPLIT: case O_RESUME:
    case O_NO_PROGRESS:
        return CMD_BULK;
    case O_STORE: case O_MAX_AGE:
        return CMD_BULK | CMD_SERVE;
    case O_LISTEN: case O_TOKENS: case O_RATE_LIMIT: case O_MAX_BODY: case O_WAIT:
        return CMD_SERVE;
    case O_JSON: case O_TRACE: case O_COLOR: case O_NO_COLOR:
        return CMD_CHECK;
    default:
        return CMD_CHECK | CMD_BULK | CMD_SERVE;
    }
}

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


/* "HOST:PORT", "[V6]:PORT" or ":PORT" (= 127.0.0.1). */
static int parse_listen(const char *v, char *host, size_t size, unsigned *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon)
        return -1;
    size_t hl = (size_t)(colon - v);
    const char *h = v;
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= size)
        return -1;
    if (!hl) {
        mp_strlcpy(host, "127.0.0.1", size);
    } else {
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    uint64_t p;
    if (!mp_parse_uint(colon + 1, 0, 65535, &p))
        return -1;
    *port = (unsigned)p;
    return 0;
}

/* "100", "64K", "100M", "1G" (powers of 1024). */
static bool parse_size(const char *v, uint64_t *out)
{
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *v == '-')
        return false;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024;
    else if (*end == 'G' || *end == 'g')
        mul = 1024 * 1024 * 1024;
    if (mul != 1)
        end++;
    if (*end || n > UINT64_MAX / mul)
        return false;
    *out = n * mul;
    return true;
}

static bool parse_secs(const char *v, uint64_t *ms)
{
    return mp_parse_duration_ms(v, ms) && *ms > 0;
}

/* Apply one option; `where` names its source for error messages. 0 or EXIT_USAGE. */
static int apply_opt(cli_cfg_t *c, int id, const char *v, const char *where)
{
    uint64_t n;
    if (!(opt_cmds(id) & c->cmd)) {
        const struct option *o = long_opts;
        while (o->name && o->val != id)
            o++;
        return cli_usage_error("%s: --%s is not an option of this command", where,
                               o->name ? o->name : "?");
    }
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
    case O_RCPT_PER_TXN:
        if (!mp_parse_uint(v, 1, 99, &n))
            return cli_usage_error("%s: --rcpt-per-transaction needs a number 1..99", where);
        c->eo.rcpt_per_txn = (unsigned)n;
        break;
    case O_GEOIP: return add_file(c->geoip, &c->ngeoip, v, "--geoip", where);
    case O_DENY: return add_file(c->deny, &c->ndeny, v, "--deny-list", where);
    case O_ALLOW: return add_file(c->allow, &c->nallow, v, "--allow-list", where);
    case O_PER_HOST:
        if (!mp_parse_uint(v, 1, 1000, &n))
            return cli_usage_error("%s: --per-host needs a number 1..1000", where);
        c->eo.per_host_limit = (unsigned)n;
        break;
    case O_MIN_INTERVAL:
        if (!mp_parse_duration_ms(v, &n) || n > 3600000)
            return cli_usage_error("%s: --min-interval needs a duration (e.g. 100ms)", where);
        c->eo.min_interval_ms = (unsigned)n;
        break;
    case O_OUTPUT:
        if (!*v || mp_strlcpy(c->output, v, sizeof c->output) >= sizeof c->output)
            return cli_usage_error("%s: --output needs a file name", where);
        break;
    case O_FORMAT:
        if (strcmp(v, "csv") != 0 && strcmp(v, "ndjson") != 0)
            return cli_usage_error("%s: --format is csv or ndjson, not '%s'", where, v);
        mp_strlcpy(c->format, v, sizeof c->format);
        break;
    case O_COLUMN:
        if (!*v || mp_strlcpy(c->column, v, sizeof c->column) >= sizeof c->column)
            return cli_usage_error("%s: --column needs a name or a number", where);
        break;
    case O_NAME_COLUMN:
        if (!*v || mp_strlcpy(c->name_column, v, sizeof c->name_column) >= sizeof c->name_column)
            return cli_usage_error("%s: --name-column needs FULL or FIRST,LAST", where);
        break;
    case O_SPLIT:
        if (!*v || mp_strlcpy(c->split_dir, v, sizeof c->split_dir) >= sizeof c->split_dir)
            return cli_usage_error("%s: --split-by-verdict needs a directory", where);
        break;
    case O_STORE:
        if (!*v || mp_strlcpy(c->store, v, sizeof c->store) >= sizeof c->store)
            return cli_usage_error("%s: --store needs a file name", where);
        break;
    case O_RESUME:
        if (!*v || mp_strlcpy(c->resume, v, sizeof c->resume) >= sizeof c->resume)
            return cli_usage_error("%s: --resume needs a job id", where);
        break;
    case O_MAX_AGE:
        if (!mp_parse_duration_ms(v, &n))
            return cli_usage_error("%s: --max-age needs a duration (e.g. 24h), got '%s'",
                                   where, v);
        c->max_age_ms = n;
        break;
    case O_NO_PROGRESS: c->no_progress = true; break;
    case O_LISTEN:
        if (parse_listen(v, c->listen_host, sizeof c->listen_host, &c->listen_port) != 0)
            return cli_usage_error("%s: --listen needs ADDRESS:PORT (e.g. 127.0.0.1:8080, "
                                   "[::1]:8080), got '%s'", where, v);
        break;
    case O_TOKENS:
        if (!*v || mp_strlcpy(c->tokens, v, sizeof c->tokens) >= sizeof c->tokens)
            return cli_usage_error("%s: --tokens needs a file name", where);
        break;
    case O_RATE_LIMIT: {
        char *end;
        double r = strtod(v, &end);
        if (!*v || *end || !(r >= 0) || r > 1e6)
            return cli_usage_error("%s: --rate-limit needs requests per second (0 = no "
                                   "limit), got '%s'", where, v);
        c->rate_limit = r;
        break;
    }
    case O_MAX_BODY:
        if (!parse_size(v, &n) || n < 1024 || n > (uint64_t)1 << 32)
            return cli_usage_error("%s: --max-body needs a size from 1K to 4G (e.g. 100M), "
                                   "got '%s'", where, v);
        c->max_body = n;
        break;
    case O_WAIT:
        if (!mp_parse_duration_ms(v, &n) || n > 300000)
            return cli_usage_error("%s: --wait needs a duration up to 300s, got '%s'", where, v);
        c->wait_ms = n;
        break;
    case O_CONFIG:
        break; /* handled before */
    default:
        return cli_usage_error("%s: unknown option", where);
    }
    return 0;
}

/* Config file: one option a line, "name = value" or "name value" or "name";
 * '#' starts a comment. Names are the long options without "--". */
static int load_config(cli_cfg_t *c, const char *path, bool must_exist)
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

static void default_helo(char *buf, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0])
        mp_strlcpy(host, "localhost", sizeof host);
    host[sizeof host - 1] = '\0';
    mp_strlcpy(buf, host, size);
}

int cli_cfg_parse(cli_cfg_t *c, unsigned cmd, const char *name, int argc, char **argv,
                  int *first_arg)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    engine_opts_default(&c->eo);
    if (cmd == CMD_BULK || cmd == CMD_SERVE)
        c->eo.max_sessions = 100; /* lists span many servers; each still has --per-server */
    mp_strlcpy(c->listen_host, "127.0.0.1", sizeof c->listen_host);
    c->listen_port = 8080;
    c->rate_limit = 20;
    c->max_body = 100u << 20;
    c->wait_ms = 30000;
    if (cmd == CMD_SERVE)
        c->max_age_ms = 600000; /* a repeat call within 10 minutes receives the result */
    c->colour = -1;

    /* pass 1: find --config; pass 2 (after the file): every flag, so flags win */
    opterr = 0;
    optind = 0;
    int id;
    while ((id = getopt_long(argc, argv, "+vo:", long_opts, NULL)) != -1) {
        if (id == O_CONFIG) {
            mp_strlcpy(c->config, optarg, sizeof c->config);
            c->config_given = true;
        }
    }
    int rc = 0;
    if (c->config_given) {
        rc = load_config(c, c->config, true);
    } else if (getenv("MAILPROBE_CONFIG") && *getenv("MAILPROBE_CONFIG")) {
        rc = load_config(c, getenv("MAILPROBE_CONFIG"), true);
    } else if (getenv("HOME")) {
        char path[1024];
        snprintf(path, sizeof path, "%s/.config/mailprobe/config", getenv("HOME"));
        rc = load_config(c, path, false);
    }
    if (rc)
        return rc;

    opterr = 0;
    optind = 0;
    while ((id = getopt_long(argc, argv, ":vo:", long_opts, NULL)) != -1) {
        if (id == '?')
            return cli_usage_error("%s: unknown option '%s' (try --help)", name, argv[optind - 1]);
        if (id == ':')
            return cli_usage_error("%s: option '%s' needs a value", name, argv[optind - 1]);
        if (id == 'v')
            id = O_VERBOSE;
        else if (id == 'o')
            id = O_OUTPUT;
        if ((rc = apply_opt(c, id, optarg ? optarg : "", name)) != 0)
            return rc;
    }
    *first_arg = optind;
    return c->help ? -1 : 0;
}

int cli_cfg_finish(cli_cfg_t *c)
{
    int rc = 0;
    if (!c->helo[0])
        default_helo(c->helo, sizeof c->helo);
    c->eo.helo = c->helo;
    c->eo.mail_from = c->from;
    c->eo.dns.server = c->dns[0] ? c->dns : NULL;
    c->eo.keep_transcript = c->trace;
    mp_log_set(log_to_stderr, c->verbose ? MP_LOG_DEBUG : MP_LOG_WARN, NULL);

    userlist_t *allow = NULL, *deny = NULL;
    geo_db_t *geo = NULL;
    char err[1024];
    for (int pass = 0; pass < 2 && !rc; pass++) {
        const char **files = pass ? c->deny : c->allow;
        size_t n = pass ? c->ndeny : c->nallow;
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
    if (!rc && c->ngeoip) {
        geo = geo_open(c->geoip, c->ngeoip, err, sizeof err);
        if (!geo)
            rc = cli_usage_error("%s", err);
    }
    if (rc) {
        userlist_free(allow);
        userlist_free(deny);
        return rc;
    }
    c->eo.allow = c->allow_list = allow;
    c->eo.deny = c->deny_list = deny;
    c->eo.geo = c->geo = geo;
    return 0;
}

void cli_cfg_cleanup(cli_cfg_t *c)
{
    userlist_free(c->allow_list);
    userlist_free(c->deny_list);
    geo_close(c->geo);
    c->allow_list = c->deny_list = NULL;
    c->geo = NULL;
    for (size_t i = 0; i < c->ngeoip; i++)
        free((char *)c->geoip[i]);
    for (size_t i = 0; i < c->ndeny; i++)
        free((char *)c->deny[i]);
    for (size_t i = 0; i < c->nallow; i++)
        free((char *)c->allow[i]);
    c->ngeoip = c->ndeny = c->nallow = 0;
}


void cli_cfg_help(unsigned cmd)
{
    (void)cmd;
    fputs(
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
        "  --max-sessions N       SMTP sessions open at once in all (default 20 for check,\n"
        "                         100 for bulk)\n"
        "  --per-server N         SMTP sessions open at once per server address (default 2)\n"
        "  --per-host N           SMTP sessions open at once per MX host, all its\n"
        "                         addresses together (default 4)\n"
        "  --rcpt-per-session N   addresses of one domain one session may carry (default 25)\n"
        "  --rcpt-per-transaction N  RCPTs per transaction; a session carries more in\n"
        "                         further transactions (default: all in one; a server's\n"
        "                         452 4.5.3 lowers it)\n"
        "  --min-interval D       between two connections to one server (default 100ms);\n"
        "                         a 421 halves that server's sessions and waits 1 s,\n"
        "                         doubling up to 60 s\n"
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
        "  --verbose              log what the engine does to stderr\n"
        "Durations take a unit: 30, 30s, 500ms, 2m, 24h.\n",
        stdout);
}
