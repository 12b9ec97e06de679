//! k-means from a k-means++ start: assignments score `x·c − ‖c‖²/2` (nearest by squared
//! distance), or `x·c` for unit rows, with the fused kernel of [`super::topk`] on the CPU
//! and one matrix product per tile of rows on a GPU; centroid updates are a parallel sum per
//! centroid on the CPU. Lloyd iterations on a sample of [`LLOYD_ROWS_PER_CLUSTER`] rows per
//! cluster for ordinary sizes (all rows with [`Params::lloyd`]); above [`MINI_BATCH_ABOVE`]
//! rows, mini-batch updates (Sculley 2010) on sampled rows; either way one final full
//! assignment, so that only tiles of the feature matrix are ever copied. Deterministic for a
//! seed.

// `#[inline(always)]` carries a `pulp` dispatch's SIMD level into the distance loop.
#![allow(clippy::inline_always)]

use burn::tensor::{Device, Int, Tensor, TensorData};
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::topk::{self, PackedKeys};
use crate::rng::SplitMix64 as Rng;

/// Most elements of one `rows × k` score tile (bounds the upload and the matrix product).
const TILE_ELEMENTS: usize = 1 << 24;
/// Most rows per assignment tile.
const TILE: usize = 65_536;
/// Rows the k-means++ start samples from (more when `k` asks for it, see [`seed`]).
const INIT_SAMPLE: usize = 20_000;
/// Rows per block of the deterministic parallel sums.
const SUM_BLOCK: usize = 4_096;

/// Rows above which [`Params::new`] chooses mini-batch updates.
pub const MINI_BATCH_ABOVE: usize = 500_000;
/// Lloyd iterations [`Params::new`] chooses for full k-means.
pub const DEFAULT_ITERATIONS: usize = 10;
/// Seed the [`Params`] constructors choose.
pub const DEFAULT_SEED: u64 = 0x5EED;
/// Smallest mini-batch [`Params::mini_batch`] chooses (it grows with `k`, see
/// [`BATCH_ROWS_PER_CLUSTER`]).
pub const DEFAULT_BATCH: usize = 8_192;
/// Mini-batch rows per cluster [`Params::mini_batch`] asks for. Large batches average out
/// the noise of the first steps: at 1M × 512 and `k` = 1000, 512 sampled rows per cluster
/// end 3.8 % above Lloyd's inertia in batches of 2 per cluster, 0.6 % in batches of 16.
pub const BATCH_ROWS_PER_CLUSTER: usize = 16;
/// Fewest mini-batch steps [`Params::mini_batch`] takes: each is a little like one Lloyd
/// iteration on a sample, and a handful do not converge.
pub const MIN_STEPS: usize = 32;
/// Sampled rows per cluster, over all mini-batch steps, that [`Params::mini_batch`] asks
/// for (at most one pass over the data).
pub const MINI_BATCH_ROWS_PER_CLUSTER: usize = 512;
/// Rows per cluster [`Params::new`] lets Lloyd iterate on (faiss' `max_points_per_centroid`).
/// 100k × 512, k = 100: 0.3 s instead of 1.9 s, inertia over all rows within 0.2 %.
pub const LLOYD_ROWS_PER_CLUSTER: usize = 256;

/// A fitted clustering.
#[derive(Clone, Debug, PartialEq)]
pub struct KMeans {
    /// Number of clusters.
    pub k: usize,
    /// Width of the rows.
    pub dim: usize,
    /// `k × dim` centroids.
    pub centroids: Vec<f32>,
    /// Cluster of each row.
    pub assignment: Vec<u32>,
}

impl KMeans {
    /// Each cluster's rows, ascending.
    #[must_use]
    pub fn lists(&self) -> Vec<Vec<u32>> {
        let mut lists = vec![Vec::new(); self.k];
        for (row, &c) in self.assignment.iter().enumerate() {
            lists[c as usize].push(row as u32);
        }
        lists
    }
}

/// How rows are compared with centroids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance; a centroid is its cluster's mean.
    #[default]
    L2,
    /// Spherical k-means for unit rows: a row joins the centroid of largest dot product, and
    /// centroids are cluster means scaled back to unit length.
    Cosine,
}

/// How [`fit_with`] clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Number of clusters (clamped to the number of rows).
    pub k: usize,
    /// Lloyd iterations (full; it stops early when the assignment no longer changes), or
    /// mini-batch steps (mini-batch). Change it together with `batch`: a mini-batch step
    /// count is not a sensible number of Lloyd iterations.
    pub iterations: usize,
    /// Seed of the k-means++ start and of the batch draws.
    pub seed: u64,
    /// Distance between rows and centroids.
    pub metric: Metric,
    /// Rows per mini-batch step; `None` (or a batch of at least all rows) runs Lloyd.
    pub batch: Option<usize>,
    /// Lloyd iterates on at most this many evenly spaced rows, then assigns every row once
    /// (faiss trains the same way, on 256 rows per centroid); `None` iterates on all rows.
    pub sample: Option<usize>,
}

impl Params {
    /// [`Self::new`] with the cosine metric (spherical k-means of unit rows): the clustering
    /// SemDeDup, the IVF index and the keeper policies share.
    #[must_use]
    pub fn spherical(rows: usize, k: usize) -> Self {
        Self {
            metric: Metric::Cosine,
            ..Self::new(rows, k)
        }
    }

    /// Parameters for `k` clusters of `rows` rows: [`Self::lloyd`] on a sample of
    /// [`LLOYD_ROWS_PER_CLUSTER`] rows per cluster up to [`MINI_BATCH_ABOVE`] rows,
    /// [`Self::mini_batch`] beyond. L2 metric, a fixed seed.
    #[must_use]
    pub fn new(rows: usize, k: usize) -> Self {
        if rows > MINI_BATCH_ABOVE {
            Self::mini_batch(rows, k)
        } else {
            let k = k.max(1);
            Self {
                sample: Some(LLOYD_ROWS_PER_CLUSTER * k),
                ..Self::lloyd(k)
            }
        }
    }

    /// Full Lloyd for `k` clusters on every row: [`DEFAULT_ITERATIONS`] iterations. L2
    /// metric, a fixed seed.
    #[must_use]
    pub fn lloyd(k: usize) -> Self {
        Self {
            k: k.max(1),
            iterations: DEFAULT_ITERATIONS,
            seed: DEFAULT_SEED,
            metric: Metric::L2,
            batch: None,
            sample: None,
        }
    }

    /// Mini-batch parameters for `k` clusters of `rows` rows, whatever their number:
    /// batches of `max(DEFAULT_BATCH, BATCH_ROWS_PER_CLUSTER · k)` rows (fewer when that
    /// would leave less than [`MIN_STEPS`] in one pass), and enough steps to draw
    /// [`MINI_BATCH_ROWS_PER_CLUSTER`] rows per cluster, at least [`MIN_STEPS`], at most
    /// about one pass over the data. L2 metric, a fixed seed.
    #[must_use]
    pub fn mini_batch(rows: usize, k: usize) -> Self {
        let k = k.max(1);
        let batch = DEFAULT_BATCH
            .max(BATCH_ROWS_PER_CLUSTER * k)
            .min(rows / MIN_STEPS)
            .max(1);
        let steps = (MINI_BATCH_ROWS_PER_CLUSTER * k)
            .div_ceil(batch)
            .max(MIN_STEPS)
            .min(rows.div_ceil(batch));
        Self {
            k,
            iterations: steps.max(1),
            seed: DEFAULT_SEED,
            metric: Metric::L2,
            batch: Some(batch),
            sample: None,
        }
    }
}

/// Squared distance in 16 independent lanes, so the compiler vectorises it (a plain
/// `sum()` of `f32` must add in order, one latency at a time).
#[inline(always)]
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 16];
    let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((l, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *l += (x - y) * (x - y);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn normalise(row: &mut [f32]) {
    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|v| *v /= norm);
    }
}

/// k-means++ seeding on a sample of the rows (at least 8 per cluster).
fn seed(features: &[f32], dim: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = features.len() / dim;
    let step = n.div_ceil(INIT_SAMPLE.max(8 * k)).max(1);
    let sample: Vec<&[f32]> = features.chunks_exact(dim).step_by(step).collect();
    let mut centroids = Vec::with_capacity(k * dim);
    let first = (rng.next_u64() % sample.len() as u64) as usize;
    centroids.extend_from_slice(sample[first]);
    let mut nearest = vec![f32::INFINITY; sample.len()];
    lower_to(&mut nearest, &sample, sample[first]);
    while centroids.len() < k * dim {
        let total: f64 = nearest.iter().map(|&d| f64::from(d)).sum();
        let pick = if total <= 0.0 {
            (rng.next_u64() % sample.len() as u64) as usize
        } else {
            let mut target = rng.unit_f64() * total;
            nearest
                .iter()
                .position(|&d| {
                    target -= f64::from(d);
                    target <= 0.0
                })
                .unwrap_or(sample.len() - 1)
        };
        let chosen = sample[pick];
        centroids.extend_from_slice(chosen);
        lower_to(&mut nearest, &sample, chosen);
    }
    centroids
}

/// `nearest[i] = min(nearest[i], ‖rows[i] − chosen‖²)`, in parallel, each chunk compiled
/// for the CPU's widest SIMD (k-means++ seeding does this once per centroid).
fn lower_to(nearest: &mut [f32], rows: &[&[f32]], chosen: &[f32]) {
    nearest
        .par_chunks_mut(1024)
        .zip(rows.par_chunks(1024))
        .for_each(|(nearest, rows)| {
            Arch::new().dispatch(LowerTo {
                nearest,
                rows,
                chosen,
            });
        });
}

/// One chunk of [`lower_to`] as a `pulp` operation.
struct LowerTo<'a> {
    nearest: &'a mut [f32],
    rows: &'a [&'a [f32]],
    chosen: &'a [f32],
}

impl WithSimd for LowerTo<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        for (d, row) in self.nearest.iter_mut().zip(self.rows) {
            *d = d.min(squared_distance(row, self.chosen));
        }
    }
}

/// Rows per score tile against `k` centroids.
fn tile_rows(k: usize) -> usize {
    (TILE_ELEMENTS / k.max(1)).clamp(256, TILE)
}

fn upload(rows: &[f32], dim: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(
        TensorData::new(rows.to_vec(), [rows.len() / dim, dim]),
        device,
    )
}

/// The nearest centroid of every row by squared distance (as [`assign_with`] with
/// [`Metric::L2`]).
#[must_use]
pub fn assign(features: &[f32], dim: usize, centroids: &[f32], device: &Device) -> Vec<u32> {
    assign_with(features, dim, centroids, Metric::L2, device)
}

/// The nearest centroid of every row of `features` (`n × dim`) under `metric`, one matrix
/// product per tile of rows.
#[must_use]
pub fn assign_with(
    features: &[f32],
    dim: usize,
    centroids: &[f32],
    metric: Metric,
    device: &Device,
) -> Vec<u32> {
    let k = centroids.len() / dim.max(1);
    let n = features.len() / dim.max(1);
    if k == 0 || n == 0 {
        return vec![0; n];
    }
    if *device == Device::flex() {
        return nearest_on_cpu(features, dim, centroids, 1, metric);
    }
    let c = upload(centroids, dim, device);
    let c_norm = c.clone().mul(c.clone()).sum_dim(1).reshape([1, k]);
    let ct = c.transpose();
    let mut out = Vec::with_capacity(n);
    for tile in features.chunks(tile_rows(k) * dim) {
        let scores = upload(tile, dim, device).matmul(ct.clone());
        let best: Tensor<2, Int> = match metric {
            // ‖x‖² is the same for every centroid of a row: it does not change the argmin.
            Metric::L2 => (c_norm.clone() - scores.mul_scalar(2.0)).argmin(1),
            Metric::Cosine => scores.argmax(1),
        };
        let best: Vec<i64> = best
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .expect("an int tensor downloads as i64");
        out.extend(best.into_iter().map(|b| b as u32));
    }
    out
}

/// The `count` nearest centroids of every row by squared distance, nearest first
/// (`n × count`, `count` clamped to the number of centroids). For unit centroids this is
/// also the order of largest dot product. The probe lists of an inverted-file index.
#[must_use]
pub fn nearest_centroids(
    features: &[f32],
    dim: usize,
    centroids: &[f32],
    count: usize,
    device: &Device,
) -> Vec<u32> {
    let k = centroids.len() / dim.max(1);
    let n = features.len() / dim.max(1);
    let count = count.min(k);
    if count == 0 || n == 0 {
        return Vec::new();
    }
    if *device == Device::flex() {
        return nearest_on_cpu(features, dim, centroids, count, Metric::L2);
    }
    let c = upload(centroids, dim, device);
    let c_norm = c.clone().mul(c.clone()).sum_dim(1).reshape([1, k]);
    let ct = c.transpose();
    let mut out = vec![0_u32; n * count];
    let rows = tile_rows(k);
    for (tile, out) in features
        .chunks(rows * dim)
        .zip(out.chunks_mut(rows * count))
    {
        let scores: Vec<f32> = (c_norm.clone()
            - upload(tile, dim, device).matmul(ct.clone()).mul_scalar(2.0))
        .into_data()
        .try_into_vec()
        .expect("a float tensor downloads as f32");
        out.par_chunks_mut(count)
            .zip(scores.par_chunks_exact(k))
            .for_each(|(best, scores)| {
                let mut best_scores = vec![f32::INFINITY; count];
                for (c, &s) in scores.iter().enumerate() {
                    if s >= best_scores[count - 1] {
                        continue;
                    }
                    let mut at = count - 1;
                    while at > 0 && best_scores[at - 1] > s {
                        best_scores[at] = best_scores[at - 1];
                        best[at] = best[at - 1];
                        at -= 1;
                    }
                    best_scores[at] = s;
                    best[at] = c as u32;
                }
            });
    }
    out
}

/// The `count` best centroids of every row under `metric` with the fused CPU kernel
/// (`topk`): largest `x · c` for cosine, largest `x · c − ‖c‖² / 2` (nearest) for L2.
fn nearest_on_cpu(
    features: &[f32],
    dim: usize,
    centroids: &[f32],
    count: usize,
    metric: Metric,
) -> Vec<u32> {
    let n = features.len() / dim;
    let k = centroids.len() / dim;
    let mut keys = PackedKeys::pack_range(centroids, dim, 0, k);
    if metric == Metric::L2 {
        let bias: Vec<f32> = centroids
            .chunks_exact(dim)
            .map(|c| -0.5 * c.iter().map(|v| v * v).sum::<f32>())
            .collect();
        keys = keys.with_bias(&bias);
    }
    let rows: Vec<u32> = (0..n as u32).collect();
    let mut best = vec![u32::MAX; n * count];
    let mut scores = vec![f32::NEG_INFINITY; n * count];
    topk::merge_best(features, &rows, false, &keys, count, &mut best, &mut scores);
    // Only a row of NaNs scores nothing; it joins the first centroid.
    best.iter_mut()
        .filter(|b| **b == u32::MAX)
        .for_each(|b| *b = 0);
    best
}

/// Row indices grouped by cluster: `(offsets, rows)` with cluster `c`'s rows, ascending, at
/// `rows[offsets[c]..offsets[c + 1]]`.
pub(crate) fn members(assignment: &[u32], k: usize) -> (Vec<usize>, Vec<u32>) {
    let mut offsets = vec![0_usize; k + 1];
    for &c in assignment {
        offsets[c as usize + 1] += 1;
    }
    for c in 0..k {
        offsets[c + 1] += offsets[c];
    }
    let mut cursor = offsets.clone();
    let mut rows = vec![0_u32; assignment.len()];
    for (row, &c) in assignment.iter().enumerate() {
        rows[cursor[c as usize]] = row as u32;
        cursor[c as usize] += 1;
    }
    (offsets, rows)
}

/// Sums the rows `rows` of `features` into `sum` (in `f64`, in row order).
fn sum_rows(features: &[f32], dim: usize, rows: &[u32], sum: &mut [f64]) {
    sum.fill(0.0);
    for &r in rows {
        let row = &features[r as usize * dim..(r as usize + 1) * dim];
        sum.iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += f64::from(v));
    }
}

/// Lloyd's update: every non-empty cluster's centroid moves to its rows' mean (scaled to
/// unit length for [`Metric::Cosine`]); an empty cluster keeps its place.
fn update_means(
    features: &[f32],
    dim: usize,
    assignment: &[u32],
    metric: Metric,
    centroids: &mut [f32],
) {
    let k = centroids.len() / dim;
    let (offsets, rows) = members(assignment, k);
    centroids.par_chunks_mut(dim).enumerate().for_each_init(
        || vec![0.0_f64; dim],
        |sum, (c, centroid)| {
            let rows = &rows[offsets[c]..offsets[c + 1]];
            if rows.is_empty() {
                return;
            }
            sum_rows(features, dim, rows, sum);
            let count = rows.len() as f64;
            centroid
                .iter_mut()
                .zip(sum.iter())
                .for_each(|(v, s)| *v = (s / count) as f32);
            if metric == Metric::Cosine {
                normalise(centroid);
            }
        },
    );
}

/// Fits `k` clusters to the rows of `features` (`n × dim`) with `iterations` Lloyd steps
/// (fewer when the assignment stops changing), squared distance: [`fit_with`] with
/// [`Metric::L2`] and no mini-batches.
#[must_use]
pub fn fit(
    features: &[f32],
    dim: usize,
    k: usize,
    iterations: usize,
    seed_value: u64,
    device: &Device,
) -> KMeans {
    let params = Params {
        k,
        iterations,
        seed: seed_value,
        metric: Metric::L2,
        batch: None,
        sample: None,
    };
    fit_with(features, dim, &params, device)
}

/// Fits `params.k` clusters to the rows of `features` (`n × dim`; unit rows for
/// [`Metric::Cosine`]) from a k-means++ start: full Lloyd iterations, or mini-batch steps
/// and one final full assignment when `params.batch` is smaller than `n`.
#[must_use]
pub fn fit_with(features: &[f32], dim: usize, params: &Params, device: &Device) -> KMeans {
    let n = features.len() / dim.max(1);
    let k = params.k.clamp(1, n.max(1));
    if n == 0 || dim == 0 {
        return KMeans {
            k,
            dim,
            centroids: vec![0.0; k * dim],
            assignment: vec![0; n],
        };
    }
    let mut rng = Rng::new(params.seed, 0);
    let mut centroids = seed(features, dim, k, &mut rng);
    let assignment = match params.batch {
        Some(batch) if batch > 0 && batch < n => {
            mini_batch(
                features,
                dim,
                params,
                batch,
                &mut rng,
                &mut centroids,
                device,
            );
            assign_with(features, dim, &centroids, params.metric, device)
        }
        _ => match params.sample {
            Some(sample) if sample > 0 && sample < n => {
                let rows = evenly_spaced(features, dim, sample);
                lloyd(&rows, dim, params, &mut centroids, device);
                assign_with(features, dim, &centroids, params.metric, device)
            }
            _ => lloyd(features, dim, params, &mut centroids, device),
        },
    };
    KMeans {
        k,
        dim,
        centroids,
        assignment,
    }
}

/// `count` of the `n × dim` rows, evenly spaced (row `i · n / count`), copied.
fn evenly_spaced(features: &[f32], dim: usize, count: usize) -> Vec<f32> {
    let n = features.len() / dim;
    let mut out = vec![0.0_f32; count * dim];
    out.par_chunks_mut(dim).enumerate().for_each(|(i, out)| {
        let row = i * n / count;
        out.copy_from_slice(&features[row * dim..(row + 1) * dim]);
    });
    out
}

/// Full Lloyd iterations; returns the assignment to the final centroids.
fn lloyd(
    features: &[f32],
    dim: usize,
    params: &Params,
    centroids: &mut [f32],
    device: &Device,
) -> Vec<u32> {
    let mut assignment = assign_with(features, dim, centroids, params.metric, device);
    for _ in 0..params.iterations {
        update_means(features, dim, &assignment, params.metric, centroids);
        let next = assign_with(features, dim, centroids, params.metric, device);
        let changed = next.iter().zip(&assignment).filter(|(a, b)| a != b).count();
        assignment = next;
        if changed == 0 {
            break;
        }
    }
    assignment
}

/// Mini-batch k-means (Sculley 2010): each step draws `batch` rows (with replacement),
/// assigns them, and moves every centroid towards its batch rows with the learning rate
/// `1 / (rows it has seen)`, i.e. `c ← c + (Σx − m·c) / count`.
fn mini_batch(
    features: &[f32],
    dim: usize,
    params: &Params,
    batch: usize,
    rng: &mut Rng,
    centroids: &mut [f32],
    device: &Device,
) {
    let n = features.len() / dim;
    let k = centroids.len() / dim;
    let mut seen = vec![0_u64; k];
    let mut rows = vec![0.0_f32; batch * dim];
    for _ in 0..params.iterations {
        let picks: Vec<usize> = (0..batch).map(|_| rng.below(n)).collect();
        rows.par_chunks_mut(dim)
            .zip(&picks)
            .for_each(|(out, &r)| out.copy_from_slice(&features[r * dim..(r + 1) * dim]));
        let labels = assign_with(&rows, dim, centroids, params.metric, device);
        let (offsets, members) = members(&labels, k);
        centroids
            .par_chunks_mut(dim)
            .zip(seen.par_iter_mut())
            .enumerate()
            .for_each_init(
                || vec![0.0_f64; dim],
                |sum, (c, (centroid, seen))| {
                    let members = &members[offsets[c]..offsets[c + 1]];
                    if members.is_empty() {
                        return;
                    }
                    sum_rows(&rows, dim, members, sum);
                    let m = members.len() as f64;
                    *seen += members.len() as u64;
                    let count = *seen as f64;
                    centroid.iter_mut().zip(sum.iter()).for_each(|(v, s)| {
                        *v += ((s - m * f64::from(*v)) / count) as f32;
                    });
                    if params.metric == Metric::Cosine {
                        normalise(centroid);
                    }
                },
            );
    }
}

/// Sum of squared distances of the rows of `features` (`n × dim`) to their assigned
/// centroids: the k-means objective, for comparing clusterings of the same rows.
#[must_use]
pub fn inertia(features: &[f32], dim: usize, km: &KMeans) -> f64 {
    if dim == 0 {
        return 0.0;
    }
    let blocks: Vec<f64> = features
        .par_chunks(SUM_BLOCK * dim)
        .zip(km.assignment.par_chunks(SUM_BLOCK))
        .map(|(rows, labels)| {
            rows.chunks_exact(dim)
                .zip(labels)
                .map(|(row, &c)| {
                    let c = c as usize;
                    f64::from(squared_distance(row, &km.centroids[c * dim..(c + 1) * dim]))
                })
                .sum::<f64>()
        })
        .collect();
    blocks.iter().sum()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` unit rows of width `dim` around `clusters` random unit centres, with uneven
    /// cluster sizes and anisotropic Gaussian noise of norm about `spread` (0.8–1.3 times
    /// it). At `spread` 2 in 64 dimensions a row's nearest neighbour has cosine ≈ 0.7 and
    /// neighbourhoods cross cluster boundaries, as in real embeddings.
    pub(crate) fn clustered_unit_rows(
        n: usize,
        dim: usize,
        clusters: usize,
        spread: f32,
        seed: u64,
    ) -> Vec<f32> {
        let mut rng = Rng::new(seed, 0);
        let mut centres = vec![0.0_f32; clusters * dim];
        centres.iter_mut().for_each(|v| *v = rng.gauss());
        centres.chunks_exact_mut(dim).for_each(normalise);
        let mut scales = vec![0.0_f32; clusters * dim];
        scales
            .iter_mut()
            .for_each(|v| *v = (0.8 * rng.gauss()).exp());
        let spreads: Vec<f32> = (0..clusters)
            .map(|_| spread * rng.range(0.8, 1.3))
            .collect();
        scales
            .chunks_exact_mut(dim)
            .zip(&spreads)
            .for_each(|(s, &spread)| {
                let norm = s.iter().map(|v| v * v).sum::<f32>().sqrt();
                s.iter_mut().for_each(|v| *v *= spread / norm);
            });
        let weights: Vec<f64> = (0..clusters).map(|_| 0.3 + rng.unit_f64()).collect();
        let total: f64 = weights.iter().sum();
        let mut rows = vec![0.0_f32; n * dim];
        rows.par_chunks_mut(dim).enumerate().for_each(|(i, row)| {
            let mut rng = Rng::new(seed, i as u64 + 1);
            let mut target = rng.unit_f64() * total;
            let c = weights
                .iter()
                .position(|&w| {
                    target -= w;
                    target <= 0.0
                })
                .unwrap_or(clusters - 1);
            let centre = &centres[c * dim..(c + 1) * dim];
            let scale = &scales[c * dim..(c + 1) * dim];
            for ((v, &m), &s) in row.iter_mut().zip(centre).zip(scale) {
                *v = m + s * rng.gauss();
            }
            normalise(row);
        });
        rows
    }

    fn blobs() -> Vec<f32> {
        // Three blobs in 2-D, 50 points each.
        let mut rng = Rng::new(3, 0);
        let centres = [[0.0_f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut features = Vec::new();
        for i in 0..150 {
            let c = centres[i % 3];
            features.push(c[0] + rng.unit() - 0.5);
            features.push(c[1] + rng.unit() - 0.5);
        }
        features
    }

    /// Whether the rows `i ≡ blob (mod blobs)` share one cluster and the blobs have distinct
    /// clusters.
    fn recovers_blobs(assignment: &[u32], blobs: usize) -> bool {
        let same = (0..blobs).all(|b| {
            (b..assignment.len())
                .step_by(blobs)
                .all(|i| assignment[i] == assignment[b])
        });
        let mut ids: Vec<u32> = assignment[..blobs].to_vec();
        ids.sort_unstable();
        ids.dedup();
        same && ids.len() == blobs
    }

    #[test]
    fn separates_well_apart_blobs() {
        let features = blobs();
        let fitted = fit(&features, 2, 3, 20, 7, &Device::flex());
        assert!(recovers_blobs(&fitted.assignment, 3));
        assert_eq!(fitted, fit(&features, 2, 3, 20, 7, &Device::flex()));
        // Centroids are the blob centres, and the inertia is the blobs' own spread
        // (uniform noise in a unit square: 1/6 per point).
        let mut centres: Vec<(i32, i32)> = fitted
            .centroids
            .chunks_exact(2)
            .map(|c| (c[0].round() as i32, c[1].round() as i32))
            .collect();
        centres.sort_unstable();
        assert_eq!(centres, [(0, 0), (0, 10), (10, 0)]);
        let per_point = inertia(&features, 2, &fitted) / 150.0;
        assert!((per_point - 1.0 / 6.0).abs() < 0.05, "{per_point}");
    }

    #[test]
    fn mini_batch_separates_blobs_too() {
        let features = blobs();
        let params = Params {
            k: 3,
            iterations: 30,
            seed: 7,
            metric: Metric::L2,
            batch: Some(32),
            sample: None,
        };
        let fitted = fit_with(&features, 2, &params, &Device::flex());
        assert!(recovers_blobs(&fitted.assignment, 3));
        assert_eq!(fitted, fit_with(&features, 2, &params, &Device::flex()));
    }

    #[test]
    fn spherical_centroids_are_the_unit_blob_directions() {
        // Unit rows scattered around four directions in 3-D.
        let directions = [
            [1.0_f32, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [-0.6, -0.6, -0.52],
        ];
        let mut rng = Rng::new(11, 0);
        let mut features = Vec::new();
        for i in 0..200 {
            let mut row = directions[i % 4].map(|v| v + 0.1 * rng.gauss());
            normalise(&mut row);
            features.extend_from_slice(&row);
        }
        let params = Params {
            metric: Metric::Cosine,
            ..Params::new(200, 4)
        };
        let device = Device::flex();
        let fitted = fit_with(&features, 3, &params, &device);
        assert!(recovers_blobs(&fitted.assignment, 4));
        for (blob, direction) in directions.iter().enumerate() {
            let c = fitted.assignment[blob] as usize;
            let centroid = &fitted.centroids[c * 3..c * 3 + 3];
            let norm = centroid.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
            let length = direction.iter().map(|v| v * v).sum::<f32>().sqrt();
            let cos: f32 = centroid
                .iter()
                .zip(direction)
                .map(|(a, b)| a * b)
                .sum::<f32>()
                / length;
            assert!(cos > 0.99, "{cos}");
        }
        assert_eq!(
            assign_with(&features, 3, &fitted.centroids, Metric::Cosine, &device),
            fitted.assignment
        );
    }

    #[test]
    fn mini_batch_inertia_is_close_to_lloyd() {
        // 40 anisotropic clusters fitted with 100 centroids: many near-equal optima, the
        // case where noisy updates cost the most.
        let (n, dim, k) = (40_000, 32, 100);
        let features = clustered_unit_rows(n, dim, 40, 1.0, 5);
        let device = Device::flex();
        let full = fit_with(&features, dim, &Params::lloyd(k), &device);
        let params = Params::mini_batch(n, k);
        assert_eq!((params.batch, params.iterations), (Some(1_250), 32));
        let mini = fit_with(&features, dim, &params, &device);
        let ratio = inertia(&features, dim, &mini) / inertia(&features, dim, &full);
        println!("mini-batch inertia / Lloyd inertia = {ratio:.4}");
        assert!(ratio < 1.03, "{ratio}");
        assert_eq!(mini, fit_with(&features, dim, &params, &device));
        // Lloyd on 256 rows per cluster (25,600 of the 40,000), then one full assignment.
        let params = Params::new(n, k);
        assert_eq!(params.sample, Some(25_600));
        let sampled = fit_with(&features, dim, &params, &device);
        let ratio = inertia(&features, dim, &sampled) / inertia(&features, dim, &full);
        println!("sampled Lloyd inertia / Lloyd inertia = {ratio:.4}");
        assert!(ratio < 1.02, "{ratio}");
        assert_eq!(
            sampled.assignment,
            assign_with(&features, dim, &sampled.centroids, Metric::L2, &device)
        );
    }

    #[test]
    fn params_choose_mini_batches_for_large_inputs() {
        assert_eq!(Params::new(10_000, 10).batch, None);
        let large = Params::new(10_000_000, 10_000);
        let batch = large.batch.expect("mini-batch above the limit");
        assert!(batch >= 10_000 && large.iterations * batch <= 10_000_000);
    }

    #[test]
    fn nearest_centroids_are_ordered() {
        let centroids = [0.0_f32, 0.0, 1.0, 0.0, 3.0, 0.0, 6.0, 0.0];
        let rows = [2.9_f32, 0.0, 0.1, 0.0];
        let probes = nearest_centroids(&rows, 2, &centroids, 3, &Device::flex());
        assert_eq!(probes, [2, 1, 0, 0, 1, 2]);
    }
}
