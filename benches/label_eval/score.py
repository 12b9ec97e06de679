"""Scores mislabelled-image detection on a set made by make_set.py: curate's report
(`class_issue_score`, `suggested_class`) and, with --peers, cleanlab on the same embeddings.

  score.py SET_DIR [--report PATH] [--embeddings PARQUET] [--peers] [--out JSON]

The embeddings (`curate embed SET_DIR --out F.parquet`: `path`, `image_embedding`) are what
the peers get: cleanlab Datalab with `features=` (its own k-NN pred_probs), and cleanlab's
tutorial workflow (5-fold cross-validated logistic regression pred_probs, then
`find_label_issues` / self-confidence).
"""
import argparse
import json
import os
import time

import numpy as np
import pyarrow.parquet as pq


def auroc(labels, scores):
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels.sum()
    neg = len(labels) - pos
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def metrics(truth, paths, score, suggested=None):
    lab = np.array([truth["images"][p]["mislabelled"] for p in paths], dtype=int)
    sc = np.asarray(score, dtype=float)
    n = int(lab.sum())
    top = np.argsort(-sc, kind="mergesort")[:n]
    out = {"auroc": auroc(lab, sc), "precision_at_n": float(lab[top].mean()), "n_mislabelled": n}
    if suggested is not None:
        ok = [suggested[i] == truth["images"][p]["true_class"] for i, p in enumerate(paths) if lab[i]]
        out["suggested_true_class"] = float(np.mean(ok)) if ok else None
    return out


def peers(truth, paths, x):
    from cleanlab import Datalab
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    classes = truth["classes"]
    y = np.array([classes.index(truth["images"][p]["given_class"]) for p in paths])
    res = {}
    t = time.time()
    lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
    lab.find_issues(features=x, issue_types={"label": {}})
    iss = lab.get_issues("label")
    res["cleanlab Datalab (features, k-NN)"] = metrics(
        truth, paths, 1 - iss["label_score"].to_numpy(),
        [classes[c] for c in iss["predicted_label"].to_numpy()])
    res["cleanlab Datalab (features, k-NN)"]["secs"] = time.time() - t
    t = time.time()
    probs = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=5, method="predict_proba")
    find_label_issues(y, probs)
    self_conf = probs[np.arange(len(y)), y]
    res["cleanlab (5-fold logistic regression)"] = metrics(
        truth, paths, 1 - self_conf, [classes[c] for c in probs.argmax(1)])
    res["cleanlab (5-fold logistic regression)"]["secs"] = time.time() - t
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set_dir")
    ap.add_argument("--report")
    ap.add_argument("--embeddings")
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    truth = json.load(open(os.path.join(a.set_dir, "truth.json")))
    results = {}
    report = a.report or os.path.join(a.set_dir, ".curate", "report.parquet")
    if os.path.exists(report):
        t = pq.read_table(report).to_pydict()
        paths = [p.replace(os.sep, "/") for p in t["path"]]
        keep = [i for i, p in enumerate(paths) if p in truth["images"] and t["class_issue_score"][i] is not None]
        results["curate"] = metrics(truth, [paths[i] for i in keep],
                                    [t["class_issue_score"][i] for i in keep],
                                    [t["suggested_class"][i] for i in keep])
        results["curate"]["scored"] = len(keep)
    if a.peers and a.embeddings:
        e = pq.read_table(a.embeddings).to_pydict()
        paths = [p.replace(os.sep, "/") for p in e["path"]]
        x = np.array(e["image_embedding"], dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
        results.update(peers(truth, paths, x))
    print(f"## {truth['set']}: {len(truth['images'])} images, {len(truth['classes'])} classes")
    print("| tool | AUROC | precision at N | suggested = true class | secs |")
    print("|---|---|---|---|---|")
    for k, v in results.items():
        print(f"| {k} | {v['auroc']:.3f} | {v['precision_at_n']:.3f} | "
              f"{v.get('suggested_true_class') or float('nan'):.3f} | {v.get('secs', float('nan')):.2f} |")
    if a.out:
        json.dump(results, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
