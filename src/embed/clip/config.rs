//! The parts of a Hugging Face CLIP `config.json` (and `preprocessor_config.json`) the model
//! needs. Missing fields take the defaults `transformers` gives them.

use serde::Deserialize;

/// The activation between the two MLP layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x · σ(1.702 x)` (OpenAI's CLIP).
    QuickGelu,
    /// The exact (erf) GELU.
    Gelu,
    /// The tanh approximation of GELU.
    GeluTanh,
}

impl Activation {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Self::GeluTanh),
            other => Err(format!("unsupported hidden_act {other:?}")),
        }
    }
}

/// One tower's transformer settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TowerConfig {
    /// Width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub activation: Activation,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
}

/// The text tower's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    /// Transformer settings.
    pub tower: TowerConfig,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest token sequence (77).
    pub max_positions: usize,
    /// The end-of-text token the output is pooled at (2 in old configs: pool at the largest
    /// id, which is the end token in CLIP's vocabulary).
    pub eos_token_id: u32,
}

/// The vision tower's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    /// Transformer settings.
    pub tower: TowerConfig,
    /// Input side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Input channels.
    pub channels: usize,
}

/// A whole CLIP model's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipConfig {
    /// Text tower.
    pub text: TextConfig,
    /// Vision tower.
    pub vision: VisionConfig,
    /// Joint embedding width.
    pub projection_dim: usize,
}

#[derive(Deserialize)]
struct RawTower {
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    eos_token_id: Option<u32>,
    image_size: Option<usize>,
    patch_size: Option<usize>,
    num_channels: Option<usize>,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    text_config: Option<RawTower>,
    vision_config: Option<RawTower>,
    projection_dim: Option<usize>,
}

/// Defaults of `transformers`' `CLIPTextConfig` / `CLIPVisionConfig`.
struct Defaults {
    hidden: usize,
    intermediate: usize,
    layers: usize,
    heads: usize,
}

fn tower(raw: &RawTower, d: &Defaults) -> Result<TowerConfig, String> {
    let tower = TowerConfig {
        hidden_size: raw.hidden_size.unwrap_or(d.hidden),
        intermediate_size: raw.intermediate_size.unwrap_or(d.intermediate),
        layers: raw.num_hidden_layers.unwrap_or(d.layers),
        heads: raw.num_attention_heads.unwrap_or(d.heads),
        activation: Activation::parse(raw.hidden_act.as_deref().unwrap_or("quick_gelu"))?,
        layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-5),
    };
    if tower.heads == 0 || !tower.hidden_size.is_multiple_of(tower.heads) {
        return Err(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            tower.hidden_size, tower.heads
        ));
    }
    Ok(tower)
}

impl ClipConfig {
    /// Parses a `config.json`. A file without both towers (a text-only model, say) is an
    /// error saying what it is.
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: RawConfig =
            serde_json::from_str(json).map_err(|err| format!("not a valid config: {err}"))?;
        let (Some(text), Some(vision)) = (&raw.text_config, &raw.vision_config) else {
            return Err(format!(
                "not a CLIP model (model_type {:?}, no text_config and vision_config)",
                raw.model_type.as_deref().unwrap_or("unknown")
            ));
        };
        let text_tower = tower(
            text,
            &Defaults {
                hidden: 512,
                intermediate: 2048,
                layers: 12,
                heads: 8,
            },
        )?;
        let vision_tower = tower(
            vision,
            &Defaults {
                hidden: 768,
                intermediate: 3072,
                layers: 12,
                heads: 12,
            },
        )?;
        let config = Self {
            text: TextConfig {
                tower: text_tower,
                vocab_size: text.vocab_size.unwrap_or(49408),
                max_positions: text.max_position_embeddings.unwrap_or(77),
                eos_token_id: text.eos_token_id.unwrap_or(49407),
            },
            vision: VisionConfig {
                tower: vision_tower,
                image_size: vision.image_size.unwrap_or(224),
                patch_size: vision.patch_size.unwrap_or(32),
                channels: vision.num_channels.unwrap_or(3),
            },
            projection_dim: raw.projection_dim.unwrap_or(512),
        };
        let v = &config.vision;
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(config)
    }

    /// Patches per image side.
    #[must_use]
    pub fn grid(&self) -> usize {
        self.vision.image_size / self.vision.patch_size
    }
}

/// How images are prepared for the vision tower (`preprocessor_config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessConfig {
    /// The shortest side is resized to this.
    pub shortest_edge: u32,
    /// Then the centre is cropped to this size (`[height, width]`).
    pub crop: [u32; 2],
    /// Per-channel mean (after scaling to 0..1).
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
}

/// OpenAI CLIP's normalisation.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_7, 0.457_827_5, 0.408_210_7];
/// OpenAI CLIP's normalisation.
pub const CLIP_STD: [f32; 3] = [0.268_629_5, 0.261_302_6, 0.275_777_1];

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Int(u32),
    Map {
        shortest_edge: Option<u32>,
        height: Option<u32>,
        width: Option<u32>,
    },
}

#[derive(Deserialize)]
struct RawPreprocess {
    size: Option<RawSize>,
    crop_size: Option<RawSize>,
    image_mean: Option<[f32; 3]>,
    image_std: Option<[f32; 3]>,
}

impl PreprocessConfig {
    /// The processor of a model with `image_size`-pixel inputs when the folder has no
    /// `preprocessor_config.json`.
    #[must_use]
    pub fn default_for(image_size: usize) -> Self {
        let side = image_size as u32;
        Self {
            shortest_edge: side,
            crop: [side, side],
            mean: CLIP_MEAN,
            std: CLIP_STD,
        }
    }

    /// Parses `preprocessor_config.json`; fields it lacks come from
    /// [`Self::default_for`]`(image_size)`.
    pub fn parse(json: &str, image_size: usize) -> Result<Self, String> {
        let raw: RawPreprocess = serde_json::from_str(json)
            .map_err(|err| format!("not a valid preprocessor config: {err}"))?;
        let mut config = Self::default_for(image_size);
        match raw.size {
            Some(
                RawSize::Int(s)
                | RawSize::Map {
                    shortest_edge: Some(s),
                    ..
                },
            ) => config.shortest_edge = s,
            Some(RawSize::Map {
                height: Some(h),
                width: Some(w),
                ..
            }) if h == w => config.shortest_edge = h,
            Some(RawSize::Map { .. }) => {
                return Err("size must give shortest_edge (or a square)".to_owned());
            }
            None => {}
        }
        match raw.crop_size {
            Some(RawSize::Int(s)) => config.crop = [s, s],
            Some(RawSize::Map {
                height: Some(h),
                width: Some(w),
                ..
            }) => config.crop = [h, w],
            Some(RawSize::Map { .. }) => {
                return Err("crop_size must give height and width".to_owned());
            }
            None => {}
        }
        if let Some(mean) = raw.image_mean {
            config.mean = mean;
        }
        if let Some(std) = raw.image_std {
            config.std = std;
        }
        if config.std.iter().any(|&s| s <= 0.0) || config.shortest_edge == 0 {
            return Err("image_std must be positive and size non-zero".to_owned());
        }
        if config.crop != [image_size as u32, image_size as u32] {
            return Err(format!(
                "crop_size {:?} does not match the model's image_size {image_size}",
                config.crop
            ));
        }
        Ok(config)
    }
}
