//! UMAP layout for the 2-D map (Uniform Manifold Approximation and Projection, 2018),
//! following umap-learn 0.5 step by step: a fuzzy simplicial set from the shared k-NN graph,
//! the curve parameters `a`, `b` fitted to `min_dist` and `spread`, then stochastic gradient
//! descent with negative sampling on umap-learn's per-edge schedule.
//!
//! umap-learn moves points one sample at a time ("Hogwild"), which is neither data-parallel
//! nor reproducible across threads. Here every epoch is one synchronous batch: all samples
//! active in the epoch read the previous epoch's positions, and their clipped gradients are
//! summed per point and applied together. On a compute device that is a `select` of the
//! edges' endpoints, elementwise gradients and one scatter-add into the positions; the sum
//! is taken in fixed point, so it does not depend on the order in which a GPU's atomics land.
//! On `flex` (the CPU) the same epoch runs as one fused rayon pass over the points instead:
//! eager CPU tensor ops materialise a dozen arrays of every sample per epoch, and were five
//! times slower (100 000 points on 2 cores: 27 s against 5.5 CPU-seconds, same layout
//! quality). Both engines draw the same samples; the ignored test `scale::layout_at_scale`
//! measures them.

// `pulp` compiles a dispatched operation for the CPU's SIMD level; only code inlined into
// it gets those instructions, hence `#[inline(always)]` down to the innermost helpers.
#![allow(clippy::inline_always)]

use std::ops::Range;

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use crate::analysis::knn::Neighbours;
use crate::progress::{Progress, ProgressEvent, Stage};
use crate::rng::SplitMix64;

/// UMAP settings (umap-learn's defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// umap-learn's `n_neighbors`, which counts the point itself: the fuzzy graph takes the
    /// first `n_neighbors − 1` of the shared graph (which does not list a point as its own
    /// neighbour), with umap-learn's `log2(n_neighbors)` bandwidth target.
    pub n_neighbors: usize,
    /// The smallest distance between points in the layout (umap-learn's `min_dist`).
    pub min_dist: f32,
    /// The scale of the layout's distances (umap-learn's `spread`).
    pub spread: f32,
    /// Optimisation epochs; `None` picks umap-learn's 500 up to 10 000 points, else 200.
    pub n_epochs: Option<usize>,
    /// The initial step, decaying linearly to 0 over the epochs.
    pub learning_rate: f32,
    /// Random "negative" points pushed away per positive sample.
    pub negative_sample_rate: usize,
    /// Seed of the initial jitter and the negative samples: same seed, same layout.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            n_neighbors: 15,
            min_dist: 0.1,
            spread: 1.0,
            n_epochs: None,
            learning_rate: 1.0,
            negative_sample_rate: 5,
            seed: 42,
        }
    }
}

impl Params {
    /// The number of epochs for `n` points (umap-learn's rule when [`Self::n_epochs`] is unset).
    #[must_use]
    pub fn epochs_for(&self, n: usize) -> usize {
        self.n_epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 })
    }
}

/// umap-learn's `SMOOTH_K_TOLERANCE`.
const SMOOTH_K_TOLERANCE: f64 = 1e-5;
/// umap-learn's `MIN_K_DIST_SCALE`.
const MIN_K_DIST_SCALE: f64 = 1e-3;
/// The per-coordinate clip of one sample's gradient (umap-learn's `clip`).
const CLIP: f32 = 4.0;
/// Repulsion weight (umap-learn's `repulsion_strength`, default 1).
const GAMMA: f32 = 1.0;
/// The initial layout's box (umap-learn rescales every initialisation to `[0, 10]`).
const INIT_BOX: f32 = 10.0;
/// Standard deviation of the seeded jitter added to the initial layout.
const INIT_NOISE: f32 = 1e-4;
/// Fixed-point scale of the device's gradient sums: a step of `1 / 4096` layout units per
/// sample, and no `i32` overflow below 131 072 samples on one point in one epoch.
const FIXED_POINT: f32 = 4096.0;
/// Points per parallel work item in an epoch.
const CHUNK: usize = 2048;
/// Epochs between two progress events.
const PROGRESS_EVERY: usize = 5;
/// Stream of the initial jitter in the seed's generator (negative samples use streams
/// `epoch << 32 | point`, which never collide with it for fewer than 2³² points).
const INIT_STREAM: u64 = u64::MAX;

/// The UMAP layout of the points of `neighbours` (rows of the shared k-NN graph, cosine
/// similarities), starting from `init` (one position per point, e.g. the PCA layout), centred
/// on the origin.
///
/// The epochs run on `device` (`flex`: a fused rayon pass per epoch; other devices index
/// points as `i32`, up to 2³¹ of them). Progress is reported
/// as [`Stage::Layout`] in epochs; on cancellation the current positions come back. Points
/// without neighbours keep their initial place; graph rows beyond `init.len()` and
/// neighbours outside it are ignored. The output has `init.len()` finite positions.
#[must_use]
pub fn layout(
    neighbours: &Neighbours,
    init: &[[f32; 2]],
    params: &Params,
    device: &Device,
    progress: &Progress,
) -> Vec<[f32; 2]> {
    let engine = if *device == Device::flex() {
        Engine::Cpu
    } else {
        Engine::Tensor
    };
    layout_with(neighbours, init, params, device, progress, engine)
}

/// Where the epochs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// Batched tensor ops on the device.
    Tensor,
    /// One fused rayon pass per epoch on the CPU.
    Cpu,
}

fn layout_with(
    neighbours: &Neighbours,
    init: &[[f32; 2]],
    params: &Params,
    device: &Device,
    progress: &Progress,
    engine: Engine,
) -> Vec<[f32; 2]> {
    let n = init.len();
    let n_epochs = params.epochs_for(n);
    progress.send(ProgressEvent::Started {
        stage: Stage::Layout,
        total: n_epochs as u64,
    });
    let mut positions = initial_positions(init, params.seed);
    if n >= 2 && n_epochs > 0 && !progress.is_cancelled() {
        // umap-learn drops the edges too weak to be sampled once in the run (judged against
        // its default epochs when a run is very short).
        let pruning_epochs = if n_epochs > 10 {
            n_epochs
        } else {
            Params::default().epochs_for(n)
        };
        let graph = fuzzy_graph(neighbours, n, params.n_neighbors, pruning_epochs, n_epochs);
        let mut run = Optimiser::new(&graph, params, n_epochs);
        positions = match engine {
            Engine::Cpu => run.cpu(positions, progress),
            Engine::Tensor => run.tensor(&positions, device, progress),
        };
    }
    progress.send(ProgressEvent::Finished {
        stage: Stage::Layout,
    });
    centred(positions)
}

/// umap-learn's low-dimensional similarity curve `1 / (1 + a d^(2b))`.
#[derive(Clone, Copy, Debug)]
struct Curve {
    a: f32,
    b: f32,
}

impl Curve {
    /// The attractive gradient coefficient at squared distance `d2`, doubled: umap-learn
    /// moves both ends of a sampled edge, and each undirected edge is sampled from both ends.
    /// 0 for coincident points. Branch-free, so that lanes of samples vectorise.
    #[inline(always)]
    fn attraction(self, d2: f32) -> f32 {
        let safe = d2.max(f32::MIN_POSITIVE);
        let p = fast_pow(safe, self.b);
        let c = -4.0 * self.a * self.b * p / (safe * (self.a * p + 1.0));
        if d2 > 0.0 { c } else { 0.0 }
    }

    /// The repulsive gradient coefficient at squared distance `d2` (0 for coincident points,
    /// the point itself among them).
    #[inline(always)]
    fn repulsion(self, d2: f32) -> f32 {
        let c = 2.0 * GAMMA * self.b / ((0.001 + d2) * (self.a * fast_pow(d2, self.b) + 1.0));
        if d2 > 0.0 { c } else { 0.0 }
    }
}

/// Samples per block of the CPU kernel: gathered first, then computed lane by lane.
const LANES: usize = 16;

/// The sum of the clipped gradients `coeff(d²) · (here − there)` of the samples `others`.
/// Lanes past the end of `others` sit at distance 0 and add nothing.
#[inline(always)]
fn gradient_sum(
    here: [f32; 2],
    others: &[u32],
    positions: &[[f32; 2]],
    coeff: impl Fn(f32) -> f32,
) -> [f32; 2] {
    let (mut gx, mut gy) = ([0.0_f32; LANES], [0.0_f32; LANES]);
    for block in others.chunks(LANES) {
        let (mut dx, mut dy) = ([0.0_f32; LANES], [0.0_f32; LANES]);
        for (l, &other) in block.iter().enumerate() {
            let there = positions[other as usize];
            dx[l] = here[0] - there[0];
            dy[l] = here[1] - there[1];
        }
        for l in 0..LANES {
            let c = coeff(dx[l] * dx[l] + dy[l] * dy[l]);
            gx[l] += (c * dx[l]).clamp(-CLIP, CLIP);
            gy[l] += (c * dy[l]).clamp(-CLIP, CLIP);
        }
    }
    [gx.iter().sum(), gy.iter().sum()]
}

/// `x^y` for `x > 0` as `2^(y · log₂ x)` with polynomial `log₂` and `exp₂` (relative error
/// about 1e-6 where `powf` is exact to the last bit): the epochs evaluate it once per sample,
/// and libm's `powf` was a quarter of their time.
#[inline(always)]
fn fast_pow(x: f32, y: f32) -> f32 {
    exp2_fast(y * log2_fast(x))
}

/// `log₂ x` for positive `x` (subnormals count as the smallest normal).
#[inline(always)]
fn log2_fast(x: f32) -> f32 {
    const SQRT_HALF: u32 = 0x3f35_04f3;
    let bits = x.max(f32::MIN_POSITIVE).to_bits();
    // x = 2^e · m with m in [√½, √2).
    let shifted = bits.wrapping_sub(SQRT_HALF);
    let exponent = (shifted as i32 >> 23) as f32;
    let m = f32::from_bits((shifted & 0x007f_ffff).wrapping_add(SQRT_HALF));
    // ln m = 2 atanh(s), s = (m − 1) / (m + 1) in (−0.172, 0.172).
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
    exponent + 2.0 * std::f32::consts::LOG2_E * s * series
}

/// `2^y`, clamped to the normal range.
#[inline(always)]
fn exp2_fast(y: f32) -> f32 {
    // Adding 2²³ puts an integer in the low mantissa bits: `whole + 127` becomes the
    // exponent field after the shift.
    const MAGIC: f32 = 8_388_608.0 + 127.0;
    let y = y.clamp(-126.0, 127.0);
    let whole = y.round();
    let f = (y - whole) * std::f32::consts::LN_2;
    // e^f for f in [−0.347, 0.347]: Taylor to degree 6.
    let poly = 1.0
        + f * (1.0
            + f * (1.0 / 2.0
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    poly * f32::from_bits((whole + MAGIC).to_bits() << 23)
}

/// Symmetric fuzzy graph as CSR: both directions of every kept edge.
#[derive(Debug, Default)]
struct Graph {
    /// Start of each point's entries in `tails` (`n + 1` values).
    offsets: Vec<usize>,
    /// The other end of each entry.
    tails: Vec<u32>,
    /// Epochs between two samples of each entry (umap-learn's `epochs_per_sample`).
    epochs_per_sample: Vec<f32>,
}

impl Graph {
    fn entries(&self, point: usize) -> Range<usize> {
        self.offsets[point]..self.offsets[point + 1]
    }
}

/// umap-learn's sampling clock of one entry.
#[derive(Clone, Copy, Debug)]
struct EdgeState {
    /// `epoch_of_next_sample`.
    next_sample: f32,
    /// `epoch_of_next_negative_sample`.
    next_negative: f32,
}

/// The membership strengths of one point's neighbours at `distances`, by
/// umap-learn's `smooth_knn_dist` (local connectivity 1, bandwidth 1) and
/// `compute_membership_strengths`.
fn memberships(distances: &[f32], target: f64, mean_distance: f64) -> Vec<f32> {
    let rho = distances
        .iter()
        .copied()
        .filter(|&d| d > 0.0)
        .fold(f32::INFINITY, f32::min);
    let rho = if rho.is_finite() { f64::from(rho) } else { 0.0 };
    let (mut lo, mut hi, mut mid) = (0.0_f64, f64::INFINITY, 1.0_f64);
    for _ in 0..64 {
        let psum: f64 = distances
            .iter()
            .map(|&d| {
                let d = f64::from(d) - rho;
                if d > 0.0 { (-d / mid).exp() } else { 1.0 }
            })
            .sum();
        if (psum - target).abs() < SMOOTH_K_TOLERANCE {
            break;
        }
        if psum > target {
            hi = mid;
            mid = f64::midpoint(lo, hi);
        } else {
            lo = mid;
            mid = if hi.is_infinite() {
                mid * 2.0
            } else {
                f64::midpoint(lo, hi)
            };
        }
    }
    let mut sigma = mid;
    let floor = if rho > 0.0 {
        let mean = distances.iter().map(|&d| f64::from(d)).sum::<f64>() / distances.len() as f64;
        MIN_K_DIST_SCALE * mean
    } else {
        MIN_K_DIST_SCALE * mean_distance
    };
    sigma = sigma.max(floor);
    distances
        .iter()
        .map(|&d| {
            let d = f64::from(d) - rho;
            if d <= 0.0 || sigma == 0.0 {
                1.0
            } else {
                (-d / sigma).exp() as f32
            }
        })
        .collect()
}

/// The fuzzy union `a + b − ab` of the membership graph and its transpose, with the edges
/// weaker than `1 / pruning_epochs` of the strongest dropped, and umap-learn's
/// `epochs_per_sample` for a run of `n_epochs`.
fn fuzzy_graph(
    neighbours: &Neighbours,
    n: usize,
    n_neighbors: usize,
    pruning_epochs: usize,
    n_epochs: usize,
) -> Graph {
    let k = n_neighbors.saturating_sub(1).max(1).min(neighbours.k);
    let rows = neighbours.len().min(n);
    let row_neighbours = |row: usize| {
        neighbours
            .of(row)
            .take(k)
            .filter(move |&(j, _)| (j as usize) < n && j as usize != row)
            .map(|(j, sim)| (j, (1.0 - sim).max(0.0)))
            .filter(|&(_, d)| d.is_finite())
    };
    let (sum, count) = (0..rows)
        .into_par_iter()
        .map(|row| {
            row_neighbours(row).fold((0.0_f64, 0_usize), |(s, c), (_, d)| {
                (s + f64::from(d), c + 1)
            })
        })
        .reduce(|| (0.0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
    let mean_distance = if count == 0 { 0.0 } else { sum / count as f64 };
    let target = (n_neighbors.max(2) as f64).log2();

    // The directed memberships as CSR, each row sorted by neighbour.
    let directed: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|row| {
            if row >= rows {
                return Vec::new();
            }
            let mut list: Vec<(u32, f32)> = row_neighbours(row).collect();
            let distances: Vec<f32> = list.iter().map(|&(_, d)| d).collect();
            if distances.is_empty() {
                return list;
            }
            for (entry, w) in list
                .iter_mut()
                .zip(memberships(&distances, target, mean_distance))
            {
                entry.1 = w;
            }
            list.sort_unstable_by_key(|&(j, _)| j);
            // A neighbour listed twice keeps its stronger membership.
            list.dedup_by(|later, kept| {
                if later.0 == kept.0 {
                    kept.1 = kept.1.max(later.1);
                    true
                } else {
                    false
                }
            });
            list
        })
        .collect();
    // The transpose by counting sort: rows come out sorted by column.
    let mut t_offsets = vec![0_usize; n + 1];
    for list in &directed {
        for &(j, _) in list {
            t_offsets[j as usize + 1] += 1;
        }
    }
    for i in 0..n {
        t_offsets[i + 1] += t_offsets[i];
    }
    let mut fill = t_offsets.clone();
    let mut t_entries = vec![(0_u32, 0.0_f32); t_offsets[n]];
    for (i, list) in directed.iter().enumerate() {
        for &(j, w) in list {
            t_entries[fill[j as usize]] = (i as u32, w);
            fill[j as usize] += 1;
        }
    }
    drop(fill);
    // Merge every row with its transpose row: w = a + b − ab (exactly symmetric).
    let merged: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (x, y) = (&directed[i], &t_entries[t_offsets[i]..t_offsets[i + 1]]);
            let mut out = Vec::with_capacity(x.len() + y.len());
            let (mut p, mut q) = (0, 0);
            while p < x.len() || q < y.len() {
                let take_x = q == y.len() || (p < x.len() && x[p].0 <= y[q].0);
                let take_y = p == x.len() || (q < y.len() && y[q].0 <= x[p].0);
                let a = if take_x { x[p].1 } else { 0.0 };
                let b = if take_y { y[q].1 } else { 0.0 };
                let j = if take_x { x[p].0 } else { y[q].0 };
                out.push((j, a + b - a * b));
                p += usize::from(take_x);
                q += usize::from(take_y);
            }
            out
        })
        .collect();
    drop(directed);
    drop(t_entries);
    let w_max = merged
        .par_iter()
        .flat_map_iter(|row| row.iter().map(|e| e.1))
        .reduce(|| 0.0, f32::max);
    let mut graph = Graph {
        offsets: Vec::with_capacity(n + 1),
        ..Graph::default()
    };
    graph.offsets.push(0);
    if w_max <= 0.0 {
        graph.offsets.resize(n + 1, 0);
        return graph;
    }
    let threshold = w_max / pruning_epochs as f32;
    for row in merged {
        for (j, w) in row {
            if w >= threshold && w > 0.0 {
                graph.tails.push(j);
                // umap-learn: n_epochs / (n_epochs · w / w_max).
                let samples = n_epochs as f64 * (f64::from(w) / f64::from(w_max));
                graph
                    .epochs_per_sample
                    .push((n_epochs as f64 / samples) as f32);
            }
        }
        graph.offsets.push(graph.tails.len());
    }
    graph
}

/// Least-squares fit of `1 / (1 + a x^(2b))` to umap-learn's target curve (1 below
/// `min_dist`, `exp(−(x − min_dist) / spread)` above) on 300 points of `[0, 3·spread]`, by
/// Levenberg–Marquardt from `(1, 1)` like umap-learn's `find_ab_params` (scipy `curve_fit`).
#[must_use]
fn find_ab_params(spread: f32, min_dist: f32) -> (f32, f32) {
    let (spread, min_dist) = (f64::from(spread.max(1e-6)), f64::from(min_dist.max(0.0)));
    let xs: Vec<f64> = (0..300).map(|i| spread * 3.0 * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let r = 1.0 / (1.0 + a * x.powf(2.0 * b)) - y;
                r * r
            })
            .sum()
    };
    let (mut a, mut b, mut lambda) = (1.0_f64, 1.0_f64, 1e-3_f64);
    let mut current = cost(a, b);
    for _ in 0..200 {
        // Normal equations J'J δ = −J'r of the residuals r = f − y.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x <= 0.0 {
                continue;
            }
            let p = x.powf(2.0 * b);
            let f = 1.0 / (1.0 + a * p);
            let r = f - y;
            let da = -p * f * f;
            let db = -a * p * 2.0 * x.ln() * f * f;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (maa, mbb) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = maa * mbb - jab * jab;
            if det.abs() < 1e-300 {
                break;
            }
            let step_a = -(mbb * ga - jab * gb) / det;
            let step_b = -(maa * gb - jab * ga) / det;
            let (na, nb) = (a + step_a, b + step_b);
            let next = cost(na, nb);
            if na > 0.0 && nb > 0.0 && next.is_finite() && next <= current {
                let small = (step_a.abs() < 1e-12 * a.abs().max(1e-12))
                    && (step_b.abs() < 1e-12 * b.abs().max(1e-12));
                (a, b, current) = (na, nb, next);
                lambda = (lambda / 10.0).max(1e-12);
                improved = !small;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a as f32, b as f32)
}

/// umap-learn's start: every axis rescaled to `[0, 10]`, plus a tiny seeded jitter so that
/// coincident points can separate. Non-finite inputs count as 0; a flat axis sits at 5.
fn initial_positions(init: &[[f32; 2]], seed: u64) -> Vec<[f32; 2]> {
    let clean = |v: f32| if v.is_finite() { v } else { 0.0 };
    let mut lo = [f32::INFINITY; 2];
    let mut hi = [f32::NEG_INFINITY; 2];
    for p in init {
        for d in 0..2 {
            lo[d] = lo[d].min(clean(p[d]));
            hi[d] = hi[d].max(clean(p[d]));
        }
    }
    let mut rng = SplitMix64::new(seed, INIT_STREAM);
    init.iter()
        .map(|p| {
            let mut out = [0.0; 2];
            for d in 0..2 {
                let span = hi[d] - lo[d];
                let unit = if span > 0.0 && span.is_finite() {
                    (clean(p[d]) - lo[d]) / span
                } else {
                    0.5
                };
                out[d] = INIT_BOX * unit + INIT_NOISE * rng.gauss();
            }
            out
        })
        .collect()
}

/// The positions moved so that their mean is the origin; non-finite ones (there should be
/// none) land on it.
fn centred(mut positions: Vec<[f32; 2]>) -> Vec<[f32; 2]> {
    let mut sum = [0.0_f64; 2];
    let mut count = 0_usize;
    for p in &positions {
        if p[0].is_finite() && p[1].is_finite() {
            sum[0] += f64::from(p[0]);
            sum[1] += f64::from(p[1]);
            count += 1;
        }
    }
    let mean = if count == 0 {
        [0.0; 2]
    } else {
        [
            (sum[0] / count as f64) as f32,
            (sum[1] / count as f64) as f32,
        ]
    };
    for p in &mut positions {
        *p = if p[0].is_finite() && p[1].is_finite() {
            [p[0] - mean[0], p[1] - mean[1]]
        } else {
            [0.0; 2]
        };
    }
    positions
}

/// The SGD of one layout.
struct Optimiser<'g> {
    graph: &'g Graph,
    state: Vec<EdgeState>,
    curve: Curve,
    /// The most entries of one point (the size of the sampling buffers).
    max_degree: usize,
    negative_rate: usize,
    seed: u64,
    n_epochs: usize,
    learning_rate: f32,
}

/// One point's samples in one epoch, in buffers reused from point to point.
#[derive(Default)]
struct Samples {
    /// Which of the point's entries are due (scratch).
    due: Vec<u32>,
    /// The other ends of the point's entries that are due (attracted).
    positives: Vec<u32>,
    /// Random points (repelled); the point itself may come up, and then counts for nothing.
    negatives: Vec<u32>,
}

impl Samples {
    fn with_capacity(max_degree: usize) -> Self {
        Self {
            due: vec![0; max_degree],
            positives: vec![0; max_degree],
            negatives: Vec::new(),
        }
    }
}

/// What the samplings of all points in one epoch share.
#[derive(Clone, Copy)]
struct Epoch<'g> {
    graph: &'g Graph,
    number: usize,
    negative_rate: usize,
    seed: u64,
}

impl Epoch<'_> {
    /// umap-learn's sampling of `point`'s entries (clocks in `state`): each entry whose clock
    /// is due gives one positive sample and its due negative samples, drawn from the point's
    /// own stream of the epoch. Branch-free over the entries: which are due is data, not
    /// control. Returns the number of positives (the first ones of `samples.positives`).
    #[inline(always)]
    fn sample_point(self, point: usize, state: &mut [EdgeState], samples: &mut Samples) -> usize {
        let entries = self.graph.entries(point);
        let now = self.number as f32;
        let rate = self.negative_rate as f32;
        let tails = &self.graph.tails[entries.clone()];
        let eps = &self.graph.epochs_per_sample[entries];
        // Which entries are due, without a branch per entry.
        let mut due_count = 0;
        for (i, s) in state.iter().enumerate() {
            samples.due[due_count] = i as u32;
            due_count += usize::from(s.next_sample <= now);
        }
        let mut negatives = 0.0_f32;
        for d in 0..due_count {
            let i = samples.due[d] as usize;
            let s = &mut state[i];
            samples.positives[d] = tails[i];
            s.next_sample += eps[i];
            if self.negative_rate > 0 {
                // umap-learn: int((n − next_negative) / (eps / rate)) negatives.
                let eps_negative = eps[i] / rate;
                let count = ((now - s.next_negative) / eps_negative).max(0.0).floor();
                s.next_negative += count * eps_negative;
                negatives += count;
            }
        }
        samples.negatives.clear();
        if negatives > 0.0 {
            let n = self.graph.offsets.len() as u64 - 1;
            let stream = (self.number as u64) << 32 | point as u64;
            let mut rng = SplitMix64::new(self.seed, stream);
            // Two draws per 64 random bits, each mapped to 0..n by Lemire's multiply-shift
            // (uniform to within n / 2³²).
            let count = negatives as usize;
            samples.negatives.reserve(count);
            for pair in 0..count.div_ceil(2) {
                let bits = rng.next_u64();
                samples.negatives.push((((bits >> 32) * n) >> 32) as u32);
                if 2 * pair + 1 < count {
                    let low = bits & 0xffff_ffff;
                    samples.negatives.push(((low * n) >> 32) as u32);
                }
            }
        }
        due_count
    }
}

/// One chunk of points' samples in one epoch, as a `pulp` operation: its body is compiled
/// for the widest SIMD the CPU has (the crate's baseline is SSE4.2), so the gradient lanes
/// of [`gradient_sum`] vectorise 16 wide on AVX-512.
struct EpochChunk<'a, 'g, St, E> {
    sampler: Epoch<'g>,
    points: Range<usize>,
    state: &'a mut [EdgeState],
    max_degree: usize,
    start: &'a St,
    each: &'a E,
}

impl<A, St, E> WithSimd for EpochChunk<'_, '_, St, E>
where
    St: Fn(usize) -> A,
    E: Fn(&mut A, usize, &[u32], &[u32]),
{
    type Output = A;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> A {
        let graph = self.sampler.graph;
        let base = graph.offsets[self.points.start];
        let mut samples = Samples::with_capacity(self.max_degree);
        let mut acc = (self.start)(self.points.len());
        for point in self.points {
            let entries = graph.entries(point);
            let local = entries.start - base..entries.end - base;
            let due = self
                .sampler
                .sample_point(point, &mut self.state[local], &mut samples);
            (self.each)(
                &mut acc,
                point,
                &samples.positives[..due],
                &samples.negatives,
            );
        }
        acc
    }
}

/// Splits `state` (one entry per graph entry) into the slices of the point chunks.
fn split_state<'s>(
    graph: &Graph,
    mut state: &'s mut [EdgeState],
    chunk: usize,
) -> Vec<&'s mut [EdgeState]> {
    let n = graph.offsets.len() - 1;
    let mut out = Vec::with_capacity(n.div_ceil(chunk));
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let len = graph.offsets[end] - graph.offsets[start];
        let (head, rest) = state.split_at_mut(len);
        out.push(head);
        state = rest;
    }
    out
}

impl<'g> Optimiser<'g> {
    fn new(graph: &'g Graph, params: &Params, n_epochs: usize) -> Self {
        let (a, b) = find_ab_params(params.spread, params.min_dist);
        let rate = params.negative_sample_rate;
        Self {
            graph,
            state: graph
                .epochs_per_sample
                .iter()
                .map(|&eps| EdgeState {
                    next_sample: eps,
                    next_negative: eps / rate.max(1) as f32,
                })
                .collect(),
            curve: Curve { a, b },
            max_degree: graph
                .offsets
                .windows(2)
                .map(|w| w[1] - w[0])
                .max()
                .unwrap_or(0),
            negative_rate: rate,
            seed: params.seed,
            n_epochs,
            learning_rate: params.learning_rate,
        }
    }

    fn alpha(&self, epoch: usize) -> f32 {
        self.learning_rate * (1.0 - epoch as f32 / self.n_epochs as f32)
    }

    fn report(&self, epoch: usize, progress: &Progress) {
        if (epoch + 1).is_multiple_of(PROGRESS_EVERY) || epoch + 1 == self.n_epochs {
            progress.send(ProgressEvent::Advanced {
                stage: Stage::Layout,
                done: epoch as u64 + 1,
            });
        }
    }

    /// Folds every point's samples of `epoch` into one accumulator per chunk of points
    /// (`start(points)` makes it, `each(acc, point, positives, negatives)` adds to it), in
    /// parallel; the chunks' accumulators come back in point order.
    fn sample_epoch<A: Send>(
        &mut self,
        epoch: usize,
        start: impl Fn(usize) -> A + Sync,
        each: impl Fn(&mut A, usize, &[u32], &[u32]) + Sync,
    ) -> Vec<A> {
        let graph = self.graph;
        let sampler = Epoch {
            graph,
            number: epoch,
            negative_rate: self.negative_rate,
            seed: self.seed,
        };
        let max_degree = self.max_degree;
        let n = graph.offsets.len() - 1;
        split_state(graph, &mut self.state, CHUNK)
            .into_par_iter()
            .enumerate()
            .map(|(c, state)| {
                Arch::new().dispatch(EpochChunk {
                    sampler,
                    points: c * CHUNK..((c + 1) * CHUNK).min(n),
                    state,
                    max_degree,
                    start: &start,
                    each: &each,
                })
            })
            .collect()
    }

    /// All epochs as fused rayon passes: each point gathers its own samples' gradients.
    fn cpu(&mut self, mut positions: Vec<[f32; 2]>, progress: &Progress) -> Vec<[f32; 2]> {
        let curve = self.curve;
        for epoch in 0..self.n_epochs {
            if progress.is_cancelled() {
                break;
            }
            let alpha = self.alpha(epoch);
            let current = &positions;
            let moved = self.sample_epoch(
                epoch,
                Vec::with_capacity,
                #[inline(always)]
                |out, point, positives, negatives| {
                    let here = current[point];
                    let pull = gradient_sum(here, positives, current, |d2| curve.attraction(d2));
                    let push = gradient_sum(here, negatives, current, |d2| curve.repulsion(d2));
                    let grad = [pull[0] + push[0], pull[1] + push[1]];
                    out.push([here[0] + alpha * grad[0], here[1] + alpha * grad[1]]);
                },
            );
            positions = moved.concat();
            self.report(epoch, progress);
        }
        positions
    }

    /// All epochs as batched tensor ops on `device`.
    fn tensor(&mut self, init: &[[f32; 2]], device: &Device, progress: &Progress) -> Vec<[f32; 2]> {
        let n = init.len();
        let flat: Vec<f32> = init.iter().flatten().copied().collect();
        let mut positions = Tensor::<2>::from_data(TensorData::new(flat, [n, 2]), device);
        let curve = self.curve;
        for epoch in 0..self.n_epochs {
            if progress.is_cancelled() {
                break;
            }
            let alpha = self.alpha(epoch);
            // This epoch's samples as (heads, tails) of the positives, then of the negatives.
            let lists = self.sample_epoch(
                epoch,
                |_| <[Vec<i32>; 4]>::default(),
                |lists, point, positives, negatives| {
                    let point = point as i32;
                    lists[0].extend(std::iter::repeat_n(point, positives.len()));
                    lists[1].extend(positives.iter().map(|&t| t as i32));
                    lists[2].extend(std::iter::repeat_n(point, negatives.len()));
                    lists[3].extend(negatives.iter().map(|&t| t as i32));
                },
            );
            let positives: usize = lists.iter().map(|l| l[0].len()).sum();
            let m = positives + lists.iter().map(|l| l[2].len()).sum::<usize>();
            if m > 0 {
                let mut heads = Vec::with_capacity(m);
                let mut tails = Vec::with_capacity(m);
                for part in [0, 2] {
                    for l in &lists {
                        heads.extend_from_slice(&l[part]);
                        tails.extend_from_slice(&l[part + 1]);
                    }
                }
                drop(lists);
                let step = batched_step(&positions, heads, tails, positives, curve, device);
                positions = positions + step.mul_scalar(alpha / FIXED_POINT);
            }
            self.report(epoch, progress);
        }
        let flat: Vec<f32> = positions
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .expect("a float tensor downloads as f32");
        flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
    }
}

/// One epoch's summed gradients (in units of `1 / FIXED_POINT`) on the device: the first
/// `positives` samples attract `heads` to `tails`, the rest repel them.
fn batched_step(
    positions: &Tensor<2>,
    heads: Vec<i32>,
    tails: Vec<i32>,
    positives: usize,
    curve: Curve,
    device: &Device,
) -> Tensor<2> {
    let n = positions.dims()[0];
    let m = heads.len();
    let heads = Tensor::<1, Int>::from_data(TensorData::new(heads, [m]), device);
    let tails = Tensor::<1, Int>::from_data(TensorData::new(tails, [m]), device);
    let diff = positions.clone().select(0, heads.clone()) - positions.clone().select(0, tails);
    let d2 = (diff.clone() * diff.clone()).sum_dim(1);
    let zero = d2.clone().equal_elem(0.0);
    let powered = d2.clone().powf_scalar(curve.b);
    let denominator = powered.clone().mul_scalar(curve.a).add_scalar(1.0);
    let mut parts = Vec::with_capacity(2);
    if positives > 0 {
        let p = powered.clone().narrow(0, 0, positives);
        let d = d2
            .clone()
            .narrow(0, 0, positives)
            .clamp_min(f32::MIN_POSITIVE);
        let den = denominator.clone().narrow(0, 0, positives);
        parts.push((p / d / den).mul_scalar(-4.0 * curve.a * curve.b));
    }
    if positives < m {
        let d = d2.narrow(0, positives, m - positives);
        let den = denominator.narrow(0, positives, m - positives);
        parts.push(
            (d.add_scalar(0.001) * den)
                .recip()
                .mul_scalar(2.0 * GAMMA * curve.b),
        );
    }
    let coeff = Tensor::cat(parts, 0).mask_fill(zero, 0.0);
    let grad = (diff * coeff).clamp(-CLIP, CLIP);
    let fixed = grad.mul_scalar(FIXED_POINT).round().int();
    let index = heads.reshape([m, 1]).repeat_dim(1, 2);
    Tensor::<2, Int>::zeros([n, 2], device)
        .scatter(0, index, fixed, IndexingUpdateOp::Add)
        .float()
}

/// Trustworthiness (Venna & Kaski 2001) of the layout `low` with respect to `high` (`n × dim`
/// unit rows, cosine similarity) at `k`: 1 when every point's `k` nearest neighbours in the
/// layout are among its `k` nearest in `high`, lower as intruders come from farther away.
/// Averaged over a seeded random sample of `sample` rows (exact, as scikit-learn's, when
/// `sample >= n`). For tests and benches: each sampled row costs `O(n · dim)`.
#[must_use]
pub fn trustworthiness(
    high: &[f32],
    dim: usize,
    low: &[[f32; 2]],
    k: usize,
    sample: usize,
    seed: u64,
) -> f32 {
    let n = low.len().min(high.len() / dim.max(1));
    let denominator = 2.0 * n as f64 - 3.0 * k as f64 - 1.0;
    if k == 0 || n <= k + 1 || denominator <= 0.0 {
        return 1.0;
    }
    let rows: Vec<usize> = if sample >= n {
        (0..n).collect()
    } else {
        // A partial Fisher–Yates shuffle.
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64::new(seed, 0);
        for i in 0..sample {
            let j = i + rng.below(n - i);
            order.swap(i, j);
        }
        order.truncate(sample);
        order
    };
    let penalty: f64 = rows
        .par_iter()
        .map(|&i| {
            let x = &high[i * dim..(i + 1) * dim];
            let sims: Vec<f32> = high.chunks_exact(dim).take(n).map(|y| dot(x, y)).collect();
            // The k nearest in the layout (ties by index).
            let here = low[i];
            let mut nearest: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
            for (j, p) in low.iter().enumerate().take(n) {
                if j == i {
                    continue;
                }
                let d = (p[0] - here[0]).powi(2) + (p[1] - here[1]).powi(2);
                if nearest.len() == k && d >= nearest[k - 1].0 {
                    continue;
                }
                let at = nearest.partition_point(|&(e, _)| e <= d);
                nearest.insert(at, (d, j));
                nearest.truncate(k);
            }
            // The rank of each in `high` (1 = most similar); only ranks past k count.
            nearest
                .iter()
                .map(|&(_, j)| {
                    let s = sims[j];
                    let rank = 1 + sims
                        .iter()
                        .enumerate()
                        .filter(|&(l, &t)| {
                            l != i
                                && match t.total_cmp(&s) {
                                    std::cmp::Ordering::Greater => true,
                                    std::cmp::Ordering::Equal => l < j,
                                    std::cmp::Ordering::Less => false,
                                }
                        })
                        .count();
                    rank.saturating_sub(k) as f64
                })
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    (1.0 - penalty * 2.0 / (rows.len() as f64 * k as f64 * denominator)) as f32
}

fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let (xc, xr) = x.split_at(x.len() / 8 * 8);
    let (yc, yr) = y.split_at(xc.len());
    for (a, b) in xc.chunks_exact(8).zip(yc.chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += a[l] * b[l];
        }
    }
    lanes.iter().sum::<f32>() + xr.iter().zip(yr).map(|(a, b)| a * b).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::analysis::{knn, pca};

    const DIM: usize = 64;
    const CLUSTERS: usize = 20;

    /// 20 Gaussian clusters of 150 unit vectors in 64-d, of different widths (the widest
    /// overlap in any 2-D projection): features, labels, their exact 16-NN and PCA layout.
    struct Planted {
        features: Vec<f32>,
        labels: Vec<usize>,
        graph: Neighbours,
        init: Vec<[f32; 2]>,
    }

    impl Planted {
        /// The layout of the planted graph from its PCA start, on `device` with `engine`.
        fn layout(&self, params: &Params, device: &Device, engine: Engine) -> Vec<[f32; 2]> {
            layout_with(
                &self.graph,
                &self.init,
                params,
                device,
                &Progress::silent(),
                engine,
            )
        }
    }

    fn planted() -> &'static Planted {
        static DATA: OnceLock<Planted> = OnceLock::new();
        DATA.get_or_init(|| {
            let mut rng = SplitMix64::new(7, 1);
            let centres: Vec<Vec<f32>> = (0..CLUSTERS)
                .map(|_| (0..DIM).map(|_| rng.gauss()).collect())
                .collect();
            let mut features = Vec::new();
            let mut labels = Vec::new();
            for i in 0..CLUSTERS * 150 {
                let c = i % CLUSTERS;
                let width = 0.5 + c as f32 / CLUSTERS as f32;
                let v: Vec<f32> = centres[c]
                    .iter()
                    .map(|&m| m + width * rng.gauss())
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                features.extend(v.iter().map(|x| x / norm));
                labels.push(c);
            }
            let device = Device::flex();
            let graph = knn::exact(
                &features,
                DIM,
                knn::STORED_NEIGHBOURS,
                &device,
                &Progress::silent(),
            );
            let init = pca::project_2d(&features, DIM, &device);
            Planted {
                features,
                labels,
                graph,
                init,
            }
        })
    }

    /// Leave-one-out 10-NN majority-vote label accuracy in a layout.
    fn knn_accuracy(layout: &[[f32; 2]], labels: &[usize]) -> f32 {
        let hits = (0..layout.len())
            .into_par_iter()
            .filter(|&i| {
                let mut others: Vec<(f32, usize)> = (0..layout.len())
                    .filter(|&j| j != i)
                    .map(|j| {
                        let (dx, dy) = (layout[j][0] - layout[i][0], layout[j][1] - layout[i][1]);
                        (dx * dx + dy * dy, j)
                    })
                    .collect();
                others.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
                let mut votes = [0_u32; CLUSTERS];
                for &(_, j) in &others[..10] {
                    votes[labels[j]] += 1;
                }
                let best = (0..CLUSTERS).max_by_key(|&c| (votes[c], std::cmp::Reverse(c)));
                best == Some(labels[i])
            })
            .count();
        hits as f32 / layout.len() as f32
    }

    /// The largest coordinate difference between two layouts.
    fn max_gap(a: &[[f32; 2]], b: &[[f32; 2]]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
            .fold(0.0, f32::max)
    }

    fn finite(layout: &[[f32; 2]]) -> bool {
        layout.iter().all(|p| p[0].is_finite() && p[1].is_finite())
    }

    #[test]
    fn fast_pow_matches_powf() {
        let mut worst = 0.0_f64;
        // Squared distances from 1e-15 to 1e6 (the results stay normal floats).
        for i in 0..200_000 {
            let x = 10_f32.powf(-15.0 + 21.0 * i as f32 / 200_000.0);
            for y in [0.79_f32, 0.895, 1.334, 1.92] {
                let exact = f64::from(x).powf(f64::from(y));
                let rel = ((f64::from(fast_pow(x, y)) - exact) / exact).abs();
                worst = worst.max(rel);
            }
        }
        assert!(worst < 1e-5, "{worst}");
    }

    #[test]
    fn fits_umap_learns_curve_parameters() {
        // umap.umap_.find_ab_params(spread, min_dist) in umap-learn 0.5.12 (scipy curve_fit).
        for (spread, min_dist, a, b) in [
            (1.0, 0.1, 1.576_943_5, 0.895_060_9),
            (1.0, 0.0, 1.932_808_4, 0.790_495),
            (1.0, 0.5, 0.583_03, 1.334_167),
            (2.0, 0.25, 0.416_273_5, 0.921_855_1),
            (1.0, 0.99, 0.119_305_3, 1.916_390_4),
        ] {
            let (fa, fb) = find_ab_params(spread, min_dist);
            assert!(
                (fa - a).abs() < 1e-3 * a && (fb - b).abs() < 1e-3 * b,
                "spread {spread}, min_dist {min_dist}: a {fa} b {fb}, want {a} {b}"
            );
        }
    }

    #[test]
    fn memberships_follow_smooth_knn_dist() {
        let distances = [
            0.0, 0.1, 0.15, 0.2, 0.3, 0.35, 0.5, 0.6, 0.61, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1,
        ];
        let target = 15_f64.log2();
        let w = memberships(&distances, target, 0.5);
        // Zero distance and the nearest non-zero one (rho) are full members; the total is
        // log2(k), and memberships fall with distance.
        assert_eq!((w[0], w[1]), (1.0, 1.0));
        let total: f64 = w.iter().map(|&x| f64::from(x)).sum();
        assert!((total - target).abs() < 1e-4, "{total}");
        assert!(w.windows(2).all(|p| p[1] <= p[0]));
    }

    #[test]
    fn fuzzy_graph_is_symmetric_and_pruned() {
        let data = planted();
        let n = data.init.len();
        let graph = fuzzy_graph(&data.graph, n, 15, 500, 500);
        let mut entries = std::collections::HashMap::new();
        for i in 0..n {
            for e in graph.entries(i) {
                assert_ne!(graph.tails[e] as usize, i);
                entries.insert((i as u32, graph.tails[e]), graph.epochs_per_sample[e]);
            }
        }
        for (&(i, j), &eps) in &entries {
            assert_eq!(entries.get(&(j, i)), Some(&eps), "({i}, {j})");
            assert!((1.0..=500.0).contains(&eps));
        }
        // The union has at least every point's own 15 neighbours, minus pruned ones.
        assert!(entries.len() >= n * 14, "{}", entries.len());
    }

    #[test]
    fn separates_planted_clusters_better_than_pca() {
        let data = planted();
        let started = std::time::Instant::now();
        let layout = layout(
            &data.graph,
            &data.init,
            &Params::default(),
            &Device::flex(),
            &Progress::silent(),
        );
        let secs = started.elapsed().as_secs_f32();
        let mut rng = SplitMix64::new(5, 0);
        let random: Vec<[f32; 2]> = (0..layout.len())
            .map(|_| [rng.unit(), rng.unit()])
            .collect();
        let accuracy = knn_accuracy(&layout, &data.labels);
        let pca_accuracy = knn_accuracy(&data.init, &data.labels);
        let trust = trustworthiness(&data.features, DIM, &layout, 10, usize::MAX, 0);
        let pca_trust = trustworthiness(&data.features, DIM, &data.init, 10, usize::MAX, 0);
        let random_trust = trustworthiness(&data.features, DIM, &random, 10, usize::MAX, 0);
        println!(
            "3000 points, 20 clusters: 10-NN accuracy UMAP {accuracy:.3} (PCA {pca_accuracy:.3}); \
             trustworthiness@10 UMAP {trust:.4}, PCA {pca_trust:.4}, random {random_trust:.4}; \
             layout {secs:.2} s"
        );
        assert!(accuracy >= 0.9, "{accuracy}");
        assert!(
            trust > random_trust && trust >= pca_trust,
            "{trust} {pca_trust} {random_trust}"
        );
        assert!(finite(&layout));
        // Centred on the origin.
        let mean = layout.iter().fold([0.0_f64; 2], |m, p| {
            [m[0] + f64::from(p[0]), m[1] + f64::from(p[1])]
        });
        assert!(
            mean.iter().all(|m| (m / layout.len() as f64).abs() < 1e-3),
            "{mean:?}"
        );
    }

    #[test]
    fn the_tensor_engine_matches_the_cpu_engine() {
        let data = planted();
        let device = Device::flex();
        let run = |engine, params: &Params| data.layout(params, &device, engine);
        // One working epoch (umap-learn samples nothing in epoch 0): the same samples and
        // the same maths, up to rounding. Later epochs amplify rounding (SGD at step ~1 with
        // clipped repulsion is chaotic), so the whole runs are compared by their quality.
        let one = Params {
            n_epochs: Some(2),
            ..Params::default()
        };
        let (cpu, tensor) = (run(Engine::Cpu, &one), run(Engine::Tensor, &one));
        let start = centred(initial_positions(&data.init, one.seed));
        let (moved, worst) = (max_gap(&cpu, &start), max_gap(&cpu, &tensor));
        assert!(
            moved > 0.1 && worst < 2e-3,
            "moved {moved}, engines differ by {worst}"
        );
        // The whole run lays the clusters out as well.
        let tensor = run(Engine::Tensor, &Params::default());
        let accuracy = knn_accuracy(&tensor, &data.labels);
        println!("tensor engine: 10-NN accuracy {accuracy:.3}");
        assert!(accuracy >= 0.9, "{accuracy}");
        assert!(finite(&tensor));
    }

    #[test]
    #[ignore = "needs a wgpu adapter (lavapipe works, slowly): cargo test --release --lib umap -- --ignored wgpu"]
    fn the_tensor_engine_runs_on_wgpu() {
        let data = planted();
        let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        let run = |params: &Params| data.layout(params, &device, Engine::Tensor);
        let one = Params {
            n_epochs: Some(2),
            ..Params::default()
        };
        let cpu = data.layout(&one, &Device::flex(), Engine::Cpu);
        let gpu = run(&one);
        assert!(max_gap(&cpu, &gpu) < 2e-3, "{}", max_gap(&cpu, &gpu));
        // Deterministic despite the GPU's atomics: the sums are integers.
        let started = std::time::Instant::now();
        let full = run(&Params::default());
        let secs = started.elapsed().as_secs_f32();
        assert_eq!(full, run(&Params::default()));
        let accuracy = knn_accuracy(&full, &data.labels);
        println!("wgpu tensor engine: 10-NN accuracy {accuracy:.3}, {secs:.1} s");
        assert!(accuracy >= 0.9 && finite(&full), "{accuracy}");
    }

    #[test]
    fn the_seed_decides_the_layout() {
        let data = planted();
        let params = Params {
            n_epochs: Some(60),
            ..Params::default()
        };
        let run = |params: &Params| {
            layout(
                &data.graph,
                &data.init,
                params,
                &Device::flex(),
                &Progress::silent(),
            )
        };
        let first = run(&params);
        assert_eq!(first, run(&params));
        let other = run(&Params { seed: 43, ..params });
        assert_ne!(first, other);
        // The tensor engine is deterministic too (fixed-point sums).
        let tensor = |p: &Params| data.layout(p, &Device::flex(), Engine::Tensor);
        assert_eq!(tensor(&params), tensor(&params));
    }

    #[test]
    fn edge_cases_give_finite_layouts() {
        let device = Device::flex();
        let silent = Progress::silent();
        let params = Params::default();
        let graph = |k: usize, indices: Vec<u32>, similarities: Vec<f32>| Neighbours {
            k,
            indices,
            similarities,
        };
        assert!(layout(&Neighbours::default(), &[], &params, &device, &silent).is_empty());
        assert_eq!(
            layout(
                &graph(1, vec![u32::MAX], vec![f32::NEG_INFINITY]),
                &[[3.0, 4.0]],
                &params,
                &device,
                &silent
            ),
            vec![[0.0, 0.0]]
        );
        // Two points, each the other's neighbour; and two identical points.
        for sim in [0.5, 1.0] {
            let two = layout(
                &graph(1, vec![1, 0], vec![sim, sim]),
                &[[0.0, 0.0], [1.0, 1.0]],
                &params,
                &device,
                &silent,
            );
            assert!(
                finite(&two) && max_gap(&two[..1], &two[1..]) > 0.01,
                "{two:?}"
            );
        }
        // All padding, a graph shorter than the layout, an index out of range, NaN input.
        let padded = graph(16, vec![u32::MAX; 16 * 3], vec![f32::NEG_INFINITY; 16 * 3]);
        let init = [[0.0, 1.0], [2.0, f32::NAN], [1.0, 0.5], [5.0, 5.0]];
        assert!(finite(&layout(&padded, &init, &params, &device, &silent)));
        let odd = graph(
            2,
            vec![1, 9, 0, u32::MAX, 0, 1],
            vec![0.9, 0.8, 0.9, f32::NEG_INFINITY, f32::NAN, 0.7],
        );
        for engine in [Engine::Cpu, Engine::Tensor] {
            let out = layout_with(&odd, &init, &params, &device, &silent, engine);
            assert_eq!(out.len(), 4);
            assert!(finite(&out), "{engine:?}: {out:?}");
        }
        // No neighbours given at all: the rescaled start, centred.
        let start = layout(
            &Neighbours::default(),
            &[[0.0, 0.0], [2.0, 4.0]],
            &params,
            &device,
            &silent,
        );
        assert!((start[1][0] - start[0][0] - 10.0).abs() < 1e-2, "{start:?}");
    }

    #[test]
    fn reports_progress_and_stops_when_cancelled() {
        let data = planted();
        let params = Params {
            n_epochs: Some(20),
            ..Params::default()
        };
        let (progress, events) = Progress::channel();
        let out = layout(&data.graph, &data.init, &params, &Device::flex(), &progress);
        let events: Vec<ProgressEvent> = events.try_iter().collect();
        assert_eq!(
            events.first(),
            Some(&ProgressEvent::Started {
                stage: Stage::Layout,
                total: 20
            })
        );
        assert!(events.contains(&ProgressEvent::Advanced {
            stage: Stage::Layout,
            done: 20
        }));
        assert_eq!(
            events.last(),
            Some(&ProgressEvent::Finished {
                stage: Stage::Layout
            })
        );
        assert!(finite(&out));
        // Cancelled before it starts: the rescaled, centred start comes back at once.
        progress.cancel();
        let cancelled = layout(
            &data.graph,
            &data.init,
            &Params::default(),
            &Device::flex(),
            &progress,
        );
        assert_eq!(cancelled.len(), data.init.len());
        assert!(finite(&cancelled));
        assert_eq!(
            cancelled,
            centred(initial_positions(&data.init, Params::default().seed))
        );
    }

    #[test]
    fn trustworthiness_scores_known_layouts() {
        // Points on a circle in 3-d (unit rows): the circle itself is perfectly trustworthy,
        // a shuffled copy is not, and a sample estimates the exact value.
        let n = 200;
        let high: Vec<f32> = (0..n)
            .flat_map(|i| {
                let t = i as f32 / n as f32 * std::f32::consts::TAU;
                let v = [t.cos(), t.sin(), 1.0];
                let norm = 2_f32.sqrt();
                v.map(|x| x / norm)
            })
            .collect();
        let circle: Vec<[f32; 2]> = high.chunks(3).map(|r| [r[0], r[1]]).collect();
        // k = 4: both of each tied pair (±1, ±2 steps away) are in.
        assert!((trustworthiness(&high, 3, &circle, 4, usize::MAX, 0) - 1.0).abs() < 1e-6);
        let mut rng = SplitMix64::new(1, 0);
        let shuffled: Vec<[f32; 2]> = (0..n).map(|_| circle[rng.below(n)]).collect();
        let exact = trustworthiness(&high, 3, &shuffled, 5, usize::MAX, 0);
        assert!(exact < 0.7, "{exact}");
        let sampled = trustworthiness(&high, 3, &shuffled, 5, 100, 3);
        assert!((sampled - exact).abs() < 0.1, "{sampled} {exact}");
        // Too few points to judge.
        assert!((trustworthiness(&high, 3, &circle[..3], 5, usize::MAX, 0) - 1.0).abs() < 1e-6);
    }
}

#[cfg(test)]
mod scale {
    use super::*;
    use crate::analysis::pca;
    use kiddo::{ImmutableKdTree, SquaredEuclidean};
    use std::num::NonZeroUsize;

    const DIM: usize = 8;

    fn peak_rss_mib() -> f64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    /// User + system CPU seconds of this process so far.
    fn cpu_secs() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime, stime are 14th, 15th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Time, peak memory and trustworthiness of the layout of `UMAP_N` points (default
    /// 100 000) in 50 Gaussian clusters on the 8-D unit sphere, with their exact 16-NN.
    /// `UMAP_ENGINE=tensor` runs the tensor engine on flex, `UMAP_ENGINE=wgpu` on the GPU;
    /// `UMAP_DUMP=dir` writes the features, PCA start and layout there (f32, little-endian)
    /// for a comparison with umap-learn.
    #[test]
    #[ignore = "a measurement, run by hand: UMAP_N=1000000 cargo test --release --lib umap::scale -- --ignored --nocapture"]
    fn layout_at_scale() {
        let n: usize = std::env::var("UMAP_N").map_or(100_000, |v| v.parse().expect("UMAP_N"));
        let mut rng = SplitMix64::new(3, 0);
        let centres: Vec<[f32; DIM]> = (0..50)
            .map(|_| std::array::from_fn(|_| rng.gauss()))
            .collect();
        let points: Vec<[f32; DIM]> = (0..n)
            .map(|_| {
                let c = &centres[rng.below(centres.len())];
                let v: [f32; DIM] = std::array::from_fn(|d| c[d] + 0.4 * rng.gauss());
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.map(|x| x / norm)
            })
            .collect();
        let started = std::time::Instant::now();
        let tree: ImmutableKdTree<f32, DIM> =
            ImmutableKdTree::new_from_slice(&points).expect("tree");
        let k = 16;
        let rows: Vec<(Vec<u32>, Vec<f32>)> = points
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let hits = tree
                    .query(p)
                    .nearest_n::<SquaredEuclidean<f32>>(NonZeroUsize::new(k + 1).expect("k"))
                    .execute();
                let mut idx = Vec::with_capacity(k);
                let mut sim = Vec::with_capacity(k);
                for h in hits.into_iter().filter(|h| h.item as usize != i).take(k) {
                    idx.push(h.item);
                    sim.push(1.0 - h.distance / 2.0);
                }
                idx.resize(k, u32::MAX);
                sim.resize(k, f32::NEG_INFINITY);
                (idx, sim)
            })
            .collect();
        let graph = Neighbours {
            k,
            indices: rows.iter().flat_map(|r| r.0.iter().copied()).collect(),
            similarities: rows.iter().flat_map(|r| r.1.iter().copied()).collect(),
        };
        drop(rows);
        drop(tree);
        let flat: Vec<f32> = points.iter().flatten().copied().collect();
        let init = pca::project_2d(&flat, DIM, &Device::flex());
        println!(
            "n = {n}: synthetic 16-NN + PCA in {:.1} s, peak RSS so far {:.0} MiB",
            started.elapsed().as_secs_f32(),
            peak_rss_mib()
        );
        // Reset the peak so that the next reading is the layout's own.
        std::fs::write("/proc/self/clear_refs", "5").ok();
        let before = peak_rss_mib();
        let (device, engine) = match std::env::var("UMAP_ENGINE").as_deref() {
            Ok("tensor") => (Device::flex(), Engine::Tensor),
            Ok("wgpu") => (
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                Engine::Tensor,
            ),
            _ => (Device::flex(), Engine::Cpu),
        };
        let (started, cpu) = (std::time::Instant::now(), cpu_secs());
        let params = Params::default();
        let out = layout_with(&graph, &init, &params, &device, &Progress::silent(), engine);
        let secs = started.elapsed().as_secs_f32();
        println!(
            "layout: {secs:.2} s wall, {:.2} s CPU, peak RSS during layout {:.0} MiB (before {before:.0} MiB)",
            cpu_secs() - cpu,
            peak_rss_mib()
        );
        if let Ok(dir) = std::env::var("UMAP_DUMP") {
            let write = |name: &str, data: &[f32]| {
                let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
            };
            write("features.f32", &flat);
            write(
                "init.f32",
                &init.iter().flatten().copied().collect::<Vec<_>>(),
            );
            write(
                "ours.f32",
                &out.iter().flatten().copied().collect::<Vec<_>>(),
            );
        }
        let t_umap = trustworthiness(&flat, DIM, &out, 10, 1000, 1);
        let t_pca = trustworthiness(&flat, DIM, &init, 10, 1000, 1);
        println!("trustworthiness@10 (1000 rows): umap {t_umap:.4}, pca {t_pca:.4}");
        assert!(out.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
    }
}
