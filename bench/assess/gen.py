#!/usr/bin/env python3
"""gen.py - build the labelled evaluation set of the catch-all assessment.

Writes bench/assess/evalset.csv (deterministic: seed 16). Every row is an address on an
accept-all domain of a simulated list, with its row's name (when the list has name
columns), what the history knows about it, the list's prior, its category and its truth:

  employee   current staff, address = the domain's pattern applied to the name (valid)
  departed   staff who left, or people who never worked there, addressed by the same
             pattern: they look exactly like employees (invalid)
  typo       an employee's address with one slip of the keyboard (invalid); 40 % of
             them with the correct address also in the list, 40 % without a name
  random     random-looking strings typed into a form (invalid)
  role       info@, sales@...: most exist, some do not (valid 85 %)

Two kinds of lists: double opt-in (few undeliverable among the checkable domains, few
departed) and scraped or bought (many). Names come from bench/assess/names.tsv (npm
@faker-js/faker 10.6.0, MIT; see bench/assess/PROVENANCE). The local parts are folded with
a small table of this script, not with mailprobe's ICU folding, so that a spelling the
two disagree on counts against the model as it would in real lists.

Splits: lists whose number is divisible by 3 are the held-out test split ("test");
train.py fits and picks thresholds on "train" only.

usage: bench/assess/gen.py [OUT]
"""
import csv
import os
import random
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 16
NLISTS = 96

PATTERNS = [  # (name, weight)
    ("first.last", 35), ("flast", 20), ("first", 6), ("f.last", 8), ("first_last", 6),
    ("firstlast", 7), ("last.first", 3), ("lastf", 3), ("last", 2), ("first-last", 2),
    ("firstl", 2), ("first.l", 2), ("lastfirst", 1), ("last_first", 1), ("f_last", 2)]

ROLES = ["info", "sales", "support", "contact", "office", "admin", "hello", "marketing",
         "hr", "billing", "jobs", "team", "service", "press", "accounts", "webmaster"]

CYR = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
               ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y",
                "", "e", "yu", "ya"]))
SPECIAL = {"ß": "ss", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "œ": "oe", "ı": "i"}

LOCALES = {  # name locale mix of a company
    "us": {"en": 85, "es": 10, "fr": 5},
    "de": {"de": 75, "en": 15, "ru": 10},
    "fr": {"fr": 75, "en": 15, "es": 10},
    "es": {"es": 75, "en": 20, "fr": 5},
    "ru": {"ru": 70, "en": 20, "de": 10},
}
TLD = {"us": "com", "de": "de", "fr": "fr", "es": "es", "ru": "ru"}


def fold(s):
    out = []
    for ch in s.lower():
        if ch in CYR:
            out.append(CYR[ch])
        elif ch in SPECIAL:
            out.append(SPECIAL[ch])
        else:
            for c in unicodedata.normalize("NFKD", ch):
                if c.isascii() and (c.isalnum() or c in " -"):
                    out.append(c)
    return "".join(out)


def render(pattern, first, last):
    f = fold(first).split()[0].replace("-", "")
    l = fold(last).replace(" ", "").replace("-", "")
    return {
        "first.last": f"{f}.{l}", "flast": f"{f[0]}{l}", "first": f, "f.last": f"{f[0]}.{l}",
        "first_last": f"{f}_{l}", "firstlast": f"{f}{l}", "last.first": f"{l}.{f}",
        "lastf": f"{l}{f[0]}", "last": l, "first-last": f"{f}-{l}", "firstl": f"{f}{l[0]}",
        "first.l": f"{f}.{l[0]}", "lastfirst": f"{l}{f}", "last_first": f"{l}_{f}",
        "f_last": f"{f[0]}_{l}"}[pattern]


def typo(rng, s):
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = rng.randrange(len(s))
    k = rng.randrange(4)
    if k == 0 and len(s) > 3:                       # a letter dropped
        t = s[:i] + s[i + 1:]
    elif k == 1 and i + 1 < len(s):                 # two letters swapped
        t = s[:i] + s[i + 1] + s[i] + s[i + 2:]
    elif k == 2:                                    # a letter doubled
        t = s[:i] + s[i] + s[i:]
    else:                                           # a letter replaced
        t = s[:i] + rng.choice(letters.replace(s[i], "")) + s[i + 1:]
    t = t.strip(".-_")
    return t if t and t != s else s + rng.choice(letters)


def random_local(rng):
    k = rng.randrange(3)
    n = rng.randint(6, 12)
    if k == 0:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    elif k == 1:
        alphabet = "qwertyuiopasdfghjklzxcvbnm"
    else:
        alphabet = "bcdfghjklmnpqrstvwxz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def pick(rng, weights):
    keys = list(weights)
    return rng.choices(keys, [weights[k] for k in keys])[0]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "evalset.csv")
    names = {}
    with open(os.path.join(HERE, "names.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            loc, kind, name = line.rstrip("\n").split("\t")
            names.setdefault((loc, kind), []).append(name)
    rng = random.Random(SEED)
    rows = []
    for li in range(NLISTS):
        split = "test" if li % 3 == 0 else "train"
        scraped = rng.random() < 0.4
        rate = rng.uniform(0.20, 0.45) if scraped else rng.uniform(0.02, 0.10)
        ncheck = rng.randint(30, 400) if rng.random() < 0.9 else rng.randint(0, 15)
        undeliv = sum(rng.random() < rate for _ in range(ncheck))
        has_names = rng.random() < 0.75
        mix = ({"employee": 50, "departed": 25, "typo": 5, "random": 10, "role": 10} if scraped
               else {"employee": 80, "departed": 7, "typo": 4, "random": 2, "role": 7})
        for di in range(rng.randint(3, 6)):
            country = pick(rng, {"us": 50, "de": 15, "fr": 12, "es": 12, "ru": 11})
            domain = f"co{li}-{di}.example.{TLD[country]}"
            pattern = rng.choices([p for p, _ in PATTERNS], [w for _, w in PATTERNS])[0]
            used = set()
            drows = []

            def person():
                loc = pick(rng, LOCALES[country])
                return rng.choice(names[(loc, "first")]), rng.choice(names[(loc, "last")])

            def address(first, last):
                local = render(pattern, first, last)
                if rng.random() < 0.04:  # another spelling: a second pattern or a number
                    local = render(rng.choice([p for p, _ in PATTERNS]), first, last)
                n = 2
                base = local
                while local in used:
                    local = f"{base}{n}"
                    n += 1
                used.add(local)
                return local

            for _ in range(rng.randint(4, 24)):
                cat = pick(rng, mix)
                first = last = ""
                valid = 0
                proven = refused = ""
                if cat in ("employee", "departed"):
                    first, last = person()
                    local = address(first, last)
                    if cat == "employee":
                        valid = 1
                        r = rng.random()
                        if r < 0.12:
                            proven = rng.randint(10, 364)
                        elif r < 0.20:
                            proven = rng.randint(365, 1500)
                    else:
                        r = rng.random()
                        if r < 0.30:
                            proven = rng.randint(365, 2000)
                        elif r < 0.34:
                            proven = rng.randint(200, 364)
                        elif r < 0.49:
                            refused = rng.randint(5, 364)
                        elif r < 0.54:
                            refused = rng.randint(365, 1500)
                elif cat == "typo":
                    first, last = person()
                    right = render(pattern, first, last)
                    local = typo(rng, right)
                    if rng.random() < 0.4 and right not in used:
                        used.add(right)
                        drows.append([domain, right, first, last, "employee", 1, "", ""])
                    if rng.random() < 0.4:  # the form's name fields left empty
                        first = last = ""
                    if rng.random() < 0.08:
                        refused = rng.randint(5, 364)
                elif cat == "random":
                    local = random_local(rng)
                    if rng.random() < 0.5:
                        first, last = person()
                    if rng.random() < 0.05:
                        refused = rng.randint(5, 364)
                else:
                    local = rng.choice(ROLES)
                    if local in used:
                        continue
                    used.add(local)
                    valid = 1 if rng.random() < 0.85 else 0
                    if valid and rng.random() < 0.10:
                        proven = rng.randint(10, 364)
                    if not valid and rng.random() < 0.20:
                        refused = rng.randint(5, 364)
                drows.append([domain, local, first, last, cat, valid, proven, refused])
            for d in drows:
                if not has_names:
                    d[2] = d[3] = ""
                rows.append([split, li, d[0], f"{d[1]}@{d[0]}", d[2], d[3], d[4], d[5], d[6],
                             d[7], undeliv, ncheck])
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["split", "list", "domain", "email", "first", "last", "category", "valid",
                    "proven_days", "refused_days", "list_undeliverable", "list_checkable"])
        w.writerows(rows)
    print(f"{out}: {len(rows)} rows, {NLISTS} lists", file=sys.stderr)


if __name__ == "__main__":
    main()
