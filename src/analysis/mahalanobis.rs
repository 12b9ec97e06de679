//! Mahalanobis outlier score, as Lee et al. (2018) define it for a classifier's features:
//! the distance to the nearest class mean under one shared ("tied") covariance. curate has
//! no classes, so k-means clusters of the embeddings stand in for them (a single Gaussian
//! over clustered data misses points between clusters). Clusters smaller than a quarter of
//! the average (at least `MIN_CLASS_SIZE`) are not classes: a small cluster of outliers
//! (ten blank frames among ten thousand photos) is measured from the real classes.
//!
//! The tied covariance `Σ` of the residuals `x − μ(cluster of x)` is a burn matrix product,
//! shrunk toward its mean variance (`(1 − α) Σ + α·tr(Σ)/d · I`, α = [`SHRINKAGE`]) so it
//! is invertible with fewer rows than dimensions. With `L` its Cholesky factor, rows and
//! means are whitened once (`z = L⁻¹ x`) and the score is `min_c ‖z − L⁻¹ μ_c‖`: one
//! matrix product against the `k` whitened means.

use burn::tensor::{Device, Tensor, TensorData};

use super::{kmeans, linalg};

/// Weight of the identity in the shrunk covariance.
pub const SHRINKAGE: f64 = 0.1;
/// Rows per cluster the number of clusters aims at (at most [`MAX_CLUSTERS`]).
const ROWS_PER_CLUSTER: usize = 50;
/// Most clusters fitted.
const MAX_CLUSTERS: usize = 32;
/// Fewest members of a cluster that counts as a class (see [`scores`]).
const MIN_CLASS_SIZE: usize = 12;
/// Rows per tile of the final distances.
const TILE: usize = 65_536;

fn download(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .try_into_vec()
        .expect("a float tensor downloads as f32")
}

/// The Mahalanobis score of each row of `features` (`n × dim`).
#[must_use]
pub fn scores(features: &[f32], dim: usize, device: &Device) -> Vec<f32> {
    let n = features.len() / dim.max(1);
    if n == 0 || dim == 0 {
        return Vec::new();
    }
    let k = (n / ROWS_PER_CLUSTER).clamp(1, MAX_CLUSTERS);
    let clusters = kmeans::fit(features, dim, k, 10, 0x5EED, device);
    let residuals: Vec<f32> = features
        .chunks_exact(dim)
        .zip(&clusters.assignment)
        .flat_map(|(row, &c)| {
            let mean = &clusters.centroids[c as usize * dim..(c as usize + 1) * dim];
            row.iter().zip(mean).map(|(v, m)| v - m)
        })
        .collect();
    let r = Tensor::<2>::from_data(TensorData::new(residuals, [n, dim]), device);
    let gram = download(r.clone().transpose().matmul(r));
    let mut cov: Vec<f64> = gram.iter().map(|&v| f64::from(v) / n as f64).collect();
    let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum::<f64>() / dim as f64;
    let ridge = SHRINKAGE * trace.max(1e-12);
    for (i, c) in cov.iter_mut().enumerate() {
        *c *= 1.0 - SHRINKAGE;
        if i / dim == i % dim {
            *c += ridge;
        }
    }
    let l_inv = linalg::lower_inverse(&linalg::cholesky(&cov, dim), dim);
    // Whitening as a right product: z = x · L⁻ᵀ.
    let l_inv_t: Vec<f32> = (0..dim * dim)
        .map(|i| l_inv[(i % dim) * dim + i / dim] as f32)
        .collect();
    let w = Tensor::<2>::from_data(TensorData::new(l_inv_t, [dim, dim]), device);
    // Only clusters of a fair size stand for classes: k-means gives a handful of outliers
    // alike among themselves (ten blank frames) a centre of their own, and their distance
    // to it says nothing about belonging to the data.
    let mut sizes = vec![0_usize; clusters.k];
    for &c in &clusters.assignment {
        sizes[c as usize] += 1;
    }
    let least = (n / (4 * clusters.k))
        .max(MIN_CLASS_SIZE)
        .min(*sizes.iter().max().unwrap_or(&0));
    let centres: Vec<f32> = clusters
        .centroids
        .chunks_exact(dim)
        .zip(&sizes)
        .filter(|&(_, &size)| size >= least)
        .flat_map(|(c, _)| c.iter().copied())
        .collect();
    let classes = centres.len() / dim;
    let means =
        Tensor::<2>::from_data(TensorData::new(centres, [classes, dim]), device).matmul(w.clone());
    let mean_norms = means
        .clone()
        .mul(means.clone())
        .sum_dim(1)
        .reshape([1, classes]);
    let means_t = means.transpose();
    let mut out = Vec::with_capacity(n);
    for tile in features.chunks(TILE * dim) {
        let rows = tile.len() / dim;
        let z = Tensor::<2>::from_data(TensorData::new(tile.to_vec(), [rows, dim]), device)
            .matmul(w.clone());
        let z_norms = z.clone().mul(z.clone()).sum_dim(1);
        let d2 = z_norms + mean_norms.clone() - z.matmul(means_t.clone()).mul_scalar(2.0);
        out.extend(
            download(d2.min_dim(1))
                .into_iter()
                .map(|v| v.max(0.0).sqrt()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_each_direction_by_its_spread() {
        // Two blobs (so k-means finds 2 clusters), each 4 wide and 1 high, 20 apart; and
        // two probes near the first: 3 past its narrow side, 5 past its wide side.
        let mut features = Vec::new();
        for blob in [0.0_f32, 20.0] {
            for i in 0..50 {
                let a = ((i % 10) as f32 - 4.5) / 4.5 * 2.0;
                let b = ((i / 10) as f32 - 2.0) / 2.0 * 0.5;
                features.extend_from_slice(&[a, blob + b]);
            }
        }
        features.extend_from_slice(&[0.0, 3.0, 7.0, 0.0]);
        let s = scores(&features, 2, &Device::flex());
        let (past_narrow, past_wide) = (s[100], s[101]);
        let inliers = s[..100].iter().copied().fold(0.0, f32::max);
        assert!(past_narrow > past_wide, "{past_narrow} vs {past_wide}");
        assert!(past_wide > inliers, "{past_wide} vs {inliers}");
    }
}
