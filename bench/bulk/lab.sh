#!/bin/bash
# mailprobe bulk bench lab: N domains x M addresses on K MX IPs, inside its own namespace.
#
#   bench/bulk/lab.sh up N M K [NULLDOMS] [default-limits]
#                                           (re)create namespace + unbound + Postfix + proxy
#   bench/bulk/lab.sh down                  stop them (by pid) and delete the namespace
#   bench/bulk/lab.sh status
#
# Namespace $MP_BENCH_NS (default mpbench); everything under $MP_BENCH_DIR (/tmp/mpbench).
#  - unbound on 127.0.0.53: dNNNNN.bench MX 10 mx.dNNNNN.bench, A 127.1.x.y (domain i on
#    MX IP i % K), nNNNNN.bench (NULLDOMS of them, default 10000) with a null MX "0 .".
#  - one Postfix (master -c DIR, pid kept) on 127.0.0.1:2525, hash maps: u0..u(ceil(M/2)-1)
#    exist at every domain, the other local parts get 550 5.1.1. Its error limits are
#    raised unless "default-limits" is given: then Postfix's own (soft 10 with 1 s sleeps,
#    hard 20, 100 junk commands), as real servers have them.
#  - bench/bulk/proxy.py on 0.0.0.0:25 (so every 127.1.x.y:25 reaches it), 25 ms each way
#    ($MP_BENCH_DELAY_MS), forwarding to Postfix and logging opens/closes per MX IP to
#    $DIR/proxy.log (bench/bulk/proxylog.py summarises it).
# Process handling and the Postfix set-up common to both labs come from tests/lab/lablib.sh
# (functions only, every one given this lab's namespace and dir): nothing else is shared
# with the test lab, which runs in its own namespace and dir.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
NS=${MP_BENCH_NS:-mpbench}
LAB=${MP_BENCH_DIR:-/tmp/mpbench}
DELAY_MS=${MP_BENCH_DELAY_MS:-25}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lablib.sh
. "$HERE/../../tests/lab/lablib.sh"
PY=/usr/bin/python3
SERVICES="unbound postfix proxy"
CMD=${1:-status}

die() { echo "benchlab: $*" >&2; exit 1; }
say() { echo "benchlab: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"
case $NS in mplab|mpme|mpci|mpcb) die "namespace $NS belongs to other runs" ;; esac
case $LAB in /|/tmp|/tmp/|/var|/usr|/etc|"") die "refusing lab dir '$LAB'" ;; esac

# KILL after 5 s (100 x 50 ms), stragglers 0.3 s: a bench Postfix may run hundreds of smtpd
do_down() { lab_down "$NS" "$LAB" "$SERVICES" 100 0.3; }

write_unbound() { # the settings shared with the test lab (lablib.sh), then the bench's own
  lab_unbound_conf "$LAB" 127.0.0.53 <<EOF
  verbosity: 0
  msg-cache-size: 64m
  rrset-cache-size: 64m
  num-queries-per-thread: 4096
  ratelimit: 0
  ip-ratelimit: 0
include: "$LAB/data/unbound-data.conf"
EOF
}

write_postfix() {
  local c=$LAB/postfix/etc
  lab_postfix_dirs "$LAB"
  cp "$LAB/data/vdomains" "$LAB/data/vmailbox" "$c/"
  # main.cf: the settings shared with the test lab (lablib.sh), then the bench's own: one
  # listener behind the proxy, no error or anvil limits, many smtpd processes, hash maps
  lab_postfix_main_cf "$LAB" bench bench <<EOF
inet_interfaces = 127.0.0.1
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 2000
smtpd_junk_command_limit = 10000
smtpd_timeout = 30s
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
default_process_limit = 600
virtual_mailbox_domains = hash:$c/vdomains
virtual_mailbox_maps = hash:$c/vmailbox
EOF
  # with the lab's own main.cf: a fresh machine has no /etc/postfix/main.cf for postmap
  postmap -c "$c" "hash:$c/vdomains"
  postmap -c "$c" "hash:$c/vmailbox"
  local limits=""
  [ "${1:-}" = default-limits ] && limits="-o smtpd_soft_error_limit=10 -o smtpd_hard_error_limit=20 -o smtpd_error_sleep_time=1s -o smtpd_junk_command_limit=100"
  lab_postfix_master_cf "$LAB" <<EOF
127.0.0.1:2525 inet n - n - - smtpd $limits
EOF
  lab_postfix_queue "$LAB"
}

wait_ready() {
  ip netns exec "$NS" "$PY" "$HERE/ready.py" "$(head -1 "$LAB/data/ips")"
}

do_up() {
  local n=${1:?N} m=${2:?M} k=${3:?K} nulls=${4:-10000} limits=${5:-} t0
  t0=$(date +%s%3N)
  do_down
  mkdir -p "$LAB/run" "$LAB/log" "$LAB/data"
  rm -f "$LAB"/run/* "$LAB"/log/* "$LAB/proxy.log"
  "$PY" "$HERE/gen.py" lab "$LAB/data" "$n" "$m" "$k" "$nulls"
  echo "$n $m $k $nulls${limits:+ $limits}" >"$LAB/data/params"
  lab_ns_add "$NS" 127.0.0.53
  write_unbound; write_postfix "$limits"
  lab_start_bg "$NS" "$LAB" unbound unbound -d -c "$LAB/unbound/unbound.conf"
  lab_postfix_start "$NS" "$LAB"
  : >"$LAB/proxy.log"
  lab_start_bg "$NS" "$LAB" proxy \
    "$PY" "$HERE/proxy.py" 0.0.0.0:25 127.0.0.1:2525 "$DELAY_MS" "$LAB/proxy.log"
  if ! wait_ready; then
    lab_log_tails "$LAB"
    die "bench lab did not come up"
  fi
  say "up in $(( $(date +%s%3N) - t0 )) ms: $n domains x $m addresses on $k MX IPs (+$nulls null-MX domains), ns $NS, dir $LAB"
}

do_status() {
  local rc=0
  lab_status "$NS" "$LAB" "$SERVICES" || rc=1
  [ -f "$LAB/data/params" ] && say "params (N M K NULLDOMS): $(cat "$LAB/data/params")"
  return $rc
}

case $CMD in
  up) shift; do_up "$@" ;;
  down) do_down; say "down: namespace $NS removed" ;;
  status) do_status ;;
  *) echo "usage: $0 up N M K [NULLDOMS] [default-limits] | down | status" >&2; exit 2 ;;
esac
