//! What is on disk: finding images and captions, decoding them safely, and the built-in demo
//! dataset.

pub mod captions;
pub mod decode;
pub mod demo;
pub mod jpeg;
pub mod parquet_images;
pub mod pillow;
pub mod resample;
pub mod scan;
pub mod shards;

pub use decode::{DecodeLimits, FileError};

/// The bytes of the image or file a dataset-relative path names: a row of a parquet file
/// of images (`FILE.parquet/ROW`, see [`parquet_images`]), a member of a WebDataset shard
/// (`SHARD.tar/MEMBER`, see [`shards`]) or a plain file under `root`.
///
/// # Errors
/// When it cannot be read.
pub fn read_path(root: &std::path::Path, rel_path: &str) -> std::io::Result<Vec<u8>> {
    if let Some((file, row)) = parquet_images::split(root, rel_path) {
        return parquet_images::read_row(&root.join(file), row);
    }
    shards::read_path(root, rel_path)
}
pub use scan::{Scan, ScanEntry, scan};
