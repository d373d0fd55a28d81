#!/usr/bin/python3
"""TLS: STARTTLS when offered (main Postfix listener, smtpd_tls_security_level=may) and
when demanded (encrypt listener: 530 5.7.0 without it); the lab's self-signed
certificate is recorded, not fatal."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

TLS = ["EHLO probe.lab.test", "STARTTLS", "EHLO probe.lab.test",
       "MAIL FROM:<verify@lab.test>"]


class Tls(labkit.LabCase):
    def test_tls_required_listener(self):
        mark = labkit.postfix_mark()
        r = self.check("alice@tls.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertTrue(r["smtp"]["tls"])
        self.assertCommands(r, TLS + ["RCPT TO:<alice@tls.test>"])
        self.assertEqual(labkit.postfix_sessions(mark, "tls"), 1)
        self.assertIn("postfix/tls/smtpd", mark.new_text(0))
        self.assertRegex(mark.new_text(0), r"Anonymous TLS connection established|"
                                           r"TLS connection established")

    def test_tls_required_unknown_user(self):
        r = self.check("nobody@tls.test")
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertCommands(r, TLS + ["RCPT TO:<nobody@tls.test>"])

    def test_self_signed_recorded_not_fatal(self):
        r = self.check("alice@postfix.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertTrue(r["smtp"]["tls"])
        if "tls_verified" in r["smtp"]:
            self.assertFalse(r["smtp"]["tls_verified"])


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
