#!/usr/bin/python3
"""`mailprobe learn` end to end, without the network: real bounces (tests/data/bounces/)
and a CSV export go in; the deny list gains the hard bounces with their date and reason,
a later `check --offline --deny-list` answers undeliverable/deny_listed with that date and
reason, the history lands in the job store, and bad inputs stop with one line and a
non-zero exit while what was learned before stays. MAILPROBE is the binary."""
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MAILPROBE", "build/mailprobe")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "bounces")


def mp(*args):
    e = dict(os.environ)
    e.pop("MAILPROBE_CONFIG", None)
    e["HOME"] = tempfile.gettempdir() + "/mp-cli-home-none"
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, env=e,
                          timeout=60)


class Learn(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mp-learn-")
        self.deny = os.path.join(self.dir, "deny.txt")
        self.store = os.path.join(self.dir, "jobs.db")
        self.mbox = os.path.join(self.dir, "bounces.mbox")
        with open(self.mbox, "wb") as out:
            for name in ("lhost-gmail-01.eml", "lhost-sendmail-33.eml", "lhost-postfix-02.eml"):
                out.write(b"From MAILER-DAEMON Thu Apr 29 23:34:45 2010\n")
                with open(os.path.join(DATA, name), "rb") as f:
                    out.write(f.read())
                out.write(b"\n")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def learn(self, *paths):
        return mp("learn", "--deny-list", self.deny, "--store", self.store, *paths)

    def check(self, addr):
        p = mp("check", "--json", "--offline", "--deny-list", self.deny, addr)
        return p, json.loads(p.stdout)

    def test_bounce_to_check(self):
        p = self.learn(self.mbox)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("3 hard", p.stderr)
        with open(self.deny) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 3, lines)  # the 5.7.1 block is not among them
        self.assertTrue(lines[0].startswith("userunknown@example.jp  # hard bounce 2014-07-18:"))
        r, res = self.check("userunknown@example.jp")
        self.assertEqual(r.returncode, 1)
        self.assertEqual((res["verdict"], res["reason"]), ("undeliverable", "deny_listed"))
        self.assertIn("2014-07-18", res["reason_text"])
        self.assertIn("5.1.1", res["reason_text"])
        self.assertIn("User Unknown", res["reason_text"])
        # a block of the sender's IP is a soft bounce: not denied
        r, res = self.check("mailboxfull@neko.example.org")
        self.assertEqual(res["reason"], "not_checked")
        # the history has every event, the soft one too
        db = sqlite3.connect(self.store)
        rows = dict(db.execute("SELECT addr, kind FROM address_history").fetchall())
        db.close()
        self.assertEqual(rows["mailboxfull@neko.example.org"], "soft")
        self.assertEqual(rows["userunknown@example.jp"], "hard")
        # learning again adds nothing twice
        p = self.learn(self.mbox)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.deny) as f:
            self.assertEqual(len(f.read().splitlines()), 3)

    def test_appends_after_a_line_without_newline(self):
        with open(self.deny, "w") as f:
            f.write("trap@example.com")
        p = self.learn(os.path.join(DATA, "lhost-qmail-01.eml"))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.deny) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "trap@example.com")
        self.assertTrue(lines[1].startswith("kijitora@example.ne.jp  # hard bounce"), lines)

    def test_csv_and_list(self):
        csv = os.path.join(self.dir, "export.csv")
        with open(csv, "w") as f:
            f.write("recipient,status,diagnostic,date\n"
                    "gone@example.com,hard,550 5.1.1 Mailbox does not exist,2026-11-30\n"
                    "fine@example.com,delivered,,2026-11-30\n")
        p = mp("learn", "--list", csv)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 2)
        self.assertFalse(os.path.exists(self.deny))  # --list stores nothing
        p = self.learn(csv)
        self.assertEqual(p.returncode, 0, p.stderr)
        r, res = self.check("gone@example.com")
        self.assertEqual(res["reason"], "deny_listed")
        self.assertIn("hard bounce 2026-11-30: 5.1.1 550 5.1.1 Mailbox does not exist",
                      res["reason_text"])

    def assertOneLine(self, p, code, words):
        self.assertEqual(p.returncode, code, p)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("mailprobe: "), lines[0])
        self.assertIn(words, lines[0])

    def test_bad_inputs_keep_what_was_learned(self):
        bad = os.path.join(self.dir, "export.csv")
        with open(bad, "w") as f:
            f.write("name,city\nx,y\n")
        p = self.learn(self.mbox, bad, os.path.join(DATA, "lhost-qmail-01.eml"))
        self.assertOneLine(p, 2, "export.csv: a CSV export needs an address column")
        self.assertIn("3 deny-list entries", p.stderr)
        r, res = self.check("userunknown@example.jp")  # learned before the bad file
        self.assertEqual(res["reason"], "deny_listed")
        r, res = self.check("kijitora@example.ne.jp")  # after it: not read
        self.assertEqual(res["reason"], "not_checked")
        self.assertOneLine(self.learn(os.path.join(self.dir, "missing")), 5, "missing")
        self.assertOneLine(mp("learn", self.mbox), 2, "--deny-list")
        self.assertOneLine(mp("learn", "--deny-list", self.deny), 2, "FILE or DIR")
        self.assertOneLine(mp("learn", "--bogus", self.mbox), 2, "--bogus")
        # a deny list that does not load is not appended to
        with open(self.deny, "a") as f:
            f.write("not an entry\n")
        self.assertOneLine(self.learn(self.mbox), 2, "deny list")


class NameColumn(unittest.TestCase):
    """bulk --name-column: a column the list does not have stops before any work."""

    def test_bad_name_column(self):
        d = tempfile.mkdtemp(prefix="mp-names-")
        try:
            lst = os.path.join(d, "list.csv")
            with open(lst, "w") as f:
                f.write("email,first_name,last_name\nann@example.com,Ann,Lee\n")
            args = ("bulk", "--offline", "--no-progress", "--store", os.path.join(d, "s.db"),
                    "-o", os.path.join(d, "out.csv"))
            p = mp(*args, "--name-column", "nickname", lst)
            self.assertEqual(p.returncode, 2, p)
            self.assertEqual(p.stderr.strip().splitlines(),
                             ["mailprobe: bulk: --name-column nickname: no such column"])
            self.assertFalse(os.path.exists(os.path.join(d, "out.csv")))
            p = mp(*args, "--name-column", "first_name,last_name", lst)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.exists(os.path.join(d, "out.csv")))
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
