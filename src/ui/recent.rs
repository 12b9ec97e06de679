//! Recently opened folders, in `$XDG_CONFIG_HOME/curate/recent.json` (or
//! `~/.config/curate/recent.json`), newest first.

use std::path::{Path, PathBuf};

/// Folders remembered.
const KEEP: usize = 10;

fn file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("curate").join("recent.json"))
}

/// The remembered folders that still exist.
#[must_use]
pub fn load() -> Vec<PathBuf> {
    let Some(path) = file() else {
        return Vec::new();
    };
    std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Vec<PathBuf>>(&bytes).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.is_dir())
        .collect()
}

/// Puts `dir` first and saves the list (best effort: a read-only config dir is not an
/// error worth showing). Returns the new list.
#[must_use]
pub fn remember(dir: &Path) -> Vec<PathBuf> {
    let mut list = load();
    list.retain(|p| p != dir);
    list.insert(0, dir.to_owned());
    list.truncate(KEEP);
    if let Some(path) = file()
        && let Ok(bytes) = serde_json::to_vec_pretty(&list)
    {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        crate::store::atomic::write_bytes(&path, &bytes).ok();
    }
    list
}
