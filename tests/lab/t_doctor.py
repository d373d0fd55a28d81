#!/usr/bin/python3
"""`mailprobe doctor` (issue 14) against the lab: each of the eight checks ok, warn and
FAIL, the JSON form, the exit codes, and the quick checks of bulk, serve (GET /v1/doctor)
and check (the default HELO from the PTR).

Identities are local addresses bound with --source (tests/lab/zones/): 127.0.7.10 good
(PTR good.doctor.test, forward-confirmed, SPF), .11 no PTR, .12 PTR not confirmed, .13 on
the zen.dnsbl.test blocklist (PBL code). The myip server (127.0.0.57) answers with the
client's address; 127.0.0.58 answers 127.255.255.254 to everything (a list refusing a
public resolver); lies.dnsbl.test lists everything. Reference MX: Exim (echoes the
client address in its EHLO reply), the scripted 554 banner, a refused address and a
listener whose full accept queue drops SYNs (a timeout). Nothing outside the namespace is
contacted: every reference host, list and resolver is given on the command line.
"""
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

GOOD, NOPTR, UNCONFIRMED, LISTED = "127.0.7.10", "127.0.7.11", "127.0.7.12", "127.0.7.13"
DROP = ("127.0.7.250", 2525)
BASE = ["--dns", labkit.DNS, "--myip-dns", "127.0.0.57", "--timeout", "1s",
        "--dnsbl", "zen.dnsbl.test", "--dnsbl", "bl.dnsbl.test"]
EXIM_MX = ["--reference-mx", "mx.exim.test"]
IDS = ["config", "egress", "port25", "rdns", "helo", "dnsbl", "mail_from", "ehlo"]


class Doc:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.json = json.loads(proc.stdout) if proc.stdout.startswith("{") else None

    def report(self, i=0):
        return self.json["reports"][i]

    def check(self, cid, i=0):
        for c in self.report(i)["checks"]:
            if c["id"] == cid:
                return c
        raise AssertionError("no check %s" % cid)

    def __repr__(self):
        return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.stdout, self.stderr)


def doctor(*args, base=True, mx=True):
    argv = labkit.mailprobe_argv_prefix() + ["doctor"] + (BASE if base else [])
    argv += (EXIM_MX if mx else []) + list(args)
    p = labkit.nsexec(argv, capture_output=True, text=True, timeout=120)
    labkit.assert_clean_stderr(p.stderr)
    return Doc(p)


@contextlib.contextmanager
def dropping_listener():
    """A listener on DROP whose accept queue is full, so the kernel drops further SYNs (a
    filtered port); started for the block, then stopped (its own process, by its pipe)."""
    helper = ("import socket, sys, time\n"
              "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind((%r, %d)); s.listen(0)\n"
              "c = socket.create_connection((%r, %d))\n"
              "print('ready', flush=True); sys.stdin.read()\n" % (DROP + DROP))
    p = labkit.nspopen(["/usr/bin/python3", "-c", helper], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise labkit.LabError("the dropping listener on %s:%d did not start" % DROP)
        yield
    finally:
        p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()


class DoctorCase(labkit.LabCase):
    def assertLevels(self, d, want, i=0):
        """want: {check id: status}; the others must be ok."""
        got = {c["id"]: c["status"] for c in d.report(i)["checks"]}
        exp = {cid: want.get(cid, "ok") for cid in IDS}
        self.assertEqual(got, exp, repr(d))
        for c in d.report(i)["checks"]:
            if c["status"] in ("warn", "fail"):
                self.assertTrue(c["fix"], "%s without a fix: %r" % (c["id"], d))


class Good(DoctorCase):
    def test_good_identity_all_ok(self):
        mark = labkit.exim_mark()
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test",
                   "--from", "verify@from.doctor.test")
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {})
        r = d.report()
        self.assertEqual(d.json["status"], "ok")
        self.assertEqual((r["source"], r["local_address"], r["public_address"], r["egress"]),
                         (GOOD, GOOD, GOOD, GOOD))
        self.assertEqual((r["ptr"], r["helo"], r["helo_from_ptr"]),
                         ("good.doctor.test", "good.doctor.test", False))
        self.assertEqual(r["echoed_address"], GOOD)
        self.assertIn("SPF pass", d.check("helo")["message"])
        self.assertIn("include:_spf.doctor.test", " ".join(d.check("mail_from")["details"]))
        self.assertIn("not listed (2 lists", d.check("dnsbl")["message"])
        # EHLO then QUIT, nothing else: Exim logs the commands of a session without MAIL
        log = mark.new_text()
        self.assertIn("no MAIL in SMTP connection from [%s]" % GOOD, log)
        self.assertRegex(log, r"C=EHLO,QUIT\b")

    def test_text_form(self):
        d = doctor("--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 0, repr(d))
        lines = d.stdout.splitlines()
        self.assertTrue(lines[0].startswith("mailprobe doctor: source 127.0.7.10"), d)
        self.assertEqual([l.split()[0] for l in lines[1:9]], ["ok"] * 8, repr(d))
        self.assertEqual([l.split()[1] for l in lines[1:9]], [str(i) for i in range(1, 9)])
        self.assertEqual(lines[-1], "result: ok")

    def test_helo_defaults_to_confirmed_ptr(self):
        d = doctor("--json", "--source", GOOD, "--from", "verify@from.doctor.test")
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {})
        self.assertEqual((d.report()["helo"], d.report()["helo_from_ptr"]),
                         ("good.doctor.test", True))
        self.assertIn("forward-confirmed PTR", d.check("config")["message"])

    def test_two_sources_two_reports(self):
        d = doctor("--json", "--source", GOOD, "--source", NOPTR, "--helo", "good.doctor.test",
                   "--from", "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertEqual([r["source"] for r in d.json["reports"]], [GOOD, NOPTR])
        self.assertEqual([r["status"] for r in d.json["reports"]], ["ok", "fail"])
        self.assertEqual(d.json["status"], "fail")


class Identity(DoctorCase):
    def test_no_ptr(self):
        d = doctor("--json", "--source", NOPTR, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        # the HELO resolves to .10 (warn) and its SPF -all fails for .11 (FAIL);
        # the MAIL FROM SPF ends in ~all (softfail: warn)
        self.assertLevels(d, {"rdns": "fail", "helo": "fail", "mail_from": "warn"})
        self.assertIn("no PTR for 127.0.7.11", d.check("rdns")["message"])
        self.assertIn("not to 127.0.7.11", d.check("helo")["message"])
        self.assertIn("SPF fail", d.check("helo")["message"])
        self.assertIn("softfail", d.check("mail_from")["message"])
        # the server saw .11, which is the egress address too
        self.assertEqual(d.report()["echoed_address"], NOPTR)
        # no --helo and no confirmed PTR: the fallback name, with a warning
        d = doctor("--json", "--source", NOPTR, "--from", "verify@from.doctor.test")
        self.assertFalse(d.report()["helo_from_ptr"])
        self.assertIn("no forward-confirmed PTR", " ".join(d.check("config")["details"]))
        self.assertIn(d.check("config")["status"], ("warn", "fail"))

    def test_ptr_not_confirmed(self):
        d = doctor("--json", "--source", UNCONFIRMED, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertEqual(d.check("rdns")["status"], "fail", repr(d))
        self.assertIn("unconfirmed.doctor.test does not resolve back to 127.0.7.12",
                      d.check("rdns")["message"])
        self.assertIn("PTR unconfirmed.doctor.test -> 127.0.7.99", d.check("rdns")["details"])

    def test_ptr_differs_from_helo(self):
        d = doctor("--json", "--source", GOOD, "--helo", "nospf.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.check("rdns")["status"], "warn", repr(d))
        self.assertIn("--helo good.doctor.test", d.check("rdns")["fix"])

    def test_helo_without_address(self):
        d = doctor("--json", "--source", GOOD, "--helo", "noa.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"rdns": "warn", "helo": "fail"})
        self.assertIn("has no A/AAAA record", d.check("helo")["message"])

    def test_helo_spf_not_covering(self):
        d = doctor("--json", "--source", GOOD, "--helo", "nospf.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"rdns": "warn", "helo": "fail"})
        self.assertIn("resolves to 127.0.7.10; SPF fail", d.check("helo")["message"])
        self.assertIn("cover 127.0.7.10", d.check("helo")["fix"])

    def test_helo_configuration(self):
        d = doctor("--json", "--source", GOOD, "--helo", "localhost", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertEqual(d.check("config")["status"], "fail")
        self.assertIn("localhost", d.check("config")["message"])
        d = doctor("--json", "--source", GOOD, "--helo", "mx.google.com", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.check("config")["status"], "fail")
        self.assertIn("large provider", d.check("config")["message"])

    def test_null_sender(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from", "<>")
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {"config": "warn", "mail_from": "skip"})
        self.assertIn("null sender", " ".join(d.check("config")["details"]))
        self.assertEqual(d.report()["from"], "")

    def test_mail_from_without_mx(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "x@nomx.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"mail_from": "fail"})
        self.assertIn("nomx.doctor.test has no MX", d.check("mail_from")["message"])


class Blocklists(DoctorCase):
    def test_listed_with_pbl_meaning(self):
        d = doctor("--json", "--source", LISTED, "--helo", "listed.doctor.test", "--from",
                   "verify@from.doctor.test")
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"dnsbl": "fail"})
        det = d.check("dnsbl")["details"]
        self.assertIn("zen.dnsbl.test: LISTED: 127.0.0.11 PBL", det[0])
        self.assertIn("https://www.spamhaus.org/query/ip/127.0.7.13", det[0])
        self.assertEqual(det[1], "bl.dnsbl.test: not listed")
        self.assertIn("should not send mail directly", d.check("dnsbl")["fix"])

    def test_resolver_refused(self):
        d = doctor("--json", "--source", LISTED, "--helo", "listed.doctor.test", "--from",
                   "verify@from.doctor.test", "--dnsbl-dns", "127.0.0.58")
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {"dnsbl": "warn"})
        for line in d.check("dnsbl")["details"]:
            self.assertIn("refused via this resolver", line)
            self.assertIn("127.255.255.254", line)
            self.assertNotIn("LISTED", line)

    def test_lying_list(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--dnsbl", "lies.dnsbl.test")
        self.assertEqual(d.check("dnsbl")["status"], "warn", repr(d))
        self.assertIn("lies.dnsbl.test: 127.0.0.1 is listed", d.check("dnsbl")["details"][2])

    def test_list_without_test_entry(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--dnsbl", "nolist.dnsbl.test")
        self.assertEqual(d.check("dnsbl")["status"], "warn", repr(d))
        self.assertIn("test entry 127.0.0.2 is not listed", d.check("dnsbl")["details"][2])


class Reachability(DoctorCase):
    def test_port_refused(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--reference-mx", "127.0.1.99", mx=False)
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"port25": "fail", "ehlo": "fail"})
        self.assertIn("1 refused", d.check("port25")["message"])
        self.assertIn("127.0.1.99 [127.0.1.99]:25 refused", d.check("port25")["details"][0])
        self.assertIn("587/465", d.check("port25")["fix"])

    def test_port_drops(self):
        with dropping_listener():
            d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                       "verify@from.doctor.test", "--reference-mx", "%s:%d" % DROP, mx=False)
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"port25": "fail", "ehlo": "fail"})
        self.assertIn("1 timeout", d.check("port25")["message"])
        self.assertIn("filtered", d.check("port25")["fix"])

    def test_one_of_two_reachable(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--reference-mx", "127.0.1.99")
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {"port25": "warn"})
        self.assertIn("1 of 2", d.check("port25")["message"])

    def test_banner_block(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--reference-mx", "mx.banner554.script.test",
                   mx=False)
        self.assertEqual(d.rc, 1, repr(d))
        self.assertLevels(d, {"ehlo": "fail"})
        self.assertIn("refused this client in its banner: 554", d.check("ehlo")["message"])
        self.assertIn("< 554 banner554.script.test: no SMTP service for you",
                      d.check("ehlo")["details"])

    def test_no_echo_and_egress_unknown(self):
        # Postfix does not echo the client address; the myip server is silent
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--reference-mx", "mx.postfix.test",
                   "--myip-dns", "127.0.0.56", mx=False)
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {"egress": "warn"})
        self.assertIn("public address not found", d.check("egress")["message"])
        self.assertIn("does not echo", d.check("ehlo")["message"])
        self.assertIsNone(d.report()["public_address"])


    def test_myip_none(self):
        d = doctor("--json", "--source", GOOD, "--helo", "good.doctor.test", "--from",
                   "verify@from.doctor.test", "--myip-dns", "none")
        self.assertEqual(d.rc, 0, repr(d))
        self.assertEqual(d.check("egress")["status"], "warn", repr(d))   # 127/8 is private
        self.assertIn("not looked up (--myip-dns none)", d.check("egress")["message"])
        self.assertEqual((d.report()["public_address"], d.report()["egress"]), (None, GOOD))
        self.assertEqual(d.check("rdns")["status"], "ok")


class Usage(DoctorCase):
    def test_usage_errors(self):
        for args, msg in ((["--source", "nope"], "--source"),
                          (["--dnsbl", "nodot"], "--dnsbl"),
                          (["--reference-mx", "a b"], "--reference-mx"),
                          (["--timeout", "soon"], "--timeout"),
                          (["--dns", "not-an-ip"], "does not parse"),
                          (["extra"], "unexpected argument")):
            d = doctor(*args, base=False, mx=False)
            self.assertEqual(d.rc, 2, "%s: %r" % (args, d))
            self.assertIn(msg, d.stderr)
            self.assertEqual(d.stdout, "")

    def test_config_file_keys(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write("# doctor settings shared with check/bulk/serve\n"
                    "dns = %s\nmyip-dns = 127.0.0.57\ntimeout = 1s\n"
                    "reference-mx = mx.exim.test\ndnsbl = zen.dnsbl.test\n"
                    "dnsbl-dns = 127.0.0.58\nsource = %s\nhelo = good.doctor.test\n"
                    "from = verify@from.doctor.test\n" % (labkit.DNS, GOOD))
            f.flush()
            d = doctor("--json", "--config", f.name, base=False, mx=False)
        self.assertEqual(d.rc, 0, repr(d))
        self.assertLevels(d, {"dnsbl": "warn"})   # the refusing resolver of the file
        self.assertEqual(d.report()["source"], GOOD)
        self.assertEqual(d.check("dnsbl")["details"][0][:15], "zen.dnsbl.test:")

    def test_help(self):
        d = doctor("--help", base=False, mx=False)
        self.assertEqual(d.rc, 0)
        self.assertIn("--reference-mx", d.stdout)


class Startup(DoctorCase):
    """bulk, serve and check run the quick checks (1, 2, 4, 5) at start, for the address
    the engine uses (not --source: the engine does not bind yet). In the namespace that
    is 127.0.0.1, whose PTR probe.lab.test is forward-confirmed; the "refusing" stub as
    myip server makes the egress 127.255.255.254, which has no PTR."""

    ENGINE = ["--dns", labkit.DNS, "--timeout", "3s", "--allow-private-mx",
              "--from", labkit.FROM]
    GOOD_MYIP = ["--myip-dns", "127.0.0.57"]
    NOPTR_MYIP = ["--myip-dns", "127.0.0.58"]

    def run_check(self, *extra):
        argv = labkit.mailprobe_argv_prefix() + ["check", "--json", "--trace",
                                                 "--no-catch-all-probe"]
        p = labkit.nsexec(argv + self.ENGINE + list(extra) + ["alice@exim.test"],
                          capture_output=True, text=True, timeout=120)
        labkit.assert_clean_stderr(p.stderr)
        return p, json.loads(p.stdout.splitlines()[0])

    def test_check_takes_helo_from_ptr(self):
        p, r = self.run_check(*self.GOOD_MYIP)
        self.assertEqual(labkit.client_commands(r)[0], "EHLO probe.lab.test", p.stderr)
        self.assertNotIn("warning", p.stderr)
        # with --source the engine sends from that address: its PTR is the HELO
        p, r = self.run_check("--source", GOOD, *self.GOOD_MYIP)
        self.assertEqual(labkit.client_commands(r)[0], "EHLO good.doctor.test", p.stderr)
        self.assertNotIn("warning", p.stderr)
        # without a confirmed PTR: this host's name, and a warning
        p, r = self.run_check(*self.NOPTR_MYIP)
        self.assertIn("no --helo, and 127.255.255.254 has no forward-confirmed PTR", p.stderr)
        self.assertEqual(labkit.client_commands(r)[0], "EHLO " + socket.gethostname())
        # a HELO given wins, with no look-up and no warning
        p, r = self.run_check("--helo", "given.lab.test", *self.NOPTR_MYIP)
        self.assertEqual(labkit.client_commands(r)[0], "EHLO given.lab.test")
        self.assertNotIn("warning", p.stderr)

    def test_bulk_warns(self):
        with tempfile.TemporaryDirectory() as tmp:
            inp = os.path.join(tmp, "in.csv")
            with open(inp, "w") as f:
                f.write("email\nalice@exim.test\n")
            argv = labkit.mailprobe_argv_prefix() + [
                "bulk", inp, "-o", os.path.join(tmp, "out.csv"), "--no-progress",
                "--store", os.path.join(tmp, "jobs.db"), "--helo", "good.doctor.test"]
            p = labkit.nsexec(argv + self.ENGINE + self.NOPTR_MYIP, capture_output=True,
                              text=True, timeout=120)
            labkit.assert_clean_stderr(p.stderr)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("mailprobe: doctor: FAIL Reverse DNS: no PTR for 127.255.255.254",
                          p.stderr)
            self.assertIn("mailprobe: doctor: FAIL HELO name: HELO good.doctor.test resolves "
                          "to 127.0.7.10, not to 127.255.255.254; SPF fail", p.stderr)
            with open(os.path.join(tmp, "out.csv")) as f:
                self.assertIn("deliverable", f.read())   # the job ran all the same

    def serve(self, tmp, *extra):
        """Start serve in the namespace; returns (process, stderr file, port)."""
        err = open(os.path.join(tmp, "err"), "w+")
        argv = labkit.mailprobe_argv_prefix() + [
            "serve", "--listen", "127.0.0.1:0", "--store", os.path.join(tmp, "jobs.db")]
        p = labkit.nspopen(argv + list(extra), stdout=subprocess.DEVNULL, stderr=err,
                           text=True)
        for _ in range(600):
            err.seek(0)
            text = err.read()
            if "serving on http://127.0.0.1:" in text:
                return p, err, int(text.split("serving on http://127.0.0.1:")[1].split("/")[0])
            if p.poll() is not None:
                break
            time.sleep(0.1)
        p.kill()
        p.wait()
        err.close()
        raise labkit.LabError("serve did not start:\n" + text)

    def stop(self, p, err):
        p.terminate()
        p.wait(timeout=60)
        err.seek(0)
        text = err.read()
        err.close()
        labkit.assert_clean_stderr(text)
        return text

    @staticmethod
    def get(url):
        """(status, body) of a GET from inside the namespace."""
        code = ("import sys, urllib.request, urllib.error\n"
                "try:\n"
                "    r = urllib.request.urlopen(sys.argv[1], timeout=30)\n"
                "    print(r.status, r.read().decode())\n"
                "except urllib.error.HTTPError as e:\n"
                "    print(e.code, e.read().decode())")
        out = labkit.nsexec(["/usr/bin/python3", "-c", code, url], capture_output=True,
                            text=True, timeout=60)
        status, _, body = out.stdout.partition(" ")
        return int(status), body

    def test_serve_exposes_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            p, err, port = self.serve(tmp, *(self.ENGINE + self.GOOD_MYIP))
            try:
                status, body = self.get("http://127.0.0.1:%d/v1/doctor" % port)
            finally:
                text = self.stop(p, err)
        self.assertEqual(status, 200, body)
        rep = json.loads(body)
        self.assertEqual(rep["status"], "warn", body)
        r = rep["reports"][0]
        self.assertEqual((r["egress"], r["ptr"], r["helo"], r["helo_from_ptr"]),
                         ("127.0.0.1", "probe.lab.test", "probe.lab.test", True))
        got = {c["id"]: c["status"] for c in r["checks"]}
        self.assertEqual(got, {"config": "ok", "egress": "ok", "port25": "skip",
                               "rdns": "ok", "helo": "warn", "dnsbl": "skip",
                               "mail_from": "skip", "ehlo": "skip"})
        # probe.lab.test has no SPF record: a warning, printed at start too
        self.assertIn("SPF none", d_msg(r, "helo"))
        self.assertIn("mailprobe: doctor: warn HELO name:", text)

    def test_serve_offline_has_no_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            p, err, port = self.serve(tmp, "--offline")
            try:
                status, body = self.get("http://127.0.0.1:%d/v1/doctor" % port)
            finally:
                text = self.stop(p, err)
        self.assertEqual(status, 404, body)
        self.assertIn("not_found", body)
        self.assertNotIn("doctor:", text)


def d_msg(report, cid):
    return [c for c in report["checks"] if c["id"] == cid][0]["message"]


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
