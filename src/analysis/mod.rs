//! Per-image signals and dataset-wide analysis.
//!
//! Per image (in the decode pass): the perceptual hash ([`phash`]) and quality measures
//! ([`quality`]). Per dataset: duplicate groups ([`dedup`]), nearest neighbours and outlier
//! scores ([`knn`]), the 2-D layout ([`pca`]) and the keep/drop decision ([`keep`]).

pub mod classes;
pub mod dedup;
pub mod ensemble;
pub mod ivf;
pub mod keep;
pub mod kmeans;
pub mod knn;
pub mod linalg;
pub mod mahalanobis;
pub mod minhash;
pub mod pca;
pub mod phash;
pub mod quality;
pub mod rarity;
pub mod semdedup;
pub mod topk;
pub mod umap;
pub mod verify;

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative (ties count half).
#[must_use]
pub fn auroc(positive: &[f32], negative: &[f32]) -> f64 {
    if positive.is_empty() || negative.is_empty() {
        return 0.0;
    }
    let mut sorted = negative.to_vec();
    sorted.sort_by(f32::total_cmp);
    let total: f64 = positive
        .iter()
        .map(|&p| {
            let below = sorted.partition_point(|&n| n < p);
            let not_above = sorted.partition_point(|&n| n <= p);
            below as f64 + (not_above - below) as f64 / 2.0
        })
        .sum();
    total / (positive.len() as f64 * negative.len() as f64)
}
