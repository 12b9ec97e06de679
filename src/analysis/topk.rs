//! Inner-product scans on the CPU, fused: similarities are computed in register tiles and
//! handed, a tile at a time through a small stack buffer, to what the scan is for — each
//! query's best `k` ([`merge_best`]: k-NN, IVF lists, k-means assignment) or every pair
//! above a floor ([`pairs_at_least`]: SemDeDup). No similarity matrix is ever written to
//! memory, and a tile row whose best score cannot matter is skipped with one comparison.
//!
//! The general matrix product burn's `flex` backend calls reaches about 30 % of this CPU's
//! floating-point peak on the `Q · Kᵀ` shapes of a k-NN search (8,192 × 512 by 512 × 1,000:
//! 161 GFLOP/s of 545 on two AVX-512 cores), and each tile then goes through memory twice
//! (written, read back for the merge). Here keys are packed once into panels of
//! [`PANEL`] keys (`dim × PANEL`, element `p` of the panel's key `j` at `p · PANEL + j`),
//! queries into panels of the micro-tile's height, and one micro-tile of `MR × PANEL`
//! similarities lives in registers for the whole `dim` loop. The SIMD width is chosen at run
//! time through `pulp` (AVX-512, AVX2+FMA, NEON, or plain scalar code).

// `pulp` compiles a dispatched operation for the CPU's SIMD level; only code inlined into
// it gets those instructions, hence `#[inline(always)]` down to the innermost helpers.
#![allow(clippy::inline_always)]

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::knn::merge_row;

/// Keys per packed panel (two AVX-512 vectors, four AVX2 ones).
pub const PANEL: usize = 32;
/// Queries one parallel task takes: their packed panels (≈ 200 KB at 512 wide) stay in the
/// core's L2 cache while every key panel passes by.
const QUERY_CHUNK: usize = 96;

/// Key rows packed for [`merge_best`]: panels of [`PANEL`] keys, zero-padded, with each
/// key's row id and a score offset per key.
#[derive(Clone, Debug)]
pub struct PackedKeys {
    packed: Vec<f32>,
    /// Added to every inner product with the key (zero unless [`Self::with_bias`]).
    bias: Vec<f32>,
    ids: Vec<u32>,
    dim: usize,
}

impl PackedKeys {
    /// Packs the rows `rows` of `source` (`· × dim`, row-major); the keys are named by
    /// these row ids in the best lists.
    ///
    /// # Panics
    ///
    /// When a row id is outside `source`.
    #[must_use]
    pub fn pack(source: &[f32], dim: usize, rows: &[u32]) -> Self {
        let panels = rows.len().div_ceil(PANEL);
        let mut packed = vec![0.0_f32; panels * PANEL * dim];
        if dim > 0 {
            packed
                .par_chunks_mut(PANEL * dim)
                .zip(rows.par_chunks(PANEL))
                .for_each(|(panel, keys)| {
                    for (j, &row) in keys.iter().enumerate() {
                        let row = row as usize;
                        let values = &source[row * dim..(row + 1) * dim];
                        for (p, &v) in values.iter().enumerate() {
                            panel[p * PANEL + j] = v;
                        }
                    }
                });
        }
        Self {
            packed,
            bias: vec![0.0; panels * PANEL],
            ids: rows.to_vec(),
            dim,
        }
    }

    /// Scores `query · key + bias[key]` instead of the plain inner product: with
    /// `bias = −‖key‖² / 2` the best score is the nearest key by Euclidean distance.
    ///
    /// # Panics
    ///
    /// When there is not one bias per key.
    #[must_use]
    pub fn with_bias(mut self, bias: &[f32]) -> Self {
        assert_eq!(bias.len(), self.ids.len(), "one bias per key");
        self.bias[..bias.len()].copy_from_slice(bias);
        self
    }

    /// Packs the contiguous rows `start..end` of `source`.
    #[must_use]
    pub fn pack_range(source: &[f32], dim: usize, start: usize, end: usize) -> Self {
        let rows: Vec<u32> = (start as u32..end as u32).collect();
        Self::pack(source, dim, &rows)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Merges the inner products of each query with every key into the query's best-`k` list
/// (`indices`, `similarities`: `rows.len() × k`, sorted best first, `u32::MAX` / `-inf`
/// padding), in parallel over queries.
///
/// Query `i` is row `rows[i]` of `source` (`· × dim`, row-major, the keys' width). With
/// `exclude_self` the query rows are key rows too, and a row is never its own neighbour.
///
/// # Panics
///
/// When the best lists are not `rows.len() × k`, or a row is outside `source`.
pub fn merge_best(
    source: &[f32],
    rows: &[u32],
    exclude_self: bool,
    keys: &PackedKeys,
    k: usize,
    indices: &mut [u32],
    similarities: &mut [f32],
) {
    let m = rows.len();
    assert_eq!(indices.len(), m * k, "indices must be m × k");
    assert_eq!(similarities.len(), m * k, "similarities must be m × k");
    if m == 0 || k == 0 || keys.is_empty() || keys.dim == 0 {
        return;
    }
    rows.par_chunks(QUERY_CHUNK)
        .zip(
            indices
                .par_chunks_mut(QUERY_CHUNK * k)
                .zip(similarities.par_chunks_mut(QUERY_CHUNK * k)),
        )
        .for_each(|(rows, (indices, similarities))| {
            Arch::new().dispatch(Scan {
                source,
                rows,
                keys,
                sink: BestK {
                    rows,
                    exclude_self,
                    keys,
                    k,
                    indices,
                    similarities,
                },
            });
        });
}

/// Every pair of the rows `rows` of `source` (`· × dim`, row-major) whose inner product is
/// at least `floor`: `(rows[i], rows[j], score)` with `i < j`, in no particular order. Only
/// the upper triangle of the product is computed (by key panels), in parallel over rows.
#[must_use]
pub fn pairs_at_least(
    source: &[f32],
    dim: usize,
    rows: &[u32],
    floor: f32,
) -> Vec<(u32, u32, f32)> {
    if rows.len() < 2 || dim == 0 {
        return Vec::new();
    }
    let keys = PackedKeys::pack(source, dim, rows);
    rows.par_chunks(QUERY_CHUNK)
        .enumerate()
        .map(|(c, chunk_rows)| {
            Arch::new().dispatch(Scan {
                source,
                rows: chunk_rows,
                keys: &keys,
                sink: Above {
                    offset: c * QUERY_CHUNK,
                    rows: chunk_rows,
                    keys: &keys,
                    floor,
                    found: Vec::new(),
                },
            })
        })
        .flatten()
        .collect()
}

/// What a scan does with one query's scores against one key panel.
trait Sink {
    /// What the scan gives back.
    type Output;
    /// The first key panel that can matter to this chunk of queries.
    fn first_panel(&self) -> usize {
        0
    }
    /// Scores at or below this cannot matter to the chunk's query `i`.
    fn threshold(&self, i: usize) -> f32;
    /// Query `i`'s scores against the keys `first..first + scores.len()`.
    fn take(&mut self, i: usize, first: usize, scores: &[f32]);
    /// The result once every panel has passed.
    fn finish(self) -> Self::Output;
}

/// Keeps each query's best `k`.
struct BestK<'a> {
    rows: &'a [u32],
    exclude_self: bool,
    keys: &'a PackedKeys,
    k: usize,
    indices: &'a mut [u32],
    similarities: &'a mut [f32],
}

impl Sink for BestK<'_> {
    type Output = ();

    #[inline(always)]
    fn threshold(&self, i: usize) -> f32 {
        self.similarities[(i + 1) * self.k - 1]
    }

    #[inline(always)]
    fn take(&mut self, i: usize, first: usize, scores: &[f32]) {
        let own = if self.exclude_self {
            self.rows[i] as usize
        } else {
            usize::MAX
        };
        let k = self.k;
        merge_row(
            own,
            scores,
            |offset| self.keys.ids[first + offset] as usize,
            &mut self.indices[i * k..(i + 1) * k],
            &mut self.similarities[i * k..(i + 1) * k],
        );
    }

    fn finish(self) {}
}

/// Collects the pairs at or above a floor with the later key, when queries and keys are the
/// same rows in the same order (the chunk's query `i` is key `offset + i`).
struct Above<'a> {
    offset: usize,
    rows: &'a [u32],
    keys: &'a PackedKeys,
    floor: f32,
    found: Vec<(u32, u32, f32)>,
}

impl Sink for Above<'_> {
    type Output = Vec<(u32, u32, f32)>;

    fn first_panel(&self) -> usize {
        self.offset / PANEL
    }

    #[inline(always)]
    fn threshold(&self, _i: usize) -> f32 {
        // `take` keeps scores equal to the floor too.
        self.floor.next_down()
    }

    #[inline(always)]
    fn take(&mut self, i: usize, first: usize, scores: &[f32]) {
        let at = self.offset + i;
        for (j, &score) in scores.iter().enumerate() {
            if first + j > at && score >= self.floor {
                self.found
                    .push((self.rows[i], self.keys.ids[first + j], score));
            }
        }
    }

    fn finish(self) -> Self::Output {
        self.found
    }
}

/// One parallel task: a few queries against the keys, their scores going to `sink`.
struct Scan<'a, K> {
    source: &'a [f32],
    rows: &'a [u32],
    keys: &'a PackedKeys,
    sink: K,
}

impl<K: Sink> WithSimd for Scan<'_, K> {
    type Output = K::Output;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> K::Output {
        // Register budget: MR × NV accumulators plus NV key vectors and one broadcast.
        match S::F32_LANES {
            16 => scan::<S, K, 12, 2>(simd, self),
            8 => scan::<S, K, 3, 4>(simd, self),
            4 => scan::<S, K, 3, 8>(simd, self),
            _ => scan_scalar(self),
        }
    }
}

/// The scan with `MR`-row micro-tiles of `NV` vectors (`NV · lanes = PANEL`).
#[inline(always)]
fn scan<S: Simd, K: Sink, const MR: usize, const NV: usize>(
    simd: S,
    scan: Scan<'_, K>,
) -> K::Output {
    debug_assert_eq!(NV * S::F32_LANES, PANEL);
    let Scan {
        source,
        rows,
        keys,
        mut sink,
    } = scan;
    let dim = keys.dim;
    let m = rows.len();
    // Query panels: element p of the tile's row r at p · MR + r.
    let mut packed = vec![0.0_f32; m.div_ceil(MR) * MR * dim];
    for (panel, tile_rows) in packed.chunks_exact_mut(MR * dim).zip(rows.chunks(MR)) {
        for (r, &row) in tile_rows.iter().enumerate() {
            let values = &source[row as usize * dim..(row as usize + 1) * dim];
            for (at_p, &v) in panel.chunks_exact_mut(MR).zip(values) {
                at_p[r] = v;
            }
        }
    }
    // One tile's scores, stored once the `dim` loop is done: the accumulators are only
    // ever indexed by constants, so they stay in registers however the sink looks.
    let mut scores = [[0.0_f32; PANEL]; MR];
    let panels = keys.packed.chunks_exact(PANEL * dim).enumerate();
    for (panel_index, panel) in panels.skip(sink.first_panel()) {
        let first = panel_index * PANEL;
        let valid = (keys.len() - first).min(PANEL);
        let (key_vectors, _) = S::as_simd_f32s(panel);
        let (bias, _) = S::as_simd_f32s(&keys.bias[first..first + PANEL]);
        for (tile, query_panel) in packed.chunks_exact(MR * dim).enumerate() {
            let mut acc = [[simd.splat_f32s(0.0); NV]; MR];
            for (a, b) in query_panel
                .chunks_exact(MR)
                .zip(key_vectors.chunks_exact(NV))
            {
                for r in 0..MR {
                    let x = simd.splat_f32s(a[r]);
                    for v in 0..NV {
                        acc[r][v] = simd.mul_add_e_f32s(x, b[v], acc[r][v]);
                    }
                }
            }
            for r in 0..MR {
                let (lanes, _) = S::as_mut_simd_f32s(&mut scores[r]);
                for v in 0..NV {
                    lanes[v] = simd.add_f32s(acc[r][v], bias[v]);
                }
            }
            let tile_rows = (m - tile * MR).min(MR);
            for (r, row_scores) in scores.iter().enumerate().take(tile_rows) {
                let i = tile * MR + r;
                let (lanes, _) = S::as_simd_f32s(row_scores);
                let top = lanes[1..]
                    .iter()
                    .fold(lanes[0], |top, &v| simd.max_f32s(top, v));
                if simd.reduce_max_f32s(top) > sink.threshold(i) {
                    sink.take(i, first, &row_scores[..valid]);
                }
            }
        }
    }
    sink.finish()
}

/// The scan without SIMD (any CPU).
fn scan_scalar<K: Sink>(scan: Scan<'_, K>) -> K::Output {
    let Scan {
        source,
        rows,
        keys,
        mut sink,
    } = scan;
    let dim = keys.dim;
    let mut buffer = [0.0_f32; PANEL];
    for (i, &row) in rows.iter().enumerate() {
        let query = &source[row as usize * dim..(row as usize + 1) * dim];
        let panels = keys.packed.chunks_exact(PANEL * dim).enumerate();
        for (panel_index, panel) in panels.skip(sink.first_panel()) {
            let first = panel_index * PANEL;
            let valid = (keys.len() - first).min(PANEL);
            buffer.copy_from_slice(&keys.bias[first..first + PANEL]);
            for (&q, keys_at_p) in query.iter().zip(panel.chunks_exact(PANEL)) {
                for (out, &key) in buffer.iter_mut().zip(keys_at_p) {
                    *out += q * key;
                }
            }
            sink.take(i, first, &buffer[..valid]);
        }
    }
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::kmeans::tests::clustered_unit_rows;

    /// Best-k by brute force in f64.
    fn reference(queries: &[f32], keys: &[f32], dim: usize, k: usize) -> Vec<Vec<u32>> {
        queries
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, q)| {
                let mut sims: Vec<(f64, u32)> = keys
                    .chunks_exact(dim)
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(j, key)| {
                        let s = q.iter().zip(key).map(|(a, b)| f64::from(a * b)).sum();
                        (s, j as u32)
                    })
                    .collect();
                sims.sort_by(|a, b| b.0.total_cmp(&a.0));
                sims.iter().take(k).map(|s| s.1).collect()
            })
            .collect()
    }

    #[test]
    fn equals_brute_force_at_awkward_sizes() {
        // Sizes that are not multiples of the panel, the tile or the chunk.
        for (n, dim) in [(1, 5), (37, 3), (211, 17), (300, 64)] {
            let features = clustered_unit_rows(n, dim, 7, 0.2, 11);
            let k = 5.min(n);
            let keys = PackedKeys::pack_range(&features, dim, 0, n);
            let ids: Vec<u32> = (0..n as u32).collect();
            let mut indices = vec![u32::MAX; n * k];
            let mut sims = vec![f32::NEG_INFINITY; n * k];
            merge_best(&features, &ids, true, &keys, k, &mut indices, &mut sims);
            let truth = reference(&features, &features, dim, k);
            for row in 0..n {
                let found = &indices[row * k..(row + 1) * k];
                let expected = &truth[row];
                let shared = found.iter().filter(|i| expected.contains(i)).count();
                // Ties at the k-th place may swap; everything else must agree.
                assert!(
                    shared + 1 >= expected.len(),
                    "n {n} row {row}: {found:?} vs {expected:?}"
                );
                assert!(
                    !found.contains(&(row as u32)),
                    "a row is not its own neighbour"
                );
                let s = &sims[row * k..(row + 1) * k];
                assert!(s.windows(2).all(|w| w[0] >= w[1]), "sorted best first");
            }
        }
    }

    /// Best-k lists of every row of `features` by one scan, through `run`.
    fn best_k_by(
        features: &[f32],
        dim: usize,
        k: usize,
        run: impl FnOnce(Scan<'_, BestK<'_>>),
    ) -> Vec<f32> {
        let n = features.len() / dim;
        let keys = PackedKeys::pack_range(features, dim, 0, n);
        let ids: Vec<u32> = (0..n as u32).collect();
        let (mut indices, mut similarities) =
            (vec![u32::MAX; n * k], vec![f32::NEG_INFINITY; n * k]);
        run(Scan {
            source: features,
            rows: &ids,
            keys: &keys,
            sink: BestK {
                rows: &ids,
                exclude_self: true,
                keys: &keys,
                k,
                indices: &mut indices,
                similarities: &mut similarities,
            },
        });
        similarities
    }

    /// Every SIMD level this CPU has (AVX2 and AVX-512 on x86-64, whichever `merge_best`
    /// would not pick too) gives the scalar scores.
    #[test]
    fn simd_levels_and_scalar_agree() {
        let (n, dim, k) = (150, 48, 7);
        let features = clustered_unit_rows(n, dim, 5, 0.3, 3);
        let scalar = best_k_by(&features, dim, k, |scan| {
            scan_scalar(scan);
        });
        let mut levels: Vec<Vec<f32>> = vec![best_k_by(&features, dim, k, |scan| {
            Arch::new().dispatch(scan);
        })];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(simd) = pulp::x86::V3::try_new() {
                levels.push(best_k_by(&features, dim, k, |scan| {
                    Simd::vectorize(simd, scan);
                }));
            }
            if let Some(simd) = pulp::x86::V4::try_new() {
                levels.push(best_k_by(&features, dim, k, |scan| {
                    Simd::vectorize(simd, scan);
                }));
            }
        }
        for level in levels {
            for (a, b) in level.iter().zip(&scalar) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn a_bias_of_minus_half_the_squared_norm_finds_the_nearest_key() {
        let dim = 3;
        // Not unit rows: the largest inner product is not the nearest point.
        let keys = [0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        let queries = [1.2, 0.9, 0.0, 4.0, 0.0, 0.0, -1.0, 0.0, 0.0];
        let bias: Vec<f32> = keys
            .chunks_exact(dim)
            .map(|c| -0.5 * c.iter().map(|v| v * v).sum::<f32>())
            .collect();
        let packed = PackedKeys::pack_range(&keys, dim, 0, 3).with_bias(&bias);
        let mut nearest = vec![u32::MAX; 3];
        let mut scores = vec![f32::NEG_INFINITY; 3];
        merge_best(
            &queries,
            &[0, 1, 2],
            false,
            &packed,
            1,
            &mut nearest,
            &mut scores,
        );
        assert_eq!(nearest, [2, 1, 0]);
    }

    #[test]
    fn pairs_at_least_a_floor_equal_brute_force() {
        for (n, dim) in [(2, 4), (97, 8), (400, 32)] {
            let features = clustered_unit_rows(n, dim, 3, 0.4, 21);
            // Rows in a scrambled order, as a cluster's members come.
            let rows: Vec<u32> = (0..n as u32).map(|i| (i * 37 + 11) % n as u32).collect();
            let floor = 0.8;
            let mut found: Vec<(u32, u32)> = pairs_at_least(&features, dim, &rows, floor)
                .into_iter()
                .map(|(a, b, s)| {
                    let exact: f32 = features[a as usize * dim..(a as usize + 1) * dim]
                        .iter()
                        .zip(&features[b as usize * dim..(b as usize + 1) * dim])
                        .map(|(x, y)| x * y)
                        .sum();
                    assert!((s - exact).abs() < 1e-5, "{s} vs {exact}");
                    (a.min(b), a.max(b))
                })
                .collect();
            found.sort_unstable();
            let mut expected = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    let s: f32 = features[i * dim..(i + 1) * dim]
                        .iter()
                        .zip(&features[j * dim..(j + 1) * dim])
                        .map(|(x, y)| x * y)
                        .sum();
                    // Scores within rounding of the floor may fall either way.
                    if s >= floor + 1e-5 {
                        expected.push((i as u32, j as u32));
                    } else if s > floor - 1e-5 {
                        found.retain(|&p| p != (i as u32, j as u32));
                    }
                }
            }
            assert!(!expected.is_empty() || n == 2);
            assert_eq!(found, expected, "n {n}");
        }
    }

    #[test]
    fn merging_twice_keeps_the_best_of_both() {
        let (n, dim, k) = (120, 16, 4);
        let features = clustered_unit_rows(n, dim, 4, 0.3, 5);
        let ids: Vec<u32> = (0..n as u32).collect();
        let mut split = (vec![u32::MAX; n * k], vec![f32::NEG_INFINITY; n * k]);
        for (start, end) in [(0, 50), (50, n)] {
            let keys = PackedKeys::pack_range(&features, dim, start, end);
            merge_best(&features, &ids, true, &keys, k, &mut split.0, &mut split.1);
        }
        let keys = PackedKeys::pack_range(&features, dim, 0, n);
        let mut whole = (vec![u32::MAX; n * k], vec![f32::NEG_INFINITY; n * k]);
        merge_best(&features, &ids, true, &keys, k, &mut whole.0, &mut whole.1);
        assert_eq!(split.0, whole.0);
    }
}
