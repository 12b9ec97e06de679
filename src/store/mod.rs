//! Everything curate writes: the cache under `DIR/.curate/`, the report, keep-lists and the
//! saved decisions. Every file is written atomically ([`atomic`]).

pub mod atomic;
pub mod cache;
pub mod clusters;
mod columns;
pub mod embeddings;
pub mod keeplist;
pub mod lock;
pub mod neighbours;
pub mod npy;
pub mod report;
pub mod sealed;
pub mod session;
pub mod shards;
pub mod vectors;
pub mod verdicts;

use std::path::{Path, PathBuf};

/// What a person can do about a failed write, when the cause (`err` or any error it wraps)
/// says: a full disk or quota, a file-size limit, a read-only or forbidden folder. `None`
/// for other causes.
#[must_use]
pub fn write_advice(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use std::io::ErrorKind;
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let advice = match io.kind() {
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Some(
                    "the disk is full (or over quota): free some space, or put the cache on \
                     another disk with --cache-dir DIR",
                ),
                ErrorKind::FileTooLarge => Some(
                    "a file-size limit was reached (ulimit -f): raise it, or put the cache \
                     elsewhere with --cache-dir DIR",
                ),
                ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied => {
                    Some("curate may not write there: put the cache elsewhere with --cache-dir DIR")
                }
                _ => None,
            };
            if advice.is_some() {
                return advice;
            }
        }
        cause = e.source();
    }
    None
}

/// Name of curate's folder inside a dataset.
pub const CURATE_DIR: &str = ".curate";

/// An explicit cache folder for one dataset (`--cache-dir`): the dataset's full path and
/// the folder; set once by the front end.
static CACHE_DIR: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();

/// Makes `cache` the cache folder of the dataset at `root` (`--cache-dir`); other
/// datasets this process opens keep their own. Returns `false` when one was set already.
pub fn set_cache_dir(root: &Path, cache: PathBuf) -> bool {
    let full = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    CACHE_DIR.set((full, cache)).is_ok()
}

/// Where the cache of the dataset at `root` lives: `--cache-dir` when given for it; else
/// `DIR/.curate` when it exists or can be created; else, for a dataset folder curate may
/// not write (read-only media, another user's files), a per-user folder
/// `$XDG_CACHE_HOME/curate/<digest of DIR's full path>` (`~/.cache/...` without
/// `XDG_CACHE_HOME`, `%LOCALAPPDATA%\curate\...` on Windows) that is found again the
/// next time.
#[must_use]
pub fn curate_dir(root: &Path) -> PathBuf {
    if let Some((dataset, cache)) = CACHE_DIR.get()
        && std::path::absolute(root).unwrap_or_else(|_| root.to_owned()) == *dataset
    {
        return cache.clone();
    }
    let local = root.join(CURATE_DIR);
    if local.is_dir() {
        return local;
    }
    let fallback = user_cache_dir(root);
    if fallback.as_ref().is_some_and(|f| f.is_dir()) || !root.is_dir() {
        return fallback.unwrap_or(local);
    }
    match std::fs::create_dir(&local) {
        Ok(()) => local,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => local,
        Err(_) => fallback.unwrap_or(local),
    }
}

/// The per-user cache folder of the dataset at `root` (see [`curate_dir`]).
#[must_use]
pub fn user_cache_dir(root: &Path) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    let full = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let digest = blake3::hash(full.as_os_str().as_encoded_bytes()).to_hex();
    let name = full
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .take(40)
                .collect::<String>()
        })
        .unwrap_or_default();
    Some(
        base.join("curate")
            .join(format!("{name}-{}", &digest[..16])),
    )
}

/// The default report location, `DIR/.curate/report.parquet`.
#[must_use]
pub fn default_report_path(root: &Path) -> PathBuf {
    curate_dir(root).join("report.parquet")
}
