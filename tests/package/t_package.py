#!/usr/bin/python3
"""The Debian package, as a user gets it (needs root: CI runs as root). Builds
mailprobe_<version>_<arch>.deb with scripts/package, runs lintian (no error, no warning),
installs it with dpkg, and checks the installed program: `mailprobe version`,
`man -w`, the bash completion loading, `systemd-analyze verify` on the unit (installed,
not enabled), settings from /etc/mailprobe/config, the user's file, MAILPROBE_* and
flags in that order, an offline check using them; then `dpkg --purge` and nothing of
the package left on disk. The purge runs even when a check fails.
MP_SOURCE_DIR is the tree."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRC = os.path.abspath(os.environ.get("MP_SOURCE_DIR", "."))
ETC = "/etc/mailprobe/config"


def run(*args, env=None, check=True, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=900, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                     p.stdout[-2000:], p.stderr[-2000:]))
    return p


def installed():
    p = run("dpkg-query", "-W", "-f=${Status}", "mailprobe", check=False)
    return "install ok installed" in p.stdout or "config-files" in p.stdout


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert os.geteuid() == 0, "the package test installs a .deb: run it as root"
        assert not installed(), "a mailprobe package is already on this machine: not touching it"
        cls.tmp = tempfile.mkdtemp(prefix="mp-package-")
        out = run(os.path.join(SRC, "scripts/package"), cls.tmp + "/out").stdout
        cls.deb = out.strip().splitlines()[-1]
        cls.version = run("dpkg-parsechangelog", "-S", "Version", cwd=SRC).stdout.strip()
        cls.arch = run("dpkg", "--print-architecture").stdout.strip()
        cls.files = []
        try:
            run("dpkg", "-i", cls.deb)
            cls.files = run("dpkg", "-L", "mailprobe").stdout.splitlines()
        except BaseException:
            cls.purge()
            raise

    @classmethod
    def purge(cls):
        run("dpkg", "--purge", "mailprobe", check=False)

    @classmethod
    def tearDownClass(cls):
        cls.purge()
        for d in ("/var/lib/mailprobe", "/var/lib/private/mailprobe"):
            if os.path.islink(d):
                os.unlink(d)
            shutil.rmtree(d, ignore_errors=True)
        if getattr(cls, "made_private", False):
            shutil.rmtree("/var/lib/private", ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def user_env(self, **extra):
        home = os.path.join(self.tmp, "home")
        os.makedirs(home, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MAILPROBE_", "XDG_", "STATE_DIRECTORY"))}
        env.update(HOME=home, PATH="/usr/bin:/bin")
        env.update(extra)
        return env

    def test_0_name_and_lintian(self):
        self.assertEqual(os.path.basename(self.deb),
                         "mailprobe_%s_%s.deb" % (self.version, self.arch))
        p = run("lintian", "--fail-on", "error,warning", self.deb, check=False)
        tags = [l for l in p.stdout.splitlines() if re.match(r"^[EW]: ", l)]
        self.assertEqual((p.returncode, tags), (0, []), p.stdout + p.stderr)

    def test_version_man_completion(self):
        upstream = self.version.split("-")[0]
        self.assertEqual(run("/usr/bin/mailprobe", "version").stdout.strip(),
                         "mailprobe " + upstream)
        self.assertEqual(run("man", "-w", "mailprobe").stdout.strip(),
                         "/usr/share/man/man1/mailprobe.1.gz")
        for page, sect in (("mailprobe-check", "1"), ("mailprobe.conf", "5")):
            self.assertTrue(run("man", "-w", sect, page).stdout.strip())
        script = ("source /usr/share/bash-completion/completions/mailprobe; "
                  "COMP_WORDS=(mailprobe bulk --format ''); COMP_CWORD=3; _mailprobe; "
                  "echo ${COMPREPLY[*]}; COMP_WORDS=(mailprobe con); COMP_CWORD=1; "
                  "_mailprobe; echo ${COMPREPLY[*]}")
        out = run("bash", "-c", script, env=self.user_env()).stdout.splitlines()
        self.assertEqual(out, ["csv ndjson", "config"])
        self.assertIn("/usr/share/zsh/vendor-completions/_mailprobe", self.files)

    def test_unit(self):
        unit = "/lib/systemd/system/mailprobe.service"
        self.assertIn(unit, self.files)
        p = run("systemd-analyze", "verify", unit, check=False)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        # installed, not enabled, not started
        self.assertFalse(os.path.exists(
            "/etc/systemd/system/multi-user.target.wants/mailprobe.service"))
        self.assertFalse(os.path.exists("/var/lib/mailprobe"))

    def test_settings_precedence(self):
        self.assertIn(ETC, self.files)
        with open(ETC, "a") as f:
            f.write("helo = etc.test\nport = 2500\nper-server = 3\njson\n")
        xdg = os.path.join(self.tmp, "xdg")
        os.makedirs(xdg + "/mailprobe", exist_ok=True)
        with open(xdg + "/mailprobe/config", "w") as f:
            f.write("port = 2600\n")
        env = self.user_env(XDG_CONFIG_HOME=xdg, MAILPROBE_PER_SERVER="4",
                            MAILPROBE_OFFLINE="1")
        s = json.loads(run("mailprobe", "config", "--json", "--timeout", "9s",
                           env=env).stdout)["settings"]
        with open(ETC) as f:
            line = f.read().splitlines().index("helo = etc.test") + 1
        self.assertEqual(s["helo"], {"value": "etc.test", "source": "%s:%d" % (ETC, line)})
        self.assertEqual(s["port"]["value"], "2600")            # user file over /etc
        self.assertEqual(s["per-server"]["source"], "MAILPROBE_PER_SERVER")  # env over files
        self.assertEqual(s["timeout"]["source"], "command line")
        # the check itself: JSON output from /etc, offline from the environment
        p = run("mailprobe", "check", "alice@example.org", env=env, check=False)
        r = json.loads(p.stdout)
        self.assertEqual(r["reason"], "not_checked", p.stderr)
        # a flag still wins: --per-server 0 is refused as the flag's own error
        p = run("mailprobe", "check", "--per-server", "0", "a@b.test", env=env, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("check: --per-server", p.stderr)

    def test_zz_purge_leaves_nothing(self):
        self.assertTrue(self.files)
        # what systemd makes for DynamicUser= + StateDirectory= when the service runs
        type(self).made_private = not os.path.exists("/var/lib/private")
        os.makedirs("/var/lib/private/mailprobe", mode=0o700)
        open("/var/lib/private/mailprobe/jobs.sqlite", "w").close()
        os.symlink("private/mailprobe", "/var/lib/mailprobe")
        self.purge()
        self.assertFalse(installed())
        left = [f for f in self.files if os.path.lexists(f) and not os.path.isdir(f)]
        self.assertEqual(left, [])
        for d in ("/etc/mailprobe", "/var/lib/mailprobe", "/var/lib/private/mailprobe",
                  "/usr/share/doc/mailprobe"):
            self.assertFalse(os.path.lexists(d), d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
