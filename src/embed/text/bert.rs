//! The BERT encoder (Hugging Face `BertModel` without the pooler) in burn: embeddings, then
//! post-norm transformer layers, returning the last hidden state.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate, relu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::Deserialize;

use crate::embed::weights::{ModelError, load_safetensors};

/// The fields of a Hugging Face BERT `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".to_owned()
}
fn default_position_embedding_type() -> String {
    "absolute".to_owned()
}

/// Largest model the loader accepts, in parameters: a guard against a config whose sizes
/// would make burn allocate without bound before the weights are even compared.
const MAX_PARAMETERS: usize = 2_000_000_000;

impl BertConfig {
    /// Checks the values make a model burn can build; `path` names `config.json` in errors.
    pub(crate) fn validate(&self, path: &Path) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::BadFile {
            path: path.to_owned(),
            message,
        };
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(bad(format!("{name} is 0")));
        }
        if self.max_position_embeddings < 2 {
            return Err(bad(format!(
                "max_position_embeddings {} leaves no room for [CLS] and [SEP]",
                self.max_position_embeddings
            )));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(bad(format!(
                "layer_norm_eps {} is not a finite, non-negative number",
                self.layer_norm_eps
            )));
        }
        if Activation::from_name(&self.hidden_act).is_none() {
            return Err(bad(format!(
                "hidden_act {:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)",
                self.hidden_act
            )));
        }
        if self.position_embedding_type != "absolute" {
            return Err(bad(format!(
                "position_embedding_type {:?} is not supported (absolute only)",
                self.position_embedding_type
            )));
        }
        let h = self.hidden_size;
        let per_layer = h
            .checked_mul(h)
            .and_then(|hh| hh.checked_mul(4))
            .and_then(|a| {
                h.checked_mul(self.intermediate_size)?
                    .checked_mul(2)?
                    .checked_add(a)
            });
        let total = per_layer
            .and_then(|l| l.checked_mul(self.num_hidden_layers))
            .and_then(|t| {
                let rows = self
                    .vocab_size
                    .checked_add(self.max_position_embeddings)?
                    .checked_add(self.type_vocab_size)?;
                t.checked_add(rows.checked_mul(h)?)
            });
        match total {
            Some(n) if n <= MAX_PARAMETERS => Ok(()),
            _ => Err(bad(format!(
                "the sizes describe a model over {MAX_PARAMETERS} parameters; not a BERT sentence encoder"
            ))),
        }
    }
}

/// The feed-forward activation named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    /// Exact GELU, `x·Φ(x)` with erf.
    Gelu,
    /// The tanh approximation of GELU.
    GeluTanh,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }

    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => gelu(x),
            Self::GeluTanh => gelu_approximate(x),
            Self::Relu => relu(x),
        }
    }
}

/// Word, position and token-type embeddings, summed and normalised.
#[derive(Module, Debug)]
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

/// One post-norm transformer layer.
#[derive(Module, Debug)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    num_heads: usize,
    #[module(skip)]
    activation: Activation,
}

/// The BERT encoder: token ids in, last hidden state out.
#[derive(Module, Debug)]
pub(crate) struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

/// Hugging Face tensor names → this module's parameter paths, applied in order. A
/// `bert.` prefix (files saved from `BertFor*` heads) is dropped first; layer norms keep
/// `weight`/`bias` here and become `gamma`/`beta` in the `PyTorch` adapter.
const REMAP: &[(&str, &str)] = &[
    (r"^bert\.", ""),
    (r"^embeddings\.word_embeddings\.", "embeddings.word."),
    (
        r"^embeddings\.position_embeddings\.",
        "embeddings.position.",
    ),
    (
        r"^embeddings\.token_type_embeddings\.",
        "embeddings.token_type.",
    ),
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (
        r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.",
        "layers.$1.$2.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.",
        "layers.$1.attention_out.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.",
        "layers.$1.attention_norm.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.intermediate\.dense\.",
        "layers.$1.intermediate.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.output\.dense\.",
        "layers.$1.output.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.",
        "layers.$1.output_norm.",
    ),
];

/// Tensors a sentence-transformers BERT file may carry that the encoder does not use: the
/// position-id buffer and the (unused) pooler / pre-training heads.
const IGNORE: &[&str] = &[r"position_ids$", r"^(bert\.)?pooler\.", r"^cls\."];

impl Bert {
    /// Builds the architecture `config` describes on `device` and loads `weights` into it.
    pub(crate) fn load(
        config: &BertConfig,
        weights: &Path,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let h = config.hidden_size;
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let activation =
            Activation::from_name(&config.hidden_act).expect("validate() accepted the activation");
        let mut model = Self {
            embeddings: Embeddings {
                word: EmbeddingConfig::new(config.vocab_size, h).init(device),
                position: EmbeddingConfig::new(config.max_position_embeddings, h).init(device),
                token_type: EmbeddingConfig::new(config.type_vocab_size, h).init(device),
                norm: norm(),
            },
            layers: (0..config.num_hidden_layers)
                .map(|_| Layer {
                    query: LinearConfig::new(h, h).init(device),
                    key: LinearConfig::new(h, h).init(device),
                    value: LinearConfig::new(h, h).init(device),
                    attention_out: LinearConfig::new(h, h).init(device),
                    attention_norm: norm(),
                    intermediate: LinearConfig::new(h, config.intermediate_size).init(device),
                    output: LinearConfig::new(config.intermediate_size, h).init(device),
                    output_norm: norm(),
                    num_heads: config.num_attention_heads,
                    activation,
                })
                .collect(),
        };
        load_safetensors(&mut model, weights, REMAP, IGNORE)?;
        Ok(model)
    }

    /// The last hidden state `[batch, seq, hidden]` for `ids` `[batch, seq]`; `padding`
    /// `[batch, seq]` is true where a position is padding (keys there are masked out).
    /// Token types are all 0 (single sentences); `seq` must not exceed the position table.
    pub(crate) fn forward(&self, ids: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let [batch, seq] = ids.dims();
        let e = &self.embeddings;
        let positions = e.position.weight.val().narrow(0, 0, seq).unsqueeze::<3>();
        let token_type = e.token_type.weight.val().narrow(0, 0, 1).unsqueeze::<3>();
        let mut x = e.norm.forward(e.word.forward(ids) + positions + token_type);
        let heads = self.layers.first().map_or(1, |l| l.num_heads);
        // True = masked out, per key position, the same for every head and query.
        let mask = padding
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, seq, seq]);
        for layer in &self.layers {
            x = layer.forward(x, mask.clone());
        }
        x
    }
}

impl Layer {
    fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let heads = self.num_heads;
        let split = |t: Tensor<3>| {
            t.reshape([batch, seq, heads, hidden / heads])
                .swap_dims(1, 2)
        };
        let context = attention(
            split(self.query.forward(x.clone())),
            split(self.key.forward(x.clone())),
            split(self.value.forward(x.clone())),
            Some(mask),
            None,
            AttentionModuleOptions::default(),
        )
        .swap_dims(1, 2)
        .reshape([batch, seq, hidden]);
        let x = self
            .attention_norm
            .forward(self.attention_out.forward(context) + x);
        let inner = self.activation.apply(self.intermediate.forward(x.clone()));
        self.output_norm.forward(self.output.forward(inner) + x)
    }
}
