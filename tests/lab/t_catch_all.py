#!/usr/bin/python3
"""Accept-all domains, gateways and providers (issue 4): the catch-all probe.

A check alone for its server sends, in the same write as the real RCPT, a second RCPT for
a random 20-character local part at the same domain, after the postmaster@ control (issue
13, sched/trouble.h), which comes right after the real recipients. Among other checks for
the same server, the probe is sent only when it can tell something (issue 11): in a later
write of the session, for a domain none of whose addresses was refused as unknown. Each scenario asserts the verdict and reason,
smtp.catch_all (true / false / null), both replies (smtp.code/enhanced/message and
smtp.probe.*), and the exact commands: those our client sent (the transcript in the JSON)
and, where the server logs them, those the server received. One session, never DATA
(labkit checks every transcript; the last test checks every server log).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import PF, SCRIPT, client_commands, is_probe_address, probe_rcpts  # noqa: E402
from smtpscript import BEHAVIOURS  # noqa: E402

IP = {b: ip for ip, b in BEHAVIOURS.items()}  # every behaviour, also those labkit lacks

EHLO = "EHLO probe.lab.test"
MAIL = "MAIL FROM:<verify@lab.test>"
PLAIN = [EHLO, MAIL]                                 # no STARTTLS offered
TLS = [EHLO, "STARTTLS", EHLO, MAIL]                 # Postfix mbox offers STARTTLS
PF_REJECT = "<%s>: Recipient address rejected: %s"   # how Postfix words a refusal


def rcpt(addr):
    return "RCPT TO:<%s>" % addr


def pm(domain):
    """The postmaster@ control RCPT, sent after the real ones and before the probe."""
    return rcpt("postmaster@" + domain)


class ProbeCase(labkit.LabCase):
    def check(self, address, *extra, **kw):
        kw.setdefault("probe", True)
        return labkit.check(address, *extra, **kw)

    def probe_of(self, r, domain):
        """The probe the result reports; it is a random 20-char local part at domain, the
        one the client sent, and was sent exactly once in this check."""
        p = r["smtp"]["probe"]
        self.assertIsNotNone(p, "no smtp.probe in %s" % r.get("_run"))
        local, _, dom = p["rcpt"].rpartition("@")
        self.assertEqual(dom, domain)
        self.assertTrue(is_probe_address(p["rcpt"]), p["rcpt"])
        self.assertNotEqual(local, r["syntax"]["local"])
        return p

    def assertProbe(self, r, domain, code, enhanced, message, cached=False):
        p = self.probe_of(r, domain)
        self.assertEqual((p["code"], p["enhanced"], p["message"], p["cached"]),
                         (code, enhanced, message, cached), p)
        return p["rcpt"]

    def assertReply(self, r, code, enhanced, message):
        s = r["smtp"]
        self.assertEqual((s["code"], s["enhanced"], s["message"]), (code, enhanced, message))

    def assertCatchAll(self, r, value):
        self.assertIn("catch_all", r["smtp"])
        if value is None:
            self.assertIsNone(r["smtp"]["catch_all"], "catch_all must be null (inconclusive)")
        else:
            self.assertIs(r["smtp"]["catch_all"], value)

    def assertFactor(self, r, factor):
        self.assertIn(factor, [f["factor"] for f in r["score_factors"]], r["score_factors"])

    def assertOneSession(self, r, ip, expected):
        """expected: the commands the server saw; the result was reported before QUIT."""
        self.assertCommands(r, labkit.until_report(expected))
        self.assertEqual(labkit.ips_contacted(r), [ip])
        self.assertEqual(r["smtp"]["attempts"], 1)
        self.assertEqual(r["smtp"]["mx_ip"], ip)


# --------------------------------------------------------------------------- Postfix
class PostfixCatchAll(ProbeCase):
    """catchall.test: virtual_alias_maps @catchall.test, every local part accepted."""

    def test_both_accepted_is_accept_all(self):
        mark = labkit.postfix_mark()
        addr = "jane.doe@catchall.test"
        r = self.check(addr)
        self.assertVerdict(r, "risky", "accept_all")
        self.assertEqual(r["smtp"]["result"], "unavailable")
        self.assertCatchAll(r, True)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.assertProbe(r, "catchall.test", 250, "2.1.5", "Ok")
        self.assertOneSession(r, PF["catchall"], PLAIN + [rcpt(addr), pm("catchall.test"), rcpt(probe), "QUIT"])
        self.assertEqual(probe_rcpts(r), [probe])
        self.assertFactor(r, "accept_all")
        self.assertIsNone(r["domain"]["provider"])
        self.assertIs(r["domain"]["gateway"], False)
        # the server saw one session with three RCPTs (the address, postmaster@, the
        # probe), all accepted, and QUIT
        self.assertEqual(labkit.postfix_disconnect_stats(mark, "catchall"),
                         [{"ehlo": "1", "mail": "1", "rcpt": "3", "quit": "1",
                           "commands": "6"}])


class PostfixMailboxes(ProbeCase):
    """postfix.test: fixed mailboxes; unknown local parts 550 5.1.1."""

    UNKNOWN = "User unknown in virtual mailbox table"

    def test_mailbox_and_probe_refused_is_deliverable(self):
        mark = labkit.postfix_mark()
        r = self.check("alice@postfix.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["smtp"]["result"], "accepted")
        self.assertCatchAll(r, False)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.probe_of(r, "postfix.test")["rcpt"]
        self.assertProbe(r, "postfix.test", 550, "5.1.1", PF_REJECT % (probe, self.UNKNOWN))
        self.assertOneSession(r, PF["mbox"], TLS + [rcpt("alice@postfix.test"),
                                                    pm("postfix.test"), rcpt(probe), "QUIT"])
        text = mark.new_text()
        self.assertEqual(len(labkit.postfix_rcpt_rejects(mark, probe)), 1, text)
        self.assertEqual(labkit.postfix_rcpt_rejects(mark, "alice@postfix.test"), [])
        self.assertEqual(labkit.postfix_disconnect_stats(mark, "mbox"),
                         [{"ehlo": "2", "starttls": "1", "mail": "1", "rcpt": "2/3",
                           "quit": "1", "commands": "7/8"}])

    def test_absent_mailbox_whatever_the_probe(self):
        mark = labkit.postfix_mark()
        r = self.check("nobody@postfix.test")
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertEqual(r["smtp"]["result"], "rejected")
        self.assertReply(r, 550, "5.1.1", PF_REJECT % ("nobody@postfix.test", self.UNKNOWN))
        probe = self.probe_of(r, "postfix.test")["rcpt"]
        self.assertProbe(r, "postfix.test", 550, "5.1.1", PF_REJECT % (probe, self.UNKNOWN))
        self.assertCatchAll(r, False)
        self.assertOneSession(r, PF["mbox"], TLS + [rcpt("nobody@postfix.test"),
                                                    pm("postfix.test"), rcpt(probe), "QUIT"])
        self.assertEqual(len(labkit.postfix_rcpt_rejects(mark, probe)), 1)
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 1)


# --------------------------------------------------------------------------- Exim
class Exim(ProbeCase):
    """Exim: catchall-exim.test has a catch-all router; exim.test fixed mailboxes."""

    def test_catch_all_router_is_accept_all(self):
        mark = labkit.exim_mark()
        addr = "whoever@catchall-exim.test"
        r = self.check(addr)
        self.assertVerdict(r, "risky", "accept_all")
        self.assertEqual(r["smtp"]["result"], "unavailable")
        self.assertCatchAll(r, True)
        self.assertReply(r, 250, None, "Accepted")
        probe = self.assertProbe(r, "catchall-exim.test", 250, None, "Accepted")
        self.assertOneSession(r, labkit.EXIM, PLAIN + [rcpt(addr), pm("catchall-exim.test"), rcpt(probe), "QUIT"])
        # Exim accepted both recipients in one transaction, ended by QUIT
        self.assertEqual(labkit.exim_incomplete(mark),
                         [("QUIT", "verify@lab.test",
                           [addr, "postmaster@catchall-exim.test", probe])])

    def test_mailbox_and_probe_unrouteable_is_deliverable(self):
        mark = labkit.exim_mark()
        r = self.check("alice@exim.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, False)
        self.assertReply(r, 250, None, "Accepted")
        probe = self.assertProbe(r, "exim.test", 550, None, "Unrouteable address")
        self.assertOneSession(r, labkit.EXIM, PLAIN + [rcpt("alice@exim.test"),
                                                       pm("exim.test"), rcpt(probe), "QUIT"])
        log = mark.new_text()
        self.assertIn("rejected RCPT <%s>: Unrouteable address" % probe, log)
        self.assertEqual(log.count("SMTP connection from [127.0.0.1]"), 1, log)
        self.assertEqual(labkit.exim_incomplete(mark),
                         [("QUIT", "verify@lab.test",
                           ["alice@exim.test", "postmaster@exim.test"])])


# --------------------------------------------------------------------------- providers
class Dressed(ProbeCase):
    """Postfix listeners dressed as gateways/providers: the MX names of the real services
    (served by the lab's unbound only), their host names and banners."""

    def dressed(self, r, listener, mx, banner, provider, gateway):
        self.assertEqual(r["smtp"]["mx_host"], mx)
        self.assertEqual(r["domain"]["mx"][0]["host"], mx)
        self.assertEqual(r["domain"]["provider"], provider)
        self.assertIs(r["domain"]["gateway"], gateway)
        self.assertEqual(labkit.server_lines(r)[0], "220 " + banner)

    PP = ("pphosted", "mx0a-001.pphosted.com", "mx0a-001.pphosted.com ESMTP mfa-m0001001",
          "proofpoint", True)

    def test_proofpoint_accepting_the_probe_is_accept_all(self):
        mark = labkit.postfix_mark()
        addr = "jane.doe@pp-catchall.test"
        r = self.check(addr)
        self.dressed(r, *self.PP)
        self.assertVerdict(r, "risky", "accept_all")
        self.assertEqual(r["smtp"]["result"], "unavailable")
        self.assertCatchAll(r, True)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.assertProbe(r, "pp-catchall.test", 250, "2.1.5", "Ok")
        self.assertOneSession(r, PF["pphosted"], PLAIN + [rcpt(addr), pm("pp-catchall.test"), rcpt(probe), "QUIT"])
        self.assertIn("proofpoint", r["reason_text"].lower())
        self.assertEqual(labkit.postfix_disconnect_stats(mark, "pphosted"),
                         [{"ehlo": "1", "mail": "1", "rcpt": "3", "quit": "1",
                           "commands": "6"}])

    def test_proofpoint_catch_all_rejecting_one_address(self):
        # the domain accepts anything but this one: the real refusal wins over the probe
        r = self.check("gone@pp-catchall.test")
        self.dressed(r, *self.PP)
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertReply(r, 550, "5.1.1", PF_REJECT % ("gone@pp-catchall.test", "User Unknown"))
        probe = self.assertProbe(r, "pp-catchall.test", 250, "2.1.5", "Ok")
        self.assertCatchAll(r, True)
        self.assertOneSession(r, PF["pphosted"], PLAIN + [rcpt("gone@pp-catchall.test"), pm("pp-catchall.test"),
                                                          rcpt(probe), "QUIT"])

    def test_proofpoint_verifying_is_deliverable(self):
        mark = labkit.postfix_mark()
        r = self.check("alice@pp-verify.test")
        self.dressed(r, *self.PP)
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, False)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.probe_of(r, "pp-verify.test")["rcpt"]
        self.assertProbe(r, "pp-verify.test", 550, "5.1.1", PF_REJECT % (probe, "User Unknown"))
        self.assertOneSession(r, PF["pphosted"], PLAIN + [rcpt("alice@pp-verify.test"), pm("pp-verify.test"),
                                                          rcpt(probe), "QUIT"])
        self.assertFactor(r, "security_gateway")
        self.assertEqual(len(labkit.postfix_rcpt_rejects(mark, probe)), 1)

    def test_mimecast_verifying_is_deliverable(self):
        mark = labkit.postfix_mark()
        r = self.check("alice@mc-verify.test")
        self.dressed(r, "mimecast", "eu-smtp-inbound-1.mimecast.com",
                     "eu-smtp-inbound-1.mimecast.com ESMTP Mimecast", "mimecast", True)
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, False)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.probe_of(r, "mc-verify.test")["rcpt"]
        self.assertProbe(r, "mc-verify.test", 550, "5.1.1", PF_REJECT % (
            probe, "Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550"
                   " [lab-mc-1.eu1]"))
        self.assertOneSession(r, PF["mimecast"], PLAIN + [rcpt("alice@mc-verify.test"), pm("mc-verify.test"),
                                                          rcpt(probe), "QUIT"])
        self.assertFactor(r, "security_gateway")
        self.assertEqual(labkit.postfix_disconnect_stats(mark, "mimecast"),
                         [{"ehlo": "1", "mail": "1", "rcpt": "2/3", "quit": "1",
                           "commands": "5/6"}])

    MS = ("outlook", "ms-verify-test.mail.protection.outlook.com",
          "AM4PEPF0000LAB1.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready",
          "microsoft", False)
    MS_DENIED = ("Access denied. AS(201806281) [AM4PEPF0000LAB1.eurprd04.prod.outlook.com]")

    def test_microsoft_verifying_is_deliverable(self):
        r = self.check("alice@ms-verify.test")
        self.dressed(r, *self.MS)
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, False)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.probe_of(r, "ms-verify.test")["rcpt"]
        self.assertProbe(r, "ms-verify.test", 550, "5.4.1", PF_REJECT % (probe, self.MS_DENIED))
        self.assertOneSession(r, PF["outlook"], PLAIN + [rcpt("alice@ms-verify.test"), pm("ms-verify.test"),
                                                         rcpt(probe), "QUIT"])
        self.assertNotIn("security_gateway", [f["factor"] for f in r["score_factors"]])

    def test_microsoft_edge_block_is_absent(self):
        r = self.check("nobody@ms-verify.test")
        self.dressed(r, *self.MS)
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertReply(r, 550, "5.4.1", PF_REJECT % ("nobody@ms-verify.test", self.MS_DENIED))
        probe = self.probe_of(r, "ms-verify.test")["rcpt"]
        self.assertProbe(r, "ms-verify.test", 550, "5.4.1", PF_REJECT % (probe, self.MS_DENIED))
        self.assertCatchAll(r, False)

    def test_google_verifying_is_deliverable(self):
        r = self.check("alice@gs-verify.test")
        self.dressed(r, "google", "aspmx.l.google.com",
                     "mx.google.com ESMTP lab1-20020a05 - gsmtp", "google", False)
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, False)
        probe = self.probe_of(r, "gs-verify.test")["rcpt"]
        self.assertProbe(r, "gs-verify.test", 550, "5.1.1", PF_REJECT % (
            probe, "The email account that you tried to reach does not exist. Please try"
                   " double-checking the recipient's email address for typos or unnecessary"
                   " spaces. https://support.google.com/mail/?p=NoSuchUser lab1-20020a05"
                   " - gsmtp"))
        self.assertOneSession(r, PF["google"], PLAIN + [rcpt("alice@gs-verify.test"), pm("gs-verify.test"),
                                                        rcpt(probe), "QUIT"])

    YH = ("yahoo", "mta7.am0.yahoodns.net", "mta7.am0.yahoodns.net ESMTP ready", "yahoo",
          False)

    def test_yahoo_edge_is_accept_all(self):
        r = self.check("alice@yh-edge.test")
        self.dressed(r, *self.YH)
        self.assertVerdict(r, "risky", "accept_all")
        self.assertEqual(r["smtp"]["result"], "unavailable")
        self.assertCatchAll(r, True)
        probe = self.assertProbe(r, "yh-edge.test", 250, "2.1.5", "Ok")
        self.assertOneSession(r, PF["yahoo"], PLAIN + [rcpt("alice@yh-edge.test"), pm("yh-edge.test"),
                                                       rcpt(probe), "QUIT"])

    def test_yahoo_edge_without_probe_is_still_accept_all(self):
        # no probe: what is known of the provider (accepts_all_at_edge) decides
        r = self.check("alice@yh-edge.test", probe=False)
        self.dressed(r, *self.YH)
        self.assertVerdict(r, "risky", "accept_all")
        self.assertCatchAll(r, None)
        self.assertIsNone(r["smtp"]["probe"])
        self.assertOneSession(r, PF["yahoo"], PLAIN + [rcpt("alice@yh-edge.test"), "QUIT"])


# --------------------------------------------------------------------------- scripted
class Scripted(ProbeCase):
    """The scripted server: one or two RCPTs per transaction (452 4.5.3 beyond), 452 4.5.3
    to everything, greylisting only the probe, 252."""

    def test_one_rcpt_per_transaction_probes_in_a_new_transaction(self):
        # 452 4.5.3 to the probe: RSET, MAIL FROM again and the probe alone in a second
        # transaction of the same session, still the last RCPT; its 550 is evidence
        ip = SCRIPT["onercpt"]
        mark = labkit.script_mark()
        addr = "alice@onercpt.script.test"
        r = self.check(addr)
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, False)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.assertProbe(r, "onercpt.script.test", 550, "5.1.1",
                                 "<%s>: Recipient address rejected: User unknown"
                                 % self.probe_of(r, "onercpt.script.test")["rcpt"])
        expected = PLAIN + [rcpt(addr), pm("onercpt.script.test"), rcpt(probe),
                            "RSET", MAIL, pm("onercpt.script.test"),
                            "RSET", MAIL, rcpt(probe), "QUIT"]
        self.assertOneSession(r, ip, expected)
        self.assertIn("452 4.5.3 Error: too many recipients", labkit.server_lines(r))
        self.assertEqual(list(labkit.script_commands(mark, ip).values()), [expected])

    def test_one_rcpt_per_transaction_absent_probe_still_answered(self):
        ip = SCRIPT["onercpt"]
        mark = labkit.script_mark()
        addr = "nobody@onercpt.script.test"
        r = self.check(addr)
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertReply(r, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown"
                         % addr)
        probe = self.probe_of(r, "onercpt.script.test")["rcpt"]
        self.assertProbe(r, "onercpt.script.test", 550, "5.1.1",
                         "<%s>: Recipient address rejected: User unknown" % probe)
        self.assertCatchAll(r, False)
        expected = PLAIN + [rcpt(addr), pm("onercpt.script.test"), rcpt(probe),
                            "RSET", MAIL, pm("onercpt.script.test"),
                            "RSET", MAIL, rcpt(probe), "QUIT"]
        self.assertOneSession(r, ip, expected)
        self.assertEqual(list(labkit.script_commands(mark, ip).values()), [expected])

    def test_two_per_transaction_probe_last_of_the_session(self):
        # three checks and the probe on a server taking two RCPTs per transaction: the
        # refused ones (zed and the probe) go into a second transaction, in order, so
        # the probe stays the last RCPT of the one session
        ip = IP["tworcpt"]
        addrs = ["%s@tworcpt.script.test" % l for l in ("alice", "bob", "zed")]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, probe=True)
        self.assertEqual([(r["email"], r["verdict"], r["reason"]) for r in run.results],
                         [(addrs[0], "deliverable", "accepted"),
                          (addrs[1], "deliverable", "accepted"),
                          (addrs[2], "undeliverable", "mailbox_absent")])
        probe = self.probe_of(run.results[0], "tworcpt.script.test")["rcpt"]
        expected = PLAIN + [rcpt(a) for a in addrs] + [
            pm("tworcpt.script.test"), rcpt(probe), "RSET", MAIL, rcpt(addrs[2]),
            pm("tworcpt.script.test"), "RSET", MAIL, rcpt(probe), "QUIT"]
        self.assertEqual(list(labkit.script_commands(mark, ip).values()), [expected])
        for r in run.results:
            self.assertOneSession(r, ip, expected)
            self.assertCatchAll(r, False)
            self.assertProbe(r, "tworcpt.script.test", 550, "5.1.1",
                             "<%s>: Recipient address rejected: User unknown" % probe)
        self.assertEqual(probe_rcpts(run.results[0]), [probe, probe])

    def test_452_to_every_rcpt_is_no_catch_all_evidence(self):
        # the probe never gets past 452 4.5.3: inconclusive (null), never "catch-all",
        # and the check ends (too_many_recipients: what the server said, even to a lone
        # recipient) after its bounded sessions of one transaction
        ip = IP["all452"]
        mark = labkit.script_mark()
        addr = "alice@all452.script.test"
        r = self.check(addr)
        self.assertVerdict(r, "unknown", "too_many_recipients")
        self.assertCatchAll(r, None)
        conns = list(labkit.script_commands(mark, ip).values())
        self.assertEqual(len(conns), 4, conns)  # shared, own, two throttle retries
        for i, c in enumerate(conns):
            self.assertEqual(c[:3], PLAIN + [rcpt(addr)])
            if i == 0:  # the shared session carries the postmaster@ control, not the
                c = c[:3] + c[4:]  # sessions of its own after "too many recipients"
                self.assertEqual(conns[0][3], pm("all452.script.test"))
            self.assertEqual(len(c), 5, c)  # + the probe RCPT, QUIT: one transaction
            self.assertTrue(is_probe_address(labkit.rcpt_address(c[3])), c)
            self.assertEqual(c[4], "QUIT")

    def test_greylisted_probe_is_inconclusive(self):
        ip = SCRIPT["greyprobe"]
        mark = labkit.script_mark()
        addr = "alice@greyprobe.script.test"
        r = self.check(addr)
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["smtp"]["result"], "accepted")
        self.assertCatchAll(r, None)  # null, not true (and not false)
        self.assertReply(r, 250, "2.1.5", "Ok")
        probe = self.assertProbe(r, "greyprobe.script.test", 451, "4.7.1",
                                 "Greylisted, try again later")
        self.assertFactor(r, "catch_all_untested")
        self.assertOneSession(r, ip, PLAIN + [rcpt(addr), pm("greyprobe.script.test"), rcpt(probe), "QUIT"])
        self.assertEqual(list(labkit.script_commands(mark, ip).values()),
                         [PLAIN + [rcpt(addr), pm("greyprobe.script.test"), rcpt(probe), "QUIT"]])

    def test_252_everywhere_is_anti_enumeration(self):
        ip = SCRIPT["r252"]
        mark = labkit.script_mark()
        addr = "alice@r252.script.test"
        r = self.check(addr)
        self.assertVerdict(r, "risky", "anti_enumeration")
        self.assertEqual(r["smtp"]["result"], "unavailable")
        self.assertCatchAll(r, None)
        text = "Cannot VRFY user, but will accept message and attempt delivery"
        self.assertReply(r, 252, "2.1.5", text)
        probe = self.assertProbe(r, "r252.script.test", 252, "2.1.5", text)
        self.assertOneSession(r, ip, PLAIN + [rcpt(addr), pm("r252.script.test"), rcpt(probe), "QUIT"])
        self.assertEqual(list(labkit.script_commands(mark, ip).values()),
                         [PLAIN + [rcpt(addr), pm("r252.script.test"), rcpt(probe), "QUIT"]])


class NoProbe(ProbeCase):
    """--no-catch-all-probe: one RCPT per address, catch_all null, no probe reply."""

    def test_no_probe_scripted(self):
        ip = SCRIPT["normal"]
        mark = labkit.script_mark()
        addr = "alice@normal.script.test"
        r = self.check(addr, probe=False)
        self.assertIn("--no-catch-all-probe", r["_run"])
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCatchAll(r, None)
        self.assertIsNone(r["smtp"]["probe"])
        self.assertOneSession(r, ip, PLAIN + [rcpt(addr), "QUIT"])
        self.assertEqual(list(labkit.script_commands(mark, ip).values()),
                         [PLAIN + [rcpt(addr), "QUIT"]])

    def test_no_probe_catch_all_domain(self):
        mark = labkit.postfix_mark()
        addr = "jane.doe@catchall.test"
        r = self.check(addr, probe=False)
        self.assertEqual(r["reason"], "accepted")
        self.assertCatchAll(r, None)
        self.assertIsNone(r["smtp"]["probe"])
        self.assertEqual(probe_rcpts(r), [])
        self.assertOneSession(r, PF["catchall"], PLAIN + [rcpt(addr), "QUIT"])
        self.assertEqual(labkit.postfix_rcpt_total(mark, "catchall"), 1)


# --------------------------------------------------------------------------- bulk
class Bulk(ProbeCase):
    """One `mailprobe check` of 10 addresses at catchall.test and 10 at postfix.test:
    catchall.test is probed once and the other results reuse the domain's fact;
    postfix.test, which refuses its absent addresses as unknown, is never probed."""

    CATCHALL = ["user%02d@catchall.test" % i for i in range(1, 11)]
    KNOWN = ["alice@postfix.test", "bob@postfix.test", "postmaster@postfix.test",
             "first.last@postfix.test"]
    ABSENT = ["nobody%d@postfix.test" % i for i in range(1, 7)]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mark = labkit.postfix_mark()
        # One session per server, the absent addresses first: however slowly the checks
        # reach the engine (under valgrind a few at a time), postfix.test's first write
        # has a refusal. With two sessions a slow run may give the known addresses a
        # session of their own whose first answers are all acceptances, which rightly
        # asks for a probe (the refusals in the other session are not in yet).
        cls.bulk = labkit.run_mailprobe(cls.CATCHALL + cls.ABSENT + cls.KNOWN,
                                        extra=["--per-server", "1"], probe=True)
        cls.log = cls.mark.new_text()
        cls.by = {r["email"]: r for r in cls.bulk.results}

    def results(self, addrs):
        return [self.by[a] for a in addrs]

    def assertProbedOnce(self, results, domain):
        """Client side: one probe address for the domain, at most one probe RCPT in any
        session (results that shared a session carry the same transcript), and every
        result that reports a fresh (not cached) probe had it in its own session. The
        server side (each domain's test) counts what the server received."""
        sent = [probe_rcpts(r) for r in results]
        self.assertTrue(all(len(s) <= 1 for s in sent), sent)
        addrs = {a for s in sent for a in s}
        self.assertEqual(len(addrs), 1, "probe RCPTs sent for %s: %r" % (domain, sent))
        probe = addrs.pop()
        self.assertTrue(probe.endswith("@" + domain) and is_probe_address(probe), probe)
        for r, s in zip(results, sent):
            p = r["smtp"]["probe"]
            if p is None:
                continue
            self.assertEqual(p["rcpt"], probe, r["email"])
            if not p["cached"]:
                self.assertEqual(s, [probe], "%s: fresh probe not in its session"
                                 % r["email"])
        return probe

    def test_input_order_and_verdicts(self):
        self.assertEqual(self.bulk.rc, 1, repr(self.bulk))  # 1: some are undeliverable
        self.assertEqual([r["email"] for r in self.bulk.results],
                         self.CATCHALL + self.ABSENT + self.KNOWN)
        for r in self.results(self.CATCHALL):
            self.assertVerdict(r, "risky", "accept_all")
        for r in self.results(self.KNOWN):
            self.assertVerdict(r, "deliverable", "accepted")
        for r in self.results(self.ABSENT):
            self.assertVerdict(r, "undeliverable", "mailbox_absent")

    def test_catch_all_domain_probed_once(self):
        rs = self.results(self.CATCHALL)
        probe = self.assertProbedOnce(rs, "catchall.test")
        for r in rs:
            self.assertCatchAll(r, True)
            self.assertEqual(r["smtp"]["probe"]["rcpt"], probe)
            self.assertEqual(r["smtp"]["probe"]["code"], 250)
        # what Postfix received: 10 real RCPTs, one probe, and a postmaster@ control in
        # a write that nothing else waited for (controls go up front only then; among
        # other checks, only for a refusal that needs one: none here)
        total = labkit.postfix_rcpt_total(self.mark, "catchall")
        self.assertGreaterEqual(total, 10 + 1, self.log)
        self.assertLessEqual(total, 10 + 1 + 10, self.log)

    def test_mailbox_domain_not_probed(self):
        # the server refused addresses of the domain as unknown: it tells addresses
        # apart, which a probe would only repeat with one more refusal. No probe is
        # sent; every result says the domain is not catch-all, the accepted ones why
        for r in self.results(self.KNOWN + self.ABSENT):
            self.assertEqual(probe_rcpts(r), [], r["email"])
            self.assertIsNone(r["smtp"]["probe"], r["email"])
            self.assertCatchAll(r, False)
        for r in self.results(self.KNOWN):
            self.assertIn("refused another address of the domain as unknown (550 5.1.1)",
                          r["reason_text"])
        rejected = labkit.postfix_rcpt_rejects(self.mark, listener="mbox")
        self.assertEqual(len(rejected), len(self.ABSENT), "\n".join(rejected))
        for l in rejected:
            to = l.split("to=<", 1)[1].split(">", 1)[0]
            self.assertFalse(is_probe_address(to), l)
        # 9 real RCPTs, and a postmaster@ control in a write nothing else waited for
        total = labkit.postfix_rcpt_total(self.mark, "mbox")
        self.assertGreaterEqual(total, 9, self.log)
        self.assertLessEqual(total, 9 + 9, self.log)

    def test_every_result_has_catch_all(self):
        # the domain fact is known to the run: every result reports it, the absent
        # mailboxes too (the brief: "every result has catch_all set")
        missing = [(r["email"], r["reason"]) for r in self.bulk.results
                   if r["smtp"]["catch_all"] is None]
        self.assertEqual(missing, [])

    def test_no_data(self):
        for r in self.bulk.results:
            self.assertNotIn("DATA", [c.split(" ")[0].upper() for c in client_commands(r)])


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
