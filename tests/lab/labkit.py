"""labkit: helpers for the lab scenario tests (stdlib only; run with /usr/bin/python3).

The lab (tests/lab/lab.sh up) must be running: ctest's fixture `lab` starts it. A test
that finds no lab, or does not run as root, FAILS: the lab label means "against real
servers", and a silently skipped lab would hide that nothing was checked.

    import labkit
    class T(labkit.LabCase):
        def test_x(self):
            r = self.check("alice@postfix.test")
            self.assertVerdict(r, "deliverable", "accepted")
            self.assertEqual(labkit.client_commands(r), [...])

Environment: MAILPROBE (the binary, set by ctest), MP_LAB_NS (default mplab),
MP_LAB_DIR (default /tmp/mplab-$NS), MAILPROBE_WRAPPER (a command put in front of the
binary, e.g. "valgrind -q --leak-check=full --errors-for-leak-kinds=definite
--error-exitcode=99"; exit code 99 then fails the test). Sanitizer reports (ASan, LSan,
UBSan) on mailprobe's stderr fail the test in any build.
"""
import json
import os
import re
import shlex
import subprocess
import time
import unittest

NS = os.environ.get("MP_LAB_NS", "mplab")
LAB = os.environ.get("MP_LAB_DIR", "/tmp/mplab-" + NS)
HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT_LOG = os.path.join(LAB, "smtpscript.jsonl")
POSTFIX_LOG = os.path.join(LAB, "postfix", "postfix.log")
EXIM_LOG = os.path.join(LAB, "exim", "log", "mainlog")
UNBOUND_LOG = os.path.join(LAB, "unbound", "unbound.log")

HELO = "probe.lab.test"
FROM = "verify@lab.test"
DNS = "127.0.0.53"

# listener addresses (see docs/internals/lab.md)
PF = {"mbox": "127.0.1.10", "catchall": "127.0.1.11", "greylist": "127.0.1.12",
      "access": "127.0.1.13", "tls": "127.0.1.14", "sender": "127.0.1.15",
      # dressed as providers / gateways (t_catch_all.py); key = syslog name
      "pphosted": "127.0.1.16", "mimecast": "127.0.1.17", "outlook": "127.0.1.18",
      "google": "127.0.1.19", "yahoo": "127.0.1.20",
      # Postfix's default error limits and sleep (t_conncache.py)
      "strict": "127.0.1.21"}
EXIM = "127.0.2.10"
SCRIPT = {"normal": "127.0.3.10", "r252": "127.0.3.11", "split": "127.0.3.12",
          "slowbanner": "127.0.3.13", "silent": "127.0.3.14", "droprcpt": "127.0.3.15",
          "garbage": "127.0.3.16", "oversize": "127.0.3.17", "cap421": "127.0.3.18",
          "nonnumeric": "127.0.3.19", "noehlo": "127.0.3.20", "mail451": "127.0.3.21",
          "tlsbroken": "127.0.3.22", "banner554": "127.0.3.23", "onercpt": "127.0.3.24",
          "greyprobe": "127.0.3.25", "cap2": "127.0.3.26", "nopipe": "127.0.3.31",
          "dropmid": "127.0.3.32"}
DELAY_PROXY = "127.0.4.10"
REFUSED_IPS = ("127.0.1.98", "127.0.1.99")  # nothing listens there


class LabError(AssertionError):
    pass


def require_lab():
    """Fail (never skip) unless we are root and the lab namespace is up."""
    if os.geteuid() != 0:
        raise LabError("lab tests must run as root (network namespace)")
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if out.returncode != 0 or NS not in [l.split()[0] for l in out.stdout.splitlines() if l]:
        raise LabError("lab namespace %r is not up: run tests/lab/lab.sh up" % NS)
    st = subprocess.run([os.path.join(HERE, "lab.sh"), "status", LAB],
                        capture_output=True, text=True)
    if st.returncode != 0:
        raise LabError("lab is not healthy:\n" + st.stdout + st.stderr)


def nsexec(argv, **kw):
    return subprocess.run(["ip", "netns", "exec", NS] + list(argv), **kw)


# --------------------------------------------------------------------------- mailprobe
def mailprobe_path():
    p = os.environ.get("MAILPROBE")
    if not p:
        raise LabError("MAILPROBE is not set (ctest sets it to the built binary)")
    if not os.access(p, os.X_OK):
        raise LabError("MAILPROBE=%s is not an executable" % p)
    return p


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     ": runtime error: ", "WARNING: ThreadSanitizer")


class Run:
    """One mailprobe invocation: results (list of dicts, input order), rc, stderr."""

    def __init__(self, argv, proc, elapsed):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.results = []
        for line in proc.stdout.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                self.results.append(json.loads(line))
            except ValueError as e:
                raise LabError("mailprobe printed a non-JSON line %r (%s)\nstderr:\n%s"
                               % (line, e, proc.stderr)) from None

    def __repr__(self):
        return "Run(%s rc=%s)\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.argv), self.rc, self.stdout, self.stderr[-4000:])


def mailprobe_argv_prefix():
    """The wrapper (MAILPROBE_WRAPPER, e.g. valgrind) and the binary."""
    return shlex.split(os.environ.get("MAILPROBE_WRAPPER", "")) + \
        [os.path.abspath(mailprobe_path())]


def nspopen(argv, **kw):
    return subprocess.Popen(["ip", "netns", "exec", NS] + list(argv), **kw)


def assert_clean_stderr(stderr):
    """Fail on sanitizer reports and on the wrapper's error exit in mailprobe's stderr."""
    for marker in SANITIZER_MARKERS:
        if marker in stderr:
            raise LabError("mailprobe reported %r:\n%s" % (marker, stderr[-8000:]))


def run_mailprobe(addresses, extra=(), allow_private=True, helo=HELO, sender=FROM,
                  timeout=180, stdin=None, probe=False):
    """probe=False adds --no-catch-all-probe: the engine scenarios assert one RCPT per
    session; t_catch_all.py runs with the probe."""
    argv = shlex.split(os.environ.get("MAILPROBE_WRAPPER", ""))
    argv += [mailprobe_path(), "check", "--json", "--trace", "--dns", DNS]
    if not probe:
        argv.append("--no-catch-all-probe")
    if allow_private:
        argv.append("--allow-private-mx")
    if helo is not None:
        argv += ["--helo", helo]
    if sender is not None:
        argv += ["--from", sender]
    argv += list(extra)
    argv += list(addresses)
    t0 = time.monotonic()
    try:
        proc = nsexec(argv, capture_output=True, text=True, timeout=timeout, input=stdin,
                      errors="replace")
    except subprocess.TimeoutExpired as e:
        raise LabError("mailprobe did not finish within %d s: %s\nstderr so far:\n%s"
                       % (timeout, " ".join(argv), (e.stderr or b"")[-4000:])) from None
    run = Run(argv, proc, time.monotonic() - t0)
    for marker in SANITIZER_MARKERS:
        if marker in proc.stderr:
            raise LabError("mailprobe reported %r:\n%s" % (marker, proc.stderr[-8000:]))
    if os.environ.get("MAILPROBE_WRAPPER") and proc.returncode == 99:
        raise LabError("the wrapper reported errors (exit 99):\n" + proc.stderr[-8000:])
    for r in run.results:
        assert_no_data_in(r)
    return run


def check(address, *extra, **kw):
    """Check one address; returns its result dict (with ._run for debugging)."""
    run = run_mailprobe([address], extra, **kw)
    if len(run.results) != 1:
        raise LabError("expected one result for %s, got %d\n%r"
                       % (address, len(run.results), run))
    r = run.results[0]
    r["_run"] = repr(run)
    return r


def transcript(result):
    return result.get("transcript") or []


def client_commands(result, ip=None):
    """Lines our client sent (dir '>'), optionally only those to one server IP."""
    return [t["line"] for t in transcript(result)
            if t.get("dir") == ">" and (ip is None or t.get("ip") == ip)]


def server_lines(result, ip=None):
    return [t["line"] for t in transcript(result)
            if t.get("dir") == "<" and (ip is None or t.get("ip") == ip)]


def until_report(cmds):
    """A session's commands as far as a result's transcript shows them: a check reports
    as soon as its RCPT replies are in, before the session's QUIT (which the server still
    gets), so a trailing QUIT is not part of it."""
    cmds = list(cmds)
    return cmds[:-1] if cmds and cmds[-1] == "QUIT" else cmds


def ips_contacted(result):
    seen = []
    for t in transcript(result):
        ip = t.get("ip")
        if ip and ip not in seen:
            seen.append(ip)
    return seen


# the catch-all probe's local part: 20 random letters and digits, starting with a letter
PROBE_LOCAL = re.compile(r"^[a-z][a-z0-9]{19}$")


def is_probe_address(addr):
    """True for 'x7...(20)@domain': what the engine sends as its catch-all probe."""
    local, _, domain = (addr or "").rpartition("@")
    return bool(domain) and bool(PROBE_LOCAL.match(local))


def rcpt_address(line):
    """'RCPT TO:<a@b> X=Y' -> 'a@b' (None for other commands)."""
    m = re.match(r"RCPT TO:<([^>]*)>", line, re.I)
    return m.group(1) if m else None


def probe_rcpts(result):
    """The catch-all probe RCPTs our client sent (addresses), in order."""
    out = []
    for line in client_commands(result):
        a = rcpt_address(line)
        if a is not None and is_probe_address(a):
            out.append(a)
    return out


def verbs(lines):
    """['EHLO x', 'MAIL FROM:<..>'] -> ['EHLO', 'MAIL']"""
    return [l.split(" ", 1)[0].split(":", 1)[0].upper() for l in lines]


def assert_no_data_in(result):
    for line in client_commands(result):
        v = line.strip().upper()
        if v == "DATA" or v.startswith("DATA ") or v.startswith("BDAT"):
            raise LabError("the client sent %r (DATA is never sent)" % line)


# --------------------------------------------------------------------------- logs
class LogMark:
    """Remember the size of a log file; read only what was appended after."""

    def __init__(self, path):
        self.path = path
        try:
            self.offset = os.path.getsize(path)
        except OSError:
            self.offset = 0

    def new_text(self, settle=0.3):
        time.sleep(settle)  # let servers flush what they log at disconnect
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def script_mark():
    return LogMark(SCRIPT_LOG)


def script_events(mark=None, ip=None):
    text = mark.new_text() if mark else _read(SCRIPT_LOG)
    out = []
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if ip is None or e.get("ip") == ip:
            out.append(e)
    return out


def script_commands(mark=None, ip=None):
    """{conn id: [commands...]} received by the scripted server (connections in order)."""
    conns = {}
    for e in script_events(mark, ip):
        if e["event"] == "connect":
            conns.setdefault(e["conn"], [])
        elif e["event"] == "cmd":
            conns.setdefault(e["conn"], []).append(e["cmd"])
    return conns


def postfix_max_open(text, service):
    """The most sessions of Postfix's `service` (its syslog name: postfix/<service>/smtpd)
    open at once, in the order Postfix logged its connect and disconnect lines."""
    conn = re.compile(r"postfix/%s/smtpd\[(\d+)\]: connect from " % re.escape(service))
    disc = re.compile(r"postfix/%s/smtpd\[(\d+)\]: disconnect from " % re.escape(service))
    open_now, most = set(), 0
    for line in text.splitlines():
        m = conn.search(line)
        if m:
            open_now.add(m.group(1))
            most = max(most, len(open_now))
        m = disc.search(line)
        if m:
            open_now.discard(m.group(1))
    return most


def postfix_mark():
    return LogMark(POSTFIX_LOG)


PF_CONNECT = re.compile(r"postfix/(\w+)/smtpd\[\d+\]: connect from ")
PF_DISCONNECT = re.compile(r"postfix/(\w+)/smtpd\[\d+\]: disconnect from \S+ (.*)$")


def postfix_sessions(mark=None, listener=None):
    """Number of smtpd connections (per listener name: mbox, access, ...) since mark."""
    text = mark.new_text() if mark else _read(POSTFIX_LOG)
    counts = {}
    for line in text.splitlines():
        m = PF_CONNECT.search(line)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts.get(listener, 0) if listener else counts


def postfix_disconnect_stats(mark=None, listener=None):
    """[{'ehlo': '1', 'mail': '1', 'rcpt': '0/1', 'rset': '1', 'quit': '1', ...}, ...]"""
    text = mark.new_text() if mark else _read(POSTFIX_LOG)
    out = []
    for line in text.splitlines():
        m = PF_DISCONNECT.search(line)
        if m and (listener is None or m.group(1) == listener):
            out.append(dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv))
    return out


def postfix_refusals(stats):
    """Refused commands of one smtpd session from its disconnect stats ('rcpt': '3/5'
    means 3 of 5 accepted): what Postfix counts against its error limits."""
    n = 0
    for k, v in stats.items():
        if "/" in v and k != "commands":
            ok, total = v.split("/", 1)
            n += int(total) - int(ok)
    return n


def postfix_rejects(mark=None, rcpt=None):
    """NOQUEUE reject lines (RCPT stage) since mark, optionally for one recipient."""
    text = mark.new_text() if mark else _read(POSTFIX_LOG)
    out = []
    for line in text.splitlines():
        if "NOQUEUE: reject: RCPT" in line and (rcpt is None or "to=<%s>" % rcpt in line):
            out.append(line)
    return out


PF_RCPT_REJECT = re.compile(r": (?:NOQUEUE|[0-9A-F]+): reject: RCPT from ")


def postfix_rcpt_rejects(mark=None, rcpt=None, listener=None):
    """RCPT rejects since mark, also those logged with a queue id (once a RCPT of the
    transaction was accepted Postfix names the queue file, not NOQUEUE)."""
    text = mark.new_text() if mark else _read(POSTFIX_LOG)
    out = []
    for line in text.splitlines():
        if not PF_RCPT_REJECT.search(line):
            continue
        if rcpt is not None and "to=<%s>" % rcpt not in line:
            continue
        if listener is not None and "postfix/%s/smtpd[" % listener not in line:
            continue
        out.append(line)
    return out


def exim_mark():
    return LogMark(EXIM_LOG)


EXIM_INCOMPLETE = re.compile(r"incomplete transaction \((\w+)\) from <([^>]*)> for (.*)$")


def exim_incomplete(mark=None):
    """[(how, sender, [recipients])]: Exim's +smtp_incomplete_transaction lines, i.e.
    the recipients it accepted in transactions ended without DATA (QUIT, RSET, ...)."""
    text = mark.new_text() if mark else _read(EXIM_LOG)
    out = []
    for line in text.splitlines():
        m = EXIM_INCOMPLETE.search(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3).split()))
    return out


def postfix_rcpt_total(mark=None, listener=None):
    """RCPT commands a Postfix listener received since mark (sum of the 'rcpt=' counts
    of its disconnect lines; '0/2' counts 2)."""
    total = 0
    for st in postfix_disconnect_stats(mark, listener):
        total += int(st.get("rcpt", "0").split("/")[-1])
    return total


def unbound_mark():
    return LogMark(UNBOUND_LOG)


UB_QUERY = re.compile(r"info: (\S+) (\S+)\. (\S+) IN$")


def unbound_queries(mark=None):
    """[(name, type)] asked of unbound since mark (query log lines, not replies)."""
    text = mark.new_text() if mark else _read(UNBOUND_LOG)
    out = []
    for line in text.splitlines():
        m = UB_QUERY.search(line)
        if m:
            out.append((m.group(2).lower(), m.group(3)))
    return out


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def assert_no_data_anywhere():
    """No server in the lab ever received DATA (or BDAT)."""
    bad = []
    for e in script_events():
        if e["event"] == "cmd" and e["cmd"].split(" ", 1)[0].upper() in ("DATA", "BDAT"):
            bad.append("smtpscript %s conn %s: %s" % (e["ip"], e["conn"], e["cmd"]))
    for st in postfix_disconnect_stats():
        if "data" in st or "bdat" in st:
            bad.append("postfix session with data: %r" % st)
    pf = _read(POSTFIX_LOG)
    bad += [l for l in pf.splitlines() if "reject: DATA from" in l or "reject: BDAT" in l]
    ex = _read(EXIM_LOG)
    bad += [l for l in ex.splitlines() if "DATA is never allowed" in l or "rejected DATA" in l]
    if bad:
        raise LabError("DATA reached a lab server:\n" + "\n".join(bad))


# --------------------------------------------------------------------------- raw clients
def dig(name, rtype="A", server=DNS, timeout=3):
    """(status, [(name, type, data)]) from dig in the namespace."""
    p = nsexec(["dig", "+time=%d" % timeout, "+tries=1", "@" + server, name, rtype],
               capture_output=True, text=True, timeout=timeout + 10)
    status = None
    m = re.search(r"status: (\w+)", p.stdout)
    if m:
        status = m.group(1)
    elif "timed out" in p.stdout or "no servers could be reached" in p.stdout:
        status = "TIMEOUT"
    answers = []
    sec = None
    for line in p.stdout.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            sec = "answer"
            continue
        if line.startswith(";;"):
            sec = None if line.strip() != ";;" else sec
            continue
        if sec == "answer" and line.strip():
            f = line.split(None, 4)
            answers.append((f[0].rstrip(".").lower(), f[3], f[4]))
    return status, answers


class Smtp:
    """A plain SMTP client for lab smoke tests, run inside the namespace via a helper
    process (this test process lives outside the namespace). Each call of talk() is one
    whole conversation: send commands one at a time, read each full (multi-line) reply."""

    HELPER = r'''
import json, socket, ssl, sys, time
ip, port, cmds, timeout, starttls_at = json.loads(sys.argv[1])
out = []
s = socket.create_connection((ip, port), timeout=timeout)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline(200000)
        if not l:
            lines.append(None); break
        t = l.decode("latin-1").rstrip("\r\n")
        lines.append(t)
        if len(t) < 4 or t[3] != "-":
            break
    return lines
try:
    out.append(["<", reply()])
    for c in cmds:
        if c == "!STARTTLS":
            s.sendall(b"STARTTLS\r\n"); out.append([">", ["STARTTLS"]])
            out.append(["<", reply()])
            ctx = ssl.create_default_context(); ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s, server_hostname=ip); f = s.makefile("rb")
            out.append(["tls", [s.version()]])
            continue
        s.sendall(c.encode() + b"\r\n"); out.append([">", [c]])
        out.append(["<", reply()])
except Exception as e:
    out.append(["error", [type(e).__name__ + ": " + str(e)]])
print(json.dumps(out))
'''

    @staticmethod
    def talk(ip, cmds, port=25, timeout=10):
        arg = json.dumps([ip, port, list(cmds), timeout, None])
        p = nsexec(["/usr/bin/python3", "-c", Smtp.HELPER, arg], capture_output=True,
                   text=True, timeout=timeout * (len(cmds) + 2) + 10)
        if p.returncode != 0:
            raise LabError("smtp helper failed: " + p.stderr)
        return json.loads(p.stdout)

    @staticmethod
    def replies(conv):
        """Only the server replies, each as its list of lines."""
        return [lines for d, lines in conv if d == "<"]

    @staticmethod
    def codes(conv):
        out = []
        for lines in Smtp.replies(conv):
            last = lines[-1]
            out.append(last[:3] if last else None)
        return out


# --------------------------------------------------------------------------- danted
SOCKS_USER = "mplabsocks"  # system user of the lab proxies' user/password method
SOCKS_LOCK = "/tmp/mplab-socks-user.lock"  # its password is machine-wide, not per namespace


def wait_listening(ip, port, secs=15):
    """True once something accepts TCP connections on ip:port inside the namespace."""
    probe = ("import socket,sys,time\nend=time.time()+%d\n"
             "while time.time()<end:\n"
             " try:\n  socket.create_connection(('%s',%d),1).close(); sys.exit(0)\n"
             " except OSError: time.sleep(0.1)\nsys.exit(1)\n" % (secs, ip, port))
    return nsexec(["/usr/bin/python3", "-c", probe]).returncode == 0


class Danted:
    """Debian's danted (SOCKS5) inside the namespace, one process per proxy, started and
    stopped by pid; the system user SOCKS_USER gets a fresh random password for the run
    (held under an exclusive lock, as the password is the machine's) and is locked again
    on stop. Usage: d = Danted("name"); d.start(...); ...; d.stop()."""

    def __init__(self, tag):
        import secrets
        self.dir = os.path.join(LAB, "dante-" + tag)
        self.procs = []
        self.password = "pw-" + secrets.token_hex(8)
        self._lock = None

    def begin(self):
        """Check danted and the user, take the lock, set the password. Fails, never skips."""
        import fcntl
        require_lab()
        if not os.path.exists("/usr/sbin/danted"):
            raise LabError("danted is missing: run scripts/lab-deps (dante-server)")
        if subprocess.run(["getent", "passwd", SOCKS_USER], capture_output=True).returncode:
            raise LabError("system user %s is missing: run scripts/lab-deps" % SOCKS_USER)
        self._lock = open(SOCKS_LOCK, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        subprocess.run(["chpasswd"], input="%s:%s\n" % (SOCKS_USER, self.password), text=True,
                       check=True)
        os.makedirs(self.dir, exist_ok=True)

    def start(self, name, ip, method, block25=False, external=None):
        """One danted on ip:1080 (method "username" or "none"); block25: a rule refusing
        port 25 (REP 2); external: the address it connects from (default ip)."""
        conf = os.path.join(self.dir, name + ".conf")
        rules = "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = 25 }\n" if block25 else ""
        with open(conf, "w") as f:
            f.write("logoutput: %s\ninternal: %s port = 1080\nexternal: %s\n"
                    "socksmethod: %s\nuser.privileged: root\nuser.unprivileged: nobody\n"
                    "client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n%s"
                    "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect }\n"
                    % (conf[:-5] + ".log", ip, external or ip, method, rules))
        with open(os.path.join(self.dir, name + ".out"), "w") as out:
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", NS, "/usr/sbin/danted", "-f", conf, "-N", "1",
                 "-p", os.path.join(self.dir, name + ".pid")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True))
        if not wait_listening(ip, 1080):
            raise LabError("danted on %s did not start: see %s" % (ip, self.dir))

    def url(self, ip, password=None, helo="", user=SOCKS_USER):
        return "socks5://%s%s:1080%s" % (
            "%s:%s@" % (user, password or self.password) if user else "", ip,
            "=" + helo if helo else "")

    def stop(self):
        """Stop every danted started (by pid), lock the user, release the lock."""
        import signal
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self._lock:
            subprocess.run(["usermod", "-L", SOCKS_USER], capture_output=True)
            self._lock.close()
            self._lock = None


# --------------------------------------------------------------------------- unittest
class LabCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        require_lab()

    def check(self, address, *extra, **kw):
        return check(address, *extra, **kw)

    def assertVerdict(self, r, verdict, reason):
        msg = "%s: got %s/%s, want %s/%s\n%s" % (
            r.get("email"), r.get("verdict"), r.get("reason"), verdict, reason,
            json.dumps({k: v for k, v in r.items() if k != "_run"}, indent=1)[:6000])
        self.assertEqual((r.get("verdict"), r.get("reason")), (verdict, reason), msg)

    def assertCommands(self, r, expected, ip=None):
        """The exact client commands (all of them, or those to one IP)."""
        self.assertEqual(client_commands(r, ip), expected,
                         "transcript:\n" + "\n".join(
                             "%s %s %s" % (t.get("ip"), t.get("dir"), t.get("line"))
                             for t in transcript(r)))

    def assertNoConnection(self, r):
        self.assertEqual(transcript(r), [], "expected no SMTP connection")


def main():
    unittest.main(verbosity=2)
