//! A sentence encoder: a BERT-family model in the sentence-transformers folder layout
//! (e.g. all-MiniLM-L6-v2), run in burn. Text → `WordPiece` ids → BERT → pooled (mean, CLS or
//! max) → optionally L2-normalised, matching `SentenceTransformer.encode`.

mod bert;
mod wordpiece;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::path::Path;

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::embed::weights::ModelError;
use bert::{Bert, BertConfig};
use wordpiece::WordPiece;

/// What a sentence-encoder folder needs, for "missing file" errors.
const NEEDS: &str = "config.json, model.safetensors and tokenizer.json or vocab.txt";

/// At most this many sentences go through the model together.
const BATCH_SIZE: usize = 64;

/// sentence-transformers' `max_seq_length` when `sentence_bert_config.json` has none.
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

/// How token vectors become one sentence vector (sentence-transformers' `Pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the non-padding tokens.
    Mean,
    /// Sum over the non-padding tokens divided by the square root of their count.
    MeanSqrtLen,
    /// The `[CLS]` token's vector.
    Cls,
    /// Element-wise maximum over the non-padding tokens.
    Max,
}

/// A loaded sentence encoder, on the burn device it was loaded for.
pub struct SentenceEncoder {
    model: Bert,
    tokenizer: WordPiece,
    pooling: Pooling,
    normalize: bool,
    /// sentence-transformers' own `do_lower_case` (before the tokenizer's).
    lowercase_input: bool,
    max_seq_length: usize,
    dim: usize,
    device: Device,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder")
            .field("dim", &self.dim)
            .field("max_seq_length", &self.max_seq_length)
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .finish_non_exhaustive()
    }
}

/// One entry of `modules.json`.
#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// `1_Pooling/config.json`: the boolean flags of older files, or `pooling_mode` of newer ones.
#[derive(Deserialize, Default)]
#[expect(
    clippy::struct_excessive_bools,
    clippy::struct_field_names,
    reason = "mirrors the file's keys"
)]
struct PoolingConfig {
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// `sentence_bert_config.json`.
#[derive(Deserialize, Default)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

fn bad_file(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::BadFile {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn missing(dir: &Path, file: &str) -> ModelError {
    ModelError::MissingFile {
        dir: dir.to_owned(),
        file: file.to_owned(),
        needs: NEEDS.to_owned(),
    }
}

/// Reads and parses a JSON file that exists.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ModelError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| bad_file(path, format!("cannot read: {err}")))?;
    serde_json::from_str(&text)
        .map_err(|err| bad_file(path, format!("not the expected JSON: {err}")))
}

/// Reads `config.json`, refusing anything that is not a BERT model.
fn read_bert_config(dir: &Path) -> Result<BertConfig, ModelError> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(missing(dir, "config.json"));
    }
    let value: serde_json::Value = read_json(&path)?;
    let wrong = |message: String| ModelError::WrongKind {
        dir: dir.to_owned(),
        message,
    };
    let Some(object) = value.as_object() else {
        return Err(bad_file(&path, "not a JSON object"));
    };
    let model_type = object.get("model_type").and_then(serde_json::Value::as_str);
    if model_type == Some("clip")
        || object.contains_key("vision_config")
        || object.contains_key("text_config")
    {
        return Err(wrong(
            "holds a CLIP (image-text) model; a sentence encoder needs a BERT-family text model \
             (model_type \"bert\"); load it as a CLIP model instead"
                .to_owned(),
        ));
    }
    match model_type {
        Some("bert") => {}
        Some(other) => {
            return Err(wrong(format!(
                "holds a {other:?} model; the sentence encoder supports BERT models (model_type \"bert\")"
            )));
        }
        None => {
            let is_bert = object
                .get("architectures")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .any(|s| s.starts_with("Bert"))
                });
            if !is_bert {
                return Err(wrong(
                    "config.json names no model_type and no Bert architecture; the sentence encoder \
                     supports BERT models (model_type \"bert\")"
                        .to_owned(),
                ));
            }
        }
    }
    let config: BertConfig = serde_json::from_value(value)
        .map_err(|err| bad_file(&path, format!("not a BERT config: {err}")))?;
    config.validate(&path)?;
    Ok(config)
}

/// Reads `modules.json` (when there is one): the pooling folder and whether a `Normalize`
/// module follows. A plain Hugging Face folder gets sentence-transformers' defaults: mean
/// pooling, no normalisation.
fn read_pipeline(dir: &Path) -> Result<(Pooling, bool), ModelError> {
    let path = dir.join("modules.json");
    if !path.is_file() {
        return Ok((Pooling::Mean, false));
    }
    let modules: Vec<ModuleEntry> = read_json(&path)?;
    let mut pooling = Pooling::Mean;
    let mut normalize = false;
    for module in &modules {
        let name = module.kind.rsplit('.').next().unwrap_or_default();
        match name {
            "Transformer" => {}
            "Normalize" => normalize = true,
            "Pooling" => pooling = read_pooling(&dir.join(&module.path).join("config.json"))?,
            _ => {
                return Err(ModelError::WrongKind {
                    dir: dir.to_owned(),
                    message: format!(
                        "modules.json has a {} module; the sentence encoder supports \
                         Transformer, Pooling and Normalize only",
                        module.kind
                    ),
                });
            }
        }
    }
    Ok((pooling, normalize))
}

fn read_pooling(path: &Path) -> Result<Pooling, ModelError> {
    if !path.is_file() {
        return Ok(Pooling::Mean);
    }
    let config: PoolingConfig = read_json(path)?;
    if let Some(mode) = &config.pooling_mode {
        return match mode.as_str() {
            "mean" => Ok(Pooling::Mean),
            "mean_sqrt_len_tokens" => Ok(Pooling::MeanSqrtLen),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            other => Err(bad_file(
                path,
                format!(
                    "pooling_mode {other:?} is not supported (mean, mean_sqrt_len_tokens, cls, max)"
                ),
            )),
        };
    }
    let modes = [
        (config.pooling_mode_mean_tokens, Some(Pooling::Mean)),
        (
            config.pooling_mode_mean_sqrt_len_tokens,
            Some(Pooling::MeanSqrtLen),
        ),
        (config.pooling_mode_cls_token, Some(Pooling::Cls)),
        (config.pooling_mode_max_tokens, Some(Pooling::Max)),
        (config.pooling_mode_weightedmean_tokens, None),
        (config.pooling_mode_lasttoken, None),
    ];
    let on: Vec<Option<Pooling>> = modes
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, p)| *p)
        .collect();
    match on.as_slice() {
        [] => Ok(Pooling::Mean),
        [Some(pooling)] => Ok(*pooling),
        _ => Err(bad_file(
            path,
            "only a single mean, mean_sqrt_len, cls or max pooling mode is supported",
        )),
    }
}

fn read_tokenizer(dir: &Path) -> Result<WordPiece, ModelError> {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        return WordPiece::from_tokenizer_json(&json);
    }
    let vocab = dir.join("vocab.txt");
    if vocab.is_file() {
        return WordPiece::from_vocab_txt(&vocab, &dir.join("tokenizer_config.json"));
    }
    Err(missing(dir, "tokenizer.json (or vocab.txt)"))
}

impl SentenceEncoder {
    /// Loads the sentence-transformers (or plain Hugging Face BERT) folder `dir` onto
    /// `device`: configuration, tokenizer, pooling, normalisation and weights, each checked.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let config = read_bert_config(dir)?;
        let (pooling, normalize) = read_pipeline(dir)?;
        let st_config_path = dir.join("sentence_bert_config.json");
        let st_config: SentenceBertConfig = if st_config_path.is_file() {
            read_json(&st_config_path)?
        } else {
            SentenceBertConfig::default()
        };
        let max_seq_length = st_config.max_seq_length.unwrap_or(DEFAULT_MAX_SEQ_LENGTH);
        if max_seq_length < 2 {
            return Err(bad_file(
                &st_config_path,
                format!("max_seq_length {max_seq_length} leaves no room for [CLS] and [SEP]"),
            ));
        }
        let max_seq_length = max_seq_length.min(config.max_position_embeddings);
        let tokenizer = read_tokenizer(dir)?;
        if tokenizer.max_id() as usize >= config.vocab_size {
            return Err(bad_file(
                &dir.join("config.json"),
                format!(
                    "the tokenizer has token id {} but vocab_size is {}",
                    tokenizer.max_id(),
                    config.vocab_size
                ),
            ));
        }
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(missing(dir, "model.safetensors"));
        }
        let model = Bert::load(&config, &weights, device)?;
        Ok(Self {
            model,
            tokenizer,
            pooling,
            normalize,
            lowercase_input: st_config.do_lower_case,
            max_seq_length,
            dim: config.hidden_size,
            device: device.clone(),
        })
    }

    /// Length of the sentence vectors.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Most tokens (with `[CLS]` and `[SEP]`) a sentence is cut to.
    #[must_use]
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// How token vectors are pooled into the sentence vector.
    #[must_use]
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether sentence vectors are L2-normalised (cosine similarity is then a dot product).
    #[must_use]
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// The token ids the model sees for `text`, `[CLS]` and `[SEP]` included, truncated to
    /// [`max_seq_length`](Self::max_seq_length).
    #[must_use]
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        if self.lowercase_input {
            self.tokenizer
                .encode(&text.to_lowercase(), self.max_seq_length)
        } else {
            self.tokenizer.encode(text, self.max_seq_length)
        }
    }

    /// One vector of [`dim`](Self::dim) floats per text, in order. Texts are batched by
    /// similar length (at most 64 at a time), padded, and masked.
    #[must_use]
    pub fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.token_ids(t)).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); ids.len()];
        let mut rest = order.as_slice();
        while let Some(&first) = rest.first() {
            // Longest first; a batch ends at 64 sentences or where a sentence is under half
            // the batch's longest, so padding never more than doubles the work.
            let longest = ids[first].len();
            let count = rest
                .iter()
                .take(BATCH_SIZE)
                .take_while(|&&i| ids[i].len() * 2 >= longest)
                .count();
            let (batch, tail) = rest.split_at(count);
            let vectors =
                self.embed_batch(&batch.iter().map(|&i| ids[i].as_slice()).collect::<Vec<_>>());
            for (&i, vector) in batch.iter().zip(vectors) {
                out[i] = vector;
            }
            rest = tail;
        }
        out
    }

    /// Runs one padded batch through the model and pools it.
    fn embed_batch(&self, batch: &[&[u32]]) -> Vec<Vec<f32>> {
        let rows = batch.len();
        let seq = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut flat_ids = vec![0_i64; rows * seq];
        let mut padding = vec![true; rows * seq];
        for (row, ids) in batch.iter().enumerate() {
            for (col, &id) in ids.iter().enumerate() {
                flat_ids[row * seq + col] = i64::from(id);
                padding[row * seq + col] = false;
            }
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(flat_ids, [rows, seq]), &self.device);
        let padding =
            Tensor::<2, Bool>::from_data(TensorData::new(padding, [rows, seq]), &self.device);
        let hidden = self.model.forward(ids, padding.clone());
        let dim = self.dim;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1),
            Pooling::Max => hidden
                .mask_fill(padding.unsqueeze_dim::<3>(2).expand([rows, seq, dim]), -1e9)
                .max_dim(1),
            Pooling::Mean | Pooling::MeanSqrtLen => {
                let keep = padding.bool_not().float().unsqueeze_dim::<3>(2);
                let count = keep.clone().sum_dim(1).clamp_min(1e-9);
                let sum = (hidden * keep).sum_dim(1);
                if self.pooling == Pooling::Mean {
                    sum / count
                } else {
                    sum / count.sqrt()
                }
            }
        };
        let values = pooled
            .reshape([rows * dim])
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("a float tensor converts to f32");
        values
            .chunks_exact(dim)
            .map(|v| {
                let mut v = v.to_vec();
                if self.normalize {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                v
            })
            .collect()
    }
}
