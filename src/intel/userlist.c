/*
 * userlist.c - the user's allow / deny lists; see userlist.h for the file format.
 *
 * Entries are kept as lower-case keys in one array, sorted once per loaded file:
 * "local@domain" for an address, "domain" for a domain (the '@' keeps the two kinds
 * apart). Lines are read into a fixed buffer: a line longer than USERLIST_LINE_MAX is
 * an error, never a reallocation. Does not: decide policy, watch files for changes.
 */
#include "intel/userlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"

typedef struct {
    char *key;
    char *display; /* "key (note)\0note", or NULL when the line had no note */
    unsigned line;
    unsigned file;   /* index in files[] */
    unsigned order;  /* load order, so the first loaded wins on duplicates */
    bool is_domain;
} ul_entry_t;

struct userlist {
    ul_entry_t *e;
    size_t n, cap;
    char **files;
    size_t nfiles;
};

mp_status_t userlist_new(userlist_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? MP_OK : MP_ERR_NOMEM;
}

void userlist_free(userlist_t *ul)
{
    if (!ul)
        return;
    for (size_t i = 0; i < ul->n; i++) {
        free(ul->e[i].key);
        free(ul->e[i].display);
    }
    for (size_t i = 0; i < ul->nfiles; i++)
        free(ul->files[i]);
    free(ul->e);
    free(ul->files);
    free(ul);
}

size_t userlist_count(const userlist_t *ul)
{
    return ul ? ul->n : 0;
}

static int entry_cmp(const void *x, const void *y)
{
    const ul_entry_t *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    if (c)
        return c;
    return a->order < b->order ? -1 : a->order > b->order ? 1 : 0;
}

static void set_err(char *err, size_t errsize, const char *path, unsigned line, const char *why,
                    const char *text)
{
    size_t pos = 0;
    if (!errsize)
        return;
    err[0] = '\0';
    if (line)
        mp_appendf(err, errsize, &pos, "%s:%u: %s", path, line, why);
    else
        mp_appendf(err, errsize, &pos, "%s: %s", path, why);
    if (text)
        mp_appendf(err, errsize, &pos, ": '%.80s'", text);
}

/* Turn one trimmed, non-empty line into a key. Returns a rule name on error. */
static const char *make_key(const char *s, char *key, size_t keysize, bool *is_domain)
{
    addr_t *a = malloc(sizeof *a); /* ~2 KiB: keep it off small thread stacks */
    if (!a)
        return "out of memory";
    const char *why = NULL;
    const char *at = strrchr(s, '@');
    if (!at || at == s) {
        /* a domain, written "example.com" or "@example.com" */
        const char *d = at ? at + 1 : s;
        if (!at && d[0] == '*' && d[1] == '.')
            d += 2; /* "*.example.com": what every domain entry means anyway */
        else if (!at && d[0] == '.')
            d += 1;
        char buf[USERLIST_LINE_MAX + 8];
        size_t pos = 0;
        if (*d == '\0' || strchr(d, '@') || !mp_appendf(buf, sizeof buf, &pos, "x@%s", d)) {
            why = "not an address or a domain";
            goto done;
        }
        if (addr_parse(buf, pos, a) != ADDR_OK || a->literal) {
            why = a->err != ADDR_OK ? addr_err_text(a->err) : "address literals are not domains";
            goto done;
        }
        mp_strlcpy(key, a->domain_ascii, keysize);
        *is_domain = true;
    } else {
        if (addr_parse(s, strlen(s), a) != ADDR_OK) {
            why = addr_err_text(a->err);
            goto done;
        }
        size_t pos = 0;
        if (!mp_appendf(key, keysize, &pos, "%s@%s", a->local, a->domain_ascii)) {
            why = "entry too long";
            goto done;
        }
        *is_domain = false;
    }
    mp_str_lower(key);
done:
    free(a);
    return why;
}

static mp_status_t add_entry(userlist_t *ul, const char *key, const char *note, unsigned line,
                             unsigned file, bool is_domain)
{
    if (ul->n >= USERLIST_ENTRIES_MAX)
        return MP_ERR_LIMIT;
    ul_entry_t *ne = mp_array_grow(ul->e, &ul->cap, ul->n, sizeof *ne, 64);
    if (!ne)
        return MP_ERR_NOMEM;
    ul->e = ne;
    char *k = strdup(key);
    if (!k)
        return MP_ERR_NOMEM;
    char *d = NULL;
    if (note && *note) {
        /* "key (note)" then, after its NUL, the note alone */
        size_t kn = strlen(k), nn = strlen(note);
        if (!(d = malloc(kn + 2 * nn + 5))) {
            free(k);
            return MP_ERR_NOMEM;
        }
        snprintf(d, kn + nn + 4, "%s (%s)", k, note);
        memcpy(d + kn + nn + 4, note, nn + 1);
    }
    ul->e[ul->n] = (ul_entry_t){k, d, line, file, (unsigned)ul->n, is_domain};
    ul->n++;
    return MP_OK;
}

mp_status_t userlist_load(userlist_t *ul, const char *path, char *err, size_t errsize)
{
    mp_status_t st = MP_OK;
    size_t first = ul->n;
    unsigned lineno = 0;
    if (errsize)
        err[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errsize, path, 0, strerror(errno), NULL);
        return MP_ERR_IO;
    }
    char **nf = realloc(ul->files, (ul->nfiles + 1) * sizeof *nf);
    if (!nf) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    ul->files = nf;
    if (!(ul->files[ul->nfiles] = strdup(path))) {
        st = MP_ERR_NOMEM;
        goto done;
    }
    unsigned fidx = (unsigned)ul->nfiles++;

    char line[USERLIST_LINE_MAX + 2];
    char key[USERLIST_LINE_MAX + 8];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            set_err(err, errsize, path, lineno, "line too long", NULL);
            st = MP_ERR_CONFIG;
            goto done;
        }
        /* '#' starts a comment at the start of a line or after white space only:
         * it is a valid character inside a local part; an entry's comment is its note */
        const char *note = NULL;
        for (size_t i = 0; i < len; i++)
            if (line[i] == '#' && (i == 0 || mp_is_space((unsigned char)line[i - 1]))) {
                line[i] = '\0';
                note = mp_str_trim(line + i + 1);
                break;
            }
        char *s = mp_str_trim(line);
        if (*s == '\0')
            continue;
        for (char *p = s; *p; p++)
            if (mp_is_space((unsigned char)*p)) {
                set_err(err, errsize, path, lineno, "more than one entry on a line", s);
                st = MP_ERR_CONFIG;
                goto done;
            }
        bool is_domain = false;
        const char *why = make_key(s, key, sizeof key, &is_domain);
        if (why) {
            set_err(err, errsize, path, lineno, why, s);
            st = MP_ERR_CONFIG;
            goto done;
        }
        st = add_entry(ul, key, note, lineno, fidx, is_domain);
        if (st) {
            set_err(err, errsize, path, lineno,
                    st == MP_ERR_LIMIT ? "too many entries" : "out of memory", NULL);
            goto done;
        }
    }
    if (ferror(f)) {
        set_err(err, errsize, path, 0, "read error", NULL);
        st = MP_ERR_IO;
        goto done;
    }
done:
    fclose(f);
    if (st) { /* nothing of a failed file is kept */
        for (size_t i = first; i < ul->n; i++) {
            free(ul->e[i].key);
            free(ul->e[i].display);
        }
        ul->n = first;
        return st;
    }
    if (ul->n > 1)
        qsort(ul->e, ul->n, sizeof *ul->e, entry_cmp);
    return MP_OK;
}

static const ul_entry_t *find(const userlist_t *ul, const char *key)
{
    size_t lo = 0, hi = ul->n;
    while (lo < hi) { /* leftmost match: the first loaded of duplicates */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ul->e[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ul->n && strcmp(ul->e[lo].key, key) == 0 ? &ul->e[lo] : NULL;
}

bool userlist_match(const userlist_t *ul, const addr_t *a, userlist_match_t *m)
{
    if (!ul || !ul->n || !a || a->err != ADDR_OK)
        return false;
    char key[sizeof a->local + sizeof a->domain_ascii + 2];
    size_t pos = 0;
    const ul_entry_t *e = NULL;
    if (mp_appendf(key, sizeof key, &pos, "%s@%s", a->local, a->domain_ascii)) {
        mp_str_lower(key);
        e = find(ul, key);
    }
    if (!e && !a->literal) {
        mp_strlcpy(key, a->domain_ascii, sizeof key);
        mp_str_lower(key);
        size_t n = strlen(key);
        if (n && key[n - 1] == '.')
            key[--n] = '\0';
        for (const char *d = key; d && *d && !e;) {
            e = find(ul, d);
            const char *dot = strchr(d, '.');
            d = dot ? dot + 1 : NULL;
        }
    }
    if (!e)
        return false;
    if (m) {
        m->file = ul->files[e->file];
        m->line = e->line;
        m->entry = e->display ? e->display : e->key;
        m->key = e->key;
        m->note = e->display ? e->display + strlen(e->display) + 1 : "";
        m->is_domain = e->is_domain;
    }
    return true;
}
