/*
 * fuzz_intel.c - libFuzzer target over the whole intel path: addr_parse, then
 * intel_analyze, plus the pure functions on the raw bytes (domain suggestion, gibberish,
 * role, list look-ups), which must accept any NUL-terminated string.
 *
 * Invariants checked (abort on violation): the score is within 0..1; a suggestion is
 * never the unchanged address and always has an '@'; a disposable match offset lies
 * inside the domain. An input starting with "LIST\n" is instead the content of a user
 * allow/deny list file (intel/userlist.h): written to a temporary file, loaded, and
 * matched against a few addresses. The corpus (tests/fuzz/corpus/intel/) replays in
 * every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr/addr.h"
#include "intel/intel.h"
#include "intel/userlist.h"

#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_intel: invariant broken: %s\n", what);
        abort();
    }
}

static void fuzz_userlist(const uint8_t *data, size_t size)
{
    static char path[] = "/tmp/mp-fuzz-userlist-XXXXXX";
    static int fd = -1;
    if (fd < 0 && (fd = mkstemp(path)) < 0)
        return;
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(data, 1, size, f);
    fclose(f);
    userlist_t *ul;
    if (userlist_new(&ul) != MP_OK)
        return;
    char err[300];
    mp_status_t st = userlist_load(ul, path, err, sizeof err);
    check(st == MP_OK || err[0] != '\0', "error text on failure");
    static const char *const probe[] = {"trap@example.com", "x@a.b.example.org", "a#b@x.y"};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        addr_t a;
        userlist_match_t m;
        addr_parse(probe[i], strlen(probe[i]), &a);
        if (userlist_match(ul, &a, &m))
            check(m.line >= 1 && m.file && m.entry, "match location");
    }
    userlist_free(ul);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    if (size >= 5 && memcmp(data, "LIST\n", 5) == 0) {
        fuzz_userlist(data + 5, size - 5);
        return 0;
    }
    static addr_t a;
    static intel_t in;
    addr_parse((const char *)data, size, &a);
    intel_analyze(&a, &in);
    check(in.gibberish_score >= 0.0 && in.gibberish_score <= 1.0, "score range");
    check(in.gibberish == (in.gibberish_score >= INTEL_GIBBERISH_THRESHOLD), "gibberish flag");
    check(in.has_suggestion == (in.suggestion[0] != '\0'), "suggestion flag");
    check(in.has_suggestion == (in.typo != INTEL_TYPO_NONE), "typo kind");
    if (in.has_suggestion) {
        check(strchr(in.suggestion, '@') != NULL, "suggestion has @");
        check(strcmp(in.suggestion, a.normalized) != 0, "suggestion unchanged");
    }
    if (in.disposable)
        check(in.disposable_at < strlen(a.domain_ascii), "disposable offset");
    if (a.err != ADDR_OK)
        check(!in.disposable && !in.free && !in.role && !in.has_suggestion, "invalid is blank");

    /* the pure functions on the raw input as one string */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char out[256];
    intel_typo_t k = intel_suggest_domain(s, out, sizeof out);
    check(k == INTEL_TYPO_NONE ? out[0] == '\0' : strcmp(out, s) != 0, "suggest_domain");
    double g = intel_gibberish_score(s);
    check(g >= 0.0 && g <= 1.0, "raw score range");
    (void)intel_local_role(s);
    size_t at = 0;
    if (intel_domain_disposable(s, NULL, &at, NULL))
        check(at < strlen(s), "raw disposable offset");
    (void)intel_domain_free(s, NULL);
    (void)intel_domain_lookup(s, strlen(s));
    (void)intel_osa_distance(s, strlen(s), "gmail.com", 9, 2);
    free(s);
    return 0;
}
