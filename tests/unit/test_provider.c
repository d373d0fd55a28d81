/*
 * test_provider.c - MX host -> provider table (src/classify/provider.c, generated from
 * data/providers.tsv): real MX names of each provider, longest suffix wins, near misses
 * that must not match, case and trailing dot, MX-set choice, and a check that the
 * committed gen_providers.c is what scripts/gen-providers makes of the committed TSV.
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

#include "classify/provider.h"

#ifndef MP_SOURCE_DIR
#define MP_SOURCE_DIR "."
#endif

/* Real MX host names, one or more per provider of the table. */
static const struct {
    const char *host;
    const char *id;
    provider_kind_t kind;
} known[] = {
    {"aspmx.l.google.com", "google", PROVIDER_MAILBOX},
    {"alt4.aspmx.l.google.com", "google", PROVIDER_MAILBOX},
    {"gmail-smtp-in.l.google.com", "google", PROVIDER_MAILBOX},
    {"alt1.gmail-smtp-in.l.google.com", "google", PROVIDER_MAILBOX},
    {"aspmx2.googlemail.com", "google", PROVIDER_MAILBOX},
    {"smtp.google.com", "google", PROVIDER_MAILBOX},
    {"example.com.s8a1.psmtp.com", "google", PROVIDER_GATEWAY},
    {"example-com.mail.protection.outlook.com", "microsoft", PROVIDER_MAILBOX},
    {"example-com.a-v1.mx.microsoft", "microsoft", PROVIDER_MAILBOX},
    {"example-com.mail.eo.outlook.com", "microsoft", PROVIDER_MAILBOX},
    {"hotmail-com.olc.protection.outlook.com", "outlook", PROVIDER_MAILBOX},
    {"mx1.hotmail.com", "outlook", PROVIDER_MAILBOX},
    {"mx3.pamx1.hotmail.com", "outlook", PROVIDER_MAILBOX},
    {"mta5.am0.yahoodns.net", "yahoo", PROVIDER_MAILBOX},
    {"mx-biz.mail.am0.yahoodns.net", "yahoo", PROVIDER_MAILBOX},
    {"mx1.biz.mail.yahoo.com", "yahoo", PROVIDER_MAILBOX},
    {"mx-aol.mail.gm0.yahoodns.net", "aol", PROVIDER_MAILBOX},
    {"mailin-01.mx.aol.com", "aol", PROVIDER_MAILBOX},
    {"mx01.mail.icloud.com", "icloud", PROVIDER_MAILBOX},
    {"mx.zoho.com", "zoho", PROVIDER_MAILBOX},
    {"mx2.zoho.eu", "zoho", PROVIDER_MAILBOX},
    {"mx.zoho.in", "zoho", PROVIDER_MAILBOX},
    {"mx.zoho.com.au", "zoho", PROVIDER_MAILBOX},
    {"mx.zoho.jp", "zoho", PROVIDER_MAILBOX},
    {"mx.zohomail.com", "zoho", PROVIDER_MAILBOX},
    {"in1-smtp.messagingengine.com", "fastmail", PROVIDER_MAILBOX},
    {"mx.yandex.net", "yandex", PROVIDER_MAILBOX},
    {"mx.yandex.ru", "yandex", PROVIDER_MAILBOX},
    {"mxs.mail.ru", "mailru", PROVIDER_MAILBOX},
    {"mx00.gmx.net", "gmx", PROVIDER_MAILBOX},
    {"mx01.gmx.com", "gmx", PROVIDER_MAILBOX},
    {"mx-ha03.web.de", "webde", PROVIDER_MAILBOX},
    {"mail.protonmail.ch", "protonmail", PROVIDER_MAILBOX},
    {"mailsec.protonmail.ch", "protonmail", PROVIDER_MAILBOX},
    {"mail.tutanota.de", "tutanota", PROVIDER_MAILBOX},
    {"mxext1.mailbox.org", "mailboxorg", PROVIDER_MAILBOX},
    {"mx1a1.comcast.net", "comcast", PROVIDER_MAILBOX},
    {"al-ip4-mx-vip1.prodigy.net", "att", PROVIDER_MAILBOX},
    {"mx1.qq.com", "tencent", PROVIDER_MAILBOX},
    {"163mx00.mxmail.netease.com", "netease", PROVIDER_MAILBOX},
    {"mx0a-001b2d01.pphosted.com", "proofpoint", PROVIDER_GATEWAY},
    {"mx1-us1.ppe-hosted.com", "proofpoint", PROVIDER_GATEWAY},
    {"eu-smtp-inbound-1.mimecast.com", "mimecast", PROVIDER_GATEWAY},
    {"us-smtp-inbound-2.mimecast.com", "mimecast", PROVIDER_GATEWAY},
    {"za-smtp-inbound-1.mimecast.co.za", "mimecast", PROVIDER_GATEWAY},
    {"de-smtp-inbound-1.mimecast-offshore.com", "mimecast", PROVIDER_GATEWAY},
    {"d123456a.ess.barracudanetworks.com", "barracuda", PROVIDER_GATEWAY},
    {"esa1.example.iphmx.com", "cisco_ironport", PROVIDER_GATEWAY},
    {"example.in.tmes.trendmicro.com", "trendmicro", PROVIDER_GATEWAY},
    {"example.in.tmes.trendmicro.eu", "trendmicro", PROVIDER_GATEWAY},
    {"example.hes.trendmicro.com", "trendmicro", PROVIDER_GATEWAY},
    {"mx-01-eu-west-1.prod.hydra.sophos.com", "sophos", PROVIDER_GATEWAY},
    {"cluster1.eu.mailcontrol.com", "forcepoint", PROVIDER_GATEWAY},
    {"cluster1.eu.messagelabs.com", "symantec_messagelabs", PROVIDER_GATEWAY},
    {"mail1.inboundmx.com", "symantec_messagelabs", PROVIDER_GATEWAY},
    {"mx01.hornetsecurity.com", "hornetsecurity", PROVIDER_GATEWAY},
    {"mx.spamexperts.com", "spamexperts", PROVIDER_GATEWAY},
    {"fallbackmx.spamexperts.eu", "spamexperts", PROVIDER_GATEWAY},
    {"lastmx.spamexperts.net", "spamexperts", PROVIDER_GATEWAY},
    {"a.b.c.arsmtp.com", "appriver", PROVIDER_GATEWAY},
    {"mx1.us.a.mxlogic.net", "mcafee_mxlogic", PROVIDER_GATEWAY},
    {"mx1.example.email.fireeyecloud.com", "fireeye", PROVIDER_GATEWAY},
    {"mx1.eu.ctmail.com", "cyren", PROVIDER_GATEWAY},
    {"mx01.expurgate.net", "cyren", PROVIDER_GATEWAY},
    {"mx1.mail.ovh.net", "ovh", PROVIDER_HOSTING},
    {"mx1.mail.ovh.ca", "ovh", PROVIDER_HOSTING},
    {"mx0.ovh.net", "ovh", PROVIDER_HOSTING},
    {"mx1.emailsrvr.com", "rackspace", PROVIDER_HOSTING},
    {"mailstore1.secureserver.net", "godaddy", PROVIDER_HOSTING},
    {"smtp.europe.secureserver.net", "godaddy", PROVIDER_HOSTING},
    {"mx00.ionos.com", "ionos", PROVIDER_HOSTING},
    {"mx00.ionos.de", "ionos", PROVIDER_HOSTING},
    {"mx00.ionos.co.uk", "ionos", PROVIDER_HOSTING},
    {"mx00.1and1.com", "ionos", PROVIDER_HOSTING},
    {"mx00.1and1.co.uk", "ionos", PROVIDER_HOSTING},
    {"mx00.1and1.fr", "ionos", PROVIDER_HOSTING},
    {"mx1.privateemail.com", "namecheap", PROVIDER_HOSTING},
    {"server123.web-hosting.com", "namecheap", PROVIDER_HOSTING},
    {"mx1.mail.hostinger.com", "hostinger", PROVIDER_HOSTING},
    {"mx1.hostinger.in", "hostinger", PROVIDER_HOSTING},
    {"mx1.titan.email", "titan", PROVIDER_HOSTING},
    {"aspmx1.migadu.com", "migadu", PROVIDER_HOSTING},
    {"arrow.mxroute.com", "mxroute", PROVIDER_HOSTING},
    {"spool.mail.gandi.net", "gandi", PROVIDER_HOSTING},
    {"mx1.sub4.homie.mail.dreamhost.com", "dreamhost", PROVIDER_HOSTING},
    {"mx.example.netsolmail.net", "networksolutions", PROVIDER_HOSTING},
    {"pb-mx1.pobox.com", "pobox", PROVIDER_HOSTING},
    {"route1.mx.cloudflare.net", "cloudflare", PROVIDER_HOSTING},
    {"mx1.improvmx.com", "improvmx", PROVIDER_HOSTING},
    {"mx1.forwardemail.net", "forwardemail", PROVIDER_HOSTING},
    {"inbound-smtp.us-east-1.amazonaws.com", "amazonses", PROVIDER_HOSTING},
    {"inbound-smtp.us-west-2.amazonaws.com", "amazonses", PROVIDER_HOSTING},
    {"inbound-smtp.eu-west-1.amazonaws.com", "amazonses", PROVIDER_HOSTING},
    {"mxa.mailgun.org", "mailgun", PROVIDER_HOSTING},
    {"mxb.eu.mailgun.org", "mailgun", PROVIDER_HOSTING},
    {"mx.sendgrid.net", "sendgrid", PROVIDER_HOSTING},
    {"inbound.postmarkapp.com", "postmark", PROVIDER_HOSTING},
    {"a.b.mandrillapp.com", "mandrill", PROVIDER_HOSTING},
};

static void test_known_hosts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const provider_t *p = provider_lookup(known[i].host);
        if (!p)
            fail_msg("%s: no provider, expected %s", known[i].host, known[i].id);
        if (strcmp(p->id, known[i].id) != 0 || p->kind != known[i].kind)
            fail_msg("%s: got %s/%s, expected %s/%s", known[i].host, p->id,
                     provider_kind_name(p->kind), known[i].id, provider_kind_name(known[i].kind));
        assert_non_null(p->name);
        assert_true(p->name[0] != '\0');
    }
}

/* Every id of the table appears among the known hosts: a new provider gets a test line. */
static void test_every_provider_has_a_known_host(void **state)
{
    (void)state;
    for (size_t r = 0; r < provider_count(); r++) {
        const provider_t *p = provider_at(r);
        bool seen = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !seen; i++)
            seen = strcmp(known[i].id, p->id) == 0;
        if (!seen)
            fail_msg("provider %s (row %zu, %s) has no line in known[]", p->id, r, p->pattern);
    }
}

/* The generated keys are sorted and each row is reachable through its own pattern. */
static void test_table_sane(void **state)
{
    (void)state;
    assert_true(provider_count() >= 40);
    assert_int_equal(provider_key_count, provider_row_count);
    for (size_t i = 1; i < provider_key_count; i++)
        if (strcmp(provider_keys[i - 1].rkey, provider_keys[i].rkey) >= 0)
            fail_msg("keys not sorted: %s / %s", provider_keys[i - 1].rkey, provider_keys[i].rkey);
    for (size_t r = 0; r < provider_count(); r++) {
        const provider_t *p = provider_at(r);
        char host[300];
        /* "zq9." + ".x.y" is not a valid host; a suffix pattern needs a label before it. */
        if (p->pattern[0] == '.')
            snprintf(host, sizeof host, "zq9%s", p->pattern);
        else
            snprintf(host, sizeof host, "%s", p->pattern);
        if (provider_lookup(host) != p)
            fail_msg("row %zu (%s) not found through %s", r, p->pattern, host);
    }
    assert_null(provider_at(provider_count()));
}

static void expect_pattern(const char *host, const char *id, const char *pattern)
{
    const provider_t *p = provider_lookup(host);
    if (!p)
        fail_msg("%s: no match, expected %s (%s)", host, id, pattern);
    if (strcmp(p->id, id) != 0 || strcmp(p->pattern, pattern) != 0)
        fail_msg("%s: got %s (%s), expected %s (%s)", host, p->id, p->pattern, id, pattern);
}

static void test_longest_suffix_wins(void **state)
{
    (void)state;
    /* An exact host inside a broader suffix of another provider. */
    expect_pattern("mx-aol.mail.gm0.yahoodns.net", "aol", "mx-aol.mail.gm0.yahoodns.net");
    expect_pattern("mx-aol2.mail.gm0.yahoodns.net", "yahoo", ".yahoodns.net");
    /* A longer suffix of the same provider. */
    expect_pattern("mx1.mail.ovh.net", "ovh", ".mail.ovh.net");
    expect_pattern("mx0.ovh.net", "ovh", ".ovh.net");
    expect_pattern("mx.pamx1.hotmail.com", "outlook", ".pamx1.hotmail.com");
    expect_pattern("mx.hotmail.com", "outlook", ".hotmail.com");
    /* Exact host vs the suffix below it. */
    expect_pattern("aspmx.l.google.com", "google", "aspmx.l.google.com");
    expect_pattern("alt1.aspmx.l.google.com", "google", ".aspmx.l.google.com");
    /* Sibling suffixes under one domain go to different providers. */
    expect_pattern("outlook-com.olc.protection.outlook.com", "outlook",
                   ".olc.protection.outlook.com");
    expect_pattern("contoso-com.mail.protection.outlook.com", "microsoft",
                   ".mail.protection.outlook.com");
    expect_pattern("x.in.tmes.trendmicro.com", "trendmicro", ".tmes.trendmicro.com");
    expect_pattern("x.hes.trendmicro.com", "trendmicro", ".hes.trendmicro.com");
}

static void test_near_misses(void **state)
{
    static const char *const miss[] = {
        "notpphosted.com",           /* no label boundary */
        "pphosted.com",              /* the suffix itself is not under it */
        "pphosted.com.evil.example", /* the pattern must be a suffix */
        "mx0a.pphosted.com.evil.example",
        "google.com",
        "google.com.evil.example",
        "aspmx.l.google.com.evil.example",
        "evilaspmx.l.google.com", /* an exact host matches only itself */
        "aspmx.l.google.co",
        "l.google.com",
        "xmx.yandex.net",
        "mx.yandex.net.example",
        "mimecast.com",
        "mx.mimecast.com.au",
        "barracudanetworks.com.example",
        "mx.spamexperts.org",
        "mail.protection.outlook.com", /* the suffix without a tenant label */
        "outlook.com",
        "yahoodns.net",
        "inbound-smtp.us-east-1.amazonaws.com.example",
        "inbound-smtp.mars-1.amazonaws.com",
        "mail.example.com",
        "localhost",
        "com",
        "",
        ".",
        "..",
    };
    (void)state;
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        const provider_t *p = provider_lookup(miss[i]);
        if (p)
            fail_msg("'%s' must not match, got %s (%s)", miss[i], p->id, p->pattern);
    }
    assert_null(provider_lookup(NULL));
}

static void test_case_and_trailing_dot(void **state)
{
    (void)state;
    expect_pattern("MX0A-001B2D01.PPHOSTED.COM", "proofpoint", ".pphosted.com");
    expect_pattern("mx0a-001b2d01.pphosted.com.", "proofpoint", ".pphosted.com");
    expect_pattern("Aspmx.L.Google.Com.", "google", "aspmx.l.google.com");
    expect_pattern("SMTP.GOOGLE.COM", "google", "smtp.google.com");
    expect_pattern("Eu-Smtp-Inbound-1.Mimecast.Com.", "mimecast", ".mimecast.com");
    /* Only one root dot is tolerated. */
    assert_null(provider_lookup("aspmx.l.google.com.."));
    assert_null(provider_lookup("mx0a.pphosted.com.."));
}

static void test_length_limits(void **state)
{
    char host[300];
    size_t n;
    (void)state;
    /* 253 characters ending in .pphosted.com: still a host name. */
    memset(host, 'a', sizeof host);
    n = 253 - strlen(".pphosted.com");
    for (size_t i = 63; i < n; i += 64)
        host[i] = '.';
    memcpy(host + n, ".pphosted.com", strlen(".pphosted.com") + 1);
    assert_int_equal(strlen(host), 253);
    expect_pattern(host, "proofpoint", ".pphosted.com");
    /* 254 with a root dot is the same name. */
    host[253] = '.';
    host[254] = '\0';
    expect_pattern(host, "proofpoint", ".pphosted.com");
    /* Longer than a host name can be: nothing. */
    memset(host, 'a', sizeof host);
    memcpy(host + 260, ".pphosted.com", strlen(".pphosted.com") + 1);
    assert_null(provider_lookup(host));
}

static void test_mx_set(void **state)
{
    const char *hosts[] = {"mx.example.org", "eu-smtp-inbound-2.mimecast.com",
                           "example-org.mail.protection.outlook.com", NULL};
    unsigned prefs[] = {5, 20, 10, 0};
    size_t idx = 99;
    const provider_t *p;
    (void)state;

    /* By preference: the unknown MX (5) is skipped, outlook (10) beats mimecast (20). */
    p = provider_for_mx_set(hosts, prefs, 4, &idx);
    assert_non_null(p);
    assert_string_equal(p->id, "microsoft");
    assert_int_equal(idx, 2);

    /* Without preferences the array order counts. */
    p = provider_for_mx_set(hosts, NULL, 4, &idx);
    assert_non_null(p);
    assert_string_equal(p->id, "mimecast");
    assert_int_equal(idx, 1);

    /* Equal preferences keep array order. */
    prefs[1] = prefs[2] = 10;
    p = provider_for_mx_set(hosts, prefs, 3, NULL);
    assert_non_null(p);
    assert_string_equal(p->id, "mimecast");

    /* Nothing known: NULL, index untouched. */
    idx = 42;
    assert_null(provider_for_mx_set(hosts, prefs, 1, &idx));
    assert_int_equal(idx, 42);
    assert_null(provider_for_mx_set(NULL, NULL, 3, &idx));
    assert_null(provider_for_mx_set(hosts, NULL, 0, &idx));
}

static void test_names_and_flags(void **state)
{
    char buf[128];
    const provider_t *p;
    (void)state;

    assert_string_equal(provider_kind_name(PROVIDER_MAILBOX), "mailbox_provider");
    assert_string_equal(provider_kind_name(PROVIDER_GATEWAY), "security_gateway");
    assert_string_equal(provider_kind_name(PROVIDER_HOSTING), "hosting");

    p = provider_lookup("us-smtp-inbound-1.mimecast.com");
    assert_non_null(p);
    assert_true(provider_is_gateway(p));
    assert_true(p->behaviour & PROVIDER_TENANT_CONFIGURABLE);
    assert_true(p->behaviour & PROVIDER_DEFERS_UNKNOWN);
    assert_int_equal(provider_behaviour_str(p->behaviour, buf, sizeof buf),
                     strlen("tenant_configurable,defers_unknown"));
    assert_string_equal(buf, "tenant_configurable,defers_unknown");

    p = provider_lookup("mta7.am0.yahoodns.net");
    assert_non_null(p);
    assert_false(provider_is_gateway(p));
    assert_int_equal(p->behaviour, PROVIDER_ACCEPTS_ALL_AT_EDGE);

    p = provider_lookup("mx01.mail.icloud.com");
    assert_non_null(p);
    assert_true(p->behaviour & PROVIDER_VERIFIES_RECIPIENTS);

    assert_int_equal(provider_behaviour_str(0, buf, sizeof buf), strlen("unknown"));
    assert_string_equal(buf, "unknown");
    /* Truncation is reported like snprintf, and the buffer stays terminated. */
    assert_int_equal(
        provider_behaviour_str(PROVIDER_VERIFIES_RECIPIENTS | PROVIDER_FORWARDS, buf, 8),
        strlen("verifies_recipients,forwards"));
    assert_string_equal(buf, "verifie");
    assert_int_equal(provider_behaviour_str(PROVIDER_FORWARDS, NULL, 0), strlen("forwards"));
    assert_false(provider_is_gateway(NULL));
}

/* Read a whole (small) file; NULL on error. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 > cap) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A forgotten regeneration fails here: regenerate to a temporary file and compare. */
static void test_generated_table_is_current(void **state)
{
    char tmp[] = "/tmp/mp_gen_providers_XXXXXX";
    char cmd[1024];
    char *a, *b;
    size_t alen = 0, blen = 0;
    int fd, rc;
    (void)state;

    if (system("python3 -c 'import sys' >/dev/null 2>&1") != 0)
        skip();
    fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "python3 '%s/scripts/gen-providers' -o '%s' '%s/data/providers.tsv'",
             MP_SOURCE_DIR, tmp, MP_SOURCE_DIR);
    rc = system(cmd);
    if (rc != 0) {
        unlink(tmp);
        fail_msg("scripts/gen-providers failed (%d): is data/providers.tsv valid?", rc);
    }
    a = slurp(tmp, &alen);
    b = slurp(MP_SOURCE_DIR "/src/classify/gen_providers.c", &blen);
    unlink(tmp);
    assert_non_null(a);
    assert_non_null(b);
    if (alen != blen || memcmp(a, b, alen) != 0) {
        free(a);
        free(b);
        fail_msg("src/classify/gen_providers.c is stale: run scripts/gen-providers");
    }
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_hosts),
        cmocka_unit_test(test_every_provider_has_a_known_host),
        cmocka_unit_test(test_table_sane),
        cmocka_unit_test(test_longest_suffix_wins),
        cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_case_and_trailing_dot),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_mx_set),
        cmocka_unit_test(test_names_and_flags),
        cmocka_unit_test(test_generated_table_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
