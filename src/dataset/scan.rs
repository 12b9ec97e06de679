//! Recursive, parallel folder scan.
//!
//! Images are found by extension and, for files with an unknown extension, by sniffing their
//! first bytes. Hidden entries (names starting with `.`, so `.curate/` too) are skipped.
//! Symbolic links are followed, except directory links whose target lies inside the dataset
//! (that would visit files twice or loop) and directories already visited through another
//! link. Problems (unreadable folders, loops, broken links) become warnings; none is fatal.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

/// File name extensions (lower case) taken as images without sniffing.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "bmp", "dib", "tif", "tiff",
];

/// Extensions that are never images, so never sniffed (captions, manifests, notes).
const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "json",
    "jsonl",
    "csv",
    "tsv",
    "parquet",
    "md",
    "yaml",
    "yml",
    "toml",
    "xml",
    "html",
    "py",
    "npy",
    "npz",
    "pt",
    "safetensors",
];

/// One image candidate found by the scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanEntry {
    /// Stable id: the path relative to the dataset root, `/`-separated. Lossy (U+FFFD) when
    /// the name is not UTF-8; see [`Self::utf8_name`].
    pub rel_path: String,
    /// Where the file is.
    pub abs_path: PathBuf,
    /// File size in bytes (of the link target for symbolic links); 0 when unknown.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch; 0 when unknown.
    pub mtime_ns: i64,
    /// False when some component of the path is not valid UTF-8: such a file cannot be named
    /// in a UTF-8 keep-list, so it is reported instead of analysed.
    pub utf8_name: bool,
    /// Set when the entry could not be inspected (a broken link, say).
    pub unreadable: Option<String>,
    /// For a member of a WebDataset shard (see [`super::shards`]): where its data lies in
    /// the tar at `abs_path`, as (offset, length).
    pub member: Option<(u64, u64)>,
    /// For a row of a parquet file of images (see [`super::parquet_images`]): its index in
    /// the file at `abs_path`.
    pub row: Option<u64>,
}

impl ScanEntry {
    /// The file's bytes (a shard member's from its place in the tar).
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match (self.member, self.row) {
            (Some((offset, len)), _) => super::shards::read_at(&self.abs_path, offset, len),
            (None, Some(row)) => super::parquet_images::read_row(&self.abs_path, row),
            (None, None) => fs::read(&self.abs_path),
        }
    }
}

/// Everything the scan found.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Image candidates, sorted by `rel_path` (this is the "scan order").
    pub images: Vec<ScanEntry>,
    /// Relative paths of `.txt` and `.json` files (caption sidecar candidates).
    pub sidecars: HashSet<String>,
    /// Relative paths of caption manifests (`captions.csv|jsonl|parquet`).
    pub manifests: Vec<String>,
    /// Problems met on the way, one line each.
    pub warnings: Vec<String>,
    /// Captions held beside the images in their container (a parquet file's `text` or
    /// `caption` column), by image path.
    pub captions: std::collections::HashMap<String, String>,
}

#[derive(Default)]
struct Shared {
    images: Vec<ScanEntry>,
    sidecars: HashSet<String>,
    manifests: Vec<String>,
    warnings: Vec<String>,
    visited: HashSet<(u64, u64)>,
    captions: std::collections::HashMap<String, String>,
}

/// Scans `root` recursively.
pub fn scan(root: &Path) -> std::io::Result<Scan> {
    let root_meta = fs::metadata(root)?;
    if !root_meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a folder", root.display()),
        ));
    }
    let canonical_root = fs::canonicalize(root)?;
    let shared = Mutex::new(Shared::default());
    mark_visited(&shared, &root_meta);
    rayon::scope(|scope| {
        walk_dir(scope, &canonical_root, root, &[], &shared);
    });
    let mut shared = shared.into_inner().expect("scan threads do not panic");
    // Path order, but a parquet file's rows by number (row 2 before row 10), so rows are
    // read a row group at a time.
    shared
        .images
        .sort_by(|a, b| scan_order(a).cmp(&scan_order(b)));
    shared.manifests.sort();
    shared.warnings.sort();
    Ok(Scan {
        images: shared.images,
        sidecars: shared.sidecars,
        manifests: shared.manifests,
        warnings: shared.warnings,
        captions: shared.captions,
    })
}

/// The sort key of an entry: its path, or for a parquet row its file's path and number.
fn scan_order(entry: &ScanEntry) -> (&str, u64) {
    match (entry.row, entry.rel_path.rsplit_once('/')) {
        (Some(row), Some((file, _))) => (file, row),
        _ => (entry.rel_path.as_str(), 0),
    }
}

#[cfg(unix)]
#[allow(
    clippy::unnecessary_wraps,
    reason = "None on platforms without inode numbers"
)]
fn dir_id(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn dir_id(_meta: &Metadata) -> Option<(u64, u64)> {
    None
}

/// Returns false when the directory was already visited.
fn mark_visited(shared: &Mutex<Shared>, meta: &Metadata) -> bool {
    match dir_id(meta) {
        Some(id) => shared
            .lock()
            .expect("scan threads do not panic")
            .visited
            .insert(id),
        None => true,
    }
}

/// One path component: its text and whether it was valid UTF-8.
type Component = (String, bool);

fn join_rel(components: &[Component]) -> (String, bool) {
    let text = components
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join("/");
    (text, components.iter().all(|(_, utf8)| *utf8))
}

fn walk_dir<'s>(
    scope: &rayon::Scope<'s>,
    canonical_root: &'s Path,
    dir: &Path,
    rel: &[Component],
    shared: &'s Mutex<Shared>,
) {
    let warn = |message: String| {
        shared
            .lock()
            .expect("scan threads do not panic")
            .warnings
            .push(message);
    };
    let (rel_text, _) = join_rel(rel);
    let shown = if rel_text.is_empty() {
        ".".to_owned()
    } else {
        rel_text
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            warn(format!("{shown}: folder could not be read ({err})"));
            return;
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                warn(format!("{shown}: an entry could not be read ({err})"));
                continue;
            }
        };
        let os_name = entry.file_name();
        let (name, utf8) = match os_name.to_str() {
            Some(name) => (name.to_owned(), true),
            None => (os_name.to_string_lossy().into_owned(), false),
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let mut child_rel = rel.to_vec();
        child_rel.push((name, utf8));
        let Ok(file_type) = entry.file_type() else {
            files.push((path, child_rel, None));
            continue;
        };
        if file_type.is_dir() {
            if let Ok(meta) = entry.metadata()
                && mark_visited(shared, &meta)
            {
                scope
                    .spawn(move |scope| walk_dir(scope, canonical_root, &path, &child_rel, shared));
            }
        } else if file_type.is_symlink() {
            match fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    let target = fs::canonicalize(&path).unwrap_or_default();
                    let (link_rel, _) = join_rel(&child_rel);
                    if target.starts_with(canonical_root) {
                        warn(format!(
                            "{link_rel}: link to a folder inside the dataset skipped (loop or double count)"
                        ));
                    } else if mark_visited(shared, &meta) {
                        scope.spawn(move |scope| {
                            walk_dir(scope, canonical_root, &path, &child_rel, shared);
                        });
                    } else {
                        warn(format!(
                            "{link_rel}: link to a folder already scanned skipped"
                        ));
                    }
                }
                Ok(meta) => files.push((path, child_rel, Some(meta))),
                Err(err) => {
                    let (link_rel, _) = join_rel(&child_rel);
                    if has_image_extension(&link_rel) {
                        files.push((path, child_rel, None));
                    } else {
                        warn(format!("{link_rel}: broken link ({err})"));
                    }
                }
            }
        } else {
            let meta = entry.metadata().ok();
            files.push((path, child_rel, meta));
        }
    }
    // Classify this folder's files in parallel with the other folders.
    scope.spawn(move |_| {
        let classified: Vec<Found> = files
            .into_par_iter()
            .flat_map_iter(|(path, rel, meta)| classify(path, &rel, meta))
            .collect();
        let mut shared = shared.lock().expect("scan threads do not panic");
        for found in classified {
            match found {
                Found::Image(entry) => shared.images.push(entry),
                Found::Sidecar(rel) => {
                    shared.sidecars.insert(rel);
                }
                Found::Manifest(rel) => shared.manifests.push(rel),
                Found::Warning(message) => shared.warnings.push(message),
                Found::Caption(path, text) => {
                    shared.captions.insert(path, text);
                }
            }
        }
    });
}

enum Found {
    Image(ScanEntry),
    Sidecar(String),
    Manifest(String),
    Warning(String),
    Caption(String, String),
}

fn extension_of(name: &str) -> Option<String> {
    let file = name.rsplit('/').next().unwrap_or(name);
    let (stem, ext) = file.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn has_image_extension(name: &str) -> bool {
    extension_of(name).is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.as_str()))
}

/// Names of caption manifests, relative to the folder they describe.
pub const MANIFEST_NAMES: &[&str] = &["captions.csv", "captions.jsonl", "captions.parquet"];

fn classify(path: PathBuf, rel: &[Component], meta: Option<Metadata>) -> Vec<Found> {
    let (rel_path, utf8_name) = join_rel(rel);
    let is_shard = extension_of(&rel_path).is_some_and(|e| e == super::shards::EXTENSION);
    if let Some(meta) = meta
        .as_ref()
        .filter(|m| utf8_name && is_shard && m.is_file())
    {
        return shard_members(&path, &rel_path, meta);
    }
    let file_name = rel.last().map_or("", |(name, _)| name.as_str());
    let is_parquet = extension_of(&rel_path).is_some_and(|e| e == super::parquet_images::EXTENSION)
        && !MANIFEST_NAMES.contains(&file_name.to_ascii_lowercase().as_str());
    if let Some(meta) = meta
        .as_ref()
        .filter(|m| utf8_name && is_parquet && m.is_file())
    {
        return parquet_rows(&path, &rel_path, meta);
    }
    classify_file(path, rel_path, utf8_name, rel, meta)
        .into_iter()
        .collect()
}

/// The images and caption sidecars of the WebDataset shard at `path` (see
/// [`super::shards`]); a member the shard cuts off is an unreadable image, a damaged
/// header a warning.
fn shard_members(path: &Path, rel_path: &str, meta: &Metadata) -> Vec<Found> {
    let listing = match super::shards::list(path) {
        Ok(listing) => listing,
        Err(err) => {
            return vec![Found::Warning(format!(
                "{rel_path}: shard could not be read ({err})"
            ))];
        }
    };
    let mtime_ns = mtime_of(meta);
    let mut found = Vec::new();
    let image = |member: &super::shards::Member, unreadable: Option<String>| {
        Found::Image(ScanEntry {
            rel_path: format!("{rel_path}/{}", member.name),
            abs_path: path.to_owned(),
            size: member.len,
            mtime_ns,
            utf8_name: member.utf8_name,
            member: unreadable.is_none().then_some((member.offset, member.len)),
            unreadable,
            row: None,
        })
    };
    // Hidden members (`._x.jpg` from macOS tar, say) are skipped, as hidden files are.
    let hidden = |m: &&super::shards::Member| m.name.split('/').any(|part| part.starts_with('.'));
    for member in listing.members.iter().filter(|m| !hidden(m)) {
        let ext = extension_of(&member.name);
        if has_image_extension(&member.name) {
            found.push(image(member, None));
        } else if member.utf8_name && matches!(ext.as_deref(), Some("txt" | "json")) {
            found.push(Found::Sidecar(format!("{rel_path}/{}", member.name)));
        }
    }
    for member in listing
        .cut
        .iter()
        .filter(|m| !hidden(m) && has_image_extension(&m.name))
    {
        found.push(image(member, Some(super::shards::CUT_OFF.to_owned())));
    }
    if let Some(why) = &listing.damaged {
        found.push(Found::Warning(format!(
            "{rel_path}: shard damaged after {} members; the rest is not read ({why})",
            listing.members.len()
        )));
    }
    found
}

/// The rows of the parquet file at `path` as images, when it holds images (see
/// [`super::parquet_images`]), with their captions.
fn parquet_rows(path: &Path, rel_path: &str, meta: &Metadata) -> Vec<Found> {
    let listing = match super::parquet_images::list(path) {
        Ok(Some(listing)) => listing,
        // Not images: embeddings, a table of some other kind.
        Ok(None) => return Vec::new(),
        Err(why) => return vec![Found::Warning(format!("{rel_path}: not read ({why})"))],
    };
    let mtime_ns = mtime_of(meta);
    let mut found: Vec<Found> = (0..listing.rows)
        .map(|row| {
            Found::Image(ScanEntry {
                rel_path: format!("{rel_path}/{row}"),
                abs_path: path.to_owned(),
                size: meta.len(),
                mtime_ns,
                utf8_name: true,
                unreadable: None,
                member: None,
                row: Some(row),
            })
        })
        .collect();
    found.extend(
        listing
            .captions
            .into_iter()
            .map(|(row, text)| Found::Caption(format!("{rel_path}/{row}"), text)),
    );
    found
}

fn mtime_of(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        })
}

fn classify_file(
    path: PathBuf,
    rel_path: String,
    utf8_name: bool,
    rel: &[Component],
    meta: Option<Metadata>,
) -> Option<Found> {
    let file_name = rel.last().map_or("", |(name, _)| name.as_str());
    let ext = extension_of(file_name);
    let is_image_ext = ext
        .as_deref()
        .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext));
    if utf8_name && MANIFEST_NAMES.contains(&file_name.to_ascii_lowercase().as_str()) {
        return Some(Found::Manifest(rel_path));
    }
    if utf8_name && matches!(ext.as_deref(), Some("txt" | "json")) {
        return Some(Found::Sidecar(rel_path));
    }
    let is_text_ext = ext
        .as_deref()
        .is_some_and(|ext| TEXT_EXTENSIONS.contains(&ext));
    let Some(meta) = meta else {
        {
            return is_image_ext.then(|| {
                Found::Image(ScanEntry {
                    rel_path,
                    abs_path: path,
                    size: 0,
                    mtime_ns: 0,
                    utf8_name,
                    unreadable: Some("file could not be inspected (broken link?)".to_owned()),
                    member: None,
                    row: None,
                })
            });
        }
    };
    if !meta.is_file() {
        return None;
    }
    if !is_image_ext && (is_text_ext || !sniff_is_image(&path)) {
        return None;
    }
    Some(Found::Image(ScanEntry {
        rel_path,
        abs_path: path,
        size: meta.len(),
        mtime_ns: mtime_of(&meta),
        utf8_name,
        unreadable: None,
        member: None,
        row: None,
    }))
}

/// Whether the file starts like an image in a format curate decodes.
fn sniff_is_image(path: &Path) -> bool {
    let mut head = [0_u8; 32];
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    super::decode::sniff_format(&head[..filled]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(extension_of("a/b.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension_of(".hidden"), None);
        assert_eq!(extension_of("noext"), None);
        assert!(has_image_extension("x/y.tiff"));
        assert!(!has_image_extension("x/y.txt"));
    }
}
