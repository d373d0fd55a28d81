#!/usr/bin/python3
"""The fleet (--redis, src/sched/lease.c over src/fleet/fleet.c): several mailprobe
processes on one Redis keep one politeness budget as the server sees it, and share the
catch-all facts.

A redis-server started here inside the namespace (127.0.0.1:6391, no persistence; killed
by pid). Postfix's `capped` listener (127.0.1.40, six fleet-*.test domains) lets one
client address hold 3 connections at once (anvil: smtpd_client_connection_count_limit)
and says "421 4.7.0 Error: too many connections" to a 4th.

- Three `bulk` processes at once, each with --per-server 2 and its own two domains: the
  sessions Postfix saw open at once (from its connect/disconnect lines) never pass 2, the
  limit summed over the processes, and Postfix refused none (without --redis the three
  reach 4 at once and anvil refuses connections: docs/internals/fleet.md).
- Each domain's catch-all probe (a random local part Postfix refuses and logs) was sent
  once; a later process checking the same domains sends none (the fact came from Redis,
  read with the MX answer: one read per domain)
  and asks unbound nothing about them (the MX answers came from Redis), where the same
  process without --redis asks.
- Redis killed (SIGKILL) while two processes run and started again: they finish with
  every row right."""
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

REDIS_PORT = 6391
REDIS_URL = "redis://127.0.0.1:%d/3" % REDIS_PORT
ENGINE = ["--dns", labkit.DNS, "--allow-private-mx", "--helo", labkit.HELO,
          "--from", labkit.FROM, "--no-progress"]
CONNECT = re.compile(r"postfix/capped/smtpd\[(\d+)\]: connect from ")
REJECT_TO = re.compile(r"postfix/capped/smtpd\[\d+\]: \w+: reject: RCPT .* to=<([^>]+)>")
REPLY_421 = re.compile(r"\b421 4\.\d{1,3}\.\d{1,3}\b")  # not a pid or queue id
USERS = {"alice": "accepted", "bob": "accepted", "nobody": "mailbox_absent"}


def max_open(text):
    """The most capped sessions open at once, in the order Postfix logged them."""
    return labkit.postfix_max_open(text, "capped")


def probes(text):
    """Probe recipients Postfix refused, by domain."""
    out = {}
    for m in REJECT_TO.finditer(text):
        if labkit.is_probe_address(m.group(1)):
            d = m.group(1).rpartition("@")[2]
            out[d] = out.get(d, 0) + 1
    return out


class Redis:
    def __init__(self):
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="mp-fleet-redis-")

    def start(self):
        self.proc = labkit.nspopen(
            ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            p = labkit.nsexec(["redis-cli", "-p", str(REDIS_PORT), "ping"],
                              capture_output=True, text=True)
            if p.stdout.strip() == "PONG":
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise labkit.LabError("redis-server did not start on port %d" % REDIS_PORT)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, True)

    def cli(self, *args):
        p = labkit.nsexec(["redis-cli", "-p", str(REDIS_PORT)] + list(args),
                          capture_output=True, text=True)
        if p.returncode != 0:
            raise labkit.LabError("redis-cli %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def calls(self):
        """Commands run since the last CONFIG RESETSTAT, by name (a script's own calls
        count too: 'time' is called once by each lease script, the fact reads not)."""
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r"cmdstat_(\w+):calls=(\d+)", self.cli("info", "commandstats"))}


class Fleet(labkit.LabCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = Redis()
        cls.redis.start()

    @classmethod
    def tearDownClass(cls):
        cls.redis.cleanup()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mp-fleet-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def bulk_start(self, name, addrs, *extra):
        src = os.path.join(self.dir, name + ".txt")
        with open(src, "w") as f:
            f.write("email\n" + "".join(a + "\n" for a in addrs))
        argv = labkit.mailprobe_argv_prefix() + [
            "bulk", "--store", os.path.join(self.dir, name + ".sqlite"), src,
            "-o", os.path.join(self.dir, name + ".csv")] + ENGINE + list(extra)
        return labkit.nspopen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, errors="replace")

    def bulk_wait(self, name, proc, addrs):
        out, err = proc.communicate(timeout=300)
        labkit.assert_clean_stderr(err)
        self.assertEqual(proc.returncode, 0, err)
        with open(os.path.join(self.dir, name + ".csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["email"] for r in rows], addrs)
        for r in rows:
            self.assertEqual(r["reason"], USERS[r["email"].split("@")[0]], (r, err))
        return err

    def run_three(self, extra, domains_per):
        mark = labkit.postfix_mark()
        procs = []
        for i, doms in enumerate(domains_per):
            addrs = ["%s@%s" % (u, d) for d in doms for u in USERS]
            name = "p%d-%d" % (i, time.monotonic_ns())
            procs.append((name, self.bulk_start(name, addrs, *extra), addrs))
        errs = []
        for name, proc, addrs in procs:
            out, err = proc.communicate(timeout=300)
            labkit.assert_clean_stderr(err)
            errs.append((proc.returncode, err, name, addrs))
        return mark.new_text(settle=0.5), errs

    def test_1_limit_summed_over_processes_and_facts_shared(self):
        domains = [["fleet-a.test", "fleet-b.test"], ["fleet-c.test", "fleet-d.test"],
                   ["fleet-e.test", "fleet-f.test"]]
        text, errs = self.run_three(["--per-server", "2", "--redis", REDIS_URL], domains)
        for rc, err, name, addrs in errs:
            self.assertEqual(rc, 0, err)
        self.assertNotIn("too many connections", text)
        self.assertNotIn("concurrency limit exceeded", text)
        self.assertEqual([l for l in text.splitlines()
                          if "capped" in l and REPLY_421.search(l)], [])
        most = max_open(text)
        self.assertLessEqual(most, 2, text)
        self.assertGreaterEqual(most, 1, text)
        # no domain probed: nobody@ is refused as unknown, so each domain tells addresses
        # apart without a probe (issue 11), and that fact goes to Redis like a probe's
        seen = probes(text)
        self.assertEqual(seen, {}, text)
        # a later process: the facts come from Redis, no probe at all, and the MX answers
        # too: it asks the DNS nothing about those domains
        mark = labkit.postfix_mark()
        dns_mark = labkit.unbound_mark()
        addrs = ["alice@fleet-a.test", "nobody@fleet-d.test", "bob@fleet-f.test"]
        name = "again"
        self.redis.cli("config", "resetstat")
        err = self.bulk_wait(name, self.bulk_start(name, addrs, "--per-server", "2",
                                                   "--redis", REDIS_URL), addrs)
        self.assertEqual(probes(mark.new_text(settle=0.5)), {}, err)
        asked = [q for q in labkit.unbound_queries(dns_mark) if "fleet-" in q[0]]
        self.assertEqual(asked, [], err)
        # one read brought the three domains' MX answers and catch-all facts together
        # (the reads of one loop turn go as one request): the scripts run (EVALSHA) less
        # the lease scripts (one TIME each) are 1, not 3 (a read per domain) or 6; its
        # six keys are six GETs
        calls = self.redis.calls()
        self.assertEqual(calls.get("evalsha", 0) - calls.get("time", 0), 1, calls)
        self.assertEqual(calls.get("get", 0), 6, calls)
        # the check is real: without --redis the same process asks
        dns_mark = labkit.unbound_mark()
        name = "again-alone"
        self.bulk_wait(name, self.bulk_start(name, addrs, "--no-catch-all-probe"), addrs)
        asked = [q for q in labkit.unbound_queries(dns_mark) if "fleet-" in q[0]]
        self.assertIn(("fleet-a.test", "MX"), asked)

    def test_3_redis_restarted_mid_run(self):
        # one RCPT per session and one session per batch, a second between two sessions
        # to the server over the fleet: long enough a run to restart Redis in it
        extra = ["--redis", REDIS_URL, "--rcpt-per-session", "1", "--session-reuse-count",
                 "1", "--min-interval", "1s", "--no-catch-all-probe"]
        mark = labkit.postfix_mark()
        runs = []
        for i, doms in enumerate([["fleet-a.test", "fleet-b.test"],
                                  ["fleet-c.test", "fleet-d.test"]]):
            addrs = ["%s@%s" % (u, d) for d in doms for u in USERS]
            name = "r%d" % i
            runs.append((name, self.bulk_start(name, addrs, *extra), addrs))
        # wait for the first session, then kill Redis and start it again
        for _ in range(600):
            if CONNECT.search(mark.new_text(settle=0)):
                break
            time.sleep(0.05)
        else:
            self.fail("no session started")
        # and both processes past their start (each one's fleet subscribed to its
        # wake-ups): one still starting when Redis goes would rightly stop with exit 5
        for _ in range(1200):
            if self.redis.cli("client", "list").count(" sub=1 ") >= 2:
                break
            time.sleep(0.05)
        else:
            self.fail("the two runs did not both start:\n" + self.redis.cli("client", "list"))
        self.redis.kill()
        time.sleep(1.5)
        self.redis.start()
        for name, proc, addrs in runs:
            if proc.poll() is not None and proc.returncode != 0:
                self.fail("%s exited %s:\n%s" % (name, proc.returncode, proc.communicate()[1]))
            self.bulk_wait(name, proc, addrs)
        text = mark.new_text(settle=0.5)
        self.assertNotIn("concurrency limit exceeded", text)
        self.assertLessEqual(max_open(text), 2, text)


if __name__ == "__main__":
    labkit.main()
