//! `curate analyze` on the demo data: known answers for duplicates, outliers and bad files,
//! the output contract, and the promise never to touch the user's files.

mod common;

use std::collections::{HashMap, HashSet};

use curate::store::{self, keeplist, report};

#[test]
fn finds_planted_duplicates_outliers_and_bad_files() {
    let (_guard, root) = common::copy_of_demo();
    let (_, truth) = common::pristine();
    let before = common::tree_checksum(&root);
    let analysis = common::analyze(&root);

    // The report on disk is the one returned.
    let rows = report::read(&store::default_report_path(&root)).expect("report");
    assert_eq!(rows, analysis.rows);

    // The one rule for decisions (app and `curate export`), made to regroup from the
    // verified pairs on disk at the run's own line, gives the run's decisions.
    let near = curate::pipeline::decide::load_near(&root, &rows).expect("near-pairs.csv");
    assert_eq!(near.pairs.len(), analysis.near.pairs.len());
    let session = curate::store::session::Session {
        settings: curate::store::session::Settings {
            near_threshold: Some(near.max_difference),
            ..Default::default()
        },
        ..Default::default()
    };
    let evidence = curate::pipeline::decide::Evidence {
        near: &near,
        semantic: None,
    };
    let again = curate::pipeline::decide::automatic(&rows, evidence, &session).expect("regrouped");
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(
            (a.keep, &a.keeper, a.dup_group),
            (b.keep, &b.keeper, b.dup_group),
            "{}",
            a.path
        );
    }

    let eval = curate::pipeline::demo_score::evaluate(truth, &rows);
    println!("{eval}");
    assert_eq!(
        eval.exact_grouped.0, eval.exact_grouped.1,
        "every exact copy grouped"
    );
    assert!(eval.exact_grouped.1 >= 50, "the demo plants exact copies");
    assert!(eval.near_found.1 >= 150, "the demo plants near copies");
    // The demo plants crops of up to 8 % per border, combined transforms, 32-pixel icons
    // and look-alikes; verification keeps precision first (see the README's evaluation).
    assert!(eval.pair_recall >= 0.9, "pair recall {}", eval.pair_recall);
    assert_eq!(eval.lookalikes_grouped.0, 0, "look-alikes grouped");
    assert!(
        eval.lookalikes_grouped.1 >= 20,
        "the demo plants look-alikes"
    );
    assert_eq!(eval.unique_dropped.0, 0, "images without a copy dropped");
    assert!(
        eval.pair_precision >= 0.98,
        "pair precision {}",
        eval.pair_precision
    );
    assert_eq!(
        eval.groups_with_one_keeper.0, eval.groups_with_one_keeper.1,
        "one keeper per group"
    );
    assert!(
        eval.outlier_auroc >= 0.9,
        "outlier AUROC {}",
        eval.outlier_auroc
    );
    assert!(eval.bad_mismatches.is_empty(), "{:?}", eval.bad_mismatches);
    assert_eq!(eval.bad_handled.1, 6);

    // Every planted image is in the report, readable, with a size and map coordinates.
    let by_path: HashMap<&str, &report::ReportRow> =
        rows.iter().map(|r| (r.path.as_str(), r)).collect();
    for image in &truth.images {
        let row = by_path
            .get(image.as_str())
            .unwrap_or_else(|| panic!("{image} missing"));
        assert_eq!(row.status, "ok", "{image}: {:?}", row.error);
        assert!(row.width.is_some() && row.x.is_some() && row.ood_score.is_some());
    }
    assert_eq!(
        rows.len(),
        truth.images.len() + truth.bad.len(),
        "one row per file found"
    );

    // Captions: sidecar .txt and .json, the manifest, and a broken sidecar.
    let caption = |p: &str| by_path[p].caption.clone();
    assert_eq!(
        caption("extra/IMG_0001").as_deref(),
        Some("a city at dusk, from the manifest")
    );
    assert!(
        by_path["extra/broken_caption.jpg"]
            .caption_error
            .as_deref()
            .is_some_and(|e| e.contains("invalid JSON"))
    );
    assert!(rows.iter().filter(|r| r.caption.is_some()).count() > truth.images.len() * 9 / 10);
    assert!(
        analysis
            .warnings
            .iter()
            .any(|w| w.contains("captions.csv") && w.contains("line"))
    );
    assert!(analysis.warnings.iter().any(|w| w.contains("extra/loop")));
    // Near-duplicate captions (MinHash): every row has the column; a caption carried by
    // several images (a copy keeps its original's) is one caption group.
    let mut rows_of: HashMap<&str, Vec<i64>> = HashMap::new();
    for r in &rows {
        let group = r.caption_dup_group.expect("the folder has captions");
        if let Some(caption) = &r.caption {
            rows_of.entry(caption.as_str()).or_default().push(group);
        }
    }
    let shared: Vec<&Vec<i64>> = rows_of.values().filter(|g| g.len() > 1).collect();
    assert!(!shared.is_empty());
    for groups in shared {
        assert!(
            groups[0] >= 0 && groups.iter().all(|&g| g == groups[0]),
            "{groups:?}"
        );
    }

    // Dropped duplicates name their keeper, and keepers are in the keep-list.
    for row in rows.iter().filter(|r| r.dup_group >= 0) {
        let keeper = row.keeper.as_deref().expect("grouped rows name a keeper");
        assert!(by_path[keeper].keep);
        assert_eq!(row.keep, row.path == keeper);
        if !row.keep {
            assert!(matches!(
                row.drop_reason.as_deref(),
                Some("exact_duplicate" | "near_duplicate")
            ));
        }
    }

    // The keep-list: kept rows in scan order; bad files absent.
    let list = root.join(".curate/keep.txt");
    let kept: Vec<&str> = rows
        .iter()
        .filter(|r| r.keep)
        .map(|r| r.path.as_str())
        .collect();
    keeplist::write(&list, kept.iter().copied()).expect("write");
    let read_back = keeplist::read(&list).expect("read");
    assert_eq!(read_back, kept);
    let bad: HashSet<&str> = truth.bad.iter().map(|(p, _)| p.as_str()).collect();
    assert!(read_back.iter().all(|p| !bad.contains(p.as_str())));
    assert!(read_back.windows(2).all(|w| w[0] < w[1]), "scan order");

    // The dataset is untouched outside .curate/.
    assert_eq!(common::tree_checksum(&root), before);
}

#[test]
fn outliers_can_be_dropped_by_percentage() {
    let (_guard, root) = common::copy_of_demo();
    let options = curate::pipeline::Options {
        device: curate::embed::DeviceChoice::Cpu,
        drop_outliers_percent: Some(1.0),
        ..Default::default()
    };
    let analysis =
        curate::pipeline::analyze(&root, &options, &curate::progress::Progress::silent())
            .expect("run");
    let readable = analysis.rows.iter().filter(|r| r.status == "ok").count();
    let outliers = analysis
        .rows
        .iter()
        .filter(|r| r.drop_reason.as_deref() == Some("outlier"))
        .count();
    assert!(outliers > 0 && outliers <= (readable as f64 * 0.01).round() as usize);
    let (_, truth) = common::pristine();
    let planted: HashSet<&str> = truth.outliers.iter().map(String::as_str).collect();
    let caught = analysis
        .rows
        .iter()
        .filter(|r| {
            r.drop_reason.as_deref() == Some("outlier") && planted.contains(r.path.as_str())
        })
        .count();
    assert!(
        caught * 2 >= outliers,
        "most dropped outliers are planted ones: {caught}/{outliers}"
    );
}

/// EcoDatum-style ensemble: with a quarter of the planted outliers labelled bad and twenty
/// ordinary images labelled good, the learned score finds the other outliers (AUROC ≥
/// 0.95), and its weights are reported.
#[test]
fn a_few_labels_teach_the_ensemble_score() {
    let (_tmp, root) = common::copy_of_demo();
    let (_, truth) = common::pristine();
    // Every fourth planted outlier is labelled (the kinds are spread, blank frames too).
    let labelled: Vec<String> = truth.outliers.iter().step_by(4).cloned().collect();
    let held_out: Vec<String> = truth
        .outliers
        .iter()
        .filter(|p| !labelled.contains(p))
        .cloned()
        .collect();
    let mut labels: Vec<(String, bool)> = labelled.iter().map(|p| (p.clone(), true)).collect();
    let outliers: std::collections::HashSet<&String> = truth.outliers.iter().collect();
    labels.extend(
        truth
            .images
            .iter()
            .filter(|p| !outliers.contains(p))
            .step_by(50)
            .take(20)
            .map(|p| (p.clone(), false)),
    );
    let options = curate::pipeline::Options {
        device: curate::embed::DeviceChoice::Cpu,
        quality_labels: labels,
        ..curate::pipeline::Options::default()
    };
    let analysis =
        curate::pipeline::analyze(&root, &options, &curate::progress::Progress::silent()).unwrap();
    assert!(!analysis.summary.ensemble_weights.is_empty());
    let held: std::collections::HashSet<&String> = held_out.iter().collect();
    let labelled: std::collections::HashSet<&String> = labelled.iter().collect();
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for row in analysis.rows.iter().filter(|r| r.status == "ok") {
        if labelled.contains(&row.path) {
            continue;
        }
        let score = row.ensemble_score.unwrap();
        if held.contains(&row.path) {
            pos.push(score);
        } else {
            neg.push(score);
        }
    }
    let area = curate::analysis::auroc(&pos, &neg);
    assert!(area >= 0.95, "held-out outlier AUROC {area}");
}

/// A tar of `(name, bytes)` members, as a WebDataset shard is written.
fn tar_of<N: AsRef<std::path::Path>>(members: impl IntoIterator<Item = (N, Vec<u8>)>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

/// Writes `batch` to a parquet file at `path`, `per_group` rows to a row group.
fn write_parquet_file(path: &std::path::Path, batch: &arrow_array::RecordBatch, per_group: usize) {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(per_group))
        .build();
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

/// The report row of `path`.
fn row_of<'a>(rows: &'a [report::ReportRow], path: &str) -> &'a report::ReportRow {
    rows.iter().find(|r| r.path == path).unwrap_or_else(|| {
        panic!(
            "{path} in {:?}",
            rows.iter().map(|r| &r.path).collect::<Vec<_>>()
        )
    })
}

/// The first `n` distinct originals of the demo with one of `extensions` (no planted
/// copies, look-alikes, outliers or bad files among them), relative to it.
fn demo_originals(extensions: &[&str], n: usize) -> Vec<std::path::PathBuf> {
    let (source, _) = common::pristine();
    let originals: Vec<std::path::PathBuf> = common::tree_checksum(source)
        .into_keys()
        .filter(|p| {
            let name = p.to_string_lossy();
            p.extension()
                .is_some_and(|x| extensions.iter().any(|e| x == *e))
                && !["_dup", "_v", "lookalike", "copies", "bad/", "outlier"]
                    .iter()
                    .any(|m| name.contains(m))
        })
        .take(n)
        .collect();
    assert_eq!(originals.len(), n);
    originals
}

#[test]
fn webdataset_shards_are_read_in_place_like_files() {
    let (source, _) = common::pristine();
    let originals = demo_originals(&["png", "jpg"], 8);
    let read = |i: usize| std::fs::read(source.join(&originals[i])).expect("read");
    let ext = |i: usize| {
        originals[i]
            .extension()
            .expect("ext")
            .to_string_lossy()
            .into_owned()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("loose")).expect("mkdir");
    std::fs::create_dir_all(root.join("shards")).expect("mkdir");
    for i in 0..4 {
        std::fs::write(root.join(format!("loose/{i}.{}", ext(i))), read(i)).expect("write");
    }
    // s0: an exact copy of a loose image, a new image with its caption, another.
    let s0 = tar_of(vec![
        (format!("k000.{}", ext(0)), read(0)),
        (format!("k001.{}", ext(4)), read(4)),
        ("k001.txt".to_owned(), b"a caption in a shard".to_vec()),
        (format!("k002.{}", ext(5)), read(5)),
    ]);
    std::fs::write(root.join("shards/s0.tar"), s0).expect("write");
    // s1: cut off inside its second image.
    let second = read(7);
    let s1 = tar_of(vec![
        (format!("c000.{}", ext(6)), read(6)),
        (format!("c001.{}", ext(7)), second.clone()),
    ]);
    let cut = s1.len() - 1024 - second.len().div_ceil(512) * 512 + second.len() / 2;
    std::fs::write(root.join("shards/s1.tar"), &s1[..cut]).expect("write");
    let before = common::tree_checksum(&root);

    let analysis = common::analyze(&root);
    let row = |path: &str| row_of(&analysis.rows, path);
    let copy = row(&format!("shards/s0.tar/k000.{}", ext(0)));
    let original = row(&format!("loose/0.{}", ext(0)));
    assert_eq!(copy.status, "ok");
    assert!(copy.dup_group >= 0 && copy.dup_group == original.dup_group);
    assert_eq!(copy.exact_group, original.exact_group);
    assert!(copy.keep != original.keep, "one of the two is kept");
    let captioned = row(&format!("shards/s0.tar/k001.{}", ext(4)));
    assert_eq!(captioned.caption.as_deref(), Some("a caption in a shard"));
    assert!(captioned.keep && captioned.dup_group < 0);
    assert_eq!(row(&format!("shards/s1.tar/c000.{}", ext(6))).status, "ok");
    let cut_row = row(&format!("shards/s1.tar/c001.{}", ext(7)));
    assert_ne!(cut_row.status, "ok");
    assert!(
        cut_row
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cut off")),
        "{cut_row:?}"
    );
    assert!(!analysis.rows.iter().any(|r| r.path.contains("k001.txt")));
    assert_eq!(analysis.rows.len(), 4 + 3 + 2);
    // The keep-list names members as SHARD.tar/MEMBER.
    let list = dir.path().join("keep.txt");
    keeplist::write(
        &list,
        analysis
            .rows
            .iter()
            .filter(|r| r.keep)
            .map(|r| r.path.as_str()),
    )
    .expect("keep-list");
    let kept = keeplist::read(&list).expect("read back");
    assert!(kept.contains(&format!("shards/s0.tar/k002.{}", ext(5))));
    // The kept samples written as shards: every kept image with the files sharing its
    // key, and the dropped copy not; read back, they are the kept images.
    let out = dir.path().join("out");
    let written = curate::store::shards::write_webdataset(
        &root,
        analysis
            .rows
            .iter()
            .filter(|r| r.keep)
            .map(|r| r.path.as_str()),
        &out,
        4,
    )
    .expect("shards written");
    let kept_count = analysis.rows.iter().filter(|r| r.keep).count();
    assert_eq!(written.samples, kept_count);
    assert_eq!(written.files, kept_count + 1, "the caption rides along");
    assert_eq!(written.shards, kept_count.div_ceil(4));
    let again = curate::dataset::scan(&out).expect("scan the export");
    let mut exported: Vec<String> = again
        .images
        .iter()
        .map(|e| {
            e.rel_path
                .split_once(".tar/")
                .expect("a member")
                .1
                .to_owned()
        })
        .collect();
    exported.sort();
    let mut expected: Vec<String> = analysis
        .rows
        .iter()
        .filter(|r| r.keep)
        .map(|r| r.path.clone())
        .collect();
    expected.sort();
    assert_eq!(exported, expected);
    assert!(again.sidecars.iter().any(|s| s.ends_with("k001.txt")));
    // Cached like files: a second run decodes nothing; nothing of the user's changed.
    let warm = common::analyze(&root);
    assert_eq!(warm.summary.decoded, 0);
    assert_eq!(warm.rows, analysis.rows);
    assert_eq!(common::tree_checksum(&root), before);
}

#[test]
fn parquet_files_of_images_are_read_by_row() {
    use std::sync::Arc;
    let (source, _) = common::pristine();
    let originals = demo_originals(&["png"], 3);
    let read = |i: usize| std::fs::read(source.join(&originals[i])).expect("read");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("train")).expect("mkdir");
    std::fs::write(root.join("loose.png"), read(0)).expect("write");
    // The Hugging Face layout: image = {bytes, path}, text; two rows per row group.
    let images: Vec<Option<Vec<u8>>> = vec![Some(read(0)), Some(read(1)), Some(read(2)), None];
    let bytes: arrow_array::ArrayRef = Arc::new(
        images
            .iter()
            .map(|b| b.as_deref())
            .collect::<arrow_array::BinaryArray>(),
    );
    let names: arrow_array::ArrayRef = Arc::new(arrow_array::StringArray::from(vec![
        Some("a.png"),
        Some("b.png"),
        Some("c.png"),
        None,
    ]));
    let image = arrow_array::StructArray::from(vec![
        (
            Arc::new(arrow_schema::Field::new(
                "bytes",
                arrow_schema::DataType::Binary,
                true,
            )),
            bytes,
        ),
        (
            Arc::new(arrow_schema::Field::new(
                "path",
                arrow_schema::DataType::Utf8,
                true,
            )),
            names,
        ),
    ]);
    let text = arrow_array::StringArray::from(vec![None, Some("the second image"), None, None]);
    let batch = arrow_array::RecordBatch::try_from_iter(vec![
        ("image", Arc::new(image) as arrow_array::ArrayRef),
        ("text", Arc::new(text) as arrow_array::ArrayRef),
    ])
    .expect("batch");
    write_parquet_file(&root.join("train/part-0.parquet"), &batch, 2);

    let analysis = common::analyze(&root);
    let row = |path: &str| row_of(&analysis.rows, path);
    assert_eq!(analysis.rows.len(), 5);
    let copy = row("train/part-0.parquet/0");
    assert_eq!(copy.status, "ok");
    assert!(copy.dup_group >= 0 && copy.dup_group == row("loose.png").dup_group);
    let second = row("train/part-0.parquet/1");
    assert_eq!(second.caption.as_deref(), Some("the second image"));
    assert_eq!(row("train/part-0.parquet/2").status, "ok");
    assert_ne!(
        row("train/part-0.parquet/3").status,
        "ok",
        "a row without an image"
    );
    // Exported as WebDataset: the row's image with its format's extension, and its caption.
    let out = dir.path().join("out");
    curate::store::shards::write_webdataset(
        &root,
        analysis
            .rows
            .iter()
            .filter(|r| r.keep && r.status == "ok")
            .map(|r| r.path.as_str()),
        &out,
        100,
    )
    .expect("export");
    let exported = curate::dataset::scan(&out).expect("scan");
    assert!(
        exported
            .images
            .iter()
            .any(|e| e.rel_path == "000000.tar/train/part-0.parquet/1.png")
    );
    assert!(
        exported
            .sidecars
            .contains("000000.tar/train/part-0.parquet/1.txt")
    );
    // Exported as parquet: read back as images, with the caption.
    let tables = dir.path().join("tables");
    let kept: Vec<_> = analysis
        .rows
        .iter()
        .filter(|r| r.keep && r.status == "ok")
        .collect();
    let written = curate::store::shards::write_parquet(
        &root,
        kept.iter().map(|r| (r.path.as_str(), r.caption.as_deref())),
        &tables,
        2,
    )
    .expect("parquet export");
    assert_eq!(written.samples, kept.len());
    assert_eq!(written.shards, kept.len().div_ceil(2));
    let back = curate::dataset::scan(&tables).expect("scan");
    assert_eq!(back.images.len(), kept.len());
    assert!(back.captions.values().any(|c| c == "the second image"));
    let warm = common::analyze(&root);
    assert_eq!(warm.rows, analysis.rows);
}

#[test]
fn a_folder_its_shard_and_its_parquet_file_give_the_same_groups() {
    use std::sync::Arc;
    let (source, _) = common::pristine();
    // The first images of the demo in path order: originals with their planted copies
    // and look-alikes (no bad files).
    let images: Vec<std::path::PathBuf> = common::tree_checksum(source)
        .into_keys()
        .filter(|p| {
            p.extension().is_some_and(|x| x == "png" || x == "jpg")
                && !p.to_string_lossy().starts_with("bad/")
        })
        .take(90)
        .collect();
    let bytes: Vec<Vec<u8>> = images
        .iter()
        .map(|p| std::fs::read(source.join(p)).expect("read"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let (folder, shard, table) = (
        dir.path().join("folder"),
        dir.path().join("shard"),
        dir.path().join("table"),
    );
    for (path, data) in images.iter().zip(&bytes) {
        let target = folder.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, data).expect("write");
    }
    std::fs::create_dir_all(&shard).expect("mkdir");
    std::fs::write(
        shard.join("s.tar"),
        tar_of(images.iter().zip(bytes.iter().cloned())),
    )
    .expect("write");
    std::fs::create_dir_all(&table).expect("mkdir");
    let column: arrow_array::ArrayRef = Arc::new(
        bytes
            .iter()
            .map(|b| Some(b.as_slice()))
            .collect::<arrow_array::BinaryArray>(),
    );
    let batch = arrow_array::RecordBatch::try_from_iter(vec![("image", column)]).expect("batch");
    write_parquet_file(&table.join("p.parquet"), &batch, 32);

    // Each run's rows in the images' order, as (keep, group, exact group, kind) with the
    // groups named by their first member.
    let outcome = |root: &std::path::Path| {
        let rows = common::analyze(root).rows;
        assert_eq!(rows.len(), images.len());
        let canonical = |groups: Vec<i64>| -> Vec<Option<usize>> {
            groups
                .iter()
                .map(|&g| (g >= 0).then(|| groups.iter().position(|&h| h == g).expect("self")))
                .collect()
        };
        let keep: Vec<bool> = rows.iter().map(|r| r.keep).collect();
        let kinds: Vec<Option<String>> = rows.iter().map(|r| r.dup_kind.clone()).collect();
        (
            keep,
            canonical(rows.iter().map(|r| r.dup_group).collect()),
            canonical(rows.iter().map(|r| r.exact_group).collect()),
            kinds,
            rows.iter().map(|r| r.size_bytes).collect::<Vec<_>>(),
        )
    };
    let from_folder = outcome(&folder);
    assert!(
        from_folder.1.iter().flatten().count() >= 10,
        "the sample holds groups"
    );
    assert_eq!(outcome(&shard), from_folder, "the shard");
    assert_eq!(outcome(&table), from_folder, "the parquet file");
}
