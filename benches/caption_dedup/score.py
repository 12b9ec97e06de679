#!/usr/bin/env python3
"""Pair precision / recall / F1 of caption groups against truth.json.
usage: score.py TRUTH.json NAME=GROUPS.csv[:seconds] ..."""
import itertools, json, sys
from collections import defaultdict

def pairs(labels):
    by = defaultdict(list)
    for i, g in enumerate(labels):
        if g >= 0:
            by[g].append(i)
    return {p for m in by.values() for p in itertools.combinations(m, 2)}

truth = json.load(open(sys.argv[1]))["family"]
want = pairs(truth)
print("| tool | pair P | pair R | F1 | time |")
print("|---|---|---|---|---|")
for arg in sys.argv[2:]:
    name, rest = arg.split("=", 1)
    path, _, seconds = rest.partition(":")
    got = [int(l.split(",")[1]) for l in open(path).read().split("\n")[1:] if l]
    have = pairs(got)
    tp = len(want & have)
    p = tp / len(have) if have else 1.0
    r = tp / len(want) if want else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    print(f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} | {seconds or '-'} s |")
