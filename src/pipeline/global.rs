//! The global stages of the pass: everything that needs the whole table of per-image
//! records at once (see [`super::ingest`] for the per-image stage). Each takes the
//! [`Table`] and what the stages before it found, and returns what it found:
//! [`index`] (k-means clusters and the neighbour graph) → [`duplicates`] (semantic pairs,
//! near-duplicate candidates verified on the pixels, groups) → [`outliers`] (the three
//! scores and the combined rarity) → [`classes()`] (mislabelled images, with `--class-from`)
//! → [`layout`] (the 2-D map) → [`report`] (keepers,
//! decisions, the report's columns, written). [`super::analyze`] is their composition,
//! after the scan and the per-image stage.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;

use super::{
    ClassFrom, Options, OutlierScore, PipelineError, add_ensemble, add_semantic_columns,
    build_rows, captions, centroid_similarities, judge, keeper_facts, near, rekeep, semantic,
    write_err,
};
use crate::analysis::dedup::{self, Groups};
use crate::analysis::keep::{self, Decisions};
use crate::analysis::knn::{self, Neighbours};
use crate::analysis::quality::{SCORE_NAMES, Scores};
use crate::analysis::{classes, kmeans, minhash, pca, rarity, semdedup, umap};
use crate::embed::FEATURE_DIM;
use crate::progress::{Progress, ProgressEvent, Stage};
use crate::store::cache::FileRecord;
use crate::store::report::ReportRow;
use crate::store::{self, neighbours};

/// The table of records the global stages take: one record per file found (in scan
/// order, imported vector-only rows after them) and the features of the readable ones.
pub struct Table<'a> {
    /// The per-image records.
    pub records: &'a [FileRecord],
    /// Rows that are readable, in order (`features` row `p` is record `readable[p]`).
    pub readable: &'a [u32],
    /// The features the map, neighbours and outliers use: the model's embeddings, the
    /// imported ones, or the built-in pixel features; `readable.len() × dim`.
    pub features: &'a [f32],
    /// Length of one feature vector.
    pub dim: usize,
    /// The built-in pixel features (`readable.len() × FEATURE_DIM`, unless imported),
    /// whose neighbours propose near-duplicate candidates.
    pub builtin: &'a [f32],
    /// What the model stage computed, if a model ran.
    pub semantic: Option<&'a semantic::Semantic>,
    /// Whether the features are imported embeddings (`--embeddings`).
    pub imported: bool,
    /// Each row's content hash (`None` where unreadable).
    pub content: &'a [Option<[u8; 32]>],
    /// The thumbnail pack the records' thumbnails are in.
    pub thumbnail_pack: &'a Path,
}

/// What [`index`] found: the k-means clustering of the features and their neighbour
/// graph, with the digest both are cached under.
pub struct Index {
    /// The digest of the features (the cache key of clusters, neighbours and layout).
    pub digest: [u8; 32],
    /// One k-means clustering of the features, shared by the IVF index, SemDeDup and the
    /// keeper policies.
    pub clusters: kmeans::KMeans,
    /// SemDeDup's pairs cached with the clusters (their similarity floor and the pairs).
    pub cached_pairs: Option<(f32, Vec<semdedup::Pair>)>,
    /// Whether the clusters must be written again.
    pub clusters_changed: bool,
    /// The nearest neighbours of the readable rows.
    pub graph: Neighbours,
    /// Whether the graph came from the cache.
    pub neighbours_cached: bool,
}

/// Clusters and the neighbour graph of the features, from the cache when the features
/// are unchanged.
pub fn index(
    root: &Path,
    table: &Table,
    device: &Device,
    progress: &Progress,
) -> Result<Index, PipelineError> {
    let (features, dim) = (table.features, table.dim);
    let n = table.readable.len();
    let digest = neighbours::digest(features, dim, knn::STORED_NEIGHBOURS);
    progress.send(ProgressEvent::Started {
        stage: Stage::Dedup,
        total: table.records.len() as u64,
    });
    let cached = store::clusters::load(root, &digest);
    let clusters_changed = cached.is_none();
    let (clusters, cached_pairs) = if let Some(c) = cached {
        (c.clusters, c.pairs)
    } else {
        let params = kmeans::Params::spherical(n, semdedup::default_clusters(n));
        (kmeans::fit_with(features, dim, &params, device), None)
    };
    if progress.is_cancelled() {
        return Err(PipelineError::Cancelled);
    }
    let (graph, neighbours_cached) = if let Some(graph) = neighbours::load(root, &digest) {
        (graph, true)
    } else {
        let graph = knn::graph(
            features,
            dim,
            knn::STORED_NEIGHBOURS,
            Some(&clusters),
            device,
            progress,
        );
        if progress.is_cancelled() {
            return Err(PipelineError::Cancelled);
        }
        neighbours::save(root, &digest, &graph).map_err(write_err("the neighbour cache"))?;
        (graph, false)
    };
    Ok(Index {
        digest,
        clusters,
        cached_pairs,
        clusters_changed,
        graph,
        neighbours_cached,
    })
}

/// What [`duplicates`] found.
pub struct Duplicates {
    /// Exact, near and semantic duplicate groups.
    pub groups: Groups,
    /// Per row, how many images were verified as its copies (see [`keep::near_copies`]).
    pub copies: Vec<u32>,
    /// Every near-duplicate candidate with its pixel verdict.
    pub near: near::NearPairs,
    /// The semantic pairs, for regrouping at another threshold (with a model or imported
    /// embeddings).
    pub semantic_pairs: Option<Arc<semantic::SemanticPairs>>,
    /// Quality scores of every row (against the run's own size statistics).
    pub scores: Vec<Option<Scores>>,
}

/// Semantic duplicates (SemDeDup pairs of the model's or imported embeddings), near
/// duplicates (candidates from pHashes, pixel features and model pairs, every one verified
/// on the pixels, verdicts cached by content) and exact copies, grouped star-wise around
/// their keepers; pairs a person called not duplicates never link.
#[allow(clippy::too_many_lines)]
pub fn duplicates(
    root: &Path,
    table: &Table,
    index: &Index,
    session: Option<&store::session::Session>,
    options: &Options,
    device: &Device,
    progress: &Progress,
) -> Result<Duplicates, PipelineError> {
    let (records, readable, features, dim) =
        (table.records, table.readable, table.features, table.dim);
    let n = readable.len();
    let (content, thumbnail_pack) = (table.content, table.thumbnail_pack);
    let phashes = near::row_hashes(records);
    // Semantic duplicates, SemDeDup-style: within-cluster pairs of the CLIP (or imported)
    // embeddings, star-linked from the largest images outwards. Pairs of images on disk are
    // only candidates, verified on their pixels like every other; rows without an image
    // have nothing else to go by.
    let mut semantic_pairs = None;
    let mut pairs_to_cache = None;
    let mut clusters_changed = index.clusters_changed;
    let mut model_candidates = Vec::new();
    let mut semantic_links = Vec::new();
    if table.semantic.is_some() || table.imported {
        let threshold = options.models.semantic_threshold;
        let floor = threshold.min(semdedup::DEFAULT_FLOOR);
        let pairs = match &index.cached_pairs {
            Some((cached_floor, pairs)) if *cached_floor <= floor => pairs
                .iter()
                .filter(|p| p.similarity >= floor)
                .copied()
                .collect(),
            _ => {
                clusters_changed = true;
                let pairs = semdedup::pairs_within(features, dim, floor, &index.clusters, device);
                pairs_to_cache = Some((floor, pairs.clone()));
                pairs
            }
        };
        let found = semdedup::SemDeDup {
            clusters: index.clusters.clone(),
            pairs,
        };
        let pixels = |p: u32| {
            records[readable[p as usize] as usize]
                .facts()
                .map_or(0, |f| u64::from(f.width) * u64::from(f.height))
        };
        let priority = semantic::largest_first(n, pixels);
        for (a, b) in found.links(1.0 - threshold, &priority) {
            let (a, b) = (readable[a as usize], readable[b as usize]);
            if records[a as usize].facts().is_some() && records[b as usize].facts().is_some() {
                model_candidates.push((a, b));
            } else {
                semantic_links.push(dedup::DupLink {
                    a,
                    b,
                    kind: dedup::DupKind::Semantic,
                });
            }
        }
        semantic_pairs = Some(Arc::new(semantic::SemanticPairs {
            found,
            threshold,
            floor,
        }));
    }
    if clusters_changed {
        store::clusters::save(
            root,
            &index.digest,
            &store::clusters::Cached {
                clusters: index.clusters.clone(),
                // Newly computed pairs, else those the cache held.
                pairs: pairs_to_cache.or_else(|| index.cached_pairs.clone()),
            },
        )
        .map_err(write_err("the cluster cache"))?;
    }
    // Near duplicates: every candidate verified on the pixels, verdicts cached by content.
    // The feature candidates come from the built-in (pixel) features, whose similarity
    // floor is calibrated for copies; a model's embeddings add their SemDeDup pairs.
    let pixel_graph = (table.semantic.is_some() && !table.imported).then(|| {
        knn::graph(
            table.builtin,
            FEATURE_DIM,
            near::GRAPH_CANDIDATES,
            None,
            device,
            progress,
        )
    });
    let candidates = near::candidates(
        content,
        &phashes,
        options.max_distance,
        (!table.imported).then(|| (pixel_graph.as_ref().unwrap_or(&index.graph), readable)),
        &model_candidates,
    );
    let mut verdicts = store::verdicts::load(root);
    let known = verdicts.len();
    let mut verified = near::verify(root, records, thumbnail_pack, &candidates, &mut verdicts);
    // Two images that are copies of a third are compared with each other too (the
    // grouping then tells two copies of one picture from two look-alikes).
    let closing = near::closing_pairs(&verified, options.max_difference);
    verified.extend(near::verify(
        root,
        records,
        thumbnail_pack,
        &closing,
        &mut verdicts,
    ));
    if verdicts.len() != known {
        store::verdicts::save(root, &verdicts).map_err(write_err("the verification cache"))?;
    }
    let near_pairs = near::NearPairs {
        pairs: verified,
        max_difference: options.max_difference,
    };
    let listed: Vec<_> = near_pairs
        .pairs
        .iter()
        .map(|p| {
            (
                records[p.a as usize].rel_path.as_str(),
                records[p.b as usize].rel_path.as_str(),
                p.comparison,
                p.comparison.is_copy(options.max_difference),
            )
        })
        .collect();
    store::verdicts::write_pairs_csv(root, &listed, options.max_difference)
        .map_err(write_err("the near-pair list"))?;
    // Pairs a person said are not duplicates (in the app) never link again.
    let not_duplicates = session.map_or_else(std::collections::HashSet::new, |session| {
        super::decide::not_duplicate_pairs(records.iter().map(|r| r.rel_path.as_str()), session)
    });
    let mut links = near_pairs.links(options.max_difference);
    links.extend(semantic_links);
    links.retain(|l| !not_duplicates.contains(&(l.a.min(l.b), l.a.max(l.b))));
    let mut rejected = near_pairs.rejected(options.max_difference);
    rejected.extend(not_duplicates.iter().copied());
    let copies = keep::near_copies(records.len(), &links);
    let (scores, facts) = keeper_facts(records, &copies);
    let rank = keep::quality_rank(&facts);
    let links = near_pairs.settled(links, options.max_difference, &rank);
    let groups = dedup::group_with(content, &links, &rejected, &rank);
    progress.send(ProgressEvent::Finished {
        stage: Stage::Dedup,
    });
    Ok(Duplicates {
        groups,
        copies,
        near: near_pairs,
        semantic_pairs,
        scores,
    })
}

/// The outlier scores of every row (0 where unreadable).
pub struct Outliers {
    /// Distance to the k-th nearest neighbour outside the image's group.
    pub kth: Vec<f32>,
    /// Mean distance to the k nearest.
    pub mean_knn: Vec<f32>,
    /// Mahalanobis distance to the nearest cluster.
    pub mahalanobis: Vec<f32>,
    /// The combined rarity (see [`rarity`]).
    pub combined: Vec<f32>,
    /// The one chosen for `ood_score` and `--drop-outliers`.
    pub ood: Vec<f32>,
}

/// The three outlier scores and the combined rarity over every signal.
#[must_use]
pub fn outliers(
    table: &Table,
    index: &Index,
    found: &Duplicates,
    options: &Options,
    device: &Device,
) -> Outliers {
    let (records, readable) = (table.records, table.readable);
    let graph = &index.graph;
    let readable_groups: Vec<i64> = readable
        .iter()
        .map(|&r| found.groups.dup_group[r as usize])
        .collect();
    let per_row = |scores: Vec<f32>| {
        let mut out = vec![0.0_f32; records.len()];
        for (&row, score) in readable.iter().zip(scores) {
            out[row as usize] = score;
        }
        out
    };
    let kth = per_row(knn::outlier_scores(
        graph,
        &readable_groups,
        options.outlier_k,
    ));
    let mean_knn = per_row(knn::mean_knn_scores(
        graph,
        &readable_groups,
        options.outlier_k,
    ));
    let mahalanobis = per_row(crate::analysis::mahalanobis::scores(
        table.features,
        table.dim,
        device,
    ));
    let far = per_row(knn::outlier_scores(graph, &readable_groups, graph.k));
    let combined = per_row({
        let quality: Vec<Vec<f32>> = (0..SCORE_NAMES.len())
            .map(|m| {
                readable
                    .iter()
                    .map(|&r| found.scores[r as usize].map_or(0.0, |s| s.values[m]))
                    .collect()
            })
            .collect();
        let on_readable =
            |column: &[f32]| -> Vec<f32> { readable.iter().map(|&r| column[r as usize]).collect() };
        let (far, mahalanobis) = (on_readable(&far), on_readable(&mahalanobis));
        let mut signals: Vec<(&[f32], rarity::Tails)> = vec![
            (&far, rarity::Tails::Upper),
            (&mahalanobis, rarity::Tails::Upper),
        ];
        signals.extend(quality.iter().map(|q| (q.as_slice(), rarity::Tails::Both)));
        // The noise a flat patch shows: pure noise, static and heavy grain are rare in
        // any folder of pictures, and the quality measures above do not see it (noise is
        // sharp and full of information).
        let noise: Vec<f32> = readable
            .iter()
            .map(|&r| {
                records[r as usize]
                    .facts()
                    .map_or(0.0, |f| f.measures.noise)
            })
            .collect();
        signals.push((&noise, rarity::Tails::Upper));
        // A classifier's label-free OOD scores: a low top logit, an unsure softmax.
        let label_signals: Vec<Vec<f32>> = match table.semantic {
            Some(s) if !s.logits.is_empty() => {
                let of = |f: fn(&semantic::LabelScores) -> f32| -> Vec<f32> {
                    readable
                        .iter()
                        .map(|&r| s.label_scores[r as usize].as_ref().map_or(0.0, f))
                        .collect()
                };
                vec![of(|l| -l.max_logit), of(|l| l.entropy)]
            }
            _ => Vec::new(),
        };
        signals.extend(
            label_signals
                .iter()
                .map(|v| (v.as_slice(), rarity::Tails::Upper)),
        );
        rarity::combined(&signals)
    });
    let ood = match options.outlier_score {
        OutlierScore::Kth => kth.clone(),
        OutlierScore::MeanKnn => mean_knn.clone(),
        OutlierScore::Mahalanobis => mahalanobis.clone(),
        OutlierScore::Combined => combined.clone(),
    };
    Outliers {
        kth,
        mean_knn,
        mahalanobis,
        combined,
        ood,
    }
}

/// The 2-D map of the readable rows (UMAP from a PCA start), from the cache when the
/// features are unchanged.
pub fn layout(
    root: &Path,
    table: &Table,
    index: &Index,
    device: &Device,
    progress: &Progress,
) -> Result<Vec<[f32; 2]>, PipelineError> {
    progress.send(ProgressEvent::Started {
        stage: Stage::Layout,
        total: 0,
    });
    let layout_digest = {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&index.digest);
        hasher.update(format!("{:?}", umap::Params::default()).as_bytes());
        *hasher.finalize().as_bytes()
    };
    let n = table.readable.len();
    let layout = if let Some(layout) = store::clusters::load_layout(root, &layout_digest, n) {
        layout
    } else {
        let init = pca::project_2d(table.features, table.dim, device);
        let layout = umap::layout(
            &index.graph,
            &init,
            &umap::Params::default(),
            device,
            progress,
        );
        if progress.is_cancelled() {
            return Err(PipelineError::Cancelled);
        }
        store::clusters::save_layout(root, &layout_digest, &layout)
            .map_err(write_err("the layout cache"))?;
        layout
    };
    progress.send(ProgressEvent::Finished {
        stage: Stage::Layout,
    });
    Ok(layout)
}

/// Each image's class and what the data says about it (`--class-from`).
pub struct Classes {
    /// The class names, sorted; `given` and the issues index into them.
    pub names: Vec<String>,
    /// Per row: the given class.
    pub given: Vec<Option<u32>>,
    /// Per row: the class issue, where the row is readable and has a class.
    pub issues: Vec<Option<classes::ClassIssue>>,
}

/// The classes of `options.class_from` and the class issue of every readable image that
/// has one, from the table's features ([`classes::class_issues`]); `None` without
/// `--class-from`. A source that gives fewer than two classes is warned about.
#[must_use]
pub fn classes(
    table: &Table,
    captions: &[captions::Caption],
    options: &Options,
    device: &Device,
    warnings: &mut Vec<String>,
) -> Option<Classes> {
    let from = options.class_from?;
    let records = table.records;
    let class_of = |row: usize| -> Option<&str> {
        match from {
            ClassFrom::Folder => classes::folder_class(&records[row].rel_path),
            ClassFrom::Manifest => captions.get(row).and_then(|c| c.class.as_deref()),
        }
    };
    let names: Vec<String> = (0..records.len())
        .filter_map(class_of)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let given: Vec<Option<u32>> = (0..records.len())
        .map(|row| {
            let name = class_of(row)?;
            names
                .binary_search_by(|n| n.as_str().cmp(name))
                .ok()
                .map(|i| i as u32)
        })
        .collect();
    if names.len() < 2 {
        let source = match from {
            ClassFrom::Folder => "class folders (the first folder under the root)",
            ClassFrom::Manifest => "a manifest's `class` column",
        };
        warnings.push(format!(
            "--class-from: {} class(es) found in {source}; mislabelled images need two or more",
            names.len()
        ));
    }
    let readable_given: Vec<Option<u32>> = table
        .readable
        .iter()
        .map(|&row| given[row as usize])
        .collect();
    let found = classes::class_issues(
        table.features,
        table.dim,
        &readable_given,
        names.len(),
        device,
    );
    let mut issues = vec![None; records.len()];
    for (&row, issue) in table.readable.iter().zip(found) {
        issues[row as usize] = issue;
    }
    Some(Classes {
        names,
        given,
        issues,
    })
}

/// What [`report`] wrote.
pub struct Report {
    /// One row per file, as written.
    pub rows: Vec<ReportRow>,
    /// The keep/drop decisions.
    pub decisions: Decisions,
    /// Near-duplicate captions by MinHash LSH, when the folder has captions.
    pub caption_duplicates: Option<minhash::CaptionGroups>,
    /// The ensemble's learned weights (with quality labels).
    pub ensemble_weights: Vec<(String, f32)>,
}

/// Keepers and decisions, every column of the report, and the report written (to
/// `options.report` or the default path).
#[allow(clippy::too_many_arguments)]
pub fn report(
    root: &Path,
    table: &Table,
    index: &Index,
    found: &Duplicates,
    outliers: &Outliers,
    layout: &[[f32; 2]],
    captions: &[captions::Caption],
    caption_semantics: Option<&semantic::CaptionSemantics>,
    classes: Option<&Classes>,
    session: &std::io::Result<store::session::Session>,
    options: &Options,
    progress: &Progress,
    warnings: &mut Vec<String>,
) -> Result<Report, PipelineError> {
    let (records, readable) = (table.records, table.readable);
    let groups = &found.groups;
    let (scores, decisions) = judge(
        records,
        groups,
        table.content,
        &outliers.ood,
        options.drop_outliers_percent,
        &found.copies,
    );
    progress.send(ProgressEvent::Started {
        stage: Stage::Write,
        total: 0,
    });
    let mut xy = vec![None; records.len()];
    for (&row, point) in readable.iter().zip(layout) {
        xy[row as usize] = Some(*point);
    }
    let mut rows = build_rows(
        records,
        captions,
        groups,
        &decisions,
        &outliers.ood,
        &scores,
        &xy,
    );
    // Near-duplicate captions by MinHash LSH, whenever the folder has captions.
    let caption_duplicates = rows.iter().any(|r| r.caption.is_some()).then(|| {
        let texts: Vec<Option<&str>> = rows.iter().map(|r| r.caption.as_deref()).collect();
        minhash::group(&texts, minhash::DEFAULT_THRESHOLD)
    });
    if let Some(found) = &caption_duplicates {
        for (report, &group) in rows.iter_mut().zip(&found.group) {
            report.caption_dup_group = Some(group);
        }
    }
    if let Some(semantic) = table.semantic {
        add_semantic_columns(&mut rows, semantic);
    }
    let centrality = centroid_similarities(table.features, table.dim, &index.clusters);
    for (p, &row) in readable.iter().enumerate() {
        let report = &mut rows[row as usize];
        report.cluster = index.clusters.assignment.get(p).map(|&c| i64::from(c));
        report.centroid_similarity = centrality.get(p).copied();
    }
    if let Some(classes) = classes {
        for (row, report) in rows.iter_mut().enumerate() {
            let name = |c: u32| classes.names[c as usize].clone();
            report.given_class = classes.given[row].map(name);
            if let Some(issue) = classes.issues[row] {
                report.class_issue_score = Some(issue.score);
                report.suggested_class = Some(name(issue.suggested));
            }
        }
    }
    for (report, &count) in rows.iter_mut().zip(&found.copies) {
        if report.status == "ok" {
            report.near_copies = Some(count);
        }
    }
    for (row, report) in rows.iter_mut().enumerate() {
        if report.status == "ok" {
            report.ood_kth = Some(outliers.kth[row]);
            report.ood_mean_knn = Some(outliers.mean_knn[row]);
            report.ood_mahalanobis = Some(outliers.mahalanobis[row]);
            report.ood_combined = Some(outliers.combined[row]);
        }
    }
    // Labels saved by the app (G / B), overridden by the caller's.
    let mut labels: BTreeMap<String, bool> = match session {
        Ok(session) => session
            .quality_labels
            .iter()
            .map(|(path, label)| (path.clone(), *label == store::session::QualityLabel::Bad))
            .collect(),
        Err(err) => {
            warnings.push(format!("quality labels not read: {err}"));
            BTreeMap::new()
        }
    };
    labels.extend(options.quality_labels.iter().cloned());
    let labels: Vec<(String, bool)> = labels.into_iter().collect();
    let ensemble_weights = add_ensemble(&mut rows, readable, &labels);
    // A learned score or another keeper policy chooses the keepers again.
    let learned = rekeep::learned_scores(&rows, !ensemble_weights.is_empty());
    let decisions = if options.keeper_policy == keep::KeeperPolicy::Quality && learned.is_none() {
        decisions
    } else {
        let (redone, decisions) = rekeep::redecide(
            &rows,
            groups,
            options.keeper_policy,
            learned.as_deref(),
            None,
        );
        rows = redone;
        decisions
    };
    if let Some(captions) = caption_semantics {
        for (report, group) in rows.iter_mut().zip(&captions.group) {
            report.caption_group = *group;
        }
    }
    let report_path = options
        .report
        .clone()
        .unwrap_or_else(|| store::default_report_path(root));
    store::report::write(&report_path, &rows).map_err(write_err("the report"))?;
    progress.send(ProgressEvent::Finished {
        stage: Stage::Write,
    });
    Ok(Report {
        rows,
        decisions,
        caption_duplicates,
        ensemble_weights,
    })
}
