//! Model embeddings cached per content hash in `DIR/.curate/embeddings-<model>.bin`, as
//! half floats: a re-run, a renamed or a copied file costs nothing; another model gets its
//! own file.
//!
//! Layout (little-endian): magic `CEMB`, version u32, dim u32, count u64, then `count`
//! records of a 32-byte key and `dim` f16 values. Keys are blake3 content hashes for images
//! and [`text_key`] for texts. The file is sealed with a checksum (see [`super::sealed`]): a
//! damaged one is ignored (everything is recomputed).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use half::f16;

const MAGIC: &[u8; 4] = b"CEMB";
const VERSION: u32 = 2;
const HEADER: usize = 4 + 4 + 4 + 8;

/// The key of a text's embedding (blake3 of the text, in its own domain so it never equals
/// an image's content hash).
#[must_use]
pub fn text_key(text: &str) -> [u8; 32] {
    *blake3::Hasher::new_derive_key("curate text embedding v1")
        .update(text.as_bytes())
        .finalize()
        .as_bytes()
}

/// Embeddings of one model.
#[derive(Debug)]
pub struct EmbeddingCache {
    path: PathBuf,
    dim: usize,
    entries: HashMap<[u8; 32], Vec<f16>>,
    added: usize,
}

impl EmbeddingCache {
    /// Opens the cache of the model identified by `model` (see [`model_digest`]) for
    /// `dim`-wide vectors; empty when there is none yet or it cannot be read.
    #[must_use]
    pub fn open(root: &Path, model: &[u8; 32], dim: usize) -> Self {
        let name = format!(
            "embeddings-{}.bin",
            &blake3::Hash::from_bytes(*model).to_hex()[..16]
        );
        let path = super::curate_dir(root).join(name);
        let entries = super::sealed::read(&path)
            .and_then(|bytes| parse(&bytes, dim))
            .unwrap_or_default();
        Self {
            path,
            dim,
            entries,
            added: 0,
        }
    }

    /// Vector width.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of cached vectors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached vector of `key`.
    #[must_use]
    pub fn get(&self, key: &[u8; 32]) -> Option<Vec<f32>> {
        self.entries
            .get(key)
            .map(|v| v.iter().map(|h| h.to_f32()).collect())
    }

    /// Whether `key` is cached.
    #[must_use]
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.contains_key(key)
    }

    /// Caches `values` (`dim` floats) under `key`.
    pub fn insert(&mut self, key: [u8; 32], values: &[f32]) {
        debug_assert_eq!(values.len(), self.dim);
        self.entries
            .insert(key, values.iter().map(|&v| f16::from_f32(v)).collect());
        self.added += 1;
    }

    /// Writes the cache (atomically) when something was added.
    pub fn save(&mut self) -> io::Result<()> {
        if self.added == 0 {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(HEADER + self.entries.len() * (32 + self.dim * 2));
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(self.dim as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        let mut keys: Vec<&[u8; 32]> = self.entries.keys().collect();
        keys.sort_unstable();
        for key in keys {
            bytes.extend_from_slice(key);
            for v in &self.entries[key] {
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        super::sealed::write(&self.path, &bytes)?;
        self.added = 0;
        Ok(())
    }
}

fn parse(bytes: &[u8], dim: usize) -> Option<HashMap<[u8; 32], Vec<f16>>> {
    if bytes.len() < HEADER
        || &bytes[..4] != MAGIC
        || bytes[4..8] != VERSION.to_le_bytes()
        || u32::from_le_bytes(bytes[8..12].try_into().ok()?) as usize != dim
    {
        return None;
    }
    let count = usize::try_from(u64::from_le_bytes(bytes[12..20].try_into().ok()?)).ok()?;
    let record = 32 + dim * 2;
    if bytes.len() != HEADER + count.checked_mul(record)? {
        return None;
    }
    Some(
        bytes[HEADER..]
            .chunks_exact(record)
            .map(|r| {
                let key: [u8; 32] = r[..32].try_into().expect("32 bytes");
                let values = r[32..]
                    .chunks_exact(2)
                    .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
                    .collect();
                (key, values)
            })
            .collect(),
    )
}

/// Identifies a model folder's weights and configuration without reading the whole weights
/// file: blake3 over `config.json` (when the folder has one), the weights file's size and its
/// first and last MiB.
pub fn model_digest(dir: &Path, weights: &str) -> io::Result<[u8; 32]> {
    use std::io::{Read, Seek, SeekFrom};
    let mut hasher = blake3::Hasher::new();
    match std::fs::read(dir.join("config.json")) {
        Ok(config) => hasher.update(&config),
        Err(err) if err.kind() == io::ErrorKind::NotFound => hasher.update(b"no config.json"),
        Err(err) => return Err(err),
    };
    let mut file = std::fs::File::open(dir.join(weights))?;
    let size = file.metadata()?.len();
    hasher.update(&size.to_le_bytes());
    let mut chunk = vec![0_u8; (1 << 20).min(size as usize)];
    file.read_exact(&mut chunk)?;
    hasher.update(&chunk);
    file.seek(SeekFrom::Start(size - chunk.len() as u64))?;
    file.read_exact(&mut chunk)?;
    hasher.update(&chunk);
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let model = [7_u8; 32];
        let mut cache = EmbeddingCache::open(dir.path(), &model, 3);
        assert!(cache.is_empty());
        cache.insert([1; 32], &[0.5, -0.25, 1.0]);
        cache.insert(text_key("a cat"), &[0.1, 0.2, 0.3]);
        cache.save().unwrap();
        let again = EmbeddingCache::open(dir.path(), &model, 3);
        assert_eq!(again.len(), 2);
        assert_eq!(again.get(&[1; 32]).unwrap(), vec![0.5, -0.25, 1.0]);
        let t = again.get(&text_key("a cat")).unwrap();
        assert!((t[1] - 0.2).abs() < 1e-3);
        // Another width or another model sees nothing.
        assert!(EmbeddingCache::open(dir.path(), &model, 4).is_empty());
        assert!(EmbeddingCache::open(dir.path(), &[8; 32], 3).is_empty());
        // A truncated file is ignored, not trusted.
        let path = again.path.clone();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(EmbeddingCache::open(dir.path(), &model, 3).is_empty());
    }
}
