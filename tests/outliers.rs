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
