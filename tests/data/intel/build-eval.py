#!/usr/bin/python3
"""build-eval.py - (re)build the labelled evaluation sets for address intelligence.

Run once and commit the output; the sets are the fixed yardstick the unit test and
bench/intel/eval measure against (see README.md beside this file). Deterministic: a
fixed random seed, sorted inputs. Sources (all public, on a Debian machine):

  - /usr/share/doc/*/copyright of the installed Debian packages: real maintainer and
    author addresses; their local parts are the "real" set, their domains the
    "ordinary domain" part of the correct set (local parts there are made up from
    names in /usr/share/dict, not copied)
  - data/popular.txt: the targets of the synthetic typos and the popular correct set
  - the mailcheck library's test suite (npm mailcheck, MIT) and issue 5: literal
    typo -> correction pairs
  - a seeded generator of keyboard typos (swap, drop, double, neighbour key) and TLD
    typos, and of gibberish local parts (uniform random, letters+digits, keyboard
    walks, home-row mashes, consonant runs)

Usage: tests/data/intel/build-eval.py   (writes *.tsv beside itself)
"""
import glob
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"]
POS = {ch: (r, c) for r, row in enumerate(ROWS) for c, ch in enumerate(row)}


def neighbours(ch):
    """Keys touching ch on a staggered QWERTY keyboard (each row half a key right of the
    row above): same row +-1, the row above at c and c+1, the row below at c-1 and c."""
    if ch not in POS:
        return []
    r, c = POS[ch]
    cand = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
    return [ROWS[rr][cc] for rr, cc in cand if 0 <= rr < 4 and 0 <= cc < len(ROWS[rr])]


def read_list(path):
    out = []
    for l in open(path, encoding="utf-8"):
        l = l.split("#", 1)[0].strip().lower()
        if l:
            out.append(l)
    return out


POPULAR = read_list(os.path.join(ROOT, "data/popular.txt"))
TLDS = set(read_list(os.path.join(ROOT, "data/tlds.txt")))
POPSET = set(POPULAR)

# ---------------------------------------------------------------------------- typos
LITERAL_TYPOS = [
    # issue 5
    ("gmial.com", "gmail.com"), ("hotmial.com", "hotmail.com"), ("yaho.com", "yahoo.com"),
    ("outlok.com", "outlook.com"), ("gmail.co", "gmail.com"), ("gmail.con", "gmail.com"),
    ("yahoo.cm", "yahoo.com"), ("comcast.ent", "comcast.net"),
    # mailcheck spec/mailcheckSpec.js
    ("emaildomain.co", None), ("gnail.con", "gmail.com"), ("comcast.nry", "comcast.net"),
    ("homail.con", "hotmail.com"), ("hotmail.co", "hotmail.com"), ("yajoo.com", "yahoo.com"),
    ("randomsmallcompany.cmo", "randomsmallcompany.com"), ("gmaik.com", "gmail.com"),
]


def sld_typo(sld, rng):
    """One random keyboard typo of a label: the kind first (equally likely, as in
    Damerau's 1964 count of single-error misspellings), then where."""
    by_kind = {}
    for kind, s in sld_typos(sld):
        if s != sld:
            by_kind.setdefault(kind, []).append(s)
    kind = rng.choice(sorted(by_kind))
    return kind, rng.choice(by_kind[kind])


def sld_typos(sld):
    """All single keyboard typos of a label, by kind."""
    out = []
    for i in range(len(sld) - 1):
        if sld[i] != sld[i + 1]:
            out.append(("swap", sld[:i] + sld[i + 1] + sld[i] + sld[i + 2:]))
    if len(sld) >= 4:
        for i in range(len(sld)):
            out.append(("drop", sld[:i] + sld[i + 1:]))
    for i in range(len(sld)):
        out.append(("double", sld[:i + 1] + sld[i] + sld[i + 1:]))
        for n in neighbours(sld[i]):
            out.append(("neighbour", sld[:i] + n + sld[i + 1:]))
            out.append(("insert", sld[:i] + n + sld[i:]))
    return out


TLD_TYPOS = {
    "com": ["con", "cmo", "cm", "co", "om", "comm", "xom", "vom", "cpm", "ocm", "coom", "cim"],
    "net": ["ent", "nte", "ne", "nett", "bet", "met", "nwt"],
    "org": ["ogr", "rog", "orgg", "prg"],
}


def gen_typos():
    rng = random.Random(1)
    pairs = {}
    for t, c in LITERAL_TYPOS:
        if c:
            pairs[t] = (c, "literal")
    # Which popular domain a typo aims at: in proportion to how often it is typed, as
    # measured on the real addresses of the Debian copyright files (gmail.com first, as
    # in life), plus one for every popular domain so that each can be drawn.
    seen = {}
    for a in copyright_addresses():
        d = a.split("@", 1)[1]
        if d in POPSET:
            seen[d] = seen.get(d, 0) + 1
    weights = [seen.get(d, 0) + 1 for d in POPULAR]
    tries = 0
    while len(pairs) < 330 and tries < 100000:
        tries += 1
        dom = rng.choices(POPULAR, weights)[0]
        sld, rest = dom.split(".", 1)
        r = rng.random()
        if r < 0.75:
            kind, s = sld_typo(sld, rng)
            typo = s + "." + rest
        elif r < 0.92 and rest in TLD_TYPOS:
            kind, typo = "tld", sld + "." + rng.choice(TLD_TYPOS[rest])
        elif rest in TLD_TYPOS and len(sld) >= 6:
            kind, s = sld_typo(sld, rng)
            kind, typo = kind + "+tld", s + "." + rng.choice(TLD_TYPOS[rest])
        else:
            continue
        if typo in POPSET or typo == dom or typo in pairs:
            continue
        if re.search(r"(^|\.)-|-(\.|$)", typo):
            continue  # not a valid host name: the syntax check stops it before intel
        pairs[typo] = (dom, "gen:" + kind)
    # TLD typos on ordinary domains (taken from Debian copyright files)
    # (only into TLDs that are not delegated: x.co for x.com is a different, existing
    # domain as far as anyone offline can tell)
    ordinary = [d for d in ordinary_domains() if d.rsplit(".", 1)[-1] in TLD_TYPOS]
    rng.shuffle(ordinary)
    for d in ordinary[:40]:
        head, tld = d.rsplit(".", 1)
        bad = rng.choice([t for t in TLD_TYPOS[tld] if t not in TLDS])
        pairs[head + "." + bad] = (d, "gen:ordinary-tld")
    return pairs


# ------------------------------------------------------------------- real addresses
def copyright_addresses():
    addrs = set()
    rx = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
    for p in sorted(glob.glob("/usr/share/doc/*/copyright")):
        try:
            txt = open(p, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for a in rx.findall(txt):
            addrs.add(a.lower().strip("."))
    return sorted(addrs)


_ordinary = None


def ordinary_domains():
    global _ordinary
    if _ordinary is None:
        doms = sorted({a.split("@", 1)[1] for a in copyright_addresses()})
        _ordinary = [d for d in doms if d not in POPSET and "example" not in d
                     and re.fullmatch(r"[a-z0-9.-]+\.[a-z]{2,}", d)
                     and d.rsplit(".", 1)[-1] in TLDS]
    return _ordinary


def given_names():
    names = [l.strip().lower() for l in open("/usr/share/dict/american-english")
             if re.fullmatch(r"[A-Z][a-z]{2,8}", l.strip())]
    return sorted(set(names))


# Real domains a careless corrector would "fix" into a popular one.
NEAR_POPULAR_REAL = [
    "hotmart.com", "bol.com", "life.com", "mall.com", "love.com", "gmc.com", "gmx.at",
    "gmx.ch", "gmx.fr", "hotmail.se", "hotmail.no", "yahoo.se", "yahoo.no", "yahoo.gr",
    "yahoo.dk", "live.se", "live.no", "live.dk", "live.be", "mail.ee", "mail.bg",
    "email.cz", "email.it", "post.com", "web.com", "verizon.com", "comcast.com", "att.com",
    "aol.co.uk", "yandex.ua", "yandex.kz", "yandex.by", "inbox.lv", "inbox.lt", "163.net",
    "sina.cn", "orange.com", "free.com", "gmail.de",
]


def gen_correct():
    rng = random.Random(2)
    names = given_names()
    rows = []
    for d in POPULAR:
        rows.append((rng.choice(names) + "." + rng.choice(names), d, "popular"))
    ordinary = ordinary_domains()[:]
    rng.shuffle(ordinary)
    for d in ordinary[:260]:
        rows.append((rng.choice(names), d, "ordinary"))
    for d in NEAR_POPULAR_REAL:
        rows.append((rng.choice(names), d, "near-popular"))
    return rows


def gen_real_locals():
    out = set()
    for a in copyright_addresses():
        local = a.split("@", 1)[0]
        # machine identifiers (bug trackers, ticket ids) are not people's local parts
        if len(re.findall(r"[0-9]", local)) >= 5 or len(local) < 2 or local.endswith(".fsf"):
            continue
        out.add(local)
    return sorted(out)


# ---------------------------------------------------------------------------- gibberish
def gen_gibberish():
    rng = random.Random(3)
    out = {}
    letters = "abcdefghijklmnopqrstuvwxyz"
    alnum = letters + "0123456789"
    consonants = "bcdfghjklmnpqrstvwxz"

    def add(s, kind):
        if s not in out:
            out[s] = kind

    while len(out) < 100:
        add("".join(rng.choice(letters) for _ in range(rng.randint(6, 12))), "uniform")
    while len(out) < 200:
        s = "".join(rng.choice(alnum) for _ in range(rng.randint(6, 12)))
        if re.search(r"[a-z]", s) and re.search(r"[0-9]", s):
            add(s, "alnum")
    while len(out) < 320:
        ch = rng.choice(letters)
        s = ch
        for _ in range(rng.randint(5, 9)):
            ch = rng.choice(neighbours(ch) + list(ROWS[POS[ch][0]]))
            s += ch
        if rng.random() < 0.3:
            s += str(rng.randint(1, 999))
        add(s, "keyboard-walk")
    while len(out) < 370:
        add("".join(rng.choice("asdfghjkl") for _ in range(rng.randint(6, 10))), "home-row")
    while len(out) < 420:
        add("".join(rng.choice(consonants) for _ in range(rng.randint(6, 10))), "consonants")
    return out


def main():
    typos = gen_typos()
    with open(os.path.join(HERE, "typos.tsv"), "w") as f:
        f.write("# typo domain<TAB>intended domain<TAB>origin; built by build-eval.py\n")
        for t in sorted(typos):
            f.write("%s\t%s\t%s\n" % (t, typos[t][0], typos[t][1]))
    with open(os.path.join(HERE, "correct.tsv"), "w") as f:
        f.write("# correct address<TAB>kind: must get no suggestion; built by build-eval.py\n")
        for local, d, kind in gen_correct():
            f.write("%s@%s\t%s\n" % (local, d, kind))
    with open(os.path.join(HERE, "real-local.tsv"), "w") as f:
        f.write("# real local parts (Debian copyright files); built by build-eval.py\n")
        for l in gen_real_locals():
            f.write(l + "\tdebian-copyright\n")
    with open(os.path.join(HERE, "gibberish-local.tsv"), "w") as f:
        f.write("# gibberish local parts<TAB>generator; built by build-eval.py\n")
        g = gen_gibberish()
        for s in sorted(g):
            f.write("%s\t%s\n" % (s, g[s]))


if __name__ == "__main__":
    main()
