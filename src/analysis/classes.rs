//! Mislabelled images: how far each image's given class (its class folder, or a manifest's
//! `class` column) disagrees with what the rest of the data says about it.
//!
//! **Method.** A ridge regression from the features (L2-normalised, centred) to the
//! one-hot classes, read by its exact leave-one-out predictions: with the hat matrix
//! `H = 1/n + Z Zᵀ`, `Z = X L⁻ᵀ` and `L Lᵀ = XᵀX + λI`, the prediction for row `i` from a fit
//! without row `i` is `(F_i − h_ii·Y_i) / (1 − h_ii)`, so no refit is needed. Each image's
//! *margin* is its left-out prediction for the given class minus the best other class; the
//! score is `(1 − margin) / 2`, clamped to 0–1 (0: the data agrees, 0.5: undecided, 1: the
//! data says another class), and the suggested class is the best one. `λ` is
//! [`RIDGE`] × the mean variance per dimension, so the penalty follows the data's scale.
//!
//! **Why this and not a k-NN vote.** cleanlab's Datalab, given features, builds its
//! predicted probabilities from a k-NN classifier; its tutorial workflow uses a
//! cross-validated logistic regression. A linear read-out with exact leave-one-out uses every
//! image of every class (a k-NN vote sees 10 neighbours, which on an icon set are often
//! look-alikes from any class) and costs one pass, not five fits. Measured on the class-folder
//! sets of `benches/label_eval` (real emoji by Unicode category, real handwritten digits,
//! 8 % of labels moved, half to a confusable class), see the README.
//!
//! **Cost.** Three passes over the rows in tiles (the Gram matrix, then the whitened rows
//! twice) as burn matrix products, plus one `d × d` Cholesky factor: `O(n·d² + d³)`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use super::linalg;

/// The ridge penalty in units of the features' mean variance per dimension (measured on
/// the label sets: 0.3–2 give the same ranking within 0.002 AUROC; 4 starts to blur it).
pub const RIDGE: f64 = 1.0;

/// Above this score another class fits the image better than its own (its margin is
/// negative): the image's class is disputed.
pub const DISPUTED: f32 = 0.5;

/// Rows per tile of the matrix products.
const TILE: usize = 32_768;

/// What the data says about one image's given class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassIssue {
    /// 0–1, higher = more likely the given class is wrong (see the module documentation).
    pub score: f32,
    /// The class the data suggests (the given one when it agrees).
    pub suggested: u32,
    /// The left-out prediction for the given class minus the best other class.
    pub margin: f32,
}

fn download(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .try_into_vec()
        .expect("a float tensor downloads as f32")
}

/// The class issue of every row of `features` (`n × dim`) whose class `given[row]` is
/// known (`None` elsewhere); `classes` is the number of class indices. Fewer than two
/// classes, or fewer than three labelled rows, give no scores.
#[must_use]
pub fn class_issues(
    features: &[f32],
    dim: usize,
    given: &[Option<u32>],
    classes: usize,
    device: &Device,
) -> Vec<Option<ClassIssue>> {
    let n = given.len();
    let labelled: Vec<usize> = (0..n)
        .filter(|&row| given[row].is_some_and(|c| (c as usize) < classes))
        .collect();
    let m = labelled.len();
    if classes < 2 || m < 3 || dim == 0 || features.len() < n * dim {
        return vec![None; n];
    }
    // Rows normalised and centred on the labelled mean, made tile by tile (never a copy
    // of the whole table).
    let unit = |row: usize| {
        let v = &features[row * dim..(row + 1) * dim];
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        v.iter().map(move |a| a / norm)
    };
    let mut mean = vec![0.0_f64; dim];
    for &row in &labelled {
        for (s, v) in mean.iter_mut().zip(unit(row)) {
            *s += f64::from(v);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|s| (s / m as f64) as f32).collect();
    let rows_of = |rows: &[usize]| -> Vec<f32> {
        let mut x = Vec::with_capacity(rows.len() * dim);
        for &row in rows {
            x.extend(unit(row).zip(&mean).map(|(v, c)| v - c));
        }
        x
    };
    let tensor = |values: Vec<f32>, cols: usize| {
        let n = values.len() / cols;
        Tensor::<2>::from_data(TensorData::new(values, [n, cols]), device)
    };
    // A = XᵀX + λI, factored.
    let mut gram = vec![0.0_f64; dim * dim];
    for rows in labelled.chunks(TILE) {
        let t = tensor(rows_of(rows), dim);
        for (g, v) in gram
            .iter_mut()
            .zip(download(t.clone().transpose().matmul(t)))
        {
            *g += f64::from(v);
        }
    }
    let trace = (0..dim).map(|i| gram[i * dim + i]).sum::<f64>() / dim as f64;
    let lambda = RIDGE * trace.max(1e-9);
    for i in 0..dim {
        gram[i * dim + i] += lambda;
    }
    let l_inv = linalg::lower_inverse(&linalg::cholesky(&gram, dim), dim);
    // Whitening as a right product: Z = X · L⁻ᵀ.
    let l_inv_t: Vec<f32> = (0..dim * dim)
        .map(|i| l_inv[(i % dim) * dim + i / dim] as f32)
        .collect();
    let w = tensor(l_inv_t, dim);
    // One-hot targets, centred: T = Y − ȳ.
    let mut prior = vec![0.0_f32; classes];
    for &row in &labelled {
        prior[given[row].unwrap_or_default() as usize] += 1.0 / m as f32;
    }
    let targets = |rows: &[usize]| -> Vec<f32> {
        let mut t = Vec::with_capacity(rows.len() * classes);
        for &row in rows {
            let c = given[row].unwrap_or_default() as usize;
            t.extend((0..classes).map(|k| f32::from(u8::from(k == c)) - prior[k]));
        }
        t
    };
    // M = Zᵀ T, and each row's leverage h = 1/m + ‖z‖².
    let mut leverage = Vec::with_capacity(m);
    let mut readout = vec![0.0_f32; dim * classes];
    for rows in labelled.chunks(TILE) {
        let z = tensor(rows_of(rows), dim).matmul(w.clone());
        leverage.extend(
            download(z.clone().mul(z.clone()).sum_dim(1))
                .into_iter()
                .map(|s| 1.0 / m as f32 + s),
        );
        let part = download(z.transpose().matmul(tensor(targets(rows), classes)));
        for (r, v) in readout.iter_mut().zip(part) {
            *r += v;
        }
    }
    let readout = tensor(readout, classes);
    let mut out = vec![None; n];
    let mut at = 0;
    for rows in labelled.chunks(TILE) {
        let fitted = download(
            tensor(rows_of(rows), dim)
                .matmul(w.clone())
                .matmul(readout.clone()),
        );
        for (&row, f) in rows.iter().zip(fitted.chunks_exact(classes)) {
            let h = leverage[at].min(1.0 - 1e-6);
            at += 1;
            let own = given[row].unwrap_or_default() as usize;
            let left_out = |k: usize| {
                let y = f32::from(u8::from(k == own));
                (f[k] + prior[k] - h * y) / (1.0 - h)
            };
            let (mut best, mut best_other) = (own, f32::NEG_INFINITY);
            let own_value = left_out(own);
            let mut best_value = own_value;
            for k in (0..classes).filter(|&k| k != own) {
                let v = left_out(k);
                best_other = best_other.max(v);
                if v > best_value {
                    (best, best_value) = (k, v);
                }
            }
            let margin = own_value - best_other;
            out[row] = Some(ClassIssue {
                score: ((1.0 - margin) / 2.0).clamp(0.0, 1.0),
                suggested: best as u32,
                margin,
            });
        }
    }
    out
}

/// The class of an image by its dataset-relative path, as torchvision's `ImageFolder`
/// reads a class-folder tree: the first folder under the root (`cat/x.png` and
/// `cat/indoor/y.png` are both `cat`). Images at the root, and members of a shard at the
/// root (`SHARD.tar/MEMBER`, `FILE.parquet/ROW`), have none.
#[must_use]
pub fn folder_class(rel_path: &str) -> Option<&str> {
    let (first, rest) = rel_path.split_once('/')?;
    let extension = Path::new(first)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let shard = matches!(extension.as_deref(), Some("tar" | "parquet")) && !rest.contains('/');
    (!first.is_empty() && !shard).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_classes_follow_image_folder() {
        assert_eq!(folder_class("cat/x.png"), Some("cat"));
        assert_eq!(folder_class("cat/indoor/y.png"), Some("cat"));
        assert_eq!(folder_class("x.png"), None);
        assert_eq!(folder_class("train.tar/0001.jpg"), None);
        assert_eq!(folder_class("dogs/train.tar/0001.jpg"), Some("dogs"));
        assert_eq!(folder_class("data.parquet/17"), None);
    }

    #[test]
    fn a_point_in_the_other_cluster_is_flagged_and_given_that_class() {
        // Two clusters in 8-D; one row of cluster 0 is labelled 1 and one of cluster 1
        // labelled 0; rows 40.. have no class.
        let mut rng = fastrand::Rng::with_seed(7);
        let dim = 8;
        let mut features = Vec::new();
        let mut given = Vec::new();
        for i in 0..44 {
            let cluster = i % 2;
            for d in 0..dim {
                let centre = if d == cluster { 1.0 } else { 0.0 };
                features.push(centre + (rng.f32() - 0.5) * 0.3);
            }
            given.push((i < 40).then_some(cluster as u32));
        }
        given[4] = Some(1);
        given[7] = Some(0);
        let issues = class_issues(&features, dim, &given, 2, &Device::flex());
        assert!(issues[40..].iter().all(Option::is_none));
        let worst: Vec<usize> = {
            let mut order: Vec<usize> = (0..40).collect();
            order.sort_by(|&a, &b| {
                let score = |r: usize| issues[r].map_or(0.0, |i| i.score);
                score(b).total_cmp(&score(a))
            });
            order[..2].to_vec()
        };
        assert!(worst.contains(&4) && worst.contains(&7), "{worst:?}");
        assert_eq!(issues[4].map(|i| i.suggested), Some(0));
        assert_eq!(issues[7].map(|i| i.suggested), Some(1));
        assert!(issues[4].is_some_and(|i| i.score > 0.5));
        let clean = issues[..40]
            .iter()
            .enumerate()
            .filter(|&(r, _)| r != 4 && r != 7)
            .all(|(_, i)| i.is_some_and(|i| i.score < 0.5));
        assert!(clean, "{issues:?}");
    }

    #[test]
    fn one_class_gives_no_scores() {
        let issues = class_issues(
            &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            2,
            &[Some(0); 3],
            1,
            &Device::flex(),
        );
        assert_eq!(issues, vec![None; 3]);
    }
}
