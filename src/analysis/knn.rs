//! Exact k-nearest neighbours by cosine similarity, as tiled matrix products on burn, and the
//! outlier score built on them.
//!
//! The feature matrix goes to the compute device once; blocks of queries are multiplied
//! against blocks of keys (`Q · Kᵀ`), and each tile's best `k` per row are merged on the CPU
//! in parallel. Memory stays at one tile, whatever N is.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::progress::{Progress, ProgressEvent, Stage};

/// Neighbours kept per image: enough to skip an image's own duplicates and still have
/// [`DEFAULT_OUTLIER_K`] left.
pub const STORED_NEIGHBOURS: usize = 16;
/// The `k` of the default outlier score, the distance to the k-th nearest neighbour
/// (Sun et al. 2022 use k between 1 and 50; 5 is robust on small data sets).
pub const DEFAULT_OUTLIER_K: usize = 5;

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
    let all = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [n, dim]), device);
    for key_start in (0..n).step_by(KEY_BLOCK) {
        let key_end = (key_start + KEY_BLOCK).min(n);
        let keys_t = all.clone().slice([key_start..key_end, 0..dim]).transpose();
        for query_start in (0..n).step_by(QUERY_BLOCK) {
            if progress.is_cancelled() {
                return Neighbours {
                    k,
                    indices: best_indices,
                    similarities: best_sims,
                };
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
                    merge_row(row, key_start, tile_row, indices, sims);
                });
            if key_start == 0 {
                progress.send(ProgressEvent::Advanced {
                    stage: Stage::Outliers,
                    done: query_end as u64,
                });
            }
        }
    }
    progress.send(ProgressEvent::Finished {
        stage: Stage::Outliers,
    });
    Neighbours {
        k,
        indices: best_indices,
        similarities: best_sims,
    }
}

/// Merges one tile row into a row's sorted best-k lists.
fn merge_row(
    row: usize,
    key_start: usize,
    tile_row: &[f32],
    indices: &mut [u32],
    sims: &mut [f32],
) {
    let k = indices.len();
    let mut worst = sims[k - 1];
    for (offset, &sim) in tile_row.iter().enumerate() {
        let column = key_start + offset;
        if sim <= worst || column == row {
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
}
