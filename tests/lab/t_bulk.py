#!/usr/bin/python3
"""`mailprobe bulk` against the lab: every input row once, in order, with its columns;
duplicates checked once; one session per domain; bad rows kept; errors before any work;
resumption after kill -9 and after Ctrl-C; NDJSON; split files; --max-age; `jobs`."""
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

ENGINE = ["--dns", labkit.DNS, "--allow-private-mx", "--helo", labkit.HELO,
          "--from", labkit.FROM, "--no-progress"]


class Bulk(labkit.LabCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="mp-bulk-")
        self.store = os.path.join(self.dir, "jobs.sqlite")

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w", newline="") as f:
            f.write(text)
        return self.path(name)

    def bulk_argv(self, *args):
        return labkit.mailprobe_argv_prefix() + ["bulk", "--store", self.store] + ENGINE + \
            list(args)

    def bulk(self, *args, timeout=120):
        p = labkit.nsexec(self.bulk_argv(*args), capture_output=True, text=True,
                          timeout=timeout)
        labkit.assert_clean_stderr(p.stderr)
        return p

    def read_csv(self, name):
        with open(self.path(name), newline="") as f:
            return list(csv.reader(f))

    def stored_rows(self):
        db = sqlite3.connect(self.store)
        try:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            db.close()

    def test_rows_in_order_with_columns_and_errors(self):
        src = self.write("in.csv", "name,email,city\n"
                         "Alice,alice@postfix.test,Paris\n"
                         'Bob,bob@postfix.test,"Rome, IT"\n'
                         "Nobody,nobody@postfix.test,Oslo\n"
                         "Again,alice@postfix.test,Paris\n"
                         "Bad,\"unterminated,x\n"
                         "Jane,jane@catchall.test,Lima\n"
                         "Empty,,Nowhere\n"
                         "Syntax,a..b@postfix.test,X\n")
        mark = labkit.postfix_mark()
        p = self.bulk(src, "-o", self.path("out.csv"))
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.read_csv("out.csv")
        head = rows[0]
        self.assertEqual(head[:3], ["name", "email", "city"])
        self.assertEqual(head[3:6], ["verdict", "reason", "score"])
        body = [dict(zip(head, r)) for r in rows[1:]]
        self.assertEqual([r["name"] for r in body],
                         ["Alice", "Bob", "Nobody", "Again", "Bad", "Jane", "Empty", "Syntax"])
        self.assertEqual(body[1]["city"], "Rome, IT")
        self.assertEqual([(r["verdict"], r["reason"] or r["error"]) for r in body],
                         [("deliverable", "accepted"), ("deliverable", "accepted"),
                          ("undeliverable", "mailbox_absent"), ("deliverable", "accepted"),
                          ("", "bad_quoting"), ("risky", "accept_all"), ("", "no_address"),
                          ("undeliverable", "invalid_syntax")])
        # alice twice in the input, checked once; postfix.test's addresses in one session
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 1)
        rc = [st.get("rcpt") for st in labkit.postfix_disconnect_stats(mark, "mbox")]
        # alice, bob and the postmaster@ control accepted, of those and nobody and the probe
        self.assertEqual(rc, ["3/5"])
        self.assertIn("sessions opened 2", p.stderr)
        self.assertIn("done: 8 rows", p.stderr)

    def test_missing_column_fails_before_any_work(self):
        src = self.write("in.csv", "name,city\nAlice,Paris\n")
        p = self.bulk(src, "-o", self.path("out.csv"))
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("column", p.stderr)
        self.assertFalse(os.path.exists(self.path("out.csv")))
        src = self.write("in2.csv", "name,email\nAlice,alice@postfix.test\n")
        p = self.bulk(src, "--column", "mail", "-o", self.path("out.csv"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("mail", p.stderr)

    def test_unwritable_output_fails_before_any_work(self):
        src = self.write("in.csv", "email\nalice@postfix.test\n")
        mark = labkit.postfix_mark()
        p = self.bulk(src, "-o", "/nonexistent-dir/out.csv")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent-dir", p.stderr)
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 0)

    def run_to_be_stopped(self, sig):
        # 12 quick rows, then 3 on a server that never answers (held until --timeout)
        lines = ["email"] + ["user%d@postfix.test" % i for i in range(12)] + \
                ["a@silent.script.test", "b@silent.script.test", "c@silent.script.test"]
        src = self.write("in.csv", "\n".join(lines) + "\n")
        argv = self.bulk_argv(src, "-o", self.path("out.csv"), "--timeout", "6")
        proc = labkit.nspopen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                if self.stored_rows() >= 12:
                    break
            except sqlite3.Error:
                pass
        self.assertGreaterEqual(self.stored_rows(), 12, "the quick rows were never committed")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        return src, proc.returncode, err

    def assert_complete_once(self):
        rows = self.read_csv("out.csv")
        emails = [r[0] for r in rows[1:]]
        self.assertEqual(emails, ["user%d@postfix.test" % i for i in range(12)] +
                         ["a@silent.script.test", "b@silent.script.test",
                          "c@silent.script.test"])
        reasons = [r[2] for r in rows[1:]]
        self.assertEqual(reasons[:12], ["mailbox_absent"] * 12)
        self.assertEqual(reasons[12:], ["timeout"] * 3)

    def test_resume_after_kill_9(self):
        src, code, err = self.run_to_be_stopped(signal.SIGKILL)
        self.assertEqual(code, -signal.SIGKILL)
        self.assertFalse(os.path.exists(self.path("out.csv")))  # never half-written
        mark = labkit.postfix_mark()
        p = self.bulk(src, "-o", self.path("out.csv"), "--timeout", "6")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("continuing job", p.stderr)
        self.assert_complete_once()
        # the 12 rows stored before the kill were not checked again
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 0)

    def test_ctrl_c_checkpoints_and_resumes(self):
        src, code, err = self.run_to_be_stopped(signal.SIGINT)
        self.assertEqual(code, 130, err)
        self.assertIn("interrupted", err)
        self.assertIn("run the same command", err)
        jobs = labkit.nsexec(labkit.mailprobe_argv_prefix() + ["jobs", "--store", self.store],
                             capture_output=True, text=True)
        self.assertEqual(jobs.returncode, 0)
        self.assertIn("interrupted", jobs.stdout)
        p = self.bulk(src, "-o", self.path("out.csv"), "--timeout", "6")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_complete_once()
        jobs = labkit.nsexec(labkit.mailprobe_argv_prefix() + ["jobs", "--store", self.store],
                             capture_output=True, text=True)
        self.assertIn("done", jobs.stdout)
        self.assertIn(" 15 ", jobs.stdout)

    def test_kill_before_anything_was_committed(self):
        src = self.write("in.csv", "email\nalice@postfix.test\nx@silent.script.test\n")
        argv = self.bulk_argv(src, "-o", self.path("out.csv"), "--timeout", "6")
        proc = labkit.nspopen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.05)
        proc.kill()
        proc.communicate(timeout=30)
        self.assertFalse(os.path.exists(self.path("out.csv")))
        p = self.bulk(src, "-o", self.path("out.csv"), "--timeout", "6")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.read_csv("out.csv")
        self.assertEqual([r[0] for r in rows[1:]], ["alice@postfix.test", "x@silent.script.test"])
        self.assertEqual([r[2] for r in rows[1:]], ["accepted", "timeout"])

    def test_resume_by_job_id(self):
        src, code, err = self.run_to_be_stopped(signal.SIGINT)
        self.assertEqual(code, 130, err)
        jobs = labkit.nsexec(labkit.mailprobe_argv_prefix() + ["jobs", "--store", self.store],
                             capture_output=True, text=True)
        job_id = jobs.stdout.splitlines()[1].split()[0]
        self.assertIn(job_id, err)
        # another directory, the job id only: input and output come from the job
        p = labkit.nsexec(labkit.mailprobe_argv_prefix() +
                          ["bulk", "--store", self.store, "--resume", job_id, "--timeout", "6"] +
                          ENGINE, capture_output=True, text=True, timeout=120, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_complete_once()
        p = labkit.nsexec(labkit.mailprobe_argv_prefix() +
                          ["bulk", "--store", self.store, "--resume", "nosuchjob"] + ENGINE,
                          capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("nosuchjob", p.stderr)

    def test_input_stored_absolute(self):
        """A relative input path is stored absolute: --resume works from anywhere."""
        self.write("rel.csv", "email\nalice@postfix.test\n")
        p = labkit.nsexec(labkit.mailprobe_argv_prefix() +
                          ["bulk", "--store", self.store, "rel.csv", "-o", "out.csv"] + ENGINE,
                          capture_output=True, text=True, timeout=120, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        db = sqlite3.connect(self.store)
        job_id, stored = db.execute("SELECT id, input_path FROM jobs").fetchone()
        db.close()
        self.assertEqual(stored, self.path("rel.csv"))
        p = labkit.nsexec(labkit.mailprobe_argv_prefix() +
                          ["bulk", "--store", self.store, "--resume", job_id, "-o",
                           self.path("again.csv")] + ENGINE,
                          capture_output=True, text=True, timeout=120, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.read_csv("again.csv")[1][0], "alice@postfix.test")

    def test_second_process_refused_while_one_runs(self):
        lines = ["email"] + ["user%d@postfix.test" % i for i in range(12)] + \
                ["a@silent.script.test"]
        src = self.write("in.csv", "\n".join(lines) + "\n")
        argv = self.bulk_argv(src, "-o", self.path("out.csv"), "--timeout", "8")
        proc = labkit.nspopen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.3)
                try:
                    if self.stored_rows() >= 12:
                        break
                except sqlite3.Error:
                    pass
            p = self.bulk(src, "-o", self.path("out2.csv"), "--timeout", "8")
            self.assertEqual(p.returncode, 5, p.stderr)
            self.assertIn("being run by another process (pid %d)" % proc.pid, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertFalse(os.path.exists(self.path("out2.csv")))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
        # once it stopped, the job is free again
        p = self.bulk(src, "-o", self.path("out.csv"), "--timeout", "8")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_damaged_store(self):
        src = self.write("in.csv", "email\nalice@postfix.test\n")
        # not a database at all, then a real store with damaged pages
        with open(self.store, "wb") as f:
            f.write(os.urandom(8192))
        for attempt in range(2):
            p = self.bulk(src, "-o", self.path("out.csv"))
            self.assertEqual(p.returncode, 5, p.stderr)
            lines = p.stderr.strip().splitlines()
            self.assertEqual(lines[0].count(self.store), 1, p.stderr)
            self.assertIn("damaged", lines[0])
            self.assertIn("--store NEW.sqlite", p.stderr)
            self.assertIn(".recover", p.stderr)
            self.assertNotIn("run the same command", p.stderr)
            os.unlink(self.store)
            for ext in ("-wal", "-shm"):
                if os.path.exists(self.store + ext):
                    os.unlink(self.store + ext)
            if attempt == 0:
                p = self.bulk(src, "-o", self.path("out.csv"))
                self.assertEqual(p.returncode, 0, p.stderr)
                with open(self.store, "r+b") as f:
                    f.seek(4096)
                    f.write(b"\xff" * 8192)

    def test_no_room_refused_before_any_work(self):
        """A job that would not fit is refused before it starts (a small tmpfs)."""
        small = self.path("small")
        os.mkdir(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small], check=True)
        try:
            rows = 10000
            src = self.write("big.csv", "email\n" + "".join(
                "u%d@postfix.test\n" % i for i in range(rows)))
            p = labkit.nsexec(labkit.mailprobe_argv_prefix() +
                              ["bulk", "--store", os.path.join(small, "s.sqlite"), src, "-o",
                               self.path("out.csv")] + ENGINE,
                              capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 5, p.stderr)
            self.assertIn("not enough room", p.stderr)
            self.assertIn("%d rows" % rows, p.stderr)
            self.assertFalse(os.path.exists(self.path("out.csv")))
        finally:
            subprocess.run(["umount", small], check=True)

    def test_disk_full_mid_run_counts_what_is_kept(self):
        """The disk fills during a run: the message counts the rows the store holds (the
        ones resume will skip), not the ones this run checked."""
        small = self.path("full")
        os.mkdir(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small], check=True)
        try:
            store = os.path.join(small, "s.sqlite")
            lines = ["email"] + ["user%d@postfix.test" % i for i in range(1500)] + \
                    ["late@silent.script.test"]
            src = self.write("in.csv", "\n".join(lines) + "\n")
            # --session-errors 100: the quick rows (1,500 absent addresses of one domain)
            # as fast as the lab's raised error limits allow, well before the last row's
            # 20 s; with the default budget of 8 they take 250 sessions and longer
            argv = labkit.mailprobe_argv_prefix() + [
                "bulk", "--store", store, src, "-o", self.path("out.csv"), "--timeout",
                "20", "--session-errors", "100"] + ENGINE
            proc = labkit.nspopen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
            db = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.2)
                try:
                    db = sqlite3.connect(store, timeout=5)
                    if db.execute("SELECT done_rows FROM jobs").fetchone()[0] >= 1500:
                        break
                except (sqlite3.Error, TypeError):
                    pass
                finally:
                    if db:
                        db.close()
            # the quick rows are stored; fill the disk while the last one waits
            subprocess.run(["dd", "if=/dev/zero", "of=" + os.path.join(small, "fill"),
                            "bs=64k"], capture_output=True)
            out, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 5, err)
            self.assertIn("disk is full", err)
            os.unlink(os.path.join(small, "fill"))
            db = sqlite3.connect(store)
            held = db.execute("SELECT count(*) FROM results").fetchone()[0]
            db.close()
            self.assertEqual(held, 1500)
            self.assertIn("keeps %d checked rows" % held, err)
            self.assertFalse(os.path.exists(self.path("out.csv")))
        finally:
            subprocess.run(["umount", small], check=True)

    def test_greylisting_is_deferred_not_waited(self):
        # postgrey delays 5 s: the greylisted rows wait on their own timers (retry at 15 s)
        # while the other rows are checked and committed at once
        tag = str(int(time.time() * 1000))
        grey = ["g1-%s@greylist.test" % tag, "g2-%s@greylist.test" % tag]
        quick = ["alice@postfix.test", "bob@postfix.test", "nobody@postfix.test"]
        src = self.write("in.csv", "email\n" + "\n".join([grey[0]] + quick + [grey[1]]) + "\n")
        t0 = time.time()
        p = self.bulk(src, "-o", self.path("out.csv"), "--greylist-wait", "40",
                      "--no-catch-all-probe")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreaterEqual(time.time() - t0, 14)
        rows = self.read_csv("out.csv")
        self.assertEqual([r[2] for r in rows[1:]],
                         ["accepted", "accepted", "accepted", "mailbox_absent", "accepted"])
        db = sqlite3.connect(self.store)
        at = dict(db.execute("SELECT address, checked_at FROM results").fetchall())
        db.close()
        self.assertLess(max(at[a] for a in quick), min(at[g] for g in grey) - 10)
        self.assertIn("retries", p.stderr)

    def test_ndjson_and_split(self):
        src = self.write("in.ndjson",
                         '{"id": 1, "email": "alice@postfix.test"}\n'
                         '{"id": 2, "email": "nobody@postfix.test"}\n'
                         'not json\n'
                         '{"id": 4, "email": "jane@catchall.test"}\n')
        p = self.bulk(src, "-o", self.path("out.ndjson"), "--split-by-verdict",
                      self.path("split"))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = [json.loads(l) for l in open(self.path("out.ndjson")) if l.strip()]
        self.assertEqual(len(out), 4)
        self.assertEqual([o.get("id") for o in out], [1, 2, None, 4])
        self.assertEqual(out[0]["mailprobe"]["verdict"], "deliverable")
        self.assertEqual(out[1]["mailprobe"]["reason"], "mailbox_absent")
        self.assertIn("bad_json", json.dumps(out[2]))
        self.assertEqual(out[3]["mailprobe"]["reason"], "accept_all")
        names = sorted(os.listdir(self.path("split")))
        self.assertTrue(any(n.startswith("deliverable") for n in names), names)
        self.assertTrue(any(n.startswith("risky") for n in names), names)

    def test_max_age_reuses_earlier_results(self):
        src = self.write("in.csv", "email\nalice@postfix.test\nnobody@postfix.test\n")
        p = self.bulk(src, "-o", self.path("a.csv"))
        self.assertEqual(p.returncode, 0, p.stderr)
        mark = labkit.postfix_mark()
        src2 = self.write("in2.csv", "email,note\nalice@postfix.test,x\nnobody@postfix.test,y\n")
        p = self.bulk(src2, "-o", self.path("b.csv"), "--max-age", "1h")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 0)
        self.assertIn("rows reused 2", p.stderr)
        rows = self.read_csv("b.csv")
        self.assertEqual([r[3] for r in rows[1:]], ["accepted", "mailbox_absent"])

    def test_stdin_input(self):
        p = labkit.nsexec(self.bulk_argv("-", "-o", self.path("out.csv")),
                          input="email\nalice@postfix.test\n", capture_output=True, text=True,
                          timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.read_csv("out.csv")[1][1], "deliverable")


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
