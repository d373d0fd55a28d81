#!/usr/bin/python3
"""Greylisting with real postgrey (delay MP_LAB_GREYLIST_DELAY, 5 s): retried after a
backoff within --greylist-wait and then accepted; still refused when the wait is shorter
than the greylisting delay -> greylisted (unknown). Each test uses a fresh recipient (the
domain is a catch-all) so that postgrey has never seen its triplet."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from labkit import client_commands  # noqa: E402

ONE = ["EHLO probe.lab.test", "MAIL FROM:<verify@lab.test>"]


def fresh(tag):
    return "%s-%d-%d@greylist.test" % (tag, os.getpid(), int(time.time() * 1000) % 10**9)


class Greylist(labkit.LabCase):
    def session(self, addr):
        # reported as soon as the RCPT reply is in: the QUIT comes after the result
        return ONE + ["RCPT TO:<%s>" % addr]

    def assertAttempts(self, addr, cmds):
        """cmds: attempts one after the other, each in a new session or, when the retry
        came within the idle time, a new transaction on the idle one (RSET, MAIL, RCPT);
        returns how many."""
        rcpt = "RCPT TO:<%s>" % addr
        rest, n = list(cmds), 0
        while rest:
            if rest[:3] == self.session(addr):
                rest = rest[3:]
            elif n > 0 and rest[:3] == ["RSET", ONE[1], rcpt]:
                rest = rest[3:]
            else:
                self.fail("not an attempt at %r: %r (all: %r)" % (addr, rest, cmds))
            n += 1
        return n

    def test_retried_then_accepted(self):
        addr = fresh("wait")
        mark = labkit.postfix_mark()
        r = self.check(addr, "--greylist-wait", "60")
        self.assertVerdict(r, "deliverable", "accepted")
        refused = labkit.postfix_rejects(mark, addr)
        self.assertGreaterEqual(len(refused), 1)
        self.assertIn("Greylisted", refused[0])
        self.assertEqual(self.assertAttempts(addr, client_commands(r)), len(refused) + 1)
        self.assertIn("Greylisted", "\n".join(labkit.server_lines(r)))

    def test_wait_too_short_is_greylisted(self):
        addr = fresh("short")
        r = self.check(addr, "--greylist-wait", "1")
        self.assertVerdict(r, "unknown", "greylisted")
        self.assertEqual((r["smtp"]["code"], r["smtp"]["enhanced"]), (450, "4.2.0"))
        self.assertGreaterEqual(self.assertAttempts(addr, client_commands(r)), 1)

    def test_no_wait_is_greylisted(self):
        addr = fresh("nowait")
        r = self.check(addr, "--greylist-wait", "0")
        self.assertVerdict(r, "unknown", "greylisted")
        self.assertEqual(client_commands(r), self.session(addr))


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
