#!/usr/bin/python3
"""A pool of workers around Redis (src/fleet/queue.c, src/cli/worker.c): `mailprobe
worker --redis URL` checks what `mailprobe bulk --redis URL --pool` submits.

Each test starts its own Debian redis-server inside the lab namespace (stopped by pid).
Three workers on three source addresses share one job, one is kill -9ed mid-job and
another restarted: the output is byte for byte what a local `bulk` of the same input
writes. Redis killed and started again (empty) mid-job: the submitter and the workers
reconnect and the job completes. Greylisted retries come back from the source address
that started them, and the batch is not taken over by another worker while it waits
(its claim is kept alive). A batch delivered too many times becomes error rows. Redis
unreachable: exit 5, one line, nothing submitted. Four workers on one address keep the
per-server limit summed over them, as Postfix's connection-capped listener saw it."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

ENGINE = ["--dns", labkit.DNS, "--allow-private-mx", "--helo", labkit.HELO,
          "--from", labkit.FROM, "--timeout", "4"]
SOURCES = ["127.0.9.1=one.lab.test", "127.0.9.2=two.lab.test", "127.0.10.1=ten.lab.test"]
CONNECT = re.compile(r"postfix/(\w+)/smtpd\[\d+\]: connect from unknown\[([0-9.]+)\]")
REDIS_BIN = "/usr/bin/redis-server"

# quick rows first (Postfix, Exim-free), then rows that take --timeout (a silent server)
ROWS = (["user%d@postfix.test" % i for i in range(6)] +
        ["alice@postfix.test", "bob@postfix.test", "full@access.test",
         "disabled@access.test", "blocked@access.test", "x@catchall.test",
         "nobody@multi.test", "nobody@twoip.test", "a@silent.script.test",
         "b@silent.script.test", "not an address", "alice@postfix.test"])


class Redis:
    """A redis-server of the test's own, inside the namespace, on a fixed port."""

    def __init__(self, workdir, port):
        self.dir, self.port, self.proc = workdir, port, None
        self.url = "redis://127.0.0.1:%d" % port

    def start(self):
        if not os.path.exists(REDIS_BIN):
            raise labkit.LabError("%s is missing (scripts/deps test)" % REDIS_BIN)
        self.proc = labkit.nspopen([REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", self.dir,
                                    "--logfile", os.path.join(self.dir, "redis.log"),
                                    "--daemonize", "no"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.1)
        raise labkit.LabError("redis-server did not start on port %d" % self.port)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def cli(self, *args):
        p = labkit.nsexec(["redis-cli", "-p", str(self.port)] + list(args),
                          capture_output=True, text=True, timeout=10)
        return p.stdout


class Pool(labkit.LabCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="mp-pool-")
        self.redis = Redis(self.dir, 16300 + os.getpid() % 1000)
        self.redis.start()
        self.workers = []

    def tearDown(self):
        for w in self.workers:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.errf.close()
        self.redis.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_input(self, rows):
        with open(self.path("in.csv"), "w") as f:
            f.write("email,n\n" + "".join("%s,%d\n" % (r, i) for i, r in enumerate(rows)))
        return self.path("in.csv")

    def bulk_argv(self, store, out, *extra):
        return labkit.mailprobe_argv_prefix() + [
            "bulk", self.path("in.csv"), "-o", self.path(out), "--store", self.path(store),
            "--no-progress"] + ENGINE + list(extra)

    def local(self, *extra):
        """The same input checked by one process: what the pool must write."""
        p = labkit.nsexec(self.bulk_argv("local.sqlite", "local.csv", *extra),
                          capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("local.csv")) as f:
            return f.read()

    def submit(self, *extra):
        return labkit.nspopen(self.bulk_argv("pool.sqlite", "pool.csv", "--redis",
                                             self.redis.url, "--pool", *extra),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc, timeout=120):
        out, err = proc.communicate(timeout=timeout)
        labkit.assert_clean_stderr(err)
        self.assertEqual(proc.returncode, 0, err)
        with open(self.path("pool.csv")) as f:
            return f.read(), err

    def worker(self, source=None, *extra):
        """A worker in the namespace, once it has joined the pool (its signals caught)."""
        argv = labkit.mailprobe_argv_prefix() + ["worker", "--redis", self.redis.url] + \
            ENGINE + list(extra)
        if source:
            argv += ["--source", source]
        errf = open(self.path("worker%d.log" % len(self.workers)), "w+")
        w = labkit.nspopen(argv, stdout=subprocess.DEVNULL, stderr=errf)
        w.errf = errf
        self.workers.append(w)
        deadline = time.monotonic() + 60
        while "joined the pool" not in self.log(w):
            if w.poll() is not None or time.monotonic() > deadline:
                self.fail("the worker did not start:\n" + self.log(w))
            time.sleep(0.1)
        return w

    def log(self, w):
        w.errf.seek(0)
        return w.errf.read()

    def stop_worker(self, w):
        """SIGTERM: it finishes what it holds and exits 0; its log."""
        w.send_signal(signal.SIGTERM)
        w.wait(timeout=60)
        err = self.log(w)
        labkit.assert_clean_stderr(err)
        self.assertEqual(w.returncode, 0, err)
        m = re.search(r"worker stopped: (\d+) batches \((\d+) taken over", err)
        self.assertTrue(m, err)
        return int(m.group(1)), int(m.group(2)), err

    def assertSameOutput(self, got, want):
        """What the pool wrote is what one process wrote: every row, in order, once, each
        cell the same."""
        self.assertEqual(got, want)

    def stored_rows(self):
        try:
            db = sqlite3.connect(self.path("pool.sqlite"))
            try:
                return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return 0

    def wait_rows(self, n, proc, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if self.stored_rows() >= n:
                return
            time.sleep(0.1)
        self.fail("fewer than %d rows came back (%d)" % (n, self.stored_rows()))

    def test_three_workers_one_killed_one_restarted(self):
        self.write_input(ROWS)
        want = self.local()
        a = self.worker(SOURCES[0], "--claim-idle", "2s")
        bulk = self.submit()
        self.wait_rows(6, bulk)  # the quick rows are back: a holds the slow ones now
        a.kill()                 # kill -9: its batches stay pending in Redis
        a.wait()
        b = self.worker(SOURCES[1], "--claim-idle", "2s", "--batches", "2")
        c = self.worker(SOURCES[2], "--claim-idle", "2s", "--batches", "2")
        time.sleep(1)
        nb, tb, _ = self.stop_worker(b)  # a restart: finishes what it holds, exits 0
        self.worker(SOURCES[1], "--claim-idle", "2s", "--batches", "2")
        got, err = self.finish(bulk)
        self.assertSameOutput(got, want)
        self.assertIn("checked by the pool's workers", err)
        nc, tc, _ = self.stop_worker(c)
        b2 = self.stop_worker(self.workers[-1])
        self.assertGreaterEqual(tb + tc + b2[1], 1, "the killed worker's batches were taken over")
        # the job's keys are gone; nothing is left for the workers
        self.assertEqual(self.redis.cli("KEYS", "mp:job:*").strip(), "")
        self.assertEqual(self.redis.cli("SMEMBERS", "mp:jobs").strip(), "")

    def test_four_workers_one_budget_as_the_server_sees_it(self):
        """Four workers on one outbound address, --per-server 2 and one batch at a time
        each (so that all four work at once), one job on the six domains of Postfix's
        connection-capped listener (anvil lets a client hold 3 connections and says 421
        to a 4th): Postfix never saw more than 2 sessions open at once, summed over the
        workers, refused none, and the output is a local run's. (Fails when the acquire
        script does not refuse a full pair.)"""
        users = ["alice", "bob"] + ["nobody%d" % i for i in range(6)]
        rows = ["%s@fleet-%s.test" % (u, d) for d in "abcdef" for u in users]
        self.write_input(rows)
        want = self.local("--per-server", "2")
        for _ in range(4):
            self.worker(None, "--per-server", "2", "--batches", "1")
        mark = labkit.postfix_mark()
        got, err = self.finish(self.submit())
        text = mark.new_text(settle=0.5)
        self.assertSameOutput(got, want)
        for line in got.splitlines()[1:]:
            user = line.split("@")[0]
            self.assertIn(",deliverable," if user in ("alice", "bob") else ",undeliverable,",
                          line)
        self.assertNotIn("too many connections", text)
        self.assertEqual([l for l in text.splitlines()
                          if "capped" in l and re.search(r"\b421 4\.\d+\.\d+\b", l)], [])
        most = labkit.postfix_max_open(text, "capped")
        self.assertGreaterEqual(most, 1, text)
        self.assertLessEqual(most, 2, text)
        taken = [self.stop_worker(w)[0] for w in list(self.workers)]
        self.assertEqual(sum(taken), 6, taken)  # one batch per domain, each checked once

    def test_second_sigterm_hands_batches_back(self):
        self.write_input(ROWS)
        want = self.local()
        a = self.worker(SOURCES[0], "--claim-idle", "1m")
        bulk = self.submit()
        self.wait_rows(6, bulk)  # a holds the slow batches now
        a.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        _, _, log = self.stop_worker(a)  # the second signal: hand back, exit 0
        self.assertRegex(log, r"[1-9]\d* handed back", log)
        # through the delayed set and the stream, not by reclaiming (a minute away)
        b = self.worker(SOURCES[1], "--claim-idle", "1m")
        got, _ = self.finish(bulk)
        self.assertSameOutput(got, want)
        batches, taken, _ = self.stop_worker(b)
        self.assertGreaterEqual(batches, 1)
        self.assertEqual(taken, 0)

    def test_stop_while_the_job_list_is_read(self):
        """A SIGTERM that comes while the worker's read of the job list is unanswered:
        the worker exits once the answer comes (it used to wait for ever). Redis frozen
        (SIGSTOP) holds the read; an idle worker reads the list every second."""
        w = self.worker(SOURCES[0])
        time.sleep(0.5)
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(1.5)
            w.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(w.poll(), self.log(w))  # the answer is still to come
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        w.wait(timeout=15)
        err = self.log(w)
        labkit.assert_clean_stderr(err)
        self.assertEqual(w.returncode, 0, err)
        self.assertIn("worker stopped: 0 batches", err)

    def test_ctrl_c_and_the_same_command_again(self):
        self.write_input(ROWS)
        want = self.local()
        self.worker(SOURCES[0], "--claim-idle", "2s")
        bulk = self.submit()
        self.wait_rows(6, bulk)
        bulk.send_signal(signal.SIGINT)
        _, err = bulk.communicate(timeout=60)
        self.assertEqual(bulk.returncode, 130, err)
        self.assertIn("run the same command again", err)
        self.assertEqual(self.redis.cli("SMEMBERS", "mp:jobs").strip(), "", "withdrawn")
        # the workers' results of the interrupted run are kept (for a while) in Redis
        self.assertNotEqual(self.redis.cli("KEYS", "mp:job:*:res").strip(), "")
        again = self.submit()
        got, err = self.finish(again)
        self.assertIn("continuing job", err)
        self.assertSameOutput(got, want)
        jobs = labkit.nsexec(labkit.mailprobe_argv_prefix() + [
            "jobs", "--store", self.path("pool.sqlite")], capture_output=True, text=True)
        self.assertIn(" done ", jobs.stdout)

    def test_redis_restarted_mid_job(self):
        self.write_input(ROWS)
        want = self.local()
        w1 = self.worker(SOURCES[0], "--claim-idle", "2s")
        w2 = self.worker(SOURCES[2], "--claim-idle", "2s")
        bulk = self.submit()
        self.wait_rows(3, bulk)
        self.redis.stop(signal.SIGKILL)  # and it comes back empty (no persistence)
        time.sleep(1.5)
        self.redis.start()
        got, err = self.finish(bulk)
        self.assertSameOutput(got, want)
        self.assertIn("redis:", err)  # the outage was said
        for w in (w1, w2):
            _, _, log = self.stop_worker(w)
            self.assertIn("working again", log)

    def test_greylisted_retry_from_the_same_source(self):
        tag = "%d-%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        rows = ["g1-%s@greylist.test" % tag, "alice@postfix.test", "g2-%s@greylist.test" % tag]
        self.write_input(rows)
        # the workers' options decide how addresses are checked
        opts = ("--claim-idle", "2s", "--greylist-wait", "40", "--no-catch-all-probe")
        self.worker(SOURCES[0], *opts)
        self.worker(SOURCES[2], *opts)
        mark = labkit.postfix_mark()
        bulk = self.submit("--greylist-wait", "40", "--no-catch-all-probe")
        got, _ = self.finish(bulk)
        self.assertEqual([line.split(",")[3] for line in got.splitlines()[1:]],
                         ["accepted", "accepted", "accepted"], got)
        ips = [ip for lst, ip in (m.groups() for m in map(CONNECT.search,
               mark.new_text().splitlines()) if m) if lst == "greylist"]
        self.assertGreaterEqual(len(ips), 2, "greylisted, then retried: %s" % ips)
        self.assertEqual(len(set(ips)), 1, "retries from one address: %s" % ips)
        # the batch waited ~15 s, longer than --claim-idle: its claim was kept alive
        for w in list(self.workers):
            _, taken, log = self.stop_worker(w)
            self.assertEqual(taken, 0, log)

    def test_too_many_deliveries_become_error_rows(self):
        self.write_input(["a@one.example", "b@one.example", "c@two.example"])
        bulk = self.submit("--offline")
        key = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not key:
            keys = self.redis.cli("KEYS", "mp:job:*:work").split()
            if keys and self.redis.cli("XLEN", keys[0]).strip() == "2":
                key = keys[0]
            time.sleep(0.1)
        self.assertTrue(key, "the job was not submitted")
        # a worker that takes the batches and dies on them, again and again
        out = self.redis.cli("XREADGROUP", "GROUP", "mp:workers", "ghost", "COUNT", "10",
                             "STREAMS", key, ">")
        ids = re.findall(r"^\d+-\d+$", out, re.M)
        self.assertEqual(len(ids), 2, out)
        for _ in range(3):
            for i in ids:
                self.redis.cli("XCLAIM", key, "mp:workers", "ghost", "0", i)
        self.worker(None, "--offline", "--claim-idle", "500ms", "--max-deliveries", "3")
        got, err = self.finish(bulk)
        rows = got.splitlines()
        self.assertEqual(len(rows), 4, got)
        for line in rows[1:]:
            self.assertTrue(line.endswith(",not_checked"), line)
        self.assertRegex(err, r"too_many_deliveries +3")
        _, taken, _ = self.stop_worker(self.workers[0])
        self.assertEqual(taken, 0, "error rows, not checks")

    def http(self, port, path, body=None):
        """A request from inside the namespace: (status, body)."""
        code = ("import sys, urllib.request as u\n"
                "d = sys.stdin.buffer.read() or None\n"
                "r = u.Request(sys.argv[1], data=d, headers={'Content-Type': 'text/csv'})\n"
                "try:\n"
                "    with u.urlopen(r, timeout=30) as x: s, b = x.status, x.read()\n"
                "except u.HTTPError as e: s, b = e.code, e.read()\n"
                "sys.stdout.buffer.write(b'%d\\n' % s + b)\n")
        p = labkit.nsexec(["/usr/bin/python3", "-c", code,
                           "http://127.0.0.1:%d%s" % (port, path)],
                          input=(body or "").encode(), capture_output=True, timeout=60)
        status, _, rest = p.stdout.partition(b"\n")
        return int(status or 0), rest.decode()

    def test_serve_jobs_go_to_the_pool(self):
        self.write_input(ROWS[:14])  # the quick ones
        want = self.local()
        self.worker(SOURCES[0], "--claim-idle", "2s")
        errf = open(self.path("serve.err"), "w+")
        srv = labkit.nspopen(labkit.mailprobe_argv_prefix() + [
            "serve", "--listen", "127.0.0.1:0", "--store", self.path("serve.sqlite"),
            "--redis", self.redis.url, "--pool", "--rate-limit", "0"] + ENGINE,
            stdout=subprocess.DEVNULL, stderr=errf)
        try:
            port, deadline = None, time.monotonic() + 60
            while not port and time.monotonic() < deadline and srv.poll() is None:
                errf.seek(0)
                m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", errf.read())
                port = m and int(m.group(1))
                time.sleep(0.1)
            self.assertTrue(port, "serve did not start")
            with open(self.path("in.csv")) as f:
                code, body = self.http(port, "/v1/jobs", f.read())
            self.assertEqual(code, 202, body)
            id = json.loads(body)["id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                j = json.loads(self.http(port, "/v1/jobs/" + id)[1])
                if j["state"] in ("done", "failed"):
                    break
                time.sleep(0.2)
            self.assertEqual(j["state"], "done", j)
            code, got = self.http(port, "/v1/jobs/%s/results" % id)
            self.assertSameOutput(got.replace("\r\n", "\n"), want)
            _, _, log = self.stop_worker(self.workers[0])
            self.assertRegex(log, r"worker stopped: [1-9]\d* batches")
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait(timeout=60)
            errf.seek(0)
            err = errf.read()
            errf.close()
        labkit.assert_clean_stderr(err)
        self.assertEqual(srv.returncode, 0, err)
        self.assertEqual(self.redis.cli("KEYS", "mp:job:*").strip(), "")

    def test_redis_unreachable(self):
        self.write_input(["alice@postfix.test"])
        self.redis.stop()
        for extra in ((), ("--offline",)):  # the engine's check, or the pool's own
            p = labkit.nsexec(self.bulk_argv("pool.sqlite", "pool.csv", "--redis",
                                             self.redis.url, "--pool", *extra),
                              capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 5, p.stderr)
            lines = [l for l in p.stderr.splitlines() if "doctor" not in l]
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn("Connection refused", lines[0])
        self.assertFalse(os.path.exists(self.path("pool.csv")))
        jobs = labkit.nsexec(labkit.mailprobe_argv_prefix() + [
            "jobs", "--store", self.path("pool.sqlite")], capture_output=True, text=True)
        self.assertEqual(len(jobs.stdout.splitlines()), 1, jobs.stdout)  # the header only
        w = labkit.nsexec(labkit.mailprobe_argv_prefix() + [
            "worker", "--redis", self.redis.url, "--offline"], capture_output=True, text=True,
            timeout=60)
        self.assertEqual(w.returncode, 5, w.stderr)
        self.assertIn("Connection refused", w.stderr)


if __name__ == "__main__":
    labkit.main()
