//! Feature vectors and the compute devices they are computed on.
//!
//! [`builtin`] is the weight-free descriptor every image gets in the decode pass; learned
//! models: [`clip`] (image and text towers) and [`text`] (a sentence encoder), with
//! [`weights`] loading their safetensors strictly.

pub mod builtin;
pub mod clip;
pub mod dct;
pub mod device;
pub mod efficientnet;
pub mod text;
pub mod weights;

pub use builtin::FEATURE_DIM;
pub use device::{ComputeDevice, DeviceChoice};
