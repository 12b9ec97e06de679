//! Cache files that carry their own checksum: the payload followed by its 32-byte BLAKE3
//! hash. A file whose hash does not match (a flipped bit, a truncation, another program's
//! file under the name) reads as absent, so the caller recomputes it and writes it again;
//! damaged bytes are never served. Writes are atomic (see [`super::atomic`]).
//!
//! Parquet files (the cache index, the report) stay plain parquet, readable by any reader,
//! and carry the checksum in their key-value metadata (see [`write_parquet`]): parquet's
//! own page checksums are optional and the writer used here does not write them, so a
//! flipped bit in a data page could otherwise decode to other numbers.

use std::io;
use std::path::Path;

use super::atomic;

/// Length of the trailing checksum.
const HASH: usize = 32;

/// Writes `payload` and its checksum to `path`, atomically.
pub fn write(path: &Path, payload: &[u8]) -> io::Result<()> {
    let hash = blake3::hash(payload);
    atomic::write_with(path, |w| {
        use std::io::Write as _;
        w.write_all(payload)?;
        w.write_all(hash.as_bytes())
    })
}

/// The payload of the sealed file at `path`; `None` when it is missing, unreadable or does
/// not match its checksum.
#[must_use]
pub fn read(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(path).ok()?;
    let split = bytes.len().checked_sub(HASH)?;
    if blake3::hash(&bytes[..split]).as_bytes() != &bytes[split..] {
        return None;
    }
    bytes.truncate(split);
    Some(bytes)
}

/// The key-value metadata entry of a parquet file written by [`write_parquet`]:
/// `<length>:<BLAKE3 hex>` of the file's first `length` bytes (its row groups).
pub const PARQUET_KEY: &str = "curate.blake3";

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: io::Write> io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `batches` to `out` as one parquet file whose key-value metadata holds
/// ([`PARQUET_KEY`]) the length and checksum of its row groups, everything before the
/// footer's indexes, which [`read_parquet`] checks.
pub fn write_parquet<W: io::Write + Send>(
    out: W,
    schema: &arrow_schema::SchemaRef,
    batches: impl IntoIterator<Item = Result<arrow_array::RecordBatch, arrow_schema::ArrowError>>,
) -> io::Result<()> {
    let hashing = Hashing {
        inner: out,
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    let mut writer = parquet::arrow::ArrowWriter::try_new(hashing, schema.clone(), None)
        .map_err(io::Error::other)?;
    for batch in batches {
        writer
            .write(&batch.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    // Every row group through the hasher before the footer is written.
    writer.flush().map_err(io::Error::other)?;
    writer.sync()?;
    let seal = {
        let inner = writer.inner();
        format!("{}:{}", inner.written, inner.hasher.finalize().to_hex())
    };
    writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
        PARQUET_KEY.to_owned(),
        seal,
    ));
    writer.close().map_err(io::Error::other)?;
    Ok(())
}

/// A reader of the parquet file at `path` written by [`write_parquet`], once its checksum
/// matched. An `InvalidData` error names what is wrong: not parquet, no checksum (another
/// program's file, or an older curate's), or a checksum that does not match (damage).
pub fn read_parquet(
    path: &Path,
) -> io::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<bytes::Bytes>> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let bytes = bytes::Bytes::from(std::fs::read(path)?);
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .map_err(|e| bad(e.to_string()))?;
    let seal = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == PARQUET_KEY))
        .and_then(|e| e.value.clone())
        .ok_or_else(|| bad("no checksum: not written by this version of curate".to_owned()))?;
    let matches = seal.split_once(':').is_some_and(|(len, hex)| {
        len.parse::<usize>()
            .ok()
            .and_then(|len| bytes.get(..len))
            .is_some_and(|data| blake3::hash(data).to_hex().as_str() == hex)
    });
    if !matches {
        return Err(bad(
            "damaged: its contents do not match its checksum".to_owned()
        ));
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parquet_file_with_a_flipped_data_byte_is_refused() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.parquet");
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "v",
            arrow_schema::DataType::Float32,
            false,
        )]));
        let values: arrow_array::ArrayRef = Arc::new(arrow_array::Float32Array::from_iter_values(
            (0..64).map(|i| i as f32),
        ));
        let batch = arrow_array::RecordBatch::try_new(schema.clone(), vec![values]);
        atomic::write_with(&path, |out| write_parquet(out, &schema, [batch])).expect("write");
        let rows = |path: &Path| -> io::Result<usize> {
            let reader = read_parquet(path)?.build().map_err(io::Error::other)?;
            Ok(reader.map(|b| b.map_or(0, |b| b.num_rows())).sum())
        };
        assert_eq!(rows(&path).expect("sound"), 64);
        // A float inside the data page: plain encoding, so still decodable parquet.
        let bytes = std::fs::read(&path).expect("read");
        let at = bytes
            .windows(4)
            .position(|w| w == 33.0_f32.to_le_bytes())
            .expect("the value 33 in a page");
        let mut damaged = bytes.clone();
        damaged[at + 2] ^= 0x10;
        std::fs::write(&path, &damaged).expect("write");
        let err = rows(&path).expect_err("damage found");
        assert!(err.to_string().contains("checksum"), "{err}");
        // Another program's parquet (no checksum) is named as such.
        let mut plain = Vec::new();
        let batch = arrow_array::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow_array::Float32Array::from(vec![1.0_f32])) as _],
        )
        .expect("batch");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut plain, schema, None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        std::fs::write(&path, &plain).expect("write");
        assert!(
            rows(&path)
                .expect_err("foreign")
                .to_string()
                .contains("no checksum")
        );
    }

    #[test]
    fn a_changed_or_cut_file_reads_as_absent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.bin");
        write(&path, b"some cached numbers").expect("write");
        assert_eq!(read(&path).as_deref(), Some(&b"some cached numbers"[..]));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[3] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(read(&path), None);
        write(&path, b"some cached numbers").expect("write");
        let len = std::fs::metadata(&path).expect("meta").len();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(len - 1)
            .expect("truncate");
        assert_eq!(read(&path), None);
        std::fs::write(&path, b"short").expect("write");
        assert_eq!(read(&path), None);
    }
}
