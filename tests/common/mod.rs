//! Shared fixtures: the demo dataset, generated once per test binary and copied for tests
//! that change it.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use curate::dataset::demo::{self, Truth};
use curate::embed::DeviceChoice;
use curate::pipeline::{self, Analysis, Options};
use curate::progress::Progress;

struct Demo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    truth: Truth,
}

/// The pristine demo dataset and its truth (never analysed in place).
pub fn pristine() -> (&'static Path, &'static Truth) {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    let demo = DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("demo");
        let truth = demo::generate(&path, demo::DEFAULT_SCENES).expect("demo data");
        Demo {
            _dir: dir,
            path,
            truth,
        }
    });
    (&demo.path, &demo.truth)
}

/// A fresh copy of the demo dataset (symbolic links copied as links).
pub fn copy_of_demo() -> (tempfile::TempDir, PathBuf) {
    let (source, _) = pristine();
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("demo");
    copy_tree(source, &target);
    (dir, target)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("type");
        let target = to.join(entry.file_name());
        if kind.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(fs::read_link(entry.path()).expect("link"), &target)
                .expect("symlink");
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Analyses on the CPU with default options.
pub fn analyze(root: &Path) -> Analysis {
    let options = Options {
        device: DeviceChoice::Cpu,
        ..Options::default()
    };
    pipeline::analyze(root, &options, &Progress::silent()).expect("analysis completes")
}

/// blake3 of every file (and link target) under `root` outside `.curate/`, by path.
pub fn tree_checksum(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).expect("list") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("inside").to_owned();
        if rel.starts_with(".curate") {
            continue;
        }
        let kind = entry.file_type().expect("type");
        if kind.is_symlink() {
            out.insert(
                rel,
                format!("link:{}", fs::read_link(&path).expect("link").display()),
            );
        } else if kind.is_dir() {
            walk(root, &path, out);
        } else {
            let meta = entry.metadata().expect("meta");
            let hash = blake3::hash(&fs::read(&path).expect("read"));
            out.insert(rel, format!("{hash} {:?}", meta.modified().ok()));
        }
    }
}
