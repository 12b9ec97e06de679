//! Semantic deduplication, SemDeDup-style (Abbas et al. 2023): cluster the embeddings with
//! k-means, then compare every pair *within* each cluster (the fused kernel of
//! [`super::topk`] on the CPU, tiled matrix products on a GPU; no N×N matrix;
//! near-duplicates almost always share a cluster) and keep the pairs at or
//! above a similarity floor. Groups for a threshold `1 − ε` come from those cached pairs
//! without re-clustering.

use burn::tensor::{Device, Tensor, TensorData};

use super::kmeans::{self, KMeans};
use super::topk;

/// Rows per cluster the number of clusters aims at.
pub const ROWS_PER_CLUSTER: usize = 1_000;
/// The lowest similarity whose pairs are kept by default (the threshold can then move down
/// to it without re-clustering).
pub const DEFAULT_FLOOR: f32 = 0.9;
/// Rows of one side of a similarity tile.
const TILE: usize = 4_096;

/// A pair of rows and their cosine similarity (`a < b`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    /// The first row.
    pub a: u32,
    /// The second row.
    pub b: u32,
    /// Cosine similarity.
    pub similarity: f32,
}

/// The clusters and every within-cluster pair at or above the floor.
#[derive(Clone, Debug)]
pub struct SemDeDup {
    /// The k-means clustering.
    pub clusters: KMeans,
    /// Pairs, most similar first.
    pub pairs: Vec<Pair>,
}

/// The number of clusters for `n` rows.
#[must_use]
pub fn default_clusters(n: usize) -> usize {
    (n / ROWS_PER_CLUSTER).max(1)
}

/// Clusters `features` (`n × dim`, unit rows) into `k` clusters and collects the
/// within-cluster pairs with cosine ≥ `floor`.
#[must_use]
pub fn run(features: &[f32], dim: usize, floor: f32, k: usize, device: &Device) -> SemDeDup {
    let clusters = kmeans::fit(features, dim, k, 10, 0x5E3D, device);
    let pairs = pairs_within(features, dim, floor, &clusters, device);
    SemDeDup { clusters, pairs }
}

/// Every pair of rows in the same cluster of `clusters` with cosine ≥ `floor`, most
/// similar first (one tiled product per cluster; no N×N matrix).
#[must_use]
pub fn pairs_within(
    features: &[f32],
    dim: usize,
    floor: f32,
    clusters: &KMeans,
    device: &Device,
) -> Vec<Pair> {
    let lists = clusters.lists();
    let members = lists.iter().filter(|m| m.len() > 1);
    let mut pairs: Vec<Pair> = if *device == Device::flex() {
        // The fused CPU kernel: upper triangle only, no similarity matrix (see `topk`).
        members
            .flat_map(|rows| topk::pairs_at_least(features, dim, rows, floor))
            .map(|(a, b, similarity)| Pair {
                a: a.min(b),
                b: a.max(b),
                similarity,
            })
            .collect()
    } else {
        members
            .flat_map(|rows| pairs_on_device(features, dim, rows, floor, device))
            .collect()
    };
    pairs.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    pairs
}

/// The pairs of `rows` (ascending) with similarity ≥ `floor`, by tiled products on `device`.
fn pairs_on_device(
    features: &[f32],
    dim: usize,
    rows: &[u32],
    floor: f32,
    device: &Device,
) -> Vec<Pair> {
    let matrix: Vec<f32> = rows
        .iter()
        .flat_map(|&r| {
            features[r as usize * dim..(r as usize + 1) * dim]
                .iter()
                .copied()
        })
        .collect();
    let m = rows.len();
    let all = Tensor::<2>::from_data(TensorData::new(matrix.clone(), [m, dim]), device);
    let mut pairs = Vec::new();
    for start in (0..m).step_by(TILE) {
        let end = (start + TILE).min(m);
        let tile = Tensor::<2>::from_data(
            TensorData::new(matrix[start * dim..end * dim].to_vec(), [end - start, dim]),
            device,
        );
        let sims: Vec<f32> = tile
            .matmul(all.clone().transpose())
            .into_data()
            .try_into_vec()
            .expect("a float tensor downloads as f32");
        for (i, row) in sims.chunks_exact(m).enumerate() {
            let a = start + i;
            for (b, &s) in row.iter().enumerate().skip(a + 1) {
                if s >= floor {
                    pairs.push(Pair {
                        a: rows[a],
                        b: rows[b],
                        similarity: s,
                    });
                }
            }
        }
    }
    pairs
}

impl SemDeDup {
    /// Star-shaped links for threshold `1 − epsilon`, visiting rows in `priority` order
    /// (best keeper candidates first): each row not yet taken claims its partners at or
    /// above the threshold that are neither taken nor claiming; similarity never chains.
    #[must_use]
    pub fn links(&self, epsilon: f32, priority: &[u32]) -> Vec<(u32, u32)> {
        let threshold = 1.0 - epsilon;
        let n = self.clusters.assignment.len();
        let mut partners: Vec<Vec<u32>> = vec![Vec::new(); n];
        for p in self.pairs.iter().take_while(|p| p.similarity >= threshold) {
            partners[p.a as usize].push(p.b);
            partners[p.b as usize].push(p.a);
        }
        star_links(&partners, priority.iter().map(|&p| p as usize))
    }
}

/// Star-shaped links over `partners` (each row's similar rows), visiting rows in `order`:
/// a row not yet taken claims its partners that are neither taken nor claiming themselves,
/// so similarity never chains (`a ~ b ~ c` does not put `a` and `c` together through `b`).
/// Returns `(claimer, claimed)` pairs.
#[must_use]
pub fn star_links(
    partners: &[Vec<u32>],
    order: impl IntoIterator<Item = usize>,
) -> Vec<(u32, u32)> {
    let n = partners.len();
    let mut taken = vec![false; n];
    let mut centre = vec![false; n];
    let mut links = Vec::new();
    for i in order {
        if taken[i] {
            continue;
        }
        for &j in &partners[i] {
            let j = j as usize;
            if j != i && !taken[j] && !centre[j] {
                taken[j] = true;
                centre[i] = true;
                links.push((i as u32, j as u32));
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    /// 600 random base vectors in 48-d, each with 0–3 jittered copies at cosine ≈ 0.97;
    /// at ε = 0.05 the planted pairs are found (recall ≥ 0.95) and nothing else is
    /// (precision ≥ 0.95); a cluster of 40 copies of one image forms one group.
    #[test]
    fn finds_the_planted_semantic_duplicates() {
        const DIM: usize = 48;
        let mut rng = SplitMix64::new(11, 0);
        let mut features = Vec::new();
        let mut family = Vec::new();
        for base in 0..600_u32 {
            let b: Vec<f32> = unit((0..DIM).map(|_| rng.gauss()).collect());
            features.extend(&b);
            family.push(base);
            let copies = if base == 0 { 40 } else { base as usize % 4 };
            for _ in 0..copies {
                // Noise of norm ~0.17 around a unit vector: cosine ≈ 0.985 with the base,
                // ≈ 0.97 between two copies.
                let c = unit(b.iter().map(|x| x + 0.025 * rng.gauss()).collect());
                features.extend(c);
                family.push(base);
            }
        }
        let n = family.len();
        // Eight clusters, so pairs are only looked for within each.
        let result = run(&features, DIM, 0.9, 8, &Device::flex());
        assert_eq!(result.clusters.k, 8);
        let found: Vec<(u32, u32)> = result
            .pairs
            .iter()
            .filter(|p| p.similarity >= 0.95)
            .map(|p| (p.a, p.b))
            .collect();
        let true_pairs: usize = {
            let mut sizes = std::collections::HashMap::new();
            for &f in &family {
                *sizes.entry(f).or_insert(0_usize) += 1;
            }
            sizes.values().map(|s| s * (s - 1) / 2).sum()
        };
        let correct = found
            .iter()
            .filter(|(a, b)| family[*a as usize] == family[*b as usize])
            .count();
        let recall = correct as f64 / true_pairs as f64;
        let precision = correct as f64 / found.len().max(1) as f64;
        println!("recall {recall:.4} precision {precision:.4} ({true_pairs} planted pairs)");
        assert!(recall >= 0.95, "recall {recall}");
        assert!(precision >= 0.95, "precision {precision}");

        // Groups from star links: the 41 images of family 0 end up with one claimer.
        let priority: Vec<u32> = (0..n as u32).collect();
        let links = result.links(0.05, &priority);
        let claimed_by_first = links.iter().filter(|(c, _)| *c == 0).count();
        assert_eq!(claimed_by_first, 40);
        // A stricter ε links fewer.
        assert!(result.links(0.001, &priority).len() < links.len());

        // The matrix-product path a GPU takes (lavapipe here) finds the same pairs.
        let gpu = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        let on_gpu = pairs_within(&features, DIM, 0.9, &result.clusters, &gpu);
        let key = |p: &Pair| (p.a, p.b);
        let mut cpu_pairs: Vec<(u32, u32)> = result.pairs.iter().map(key).collect();
        let mut gpu_pairs: Vec<(u32, u32)> = on_gpu.iter().map(key).collect();
        cpu_pairs.sort_unstable();
        gpu_pairs.sort_unstable();
        assert_eq!(cpu_pairs, gpu_pairs);
    }
}
