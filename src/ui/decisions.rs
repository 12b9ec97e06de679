//! A person's keep/drop marks over the analysis' own decisions, with undo/redo, counts by
//! reason, and conversion to and from `DIR/.curate/session.json`.
//!
//! Each point's mark is one `u32` (0 = no mark): bit 0 keep, bits 1–3 the drop kind,
//! bit 4 "chosen as keeper", bits 5.. the reason text's index + 1, so a million marks take
//! 4 MB. Besides marks, one undo history holds everything else a person decides that the
//! session saves: quality labels, "not a duplicate" pairs and the tuning of groups
//! (thresholds, keeper policy, whether labels choose keepers).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::analysis::keep::DropReason;
use crate::store::session::{Decision, QualityLabel, Session, Settings};

use super::model::Collection;

const KINDS: [Option<DropReason>; 7] = [
    None,
    Some(DropReason::ExactDuplicate),
    Some(DropReason::NearDuplicate),
    Some(DropReason::Outlier),
    Some(DropReason::Quality),
    Some(DropReason::Manual),
    Some(DropReason::SemanticDuplicate),
];

fn kind_code(kind: Option<DropReason>) -> u32 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0) as u32
}

/// A decoded mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Keep or drop.
    pub keep: bool,
    /// The report's drop reason (`None` = manual).
    pub kind: Option<DropReason>,
    /// Chosen by hand as its group's keeper.
    pub keeper: bool,
    /// Index of the reason text.
    reason: u32,
}

impl Mark {
    fn encode(self) -> u32 {
        u32::from(self.keep)
            | kind_code(self.kind) << 1
            | u32::from(self.keeper) << 4
            | (self.reason + 1) << 5
    }

    fn decode(code: u32) -> Option<Self> {
        (code != 0).then(|| Self {
            keep: code & 1 == 1,
            kind: KINDS[((code >> 1) & 7) as usize % KINDS.len()],
            keeper: code & 16 != 0,
            reason: (code >> 5).saturating_sub(1),
        })
    }
}

/// One undoable step: the marks it changed, before and after, and the labels, "not a
/// duplicate" pairs and settings it changed.
#[derive(Clone, Debug, Default)]
struct Edit {
    label: String,
    changes: Vec<(u32, u32, u32)>,
    /// Point, label before, label after (`Some(true)` = bad).
    labels: Vec<(u32, Option<bool>, Option<bool>)>,
    /// Pair of points, and whether it was added (else removed).
    apart: Vec<((u32, u32), bool)>,
    /// Settings before and after.
    settings: Option<(Settings, Settings)>,
    /// Point, class given by hand before and after (`None`: the class it came with).
    relabels: Vec<(u32, Option<String>, Option<String>)>,
}

impl Edit {
    fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.labels.is_empty()
            && self.apart.is_empty()
            && self.settings.is_none()
            && self.relabels.is_empty()
    }

    /// Whether it changes what the automatic rule decides (not only marks).
    fn tunes_groups(&self) -> bool {
        !self.labels.is_empty()
            || !self.apart.is_empty()
            || self.settings.is_some()
            || self
                .changes
                .iter()
                .any(|&(_, before, after)| (before ^ after) & 16 != 0)
    }
}

/// Counts of the effective state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Points kept.
    pub kept: usize,
    /// Points dropped, by report reason.
    pub dropped: BTreeMap<&'static str, usize>,
    /// Points with a mark by hand.
    pub marked: usize,
}

impl Counts {
    /// All dropped points.
    #[must_use]
    pub fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }
}

/// The marks of one collection.
#[derive(Debug, Default)]
pub struct Decisions {
    marks: Vec<u32>,
    reasons: Vec<String>,
    reason_ids: HashMap<String, u32>,
    undo: Vec<Edit>,
    redo: Vec<Edit>,
    /// Saved decisions about files that are not points now (removed, or unreadable this
    /// time): written back unchanged so nothing the user decided is lost.
    orphans: BTreeMap<String, Decision>,
    /// Quality labels: point → bad.
    labels: BTreeMap<u32, bool>,
    /// Saved labels of files that are not points.
    label_orphans: BTreeMap<String, QualityLabel>,
    /// Pairs of points a person said are not duplicates (lower first).
    apart: BTreeSet<(u32, u32)>,
    /// Saved "not a duplicate" pairs naming files that are not points.
    apart_orphans: BTreeSet<(String, String)>,
    /// Classes given by hand (the Classes panel): point → class.
    relabels: BTreeMap<u32, String>,
    /// Saved relabels of files that are not points.
    relabel_orphans: BTreeMap<String, String>,
    /// How the automatic decisions are tuned.
    settings: Settings,
    /// Bumped on every change (the app recolours and autosaves on it).
    pub generation: u64,
    /// Bumped on every change of what the automatic rule decides from (labels, pairs,
    /// settings, hand-chosen keepers): the app regroups on it.
    pub tuning: u64,
}

impl Decisions {
    /// No marks for `len` points.
    #[must_use]
    pub fn new(len: usize) -> Self {
        Self {
            marks: vec![0; len],
            ..Self::default()
        }
    }

    fn reason_id(&mut self, reason: &str) -> u32 {
        if let Some(&id) = self.reason_ids.get(reason) {
            return id;
        }
        let id = self.reasons.len() as u32;
        self.reasons.push(reason.to_owned());
        self.reason_ids.insert(reason.to_owned(), id);
        id
    }

    /// The mark of point `i`.
    #[must_use]
    pub fn mark(&self, i: usize) -> Option<Mark> {
        Mark::decode(*self.marks.get(i)?)
    }

    /// The reason text of a mark.
    #[must_use]
    pub fn reason_text(&self, mark: Mark) -> &str {
        self.reasons
            .get(mark.reason as usize)
            .map_or("", String::as_str)
    }

    /// Whether point `i` is kept: the mark when there is one, else the analysis' decision.
    #[must_use]
    pub fn keep(&self, collection: &Collection, i: usize) -> bool {
        match self.mark(i) {
            Some(mark) => mark.keep,
            None => collection.auto_drop[i].is_none(),
        }
    }

    /// Why point `i` is dropped (report spelling), or `None` when kept.
    #[must_use]
    pub fn drop_reason(&self, collection: &Collection, i: usize) -> Option<DropReason> {
        match self.mark(i) {
            Some(mark) if mark.keep => None,
            Some(mark) => Some(mark.kind.unwrap_or(DropReason::Manual)),
            None => collection.auto_drop[i],
        }
    }

    /// Marks `changes` (point, keep, kind) with one reason as one undoable step. A point
    /// chosen as keeper stays the keeper while it is kept. Returns how many marks changed.
    pub fn apply(
        &mut self,
        label: &str,
        reason: &str,
        changes: impl IntoIterator<Item = (u32, bool, Option<DropReason>)>,
    ) -> usize {
        self.apply_with_keeper(label, reason, changes, None)
    }

    /// [`Self::apply`], making `keeper` (one of the changed points, kept) the point chosen
    /// as keeper and every other changed point no longer one.
    pub fn apply_with_keeper(
        &mut self,
        label: &str,
        reason: &str,
        changes: impl IntoIterator<Item = (u32, bool, Option<DropReason>)>,
        keeper: Option<u32>,
    ) -> usize {
        let reason = self.reason_id(reason);
        let mut edit = Edit::new(label);
        for (point, keep, kind) in changes {
            let Some(slot) = self.marks.get_mut(point as usize) else {
                continue;
            };
            let was_keeper = Mark::decode(*slot).is_some_and(|m| m.keeper);
            let after = Mark {
                keep,
                kind: if keep { None } else { kind },
                keeper: keep
                    && match keeper {
                        Some(k) => k == point,
                        None => was_keeper,
                    },
                reason,
            }
            .encode();
            if *slot != after {
                edit.changes.push((point, *slot, after));
                *slot = after;
            }
        }
        self.commit(edit)
    }

    /// Removes the marks of `points` (back to the analysis' decision), as one step.
    pub fn clear(&mut self, label: &str, points: &[u32]) -> usize {
        let mut edit = Edit::new(label);
        for &point in points {
            if let Some(slot) = self.marks.get_mut(point as usize)
                && *slot != 0
            {
                edit.changes.push((point, *slot, 0));
                *slot = 0;
            }
        }
        self.commit(edit)
    }

    fn commit(&mut self, edit: Edit) -> usize {
        let changed =
            edit.changes.len() + edit.labels.len() + edit.apart.len() + edit.relabels.len();
        if !edit.is_empty() {
            if edit.tunes_groups() {
                self.tuning += 1;
            }
            self.undo.push(edit);
            self.redo.clear();
            self.generation += 1;
        }
        changed
    }

    fn set_label(&mut self, point: u32, label: Option<bool>) {
        match label {
            Some(bad) => self.labels.insert(point, bad),
            None => self.labels.remove(&point),
        };
    }

    fn set_relabel(&mut self, point: u32, class: Option<&String>) {
        match class {
            Some(class) => self.relabels.insert(point, class.clone()),
            None => self.relabels.remove(&point),
        };
    }

    /// Gives each of `changes`' points a class by hand (`None`: takes it back), as one
    /// step. Returns how many changed.
    pub fn relabel(&mut self, label: &str, changes: &[(u32, Option<String>)]) -> usize {
        let mut edit = Edit::new(label);
        for (point, after) in changes {
            let before = self.relabels.get(point).cloned();
            if before != *after {
                self.set_relabel(*point, after.as_ref());
                edit.relabels.push((*point, before, after.clone()));
            }
        }
        self.commit(edit)
    }

    /// The classes given by hand: point → class.
    #[must_use]
    pub fn relabels(&self) -> &BTreeMap<u32, String> {
        &self.relabels
    }

    fn set_apart(&mut self, pair: (u32, u32), apart: bool) {
        if apart {
            self.apart.insert(pair);
        } else {
            self.apart.remove(&pair);
        }
    }

    /// Undoes the last step; returns its label.
    pub fn undo(&mut self) -> Option<String> {
        let edit = self.undo.pop()?;
        for &(point, before, _) in edit.changes.iter().rev() {
            self.marks[point as usize] = before;
        }
        for &(point, before, _) in edit.labels.iter().rev() {
            self.set_label(point, before);
        }
        for &(pair, added) in edit.apart.iter().rev() {
            self.set_apart(pair, !added);
        }
        for (point, before, _) in edit.relabels.iter().rev() {
            self.set_relabel(*point, before.as_ref());
        }
        if let Some((before, _)) = edit.settings {
            self.settings = before;
        }
        if edit.tunes_groups() {
            self.tuning += 1;
        }
        let label = edit.label.clone();
        self.redo.push(edit);
        self.generation += 1;
        Some(label)
    }

    /// Redoes the last undone step; returns its label.
    pub fn redo(&mut self) -> Option<String> {
        let edit = self.redo.pop()?;
        for &(point, _, after) in &edit.changes {
            self.marks[point as usize] = after;
        }
        for &(point, _, after) in &edit.labels {
            self.set_label(point, after);
        }
        for &(pair, added) in &edit.apart {
            self.set_apart(pair, added);
        }
        for (point, _, after) in &edit.relabels {
            self.set_relabel(*point, after.as_ref());
        }
        if let Some((_, after)) = edit.settings {
            self.settings = after;
        }
        if edit.tunes_groups() {
            self.tuning += 1;
        }
        let label = edit.label.clone();
        self.undo.push(edit);
        self.generation += 1;
        Some(label)
    }

    /// Labels `points` good or bad (`None`: removes their labels), with (`settings`) a
    /// change of the tuning, as one step. Returns how many labels changed.
    pub fn label(
        &mut self,
        label: &str,
        points: &[u32],
        bad: Option<bool>,
        settings: Option<Settings>,
    ) -> usize {
        let mut edit = Edit::new(label);
        if let Some(after) = settings.filter(|s| *s != self.settings) {
            edit.settings = Some((self.settings, after));
            self.settings = after;
        }
        for &point in points {
            let before = self.labels.get(&point).copied();
            if before != bad {
                edit.labels.push((point, before, bad));
                self.set_label(point, bad);
            }
        }
        self.commit(edit)
    }

    /// The quality labels: point → bad.
    #[must_use]
    pub fn labels(&self) -> &BTreeMap<u32, bool> {
        &self.labels
    }

    /// Says that each of `pairs` is not a pair of duplicates, as one step; the duplicate
    /// drops marked on `points` (e.g. by "drop all but the keeper") are removed in the same
    /// step, so the automatic rule decides them again without the pairs. Returns how many
    /// pairs were new.
    pub fn set_apart_pairs(
        &mut self,
        label: &str,
        pairs: impl IntoIterator<Item = (u32, u32)>,
        points: &[u32],
    ) -> usize {
        let mut edit = Edit::new(label);
        for (a, b) in pairs {
            let pair = (a.min(b), a.max(b));
            if a != b && self.apart.insert(pair) {
                edit.apart.push((pair, true));
            }
        }
        for &point in points {
            let Some(slot) = self.marks.get_mut(point as usize) else {
                continue;
            };
            let duplicate_drop = Mark::decode(*slot).is_some_and(|m| {
                !m.keep
                    && matches!(
                        m.kind,
                        Some(
                            DropReason::NearDuplicate
                                | DropReason::ExactDuplicate
                                | DropReason::SemanticDuplicate
                        )
                    )
            });
            if duplicate_drop {
                edit.changes.push((point, *slot, 0));
                *slot = 0;
            }
        }
        let added = edit.apart.len();
        self.commit(edit);
        added
    }

    /// Whether a person said points `a` and `b` are not duplicates.
    #[must_use]
    pub fn is_apart(&self, a: u32, b: u32) -> bool {
        self.apart.contains(&(a.min(b), a.max(b)))
    }

    /// How many "not a duplicate" pairs there are.
    #[must_use]
    pub fn apart_count(&self) -> usize {
        self.apart.len() + self.apart_orphans.len()
    }

    /// Whether anything here changes the automatic decisions (see
    /// [`Session::tunes_groups`]).
    #[must_use]
    pub fn tunes_groups(&self) -> bool {
        !self.settings.is_default()
            || !self.labels.is_empty()
            || !self.label_orphans.is_empty()
            || !self.apart.is_empty()
            || !self.apart_orphans.is_empty()
            || self.orphans.values().any(|d| d.keeper)
            || self.marks.iter().any(|&m| m & 16 != 0)
    }

    /// The tuning of groups.
    #[must_use]
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Changes the tuning of groups as one step. Returns whether anything changed.
    pub fn set_settings(&mut self, label: &str, settings: Settings) -> bool {
        if settings == self.settings {
            return false;
        }
        let mut edit = Edit::new(label);
        edit.settings = Some((self.settings, settings));
        self.settings = settings;
        self.commit(edit);
        true
    }

    /// The point chosen by hand as keeper among `members`, while it is kept.
    #[must_use]
    pub fn chosen_keeper(&self, members: &[u32]) -> Option<u32> {
        members.iter().copied().find(|&m| {
            self.mark(m as usize)
                .is_some_and(|mark| mark.keeper && mark.keep)
        })
    }

    /// The label of the step [`Self::undo`] would undo.
    #[must_use]
    pub fn undo_label(&self) -> Option<&str> {
        self.undo.last().map(|e| e.label.as_str())
    }

    /// The label of the step [`Self::redo`] would redo.
    #[must_use]
    pub fn redo_label(&self) -> Option<&str> {
        self.redo.last().map(|e| e.label.as_str())
    }

    /// Kept and dropped counts of the whole collection.
    #[must_use]
    pub fn counts(&self, collection: &Collection) -> Counts {
        let mut counts = Counts::default();
        for i in 0..collection.len() {
            if self.marks[i] != 0 {
                counts.marked += 1;
            }
            match self.drop_reason(collection, i) {
                None => counts.kept += 1,
                Some(reason) => *counts.dropped.entry(reason.as_str()).or_default() += 1,
            }
        }
        counts
    }

    /// Everything decided as a saved session (keyed by relative path).
    #[must_use]
    pub fn to_session(&self, collection: &Collection) -> Session {
        let mut session = Session {
            version: 1,
            decisions: self.orphans.clone(),
            quality_labels: self.label_orphans.clone(),
            not_duplicates: self.apart_orphans.clone(),
            settings: self.settings,
            relabels: self.relabel_orphans.clone(),
        };
        for (&p, class) in &self.relabels {
            session
                .relabels
                .insert(collection.path(p as usize), class.clone());
        }
        for (i, &code) in self.marks.iter().enumerate() {
            if let Some(mark) = Mark::decode(code) {
                session.decisions.insert(
                    collection.path(i),
                    Decision {
                        keep: mark.keep,
                        reason: self.reason_text(mark).to_owned(),
                        kind: mark.kind,
                        keeper: mark.keeper,
                    },
                );
            }
        }
        for (&p, &bad) in &self.labels {
            session.quality_labels.insert(
                collection.path(p as usize),
                if bad {
                    QualityLabel::Bad
                } else {
                    QualityLabel::Good
                },
            );
        }
        for &(a, b) in &self.apart {
            let (a, b) = (collection.path(a as usize), collection.path(b as usize));
            session
                .not_duplicates
                .insert((a.clone().min(b.clone()), a.max(b)));
        }
        session
    }

    /// Everything decided, from a saved session; decisions about files that are no longer
    /// points are counted and kept aside (written back on save). Loading is not an
    /// undoable step.
    #[must_use]
    pub fn from_session(session: &Session, collection: &Collection) -> (Self, usize) {
        let mut decisions = Self::new(collection.len());
        let index = collection.point_index();
        let mut unknown = 0;
        for (path, decision) in &session.decisions {
            if let Some(&point) = index.get(path) {
                let reason = decisions.reason_id(&decision.reason);
                decisions.marks[point as usize] = Mark {
                    keep: decision.keep,
                    kind: if decision.keep { None } else { decision.kind },
                    keeper: decision.keep && decision.keeper,
                    reason,
                }
                .encode();
            } else {
                unknown += 1;
                decisions.orphans.insert(path.clone(), decision.clone());
            }
        }
        for (path, label) in &session.quality_labels {
            match index.get(path) {
                Some(&p) => {
                    decisions.labels.insert(p, *label == QualityLabel::Bad);
                }
                None => {
                    decisions.label_orphans.insert(path.clone(), *label);
                }
            }
        }
        for (a, b) in &session.not_duplicates {
            match (index.get(a), index.get(b)) {
                (Some(&a), Some(&b)) => {
                    decisions.apart.insert((a.min(b), a.max(b)));
                }
                _ => {
                    decisions.apart_orphans.insert((a.clone(), b.clone()));
                }
            }
        }
        for (path, class) in &session.relabels {
            match index.get(path) {
                Some(&p) => {
                    decisions.relabels.insert(p, class.clone());
                }
                None => {
                    decisions
                        .relabel_orphans
                        .insert(path.clone(), class.clone());
                }
            }
        }
        decisions.settings = session.settings;
        (decisions, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_undo_redo_and_round_trip_through_a_session() {
        let collection = Collection::synthetic(2_000, 3);
        let mut d = Decisions::new(collection.len());
        let base = d.counts(&collection);
        assert_eq!(base.marked, 0);
        let auto_dropped = collection.auto_drop.iter().filter(|r| r.is_some()).count();
        assert_eq!(base.dropped_total(), auto_dropped);

        let changed = d.apply("drop 3", "lasso", [5, 6, 7].map(|p| (p, false, None)));
        assert_eq!(changed, 3);
        assert_eq!(d.drop_reason(&collection, 6), Some(DropReason::Manual));
        d.apply(
            "outliers",
            "outlier score >= 0.6",
            [7, 8].map(|p| (p, false, Some(DropReason::Outlier))),
        );
        assert_eq!(d.drop_reason(&collection, 7), Some(DropReason::Outlier));
        assert_eq!(d.counts(&collection).dropped_total(), auto_dropped + 4);

        assert_eq!(d.undo().as_deref(), Some("outliers"));
        assert_eq!(d.drop_reason(&collection, 7), Some(DropReason::Manual));
        assert!(d.keep(&collection, 8));
        assert_eq!(d.redo().as_deref(), Some("outliers"));
        assert!(!d.keep(&collection, 8));
        // A new step clears the redo stack.
        d.undo();
        d.apply("keep 5", "looks fine", [(5, true, None)]);
        assert!(d.redo().is_none());
        assert!(d.keep(&collection, 5));

        // Relabels: one step, undone and redone, kept with the decisions.
        assert_eq!(
            d.relabel(
                "relabel",
                &[(9, Some("cat".into())), (10, Some("dog".into()))]
            ),
            2
        );
        assert_eq!(d.relabel("again", &[(9, Some("cat".into()))]), 0);
        d.undo();
        assert!(d.relabels().is_empty());
        d.redo();
        assert_eq!(d.relabels().get(&10).map(String::as_str), Some("dog"));

        let session = d.to_session(&collection);
        assert_eq!(session.decisions.len(), 3);
        assert_eq!(session.relabels.len(), 2);
        let (back, unknown) = Decisions::from_session(&session, &collection);
        assert_eq!(unknown, 0);
        for i in 0..collection.len() {
            assert_eq!(
                back.drop_reason(&collection, i),
                d.drop_reason(&collection, i)
            );
        }
        assert_eq!(
            back.reason_text(back.mark(5).unwrap()),
            "looks fine",
            "reasons survive the round trip"
        );
        assert_eq!(back.relabels(), d.relabels());
    }
}
