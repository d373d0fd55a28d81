#!/usr/bin/python3
"""The systemd unit of `mailprobe serve` without systemd as PID 1: `systemd-analyze
verify` accepts it (ExecStart pointed at this build, the man pages it cites on a
MANPATH), its hardening scores well in `systemd-analyze security --offline`, and every
system call serve makes while it starts, answers /healthz, /metrics, /, a check and a
job, and stops on SIGTERM is allowed by its SystemCallFilter= (the filter's groups
expanded by systemd-analyze, the calls seen by strace).
MAILPROBE is the binary, MP_BUILD_DIR the build tree."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

BIN = os.path.abspath(os.environ.get("MAILPROBE", "build/mailprobe"))
BUILD = os.path.abspath(os.environ.get("MP_BUILD_DIR", "build"))
UNIT = os.path.join(BUILD, "mailprobe.service")


def unit_value(key):
    vals = re.findall(r"(?m)^%s=(.*)$" % key, open(UNIT).read())
    return vals


def expand(group, seen=None):
    """System calls of a @group, nested groups expanded."""
    seen = seen if seen is not None else set()
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True,
                         text=True, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        w = line.strip()
        if not w or w.startswith("#"):
            continue
        if w.startswith("@"):
            if w not in seen:
                seen.add(w)
                calls |= expand(w, seen)
        else:
            calls.add(w)
    return calls


class Unit(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def test_verify(self):
        d = self.dir.name
        text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + BIN, open(UNIT).read())
        with open(os.path.join(d, "mailprobe.service"), "w") as f:
            f.write(text)
        for sect in ("1", "5"):
            os.makedirs(os.path.join(d, "man", "man" + sect))
        for page in os.listdir(os.path.join(BUILD, "man")):
            if re.search(r"\.[15]$", page):
                shutil.copy(os.path.join(BUILD, "man", page),
                            os.path.join(d, "man", "man" + page[-1], page))
        env = dict(os.environ, MANPATH=os.path.join(d, "man"))
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(d, "mailprobe.service")],
                           capture_output=True, text=True, env=env)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                            os.path.join(d, "mailprobe.service")], capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stdout[-500:])
        self.assertRegex(p.stdout, r"Overall exposure level for mailprobe.service: [01]\.")

    def test_required_settings(self):
        for key, want in (("Type", "notify"), ("DynamicUser", "yes"),
                          ("StateDirectory", "mailprobe"), ("ProtectSystem", "strict"),
                          ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                          ("SystemCallFilter", "@system-service")):
            self.assertIn(want, unit_value(key), key)

    def test_serve_stays_inside_the_syscall_filter(self):
        allowed = set()
        for f in unit_value("SystemCallFilter"):
            self.assertFalse(f.startswith("~"), "only allow lists are expanded here")
            for g in f.split():
                allowed |= expand(g) if g.startswith("@") else {g}
        self.assertIn("epoll_wait", allowed)
        d = self.dir.name
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        trace = os.path.join(d, "trace")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILPROBE_")}
        env.update(HOME=d, STATE_DIRECTORY=d)
        # LeakSanitizer cannot run under ptrace (sanitizer builds); nothing else changes
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                     "detect_leaks=0"]))
        p = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, BIN, "serve", "--listen",
                              "127.0.0.1:%d" % port, "--allow-private-mx", "--port", "1"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = "http://127.0.0.1:%d" % port
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.1)
            urllib.request.urlopen(base + "/v1/check?email=a%40%5B127.0.0.1%5D&timeout=20",
                                   timeout=30).read()
            req = urllib.request.Request(base + "/v1/jobs", data=b"email\nb@[127.0.0.1]\n",
                                         headers={"Content-Type": "text/csv"})
            job = urllib.request.urlopen(req, timeout=30).read()
            jid = re.search(rb'"id":"([^"]+)"', job).group(1).decode()
            for _ in range(300):
                st = urllib.request.urlopen(base + "/v1/jobs/" + jid, timeout=30).read()
                if b'"state":"done"' in st:
                    break
                time.sleep(0.1)
            self.assertIn(b'"state":"done"', st)
            urllib.request.urlopen(base + "/v1/jobs/" + jid + "/results", timeout=30).read()
            urllib.request.urlopen(base + "/metrics", timeout=30).read()
            urllib.request.urlopen(base + "/", timeout=30).read()
            # SIGTERM to mailprobe itself (strace's child), as systemd sends it
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                child = int(f.read().split()[0])
            os.kill(child, signal.SIGTERM)
            self.assertEqual(p.wait(timeout=60), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
        used = set()
        with open(trace) as f:
            for line in f:
                m = re.match(r"^\d+ +([a-z0-9_]+)\(", line)
                if m:
                    used.add(m.group(1))
        self.assertIn("accept4", used)
        self.assertEqual(used - allowed, set(), "calls outside SystemCallFilter=")


if __name__ == "__main__":
    unittest.main(verbosity=2)
