#!/usr/bin/python3
"""DNS scenarios: MX order, CNAME targets, implicit MX, null MX, MX without address,
NXDOMAIN, SERVFAIL, lame delegation, resolver timeout, IDN, private MX, TTL cache, and
no network call for an invalid address."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import client_commands, run_mailprobe  # noqa: E402

SESSION = ["EHLO probe.lab.test", "STARTTLS", "EHLO probe.lab.test",
           "MAIL FROM:<verify@lab.test>"]  # the main Postfix listener offers STARTTLS


def session(rcpt):
    return SESSION + ["RCPT TO:<%s>" % rcpt]  # reported before the QUIT


class Dns(labkit.LabCase):
    def test_mx_by_preference_first_refuses(self):
        # MX 10 -> 127.0.1.99 (nothing listens), 20 -> Postfix; records served out of order
        r = self.check("alice@multi.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual([(m["pref"], m["host"]) for m in r["domain"]["mx"]],
                         [(10, "mx1.multi.test"), (20, "mx2.multi.test"),
                          (30, "mx3.multi.test")])
        self.assertEqual(r["smtp"]["mx_host"], "mx2.multi.test")
        self.assertEqual(r["smtp"]["mx_ip"], "127.0.1.10")
        self.assertCommands(r, session("alice@multi.test"))

    def test_all_mx_refuse(self):
        r = self.check("alice@allrefused.test")
        self.assertVerdict(r, "unknown", "connect_failed")
        self.assertEqual(client_commands(r), [])

    def test_mx_host_addresses_in_turn(self):
        # mx.twoip.test has A 127.0.1.98 (refuses) then A 127.0.1.10
        r = self.check("alice@twoip.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["domain"]["mx"][0]["ips"], ["127.0.1.98", "127.0.1.10"])
        self.assertEqual(r["smtp"]["mx_ip"], "127.0.1.10")
        self.assertCommands(r, session("alice@twoip.test"))

    def test_mx_target_is_cname(self):
        r = self.check("alice@cname.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["domain"]["mx"][0]["ips"], ["127.0.1.10"])
        self.assertCommands(r, session("alice@cname.test"))

    def test_implicit_mx(self):
        r = self.check("alice@implicit.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertTrue(r["domain"]["implicit_mx"])
        self.assertCommands(r, session("alice@implicit.test"))

    def test_null_mx(self):
        r = self.check("alice@nullmx.test")
        self.assertVerdict(r, "undeliverable", "no_mail_server")
        self.assertTrue(r["domain"]["null_mx"])
        self.assertNoConnection(r)

    def test_mx_without_address(self):
        r = self.check("alice@noaddr.test")
        self.assertVerdict(r, "undeliverable", "no_mail_server")
        self.assertNoConnection(r)

    def test_nxdomain(self):
        r = self.check("alice@nosuch.test")
        self.assertVerdict(r, "undeliverable", "no_such_domain")
        self.assertFalse(r["domain"]["exists"])
        self.assertNoConnection(r)

    def test_servfail_is_unknown(self):
        r = self.check("alice@servfail.test")
        self.assertVerdict(r, "unknown", "dns_failure")
        self.assertNoConnection(r)

    def test_lame_delegation_is_unknown(self):
        r = self.check("alice@lame.test")
        self.assertVerdict(r, "unknown", "dns_failure")
        self.assertNoConnection(r)

    def test_resolver_timeout_is_unknown(self):
        r = self.check("alice@dnstimeout.test", "--timeout", "3")
        self.assertVerdict(r, "unknown", "dns_failure")
        self.assertNoConnection(r)

    def test_idn_both_spellings(self):
        run = run_mailprobe(["alice@b\u00fccher.test", "alice@xn--bcher-kva.test"])
        u, a = run.results
        for r in (u, a):
            self.assertVerdict(r, "deliverable", "accepted")
            self.assertEqual(r["syntax"]["domain_ascii"], "xn--bcher-kva.test")
            # the same mailbox twice is never in one transaction: the second check runs
            # in a session of its own or in a later transaction of the first one's
            self.assertIn(labkit.client_commands(r),
                          (session("alice@xn--bcher-kva.test"),
                           ["RSET", SESSION[-1], "RCPT TO:<alice@xn--bcher-kva.test>"]))
        self.assertEqual(u["domain"]["mx"], a["domain"]["mx"])

    def test_private_mx_refused_before_connecting(self):
        mark = labkit.unbound_mark()
        r = self.check("alice@private.test", allow_private=False)
        self.assertVerdict(r, "undeliverable", "unroutable_mx")
        self.assertNoConnection(r)
        self.assertIn(("private.test", "MX"), labkit.unbound_queries(mark))

    def test_loopback_mx_refused_without_flag(self):
        r = self.check("alice@postfix.test", allow_private=False)
        self.assertVerdict(r, "undeliverable", "unroutable_mx")
        self.assertNoConnection(r)

    def test_invalid_syntax_makes_no_network_call(self):
        mark = labkit.unbound_mark()
        pf = labkit.postfix_mark()
        r = self.check("alice..bob@postfix.test")
        self.assertVerdict(r, "undeliverable", "invalid_syntax")
        self.assertFalse(r["syntax"]["valid"])
        self.assertTrue(r["syntax"]["rule"])
        self.assertNoConnection(r)
        self.assertEqual([q for q in labkit.unbound_queries(mark) if "postfix.test" in q[0]], [])
        self.assertEqual(labkit.postfix_sessions(pf, "mbox"), 0)

    def test_invalid_addresses_are_results(self):
        bad = ["a" * 65 + "@postfix.test", "alice@-bad-.test", "alice@postfix..test",
               "no-at-sign", "alice@", "@postfix.test", "al ice@postfix.test",
               "alice@" + "a" * 64 + ".test", ".alice@postfix.test"]
        mark = labkit.unbound_mark()
        run = run_mailprobe(bad)
        self.assertEqual([r["email"] for r in run.results], bad)
        for r in run.results:
            self.assertVerdict(r, "undeliverable", "invalid_syntax")
            self.assertTrue(r["syntax"]["rule"], r["email"])
            self.assertNoConnection(r)
        # other scenarios run concurrently and query unbound too: look only at names
        # these addresses could have caused
        ours = ("postfix.test", "bad-.test", "postfix..test", "a" * 64 + ".test")
        self.assertEqual([q for q in labkit.unbound_queries(mark)
                          if q[0].rstrip(".").endswith(ours)], [])

    def test_answers_cached(self):
        # three addresses at one domain in one run: the MX is asked for once
        mark = labkit.unbound_mark()
        run = run_mailprobe(["alice@cname.test", "bob@cname.test", "nobody@cname.test"])
        self.assertEqual([r["reason"] for r in run.results],
                         ["accepted", "accepted", "mailbox_absent"])
        qs = labkit.unbound_queries(mark)
        self.assertEqual(qs.count(("cname.test", "MX")), 1, qs)


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
