/*
 * options.h - the options shared by mailprobe's commands: engine settings, output,
 * where settings come from, and what they load (lists, GeoIP databases).
 *
 * Sources, each later one winning: the system file (MP_SYSCONF_FILE, /etc/mailprobe/
 * config), the user's ($XDG_CONFIG_HOME/mailprobe/config) — or instead of both the one
 * file --config / $MAILPROBE_CONFIG names —, MAILPROBE_<OPTION> variables, then flags.
 * Each option says which commands take it (CMD_CHECK, CMD_BULK…); a flag for another
 * command is a one-line usage error, a file line or variable for one is skipped.
 * Owner: the command; cli_cfg_cleanup frees.
 */
#ifndef MP_CLI_OPTIONS_H
#define MP_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "doctor/doctor.h"
#include "geo/geo.h"
#include "intel/userlist.h"
#include "net/egress.h"
#include "sched/engine.h"
#include "util/log.h"

enum { CMD_CHECK = 1, CMD_BULK = 2, CMD_SERVE = 4, CMD_CONFIG = 8, CMD_DOCTOR = 16,
       CMD_WORKER = 32, CMD_ALL = 63 };

#ifndef MP_SYSCONF_FILE
#define MP_SYSCONF_FILE "/etc/mailprobe/config"
#endif

/* Where an option's value came from: a file and line, a variable, "command line". */
typedef struct {
    char *value, *source;      /* NULL: the default */
} cli_origin_t;

#define CFG_FILES_MAX 8

typedef struct cli_cfg {
    unsigned cmd;              /* CMD_CHECK or CMD_BULK */
    engine_opts_t eo;
    bool json, trace, verbose, help;
    bool log_json;             /* --log-format json */
    int colour;                /* -1 auto */
    char helo[256];
    char from[512];
    char dns[128];
    char config[1024];
    bool config_given;
    const char *geoip[CFG_FILES_MAX];
    size_t ngeoip;
    const char *deny[CFG_FILES_MAX];
    size_t ndeny;
    const char *allow[CFG_FILES_MAX];
    size_t nallow;
    /* bulk */
    char output[1024];
    char format[16];           /* "", "csv" or "ndjson" */
    char column[256];
    char name_column[512]; /* --name-column: FULL or FIRST,LAST (bulkio_names_find) */
    char split_dir[1024];
    char store[1024];
    char resume[64];
    uint64_t max_age_ms;       /* reuse earlier results this fresh (0: never) */
    bool no_progress;
    /* the pool of workers (bulk and serve --pool, worker; the URL is --redis below) */
    bool pool;                 /* --pool: the workers around --redis check, not this process */
    uint64_t claim_idle_ms;    /* worker: --claim-idle (0: the default) */
    unsigned max_deliveries;   /* worker: --max-deliveries (0: the default) */
    unsigned batches;          /* worker: --batches (0: the default) */
    /* serve */
    char listen_host[128];
    unsigned listen_port;
    char tokens[1024];
    double rate_limit;         /* requests per second per token / client (0: none) */
    uint64_t max_body;         /* bytes */
    uint64_t wait_ms;          /* default /v1/check wait */
    bool allow_private_hooks;  /* webhooks may reach loopback/private addresses */
    uint64_t request_timeout_ms; /* a request's head and body must arrive within it */
    unsigned max_per_client;   /* connections per client address */
    size_t max_conns;          /* connections at once (0: from the open files limit) */
    char redis[1024];          /* --redis URL (eo.redis_url points here) */
    char redis_shown[640];     /* the same without its password, for `mailprobe config` */
    net_egress_t *egress;      /* --source, --proxy (checked when parsed), in order */
    size_t negress;
    /* where each option came from, and the files read */
    cli_origin_t origin[80];
    char *files[CFG_FILES_MAX];
    size_t nfiles;
    /* doctor (src/cli/doctor.c; its sources are the --source egresses above); bulk, serve
     * and check use the myip settings too */
    bool helo_given;           /* --helo or 'helo' in the config (set by cli_cfg_finish) */
    uint64_t timeout_ms;       /* --timeout as given (0: not given) */
    const char *reference_mx[DOC_LIST_MAX]; /* --reference-mx (strdup'd) */
    size_t nreference_mx;
    const char *dnsbl[DOC_LIST_MAX];        /* --dnsbl (strdup'd) */
    size_t ndnsbl;
    char dnsbl_dns[128], myip_dns[128], myip_name[256];
    doc_report_t *startup;     /* the quick checks run by cli_cfg_finish (bulk, serve;
                                  check without --helo), NULL when not run */
    /* loaded by cli_cfg_finish */
    userlist_t *allow_list, *deny_list;
    geo_db_t *geo;
} cli_cfg_t;

/**
 * Parse the config file then argv (so flags win) for command cmd ("check" or "bulk" in
 * messages). On success *first_arg is the index of the first operand.
 * @return 0, or an exit code (EXIT_USAGE after a one-line message); -1 when --help was
 *         given (the caller prints its help and exits 0)
 */
int cli_cfg_parse(cli_cfg_t *c, unsigned cmd, const char *name, int argc, char **argv,
                  int *first_arg);

/** Defaults that need the environment (HELO), logging, and the files options name
 *  (lists, GeoIP): 0 or EXIT_USAGE after a one-line message. */
int cli_cfg_finish(cli_cfg_t *c);

/** Free what parse/finish allocated. */
void cli_cfg_cleanup(cli_cfg_t *c);

/** The user's config file path ($XDG_CONFIG_HOME or ~/.config + /mailprobe/config);
 *  false when neither variable is set or the path is too long. */
bool cli_cfg_user_file(char *out, size_t size);

/** The i-th long option (NULL past the last); *takes_value says if it needs one. */
const char *cli_cfg_option(size_t i, bool *takes_value, unsigned *cmds);

/** Where option `name` came from, or NULL when it has its default. */
const cli_origin_t *cli_cfg_origin(const cli_cfg_t *c, const char *name);

/** A message of the command itself ("serving on …"), whatever --verbose says: text as
 *  "mailprobe: MESSAGE", or a JSON line under --log-format json; with the journal's
 *  priority prefix under systemd (see mp_log_format_line). */
void cli_log(const cli_cfg_t *c, mp_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Help lines for the shared options. */
void cli_cfg_help(unsigned cmd);

#endif
