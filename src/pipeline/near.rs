//! Near duplicates: candidate pairs proposed by the pHash index, the feature k-NN graph and
//! model embeddings, each verified on the two images' thumbnails
//! ([`crate::analysis::verify`]) before it may join a group.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::analysis::dedup::{self, DupKind, DupLink};
use crate::analysis::knn::Neighbours;
use crate::analysis::verify::{self, Comparison, Picture};
use crate::dataset::pillow;
use crate::store::cache::{FileRecord, ImageFacts, ThumbReader};
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

/// How much worse (in block difference) a copy must match one of two look-alikes than the
/// other before its link to the worse is dropped (see [`NearPairs::settled`]): copies of one
/// picture differ from it by a few tenths to a few levels, so one level apart is a
/// choice the pixels make, not noise.
pub const AMBIGUITY_MARGIN: f32 = 1.0;

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

    /// `links` less the near links a copy has to the wrong one of two look-alikes. Where an
    /// image is a copy of two images that were compared and found not to be copies of each
    /// other (a man and a woman version of one icon, two skin tones), it is a copy of one of
    /// them; the grouping (stars around keepers, taken in `rank` order: the keeper order,
    /// lower first) would give it to whichever of them is ranked before it and first, and
    /// leave the other alone. Its link to one ranked before it that it matches clearly
    /// worse than the other (by [`AMBIGUITY_MARGIN`] or more in block difference) is
    /// dropped, so it goes to the one it copies. Copies of one original made in opposite
    /// directions (brighter, darker: not copies of each other) keep their links: they are
    /// the two look-alikes here, and the original is ranked before them.
    #[must_use]
    pub fn settled(&self, links: Vec<DupLink>, max_difference: f32, rank: &[u32]) -> Vec<DupLink> {
        // Copies with their difference; apart: compared and not copies, also those turned
        // away at a glance.
        let mut difference: HashMap<(u32, u32), f32> = HashMap::new();
        let mut apart: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
        for p in &self.pairs {
            let key = (p.a.min(p.b), p.a.max(p.b));
            if p.comparison.is_copy(max_difference) {
                difference.insert(key, p.comparison.difference);
            } else {
                apart.insert(key);
            }
        }
        let before = |x: u32, y: u32| (rank[x as usize], x) < (rank[y as usize], y);
        // Per row, its near partners with their differences.
        let mut partners: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
        for l in links.iter().filter(|l| l.kind == DupKind::Near) {
            if let Some(&d) = difference.get(&(l.a.min(l.b), l.a.max(l.b))) {
                partners.entry(l.a).or_default().push((l.b, d));
                partners.entry(l.b).or_default().push((l.a, d));
            }
        }
        let mut wrong: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
        for (&row, list) in &partners {
            for &(i, di) in list.iter().filter(|&&(i, _)| before(i, row)) {
                let better_elsewhere = list.iter().any(|&(k, dk)| {
                    k != i && dk + AMBIGUITY_MARGIN <= di && apart.contains(&(i.min(k), i.max(k)))
                });
                if better_elsewhere {
                    wrong.insert((row.min(i), row.max(i)));
                }
            }
        }
        links
            .into_iter()
            .filter(|l| l.kind != DupKind::Near || !wrong.contains(&(l.a.min(l.b), l.a.max(l.b))))
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

/// Every pHash of each row: its own, and for an image with transparency those of its
/// flattened views (a JPEG saved from it looks like one of them).
#[must_use]
pub fn row_hashes(records: &[FileRecord]) -> Vec<(u32, u64)> {
    let mut out = Vec::with_capacity(records.len());
    for (row, record) in records.iter().enumerate() {
        if let Some(facts) = record.facts() {
            out.push((row as u32, facts.phash));
            for hash in facts.flat_phashes.into_iter().flatten() {
                out.push((row as u32, hash));
            }
        }
    }
    out
}

/// Candidate row pairs (lower row first, unique), never two rows with the same content
/// hash (those are exact copies already): rows whose pHashes (`hashes`, any number per
/// row, see [`row_hashes`]) are within `max_distance` bits, each image's closest feature
/// neighbours (`graph` over the `readable` rows) and `extra` pairs (model embeddings).
#[must_use]
pub fn candidates(
    content: &[Option<[u8; 32]>],
    hashes: &[(u32, u64)],
    max_distance: u32,
    graph: Option<(&Neighbours, &[u32])>,
    extra: &[(u32, u32)],
) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut by_value: HashMap<u64, Vec<u32>> = HashMap::new();
    for &(row, hash) in hashes {
        by_value.entry(hash).or_default().push(row);
    }
    for rows in by_value.values_mut() {
        rows.sort_unstable();
        rows.dedup();
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
/// black) and, for an image with transparent pixels, the pictures of its usual flattened
/// views (alpha dropped, as `convert("RGB")` and many scripts save; over white; alpha
/// dropped where any coverage remains, as after a resize with transparency).
struct Views {
    visible: Picture,
    flattened: Vec<Picture>,
    /// The visible picture at the thumbnail's full size, when that is at least
    /// [`DETAIL_SIDE`]: see [`confirm`].
    detail: Option<Picture>,
}

/// Which of [`Views::flattened`] is the image over white (see
/// [`crate::dataset::decode::flattened`]).
const WHITE_VIEW: usize = 1;

/// How far beyond the line a moved pair's thumbnails may differ (see [`confirm`]).
const DETAIL_SLACK: f32 = 2.0;

/// Thumbnails at least this long are compared again at their full size before a copy
/// verdict stands.
const DETAIL_SIDE: u32 = 96;

/// A copy found on the 48-pixel pictures of two large images is compared again on their
/// thumbnails (128 pixels): at 48 pixels a changed title on one template, or another
/// word on one banner, shrinks to a few pixels that compression noise can hide. Only pairs
/// that line up as they are (no crop: a template and its other texts do) are compared
/// again, since resampling a crop shows at this size; transparent images (compared by
/// their flattened views) and small ones keep the first verdict.
fn confirm(a: &Views, b: &Views) -> Comparison {
    let (first, window) = compare_views(a, b);
    // A window only when the visible pictures were compared: never for flattened views.
    let Some([x, y]) = window.filter(|_| first.is_copy(verify::DEFAULT_MAX_DIFFERENCE)) else {
        return first;
    };
    if a.detail.is_none() || b.detail.is_none() {
        return first;
    }
    let in_place = |(start, end): (f32, f32)| start.abs() < 0.01 && (end - 1.0).abs() < 0.01;
    let aligned = in_place(x) && in_place(y);
    // Moved or scaled pairs (crops) keep some resampling error at this size: only a
    // difference far beyond the line (another stretch of one texture) overturns them.
    let line = if aligned { 1.0 } else { DETAIL_SLACK } * verify::DEFAULT_MAX_DIFFERENCE;
    match (&a.detail, &b.detail) {
        (Some(da), Some(db)) => {
            let detail = verify::compare(da, db);
            if detail.is_copy(line) { first } else { detail }
        }
        _ => first,
    }
}

/// Compares two images. An image with transparency is also compared by its flattened
/// views against an opaque one (a JPEG saved from it), the closest comparison counting;
/// two images with transparency are compared as seen over black and over white, so a
/// circle and a square icon stay apart whatever their hidden pixels hold, by one
/// alignment for both backgrounds ([`verify::compare_two_views`]), and the worse
/// comparison counts. The window is that of the alignment of the pictures as seen (or of
/// both backgrounds); none for flattened views.
fn compare_views(a: &Views, b: &Views) -> (Comparison, Option<verify::Window>) {
    // Two transparent images: a copy matches over any background, so they are also
    // compared over white, with one geometry for both, and the worse comparison counts (a
    // dark feature, such as hair, vanishes over black; a light one over white). Not where
    // either is blank over white: a white icon says nothing there.
    if let (Some(wa), Some(wb)) = (a.flattened.get(WHITE_VIEW), b.flattened.get(WHITE_VIEW))
        && !wa.is_blank()
        && !wb.is_blank()
    {
        return verify::compare_two_views([(&a.visible, &b.visible), (wa, wb)]);
    }
    let (seen, window) = verify::compare_located(&a.visible, &b.visible);
    let others: Vec<Comparison> = match (a.flattened.is_empty(), b.flattened.is_empty()) {
        // (Two transparent images, one blank over white: as seen.)
        (true, true) | (false, false) => return (seen, window),
        (false, true) => a
            .flattened
            .iter()
            .map(|view| verify::compare(view, &b.visible))
            .collect(),
        (true, false) => b
            .flattened
            .iter()
            .map(|view| verify::compare(&a.visible, view))
            .collect(),
    };
    let best = others.into_iter().fold(seen, |best, other| {
        if other.difference < best.difference {
            other
        } else {
            best
        }
    });
    (best, None)
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
        let seen: Vec<(u32, u32, PairKey, Comparison)> = todo
            .par_iter()
            .filter_map(|&(a, b)| {
                let key = key_of(a, b)?;
                let picture = |row: u32| {
                    rows.binary_search(&row)
                        .ok()
                        .and_then(|i| pictures[i].as_ref())
                };
                let (va, vb) = (picture(a)?, picture(b)?);
                Some((a, b, key, confirm(va, vb)))
            })
            .collect();
        // Near misses are compared again with the transform reproduced, from each image
        // decoded once.
        let near_miss = |a: u32, b: u32, c: &Comparison| {
            !c.is_copy(verify::DEFAULT_MAX_DIFFERENCE)
                && (c.difference <= RECOMPRESS_WITHIN
                    || mixed_transparency(&records[a as usize], &records[b as usize]))
        };
        let mut again: Vec<u32> = seen
            .iter()
            .filter(|s| near_miss(s.0, s.1, &s.3))
            .flat_map(|s| [s.0, s.1])
            .collect();
        again.sort_unstable();
        again.dedup();
        let sources: Vec<Option<Source>> = again
            .par_iter()
            .map(|&row| Source::load(root, &records[row as usize]))
            .collect();
        let source = |row: u32| {
            again
                .binary_search(&row)
                .ok()
                .and_then(|i| sources[i].as_ref())
        };
        let found: Vec<(PairKey, Comparison)> = seen
            .into_par_iter()
            .map(|(a, b, key, seen)| {
                let reproduced = near_miss(a, b, &seen)
                    .then(|| as_reproduced(source(a)?, source(b)?))
                    .flatten()
                    .filter(|c| c.difference < seen.difference);
                (key, reproduced.unwrap_or(seen))
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

/// Partners of one image (its closest copies first) whose pairs [`closing_pairs`]
/// proposes: a thousand copies of one frame need no million comparisons.
const CLOSING_PARTNERS: usize = 8;

/// Pairs of images that are both copies of a third (under `max_difference`) but were not
/// compared with each other: compared, they tell whether the third joins two copies of
/// one picture or two look-alikes ([`NearPairs::settled`] then knows the look-alikes
/// apart). Lower row first, unique, sorted.
#[must_use]
pub fn closing_pairs(verified: &[Verified], max_difference: f32) -> Vec<(u32, u32)> {
    let compared: std::collections::HashSet<(u32, u32)> = verified
        .iter()
        .map(|p| (p.a.min(p.b), p.a.max(p.b)))
        .collect();
    let mut partners: HashMap<u32, Vec<(f32, u32)>> = HashMap::new();
    for p in verified
        .iter()
        .filter(|p| p.comparison.is_copy(max_difference))
    {
        partners
            .entry(p.a)
            .or_default()
            .push((p.comparison.difference, p.b));
        partners
            .entry(p.b)
            .or_default()
            .push((p.comparison.difference, p.a));
    }
    let mut out = Vec::new();
    for list in partners.values_mut() {
        list.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        list.truncate(CLOSING_PARTNERS);
        for (x, &(_, i)) in list.iter().enumerate() {
            for &(_, k) in &list[x + 1..] {
                let key = (i.min(k), i.max(k));
                if !compared.contains(&key) {
                    out.push(key);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Pairs whose difference is within this (but not a copy) are also compared as one would look
/// made into the other (see [`as_reproduced`]).
const RECOMPRESS_WITHIN: f32 = 4.0 * verify::DEFAULT_MAX_DIFFERENCE;

/// Images up to this many pixels (and [`REPRODUCE_BYTES`]) are also compared
/// with the transform reproduced: at this size a 48-pixel picture still shows resampling
/// and compression at edges; beyond it they average away, while what is drawn (a word of a
/// template) shrinks to a few pixels, where reproduced noise would only hide it.
const RECOMPRESS_PIXELS: u64 = 320 * 320;

/// Compares two small images as the copy (the second of a direction) would look if it
/// were made from the original by the usual transforms: the window of the original it
/// shows (a crop, found by the alignment and polished to whole pixels) resized to its size
/// as Pillow resizes (see [`crate::dataset::pillow`]) or by an area average, then, when
/// the copy is a JPEG, compressed with its quantisation tables and chroma subsampling (see
/// [`crate::dataset::jpeg`]). Resampling and compression damage a small picture's edges
/// and thin colours the same way each time; a look-alike differs in what is drawn. Both
/// directions and every view of the original are tried (as seen, flattened, and, for an
/// opaque copy of a transparent original, resized with its transparency and saved without
/// it); `None` when a file cannot be read or is too large to be worth it.
fn as_reproduced(a: &Source, b: &Source) -> Option<Comparison> {
    let mut best: Option<Comparison> = None;
    if a.white().is_some() && b.white().is_some() {
        // Two transparent images: as the first comparison does, each is seen over black
        // and over white and the worse counts (dark hair vanishes over black, light
        // paint over white); a copy reproduces over both.
        for (original, copy) in [(a, b), (b, a)] {
            let (Some(white_copy), Some(white_original), Some(white_image)) = (
                copy.white(),
                original.flattened.get(WHITE_VIEW).zip(original.white()),
                copy.flattened.get(WHITE_VIEW),
            ) else {
                continue;
            };
            // The window is found over black for both (see `Attempt::start_located`).
            let black_original = [&original.picture];
            let by = (black_original.as_slice(), &copy.picture);
            let reproduce = |view: Original, picture: &Picture, image: &image::RgbImage| {
                Attempt::start_located(view, picture, image, None, Some(by))
                    .and_then(|attempt| attempt.polish())
            };
            let (Some(black), Some(white)) = (
                reproduce(
                    Original::Rgb(&original.decoded.rgb, &original.picture),
                    &copy.picture,
                    &copy.decoded.rgb,
                ),
                reproduce(
                    Original::Rgb(white_original.0, white_original.1),
                    white_copy,
                    white_image,
                ),
            ) else {
                continue;
            };
            let worse = black.worse(white);
            if best.is_none_or(|b| worse.difference < b.difference) {
                best = Some(worse);
            }
        }
        return best;
    }
    for (original, copy) in [(a, b), (b, a)] {
        let views = std::iter::once(Original::Rgb(&original.decoded.rgb, &original.picture))
            .chain(
                original
                    .flattened
                    .iter()
                    .zip(&original.flattened_pictures)
                    .map(|(image, picture)| Original::Rgb(image, picture)),
            )
            .chain(
                original
                    .decoded
                    .rgba
                    .as_ref()
                    .filter(|_| copy.decoded.rgba.is_none())
                    .zip(original.masked_picture.as_ref())
                    .map(|(rgba, masked)| Original::Rgba(rgba, [&original.picture, masked])),
            );
        for view in views {
            if let Some(c) =
                Attempt::start(view, &copy.picture, &copy.decoded.rgb, copy.jpeg.as_ref())
                    .and_then(|attempt| attempt.polish())
                && best.is_none_or(|b| c.difference < b.difference)
            {
                best = Some(c);
            }
        }
    }
    best
}

/// Whether a pair is worth reproducing whatever its first comparison: a small transparent
/// image and an opaque one. A transparent image resized and saved without alpha shows its
/// colours out to wherever any coverage remains and black elsewhere (see
/// [`crate::dataset::pillow::resize_alpha_dropped`]), which neither its visible picture nor
/// a flattened view matches closely, so the first comparison says little.
fn mixed_transparency(a: &FileRecord, b: &FileRecord) -> bool {
    let small = |r: &FileRecord| {
        r.facts().is_some_and(|f| {
            f.bytes <= REPRODUCE_BYTES
                && u64::from(f.width) * u64::from(f.height) <= RECOMPRESS_PIXELS
        })
    };
    let transparent = |r: &FileRecord| r.facts().is_some_and(|f| f.flat_phashes.is_some());
    small(a) && small(b) && transparent(a) != transparent(b)
}

/// One image as [`as_reproduced`] uses it, decoded once.
struct Source {
    decoded: crate::dataset::decode::Decoded,
    /// Its flattened views, when it has transparency.
    flattened: Vec<image::RgbImage>,
    /// The pictures of its flattened views.
    flattened_pictures: Vec<Picture>,
    /// The picture of its colours where any coverage remains, when it has transparency
    /// (see [`crate::dataset::decode::alpha_masked`]).
    masked_picture: Option<Picture>,
    /// Its JPEG settings, when it is a JPEG this can reproduce.
    jpeg: Option<crate::dataset::jpeg::Settings>,
    /// Its picture, from the full image.
    picture: Picture,
}

impl Source {
    /// Its picture over white (`flattened[WHITE_VIEW]`), when it has transparency.
    fn white(&self) -> Option<&Picture> {
        self.flattened_pictures.get(WHITE_VIEW)
    }

    /// The image of `record`, if it is small enough to be worth it and can be read.
    fn load(root: &Path, record: &FileRecord) -> Option<Self> {
        use crate::dataset::{DecodeLimits, decode, jpeg};
        let facts = record.facts()?;
        if facts.bytes > REPRODUCE_BYTES
            || u64::from(facts.width) * u64::from(facts.height) > RECOMPRESS_PIXELS
        {
            return None;
        }
        let bytes = crate::dataset::read_path(root, &record.rel_path).ok()?;
        let decoded = decode::decode(&bytes, DecodeLimits::default()).ok()?;
        let (w, h) = decoded.rgb.dimensions();
        let flattened: Vec<image::RgbImage> = decoded
            .rgba
            .as_ref()
            .map(|rgba| decode::flattened(rgba).into_iter().collect())
            .unwrap_or_default();
        Some(Self {
            flattened_pictures: flattened
                .iter()
                .map(|view| Picture::new(view, w, h))
                .collect(),
            flattened,
            masked_picture: decoded
                .rgba
                .as_ref()
                .map(|rgba| Picture::new(&decode::alpha_masked(rgba), w, h)),
            jpeg: jpeg::settings(&bytes),
            picture: Picture::new(&decoded.rgb, w, h),
            decoded,
        })
    }
}

/// An original as an [`Attempt`] transforms it.
#[derive(Clone, Copy)]
enum Original<'a> {
    /// A picture resized as it is, and its [`Picture`] (the window is found on it).
    Rgb(&'a image::RgbImage, &'a Picture),
    /// A transparent image resized with its transparency and saved without it (only a
    /// resize makes this differ from its alpha-dropped view), with the pictures to find
    /// the window by: its visible picture (over black) and its colours where any coverage
    /// remains (see [`crate::dataset::decode::alpha_masked`]).
    Rgba(&'a image::RgbaImage, [&'a Picture; 2]),
}

impl Original<'_> {
    fn dimensions(self) -> (u32, u32) {
        match self {
            Self::Rgb(image, _) => image.dimensions(),
            Self::Rgba(image, _) => image.dimensions(),
        }
    }
}

/// How a copy may have been resized: Pillow's LANCZOS, BICUBIC and BILINEAR with either
/// pass first (Pillow versions differ), and an area average (`cv2.INTER_AREA`, most
/// thumbnailers).
const RESIZES: [Option<(pillow::Filter, pillow::Order)>; 7] = [
    Some((pillow::Filter::Lanczos, pillow::Order::HorizontalFirst)),
    Some((pillow::Filter::Lanczos, pillow::Order::VerticalFirst)),
    Some((pillow::Filter::Bicubic, pillow::Order::HorizontalFirst)),
    Some((pillow::Filter::Bicubic, pillow::Order::VerticalFirst)),
    Some((pillow::Filter::Bilinear, pillow::Order::HorizontalFirst)),
    Some((pillow::Filter::Bilinear, pillow::Order::VerticalFirst)),
    None,
];

/// How many times at most a crop's window is stepped toward a better reproduction.
const POLISH_ROUNDS: usize = 3;

/// A reproduced transform: its comparison, window columns and rows, resize index.
type Trial = (Comparison, (i64, i64), (i64, i64), usize);

/// A window's columns and rows and a resize index.
type Candidate = ((i64, i64), (i64, i64), usize);

/// Copies up to this many pixels have their crop's window searched over every edge and
/// method at once ([`Attempt::polish_jointly`]); larger ones one axis at a time.
const JOINT_PIXELS: u32 = 64 * 64;

/// At most this many steps of the joint search.
const JOINT_ROUNDS: usize = 4;

/// The windows and methods of the joint search closest by their pixels that are made and
/// compared in full.
const JOINT_FINALISTS: usize = 4;

/// One direction and view of a pair as [`as_reproduced`] tries it: `copy` (the picture of
/// `copy_image`) against `view` transformed, first at the alignment's window and at the
/// whole original, then (see [`Self::polish`]) at windows around the better one.
struct Attempt<'a> {
    view: Original<'a>,
    /// The view's windows as Pillow resizes them (first passes shared between trials).
    windows: pillow::Windows<'a>,
    copy: &'a Picture,
    copy_image: &'a image::RgbImage,
    settings: Option<&'a crate::dataset::jpeg::Settings>,
    /// The best trial at each of the alignment's windows (see
    /// [`verify::compare_located_all`]).
    located: Vec<Trial>,
    /// The best trial of the whole original, when the alignment chose a smaller window.
    whole: Option<Trial>,
}

impl<'a> Attempt<'a> {
    /// The first trials; `None` when the alignment finds no window or there is nothing to
    /// reproduce (no crop, resize or compression).
    fn start(
        view: Original<'a>,
        copy: &'a Picture,
        copy_image: &'a image::RgbImage,
        settings: Option<&'a crate::dataset::jpeg::Settings>,
    ) -> Option<Self> {
        Self::start_located(view, copy, copy_image, settings, None)
    }

    /// [`Self::start`], the window found on other pictures of the pair when `by` says
    /// so: the original's images and the copy's picture (one view of a transparent pair
    /// lines up where the other cannot, as over white a crop's uneven borders vanish).
    fn start_located(
        view: Original<'a>,
        copy: &'a Picture,
        copy_image: &'a image::RgbImage,
        settings: Option<&'a crate::dataset::jpeg::Settings>,
        by: Option<(&[&Picture], &Picture)>,
    ) -> Option<Self> {
        let (w, h) = view.dimensions();
        let (locating, locating_copy): (&[&Picture], &Picture) = match (&view, by) {
            (_, Some(by)) => by,
            (Original::Rgb(_, picture), None) => (std::slice::from_ref(picture), copy),
            (Original::Rgba(_, pictures), None) => (pictures, copy),
        };
        // The windows of the picture that lines up best (its closest alignment, and the
        // profiles' when a search found a closer one).
        let located = locating
            .iter()
            .map(|picture| verify::compare_located_all(picture, locating_copy))
            .filter(|(_, windows)| !windows.is_empty())
            .min_by(|p, q| p.0.difference.total_cmp(&q.0.difference))?
            .1;
        // The windows in whole pixels; one reaching beyond the view by more than rounding
        // is not a crop of it (the other direction may be).
        let edges = |(start, end): (f32, f32), side: u32| -> Option<(i64, i64)> {
            let side = f64::from(side);
            let (start, end) = (f64::from(start) * side, f64::from(end) * side);
            (start > -1.0 && end < side + 1.0)
                .then(|| (start.round().max(0.0) as i64, end.round().min(side) as i64))
        };
        let mut windows: Vec<((i64, i64), (i64, i64))> = located
            .into_iter()
            .filter_map(|[x, y]| Some((edges(x, w)?, edges(y, h)?)))
            .collect();
        windows.dedup();
        let full = ((0, i64::from(w)), (0, i64::from(h)));
        let transparent = matches!(view, Original::Rgba(..));
        // No crop, no resize, no compression: nothing to reproduce.
        windows.retain(|&window| {
            window != full
                || (w, h) != copy_image.dimensions()
                || !(settings.is_none() || transparent)
        });
        let &(xs, ys) = windows.first()?;
        let mut attempt = Self {
            view,
            windows: match view {
                Original::Rgb(image, _) => pillow::Windows::rgb(image),
                Original::Rgba(image, _) => pillow::Windows::alpha_dropped(image),
            },
            copy,
            copy_image,
            settings,
            located: Vec::new(),
            whole: None,
        };
        // One first trial per window, each polished on its own (the closer first guess
        // does not always settle closer).
        let mut located = Vec::new();
        for &(xs, ys) in &windows {
            // Without a crop or a resize every method makes the same picture.
            let methods = if (xs, ys) == full && (w, h) == copy_image.dimensions() {
                1
            } else {
                RESIZES.len()
            };
            let mut trial = None;
            for f in 0..methods {
                attempt.try_window(&mut trial, xs, ys, f);
            }
            located.extend(trial);
        }
        // The alignment's window is found on small pictures and may miss a plain resize by
        // a pixel or two: the whole original is tried too.
        let mut whole = None;
        if (xs, ys) != full {
            for f in 0..RESIZES.len() {
                attempt.try_window(&mut whole, full.0, full.1, f);
            }
        }
        attempt.located = located;
        attempt.whole = whole;
        Some(attempt)
    }

    /// Makes the copy from window `xs` × `ys` with resize `f`; keeps it in `best` when it
    /// is closer.
    fn try_window(&self, best: &mut Option<Trial>, xs: (i64, i64), ys: (i64, i64), f: usize) {
        if let Some(c) = self.made(xs, ys, f)
            && best.is_none_or(|b| c.difference < b.0.difference)
        {
            *best = Some((c, xs, ys, f));
        }
    }

    /// The copy as made from window `(x0, x1)` × `(y0, y1)` of the view with resize `resize`
    /// (and compressed as the copy was), compared with the copy in place.
    fn made(&self, xs: (i64, i64), ys: (i64, i64), resize: usize) -> Option<Comparison> {
        let sized = self.sized(xs, ys, resize)?;
        let made = match self.settings {
            Some(settings) => crate::dataset::jpeg::recompress(&sized, settings)?,
            None => sized,
        };
        let (w, h) = self.view.dimensions();
        Some(verify::compare_in_place(
            &Picture::new(&made, w, h),
            self.copy,
        ))
    }

    /// How far the copy made from a window (before compression) is from the copy: the sum
    /// of squared differences of their pixels. Cheap, for searching windows.
    fn distance(&self, xs: (i64, i64), ys: (i64, i64), resize: usize) -> Option<u64> {
        let sized = self.sized(xs, ys, resize)?;
        Some(
            sized
                .as_raw()
                .iter()
                .zip(self.copy_image.as_raw())
                .map(|(&a, &b)| u64::from(a.abs_diff(b)).pow(2))
                .sum(),
        )
    }

    /// The window `(x0, x1)` × `(y0, y1)` of the view resized to the copy's size with resize
    /// `resize` (`None` where that window or method cannot have made the copy).
    fn sized(
        &self,
        (x0, x1): (i64, i64),
        (y0, y1): (i64, i64),
        resize: usize,
    ) -> Option<image::RgbImage> {
        use crate::dataset::resample;
        let (w, h) = self.view.dimensions();
        let size = self.copy_image.dimensions();
        if x1 - x0 < 2 || y1 - y0 < 2 || x0 < 0 || y0 < 0 || x1 > i64::from(w) || y1 > i64::from(h)
        {
            return None;
        }
        let (x0, y0, cw, ch) = (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32);
        // Copies are not enlarged far beyond their window, nor a window a small part of
        // the original: that would be another picture (the middle of a circle is a square).
        if cw * 100 < size.0 * 80
            || ch * 100 < size.1 * 80
            || cw * 100 < w * 80
            || ch * 100 < h * 80
        {
            return None;
        }
        let method = RESIZES[resize];
        // Only where both axes change size can the order of the passes matter.
        if method.is_some_and(|(_, order)| order == pillow::Order::VerticalFirst)
            && (cw == size.0 || ch == size.1)
        {
            return None;
        }
        let rect = (x0, y0, cw, ch);
        match (self.view, method) {
            // Without a resize the transparency is only dropped: a flattened view.
            (Original::Rgba(..), _) if (cw, ch) == size => None,
            (Original::Rgba(..), None) => None,
            (Original::Rgba(..), Some((filter, order))) => {
                Some(self.windows.resize(rect, size, filter, order))
            }
            (Original::Rgb(image, _), method) => Some(match method {
                _ if (cw, ch) == size => window(image, rect),
                Some((filter, order)) => self.windows.resize(rect, size, filter, order),
                None => resample::resize_area(&window(image, rect), size.0, size.1),
            }),
        }
    }

    /// The closest reproduction: a crop's window stepped to whole pixels around the first
    /// guess while that helps, then every method at the window it settled on.
    fn polish(&self) -> Option<Comparison> {
        let (w, h) = self.view.dimensions();
        let full = ((0, i64::from(w)), (0, i64::from(h)));
        let polished = self.located.iter().map(|&start| {
            // Polishing moves a crop's edges by a pixel or two, which brings a near miss
            // (an edge's resampling) under the line, not another picture; a plain copy
            // needs none.
            let settled = (start.0.difference <= 0.5 * verify::DEFAULT_MAX_DIFFERENCE
                && start.0.is_copy(verify::DEFAULT_MAX_DIFFERENCE))
                || start.0.difference > 2.0 * RECOMPRESS_WITHIN;
            if (start.1, start.2) == full || settled {
                return start;
            }
            let (cw, ch) = self.copy_image.dimensions();
            if cw * ch <= JOINT_PIXELS {
                self.polish_jointly(start)
            } else {
                self.polish_by_axis(start)
            }
        });
        polished
            .chain(self.whole)
            .map(|trial| trial.0)
            .min_by(|p, q| p.difference.total_cmp(&q.difference))
    }

    /// Steps a crop's window one axis at a time with the method of `start` while that
    /// helps, then tries every method at the window it settled on.
    fn polish_by_axis(&self, start: Trial) -> Trial {
        let mut best = start;
        let f = start.3;
        for _ in 0..POLISH_ROUNDS {
            let before = best.0.difference;
            for axis in 0..2 {
                let (xs, ys) = (best.1, best.2);
                let centre = if axis == 0 { xs } else { ys };
                let mut found = Some(best);
                for d0 in -1..=1 {
                    for d1 in -1..=1 {
                        if (d0, d1) == (0, 0) {
                            continue;
                        }
                        let edge = (centre.0 + d0, centre.1 + d1);
                        let (tx, ty) = if axis == 0 { (edge, ys) } else { (xs, edge) };
                        self.try_window(&mut found, tx, ty, f);
                    }
                }
                best = found.unwrap_or(best);
            }
            if best.0.difference >= before {
                break;
            }
        }
        // The window settled; the method chosen at the first guess may not be the best.
        let mut found = Some(best);
        for g in 0..RESIZES.len() {
            self.try_window(&mut found, best.1, best.2, g);
        }
        found.unwrap_or(best)
    }

    /// Searches a small copy's window with every edge and every method at once, by the
    /// pixels' squared distance (a window off on both axes can look worse when either is
    /// moved alone, and the method chosen at the first guess may be the wrong one); the
    /// closest few are then made and compared in full.
    fn polish_jointly(&self, start: Trial) -> Trial {
        let mut seen: HashMap<Candidate, u64> = HashMap::new();
        let mut current = (start.1, start.2);
        let mut closest = u64::MAX;
        for _ in 0..JOINT_ROUNDS {
            let (cx, cy) = current;
            let mut moved = false;
            for dx0 in -1..=1 {
                for dx1 in -1..=1 {
                    for dy0 in -1..=1 {
                        for dy1 in -1..=1 {
                            let (tx, ty) = ((cx.0 + dx0, cx.1 + dx1), (cy.0 + dy0, cy.1 + dy1));
                            for f in 0..RESIZES.len() {
                                let d = *seen.entry((tx, ty, f)).or_insert_with(|| {
                                    self.distance(tx, ty, f).unwrap_or(u64::MAX)
                                });
                                if d < closest {
                                    closest = d;
                                    current = (tx, ty);
                                    moved = true;
                                }
                            }
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let mut ranked: Vec<(u64, Candidate)> = seen
            .into_iter()
            .filter(|&(_, d)| d < u64::MAX)
            .map(|(k, d)| (d, k))
            .collect();
        ranked.sort_unstable();
        let mut found = Some(start);
        for &(_, (xs, ys, f)) in ranked.iter().take(JOINT_FINALISTS) {
            self.try_window(&mut found, xs, ys, f);
        }
        found.unwrap_or(start)
    }
}

/// The window `(x0, y0, width, height)` of `image` (a plain copy when it is the whole).
fn window<P: image::Pixel + 'static>(
    image: &image::ImageBuffer<P, Vec<P::Subpixel>>,
    (x0, y0, cw, ch): (u32, u32, u32, u32),
) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
    if (x0, y0, cw, ch) == (0, 0, image.width(), image.height()) {
        image.clone()
    } else {
        image::imageops::crop_imm(image, x0, y0, cw, ch).to_image()
    }
}

/// Files up to this size with transparent pixels are read again for their flattened views
/// (icons and wallpapers; a poster beyond this would take long to decode again).
const ALPHA_VIEW_BYTES: u64 = 16 << 20;

/// Files up to this size are read again to reproduce a transform (see [`as_reproduced`]).
const REPRODUCE_BYTES: u64 = 4 << 20;

/// The flattened views of the file at `path` (see [`crate::dataset::decode::flattened`]),
/// if it is small, in a format with transparency, and has transparent pixels; empty
/// otherwise.
fn flattened(root: &Path, rel_path: &str, size: u64, facts: &ImageFacts) -> Vec<Picture> {
    use crate::dataset::{DecodeLimits, decode, resample};
    // The decode pass hashed flattened views exactly for the images with transparency.
    if size > ALPHA_VIEW_BYTES || facts.flat_phashes.is_none() {
        return Vec::new();
    }
    let Some(rgba) = crate::dataset::read_path(root, rel_path)
        .ok()
        .and_then(|bytes| decode::decode(&bytes, DecodeLimits::default()).ok())
        .and_then(|decoded| decoded.rgba)
    else {
        return Vec::new();
    };
    let (w, h) = rgba.dimensions();
    let (tw, th) = resample::fit_within(w, h, super::ingest::THUMB_SIDE);
    decode::flattened(&rgba)
        .into_iter()
        .chain(std::iter::once(decode::alpha_masked(&rgba)))
        .map(|view| Picture::new(&resample::resize_area(&view, tw, th), w, h))
        .collect()
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
            let rgb = image.to_rgb8();
            Some(Views {
                visible: Picture::new(&rgb, facts.width, facts.height),
                detail: (rgb.width().max(rgb.height()) >= DETAIL_SIDE)
                    .then(|| Picture::with_side(&rgb, facts.width, facts.height, u32::MAX)),
                flattened: flattened(root, &record.rel_path, facts.bytes, facts),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: u32, b: u32, difference: f32) -> Verified {
        Verified {
            a,
            b,
            comparison: Comparison {
                difference,
                mean: 0.1 * difference,
                fine: 2.0 * difference,
            },
        }
    }

    /// The links left after settling `pairs` (by row: ranked in row order).
    fn settled(pairs: Vec<Verified>) -> Vec<(u32, u32)> {
        let near = NearPairs {
            pairs,
            max_difference: verify::DEFAULT_MAX_DIFFERENCE,
        };
        let line = near.max_difference;
        let mut out: Vec<(u32, u32)> = near
            .settled(near.links(line), line, &[0, 1, 2])
            .iter()
            .map(|l| (l.a.min(l.b), l.a.max(l.b)))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn a_copy_goes_to_the_look_alike_it_copies() {
        // 0: a 64-px icon; 1: its 48-px look-alike (another face, found not to be a copy
        // of 0); 2: a downscaled copy of 1, which also passes as a copy of 0. The grouping
        // takes 0 first (larger): without settling, 2 would join 0 and leave 1 alone.
        let pairs = vec![pair(0, 1, 7.1), pair(0, 2, 1.9), pair(1, 2, 0.2)];
        assert_eq!(settled(pairs.clone()), vec![(1, 2)]);
        let near = NearPairs {
            pairs,
            max_difference: verify::DEFAULT_MAX_DIFFERENCE,
        };
        let (line, rank) = (near.max_difference, [0, 1, 2]);
        let links = near.settled(near.links(line), line, &rank);
        let content: Vec<Option<[u8; 32]>> = (0..3_u8).map(|i| Some([i; 32])).collect();
        let groups = dedup::group_with(&content, &links, &near.rejected(line), &rank);
        assert_eq!(groups.dup_group[0], -1);
        assert!(groups.dup_group[1] >= 0 && groups.dup_group[1] == groups.dup_group[2]);
        // Nearly as close to both: the pixels do not choose, the links stay.
        assert_eq!(
            settled(vec![pair(0, 1, 7.1), pair(0, 2, 1.0), pair(1, 2, 0.5)]),
            vec![(0, 2), (1, 2)]
        );
    }

    #[test]
    fn two_copies_of_one_image_are_compared_with_each_other() {
        // 1 and 2 are copies of 0 (and 3 was compared with 0 and turned away): the pair
        // of copies was never compared, and is proposed; pairs already compared are not.
        let pairs = vec![
            pair(0, 1, 1.0),
            pair(0, 2, 2.0),
            pair(0, 3, f32::INFINITY),
            pair(4, 5, 0.5),
        ];
        assert_eq!(
            closing_pairs(&pairs, verify::DEFAULT_MAX_DIFFERENCE),
            vec![(1, 2)]
        );
        let mut compared = pairs;
        compared.push(pair(1, 2, 9.0));
        assert!(closing_pairs(&compared, verify::DEFAULT_MAX_DIFFERENCE).is_empty());
    }

    #[test]
    fn a_copy_turned_away_at_a_glance_from_a_look_alike_goes_to_its_original() {
        // 0: a 64-px look-alike of 1; 2: a copy of 1, turned away from 0 at a glance
        // (infinite difference): 1 and 2 stay together, 0 alone.
        assert_eq!(
            settled(vec![
                pair(0, 1, 1.3),
                pair(1, 2, 0.0),
                pair(0, 2, f32::INFINITY)
            ]),
            vec![(1, 2)]
        );
    }

    #[test]
    fn copies_made_in_opposite_directions_keep_their_original() {
        // 0: an original; 1 and 2: a brighter and a darker copy, copies of 0 but not of
        // each other. Their original is ranked first: nothing is dropped.
        assert_eq!(
            settled(vec![pair(0, 1, 3.0), pair(0, 2, 0.8), pair(1, 2, 6.9)]),
            vec![(0, 1), (0, 2)]
        );
    }
}

#[cfg(test)]
mod probe {
    #[test]
    #[ignore = "a probe for people: CURATE_PROBE=original,copy"]
    fn reproduce_probe() {
        let paths = std::env::var("CURATE_PROBE").expect("CURATE_PROBE=a,b");
        let (a, b) = paths.split_once(',').expect("two paths");
        let load = |p: &str| {
            let bytes = std::fs::read(p).expect("read");
            let d = crate::dataset::decode::decode(&bytes, crate::dataset::DecodeLimits::default())
                .expect("decode");
            (bytes, d)
        };
        let (_, da) = load(a);
        let (bb, db) = load(b);
        let settings = crate::dataset::jpeg::settings(&bb);
        let (cw, ch) = db.rgb.dimensions();
        let copy = super::Picture::new(&db.rgb, cw, ch);
        let (aw, ah) = da.rgb.dimensions();
        let picture = super::Picture::new(&da.rgb, aw, ah);
        let c = super::Attempt::start(
            super::Original::Rgb(&da.rgb, &picture),
            &copy,
            &db.rgb,
            settings.as_ref(),
        )
        .and_then(|a| a.polish());
        eprintln!("{c:?}");
        if let Some(rgba) = &da.rgba {
            let masked = super::Picture::new(&crate::dataset::decode::alpha_masked(rgba), aw, ah);
            let c = super::Attempt::start(
                super::Original::Rgba(rgba, [&picture, &masked]),
                &copy,
                &db.rgb,
                settings.as_ref(),
            )
            .and_then(|a| a.polish());
            eprintln!("with transparency {c:?}");
        }
    }
}
