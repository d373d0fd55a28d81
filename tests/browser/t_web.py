#!/usr/bin/python3
"""Browser tests of the web page (web/, served by `mailprobe serve`), end to end in the
test lab: the server checks real lab addresses, Chromium (headless) drives the page.

The whole test runs inside the lab's network namespace (it re-executes itself under
`ip netns exec $MP_LAB_NS`), so the server, chromedriver, Chromium and the urllib calls
all see the lab's 127.x servers and nothing else. Debian packages only: chromium,
chromium-driver, python3-selenium (run with /usr/bin/python3).

    MAILPROBE=build/mailprobe MP_LAB_NS=mpweb /usr/bin/python3 tests/browser/t_web.py
    MP_SCREENSHOT=1 ...   also rewrites docs/img/web.png (deliverable result, 1200x900)

Like every lab test it FAILS (never skips) when not root or when the lab is not up.
Everything started here (servers, chromedriver and the browsers under it) is stopped by
pid in tearDownClass. No timed assertions: waits are generous upper bounds.
"""
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import labkit  # noqa: E402

IN_NS = "MP_WEB_IN_NS"
SCREENSHOT = os.path.join(ROOT, "docs", "img", "web.png")
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--no-first-run", "--disable-extensions",
                "--disable-sync", "--disable-component-update", "--disable-default-apps",
                "--window-size=1200,900"]
WAIT = 90  # seconds: upper bound for anything the page waits for (not an assertion on speed)

DELIVERABLE = "alice@postfix.test"
UNDELIVERABLE = "nobody@postfix.test"

# A small list with one row of every kind (expected outcome from docs/internals/lab.md;
# the same rows as mailprobe bulk gives in tests/lab/t_bulk.py).
CSV_ROWS = [("Alice", "alice@postfix.test", "deliverable", "accepted", ""),
            ("Bob", "bob@postfix.test", "deliverable", "accepted", ""),
            ("Nobody", "nobody@postfix.test", "undeliverable", "mailbox_absent", ""),
            ("Syntax", "a..b@postfix.test", "undeliverable", "invalid_syntax", ""),
            ("Jane", "jane@catchall.test", "risky", "accept_all", ""),
            ("Full", "full@access.test", "risky", "mailbox_full", ""),
            ("Blocked", "blocked@access.test", "unknown", "policy_blocked", ""),
            ("Empty", "", "", "", "no_address")]
CSV_TEXT = "name,email\n" + "".join("%s,%s\n" % (r[0], r[1]) for r in CSV_ROWS)
CSV_COUNTS = {"deliverable": 2, "undeliverable": 2, "risky": 2, "unknown": 1, "error": 1}


def enter_namespace():
    """Re-execute this file inside the lab namespace (once)."""
    if os.environ.get(IN_NS) == labkit.NS:
        return
    labkit.require_lab()
    labkit.mailprobe_path()
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium for %s" % sys.executable)
    if missing:
        raise labkit.LabError("browser tests need chromium, chromium-driver and "
                              "python3-selenium (scripts/deps test); missing: "
                              + ", ".join(missing))
    env = dict(os.environ)
    env[IN_NS] = labkit.NS
    argv = ["ip", "netns", "exec", labkit.NS, sys.executable, os.path.abspath(__file__)]
    os.execvpe("ip", argv + sys.argv[1:], env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, method="GET", body=None, headers=None, timeout=30):
    """(status, headers, bytes) from inside the namespace; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def descendants(pid):
    """Pids of all processes below pid (from /proc), deepest last."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_pids(pids, grace=5.0):
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace
    for p in pids:
        while time.monotonic() < end:
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Server:
    """mailprobe serve with the lab's engine options, on a free port."""

    def __init__(self, tmp, tokens=None):
        self.tmp = tmp
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.argv = labkit.mailprobe_argv_prefix() + [
            "serve", "--listen", "127.0.0.1:%d" % self.port,
            "--store", os.path.join(tmp, "store.sqlite"),
            "--dns", labkit.DNS, "--allow-private-mx", "--helo", labkit.HELO,
            "--from", labkit.FROM]
        if tokens:
            self.argv += ["--tokens", tokens]
        self.logpath = os.path.join(tmp, "serve.log")
        self.log = open(self.logpath, "w+b")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise labkit.LabError("mailprobe serve exited with %s:\n%s\n%s"
                                      % (self.proc.returncode, " ".join(self.argv), self.text()))
            try:
                st, _, _ = http(self.url + "/", timeout=2)
                if st == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise labkit.LabError("mailprobe serve does not answer on %s:\n%s"
                                      % (self.url, self.text()))
            time.sleep(0.1)

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            stop_pids([self.proc.pid], grace=10)
        self.proc.wait()
        self.log.close()
        labkit.assert_clean_stderr(self.text())
        if os.environ.get("MAILPROBE_WRAPPER") and self.proc.returncode == 99:
            raise labkit.LabError("the wrapper reported errors (exit 99):\n" + self.text()[-8000:])


class Browser:
    """chromedriver driving a headless Chromium; stopped by pid (chromedriver and every
    process below it) whatever state the session is in."""

    def __init__(self, tmp):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        self.tmp = tmp
        self.downloads = os.path.join(tmp, "downloads")
        os.makedirs(self.downloads, exist_ok=True)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in CHROME_FLAGS:
            opts.add_argument(f)
        opts.add_argument("--user-data-dir=" + os.path.join(tmp, "profile"))
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        opts.add_experimental_option("prefs", {
            "download.default_directory": self.downloads,
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False})
        self.service = Service(CHROMEDRIVER, port=free_port(), service_args=[
            "--log-path=" + os.path.join(tmp, "chromedriver.log")])
        self.driver = None
        try:
            self.driver = webdriver.Chrome(service=self.service, options=opts)
            self.driver.set_window_size(1200, 900)
            self.driver.set_script_timeout(WAIT)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        proc = getattr(self.service, "process", None)
        pids = descendants(proc.pid) + [proc.pid] if proc and proc.poll() is None else []
        if self.driver is not None:
            try:
                self.driver.quit()  # closes Chromium and stops chromedriver
            except Exception:
                pass
            self.driver = None
        stop_pids([p for p in pids if alive(p)])
        if proc:
            proc.wait()


class WebCase(unittest.TestCase):
    """One server (tokens=None or a token file) and one browser per class."""
    maxDiff = None
    TOKEN = None

    @classmethod
    def setUpClass(cls):
        labkit.require_lab()
        cls.tmp = tempfile.mkdtemp(prefix="mpweb-")
        cls.server = cls.browser = None
        tokens = None
        if cls.TOKEN:
            tokens = os.path.join(cls.tmp, "tokens")
            with open(tokens, "w") as f:
                f.write(cls.TOKEN + "\n")
        try:
            cls.server = Server(cls.tmp, tokens)
            cls.browser = Browser(cls.tmp)
        except BaseException:
            cls.tearDownClass()
            raise
        cls.d = cls.browser.driver

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.browser:
                cls.browser.stop()
        finally:
            if cls.server:
                cls.server.stop()
            if not os.environ.get("MP_WEB_KEEP"):
                shutil.rmtree(cls.tmp, ignore_errors=True)

    # Console lines that are expected: the browser logs every 4xx answer the page asked
    # for (a 401 is how the page learns that a token is needed).
    CONSOLE_OK = ("the server responded with a status of 401",)

    def tearDown(self):
        """No JavaScript error and no Content-Security-Policy violation on the page."""
        bad = [e["message"] for e in self.d.get_log("browser")
               if e.get("level") == "SEVERE" and not any(ok in e["message"]
                                                         for ok in self.CONSOLE_OK)]
        self.assertEqual(bad, [], "errors in the browser console")

    # ------------------------------------------------------------ page helpers
    def open(self, query=""):
        self.d.get(self.server.url + "/" + query)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def wait(self, cond, timeout=WAIT, what="condition"):
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(cond)
        except Exception as e:
            raise AssertionError("timed out waiting for %s (%s)\npage status: %r / %r\n"
                                 "server log:\n%s" % (what, type(e).__name__,
                                                      self.text("check-status"),
                                                      self.text("job-status"),
                                                      self.server.text()[-4000:])) from None

    def el(self, id_):
        return self.d.find_element("id", id_)

    def text(self, id_):
        """textContent (not the rendered text: hidden parts and CSS do not change it)."""
        try:
            return self.d.execute_script("return document.getElementById(arguments[0]).textContent",
                                         id_)
        except Exception:
            return None

    def visible(self, id_):
        return self.el(id_).is_displayed()

    def check_address(self, addr, query=""):
        """Type addr, press Enter, wait for the result; returns the badge's verdict."""
        from selenium.webdriver.common.keys import Keys
        if query or not self.d.current_url.startswith(self.server.url):
            self.open(query)
        box = self.el("email")
        box.clear()
        box.send_keys(addr + Keys.ENTER)
        self.wait(lambda d: self.visible("result") and self.text("r-email") == addr,
                  what="the result for " + addr)
        return self.el("r-badge").get_attribute("data-verdict")

    def job_counts(self):
        """{verdict: count} as the chart says it (its text labels and numbers)."""
        return self.d.execute_script("""
            const out = {};
            for (const g of document.querySelectorAll('#job-chart g[data-verdict]')) {
              const t = g.querySelectorAll('text');
              out[g.dataset.verdict] = [t[0].textContent, Number(t[t.length - 1].textContent)];
            }
            return out;""")

    def wait_job_done(self):
        self.wait(lambda d: self.visible("job") and not self.el("job-dl").get_attribute("hidden"),
                  what="the job to be done")
        return self.d.execute_script("return location.hash").split("=", 1)[1]

    def links(self):
        return {a.get_attribute("data-kind"): (a.get_attribute("href"), a.text)
                for a in self.d.find_elements("css selector", "#job-links a")}

    def auth_headers(self):
        return {"Authorization": "Bearer " + self.TOKEN} if self.TOKEN else {}

    def download_csv(self, url):
        st, h, body = http(url, headers=self.auth_headers())
        self.assertEqual(st, 200, body[:500])
        self.assertIn("attachment", h.get("Content-Disposition", ""))
        return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))

    def assert_rows(self, rows, expected):
        """rows of a results CSV against (name, email, verdict, reason, error) tuples."""
        got = [(r["name"], r["email"], r["verdict"], r["reason"], r["error"]) for r in rows]
        self.assertEqual(got, [tuple(e) for e in expected])

    def assert_chart(self, counts):
        got = self.job_counts()
        want = {v: ["unreadable" if v == "error" else v, n] for v, n in counts.items()}
        self.assertEqual(got, want)
        label = self.el("job-chart").get_attribute("aria-label")
        for v, n in counts.items():
            self.assertIn("%d %s" % (n, "unreadable" if v == "error" else v), label)


class Page(WebCase):
    """No token file: the page talks to the API directly."""

    def test_1_deliverable(self):
        self.assertEqual(self.check_address(DELIVERABLE), "deliverable")
        badge = self.el("r-badge").text
        self.assertIn("Deliverable", badge)  # the word, not only the colour
        self.assertIn("v-deliverable", self.el("r-badge").get_attribute("class"))
        self.assertEqual(self.text("r-reason"), "accepted")
        self.assertIn("accepted this address", self.text("r-reason-text"))
        self.assertEqual(self.text("r-score"), "95 / 100")
        server = self.text("r-server")
        self.assertIn("mx.postfix.test [127.0.1.10]", server)
        self.assertIn("Catch-all" + "no", server)
        flags = self.text("r-flags")
        for f in ("Disposable: no", "Free provider: no", "Role account: no", "Gibberish: no"):
            self.assertIn(f, flags)
        self.assertTrue(self.el("r-suggest").get_attribute("hidden"))
        # the transcript is there, folded, and holds our RCPT (and never DATA)
        box = self.el("r-transcript-box")
        self.assertIsNone(box.get_attribute("open"))
        tr = self.text("r-transcript")
        self.assertIn("> RCPT TO:<%s>" % DELIVERABLE, tr)
        self.assertNotIn("> DATA", tr)
        self.assertIn("deliverable", self.text("check-status").lower())
        # every form field has a label; the file input is reachable from the keyboard
        self.assertEqual(self.d.execute_script(
            "return [...document.querySelectorAll('input')].filter(i => !i.labels.length)"
            ".map(i => i.id)"), [])
        self.assertEqual(self.d.execute_script(
            "const f = document.getElementById('file');"
            "return [f.tabIndex, getComputedStyle(f).display, getComputedStyle(f).visibility]"),
            [0, "block", "visible"])
        if os.environ.get("MP_SCREENSHOT") == "1":
            # the page as a 1200x900 window shows it (viewport exactly that size)
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            self.d.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
            os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
            try:
                self.assertTrue(self.d.save_screenshot(SCREENSHOT))
            finally:
                self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def test_1c_catch_all_assessment(self):
        # an accept-all domain: the assessment (from the history alone: none here)
        self.assertEqual(self.check_address("jane@catchall.test"), "risky")
        self.assertEqual(self.text("r-reason"), "accept_all")
        self.assertIn("Catch-all assessment" + "no evidence (probability", self.text("r-server"))
        self.check_address(DELIVERABLE)
        self.assertNotIn("Catch-all assessment", self.text("r-server"))

    def test_1b_server_identity(self):
        """The card of GET /v1/doctor: the quick checks serve ran at start (in the lab the
        egress address is unknown: no myip server is reachable, so warnings)."""
        self.open("")
        self.wait(lambda d: self.visible("doctor"), what="the server identity card")
        items = self.d.execute_script(
            "return [...document.querySelectorAll('#doctor-checks li')]"
            ".map(li => [li.dataset.id, li.dataset.status])")
        self.assertEqual([i[0] for i in items], ["config", "egress", "rdns", "helo"])
        self.assertEqual(items[0][1], "ok")
        self.assertIn("HELO probe.lab.test", self.text("doctor-checks"))
        warned = [i for i in items if i[1] in ("warn", "fail")]
        self.assertEqual(len(self.d.find_elements("css selector", "#doctor-checks .fix")),
                         len(warned))
        self.assertTrue(self.text("doctor-status"))

    def test_2_undeliverable(self):
        self.assertEqual(self.check_address(UNDELIVERABLE), "undeliverable")
        self.assertIn("Undeliverable", self.el("r-badge").text)
        self.assertEqual(self.text("r-reason"), "mailbox_absent")
        self.assertIn("The mailbox does not exist", self.text("r-reason-label"))
        self.assertEqual(self.text("r-score"), "1 / 100")
        self.assertIn("550 5.1.1", self.text("r-server"))
        self.el("r-transcript-box").find_element("tag name", "summary").click()
        self.assertIn("User unknown", self.el("r-transcript").text)

    def test_3_invalid_address(self):
        self.assertEqual(self.check_address("a..b@postfix.test"), "undeliverable")
        self.assertEqual(self.text("r-reason"), "invalid_syntax")
        self.assertEqual(self.text("r-transcript-n"), "0")
        self.assertEqual(self.text("r-transcript"), "No SMTP conversation.")

    def test_4_pending_then_answer(self):
        """The server's wait (?wait=1 -> timeout=1) runs out while postgrey refuses the
        first attempt (5 s): the page says it is still checking, asks again after
        retry_after, and shows the final result."""
        addr = "web-%d-%d@greylist.test" % (os.getpid(), int(time.time() * 1000) % 10**9)
        self.open("?wait=1")
        from selenium.webdriver.common.keys import Keys
        self.el("email").send_keys(addr + Keys.ENTER)
        self.wait(lambda d: "Still checking" in (self.text("check-status") or ""),
                  what="the 'still checking' status")
        self.assertTrue(self.el("result").get_attribute("hidden"))
        self.wait(lambda d: self.visible("result") and self.text("r-email") == addr,
                  what="the final result for " + addr)
        self.assertNotEqual(self.text("r-reason"), "timeout")
        self.assertIn(self.el("r-badge").get_attribute("data-verdict"),
                      ("deliverable", "risky"))

    def test_5_suggestion_button_rechecks(self):
        """A likely typo of a known provider (gmial.com, also on the disposable list, so
        no DNS is needed): the suggestion's button puts it in the box and checks it."""
        self.check_address("alice@gmial.com")
        self.assertFalse(self.el("r-suggest").get_attribute("hidden"))
        btn = self.el("r-suggest-btn")
        self.assertEqual(btn.text, "alice@gmail.com")
        btn.click()
        self.wait(lambda d: self.text("r-email") == "alice@gmail.com" and self.visible("result"),
                  what="the re-check of the suggestion")
        self.assertEqual(self.el("email").get_attribute("value"), "alice@gmail.com")

    def test_5b_narrow_screen(self):
        """A phone-sized screen: the result fits, nothing scrolls sideways but the
        transcript inside its own box."""
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
        try:
            self.assertEqual(self.check_address(UNDELIVERABLE, query="?"), "undeliverable")
            self.el("r-transcript-box").find_element("tag name", "summary").click()
            self.assertLessEqual(self.d.execute_script(
                "return document.documentElement.scrollWidth"), 360)
        finally:
            self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def test_6_csv_file_input(self):
        path = os.path.join(self.tmp, "list.csv")
        with open(path, "w") as f:
            f.write(CSV_TEXT)
        self.open()
        self.el("file").send_keys(path)  # the keyboard path: the file input
        job = self.wait_job_done()
        self.assertEqual(self.el("job-progress").get_attribute("value"), "1")
        self.assertIn("8 of 8 rows checked", self.text("job-rows"))
        self.assert_chart(CSV_COUNTS)
        self.assertIn("Done: 8 rows", self.text("job-status"))
        reasons = self.text("job-reasons")
        for r in ("accepted: 2", "mailbox_absent: 1", "accept_all: 1", "no_address: 1"):
            self.assertIn(r, reasons)
        links = self.links()
        self.assertEqual(sorted(links), sorted(["all-csv", "all-ndjson", "deliverable-csv",
                                                "undeliverable-csv", "risky-csv",
                                                "unknown-csv"]))
        # the links' hrefs are the API's; read them as a client would
        rows = self.download_csv(links["all-csv"][0])
        self.assert_rows(rows, CSV_ROWS)
        self.assertIn("2 rows", links["deliverable-csv"][1])
        rows = self.download_csv(links["deliverable-csv"][0])
        self.assertEqual([r["email"] for r in rows], ["alice@postfix.test", "bob@postfix.test"])
        # the unknown file also holds the rows that could not be read (docs/api.md)
        self.assertIn("2 rows", links["unknown-csv"][1])
        rows = self.download_csv(links["unknown-csv"][0])
        self.assertEqual([(r["name"], r["reason"] or r["error"]) for r in rows],
                         [("Blocked", "policy_blocked"), ("Empty", "no_address")])
        st, _, body = http(links["all-ndjson"][0], headers=self.auth_headers())
        self.assertEqual(st, 200)
        lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
        self.assertEqual(len(lines), len(CSV_ROWS))
        # the job as the API says it, for the record of what the chart showed
        st, _, body = http("%s/v1/jobs/%s" % (self.server.url, job), headers=self.auth_headers())
        self.assertEqual(st, 200)
        api = json.loads(body)
        self.assertEqual(api["state"], "done")
        self.assertEqual({k: api["counts"].get(k, 0) for k in CSV_COUNTS}, CSV_COUNTS)

    def test_7_csv_drop_and_delete(self):
        """Drag and drop: a drop event carrying a File, as the browser makes it."""
        self.open()
        self.d.execute_script("""
            const dt = new DataTransfer();
            dt.items.add(new File([arguments[0]], 'dropped.csv', {type: 'text/csv'}));
            const zone = document.getElementById('drop');
            for (const t of ['dragenter', 'dragover', 'drop'])
              zone.dispatchEvent(new DragEvent(t, {dataTransfer: dt, bubbles: true, cancelable: true}));
            """, "email\nalice@postfix.test\nnobody@postfix.test\njane@catchall.test\n")
        job = self.wait_job_done()
        self.assertIn("dropped.csv", self.text("job-name"))
        self.assert_chart({"deliverable": 1, "undeliverable": 1, "risky": 1, "unknown": 0,
                           "error": 0})
        self.el("job-delete").click()
        self.wait(lambda d: not self.visible("job"), what="the job panel to close")
        self.assertIn("deleted", self.text("job-status"))
        st, _, _ = http("%s/v1/jobs/%s" % (self.server.url, job), headers=self.auth_headers())
        self.assertEqual(st, 404)


class Token(WebCase):
    """With a token file: the page asks for the token, keeps it, and then works."""
    TOKEN = "web-test-token-4f1c0a"

    def test_token_flow(self):
        from selenium.webdriver.common.keys import Keys
        st, _, body = http(self.server.url + "/v1/check?email=" + DELIVERABLE)
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(body)["error"], "unauthorized")

        self.open()
        self.assertFalse(self.visible("auth"))
        self.el("email").send_keys(DELIVERABLE + Keys.ENTER)
        self.wait(lambda d: self.visible("auth"), what="the token field")
        self.assertIn("needs an access token", self.text("auth-msg"))
        self.assertEqual(self.d.switch_to.active_element.get_attribute("id"), "token")
        self.assertFalse(self.visible("result"))

        # a wrong token is refused and asked again
        self.el("token").send_keys("wrong" + Keys.ENTER)
        self.wait(lambda d: self.visible("auth") and "did not accept" in self.text("auth-msg"),
                  what="the wrong token to be refused")
        # the right one: the check that was asked for goes on by itself
        self.el("token").send_keys(self.TOKEN + Keys.ENTER)
        self.wait(lambda d: self.visible("result") and self.text("r-email") == DELIVERABLE,
                  what="the result after the token")
        self.assertFalse(self.visible("auth"))
        self.assertEqual(self.el("r-badge").get_attribute("data-verdict"), "deliverable")
        self.assertEqual(self.text("r-reason"), "accepted")
        self.assertEqual(self.d.execute_script(
            "return localStorage.getItem('mailprobe.token')"), self.TOKEN)

        # kept across a reload; lists work with it, downloads carry it
        self.assertEqual(self.check_address(UNDELIVERABLE, query="?"), "undeliverable")
        self.assertFalse(self.visible("auth"))
        path = os.path.join(self.tmp, "list.csv")
        with open(path, "w") as f:
            f.write(CSV_TEXT)
        self.el("file").send_keys(path)
        self.wait_job_done()
        self.assert_chart(CSV_COUNTS)
        self.el("job-links").find_element("css selector", "a[data-kind=all-csv]").click()
        dl = self.browser.downloads

        def downloaded(_):
            done = [f for f in os.listdir(dl) if f.endswith(".csv")]
            return done[0] if done else None
        name = self.wait(downloaded, what="the CSV download")
        with open(os.path.join(dl, name), encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        self.assert_rows(rows, CSV_ROWS)


class ZzNoData(unittest.TestCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    enter_namespace()
    labkit.main()
