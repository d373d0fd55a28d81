# shellcheck shell=bash
# mailprobe labs: shell functions shared by the test lab (tests/lab/lab.sh) and the bench
# lab (bench/bulk/lab.sh). Sourced, never run. Bash, `set -euo pipefail` safe.
#
# What it does: process handling (start a daemon in a namespace with its pid file, stop it
# by pid, tear a namespace down), the namespace itself, the unbound settings both labs
# share, and the Postfix parts they share (directories, the main.cf settings they have in
# common, master.cf's internal services, queue layout, `postfix check` and start).
# What it does not: hold any state or default. Every function takes the namespace, the lab
# dir and the lists it works on as parameters, so the two labs (different namespaces,
# different dirs) never see each other; zones, mailboxes, listeners and each lab's own
# unbound and Postfix settings stay in that lab's script.
#
# The sourcing script defines `die MESSAGE` (print, exit non-zero) and `say MESSAGE`, so
# messages keep that lab's prefix and stream.
#
# Layout under a lab dir DIR: DIR/run/NAME.pid, DIR/log/NAME.out (one per service),
# DIR/unbound/, DIR/postfix/{etc,spool,data,mail}, DIR/postfix/postfix.log.

# PID -> 0 if it exists and is not a zombie (an orphan waits for init to reap it)
lab_running() { # PID
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

lab_pid_alive() { # NS PID -> 0 if PID runs inside namespace NS (a recycled pid is not ours)
  local ns=$1 pid=$2
  [ -n "$pid" ] && lab_running "$pid" || return 1
  [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ]
}

lab_stop_pid() { # NS PID TRIES: TERM, wait up to TRIES x 50 ms, KILL
  local ns=$1 pid=$2 tries=$3
  lab_pid_alive "$ns" "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq "$tries"); do
    lab_running "$pid" || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Every daemon runs in the foreground under `ip netns exec`, detached into its own session,
# stdin/stdout/stderr away from the caller (ctest waits for open pipes).
lab_start_bg() { # NS DIR NAME CMD...: start CMD in NS; DIR/run/NAME.pid, DIR/log/NAME.out
  local ns=$1 dir=$2 name=$3
  shift 3
  setsid ip netns exec "$ns" "$@" </dev/null >"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/run/$name.pid"
}

lab_ns_exists() { # NS -> 0 if the namespace exists
  ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"
}

lab_ns_add() { # NS NAMESERVER: new namespace with lo up; its programs resolve via NAMESERVER
  local ns=$1 nameserver=$2
  ip netns add "$ns" || die "cannot create network namespace $ns"
  ip netns exec "$ns" ip link set lo up || die "cannot bring lo up in $ns"
  # read by programs started with `ip netns exec` (Postfix's resolver, for example)
  mkdir -p "/etc/netns/$ns"
  echo "nameserver $nameserver" >"/etc/netns/$ns/resolv.conf"
  printf '127.0.0.1 localhost\n' >"/etc/netns/$ns/hosts"
}

# Stop what `up` started: each service of SERVICES (start order, space-separated), last
# first, by its pid file (lab_stop_pid with TRIES); then any straggler left in NS (what
# the daemons forked: smtpd, Exim children) by pid, TERM, SETTLE seconds, KILL; then the
# namespace and /etc/netns/NS. Idempotent.
lab_down() { # NS DIR SERVICES TRIES SETTLE
  local ns=$1 dir=$2 services=$3 tries=$4 settle=$5 name pid
  if [ -d "$dir/run" ]; then
    for name in $(echo "$services" | tr ' ' '\n' | tac); do
      if [ -f "$dir/run/$name.pid" ]; then
        pid=$(cat "$dir/run/$name.pid")
        lab_stop_pid "$ns" "$pid" "$tries"
        rm -f "$dir/run/$name.pid"
      fi
    done
  fi
  if lab_ns_exists "$ns"; then
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep "$settle"
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  fi
  rm -rf "/etc/netns/$ns"
}

lab_status() { # NS DIR SERVICES: say whether each runs; 0 only if all of them do
  local ns=$1 dir=$2 services=$3 name pid rc=0
  for name in $services; do
    pid=$(cat "$dir/run/$name.pid" 2>/dev/null || true)
    if lab_pid_alive "$ns" "$pid"; then
      say "$name running (pid $pid)"
    else
      say "$name NOT running"; rc=1
    fi
  done
  return $rc
}

lab_log_tails() { # DIR: the end of each service's output, on stderr (for a failed `up`)
  local f
  for f in "$1"/log/*.out; do echo "== $f"; tail -5 "$f"; done >&2
}

# ---------------------------------------------------------------------------------------
# unbound: one resolver per lab, `unbound -d -c DIR/unbound/unbound.conf`.

# unbound.conf: the server settings both labs share (listen on ADDR:53, foreground, no
# chroot, state and log in DIR/unbound, one thread, 127/8 may query and be queried,
# iterator only), then the lab's own server settings and clauses from stdin (caches,
# logging, its zones), then remote control off. Settings are order-independent within
# a clause; the lab's stdin starts in the server clause.
lab_unbound_conf() { # DIR ADDR < settings
  local d=$1/unbound addr=$2
  mkdir -p "$d"
  {
    cat <<EOF
server:
  interface: $addr
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
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
EOF
    cat
    printf 'remote-control:\n  control-enable: no\n'
  } >"$d/unbound.conf"
}

# ---------------------------------------------------------------------------------------
# Postfix: one instance per lab, `master -c DIR/postfix/etc`, everything under DIR/postfix.

lab_postfix_dirs() { # DIR
  mkdir -p "$1/postfix/etc" "$1/postfix/spool" "$1/postfix/data" "$1/postfix/mail"
}

# main.cf: the settings both labs share (no local delivery, no relaying, no DATA, no VRFY,
# no delays, logging to DIR/postfix/postfix.log), myhostname mx.DOMAIN, banner "... (TAG)",
# then the lab's own settings from stdin (listen addresses, limits, maps, TLS). A setting
# may be given once only (Postfix would take the last and warn).
lab_postfix_main_cf() { # DIR DOMAIN TAG < settings
  local dir=$1 domain=$2 tag=$3 p=$1/postfix dup
  {
    cat <<EOF
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/data
mail_owner = postfix
myhostname = mx.$domain
mydomain = $domain
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.255.255.254/32
inet_protocols = ipv4
biff = no
append_dot_mydomain = no
in_flow_delay = 0
smtpd_delay_reject = yes
smtpd_peername_lookup = no
smtpd_error_sleep_time = 0
smtpd_banner = \$myhostname ESMTP Postfix ($tag)
disable_vrfy_command = yes
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_data_restrictions = reject
virtual_mailbox_base = $p/mail
smtpd_tls_security_level = none
maillog_file = $p/postfix.log
maillog_file_prefixes = $dir
EOF
    cat
  } >"$p/etc/main.cf"
  dup=$(sed -n 's/^\([a-z0-9_]*\) *=.*/\1/p' "$p/etc/main.cf" | sort | uniq -d | tr '\n' ' ')
  [ -z "$dup" ] || die "$p/etc/main.cf: set twice: $dup"
}

# master.cf: the lab's smtpd listeners from stdin, then the internal services (postlogd
# writes maillog_file; "virtual" discards, though DATA is refused anyway).
lab_postfix_master_cf() { # DIR < listeners
  {
    cat
    cat <<'EOF'
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
  } >"$1/postfix/etc/master.cf"
}

# queue layout and permissions, as `postfix start` would make them; an empty log
lab_postfix_queue() { # DIR
  local dir=$1 c=$1/postfix/etc
  if [ ! -d "$dir/postfix/spool/maildrop" ] || [ ! -d "$dir/postfix/spool/pid" ]; then
    postfix -c "$c" post-install create-missing >/dev/null 2>&1 \
      || /usr/lib/postfix/sbin/post-install config_directory="$c" create-missing >/dev/null
    postfix -c "$c" set-permissions >/dev/null 2>&1 || true
  fi
  : >"$dir/postfix/postfix.log"
}

# `postfix check` (output in DIR/log/postfix-check.out), then master as service "postfix"
lab_postfix_start() { # NS DIR
  local ns=$1 dir=$2 c=$2/postfix/etc
  postfix -c "$c" check >"$dir/log/postfix-check.out" 2>&1 || {
    cat "$dir/log/postfix-check.out" >&2; die "postfix check failed"; }
  lab_start_bg "$ns" "$dir" postfix /usr/lib/postfix/sbin/master -c "$c" -d
}
