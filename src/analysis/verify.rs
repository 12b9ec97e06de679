//! Verifying near-duplicate candidates on the pixels themselves.
//!
//! Hashes and features only *propose* pairs: a 64-bit luma pHash cannot tell a red heart
//! from a blue one, or a man from a woman version of one icon, and feature similarity
//! cannot tell two flags of one design apart. Every proposed pair is therefore compared on
//! small colour pictures of the two images (from the cached thumbnails):
//!
//! 1. **Shape**: copies keep the aspect ratio (re-encodes, downscales, crops resized back);
//!    pairs whose aspect ratios differ are rejected at once.
//! 2. **Alignment**: a crop of up to 8 % per border, resized back, scales and shifts the
//!    content. The scale and shift of each axis are found by matching the two pictures'
//!    colour profiles along that axis (coarse to fine), and the identity is always tried.
//! 3. **Photometry**: one gain and offset shared by the three channels absorb brightness
//!    changes; a per-channel fit would absorb colour variants, so there is none.
//! 4. **Difference**: per pixel, the colour distance to the best match within one pixel
//!    (both ways, so a detail present in only one image counts), averaged over blocks of
//!    the picture. The *largest block* decides: a copy differs by noise and compression
//!    everywhere, a look-alike differs a lot somewhere (a hand of a clock, the hair of a
//!    figure, the emblem of a flag, a word of a template).
//!
//! Near-blank pictures carry nothing to verify: two of them are never called copies unless
//! their bytes are identical (the exact-duplicate path), so a run of blank frames stays a
//! cluster of outliers rather than a group of which all but one are dropped.

use image::RgbImage;

use crate::dataset::resample::{fit_within, resize_area};

/// Names the verifier's rules: cached verdicts made under other rules are discarded.
pub const VERSION: &str = "pixels-v1-48-6";

/// Longest side of a [`Picture`] in pixels.
pub const PICTURE_SIDE: u32 = 48;

/// Largest block difference (mean RGB distance in a block, 0–441) of a verified copy.
pub const DEFAULT_MAX_DIFFERENCE: f32 = 18.0;

/// Largest mean difference over the whole overlap of a verified copy.
const MAX_MEAN_DIFFERENCE: f32 = 9.0;

/// Pictures whose luma standard deviation is below this are near-blank (see the module
/// documentation).
const BLANK_SPREAD: f32 = 3.0;

/// Largest |ln(aspect a / aspect b)| of a copy, plus one pixel's worth of rounding.
const MAX_LOG_ASPECT: f32 = 0.05;

/// Relative scales searched per axis: a crop of 8 % per border of either image.
const SCALE_RANGE: (f32, f32) = (0.80, 1.25);

/// Shifts searched per axis, in units of the picture side.
const SHIFT_RANGE: f32 = 0.20;

/// Smallest share of one picture the aligned other must cover.
const MIN_OVERLAP: f32 = 0.70;

/// Blocks per side of the block grid the difference is averaged over.
const BLOCKS: usize = 6;

/// A small colour picture of an image: what verification compares.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    width: usize,
    height: usize,
    /// Row-major RGB.
    rgb: Vec<u8>,
    /// Width / height of the original image.
    aspect: f32,
    /// Standard deviation of luma over the picture.
    spread: f32,
}

impl Picture {
    /// The picture of an image whose thumbnail (or any downscaled copy) is `image` and
    /// whose original size is `width × height`.
    #[must_use]
    pub fn new(image: &RgbImage, width: u32, height: u32) -> Self {
        let (w, h) = fit_within(image.width(), image.height(), PICTURE_SIDE);
        let small = resize_area(image, w.max(1), h.max(1));
        let rgb = small.into_raw();
        let luma: Vec<f32> = rgb
            .chunks_exact(3)
            .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
            .collect();
        let mean = luma.iter().sum::<f32>() / luma.len().max(1) as f32;
        let spread =
            (luma.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / luma.len().max(1) as f32).sqrt();
        Self {
            width: w.max(1) as usize,
            height: h.max(1) as usize,
            rgb,
            aspect: width.max(1) as f32 / height.max(1) as f32,
            spread,
        }
    }

    /// Whether the picture is near-blank (nothing to verify on).
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.spread < BLANK_SPREAD
    }
}

/// The outcome of comparing two pictures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// The largest block difference after alignment (0–441; lower = more alike);
    /// `f32::INFINITY` when the pair was rejected before any pixel was compared (other
    /// shape, blank pictures).
    pub difference: f32,
    /// The mean difference over the overlap.
    pub mean: f32,
}

impl Comparison {
    /// A pair rejected before any pixel was compared.
    pub const REJECTED: Self = Self {
        difference: f32::INFINITY,
        mean: f32::INFINITY,
    };

    /// Whether this is a copy under the block threshold `max_difference`.
    #[must_use]
    pub fn is_copy(&self, max_difference: f32) -> bool {
        self.difference <= max_difference && self.mean <= MAX_MEAN_DIFFERENCE
    }
}

/// Compares two pictures (symmetric up to floating-point rounding).
#[must_use]
pub fn compare(a: &Picture, b: &Picture) -> Comparison {
    let max_log_aspect =
        MAX_LOG_ASPECT + 1.0 / a.width.min(a.height).min(b.width).min(b.height).max(1) as f32;
    if (a.aspect / b.aspect).ln().abs() > max_log_aspect || a.is_blank() || b.is_blank() {
        return Comparison::REJECTED;
    }
    let side = a.width.min(a.height).min(b.width).min(b.height).max(4);
    let sa = square(a, side);
    let sb = square(b, side);
    let mut best = evaluate(&sa, &sb, side, Warp::IDENTITY);
    if best.difference <= DEFAULT_MAX_DIFFERENCE * 0.5 {
        return best;
    }
    let x = align_axis(&profile(&sa, side, Axis::X), &profile(&sb, side, Axis::X));
    let y = align_axis(&profile(&sa, side, Axis::Y), &profile(&sb, side, Axis::Y));
    let warp = Warp { x, y };
    if warp != Warp::IDENTITY {
        let aligned = evaluate(&sa, &sb, side, warp);
        if aligned.difference < best.difference {
            best = aligned;
        }
    }
    best
}

/// Per axis, the map from the second picture's coordinates to the first's:
/// `u_a = scale · u_b + shift`, with `u` in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Warp {
    x: (f32, f32),
    y: (f32, f32),
}

impl Warp {
    const IDENTITY: Self = Self {
        x: (1.0, 0.0),
        y: (1.0, 0.0),
    };
}

#[derive(Clone, Copy)]
enum Axis {
    X,
    Y,
}

/// `picture` resampled to `side × side` (area average with fractional coverage).
fn square(picture: &Picture, side: usize) -> Vec<f32> {
    let wx = weights(picture.width, side);
    let wy = weights(picture.height, side);
    // Columns first, then rows.
    let mut rows = vec![0.0_f32; picture.height * side * 3];
    for y in 0..picture.height {
        let src = &picture.rgb[y * picture.width * 3..(y + 1) * picture.width * 3];
        for (tx, taps) in wx.iter().enumerate() {
            let mut acc = [0.0_f32; 3];
            for &(sx, w) in taps {
                for c in 0..3 {
                    acc[c] += w * f32::from(src[sx * 3 + c]);
                }
            }
            rows[(y * side + tx) * 3..(y * side + tx) * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = vec![0.0_f32; side * side * 3];
    for (ty, taps) in wy.iter().enumerate() {
        for tx in 0..side {
            let mut acc = [0.0_f32; 3];
            for &(sy, w) in taps {
                for c in 0..3 {
                    acc[c] += w * rows[(sy * side + tx) * 3 + c];
                }
            }
            out[(ty * side + tx) * 3..(ty * side + tx) * 3 + 3].copy_from_slice(&acc);
        }
    }
    out
}

/// Box-filter taps from `from` samples to `to` samples (normalised per target sample).
fn weights(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
    let ratio = from as f32 / to as f32;
    (0..to)
        .map(|t| {
            if ratio <= 1.0 {
                // Enlarging: linear interpolation.
                let pos = ((t as f32 + 0.5) * ratio - 0.5).clamp(0.0, (from - 1) as f32);
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(from - 1);
                let f = pos - lo as f32;
                return vec![(lo, 1.0 - f), (hi, f)];
            }
            let (start, end) = (t as f32 * ratio, (t as f32 + 1.0) * ratio);
            let mut taps = Vec::new();
            let mut s = start.floor() as usize;
            while (s as f32) < end && s < from {
                let cover = (end.min(s as f32 + 1.0) - start.max(s as f32)).max(0.0);
                if cover > 0.0 {
                    taps.push((s, cover / ratio));
                }
                s += 1;
            }
            taps
        })
        .collect()
}

/// Mean colour along `axis` (one RGB triple per column for `X`, per row for `Y`), divided
/// by the picture's mean level so brightness changes do not move the match.
fn profile(square: &[f32], side: usize, axis: Axis) -> Vec<[f32; 3]> {
    let mut out = vec![[0.0_f32; 3]; side];
    for y in 0..side {
        for x in 0..side {
            let i = match axis {
                Axis::X => x,
                Axis::Y => y,
            };
            let p = &square[(y * side + x) * 3..(y * side + x) * 3 + 3];
            for c in 0..3 {
                out[i][c] += p[c];
            }
        }
    }
    let level = out.iter().flatten().sum::<f32>() / (side * side * 3) as f32 + 8.0;
    let norm = 1.0 / (side as f32 * level);
    for v in out.iter_mut().flatten() {
        *v *= norm;
    }
    out
}

/// The scale and shift that best map profile `b` onto profile `a` (least squares over the
/// overlap), searched coarse to fine.
fn align_axis(a: &[[f32; 3]], b: &[[f32; 3]]) -> (f32, f32) {
    let side = a.len() as f32;
    let cost = |scale: f32, shift: f32| -> f32 {
        let mut sum = 0.0;
        let mut count = 0_usize;
        for (j, pb) in b.iter().enumerate() {
            let pos = (scale * ((j as f32 + 0.5) / side) + shift) * side - 0.5;
            if !(-0.5..=side - 0.5).contains(&pos) {
                continue;
            }
            let pos = pos.clamp(0.0, side - 1.0);
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(a.len() - 1);
            let f = pos - lo as f32;
            for c in 0..3 {
                let va = a[lo][c] * (1.0 - f) + a[hi][c] * f;
                sum += (va - pb[c]).powi(2);
            }
            count += 1;
        }
        if (count as f32) < MIN_OVERLAP * side {
            f32::INFINITY
        } else {
            sum / count as f32
        }
    };
    let mut best = (cost(1.0, 0.0), 1.0, 0.0);
    let search = |scales: &[f32], shifts: &[f32], best: &mut (f32, f32, f32)| {
        for &scale in scales {
            for &shift in shifts {
                let c = cost(scale, shift);
                if c < best.0 {
                    *best = (c, scale, shift);
                }
            }
        }
    };
    let coarse_scale = 0.05;
    let coarse_shift = 2.0 / side;
    let scales: Vec<f32> = steps(SCALE_RANGE.0, SCALE_RANGE.1, coarse_scale);
    let shifts: Vec<f32> = steps(-SHIFT_RANGE, SHIFT_RANGE, coarse_shift);
    search(&scales, &shifts, &mut best);
    let (_, scale, shift) = best;
    let fine_scales = steps(scale - coarse_scale, scale + coarse_scale, coarse_scale / 4.0);
    let fine_shifts = steps(shift - coarse_shift, shift + coarse_shift, coarse_shift / 4.0);
    search(&fine_scales, &fine_shifts, &mut best);
    (best.1, best.2)
}

fn steps(from: f32, to: f32, step: f32) -> Vec<f32> {
    let n = ((to - from) / step).round() as usize;
    (0..=n).map(|i| from + i as f32 * step).collect()
}

/// The block and mean differences of `b` against `a` warped onto `b`'s grid.
fn evaluate(a: &[f32], b: &[f32], side: usize, warp: Warp) -> Comparison {
    let n = side * side;
    let sidef = side as f32;
    let map = |(scale, shift): (f32, f32), j: usize| -> Option<f32> {
        let pos = (scale * ((j as f32 + 0.5) / sidef) + shift) * sidef - 0.5;
        (-0.5..=sidef - 0.5)
            .contains(&pos)
            .then(|| pos.clamp(0.0, sidef - 1.0))
    };
    let xs: Vec<Option<f32>> = (0..side).map(|j| map(warp.x, j)).collect();
    let ys: Vec<Option<f32>> = (0..side).map(|i| map(warp.y, i)).collect();
    let mut warped = vec![0.0_f32; n * 3];
    let mut valid = vec![false; n];
    for (i, y) in ys.iter().enumerate() {
        let Some(y) = *y else { continue };
        let (y0, fy) = (y.floor() as usize, y - y.floor());
        let y1 = (y0 + 1).min(side - 1);
        for (j, x) in xs.iter().enumerate() {
            let Some(x) = *x else { continue };
            let (x0, fx) = (x.floor() as usize, x - x.floor());
            let x1 = (x0 + 1).min(side - 1);
            for c in 0..3 {
                let at = |yy: usize, xx: usize| a[(yy * side + xx) * 3 + c];
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                warped[(i * side + j) * 3 + c] = top * (1.0 - fy) + bottom * fy;
            }
            valid[i * side + j] = true;
        }
    }
    let count = valid.iter().filter(|&&v| v).count();
    if (count as f32) < MIN_OVERLAP * n as f32 {
        return Comparison::REJECTED;
    }
    // One gain and offset for all channels (brightness), least squares, bounded.
    let (mut sa, mut sb, mut saa, mut sab) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    for p in (0..n).filter(|&p| valid[p]) {
        for c in 0..3 {
            let (va, vb) = (f64::from(warped[p * 3 + c]), f64::from(b[p * 3 + c]));
            sa += va;
            sb += vb;
            saa += va * va;
            sab += va * vb;
        }
    }
    let m = (count * 3) as f64;
    let var = saa / m - (sa / m).powi(2);
    let cov = sab / m - (sa / m) * (sb / m);
    let gain = if var > 1e-6 { cov / var } else { 1.0 }.clamp(0.82, 1.22);
    let offset = (sb / m - gain * sa / m).clamp(-24.0, 24.0);
    let (gain, offset) = (gain as f32, offset as f32);
    for v in &mut warped {
        *v = *v * gain + offset;
    }
    // Per pixel: distance to the best match within one pixel, both ways.
    let distance = |x: &[f32], p: usize, y: &[f32], q: usize| -> f32 {
        let (dr, dg, db) = (
            x[p * 3] - y[q * 3],
            x[p * 3 + 1] - y[q * 3 + 1],
            x[p * 3 + 2] - y[q * 3 + 2],
        );
        (dr * dr + dg * dg + db * db).sqrt()
    };
    let block = side.div_ceil(BLOCKS);
    let blocks_per_side = side.div_ceil(block);
    let mut block_sum = vec![0.0_f32; blocks_per_side * blocks_per_side];
    let mut block_count = vec![0_u32; blocks_per_side * blocks_per_side];
    let mut total = 0.0_f32;
    for i in 0..side {
        for j in 0..side {
            let p = i * side + j;
            if !valid[p] {
                continue;
            }
            let (mut forward, mut backward) = (f32::INFINITY, f32::INFINITY);
            for qi in i.saturating_sub(1)..=(i + 1).min(side - 1) {
                for qj in j.saturating_sub(1)..=(j + 1).min(side - 1) {
                    let q = qi * side + qj;
                    if valid[q] {
                        forward = forward.min(distance(b, p, &warped, q));
                        backward = backward.min(distance(&warped, p, b, q));
                    }
                }
            }
            let e = forward.max(backward);
            total += e;
            let k = (i / block) * blocks_per_side + j / block;
            block_sum[k] += e;
            block_count[k] += 1;
        }
    }
    let least = (block * block / 2) as u32;
    let difference = block_sum
        .iter()
        .zip(&block_count)
        .filter(|&(_, &c)| c >= least.max(1))
        .map(|(&s, &c)| s / c as f32)
        .fold(0.0_f32, f32::max);
    Comparison {
        difference,
        mean: total / count as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A picture with a few shapes: a disc, a bar and a gradient background.
    fn scene(size: u32, disc: [u8; 3], bar_at: f32) -> RgbImage {
        RgbImage::from_fn(size, size, |x, y| {
            let (u, v) = (x as f32 / size as f32, y as f32 / size as f32);
            if (u - 0.4).powi(2) + (v - 0.45).powi(2) < 0.06 {
                Rgb(disc)
            } else if (v - bar_at).abs() < 0.05 && u > 0.15 && u < 0.85 {
                Rgb([20, 20, 20])
            } else {
                Rgb([(200.0 * u) as u8 + 30, 180, (150.0 * v) as u8 + 60])
            }
        })
    }

    fn crop_back(image: &RgbImage, left: f32, top: f32, right: f32, bottom: f32) -> RgbImage {
        let (w, h) = image.dimensions();
        let x0 = (left * w as f32) as u32;
        let y0 = (top * h as f32) as u32;
        let x1 = w - (right * w as f32) as u32;
        let y1 = h - (bottom * h as f32) as u32;
        let cropped = image::imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
        image::imageops::resize(&cropped, w, h, image::imageops::FilterType::Triangle)
    }

    fn pic(image: &RgbImage) -> Picture {
        Picture::new(image, image.width(), image.height())
    }

    #[test]
    fn a_crop_resized_back_is_a_copy() {
        let original = scene(128, [220, 40, 40], 0.8);
        let copy = crop_back(&original, 0.08, 0.02, 0.0, 0.07);
        let c = compare(&pic(&original), &pic(&copy));
        assert!(c.is_copy(DEFAULT_MAX_DIFFERENCE), "{c:?}");
    }

    #[test]
    fn a_colour_variant_is_not_a_copy() {
        let red = scene(128, [220, 40, 40], 0.8);
        let blue = scene(128, [40, 60, 220], 0.8);
        let c = compare(&pic(&red), &pic(&blue));
        assert!(!c.is_copy(DEFAULT_MAX_DIFFERENCE), "{c:?}");
    }

    #[test]
    fn a_moved_detail_is_not_a_copy() {
        let a = scene(128, [220, 40, 40], 0.8);
        let b = scene(128, [220, 40, 40], 0.62);
        let c = compare(&pic(&a), &pic(&b));
        assert!(!c.is_copy(DEFAULT_MAX_DIFFERENCE), "{c:?}");
    }

    #[test]
    fn blank_frames_are_never_copies() {
        let a = RgbImage::from_pixel(64, 64, Rgb([10, 10, 10]));
        let b = RgbImage::from_pixel(64, 64, Rgb([11, 10, 10]));
        assert!(!compare(&pic(&a), &pic(&b)).is_copy(DEFAULT_MAX_DIFFERENCE));
    }

    #[test]
    fn other_shapes_are_rejected_before_pixels() {
        let a = scene(128, [220, 40, 40], 0.8);
        let b = image::imageops::resize(&a, 128, 90, image::imageops::FilterType::Triangle);
        assert_eq!(compare(&pic(&a), &pic(&b)).difference, f32::INFINITY);
    }
}
