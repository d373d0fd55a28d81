#!/usr/bin/python3
"""Scripted-server scenarios (tests/lab/smtpscript.py): what no real MTA does on demand.
Each asserts the verdict, the reason, and the exact commands the server received."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import SCRIPT, client_commands  # noqa: E402
from smtpscript import BEHAVIOURS  # noqa: E402

IP = {b: ip for ip, b in BEHAVIOURS.items()}  # every behaviour, also those labkit lacks

EHLO = "EHLO probe.lab.test"
MAIL = "MAIL FROM:<verify@lab.test>"
MAILBOX_REASONS = {"accepted", "mailbox_absent", "mailbox_disabled", "mailbox_full",
                   "accept_all", "domain_not_served"}


def rcpt(a):
    return "RCPT TO:<%s>" % a


class Script(labkit.LabCase):
    def run_one(self, behaviour, local="alice", *extra, domain=None):
        ip = SCRIPT[behaviour]
        addr = "%s@%s" % (local, domain or behaviour + ".script.test")
        mark = labkit.script_mark()
        r = self.check(addr, *extra)
        conns = labkit.script_commands(mark, ip)
        return r, addr, list(conns.values())

    def assertServerSaw(self, conns, expected):
        self.assertEqual(conns, expected)

    def test_normal(self):
        r, a, conns = self.run_one("normal")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertServerSaw(conns, [[EHLO, MAIL, rcpt(a), "QUIT"]])
        # reported as soon as the RCPT reply was in: the QUIT came after the result
        self.assertEqual(client_commands(r), [EHLO, MAIL, rcpt(a)])

    def test_252_every_rcpt(self):
        r, a, conns = self.run_one("r252", "zed")
        self.assertIn(r["verdict"], ("risky", "unknown"))
        self.assertEqual(r["reason"], "anti_enumeration")
        self.assertEqual(r["smtp"]["code"], 252)
        self.assertServerSaw(conns, [[EHLO, MAIL, rcpt(a), "QUIT"]])

    def test_split_multiline_accept(self):
        r, a, conns = self.run_one("split")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertServerSaw(conns, [[EHLO, MAIL, rcpt(a), "QUIT"]])
        # the 3-line banner and the EHLO reply were read whole, cut where they were cut
        lines = labkit.server_lines(r)
        self.assertEqual(lines[:3], ["220-split.script.test ESMTP", "220-lab scripted server",
                                     "220 ready"])
        self.assertIn("250-PIPELINING", lines)

    def test_split_multiline_reject(self):
        r, a, conns = self.run_one("split", "zed")
        self.assertVerdict(r, "undeliverable", "mailbox_absent")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (550, "5.1.1"))
        self.assertIn("does not exist", r["smtp"]["message"])
        self.assertIn("unnecessary spaces", r["smtp"]["message"])
        self.assertServerSaw(conns, [[EHLO, MAIL, rcpt(a), "QUIT"]])

    def test_silent_server_times_out(self):
        r, a, conns = self.run_one("silent", "alice", "--timeout", "2")
        self.assertVerdict(r, "unknown", "timeout")
        self.assertServerSaw(conns, [[]])

    def test_max_time_per_address(self):
        r, a, conns = self.run_one("silent", "bob", "--max-time", "2")
        self.assertVerdict(r, "unknown", "timeout")
        self.assertServerSaw(conns, [[]])

    def test_drop_after_rcpt(self):
        r, a, conns = self.run_one("droprcpt")
        self.assertEqual(r["verdict"], "unknown")
        self.assertIn(r["reason"], ("protocol_error", "connect_failed", "temporary_failure"))
        self.assertServerSaw(conns, [[EHLO, MAIL, rcpt(a)]])

    def check_garbage(self, behaviour):
        r, a, conns = self.run_one(behaviour)
        self.assertVerdict(r, "unknown", "protocol_error")
        self.assertEqual(len(conns), 1)
        self.assertIn(conns[0], ([EHLO], [EHLO, "QUIT"]))  # nothing after the garbage

    def test_garbage_binary(self):
        self.check_garbage("garbage")

    def test_garbage_non_numeric(self):
        self.check_garbage("nonnumeric")

    def test_oversized_reply_line(self):
        self.check_garbage("oversize")

    def test_connection_cap_421(self):
        # (with the default --greylist-wait the client keeps retrying a 421 for minutes)
        r, a, conns = self.run_one("cap421", "alice", "--greylist-wait", "0")
        self.assertVerdict(r, "unknown", "rate_limited")
        self.assertEqual(r["smtp"]["code"], 421)
        self.assertTrue(conns and all(c in ([], ["QUIT"]) for c in conns), conns)

    def test_banner_554(self):
        r, a, conns = self.run_one("banner554")
        self.assertEqual(r["verdict"], "unknown")
        self.assertEqual(r["reason"], "policy_blocked")
        self.assertIn(conns, ([[]], [["QUIT"]]))

    def test_helo_fallback(self):
        r, a, conns = self.run_one("noehlo")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertServerSaw(conns, [[EHLO, "HELO probe.lab.test", MAIL, rcpt(a), "QUIT"]])

    def test_next_mx_after_421_banner(self):
        # fallover.test: MX 10 -> cap421 script, MX 20 -> Postfix catch-all listener
        mark = labkit.script_mark()
        r = self.check("alice@fallover.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["smtp"]["mx_ip"], labkit.PF["catchall"])
        self.assertEqual(labkit.ips_contacted(r), [SCRIPT["cap421"], labkit.PF["catchall"]])
        seen = list(labkit.script_commands(mark, SCRIPT["cap421"]).values())
        self.assertTrue(seen and all(c in ([], ["QUIT"]) for c in seen), seen)
        self.assertEqual(client_commands(r, labkit.PF["catchall"]),
                         [EHLO, MAIL, rcpt("alice@fallover.test")])

    def test_next_mx_after_4xx_on_mail(self):
        # tempmail.test: MX 10 -> mail451 script, MX 20 -> Postfix catch-all listener
        mark = labkit.script_mark()
        r = self.check("alice@tempmail.test")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(labkit.ips_contacted(r), [SCRIPT["mail451"], labkit.PF["catchall"]])
        conns = list(labkit.script_commands(mark, SCRIPT["mail451"]).values())
        self.assertEqual(len(conns), 1)
        # MAIL FROM and RCPT in one write; the reply to the RCPT after the refused MAIL
        # FROM is read and dropped, then QUIT (no RSET: no transaction was opened)
        self.assertEqual(conns[0], [EHLO, MAIL, rcpt("alice@tempmail.test"), "QUIT"])
        self.assertEqual(client_commands(r, labkit.PF["catchall"]),
                         [EHLO, MAIL, rcpt("alice@tempmail.test")])

    def test_next_mx_after_timeout(self):
        # slowfall.test: MX 10 -> silent script, MX 20 -> Postfix catch-all listener
        mark = labkit.script_mark()
        r = self.check("alice@slowfall.test", "--timeout", "2")
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["smtp"]["mx_ip"], labkit.PF["catchall"])
        self.assertEqual(list(labkit.script_commands(mark, SCRIPT["silent"]).values()), [[]])
        self.assertEqual(client_commands(r, labkit.PF["catchall"]),
                         [EHLO, MAIL, rcpt("alice@slowfall.test")])

    def test_polite_per_server_concurrency(self):
        # ARCHITECTURE.md: per-MX-IP concurrency 2 by default
        ip = SCRIPT["normal"]
        addrs = ["u%d@normal.script.test" % i for i in range(8)] + ["alice@normal.script.test"]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs)
        self.assertEqual([r["email"] for r in run.results], addrs)
        self.assertEqual([r["reason"] for r in run.results],
                         ["mailbox_absent"] * 8 + ["accepted"])
        events = labkit.script_events(mark, ip)
        order = sorted(((e["t"], 0 if e["event"] == "close" else 1) for e in events
                        if e["event"] in ("connect", "close")))
        open_now = peak = 0
        for _, kind in order:
            open_now += 1 if kind else -1
            peak = max(peak, open_now)
        self.assertLessEqual(peak, 2, "simultaneous connections to one MX IP")
        rcpts = [e["cmd"] for e in events if e["event"] == "cmd" and e["cmd"].startswith("RCPT")]
        self.assertEqual(sorted(rcpts), sorted(rcpt(a) for a in addrs))

    def test_broken_starttls_is_no_verdict_on_the_mailbox(self):
        r, a, conns = self.run_one("tlsbroken")
        # either an honest unknown, or a plaintext retry on a new connection that succeeds
        if r["verdict"] == "unknown":
            self.assertIn(r["reason"], ("tls_failed", "protocol_error"))
            self.assertEqual(conns[0], [EHLO, "STARTTLS"])
        else:
            self.assertVerdict(r, "deliverable", "accepted")
            self.assertEqual(conns[-1], [EHLO, MAIL, rcpt(a), "QUIT"])



class TooManyRecipients(labkit.LabCase):
    """452 4.5.3 "too many recipients" (RFC 5321 §4.5.3.1.10): the refused recipients go
    into new transactions of the same session (RSET, MAIL FROM, RCPT...), never DATA."""

    def run_many(self, behaviour, locals_, extra=()):
        ip = IP[behaviour]
        addrs = ["%s@%s.script.test" % (l, behaviour) for l in locals_]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, list(extra))
        self.assertEqual([r["email"] for r in run.results], addrs)
        return run, addrs, list(labkit.script_commands(mark, ip).values())

    def test_two_per_transaction_one_session(self):
        # tworcpt takes two RCPTs per transaction: the client learns that from the first
        # transaction and sends the refused ones two at a time, in submission order
        run, a, conns = self.run_many("tworcpt", ["alice", "zed", "bob", "nobody",
                                                  "postmaster"])
        self.assertEqual([r["reason"] for r in run.results],
                         ["accepted", "mailbox_absent", "accepted", "mailbox_absent",
                          "accepted"])
        self.assertEqual([r["verdict"] for r in run.results],
                         ["deliverable", "undeliverable", "deliverable", "undeliverable",
                          "deliverable"])
        expected = [EHLO, MAIL] + [rcpt(x) for x in a] + [
            "RSET", MAIL, rcpt(a[2]), rcpt(a[3]),
            "RSET", MAIL, rcpt(a[4]), "QUIT"]
        self.assertEqual(conns, [expected])  # one session, exactly these commands
        for r in run.results:
            self.assertEqual(r["smtp"]["attempts"], 1, r["email"])
            self.assertEqual(client_commands(r), labkit.until_report(expected))
            self.assertEqual(labkit.ips_contacted(r), [IP["tworcpt"]])
        # the answers each address got are the ones of its last transaction
        self.assertEqual([(r["smtp"]["code"], r["smtp"]["enhanced"]) for r in run.results],
                         [(250, "2.1.5"), (550, "5.1.1"), (250, "2.1.5"), (550, "5.1.1"),
                          (250, "2.1.5")])
        self.assertEqual(labkit.server_lines(run.results[0]).count(
            "452 4.5.3 Error: too many recipients"), 3)  # all in the first transaction

    def test_rcpt_per_transaction_option(self):
        # a server with no limit, and --rcpt-per-transaction 2: the same shape, chosen
        run, a, conns = self.run_many("normal", ["alice", "bob", "zed"],
                                      ["--rcpt-per-transaction", "2"])
        self.assertEqual([r["reason"] for r in run.results],
                         ["accepted", "accepted", "mailbox_absent"])
        self.assertEqual(conns, [[EHLO, MAIL, rcpt(a[0]), rcpt(a[1]),
                                  "RSET", MAIL, rcpt(a[2]), "QUIT"]])

    def test_452_to_every_rcpt_ends(self):
        # 452 4.5.3 even to the first RCPT of a fresh transaction: no second transaction
        # (it would meet the same refusal); the check gets a session of its own, where
        # the same answer is read as what it says (too_many_recipients), retried on the
        # same server like any "slow down" (twice), then given up
        run, a, conns = self.run_many("all452", ["alice"])
        r = run.results[0]
        self.assertVerdict(r, "unknown", "too_many_recipients")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (452, "4.5.3"))
        one = [EHLO, MAIL, rcpt(a[0]), "QUIT"]
        self.assertEqual(conns, [one] * 4)  # shared, own, and two throttle retries
        self.assertEqual(r["smtp"]["attempts"], 4)
        self.assertEqual(client_commands(r), one * 4)

    def test_452_to_every_rcpt_shared_session_no_rset(self):
        # two checks in one session, both refused at once: that session opens no second
        # transaction; each check then goes on alone as above (every such session is a
        # throttle for the server's window, so the whole course takes a minute: --max-time
        # cuts it short, and whatever it cut, nothing loops and nothing is a verdict)
        run, a, conns = self.run_many("all452", ["alice", "bob"], ["--max-time", "4"])
        for r in run.results:
            self.assertEqual(r["verdict"], "unknown")
            self.assertIn(r["reason"], ("too_many_recipients", "timeout"))
        self.assertEqual(conns[0], [EHLO, MAIL, rcpt(a[0]), rcpt(a[1]), "QUIT"])
        self.assertLessEqual(len(conns), 1 + 2 * 3, conns)
        for c in conns[1:]:
            self.assertIn(c, ([EHLO, MAIL, rcpt(a[0]), "QUIT"],
                              [EHLO, MAIL, rcpt(a[1]), "QUIT"], []))
        for c in conns:
            self.assertNotIn("RSET", c)
            self.assertLessEqual(c.count(MAIL), 1)


class Politeness(labkit.LabCase):
    def test_never_more_than_two_sessions_per_server(self):
        # eight domains on one server that says 421 to a third concurrent connection and
        # holds each session 0.3 s: mailprobe keeps to its default of 2 per server address,
        # and the domains share those sessions (the connection cache) instead of opening
        # one each
        addrs = ["alice@cap2-%s.test" % c for c in "abcdefgh"]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs)
        self.assertEqual([r["reason"] for r in run.results], ["accepted"] * 8)
        events = labkit.script_events(mark, SCRIPT["cap2"])
        conc = [int(e["cmd"]) for e in events if e["event"] == "concurrency"]
        self.assertIn(len(conc), (1, 2), events)
        self.assertLessEqual(max(conc), 2)
        self.assertEqual([r["smtp"]["attempts"] for r in run.results], [1] * 8)
        cmds = [e["cmd"] for e in events if e["event"] == "cmd"]
        self.assertEqual(sorted(c for c in cmds if c.startswith("RCPT")),
                         sorted(rcpt(a) for a in addrs))  # each asked once
        # one transaction per session, whatever the domains: no RSET, one MAIL FROM each
        self.assertEqual(cmds.count("RSET"), 0)
        self.assertEqual(sum(c.startswith("MAIL FROM") for c in cmds), len(conc), cmds)

    def test_per_host_limit(self):
        # the same eight domains share one MX host name: --per-host 1 keeps one session
        # open to it at a time, whatever --per-server allows
        addrs = ["bob@cap2-%s.test" % c for c in "abcdefgh"]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, ["--per-host", "1", "--per-server", "2"])
        self.assertEqual([r["reason"] for r in run.results], ["accepted"] * 8)
        events = labkit.script_events(mark, SCRIPT["cap2"])
        conc = [int(e["cmd"]) for e in events if e["event"] == "concurrency"]
        self.assertEqual(conc, [1])  # one session at a time: the same one, reused


class ArrivalOrder(labkit.LabCase):
    """Waiting checks queue per server address and start in arrival order across servers
    (sched/engine.c, "the wait queues"; docs/internals/sched.md)."""

    def test_sessions_start_in_arrival_order_across_servers(self):
        # three servers, the checks interleaved, runs of one server among them; one
        # session at a time (--max-sessions 1) carrying one recipient: each server is
        # asked in exactly the order the checks arrived (address literals need no DNS, so
        # they queue in the order given), whichever server each waits for, whether its
        # session is new (the previous server's idle one is QUIT to make room) or the
        # same server's idle one, reused
        order = "NCNNPCCNPPCN"
        ip = {"N": SCRIPT["normal"], "C": SCRIPT["cap2"], "P": SCRIPT["nopipe"]}
        addrs = ["z%02d@[%s]" % (i, ip[s]) for i, s in enumerate(order)]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, ["--max-sessions", "1", "--rcpt-per-session", "1"])
        self.assertEqual([r["email"] for r in run.results], addrs)
        self.assertEqual([r["reason"] for r in run.results], ["mailbox_absent"] * len(addrs))
        events = labkit.script_events(mark)
        asked = [e["cmd"] for e in events if e["event"] == "cmd" and e["ip"] in ip.values()
                 and e["cmd"].startswith("RCPT")]
        self.assertEqual(asked, [rcpt(a) for a in addrs])

    def test_a_server_just_served_waits_its_turn_in_the_pass(self):
        # N0, C1, N2 arrive together; two sessions in all, one recipient each, no interval
        # between two sessions to one server: once N0's session starts, the pass goes on
        # with C1 (it arrived before N2), so the two sessions are N0's and C1's, and N2
        # then takes N0's session when it is idle - one connection to each server. Serving
        # N again before C would open a second one to N at once.
        ip = {"N": SCRIPT["normal"], "C": SCRIPT["nopipe"]}
        addrs = ["z%d@[%s]" % (i, ip[s]) for i, s in enumerate("NCN")]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, ["--max-sessions", "2", "--rcpt-per-session", "1",
                                           "--min-interval", "0"])
        self.assertEqual([r["reason"] for r in run.results], ["mailbox_absent"] * 3)
        events = labkit.script_events(mark)
        for s in "NC":
            self.assertEqual(sum(1 for e in events
                                 if e["event"] == "connect" and e["ip"] == ip[s]), 1, events)

    def test_take_along_in_arrival_order_per_server(self):
        # two servers, the checks interleaved; one session at a time to each
        # (--per-server 1) carrying three recipients: a session takes along the checks
        # waiting for its server in the order they arrived (the order given: address
        # literals), so each server is asked in that order, each address once
        order = "CCNCNNCCCNCCNC"
        ip = {"N": SCRIPT["normal"], "C": SCRIPT["cap2"]}
        addrs = ["z%02d@[%s]" % (i, ip[s]) for i, s in enumerate(order)]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(addrs, ["--per-server", "1", "--rcpt-per-session", "3"])
        self.assertEqual([r["reason"] for r in run.results], ["mailbox_absent"] * len(addrs))
        for s in "CN":
            events = labkit.script_events(mark, ip[s])
            asked = [e["cmd"] for e in events
                     if e["event"] == "cmd" and e["cmd"].startswith("RCPT")]
            self.assertEqual(asked, [rcpt(a) for a in addrs if ip[s] in a])
        conc = [int(e["cmd"]) for e in labkit.script_events(mark, ip["C"])
                if e["event"] == "concurrency"]
        self.assertEqual(set(conc), {1})


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
