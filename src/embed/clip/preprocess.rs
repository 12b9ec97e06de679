//! CLIP's image preprocessing, as OpenAI's CLIP and `transformers`' PIL-based
//! `CLIPImageProcessorPil` do it: resize the shortest side with PIL's bicubic filter
//! (antialiased, fixed-point, rounded to 8 bits after each pass, horizontal pass first),
//! crop the centre, scale to `0..1` and normalise per channel. The resize reproduces
//! Pillow's `Resample.c` to the bit.

use image::RgbImage;

use super::config::PreprocessConfig;

/// Pillow's `Image.resize((width, height), Image.BICUBIC)` for an RGB image (see
/// [`crate::dataset::pillow`], which near-duplicate verification uses too).
#[must_use]
pub fn resize_bicubic(source: &RgbImage, width: u32, height: u32) -> RgbImage {
    use crate::dataset::pillow::{Filter, Order, resize};
    resize(
        source,
        width,
        height,
        Filter::Bicubic,
        Order::HorizontalFirst,
    )
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
