#!/usr/bin/python3
"""Shell completion, driven as the shells drive it. bash: the script is sourced,
COMP_WORDS/COMP_CWORD set, _mailprobe called, COMPREPLY read. zsh: _arguments and
compadd are stubbed to print what the completion hands them. Both read the program's
own help, so the expected values come from `mailprobe ... --help` too.
MAILPROBE is the binary, MP_SOURCE_DIR the tree."""
import os
import pty
import re
import select
import signal
import subprocess
import shutil
import tempfile
import unittest

BIN = os.path.abspath(os.environ.get("MAILPROBE", "build/mailprobe"))
SRC = os.path.abspath(os.environ.get("MP_SOURCE_DIR", "."))
BASH = os.path.join(SRC, "completions/mailprobe.bash")
ZSH = os.path.join(SRC, "completions/_mailprobe")


def bash_complete(*words, cwd=None):
    """COMPREPLY for the command line `words` (the last one being completed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
              '_mailprobe; printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "-c", script, "bash", BASH, BIN] + list(words),
                       capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return [l for l in p.stdout.splitlines() if l]


def help_options(cmd):
    out = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(?<![\w./-])(--?[a-z][a-z0-9-]*)", out)) | {"--help"}


class Bash(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        os.mkdir(self.dir.name + "/outdir")
        for f in ("list.csv", "city.mmdb"):
            open(os.path.join(self.dir.name, f), "w").close()

    def test_commands(self):
        out = subprocess.run([BIN, "help"], capture_output=True, text=True).stdout
        listed = re.findall(r"(?m)^  ([a-z]+) ", out.split("commands:", 1)[1])
        self.assertEqual(bash_complete(""), listed)
        self.assertTrue({"check", "bulk", "serve", "config"} <= set(listed))
        self.assertEqual(bash_complete("ex"), ["explain"])

    def test_options_are_the_help_options(self):
        for cmd in ("check", "bulk", "serve", "jobs", "explain", "config"):
            self.assertEqual(set(bash_complete(cmd, "-")), help_options(cmd), cmd)
        self.assertEqual(bash_complete("check", "--greyl"), ["--greylist-wait"])

    def test_fixed_sets(self):
        self.assertEqual(bash_complete("bulk", "--format", ""), ["csv", "ndjson"])
        self.assertEqual(bash_complete("explain", "--stage", ""),
                         ["banner", "ehlo", "starttls", "mail", "rcpt"])
        self.assertEqual(bash_complete("check", "--log-format", "j"), ["json"])
        # "--format=nd" as readline splits it at '='
        self.assertEqual(bash_complete("bulk", "--format", "=", "nd"), ["ndjson"])
        self.assertEqual(bash_complete("bulk", "--format", "="), ["csv", "ndjson"])

    def test_files_where_files_are_wanted(self):
        d = self.dir.name
        self.assertEqual(bash_complete("bulk", "li", cwd=d), ["list.csv"])
        self.assertEqual(bash_complete("bulk", "-o", "li", cwd=d), ["list.csv"])
        self.assertEqual(bash_complete("check", "--geoip", "ci", cwd=d), ["city.mmdb"])
        self.assertEqual(bash_complete("bulk", "--split-by-verdict", "", cwd=d), ["outdir"])
        self.assertEqual(bash_complete("serve", "--store", "li", cwd=d), ["list.csv"])

    def test_nothing_where_nothing_can_be_guessed(self):
        d = self.dir.name
        self.assertEqual(bash_complete("check", "--helo", "", cwd=d), [])
        self.assertEqual(bash_complete("check", "li", cwd=d), [])  # addresses
        self.assertEqual(bash_complete("bulk", "--column", "", cwd=d), [])


class Zsh(unittest.TestCase):
    def specs(self, *words):
        script = ('_arguments() { print -rl -- "$@" }; compadd() { print -rl -- "${(@P)2}" }; '
                  'words=("$@"); CURRENT=$#; source %s' % ZSH)
        p = subprocess.run(["zsh", "-fc", script, "zsh", BIN] + list(words),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.splitlines()

    def test_commands(self):
        self.assertIn("serve", self.specs(""))

    def test_option_specs(self):
        s = self.specs("bulk", "--fo")
        self.assertIn("--format:csv|ndjson:(csv ndjson)", s)
        self.assertIn("-o:file:_files", s)
        self.assertIn("--split-by-verdict:directory:_files -/", s)
        self.assertIn("--offline", s)
        self.assertIn("*:input file:_files", s)
        opts = {l.split(":")[0] for l in s if l.startswith("-")} - {"-S"}
        self.assertEqual(opts, help_options("bulk"))
        self.assertIn("--stage:banner|ehlo|starttls|mail|rcpt:(banner ehlo starttls mail rcpt)",
                      self.specs("explain", ""))


def zsh_interactive(line, want):
    """Type `line` and two Tabs into an interactive zsh (on a pty) with compinit and
    our completion on fpath; return what the terminal shows once every string of
    `want` appeared after the line (or after 60 s, for the assertion to report)."""
    home = tempfile.mkdtemp()
    env = {"PATH": os.path.dirname(BIN) + ":/usr/bin:/bin", "TERM": "dumb", "HOME": home}
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/usr/bin/zsh", ["zsh", "-f", "-i"], env)
    try:
        setup = ('PS1="%%%% "; fpath=(%s $fpath); autoload -Uz compinit; compinit -u -D; '
                 'setopt nobeep; LISTMAX=0\n' % os.path.dirname(ZSH))
        os.write(fd, setup.encode())
        os.write(fd, (line + "\t\t").encode())
        out = b""
        for _ in range(600):  # a bound on waiting, not on speed
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
            tail = out.decode(errors="replace").split(line.split()[-1], 1)[-1]
            if all(w in tail for w in want):
                break
        return out.decode(errors="replace").replace("\r", "")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        shutil.rmtree(home, ignore_errors=True)


class ZshInteractive(unittest.TestCase):
    """The real completion system: compinit, _arguments, a Tab on a terminal."""

    def test_values_commands_options(self):
        for line, want in (("mailprobe bulk --format ", ["csv", "ndjson"]),
                           ("mailprobe explain --stage ", ["banner", "starttls", "rcpt"]),
                           ("mailprobe con", ["config"]),
                           ("mailprobe bulk --split-b", ["--split-by-verdict"])):
            screen = zsh_interactive(line, want)
            after = screen.split(line.split()[-1], 1)[-1]
            for w in want:
                self.assertIn(w, after, (line, screen[-600:]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
