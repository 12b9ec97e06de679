//! The one rule for decisions, shared by the app, `curate export` and the next analysis:
//! the analysis' automatic decisions, tuned by what a saved session says about groups
//! (thresholds, keeper policy, whether labels choose keepers, "not a duplicate" pairs,
//! keepers chosen by hand), then a person's explicit keep/drop marks over them.
//!
//! A person's explicit choices always win: a hand-chosen keeper stays its group's keeper
//! under any policy, learned score or threshold, and a keep/drop mark overrides whatever the
//! automatic rule decides for that file.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::near::{NearPairs, Verified};
use super::semantic::SemanticPairs;
use crate::analysis::dedup::{DupKind, DupLink};
use crate::analysis::keep::KeeperPolicy;
use crate::store::report::ReportRow;
use crate::store::session::Session;

/// What the automatic rule needs besides the report rows: the run's verified near pairs
/// and, for rows without an image, the semantic pairs.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// Every verified candidate pair of the run.
    pub near: &'a NearPairs,
    /// SemDeDup's pairs (rows without an image only), when the run had them.
    pub semantic: Option<&'a SemanticPairs>,
}

/// Rows of `rows` by path.
fn row_index(rows: &[ReportRow]) -> HashMap<&str, u32> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| (r.path.as_str(), i as u32))
        .collect()
}

/// The "not a duplicate" pairs of `session` as row pairs (lower first); pairs naming
/// files that are not rows are skipped.
#[must_use]
pub fn not_duplicate_rows(rows: &[ReportRow], session: &Session) -> HashSet<(u32, u32)> {
    not_duplicate_pairs(rows.iter().map(|r| r.path.as_str()), session)
}

/// The "not a duplicate" pairs of `session` as pairs of positions in `paths` (lower
/// first); pairs naming other paths are skipped.
pub fn not_duplicate_pairs<'a>(
    paths: impl Iterator<Item = &'a str>,
    session: &Session,
) -> HashSet<(u32, u32)> {
    if session.not_duplicates.is_empty() {
        return HashSet::new();
    }
    let index: HashMap<&str, u32> = paths.enumerate().map(|(i, p)| (p, i as u32)).collect();
    session
        .not_duplicates
        .iter()
        .filter_map(|(a, b)| {
            let (a, b) = (*index.get(a.as_str())?, *index.get(b.as_str())?);
            Some((a.min(b), a.max(b)))
        })
        .collect()
}

/// The learned score per row (higher = worse) when the session's labels name at least one
/// good and one bad readable image and labels choose keepers.
#[must_use]
pub fn learned_scores(rows: &[ReportRow], session: &Session) -> Option<Vec<f32>> {
    if session.settings.learned_keepers == Some(false) || session.quality_labels.is_empty() {
        return None;
    }
    let readable: Vec<u32> = (0..rows.len() as u32)
        .filter(|&r| rows[r as usize].status == "ok")
        .collect();
    let point: HashMap<&str, usize> = readable
        .iter()
        .enumerate()
        .map(|(p, &r)| (rows[r as usize].path.as_str(), p))
        .collect();
    let labels: Vec<(usize, bool)> = session
        .quality_labels
        .iter()
        .filter_map(|(path, label)| {
            point
                .get(path.as_str())
                .map(|&p| (p, *label == crate::store::session::QualityLabel::Bad))
        })
        .collect();
    if !(labels.iter().any(|l| l.1) && labels.iter().any(|l| !l.1)) {
        return None;
    }
    let features = super::ensemble_features(rows, &readable);
    let (scores, _) = super::fit_ensemble(&features, &labels);
    let mut per_row = vec![0.5_f32; rows.len()];
    for (&row, score) in readable.iter().zip(scores) {
        per_row[row as usize] = score;
    }
    Some(per_row)
}

/// The automatic decisions of `rows` under what `session` says about groups, or `None`
/// when it says nothing (the report's own decisions stand). Groups are rebuilt from the
/// verified pairs at the session's pixel-difference line (pairs a person said are not
/// duplicates never link), keepers chosen by the session's policy (with the learned score
/// when labels choose keepers), a hand-chosen keeper pinned in its group. Outlier drops of
/// the run stay.
#[must_use]
pub fn automatic(
    rows: &[ReportRow],
    evidence: Evidence<'_>,
    session: &Session,
) -> Option<Vec<ReportRow>> {
    if !session.tunes_groups() {
        return None;
    }
    let settings = session.settings;
    let not_duplicates = not_duplicate_rows(rows, session);
    let apart = |l: &DupLink| !not_duplicates.contains(&(l.a.min(l.b), l.a.max(l.b)));
    let line = settings
        .near_threshold
        .unwrap_or(evidence.near.max_difference);
    let links: Vec<DupLink> = evidence
        .near
        .links(line)
        .into_iter()
        .filter(apart)
        .collect();
    // The regrouping's own rank (see `semantic::regroup`).
    let rank = crate::analysis::keep::quality_rank(&super::rekeep::facts(rows, None));
    let mut links = evidence.near.settled(links, line, &rank);
    let mut rejected = evidence.near.rejected(line);
    rejected.extend(not_duplicates.iter().copied());
    match evidence.semantic {
        Some(pairs) => {
            let threshold = settings.semantic_threshold.unwrap_or(pairs.threshold);
            links.extend(
                super::semantic::imageless_links(rows, pairs, threshold)
                    .into_iter()
                    .filter(apart),
            );
        }
        None => links.extend(report_semantic_links(rows).into_iter().filter(apart)),
    }
    let index = row_index(rows);
    let mut pinned = vec![false; rows.len()];
    for (path, decision) in &session.decisions {
        if decision.keeper
            && decision.keep
            && let Some(&row) = index.get(path.as_str())
        {
            pinned[row as usize] = true;
        }
    }
    let policy = settings.keeper_policy.unwrap_or(KeeperPolicy::Quality);
    let learned = learned_scores(rows, session);
    Some(super::semantic::regroup(
        rows,
        &links,
        &rejected,
        policy,
        learned.as_deref(),
        &pinned,
    ))
}

/// The semantic links a report records (each semantic member to its keeper): the run's
/// semantic groups when its pairs are not at hand.
fn report_semantic_links(rows: &[ReportRow]) -> Vec<DupLink> {
    let index = row_index(rows);
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.dup_kind.as_deref() == Some(DupKind::Semantic.as_str()))
        .filter_map(|(row, r)| {
            let keeper = *index.get(r.keeper.as_deref()?)?;
            (keeper != row as u32).then_some(DupLink {
                a: row as u32,
                b: keeper,
                kind: DupKind::Semantic,
            })
        })
        .collect()
}

/// The effective decisions: [`automatic`] (or the rows as they are), then the session's
/// explicit marks, then (`drop_outliers_percent`) the most unusual images not kept by hand.
/// What the app's keep-list and `curate export` write. Returns the rows and how many
/// outliers the last step dropped.
#[must_use]
pub fn effective(
    rows: Vec<ReportRow>,
    evidence: Evidence<'_>,
    session: &Session,
    drop_outliers_percent: Option<f32>,
) -> (Vec<ReportRow>, usize) {
    let mut rows = automatic(&rows, evidence, session).unwrap_or(rows);
    let outliers = crate::store::report::apply_decisions(&mut rows, session, drop_outliers_percent);
    (rows, outliers)
}

/// The verified near pairs of the last run of `root`, from `DIR/.curate/near-pairs.csv`,
/// as pairs of `rows` (pairs naming files that are not rows are skipped).
///
/// # Errors
/// When the file is missing or unreadable.
pub fn load_near(root: &Path, rows: &[ReportRow]) -> std::io::Result<NearPairs> {
    let (listed, max_difference) = crate::store::verdicts::read_pairs_csv(root)?;
    let index = row_index(rows);
    let mut pairs: Vec<Verified> = listed
        .into_iter()
        .filter_map(|(a, b, comparison)| {
            let (a, b) = (*index.get(a.as_str())?, *index.get(b.as_str())?);
            Some(Verified {
                a: a.min(b),
                b: a.max(b),
                comparison,
            })
        })
        .collect();
    pairs.sort_by_key(|p| (p.a, p.b));
    Ok(NearPairs {
        pairs,
        max_difference,
    })
}
