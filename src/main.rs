//! The `curate` command line.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use curate::dataset::{DecodeLimits, demo};
use curate::embed::DeviceChoice;
use curate::pipeline::{self, Analysis, Options};
use curate::progress::{Progress, ProgressEvent};
use curate::store::{self, keeplist, report, session::Session};
use curate::ui::{AppConfig, Launch};

/// Find exact, near and semantic duplicates and outliers in a folder of images, prune them,
/// and save a keep-list for training.
///
/// `curate DIR` opens the app on a folder; `curate` alone opens its start screen.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The dataset folder to open in the app.
    dir: Option<PathBuf>,
    /// Where the analysis' tensor work runs.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// The image model: a Hugging Face CLIP folder (the map, outliers and semantic
    /// duplicates use its image embeddings, and the app gets a text search box), `none`
    /// (pixel features only), or by default the installed EfficientNet-Lite0.
    #[arg(long, value_name = "CLIP_DIR|none")]
    model: Option<PathBuf>,
    #[command(flatten)]
    embeddings: EmbeddingArgs,
    /// Each image's class, to find mislabelled images (the Classes panel): `folder` (the
    /// first folder under DIR) or `manifest` (a `class` or `label` column in a captions
    /// manifest).
    #[arg(long, value_enum, value_name = "SOURCE")]
    class_from: Option<ClassArg>,
    /// Keep the cache (thumbnails, report, decisions) in this folder instead of
    /// `DIR/.curate` (by default a dataset folder curate may not write uses a per-user
    /// folder under `~/.cache/curate/`).
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
}

/// Embeddings computed elsewhere.
#[derive(Args, Debug, Clone, Default)]
struct EmbeddingArgs {
    /// Embeddings computed elsewhere instead of a model: a parquet file with columns `path`
    /// (relative to DIR) and `embedding` (list of floats), or a `.npy` matrix with its paths
    /// in --embedding-paths. Rows whose image is not on disk are still analysed and mapped.
    #[arg(long, value_name = "FILE")]
    embeddings: Option<PathBuf>,
    /// The paths of a `.npy` --embeddings matrix, one per line in row order (default: the
    /// matrix' name with `.txt`).
    #[arg(long, value_name = "FILE", requires = "embeddings")]
    embedding_paths: Option<PathBuf>,
}

impl EmbeddingArgs {
    fn input(&self, model: Option<&Path>) -> Result<Option<pipeline::EmbeddingsInput>> {
        if self.embeddings.is_some() && model.is_some() {
            bail!("--embeddings and --model both give the images' embeddings: use one");
        }
        Ok(self
            .embeddings
            .clone()
            .map(|file| pipeline::EmbeddingsInput {
                file,
                paths: self.embedding_paths.clone(),
            }))
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan, decode, hash and analyse a folder; write the report (and a keep-list).
    Analyze(AnalyzeArgs),
    /// Write a keep-list from the last analysis and saved decisions, without re-analysing.
    Export(ExportArgs),
    /// Generate the built-in sample dataset, analyse it and write a keep-list; then open the
    /// app on it when a display is available.
    Demo(DemoArgs),
    /// Embed every image (and caption) with a CLIP model and write them to a parquet file:
    /// `path`, `image_embedding`, `text_embedding` (CLIP text tower, captioned images) and
    /// `sentence_embedding` (with --text-model). Vectors are unit length.
    Embed(EmbedArgs),
    /// Open the map on N synthetic points (clusters, duplicates, outliers, fake thumbnails),
    /// for measuring and for demos.
    Stress(StressArgs),
    /// Group near-duplicate captions of a text file (one caption per line) by MinHash LSH,
    /// as `curate analyze` fills the report column `caption_dup_group`; writes `line,group`
    /// (1-based line, group -1 when none) as CSV.
    CaptionDups(CaptionDupsArgs),
}

#[derive(Args, Debug)]
struct CaptionDupsArgs {
    /// The captions, one per line (UTF-8; other bytes are replaced).
    file: PathBuf,
    /// Jaccard similarity of two captions' character 5-gram sets from which they are near
    /// duplicates.
    #[arg(long, default_value_t = curate::analysis::minhash::DEFAULT_THRESHOLD)]
    threshold: f32,
    /// Where to write the CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct StressArgs {
    /// Number of points.
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Animate the camera for this many seconds, print frame-time statistics, and quit.
    #[arg(long, value_name = "SECONDS")]
    measure: Option<f32>,
    /// Real vectors instead of generated points: the whole analysis (k-NN, SemDeDup,
    /// outliers, UMAP) runs on them first (--points and --seed are then ignored).
    #[command(flatten)]
    embeddings: EmbeddingArgs,
}

#[derive(Args, Debug)]
struct AnalyzeArgs {
    /// The dataset folder.
    dir: PathBuf,
    /// Report file (parquet). Default: DIR/.curate/report.parquet.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the keep-list here: one relative path per line, in scan order.
    #[arg(long)]
    keep_list: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    models: ModelArgs,
    #[command(flatten)]
    embeddings: EmbeddingArgs,
    /// A CSV of `path,label` lines (label `good` or `bad`): the ensemble score is then a
    /// logistic model of every operator fitted on these images, and its weights are
    /// printed.
    #[arg(long, value_name = "FILE")]
    quality_labels: Option<PathBuf>,
}

/// Which image model a run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ModelPick {
    /// A CLIP folder.
    Clip(PathBuf),
    /// An EfficientNet-Lite0 folder (the default model).
    Classifier(PathBuf),
    /// Pixel features only.
    None,
}

/// `--model DIR` (a CLIP folder, or an EfficientNet-Lite0 folder such as the one
/// scripts/fetch-models installs), `--model none` (pixel features only), or by default the
/// installed EfficientNet-Lite0; when it is not installed, or embeddings come from a file,
/// the pixel features (and one line on stderr saying so, in the first case).
fn pick_model(model: Option<&Path>, imported_embeddings: bool) -> ModelPick {
    use curate::embed::efficientnet;
    match model {
        Some(dir) if dir == Path::new("none") && !dir.is_dir() => ModelPick::None,
        Some(dir) if efficientnet::is_model_dir(dir) => ModelPick::Classifier(dir.to_owned()),
        Some(dir) => ModelPick::Clip(dir.to_owned()),
        None if imported_embeddings => ModelPick::None,
        None => match efficientnet::default_dir() {
            Some(dir) if efficientnet::is_model_dir(&dir) => ModelPick::Classifier(dir),
            dir => {
                eprintln!(
                    "curate: no image model installed{} (scripts/fetch-models installs \
                     EfficientNet-Lite0); using pixel features only",
                    dir.map(|d| format!(" at {}", d.display()))
                        .unwrap_or_default()
                );
                ModelPick::None
            }
        },
    }
}

impl ModelPick {
    fn clip(&self) -> Option<PathBuf> {
        match self {
            Self::Clip(dir) => Some(dir.clone()),
            _ => None,
        }
    }

    fn classifier(&self) -> Option<PathBuf> {
        match self {
            Self::Classifier(dir) => Some(dir.clone()),
            _ => None,
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
struct ModelArgs {
    /// The image model: a Hugging Face CLIP folder (config.json, model.safetensors,
    /// tokenizer: its image embeddings drive the map, outlier scores and semantic
    /// duplicates; captions get a CLIP score), an EfficientNet-Lite0 folder, or `none`
    /// (pixel features only). By default the installed EfficientNet-Lite0 (ImageNet class,
    /// label-free OOD scores), when scripts/fetch-models installed it.
    #[arg(long, value_name = "CLIP_DIR|none")]
    model: Option<PathBuf>,
    /// Zero-shot labels, comma-separated ("cat,dog,chart"): predicted label and its OOD
    /// scores (maximum logit, entropy, top-2 margin). Needs --model with a CLIP folder.
    #[arg(long, value_delimiter = ',', requires = "model")]
    labels: Vec<String>,
    /// Zero-shot labels, one per line. Needs --model.
    #[arg(long, value_name = "FILE", requires = "model")]
    labels_file: Option<PathBuf>,
    /// Cosine similarity of CLIP embeddings at or above which images are semantic
    /// duplicates.
    #[arg(long, default_value_t = pipeline::semantic::DEFAULT_SEMANTIC_THRESHOLD)]
    semantic_threshold: f32,
    /// CLIP score below which a caption is flagged as not describing its image.
    #[arg(long, default_value_t = pipeline::semantic::DEFAULT_CLIP_SCORE_THRESHOLD)]
    clip_score_threshold: f32,
    /// Images per model batch.
    #[arg(long, default_value_t = pipeline::semantic::DEFAULT_BATCH)]
    batch: usize,
    /// A sentence-transformers folder (e.g. models/all-MiniLM-L6-v2 from
    /// scripts/fetch-models): caption embeddings and groups of near-identical captions
    /// (report column `caption_group`), with or without --model.
    #[arg(long, value_name = "DIR")]
    text_model: Option<PathBuf>,
    /// Cosine of caption embeddings at or above which captions are grouped.
    #[arg(long, default_value_t = pipeline::semantic::DEFAULT_CAPTION_THRESHOLD)]
    caption_threshold: f32,
}

impl ModelArgs {
    fn options(&self, imported_embeddings: bool) -> Result<pipeline::semantic::ModelOptions> {
        let pick = pick_model(self.model.as_deref(), imported_embeddings);
        let mut labels: Vec<String> = self
            .labels
            .iter()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(file) = &self.labels_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the labels file {}", file.display()))?;
            labels.extend(
                text.lines()
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty()),
            );
        }
        if !labels.is_empty() && pick.clip().is_none() {
            bail!("--labels and --labels-file need --model with a CLIP folder");
        }
        Ok(pipeline::semantic::ModelOptions {
            clip: pick.clip(),
            classifier: pick.classifier(),
            labels,
            semantic_threshold: self.semantic_threshold,
            clip_score_threshold: self.clip_score_threshold,
            batch: self.batch,
            text: self.text_model.clone(),
            caption_threshold: self.caption_threshold,
        })
    }
}

#[derive(Args, Debug)]
struct EmbedArgs {
    /// The dataset folder.
    dir: PathBuf,
    /// The image model: a Hugging Face CLIP folder, an EfficientNet-Lite0 folder, or `none`
    /// (captions only, with --text-model). By default the installed EfficientNet-Lite0,
    /// whose `image_embedding` is the pooled 1280 features and `logits` its 1000 ImageNet
    /// logits.
    #[arg(long, value_name = "CLIP_DIR|none")]
    model: Option<PathBuf>,
    /// A sentence-transformers folder (e.g. all-MiniLM-L6-v2): adds `sentence_embedding`
    /// of each caption.
    #[arg(long, value_name = "DIR")]
    text_model: Option<PathBuf>,
    /// The parquet file to write.
    #[arg(long)]
    out: PathBuf,
    /// Images per model batch.
    #[arg(long, default_value_t = pipeline::semantic::DEFAULT_BATCH)]
    batch: usize,
    #[command(flatten)]
    common: CommonArgs,
}

// The command line's choices: mirrors of the library's enums, so that clap stays in the
// binary (the layers below know nothing of a command line).

/// `--device`: where tensor work runs ([`DeviceChoice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceArg {
    /// A real GPU when there is one, else the CPU
    Auto,
    /// The CPU (burn `flex`)
    Cpu,
    /// A GPU through wgpu, even a software one; an error when there is no adapter at all
    Gpu,
}

impl From<DeviceArg> for DeviceChoice {
    fn from(arg: DeviceArg) -> Self {
        match arg {
            DeviceArg::Auto => Self::Auto,
            DeviceArg::Cpu => Self::Cpu,
            DeviceArg::Gpu => Self::Gpu,
        }
    }
}

/// `--outlier-score` ([`pipeline::OutlierScore`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutlierArg {
    /// Cosine distance to the k-th nearest neighbour outside the image's duplicate group
    /// (Sun et al. 2022): `ood_kth`
    Kth,
    /// Mean cosine distance to the k nearest such neighbours: `ood_mean_knn`
    Mean,
    /// Mahalanobis distance to one Gaussian fitted on all images: `ood_mahalanobis`
    Mahalanobis,
    /// How rare the image is on every signal at once, relative to the folder (the
    /// far-neighbour distance, the Mahalanobis distance and the seven quality measures):
    /// `ood_combined`. The best of the four on real images with clustered outliers, and the
    /// default
    Combined,
}

impl From<OutlierArg> for pipeline::OutlierScore {
    fn from(arg: OutlierArg) -> Self {
        match arg {
            OutlierArg::Kth => Self::Kth,
            OutlierArg::Mean => Self::MeanKnn,
            OutlierArg::Mahalanobis => Self::Mahalanobis,
            OutlierArg::Combined => Self::Combined,
        }
    }
}

/// `--keeper` ([`curate::analysis::keep::KeeperPolicy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum KeeperArg {
    /// The best image (EcoDatum's quality-guided deduplication): the lowest learned
    /// ensemble score when quality labels taught one, else more pixels, well exposed,
    /// sharper, larger file
    Quality,
    /// The member closest to its k-means cluster centre (the most typical one)
    Central,
    /// The member farthest from its cluster centre (SemDeDup's "hard" choice: keeps the
    /// least prototypical example)
    Farthest,
}

impl From<KeeperArg> for curate::analysis::keep::KeeperPolicy {
    fn from(arg: KeeperArg) -> Self {
        match arg {
            KeeperArg::Quality => Self::Quality,
            KeeperArg::Central => Self::Central,
            KeeperArg::Farthest => Self::Farthest,
        }
    }
}

/// `--class-from` ([`pipeline::ClassFrom`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ClassArg {
    /// The first folder under DIR (DIR/CLASS/.../image), as torchvision's `ImageFolder`
    Folder,
    /// A `class` (or `label`) column in a captions manifest (captions.csv|jsonl|parquet)
    Manifest,
}

impl From<ClassArg> for pipeline::ClassFrom {
    fn from(arg: ClassArg) -> Self {
        match arg {
            ClassArg::Folder => Self::Folder,
            ClassArg::Manifest => Self::Manifest,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Also drop this percentage of the most unusual images (0–100).
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    drop_outliers: Option<f32>,
    /// Where tensor work runs.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// The outlier score behind `ood_score` and --drop-outliers (all four are in the
    /// report: `ood_combined`, `ood_kth`, `ood_mean_knn`, `ood_mahalanobis`).
    #[arg(long, value_enum, default_value_t = OutlierArg::Combined)]
    outlier_score: OutlierArg,
    /// How each duplicate group's keeper is chosen: `quality` (the best image; the learned
    /// ensemble score when --quality-labels are given), `central` (closest to its k-means
    /// cluster centre) or `farthest` (SemDeDup's hard choice).
    #[arg(long, value_enum, default_value_t = KeeperArg::Quality)]
    keeper: KeeperArg,
    /// Largest pHash Hamming distance (of 64 bits) of a near-duplicate candidate; every
    /// candidate is then verified on the pixels.
    #[arg(long, default_value_t = curate::analysis::dedup::DEFAULT_MAX_DISTANCE)]
    phash_distance: u32,
    /// Largest pixel difference (mean colour distance in the worst block after alignment,
    /// 0–441) at which a candidate pair is a copy.
    #[arg(long, default_value_t = curate::analysis::verify::DEFAULT_MAX_DIFFERENCE)]
    max_difference: f32,
    /// Refuse images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = DecodeLimits::default().max_pixels)]
    max_pixels: u64,
    /// Each image's class, to find mislabelled images (report `given_class`,
    /// `class_issue_score`, `suggested_class`): `folder` (the first folder under DIR, as
    /// torchvision's `ImageFolder`) or `manifest` (a `class` or `label` column in a captions
    /// manifest).
    #[arg(long, value_enum, value_name = "SOURCE")]
    class_from: Option<ClassArg>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// The dataset folder (analysed before).
    dir: PathBuf,
    /// Where to write the keep-list.
    #[arg(long)]
    keep_list: PathBuf,
    /// Also write the classes given by hand in the app's Classes panel (after
    /// `--class-from`) as CSV: `path,given_class,class`.
    #[arg(long, value_name = "CSV")]
    relabels: Option<PathBuf>,
    /// The report to start from. Default: DIR/.curate/report.parquet.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also drop this percentage of the most unusual images (0–100).
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    drop_outliers: Option<f32>,
    /// Also write the kept samples as WebDataset shards in this folder (OUT/000000.tar,
    /// ...): each kept image with the files beside it that share its key (captions,
    /// labels), from a folder or from the shard it came from.
    #[arg(long, value_name = "OUT")]
    webdataset: Option<PathBuf>,
    /// Also write the kept images as parquet files in this folder (OUT/000000.parquet,
    /// ...), in the Hugging Face `datasets` layout: `image` ({bytes, path}) and `text`.
    #[arg(long, value_name = "OUT")]
    parquet: Option<PathBuf>,
    /// Samples per shard written by --webdataset (rows per file for --parquet).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    samples_per_shard: usize,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Where to write the sample dataset.
    #[arg(default_value = "curate-demo")]
    dir: PathBuf,
    /// Number of distinct generated scenes (copies, outliers and bad files come on top).
    #[arg(long, default_value_t = demo::DEFAULT_SCENES)]
    scenes: usize,
    /// Only the scenes, all 256×256 JPEG: no copies, outliers or bad files (for benchmarks).
    #[arg(long)]
    plain: bool,
    /// Do not open the app afterwards, even when a display is available.
    #[arg(long)]
    no_window: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn parse_percent(text: &str) -> Result<f32, String> {
    let value: f32 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0 and 100".to_owned())
    }
}

/// Graphics libraries (the Vulkan loader's Wayland and X11 paths, Mesa) print `error:
/// XDG_RUNTIME_DIR is invalid or not set` on every command when it is unset (ssh, cron,
/// containers): give them a private one first, as a login session would.
#[allow(unsafe_code)]
fn ensure_runtime_dir() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .is_some_and(|dir| dir.is_absolute() && dir.is_dir());
    if valid {
        return;
    }
    let dir = std::env::temp_dir().join(format!("curate-runtime-{}", whoami_uid()));
    let made = std::fs::create_dir_all(&dir).is_ok() && {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_ok()
    };
    if made {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

/// The user's id (names the private runtime folder).
fn whoami_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

fn main() -> std::process::ExitCode {
    ensure_runtime_dir();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error as one line: the context and its causes joined, each said once (a message
/// that already quotes its cause does not repeat it), with what to do about a failed write
/// when the cause says (see [`store::write_advice`]).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    if let Some(advice) = store::write_advice(err.as_ref())
        && !line.contains(advice)
    {
        line.push_str("; ");
        line.push_str(advice);
    }
    line
}

fn run() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    if let Some(cache) = &cli.cache_dir {
        let dataset = match &cli.command {
            Some(Command::Analyze(args)) => Some(&args.dir),
            Some(Command::Export(args)) => Some(&args.dir),
            Some(Command::Embed(args)) => Some(&args.dir),
            Some(Command::Demo(args)) => Some(&args.dir),
            Some(Command::Stress(_) | Command::CaptionDups(_)) => None,
            None => cli.dir.as_ref(),
        };
        let dataset = dataset.context("--cache-dir needs a dataset folder")?;
        curate::store::set_cache_dir(dataset, cache.clone());
    }
    let Some(command) = cli.command else {
        let launch = cli.dir.map_or(Launch::Start, Launch::Folder);
        let pick = pick_model(cli.model.as_deref(), cli.embeddings.embeddings.is_some());
        let embeddings = cli.embeddings.input(pick.clip().as_deref())?;
        return open_app(
            launch,
            cli.device.into(),
            &pick,
            embeddings,
            cli.class_from.map(Into::into),
        );
    };
    match command {
        Command::Stress(args) => {
            if !curate::ui::display_available() {
                bail!(
                    "`curate stress` opens a window: no display (set DISPLAY, or run under Xvfb)"
                );
            }
            open_app(
                Launch::Stress {
                    points: args.points,
                    seed: args.seed,
                    measure_seconds: args.measure,
                    vectors: args.embeddings.input(None)?,
                },
                DeviceChoice::Auto,
                &ModelPick::None,
                None,
                None,
            )?;
        }
        Command::Analyze(args) => {
            let labels = match &args.quality_labels {
                Some(file) => read_labels(file)?,
                None => Vec::new(),
            };
            let models = args.models.options(args.embeddings.embeddings.is_some())?;
            let embeddings = args.embeddings.input(models.clip.as_deref())?;
            let analysis = run_analysis_with(
                &args.dir,
                &args.common,
                args.report.clone(),
                models,
                labels,
                embeddings,
            )?;
            if let Some(path) = &args.keep_list {
                write_keep_list(&analysis, &args.dir, path)?;
            }
            print_summary(&analysis, args.keep_list.as_deref(), args.common.json)?;
        }
        Command::Export(args) => export(&args)?,
        Command::Embed(args) => embed(&args)?,
        Command::CaptionDups(args) => caption_dups(&args)?,
        Command::Demo(args) => {
            let truth = demo::generate_with(&args.dir, args.scenes, args.plain)
                .with_context(|| format!("writing the demo dataset to {}", args.dir.display()))?;
            let analysis = run_analysis(&args.dir, &args.common, None, {
                // The default model with the defaults of `curate analyze` (not
                // `ModelArgs::default()`, whose thresholds and batch are zeros).
                let pick = pick_model(None, false);
                pipeline::semantic::ModelOptions {
                    clip: pick.clip(),
                    classifier: pick.classifier(),
                    ..pipeline::semantic::ModelOptions::default()
                }
            })?;
            let keep_list = store::curate_dir(&args.dir).join("keep-list.txt");
            write_keep_list(&analysis, &args.dir, &keep_list)?;
            print_summary(&analysis, Some(&keep_list), args.common.json)?;
            if !args.common.json && !args.plain {
                let score = curate::pipeline::demo_score::evaluate(&truth, &analysis.rows);
                println!("\n{score}");
            }
            if !args.no_window && !args.common.json && curate::ui::display_available() {
                println!(
                    "\nopening the app on {} (close the window to finish)",
                    args.dir.display()
                );
                open_app(
                    Launch::Folder(args.dir.clone()),
                    args.common.device.into(),
                    &pick_model(None, false),
                    None,
                    args.common.class_from.map(Into::into),
                )?;
            }
        }
    }
    Ok(())
}

fn open_app(
    launch: Launch,
    device: DeviceChoice,
    model: &ModelPick,
    embeddings: Option<pipeline::EmbeddingsInput>,
    class_from: Option<pipeline::ClassFrom>,
) -> Result<()> {
    let config = AppConfig {
        launch,
        device,
        model: model.clip(),
        classifier: model.classifier(),
        embeddings,
        class_from,
        ..AppConfig::default()
    };
    curate::ui::run(config).map_err(anyhow::Error::msg)?;
    Ok(())
}

fn run_analysis(
    dir: &Path,
    common: &CommonArgs,
    report: Option<PathBuf>,
    models: pipeline::semantic::ModelOptions,
) -> Result<Analysis> {
    run_analysis_with(dir, common, report, models, Vec::new(), None)
}

/// `path,label` lines, label `good`/`bad` (or `0`/`1`); a header line is allowed.
fn read_labels(file: &Path) -> Result<Vec<(String, bool)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the labels file {}", file.display()))?;
    let mut labels = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((path, label)) = line.rsplit_once(',') else {
            bail!(
                "{}: line {}: expected `path,good|bad`",
                file.display(),
                n + 1
            );
        };
        let bad = match label.trim().to_ascii_lowercase().as_str() {
            "bad" | "1" => true,
            "good" | "0" => false,
            _ if n == 0 => continue,
            other => bail!(
                "{}: line {}: label `{other}` is not good or bad",
                file.display(),
                n + 1
            ),
        };
        labels.push((path.trim().to_owned(), bad));
    }
    Ok(labels)
}

fn run_analysis_with(
    dir: &Path,
    common: &CommonArgs,
    report: Option<PathBuf>,
    models: pipeline::semantic::ModelOptions,
    quality_labels: Vec<(String, bool)>,
    embeddings: Option<pipeline::EmbeddingsInput>,
) -> Result<Analysis> {
    let options = Options {
        models,
        embeddings,
        quality_labels,
        max_distance: common.phash_distance,
        max_difference: common.max_difference,
        outlier_score: common.outlier_score.into(),
        keeper_policy: common.keeper.into(),
        drop_outliers_percent: common.drop_outliers,
        class_from: common.class_from.map(Into::into),
        device: common.device.into(),
        limits: DecodeLimits {
            max_pixels: common.max_pixels,
        },
        report,
        ..Options::default()
    };
    let (progress, events) = Progress::channel();
    let show_bar = std::io::stderr().is_terminal() && !common.json;
    let bar_thread = thread::spawn(move || {
        let bar = if show_bar {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:<20} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        for event in events {
            match event {
                ProgressEvent::Started { stage, total } => {
                    bar.reset();
                    bar.set_length(total);
                    bar.set_message(stage.label());
                }
                ProgressEvent::Advanced { done, .. } => bar.set_position(done),
                ProgressEvent::Finished { .. } => {}
                ProgressEvent::Note(note) => bar.suspend(|| eprintln!("curate: {note}")),
            }
        }
        bar.finish_and_clear();
    });
    let result = pipeline::analyze(dir, &options, &progress);
    drop(progress);
    bar_thread.join().ok();
    result.with_context(|| format!("analysing {}", dir.display()))
}

/// Writes the keep-list of a run by the one rule: what the person decided in the app (the
/// saved session of `dir`) wins over the run's automatic decisions, as in the app and
/// `curate export`.
fn write_keep_list(analysis: &Analysis, dir: &Path, path: &Path) -> Result<usize> {
    let session = Session::load(dir).context("reading the saved decisions")?;
    let evidence = curate::pipeline::decide::Evidence {
        near: &analysis.near,
        semantic: analysis.semantic_pairs.as_deref(),
    };
    let (rows, _) =
        curate::pipeline::decide::effective(analysis.rows.clone(), evidence, &session, None);
    let count = keeplist::write(
        path,
        rows.iter().filter(|r| r.keep).map(|r| r.path.as_str()),
    )
    .with_context(|| format!("writing the keep-list {}", path.display()))?;
    if !session.decisions.is_empty() || session.tunes_groups() {
        eprintln!(
            "curate: the keep-list ({count} files) applies what was decided in the app ({}, {})",
            session.describe(),
            curate::store::session::path(dir).display()
        );
    }
    Ok(count)
}

fn print_summary(analysis: &Analysis, keep_list: Option<&Path>, json: bool) -> Result<()> {
    let s = &analysis.summary;
    if json {
        let value = serde_json::json!({
            "summary": s,
            "keep_list": keep_list.map(|p| p.display().to_string()),
            "report": store::default_report_path(&analysis.root).display().to_string(),
            "warnings": analysis.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("curate: {}", analysis.root.display());
    println!(
        "  files      {:>8}   readable {}  ·  captioned {}",
        s.files, s.images, s.captioned
    );
    let errors: usize = s.errors.values().sum();
    if errors > 0 {
        let kinds: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("  errors     {errors:>8}   {}", kinds.join(", "));
    }
    println!(
        "  duplicates {:>8}   groups ({} with exact copies)",
        s.dup_groups, s.exact_groups
    );
    if s.near_candidates > 0 {
        let fmt = |v: Option<f32>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "  verified   {:>8}   of {} candidate pairs are copies  ·  pixel difference: copies up to {}, look-alikes from {} (threshold {:.1})",
            s.near_copies,
            s.near_candidates,
            fmt(s.farthest_copy),
            fmt(s.closest_rejected),
            s.max_difference
        );
    }
    if s.caption_dup_groups > 0 {
        println!(
            "  captions   {:>8}   groups of near-duplicate captions (MinHash, Jaccard ≥ {})",
            s.caption_dup_groups,
            curate::analysis::minhash::DEFAULT_THRESHOLD
        );
    }
    if s.caption_groups > 0 {
        println!(
            "  captions   {:>8}   groups of near-identical captions",
            s.caption_groups
        );
    }
    if let Some(file) = &s.embeddings {
        println!(
            "  embeddings {file}  ·  rows without an image {}  ·  semantic duplicates {}",
            s.vector_only, s.semantic_duplicates
        );
    }
    if let Some(model) = &s.model {
        println!(
            "  model      {model}  ·  embedded {}  ·  semantic duplicates {}",
            s.embedded, s.semantic_duplicates
        );
    }
    if !s.ensemble_weights.is_empty() {
        let weights: Vec<String> = s
            .ensemble_weights
            .iter()
            .map(|(name, w)| format!("{name} {w:+.2}"))
            .collect();
        println!("  ensemble   learned weights: {}", weights.join(", "));
    }
    if s.classes > 0 {
        println!(
            "  classes    {:>8}   classes over {} images  ·  {} where another class fits better \
             (class_issue_score > 0.5, see suggested_class)",
            s.classes, s.classed, s.class_issues
        );
    }
    println!("  kept       {:>8}", s.kept);
    for (reason, count) in &s.dropped {
        println!("  dropped    {count:>8}   {reason}");
    }
    println!(
        "  time       {:>7.2}s   {:.0} files/s  ·  decoded {}, cached {}  ·  {}",
        s.elapsed_secs, s.images_per_sec, s.decoded, s.cached, s.device
    );
    let stages: Vec<String> = s
        .stage_secs
        .iter()
        .filter(|(_, secs)| *secs >= 0.005)
        .map(|(name, secs)| format!("{name} {secs:.2}"))
        .collect();
    if !stages.is_empty() {
        println!("  stages     {} (seconds)", stages.join(" · "));
    }
    for warning in analysis.warnings.iter().take(5) {
        println!("  warning    {warning}");
    }
    if analysis.warnings.len() > 5 {
        println!(
            "  warning    … and {} more (see --json)",
            analysis.warnings.len() - 5
        );
    }
    if let Some(path) = keep_list {
        println!("  keep-list  {}", path.display());
    }
    println!(
        "  report     {}",
        store::default_report_path(&analysis.root).display()
    );
    Ok(())
}

fn caption_dups(args: &CaptionDupsArgs) -> Result<()> {
    if !(args.threshold > 0.0 && args.threshold <= 1.0) {
        bail!(
            "--threshold is a Jaccard similarity: above 0 and at most 1 (got {})",
            args.threshold
        );
    }
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<Option<&str>> = text
        .lines()
        .map(|l| Some(l.trim_end_matches('\r')))
        .collect();
    let started = std::time::Instant::now();
    let found = curate::analysis::minhash::group(&lines, args.threshold);
    let took = started.elapsed();
    let mut csv = String::with_capacity(lines.len() * 8 + 16);
    csv.push_str("line,group\n");
    for (i, g) in found.group.iter().enumerate() {
        let _ = writeln!(csv, "{},{g}", i + 1);
    }
    match &args.out {
        Some(path) => curate::store::atomic::write_bytes(path, csv.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{csv}"),
    }
    eprintln!(
        "{} captions, {} groups of near duplicates ({} pairs at Jaccard >= {}) in {:.3} s",
        lines.len(),
        found.groups,
        found.pairs.len(),
        args.threshold,
        took.as_secs_f64()
    );
    Ok(())
}

fn embed(args: &EmbedArgs) -> Result<()> {
    let pick = pick_model(args.model.as_deref(), false);
    if pick == ModelPick::None && args.text_model.is_none() {
        bail!("nothing to embed: no image model (--model) and no --text-model");
    }
    let models = pipeline::semantic::ModelOptions {
        clip: pick.clip(),
        classifier: pick.classifier(),
        batch: args.batch,
        text: args.text_model.clone(),
        ..pipeline::semantic::ModelOptions::default()
    };
    let analysis = run_analysis(&args.dir, &args.common, None, models)?;
    let semantic = analysis
        .semantic
        .as_ref()
        .context("the model stage did not run")?;
    let count = curate::pipeline::write_embeddings(&args.out, &analysis)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "curate: {count} images embedded ({} computed now, the rest cached) → {}",
        semantic.embedded,
        args.out.display()
    );
    Ok(())
}

fn export(args: &ExportArgs) -> Result<()> {
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| store::default_report_path(&args.dir));
    if !report_path.exists() {
        bail!(
            "no report at {}: run `curate analyze {}` first",
            report_path.display(),
            args.dir.display()
        );
    }
    let rows =
        report::read(&report_path).with_context(|| format!("reading {}", report_path.display()))?;
    let session = Session::load(&args.dir).context("reading the saved decisions")?;
    // The one rule the app applies too: the session's tuning of groups and keepers, then
    // its marks.
    let near = if session.tunes_groups() {
        curate::pipeline::decide::load_near(&args.dir, &rows).context(
            "the session tunes duplicate groups, which needs the verified pairs of the last run",
        )?
    } else {
        curate::pipeline::near::NearPairs::default()
    };
    if let Some(threshold) = session.settings.semantic_threshold
        && rows.iter().any(|r| r.status == "ok" && r.width.is_none())
    {
        // SemDeDup's pairs live in the model cache, which export does not open.
        eprintln!(
            "curate: note: the session's semantic threshold ({threshold:.3}) regroups rows without an image in the app only; export keeps the run's semantic groups (run `curate analyze --semantic-threshold {threshold:.3}` to apply it)"
        );
    }
    let evidence = curate::pipeline::decide::Evidence {
        near: &near,
        semantic: None,
    };
    let (rows, outliers) =
        curate::pipeline::decide::effective(rows, evidence, &session, args.drop_outliers);
    let count = keeplist::write(
        &args.keep_list,
        rows.iter().filter(|r| r.keep).map(|r| r.path.as_str()),
    )
    .with_context(|| format!("writing {}", args.keep_list.display()))?;
    println!(
        "curate: {count} of {} files kept (the session applied: {}; {outliers} outliers dropped) → {}",
        rows.len(),
        session.describe(),
        args.keep_list.display()
    );
    if let Some(out) = &args.relabels {
        let written = report::write_relabels(out, &rows)
            .with_context(|| format!("writing {}", out.display()))?;
        println!("curate: {written} relabels → {}", out.display());
    }
    // Kept images that are on disk (not unreadable files, not rows of imported vectors).
    let exported = || {
        rows.iter()
            .filter(|r| r.keep && r.status == "ok" && r.width.is_some())
    };
    if let Some(out) = &args.webdataset {
        let written = store::shards::write_webdataset(
            &args.dir,
            exported().map(|r| r.path.as_str()),
            out,
            args.samples_per_shard,
        )
        .with_context(|| format!("writing WebDataset shards to {}", out.display()))?;
        println!(
            "curate: {} samples ({} files) in {} shards → {}",
            written.samples,
            written.files,
            written.shards,
            out.display()
        );
    }
    if let Some(out) = &args.parquet {
        let written = store::shards::write_parquet(
            &args.dir,
            exported().map(|r| (r.path.as_str(), r.caption.as_deref())),
            out,
            args.samples_per_shard,
        )
        .with_context(|| format!("writing parquet files to {}", out.display()))?;
        println!(
            "curate: {} images in {} parquet files → {}",
            written.samples,
            written.shards,
            out.display()
        );
    }
    Ok(())
}
