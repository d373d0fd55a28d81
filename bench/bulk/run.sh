#!/bin/bash
# mailprobe bulk benchmarks on the bench lab (bench/bulk/lab.sh). Root.
#
#   bench/bulk/run.sh a        2,000 domains x 50 addresses on 20 MX IPs (100,000 rows)
#   bench/bulk/run.sh b        20,000 domains x 2 addresses on 500 MX IPs (40,000 rows)
#   bench/bulk/run.sh c        scale, fast path: 10k, 100k, 1M rows on null-MX domains
#                              (100 addresses per domain; DNS + the whole bulk pipeline, no SMTP)
#   bench/bulk/run.sh c-net    scale over the network: 10k and 100k rows of the (a) lab
#   bench/bulk/run.sh d        2,000 addresses of (a): mailprobe, then deep-email-validator
#                              0.1.27 from npm (bench/bulk/compare.js, 20 checks at once)
#   bench/bulk/run.sh d-dense  as d, on all 50 addresses of 40 domains
#   bench/bulk/run.sh strace   client-side per-IP concurrency from strace (5,000 rows of a)
#   bench/bulk/run.sh a-sorted (a) with the same rows sorted by domain (diagnosis)
#   bench/bulk/run.sh e        many small domains on few MX addresses, as real lists are:
#                              5,000 domains x 4 addresses on 10 MX IPs, half absent,
#                              Postfix with its default error limits ($MP_BENCH_E_DOMAINS
#                              for fewer domains)
#   bench/bulk/run.sh e-npm    2,000 addresses of (e): mailprobe, then deep-email-validator
#   bench/bulk/run.sh e-pool   (e) by one process, then by a pool of 1, 2 and 4
#                              `mailprobe worker`s around a redis-server of its own
#                              (bulk --pool): Redis round trips and CPU per address
#   bench/bulk/run.sh e-pool-src the same pools of 2 and 4 workers, each worker with a
#                              source address of its own (127.0.0.21, .22...): no budget
#                              shared, so the cost of sharing one shows against e-pool
# MP_POOL_WORKERS="1 2 4" (the pool sizes), MP_WORKER_OPTS (extra worker options).
#   bench/bulk/run.sh all      a b c d
# Results: one JSON line per run in $MP_BENCH_DIR/results.jsonl (and on stdout).
# MAILPROBE=path (default build-bench/mailprobe); extra mailprobe options in $MP_BULK_OPTS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=${MP_BENCH_NS:-mpbench}
LAB=${MP_BENCH_DIR:-/tmp/mpbench}
MP=${MAILPROBE:-$ROOT/build-bench/mailprobe}
PY=/usr/bin/python3
export MP_BENCH_NS=$NS MP_BENCH_DIR=$LAB
[ -x "$MP" ] || { echo "build it: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMP_TESTS=OFF && cmake --build build-bench -j2 --target mailprobe" >&2; exit 1; }
ENGINE=(--dns 127.0.0.53 --allow-private-mx --helo probe.bench --from bench@probe.bench --no-progress)

lab_for() { # N M K [default-limits]: bring the lab up unless it already has these parameters
  if [ "$(cat "$LAB/data/params" 2>/dev/null)" != "$1 $2 $3 10000${4:+ $4}" ] || ! "$HERE/lab.sh" status 2>/dev/null; then
    "$HERE/lab.sh" up "$1" "$2" "$3" 10000 ${4:-}
  fi
}

run_bulk() { # NAME CSV M [mailprobe options...]
  local name=$1 csv=$2 m=$3; shift 3
  local d=$LAB/runs/$name poff pfoff
  rm -rf "$d"; mkdir -p "$d"
  kill -USR1 "$(cat "$LAB/run/proxy.pid")" 2>/dev/null || true; sleep 1.2
  poff=$(stat -c %s "$LAB/proxy.log"); pfoff=$(stat -c %s "$LAB/postfix/postfix.log")
  echo "run $name: $MP bulk $csv -o $d/out.csv --store $d/jobs.sqlite ${ENGINE[*]} $*" >&2
  /usr/bin/time -v -o "$d/time.txt" ip netns exec "$NS" "$MP" bulk "$csv" -o "$d/out.csv" \
    --store "$d/jobs.sqlite" "${ENGINE[@]}" ${MP_BULK_OPTS:-} "$@" 2>"$d/stderr.txt" || true
  sleep 1.5  # proxy log flush (every second) and the last closes
  "$PY" "$HERE/report.py" "$name" "$csv" "$d/out.csv" "$m" "$d/time.txt" "$d/stderr.txt" \
    "$LAB/proxy.log" "$poff" "$LAB/postfix/postfix.log" "$pfoff" | tee -a "$LAB/results.jsonl"
}

# A pool of W workers around a fresh redis-server, then bulk --redis --pool; afterwards one JSON
# line: the Redis round trips (client commands of INFO commandstats: the scripts' own
# calls are not round trips) and the CPU of the submitter and the workers, per address.
# The queue's: its scripts (EVAL), XREADGROUP, XREAD... The engine's fleet (--redis in
# each worker): EVALSHA (leases, caps, the fact reads, the batched fact writes) and the
# wake-up subscriptions (SUBSCRIBE). (INFO commandstats also counts the commands a script
# calls, so SET, GET... are not round trips: the fact writes' SETs run inside a script.)
RT_CMDS="xreadgroup xread smembers xclaim hexists del persist multi exec srem script ping auth select"
run_pool() { # NAME CSV M W [src]: with src, worker i sends from 127.0.0.(20+i)
  local name=$1 csv=$2 m=$3 nw=$4 src=${5:-} d=$LAB/runs/$1.pool port=6380 i
  rm -rf "$d"; mkdir -p "$d"
  ip netns exec "$NS" redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$d" --logfile "$d/redis.log" --daemonize no & local rpid=$!
  for i in $(seq 50); do ip netns exec "$NS" redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
  local wpids=()
  for i in $(seq "$nw"); do
    /usr/bin/time -v -o "$d/worker$i.time" ip netns exec "$NS" "$MP" worker \
      --redis redis://127.0.0.1:$port "${ENGINE[@]:0:${#ENGINE[@]}-1}" ${MP_BULK_OPTS:-} \
      ${MP_WORKER_OPTS:-} ${src:+--source 127.0.0.$((20 + i))} \
      2>"$d/worker$i.log" & wpids+=($!)
  done
  sleep 0.5
  run_bulk "$name" "$csv" "$m" --redis redis://127.0.0.1:$port --pool
  ip netns exec "$NS" redis-cli -p $port info commandstats >"$d/commandstats.txt"
  for i in "${wpids[@]}"; do pkill -TERM -P "$i" 2>/dev/null || true; done
  wait "${wpids[@]}" 2>/dev/null || true
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  "$PY" - "$name" "$csv" "$d" "$nw" "$RT_CMDS" <<'PYEOF' | tee -a "$LAB/results.jsonl"
import json, re, sys
name, csv, d, nw, cmds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()
rows = sum(1 for _ in open(csv)) - 1
stats = {}
for line in open(d + "/commandstats.txt"):
    m = re.match(r"cmdstat_(\w+):calls=(\d+)", line)
    if m:
        stats[m.group(1)] = int(m.group(2))
def cpu(path):
    t = open(path).read()
    return sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", t))
sub = cpu(d[:-5] + "/time.txt")
work = sum(cpu("%s/worker%d.time" % (d, i + 1)) for i in range(nw))
queue = sum(stats.get(c, 0) for c in cmds) + stats.get("eval", 0)
fleet = stats.get("evalsha", 0) + stats.get("subscribe", 0)
rt = queue + fleet
print(json.dumps({"run": name, "rows": rows, "workers": nw, "redis_round_trips": rt,
                  "round_trips_per_address": round(rt / rows, 3),
                  "queue_round_trips_per_address": round(queue / rows, 3),
                  "engine_fleet_round_trips_per_address": round(fleet / rows, 3),
                  "cpu_submitter_s": round(sub, 2), "cpu_workers_s": round(work, 2),
                  "cpu_ms_per_address": round(1000 * (sub + work) / rows, 3),
                  "commands": {c: stats[c] for c in sorted(stats)}}))
PYEOF
}

NPM_DIR=${MP_BENCH_NPM:-/tmp/mpbench-npm}
run_node() { # NAME CSV M CONCURRENCY: deep-email-validator 0.1.27 from npm, same accounting
  local name=$1 csv=$2 m=$3 conc=$4 d=$LAB/runs/$1 poff pfoff
  [ -d "$NPM_DIR/node_modules/deep-email-validator" ] || (mkdir -p "$NPM_DIR" && cd "$NPM_DIR" &&
    npm install --ignore-scripts --no-audit --no-fund deep-email-validator@0.1.27 >&2)
  rm -rf "$d"; mkdir -p "$d"
  kill -USR1 "$(cat "$LAB/run/proxy.pid")" 2>/dev/null || true; sleep 1.2
  poff=$(stat -c %s "$LAB/proxy.log"); pfoff=$(stat -c %s "$LAB/postfix/postfix.log")
  echo "run $name: node $HERE/compare.js $csv $d/out.csv $conc (NODE_PATH=$NPM_DIR/node_modules)" >&2
  NODE_PATH=$NPM_DIR/node_modules /usr/bin/time -v -o "$d/time.txt" ip netns exec "$NS" \
    env NODE_PATH="$NPM_DIR/node_modules" node "$HERE/compare.js" "$csv" "$d/out.csv" "$conc" \
    2>"$d/stderr.txt" || true
  sleep 1.5
  "$PY" "$HERE/report.py" "$name" "$csv" "$d/out.csv" "$m" "$d/time.txt" "$d/stderr.txt" \
    "$LAB/proxy.log" "$poff" "$LAB/postfix/postfix.log" "$pfoff" | tee -a "$LAB/results.jsonl"
}

input() { # FILE N M [gen.py options]: generate once
  local f=$1; shift
  [ -s "$f" ] || "$PY" "$HERE/gen.py" csv "$f" "$@"
  echo "$f"
}

mkdir -p "$LAB/inputs"
IN=$LAB/inputs
for s in "${@:-all}"; do
  case $s in
    a) lab_for 2000 50 20
       run_bulk a "$(input "$IN/a.csv" 2000 50)" 50 ;;
    b) lab_for 20000 2 500
       run_bulk b "$(input "$IN/b.csv" 20000 2)" 2 ;;
    c) lab_for 2000 50 20
       run_bulk c-10k "$(input "$IN/null-10k.csv" 100 100 --prefix n)" 0
       run_bulk c-100k "$(input "$IN/null-100k.csv" 1000 100 --prefix n)" 0
       run_bulk c-1m "$(input "$IN/null-1m.csv" 10000 100 --prefix n)" 0 ;;
    d-dense) lab_for 2000 50 20   # 2,000 addresses = all 50 of 40 domains (2 per MX IP)
       f=$(input "$IN/dense-2k.csv" 40 50)
       run_bulk d-dense-mailprobe "$f" 50
       run_node d-dense-deep-email-validator "$f" 50 20 ;;
    strace) lab_for 2000 50 20   # client-side per-IP check: 5,000 rows of (a) under strace
       f=$(input "$IN/a-5k.csv" 2000 50 --sample 5000 --seed 2)
       rm -rf "$LAB/runs/strace"; mkdir -p "$LAB/runs/strace"
       ip netns exec "$NS" strace -f -tt -e trace=connect,close -o "$LAB/runs/strace/trace" \
         "$MP" bulk "$f" -o "$LAB/runs/strace/out.csv" --store "$LAB/runs/strace/jobs.sqlite" \
         "${ENGINE[@]}" 2>"$LAB/runs/strace/stderr.txt" || true
       "$PY" "$HERE/straceconc.py" "$LAB/runs/strace/trace" ;;
    a-sorted) lab_for 2000 50 20
       [ -s "$IN/a-sorted.csv" ] || { head -1 "$(input "$IN/a.csv" 2000 50)"; tail -n +2 "$IN/a.csv" | sort -t@ -k2,2 -s; } >"$IN/a-sorted.csv"
       run_bulk a-sorted "$IN/a-sorted.csv" 50 ;;
    c-net) lab_for 2000 50 20
       run_bulk c-net-10k "$(input "$IN/a-10k.csv" 2000 50 --sample 10000)" 50
       run_bulk c-net-100k "$(input "$IN/a.csv" 2000 50)" 50 ;;
    d) lab_for 2000 50 20
       f=$(input "$IN/a-2k.csv" 2000 50 --sample 2000)
       run_bulk d-mailprobe "$f" 50
       run_node d-deep-email-validator "$f" 50 20 ;;
    e) n=${MP_BENCH_E_DOMAINS:-5000}
       lab_for "$n" 4 10 default-limits
       run_bulk "e-$n" "$(input "$IN/e-$n.csv" "$n" 4)" 4 ;;
    e-npm) n=${MP_BENCH_E_DOMAINS:-5000}   # 2,000 addresses of (e): mailprobe, then npm
       lab_for "$n" 4 10 default-limits
       f=$(input "$IN/e-$n-2k.csv" "$n" 4 --sample 2000)
       run_bulk "e-npm-mailprobe" "$f" 4
       run_node "e-npm-deep-email-validator" "$f" 4 20 ;;
    e-pool) n=${MP_BENCH_E_DOMAINS:-5000}
       lab_for "$n" 4 10 default-limits
       f=$(input "$IN/e-$n.csv" "$n" 4)
       run_bulk "e-$n-local" "$f" 4
       for w in ${MP_POOL_WORKERS:-1 2 4}; do run_pool "e-$n-pool$w" "$f" 4 "$w"; done ;;
    e-pool-src) n=${MP_BENCH_E_DOMAINS:-5000}
       lab_for "$n" 4 10 default-limits
       f=$(input "$IN/e-$n.csv" "$n" 4)
       for w in ${MP_POOL_WORKERS:-2 4}; do run_pool "e-$n-pool$w-src" "$f" 4 "$w" src; done ;;
    all) "$0" a b c d e ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
