//! The keeper choice and keep/drop decisions re-run over finished report rows: for another
//! keeper policy, a learned quality score, or regrouped semantic duplicates. The same rule
//! as the run ([`crate::analysis::keep::decide`]); outlier drops of the run stay.

use crate::analysis::dedup::{DupKind, Groups};
use crate::analysis::keep::{self, Decisions, DropReason, KeeperFacts, KeeperPolicy};
use crate::store::report::ReportRow;

/// The keeper facts of report rows; `learned` (per row, higher = worse) feeds the
/// [`KeeperPolicy::Quality`] choice when a model was learned from labels.
#[must_use]
pub fn facts(rows: &[ReportRow], learned: Option<&[f32]>) -> Vec<Option<KeeperFacts>> {
    rows.iter()
        .enumerate()
        .map(|(row, r)| {
            (r.status == "ok").then(|| {
                let flags = r.quality_flags.as_deref().unwrap_or("");
                KeeperFacts {
                    pixels: u64::from(r.width.unwrap_or(0)) * u64::from(r.height.unwrap_or(0)),
                    blurry: r.quality.map_or(0.0, |q| q[2]),
                    badly_exposed: flags
                        .split(',')
                        .any(|f| matches!(f, "dark" | "light" | "low_information")),
                    bytes: r.size_bytes,
                    learned: learned.map(|l| l[row]),
                    centrality: r.centroid_similarity,
                    copies: r.near_copies.unwrap_or(0),
                    noise: r.noise_sigma.unwrap_or(0.0),
                }
            })
        })
        .collect()
}

/// The content hashes of report rows.
#[must_use]
pub fn content(rows: &[ReportRow]) -> Vec<Option<[u8; 32]>> {
    rows.iter()
        .map(|r| {
            r.content_hash
                .as_deref()
                .and_then(|h| blake3::Hash::from_hex(h).ok())
                .map(|h| *h.as_bytes())
        })
        .collect()
}

/// The duplicate groups the rows record.
#[must_use]
pub fn groups(rows: &[ReportRow]) -> Groups {
    let count = rows
        .iter()
        .map(|r| r.dup_group + 1)
        .max()
        .unwrap_or(0)
        .max(0) as usize;
    let mut members = vec![Vec::new(); count];
    for (row, r) in rows.iter().enumerate() {
        if r.dup_group >= 0 {
            members[r.dup_group as usize].push(row as u32);
        }
    }
    Groups {
        exact_group: rows.iter().map(|r| r.exact_group).collect(),
        dup_group: rows.iter().map(|r| r.dup_group).collect(),
        dup_kind: rows
            .iter()
            .map(|r| match r.dup_kind.as_deref() {
                Some("exact") => Some(DupKind::Exact),
                Some("near") => Some(DupKind::Near),
                Some("semantic") => Some(DupKind::Semantic),
                _ => None,
            })
            .collect(),
        members,
    }
}

/// The words behind a duplicate drop, for a person.
#[must_use]
pub fn duplicate_detail(reason: DropReason, keeper: &str) -> String {
    match reason {
        DropReason::ExactDuplicate => format!("exact copy of {keeper} (the same file content)"),
        DropReason::NearDuplicate => format!(
            "near copy of {keeper}: the same picture, re-encoded, resized, cropped or re-lit (checked on the pixels)"
        ),
        DropReason::SemanticDuplicate => {
            format!("semantic duplicate of {keeper} (model embeddings nearly the same)")
        }
        other => other.as_str().replace('_', " "),
    }
}

/// The rows with `groups` written in and keepers and keep/drop decided again under `policy`
/// (`learned`: a learned score per row for the quality policy). A row the run dropped as an
/// outlier stays dropped unless it is now a duplicate. A `pinned` row (a keeper chosen by
/// hand) is its group's keeper whatever the policy says.
#[must_use]
pub fn redecide(
    rows: &[ReportRow],
    groups: &Groups,
    policy: KeeperPolicy,
    learned: Option<&[f32]>,
    pinned: Option<&[bool]>,
) -> (Vec<ReportRow>, Decisions) {
    let facts = facts(rows, learned);
    let content = content(rows);
    let ood: Vec<f32> = rows.iter().map(|r| r.ood_score.unwrap_or(0.0)).collect();
    let decisions = keep::decide_pinned(groups, &facts, &content, &ood, None, policy, pinned);
    let out: Vec<ReportRow> = rows
        .iter()
        .enumerate()
        .map(|(row, r)| {
            let mut out = r.clone();
            out.exact_group = groups.exact_group[row];
            out.dup_group = groups.dup_group[row];
            out.dup_kind = groups.dup_kind[row].map(|k| k.as_str().to_owned());
            out.keeper = decisions.keeper[row].map(|k| rows[k as usize].path.clone());
            if r.drop_reason.as_deref() == Some(DropReason::Outlier.as_str()) && decisions.keep[row]
            {
                return out;
            }
            out.keep = decisions.keep[row];
            out.drop_reason = decisions.reason[row].map(|d| d.as_str().to_owned());
            out.drop_detail = decisions.reason[row].map(|d| {
                let keeper = decisions.keeper[row].map_or(row, |k| k as usize);
                duplicate_detail(d, &rows[keeper].path)
            });
            out
        })
        .collect();
    let decisions = Decisions {
        keep: out.iter().map(|r| r.keep).collect(),
        reason: out
            .iter()
            .map(|r| r.drop_reason.as_deref().and_then(DropReason::parse))
            .collect(),
        keeper: decisions.keeper,
    };
    (out, decisions)
}

/// The learned score per row when the rows' ensemble was fitted on labels (`weights`
/// non-empty), for [`redecide`].
#[must_use]
pub fn learned_scores(rows: &[ReportRow], learned: bool) -> Option<Vec<f32>> {
    learned.then(|| {
        rows.iter()
            .map(|r| r.ensemble_score.unwrap_or(0.5))
            .collect()
    })
}
