//! Parity with sentence-transformers (`tests/data/minilm-reference.json`, written by
//! `scripts/ref/minilm_reference.py`) and load errors, on the real all-MiniLM-L6-v2.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;
use serde::Deserialize;

use super::wordpiece::WordPiece;
use super::{Pooling, SentenceEncoder, read_tokenizer};
use crate::embed::weights::ModelError;

const MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/all-MiniLM-L6-v2");
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/minilm-reference.json"
);

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    dim: usize,
    sentences: Vec<RefSentence>,
    pooling: Vec<RefPooling>,
}

/// CLS and max pooling (not normalised) of a few sentences.
#[derive(Deserialize)]
struct RefPooling {
    text: String,
    cls: Vec<f32>,
    max: Vec<f32>,
}

#[derive(Deserialize)]
struct RefSentence {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn model_dir() -> &'static Path {
    let dir = Path::new(MODEL_DIR);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{MODEL_DIR} is missing: run scripts/fetch-models"
    );
    dir
}

fn reference() -> Reference {
    let text =
        std::fs::read_to_string(REFERENCE).expect("tests/data/minilm-reference.json is checked in");
    serde_json::from_str(&text).expect("the reference file is valid")
}

fn encoder() -> &'static SentenceEncoder {
    static ENCODER: OnceLock<SentenceEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        SentenceEncoder::load(model_dir(), &Device::flex()).expect("all-MiniLM-L6-v2 loads")
    })
}

fn mismatches(tokenizer: &WordPiece, reference: &Reference) -> Vec<String> {
    reference
        .sentences
        .iter()
        .filter_map(|s| {
            let ids = tokenizer.encode(&s.text, reference.max_seq_length);
            (ids != s.token_ids).then(|| format!("{:?}: {ids:?} != {:?}", s.text, s.token_ids))
        })
        .collect()
}

/// Every reference sentence tokenises to sentence-transformers' ids.
fn assert_ids_match(tokenizer: &WordPiece) {
    let reference = reference();
    let wrong = mismatches(tokenizer, &reference);
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        reference.sentences.len(),
        wrong.join("\n")
    );
}

#[test]
fn tokenizer_json_ids_match_sentence_transformers() {
    assert_ids_match(&read_tokenizer(model_dir()).expect("tokenizer.json loads"));
}

#[test]
fn vocab_txt_ids_match_sentence_transformers() {
    let dir = model_dir();
    let tokenizer =
        WordPiece::from_vocab_txt(&dir.join("vocab.txt"), &dir.join("tokenizer_config.json"))
            .expect("vocab.txt loads");
    assert_ids_match(&tokenizer);
}

#[test]
fn embeddings_match_sentence_transformers() {
    let reference = reference();
    let encoder = encoder();
    assert_eq!(encoder.dim(), reference.dim);
    assert_eq!(encoder.max_seq_length(), reference.max_seq_length);
    assert_eq!(encoder.pooling(), Pooling::Mean);
    assert!(encoder.normalizes());
    let texts: Vec<&str> = reference
        .sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    let vectors = encoder.embed(&texts);
    assert_eq!(vectors.len(), texts.len());
    let mut worst = (f32::INFINITY, "");
    for (s, v) in reference.sentences.iter().zip(&vectors) {
        assert_eq!(v.len(), reference.dim);
        assert_eq!(encoder.token_ids(&s.text), s.token_ids, "{:?}", s.text);
        let dot: f32 = v.iter().zip(&s.embedding).map(|(a, b)| a * b).sum();
        let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
        let cosine = dot / (norm(v) * norm(&s.embedding));
        assert!((norm(v) - 1.0).abs() < 1e-4, "not normalised: {:?}", s.text);
        if cosine < worst.0 {
            worst = (cosine, &s.text);
        }
    }
    eprintln!(
        "minimum cosine with sentence-transformers: {} ({:?})",
        worst.0, worst.1
    );
    assert!(worst.0 >= 0.9999, "cosine {} for {:?}", worst.0, worst.1);
    // Batching must not change a sentence's vector.
    let alone = encoder.embed(&texts[3..4]);
    let dot: f32 = alone[0].iter().zip(&vectors[3]).map(|(a, b)| a * b).sum();
    assert!(dot > 0.99999, "batched and single differ: {dot}");
    assert!(encoder.embed(&[]).is_empty());
}

/// A temporary copy of the model folder's small files (the weights are written by the test).
fn copy_without_weights() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(model_dir().join(file), tmp.path().join(file)).expect("copy a model file");
    }
    tmp
}

/// Worst cosine and worst relative norm difference between `ours` and `theirs`.
fn compare(ours: &[Vec<f32>], theirs: &[&[f32]]) -> (f32, f32) {
    let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
    ours.iter()
        .zip(theirs)
        .fold((1.0_f32, 0.0_f32), |(cos, rel), (a, b)| {
            let dot: f32 = a.iter().zip(*b).map(|(x, y)| x * y).sum();
            let (na, nb) = (norm(a), norm(b));
            (cos.min(dot / (na * nb)), rel.max((na - nb).abs() / nb))
        })
}

#[test]
fn cls_and_max_pooling_match_sentence_transformers() {
    let reference = reference();
    let texts: Vec<&str> = reference.pooling.iter().map(|p| p.text.as_str()).collect();
    let tmp = copy_without_weights();
    std::fs::copy(
        model_dir().join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .expect("copy weights");
    // Transformer + Pooling, no Normalize.
    std::fs::write(
        tmp.path().join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#,
    )
    .expect("write modules.json");
    std::fs::create_dir(tmp.path().join("1_Pooling")).expect("pooling dir");
    for (flag, pooling) in [
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_max_tokens", Pooling::Max),
    ] {
        std::fs::write(
            tmp.path().join("1_Pooling/config.json"),
            format!(r#"{{"word_embedding_dimension": 384, "{flag}": true}}"#),
        )
        .expect("write pooling config");
        let encoder = SentenceEncoder::load(tmp.path(), &Device::flex()).expect("loads");
        assert_eq!(encoder.pooling(), pooling);
        assert!(!encoder.normalizes());
        let theirs: Vec<&[f32]> = reference
            .pooling
            .iter()
            .map(|p| {
                if pooling == Pooling::Cls {
                    p.cls.as_slice()
                } else {
                    p.max.as_slice()
                }
            })
            .collect();
        let (cosine, norm) = compare(&encoder.embed(&texts), &theirs);
        assert!(
            cosine >= 0.9999 && norm < 1e-3,
            "{pooling:?}: cosine {cosine}, norm {norm}"
        );
    }
}

fn load_err(dir: &Path) -> ModelError {
    SentenceEncoder::load(dir, &Device::flex()).expect_err("the folder must not load")
}

#[test]
fn missing_folder_is_a_missing_file() {
    let err = load_err(Path::new("/nonexistent/curate-model"));
    assert!(matches!(err, ModelError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn clip_folder_is_the_wrong_kind() {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"model_type": "clip", "text_config": {"hidden_size": 512}, "vision_config": {"hidden_size": 768}}"#,
    )
    .expect("write config");
    let err = load_err(tmp.path());
    assert!(matches!(err, ModelError::WrongKind { .. }), "{err}");
    assert!(err.to_string().contains("CLIP"), "{err}");
    std::fs::write(tmp.path().join("config.json"), "{ not json").expect("write config");
    assert!(matches!(load_err(tmp.path()), ModelError::BadFile { .. }));
}

#[test]
fn truncated_weights_are_an_error() {
    let tmp = copy_without_weights();
    let bytes = std::fs::read(model_dir().join("model.safetensors")).expect("read weights");
    std::fs::write(
        tmp.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .expect("write weights");
    let err = load_err(tmp.path());
    assert!(matches!(err, ModelError::Weights { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    std::fs::remove_file(tmp.path().join("model.safetensors")).expect("remove weights");
    let err = load_err(tmp.path());
    assert!(matches!(err, ModelError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn wrongly_shaped_tensor_is_named() {
    let tmp = copy_without_weights();
    let bytes = std::fs::read(model_dir().join("model.safetensors")).expect("read weights");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + header_len]).expect("header");
    // Same number of elements (so the data stays valid), another shape.
    header["encoder.layer.2.attention.self.query.weight"]["shape"] = serde_json::json!([768, 192]);
    let mut new_header = serde_json::to_vec(&header).expect("header");
    while !new_header.len().is_multiple_of(8) {
        new_header.push(b' ');
    }
    let mut out = (new_header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&new_header);
    out.extend_from_slice(&bytes[8 + header_len..]);
    let path: PathBuf = tmp.path().join("model.safetensors");
    std::fs::write(&path, out).expect("write weights");
    let err = load_err(tmp.path());
    assert!(matches!(err, ModelError::Weights { .. }), "{err}");
    assert!(err.to_string().contains("query"), "{err}");
    eprintln!("{err}");
}
