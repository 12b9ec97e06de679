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
pub mod session;
pub mod vectors;
pub mod verdicts;

use std::path::{Path, PathBuf};

/// Name of curate's folder inside a dataset.
pub const CURATE_DIR: &str = ".curate";

/// `DIR/.curate`.
#[must_use]
pub fn curate_dir(root: &Path) -> PathBuf {
    root.join(CURATE_DIR)
}

/// The default report location, `DIR/.curate/report.parquet`.
#[must_use]
pub fn default_report_path(root: &Path) -> PathBuf {
    curate_dir(root).join("report.parquet")
}
