#!/usr/bin/python3
"""A 30 s banner is waited for within the default step deadline (its own file: slow, so
ctest -j runs it beside the others)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402


class SlowBanner(labkit.LabCase):
    def test_slow_banner_waited_for(self):
        # both addresses in one run: checked concurrently, one 30 s wait in all
        ip = labkit.SCRIPT["slowbanner"]
        mark = labkit.script_mark()
        run = labkit.run_mailprobe(["alice@slowbanner.script.test",
                                    "zed@slowbanner.script.test"])  # default --timeout
        a, z = run.results
        self.assertVerdict(a, "deliverable", "accepted")
        self.assertVerdict(z, "undeliverable", "mailbox_absent")
        seen = sorted(labkit.script_commands(mark, ip).values())
        want = sorted([["EHLO probe.lab.test", "MAIL FROM:<verify@lab.test>",
                        "RCPT TO:<%s>" % r["email"], "QUIT"] for r in (a, z)])
        if len(seen) == 1:  # one session carrying both RCPTs is fine too
            self.assertEqual(seen[0][:2], want[0][:2])
            self.assertEqual(sorted(x for x in seen[0] if x.startswith("RCPT")),
                             sorted(w[2] for w in want))
        else:
            self.assertEqual(seen, want)
        for r in (a, z):
            self.assertIn("RCPT TO:<%s>" % r["email"], labkit.client_commands(r))


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
