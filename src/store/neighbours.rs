//! The k-NN graph cached in `DIR/.curate/neighbours.bin`, keyed by a digest of the exact
//! feature matrix it was computed from, so a warm run skips the matrix products.
//!
//! Layout (little-endian): magic `CKNN`, version u32, digest `[u8; 32]`, n u64, k u64, then `n·k`
//! u32 indices and `n·k` f32 similarities; sealed with a checksum (see [`super::sealed`]).

use std::path::Path;

use super::sealed;
use crate::analysis::knn::Neighbours;

const MAGIC: &[u8; 4] = b"CKNN";
const VERSION: u32 = 2;
const FILE: &str = "neighbours.bin";

/// The digest that identifies a feature matrix (and the `k` asked of it).
#[must_use]
pub fn digest(features: &[f32], dim: usize, k: usize) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(dim as u64).to_le_bytes());
    hasher.update(&(k as u64).to_le_bytes());
    for value in features {
        hasher.update(&value.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// The cached graph of `root`, if it was computed from the matrix with this digest.
#[must_use]
pub fn load(root: &Path, expected: &[u8; 32]) -> Option<Neighbours> {
    let bytes = sealed::read(&super::curate_dir(root).join(FILE))?;
    let header = 4 + 4 + 32 + 8 + 8;
    if bytes.len() < header
        || &bytes[..4] != MAGIC
        || bytes[4..8] != VERSION.to_le_bytes()
        || &bytes[8..40] != expected
    {
        return None;
    }
    let n = usize::try_from(u64::from_le_bytes(bytes[40..48].try_into().ok()?)).ok()?;
    let k = usize::try_from(u64::from_le_bytes(bytes[48..56].try_into().ok()?)).ok()?;
    let count = n.checked_mul(k)?;
    if bytes.len() != header + count * 8 {
        return None;
    }
    let words = |at: usize| {
        bytes[at..at + count * 4]
            .chunks_exact(4)
            .map(|w| [w[0], w[1], w[2], w[3]])
    };
    Some(Neighbours {
        k,
        indices: words(header).map(u32::from_le_bytes).collect(),
        similarities: words(header + count * 4).map(f32::from_le_bytes).collect(),
    })
}

/// Saves the graph with its digest.
pub fn save(root: &Path, digest: &[u8; 32], neighbours: &Neighbours) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(56 + neighbours.indices.len() * 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(digest);
    bytes.extend_from_slice(&(neighbours.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&(neighbours.k as u64).to_le_bytes());
    for index in &neighbours.indices {
        bytes.extend_from_slice(&index.to_le_bytes());
    }
    for sim in &neighbours.similarities {
        bytes.extend_from_slice(&sim.to_le_bytes());
    }
    sealed::write(&super::curate_dir(root).join(FILE), &bytes)
}
