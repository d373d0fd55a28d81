/*
 * options.c - options shared by the commands, the config file, and what they load.
 * See options.h.
 */
#include "cli/options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fleet/fleet.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

enum {
    O_JSON = 1000, O_TRACE, O_DNS, O_HELO, O_FROM, O_TIMEOUT, O_CONNECT_TIMEOUT,
    O_MAX_TIME, O_GREYLIST_WAIT, O_ALLOW_PRIVATE, O_NO_STARTTLS, O_MAX_SESSIONS,
    O_PER_SERVER, O_PORT, O_OFFLINE, O_ROLE_RISKY, O_CONFIG, O_COLOR, O_NO_COLOR,
    O_VERBOSE, O_HELP, O_NO_PROBE, O_GEOIP, O_DENY, O_ALLOW, O_RCPT_PER_SESSION, O_RCPT_PER_TXN,
    O_MIN_INTERVAL, O_PER_HOST, O_OUTPUT, O_FORMAT, O_COLUMN, O_NAME_COLUMN, O_SPLIT, O_STORE, O_RESUME, O_MAX_AGE, O_NO_PROGRESS,
    O_LISTEN, O_TOKENS, O_RATE_LIMIT, O_MAX_BODY, O_WAIT, O_LOG_FORMAT,
    O_ALLOW_PRIVATE_HOOKS, O_REQUEST_TIMEOUT, O_MAX_PER_CLIENT, O_MAX_CONNS, O_SOURCE, O_PROXY,
    O_REF_MX, O_DNSBL, O_DNSBL_DNS, O_MYIP_DNS, O_MYIP_NAME,
    O_SESSION_ERRORS, O_REUSE_TIME, O_REUSE_COUNT, O_IDLE_TIME,
    O_REDIS, O_CAP_MINUTE, O_CAP_HOUR, O_CAP_DAY, O_CLAIM_IDLE, O_MAX_DELIVERIES, O_BATCHES,
    O_POOL, O_END
};

_Static_assert(O_END - O_JSON <= 80, "cli_cfg_t.origin is too small");

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
    {"log-format", required_argument, NULL, O_LOG_FORMAT},
    {"allow-private-webhooks", no_argument, NULL, O_ALLOW_PRIVATE_HOOKS},
    {"request-timeout", required_argument, NULL, O_REQUEST_TIMEOUT},
    {"max-per-client", required_argument, NULL, O_MAX_PER_CLIENT},
    {"max-connections", required_argument, NULL, O_MAX_CONNS},
    {"source", required_argument, NULL, O_SOURCE},
    {"proxy", required_argument, NULL, O_PROXY},
    {"reference-mx", required_argument, NULL, O_REF_MX},
    {"dnsbl", required_argument, NULL, O_DNSBL},
    {"dnsbl-dns", required_argument, NULL, O_DNSBL_DNS},
    {"myip-dns", required_argument, NULL, O_MYIP_DNS},
    {"myip-name", required_argument, NULL, O_MYIP_NAME},
    {"session-errors", required_argument, NULL, O_SESSION_ERRORS},
    {"session-reuse-time", required_argument, NULL, O_REUSE_TIME},
    {"session-reuse-count", required_argument, NULL, O_REUSE_COUNT},
    {"idle-time", required_argument, NULL, O_IDLE_TIME},
    {"redis", required_argument, NULL, O_REDIS},
    {"sessions-per-minute", required_argument, NULL, O_CAP_MINUTE},
    {"sessions-per-hour", required_argument, NULL, O_CAP_HOUR},
    {"sessions-per-day", required_argument, NULL, O_CAP_DAY},
    {"claim-idle", required_argument, NULL, O_CLAIM_IDLE},
    {"max-deliveries", required_argument, NULL, O_MAX_DELIVERIES},
    {"batches", required_argument, NULL, O_BATCHES},
    {"pool", no_argument, NULL, O_POOL},
    {NULL, 0, NULL, 0},
};

/* Which commands take an option (`config` takes them all, to show their effect). */
static unsigned opt_cmds(int id)
{
    if (id == O_CONFIG || id == O_HELP || id == O_VERBOSE || id == O_LOG_FORMAT)
        return CMD_ALL;
    switch (id) {
    case O_OUTPUT: case O_FORMAT: case O_COLUMN: case O_NAME_COLUMN: case O_SPLIT: case O_RESUME:
    case O_NO_PROGRESS:
        return CMD_BULK | CMD_CONFIG;
    case O_STORE:
        return CMD_CHECK | CMD_BULK | CMD_SERVE | CMD_CONFIG;
    case O_MAX_AGE:
        return CMD_BULK | CMD_SERVE | CMD_CONFIG;
    case O_CLAIM_IDLE: case O_MAX_DELIVERIES: case O_BATCHES:
        return CMD_WORKER | CMD_CONFIG;
    case O_POOL:
        return CMD_BULK | CMD_SERVE | CMD_CONFIG;
    case O_LISTEN: case O_TOKENS: case O_RATE_LIMIT: case O_MAX_BODY: case O_WAIT:
    case O_ALLOW_PRIVATE_HOOKS: case O_REQUEST_TIMEOUT: case O_MAX_PER_CLIENT:
    case O_MAX_CONNS:
        return CMD_SERVE | CMD_CONFIG;
    case O_JSON:
        return CMD_CHECK | CMD_DOCTOR | CMD_CONFIG;
    case O_TRACE: case O_COLOR: case O_NO_COLOR:
        return CMD_CHECK | CMD_CONFIG;
    case O_REF_MX: case O_DNSBL: case O_DNSBL_DNS:
        return CMD_DOCTOR | CMD_CONFIG;
    case O_DNS: case O_HELO: case O_FROM: case O_TIMEOUT: case O_MYIP_DNS: case O_MYIP_NAME:
    case O_SOURCE: case O_PROXY:
        return CMD_ALL;   /* the doctor's too; myip: the quick checks of the others */
    default:
        return CMD_CHECK | CMD_BULK | CMD_SERVE | CMD_WORKER | CMD_CONFIG;
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


/* Keep a copy of a repeatable doctor option's value. */
static int add_item(const char **arr, size_t *n, const char *v, const char *opt,
                    const char *where)
{
    if (*n >= DOC_LIST_MAX)
        return cli_usage_error("%s: %s given more than %d times", where, opt, DOC_LIST_MAX);
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

/* --source ADDR[=HELO] / --proxy socks5://...: parsed, a source address bound once to
 * see that it is ours, appended to the egress list. 0 or EXIT_USAGE. */
static int add_egress(cli_cfg_t *c, int id, const char *v, const char *where)
{
    const char *opt = id == O_SOURCE ? "--source" : "--proxy";
    char err[512];
    if (c->negress >= NET_EGRESS_MAX)
        return cli_usage_error("%s: at most %d --source/--proxy in all", where, NET_EGRESS_MAX);
    if (!c->egress && !(c->egress = calloc(NET_EGRESS_MAX, sizeof *c->egress)))
        return cli_usage_error("out of memory");
    net_egress_t *eg = &c->egress[c->negress];
    mp_status_t st = id == O_SOURCE ? net_egress_parse_source(v, eg, err, sizeof err)
                                    : net_egress_parse_proxy(v, eg, err, sizeof err);
    if (st == MP_OK)
        st = net_egress_check(eg, err, sizeof err);
    if (st != MP_OK)
        return cli_usage_error("%s: %s %s", where, opt, err);
    c->negress++;
    c->eo.egress = c->egress;
    c->eo.negress = c->negress;
    return 0;
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
        c->timeout_ms = n;
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
    case O_NO_PROBE: /* both control recipients: one RCPT per address */
        c->eo.catch_all_probe = false;
        c->eo.postmaster_control = false;
        break;
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
    case O_SOURCE: case O_PROXY: return add_egress(c, id, v, where);
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
    case O_SESSION_ERRORS:
        if (!mp_parse_uint(v, 2, 100, &n))
            return cli_usage_error("%s: --session-errors needs a number 2..100", where);
        c->eo.session_errors = (unsigned)n;
        break;
    case O_REUSE_TIME:
        if (!mp_parse_duration_ms(v, &n) || n < 1 || n > 3600000)
            return cli_usage_error("%s: --session-reuse-time needs a duration up to 1h "
                                   "(e.g. 300s)", where);
        c->eo.reuse_time_ms = (unsigned)n;
        break;
    case O_REUSE_COUNT:
        if (!mp_parse_uint(v, 1, 1000, &n))
            return cli_usage_error("%s: --session-reuse-count needs a number 1..1000", where);
        c->eo.reuse_count = (unsigned)n;
        break;
    case O_CLAIM_IDLE:
        if (!mp_parse_duration_ms(v, &n) || n < 500 || n > 86400000)
            return cli_usage_error("%s: --claim-idle needs a duration from 500ms to 24h "
                                   "(e.g. 2m)", where);
        c->claim_idle_ms = n;
        break;
    case O_MAX_DELIVERIES:
        if (!mp_parse_uint(v, 1, 100, &n))
            return cli_usage_error("%s: --max-deliveries needs a number 1..100", where);
        c->max_deliveries = (unsigned)n;
        break;
    case O_BATCHES:
        if (!mp_parse_uint(v, 1, 1000, &n))
            return cli_usage_error("%s: --batches needs a number 1..1000", where);
        c->batches = (unsigned)n;
        break;
    case O_IDLE_TIME:
        if (!mp_parse_duration_ms(v, &n) || n < 1 || n > 300000)
            return cli_usage_error("%s: --idle-time needs a duration up to 300s (e.g. 2s)",
                                   where);
        c->eo.idle_time_ms = (unsigned)n;
        break;
    case O_REDIS: {
        fleet_url_t u;
        char err[256];
        if (fleet_url_parse(v, &u, err, sizeof err) != MP_OK ||
            mp_strlcpy(c->redis, v, sizeof c->redis) >= sizeof c->redis)
            return cli_usage_error("%s: --redis %s", where, err);
        /* shown by `mailprobe config` without its password */
        snprintf(c->redis_shown, sizeof c->redis_shown, "redis://%s%s%s%s:%u/%u", u.user,
                 u.pass[0] ? ":***" : "", u.user[0] || u.pass[0] ? "@" : "", u.host, u.port,
                 u.db);
        c->eo.redis_url = c->redis;
        break;
    }
    case O_CAP_MINUTE: case O_CAP_HOUR: case O_CAP_DAY: {
        const char *name = id == O_CAP_MINUTE ? "minute" : id == O_CAP_HOUR ? "hour" : "day";
        if (!mp_parse_uint(v, 0, 100000000, &n))
            return cli_usage_error("%s: --sessions-per-%s needs a number (0 = no cap)", where,
                                   name);
        unsigned *cap = id == O_CAP_MINUTE ? &c->eo.caps.per_minute
                        : id == O_CAP_HOUR ? &c->eo.caps.per_hour : &c->eo.caps.per_day;
        *cap = (unsigned)n;
        break;
    }
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
    case O_POOL: c->pool = true; break;
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
    case O_LOG_FORMAT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return cli_usage_error("%s: --log-format is text or json, not '%s'", where, v);
        c->log_json = strcmp(v, "json") == 0;
        break;
    case O_ALLOW_PRIVATE_HOOKS: c->allow_private_hooks = true; break;
    case O_REQUEST_TIMEOUT:
        if (!mp_parse_duration_ms(v, &n) || n < 100 || n > 3600000)
            return cli_usage_error("%s: --request-timeout needs a duration from 100ms to 1h, "
                                   "got '%s'", where, v);
        c->request_timeout_ms = n;
        break;
    case O_MAX_PER_CLIENT:
        if (!mp_parse_uint(v, 1, 1000000, &n))
            return cli_usage_error("%s: --max-per-client needs a number of connections "
                                   "(1 or more), got '%s'", where, v);
        c->max_per_client = (unsigned)n;
        break;
    case O_MAX_CONNS:
        if (!mp_parse_uint(v, 8, 1u << 24, &n))
            return cli_usage_error("%s: --max-connections needs a number from 8, got '%s'",
                                   where, v);
        c->max_conns = (size_t)n;
        break;
    case O_REF_MX:
        if (!*v || strpbrk(v, " \t/@"))
            return cli_usage_error("%s: --reference-mx needs HOST[:PORT], got '%s'", where, v);
        return add_item(c->reference_mx, &c->nreference_mx, v, "--reference-mx", where);
    case O_DNSBL:
        if (!*v || !strchr(v, '.') || strpbrk(v, " \t/@:"))
            return cli_usage_error("%s: --dnsbl needs a zone (e.g. zen.spamhaus.org), got '%s'",
                                   where, v);
        return add_item(c->dnsbl, &c->ndnsbl, v, "--dnsbl", where);
    case O_DNSBL_DNS:
        if (!*v || mp_strlcpy(c->dnsbl_dns, v, sizeof c->dnsbl_dns) >= sizeof c->dnsbl_dns)
            return cli_usage_error("%s: --dnsbl-dns needs IP[:PORT]", where);
        break;
    case O_MYIP_DNS:
        if (!*v || mp_strlcpy(c->myip_dns, v, sizeof c->myip_dns) >= sizeof c->myip_dns)
            return cli_usage_error("%s: --myip-dns needs IP[:PORT] or 'none'", where);
        break;
    case O_MYIP_NAME:
        if (!*v || mp_strlcpy(c->myip_name, v, sizeof c->myip_name) >= sizeof c->myip_name ||
            strpbrk(v, " \t/@"))
            return cli_usage_error("%s: --myip-name needs a DNS name", where);
        break;
    case O_CONFIG:
        break; /* handled before */
    default:
        return cli_usage_error("%s: unknown option", where);
    }
    return 0;
}

/* Apply one option and remember where it came from (for `mailprobe config`). */
static int apply_from(cli_cfg_t *c, int id, const char *v, const char *where,
                      const char *origin)
{
    int rc = apply_opt(c, id, v, where);
    if (rc || id < O_JSON || id >= O_END)
        return rc;
    cli_origin_t *o = &c->origin[id - O_JSON];
    free(o->value);
    free(o->source);
    /* a proxy is shown by its name, which never holds the password */
    o->value = strdup(id == O_PROXY && c->negress ? c->egress[c->negress - 1].name
                      : id == O_REDIS ? c->redis_shown : v);
    o->source = strdup(origin);
    if (!o->value || !o->source)
        return cli_usage_error("out of memory");
    return 0;
}

/* Config file: one option a line, "name = value" or "name value" or "name";
 * '#' starts a comment. Names are the long options without "--". An option that this
 * command does not take is skipped (one file serves check, bulk and serve). */
static int load_config(cli_cfg_t *c, const char *path, bool must_exist)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!must_exist && errno == ENOENT)
            return 0;
        return cli_usage_error("cannot read config file %s: %s", path, strerror(errno));
    }
    if (c->nfiles < CFG_FILES_MAX)
        c->files[c->nfiles++] = strdup(path);
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
        if (!(opt_cmds(o->val) & c->cmd))
            continue;
        if ((rc = apply_from(c, o->val, val, where, where)) != 0)
            break;
    }
    fclose(f);
    return rc;
}

/* MAILPROBE_<OPTION>: the long name in capitals, '-' as '_' (MAILPROBE_GREYLIST_WAIT).
 * A switch takes 1/true/yes (set) or 0/false/no (leave as it is). Variables of options
 * this command does not take are skipped, like the config file's lines. */
static int load_env(cli_cfg_t *c)
{
    for (const struct option *o = long_opts; o->name; o++) {
        if (o->val == O_CONFIG || o->val == O_HELP || !(opt_cmds(o->val) & c->cmd))
            continue;
        char var[64];
        size_t pos = 0;
        mp_appendf(var, sizeof var, &pos, "MAILPROBE_");
        for (const char *p = o->name; *p && pos + 1 < sizeof var; p++)
            var[pos++] = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        var[pos] = '\0';
        const char *v = getenv(var);
        if (!v || !*v)
            continue;
        if (o->has_arg == no_argument) {
            if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
                continue;
            if (strcmp(v, "1") != 0 && strcmp(v, "true") != 0 && strcmp(v, "yes") != 0)
                return cli_usage_error("%s: a switch takes 1, true, yes, 0, false or no, "
                                       "not '%s'", var, v);
            v = "";
        }
        int rc = apply_from(c, o->val, v, var, var);
        if (rc)
            return rc;
    }
    return 0;
}

/* The files read before the environment and the flags: --config FILE (or
 * $MAILPROBE_CONFIG) alone when given, as ssh -F does; else the system file, then the
 * user's ($XDG_CONFIG_HOME/mailprobe/config, default ~/.config/mailprobe/config). */
static int load_config_files(cli_cfg_t *c)
{
    const char *envcfg = getenv("MAILPROBE_CONFIG");
    if (c->config_given)
        return load_config(c, c->config, true);
    if (envcfg && *envcfg) {
        mp_strlcpy(c->config, envcfg, sizeof c->config);
        return load_config(c, envcfg, true);
    }
    int rc = load_config(c, MP_SYSCONF_FILE, false);
    char path[1024];
    if (!rc && cli_cfg_user_file(path, sizeof path))
        rc = load_config(c, path, false);
    return rc;
}

bool cli_cfg_user_file(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    size_t pos = 0;
    if (xdg && xdg[0] == '/')
        return mp_appendf(out, size, &pos, "%s/mailprobe/config", xdg);
    if (home && *home)
        return mp_appendf(out, size, &pos, "%s/.config/mailprobe/config", home);
    return false;
}

/* The long option that arg (after "--", up to '=') names, exactly or by a unique
 * prefix as getopt_long accepts; NULL when none or ambiguous. */
static const struct option *find_long(const char *arg)
{
    size_t n = strcspn(arg, "=");
    const struct option *hit = NULL;
    for (const struct option *o = long_opts; o->name; o++) {
        if (strncmp(o->name, arg, n) != 0)
            continue;
        if (o->name[n] == '\0')
            return o;
        if (hit)
            return NULL;
        hit = o;
    }
    return hit;
}

/* Put the options first and the operands after them, keeping each group's order, and
 * return where the operands start. An argument that starts with '-' and holds an '@'
 * is an address, not a cluster of short options ("-alice@example.com"), and so is
 * everything after "--" (which stays last among the options so getopt consumes it). */
static int argv_sort(int argc, char **argv)
{
    char **opts = calloc((size_t)argc + 1, sizeof *opts);
    char **ops = calloc((size_t)argc + 1, sizeof *ops);
    if (!opts || !ops) {
        free(opts);
        free(ops);
        return -1;
    }
    int no = 0, nr = 0;
    char *dashdash = NULL;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            ops[nr++] = a;
        } else if (strcmp(a, "--") == 0) {
            dashdash = a;
        } else if (a[1] == '-') {
            opts[no++] = a;
            const struct option *o = find_long(a + 2);
            if (o && o->has_arg == required_argument && !strchr(a, '=') && i + 1 < argc)
                opts[no++] = argv[++i];
        } else if (strchr(a, '@')) {
            ops[nr++] = a;
        } else {
            opts[no++] = a;
            const char *oo = strchr(a + 1, 'o');
            if (oo && oo[1] == '\0' && i + 1 < argc)
                opts[no++] = argv[++i];
        }
    }
    int k = 1;
    for (int i = 0; i < no; i++)
        argv[k++] = opts[i];
    if (dashdash)
        argv[k++] = dashdash;
    int first = k;
    for (int i = 0; i < nr; i++)
        argv[k++] = ops[i];
    free(opts);
    free(ops);
    return first;
}

/* Name the argument getopt refused: a short option inside a cluster ("-vx") has no
 * argv slot of its own, so optopt says which letter it was. */
static int getopt_error(const char *name, int id, char **argv)
{
    if (optopt > 0 && optopt < 256)
        return cli_usage_error(id == ':' ? "%s: option '-%c' needs a value"
                                         : "%s: unknown option '-%c' (try --help)",
                               name, optopt);
    return cli_usage_error(id == ':' ? "%s: option '%s' needs a value"
                                     : "%s: unknown option '%s' (try --help)",
                           name, argv[optind - 1]);
}

static bool stderr_is_journal(void)
{
    static int journal = -1;
    if (journal < 0)
        journal = mp_log_stderr_is_journal();
    return journal == 1;
}

/* The log sink: text or JSON lines on stderr, with priorities when journald reads it. */
static void log_to_stderr(mp_log_level_t level, const char *msg, void *arg)
{
    const cli_cfg_t *c = arg;
    char line[2048];
    size_t n = mp_log_format_line(line, sizeof line, level, msg,
                                  c->log_json ? MP_LOG_JSON : MP_LOG_TEXT,
                                  stderr_is_journal(), mp_wall_s());
    fwrite(line, 1, n, stderr);
}

void cli_log(const cli_cfg_t *c, mp_log_level_t level, const char *fmt, ...)
{
    char msg[1536], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n;
    if (c->log_json) {
        n = mp_log_format_line(line, sizeof line, level, msg, MP_LOG_JSON,
                               stderr_is_journal(), mp_wall_s());
    } else {
        static const char prio[] = {'7', '6', '4', '3'};
        int k = stderr_is_journal()
                    ? snprintf(line, sizeof line, "<%c>mailprobe: %s\n", prio[level], msg)
                    : snprintf(line, sizeof line, "mailprobe: %s\n", msg);
        n = k < 0 ? 0 : (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    }
    fwrite(line, 1, n, stderr);
    fflush(stderr);
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
    if (cmd == CMD_BULK || cmd == CMD_SERVE || cmd == CMD_WORKER)
        c->eo.max_sessions = 100; /* lists span many servers; each still has --per-server */
    mp_strlcpy(c->listen_host, "127.0.0.1", sizeof c->listen_host);
    c->listen_port = 8080;
    c->rate_limit = 20;
    c->max_body = 100u << 20;
    c->wait_ms = 30000;
    c->request_timeout_ms = 30000;
    c->max_per_client = 32;
    if (cmd == CMD_SERVE)
        c->max_age_ms = 600000; /* a repeat call within 10 minutes receives the result */
    c->colour = -1;

    int nopt = argv_sort(argc, argv);
    if (nopt < 0)
        return cli_usage_error("out of memory");

    /* pass 1: find --config; then the files, the environment, and pass 2: every flag,
     * so that each later source wins */
    opterr = 0;
    optind = 0;
    int id;
    while ((id = getopt_long(nopt, argv, "+vo:", long_opts, NULL)) != -1) {
        if (id == O_CONFIG) {
            mp_strlcpy(c->config, optarg, sizeof c->config);
            c->config_given = true;
        }
    }
    int rc = load_config_files(c);
    if (!rc)
        rc = load_env(c);
    if (rc)
        return rc;

    opterr = 0;
    optind = 0;
    while ((id = getopt_long(nopt, argv, ":vo:", long_opts, NULL)) != -1) {
        if (id == '?' || id == ':')
            return getopt_error(name, id, argv);
        if (id == 'v')
            id = O_VERBOSE;
        else if (id == 'o')
            id = O_OUTPUT;
        if ((rc = apply_from(c, id, optarg ? optarg : "", name, "command line")) != 0)
            return rc;
    }
    *first_arg = optind;
    return c->help ? -1 : 0;
}

const char *cli_cfg_option(size_t i, bool *takes_value, unsigned *cmds)
{
    if (i >= sizeof long_opts / sizeof long_opts[0] - 1)
        return NULL;
    *takes_value = long_opts[i].has_arg == required_argument;
    *cmds = opt_cmds(long_opts[i].val);
    return long_opts[i].name;
}

const cli_origin_t *cli_cfg_origin(const cli_cfg_t *c, const char *name)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (strcmp(o->name, name) == 0 && o->val >= O_JSON && o->val < O_END &&
            c->origin[o->val - O_JSON].source)
            return &c->origin[o->val - O_JSON];
    return NULL;
}

/* --redis: reach Redis once before anything is done (the engine connects again), so
 * that an unreachable one is one line and exit 5. */
static int redis_reachable(const char *url)
{
    char err[512];
    struct event_base *base = event_base_new();
    fleet_t *f = base ? fleet_open(base, url, 0, err, sizeof err) : NULL;
    if (!base)
        mp_strlcpy(err, "cannot create the event loop", sizeof err);
    fleet_free(f);
    if (base)
        event_base_free(base);
    if (f)
        return 0;
    fprintf(stderr, "mailprobe: %s\n", err);
    return EXIT_RUNTIME;
}

int cli_cfg_finish(cli_cfg_t *c)
{
    int rc = 0;
    c->helo_given = c->helo[0] != '\0';
    if (!c->helo[0])
        default_helo(c->helo, sizeof c->helo);
    c->eo.helo = c->helo;
    c->eo.mail_from = c->from;
    c->eo.dns.server = c->dns[0] ? c->dns : NULL;
    c->eo.keep_transcript = c->trace;
    mp_log_set(log_to_stderr, c->verbose ? MP_LOG_DEBUG : MP_LOG_WARN, c);
    if (!c->redis[0] && (c->eo.caps.per_minute || c->eo.caps.per_hour || c->eo.caps.per_day))
        return cli_usage_error("--sessions-per-minute/-hour/-day count over a fleet: they "
                               "need --redis");
    if (c->pool && !c->redis[0])
        return cli_usage_error("--pool hands the work to the workers around a Redis: it "
                               "needs --redis URL");
    if (c->redis[0] && !c->eo.offline && (rc = redis_reachable(c->redis)) != 0)
        return rc;

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
    for (size_t i = 0; i < sizeof c->origin / sizeof c->origin[0]; i++) {
        free(c->origin[i].value);
        free(c->origin[i].source);
        c->origin[i].value = c->origin[i].source = NULL;
    }
    for (size_t i = 0; i < c->nfiles; i++)
        free(c->files[i]);
    c->nfiles = 0;
    free(c->egress);
    c->egress = NULL;
    c->negress = 0;
    for (size_t i = 0; i < c->nreference_mx; i++)
        free((char *)c->reference_mx[i]);
    for (size_t i = 0; i < c->ndnsbl; i++)
        free((char *)c->dnsbl[i]);
    c->nreference_mx = c->ndnsbl = 0;
    free(c->startup);
    c->startup = NULL;
}


void cli_cfg_help(unsigned cmd)
{
    (void)cmd;
    fputs(
        "  --helo NAME            name to send in EHLO/HELO (default: the forward-confirmed\n"
        "                         PTR of the egress address, else this host's name)\n"
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
        "  --rcpt-per-session N   addresses one write of a session may carry (default 25)\n"
        "  --rcpt-per-transaction N  RCPTs per transaction; a session carries more in\n"
        "                         further transactions (default: all in one; a server's\n"
        "                         452 4.5.3 lowers it)\n"
        "  --session-errors N     refusals one session may take before it is retired\n"
        "                         (default 9: Postfix slows down past 10, drops at 20)\n"
        "  --session-reuse-time D  no new write on a session older than D\n"
        "                         (default 300s)\n"
        "  --session-reuse-count N  writes (runs) one session carries at most (default 50;\n"
        "                         1 = one write per session)\n"
        "  --idle-time D          how long an idle session waits for the next domain on\n"
        "                         its server address (default 2s)\n"
        "  --min-interval D       between two connections to one server (default 100ms);\n"
        "                         a 421 halves that server's sessions and waits 1 s,\n"
        "                         doubling up to 60 s\n"
        "  --port N               SMTP port (default 25; for test set-ups)\n"
        "  --offline              syntax and address signals only: no DNS, no SMTP\n"
        "  --role-risky           report role accounts (info@, sales@) as risky\n"
        "  --no-catch-all-probe   send no control recipients: neither a random address\n"
        "                         (accept-all domains) nor postmaster@ (what a refusal\n"
        "                         in unknown words means); one RCPT per address\n"
        "  --deny-list FILE       addresses/domains that are undeliverable for you (spam\n"
        "                         traps, past bounces); repeatable\n"
        "  --allow-list FILE      addresses/domains that are deliverable for you; wins\n"
        "                         over the deny list; repeatable\n"
        "  --geoip FILE.mmdb      MaxMind-format database(s) for the MX's country, city\n"
        "                         and network; repeatable (e.g. a City and an ASN file)\n"
        "  --source ADDR[=HELO]   send from this local address (bind before connect), with\n"
        "                         its HELO name; repeatable: each domain keeps one address\n"
        "  --proxy socks5://[USER:PASS@]HOST:PORT[=HELO]  connect through this SOCKS5\n"
        "                         proxy (RFC 1928/1929); repeatable, mixed with --source\n"
        "  --redis redis://[[USER]:PASS@]HOST[:PORT][/DB]  share the per-server limits,\n"
        "                         intervals, 421 penalties, catch-all facts and MX answers\n"
        "                         with every mailprobe on this Redis (a fleet: one\n"
        "                         politeness budget)\n"
        "  --sessions-per-minute N  sessions each source address or proxy may open per\n"
        "                         minute, counted over the fleet (needs --redis; default:\n"
        "                         no cap)\n"
        "  --sessions-per-hour N  the same per hour\n"
        "  --sessions-per-day N   the same per UTC day\n"
        "  --config FILE          read options from FILE alone (default: $MAILPROBE_CONFIG,\n"
        "                         else " MP_SYSCONF_FILE " then\n"
        "                         ~/.config/mailprobe/config); MAILPROBE_<OPTION>\n"
        "                         variables and flags win over files\n"
        "  --myip-dns IP[:PORT]   server that answers --myip-name with the client's address,\n"
        "                         to find the public (egress) address; 'none': use the\n"
        "                         local address (default 208.67.222.222, OpenDNS)\n"
        "  --myip-name NAME       (default myip.opendns.com; A, else TXT)\n"
        "  -v, --verbose          log what the engine does to stderr\n"
        "  --log-format text|json log lines as text or one JSON object each\n"
        "Durations take a unit: 30, 30s, 500ms, 2m, 24h.\n",
        stdout);
}
