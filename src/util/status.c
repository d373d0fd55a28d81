/* status.c - text for mp_status_t. */
#include "mailprobe.h"

const char *mp_strerror(mp_status_t st)
{
    switch (st) {
    case MP_OK: return "success";
    case MP_ERR_NOMEM: return "out of memory";
    case MP_ERR_ARG: return "invalid argument";
    case MP_ERR_IO: return "input/output error";
    case MP_ERR_LIMIT: return "limit reached";
    case MP_ERR_DNS_INIT: return "cannot initialise the DNS resolver";
    case MP_ERR_TLS_INIT: return "cannot initialise TLS";
    case MP_ERR_CONFIG: return "bad configuration";
    case MP_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
