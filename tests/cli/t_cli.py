#!/usr/bin/python3
"""The mailprobe command line without the network: usage errors, config files, exit
codes, explain, stdin, the user's allow/deny lists, --offline. MAILPROBE is the binary."""
import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MAILPROBE", "build/mailprobe")


def mp(*args, stdin=None, env=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("MAILPROBE_", "XDG_", "JOURNAL_STREAM", "STATE_DIRECTORY"))}
    e["HOME"] = tempfile.gettempdir() + "/mp-cli-home-none"
    if env:
        e.update(env)
    return subprocess.run([BIN] + list(args), input=stdin, capture_output=True, text=True,
                          env=e, timeout=60)


def results(p):
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


class Usage(unittest.TestCase):
    def assertUsage(self, p, words):
        self.assertEqual(p.returncode, 2, p)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("mailprobe: "), lines[0])
        self.assertIn(words, lines[0])

    def test_no_command(self):
        p = mp()
        self.assertEqual(p.returncode, 2)

    def test_unknown_command(self):
        self.assertUsage(mp("frobnicate"), "unknown command")

    def test_unknown_option(self):
        self.assertUsage(mp("check", "--nope", "a@b.test"), "unknown option")

    def test_missing_value(self):
        self.assertUsage(mp("check", "a@b.test", "--helo"), "needs a value")

    def test_bad_values(self):
        self.assertUsage(mp("check", "--timeout", "soon", "a@b.test"), "--timeout")
        self.assertUsage(mp("check", "--max-sessions", "0", "a@b.test"), "--max-sessions")
        self.assertUsage(mp("check", "--from", "not an address", "a@b.test"), "--from")
        self.assertUsage(mp("check", "--helo", "bad name", "a@b.test"), "--helo")
        self.assertUsage(mp("check", "--port", "70000", "a@b.test"), "--port")
        self.assertUsage(mp("check", "--session-errors", "1", "a@b.test"), "--session-errors")
        self.assertUsage(mp("check", "--session-errors", "many", "a@b.test"), "--session-errors")
        self.assertUsage(mp("check", "--session-reuse-time", "2h", "a@b.test"),
                         "--session-reuse-time")
        self.assertUsage(mp("check", "--session-reuse-count", "0", "a@b.test"),
                         "--session-reuse-count")
        self.assertUsage(mp("check", "--idle-time", "10m", "a@b.test"), "--idle-time")

    def test_session_options_accepted(self):
        p = mp("check", "--offline", "--json", "--session-errors", "9", "--session-reuse-time",
               "60s", "--session-reuse-count", "1", "--idle-time", "500ms", "alice@example.org")
        self.assertEqual(results(p)[0]["reason"], "not_checked", p.stderr)

    def test_bad_source_and_proxy(self):
        for cmd in ("check", "bulk", "serve"):
            self.assertUsage(mp(cmd, "--source", "192.0.2.1", "a@b.test"),
                             "--source cannot send from 192.0.2.1: not an address of this machine")
        self.assertUsage(mp("check", "--source", "mx.example", "a@b.test"),
                         "is not an IPv4 or IPv6 address")
        self.assertUsage(mp("check", "--source", "127.0.0.1=bad name", "a@b.test"),
                         "HELO name")
        self.assertUsage(mp("check", "--proxy", "http://127.0.0.1:3128", "a@b.test"),
                         "socks5://[USER:PASS@]HOST:PORT")
        self.assertUsage(mp("check", "--proxy", "socks5://127.0.0.1", "a@b.test"),
                         "needs HOST:PORT")
        self.assertUsage(mp("check", "--proxy", "socks5://bob@127.0.0.1:1080", "a@b.test"),
                         "credentials are USER:PASS")
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write("source = 192.0.2.7\n")
            f.flush()
            self.assertUsage(mp("check", "--config", f.name, "a@b.test"), "192.0.2.7")

    def test_config_shows_proxy_without_password(self):
        p = mp("config", "--proxy", "socks5://bob:s3cret@127.0.0.1:1080=out.test")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("socks5://bob@127.0.0.1:1080", p.stdout)
        self.assertNotIn("s3cret", p.stdout + p.stderr)
        p = mp("config", env={"MAILPROBE_PROXY": "socks5://bob:s3cret@127.0.0.1:1080"})
        self.assertIn("socks5://bob@127.0.0.1:1080", p.stdout)
        self.assertNotIn("s3cret", p.stdout + p.stderr)

    def test_redis_options(self):
        # a bad URL and caps without a fleet are usage errors; the password never shows
        for cmd in ("check", "bulk", "serve"):
            self.assertUsage(mp(cmd, "--redis", "http://127.0.0.1:6379", "a@b.test"),
                             "--redis")
        p = mp("check", "--redis", "redis://bob:s3cret@127.0.0.1:99999", "a@b.test")
        self.assertUsage(p, "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]")
        self.assertNotIn("s3cret", p.stderr)
        self.assertUsage(mp("check", "--sessions-per-hour", "100", "a@b.test"),
                         "need --redis")
        self.assertUsage(mp("check", "--sessions-per-day", "x", "a@b.test"),
                         "--sessions-per-day needs a number")
        p = mp("config", "--redis", "redis://bob:s3cret@127.0.0.1:6380/2",
               "--sessions-per-minute", "30")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("redis://bob:***@127.0.0.1:6380/2", p.stdout)
        self.assertNotIn("s3cret", p.stdout + p.stderr)
        # Redis unreachable: one line, exit 5, nothing checked (nothing listens on the
        # port of a socket just closed)
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p = mp("check", "--json", "--redis", "redis://:pw@127.0.0.1:%d" % port, "a@b.test")
        self.assertEqual(p.returncode, 5, p)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr.strip().splitlines(),
                         ["mailprobe: redis 127.0.0.1:%d: Connection refused" % port])

    def test_no_address(self):
        self.assertUsage(mp("check"), "no address")
        self.assertUsage(mp("check", "-", stdin="\n\n"), "no address on stdin")

    def test_missing_list_file(self):
        self.assertUsage(mp("check", "--offline", "--deny-list", "/nonexistent/x",
                            "a@b.test"), "/nonexistent/x")

    def test_bad_geoip_file(self):
        with tempfile.NamedTemporaryFile(suffix=".mmdb") as f:
            f.write(b"not a database")
            f.flush()
            self.assertUsage(mp("check", "--offline", "--geoip", f.name, "a@b.test"), f.name)

    def test_help_and_version(self):
        for args in (["help"], ["check", "--help"], ["explain", "--help"], ["version"]):
            p = mp(*args)
            self.assertEqual(p.returncode, 0, args)
            self.assertTrue(p.stdout)


class Config(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_config_applies(self):
        path = self.write("# comment\noffline\njson = yes\n")
        p = mp("check", "--config", path, "alice@example.org")
        self.assertEqual(results(p)[0]["reason"], "not_checked")

    def test_env_config(self):
        path = self.write("offline\njson\n")
        p = mp("check", "alice@example.org", env={"MAILPROBE_CONFIG": path})
        self.assertEqual(results(p)[0]["reason"], "not_checked")

    def test_flags_win_over_file(self):
        # the file's value is bad; the flag replaces it before it is used
        path = self.write("offline\njson\nrcpt-per-session = 5\n")
        p = mp("check", "--config", path, "--rcpt-per-session", "7", "alice@example.org")
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_config_errors_name_file_and_line(self):
        for text, words in (("offline\nbogus = 1\n", ":2: unknown option 'bogus'"),
                            ("timeout\n", ":1: 'timeout' needs a value"),
                            ("offline = maybe\n", ":1: 'offline' takes no value"),
                            ("greylist-wait = forever\n", ":1: --greylist-wait")):
            path = self.write(text)
            p = mp("check", "--config", path, "a@b.test")
            self.assertEqual(p.returncode, 2, text)
            self.assertIn(path + words, p.stderr)

    def test_missing_config_file(self):
        p = mp("check", "--config", "/nonexistent/mp.conf", "a@b.test")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/mp.conf", p.stderr)


class Precedence(unittest.TestCase):
    """user file < MAILPROBE_* variables < flags; --config replaces the files."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        os.makedirs(self.dir.name + "/xdg/mailprobe")
        self.user = self.dir.name + "/xdg/mailprobe/config"
        with open(self.user, "w") as f:
            f.write("helo = from-user-file.test\nport = 2525\nper-server = 3\n"
                    "listen = 127.0.0.1:9999\n")  # a serve option: skipped by check

    def config(self, *args, env=None):
        e = {"XDG_CONFIG_HOME": self.dir.name + "/xdg"}
        e.update(env or {})
        p = mp("config", "--json", *args, env=e)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_each_later_source_wins(self):
        r = self.config(env={"MAILPROBE_PORT": "2626", "MAILPROBE_PER_SERVER": "4"})
        s = r["settings"]
        self.assertEqual(s["helo"], {"value": "from-user-file.test",
                                     "source": self.user + ":1"})
        self.assertEqual(s["port"], {"value": "2626", "source": "MAILPROBE_PORT"})
        r = self.config("--per-server", "5", env={"MAILPROBE_PER_SERVER": "4"})
        self.assertEqual(r["settings"]["per-server"],
                         {"value": "5", "source": "command line"})
        self.assertEqual(r["settings"]["timeout"]["source"], "default")
        self.assertTrue(any(f["path"] == self.user and f["read"] for f in r["files"]))

    def test_config_flag_replaces_the_files(self):
        other = self.dir.name + "/other.conf"
        with open(other, "w") as f:
            f.write("port = 2727\n")
        for r in (self.config("--config", other),
                  self.config(env={"MAILPROBE_CONFIG": other})):
            self.assertEqual(r["settings"]["port"]["value"], "2727")
            self.assertEqual(r["settings"]["helo"]["source"], "default")

    def test_env_reaches_check(self):
        e = {"XDG_CONFIG_HOME": self.dir.name + "/xdg", "MAILPROBE_OFFLINE": "1",
             "MAILPROBE_JSON": "yes"}
        p = mp("check", "alice@example.org", env=e)
        self.assertEqual(results(p)[0]["reason"], "not_checked", p.stderr)
        e["MAILPROBE_JSON"] = "0"  # leaves the switch off
        p = mp("check", "alice@example.org", env=e)
        self.assertTrue(p.stdout.startswith("alice@example.org: "), p.stdout)

    def test_env_errors_name_the_variable(self):
        for var, val in (("MAILPROBE_OFFLINE", "maybe"), ("MAILPROBE_GREYLIST_WAIT", "x"),
                         ("MAILPROBE_LOG_FORMAT", "xml")):
            p = mp("check", "a@b.test", env={var: val})
            self.assertEqual(p.returncode, 2, var)
            self.assertIn(var, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1)

    def test_a_flag_for_another_command_is_still_an_error(self):
        p = mp("check", "--listen", "127.0.0.1:1", "a@b.test")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--listen", p.stderr)

    def test_text_output_names_sources(self):
        p = mp("config", env={"XDG_CONFIG_HOME": self.dir.name + "/xdg",
                              "MAILPROBE_HELO": "env.test"})
        self.assertRegex(p.stdout, r"(?m)^helo +env\.test +# MAILPROBE_HELO$")
        self.assertIn("# file %s: read" % self.user, p.stdout)


class DashAddresses(unittest.TestCase):
    """An argument that starts with '-' and holds an '@' is an address."""

    def test_after_double_dash_and_among_options(self):
        for args in (["--offline", "--json", "--", "-alice@example.org"],
                     ["--offline", "--json", "-alice@example.org"],
                     ["-x@example.org", "--offline", "--json"]):
            p = mp("check", *args)
            self.assertEqual(p.returncode, 3, (args, p.stderr))
            emails = [r["email"] for r in results(p)]
            self.assertIn(emails[0], ("-alice@example.org", "-x@example.org"))

    def test_order_kept(self):
        p = mp("check", "--offline", "--json", "b@x.test", "-a@x.test", "--", "-c@x.test")
        self.assertEqual([r["email"] for r in results(p)], ["b@x.test", "-a@x.test", "-c@x.test"])

    def test_errors_name_the_right_argument(self):
        p = mp("check", "--offline", "-vq", "a@b.test")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown option '-q'", p.stderr)
        p = mp("check", "-z", "--offline", "a@b.test")
        self.assertIn("unknown option '-z'", p.stderr)
        p = mp("bulk", "in.csv", "-o")
        self.assertIn("option '-o' needs a value", p.stderr)

    def test_option_values_stay_values(self):
        # the value of --from may start with '-' and hold an '@'
        p = mp("check", "--offline", "--json", "--from", "-bounce@x.test", "a@b.test")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual([r["email"] for r in results(p)], ["a@b.test"])


class LogFormat(unittest.TestCase):
    # a literal address on loopback, port 1: refused at once, logged at debug level; a
    # --helo, so that no start-up identity check asks DNS servers outside the test
    ARGS = ["check", "--verbose", "--allow-private-mx", "--port", "1", "--helo", "probe.test",
            "a@[127.0.0.1]"]

    def test_text_and_json_lines(self):
        for fmt in ("text", "json"):
            p = mp(*self.ARGS, "--log-format", fmt)
            lines = [l for l in p.stderr.splitlines() if l]
            self.assertTrue(lines, p.stderr)
            for l in lines:
                if fmt == "json":
                    o = json.loads(l)
                    self.assertEqual(set(o), {"time", "level", "msg"})
                    self.assertIn(o["level"], ("debug", "info", "warning", "error"))
                else:
                    self.assertTrue(l.startswith("mailprobe: "), l)

    def test_serve_lines_follow_the_format(self):
        import signal
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        # --offline: no start-up identity checks (they would ask DNS servers outside)
        p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--log-format", "json",
                              "--offline", "--store", d.name + "/jobs.sqlite"],
                             stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, HOME=d.name))
        try:
            first = json.loads(p.stderr.readline())
            self.assertEqual(first["level"], "info")
            self.assertIn("serving on http://127.0.0.1:", first["msg"])
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=30), 0)
            rest = [json.loads(l) for l in p.stderr.read().splitlines() if l]
            self.assertEqual(rest[-1]["msg"], "stopping")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()

    def test_journal_priorities_only_on_the_journal_stream(self):
        with tempfile.TemporaryFile("w+") as err:
            st = os.fstat(err.fileno())
            stream = "%d:%d" % (st.st_dev, st.st_ino)
            for js, want in ((stream, r"<[3-7]>mailprobe: "), ("1:2", r"mailprobe: ")):
                err.seek(0)
                err.truncate()
                e = dict(os.environ, JOURNAL_STREAM=js, HOME="/nonexistent")
                subprocess.run([BIN] + self.ARGS, stdout=subprocess.DEVNULL, stderr=err,
                               env=e, timeout=60)
                err.seek(0)
                lines = [l for l in err.read().splitlines() if l]
                self.assertTrue(lines)
                for l in lines:
                    self.assertRegex(l, "^" + want)
                if js == stream:
                    self.assertIn("<7>mailprobe: debug: ", "\n".join(lines))


class ServeNotify(unittest.TestCase):
    """Type=notify: READY=1 once the listener is open, STOPPING=1 on SIGTERM, exit 0."""

    def test_ready_then_stopping(self):
        import signal
        import socket
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        for addr in (d.name + "/notify", "@mp-cli-notify-%d" % os.getpid()):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(addr.replace("@", "\0", 1) if addr[0] == "@" else addr)
            sock.settimeout(30)
            e = {k: v for k, v in os.environ.items() if not k.startswith("MAILPROBE_")}
            e.update(NOTIFY_SOCKET=addr, HOME=d.name)
            p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--offline",
                                  "--store", d.name + "/jobs.sqlite"], env=e,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                msg = sock.recv(4096).decode()
                fields = dict(l.split("=", 1) for l in msg.splitlines())
                self.assertEqual(fields["READY"], "1")
                self.assertEqual(fields["MAINPID"], str(p.pid))
                port = int(fields["STATUS"].rsplit(" ", 1)[1])
                self.assertIn("serving on http://127.0.0.1:%d/" % port, p.stderr.readline())
                # the listener is open when READY arrives
                with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                    c.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                    self.assertIn(b" 200 ", c.recv(100))
                p.send_signal(signal.SIGTERM)
                self.assertEqual(sock.recv(4096), b"STOPPING=1")
                self.assertEqual(p.wait(timeout=30), 0)
                self.assertIn("mailprobe: stopping", p.stderr.read())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stderr.close()
                sock.close()


class Offline(unittest.TestCase):
    def test_exit_codes_and_order(self):
        # undeliverable (invalid) > unknown (not checked) > risky (disposable)
        self.assertEqual(mp("check", "--offline", "a@b@c").returncode, 1)
        self.assertEqual(mp("check", "--offline", "alice@example.org").returncode, 3)
        self.assertEqual(mp("check", "--offline", "x@mailinator.com").returncode, 4)
        p = mp("check", "--offline", "--json", "x@mailinator.com", "a@b@c", "alice@example.org")
        self.assertEqual(p.returncode, 1)
        self.assertEqual([r["email"] for r in results(p)],
                         ["x@mailinator.com", "a@b@c", "alice@example.org"])

    def test_stdin_mixed_with_args(self):
        p = mp("check", "--offline", "--json", "first@example.org", "-", "last@example.org",
               stdin="  second@example.org\r\n\nthird@example.org\n")
        self.assertEqual([r["email"] for r in results(p)],
                         ["first@example.org", "second@example.org", "third@example.org",
                          "last@example.org"])

    def test_invalid_is_a_result(self):
        p = mp("check", "--offline", "--json", "john..doe@example.org")
        r = results(p)[0]
        self.assertEqual((r["verdict"], r["reason"]), ("undeliverable", "invalid_syntax"))
        self.assertEqual(r["syntax"]["rule"], "local_dot")
        self.assertEqual(r["smtp"]["attempts"], 0)

    def test_idna2008_symbols_are_invalid(self):
        p = mp("check", "--offline", "--json", "a@\u20ac.com", "b@\u00a1hola.com", "c@b\u00fccher.de")
        rs = results(p)
        for r in rs[:2]:
            self.assertEqual((r["verdict"], r["reason"], r["syntax"]["rule"]),
                             ("undeliverable", "invalid_syntax", "idn"), r["email"])
        self.assertEqual(rs[2]["syntax"]["domain_ascii"], "xn--bcher-kva.de")

    def test_reserved_names_not_disposable(self):
        p = mp("check", "--offline", "--json", "a@example.com", "b@mail.example.org", "c@x.test")
        for r in results(p):
            self.assertFalse(r["flags"]["disposable"], r["email"])
            self.assertFalse(r["flags"]["free"], r["email"])
            self.assertEqual(r["reason"], "not_checked", r["email"])

    def test_signals(self):
        p = mp("check", "--offline", "--json", "bob@gmial.com", "info@example.org",
               "--role-risky")
        typo, role = results(p)
        self.assertEqual(typo["suggestion"], "bob@gmail.com")
        self.assertTrue(role["flags"]["role"])

    def test_human_output_has_no_colour_when_piped(self):
        p = mp("check", "--offline", "alice@example.org")
        self.assertIn("alice@example.org: unknown (not_checked)", p.stdout)
        self.assertNotIn("\033[", p.stdout)
        p = mp("check", "--offline", "--color", "alice@example.org")
        self.assertIn("\033[", p.stdout)


class Lists(unittest.TestCase):
    def setUp(self):
        d = tempfile.mkdtemp()
        self.deny = os.path.join(d, "deny.txt")
        self.allow = os.path.join(d, "allow.txt")
        with open(self.deny, "w") as f:
            f.write("# traps\ntrap@example.org\nbounces.example\n")
        with open(self.allow, "w") as f:
            f.write("partner.example\n")

    def test_deny_and_allow(self):
        p = mp("check", "--json", "--offline", "--deny-list", self.deny, "--allow-list",
               self.allow, "trap@example.org", "x@sub.bounces.example", "y@partner.example")
        trap, sub, partner = results(p)
        self.assertEqual((trap["verdict"], trap["reason"]), ("undeliverable", "deny_listed"))
        self.assertIn(self.deny + ":2", trap["list_match"])
        self.assertEqual(sub["reason"], "deny_listed")
        self.assertIn(self.deny + ":3", sub["list_match"])
        self.assertEqual((partner["verdict"], partner["reason"]), ("deliverable", "allow_listed"))

    def test_allow_wins(self):
        with open(self.allow, "a") as f:
            f.write("trap@example.org\n")
        p = mp("check", "--json", "--offline", "--deny-list", self.deny, "--allow-list",
               self.allow, "trap@example.org")
        self.assertEqual(results(p)[0]["reason"], "allow_listed")

    def test_bad_line_is_an_error(self):
        with open(self.deny, "a") as f:
            f.write("not a valid entry @@\n")
        p = mp("check", "--offline", "--deny-list", self.deny, "a@b.test")
        self.assertEqual(p.returncode, 2)
        self.assertIn(self.deny + ":4", p.stderr)


class Explain(unittest.TestCase):
    def test_user_unknown(self):
        p = mp("explain", "550 5.1.1 <x@y>: Recipient address rejected: User unknown")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Outcome:   mailbox_absent", p.stdout)
        self.assertIn("Verdict:   undeliverable (mailbox_absent)", p.stdout)
        self.assertIn("bad destination mailbox address", p.stdout)

    def test_policy_is_not_absent(self):
        p = mp("explain", "--json", "550 5.7.1 Service unavailable; Client host [192.0.2.1] "
               "blocked using zen.spamhaus.org")
        r = json.loads(p.stdout)
        self.assertEqual((r["verdict"], r["reason"]), ("unknown", "policy_blocked"))

    def test_stage_and_multiline(self):
        p = mp("explain", "--json", "--stage", "mail",
               "550-5.1.1 sender unknown\n550 5.1.1 <probe@x.test>: Sender address rejected")
        r = json.loads(p.stdout)
        self.assertEqual(r["stage"], "mail")
        self.assertEqual(r["reason"], "sender_rejected")

    def test_json_escapes_line_separators(self):
        p = mp("explain", "--json", "550 5.1.1 user\u2028unknown\u2029here")
        self.assertEqual(p.returncode, 0)
        self.assertIn("user\\u2028unknown\\u2029here", p.stdout)
        self.assertNotIn("\u2028", p.stdout)
        self.assertEqual(json.loads(p.stdout)["text"], "user\u2028unknown\u2029here")

    def test_controls(self):
        # a refusal in words that say nothing known: unknown alone, decided by postmaster@
        p = mp("explain", "--json", "550 Administrative prohibition")
        r = json.loads(p.stdout)
        self.assertEqual((r["verdict"], r["reason"]), ("unknown", "policy_blocked"))
        self.assertEqual(r["controls"]["postmaster_accepted"]["reason"], "recipient_refused")
        self.assertEqual(r["controls"]["postmaster_refused"]["reason"], "policy_blocked")
        p = mp("explain", "--postmaster", "250 2.1.5 Ok",
               "550 Requested action not taken: mailbox unavailable")
        self.assertEqual(p.returncode, 0)
        self.assertIn("With the controls given: undeliverable (recipient_refused)", p.stdout)
        p = mp("explain", "--postmaster", "hello", "550 x")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)

    def test_corpus(self):
        tsv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                           "replies.tsv")
        p = mp("explain", "--corpus", tsv)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"without controls: \d+ of \d+ read as labelled")
        self.assertIn("0 false hard bounce(s)", p.stdout)
        p = mp("explain", "--corpus", "/nonexistent/replies.tsv")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)

    def test_not_a_reply(self):
        for bad in ("hello", "999 what", "25 short"):
            p = mp("explain", bad)
            self.assertEqual(p.returncode, 2, bad)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        self.assertEqual(mp("explain", "--stage", "data", "250 ok").returncode, 2)


class StoreLooksOnly(unittest.TestCase):
    def test_config_creates_no_state_directory(self):
        """`mailprobe config` names the default store; only a command that writes one
        creates its directory."""
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        p = mp("config", env={"HOME": d.name})
        self.assertEqual(p.returncode, 0, p)
        self.assertIn(d.name + "/.local/state/mailprobe/jobs.sqlite", p.stdout)
        self.assertEqual(os.listdir(d.name), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
