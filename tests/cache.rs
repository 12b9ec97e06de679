//! The cache: a warm run decodes nothing, only changed files are re-processed, deleted files
//! drop out, and a damaged cache is repaired rather than trusted.

mod common;

use std::fs;

#[test]
fn warm_runs_and_incremental_updates() {
    let (_guard, root) = common::copy_of_demo();
    let cold = common::analyze(&root);
    assert_eq!(cold.summary.decoded, cold.rows.len());
    assert!(!cold.summary.neighbours_cached);

    let warm = common::analyze(&root);
    assert_eq!(
        warm.summary.decoded, 1,
        "only the file curate does not cache"
    );
    assert!(warm.summary.neighbours_cached);
    assert_eq!(warm.rows, cold.rows);

    // Change one file, add one, delete one.
    let changed = root.join("ocean/ocean_00001.jpg");
    let original = fs::read(&changed).expect("read");
    let new_bytes = fs::read(root.join("forest/forest_00002.jpg")).expect("read");
    fs::write(&changed, &new_bytes).expect("write");
    fs::write(root.join("added.jpg"), &original).expect("write");
    fs::remove_file(root.join("city/city_00003.jpg")).ok();
    let deleted_existed = cold.rows.iter().any(|r| r.path == "city/city_00003.jpg");
    let next = common::analyze(&root);
    assert_eq!(
        next.summary.decoded, 3,
        "changed + added + the uncached non-UTF-8 name"
    );
    assert_eq!(
        next.rows.len(),
        cold.rows.len() + 1 - usize::from(deleted_existed)
    );
    let row = |path: &str| next.rows.iter().find(|r| r.path == path).cloned();
    assert!(row("city/city_00003.jpg").is_none());
    let changed_row = row("ocean/ocean_00001.jpg").expect("still there");
    let forest_row = row("forest/forest_00002.jpg").expect("there");
    assert_eq!(changed_row.content_hash, forest_row.content_hash);
    assert_eq!(changed_row.dup_kind.as_deref(), Some("exact"));
    assert!(row("added.jpg").is_some());
}

/// The thumbnail pack in the cache folder `dir`.
fn thumbnail_pack(dir: &std::path::Path) -> std::path::PathBuf {
    fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("thumbs-"))
        })
        .expect("a pack")
}

#[test]
fn damaged_cache_is_repaired() {
    let (_guard, root) = common::copy_of_demo();
    let cold = common::analyze(&root);
    let dir = root.join(".curate");
    // A run killed mid-write leaves garbage temp files; a broken disk a garbled index.
    fs::write(dir.join(".index.parquet.tmp-1"), b"half a file").expect("write");
    fs::write(dir.join("index.parquet"), b"PAR1 not really").expect("write");
    let repaired = common::analyze(&root);
    assert!(
        repaired
            .warnings
            .iter()
            .any(|w| w.contains("index.parquet"))
    );
    assert_eq!(repaired.summary.decoded, cold.rows.len());
    assert_eq!(repaired.rows, cold.rows);

    // A truncated thumbnail pack: files whose thumbnails were lost are re-processed.
    let pack = thumbnail_pack(&dir);
    let len = fs::metadata(&pack).expect("meta").len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .expect("open");
    file.set_len(len / 2).expect("truncate");
    drop(file);
    let again = common::analyze(&root);
    assert!(again.summary.decoded > 1 && again.summary.decoded < cold.rows.len());
    assert_eq!(again.rows, cold.rows);
    let cache = curate::store::cache::Cache::open(&root);
    let record = again
        .records
        .iter()
        .find_map(|r| r.facts().cloned())
        .expect("a readable image");
    let thumb = cache
        .read_thumbnail(record.thumb)
        .expect("thumbnail readable");
    let decoded = image::load_from_memory(&thumb).expect("a JPEG");
    assert!(decoded.width().max(decoded.height()) <= 128);
}

#[test]
fn every_sealed_cache_file_damaged_in_turn_is_rebuilt() {
    // The neighbour graph, clusters, layout and verdicts carry a checksum: one flipped byte
    // in any of them must read as absent (recomputed and written again), never be served;
    // so does the index (in its parquet metadata).
    let (_guard, root) = common::copy_of_demo();
    let cold = common::analyze(&root);
    let dir = root.join(".curate");
    let mut sealed: Vec<std::path::PathBuf> = fs::read_dir(&dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "bin")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("thumbs-"))
        })
        .collect();
    sealed.sort();
    let names: Vec<String> = sealed
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in ["neighbours.bin", "layout.bin", "verdicts.bin"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for path in &sealed {
        let mut bytes = fs::read(path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        fs::write(path, &bytes).expect("write");
        assert!(
            curate::store::sealed::read(path).is_none(),
            "{path:?} damaged"
        );
        let again = common::analyze(&root);
        assert_eq!(again.rows, cold.rows, "after damaging {path:?}");
        assert!(
            curate::store::sealed::read(path).is_some(),
            "{path:?} written again"
        );
    }
    // The index is parquet with its checksum in its metadata: a byte flipped in its row
    // groups is found, and every file is decoded again rather than served from it.
    let index = dir.join("index.parquet");
    let mut bytes = fs::read(&index).expect("read");
    let at = bytes.len() / 4;
    bytes[at] ^= 0x55;
    fs::write(&index, &bytes).expect("write");
    assert!(curate::store::sealed::read_parquet(&index).is_err());
    let again = common::analyze(&root);
    assert!(
        again.warnings.iter().any(|w| w.contains("index.parquet")),
        "{:?}",
        again.warnings
    );
    assert_eq!(again.summary.decoded, cold.rows.len());
    assert_eq!(again.rows, cold.rows);
    assert!(curate::store::sealed::read_parquet(&index).is_ok());
}

#[test]
fn a_damaged_thumbnail_is_never_served() {
    // One byte of one thumbnail flipped in the pack: reading it fails its checksum, and the
    // next run processes that file again and serves a sound thumbnail.
    let (_guard, root) = common::copy_of_demo();
    let cold = common::analyze(&root);
    // (A warm run decodes files it cannot trust by their time stamp again.)
    let warm = common::analyze(&root).summary.decoded;
    let record = cold
        .records
        .iter()
        .find_map(|r| r.facts().map(|f| (r.rel_path.clone(), f.thumb)))
        .expect("a readable image");
    let cache = curate::store::cache::Cache::open(&root);
    let pack = thumbnail_pack(&root.join(".curate"));
    let mut bytes = fs::read(&pack).expect("read");
    let at = usize::try_from(record.1.offset).expect("offset") + record.1.len as usize / 2;
    bytes[at] ^= 0x55;
    fs::write(&pack, &bytes).expect("write");
    assert!(
        cache.read_thumbnail(record.1).is_err(),
        "damaged bytes served"
    );
    let again = common::analyze(&root);
    assert_eq!(
        again.summary.decoded,
        warm + 1,
        "only the damaged file is processed again"
    );
    assert_eq!(again.rows, cold.rows);
    let thumb = again
        .records
        .iter()
        .find(|r| r.rel_path == record.0)
        .and_then(|r| r.facts())
        .expect("still readable")
        .thumb;
    let cache = curate::store::cache::Cache::open(&root);
    let sound = cache.read_thumbnail(thumb).expect("a sound thumbnail");
    image::load_from_memory(&sound).expect("a JPEG");
}

#[test]
fn two_runs_at_once_take_turns() {
    let (_guard, root) = common::copy_of_demo();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_curate"))
            .arg("analyze")
            .arg(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start curate")
    };
    let (first, second) = (run(), run());
    let outputs = [first, second].map(|child| child.wait_with_output().expect("wait"));
    for output in &outputs {
        assert!(
            output.status.success(),
            "a run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stderr)
                .contains("waiting for another curate process")),
        "neither run said it waited for the other"
    );
    // Every cached thumbnail decodes, and the next run reuses all of it.
    let cache = curate::store::cache::Cache::open(&root);
    assert!(cache.discarded.is_none());
    let warm = common::analyze(&root);
    assert_eq!(
        warm.summary.decoded, 1,
        "only the file curate does not cache"
    );
    every_thumbnail_decodes(&cache, &warm);
    let (_clean_guard, clean_root) = common::copy_of_demo();
    let clean = common::analyze(&clean_root);
    assert_eq!(warm.rows, clean.rows, "the report of a clean run");
}

#[test]
fn the_cache_can_live_outside_the_dataset() {
    let (_guard, root) = common::copy_of_demo();
    fs::remove_dir_all(root.join(".curate")).ok();
    let before = common::tree_checksum(&root);
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let cache = elsewhere.path().join("my cache");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_curate"))
        .arg("analyze")
        .arg(&root)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--keep-list")
        .arg(elsewhere.path().join("keep.txt"))
        .output()
        .expect("run curate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(cache.join("report.parquet").is_file());
    assert!(cache.join("lock").is_file());
    assert!(
        !root.join(".curate").exists(),
        "nothing written into the dataset"
    );
    assert_eq!(common::tree_checksum(&root), before);
}

#[test]
fn a_per_user_cache_folder_is_stable_and_per_dataset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::create_dir_all(&a).expect("mkdir");
    fs::create_dir_all(&b).expect("mkdir");
    let first = curate::store::user_cache_dir(&a).expect("a home");
    assert_eq!(curate::store::user_cache_dir(&a), Some(first.clone()));
    assert_ne!(curate::store::user_cache_dir(&b), Some(first.clone()));
    assert!(first.to_string_lossy().contains("curate"));
}

#[test]
fn runs_killed_at_many_moments_leave_their_work_and_a_sound_cache() {
    let (_guard, root) = common::copy_of_demo();
    fs::remove_dir_all(root.join(".curate")).ok();
    let (index, report) = (
        root.join(".curate/index.parquet"),
        root.join(".curate/report.parquet"),
    );
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_curate"))
            .arg("analyze")
            .arg(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start curate")
    };
    let kill = |mut child: std::process::Child| {
        child.kill().ok(); // SIGKILL on Unix
        child.wait().expect("reap");
    };
    // What a killed run committed is sound and never lost: the index reads, and it holds at
    // least as many files as before the run.
    let mut cached = 0;
    let sound = |moment: &str, cached: &mut usize| {
        let now = curate::store::cache::Cache::open(&root).len();
        assert!(
            now >= *cached,
            "killed {moment}: the cache went from {cached} files to {now}"
        );
        *cached = now;
    };
    // Killed at moments before the first checkpoint (starting, scanning, decoding).
    for delay in [0, 30, 120, 400] {
        let child = spawn();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        kill(child);
        sound(&format!("after {delay} ms"), &mut cached);
    }
    // Killed right after its first checkpoint.
    fs::remove_dir_all(root.join(".curate")).ok();
    cached = 0;
    let mut child = spawn();
    let started = std::time::Instant::now();
    while !index.exists() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(started.elapsed().as_secs() < 300, "no checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let ended_already = report.exists() || child.try_wait().expect("wait").is_some();
    kill(child);
    assert!(!ended_already, "the run finished before it could be killed");
    sound("after its first checkpoint", &mut cached);
    let first = cached;
    // Runs that resume from it, killed at later moments (more decoding, the global stages).
    for delay in [300, 1500, 4000] {
        let child = spawn();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        kill(child);
        sound(&format!("resuming, after {delay} ms"), &mut cached);
    }

    let next = common::analyze(&root);
    // The first checkpoint holds at least the first 1,024 files.
    assert!(first >= 1000, "the first checkpoint holds {first} files");
    assert!(
        next.summary.decoded + 1000 <= next.rows.len(),
        "the killed runs' checkpoints were not reused ({} of {} decoded again)",
        next.summary.decoded,
        next.rows.len()
    );
    every_thumbnail_decodes(&curate::store::cache::Cache::open(&root), &next);
    let (_clean_guard, clean_root) = common::copy_of_demo();
    fs::remove_dir_all(clean_root.join(".curate")).ok();
    assert_eq!(
        next.rows,
        common::analyze(&clean_root).rows,
        "the report of a clean run"
    );
}

/// Every thumbnail the run's records name is in the pack and is a whole JPEG.
fn every_thumbnail_decodes(cache: &curate::store::cache::Cache, run: &curate::pipeline::Analysis) {
    for facts in run.records.iter().filter_map(|r| r.facts()) {
        let thumb = cache
            .read_thumbnail(facts.thumb)
            .expect("thumbnail readable");
        image::load_from_memory(&thumb).expect("a whole JPEG");
    }
}

/// `curate analyze` run with every file it writes limited to `limit` bytes (the kernel
/// fails writes beyond it, as on a full disk); `None`: no limit.
#[cfg(unix)]
fn analyze_within(
    root: &std::path::Path,
    keep_list: &std::path::Path,
    limit: Option<u64>,
) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_curate"));
    command
        .arg("analyze")
        .arg(root)
        .args(["--model", "none", "--keep-list"])
        .arg(keep_list);
    if let Some(limit) = limit {
        use std::os::unix::process::CommandExt as _;
        #[allow(
            unsafe_code,
            reason = "a file-size limit for the child, set between fork and exec"
        )]
        // SAFETY: only async-signal-safe calls (signal, setrlimit) run in the child.
        unsafe {
            command.pre_exec(move || {
                // A write past the limit then fails with EFBIG instead of killing.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    command.output().expect("run curate")
}

#[test]
#[cfg(unix)]
fn writes_that_fail_say_why_and_leave_the_last_results_whole() {
    let (source, _) = common::pristine();
    // Demo images from all over its folders (in path order), copied into one folder.
    let images: Vec<std::path::PathBuf> = common::tree_checksum(source)
        .into_keys()
        .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg"))
        .collect();
    assert!(images.len() >= 40, "demo images");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("data");
    fs::create_dir_all(&root).expect("mkdir");
    let add = |from: &[std::path::PathBuf]| {
        for path in from {
            let name = path.to_string_lossy().replace(['/', '\\'], "_");
            fs::copy(source.join(path), root.join(name)).expect("copy");
        }
    };
    add(&images[..20]);
    let keep_list = dir.path().join("keep.txt");
    let first = analyze_within(&root, &keep_list, None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let snapshot = || -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
        let mut files: std::collections::BTreeMap<_, _> = fs::read_dir(root.join(".curate"))
            .expect("cache")
            .map(|e| {
                let path = e.expect("entry").path();
                let bytes = fs::read(&path).expect("read");
                (path, bytes)
            })
            .collect();
        files.insert(keep_list.clone(), fs::read(&keep_list).expect("keep-list"));
        files
    };
    let before = snapshot();
    // New images to cache, and a small limit: the first write that grows a file fails.
    add(&images[20..40]);
    let images_before = common::tree_checksum(&root);
    let failed = analyze_within(&root, &keep_list, Some(4096));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a run that could not write says so: {stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        errors[0].contains("cannot write") && errors[0].contains("--cache-dir"),
        "what failed and what to do: {}",
        errors[0]
    );
    assert_eq!(
        errors[0].matches("os error").count(),
        1,
        "the cause said once: {}",
        errors[0]
    );
    // The report, the index, every sealed cache file and the keep-list of the last run
    // are as they were (the lock names its last holder; the thumbnail pack may hold unreferenced bytes: they are garbage
    // the index never points at); no temporary file is left behind.
    let after = snapshot();
    let pack = |p: &std::path::Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("thumbs-"))
    };
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "no file added or removed"
    );
    for (path, bytes) in &before {
        if path.ends_with("lock") {
            // Names the process that holds it.
            continue;
        }
        if pack(path) {
            assert!(
                after[path].starts_with(bytes),
                "the pack's committed bytes stay"
            );
        } else {
            assert!(after[path] == *bytes, "{} is unchanged", path.display());
        }
    }
    assert_eq!(
        common::tree_checksum(&root),
        images_before,
        "images untouched"
    );
    // With room again, the next run completes and covers every image.
    let again = analyze_within(&root, &keep_list, None);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let kept = fs::read_to_string(&keep_list).expect("keep-list");
    assert!(
        kept.lines().count() > 20,
        "the new images are analysed: {kept}"
    );
    let report = root.join(".curate/report.parquet");
    let rows = curate::store::report::read(&report).expect("report");
    assert_eq!(rows.len(), 40);
    // A warm run that fails to write (nothing new to decode) leaves the report too.
    let (report_before, kept_before) = (fs::read(&report).expect("report"), kept);
    let warm = analyze_within(&root, &keep_list, Some(4096));
    assert!(!warm.status.success());
    assert!(fs::read(&report).expect("report") == report_before);
    assert_eq!(
        fs::read_to_string(&keep_list).expect("keep-list"),
        kept_before
    );
}
