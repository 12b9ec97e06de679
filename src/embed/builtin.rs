//! The built-in, weight-free image descriptor (256 floats, L2-normalised).
//!
//! Four blocks, each normalised on its own so none dominates, then concatenated:
//!
//! | dims | block | what it captures |
//! |---|---|---|
//! | 108 | colour layout: 6×6 grid of mean Y, Cb, Cr | where the colours are |
//! | 72 | edge orientations: 3×3 cells × 8 unsigned orientations, magnitude-weighted | shapes and texture direction |
//! | 40 | colour histogram: 12 hues × 3 saturations + 4 grey levels, square-rooted | the palette, wherever it is |
//! | 36 | low-frequency DCT: 6×6 top-left coefficients of the 32×32 luma | coarse structure |
//!
//! Visually similar images (re-encodes, resizes, small crops, the same scene) land close in
//! cosine distance; unusual images land far from everything.

use image::RgbImage;

use super::dct;

/// Length of the built-in feature vector.
pub const FEATURE_DIM: usize = 256;
/// Side of the colour image the descriptor is computed from.
pub const INPUT_SIDE: u32 = 64;

const LAYOUT: usize = 6;
const CELLS: usize = 3;
const ORIENTATIONS: usize = 8;
const HUES: usize = 12;
const SATURATIONS: usize = 3;
const GREYS: usize = 4;
const DCT_SIDE: usize = 6;

/// Computes the descriptor from a `64 × 64` RGB image and the DCT of its 32×32 luma.
#[must_use]
pub fn describe(rgb: &RgbImage, luma_dct: &[f32; dct::N * dct::N]) -> Vec<f32> {
    assert_eq!(
        rgb.dimensions(),
        (INPUT_SIDE, INPUT_SIDE),
        "descriptor input size"
    );
    let side = INPUT_SIDE as usize;
    let mut layout = vec![0.0_f32; LAYOUT * LAYOUT * 3];
    let mut hist = vec![0.0_f32; HUES * SATURATIONS + GREYS];
    let mut luma = vec![0.0_f32; side * side];
    for (i, pixel) in rgb.pixels().enumerate() {
        let [r, g, b] = pixel.0.map(|c| f32::from(c) / 255.0);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        luma[i] = y;
        let cell = ((i / side) * LAYOUT / side) * LAYOUT + (i % side) * LAYOUT / side;
        layout[cell * 3] += y - 0.5;
        layout[cell * 3 + 1] += (b - y) * 0.564;
        layout[cell * 3 + 2] += (r - y) * 0.713;
        hist[colour_bin(r, g, b)] += 1.0;
    }
    let per_cell = (side * side / (LAYOUT * LAYOUT)) as f32;
    layout.iter_mut().for_each(|v| *v /= per_cell);
    normalise(&mut layout, 1.0);
    hist.iter_mut().for_each(|v| *v = v.sqrt());
    normalise(&mut hist, 1e-6);

    let mut edges = vec![0.0_f32; CELLS * CELLS * ORIENTATIONS];
    for y in 1..side - 1 {
        for x in 1..side - 1 {
            let gx = luma[y * side + x + 1] - luma[y * side + x - 1];
            let gy = luma[(y + 1) * side + x] - luma[(y - 1) * side + x];
            let magnitude = (gx * gx + gy * gy).sqrt();
            if magnitude < 1e-3 {
                continue;
            }
            let angle = gy.atan2(gx).rem_euclid(std::f32::consts::PI);
            let bin = ((angle / std::f32::consts::PI * ORIENTATIONS as f32) as usize)
                .min(ORIENTATIONS - 1);
            let cell = (y * CELLS / side) * CELLS + x * CELLS / side;
            edges[cell * ORIENTATIONS + bin] += magnitude;
        }
    }
    edges.iter_mut().for_each(|v| *v = v.sqrt());
    normalise(&mut edges, 1e-3);

    let mut low = Vec::with_capacity(DCT_SIDE * DCT_SIDE);
    for v in 0..DCT_SIDE {
        for u in 0..DCT_SIDE {
            low.push(luma_dct[v * dct::N + u] / (dct::N * dct::N) as f32);
        }
    }
    normalise(&mut low, 0.05);

    let mut feature = Vec::with_capacity(FEATURE_DIM);
    feature.extend_from_slice(&layout);
    feature.extend_from_slice(&edges);
    feature.extend_from_slice(&hist);
    feature.extend_from_slice(&low);
    debug_assert_eq!(feature.len(), FEATURE_DIM);
    normalise(&mut feature, 1e-6);
    feature
}

/// Divides by the L2 norm, or by `floor` when the norm is smaller (so near-empty blocks stay
/// small instead of amplifying noise).
fn normalise(values: &mut [f32], floor: f32) {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt().max(floor);
    values.iter_mut().for_each(|v| *v /= norm);
}

fn colour_bin(r: f32, g: f32, b: f32) -> usize {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let saturation = if max > 0.0 { (max - min) / max } else { 0.0 };
    if saturation < 0.15 || max < 0.1 {
        return HUES * SATURATIONS + ((max * GREYS as f32) as usize).min(GREYS - 1);
    }
    let delta = max - min;
    let hue = if (max - r).abs() < f32::EPSILON {
        ((g - b) / delta).rem_euclid(6.0)
    } else if (max - g).abs() < f32::EPSILON {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    } / 6.0;
    let hue_bin = ((hue * HUES as f32) as usize).min(HUES - 1);
    let sat_bin = if saturation < 0.4 {
        0
    } else if saturation < 0.7 {
        1
    } else {
        2
    };
    hue_bin * SATURATIONS + sat_bin
}

/// The 32×32 luma block (values in `0..=255`) fed to [`dct::dct2`] and the perceptual hash.
#[must_use]
pub fn luma32(rgb64: &RgbImage) -> [f32; dct::N * dct::N] {
    let mut out = [0.0_f32; dct::N * dct::N];
    let side = INPUT_SIDE as usize;
    for (i, pixel) in rgb64.pixels().enumerate() {
        let [r, g, b] = pixel.0.map(f32::from);
        let (x, y) = (i % side, i / side);
        out[(y / 2) * dct::N + x / 2] += (0.299 * r + 0.587 * g + 0.114 * b) / 4.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature_of(image: &RgbImage) -> Vec<f32> {
        describe(image, &dct::dct2(&luma32(image)))
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn unit_length_and_similarity_order() {
        let gradient = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, 60])
        });
        let brighter = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4 + 10).min(255) as u8, (y * 4 + 10) as u8, 70])
        });
        let other = RgbImage::from_fn(64, 64, |x, y| {
            if (x / 8 + y / 8) % 2 == 0 {
                image::Rgb([255, 255, 0])
            } else {
                image::Rgb([0, 0, 200])
            }
        });
        let (a, b, c) = (
            feature_of(&gradient),
            feature_of(&brighter),
            feature_of(&other),
        );
        assert_eq!(a.len(), FEATURE_DIM);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-4);
        assert!(cosine(&a, &b) > 0.85, "{}", cosine(&a, &b));
        assert!(cosine(&a, &c) < cosine(&a, &b) - 0.2);
        let flat = RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
        assert!(feature_of(&flat).iter().all(|v| v.is_finite()));
    }
}
