#!/usr/bin/python3
"""Generate the bench lab's data and input lists.

  gen.py lab DIR N M K [NULLDOMS]
      DIR/unbound-data.conf  local-data for N domains dNNNNN.bench (MX mx.dNNNNN.bench,
                             A = MX IP number i % K, see ip()), plus NULLDOMS domains
                             nNNNNN.bench with a null MX (RFC 7505 "0 .")
      DIR/vdomains, DIR/vmailbox   Postfix maps (postmap them): users u0..u(ceil(M/2)-1)
                             exist at every dNNNNN.bench; u(ceil(M/2))..u(M-1) do not
      DIR/ips                the K MX IPs, one a line
  gen.py csv OUT N M [--prefix d|n] [--seed S] [--sample R]
      CSV `email,name`, N domains x M addresses u0..u(M-1), shuffled (seeded);
      --sample R keeps R rows chosen at random (after shuffling: the first R)
"""
import random
import sys


def ip(i):
    return "127.1.%d.%d" % (i // 250, i % 250 + 1)


def dom(prefix, i):
    return "%s%05d.bench" % (prefix, i)


def exists(local, m):
    return int(local[1:]) < (m + 1) // 2


def lab(d, n, m, k, nulls):
    with open(d + "/unbound-data.conf", "w") as f:
        f.write('server:\n  local-zone: "bench." static\n')
        f.write('  local-data: "bench. 300 IN SOA ns.bench. h.bench. 1 3600 600 86400 5"\n')
        for i in range(n):
            name = dom("d", i)
            f.write('  local-data: "%s. 300 IN MX 10 mx.%s."\n' % (name, name))
            f.write('  local-data: "mx.%s. 300 IN A %s"\n' % (name, ip(i % k)))
        for i in range(nulls):
            f.write('  local-data: "%s. 300 IN MX 0 ."\n' % dom("n", i))
    with open(d + "/vdomains", "w") as f:
        for i in range(n):
            f.write("%s OK\n" % dom("d", i))
    with open(d + "/vmailbox", "w") as f:
        for i in range(n):
            name = dom("d", i)
            for u in range((m + 1) // 2):
                f.write("u%d@%s %s/u%d/\n" % (u, name, name, u))
    with open(d + "/ips", "w") as f:
        for j in range(k):
            f.write(ip(j) + "\n")


def csvgen(out, n, m, prefix, seed, sample):
    rows = ["u%d@%s" % (u, dom(prefix, i)) for i in range(n) for u in range(m)]
    random.Random(seed).shuffle(rows)
    if sample:
        rows = rows[:sample]
    with open(out, "w") as f:
        f.write("email,name\n")
        f.write("".join("%s,User %d\n" % (e, j) for j, e in enumerate(rows)))


def main(a):
    if a[0] == "lab":
        lab(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]) if len(a) > 5 else 0)
    elif a[0] == "csv":
        prefix, seed, sample = "d", 1, 0
        rest = a[4:]
        while rest:
            if rest[0] == "--prefix":
                prefix = rest[1]
            elif rest[0] == "--seed":
                seed = int(rest[1])
            elif rest[0] == "--sample":
                sample = int(rest[1])
            rest = rest[2:]
        csvgen(a[1], int(a[2]), int(a[3]), prefix, seed, sample)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
