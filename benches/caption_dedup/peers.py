#!/usr/bin/env python3
"""datasketch on the same captions: MinHash (128 permutations) of the same character
5-gram shingles of the same normalised text, MinHashLSH at the same threshold, groups as
connected components. usage: peers.py CAPTIONS.txt THRESHOLD OUT.csv"""
import re, sys, time
from datasketch import MinHash, MinHashLSH

def normalise(t):
    t = "".join("0" if c.isnumeric() else (c if c.isalnum() else " ") for c in t.lower())
    return " ".join(t.split())

def main():
    path, threshold, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")[:-1]
    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    hashes = []
    for i, line in enumerate(lines):
        n = normalise(line)
        m = MinHash(num_perm=128)
        w = min(5, len(n))
        for s in {n[j:j + w] for j in range(len(n) - w + 1)} if n else ():
            m.update(s.encode("utf-8"))
        hashes.append(m)
        if n:
            lsh.insert(str(i), m)
    parent = list(range(len(lines)))
    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for i, m in enumerate(hashes):
        for j in lsh.query(m):
            a, b = find(i), find(int(j))
            if a != b:
                parent[a] = b
    took = time.perf_counter() - t0
    roots = [find(i) for i in range(len(lines))]
    size = {}
    for r in roots:
        size[r] = size.get(r, 0) + 1
    ids = {}
    with open(out, "w") as f:
        f.write("line,group\n")
        for i, r in enumerate(roots):
            g = ids.setdefault(r, len(ids)) if size[r] > 1 else -1
            f.write(f"{i + 1},{g}\n")
    print(f"datasketch: {took:.3f} s", file=sys.stderr)

main()
