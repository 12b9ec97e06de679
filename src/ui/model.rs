//! What the app shows: one [`Collection`] of points (the readable images of an analysis, or
//! synthetic points in stress mode), stored column by column so a million points stay well
//! under 100 bytes each.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::analysis::classes::DISPUTED;
use crate::analysis::keep::DropReason;
use crate::analysis::quality::SCORE_NAMES;
use crate::pipeline::{Analysis, OutlierScore, Summary};
use crate::store::cache::ThumbRef;
use crate::store::report::ReportRow;

use super::search::PointEmbeddings;
use crate::pipeline::semantic::SemanticPairs;

/// Number of quality measures.
pub const MEASURES: usize = SCORE_NAMES.len();

/// Quality scores are stored as `u16` fractions of 1 (they are all in `0..=1`).
const QUALITY_SCALE: f32 = 65535.0;

/// Kind of duplicate, per point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DupKind {
    /// Not in a duplicate group.
    None = 0,
    /// Byte-identical copy in the group.
    Exact = 1,
    /// Perceptual near copy.
    Near = 2,
    /// Nearly the same model embedding.
    Semantic = 3,
}

/// A duplicate group: its members (point indices) and the analysis' keeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Points in the group.
    pub members: Vec<u32>,
    /// The keeper the analysis chose.
    pub keeper: u32,
}

/// A file that could not be read, shown in the Problems panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Relative path.
    pub path: String,
    /// Error kind (`truncated`, `not_an_image`, ...).
    pub kind: String,
    /// The reason in words.
    pub message: String,
}

/// Where per-point details and thumbnails come from.
#[derive(Debug)]
pub enum Source {
    /// An analysed folder.
    Dataset {
        /// The folder.
        root: PathBuf,
        /// Every report row, readable or not, in scan order.
        rows: Vec<ReportRow>,
        /// The report row of each point.
        point_row: Vec<u32>,
        /// The thumbnail pack.
        pack: PathBuf,
        /// Each point's thumbnail in the pack.
        thumbs: Vec<ThumbRef>,
    },
    /// Stress mode: generated points and generated thumbnails.
    Synthetic {
        /// The seed.
        seed: u64,
        /// Each point's cluster (drives the fake thumbnail's look).
        cluster: Vec<u16>,
    },
}

/// The points of the map and everything the panels need about them.
#[derive(Debug)]
pub struct Collection {
    /// Unique per collection, so the renderer knows when to replace its buffers.
    pub scene: u64,
    /// Map positions (shared with the renderer's upload, not copied).
    pub positions: Arc<Vec<[f32; 2]>>,
    /// Their bounding box, computed once (the camera asks for it every frame in stress mode).
    bounds: [f32; 4],
    /// Duplicate group per point, -1 for none.
    pub group: Vec<i32>,
    /// Duplicate kind per point.
    pub dup_kind: Vec<DupKind>,
    /// Outlier score per point (higher = more unusual): the one chosen in the app.
    pub ood: Vec<f32>,
    /// The outlier scores per point, in [`OutlierScore::ALL`] order (datasets only).
    pub ood_by: Option<[Vec<f32>; 4]>,
    /// Quality scores per point, `u16` fractions of 1 (see [`Self::quality`]).
    quality: Vec<[u16; MEASURES]>,
    /// Whether the point's image has a caption.
    pub captioned: Vec<bool>,
    /// The analysis' own decision: `None` = keep, else why it drops the point.
    pub auto_drop: Vec<Option<DropReason>>,
    /// Duplicate groups, indexed by group id.
    pub groups: Vec<Group>,
    /// Files that could not be read.
    pub problems: Vec<Problem>,
    /// Warnings of the run (folders, caption manifests).
    pub warnings: Vec<String>,
    /// The analysis summary (not in stress mode).
    pub summary: Option<Summary>,
    /// Details and thumbnails.
    pub source: Arc<Source>,
    /// Set while the analysis is still running: this is a preview of the images decoded so
    /// far (no outlier scores yet).
    pub preview: Option<PreviewState>,
    /// Image embeddings of the points and the model folder (default model or `--model`).
    pub embeddings: Option<(Arc<PointEmbeddings>, PathBuf)>,
    /// Whether the model has a text tower (CLIP): the text search box.
    pub text_search: bool,
    /// The classifier's class per point (default model).
    pub classes: Classes,
    /// The classes the images were given (`--class-from`) and what the data says.
    pub given_classes: Option<Arc<GivenClasses>>,
    /// The cached semantic pairs, for regrouping at another threshold (with `--model`).
    pub semantic_pairs: Option<Arc<SemanticPairs>>,
    /// Every near-duplicate candidate pair (report rows) with its pixel verdict, for
    /// regrouping at another pixel-difference threshold and for showing where the line is.
    pub near: Arc<crate::pipeline::near::NearPairs>,
    /// Per near-duplicate caption group (report `caption_dup_group`): its images, and how
    /// many of them are also in an image duplicate group; counted when first asked.
    caption_dups: std::sync::OnceLock<std::collections::HashMap<i64, (u32, u32)>>,
}

/// How far the analysis behind a preview collection has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviewState {
    /// Files decoded (or taken from the cache) so far.
    pub ready: usize,
    /// Files in the folder.
    pub files: usize,
}

static NEXT_SCENE: AtomicU64 = AtomicU64::new(1);

fn quantize(score: f32) -> u16 {
    (score.clamp(0.0, 1.0) * QUALITY_SCALE).round() as u16
}

/// The class of every point (the default model's ImageNet class), by frequency.
#[derive(Clone, Debug, Default)]
pub struct Classes {
    /// Class names, the most frequent first.
    pub names: Vec<String>,
    /// Points per class, in `names` order.
    pub counts: Vec<u32>,
    /// Per point: its index in `names`, or `u16::MAX` for none.
    pub of: Vec<u16>,
}

impl Classes {
    /// The classes of points labelled `labels` (one per point, `None` for none).
    #[must_use]
    pub fn new<'a>(labels: impl Iterator<Item = Option<&'a str>>) -> Self {
        let labels: Vec<Option<&str>> = labels.collect();
        let mut counts: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        for label in labels.iter().flatten() {
            *counts.entry(label).or_default() += 1;
        }
        let mut names: Vec<(&str, u32)> = counts.into_iter().collect();
        names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        names.truncate(usize::from(u16::MAX));
        let index: std::collections::HashMap<&str, u16> = names
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (*name, i as u16))
            .collect();
        Self {
            of: labels
                .iter()
                .map(|l| l.and_then(|l| index.get(l).copied()).unwrap_or(u16::MAX))
                .collect(),
            counts: names.iter().map(|(_, c)| *c).collect(),
            names: names.into_iter().map(|(n, _)| n.to_owned()).collect(),
        }
    }

    /// Whether no point has a class.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The classes the images were given (`--class-from`: report `given_class`,
/// `class_issue_score`, `suggested_class`), per point, with what the Classes panel shows
/// derived once (not every frame).
#[derive(Clone, Debug, Default)]
pub struct GivenClasses {
    /// Class names, sorted.
    pub names: Vec<String>,
    /// Points given each class, in `names` order.
    pub counts: Vec<u32>,
    /// Per point: its given class, `u16::MAX` for none.
    pub given: Vec<u16>,
    /// Per point: the class the data suggests, `u16::MAX` for none.
    pub suggested: Vec<u16>,
    /// Per point: the class issue score (0–1, higher = more likely wrong), NaN for none.
    pub score: Vec<f32>,
    /// Points with a given class.
    pub classed: usize,
    /// Points whose class is disputed (see [`Self::disputed`]).
    pub disputed_count: usize,
    /// The scored points, the most likely wrong first.
    order: Vec<u32>,
    /// (given, suggested) pairs of the disputed points with their counts, the most first.
    confusions: Vec<((u16, u16), u32)>,
}

impl GivenClasses {
    /// The columns of the `readable` rows; `None` when no row has a given class.
    #[must_use]
    pub fn new(rows: &[ReportRow], readable: &[u32]) -> Option<Self> {
        let names: Vec<String> = readable
            .iter()
            .flat_map(|&r| {
                let row = &rows[r as usize];
                [row.given_class.as_deref(), row.suggested_class.as_deref()]
            })
            .flatten()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .take(usize::from(u16::MAX))
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return None;
        }
        let index = |name: Option<&str>| {
            name.and_then(|n| names.binary_search_by(|m| m.as_str().cmp(n)).ok())
                .map_or(u16::MAX, |i| i as u16)
        };
        let mut counts = vec![0_u32; names.len()];
        let (mut given, mut suggested, mut score) = (Vec::new(), Vec::new(), Vec::new());
        for &r in readable {
            let row = &rows[r as usize];
            let g = index(row.given_class.as_deref());
            if let Some(count) = counts.get_mut(usize::from(g)) {
                *count += 1;
            }
            given.push(g);
            suggested.push(index(row.suggested_class.as_deref()));
            score.push(row.class_issue_score.unwrap_or(f32::NAN));
        }
        let mut order: Vec<u32> = (0..score.len() as u32)
            .filter(|&p| !score[p as usize].is_nan())
            .collect();
        order.sort_by(|&a, &b| {
            score[b as usize]
                .total_cmp(&score[a as usize])
                .then(a.cmp(&b))
        });
        let mut pairs: std::collections::HashMap<(u16, u16), u32> =
            std::collections::HashMap::new();
        let mut disputed_count = 0;
        for p in order.iter().map(|&p| p as usize) {
            if score[p] > DISPUTED {
                disputed_count += 1;
                *pairs.entry((given[p], suggested[p])).or_default() += 1;
            }
        }
        let mut confusions: Vec<_> = pairs.into_iter().collect();
        confusions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Self {
            classed: given.iter().filter(|&&g| g != u16::MAX).count(),
            disputed_count,
            names,
            counts,
            given,
            suggested,
            score,
            order,
            confusions,
        })
    }

    /// Whether point `p`'s class is disputed (another class fits it better).
    #[must_use]
    pub fn disputed(&self, p: usize) -> bool {
        self.score.get(p).is_some_and(|&s| s > DISPUTED)
    }

    /// The name of class `c`, if any.
    #[must_use]
    pub fn name(&self, c: u16) -> Option<&str> {
        self.names.get(usize::from(c)).map(String::as_str)
    }

    /// Pairs of (given, suggested) classes of the disputed points with how many points
    /// each, the most first: which classes get confused.
    #[must_use]
    pub fn confusions(&self) -> &[((u16, u16), u32)] {
        &self.confusions
    }

    /// The first `limit` points given class `class` (every class for `None`; only those
    /// suggested `suggested` when set), the most likely wrong first.
    #[must_use]
    pub fn worst(&self, class: Option<u16>, suggested: Option<u16>, limit: usize) -> Vec<u32> {
        self.order
            .iter()
            .copied()
            .filter(|&p| {
                class.is_none_or(|c| self.given[p as usize] == c)
                    && suggested.is_none_or(|c| self.suggested[p as usize] == c)
            })
            .take(limit)
            .collect()
    }
}

impl Collection {
    /// Number of points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are no points.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Quality measure `measure` (index into [`SCORE_NAMES`]) of point `i`, in `0..=1`.
    #[must_use]
    pub fn quality(&self, i: usize, measure: usize) -> f32 {
        f32::from(self.quality[i][measure]) / QUALITY_SCALE
    }

    /// Builds the collection of an analysis: one point per readable image.
    #[must_use]
    pub fn from_analysis(analysis: Analysis) -> Self {
        let Analysis {
            root,
            rows,
            records,
            summary,
            warnings,
            thumbnail_pack,
            semantic,
            semantic_pairs,
            near,
            ..
        } = analysis;
        let text_search = semantic.as_ref().is_some_and(|s| s.pooled.is_empty());
        // Embedding pairs group only rows without an image (images on disk join through
        // their pixels): without such rows there is nothing for the semantic slider to do.
        let semantic_pairs =
            semantic_pairs.filter(|_| rows.iter().any(|r| r.status == "ok" && r.width.is_none()));
        let embeddings =
            semantic.map(|s| (Arc::new(PointEmbeddings::new(s.dim, &s.images)), s.dir));
        let readable: Vec<u32> = (0..rows.len() as u32)
            .filter(|&r| rows[r as usize].status == "ok")
            .collect();
        let mut point_of_row = vec![u32::MAX; rows.len()];
        for (point, &row) in readable.iter().enumerate() {
            point_of_row[row as usize] = point as u32;
        }
        let n = readable.len();
        let mut positions = Vec::with_capacity(n);
        let mut ood = Vec::with_capacity(n);
        let mut ood_by: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut quality = Vec::with_capacity(n);
        let mut captioned = Vec::with_capacity(n);
        let mut thumbs = Vec::with_capacity(n);
        let (group, dup_kind, groups, auto_drop) = group_columns(&rows, &readable);
        for &row in &readable {
            let r = &rows[row as usize];
            positions.push([r.x.unwrap_or(0.0), r.y.unwrap_or(0.0)]);
            ood.push(r.ood_score.unwrap_or(0.0));
            for (kind, column) in OutlierScore::ALL.iter().zip(&mut ood_by) {
                let value = match kind {
                    OutlierScore::Kth => r.ood_kth,
                    OutlierScore::MeanKnn => r.ood_mean_knn,
                    OutlierScore::Mahalanobis => r.ood_mahalanobis,
                    OutlierScore::Combined => r.ood_combined,
                };
                column.push(value.or(r.ood_score).unwrap_or(0.0));
            }
            quality.push(r.quality.unwrap_or_default().map(quantize));
            captioned.push(r.caption.is_some());
            thumbs.push(
                records[row as usize]
                    .facts()
                    .map(|f| f.thumb)
                    .unwrap_or_default(),
            );
        }
        let classes = Classes::new(readable.iter().map(|&r| rows[r as usize].label.as_deref()));
        let problems = rows
            .iter()
            .filter(|r| r.status != "ok")
            .map(|r| Problem {
                path: r.path.clone(),
                kind: r.status.clone(),
                message: r.error.clone().unwrap_or_default(),
            })
            .collect();
        Self {
            scene: NEXT_SCENE.fetch_add(1, Ordering::Relaxed),
            bounds: bounds(&positions),
            positions: Arc::new(positions),
            group,
            dup_kind,
            ood,
            quality,
            captioned,
            auto_drop,
            groups,
            problems,
            warnings,
            summary: Some(summary),
            ood_by: Some(ood_by),
            preview: None,
            embeddings,
            text_search,
            given_classes: GivenClasses::new(&rows, &readable).map(Arc::new),
            classes,
            semantic_pairs,
            near,
            caption_dups: std::sync::OnceLock::new(),
            source: Arc::new(Source::Dataset {
                root,
                rows,
                point_row: readable,
                pack: thumbnail_pack,
                thumbs,
            }),
        }
    }

    /// Takes regrouped report rows (same files, same order; see
    /// [`crate::pipeline::semantic::regroup`]): groups, kinds, keepers and the analysis'
    /// own keep/drop change, points and the user's marks stay.
    pub fn apply_rows(&mut self, rows: Vec<ReportRow>) {
        let Source::Dataset {
            root,
            point_row,
            pack,
            thumbs,
            ..
        } = &*self.source
        else {
            return;
        };
        let (group, dup_kind, groups, auto_drop) = group_columns(&rows, point_row);
        self.group = group;
        self.dup_kind = dup_kind;
        self.groups = groups;
        self.auto_drop = auto_drop;
        self.source = Arc::new(Source::Dataset {
            root: root.clone(),
            point_row: point_row.clone(),
            pack: pack.clone(),
            thumbs: thumbs.clone(),
            rows,
        });
    }

    /// The report row of point `i` (datasets only).
    #[must_use]
    pub fn row(&self, i: usize) -> Option<&ReportRow> {
        match &*self.source {
            Source::Dataset {
                rows, point_row, ..
            } => rows.get(*point_row.get(i)? as usize),
            Source::Synthetic { .. } => None,
        }
    }

    /// Point `i`'s near-duplicate caption group (MinHash) as `(group, images in it, of
    /// those also in an image duplicate group)`; `None` when its caption has none.
    #[must_use]
    pub fn caption_duplicates(&self, i: usize) -> Option<(i64, u32, u32)> {
        let group = self.row(i)?.caption_dup_group.filter(|&g| g >= 0)?;
        let &(members, duplicated) = self.caption_dup_counts().get(&group)?;
        Some((group, members, duplicated))
    }

    /// Near-duplicate captions over the whole collection: `(groups, images in them, of
    /// those also in an image duplicate group)`; all zero without captions.
    #[must_use]
    pub fn caption_duplicate_totals(&self) -> (usize, u32, u32) {
        let counts = self.caption_dup_counts();
        counts
            .values()
            .fold((counts.len(), 0, 0), |(g, m, d), &(members, both)| {
                (g, m + members, d + both)
            })
    }

    fn caption_dup_counts(&self) -> &std::collections::HashMap<i64, (u32, u32)> {
        self.caption_dups.get_or_init(|| {
            let mut counts = std::collections::HashMap::new();
            if let Source::Dataset { rows, .. } = &*self.source {
                for r in rows {
                    if let Some(g) = r.caption_dup_group.filter(|&g| g >= 0) {
                        let entry: &mut (u32, u32) = counts.entry(g).or_default();
                        entry.0 += 1;
                        entry.1 += u32::from(r.dup_group >= 0);
                    }
                }
            }
            counts
        })
    }

    /// Every point by relative path (to carry things that are kept by path, such as saved
    /// decisions, labels and selections, over to this collection).
    #[must_use]
    pub fn point_index(&self) -> std::collections::HashMap<String, u32> {
        (0..self.len()).map(|i| (self.path(i), i as u32)).collect()
    }

    /// The relative path of point `i` (a made-up one in stress mode).
    #[must_use]
    pub fn path(&self, i: usize) -> String {
        match self.row(i) {
            Some(row) => row.path.clone(),
            None => format!("synthetic/{i:08}.jpg"),
        }
    }

    /// The caption of point `i`.
    #[must_use]
    pub fn caption(&self, i: usize) -> Option<&str> {
        self.row(i).and_then(|r| r.caption.as_deref())
    }

    /// The dataset folder (not in stress mode).
    #[must_use]
    pub fn root(&self) -> Option<&PathBuf> {
        match &*self.source {
            Source::Dataset { root, .. } => Some(root),
            Source::Synthetic { .. } => None,
        }
    }

    /// The map's bounding box: `[min_x, min_y, max_x, max_y]`.
    #[must_use]
    pub fn bounds(&self) -> [f32; 4] {
        self.bounds
    }

    /// Bytes held per point by the map's columns (CPU side), for the memory budget.
    #[must_use]
    pub fn bytes_per_point(&self) -> f64 {
        let n = self.len().max(1) as f64;
        let columns = self.positions.capacity() * 8
            + self.group.capacity() * 4
            + self.dup_kind.capacity()
            + self.ood.capacity() * 4
            + self
                .ood_by
                .as_ref()
                .map_or(0, |by| by.iter().map(|v| v.capacity() * 4).sum())
            + self.quality.capacity() * std::mem::size_of::<[u16; MEASURES]>()
            + self.captioned.capacity()
            + self.auto_drop.capacity() * std::mem::size_of::<Option<DropReason>>()
            + self
                .groups
                .iter()
                .map(|g| g.members.capacity() * 4 + 32)
                .sum::<usize>();
        let source = match &*self.source {
            Source::Dataset { thumbs, .. } => thumbs.capacity() * std::mem::size_of::<ThumbRef>(),
            Source::Synthetic { cluster, .. } => cluster.capacity() * 2,
        };
        (columns + source) as f64 / n
    }

    /// `n` synthetic points for stress mode: Gaussian clusters, planted duplicate groups
    /// (2 % of points, in pairs and triples) and outliers (0.5 %), with fake thumbnails.
    #[must_use]
    pub fn synthetic(n: usize, seed: u64) -> Self {
        const CLUSTERS: usize = 48;
        let centres: Vec<[f32; 3]> = (0..CLUSTERS as u64)
            .map(|c| {
                let h = |k: u64| unit(mix(seed ^ (c * 7 + k)));
                // x, y, spread
                [h(1) * 20.0 - 10.0, h(2) * 20.0 - 10.0, 0.3 + h(3) * 0.9]
            })
            .collect();
        let outliers = n / 200;
        let dup_points = n / 50;
        let mut positions = vec![[0.0_f32; 2]; n];
        let mut cluster = vec![0_u16; n];
        let mut ood = vec![0.0_f32; n];
        positions
            .par_iter_mut()
            .zip(cluster.par_iter_mut())
            .zip(ood.par_iter_mut())
            .enumerate()
            .for_each(|(i, ((p, c), o))| {
                let r = mix(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
                if i < outliers {
                    // Far from every cluster, spread over a wide ring.
                    let angle = unit(r) * std::f32::consts::TAU;
                    let radius = 14.0 + unit(mix(r)) * 6.0;
                    *p = [radius * angle.cos(), radius * angle.sin()];
                    *c = (r % CLUSTERS as u64) as u16;
                    *o = 0.6 + 0.4 * unit(mix(r ^ 5));
                } else {
                    let k = (r % CLUSTERS as u64) as usize;
                    let [cx, cy, spread] = centres[k];
                    let (gx, gy) = gaussian_pair(mix(r ^ 1), mix(r ^ 2));
                    *p = [cx + gx * spread, cy + gy * spread];
                    *c = k as u16;
                    *o = 0.05 + 0.25 * unit(mix(r ^ 3)) * unit(mix(r ^ 4));
                }
            });
        // Duplicates: point i (for i in a range after the outliers) copies point i - 1 or
        // i - 2 with a tiny jitter; groups of 2 and 3.
        let mut group = vec![-1_i32; n];
        let mut dup_kind = vec![DupKind::None; n];
        let mut groups = Vec::new();
        let mut i = outliers;
        while i + 3 <= outliers + dup_points && i + 3 <= n {
            let size = if groups.len() % 3 == 0 { 3 } else { 2 };
            let id = groups.len() as i32;
            let members: Vec<u32> = (i..i + size).map(|m| m as u32).collect();
            for (k, &m) in members.iter().enumerate() {
                let m = m as usize;
                if k > 0 {
                    let j = unit(mix(seed ^ m as u64 ^ 0xD0));
                    positions[m] = [positions[i][0] + j * 0.01, positions[i][1] - j * 0.01];
                    cluster[m] = cluster[i];
                    dup_kind[m] = if k == 1 {
                        DupKind::Exact
                    } else {
                        DupKind::Near
                    };
                }
                group[m] = id;
            }
            dup_kind[i] = DupKind::Exact;
            groups.push(Group {
                members,
                keeper: i as u32,
            });
            i += size;
        }
        let mut auto_drop = vec![None; n];
        for g in &groups {
            for &m in &g.members {
                if m != g.keeper {
                    auto_drop[m as usize] = Some(if dup_kind[m as usize] == DupKind::Exact {
                        DropReason::ExactDuplicate
                    } else {
                        DropReason::NearDuplicate
                    });
                }
            }
        }
        let quality: Vec<[u16; MEASURES]> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut q = [0_u16; MEASURES];
                for (m, v) in q.iter_mut().enumerate() {
                    let u = unit(mix(seed ^ (i as u64) << 3 ^ m as u64 ^ 0xA11));
                    *v = quantize(u * u * u);
                }
                q
            })
            .collect();
        let captioned = (0..n).map(|i| i % 3 != 0).collect();
        Self {
            scene: NEXT_SCENE.fetch_add(1, Ordering::Relaxed),
            bounds: bounds(&positions),
            positions: Arc::new(positions),
            group,
            dup_kind,
            ood,
            quality,
            captioned,
            auto_drop,
            groups,
            problems: Vec::new(),
            warnings: Vec::new(),
            summary: None,
            ood_by: None,
            preview: None,
            embeddings: None,
            text_search: false,
            classes: Classes::default(),
            given_classes: None,
            semantic_pairs: None,
            near: Arc::default(),
            caption_dups: std::sync::OnceLock::new(),
            source: Arc::new(Source::Synthetic { seed, cluster }),
        }
    }
}

/// The bounding box of `positions`: `[min_x, min_y, max_x, max_y]` (a unit box when empty).
#[must_use]
pub fn bounds(positions: &[[f32; 2]]) -> [f32; 4] {
    let init = [
        f32::INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
    ];
    let b = positions
        .par_iter()
        .fold(
            || init,
            |b, p| {
                [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ]
            },
        )
        .reduce(
            || init,
            |a, b| {
                [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ]
            },
        );
    if b[0].is_finite() {
        b
    } else {
        [-1.0, -1.0, 1.0, 1.0]
    }
}

pub use crate::rng::mix;

/// Per point (the `readable` rows, in order): duplicate group, kind, and the analysis' own
/// drop reason; and the groups with their keepers.
fn group_columns(
    rows: &[ReportRow],
    readable: &[u32],
) -> (Vec<i32>, Vec<DupKind>, Vec<Group>, Vec<Option<DropReason>>) {
    let n = readable.len();
    let mut group = Vec::with_capacity(n);
    let mut dup_kind = Vec::with_capacity(n);
    let mut auto_drop = Vec::with_capacity(n);
    let mut groups: Vec<Group> = Vec::new();
    for (point, &row) in readable.iter().enumerate() {
        let r = &rows[row as usize];
        let g = r.dup_group;
        group.push(g as i32);
        if g >= 0 {
            let g = g as usize;
            if groups.len() <= g {
                groups.resize(
                    g + 1,
                    Group {
                        members: Vec::new(),
                        keeper: u32::MAX,
                    },
                );
            }
            groups[g].members.push(point as u32);
        }
        dup_kind.push(match r.dup_kind.as_deref() {
            Some("exact") => DupKind::Exact,
            Some("semantic") => DupKind::Semantic,
            Some(_) => DupKind::Near,
            None => DupKind::None,
        });
        auto_drop.push(r.drop_reason.as_deref().and_then(DropReason::parse));
    }
    for g in &mut groups {
        let keeper_path = g
            .members
            .iter()
            .find_map(|&p| rows[readable[p as usize] as usize].keeper.clone());
        g.keeper = keeper_path
            .and_then(|path| {
                g.members
                    .iter()
                    .copied()
                    .find(|&p| rows[readable[p as usize] as usize].path == path)
            })
            .or_else(|| g.members.first().copied())
            .unwrap_or(0);
    }
    (group, dup_kind, groups, auto_drop)
}

/// A uniform float in `0..1` from hash bits.
#[must_use]
pub fn unit(x: u64) -> f32 {
    (x >> 40) as f32 / (1_u64 << 24) as f32
}

fn gaussian_pair(a: u64, b: u64) -> (f32, f32) {
    let u1 = unit(a).max(1e-7);
    let u2 = unit(b);
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f32::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_points_have_planted_groups_and_outliers() {
        let c = Collection::synthetic(10_000, 7);
        assert_eq!(c.len(), 10_000);
        assert!(c.groups.len() > 60, "{} groups", c.groups.len());
        for g in &c.groups {
            assert!(g.members.contains(&g.keeper));
            for &m in &g.members {
                assert_eq!(
                    c.group[m as usize] as usize,
                    c.groups.iter().position(|x| x == g).unwrap()
                );
            }
        }
        let high = c.ood.iter().filter(|&&o| o >= 0.6).count();
        assert_eq!(
            high, 50,
            "the planted outliers, and only them, score >= 0.6"
        );
        assert!(c.bytes_per_point() < 60.0, "{}", c.bytes_per_point());
        assert!((0.0..=1.0).contains(&c.quality(5, 3)));
    }
}
