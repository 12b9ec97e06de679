//! Fast area-average resampling of 8-bit RGB images.
//!
//! Every source pixel is added to the target pixel it falls in (box filter), which is exact
//! for integer factors, close to it otherwise, and one pass over the source: the decode pass
//! uses it for the working image, the thumbnail and the small grids behind hashes and
//! features.

use image::RgbImage;

/// Resamples `source` to `width × height`. Shrinking averages; enlarging repeats pixels.
#[must_use]
pub fn resize_area(source: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (src_w, src_h) = source.dimensions();
    if (src_w, src_h) == (width, height) {
        return source.clone();
    }
    let (shrunk_w, shrunk_h) = (width.min(src_w), height.min(src_h));
    let shrunk = shrink(source, shrunk_w, shrunk_h);
    if (shrunk_w, shrunk_h) == (width, height) {
        return shrunk;
    }
    RgbImage::from_fn(width, height, |x, y| {
        let sx = (u64::from(x) * u64::from(shrunk_w) / u64::from(width)) as u32;
        let sy = (u64::from(y) * u64::from(shrunk_h) / u64::from(height)) as u32;
        *shrunk.get_pixel(sx, sy)
    })
}

/// Dimensions that fit inside `max_side × max_side`, keeping the aspect ratio and never
/// enlarging.
#[must_use]
pub fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(longest);
    (
        ((f64::from(width) * scale).round() as u32).clamp(1, max_side),
        ((f64::from(height) * scale).round() as u32).clamp(1, max_side),
    )
}

fn shrink(source: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (src_w, src_h) = source.dimensions();
    if (src_w, src_h) == (width, height) {
        return source.clone();
    }
    let (w, h) = (width as usize, height as usize);
    let bin_of_x: Vec<usize> = (0..src_w as usize)
        .map(|x| x * w / src_w as usize)
        .collect();
    let mut count_x = vec![0_u32; w];
    for &bin in &bin_of_x {
        count_x[bin] += 1;
    }
    let mut sums = vec![0_u32; w * h * 3];
    let mut count_y = vec![0_u32; h];
    let raw = source.as_raw();
    let stride = src_w as usize * 3;
    for y in 0..src_h as usize {
        let ty = y * h / src_h as usize;
        count_y[ty] += 1;
        let row = &raw[y * stride..(y + 1) * stride];
        let out = &mut sums[ty * w * 3..(ty + 1) * w * 3];
        for (x, pixel) in row.chunks_exact(3).enumerate() {
            let o = bin_of_x[x] * 3;
            out[o] += u32::from(pixel[0]);
            out[o + 1] += u32::from(pixel[1]);
            out[o + 2] += u32::from(pixel[2]);
        }
    }
    let mut data = vec![0_u8; w * h * 3];
    for (ty, &rows) in count_y.iter().enumerate() {
        for (tx, &columns) in count_x.iter().enumerate() {
            let count = columns * rows;
            let half = count / 2;
            for c in 0..3 {
                let i = (ty * w + tx) * 3 + c;
                data[i] = ((sums[i] + half) / count.max(1)) as u8;
            }
        }
    }
    RgbImage::from_raw(width, height, data).expect("buffer has width × height × 3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_blocks() {
        let source = RgbImage::from_fn(4, 2, |x, _| image::Rgb([(x * 10) as u8, 0, 255]));
        let half = resize_area(&source, 2, 1);
        assert_eq!(half.get_pixel(0, 0).0, [5, 0, 255]);
        assert_eq!(half.get_pixel(1, 0).0, [25, 0, 255]);
    }

    #[test]
    fn enlarging_repeats() {
        let source = RgbImage::from_fn(1, 1, |_, _| image::Rgb([1, 2, 3]));
        let big = resize_area(&source, 3, 2);
        assert!(big.pixels().all(|p| p.0 == [1, 2, 3]));
    }

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit_within(1000, 500, 128), (128, 64));
        assert_eq!(fit_within(50, 40, 128), (50, 40));
    }
}
