/*
 * csv.c - bounce and delivery exports of sending services, as CSV (RFC 4180, libcsv).
 *
 * The header row names the columns; the common sets are recognised (SendGrid, Mailgun,
 * Amazon SES, Postmark, Mailchimp/Mandrill, Brevo exports): an address column (email,
 * address, recipient...), a type column (type, event, status, bounce_type...), and
 * optionally a reason (reason, diagnostic, smtp_response...) and a date (date, timestamp,
 * created_at...). learn_csv_opts_t names them when the header says otherwise. The
 * delimiter is the first of , ; TAB found in the header.
 *
 * A row's type decides: hard/permanent/bounce/failed -> a failure (judged like a bounce
 * when the row has a reason; an export's own "hard" is trusted when it gives none),
 * soft/transient/deferred/blocked -> soft, delivered/sent/success -> delivered, a
 * status or reply code by its class; any other event (open, click, complaint,
 * unsubscribe) is counted as skipped. Does not: guess columns from row contents.
 */
#include "learn/learn.h"

#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

#define CSV_COLS_MAX 256
#define CSV_FIELD_MAX 4096

enum { COL_EMAIL, COL_TYPE, COL_REASON, COL_DATE, COL__N };

typedef struct {
    const learn_csv_opts_t *o;
    learn_event_cb cb;
    void *arg;
    learn_stats_t *stats;
    const char *path;
    char *err;
    size_t errsize;
    mp_status_t st;
    size_t line;          /* rows seen, header included */
    int col[COL__N];      /* column index, -1 when absent */
    size_t nf;            /* fields in the current row */
    char f[COL__N][CSV_FIELD_MAX];
    char header[CSV_COLS_MAX][64];
    size_t nheader;
} csvr_t;

/* "Bounce Type" -> "bouncetype" */
static void squash(const char *s, size_t len, char *out, size_t size)
{
    size_t w = 0;
    for (size_t i = 0; i < len && w + 1 < size; i++)
        if (mp_is_alnum((unsigned char)s[i]))
            out[w++] = (char)mp_to_lower((unsigned char)s[i]);
    out[w] = '\0';
}

static bool in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const email_names[] = {"email", "emailaddress", "address", "recipient",
                                          "recipientemail", "recipientaddress", "to", "rcpt",
                                          "mail", "bouncedrecipient", NULL};
static const char *const type_names[] = {"type", "bouncetype", "event", "eventtype", "status",
                                         "result", "category", "bouncecategory",
                                         "notificationtype", "deliverystatus", NULL};
static const char *const reason_names[] = {
    "reason", "diagnostic", "diagnosticcode", "bouncereason", "description", "smtpresponse",
    "response", "error", "errormessage", "details", "detail", "message", "bouncemessage", NULL};
static const char *const date_names[] = {"date", "timestamp", "time", "createdat", "eventdate",
                                         "bouncedate", "bouncedat", "occurredat", "datetime",
                                         "eventtime", "bouncetime", NULL};

static void set_cols(csvr_t *r)
{
    const char *const *names[COL__N] = {email_names, type_names, reason_names, date_names};
    const char *given[COL__N] = {r->o ? r->o->email_col : NULL, r->o ? r->o->type_col : NULL,
                                 r->o ? r->o->reason_col : NULL, r->o ? r->o->date_col : NULL};
    for (int c = 0; c < COL__N; c++) {
        r->col[c] = -1;
        char want[64] = "";
        if (given[c])
            squash(given[c], strlen(given[c]), want, sizeof want);
        /* the first listed name wins over later ones, whatever the column order */
        int best = 1 << 20;
        for (size_t i = 0; i < r->nheader; i++) {
            if (given[c]) {
                if (strcmp(r->header[i], want) == 0 && r->col[c] < 0)
                    r->col[c] = (int)i;
                continue;
            }
            for (int k = 0; names[c][k]; k++)
                if (strcmp(r->header[i], names[c][k]) == 0 && k < best) {
                    best = k;
                    r->col[c] = (int)i;
                }
        }
    }
}

static const char *const hard_words[] = {"hard", "hardbounce", "permanent", "bounce", "bounced",
                                         "failed", "failure", "undeliverable", "invalid",
                                         "rejected", "permanentfailure", NULL};
static const char *const soft_words[] = {"soft", "softbounce", "transient", "temporary",
                                         "deferred", "deferral", "delayed", "blocked",
                                         "transientfailure", "undetermined", NULL};
static const char *const ok_words[] = {"delivered", "delivery", "sent", "success", "ok",
                                       "accepted", NULL};

static mp_status_t row_event(csvr_t *r)
{
    learn_event_t ev;
    memset(&ev, 0, sizeof ev);
    const char *a = mp_str_trim(r->f[COL_EMAIL]);
    const char *at = strrchr(a, '@');
    r->stats->rows++;
    if (!at || at == a || !at[1]) {
        r->stats->skipped++;
        return MP_OK;
    }
    mp_strlcpy(ev.addr, a, sizeof ev.addr);
    char t[64];
    const char *type = mp_str_trim(r->f[COL_TYPE]);
    squash(type, strlen(type), t, sizeof t);
    const char *reason = mp_str_trim(r->f[COL_REASON]);
    for (size_t i = 0, w = 0; reason[i] && w + 1 < sizeof ev.reason; i++) {
        unsigned char c = (unsigned char)reason[i];
        ev.reason[w++] = c < 0x20 ? ' ' : (char)c;
        ev.reason[w] = '\0';
    }
    ev.when = r->col[COL_DATE] >= 0 ? learn_date_parse(r->f[COL_DATE]) : 0;
    char status[16] = "";
    bool code_like = (type[0] == '2' || type[0] == '4' || type[0] == '5') &&
                     (type[1] == '.' || (mp_is_digit((unsigned char)type[1]) &&
                                         mp_is_digit((unsigned char)type[2])));
    if (code_like) {
        if (type[1] == '.')
            mp_strlcpy(status, type, sizeof status);
        mp_strlcpy(ev.status, status, sizeof ev.status);
        if (type[0] == '2')
            ev.kind = LEARN_DELIVERED;
        else
            learn_event_judge(&ev, type[0] == '5');
    } else if (in(t, ok_words)) {
        ev.kind = LEARN_DELIVERED;
    } else if (in(t, soft_words)) {
        learn_event_judge(&ev, false);
    } else if (in(t, hard_words)) {
        if (ev.reason[0]) {
            learn_event_judge(&ev, true);
        } else {
            ev.kind = LEARN_HARD; /* the export's own word, with nothing to read it from */
            mp_strlcpy(ev.outcome, "export_hard", sizeof ev.outcome);
            mp_strlcpy(ev.reason, type, sizeof ev.reason);
        }
    } else {
        r->stats->skipped++;
        return MP_OK;
    }
    char src[1200];
    snprintf(src, sizeof src, "%s:line %zu", r->path, r->line);
    return r->cb(&ev, src, r->arg);
}

static void field_cb(void *s, size_t len, void *arg)
{
    csvr_t *r = arg;
    if (r->st)
        return;
    if (r->line == 0) {
        if (r->nheader < CSV_COLS_MAX)
            squash(s, len, r->header[r->nheader++], sizeof r->header[0]);
        return;
    }
    for (int c = 0; c < COL__N; c++)
        if (r->col[c] == (int)r->nf) {
            size_t n = len < CSV_FIELD_MAX - 1 ? len : CSV_FIELD_MAX - 1;
            memcpy(r->f[c], s, n);
            r->f[c][n] = '\0';
        }
    r->nf++;
}

static void row_cb(int c, void *arg)
{
    (void)c;
    csvr_t *r = arg;
    if (r->st)
        return;
    if (r->line++ == 0) {
        set_cols(r);
        if (r->col[COL_EMAIL] < 0 || r->col[COL_TYPE] < 0) {
            snprintf(r->err, r->errsize,
                     "%s: a CSV export needs an address column (email, address, recipient) "
                     "and a type column (type, event, status); name them with --email-column "
                     "/ --type-column",
                     r->path);
            r->st = MP_ERR_CONFIG;
        }
        return;
    }
    if (r->nf > 1 || r->f[COL_EMAIL][0])
        r->st = row_event(r);
    r->nf = 0;
    for (int k = 0; k < COL__N; k++)
        r->f[k][0] = '\0';
}

static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

mp_status_t learn_csv_read(const char *path, const learn_csv_opts_t *o, learn_event_cb cb,
                           void *arg, learn_stats_t *stats, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return MP_ERR_IO;
    }
    csvr_t *r = calloc(1, sizeof *r);
    struct csv_parser p;
    bool p_init = false;
    mp_status_t st = MP_OK;
    if (!r) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    *r = (csvr_t){.o = o, .cb = cb, .arg = arg, .stats = stats, .path = path, .err = err,
                  .errsize = errsize};
    if (csv_init(&p, CSV_APPEND_NULL | CSV_STRICT | CSV_STRICT_FINI) != 0) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    p_init = true;
    csv_set_space_func(&p, no_space);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    /* the delimiter: the first of , ; TAB in the header line */
    for (size_t i = 0; i < n && buf[i] != '\n'; i++)
        if (buf[i] == ',' || buf[i] == ';' || buf[i] == '\t') {
            csv_set_delim(&p, (unsigned char)buf[i]);
            break;
        }
    while (n > 0 && !r->st) {
        if (csv_parse(&p, buf, n, field_cb, row_cb, r) != n) {
            snprintf(err, errsize, "%s: line %zu: %s", path, r->line + 1,
                     csv_strerror(csv_error(&p)));
            st = MP_ERR_CONFIG;
            goto done;
        }
        n = fread(buf, 1, sizeof buf, f);
    }
    if (ferror(f)) {
        snprintf(err, errsize, "%s: read error", path);
        st = MP_ERR_IO;
        goto done;
    }
    if (!r->st && csv_fini(&p, field_cb, row_cb, r) != 0) {
        snprintf(err, errsize, "%s: line %zu: %s", path, r->line + 1,
                 csv_strerror(csv_error(&p)));
        st = MP_ERR_CONFIG;
        goto done;
    }
    if (!r->st && r->line == 0) {
        snprintf(err, errsize, "%s: empty CSV file", path);
        st = MP_ERR_CONFIG;
    }
    if (!st)
        st = r->st;
done:
    if (st == MP_ERR_NOMEM)
        snprintf(err, errsize, "%s: out of memory", path);
    if (p_init)
        csv_free(&p);
    free(r);
    fclose(f);
    return st;
}
