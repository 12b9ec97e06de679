//! CLIP's image preprocessing, as OpenAI's CLIP and `transformers`' PIL-based
//! `CLIPImageProcessorPil` do it: resize the shortest side with PIL's bicubic filter
//! (antialiased, fixed-point, rounded to 8 bits after each pass, horizontal pass first),
//! crop the centre, scale to `0..1` and normalise per channel. The resize reproduces
//! Pillow's `Resample.c` to the bit.

use image::RgbImage;

use super::config::PreprocessConfig;

/// Fixed-point precision of Pillow's 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: the first input pixel and the fixed-point weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0_i32; out_size * ksize];
    let mut k = vec![0.0_f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let inv = 1.0 / filter_scale;
        // C's (int) cast truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin);
        let mut total = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(count) {
            let w = bicubic((x as f64 + xmin as f64 - center + 0.5) * inv);
            *kx = w;
            total += w;
        }
        for (x, kx) in k.iter().enumerate().take(count) {
            let w = if total == 0.0 { *kx } else { kx / total };
            let fixed = w * f64::from(1_u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, count));
    }
    Coefficients {
        bounds,
        weights,
        ksize,
    }
}

fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((width, height), Image.BICUBIC)` for an RGB image.
#[must_use]
pub fn resize_bicubic(source: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (source.width() as usize, source.height() as usize);
    let (w, h) = (width as usize, height as usize);
    let src = source.as_raw();
    let half = 1_i64 << (PRECISION_BITS - 1);
    // Horizontal pass (only when the width changes), into 8 bits.
    let horizontal: Vec<u8> = if w == sw {
        src.clone()
    } else {
        let c = coefficients(sw, w);
        let mut out = vec![0_u8; w * sh * 3];
        for y in 0..sh {
            let row = &src[y * sw * 3..(y + 1) * sw * 3];
            for (xx, &(xmin, count)) in c.bounds.iter().enumerate() {
                let k = &c.weights[xx * c.ksize..xx * c.ksize + count];
                for ch in 0..3 {
                    let mut sum = half;
                    for (x, &kx) in k.iter().enumerate() {
                        sum += i64::from(row[(xmin + x) * 3 + ch]) * i64::from(kx);
                    }
                    out[(y * w + xx) * 3 + ch] = clip8(sum);
                }
            }
        }
        out
    };
    // Vertical pass.
    let pixels = if h == sh {
        horizontal
    } else {
        let c = coefficients(sh, h);
        let mut out = vec![0_u8; w * h * 3];
        for (yy, &(ymin, count)) in c.bounds.iter().enumerate() {
            let k = &c.weights[yy * c.ksize..yy * c.ksize + count];
            for x in 0..w {
                for ch in 0..3 {
                    let mut sum = half;
                    for (y, &ky) in k.iter().enumerate() {
                        sum += i64::from(horizontal[((ymin + y) * w + x) * 3 + ch]) * i64::from(ky);
                    }
                    out[(yy * w + x) * 3 + ch] = clip8(sum);
                }
            }
        }
        out
    };
    RgbImage::from_raw(width, height, pixels).expect("the buffer has width × height pixels")
}

/// The size the shortest side is resized to (`transformers`' `get_resize_output_image_size`
/// with `default_to_square=False`): `(width, height)`.
#[must_use]
pub fn resized_size(width: u32, height: u32, shortest_edge: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (f64::from(shortest_edge) * f64::from(long) / f64::from(short.max(1))) as u32;
    if width <= height {
        (shortest_edge, new_long.max(1))
    } else {
        (new_long.max(1), shortest_edge)
    }
}

/// Preprocesses one image into `channels × height × width` floats (the model's input).
#[must_use]
pub fn preprocess(image: &RgbImage, config: &PreprocessConfig) -> Vec<f32> {
    let (w, h) = resized_size(image.width(), image.height(), config.shortest_edge);
    let resized = resize_bicubic(image, w, h);
    let [crop_h, crop_w] = config.crop;
    // Centre crop; an image smaller than the crop is padded with zeros around it, as
    // `transformers`' `center_crop` does.
    let top = (i64::from(h) - i64::from(crop_h)).div_euclid(2);
    let left = (i64::from(w) - i64::from(crop_w)).div_euclid(2);
    let plane = (crop_h * crop_w) as usize;
    let mut out = vec![0.0_f32; 3 * plane];
    for y in 0..crop_h {
        for x in 0..crop_w {
            let (sy, sx) = (i64::from(y) + top, i64::from(x) + left);
            let inside = sy >= 0 && sx >= 0 && sy < i64::from(h) && sx < i64::from(w);
            for ch in 0..3 {
                let value = if inside {
                    f32::from(resized.get_pixel(sx as u32, sy as u32)[ch]) * (1.0 / 255.0)
                } else {
                    0.0
                };
                out[ch * plane + (y * crop_w + x) as usize] =
                    (value - config.mean[ch]) / config.std[ch];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_a_copy_and_sizes_follow_the_shortest_side() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9]));
        assert_eq!(resize_bicubic(&img, 7, 5), img);
        assert_eq!(resized_size(640, 480, 224), (298, 224));
        assert_eq!(resized_size(480, 640, 224), (224, 298));
        assert_eq!(resized_size(100, 100, 224), (224, 224));
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 100, 50]));
        let out = resize_bicubic(&img, 11, 64);
        assert!(out.pixels().all(|p| p.0 == [200, 100, 50]));
    }
}
