#!/usr/bin/python3
"""Postfix scenarios: virtual mailboxes, catch-all, per-recipient access answers (full,
disabled, policy-blocked, 421, 451), relay refusal, sender-domain checks, the null sender,
quoted and UTF-8 local parts, several addresses and stdin input."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import PF, client_commands, run_mailprobe  # noqa: E402

TLS = ["EHLO probe.lab.test", "STARTTLS", "EHLO probe.lab.test"]  # main listener: TLS offered
PLAIN = ["EHLO probe.lab.test"]
MAIL = "MAIL FROM:<verify@lab.test>"


def rcpt(a):
    return "RCPT TO:<%s>" % a


class Mailboxes(labkit.LabCase):
    def test_accepted(self):
        mark = labkit.postfix_mark()
        r = self.check("alice@postfix.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (250, "2.1.5"))
        self.assertEqual(r["smtp"]["mx_ip"], PF["mbox"])
        self.assertTrue(r["smtp"]["tls"])
        self.assertCommands(r, TLS + [MAIL, rcpt("alice@postfix.test")])
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 1)
        st = labkit.postfix_disconnect_stats(mark, "mbox")[-1]
        # one RCPT, no RSET (QUIT ends the transaction), a polite QUIT
        self.assertEqual((st.get("rcpt"), st.get("rset"), st.get("quit")), ("1", None, "1"))

    def test_user_unknown(self):
        r = self.check("nobody@postfix.test")
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (550, "5.1.1"))
        self.assertIn("User unknown in virtual mailbox table", r["smtp"]["message"])
        self.assertEqual(r["smtp"]["stage"], "rcpt")
        self.assertCommands(r, TLS + [MAIL, rcpt("nobody@postfix.test")])

    def test_domain_not_served(self):
        r = self.check("alice@relay.test")  # MX points at Postfix, which does not serve it
        self.assertVerdict(r, "undeliverable", "domain_not_served")
        self.assertCommands(r, TLS + [MAIL, rcpt("alice@relay.test")])

    def test_address_literal_named_once(self):
        """The reason names a literal's server once, not as "[ip] [ip]"."""
        for addr, ip in (("x@[%s]" % labkit.REFUSED_IPS[0], labkit.REFUSED_IPS[0]),
                         ("x@[IPv6:::1]", "::1")):
            r = self.check(addr, "--timeout", "3")
            self.assertVerdict(r, "unknown", "connect_failed")
            self.assertEqual(r["reason_text"].count(ip), 1, r["reason_text"])

    def test_null_sender(self):
        r = self.check("alice@postfix.test", sender="<>")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertCommands(r, TLS + ["MAIL FROM:<>", rcpt("alice@postfix.test")])

    def test_quoted_local_part(self):
        r = self.check('"john doe"@postfix.test')
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertCommands(r, TLS + [MAIL, rcpt('"john doe"@postfix.test')])

    def test_utf8_local_part(self):
        addr = "j\u00f6s\u00e9@postfix.test"
        r = self.check(addr)
        self.assertTrue(r["syntax"]["valid"])
        if "utf8_local" in r["syntax"]:
            self.assertTrue(r["syntax"]["utf8_local"])
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertCommands(r, TLS + [MAIL + " SMTPUTF8", rcpt(addr)])

    def test_several_addresses_in_input_order(self):
        addrs = ["nobody@postfix.test", "alice@postfix.test", "bob@postfix.test",
                 "bad..x@postfix.test", "alice@nosuch.test"]
        run = run_mailprobe(addrs)
        self.assertEqual([r["email"] for r in run.results], addrs)
        self.assertEqual([r["reason"] for r in run.results],
                         ["mailbox_absent", "accepted", "accepted", "invalid_syntax",
                          "no_such_domain"])

    def test_one_session_carries_a_domains_addresses(self):
        # checks of one domain on one server share a session: one connection, one
        # MAIL FROM, every RCPT in one (pipelined) transaction, one QUIT
        addrs = ["alice@postfix.test", "bob@postfix.test", "nobody@postfix.test",
                 "first.last@postfix.test", "ghost@postfix.test"]
        mark = labkit.postfix_mark()
        run = run_mailprobe(addrs)
        self.assertEqual([r["reason"] for r in run.results],
                         ["accepted", "accepted", "mailbox_absent", "accepted",
                          "mailbox_absent"])
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 1)
        st = labkit.postfix_disconnect_stats(mark, "mbox")
        self.assertEqual(len(st), 1)
        self.assertEqual((st[0].get("mail"), st[0].get("rcpt"), st[0].get("quit")),
                         ("1", "3/5", "1"))
        for r in run.results:
            self.assertEqual(r["smtp"]["attempts"], 1)
            self.assertCommands(r, TLS + [MAIL] + [rcpt(a) for a in addrs])

    def test_stdin(self):
        run = run_mailprobe(["-"], stdin="alice@postfix.test\nnobody@postfix.test\n")
        self.assertEqual([(r["email"], r["reason"]) for r in run.results],
                         [("alice@postfix.test", "accepted"),
                          ("nobody@postfix.test", "mailbox_absent")])


class CatchAll(labkit.LabCase):
    def test_catch_all_accepts(self):
        r = self.check("anything-%d@catchall.test" % os.getpid())
        # catch-all detection is a later issue: accepted now, accept_all then
        self.assertIn((r["verdict"], r["reason"]),
                      [("deliverable", "accepted"), ("risky", "accept_all")])
        self.assertEqual(client_commands(r)[:3], PLAIN + [MAIL, rcpt(r["email"])])


class Access(labkit.LabCase):
    def one(self, local, verdict, reason, code, enhanced, tail=()):
        addr = local + "@access.test"
        r = self.check(addr, "--greylist-wait", "0")
        self.assertVerdict(r, verdict, reason)
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (code, enhanced))
        self.assertCommands(r, PLAIN + [MAIL, rcpt(addr)] + list(tail))
        return r

    def test_full_452(self):
        self.one("full", "risky", "mailbox_full", 452, "4.2.2")

    def test_full_552(self):
        self.one("over", "risky", "mailbox_full", 552, "5.2.2")

    def test_disabled(self):
        self.one("disabled", "undeliverable", "mailbox_disabled", 550, "5.2.1")

    def test_policy_blocked_is_not_absent(self):
        r = self.one("blocked", "unknown", "policy_blocked", 550, "5.7.1")
        self.assertIn("zen.spamhaus.org", r["smtp"]["message"])

    def test_421_rate_limited(self):
        # Postfix says 421 and hangs up: nothing more can be sent. The check goes back to
        # the server twice, each time after a longer penalty (1 s, then 2 s), then says
        # rate_limited.
        addr = "busy@access.test"
        mark = labkit.postfix_mark()
        r = self.check(addr, "--greylist-wait", "0")
        self.assertVerdict(r, "unknown", "rate_limited")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (421, "4.7.0"))
        self.assertEqual(r["smtp"]["attempts"], 3)
        self.assertCommands(r, (PLAIN + [MAIL, rcpt(addr)]) * 3)
        self.assertEqual(labkit.postfix_sessions(mark, "access"), 3)
        starts = [l["t_ms"] for l in labkit.transcript(r) if l["line"].startswith("EHLO")]
        self.assertGreaterEqual(starts[1] - starts[0], 1000)
        self.assertGreaterEqual(starts[2] - starts[1], 2000)

    def test_451_temporary(self):
        self.one("temp", "unknown", "temporary_failure", 451, "4.3.0")

    def test_451_retried_within_greylist_wait(self):
        mark = labkit.postfix_mark()
        r = self.check("temp@access.test", "--greylist-wait", "4")
        self.assertEqual(r["verdict"], "unknown")
        self.assertIn(r["reason"], ("greylisted", "temporary_failure"))
        self.assertGreaterEqual(labkit.postfix_sessions(mark, "access"), 2)
        # each attempt in a new session, or in a new transaction of the idle one when
        # the retry comes within the idle time; reported before any QUIT
        first, again = PLAIN + [MAIL, rcpt("temp@access.test")], ["RSET", MAIL,
                                                                  rcpt("temp@access.test")]
        cmds = client_commands(r)
        self.assertEqual(cmds[:len(first)], first, cmds)
        rest = cmds[len(first):]
        while rest:
            self.assertIn(rest[:len(first)] if rest[0] != "RSET" else rest[:3],
                          (first, again), cmds)
            rest = rest[len(first):] if rest[0] != "RSET" else rest[3:]

    def test_accepted_on_access_listener(self):
        self.one("alice", "deliverable", "accepted", 250, "2.1.5")


class Sender(labkit.LabCase):
    def test_our_sender_domain_rejected(self):
        r = self.check("alice@sender.test")
        self.assertVerdict(r, "unknown", "sender_rejected")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (553, "5.7.1"))
        self.assertCommands(r, PLAIN + [MAIL, rcpt("alice@sender.test")])

    def test_unknown_sender_domain(self):
        r = self.check("alice@sender.test", sender="probe@nosuch.test")
        self.assertVerdict(r, "unknown", "sender_rejected")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (550, "5.1.8"))
        self.assertCommands(r, PLAIN + ["MAIL FROM:<probe@nosuch.test>",
                                        rcpt("alice@sender.test")])


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
