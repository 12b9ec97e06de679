"""curate's vector stage against its peers on the same vectors, in one run: exact k-NN
(scikit-learn, faiss flat), IVF k-NN (faiss IndexIVFFlat), k-means (faiss) and UMAP
(umap-learn), with speed ratios and quality side by side.

usage: vectors_peers.py [--n 100000] [--dim 512] [--k 10] [--clusters N/1000] [--nprobe 8]
                        [--work /tmp/curate-vectors-peers] [--seed 0] [--jobs CPUS]
                        [--trust-sample 5000] [--skip-ours] [--skip-umap]
                        [--faiss-all-points] [--json]

  1. Writes WORK/vecs.npy (N × DIM f32, unit rows) and WORK/vecs.txt (fake relative paths,
     img/000000.jpg ...): about 100 Gaussian clusters around random unit centres with
     varied spread (cosine to the own centre 0.6–0.9) and varied sizes, plus 3 % uniform
     noise rows; seeded, reused when WORK already holds the same set.
  2. Ours: `cargo bench --bench vectors` with CURATE_VECTORS=WORK/vecs.npy and
     CURATE_VECTORS_OUT=WORK/ours (plus _K, _CLUSTERS, _NPROBE), which writes ours.json
     (knn_exact_s, knn_ivf_s, kmeans_s, kmeans_inertia, umap_s, umap_total_s) and
     knn_exact.npy, knn_ivf.npy (n × k int32), umap.npy (n × 2 f32). Run from the
     repository root with scripts/env.sh sourced (benches/vectors_peers.sh does both).
  3. Peers, each timed on its own:
     - sklearn NearestNeighbors(k+1, algorithm="brute", metric="euclidean") on the unit
       rows (the same ranking as cosine; sklearn's fastest exact path), self removed;
     - faiss IndexFlatIP, exact, k+1 (a second exact peer);
     - faiss.Kmeans(d, clusters, niter=10, seed), plain and spherical=True (unit
       centroids, like curate's cosine k-means): train time, obj (on faiss' training
       sample: it subsamples to 256 points per centroid unless --faiss-all-points) and the
       inertia over all rows (squared L2 to the assigned centroid, untimed), the figure
       compared with ours' kmeans_inertia;
     - faiss IndexIVFFlat (inner product, nlist = clusters, nprobe): train+add and search
       of every row for k+1 neighbours timed apart; ours' knn_ivf_s is build + search
       given the k-means, so both ratios are printed;
     - umap-learn UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=None,
       n_jobs=JOBS): fit_transform, after an untimed warm-up fit on 5,000 rows (enough for
       its NN-descent path, used from 4,096 rows) that pays most of numba's compilation
       (reported as umap_warmup_s). random_state=None because a fixed seed makes
       umap-learn single-threaded.
  4. Quality: recall@k of our exact k-NN, our IVF and faiss IVF against sklearn's exact
     neighbours; trustworthiness (sklearn.manifold.trustworthiness, k = 10, cosine in the
     high-dimensional space) of both UMAP layouts on the same seeded subsample of
     --trust-sample rows, ours − theirs, pass when ours ≥ theirs − 0.02.

Prints a table (speed ratio = peer time / our time; > 1 means curate is faster), or one
JSON object with --json. Progress goes to stderr.

Pinned (benches/vectors_peers.sh installs them in a venv): numpy==2.4.6, scikit-learn==1.9.1,
faiss-cpu==1.15.1, umap-learn==0.5.12 (with numba 0.68.1, pynndescent 0.7.0),
pyarrow==26.0.1.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Rows of umap-learn's untimed warm-up: above 4,096 so NN-descent gets compiled too.
UMAP_WARMUP_ROWS = 5000


def log(message):
    print(message, file=sys.stderr, flush=True)


def timed(label, fn):
    log(f"  {label} ...")
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    log(f"  {label}: {seconds:.2f} s")
    return value, seconds


# ---------------------------------------------------------------------------------------
# Data


def unit_rows(x):
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered(n, dim, seed, clusters=100, noise=0.03):
    """`n` unit rows, CLIP-like: `clusters` Gaussian blobs around random unit centres, each
    with its own spread (cosine to the centre 0.6–0.9) and a lognormal share of the rows,
    plus `noise` of uniform rows on the sphere. float32, C order."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((clusters, dim)))
    # x = c + e, e ~ N(0, s² I): cos(x, c) ≈ 1 / sqrt(1 + d s²).
    target_cos = rng.uniform(0.6, 0.9, clusters)
    spread = np.sqrt((1.0 / target_cos**2 - 1.0) / dim)
    share = rng.lognormal(0.0, 0.5, clusters)
    n_noise = int(round(n * noise))
    label = rng.choice(clusters, size=n - n_noise, p=share / share.sum())
    out = np.empty((n, dim), dtype=np.float32)
    chunk = 16384
    for start in range(0, n - n_noise, chunk):
        lab = label[start : start + chunk]
        block = centres[lab] + spread[lab, None] * rng.standard_normal((len(lab), dim))
        out[start : start + len(lab)] = unit_rows(block)
    out[n - n_noise :] = unit_rows(rng.standard_normal((n_noise, dim)))
    # Noise rows spread through the file, not all at its end.
    out = out[rng.permutation(n)]
    return np.ascontiguousarray(out)


def prepare(work, n, dim, seed):
    os.makedirs(work, exist_ok=True)
    meta_path = os.path.join(work, "vecs.json")
    npy = os.path.join(work, "vecs.npy")
    meta = {"n": n, "dim": dim, "seed": seed, "generator": 1}
    if os.path.exists(npy) and os.path.exists(meta_path) and json.load(open(meta_path)) == meta:
        log(f"reusing {npy}")
        return np.load(npy), npy
    (x, seconds) = timed(f"generate {n} × {dim}", lambda: clustered(n, dim, seed))
    np.save(npy, x)
    with open(os.path.join(work, "vecs.txt"), "w") as f:
        f.write("".join(f"img/{i:06d}.jpg\n" for i in range(n)))
    json.dump(meta, open(meta_path, "w"))
    return x, npy


# ---------------------------------------------------------------------------------------
# Helpers


def drop_self(indices, k):
    """Rows of k+1 neighbours without the row itself (or without the last one when the row
    is not among them, as with ties or an approximate search)."""
    n = len(indices)
    own = indices == np.arange(n)[:, None]
    out = np.empty((n, k), dtype=np.int64)
    has_self = own.any(axis=1)
    # Rows that found themselves: drop that column.
    keep = ~own[has_self]
    out[has_self] = indices[has_self][keep].reshape(-1, k)
    out[~has_self] = indices[~has_self][:, :k]
    return out


def recall(found, truth):
    """Mean fraction of each row's true neighbours found (missing ones are -1)."""
    k = truth.shape[1]
    hits = 0
    for start in range(0, len(truth), 8192):
        f = found[start : start + 8192, :k]
        t = truth[start : start + 8192]
        hits += (f[:, :, None] == t[:, None, :]).any(axis=2).sum()
    return float(hits) / truth.size


# ---------------------------------------------------------------------------------------
# Runs


def run_ours(args, npy):
    out = os.path.join(args.work, "ours")
    os.makedirs(out, exist_ok=True)
    for name in ("ours.json", "knn_exact.npy", "knn_ivf.npy", "umap.npy"):
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    env = dict(
        os.environ,
        CURATE_VECTORS=npy,
        CURATE_VECTORS_OUT=out,
        CURATE_VECTORS_K=str(args.k),
        CURATE_VECTORS_CLUSTERS=str(args.clusters),
        CURATE_VECTORS_NPROBE=str(args.nprobe),
    )
    log("ours: cargo bench --bench vectors (builds first when needed)")
    # stdout to stderr: the --json output stays the only thing on stdout.
    subprocess.run(
        ["cargo", "bench", "--bench", "vectors", "--quiet"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=sys.stderr,
    )
    ours = json.load(open(os.path.join(out, "ours.json")))
    arrays = {}
    for name in ("knn_exact", "knn_ivf", "umap"):
        path = os.path.join(out, f"{name}.npy")
        arrays[name] = np.load(path) if os.path.exists(path) else None
    return ours, arrays


def run_peers(args, x):
    import faiss
    from sklearn.neighbors import NearestNeighbors

    n, d = x.shape
    k = args.k
    peers = {}
    faiss.omp_set_num_threads(args.jobs)

    log("sklearn NearestNeighbors (brute, euclidean on unit rows)")

    def sklearn_knn():
        nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="euclidean", n_jobs=args.jobs)
        nn.fit(x)
        return nn.kneighbors(x, return_distance=False)

    found, peers["sklearn_knn_s"] = timed("sklearn exact k-NN", sklearn_knn)
    truth = drop_self(found, k)

    log("faiss IndexFlatIP (exact)")

    def faiss_flat():
        index = faiss.IndexFlatIP(d)
        index.add(x)
        return index.search(x, k + 1)[1]

    found, peers["faiss_flat_s"] = timed("faiss exact k-NN", faiss_flat)
    peers["faiss_flat_recall"] = recall(drop_self(found, k), truth)

    # Plain (as the brief's peer) and spherical (unit centroids, as curate's cosine k-means):
    # inertia over all rows is squared L2 to the assigned centroid either way.
    for name, spherical in (("faiss_kmeans", False), ("faiss_kmeans_spherical", True)):
        log(f"faiss Kmeans (k = {args.clusters}, niter = 10, spherical = {spherical})")
        km = faiss.Kmeans(d, args.clusters, niter=10, seed=args.seed, spherical=spherical, verbose=False)
        if args.faiss_all_points:
            km.cp.max_points_per_centroid = n
        _, peers[f"{name}_s"] = timed(name.replace("_", " "), lambda: km.train(x))
        peers[f"{name}_obj"] = float(km.obj[-1])
        peers[f"{name}_train_rows"] = int(min(n, km.cp.max_points_per_centroid * args.clusters))
        # km.index is inner-product for spherical runs: measure L2 on a fresh flat index
        # (with unit centroids the nearest in L2 is the most similar).
        centroids = faiss.IndexFlatL2(d)
        centroids.add(km.centroids)
        distances, _ = centroids.search(x, 1)
        peers[f"{name}_inertia"] = float(distances.astype(np.float64).sum())

    log(f"faiss IndexIVFFlat (nlist = {args.clusters}, nprobe = {args.nprobe})")
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, args.clusters, faiss.METRIC_INNER_PRODUCT)

    def ivf_build():
        index.train(x)
        index.add(x)

    _, peers["faiss_ivf_build_s"] = timed("faiss IVF train + add", ivf_build)
    index.nprobe = args.nprobe
    found, peers["faiss_ivf_search_s"] = timed("faiss IVF search", lambda: index.search(x, k + 1)[1])
    peers["faiss_ivf_s"] = peers["faiss_ivf_build_s"] + peers["faiss_ivf_search_s"]
    peers["faiss_ivf_recall"] = recall(drop_self(found, k), truth)

    layout = None
    if not args.skip_umap:
        import umap

        def fit(rows):
            return umap.UMAP(
                n_neighbors=15, min_dist=0.1, metric="cosine", random_state=None, n_jobs=args.jobs
            ).fit_transform(rows)

        log("umap-learn (warm-up on 5,000 rows for numba, then the timed fit)")
        peers["umap_warmup_rows"] = min(n, UMAP_WARMUP_ROWS)
        _, peers["umap_warmup_s"] = timed("umap-learn warm-up", lambda: fit(x[: peers["umap_warmup_rows"]]))
        layout, peers["umap_s"] = timed("umap-learn fit_transform", lambda: fit(x))
    return peers, truth, layout


def trustworthiness_pair(args, x, ours_layout, peer_layout):
    from sklearn.manifold import trustworthiness

    n = len(x)
    m = min(args.trust_sample, n)
    sample = np.sort(np.random.default_rng(args.seed + 1).choice(n, m, replace=False))
    out = {"trust_sample": m}
    for name, layout in (("ours", ours_layout), ("peer", peer_layout)):
        if layout is not None:
            out[f"trust_{name}"] = float(
                trustworthiness(x[sample], np.asarray(layout)[sample], n_neighbors=10, metric="cosine")
            )
    return out


# ---------------------------------------------------------------------------------------
# Report


def versions():
    out = {"python": platform.python_version()}
    for name in ("numpy", "sklearn", "faiss", "umap", "numba", "pynndescent"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 — a missing peer is reported, not fatal
            out[name] = None
    return out


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model}


def table(result):
    peers, ours = result["peers"], result.get("ours") or {}
    rows = []

    def speed(task, peer_name, peer_s, ours_key):
        ours_s = ours.get(ours_key)
        ratio = peer_s / ours_s if ours_s else None
        rows.append((task, peer_name, peer_s, ours_s, ratio))

    speed("exact k-NN", "sklearn brute", peers["sklearn_knn_s"], "knn_exact_s")
    speed("exact k-NN", "faiss FlatIP", peers["faiss_flat_s"], "knn_exact_s")
    speed("IVF k-NN (build+search)", "faiss IVFFlat", peers["faiss_ivf_s"], "knn_ivf_s")
    speed("IVF k-NN (search only)", "faiss IVFFlat", peers["faiss_ivf_search_s"], "knn_ivf_s")
    speed("k-means", "faiss Kmeans", peers["faiss_kmeans_s"], "kmeans_s")
    speed("k-means (spherical)", "faiss Kmeans", peers["faiss_kmeans_spherical_s"], "kmeans_s")
    if "umap_s" in peers:
        speed("UMAP (graph + layout)", "umap-learn", peers["umap_s"], "umap_total_s")

    lines = [
        f"{result['n']} × {result['dim']} vectors, k = {result['k']}, clusters = {result['clusters']}, "
        f"nprobe = {result['nprobe']}, {result['machine']['cpus']} CPUs ({result['machine']['cpu']})",
        "",
        f"{'task':26s} {'peer':14s} {'peer s':>9s} {'ours s':>9s} {'peer/ours':>10s}",
    ]
    for task, peer, peer_s, ours_s, ratio in rows:
        ours_text = f"{ours_s:9.2f}" if ours_s is not None else f"{'-':>9s}"
        ratio_text = f"{ratio:9.1f}×" if ratio is not None else f"{'-':>10s}"
        lines.append(f"{task:26s} {peer:14s} {peer_s:9.2f} {ours_text} {ratio_text}")
    if "umap_warmup_s" in peers:
        lines.append(f"  umap-learn warm-up on {peers.get('umap_warmup_rows', UMAP_WARMUP_ROWS):,} rows (numba JIT), not in the figure above: {peers['umap_warmup_s']:.1f} s")
    if ours.get("umap_s") is not None and ours.get("umap_total_s") is not None:
        graph_s = ours.get("graph_s", ours["umap_total_s"] - ours["umap_s"])
        lines.append(f"  ours: k-NN graph {graph_s:.2f} s + PCA and layout {ours['umap_s']:.2f} s")

    q = result["quality"]
    lines += ["", "quality"]

    def line(label, value, note="", signed=False):
        text = (f"{value:+.4f}" if signed else f"{value:.4f}") if isinstance(value, float) else "-"
        lines.append(f"  {label:44s} {text:>8s}  {note}")

    line("recall@k ours exact vs sklearn", q.get("recall_ours_exact"), "(≈ 1.0)")
    line("recall@k faiss flat vs sklearn", q.get("recall_faiss_flat"))
    line("recall@k ours IVF vs exact", q.get("recall_ours_ivf"))
    line("recall@k faiss IVF vs exact", q.get("recall_faiss_ivf"))
    line("k-means inertia, all rows: faiss", q.get("inertia_faiss"), f"(faiss obj on its {peers['faiss_kmeans_train_rows']}-row sample: {peers['faiss_kmeans_obj']:.1f})")
    line("k-means inertia, all rows: faiss spherical", q.get("inertia_faiss_spherical"))
    line("k-means inertia, all rows: ours", q.get("inertia_ours"), "(spherical; ratio to faiss spherical: "
         + (f"{q['inertia_ours'] / q['inertia_faiss_spherical']:.3f})" if "inertia_ours" in q else "-)"))
    if "trust_peer" in q or "trust_ours" in q:
        line(f"trustworthiness@10 umap-learn ({q['trust_sample']} rows)", q.get("trust_peer"))
        line(f"trustworthiness@10 ours ({q['trust_sample']} rows)", q.get("trust_ours"))
        if "trust_delta" in q:
            verdict = "pass" if q["trust_ok"] else "FAIL"
            line("ours − umap-learn", q["trust_delta"], f"{verdict} (ours ≥ theirs − 0.02)", signed=True)
    if "umap_speedup" in q:
        verdict = "pass" if q["umap_speedup"] >= 5 else "below target"
        lines.append(f"  UMAP speed-up (umap-learn / ours graph+layout): {q['umap_speedup']:.1f}× ({verdict}; target ≥ 5×)")
    v = result["versions"]
    lines += ["", "versions: " + ", ".join(f"{k} {val}" for k, val in v.items())]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="rows (default 100,000)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10, help="neighbours per row (default 10)")
    parser.add_argument("--clusters", type=int, default=None, help="k-means k and IVF nlist (default n / 1000)")
    parser.add_argument("--nprobe", type=int, default=8, help="IVF lists probed, both sides (default 8, curate's DEFAULT_NPROBE)")
    parser.add_argument("--work", default="/tmp/curate-vectors-peers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="threads for the peers (default: all CPUs)")
    parser.add_argument("--trust-sample", type=int, default=5000)
    parser.add_argument("--skip-ours", action="store_true", help="run only the peers")
    parser.add_argument("--skip-umap", action="store_true", help="leave umap-learn out (the slow one)")
    parser.add_argument("--faiss-all-points", action="store_true", help="train faiss k-means on every row, not its 256-per-centroid sample")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    if args.clusters is None:
        args.clusters = max(1, args.n // 1000)
    args.work = os.path.abspath(args.work)

    x, npy = prepare(args.work, args.n, args.dim, args.seed)
    result = {
        "n": args.n,
        "dim": args.dim,
        "k": args.k,
        "clusters": args.clusters,
        "nprobe": args.nprobe,
        "jobs": args.jobs,
        "machine": machine(),
    }
    ours, arrays = (None, {}) if args.skip_ours else run_ours(args, npy)
    peers, truth, peer_layout = run_peers(args, x)
    result["versions"] = versions()
    result["ours"] = ours
    result["peers"] = peers

    quality = {
        "recall_faiss_flat": peers["faiss_flat_recall"],
        "recall_faiss_ivf": peers["faiss_ivf_recall"],
        "inertia_faiss": peers["faiss_kmeans_inertia"],
        "inertia_faiss_spherical": peers["faiss_kmeans_spherical_inertia"],
    }
    if ours is not None:
        quality["inertia_ours"] = float(ours["kmeans_inertia"])
        if arrays.get("knn_exact") is not None:
            quality["recall_ours_exact"] = recall(arrays["knn_exact"].astype(np.int64), truth)
        if arrays.get("knn_ivf") is not None:
            quality["recall_ours_ivf"] = recall(arrays["knn_ivf"].astype(np.int64), truth)
        if peers.get("umap_s") and ours.get("umap_total_s"):
            quality["umap_speedup"] = peers["umap_s"] / ours["umap_total_s"]
    ours_layout = arrays.get("umap")
    if peer_layout is not None or ours_layout is not None:
        log("trustworthiness")
        quality.update(trustworthiness_pair(args, x, ours_layout, peer_layout))
        if "trust_ours" in quality and "trust_peer" in quality:
            quality["trust_delta"] = quality["trust_ours"] - quality["trust_peer"]
            quality["trust_ok"] = quality["trust_delta"] >= -0.02
    result["quality"] = quality

    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(table(result))


if __name__ == "__main__":
    main()
