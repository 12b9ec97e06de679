//! Safe decoding: format sniffing, a decompression-bomb guard that refuses before allocating,
//! and errors that say what is wrong with the file.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbImage, RgbaImage};

/// Limits applied to every decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Images with more pixels than this are refused from their header, before any pixel
    /// buffer is allocated. Default: 128 megapixels (Pillow warns at 89 MP, errors at 179 MP).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: 128_000_000,
        }
    }
}

/// Why a file could not be analysed. Each becomes a report row with `status = kind()`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("could not read the file: {0}")]
    Unreadable(String),
    /// The file is empty.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The bytes are not an image in a supported format.
    #[error("not an image: {0}")]
    NotAnImage(String),
    /// The header claims more pixels than the limit.
    #[error("refused: {width}×{height} is over the {limit}-pixel limit (decompression bomb?)")]
    TooLarge {
        /// Claimed width.
        width: u32,
        /// Claimed height.
        height: u32,
        /// The limit in force.
        limit: u64,
    },
    /// The data ends early.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The decoder rejected the data.
    #[error("corrupt image data: {0}")]
    Corrupt(String),
    /// The file name is not valid UTF-8, so a keep-list cannot name it.
    #[error("the file name is not valid UTF-8; rename it so a keep-list can name it")]
    NonUtf8Name,
}

impl FileError {
    /// The machine-readable kind, used as the report's `status`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreadable(_) => "unreadable",
            Self::Empty => "empty",
            Self::NotAnImage(_) => "not_an_image",
            Self::TooLarge { .. } => "too_large",
            Self::Truncated(_) => "truncated",
            Self::Corrupt(_) => "corrupt",
            Self::NonUtf8Name => "non_utf8_name",
        }
    }
}

/// The image format of `head` (the first bytes of a file), among those curate decodes.
#[must_use]
pub fn sniff_format(head: &[u8]) -> Option<ImageFormat> {
    let format = image::guess_format(head).ok()?;
    matches!(
        format,
        ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp
            | ImageFormat::Tiff
    )
    .then_some(format)
}

/// Decodes `bytes` to 8-bit RGB (first frame of an animation). Transparent pixels are
/// composited over black: what a transparent icon looks like, whatever colour its
/// invisible pixels happen to store (a circle emoji's hidden corners are often its own
/// colour, which would make it a square), and what saving it without its alpha usually
/// gives.
pub fn decode_rgb(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, FileError> {
    decode(bytes, limits).map(|decoded| decoded.rgb)
}

/// A decoded image.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// What it looks like: transparent pixels composited over black (see [`decode_rgb`]).
    pub rgb: RgbImage,
    /// Its colours and alpha, when some pixel is not fully opaque.
    pub rgba: Option<RgbaImage>,
}

/// Decodes `bytes` like [`decode_rgb`], keeping the alpha of an image with transparent
/// pixels: a copy saved without transparency shows one of its [`flattened`] views.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded, FileError> {
    if bytes.is_empty() {
        return Err(FileError::Empty);
    }
    let Some(format) = sniff_format(bytes) else {
        return Err(FileError::NotAnImage(describe_content(bytes)));
    };
    if let Some(reason) = missing_end(bytes, format) {
        return Err(FileError::Truncated(reason.to_owned()));
    }
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|err| classify(&err, format))?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(FileError::TooLarge {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    // Pixels at up to 16 bytes each (RGBA f32) plus slack for the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16) + (64 << 20));
    reader.limits(decoder_limits);
    let image = reader.decode().map_err(|err| classify(&err, format))?;
    if width == 0 || height == 0 {
        return Err(FileError::Corrupt("the image has no pixels".to_owned()));
    }
    if image.color().has_alpha() {
        let rgba = image.into_rgba8();
        let transparent = rgba.pixels().any(|p| p.0[3] < u8::MAX);
        Ok(Decoded {
            rgb: over_black(&rgba),
            rgba: transparent.then_some(rgba),
        })
    } else {
        Ok(Decoded {
            rgb: image.into_rgb8(),
            rgba: None,
        })
    }
}

/// How scripts commonly flatten a transparent image when they save it without alpha
/// (a JPEG): `[alpha dropped, over white]`. Dropping the alpha (Pillow's
/// `convert("RGB")`) shows whatever colours the invisible pixels hold; pasting on a white
/// background is the other usual way.
#[must_use]
pub fn flattened(image: &RgbaImage) -> [RgbImage; 2] {
    let dropped = RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, _] = image.get_pixel(x, y).0;
        image::Rgb([r, g, b])
    });
    let white = RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        let over =
            |v: u8| ((u16::from(v) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    });
    [dropped, white]
}

/// `image` with its alpha dropped where any coverage remains and black where it is fully
/// transparent: how it looks resized with its transparency and then saved without it
/// (Pillow resizes premultiplied, so fully transparent pixels lose their hidden colours;
/// see [`crate::dataset::pillow::resize_alpha_dropped`], which this is without the resize).
#[must_use]
pub fn alpha_masked(image: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        if a == 0 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([r, g, b])
        }
    })
}

/// `image` composited over black.
fn over_black(image: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        let scale = |v: u8| ((u16::from(v) * u16::from(a) + 127) / 255) as u8;
        image::Rgb([scale(r), scale(g), scale(b)])
    })
}

/// Decoders fill in the missing part of a cut-off JPEG or PNG with grey, or fail with a
/// vague message; the missing end marker says what happened.
fn missing_end(bytes: &[u8], format: ImageFormat) -> Option<&'static str> {
    let tail = &bytes[bytes.len().saturating_sub(512)..];
    match format {
        ImageFormat::Jpeg if !tail.windows(2).any(|pair| pair == [0xFF, 0xD9]) => Some(
            "JPEG data ends before its end-of-image marker (the bottom of the image is missing)",
        ),
        ImageFormat::Png if !tail.windows(4).any(|chunk| chunk == b"IEND") => {
            Some("PNG data ends before its IEND chunk (the file was cut off)")
        }
        _ => None,
    }
}

fn classify(err: &image::ImageError, format: ImageFormat) -> FileError {
    let text = err.to_string();
    let lower = text.to_ascii_lowercase();
    let name = format!("{format:?}").to_ascii_uppercase();
    if lower.contains("eof") || lower.contains("end of file") || lower.contains("truncat") {
        FileError::Truncated(format!("{name}: {text}"))
    } else if matches!(err, image::ImageError::Limits(_)) {
        FileError::TooLarge {
            width: 0,
            height: 0,
            limit: DecodeLimits::default().max_pixels,
        }
    } else {
        FileError::Corrupt(format!("{name}: {text}"))
    }
}

fn describe_content(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(512)];
    if std::str::from_utf8(head).is_ok() || head.iter().all(u8::is_ascii) {
        "the file holds text".to_owned()
    } else {
        "unrecognised binary data".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .expect("encoding to memory works");
        bytes
    }

    #[test]
    fn decodes_supported_formats() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
        ] {
            let image = decode_rgb(&encode(format, 40, 30), DecodeLimits::default())
                .unwrap_or_else(|err| panic!("{format:?}: {err}"));
            assert_eq!(image.dimensions(), (40, 30));
        }
    }

    #[test]
    fn bad_inputs_get_their_kind() {
        let limits = DecodeLimits::default();
        assert_eq!(decode_rgb(&[], limits), Err(FileError::Empty));
        assert_eq!(
            decode_rgb(b"hello, I am text", limits).map_err(|e| e.kind()),
            Err("not_an_image")
        );
        let jpeg = encode(ImageFormat::Jpeg, 64, 64);
        let cut = &jpeg[..jpeg.len() / 2];
        assert_eq!(
            decode_rgb(cut, limits).map_err(|e| e.kind()),
            Err("truncated")
        );
        let png = encode(ImageFormat::Png, 64, 64);
        let small = DecodeLimits { max_pixels: 1000 };
        assert_eq!(
            decode_rgb(&png, small).map_err(|e| e.kind()),
            Err("too_large")
        );
    }
}
