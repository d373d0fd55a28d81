/*
 * test_evidence_assess.c - the catch-all assessment (src/evidence/assess.c): evidence to
 * probability, the direction of every factor, the list prior, the cap that departed
 * employees impose, the domain's evidence (pattern, near misses, colleagues, history),
 * edit distance and the JSON form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/assess.h"

#define NOW 1790000000LL
#define DAY 86400LL

static assess_t weigh(const assess_input_t *in)
{
    assess_t a;
    assess_compute(in, &a);
    return a;
}

static double p_with(assess_factor_t f)
{
    assess_input_t in;
    memset(&in, 0, sizeof in);
    in.has[f] = true;
    return weigh(&in).probability;
}

static void test_factor_directions(void **state)
{
    (void)state;
    assess_input_t none;
    memset(&none, 0, sizeof none);
    assess_t a0 = weigh(&none);
    double base = a0.probability;
    assert_int_equal(a0.label, ASSESS_NO_EVIDENCE); /* nothing known: no claim */
    assert_int_equal(a0.n, 0);
    /* evidence for */
    assert_true(p_with(AF_FITS_PATTERN) > base);
    assert_true(p_with(AF_ROLE) > base);
    /* evidence against */
    assert_true(p_with(AF_FITS_NEITHER) < base);
    assert_true(p_with(AF_NEAR_EXPECTED) < base);
    assert_true(p_with(AF_TYPO_COLLEAGUE) < base);
    assert_true(p_with(AF_GIBBERISH) < base);
    assert_true(p_with(AF_REFUSED_RECENT) < base);
    assert_true(p_with(AF_REFUSED_OLD) < base);
    assert_true(p_with(AF_PROVEN_OLD) < p_with(AF_PROVEN_RECENT)); /* people leave */
    assert_true(p_with(AF_REFUSED_RECENT) < p_with(AF_REFUSED_OLD));
    /* strong evidence alone decides */
    assert_int_equal(weigh(&(assess_input_t){.has[AF_GIBBERISH] = true}).label,
                     ASSESS_LIKELY_INVALID);
    assert_int_equal(weigh(&(assess_input_t){.has[AF_REFUSED_RECENT] = true}).label,
                     ASSESS_LIKELY_INVALID);
    assert_int_equal(weigh(&(assess_input_t){.has[AF_FITS_PATTERN] = true}).label,
                     ASSESS_LIKELY_VALID);
}

static void test_probability_is_the_logistic_of_the_weights(void **state)
{
    (void)state;
    assess_input_t in;
    memset(&in, 0, sizeof in);
    in.has[AF_FITS_NEITHER] = in.has[AF_NEAR_EXPECTED] = true;
    assess_t a = weigh(&in);
    assert_int_equal(a.n, 2);
    double z = 0, base = weigh(&(assess_input_t){0}).probability;
    z = log(base / (1 - base)) + a.ev[0].weight + a.ev[1].weight;
    assert_true(fabs(a.probability - 1 / (1 + exp(-z))) < 1e-9);
    assert_int_equal(a.ev[0].factor, AF_FITS_NEITHER);
    assert_int_equal(a.ev[1].factor, AF_NEAR_EXPECTED);
}

static void test_prior(void **state)
{
    (void)state;
    assess_input_t in;
    memset(&in, 0, sizeof in);
    in.has[AF_FITS_OTHER] = in.has[AF_LIST_PRIOR] = true;
    in.prior = 0.03; /* a double opt-in list */
    double clean = weigh(&in).probability;
    in.prior = 0.40; /* a scraped list */
    assess_t scraped = weigh(&in);
    assert_true(clean > scraped.probability);
    assert_int_equal(scraped.ev[1].factor, AF_LIST_PRIOR);
    assert_true(scraped.ev[1].weight < 0);
    assert_string_equal(scraped.ev[1].detail, "40.0% undeliverable");
    /* the prior alone says nothing about the address */
    memset(&in, 0, sizeof in);
    in.has[AF_LIST_PRIOR] = true;
    in.prior = 0.01;
    assert_int_equal(weigh(&in).label, ASSESS_NO_EVIDENCE);
    in.prior = 0.99;
    assert_int_equal(weigh(&in).label, ASSESS_NO_EVIDENCE);
    /* prior from counts: too few checkable rows is no prior */
    assess_prior_t pr;
    assess_prior_make(3, 10, &pr);
    assert_false(pr.known);
    assess_prior_make(10, 100, &pr);
    assert_true(pr.known);
    assert_true(fabs(pr.share - 0.1) < 1e-12);
    assess_prior_make(0, 0, &pr);
    assert_false(pr.known);
}

static void test_departed_cap(void **state)
{
    (void)state;
    /* everything a list can say for an address: still capped, a departed employee would
     * say the same */
    assess_input_t in;
    memset(&in, 0, sizeof in);
    in.has[AF_FITS_PATTERN] = in.has[AF_PATTERN_PROVEN] = in.has[AF_ROLE] = true;
    in.has[AF_LIST_PRIOR] = true;
    in.prior = 0.01;
    assess_t a = weigh(&in);
    assert_true(a.probability <= ASSESS_NAME_CAP);
    /* only a recent proof of the mailbox itself may go past the cap */
    in.has[AF_PROVEN_RECENT] = true;
    in.age_days[AF_PROVEN_RECENT] = 30;
    assess_t b = weigh(&in);
    assert_true(b.probability >= a.probability);
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(assess_edit_distance("john.smith", "john.smith", 2), 0);
    assert_int_equal(assess_edit_distance("jonh.smith", "john.smith", 2), 1); /* swap */
    assert_int_equal(assess_edit_distance("john.smth", "john.smith", 2), 1);
    assert_int_equal(assess_edit_distance("john.smiith", "john.smith", 2), 1);
    assert_int_equal(assess_edit_distance("jahn.smoth", "john.smith", 2), 2);
    assert_int_equal(assess_edit_distance("xyz", "john.smith", 2), 3); /* over max */
    assert_int_equal(assess_edit_distance("", "", 1), 0);
    assert_int_equal(assess_edit_distance("", "ab", 2), 2);
    char big[200];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(assess_edit_distance(big, big, 1), 0); /* too long: equal or too far */
    char big2[200];
    memcpy(big2, big, sizeof big);
    big2[100] = 'b';
    assert_int_equal(assess_edit_distance(big, big2, 1), 2);
}

/* A small accept-all domain: first.last, with named employees. */
typedef struct {
    names_person_t people[16];
    assess_row_t rows[16];
    assess_input_t in[16];
    size_t n;
} dom_t;

static void add(dom_t *d, const char *local, const char *first, const char *last)
{
    assess_row_t *r = &d->rows[d->n];
    memset(r, 0, sizeof *r);
    r->local = local;
    r->target = true;
    if (first || last) {
        assert_int_equal(names_person_parse(first, last, NULL, &d->people[d->n]), MP_OK);
        r->person = &d->people[d->n];
    }
    d->n++;
}

static void test_domain_evidence(void **state)
{
    (void)state;
    dom_t d = {0};
    add(&d, "john.smith", "John", "Smith");            /* 0 */
    add(&d, "mary.jones", "Mary", "Jones");            /* 1 */
    add(&d, "peter.brown", "Peter", "Brown");          /* 2 */
    add(&d, "anna.white", "Anna", "White");            /* 3 */
    add(&d, "jmiller", "James", "Miller");             /* 4: another pattern */
    add(&d, "lsua.green", "Lisa", "Green");            /* 5: a slip (lisa.green) */
    add(&d, "xq7zkv93tj", "Tom", "Black");             /* 6: random */
    add(&d, "info", NULL, NULL);                       /* 7: role */
    add(&d, "petr.brown", NULL, NULL);                 /* 8: a colleague's address, one off */
    add(&d, "john.smith2", "John", "Smith");           /* 9: a namesake, not a slip */
    add(&d, "old.timer", "Old", "Timer");              /* 10: history */
    d.rows[10].hist.proven_at = NOW - 800 * DAY;
    add(&d, "gone.person", "Gone", "Person");          /* 11 */
    d.rows[11].hist.proven_at = NOW - 900 * DAY;
    d.rows[11].hist.refused_at = NOW - 20 * DAY;       /* refused later: that counts */
    assess_prior_t pr;
    assess_prior_make(30, 100, &pr);
    assess_domain_inputs(d.rows, d.n, &pr, NOW, d.in);

    assert_true(d.in[0].has[AF_FITS_PATTERN]);
    assert_string_equal(d.in[0].pattern, "first.last");
    assert_true(d.in[0].has[AF_LIST_PRIOR]);
    assert_true(fabs(d.in[0].prior - 0.3) < 1e-12);
    assert_true(d.in[4].has[AF_FITS_OTHER]);
    assert_false(d.in[4].has[AF_FITS_PATTERN]);
    assert_true(d.in[5].has[AF_FITS_NEITHER]);
    assert_true(d.in[5].has[AF_NEAR_EXPECTED]);
    assert_string_equal(d.in[5].near, "lisa.green");
    assert_true(d.in[6].has[AF_FITS_NEITHER]);
    assert_true(d.in[6].has[AF_GIBBERISH]);
    assert_false(d.in[6].has[AF_NEAR_EXPECTED]);
    assert_true(d.in[7].has[AF_ROLE]);
    assert_false(d.in[7].has[AF_FITS_NEITHER]); /* no name: no name evidence */
    assert_true(d.in[8].has[AF_TYPO_COLLEAGUE]);
    assert_string_equal(d.in[8].near, "peter.brown");
    assert_true(d.in[9].has[AF_FITS_NEITHER]);
    assert_false(d.in[9].has[AF_NEAR_EXPECTED]);
    assert_true(d.in[10].has[AF_PROVEN_OLD]);
    assert_int_equal(d.in[10].age_days[AF_PROVEN_OLD], 800);
    assert_true(d.in[10].has[AF_FITS_PATTERN]);
    assert_true(d.in[10].has[AF_PATTERN_PROVEN]);
    assert_true(d.in[11].has[AF_REFUSED_RECENT]);
    assert_false(d.in[11].has[AF_PROVEN_OLD]);

    /* and what the model makes of them */
    assess_t a;
    assess_compute(&d.in[0], &a);
    assert_true(a.probability > 0.5);
    assess_compute(&d.in[6], &a);
    assert_int_equal(a.label, ASSESS_LIKELY_INVALID);
    assess_compute(&d.in[11], &a);
    assert_int_equal(a.label, ASSESS_LIKELY_INVALID);
    assert_string_equal(a.ev[a.n - 2].detail, "20 days ago");
}

static void test_domain_edges(void **state)
{
    (void)state;
    /* no rows */
    assess_domain_inputs(NULL, 0, NULL, NOW, NULL);
    /* no names at all, no prior: nothing but what the local part says */
    dom_t d = {0};
    add(&d, "john.smith", NULL, NULL);
    add(&d, "jane.doe", NULL, NULL);
    add(&d, "", NULL, NULL);
    assess_domain_inputs(d.rows, d.n, NULL, NOW, d.in);
    for (size_t i = 0; i < d.n; i++) {
        assess_t a;
        assess_compute(&d.in[i], &a);
        assert_int_equal(a.label, ASSESS_NO_EVIDENCE);
        assert_false(d.in[i].has[AF_LIST_PRIOR]);
    }
    /* two named rows are not a pattern: no fits_pattern, only fits_other */
    dom_t e = {0};
    add(&e, "john.smith", "John", "Smith");
    add(&e, "mary.jones", "Mary", "Jones");
    e.rows[1].target = false; /* only informs */
    assess_domain_inputs(e.rows, e.n, NULL, NOW, e.in);
    assert_true(e.in[0].has[AF_FITS_OTHER]);
    assert_false(e.in[1].has[AF_FITS_OTHER]); /* not a target: nothing filled */
    /* one proven address counts three times: it makes the pattern on its own */
    dom_t f = {0};
    add(&f, "jsmith", "John", "Smith");
    f.rows[0].hist.proven_at = NOW - 10 * DAY;
    add(&f, "mjones", "Mary", "Jones");
    assess_domain_inputs(f.rows, f.n, NULL, NOW, f.in);
    assert_true(f.in[1].has[AF_FITS_PATTERN]);
    assert_true(f.in[1].has[AF_PATTERN_PROVEN]);
    assert_string_equal(f.in[1].pattern, "flast");
    assert_true(f.in[0].has[AF_PROVEN_RECENT]);
    /* a future date (clock skew) is age 0, not negative */
    dom_t g = {0};
    add(&g, "x", NULL, NULL);
    g.rows[0].hist.refused_at = NOW + 5 * DAY;
    assess_domain_inputs(g.rows, g.n, NULL, NOW, g.in);
    assert_int_equal(g.in[0].age_days[AF_REFUSED_RECENT], 0);
}

static void test_json(void **state)
{
    (void)state;
    assess_input_t in;
    memset(&in, 0, sizeof in);
    in.has[AF_TYPO_COLLEAGUE] = true;
    snprintf(in.near, sizeof in.near, "%s", "a\"b\\c");
    assess_t a;
    assess_compute(&in, &a);
    mp_buf_t b;
    mp_buf_init(&b, 4096);
    assert_int_equal(assess_to_json(&a, &b), MP_OK);
    char want[512];
    snprintf(want, sizeof want,
             "{\"assessment\":\"%s\",\"probability\":%.3f,\"evidence\":[{\"factor\":"
             "\"typo_of_colleague\",\"weight\":%.2f,\"detail\":\"a\\\"b\\\\c\"}]}",
             assess_label_name(a.label), a.probability, a.ev[0].weight);
    assert_string_equal(mp_buf_str(&b), want);
    mp_buf_reset(&b);
    assess_t empty;
    assess_compute(&(assess_input_t){0}, &empty);
    assert_int_equal(assess_to_json(&empty, &b), MP_OK);
    assert_non_null(strstr(mp_buf_str(&b), "\"assessment\":\"no_evidence\""));
    assert_non_null(strstr(mp_buf_str(&b), "\"evidence\":[]"));
    mp_buf_cleanup(&b);
    /* a buffer too small fails cleanly */
    mp_buf_init(&b, 8);
    assert_int_not_equal(assess_to_json(&a, &b), MP_OK);
    mp_buf_cleanup(&b);
    assert_string_equal(assess_factor_name(AF__COUNT), "?");
    assert_string_equal(assess_label_name(ASSESS_LIKELY_VALID), "likely_valid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factor_directions),
        cmocka_unit_test(test_probability_is_the_logistic_of_the_weights),
        cmocka_unit_test(test_prior),
        cmocka_unit_test(test_departed_cap),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_domain_evidence),
        cmocka_unit_test(test_domain_edges),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
