#!/usr/bin/env python3
"""bench/bounces.py - the bounce reader of `mailprobe learn` on sisimai's public corpus.

usage: bench/bounces.py MIRROR [MAILPROBE] [--show N] [--dir maildir/bsd]
  MIRROR     a git clone (bare or not) of github.com/sisimai/set-of-emails
  MAILPROBE  the binary (default: build/mailprobe)
  --dir      the corpus directory (maildir/bsd: LF; maildir/dos: CRLF; maildir/mac: CR)

The corpus is read from git (maildir/bsd/*.eml at HEAD, or --dir) into a temporary directory and
never copied into this tree. The expected answer of each message is what sisimai itself
(Debian's libsisimai-perl, the reference bounce parser the corpus was collected for)
extracts: the recipient and the delivery status. Messages sisimai finds nothing in, and
its "feedback" (ARF complaint) and "vacation" (auto-reply) records, are not bounces and
are left out. A recipient counts as read correctly when `mailprobe learn --list` reports
the same address (case-insensitive) with the same status; "address" alone is counted
too, and statuses sisimai made up itself (its x.0.9yy pseudo-codes, or x.0.0 when the
bounce gives no code) count when the class (first digit) agrees.
"""
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict

ORACLE = r'''
use strict; use warnings; use Sisimai;
for my $f (@ARGV) {
  my $v = eval { Sisimai->make($f, delivered => 1) } || [];
  for my $e (@$v) {
    printf "%s\t%s\t%s\t%s\n", $f, lc($e->recipient->address), $e->deliverystatus, $e->reason;
  }
}
'''


def main():
    argv = sys.argv[1:]
    show, sub = 20, 'maildir/bsd'
    if '--show' in argv:
        i = argv.index('--show')
        show = int(argv[i + 1])
        del argv[i:i + 2]
    if '--dir' in argv:
        i = argv.index('--dir')
        sub = argv[i + 1].rstrip('/')
        del argv[i:i + 2]
    args = argv
    if not args:
        print(__doc__)
        return 2
    mirror = args[0]
    mp = args[1] if len(args) > 1 else 'build/mailprobe'
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(['git', '--git-dir', mirror if mirror.endswith('.git') or
                               os.path.isfile(os.path.join(mirror, 'HEAD')) else
                               os.path.join(mirror, '.git'), 'archive', 'HEAD', sub],
                              check=True, capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', tmp], input=arch, check=True)
        d = os.path.join(tmp, sub)
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith('.eml'))
        out = subprocess.run(['perl', '-e', ORACLE] + files, check=True, capture_output=True,
                             text=True).stdout
        want = defaultdict(list)
        for line in out.splitlines():
            f, rcpt, status, reason = line.split('\t')
            if reason in ('feedback', 'vacation') or not rcpt:
                continue
            want[f].append((rcpt, status, reason))
        got = defaultdict(dict)
        res = subprocess.run([mp, 'learn', '--list'] + files, capture_output=True, text=True,
                             errors='replace')
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        for line in res.stdout.splitlines():
            src, kind, addr, status = line.split('\t')[:4]
            got[src.split(':message')[0]][addr.lower()] = (status, kind)
    # Hard bounces go to the deny list: how many of ours does sisimai also read as "the
    # mailbox or domain is not there" (userunknown, hostunknown, suspend, hasmoved,
    # notaccept)? The others are listed: each is a possible false deny-list entry.
    mailbox_reasons = {'userunknown', 'hostunknown', 'suspend', 'hasmoved', 'notaccept'}
    hard = hard_ok = 0
    hard_other = []
    for f, rows in want.items():
        for rcpt, status, reason in rows:
            g = got[f].get(rcpt)
            if g and g[1] == 'hard':
                hard += 1
                if reason in mailbox_reasons:
                    hard_ok += 1
                else:
                    hard_other.append((os.path.basename(f), rcpt, status, reason))
    if not want:
        print(f'sisimai found no bounce in {len(files)} files of {sub}: nothing to compare')
        return 1
    n = ok = ok_addr = msgs_ok = 0
    wrong = Counter()
    examples = []
    for f, rows in want.items():
        all_ok = True
        for rcpt, status, reason in rows:
            n += 1
            g = got[f].get(rcpt)
            if g is None:
                why = 'address missed' if not got[f] else 'other address'
                all_ok = False
            else:
                ok_addr += 1
                s = g[0]
                pseudo = status.endswith('.0.0') or '.0.9' in status or not status
                if s == status or (pseudo and s[:1] == status[:1] and s):
                    ok += 1
                    continue
                why = 'status missing' if not s else 'status differs'
                all_ok = False
            wrong[why] += 1
            examples.append((os.path.basename(f), rcpt, status, reason, why,
                             ' '.join(f'{a}={v[0]}' for a, v in got[f].items())))
        msgs_ok += all_ok
    print(f'messages: {len(want)} bounces with a recipient in sisimai ({len(files)} files)')
    print(f'recipients: {n}; address and status right: {ok} ({100.0 * ok / n:.1f} %); '
          f'address right: {ok_addr} ({100.0 * ok_addr / n:.1f} %)')
    print(f'messages entirely right: {msgs_ok} ({100.0 * msgs_ok / len(want):.1f} %)')
    print(f'hard bounces (deny-list entries): {hard}; sisimai agrees the mailbox/domain is '
          f'not there: {hard_ok} ({100.0 * hard_ok / max(hard, 1):.1f} %)')
    for h in hard_other:
        print('   hard, sisimai says:', '\t'.join(h))
    for why, c in wrong.most_common():
        print(f'  {why}: {c}')
    for e in examples[:show]:
        print('  ', '\t'.join(e))
    return 0


if __name__ == '__main__':
    sys.exit(main())
