//! The CLIP architecture in burn, laid out like `transformers`' `CLIPModel` so that the
//! safetensors names map onto the module paths one to one (`text_model.encoder.layers.3.
//! self_attn.q_proj.weight`, `vision_model.pre_layrnorm.bias`, ...).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::{Activation, ClipConfig, TowerConfig};

/// A large negative number for masked attention scores (finite, so a fully masked row
/// cannot turn into NaN).
const MASKED: f32 = -1e30;

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// `linear` over the last dimension of `[batch, tokens, width]` as one 2-D matrix product
/// (`[batch·tokens, width] × [width, out]`): several times faster on the CPU backend than
/// the broadcast batched product a 3-D input gets.
fn apply(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, n, d] = x.dims();
    let y = linear.forward(x.reshape([b * n, d]));
    let out = y.dims()[1];
    y.reshape([b, n, out])
}

fn layer_norm(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// Multi-head self-attention.
#[derive(Module, Debug)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    fn new(tower: &TowerConfig, device: &Device) -> Self {
        let d = tower.hidden_size;
        Self {
            q_proj: linear(d, d, true, device),
            k_proj: linear(d, d, true, device),
            v_proj: linear(d, d, true, device),
            out_proj: linear(d, d, true, device),
            heads: tower.heads,
        }
    }

    /// `x`: `[batch, tokens, width]`; `mask`: added to the scores, `[1, 1, tokens, tokens]`.
    fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4>>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let split = |t: Tensor<3>| t.reshape([b, n, h, hd]).swap_dims(1, 2);
        let q = split(apply(&self.q_proj, x.clone())).mul_scalar((hd as f64).powf(-0.5));
        let k = split(apply(&self.k_proj, x.clone()));
        let v = split(apply(&self.v_proj, x));
        let mut scores = q.matmul(k.swap_dims(2, 3));
        if let Some(mask) = mask {
            scores = scores + mask;
        }
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        self.out_proj.forward(out)
    }
}

/// The feed-forward block.
#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    activation: Activation,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = apply(&self.fc1, x);
        let x = match self.activation {
            Activation::QuickGelu => x.clone() * sigmoid(x.mul_scalar(1.702)),
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => burn::tensor::activation::gelu_approximate(x),
        };
        apply(&self.fc2, x)
    }
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    self_attn: Attention,
    layer_norm1: LayerNorm,
    mlp: Mlp,
    layer_norm2: LayerNorm,
}

/// The stack of blocks.
#[derive(Module, Debug)]
pub struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn new(tower: &TowerConfig, device: &Device) -> Self {
        let d = tower.hidden_size;
        let layers = (0..tower.layers)
            .map(|_| EncoderLayer {
                self_attn: Attention::new(tower, device),
                layer_norm1: layer_norm(d, tower.layer_norm_eps, device),
                mlp: Mlp {
                    fc1: linear(d, tower.intermediate_size, true, device),
                    fc2: linear(tower.intermediate_size, d, true, device),
                    activation: tower.activation,
                },
                layer_norm2: layer_norm(d, tower.layer_norm_eps, device),
            })
            .collect();
        Self { layers }
    }

    fn forward(&self, mut x: Tensor<3>, mask: Option<&Tensor<4>>) -> Tensor<3> {
        for layer in &self.layers {
            let attended = layer
                .self_attn
                .forward(layer.layer_norm1.forward(x.clone()), mask.cloned());
            x = x + attended;
            let fed = layer.mlp.forward(layer.layer_norm2.forward(x.clone()));
            x = x + fed;
        }
        x
    }
}

/// Token and position embeddings of the text tower.
#[derive(Module, Debug)]
pub struct TextEmbeddings {
    token_embedding: Embedding,
    position_embedding: Embedding,
}

/// The text tower.
#[derive(Module, Debug)]
pub struct TextTransformer {
    embeddings: TextEmbeddings,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
}

/// Patch, class and position embeddings of the vision tower (the field names are the
/// checkpoint's).
#[derive(Module, Debug)]
#[allow(clippy::struct_field_names)]
pub struct VisionEmbeddings {
    class_embedding: Param<Tensor<1>>,
    patch_embedding: Conv2d,
    position_embedding: Embedding,
}

/// The vision tower.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    embeddings: VisionEmbeddings,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
}

/// Both towers and their projections.
#[derive(Module, Debug)]
pub struct Clip {
    text_model: TextTransformer,
    vision_model: VisionTransformer,
    visual_projection: Linear,
    text_projection: Linear,
}

impl Clip {
    /// A model of `config`'s shape with zero weights (to be loaded).
    #[must_use]
    pub fn new(config: &ClipConfig, device: &Device) -> Self {
        let t = &config.text;
        let v = &config.vision;
        let embedding = |n: usize, d: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let (dt, dv) = (t.tower.hidden_size, v.tower.hidden_size);
        let grid = config.grid();
        Self {
            text_model: TextTransformer {
                embeddings: TextEmbeddings {
                    token_embedding: embedding(t.vocab_size, dt),
                    position_embedding: embedding(t.max_positions, dt),
                },
                encoder: Encoder::new(&t.tower, device),
                final_layer_norm: layer_norm(dt, t.tower.layer_norm_eps, device),
            },
            vision_model: VisionTransformer {
                embeddings: VisionEmbeddings {
                    class_embedding: Param::from_tensor(Tensor::zeros([dv], device)),
                    patch_embedding: Conv2dConfig::new([v.channels, dv], [v.patch_size; 2])
                        .with_stride([v.patch_size; 2])
                        .with_bias(false)
                        .with_initializer(Initializer::Zeros)
                        .init(device),
                    position_embedding: embedding(grid * grid + 1, dv),
                },
                pre_layrnorm: layer_norm(dv, v.tower.layer_norm_eps, device),
                encoder: Encoder::new(&v.tower, device),
                post_layernorm: layer_norm(dv, v.tower.layer_norm_eps, device),
            },
            visual_projection: linear(dv, config.projection_dim, false, device),
            text_projection: linear(dt, config.projection_dim, false, device),
        }
    }

    /// Image features (projected, not normalised) of `pixels`: `[batch, channels, side,
    /// side]`, already normalised as the processor does.
    #[must_use]
    pub fn image_features(&self, pixels: Tensor<4>) -> Tensor<2> {
        let vm = &self.vision_model;
        let e = &vm.embeddings;
        // The patch convolution (stride = kernel) as one matrix product over unfolded
        // patches: `[b·g·g, c·p·p] × [c·p·p, d]`.
        let [b, c, side, _] = pixels.dims();
        let weight = e.patch_embedding.weight.val();
        let [d, _, p, _] = weight.dims();
        let g = side / p;
        let unfolded = pixels
            .reshape([b, c, g, p, g, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b * g * g, c * p * p]);
        let patches = unfolded
            .matmul(weight.reshape([d, c * p * p]).transpose())
            .reshape([b, g * g, d]);
        let class = e.class_embedding.val().reshape([1, 1, d]).repeat_dim(0, b);
        let tokens = Tensor::cat(vec![class, patches], 1);
        let positions = e.position_embedding.weight.val().unsqueeze::<3>();
        let x = vm.pre_layrnorm.forward(tokens + positions);
        let x = vm.encoder.forward(x, None);
        let pooled = x.slice([0..b, 0..1, 0..d]).reshape([b, d]);
        self.visual_projection
            .forward(vm.post_layernorm.forward(pooled))
    }

    /// Text features (projected, not normalised) of token ids `[batch, length]` (each row
    /// starts with the start token and holds an end token; what follows it does not
    /// matter), pooled at `pool[i]`, the position of row `i`'s end token.
    #[must_use]
    pub fn text_features(&self, ids: Tensor<2, Int>, pool: &[usize]) -> Tensor<2> {
        let tm = &self.text_model;
        let [b, n] = ids.dims();
        let device = ids.device();
        let tokens = tm.embeddings.token_embedding.forward(ids);
        let d = tokens.dims()[2];
        let positions = tm
            .embeddings
            .position_embedding
            .weight
            .val()
            .slice([0..n, 0..d])
            .unsqueeze::<3>();
        let mask: Vec<f32> = (0..n * n)
            .map(|i| if i % n > i / n { MASKED } else { 0.0 })
            .collect();
        let mask = Tensor::<4>::from_data(TensorData::new(mask, [1, 1, n, n]), &device);
        let x = tm.encoder.forward(tokens + positions, Some(&mask));
        let x = tm.final_layer_norm.forward(x);
        let rows: Vec<i64> = pool
            .iter()
            .enumerate()
            .map(|(i, &p)| (i * n + p) as i64)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [b]), &device);
        let pooled = x.reshape([b * n, d]).select(0, rows);
        self.text_projection.forward(pooled)
    }
}
