/*
 * addr_int.h - private declarations shared by the files of the addr module.
 *
 * Not for other modules: they include addr/addr.h only.
 */
#ifndef MP_ADDR_INT_H
#define MP_ADDR_INT_H

#include <stddef.h>

#include "addr/addr.h"

/**
 * Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 * @param s  the bytes, at least one
 * @param n  how many bytes are readable at s (n >= 1)
 * @return 1..4, or 0 when the sequence is ill-formed or truncated
 */
size_t addr_utf8_len(const unsigned char *s, size_t n);

/**
 * Convert a domain to its A-label form with libidn2 (IDNA2008 + UTS#46 mapping,
 * non-transitional; see docs/internals/addr.md for the fallback).
 * @param in     NUL-terminated, valid UTF-8 domain (U-labels, A-labels, LDH labels)
 * @param ascii  receives the lower-case A-label form
 * @param size   size of ascii
 * @return ADDR_OK, or the rule the domain broke (label_hyphen, label_too_long,
 *         domain_too_long, idn)
 */
addr_err_t addr_idn_to_ascii(const char *in, char *ascii, size_t size);

/**
 * Convert an A-label domain to its Unicode form, and check that the A-labels in it are
 * the ones IDNA2008 would produce (a round trip back to ASCII gives the same text), so a
 * fake or non-canonical "xn--" label is refused.
 * @param ascii  NUL-terminated, lower-case A-label form (output of addr_idn_to_ascii)
 * @param uni    receives the Unicode form
 * @param size   size of uni
 * @return ADDR_OK or ADDR_ERR_IDN
 */
addr_err_t addr_idn_to_unicode(const char *ascii, char *uni, size_t size);

#endif
