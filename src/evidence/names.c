/*
 * names.c - name folding (ICU transliteration) and naming patterns; see names.h.
 *
 * The transliterator "Any-Latin; Latin-ASCII; Lower" is opened once (pthread_once) and
 * used under a mutex: ICU transliterators keep state while they run. Everything else
 * works on fixed-size ASCII tokens: no allocation beyond the UTF-16 work buffers, which
 * are bounded by NAMES_INPUT_MAX.
 */
#include "evidence/names.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ustring.h>
#include <unicode/utrans.h>

#include "util/str.h"

#define NAMES_INPUT_MAX 1024 /* UTF-16 units of one name read; the rest is ignored */

static pthread_once_t trans_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t trans_lock = PTHREAD_MUTEX_INITIALIZER;
static UTransliterator *trans, *trans_ru;

static UTransliterator *trans_open_id(const char *id)
{
    UChar uid[64];
    size_t n = strlen(id);
    for (size_t i = 0; i <= n && i < sizeof uid / sizeof uid[0]; i++)
        uid[i] = (UChar)id[i];
    UErrorCode ec = U_ZERO_ERROR;
    UTransliterator *t = utrans_openU(uid, -1, UTRANS_FORWARD, NULL, 0, NULL, &ec);
    return U_FAILURE(ec) ? NULL : t;
}

/* The scholarly reading of every script, and for Cyrillic also the BGN/PCGN one that
 * passports and most company directories use (Зайцева: zajceva and zaytseva). */
static void trans_open(void)
{
    trans = trans_open_id("Any-Latin; Latin-ASCII; Lower");
    trans_ru = trans_open_id("Russian-Latin/BGN; Any-Latin; Latin-ASCII; Lower");
}

static bool has_cyrillic(const UChar *u, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (u[i] >= 0x0400 && u[i] <= 0x04FF)
            return true;
    return false;
}

static const char *const pattern_names[NP__COUNT] = {
    [NP_FIRST_DOT_LAST] = "first.last", [NP_FLAST] = "flast",
    [NP_FIRST] = "first",               [NP_F_DOT_LAST] = "f.last",
    [NP_FIRST_US_LAST] = "first_last",  [NP_FIRSTLAST] = "firstlast",
    [NP_LAST_DOT_FIRST] = "last.first", [NP_LASTF] = "lastf",
    [NP_LAST] = "last",                 [NP_FIRST_DASH_LAST] = "first-last",
    [NP_FIRSTL] = "firstl",             [NP_FIRST_DOT_L] = "first.l",
    [NP_LASTFIRST] = "lastfirst",       [NP_LAST_US_FIRST] = "last_first",
    [NP_F_LAST_US] = "f_last",
};

const char *names_pattern_name(names_pattern_t p)
{
    return p < NP__COUNT ? pattern_names[p] : "?";
}

const char *names_fit_name(names_fit_t f)
{
    switch (f) {
    case NAMES_NO_EVIDENCE: return "no_evidence";
    case NAMES_FITS_PATTERN: return "fits_pattern";
    case NAMES_FITS_OTHER: return "fits_other_pattern";
    case NAMES_FITS_NEITHER: return "fits_neither";
    }
    return "?";
}

/* Han, kana and Hangul: names written family name first. */
static bool family_first_script(const UChar *u, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        UChar c = u[i];
        if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
            (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF))
            return true;
    }
    return false;
}

/* German spelling of umlauts, before transliteration: ä -> ae, ö -> oe, ü -> ue. */
static bool umlauts_to_e(UChar *u, int32_t *n, int32_t cap)
{
    bool any = false;
    for (int32_t i = 0; i < *n; i++) {
        UChar c = u[i], base = 0;
        switch (c) {
        case 0xE4: base = 'a'; break;
        case 0xF6: base = 'o'; break;
        case 0xFC: base = 'u'; break;
        case 0xC4: base = 'A'; break;
        case 0xD6: base = 'O'; break;
        case 0xDC: base = 'U'; break;
        default: continue;
        }
        if (*n + 1 > cap)
            return any;
        memmove(u + i + 2, u + i + 1, (size_t)(*n - i - 1) * sizeof *u);
        u[i] = base;
        u[i + 1] = (UChar)(base >= 'a' ? 'e' : 'E');
        (*n)++;
        any = true;
    }
    return any;
}

/* Transliterate u in place and write the ASCII result (letters, digits, '-', spaces). */
static mp_status_t to_ascii(UChar *u, int32_t n, int32_t cap, char *out, size_t size, bool ru)
{
    pthread_once(&trans_once, trans_open);
    UTransliterator *t = ru ? trans_ru : trans;
    if (!t)
        return MP_ERR_INTERNAL;
    UErrorCode ec = U_ZERO_ERROR;
    int32_t limit = n;
    pthread_mutex_lock(&trans_lock);
    utrans_transUChars(t, u, &n, cap, 0, &limit, &ec);
    pthread_mutex_unlock(&trans_lock);
    if (U_FAILURE(ec))
        return ec == U_BUFFER_OVERFLOW_ERROR ? MP_ERR_LIMIT : MP_ERR_INTERNAL;
    size_t w = 0;
    mp_status_t st = MP_OK;
    bool space = true;
    for (int32_t i = 0; i < n; i++) {
        UChar c = u[i];
        char a;
        if (c == '\'' || c == 0x2019 || c == 0x02BC || c == 0x02B9 || c == 0x2032)
            continue; /* O'Brien -> obrien; ʼ and ′ come out of some transliterations */
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            a = (char)c;
        else if (c >= 'A' && c <= 'Z')
            a = (char)(c + 32);
        else if (c == '-' || c == 0x2010 || c == 0x2011)
            a = '-';
        else
            a = ' ';
        if (a == ' ' && space)
            continue;
        if (w + 1 >= size) {
            st = MP_ERR_LIMIT;
            break;
        }
        out[w++] = a;
        space = a == ' ';
    }
    while (w && (out[w - 1] == ' ' || out[w - 1] == '-'))
        w--;
    out[w] = '\0';
    return st;
}

static mp_status_t fold(const char *utf8, char *out, size_t size, char *out_de,
                        size_t size_de, bool *umlaut, bool *family_first)
{
    if (size)
        out[0] = '\0';
    if (size_de)
        out_de[0] = '\0';
    int32_t cap = NAMES_INPUT_MAX * 4;
    UChar *u = malloc((size_t)cap * sizeof *u), *u2 = malloc((size_t)cap * sizeof *u2);
    mp_status_t st = MP_OK;
    if (!u || !u2) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    UErrorCode ec = U_ZERO_ERROR;
    int32_t n = 0;
    size_t in = strlen(utf8);
    if (in > NAMES_INPUT_MAX)
        in = NAMES_INPUT_MAX;
    /* invalid UTF-8 becomes U+FFFD, which folds to a space */
    u_strFromUTF8WithSub(u, NAMES_INPUT_MAX, &n, utf8, (int32_t)in, 0xFFFD, NULL, &ec);
    if (U_FAILURE(ec) && ec != U_STRING_NOT_TERMINATED_WARNING) {
        st = MP_ERR_ARG;
        goto done;
    }
    if (family_first)
        *family_first = family_first_script(u, n);
    /* ICU joins Hangul syllables into one word ("gimminjun") where Han receives one word per
     * character: space them the same way, so a family name can be told apart */
    for (int32_t i = 1; i < n && n + 1 < cap; i++)
        if (u[i] >= 0xAC00 && u[i] <= 0xD7AF && u[i - 1] >= 0xAC00 && u[i - 1] <= 0xD7AF) {
            memmove(u + i + 1, u + i, (size_t)(n - i) * sizeof *u);
            u[i++] = ' ';
            n++;
        }
    memcpy(u2, u, (size_t)n * sizeof *u);
    int32_t n2 = n;
    bool de = umlauts_to_e(u2, &n2, cap);
    bool ru = !de && has_cyrillic(u, n);
    if (ru) {
        pthread_once(&trans_once, trans_open);
        ru = trans_ru != NULL;
    }
    if (umlaut)
        *umlaut = de || ru;
    st = to_ascii(u, n, cap, out, size, false);
    if (!st && (de || ru) && size_de)
        st = to_ascii(u2, n2, cap, out_de, size_de, ru);
done:
    free(u);
    free(u2);
    return st;
}

mp_status_t names_fold(const char *utf8, char *out, size_t size)
{
    return fold(utf8, out, size, NULL, 0, NULL, NULL);
}

static bool particle(const char *t)
{
    static const char *const p[] = {"van", "von", "der", "den", "de",  "del", "della", "di",
                                    "da",  "dos", "das", "du",  "le",  "la",  "ter",   "ten",
                                    "bin", "ibn", "al",  "el",  "zu",  "vom", "mac",   NULL};
    for (size_t i = 0; p[i]; i++)
        if (strcmp(t, p[i]) == 0)
            return true;
    return false;
}

/* Split folded text into tokens on spaces and hyphens. Returns the count. */
static size_t tokens(const char *s, char tok[][NAMES_PART_LEN], size_t max, bool *hyphen)
{
    size_t n = 0;
    while (*s && n < max) {
        while (*s == ' ' || *s == '-') {
            if (*s == '-' && n > 0 && hyphen)
                *hyphen = true;
            s++;
        }
        if (!*s)
            break;
        size_t k = 0;
        while (*s && *s != ' ' && *s != '-') {
            if (k + 1 < NAMES_PART_LEN)
                tok[n][k++] = *s;
            s++;
        }
        tok[n][k] = '\0';
        n++;
    }
    return n;
}

static void join(char tok[][NAMES_PART_LEN], size_t n, char sep, char *out, size_t size)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i && sep)
            mp_appendf(out, size, &pos, "%c", sep);
        mp_appendf(out, size, &pos, "%s", tok[i]);
    }
}

/* Split a folded full name into its given-name and last-name strings (words keep their
 * hyphens): "jan van der berg" -> "jan" | "van der berg"; family-name-first scripts
 * ("wang xiao ming") -> "xiao ming" | "wang". */
static void split_full(const char *a, bool fam, char *f, char *l, size_t size)
{
    const char *w[16];
    size_t wl[16], nw = 0;
    for (const char *p = a; *p && nw < 16;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        w[nw] = p;
        wl[nw] = strcspn(p, " ");
        p += wl[nw++];
    }
    size_t ls; /* index of the first word of the last name */
    if (nw <= 1)
        ls = nw;
    else if (fam)
        ls = 0;
    else {
        ls = nw - 1;
        char word[NAMES_PART_LEN];
        while (ls > 1) {
            mp_strlcpyn(word, w[ls - 1], wl[ls - 1], sizeof word);
            if (!particle(word))
                break;
            ls--;
        }
    }
    size_t fp = 0, lp = 0;
    f[0] = l[0] = '\0';
    for (size_t i = 0; i < nw; i++) {
        bool in_last = fam ? i == 0 : i >= ls;
        if (in_last)
            mp_appendf(l, size, &lp, "%s%.*s", lp ? " " : "", (int)wl[i], w[i]);
        else
            mp_appendf(f, size, &fp, "%s%.*s", fp ? " " : "", (int)wl[i], w[i]);
    }
}

mp_status_t names_person_parse(const char *first, const char *last, const char *full,
                               names_person_t *out)
{
    memset(out, 0, sizeof *out);
    char a[512], b[512], ade[512], bde[512];
    bool um1 = false, um2 = false, fam = false;
    mp_status_t st;
    if ((first && *first) || (last && *last)) {
        if ((st = fold(first ? first : "", a, sizeof a, ade, sizeof ade, &um1, NULL)) &&
            st != MP_ERR_LIMIT)
            return st;
        if ((st = fold(last ? last : "", b, sizeof b, bde, sizeof bde, &um2, NULL)) &&
            st != MP_ERR_LIMIT)
            return st;
    } else if (full && *full) {
        const char *comma = strchr(full, ',');
        if (comma) { /* "Smith, John" */
            char l[512];
            mp_strlcpyn(l, full, (size_t)(comma - full), sizeof l);
            return names_person_parse(comma + 1, l, NULL, out);
        }
        char folded[512], folded_de[512];
        if ((st = fold(full, folded, sizeof folded, folded_de, sizeof folded_de, &um1,
                       &fam)) &&
            st != MP_ERR_LIMIT)
            return st;
        split_full(folded, fam, a, b, sizeof a);
        if (um1)
            split_full(folded_de, fam, ade, bde, sizeof ade);
        um2 = um1;
    } else
        return MP_ERR_ARG;
    out->nfirst = tokens(a, out->first, NAMES_PARTS_MAX, &out->first_hyphen);
    out->nlast = tokens(b, out->last, NAMES_PARTS_MAX, &out->last_hyphen);
    if (out->nfirst + out->nlast == 0)
        return MP_ERR_ARG;
    if (um1 || um2) {
        /* the "ue" spelling of the given name's first part and of the whole last name */
        char t[NAMES_PARTS_MAX][NAMES_PART_LEN];
        if (um1 && tokens(ade, t, NAMES_PARTS_MAX, NULL))
            mp_strlcpy(out->first_de, t[0], NAMES_PART_LEN);
        size_t n2 = um2 ? tokens(bde, t, NAMES_PARTS_MAX, NULL) : 0;
        if (n2)
            join(t, n2, 0, out->last_de, NAMES_PART_LEN);
        out->umlaut = out->first_de[0] || out->last_de[0];
    }
    return MP_OK;
}

#define VARIANTS_MAX 8

typedef struct {
    char v[VARIANTS_MAX][NAMES_PART_LEN * NAMES_PARTS_MAX + 8];
    size_t n;
} variants_t;

static void add_variant(variants_t *vs, const char *s)
{
    if (!*s || vs->n >= VARIANTS_MAX)
        return;
    for (size_t i = 0; i < vs->n; i++)
        if (strcmp(vs->v[i], s) == 0)
            return;
    mp_strlcpy(vs->v[vs->n++], s, sizeof vs->v[0]);
}

/* The spellings a system may have made of a (multi-part) name. */
static void name_variants(char tok[][NAMES_PART_LEN], size_t n, bool hyphen, bool is_last,
                          const char *de, variants_t *vs)
{
    char buf[sizeof vs->v[0]];
    vs->n = 0;
    if (!n)
        return;
    if (!is_last)
        add_variant(vs, tok[0]);                 /* the given name: its first part */
    join(tok, n, 0, buf, sizeof buf);            /* smithjones, vanderberg, marieclaire */
    add_variant(vs, buf);
    if (hyphen) {
        join(tok, n, '-', buf, sizeof buf);      /* smith-jones, marie-claire */
        add_variant(vs, buf);
    }
    if (is_last) {
        size_t k = 0;                            /* without particles: berg */
        while (k + 1 < n && particle(tok[k]))
            k++;
        join(tok + k, n - k, 0, buf, sizeof buf);
        add_variant(vs, buf);
        add_variant(vs, tok[0]);                 /* the first of two: smith */
        add_variant(vs, tok[n - 1]);             /* the last of two: jones */
    }
    if (de && *de)
        add_variant(vs, de);
}

/* The local part pattern p gives for given name F and last name L (either may be ""). */
static bool render(names_pattern_t p, const char *F, const char *L, char *out, size_t size)
{
    char f[2] = {F[0], 0}, l[2] = {L[0], 0};
    size_t pos = 0;
    bool needf = true, needl = true;
    switch (p) {
    case NP_FIRST_DOT_LAST: mp_appendf(out, size, &pos, "%s.%s", F, L); break;
    case NP_FLAST: mp_appendf(out, size, &pos, "%s%s", f, L); break;
    case NP_FIRST: mp_appendf(out, size, &pos, "%s", F); needl = false; break;
    case NP_F_DOT_LAST: mp_appendf(out, size, &pos, "%s.%s", f, L); break;
    case NP_FIRST_US_LAST: mp_appendf(out, size, &pos, "%s_%s", F, L); break;
    case NP_FIRSTLAST: mp_appendf(out, size, &pos, "%s%s", F, L); break;
    case NP_LAST_DOT_FIRST: mp_appendf(out, size, &pos, "%s.%s", L, F); break;
    case NP_LASTF: mp_appendf(out, size, &pos, "%s%s", L, f); break;
    case NP_LAST: mp_appendf(out, size, &pos, "%s", L); needf = false; break;
    case NP_FIRST_DASH_LAST: mp_appendf(out, size, &pos, "%s-%s", F, L); break;
    case NP_FIRSTL: mp_appendf(out, size, &pos, "%s%s", F, l); break;
    case NP_FIRST_DOT_L: mp_appendf(out, size, &pos, "%s.%s", F, l); break;
    case NP_LASTFIRST: mp_appendf(out, size, &pos, "%s%s", L, F); break;
    case NP_LAST_US_FIRST: mp_appendf(out, size, &pos, "%s_%s", L, F); break;
    case NP_F_LAST_US: mp_appendf(out, size, &pos, "%s_%s", f, L); break;
    case NP__COUNT: return false;
    }
    return (!needf || *F) && (!needl || *L);
}

unsigned names_match(const char *local, const names_person_t *person)
{
    if (!person || person->nfirst + person->nlast == 0 || !local)
        return 0;
    /* the local part, lower-case, without its +tag; folded when it is not ASCII */
    char lp[320];
    size_t k = 0;
    bool ascii = true;
    for (const char *p = local; *p && *p != '+' && k + 1 < sizeof lp; p++) {
        ascii &= (unsigned char)*p < 0x80;
        lp[k++] = (char)mp_to_lower((unsigned char)*p);
    }
    lp[k] = '\0';
    if (!ascii) {
        /* fold each dot/underscore/dash-separated piece, keeping the separators */
        char out[320], piece[320], fp[320];
        size_t o = 0;
        const char *s = lp;
        while (*s) {
            size_t n = strcspn(s, "._-");
            mp_strlcpyn(piece, s, n, sizeof piece);
            if (names_fold(piece, fp, sizeof fp) != MP_OK)
                return 0;
            for (char *q = fp; *q; q++)
                if (*q != ' ' && o + 1 < sizeof out)
                    out[o++] = *q;
            s += n;
            if (*s && o + 1 < sizeof out)
                out[o++] = *s++;
        }
        out[o] = '\0';
        mp_strlcpy(lp, out, sizeof lp);
    }
    variants_t fv, lv;
    char (*ft)[NAMES_PART_LEN] = (char (*)[NAMES_PART_LEN])person->first;
    char (*lt)[NAMES_PART_LEN] = (char (*)[NAMES_PART_LEN])person->last;
    name_variants(ft, person->nfirst, person->first_hyphen, false, person->first_de, &fv);
    name_variants(lt, person->nlast, person->last_hyphen, true, person->last_de, &lv);
    if (!fv.n)
        add_variant(&fv, "");
    if (!lv.n)
        add_variant(&lv, "");
    unsigned mask = 0;
    char buf[NAMES_PART_LEN * NAMES_PARTS_MAX * 2 + 8];
    for (int p = 0; p < NP__COUNT; p++)
        for (size_t i = 0; i < fv.n && !(mask & (1u << p)); i++)
            for (size_t j = 0; j < lv.n; j++)
                if (render((names_pattern_t)p, fv.v[i], lv.v[j], buf, sizeof buf) &&
                    strcmp(buf, lp) == 0) {
                    mask |= 1u << p;
                    break;
                }
    return mask;
}

bool names_render(names_pattern_t p, const names_person_t *person, char *out, size_t size)
{
    char last[NAMES_PART_LEN * NAMES_PARTS_MAX];
    if (!size)
        return false;
    out[0] = '\0';
    if (!person || person->nfirst + person->nlast == 0 || p >= NP__COUNT)
        return false;
    char (*lt)[NAMES_PART_LEN] = (char (*)[NAMES_PART_LEN])person->last;
    join(lt, person->nlast, 0, last, sizeof last);
    return render(p, person->nfirst ? person->first[0] : "", last, out, size);
}

void names_domain_infer(const char *const *locals, const names_person_t *people, size_t n,
                        names_domain_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (people[i].nfirst + people[i].nlast == 0)
            continue;
        out->named++;
        unsigned m = names_match(locals[i], &people[i]);
        for (int p = 0; p < NP__COUNT; p++)
            if (m & (1u << p))
                out->counts[p]++;
    }
    for (int p = 0; p < NP__COUNT; p++)
        if (out->counts[p] > out->support) {
            out->support = out->counts[p];
            out->best = (names_pattern_t)p;
        }
    out->share = out->named ? (double)out->support / (double)out->named : 0.0;
}

names_fit_t names_fit(const names_domain_t *d, const char *local, const names_person_t *person)
{
    if (!person || person->nfirst + person->nlast == 0)
        return NAMES_NO_EVIDENCE;
    unsigned m = names_match(local, person);
    if (d && d->support && (m & (1u << d->best)))
        return NAMES_FITS_PATTERN;
    return m ? NAMES_FITS_OTHER : NAMES_FITS_NEITHER;
}
