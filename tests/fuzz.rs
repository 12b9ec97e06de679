//! Mutation fuzzing of every parser of user files: images through the decode path, caption
//! sidecars and manifests (CSV, JSON Lines, parquet), `session.json`, embeddings (`.npy`,
//! parquet), the report, the near-pair list, and a model folder (config, tokenizer,
//! safetensors). Seeds are valid files; each input is a seeded mutation (bit flips,
//! interesting bytes, truncation, chunk duplication, insertion, splicing). No input may
//! panic. The number of inputs per parser is `CURATE_FUZZ_INPUTS` (default 150, a few
//! seconds); `CURATE_FUZZ_SEED` moves the sequence.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use curate::dataset::DecodeLimits;

/// splitmix64: a seeded sequence, so any failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn inputs() -> usize {
    std::env::var("CURATE_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

fn base_seed() -> u64 {
    std::env::var("CURATE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_ffee)
}

/// One mutation of `seed` (a few stacked edits).
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'\n', b'"', b','];
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => data.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                let chunk = data[from..to].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            4 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(16);
                let noise: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
            5 if len > 4 => {
                // Overwrite a 4-byte window with a large or negative length.
                let at = rng.below(len - 3);
                let value: u32 = [0, 1, 0xffff_ffff, 0x7fff_ffff, 0x8000_0000][rng.below(5)];
                data[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            _ if len > 0 => {
                let from = rng.below(len);
                data.truncate(from);
                data.extend_from_slice(&seed[rng.below(seed.len())..]);
            }
            _ => data.push(rng.next() as u8),
        }
    }
    data
}

/// Runs `parse` on `inputs()` mutations of each seed; returns (inputs tried, panics).
fn fuzz(name: &str, seeds: &[Vec<u8>], mut parse: impl FnMut(&[u8])) -> (usize, Vec<String>) {
    let mut rng = Rng(base_seed() ^ blake3::hash(name.as_bytes()).as_bytes()[0] as u64);
    let mut panics = Vec::new();
    let n = inputs();
    for i in 0..n {
        let seed = &seeds[i % seeds.len()];
        let input = if i < seeds.len() {
            seed.clone()
        } else {
            mutate(seed, &mut rng)
        };
        if catch_unwind(AssertUnwindSafe(|| parse(&input))).is_err() {
            panics.push(format!("{name}: input {i} ({} bytes)", input.len()));
            let dump = std::env::temp_dir().join(format!("curate-fuzz-{name}-{i}.bin"));
            std::fs::write(&dump, &input).ok();
        }
    }
    println!("{name}: {n} inputs, {} panics", panics.len());
    (n, panics)
}

fn encoded(format: image::ImageFormat, rgba: bool) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let rgb = image::RgbImage::from_fn(23, 17, |x, y| {
        image::Rgb([(x * 11) as u8, (y * 15) as u8, ((x + y) * 7) as u8])
    });
    let image = if rgba {
        image::DynamicImage::ImageRgba8(image::DynamicImage::ImageRgb8(rgb).to_rgba8())
    } else {
        image::DynamicImage::ImageRgb8(rgb)
    };
    image.write_to(&mut out, format).expect("encode a seed");
    out.into_inner()
}

fn check(results: Vec<(usize, Vec<String>)>) {
    let panics: Vec<String> = results.into_iter().flat_map(|r| r.1).collect();
    assert!(panics.is_empty(), "panics on user data: {panics:#?}");
}

#[test]
fn image_decoding_never_panics() {
    use image::ImageFormat as F;
    let seeds = vec![
        encoded(F::Png, false),
        encoded(F::Png, true),
        encoded(F::Jpeg, false),
        encoded(F::Gif, false),
        encoded(F::Bmp, false),
        encoded(F::Tiff, false),
        encoded(F::WebP, false),
    ];
    let limits = DecodeLimits::default();
    let result = fuzz("image", &seeds, |bytes| {
        let _ = curate::dataset::decode::sniff_format(bytes);
        let _ = curate::dataset::decode::decode_rgb(bytes, limits);
    });
    check(vec![result]);
}

/// Writes `bytes` to `name` in a fresh folder with one image, scans it and loads captions.
fn captions_of(dir: &Path, name: &str, bytes: &[u8]) {
    let root = dir.join("set");
    std::fs::remove_dir_all(&root).ok();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.png"), encoded(image::ImageFormat::Png, false)).unwrap();
    std::fs::write(root.join(name), bytes).unwrap();
    let scan = curate::dataset::scan::scan(&root).expect("scan");
    let _ = curate::dataset::captions::load(&root, &scan);
}

#[test]
fn captions_and_manifests_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = vec![b"a red car on a road".to_vec()];
    let json = vec![br#"{"caption": "a red car", "text": "x"}"#.to_vec()];
    let csv = vec![b"path,caption\na.png,\"a red, car\"\n../outside.png,x\n".to_vec()];
    let jsonl = vec![
        b"{\"path\": \"a.png\", \"caption\": \"a car\"}\n{\"file\": \"/etc/passwd\"}\n".to_vec(),
    ];
    let results = vec![
        fuzz("sidecar-txt", &sidecar, |b| {
            captions_of(dir.path(), "a.txt", b);
        }),
        fuzz("sidecar-json", &json, |b| {
            captions_of(dir.path(), "a.json", b);
        }),
        fuzz("manifest-csv", &csv, |b| {
            captions_of(dir.path(), "captions.csv", b);
        }),
        fuzz("manifest-jsonl", &jsonl, |b| {
            captions_of(dir.path(), "captions.jsonl", b);
        }),
    ];
    check(results);
}

#[test]
fn session_report_and_cache_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    std::fs::create_dir_all(root.join(".curate")).unwrap();
    let session = br#"{"version":1,"decisions":{"a.png":{"keep":false,"reason":"lasso","kind":"near_duplicate","keeper":true}},"quality_labels":{"a.png":"bad"},"not_duplicates":[["a.png","b.png"]],"settings":{"near_threshold":4.5,"keeper_policy":"central","learned_keepers":false}}"#.to_vec();
    let pairs = b"path_a,path_b,difference,mean,fine,copy,max_difference\na.png,b.png,1.5,0.5,2,true,6.5\nc.png,d.png,,,,false,6.5\n".to_vec();
    let report = root.join(".curate/report.parquet");
    let rows: Vec<curate::store::report::ReportRow> = (0..3)
        .map(|i| curate::store::report::ReportRow {
            path: format!("{i}.png"),
            status: "ok".to_owned(),
            keep: i != 1,
            width: Some(16),
            height: Some(16),
            dup_group: if i < 2 { 0 } else { -1 },
            caption: Some("a caption".to_owned()),
            ..Default::default()
        })
        .collect();
    curate::store::report::write(&report, &rows).unwrap();
    let report_seed = std::fs::read(&report).unwrap();
    // Inputs that once made the parquet crate panic: errors now.
    let found = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    for name in ["report-page-panic.parquet", "report-footer-panic.parquet"] {
        assert!(
            curate::store::report::read(&found.join(name)).is_err(),
            "{name}"
        );
    }
    let embeddings = dir.path().join("vectors.parquet");
    let results = vec![
        fuzz("report-parquet", std::slice::from_ref(&report_seed), |b| {
            std::fs::write(&report, b).unwrap();
            let _ = curate::store::report::read(&report);
        }),
        fuzz(
            "embeddings-parquet",
            std::slice::from_ref(&report_seed),
            |b| {
                std::fs::write(&embeddings, b).unwrap();
                let _ = curate::store::vectors::read_embeddings(&embeddings, None);
            },
        ),
        fuzz(
            "manifest-parquet",
            std::slice::from_ref(&report_seed),
            |b| {
                captions_of(dir.path(), "captions.parquet", b);
            },
        ),
        fuzz("session", &[session], |b| {
            std::fs::write(curate::store::session::path(&root), b).unwrap();
            let _ = curate::store::session::Session::load(&root);
        }),
        fuzz("near-pairs", &[pairs], |b| {
            std::fs::write(root.join(".curate/near-pairs.csv"), b).unwrap();
            let _ = curate::store::verdicts::read_pairs_csv(&root);
        }),
    ];
    check(results);
}

#[test]
fn embeddings_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("vectors.npy");
    curate::store::npy::write_f32(&npy, &[3, 4], &[0.5; 12]).unwrap();
    std::fs::write(dir.path().join("vectors.txt"), "a.png\nb.png\nc.png\n").unwrap();
    let npy_seed = std::fs::read(&npy).unwrap();
    let results = vec![fuzz("npy", &[npy_seed], |b| {
        std::fs::write(&npy, b).unwrap();
        let _ = curate::store::npy::read_f32(&npy);
        let _ = curate::store::npy::read_i64(&npy);
        let _ = curate::store::vectors::read_embeddings(&npy, None);
    })];
    check(results);
}

#[test]
fn webdataset_shards_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("000.png", &b"\x89PNG\r\n\x1a\n not really"[..]),
        ("000.txt", b"a caption"),
        ("sub/001.jpg", b"\xFF\xD8\xFF"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes).unwrap();
    }
    let seed = builder.into_inner().unwrap();
    let shard = dir.path().join("s.tar");
    let results = vec![fuzz("webdataset-tar", &[seed], |b| {
        std::fs::write(&shard, b).unwrap();
        if let Ok(listing) = curate::dataset::shards::list(&shard) {
            for member in &listing.members {
                let _ = curate::dataset::shards::read_path(
                    dir.path(),
                    &format!("s.tar/{}", member.name),
                );
            }
        }
        let _ = curate::dataset::scan(dir.path());
    })];
    check(results);
}

#[test]
fn parquet_files_of_images_never_panic() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let bytes: arrow_array::ArrayRef = Arc::new(arrow_array::BinaryArray::from_iter([
        Some(&b"\x89PNG\r\n\x1a\n not really"[..]),
        None,
        Some(b"\xFF\xD8\xFF"),
    ]));
    let text: arrow_array::ArrayRef = Arc::new(arrow_array::StringArray::from(vec![
        Some("a"),
        None,
        Some("c"),
    ]));
    let batch =
        arrow_array::RecordBatch::try_from_iter(vec![("image", bytes), ("text", text)]).unwrap();
    let mut seed = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut seed, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let file = dir.path().join("images.parquet");
    let results = vec![fuzz("parquet-images", &[seed], |b| {
        std::fs::write(&file, b).unwrap();
        if let Ok(Some(listing)) = curate::dataset::parquet_images::list(&file) {
            for row in 0..listing.rows.min(8) {
                let _ = curate::dataset::parquet_images::read_row(&file, row);
            }
        }
        let _ = curate::dataset::scan(dir.path());
    })];
    check(results);
}

#[test]
fn a_model_folder_never_panics() {
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-clip");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let files = [
        "config.json",
        "vocab.json",
        "merges.txt",
        "preprocessor_config.json",
        "model.safetensors",
    ];
    let restore = || {
        for f in files {
            std::fs::copy(tiny.join(f), model.join(f)).unwrap();
        }
    };
    let device = burn::tensor::Device::flex();
    let mut results = Vec::new();
    // Fewer inputs per file: each one loads a (tiny) network.
    for f in files {
        let seed = std::fs::read(tiny.join(f)).unwrap();
        // The header (and the first bytes of the data) of the weights is where a parser can
        // go wrong; mutations past it only change weights.
        let seed = if f == "model.safetensors" {
            seed[..seed.len().min(4096)].to_vec()
        } else {
            seed
        };
        let tail = std::fs::read(tiny.join(f)).unwrap();
        results.push(fuzz(
            &format!("model-{f}"),
            std::slice::from_ref(&seed),
            |b| {
                restore();
                let mut bytes = b.to_vec();
                if f == "model.safetensors" && b.len() >= seed.len() {
                    bytes.extend_from_slice(&tail[seed.len()..]);
                }
                std::fs::write(model.join(f), &bytes).unwrap();
                let _ = curate::embed::clip::ClipModel::load(&model, &device);
            },
        ));
    }
    check(results);
}
