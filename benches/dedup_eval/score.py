#!/usr/bin/env python3
"""Score curate and peer tools on a set made by make_sets.py.

usage: score.py SET_DIR [--curate-report PATH] [--peers] [--tools LIST] [--out JSON]
                        [--fastdup-python PATH] [--timeout S] [--no-curate]

  curate   SET_DIR/.curate/report.parquet (or --curate-report): columns path, status,
           dup_group (-1 = none), keep, drop_reason, ood_score and other *_score / ood_* columns
  --peers  runs peers.py for cleanvision, imagededup (PHash, DHash), fastdup and cleanlab
           Datalab on SET_DIR, each in a subprocess (fastdup with --fastdup-python, by
           default ~/.cache/curate-eval/venv-fastdup/bin/python); a peer that fails gets its
           error printed and no row

Metrics, the same for every tool (truth from SET_DIR/truth.json):
  pairs       all pairs inside predicted groups (connected components) vs all pairs inside
              true families (original + copies, exact byte copies included): precision,
              recall, F1
  recall/T    share of copies made with transform T that sit in the same predicted group as
              their original (jpeg, downscale, crop, brightness, noise, combo, exact), and the
              same per size class of the original (tiny <= 64 px, medium, large >= 2 MP), and
              for RGBA originals written as JPEG with convert("RGB") (alpha dropped)
  hard neg.   pairs of distinct originals in one hard-negative group (with their copies) that
              end up in one predicted group: count / all such pairs, also per kind
  nondup drop share of images that have no true copy whose keep is false (curate: its keep
              column; any reason, and 'as dup' = drop_reason mentions a duplicate; peers: keep
              the lexicographically first path of each group)
  one kept    share of true families with exactly one member kept (same keep rule)
  AUROC       outliers (label 1) vs inliers and copies of inliers (label 0); the synthetic
              look-alike layouts in truth's ood_ignore are left out; an image a tool gave no
              score is ranked as least unusual. Every score column of every tool, oriented so
              that higher = more unusual (peers.py flips CleanVision and Datalab scores)
Writes a markdown table per section to stdout and all numbers to --out (default
SET_DIR/../<set>-scores.json).
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (the union-find the peer runners use)

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("CURATE_EVAL_CACHE", os.path.expanduser("~/.cache/curate-eval"))
TRANSFORMS = ["jpeg", "downscale", "crop", "brightness", "noise", "combo", "exact"]
SIZES = ["tiny", "medium", "large"]
PEERS = ["cleanvision", "imagededup", "fastdup", "datalab"]


# ---------------------------------------------------------------------------------------
# helpers


def components(groups, universe):
    """Connected components (size > 1) of `groups` restricted to `universe`."""
    pairs = []
    for g in groups:
        g = [p for p in g if p in universe]
        pairs.extend(zip(g, g[1:]))
    return peers.components(pairs)


def auroc(labels, scores):
    """Mann-Whitney AUROC with average ranks for ties."""
    pairs = sorted(zip(scores, labels))
    n = len(pairs)
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = sum(1 for _, l in pairs if l == 1)
    neg = n - pos
    if pos == 0 or neg == 0:
        return None
    rsum = sum(r for r, (_, l) in zip(ranks, pairs) if l == 1)
    return (rsum - pos * (pos + 1) / 2.0) / (pos * neg)


class Truth:
    def __init__(self, set_dir):
        t = json.load(open(os.path.join(set_dir, "truth.json")))
        self.t = t
        self.images = t["images"]
        self.universe = set(self.images)
        self.fam = {}
        self.families = t["families"]
        for f in self.families:
            key = "f%d" % f["id"]
            self.fam[f["original"]] = key
            for c in f["copies"]:
                self.fam[c["path"]] = key
        for p in self.images:
            self.fam.setdefault(p, "s:" + p)
        self.members = defaultdict(list)
        for p, k in self.fam.items():
            self.members[k].append(p)
        self.true_pairs = set()
        for k, ms in self.members.items():
            for a, b in itertools.combinations(sorted(ms), 2):
                self.true_pairs.add((a, b))
        # hard-negative family pairs, per kind
        self.hn = defaultdict(set)
        for g in t["hard_negatives"]:
            keys = sorted({self.fam[m] for m in g["members"]})
            for a, b in itertools.combinations(keys, 2):
                self.hn[g["kind"]].add((a, b))
        self.hn_all = set().union(*self.hn.values()) if self.hn else set()
        self.singletons = [p for p, k in self.fam.items() if k.startswith("s:")]
        ign = set(t.get("ood_ignore", []))
        self.ood_labels = {p: (1 if v["label"] == "outlier" else 0) for p, v in self.images.items()
                           if p not in ign and v["label"] in ("outlier", "inlier")}


def score_groups(truth, groups, keep=None, drop_reason=None):
    """keep: path -> bool (None: keep the lexicographically first of each group)."""
    comps = components(groups, truth.universe)
    comp_of = {}
    for i, g in enumerate(comps):
        for p in g:
            comp_of[p] = i
    pred_pairs = set()
    for g in comps:
        for a, b in itertools.combinations(g, 2):
            pred_pairs.add((a, b))
    tp = len(pred_pairs & truth.true_pairs)
    prec = tp / len(pred_pairs) if pred_pairs else 1.0
    rec = tp / len(truth.true_pairs) if truth.true_pairs else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    same = lambda a, b: a in comp_of and comp_of.get(a) == comp_of.get(b)
    per_t, per_s, alpha = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0]), [0, 0]
    per_ts = defaultdict(lambda: [0, 0])
    for f in truth.families:
        for c in f["copies"]:
            hit = same(f["original"], c["path"])
            per_t[c["transform"]][0] += hit
            per_t[c["transform"]][1] += 1
            per_s[f["size_class"]][0] += hit
            per_s[f["size_class"]][1] += 1
            key = "%s/%s%s" % (c["transform"], f["size_class"], "/alpha_dropped" if c.get("alpha_dropped") else "")
            per_ts[key][0] += hit
            per_ts[key][1] += 1
            if c.get("alpha_dropped"):
                alpha[0] += hit
                alpha[1] += 1
    # hard negatives: a family pair is violated when any member of one shares a group with
    # any member of the other
    comps_of_fam = defaultdict(set)
    for p, k in truth.fam.items():
        if p in comp_of:
            comps_of_fam[k].add(comp_of[p])
    hn_kind = {}
    viol_all = set()
    for kind, prs in sorted(truth.hn.items()):
        v = {pr for pr in prs if comps_of_fam[pr[0]] & comps_of_fam[pr[1]]}
        viol_all |= v
        hn_kind[kind] = [len(v), len(prs)]
    # keep decisions
    emulated = keep is None
    if emulated:
        keep = {p: True for p in truth.universe}
        for g in comps:
            for p in g[1:]:
                keep[p] = False
    dropped = [p for p in truth.singletons if not keep.get(p, True)]
    out = {
        "pred_pairs": len(pred_pairs), "true_pairs": len(truth.true_pairs), "tp_pairs": tp,
        "precision": prec, "recall": rec, "f1": f1,
        "groups": len(comps), "images_in_groups": len(comp_of),
        "recall_by_transform": {t: (per_t[t][0] / per_t[t][1] if per_t[t][1] else None, per_t[t][1]) for t in TRANSFORMS},
        "recall_by_size": {s: (per_s[s][0] / per_s[s][1] if per_s[s][1] else None, per_s[s][1]) for s in SIZES},
        "recall_alpha_dropped": (alpha[0] / alpha[1] if alpha[1] else None, alpha[1]),
        "recall_by_transform_size": {k: (v[0] / v[1], v[1]) for k, v in sorted(per_ts.items())},
        "hard_negative_pairs_grouped": len(viol_all), "hard_negative_pairs": len(truth.hn_all),
        "hard_negative_rate": len(viol_all) / len(truth.hn_all) if truth.hn_all else 0.0,
        "hard_negative_by_kind": hn_kind,
        "hard_negative_macro_rate": (sum(v / n for v, n in hn_kind.values() if n) / max(1, sum(1 for _, n in hn_kind.values() if n))),
        "keep_emulated": emulated,
        "nondup_dropped": len(dropped), "nondup_total": len(truth.singletons),
        "nondup_dropped_rate": len(dropped) / len(truth.singletons) if truth.singletons else 0.0,
    }
    if drop_reason is not None:
        as_dup = [p for p in dropped if "dup" in (drop_reason.get(p) or "")]
        out["nondup_dropped_as_dup"] = len(as_dup)
        out["nondup_dropped_as_dup_rate"] = len(as_dup) / len(truth.singletons) if truth.singletons else 0.0
        reasons = defaultdict(int)
        for p in dropped:
            reasons[drop_reason.get(p) or "?"] += 1
        out["nondup_dropped_reasons"] = dict(reasons)
    one = sum(1 for f in truth.families
              if sum(1 for p in [f["original"]] + [c["path"] for c in f["copies"]] if keep.get(p, True)) == 1)
    out["one_kept_per_family"] = one / len(truth.families) if truth.families else 1.0
    out["families"] = len(truth.families)
    return out


def score_scores(truth, scores):
    out = {}
    paths = sorted(truth.ood_labels)
    labels = [truth.ood_labels[p] for p in paths]
    for name, m in sorted(scores.items()):
        vals = []
        missing = 0
        for p in paths:
            v = m.get(p)
            if v is None or v != v:
                missing += 1
                v = float("-inf")
            vals.append(v)
        if missing == len(paths):
            continue  # a column with no values (e.g. a score that was not computed)
        out[name] = {"auroc": auroc(labels, vals), "missing": missing,
                     "outliers": sum(labels), "inliers": len(labels) - sum(labels)}
    return out


# ---------------------------------------------------------------------------------------
# tools


def load_curate(set_dir, report):
    import pyarrow.parquet as pq

    tab = pq.read_table(report).to_pydict()
    n = len(tab["path"])
    paths = [p.replace(os.sep, "/") for p in tab["path"]]
    groups = defaultdict(list)
    for p, g in zip(paths, tab.get("dup_group", [-1] * n)):
        if g is not None and g >= 0:
            groups[g].append(p)
    keep = {p: bool(k) for p, k in zip(paths, tab.get("keep", [True] * n))}
    reason = dict(zip(paths, tab.get("drop_reason", [None] * n)))
    status = dict(zip(paths, tab.get("status", ["ok"] * n)))
    scores = {}
    for col in tab:
        if col == "ood_score" or col.startswith("ood_") or col.endswith("_score"):
            vals = tab[col]
            if vals and all(v is None or isinstance(v, (int, float)) for v in vals[:50]):
                scores[col] = {p: (float(v) if v is not None else None) for p, v in zip(paths, vals)}
    return {"groups": list(groups.values()), "keep": keep, "drop_reason": reason, "scores": scores,
            "status": status}


def run_peer(tool, set_dir, python, timeout, reuse):
    """Run peers.py TOOL in a subprocess; its JSON is kept under
    ~/.cache/curate-eval/work/<set>/peers/ and reused with --reuse-peers."""
    cache = os.path.join(CACHE, "work", os.path.basename(set_dir), "peers")
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, tool + ".json")
    if reuse and os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(os.path.join(set_dir, "truth.json")):
        return json.load(open(out)), None
    if os.path.exists(out):
        os.remove(out)
    t0 = time.perf_counter()
    env = dict(os.environ, SENTRY_OPT_OUT="1", PYTHONWARNINGS="ignore")
    try:
        r = subprocess.run([python, os.path.join(HERE, "peers.py"), tool, set_dir, out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    except OSError as e:
        return None, str(e)
    if r.returncode != 0 or not os.path.exists(out):
        tail = "\n".join(r.stdout.strip().splitlines()[-15:])
        return None, "exit %d:\n%s" % (r.returncode, tail)
    res = json.load(open(out))
    res["wall_seconds"] = round(time.perf_counter() - t0, 2)
    return res, None


# ---------------------------------------------------------------------------------------
# report


def fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, float):
        return ("%." + str(digits) + "f") % x
    return str(x)


def markdown(set_name, results, truth):
    lines = []
    t = truth.t
    ncopies = sum(len(f["copies"]) for f in t["families"])
    lines.append("### %s: %d images, %d families (%d copies), %d hard-negative family pairs, %d outliers / %d inliers scored"
                 % (set_name, len(t["images"]), len(t["families"]), ncopies, len(truth.hn_all),
                    sum(truth.ood_labels.values()), len(truth.ood_labels) - sum(truth.ood_labels.values())))
    lines.append("")
    lines.append("| tool | pair P | pair R | F1 | hard neg. grouped | HN macro | non-dup dropped | one kept / family | groups | time s |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        d = r.get("dups")
        if not d:
            continue
        nd = "%s (%d)" % (fmt(d["nondup_dropped_rate"]), d["nondup_dropped"])
        if "nondup_dropped_as_dup" in d:
            nd += "; as dup %d" % d["nondup_dropped_as_dup"]
        if d["keep_emulated"]:
            nd += " *"
        lines.append("| %s | %s | %s | %s | %d / %d (%s) | %s | %s | %s | %d | %s |" % (
            name, fmt(d["precision"]), fmt(d["recall"]), fmt(d["f1"]), d["hard_negative_pairs_grouped"],
            d["hard_negative_pairs"], fmt(d["hard_negative_rate"]), fmt(d["hard_negative_macro_rate"]), nd, fmt(d["one_kept_per_family"]),
            d["groups"], fmt(r.get("seconds"), 1)))
    lines.append("")
    lines.append("\\* keep emulated: the lexicographically first path of each group is kept. "
                 "HN macro: the grouped share averaged over hard-negative kinds.")
    lines.append("")
    lines.append("Recall of copies (grouped with their original) per transform, size class of the original, and RGBA→JPEG copies:")
    lines.append("")
    first = next((r["dups"] for r in results.values() if r.get("dups")), None)
    if first:
        hdr = ["%s (%d)" % (k, first["recall_by_transform"][k][1]) for k in TRANSFORMS] + \
              ["%s (%d)" % (k, first["recall_by_size"][k][1]) for k in SIZES] + \
              ["alpha→jpg (%d)" % first["recall_alpha_dropped"][1]]
        lines.append("| tool | " + " | ".join(hdr) + " |")
        lines.append("|---|" + "---|" * len(hdr))
        for name, r in results.items():
            d = r.get("dups")
            if not d:
                continue
            vals = [d["recall_by_transform"][k][0] for k in TRANSFORMS] + [d["recall_by_size"][k][0] for k in SIZES] + \
                   [d["recall_alpha_dropped"][0]]
            lines.append("| %s | %s |" % (name, " | ".join(fmt(v, 2) for v in vals)))
        lines.append("")
        kinds = sorted(first["hard_negative_by_kind"])
        lines.append("Hard-negative family pairs grouped, per kind (grouped / pairs):")
        lines.append("")
        lines.append("| tool | " + " | ".join("%s (%d)" % (k, first["hard_negative_by_kind"][k][1]) for k in kinds) + " |")
        lines.append("|---|" + "---|" * len(kinds))
        for name, r in results.items():
            d = r.get("dups")
            if d:
                lines.append("| %s | %s |" % (name, " | ".join(str(d["hard_negative_by_kind"][k][0]) for k in kinds)))
        lines.append("")
    lines.append("Outlier AUROC (higher score = more unusual):")
    lines.append("")
    lines.append("| tool | score | AUROC | unscored |")
    lines.append("|---|---|---|---|")
    for name, r in results.items():
        for col, a in sorted(r.get("auroc", {}).items(), key=lambda kv: -(kv[1]["auroc"] or 0)):
            lines.append("| %s | %s | %s | %d |" % (name, col, fmt(a["auroc"]), a["missing"]))
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir")
    ap.add_argument("--curate-report", default=None)
    ap.add_argument("--no-curate", action="store_true")
    ap.add_argument("--curate-json", default=None,
                    help="curate's `analyze --json` output, for its time (default SET_DIR/../<set>-curate.json)")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--tools", default=",".join(PEERS), help="peers to run (comma list)")
    ap.add_argument("--fastdup-python", default=os.environ.get(
        "FASTDUP_PYTHON", os.path.join(CACHE, "venv-fastdup", "bin", "python")))
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--reuse-peers", action="store_true", help="reuse peer outputs cached from an earlier run")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_dir = os.path.abspath(args.set_dir)
    set_name = os.path.basename(set_dir)
    truth = Truth(set_dir)
    results, errors = {}, {}

    if not args.no_curate:
        report = args.curate_report or os.path.join(set_dir, ".curate", "report.parquet")
        if os.path.exists(report):
            c = load_curate(set_dir, report)
            seen = set(c["keep"])
            notok = sum(1 for p in truth.universe if c["status"].get(p, "missing") != "ok")
            results["curate"] = {
                "dups": score_groups(truth, c["groups"], keep={p: c["keep"].get(p, True) for p in truth.universe},
                                     drop_reason=c["drop_reason"]),
                "auroc": score_scores(truth, c["scores"]),
                "coverage": {"truth_images": len(truth.universe), "in_report": len(seen & truth.universe),
                             "not_ok": notok, "extra_paths": len(seen - truth.universe)},
            }
            cj = args.curate_json or os.path.join(os.path.dirname(set_dir), set_name + "-curate.json")
            if os.path.exists(cj) and os.path.getmtime(cj) >= os.path.getmtime(report) - 5:
                try:
                    results["curate"]["seconds"] = json.load(open(cj))["summary"]["elapsed_secs"]
                except (ValueError, KeyError, TypeError):
                    pass
        else:
            print("curate: no report at %s (skipped)" % report, file=sys.stderr)

    if args.peers:
        for tool in [t for t in args.tools.split(",") if t]:
            python = args.fastdup_python if tool == "fastdup" else sys.executable
            print("running %s ..." % tool, file=sys.stderr, flush=True)
            res, err = run_peer(tool, set_dir, python, args.timeout, args.reuse_peers)
            if err:
                errors[tool] = err
                print("%s FAILED: %s" % (tool, err), file=sys.stderr)
                continue
            for vname, v in res["variants"].items():
                results[vname] = {"dups": score_groups(truth, v["groups"]),
                                  "auroc": score_scores(truth, v["scores"]),
                                  "seconds": res["seconds"], "note": v.get("note", ""),
                                  "versions": res["versions"]}

    print(markdown(set_name, results, truth))
    for tool, err in errors.items():
        print("**%s failed**: `%s`\n" % (tool, err.splitlines()[0] if err else ""))
    for name, r in results.items():
        if r.get("note"):
            print("- %s (%s): %s" % (name, ", ".join("%s %s" % kv for kv in r["versions"].items()), r["note"]))
        if name == "curate":
            cov = r["coverage"]
            print("- curate: %d of %d images in the report, %d not ok, %d paths not in truth; non-dup drop reasons %s"
                  % (cov["in_report"], cov["truth_images"], cov["not_ok"], cov["extra_paths"],
                     r["dups"].get("nondup_dropped_reasons")))
    out = args.out or os.path.join(os.path.dirname(set_dir), set_name + "-scores.json")
    with open(out, "w") as fh:
        json.dump({"set": set_name, "results": results, "errors": errors}, fh, indent=1)
    print("\nall numbers: %s" % out)


if __name__ == "__main__":
    main()
