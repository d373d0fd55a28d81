/*
 * learn.h - read what real mail already proved: bounce messages (RFC 3464 delivery status
 * notifications and the common non-standard bounce texts of Exim, qmail, Postfix, Sendmail,
 * Microsoft, Google, Yahoo...) from mbox files, Maildir directories and single .eml files,
 * and bounce/delivery exports in CSV from sending services.
 *
 * Each recipient a message or a CSV row speaks of becomes one learn_event_t: a hard bounce
 * (the remote server said the mailbox or its domain does not exist or is disabled), a
 * soft bounce (any other failure or delay: full mailbox, policy block, timeout...) or a
 * delivery. Whether a failure proves the mailbox absent is read by classify, the same way
 * an SMTP reply is, so a "550 5.7.1 blocked using spamhaus" bounce never becomes a
 * deny-list entry.
 *
 * Does not: store anything (the caller decides: the CLI writes the deny list and the
 * store's address history), open network connections, follow links. Bounce parsing uses
 * GMime; the message parser (dsn.c) is pure over one message, the reader (reader.c) owns
 * the files. Every piece of text taken from a message is bounded (LEARN_TEXT_MAX).
 */
#ifndef MP_LEARN_H
#define MP_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailprobe.h"

#define LEARN_TEXT_MAX (1024u * 1024u) /* bytes of a part's text read per message */
#define LEARN_MSG_MAX (64u * 1024u * 1024u) /* a single .eml/Maildir file larger is refused */
#define LEARN_EVENTS_MAX 64u            /* recipients taken from one message */

typedef enum {
    LEARN_HARD,      /* permanent and about the mailbox/domain: goes to the deny list */
    LEARN_SOFT,      /* any other failure or delay: recorded, never denies */
    LEARN_DELIVERED  /* a delivery (DSN Action: delivered/relayed/expanded, CSV "delivered") */
} learn_kind_t;

/** One recipient's fate. Strings are NUL-terminated, single-line, bounded. */
typedef struct {
    char addr[320];      /* the recipient, as found (not normalised) */
    learn_kind_t kind;
    char status[16];     /* RFC 3463 status "5.1.1", "" when none was given */
    char outcome[24];    /* classify's reading, e.g. "mailbox_absent"; "" for deliveries */
    char reason[400];    /* the diagnostic text, one line, e.g. "550 5.1.1 User unknown" */
    int64_t when;        /* Unix time of the bounce/event, 0 when unknown */
} learn_event_t;

/** The name of a kind: "hard", "soft", "delivered". */
const char *learn_kind_name(learn_kind_t k);

/**
 * Read the events of one message (a bounce, or nothing for an ordinary message).
 * Pure: no I/O beyond the bytes given.
 * @param data,len the raw message (RFC 5322, LF or CRLF or CR line ends)
 * @param ev       array of at least LEARN_EVENTS_MAX events to fill
 * @param n        receives how many were filled (0: not a bounce)
 * @return MP_OK; MP_ERR_NOMEM
 */
mp_status_t learn_message_read(const char *data, size_t len, learn_event_t *ev, size_t *n);

/** Called for each event found; src says where ("FILE", "FILE:message N", "FILE:line N").
 *  A status other than MP_OK stops the reading, and learn_path_read returns it. */
typedef mp_status_t (*learn_event_cb)(const learn_event_t *ev, const char *src, void *arg);

/** Column choices for CSV exports: NULL to detect from the header. */
typedef struct {
    const char *email_col, *type_col, *reason_col, *date_col;
} learn_csv_opts_t;

/** Counts of one learn_path_read call. */
typedef struct {
    size_t messages;   /* messages read (mbox, Maildir, .eml) */
    size_t bounces;    /* of them, messages that yielded at least one event */
    size_t rows;       /* CSV rows read */
    size_t skipped;    /* CSV rows whose type says nothing we keep (opens, clicks...) */
    size_t skipped_files; /* files in a directory that are neither mail nor .csv/.tsv */
} learn_stats_t;

/**
 * Read one path: a directory (a Maildir's cur/ and new/, or every file of a plain
 * directory, recursively, in name order; tmp/ and dot entries skipped, and files that
 * are neither mail nor named .csv/.tsv counted in skipped_files), an mbox file (starts
 * with "From "), a single message (starts with a header field), else a CSV export.
 * Events go to cb as they are found, so a failure later in the path loses nothing
 * already handed over.
 * @return MP_OK; MP_ERR_IO (unreadable path, err says which), MP_ERR_CONFIG (a CSV
 *         whose columns cannot be found, or a file that is neither mail nor CSV),
 *         MP_ERR_LIMIT (a message over LEARN_MSG_MAX), or what cb returned
 */
mp_status_t learn_path_read(const char *path, const learn_csv_opts_t *csv, learn_event_cb cb,
                            void *arg, learn_stats_t *stats, char *err, size_t errsize);

/**
 * Read one CSV export (learn_path_read calls it for files that are neither mail nor mbox).
 * @param path  the file
 * @param o     column names, or NULL to detect them all from the header
 * @return as learn_path_read
 */
mp_status_t learn_csv_read(const char *path, const learn_csv_opts_t *o, learn_event_cb cb,
                           void *arg, learn_stats_t *stats, char *err, size_t errsize);

/** Classify one failure the way the remote server meant it: sets ev->kind (HARD or SOFT)
 *  and ev->outcome from ev->status, the reply code and text found in ev->reason. */
void learn_event_judge(learn_event_t *ev, bool permanent);

/** Parse an RFC 5322 / RFC 3339 / "YYYY-MM-DD[ HH:MM[:SS]]" / Unix-seconds date; 0 when
 *  it is none of these. */
int64_t learn_date_parse(const char *s);

#endif
