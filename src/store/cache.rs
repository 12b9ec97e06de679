//! The per-file cache under `DIR/.curate/`.
//!
//! - `index.parquet`: one row per file seen, keyed by relative path + size + mtime, with
//!   everything the decode pass computed (status, size, hashes, quality measures, feature
//!   vector) and where its thumbnail is.
//! - `thumbs-<generation>.bin`: the JPEG thumbnails, appended back to back; the index holds
//!   each one's offset, length and a checksum (the first 4 bytes of its BLAKE3 hash), checked
//!   on every read, so damaged bytes are never served as a thumbnail.
//!
//! Crash safety: thumbnails are appended and flushed *before* the index that points at them
//! is renamed into place, so the index only ever references bytes that are on disk. Bytes
//! appended by a run that died before its index was written are unreferenced garbage, and an
//! index entry pointing past the end of the pack (a lost or truncated pack) is dropped on
//! load, which re-processes that file, as is one whose thumbnail does not match its checksum
//! (checked on load while the pack is at most [`VERIFY_PACK_BYTES`]; beyond, on read). When
//! more than half of the pack is garbage it is compacted into the next generation.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeBinaryBuilder, FixedSizeListBuilder, Float32Builder};
use arrow_array::{
    Array as _, ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};

use super::atomic;
use super::columns as col;
use crate::analysis::quality::Measures;
use crate::dataset::ScanEntry;
use crate::embed::FEATURE_DIM;

const INDEX_FILE: &str = "index.parquet";
const CACHE_VERSION: &str = "4";

/// Packs up to this size have every thumbnail checked against its checksum when the cache
/// is opened (about 13,000 thumbnails; tens of milliseconds); larger ones on each read.
pub const VERIFY_PACK_BYTES: u64 = 64 << 20;
/// Changes whenever the decode pass computes something differently; a cache made by another
/// version is discarded.
pub const PASS_VERSION: &str = "builtin-v2";

/// Where a thumbnail lives in the pack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThumbRef {
    /// Byte offset in the pack.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// The first 4 bytes of the BLAKE3 hash of its bytes.
    pub check: u32,
}

impl ThumbRef {
    /// The checksum of thumbnail bytes.
    #[must_use]
    pub fn checksum(bytes: &[u8]) -> u32 {
        let hash = blake3::hash(bytes);
        u32::from_le_bytes(hash.as_bytes()[..4].try_into().expect("4 bytes"))
    }

    /// `bytes` read for this thumbnail, or an error when they do not match its checksum.
    fn verified(self, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        if Self::checksum(&bytes) == self.check {
            Ok(bytes)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the cached thumbnail does not match its checksum",
            ))
        }
    }
}

/// What the decode pass learned about a readable image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageFacts {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// blake3 of the file bytes.
    pub content_hash: [u8; 32],
    /// Length of the image's bytes: the file's size, or for a member of a shard or a row
    /// of a parquet file its own (where the record's `size` is its container's).
    pub bytes: u64,
    /// 64-bit DCT perceptual hash.
    pub phash: u64,
    /// For an image with transparent pixels, the pHashes of its two usual flattened views
    /// (alpha dropped, over white; see [`crate::dataset::decode::flattened`]): a copy saved
    /// as a JPEG looks like one of them.
    pub flat_phashes: Option<[u64; 2]>,
    /// Raw quality measurements.
    pub measures: Measures,
    /// The built-in feature vector ([`FEATURE_DIM`] floats).
    pub feature: Vec<f32>,
    /// The thumbnail in the pack.
    pub thumb: ThumbRef,
}

/// The outcome of the decode pass for one file.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The image was read.
    Ok(ImageFacts),
    /// Not a file on disk: a row of imported embeddings (`--embeddings`) whose image is
    /// elsewhere. Analysed from its vector alone; never cached.
    VectorOnly,
    /// It could not be: `kind` is the report status, `message` the reason.
    Failed {
        /// Machine-readable kind (see [`crate::dataset::FileError::kind`]).
        kind: String,
        /// Human-readable reason.
        message: String,
    },
}

/// One cached file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileRecord {
    /// Relative path (the stable id).
    pub rel_path: String,
    /// File size when processed.
    pub size: u64,
    /// Modification time when processed.
    pub mtime_ns: i64,
    /// What the pass found.
    pub outcome: Outcome,
}

impl FileRecord {
    /// The facts when the file was readable.
    #[must_use]
    pub fn facts(&self) -> Option<&ImageFacts> {
        match &self.outcome {
            Outcome::Ok(facts) => Some(facts),
            Outcome::VectorOnly | Outcome::Failed { .. } => None,
        }
    }
}

/// The cache of one dataset folder.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    records: HashMap<String, FileRecord>,
    generation: u64,
    /// Why an existing index was not used, if it was not.
    pub discarded: Option<String>,
}

impl Cache {
    /// Opens the cache of `root`, loading its index when it is present and valid.
    #[must_use]
    pub fn open(root: &Path) -> Self {
        let dir = super::curate_dir(root);
        let mut cache = Self {
            dir,
            records: HashMap::new(),
            generation: 0,
            discarded: None,
        };
        let index = cache.dir.join(INDEX_FILE);
        if index.exists() {
            match read_index(&index) {
                Ok((records, generation)) => {
                    cache.generation = generation;
                    let pack_len = fs::metadata(cache.pack_path()).map_or(0, |m| m.len());
                    // A small pack is read once and every thumbnail checked; a record whose
                    // thumbnail is lost or damaged is dropped (its file is processed again).
                    let pack = (pack_len <= VERIFY_PACK_BYTES)
                        .then(|| fs::read(cache.pack_path()).ok())
                        .flatten();
                    cache.records = records
                        .into_iter()
                        .filter(|r| {
                            r.facts().is_none_or(|f| {
                                let end = f.thumb.offset + u64::from(f.thumb.len);
                                end <= pack_len
                                    && pack.as_ref().is_none_or(|pack| {
                                        pack.get(f.thumb.offset as usize..end as usize).is_some_and(
                                            |bytes| ThumbRef::checksum(bytes) == f.thumb.check,
                                        )
                                    })
                            })
                        })
                        .map(|r| (r.rel_path.clone(), r))
                        .collect();
                }
                Err(err) => cache.discarded = Some(err.to_string()),
            }
        }
        cache
    }

    /// The folder the cache lives in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of cached records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The cached record of `entry` if the file is unchanged (same size and mtime).
    #[must_use]
    pub fn lookup(&self, entry: &ScanEntry) -> Option<&FileRecord> {
        self.records
            .get(&entry.rel_path)
            .filter(|r| r.size == entry.size && r.mtime_ns == entry.mtime_ns && entry.mtime_ns != 0)
    }

    /// The current thumbnail pack file.
    #[must_use]
    pub fn pack_path(&self) -> PathBuf {
        pack_path(&self.dir, self.generation)
    }

    /// Opens the thumbnail pack for appending.
    pub fn appender(&self) -> io::Result<ThumbAppender> {
        fs::create_dir_all(&self.dir)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.pack_path())?;
        let end = file.seek(SeekFrom::End(0))?;
        Ok(ThumbAppender { file, end })
    }

    /// Reads one thumbnail's bytes.
    pub fn read_thumbnail(&self, thumb: ThumbRef) -> io::Result<Vec<u8>> {
        ThumbReader::open(&self.pack_path())?.read(thumb)
    }

    /// A reader that keeps the pack open, for reading many thumbnails.
    pub fn thumbnail_reader(&self) -> io::Result<ThumbReader> {
        Ok(ThumbReader {
            file: File::open(self.pack_path())?,
        })
    }

    /// Replaces the index with `records` (the files present now: deleted files drop out),
    /// compacting the pack first when it is mostly garbage. Updates thumbnail references
    /// in `records` when the pack moves.
    pub fn save(&mut self, records: &mut [FileRecord]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let pack_len = fs::metadata(self.pack_path()).map_or(0, |m| m.len());
        let live: u64 = records
            .iter()
            .filter_map(FileRecord::facts)
            .map(|f| u64::from(f.thumb.len))
            .sum();
        if pack_len > (8 << 20) && live * 2 < pack_len {
            self.compact(records)?;
        }
        self.checkpoint(records)
    }

    /// Replaces the index with `records` without moving the pack: safe while a
    /// [`ThumbAppender`] is open.
    pub fn checkpoint(&mut self, records: &[FileRecord]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        write_index(&self.dir.join(INDEX_FILE), records, self.generation)?;
        self.records = records
            .iter()
            .map(|r| (r.rel_path.clone(), r.clone()))
            .collect();
        // Packs of other generations are no longer referenced.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            let current = pack_name(self.generation);
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_pack = name
                    .strip_prefix("thumbs-")
                    .and_then(|rest| rest.strip_suffix(".bin"))
                    .is_some();
                if is_pack && name != current {
                    fs::remove_file(entry.path()).ok();
                }
            }
        }
        Ok(())
    }

    fn compact(&mut self, records: &mut [FileRecord]) -> io::Result<()> {
        let old = self.pack_path();
        let next = self.generation + 1;
        let mut source = File::open(&old)?;
        atomic::write_with(&pack_path(&self.dir, next), |out| {
            let mut offset = 0;
            let mut buffer = Vec::new();
            for record in records.iter_mut() {
                if let Outcome::Ok(facts) = &mut record.outcome {
                    buffer.resize(facts.thumb.len as usize, 0);
                    source.seek(SeekFrom::Start(facts.thumb.offset))?;
                    source.read_exact(&mut buffer)?;
                    out.write_all(&buffer)?;
                    facts.thumb.offset = offset;
                    offset += u64::from(facts.thumb.len);
                }
            }
            Ok(())
        })?;
        self.generation = next;
        Ok(())
    }
}

fn pack_name(generation: u64) -> String {
    format!("thumbs-{generation}.bin")
}

fn pack_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(pack_name(generation))
}

/// Appends thumbnails to the pack.
#[derive(Debug)]
pub struct ThumbAppender {
    file: File,
    end: u64,
}

impl ThumbAppender {
    /// Appends one thumbnail and returns where it went.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<ThumbRef> {
        self.file.write_all(bytes)?;
        let thumb = ThumbRef {
            offset: self.end,
            len: bytes.len() as u32,
            check: ThumbRef::checksum(bytes),
        };
        self.end += bytes.len() as u64;
        Ok(thumb)
    }

    /// Flushes everything appended so far to disk (before an index may refer to it).
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Reads thumbnails from an open pack.
#[derive(Debug)]
pub struct ThumbReader {
    file: File,
}

impl ThumbReader {
    /// Opens the pack at `pack`.
    pub fn open(pack: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(pack)?,
        })
    }

    /// Reads one thumbnail's bytes.
    pub fn read(&mut self, thumb: ThumbRef) -> io::Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(thumb.offset))?;
        let mut bytes = vec![0; thumb.len as usize];
        self.file.read_exact(&mut bytes)?;
        thumb.verified(bytes)
    }
}

fn index_schema(generation: u64) -> Schema {
    let metadata = HashMap::from([
        ("curate.cache_version".to_owned(), CACHE_VERSION.to_owned()),
        ("curate.pass".to_owned(), PASS_VERSION.to_owned()),
        ("curate.generation".to_owned(), generation.to_string()),
    ]);
    Schema::new_with_metadata(
        vec![
            Field::new("path", DataType::Utf8, false),
            Field::new("size", DataType::UInt64, false),
            Field::new("mtime_ns", DataType::Int64, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, true),
            Field::new("width", DataType::UInt32, false),
            Field::new("height", DataType::UInt32, false),
            Field::new("content_hash", DataType::FixedSizeBinary(32), true),
            Field::new("phash", DataType::UInt64, false),
            Field::new("phash_alpha_dropped", DataType::UInt64, true),
            Field::new("phash_over_white", DataType::UInt64, true),
            Field::new("brightness_p99", DataType::Float32, false),
            Field::new("brightness_p5", DataType::Float32, false),
            Field::new("laplacian_var", DataType::Float32, false),
            Field::new("entropy_bits", DataType::Float32, false),
            Field::new("chroma", DataType::Float32, false),
            Field::new("noise_sigma", DataType::Float32, false),
            Field::new("thumb_offset", DataType::UInt64, false),
            Field::new("thumb_len", DataType::UInt32, false),
            Field::new("thumb_check", DataType::UInt32, false),
            Field::new("image_bytes", DataType::UInt64, false),
            Field::new(
                "feature",
                DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float32, false)),
                    FEATURE_DIM as i32,
                ),
                true,
            ),
        ],
        metadata,
    )
}

/// Records under a non-UTF-8 name have a lossy key that may collide, and an unreadable file
/// may become readable without a new mtime (a permission fix): neither is cached. Both are
/// cheap, since neither file is decoded.
fn is_cacheable(record: &FileRecord) -> bool {
    !matches!(&record.outcome, Outcome::Failed { kind, .. } if kind == "non_utf8_name" || kind == "unreadable")
        && !matches!(record.outcome, Outcome::VectorOnly)
}

fn write_index(path: &Path, records: &[FileRecord], generation: u64) -> io::Result<()> {
    let schema = Arc::new(index_schema(generation));
    let cacheable: Vec<&FileRecord> = records.iter().filter(|r| is_cacheable(r)).collect();
    atomic::write_with(path, |out| {
        super::sealed::write_parquet(
            out,
            &schema,
            cacheable
                .chunks(65_536)
                .map(|chunk| index_batch(&schema, chunk)),
        )
    })
}

fn index_batch(
    schema: &Arc<Schema>,
    records: &[&FileRecord],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let facts = |f: fn(&ImageFacts) -> f32| -> ArrayRef {
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0.0, f))
                .collect::<Float32Array>(),
        )
    };
    let mut hashes = FixedSizeBinaryBuilder::with_capacity(records.len(), 32);
    let mut features = FixedSizeListBuilder::with_capacity(
        Float32Builder::with_capacity(records.len() * FEATURE_DIM),
        FEATURE_DIM as i32,
        records.len(),
    )
    .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
    for record in records {
        if let Some(f) = record.facts() {
            hashes.append_value(f.content_hash)?;
            features.values().append_slice(&f.feature);
            features.append(true);
        } else {
            hashes.append_null();
            features.values().append_slice(&[0.0; FEATURE_DIM]);
            features.append(false);
        }
    }
    let (status, error): (Vec<&str>, Vec<Option<&str>>) = records
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Ok(_) | Outcome::VectorOnly => ("ok", None),
            Outcome::Failed { kind, message } => (kind.as_str(), Some(message.as_str())),
        })
        .unzip();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            records
                .iter()
                .map(|r| Some(r.rel_path.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(records.iter().map(|r| r.size).collect::<UInt64Array>()),
        Arc::new(records.iter().map(|r| r.mtime_ns).collect::<Int64Array>()),
        Arc::new(status.into_iter().map(Some).collect::<StringArray>()),
        Arc::new(error.into_iter().collect::<StringArray>()),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.width))
                .collect::<UInt32Array>(),
        ),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.height))
                .collect::<UInt32Array>(),
        ),
        Arc::new(hashes.finish()),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.phash))
                .collect::<UInt64Array>(),
        ),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().and_then(|f| f.flat_phashes).map(|h| h[0]))
                .collect::<UInt64Array>(),
        ),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().and_then(|f| f.flat_phashes).map(|h| h[1]))
                .collect::<UInt64Array>(),
        ),
        facts(|f| f.measures.brightness_p99),
        facts(|f| f.measures.brightness_p5),
        facts(|f| f.measures.laplacian_var),
        facts(|f| f.measures.entropy_bits),
        facts(|f| f.measures.chroma),
        facts(|f| f.measures.noise),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.thumb.offset))
                .collect::<UInt64Array>(),
        ),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.thumb.len))
                .collect::<UInt32Array>(),
        ),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.thumb.check))
                .collect::<UInt32Array>(),
        ),
        Arc::new(
            records
                .iter()
                .map(|r| r.facts().map_or(0, |f| f.bytes))
                .collect::<UInt64Array>(),
        ),
        Arc::new(features.finish()),
    ];
    RecordBatch::try_new(schema.clone(), columns)
}

/// Why an index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// I/O or parquet trouble.
    #[error("unreadable cache index: {0}")]
    Unreadable(String),
    /// Written by a different version of curate.
    #[error("cache made by another version of curate ({0}); rebuilding")]
    Version(String),
    /// A column is missing or has the wrong type.
    #[error("cache index is damaged: {0}")]
    Column(#[from] col::ColumnError),
}

fn read_index(path: &Path) -> Result<(Vec<FileRecord>, u64), IndexError> {
    crate::guard::catch(|| read_index_unguarded(path))
        .unwrap_or_else(|why| Err(IndexError::Unreadable(format!("damaged parquet ({why})"))))
}

fn read_index_unguarded(path: &Path) -> Result<(Vec<FileRecord>, u64), IndexError> {
    let unreadable = |e: &dyn std::fmt::Display| IndexError::Unreadable(e.to_string());
    let builder = super::sealed::read_parquet(path).map_err(|e| unreadable(&e))?;
    let metadata = builder.schema().metadata().clone();
    let version = format!(
        "{}/{}",
        metadata
            .get("curate.cache_version")
            .map_or("?", String::as_str),
        metadata.get("curate.pass").map_or("?", String::as_str)
    );
    if version != format!("{CACHE_VERSION}/{PASS_VERSION}") {
        return Err(IndexError::Version(version));
    }
    let generation = metadata
        .get("curate.generation")
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .map_err(|e| unreadable(&e))?;
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let paths = col::string(&batch, "path")?;
        let sizes = col::u64s(&batch, "size")?;
        let mtimes = col::i64s(&batch, "mtime_ns")?;
        let status = col::string(&batch, "status")?;
        let error = col::string(&batch, "error")?;
        let width = col::u32s(&batch, "width")?;
        let height = col::u32s(&batch, "height")?;
        let hashes = col::fixed_binary(&batch, "content_hash")?;
        let phash = col::u64s(&batch, "phash")?;
        let dropped = col::u64s(&batch, "phash_alpha_dropped")?;
        let white = col::u64s(&batch, "phash_over_white")?;
        let p99 = col::f32s(&batch, "brightness_p99")?;
        let p5 = col::f32s(&batch, "brightness_p5")?;
        let lap = col::f32s(&batch, "laplacian_var")?;
        let entropy = col::f32s(&batch, "entropy_bits")?;
        let chroma = col::f32s(&batch, "chroma")?;
        let noise = col::f32s(&batch, "noise_sigma")?;
        let offsets = col::u64s(&batch, "thumb_offset")?;
        let lens = col::u32s(&batch, "thumb_len")?;
        let checks = col::u32s(&batch, "thumb_check")?;
        let image_bytes = col::u64s(&batch, "image_bytes")?;
        let features = col::fixed_list(&batch, "feature")?;
        let values = features
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or(IndexError::Column(col::ColumnError::from_name("feature")))?;
        if features.value_length() as usize != FEATURE_DIM {
            return Err(IndexError::Version("feature length".to_owned()));
        }
        for row in 0..batch.num_rows() {
            let outcome =
                if status.value(row) == "ok" && features.is_valid(row) && hashes.is_valid(row) {
                    let start = features.value_offset_at(row);
                    Outcome::Ok(ImageFacts {
                        width: width.value(row),
                        height: height.value(row),
                        content_hash: hashes
                            .value(row)
                            .try_into()
                            .map_err(|_| unreadable(&"hash length"))?,
                        bytes: image_bytes.value(row),
                        phash: phash.value(row),
                        flat_phashes: (dropped.is_valid(row) && white.is_valid(row))
                            .then(|| [dropped.value(row), white.value(row)]),
                        measures: Measures {
                            brightness_p99: p99.value(row),
                            brightness_p5: p5.value(row),
                            laplacian_var: lap.value(row),
                            entropy_bits: entropy.value(row),
                            chroma: chroma.value(row),
                            noise: noise.value(row),
                        },
                        feature: values.values()[start..start + FEATURE_DIM].to_vec(),
                        thumb: ThumbRef {
                            offset: offsets.value(row),
                            len: lens.value(row),
                            check: checks.value(row),
                        },
                    })
                } else {
                    Outcome::Failed {
                        kind: status.value(row).to_owned(),
                        message: if error.is_valid(row) {
                            error.value(row).to_owned()
                        } else {
                            String::new()
                        },
                    }
                };
            records.push(FileRecord {
                rel_path: paths.value(row).to_owned(),
                size: sizes.value(row),
                mtime_ns: mtimes.value(row),
                outcome,
            });
        }
    }
    Ok((records, generation))
}
