//! CLIP: a vision transformer and a text transformer with projections into one embedding
//! space, loaded from a Hugging Face CLIP folder (`config.json`, `model.safetensors`,
//! `preprocessor_config.json` when present, and the tokenizer's `vocab.json` +
//! `merges.txt` or `tokenizer.json`). Any shape the format allows: patch size, widths,
//! layers, heads, image size, quick-GELU or GELU.

pub mod config;
pub mod model;
pub mod preprocess;
pub mod tokenizer;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use image::RgbImage;

use super::weights::{self, ModelError};
pub use config::{ClipConfig, PreprocessConfig};
use model::Clip;

/// The weights file of a Hugging Face model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A loaded CLIP model on a burn device.
#[derive(Debug)]
pub struct ClipModel {
    model: Clip,
    /// The model's shape.
    pub config: ClipConfig,
    /// How images are prepared.
    pub preprocess: PreprocessConfig,
    /// The learned temperature (`exp(logit_scale)`, 100 for OpenAI's models).
    pub logit_scale: f32,
    device: Device,
    /// The folder it came from.
    pub dir: PathBuf,
}

fn read(dir: &Path, file: &str, needs: &str) -> Result<String, ModelError> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            dir: dir.to_owned(),
            file: file.to_owned(),
            needs: needs.to_owned(),
        });
    }
    std::fs::read_to_string(&path).map_err(|err| ModelError::BadFile {
        path,
        message: err.to_string(),
    })
}

/// What a CLIP folder must hold, for error messages.
const CLIP_NEEDS: &str = "config.json and model.safetensors of a Hugging Face CLIP model";

impl ClipModel {
    /// Loads a Hugging Face CLIP folder onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::BadFile {
                path: dir.to_owned(),
                message: format!("no such folder (a CLIP model is a folder with {CLIP_NEEDS})"),
            });
        }
        let json = read(dir, "config.json", CLIP_NEEDS)?;
        let config = ClipConfig::parse(&json).map_err(|message| ModelError::WrongKind {
            dir: dir.to_owned(),
            message,
        })?;
        let preprocess = match read(dir, "preprocessor_config.json", "") {
            Ok(json) => {
                PreprocessConfig::parse(&json, config.vision.image_size).map_err(|message| {
                    ModelError::BadFile {
                        path: dir.join("preprocessor_config.json"),
                        message,
                    }
                })?
            }
            Err(ModelError::MissingFile { .. }) => {
                PreprocessConfig::default_for(config.vision.image_size)
            }
            Err(err) => return Err(err),
        };
        let file = dir.join(WEIGHTS_FILE);
        if !file.is_file() {
            return Err(ModelError::MissingFile {
                dir: dir.to_owned(),
                file: WEIGHTS_FILE.to_owned(),
                needs: CLIP_NEEDS.to_owned(),
            });
        }
        let mut model = Clip::new(&config, device);
        weights::load_safetensors(
            &mut model,
            &file,
            &[],
            &[r"position_ids$", r"^logit_scale$"],
        )?;
        let logit_scale = weights::read_scalar(&file, "logit_scale").map_or(100.0, f32::exp);
        Ok(Self {
            model,
            config,
            preprocess,
            logit_scale,
            device: device.clone(),
            dir: dir.to_owned(),
        })
    }

    /// The largest image batch at most `requested` whose activations fit: on a GPU, the
    /// biggest single tensor (attention scores or the MLP's hidden layer) must fit in
    /// `max_buffer`; on the CPU (`max_buffer` `None`) the whole layer's activations must fit
    /// in a quarter of the memory available now. Never below 1.
    #[must_use]
    pub fn batch_for(&self, requested: usize, max_buffer: Option<u64>) -> usize {
        let v = &self.config.vision;
        let tokens = (self.config.grid() * self.config.grid() + 1) as u64;
        let (hidden, inner, heads) = (
            v.tower.hidden_size as u64,
            v.tower.intermediate_size as u64,
            v.tower.heads as u64,
        );
        let limit = if let Some(max) = max_buffer {
            let largest = 4 * tokens * (heads * tokens).max(inner).max(hidden * 3);
            max / largest.max(1)
        } else {
            // Inputs, attention scores, the MLP's hidden layer, residuals: with a factor
            // of 2 for the copies an operation makes.
            let per_image = 2 * 4 * tokens * (heads * tokens + inner + 6 * hidden)
                + 4 * 3 * (v.image_size * v.image_size) as u64;
            available_memory().map_or(u64::MAX, |m| m / 4) / per_image.max(1)
        };
        requested
            .min(usize::try_from(limit).unwrap_or(usize::MAX))
            .max(1)
    }

    /// The joint embedding width.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.config.projection_dim
    }

    /// Image features of preprocessed pixels (`batch × channels × side × side`, row after
    /// row): `batch × dim`, not normalised (as `get_image_features`).
    #[must_use]
    pub fn embed_pixels(&self, pixels: Vec<f32>, batch: usize) -> Vec<f32> {
        let v = &self.config.vision;
        let shape = [batch, v.channels, v.image_size, v.image_size];
        let x = Tensor::<4>::from_data(TensorData::new(pixels, shape), &self.device);
        self.model
            .image_features(x)
            .into_data()
            .try_into_vec()
            .expect("float tensors download as f32")
    }

    /// Image features of decoded images (preprocessed here, in parallel): `images.len() ×
    /// dim`, not normalised.
    #[must_use]
    pub fn embed_images(&self, images: &[RgbImage]) -> Vec<f32> {
        use rayon::prelude::*;
        if images.is_empty() {
            return Vec::new();
        }
        let pixels: Vec<f32> = images
            .par_iter()
            .flat_map_iter(|img| preprocess::preprocess(img, &self.preprocess))
            .collect();
        self.embed_pixels(pixels, images.len())
    }

    /// Text features of tokenised texts (each `[start, …, end]`, at most the model's
    /// context length): `texts.len() × dim`, not normalised (as `get_text_features`).
    #[must_use]
    pub fn embed_token_ids(&self, rows: &[Vec<u32>]) -> Vec<f32> {
        if rows.is_empty() {
            return Vec::new();
        }
        let t = &self.config.text;
        let n = rows
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(1)
            .clamp(1, t.max_positions);
        let mut ids = Vec::with_capacity(rows.len() * n);
        let mut pool = Vec::with_capacity(rows.len());
        for row in rows {
            let row = &row[..row.len().min(n)];
            // Pool at the end token (old configs: at the largest id, the same thing in
            // CLIP's vocabulary); pad with the end token, which the causal mask hides.
            let at = if t.eos_token_id == 2 {
                row.iter()
                    .enumerate()
                    .max_by_key(|&(i, &id)| (id, std::cmp::Reverse(i)))
                    .map_or(0, |(i, _)| i)
            } else {
                row.iter()
                    .position(|&id| id == t.eos_token_id)
                    .unwrap_or(row.len().saturating_sub(1))
            };
            pool.push(at);
            let pad = row.last().copied().unwrap_or(t.eos_token_id);
            ids.extend(
                row.iter()
                    .map(|&id| i64::from(id.min(t.vocab_size as u32 - 1))),
            );
            ids.extend(std::iter::repeat_n(i64::from(pad), n - row.len()));
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows.len(), n]), &self.device);
        self.model
            .text_features(ids, &pool)
            .into_data()
            .try_into_vec()
            .expect("float tensors download as f32")
    }
}

/// Memory available to new allocations (`MemAvailable` of `/proc/meminfo`), where known.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Scales each `dim`-wide row of `rows` to unit length (zero rows stay zero).
pub fn normalize_rows(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny-clip");
    const REFERENCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tiny-clip-reference.json"
    );

    #[derive(serde::Deserialize)]
    struct ReferenceImage {
        file: String,
        pixel_values: Vec<f32>,
        image_features: Vec<f32>,
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        formula_image_features: Vec<Vec<f32>>,
        input_ids: Vec<Vec<u32>>,
        text_features: Vec<Vec<f32>>,
        images: Vec<ReferenceImage>,
        logit_scale: f32,
    }

    fn reference() -> Reference {
        serde_json::from_str(&std::fs::read_to_string(REFERENCE).unwrap()).unwrap()
    }

    /// The pixels `scripts/ref/tiny_clip.py` computes with the same formula.
    fn formula_pixels(batch: usize, channels: usize, side: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(batch * channels * side * side);
        for b in 0..batch {
            for c in 0..channels {
                for h in 0..side {
                    for w in 0..side {
                        let v = (0.05 * (h * side + w) as f64 + c as f64 * 1.3 + b as f64 * 0.7)
                            .sin()
                            * 1.5;
                        out.push(v as f32);
                    }
                }
            }
        }
        out
    }

    pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn check_parity(device: &Device, tolerance: f32) {
        let model = ClipModel::load(Path::new(TINY), device).unwrap();
        let r = reference();
        assert!((model.logit_scale - r.logit_scale).abs() < 1e-3);
        let dim = model.dim();

        let got = model.embed_pixels(formula_pixels(3, 3, 64), 3);
        let want: Vec<f32> = r.formula_image_features.concat();
        let d = max_abs_diff(&got, &want);
        assert!(d < tolerance, "image features differ by {d}");

        // One row at a time and as one padded batch.
        let batch = model.embed_token_ids(&r.input_ids);
        let want: Vec<f32> = r.text_features.concat();
        let d = max_abs_diff(&batch, &want);
        assert!(d < tolerance, "text features (batch) differ by {d}");
        for (row, want) in r.input_ids.iter().zip(&r.text_features) {
            let got = model.embed_token_ids(std::slice::from_ref(row));
            assert_eq!(got.len(), dim);
            let d = max_abs_diff(&got, want);
            assert!(d < tolerance, "text features differ by {d}");
        }

        // Real images through our preprocessing.
        for image in &r.images {
            let path = Path::new(TINY)
                .parent()
                .unwrap()
                .join("tiny-clip-images")
                .join(&image.file);
            let img = image::open(&path).unwrap().to_rgb8();
            let pixels = preprocess::preprocess(&img, &model.preprocess);
            let d = max_abs_diff(&pixels, &image.pixel_values);
            // One 8-bit step is 1/255/std ≈ 0.015; the resize is bit-exact, so what is
            // left is float rounding.
            assert!(d < 1e-4, "{}: preprocessing differs by {d}", image.file);
            let got = model.embed_images(&[img]);
            let d = max_abs_diff(&got, &image.image_features);
            assert!(
                d < tolerance,
                "{}: image features differ by {d}",
                image.file
            );
        }
    }

    #[test]
    fn batches_shrink_to_fit_the_buffers() {
        let model = ClipModel::load(Path::new(TINY), &Device::flex()).unwrap();
        // Tiny model: 17 tokens, 96-wide MLP: the largest tensor is 17·96·4 B per image.
        assert_eq!(model.batch_for(64, Some(1 << 30)), 64);
        assert_eq!(model.batch_for(64, Some(17 * 144 * 4 * 10)), 10);
        assert_eq!(model.batch_for(64, Some(1)), 1);
        assert!(model.batch_for(64, None) >= 1);
    }

    #[test]
    fn matches_transformers_on_the_cpu() {
        check_parity(&Device::flex(), 1e-4);
    }

    /// The same model through burn's wgpu backend (lavapipe here, a real GPU elsewhere).
    #[test]
    fn matches_transformers_on_wgpu() {
        check_parity(&Device::wgpu(burn::tensor::DeviceKind::DefaultDevice), 1e-4);
    }

    #[test]
    fn bad_folders_give_one_clear_error() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let copy = |name: &str| {
            std::fs::copy(Path::new(TINY).join(name), dir.path().join(name)).unwrap();
        };
        let message = |dir: &Path| ClipModel::load(dir, &device).unwrap_err().to_string();

        assert!(message(&dir.path().join("nothing")).contains("no such folder"));
        assert!(message(dir.path()).contains("missing config.json"));
        copy("config.json");
        assert!(message(dir.path()).contains("missing model.safetensors"));

        // Truncated weights.
        let bytes = std::fs::read(Path::new(TINY).join(WEIGHTS_FILE)).unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), &bytes[..bytes.len() / 2]).unwrap();
        let m = message(dir.path());
        assert!(m.contains("truncated"), "{m}");
        // Not a safetensors file at all.
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"hello").unwrap();
        assert!(message(dir.path()).contains("not a safetensors file"));

        // A config that does not match the weights: wider vision tower.
        std::fs::write(dir.path().join(WEIGHTS_FILE), &bytes).unwrap();
        let config = std::fs::read_to_string(Path::new(TINY).join("config.json")).unwrap();
        let wider = config.replace("\"hidden_size\": 48", "\"hidden_size\": 64");
        std::fs::write(dir.path().join("config.json"), wider).unwrap();
        let m = message(dir.path());
        assert!(
            m.contains("do not match") && m.contains("vision_model"),
            "{m}"
        );
        // Fewer layers than the weights have: unused tensors are named.
        let fewer = config.replacen("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1", 1);
        std::fs::write(dir.path().join("config.json"), fewer).unwrap();
        let m = message(dir.path());
        assert!(m.contains("unused") && m.contains("layers.1"), "{m}");

        // A text model (BERT-style config) given as a CLIP model.
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"model_type": "bert", "hidden_size": 384}"#,
        )
        .unwrap();
        let m = message(dir.path());
        assert!(m.contains("not a CLIP model") && m.contains("bert"), "{m}");
        // Garbage config.
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        assert!(message(dir.path()).contains("not a valid config"));
    }
}
