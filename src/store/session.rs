//! Decisions a person made by hand, saved in `DIR/.curate/session.json` and applied over the
//! analysis' own keep/drop by `curate export` (and by the app).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic;

/// A person's decision about one file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// Keep (true) or drop (false).
    pub keep: bool,
    /// Why, in the person's or the tool's words (e.g. "lasso", "outlier score ≥ 0.42").
    pub reason: String,
    /// The report's `drop_reason` for a drop (`outlier` for a threshold drop, ...);
    /// `None` means `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::analysis::keep::DropReason>,
    /// Chosen by hand as its duplicate group's keeper: no automatic re-choice (another
    /// policy, a learned score, another threshold) moves the group's keeper away from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keeper: bool,
}

/// How the automatic decisions were tuned in the app; `None` everywhere means as the
/// analysis ran. `curate export` and the app apply them the same way
/// (`pipeline::decide::effective`).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// The pixel-difference line of near duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_threshold: Option<f32>,
    /// The cosine line of semantic duplicates (rows without an image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_threshold: Option<f32>,
    /// How keepers are chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper_policy: Option<crate::analysis::keep::KeeperPolicy>,
    /// Whether the score learned from the quality labels chooses keepers (`None`: it does
    /// whenever labels of both kinds exist, as `curate analyze` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_keepers: Option<bool>,
}

impl Settings {
    /// Whether nothing was tuned.
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A person's judgement of an image's quality, for the learned ensemble score (`G` / `B`
/// in the app, `--quality-labels` on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityLabel {
    /// A good example.
    Good,
    /// A bad example.
    Bad,
}

/// The saved decisions of one dataset.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// Format version.
    pub version: u32,
    /// Decisions by relative path.
    pub decisions: BTreeMap<String, Decision>,
    /// Quality labels by relative path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quality_labels: BTreeMap<String, QualityLabel>,
    /// Pairs of files a person said are not duplicates of each other (lower path first):
    /// never grouped together again, by the app, `curate export` or the next analysis.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub not_duplicates: std::collections::BTreeSet<(String, String)>,
    /// How the automatic decisions were tuned.
    #[serde(default, skip_serializing_if = "Settings::is_default")]
    pub settings: Settings,
    /// Classes a person gave images in the Classes panel (`--class-from`), by relative
    /// path: what `curate export --relabels` writes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub relabels: BTreeMap<String, String>,
}

/// `DIR/.curate/session.json`.
#[must_use]
pub fn path(root: &Path) -> PathBuf {
    super::curate_dir(root).join("session.json")
}

impl Session {
    /// What it holds, in words ("3 marks, 20 labels, 1 \"not a duplicate\" pair, tuned
    /// groups"); "nothing" when empty.
    #[must_use]
    pub fn describe(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = Vec::new();
        if !self.decisions.is_empty() {
            parts.push(plural(self.decisions.len(), "mark", "marks"));
        }
        if !self.quality_labels.is_empty() {
            parts.push(plural(self.quality_labels.len(), "label", "labels"));
        }
        if !self.not_duplicates.is_empty() {
            parts.push(plural(
                self.not_duplicates.len(),
                "\"not a duplicate\" pair",
                "\"not a duplicate\" pairs",
            ));
        }
        if !self.settings.is_default() {
            parts.push("tuned groups".to_owned());
        }
        if !self.relabels.is_empty() {
            parts.push(plural(self.relabels.len(), "relabel", "relabels"));
        }
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Whether anything here changes the automatic decisions (groups or keepers) rather
    /// than only marking files: tuned settings, quality labels, "not a duplicate" pairs,
    /// keepers chosen by hand.
    #[must_use]
    pub fn tunes_groups(&self) -> bool {
        !self.settings.is_default()
            || !self.quality_labels.is_empty()
            || !self.not_duplicates.is_empty()
            || self.decisions.values().any(|d| d.keeper)
    }

    /// Loads the session of `root`; no file means no decisions.
    pub fn load(root: &Path) -> io::Result<Self> {
        match std::fs::read(path(root)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {err}", path(root).display()),
                )
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self {
                version: 1,
                ..Self::default()
            }),
            Err(err) => Err(err),
        }
    }

    /// Saves the session, atomically.
    pub fn save(&self, root: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        atomic::write_bytes(&path(root), &bytes)
    }
}
