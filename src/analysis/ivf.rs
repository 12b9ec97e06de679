//! Inverted-file (IVF) approximate nearest neighbours on the k-means clusters.
//!
//! Every indexed row sits in the list of its cluster; a query scans only the lists of its
//! `nprobe` nearest centroids. Work is done list by list, not query by query: the queries
//! that probe a list form one block against the list's rows. On the CPU the list is packed
//! once and the fused kernel of [`super::topk`] keeps each query's best `k`; on a GPU the
//! block is multiplied by the list's rows (`Q · Mᵀ`, tiled, on burn) and the tiles are
//! merged on the CPU in parallel. Only blocks of the feature matrix are copied, so memory
//! stays bounded whatever N is.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::kmeans::{self, KMeans};
use super::knn::{Neighbours, merge_row};
use super::topk::{self, PackedKeys};
use crate::progress::{Progress, ProgressEvent, Stage};

/// Lists each query scans by default. On clustered unit rows: recall@10 0.96 with lists of
/// 100 rows (the tests), 0.999 at 100k and 1M × 512 with lists of about 1000 (0.97–0.98
/// at 4 probes); one unclustered Gaussian blob still gives 0.95 (20 lists of 1000).
pub const DEFAULT_NPROBE: usize = 8;

/// Most similarities in one query-block × key-block tile (32 MB).
const TILE_ELEMENTS: usize = 1 << 23;
/// Most list rows per key block.
const KEY_BLOCK: usize = 16_384;
/// Most queries per query block.
const QUERY_BLOCK: usize = 8_192;

/// An inverted-file index: the clustering's centroids and each cluster's rows.
#[derive(Clone, Debug)]
pub struct Ivf {
    clusters: KMeans,
    lists: Vec<Vec<u32>>,
}

impl Ivf {
    /// Indexes the rows of `features` (`n × dim`, unit rows) in the lists of `clusters`, a
    /// clustering of these very rows (its assignment names each row's list).
    ///
    /// # Panics
    ///
    /// When `clusters` is not a clustering of `n` rows of width `dim`.
    #[must_use]
    pub fn build(features: &[f32], dim: usize, clusters: KMeans) -> Self {
        let n = features.len() / dim.max(1);
        assert_eq!(clusters.dim, dim, "the clustering has another row width");
        assert_eq!(
            clusters.assignment.len(),
            n,
            "the clustering must be of the indexed rows"
        );
        let lists = clusters.lists();
        Self { clusters, lists }
    }

    /// Number of inverted lists (clusters).
    #[must_use]
    pub fn nlist(&self) -> usize {
        self.lists.len()
    }

    /// The clustering the lists come from.
    #[must_use]
    pub fn clusters(&self) -> &KMeans {
        &self.clusters
    }

    /// The `k` nearest indexed rows of every unit row of `queries` (`m × dim`) by cosine
    /// similarity, best first, scanning the `nprobe` lists nearest each query. `features` are
    /// the indexed rows, as given to [`Self::build`].
    ///
    /// # Panics
    ///
    /// When `features` are not the indexed rows' `n × dim` values.
    #[must_use]
    pub fn search(
        &self,
        features: &[f32],
        queries: &[f32],
        k: usize,
        nprobe: usize,
        device: &Device,
    ) -> Neighbours {
        self.scan(
            features,
            queries,
            k,
            nprobe,
            false,
            device,
            &Progress::silent(),
        )
    }

    /// The approximate k-NN graph of the indexed rows (each row's `k` most similar others,
    /// best first), like [`super::knn::exact`]. Reports [`Stage::Outliers`] progress and
    /// returns what it has when cancelled (rows not yet reached are padding).
    ///
    /// # Panics
    ///
    /// When `features` are not the indexed rows' `n × dim` values.
    #[must_use]
    pub fn graph(
        &self,
        features: &[f32],
        k: usize,
        nprobe: usize,
        device: &Device,
        progress: &Progress,
    ) -> Neighbours {
        self.scan(features, features, k, nprobe, true, device, progress)
    }

    /// The k-NN of `queries` among `features`, list by list; with `exclude_self`, query `i`
    /// is indexed row `i` and never its own neighbour.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        features: &[f32],
        queries: &[f32],
        k: usize,
        nprobe: usize,
        exclude_self: bool,
        device: &Device,
        progress: &Progress,
    ) -> Neighbours {
        let dim = self.clusters.dim;
        let n = self.clusters.assignment.len();
        assert_eq!(features.len(), n * dim, "features must be the indexed rows");
        let m = queries.len() / dim.max(1);
        let mut indices = vec![u32::MAX; m * k];
        let mut similarities = vec![f32::NEG_INFINITY; m * k];
        if m == 0 || k == 0 || n == 0 || self.lists.is_empty() {
            return Neighbours {
                k,
                indices,
                similarities,
            };
        }
        let stage = Stage::Outliers;
        progress.send(ProgressEvent::Started {
            stage,
            total: m as u64,
        });
        let nprobe = nprobe.clamp(1, self.nlist());
        let probes =
            kmeans::nearest_centroids(queries, dim, &self.clusters.centroids, nprobe, device);
        let (offsets, probers) = invert(&probes, nprobe, self.nlist());
        if progress.is_cancelled() {
            return Neighbours {
                k,
                indices,
                similarities,
            };
        }
        // Progress counts queries in proportion to the matrix products done.
        let cost: Vec<f64> = (0..self.nlist())
            .map(|c| (offsets[c + 1] - offsets[c]) as f64 * self.lists[c].len() as f64)
            .collect();
        let total_cost: f64 = cost.iter().sum::<f64>().max(1.0);
        let mut done_cost = 0.0;
        // On the CPU the fused kernel beats a matrix product plus a merge pass (2.4× at
        // 8,192 × 1,000 × 512); on a GPU the product runs on the device.
        let cpu = *device == Device::flex();
        for (c, list) in self.lists.iter().enumerate() {
            let block = &probers[offsets[c]..offsets[c + 1]];
            if list.is_empty() || block.is_empty() {
                continue;
            }
            if cpu {
                merge_on_cpu(
                    features,
                    queries,
                    dim,
                    list,
                    block,
                    exclude_self,
                    k,
                    &mut indices,
                    &mut similarities,
                );
            } else {
                for keys in list.chunks(KEY_BLOCK) {
                    let keys_t = upload(gather(features, dim, keys), dim, device).transpose();
                    let query_block = (TILE_ELEMENTS / keys.len()).clamp(1, QUERY_BLOCK);
                    for rows in block.chunks(query_block) {
                        let tile: Vec<f32> = upload(gather(queries, dim, rows), dim, device)
                            .matmul(keys_t.clone())
                            .into_data()
                            .try_into_vec()
                            .expect("a float tensor downloads as f32");
                        merge_tile(
                            rows,
                            keys,
                            &tile,
                            exclude_self,
                            &mut indices,
                            &mut similarities,
                            k,
                        );
                    }
                }
            }
            if progress.is_cancelled() {
                return Neighbours {
                    k,
                    indices,
                    similarities,
                };
            }
            done_cost += cost[c];
            progress.send(ProgressEvent::Advanced {
                stage,
                done: (m as f64 * done_cost / total_cost) as u64,
            });
        }
        progress.send(ProgressEvent::Finished { stage });
        Neighbours {
            k,
            indices,
            similarities,
        }
    }
}

/// The queries of each list: `(offsets, queries)` with list `c`'s queries, ascending, at
/// `queries[offsets[c]..offsets[c + 1]]`, from the `m × nprobe` probes.
fn invert(probes: &[u32], nprobe: usize, nlist: usize) -> (Vec<usize>, Vec<u32>) {
    // Probe `i` belongs to query `i / nprobe`; grouping probes by list keeps them ascending.
    let (offsets, mut queries) = kmeans::members(probes, nlist);
    queries.iter_mut().for_each(|q| *q /= nprobe as u32);
    (offsets, queries)
}

/// Merges a `rows × keys` similarity tile into the rows' best-`k` lists, in parallel over
/// rows: a row appears once in a block, so each is merged into a copy of its list and the
/// copies are written back afterwards.
fn merge_tile(
    rows: &[u32],
    keys: &[u32],
    tile: &[f32],
    exclude_self: bool,
    indices: &mut [u32],
    similarities: &mut [f32],
    k: usize,
) {
    let mut merged_indices = vec![0_u32; rows.len() * k];
    let mut merged_sims = vec![0.0_f32; rows.len() * k];
    {
        let (indices, similarities) = (&*indices, &*similarities);
        merged_indices
            .par_chunks_mut(k)
            .zip(merged_sims.par_chunks_mut(k))
            .zip(rows.par_iter().zip(tile.par_chunks_exact(keys.len())))
            .for_each(|((best, sims), (&row, tile_row))| {
                let row = row as usize;
                best.copy_from_slice(&indices[row * k..(row + 1) * k]);
                sims.copy_from_slice(&similarities[row * k..(row + 1) * k]);
                let own = if exclude_self { row } else { usize::MAX };
                merge_row(own, tile_row, |offset| keys[offset] as usize, best, sims);
            });
    }
    for ((&row, best), sims) in rows
        .iter()
        .zip(merged_indices.chunks_exact(k))
        .zip(merged_sims.chunks_exact(k))
    {
        let row = row as usize;
        indices[row * k..(row + 1) * k].copy_from_slice(best);
        similarities[row * k..(row + 1) * k].copy_from_slice(sims);
    }
}

/// Merges the keys `list` (rows of `features`) into the best lists of the queries `block`
/// (rows of `queries`) with the fused CPU kernel, key block by key block.
#[allow(clippy::too_many_arguments)]
fn merge_on_cpu(
    features: &[f32],
    queries: &[f32],
    dim: usize,
    list: &[u32],
    block: &[u32],
    exclude_self: bool,
    k: usize,
    indices: &mut [u32],
    similarities: &mut [f32],
) {
    let mut block_indices: Vec<u32> = block
        .iter()
        .flat_map(|&q| {
            indices[q as usize * k..(q as usize + 1) * k]
                .iter()
                .copied()
        })
        .collect();
    let mut block_sims: Vec<f32> = block
        .iter()
        .flat_map(|&q| {
            similarities[q as usize * k..(q as usize + 1) * k]
                .iter()
                .copied()
        })
        .collect();
    for keys in list.chunks(KEY_BLOCK) {
        let keys = PackedKeys::pack(features, dim, keys);
        topk::merge_best(
            queries,
            block,
            exclude_self,
            &keys,
            k,
            &mut block_indices,
            &mut block_sims,
        );
    }
    for ((&q, best), sims) in block
        .iter()
        .zip(block_indices.chunks_exact(k))
        .zip(block_sims.chunks_exact(k))
    {
        let q = q as usize;
        indices[q * k..(q + 1) * k].copy_from_slice(best);
        similarities[q * k..(q + 1) * k].copy_from_slice(sims);
    }
}

/// Copies the rows `rows` of `source` (`· × dim`) into one block.
fn gather(source: &[f32], dim: usize, rows: &[u32]) -> Vec<f32> {
    let mut out = vec![0.0_f32; rows.len() * dim];
    out.par_chunks_mut(dim).zip(rows).for_each(|(out, &r)| {
        out.copy_from_slice(&source[r as usize * dim..(r as usize + 1) * dim]);
    });
    out
}

fn upload(rows: Vec<f32>, dim: usize, device: &Device) -> Tensor<2> {
    let n = rows.len() / dim;
    Tensor::<2>::from_data(TensorData::new(rows, [n, dim]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::kmeans::{Params, tests::clustered_unit_rows};
    use crate::analysis::knn;

    /// Mean share of the exact `k` nearest found among the approximate `k` nearest.
    fn recall(exact: &Neighbours, approximate: &Neighbours, k: usize) -> f64 {
        let rows = exact.len();
        let found: usize = (0..rows)
            .map(|row| {
                let truth: Vec<u32> = exact.of(row).take(k).map(|(i, _)| i).collect();
                approximate
                    .of(row)
                    .take(k)
                    .filter(|(i, _)| truth.contains(i))
                    .count()
            })
            .sum();
        found as f64 / (rows * k) as f64
    }

    /// The exact `k` nearest rows of `features` of every query row, best first.
    fn brute_force(features: &[f32], queries: &[f32], dim: usize, k: usize) -> Neighbours {
        let m = queries.len() / dim;
        let mut indices = vec![u32::MAX; m * k];
        let mut similarities = vec![f32::NEG_INFINITY; m * k];
        indices
            .par_chunks_mut(k)
            .zip(similarities.par_chunks_mut(k))
            .zip(queries.par_chunks_exact(dim))
            .for_each(|((best, sims), query)| {
                let row: Vec<f32> = features
                    .chunks_exact(dim)
                    .map(|key| key.iter().zip(query).map(|(a, b)| a * b).sum())
                    .collect();
                merge_row(usize::MAX, &row, |offset| offset, best, sims);
            });
        Neighbours {
            k,
            indices,
            similarities,
        }
    }

    /// 20 000 clustered unit rows of width 64 and an index of 200 lists (100 rows each,
    /// smaller than the thousand of [`knn::graph`], which makes probing harder).
    /// The matrix-product path a GPU takes (lavapipe here) finds what the fused CPU kernel
    /// finds, for the graph and for held-out queries, and so does exact search.
    #[test]
    fn the_device_path_matches_the_cpu_kernel() {
        let (n, dim, k) = (1_500, 24, 6);
        let features = clustered_unit_rows(n, dim, 6, 2.0, 5);
        let queries = clustered_unit_rows(100, dim, 6, 2.0, 6);
        let cpu = Device::flex();
        let gpu = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        let ivf = Ivf::build(
            &features,
            dim,
            kmeans::fit_with(&features, dim, &Params::spherical(n, 12), &cpu),
        );
        let silent = Progress::silent();
        let pairs = [
            (
                ivf.graph(&features, k, 3, &cpu, &silent),
                ivf.graph(&features, k, 3, &gpu, &silent),
            ),
            (
                ivf.search(&features, &queries, k, 3, &cpu),
                ivf.search(&features, &queries, k, 3, &gpu),
            ),
            (
                knn::exact(&features, dim, k, &cpu, &silent),
                knn::exact(&features, dim, k, &gpu, &silent),
            ),
        ];
        for (on_cpu, on_gpu) in pairs {
            assert!(recall(&on_cpu, &on_gpu, k) > 0.995);
            for (a, b) in on_cpu.similarities.iter().zip(&on_gpu.similarities) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    fn indexed(n: usize) -> (Vec<f32>, Ivf) {
        let (dim, nlist) = (64, 200);
        let features = clustered_unit_rows(n, dim, 50, 2.0, 9);
        let params = Params::spherical(n, nlist);
        let clusters = kmeans::fit_with(&features, dim, &params, &Device::flex());
        let ivf = Ivf::build(&features, dim, clusters);
        (features, ivf)
    }

    #[test]
    fn graph_recall_at_the_default_nprobe() {
        let (features, ivf) = indexed(20_000);
        let device = Device::flex();
        let exact = knn::exact(&features, 64, 10, &device, &Progress::silent());
        let (progress, events) = Progress::channel();
        let graph = ivf.graph(&features, 10, DEFAULT_NPROBE, &device, &progress);
        let recall = recall(&exact, &graph, 10);
        println!("graph recall@10 at nprobe {DEFAULT_NPROBE}: {recall:.4}");
        assert!(recall >= 0.9, "{recall}");
        // Each row's own entry never appears; similarities are sorted best first.
        for row in 0..graph.len() {
            let sims: Vec<f32> = graph.of(row).map(|(_, s)| s).collect();
            assert_eq!(sims.len(), 10);
            assert!(sims.windows(2).all(|w| w[0] >= w[1]));
            assert!(graph.of(row).all(|(i, _)| i as usize != row));
        }
        let events: Vec<ProgressEvent> = events.try_iter().collect();
        assert_eq!(
            events.first(),
            Some(&ProgressEvent::Started {
                stage: Stage::Outliers,
                total: 20_000
            })
        );
        assert_eq!(
            events.iter().rev().nth(1),
            Some(&ProgressEvent::Advanced {
                stage: Stage::Outliers,
                done: 20_000
            })
        );
        assert_eq!(
            events.last(),
            Some(&ProgressEvent::Finished {
                stage: Stage::Outliers
            })
        );
    }

    #[test]
    fn search_recall_of_held_out_queries() {
        // The last thousand rows are queries, not indexed.
        let (n, dim) = (20_000, 64);
        let all = clustered_unit_rows(n + 1_000, dim, 50, 2.0, 9);
        let (features, queries) = all.split_at(n * dim);
        let params = Params::spherical(n, 200);
        let device = Device::flex();
        let ivf = Ivf::build(
            features,
            dim,
            kmeans::fit_with(features, dim, &params, &device),
        );
        let found = ivf.search(features, queries, 10, DEFAULT_NPROBE, &device);
        let recall = recall(&brute_force(features, queries, dim, 10), &found, 10);
        println!("search recall@10 at nprobe {DEFAULT_NPROBE}: {recall:.4}");
        assert!(recall >= 0.9, "{recall}");
        assert_eq!(found.len(), 1_000);
    }

    #[test]
    fn probing_every_list_is_exact() {
        let (n, dim) = (2_000, 16);
        let features = clustered_unit_rows(n, dim, 8, 2.0, 4);
        let device = Device::flex();
        let params = Params::spherical(n, 10);
        let ivf = Ivf::build(
            &features,
            dim,
            kmeans::fit_with(&features, dim, &params, &device),
        );
        let graph = ivf.graph(&features, 5, ivf.nlist(), &device, &Progress::silent());
        let exact = knn::exact(&features, dim, 5, &device, &Progress::silent());
        assert!(recall(&exact, &graph, 5) > 0.999);
        for (a, b) in graph.similarities.iter().zip(&exact.similarities) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn a_cancelled_graph_stops_early() {
        let (features, ivf) = indexed(2_000);
        let (progress, _events) = Progress::channel();
        progress.cancel();
        let graph = ivf.graph(&features, 5, DEFAULT_NPROBE, &Device::flex(), &progress);
        assert_eq!(graph.len(), 2_000);
        assert!(graph.indices.iter().all(|&i| i == u32::MAX));
    }

    #[test]
    fn empty_inputs_give_empty_answers() {
        let empty = KMeans {
            k: 1,
            dim: 4,
            centroids: vec![0.0; 4],
            assignment: Vec::new(),
        };
        let ivf = Ivf::build(&[], 4, empty);
        assert!(
            ivf.graph(&[], 3, 2, &Device::flex(), &Progress::silent())
                .is_empty()
        );
        let found = ivf.search(&[], &[1.0, 0.0, 0.0, 0.0], 3, 2, &Device::flex());
        assert_eq!(found.len(), 1);
        assert_eq!(found.of(0).count(), 0);
    }
}
