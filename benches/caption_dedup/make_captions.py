#!/usr/bin/env python3
"""Planted near-duplicate captions from real text that a package ships.

usage: make_captions.py OUT_DIR [--n 10000] [--seed 7]

Base captions are sentences (6-30 words) from the docstrings of CPython's standard library
(modules, classes, functions), deduplicated after normalisation, and none sharing more
than 30 % of its word bigrams with another. A share of them get 1-3
edited copies: word insertions, deletions, substitutions, case changes, punctuation changes,
or two of these together. Written independently of curate's detector. Writes
OUT_DIR/captions.txt (one per line, shuffled) and OUT_DIR/truth.json (per line, the family
id of its base caption; -1 for bases without copies).
"""
import argparse, collections, importlib, inspect, json, os, random, re, sys, warnings

def sentences():
    seen = set()
    warnings.filterwarnings("ignore")
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"):
            continue
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        docs = [inspect.getdoc(mod) or ""]
        for _, obj in inspect.getmembers(mod):
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
                try:
                    docs.append(inspect.getdoc(obj) or "")
                except Exception:
                    pass
        for doc in docs:
            for s in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                words = s.split()
                if 6 <= len(words) <= 30 and not re.search(r"[>{}\[\]=]|::", s):
                    key = re.sub(r"[^a-z0-9 ]", "", s.lower())
                    if key not in seen:
                        seen.add(key)
                        yield s

FILLERS = ["very", "also", "then", "quickly", "simply", "often", "new", "small", "other", "just"]

def edit(s, rng, kind):
    w = s.split()
    if kind == "insert":
        w.insert(rng.randrange(len(w) + 1), rng.choice(FILLERS))
    elif kind == "delete" and len(w) > 6:
        del w[rng.randrange(len(w))]
    elif kind == "substitute":
        w[rng.randrange(len(w))] = rng.choice(FILLERS)
    elif kind == "case":
        return rng.choice([s.lower(), s.upper(), s.title()])
    elif kind == "punctuation":
        s2 = re.sub(r"[.,;:!?]", "", s)
        return s2 + rng.choice(["!", "...", " .", ""]) if s2 != s else s + "!"
    return " ".join(w)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    pool = list(sentences())
    rng.shuffle(pool)
    # Bases that are already near duplicates of each other in the source (a sentence and
    # its longer version, "BLAKE2s" / "BLAKE2b") would be unlabelled duplicates: a base is
    # taken only when at most 30 % of its word bigrams occur in bases taken before (a
    # measure of words, not of the characters curate shingles).
    def bigrams(s):
        w = re.sub(r"[^a-z0-9 ]", " ", s.lower()).split()
        return {(w[i], w[i + 1]) for i in range(len(w) - 1)} or {tuple(w)}
    base, index = [], {}
    for s in pool:
        grams = bigrams(s)
        seen = collections.Counter(j for g in grams for j in index.get(g, ()))
        if seen and seen.most_common(1)[0][1] > 0.3 * len(grams):
            continue
        for g in grams:
            index.setdefault(g, []).append(len(base))
        base.append(s)
        if len(base) == a.n:
            break
    lines, family = [], []
    kinds = ["insert", "delete", "substitute", "case", "punctuation"]
    for i, s in enumerate(base):
        lines.append(s)
        copies = rng.choice([1, 1, 2, 3]) if rng.random() < 0.2 else 0
        family.append(i if copies else -1)
        for _ in range(copies):
            if rng.random() < 0.3:
                k1, k2 = rng.sample(kinds, 2)
                c = edit(edit(s, rng, k1), rng, k2)
            else:
                c = edit(s, rng, rng.choice(kinds))
            lines.append(c)
            family.append(i)
    order = list(range(len(lines)))
    rng.shuffle(order)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "captions.txt"), "w") as f:
        for i in order:
            f.write(lines[i].replace("\n", " ") + "\n")
    with open(os.path.join(a.out, "truth.json"), "w") as f:
        json.dump({"source": "CPython %s standard-library docstrings" % sys.version.split()[0],
                   "seed": a.seed, "family": [family[i] for i in order]}, f)
    print(f"{len(base)} base captions, {len(lines) - len(base)} edited copies -> {a.out}")

main()
