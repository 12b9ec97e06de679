//! A JPEG file's encoder settings, and compressing another picture the same way.
//!
//! A copy saved as a small, low-quality JPEG differs from its original by the compression
//! itself: ringing at edges and, with chroma subsampling, colours smeared across thin lines
//! (an icon's outline). Compressing the original with the copy's own quantisation tables
//! and subsampling reproduces those errors, so what is left between the two is what really
//! differs. The tables are read from the file's header (`DQT`, `SOF`); the encoder is the
//! `jpeg-encoder` crate (the `image` crate's own encoder cannot subsample chroma).

use image::RgbImage;
use jpeg_encoder::{
    ChromaSubsamplingMethod, ColorType, Encoder, QuantizationTableType, SamplingFactor,
};

/// Zig-zag order of the coefficients as a `DQT` segment stores them (ITU T.81, A.6).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// How a baseline or progressive JPEG was encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Luma quantisation table, natural (row-major) order.
    pub luma: [u16; 64],
    /// Chroma quantisation table, natural order (`None` for a greyscale file).
    pub chroma: Option<[u16; 64]>,
    /// Horizontal and vertical sampling factors of luma relative to chroma (1 or 2 each).
    pub sampling: (u8, u8),
}

/// Reads the encoder settings from a JPEG file's header; `None` when `bytes` is not a JPEG
/// or its header is not one this can reproduce (arithmetic coding, 12-bit, CMYK, odd
/// sampling, missing tables).
#[must_use]
pub fn settings(bytes: &[u8]) -> Option<Settings> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut tables: [Option<[u16; 64]>; 4] = [None; 4];
    let mut frame_header: Option<&[u8]> = None;
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let body = bytes.get(at + 4..at + 2 + len.max(2))?;
        match marker {
            0xDB => read_tables(body, &mut tables)?,
            // Baseline, extended and progressive Huffman frames.
            0xC0..=0xC2 => frame_header = Some(body),
            // Tables may follow the frame header: they are complete at the first scan.
            0xDA => return frame(frame_header?, &tables),
            // Other frames (lossless, arithmetic, hierarchical).
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            _ => {}
        }
        at += 2 + len;
    }
}

fn read_tables(mut body: &[u8], tables: &mut [Option<[u16; 64]>; 4]) -> Option<()> {
    while let Some((&pq_tq, rest)) = body.split_first() {
        let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 0x0F));
        let wide = match precision {
            0 => false,
            1 => true,
            _ => return None,
        };
        let size = if wide { 128 } else { 64 };
        let values = rest.get(..size)?;
        let mut table = [0_u16; 64];
        for (i, &natural) in ZIGZAG.iter().enumerate() {
            table[natural] = if wide {
                u16::from_be_bytes([values[2 * i], values[2 * i + 1]])
            } else {
                u16::from(values[i])
            };
        }
        if table.contains(&0) {
            return None;
        }
        *tables.get_mut(id)? = Some(table);
        body = &rest[size..];
    }
    Some(())
}

fn frame(body: &[u8], tables: &[Option<[u16; 64]>; 4]) -> Option<Settings> {
    if *body.first()? != 8 {
        return None;
    }
    let count = usize::from(*body.get(5)?);
    let component = |i: usize| -> Option<((u8, u8), [u16; 64])> {
        let c = body.get(6 + 3 * i..9 + 3 * i)?;
        Some(((c[1] >> 4, c[1] & 0x0F), (*tables.get(usize::from(c[2]))?)?))
    };
    match count {
        1 => Some(Settings {
            luma: component(0)?.1,
            chroma: None,
            sampling: (1, 1),
        }),
        3 => {
            let (sampling, luma) = component(0)?;
            let (cb_sampling, chroma) = component(1)?;
            let (cr_sampling, _) = component(2)?;
            let ok = matches!(sampling, (1 | 2, 1 | 2))
                && cb_sampling == (1, 1)
                && cr_sampling == (1, 1);
            ok.then_some(Settings {
                luma,
                chroma: Some(chroma),
                sampling,
            })
        }
        _ => None,
    }
}

/// `image` compressed with `settings` and decoded again; `None` if the encoder refuses
/// (a side beyond 65,535 pixels).
#[must_use]
pub fn recompress(image: &RgbImage, settings: &Settings) -> Option<RgbImage> {
    let (w, h) = (
        u16::try_from(image.width()).ok()?,
        u16::try_from(image.height()).ok()?,
    );
    let mut bytes = Vec::new();
    let mut encoder = Encoder::new(&mut bytes, 100);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    let luma = QuantizationTableType::Custom(Box::new(settings.luma));
    if let Some(chroma) = settings.chroma {
        encoder.set_quantization_tables(luma, QuantizationTableType::Custom(Box::new(chroma)));
        encoder.set_sampling_factor(match settings.sampling {
            (2, 2) => SamplingFactor::R_4_2_0,
            (2, 1) => SamplingFactor::R_4_2_2,
            (1, 2) => SamplingFactor::R_4_4_0,
            _ => SamplingFactor::R_4_4_4,
        });
        encoder.encode(image.as_raw(), w, h, ColorType::Rgb).ok()?;
    } else {
        encoder.set_quantization_tables(luma.clone(), luma);
        let grey: Vec<u8> = image
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0;
                ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
            })
            .collect();
        encoder.encode(&grey, w, h, ColorType::Luma).ok()?;
    }
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .ok()
        .map(|decoded| decoded.to_rgb8())
        .filter(|decoded| decoded.dimensions() == image.dimensions())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;

    fn scene() -> RgbImage {
        RgbImage::from_fn(40, 24, |x, y| {
            image::Rgb([
                (x * 6) as u8,
                (y * 9) as u8,
                if (x / 4 + y / 4) % 2 == 0 { 200 } else { 30 },
            ])
        })
    }

    #[test]
    #[ignore = "a probe for people: CURATE_PROBE=original.png,copy.jpg"]
    fn probe() {
        let paths = std::env::var("CURATE_PROBE").expect("CURATE_PROBE=a,b");
        let (a, b) = paths.split_once(',').expect("two paths");
        let original = crate::dataset::decode::decode(
            &std::fs::read(a).expect("a"),
            crate::dataset::DecodeLimits::default(),
        )
        .expect("decode a");
        let bytes = std::fs::read(b).expect("b");
        let copy = image::load_from_memory(&bytes).expect("decode b").to_rgb8();
        let s = settings(&bytes).expect("settings");
        eprintln!("sampling {:?} luma[0] {}", s.sampling, s.luma[0]);
        let views = original
            .rgba
            .as_ref()
            .map(crate::dataset::decode::flattened);
        for view in std::iter::once(&original.rgb).chain(views.iter().flatten()) {
            let again = recompress(view, &s).expect("recompress");
            let diff: Vec<f32> = again
                .as_raw()
                .iter()
                .zip(copy.as_raw())
                .map(|(&x, &y)| (f32::from(x) - f32::from(y)).abs())
                .collect();
            eprintln!(
                "mean {:.2} max {}",
                diff.iter().sum::<f32>() / diff.len() as f32,
                diff.iter().fold(0.0_f32, |m, &v| m.max(v))
            );
        }
    }

    #[test]
    fn reads_the_tables_the_encoder_wrote() {
        let mut bytes = Vec::new();
        let mut encoder = Encoder::new(&mut bytes, 70);
        encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
        encoder
            .encode(scene().as_raw(), 40, 24, ColorType::Rgb)
            .expect("encode");
        let s = settings(&bytes).expect("settings");
        assert_eq!(s.sampling, (2, 2));
        // Quality 70 of the standard luma table: its first entry 16 × 0.6 → 10.
        assert_eq!(s.luma[0], 10);
        assert!(s.chroma.is_some());
        let again = recompress(&scene(), &s).expect("recompress");
        assert_eq!(again.dimensions(), (40, 24));
    }

    #[test]
    fn reads_the_image_crates_files_and_refuses_other_bytes() {
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&scene())
            .expect("encode");
        assert_eq!(settings(&bytes).expect("settings").sampling, (1, 1));
        assert_eq!(settings(b"not a jpeg"), None);
        assert_eq!(settings(&bytes[..40]), None);
        assert_eq!(settings(&[0xFF, 0xD8, 0xFF]), None);
    }
}
