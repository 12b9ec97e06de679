//! How a report of the demo folder scores against the demo's truth
//! ([`crate::dataset::demo::Truth`]): what `curate demo` prints and the demo tests check.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::analysis::auroc;
use crate::dataset::demo::{Family, Truth};
use crate::store::report::ReportRow;

/// How a report scores against the truth.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Exact copies grouped with their original / all exact copies.
    pub exact_grouped: (usize, usize),
    /// True duplicate pairs (within families).
    pub true_pairs: usize,
    /// Predicted pairs (within dup groups).
    pub predicted_pairs: usize,
    /// Pair recall.
    pub pair_recall: f64,
    /// Pair precision.
    pub pair_precision: f64,
    /// Near-copy pairs (original ↔ near copy) found / planted.
    pub near_found: (usize, usize),
    /// Groups with exactly one keeper / all groups.
    pub groups_with_one_keeper: (usize, usize),
    /// Look-alike pairs put in one group / all look-alike pairs.
    pub lookalikes_grouped: (usize, usize),
    /// Images with no planted copy dropped as a duplicate / all such images.
    pub unique_dropped: (usize, usize),
    /// AUROC of `ood_score` for planted outliers against all other readable images.
    pub outlier_auroc: f64,
    /// Bad files reported with the expected status and not kept / all bad files.
    pub bad_handled: (usize, usize),
    /// Bad files that were not reported as expected: (path, expected, got).
    pub bad_mismatches: Vec<(String, String, String)>,
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "against the planted truth:")?;
        writeln!(
            f,
            "  exact copies grouped   {}/{}",
            self.exact_grouped.0, self.exact_grouped.1
        )?;
        writeln!(
            f,
            "  near copies found      {}/{}",
            self.near_found.0, self.near_found.1
        )?;
        writeln!(
            f,
            "  duplicate pairs        recall {:.3}, precision {:.3} ({} true, {} predicted)",
            self.pair_recall, self.pair_precision, self.true_pairs, self.predicted_pairs
        )?;
        writeln!(
            f,
            "  one keeper per group   {}/{}",
            self.groups_with_one_keeper.0, self.groups_with_one_keeper.1
        )?;
        writeln!(
            f,
            "  look-alikes grouped    {}/{} pairs (should be 0)",
            self.lookalikes_grouped.0, self.lookalikes_grouped.1
        )?;
        writeln!(
            f,
            "  unique images dropped  {}/{} (should be 0)",
            self.unique_dropped.0, self.unique_dropped.1
        )?;
        writeln!(f, "  outlier AUROC          {:.3}", self.outlier_auroc)?;
        write!(
            f,
            "  bad files handled      {}/{}",
            self.bad_handled.0, self.bad_handled.1
        )
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// Scores `rows` (a report) against `truth`.
#[must_use]
pub fn evaluate(truth: &Truth, rows: &[ReportRow]) -> Evaluation {
    let by_path: HashMap<&str, &ReportRow> = rows.iter().map(|r| (r.path.as_str(), r)).collect();
    let mut eval = Evaluation::default();
    let mut true_pairs = HashSet::new();
    for family in &truth.families {
        let members = family.members();
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                true_pairs.insert(pair(a, b));
            }
        }
        let original = by_path.get(family.original.as_str());
        for copy in &family.exact {
            eval.exact_grouped.1 += 1;
            let same = match (original, by_path.get(copy.as_str())) {
                (Some(o), Some(c)) => o.exact_group >= 0 && o.exact_group == c.exact_group,
                _ => false,
            };
            eval.exact_grouped.0 += usize::from(same);
        }
        for (copy, _) in &family.near {
            eval.near_found.1 += 1;
            let same = match (original, by_path.get(copy.as_str())) {
                (Some(o), Some(c)) => o.dup_group >= 0 && o.dup_group == c.dup_group,
                _ => false,
            };
            eval.near_found.0 += usize::from(same);
        }
    }
    let mut groups: HashMap<i64, Vec<&ReportRow>> = HashMap::new();
    for row in rows.iter().filter(|r| r.dup_group >= 0) {
        groups.entry(row.dup_group).or_default().push(row);
    }
    let mut predicted = HashSet::new();
    for members in groups.values() {
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                predicted.insert(pair(&a.path, &b.path));
            }
        }
        eval.groups_with_one_keeper.1 += 1;
        eval.groups_with_one_keeper.0 +=
            usize::from(members.iter().filter(|r| r.keep).count() == 1);
    }
    let hits = predicted.intersection(&true_pairs).count();
    eval.true_pairs = true_pairs.len();
    eval.predicted_pairs = predicted.len();
    eval.pair_recall = hits as f64 / true_pairs.len().max(1) as f64;
    eval.pair_precision = hits as f64 / predicted.len().max(1) as f64;

    for set in &truth.lookalikes {
        for (i, a) in set.iter().enumerate() {
            for b in &set[i + 1..] {
                eval.lookalikes_grouped.1 += 1;
                let together = match (by_path.get(a.as_str()), by_path.get(b.as_str())) {
                    (Some(x), Some(y)) => x.dup_group >= 0 && x.dup_group == y.dup_group,
                    _ => false,
                };
                eval.lookalikes_grouped.0 += usize::from(together);
            }
        }
    }
    let in_family: HashSet<&str> = truth.families.iter().flat_map(Family::members).collect();
    for path in truth
        .images
        .iter()
        .filter(|p| !in_family.contains(p.as_str()))
    {
        if let Some(row) = by_path.get(path.as_str()).filter(|r| r.status == "ok") {
            eval.unique_dropped.1 += 1;
            eval.unique_dropped.0 += usize::from(
                row.drop_reason
                    .as_deref()
                    .is_some_and(|r| r.ends_with("_duplicate")),
            );
        }
    }
    let outliers: HashSet<&str> = truth.outliers.iter().map(String::as_str).collect();
    let (mut positive, mut negative) = (Vec::new(), Vec::new());
    for row in rows.iter().filter(|r| r.status == "ok") {
        let score = row.ood_score.unwrap_or(0.0);
        if outliers.contains(row.path.as_str()) {
            positive.push(score);
        } else {
            negative.push(score);
        }
    }
    eval.outlier_auroc = auroc(&positive, &negative);

    for (path, expected) in &truth.bad {
        eval.bad_handled.1 += 1;
        match by_path.get(path.as_str()) {
            Some(row) if row.status == *expected && !row.keep && row.error.is_some() => {
                eval.bad_handled.0 += 1;
            }
            Some(row) => {
                eval.bad_mismatches
                    .push((path.clone(), expected.clone(), row.status.clone()));
            }
            None => {
                eval.bad_mismatches
                    .push((path.clone(), expected.clone(), "missing".to_owned()));
            }
        }
    }
    eval
}
