#!/usr/bin/python3
"""Summarise proxy.py's log from byte OFFSET on: sessions per destination IP and the
maximum number open at once per IP (server side: counted when the client's connection is
accepted and when it closes).

Usage: proxylog.py LOGFILE [OFFSET] [LIMIT]      prints one JSON object

Above LIMIT (default 2): how many times an IP went above it and for how long at most
(over_limit_*). The proxy is one event loop: when a client closes a session and opens the
next one to the same IP at once, the FIN and the new connection can be handled in the same
loop turn in either order, so an excess lasting well under a millisecond is that
measurement artefact, not two sessions held open together.

Lines that name the client's address too (4 fields) are also counted per (client
address, destination IP) pair: `per_source` holds the same figures for those pairs, which
is what a per-server limit means when a pool sends from several addresses (`--source`).
"""
import collections
import json
import sys

path = sys.argv[1]
off = int(sys.argv[2]) if len(sys.argv) > 2 else 0
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 2
over_since = {}
over_n = 0
over_max = 0.0
over_durs = []
cur = collections.Counter()
peak = collections.Counter()
total = collections.Counter()
allcur = allpeak = 0
first = last = None

class Pairs:
    """Open sessions per (client, destination) pair, the peak and the excesses over limit."""

    def __init__(self):
        self.cur, self.peak, self.since = collections.Counter(), collections.Counter(), {}
        self.over_n, self.durs = 0, []

    def open(self, key, t):
        self.cur[key] += 1
        self.peak[key] = max(self.peak[key], self.cur[key])
        if self.cur[key] == limit + 1:
            self.since[key] = t
            self.over_n += 1

    def close(self, key, t):
        self.cur[key] -= 1
        if self.cur[key] == limit and key in self.since:
            self.durs.append(t - self.since.pop(key))

    def summary(self):
        return {"pairs": len(self.peak),
                "max_concurrent_per_pair": max(self.peak.values()) if self.peak else 0,
                "over_limit_times": self.over_n,
                "over_limit_longest_ms": round(max(self.durs, default=0.0) * 1000, 3),
                "over_limit_over_1ms": sum(1 for d in self.durs if d > 0.001)}


pairs = Pairs()
with open(path, "rb") as f:
    f.seek(off)
    for line in f:
        parts = line.split()
        if len(parts) not in (3, 4):
            continue
        t, k, ip = float(parts[0]), parts[1], parts[2].decode()
        if len(parts) == 4:
            (pairs.open if k == b"o" else pairs.close)((parts[3].decode(), ip), t)
        first = t if first is None else first
        last = t
        if k == b"o":
            cur[ip] += 1
            total[ip] += 1
            allcur += 1
            if cur[ip] > peak[ip]:
                peak[ip] = cur[ip]
            allpeak = max(allpeak, allcur)
            if cur[ip] == limit + 1:
                over_since[ip] = t
                over_n += 1
        else:
            cur[ip] -= 1
            allcur -= 1
            if cur[ip] == limit and ip in over_since:
                dur = t - over_since.pop(ip)
                over_durs.append(dur)
                over_max = max(over_max, dur)
hist = collections.Counter(peak.values())
print(json.dumps({
    "sessions": sum(total.values()),
    "ips": len(total),
    "max_concurrent_per_ip": max(peak.values()) if peak else 0,
    "ips_by_peak": {str(k): v for k, v in sorted(hist.items())},
    "max_concurrent_overall": allpeak,
    "over_limit_times": over_n,
    "over_limit_longest_ms": round(over_max * 1000, 3),
    "over_limit_over_1ms": sum(1 for d in over_durs if d > 0.001),
    "still_open": sum(v for v in cur.values() if v > 0),
    "span_s": round((last - first), 3) if first is not None else 0,
    "per_source": pairs.summary(),
}))
