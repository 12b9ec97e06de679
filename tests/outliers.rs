//! The three outlier scores on synthetic embeddings with known answers: clustered inliers
//! (10 clusters on the unit sphere in 64-d) and planted outliers (random directions, and
//! points half-way between two clusters). Each
//! score must rank the planted outliers above the inliers with AUROC ≥ 0.95.

use burn::tensor::Device;
use curate::analysis::auroc;
use curate::analysis::{knn, mahalanobis};
use curate::progress::Progress;
use curate::rng::SplitMix64;

/// A random unit vector.
fn unit(rng: &mut SplitMix64, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

#[test]
fn every_outlier_score_finds_the_planted_outliers() {
    const DIM: usize = 64;
    let mut rng = SplitMix64::new(42, 0);
    let centres: Vec<Vec<f32>> = (0..10).map(|_| unit(&mut rng, DIM)).collect();
    let mut features = Vec::new();
    let mut planted = Vec::new();
    for i in 0..2_040 {
        let outlier = i % 51 == 50;
        // Outliers: half in random directions, half half-way between two clusters (off
        // every cluster, but inside the span the inliers vary in).
        let base: Vec<f32> = if !outlier {
            centres[i % 10].clone()
        } else if i % 2 == 0 {
            unit(&mut rng, DIM)
        } else {
            let (a, b) = (&centres[i % 10], &centres[(i / 10) % 10]);
            let b = if std::ptr::eq(a, b) {
                &centres[(i + 1) % 10]
            } else {
                b
            };
            a.iter().zip(b).map(|(x, y)| x + y).collect()
        };
        let noisy: Vec<f32> = base.iter().map(|x| x + 0.1 * rng.gauss()).collect();
        let n = noisy.iter().map(|x| x * x).sum::<f32>().sqrt();
        let v: Vec<f32> = noisy.into_iter().map(|x| x / n).collect();
        features.extend(v);
        planted.push(outlier);
    }
    let device = Device::flex();
    let graph = knn::exact(&features, DIM, 16, &device, &Progress::silent());
    let no_groups = vec![-1_i64; planted.len()];
    let scores = [
        ("k-th", knn::outlier_scores(&graph, &no_groups, 5)),
        ("mean", knn::mean_knn_scores(&graph, &no_groups, 5)),
        ("mahalanobis", mahalanobis::scores(&features, DIM, &device)),
    ];
    for (name, score) in scores {
        let pick = |want: bool| -> Vec<f32> {
            score
                .iter()
                .zip(&planted)
                .filter(|&(_, &p)| p == want)
                .map(|(&s, _)| s)
                .collect()
        };
        let (pos, neg) = (pick(true), pick(false));
        let area = auroc(&pos, &neg);
        println!("{name}: AUROC {area:.4} ({} outliers)", pos.len());
        assert!(area >= 0.95, "{name}: AUROC {area}");
    }
}

/// Pure noise among real photo patches: sharp and full of information, so no quality
/// measure calls it odd, but its flat patches are noisy where no photo's are. The combined
/// score (`ood_score` by default) ranks the noise images above every patch.
#[test]
fn noise_among_photo_patches_is_an_outlier() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/efficientnet");
    for name in ["chelsea", "coffee", "rocket"] {
        let photo = image::open(data.join(format!("{name}.png")))
            .expect("test photo")
            .to_rgb8();
        for y in (0..=photo.height() - 64).step_by(40) {
            for x in (0..=photo.width() - 64).step_by(40) {
                let patch = image::imageops::crop_imm(&photo, x, y, 64, 64).to_image();
                patch
                    .save(root.join(format!("{name}-{x}-{y}.png")))
                    .expect("write patch");
            }
        }
    }
    let mut rng = SplitMix64::new(7, 0);
    let noise = ["noise-grey.png", "noise-colour.png", "noise-fine.png"];
    for (i, name) in noise.iter().enumerate() {
        let sigma = [50.0, 70.0, 35.0][i];
        let image = image::RgbImage::from_fn(64, 64, |_, _| {
            let grey = rng.gauss() * sigma;
            let px = |v: f32| (128.0 + v).clamp(0.0, 255.0) as u8;
            if i == 1 {
                image::Rgb([
                    px(rng.gauss() * sigma),
                    px(rng.gauss() * sigma),
                    px(rng.gauss() * sigma),
                ])
            } else {
                image::Rgb([px(grey), px(grey), px(grey)])
            }
        });
        image.save(root.join(name)).expect("write noise");
    }
    let options = curate::pipeline::Options {
        device: curate::embed::DeviceChoice::Cpu,
        ..curate::pipeline::Options::default()
    };
    let analysis =
        curate::pipeline::analyze(root, &options, &Progress::silent()).expect("analysis");
    let mut ranked: Vec<(f32, &str)> = analysis
        .rows
        .iter()
        .map(|r| (r.ood_score.expect("readable"), r.path.as_str()))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<&str> = ranked.iter().take(noise.len()).map(|r| r.1).collect();
    for name in noise {
        assert!(top.contains(&name), "{name} not among {top:?} ({ranked:?})");
    }
}
