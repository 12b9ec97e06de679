//! The shared k-means clustering and SemDeDup's within-cluster pairs, cached in
//! `DIR/.curate/clusters.bin` and keyed by a digest of the feature matrix, so a warm run
//! (and the app's threshold slider) needs neither the clustering nor the pair search again;
//! and the UMAP layout, in `DIR/.curate/layout.bin`.
//!
//! Layout (little-endian): magic `CSEM`, version u32, digest `[u8; 32]`, k u64, dim u64,
//! n u64, `k·dim` f32 centroids, `n` u32 assignments, pair floor f32 (NaN: no pairs), pair
//! count u64, then per pair `a` u32, `b` u32, similarity f32. Both files are sealed with a
//! checksum (see [`super::sealed`]).

use std::path::Path;

use super::sealed;
use crate::analysis::kmeans::KMeans;
use crate::analysis::semdedup::Pair;

const MAGIC: &[u8; 4] = b"CSEM";
const VERSION: u32 = 2;
const FILE: &str = "clusters.bin";

/// What the cache holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Cached {
    /// The clustering.
    pub clusters: KMeans,
    /// The within-cluster pairs at or above `floor`, most similar first, when computed.
    pub pairs: Option<(f32, Vec<Pair>)>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(len)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }
}

/// The cached clustering of `root` if it was computed from the matrix with this digest
/// (anything else, or a damaged file, is `None`: the caller recomputes).
#[must_use]
pub fn load(root: &Path, expected: &[u8; 32]) -> Option<Cached> {
    let bytes = sealed::read(&super::curate_dir(root).join(FILE))?;
    let mut r = Reader {
        bytes: &bytes,
        at: 0,
    };
    if r.take(4)? != MAGIC || r.u32()? != VERSION || r.take(32)? != expected {
        return None;
    }
    let (k, dim, n) = (r.len()?, r.len()?, r.len()?);
    // Sizes are checked against the file before anything is allocated.
    let needed = k.checked_mul(dim)?.checked_add(n)?.checked_mul(4)?;
    if needed > bytes.len() {
        return None;
    }
    let centroids: Vec<f32> = (0..k * dim).map(|_| r.f32()).collect::<Option<_>>()?;
    let assignment: Vec<u32> = (0..n).map(|_| r.u32()).collect::<Option<_>>()?;
    if assignment.iter().any(|&c| c as usize >= k) {
        return None;
    }
    let floor = r.f32()?;
    let count = r.len()?;
    if count.checked_mul(12)? > bytes.len() {
        return None;
    }
    let pairs: Vec<Pair> = (0..count)
        .map(|_| {
            Some(Pair {
                a: r.u32()?,
                b: r.u32()?,
                similarity: r.f32()?,
            })
        })
        .collect::<Option<_>>()?;
    if r.at != bytes.len() || pairs.iter().any(|p| p.a as usize >= n || p.b as usize >= n) {
        return None;
    }
    Some(Cached {
        clusters: KMeans {
            k,
            dim,
            centroids,
            assignment,
        },
        pairs: (!floor.is_nan()).then_some((floor, pairs)),
    })
}

/// Saves the clustering (and pairs) with the digest of their feature matrix, atomically.
pub fn save(root: &Path, digest: &[u8; 32], cached: &Cached) -> std::io::Result<()> {
    let c = &cached.clusters;
    let pairs = cached.pairs.as_ref();
    let mut bytes = Vec::with_capacity(
        72 + (c.centroids.len() + c.assignment.len()) * 4 + pairs.map_or(0, |p| p.1.len() * 12),
    );
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(digest);
    for len in [c.k, c.dim, c.assignment.len()] {
        bytes.extend_from_slice(&(len as u64).to_le_bytes());
    }
    for v in &c.centroids {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for a in &c.assignment {
        bytes.extend_from_slice(&a.to_le_bytes());
    }
    bytes.extend_from_slice(&pairs.map_or(f32::NAN, |p| p.0).to_le_bytes());
    bytes.extend_from_slice(&(pairs.map_or(0, |p| p.1.len()) as u64).to_le_bytes());
    for p in pairs.map_or(&[][..], |p| &p.1) {
        bytes.extend_from_slice(&p.a.to_le_bytes());
        bytes.extend_from_slice(&p.b.to_le_bytes());
        bytes.extend_from_slice(&p.similarity.to_le_bytes());
    }
    sealed::write(&super::curate_dir(root).join(FILE), &bytes)
}

const LAYOUT_MAGIC: &[u8; 4] = b"CLAY";
const LAYOUT_FILE: &str = "layout.bin";

/// The cached 2-D layout of `root` if it was computed for this digest (of the features and
/// the layout's settings) and has `n` points.
#[must_use]
pub fn load_layout(root: &Path, expected: &[u8; 32], n: usize) -> Option<Vec<[f32; 2]>> {
    let bytes = sealed::read(&super::curate_dir(root).join(LAYOUT_FILE))?;
    let mut r = Reader {
        bytes: &bytes,
        at: 0,
    };
    if r.take(4)? != LAYOUT_MAGIC || r.u32()? != VERSION || r.take(32)? != expected {
        return None;
    }
    if r.len()? != n || bytes.len() != r.at + n * 8 {
        return None;
    }
    let points: Vec<[f32; 2]> = (0..n)
        .map(|_| Some([r.f32()?, r.f32()?]))
        .collect::<Option<_>>()?;
    points
        .iter()
        .all(|p| p[0].is_finite() && p[1].is_finite())
        .then_some(points)
}

/// Saves a 2-D layout with its digest, atomically.
pub fn save_layout(root: &Path, digest: &[u8; 32], points: &[[f32; 2]]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(48 + points.len() * 8);
    bytes.extend_from_slice(LAYOUT_MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(digest);
    bytes.extend_from_slice(&(points.len() as u64).to_le_bytes());
    for p in points {
        bytes.extend_from_slice(&p[0].to_le_bytes());
        bytes.extend_from_slice(&p[1].to_le_bytes());
    }
    sealed::write(&super::curate_dir(root).join(LAYOUT_FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn round_trips_and_refuses_other_or_damaged_data() {
        let dir = tempfile::tempdir().unwrap();
        let cached = Cached {
            clusters: KMeans {
                k: 2,
                dim: 3,
                centroids: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                assignment: vec![0, 1, 1, 0],
            },
            pairs: Some((
                0.9,
                vec![Pair {
                    a: 1,
                    b: 2,
                    similarity: 0.97,
                }],
            )),
        };
        let digest = [7; 32];
        save(dir.path(), &digest, &cached).unwrap();
        assert_eq!(load(dir.path(), &digest), Some(cached.clone()));
        assert_eq!(load(dir.path(), &[8; 32]), None);
        let file = super::super::curate_dir(dir.path()).join(FILE);
        let bytes = fs::read(&file).unwrap();
        fs::write(&file, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(load(dir.path(), &digest), None);
        let no_pairs = Cached {
            pairs: None,
            ..cached
        };
        save(dir.path(), &digest, &no_pairs).unwrap();
        assert_eq!(load(dir.path(), &digest), Some(no_pairs));

        let layout = vec![[1.0, 2.0], [-3.0, 0.5]];
        save_layout(dir.path(), &digest, &layout).unwrap();
        assert_eq!(load_layout(dir.path(), &digest, 2), Some(layout));
        assert_eq!(load_layout(dir.path(), &digest, 3), None);
        assert_eq!(load_layout(dir.path(), &[0; 32], 2), None);
    }
}
