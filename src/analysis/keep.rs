//! The keep/drop decision: one keeper per duplicate group, chosen by quality, and optionally
//! the most unusual images.

use super::dedup::{DupKind, Groups};

/// Why a file is not in the keep-list.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// A byte-identical copy of its group's keeper.
    ExactDuplicate,
    /// A perceptual near copy of its group's keeper.
    NearDuplicate,
    /// Among the most unusual images (`--drop-outliers`).
    Outlier,
    /// A person dropped it by hand.
    Manual,
    /// Dropped in the app for a quality score over a threshold.
    Quality,
    /// Nearly the same model embedding as its group's keeper (`--model`).
    SemanticDuplicate,
}

impl DropReason {
    /// The report spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExactDuplicate => "exact_duplicate",
            Self::NearDuplicate => "near_duplicate",
            Self::Outlier => "outlier",
            Self::Manual => "manual",
            Self::Quality => "quality",
            Self::SemanticDuplicate => "semantic_duplicate",
        }
    }

    /// Parses the report spelling.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::ExactDuplicate,
            Self::NearDuplicate,
            Self::Outlier,
            Self::Manual,
            Self::Quality,
            Self::SemanticDuplicate,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// How the keeper of a duplicate group is chosen.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KeeperPolicy {
    /// The best image (EcoDatum's quality-guided deduplication): the lowest learned
    /// ensemble score when quality labels taught one, else more pixels, well exposed,
    /// sharper, larger file.
    #[default]
    Quality,
    /// The member closest to its k-means cluster centre (the most typical one).
    Central,
    /// The member farthest from its cluster centre (SemDeDup's "hard" choice: keeps the
    /// least prototypical example).
    Farthest,
}

impl KeeperPolicy {
    /// All policies, in menu order.
    pub const ALL: [Self; 3] = [Self::Quality, Self::Central, Self::Farthest];

    /// A short human label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Quality => "best quality",
            Self::Central => "closest to centre",
            Self::Farthest => "farthest from centre",
        }
    }
}

/// What the keeper choice looks at for one readable image.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KeeperFacts {
    /// Width × height.
    pub pixels: u64,
    /// Blurry score (0..1, higher = blurrier).
    pub blurry: f32,
    /// Flagged dark, light or low-information.
    pub badly_exposed: bool,
    /// File size: at equal resolution and sharpness, less compression wins.
    pub bytes: u64,
    /// The learned ensemble score (higher = worse), when quality labels taught one.
    pub learned: Option<f32>,
    /// Cosine similarity to the image's k-means cluster centre, when known.
    pub centrality: Option<f32>,
    /// How many other images are verified near copies of this one (see [`near_copies`]).
    pub copies: u32,
    /// The luma's noise σ (see [`crate::analysis::quality::Measures::noise`]).
    pub noise: f32,
}

/// Noise estimates within this factor of each other fall in one step of keeper order
/// (see [`noise_step`]): a ±8 % brightness change scales the estimate by as much, added
/// noise of σ 3 on a clean picture by far more.
const NOISE_STEP: f32 = 1.3;

/// The keeper-order step of a noise estimate: ⌊log(1 + σ) / log [`NOISE_STEP`]⌋.
fn noise_step(noise: f32) -> i64 {
    ((1.0 + noise.max(0.0)).ln() / NOISE_STEP.ln()).floor() as i64
}

/// Per row, how many other rows its near-duplicate links reach (each partner once): a
/// family's original is linked to all its copies, a copy often to the original alone.
#[must_use]
pub fn near_copies(rows: usize, links: &[crate::analysis::dedup::DupLink]) -> Vec<u32> {
    let mut pairs: Vec<(u32, u32)> = links
        .iter()
        .filter(|l| l.kind == DupKind::Near && l.a != l.b)
        .map(|l| (l.a.min(l.b), l.a.max(l.b)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut count = vec![0_u32; rows];
    for (a, b) in pairs {
        count[a as usize] += 1;
        count[b as usize] += 1;
    }
    count
}

impl KeeperFacts {
    /// Orders candidates under [`KeeperPolicy::Quality`] without a learned score: more
    /// pixels, then well exposed, then more near copies (the original a family was copied
    /// from, rather than a re-encode that compression made look sharper), then less noise
    /// (by steps of ×1.3 in 1 + σ: noise must not read as sharpness), then sharper,
    /// then larger file.
    #[must_use]
    pub fn better_than(&self, other: &Self) -> bool {
        let key = |f: &Self| (f.pixels, !f.badly_exposed, f.copies, -noise_step(f.noise));
        if key(self) != key(other) {
            return key(self) > key(other);
        }
        if (self.blurry - other.blurry).abs() > 0.02 {
            return self.blurry < other.blurry;
        }
        self.bytes > other.bytes
    }

    /// Orders candidates under `policy`; ties (or facts the policy needs but lacks) fall
    /// back to [`Self::better_than`].
    #[must_use]
    pub fn better_under(&self, other: &Self, policy: KeeperPolicy) -> bool {
        const TIE: f32 = 1e-6;
        let decided = match policy {
            KeeperPolicy::Quality => self
                .learned
                .zip(other.learned)
                .filter(|(a, b)| (a - b).abs() > TIE)
                .map(|(a, b)| a < b),
            KeeperPolicy::Central => self
                .centrality
                .zip(other.centrality)
                .filter(|(a, b)| (a - b).abs() > TIE)
                .map(|(a, b)| a > b),
            KeeperPolicy::Farthest => self
                .centrality
                .zip(other.centrality)
                .filter(|(a, b)| (a - b).abs() > TIE)
                .map(|(a, b)| a < b),
        };
        decided.unwrap_or_else(|| self.better_than(other))
    }
}

/// Each row's place in keeper order under [`KeeperPolicy::Quality`] without a learned
/// score (0 = the first choice): more pixels, then well exposed, then more near copies,
/// then less noise (by steps), then sharper (in steps of 0.02, as [`KeeperFacts::better_than`]), then larger file. Rows without facts come
/// last. Duplicate groups are stars around the first of their members in this order.
#[must_use]
pub fn quality_rank(facts: &[Option<KeeperFacts>]) -> Vec<u32> {
    let key = |row: usize| {
        facts[row].map(|f| {
            (
                std::cmp::Reverse(f.pixels),
                f.badly_exposed,
                std::cmp::Reverse(f.copies),
                noise_step(f.noise),
                (f.blurry / 0.02).floor() as i64,
                std::cmp::Reverse(f.bytes),
            )
        })
    };
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.sort_by_key(|&row| (key(row).is_none(), key(row), row));
    let mut rank = vec![0_u32; facts.len()];
    for (place, row) in order.into_iter().enumerate() {
        rank[row] = place as u32;
    }
    rank
}

/// The decision for every row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decisions {
    /// Whether the row goes in the keep-list.
    pub keep: Vec<bool>,
    /// Why a readable row was dropped.
    pub reason: Vec<Option<DropReason>>,
    /// The keeper row of the row's duplicate group.
    pub keeper: Vec<Option<u32>>,
}

/// Chooses keepers (by `policy`) and drops. `facts[row]` is `None` for unreadable rows
/// (never kept).
/// `content` tells exact copies of the keeper from near ones. With `drop_outliers_percent`,
/// that share of the readable rows with the highest `ood` scores is dropped as well.
#[must_use]
pub fn decide(
    groups: &Groups,
    facts: &[Option<KeeperFacts>],
    content: &[Option<[u8; 32]>],
    ood: &[f32],
    drop_outliers_percent: Option<f32>,
    policy: KeeperPolicy,
) -> Decisions {
    decide_pinned(
        groups,
        facts,
        content,
        ood,
        drop_outliers_percent,
        policy,
        None,
    )
}

/// [`decide`], with the `pinned` rows (keepers chosen by hand) their group's keeper
/// whatever `policy` says (when a group holds several, the one `policy` prefers).
#[must_use]
pub fn decide_pinned(
    groups: &Groups,
    facts: &[Option<KeeperFacts>],
    content: &[Option<[u8; 32]>],
    ood: &[f32],
    drop_outliers_percent: Option<f32>,
    policy: KeeperPolicy,
    pinned: Option<&[bool]>,
) -> Decisions {
    let n = facts.len();
    let is_pinned =
        |row: u32| pinned.is_some_and(|p| p.get(row as usize).copied().unwrap_or(false));
    let mut decisions = Decisions {
        keep: facts.iter().map(Option::is_some).collect(),
        reason: vec![None; n],
        keeper: vec![None; n],
    };
    for members in &groups.members {
        let any_pinned = members
            .iter()
            .any(|&m| is_pinned(m) && facts[m as usize].is_some());
        let Some(keeper) = members
            .iter()
            .copied()
            .filter(|&m| !any_pinned || is_pinned(m))
            .reduce(
                |best, row| match (&facts[row as usize], &facts[best as usize]) {
                    (Some(candidate), Some(current)) if candidate.better_under(current, policy) => {
                        row
                    }
                    _ => best,
                },
            )
        else {
            continue;
        };
        for &row in members {
            decisions.keeper[row as usize] = Some(keeper);
            if row != keeper {
                decisions.keep[row as usize] = false;
                let exact = content[row as usize].is_some()
                    && content[row as usize] == content[keeper as usize];
                decisions.reason[row as usize] = Some(if exact {
                    DropReason::ExactDuplicate
                } else if groups.dup_kind[row as usize] == Some(DupKind::Semantic) {
                    DropReason::SemanticDuplicate
                } else {
                    DropReason::NearDuplicate
                });
            }
        }
    }
    if let Some(percent) = drop_outliers_percent {
        let readable: Vec<usize> = (0..n).filter(|&row| facts[row].is_some()).collect();
        for row in most_unusual(&readable, |row| ood[row], percent) {
            if decisions.keep[row] {
                decisions.keep[row] = false;
                decisions.reason[row] = Some(DropReason::Outlier);
            }
        }
    }
    decisions
}

/// The `percent` % of `candidates` with the highest `score`, highest first (ties: lower
/// index first). The one rule behind `--drop-outliers`, in `analyze` and in `export`.
#[must_use]
pub fn most_unusual(
    candidates: &[usize],
    score: impl Fn(usize) -> f32,
    percent: f32,
) -> Vec<usize> {
    let count =
        ((f64::from(percent.clamp(0.0, 100.0)) / 100.0) * candidates.len() as f64).round() as usize;
    let mut ranked = candidates.to_vec();
    ranked.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    ranked.truncate(count);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dedup::{DupKind, DupLink, group_with};

    fn near(a: u32, b: u32) -> DupLink {
        DupLink {
            a,
            b,
            kind: DupKind::Near,
        }
    }

    #[test]
    fn noise_does_not_read_as_sharpness() {
        // A clean original and its copy with noise added: the copy looks sharper.
        let original = KeeperFacts {
            pixels: 64 * 64,
            blurry: 0.30,
            noise: 0.8,
            ..KeeperFacts::default()
        };
        let noisy = KeeperFacts {
            blurry: 0.20,
            noise: 3.4,
            ..original
        };
        assert!(original.better_than(&noisy) && !noisy.better_than(&original));
        let ranks = quality_rank(&[Some(noisy), Some(original)]);
        assert_eq!(ranks, [1, 0]);
        // A ±8 % brightness change scales the estimate by as much: sharpness decides.
        let darker = KeeperFacts {
            noise: 0.8 * 0.92,
            blurry: 0.25,
            ..original
        };
        assert!(darker.better_than(&original));
    }

    #[test]
    fn keeps_the_largest_sharpest_copy() {
        let content = [
            Some([1; 32]),
            Some([1; 32]),
            Some([2; 32]),
            Some([3; 32]),
            None,
        ];
        let groups = group_with(&content, &[near(1, 2)], &[], &[1, 2, 0, 3, 4]);
        let fact = |pixels, blurry| {
            Some(KeeperFacts {
                pixels,
                blurry,
                badly_exposed: false,
                bytes: 10,
                ..KeeperFacts::default()
            })
        };
        let facts = [
            fact(100, 0.1),
            fact(100, 0.1),
            fact(400, 0.5),
            fact(100, 0.1),
            None,
        ];
        let decisions = decide(
            &groups,
            &facts,
            &content,
            &[0.0, 0.0, 0.0, 0.9, 0.0],
            Some(25.0),
            KeeperPolicy::Quality,
        );
        assert_eq!(decisions.keep, [false, false, true, false, false]);
        assert_eq!(
            decisions.reason,
            [
                Some(DropReason::NearDuplicate),
                Some(DropReason::NearDuplicate),
                None,
                Some(DropReason::Outlier),
                None
            ]
        );
        assert_eq!(decisions.keeper[0], Some(2));
    }

    #[test]
    fn policies_pick_the_best_the_most_central_or_the_farthest() {
        // One group of three near copies: the largest image is the least central one, and a
        // learned score prefers the middle one.
        let content = [Some([1; 32]), Some([2; 32]), Some([3; 32])];
        let groups = group_with(&content, &[near(0, 1), near(0, 2)], &[], &[0, 1, 2]);
        let fact = |pixels, centrality, learned| {
            Some(KeeperFacts {
                pixels,
                centrality: Some(centrality),
                learned,
                ..KeeperFacts::default()
            })
        };
        let keeper = |facts: &[Option<KeeperFacts>], policy| {
            decide(&groups, facts, &content, &[0.0; 3], None, policy).keeper[0]
        };
        let plain = [
            fact(900, 0.7, None),
            fact(400, 0.9, None),
            fact(100, 0.8, None),
        ];
        assert_eq!(keeper(&plain, KeeperPolicy::Quality), Some(0));
        assert_eq!(keeper(&plain, KeeperPolicy::Central), Some(1));
        assert_eq!(keeper(&plain, KeeperPolicy::Farthest), Some(0));
        let learned = [
            fact(900, 0.7, Some(0.8)),
            fact(400, 0.9, Some(0.6)),
            fact(100, 0.8, Some(0.1)),
        ];
        assert_eq!(keeper(&learned, KeeperPolicy::Quality), Some(2));
        // Without centrality the centre policies fall back to quality.
        let bare: Vec<_> = plain
            .iter()
            .map(|f| {
                f.map(|f| KeeperFacts {
                    centrality: None,
                    ..f
                })
            })
            .collect();
        assert_eq!(keeper(&bare, KeeperPolicy::Farthest), Some(0));
        assert_eq!(keeper(&bare, KeeperPolicy::Central), Some(0));
    }
}
