//! A person's keep/drop marks over the analysis' own decisions, with undo/redo, counts by
//! reason, and conversion to and from `DIR/.curate/session.json`.
//!
//! Each point's mark is one `u32` (0 = no mark): bit 0 keep, bits 1–3 the drop kind,
//! bits 4.. the reason text's index + 1, so a million marks take 4 MB.

use std::collections::{BTreeMap, HashMap};

use crate::analysis::keep::DropReason;
use crate::store::session::{Decision, Session};

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
    /// Index of the reason text.
    reason: u32,
}

impl Mark {
    fn encode(self) -> u32 {
        u32::from(self.keep) | kind_code(self.kind) << 1 | (self.reason + 1) << 4
    }

    fn decode(code: u32) -> Option<Self> {
        (code != 0).then(|| Self {
            keep: code & 1 == 1,
            kind: KINDS[((code >> 1) & 7) as usize % KINDS.len()],
            reason: (code >> 4) - 1,
        })
    }
}

/// One undoable step: the marks it changed, before and after.
#[derive(Clone, Debug)]
struct Edit {
    label: String,
    changes: Vec<(u32, u32, u32)>,
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
    /// Bumped on every change (the app recolours and autosaves on it).
    pub generation: u64,
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

    /// Marks `changes` (point, keep, kind) with one reason as one undoable step. Returns how
    /// many marks changed.
    pub fn apply(
        &mut self,
        label: &str,
        reason: &str,
        changes: impl IntoIterator<Item = (u32, bool, Option<DropReason>)>,
    ) -> usize {
        let reason = self.reason_id(reason);
        let mut edit = Edit {
            label: label.to_owned(),
            changes: Vec::new(),
        };
        for (point, keep, kind) in changes {
            let Some(slot) = self.marks.get_mut(point as usize) else {
                continue;
            };
            let after = Mark {
                keep,
                kind: if keep { None } else { kind },
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
        let mut edit = Edit {
            label: label.to_owned(),
            changes: Vec::new(),
        };
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
        let changed = edit.changes.len();
        if changed > 0 {
            self.undo.push(edit);
            self.redo.clear();
            self.generation += 1;
        }
        changed
    }

    /// Undoes the last step; returns its label.
    pub fn undo(&mut self) -> Option<String> {
        let edit = self.undo.pop()?;
        for &(point, before, _) in edit.changes.iter().rev() {
            self.marks[point as usize] = before;
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
        let label = edit.label.clone();
        self.undo.push(edit);
        self.generation += 1;
        Some(label)
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

    /// The marks as a saved session (keyed by relative path).
    #[must_use]
    pub fn to_session(&self, collection: &Collection) -> Session {
        let mut session = Session {
            version: 1,
            decisions: self.orphans.clone(),
            ..Session::default()
        };
        for (i, &code) in self.marks.iter().enumerate() {
            if let Some(mark) = Mark::decode(code) {
                session.decisions.insert(
                    collection.path(i),
                    Decision {
                        keep: mark.keep,
                        reason: self.reason_text(mark).to_owned(),
                        kind: mark.kind,
                    },
                );
            }
        }
        session
    }

    /// Marks from a saved session; decisions about files that are no longer points are
    /// counted and skipped. Loading is not an undoable step.
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
                    reason,
                }
                .encode();
            } else {
                unknown += 1;
                decisions.orphans.insert(path.clone(), decision.clone());
            }
        }
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

        let session = d.to_session(&collection);
        assert_eq!(session.decisions.len(), 3);
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
    }
}
