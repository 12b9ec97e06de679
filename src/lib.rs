//! curate: find exact, near and semantic duplicates and outliers in a folder of images,
//! prune them, and save a keep-list for training.
//!
//! The crate is layered; each layer only looks down:
//!
//! - [`dataset`]: what is on disk — scanning, captions, safe decoding, the demo generator.
//! - [`embed`]: feature vectors (the built-in weight-free descriptor) and compute devices.
//! - [`analysis`]: per-image signals (hashes, quality) and dataset-wide analysis
//!   (duplicate groups, outlier scores, the 2-D layout).
//! - [`store`]: everything written under `DIR/.curate/` and where the user saves: the cache,
//!   the report, keep-lists, decisions. Every write is atomic.
//! - [`pipeline`]: the one pass that ties them together (`curate analyze`).
//! - [`render`]: the GPU map renderer (WGSL in `shaders/`), independent of egui.
//! - [`ui`]: the desktop app.
//!
//! [`guard`] turns panics of third-party parsers on damaged files into errors (any layer).
//!
//! The binary (`src/main.rs`) is the command line on top.

pub mod analysis;
pub mod dataset;
pub mod embed;
pub mod guard;
pub mod pipeline;
pub mod progress;
pub mod render;
pub mod rng;
pub mod store;
pub mod ui;
