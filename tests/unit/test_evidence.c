/*
 * test_evidence.c - name folding and naming patterns (src/evidence/names.c): accents,
 * umlauts, apostrophes, hyphenated and multi-part names, Cyrillic, Greek, Chinese,
 * Korean; pattern matching, inference of a domain's pattern, and the fit of one address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "evidence/names.h"

static const char *fold(const char *s)
{
    static char out[256];
    assert_int_equal(names_fold(s, out, sizeof out), MP_OK);
    return out;
}

static void test_fold(void **state)
{
    (void)state;
    assert_string_equal(fold("José García"), "jose garcia");
    assert_string_equal(fold("François-Xavier Lefèvre"), "francois-xavier lefevre");
    assert_string_equal(fold("Søren Kierkegård"), "soren kierkegard");
    assert_string_equal(fold("Łukasz Żółć"), "lukasz zolc");
    assert_string_equal(fold("Straße"), "strasse");
    assert_string_equal(fold("Ærø"), "aero");
    assert_string_equal(fold("Müller"), "muller");
    assert_string_equal(fold("O'Brien"), "obrien");
    assert_string_equal(fold("D\xe2\x80\x99" "Angelo"), "dangelo"); /* typographic apostrophe */
    assert_string_equal(fold("Иван Петров"), "ivan petrov");          /* Cyrillic */
    assert_string_equal(fold("Γιώργος Παπαδόπουλος"), "giorgos papadopoulos"); /* Greek */
    assert_string_equal(fold("王小明"), "wang xiao ming");             /* Han, pinyin */
    assert_string_equal(fold("김민준"), "gim min jun");               /* Hangul */
    assert_string_equal(fold("  Anne   (HR)  "), "anne hr");
    assert_string_equal(fold("\xff\xfe bad"), "bad");                  /* invalid UTF-8 */
    assert_string_equal(fold(""), "");
    char small[4];
    assert_int_equal(names_fold("Alexander", small, sizeof small), MP_ERR_LIMIT);
    assert_string_equal(small, "ale");
}

static names_person_t person(const char *first, const char *last, const char *full)
{
    names_person_t p;
    assert_int_equal(names_person_parse(first, last, full, &p), MP_OK);
    return p;
}

static void test_person(void **state)
{
    (void)state;
    names_person_t p = person(NULL, NULL, "Jan van der Berg");
    assert_int_equal(p.nfirst, 1);
    assert_string_equal(p.first[0], "jan");
    assert_int_equal(p.nlast, 3);
    assert_string_equal(p.last[0], "van");
    assert_string_equal(p.last[2], "berg");
    p = person(NULL, NULL, "Smith, John");
    assert_string_equal(p.first[0], "john");
    assert_string_equal(p.last[0], "smith");
    p = person(NULL, NULL, "王小明"); /* family name first */
    assert_string_equal(p.last[0], "wang");
    assert_int_equal(p.nfirst, 2);
    assert_string_equal(p.first[0], "xiao");
    p = person(NULL, NULL, "Mary Ann Smith-Jones");
    assert_int_equal(p.nfirst, 2);
    assert_int_equal(p.nlast, 2);
    assert_true(p.last_hyphen);
    assert_false(p.first_hyphen);
    p = person("Jürgen", "Müller", NULL);
    assert_true(p.umlaut);
    assert_string_equal(p.first_de, "juergen");
    assert_string_equal(p.last_de, "mueller");
    names_person_t q;
    assert_int_equal(names_person_parse("", "", "  -- ", &q), MP_ERR_ARG);
    assert_int_equal(names_person_parse(NULL, NULL, NULL, &q), MP_ERR_ARG);
}

#define BIT(p) (1u << (p))

static void test_match(void **state)
{
    (void)state;
    names_person_t js = person("John", "Smith", NULL);
    assert_int_equal(names_match("john.smith", &js), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("John.Smith+news", &js), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("jsmith", &js), BIT(NP_FLAST));
    assert_int_equal(names_match("j.smith", &js), BIT(NP_F_DOT_LAST));
    assert_int_equal(names_match("john_smith", &js), BIT(NP_FIRST_US_LAST));
    assert_int_equal(names_match("johnsmith", &js), BIT(NP_FIRSTLAST));
    assert_int_equal(names_match("smith.john", &js), BIT(NP_LAST_DOT_FIRST));
    assert_int_equal(names_match("smithj", &js), BIT(NP_LASTF));
    assert_int_equal(names_match("john", &js), BIT(NP_FIRST));
    assert_int_equal(names_match("smith", &js), BIT(NP_LAST));
    assert_int_equal(names_match("johns", &js), BIT(NP_FIRSTL));
    assert_int_equal(names_match("john.s", &js), BIT(NP_FIRST_DOT_L));
    assert_int_equal(names_match("john-smith", &js), BIT(NP_FIRST_DASH_LAST));
    assert_int_equal(names_match("jsmith2", &js), 0);
    assert_int_equal(names_match("sales", &js), 0);
    assert_int_equal(names_match("jon.smith", &js), 0); /* a typo is not the name */

    /* accents and umlauts, both spellings */
    names_person_t jm = person("Jürgen", "Müller", NULL);
    assert_int_equal(names_match("jurgen.muller", &jm), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("juergen.mueller", &jm), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("jmueller", &jm), BIT(NP_FLAST));
    names_person_t jg = person("José", "García", NULL);
    assert_int_equal(names_match("jose.garcia", &jg), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("josé.garcía", &jg), BIT(NP_FIRST_DOT_LAST)); /* UTF-8 local */

    /* hyphenated and multi-part names */
    names_person_t sj = person("Mary", "Smith-Jones", NULL);
    assert_int_equal(names_match("mary.smithjones", &sj), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("mary.smith-jones", &sj), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("msmith", &sj), BIT(NP_FLAST));
    assert_int_equal(names_match("mjones", &sj), BIT(NP_FLAST));
    names_person_t mc = person("Marie-Claire", "Dubois", NULL);
    assert_int_equal(names_match("marie-claire.dubois", &mc), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("marieclaire.dubois", &mc), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("marie.dubois", &mc), BIT(NP_FIRST_DOT_LAST));
    names_person_t vb = person(NULL, NULL, "Jan van der Berg");
    assert_int_equal(names_match("jan.vanderberg", &vb), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("jan.berg", &vb), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("jvanderberg", &vb), BIT(NP_FLAST));
    names_person_t ob = person("Conor", "O'Brien", NULL);
    assert_int_equal(names_match("conor.obrien", &ob), BIT(NP_FIRST_DOT_LAST));

    /* non-Latin scripts, as their systems transliterate them */
    names_person_t iv = person("Иван", "Петров", NULL);
    assert_int_equal(names_match("ivan.petrov", &iv), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("ipetrov", &iv), BIT(NP_FLAST));
    /* Cyrillic both ways: ICU's ISO 9 reading (я -> a after Latin-ASCII) and BGN/PCGN */
    names_person_t zk = person("Зиновий", "Кудрявцева", NULL);
    assert_int_equal(names_match("zkudravceva", &zk), BIT(NP_FLAST));
    assert_int_equal(names_match("zkudryavtseva", &zk), BIT(NP_FLAST));
    assert_int_equal(names_match("zinoviy.kudryavtseva", &zk), BIT(NP_FIRST_DOT_LAST));
    names_person_t kr = person("Ираклий", "Красильников", NULL);
    assert_int_equal(names_match("irakliy.krasilnikov", &kr), BIT(NP_FIRST_DOT_LAST));
    names_person_t gp = person("Γιώργος", "Παπαδόπουλος", NULL);
    assert_int_equal(names_match("gpapadopoulos", &gp), BIT(NP_FLAST));
    names_person_t wx = person(NULL, NULL, "王小明");
    assert_int_equal(names_match("xiao.wang", &wx), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("xiaoming.wang", &wx), BIT(NP_FIRST_DOT_LAST));
    assert_int_equal(names_match("wang.xiaoming", &wx), BIT(NP_LAST_DOT_FIRST));

    /* a one-letter first name fits several patterns at once */
    names_person_t a = person("A", "Lee", NULL);
    assert_true(names_match("alee", &a) & BIT(NP_FLAST));
    assert_true(names_match("alee", &a) & BIT(NP_FIRSTLAST));
    names_person_t none = {0};
    assert_int_equal(names_match("john", &none), 0);
    assert_int_equal(names_match("john", NULL), 0);
}

static void test_infer_and_fit(void **state)
{
    (void)state;
    /* a domain whose staff are first.last, plus one old jsmith-style address, a role
     * address and a row without a name */
    const char *locals[] = {"anna.schmidt", "peter.jones", "li.wei", "marie.dubois",
                            "tlang", "info", "bob.miller"};
    names_person_t people[7];
    people[0] = person("Anna", "Schmidt", NULL);
    people[1] = person("Peter", "Jones", NULL);
    people[2] = person(NULL, NULL, "李伟"); /* li wei: family name first */
    people[3] = person("Marie", "Dubois", NULL);
    people[4] = person("Tom", "Lang", NULL);
    people[5] = person("Sara", "Berg", NULL);
    memset(&people[6], 0, sizeof people[6]);
    names_domain_t d;
    names_domain_infer(locals, people, 7, &d);
    assert_int_equal(d.named, 6);
    assert_int_equal(d.best, NP_FIRST_DOT_LAST);
    assert_int_equal(d.support, 3); /* li.wei is last.first */
    assert_int_equal(d.counts[NP_LAST_DOT_FIRST], 1);
    assert_int_equal(d.counts[NP_FLAST], 1);
    assert_true(d.share > 0.49 && d.share < 0.51);
    assert_string_equal(names_pattern_name(d.best), "first.last");

    names_person_t kim = person("Kim", "Olsen", NULL);
    assert_int_equal(names_fit(&d, "kim.olsen", &kim), NAMES_FITS_PATTERN);
    assert_int_equal(names_fit(&d, "kolsen", &kim), NAMES_FITS_OTHER);
    assert_int_equal(names_fit(&d, "xk7q2v9", &kim), NAMES_FITS_NEITHER);
    assert_int_equal(names_fit(&d, "kim.olsen", NULL), NAMES_NO_EVIDENCE);
    assert_int_equal(names_fit(NULL, "kim.olsen", &kim), NAMES_FITS_OTHER);
    assert_string_equal(names_fit_name(NAMES_FITS_NEITHER), "fits_neither");

    names_domain_t empty;
    names_domain_infer(locals, people, 0, &empty);
    assert_int_equal(empty.support, 0);
    assert_int_equal(empty.named, 0);
    assert_true(empty.share == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_person),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_infer_and_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
