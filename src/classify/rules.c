/*
 * rules.c - what SMTP replies mean, as data.
 *
 * Three ordered tables (see classify_int.h for the record and classify.c for the walk;
 * docs/internals/classify.md for why this order). Every rule names the real reply it was
 * written for; tests/data/replies.tsv holds those replies and what they must mean, and
 * test_classify checks that every rule here is exercised by at least one line there.
 *
 * Text alternatives are lower case and matched against the reply text after it has been
 * lower-cased, whitespace-collapsed, stripped of repeated enhanced codes, given a leading
 * space (so " rbl" means "rbl at a word start") and had every address replaced by "@"
 * (classify.c): an echoed address such as <spam@marble.example> never matches a rule.
 * To add a rule: add the reply to tests/data/replies.tsv first, watch it fail, then add
 * the narrowest rule that fixes it, at the right place in the right table.
 */
#include "classify/classify_int.h"

#define S_ANY CL_S_ANY
#define S_RCPT CL_S_RCPT

/* Texts of a disabled, suspended or inactive mailbox (text:disabled*, hint:disabled). */
#define DISABLED_TEXTS                                                                             \
    "account disabled|account is disabled|mailbox disabled|mailbox is disabled|"                   \
    "is disabled|has been disabled|deactivated|inactive|suspended|is no longer valid|"             \
    "user is locked|account is locked|mailbox is frozen|account has been closed|"                  \
    "account closed|discontinued|no longer accepts mail|disabled recipient|"                        \
    "administratively disabled|extended inactivity|due to inactivity"

/* Texts of "this host does not take mail for that domain" (rules text:relay-denied*). */
#define RELAY_TEXTS                                                                                \
    "relay access denied|relaying denied|relay denied|relay not permitted|"                        \
    "unable to relay|relaying not allowed|relay not allowed|not permitted to relay|"               \
    "we do not relay|relay prohibited|relaying prohibited|list of allowed rcpthosts|"              \
    "not in my list of allowed|denies relay|not a local domain|not local domain"

/* ---------------------------------------------------------------------------------- */
/* 1. Exceptions: text that overrides the codes. Checked first, first match wins.     */
/* ---------------------------------------------------------------------------------- */
const cl_rule_t cl_exceptions[] = {
    /* Trouble of the receiving system itself, reported as 4xx: temporary, not
     * greylisting, even when the text says "try again later". Before the policy texts:
     * Postfix reports a broken HELO lookup table as "Helo command rejected".
     *   452 4.4.5 Insufficient disk space; try again later (Sendmail)
     *   451 Temporary local problem - please try later (Exim)
     *   451 4.3.5 <foobar>: Helo command rejected: Server configuration error (Postfix)
     *   451 4.3.0 <x> Temporary internal error (Dovecot LMTP) */
    {"text:system-temporary", S_ANY, CL_C4, 0, NULL,
     "insufficient disk space|insufficient system storage|temporary local problem|"
     "server configuration error|temporary internal error|temporary system|"
     "local error in processing|qq temporary problem",
     NULL, CL_TEMPORARY, "the receiving system has a temporary problem of its own"},

    /* Rate limits, whatever code they come with (a receiving-rate limit sent as 5.2.1
     * would otherwise read as "mailbox disabled").
     *   450 4.2.1 The user you are trying to contact is receiving mail too quickly (Gmail)
     *   550 5.2.1 The user you are trying to contact is receiving mail at a rate that
     *       prevents additional messages from being delivered (Gmail)
     *   421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected
     *       volume or user complaints (Yahoo)
     *   451 4.7.650 The mail server [192.0.2.5] has been temporarily rate limited due to IP
     *       reputation (Outlook.com)
     *   450 4.2.1 <x>: Mailbox received too much email in a short period of time (G30)
     *       (Rackspace)
     *   550 This IP has sent too many messages this hour. IB504 (GoDaddy) */
    {"text:rate-limit", S_ANY, CL_C45, 0, NULL,
     "rate limit|rate-limit|ratelimit|receiving mail too quickly|receiving mail at a rate|"
     "too many connections|too many concurrent|too many sessions|"
     "too many messages this|too many messages per|too many messages from|"
     "too many to too many|"
     "max message per connection|due to excessive volume|due to unexpected volume|"
     "received too much email|too fast|slow down|throttl",
     NULL, CL_RATE_LIMITED,
     "the server limits how fast we may send; slow down and try again later"},

    /* "Too many recipients" (RFC 5321 §4.5.3.1.10; X.5.3, RFC 3463 §3.6): a limit on
     * this transaction or this sender, not on the mailbox and not a rate limit of the
     * server; the engine asks again in a transaction or session of its own. After the
     * rate-limit rule: "550 This IP has sent too many to too many recipients this hour.
     * IB607" (GoDaddy) is a rate limit.
     *   452 4.5.3 Your message has too many recipients. (Gmail)
     *   452 This message contains too many recipients. (GoDaddy IB605)
     *   552 Too many recipients (NTT docomo)  452 4.5.3 Error: too many recipients
     *       (Postfix smtpd_recipient_limit) */
    {"text:too-many-rcpts", S_RCPT, CL_C45, 0, NULL,
     "too many recipients|too many rcpt",
     NULL, CL_TOO_MANY_RCPTS,
     "the server takes no more recipients in this transaction or from this sender"},
    /*   452 4.5.3 Domain policy size per transaction exceeded, please try this
     *       recipient in a separate transaction. (Google Workspace)
     *   452 4.5.3 Recipients belong to multiple regions ATTR38 (Outlook.com) */
    {"enh:x.5.3", S_RCPT, CL_C45, 0, "*.5.3", NULL, NULL, CL_TOO_MANY_RCPTS,
     "X.5.3: too many recipients (RFC 3463)"},

    /* A recipient whose mailbox exists but is blocked or archived, in words that the
     * policy rules below would read as a refusal of us ("blocked").
     *   550 5.5.0 Le compte du destinataire est bloque. The recipient account isblocked.
     *       LPN007_426 (La Poste)
     *   550 5.5.0 Boite du destinataire archivee. Archived recipient. LPN007_420 */
    {"text:recipient-blocked", S_RCPT, CL_C5, 0, NULL,
     "recipient account isblocked|recipient account is blocked|"
     "compte du destinataire est bloque|archived recipient|boite du destinataire archivee",
     NULL, CL_MAILBOX_DISABLED, "the mailbox exists but is blocked or archived"},

    /* The recipient's own preferences refuse us: the mailbox exists, our mail will not
     * reach it.
     *   550 5.1.1 RCP-P2 http://postmaster.facebook.com/response_codes?ip=192.0.2.135#rcp
     *       Refused due to recipient preferences (Facebook) */
    {"text:recipient-preferences", S_RCPT, CL_C5, 0, NULL,
     "recipient preferences|refused due to recipient", NULL, CL_RECIPIENT_REFUSED,
     "the recipient's own settings refuse this mail; the mailbox exists"},

    /* Sender rules come before the DNSBL/auth/policy texts: a reply that names our
     * sender address ("553 5.7.1 <verify@lab.test>: Sender address rejected: domain
     * lab.test is not allowed to send here", Postfix check_sender_access) is about the
     * sender, whatever else its text says. */
    /* Replies about OUR envelope sender, even when they say "user unknown" or carry
     * 5.1.1, and even at RCPT: Postfix evaluates smtpd_sender_restrictions at RCPT by
     * default (smtpd_delay_reject=yes).
     *   550 5.1.0 <probe@example.org>: Sender address rejected: User unknown in local
     *       recipient table (Postfix reject_unlisted_sender)
     *   450 4.1.8 <x@example.jp>: Sender address rejected: Domain not found (iCloud)
     *   550-Verification failed for <probe@example.org> / 550 Sender verify failed (Exim)
     *   553 5.1.8 <probe@example.org>... Domain of sender address probe@example.org does
     *       not exist (Sendmail)
     *   550 5.1.0 Sender denied (Exchange)  550 5.1.7 Unknown sender address (Exchange) */
    {"text:sender", S_ANY, CL_C45, 0, NULL,
     "sender address rejected|sender verify failed|sender verification failed|"
     "domain of sender address|sender denied|unknown sender|invalid sender|"
     "sender rejected|sender address is not valid|sender domain must exist|"
     "sender domain does not exist|sender address unknown|outbound sender",
     NULL, CL_SENDER_REJECTED,
     "the server refused our envelope sender (MAIL FROM), not the recipient"},

    /* Refusals of US (our IP, host name, HELO, domain or message): they say nothing
     * about the mailbox even when sent as 550 or 5.1.1, at any stage, 4xx or 5xx.
     * Several rules only so that the explanation names the cause; all mean the same.
     *
     * DNS block lists:
     *   554 5.7.1 Service unavailable; Client host [203.0.113.45] blocked using
     *       zen.spamhaus.org (Postfix reject_rbl_client)
     *   554 Service unavailable; Client host [x] blocked using Barracuda Reputation
     *   553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.25, because the ip
     *       is in Spamhaus's list (Yahoo)
     *   550 5.7.1 Rejecting mail, 192.0.2.1 is blacklisted (Symantec Email Security.cloud)
     *   554 rbl deny. (NetEase)  550 black ip. (NetEase) */
    {"text:dnsbl", S_ANY, CL_C45, 0, NULL,
     "spamhaus|spamcop|barracudacentral|barracuda reputation|sorbs|dnsbl| rbl|rbl |(rbl|"
     "blacklist|blocklist|block list|black list|denylist|black ip|blocked using",
     NULL, CL_POLICY_BLOCKED, "our IP or domain is on a DNS block list the server uses"},
    /* Reverse DNS of our IP:
     *   450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1] (Postfix)
     *   421 Temporarily rejected. Reverse DNS for this IP failed. IB108 (GoDaddy)
     *   450 4.7.1 Client host 192.0.2.1 has no PTR record (G1F) (Rackspace) */
    {"text:rdns", S_ANY, CL_C45, 0, NULL,
     "cannot find your hostname|ptr record|reverse dns|rdns|reverse lookup", NULL,
     CL_POLICY_BLOCKED, "the server refused our IP for its reverse DNS (PTR)"},
    /* Our HELO name:
     *   504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname (Postfix)
     *   550 5.7.506 Access denied, Bad HELO; HELO host impersonates ... (Exchange Online) */
    {"text:helo", S_ANY, CL_C45, 0, NULL, "helo command rejected|bad helo|invalid helo", NULL,
     CL_POLICY_BLOCKED, "the server refused our HELO name"},
    /* Sender authentication (SPF, DKIM, DMARC) of our domain:
     *   550 5.7.26 ... has an SPF record with a hard fail policy (-all) (Gmail)
     *   550 5.7.1 SPF check failed: 192.0.2.1 is not authorized to send in the name of
     *       example.org (Yandex)
     *   550 5.7.1 [IP] The IP you're using to send mail is not authorized to send email
     *       directly to our servers. (Gmail) */
    {"text:auth", S_ANY, CL_C45, 0, NULL,
     "spf|dkim|dmarc|not allowed to send|not authorized to send|not permitted to send", NULL,
     CL_POLICY_BLOCKED, "our domain's SPF/DKIM/DMARC or our IP's right to send was refused"},
    /* TLS demanded:
     *   421 4.7.0 TLS required for RCPT domain, closing connection. (Gmail)
     *   530 5.7.0 Must issue a STARTTLS command first. (Gmail)
     *   553 This route requires encryption (TLS) (Mimecast) */
    {"text:tls-required", S_ANY, CL_C45, 0, NULL,
     "tls required|requires encryption|requires tls|must issue a starttls", NULL, CL_POLICY_BLOCKED,
     "the server demands TLS for this session"},
    /* Reputation, network type, spoofing:
     *   550 5.7.1 Our system has detected that this message is likely suspicious due to the
     *       very low reputation of the sending IP address (Gmail)
     *   421 Sorry, we do not accept mail from dynamic IPs (Mail.ru)
     *   421 4.7.0 Rejecting open proxy 192.0.2.1 (Sendmail)
     *   550 5.7.606 Access denied, banned sending IP [192.0.2.1] (Exchange Online)
     *   550 rejecting spoofed message (Barracuda) */
    {"text:reputation", S_ANY, CL_C45, 0, NULL,
     "reputation|banned|spoof|open proxy|dynamic ip|dial-up|dialup|residential", NULL,
     CL_POLICY_BLOCKED, "the server refused our IP or domain for its reputation"},
    /* Content filters:
     *   550 5.7.1 Message rejected under suspicion of SPAM (Yandex)
     *   554 5.7.1 Email cannot be delivered. Reason: Email flagged as Spam. (Zoho) */
    {"text:spam", S_ANY, CL_C45, 0, NULL, "spam", NULL, CL_POLICY_BLOCKED,
     "the server's spam filter refused us; this says nothing about the mailbox"},
    /* Other blocks and local policy:
     *   550 permanent failure for one or more recipients (x@example.com:blocked) (Barracuda)
     *   550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi (Proofpoint)
     *   421 4.7.0 IP not in whitelist for RCPT domain, closing connection. (Gmail)
     *   554 5.7.9 Message not accepted for policy reasons. (Yahoo)
     *   550 5.7.1 [CS01] Message rejected due to local policy. (iCloud)
     *   550 Denied by policy (Symantec)
     *   550 mwinf5c10 ME Service refuse. Veuillez essayer plus tard. Service refused,
     *       please try later. OFR006_103 (Orange) */
    {"text:policy", S_ANY, CL_C45, 0, NULL,
     "blocked|not in whitelist|whitelisted|rejected due to policy|denied by policy|"
     "rejected by policy|policy reasons|due to local policy|policy violation|"
     "service refused|service refuse",
     NULL, CL_POLICY_BLOCKED, "the server blocked us by its policy, not for the mailbox"},

    /* A temporary "access denied": our IP is restricted for a while.
     *   451 4.7.500 Access denied, please try again later. AS(8561) (Exchange Online,
     *       4.7.500-699: suspicious activity, temporarily restricted) */
    {"text:temp-access-denied", S_ANY, CL_C4, 0, NULL, "access denied, please try again later",
     NULL, CL_RATE_LIMITED, "our IP is temporarily restricted; back off and retry later"},

    /* 421: the service is closing the channel (RFC 5321 §3.8, §4.2.3); servers use it for
     * connection and rate limits. Any stage.
     *   421 4.7.0 Try again later, closing connection. (Gmail, at HELO)
     *   421 Too many concurrent connections from this client (G2) (Rackspace)
     *   421 Server temporarily unavailable. Try again later. IB101 (GoDaddy) */
    {"code:421", S_ANY, CL_C4, 421, NULL, NULL, NULL, CL_RATE_LIMITED,
     "421: the server closed the session for now (load or connection limit)"},

    /* Mailbox full, at 4xx or 5xx, whatever the enhanced code says.
     *   452 4.2.2 The email account that you tried to reach is over quota (Gmail)
     *   552 5.2.2 <x@icloud.com>: user is over quota (iCloud)
     *   550 5.7.1 Email quota exceeded (Gmail, Sisimai rhost/google.rb)
     *   552 5.2.2 Over STORAGE quota (T-Online)
     *   550 Benutzer hat zuviele Mails auf dem Server. / User has too many messages on
     *       the server. (web.de)
     *   552 5.2.2 <x> Quota exceeded (mailbox for user is full) (Dovecot LMTP) */
    {"text:mailbox-full", S_RCPT, CL_C45, 0, NULL,
     "mailbox full|mailbox is full|mailbox has exceeded|over quota|overquota|"
     "quota exceeded|exceeded quota|exceeds quota|quota violation|out of storage space|"
     "exceeded storage allocation|exhausted allowed storage|account storage limit|"
     "mailbox size limit|too many messages on the server|disk quota|mailfolder is full|"
     "user has exceeded|storage quota",
     NULL, CL_MAILBOX_FULL, "the mailbox exists but is full"},

    /* Greylisting (RFC 6647): a temporary refusal of a first attempt; retry later.
     *   450 4.2.0 <x>: Recipient address rejected: Greylisted, see
     *       http://postgrey.schweikert.ch/help/example.com.html (postgrey)
     *   451 4.7.1 Greylisting in action, please come back in 00:05:00 (milter-greylist)
     *   422 4.2.2 Greylisted, please try again in a few moments. (Stalwart; 4.2.2 would
     *       otherwise read as "mailbox full")
     *   451 Internal resources are temporarily unavailable (Mimecast greylisting)
     *   451 4.7.1 Please try again later (generic) */
    {"text:greylist", S_ANY, CL_C4, 0, NULL,
     "greylist|graylist|grey-list|gray-list|grey list|gray list|try again later|"
     "please try later|retry later|come back later|please come back|try again in|"
     "internal resources are temporarily unavailable",
     NULL, CL_GREYLISTED, "a temporary refusal that reads as greylisting; retry later"},

    /* Relaying denied: this host does not take mail for the recipient's domain, so the
     * domain's MX is wrong or the domain is not served here (5xx only; Postfix sends 454
     * for defer_unauth_destination, which stays temporary).
     *   554 5.7.1 <x@example.com>: Relay access denied (Postfix, iCloud)
     *   553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1) (qmail)
     *   550 5.7.1 Unable to relay (Exchange)
     *   550 5.4.1 Relay Access Denied (Exchange Online)
     *   550 relay not permitted (Exim)  550 relaying denied for <x@yahoo.com> (Yahoo)
     *   553 5.3.0 <x@example.com>... Relaying denied (Sendmail) */
    {"text:relay-denied", S_RCPT, CL_C5, 0, NULL, RELAY_TEXTS, NULL, CL_RELAY_DENIED,
     "this server does not accept mail for the recipient's domain (relaying denied)"},
    /*   454 4.7.1 <x@gmail.com>: Relay access denied (Postfix defer_unauth_destination):
     * the same words at 4xx stay temporary (and are not an "access denied" of us). */
    {"text:relay-denied-4xx", S_RCPT, CL_C4, 0, NULL, RELAY_TEXTS, NULL, CL_TEMPORARY,
     "a temporary refusal to relay for the recipient's domain; try again later"},

    /* A mailbox that does not exist, under the "bad destination system" code.
     *   550 5.1.2 Mailbox does not exist. (Stalwart) */
    {"text:mailbox-under-5.1.2", S_RCPT, CL_C5, 0, "5.1.2",
     "mailbox does not exist|mailbox not found|no such mailbox|no such user|user unknown",
     NULL, CL_MAILBOX_ABSENT, "the server says there is no such mailbox"},

    /* "not found OR access denied": either; the wording does not settle it.
     *   550 Mailbox not found or access denied (jordan-wright/email#97) */
    {"text:absent-or-denied", S_RCPT, CL_C5, 0, NULL,
     "not found or access denied|unavailable or access denied", NULL, CL_PERM_OTHER,
     "the server says the mailbox is absent OR that we are refused; it does not say which"},

    /* Microsoft 365 directory-based edge blocking: the tenant rejects a recipient that is
     * not in its directory with this text, not with 5.1.1.
     *   550 5.4.1 Recipient address rejected: Access denied. AS(201806281) */
    {"ms:dbeb", S_RCPT, CL_C5, 0, "5.4.1", "access denied", NULL, CL_MAILBOX_ABSENT,
     "Microsoft 365 directory-based edge blocking: the recipient is not in the tenant's "
     "directory"},

    /* Exchange Online uses 5.1.10 (RFC 7505 "null MX") for an unknown recipient.
     *   550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address
     *       lookup */
    {"ms:recipient-not-found", S_RCPT, CL_C5, 0, "5.1.10", "recipientnotfound|recipient not found",
     NULL, CL_MAILBOX_ABSENT, "Exchange: the recipient was not found by SMTP address lookup"},

    /* A disabled or inactive mailbox reported under an X.1.x "bad address" code.
     *   550 5.1.1 <x@icloud.com>: inactive email address (iCloud) */
    {"text:disabled-under-5.1", S_RCPT, CL_C5, 0, "5.1.*", DISABLED_TEXTS, NULL,
     CL_MAILBOX_DISABLED, "the mailbox exists but is disabled or inactive"},

    /* A disabled mailbox under a 5.7.x code, which alone reads "refused us".
     *   525 5.7.13 Disabled recipient address (sisimai set-of-emails)
     *   525 5.7.13 <x>: Recipient address rejected: User account disabled.
     *   554 5.7.1 rejected: Inactive user (inbox.lv, after 9 months unused) */
    {"text:disabled-under-5.7", S_RCPT, CL_C5, 0, "5.7.*", DISABLED_TEXTS,
     "recipient|mailbox|inactive user", CL_MAILBOX_DISABLED,
     "the mailbox exists but is disabled or inactive"},

    /* "No such user" under an enhanced code that says something else.
     *   550 5.7.1 <x@tutanota.com>: Recipient address rejected: Recipient not found (Tuta)
     *   550 5.7.1 No such user! (Yandex)
     *   550 5.2.1 <EXAMPLE@PRODIGY.NET>... Addressee unknown (AT&T) */
    {"text:user-unknown", S_RCPT, CL_C5, 0, NULL,
     "no such user|user unknown|unknown user|user not found|user does not exist|"
     "user doesn't exist|addressee unknown|recipient not found",
     NULL, CL_MAILBOX_ABSENT, "the server says there is no such user"},

    /* Unknown users hidden behind a 4xx: Postfix with soft_bounce=yes, or an
     * address-verification probe whose answer was already "unknown".
     *   450 4.1.1 <x@example.com>: Recipient address rejected: User unknown in virtual
     *       mailbox table (Postfix, soft_bounce)
     *   450 4.1.1 <x@example.com>: Recipient address rejected: unverified address: host
     *       mx.example.com[192.0.2.7] said: 550 5.1.1 <x@example.com>: Recipient address
     *       rejected: User unknown in local recipient table (Postfix
     *       reject_unverified_recipient, unverified_recipient_reject_code=450) */
    {"text:unknown-in-table-4xx", S_RCPT, CL_C4, 0, NULL,
     "user unknown in local recipient table|user unknown in virtual mailbox table|"
     "user unknown in virtual alias table|user unknown in relay recipient table",
     NULL, CL_MAILBOX_ABSENT,
     "a temporary code, but the server's recipient table has no such user"},
    {"text:unverified-unknown-4xx", S_RCPT, CL_C4, 0, NULL, "unverified address",
     "user unknown|unknown user|no such user|does not exist|doesn't exist|not found|"
     "undeliverable address",
     CL_MAILBOX_ABSENT,
     "a temporary code, but the server's own address probe found no such mailbox"},

    /* A bare "access denied" is a refusal of us (recipient access maps, firewalls).
     *   554 5.7.1 <x>: Recipient address rejected: Access denied (Postfix
     *       check_recipient_access)
     *   521 access denied (Symantec Email Security.cloud) */
    {"text:access-denied", S_ANY, CL_C45, 0, NULL, "access denied|denied access", NULL,
     CL_POLICY_BLOCKED, "the server denied us access; this says nothing about the mailbox"},
};
const size_t cl_exceptions_len = sizeof cl_exceptions / sizeof cl_exceptions[0];

/* ---------------------------------------------------------------------------------- */
/* 2. Enhanced status codes, RFC 3463 (+ RFC 7505 X.1.10). RCPT only.                   */
/*    Codes not listed (5.0.0, 5.1.9, 5.2.0, 5.4.x, 5.5.0, 4.x except below) decide     */
/*    nothing: the text and then the basic code do.                                      */
/* ---------------------------------------------------------------------------------- */
const cl_rule_t cl_enh_rules[] = {
    /* 550 5.1.1 The email account that you tried to reach does not exist. (Gmail) */
    {"enh:5.1.1", S_RCPT, CL_C5, 0, "5.1.1", NULL, NULL, CL_MAILBOX_ABSENT,
     "5.1.1: bad destination mailbox address (RFC 3463)"},
    /* X.1.0 "other address status" and X.1.3 "bad mailbox address syntax" say the server
     * refused the address as written, not that the mailbox is absent: the session's
     * controls decide (sched/trouble.c).
     *   550 5.1.0 Address rejected. (Sisimai userunknown.rb)
     *   553 5.1.3 The recipient address <x> is not a valid RFC 5321 address. (Gmail)
     *   501 5.1.3 Invalid address (Microsoft Exchange, skynet/monit#2) */
    {"enh:5.1.0|5.1.3", S_RCPT, CL_C5, 0, "5.1.0|5.1.3", NULL, NULL, CL_PERM_OTHER,
     "5.1.0/5.1.3: the address was refused as written; this alone does not say the "
     "mailbox is absent"},
    /* 550 5.1.6 recipient no longer on server: x@icloud.com (iCloud) */
    {"enh:5.1.6", S_RCPT, CL_C5, 0, "5.1.6", NULL, NULL, CL_MAILBOX_ABSENT,
     "5.1.6: the mailbox has moved away and is no longer here"},
    /* 553 5.1.2 We weren't able to find the recipient domain. (Gmail) */
    {"enh:5.1.2", S_RCPT, CL_C5, 0, "5.1.2", NULL, NULL, CL_DOMAIN_ABSENT,
     "5.1.2: bad destination system address: the domain is not served here"},
    /* RFC 7505 §4.2: X.1.10 "Recipient address has null MX" */
    {"enh:5.1.10", S_RCPT, CL_C5, 0, "5.1.10", NULL, NULL, CL_DOMAIN_ABSENT,
     "5.1.10: the recipient domain has a null MX (RFC 7505)"},
    /* X.1.7 bad sender mailbox syntax, X.1.8 bad sender system address (RFC 3463):
     *   550 5.1.7 Invalid address (Exchange, sender check delayed to RCPT) */
    {"enh:sender", S_RCPT, CL_C45, 0, "*.1.7|*.1.8", NULL, NULL, CL_SENDER_REJECTED,
     "X.1.7/X.1.8: our sender address or its domain was refused (RFC 3463)"},
    /* 550 5.2.1 <x@gmx.de>... User is inactive (GMX; the text would say so too) */
    {"enh:5.2.1", S_RCPT, CL_C5, 0, "5.2.1", NULL, NULL, CL_MAILBOX_DISABLED,
     "5.2.1: mailbox disabled, not accepting messages (RFC 3463)"},
    /* 452 4.2.2 The recipient's inbox is out of storage space. (Gmail) — also 5.2.2 */
    {"enh:x.2.2", S_RCPT, CL_C45, 0, "*.2.2", NULL, NULL, CL_MAILBOX_FULL,
     "X.2.2: mailbox full (RFC 3463)"},
    /* 550 5.7.1 <x>: Recipient address rejected: blocked by local policy — any 5.7.x:
     * security or policy status (RFC 3463 §3.8), a refusal of us, not of the mailbox. */
    {"enh:5.7", S_RCPT, CL_C5, 0, "5.7.*", NULL, NULL, CL_POLICY_BLOCKED,
     "5.7.x: security or policy refusal (RFC 3463), not about the mailbox"},
    /* 501 5.5.2 Syntax error, cannot decode response. (Gmail) — 5.5.x but 5.5.0, which
     * Outlook.com puts on "550 5.5.0 Requested action not taken: mailbox unavailable" */
    {"enh:5.5", S_RCPT, CL_C5, 0, "5.5.1|5.5.2|5.5.3|5.5.4|5.5.5|5.5.6", NULL, NULL,
     CL_PROTOCOL_ERROR, "5.5.x: the server reports a protocol problem with our command"},
    /* 552 5.2.3 Your message exceeded Google's message size limits. (Gmail) and other
     * message-level codes: they say nothing about the mailbox. */
    {"enh:5.2.3", S_RCPT, CL_C5, 0, "5.2.3", NULL, NULL, CL_PERM_OTHER,
     "5.2.3: message too long; says nothing about the mailbox"},
    {"enh:5.3", S_RCPT, CL_C5, 0, "5.3.*", NULL, NULL, CL_PERM_OTHER,
     "5.3.x: a problem of the receiving mail system, not of the mailbox"},
    {"enh:5.6", S_RCPT, CL_C5, 0, "5.6.*", NULL, NULL, CL_PERM_OTHER,
     "5.6.x: a message content problem; says nothing about the mailbox"},
};
const size_t cl_enh_rules_len = sizeof cl_enh_rules / sizeof cl_enh_rules[0];

/* ---------------------------------------------------------------------------------- */
/* 3. Text hints: read only when the enhanced code decided nothing. RCPT, 5xx.          */
/* ---------------------------------------------------------------------------------- */
const cl_rule_t cl_hints[] = {
    /* Disabled, suspended or inactive mailboxes, when no enhanced code decided.
     *   554 delivery error: dd x@yahoo.com is no longer valid. (Yahoo)
     *   554 30 Sorry, your message to x@aol.jp cannot be delivered. This mailbox is
     *       disabled (554.30) (AOL/Yahoo)
     *   550 Account disabled (GoDaddy)  550 user is locked (163.com)
     *   550 <x>: Recipient address rejected: Account Closed (Lycos)
     *   550 Due to extended inactivity new mail is not currently being accepted for this
     *       mailbox. (suped.com, bounce of an abandoned mailbox) */
    {"hint:disabled", S_RCPT, CL_C5, 0, NULL, DISABLED_TEXTS, NULL, CL_MAILBOX_DISABLED,
     "the mailbox exists but is disabled or inactive"},
    /* 501 is "syntax error in parameters or arguments" (RFC 5321 §4.2.3): the server
     * refused our RCPT argument as written, whatever words follow.
     *   501 Invalid address (Mimecast)  501 5.1.3 Invalid address (Exchange) */
    {"hint:501", S_RCPT, CL_C5, 501, NULL, NULL, NULL, CL_PERM_OTHER,
     "501: the server refused the argument of RCPT as written; this alone does not say "
     "the mailbox is absent"},
    /*   554 delivery error: dd This user doesn't have a yahoo.com account (Yahoo)
     *   511 sorry, no mailbox here by that name (#5.1.1 - chkuser) (qmail)
     *   550 Unrouteable address (Exim)  550 Invalid Recipient  550 MAILBOX NOT FOUND (AOL)
     *   552 1 Requested mail action aborted, mailbox not found (Yahoo) */
    {"hint:mailbox-absent", S_RCPT, CL_C5, 0, NULL,
     "doesn't have a|does not have a|no mailbox|"
     "mailbox not found|no such mailbox|no such recipient|"
     "no such address|recipient not found|recipient unknown|unknown recipient|"
     "invalid recipient|invalid mailbox|invalid address|address unknown|unknown address|"
     "address not found|unrouteable address|unroutable address|"
     "not a valid mailbox|not a valid recipient|not a valid user|not exist|doesn't exist|"
     "no longer on server|unknown or illegal alias|"
     "unknown local part|not listed in domino directory|mailbox unallocated|"
     "no account by that name|there is no one at this address|unavailable mail user|"
     "benutzer nicht bekannt|utilisateur inconnu",
     NULL, CL_MAILBOX_ABSENT, "the server says there is no such mailbox"},
    /* A user named and said to be missing or invalid, in words the list above lacks.
     *   550 Local User [x@123.com] not found. (Coremail)
     *   550 info@sbb.ch refused: user invalid (mailgun/mailgun-php#105) */
    {"hint:user-not-found", S_RCPT, CL_C5, 0, NULL, "user", "not found|user invalid",
     CL_MAILBOX_ABSENT, "the server says there is no such user"},
    /*   553 5.1.2 Unknown mail server. Could not find a mail server for example.com
     *   550 <x@example.com>: Recipient address rejected: Domain not found (Postfix) */
    {"hint:domain-absent", S_RCPT, CL_C5, 0, NULL,
     "domain not found|no such domain|unknown domain|domain does not exist|"
     "could not find a mail server|invalid domain|domain is not hosted",
     NULL, CL_DOMAIN_ABSENT, "the server says it does not serve the recipient's domain"},
};
const size_t cl_hints_len = sizeof cl_hints / sizeof cl_hints[0];
