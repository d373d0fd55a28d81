/*
 * mailprobe.h - the one public header of libmailprobe.
 *
 * Status codes are for failures of mailprobe's own machinery or of the caller's
 * input; what a mail server answered is data, recorded in results, never a status.
 */
#ifndef MAILPROBE_H
#define MAILPROBE_H

#include <stddef.h>

typedef enum {
    MP_OK = 0,
    MP_ERR_NOMEM,    /* allocation failed */
    MP_ERR_ARG,      /* invalid argument from the caller */
    MP_ERR_IO,       /* local I/O failed (file, socket creation) */
    MP_ERR_LIMIT,    /* a bounded buffer or table is full */
    MP_ERR_DNS_INIT, /* the resolver could not be set up */
    MP_ERR_TLS_INIT, /* the TLS library could not be set up */
    MP_ERR_CONFIG,   /* a configuration file is malformed */
    MP_ERR_INTERNAL  /* broken invariant */
} mp_status_t;

/** Human text for a status; never NULL. */
const char *mp_strerror(mp_status_t st);

#endif
