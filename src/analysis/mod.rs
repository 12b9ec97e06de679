//! Per-image signals and dataset-wide analysis.
//!
//! Per image (in the decode pass): the perceptual hash ([`phash`]) and quality measures
//! ([`quality`]). Per dataset: duplicate groups ([`dedup`]), nearest neighbours and outlier
//! scores ([`knn`]), the 2-D layout ([`pca`]) and the keep/drop decision ([`keep`]).

pub mod dedup;
pub mod ensemble;
pub mod ivf;
pub mod keep;
pub mod kmeans;
pub mod knn;
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
