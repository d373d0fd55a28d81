/*
 * test_intel.c - address intelligence (src/intel/): domain lists, role, typo suggestion,
 * gibberish score, intel_analyze over addr_parse, the user's allow/deny lists, and the
 * accuracy floors on the labelled sets of tests/data/intel/ (a regression fails CI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr/addr.h"
#include "intel/intel.h"
#include "intel/userlist.h"

#include "../../bench/intel/intel_eval.h"

/* ---------------------------------------------------------------- helpers */

static void analyze(const char *address, addr_t *a, intel_t *in)
{
    addr_parse(address, strlen(address), a);
    intel_analyze(a, in);
}

static const char *suggest(const char *domain)
{
    static char out[256];
    intel_suggest_domain(domain, out, sizeof out);
    return out;
}

/* ---------------------------------------------------------------- distance */

static void test_osa_distance(void **state)
{
    (void)state;
    assert_int_equal(intel_osa_distance("gmail", 5, "gmail", 5, 2), 0);
    assert_int_equal(intel_osa_distance("gmial", 5, "gmail", 5, 2), 1); /* swap */
    assert_int_equal(intel_osa_distance("gmal", 4, "gmail", 5, 2), 1);
    assert_int_equal(intel_osa_distance("gmaill", 6, "gmail", 5, 2), 1);
    assert_int_equal(intel_osa_distance("gnail", 5, "gmail", 5, 2), 1);
    assert_int_equal(intel_osa_distance("", 0, "abc", 3, 5), 3);
    /* OSA, not full Damerau: "ca" -> "abc" is 3 (a substring is edited once) */
    assert_int_equal(intel_osa_distance("ca", 2, "abc", 3, 5), 3);
    /* bounded: anything past max is max + 1 */
    assert_int_equal(intel_osa_distance("abcdef", 6, "uvwxyz", 6, 2), 3);
    assert_int_equal(intel_osa_distance("a", 1, "abcdef", 6, 2), 3);
    char longa[100], longb[100];
    memset(longa, 'a', sizeof longa);
    memset(longb, 'a', sizeof longb);
    assert_int_equal(intel_osa_distance(longa, 100, longb, 100, 2), 0);
    longb[50] = 'b';
    assert_int_equal(intel_osa_distance(longa, 100, longb, 100, 2), 3); /* too long: far */
}

static void test_tld_known(void **state)
{
    (void)state;
    assert_true(intel_tld_known("com", 3));
    assert_true(intel_tld_known("co", 2));
    assert_true(intel_tld_known("de", 2));
    assert_true(intel_tld_known("xn--p1ai", 8)); /* .рф */
    assert_false(intel_tld_known("con", 3));
    assert_false(intel_tld_known("cmo", 3));
    assert_false(intel_tld_known("", 0));
}

/* ---------------------------------------------------------------- lists */

static void test_disposable(void **state)
{
    (void)state;
    unsigned src;
    size_t at;
    bool allowed;
    assert_true(intel_domain_disposable("mailinator.com", &src, &at, &allowed));
    assert_true(src & INTEL_SRC_DISPOSABLE_ANY);
    assert_int_equal(at, 0);
    assert_false(allowed);
    assert_string_equal(intel_src_name(INTEL_SRC_MAILCHECKER), "mailchecker");
    assert_string_equal(intel_src_name(INTEL_SRC_ALLOW), "allow-list");
    assert_string_equal(intel_src_name(0), "?");
    assert_string_equal(intel_src_name(INTEL_SRC_MAILCHECKER | INTEL_SRC_BURNER), "?");
    /* subdomains of a listed domain */
    assert_true(intel_domain_disposable("x.mailinator.com", &src, &at, NULL));
    assert_int_equal(at, 2);
    static const char deep[] = "a.b.c.mailinator.com";
    assert_true(intel_domain_disposable(deep, NULL, &at, NULL));
    assert_string_equal(&deep[at], "mailinator.com");
    /* case and one trailing dot do not matter */
    assert_true(intel_domain_disposable("MailInator.COM", NULL, NULL, NULL));
    assert_true(intel_domain_disposable("mailinator.com.", NULL, NULL, NULL));
    assert_true(intel_domain_disposable("yopmail.com", NULL, NULL, NULL));
    assert_true(intel_domain_disposable("guerrillamail.com", NULL, NULL, NULL));
    /* not listed */
    assert_false(intel_domain_disposable("gmail.com", &src, NULL, &allowed));
    assert_int_equal(src, 0);
    assert_true(allowed); /* popular list */
    assert_false(intel_domain_disposable("debian.org", NULL, NULL, &allowed));
    assert_false(allowed);
    assert_false(intel_domain_disposable("mailinator.com.example.org", NULL, NULL, NULL));
    assert_false(intel_domain_disposable("mailinator.example", NULL, NULL, NULL));
    assert_false(intel_domain_disposable("", NULL, NULL, NULL));
    assert_false(intel_domain_disposable(".", NULL, NULL, NULL));
    assert_false(intel_domain_disposable("com", NULL, NULL, NULL));
}

/* RFC 2606 / RFC 6761 names are nobody's provider, whatever a list says (one of the
 * imported lists carries example.com). */
static void test_reserved(void **state)
{
    (void)state;
    static const char *const yes[] = {"example.com", "EXAMPLE.COM.", "mail.example.org",
                                      "example.net", "x.test", "test", "a.b.invalid",
                                      "host.localhost", "sub.example"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        assert_true(intel_domain_reserved(yes[i]));
        assert_false(intel_domain_disposable(yes[i], NULL, NULL, NULL));
        assert_false(intel_domain_free(yes[i], NULL));
    }
    static const char *const no[] = {"notexample.com", "example.co", "mytest.com",
                                     "example.com.au", "testing", "localhost.com", ""};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(intel_domain_reserved(no[i]));
    addr_t a;
    intel_t in;
    analyze("someone@example.com", &a, &in);
    assert_false(in.disposable);
    assert_false(in.free); /* a free-provider list carries example.com too */
    assert_false(in.has_suggestion);
}

static void test_allow_wins(void **state)
{
    (void)state;
    bool allowed;
    /* real providers that an imported list names disposable: data/allow.txt wins */
    assert_true(intel_domain_lookup("tom.com", 7) & INTEL_SRC_DISPOSABLE_ANY);
    assert_false(intel_domain_disposable("tom.com", NULL, NULL, &allowed));
    assert_true(allowed);
    assert_false(intel_domain_disposable("yeah.net", NULL, NULL, NULL));
    assert_false(intel_domain_disposable("nus.edu.sg", NULL, NULL, NULL));
    assert_false(intel_domain_disposable("comp.nus.edu.sg", NULL, NULL, NULL));
    /* a listed public suffix matches itself, never the domains under it */
    assert_true(intel_domain_lookup("com.ar", 6) & INTEL_SRC_EXACT);
    assert_false(intel_domain_disposable("empresa.com.ar", NULL, NULL, NULL));
    assert_false(intel_domain_disposable("shop.spb.ru", NULL, NULL, NULL));
    assert_true(intel_domain_disposable("spb.ru", NULL, NULL, NULL));
}

static void test_free_provider(void **state)
{
    (void)state;
    unsigned src;
    assert_true(intel_domain_free("gmail.com", &src));
    assert_true(src & INTEL_SRC_POPULAR);
    assert_true(intel_domain_free("yahoo.co.uk", NULL));
    assert_true(intel_domain_free("GMX.DE", NULL));
    assert_true(intel_domain_free("gmail.com.", NULL));
    /* exact domain only: a host under a provider is not a mailbox provider */
    assert_false(intel_domain_free("mail.gmail.com", NULL));
    /* the free lists also hold throwaway domains: disposable is not free */
    assert_true(intel_domain_lookup("0815.ru", 7) & INTEL_SRC_FREE_ANY);
    assert_false(intel_domain_free("0815.ru", NULL));
    assert_false(intel_domain_free("debian.org", &src));
    assert_int_equal(src, 0);
    assert_false(intel_domain_free("", NULL));
}

static void test_role(void **state)
{
    (void)state;
    assert_true(intel_local_role("info"));
    assert_true(intel_local_role("INFO"));
    assert_true(intel_local_role("postmaster"));
    assert_true(intel_local_role("abuse"));
    assert_true(intel_local_role("sales+leads"));   /* tag dropped */
    assert_true(intel_local_role("no-reply"));
    assert_true(intel_local_role("no_reply"));
    assert_true(intel_local_role("No.Reply"));
    assert_true(intel_local_role("noreply"));
    assert_true(intel_local_role("mailer-daemon"));
    assert_false(intel_local_role("john.smith"));
    assert_false(intel_local_role("info2"));
    assert_false(intel_local_role("sydney")); /* a person's name: removed in role-extra.txt */
    assert_false(intel_local_role("per"));
    assert_false(intel_local_role(""));
    assert_false(intel_local_role("+info"));
    assert_false(intel_local_role("\"info\""));   /* quoted: not matched */
    assert_false(intel_local_role("\xc3\xa9quipe")); /* UTF-8 */
    char longl[300];
    memset(longl, 'a', sizeof longl - 1);
    longl[sizeof longl - 1] = '\0';
    assert_false(intel_local_role(longl));
}

/* ---------------------------------------------------------------- typo */

static void test_suggest_issue_examples(void **state)
{
    (void)state;
    assert_string_equal(suggest("gmial.com"), "gmail.com");
    assert_string_equal(suggest("hotmial.com"), "hotmail.com");
    assert_string_equal(suggest("yaho.com"), "yahoo.com");
    assert_string_equal(suggest("outlok.com"), "outlook.com");
    assert_string_equal(suggest("gmail.co"), "gmail.com");
    assert_string_equal(suggest("gmail.con"), "gmail.com");
    assert_string_equal(suggest("yahoo.cm"), "yahoo.com");
    assert_string_equal(suggest("comcast.ent"), "comcast.net");
    assert_string_equal(suggest("gnail.con"), "gmail.com");
    assert_string_equal(suggest("comcast.nry"), "comcast.net");
    assert_string_equal(suggest("hotmail.co"), "hotmail.com");
    assert_string_equal(suggest("hotmial.co.uk"), "hotmail.co.uk");
}

static void test_suggest_kinds(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(intel_suggest_domain("example.con", out, sizeof out), INTEL_TYPO_TLD);
    assert_string_equal(out, "example.com");
    assert_int_equal(intel_suggest_domain("randomsmallcompany.cmo", out, sizeof out), INTEL_TYPO_TLD);
    assert_string_equal(out, "randomsmallcompany.com");
    assert_int_equal(intel_suggest_domain("debian.ogr", out, sizeof out), INTEL_TYPO_TLD);
    assert_string_equal(out, "debian.org");
    assert_int_equal(intel_suggest_domain("gmial.com", out, sizeof out), INTEL_TYPO_DOMAIN);
    assert_int_equal(intel_suggest_domain("gmail.cmo", out, sizeof out), INTEL_TYPO_TLD);
    assert_string_equal(out, "gmail.com");
    /* too small a buffer: no half suggestion */
    char tiny[4];
    assert_int_equal(intel_suggest_domain("gmial.com", tiny, sizeof tiny), INTEL_TYPO_NONE);
    assert_string_equal(tiny, "");
}

static void test_suggest_never(void **state)
{
    (void)state;
    char out[256];
    /* popular and allowed domains are never changed, not into one another either */
    static const char *const keep[] = {
        "gmail.com", "mail.com", "email.com", "ymail.com", "gmx.de", "gmx.net", "gmx.com",
        "live.com", "live.ca", "me.com", "mac.com", "aol.com", "aim.com", "msn.com",
        "hotmail.de", "hotmail.fr", "yahoo.de", "outlook.de", "qq.com", "126.com", "163.com",
        "aver.com", "tom.com",
        /* real domains a careless corrector would "fix" */
        "bol.com", "gmc.com", "life.com", "mall.com", "love.com", "hotmart.com", "online.de",
        "hotmail.se", "yahoo.se", "gmx.at", "verizon.com", "att.com", "hockeymail.com",
        "lastmail.com", "earthling.net", "email.ru", "debian.org", "example.co",
        /* not a host name, or nothing to go on */
        "", ".", "com", "[192.0.2.1]", "[IPv6:2001:db8::1]", "localhost",
    };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        intel_typo_t k = intel_suggest_domain(keep[i], out, sizeof out);
        if (k != INTEL_TYPO_NONE)
            fail_msg("%s was corrected to %s", keep[i], out);
        assert_string_equal(out, "");
    }
    /* case and a trailing dot are not typos, but do not hide one either */
    assert_int_equal(intel_suggest_domain("GMAIL.COM", out, sizeof out), INTEL_TYPO_NONE);
    assert_int_equal(intel_suggest_domain("gmail.com.", out, sizeof out), INTEL_TYPO_NONE);
    assert_string_equal(suggest("GMIAL.COM"), "gmail.com");
    assert_string_equal(suggest("gmial.com."), "gmail.com");
}

static void test_suggest_short_and_long(void **state)
{
    (void)state;
    char out[256];
    /* short names: a swap or a keyboard insertion only */
    assert_string_equal(suggest("oal.com"), "aol.com");
    assert_string_equal(suggest("aoll.com"), "aol.com");
    assert_int_equal(intel_suggest_domain("aok.com", out, sizeof out), INTEL_TYPO_NONE);
    assert_int_equal(intel_suggest_domain("em.com", out, sizeof out), INTEL_TYPO_NONE);
    /* IDN: an A-label domain with a TLD typo */
    assert_string_equal(suggest("xn--bcher-kva.con"), "xn--bcher-kva.com");
    assert_int_equal(intel_suggest_domain("xn--bcher-kva.de", out, sizeof out), INTEL_TYPO_NONE);
    /* very long input: refused, not truncated */
    char longd[1200];
    memset(longd, 'a', sizeof longd - 5);
    memcpy(longd + sizeof longd - 5, ".con", 5);
    assert_int_equal(intel_suggest_domain(longd, out, sizeof out), INTEL_TYPO_NONE);
    char d250[256];
    memset(d250, 'b', 246);
    memcpy(d250 + 246, ".con", 5);
    assert_int_equal(intel_suggest_domain(d250, out, sizeof out), INTEL_TYPO_NONE);
}

/* ---------------------------------------------------------------- gibberish */

static void test_gibberish(void **state)
{
    (void)state;
    static const char *const real[] = {
        "john.smith", "jsmith", "maria_garcia", "anna-lena", "peter", "christopher",
        "j", "jd", "abc", "info", "john.smith+newsletter", "john1985", "smith.j.2001",
        "firstname.lastname", "mcdonald", "", "12345", "william.shakespeare",
    };
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        double s = intel_gibberish_score(real[i]);
        if (s >= INTEL_GIBBERISH_THRESHOLD)
            fail_msg("real local part %s scored %.3f", real[i], s);
        assert_true(s >= 0.0 && s <= 1.0);
    }
    static const char *const mash[] = {
        "xk29qpl", "qwxzvbnkj", "zxqwvbkj", "asdkjhqwe", "qzkxvbnmlw", "fjdkslaqzx",
    };
    for (size_t i = 0; i < sizeof mash / sizeof mash[0]; i++) {
        double s = intel_gibberish_score(mash[i]);
        if (s < INTEL_GIBBERISH_THRESHOLD)
            fail_msg("mash %s scored only %.3f", mash[i], s);
        assert_true(s <= 1.0);
    }
    /* case does not matter; the tag does not count */
    assert_true(intel_gibberish_score("XK29QPL") == intel_gibberish_score("xk29qpl"));
    assert_true(intel_gibberish_score("john+qzkxvbnmlw") < INTEL_GIBBERISH_THRESHOLD);
    /* more random letters, more evidence */
    assert_true(intel_gibberish_score("qzkxvbnmlwqzkxvbnmlw") > intel_gibberish_score("qzkxvb"));
    /* nothing the model can read */
    assert_true(intel_gibberish_score("\"qzkxv bnmlw\"") < INTEL_GIBBERISH_THRESHOLD);
    assert_true(intel_gibberish_score("\xd1\x8e\xd0\xb7\xd0\xb5\xd1\x80") < INTEL_GIBBERISH_THRESHOLD);
    assert_true(intel_gibberish_score(NULL) == 0.0);
    char longl[2000];
    memset(longl, 'q', sizeof longl - 1);
    longl[sizeof longl - 1] = '\0';
    double s = intel_gibberish_score(longl);
    assert_true(s >= 0.0 && s <= 1.0);
}

/* ---------------------------------------------------------------- whole path */

static void test_analyze(void **state)
{
    (void)state;
    addr_t a;
    intel_t in;

    analyze("USER@Gmial.COM", &a, &in);
    assert_int_equal(a.err, ADDR_OK);
    assert_true(in.has_suggestion);
    assert_int_equal(in.typo, INTEL_TYPO_DOMAIN);
    assert_string_equal(in.suggestion, "USER@gmail.com");
    assert_false(in.free); /* a typo domain is no provider, even if a list says so */

    analyze("info@gmail.com", &a, &in);
    assert_true(in.role);
    assert_true(in.free);
    assert_false(in.disposable);
    assert_false(in.has_suggestion);
    assert_string_equal(in.suggestion, "");

    analyze("someone@sub.mailinator.com", &a, &in);
    assert_true(in.disposable);
    assert_int_equal(in.disposable_at, 4);
    assert_false(in.free);

    analyze("xk29qpl@yahoo.com", &a, &in);
    assert_true(in.gibberish);
    assert_true(in.gibberish_score >= INTEL_GIBBERISH_THRESHOLD);

    analyze("john.smith@debian.org", &a, &in);
    assert_false(in.disposable || in.free || in.role || in.gibberish || in.has_suggestion);

    analyze("x@tom.com", &a, &in);
    assert_false(in.disposable);
    assert_true(in.known_provider);

    /* IDN: the TLD fix keeps the Unicode spelling */
    analyze("x@b\xc3\xbc" "cher.con", &a, &in);
    assert_int_equal(a.err, ADDR_OK);
    assert_true(in.has_suggestion);
    assert_string_equal(in.suggestion, "x@b\xc3\xbc" "cher.com");

    /* UTF-8 local part: no role / gibberish reading */
    analyze("\xd1\x8e\xd0\xb7\xd0\xb5\xd1\x80@gmail.com", &a, &in);
    assert_int_equal(a.err, ADDR_OK);
    assert_false(in.role || in.gibberish);
    assert_true(in.free);

    /* quoted local part */
    analyze("\"info\"@gmail.com", &a, &in);
    assert_false(in.role);

    /* address literal: no domain intelligence */
    analyze("x@[192.0.2.1]", &a, &in);
    assert_false(in.disposable || in.free || in.has_suggestion);
}

static void test_analyze_invalid(void **state)
{
    (void)state;
    addr_t a;
    intel_t in;
    memset(&in, 0x5a, sizeof in); /* every field must be written */
    static const char *const bad[] = {"@gmail.com", "info@gmail.com.", "", "info@", "nodomain"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        analyze(bad[i], &a, &in);
        assert_int_not_equal(a.err, ADDR_OK);
        assert_false(in.disposable || in.free || in.role || in.gibberish || in.has_suggestion);
        assert_string_equal(in.suggestion, "");
        assert_true(in.gibberish_score == 0.0);
    }
    intel_analyze(NULL, &in);
    assert_false(in.has_suggestion);
    /* very long input */
    char longa[3000];
    memset(longa, 'a', sizeof longa - 1);
    longa[sizeof longa - 1] = '\0';
    longa[100] = '@';
    analyze(longa, &a, &in);
    assert_false(in.has_suggestion);
}

/* ---------------------------------------------------------------- accuracy floors */

static void test_accuracy_floors(void **state)
{
    (void)state;
    intel_eval_t ev;
    memset(&ev, 0, sizeof ev);
    assert_int_equal(intel_eval_run(MP_SOURCE_DIR "/tests/data/intel", &ev), 0);
    /* the sets are big enough to mean something (issue 5) */
    assert_true(ev.typos >= 300);
    assert_true(ev.correct >= 300);
    assert_true(ev.gib >= 300);
    assert_true(ev.real >= 300);
    print_message("typo precision %.4f recall %.4f; gibberish precision %.4f recall %.4f fpr %.4f\n",
                  ev.typo_precision, ev.typo_recall, ev.gib_precision, ev.gib_recall,
                  ev.real_fp_rate);
    assert_true(ev.typo_precision >= 0.98);
    assert_true(ev.typo_recall >= 0.90);
    assert_true(ev.gib_precision >= 0.95);
}

/* ---------------------------------------------------------------- userlist */

static char tmpdir[] = "/tmp/mp-test-intel-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static int ul_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int ul_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool ul_match(const userlist_t *ul, const char *address, userlist_match_t *m)
{
    addr_t a;
    addr_parse(address, strlen(address), &a);
    return userlist_match(ul, &a, m);
}

static void test_userlist_match(void **state)
{
    (void)state;
    const char *path = write_file("deny.txt",
                                  "# spam traps and past bounces\n"
                                  "\n"
                                  "trap@Example.COM\n"
                                  "   bounced@example.org   # hard bounce 2026-01\n"
                                  "spam.net\n"
                                  "@Complainers.Example\n"
                                  "a#b@example.net\n"
                                  "b\xc3\xbc" "cher.de\n"
                                  "user+tag@example.com\n");
    userlist_t *ul;
    char err[256];
    assert_int_equal(userlist_new(&ul), MP_OK);
    assert_int_equal(userlist_load(ul, path, err, sizeof err), MP_OK);
    assert_string_equal(err, "");
    assert_int_equal(userlist_count(ul), 7);

    userlist_match_t m;
    assert_true(ul_match(ul, "trap@example.com", &m));
    assert_string_equal(m.file, path);
    assert_int_equal(m.line, 3);
    assert_false(m.is_domain);
    assert_string_equal(m.entry, "trap@example.com");
    assert_string_equal(m.note, "");
    assert_true(ul_match(ul, "TRAP@EXAMPLE.COM", &m)); /* case-insensitive */
    assert_false(ul_match(ul, "trap2@example.com", NULL));
    assert_true(ul_match(ul, "bounced@example.org", &m));
    assert_int_equal(m.line, 4);
    /* the line's comment is the entry's note, shown with it */
    assert_string_equal(m.key, "bounced@example.org");
    assert_string_equal(m.note, "hard bounce 2026-01");
    assert_string_equal(m.entry, "bounced@example.org (hard bounce 2026-01)");
    /* domains match themselves and every subdomain */
    assert_true(ul_match(ul, "anyone@spam.net", &m));
    assert_true(m.is_domain);
    assert_int_equal(m.line, 5);
    assert_true(ul_match(ul, "anyone@mx.eu.spam.net", &m));
    assert_string_equal(m.entry, "spam.net");
    assert_false(ul_match(ul, "anyone@notspam.net", NULL));
    assert_true(ul_match(ul, "x@complainers.example", &m));
    assert_int_equal(m.line, 6);
    /* '#' inside a local part is data, not a comment */
    assert_true(ul_match(ul, "a#b@example.net", &m));
    assert_int_equal(m.line, 7);
    /* a Unicode domain entry matches the A-label form and the Unicode form */
    assert_true(ul_match(ul, "x@xn--bcher-kva.de", &m));
    assert_int_equal(m.line, 8);
    assert_true(ul_match(ul, "x@B\xc3\x9c" "CHER.de", &m));
    /* a tag is part of an address entry */
    assert_true(ul_match(ul, "user+tag@example.com", NULL));
    assert_false(ul_match(ul, "user@example.com", NULL));
    /* invalid address: no match */
    addr_t a;
    addr_parse("@spam.net", 9, &a);
    assert_false(userlist_match(ul, &a, NULL));
    userlist_free(ul);
    userlist_free(NULL);
}

static void test_userlist_files(void **state)
{
    (void)state;
    const char *one = write_file("one.txt", "dup@example.com\npartner.example\n*.wild.example\n"
                                            ".dot.example\n");
    const char *two = write_file("two.txt", "dup@example.com\nother.example\n");
    userlist_t *ul;
    char err[256];
    assert_int_equal(userlist_new(&ul), MP_OK);
    assert_int_equal(userlist_load(ul, one, err, sizeof err), MP_OK);
    assert_int_equal(userlist_load(ul, two, err, sizeof err), MP_OK);
    userlist_match_t m;
    assert_true(ul_match(ul, "dup@example.com", &m));
    assert_string_equal(m.file, one); /* the first loaded wins */
    assert_true(ul_match(ul, "x@other.example", &m));
    assert_string_equal(m.file, two);
    assert_int_equal(m.line, 2);
    assert_true(ul_match(ul, "x@wild.example", &m));
    assert_int_equal(m.line, 3);
    assert_true(ul_match(ul, "x@a.wild.example", NULL));
    assert_true(ul_match(ul, "x@b.dot.example", &m));
    assert_int_equal(m.line, 4);
    userlist_free(ul);

    /* a fresh list and an empty file */
    const char *empty = write_file("empty0.txt", "");
    assert_int_equal(userlist_new(&ul), MP_OK);
    assert_int_equal(userlist_load(ul, empty, err, sizeof err), MP_OK);
    assert_int_equal(userlist_count(ul), 0);
    assert_false(ul_match(ul, "dup@example.com", NULL));
    userlist_free(ul);
}

static void test_userlist_errors(void **state)
{
    (void)state;
    userlist_t *ul;
    char err[256];
    assert_int_equal(userlist_new(&ul), MP_OK);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/does-not-exist.txt", tmpdir);
    assert_int_equal(userlist_load(ul, missing, err, sizeof err), MP_ERR_IO);
    assert_non_null(strstr(err, "does-not-exist.txt"));

    const char *bad = write_file("bad.txt", "ok@example.com\n\n# fine\nnot an entry\n");
    assert_int_equal(userlist_load(ul, bad, err, sizeof err), MP_ERR_CONFIG);
    assert_non_null(strstr(err, "bad.txt:4:"));
    assert_int_equal(userlist_count(ul), 0); /* nothing of a failed file is kept */

    static const struct { const char *text; const char *where; } cases[] = {
        {"user@\n", ":1:"},
        {"x.com\n@\n", ":2:"},
        {"a@b@c.com\n", ":1:"},
        {"com\n", ":1:"},             /* a single label is not a domain */
        {"x@[192.0.2.1]\n@[192.0.2.1]\n", ":2:"},
        {"-bad-.example\n", ":1:"},
        {"..example\n", ":1:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = write_file("case.txt", cases[i].text);
        assert_int_equal(userlist_load(ul, p, err, sizeof err), MP_ERR_CONFIG);
        if (!strstr(err, cases[i].where))
            fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].where);
    }

    /* a line longer than the limit is an error, not two entries */
    size_t n = USERLIST_LINE_MAX + 100;
    char *longline = malloc(n + 2);
    assert_non_null(longline);
    memset(longline, 'a', n);
    longline[n] = '\n';
    longline[n + 1] = '\0';
    const char *lp = write_file("long.txt", longline);
    free(longline);
    assert_int_equal(userlist_load(ul, lp, err, sizeof err), MP_ERR_CONFIG);
    assert_non_null(strstr(err, ":1: line too long"));

    /* empty file and comment-only file are fine */
    const char *empty = write_file("empty.txt", "");
    assert_int_equal(userlist_load(ul, empty, err, sizeof err), MP_OK);
    const char *comments = write_file("comments.txt", "# nothing\n   \n\t# still nothing\n");
    assert_int_equal(userlist_load(ul, comments, err, sizeof err), MP_OK);
    assert_int_equal(userlist_count(ul), 0);
    assert_false(ul_match(ul, "x@example.com", NULL));
    /* no trailing newline at the end of the file */
    const char *nonl = write_file("nonl.txt", "last@example.com");
    assert_int_equal(userlist_load(ul, nonl, err, sizeof err), MP_OK);
    assert_true(ul_match(ul, "last@example.com", NULL));
    userlist_free(ul);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_osa_distance),
        cmocka_unit_test(test_tld_known),
        cmocka_unit_test(test_disposable),
        cmocka_unit_test(test_reserved),
        cmocka_unit_test(test_allow_wins),
        cmocka_unit_test(test_free_provider),
        cmocka_unit_test(test_role),
        cmocka_unit_test(test_suggest_issue_examples),
        cmocka_unit_test(test_suggest_kinds),
        cmocka_unit_test(test_suggest_never),
        cmocka_unit_test(test_suggest_short_and_long),
        cmocka_unit_test(test_gibberish),
        cmocka_unit_test(test_analyze),
        cmocka_unit_test(test_analyze_invalid),
        cmocka_unit_test(test_accuracy_floors),
        cmocka_unit_test(test_userlist_match),
        cmocka_unit_test(test_userlist_files),
        cmocka_unit_test(test_userlist_errors),
    };
    return cmocka_run_group_tests(tests, ul_setup, ul_teardown);
}
