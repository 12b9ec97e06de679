//! Pixel-verification verdicts cached in `DIR/.curate/verdicts.bin`, keyed by the two
//! images' content hashes, so a warm run verifies no pair twice (and an unchanged folder
//! verifies nothing).
//!
//! Layout (little-endian): magic `CVRD`, version u32, the verifier's version string (u32
//! length + bytes), count u64, then per pair: the 16-byte prefixes of the two content hashes
//! (lower first), block difference f32, mean difference f32, fine difference f32; sealed
//! with a checksum (see [`super::sealed`]).

use std::collections::HashMap;
use std::path::Path;

use super::{atomic, sealed};
use crate::analysis::verify::{self, Comparison};

const MAGIC: &[u8; 4] = b"CVRD";
const VERSION: u32 = 3;
const FILE: &str = "verdicts.bin";
const ENTRY: usize = 16 + 16 + 4 + 4 + 4;

/// A pair of images by content: the 16-byte prefixes of their hashes, lower first.
pub type PairKey = ([u8; 16], [u8; 16]);

/// The key of the pair of images with these content hashes.
#[must_use]
pub fn key(a: &[u8; 32], b: &[u8; 32]) -> PairKey {
    let prefix = |h: &[u8; 32]| -> [u8; 16] { h[..16].try_into().expect("16 of 32 bytes") };
    let (a, b) = (prefix(a), prefix(b));
    (a.min(b), a.max(b))
}

/// The cached verdicts of `root` (empty when there are none, or when they were made by
/// another version of the verifier).
#[must_use]
pub fn load(root: &Path) -> HashMap<PairKey, Comparison> {
    sealed::read(&super::curate_dir(root).join(FILE))
        .and_then(|bytes| parse(&bytes))
        .unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<HashMap<PairKey, Comparison>> {
    if bytes.len() < 12 || &bytes[..4] != MAGIC || bytes[4..8] != VERSION.to_le_bytes() {
        return None;
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().ok()?) as usize;
    let tag = bytes.get(12..12 + len)?;
    if tag != verify::VERSION.as_bytes() {
        return None;
    }
    let at = 12 + len;
    let count =
        usize::try_from(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)).ok()?;
    let body = bytes.get(at + 8..)?;
    if body.len() != count.checked_mul(ENTRY)? {
        return None;
    }
    let f = |b: &[u8]| f32::from_le_bytes(b.try_into().expect("4 bytes"));
    Some(
        body.chunks_exact(ENTRY)
            .map(|e| {
                (
                    (
                        e[..16].try_into().expect("16 bytes"),
                        e[16..32].try_into().expect("16 bytes"),
                    ),
                    Comparison {
                        difference: f(&e[32..36]),
                        mean: f(&e[36..40]),
                        fine: f(&e[40..44]),
                    },
                )
            })
            .collect(),
    )
}

/// Replaces the cached verdicts with `verdicts`, atomically.
pub fn save(
    root: &Path,
    verdicts: &HashMap<PairKey, Comparison, impl std::hash::BuildHasher>,
) -> std::io::Result<()> {
    let tag = verify::VERSION.as_bytes();
    let mut bytes = Vec::with_capacity(20 + tag.len() + verdicts.len() * ENTRY);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(tag.len() as u32).to_le_bytes());
    bytes.extend_from_slice(tag);
    bytes.extend_from_slice(&(verdicts.len() as u64).to_le_bytes());
    let mut entries: Vec<_> = verdicts.iter().collect();
    entries.sort_by_key(|(k, _)| **k);
    for ((a, b), c) in entries {
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        bytes.extend_from_slice(&c.difference.to_le_bytes());
        bytes.extend_from_slice(&c.mean.to_le_bytes());
        bytes.extend_from_slice(&c.fine.to_le_bytes());
    }
    sealed::write(&super::curate_dir(root).join(FILE), &bytes)
}

/// Writes the compared pairs of a run to `DIR/.curate/near-pairs.csv` (atomically), closest
/// first: `path_a,path_b,difference,mean,fine,copy,max_difference` (the last: the run's
/// line, the same on every row; numbers at full precision, empty when the pair was turned
/// away before a full comparison). A person (or a script) sees there where copies end and
/// look-alikes begin on this folder, and can move `--max-difference`; `curate export`
/// regroups from it when the app moved the line.
pub fn write_pairs_csv(
    root: &Path,
    pairs: &[(&str, &str, Comparison, bool)],
    max_difference: f32,
) -> std::io::Result<std::path::PathBuf> {
    let path = super::curate_dir(root).join("near-pairs.csv");
    let mut sorted: Vec<_> = pairs.to_vec();
    sorted.sort_by(|x, y| x.2.difference.total_cmp(&y.2.difference));
    let line = max_difference.to_string();
    atomic::write_with(&path, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record([
            "path_a",
            "path_b",
            "difference",
            "mean",
            "fine",
            "copy",
            "max_difference",
        ])
        .map_err(std::io::Error::other)?;
        for (a, b, c, copy) in sorted {
            let number = |v: f32| {
                if v.is_finite() {
                    v.to_string()
                } else {
                    String::new()
                }
            };
            out.write_record([
                a,
                b,
                &number(c.difference),
                &number(c.mean),
                &number(c.fine),
                if copy { "true" } else { "false" },
                &line,
            ])
            .map_err(std::io::Error::other)?;
        }
        out.flush()
    })?;
    Ok(path)
}

/// One compared pair of `near-pairs.csv`: the two paths and their comparison.
pub type ListedPair = (String, String, Comparison);

/// Reads `DIR/.curate/near-pairs.csv` back: the pairs by path with their comparisons, and
/// the run's line.
///
/// # Errors
/// When the file is missing, unreadable or not in the format [`write_pairs_csv`] writes.
pub fn read_pairs_csv(root: &Path) -> std::io::Result<(Vec<ListedPair>, f32)> {
    let path = super::curate_dir(root).join("near-pairs.csv");
    let bad = |what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut reader = csv::Reader::from_path(&path).map_err(|err| match err.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => bad(format!("{other:?}")),
    })?;
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            bad(format!(
                "no column {name} (written by an older curate: run `curate analyze` again)"
            ))
        })
    };
    let (a, b, difference, mean, fine, line) = (
        column("path_a")?,
        column("path_b")?,
        column("difference")?,
        column("mean")?,
        column("fine")?,
        column("max_difference")?,
    );
    let number = |record: &csv::StringRecord, at: usize| -> std::io::Result<f32> {
        match record.get(at).unwrap_or("") {
            "" => Ok(f32::INFINITY),
            text => text
                .parse()
                .map_err(|_| bad(format!("not a number: {text:?}"))),
        }
    };
    let mut pairs = Vec::new();
    let mut max_difference = crate::analysis::verify::DEFAULT_MAX_DIFFERENCE;
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        max_difference = number(&record, line)?;
        pairs.push((
            record.get(a).unwrap_or("").to_owned(),
            record.get(b).unwrap_or("").to_owned(),
            Comparison {
                difference: number(&record, difference)?,
                mean: number(&record, mean)?,
                fine: number(&record, fine)?,
            },
        ));
    }
    Ok((pairs, max_difference))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn verdicts_round_trip_and_damage_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut verdicts = HashMap::new();
        verdicts.insert(
            key(&[1; 32], &[2; 32]),
            Comparison {
                difference: 3.5,
                mean: 1.25,
                fine: 7.0,
            },
        );
        save(dir.path(), &verdicts).expect("saved");
        assert_eq!(load(dir.path()), verdicts);
        let path = crate::store::curate_dir(dir.path()).join(FILE);
        let mut bytes = fs::read(&path).expect("read");
        bytes.pop();
        fs::write(&path, bytes).expect("write");
        assert!(load(dir.path()).is_empty());
    }
}
