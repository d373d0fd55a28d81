/*
 * addr_rule.c - names and explanations of the address rules (addr_err_t).
 *
 * The names are part of the output format (JSON "syntax" reasons): never rename one.
 */
#include "addr/addr.h"

static const struct {
    const char *rule;
    const char *text;
} addr_rules[ADDR_ERR__COUNT] = {
    [ADDR_OK] = {"ok", "The address is valid."},
    [ADDR_ERR_EMPTY] = {"empty", "The address is empty."},
    [ADDR_ERR_TOO_LONG] = {"too_long", "The address is longer than 254 octets."},
    [ADDR_ERR_NO_AT] = {"no_at", "There is no '@' between the local part and the domain."},
    [ADDR_ERR_LOCAL_EMPTY] = {"local_empty", "There is nothing before the '@'."},
    [ADDR_ERR_LOCAL_TOO_LONG] = {"local_too_long",
                                 "The part before the '@' is longer than 64 octets."},
    [ADDR_ERR_LOCAL_DOT] = {"local_dot",
                            "The part before the '@' starts or ends with a dot or has two "
                            "dots in a row (allowed only inside quotes)."},
    [ADDR_ERR_LOCAL_CHAR] = {"local_char",
                             "The part before the '@' has a character that is allowed only "
                             "inside quotes, or not at all."},
    [ADDR_ERR_QUOTE] = {"quote",
                        "The quoted part before the '@' is malformed (unbalanced quote, bad "
                        "escape, control character or text after the closing quote)."},
    [ADDR_ERR_DOMAIN_EMPTY] = {"domain_empty", "There is nothing after the '@'."},
    [ADDR_ERR_DOMAIN_TOO_LONG] = {"domain_too_long",
                                  "The domain is longer than 255 octets in its ASCII form."},
    [ADDR_ERR_LABEL_EMPTY] = {"label_empty",
                              "The domain starts or ends with a dot or has two dots in a row."},
    [ADDR_ERR_LABEL_TOO_LONG] = {"label_too_long",
                                 "A part of the domain between dots is longer than 63 octets."},
    [ADDR_ERR_LABEL_HYPHEN] = {"label_hyphen",
                               "A part of the domain between dots starts or ends with '-'."},
    [ADDR_ERR_DOMAIN_CHAR] = {"domain_char",
                              "The domain has a character other than letters, digits, '-' "
                              "and '.'."},
    [ADDR_ERR_DOMAIN_NUMERIC] = {"domain_numeric",
                                 "The domain ends in an all-numeric label; an IP address "
                                 "must be written as a literal such as [192.0.2.1]."},
    [ADDR_ERR_DOMAIN_SINGLE] = {"domain_single",
                                "The domain has a single label (no dot) and cannot be "
                                "reached on the Internet."},
    [ADDR_ERR_LITERAL] = {"literal",
                          "The address literal is not a valid [IPv4] or [IPv6:...] "
                          "address."},
    [ADDR_ERR_IDN] = {"idn", "The internationalised domain name is not valid under IDNA2008."},
    [ADDR_ERR_UTF8] = {"utf8", "The address contains bytes that are not valid UTF-8."},
};

const char *addr_err_rule(addr_err_t err)
{
    if ((unsigned)err >= ADDR_ERR__COUNT)
        return "unknown";
    return addr_rules[err].rule;
}

const char *addr_err_text(addr_err_t err)
{
    if ((unsigned)err >= ADDR_ERR__COUNT)
        return "Unknown rule.";
    return addr_rules[err].text;
}
