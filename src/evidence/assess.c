/*
 * assess.c - the catch-all assessment (see assess.h): evidence of one domain's addresses
 * (assess_domain_inputs), the logistic model (assess_compute) and its JSON form.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/assess.h"
#include "evidence/assess_weights.h"
#include "intel/intel.h"
#include "util/str.h"

static const char *const factor_names[AF__COUNT] = {
    "fits_pattern",   "fits_other_pattern", "fits_neither",   "near_expected_address",
    "typo_of_colleague", "gibberish",       "role_address",   "pattern_proven",
    "proven_recent",  "proven_old",         "refused_recent", "refused_old",
    "list_prior"};

const char *assess_factor_name(assess_factor_t f)
{
    return f < AF__COUNT ? factor_names[f] : "?";
}

const char *assess_label_name(assess_label_t l)
{
    switch (l) {
    case ASSESS_LIKELY_VALID: return "likely_valid";
    case ASSESS_LIKELY_INVALID: return "likely_invalid";
    case ASSESS_NO_EVIDENCE: break;
    }
    return "no_evidence";
}

static double logit(double p)
{
    if (p < 0.01)
        p = 0.01;
    if (p > 0.99)
        p = 0.99;
    return log(p / (1.0 - p));
}

static void detail_of(const assess_input_t *in, assess_factor_t f, char *out, size_t size)
{
    out[0] = '\0';
    switch (f) {
    case AF_FITS_PATTERN:
    case AF_PATTERN_PROVEN:
        snprintf(out, size, "%s", in->pattern);
        break;
    case AF_NEAR_EXPECTED:
    case AF_TYPO_COLLEAGUE:
        snprintf(out, size, "%s", in->near);
        break;
    case AF_PROVEN_RECENT:
    case AF_PROVEN_OLD:
    case AF_REFUSED_RECENT:
    case AF_REFUSED_OLD:
        snprintf(out, size, "%lld days ago", (long long)in->age_days[f]);
        break;
    case AF_LIST_PRIOR:
        snprintf(out, size, "%.1f%% undeliverable", in->prior * 100.0);
        break;
    default:
        break;
    }
}

void assess_compute(const assess_input_t *in, assess_t *out)
{
    memset(out, 0, sizeof *out);
    double z = ASSESS_W_BIAS;
    bool address_evidence = false;
    for (int f = 0; f < AF__COUNT; f++) {
        if (!in->has[f])
            continue;
        double w = assess_weights[f];
        if (f == AF_LIST_PRIOR)
            w *= logit(in->prior) - logit(ASSESS_PRIOR_CENTER);
        else
            address_evidence = true;
        z += w;
        assess_evidence_t *e = &out->ev[out->n++];
        e->factor = (assess_factor_t)f;
        e->weight = w;
        detail_of(in, (assess_factor_t)f, e->detail, sizeof e->detail);
    }
    double p = 1.0 / (1.0 + exp(-z));
    if (!in->has[AF_PROVEN_RECENT] && p > ASSESS_NAME_CAP)
        p = ASSESS_NAME_CAP;
    out->probability = p;
    if (!address_evidence)
        out->label = ASSESS_NO_EVIDENCE;
    else if (p >= ASSESS_T_VALID)
        out->label = ASSESS_LIKELY_VALID;
    else if (p <= ASSESS_T_INVALID)
        out->label = ASSESS_LIKELY_INVALID;
    else
        out->label = ASSESS_NO_EVIDENCE;
}

void assess_prior_make(uint64_t undeliverable, uint64_t checkable, assess_prior_t *out)
{
    memset(out, 0, sizeof *out);
    out->rows = checkable;
    if (checkable >= ASSESS_PRIOR_MIN_ROWS && undeliverable <= checkable) {
        out->known = true;
        out->share = (double)undeliverable / (double)checkable;
    }
}

size_t assess_edit_distance(const char *a, const char *b, size_t max)
{
    if (max > 8)
        max = 8;
    return (size_t)intel_osa_distance(a, strlen(a), b, strlen(b), (int)max);
}

/* The local part, lower case, without its +tag. */
static void plain_local(const char *local, char *out, size_t size)
{
    size_t k = 0;
    for (const char *p = local; *p && *p != '+' && k + 1 < size; p++)
        out[k++] = (char)mp_to_lower((unsigned char)*p);
    out[k] = '\0';
}

/* john.smith2 beside john.smith: a second John Smith, not a slip of the keyboard. */
static bool namesake(const char *local, const char *want)
{
    size_t n = strlen(want);
    if (strncmp(local, want, n) != 0 || !local[n])
        return false;
    for (const char *p = local + n; *p; p++)
        if (!mp_is_digit((unsigned char)*p))
            return false;
    return true;
}

/* Do a and b agree on their first and on their last character? Colleagues' addresses
 * under initial-based patterns differ exactly there (e.vasilev, a.vasilev; patricial,
 * patriciae): only a difference inside the address reads as a slip. */
static bool interior_slip(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la >= 6 && lb >= 6 && a[0] == b[0] && a[la - 1] == b[lb - 1];
}

static bool named(const assess_row_t *r)
{
    return r->person && r->person->nfirst + r->person->nlast > 0;
}

/* Days since t (0 when in the future). */
static int64_t age_days(int64_t now, int64_t t)
{
    return now > t ? (now - t) / 86400 : 0;
}

static void history_inputs(const assess_hist_t *h, int64_t now, assess_input_t *in)
{
    if (h->proven_at) {
        int64_t d = age_days(now, h->proven_at);
        assess_factor_t f = d < ASSESS_YEAR_DAYS ? AF_PROVEN_RECENT : AF_PROVEN_OLD;
        in->has[f] = true;
        in->age_days[f] = d;
    }
    if (h->refused_at) {
        int64_t d = age_days(now, h->refused_at);
        assess_factor_t f = d < ASSESS_YEAR_DAYS ? AF_REFUSED_RECENT : AF_REFUSED_OLD;
        in->has[f] = true;
        in->age_days[f] = d;
    }
    /* A later refusal outweighs an earlier proof and the other way round: keep the last. */
    if (h->proven_at && h->refused_at) {
        if (h->proven_at >= h->refused_at)
            in->has[AF_REFUSED_RECENT] = in->has[AF_REFUSED_OLD] = false;
        else
            in->has[AF_PROVEN_RECENT] = in->has[AF_PROVEN_OLD] = false;
    }
}

/* An address of the domain that is established: it follows the pattern or was proven. */
static bool established(const assess_row_t *r, const names_domain_t *d, bool pattern_known)
{
    if (r->hist.proven_at && r->hist.proven_at >= r->hist.refused_at)
        return true;
    return pattern_known && named(r) &&
           names_fit(d, r->local, r->person) == NAMES_FITS_PATTERN;
}

#define PROVEN_COUNTS 3u

void assess_domain_inputs(const assess_row_t *rows, size_t n, const assess_prior_t *prior,
                          int64_t now, assess_input_t *in)
{
    if (!n)
        return;
    memset(in, 0, n * sizeof *in);
    /* the domain's pattern: named rows, the proven ones counted three times */
    names_domain_t d;
    memset(&d, 0, sizeof d);
    unsigned proven_mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (!named(&rows[i]))
            continue;
        unsigned m = names_match(rows[i].local, rows[i].person);
        bool proven = rows[i].hist.proven_at && rows[i].hist.proven_at >= rows[i].hist.refused_at;
        size_t k = proven ? PROVEN_COUNTS : 1;
        d.named += k;
        for (int p = 0; p < NP__COUNT; p++)
            if (m & (1u << p))
                d.counts[p] += k;
        if (proven)
            proven_mask |= m;
    }
    for (int p = 0; p < NP__COUNT; p++)
        if (d.counts[p] > d.support) {
            d.support = d.counts[p];
            d.best = (names_pattern_t)p;
        }
    d.share = d.named ? (double)d.support / (double)d.named : 0.0;
    bool known = d.support >= ASSESS_PATTERN_MIN_SUPPORT && d.share >= ASSESS_PATTERN_MIN_SHARE;
    const names_domain_t *dp = known ? &d : NULL;
    /* the established addresses, once (a colleague's slip is looked for among them) */
    bool *est = calloc(n ? n : 1, sizeof *est);
    size_t *estv = calloc(n ? n : 1, sizeof *estv);
    size_t nest = 0;
    if (!est || !estv) {
        free(est);
        free(estv);
        est = NULL;
        estv = NULL;
    }
    for (size_t i = 0; est && i < n; i++)
        if ((est[i] = established(&rows[i], &d, known)) && nest < ASSESS_COLLEAGUES_MAX)
            estv[nest++] = i;

    for (size_t i = 0; i < n; i++) {
        const assess_row_t *r = &rows[i];
        assess_input_t *x = &in[i];
        if (!r->target)
            continue;
        char lp[256];
        plain_local(r->local, lp, sizeof lp);
        names_fit_t fit = named(r) ? names_fit(dp, r->local, r->person) : NAMES_NO_EVIDENCE;
        switch (fit) {
        case NAMES_FITS_PATTERN:
            x->has[AF_FITS_PATTERN] = true;
            mp_strlcpy(x->pattern, names_pattern_name(d.best), sizeof x->pattern);
            if (proven_mask & (1u << d.best))
                x->has[AF_PATTERN_PROVEN] = true;
            break;
        case NAMES_FITS_OTHER:
            x->has[AF_FITS_OTHER] = true;
            break;
        case NAMES_FITS_NEITHER:
            x->has[AF_FITS_NEITHER] = true;
            break;
        case NAMES_NO_EVIDENCE:
            break;
        }
        bool fits = fit == NAMES_FITS_PATTERN || fit == NAMES_FITS_OTHER;
        /* a near miss of what the pattern makes of the row's own name */
        char want[256];
        if (fit == NAMES_FITS_NEITHER && known && names_render(d.best, r->person, want, sizeof want) &&
            strlen(want) >= 4) {
            size_t dist = assess_edit_distance(lp, want, 2);
            if (dist >= 1 && dist <= 2 && !namesake(lp, want)) {
                x->has[AF_NEAR_EXPECTED] = true;
                mp_strlcpy(x->near, want, sizeof x->near);
            }
        }
        /* one edit from an established colleague (not itself established) */
        if (!fits && !x->has[AF_NEAR_EXPECTED] && !(est && est[i]) && strlen(lp) >= 5)
            for (size_t k = 0; k < nest; k++) {
                const assess_row_t *o = &rows[estv[k]];
                char other[256];
                plain_local(o->local, other, sizeof other);
                if (strcmp(other, lp) != 0 && interior_slip(lp, other) &&
                    assess_edit_distance(lp, other, 1) == 1) {
                    x->has[AF_TYPO_COLLEAGUE] = true;
                    mp_strlcpy(x->near, other, sizeof x->near);
                    break;
                }
            }
        if (!fits && intel_gibberish_score(lp) >= INTEL_GIBBERISH_THRESHOLD)
            x->has[AF_GIBBERISH] = true;
        if (!fits && intel_local_role(lp))
            x->has[AF_ROLE] = true;
        history_inputs(&r->hist, now, x);
        if (prior && prior->known) {
            x->has[AF_LIST_PRIOR] = true;
            x->prior = prior->share;
        }
    }
    free(est);
    free(estv);
}

static mp_status_t json_str(mp_buf_t *b, const char *s)
{
    mp_status_t st = mp_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; !st && *p; p++) {
        if (*p == '"' || *p == '\\')
            st = mp_buf_addf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            st = mp_buf_addf(b, "\\u%04x", *p);
        else
            st = mp_buf_add(b, p, 1);
    }
    return st ? st : mp_buf_add(b, "\"", 1);
}

mp_status_t assess_to_json(const assess_t *a, mp_buf_t *b)
{
    mp_status_t st = mp_buf_addf(b, "{\"assessment\":\"%s\",\"probability\":%.3f,\"evidence\":[",
                                 assess_label_name(a->label), a->probability);
    for (size_t i = 0; !st && i < a->n; i++) {
        const assess_evidence_t *e = &a->ev[i];
        st = mp_buf_addf(b, "%s{\"factor\":\"%s\",\"weight\":%.2f", i ? "," : "",
                         assess_factor_name(e->factor), e->weight);
        if (!st && e->detail[0]) {
            st = mp_buf_adds(b, ",\"detail\":");
            if (!st)
                st = json_str(b, e->detail);
        }
        if (!st)
            st = mp_buf_add(b, "}", 1);
    }
    return st ? st : mp_buf_adds(b, "]}");
}

mp_status_t assess_splice(const char *json, const char *assessment, mp_buf_t *b)
{
    size_t n = strlen(json);
    while (n && mp_is_space((unsigned char)json[n - 1]))
        n--;
    if (!n || json[n - 1] != '}')
        return MP_ERR_ARG;
    size_t k = n - 1; /* an empty object takes no comma */
    while (k && mp_is_space((unsigned char)json[k - 1]))
        k--;
    bool empty = k && json[k - 1] == '{';
    mp_buf_reset(b);
    mp_status_t st = mp_buf_add(b, json, n - 1);
    if (!st)
        st = mp_buf_adds(b, empty ? "\"catch_all_assessment\":" : ",\"catch_all_assessment\":");
    if (!st)
        st = mp_buf_adds(b, assessment);
    return st ? st : mp_buf_add(b, "}", 1);
}

void assess_single(const char *local, const assess_hist_t *hist, int64_t now, assess_t *out)
{
    assess_row_t row = {local, NULL, *hist, true};
    assess_input_t in;
    assess_domain_inputs(&row, 1, NULL, now, &in);
    /* the history only: the local part's shape is in the result's flags already, and the
     * weights of gibberish and role were learned beside a list's other evidence */
    for (int f = 0; f < AF__COUNT; f++)
        if (f != AF_PROVEN_RECENT && f != AF_PROVEN_OLD && f != AF_REFUSED_RECENT &&
            f != AF_REFUSED_OLD)
            in.has[f] = false;
    assess_compute(&in, out);
}
