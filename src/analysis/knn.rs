//! Exact k-nearest neighbours by cosine similarity, and the outlier scores built on them.
//!
//! On the CPU (`flex`) blocks of keys are packed once and every row's best `k` are kept by
//! the fused kernel of [`super::topk`], which never stores a similarity matrix. On a GPU
//! the feature matrix goes to the device once, blocks of queries are multiplied against
//! blocks of keys (`Q · Kᵀ`) there, and each tile's best `k` per row are merged on the CPU
//! in parallel. Memory stays at one key block or tile, whatever N is.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::ivf::{DEFAULT_NPROBE, Ivf};
use super::kmeans::{self, KMeans, Params};
use super::topk::{self, PackedKeys};
use crate::progress::{Progress, ProgressEvent, Stage};

/// Neighbours kept per image: enough to skip an image's own duplicates and still have
/// [`DEFAULT_OUTLIER_K`] left.
pub const STORED_NEIGHBOURS: usize = 16;
/// The `k` of the default outlier score, the distance to the k-th nearest neighbour
/// (Sun et al. 2022 use k between 1 and 50; 5 is robust on small data sets).
pub const DEFAULT_OUTLIER_K: usize = 5;

/// Rows up to which [`graph`] is exact; beyond, it searches an IVF index. Measured on a
/// 2-core CPU (flex, fused kernel), 512 wide, `k` = 16, exact vs IVF including its k-means
/// (recall@10 of the IVF graph): 0.9 s vs 0.4 s at 20k rows (0.990), 5.4 s vs 1.3 s at 50k
/// (0.991), 21 s vs 2.8 s at 100k (0.994); IVF 28 s at 1M. Exact while it costs seconds.
pub const EXACT_LIMIT: usize = 50_000;
/// Rows per IVF list when [`graph`] clusters the rows itself.
const ROWS_PER_LIST: usize = 1_000;

const QUERY_BLOCK: usize = 1024;
const KEY_BLOCK: usize = 16384;

/// The `k` most similar other rows of every row, best first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Neighbours {
    /// Neighbours per row.
    pub k: usize,
    /// `n × k` row indices; `u32::MAX` pads rows with fewer than `k` others.
    pub indices: Vec<u32>,
    /// `n × k` cosine similarities; `-inf` for padding.
    pub similarities: Vec<f32>,
}

impl Neighbours {
    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.indices.len().checked_div(self.k).unwrap_or(0)
    }

    /// Whether there are no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The neighbours of `row` as `(index, similarity)`, best first, padding skipped.
    pub fn of(&self, row: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let range = row * self.k..(row + 1) * self.k;
        self.indices[range.clone()]
            .iter()
            .copied()
            .zip(self.similarities[range].iter().copied())
            .filter(|&(index, _)| index != u32::MAX)
    }
}

/// Exact k-NN of the rows of `features` (`n × dim`, row-major, L2-normalised) on `device`.
#[must_use]
pub fn exact(
    features: &[f32],
    dim: usize,
    k: usize,
    device: &Device,
    progress: &Progress,
) -> Neighbours {
    let n = features.len() / dim.max(1);
    let mut best_indices = vec![u32::MAX; n * k];
    let mut best_sims = vec![f32::NEG_INFINITY; n * k];
    if n == 0 || k == 0 {
        return Neighbours {
            k,
            indices: best_indices,
            similarities: best_sims,
        };
    }
    progress.send(ProgressEvent::Started {
        stage: Stage::Outliers,
        total: n as u64,
    });
    let finished = if *device == Device::flex() {
        exact_on_cpu(
            features,
            dim,
            k,
            progress,
            &mut best_indices,
            &mut best_sims,
        )
    } else {
        exact_on_device(
            features,
            dim,
            k,
            device,
            progress,
            &mut best_indices,
            &mut best_sims,
        )
    };
    if finished {
        progress.send(ProgressEvent::Finished {
            stage: Stage::Outliers,
        });
    }
    Neighbours {
        k,
        indices: best_indices,
        similarities: best_sims,
    }
}

/// [`exact`] with the fused CPU kernel (no similarity tiles in memory, see `topk`), key
/// block by key block; `false` when cancelled.
fn exact_on_cpu(
    features: &[f32],
    dim: usize,
    k: usize,
    progress: &Progress,
    best_indices: &mut [u32],
    best_sims: &mut [f32],
) -> bool {
    let n = features.len() / dim;
    let rows: Vec<u32> = (0..n as u32).collect();
    for key_start in (0..n).step_by(KEY_BLOCK) {
        if progress.is_cancelled() {
            return false;
        }
        let key_end = (key_start + KEY_BLOCK).min(n);
        let keys = PackedKeys::pack_range(features, dim, key_start, key_end);
        topk::merge_best(features, &rows, true, &keys, k, best_indices, best_sims);
        progress.send(ProgressEvent::Advanced {
            stage: Stage::Outliers,
            done: key_end as u64,
        });
    }
    true
}

/// [`exact`] as tiled matrix products on `device`, each tile merged on the CPU in
/// parallel; `false` when cancelled.
fn exact_on_device(
    features: &[f32],
    dim: usize,
    k: usize,
    device: &Device,
    progress: &Progress,
    best_indices: &mut [u32],
    best_sims: &mut [f32],
) -> bool {
    let n = features.len() / dim;
    let all = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [n, dim]), device);
    for key_start in (0..n).step_by(KEY_BLOCK) {
        let key_end = (key_start + KEY_BLOCK).min(n);
        let keys_t = all.clone().slice([key_start..key_end, 0..dim]).transpose();
        for query_start in (0..n).step_by(QUERY_BLOCK) {
            if progress.is_cancelled() {
                return false;
            }
            let query_end = (query_start + QUERY_BLOCK).min(n);
            let tile = all
                .clone()
                .slice([query_start..query_end, 0..dim])
                .matmul(keys_t.clone())
                .into_data()
                .try_into_vec::<f32>()
                .expect("a float tensor downloads as f32");
            let width = key_end - key_start;
            best_indices[query_start * k..query_end * k]
                .par_chunks_mut(k)
                .zip(best_sims[query_start * k..query_end * k].par_chunks_mut(k))
                .enumerate()
                .for_each(|(local, (indices, sims))| {
                    let row = query_start + local;
                    let tile_row = &tile[local * width..(local + 1) * width];
                    merge_row(row, tile_row, |offset| key_start + offset, indices, sims);
                });
            if key_start == 0 {
                progress.send(ProgressEvent::Advanced {
                    stage: Stage::Outliers,
                    done: query_end as u64,
                });
            }
        }
    }
    true
}

/// The k-NN graph of the rows of `features` (`n × dim`, L2-normalised): [`exact`] up to
/// [`EXACT_LIMIT`] rows, an IVF search at [`DEFAULT_NPROBE`] beyond. The IVF lists are the
/// clusters of `clusters` when it is a clustering of these rows (share the one SemDeDup
/// fitted), otherwise of a spherical k-means with one cluster per thousand rows
/// (mini-batch when large).
#[must_use]
pub fn graph(
    features: &[f32],
    dim: usize,
    k: usize,
    clusters: Option<&KMeans>,
    device: &Device,
    progress: &Progress,
) -> Neighbours {
    let n = features.len() / dim.max(1);
    if n <= EXACT_LIMIT {
        exact(features, dim, k, device, progress)
    } else {
        approximate(features, dim, k, clusters, device, progress)
    }
}

/// The IVF half of [`graph`], whatever the number of rows.
fn approximate(
    features: &[f32],
    dim: usize,
    k: usize,
    clusters: Option<&KMeans>,
    device: &Device,
    progress: &Progress,
) -> Neighbours {
    let n = features.len() / dim.max(1);
    let clusters = match clusters {
        Some(c) if c.dim == dim && c.assignment.len() == n => c.clone(),
        _ => {
            let params = Params::spherical(n, (n / ROWS_PER_LIST).max(1));
            kmeans::fit_with(features, dim, &params, device)
        }
    };
    Ivf::build(features, dim, clusters).graph(features, k, DEFAULT_NPROBE, device, progress)
}

/// Merges one tile row (similarities of `row` to the keys `column(0..)`) into the row's
/// best-k lists, sorted best first; the row itself is skipped (pass `usize::MAX` for a
/// query that is not an indexed row).
pub(crate) fn merge_row(
    row: usize,
    tile_row: &[f32],
    column: impl Fn(usize) -> usize,
    indices: &mut [u32],
    sims: &mut [f32],
) {
    let k = indices.len();
    let mut worst = sims[k - 1];
    for (offset, &sim) in tile_row.iter().enumerate() {
        if sim <= worst {
            continue;
        }
        let column = column(offset);
        if column == row {
            continue;
        }
        let mut at = k - 1;
        while at > 0 && sims[at - 1] < sim {
            sims[at] = sims[at - 1];
            indices[at] = indices[at - 1];
            at -= 1;
        }
        sims[at] = sim;
        indices[at] = column as u32;
        worst = sims[k - 1];
    }
}

/// Outlier score per row: the cosine distance (1 − similarity) to the `k`-th nearest
/// neighbour that is not in the row's own duplicate group (`group[row] >= 0` names it), so
/// that copies of an unusual image do not hide it. Rows with fewer neighbours than that fall
/// back to their farthest stored one.
#[must_use]
pub fn outlier_scores(neighbours: &Neighbours, group: &[i64], k: usize) -> Vec<f32> {
    (0..neighbours.len())
        .into_par_iter()
        .map(|row| {
            let own = group[row];
            let mut others = neighbours
                .of(row)
                .filter(|&(index, _)| own < 0 || group[index as usize] != own);
            let kth = others.nth(k.saturating_sub(1)).map(|(_, s)| s);
            let sim = kth
                .or_else(|| neighbours.of(row).last().map(|(_, s)| s))
                .unwrap_or(0.0);
            (1.0 - sim).max(0.0)
        })
        .collect()
}

/// Outlier score per row: the mean cosine distance to the `k` nearest neighbours outside
/// the row's own duplicate group (smoother than the `k`-th alone; rows with fewer such
/// neighbours average what they have).
#[must_use]
pub fn mean_knn_scores(neighbours: &Neighbours, group: &[i64], k: usize) -> Vec<f32> {
    (0..neighbours.len())
        .into_par_iter()
        .map(|row| {
            let own = group[row];
            let (sum, count) = neighbours
                .of(row)
                .filter(|&(index, _)| own < 0 || group[index as usize] != own)
                .take(k.max(1))
                .fold((0.0_f32, 0_u32), |(s, c), (_, sim)| {
                    (s + (1.0 - sim).max(0.0), c + 1)
                });
            if count == 0 { 1.0 } else { sum / count as f32 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(rows: &[[f32; 3]]) -> Vec<f32> {
        rows.iter()
            .flat_map(|r| {
                let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
                r.map(|v| v / norm)
            })
            .collect()
    }

    #[test]
    fn finds_true_neighbours_and_the_outlier() {
        let rows = [
            [1.0, 0.0, 0.0],
            [0.99, 0.1, 0.0],
            [0.98, 0.0, 0.1],
            [0.97, 0.1, 0.1],
            [0.0, 0.0, 1.0],
        ];
        let features = normalised(&rows);
        let result = exact(&features, 3, 2, &Device::flex(), &Progress::silent());
        let first: Vec<u32> = result.of(0).map(|(i, _)| i).collect();
        assert_eq!(first.len(), 2);
        assert!(!first.contains(&0) && !first.contains(&4));
        let scores = outlier_scores(&result, &[-1; 5], 2);
        let top = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(top, Some(4));
    }

    #[test]
    fn duplicates_do_not_hide_an_outlier() {
        let rows = [
            [1.0, 0.0, 0.0],
            [0.99, 0.1, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.01, 1.0],
        ];
        let features = normalised(&rows);
        let result = exact(&features, 3, 3, &Device::flex(), &Progress::silent());
        let scores = outlier_scores(&result, &[-1, -1, 0, 0], 1);
        assert!(scores[2] > 0.5 && scores[3] > 0.5, "{scores:?}");
        assert!(scores[0] < 0.1);
    }

    #[test]
    fn graph_is_exact_up_to_the_limit() {
        let features = crate::analysis::kmeans::tests::clustered_unit_rows(3_000, 16, 6, 2.0, 1);
        let device = Device::flex();
        let silent = Progress::silent();
        assert_eq!(
            graph(&features, 16, 8, None, &device, &silent),
            exact(&features, 16, 8, &device, &silent)
        );
    }

    #[test]
    fn approximate_graph_clusters_when_not_given_a_clustering() {
        let (n, dim) = (20_000, 32);
        let features = crate::analysis::kmeans::tests::clustered_unit_rows(n, dim, 40, 2.0, 2);
        let device = Device::flex();
        let silent = Progress::silent();
        let truth = exact(&features, dim, 10, &device, &silent);
        // A clustering of other rows is ignored: the graph fits its own 20 lists.
        let other = kmeans::fit(&features[..1_000 * dim], dim, 5, 5, 1, &device);
        let found = approximate(&features, dim, 10, Some(&other), &device, &silent);
        let shared: usize = (0..n)
            .map(|row| {
                let want: Vec<u32> = truth.of(row).map(|(i, _)| i).collect();
                found.of(row).filter(|(i, _)| want.contains(i)).count()
            })
            .sum();
        let recall = shared as f64 / (n * 10) as f64;
        println!("knn::graph (IVF, own clustering) recall@10: {recall:.4}");
        assert!(recall >= 0.9, "{recall}");
    }
}
