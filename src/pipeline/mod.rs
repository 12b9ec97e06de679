//! The analysis pass behind `curate analyze` and the app's background job, in two stages:
//! the per-image stage ([`ingest`]: bytes in, one record out — status, hashes, quality
//! measures, pixel features, thumbnail — a pure function of the image, cached by content;
//! then the model's embedding and logits of each image, [`semantic`]) and the global
//! stages over the table of records ([`global`]: clusters and neighbours → duplicates →
//! outliers → layout → decisions and report). [`analyze`] scans the folder, runs the
//! per-image stage on what the cache lacks, and composes the global stages.

pub mod decide;
pub mod demo_score;
mod embeddings;
pub mod global;
pub mod ingest;
pub mod near;
pub mod preview;
pub mod rekeep;
pub mod semantic;

pub use embeddings::write_embeddings;

pub use preview::{PreviewBuilder, PreviewEvent};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::analysis::dedup::{self, Groups};
use crate::analysis::keep::{self, Decisions, KeeperFacts};
use crate::analysis::kmeans;
use crate::analysis::knn::{self, Neighbours};
use crate::analysis::quality::{self, SCORE_NAMES, Scores, SizeStats};
use crate::dataset::{self, DecodeLimits, captions};
use crate::embed::{ComputeDevice, DeviceChoice, FEATURE_DIM};
use crate::progress::{Progress, ProgressEvent, Stage};
use crate::store;
use crate::store::cache::{Cache, FileRecord, Outcome};
use crate::store::report::ReportRow;

/// Settings of one analysis run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest pHash Hamming distance of a near-duplicate candidate (every candidate is
    /// verified on its pixels).
    pub max_distance: u32,
    /// Largest block difference of a verified copy ([`crate::analysis::verify`]).
    pub max_difference: f32,
    /// The `k` of the outlier score.
    pub outlier_k: usize,
    /// Which outlier score is `ood_score` (and what `--drop-outliers` ranks by).
    pub outlier_score: OutlierScore,
    /// Images labelled good (`false`) or bad (`true`) by relative path: the ensemble score
    /// is then learned from them.
    pub quality_labels: Vec<(String, bool)>,
    /// Drop this percentage of the most unusual readable images.
    pub drop_outliers_percent: Option<f32>,
    /// How the keeper of a duplicate group is chosen.
    pub keeper_policy: keep::KeeperPolicy,
    /// Where tensor work runs.
    pub device: DeviceChoice,
    /// Decode limits (the decompression-bomb guard).
    pub limits: DecodeLimits,
    /// Report location; `None` for `DIR/.curate/report.parquet`.
    pub report: Option<PathBuf>,
    /// A device chosen by the caller (the app shares its GPU with the analysis); overrides
    /// `device` when set.
    pub compute: Option<ComputeDevice>,
    /// Where to publish records as they are decoded, for a live preview (the app).
    pub preview: Option<std::sync::mpsc::Sender<PreviewEvent>>,
    /// Models (`--model`, `--labels`).
    pub models: semantic::ModelOptions,
    /// Embeddings computed elsewhere (`--embeddings`): they replace the built-in features
    /// and drive semantic duplicates; rows whose image is not on disk are analysed from
    /// their vectors alone.
    pub embeddings: Option<EmbeddingsInput>,
    /// Where each image's class comes from (`--class-from`): with one, the report says
    /// which images look mislabelled ([`crate::analysis::classes`]).
    pub class_from: Option<ClassFrom>,
}

/// Where the images' classes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClassFrom {
    /// The first folder under the root, as torchvision's `ImageFolder` reads a tree
    /// ([`crate::analysis::classes::folder_class`]).
    Folder,
    /// A `class` (or `label`) column of a captions manifest
    /// ([`crate::dataset::captions`]).
    Manifest,
}

/// Where imported embeddings come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingsInput {
    /// A `.parquet` (`path`, `embedding`) or `.npy` file.
    pub file: PathBuf,
    /// The paths of a `.npy` matrix, one per line (default: its name with `.txt`).
    pub paths: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_distance: dedup::DEFAULT_MAX_DISTANCE,
            max_difference: crate::analysis::verify::DEFAULT_MAX_DIFFERENCE,
            outlier_k: knn::DEFAULT_OUTLIER_K,
            outlier_score: OutlierScore::Combined,
            quality_labels: Vec::new(),
            drop_outliers_percent: None,
            keeper_policy: keep::KeeperPolicy::Quality,
            device: DeviceChoice::Auto,
            limits: DecodeLimits::default(),
            report: None,
            compute: None,
            preview: None,
            models: semantic::ModelOptions::default(),
            embeddings: None,
            class_from: None,
        }
    }
}

/// The outlier scores curate computes (all three are in the report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutlierScore {
    /// Cosine distance to the k-th nearest neighbour outside the image's duplicate group
    /// (Sun et al. 2022): `ood_kth`.
    Kth,
    /// Mean cosine distance to the k nearest such neighbours: `ood_mean_knn`.
    MeanKnn,
    /// Mahalanobis distance to one Gaussian fitted on all images: `ood_mahalanobis`.
    Mahalanobis,
    /// How rare the image is on every signal at once, relative to the folder
    /// ([`crate::analysis::rarity`]: the far-neighbour distance, the Mahalanobis distance
    /// and the seven quality measures): `ood_combined`. The best of the four on real
    /// images with clustered outliers, and the default.
    #[default]
    Combined,
}

impl OutlierScore {
    /// All four, in report order.
    pub const ALL: [Self; 4] = [Self::Combined, Self::Kth, Self::MeanKnn, Self::Mahalanobis];

    /// A short human label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Kth => "k-th neighbour distance",
            Self::MeanKnn => "mean k-NN distance",
            Self::Mahalanobis => "Mahalanobis distance",
            Self::Combined => "combined rarity",
        }
    }
}

/// Why a run could not complete (bad files never cause this).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The folder itself could not be scanned.
    #[error("cannot scan {path}: {source}")]
    Scan {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The cache or report could not be written (with what to do about it, when the
    /// cause says: see [`store::write_advice`]).
    #[error("cannot write {what}: {source}{}", advice(source))]
    Write {
        /// What was being written.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No compute device.
    #[error(transparent)]
    Device(#[from] crate::embed::device::DeviceError),
    /// The model folder could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::embed::weights::ModelError),
    /// The embeddings file could not be imported.
    #[error(transparent)]
    Embeddings(#[from] store::vectors::VectorsError),
    /// The cache folder could not be locked for writing.
    #[error(transparent)]
    Lock(store::lock::LockError),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Analysis {
    /// The dataset folder.
    pub root: PathBuf,
    /// One row per file found, in scan order.
    pub rows: Vec<ReportRow>,
    /// The cache records behind the rows, same order.
    pub records: Vec<FileRecord>,
    /// Duplicate groups.
    pub groups: Groups,
    /// The keep/drop decisions.
    pub decisions: Decisions,
    /// Nearest neighbours of the readable rows, indexed by position in `readable`.
    pub neighbours: Neighbours,
    /// Rows that were readable, in order (maps `neighbours` indices to rows).
    pub readable: Vec<u32>,
    /// Problems that did not stop the run (folders, manifests).
    pub warnings: Vec<String>,
    /// Counts and timings.
    pub summary: Summary,
    /// The thumbnail pack the records' [`crate::store::cache::ThumbRef`]s point into.
    pub thumbnail_pack: PathBuf,
    /// What the model stage computed (`--model`).
    pub semantic: Option<semantic::Semantic>,
    /// Caption embeddings and groups (`--text-model`).
    pub captions: Option<semantic::CaptionSemantics>,
    /// The cached semantic pairs, for regrouping at another threshold (`--model`).
    pub semantic_pairs: Option<std::sync::Arc<semantic::SemanticPairs>>,
    /// Every near-duplicate candidate with its pixel verdict.
    pub near: std::sync::Arc<near::NearPairs>,
}

/// Counts and timings of a run (printed by the command line, `--json` for machines).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Files found.
    pub files: usize,
    /// Readable images.
    pub images: usize,
    /// Unreadable files by kind.
    pub errors: BTreeMap<String, usize>,
    /// Images with a caption.
    pub captioned: usize,
    /// Exact-copy groups.
    pub exact_groups: usize,
    /// Duplicate groups (exact and near merged).
    pub dup_groups: usize,
    /// Images in the keep-list.
    pub kept: usize,
    /// Dropped readable images by reason.
    pub dropped: BTreeMap<String, usize>,
    /// Files decoded in this run (the rest came from the cache).
    pub decoded: usize,
    /// Files taken from the cache.
    pub cached: usize,
    /// Rows of imported embeddings without an image on disk (`--embeddings`).
    pub vector_only: usize,
    /// The imported embeddings file (`--embeddings`), if any.
    pub embeddings: Option<String>,
    /// Whether the neighbour graph came from the cache.
    pub neighbours_cached: bool,
    /// The compute device.
    pub device: String,
    /// Wall time of the run.
    pub elapsed_secs: f64,
    /// Wall time of each stage, in order (`scan`, `decode`, `model`, `neighbours`, `near`,
    /// `outliers`, `layout`, `write`); where a slow run spends its time.
    pub stage_secs: Vec<(String, f64)>,
    /// Files per second over the whole run.
    pub images_per_sec: f64,
    /// Warnings (also in [`Analysis::warnings`]).
    pub warnings: usize,
    /// The model behind the map, outliers and semantic duplicates (`--model`), if any.
    pub model: Option<String>,
    /// Images embedded by the model in this run (the rest came from the embedding cache).
    pub embedded: usize,
    /// Images in a duplicate group only through model similarity.
    pub semantic_duplicates: usize,
    /// Groups of near-identical captions (`--text-model`).
    pub caption_groups: usize,
    /// Groups of near-duplicate captions by MinHash LSH (report `caption_dup_group`).
    pub caption_dup_groups: usize,
    /// Near-duplicate candidate pairs compared on their pixels.
    pub near_candidates: usize,
    /// Of those, the pairs verified as copies.
    pub near_copies: usize,
    /// The largest block difference among the verified copies (where copies end).
    pub farthest_copy: Option<f32>,
    /// The smallest block difference among the rejected candidates (where look-alikes
    /// start).
    pub closest_rejected: Option<f32>,
    /// The block-difference threshold of the run.
    pub max_difference: f32,
    /// Classes given by `--class-from` (0 without it).
    pub classes: usize,
    /// Images with a class, and of them those whose class the data disputes
    /// (`class_issue_score` above 0.5: another class fits better).
    pub classed: usize,
    /// See [`Self::classed`].
    pub class_issues: usize,
    /// The ensemble's learned weights per operator (with quality labels), for the user.
    pub ensemble_weights: Vec<(String, f32)>,
}

/// Wall time per stage of a run, for [`Summary::stage_secs`].
struct StageClock {
    last: Instant,
    stages: Vec<(String, f64)>,
}

impl StageClock {
    fn new(started: Instant) -> Self {
        Self {
            last: started,
            stages: Vec::new(),
        }
    }

    /// Ends the stage `name` now (the next one starts).
    fn mark(&mut self, name: &str) {
        let now = Instant::now();
        self.stages
            .push((name.to_owned(), now.duration_since(self.last).as_secs_f64()));
        self.last = now;
    }

    fn finish(self) -> Vec<(String, f64)> {
        self.stages
    }
}

/// Failed writes of one cache file as a [`PipelineError`].
fn write_err(what: &str) -> impl FnOnce(std::io::Error) -> PipelineError {
    let what = what.to_owned();
    move |source| PipelineError::Write { what, source }
}

/// `"; <advice>"` for a failed write whose cause says what to do, else nothing.
fn advice(source: &std::io::Error) -> String {
    store::write_advice(source).map_or_else(String::new, |a| format!("; {a}"))
}

/// How often the cache index is saved during a long decode, so a killed run keeps its work.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);
/// The first checkpoint of a decode pass comes after this many files...
const FIRST_CHECKPOINT_FILES: usize = 2 * BATCH;
/// ...or this long, whichever is first.
const FIRST_CHECKPOINT_AFTER: Duration = Duration::from_secs(5);
/// Files decoded per parallel batch (bounds memory: one decoded image per thread at a time,
/// one batch of thumbnails waiting to be appended).
const BATCH: usize = 512;

/// Runs the whole pass on `root`.
pub fn analyze(
    root: &Path,
    options: &Options,
    progress: &Progress,
) -> Result<Analysis, PipelineError> {
    let started = Instant::now();
    let mut stages = StageClock::new(started);
    // The device and the model first: a bad model folder fails the run before any work.
    let device = match &options.compute {
        Some(device) => device.clone(),
        None => ComputeDevice::select(options.device)?,
    };
    let mut model_warnings = Vec::new();
    let sentence_encoder = match &options.models.text {
        None => None,
        Some(dir) => Some(crate::embed::text::SentenceEncoder::load(
            dir,
            &device.device,
        )?),
    };
    let image_model = match (&options.models.clip, &options.models.classifier) {
        (Some(dir), _) => {
            let (model, tokenizer, warning) = semantic::load(dir, &device.device)?;
            model_warnings.extend(warning);
            Some(semantic::ImageModel::Clip(model, tokenizer))
        }
        (None, Some(dir)) => Some(semantic::ImageModel::Classifier(
            crate::embed::efficientnet::EfficientNet::load(dir, &device.device)?
                .with_split_batches(!device.is_gpu),
        )),
        (None, None) => None,
    };
    let imported = match &options.embeddings {
        None => None,
        Some(input) => Some(store::vectors::read_embeddings(
            &input.file,
            input.paths.as_deref(),
        )?),
    };
    progress.send(ProgressEvent::Started {
        stage: Stage::Scan,
        total: 0,
    });
    let scan = dataset::scan(root).map_err(|source| PipelineError::Scan {
        path: root.to_owned(),
        source,
    })?;
    progress.send(ProgressEvent::Finished { stage: Stage::Scan });
    let mut warnings = scan.warnings.clone();
    warnings.extend(model_warnings);

    // One writer per cache folder: a second run waits here, then reuses what the first
    // committed. Held until the last file of this run is written.
    let _lock = store::lock::CacheLock::acquire(
        &store::curate_dir(root),
        |message| {
            progress.send(ProgressEvent::Started {
                stage: Stage::Wait,
                total: 0,
            });
            progress.send(ProgressEvent::Note(message.to_owned()));
        },
        || progress.is_cancelled(),
    )
    .map_err(|err| match err {
        store::lock::LockError::Cancelled(_) => PipelineError::Cancelled,
        err @ store::lock::LockError::Io { .. } => PipelineError::Lock(err),
    })?;
    let mut cache = Cache::open(root);
    if let Some(reason) = &cache.discarded {
        warnings.push(format!(".curate/index.parquet: {reason}"));
    }
    if let Some(preview) = &options.preview {
        preview
            .send(PreviewEvent::Scanned {
                scan: std::sync::Arc::new(scan.clone()),
                pack: cache.pack_path(),
            })
            .ok();
    }
    stages.mark("scan");
    let (mut records, decoded) = decode_all(root, &scan, &mut cache, options, progress)?;
    cache
        .save(&mut records)
        .map_err(write_err("the cache index"))?;
    let thumbnail_pack = cache.pack_path();
    stages.mark("decode");

    let (mut captions, caption_warnings) = captions::load(root, &scan);
    warnings.extend(caption_warnings);
    let imported_rows = match (&imported, &options.embeddings) {
        (Some(imported), Some(input)) => {
            let (rows, notes) = match_embeddings(&mut records, imported, &input.file);
            captions.resize(records.len(), captions::Caption::default());
            warnings.extend(notes);
            Some(rows)
        }
        _ => None,
    };

    // The rest of the per-image stage: the model's outputs for every readable image.
    let content: Vec<Option<[u8; 32]>> = records
        .iter()
        .map(|r| r.facts().map(|f| f.content_hash))
        .collect();
    let (readable, builtin) = match (&imported, &imported_rows) {
        (Some(imported), Some(rows)) => imported_features(imported, rows),
        _ => readable_features(&records),
    };
    let semantic = match &image_model {
        None => None,
        Some(model) => {
            let result = semantic::run(
                &scan,
                &records,
                &captions,
                &readable,
                model,
                device.max_buffer,
                &options.models,
                options.limits,
                root,
                progress,
            )?;
            warnings.extend(result.warnings.iter().cloned());
            Some(result)
        }
    };
    let caption_semantics = match (&sentence_encoder, &options.models.text) {
        (Some(encoder), Some(dir)) => Some(semantic::caption_semantics(
            encoder,
            dir,
            &captions,
            &readable,
            options.models.caption_threshold,
            root,
            &device.device,
            progress,
        )?),
        _ => None,
    };
    stages.mark("model");

    // The global stages, over the table of records.
    let (features, dim) = match (&semantic, &imported) {
        (Some(s), _) => (s.images.as_slice(), s.dim),
        (None, Some(imported)) => (builtin.as_slice(), imported.dim),
        (None, None) => (builtin.as_slice(), FEATURE_DIM),
    };
    let table = global::Table {
        records: &records,
        readable: &readable,
        features,
        dim,
        builtin: &builtin,
        semantic: semantic.as_ref(),
        imported: imported.is_some(),
        content: &content,
        thumbnail_pack: &thumbnail_pack,
    };
    // What a person decided in the app ("not duplicates", quality labels), read once.
    let saved = store::session::Session::load(root);
    let index = global::index(root, &table, &device.device, progress)?;
    stages.mark("neighbours");
    let found = global::duplicates(
        root,
        &table,
        &index,
        saved.as_ref().ok(),
        options,
        &device.device,
        progress,
    )?;
    stages.mark("near");
    let outliers = global::outliers(&table, &index, &found, options, &device.device);
    stages.mark("outliers");
    let classes = global::classes(&table, &captions, options, &device.device, &mut warnings);
    if classes.is_some() {
        stages.mark("classes");
    }
    let layout = global::layout(root, &table, &index, &device.device, progress)?;
    stages.mark("layout");
    let global::Report {
        rows,
        decisions,
        caption_duplicates,
        ensemble_weights,
    } = global::report(
        root,
        &table,
        &index,
        &found,
        &outliers,
        &layout,
        &captions,
        caption_semantics.as_ref(),
        classes.as_ref(),
        &saved,
        options,
        progress,
        &mut warnings,
    )?;
    let global::Duplicates {
        groups,
        near: near_pairs,
        semantic_pairs,
        ..
    } = found;
    let (graph, neighbours_cached) = (index.graph, index.neighbours_cached);
    stages.mark("write");
    let elapsed = started.elapsed().as_secs_f64();
    let (farthest_copy, closest_rejected) = near_pairs.separation();
    let mut summary = Summary {
        files: rows.len(),
        images: readable.len(),
        captioned: rows.iter().filter(|r| r.caption.is_some()).count(),
        exact_groups: groups
            .exact_group
            .iter()
            .filter(|&&g| g >= 0)
            .max()
            .map_or(0, |&g| g as usize + 1),
        dup_groups: groups.members.len(),
        kept: decisions.keep.iter().filter(|&&k| k).count(),
        decoded,
        cached: records
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::VectorOnly))
            .count()
            - decoded,
        embeddings: options
            .embeddings
            .as_ref()
            .map(|e| e.file.display().to_string()),
        vector_only: records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::VectorOnly))
            .count(),
        neighbours_cached,
        device: device.description,
        elapsed_secs: elapsed,
        stage_secs: stages.finish(),
        images_per_sec: rows.len() as f64 / elapsed.max(1e-9),
        warnings: warnings.len(),
        model: semantic.as_ref().map(|s| s.model.clone()),
        embedded: semantic.as_ref().map_or(0, |s| s.embedded),
        caption_groups: caption_semantics.as_ref().map_or(0, |c| c.groups),
        caption_dup_groups: caption_duplicates.as_ref().map_or(0, |c| c.groups),
        near_candidates: near_pairs.pairs.len(),
        near_copies: near_pairs
            .pairs
            .iter()
            .filter(|p| p.comparison.is_copy(options.max_difference))
            .count(),
        farthest_copy,
        closest_rejected,
        max_difference: options.max_difference,
        ensemble_weights,
        semantic_duplicates: groups
            .dup_kind
            .iter()
            .filter(|k| **k == Some(dedup::DupKind::Semantic))
            .count(),
        classes: classes.as_ref().map_or(0, |c| c.names.len()),
        classed: rows.iter().filter(|r| r.given_class.is_some()).count(),
        class_issues: rows
            .iter()
            .filter(|r| {
                r.class_issue_score
                    .is_some_and(|s| s > crate::analysis::classes::DISPUTED)
            })
            .count(),
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
    Ok(Analysis {
        root: root.to_owned(),
        rows,
        records,
        groups,
        decisions,
        neighbours: graph,
        readable,
        warnings,
        summary,
        thumbnail_pack,
        semantic,
        captions: caption_semantics,
        semantic_pairs,
        near: std::sync::Arc::new(near_pairs),
    })
}

/// The ensemble's features of the readable rows (see [`crate::analysis::ensemble`]):
/// the quality measures, three outlier scores, the CLIP score when there is one (low =
/// bad), a classifier's top logit (low = bad) and entropy when there are labels, and the
/// duplicate-group size.
#[must_use]
pub fn ensemble_features(
    rows: &[ReportRow],
    readable: &[u32],
) -> crate::analysis::ensemble::Features {
    let column = |f: &dyn Fn(&ReportRow) -> f32| -> Vec<f32> {
        readable.iter().map(|&r| f(&rows[r as usize])).collect()
    };
    let mut columns: Vec<(String, Vec<f32>)> = SCORE_NAMES
        .iter()
        .enumerate()
        .map(|(m, name)| {
            (
                (*name).to_owned(),
                column(&|r| r.quality.map_or(0.0, |q| q[m])),
            )
        })
        .collect();
    columns.push((
        "outlier_kth".to_owned(),
        column(&|r| r.ood_kth.unwrap_or(0.0)),
    ));
    columns.push((
        "outlier_mahalanobis".to_owned(),
        column(&|r| r.ood_mahalanobis.unwrap_or(0.0)),
    ));
    columns.push((
        "outlier_combined".to_owned(),
        column(&|r| r.ood_combined.unwrap_or(0.0)),
    ));
    if readable
        .iter()
        .any(|&r| rows[r as usize].clip_score.is_some())
    {
        columns.push((
            "low_clip_score".to_owned(),
            column(&|r| r.clip_score.map_or(f32::NAN, |s| -s)),
        ));
    }
    if readable
        .iter()
        .any(|&r| rows[r as usize].label_max_logit.is_some())
    {
        // A classifier's (or zero-shot) label-free OOD scores: low top logit, high entropy.
        columns.push((
            "low_max_logit".to_owned(),
            column(&|r| r.label_max_logit.map_or(f32::NAN, |s| -s)),
        ));
        columns.push((
            "label_entropy".to_owned(),
            column(&|r| r.label_entropy.unwrap_or(f32::NAN)),
        ));
    }
    let mut sizes = std::collections::HashMap::new();
    for r in rows.iter().filter(|r| r.dup_group >= 0) {
        *sizes.entry(r.dup_group).or_insert(0_u32) += 1;
    }
    columns.push((
        "duplicate_group_size".to_owned(),
        column(&|r| sizes.get(&r.dup_group).map_or(1.0, |&s| s as f32)),
    ));
    crate::analysis::ensemble::Features::from_columns(columns)
}

/// The ensemble score of every row of `features` and the learned weights per operator: a
/// logistic model when `labels` (row, bad) hold both kinds, else the rank average (and no
/// weights).
#[must_use]
pub fn fit_ensemble(
    features: &crate::analysis::ensemble::Features,
    labels: &[(usize, bool)],
) -> (Vec<f32>, Vec<(String, f32)>) {
    if labels.iter().any(|l| l.1) && labels.iter().any(|l| !l.1) {
        let model = crate::analysis::ensemble::Logistic::fit(features, labels, 1e-2);
        let weights = features
            .names
            .iter()
            .cloned()
            .zip(model.weights.clone())
            .collect();
        (model.score(features), weights)
    } else {
        (features.rank_average(), Vec::new())
    }
}

/// Fills `ensemble_score`: the rank average, or a logistic model fitted on `labels` (by
/// path) when they name at least one good and one bad readable image. Returns the learned
/// weights (empty without a model).
fn add_ensemble(
    rows: &mut [ReportRow],
    readable: &[u32],
    labels: &[(String, bool)],
) -> Vec<(String, f32)> {
    let features = ensemble_features(rows, readable);
    let point: std::collections::HashMap<&str, usize> = readable
        .iter()
        .enumerate()
        .map(|(p, &r)| (rows[r as usize].path.as_str(), p))
        .collect();
    let labelled: Vec<(usize, bool)> = labels
        .iter()
        .filter_map(|(path, bad)| point.get(path.as_str()).map(|&p| (p, *bad)))
        .collect();
    let (scores, weights) = fit_ensemble(&features, &labelled);
    for (&r, score) in readable.iter().zip(scores) {
        rows[r as usize].ensemble_score = Some(score);
    }
    weights
}

/// Fills the model columns of the report.
fn add_semantic_columns(rows: &mut [ReportRow], semantic: &semantic::Semantic) {
    for (row, report) in rows.iter_mut().enumerate() {
        report.clip_score = semantic.clip_score[row];
        if let Some(scores) = semantic.label_scores[row] {
            report.label = semantic.labels.get(scores.label as usize).cloned();
            report.label_max_logit = Some(scores.max_logit);
            report.label_entropy = Some(scores.entropy);
            report.label_margin = Some(scores.margin);
        }
    }
}

/// Each row's cosine similarity to the centre of its cluster.
fn centroid_similarities(features: &[f32], dim: usize, clusters: &kmeans::KMeans) -> Vec<f32> {
    let norms: Vec<f32> = clusters
        .centroids
        .chunks_exact(dim)
        .map(|c| c.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12))
        .collect();
    features
        .par_chunks_exact(dim)
        .zip(&clusters.assignment)
        .map(|(row, &c)| {
            let c = c as usize;
            let centre = &clusters.centroids[c * dim..(c + 1) * dim];
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter().zip(centre).map(|(a, b)| a * b).sum::<f32>() / (norm * norms[c])
        })
        .collect()
}

/// Pairs imported embeddings with the scanned files by relative path. Images on disk
/// without a vector become `no_embedding` rows (listed, not analysed); vectors without a
/// file become [`Outcome::VectorOnly`] rows at the end. Returns each row's vector index and
/// notes for the user.
fn match_embeddings(
    records: &mut Vec<FileRecord>,
    imported: &store::vectors::ImportedEmbeddings,
    file: &Path,
) -> (Vec<Option<u32>>, Vec<String>) {
    let by_path: std::collections::HashMap<&str, u32> = imported
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i as u32))
        .collect();
    let mut rows = Vec::with_capacity(records.len() + imported.paths.len());
    let mut on_disk = std::collections::HashSet::new();
    let mut missing = 0;
    for record in records.iter_mut() {
        let vector = by_path.get(record.rel_path.as_str()).copied();
        if vector.is_some() {
            on_disk.insert(record.rel_path.clone());
        }
        if vector.is_none() && record.facts().is_some() {
            missing += 1;
            record.outcome = Outcome::Failed {
                kind: "no_embedding".to_owned(),
                message: format!("no row in {}", file.display()),
            };
        }
        rows.push(vector.filter(|_| record.facts().is_some()));
    }
    let mut vector_only = 0;
    for (i, path) in imported.paths.iter().enumerate() {
        if !on_disk.contains(path) {
            vector_only += 1;
            records.push(FileRecord {
                rel_path: path.clone(),
                size: 0,
                mtime_ns: 0,
                outcome: Outcome::VectorOnly,
            });
            rows.push(Some(i as u32));
        }
    }
    let mut notes = Vec::new();
    if missing > 0 {
        notes.push(format!(
            "{missing} images on disk have no row in {} (status no_embedding: not analysed)",
            file.display()
        ));
    }
    if vector_only > 0 {
        notes.push(format!(
            "{vector_only} rows of {} have no image on disk: analysed and mapped from their vectors alone",
            file.display()
        ));
    }
    (rows, notes)
}

/// The rows with an imported vector and their vectors at unit length, row after row.
fn imported_features(
    imported: &store::vectors::ImportedEmbeddings,
    rows: &[Option<u32>],
) -> (Vec<u32>, Vec<f32>) {
    let dim = imported.dim;
    let readable: Vec<u32> = (0..rows.len() as u32)
        .filter(|&r| rows[r as usize].is_some())
        .collect();
    let mut features = Vec::with_capacity(readable.len() * dim);
    for &row in &readable {
        let v = rows[row as usize].expect("readable rows have a vector") as usize;
        let vector = &imported.data[v * dim..(v + 1) * dim];
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        features.extend(vector.iter().map(|x| x / norm));
    }
    (readable, features)
}

/// The readable rows and their features, row after row (`readable.len() × FEATURE_DIM`).
fn readable_features(records: &[FileRecord]) -> (Vec<u32>, Vec<f32>) {
    let readable: Vec<u32> = (0..records.len() as u32)
        .filter(|&r| records[r as usize].facts().is_some())
        .collect();
    let mut features = Vec::with_capacity(readable.len() * FEATURE_DIM);
    for &row in &readable {
        features.extend_from_slice(&records[row as usize].facts().expect("readable").feature);
    }
    (readable, features)
}

/// Quality scores (against the run's own size statistics) and the keep/drop decisions.
fn judge(
    records: &[FileRecord],
    groups: &Groups,
    content: &[Option<[u8; 32]>],
    ood: &[f32],
    drop_outliers_percent: Option<f32>,
    copies: &[u32],
) -> (Vec<Option<Scores>>, Decisions) {
    let (scores, facts) = keeper_facts(records, copies);
    let decisions = keep::decide(
        groups,
        &facts,
        content,
        ood,
        drop_outliers_percent,
        keep::KeeperPolicy::Quality,
    );
    (scores, decisions)
}

/// Quality scores (against the run's own size statistics) and what the keeper choice
/// looks at, per row (`copies`: [`keep::near_copies`] of the run's links).
fn keeper_facts(
    records: &[FileRecord],
    copies: &[u32],
) -> (Vec<Option<Scores>>, Vec<Option<KeeperFacts>>) {
    let dims: Vec<(u32, u32)> = records
        .iter()
        .filter_map(FileRecord::facts)
        .map(|f| (f.width, f.height))
        .collect();
    let size_stats = SizeStats::new(&dims);
    let scores: Vec<Option<Scores>> = records
        .iter()
        .map(|r| {
            r.facts()
                .map(|f| quality::score(&f.measures, f.width, f.height, &size_stats))
        })
        .collect();
    let facts: Vec<Option<KeeperFacts>> = records
        .iter()
        .zip(&scores)
        .enumerate()
        .map(|(row, (r, s))| {
            if matches!(r.outcome, Outcome::VectorOnly) {
                return Some(KeeperFacts::default());
            }
            let (f, s) = (r.facts()?, s.as_ref()?);
            Some(KeeperFacts {
                pixels: u64::from(f.width) * u64::from(f.height),
                blurry: s.values[2],
                badly_exposed: s.flags[0] || s.flags[1] || s.flags[3],
                bytes: f.bytes,
                noise: f.measures.noise,
                copies: copies.get(row).copied().unwrap_or(0),
                ..KeeperFacts::default()
            })
        })
        .collect();
    (scores, facts)
}

/// Takes unchanged files from the cache and decodes the rest in parallel batches, appending
/// thumbnails and checkpointing the index as it goes. Returns the records in scan order and
/// how many files were decoded.
fn decode_all(
    root: &Path,
    scan: &dataset::Scan,
    cache: &mut Cache,
    options: &Options,
    progress: &Progress,
) -> Result<(Vec<FileRecord>, usize), PipelineError> {
    let mut records: Vec<Option<FileRecord>> = scan
        .images
        .iter()
        .map(|e| cache.lookup(e).cloned())
        .collect();
    let mut todo: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].is_none())
        .collect();
    // A fixed pseudo-random order instead of scan (path) order: whatever has been decoded at
    // any moment is a fair sample of the whole folder, so the live preview (and its layout
    // basis) looks like the final map from the first seconds, not like its first folders.
    todo.sort_by_key(|&i| crate::rng::mix(i as u64));
    let publish = |ready: Vec<(u32, FileRecord)>| {
        if let Some(preview) = &options.preview
            && !ready.is_empty()
        {
            preview.send(PreviewEvent::Records(ready)).ok();
        }
    };
    publish(
        records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i as u32, r.clone()?)))
            .collect(),
    );
    progress.send(ProgressEvent::Started {
        stage: Stage::Decode,
        total: todo.len() as u64,
    });
    let io_err = |source| PipelineError::Write {
        what: format!("the thumbnail cache in {}", root.display()),
        source,
    };
    let mut appender = if todo.is_empty() {
        None
    } else {
        Some(cache.appender().map_err(io_err)?)
    };
    let mut last_checkpoint = Instant::now();
    let mut done = 0;
    let mut first_checkpoint = true;
    for batch in todo.chunks(BATCH) {
        if progress.is_cancelled() {
            // Keep what was decoded: the next run starts from here.
            if let Some(appender) = appender.as_mut() {
                appender.sync().map_err(io_err)?;
                let so_far: Vec<FileRecord> = records.iter().flatten().cloned().collect();
                cache.checkpoint(&so_far).map_err(io_err)?;
            }
            return Err(PipelineError::Cancelled);
        }
        let results: Vec<_> = batch
            .par_iter()
            .map(|&i| ingest::ingest(&scan.images[i], options.limits))
            .collect();
        let appender = appender.as_mut().expect("opened when there is work");
        for (&i, result) in batch.iter().zip(results) {
            let entry = &scan.images[i];
            let outcome = match result {
                Ok(mut ingested) => {
                    ingested.facts.thumb = appender.append(&ingested.thumbnail).map_err(io_err)?;
                    Outcome::Ok(ingested.facts)
                }
                Err(err) => Outcome::Failed {
                    kind: err.kind().to_owned(),
                    message: err.to_string(),
                },
            };
            records[i] = Some(FileRecord {
                rel_path: entry.rel_path.clone(),
                size: entry.size,
                mtime_ns: entry.mtime_ns,
                outcome,
            });
        }
        if options.preview.is_some() {
            publish(
                batch
                    .iter()
                    .map(|&i| (i as u32, records[i].clone().expect("just decoded")))
                    .collect(),
            );
        }
        done += batch.len();
        progress.send(ProgressEvent::Advanced {
            stage: Stage::Decode,
            done: done as u64,
        });
        // The first checkpoint comes early, by work done or time, so a run killed in its
        // first seconds still leaves its work; later ones every CHECKPOINT_EVERY.
        let due = if first_checkpoint {
            done >= FIRST_CHECKPOINT_FILES || last_checkpoint.elapsed() > FIRST_CHECKPOINT_AFTER
        } else {
            last_checkpoint.elapsed() > CHECKPOINT_EVERY
        };
        if due && done < todo.len() {
            appender.sync().map_err(io_err)?;
            let so_far: Vec<FileRecord> = records.iter().flatten().cloned().collect();
            cache.checkpoint(&so_far).map_err(io_err)?;
            last_checkpoint = Instant::now();
            first_checkpoint = false;
        }
    }
    if let Some(appender) = appender.as_mut() {
        appender.sync().map_err(io_err)?;
    }
    progress.send(ProgressEvent::Finished {
        stage: Stage::Decode,
    });
    let records: Vec<FileRecord> = records
        .into_iter()
        .map(|r| r.expect("every file was decoded or cached"))
        .collect();
    Ok((records, todo.len()))
}

pub(crate) fn build_rows(
    records: &[FileRecord],
    captions: &[captions::Caption],
    groups: &Groups,
    decisions: &Decisions,
    ood: &[f32],
    scores: &[Option<Scores>],
    xy: &[Option<[f32; 2]>],
) -> Vec<ReportRow> {
    records
        .iter()
        .enumerate()
        .map(|(row, record)| {
            let facts = record.facts();
            let keeper = decisions.keeper[row].map(|k| records[k as usize].rel_path.clone());
            let reason = decisions.reason[row];
            let drop_detail = reason.map(|reason| match reason {
                keep::DropReason::Outlier => format!(
                    "among the most unusual images (outlier score {:.3})",
                    ood[row]
                ),
                keep::DropReason::Manual => "dropped by hand".to_owned(),
                keep::DropReason::Quality => "below the quality threshold".to_owned(),
                duplicate => rekeep::duplicate_detail(duplicate, keeper.as_deref().unwrap_or("?")),
            });
            let (status, error) = match &record.outcome {
                Outcome::Ok(_) => ("ok".to_owned(), None),
                Outcome::VectorOnly => (
                    "ok".to_owned(),
                    Some("not on disk: analysed from its embedding alone".to_owned()),
                ),
                Outcome::Failed { kind, message } => (kind.clone(), Some(message.clone())),
            };
            let flags = scores[row].map(|s| {
                SCORE_NAMES
                    .iter()
                    .zip(s.flags)
                    .filter(|(_, f)| *f)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(",")
            });
            ReportRow {
                path: record.rel_path.clone(),
                status,
                error,
                size_bytes: record.facts().map_or(record.size, |f| f.bytes),
                width: facts.map(|f| f.width),
                height: facts.map(|f| f.height),
                caption: captions[row].text.clone(),
                caption_error: captions[row].error.clone(),
                content_hash: facts.map(|f| {
                    blake3::Hash::from_bytes(f.content_hash)
                        .to_hex()
                        .to_string()
                }),
                phash: facts.map(|f| f.phash),
                exact_group: groups.exact_group[row],
                dup_group: groups.dup_group[row],
                dup_kind: groups.dup_kind[row].map(|k| k.as_str().to_owned()),
                keeper,
                keep: decisions.keep[row],
                drop_reason: reason.map(|r| r.as_str().to_owned()),
                drop_detail,
                ood_score: (facts.is_some() || matches!(record.outcome, Outcome::VectorOnly))
                    .then(|| ood[row]),
                quality: scores[row].map(|s| s.values),
                quality_flags: flags.filter(|f| !f.is_empty()),
                x: xy[row].map(|p| p[0]),
                y: xy[row].map(|p| p[1]),
                noise_sigma: facts.map(|f| f.measures.noise),
                ..ReportRow::default()
            }
        })
        .collect()
}
