//! The model stage of the analysis: image embeddings (cached per content hash, decoded and
//! preprocessed on CPU threads one batch ahead of the model) from the default
//! EfficientNet-Lite0 (with its ImageNet class and the classifier's label-free OOD scores)
//! or from a CLIP folder (`--model CLIP_DIR`: caption alignment (CLIP score), zero-shot
//! labels with their OOD scores), and the links that join semantic duplicates into the
//! duplicate groups.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

use crate::analysis::knn::Neighbours;
use crate::dataset::{DecodeLimits, Scan, captions::Caption, decode};
use crate::embed::clip::tokenizer::ClipTokenizer;
use crate::embed::clip::{ClipModel, WEIGHTS_FILE, normalize_rows, preprocess};
use crate::embed::efficientnet::{self, EfficientNet};
use crate::embed::text::SentenceEncoder;
use crate::progress::{Progress, ProgressEvent, Stage};
use crate::store::cache::FileRecord;
use crate::store::embeddings::{self, EmbeddingCache};
use crate::store::report::ReportRow;

use super::PipelineError;

/// Default cosine similarity of CLIP image embeddings at or above which two images are
/// semantic duplicates. SemDeDup reports ε = 1 − cos between 0.05 and 0.3 on LAION; 0.95
/// (ε = 0.05) is its most conservative setting and keeps only near-identical content.
pub const DEFAULT_SEMANTIC_THRESHOLD: f32 = 0.95;

/// Default CLIP score (cosine of image and caption embeddings) below which a caption is
/// flagged as not describing its image. DataComp's CLIP-score filter keeps roughly the top
/// 30 % of CommonPool, a cosine near 0.28 with ViT-L/14 (0.3 with ViT-B/32); 0.2 flags only
/// clear mismatches.
pub const DEFAULT_CLIP_SCORE_THRESHOLD: f32 = 0.2;

/// Default cosine of sentence embeddings at or above which two captions are near
/// duplicates (paraphrases and templated captions; all-MiniLM-L6-v2 puts unrelated captions
/// well below 0.8).
pub const DEFAULT_CAPTION_THRESHOLD: f32 = 0.95;

/// Images per model batch.
pub const DEFAULT_BATCH: usize = 64;

/// The zero-shot prompt around each label.
pub const PROMPT: &str = "a photo of a {}.";

/// Model settings of a run.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// A Hugging Face CLIP folder.
    pub clip: Option<PathBuf>,
    /// An EfficientNet-Lite0 folder (the default model, see
    /// [`efficientnet::default_dir`]); ignored when `clip` is set.
    pub classifier: Option<PathBuf>,
    /// Zero-shot labels (needs `clip`).
    pub labels: Vec<String>,
    /// Semantic duplicate threshold (cosine).
    pub semantic_threshold: f32,
    /// CLIP-score flag threshold.
    pub clip_score_threshold: f32,
    /// Images per batch.
    pub batch: usize,
    /// A sentence-transformers folder: caption embeddings and caption near-duplicates.
    pub text: Option<PathBuf>,
    /// Cosine of caption embeddings at or above which captions are near-duplicates.
    pub caption_threshold: f32,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            clip: None,
            classifier: None,
            labels: Vec::new(),
            semantic_threshold: DEFAULT_SEMANTIC_THRESHOLD,
            clip_score_threshold: DEFAULT_CLIP_SCORE_THRESHOLD,
            batch: DEFAULT_BATCH,
            text: None,
            caption_threshold: DEFAULT_CAPTION_THRESHOLD,
        }
    }
}

/// Zero-shot classification of one image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelScores {
    /// Index of the predicted label.
    pub label: u32,
    /// The largest logit (`logit_scale · cosine`): low = unlike every label.
    pub max_logit: f32,
    /// Entropy of the softmax over labels (nats): high = unsure.
    pub entropy: f32,
    /// Probability of the first label minus the second's: low = torn between two.
    pub margin: f32,
}

/// What the model stage adds to a run.
#[derive(Debug, Default)]
pub struct Semantic {
    /// The model, in words.
    pub model: String,
    /// The model folder.
    pub dir: PathBuf,
    /// Embedding width.
    pub dim: usize,
    /// Unit-length image embeddings of the readable rows (`readable.len() × dim`).
    pub images: Vec<f32>,
    /// The classifier's pooled features as computed, not normalised (`readable.len() ×
    /// dim`; empty for CLIP, whose `images` are what `curate embed` writes).
    pub pooled: Vec<f32>,
    /// The classifier's class logits of the readable rows (`readable.len() ×`
    /// [`efficientnet::CLASSES`]; empty for CLIP).
    pub logits: Vec<f32>,
    /// Per row: cosine of image and caption embeddings.
    pub clip_score: Vec<Option<f32>>,
    /// Rows with a caption embedding, in order.
    pub caption_rows: Vec<u32>,
    /// Unit-length CLIP text embeddings of those captions (`caption_rows.len() × dim`).
    pub caption_embeddings: Vec<f32>,
    /// The labels asked for.
    pub labels: Vec<String>,
    /// Per row: zero-shot scores.
    pub label_scores: Vec<Option<LabelScores>>,
    /// Images embedded in this run (the rest came from the cache).
    pub embedded: usize,
    /// Problems (files that could not be decoded again).
    pub warnings: Vec<String>,
}

/// The image model of a run.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per run, never moved in a loop"
)]
pub enum ImageModel {
    /// A CLIP folder and its tokenizer, when it has one.
    Clip(ClipModel, Option<ClipTokenizer>),
    /// EfficientNet-Lite0, the default model.
    Classifier(EfficientNet),
}

impl ImageModel {
    /// The model, in words.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Clip(model, _) => format!("CLIP {}", model.dir.display()),
            Self::Classifier(model) => {
                format!("EfficientNet-Lite0 (ImageNet) {}", model.dir.display())
            }
        }
    }

    fn dir(&self) -> &Path {
        match self {
            Self::Clip(model, _) => &model.dir,
            Self::Classifier(model) => &model.dir,
        }
    }
}

/// Images per classifier batch on the CPU: run one per task over all threads (see
/// [`EfficientNet::forward_pixels`]) while the next batch is decoded.
const CPU_CLASSIFIER_BATCH: usize = 16;

/// Names what the classifier's cached vectors hold (pooled features then logits, at 224
/// px, icons at 128, large images area-reduced first); a change makes the cache start
/// afresh.
const CLASSIFIER_CACHE: &str = "efficientnet-lite0 pooled+logits 224/128 reduced";

/// Loads the CLIP model and its tokenizer (the tokenizer is optional: without one, captions
/// and labels are skipped with a warning).
pub fn load(
    dir: &Path,
    device: &burn::tensor::Device,
) -> Result<(ClipModel, Option<ClipTokenizer>, Option<String>), PipelineError> {
    let model = ClipModel::load(dir, device)?;
    match ClipTokenizer::from_folder(dir) {
        Ok(tokenizer) => Ok((model, Some(tokenizer), None)),
        Err(err) => Ok((model, None, Some(format!("no text features: {err}")))),
    }
}

/// Runs the stage over the readable rows.
#[allow(clippy::too_many_arguments)]
pub fn run(
    scan: &Scan,
    records: &[FileRecord],
    captions: &[Caption],
    readable: &[u32],
    image_model: &ImageModel,
    max_buffer: Option<u64>,
    options: &ModelOptions,
    limits: DecodeLimits,
    root: &Path,
    progress: &Progress,
) -> Result<Semantic, PipelineError> {
    // What the cache holds per image: the embedding, and for the classifier its logits.
    let (dim, stored) = match image_model {
        ImageModel::Clip(model, _) => (model.dim(), model.dim()),
        ImageModel::Classifier(_) => (
            efficientnet::FEATURE_DIM,
            efficientnet::FEATURE_DIM + efficientnet::CLASSES,
        ),
    };
    let mut digest =
        embeddings::model_digest(image_model.dir(), WEIGHTS_FILE).map_err(|source| {
            PipelineError::Write {
                what: format!("the model digest of {}", image_model.dir().display()),
                source,
            }
        })?;
    if matches!(image_model, ImageModel::Classifier(_)) {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&digest);
        hasher.update(CLASSIFIER_CACHE.as_bytes());
        digest = *hasher.finalize().as_bytes();
    }
    let mut cache = EmbeddingCache::open(root, &digest, stored);
    let hash = |row: u32| {
        records[row as usize]
            .facts()
            .expect("readable")
            .content_hash
    };

    // Images not in the cache, one batch decoding while the model runs the previous one.
    let mut todo: Vec<u32> = readable
        .iter()
        .copied()
        .filter(|&row| !cache.contains(&hash(row)))
        .collect();
    todo.sort_unstable_by_key(|&row| hash(row));
    todo.dedup_by_key(|row| hash(*row));
    progress.send(ProgressEvent::Started {
        stage: Stage::Embed,
        total: todo.len() as u64,
    });
    let warnings = Mutex::new(Vec::new());
    let batch = match image_model {
        ImageModel::Clip(model, _) => model.batch_for(options.batch.max(1), max_buffer),
        ImageModel::Classifier(_) if max_buffer.is_some() => options.batch.max(1),
        ImageModel::Classifier(_) => options.batch.clamp(1, CPU_CLASSIFIER_BATCH),
    };
    // The model's input side per image (the classifier looks at small icons at a smaller
    // side), and batches of one side each.
    let side_of = |row: u32| -> usize {
        match image_model {
            ImageModel::Clip(model, _) => model.config.vision.image_size,
            ImageModel::Classifier(_) => {
                let facts = records[row as usize].facts().expect("readable");
                EfficientNet::input_side(facts.width, facts.height) as usize
            }
        }
    };
    todo.sort_by_cached_key(|&row| side_of(row));
    let batches: Vec<(&[u32], usize)> = todo
        .chunk_by(|&a, &b| side_of(a) == side_of(b))
        .flat_map(|run| run.chunks(batch).map(|chunk| (chunk, side_of(chunk[0]))))
        .collect();
    let prepare = |img: &image::RgbImage, side: usize| -> Vec<f32> {
        match image_model {
            ImageModel::Clip(model, _) => preprocess::preprocess(img, &model.preprocess),
            ImageModel::Classifier(_) => EfficientNet::preprocess_at(img, side as u32),
        }
    };
    if matches!(image_model, ImageModel::Clip(..)) && batch < options.batch {
        log::info!(
            "model batch {batch} (of {} asked) to fit in memory",
            options.batch
        );
    }
    std::thread::scope(|scope| {
        let (send, receive) = sync_channel::<(Vec<u32>, Vec<f32>, usize)>(1);
        let (batches, warnings, prepare) = (&batches, &warnings, &prepare);
        scope.spawn(move || {
            for &(chunk, side) in batches {
                if progress.is_cancelled() {
                    break;
                }
                let plane = 3 * side * side;
                let pixels: Vec<f32> = chunk
                    .par_iter()
                    .flat_map_iter(|&row| {
                        let entry = &scan.images[row as usize];
                        let decoded = entry
                            .read()
                            .map_err(|err| err.to_string())
                            .and_then(|bytes| {
                                decode::decode_rgb(&bytes, limits).map_err(|err| err.to_string())
                            });
                        match decoded {
                            Ok(img) => prepare(&img, side),
                            Err(err) => {
                                warnings.lock().expect("not poisoned").push(format!(
                                    "{}: could not be decoded for the model ({err}); it has no embedding",
                                    entry.rel_path
                                ));
                                vec![0.0; plane]
                            }
                        }
                    })
                    .collect();
                if send.send((chunk.to_vec(), pixels, side)).is_err() {
                    break;
                }
            }
        });
        let mut done = 0;
        for (rows, pixels, side) in receive {
            match image_model {
                ImageModel::Clip(model, _) => {
                    let features = model.embed_pixels(pixels, rows.len());
                    for (&row, feature) in rows.iter().zip(features.chunks_exact(dim)) {
                        cache.insert(hash(row), feature);
                    }
                }
                ImageModel::Classifier(model) => {
                    let out = model.forward_pixels(pixels, rows.len(), side);
                    for (i, &row) in rows.iter().enumerate() {
                        let mut values = out.features[i * dim..(i + 1) * dim].to_vec();
                        values.extend_from_slice(
                            &out.logits[i * efficientnet::CLASSES..(i + 1) * efficientnet::CLASSES],
                        );
                        cache.insert(hash(row), &values);
                    }
                }
            }
            done += rows.len();
            progress.send(ProgressEvent::Advanced {
                stage: Stage::Embed,
                done: done as u64,
            });
            if progress.is_cancelled() {
                break;
            }
        }
    });
    if progress.is_cancelled() {
        cache.save().ok();
        return Err(PipelineError::Cancelled);
    }

    let mut images = Vec::with_capacity(readable.len() * dim);
    let mut logits = Vec::new();
    for &row in readable {
        let values = cache.get(&hash(row)).unwrap_or_else(|| vec![0.0; stored]);
        images.extend_from_slice(&values[..dim]);
        logits.extend_from_slice(&values[dim..]);
    }
    let pooled = match image_model {
        ImageModel::Clip(..) => Vec::new(),
        ImageModel::Classifier(_) => images.clone(),
    };
    normalize_rows(&mut images, dim);

    let mut semantic = Semantic {
        model: image_model.describe(),
        dir: image_model.dir().to_owned(),
        dim,
        clip_score: vec![None; records.len()],
        label_scores: vec![None; records.len()],
        labels: options.labels.clone(),
        caption_rows: Vec::new(),
        caption_embeddings: Vec::new(),
        embedded: todo.len(),
        warnings: warnings.into_inner().expect("not poisoned"),
        images,
        pooled,
        logits: Vec::new(),
    };
    let (model, tokenizer) = match image_model {
        ImageModel::Clip(model, tokenizer) => (model, tokenizer.as_ref()),
        ImageModel::Classifier(model) => {
            // The classifier's own labels: ImageNet's classes, scored from its logits.
            semantic.labels.clone_from(&model.classes);
            for (point, &row) in readable.iter().enumerate() {
                let of =
                    &logits[point * efficientnet::CLASSES..(point + 1) * efficientnet::CLASSES];
                if of.iter().any(|&v| v != 0.0) {
                    semantic.label_scores[row as usize] = Some(zero_shot(of));
                }
            }
            semantic.logits = logits;
            return finish(cache, semantic, progress);
        }
    };
    if let Some(tokenizer) = tokenizer {
        let mut embed_texts = |texts: &[&str]| -> Vec<f32> {
            let keys: Vec<[u8; 32]> = texts.iter().map(|t| embeddings::text_key(t)).collect();
            let missing: Vec<usize> = (0..texts.len())
                .filter(|&i| !cache.contains(&keys[i]))
                .collect();
            for chunk in missing.chunks(256) {
                let ids: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|&i| tokenizer.tokenize(texts[i]))
                    .collect();
                let features = model.embed_token_ids(&ids);
                for (&i, feature) in chunk.iter().zip(features.chunks_exact(dim)) {
                    cache.insert(keys[i], feature);
                }
            }
            let mut out: Vec<f32> = keys
                .iter()
                .flat_map(|k| cache.get(k).unwrap_or_else(|| vec![0.0; dim]))
                .collect();
            normalize_rows(&mut out, dim);
            out
        };
        // Captions.
        let captioned: Vec<(usize, u32)> = readable
            .iter()
            .enumerate()
            .filter(|(_, row)| captions[**row as usize].text.is_some())
            .map(|(point, &row)| (point, row))
            .collect();
        let texts: Vec<&str> = captioned
            .iter()
            .map(|&(_, row)| captions[row as usize].text.as_deref().expect("captioned"))
            .collect();
        let text_features = embed_texts(&texts);
        for (&(point, row), text) in captioned.iter().zip(text_features.chunks_exact(dim)) {
            let image = &semantic.images[point * dim..(point + 1) * dim];
            semantic.clip_score[row as usize] = Some(dot(image, text));
        }
        semantic.caption_rows = captioned.iter().map(|&(_, row)| row).collect();
        semantic.caption_embeddings = text_features;
        // Zero-shot labels.
        if !options.labels.is_empty() {
            let prompts: Vec<String> = options
                .labels
                .iter()
                .map(|l| PROMPT.replace("{}", l))
                .collect();
            let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
            let label_features = embed_texts(&prompts);
            for (point, &row) in readable.iter().enumerate() {
                let image = &semantic.images[point * dim..(point + 1) * dim];
                let logits: Vec<f32> = label_features
                    .chunks_exact(dim)
                    .map(|label| model.logit_scale * dot(image, label))
                    .collect();
                semantic.label_scores[row as usize] = Some(zero_shot(&logits));
            }
        }
    } else if !options.labels.is_empty() {
        semantic.warnings.push(
            "--labels needs the model's tokenizer (vocab.json + merges.txt or tokenizer.json)"
                .to_owned(),
        );
    }
    finish(cache, semantic, progress)
}

/// Saves the embedding cache and ends the stage.
fn finish(
    mut cache: EmbeddingCache,
    semantic: Semantic,
    progress: &Progress,
) -> Result<Semantic, PipelineError> {
    cache.save().map_err(|source| PipelineError::Write {
        what: "the embedding cache".to_owned(),
        source,
    })?;
    progress.send(ProgressEvent::Finished {
        stage: Stage::Embed,
    });
    Ok(semantic)
}

/// Caption embeddings from a sentence encoder, and caption near-duplicate groups.
#[derive(Debug, Default)]
pub struct CaptionSemantics {
    /// The encoder, in words.
    pub model: String,
    /// Embedding width.
    pub dim: usize,
    /// Rows with a caption, in order.
    pub rows: Vec<u32>,
    /// Their unit-length embeddings (`rows.len() × dim`).
    pub embeddings: Vec<f32>,
    /// Per row: the caption group (captions at or above the threshold), when in one.
    pub group: Vec<Option<i64>>,
    /// Number of caption groups.
    pub groups: usize,
    /// Captions embedded in this run (the rest came from the cache).
    pub embedded: usize,
}

/// Embeds the captions of the readable rows with `encoder` (cached per caption text) and
/// groups near-identical ones (star-shaped, like [`links`]).
#[allow(clippy::too_many_arguments)]
pub fn caption_semantics(
    encoder: &SentenceEncoder,
    dir: &Path,
    captions: &[Caption],
    readable: &[u32],
    threshold: f32,
    root: &Path,
    device: &burn::tensor::Device,
    progress: &Progress,
) -> Result<CaptionSemantics, PipelineError> {
    let dim = encoder.dim();
    let digest =
        embeddings::model_digest(dir, WEIGHTS_FILE).map_err(|source| PipelineError::Write {
            what: format!("the model digest of {}", dir.display()),
            source,
        })?;
    let mut cache = EmbeddingCache::open(root, &digest, dim);
    let rows: Vec<u32> = readable
        .iter()
        .copied()
        .filter(|&r| captions[r as usize].text.is_some())
        .collect();
    let texts: Vec<&str> = rows
        .iter()
        .map(|&r| captions[r as usize].text.as_deref().expect("captioned"))
        .collect();
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| embeddings::text_key(t)).collect();
    let mut missing: Vec<usize> = (0..texts.len())
        .filter(|&i| !cache.contains(&keys[i]))
        .collect();
    missing.sort_unstable_by_key(|&i| keys[i]);
    missing.dedup_by_key(|i| keys[*i]);
    progress.send(ProgressEvent::Started {
        stage: Stage::Embed,
        total: missing.len() as u64,
    });
    for (done, chunk) in missing.chunks(256).enumerate() {
        if progress.is_cancelled() {
            cache.save().ok();
            return Err(PipelineError::Cancelled);
        }
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        for (&i, vector) in chunk.iter().zip(encoder.embed(&batch)) {
            cache.insert(keys[i], &vector);
        }
        progress.send(ProgressEvent::Advanced {
            stage: Stage::Embed,
            done: ((done + 1) * 256).min(missing.len()) as u64,
        });
    }
    cache.save().map_err(|source| PipelineError::Write {
        what: "the caption embedding cache".to_owned(),
        source,
    })?;
    let mut vectors: Vec<f32> = keys
        .iter()
        .flat_map(|k| cache.get(k).unwrap_or_else(|| vec![0.0; dim]))
        .collect();
    normalize_rows(&mut vectors, dim);

    // Identical captions group by their text; near-identical ones through the neighbour
    // graph of the distinct texts (so a caption repeated a thousand times does not crowd
    // out its paraphrases among the k nearest).
    let mut distinct: Vec<usize> = Vec::new();
    let mut text_of_key: std::collections::HashMap<[u8; 32], u32> =
        std::collections::HashMap::new();
    let text_index: Vec<u32> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            *text_of_key.entry(*key).or_insert_with(|| {
                distinct.push(i);
                distinct.len() as u32 - 1
            })
        })
        .collect();
    let distinct_vectors: Vec<f32> = distinct
        .iter()
        .flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let graph = crate::analysis::knn::exact(
        &distinct_vectors,
        dim,
        crate::analysis::knn::STORED_NEIGHBOURS,
        device,
        &Progress::silent(),
    );
    let ids: Vec<u32> = (0..distinct.len() as u32).collect();
    let mut sets = crate::analysis::dedup::UnionFind::new(distinct.len());
    let mut grouped = vec![false; distinct.len()];
    for (a, b) in links(&graph, &ids, threshold) {
        sets.union(a, b);
        grouped[a as usize] = true;
        grouped[b as usize] = true;
    }
    let mut count = vec![0_u32; distinct.len()];
    for &t in &text_index {
        count[t as usize] += 1;
    }
    let mut group = vec![None; captions.len()];
    let mut group_ids: std::collections::HashMap<u32, i64> = std::collections::HashMap::new();
    for (&row, &t) in rows.iter().zip(&text_index) {
        if grouped[t as usize] || count[t as usize] > 1 {
            let root = sets.find(t);
            let next = group_ids.len() as i64;
            group[row as usize] = Some(*group_ids.entry(root).or_insert(next));
        }
    }
    let ids = group_ids;
    Ok(CaptionSemantics {
        model: format!("sentence encoder {}", dir.display()),
        dim,
        rows,
        embeddings: vectors,
        groups: ids.len(),
        group,
        embedded: missing.len(),
    })
}

/// What it takes to regroup the semantic duplicates for another threshold without
/// re-clustering (the app's live slider): the cached within-cluster pairs and the run's
/// near-duplicate setting.
#[derive(Debug)]
pub struct SemanticPairs {
    /// Clusters and pairs over the readable rows (positions in `readable`).
    pub found: crate::analysis::semdedup::SemDeDup,
    /// The threshold the run used.
    pub threshold: f32,
    /// The lowest threshold the cached pairs allow.
    pub floor: f32,
}

/// Points `0..n` largest image first (ties in index order): the order semantic groups are
/// claimed in, so the usual keeper (most pixels) is the claimer.
#[must_use]
pub fn largest_first(n: usize, pixels: impl Fn(u32) -> u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&p| (std::cmp::Reverse(pixels(p)), p));
    order
}

/// The semantic links at cosine `threshold` (clamped to the cached floor) that touch a row
/// without an image: pairs of images on disk join only through the pixel verification.
#[must_use]
pub fn imageless_links(
    rows: &[ReportRow],
    pairs: &SemanticPairs,
    threshold: f32,
) -> Vec<crate::analysis::dedup::DupLink> {
    let readable: Vec<u32> = (0..rows.len() as u32)
        .filter(|&r| rows[r as usize].status == "ok")
        .collect();
    let pixels = |p: u32| {
        let r = &rows[readable[p as usize] as usize];
        u64::from(r.width.unwrap_or(0)) * u64::from(r.height.unwrap_or(0))
    };
    let priority = largest_first(readable.len(), pixels);
    let threshold = threshold.clamp(pairs.floor, 1.0);
    pairs
        .found
        .links(1.0 - threshold, &priority)
        .into_iter()
        .map(|(a, b)| (readable[a as usize], readable[b as usize]))
        .filter(|&(a, b)| rows[a as usize].width.is_none() || rows[b as usize].width.is_none())
        .map(|(a, b)| crate::analysis::dedup::DupLink {
            a,
            b,
            kind: crate::analysis::dedup::DupKind::Semantic,
        })
        .collect()
}

/// The report rows regrouped from `links` (exact copies always group; `rejected` pairs
/// keep look-alikes apart) by the same rules as the run (`dedup::group_with`, then
/// [`super::rekeep::redecide`] under `policy`, with `learned` scores per row when labels
/// taught one, and `pinned` rows kept as their group's keeper). Outlier drops of the run
/// are kept.
#[must_use]
pub fn regroup(
    rows: &[ReportRow],
    links: &[crate::analysis::dedup::DupLink],
    rejected: &[(u32, u32)],
    policy: crate::analysis::keep::KeeperPolicy,
    learned: Option<&[f32]>,
    pinned: &[bool],
) -> Vec<ReportRow> {
    let content = super::rekeep::content(rows);
    let facts = super::rekeep::facts(rows, None);
    let mut links = links.to_vec();
    links.sort_by_key(|l| {
        (
            l.a.min(l.b),
            l.a.max(l.b),
            l.kind != crate::analysis::dedup::DupKind::Near,
        )
    });
    let mut rejected: Vec<(u32, u32)> = rejected
        .iter()
        .map(|&(a, b)| (a.min(b), a.max(b)))
        .collect();
    rejected.sort_unstable();
    rejected.dedup();
    let rank = crate::analysis::keep::quality_rank(&facts);
    let groups = crate::analysis::dedup::group_with(&content, &links, &rejected, &rank);
    super::rekeep::redecide(rows, &groups, policy, learned, Some(pinned)).0
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Softmax statistics of one image's label logits.
#[must_use]
pub fn zero_shot(logits: &[f32]) -> LabelScores {
    let (best, max_logit) =
        logits
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, (i, v)| if v > acc.1 { (i, v) } else { acc },
            );
    let exp: Vec<f64> = logits
        .iter()
        .map(|&v| f64::from(v - max_logit).exp())
        .collect();
    let total: f64 = exp.iter().sum();
    let mut probs: Vec<f64> = exp.iter().map(|e| e / total).collect();
    let entropy = -probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|p| p * p.ln())
        .sum::<f64>();
    probs.sort_by(|a, b| b.total_cmp(a));
    let margin = probs[0] - probs.get(1).copied().unwrap_or(0.0);
    LabelScores {
        label: best as u32,
        max_logit,
        entropy: entropy as f32,
        margin: margin as f32,
    }
}

/// Semantic duplicate links (record rows) from the k-NN graph over the readable rows:
/// star-shaped, as in SemDeDup, so similarity does not chain. Each image not yet taken
/// claims its neighbours at or above `threshold` that are neither taken nor claiming
/// themselves; a claimed image links only to its claimer.
#[must_use]
pub fn links(graph: &Neighbours, readable: &[u32], threshold: f32) -> Vec<(u32, u32)> {
    let n = graph.len();
    let k = graph.k.max(1);
    let partners: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            let row = i * k..(i + 1) * k;
            graph.indices[row.clone()]
                .iter()
                .zip(&graph.similarities[row])
                .filter(|&(&j, &sim)| (j as usize) < n && sim >= threshold)
                .map(|(&j, _)| j)
                .collect()
        })
        .collect();
    crate::analysis::semdedup::star_links(&partners, 0..n)
        .into_iter()
        .map(|(a, b)| (readable[a as usize], readable[b as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_shot_statistics() {
        let s = zero_shot(&[1.0, 1.0]);
        assert!((s.entropy - std::f32::consts::LN_2).abs() < 1e-6);
        assert!(s.margin.abs() < 1e-6);
        let s = zero_shot(&[10.0, 0.0, -5.0]);
        assert_eq!(s.label, 0);
        assert!((s.max_logit - 10.0).abs() < 1e-6);
        assert!(s.margin > 0.99 && s.entropy < 0.01);
    }

    #[test]
    fn links_take_pairs_above_the_threshold_once() {
        let graph = Neighbours {
            k: 2,
            indices: vec![1, 2, 0, 2, 0, u32::MAX],
            similarities: vec![0.99, 0.5, 0.99, 0.96, 0.5, f32::NEG_INFINITY],
        };
        // 0 claims 1; 1 is taken, so 1–2 does not chain 2 into the group.
        let pairs = links(&graph, &[10, 11, 12], 0.95);
        assert_eq!(pairs, vec![(10, 11)]);
    }
}
