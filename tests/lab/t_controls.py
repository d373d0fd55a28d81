#!/usr/bin/python3
"""Controls in the same transaction (issue 13, src/sched/trouble.h): a refusal in words
that say nothing known ("550 Administrative prohibition", Exim's ACL deny default) is read
against postmaster@<domain>, which the client sends after the real recipients and before
the catch-all probe. Accepted postmaster@ -> the refusal is about this recipient
(undeliverable, recipient_refused); postmaster@ refused the same way -> the server refuses
us (unknown, policy_blocked). Each scenario asserts the verdict, the reason and the exact
commands the scripted server received."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import client_commands, is_probe_address  # noqa: E402
from smtpscript import BEHAVIOURS  # noqa: E402

IP = {b: ip for ip, b in BEHAVIOURS.items()}
EHLO = "EHLO probe.lab.test"
MAIL = "MAIL FROM:<verify@lab.test>"
VAGUE = "Administrative prohibition"


def rcpt(a):
    return "RCPT TO:<%s>" % a


class Controls(labkit.LabCase):
    def run_one(self, behaviour, local):
        ip = IP[behaviour]
        domain = behaviour + ".script.test"
        addr = "%s@%s" % (local, domain)
        mark = labkit.script_mark()
        r = labkit.check(addr, probe=True)
        conns = list(labkit.script_commands(mark, ip).values())
        self.assertEqual(len(conns), 1, conns)
        c = conns[0]
        # the address, postmaster@ after it, the probe last, one transaction, no DATA
        self.assertEqual(c[:4], [EHLO, MAIL, rcpt(addr), rcpt("postmaster@" + domain)])
        self.assertTrue(is_probe_address(labkit.rcpt_address(c[4])), c)
        self.assertEqual(c[5:], ["QUIT"])
        self.assertEqual(client_commands(r), labkit.until_report(c))  # reported before QUIT
        self.assertEqual((r["smtp"]["code"], r["smtp"]["message"]), (550, VAGUE))
        return r

    def test_vague_refusal_postmaster_accepted_is_undeliverable(self):
        r = self.run_one("vague", "gone")
        self.assertVerdict(r, "undeliverable", "recipient_refused")
        self.assertEqual(r["smtp"]["result"], "rejected")
        self.assertIn("accepted postmaster@", r["reason_text"])

    def test_vague_refusal_of_everything_is_unknown(self):
        r = self.run_one("vagueall", "alice")
        self.assertVerdict(r, "unknown", "policy_blocked")
        self.assertEqual(r["smtp"]["result"], "unavailable")
        self.assertIn("postmaster@ too", r["reason_text"])

    def test_known_mailbox_still_accepted(self):
        ip = IP["vague"]
        mark = labkit.script_mark()
        r = labkit.check("alice@vague.script.test", probe=True)
        self.assertVerdict(r, "deliverable", "accepted")
        conns = list(labkit.script_commands(mark, ip).values())
        self.assertEqual(conns[0][2:4], [rcpt("alice@vague.script.test"),
                                         rcpt("postmaster@vague.script.test")])

    def test_no_controls_without_probe(self):
        # --no-catch-all-probe sends no control recipient: one RCPT, and the vague refusal
        # stays unknown (no control explains it), never mailbox_absent
        ip = IP["vague"]
        mark = labkit.script_mark()
        r = labkit.check("gone@vague.script.test")
        self.assertVerdict(r, "unknown", "policy_blocked")
        self.assertEqual(list(labkit.script_commands(mark, ip).values()),
                         [[EHLO, MAIL, rcpt("gone@vague.script.test"), "QUIT"]])


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
