#!/usr/bin/python3
"""`mailprobe doctor --proxy` (issue 14, the scale-out proxies): each SOCKS5 egress
checked like a --source one, through the proxy.

Debian's danted inside the namespace (labkit.Danted: started and stopped by pid; the
system user mplabsocks with a fresh password for the run): 127.0.8.5 with user/password
authentication whose outgoing address is 127.0.7.10 (the good identity of t_doctor.py:
PTR good.doctor.test, forward-confirmed, SPF), 127.0.8.6 without authentication refusing
port 25 by rule (REP 2). Nothing listens on 127.0.8.9 (a proxy that is down). Exim
(mx.exim.test) echoes the client address in its EHLO reply: that echo is the proxy's
public address and the egress address of checks 4-7; Postfix (127.0.1.10) does not echo,
so the address stays unknown (warnings, not FAIL).
"""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
import t_doctor as td  # noqa: E402  (its helpers; its tests are not collected here)

GOOD_PROXY, RULE_PROXY, DOWN_PROXY = "127.0.8.5", "127.0.8.6", "127.0.8.9"
GOOD_NAME = "socks5://mplabsocks@127.0.8.5:1080"
FROM = ["--from", "verify@from.doctor.test"]


class Proxy(td.DoctorCase):
    danted = None

    @classmethod
    def setUpClass(cls):
        cls.danted = labkit.Danted("doctor")
        try:
            cls.danted.begin()
            cls.danted.start("good", GOOD_PROXY, "username", external=td.GOOD)
            cls.danted.start("rule", RULE_PROXY, "none", block25=True)
        except BaseException:
            cls.danted.stop()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.danted:
            cls.danted.stop()

    def good(self, password=None, helo="good.doctor.test"):
        return self.danted.url(GOOD_PROXY, password, helo)

    def assertNoPassword(self, d):
        self.assertNotIn(self.danted.password, d.stdout + d.stderr)

    def test_good_proxy_all_ok_with_the_echoed_address(self):
        mark = labkit.exim_mark()
        d = td.doctor("--json", "--proxy", self.good(), *FROM)
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {})
        r = d.report()
        self.assertEqual((r["proxy"], r["source"]), (GOOD_NAME, None))
        # the address Exim saw through the proxy is the egress address judged
        self.assertEqual((r["echoed_address"], r["public_address"], r["egress"]),
                         (td.GOOD, td.GOOD, td.GOOD))
        self.assertEqual((r["ptr"], r["helo"], r["helo_from_ptr"]),
                         ("good.doctor.test", "good.doctor.test", False))
        self.assertEqual(d.check("egress")["message"],
                         "SOCKS5 proxy %s: handshake and authentication (RFC 1929) ok; public "
                         "address %s (echoed by mx.exim.test)" % (GOOD_NAME, td.GOOD))
        self.assertIn("reachable through the proxy: 1 of 1", d.check("port25")["message"])
        self.assertIn("PTR good.doctor.test, forward-confirmed, equal to the HELO",
                      d.check("rdns")["message"])
        self.assertIn("SPF pass", d.check("helo")["message"])
        self.assertIn("127.0.7.10 is not listed", d.check("dnsbl")["message"])
        self.assertIn("through the proxy and sees this client as 127.0.7.10",
                      d.check("ehlo")["message"])
        self.assertNoPassword(d)
        # EHLO then QUIT, from the proxy's outgoing address, and nothing else
        log = mark.new_text()
        self.assertIn("no MAIL in SMTP connection from [%s]" % td.GOOD, log)
        self.assertRegex(log, r"C=EHLO,QUIT\b")

    def test_text_form_names_the_proxy(self):
        d = td.doctor("--proxy", self.good(), *FROM)
        self.assertEqual(d.rc, 0, repr(d))
        lines = d.stdout.splitlines()
        self.assertEqual(lines[0], "mailprobe doctor: proxy %s, egress %s, HELO "
                         "good.doctor.test, MAIL FROM <verify@from.doctor.test>"
                         % (GOOD_NAME, td.GOOD), repr(d))
        self.assertEqual([l.split()[0] for l in lines[1:9]], ["ok"] * 8, repr(d))
        self.assertEqual(lines[-1], "result: ok")
        self.assertNoPassword(d)

    def test_helo_of_the_proxy_is_the_one_checked(self):
        # the proxy's =HELO wins over --helo, as in the engine
        d = td.doctor("--json", "--helo", "nospf.doctor.test", "--proxy", self.good(), *FROM)
        self.assertEqual((d.rc, d.report()["helo"]), (0, "good.doctor.test"), repr(d))
        self.assertIn("accepted EHLO good.doctor.test", d.check("ehlo")["message"])
        # without =HELO: --helo; a name whose SPF does not cover the proxy's address
        d = td.doctor("--json", "--helo", "nospf.doctor.test",
                      "--proxy", self.good(helo=""), *FROM)
        self.assertEqual(d.report()["helo"], "nospf.doctor.test", repr(d))
        self.assertEqual(d.check("helo")["status"], "fail", repr(d))  # its SPF: -all
        self.assertIn("HELO nospf.doctor.test resolves to 127.0.7.10; SPF fail",
                      d.check("helo")["message"])
        self.assertEqual(d.check("rdns")["status"], "warn", repr(d))  # PTR != HELO

    def test_bad_credentials(self):
        d = td.doctor("--json", "--proxy", self.good(password="wrong-" + self.danted.password),
                      *FROM)
        self.assertEqual(d.rc, 1, repr(d))
        self.assertEqual(d.json["status"], "fail")
        c = d.check("egress")
        self.assertEqual((c["status"], c["message"]),
                         ("fail", "SOCKS5 proxy %s: the proxy refused the user name or "
                          "password (RFC 1929 authentication failed)" % GOOD_NAME), repr(d))
        self.assertIn("correct USER:PASS in --proxy", c["fix"])
        # nothing went through: no port or EHLO verdict, and the egress address is unknown
        self.assertEqual((d.check("port25")["status"], d.check("ehlo")["status"]),
                         ("skip", "skip"), repr(d))
        self.assertIn("the SOCKS5 proxy failed (check 2)", d.check("port25")["message"])
        for cid in ("rdns", "helo", "dnsbl", "mail_from"):
            self.assertEqual(d.check(cid)["status"], "warn", "%s: %r" % (cid, d))
        self.assertIn("SPF not evaluated (egress address unknown)", d.check("mail_from")["message"])
        self.assertIn("public address is unknown", d.check("rdns")["message"])
        self.assertEqual(d.report()["egress"], None)
        self.assertNoPassword(d)

    def test_no_credentials_for_an_authenticating_proxy(self):
        d = td.doctor("--json", "--proxy", "socks5://%s:1080" % GOOD_PROXY, *FROM)
        self.assertEqual(d.rc, 1, repr(d))
        c = d.check("egress")
        self.assertEqual(c["status"], "fail", repr(d))
        self.assertIn("the proxy requires authentication (give USER:PASS)", c["message"])
        self.assertIn("socks5://USER:PASS@HOST:PORT (RFC 1929)", c["fix"])

    def test_proxy_down(self):
        d = td.doctor("--json", "--proxy", "socks5://%s:1080" % DOWN_PROXY, *FROM)
        self.assertEqual(d.rc, 1, repr(d))
        c = d.check("egress")
        self.assertEqual(c["status"], "fail", repr(d))
        self.assertEqual(c["message"], "SOCKS5 proxy socks5://%s:1080: cannot connect to the "
                         "proxy: Connection refused" % DOWN_PROXY)
        self.assertIn("start it, or correct HOST:PORT", c["fix"])
        # text form: the FAIL line with its fix, exit 1
        t = td.doctor("--proxy", "socks5://%s:1080" % DOWN_PROXY, *FROM)
        self.assertEqual(t.rc, 1, repr(t))
        self.assertIn("FAIL 2 Egress address    SOCKS5 proxy socks5://127.0.8.9:1080", t.stdout)
        self.assertIn("result: FAIL", t.stdout)

    def test_proxy_rule_refuses_port_25(self):
        d = td.doctor("--json", "--proxy", "socks5://%s:1080=good.doctor.test" % RULE_PROXY,
                      *FROM)
        self.assertEqual(d.rc, 1, repr(d))
        # the proxy itself works; port 25 is refused by it, not by the server
        self.assertIn("handshake ok (no authentication)", d.check("egress")["message"])
        self.assertEqual(d.check("egress")["status"], "warn")  # no EHLO: address unknown
        p = d.check("port25")
        self.assertEqual(p["status"], "fail", repr(d))
        self.assertIn("0 timeout, 0 refused by the server, 1 refused by the proxy", p["message"])
        self.assertIn("refused by the proxy (the proxy refused the connection: connection not "
                      "allowed by ruleset (REP 2))", " ".join(p["details"]))
        self.assertIn("ask its operator to allow port 25", p["fix"])
        self.assertEqual(d.check("ehlo")["status"], "fail")

    def test_refused_server_and_no_echo(self):
        # the proxy relays a refusal (REP 5) from one reference MX; Postfix answers EHLO
        # but does not echo: the proxy's address cannot be known (warnings, exit 0)
        d = td.doctor("--json", "--proxy", self.good(), "--reference-mx", labkit.REFUSED_IPS[1],
                      "--reference-mx", labkit.PF["mbox"], *FROM, mx=False)
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {"egress": "warn", "port25": "warn", "rdns": "warn",
                              "helo": "warn", "dnsbl": "warn", "mail_from": "warn"})
        self.assertIn("refused (the proxy refused the connection: connection refused (REP 5))",
                      " ".join(d.check("port25")["details"]))
        self.assertIn("its public address is unknown: the reference MX does not echo",
                      d.check("egress")["message"])
        self.assertIn("does not echo the client address", d.check("ehlo")["message"])
        self.assertEqual((d.report()["egress"], d.report()["echoed_address"]), (None, None))

    def test_server_silent_behind_the_proxy_is_a_timeout(self):
        # the proxy waits for a server that drops SYNs: our deadline passes after the
        # CONNECT request, so it is the server's timeout, not the proxy's failure
        with td.dropping_listener():
            d = td.doctor("--json", "--proxy", self.good(), "--reference-mx", "%s:%d" % td.DROP,
                          *FROM, mx=False)
        self.assertEqual(d.rc, 1, repr(d))
        self.assertIn("handshake and authentication (RFC 1929) ok", d.check("egress")["message"])
        p = d.check("port25")
        self.assertEqual(p["status"], "fail", repr(d))
        self.assertIn("1 timeout, 0 refused by the server, 0 refused by the proxy", p["message"])
        self.assertIn("the proxy got no answer from the server in time", " ".join(p["details"]))
        self.assertIn("filters outbound port 25", p["fix"])

    def test_source_and_proxy_two_reports(self):
        d = td.doctor("--json", "--source", td.GOOD + "=good.doctor.test",
                      "--proxy", self.danted.url(GOOD_PROXY, password="bad"), *FROM)
        self.assertEqual(d.rc, 1, repr(d))
        self.assertEqual([(r["source"], r["proxy"], r["status"]) for r in d.json["reports"]],
                         [(td.GOOD, None, "ok"), (None, GOOD_NAME, "fail")])

    def test_check_through_a_proxy_keeps_this_machines_ptr_out(self):
        # the quick checks at start see this machine (127.0.0.1, PTR probe.lab.test):
        # through a proxy that name is not the sender's, so it is not the default HELO
        def check(proxy):
            argv = labkit.mailprobe_argv_prefix() + [
                "check", "--json", "--trace", "--no-catch-all-probe", "--dns", labkit.DNS,
                "--timeout", "3s", "--allow-private-mx", "--from", labkit.FROM,
                "--myip-dns", "127.0.0.57", "--proxy", proxy, "alice@exim.test"]
            p = labkit.nsexec(argv, capture_output=True, text=True, timeout=120)
            labkit.assert_clean_stderr(p.stderr)
            return p, json.loads(p.stdout.splitlines()[0])
        p, r = check(self.good(helo=""))
        self.assertEqual(labkit.client_commands(r)[0], "EHLO " + socket.gethostname(), p.stderr)
        self.assertIn("warning: no --helo, and a --proxy without =HELO", p.stderr)
        p, r = check(self.good())
        self.assertEqual(labkit.client_commands(r)[0], "EHLO good.doctor.test", p.stderr)
        self.assertNotIn("warning", p.stderr)
        self.assertNotIn(self.danted.password, p.stdout + p.stderr)

    def test_bad_proxy_spec_is_usage(self):
        d = td.doctor("--proxy", "socks4://%s:1080" % GOOD_PROXY)
        self.assertEqual((d.rc, d.stdout), (2, ""), repr(d))
        self.assertIn("socks5://", d.stderr)


if __name__ == "__main__":
    labkit.main()
