//! k-means (Lloyd's iterations from a k-means++ start) on burn: assignments are one matrix
//! product per tile of rows (`‖x‖² − 2 x·c + ‖c‖²`), centroid updates a parallel sum on the
//! CPU. Deterministic for a seed.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

/// Rows per assignment tile (bounds the `tile × k` distance matrix and the upload).
const TILE: usize = 65_536;
/// Rows the k-means++ start samples from.
const INIT_SAMPLE: usize = 20_000;

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

use crate::rng::SplitMix64 as Rng;

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ seeding on a sample of the rows.
fn seed(features: &[f32], dim: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = features.len() / dim;
    let step = n.div_ceil(INIT_SAMPLE).max(1);
    let sample: Vec<&[f32]> = features.chunks_exact(dim).step_by(step).collect();
    let mut centroids = Vec::with_capacity(k * dim);
    let first = (rng.next_u64() % sample.len() as u64) as usize;
    centroids.extend_from_slice(sample[first]);
    let mut nearest: Vec<f32> = sample
        .par_iter()
        .map(|row| squared_distance(row, sample[first]))
        .collect();
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
        nearest
            .par_iter_mut()
            .zip(&sample)
            .for_each(|(d, row)| *d = d.min(squared_distance(row, chosen)));
    }
    centroids
}

/// The nearest centroid of every row.
#[must_use]
pub fn assign(features: &[f32], dim: usize, centroids: &[f32], device: &Device) -> Vec<u32> {
    let k = centroids.len() / dim;
    let c = Tensor::<2>::from_data(TensorData::new(centroids.to_vec(), [k, dim]), device);
    let c_norm = c.clone().mul(c.clone()).sum_dim(1).reshape([1, k]);
    let ct = c.transpose();
    let mut out = Vec::with_capacity(features.len() / dim);
    for tile in features.chunks(TILE * dim) {
        let rows = tile.len() / dim;
        let x = Tensor::<2>::from_data(TensorData::new(tile.to_vec(), [rows, dim]), device);
        // ‖x‖² is the same for every centroid of a row: it does not change the argmin.
        let d = c_norm.clone() - x.matmul(ct.clone()).mul_scalar(2.0);
        let best: Tensor<2, Int> = d.argmin(1);
        let best: Vec<i64> = best
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .expect("an int tensor downloads as i64");
        out.extend(best.into_iter().map(|b| b as u32));
    }
    out
}

/// Fits `k` clusters to the rows of `features` (`n × dim`) with `iterations` Lloyd steps
/// (fewer when the assignment stops changing).
#[must_use]
pub fn fit(
    features: &[f32],
    dim: usize,
    k: usize,
    iterations: usize,
    seed_value: u64,
    device: &Device,
) -> KMeans {
    let n = features.len() / dim.max(1);
    let k = k.clamp(1, n.max(1));
    if n == 0 {
        return KMeans {
            k,
            dim,
            centroids: vec![0.0; k * dim],
            assignment: Vec::new(),
        };
    }
    let mut rng = Rng::new(seed_value, 0);
    let mut centroids = seed(features, dim, k, &mut rng);
    let mut assignment = assign(features, dim, &centroids, device);
    for _ in 0..iterations {
        // New centroids: the mean of each cluster's rows (an empty cluster keeps its place).
        let (sums, counts) = features
            .par_chunks_exact(dim)
            .zip(&assignment)
            .fold(
                || (vec![0.0_f64; k * dim], vec![0_u64; k]),
                |(mut sums, mut counts), (row, &c)| {
                    let c = c as usize;
                    counts[c] += 1;
                    for (s, v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                        *s += f64::from(*v);
                    }
                    (sums, counts)
                },
            )
            .reduce(
                || (vec![0.0_f64; k * dim], vec![0_u64; k]),
                |(mut a, mut ca), (b, cb)| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    ca.iter_mut().zip(cb).for_each(|(x, y)| *x += y);
                    (a, ca)
                },
            );
        for c in 0..k {
            if counts[c] > 0 {
                for j in 0..dim {
                    centroids[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                }
            }
        }
        let next = assign(features, dim, &centroids, device);
        let changed = next.iter().zip(&assignment).filter(|(a, b)| a != b).count();
        assignment = next;
        if changed == 0 {
            break;
        }
    }
    KMeans {
        k,
        dim,
        centroids,
        assignment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_well_apart_blobs() {
        // Three blobs in 2-D, 50 points each.
        let mut rng = Rng::new(3, 0);
        let centres = [[0.0_f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut features = Vec::new();
        for i in 0..150 {
            let c = centres[i % 3];
            features.push(c[0] + rng.unit() - 0.5);
            features.push(c[1] + rng.unit() - 0.5);
        }
        let fitted = fit(&features, 2, 3, 20, 7, &Device::flex());
        // Rows of one blob share a cluster; the three blobs have three clusters.
        for blob in 0..3 {
            let first = fitted.assignment[blob];
            assert!(
                (blob..150)
                    .step_by(3)
                    .all(|i| fitted.assignment[i] == first)
            );
        }
        let mut ids: Vec<u32> = fitted.assignment[..3].to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert_eq!(fitted, fit(&features, 2, 3, 20, 7, &Device::flex()));
    }
}
