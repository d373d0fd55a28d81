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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "evidence/assess.h"
#include "store/history.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"

#define CHECK_WINDOW 256 /* addresses in flight at once */

typedef struct {
    cli_cfg_t *cfg;
    engine_t *engine;
    struct event_base *base;
    char **addrs;
    size_t n, cap;
    size_t submitted, printed;
    vd_result_t **res;
    bool colour;
    int worst; /* exit code so far */
    bool failed;
    history_t *hist;   /* the job store's address history, when it exists */
    bool hist_tried;
    mp_buf_t spliced;  /* a JSON result with its catch-all assessment */
} check_run_t;

static void print_help(void)
{
    fputs("usage: mailprobe check [options] ADDRESS... | -\n"
          "\n"
          "  --json                 one JSON object per address per line (NDJSON)\n"
          "  --trace                print the SMTP transcript to stderr (and in --json):\n"
          "                         '>' our commands, '<' replies, '*' notes (refused...)\n"
          "  --color, --no-color    force colour on or off (default: on a terminal)\n"
          "  --store PATH           the job store whose address history (mailprobe learn,\n"
          "                         earlier bulk jobs) informs the catch-all assessment\n"
          "                         (default: the bulk job store, when it exists)\n",
          stdout);
    cli_cfg_help(CMD_CHECK);
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

/* The history, opened on first need from --store or the default store, when the file
 * exists (check never creates a store). */
static history_t *run_history(check_run_t *run)
{
    if (run->hist_tried)
        return run->hist;
    run->hist_tried = true;
    char path[1024], err[256];
    if (run->cfg->store[0])
        mp_strlcpy(path, run->cfg->store, sizeof path);
    else if (store_default_path_peek(path, sizeof path) != MP_OK)
        return NULL;
    if (access(path, R_OK) != 0)
        return NULL;
    if (history_open(path, &run->hist, err, sizeof err) != MP_OK)
        fprintf(stderr, "mailprobe: address history %s unavailable: %s\n", path, err);
    return run->hist;
}

/* An accept-all (or anti-enumeration) result's assessment: its history only. */
static bool assess_result(check_run_t *run, const vd_result_t *r, assess_t *a)
{
    if (r->reason != VR_ACCEPT_ALL && r->reason != VR_ANTI_ENUMERATION)
        return false;
    assess_hist_t h = {0, 0};
    history_t *hist = run_history(run);
    if (hist)
        (void)history_summary(hist, r->addr.normalized, &h.proven_at, &h.refused_at);
    assess_single(r->addr.local, &h, (int64_t)time(NULL), a);
    return true;
}

static void print_assessment(const assess_t *a)
{
    printf("  catch-all assessment: %s (probability %.0f %%)", assess_label_name(a->label),
           a->probability * 100.0);
    for (size_t i = 0; i < a->n; i++)
        printf("%s%s %+.2f%s%s", i ? ", " : ": ", assess_factor_name(a->ev[i].factor),
               a->ev[i].weight, a->ev[i].detail[0] ? " " : "", a->ev[i].detail);
    printf("\n");
}

static void flush_ready(check_run_t *run)
{
    while (run->printed < run->n && run->res[run->printed]) {
        vd_result_t *r = run->res[run->printed];
        if (run->cfg->trace)
            print_trace(r);
        assess_t a;
        bool assessed = assess_result(run, r, &a);
        if (run->cfg->json) {
            char *s = vd_to_json(r, run->cfg->trace);
            mp_buf_t aj;
            mp_buf_init(&aj, 64 * 1024);
            if (s && assessed && assess_to_json(&a, &aj) == MP_OK &&
                assess_splice(s, mp_buf_str(&aj), &run->spliced) == MP_OK)
                puts(mp_buf_str(&run->spliced));
            else if (s)
                puts(s);
            else
                run->failed = true;
            mp_buf_cleanup(&aj);
            free(s);
        } else {
            vd_print_human(r, stdout, run->colour);
            if (assessed)
                print_assessment(&a);
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
    char **na = mp_array_grow(run->addrs, &run->cap, run->n, sizeof *na, 16);
    if (!na)
        return -1;
    run->addrs = na;
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

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int cli_check(int argc, char **argv)
{
    static cli_cfg_t cfg;
    int first, rc = cli_cfg_parse(&cfg, CMD_CHECK, "check", argc, argv, &first);
    if (rc == -1) {
        print_help();
        cli_cfg_cleanup(&cfg);
        return 0;
    }
    if (!rc && first >= argc)
        rc = cli_usage_error("check: no address given (try 'mailprobe check --help')");
    if (!rc)
        rc = cli_cfg_finish(&cfg);
    if (rc) {
        cli_cfg_cleanup(&cfg);
        return rc;
    }

    check_run_t run;
    memset(&run, 0, sizeof run);
    run.cfg = &cfg;
    mp_buf_init(&run.spliced, 64u * 1024u * 1024u);
    bool stdin_used = false;
    for (int i = first; i < argc; i++) {
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
    if (!cfg.eo.offline && !cfg.helo_given)
        cli_doctor_startup(&cfg, true);   /* default HELO: the egress address's confirmed PTR */

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
    else
        cli_finish_sessions(run.base, run.engine);

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
    history_close(run.hist);
    mp_buf_cleanup(&run.spliced);
    cli_cfg_cleanup(&cfg);
    if (run.failed || interrupted)
        return interrupted ? 130 : EXIT_RUNTIME;
    return run.worst;
}
