//! One open collection: its points, decisions, selection, colour mode and thresholds, and
//! every action the panels and shortcuts perform on them.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use eframe::egui;
use rayon::prelude::*;

use crate::analysis::keep::{DropReason, KeeperPolicy};
use crate::analysis::quality::SCORE_NAMES;
use crate::pipeline::OutlierScore;
use crate::render::colormap;
use crate::render::gpu::PointFlags;
use crate::store::session::Settings;
use crate::store::{keeplist, report};

use super::decisions::{Counts, Decisions};
use super::job::Loaded;
use super::map_view::{MapView, SelectOp};
use super::model::{Collection, MEASURES, Source};
use super::search::{self, Found, Search};
use super::select::{Grid, Picker};
use super::thumbs::Thumbs;

/// A fitted ensemble: the score per point and the learned weights per operator (empty for
/// the rank average).
pub type EnsembleFit = (Vec<f32>, Vec<(String, f32)>);

/// What the point colours show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourMode {
    /// Duplicate groups, one colour each.
    Groups,
    /// Outlier score (viridis), brighter over the threshold.
    Outliers,
    /// One quality measure (viridis), brighter over its threshold.
    Quality(usize),
    /// Kept, or dropped by reason.
    Decision,
    /// Selected or not.
    Selection,
    /// Has a caption or not.
    Caption,
    /// Similarity to the last search (with `--model`; not in [`Self::all`]).
    Similarity,
    /// The ensemble score of every operator (datasets; not in [`Self::all`]).
    Ensemble,
    /// The classifier's class, the most frequent ones a colour each (with the default
    /// model; not in [`Self::all`]).
    Class,
    /// The class each image was given (`--class-from`; not in [`Self::all`]).
    GivenClass,
    /// How likely each image's given class is wrong (`--class-from`; not in
    /// [`Self::all`]).
    ClassIssue,
}

impl ColourMode {
    /// Every mode, in menu order.
    #[must_use]
    pub fn all() -> Vec<Self> {
        let mut all = vec![Self::Groups, Self::Outliers];
        all.extend((0..MEASURES).map(Self::Quality));
        all.extend([Self::Decision, Self::Selection, Self::Caption]);
        all
    }

    /// The menu label.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::Groups => "Duplicate groups".to_owned(),
            Self::Outliers => "Outlier score".to_owned(),
            Self::Quality(m) => format!("Quality: {}", SCORE_NAMES[m].replace('_', " ")),
            Self::Decision => "Keep / drop".to_owned(),
            Self::Selection => "Selection".to_owned(),
            Self::Caption => "Caption present".to_owned(),
            Self::Similarity => "Search similarity".to_owned(),
            Self::Ensemble => "Ensemble score".to_owned(),
            Self::Class => "Class (ImageNet)".to_owned(),
            Self::GivenClass => "Class (given)".to_owned(),
            Self::ClassIssue => "Class issue score".to_owned(),
        }
    }

    /// A short name (snapshots, the stress report).
    #[must_use]
    pub fn slug(self) -> String {
        match self {
            Self::Groups => "groups".to_owned(),
            Self::Outliers => "outliers".to_owned(),
            Self::Quality(m) => format!("quality-{}", SCORE_NAMES[m]),
            Self::Decision => "decision".to_owned(),
            Self::Selection => "selection".to_owned(),
            Self::Caption => "caption".to_owned(),
            Self::Similarity => "similarity".to_owned(),
            Self::Ensemble => "ensemble".to_owned(),
            Self::Class => "class".to_owned(),
            Self::GivenClass => "given-class".to_owned(),
            Self::ClassIssue => "class-issue".to_owned(),
        }
    }
}

/// Colours of the keep/drop mode.
pub const KEPT: [u8; 3] = [80, 190, 120];
/// Drop reason colours, in [`DropReason`] order of [`drop_colour`].
#[must_use]
pub fn drop_colour(reason: DropReason) -> [u8; 3] {
    match reason {
        DropReason::ExactDuplicate => [230, 75, 75],
        DropReason::NearDuplicate => [245, 150, 55],
        DropReason::Outlier => [170, 110, 235],
        DropReason::Quality => [230, 205, 70],
        DropReason::Manual => [240, 110, 185],
        DropReason::SemanticDuplicate => [90, 170, 240],
    }
}
/// Selected points in the selection mode.
pub const SELECTED_COLOUR: [u8; 3] = [255, 200, 60];
/// Captioned points in the caption mode.
pub const CAPTIONED: [u8; 3] = [80, 160, 240];

/// Classes (the most frequent) that get a colour of their own in the class mode.
pub const CLASS_COLOURS: usize = 12;

/// Images shown in the Outliers and Quality galleries.
pub const GALLERY: usize = 60;

/// A histogram of one score.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Lowest value.
    pub min: f32,
    /// Highest value.
    pub max: f32,
    /// Counts per bin.
    pub bins: Vec<u32>,
    /// Values sorted (for percentiles and "how many above").
    sorted: Vec<f32>,
}

impl Histogram {
    /// 64 bins over the values' range.
    #[must_use]
    pub fn new(values: Vec<f32>) -> Self {
        let mut sorted = values;
        sorted.par_sort_unstable_by(f32::total_cmp);
        let (min, max) = match (sorted.first(), sorted.last()) {
            (Some(&a), Some(&b)) => (a, b.max(a + 1e-6)),
            _ => (0.0, 1.0),
        };
        let mut bins = vec![0_u32; 64];
        for &v in &sorted {
            let b = (((v - min) / (max - min)) * 64.0) as usize;
            bins[b.min(63)] += 1;
        }
        Self {
            min,
            max,
            bins,
            sorted,
        }
    }

    /// How many values are >= `threshold`.
    #[must_use]
    pub fn at_or_above(&self, threshold: f32) -> usize {
        self.sorted.len() - self.sorted.partition_point(|&v| v < threshold)
    }

    /// The value at quantile `q` (0..=1).
    #[must_use]
    pub fn quantile(&self, q: f32) -> f32 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let i = ((self.sorted.len() - 1) as f32 * q.clamp(0.0, 1.0)).round() as usize;
        self.sorted[i]
    }
}

/// The inspector's full-size image.
pub enum FullImage {
    /// Decoding on a thread.
    Loading(u32, Receiver<Result<egui::ColorImage, String>>),
    /// Ready.
    Ready(u32, egui::TextureHandle),
    /// Could not be read.
    Failed(u32, String),
}

impl std::fmt::Debug for FullImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Loading(p, _) => write!(f, "Loading({p})"),
            Self::Ready(p, _) => write!(f, "Ready({p})"),
            Self::Failed(p, e) => write!(f, "Failed({p}, {e})"),
        }
    }
}

/// The panel on the left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftTab {
    /// Duplicate groups.
    Duplicates,
    /// Outlier histogram and gallery.
    Outliers,
    /// Quality histograms and gallery.
    Quality,
    /// Unreadable files and warnings.
    Problems,
    /// Given classes and the images that look mislabelled (`--class-from`).
    Classes,
}

/// The panel on the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RightTab {
    /// The hovered or clicked image.
    Inspector,
    /// The selection's thumbnails.
    Selection,
}

/// An open collection and the user's work on it.
#[derive(Debug)]
pub struct Workspace {
    /// The points.
    pub collection: Collection,
    /// Selection grid.
    pub grid: Grid,
    /// Hover tree.
    pub picker: Picker,
    /// The user's marks.
    pub decisions: Decisions,
    /// The map.
    pub map: MapView,
    /// Thumbnails.
    pub thumbs: Thumbs,
    /// Colour mode.
    pub mode: ColourMode,
    /// Outlier threshold.
    pub ood_threshold: f32,
    /// Which outlier score the Outliers panel, colours and threshold use.
    pub ood_kind: OutlierScore,
    /// The quality measure shown in the Quality panel.
    pub measure: usize,
    /// Quality thresholds, per measure.
    pub quality_threshold: [f32; MEASURES],
    /// Selected points, sorted.
    pub selected: Vec<u32>,
    /// The point under the pointer (map or panels).
    pub hovered: Option<u32>,
    /// The map point under the pointer last frame (the inspector is drawn before the map).
    pub map_hover: Option<u32>,
    /// The point last clicked (shown in the inspector when nothing is hovered).
    pub inspected: Option<u32>,
    /// The inspector's full-size image.
    pub full: Option<FullImage>,
    /// Counts of the effective decisions.
    pub counts: Counts,
    /// Left panel tab.
    pub left: LeftTab,
    /// The Classes panel's filter: a given class, and a suggested one.
    pub class_view: (Option<u16>, Option<u16>),
    /// Right panel tab.
    pub right: RightTab,
    /// Selection grid page.
    pub page: usize,
    /// Group ids, largest group first.
    pub group_order: Vec<u32>,
    /// Outlier score histogram.
    pub ood_hist: Histogram,
    quality_hist: Vec<Option<Arc<Histogram>>>,
    /// The galleries' worst images: index 0 by outlier score, `1 + m` by quality measure
    /// `m` (scores never change, so each ranking is computed once, on first view).
    worst: Vec<Option<Arc<Vec<u32>>>>,
    /// What the GPU colours were computed for.
    drawn: Option<(ColourMode, u32, u64, u64, bool)>,
    flags_drawn: Option<(u64, u64)>,
    selection_generation: u64,
    /// Decisions generation last saved to the session file.
    pub saved_generation: u64,
    /// When the decisions last changed.
    pub changed_at: Instant,
    /// The last autosave failure.
    pub save_error: Option<String>,
    /// Semantic search (with `--model`).
    pub search: Search,
    /// The last search: what it was and every point's similarity to it.
    pub similarity: Option<(String, Arc<Vec<f32>>)>,
    /// Its colour range, see [`Self::similarity_range`].
    similarity_range: (f32, f32, f32),
    /// The semantic-duplicate threshold (cosine) the groups were made with.
    pub semantic_threshold: f32,
    /// The threshold slider's value (applied when the user lets go).
    pub semantic_slider: f32,
    /// The pixel-difference threshold of near duplicates the groups were made with.
    pub near_threshold: f32,
    /// The pixel-difference slider's value (applied when the user lets go).
    pub near_slider: f32,
    /// The report rows as the analysis decided them, before any tuning of groups.
    base: Arc<Source>,
    /// The decisions' tuning the groups on screen were made for.
    applied_tuning: u64,
    /// A regrouping running for a tuning (the decisions' `tuning` it is for, or `None` for a
    /// proposal), with its settings.
    regrouping: Option<(Option<u64>, Settings, Receiver<Vec<report::ReportRow>>)>,
    /// A re-choice of keepers waiting for the person's yes.
    pub proposal: Option<Proposal>,
    /// The person said no to keepers chosen by the learned score.
    declined_learned: bool,
    /// The decisions' tuning a proposal was counted for.
    proposal_base: u64,
    /// How keepers are chosen now.
    pub keeper_policy: KeeperPolicy,
    /// The ensemble score per point, and the learned weights (empty: the rank average).
    pub ensemble: (Arc<Vec<f32>>, Vec<(String, f32)>),
    /// A refit running.
    refitting: Option<Receiver<EnsembleFit>>,
    /// The candidate pairs nearest the pixel-difference line, for the threshold they were
    /// picked at (see [`Self::line_pairs`]).
    line: Option<(f32, Arc<LinePairs>)>,
}

/// A change of the tuning that would re-choose keepers, with what it would change, shown to
/// the person before it is applied.
#[derive(Debug)]
pub struct Proposal {
    /// What it is, in words.
    pub what: String,
    /// The tuning it sets.
    pub settings: Settings,
    /// The rows under it.
    rows: Vec<report::ReportRow>,
    /// Groups whose keeper would change.
    pub groups: usize,
    /// Files whose keep/drop would flip.
    pub flips: usize,
}

/// Candidate pairs on both sides of the pixel-difference threshold, as points with their
/// difference: what a person looks at to decide where copies end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinePairs {
    /// The grouped pairs with the largest differences, largest first.
    pub farthest_copies: Vec<(u32, u32, f32)>,
    /// The pairs not grouped with the smallest differences, smallest first.
    pub closest_others: Vec<(u32, u32, f32)>,
}

impl Workspace {
    /// Opens a loaded collection.
    #[must_use]
    pub fn new(loaded: Loaded) -> Self {
        let Loaded {
            collection,
            grid,
            picker,
            decisions,
            ..
        } = loaded;
        let map = MapView::new(&collection);
        let thumbs = Thumbs::new(&collection.source);
        let mut group_order: Vec<u32> = (0..collection.groups.len() as u32).collect();
        group_order
            .sort_by_key(|&g| std::cmp::Reverse(collection.groups[g as usize].members.len()));
        let ood_hist = Histogram::new(collection.ood.clone());
        // Default threshold: the top 1 % most unusual.
        let ood_threshold = ood_hist.quantile(0.99);
        let counts = decisions.counts(&collection);
        let saved_generation = decisions.generation;
        let semantic_threshold = collection
            .semantic_pairs
            .as_ref()
            .map_or(crate::pipeline::semantic::DEFAULT_SEMANTIC_THRESHOLD, |p| {
                p.threshold
            });
        let search = Search::new(
            collection
                .embeddings
                .as_ref()
                .filter(|_| collection.text_search)
                .map(|(_, dir)| dir.clone()),
        );
        let near_threshold = collection.near.max_difference;
        let mut ws = Self {
            near_threshold,
            near_slider: near_threshold,
            search,
            similarity: None,
            similarity_range: (0.0, 1.0, 1.0),
            semantic_threshold,
            semantic_slider: semantic_threshold,
            regrouping: None,
            proposal: None,
            declined_learned: false,
            proposal_base: 0,
            base: Arc::clone(&collection.source),
            applied_tuning: 0,
            keeper_policy: KeeperPolicy::Quality,
            ensemble: (
                Arc::new(
                    (0..collection.len())
                        .map(|i| {
                            collection
                                .row(i)
                                .and_then(|r| r.ensemble_score)
                                .unwrap_or(0.5)
                        })
                        .collect(),
                ),
                Vec::new(),
            ),
            refitting: None,
            line: None,
            map,
            thumbs,
            mode: ColourMode::Groups,
            ood_threshold,
            ood_kind: OutlierScore::Combined,
            measure: 2,
            quality_threshold: [0.5, 0.95, 0.5, 0.7, 0.8, 0.5, 0.5],
            selected: Vec::new(),
            hovered: None,
            map_hover: None,
            inspected: None,
            full: None,
            counts,
            left: LeftTab::Duplicates,
            class_view: (None, None),
            right: RightTab::Inspector,
            page: 0,
            group_order,
            ood_hist,
            quality_hist: vec![None; MEASURES],
            worst: vec![None; MEASURES + 1],
            drawn: None,
            flags_drawn: None,
            selection_generation: 0,
            saved_generation,
            changed_at: Instant::now(),
            save_error: None,
            collection,
            grid,
            picker,
            decisions,
        };
        if !ws.decisions.labels().is_empty() {
            ws.refit();
        }
        if ws.decisions.tunes_groups() {
            // The saved session tunes the groups: show them as it says.
            ws.spawn_regroup(Some(ws.decisions.tuning), ws.decisions.settings());
        }
        ws
    }

    /// Takes over what the user did in `previous` when this collection replaces a preview
    /// of the same folder (or a newer preview replaces an older one): the decisions (from
    /// memory, newer than the session file), the view, the colour mode, the thresholds, the
    /// tabs, the selection and the inspected image (matched by path). Undo history starts
    /// afresh.
    pub fn continue_from(&mut self, previous: &Self) {
        if previous.collection.root() != self.collection.root() {
            return;
        }
        let session = previous.decisions.to_session(&previous.collection);
        self.decisions = Decisions::from_session(&session, &self.collection).0;
        self.saved_generation = if previous.unsaved() {
            self.decisions.generation.wrapping_sub(1)
        } else {
            self.decisions.generation
        };
        self.counts = self.decisions.counts(&self.collection);
        self.map.continue_from(&previous.map, &self.collection);
        // Points of the previous collection, found here by path.
        let index = self.collection.point_index();
        let here = |p: u32| index.get(&previous.collection.path(p as usize)).copied();
        let mut from = vec![None; self.collection.len()];
        for (p, &position) in previous.collection.positions.iter().enumerate() {
            if let Some(q) = here(p as u32) {
                from[q as usize] = Some(position);
            }
        }
        self.map.morph_from(&from, &self.collection);
        self.mode = previous.mode;
        self.measure = previous.measure;
        self.quality_threshold = previous.quality_threshold;
        if previous.collection.preview.is_none() || self.collection.preview.is_some() {
            // Outlier scores are all zero in a preview: keep the final run's default then.
            self.ood_threshold = previous.ood_threshold;
        }
        self.left = previous.left;
        self.right = previous.right;
        if !self.decisions.labels().is_empty() {
            self.refit();
        }
        // Replaces a regrouping for the session file's (older) tuning, if one runs.
        if self.decisions.tunes_groups() || self.regrouping.is_some() {
            self.spawn_regroup(Some(self.decisions.tuning), self.decisions.settings());
        }
        if previous.ood_kind != self.ood_kind {
            self.set_outlier_score(previous.ood_kind);
        }
        self.search.query.clone_from(&previous.search.query);
        if self.mode == ColourMode::Similarity {
            self.mode = ColourMode::Groups;
        }
        if !previous.selected.is_empty() || previous.inspected.is_some() {
            let mut selected: Vec<u32> =
                previous.selected.iter().filter_map(|&p| here(p)).collect();
            selected.sort_unstable();
            self.selected = selected;
            self.selection_generation += 1;
            self.inspected = previous.inspected.and_then(here);
        }
    }

    /// The colour range of the similarity mode: `(low, high, threshold)`, the threshold
    /// being the similarity of the last of the [`search::RESULTS`] closest points (computed
    /// once per search: the legend asks every frame).
    #[must_use]
    pub fn similarity_range(&self) -> (f32, f32, f32) {
        self.similarity_range
    }

    /// Takes a finished search: colours the map by similarity, selects the closest images
    /// and flies to them. Returns a note for the user.
    pub fn poll_search(&mut self) -> Option<String> {
        match self.search.poll()? {
            Ok(Found { what, similarity }) => {
                if similarity.len() != self.collection.len() {
                    return None;
                }
                let mut closest = search::top(&similarity, search::RESULTS);
                let best = closest.first().map(|&p| similarity[p as usize]);
                let hi = best.unwrap_or(1.0);
                let t = closest.last().map_or(hi, |&p| similarity[p as usize]);
                let lo = similarity
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min)
                    .min(t);
                self.similarity_range = (lo, hi, t);
                self.similarity = Some((what.clone(), similarity));
                self.mode = ColourMode::Similarity;
                let fly = super::model::bounds(
                    &closest
                        .iter()
                        .map(|&p| self.collection.positions[p as usize])
                        .collect::<Vec<_>>(),
                );
                closest.sort_unstable();
                self.select(closest, SelectOp::Replace);
                self.right = RightTab::Selection;
                self.page = 0;
                self.map.fly_to(fly, 50.0);
                Some(format!(
                    "selected the {} images closest to {what} (best cosine {:.3})",
                    self.selected.len(),
                    best.unwrap_or(0.0)
                ))
            }
            Err(err) => Some(format!("search failed: {err}")),
        }
    }

    /// Switches the outlier score behind the Outliers panel, the colours and the threshold
    /// (which resets to the new score's top 1 %).
    pub fn set_outlier_score(&mut self, kind: OutlierScore) {
        let Some(by) = &self.collection.ood_by else {
            return;
        };
        let index = OutlierScore::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("one of ALL");
        self.collection.ood.clone_from(&by[index]);
        self.ood_hist = Histogram::new(self.collection.ood.clone());
        self.ood_threshold = self.ood_hist.quantile(0.99);
        self.ood_kind = kind;
        self.worst[0] = None;
        self.drawn = None;
    }

    /// Regroups the semantic duplicates for `threshold` (from the cached pairs: no
    /// re-clustering), as an undoable step.
    pub fn regroup(&mut self, threshold: f32) {
        let mut settings = self.decisions.settings();
        settings.semantic_threshold = Some(threshold);
        self.decisions
            .set_settings(&format!("semantic threshold {threshold:.3}"), settings);
        self.touched();
        self.retune();
    }

    /// Regroups the near duplicates for pixel-difference threshold `max_difference` (from
    /// the verdicts of the run: nothing is compared again), as an undoable step.
    pub fn regroup_near(&mut self, max_difference: f32) {
        let mut settings = self.decisions.settings();
        settings.near_threshold = Some(max_difference);
        self.decisions.set_settings(
            &format!("pixel difference up to {max_difference:.1}"),
            settings,
        );
        self.touched();
        self.retune();
    }

    /// Proposes choosing every automatic keeper again under `policy`: the groups it would
    /// change are counted in the background and shown ([`Self::proposal`]) before anything
    /// changes; keepers chosen by hand stay.
    pub fn set_keeper_policy(&mut self, policy: KeeperPolicy) {
        let mut settings = self.decisions.settings();
        settings.keeper_policy = Some(policy);
        self.propose(settings);
    }

    /// Proposes letting the score learned from the labels choose the automatic keepers.
    pub fn propose_learned_keepers(&mut self) {
        let mut settings = self.decisions.settings();
        settings.learned_keepers = Some(true);
        self.propose(settings);
    }

    /// Whether labels of both kinds exist, so a learned score could choose keepers.
    #[must_use]
    pub fn has_learned_score(&self) -> bool {
        self.learned()
    }

    /// Removes the mark of one point (back to the automatic decision).
    pub fn reset_point(&mut self, point: u32) {
        let label = format!("reset {}", self.collection.path(point as usize));
        self.decisions.clear(&label, &[point]);
        self.touched();
        self.retune();
    }

    /// Whether the score learned from the labels chooses keepers now.
    #[must_use]
    pub fn learned_keepers(&self) -> bool {
        self.decisions.settings().learned_keepers != Some(false) && self.learned()
    }

    /// Whether labels of both kinds exist (the ensemble is a learned model).
    fn learned(&self) -> bool {
        let labels = self.decisions.labels();
        labels.values().any(|b| *b) && labels.values().any(|b| !*b)
    }

    fn propose(&mut self, settings: Settings) {
        if settings == self.decisions.settings() {
            return;
        }
        self.proposal = None;
        self.proposal_base = self.decisions.tuning;
        self.spawn_regroup(None, settings);
    }

    /// Applies the waiting proposal, as an undoable step.
    pub fn accept_proposal(&mut self) -> Option<String> {
        let proposal = self.proposal.take()?;
        let current = self.decisions.tuning == self.proposal_base;
        self.decisions
            .set_settings(&proposal.what, proposal.settings);
        if current {
            self.applied_tuning = self.decisions.tuning;
            self.show_rows(proposal.rows);
        }
        // Otherwise something else changed since it was counted: computed again.
        self.touched();
        Some(format!(
            "{}: {} groups have another keeper",
            proposal.what, proposal.groups
        ))
    }

    /// Forgets the waiting proposal (a declined learned-keeper proposal is not asked again
    /// in this session of the app).
    pub fn reject_proposal(&mut self) {
        if let Some(p) = self.proposal.take()
            && p.settings.learned_keepers == Some(true)
        {
            self.declined_learned = true;
        }
    }

    /// Regroups in the background when what the groups depend on changed (a threshold, a
    /// label, a "not a duplicate" pair, a keeper chosen by hand, an undo of any of them).
    pub fn retune(&mut self) {
        let tuning = self.decisions.tuning;
        let busy_for = self.regrouping.as_ref().map(|r| r.0);
        if tuning == self.applied_tuning || busy_for == Some(Some(tuning)) {
            return;
        }
        self.spawn_regroup(Some(tuning), self.decisions.settings());
    }

    /// Computes, in the background, the automatic decisions under `settings` and the rest
    /// of the session (the one rule, [`crate::pipeline::decide::automatic`]).
    fn spawn_regroup(&mut self, tuning: Option<u64>, settings: Settings) {
        if !matches!(&*self.base, Source::Dataset { .. }) {
            return;
        }
        let mut session = self.decisions.to_session(&self.collection);
        session.settings = settings;
        let base = Arc::clone(&self.base);
        let semantic = self.collection.semantic_pairs.clone();
        let near = Arc::clone(&self.collection.near);
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Source::Dataset { rows, .. } = &*base {
                let evidence = crate::pipeline::decide::Evidence {
                    near: &near,
                    semantic: semantic.as_deref(),
                };
                let rows = crate::pipeline::decide::automatic(rows, evidence, &session)
                    .unwrap_or_else(|| rows.clone());
                send.send(rows).ok();
            }
        });
        self.regrouping = Some((tuning, settings, receive));
    }

    fn show_rows(&mut self, rows: Vec<report::ReportRow>) {
        // Each point's group's place in the list now: the list keeps its order, so rows do
        // not jump under the pointer when groups change.
        let mut place = vec![u32::MAX; self.collection.len()];
        for (at, &g) in self.group_order.iter().enumerate() {
            for &m in &self.collection.groups[g as usize].members {
                place[m as usize] = at as u32;
            }
        }
        self.collection.apply_rows(rows);
        let settings = self.decisions.settings();
        self.near_threshold = settings
            .near_threshold
            .unwrap_or(self.collection.near.max_difference);
        self.near_slider = self.near_threshold;
        if let Some(pairs) = &self.collection.semantic_pairs {
            self.semantic_threshold = settings.semantic_threshold.unwrap_or(pairs.threshold);
            self.semantic_slider = self.semantic_threshold;
        }
        self.keeper_policy = settings.keeper_policy.unwrap_or_default();
        let c = &self.collection;
        let mut order: Vec<u32> = (0..c.groups.len() as u32).collect();
        order.sort_by_key(|&g| {
            let members = &c.groups[g as usize].members;
            let was = members
                .iter()
                .map(|&m| place[m as usize])
                .min()
                .unwrap_or(u32::MAX);
            (was, std::cmp::Reverse(members.len()), g)
        });
        self.group_order = order;
        self.counts = self.decisions.counts(&self.collection);
        self.drawn = None;
        self.flags_drawn = None;
        self.line = None;
    }

    /// Whether a regrouping is running.
    #[must_use]
    pub fn regrouping(&self) -> bool {
        self.regrouping.is_some()
    }

    /// The `count` grouped pairs with the largest pixel differences and the `count` rejected
    /// pairs with the smallest, under the current threshold (picked once per threshold).
    pub fn line_pairs(&mut self, count: usize) -> Arc<LinePairs> {
        if let Some((t, line)) = &self.line
            && (*t - self.near_threshold).abs() <= f32::EPSILON
        {
            return Arc::clone(line);
        }
        let mut point_of_row = std::collections::HashMap::new();
        if let Source::Dataset { point_row, .. } = &*self.collection.source {
            for (point, &row) in point_row.iter().enumerate() {
                point_of_row.insert(row, point as u32);
            }
        }
        let threshold = self.near_threshold;
        let mut copies = Vec::new();
        let mut others = Vec::new();
        for p in &self.collection.near.pairs {
            let (Some(&a), Some(&b)) = (point_of_row.get(&p.a), point_of_row.get(&p.b)) else {
                continue;
            };
            let d = p.comparison.difference;
            if p.comparison.is_copy(threshold) {
                copies.push((a, b, d));
            } else if d.is_finite() {
                others.push((a, b, d));
            }
        }
        copies.sort_by(|x, y| y.2.total_cmp(&x.2));
        others.sort_by(|x, y| x.2.total_cmp(&y.2));
        copies.truncate(count);
        others.truncate(count);
        let line = Arc::new(LinePairs {
            farthest_copies: copies,
            closest_others: others,
        });
        self.line = Some((threshold, Arc::clone(&line)));
        line
    }

    /// Applies a finished regrouping, or turns a finished proposal into one for the person
    /// to accept; returns a note for the user.
    pub fn poll_regroup(&mut self) -> Option<String> {
        let (tuning, settings, receive) = self.regrouping.as_ref()?;
        let rows = receive.try_recv().ok()?;
        let (tuning, settings) = (*tuning, *settings);
        self.regrouping = None;
        let Some(tuning) = tuning else {
            // A proposal: count what it would change against what is on screen.
            let Source::Dataset { rows: now, .. } = &*self.collection.source else {
                return None;
            };
            let mut keepers = std::collections::HashSet::new();
            let mut flips = 0;
            for (a, b) in now.iter().zip(&rows) {
                if a.dup_group >= 0 && b.keeper != a.keeper {
                    keepers.insert(b.keeper.clone());
                }
                flips += usize::from(a.keep != b.keep);
            }
            let what = if settings.keeper_policy == self.decisions.settings().keeper_policy {
                "keepers chosen by the score learned from your labels".to_owned()
            } else {
                format!(
                    "keepers chosen by {}",
                    settings.keeper_policy.unwrap_or_default().label()
                )
            };
            if keepers.is_empty() && flips == 0 {
                self.decisions.set_settings(&what, settings);
                self.applied_tuning = self.decisions.tuning;
                self.show_rows(rows);
                return Some(format!("{what}: no group changes"));
            }
            self.proposal = Some(Proposal {
                what,
                settings,
                rows,
                groups: keepers.len(),
                flips,
            });
            // A regrouping the proposal displaced runs again.
            self.retune();
            return None;
        };
        if tuning != self.decisions.tuning {
            // Outdated: something changed while it ran.
            self.retune();
            return None;
        }
        let members = |c: &Collection| c.groups.iter().map(|g| g.members.len()).sum::<usize>();
        let before = (self.collection.groups.len(), members(&self.collection));
        self.applied_tuning = tuning;
        self.show_rows(rows);
        let c = &self.collection;
        let after = (c.groups.len(), members(c));
        (after != before).then(|| {
            format!(
                "{} duplicate groups with {} images (were {} with {})",
                after.0, after.1, before.0, before.1
            )
        })
    }

    /// Labels `points` good or bad for the ensemble score (an undoable step) and refits it
    /// in the background (a logistic model of every operator once both kinds are labelled).
    /// Labels do not start choosing keepers by themselves: the first label of a session
    /// records whether they do now, and [`Self::propose_learned_keepers`] asks. Returns how many points
    /// were labelled.
    pub fn label_quality(&mut self, points: &[u32], bad: bool) -> usize {
        let Source::Dataset { .. } = &*self.collection.source else {
            return 0;
        };
        let mut settings = self.decisions.settings();
        if settings.learned_keepers.is_none() {
            // What holds now stays: no labels choose keepers unless they already did (labels
            // the analysis itself learned from).
            settings.learned_keepers = Some(self.learned_keepers());
        }
        let label = format!(
            "label {} {}",
            points.len(),
            if bad { "bad" } else { "good" }
        );
        self.decisions
            .label(&label, points, Some(bad), Some(settings));
        self.touched();
        self.refit();
        self.retune();
        points.len()
    }

    /// Refits the ensemble on the current labels in the background.
    fn refit(&mut self) {
        let source = Arc::clone(&self.collection.source);
        let labels: Vec<(usize, bool)> = self
            .decisions
            .labels()
            .iter()
            .map(|(&p, &b)| (p as usize, b))
            .collect();
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Source::Dataset {
                rows, point_row, ..
            } = &*source
            else {
                return;
            };
            let features = crate::pipeline::ensemble_features(rows, point_row);
            send.send(crate::pipeline::fit_ensemble(&features, &labels))
                .ok();
        });
        self.refitting = Some(receive);
    }

    /// Whether the ensemble is being refitted.
    #[must_use]
    pub fn refitting(&self) -> bool {
        self.refitting.is_some()
    }

    /// Takes a finished refit; returns a note for the user.
    pub fn poll_ensemble(&mut self) -> Option<String> {
        let (scores, weights) = self.refitting.as_ref()?.try_recv().ok()?;
        self.refitting = None;
        let learned = !weights.is_empty();
        self.ensemble = (Arc::new(scores), weights);
        self.mode = ColourMode::Ensemble;
        self.drawn = None;
        if learned
            && self.decisions.settings().learned_keepers == Some(false)
            && !self.declined_learned
            && self.proposal.is_none()
        {
            self.propose_learned_keepers();
        }
        let labels = self.decisions.labels();
        let bad = labels.values().filter(|b| **b).count();
        let good = labels.len() - bad;
        Some(if learned {
            format!("ensemble learned from {good} good and {bad} bad images")
        } else {
            format!(
                "{good} good and {bad} bad labels: the ensemble learns once both kinds are labelled"
            )
        })
    }

    /// The histogram of quality measure `m` (computed on first use).
    pub fn quality_hist(&mut self, m: usize) -> Arc<Histogram> {
        let c = &self.collection;
        Arc::clone(self.quality_hist[m].get_or_insert_with(|| {
            Arc::new(Histogram::new(
                (0..c.len()).map(|i| c.quality(i, m)).collect(),
            ))
        }))
    }

    /// The [`GALLERY`] highest-scoring points, highest first: by outlier score (`None`) or
    /// by quality measure `m`.
    pub fn worst(&mut self, measure: Option<usize>) -> Arc<Vec<u32>> {
        let c = &self.collection;
        let slot = measure.map_or(0, |m| m + 1);
        Arc::clone(self.worst[slot].get_or_insert_with(|| {
            let score = |p: u32| match measure {
                None => c.ood[p as usize],
                Some(m) => c.quality(p as usize, m),
            };
            let mut order: Vec<u32> = (0..c.len() as u32).collect();
            let top = GALLERY.min(order.len());
            if top > 0 {
                order.select_nth_unstable_by(top - 1, |&a, &b| score(b).total_cmp(&score(a)));
                order.truncate(top);
                order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
            }
            Arc::new(order)
        }))
    }

    /// Updates the GPU colours and flags when what they depend on changed.
    pub fn refresh(&mut self, dark: bool) {
        let key = (
            self.mode,
            match self.mode {
                ColourMode::Outliers => self.ood_threshold.to_bits(),
                ColourMode::Quality(m) => self.quality_threshold[m].to_bits(),
                ColourMode::Similarity => self
                    .similarity
                    .as_ref()
                    .map_or(0, |(_, s)| Arc::as_ptr(s) as usize as u32),
                ColourMode::Ensemble => {
                    (Arc::as_ptr(&self.ensemble.0) as usize as u32)
                        ^ self.decisions.labels().len() as u32
                }
                _ => 0,
            },
            if self.mode == ColourMode::Decision {
                self.decisions.generation
            } else {
                0
            },
            if self.mode == ColourMode::Selection {
                self.selection_generation
            } else {
                0
            },
            dark,
        );
        if self.drawn != Some(key) {
            let colours = self.colours(dark);
            self.map.set_colours(colours);
            self.drawn = Some(key);
        }
        let flag_key = (self.decisions.generation, self.selection_generation);
        if self
            .flags_drawn
            .is_some_and(|(decided, _)| decided != flag_key.0)
        {
            // Counts depend on the decisions only, not on the selection.
            self.counts = self.decisions.counts(&self.collection);
        }
        if self.flags_drawn != Some(flag_key) {
            let c = &self.collection;
            let d = &self.decisions;
            let mut flags = vec![PointFlags::empty(); c.len()];
            flags.par_iter_mut().enumerate().for_each(|(i, f)| {
                if !d.keep(c, i) {
                    *f |= PointFlags::DROPPED;
                }
            });
            for &s in &self.selected {
                flags[s as usize] |= PointFlags::SELECTED;
            }
            self.map.set_flags(flags);
            self.flags_drawn = Some(flag_key);
        }
    }

    /// Packed point colours for the current mode.
    #[must_use]
    pub fn colours(&self, dark: bool) -> Vec<u32> {
        let c = &self.collection;
        let decisions = &self.decisions;
        let neutral = if dark {
            [125, 135, 155]
        } else {
            [105, 115, 135]
        };
        let n = c.len();
        let pack = colormap::packed;
        match self.mode {
            ColourMode::Groups => (0..n)
                .into_par_iter()
                .map(|i| match c.group[i] {
                    g if g >= 0 => pack(colormap::category(g as u64), 255),
                    _ => pack(neutral, 110),
                })
                .collect(),
            ColourMode::Ensemble => {
                let scores = &self.ensemble.0;
                let mut colours: Vec<u32> = scores
                    .par_iter()
                    .map(|&s| scalar_colour(s, 0.0, 1.0, 0.5))
                    .collect();
                for (&p, &bad) in self.decisions.labels() {
                    colours[p as usize] =
                        pack(if bad { [240, 70, 70] } else { [70, 220, 120] }, 255);
                }
                colours
            }
            ColourMode::Similarity => match &self.similarity {
                Some((_, sim)) => {
                    let (lo, hi, t) = self.similarity_range();
                    sim.par_iter()
                        .map(|&s| scalar_colour(s, lo, hi, t))
                        .collect()
                }
                None => vec![pack(neutral, 110); n],
            },
            ColourMode::Outliers => {
                let (lo, hi) = (self.ood_hist.quantile(0.01), self.ood_hist.quantile(0.999));
                let t = self.ood_threshold;
                (0..n)
                    .into_par_iter()
                    .map(|i| scalar_colour(c.ood[i], lo, hi, t))
                    .collect()
            }
            ColourMode::Quality(m) => {
                let t = self.quality_threshold[m];
                (0..n)
                    .into_par_iter()
                    .map(|i| scalar_colour(c.quality(i, m), 0.0, 1.0, t))
                    .collect()
            }
            ColourMode::Decision => (0..n)
                .into_par_iter()
                // Kept points faint, so dropped ones show through wherever they overlap
                // (points are drawn in index order, not by importance).
                .map(|i| match decisions.drop_reason(c, i) {
                    None => pack(KEPT, 90),
                    Some(reason) => pack(drop_colour(reason), 255),
                })
                .collect(),
            ColourMode::Selection => {
                let mut colours = vec![pack(neutral, 90); n];
                for &s in &self.selected {
                    colours[s as usize] = pack(SELECTED_COLOUR, 255);
                }
                colours
            }
            ColourMode::Caption => (0..n)
                .into_par_iter()
                .map(|i| {
                    if c.captioned[i] {
                        pack(CAPTIONED, 220)
                    } else {
                        pack(neutral, 120)
                    }
                })
                .collect(),
            ColourMode::Class => (0..n)
                .into_par_iter()
                .map(|i| match c.classes.of.get(i) {
                    Some(&k) if usize::from(k) < CLASS_COLOURS => {
                        pack(colormap::category(u64::from(k)), 255)
                    }
                    _ => pack(neutral, 110),
                })
                .collect(),
            ColourMode::GivenClass => match &c.given_classes {
                Some(given) => (0..n)
                    .into_par_iter()
                    .map(|i| match given.given.get(i) {
                        Some(&k) if usize::from(k) < given.names.len() => {
                            pack(colormap::category(u64::from(k)), 255)
                        }
                        _ => pack(neutral, 110),
                    })
                    .collect(),
                None => vec![pack(neutral, 110); n],
            },
            ColourMode::ClassIssue => match &c.given_classes {
                Some(given) => given
                    .score
                    .par_iter()
                    .map(|&s| {
                        if s.is_nan() {
                            pack(neutral, 110)
                        } else {
                            scalar_colour(s, 0.0, 1.0, crate::analysis::classes::DISPUTED)
                        }
                    })
                    .collect(),
                None => vec![pack(neutral, 110); n],
            },
        }
    }

    /// Changes the selection.
    pub fn select(&mut self, points: Vec<u32>, op: SelectOp) {
        self.selected = match op {
            SelectOp::Replace => points,
            SelectOp::Add => merge_sorted(&self.selected, &points),
            SelectOp::Subtract => subtract_sorted(&self.selected, &points),
        };
        self.selection_generation += 1;
        self.page = 0;
    }

    /// Selects every point.
    pub fn select_all(&mut self) {
        self.select(
            (0..self.collection.len() as u32).collect(),
            SelectOp::Replace,
        );
    }

    /// Selects every point not selected.
    pub fn invert_selection(&mut self) {
        let all: Vec<u32> = (0..self.collection.len() as u32).collect();
        let inverted = subtract_sorted(&all, &self.selected);
        self.select(inverted, SelectOp::Replace);
    }

    /// Selects the duplicate group of `point` (nothing when it has none).
    pub fn select_group_of(&mut self, point: u32, op: SelectOp) -> bool {
        let g = self.collection.group[point as usize];
        if g < 0 {
            return false;
        }
        let mut members = self.collection.groups[g as usize].members.clone();
        members.sort_unstable();
        self.select(members, op);
        true
    }

    /// Flies the map to group `g` and selects it.
    pub fn open_group(&mut self, g: u32) {
        let mut members = self.collection.groups[g as usize].members.clone();
        members.sort_unstable();
        let positions: Vec<[f32; 2]> = members
            .iter()
            .map(|&m| self.collection.positions[m as usize])
            .collect();
        self.map.fly_to(super::model::bounds(&positions), 40.0);
        self.inspected = members.first().copied();
        self.select(members, SelectOp::Replace);
    }

    fn touched(&mut self) {
        self.changed_at = Instant::now();
        // A hand-chosen keeper dropped, a mark reset: the groups may depend on it.
        self.retune();
    }

    /// Marks the selection kept or dropped (by hand).
    pub fn mark_selection(&mut self, keep: bool) -> usize {
        let label = format!(
            "{} {} selected",
            if keep { "keep" } else { "drop" },
            self.selected.len()
        );
        let reason = if keep {
            "kept by hand"
        } else {
            "dropped by hand"
        };
        let selected = self.selected.clone();
        let changed = self.decisions.apply(
            &label,
            reason,
            selected.into_iter().map(|p| (p, keep, None)),
        );
        self.touched();
        changed
    }

    /// Removes the marks of the selection (back to the analysis' decisions).
    pub fn reset_selection(&mut self) -> usize {
        let label = format!("reset {} selected", self.selected.len());
        let selected = self.selected.clone();
        let changed = self.decisions.clear(&label, &selected);
        self.touched();
        self.retune();
        changed
    }

    /// Marks one point.
    pub fn mark_point(&mut self, point: u32, keep: bool) {
        let label = format!(
            "{} {}",
            if keep { "keep" } else { "drop" },
            self.collection.path(point as usize)
        );
        let reason = if keep {
            "kept by hand"
        } else {
            "dropped by hand"
        };
        self.decisions.apply(&label, reason, [(point, keep, None)]);
        self.touched();
    }

    /// The current keeper of group `g`: the member chosen by hand while it is kept, else
    /// the one kept member when exactly one is kept, else the analysis' keeper.
    #[must_use]
    pub fn keeper(&self, g: u32) -> u32 {
        let group = &self.collection.groups[g as usize];
        if let Some(chosen) = self.decisions.chosen_keeper(&group.members) {
            return chosen;
        }
        let kept: Vec<u32> = group
            .members
            .iter()
            .copied()
            .filter(|&m| self.decisions.keep(&self.collection, m as usize))
            .collect();
        if kept.len() == 1 {
            kept[0]
        } else {
            group.keeper
        }
    }

    fn keeper_changes(&self, g: u32, keeper: u32) -> Vec<(u32, bool, Option<DropReason>)> {
        let c = &self.collection;
        c.groups[g as usize]
            .members
            .iter()
            .map(|&m| {
                let kind = if c.dup_kind[m as usize] == super::model::DupKind::Exact
                    && c.dup_kind[keeper as usize] == super::model::DupKind::Exact
                {
                    DropReason::ExactDuplicate
                } else {
                    DropReason::NearDuplicate
                };
                (m, m == keeper, Some(kind))
            })
            .collect()
    }

    /// Makes `point` the keeper of its group: kept, every other member dropped.
    pub fn make_keeper(&mut self, point: u32) {
        let g = self.collection.group[point as usize];
        if g < 0 {
            return;
        }
        let path = self.collection.path(point as usize);
        let changes = self.keeper_changes(g as u32, point);
        self.decisions.apply_with_keeper(
            &format!("make {path} the keeper"),
            &format!("duplicate of {path}"),
            changes,
            Some(point),
        );
        self.touched();
        self.retune();
    }

    /// Says `point` is not a duplicate of the other members of its group (remembered in
    /// the session, honoured by the next analysis), as one step; it leaves the group.
    pub fn not_duplicate(&mut self, point: u32) -> usize {
        let g = self.collection.group[point as usize];
        if g < 0 {
            return 0;
        }
        if self.collection.dup_kind[point as usize] == super::model::DupKind::Exact {
            // Byte-identical files are one picture: nothing to separate.
            return 0;
        }
        let members = self.collection.groups[g as usize].members.clone();
        let path = self.collection.path(point as usize);
        let added = self.decisions.set_apart_pairs(
            &format!("{path} is not a duplicate"),
            members.iter().filter(|&&m| m != point).map(|&m| (point, m)),
            &members,
        );
        self.touched();
        self.retune();
        added
    }

    /// Splits the selected members of group `g` from the others (they are not duplicates
    /// of them), as one step.
    pub fn split_group(&mut self, g: u32, part: &[u32]) -> usize {
        let members = self.collection.groups[g as usize].members.clone();
        let (inside, outside): (Vec<u32>, Vec<u32>) =
            members.iter().partition(|m| part.contains(m));
        if inside.is_empty() || outside.is_empty() {
            return 0;
        }
        let pairs: Vec<(u32, u32)> = inside
            .iter()
            .flat_map(|&a| outside.iter().map(move |&b| (a, b)))
            .collect();
        let added = self.decisions.set_apart_pairs(
            &format!("split {} from group {g}", inside.len()),
            pairs,
            &members,
        );
        self.touched();
        self.retune();
        added
    }

    /// Drops every member but the keeper, in group `g` or (`None`) in every group.
    pub fn drop_all_but_keeper(&mut self, g: Option<u32>) -> usize {
        let groups: Vec<u32> = match g {
            Some(g) => vec![g],
            None => (0..self.collection.groups.len() as u32).collect(),
        };
        let mut changes = Vec::new();
        for g in &groups {
            let keeper = self.keeper(*g);
            changes.extend(self.keeper_changes(*g, keeper));
        }
        let label = match g {
            Some(g) => format!("drop all but the keeper of group {g}"),
            None => format!("drop all but the keepers of {} groups", groups.len()),
        };
        let changed = self
            .decisions
            .apply(&label, "duplicate of the group's keeper", changes);
        self.touched();
        self.retune();
        changed
    }

    /// Drops every image whose `score` is at or over `threshold`, as one step.
    fn drop_at_or_above(
        &mut self,
        score: impl Fn(&Collection, usize) -> f32,
        threshold: f32,
        what: &str,
        kind: DropReason,
    ) -> usize {
        let points: Vec<u32> = (0..self.collection.len() as u32)
            .filter(|&i| score(&self.collection, i as usize) >= threshold)
            .collect();
        let reason = format!("{what} >= {threshold:.3}");
        let label = format!("drop {} ({reason})", points.len());
        let changed = self.decisions.apply(
            &label,
            &reason,
            points.into_iter().map(|p| (p, false, Some(kind))),
        );
        self.touched();
        changed
    }

    /// Drops every image whose outlier score is at or over the threshold.
    pub fn drop_outliers(&mut self) -> usize {
        let t = self.ood_threshold;
        self.drop_at_or_above(|c, i| c.ood[i], t, "outlier score", DropReason::Outlier)
    }

    /// Drops every image whose quality measure `m` is at or over its threshold.
    pub fn drop_quality(&mut self, m: usize) -> usize {
        let t = self.quality_threshold[m];
        let what = format!("{} score", SCORE_NAMES[m]);
        self.drop_at_or_above(|c, i| c.quality(i, m), t, &what, DropReason::Quality)
    }

    /// Undo.
    pub fn undo(&mut self) -> Option<String> {
        let label = self.decisions.undo();
        self.touched();
        self.retune();
        label
    }

    /// Gives `points` the class `class` by hand (`None`: takes their hand-given class
    /// back), as one undoable step; returns how many changed.
    pub fn relabel(&mut self, points: &[u32], class: Option<&str>) -> usize {
        let changes: Vec<(u32, Option<String>)> = points
            .iter()
            .map(|&p| (p, class.map(str::to_owned)))
            .collect();
        let label = match class {
            Some(class) => format!("relabel {} as {class}", points.len()),
            None => format!("clear the relabels of {}", points.len()),
        };
        let changed = self.decisions.relabel(&label, &changes);
        self.touched();
        changed
    }

    /// Gives each disputed image of `points` (another class fits it better) its
    /// suggested class, as one undoable step; returns how many changed.
    pub fn relabel_suggested(&mut self, points: &[u32]) -> usize {
        let Some(given) = &self.collection.given_classes else {
            return 0;
        };
        let changes: Vec<(u32, Option<String>)> = points
            .iter()
            .filter(|&&p| given.disputed(p as usize))
            .filter_map(|&p| {
                let class = given.name(given.suggested[p as usize])?;
                Some((p, Some(class.to_owned())))
            })
            .collect();
        let changed = self
            .decisions
            .relabel(&format!("relabel {} as suggested", changes.len()), &changes);
        self.touched();
        changed
    }

    /// Redo.
    pub fn redo(&mut self) -> Option<String> {
        let label = self.decisions.redo();
        self.touched();
        self.retune();
        label
    }

    /// Saves the decisions to `DIR/.curate/session.json` (datasets only).
    pub fn save_session(&mut self) -> Result<(), String> {
        let Some(root) = self.collection.root().cloned() else {
            return Ok(());
        };
        let session = self.decisions.to_session(&self.collection);
        match session.save(&root) {
            Ok(()) => {
                self.saved_generation = self.decisions.generation;
                self.save_error = None;
                Ok(())
            }
            Err(err) => {
                let message = format!("could not save the decisions: {err}");
                self.save_error = Some(message.clone());
                Err(message)
            }
        }
    }

    /// Whether there are decisions not yet saved.
    #[must_use]
    pub fn unsaved(&self) -> bool {
        self.saved_generation != self.decisions.generation && self.collection.root().is_some()
    }

    /// An error while the collection is a preview of a running analysis (a keep-list of a
    /// preview would leave out every image not decoded yet).
    pub fn complete(&self) -> Result<(), String> {
        match self.collection.preview {
            Some(p) => Err(format!(
                "the analysis is still running ({} of {} files): saving is possible when it finishes",
                p.ready, p.files
            )),
            None => Ok(()),
        }
    }

    /// The report rows with the effective decisions applied (what the keep-list and the
    /// decision export write). Unreadable files are never kept.
    #[must_use]
    pub fn effective_rows(&self) -> Vec<report::ReportRow> {
        let Source::Dataset { rows, .. } = &*self.collection.source else {
            return Vec::new();
        };
        let Source::Dataset { rows: base, .. } = &*self.base else {
            return rows.clone();
        };
        // The one rule `curate export` applies to the saved session.
        let evidence = crate::pipeline::decide::Evidence {
            near: &self.collection.near,
            semantic: self.collection.semantic_pairs.as_deref(),
        };
        let session = self.decisions.to_session(&self.collection);
        crate::pipeline::decide::effective(base.clone(), evidence, &session, None).0
    }

    /// Writes the keep-list (same format as `curate analyze --keep-list`), atomically.
    pub fn save_keep_list(&self, path: &Path) -> Result<usize, String> {
        self.complete()?;
        let rows = self.effective_rows();
        if rows.is_empty() && !self.collection.is_empty() {
            return Err("stress-mode points have no files to list".to_owned());
        }
        keeplist::write(
            path,
            rows.iter().filter(|r| r.keep).map(|r| r.path.as_str()),
        )
        .map_err(|err| format!("could not write {}: {err}", path.display()))
    }

    /// Writes every file's decision, reason, group and scores as CSV or parquet (by
    /// extension), atomically.
    pub fn export_decisions(&self, path: &Path) -> Result<usize, String> {
        self.complete()?;
        let rows = self.effective_rows();
        if rows.is_empty() && !self.collection.is_empty() {
            return Err("stress-mode points have no files to export".to_owned());
        }
        let parquet = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        let written = if parquet {
            report::write(path, &rows)
        } else {
            report::write_csv(path, &rows)
        };
        written
            .map(|()| rows.len())
            .map_err(|err| format!("could not write {}: {err}", path.display()))
    }
}

fn scalar_colour(value: f32, lo: f32, hi: f32, threshold: f32) -> u32 {
    let t = (value - lo) / (hi - lo).max(1e-6);
    let alpha = if value >= threshold { 255 } else { 70 };
    colormap::viridis_packed(t, alpha)
}

fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn subtract_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

/// Packs a colour for egui.
#[must_use]
pub fn egui_colour(rgb: [u8; 3]) -> egui::Color32 {
    egui::Color32::from_rgb(rgb[0], rgb[1], rgb[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_set_operations() {
        assert_eq!(merge_sorted(&[1, 3, 5], &[2, 3, 9]), [1, 2, 3, 5, 9]);
        assert_eq!(subtract_sorted(&[1, 2, 3, 5, 9], &[2, 9, 10]), [1, 3, 5]);
    }

    #[test]
    fn histogram_counts_and_quantiles() {
        let h = Histogram::new((0..100).map(|v| v as f32).collect());
        assert_eq!(h.bins.iter().sum::<u32>(), 100);
        assert_eq!(h.at_or_above(90.0), 10);
        assert!((h.quantile(0.5) - 50.0).abs() <= 1.0);
    }
}
