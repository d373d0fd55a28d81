#!/usr/bin/python3
"""Client-side check of the per-IP limit from an strace of mailprobe:
  strace -f -tt -e trace=connect,close -o TRACE mailprobe bulk ...
Pairs each connect() to IP:25 with the close() of its fd (per process; mailprobe is one
process) and prints the maximum number of sockets to one IP that were open (connected,
not yet closed) at once, with examples. Usage: straceconc.py TRACE [LIMIT]"""
import collections
import re
import sys

limit = int(sys.argv[2]) if len(sys.argv) > 2 else 2
con = re.compile(r'^(\d+)\s+(\S+) connect\((\d+), \{sa_family=AF_INET, sin_port=htons\(25\), '
                 r'sin_addr=inet_addr\("([\d.]+)"\)')
clo = re.compile(r'^(\d+)\s+(\S+) close\((\d+)\)')
fdip = {}
cur = collections.Counter()
peak = collections.Counter()
over = []
for line in open(sys.argv[1]):
    m = con.match(line)
    if m:
        _, t, fd, ip = m.groups()
        fdip[fd] = ip
        cur[ip] += 1
        peak[ip] = max(peak[ip], cur[ip])
        if cur[ip] > limit:
            over.append((t, ip, cur[ip]))
        continue
    m = clo.match(line)
    if m and m.group(3) in fdip:
        ip = fdip.pop(m.group(3))
        cur[ip] -= 1
print("connects to port 25:", sum(1 for _ in open(sys.argv[1]) if "htons(25)" in _))
print("max open sockets to one IP (client side):", max(peak.values()) if peak else 0)
print("times above %d: %d" % (limit, len(over)))
for o in over[:10]:
    print("  ", *o)
