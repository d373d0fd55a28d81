/*
 * doctor.c - `mailprobe doctor`: can this machine verify mail, and what to fix if not.
 * Options (shared config file), one doctor run per --source and --proxy (src/doctor), the
 * report as text (one line per check, then what to do) or JSON; and the quick checks
 * bulk, serve and check run at start (cli_doctor_startup).
 *
 * Exit codes: 0 every check ok or warn, 1 any FAIL, 2 usage, 5 mailprobe itself failed.
 * It never sends MAIL, RCPT or DATA (the doctor module writes EHLO and QUIT only).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "net/egress.h"
#include "util/str.h"

#define STARTUP_TIMEOUT_MS 2000u   /* quick checks at start: per DNS question (2 tries) */

static void print_help(void)
{
    fputs("usage: mailprobe doctor [options]\n"
          "\n"
          "Check that this machine can verify mail: configuration, egress address, port 25,\n"
          "reverse DNS, HELO name, DNS blocklists, MAIL FROM domain, a live EHLO (then\n"
          "QUIT; never MAIL, RCPT or DATA). One line per check: ok, warn or FAIL, each\n"
          "problem with what to do. Exit 0: no FAIL (warnings allowed); 1: a FAIL; 2: usage.\n"
          "\n"
          "  --json                 the report as one JSON object\n"
          "  --helo NAME            the HELO to check (default: the egress address's\n"
          "                         forward-confirmed PTR, else this host's name)\n"
          "  --from ADDRESS         the MAIL FROM to check ('<>': null sender)\n"
          "  --source ADDR[=HELO]   bind the checks' connections and queries to this local\n"
          "                         address (with that HELO); repeatable: one report each\n"
          "  --proxy socks5://[USER:PASS@]HOST:PORT[=HELO]  check this SOCKS5 proxy and go\n"
          "                         through it (with that HELO); repeatable: one report each\n"
          "  --reference-mx HOST[:PORT]  MX hosts for the port-25 and EHLO checks;\n"
          "                         repeatable (default gmail-smtp-in.l.google.com,\n"
          "                         mta5.am0.yahoodns.net,\n"
          "                         outlook-com.olc.protection.outlook.com)\n"
          "  --dnsbl ZONE           DNS blocklist; repeatable (default zen.spamhaus.org,\n"
          "                         b.barracudacentral.org, bl.spamcop.net, psbl.surriel.com)\n"
          "  --dnsbl-dns IP[:PORT]  resolver for blocklist queries (default: --dns)\n"
          "  --timeout DURATION     per DNS try, TCP connect and SMTP reply (default 5s)\n"
          "  --dns IP[:PORT]        resolver for everything else (default /etc/resolv.conf)\n"
          "  --myip-dns IP[:PORT]   server that answers --myip-name with the client address\n"
          "                         (default 208.67.222.222; 'none': the local address)\n"
          "  --myip-name NAME       (default myip.opendns.com; A, else TXT)\n"
          "  --config FILE          read options from FILE (keys as the long options)\n"
          "  -v, --verbose          show every check's details, not only the problems'\n"
          "  --log-format text|json log lines as text or one JSON object each\n",
          stdout);
}

/* The printable address of a --source egress. */
static void egress_addr(const net_egress_t *eg, char *out, size_t size)
{
    const struct sockaddr_storage *ss = &eg->addr;
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (!inet_ntop(ss->ss_family, a, out, (socklen_t)size))
        out[0] = '\0';
}

/* The values given, else the defaults (NULL-terminated): how many. */
static size_t list_or_default(const char **dst, const char *const *given, size_t n,
                              const char *const *defaults)
{
    size_t k = 0;
    for (; n ? k < n : defaults[k] != NULL; k++)
        if (k < DOC_LIST_MAX)
            dst[k] = n ? given[k] : defaults[k];
    return k < DOC_LIST_MAX ? k : DOC_LIST_MAX;
}

/* Doctor options from the command's configuration. */
static void opts_from_cfg(const cli_cfg_t *c, doc_opts_t *o, const char *source, bool quick)
{   /* a proxy, when there is one, is set by the caller */
    memset(o, 0, sizeof *o);
    o->helo = c->helo_given ? c->helo : NULL;
    o->fallback_helo = c->helo;
    o->from = c->from;
    o->source = source;
    o->dns = c->dns[0] ? c->dns : NULL;
    o->dnsbl_dns = c->dnsbl_dns[0] ? c->dnsbl_dns : NULL;
    o->myip_dns = c->myip_dns[0] ? c->myip_dns : NULL;
    o->myip_name = c->myip_name[0] ? c->myip_name : NULL;
    o->quick = quick;
    o->timeout_ms = c->timeout_ms ? (unsigned)c->timeout_ms
                                  : quick ? STARTUP_TIMEOUT_MS : DOC_DEFAULT_TIMEOUT_MS;
    o->nreference_mx = list_or_default(o->reference_mx, c->reference_mx, c->nreference_mx,
                                       doc_default_reference_mx);
    o->ndnsbl = list_or_default(o->dnsbl, c->dnsbl, c->ndnsbl, doc_default_dnsbl);
}

static const char *level_json(doc_level_t l)
{
    switch (l) {
    case DOC_OK: return "ok";
    case DOC_WARN: return "warn";
    case DOC_FAIL: return "fail";
    case DOC_SKIP: return "skip";
    }
    return "?";
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

char *cli_doctor_json(const doc_report_t *reps, size_t n)
{
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr) {
        json_decref(root);
        json_decref(arr);
        return NULL;
    }
    doc_level_t worst = DOC_OK;
    for (size_t i = 0; i < n; i++) {
        const doc_report_t *r = &reps[i];
        if (r->worst > worst)
            worst = r->worst;
        json_t *checks = json_array();
        for (int k = 0; k < DOC_NCHECKS; k++) {
            const doc_check_t *c = &r->check[k];
            json_t *det = json_array();
            for (size_t d = 0; d < c->ndetails; d++)
                json_array_append_new(det, json_string(c->details[d]));
            json_array_append_new(checks, json_pack("{sisssssssososo}", "n", k + 1, "id", c->id,
                                                    "title", c->title, "status",
                                                    level_json(c->level), "message",
                                                    str_or_null(c->message), "fix",
                                                    str_or_null(c->fix), "details", det));
        }
        json_t *o = json_pack("{sososososososososbsososO}", "source", str_or_null(r->source),
                              "proxy", str_or_null(r->proxy),
                              "local_address", str_or_null(r->local_addr), "public_address",
                              str_or_null(r->public_addr), "egress", str_or_null(r->egress),
                              "ptr", str_or_null(r->ptr), "helo", str_or_null(r->helo),
                              "from", json_string(r->from), "helo_from_ptr", r->helo_defaulted,
                              "echoed_address", str_or_null(r->echoed), "status",
                              json_string(level_json(r->worst)), "checks", checks);
        json_decref(checks);
        if (o)
            json_array_append_new(arr, o);
    }
    json_object_set_new(root, "status", json_string(level_json(worst)));
    json_object_set_new(root, "reports", arr);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static void print_text(const doc_report_t *r, bool verbose)
{
    printf("mailprobe doctor: %s %s, egress %s, HELO %s, MAIL FROM <%s>\n",
           r->proxy[0] ? "proxy" : "source", r->proxy[0] ? r->proxy
                                             : r->source[0] ? r->source : "(any)",
           r->egress[0] ? r->egress : "unknown",
           r->helo[0] ? r->helo : "(none)", r->from);
    for (int k = 0; k < DOC_NCHECKS; k++) {
        const doc_check_t *c = &r->check[k];
        printf("%-4s %d %-17s %s\n", doc_level_name(c->level), k + 1, c->title, c->message);
        bool problem = c->level == DOC_WARN || c->level == DOC_FAIL;
        if (problem && c->fix[0])
            printf("       fix: %s\n", c->fix);
        if (problem || verbose)
            for (size_t d = 0; d < c->ndetails; d++)
                printf("       - %s\n", c->details[d]);
    }
}

int cli_doctor(int argc, char **argv)
{
    cli_cfg_t cfg;
    int first = 0;
    int rc = cli_cfg_parse(&cfg, CMD_DOCTOR, "doctor", argc, argv, &first);
    if (rc == -1) {
        print_help();
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first < argc)
        rc = cli_usage_error("doctor: unexpected argument '%s' (doctor takes options only)",
                             argv[first]);
    if (!rc)
        rc = cli_cfg_finish(&cfg);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }
    /* one report per --source and per --proxy (with the HELO given with it), in the
     * order given; none: one for the system's address */
    const net_egress_t *src[NET_EGRESS_MAX];
    size_t nsrc = 0;
    for (size_t i = 0; i < cfg.negress && nsrc < NET_EGRESS_MAX; i++)
        src[nsrc++] = &cfg.egress[i];
    size_t n = nsrc ? nsrc : 1;
    doc_report_t *reps = calloc(n, sizeof *reps);
    if (!reps) {
        cli_cfg_cleanup(&cfg);
        fprintf(stderr, "mailprobe: out of memory\n");
        return EXIT_RUNTIME;
    }
    doc_level_t worst = DOC_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        doc_opts_t o;
        char addr[64] = "";
        bool proxy = nsrc && src[i]->kind == NET_EGRESS_SOCKS5;
        if (nsrc && !proxy)
            egress_addr(src[i], addr, sizeof addr);
        opts_from_cfg(&cfg, &o, addr[0] ? addr : NULL, false);
        o.proxy = proxy ? src[i] : NULL;
        if (nsrc && src[i]->helo[0])
            o.helo = src[i]->helo;
        mp_status_t st = doc_run_sync(&o, &reps[i]);
        if (st == MP_ERR_ARG) {
            rc = cli_usage_error("doctor: a resolver or source address does not parse "
                                 "(--dns, --dnsbl-dns, --myip-dns, --source)");
        } else if (st != MP_OK) {
            fprintf(stderr, "mailprobe: doctor: %s\n", mp_strerror(st));
            rc = EXIT_RUNTIME;
        } else if (reps[i].worst > worst) {
            worst = reps[i].worst;
        }
    }
    if (!rc) {
        if (cfg.json) {
            char *text = cli_doctor_json(reps, n);
            if (text)
                printf("%s\n", text);
            free(text);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (i)
                    printf("\n");
                print_text(&reps[i], cfg.verbose);
            }
            printf("result: %s\n", worst == DOC_FAIL ? "FAIL (fix the lines marked FAIL)"
                                   : worst == DOC_WARN ? "ok, with warnings"
                                                       : "ok");
        }
        rc = worst == DOC_FAIL ? 1 : 0;
    }
    free(reps);
    cli_cfg_cleanup(&cfg);
    return rc;
}

void cli_doctor_warn(const cli_cfg_t *c)
{
    const doc_report_t *rep = c->startup;
    if (!rep)
        return;
    static const doc_check_id_t quick[] = { DOC_CONFIG, DOC_RDNS, DOC_HELO };
    for (size_t i = 0; i < sizeof quick / sizeof quick[0]; i++) {
        const doc_check_t *k = &rep->check[quick[i]];
        if (k->level != DOC_WARN && k->level != DOC_FAIL)
            continue;
        cli_log(c, k->level == DOC_FAIL ? MP_LOG_ERROR : MP_LOG_WARN, "doctor: %s %s: %s%s%s",
                doc_level_name(k->level), k->title, k->message, k->fix[0] ? "; fix: " : "",
                k->fix);
    }
}

void cli_doctor_startup(cli_cfg_t *c, bool warn)
{
    doc_opts_t o;
    /* the first --source is the identity judged (the engine binds to it, with its HELO) */
    const net_egress_t *first = NULL;
    for (size_t i = 0; i < c->negress && !first; i++)
        if (c->egress[i].kind == NET_EGRESS_SOURCE)
            first = &c->egress[i];
    char addr[64] = "";
    if (first)
        egress_addr(first, addr, sizeof addr);
    opts_from_cfg(c, &o, first ? addr : NULL, true);
    if (first && first->helo[0])
        o.helo = first->helo;
    doc_report_t *rep = malloc(sizeof *rep);
    if (!rep || doc_run_sync(&o, rep) != MP_OK) {
        free(rep);
        return;
    }
    free(c->startup);
    c->startup = rep;
    /* the PTR becomes the default HELO when it is the one identity: this machine's
     * address, or one --source (a proxy's public address is not this machine's, and
     * is known only through the proxy: 'mailprobe doctor --proxy') */
    bool own = first ? c->negress == 1 : c->negress == 0;
    bool bare_proxy = false;   /* a proxy without =HELO takes c->helo */
    for (size_t i = 0; i < c->negress; i++)
        bare_proxy = bare_proxy ||
                     (c->egress[i].kind == NET_EGRESS_SOCKS5 && !c->egress[i].helo[0]);
    if (!c->helo_given && rep->helo_defaulted && own)
        mp_strlcpy(c->helo, rep->ptr, sizeof c->helo);
    if (c->cmd == CMD_CHECK) {
        if (!c->helo_given && bare_proxy)
            cli_log(c, MP_LOG_WARN, "warning: no --helo, and a --proxy without =HELO: HELO %s "
                                    "through it (see 'mailprobe doctor --proxy')", c->helo);
        else if (!rep->helo_defaulted && !(first && first->helo[0]))
            cli_log(c, MP_LOG_WARN, "warning: no --helo, and %s has no forward-confirmed "
                                    "PTR: HELO %s (see 'mailprobe doctor')",
                    rep->egress[0] ? rep->egress : "the egress address", c->helo);
        return;
    }
    if (warn)
        cli_doctor_warn(c);
}
