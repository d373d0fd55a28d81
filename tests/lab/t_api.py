#!/usr/bin/python3
"""`mailprobe serve` against the lab: every endpoint and every error code of the HTTP API,
the wait that runs out while the check goes on, identical checks made once, jobs (CSV and
JSON, results filtered, deleted), a webhook receiver (retried after a 500), a restart in
the middle of a job, /healthz, /metrics, the OpenAPI file. What checks nothing against
the lab's servers (big uploads, descriptors, slow clients, tokens) is in t_api_offline.py,
which takes none of the lab's log locks.

The test re-runs itself inside the lab's network namespace: the server listens on the
namespace's loopback, and this process is its HTTP client."""
import csv
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

ENGINE = ["--dns", labkit.DNS, "--allow-private-mx", "--helo", labkit.HELO,
          "--from", labkit.FROM]
SLOW = 120 if os.environ.get("MAILPROBE_WRAPPER") else 30  # valgrind starts slowly


class Server:
    """One `mailprobe serve` process on a free port of the namespace's loopback."""

    def __init__(self, store, *extra):
        self.store = store
        argv = labkit.mailprobe_argv_prefix() + [
            "serve", "--listen", "127.0.0.1:0", "--store", store] + ENGINE + list(extra)
        self.errf = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.errf,
                                     text=True)
        deadline = time.monotonic() + SLOW
        self.port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.1)
        if not self.port:
            self.stop()
            raise labkit.LabError("serve did not start:\n" + self.stderr())

    def stderr(self):
        if self.errf.closed:
            return self.err_text
        self.errf.seek(0)
        return self.errf.read()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.err_text = self.stderr()
        self.errf.close()
        labkit.assert_clean_stderr(err)
        if os.environ.get("MAILPROBE_WRAPPER") and self.proc.returncode == 99:
            raise labkit.LabError("the wrapper reported errors:\n" + err[-8000:])
        return self.proc.returncode


class Reply:
    def __init__(self, code, headers, body):
        self.code, self.headers, self.body = code, headers, body

    def json(self):
        return json.loads(self.body)


def request(url, method="GET", body=None, headers=None, timeout=60):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read())


def wait_done(srv, id, secs):
    """A job's status once it is done, or the last one seen when secs ran out."""
    deadline = time.monotonic() + secs
    while True:
        j = json.loads(request(srv.url("/v1/jobs/" + id)).body)
        if j["state"] == "done" or time.monotonic() >= deadline:
            return j
        time.sleep(0.3)


class Hooks(http.server.BaseHTTPRequestHandler):
    """Webhook receiver: records every call; answers 500 to the first `fail_first`."""
    calls = []
    fail_first = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hooks.calls.append((self.path, self.headers.get("Content-Type"), body))
        code = 500 if len(Hooks.calls) <= Hooks.fail_first else 204
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class Api(labkit.LabCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="mp-api-")
        cls.srv = Server(os.path.join(cls.dir, "store.sqlite"), "--timeout", "3",
                         "--max-body", "64K", "--rate-limit", "0",
                         "--allow-private-webhooks")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, "serve exited %s:\n%s" % (rc, cls.srv.stderr())

    def get(self, path, **kw):
        return request(self.srv.url(path), **kw)

    def post(self, path, body, ctype="application/json", **kw):
        return request(self.srv.url(path), "POST", body, {"Content-Type": ctype}, **kw)

    def assertError(self, r, code, error):
        self.assertEqual(r.code, code, r.body)
        self.assertEqual(r.headers.get("Content-Type"), "application/json")
        j = r.json()
        self.assertEqual(j["error"], error, j)
        self.assertTrue(j["message"])

    def wait_job(self, id, states=("done", "failed"), timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.get("/v1/jobs/" + id).json()
            if j["state"] in states:
                return j
            time.sleep(0.2)
        self.fail("job %s never reached %s: %s" % (id, states, j))

    # ---- /v1/check ----------------------------------------------------------------------

    def test_check_get_and_post(self):
        r = self.get("/v1/check?email=alice@postfix.test")
        self.assertEqual(r.code, 200, r.body)
        j = r.json()
        self.assertVerdict(j, "deliverable", "accepted")
        self.assertNotIn("transcript", j)
        self.assertEqual(j["smtp"]["mx_ip"], labkit.PF["mbox"])
        r = self.post("/v1/check", json.dumps({"email": "nobody@postfix.test",
                                               "transcript": True, "timeout": 20}))
        j = r.json()
        self.assertVerdict(j, "undeliverable", "mailbox_absent")
        verbs = labkit.verbs(labkit.client_commands(j))
        self.assertIn("RCPT", verbs)
        self.assertNotIn("DATA", verbs)
        # '+' is a '+' in the query string (user+tag addresses)
        j = self.get("/v1/check?email=alice%2Btag@postfix.test&fresh=1").json()
        self.assertEqual(j["email"], "alice+tag@postfix.test")
        j = self.get("/v1/check?email=alice+tag@postfix.test&fresh=1").json()
        self.assertEqual(j["email"], "alice+tag@postfix.test")

    def test_repeat_answered_from_cache(self):
        mark = labkit.postfix_mark()
        a = self.get("/v1/check?email=repeat1@postfix.test").json()
        b = self.get("/v1/check?email=repeat1@postfix.test").json()
        self.assertVerdict(b, "undeliverable", "mailbox_absent")
        self.assertNotIn("cached", a)
        self.assertTrue(b["cached"])
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 1)
        c = self.get("/v1/check?email=repeat1@postfix.test&fresh=true").json()
        self.assertNotIn("cached", c)
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 2)

    def test_invalid_address_is_an_answer(self):
        r = self.get("/v1/check?email=a..b@postfix.test")
        self.assertEqual(r.code, 200)
        self.assertVerdict(r.json(), "undeliverable", "invalid_syntax")

    def test_wait_runs_out_check_goes_on(self):
        mark = labkit.script_mark()
        t0 = time.monotonic()
        r = self.get("/v1/check?email=w1@silent.script.test&timeout=0.5")
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(r.code, 200)
        j = r.json()
        self.assertVerdict(j, "unknown", "timeout")
        self.assertTrue(j["pending"])
        self.assertGreaterEqual(j["retry_after"], 1)
        self.assertEqual(r.headers.get("Retry-After"), str(j["retry_after"]))
        self.assertEqual(j["syntax"]["domain"], "silent.script.test")
        # a second caller joins the same check; the server's 3 s step deadline ends it
        j2 = self.get("/v1/check?email=w1@silent.script.test&timeout=20").json()
        self.assertNotIn("pending", j2)
        self.assertVerdict(j2, "unknown", "timeout")
        self.assertEqual(j2["smtp"]["mx_ip"], labkit.SCRIPT["silent"])
        # the finished result, now from the cache; one SMTP session in all
        j3 = self.get("/v1/check?email=w1@silent.script.test&timeout=0").json()
        self.assertTrue(j3["cached"])
        self.assertNotIn("pending", j3)
        sessions = [e for e in labkit.script_events(mark, labkit.SCRIPT["silent"])
                    if e.get("event") == "connect"]
        self.assertEqual(len(sessions), 1, sessions)

    def test_identical_checks_in_flight_made_once(self):
        mark = labkit.postfix_mark()
        out = []
        ts = [threading.Thread(target=lambda: out.append(
            self.get("/v1/check?email=carol@postfix.test&fresh=1").json())) for _ in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len(out), 5)
        for j in out:
            self.assertVerdict(j, "undeliverable", "mailbox_absent")
        self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 1)

    # ---- errors -------------------------------------------------------------------------

    def test_errors(self):
        self.assertError(self.post("/v1/check", "{\"email\": "), 400, "bad_request")
        self.assertError(self.post("/v1/check", "[1,2]"), 400, "bad_request")
        self.assertError(self.post("/v1/check", "{\"email\": 5}"), 400, "bad_request")
        r = self.get("/v1/check?email=a@b.test&color=red")
        self.assertError(r, 400, "bad_request")
        self.assertIn("color", r.json()["message"])
        self.assertError(self.get("/v1/check"), 400, "bad_request")
        self.assertError(self.get("/v1/check?email=a@b.test&timeout=301"), 400, "bad_request")
        self.assertError(self.get("/v1/check?email=%zz"), 400, "bad_request")
        # a message quoting request bytes that are not UTF-8 is still a JSON 400
        self.assertError(self.get("/v1/check?email=a@x.test&%FF%0A=1"), 400, "bad_request")
        self.assertError(self.post("/v1/check", "{\"email\": \"\"}"), 400, "bad_request")
        self.assertError(self.get("/v1/jobs/nosuchjob"), 404, "not_found")
        self.assertError(self.get("/v1/jobs/../etc"), 404, "not_found")
        self.assertError(self.get("/v1/jobs/nosuchjob/results"), 404, "not_found")
        self.assertError(request(self.srv.url("/v1/jobs/nosuchjob"), "DELETE"), 404,
                         "not_found")
        self.assertError(self.get("/v2/check"), 404, "not_found")
        self.assertError(self.get("/no/such/page"), 404, "not_found")
        r = request(self.srv.url("/v1/check"), "DELETE")
        self.assertError(r, 405, "method_not_allowed")
        self.assertIn("GET", r.headers.get("Allow"))
        # methods evhttp knows but the API does not use: JSON 405, not evhttp's 501 page
        for method in ("PUT", "PATCH", "OPTIONS", "TRACE"):
            for path in ("/v1/check", "/v1/jobs", "/healthz"):
                self.assertError(request(self.srv.url(path), method), 405,
                                 "method_not_allowed")
        # too large: the server's --max-body is 64K
        r = self.post("/v1/jobs", "email\n" + "x@postfix.test\n" * 6000, "text/csv")
        self.assertError(r, 413, "too_large")
        self.assertIn("65536", r.json()["message"])
        # a bad job: no email column, empty, not JSON, an https webhook
        r = self.post("/v1/jobs", "name,city\nA,B\n", "text/csv")
        self.assertError(r, 400, "bad_input")
        # the message speaks of the upload, not of the server's files
        self.assertNotIn(self.dir, r.json()["message"])
        self.assertNotIn("/", r.json()["message"])
        r = self.post("/v1/jobs", "email\n\"a@b.test\n", "text/csv")
        if r.code == 400:
            self.assertNotIn(self.dir, r.json()["message"])
        self.assertError(self.post("/v1/jobs", "", "text/csv"), 400, "bad_request")
        self.assertError(self.post("/v1/jobs", "[1]"), 400, "bad_request")
        self.assertError(self.post("/v1/jobs", "[]"), 400, "bad_request")
        self.assertError(self.post("/v1/jobs?webhook=https://x.test/", "[\"a@b.test\"]"),
                         400, "bad_request")
        self.assertError(self.post("/v1/jobs?colour=x", "email\na@b.test\n", "text/csv"),
                         400, "bad_request")
        # still alive and well
        self.assertEqual(self.get("/healthz").json()["status"], "ok")

    def raw(self, data):
        """Send bytes as they are; the whole answer, up to the server's close."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        try:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        finally:
            s.close()

    def assertRawError(self, data, code, error):
        """The last answer on the connection is a JSON error (evhttp's own page before)."""
        out = self.raw(data)
        at = [m.start() for m in re.finditer(rb"HTTP/1\.[01] \d{3} ", out)][-1]
        head, _, body = out[at:].partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.assertEqual(int(lines[0].split()[1]), code, out)
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        self.assertEqual(headers.get("content-type"), "application/json", out)
        self.assertEqual(headers.get("connection"), "close", out)
        self.assertEqual(int(headers["content-length"]), len(body), out)
        j = json.loads(body)
        self.assertEqual(j["error"], error, j)
        self.assertTrue(j["message"])
        self.assertNotIn(b"<HTML>", out)
        return out

    def test_errors_evhttp_answers_itself_are_json(self):
        """What libevent's evhttp refuses before the server's handler sees it (a request
        it cannot parse, a head or a body over its limit, an unknown method or Expect)
        is answered in JSON too, not with evhttp's HTML page."""
        ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        cases = [
            ("malformed request line", b"GARBAGE\r\n\r\n", 400, "bad_request"),
            ("request line, no version", b"GET /healthz\r\n\r\n", 400, "bad_request"),
            ("malformed header", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400,
             "bad_request"),
            ("malformed header, HTTP/1.0", b"GET /healthz HTTP/1.0\r\nbad\r\n\r\n", 400,
             "bad_request"),
            ("unsupported version", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 400,
             "bad_request"),
            ("head over 16 KiB",
             b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400,
             "bad_request"),
            ("HEAD, head over 16 KiB",
             b"HEAD /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400,
             "bad_request"),
            ("bad Content-Length",
             b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n", 400,
             "bad_request"),
            ("body over --max-body",
             b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413,
             "too_large"),
            # evhttp leaves its page's body out here: the head alone is rewritten
            ("body over --max-body, Expect: 100-continue",
             b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             b"Content-Length: 100000\r\n\r\n", 413, "too_large"),
            ("chunked body over --max-body",
             b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"20000\r\n" + b"a" * 0x20000 + b"\r\n0\r\n\r\n", 413, "too_large"),
            ("unknown Expect",
             b"POST /v1/check HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n"
             b"Content-Length: 2\r\n\r\n{}", 417, "expectation_failed"),
            ("unknown method", b"PROPFIND /v1/check HTTP/1.1\r\nHost: x\r\n\r\n", 501,
             "not_implemented"),
            # after a kept-alive answer of the server's own, on the same connection
            ("bad request after a good one", ok + b"GET / HTTP/9.9\r\n\r\n", 400,
             "bad_request"),
        ]
        for name, data, code, error in cases:
            with self.subTest(name):
                out = self.assertRawError(data, code, error)
                if data.startswith(ok):
                    self.assertIn(b'"status":"ok"', out)
        # the server's own answers are untouched: its HTML page, a JSON 200 kept alive
        out = self.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"Content-Type: text/html", out)
        self.assertIn(b"<html", out.lower())
        self.assertIn(b'"status":"ok"', out)
        # and evhttp's answers are counted
        m = self.get("/metrics").body.decode()
        self.assertRegex(m, r'mailprobe_http_responses_total\{code="501"\} [1-9]')
        self.assertEqual(self.get("/healthz").json()["status"], "ok")

    # ---- jobs ---------------------------------------------------------------------------

    def test_job_csv_with_webhook_retried(self):
        hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
        Hooks.calls, Hooks.fail_first = [], 1
        threading.Thread(target=hooks.serve_forever, daemon=True).start()
        try:
            body = ("name,email,city\n"
                    "Alice,alice@postfix.test,Paris\n"
                    'Bob,bob@postfix.test,"Rome, IT"\n'
                    "Nobody,nobody@postfix.test,Oslo\n"
                    "Again,alice@postfix.test,Paris\n"
                    "Bad,\"unterminated,x\n"
                    "Jane,jane@catchall.test,Lima\n")
            hook = "http://127.0.0.1:%d/done?x=1" % hooks.server_address[1]
            r = self.post("/v1/jobs?webhook=" + urllib.request.quote(hook, safe=""), body,
                          "text/csv")
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            self.assertEqual(r.headers.get("Location"), "/v1/jobs/" + id)
            self.assertEqual(r.json()["rows_total"], 6)
            j = self.wait_job(id)
            self.assertEqual(j["state"], "done", j)
            self.assertEqual(j["rows_done"], 6)
            self.assertEqual(j["progress"], 1.0)
            self.assertEqual(j["counts"], {"deliverable": 3, "undeliverable": 1, "risky": 1,
                                           "unknown": 0, "error": 1})
            self.assertEqual(j["reasons"], {"accepted": 3, "mailbox_absent": 1,
                                            "accept_all": 1, "bad_quoting": 1})
            r = self.get("/v1/jobs/%s/results" % id)
            self.assertEqual(r.code, 200)
            self.assertTrue(r.headers.get("Content-Type").startswith("text/csv"))
            self.assertIn("attachment", r.headers.get("Content-Disposition"))
            rows = list(csv.reader(io.StringIO(r.body.decode())))
            self.assertEqual(rows[0][:6], ["name", "email", "city", "verdict", "reason",
                                           "score"])
            self.assertEqual([x[0] for x in rows[1:]],
                             ["Alice", "Bob", "Nobody", "Again", "Bad", "Jane"])
            self.assertEqual(rows[2][2], "Rome, IT")
            r = self.get("/v1/jobs/%s/results?verdict=deliverable" % id)
            rows = list(csv.reader(io.StringIO(r.body.decode())))
            self.assertEqual([x[0] for x in rows[1:]], ["Alice", "Bob", "Again"])
            r = self.get("/v1/jobs/%s/results?format=ndjson&verdict=undeliverable" % id)
            self.assertEqual(r.headers.get("Content-Type"), "application/x-ndjson")
            lines = [json.loads(x) for x in r.body.decode().splitlines()]
            self.assertEqual([x["email"] for x in lines], ["nobody@postfix.test"])
            self.assertEqual(lines[0]["mailprobe"]["reason"], "mailbox_absent")
            self.assertError(self.get("/v1/jobs/%s/results?format=xml" % id), 400,
                             "bad_request")
            self.assertError(self.get("/v1/jobs/%s/results?verdict=good" % id), 400,
                             "bad_request")
            # the webhook: a 500 first, then retried after a second
            deadline = time.monotonic() + 20
            while len(Hooks.calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(len(Hooks.calls), 2, Hooks.calls)
            path, ctype, body = Hooks.calls[1]
            self.assertEqual(path, "/done?x=1")
            self.assertEqual(ctype, "application/json")
            self.assertEqual(json.loads(body)["id"], id)
            self.assertEqual(json.loads(body)["state"], "done")
            time.sleep(1.5)
            self.assertEqual(len(Hooks.calls), 2)  # delivered: not called again
            listed = [x["id"] for x in self.get("/v1/jobs").json()["jobs"]]
            self.assertIn(id, listed)
            # delete: gone, with its files
            r = request(self.srv.url("/v1/jobs/" + id), "DELETE")
            self.assertEqual(r.json(), {"deleted": id})
            self.assertError(self.get("/v1/jobs/" + id), 404, "not_found")
            left = [f for f in os.listdir(self.srv.store + ".d") if f.startswith(id)]
            self.assertEqual(left, [])
        finally:
            hooks.shutdown()
            hooks.server_close()

    def test_webhook_to_an_ipv6_literal_delivered(self):
        class V6Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6
        hooks = V6Server(("::1", 0), Hooks)
        Hooks.calls, Hooks.fail_first = [], 0
        threading.Thread(target=hooks.serve_forever, daemon=True).start()
        try:
            hook = "http://[::1]:%d/v6" % hooks.server_address[1]
            r = self.post("/v1/jobs?webhook=" + urllib.request.quote(hook, safe=""),
                          "email\nalice@postfix.test\n", "text/csv")
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            self.wait_job(id)
            deadline = time.monotonic() + 20
            while not Hooks.calls and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(len(Hooks.calls), 1, self.srv.stderr()[-2000:])
            self.assertEqual(Hooks.calls[0][0], "/v6")
            self.assertEqual(json.loads(Hooks.calls[0][2])["id"], id)
        finally:
            hooks.shutdown()
            hooks.server_close()

    def test_job_json_and_not_done_yet(self):
        body = json.dumps({"emails": ["alice@postfix.test", {"email": "s1@silent.script.test",
                                                              "crm_id": 42}]})
        r = self.post("/v1/jobs", body)
        self.assertEqual(r.code, 202, r.body)
        id = r.json()["id"]
        r = self.get("/v1/jobs/%s/results" % id)
        self.assertError(r, 409, "not_done")
        j = self.wait_job(id)
        self.assertEqual(j["state"], "done")
        r = self.get("/v1/jobs/%s/results?format=ndjson" % id)
        lines = [json.loads(x) for x in r.body.decode().splitlines()]
        self.assertEqual([x["email"] for x in lines],
                         ["alice@postfix.test", "s1@silent.script.test"])
        self.assertEqual(lines[1]["crm_id"], 42)
        self.assertEqual([x["mailprobe"]["reason"] for x in lines], ["accepted", "timeout"])

    # ---- health, metrics, documents -----------------------------------------------------

    def test_health_metrics_openapi_page(self):
        self.get("/v1/check?email=alice@postfix.test")
        h = self.get("/healthz").json()
        self.assertEqual(h["status"], "ok")
        m = self.get("/metrics")
        self.assertTrue(m.headers.get("Content-Type").startswith("text/plain"))
        text = m.body.decode()
        for name in ("mailprobe_checks_total", "mailprobe_check_duration_seconds_bucket",
                     "mailprobe_smtp_sessions_total", "mailprobe_smtp_sessions_ended_total",
                     "mailprobe_dns_cache_total", "mailprobe_checks_in_flight",
                     "mailprobe_jobs_queued", "mailprobe_http_responses_total"):
            self.assertIn("# TYPE " + name.replace("_bucket", ""), text)
        n = re.search(r'^mailprobe_checks_total\{verdict="deliverable",reason="accepted"\} '
                      r'(\d+)$', text, re.M)
        self.assertGreaterEqual(int(n.group(1)), 1)
        self.assertGreaterEqual(int(re.search(r"^mailprobe_smtp_sessions_total (\d+)$", text,
                                              re.M).group(1)), 1)
        # the postmaster@ control RCPT of the session (issue 13) is counted on its own
        self.assertGreaterEqual(int(re.search(
            r'^mailprobe_smtp_rcpts_total\{kind="postmaster_control"\} (\d+)$', text,
            re.M).group(1)), 1)
        o = self.get("/v1/openapi.json").json()
        self.assertTrue(o["openapi"].startswith("3."))
        for p in ("/v1/check", "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/results",
                  "/healthz", "/metrics"):
            self.assertIn(p, o["paths"])
        page = self.get("/")
        self.assertEqual(page.code, 200)
        self.assertTrue(page.headers.get("Content-Type").startswith("text/html"))
        self.assertIn(b"<html", page.body.lower())


class Restart(labkit.LabCase):
    def test_restart_mid_job_continues(self):
        d = tempfile.mkdtemp(prefix="mp-api-restart-")
        store = os.path.join(d, "store.sqlite")
        srv = Server(store, "--timeout", "6", "--rate-limit", "0")
        lines = ["email"] + ["user%d@postfix.test" % i for i in range(12)] + \
                ["a@silent.script.test", "b@silent.script.test", "c@silent.script.test"]
        r = request(srv.url("/v1/jobs"), "POST", "\n".join(lines) + "\n",
                    {"Content-Type": "text/csv"})
        id = json.loads(r.body)["id"]

        def stored():
            db = sqlite3.connect(store)
            try:
                return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.Error:
                return 0
            finally:
                db.close()
        deadline = time.monotonic() + 30
        while stored() < 12 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertGreaterEqual(stored(), 12)
        srv.stop(signal.SIGKILL)  # a crash: only what was committed survives
        mark = labkit.postfix_mark()
        srv = Server(store, "--timeout", "6", "--rate-limit", "0")
        try:
            j = wait_done(srv, id, 60)
            self.assertEqual(j["state"], "done", j)
            self.assertEqual(j["rows_done"], 15)
            body = request(srv.url("/v1/jobs/%s/results" % id)).body.decode()
            rows = list(csv.reader(io.StringIO(body)))
            self.assertEqual([x[0] for x in rows[1:]], lines[1:])
            self.assertEqual([x[2] for x in rows[1:]], ["mailbox_absent"] * 12 + ["timeout"] * 3)
            # the rows checked before the restart were not checked again
            self.assertEqual(labkit.postfix_sessions(mark, "mbox"), 0)
        finally:
            self.assertEqual(srv.stop(), 0)


class Webhooks(labkit.LabCase):
    def test_private_targets_refused(self):
        """Without --allow-private-webhooks: an address literal on loopback, private,
        link-local, metadata or translated ranges is a 400 that says why; a name is
        checked once resolved, at delivery, on the address actually dialled."""
        d = tempfile.mkdtemp(prefix="mp-api-hooks-")
        srv = Server(os.path.join(d, "s.sqlite"), "--rate-limit", "0")
        # a receiver on the lab address mx.postfix.test resolves to (127.0.1.10)
        hooks = http.server.ThreadingHTTPServer((labkit.PF["mbox"], 0), Hooks)
        Hooks.calls, Hooks.fail_first = [], 0
        threading.Thread(target=hooks.serve_forever, daemon=True).start()
        try:
            for target in ("127.0.0.1:22", "10.0.0.1", "169.254.169.254", "[::1]:8080",
                           "[fe80::1]", "[64:ff9b::a9fe:a9fe]", "[::ffff:10.1.1.1]",
                           "localhost:9", "192.168.1.1", "198.18.0.1"):
                hook = "http://%s/x" % target
                r = request(srv.url("/v1/jobs?webhook=" + urllib.request.quote(hook, safe="")),
                            "POST", "email\na@b.test\n", {"Content-Type": "text/csv"})
                self.assertEqual(r.code, 400, (target, r.body))
                m = r.json()
                self.assertEqual(m["error"], "bad_request")
                self.assertIn("--allow-private-webhooks", m["message"])
                self.assertIn("private", m["message"])
            # a name: accepted, then refused once resolved; nothing reaches the receiver
            hook = "http://mx.postfix.test:%d/hook" % hooks.server_address[1]
            r = request(srv.url("/v1/jobs?webhook=" + urllib.request.quote(hook, safe="")),
                        "POST", "email\nalice@postfix.test\n", {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            deadline = time.monotonic() + 60
            text = ""
            while time.monotonic() < deadline:
                text = request(srv.url("/metrics")).body.decode()
                if 'mailprobe_webhooks_total{result="failed"} 1' in text:
                    break
                time.sleep(0.2)
            self.assertIn('mailprobe_webhooks_total{result="failed"} 1', text)
            self.assertIn('mailprobe_webhooks_total{result="delivered"} 0', text)
            self.assertEqual(Hooks.calls, [])
            self.assertIn("--allow-private-webhooks", srv.stderr())
        finally:
            hooks.shutdown()
            hooks.server_close()
            self.assertEqual(srv.stop(), 0)
        # the same name with the operator's consent is delivered
        srv = Server(os.path.join(d, "s2.sqlite"), "--rate-limit", "0",
                     "--allow-private-webhooks")
        hooks = http.server.ThreadingHTTPServer((labkit.PF["mbox"], 0), Hooks)
        threading.Thread(target=hooks.serve_forever, daemon=True).start()
        try:
            hook = "http://mx.postfix.test:%d/hook" % hooks.server_address[1]
            r = request(srv.url("/v1/jobs?webhook=" + urllib.request.quote(hook, safe="")),
                        "POST", "email\nalice@postfix.test\n", {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            deadline = time.monotonic() + 60
            while not Hooks.calls and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(len(Hooks.calls), 1, srv.stderr()[-2000:])
        finally:
            hooks.shutdown()
            hooks.server_close()
            self.assertEqual(srv.stop(), 0)


class HalfClose(labkit.LabCase):
    def test_pipelined_requests_then_half_close_all_answered(self):
        """A client that sends its requests and then shuts down its sending side (as
        `nc -N` or an HTTP/1.0 tool does) still gets every answer, even a slow one."""
        d = tempfile.mkdtemp(prefix="mp-api-half-")
        srv = Server(os.path.join(d, "s.sqlite"), "--rate-limit", "0", "--timeout", "20")
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            reqs = (b"GET /v1/check?email=half1@silent.script.test&timeout=1.5 HTTP/1.1\r\n"
                    b"Host: x\r\n\r\n"
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET /v1/check?email=half2@silent.script.test&timeout=1 HTTP/1.1\r\n"
                    b"Host: x\r\nConnection: close\r\n\r\n")
            s.sendall(reqs)
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            codes = re.findall(rb"HTTP/1\.1 (\d{3})", data)
            self.assertEqual(codes, [b"200", b"200", b"200"], data[:3000])
            self.assertIn(b'"pending":true', data)
            self.assertIn(b'"status":"ok"', data)
        finally:
            self.assertEqual(srv.stop(), 0)


class JobLock(labkit.LabCase):
    def test_a_job_serve_runs_is_not_run_by_bulk_too(self):
        d = tempfile.mkdtemp(prefix="mp-api-lock-")
        store = os.path.join(d, "s.sqlite")
        srv = Server(store, "--rate-limit", "0", "--timeout", "10")
        try:
            r = request(srv.url("/v1/jobs"), "POST", "email\nslow@silent.script.test\n",
                        {"Content-Type": "text/csv"})
            self.assertEqual(r.code, 202, r.body)
            id = r.json()["id"]
            deadline = time.monotonic() + SLOW
            while time.monotonic() < deadline:
                if request(srv.url("/v1/jobs/" + id)).json()["state"] == "running":
                    break
                time.sleep(0.1)
            p = subprocess.run(labkit.mailprobe_argv_prefix() + [
                "bulk", "--store", store, "--resume", id, "--no-progress"] + ENGINE,
                capture_output=True, text=True, timeout=SLOW)
            self.assertEqual(p.returncode, 5, p.stderr)
            self.assertIn("being run by another process (pid %d)" % srv.proc.pid, p.stderr)
        finally:
            self.assertEqual(srv.stop(), 0)


class Stop(labkit.LabCase):
    def test_waiting_callers_told_when_the_server_stops(self):
        d = tempfile.mkdtemp(prefix="mp-api-stop-")
        srv = Server(os.path.join(d, "s.sqlite"), "--timeout", "20", "--rate-limit", "0")
        out = []
        t = threading.Thread(target=lambda: out.append(request(
            srv.url("/v1/check?email=stop1@silent.script.test&timeout=60"))))
        t.start()
        time.sleep(1.5)
        self.assertEqual(srv.stop(), 0)
        t.join(10)
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0].code, 503)
        self.assertEqual(out[0].json()["error"], "shutting_down")


if __name__ == "__main__":
    if os.environ.get("MP_IN_NETNS") != labkit.NS:
        # run inside the lab's namespace: the server's loopback is the namespace's
        os.environ["MP_IN_NETNS"] = labkit.NS
        os.execvp("ip", ["ip", "netns", "exec", labkit.NS, sys.executable] + sys.argv)
    unittest.main(verbosity=2)

