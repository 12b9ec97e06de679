//! A provisional analysis of the images decoded so far, so the app's map, counts and
//! galleries fill in while a long run is still decoding.
//!
//! The pipeline publishes [`PreviewEvent`]s (the scan, then records as they are decoded or
//! taken from the cache); a [`PreviewBuilder`] on another thread collects them and turns
//! the current set into an [`Analysis`] on demand: duplicate groups, quality scores and the
//! analysis' decisions are the real ones for the images seen so far; the layout uses one
//! PCA basis fitted on an early sample (refitted only when the set has grown fourfold, so
//! points stay put while new ones appear); outlier scores come with the final result.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;

use crate::analysis::knn::Neighbours;
use crate::analysis::{dedup, pca};
use crate::dataset::{Scan, captions};
use crate::embed::FEATURE_DIM;
use crate::store::cache::FileRecord;

use super::{Analysis, Summary, build_rows, judge, readable_features};

/// What the pipeline publishes for a live preview.
#[derive(Debug)]
pub enum PreviewEvent {
    /// The folder was scanned: every file the run will analyse, in scan order.
    Scanned {
        /// The scan.
        scan: Arc<Scan>,
        /// The thumbnail pack the records point into.
        pack: PathBuf,
    },
    /// These files (scan positions) are ready.
    Records(Vec<(u32, FileRecord)>),
}

/// Fewest readable images before a basis is fitted (fewer are laid out on a basis of
/// whatever is there).
const MIN_BASIS_SAMPLE: usize = 64;

/// Collects published records and builds provisional analyses.
#[derive(Debug)]
pub struct PreviewBuilder {
    root: PathBuf,
    scan: Arc<Scan>,
    pack: PathBuf,
    captions: Vec<captions::Caption>,
    warnings: Vec<String>,
    records: Vec<Option<FileRecord>>,
    ready: usize,
    basis: Option<(pca::Basis, usize)>,
    max_distance: u32,
    /// Pixel verdicts so far, so each candidate pair is verified once across previews.
    verdicts: std::collections::HashMap<
        crate::store::verdicts::PairKey,
        crate::analysis::verify::Comparison,
    >,
}

impl PreviewBuilder {
    /// Starts a preview of `scan` (captions are read here, once).
    #[must_use]
    pub fn new(root: PathBuf, scan: Arc<Scan>, pack: PathBuf, max_distance: u32) -> Self {
        let (captions, caption_warnings) = captions::load(&root, &scan);
        let root_for_verdicts = root.clone();
        let mut warnings = scan.warnings.clone();
        warnings.extend(caption_warnings);
        Self {
            records: vec![None; scan.images.len()],
            root,
            scan,
            pack,
            captions,
            warnings,
            ready: 0,
            basis: None,
            max_distance,
            verdicts: crate::store::verdicts::load(&root_for_verdicts),
        }
    }

    /// Takes records published by the pipeline.
    pub fn add(&mut self, records: Vec<(u32, FileRecord)>) {
        for (i, record) in records {
            if let Some(slot) = self.records.get_mut(i as usize) {
                if slot.is_none() {
                    self.ready += 1;
                }
                *slot = Some(record);
            }
        }
    }

    /// Files ready so far.
    #[must_use]
    pub fn ready(&self) -> usize {
        self.ready
    }

    /// Files the run will analyse.
    #[must_use]
    pub fn files(&self) -> usize {
        self.scan.images.len()
    }

    /// The provisional analysis of the files ready so far (outlier scores are all zero).
    pub fn build(&mut self) -> Analysis {
        let present: Vec<usize> = (0..self.records.len())
            .filter(|&i| self.records[i].is_some())
            .collect();
        let records: Vec<FileRecord> = present
            .iter()
            .map(|&i| self.records[i].clone().expect("present"))
            .collect();
        let captions: Vec<captions::Caption> =
            present.iter().map(|&i| self.captions[i].clone()).collect();
        let content: Vec<Option<[u8; 32]>> = records
            .iter()
            .map(|r| r.facts().map(|f| f.content_hash))
            .collect();
        let phashes = super::near::row_hashes(&records);
        let candidates = super::near::candidates(&content, &phashes, self.max_distance, None, &[]);
        let verified = super::near::verify(
            &self.root,
            &records,
            &self.pack,
            &candidates,
            &mut self.verdicts,
        );
        let near = super::near::NearPairs {
            pairs: verified,
            max_difference: crate::analysis::verify::DEFAULT_MAX_DIFFERENCE,
        };
        let threshold = crate::analysis::verify::DEFAULT_MAX_DIFFERENCE;
        let links = near.links(threshold);
        let copies = crate::analysis::keep::near_copies(records.len(), &links);
        let (_, facts) = super::keeper_facts(&records, &copies);
        let rank = crate::analysis::keep::quality_rank(&facts);
        let links = near.settled(links, threshold, &rank);
        let groups = dedup::group_with(&content, &links, &near.rejected(threshold), &rank);
        let ood = vec![0.0_f32; records.len()];
        let (scores, decisions) = judge(&records, &groups, &content, &ood, None, &copies);

        let (readable, features) = readable_features(&records);
        let refit = match &self.basis {
            None => true,
            Some((_, fitted_on)) => {
                *fitted_on < MIN_BASIS_SAMPLE && readable.len() > *fitted_on
                    || readable.len() >= fitted_on * 4
            }
        };
        if refit && let Some(basis) = pca::Basis::fit(&features, FEATURE_DIM, &Device::flex()) {
            self.basis = Some((basis, readable.len()));
        }
        let layout = self
            .basis
            .as_ref()
            .map_or_else(Vec::new, |(basis, _)| basis.project(&features));
        let mut xy = vec![None; records.len()];
        for (&row, point) in readable.iter().zip(&layout) {
            xy[row as usize] = Some(*point);
        }
        let rows = build_rows(&records, &captions, &groups, &decisions, &ood, &scores, &xy);
        let mut summary = Summary {
            files: self.scan.images.len(),
            images: readable.len(),
            captioned: rows.iter().filter(|r| r.caption.is_some()).count(),
            dup_groups: groups.members.len(),
            kept: decisions.keep.iter().filter(|&&k| k).count(),
            warnings: self.warnings.len(),
            device: "(analysis running)".to_owned(),
            ..Summary::default()
        };
        for row in &rows {
            if row.status != "ok" {
                *summary.errors.entry(row.status.clone()).or_default() += 1;
            }
            if let Some(reason) = &row.drop_reason {
                *summary.dropped.entry(reason.clone()).or_default() += 1;
            }
        }
        Analysis {
            root: self.root.clone(),
            rows,
            records,
            groups,
            decisions,
            neighbours: Neighbours::default(),
            readable,
            warnings: self.warnings.clone(),
            summary,
            thumbnail_pack: self.pack.clone(),
            semantic: None,
            captions: None,
            semantic_pairs: None,
            near: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Options, analyze};
    use crate::progress::Progress;

    /// The records published during a run add up to the run's own records, and a preview of
    /// all of them agrees with the final analysis on everything but outliers and layout.
    #[test]
    fn preview_of_everything_matches_the_run() {
        let dir = tempfile::tempdir().unwrap();
        crate::dataset::demo::generate(dir.path(), 600).unwrap();
        let (send, receive) = std::sync::mpsc::channel();
        let options = Options {
            preview: Some(send),
            ..Options::default()
        };
        let analysis = analyze(dir.path(), &options, &Progress::silent()).unwrap();
        drop(options);
        let mut builder = None;
        let mut partial_sizes = Vec::new();
        for event in receive {
            match event {
                PreviewEvent::Scanned { scan, pack } => {
                    builder = Some(PreviewBuilder::new(dir.path().to_owned(), scan, pack, 8));
                }
                PreviewEvent::Records(records) => {
                    let b = builder.as_mut().unwrap();
                    b.add(records);
                    partial_sizes.push(b.ready());
                }
            }
        }
        let mut builder = builder.unwrap();
        assert_eq!(builder.ready(), analysis.rows.len());
        assert_eq!(builder.files(), analysis.rows.len());
        assert!(partial_sizes.len() >= 2, "{partial_sizes:?}");
        let preview = builder.build();
        assert_eq!(preview.rows.len(), analysis.rows.len());
        for (p, a) in preview.rows.iter().zip(&analysis.rows) {
            assert_eq!(p.path, a.path);
            assert_eq!(p.status, a.status);
            assert_eq!(p.caption, a.caption);
            assert_eq!(p.quality, a.quality);
            assert_eq!(p.x.is_some(), a.x.is_some());
        }
        // The preview proposes candidates by hash only (the run adds feature neighbours),
        // and verifies them by the same rules: what it groups, the run groups too.
        let pairs = |groups: &dedup::Groups| -> std::collections::HashSet<(u32, u32)> {
            groups
                .members
                .iter()
                .flat_map(|m| {
                    m.iter()
                        .flat_map(move |&a| m.iter().filter(move |&&b| a < b).map(move |&b| (a, b)))
                })
                .collect()
        };
        let (seen, run) = (pairs(&preview.groups), pairs(&analysis.groups));
        let shared = seen.intersection(&run).count();
        assert!(!seen.is_empty());
        assert!(
            shared as f64 >= 0.95 * seen.len() as f64,
            "{shared} of {} preview pairs are run pairs",
            seen.len()
        );
    }
}
