//! Captions: sidecar files next to an image (`stem.txt`, or `stem.json` with a `caption` or
//! `text` field) and manifests (`captions.csv|jsonl|parquet`, with a path column — `path`,
//! `file`, `file_name`, `filename` or `image` — and a `caption` or `text` column; paths are
//! relative to the manifest's folder). A sidecar wins over a manifest entry. A manifest may
//! also give each image its class (a `class` or `label` column, for
//! `curate analyze --class-from manifest`); a manifest of paths and classes alone, without
//! captions, is read for its classes.
//!
//! A broken sidecar gives that image a caption error; a broken manifest line gives a warning.
//! Neither stops the run.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::scan::Scan;

/// Columns accepted as the image path in a manifest.
const PATH_KEYS: &[&str] = &["path", "file", "file_name", "filename", "image"];
/// Columns accepted as the caption.
const CAPTION_KEYS: &[&str] = &["caption", "text"];
/// Columns accepted as the image's class.
const CLASS_KEYS: &[&str] = &["class", "label"];

/// The caption outcome for one image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caption {
    /// The caption text, trimmed; `None` when there is none.
    pub text: Option<String>,
    /// Why a caption source for this image could not be used.
    pub error: Option<String>,
    /// The image's class in a manifest's `class` (or `label`) column, trimmed.
    pub class: Option<String>,
}

/// One manifest row: its path, caption and class (at least one of the two).
#[derive(Default)]
struct Entry {
    caption: Option<String>,
    class: Option<String>,
}

/// Captions for `scan.images`, in the same order, plus warnings from manifests.
#[must_use]
pub fn load(root: &Path, scan: &Scan) -> (Vec<Caption>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut manifest: HashMap<String, Entry> = HashMap::new();
    let images: std::collections::HashSet<&str> = scan
        .images
        .iter()
        .map(|image| image.rel_path.as_str())
        .collect();
    for rel in &scan.manifests {
        let folder = rel.rsplit_once('/').map_or("", |(dir, _)| dir);
        match read_manifest(&root.join(rel)) {
            Ok((entries, problems)) => {
                let (mut outside, mut missing) = (Vec::new(), Vec::new());
                for (path, entry) in entries {
                    match resolve(folder, &path) {
                        None => outside.push(path),
                        Some(key) => {
                            if !images.contains(key.as_str()) {
                                missing.push(path);
                            }
                            manifest.insert(key, entry);
                        }
                    }
                }
                warnings.extend(problems.into_iter().map(|p| format!("{rel}: {p}")));
                if let Some(first) = outside.first() {
                    warnings.push(format!(
                        "{rel}: {} row(s) name paths outside the dataset and were ignored \
                         (first: {first:?})",
                        outside.len()
                    ));
                }
                if let Some(first) = missing.first() {
                    warnings.push(format!(
                        "{rel}: {} row(s) name images that are not in the folder (first: \
                         {first:?})",
                        missing.len()
                    ));
                }
            }
            Err(err) => warnings.push(format!("{rel}: manifest ignored: {err}")),
        }
    }
    let captions = scan
        .images
        .par_iter()
        .map(|image| {
            let stem = image
                .rel_path
                .rsplit_once('.')
                .map_or(image.rel_path.as_str(), |(stem, _)| stem);
            let listed = manifest.get(&image.rel_path);
            let class = listed.and_then(|e| e.class.as_deref()).and_then(non_empty);
            let listed_caption = listed.and_then(|e| e.caption.clone());
            for ext in ["txt", "json"] {
                let sidecar = format!("{stem}.{ext}");
                if scan.sidecars.contains(&sidecar) {
                    return match read_sidecar(root, &sidecar, ext == "json") {
                        Ok(text) => Caption {
                            text: non_empty(&text),
                            error: None,
                            class,
                        },
                        Err(err) => Caption {
                            text: listed_caption,
                            error: Some(format!("{sidecar}: {err}")),
                            class,
                        },
                    };
                }
            }
            Caption {
                text: scan
                    .captions
                    .get(&image.rel_path)
                    .or(listed_caption.as_ref())
                    .and_then(|text| non_empty(text)),
                error: None,
                class,
            }
        })
        .collect();
    (captions, warnings)
}

fn non_empty(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn normalise(path: &str) -> String {
    path.trim().trim_start_matches("./").replace('\\', "/")
}

/// The dataset-relative path a manifest row in `folder` names, or `None` when it names
/// a place outside the dataset (an absolute path, a drive, or `..` above the root).
fn resolve(folder: &str, path: &str) -> Option<String> {
    let path = normalise(path);
    let bytes = path.as_bytes();
    if path.starts_with('/') || (bytes.len() >= 2 && bytes[1] == b':') {
        return None;
    }
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The caption in the sidecar `rel_path` (a file, or a member of a WebDataset shard).
fn read_sidecar(root: &Path, rel_path: &str, json: bool) -> Result<String, String> {
    let bytes =
        super::shards::read_path(root, rel_path).map_err(|err| format!("could not read: {err}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "not valid UTF-8 text".to_owned())?;
    if !json {
        return Ok(text);
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| format!("invalid JSON: {err}"))?;
    caption_field(&value).ok_or_else(|| "JSON has no string field `caption` or `text`".to_owned())
}

fn caption_field(value: &serde_json::Value) -> Option<String> {
    CAPTION_KEYS
        .iter()
        .find_map(|key| value.get(key)?.as_str().map(str::to_owned))
}

/// A JSON manifest row's class: a string, or a whole number (`"label": 3`).
fn class_field(value: &serde_json::Value) -> Option<String> {
    CLASS_KEYS.iter().find_map(|key| match value.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

type Entries = (Vec<(String, Entry)>, Vec<String>);

/// The error of a manifest without the columns it needs.
const NEEDS_COLUMNS: &str = "needs a path column and a caption or class column in its header";

fn read_manifest(path: &Path) -> Result<Entries, String> {
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => read_csv(path),
        Some("jsonl") => read_jsonl(path),
        _ => read_parquet(path),
    }
}

fn find_column(headers: &[String], keys: &[&str]) -> Option<usize> {
    keys.iter().find_map(|key| {
        headers
            .iter()
            .position(|header| header.trim().eq_ignore_ascii_case(key))
    })
}

fn read_csv(path: &Path) -> Result<Entries, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|err| err.to_string())?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|err| format!("bad header: {err}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let path_col = find_column(&headers, PATH_KEYS);
    let caption_col = find_column(&headers, CAPTION_KEYS);
    let class_col = find_column(&headers, CLASS_KEYS);
    let Some(path_col) = path_col.filter(|_| caption_col.is_some() || class_col.is_some()) else {
        return Err(NEEDS_COLUMNS.to_owned());
    };
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        match record {
            Ok(record) => {
                let field = |col: Option<usize>| col.and_then(|c| record.get(c)).map(str::to_owned);
                let entry = Entry {
                    caption: field(caption_col),
                    class: field(class_col),
                };
                match record.get(path_col) {
                    Some(path)
                        if !path.trim().is_empty()
                            && (entry.caption.is_some() || entry.class.is_some()) =>
                    {
                        entries.push((path.to_owned(), entry));
                    }
                    _ => problems.push(format!("line {line}: missing path or caption")),
                }
            }
            Err(err) => problems.push(format!("line {line}: {err}")),
        }
    }
    Ok((entries, problems))
}

fn read_jsonl(path: &Path) -> Result<Entries, String> {
    let text = fs::read(path).map_err(|err| err.to_string())?;
    let text = String::from_utf8_lossy(&text);
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        let entry = parsed.ok().and_then(|value| {
            let path = PATH_KEYS
                .iter()
                .find_map(|key| value.get(key)?.as_str().map(str::to_owned))?;
            let entry = Entry {
                caption: caption_field(&value),
                class: class_field(&value),
            };
            (entry.caption.is_some() || entry.class.is_some()).then_some((path, entry))
        });
        match entry {
            Some(entry) => entries.push(entry),
            None => problems.push(format!(
                "line {}: not a JSON object with a path and a caption or class",
                index + 1
            )),
        }
    }
    Ok((entries, problems))
}

fn read_parquet(path: &Path) -> Result<Entries, String> {
    crate::guard::catch(|| read_parquet_unguarded(path))
        .unwrap_or_else(|why| Err(format!("damaged parquet ({why})")))
}

fn read_parquet_unguarded(path: &Path) -> Result<Entries, String> {
    use arrow_array::{Array as _, StringArray};
    let file = fs::File::open(path).map_err(|err| err.to_string())?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|err| err.to_string())?
        .build()
        .map_err(|err| err.to_string())?;
    let mut entries = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|err| err.to_string())?;
        let schema = batch.schema();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let caption_col = find_column(&names, CAPTION_KEYS);
        let class_col = find_column(&names, CLASS_KEYS);
        let Some(path_col) =
            find_column(&names, PATH_KEYS).filter(|_| caption_col.is_some() || class_col.is_some())
        else {
            return Err(NEEDS_COLUMNS.to_owned());
        };
        let as_strings = |col: usize| {
            arrow_array::cast::AsArray::as_string_opt::<i32>(batch.column(col).as_ref())
                .cloned()
                .or_else(|| {
                    arrow_array::cast::AsArray::as_string_opt::<i64>(batch.column(col).as_ref())
                        .map(|large| large.iter().collect::<StringArray>())
                })
                .or_else(|| {
                    // Integer classes (`label: 3`) read as their decimal text.
                    let ints = arrow_array::cast::AsArray::as_primitive_opt::<
                        arrow_array::types::Int64Type,
                    >(batch.column(col).as_ref())?;
                    Some(ints.iter().map(|v| v.map(|v| v.to_string())).collect())
                })
                .ok_or_else(|| "path, caption and class columns must be strings".to_owned())
        };
        let paths = as_strings(path_col)?;
        let captions = caption_col.map(as_strings).transpose()?;
        let classes = class_col.map(as_strings).transpose()?;
        let value = |a: &Option<StringArray>, row: usize| {
            a.as_ref()
                .and_then(|a| a.is_valid(row).then(|| a.value(row).to_owned()))
        };
        for row in 0..batch.num_rows() {
            let entry = Entry {
                caption: value(&captions, row),
                class: value(&classes, row),
            };
            if paths.is_valid(row) && (entry.caption.is_some() || entry.class.is_some()) {
                entries.push((paths.value(row).to_owned(), entry));
            }
        }
    }
    Ok((entries, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_resolve_inside_the_dataset_only() {
        assert_eq!(resolve("", "a.png").as_deref(), Some("a.png"));
        assert_eq!(resolve("sub", "./a.png").as_deref(), Some("sub/a.png"));
        assert_eq!(resolve("sub", "../a.png").as_deref(), Some("a.png"));
        assert_eq!(resolve("sub", "x\\..\\a.png").as_deref(), Some("sub/a.png"));
        assert_eq!(resolve("", "../outside.png"), None);
        assert_eq!(resolve("sub", "../../outside.png"), None);
        assert_eq!(resolve("", "/etc/passwd"), None);
        assert_eq!(resolve("", "C:\\Windows\\a.png"), None);
    }

    #[test]
    fn rows_outside_the_dataset_are_warned_about_and_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).expect("mkdir");
        image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
            .save(root.join("red.png"))
            .expect("save");
        image::RgbImage::from_pixel(8, 8, image::Rgb([10, 10, 200]))
            .save(dir.path().join("outside.png"))
            .expect("save");
        std::fs::write(
            root.join("captions.csv"),
            "path,caption\nred.png,a red square\n../outside.png,not ours\n/etc/passwd,no\nghost.png,gone\n",
        )
        .expect("write");
        let scan = crate::dataset::scan(&root).expect("scan");
        let (captions, warnings) = load(&root, &scan);
        assert_eq!(captions.len(), 1);
        assert_eq!(captions[0].text.as_deref(), Some("a red square"));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("2 row(s) name paths outside the dataset")
                    && w.contains("../outside.png")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("1 row(s) name images that are not in the folder")),
            "{warnings:?}"
        );
    }
}
