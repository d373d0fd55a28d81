#!/bin/bash
# mailprobe serve (HTTP API) benchmarks. Root (job, bulk-ref: the bench lab namespace;
# check/idle: apt-get for wrk when missing, ulimit -n).
#
#   bench/serve/run.sh check [SECONDS]   GET /v1/check with wrk on loopback, 3 runs:
#       cached   the same 1,000 addresses asked again and again, answered from the result
#                cache (--max-age, default 10m): HTTP + cache look-up (SQLite) + JSON
#       fresh    fresh=1 with the server in --offline mode: HTTP + the engine's whole
#                path for syntax and address signals (parse, intel, verdict, JSON) + the
#                result written to the cache; no DNS, no SMTP
#       healthz  GET /healthz: the HTTP layer alone (reference)
#     (bench/serve/run.sh check-cached|check-fresh|check-healthz [SECONDS]: one of them)
#     wrk: $MP_WRK_THREADS (2) threads, $MP_WRK_CONNS (64) connections, SECONDS (30) each,
#     bench/serve/check.lua rotating through bench/serve/client.py's 1,000 addresses.
#     Server: --rate-limit 0 --offline, one new store per run. The machine has 2 cores:
#     wrk and the server (one thread) share them.
#   bench/serve/run.sh idle [N]          server RSS (/proc/PID/status) before, with N
#       (1,000) idle keep-alive connections each having had one GET /healthz (held 10 s),
#       and after they close.
#   bench/serve/run.sh job               a 100,000-row CSV through POST /v1/jobs on a
#       server in the bench lab namespace (bench/bulk/lab.sh, 2,000 domains x 50 addresses
#       on 20 MX IPs, 25 ms each way: the lab of `bench/bulk/run.sh a`, same input), polled
#       every $MP_SERVE_POLL (1) s until done, results downloaded and checked (100,000 rows,
#       in order, verdicts).
#   bench/serve/run.sh bulk-ref          the same input through `mailprobe bulk` with the
#       same binary and engine options, exactly as `bench/bulk/run.sh a` runs it (the
#       comparison for job, made under the same conditions).
#   bench/serve/run.sh all               check idle job bulk-ref
#
# Each run prints one JSON line (also appended to $MP_SERVE_DIR/results.jsonl, default
# /tmp/mpbench-serve) holding the exact commands ("server", "client") and its figures.
# MAILPROBE=path (default build-bench-serve/mailprobe), built with
#   cmake -S . -B build-bench-serve -DCMAKE_BUILD_TYPE=Release -DMP_TESTS=OFF
#   cmake --build build-bench-serve -j2 --target mailprobe
# job and bulk-ref wait while bench/bulk/run.sh runs (they share the bench lab).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=${MP_BENCH_NS:-mpbench}
LAB=${MP_BENCH_DIR:-/tmp/mpbench}
OUT=${MP_SERVE_DIR:-/tmp/mpbench-serve}
MP=${MAILPROBE:-$ROOT/build-bench-serve/mailprobe}
THREADS=${MP_WRK_THREADS:-2}
CONNS=${MP_WRK_CONNS:-64}
PY=/usr/bin/python3
CLK=$(getconf CLK_TCK)
export MP_BENCH_NS=$NS MP_BENCH_DIR=$LAB
[ -x "$MP" ] || { echo "build it: cmake -S . -B build-bench-serve -DCMAKE_BUILD_TYPE=Release -DMP_TESTS=OFF && cmake --build build-bench-serve -j2 --target mailprobe" >&2; exit 1; }
MP=$(cd "$(dirname "$MP")" && pwd)/$(basename "$MP")
LABOPTS=(--dns 127.0.0.53 --allow-private-mx --helo probe.bench --from bench@probe.bench)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT/runs" "$OUT/inputs"

need_wrk() {
  command -v wrk >/dev/null && return 0
  echo "bench/serve: installing wrk" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_server NAME NS|"" [serve options...]: sets SPID, SPORT, SCMD; store in $OUT/runs/NAME
start_server() {
  local name=$1 ns=$2 d=$OUT/runs/$1; shift 2
  local pre=()
  [ -n "$ns" ] && pre=(ip netns exec "$ns")
  rm -rf "$d"; mkdir -p "$d"
  SCMD="${pre[*]}${pre:+ }$MP serve --listen 127.0.0.1:0 --store $d/store.sqlite $*"
  echo "server $name: $SCMD" >&2
  "${pre[@]}" "$MP" serve --listen 127.0.0.1:0 --store "$d/store.sqlite" "$@" 2>"$d/serve.err" &
  SPID=$!
  SPORT=
  for _ in $(seq 100); do
    SPORT=$(grep -o 'serving on http://127.0.0.1:[0-9]*' "$d/serve.err" | sed 's/.*://' || true)
    [ -n "$SPORT" ] && return 0
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$d/serve.err" >&2
  echo "bench/serve: the server did not start" >&2
  exit 1
}

stop_server() {
  kill -TERM "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
}

# emit NAME JSON...: merge JSON objects and the run's context into one line
emit() {
  local name=$1; shift
  "$PY" - "$name" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)" \
    "$(git -C "$ROOT" status --porcelain -uno -- src 2>/dev/null | awk '{print $2}' | tr '\n' ' ')" \
    "$MP" "$@" <<'EOF' | tee -a "$OUT/results.jsonl"
import json, os, sys, time
name, commit, dirty, mp = sys.argv[1:5]
r = {"name": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
     "commit": commit, "src_modified": dirty.split(),
     "binary_built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(mp))),
     "cores": os.cpu_count()}
for a in sys.argv[5:]:
    r.update(json.loads(a))
print(json.dumps(r))
EOF
}

js() { "$PY" -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' "$@"; }

wait_bulk() {
  while pgrep -f bench/bulk/run.sh >/dev/null; do
    echo "bench/serve: bench/bulk/run.sh is running (it shares the bench lab); waiting" >&2
    sleep 20
  done
}

lab_for() { # N M K: as bench/bulk/run.sh does
  if [ "$(cat "$LAB/data/params" 2>/dev/null)" != "$1 $2 $3 10000" ] || ! "$ROOT/bench/bulk/lab.sh" status 2>/dev/null; then
    "$ROOT/bench/bulk/lab.sh" up "$1" "$2" "$3" 10000
  fi
}

addrs_file() {
  local f=$OUT/inputs/addrs-1000.txt
  [ -s "$f" ] || "$PY" "$HERE/client.py" addrs "$f" 1000 >&2
  echo "$f"
}

run_wrk() { # NAME MODE(cached|fresh|healthz) SECONDS
  local name=$1 mode=$2 secs=$3 d f
  need_wrk
  f=$(addrs_file)
  start_server "$name" "" --rate-limit 0 --offline
  d=$OUT/runs/$name
  local url=http://127.0.0.1:$SPORT wcmd warm="{}"
  if [ "$mode" = cached ]; then
    warm=$("$PY" "$HERE/client.py" warm 127.0.0.1 "$SPORT" "$f")
    sleep 0.5 # the store commits every 200 ms
  fi
  local m0 m1 c0 c1 load
  m0=$("$PY" "$HERE/client.py" metrics 127.0.0.1 "$SPORT")
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  c0=$(cpu_ticks "$SPID")
  case $mode in
    cached) wcmd="wrk -t$THREADS -c$CONNS -d${secs}s --latency -s $HERE/check.lua $url -- $f" ;;
    fresh) wcmd="wrk -t$THREADS -c$CONNS -d${secs}s --latency -s $HERE/check.lua $url -- $f fresh" ;;
    healthz) wcmd="wrk -t$THREADS -c$CONNS -d${secs}s --latency -s $HERE/check.lua $url -- healthz" ;;
  esac
  echo "client $name: $wcmd" >&2
  $wcmd >"$d/wrk.txt"
  c1=$(cpu_ticks "$SPID")
  m1=$("$PY" "$HERE/client.py" metrics 127.0.0.1 "$SPORT")
  local rss
  rss=$(awk '/VmHWM/{print $2}' "/proc/$SPID/status")
  stop_server
  "$PY" - "$name" "$mode" "$SCMD" "$wcmd" "$warm" "$m0" "$m1" "$c0" "$c1" "$CLK" "$secs" "$load" "$rss" "$d/wrk.txt" <<'EOF' >"$d/fig.json"
import json, sys
name, mode, scmd, wcmd, warm, m0, m1, c0, c1, clk, secs, load, hwm, wf = sys.argv[1:]
w = None
for line in open(wf):
    if line.startswith("WRKJSON "):
        w = json.loads(line[8:])
m0, m1 = json.loads(m0), json.loads(m1)
cpu = (float(c1) - float(c0)) / float(clk)
r = {"variant": mode, "server": scmd, "client": wcmd, "wrk": w,
     "loadavg_before": load, "server_cpu_s": round(cpu, 2),
     "server_cpu_share": round(cpu / w["duration_s"], 2),
     "server_cpu_us_per_request": round(cpu / max(w["requests"], 1) * 1e6, 1),
     "server_peak_rss_mb": round(int(hwm) / 1024, 1)}
if mode != "healthz":
    r["check_requests"] = m1["any"] - m0["any"]
    r["answered_from_cache"] = m1["cached"] - m0["cached"]
    r["pending_answers"] = m1["pending"] - m0["pending"]
    r["warm"] = json.loads(warm)
print(json.dumps(r))
EOF
  emit "$name" "$(cat "$d/fig.json")"
}

run_idle() { # N
  local n=$1 name=idle-$1 d
  start_server "$name" "" --rate-limit 0 --offline
  d=$OUT/runs/$name
  local ccmd="$PY $HERE/client.py idle $SPID 127.0.0.1 $SPORT $n 10"
  echo "client $name: $ccmd" >&2
  local res
  res=$($ccmd)
  stop_server
  emit "$name" "$(js server "$SCMD" client "$ccmd" ulimit_n "$(ulimit -n)")" "$res" \
    '{"server_idle_timeout_s": 120}'
}

run_job() {
  wait_bulk
  lab_for 2000 50 20
  local csv=$OUT/inputs/a.csv name=job-a d
  [ -s "$csv" ] || "$PY" "$ROOT/bench/bulk/gen.py" csv "$csv" 2000 50
  kill -USR1 "$(cat "$LAB/run/proxy.pid")" 2>/dev/null || true; sleep 1.2
  local poff pfoff
  poff=$(stat -c %s "$LAB/proxy.log"); pfoff=$(stat -c %s "$LAB/postfix/postfix.log")
  start_server "$name" "$NS" --rate-limit 0 "${LABOPTS[@]}"
  d=$OUT/runs/$name
  local ccmd="ip netns exec $NS $PY $HERE/client.py job $SPID 127.0.0.1 $SPORT $csv 50 $d ${MP_SERVE_POLL:-1}"
  echo "client $name: $ccmd" >&2
  local res load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  res=$($ccmd) || true
  [ -n "$res" ] || res='{"error": "the job client failed"}'
  stop_server
  sleep 1.5 # proxy log flush (every second) and the last closes
  local proxy pfc
  proxy=$("$PY" "$ROOT/bench/bulk/proxylog.py" "$LAB/proxy.log" "$poff")
  pfc=$(tail -c +"$((pfoff + 1))" "$LAB/postfix/postfix.log" | grep -c ']: connect from ' || true)
  emit "$name" "$(js server "$SCMD" client "$ccmd" input "$csv" loadavg_before "$load")" "$res" \
    "{\"proxy\": $proxy, \"postfix_connects\": $pfc}"
}

run_bulk_ref() {
  wait_bulk
  lab_for 2000 50 20
  local csv=$OUT/inputs/a.csv name=bulk-a d=$OUT/runs/bulk-a
  [ -s "$csv" ] || "$PY" "$ROOT/bench/bulk/gen.py" csv "$csv" 2000 50
  rm -rf "$d"; mkdir -p "$d"
  kill -USR1 "$(cat "$LAB/run/proxy.pid")" 2>/dev/null || true; sleep 1.2
  local poff pfoff
  poff=$(stat -c %s "$LAB/proxy.log"); pfoff=$(stat -c %s "$LAB/postfix/postfix.log")
  local cmd="/usr/bin/time -v -o $d/time.txt ip netns exec $NS $MP bulk $csv -o $d/out.csv --store $d/jobs.sqlite ${LABOPTS[*]} --no-progress"
  echo "run $name: $cmd" >&2
  $cmd 2>"$d/stderr.txt" || true
  sleep 1.5
  local res
  res=$("$PY" "$ROOT/bench/bulk/report.py" "$name" "$csv" "$d/out.csv" 50 "$d/time.txt" \
    "$d/stderr.txt" "$LAB/proxy.log" "$poff" "$LAB/postfix/postfix.log" "$pfoff")
  emit "$name" "$(js command "$cmd")" "$res"
}

args=("${@:-all}")
i=0
while [ "$i" -lt "${#args[@]}" ]; do
  s=${args[$i]} num=
  if [[ ${args[$((i + 1))]:-} =~ ^[0-9]+$ ]]; then num=${args[$((i + 1))]}; i=$((i + 1)); fi
  i=$((i + 1))
  case $s in
    check) run_wrk check-cached cached "${num:-30}"
       run_wrk check-fresh fresh "${num:-30}"
       run_wrk check-healthz healthz "${num:-30}" ;;
    check-cached|check-fresh|check-healthz) run_wrk "$s" "${s#check-}" "${num:-30}" ;;
    idle) run_idle "${num:-1000}" ;;
    job) run_job ;;
    bulk-ref) run_bulk_ref ;;
    all) "$0" check idle job bulk-ref ;;
    *) echo "unknown sub-command $s (check[-cached|-fresh|-healthz] [SECONDS] | idle [N] | job | bulk-ref | all)" >&2; exit 2 ;;
  esac
done
