#!/usr/bin/python3
"""Ways out (src/net/egress.c, smtp/session.c): --source addresses and --proxy SOCKS5.

Source addresses: inside the namespace all of 127.0.0.0/8 is local, so 127.0.9.1,
127.0.9.2 and 127.0.10.1 can be sources. Postfix's reject lines name the client address
and the HELO name of every refused RCPT: each domain goes out from one address with that
address's HELO name, the same one in every run; both addresses get used; a greylisted
address comes back from the address that started it (postgrey keys on the client /24,
so the two sources are in different /24s).

SOCKS5: Debian's danted, started here inside the namespace (by pid, stopped by pid):
127.0.8.1 with user/password authentication (the system user mplabsocks, given a fresh
random password for the run and locked again afterwards), 127.0.8.2 without
authentication but refusing port 25 by rule. Verdicts through the proxy equal direct
ones and Postfix sees the proxy's address; bad credentials, a proxy that is down and a
refusing rule, a silent proxy and an SMTP server in a proxy's place are
unknown/connect_failed naming the proxy, never a verdict about the mailbox, and the
password is never printed."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import LAB, NS, POSTFIX_LOG, client_commands, run_mailprobe  # noqa: E402

SRC1, SRC2, SRC_OTHER24 = "127.0.9.1", "127.0.9.2", "127.0.10.1"
HELOS = {SRC1: "one.lab.test", SRC2: "two.lab.test", SRC_OTHER24: "ten.lab.test"}
# unknown mailboxes on domains whose MX is Postfix's mbox listener: each RCPT leaves a
# reject line with client address and HELO name
UNKNOWN = ["nobody@postfix.test", "nobody@multi.test", "nobody@twoip.test",
           "nobody@cname.test", "nobody@implicit.test"]
REJECT = re.compile(r"reject: RCPT from unknown\[([0-9.]+)\]: .* to=<([^>]+)> .*helo=<([^>]+)>")
CONNECT = re.compile(r"postfix/(\w+)/smtpd\[\d+\]: connect from unknown\[([0-9.]+)\]")

SOCKS_USER = labkit.SOCKS_USER
AUTH_PROXY, RULE_PROXY, DOWN_PROXY = "127.0.8.1", "127.0.8.2", "127.0.8.9"


def sources_args(*ips):
    out = []
    for ip in ips:
        out += ["--source", "%s=%s" % (ip, HELOS[ip])]
    return out


def rejects(mark):
    return [m.groups() for m in map(REJECT.search, mark.new_text().splitlines()) if m]


class Sources(labkit.LabCase):
    def test_each_domain_one_source_with_its_helo(self):
        seen = {}
        for _ in range(2):  # a second process picks the same address per domain
            mark = labkit.postfix_mark()
            run = run_mailprobe(UNKNOWN, sources_args(SRC1, SRC2))
            for r in run.results:
                self.assertEqual((r["verdict"], r["reason"]), ("undeliverable", "mailbox_absent"),
                                 repr(run))
            lines = rejects(mark)
            self.assertEqual(sorted(rcpt for _, rcpt, _ in lines), sorted(UNKNOWN), lines)
            egress = {r["email"]: r["smtp"]["egress"] for r in run.results}
            for ip, rcpt, helo in lines:
                self.assertIn(ip, (SRC1, SRC2))
                self.assertEqual(egress[rcpt], ip, "smtp.egress names the source Postfix saw")
                self.assertEqual(helo, HELOS[ip], "HELO name of the source %s" % ip)
                self.assertEqual(seen.setdefault(rcpt, ip), ip, "%s changed source" % rcpt)
        self.assertEqual(set(seen.values()), {SRC1, SRC2}, "both sources used: %s" % seen)

    def test_source_of_the_other_family(self):
        # only an IPv6 source for an IPv4 server: never out of the default address
        run = run_mailprobe(["alice@postfix.test"], ["--source", "::1"])
        r = run.results[0]
        self.assertEqual((r["verdict"], r["reason"]), ("unknown", "connect_failed"), repr(run))
        self.assertIn("source address ::1 cannot reach an IPv4 address", r["reason_text"])
        self.assertEqual(client_commands(r), [])
        self.assertNotIn("resting it", run.stderr)  # unfit here, not broken

    def test_greylisted_retry_from_the_same_source(self):
        addr = "egress-%d-%d@greylist.test" % (os.getpid(), int(time.time() * 1000) % 10**9)
        mark = labkit.postfix_mark()
        r = self.check(addr, "--greylist-wait", "60", *sources_args(SRC1, SRC_OTHER24))
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertGreaterEqual(r["smtp"]["attempts"], 2, "it was greylisted first")
        ips = [ip for lst, ip in (m.groups() for m in map(CONNECT.search,
               mark.new_text().splitlines()) if m) if lst == "greylist"]
        self.assertGreaterEqual(len(ips), 2, ips)
        self.assertEqual(len(set(ips)), 1, "retries from one address: %s" % ips)
        self.assertIn(ips[0], (SRC1, SRC_OTHER24))
        ehlos = {c for c in client_commands(r) if c.startswith("EHLO ")}
        self.assertEqual(ehlos, {"EHLO " + HELOS[ips[0]]})


class Proxy(labkit.LabCase):
    danted = None

    @classmethod
    def setUpClass(cls):
        cls.danted = labkit.Danted("egress")
        cls.password = cls.danted.password
        try:
            cls.danted.begin()
            cls.danted.start("auth", AUTH_PROXY, "username")
            cls.danted.start("rule", RULE_PROXY, "none", block25=True)
        except BaseException:
            cls.danted.stop()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.danted:
            cls.danted.stop()

    def proxy(self, ip=AUTH_PROXY, password=None, helo=""):
        return self.danted.url(ip, password, helo)

    def test_same_verdicts_as_direct(self):
        addrs = ["alice@postfix.test", "nobody@postfix.test", "full@access.test",
                 "disabled@access.test", "blocked@access.test", "someone@catchall.test"]
        direct = run_mailprobe(addrs, probe=True).results
        self.assertEqual({r["smtp"]["egress"] for r in direct}, {None})
        mark = labkit.postfix_mark()
        via = run_mailprobe(addrs, ["--proxy", self.proxy(helo="px.lab.test")],
                            probe=True).results
        key = lambda r: (r["email"], r["verdict"], r["reason"], r["smtp"]["code"],  # noqa: E731
                         r["smtp"]["enhanced"], r["smtp"]["catch_all"])
        self.assertEqual([key(r) for r in via], [key(r) for r in direct])
        self.assertTrue(all(r["smtp"]["tls"] == d["smtp"]["tls"] for r, d in zip(via, direct)))
        clients = {ip for _, ip in (m.groups() for m in map(CONNECT.search,
                   mark.new_text().splitlines()) if m)}
        self.assertEqual(clients, {AUTH_PROXY}, "Postfix saw only the proxy")
        for r in via:  # the proxy's HELO name, the proxy named (never its password)
            self.assertIn("EHLO px.lab.test", client_commands(r))
            self.assertEqual(r["smtp"]["egress"], "socks5://mplabsocks@127.0.8.1:1080")

    def assertProxyFailure(self, run, words):
        for r in run.results:
            self.assertEqual((r["verdict"], r["reason"]), ("unknown", "connect_failed"), repr(run))
            self.assertIn(words, r["reason_text"])
            self.assertNotIn("port 25 may be blocked", r["reason_text"])
            self.assertEqual(labkit.transcript(r) and client_commands(r), [], "no SMTP at all")
        self.assertNotIn(self.password, run.stdout + run.stderr)
        self.assertEqual(run.rc, 3)

    def test_bad_credentials(self):
        run = run_mailprobe(["alice@postfix.test", "nobody@postfix.test"],
                            ["--proxy", self.proxy(password="wrong-" + self.password)])
        self.assertProxyFailure(run, "SOCKS5 proxy socks5://mplabsocks@127.0.8.1:1080: "
                                "the proxy refused the user name or password")
        self.assertIn("resting it", run.stderr)

    def test_no_credentials_for_an_authenticating_proxy(self):
        run = run_mailprobe(["alice@postfix.test"], ["--proxy", "socks5://%s:1080" % AUTH_PROXY])
        self.assertProxyFailure(run, "the proxy requires authentication (give USER:PASS)")

    def test_proxy_down(self):
        run = run_mailprobe(["alice@postfix.test"], ["--proxy", "socks5://%s:1080" % DOWN_PROXY])
        self.assertProxyFailure(run, "SOCKS5 proxy socks5://127.0.8.9:1080: connection refused")

    def test_server_refuses_behind_the_proxy(self):
        # every MX of allrefused.test refuses: the proxy says so (REP 5); that is the
        # server's answer relayed, so the proxy is not rested
        run = run_mailprobe(["alice@allrefused.test"], ["--proxy", self.proxy()])
        r = run.results[0]
        self.assertEqual((r["verdict"], r["reason"]), ("unknown", "connect_failed"), repr(run))
        self.assertIn("connection refused (REP 5)", r["reason_text"])
        self.assertNotIn("port 25 may be blocked", r["reason_text"])
        self.assertNotIn("resting it", run.stderr)

    def test_failed_proxy_rests_and_its_domains_move(self):
        # rendezvous hashing puts postfix.test and cname.test on the proxy that is down,
        # multi.test on the working one. One session at a time: the session of the first
        # two (one server address: they share it) fails and rests its proxy; the proxy
        # failed, not the server, so both go out again, through the other one.
        down = "socks5://%s:1080" % DOWN_PROXY
        good = "socks5://%s@%s:1080" % (SOCKS_USER, AUTH_PROXY)
        run = run_mailprobe(["alice@postfix.test", "alice@cname.test", "alice@multi.test"],
                            ["--proxy", down, "--proxy", self.proxy(), "--max-sessions", "1"])
        by = {r["email"]: r for r in run.results}
        self.assertEqual(by["alice@multi.test"]["smtp"]["egress"], good)
        self.assertEqual(by["alice@multi.test"]["verdict"], "deliverable")
        for r in (by["alice@postfix.test"], by["alice@cname.test"]):
            self.assertEqual((r["verdict"], r["smtp"]["egress"]), ("deliverable", good),
                             repr(run))
        self.assertEqual(run.stderr.count("resting it for 30 s"), 1, run.stderr)
        self.assertIn("SOCKS5 proxy %s: connection refused" % down, run.stderr)

    def test_silent_proxy(self):
        # the scripted server's silent listener accepts and never says a word
        silent = labkit.SCRIPT["silent"]
        run = run_mailprobe(["alice@postfix.test"], ["--proxy", "socks5://%s:25" % silent,
                                                     "--connect-timeout", "2"])
        self.assertProxyFailure(run, "SOCKS5 proxy socks5://%s:25: no answer to the "
                                "handshake in time" % silent)
        self.assertIn("resting it", run.stderr)

    def test_not_a_socks_proxy(self):
        # an SMTP server where a proxy should be: its banner is no SOCKS5 answer
        run = run_mailprobe(["alice@postfix.test"], ["--proxy", "socks5://%s:25" % labkit.PF["mbox"]])
        self.assertProxyFailure(run, "not a SOCKS5 proxy")

    def test_rule_refuses_port_25(self):
        run = run_mailprobe(["alice@postfix.test"], ["--proxy", "socks5://%s:1080" % RULE_PROXY])
        self.assertProxyFailure(run, "the proxy refused the connection: connection not "
                                "allowed by ruleset (REP 2)")


if __name__ == "__main__":
    labkit.main()
