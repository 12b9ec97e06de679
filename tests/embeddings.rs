//! `curate analyze --embeddings`: vectors computed elsewhere replace the model; images on
//! disk without a vector are listed, rows without an image are analysed from their vectors.

use std::collections::HashMap;

use curate::pipeline::{self, EmbeddingsInput, Options};
use curate::progress::Progress;
use curate::rng::SplitMix64;
use curate::store::npy;

const DIM: usize = 32;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

#[test]
fn imported_vectors_drive_the_analysis_and_vector_only_rows_are_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let truth = curate::dataset::demo::generate(dir.path(), 300).unwrap();
    let mut rng = SplitMix64::new(5, 0);
    let mut paths = Vec::new();
    let mut data = Vec::new();
    // Every image but the first five gets a random vector.
    for path in truth.images.iter().skip(5) {
        paths.push(path.clone());
        data.extend(unit((0..DIM).map(|_| rng.gauss()).collect()));
    }
    // 40 rows elsewhere: 20 bases and a jittered copy of each (cosine ≈ 0.999).
    for i in 0..20 {
        let base = unit((0..DIM).map(|_| rng.gauss()).collect());
        let copy = unit(base.iter().map(|x| x + 0.005 * rng.gauss()).collect());
        paths.push(format!("elsewhere/{i:03}-a.jpg"));
        data.extend(&base);
        paths.push(format!("elsewhere/{i:03}-b.jpg"));
        data.extend(copy);
    }
    let vectors = dir.path().join("../vectors.npy");
    npy::write_f32(&vectors, &[paths.len(), DIM], &data).unwrap();
    std::fs::write(vectors.with_extension("txt"), paths.join("\n")).unwrap();

    let options = Options {
        embeddings: Some(EmbeddingsInput {
            file: vectors.clone(),
            paths: None,
        }),
        ..Options::default()
    };
    let analysis = pipeline::analyze(dir.path(), &options, &Progress::silent()).unwrap();
    let rows: HashMap<&str, &curate::store::report::ReportRow> =
        analysis.rows.iter().map(|r| (r.path.as_str(), r)).collect();
    // Images without a vector: listed with the reason, not analysed.
    for path in &truth.images[..5] {
        let row = rows[path.as_str()];
        assert_eq!(row.status, "no_embedding", "{path}");
        assert!(row.error.as_deref().unwrap().contains("vectors.npy"));
        assert!(!row.keep);
    }
    // Rows elsewhere: analysed, mapped, grouped by their vectors, in the keep-list.
    for i in 0..20 {
        let a = rows[format!("elsewhere/{i:03}-a.jpg").as_str()];
        let b = rows[format!("elsewhere/{i:03}-b.jpg").as_str()];
        for row in [a, b] {
            assert_eq!(row.status, "ok");
            assert!(row.x.is_some_and(f32::is_finite) && row.y.is_some_and(f32::is_finite));
            assert!(row.ood_score.is_some() && row.width.is_none());
        }
        assert!(a.dup_group >= 0 && a.dup_group == b.dup_group, "pair {i}");
        assert_eq!(a.dup_kind.as_deref(), Some("semantic"));
        assert!(a.keep != b.keep, "one of each pair is kept");
    }
    // Random vectors are not semantic duplicates of each other.
    let semantic = analysis
        .rows
        .iter()
        .filter(|r| r.dup_kind.as_deref() == Some("semantic"))
        .count();
    assert_eq!(semantic, 40, "only the planted pairs");
    assert_eq!(analysis.summary.images, paths.len());
    assert!(
        analysis
            .warnings
            .iter()
            .any(|w| w.contains("5 images on disk"))
    );
    assert!(analysis.warnings.iter().any(|w| w.contains("40 rows")));

    // A broken file fails the run before any work, naming the file.
    std::fs::write(&vectors, b"not numpy").unwrap();
    let err = pipeline::analyze(dir.path(), &options, &Progress::silent()).unwrap_err();
    assert!(err.to_string().contains("vectors.npy"), "{err}");
}
