/*
 * addr_idn.c - internationalised domain names through libidn2.
 *
 * Converts a domain between its Unicode (U-label) and ASCII (A-label) forms, IDNA2008
 * (RFC 5890-5893) with the UTS#46 mapping, so that "bücher.de", "BÜCHER.de" and
 * "xn--bcher-kva.de" all become "xn--bcher-kva.de". It does not check LDH syntax of the
 * result; addr.c does that on the A-label form. libidn2 allocates its results; they are
 * copied into the caller's buffers and freed before returning.
 */
#include <idn2.h>
#include <string.h>

#include "addr/addr_int.h"
#include "util/str.h"

/* Which rule a libidn2 status means, as far as it names one of ours. */
static addr_err_t idn_err(int rc)
{
    switch (rc) {
    case IDN2_TOO_BIG_DOMAIN: return ADDR_ERR_DOMAIN_TOO_LONG;
    case IDN2_TOO_BIG_LABEL:
    case IDN2_PUNYCODE_BIG_OUTPUT: return ADDR_ERR_LABEL_TOO_LONG;
    case IDN2_HYPHEN_STARTEND: return ADDR_ERR_LABEL_HYPHEN;
    case IDN2_ENCODING_ERROR: return ADDR_ERR_UTF8;
    default: return ADDR_ERR_IDN;
    }
}

addr_err_t addr_idn_to_ascii(const char *in, char *ascii, size_t size)
{
    uint8_t *res = NULL;
    addr_err_t err = ADDR_OK;

    /*
     * Non-transitional IDNA2008, as registries and mail systems (Postfix' default) do
     * today, and as RFC 6531 §3.2 requires of SMTPUTF8 domains. There is no
     * transitional (IDNA2003-style) fallback: symbols and emoji ("€", "¡", "💩") are
     * DISALLOWED code points, so such a domain is not a valid mail domain even where an
     * old registration still resolves.
     */
    int rc = idn2_lookup_u8((const uint8_t *)in, &res, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK) {
        err = idn_err(rc);
        goto done;
    }
    if (mp_strlcpy(ascii, (const char *)res, size) >= size) {
        err = ADDR_ERR_DOMAIN_TOO_LONG;
        goto done;
    }
    mp_str_lower(ascii);
done:
    idn2_free(res);
    if (err && size)
        ascii[0] = '\0';
    return err;
}

addr_err_t addr_idn_to_unicode(const char *ascii, char *uni, size_t size)
{
    char *res = NULL;
    char back[ADDR_DOMAIN_MAX + 1];
    addr_err_t err = ADDR_OK;

    /* idn2_to_unicode_8z8z decodes Punycode but does not validate the result ... */
    int rc = idn2_to_unicode_8z8z(ascii, &res, 0);
    if (rc != IDN2_OK || mp_strlcpy(uni, res, size) >= size) {
        err = ADDR_ERR_IDN;
        goto done;
    }
    /* ... so require the round trip: a fake or non-canonical A-label does not survive. */
    if (addr_idn_to_ascii(uni, back, sizeof back) != ADDR_OK || strcmp(back, ascii) != 0)
        err = ADDR_ERR_IDN;
done:
    idn2_free(res);
    if (err && size)
        uni[0] = '\0';
    return err;
}
