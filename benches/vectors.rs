//! The semantic engine on embedding-sized vectors: k-means, exact and IVF k-NN, SemDeDup
//! and UMAP, on synthetic clustered unit vectors (512-d, CLIP-like) with planted
//! near-duplicates.
//!
//! Three ways to run it:
//!
//! - `cargo bench --bench vectors`: criterion at `CURATE_BENCH_N` rows (default 20,000, so a
//!   plain `cargo bench` stays short).
//! - `CURATE_BENCH_ONCE=1 CURATE_BENCH_N=1000000 cargo bench --bench vectors`: the stress
//!   figures, each stage once on one data set, with its wall time and the process's peak
//!   memory (`VmHWM`) after it; what the notes quote for 1M × 512.
//! - `CURATE_VECTORS=vecs.npy CURATE_VECTORS_OUT=DIR cargo bench --bench vectors`: the Rust
//!   half of `benches/vectors_peers.py` (umap-learn, faiss-cpu and scikit-learn on the same
//!   vectors); writes `DIR/ours.json` and the neighbour and layout arrays.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use criterion::{Criterion, criterion_group};

use curate::analysis::{ivf, kmeans, knn, pca, semdedup, umap};
use curate::progress::Progress;
use curate::rng::SplitMix64;
use curate::store::npy;

const DIM: usize = 512;

/// `n` unit rows: 1 % noise, the rest around `n / 500` random centres (cosine to the centre
/// between about 0.6 and 0.9), and every 50th row a jittered copy of the row before it
/// (cosine ≈ 0.97), like near-duplicate photos.
fn clustered(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed, 0);
    let centres: Vec<Vec<f32>> = (0..(n / 500).max(2))
        .map(|_| unit((0..DIM).map(|_| rng.gauss()).collect()))
        .collect();
    let mut out = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let row = if i % 50 == 49 {
            let previous = &out[(i - 1) * DIM..i * DIM];
            unit(previous.iter().map(|v| v + 0.008 * rng.gauss()).collect())
        } else if i % 100 == 0 {
            unit((0..DIM).map(|_| rng.gauss()).collect())
        } else {
            let centre = &centres[(rng.next_u64() % centres.len() as u64) as usize];
            let spread = 0.025 + 0.025 * rng.unit();
            unit(centre.iter().map(|c| c + spread * rng.gauss()).collect())
        };
        out.extend(row);
    }
    out
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn rows_from_env() -> usize {
    std::env::var("CURATE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn umap_layout(graph: &knn::Neighbours, features: &[f32], device: &Device) -> Vec<[f32; 2]> {
    let init = pca::project_2d(features, DIM, device);
    umap::layout(
        graph,
        &init,
        &umap::Params::default(),
        device,
        &Progress::silent(),
    )
}

/// Each stage once, with wall time and peak memory.
fn once() {
    let n = rows_from_env();
    let device = Device::flex();
    let timed = |name: &str, start: Instant| {
        println!(
            "{name:<28} {:>9.2} s   peak RSS {:>8.0} MiB",
            start.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
    };
    println!(
        "{n} × {DIM} synthetic unit vectors, {} threads",
        rayon::current_num_threads()
    );
    let start = Instant::now();
    let features = clustered(n, 7);
    timed("generate", start);
    let start = Instant::now();
    let params = kmeans::Params::spherical(n, semdedup::default_clusters(n));
    let clusters = kmeans::fit_with(&features, DIM, &params, &device);
    timed(&format!("k-means (k = {})", clusters.k), start);
    let start = Instant::now();
    let pairs = semdedup::pairs_within(&features, DIM, semdedup::DEFAULT_FLOOR, &clusters, &device);
    timed(&format!("SemDeDup pairs ({})", pairs.len()), start);
    let start = Instant::now();
    let graph = knn::graph(
        &features,
        DIM,
        knn::STORED_NEIGHBOURS,
        Some(&clusters),
        &device,
        &Progress::silent(),
    );
    timed("k-NN graph (k = 16)", start);
    let start = Instant::now();
    let layout = umap_layout(&graph, &features, &device);
    timed(&format!("PCA + UMAP ({} points)", layout.len()), start);
}

/// The Rust half of `benches/vectors_peers.py`.
fn peers(input: &Path, out: &Path) {
    let device = Device::flex();
    let env_usize = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (n, dim, mut features) = npy::read_f32_2d(input).expect("the peer script's vectors");
    for row in features.chunks_exact_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
    let k = env_usize("CURATE_VECTORS_K", 10);
    let clusters_k = env_usize("CURATE_VECTORS_CLUSTERS", semdedup::default_clusters(n));
    let nprobe = env_usize("CURATE_VECTORS_NPROBE", ivf::DEFAULT_NPROBE);
    std::fs::create_dir_all(out).expect("output folder");
    let silent = Progress::silent();
    let as_i32 = |g: &knn::Neighbours| -> Vec<i32> {
        g.indices
            .iter()
            .map(|&i| if i == u32::MAX { -1 } else { i as i32 })
            .collect()
    };

    let start = Instant::now();
    let exact = knn::exact(&features, dim, k, &device, &silent);
    let knn_exact_s = start.elapsed().as_secs_f64();
    npy::write_i32(&out.join("knn_exact.npy"), &[n, k], &as_i32(&exact)).expect("write");

    let start = Instant::now();
    let params = kmeans::Params::spherical(n, clusters_k);
    let clusters = kmeans::fit_with(&features, dim, &params, &device);
    let kmeans_s = start.elapsed().as_secs_f64();
    // Inertia as faiss reports it: squared L2 to the nearest centroid, summed.
    let kmeans_inertia = kmeans::inertia(&features, dim, &clusters);

    let start = Instant::now();
    let index = ivf::Ivf::build(&features, dim, clusters.clone());
    let approximate = index.graph(&features, k, nprobe, &device, &silent);
    let knn_ivf_s = start.elapsed().as_secs_f64();
    npy::write_i32(&out.join("knn_ivf.npy"), &[n, k], &as_i32(&approximate)).expect("write");

    // UMAP as a user gets it: its own k-NN graph (IVF over its own k-means beyond the exact
    // limit), PCA start, layout.
    let start = Instant::now();
    let graph = knn::graph(
        &features,
        dim,
        knn::STORED_NEIGHBOURS,
        None,
        &device,
        &silent,
    );
    let graph_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let init = pca::project_2d(&features, dim, &device);
    let layout = umap::layout(&graph, &init, &umap::Params::default(), &device, &silent);
    let umap_s = start.elapsed().as_secs_f64();
    let flat: Vec<f32> = layout.iter().flatten().copied().collect();
    npy::write_f32(&out.join("umap.npy"), &[n, 2], &flat).expect("write");

    let json = serde_json::json!({
        "n": n,
        "dim": dim,
        "k": k,
        "clusters": clusters.k,
        "nprobe": nprobe,
        "threads": rayon::current_num_threads(),
        "knn_exact_s": knn_exact_s,
        "kmeans_s": kmeans_s,
        "kmeans_inertia": kmeans_inertia,
        "knn_ivf_s": knn_ivf_s,
        "graph_s": graph_s,
        "umap_s": umap_s,
        "umap_total_s": graph_s + umap_s,
        "peak_rss_mib": peak_rss_mib(),
    });
    std::fs::write(out.join("ours.json"), json.to_string()).expect("write ours.json");
    println!("{json}");
}

fn benches(c: &mut Criterion) {
    let n = rows_from_env();
    let device = Device::flex();
    let features = clustered(n, 7);
    let params = kmeans::Params::spherical(n, semdedup::default_clusters(n));
    let clusters = kmeans::fit_with(&features, DIM, &params, &device);
    let graph = knn::graph(
        &features,
        DIM,
        knn::STORED_NEIGHBOURS,
        Some(&clusters),
        &device,
        &Progress::silent(),
    );
    let mut group = c.benchmark_group(format!("vectors {n}x{DIM}"));
    group.sample_size(10);
    group.bench_function("k-means (cosine)", |b| {
        b.iter(|| kmeans::fit_with(&features, DIM, &params, &device));
    });
    group.bench_function("SemDeDup: k-means + within-cluster pairs", |b| {
        b.iter(|| {
            let clusters = kmeans::fit_with(&features, DIM, &params, &device);
            semdedup::pairs_within(&features, DIM, semdedup::DEFAULT_FLOOR, &clusters, &device)
        });
    });
    group.bench_function("IVF k-NN graph (k = 16)", |b| {
        let index = ivf::Ivf::build(&features, DIM, clusters.clone());
        b.iter(|| {
            index.graph(
                &features,
                knn::STORED_NEIGHBOURS,
                ivf::DEFAULT_NPROBE,
                &device,
                &Progress::silent(),
            )
        });
    });
    group.bench_function("PCA + UMAP", |b| {
        b.iter(|| umap_layout(&graph, &features, &device));
    });
    group.finish();
}

criterion_group!(vectors, benches);

fn main() {
    if let (Some(input), Some(out)) = (
        std::env::var_os("CURATE_VECTORS"),
        std::env::var_os("CURATE_VECTORS_OUT"),
    ) {
        peers(Path::new(&input), &PathBuf::from(out));
    } else if std::env::var_os("CURATE_BENCH_ONCE").is_some() {
        once();
    } else {
        vectors();
        Criterion::default().configure_from_args().final_summary();
    }
}
