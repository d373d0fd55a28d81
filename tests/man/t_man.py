#!/usr/bin/python3
"""The man pages against the program: every sub-command `mailprobe help` lists has a
page mailprobe-CMD(1) whose OPTIONS section names exactly the options `mailprobe CMD
--help` shows (both ways), mailprobe(1) lists exactly the commands, and groff -ww
warns about nothing; mailprobe(1) lists each verdict's reasons as src/verdict/verdict.c
defines them. MAILPROBE is the binary, MP_MAN_DIR the generated pages, MP_SOURCE_DIR
the tree."""
import os
import re
import subprocess
import unittest

BIN = os.environ.get("MAILPROBE", "build/mailprobe")
MAN = os.environ.get("MP_MAN_DIR", "build/man")
SRC = os.environ.get("MP_SOURCE_DIR", ".")
OPT = re.compile(r"(?<![\w./-])(--?[a-z][a-z0-9-]*)")
NO_PAGE = {"help", "version"}


def run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    return p


def commands():
    """The sub-commands in `mailprobe help`: the lines under "commands:"."""
    out = run(BIN, "help").stdout
    cmds, inside = [], False
    for line in out.splitlines():
        if line.startswith("commands:"):
            inside = True
        elif inside and re.match(r"^  [a-z]", line):
            cmds.append(line.split()[0])
    return cmds


def render(page):
    """The page as plain text: no hyphenation, long lines, no overstrike."""
    p = run("groff", "-man", "-Tascii", "-rHY=0", "-rLL=300n", "-P-cbou", page)
    return p.stdout


def section(text, name):
    m = re.search(r"(?ms)^%s\n(.*?)(?=^[A-Z][A-Z ]+\n|\Z)" % name, text)
    return m.group(1) if m else ""


class Pages(unittest.TestCase):
    def test_commands_found(self):
        cmds = commands()
        for c in ("check", "bulk", "serve", "jobs", "explain", "config"):
            self.assertIn(c, cmds)

    def test_groff_warns_about_nothing(self):
        pages = sorted(f for f in os.listdir(MAN) if re.search(r"\.[1-8]$", f))
        self.assertIn("mailprobe.1", pages)
        self.assertIn("mailprobe.conf.5", pages)
        for f in pages:
            p = run("groff", "-ww", "-man", "-Tutf8", "-z", os.path.join(MAN, f))
            self.assertEqual(p.returncode, 0, f)
            self.assertEqual(p.stderr, "", f)

    def test_mailprobe_1_lists_every_command(self):
        text = section(render(os.path.join(MAN, "mailprobe.1")), "COMMANDS")
        listed = set(re.findall(r"(?m)^ {7}([a-z]+)\b", text))
        self.assertEqual(listed, set(commands()))

    def test_verdicts_and_reasons_match_the_code(self):
        code = open(os.path.join(SRC, "src/verdict/verdict.c")).read()
        want = {}
        for reason, verdict in re.findall(r'\[VR_\w+\] = \{"(\w+)", VD_(\w+)', code):
            want.setdefault(verdict.lower(), set()).add(reason)
        self.assertGreater(sum(len(v) for v in want.values()), 20)
        text = section(render(os.path.join(MAN, "mailprobe.1")), "VERDICTS AND REASONS")
        got = {}
        for verdict, body in re.findall(r"(?ms)^ {7}(\w+)\n(.*?)(?=^ {7}\w|\Z)", text):
            got[verdict] = set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*\b",
                                           body.split("\n\n")[0]))
        for verdict, reasons in want.items():
            self.assertEqual(got.get(verdict), reasons, verdict)

    def test_options_match_help(self):
        for cmd in commands():
            if cmd in NO_PAGE:
                continue
            with self.subTest(cmd=cmd):
                page = os.path.join(MAN, "mailprobe-%s.1" % cmd)
                self.assertTrue(os.path.exists(page), "no man page for '%s': add "
                                "man/mailprobe-%s.1.scd" % (cmd, cmd))
                h = run(BIN, cmd, "--help")
                self.assertEqual(h.returncode, 0)
                in_help = set(OPT.findall(h.stdout)) - {"--help"}
                in_page = set(OPT.findall(section(render(page), "OPTIONS"))) - {"--help"}
                self.assertTrue(in_help)
                self.assertEqual(in_help - in_page, set(), "in --help, not in the page")
                self.assertEqual(in_page - in_help, set(), "in the page, not in --help")


if __name__ == "__main__":
    unittest.main(verbosity=2)
