#!/usr/bin/python3
"""One session, many domains (the connection cache): domains whose MX is the same server
address share a session, in one transaction (their RCPTs in the same write, or in a later
write of the open transaction: no RSET, no second MAIL FROM); a session is retired before
Postfix's error limits; a server that drops a session in the middle of a later transaction loses
no recipient and is asked none twice; a server without PIPELINING gets one command at a
time. Counts come from the servers' own logs."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import PF, SCRIPT  # noqa: E402

EHLO = "EHLO probe.lab.test"
MAIL = "MAIL FROM:<verify@lab.test>"


def rcpt(a):
    return "RCPT TO:<%s>" % a


def notes(r):
    return [t["line"] for t in labkit.transcript(r) if t.get("dir") == "*"]


class SharedSession(labkit.LabCase):
    def shared(self, r, other):
        """r's transcript shows that it shared its session with the domain other: the
        other's RCPTs in r's own run, or a note naming it as an earlier run's."""
        cmds = labkit.client_commands(r)
        return (any(c.startswith("RCPT TO:<") and c.endswith("@" + other + ">")
                    for c in cmds) or
                any(other in n for n in notes(r)))

    def test_two_domains_one_session(self):
        # strict.test and strict2.test: one MX address; --per-server 1 makes the sharing
        # certain (with 2, a second session might open before the first is idle)
        addrs = ["alice@strict.test", "nobody@strict2.test", "bob@strict.test"]
        mark = labkit.postfix_mark()
        run = labkit.run_mailprobe(addrs, ["--per-server", "1"], probe=True)
        self.assertEqual([(r["email"], r["reason"]) for r in run.results],
                         [(addrs[0], "accepted"), (addrs[1], "mailbox_absent"),
                          (addrs[2], "accepted")])
        self.assertEqual(labkit.postfix_sessions(mark, "strict"), 1)
        st = labkit.postfix_disconnect_stats(mark, "strict")
        self.assertEqual(len(st), 1, st)
        # one transaction for both domains (no RSET), each domain with its postmaster@
        # control: 3 addresses, 2 controls, strict.test's probe (all its addresses were
        # accepted), and strict2.test's only when it went up front (its write was alone
        # for the server when its DNS answer came first; otherwise nobody's refusal as
        # unknown tells its addresses apart and it is not probed)
        self.assertEqual((st[0].get("mail"), st[0].get("rset"), st[0].get("quit")),
                         ("1", None, "1"), st[0])
        self.assertIn(st[0].get("rcpt"), ("4/6", "4/7"), st[0])
        for r in run.results:
            self.assertEqual(r["smtp"]["attempts"], 1)
            self.assertIs(r["smtp"]["catch_all"], False)
            other = "strict2.test" if r["email"].endswith("@strict.test") else "strict.test"
            self.assertTrue(self.shared(r, other), labkit.transcript(r))
            self.assertNotIn("RSET", labkit.client_commands(r))

    def test_no_reuse_with_reuse_count_one(self):
        # --session-reuse-count 1: a session carries one run (one write); domains share
        # it only when they ride in that first write
        addrs = ["alice@strict.test", "bob@strict2.test"]
        mark = labkit.postfix_mark()
        run = labkit.run_mailprobe(addrs, ["--per-server", "1", "--session-reuse-count", "1"])
        self.assertEqual([r["reason"] for r in run.results], ["accepted", "accepted"])
        st = labkit.postfix_disconnect_stats(mark, "strict")
        self.assertIn(len(st), (1, 2), st)
        for s in st:
            self.assertEqual((s.get("mail"), s.get("rset")), ("1", None), st)
        for r in run.results:
            self.assertEqual(notes(r), [])
            self.assertEqual(labkit.client_commands(r)[0], EHLO)

    def test_error_budget_retires_before_postfix_limits(self):
        # 40 absent addresses and one real one at a listener with Postfix's defaults
        # (smtpd_soft_error_limit 10: every reply 1 s late past it; hard limit 20: "421
        # too many errors"). Each session is retired before it takes 10 refusals.
        addrs = ["nobody%02d@strict.test" % i for i in range(40)] + ["alice@strict.test"]
        mark = labkit.postfix_mark()
        run = labkit.run_mailprobe(addrs, probe=True)
        self.assertEqual([r["reason"] for r in run.results],
                         ["mailbox_absent"] * 40 + ["accepted"])
        self.assertEqual([r["smtp"]["attempts"] for r in run.results], [1] * 41)
        log = mark.new_text()
        self.assertNotIn("too many errors", log)
        st = labkit.postfix_disconnect_stats(mark, "strict")
        self.assertGreaterEqual(len(st), 5, st)  # 41 addresses at most 8 refusals each
        refusals = [labkit.postfix_refusals(s) for s in st]
        self.assertLessEqual(max(refusals), 9, st)  # --session-errors default
        # the absent ones, no probe: they tell the domain's addresses apart
        self.assertEqual(sum(refusals), 40, st)
        self.assertTrue(all(s.get("quit") == "1" for s in st), st)  # each ended by us


class Broken(labkit.LabCase):
    def test_drop_in_a_later_transaction_loses_nothing(self):
        # dropmid closes the connection, unanswered, when the 3rd RCPT of the connection
        # arrives: that is the first RCPT of the second domain (in the same write as the
        # first domain's, or in a later write of the open transaction). Its recipients go
        # to a new session; those already answered are never asked again.
        ip = SCRIPT["dropmid"]
        a = ["alice@dropmid-a.test", "zed@dropmid-a.test"]
        b = ["bob@dropmid-b.test", "nobody@dropmid-b.test"]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(a + b, ["--per-server", "1"])
        reasons = {r["email"]: r["reason"] for r in run.results}
        self.assertEqual(reasons, {a[0]: "accepted", a[1]: "mailbox_absent",
                                   b[0]: "accepted", b[1]: "mailbox_absent"})
        conns = list(labkit.script_commands(mark, ip).values())
        self.assertEqual(len(conns), 2, conns)
        first, second = (a, b) if conns[0][2] == rcpt(a[0]) else (b, a)
        self.assertEqual(conns[0][:5], [EHLO, MAIL, rcpt(first[0]), rcpt(first[1]),
                                        rcpt(second[0])])
        self.assertIn(conns[0][5:], ([], [rcpt(second[1])]))  # pipelined: maybe read
        self.assertEqual(conns[1], [EHLO, MAIL, rcpt(second[0]), rcpt(second[1]), "QUIT"])
        attempts = {r["email"]: r["smtp"]["attempts"] for r in run.results}
        self.assertEqual(attempts, {first[0]: 1, first[1]: 1, second[0]: 2, second[1]: 2})
        # the first domain's recipients were answered once and never asked again
        for r in run.results:
            if r["email"] in first:
                self.assertEqual(labkit.client_commands(r).count(rcpt(r["email"])), 1)


class NoPipelining(labkit.LabCase):
    def test_one_command_at_a_time(self):
        ip = SCRIPT["nopipe"]
        addrs = ["alice@nopipe-a.test", "zed@nopipe-b.test"]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, ["--per-server", "1"])
        self.assertEqual([r["reason"] for r in run.results], ["accepted", "mailbox_absent"])
        events = labkit.script_events(mark, ip)
        conns = list(labkit.script_commands(mark, ip).values())
        self.assertEqual(len(conns), 1, conns)
        x, y = (addrs if conns[0][2] == rcpt(addrs[0]) else addrs[::-1])
        # one transaction for both domains, one RCPT per write
        self.assertEqual(conns[0], [EHLO, MAIL, rcpt(x), rcpt(y), "QUIT"])
        self.assertEqual([e for e in events if e["event"] == "early"], [])
        # the detector works: a server with PIPELINING gets MAIL FROM and RCPT together
        ip = SCRIPT["normal"]
        mark = labkit.script_mark()
        labkit.run_mailprobe(["alice@normal.script.test"])
        early = [e["cmd"] for e in labkit.script_events(mark, ip) if e["event"] == "early"]
        self.assertIn(MAIL, early)


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
