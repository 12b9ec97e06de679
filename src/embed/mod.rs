//! Feature vectors and the compute devices they are computed on.
//!
//! [`builtin`] is the weight-free descriptor every image gets in the decode pass; learned
//! models arrive in later layers of this module.

pub mod builtin;
pub mod dct;
pub mod device;

pub use builtin::FEATURE_DIM;
pub use device::{ComputeDevice, DeviceChoice};
