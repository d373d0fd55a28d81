/*
 * explain.c - `mailprobe explain REPLY`: how one SMTP reply is read, step by step;
 * `mailprobe explain --corpus FILE`: replay a corpus of labelled replies
 * (tests/data/replies.tsv) and print the share read as labelled and the false hard
 * bounces, the figures of docs/benchmarks.md. Reads a file, no network.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "classify/classify.h"
#include "sched/trouble.h"
#include "cli/cli.h"
#include "smtp/reply.h"
#include "util/buf.h"
#include "util/str.h"
#include "verdict/verdict.h"

/* RFC 3463 (and RFC 7505, 7372, 8098) subject.detail names. */
static const struct {
    const char *sd;
    const char *name;
} enh_names[] = {
    {"0.0", "other undefined status"},
    {"1.0", "other address status"},
    {"1.1", "bad destination mailbox address"},
    {"1.2", "bad destination system address"},
    {"1.3", "bad destination mailbox address syntax"},
    {"1.4", "destination mailbox address ambiguous"},
    {"1.5", "destination address valid"},
    {"1.6", "destination mailbox has moved"},
    {"1.7", "bad sender's mailbox address syntax"},
    {"1.8", "bad sender's system address"},
    {"1.10", "recipient address has null MX"},
    {"2.0", "other or undefined mailbox status"},
    {"2.1", "mailbox disabled, not accepting messages"},
    {"2.2", "mailbox full"},
    {"2.3", "message length exceeds administrative limit"},
    {"2.4", "mailing list expansion problem"},
    {"3.0", "other or undefined mail system status"},
    {"3.1", "mail system full"},
    {"3.2", "system not accepting network messages"},
    {"3.3", "system not capable of selected features"},
    {"3.4", "message too big for system"},
    {"3.5", "system incorrectly configured"},
    {"4.0", "other or undefined network or routing status"},
    {"4.1", "no answer from host"},
    {"4.2", "bad connection"},
    {"4.3", "directory server failure"},
    {"4.4", "unable to route"},
    {"4.5", "mail system congestion"},
    {"4.6", "routing loop detected"},
    {"4.7", "delivery time expired"},
    {"5.0", "other or undefined protocol status"},
    {"5.1", "invalid command"},
    {"5.2", "syntax error"},
    {"5.3", "too many recipients"},
    {"5.4", "invalid command arguments"},
    {"5.5", "wrong protocol version"},
    {"6.0", "other or undefined media error"},
    {"7.0", "other or undefined security status"},
    {"7.1", "delivery not authorized, message refused"},
    {"7.2", "mailing list expansion prohibited"},
    {"7.3", "security conversion required but not possible"},
    {"7.4", "security features not supported"},
    {"7.5", "cryptographic failure"},
    {"7.7", "message integrity failure"},
    {"7.8", "authentication credentials invalid"},
    {"7.9", "authentication mechanism is too weak"},
    {"7.10", "encryption needed"},
    {"7.13", "user account disabled"},
    {"7.17", "mailbox owner has changed"},
    {"7.18", "domain owner has changed"},
    {"7.20", "no passing DKIM signature found"},
    {"7.23", "SPF validation failed"},
    {"7.25", "reverse DNS validation failed"},
    {"7.26", "multiple authentication checks failed"},
    {"7.27", "sender address has null MX"},
};

static const char *enh_name(const char *enh)
{
    const char *dot = strchr(enh, '.');
    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof enh_names / sizeof enh_names[0]; i++)
        if (strcmp(dot + 1, enh_names[i].sd) == 0)
            return enh_names[i].name;
    return NULL;
}

static const char *code_class(int code)
{
    switch (code / 100) {
    case 2: return "positive completion";
    case 3: return "positive intermediate";
    case 4: return "transient negative: try again later";
    case 5: return "permanent negative";
    }
    return "invalid";
}

static bool parse_stage(const char *s, cl_stage_t *out)
{
    static const struct {
        const char *name;
        cl_stage_t st;
    } stages[] = {{"banner", CL_STAGE_BANNER}, {"connect", CL_STAGE_BANNER},
                  {"ehlo", CL_STAGE_EHLO},     {"helo", CL_STAGE_EHLO},
                  {"starttls", CL_STAGE_STARTTLS}, {"mail", CL_STAGE_MAIL},
                  {"rcpt", CL_STAGE_RCPT},
                  {"other", CL_STAGE_OTHER}};
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        if (mp_str_ieq(s, stages[i].name)) {
            *out = stages[i].st;
            return true;
        }
    return false;
}

/* ---- the reading of a reply, as the engine gives it ----------------------------- */

/* The meaning the engine gives this reply (trouble.c), with the controls in ctl.
 * Returns false for a reply that does not end a check on its own (2xx before RCPT). */
static bool explain_read(cl_stage_t stage, const smtp_reply_t *rp, const trouble_ctx_t *ctl,
                         trouble_t *out)
{
    if (stage == CL_STAGE_RCPT) {
        trouble_rcpt(rp, NULL, ctl, out);
        return true;
    }
    trouble_early(rp, stage, ctl, out);
    return rp->code / 100 != 2;
}

/* The reason name for a corpus line, or NULL when the reply ends nothing on its own. */
static const char *explain_reading(cl_stage_t stage, int code, const char *enh,
                                   const char *text, bool postmaster_accepted)
{
    smtp_reply_t rp;
    trouble_ctx_t ctl;
    trouble_t tr;
    memset(&rp, 0, sizeof rp);
    rp.code = code;
    mp_strlcpy(rp.enh, enh, sizeof rp.enh);
    mp_strlcpy(rp.text, text, sizeof rp.text);
    memset(&ctl, 0, sizeof ctl);
    ctl.smtputf8_offered = true;
    ctl.solo = true; /* a corpus line is read as the final answer */
    if (postmaster_accepted)
        ctl.postmaster = TR_CTL_ACCEPTED;
    if (!explain_read(stage, &rp, &ctl, &tr))
        return NULL;
    return vd_reason_name(tr.reason);
}

/* ---- corpus replay ---------------------------------------------------------------- */

#define CORPUS_LINE_MAX 8192

static bool reason_known(const char *name, vd_verdict_t *v)
{
    for (int r = 0; r < VR__COUNT; r++)
        if (strcmp(vd_reason_name((vd_reason_t)r), name) == 0) {
            *v = vd_reason_verdict((vd_reason_t)r);
            return true;
        }
    return false;
}

/* Turn the two characters "\n" into a line break, in place. */
static void corpus_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] == 'n') {
            *w++ = '\n';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

typedef struct {
    unsigned lines, judged, as_labelled, false_hard;
} corpus_count_t;

/* Count one reading against its label; true when it matches. */
static bool corpus_count(corpus_count_t *c, const char *label, const char *read)
{
    vd_verdict_t lv = VD_UNKNOWN, rv = VD_UNKNOWN;
    c->judged++;
    bool same = read && strcmp(read, label) == 0;
    if (same)
        c->as_labelled++;
    if (read && reason_known(read, &rv) && reason_known(label, &lv) &&
        rv == VD_UNDELIVERABLE && lv != VD_UNDELIVERABLE)
        c->false_hard++;
    return same;
}

static void corpus_print(const char *what, const corpus_count_t *c)
{
    printf("%s: %u of %u read as labelled (%.1f %%), %u false hard bounce(s)\n", what,
           c->as_labelled, c->judged, c->judged ? 100.0 * c->as_labelled / c->judged : 0.0,
           c->false_hard);
}

static int explain_corpus(const char *path, bool verbose)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return cli_usage_error("explain: cannot open corpus '%s'", path);
    static char line[CORPUS_LINE_MAX];
    unsigned lineno = 0, skipped = 0;
    corpus_count_t bare = {0, 0, 0, 0}, ctl = {0, 0, 0, 0};
    int rc = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (lineno == 1 || len == 0 || line[0] == '#')
            continue;
        char *f[8];
        size_t n = 0;
        f[n++] = line;
        for (char *p = line; *p && n < 8; p++)
            if (*p == '\t') {
                *p = '\0';
                f[n++] = p + 1;
            }
        cl_stage_t stage;
        uint64_t code;
        vd_verdict_t v;
        if (n != 8 || !parse_stage(f[0], &stage) || !mp_parse_uint(f[1], 200, 599, &code) ||
            (strcmp(f[5], "-") != 0 && !reason_known(f[5], &v))) {
            rc = cli_usage_error("explain: %s:%u: not a corpus line (8 tab-separated fields: "
                                 "stage code enhanced text outcome reason controlled "
                                 "source)", path, lineno);
            goto done;
        }
        if (strcmp(f[5], "-") == 0) {
            skipped++;
            continue;
        }
        corpus_unescape(f[3]);
        bare.lines++;
        const char *read = explain_reading(stage, (int)code, f[2], f[3], false);
        if (!corpus_count(&bare, f[5], read) && verbose)
            printf("%s:%u: labelled %s, read %s: %s %s %s\n", path, lineno, f[5],
                   read ? read : "-", f[1], f[2], f[3]);
        const char *want = strcmp(f[6], "-") == 0 ? f[5] : f[6];
        if (!reason_known(want, &v)) {
            rc = cli_usage_error("explain: %s:%u: unknown reason '%s'", path, lineno, want);
            goto done;
        }
        read = explain_reading(stage, (int)code, f[2], f[3], true);
        if (!corpus_count(&ctl, want, read) && verbose)
            printf("%s:%u: with postmaster@ accepted labelled %s, read %s: %s %s %s\n", path,
                   lineno, want, read ? read : "-", f[1], f[2], f[3]);
    }
    printf("corpus %s: %u replies with a reading of their own (%u more end nothing on "
           "their own)\n", path, bare.lines, skipped);
    corpus_print("without controls", &bare);
    corpus_print("with postmaster@ accepted in the same transaction", &ctl);
done:
    fclose(fp);
    return rc;
}

int cli_explain(int argc, char **argv)
{
    static const struct option opts[] = {{"stage", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"corpus", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"postmaster", required_argument, NULL, 'p'},
                                         {"other-accepted", no_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cl_stage_t stage = CL_STAGE_RCPT;
    bool json = false, verbose = false, other_accepted = false, have_pm = false;
    const char *corpus = NULL;
    smtp_reply_t pm;
    memset(&pm, 0, sizeof pm);
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (!parse_stage(optarg, &stage))
                return cli_usage_error("explain: --stage must be banner, ehlo, starttls, "
                                       "mail or rcpt, not '%s'", optarg);
            break;
        case 'j': json = true; break;
        case 'c': corpus = optarg; break;
        case 'v': verbose = true; break;
        case 'o': other_accepted = true; break;
        case 'p': {
            const char *perr = NULL;
            if (!smtp_reply_from_string(optarg, &pm, &perr))
                return cli_usage_error("explain: --postmaster must be the reply to RCPT "
                                       "TO:<postmaster@...>, e.g. \"250 2.1.5 Ok\": %s",
                                       perr ? perr : "bad syntax");
            have_pm = true;
            break;
        }
        case 'h':
            puts("usage: mailprobe explain [--stage STAGE] [--json] [--postmaster REPLY]\n"
                 "                         [--other-accepted] REPLY\n"
                 "       mailprobe explain --corpus FILE [--verbose]\n"
                 "Show how mailprobe reads an SMTP reply, without and with the controls of the\n"
                 "same transaction (postmaster@, other recipients); or replay a corpus of\n"
                 "labelled replies and print the share read as labelled and the false hard\n"
                 "bounces.\n"
                 "\n"
                 "  --stage banner|ehlo|starttls|mail|rcpt  the command the reply answered\n"
                 "                         (default: rcpt)\n"
                 "  --json                 one JSON object instead of text\n"
                 "  --postmaster REPLY     the reply to RCPT TO:<postmaster@domain> in the same\n"
                 "                         transaction\n"
                 "  --other-accepted       another recipient of the session was accepted\n"
                 "  --corpus FILE          replay FILE (tests/data/replies.tsv's format)\n"
                 "  --verbose              with --corpus: list every reply read otherwise\n"
                 "\n"
                 "Example: mailprobe explain \"550 5.1.1 <x@example.com>: Recipient address "
                 "rejected: User unknown\"");
            return 0;
        case ':': return cli_usage_error("explain: option needs a value");
        default: return cli_usage_error("explain: unknown option '%s'", argv[optind - 1]);
        }
    }
    if (corpus) {
        if (optind < argc)
            return cli_usage_error("explain: --corpus takes no reply");
        return explain_corpus(corpus, verbose);
    }
    if (optind >= argc)
        return cli_usage_error("explain: no reply given, e.g. mailprobe explain \"550 5.1.1 "
                               "User unknown\"");
    /* several arguments are one reply split by the shell */
    mp_buf_t in;
    mp_buf_init(&in, SMTP_REPLY_TOTAL_MAX);
    for (int i = optind; i < argc; i++) {
        if ((i > optind && mp_buf_adds(&in, " ")) || mp_buf_adds(&in, argv[i])) {
            mp_buf_cleanup(&in);
            return cli_usage_error("explain: reply too long");
        }
    }
    smtp_reply_t rp;
    const char *err = NULL;
    if (!smtp_reply_from_string(mp_buf_str(&in), &rp, &err)) {
        int rc = cli_usage_error("explain: not an SMTP reply: %s", err ? err : "bad syntax");
        mp_buf_cleanup(&in);
        return rc;
    }
    mp_buf_cleanup(&in);

    /* The reading without controls, then with them: the ones given, or else the two
     * that decide a refusal whose words say nothing known (trouble.h). */
    trouble_ctx_t none, acc, ref;
    memset(&none, 0, sizeof none);
    none.smtputf8_offered = true;
    none.solo = true;
    acc = ref = none;
    acc.postmaster = TR_CTL_ACCEPTED;
    ref.postmaster = TR_CTL_REFUSED;
    ref.postmaster_code = rp.code;
    ref.postmaster_enh = rp.enh;
    if (have_pm) {
        acc.postmaster = pm.code / 100 == 2 ? TR_CTL_ACCEPTED
                         : pm.code / 100 == 5 ? TR_CTL_REFUSED : TR_CTL_NONE;
        acc.postmaster_code = pm.code;
        acc.postmaster_enh = pm.enh;
    }
    acc.other_accepted = other_accepted;
    trouble_t tb, ta, tr;
    explain_read(stage, &rp, &none, &tb);
    explain_read(stage, &rp, &acc, &ta);
    explain_read(stage, &rp, &ref, &tr);
    bool given = have_pm || other_accepted;
    cl_outcome_t o = tb.cl.outcome;
    vd_reason_t reason = tb.reason;
    vd_verdict_t verdict = vd_reason_verdict(reason);
    const char *ename = rp.enh[0] ? enh_name(rp.enh) : NULL;

    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "code", json_integer(rp.code));
        json_object_set_new(j, "enhanced", rp.enh[0] ? json_string(rp.enh) : json_null());
        json_object_set_new(j, "text", json_string(rp.text));
        json_object_set_new(j, "stage", json_string(classify_stage_name(stage)));
        json_object_set_new(j, "outcome", json_string(classify_outcome_name(o)));
        json_object_set_new(j, "verdict", json_string(vd_verdict_name(verdict)));
        json_object_set_new(j, "reason", json_string(vd_reason_name(reason)));
        json_object_set_new(j, "smtp_result", json_string(vd_smtp_result_name(tb.smtp_result)));
        json_object_set_new(j, "rule", json_string(tb.cl.rule ? tb.cl.rule : ""));
        json_object_set_new(j, "why", json_string(tb.cl.why ? tb.cl.why : ""));
        json_t *ctlj = json_object();
        const struct {
            const char *key;
            const trouble_t *t;
        } rows[] = {{given ? "given" : "postmaster_accepted", &ta},
                    {"postmaster_refused", &tr}};
        for (size_t i = 0; i < (given ? 1u : 2u); i++) {
            json_t *x = json_object();
            json_object_set_new(x, "verdict",
                                json_string(vd_verdict_name(vd_reason_verdict(rows[i].t->reason))));
            json_object_set_new(x, "reason", json_string(vd_reason_name(rows[i].t->reason)));
            json_object_set_new(x, "why", json_string(rows[i].t->why));
            json_object_set_new(ctlj, rows[i].key, x);
        }
        json_object_set_new(j, "controls", ctlj);
        char *str = mp_json_escape_ls(json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
        if (str)
            puts(str);
        free(str);
        json_decref(j);
        return 0;
    }
    printf("Reply:     %d%s%s %s\n", rp.code, rp.enh[0] ? " " : "", rp.enh, rp.text);
    printf("Stage:     answer to %s\n", classify_stage_name(stage));
    printf("Code:      %d (%s)\n", rp.code, code_class(rp.code));
    if (rp.enh[0])
        printf("Enhanced:  %s (%s)\n", rp.enh, ename ? ename : "not a registered code");
    else
        printf("Enhanced:  none\n");
    printf("Outcome:   %s\n", classify_outcome_name(o));
    printf("Verdict:   %s (%s)", vd_verdict_name(verdict), vd_reason_name(reason));
    if (o == CL_GREYLISTED || o == CL_TEMPORARY)
        printf(" if still refused after retrying for the greylist wait");
    printf("\nRule:      %s\n", tb.cl.rule ? tb.cl.rule : "-");
    printf("Why:       %s\n", tb.cl.why ? tb.cl.why : "-");
    if (stage != CL_STAGE_RCPT) {
        printf("Controls:  none before RCPT: a reply to %s is never about the mailbox\n",
               classify_stage_name(stage));
    } else if (given) {
        printf("With the controls given: %s (%s): %s\n",
               vd_verdict_name(vd_reason_verdict(ta.reason)), vd_reason_name(ta.reason), ta.why);
    } else if (ta.reason != tb.reason || tr.reason != tb.reason) {
        printf("Controls:  if postmaster@ is accepted in the same transaction: %s (%s)\n",
               vd_verdict_name(vd_reason_verdict(ta.reason)), vd_reason_name(ta.reason));
        printf("           if postmaster@ is refused the same way: %s (%s)\n",
               vd_verdict_name(vd_reason_verdict(tr.reason)), vd_reason_name(tr.reason));
    } else {
        printf("Controls:  the words settle it; postmaster@'s answer would not change it\n");
    }
    return 0;
}
