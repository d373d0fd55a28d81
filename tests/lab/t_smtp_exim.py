#!/usr/bin/python3
"""Exim, the second dialect: its own wording ("550 Unrouteable address", no enhanced
codes), its own EHLO keywords; what the client sent, and that Exim saw one session."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

PLAIN = ["EHLO probe.lab.test", "MAIL FROM:<verify@lab.test>"]


class Exim(labkit.LabCase):
    def sessions(self, mark):
        # our sessions only: the lab's readiness probe also connects (without EHLO)
        return len(re.findall(r"SMTP connection from \(probe\.lab\.test\) \[127\.0\.0\.1\]"
                              r":\d+ closed by QUIT", mark.new_text()))

    def test_accepted(self):
        mark = labkit.exim_mark()
        r = self.check("alice@exim.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["smtp"]["code"], 250)
        self.assertEqual(r["smtp"]["mx_ip"], labkit.EXIM)
        self.assertCommands(r, PLAIN + ["RCPT TO:<alice@exim.test>"])
        self.assertEqual(self.sessions(mark), 1)

    def test_unrouteable_is_absent(self):
        mark = labkit.exim_mark()
        r = self.check("nobody@exim.test")
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["message"]),
                         (550, "Unrouteable address"))
        self.assertCommands(r, PLAIN + ["RCPT TO:<nobody@exim.test>"])
        log = mark.new_text()
        self.assertIn("rejected RCPT <nobody@exim.test>: Unrouteable address", log)

    def test_utf8_local_part(self):
        addr = "j\u00f6s\u00e9@exim.test"
        r = self.check(addr)
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertCommands(r, ["EHLO probe.lab.test",
                                "MAIL FROM:<verify@lab.test> SMTPUTF8",
                                "RCPT TO:<%s>" % addr])

    def test_two_recipients_two_verdicts(self):
        run = labkit.run_mailprobe(["alice@exim.test", "nobody@exim.test"])
        self.assertEqual([(r["verdict"], r["reason"]) for r in run.results],
                         [("deliverable", "accepted"), ("undeliverable", "mailbox_absent")])


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
