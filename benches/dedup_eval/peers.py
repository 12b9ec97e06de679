#!/usr/bin/env python3
"""Run one peer tool on an evaluation folder and write what it found as JSON.

usage: peers.py TOOL SET_DIR OUT_JSON
  TOOL: cleanvision | imagededup | fastdup | datalab

score.py calls this in a subprocess per tool (fastdup with its own venv's python), so a peer
that crashes only loses its own row. Output:
  {"tool", "versions", "seconds", "images", "variants": {NAME: {"groups": [[relpath, ...]],
   "scores": {SCORE: {relpath: float}}, "note": str}}}
Every score is oriented so that higher = more unusual / worse. Paths are relative to SET_DIR
with '/' separators. Folders starting with '.' (curate's .curate/) are skipped. Every tool
runs with its defaults; what is set is said in the variant's note.
"""

import json
import os
import sys
import time

EXTS = {"png", "jpg", "jpeg"}


def image_files(folder):
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.rsplit(".", 1)[-1].lower() in EXTS:
                out.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(out)


def components(pairs, nodes=()):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in nodes:
        find(n)
    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def version(pkg):
    try:
        from importlib.metadata import version as v
        return v(pkg)
    except Exception:
        return "?"


# ---------------------------------------------------------------------------------------


def run_cleanvision(folder, files):
    from cleanvision import Imagelab

    lab = Imagelab(filepaths=[os.path.join(folder, f) for f in files], verbose=False)
    lab.find_issues()
    rel = lambda p: os.path.relpath(p, folder).replace(os.sep, "/")
    groups = []
    for key in ("exact_duplicates", "near_duplicates"):
        groups += [[rel(p) for p in s] for s in lab.info.get(key, {}).get("sets", [])]
    pairs = [(g[0], x) for g in groups for x in g[1:]]
    scores = {}
    for col in lab.issues.columns:
        if col.endswith("_score") and "duplicates" not in col:
            # CleanVision: 0 = most severe, 1 = fine
            scores[col] = {rel(p): 1.0 - float(v) for p, v in lab.issues[col].items() if v == v}
    return {"cleanvision": {"groups": components(pairs), "scores": scores,
                            "note": "Imagelab(filepaths).find_issues() defaults; groups = exact + near "
                                    "duplicate sets merged; scores = 1 - issue score"}}, {"cleanvision": version("cleanvision")}


def run_imagededup(folder, files):
    import importlib.util
    import types

    # imagededup.methods/__init__ imports the CNN method and with it torch; the hashing
    # methods need no torch, so the two packages are stubbed to import hashing alone
    base = os.path.dirname(importlib.util.find_spec("imagededup").origin)
    for name in ("imagededup.methods", "imagededup.utils"):
        mod = types.ModuleType(name)
        mod.__path__ = [os.path.join(base, name.split(".")[1])]
        sys.modules[name] = mod
    from imagededup.methods.hashing import DHash, PHash

    out = {}
    for cls in (PHash, DHash):
        h = cls(verbose=False)
        enc = {}
        for f in files:
            try:
                e = h.encode_image(image_file=os.path.join(folder, f))
            except Exception:
                e = None
            if e:
                enc[f] = e
        dups = h.find_duplicates(encoding_map=enc)  # default max_distance_threshold=10
        pairs = [(a, b) for a, bs in dups.items() for b in bs]
        out["imagededup_" + cls.__name__.lower()] = {
            "groups": components(pairs), "scores": {},
            "note": "%s find_duplicates defaults (max_distance_threshold=10), connected components; "
                    "%d of %d files encoded" % (cls.__name__, len(enc), len(files))}
    return out, {"imagededup": version("imagededup")}


def run_fastdup(folder, files):
    os.environ.setdefault("SENTRY_OPT_OUT", "1")
    import numpy as np
    import pandas as pd
    import fastdup

    work = os.environ.get("FASTDUP_WORK") or os.path.join(
        os.path.expanduser("~/.cache/curate-eval/work"), os.path.basename(os.path.abspath(folder)), "fastdup")
    if os.path.isdir(work):
        import shutil
        shutil.rmtree(work)
    os.makedirs(work)
    listing = os.path.join(work, "files.txt")
    with open(listing, "w") as fh:
        for f in files:
            fh.write(os.path.abspath(os.path.join(folder, f)) + "\n")
    rc = fastdup.run(input_dir=listing, work_dir=work, verbose=False)  # threshold=0.9, nearest_neighbors_k=2
    if rc not in (0, None):
        raise RuntimeError("fastdup.run returned %r" % rc)
    names = pd.read_csv(os.path.join(work, "atrain_features.dat.csv"))["filename"].tolist()
    rel = lambda p: os.path.relpath(p, folder).replace(os.sep, "/")
    sim = pd.read_csv(os.path.join(work, "similarity.csv"))
    pairs = []
    for a, b, d in zip(sim["from"], sim["to"], sim["distance"]):
        if d >= 0.9:
            pairs.append((rel(a), rel(b)))
    out = {"fastdup": {"groups": components(pairs), "scores": {},
                       "note": "fastdup.run defaults; groups = connected components of similarity.csv "
                               "pairs at its default threshold 0.9"}}
    cc_path = os.path.join(work, "connected_components.csv")
    if os.path.exists(cc_path):
        cc = pd.read_csv(cc_path)
        by = {}
        for idx, comp in zip(cc["__id"], cc["component_id"]):
            by.setdefault(comp, []).append(rel(names[int(idx)]))
        out["fastdup_cc"] = {"groups": sorted(sorted(g) for g in by.values() if len(g) > 1), "scores": {},
                             "note": "fastdup's own connected_components.csv (its ccthreshold default)"}
    # outlier score: 1 - cosine similarity to the nearest other image in fastdup's embedding
    feats = fastdup.load_binary_feature(os.path.join(work, "atrain_features.dat"))
    if isinstance(feats, tuple):
        names2, feats = feats
        names = list(names2)
    x = np.asarray(feats, dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    best = np.full(len(x), -1.0, dtype=np.float32)
    for i in range(0, len(x), 1024):
        s = x[i:i + 1024] @ x.T
        for k in range(s.shape[0]):
            s[k, i + k] = -1.0
        best[i:i + 1024] = s.max(axis=1)
    out["fastdup"]["scores"]["nn_distance"] = {rel(n): float(1.0 - b) for n, b in zip(names, best)}
    return out, {"fastdup": version("fastdup")}


def grey32(path):
    from PIL import Image
    import numpy as np

    im = Image.open(path)
    im.draft("RGB", (64, 64))
    im = im.convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    bg.alpha_composite(im)
    return np.asarray(bg.convert("L").resize((32, 32), Image.BILINEAR), dtype=np.float32).ravel() / 255.0


def run_datalab(folder, files):
    import numpy as np
    from cleanlab import Datalab

    feats, ok = [], []
    for f in files:
        try:
            feats.append(grey32(os.path.join(folder, f)))
            ok.append(f)
        except Exception:
            pass
    x = np.stack(feats)
    lab = Datalab(data={"id": list(range(len(ok)))}, verbosity=0)
    lab.find_issues(features=x, issue_types={"near_duplicate": {}, "outlier": {}})
    nd = lab.get_issues("near_duplicate")
    pairs = []
    for i, (flag, sets) in enumerate(zip(nd["is_near_duplicate_issue"], nd["near_duplicate_sets"])):
        for j in sets:
            pairs.append((ok[i], ok[int(j)]))
    outl = lab.get_issues("outlier")
    scores = {"outlier_score": {f: 1.0 - float(v) for f, v in zip(ok, outl["outlier_score"])},
              "near_duplicate_score": {f: 1.0 - float(v) for f, v in zip(ok, nd["near_duplicate_score"])}}
    return {"datalab": {"groups": components(pairs), "scores": scores,
                        "note": "Datalab.find_issues(features=32x32 grayscale pixels in [0,1], alpha on "
                                "white, bilinear), near_duplicate + outlier defaults; scores = 1 - score"}}, \
        {"cleanlab": version("cleanlab")}


RUNNERS = {"cleanvision": run_cleanvision, "imagededup": run_imagededup, "fastdup": run_fastdup,
           "datalab": run_datalab}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in RUNNERS:
        print(__doc__)
        sys.exit(2)
    tool, folder, out = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    files = image_files(folder)
    t0 = time.perf_counter()
    variants, versions = RUNNERS[tool](folder, files)
    result = {"tool": tool, "versions": versions, "seconds": round(time.perf_counter() - t0, 2),
              "images": len(files), "variants": variants}
    with open(out, "w") as fh:
        json.dump(result, fh)
    print("%s: %.1f s, %d images, variants %s" % (tool, result["seconds"], len(files), ", ".join(variants)))


if __name__ == "__main__":
    main()
