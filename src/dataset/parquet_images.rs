//! Parquet files that hold images (the Hugging Face `datasets` layout): an `image` column of
//! `{bytes, path}` structs, or of plain binary (or, without one named `image`, the first
//! `{bytes, ...}` column, or a binary column named `img`, `jpg`, `png`...), and an optional
//! caption column `text` or `caption`. Each row is
//! an image of the dataset, named `FILE.parquet/ROW` (the file's path relative to the
//! dataset, `/`, the row's index from 0). A file with no such column is not read as images
//! (a captions manifest, embeddings).
//!
//! Rows are read a row group at a time (only the image column): the last few row groups
//! read are kept, so a pass in row order decodes each once.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::cast::AsArray as _;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The extension of an image parquet file (lower case).
pub const EXTENSION: &str = "parquet";

/// Names of a caption column, in order of preference.
const CAPTION_COLUMNS: &[&str] = &["text", "caption"];

/// Row groups kept decoded (see the module documentation).
const KEPT_GROUPS: usize = 4;

/// What a parquet file of images holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    /// Rows (images) in the file.
    pub rows: u64,
    /// The caption of each row that has one.
    pub captions: Vec<(u64, String)>,
}

/// Names a plain binary column of images goes by (a binary column under another name may
/// hold anything: serialised vectors, say).
const BINARY_IMAGE_NAMES: &[&str] = &["image", "img", "jpg", "jpeg", "png", "webp"];

/// The image column of `schema`: `image` when it is a `{bytes, ...}` struct or binary, else
/// the first `{bytes, ...}` struct column, else the first binary column named as images are
/// ([`BINARY_IMAGE_NAMES`]).
fn image_column(schema: &Schema) -> Option<usize> {
    let binary = |t: &DataType| {
        matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    let image_struct = |t: &DataType| match t {
        DataType::Struct(fields) => fields
            .iter()
            .any(|f| f.name() == "bytes" && binary(f.data_type())),
        _ => false,
    };
    let fields = schema.fields();
    fields
        .iter()
        .position(|f| f.name() == "image" && (image_struct(f.data_type()) || binary(f.data_type())))
        .or_else(|| fields.iter().position(|f| image_struct(f.data_type())))
        .or_else(|| {
            fields.iter().position(|f| {
                binary(f.data_type())
                    && BINARY_IMAGE_NAMES.contains(&f.name().to_ascii_lowercase().as_str())
            })
        })
}

/// Lists the parquet file at `path` as images; `Ok(None)` when it has no image column.
///
/// # Errors
/// When the file cannot be read or is not parquet.
pub fn list(path: &Path) -> Result<Option<Listing>, String> {
    crate::guard::catch(|| list_unguarded(path))
        .unwrap_or_else(|why| Err(format!("damaged parquet ({why})")))
}

fn list_unguarded(path: &Path) -> Result<Option<Listing>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let schema = builder.schema().clone();
    if image_column(&schema).is_none() {
        return Ok(None);
    }
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut captions = Vec::new();
    let caption = CAPTION_COLUMNS.iter().find_map(|name| {
        schema.fields().iter().position(|f| {
            f.name() == name && matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8)
        })
    });
    if let Some(column) = caption {
        let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| e.to_string())?;
        let mut row = 0_u64;
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let texts = batch.column(0);
            for i in 0..batch.num_rows() {
                if let Some(text) = string_at(texts, i) {
                    captions.push((row, text));
                }
                row += 1;
            }
        }
    }
    Ok(Some(Listing { rows, captions }))
}

fn string_at(column: &ArrayRef, i: usize) -> Option<String> {
    if column.is_null(i) {
        return None;
    }
    column
        .as_string_opt::<i32>()
        .map(|a| a.value(i).to_owned())
        .or_else(|| column.as_string_opt::<i64>().map(|a| a.value(i).to_owned()))
}

/// One row group's images, by row within the group (`None`: a null image).
type Group = Vec<Option<Vec<u8>>>;

/// Row groups read lately, by file, its length and time, and group index.
type Groups = Vec<(
    (PathBuf, u64, Option<std::time::SystemTime>, usize),
    Arc<OnceLock<Result<Arc<Group>, String>>>,
)>;

fn groups() -> &'static Mutex<Groups> {
    static GROUPS: OnceLock<Mutex<Groups>> = OnceLock::new();
    GROUPS.get_or_init(Mutex::default)
}

/// A file's path, length and modification time: what its cached facts are valid for.
type Stamp = (PathBuf, u64, Option<std::time::SystemTime>);

/// The rows of each row group of a file, read from its footer once per [`Stamp`].
fn group_rows(stamp: &Stamp) -> io::Result<Arc<Vec<u64>>> {
    static COUNTS: OnceLock<Mutex<HashMap<Stamp, Arc<Vec<u64>>>>> = OnceLock::new();
    let counts = COUNTS.get_or_init(Mutex::default);
    if let Some(found) = counts.lock().ok().and_then(|c| c.get(stamp).cloned()) {
        return Ok(found);
    }
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let file = File::open(&stamp.0)?;
    let metadata = crate::guard::catch(|| {
        parquet::file::metadata::ParquetMetaDataReader::new().parse_and_finish(&file)
    })
    .map_err(|why| bad(format!("damaged parquet ({why})")))?
    .map_err(|e| bad(e.to_string()))?;
    let rows: Arc<Vec<u64>> = Arc::new(
        metadata
            .row_groups()
            .iter()
            .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
            .collect(),
    );
    if let Ok(mut c) = counts.lock() {
        // Files of other runs are not kept forever.
        if c.len() > 64 {
            c.clear();
        }
        c.insert(stamp.clone(), rows.clone());
    }
    Ok(rows)
}

/// The image bytes of row `row` of the parquet file at `path`.
///
/// # Errors
/// When the file cannot be read, the row does not exist or holds no image.
pub fn read_row(path: &Path, row: u64) -> io::Result<Vec<u8>> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let meta = std::fs::metadata(path)?;
    let stamp = (path.to_owned(), meta.len(), meta.modified().ok());
    let counts = group_rows(&stamp)?;
    // Which row group holds the row.
    let mut first = 0_u64;
    let mut found = None;
    for (index, &count) in counts.iter().enumerate() {
        if row < first + count {
            found = Some((index, row - first));
            break;
        }
        first += count;
    }
    let (group, at) = found.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("the file has no row {row}"),
        )
    })?;
    let key = (stamp.0, stamp.1, stamp.2, group);
    let cell = {
        let mut kept = groups()
            .lock()
            .map_err(|_| bad("a reader panicked".to_owned()))?;
        if let Some(at) = kept.iter().position(|(k, _)| *k == key) {
            let entry = kept.remove(at);
            let cell = entry.1.clone();
            kept.push(entry);
            cell
        } else {
            let cell = Arc::new(OnceLock::new());
            kept.push((key, cell.clone()));
            if kept.len() > KEPT_GROUPS {
                kept.remove(0);
            }
            cell
        }
    };
    let images = cell
        .get_or_init(|| {
            crate::guard::catch(|| read_group(path, group))
                .unwrap_or_else(|why| Err(format!("damaged parquet ({why})")))
                .map(Arc::new)
        })
        .clone()
        .map_err(bad)?;
    let at = usize::try_from(at).map_err(io::Error::other)?;
    images
        .get(at)
        .cloned()
        .flatten()
        .ok_or_else(|| bad(format!("row {row} holds no image")))
}

fn read_group(path: &Path, group: usize) -> Result<Group, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let column = image_column(builder.schema()).ok_or("no image column")?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let reader = builder
        .with_row_groups(vec![group])
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut images = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = batch.column(0);
        let bytes: ArrayRef = match column.data_type() {
            DataType::Struct(_) => column
                .as_struct()
                .column_by_name("bytes")
                .cloned()
                .ok_or("no bytes field")?,
            _ => column.clone(),
        };
        for i in 0..batch.num_rows() {
            let valid = column.is_valid(i) && bytes.is_valid(i);
            images.push(valid.then(|| binary_at(&bytes, i)).flatten());
        }
    }
    Ok(images)
}

fn binary_at(column: &ArrayRef, i: usize) -> Option<Vec<u8>> {
    column
        .as_binary_opt::<i32>()
        .map(|a| a.value(i).to_vec())
        .or_else(|| column.as_binary_opt::<i64>().map(|a| a.value(i).to_vec()))
        .or_else(|| column.as_binary_view_opt().map(|a| a.value(i).to_vec()))
}

/// Splits a dataset-relative path into an image parquet file's path and a row, where
/// `root` holds such a file (`a/b.parquet/12` → `a/b.parquet`, 12).
#[must_use]
pub fn split<'p>(root: &Path, rel_path: &'p str) -> Option<(&'p str, u64)> {
    let (file, row) = rel_path.rsplit_once('/')?;
    let row: u64 = row.parse().ok()?;
    let is_parquet = file
        .rsplit_once('.')
        .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case(EXTENSION));
    (is_parquet && root.join(file).is_file()).then_some((file, row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, Fields};

    #[test]
    fn image_columns_are_found_by_layout_and_name() {
        let schema = |fields: Vec<Field>| Schema::new(fields);
        let bytes_struct = DataType::Struct(Fields::from(vec![
            Field::new("bytes", DataType::Binary, true),
            Field::new("path", DataType::Utf8, true),
        ]));
        // The Hugging Face layout, under any name.
        assert_eq!(
            image_column(&schema(vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("picture", bytes_struct.clone(), true),
            ])),
            Some(1)
        );
        // `image` wins over an earlier struct; plain binary by name only.
        assert_eq!(
            image_column(&schema(vec![
                Field::new("thumb", bytes_struct, true),
                Field::new("image", DataType::LargeBinary, true),
            ])),
            Some(1)
        );
        assert_eq!(
            image_column(&schema(vec![Field::new("JPG", DataType::Binary, true)])),
            Some(0)
        );
        // Serialised vectors, a captions manifest: not images.
        assert_eq!(
            image_column(&schema(vec![
                Field::new("path", DataType::Utf8, false),
                Field::new("embedding", DataType::Binary, false),
            ])),
            None
        );
        assert_eq!(
            image_column(&schema(vec![
                Field::new("path", DataType::Utf8, false),
                Field::new("caption", DataType::Utf8, false),
            ])),
            None
        );
    }
}
