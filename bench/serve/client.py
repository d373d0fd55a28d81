#!/usr/bin/python3
"""HTTP clients for bench/serve/run.sh (stdlib only). Each sub-command prints one JSON object.

  client.py addrs OUT N
      N addresses, one a line, seeded: first.last / firstlast / f.last / first_NN local
      parts on a mix of free-mail domains (40 %) and ordinary company-like domains (60 %).
  client.py warm HOST PORT FILE
      GET /v1/check?email=A once for every address of FILE on one keep-alive connection,
      so that the server's result cache holds them all; every answer must be 200.
  client.py metrics HOST PORT
      the /v1/check counters of /metrics (requests, cached, pending).
  client.py idle PID HOST PORT N HOLD_S
      Opens N TCP connections to the server, sends one "GET /healthz" (HTTP/1.1,
      keep-alive) on each and reads its answer, then holds them all open HOLD_S seconds
      while sampling the server's /proc/PID/status (VmRSS, VmHWM) and open fds every
      0.5 s; then closes them. RSS "before" is taken after one warm-up request on a
      connection of its own (closed), before the N connections.
  client.py job PID HOST PORT CSV M OUTDIR [POLL_S]
      POST CSV to /v1/jobs (Content-Type text/csv), poll GET /v1/jobs/ID every POLL_S
      (default 1) seconds until done (the time each status answer took is reported), download GET /v1/jobs/ID/results (CSV) to OUTDIR/results.csv, check
      that every input row is there in order and the verdicts against the bench lab's
      truth (u0..u(ceil(M/2)-1) exist), and report the times and the server's CPU and
      peak RSS (/proc/PID).
"""
import csv
import http.client
import json
import os
import random
import re
import socket
import sys
import time
import urllib.parse

CLK = os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    r = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                r[k] = int(v.split()[0])  # kB
    return r


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def addrs(out, n):
    rnd = random.Random(7)
    first = ["anna", "ben", "carla", "david", "emma", "felix", "grace", "hugo", "ines",
             "jonas", "karin", "lucas", "maria", "noah", "olga", "paul", "rosa", "simon",
             "tina", "victor", "wei", "yusuf", "zoe", "omar", "lena", "marco", "sofia"]
    last = ["smith", "muller", "garcia", "rossi", "dubois", "kowalski", "nguyen", "silva",
            "jensen", "novak", "schmidt", "martin", "lopez", "bianchi", "petrov", "kim"]
    free = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "web.de",
            "orange.fr", "free.fr", "icloud.com", "proton.me"]
    comp = ["%s-%s.%s" % (rnd.choice(["acme", "nordic", "blue", "delta", "urban", "alpine"]),
                          rnd.choice(["widgets", "logistics", "labs", "consulting", "foods"]),
                          rnd.choice(["com", "de", "fr", "io", "co.uk", "nl"]))
            for _ in range(60)]
    seen = set()
    with open(out, "w") as f:
        while len(seen) < n:
            fn, ln = rnd.choice(first), rnd.choice(last)
            local = rnd.choice(["%s.%s" % (fn, ln), fn + ln, "%s.%s" % (fn[0], ln),
                                "%s_%02d" % (fn, rnd.randrange(100))])
            a = "%s@%s" % (local, rnd.choice(free) if rnd.random() < 0.4 else rnd.choice(comp))
            if a not in seen:
                seen.add(a)
                f.write(a + "\n")
    print(json.dumps({"addresses": n, "file": out}))


def warm(host, port, path):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    n = bad = 0
    t0 = time.monotonic()
    for a in open(path).read().split():
        c.request("GET", "/v1/check?email=" + urllib.parse.quote(a, safe="@"))
        r = c.getresponse()
        r.read()
        n += 1
        bad += r.status != 200
    print(json.dumps({"warmed": n, "non_200": bad, "s": round(time.monotonic() - t0, 2)}))
    return 1 if bad else 0


def metrics(host, port):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    r = {}
    for k in ("any", "cached", "pending"):
        m = re.search(r'mailprobe_api_check_requests_total\{answer="%s"\} (\d+)' % k, text)
        r[k] = int(m.group(1)) if m else None
    print(json.dumps(r))


def healthz_once(host, port):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def read_reply(s):
    """One HTTP reply (headers + Content-Length body) from socket s; its status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise OSError("closed before the reply")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    need = int(m.group(1)) if m else 0
    while len(body) < need:
        d = s.recv(4096)
        if not d:
            raise OSError("closed in the body")
        body += d
    return int(head.split(b" ", 2)[1])


def idle(pid, host, port, n, hold):
    pid, port, n, hold = int(pid), int(port), int(n), float(hold)
    r = {"connections_asked": n, "hold_s": hold}
    healthz_once(host, port)
    time.sleep(0.3)
    before = proc_status(pid)
    r["rss_before_kb"], r["hwm_before_kb"], r["fds_before"] = before["VmRSS"], before["VmHWM"], nfds(pid)
    socks, bad = [], 0
    t0 = time.monotonic()
    req = ("GET /healthz HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n\r\n" % (host, port)).encode()
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(req)
        if read_reply(s) != 200:
            bad += 1
        socks.append(s)
    r["open_s"] = round(time.monotonic() - t0, 2)
    r["non_200"] = bad
    rss, fds = [], []
    end = time.monotonic() + hold
    while time.monotonic() < end:
        st = proc_status(pid)
        rss.append(st["VmRSS"])
        fds.append(nfds(pid))
        time.sleep(0.5)
    # still open and still served after the hold? one more request on the first one
    socks[0].sendall(req)
    r["first_conn_still_served"] = read_reply(socks[0]) == 200
    st = proc_status(pid)
    r["rss_with_kb"] = max(rss)
    r["rss_with_min_kb"] = min(rss)
    r["hwm_with_kb"] = st["VmHWM"]
    r["server_fds_with"] = max(fds)
    r["per_connection_kb"] = round((max(rss) - before["VmRSS"]) / n, 2)
    for s in socks:
        s.close()
    time.sleep(1.5)
    r["rss_after_close_kb"] = proc_status(pid)["VmRSS"]
    r["server_fds_after_close"] = nfds(pid)
    print(json.dumps(r))
    return 0


def job(pid, host, port, path, m, outdir, poll_s="1"):
    pid, m, poll_s = int(pid), int(m), float(poll_s)
    r = {"poll_s": poll_s}
    cpu0 = proc_cpu_s(pid)
    c = http.client.HTTPConnection(host, int(port), timeout=600)
    size = os.path.getsize(path)
    t0 = time.monotonic()
    with open(path, "rb") as f:
        c.request("POST", "/v1/jobs", body=f,
                  headers={"Content-Type": "text/csv", "Content-Length": str(size)})
        resp = c.getresponse()
        body = json.loads(resp.read())
    t_post = time.monotonic()
    if resp.status != 202:
        print(json.dumps({"error": "POST answered %d" % resp.status, "body": body}))
        return 1
    jid = body["id"]
    r["job"] = jid
    r["input_bytes"] = size
    r["post_s"] = round(t_post - t0, 3)
    polls = []
    while True:
        tp = time.monotonic()
        c.request("GET", "/v1/jobs/" + jid)
        st = json.loads(c.getresponse().read())
        polls.append(time.monotonic() - tp)
        if st["state"] in ("done", "failed"):
            break
        time.sleep(poll_s)
    t_done = time.monotonic()
    r["state"] = st["state"]
    r["polls"] = len(polls)
    polls.sort()
    r["poll_answer_ms"] = {"median": round(polls[len(polls) // 2] * 1000, 1),
                           "max": round(polls[-1] * 1000, 1),
                           "total": round(sum(polls) * 1000, 1)}
    r["job_s"] = round(t_done - t_post, 3)  # queued + running, as the poller saw it
    r["counts"] = st.get("counts")
    out = os.path.join(outdir, "results.csv")
    c.request("GET", "/v1/jobs/%s/results" % jid)
    resp = c.getresponse()
    with open(out, "wb") as f:
        while True:
            d = resp.read(1 << 16)
            if not d:
                break
            f.write(d)
    t_res = time.monotonic()
    r["results_status"] = resp.status
    r["results_s"] = round(t_res - t_done, 3)
    r["wall_s"] = round(t_res - t0, 3)
    r["server_cpu_s"] = round(proc_cpu_s(pid) - cpu0, 2)
    r["server_peak_rss_mb"] = round(proc_status(pid)["VmHWM"] / 1024, 1)
    with open(path, newline="") as f:
        rin = list(csv.reader(f))
    with open(out, newline="") as f:
        rout = list(csv.reader(f))
    rows = len(rin) - 1
    r["input_rows"] = rows
    r["output_rows"] = len(rout) - 1
    r["all_rows_in_order"] = len(rin) == len(rout) and all(a[0] == b[0] for a, b in zip(rin, rout))
    right = wrong = other = 0
    if rout:
        iv = rout[0].index("verdict")
        for row in rout[1:]:
            local = row[0].split("@")[0]
            truth = "deliverable" if int(local[1:]) < (m + 1) // 2 else "undeliverable"
            if row[iv] == truth:
                right += 1
            elif row[iv] in ("deliverable", "undeliverable"):
                wrong += 1
            else:
                other += 1
    r["accuracy"] = {"right": right, "wrong": wrong, "not_decided": other}
    r["addresses_per_s"] = round(rows / (t_res - t0), 1)
    r["server_cpu_us_per_address"] = round(r["server_cpu_s"] / rows * 1e6, 1)
    print(json.dumps(r))
    return 0 if r["all_rows_in_order"] and st["state"] == "done" else 1


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "addrs" and len(argv) == 4:
        addrs(argv[2], int(argv[3]))
        return 0
    if cmd == "warm" and len(argv) == 5:
        return warm(*argv[2:])
    if cmd == "metrics" and len(argv) == 4:
        metrics(*argv[2:])
        return 0
    if cmd == "idle" and len(argv) == 7:
        return idle(*argv[2:])
    if cmd == "job" and len(argv) in (8, 9):
        return job(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
