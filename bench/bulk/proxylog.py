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


class Open:
    """Sessions open per key (a destination IP, or a (client, destination) pair): the
    sessions in all, the peak, and each time a key went above the limit, for how long."""

    def __init__(self):
        self.cur, self.peak, self.total = (collections.Counter(), collections.Counter(),
                                           collections.Counter())
        self.since, self.over_n, self.durs = {}, 0, []

    def open(self, key, t):
        self.cur[key] += 1
        self.total[key] += 1
        self.peak[key] = max(self.peak[key], self.cur[key])
        if self.cur[key] == limit + 1:
            self.since[key] = t
            self.over_n += 1

    def close(self, key, t):
        self.cur[key] -= 1
        if self.cur[key] == limit and key in self.since:
            self.durs.append(t - self.since.pop(key))

    def most(self):
        return max(self.peak.values()) if self.peak else 0

    def over(self):
        return {"over_limit_times": self.over_n,
                "over_limit_longest_ms": round(max(self.durs, default=0.0) * 1000, 3),
                "over_limit_over_1ms": sum(1 for d in self.durs if d > 0.001)}


per_ip, pairs = Open(), Open()
allcur = allpeak = 0
first = last = None
with open(path, "rb") as f:
    f.seek(off)
    for line in f:
        parts = line.split()
        if len(parts) not in (3, 4):
            continue
        t, k, ip = float(parts[0]), parts[1], parts[2].decode()
        first = t if first is None else first
        last = t
        if k == b"o":
            per_ip.open(ip, t)
            allcur += 1
            allpeak = max(allpeak, allcur)
        else:
            per_ip.close(ip, t)
            allcur -= 1
        if len(parts) == 4:
            (pairs.open if k == b"o" else pairs.close)((parts[3].decode(), ip), t)
hist = collections.Counter(per_ip.peak.values())
print(json.dumps(dict({
    "sessions": sum(per_ip.total.values()),
    "ips": len(per_ip.total),
    "max_concurrent_per_ip": per_ip.most(),
    "ips_by_peak": {str(k): v for k, v in sorted(hist.items())},
    "max_concurrent_overall": allpeak}, **per_ip.over(), **{
    "still_open": sum(v for v in per_ip.cur.values() if v > 0),
    "span_s": round((last - first), 3) if first is not None else 0,
    "per_source": dict({"pairs": len(pairs.peak), "max_concurrent_per_pair": pairs.most()},
                       **pairs.over())})))
