//! Embeddings exchanged with other tools. [`write_columns`] (`curate embed`, through
//! `pipeline::write_embeddings`) writes one parquet row per readable image with `path`, `image_embedding` (`list<f32>`), and, for
//! captioned images, `text_embedding` (CLIP text tower) and `sentence_embedding` (sentence
//! encoder). [`read_embeddings`] (`curate analyze --embeddings`) reads vectors computed
//! elsewhere: such a parquet file, any with `path` and `embedding` columns, or a `.npy`
//! matrix with a paths file.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder, StringBuilder};
use arrow_array::cast::AsArray as _;
use arrow_array::types::{Float16Type, Float32Type, Float64Type};
use arrow_array::{Array as _, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::{atomic, npy};

fn list_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
        true,
    )
}

/// Writes `paths` and the float-list `columns` (one entry per path, `None` for null) as
/// one parquet file, atomically: the embeddings file of `curate embed` (see
/// `pipeline::write_embeddings`).
///
/// # Errors
/// When the file cannot be written.
pub fn write_columns(
    path: &Path,
    paths: &[&str],
    columns: &[(&str, Vec<Option<&[f32]>>)],
) -> io::Result<()> {
    let mut fields = vec![Field::new("path", DataType::Utf8, false)];
    fields.extend(columns.iter().map(|(name, _)| list_field(name)));
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = vec![Arc::new({
        let mut b = StringBuilder::new();
        for p in paths {
            b.append_value(p);
        }
        b.finish()
    })];
    for (_, values) in columns {
        let mut list = ListBuilder::new(Float32Builder::new());
        for v in values {
            if let Some(v) = v {
                list.values().append_slice(v);
            }
            list.append(v.is_some());
        }
        arrays.push(Arc::new(list.finish()));
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(io::Error::other)?;
    atomic::write_with(path, |out| {
        let mut writer = parquet::arrow::ArrowWriter::try_new(out, schema.clone(), None)
            .map_err(io::Error::other)?;
        writer.write(&batch).map_err(io::Error::other)?;
        writer.close().map_err(io::Error::other)?;
        Ok(())
    })
}

/// Embeddings computed elsewhere (`curate analyze DIR --embeddings FILE`): one row per
/// image, in the file's order, not normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedEmbeddings {
    /// Paths relative to the dataset folder, forward slashes, no leading `./`; unique.
    pub paths: Vec<String>,
    /// Vector width.
    pub dim: usize,
    /// `paths.len() × dim` values, row by row; finite, no row all zero.
    pub data: Vec<f32>,
}

/// What is wrong with one row of an embeddings file (rows count from 0, as in numpy and
/// pandas; lines of a paths file count from 1).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RowProblem {
    /// The path is null.
    #[error("the path is null")]
    NullPath,
    /// The path is empty.
    #[error("the path is empty")]
    EmptyPath,
    /// The embedding is null.
    #[error("the embedding is null")]
    NullEmbedding,
    /// An element of the embedding is null.
    #[error("element {column} of the embedding is null")]
    NullValue {
        /// Position in the vector.
        column: usize,
    },
    /// The embedding has another width than the first row's.
    #[error("the embedding has {dim} values, expected {expected} (the first row's)")]
    Ragged {
        /// This row's width.
        dim: usize,
        /// The first row's width.
        expected: usize,
    },
    /// An element is NaN or infinite (as f32).
    #[error("element {column} of the embedding is {value}")]
    NotFinite {
        /// Position in the vector.
        column: usize,
        /// The value.
        value: f32,
    },
    /// Every element is zero: the vector has no direction.
    #[error("the embedding is all zeros")]
    Zero,
}

/// Why embeddings could not be imported. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum VectorsError {
    /// The file could not be opened or read.
    #[error("{}: {cause}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What the system said.
        cause: io::Error,
    },
    /// The file name ends neither in `.parquet` nor in `.npy`.
    #[error("{}: embeddings must be a .parquet or a .npy file", file.display())]
    Extension {
        /// The file.
        file: PathBuf,
    },
    /// The `.npy` matrix could not be read.
    #[error(transparent)]
    Npy(#[from] npy::NpyError),
    /// The parquet file could not be decoded.
    #[error("{}: unreadable parquet: {reason}", file.display())]
    Parquet {
        /// The file.
        file: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A needed column is not in the file.
    #[error("{}: no `{wanted}` column (the file has: {found})", file.display())]
    MissingColumn {
        /// The file.
        file: PathBuf,
        /// The column(s) looked for.
        wanted: String,
        /// The columns present, comma-separated.
        found: String,
    },
    /// A column has a type that cannot be read as paths or vectors.
    #[error("{}: column `{column}` is {found}, expected {expected}", file.display())]
    ColumnType {
        /// The file.
        file: PathBuf,
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// The types read.
        expected: &'static str,
    },
    /// A row that cannot be used.
    #[error("{}: row {row}: {problem}", file.display())]
    Row {
        /// The file.
        file: PathBuf,
        /// Row index, from 0.
        row: usize,
        /// What is wrong.
        problem: RowProblem,
    },
    /// A line of the paths file that cannot be used.
    #[error("{}: line {line}: {reason}", file.display())]
    PathLine {
        /// The paths file.
        file: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The matrix and its paths file disagree on the count.
    #[error("{}: {rows} rows, but {} has {paths} paths", file.display(), paths_file.display())]
    CountMismatch {
        /// The matrix.
        file: PathBuf,
        /// Its rows.
        rows: usize,
        /// The paths file.
        paths_file: PathBuf,
        /// Its lines.
        paths: usize,
    },
    /// Nothing to import.
    #[error("{}: no embeddings (zero rows)", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A vector width of zero.
    #[error("{}: the embeddings have zero dimensions", file.display())]
    ZeroDim {
        /// The file.
        file: PathBuf,
    },
    /// The same image twice.
    #[error("{}: path `{path}` appears twice ({first} and {second})", file.display())]
    Duplicate {
        /// The file holding the paths.
        file: PathBuf,
        /// The normalised path.
        path: String,
        /// Where it first appears (`row 3` or `line 4`).
        first: String,
        /// Where it appears again.
        second: String,
    },
}

/// Column names read, in order of preference: `embedding`, then `curate embed`'s own.
const EMBEDDING_COLUMNS: [&str; 2] = ["embedding", "image_embedding"];
/// Rows decoded at a time from a parquet file.
const PARQUET_BATCH_ROWS: usize = 8192;

/// Reads embeddings computed elsewhere, checked: a `.parquet` file with a `path` column
/// (utf8) and an `embedding` (or `image_embedding`) column (list of f32, f16 or f64), or a
/// 2-D `.npy` matrix whose paths, one per line in row order, are in `paths_file` (by default
/// the matrix' name with `.txt`). The vectors are not normalised.
pub fn read_embeddings(
    file: &Path,
    paths_file: Option<&Path>,
) -> Result<ImportedEmbeddings, VectorsError> {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (paths, dim, data) = match extension.as_deref() {
        Some("parquet" | "pq") => read_parquet(file)?,
        Some("npy") => read_npy(file, paths_file)?,
        _ => {
            return Err(VectorsError::Extension {
                file: file.to_owned(),
            });
        }
    };
    Ok(ImportedEmbeddings { paths, dim, data })
}

/// `path` with forward slashes and without leading `./`.
fn normalise_path(path: &str) -> String {
    let mut path = path.replace('\\', "/");
    while let Some(rest) = path.strip_prefix("./") {
        path = rest.trim_start_matches('/').to_owned();
    }
    path
}

/// Rejects NaN, infinite and all-zero rows of `data`.
fn check_values(file: &Path, dim: usize, data: &[f32]) -> Result<(), VectorsError> {
    let row_error = |row, problem| VectorsError::Row {
        file: file.to_owned(),
        row,
        problem,
    };
    for (row, values) in data.chunks_exact(dim).enumerate() {
        if let Some((column, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(row_error(row, RowProblem::NotFinite { column, value }));
        }
        if values.iter().all(|&v| v == 0.0) {
            return Err(row_error(row, RowProblem::Zero));
        }
    }
    Ok(())
}

/// Rejects a path that appears twice; `place` names the position of an index.
fn check_unique(
    file: &Path,
    paths: &[String],
    place: impl Fn(usize) -> String,
) -> Result<(), VectorsError> {
    let mut seen = std::collections::HashMap::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        if let Some(first) = seen.insert(path.as_str(), i) {
            return Err(VectorsError::Duplicate {
                file: file.to_owned(),
                path: path.clone(),
                first: place(first),
                second: place(i),
            });
        }
    }
    Ok(())
}

fn read_npy(
    file: &Path,
    paths_file: Option<&Path>,
) -> Result<(Vec<String>, usize, Vec<f32>), VectorsError> {
    let paths_file = paths_file.map_or_else(|| file.with_extension("txt"), Path::to_owned);
    // The paths first: a missing paths file fails before a large matrix is read.
    let paths = read_paths_file(&paths_file)?;
    let (rows, dim, data) = npy::read_f32_2d(file)?;
    if rows != paths.len() {
        return Err(VectorsError::CountMismatch {
            file: file.to_owned(),
            rows,
            paths_file,
            paths: paths.len(),
        });
    }
    if rows == 0 {
        return Err(VectorsError::Empty {
            file: file.to_owned(),
        });
    }
    if dim == 0 {
        return Err(VectorsError::ZeroDim {
            file: file.to_owned(),
        });
    }
    check_values(file, dim, &data)?;
    Ok((paths, dim, data))
}

/// One relative path per line (UTF-8, `\n` or `\r\n`, a final newline optional), checked
/// and normalised.
fn read_paths_file(file: &Path) -> Result<Vec<String>, VectorsError> {
    let bytes = std::fs::read(file).map_err(|cause| VectorsError::Io {
        file: file.to_owned(),
        cause,
    })?;
    let line_error = |line, reason: String| VectorsError::PathLine {
        file: file.to_owned(),
        line,
        reason,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.split(|&b| b == b'\n').count();
        line_error(line, "not UTF-8".to_owned())
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let paths = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            let path = normalise_path(line.strip_suffix('\r').unwrap_or(line));
            if path.is_empty() {
                Err(line_error(i + 1, "the path is empty".to_owned()))
            } else {
                Ok(path)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(file, &paths, |i| format!("line {}", i + 1))?;
    Ok(paths)
}

fn read_parquet(file: &Path) -> Result<(Vec<String>, usize, Vec<f32>), VectorsError> {
    crate::guard::catch(|| read_parquet_unguarded(file)).unwrap_or_else(|why| {
        Err(VectorsError::Parquet {
            file: file.to_owned(),
            reason: format!("damaged parquet ({why})"),
        })
    })
}

fn read_parquet_unguarded(file: &Path) -> Result<(Vec<String>, usize, Vec<f32>), VectorsError> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let parquet_error = |e: &dyn std::fmt::Display| VectorsError::Parquet {
        file: file.to_owned(),
        reason: e.to_string(),
    };
    let handle = std::fs::File::open(file).map_err(|cause| VectorsError::Io {
        file: file.to_owned(),
        cause,
    })?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(handle).map_err(|e| parquet_error(&e))?;
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let missing = |wanted: &str| VectorsError::MissingColumn {
        file: file.to_owned(),
        wanted: wanted.to_owned(),
        found: names.join(", "),
    };
    let path_index = schema.index_of("path").map_err(|_| missing("path"))?;
    let embedding_index = EMBEDDING_COLUMNS
        .iter()
        .find_map(|name| schema.index_of(name).ok())
        .ok_or_else(|| missing("embedding` or `image_embedding"))?;
    let path_field = schema.field(path_index);
    if !matches!(
        path_field.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return Err(VectorsError::ColumnType {
            file: file.to_owned(),
            column: path_field.name().clone(),
            found: path_field.data_type().to_string(),
            expected: "a string",
        });
    }
    let embedding_field = schema.field(embedding_index);
    let embedding_name = embedding_field.name().clone();
    let item_type = match embedding_field.data_type() {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            Some(item.data_type())
        }
        _ => None,
    };
    if !matches!(
        item_type,
        Some(DataType::Float16 | DataType::Float32 | DataType::Float64)
    ) {
        return Err(VectorsError::ColumnType {
            file: file.to_owned(),
            column: embedding_name,
            found: embedding_field.data_type().to_string(),
            expected: "a list of float16, float32 or float64",
        });
    }
    let total_rows =
        usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or_default();
    let mask = ProjectionMask::roots(builder.parquet_schema(), [path_index, embedding_index]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(PARQUET_BATCH_ROWS)
        .build()
        .map_err(|e| parquet_error(&e))?;

    let row_error = |row, problem| VectorsError::Row {
        file: file.to_owned(),
        row,
        problem,
    };
    let mut paths: Vec<String> = Vec::with_capacity(total_rows);
    let mut data: Vec<f32> = Vec::new();
    let mut dim = None;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(&e))?;
        let first_row = paths.len();
        let path_column = batch.column_by_name("path").expect("projected column");
        let embedding_column = batch
            .column_by_name(&embedding_name)
            .expect("projected column");
        let batch_paths = string_values(path_column)
            .ok_or_else(|| parquet_error(&"path column type changed between batches"))?;
        for (i, path) in batch_paths.into_iter().enumerate() {
            let row = first_row + i;
            let path = path.ok_or_else(|| row_error(row, RowProblem::NullPath))?;
            let path = normalise_path(path);
            if path.is_empty() {
                return Err(row_error(row, RowProblem::EmptyPath));
            }
            paths.push(path);
        }
        let lists = Lists::of(embedding_column)
            .ok_or_else(|| parquet_error(&"embedding column type changed between batches"))?;
        for i in 0..batch.num_rows() {
            let row = first_row + i;
            let range = lists
                .range(i)
                .ok_or_else(|| row_error(row, RowProblem::NullEmbedding))?;
            let expected = *dim.get_or_insert_with(|| {
                data.reserve(total_rows.saturating_mul(range.len()));
                range.len()
            });
            if range.len() != expected {
                return Err(row_error(
                    row,
                    RowProblem::Ragged {
                        dim: range.len(),
                        expected,
                    },
                ));
            }
            if let Some(column) = lists.first_null(range.clone()) {
                return Err(row_error(row, RowProblem::NullValue { column }));
            }
            lists.extend(&mut data, range);
        }
    }
    if paths.is_empty() {
        return Err(VectorsError::Empty {
            file: file.to_owned(),
        });
    }
    let dim = dim.expect("set by the first row");
    if dim == 0 {
        return Err(VectorsError::ZeroDim {
            file: file.to_owned(),
        });
    }
    check_values(file, dim, &data)?;
    check_unique(file, &paths, |i| format!("row {i}"))?;
    Ok((paths, dim, data))
}

/// The values of a string column of any offset width.
fn string_values(column: &ArrayRef) -> Option<Vec<Option<&str>>> {
    if let Some(a) = column.as_string_opt::<i32>() {
        Some(a.iter().collect())
    } else if let Some(a) = column.as_string_opt::<i64>() {
        Some(a.iter().collect())
    } else {
        column.as_string_view_opt().map(|a| a.iter().collect())
    }
}

/// A list column of floats, whatever its offsets and element width.
struct Lists<'a> {
    rows: ListRows<'a>,
    values: FloatValues<'a>,
    /// The element array, when it has nulls.
    nullable_values: Option<&'a ArrayRef>,
}

enum ListRows<'a> {
    Small(&'a arrow_array::ListArray),
    Large(&'a arrow_array::LargeListArray),
    Fixed(&'a arrow_array::FixedSizeListArray),
}

enum FloatValues<'a> {
    F16(&'a [half::f16]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl<'a> Lists<'a> {
    fn of(column: &'a ArrayRef) -> Option<Self> {
        let (rows, values) = if let Some(a) = column.as_list_opt::<i32>() {
            (ListRows::Small(a), a.values())
        } else if let Some(a) = column.as_list_opt::<i64>() {
            (ListRows::Large(a), a.values())
        } else {
            let a = column.as_fixed_size_list_opt()?;
            (ListRows::Fixed(a), a.values())
        };
        let floats = if let Some(v) = values.as_primitive_opt::<Float16Type>() {
            FloatValues::F16(v.values())
        } else if let Some(v) = values.as_primitive_opt::<Float32Type>() {
            FloatValues::F32(v.values())
        } else {
            FloatValues::F64(values.as_primitive_opt::<Float64Type>()?.values())
        };
        Some(Self {
            rows,
            values: floats,
            nullable_values: (values.null_count() > 0).then_some(values),
        })
    }

    /// The element range of row `i`; `None` when the row is null.
    fn range(&self, i: usize) -> Option<Range<usize>> {
        match self.rows {
            ListRows::Small(a) => a.is_valid(i).then(|| {
                let o = a.value_offsets();
                o[i] as usize..o[i + 1] as usize
            }),
            ListRows::Large(a) => a.is_valid(i).then(|| {
                let o = a.value_offsets();
                o[i] as usize..o[i + 1] as usize
            }),
            ListRows::Fixed(a) => a.is_valid(i).then(|| {
                let start = a.value_offset_at(i);
                start..start + a.value_length() as usize
            }),
        }
    }

    /// The position within `range` of its first null element.
    fn first_null(&self, range: Range<usize>) -> Option<usize> {
        let values = self.nullable_values?;
        let start = range.start;
        range
            .into_iter()
            .find(|&j| values.is_null(j))
            .map(|j| j - start)
    }

    fn extend(&self, out: &mut Vec<f32>, range: Range<usize>) {
        match self.values {
            FloatValues::F16(v) => out.extend(v[range].iter().map(|h| h.to_f32())),
            FloatValues::F32(v) => out.extend_from_slice(&v[range]),
            FloatValues::F64(v) => out.extend(v[range].iter().map(|&d| d as f32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{
        FixedSizeListBuilder, Float16Builder, Float64Builder, Int32Builder, LargeListBuilder,
        LargeStringBuilder, StringViewBuilder,
    };
    use half::f16;

    fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, row_group_rows: usize) {
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(row_group_rows))
            .build();
        let file = std::fs::File::create(path).expect("create");
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
            .expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        let mut b = StringBuilder::new();
        values.iter().for_each(|v| b.append_option(*v));
        Arc::new(b.finish())
    }

    fn f32_lists(rows: &[Option<Vec<f32>>]) -> ArrayRef {
        let mut b = ListBuilder::new(Float32Builder::new());
        for row in rows {
            if let Some(values) = row {
                b.values().append_slice(values);
            }
            b.append(row.is_some());
        }
        Arc::new(b.finish())
    }

    fn three_paths() -> Vec<Option<&'static str>> {
        vec![Some("a.jpg"), Some("./sub/b.png"), Some("sub\\c.webp")]
    }

    fn three_rows() -> Vec<Option<Vec<f32>>> {
        vec![
            Some(vec![1.0, 0.0]),
            Some(vec![0.5, -0.25]),
            Some(vec![-3.0, 4.0]),
        ]
    }

    fn expected_three() -> ImportedEmbeddings {
        ImportedEmbeddings {
            paths: vec!["a.jpg".into(), "sub/b.png".into(), "sub/c.webp".into()],
            dim: 2,
            data: vec![1.0, 0.0, 0.5, -0.25, -3.0, 4.0],
        }
    }

    /// The error of reading a parquet file with these columns.
    fn parquet_error(columns: Vec<(&str, ArrayRef)>) -> VectorsError {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.parquet");
        write_parquet(&file, columns, 1 << 20);
        let err = read_embeddings(&file, None).expect_err("a bad file");
        assert!(err.to_string().contains("vecs.parquet"), "{err}");
        err
    }

    #[test]
    fn curate_embed_output_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("embeddings.parquet");
        let images = [[0.6f32, 0.8, 0.0], [0.0, 0.0, 1.0]];
        let columns = vec![
            (
                "image_embedding",
                vec![Some(&images[0][..]), Some(&images[1][..])],
            ),
            (
                "logits",
                vec![Some(&[2.0, -1.0][..]), Some(&[0.5, 3.0][..])],
            ),
            ("text_embedding", vec![Some(&[1.0, 0.0, 0.0][..]), None]),
            ("sentence_embedding", vec![None, Some(&[0.5; 4][..])]),
        ];
        write_columns(&file, &["cats/1.jpg", "dogs/2.jpg"], &columns).expect("write");
        let read = read_embeddings(&file, None).expect("read");
        assert_eq!(
            read,
            ImportedEmbeddings {
                paths: vec!["cats/1.jpg".into(), "dogs/2.jpg".into()],
                dim: 3,
                data: images.concat(),
            }
        );
    }

    #[test]
    fn parquet_list_of_f32_with_utf8_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.parquet");
        write_parquet(
            &file,
            vec![
                (
                    "id",
                    Arc::new(arrow_array::Int32Array::from(vec![1, 2, 3])) as ArrayRef,
                ),
                ("embedding", f32_lists(&three_rows())),
                ("path", strings(&three_paths())),
                // `embedding` wins over `image_embedding`.
                ("image_embedding", f32_lists(&[None, None, None])),
            ],
            2,
        );
        assert_eq!(
            read_embeddings(&file, None).expect("read"),
            expected_three()
        );
    }

    #[test]
    fn parquet_large_list_of_f16_with_large_utf8_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.PARQUET");
        let mut paths = LargeStringBuilder::new();
        let mut lists = LargeListBuilder::new(Float16Builder::new());
        for (path, row) in three_paths().into_iter().zip(three_rows()) {
            paths.append_option(path);
            for v in row.expect("row") {
                lists.values().append_value(f16::from_f32(v));
            }
            lists.append(true);
        }
        write_parquet(
            &file,
            vec![
                ("path", Arc::new(paths.finish()) as ArrayRef),
                ("embedding", Arc::new(lists.finish())),
            ],
            1 << 20,
        );
        assert_eq!(
            read_embeddings(&file, None).expect("read"),
            expected_three()
        );
    }

    #[test]
    fn parquet_fixed_size_list_of_f64_with_utf8_view_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.parquet");
        let mut paths = StringViewBuilder::new();
        let mut lists = FixedSizeListBuilder::new(Float64Builder::new(), 2);
        for (path, row) in three_paths().into_iter().zip(three_rows()) {
            paths.append_option(path);
            for v in row.expect("row") {
                lists.values().append_value(f64::from(v));
            }
            lists.append(true);
        }
        write_parquet(
            &file,
            vec![
                ("path", Arc::new(paths.finish()) as ArrayRef),
                ("embedding", Arc::new(lists.finish())),
            ],
            1 << 20,
        );
        assert_eq!(
            read_embeddings(&file, None).expect("read"),
            expected_three()
        );
    }

    #[test]
    fn large_parquet_reads_in_batches_and_counts_rows_across_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("big.parquet");
        let n = PARQUET_BATCH_ROWS * 2 + 100;
        let names: Vec<String> = (0..n).map(|i| format!("img/{i:06}.jpg")).collect();
        let mut rows: Vec<Option<Vec<f32>>> = (0..n)
            .map(|i| Some(vec![i as f32 + 1.0, 1.0, -1.0]))
            .collect();
        let columns = |rows: &[Option<Vec<f32>>]| {
            vec![
                (
                    "path",
                    strings(&names.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>()),
                ),
                ("embedding", f32_lists(rows)),
            ]
        };
        write_parquet(&file, columns(&rows), 5000);
        let read = read_embeddings(&file, None).expect("read");
        assert_eq!((read.paths.len(), read.dim), (n, 3));
        assert_eq!(read.paths[n - 1], names[n - 1]);
        assert_eq!(&read.data[3 * (n - 1)..], &[n as f32, 1.0, -1.0]);

        let bad_row = PARQUET_BATCH_ROWS + 17;
        rows[bad_row] = Some(vec![1.0, f32::NAN, 0.0]);
        write_parquet(&file, columns(&rows), 5000);
        let err = read_embeddings(&file, None).expect_err("NaN");
        assert!(
            matches!(err, VectorsError::Row { row, problem: RowProblem::NotFinite { column: 1, .. }, .. } if row == bad_row),
            "{err}"
        );
    }

    #[test]
    fn missing_and_mistyped_columns_are_named() {
        let err = parquet_error(vec![
            ("file", strings(&three_paths())),
            ("embedding", f32_lists(&three_rows())),
        ]);
        assert!(
            err.to_string()
                .ends_with("no `path` column (the file has: file, embedding)"),
            "{err}"
        );
        let err = parquet_error(vec![
            ("path", strings(&three_paths())),
            ("vector", f32_lists(&three_rows())),
        ]);
        assert!(
            err.to_string().ends_with(
                "no `embedding` or `image_embedding` column (the file has: path, vector)"
            ),
            "{err}"
        );
        let err = parquet_error(vec![
            (
                "path",
                Arc::new(arrow_array::Int32Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
            ("embedding", f32_lists(&three_rows())),
        ]);
        assert!(
            err.to_string()
                .ends_with("column `path` is Int32, expected a string"),
            "{err}"
        );
        let mut ints = ListBuilder::new(Int32Builder::new());
        for _ in 0..3 {
            ints.values().append_slice(&[1, 2]);
            ints.append(true);
        }
        let err = parquet_error(vec![
            ("path", strings(&three_paths())),
            ("embedding", Arc::new(ints.finish()) as ArrayRef),
        ]);
        assert!(
            matches!(err, VectorsError::ColumnType { ref column, .. } if column == "embedding"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("expected a list of float16, float32 or float64")
        );
    }

    #[test]
    fn bad_rows_are_named() {
        let row_problem =
            |paths: Vec<Option<&str>>, rows: Vec<Option<Vec<f32>>>| match parquet_error(vec![
                ("path", strings(&paths)),
                ("embedding", f32_lists(&rows)),
            ]) {
                VectorsError::Row { row, problem, .. } => (row, problem),
                other => panic!("not a row error: {other}"),
            };
        let mut paths = three_paths();
        paths[1] = None;
        assert_eq!(row_problem(paths, three_rows()), (1, RowProblem::NullPath));
        let mut paths = three_paths();
        paths[2] = Some("./");
        assert_eq!(row_problem(paths, three_rows()), (2, RowProblem::EmptyPath));
        let mut rows = three_rows();
        rows[2] = None;
        assert_eq!(
            row_problem(three_paths(), rows),
            (2, RowProblem::NullEmbedding)
        );
        let mut rows = three_rows();
        rows[1] = Some(vec![1.0, 2.0, 3.0]);
        assert_eq!(
            row_problem(three_paths(), rows),
            (
                1,
                RowProblem::Ragged {
                    dim: 3,
                    expected: 2
                }
            )
        );
        let mut rows = three_rows();
        rows[0] = Some(vec![f32::INFINITY, 0.0]);
        let (row, problem) = row_problem(three_paths(), rows);
        assert_eq!(
            (row, problem.to_string()),
            (0, "element 0 of the embedding is inf".to_owned())
        );
        let mut rows = three_rows();
        rows[2] = Some(vec![0.0, -0.0]);
        assert_eq!(row_problem(three_paths(), rows), (2, RowProblem::Zero));

        let mut with_null = ListBuilder::new(Float32Builder::new());
        for row in three_rows() {
            with_null.values().append_slice(&row.expect("row"));
            with_null.append(true);
        }
        with_null.values().append_value(1.0);
        with_null.values().append_null();
        with_null.append(true);
        let err = parquet_error(vec![
            (
                "path",
                strings(&[Some("a"), Some("b"), Some("c"), Some("d")]),
            ),
            ("embedding", Arc::new(with_null.finish()) as ArrayRef),
        ]);
        assert!(
            err.to_string()
                .ends_with("row 3: element 1 of the embedding is null"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_paths_are_refused_after_normalising() {
        let err = parquet_error(vec![
            (
                "path",
                strings(&[Some("x/a.jpg"), Some("b.jpg"), Some(".\\x\\a.jpg")]),
            ),
            ("embedding", f32_lists(&three_rows())),
        ]);
        assert!(
            err.to_string()
                .ends_with("path `x/a.jpg` appears twice (row 0 and row 2)"),
            "{err}"
        );
    }

    #[test]
    fn empty_parquet_is_refused() {
        let err = parquet_error(vec![("path", strings(&[])), ("embedding", f32_lists(&[]))]);
        assert!(matches!(err, VectorsError::Empty { .. }), "{err}");
    }

    #[test]
    fn npy_with_default_paths_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.npy");
        npy::write_f32(&file, &[3, 2], &expected_three().data).expect("write");
        std::fs::write(
            dir.path().join("vecs.txt"),
            "a.jpg\r\n./sub/b.png\nsub\\c.webp\n",
        )
        .expect("paths");
        assert_eq!(
            read_embeddings(&file, None).expect("read"),
            expected_three()
        );
        // No final newline.
        std::fs::write(dir.path().join("vecs.txt"), "a.jpg\nsub/b.png\nsub/c.webp").expect("paths");
        assert_eq!(
            read_embeddings(&file, None).expect("read"),
            expected_three()
        );
    }

    /// A version 1.0 `.npy` file with a hand-written header, as numpy writes it.
    fn handmade_npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
        let mut dict =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).expect("write npy");
    }

    #[test]
    fn handmade_f2_and_f8_npy_with_a_named_paths_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.npy");
        let paths_file = dir.path().join("names.list");
        std::fs::write(&paths_file, "a.jpg\nsub/b.png\nsub/c.webp\n").expect("paths");
        let values = expected_three().data;
        let halves: Vec<u8> = values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        handmade_npy(&file, "<f2", "(3, 2)", &halves);
        assert_eq!(
            read_embeddings(&file, Some(&paths_file)).expect("f2"),
            expected_three()
        );
        let doubles: Vec<u8> = values
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect();
        handmade_npy(&file, "<f8", "(3, 2)", &doubles);
        assert_eq!(
            read_embeddings(&file, Some(&paths_file)).expect("f8"),
            expected_three()
        );
    }

    #[test]
    fn npy_errors_name_the_file_and_row() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vecs.npy");
        let txt = dir.path().join("vecs.txt");
        let data = expected_three().data;
        npy::write_f32(&file, &[3, 2], &data).expect("write");
        let err = |paths: &str| {
            std::fs::write(&txt, paths).expect("paths");
            read_embeddings(&file, None).expect_err("bad").to_string()
        };

        let e = err("a\nb\n");
        assert!(
            e.ends_with("vecs.npy: 3 rows, but") || e.contains("3 rows, but"),
            "{e}"
        );
        assert!(e.contains("vecs.txt has 2 paths"), "{e}");
        let e = err("a\n\nc\n");
        assert!(e.ends_with("vecs.txt: line 2: the path is empty"), "{e}");
        let e = err("a\nsub/b\n./sub/b\n");
        assert!(
            e.ends_with("vecs.txt: path `sub/b` appears twice (line 2 and line 3)"),
            "{e}"
        );
        std::fs::write(&txt, b"a\nb\n\xff\n").expect("paths");
        let e = read_embeddings(&file, None)
            .expect_err("latin-1")
            .to_string();
        assert!(e.ends_with("vecs.txt: line 3: not UTF-8"), "{e}");

        std::fs::remove_file(&txt).expect("remove");
        let e = read_embeddings(&file, None).expect_err("no paths");
        assert!(
            matches!(e, VectorsError::Io { ref file, .. } if file == &txt),
            "{e}"
        );

        std::fs::write(&txt, "a\nb\nc\n").expect("paths");
        let mut bad = data.clone();
        bad[3] = f32::NAN;
        npy::write_f32(&file, &[3, 2], &bad).expect("write");
        let e = read_embeddings(&file, None).expect_err("NaN").to_string();
        assert!(
            e.ends_with("vecs.npy: row 1: element 1 of the embedding is NaN"),
            "{e}"
        );
        let mut zero = data.clone();
        zero[4..6].fill(0.0);
        npy::write_f32(&file, &[3, 2], &zero).expect("write");
        let e = read_embeddings(&file, None).expect_err("zero").to_string();
        assert!(
            e.ends_with("vecs.npy: row 2: the embedding is all zeros"),
            "{e}"
        );

        npy::write_f32(&file, &[6], &data).expect("write");
        let e = read_embeddings(&file, None).expect_err("1-D");
        assert!(
            matches!(e, VectorsError::Npy(npy::NpyError::Shape { .. })),
            "{e}"
        );

        std::fs::write(&txt, "").expect("paths");
        npy::write_f32(&file, &[0, 2], &[]).expect("write");
        let e = read_embeddings(&file, None).expect_err("empty");
        assert!(matches!(e, VectorsError::Empty { .. }), "{e}");
    }

    #[test]
    fn other_extensions_are_refused() {
        let e = read_embeddings(Path::new("vecs.csv"), None).expect_err("csv");
        assert_eq!(
            e.to_string(),
            "vecs.csv: embeddings must be a .parquet or a .npy file"
        );
    }
}
