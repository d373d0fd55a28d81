#!/usr/bin/python3
"""The catch-all assessment (issue 16) in the lab: a bulk job whose rows on the accept-all
domain catchall.test (Postfix, a virtual-alias catch-all) get the expected
catch_all_assessment in CSV (columns), NDJSON (object with evidence and weights) and the
split files; what the job proved goes to the address history; a single `check` and
serve's /v1/check read that history. The history also holds what `mailprobe learn` read from a CSV export (a hard
bounce, a delivery). Small on purpose: it runs again under valgrind in CI."""
import csv
import datetime
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from t_api import Server, request  # noqa: E402

ENGINE = ["--dns", labkit.DNS, "--allow-private-mx", "--helo", labkit.HELO,
          "--from", labkit.FROM, "--no-progress"]

ROWS = [  # first, last, email, expected assessment ("" = not assessed)
    ("John", "Smith", "john.smith@catchall.test", "likely_valid"),
    ("Mary", "Jones", "mary.jones@catchall.test", "likely_valid"),
    ("Peter", "Brown", "peter.brown@catchall.test", "likely_valid"),
    ("Anna", "White", "anna.white@catchall.test", "likely_valid"),
    ("Paul", "Proven", "paul.proven@catchall.test", "likely_valid"),   # delivered (learn)
    ("Lena", "Gone", "lena.gone@catchall.test", "likely_invalid"),     # hard bounce (learn)
    ("Lisa", "Green", "lsua.green@catchall.test", "likely_invalid"),   # a slip of lisa.green
    ("Tom", "Black", "xq7zkv93tj@catchall.test", "likely_invalid"),    # random string
    ("", "", "info@catchall.test", "likely_valid"),                    # role address
    ("", "", "someone@catchall.test", "no_evidence"),                  # nothing known
    ("Alice", "Liddell", "alice@postfix.test", ""),                    # deliverable
    ("No", "Body", "nobody@postfix.test", ""),                         # undeliverable
]


class Assess(labkit.LabCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mp-assess-")
        self.store = os.path.join(self.dir, "jobs.sqlite")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def mp(self, *args, timeout=180):
        p = labkit.nsexec(labkit.mailprobe_argv_prefix() + list(args), capture_output=True,
                          text=True, timeout=timeout)
        labkit.assert_clean_stderr(p.stderr)
        return p

    def learn(self):
        day = (datetime.date.today() - datetime.timedelta(days=10)).isoformat()
        with open(self.path("export.csv"), "w") as f:
            f.write("recipient,status,diagnostic,date\n"
                    "lena.gone@catchall.test,hard,550 5.1.1 Mailbox does not exist,%s\n"
                    "paul.proven@catchall.test,delivered,,%s\n" % (day, day))
        # the deny list goes to its own file, which the bulk job below is not given: the
        # bounce reaches the assessment through the history
        p = self.mp("learn", "--deny-list", self.path("deny.txt"), "--store", self.store,
                    self.path("export.csv"))
        self.assertEqual(p.returncode, 0, p.stderr)

    def write_list(self):
        with open(self.path("in.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["first_name", "last_name", "email"])
            for first, last, email, _ in ROWS:
                w.writerow([first, last, email])
        return self.path("in.csv")

    def test_bulk_csv_ndjson_split_and_check(self):
        self.learn()
        src = self.write_list()
        p = self.mp("bulk", "--store", self.store, *ENGINE, src, "-o", self.path("out.csv"),
                    "--split-by-verdict", self.path("split"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("catch-all assessment: 6 likely_valid, 3 likely_invalid, 1 no_evidence",
                      p.stderr)
        self.assertIn("list prior: none (2 checkable addresses, 20 needed)", p.stderr)
        with open(self.path("out.csv"), newline="") as f:
            out = list(csv.DictReader(f))
        self.assertEqual([r["email"] for r in out], [r[2] for r in ROWS])
        for r, (_, _, email, want) in zip(out, ROWS):
            if want:
                self.assertEqual((r["verdict"], r["reason"]), ("risky", "accept_all"), r)
            self.assertEqual(r["catch_all_assessment"], want, r)
            if want:
                p_valid = float(r["catch_all_probability"])
                self.assertGreaterEqual(p_valid, 0.0)
                self.assertLessEqual(p_valid, 1.0)
                if want == "likely_valid":
                    self.assertGreater(p_valid, 0.5, r)
                if want == "likely_invalid":
                    self.assertLess(p_valid, 0.2, r)
            else:
                self.assertEqual(r["catch_all_probability"], "", r)
        # the split files: risky split by the assessment
        def emails(name):
            with open(os.path.join(self.path("split"), name), newline="") as f:
                return sorted(r["email"] for r in csv.DictReader(f))
        self.assertEqual(emails("risky_likely_valid.csv"),
                         sorted(e for _, _, e, w in ROWS if w == "likely_valid"))
        self.assertEqual(emails("risky_likely_invalid.csv"),
                         sorted(e for _, _, e, w in ROWS if w == "likely_invalid"))
        self.assertEqual(emails("risky.csv"), ["someone@catchall.test"])
        self.assertEqual(emails("deliverable.csv"), ["alice@postfix.test"])
        self.assertEqual(emails("undeliverable.csv"), ["nobody@postfix.test"])

        # NDJSON from the same job: the object, with every piece of evidence and its weight
        p = self.mp("bulk", "--store", self.store, *ENGINE, src, "-o", self.path("out.ndjson"),
                    "--format", "ndjson")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("out.ndjson")) as f:
            nd = {j["email"]: j["mailprobe"] for j in map(json.loads, f)}
        for _, _, email, want in ROWS:
            a = nd[email].get("catch_all_assessment")
            if not want:
                self.assertIsNone(a, email)
                continue
            self.assertEqual(a["assessment"], want, (email, a))
            for e in a["evidence"]:
                self.assertIsInstance(e["weight"], float)
        def factors(email):
            return {e["factor"]: e for e in nd[email]["catch_all_assessment"]["evidence"]}
        f = factors("john.smith@catchall.test")
        self.assertEqual(f["fits_pattern"]["detail"], "first.last")
        self.assertIn("pattern_proven", f)     # paul.proven was delivered: same pattern
        f = factors("paul.proven@catchall.test")
        self.assertEqual(f["proven_recent"]["detail"], "10 days ago")
        f = factors("lena.gone@catchall.test")
        self.assertEqual(f["refused_recent"]["detail"], "10 days ago")
        self.assertLess(f["refused_recent"]["weight"], 0)
        f = factors("lsua.green@catchall.test")
        self.assertEqual(f["near_expected_address"]["detail"], "lisa.green")
        self.assertIn("gibberish", factors("xq7zkv93tj@catchall.test"))
        self.assertIn("role_address", factors("info@catchall.test"))
        self.assertEqual(nd["someone@catchall.test"]["catch_all_assessment"]["evidence"], [])

        # what the job proved is in the history now
        db = sqlite3.connect(self.store)
        kinds = dict(db.execute("SELECT addr, kind FROM address_history WHERE kind IN "
                                "('accepted', 'refused')").fetchall())
        db.close()
        self.assertEqual(kinds, {"alice@postfix.test": "accepted",
                                 "nobody@postfix.test": "refused"})

        # a single check: the history only
        p = self.mp("check", "--json", "--store", self.store, *ENGINE[:-1],
                    "lena.gone@catchall.test", "someone@catchall.test")
        res = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([r["reason"] for r in res], ["accept_all", "accept_all"], p.stderr)
        a = res[0]["catch_all_assessment"]
        self.assertEqual(a["assessment"], "likely_invalid")
        self.assertEqual([e["factor"] for e in a["evidence"]], ["refused_recent"])
        a = res[1]["catch_all_assessment"]
        self.assertEqual((a["assessment"], a["evidence"]), ("no_evidence", []))
        # the human output says it too; a store that does not exist is not created
        p = self.mp("check", "--store", self.store, *ENGINE[:-1], "lena.gone@catchall.test")
        self.assertRegex(p.stdout, r"\n  catch-all assessment: likely_invalid \(probability "
                         r"\d %\): refused_recent -\d\.\d\d 10 days ago\n")
        none = self.path("none.sqlite")
        p = self.mp("check", "--json", "--store", none, *ENGINE[:-1], "lena.gone@catchall.test")
        a = json.loads(p.stdout)["catch_all_assessment"]
        self.assertEqual((a["assessment"], a["evidence"]), ("no_evidence", []))
        self.assertFalse(os.path.exists(none))

        # serve's /v1/check: the same object, from the same history
        srv = Server(self.store)
        try:
            for q in ("", "&fresh=1"):  # from the job's cached result, then checked anew
                r = request(srv.url("/v1/check?email=lena.gone@catchall.test" + q))
                self.assertEqual(r.code, 200, r.body)
                j = r.json()
                self.assertEqual((j["reason"], j.get("cached", False)), ("accept_all", not q))
                self.assertEqual(j["catch_all_assessment"]["assessment"], "likely_invalid")
            j = request(srv.url("/v1/check?email=alice@postfix.test")).json()
            self.assertNotIn("catch_all_assessment", j)
            # a job through the API: the list's evidence and the history (read only)
            with open(src) as f:
                r = request(srv.url("/v1/jobs"), "POST", f.read(), {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            for _ in range(600):
                j = request(srv.url("/v1/jobs/" + id)).json()
                if j["state"] in ("done", "failed"):
                    break
                time.sleep(0.2)
            self.assertEqual(j["state"], "done", j)
            body = request(srv.url("/v1/jobs/%s/results?format=ndjson" % id)).body.decode()
            got = {o["email"]: o["mailprobe"].get("catch_all_assessment")
                   for o in map(json.loads, body.splitlines())}
            self.assertEqual({e: a and a["assessment"] for e, a in got.items()},
                             {e: w or None for _, _, e, w in ROWS})
            self.assertIn("refused_recent",
                          [e["factor"] for e in got["lena.gone@catchall.test"]["evidence"]])
            # verdict=risky: every risky row, whatever its assessment
            risky = request(srv.url("/v1/jobs/%s/results?verdict=risky" % id)).body.decode()
            self.assertEqual(len(risky.splitlines()), 1 + sum(1 for r in ROWS if r[3]))
        finally:
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    if os.environ.get("MP_IN_NETNS") != labkit.NS:
        # run inside the lab's namespace: serve's loopback is the namespace's (as t_api)
        os.environ["MP_IN_NETNS"] = labkit.NS
        os.execvp("ip", ["ip", "netns", "exec", labkit.NS, sys.executable] + sys.argv)
    labkit.main()
