#!/bin/bash
# mailprobe bulk bench lab: N domains x M addresses on K MX IPs, inside its own namespace.
#
#   bench/bulk/lab.sh up N M K [NULLDOMS]   (re)create namespace + unbound + Postfix + proxy
#   bench/bulk/lab.sh down                  stop them (by pid) and delete the namespace
#   bench/bulk/lab.sh status
#
# Namespace $MP_BENCH_NS (default mpbench); everything under $MP_BENCH_DIR (/tmp/mpbench).
#  - unbound on 127.0.0.53: dNNNNN.bench MX 10 mx.dNNNNN.bench, A 127.1.x.y (domain i on
#    MX IP i % K), nNNNNN.bench (NULLDOMS of them, default 10000) with a null MX "0 .".
#  - one Postfix (master -c DIR, pid kept) on 127.0.0.1:2525, hash maps: u0..u(ceil(M/2)-1)
#    exist at every domain, the other local parts get 550 5.1.1.
#  - bench/bulk/proxy.py on 0.0.0.0:25 (so every 127.1.x.y:25 reaches it), 25 ms each way
#    ($MP_BENCH_DELAY_MS), forwarding to Postfix and logging opens/closes per MX IP to
#    $DIR/proxy.log (bench/bulk/proxylog.py summarises it).
# Same process handling as tests/lab/lab.sh; nothing shared with it.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
NS=${MP_BENCH_NS:-mpbench}
LAB=${MP_BENCH_DIR:-/tmp/mpbench}
DELAY_MS=${MP_BENCH_DELAY_MS:-25}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
SERVICES="unbound postfix proxy"
CMD=${1:-status}

die() { echo "benchlab: $*" >&2; exit 1; }
say() { echo "benchlab: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"
case $NS in mplab|mpme|mpci|mpcb) die "namespace $NS belongs to other runs" ;; esac
case $LAB in /|/tmp|/tmp/|/var|/usr|/etc|"") die "refusing lab dir '$LAB'" ;; esac

start_bg() { # NAME CMD...
  local name=$1; shift
  setsid ip netns exec "$NS" "$@" </dev/null >"$LAB/log/$name.out" 2>&1 &
  echo $! >"$LAB/run/$name.pid"
}
running() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_alive() { [ -n "$1" ] && running "$1" && [ "$(ip netns identify "$1" 2>/dev/null)" = "$NS" ]; }
stop_pid() {
  local pid=$1
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do running "$pid" || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

do_down() {
  local name pid
  if [ -d "$LAB/run" ]; then
    for name in $(echo "$SERVICES" | tr ' ' '\n' | tac); do
      if [ -f "$LAB/run/$name.pid" ]; then
        stop_pid "$(cat "$LAB/run/$name.pid")"; rm -f "$LAB/run/$name.pid"
      fi
    done
  fi
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; then
    # stragglers inside OUR namespace (Postfix children), by pid
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NS"
  fi
  rm -rf "/etc/netns/$NS"
}

write_unbound() {
  local d=$LAB/unbound
  mkdir -p "$d"
  cat >"$d/unbound.conf" <<EOF
server:
  interface: 127.0.0.53
  port: 53
  do-ip4: yes
  do-ip6: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$d"
  pidfile: "$d/unbound.pid"
  logfile: "$d/unbound.log"
  use-syslog: no
  verbosity: 0
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  msg-cache-size: 64m
  rrset-cache-size: 64m
  num-queries-per-thread: 4096
  ratelimit: 0
  ip-ratelimit: 0
include: "$LAB/data/unbound-data.conf"
remote-control:
  control-enable: no
EOF
}

write_postfix() {
  local c=$LAB/postfix/etc
  mkdir -p "$c" "$LAB/postfix/spool" "$LAB/postfix/data" "$LAB/postfix/mail"
  cp "$LAB/data/vdomains" "$LAB/data/vmailbox" "$c/"
  postmap "hash:$c/vdomains"
  postmap "hash:$c/vmailbox"
  cat >"$c/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $LAB/postfix/spool
data_directory = $LAB/postfix/data
mail_owner = postfix
myhostname = mx.bench
mydomain = bench
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.255.255.254/32
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
biff = no
append_dot_mydomain = no
in_flow_delay = 0
smtpd_delay_reject = yes
smtpd_peername_lookup = no
smtpd_error_sleep_time = 0
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
smtpd_banner = \$myhostname ESMTP Postfix (bench)
disable_vrfy_command = yes
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_data_restrictions = reject
virtual_mailbox_domains = hash:$c/vdomains
virtual_mailbox_maps = hash:$c/vmailbox
virtual_mailbox_base = $LAB/postfix/mail
smtpd_tls_security_level = none
maillog_file = $LAB/postfix/postfix.log
maillog_file_prefixes = $LAB
EOF
  cat >"$c/master.cf" <<EOF
127.0.0.1:2525 inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  if [ ! -d "$LAB/postfix/spool/maildrop" ] || [ ! -d "$LAB/postfix/spool/pid" ]; then
    postfix -c "$c" post-install create-missing >/dev/null 2>&1 \
      || /usr/lib/postfix/sbin/post-install config_directory="$c" create-missing >/dev/null
    postfix -c "$c" set-permissions >/dev/null 2>&1 || true
  fi
  : >"$LAB/postfix/postfix.log"
}

wait_ready() {
  ip netns exec "$NS" "$PY" "$HERE/ready.py" "$(head -1 "$LAB/data/ips")"
}

do_up() {
  local n=${1:?N} m=${2:?M} k=${3:?K} nulls=${4:-10000} t0
  t0=$(date +%s%3N)
  do_down
  mkdir -p "$LAB/run" "$LAB/log" "$LAB/data"
  rm -f "$LAB"/run/* "$LAB"/log/* "$LAB/proxy.log"
  "$PY" "$HERE/gen.py" lab "$LAB/data" "$n" "$m" "$k" "$nulls"
  echo "$n $m $k $nulls" >"$LAB/data/params"
  ip netns add "$NS" || die "cannot create namespace $NS"
  ip netns exec "$NS" ip link set lo up
  mkdir -p "/etc/netns/$NS"
  echo "nameserver 127.0.0.53" >"/etc/netns/$NS/resolv.conf"
  printf '127.0.0.1 localhost\n' >"/etc/netns/$NS/hosts"
  write_unbound; write_postfix
  postfix -c "$LAB/postfix/etc" check >"$LAB/log/postfix-check.out" 2>&1 || {
    cat "$LAB/log/postfix-check.out" >&2; die "postfix check failed"; }
  start_bg unbound unbound -d -c "$LAB/unbound/unbound.conf"
  start_bg postfix /usr/lib/postfix/sbin/master -c "$LAB/postfix/etc" -d
  : >"$LAB/proxy.log"
  start_bg proxy "$PY" "$HERE/proxy.py" 0.0.0.0:25 127.0.0.1:2525 "$DELAY_MS" "$LAB/proxy.log"
  if ! wait_ready; then
    for f in "$LAB"/log/*.out; do echo "== $f"; tail -5 "$f"; done >&2
    die "bench lab did not come up"
  fi
  say "up in $(( $(date +%s%3N) - t0 )) ms: $n domains x $m addresses on $k MX IPs (+$nulls null-MX domains), ns $NS, dir $LAB"
}

do_status() {
  local name pid rc=0
  for name in $SERVICES; do
    pid=$(cat "$LAB/run/$name.pid" 2>/dev/null || true)
    if pid_alive "$pid"; then say "$name running (pid $pid)"; else say "$name NOT running"; rc=1; fi
  done
  [ -f "$LAB/data/params" ] && say "params (N M K NULLDOMS): $(cat "$LAB/data/params")"
  return $rc
}

case $CMD in
  up) shift; do_up "$@" ;;
  down) do_down; say "down: namespace $NS removed" ;;
  status) do_status ;;
  *) echo "usage: $0 up N M K [NULLDOMS] | down | status" >&2; exit 2 ;;
esac
