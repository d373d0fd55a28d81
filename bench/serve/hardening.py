#!/usr/bin/python3
"""`mailprobe serve` under the loads of issue 17, on 127.0.0.1 (no lab needed: --offline).

  hardening.py download [ROWS]   POST a ROWS-row job (default 1,000,000), wait for it, then
                                 download its results (CSV) while one keep-alive client
                                 polls /healthz; /healthz latency (all, and during the
                                 download); the store (file + WAL) after the job and after
                                 its DELETE, bytes per row
  hardening.py slowloris [SECS]  the server with 256 descriptors (ulimit -n); slow clients
                                 from 64 addresses open as many connections as they can and
                                 send a header line every second, for SECS (default 30);
                                 meanwhile a new client asks /healthz every 50 ms: latency,
                                 failures, connections the slow clients held

Prints one JSON line. MAILPROBE = the binary (default build/mailprobe). Latency is measured
from the request's send to the last byte of the answer (time.monotonic)."""
import http.client
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

MP = os.environ.get("MAILPROBE", os.path.join(os.path.dirname(__file__), "../../build/mailprobe"))


def start(store, *extra, nofile=None):
    err = tempfile.TemporaryFile(mode="w+")

    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    argv = [MP, "serve", "--listen", "127.0.0.1:0", "--store", store, "--offline",
            "--rate-limit", "0"] + list(extra)
    proc = subprocess.Popen(argv, stderr=err, preexec_fn=limit)
    for _ in range(300):
        err.seek(0)
        m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", err.read())
        if m:
            return proc, int(m.group(1)), " ".join(argv)
        time.sleep(0.1)
    raise SystemExit("serve did not start")


def size(store):
    return sum(os.path.getsize(store + ext) for ext in ("", "-wal")
               if os.path.exists(store + ext))


def pct(values, p):
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p / 100))] * 1000, 2) if v else None


def poller(port, stop, lat, fresh=False):
    c = None
    while not stop.is_set():
        try:
            if c is None or fresh:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.monotonic()
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            lat.append((t0, time.monotonic() - t0, r.status))
            if fresh:
                c.close()
                time.sleep(0.05)
        except OSError:
            lat.append((time.monotonic(), None, 0))
            c = None
            time.sleep(0.05)


def download(rows):
    d = tempfile.mkdtemp(prefix="mp-hard-")
    store = os.path.join(d, "s.sqlite")
    proc, port, cmd = start(store)
    try:
        body = "email,name\n" + "".join("u%d@d%05d.example,n%d\n" % (i, i % 10000, i)
                                        for i in range(rows))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/v1/jobs", body, {"Content-Type": "text/csv"})
        r = c.getresponse()
        job = json.loads(r.read())["id"]
        t0 = time.monotonic()
        while True:
            c.request("GET", "/v1/jobs/" + job)
            st = json.loads(c.getresponse().read())
            if st["state"] in ("done", "failed"):
                break
            time.sleep(1)
        run_s = time.monotonic() - t0
        after_job = size(store)
        stop, lat = threading.Event(), []
        t = threading.Thread(target=poller, args=(port, stop, lat))
        t.start()
        time.sleep(1)
        d0 = time.monotonic()
        c.request("GET", "/v1/jobs/%s/results" % job)
        got = c.getresponse().read()
        d1 = time.monotonic()
        time.sleep(1)
        stop.set()
        t.join()
        during = [x[1] for x in lat if d0 <= x[0] <= d1 and x[1] is not None]
        c.request("DELETE", "/v1/jobs/" + job)
        c.getresponse().read()
        after_delete = size(store)
        print(json.dumps({
            "bench": "download", "server": cmd, "rows": rows, "job_state": st["state"],
            "job_seconds": round(run_s, 1), "download_seconds": round(d1 - d0, 2),
            "download_bytes": len(got), "healthz_during_download": len(during),
            "healthz_ms_p50": pct(during, 50), "healthz_ms_p99": pct(during, 99),
            "healthz_ms_max": pct(during, 100),
            "store_bytes_after_job": after_job, "store_bytes_per_row": round(after_job / rows),
            "store_bytes_after_delete": after_delete}))
    finally:
        proc.terminate()
        proc.wait()


def slowloris(secs):
    d = tempfile.mkdtemp(prefix="mp-hard-")
    proc, port, cmd = start(os.path.join(d, "s.sqlite"), nofile=256)
    held, stop = [], threading.Event()

    def attacker(k):
        mine = []
        while not stop.is_set():
            try:
                s = socket.socket()
                s.bind(("127.0.9.%d" % (k + 1), 0))
                s.settimeout(1)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /healthz HTTP/1.1\r\n")
                mine.append(s)
            except OSError:
                pass
            for s in list(mine):
                try:
                    s.sendall(b"X-a: b\r\n")
                except OSError:
                    mine.remove(s)
                    s.close()
            held.append(len(mine))
            time.sleep(1)
        for s in mine:
            s.close()
    try:
        attackers = [threading.Thread(target=attacker, args=(k,)) for k in range(64)]
        for t in attackers:
            t.start()
        time.sleep(3)
        lat = []
        pstop = threading.Event()
        p = threading.Thread(target=poller, args=(port, pstop, lat, True))
        p.start()
        time.sleep(secs)
        pstop.set()
        p.join()
        stop.set()
        for t in attackers:
            t.join()
        ok = [x[1] for x in lat if x[1] is not None and x[2] == 200]
        with open("/proc/%d/stat" % proc.pid) as f:
            st = f.read().split()
        print(json.dumps({
            "bench": "slowloris", "server": cmd + " (ulimit -n 256)", "seconds": secs,
            "slow_clients": 64, "healthz_requests": len(lat), "healthz_ok": len(ok),
            "healthz_failed": len(lat) - len(ok), "healthz_ms_p50": pct(ok, 50),
            "healthz_ms_p99": pct(ok, 99), "healthz_ms_max": pct(ok, 100),
            "server_cpu_s": (int(st[13]) + int(st[14])) / os.sysconf("SC_CLK_TCK")}))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "download":
        download(int(sys.argv[2]) if len(sys.argv) > 2 else 1000000)
    elif what == "slowloris":
        slowloris(int(sys.argv[2]) if len(sys.argv) > 2 else 30)
    else:
        raise SystemExit(__doc__)
