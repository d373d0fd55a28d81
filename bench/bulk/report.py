#!/usr/bin/python3
"""One bench run's figures as a JSON line.

Usage: report.py NAME INPUT OUTPUT M TIMEFILE STDERRFILE PROXYLOG PROXYOFF POSTFIXLOG PFOFF
  - every input row present in the output, in order (email column compared row by row)
  - accuracy against the lab's truth (dNNNNN.bench: u0..u(ceil(M/2)-1) exist; nNNNNN.bench
    has a null MX: undeliverable), when M > 0
  - wall, user+sys CPU and peak RSS from /usr/bin/time -v; mailprobe's own summary line
  - sessions and max concurrent sessions per MX IP from the proxy log; Postfix
    "connect from" lines (the proxy's connections to Postfix); from Postfix's
    "disconnect from" lines: transactions and RCPTs per session, the most refused
    commands one session took (what smtpd's error limits count), "too many errors" lines
"""
import csv
import json
import re
import subprocess
import sys

name, inp, out, m, timef, errf, plog, poff, pflog, pfoff = sys.argv[1:11]
m = int(m)
r = {"name": name}

with open(inp, newline="") as f:
    rin = list(csv.reader(f))
try:
    with open(out, newline="") as f:
        rout = list(csv.reader(f))
except OSError:
    rout = []
r["input_rows"] = len(rin) - 1
r["output_rows"] = len(rout) - 1
ok = len(rin) == len(rout) and all(a[0] == b[0] for a, b in zip(rin, rout))
r["all_rows_in_order"] = ok
if rout:
    head = rout[0]
    iv = head.index("verdict")
    right = wrong = other = 0
    verdicts = {}
    for row in rout[1:]:
        v = row[iv]
        verdicts[v] = verdicts.get(v, 0) + 1
        local, dom = row[0].split("@")
        if dom.startswith("n"):
            truth = "undeliverable"
        else:
            truth = "deliverable" if int(local[1:]) < (m + 1) // 2 else "undeliverable"
        if v == truth:
            right += 1
        elif v in ("deliverable", "undeliverable"):
            wrong += 1
        else:
            other += 1
    r["verdicts"] = verdicts
    r["accuracy"] = {"right": right, "wrong": wrong, "not_decided": other}

t = open(timef).read()
def tv(key):
    mm = re.search(re.escape(key) + r":\s*(\S+)", t)
    return mm.group(1) if mm else None
user, sys_ = float(tv("User time (seconds)")), float(tv("System time (seconds)"))
wall = tv("Elapsed (wall clock) time (h:mm:ss or m:ss)")
secs = 0.0
for part in wall.split(":"):
    secs = secs * 60 + float(part)
rows = max(r["input_rows"], 1)
r["wall_s"] = round(secs, 2)
r["rows_per_s"] = round(rows / secs, 1)
r["cpu_s"] = round(user + sys_, 2)
r["cpu_s_per_1000"] = round((user + sys_) / rows * 1000, 4)
r["cpu_us_per_address"] = round((user + sys_) / rows * 1e6, 1)
r["peak_rss_mb"] = round(int(tv("Maximum resident set size (kbytes)")) / 1024, 1)
r["exit"] = tv("Exit status")

err = open(errf).read()
mm = re.search(r"sessions opened (\d+), RCPTs (\d+), catch-all probes (\d+), retries (\d+)", err)
if mm:
    r["mailprobe_sessions"], r["rcpts"], r["catch_all_probes"], r["retries"] = map(int, mm.groups())
mm = re.search(r"done: (\d+) rows in ([\d.]+) s, (\d+) addresses/s", err)
if mm:
    r["mailprobe_summary"] = mm.group(0)

mm = re.search(r"batches (\d+) \((\d+) on a reused session\), most refusals in one "
               r"session (\d+), most sessions open at once to one server address (\d+)", err)
if mm:
    (r["batches"], r["batches_on_reused_sessions"], r["mailprobe_max_refusals"],
     r["mailprobe_max_per_ip"]) = map(int, mm.groups())

here = sys.argv[0].rsplit("/", 1)[0]
r["proxy"] = json.loads(subprocess.check_output([sys.executable, here + "/proxylog.py", plog, poff]))
n = 0
sess = []  # per smtpd session: (MAIL commands, RCPT commands, refused commands)
too_many = 0
with open(pflog, "rb") as f:
    f.seek(int(pfoff))
    for line in f:
        if b"]: connect from " in line:
            n += 1
        elif b"too many errors" in line:
            too_many += 1
        elif b"]: disconnect from " in line:
            st = dict(kv.split("=", 1) for kv in line.decode("latin-1").split()
                      if "=" in kv and kv.split("=", 1)[0].isalpha())
            def total(k):
                return int(st.get(k, "0").split("/")[-1])
            refused = sum(int(v.split("/")[1]) - int(v.split("/")[0])
                          for k, v in st.items() if "/" in v and k != "commands")
            sess.append((total("mail"), total("rcpt"), refused))
r["postfix_connects"] = n
# what the server saw: transactions and RCPTs per session, refusals (Postfix's error count)
if sess:
    r["postfix_sessions"] = len(sess)
    r["transactions_per_session"] = round(sum(s[0] for s in sess) / len(sess), 2)
    r["rcpts_per_session"] = round(sum(s[1] for s in sess) / len(sess), 2)
    r["max_refusals_one_session"] = max(s[2] for s in sess)
r["postfix_too_many_errors"] = too_many
print(json.dumps(r))
