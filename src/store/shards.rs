//! Kept samples written as WebDataset shards (`curate export --webdataset OUT`): tar files
//! `OUT/000000.tar`, `OUT/000001.tar`, ... holding every file of each kept sample — the
//! image and the files beside it that share its key (`KEY.txt`, `KEY.json`, `KEY.cls`...),
//! from a folder or from the shard the image came from (a parquet row: its image, named
//! `FILE.parquet/ROW.<format>`, and its caption as `FILE.parquet/ROW.txt`). Members keep
//! the dataset's relative paths (`a/b/KEY.jpg`, `SHARD.tar/KEY.jpg`), so every sample is
//! traceable and keys stay unique. Each shard is written atomically; nothing is read from or written to
//! the dataset but the samples' bytes.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

use super::atomic;
use crate::dataset::shards as input;

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Samples written.
    pub samples: usize,
    /// Files written (images and the files beside them).
    pub files: usize,
    /// Shards written.
    pub shards: usize,
}

/// The key of a path: everything up to the first dot of its file name (WebDataset's rule,
/// `dir/abc.seg.png` → `dir/abc`).
#[must_use]
pub fn key_of(path: &str) -> &str {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[name_start..].find('.') {
        Some(dot) if dot > 0 => &path[..name_start + dot],
        _ => path,
    }
}

/// The files of the sample whose image is `rel_path`, as (member name, bytes), the image
/// first: the files beside it (or beside it in its shard) that share its key.
///
/// # Errors
/// When the image or its folder or shard cannot be read.
pub fn sample_files(root: &Path, rel_path: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
    sample_files_with(root, rel_path, &mut HashMap::new())
}

/// Captions of parquet files read so far, by file (see [`sample_files_with`]).
type ParquetCaptions = HashMap<String, HashMap<u64, String>>;

/// [`sample_files`], with the captions of parquet files kept in `captions` between calls.
fn sample_files_with(
    root: &Path,
    rel_path: &str,
    captions: &mut ParquetCaptions,
) -> io::Result<Vec<(String, Vec<u8>)>> {
    if let Some((file, row)) = crate::dataset::parquet_images::split(root, rel_path) {
        // A parquet row: its image under the row's path with its format's extension, and
        // its caption beside it.
        let bytes = crate::dataset::parquet_images::read_row(&root.join(file), row)?;
        let ext = crate::dataset::decode::sniff_format(&bytes)
            .and_then(|f| f.extensions_str().first().copied())
            .unwrap_or("bin");
        let mut files = vec![(format!("{rel_path}.{ext}"), bytes)];
        let of_file = captions.entry(file.to_owned()).or_insert_with(|| {
            crate::dataset::parquet_images::list(&root.join(file))
                .ok()
                .flatten()
                .map(|l| l.captions.into_iter().collect())
                .unwrap_or_default()
        });
        if let Some(text) = of_file.get(&row) {
            files.push((format!("{rel_path}.txt"), text.clone().into_bytes()));
        }
        return Ok(files);
    }
    let key = key_of(rel_path);
    let mut files = vec![(rel_path.to_owned(), input::read_path(root, rel_path)?)];
    let same_key = |name: &str| name != rel_path && key_of(name) == key;
    if let Some((shard, _)) = input::split(root, rel_path) {
        let path = root.join(shard);
        let listing = input::list(&path)?;
        for member in listing.members.iter().filter(|m| m.utf8_name) {
            let name = format!("{shard}/{}", member.name);
            if same_key(&name) {
                files.push((name, input::read_at(&path, member.offset, member.len)?));
            }
        }
    } else {
        let (folder, _) = rel_path.rsplit_once('/').unwrap_or(("", rel_path));
        let mut beside: Vec<String> = std::fs::read_dir(root.join(folder))?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .map(|name| {
                if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                }
            })
            .filter(|name| same_key(name))
            .collect();
        beside.sort();
        for name in beside {
            files.push((name.clone(), std::fs::read(root.join(&name))?));
        }
    }
    Ok(files)
}

/// Writes the samples of `kept` (dataset-relative image paths, in order) as WebDataset
/// shards of at most `per_shard` samples in the folder `out`.
///
/// # Errors
/// When a sample cannot be read or a shard cannot be written; shards written before stay.
pub fn write_webdataset<'a>(
    root: &Path,
    kept: impl IntoIterator<Item = &'a str>,
    out: &Path,
    per_shard: usize,
) -> io::Result<Written> {
    std::fs::create_dir_all(out)?;
    let kept: Vec<&str> = kept.into_iter().collect();
    let mut written = Written::default();
    // Two images of one key in one folder (`a.jpg`, `a.png`) are one sample.
    let mut samples: HashSet<String> = HashSet::new();
    let mut captions = ParquetCaptions::new();
    for (index, chunk) in kept.chunks(per_shard.max(1)).enumerate() {
        let path = out.join(format!("{index:06}.tar"));
        let (samples_here, files_here) = atomic::write_with(&path, |file| {
            let mut builder = tar::Builder::new(file);
            builder.mode(tar::HeaderMode::Deterministic);
            let (mut samples_here, mut files_here) = (0, 0);
            for rel in chunk {
                if !samples.insert(key_of(rel).to_owned()) {
                    continue;
                }
                for (name, bytes) in sample_files_with(root, rel, &mut captions)
                    .map_err(|e| io::Error::new(e.kind(), format!("{rel}: {e}")))?
                {
                    let mut header = tar::Header::new_gnu();
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o644);
                    builder.append_data(&mut header, &name, bytes.as_slice())?;
                    files_here += 1;
                }
                samples_here += 1;
            }
            builder.into_inner()?;
            Ok((samples_here, files_here))
        })?;
        written.samples += samples_here;
        written.files += files_here;
        written.shards += 1;
    }
    Ok(written)
}

/// Rows of a parquet file written per row group (and held in memory at once).
const PARQUET_GROUP: usize = 256;

/// Writes the kept images (dataset-relative paths with their captions, in order) as parquet
/// files in the Hugging Face `datasets` layout, at most `per_file` rows each, in the folder
/// `out` (`000000.parquet`, ...): `image` (`{bytes, path}`, the path the dataset's relative
/// one) and `text` (the caption, null when none). Each file is written atomically; curate
/// reads such files back as images (see [`crate::dataset::parquet_images`]).
///
/// # Errors
/// When an image cannot be read or a file cannot be written; files written before stay.
pub fn write_parquet<'a>(
    root: &Path,
    kept: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    out: &Path,
    per_file: usize,
) -> io::Result<Written> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
    use arrow_schema::{DataType, Field, Fields, Schema};

    std::fs::create_dir_all(out)?;
    let kept: Vec<(&str, Option<&str>)> = kept.into_iter().collect();
    let image_fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("image", DataType::Struct(image_fields.clone()), true),
        Field::new("text", DataType::Utf8, true),
    ]));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(PARQUET_GROUP))
        .build();
    let mut written = Written::default();
    for (index, chunk) in kept.chunks(per_file.max(1)).enumerate() {
        let path = out.join(format!("{index:06}.parquet"));
        atomic::write_with(&path, |file| {
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))
                    .map_err(io::Error::other)?;
            for group in chunk.chunks(PARQUET_GROUP) {
                let mut images = Vec::with_capacity(group.len());
                for (rel, _) in group {
                    images.push(
                        crate::dataset::read_path(root, rel)
                            .map_err(|e| io::Error::new(e.kind(), format!("{rel}: {e}")))?,
                    );
                }
                let bytes: ArrayRef = Arc::new(
                    images
                        .iter()
                        .map(|b| Some(b.as_slice()))
                        .collect::<BinaryArray>(),
                );
                let paths: ArrayRef = Arc::new(
                    group
                        .iter()
                        .map(|(rel, _)| Some(*rel))
                        .collect::<StringArray>(),
                );
                let image: ArrayRef = Arc::new(StructArray::new(
                    image_fields.clone(),
                    vec![bytes, paths],
                    None,
                ));
                let text: ArrayRef =
                    Arc::new(group.iter().map(|(_, c)| *c).collect::<StringArray>());
                let batch = RecordBatch::try_new(schema.clone(), vec![image, text])
                    .map_err(io::Error::other)?;
                writer.write(&batch).map_err(io::Error::other)?;
            }
            writer.close().map_err(io::Error::other)?;
            Ok(())
        })?;
        written.samples += chunk.len();
        written.files += chunk.len();
        written.shards += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_webdataset() {
        assert_eq!(key_of("a/b/abc.seg.png"), "a/b/abc");
        assert_eq!(key_of("s.tar/k001.jpg"), "s.tar/k001");
        assert_eq!(key_of("x.jpg"), "x");
        assert_eq!(key_of("dir.v2/x.jpg"), "dir.v2/x");
        assert_eq!(key_of("noext"), "noext");
    }
}
