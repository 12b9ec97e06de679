//! What is on disk: finding images and captions, decoding them safely, and the built-in demo
//! dataset.

pub mod captions;
pub mod decode;
pub mod demo;
pub mod jpeg;
pub mod pillow;
pub mod resample;
pub mod scan;
pub mod shards;

pub use decode::{DecodeLimits, FileError};
pub use scan::{Scan, ScanEntry, scan};
