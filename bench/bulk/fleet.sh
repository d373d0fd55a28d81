#!/bin/bash
# The fleet's coordination cost (--redis) on the bench lab, scenario (e): many small
# domains on 10 MX addresses, Postfix with its default error limits. Root.
#
#   bench/bulk/fleet.sh [N]   N domains x 4 addresses (default $MP_BENCH_E_DOMAINS, else 500)
#
# Three runs of the same input, each on a fresh store and an empty Redis:
#   alone    one `bulk`, no --redis
#   fleet-1  one `bulk --redis`
#   fleet-2  two `bulk --redis` at once, the input split by domain (as the job streams
#            hand out domain batches)
#   alone-2  the same two without --redis (what the server sees without the fleet)
# For each: wall, CPU (user+sys, all processes), Redis requests from its INFO commandstats
# (the client's: EVALSHA, EVAL, SET, and the connection's AUTH/SELECT/PING/SCRIPT), per
# address, and the most sessions the proxy saw open at once to one MX address. One JSON
# line per run in $MP_BENCH_DIR/fleet.jsonl (and on stdout).
# redis-server runs inside the namespace on 127.0.0.1:6392, started and stopped by pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=${MP_BENCH_NS:-mpbench}
LAB=${MP_BENCH_DIR:-/tmp/mpbench}
MP=${MAILPROBE:-$ROOT/build-bench/mailprobe}
PY=/usr/bin/python3
N=${1:-${MP_BENCH_E_DOMAINS:-500}}
PORT=6392
URL=redis://127.0.0.1:$PORT/0
export MP_BENCH_NS=$NS MP_BENCH_DIR=$LAB
[ -x "$MP" ] || { echo "build it: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMP_TESTS=OFF && cmake --build build-bench -j2 --target mailprobe" >&2; exit 1; }
ENGINE=(--dns 127.0.0.53 --allow-private-mx --helo probe.bench --from bench@probe.bench --no-progress)

if [ "$(cat "$LAB/data/params" 2>/dev/null)" != "$N 4 10 10000 default-limits" ] || ! "$HERE/lab.sh" status 2>/dev/null; then
  "$HERE/lab.sh" up "$N" 4 10 10000 default-limits
fi
mkdir -p "$LAB/inputs" "$LAB/fleet"
IN=$LAB/inputs/e-$N.csv
[ -s "$IN" ] || "$PY" "$HERE/gen.py" csv "$IN" "$N" 4
# the input's halves by domain: a domain's rows in one process, in input order
"$PY" - "$IN" "$LAB/fleet/half0.csv" "$LAB/fleet/half1.csv" <<'EOF'
import sys, zlib
src, outs = sys.argv[1], sys.argv[2:]
lines = open(src).read().splitlines(True)
fs = [open(o, "w") for o in outs]
for f in fs:
    f.write(lines[0])
for l in lines[1:]:
    d = l.split(",")[0].split("@")[-1]
    fs[zlib.crc32(d.encode()) % 2].write(l)
EOF

RD=$LAB/fleet/redis
rm -rf "$RD"; mkdir -p "$RD"
ip netns exec "$NS" redis-server --port $PORT --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$RD" --daemonize no >"$RD/log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null || true' EXIT
rcli() { ip netns exec "$NS" redis-cli -p $PORT "$@"; }
for _ in $(seq 100); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done

requests() { # the client's requests so far (commands run inside scripts are not counted)
  rcli info commandstats | tr -d '\r' | awk -F'[:=,]' \
    '/^cmdstat_(evalsha|eval|set|auth|select|ping|script|hello|client)[:|]/ {n += $3} END {print n + 0}'
}

run() { # NAME "redis"|"" INPUT...
  local name=$1 redis=$2; shift 2
  local d=$LAB/fleet/runs/$name i=0 pids=() t0 t1 r0 r1 poff
  rm -rf "$d"; mkdir -p "$d"
  rcli flushall >/dev/null
  kill -USR1 "$(cat "$LAB/run/proxy.pid")" 2>/dev/null || true; sleep 1.2
  poff=$(stat -c %s "$LAB/proxy.log")
  r0=$(requests); t0=$(date +%s.%N)
  for f in "$@"; do
    /usr/bin/time -f "%U %S" -o "$d/time$i.txt" ip netns exec "$NS" "$MP" bulk "$f" \
      -o "$d/out$i.csv" --store "$d/jobs$i.sqlite" "${ENGINE[@]}" ${redis:+--redis $URL} \
      ${MP_BULK_OPTS:-} 2>"$d/stderr$i.txt" &
    pids+=($!); i=$((i + 1))
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  t1=$(date +%s.%N); r1=$(requests)
  sleep 1.5  # proxy log flush
  "$PY" - "$name" "$t0" "$t1" "$r0" "$r1" "$d" "$i" "$LAB/proxy.log" "$poff" "$HERE" <<'EOF' | tee -a "$LAB/fleet.jsonl"
import csv, json, re, subprocess, sys
name, t0, t1, r0, r1, d, n, plog, poff, here = sys.argv[1:]
n = int(n)
rows = cpu = 0
sessions = probes = 0
verdicts = {}
for i in range(n):
    with open("%s/out%d.csv" % (d, i), newline="") as f:
        out = list(csv.DictReader(f))
    rows += len(out)
    for r in out:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    u, s = open("%s/time%d.txt" % (d, i)).read().split()[-2:]
    cpu += float(u) + float(s)
    err = open("%s/stderr%d.txt" % (d, i)).read()
    m = re.search(r"sessions opened (\d+), RCPTs \d+, catch-all probes (\d+)", err)
    if m:
        sessions += int(m.group(1))
        probes += int(m.group(2))
req = int(r1) - int(r0)
px = json.loads(subprocess.check_output([sys.executable, here + "/proxylog.py", plog, poff]))
print(json.dumps({
    "name": name, "processes": n, "rows": rows, "verdicts": verdicts,
    "wall_s": round(float(t1) - float(t0), 2), "cpu_s": round(cpu, 2),
    "cpu_us_per_address": round(cpu / max(rows, 1) * 1e6, 1),
    "sessions": sessions, "catch_all_probes": probes,
    "redis_requests": req, "redis_requests_per_address": round(req / max(rows, 1), 3),
    "redis_requests_per_session": round(req / max(sessions, 1), 2),
    "proxy_max_open_per_ip": px.get("max_concurrent_per_ip", px)}))
EOF
}

run alone "" "$IN"
run fleet-1 redis "$IN"
run fleet-2 redis "$LAB/fleet/half0.csv" "$LAB/fleet/half1.csv"
run alone-2 "" "$LAB/fleet/half0.csv" "$LAB/fleet/half1.csv"
