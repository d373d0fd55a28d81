#!/bin/bash
# mailprobe test lab: real DNS and mail servers inside a network namespace.
#
#   tests/lab/lab.sh up     [DIR]   (re)create the namespace and start everything
#   tests/lab/lab.sh down   [DIR]   stop what `up` started (by pid) and delete the namespace
#   tests/lab/lab.sh status [DIR]   show what runs; exit 0 only if all of it does
#
# Namespace name: $MP_LAB_NS (default mplab). Lab dir (configs, state, logs, pid files):
# DIR, else $MP_LAB_DIR, else /tmp/mplab-$NS. Everything listens on 127.x addresses inside
# the namespace, whose only interface is lo: nothing here can reach the real internet.
# The address/domain table is in docs/internals/lab.md and in zone_data below.
# Process handling and the unbound/Postfix settings shared with the bench lab: lablib.sh.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

NS=${MP_LAB_NS:-mplab}
CMD=${1:-status}
LAB=${2:-${MP_LAB_DIR:-/tmp/mplab-$NS}}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lablib.sh
. "$HERE/lablib.sh"
EXIM_CACHE=${MP_LAB_EXIM_CACHE:-/var/cache/mailprobe-lab/exim}
EXIM=$EXIM_CACHE/root/usr/sbin/exim4
PY=/usr/bin/python3
GREY_DELAY=${MP_LAB_GREYLIST_DELAY:-5}
PROXY_DELAY_MS=${MP_LAB_PROXY_DELAY_MS:-25}
# Services started by `up`, in start order; each has $LAB/run/NAME.pid.
SERVICES="dnsstub unbound postgrey postfix exim smtpscript delayproxy"

die() { echo "lab: $*" >&2; exit 1; }
say() { echo "lab: $*"; }
nsx() { ip netns exec "$NS" "$@"; }
now_ms() { date +%s%3N; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, port 25)"
case $LAB in /|/tmp|/tmp/|/var|/usr|/etc|"") die "refusing lab dir '$LAB'" ;; esac

do_down() {
  lab_down "$NS" "$LAB" "$SERVICES" 60 0.2  # TERM, KILL after 3 s
  rmdir /etc/netns 2>/dev/null || true  # only if empty
}

# ---------------------------------------------------------------------------------------
# DNS data. One record per line: NAME TYPE DATA (TTL 300). NAME relative to nothing: full.
zone_data() {
cat <<'EOF'
lab.test A 127.0.0.10
lab.test MX 10 mx.lab.test.
mx.lab.test A 127.0.0.10
probe.lab.test A 127.0.0.1
postfix.test MX 10 mx.postfix.test.
postfix.test TXT "v=spf1 mx -all"
_dmarc.postfix.test TXT "v=DMARC1; p=reject"
mx.postfix.test A 127.0.1.10
catchall.test MX 10 mx.catchall.test.
mx.catchall.test A 127.0.1.11
greylist.test MX 10 mx.greylist.test.
mx.greylist.test A 127.0.1.12
access.test MX 10 mx.access.test.
mx.access.test A 127.0.1.13
tls.test MX 10 mx.tls.test.
mx.tls.test A 127.0.1.14
sender.test MX 10 mx.sender.test.
mx.sender.test A 127.0.1.15
relay.test MX 10 mx.postfix.test.
multi.test MX 20 mx2.multi.test.
multi.test MX 10 mx1.multi.test.
multi.test MX 30 mx3.multi.test.
mx1.multi.test A 127.0.1.99
mx2.multi.test A 127.0.1.10
mx3.multi.test A 127.0.1.10
allrefused.test MX 10 mx1.allrefused.test.
allrefused.test MX 20 mx2.allrefused.test.
mx1.allrefused.test A 127.0.1.99
mx2.allrefused.test A 127.0.1.98
twoip.test MX 10 mx.twoip.test.
mx.twoip.test A 127.0.1.98
mx.twoip.test A 127.0.1.10
cname.test MX 10 mxalias.cname.test.
mxalias.cname.test CNAME mx.postfix.test.
nullmx.test MX 0 .
implicit.test A 127.0.1.10
noaddr.test MX 10 ghost.noaddr.test.
ghost.noaddr.test TXT "this MX host has no address"
xn--bcher-kva.test MX 10 mx.postfix.test.
private.test MX 10 mx.private.test.
mx.private.test A 10.11.12.13
exim.test MX 10 mx.exim.test.
mx.exim.test A 127.0.2.10
delay.test MX 10 mx.delay.test.
mx.delay.test A 127.0.4.10
fallover.test MX 10 mx.cap421.script.test.
fallover.test MX 20 mx.catchall.test.
tempmail.test MX 10 mx.mail451.script.test.
tempmail.test MX 20 mx.catchall.test.
slowfall.test MX 10 mx.silent.script.test.
slowfall.test MX 20 mx.catchall.test.
catchall-exim.test MX 10 mx.catchall-exim.test.
mx.catchall-exim.test A 127.0.2.10
cap2-a.test MX 10 mx.cap2.script.test.
cap2-b.test MX 10 mx.cap2.script.test.
cap2-c.test MX 10 mx.cap2.script.test.
cap2-d.test MX 10 mx.cap2.script.test.
cap2-e.test MX 10 mx.cap2.script.test.
cap2-f.test MX 10 mx.cap2.script.test.
cap2-g.test MX 10 mx.cap2.script.test.
cap2-h.test MX 10 mx.cap2.script.test.
pp-catchall.test MX 10 mx0a-001.pphosted.com.
pp-verify.test MX 10 mx0a-001.pphosted.com.
mc-verify.test MX 10 eu-smtp-inbound-1.mimecast.com.
ms-verify.test MX 0 ms-verify-test.mail.protection.outlook.com.
gs-verify.test MX 1 aspmx.l.google.com.
yh-edge.test MX 1 mta7.am0.yahoodns.net.
strict.test MX 10 mx.strict.test.
strict2.test MX 10 mx.strict.test.
mx.strict.test A 127.0.1.21
nopipe-a.test MX 10 mx.nopipe.script.test.
nopipe-b.test MX 10 mx.nopipe.script.test.
dropmid-a.test MX 10 mx.dropmid.script.test.
dropmid-b.test MX 10 mx.dropmid.script.test.
EOF
# the scripted server: one domain per behaviour (see smtpscript.py BEHAVIOURS)
"$PY" - "$HERE/smtpscript.py" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("smtpscript", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
for ip, b in m.BEHAVIOURS.items():
    print("%s.script.test MX 10 mx.%s.script.test." % (b, b))
    print("mx.%s.script.test A %s" % (b, ip))
EOF
# records of the .test zone kept in files of their own (one feature each), same format
cat "$HERE"/zones/*.records 2>/dev/null | grep -v '^#' || true
}

# Whole zones outside .test (reverse zones, ...): tests/lab/zones/ZONE.zone, in zone-file
# syntax, each served as an auth-zone like PROVIDER_ZONES. unbound's built-in local zone
# of the same name (127.in-addr.arpa: "localhost") is switched off.
extra_zones() {
  local f
  for f in "$HERE"/zones/*.zone; do
    [ -e "$f" ] && basename "$f" .zone
  done
}

# Directly queried DNS stubs (no delegation): tests/lab/zones/*.stubs, lines "IP BEHAVIOUR"
# (dnsstub.py), e.g. the doctor's myip server.
direct_stubs() {
  cat "$HERE"/zones/*.stubs 2>/dev/null | grep -v '^#' | awk 'NF == 2 {printf "%s=%s ", $1, $2}' || true
}

# Names of real providers' MX hosts, served by unbound inside the namespace only (they
# never leave it): Postfix listeners dressed as those providers (see write_postfix).
# One auth-zone per PROVIDER_ZONES entry; records as in zone_data.
PROVIDER_ZONES="pphosted.com mimecast.com outlook.com google.com yahoodns.net"
provider_zone_data() {
cat <<'EOF'
mx0a-001.pphosted.com A 127.0.1.16
eu-smtp-inbound-1.mimecast.com A 127.0.1.17
ms-verify-test.mail.protection.outlook.com A 127.0.1.18
aspmx.l.google.com A 127.0.1.19
mta7.am0.yahoodns.net A 127.0.1.20
EOF
}

# zones delegated (stub-zone) to dnsstub.py: NAME IP BEHAVIOUR
STUBS="servfail.test 127.0.0.54 servfail
lame.test 127.0.0.55 lame
dnstimeout.test 127.0.0.56 silent"

# Postfix virtual mailbox domains and their users
PF_DOMAINS="postfix.test multi.test twoip.test cname.test implicit.test xn--bcher-kva.test
delay.test greylist.test access.test tls.test sender.test fallover.test tempmail.test slowfall.test
strict.test strict2.test
fleet-a.test fleet-b.test fleet-c.test fleet-d.test fleet-e.test fleet-f.test"
PF_USERS="alice bob postmaster first.last"
# domains of the provider-dressed listeners: mailboxes as above (refusals worded by the
# listener's check_recipient_access, see provider_rcpt) and catch-alls (@domain aliased)
PF_DRESSED_DOMAINS="pp-verify.test mc-verify.test ms-verify.test gs-verify.test"
PF_DRESSED_CATCHALL="pp-catchall.test yh-edge.test"

# ---------------------------------------------------------------------------------------
write_unbound() {
  local d=$LAB/unbound
  mkdir -p "$d"
  rm -f "$d/unbound.log"
  {
    echo "\$TTL 300"
    echo 'test. 300 IN SOA ns.test. hostmaster.lab.test. 1 3600 600 86400 5'
    echo 'test. 300 IN NS ns.test.'
    echo 'ns.test. 300 IN A 127.0.0.53'
    zone_data | while read -r name type data; do
      [ -n "$name" ] || continue
      printf '%s. 300 IN %s %s\n' "$name" "$type" "$data"
    done
    echo "$STUBS" | while read -r name ip _; do
      printf '%s. 300 IN NS ns.%s.\nns.%s. 300 IN A %s\n' "$name" "$name" "$name" "$ip"
    done
  } >"$d/test.zone"
  local z
  for z in $PROVIDER_ZONES; do
    {
      echo "\$TTL 300"
      echo "$z. 300 IN SOA ns.test. hostmaster.lab.test. 1 3600 600 86400 5"
      echo "$z. 300 IN NS ns.test."
      provider_zone_data | while read -r name type data; do
        case $name in *."$z") printf '%s. 300 IN %s %s\n' "$name" "$type" "$data" ;; esac
      done
    } >"$d/$z.zone"
  done
  # unbound.conf: the settings shared with the bench lab (lablib.sh), then the lab's own
  {
    cat <<EOF
  do-udp: yes
  do-tcp: yes
  log-time-ascii: yes
  log-queries: yes
  log-replies: yes
  log-servfail: yes
  verbosity: 1
  qname-minimisation: no
  rrset-roundrobin: no
  minimal-responses: no
  harden-referral-path: no
  cache-max-ttl: 300
  cache-max-negative-ttl: 5
  infra-host-ttl: 5
  outbound-msg-retry: 1
  # unbound answers NXDOMAIN for the reserved "test." itself unless told otherwise
  local-zone: "test." nodefault
EOF
    for z in $(extra_zones); do printf '  local-zone: "%s." nodefault\n' "$z"; done
    # the .test zone is an authoritative zone that the iterator uses as its upstream
    # (for-upstream): answers are built like a real recursive resolver builds them (CNAME
    # chains followed, delegations to the broken servers of dnsstub.py followed).
    printf 'auth-zone:\n  name: "test."\n  zonefile: "%s/test.zone"\n' "$d"
    printf '  for-downstream: no\n  for-upstream: yes\n  fallback-enabled: no\n'
    for z in $PROVIDER_ZONES; do
      printf 'auth-zone:\n  name: "%s."\n  zonefile: "%s/%s.zone"\n' "$z" "$d" "$z"
      printf '  for-downstream: no\n  for-upstream: yes\n  fallback-enabled: no\n'
    done
    for z in $(extra_zones); do
      cp "$HERE/zones/$z.zone" "$d/$z.zone"
      printf 'auth-zone:\n  name: "%s."\n  zonefile: "%s/%s.zone"\n' "$z" "$d" "$z"
      printf '  for-downstream: no\n  for-upstream: yes\n  fallback-enabled: no\n'
    done
  } | lab_unbound_conf "$LAB" 127.0.0.53
}

# ---------------------------------------------------------------------------------------
write_tls() {
  local d=$LAB/tls
  mkdir -p "$d"
  if [ ! -s "$d/cert.pem" ] || [ ! -s "$d/key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=mx.lab.test" -keyout "$d/key.pem" -out "$d/cert.pem" >/dev/null 2>&1
  fi
  chmod 644 "$d/cert.pem"; chmod 640 "$d/key.pem"
}

# ---------------------------------------------------------------------------------------
write_postfix() {
  local c=$LAB/postfix/etc dom u
  lab_postfix_dirs "$LAB"
  : >"$c/vmailbox"
  for dom in $PF_DOMAINS; do
    for u in $PF_USERS full disabled blocked busy temp over; do
      echo "$u@$dom $dom/$u/" >>"$c/vmailbox"
    done
  done
  for dom in $PF_DRESSED_DOMAINS; do
    for u in $PF_USERS; do echo "$u@$dom $dom/$u/" >>"$c/vmailbox"; done
  done
  cat >"$c/valias" <<'EOF'
@catchall.test alice@postfix.test
@greylist.test alice@postfix.test
EOF
  for dom in $PF_DRESSED_CATCHALL; do echo "@$dom alice@postfix.test" >>"$c/valias"; done
  # the dressed listeners refuse unknown recipients in their provider's words: known
  # users DUNNO (on to the mailbox table), anything else at the domain the reply below
  # (Postfix puts "<rcpt>: Recipient address rejected: " before the text, and 5.7.1
  # when the text has no enhanced code: hence the explicit ones)
  {
    for dom in $PF_DRESSED_DOMAINS; do
      for u in $PF_USERS; do echo "$u@$dom DUNNO"; done
    done
    cat <<'EOF'
pp-verify.test 550 5.1.1 User Unknown
gone@pp-catchall.test 550 5.1.1 User Unknown
mc-verify.test 550 5.1.1 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [lab-mc-1.eu1]
ms-verify.test 550 5.4.1 Access denied. AS(201806281) [AM4PEPF0000LAB1.eurprd04.prod.outlook.com]
gs-verify.test 550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser lab1-20020a05 - gsmtp
EOF
  } >"$c/provider_rcpt"
  cat >"$c/rcpt_access" <<'EOF'
full@access.test 452 4.2.2 Mailbox full
over@access.test 552 5.2.2 Mailbox quota exceeded
disabled@access.test 550 5.2.1 account disabled
blocked@access.test 550 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.1
busy@access.test 421 4.7.0 Too many connections, try again later
temp@access.test 451 4.3.0 Temporary lookup failure
EOF
  cat >"$c/sender_access" <<'EOF'
lab.test 553 5.7.1 domain lab.test is not allowed to send here
EOF
  # main.cf: the settings shared with the bench lab (lablib.sh), then the lab's own
  lab_postfix_main_cf "$LAB" postfix.test lab <<EOF
inet_interfaces = all
smtputf8_enable = yes
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
virtual_mailbox_domains = $(echo "$PF_DOMAINS" catchall.test "$PF_DRESSED_DOMAINS" "$PF_DRESSED_CATCHALL" | tr '\n' ' ')
virtual_mailbox_maps = texthash:$c/vmailbox
virtual_alias_maps = texthash:$c/valias
smtpd_tls_cert_file = $LAB/tls/cert.pem
smtpd_tls_key_file = $LAB/tls/key.pem
smtpd_tls_loglevel = 1
EOF
  # master.cf: the listeners, then the internal services (lablib.sh)
  lab_postfix_master_cf "$LAB" <<EOF
# service type private unpriv chroot wakeup maxproc command
127.0.1.10:smtp inet n - n - - smtpd -o syslog_name=postfix/mbox -o smtpd_tls_security_level=may
127.0.1.11:smtp inet n - n - - smtpd -o syslog_name=postfix/catchall -o myhostname=mx.catchall.test
127.0.1.12:smtp inet n - n - - smtpd -o syslog_name=postfix/greylist -o myhostname=mx.greylist.test
  -o smtpd_recipient_restrictions=reject_unauth_destination,check_policy_service,inet:127.0.0.60:10023
127.0.1.13:smtp inet n - n - - smtpd -o syslog_name=postfix/access -o myhostname=mx.access.test
  -o smtpd_recipient_restrictions=reject_unauth_destination,check_recipient_access,texthash:$c/rcpt_access
127.0.1.14:smtp inet n - n - - smtpd -o syslog_name=postfix/tls -o myhostname=mx.tls.test
  -o smtpd_tls_security_level=encrypt
127.0.1.15:smtp inet n - n - - smtpd -o syslog_name=postfix/sender -o myhostname=mx.sender.test
  -o unknown_address_reject_code=550
  -o smtpd_sender_restrictions=reject_unknown_sender_domain,check_sender_access,texthash:$c/sender_access
# dressed as providers/gateways (MX names in PROVIDER_ZONES): their host name and banner
127.0.1.16:smtp inet n - n - - smtpd -o syslog_name=postfix/pphosted -o myhostname=mx0a-001.pphosted.com
  -o { smtpd_banner = \$myhostname ESMTP mfa-m0001001 }
  -o smtpd_recipient_restrictions=reject_unauth_destination,check_recipient_access,texthash:$c/provider_rcpt
127.0.1.17:smtp inet n - n - - smtpd -o syslog_name=postfix/mimecast -o myhostname=eu-smtp-inbound-1.mimecast.com
  -o { smtpd_banner = \$myhostname ESMTP Mimecast }
  -o smtpd_recipient_restrictions=reject_unauth_destination,check_recipient_access,texthash:$c/provider_rcpt
127.0.1.18:smtp inet n - n - - smtpd -o syslog_name=postfix/outlook -o myhostname=AM4PEPF0000LAB1.mail.protection.outlook.com
  -o { smtpd_banner = \$myhostname Microsoft ESMTP MAIL Service ready }
  -o smtpd_recipient_restrictions=reject_unauth_destination,check_recipient_access,texthash:$c/provider_rcpt
127.0.1.19:smtp inet n - n - - smtpd -o syslog_name=postfix/google -o myhostname=mx.google.com
  -o { smtpd_banner = \$myhostname ESMTP lab1-20020a05 - gsmtp }
  -o smtpd_recipient_restrictions=reject_unauth_destination,check_recipient_access,texthash:$c/provider_rcpt
127.0.1.20:smtp inet n - n - - smtpd -o syslog_name=postfix/yahoo -o myhostname=mta7.am0.yahoodns.net
  -o { smtpd_banner = \$myhostname ESMTP ready }
# Postfix's own error limits and sleep (the lab's main.cf raises them for the others): a
# client past 10 refused commands gets every reply 1 s late, at 20 "421 too many errors"
127.0.1.21:smtp inet n - n - - smtpd -o syslog_name=postfix/strict -o myhostname=mx.strict.test
  -o smtpd_soft_error_limit=10 -o smtpd_hard_error_limit=20 -o smtpd_error_sleep_time=1s
# connection-capped (t_fleet.py): anvil allows a client address 3 connections at once and
# answers a 4th "421 4.7.0 Error: too many connections"; the greeting comes after 1 s, so
# that sessions of several processes overlap
127.0.1.40:smtp inet n - n - - smtpd -o syslog_name=postfix/capped -o myhostname=mx.capped.test
  -o smtpd_client_connection_count_limit=3 -o smtpd_delay_reject=no
  -o { smtpd_client_restrictions = sleep 1 }
EOF
  lab_postfix_queue "$LAB"
}

# ---------------------------------------------------------------------------------------
write_exim() {
  local d=$LAB/exim
  mkdir -p "$d/spool" "$d/log"
  rm -f "$d"/log/*
  chown -R Debian-exim:Debian-exim "$d/spool" "$d/log"
  cat >"$d/exim.conf" <<EOF
# Exim, second dialect of the lab: accepts alice/bob/postmaster@exim.test, refuses others
# with Exim's usual "550 Unrouteable address"; catchall-exim.test accepts any local part
# (catch-all router); DATA is refused and logged.
primary_hostname = mx.exim.test
smtp_banner = \$primary_hostname ESMTP Exim \$version_number \$tod_full
local_interfaces = 127.0.2.10
daemon_smtp_ports = 25
spool_directory = $d/spool
log_file_path = $d/log/%slog
pid_file_path = $d/exim.pid
log_selector = +smtp_connection +smtp_protocol_error +smtp_syntax_error +incoming_port +received_recipients +smtp_no_mail +smtp_incomplete_transaction
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
smtp_accept_max = 50
smtp_accept_queue_per_connection = 0
queue_only = true
domainlist local_domains = exim.test : catchall-exim.test
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_predata = acl_check_predata
acl_smtp_data = acl_check_data

begin acl

acl_check_rcpt:
  deny    domains = !+local_domains
          message = relay not permitted
  require verify = recipient
  accept

acl_check_predata:
  deny    message = DATA is never allowed in the lab

acl_check_data:
  deny    message = no messages in the lab

begin routers

known_users:
  driver = accept
  domains = +local_domains
  local_parts = alice : bob : postmaster : first.last
  transport = devnull

# catchall-exim.test: a catch-all router, every local part accepted
catchall_router:
  driver = accept
  domains = catchall-exim.test
  transport = devnull

begin transports

devnull:
  driver = appendfile
  file = /dev/null
  user = Debian-exim

begin retry
*  *  F,1h,15m

begin rewrite
EOF
  chmod 644 "$d/exim.conf"
}

# ---------------------------------------------------------------------------------------
write_postgrey() {
  local d=$LAB/postgrey
  mkdir -p "$d/db"
  rm -f "$d"/db/*
  : >"$d/whitelist_clients"; : >"$d/whitelist_recipients"
  chown -R postgrey:postgrey "$d/db" 2>/dev/null || chmod 777 "$d/db"
}

# ---------------------------------------------------------------------------------------
wait_ready() { # wait for every listener; fail with the first one missing
  nsx "$PY" - "$HERE/smtpscript.py" <<'EOF'
import importlib.util, socket, sys, time
spec = importlib.util.spec_from_file_location("smtpscript", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
tcp = [("127.0.0.53", 53), ("127.0.0.60", 10023), ("127.0.2.10", 25), ("127.0.4.10", 25)]
tcp += [("127.0.1.%d" % i, 25) for i in range(10, 21)]
tcp += [(ip, 25) for ip in m.BEHAVIOURS]
deadline = time.time() + 20
for host, port in tcp:
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            break
        except OSError as e:
            if time.time() > deadline:
                sys.exit("lab: %s:%d not listening (%s)" % (host, port, e))
            time.sleep(0.05)
# unbound answers from its local zones
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07postfix\x04test\x00\x00\x0f\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
while True:
    try:
        s.sendto(q, ("127.0.0.53", 53))
        r = s.recv(512)
        if r[:2] == b"\x12\x34" and (r[3] & 0x0f) == 0 and r[6:8] != b"\x00\x00":
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("lab: unbound does not answer postfix.test MX")
    time.sleep(0.05)
EOF
}

do_up() {
  local t0
  t0=$(now_ms)
  if ! command -v unbound >/dev/null || ! command -v postfix >/dev/null \
    || ! command -v postgrey >/dev/null; then
    die "missing packages: run scripts/lab-deps"
  fi
  [ -x "$EXIM" ] || die "exim not unpacked in $EXIM_CACHE: run scripts/lab-deps"
  do_down
  mkdir -p "$LAB/run" "$LAB/log"
  rm -f "$LAB"/run/* "$LAB"/log/* "$LAB/smtpscript.jsonl"
  # programs in the namespace (Postfix's resolver) use the lab's unbound
  lab_ns_add "$NS" 127.0.0.53

  write_unbound; write_tls; write_postfix; write_exim; write_postgrey

  local stubargs
  stubargs="$(echo "$STUBS" | awk '{printf "%s=%s ", $2, $3}') $(direct_stubs)"
  # shellcheck disable=SC2086
  lab_start_bg "$NS" "$LAB" dnsstub "$PY" "$HERE/dnsstub.py" $stubargs
  lab_start_bg "$NS" "$LAB" unbound unbound -d -c "$LAB/unbound/unbound.conf"
  lab_start_bg "$NS" "$LAB" postgrey postgrey --inet=127.0.0.60:10023 \
    --dbdir="$LAB/postgrey/db" --delay="$GREY_DELAY" \
    --auto-whitelist-clients=0 --max-age=1 --retry-window=1 \
    --whitelist-clients="$LAB/postgrey/whitelist_clients" \
    --whitelist-recipients="$LAB/postgrey/whitelist_recipients" --hostname=mx.greylist.test
  lab_postfix_start "$NS" "$LAB"
  lab_start_bg "$NS" "$LAB" exim "$EXIM" -C "$LAB/exim/exim.conf" -bdf
  lab_start_bg "$NS" "$LAB" smtpscript "$PY" "$HERE/smtpscript.py" "$LAB/smtpscript.jsonl"
  lab_start_bg "$NS" "$LAB" delayproxy \
    "$PY" "$HERE/delayproxy.py" 127.0.4.10:25 127.0.1.10:25 "$PROXY_DELAY_MS"

  if ! wait_ready; then
    do_status || true
    lab_log_tails "$LAB"
    die "lab did not come up"
  fi
  say "up in $(( $(now_ms) - t0 )) ms: namespace $NS, lab dir $LAB"
}

do_status() {
  local rc=0
  if lab_ns_exists "$NS"; then
    say "namespace $NS exists"
  else
    say "namespace $NS absent"; rc=1
  fi
  lab_status "$NS" "$LAB" "$SERVICES" || rc=1
  return $rc
}

case $CMD in
  up) do_up ;;
  down) do_down; say "down: namespace $NS removed" ;;
  status) do_status ;;
  *) echo "usage: $0 up|down|status [DIR]" >&2; exit 2 ;;
esac
