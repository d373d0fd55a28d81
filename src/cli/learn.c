/*
 * learn.c - `mailprobe learn FILE|DIR...`: read bounces and sending-service exports,
 * append hard bounces to the user's deny list (with their date and reason as the line's
 * note) and remember every event in the store's address history.
 *
 * Each event is written as it is found and made durable at the end of every input path
 * (the deny list flushed, the history committed), so a bad file stops the run with its
 * message and a non-zero exit while everything learned before it stays. Does not: check
 * addresses, send anything.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr/addr.h"
#include "cli/cli.h"
#include "intel/userlist.h"
#include "learn/learn.h"
#include "store/history.h"
#include "store/store.h"
#include "util/str.h"
#include "util/strmap.h"

typedef struct {
    bool list;
    FILE *deny;
    const char *deny_path;
    userlist_t *known;   /* the deny list as it was: entries already there are not added */
    strmap_t *added;     /* addresses added by this run */
    history_t *hist;
    size_t hard, soft, delivered, denied, unusable;
    mp_status_t io;      /* first write failure */
} learn_run_t;

static void usage(FILE *out)
{
    fputs("usage: mailprobe learn [options] FILE|DIR...\n"
          "\n"
          "Read bounce messages (RFC 3464 and the common MTA formats; mbox files, Maildir\n"
          "or plain directories, .eml files) and bounce/delivery exports in CSV. Hard\n"
          "bounces (the mailbox or domain does not exist, or is disabled) are appended to\n"
          "the deny list with their date and reason; every event goes to the address\n"
          "history of the job store.\n"
          "\n"
          "options:\n"
          "  --deny-list FILE       the deny list to append hard bounces to (required\n"
          "                         unless --list); use it with `check --deny-list FILE`\n"
          "  --store PATH           the job store holding the history (default:\n"
          "                         ~/.local/state/mailprobe/jobs.sqlite)\n"
          "  --no-history           do not write the history\n"
          "  --list                 print what was found (TSV: source, kind, address,\n"
          "                         status, date, outcome, reason), store nothing\n"
          "  --email-column NAME    CSV: the address column (default: detected)\n"
          "  --type-column NAME     CSV: the event/type column (default: detected)\n"
          "  --reason-column NAME   CSV: the reason/diagnostic column (default: detected)\n"
          "  --date-column NAME     CSV: the date column (default: detected)\n"
          "  -h, --help             this text\n",
          out);
}

static void day_text(int64_t t, char *out, size_t size)
{
    if (!t) {
        mp_strlcpy(out, "date unknown", size);
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, size, "%Y-%m-%d", &tm))
        mp_strlcpy(out, "date unknown", size);
}

static mp_status_t on_event(const learn_event_t *ev, const char *src, void *arg)
{
    learn_run_t *r = arg;
    char day[32];
    day_text(ev->when, day, sizeof day);
    if (r->list) {
        printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", src, learn_kind_name(ev->kind), ev->addr,
               ev->status, day, ev->outcome, ev->reason);
        return MP_OK;
    }
    addr_t *a = malloc(sizeof *a);
    if (!a)
        return MP_ERR_NOMEM;
    bool ok = addr_parse(ev->addr, strlen(ev->addr), a) == ADDR_OK && !a->literal;
    char key[sizeof a->local + sizeof a->domain_ascii + 2];
    size_t pos = 0;
    if (ok)
        ok = mp_appendf(key, sizeof key, &pos, "%s@%s", a->local, a->domain_ascii);
    if (!ok) {
        r->unusable++;
        free(a);
        return MP_OK;
    }
    mp_str_lower(key);
    r->hard += ev->kind == LEARN_HARD;
    r->soft += ev->kind == LEARN_SOFT;
    r->delivered += ev->kind == LEARN_DELIVERED;
    if (r->hist) {
        history_event_t h = {key, learn_kind_name(ev->kind), ev->status, ev->outcome,
                             ev->reason, src, ev->when};
        if (history_put(r->hist, &h) != MP_OK && !r->io)
            r->io = MP_ERR_IO;
    }
    userlist_match_t m;
    if (ev->kind == LEARN_HARD && !strmap_get(r->added, key) &&
        !(userlist_match(r->known, a, &m) && !m.is_domain)) {
        /* "addr  # hard bounce DAY: STATUS REASON" within the deny list's line limit */
        char line[USERLIST_LINE_MAX];
        size_t lp = 0;
        mp_appendf(line, sizeof line, &lp, "%s  # hard bounce %s:%s%s %s", key, day,
                   ev->status[0] ? " " : "", ev->status, ev->reason);
        if (fprintf(r->deny, "%s\n", line) < 0 && !r->io)
            r->io = MP_ERR_IO;
        if (!strmap_put(r->added, key, (void *)1)) {
            free(a);
            return MP_ERR_NOMEM;
        }
        r->denied++;
    }
    free(a);
    return MP_OK;
}

/* Flush the deny list and commit the history: what was learned so far is kept. */
static mp_status_t keep(learn_run_t *r)
{
    mp_status_t st = r->io;
    if (r->deny && fflush(r->deny) != 0)
        st = MP_ERR_IO;
    if (r->hist && history_commit(r->hist) != MP_OK)
        st = MP_ERR_IO;
    return st;
}

int cli_learn(int argc, char **argv)
{
    enum { O_DENY = 256, O_STORE, O_NOHIST, O_LIST, O_ECOL, O_TCOL, O_RCOL, O_DCOL };
    static const struct option opts[] = {{"deny-list", required_argument, NULL, O_DENY},
                                         {"store", required_argument, NULL, O_STORE},
                                         {"no-history", no_argument, NULL, O_NOHIST},
                                         {"list", no_argument, NULL, O_LIST},
                                         {"email-column", required_argument, NULL, O_ECOL},
                                         {"type-column", required_argument, NULL, O_TCOL},
                                         {"reason-column", required_argument, NULL, O_RCOL},
                                         {"date-column", required_argument, NULL, O_DCOL},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    learn_run_t r = {0};
    learn_csv_opts_t csv = {0};
    const char *store = NULL;
    bool no_hist = false;
    int rc = 0, c;
    char err[1400];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_DENY: r.deny_path = optarg; break;
        case O_STORE: store = optarg; break;
        case O_NOHIST: no_hist = true; break;
        case O_LIST: r.list = true; break;
        case O_ECOL: csv.email_col = optarg; break;
        case O_TCOL: csv.type_col = optarg; break;
        case O_RCOL: csv.reason_col = optarg; break;
        case O_DCOL: csv.date_col = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            return cli_usage_error("learn: unknown or incomplete option '%s' (try "
                                   "'mailprobe learn --help')", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("learn: give at least one FILE or DIR (try 'mailprobe learn "
                               "--help')");
    if (!r.list && !r.deny_path)
        return cli_usage_error("learn: --deny-list FILE is required (or --list)");
    if (!r.list) {
        if (userlist_new(&r.known) != MP_OK || !(r.added = strmap_new())) {
            rc = EXIT_RUNTIME;
            goto done;
        }
        /* the existing deny list must load: what is appended must keep it loadable */
        FILE *probe = fopen(r.deny_path, "r");
        if (probe) {
            fclose(probe);
            if (userlist_load(r.known, r.deny_path, err, sizeof err) != MP_OK) {
                rc = cli_usage_error("learn: deny list %s", err);
                goto done;
            }
        }
        if (!(r.deny = fopen(r.deny_path, "a+"))) {
            rc = cli_usage_error("learn: %s: %s", r.deny_path, strerror(errno));
            goto done;
        }
        /* a list whose last line has no newline must not glue it to our first entry */
        if (fseek(r.deny, -1, SEEK_END) == 0 && fgetc(r.deny) != '\n')
            fputc('\n', r.deny);
        fseek(r.deny, 0, SEEK_END);
        if (!no_hist) {
            char path[1024];
            if (store)
                mp_strlcpy(path, store, sizeof path);
            else if (store_default_path(path, sizeof path) != MP_OK) {
                rc = cli_usage_error("learn: cannot find a place for the job store: give "
                                     "--store PATH or --no-history");
                goto done;
            }
            /* a job store first (a new file is given its schema), so that bulk and check can
             * open the same file afterwards; the history table goes beside it */
            store_t *js = NULL;
            if (store_open(path, &js, err, sizeof err) != MP_OK) {
                rc = cli_usage_error("learn: job store %s: %s", path, err);
                goto done;
            }
            store_close(js);
            if (history_open(path, &r.hist, err, sizeof err) != MP_OK) {
                rc = cli_usage_error("learn: job store %s: %s", path, err);
                goto done;
            }
        }
    }
    learn_stats_t stats = {0};
    for (int i = optind; i < argc; i++) {
        mp_status_t st = learn_path_read(argv[i], &csv, on_event, &r, &stats, err, sizeof err);
        mp_status_t kst = keep(&r);
        if (st || kst) {
            fprintf(stderr, "mailprobe: learn: %s (stopped; the %zu deny-list entries and "
                    "the history learned before are kept)\n",
                    st ? (err[0] ? err : mp_strerror(st))
                       : "cannot write the deny list or the history",
                    r.denied);
            rc = st == MP_ERR_CONFIG || st == MP_ERR_LIMIT ? EXIT_USAGE : EXIT_RUNTIME;
            break;
        }
    }
    if (!r.list && !rc)
        fprintf(stderr,
                "learned: %zu messages (%zu bounces), %zu CSV rows (%zu skipped), %zu other "
                "files skipped; %zu hard, %zu soft, %zu delivered, %zu unusable addresses; "
                "%zu added to %s\n",
                stats.messages, stats.bounces, stats.rows, stats.skipped, stats.skipped_files,
                r.hard, r.soft, r.delivered, r.unusable, r.denied, r.deny_path);
done:
    if (r.deny && fclose(r.deny) != 0 && !rc) {
        fprintf(stderr, "mailprobe: learn: %s: %s\n", r.deny_path, strerror(errno));
        rc = EXIT_RUNTIME;
    }
    history_close(r.hist);
    userlist_free(r.known);
    if (r.added)
        strmap_free(r.added, NULL);
    return rc;
}
