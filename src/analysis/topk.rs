//! Best-`k` by inner product on the CPU, fused: similarities are computed in register tiles
//! and merged into each query's best list while they are still in registers, so no
//! similarity matrix is ever written to memory.
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
    if m == 0 || k == 0 || keys.is_empty() {
        return;
    }
    rows.par_chunks(QUERY_CHUNK)
        .zip(
            indices
                .par_chunks_mut(QUERY_CHUNK * k)
                .zip(similarities.par_chunks_mut(QUERY_CHUNK * k)),
        )
        .for_each(|(rows, (indices, similarities))| {
            Arch::new().dispatch(Chunk {
                source,
                rows,
                exclude_self,
                keys,
                k,
                indices,
                similarities,
            });
        });
}

/// One parallel task: a few queries against all keys.
struct Chunk<'a> {
    source: &'a [f32],
    rows: &'a [u32],
    exclude_self: bool,
    keys: &'a PackedKeys,
    k: usize,
    indices: &'a mut [u32],
    similarities: &'a mut [f32],
}

impl WithSimd for Chunk<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, simd: S) {
        // Register budget: MR × NV accumulators plus NV key vectors and one broadcast.
        match S::F32_LANES {
            16 => chunk::<S, 14, 2>(simd, self),
            8 => chunk::<S, 3, 4>(simd, self),
            4 => chunk::<S, 3, 8>(simd, self),
            _ => chunk_scalar(&mut self),
        }
    }
}

/// The chunk with `MR`-row micro-tiles of `NV` vectors (`NV · lanes = PANEL`).
#[inline(always)]
fn chunk<S: Simd, const MR: usize, const NV: usize>(simd: S, chunk: Chunk<'_>) {
    debug_assert_eq!(NV * S::F32_LANES, PANEL);
    let Chunk {
        source,
        rows,
        exclude_self,
        keys,
        k,
        indices,
        similarities,
    } = chunk;
    let dim = keys.dim;
    let m = rows.len();
    let tiles = m.div_ceil(MR);
    // Query panels: element p of the tile's row r at p · MR + r.
    let mut packed = vec![0.0_f32; tiles * MR * dim];
    for (i, &row) in rows.iter().enumerate() {
        let values = &source[row as usize * dim..(row as usize + 1) * dim];
        let panel = &mut packed[(i / MR) * MR * dim..(i / MR + 1) * MR * dim];
        let r = i % MR;
        for (p, &v) in values.iter().enumerate() {
            panel[p * MR + r] = v;
        }
    }
    let mut buffer = [0.0_f32; PANEL];
    for (panel_index, panel) in keys.packed.chunks_exact(PANEL * dim).enumerate() {
        let first = panel_index * PANEL;
        let valid = (keys.len() - first).min(PANEL);
        let key_ids = &keys.ids[first..first + valid];
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
            for (r, acc) in acc.iter_mut().enumerate() {
                for (a, &b) in acc.iter_mut().zip(bias) {
                    *a = simd.add_f32s(*a, b);
                }
                let row = tile * MR + r;
                if row >= m {
                    break;
                }
                let best = &mut similarities[row * k..(row + 1) * k];
                let mut top = acc[0];
                for &v in &acc[1..] {
                    top = simd.max_f32s(top, v);
                }
                if simd.reduce_max_f32s(top) <= best[k - 1] {
                    continue;
                }
                {
                    let (lanes, _) = S::as_mut_simd_f32s(&mut buffer);
                    lanes.copy_from_slice(&acc[..]);
                }
                merge_row(
                    own(rows[row], exclude_self),
                    &buffer[..valid],
                    |offset| key_ids[offset] as usize,
                    &mut indices[row * k..(row + 1) * k],
                    best,
                );
            }
        }
    }
}

/// The chunk without SIMD (any CPU).
fn chunk_scalar(chunk: &mut Chunk<'_>) {
    let (keys, k) = (chunk.keys, chunk.k);
    let dim = keys.dim;
    let mut buffer = [0.0_f32; PANEL];
    for (row, &id) in chunk.rows.iter().enumerate() {
        let query = &chunk.source[id as usize * dim..(id as usize + 1) * dim];
        for (panel_index, panel) in keys.packed.chunks_exact(PANEL * dim).enumerate() {
            let first = panel_index * PANEL;
            let valid = (keys.len() - first).min(PANEL);
            buffer.copy_from_slice(&keys.bias[first..first + PANEL]);
            for (&q, keys_at_p) in query.iter().zip(panel.chunks_exact(PANEL)) {
                for (out, &key) in buffer.iter_mut().zip(keys_at_p) {
                    *out += q * key;
                }
            }
            merge_row(
                own(id, chunk.exclude_self),
                &buffer[..valid],
                |offset| keys.ids[first + offset] as usize,
                &mut chunk.indices[row * k..(row + 1) * k],
                &mut chunk.similarities[row * k..(row + 1) * k],
            );
        }
    }
}

/// The key a query must skip: itself, when queries are key rows.
fn own(row: u32, exclude_self: bool) -> usize {
    if exclude_self {
        row as usize
    } else {
        usize::MAX
    }
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

    #[test]
    fn simd_and_scalar_agree() {
        let (n, dim, k) = (150, 48, 7);
        let features = clustered_unit_rows(n, dim, 5, 0.3, 3);
        let keys = PackedKeys::pack_range(&features, dim, 0, n);
        let ids: Vec<u32> = (0..n as u32).collect();
        let mut fast = (vec![u32::MAX; n * k], vec![f32::NEG_INFINITY; n * k]);
        merge_best(&features, &ids, true, &keys, k, &mut fast.0, &mut fast.1);
        let mut slow = (vec![u32::MAX; n * k], vec![f32::NEG_INFINITY; n * k]);
        chunk_scalar(&mut Chunk {
            source: &features,
            rows: &ids,
            exclude_self: true,
            keys: &keys,
            k,
            indices: &mut slow.0,
            similarities: &mut slow.1,
        });
        for (a, b) in fast.1.iter().zip(&slow.1) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
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
