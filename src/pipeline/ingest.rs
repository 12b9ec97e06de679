//! The decode pass for one file: read once, hash, decode once, and compute everything from
//! that one decoded image.

use std::io::Cursor;

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::analysis::{phash, quality};
use crate::dataset::resample::{fit_within, resize_area};
use crate::dataset::{DecodeLimits, FileError, ScanEntry, decode};
use crate::embed::{builtin, dct};
use crate::store::cache::{ImageFacts, ThumbRef};

/// Longest side of the working copy the thumbnail is made from.
pub const WORKING_SIDE: u32 = 256;
/// Longest side of a thumbnail.
pub const THUMB_SIDE: u32 = 128;
/// JPEG quality of thumbnails.
const THUMB_QUALITY: u8 = 85;

/// Facts about one image (thumbnail not yet placed in the pack) and its thumbnail.
#[derive(Clone, Debug)]
pub struct Ingested {
    /// Everything but `thumb`, which the caller fills in when it appends `thumbnail`.
    pub facts: ImageFacts,
    /// JPEG bytes of the thumbnail.
    pub thumbnail: Vec<u8>,
}

/// Runs the decode pass on one file.
pub fn ingest(entry: &ScanEntry, limits: DecodeLimits) -> Result<Ingested, FileError> {
    if !entry.utf8_name {
        return Err(FileError::NonUtf8Name);
    }
    if let Some(reason) = &entry.unreadable {
        // A member its shard cuts off is a truncated file (cached like one: a repaired
        // shard has another size); anything else could not be inspected.
        return Err(if reason == crate::dataset::shards::CUT_OFF {
            FileError::Truncated(reason.clone())
        } else {
            FileError::Unreadable(reason.clone())
        });
    }
    let bytes = entry
        .read()
        .map_err(|err| FileError::Unreadable(err.to_string()))?;
    ingest_bytes(&bytes, limits)
}

/// The decode pass on bytes already in memory.
pub fn ingest_bytes(bytes: &[u8], limits: DecodeLimits) -> Result<Ingested, FileError> {
    let content_hash = *blake3::hash(bytes).as_bytes();
    let decoded = decode::decode(bytes, limits)?;
    let flat_phashes = decoded.rgba.as_ref().map(|rgba| {
        decode::flattened(rgba).map(|view| {
            let small = hash_input(&view);
            phash::phash(&dct::dct2(&builtin::luma32(&small)))
        })
    });
    let image = decoded.rgb;
    let noise = quality::noise_of(&image);
    let (width, height) = image.dimensions();
    let (work_w, work_h) = fit_within(width, height, WORKING_SIDE);
    let working = if (work_w, work_h) == (width, height) {
        image
    } else {
        resize_area(&image, work_w, work_h)
    };
    // The thumbnail doubles as the image the quality measures are taken on: at ≤128 px the
    // percentiles, entropy and chroma are those of the full image, and it is 4× cheaper.
    let (thumb_w, thumb_h) = fit_within(work_w, work_h, THUMB_SIDE);
    let thumb = resize_area(&working, thumb_w, thumb_h);
    let measures = quality::Measures {
        noise,
        ..quality::measure(&thumb)
    };
    let small = resize_area(&thumb, builtin::INPUT_SIDE, builtin::INPUT_SIDE);
    let luma_dct = dct::dct2(&builtin::luma32(&small));
    let thumbnail = encode_thumbnail(&thumb);
    Ok(Ingested {
        facts: ImageFacts {
            width,
            height,
            content_hash,
            bytes: bytes.len() as u64,
            phash: phash::phash(&luma_dct),
            flat_phashes,
            measures,
            feature: builtin::describe(&small, &luma_dct),
            thumb: ThumbRef::default(),
        },
        thumbnail,
    })
}

/// The square picture an image's hashes and features are computed from, made as in
/// [`ingest_bytes`] (working copy, thumbnail, input side).
fn hash_input(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let (work_w, work_h) = fit_within(w, h, WORKING_SIDE);
    let working = resize_area(image, work_w, work_h);
    let (thumb_w, thumb_h) = fit_within(work_w, work_h, THUMB_SIDE);
    let thumb = resize_area(&working, thumb_w, thumb_h);
    resize_area(&thumb, builtin::INPUT_SIDE, builtin::INPUT_SIDE)
}

fn encode_thumbnail(thumb: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 << 10);
    JpegEncoder::new_with_quality(Cursor::new(&mut bytes), THUMB_QUALITY)
        .encode_image(thumb)
        .expect("encoding an RGB image to memory cannot fail");
    bytes
}
