//! Mislabelled images with known answers: a class-folder tree of real photo patches
//! (three test photos, one class each) with some patches put in the wrong folder, and the
//! same classes given by a manifest's `class` column.

use std::fmt::Write as _;
use std::path::Path;

use curate::pipeline::{ClassFrom, Options, analyze};
use curate::progress::Progress;

const PHOTOS: [&str; 3] = ["chelsea", "coffee", "rocket"];

/// Writes 64-pixel patches of the three test photos under `root/<folder>/`, every fifth
/// one of each photo into the next photo's folder. Returns (path, true class, folder).
fn write_patches(root: &Path) -> Vec<(String, String, String)> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/efficientnet");
    let mut written = Vec::new();
    for (p, name) in PHOTOS.iter().enumerate() {
        let photo = image::open(data.join(format!("{name}.png")))
            .expect("test photo")
            .to_rgb8();
        let mut i = 0;
        for y in (0..=photo.height() - 64).step_by(40) {
            for x in (0..=photo.width() - 64).step_by(40) {
                let folder = if i % 5 == 3 {
                    PHOTOS[(p + 1) % PHOTOS.len()]
                } else {
                    name
                };
                i += 1;
                let rel = format!("{folder}/{name}-{x}-{y}.png");
                std::fs::create_dir_all(root.join(folder)).expect("mkdir");
                image::imageops::crop_imm(&photo, x, y, 64, 64)
                    .to_image()
                    .save(root.join(&rel))
                    .expect("write patch");
                written.push((rel, (*name).to_owned(), folder.to_owned()));
            }
        }
    }
    written
}

fn options(class_from: ClassFrom) -> Options {
    Options {
        device: curate::embed::DeviceChoice::Cpu,
        class_from: Some(class_from),
        ..Options::default()
    }
}

#[test]
fn patches_in_the_wrong_class_folder_rank_first_and_get_their_class_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let written = write_patches(root);
    let moved: Vec<&(String, String, String)> = written
        .iter()
        .filter(|(_, class, folder)| class != folder)
        .collect();
    assert!(moved.len() >= 6, "{}", moved.len());
    let analysis =
        analyze(root, &options(ClassFrom::Folder), &Progress::silent()).expect("analysis");
    assert_eq!(analysis.summary.classes, 3);
    let row = |path: &str| {
        analysis
            .rows
            .iter()
            .find(|r| r.path == path)
            .expect("row of a written patch")
    };
    let mut ranked: Vec<(f32, &str)> = analysis
        .rows
        .iter()
        .map(|r| (r.class_issue_score.expect("scored"), r.path.as_str()))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<&str> = ranked.iter().take(moved.len()).map(|r| r.1).collect();
    for (path, class, folder) in &moved {
        let r = row(path);
        assert_eq!(r.given_class.as_deref(), Some(folder.as_str()));
        assert!(top.contains(&path.as_str()), "{path} not among {top:?}");
        assert_eq!(r.suggested_class.as_deref(), Some(class.as_str()), "{path}");
    }
    // The rest keep their class (a patch of plain background may look like another
    // photo's: a few may be disputed), and the report on disk says the same.
    let clean: Vec<&(String, String, String)> = written.iter().filter(|(_, c, f)| c == f).collect();
    let disputed = clean
        .iter()
        .filter(|(path, _, folder)| row(path).suggested_class.as_deref() != Some(folder.as_str()))
        .count();
    assert!(
        disputed * 10 <= clean.len(),
        "{disputed} of {} disputed",
        clean.len()
    );
    let on_disk =
        curate::store::report::read(&curate::store::default_report_path(root)).expect("report");
    assert_eq!(on_disk, analysis.rows);
}

#[test]
fn a_manifest_class_column_gives_the_classes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let written = write_patches(root);
    // The manifest knows the true classes (and names a file that is not there).
    let mut csv = String::from("path,class\n");
    for (path, class, _) in &written {
        writeln!(csv, "{path},{class}").expect("write to a string");
    }
    csv.push_str("ghost.png,rocket\n");
    std::fs::write(root.join("captions.csv"), csv).expect("manifest");
    let analysis =
        analyze(root, &options(ClassFrom::Manifest), &Progress::silent()).expect("analysis");
    assert_eq!(analysis.summary.classes, 3);
    assert_eq!(analysis.summary.classed, written.len());
    for (path, class, _) in &written {
        let r = analysis.rows.iter().find(|r| &r.path == path).expect("row");
        assert_eq!(r.given_class.as_deref(), Some(class.as_str()));
        assert_eq!(r.caption, None);
        assert!(
            r.class_issue_score.is_some_and(|s| s < 0.5),
            "{path}: {r:?}"
        );
    }
    // Without --class-from the report has no class columns filled.
    let plain = analyze(
        root,
        &Options {
            class_from: None,
            ..options(ClassFrom::Folder)
        },
        &Progress::silent(),
    )
    .expect("analysis");
    assert!(
        plain
            .rows
            .iter()
            .all(|r| r.given_class.is_none() && r.class_issue_score.is_none())
    );
}
