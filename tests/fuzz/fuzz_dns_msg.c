/* fuzz_dns_msg.c - the DNS response walker must survive any bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dns_msg_info_t info;
    if (dns_msg_scan(data, size, &info)) {
        if (memchr(info.qname, '\0', sizeof info.qname) == NULL ||
            memchr(info.final, '\0', sizeof info.final) == NULL)
            abort();
        if (info.cnames == 0 && strcmp(info.qname, info.final) != 0)
            abort();
    }
    return 0;
}
