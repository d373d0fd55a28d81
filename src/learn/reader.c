/*
 * reader.c - the files `mailprobe learn` is given: Maildir and plain directories, mbox
 * files, single messages (.eml), CSV exports. Each message is read whole into a bounded
 * buffer (LEARN_MSG_MAX) and handed to learn_message_read; events go to the caller's
 * callback at once, so nothing found before a failure is lost.
 * Does not: parse messages (dsn.c) or CSV (csv.c), store anything.
 */
#include "learn/learn.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/buf.h"
#include "util/str.h"

#define DIR_DEPTH_MAX 8

static void set_err(char *err, size_t errsize, const char *path, const char *why)
{
    if (errsize)
        snprintf(err, errsize, "%s: %s", path, why);
}

static mp_status_t one_message(const char *data, size_t len, const char *src,
                               learn_event_cb cb, void *arg, learn_stats_t *stats)
{
    learn_event_t *ev = calloc(LEARN_EVENTS_MAX, sizeof *ev);
    if (!ev)
        return MP_ERR_NOMEM;
    size_t n = 0;
    mp_status_t st = learn_message_read(data, len, ev, &n);
    stats->messages++;
    if (n)
        stats->bounces++;
    for (size_t i = 0; !st && i < n; i++)
        st = cb(&ev[i], src, arg);
    free(ev);
    return st;
}

/* mbox (RFC 4155): a message starts at a line "From " at the start of the file or after
 * a blank line. */
static mp_status_t read_mbox(FILE *f, const char *path, learn_event_cb cb, void *arg,
                             learn_stats_t *stats, char *err, size_t errsize)
{
    mp_buf_t msg;
    mp_buf_init(&msg, LEARN_MSG_MAX);
    char line[8192];
    char src[1200];
    mp_status_t st = MP_OK;
    bool prev_blank = true, in_msg = false, at_line_start = true;
    size_t count = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        bool starts = at_line_start && prev_blank && strncmp(line, "From ", 5) == 0;
        at_line_start = n && line[n - 1] == '\n';
        if (starts) {
            if (in_msg) {
                snprintf(src, sizeof src, "%s:message %zu", path, count);
                st = one_message(msg.data, msg.len, src, cb, arg, stats);
                if (st)
                    goto done;
            }
            mp_buf_reset(&msg);
            in_msg = true;
            count++;
            prev_blank = false;
            continue; /* the separator line is not part of the message */
        }
        if (!in_msg) {
            set_err(err, errsize, path, "not an mbox file (no \"From \" line first)");
            st = MP_ERR_CONFIG;
            goto done;
        }
        prev_blank = at_line_start && (n == 1 || (n == 2 && line[0] == '\r'));
        if (mp_buf_add(&msg, line, n) != MP_OK) {
            snprintf(src, sizeof src, "message %zu is larger than %u MiB", count,
                     LEARN_MSG_MAX >> 20);
            set_err(err, errsize, path, src);
            st = MP_ERR_LIMIT;
            goto done;
        }
    }
    if (ferror(f)) {
        set_err(err, errsize, path, "read error");
        st = MP_ERR_IO;
        goto done;
    }
    if (in_msg) {
        snprintf(src, sizeof src, "%s:message %zu", path, count);
        st = one_message(msg.data, msg.len, src, cb, arg, stats);
    }
done:
    mp_buf_cleanup(&msg);
    return st;
}

static mp_status_t read_whole(FILE *f, const char *path, learn_event_cb cb, void *arg,
                              learn_stats_t *stats, char *err, size_t errsize)
{
    mp_buf_t msg;
    mp_buf_init(&msg, LEARN_MSG_MAX);
    char chunk[65536];
    size_t n;
    mp_status_t st = MP_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (mp_buf_add(&msg, chunk, n) != MP_OK) {
            set_err(err, errsize, path, "message larger than 64 MiB");
            st = MP_ERR_LIMIT;
            goto done;
        }
    if (ferror(f)) {
        set_err(err, errsize, path, "read error");
        st = MP_ERR_IO;
        goto done;
    }
    st = one_message(msg.data, msg.len, path, cb, arg, stats);
done:
    mp_buf_cleanup(&msg);
    return st;
}

/* Does the first line read like a header field ("Name: value")? */
static bool header_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (mp_is_alnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_'))
        i++;
    return i > 0 && i < n && s[i] == ':';
}

/* in_dir: found by walking a directory, where a file that is neither mail nor named
 * .csv/.tsv (a README, an index, a lock file) is skipped rather than read as CSV */
static mp_status_t read_file(const char *path, bool in_dir, const learn_csv_opts_t *csv,
                             learn_event_cb cb, void *arg, learn_stats_t *stats, char *err,
                             size_t errsize)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errsize, path, strerror(errno));
        return MP_ERR_IO;
    }
    char head[1024];
    size_t n = fread(head, 1, sizeof head - 1, f);
    head[n] = '\0';
    mp_status_t st;
    if (ferror(f)) {
        set_err(err, errsize, path, "read error");
        st = MP_ERR_IO;
    } else if (n >= 5 && strncmp(head, "From ", 5) == 0) {
        rewind(f);
        st = read_mbox(f, path, cb, arg, stats, err, errsize);
    } else if (header_line(head, n) && !mp_str_iends(path, ".csv")) {
        rewind(f);
        st = read_whole(f, path, cb, arg, stats, err, errsize);
    } else if (n == 0) {
        st = MP_OK; /* an empty mbox is an empty mailbox */
    } else if (in_dir && !mp_str_iends(path, ".csv") && !mp_str_iends(path, ".tsv")) {
        stats->skipped_files++;
        st = MP_OK;
    } else {
        fclose(f);
        return learn_csv_read(path, csv, cb, arg, stats, err, errsize);
    }
    fclose(f);
    return st;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static mp_status_t read_dir(const char *path, int depth, const learn_csv_opts_t *csv,
                            learn_event_cb cb, void *arg, learn_stats_t *stats, char *err,
                            size_t errsize)
{
    if (depth > DIR_DEPTH_MAX) {
        set_err(err, errsize, path, "directories nested too deep");
        return MP_ERR_LIMIT;
    }
    DIR *d = opendir(path);
    if (!d) {
        set_err(err, errsize, path, strerror(errno));
        return MP_ERR_IO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    mp_status_t st = MP_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        /* dot files: Maildir's .Trash etc. are folders of their own, and the tmp/ of a
         * Maildir holds messages still being written */
        if (de->d_name[0] == '.' || strcmp(de->d_name, "tmp") == 0)
            continue;
        char **nn = mp_array_grow(names, &cap, n, sizeof *nn, 64);
        if (!nn) {
            st = MP_ERR_NOMEM;
            goto done;
        }
        names = nn;
        if (!(names[n] = strdup(de->d_name))) {
            st = MP_ERR_NOMEM;
            goto done;
        }
        n++;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n && !st; i++) {
        char sub[4096];
        struct stat sb;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, names[i]) >= sizeof sub) {
            set_err(err, errsize, path, "path too long");
            st = MP_ERR_IO;
            break;
        }
        if (stat(sub, &sb) != 0) {
            set_err(err, errsize, sub, strerror(errno));
            st = MP_ERR_IO;
        } else if (S_ISDIR(sb.st_mode))
            st = read_dir(sub, depth + 1, csv, cb, arg, stats, err, errsize);
        else if (S_ISREG(sb.st_mode))
            st = read_file(sub, true, csv, cb, arg, stats, err, errsize);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    if (st == MP_ERR_NOMEM)
        set_err(err, errsize, path, "out of memory");
    return st;
}

mp_status_t learn_path_read(const char *path, const learn_csv_opts_t *csv, learn_event_cb cb,
                            void *arg, learn_stats_t *stats, char *err, size_t errsize)
{
    struct stat sb;
    if (errsize)
        err[0] = '\0';
    if (stat(path, &sb) != 0) {
        set_err(err, errsize, path, strerror(errno));
        return MP_ERR_IO;
    }
    if (S_ISDIR(sb.st_mode))
        return read_dir(path, 0, csv, cb, arg, stats, err, errsize);
    return read_file(path, false, csv, cb, arg, stats, err, errsize);
}
