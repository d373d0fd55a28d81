/*
 * config.c - `mailprobe config`: the effective settings and where each came from (a
 * file and line, a MAILPROBE_* variable, the command line, or the default), as text or
 * JSON. Reads settings exactly as the other commands do (options.c); checks nothing
 * and opens no store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "store/store.h"
#include "util/str.h"

/* Defaults as a user reads them; options not listed default to off / unset. */
static const char *const defaults[][2] = {
    {"helo", "this host's name"}, {"from", "<> (the null sender)"},
    {"dns", "/etc/resolv.conf"}, {"timeout", "60s"}, {"connect-timeout", "30s"},
    {"max-time", "600s"}, {"greylist-wait", "360s"},
    {"max-sessions", "20 (check), 100 (bulk, serve)"}, {"per-server", "2"},
    {"per-host", "4"}, {"rcpt-per-session", "25"}, {"rcpt-per-transaction", "all"},
    {"min-interval", "100ms"}, {"port", "25"}, {"format", "the input's"},
    {"column", "detected"}, {"max-age", "0 (bulk), 10m (serve)"},
    {"listen", "127.0.0.1:8080"}, {"rate-limit", "20"}, {"max-body", "100M"},
    {"wait", "30s"}, {"log-format", "text"}, {"session-errors", "9"},
    {"session-reuse-time", "300s"}, {"session-reuse-count", "50"}, {"idle-time", "2s"},
};

static const char *default_of(const char *name)
{
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (strcmp(defaults[i][0], name) == 0)
            return defaults[i][1];
    return NULL;
}

static void print_help(void)
{
    fputs("usage: mailprobe config [--json] [options]\n"
          "\n"
          "Print the effective settings and where each came from: " MP_SYSCONF_FILE ",\n"
          "then ~/.config/mailprobe/config ($XDG_CONFIG_HOME), or instead of both the file\n"
          "--config or $MAILPROBE_CONFIG names; then MAILPROBE_<OPTION> variables; then\n"
          "flags. Each later source wins. Any option of check, bulk or serve may be given\n"
          "to see its effect.\n"
          "\n"
          "  --json                 one JSON object instead of text\n"
          "  --config FILE          read options from FILE alone\n",
          stdout);
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

int cli_config(int argc, char **argv)
{
    static cli_cfg_t cfg;
    int first, rc = cli_cfg_parse(&cfg, CMD_CONFIG, "config", argc, argv, &first);
    if (rc == -1) {
        print_help();
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc)
        rc = cli_usage_error("config: unexpected argument '%s' (try --help)", argv[first]);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    char user[1024] = "", store[1024] = "";
    bool have_user = cli_cfg_user_file(user, sizeof user);
    const char *store_src = "default";
    if (cfg.store[0]) {
        snprintf(store, sizeof store, "%s", cfg.store);
        store_src = cli_cfg_origin(&cfg, "store")->source;
    } else if (store_default_path_peek(store, sizeof store) != MP_OK) {
        snprintf(store, sizeof store, "(none: set HOME, XDG_STATE_HOME or --store)");
    }

    json_t *root = json_object(), *files = json_array(), *set = json_object();
    const char *cands[3] = {cfg.config[0] ? cfg.config : MP_SYSCONF_FILE,
                            cfg.config[0] || !have_user ? NULL : user, NULL};
    for (size_t i = 0; cands[i]; i++) {
        bool read = false;
        for (size_t k = 0; k < cfg.nfiles; k++)
            read |= cfg.files[k] && strcmp(cfg.files[k], cands[i]) == 0;
        json_array_append_new(files, json_pack("{s:s, s:b, s:b}", "path", cands[i], "exists",
                                               file_exists(cands[i]), "read", read));
        if (!cfg.json)
            printf("# file %s: %s\n", cands[i],
                   read ? "read" : file_exists(cands[i]) ? "not read" : "absent");
    }
    bool tv;
    unsigned cmds;
    const char *name;
    for (size_t i = 0; (name = cli_cfg_option(i, &tv, &cmds)) != NULL; i++) {
        if (strcmp(name, "help") == 0 || strcmp(name, "config") == 0)
            continue;
        const cli_origin_t *o = cli_cfg_origin(&cfg, name);
        const char *val = o ? (tv ? o->value : "true") : default_of(name);
        const char *src = o ? o->source : "default";
        if (strcmp(name, "store") == 0) {
            val = store;
            src = store_src;
        }
        if (!val)
            val = tv ? "" : "false";
        json_object_set_new(set, name, json_pack("{s:s, s:s}", "value", val, "source", src));
        if (!cfg.json)
            printf("%-22s %-32s # %s\n", name, *val ? val : "(unset)", src);
    }
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "settings", set);
    if (cfg.json) {
        char *s = mp_json_escape_ls(json_dumps(root, JSON_COMPACT));
        if (s)
            puts(s);
        free(s);
    }
    json_decref(root);
    cli_cfg_cleanup(&cfg);
    return 0;
}
