//! Near duplicates: candidate pairs proposed by the pHash index, the feature k-NN graph and
//! model embeddings, each verified on the two images' thumbnails
//! ([`crate::analysis::verify`]) before it may join a group.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::analysis::dedup::{self, DupKind, DupLink};
use crate::analysis::knn::Neighbours;
use crate::analysis::verify::{self, Comparison, Picture};
use crate::store::cache::{FileRecord, ThumbReader};
use crate::store::verdicts::{self, PairKey};

/// Feature neighbours of each image proposed as candidates.
pub const GRAPH_CANDIDATES: usize = 4;
/// Least cosine similarity of the built-in features for a graph candidate.
pub const GRAPH_FLOOR: f32 = 0.80;
/// Images sharing one pHash value are all paired up to this many; beyond it (a thousand
/// blank frames) the feature graph proposes their pairs.
const SAME_HASH_LIMIT: usize = 24;

/// One verified candidate pair of rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verified {
    /// Lower row.
    pub a: u32,
    /// Higher row.
    pub b: u32,
    /// What the pixels said.
    pub comparison: Comparison,
}

/// Every verified candidate pair of a run (copies and rejected look-alikes), so the
/// grouping can be redone at another threshold and a person can see where the line is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NearPairs {
    /// The pairs, by row.
    pub pairs: Vec<Verified>,
    /// The block-difference threshold of the run.
    pub max_difference: f32,
}

impl NearPairs {
    /// Links of the pairs that are copies under `max_difference`.
    #[must_use]
    pub fn links(&self, max_difference: f32) -> Vec<DupLink> {
        self.pairs
            .iter()
            .filter(|p| p.comparison.is_copy(max_difference))
            .map(|p| DupLink {
                a: p.a,
                b: p.b,
                kind: DupKind::Near,
            })
            .collect()
    }

    /// The pairs compared on their pixels and found not to be copies under
    /// `max_difference` (grouping uses them to keep look-alikes out).
    #[must_use]
    pub fn rejected(&self, max_difference: f32) -> Vec<(u32, u32)> {
        self.pairs
            .iter()
            .filter(|p| {
                p.comparison.difference.is_finite() && !p.comparison.is_copy(max_difference)
            })
            .map(|p| (p.a, p.b))
            .collect()
    }

    /// The separation on this folder: the largest block difference among the copies and
    /// the smallest among the rejected pairs that were compared on their pixels.
    #[must_use]
    pub fn separation(&self) -> (Option<f32>, Option<f32>) {
        let mut farthest_copy: Option<f32> = None;
        let mut closest_other: Option<f32> = None;
        for p in &self.pairs {
            let d = p.comparison.difference;
            if p.comparison.is_copy(self.max_difference) {
                farthest_copy = Some(farthest_copy.map_or(d, |f| f.max(d)));
            } else if d.is_finite() {
                closest_other = Some(closest_other.map_or(d, |c| c.min(d)));
            }
        }
        (farthest_copy, closest_other)
    }
}

/// Candidate row pairs (lower row first, unique), never two rows with the same content
/// hash (those are exact copies already): pHash neighbours within `max_distance` bits,
/// each image's closest feature neighbours (`graph` over the `readable` rows) and `extra`
/// pairs (model embeddings).
#[must_use]
pub fn candidates(
    content: &[Option<[u8; 32]>],
    phashes: &[Option<u64>],
    max_distance: u32,
    graph: Option<(&Neighbours, &[u32])>,
    extra: &[(u32, u32)],
) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut by_value: HashMap<u64, Vec<u32>> = HashMap::new();
    for (row, hash) in phashes.iter().enumerate() {
        if let Some(hash) = hash {
            by_value.entry(*hash).or_default().push(row as u32);
        }
    }
    let mut values: Vec<u64> = by_value.keys().copied().collect();
    values.sort_unstable();
    let members = |v: u64| -> &[u32] {
        let all = &by_value[&v];
        &all[..all.len().min(SAME_HASH_LIMIT)]
    };
    for &value in &values {
        let rows = members(value);
        for (i, &a) in rows.iter().enumerate() {
            for &b in &rows[i + 1..] {
                pairs.push((a, b));
            }
        }
    }
    for (x, y, _) in dedup::distinct_pairs(&values, max_distance) {
        for &a in members(values[x as usize]) {
            for &b in members(values[y as usize]) {
                pairs.push((a, b));
            }
        }
    }
    if let Some((graph, readable)) = graph {
        for p in 0..graph.len() {
            let row = readable[p];
            let (indices, similarities) = (
                &graph.indices[p * graph.k..(p + 1) * graph.k],
                &graph.similarities[p * graph.k..(p + 1) * graph.k],
            );
            for (&q, &s) in indices.iter().zip(similarities).take(GRAPH_CANDIDATES) {
                if q != u32::MAX && s >= GRAPH_FLOOR {
                    pairs.push((row, readable[q as usize]));
                }
            }
        }
    }
    pairs.extend_from_slice(extra);
    for pair in &mut pairs {
        *pair = (pair.0.min(pair.1), pair.0.max(pair.1));
    }
    pairs.retain(|&(a, b)| {
        a != b
            && content[a as usize].is_some()
            && content[b as usize].is_some()
            && content[a as usize] != content[b as usize]
    });
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// What verification compares of one image: its visible picture (transparency over
/// black) and, for an image with transparent pixels, the picture of its colours with the
/// alpha dropped (what `convert("RGB")` and many scripts save).
struct Views {
    visible: Picture,
    alpha_dropped: Option<Picture>,
}

/// Compares two images. An image with transparency is also compared by its colours alone
/// against an opaque one (a JPEG saved from it without its alpha); two images with
/// transparency are compared as seen, so a circle and a square icon stay apart whatever
/// their hidden pixels hold.
fn compare_views(a: &Views, b: &Views) -> Comparison {
    let seen = verify::compare(&a.visible, &b.visible);
    let dropped = match (&a.alpha_dropped, &b.alpha_dropped) {
        (Some(pa), None) => verify::compare(pa, &b.visible),
        (None, Some(pb)) => verify::compare(&a.visible, pb),
        _ => return seen,
    };
    if dropped.difference < seen.difference {
        dropped
    } else {
        seen
    }
}

/// Verifies `pairs` on the rows' thumbnails (read from `pack`): verdicts already in
/// `known` (by content) are reused, new ones are added to it. A thumbnail that cannot be
/// read or decoded rejects its pairs (precision first) without a cached verdict, so a
/// later call can still verify them.
pub fn verify(
    root: &Path,
    records: &[FileRecord],
    pack: &Path,
    pairs: &[(u32, u32)],
    known: &mut HashMap<PairKey, Comparison, impl std::hash::BuildHasher>,
) -> Vec<Verified> {
    let key_of = |a: u32, b: u32| -> Option<PairKey> {
        let (fa, fb) = (records[a as usize].facts()?, records[b as usize].facts()?);
        Some(verdicts::key(&fa.content_hash, &fb.content_hash))
    };
    let todo: Vec<(u32, u32)> = pairs
        .iter()
        .copied()
        .filter(|&(a, b)| key_of(a, b).is_some_and(|k| !known.contains_key(&k)))
        .collect();
    if !todo.is_empty() {
        let mut rows: Vec<u32> = todo.iter().flat_map(|&(a, b)| [a, b]).collect();
        rows.sort_unstable();
        rows.dedup();
        let pictures = pictures(root, records, pack, &rows);
        let found: Vec<(PairKey, Comparison)> = todo
            .par_iter()
            .filter_map(|&(a, b)| {
                let key = key_of(a, b)?;
                let picture = |row: u32| {
                    rows.binary_search(&row)
                        .ok()
                        .and_then(|i| pictures[i].as_ref())
                };
                Some((key, compare_views(picture(a)?, picture(b)?)))
            })
            .collect();
        known.extend(found);
    }
    pairs
        .iter()
        .filter_map(|&(a, b)| {
            let comparison = known
                .get(&key_of(a, b)?)
                .copied()
                .unwrap_or(Comparison::REJECTED);
            Some(Verified { a, b, comparison })
        })
        .collect()
}

/// Files up to this size in a format that can hold transparency are read again for their
/// alpha-dropped view (icons, not posters).
const ALPHA_VIEW_BYTES: u64 = 2 << 20;

/// The alpha-dropped picture of the file at `path`, if it is small, in a format with
/// transparency, and has transparent pixels.
fn alpha_dropped(path: &Path, size: u64) -> Option<Picture> {
    if size > ALPHA_VIEW_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let format = crate::dataset::decode::sniff_format(&bytes)?;
    if !matches!(
        format,
        image::ImageFormat::Png
            | image::ImageFormat::WebP
            | image::ImageFormat::Gif
            | image::ImageFormat::Tiff
    ) {
        return None;
    }
    let image = image::load_from_memory_with_format(&bytes, format).ok()?;
    if !image.color().has_alpha() {
        return None;
    }
    let rgba = image.to_rgba8();
    if rgba.pixels().all(|p| p.0[3] == u8::MAX) {
        return None;
    }
    let rgb = image.to_rgb8();
    let (w, h) = rgb.dimensions();
    let (tw, th) = crate::dataset::resample::fit_within(w, h, super::ingest::THUMB_SIDE);
    let small = crate::dataset::resample::resize_area(&rgb, tw, th);
    Some(Picture::new(&small, w, h))
}

/// The views of `rows` (sorted), from their thumbnails; `None` where one cannot be read.
fn pictures(root: &Path, records: &[FileRecord], pack: &Path, rows: &[u32]) -> Vec<Option<Views>> {
    let mut reader = ThumbReader::open(pack).ok();
    let bytes: Vec<Option<Vec<u8>>> = rows
        .iter()
        .map(|&row| {
            let facts = records[row as usize].facts()?;
            reader.as_mut()?.read(facts.thumb).ok()
        })
        .collect();
    bytes
        .into_par_iter()
        .zip(rows)
        .map(|(bytes, &row)| {
            let facts = records[row as usize].facts()?;
            let image =
                image::load_from_memory_with_format(&bytes?, image::ImageFormat::Jpeg).ok()?;
            let record = &records[row as usize];
            Some(Views {
                visible: Picture::new(&image.to_rgb8(), facts.width, facts.height),
                alpha_dropped: alpha_dropped(&root.join(&record.rel_path), record.size),
            })
        })
        .collect()
}
