#!/bin/bash
# Sample the client side: established TCP connections to port 25 per destination IP inside
# the bench namespace, every ~20 ms for SECONDS; print the highest count per IP seen and how
# many samples had more than LIMIT (default 2) to one IP. Usage: sscount.sh SECONDS [LIMIT]
NS=${MP_BENCH_NS:-mpbench}; END=$(( $(date +%s) + ${1:-30} )); LIMIT=${2:-2}
while [ "$(date +%s)" -lt "$END" ]; do
  ip netns exec "$NS" ss -Htn state established '( dport = :25 )' | awk '{split($4,a,":"); n[a[1]]++} END {m=0; for (i in n) if (n[i]>m) m=n[i]; print m}'
  sleep 0.02
done | sort -n | uniq -c | awk -v L="$LIMIT" '{print "samples with max per IP", $2": "$1; if ($2>L) over+=$1} END {print "samples over limit:", over+0}'
