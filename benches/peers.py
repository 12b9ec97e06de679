"""curate vs CleanVision on the same folders, in one run.

usage: peers.py time DIR            time CleanVision's full find_issues() on DIR
       peers.py recall DIR          duplicate pair recall/precision of CleanVision and of
                                    curate's report on a `curate demo` folder (needs
                                    DIR/demo-truth.json and DIR/.curate/report.parquet)

Pinned: cleanvision==0.3.7, pyarrow (any recent). CleanVision's defaults are used as is.
"""

import itertools
import json
import os
import sys
import time


def utf8_files(folder):
    """The image files under `folder` CleanVision survives: it crashes on a non-UTF-8 name
    and on the demo's decompression bomb, so those (and the rest of `bad/`) are left out."""
    out = []
    for root, _, files in os.walk(folder):
        if "/." in root or os.path.relpath(root, folder).startswith("bad"):
            continue
        for name in files:
            path = os.path.join(root, name)
            try:
                path.encode("utf-8")
            except UnicodeEncodeError:
                continue
            if name.lower().rsplit(".", 1)[-1] in {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"}:
                out.append(path)
    return sorted(out)


def run_cleanvision(folder):
    from cleanvision import Imagelab

    started = time.perf_counter()
    lab = Imagelab(filepaths=utf8_files(folder))
    lab.find_issues()
    return lab, time.perf_counter() - started


def pairs_of(groups):
    out = set()
    for group in groups:
        for a, b in itertools.combinations(sorted(group), 2):
            out.add((a, b))
    return out


def truth_pairs(folder):
    truth = json.load(open(os.path.join(folder, "demo-truth.json")))
    families = []
    for family in truth["families"]:
        families.append([family["original"], *family["exact"], *[p for p, _ in family["near"]]])
    return pairs_of(families)


def score(name, predicted, true):
    hits = len(predicted & true)
    recall = hits / max(len(true), 1)
    precision = hits / max(len(predicted), 1)
    print(f"{name:12s} pair recall {recall:.3f}  precision {precision:.3f}  ({len(predicted)} predicted, {len(true)} true)")
    return recall


def main():
    mode, folder = sys.argv[1], os.path.abspath(sys.argv[2])
    if mode == "time":
        lab, seconds = run_cleanvision(folder)
        count = len(lab.issues)
        print(json.dumps({"seconds": seconds, "images": count, "images_per_sec": count / seconds}))
        return
    true = truth_pairs(folder)
    lab, seconds = run_cleanvision(folder)
    sets = lab.info["exact_duplicates"]["sets"] + lab.info["near_duplicates"]["sets"]
    relative = [[os.path.relpath(p, folder) for p in group] for group in sets]
    cv = score("CleanVision", pairs_of(relative), true)

    import pyarrow.parquet as pq

    table = pq.read_table(os.path.join(folder, ".curate", "report.parquet"), columns=["path", "dup_group"]).to_pylist()
    groups = {}
    for row in table:
        if row["dup_group"] >= 0:
            groups.setdefault(row["dup_group"], []).append(row["path"])
    ours = score("curate", pairs_of(groups.values()), true)
    print(json.dumps({"cleanvision_recall": cv, "curate_recall": ours, "cleanvision_seconds": seconds}))


if __name__ == "__main__":
    main()
