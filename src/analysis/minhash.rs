//! Near-duplicate captions by MinHash LSH, as web-scale text pipelines deduplicate
//! documents (FineWeb: MinHash over shingles of normalised text, buckets by bands).
//!
//! A caption is normalised the way FineWeb's `simplify_text` does (lower case, punctuation
//! to spaces, digits to `0`, runs of white space to one space) and cut into shingles of
//! [`SHINGLE`] characters. FineWeb shingles documents into word 5-grams; a caption of ten
//! words has six of those, and one substituted word changes five of them (Jaccard about
//! 0.1), so captions are shingled by characters instead, where one changed word of a
//! ten-word caption leaves a Jaccard similarity of about 0.7. Signatures of [`PERMUTATIONS`]
//! minimum hashes are cut into [`BANDS`] bands; captions sharing a band are candidates,
//! and a candidate pair is kept when the Jaccard similarity of the two shingle sets,
//! computed exactly, is at least the threshold ([`DEFAULT_THRESHOLD`]). Groups are the
//! connected components of the kept pairs (as FineWeb's union-find). Written here rather
//! than taken from a crate: the crates on crates.io that do this hash words or bytes
//! their own way and none verifies the candidates; this is about a hundred lines.

use std::collections::HashMap;

use crate::analysis::dedup::UnionFind;

/// Characters per shingle.
pub const SHINGLE: usize = 5;
/// Minimum hashes per signature.
pub const PERMUTATIONS: usize = 128;
/// Bands of the signature (of `PERMUTATIONS / BANDS` rows each): with 32 bands of 4 rows,
/// a pair at Jaccard 0.5 shares a band with probability 0.87, at 0.7 with 0.9999.
pub const BANDS: usize = 32;
/// Jaccard similarity of the shingle sets from which two captions are near duplicates.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Near-duplicate caption groups.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionGroups {
    /// Per caption, its group (`-1` when it has no near duplicate, or no text).
    pub group: Vec<i64>,
    /// How many groups.
    pub groups: usize,
    /// The pairs found, lower index first, with their Jaccard similarity.
    pub pairs: Vec<(u32, u32, f32)>,
}

/// The caption as FineWeb's `simplify_text` leaves it: lower case, punctuation and symbols
/// to spaces, every digit to `0`, white space collapsed and trimmed.
#[must_use]
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c.is_numeric() {
            '0'
        } else if c.is_alphanumeric() {
            c
        } else {
            ' '
        };
        if c == ' ' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The distinct shingles of a normalised caption, hashed, sorted (one shingle of the
/// whole caption when it is shorter than [`SHINGLE`]; none when it is empty).
#[must_use]
pub fn shingles(normalised: &str) -> Vec<u64> {
    let chars: Vec<char> = normalised.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let width = SHINGLE.min(chars.len());
    let mut out: Vec<u64> = chars
        .windows(width)
        .map(|w| {
            // FNV-1a over the characters, then mixed.
            let mut h = 0xcbf2_9ce4_8422_2325_u64;
            for &c in w {
                h ^= u64::from(u32::from(c));
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            mix(h)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The finaliser of `SplitMix64`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The MinHash signature of a shingle set: per permutation, the least of the shingles
/// hashed with that permutation's seed.
#[must_use]
pub fn signature(shingles: &[u64]) -> [u64; PERMUTATIONS] {
    let mut out = [u64::MAX; PERMUTATIONS];
    for &s in shingles {
        for (i, slot) in out.iter_mut().enumerate() {
            let h = mix(s ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            *slot = (*slot).min(h);
        }
    }
    out
}

/// The exact Jaccard similarity of two sorted, distinct shingle lists.
#[must_use]
pub fn jaccard(a: &[u64], b: &[u64]) -> f32 {
    let (mut i, mut j, mut both) = (0, 0, 0_usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        0.0
    } else {
        both as f32 / union as f32
    }
}

/// Groups near-duplicate captions (`None` or empty: no caption) at Jaccard `threshold`.
#[must_use]
pub fn group(captions: &[Option<&str>], threshold: f32) -> CaptionGroups {
    use rayon::prelude::*;
    let sets: Vec<Vec<u64>> = captions
        .par_iter()
        .map(|c| c.map(|t| shingles(&normalise(t))).unwrap_or_default())
        .collect();
    let signatures: Vec<Option<[u64; PERMUTATIONS]>> = sets
        .par_iter()
        .map(|s| (!s.is_empty()).then(|| signature(s)))
        .collect();
    let rows = PERMUTATIONS / BANDS;
    let mut candidates: Vec<(u32, u32)> = Vec::new();
    for band in 0..BANDS {
        let mut buckets: HashMap<u64, Vec<u32>> = HashMap::new();
        for (i, sig) in signatures.iter().enumerate() {
            if let Some(sig) = sig {
                let key = sig[band * rows..(band + 1) * rows]
                    .iter()
                    .fold(band as u64, |h, &v| mix(h ^ v));
                buckets.entry(key).or_default().push(i as u32);
            }
        }
        for members in buckets.values().filter(|m| m.len() > 1) {
            // A bucket of many (one caption repeated a thousand times) links its members to
            // its first: identical signatures, one group either way.
            if members.len() > 64 {
                candidates.extend(members[1..].iter().map(|&m| (members[0], m)));
            } else {
                for (x, &a) in members.iter().enumerate() {
                    candidates.extend(members[x + 1..].iter().map(|&b| (a, b)));
                }
            }
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let pairs: Vec<(u32, u32, f32)> = candidates
        .par_iter()
        .filter_map(|&(a, b)| {
            let j = jaccard(&sets[a as usize], &sets[b as usize]);
            (j >= threshold).then_some((a, b, j))
        })
        .collect();
    let n = captions.len();
    let mut sets_union = UnionFind::new(n);
    for &(a, b, _) in &pairs {
        sets_union.union(a, b);
    }
    let mut size = vec![0_u32; n];
    for i in 0..n as u32 {
        size[sets_union.find(i) as usize] += 1;
    }
    let mut ids: HashMap<u32, i64> = HashMap::new();
    let mut group = vec![-1_i64; n];
    for i in 0..n as u32 {
        let root = sets_union.find(i);
        if size[root as usize] > 1 {
            let next = ids.len() as i64;
            group[i as usize] = *ids.entry(root).or_insert(next);
        }
    }
    CaptionGroups {
        group,
        groups: ids.len(),
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_drops_case_punctuation_and_digits() {
        assert_eq!(
            normalise("  A Dog, running -- on the BEACH in 2019!  "),
            "a dog running on the beach in 0000"
        );
        assert_eq!(normalise("?!"), "");
    }

    #[test]
    fn edited_captions_group_and_other_captions_do_not() {
        let captions = [
            Some("A brown dog runs along the beach at sunset."),
            Some("a brown dog runs along the beach at sunset"),
            Some("A brown dog runs along the sandy beach at sunset."),
            Some("A brown dog walks along the beach at sunset."),
            Some("Two children play chess in a quiet park."),
            Some("A red car parked outside an old bakery."),
            None,
            Some(""),
            Some("Two children play chess in a quiet park!"),
        ];
        let found = group(&captions, DEFAULT_THRESHOLD);
        let g = &found.group;
        assert!(
            g[0] >= 0 && g[1] == g[0] && g[2] == g[0] && g[3] == g[0],
            "{g:?}"
        );
        assert!(g[4] >= 0 && g[8] == g[4] && g[4] != g[0], "{g:?}");
        assert_eq!(g[5], -1);
        assert_eq!((g[6], g[7]), (-1, -1));
        assert_eq!(found.groups, 2);
    }

    #[test]
    fn jaccard_of_the_signature_tracks_the_exact_one() {
        let a = shingles(&normalise("a small boat drifts on a calm green lake"));
        let b = shingles(&normalise("a small boat drifts on a calm blue lake"));
        let exact = jaccard(&a, &b);
        let (sa, sb) = (signature(&a), signature(&b));
        let agree = sa.iter().zip(&sb).filter(|(x, y)| x == y).count();
        let estimate = agree as f32 / PERMUTATIONS as f32;
        assert!((estimate - exact).abs() < 0.15, "{estimate} vs {exact}");
        assert!(exact > 0.5 && exact < 1.0);
    }
}
