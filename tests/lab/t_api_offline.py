#!/usr/bin/python3
"""`mailprobe serve` on its own: what needs no mail server of the lab (`--offline`, or
nothing checked at all): large uploads counted and run a slice per loop turn with other
requests answered between slices, a webhook POST in flight when its job is deleted or
the server stops, a full disk, descriptors running out, slow clients, tokens and rate
limits. Split from t_api.py so that it takes none of the lab's log locks and runs beside
the scenarios that count the lab servers' sessions (tests/lab/CMakeLists.txt).

The test re-runs itself inside the lab's network namespace, like t_api.py."""
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402
from t_api import SLOW, Server, request, wait_done  # noqa: E402


class BigUpload(labkit.LabCase):
    def test_large_upload_counted_in_the_background(self):
        """Past 1 MiB the rows are counted after the answer, a slice per loop turn."""
        d = tempfile.mkdtemp(prefix="mp-api-big-")
        srv = Server(os.path.join(d, "s.sqlite"), "--offline", "--rate-limit", "0")
        try:
            n = 40000
            body = "email,n\n" + "".join("user%d@example-%d.test,%d\n" % (i, i % 97, i)
                                           for i in range(n))
            self.assertGreater(len(body), 1 << 20)
            r = request(srv.url("/v1/jobs"), "POST", body, {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            self.assertIsNone(r.json()["rows_total"])
            id = r.json()["id"]
            j = wait_done(srv, id, SLOW * 4)
            self.assertEqual(j["state"], "done", j)
            self.assertEqual(j["rows_total"], n)
            self.assertEqual(j["rows_done"], n)
            rows = request(srv.url("/v1/jobs/%s/results" % id)).body.decode().splitlines()
            self.assertEqual(len(rows), n + 1)
            self.assertTrue(rows[-1].startswith("user%d@" % (n - 1)))
        finally:
            self.assertEqual(srv.stop(), 0)


class WebhookInFlight(labkit.LabCase):
    def test_delete_and_stop_while_the_post_waits(self):
        """A job deleted while its webhook's POST waits for the receiver's answer, then a
        server stopped while another one waits: the POST is dropped with its connection
        (never answered into freed memory), the server goes on, then exits 0 with nothing
        leaked (the valgrind and AddressSanitizer passes check)."""
        d = tempfile.mkdtemp(prefix="mp-api-hookwait-")
        srv = Server(os.path.join(d, "s.sqlite"), "--offline", "--rate-limit", "0",
                     "--allow-private-webhooks")
        got, release = threading.Event(), threading.Event()

        class Hold(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.set()
                release.wait(SLOW)
                try:
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hold)
        threading.Thread(target=hooks.serve_forever, daemon=True).start()
        hook = urllib.request.quote("http://127.0.0.1:%d/h" % hooks.server_address[1],
                                    safe="")
        rc = None
        try:
            r = request(srv.url("/v1/jobs?webhook=" + hook), "POST", "email\na@b.test\n",
                        {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            self.assertTrue(got.wait(SLOW), srv.stderr())
            r = request(srv.url("/v1/jobs/" + id), "DELETE")
            self.assertEqual(r.json(), {"deleted": id})
            release.set()  # its answer now reaches a connection that is gone
            time.sleep(1)
            self.assertEqual(request(srv.url("/healthz")).code, 200)
            got.clear()
            release.clear()
            r = request(srv.url("/v1/jobs?webhook=" + hook), "POST", "email\nb@b.test\n",
                        {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            self.assertTrue(got.wait(SLOW), srv.stderr())
            rc = srv.stop()  # with the POST unanswered
        finally:
            if rc is None:
                srv.stop()
            release.set()
            hooks.shutdown()
            hooks.server_close()
            shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(rc, 0, srv.stderr())


class Disk(labkit.LabCase):
    def test_no_room_is_a_507_and_delete_gives_space_back(self):
        d = tempfile.mkdtemp(prefix="mp-api-disk-")
        small = os.path.join(d, "small")
        os.mkdir(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small], check=True)
        srv = None
        try:
            srv = Server(os.path.join(small, "s.sqlite"), "--offline", "--rate-limit", "0")
            big = "email\n" + "".join("user%d@example.test\n" % i for i in range(12000))
            r = request(srv.url("/v1/jobs"), "POST", big, {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 507, r.body)
            self.assertEqual(r.json()["error"], "insufficient_storage")
            self.assertIn("not enough room", r.json()["message"])
            self.assertNotIn(small, r.json()["message"])
            self.assertEqual(os.listdir(os.path.join(small, "s.sqlite.d")), [])
            # a job that fits is taken, and its DELETE gives the space back
            some = "email\n" + "".join("user%d@example.test\n" % i for i in range(2500))
            r = request(srv.url("/v1/jobs"), "POST", some, {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            deadline = time.monotonic() + SLOW * 2
            while time.monotonic() < deadline:
                if request(srv.url("/v1/jobs/" + id)).json()["state"] == "done":
                    break
                time.sleep(0.2)
            self.assertEqual(request(srv.url("/v1/jobs/%s/results" % id)).code, 200)

            def used():
                st = os.statvfs(small)
                return (st.f_blocks - st.f_bfree) * st.f_frsize
            full = used()
            r = request(srv.url("/v1/jobs/" + id), "DELETE")
            self.assertEqual(r.code, 200, r.body)
            self.assertLess(used(), full // 2, (full, used()))
        finally:
            if srv:
                self.assertEqual(srv.stop(), 0)
            subprocess.run(["umount", small], check=True)

class Yield(labkit.LabCase):
    def test_other_requests_served_between_slices(self):
        """Counting a large upload, running its job and writing its results go a slice per
        loop turn: a client polling /metrics meanwhile must see each task's slice counter
        between its start and its end, i.e. be answered between two slices. (libevent runs
        an event activated from its own callback again in the same turn: a task that
        re-activated itself ran to its end before any socket was read.)"""
        import http.client
        d = tempfile.mkdtemp(prefix="mp-api-yield-")
        srv = Server(os.path.join(d, "s.sqlite"), "--offline", "--rate-limit", "0")
        seen = {"count": [], "results": [], "job": []}
        stop = threading.Event()

        def poll():
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            while not stop.is_set():
                c.request("GET", "/metrics")
                text = c.getresponse().read().decode()
                for task in seen:
                    m = re.search(r'mailprobe_background_slices_total\{task="%s"\} (\d+)'
                                  % task, text)
                    seen[task].append(int(m.group(1)))
            c.close()
        try:
            n = 100000 if os.environ.get("MAILPROBE_WRAPPER") else 200000  # valgrind is slow
            body = "email\n" + "".join("u%d@example-%d.test\n" % (i, i % 89)
                                        for i in range(n))
            t = threading.Thread(target=poll)
            t.start()
            r = request(srv.url("/v1/jobs"), "POST", body, {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            j = wait_done(srv, id, SLOW * 10)
            self.assertEqual(j["state"], "done", j)
            self.assertEqual(j["rows_total"], n)
            rows = request(srv.url("/v1/jobs/%s/results" % id), timeout=SLOW * 4).body
            self.assertEqual(rows.count(b"\n"), n + 1)
            stop.set()
            t.join(SLOW)
            for task, values in seen.items():
                last = values[-1]
                self.assertGreater(last, 3, (task, values[-5:]))
                between = [v for v in values if 0 < v < last]
                self.assertTrue(between, "%s: no answer between its slices (%d polls, "
                                "last %d)" % (task, len(values), last))
        finally:
            stop.set()
            self.assertEqual(srv.stop(), 0)


class Descriptors(labkit.LabCase):
    def test_out_of_descriptors_pauses_accepting(self):
        """With every descriptor taken, accept() fails: the server must not spin on it (nor
        log each failure), and must serve again once clients go."""
        if os.environ.get("MAILPROBE_WRAPPER"):
            return  # valgrind keeps descriptors of its own; the plain pass runs this
        import resource
        d = tempfile.mkdtemp(prefix="mp-api-fd-")

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        err = tempfile.TemporaryFile(mode="w+")
        # connection limit and per-client cap above the descriptors: accept() runs out
        proc = subprocess.Popen([labkit.mailprobe_path(), "serve", "--listen", "127.0.0.1:0",
                                 "--store", os.path.join(d, "s.sqlite"), "--offline",
                                 "--max-connections", "1000", "--max-per-client", "1000"],
                                stderr=err, preexec_fn=limit, text=True)
        try:
            port = None
            for _ in range(100):
                err.seek(0)
                m = re.search(r":(\d+)/", err.read())
                if m:
                    port = int(m.group(1))
                    break
                time.sleep(0.1)
            self.assertTrue(port)
            import socket
            socks, answered = [], 0
            for _ in range(150):
                s = socket.socket()
                s.settimeout(0.2)
                try:
                    s.connect(("127.0.0.1", port))
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if s.recv(100):
                        answered += 1
                except OSError:
                    pass
                socks.append(s)
            self.assertGreater(answered, 10)
            self.assertLess(answered, 64)  # the limit was reached
            time.sleep(2)
            with open("/proc/%d/stat" % proc.pid) as f:
                st = f.read().split()
            cpu = (int(st[13]) + int(st[14])) / os.sysconf("SC_CLK_TCK")
            self.assertLess(cpu, 1.0, "the server spun on accept()")
            for s in socks:
                s.close()
            time.sleep(0.5)
            self.assertEqual(request("http://127.0.0.1:%d/healthz" % port).code, 200)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            err.seek(0)
            text = err.read()
            err.close()
        warnings = [l for l in text.splitlines() if "Too many open files" in l]
        self.assertEqual(len(warnings), 1, text[-2000:])
        self.assertEqual(proc.returncode, 0, text[-2000:])


class Slowloris(labkit.LabCase):
    """Slow clients cannot hold the server: a request's head must arrive whole within
    --request-timeout however often a byte comes, one address holds at most
    --max-per-client connections, and at the connection limit a new caller still gets in."""

    def start(self, d, *extra):
        import resource

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            labkit.mailprobe_argv_prefix() + [
                "serve", "--listen", "127.0.0.1:0", "--store", os.path.join(d, "s.sqlite"),
                "--offline", "--rate-limit", "0"] + list(extra),
            stderr=self.err, preexec_fn=limit, text=True)
        for _ in range(SLOW * 10):
            self.err.seek(0)
            m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", self.err.read())
            if m:
                return int(m.group(1))
            time.sleep(0.1)
        self.fail("serve did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=SLOW)
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        labkit.assert_clean_stderr(text)
        self.assertEqual(self.proc.returncode, 0, text[-2000:])

    @staticmethod
    def slow(port, src):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        return s

    @staticmethod
    def answer(s):
        """What the server sent before closing (b"" when it closed without a word)."""
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        return data

    def test_deadline_and_cap_per_client(self):
        if os.environ.get("MAILPROBE_WRAPPER"):
            return  # valgrind keeps descriptors of its own; the plain pass runs this
        d = tempfile.mkdtemp(prefix="mp-api-slow-")
        port = self.start(d, "--request-timeout", "3s", "--max-per-client", "4")
        try:
            held = [self.slow(port, "127.0.5.1") for _ in range(4)]
            extra = self.slow(port, "127.0.5.1")
            got = self.answer(extra)
            self.assertTrue(got.startswith(b"HTTP/1.1 503"), got)
            self.assertIn(b'"too_many_connections"', got)
            extra.close()
            # another address is not held back by the first one's connections
            ok = request("http://127.0.0.1:%d/healthz" % port)
            self.assertEqual(ok.code, 200)
            # a header line every half second never completes the head: closed by the
            # deadline, with a 408, long before the idle timeout (120 s) would
            closed = set()
            for _ in range(60):  # 30 s at most
                for i, s in enumerate(held):
                    if i in closed:
                        continue
                    try:
                        s.sendall(b"X-Slow: %d\r\n" % i)
                    except OSError:
                        closed.add(i)
                if len(closed) == len(held):
                    break
                time.sleep(0.5)
            for s in held:
                s.settimeout(5)
                got = self.answer(s)
                self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
                self.assertIn(b'"request_timeout"', got)
                s.close()
        finally:
            self.stop()

    def test_new_callers_served_at_the_limit(self):
        if os.environ.get("MAILPROBE_WRAPPER"):
            return  # valgrind keeps descriptors of its own; the plain pass runs this
        d = tempfile.mkdtemp(prefix="mp-api-slow-")
        port = self.start(d, "--request-timeout", "60s", "--max-per-client", "2")
        try:
            # 60 slow clients on 30 addresses: more than the 48 connections that 64
            # descriptors allow
            held = [self.slow(port, "127.0.6.%d" % (1 + i // 2)) for i in range(60)]
            for i in range(20):
                r = request("http://127.0.0.1:%d/healthz" % port, timeout=30)
                self.assertEqual(r.code, 200)
            text = request("http://127.0.0.1:%d/metrics" % port).body.decode()
            self.assertRegex(text, r'mailprobe_http_responses_total\{code="503"\} [1-9]')
            with open("/proc/%d/stat" % self.proc.pid) as f:
                st = f.read().split()
            cpu = (int(st[13]) + int(st[14])) / os.sysconf("SC_CLK_TCK")
            self.assertLess(cpu, 2.0, "the server spun")
            for s in held:
                s.close()
        finally:
            self.stop()


class Auth(labkit.LabCase):
    def test_tokens_and_rate_limit(self):
        d = tempfile.mkdtemp(prefix="mp-api-auth-")
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("# API tokens\n0123456789abcdef0123\n\nsecond-token-for-ci-xyz\n")
        srv = Server(os.path.join(d, "s.sqlite"), "--tokens", tokens, "--rate-limit", "1",
                     "--offline")
        try:
            self.assertNotIn("no authentication", srv.stderr())
            r = request(srv.url("/v1/check?email=a@b.test"))
            self.assertEqual(r.code, 401)
            self.assertEqual(json.loads(r.body)["error"], "unauthorized")
            self.assertIn("Bearer", r.headers.get("WWW-Authenticate"))
            bad = {"Authorization": "Bearer 0123456789abcdef012"}
            self.assertEqual(request(srv.url("/v1/check?email=a@b.test"), headers=bad).code,
                             401)
            self.assertEqual(request(srv.url("/metrics")).code, 401)
            good = {"Authorization": "Bearer second-token-for-ci-xyz"}
            codes = [request(srv.url("/v1/check?email=a@b.test"), headers=good).code
                     for _ in range(8)]
            self.assertEqual(codes[:3], [200, 200, 200])  # burst: 2 x rate + 1
            self.assertIn(429, codes)
            r = request(srv.url("/v1/check?email=a@b.test"), headers=good)
            if r.code == 429:
                self.assertEqual(json.loads(r.body)["error"], "rate_limited")
                self.assertGreaterEqual(int(r.headers.get("Retry-After")), 1)
            # the other token has its own budget; pages and health need no token
            other = {"Authorization": "Bearer 0123456789abcdef0123"}
            self.assertEqual(request(srv.url("/v1/check?email=a@b.test"), headers=other).code,
                             200)
            self.assertEqual(request(srv.url("/healthz")).code, 200)
            self.assertEqual(request(srv.url("/v1/openapi.json")).code, 200)
            self.assertEqual(request(srv.url("/metrics"), headers=other).code, 200)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_refuses_to_listen_openly_without_tokens(self):
        never = os.path.join(tempfile.mkdtemp(prefix="mp-api-never-"), "s.sqlite")
        p = subprocess.run(labkit.mailprobe_argv_prefix() + [
            "serve", "--listen", "0.0.0.0:0", "--store", never],
            capture_output=True, text=True, timeout=SLOW)
        self.assertEqual(p.returncode, 2)
        self.assertIn("loopback", p.stderr)
        self.assertFalse(os.path.exists(never))  # refused before anything was created
        for bad in (["--listen", "nope"], ["--tokens", "/nonexistent/tokens"],
                    ["--rate-limit", "-1"], ["--max-body", "12"], ["--wait", "1h"]):
            p = subprocess.run(labkit.mailprobe_argv_prefix() + [
                "serve", "--store", never] + bad,
                capture_output=True, text=True, timeout=SLOW)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)



if __name__ == "__main__":
    if os.environ.get("MP_IN_NETNS") != labkit.NS:
        # run inside the lab's namespace: the server's loopback is the namespace's
        os.environ["MP_IN_NETNS"] = labkit.NS
        os.execvp("ip", ["ip", "netns", "exec", labkit.NS, sys.executable] + sys.argv)
    unittest.main(verbosity=2)
