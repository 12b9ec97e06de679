//! Resizing exactly as Pillow does it, so a copy made with Pillow (the library most
//! dataset scripts resize with) can be made again pixel for pixel and compared with what
//! is on disk: near-duplicate verification then sees what a copy's transform could not
//! have changed (see `pipeline::near`).
//!
//! Written here rather than taken from a crate: general resizers (`image`,
//! `fast_image_resize`) use the same kernels but other rounding, and on a 32-pixel icon
//! that rounding is the whole difference between a copy and a look-alike. What is
//! reproduced is Pillow's `Resample.c` (8-bit path): coefficients normalised in `f64`,
//! quantised to 22-bit fixed point with rounding away from zero, two separable passes with
//! an 8-bit clipped image between them, and, for images with transparency, the colours
//! premultiplied by alpha before and divided by it after (`RGBA` → `RGBa` → `RGBA`).
//! Which pass comes first differs between Pillow versions for some sizes, so the caller
//! chooses ([`Order`]) and may try both. A test compares with Pillow's own output.

use image::RgbImage;

/// Pillow's `PRECISION_BITS` for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A resampling filter of Pillow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `Image.LANCZOS` (three lobes).
    Lanczos,
    /// `Image.BICUBIC` (a = −0.5).
    Bicubic,
    /// `Image.BILINEAR` (a triangle).
    Bilinear,
}

impl Filter {
    /// The kernel's support at scale 1.
    fn support(self) -> f64 {
        match self {
            Self::Lanczos => 3.0,
            Self::Bicubic => 2.0,
            Self::Bilinear => 1.0,
        }
    }

    /// The kernel at `x`.
    fn weight(self, x: f64) -> f64 {
        fn sinc(x: f64) -> f64 {
            if x == 0.0 {
                1.0
            } else {
                let x = x * std::f64::consts::PI;
                x.sin() / x
            }
        }
        match self {
            Self::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
            Self::Bicubic => {
                let a = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
        }
    }
}

/// Which of the two passes runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Rows first (Pillow's `Resample.c` as written).
    HorizontalFirst,
    /// Columns first (what some Pillow builds do when the height shrinks more).
    VerticalFirst,
}

/// The taps of one output sample: the first input index and its fixed-point weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for one axis.
fn taps(in_size: usize, out_size: usize, filter: Filter) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let one = f64::from(1_u32 << PRECISION_BITS);
    (0..out_size)
        .map(|xx| {
            let centre = (xx as f64 + 0.5) * scale;
            // C's (int) truncates toward zero; both values are ≥ -support + 0.5.
            let start = ((centre - support + 0.5) as i64).max(0) as usize;
            let end = ((centre + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (start..end)
                .map(|x| filter.weight((x as f64 - centre + 0.5) / filter_scale))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total == 0.0 { w } else { w / total };
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            Taps { start, weights }
        })
        .collect()
}

/// Half of one in fixed point: where every sum starts (rounding to nearest).
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// A fixed-point sum back to 8 bits (Pillow's `clip8`).
fn clip(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One 8-bit pass along rows (`horizontal`) or columns of a `width × height` image with
/// `channels` (at most four) interleaved channels. Sums in `i32` as Pillow's are; rows of
/// a vertical pass are accumulated whole (contiguous, so the compiler vectorises them).
fn pass(
    data: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    out_len: usize,
    horizontal: bool,
    filter: Filter,
) -> Vec<u8> {
    if horizontal {
        match channels {
            3 => horizontal_pass::<3>(data, (width, height), out_len, filter),
            4 => horizontal_pass::<4>(data, (width, height), out_len, filter),
            2 => horizontal_pass::<2>(data, (width, height), out_len, filter),
            1 => horizontal_pass::<1>(data, (width, height), out_len, filter),
            _ => panic!("1 to 4 channels, not {channels}"),
        }
    } else {
        let taps = taps(height, out_len, filter);
        let row_len = width * channels;
        let mut out = vec![0_u8; row_len * out_len];
        let mut sums = vec![0_i32; row_len];
        for (tap, out_row) in taps.iter().zip(out.chunks_exact_mut(row_len)) {
            sums.fill(HALF);
            for (i, &w) in tap.weights.iter().enumerate() {
                let row = &data[(tap.start + i) * row_len..][..row_len];
                for (sum, &v) in sums.iter_mut().zip(row) {
                    *sum += i32::from(v) * w;
                }
            }
            for (o, &sum) in out_row.iter_mut().zip(&sums) {
                *o = clip(sum);
            }
        }
        out
    }
}

/// The horizontal pass of [`pass`] for `C` interleaved channels.
fn horizontal_pass<const C: usize>(
    data: &[u8],
    (width, height): (usize, usize),
    out_len: usize,
    filter: Filter,
) -> Vec<u8> {
    let taps = taps(width, out_len, filter);
    let mut out = vec![0_u8; out_len * height * C];
    for (row, out_row) in data
        .chunks_exact(width * C)
        .zip(out.chunks_exact_mut(out_len * C))
    {
        for (tap, pixel) in taps.iter().zip(out_row.chunks_exact_mut(C)) {
            let mut sums = [HALF; C];
            let inputs = &row[tap.start * C..(tap.start + tap.weights.len()) * C];
            for (&w, input) in tap.weights.iter().zip(inputs.chunks_exact(C)) {
                for (sum, &v) in sums.iter_mut().zip(input) {
                    *sum += i32::from(v) * w;
                }
            }
            for (o, &sum) in pixel.iter_mut().zip(&sums) {
                *o = clip(sum);
            }
        }
    }
    out
}

/// Resizes interleaved 8-bit data as Pillow's `resize` does (no early return when the
/// size is unchanged: the caller decides that).
fn resize_data(
    data: Vec<u8>,
    (width, height): (u32, u32),
    channels: usize,
    (out_w, out_h): (u32, u32),
    filter: Filter,
    order: Order,
) -> Vec<u8> {
    let (mut data, mut w, mut h) = (data, width as usize, height as usize);
    let (out_w, out_h) = (out_w as usize, out_h as usize);
    let vertical = |data: &mut Vec<u8>, w: usize, h: &mut usize| {
        if *h != out_h {
            *data = pass(data, (w, *h), channels, out_h, false, filter);
            *h = out_h;
        }
    };
    if order == Order::VerticalFirst {
        vertical(&mut data, w, &mut h);
    }
    if w != out_w {
        data = pass(&data, (w, h), channels, out_w, true, filter);
        w = out_w;
    }
    vertical(&mut data, w, &mut h);
    data
}

/// `image` resized to `width × height` as Pillow's `Image.resize(size, filter)` does for
/// an RGB image (the same image back when the size is unchanged).
#[must_use]
pub fn resize(image: &RgbImage, width: u32, height: u32, filter: Filter, order: Order) -> RgbImage {
    if image.dimensions() == (width, height) {
        return image.clone();
    }
    let data = resize_data(
        image.as_raw().clone(),
        image.dimensions(),
        3,
        (width, height),
        filter,
        order,
    );
    RgbImage::from_raw(width, height, data).expect("a buffer of the requested size")
}

/// Pillow's `MULDIV255`: `a · b / 255`, rounded.
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// An image with transparency resized as Pillow's `Image.resize` resizes an `RGBA` image
/// (colours premultiplied by alpha, resized, divided by the resized alpha), then saved
/// without its alpha (`convert("RGB")`): what a copy of a transparent icon resized and
/// written as a JPEG holds. The image back, alpha dropped, when the size is unchanged.
#[must_use]
pub fn resize_alpha_dropped(
    image: &image::RgbaImage,
    width: u32,
    height: u32,
    filter: Filter,
    order: Order,
) -> RgbImage {
    let (w, h) = image.dimensions();
    let dropped = |data: &[u8]| -> Vec<u8> {
        data.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    };
    if (w, h) == (width, height) {
        return RgbImage::from_raw(w, h, dropped(image.as_raw())).expect("same size");
    }
    let resized = resize_data(
        premultiplied(image.as_raw()),
        (w, h),
        4,
        (width, height),
        filter,
        order,
    );
    let data = divided(&resized);
    RgbImage::from_raw(width, height, data).expect("a buffer of the requested size")
}

/// `RGBA` data premultiplied by its alpha (Pillow's `RGBA` → `RGBa`).
fn premultiplied(data: &[u8]) -> Vec<u8> {
    data.chunks_exact(4)
        .flat_map(|p| {
            [
                muldiv255(p[0], p[3]),
                muldiv255(p[1], p[3]),
                muldiv255(p[2], p[3]),
                p[3],
            ]
        })
        .collect()
}

/// Premultiplied `RGBa` data divided by its alpha, alpha dropped: Pillow's `RGBa` →
/// `RGBA` then `convert("RGB")`.
fn divided(resized: &[u8]) -> Vec<u8> {
    resized
        .chunks_exact(4)
        .flat_map(|p| {
            let a = u32::from(p[3]);
            let divide = |c: u8| -> u8 {
                if a == 0 || a == 255 {
                    c
                } else {
                    ((255 * u32::from(c)) / a).min(255) as u8
                }
            };
            [divide(p[0]), divide(p[1]), divide(p[2])]
        })
        .collect()
}

/// Many windows of one image resized to one size as [`resize`] (or, for an image with
/// transparency, [`resize_alpha_dropped`]) resizes each of them cut out, with the first
/// pass of each window shared: a horizontal pass makes each row from that row alone, so
/// the pass over a column range is made once for all rows and each window takes its rows
/// (a vertical pass first: once per row range, each window takes its columns). The same
/// bytes as resizing each window cut out, in a fraction of the time when a search tries
/// windows that differ by a pixel on one edge.
pub struct Windows<'a> {
    /// The image as a pass reads it (premultiplied by alpha when `alpha`).
    data: Vec<u8>,
    /// The image as it is, for windows that keep their size.
    plain: &'a [u8],
    width: usize,
    height: usize,
    channels: usize,
    alpha: bool,
    /// First passes by (horizontal, start, end, output length, filter).
    first: std::cell::RefCell<std::collections::HashMap<FirstPass, std::rc::Rc<Vec<u8>>>>,
}

/// The key of a memoised first pass: horizontal or not, the range along that axis, the
/// output length and the filter.
type FirstPass = (bool, usize, usize, usize, Filter);

impl<'a> Windows<'a> {
    /// Windows of an RGB image.
    #[must_use]
    pub fn rgb(image: &'a RgbImage) -> Self {
        Self::new(image.as_raw(), image.dimensions(), 3, false)
    }

    /// Windows of an image with transparency, resized with it and saved without it (see
    /// [`resize_alpha_dropped`]).
    #[must_use]
    pub fn alpha_dropped(image: &'a image::RgbaImage) -> Self {
        Self::new(image.as_raw(), image.dimensions(), 4, true)
    }

    fn new(plain: &'a [u8], (width, height): (u32, u32), channels: usize, alpha: bool) -> Self {
        let data = if alpha {
            premultiplied(plain)
        } else {
            Vec::new()
        };
        Self {
            data,
            plain,
            width: width as usize,
            height: height as usize,
            channels,
            alpha,
            first: std::cell::RefCell::default(),
        }
    }

    /// What a pass reads.
    fn source(&self) -> &[u8] {
        if self.alpha { &self.data } else { self.plain }
    }

    /// `(x0, y0, width, height)` of `source` (rows of `row_len` pixels) cut out.
    fn cut(
        &self,
        source: &[u8],
        row_len: usize,
        (x0, y0, w, h): (usize, usize, usize, usize),
    ) -> Vec<u8> {
        let c = self.channels;
        let mut out = Vec::with_capacity(w * h * c);
        for y in y0..y0 + h {
            let start = (y * row_len + x0) * c;
            out.extend_from_slice(&source[start..start + w * c]);
        }
        out
    }

    /// Window `(x0, y0, width, height)` (inside the image) resized to `width × height`
    /// with `filter`, passes in `order`.
    ///
    /// # Panics
    /// When the window reaches outside the image.
    #[must_use]
    pub fn resize(
        &self,
        (x0, y0, cw, ch): (u32, u32, u32, u32),
        (out_w, out_h): (u32, u32),
        filter: Filter,
        order: Order,
    ) -> RgbImage {
        let rect = (x0 as usize, y0 as usize, cw as usize, ch as usize);
        let (out_w, out_h) = (out_w as usize, out_h as usize);
        assert!(
            rect.0 + rect.2 <= self.width && rect.1 + rect.3 <= self.height,
            "a window inside the image"
        );
        let c = self.channels;
        if (rect.2, rect.3) == (out_w, out_h) {
            // Nothing resized: the window as it is (the alpha only dropped).
            let window = self.cut(self.plain, self.width, rect);
            let rgb = if self.alpha {
                window
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect()
            } else {
                window
            };
            return RgbImage::from_raw(out_w as u32, out_h as u32, rgb).expect("the window's size");
        }
        let horizontal_first = order == Order::HorizontalFirst;
        // The first pass that changes a size, over the whole other axis, memoised.
        let first = if horizontal_first && rect.2 != out_w {
            Some((true, rect.0, rect.2, out_w))
        } else if !horizontal_first && rect.3 != out_h {
            Some((false, rect.1, rect.3, out_h))
        } else {
            None
        };
        let (data, w, h) = match first {
            Some((horizontal, start, len, out_len)) => {
                let strip = self.first_pass(horizontal, start, len, out_len, filter);
                if horizontal {
                    (
                        self.cut(&strip, out_w, (0, rect.1, out_w, rect.3)),
                        out_w,
                        rect.3,
                    )
                } else {
                    (
                        self.cut(&strip, self.width, (rect.0, 0, rect.2, out_h)),
                        rect.2,
                        out_h,
                    )
                }
            }
            None => (self.cut(self.source(), self.width, rect), rect.2, rect.3),
        };
        // The remaining pass (the first axis already has its size).
        let data = resize_data(
            data,
            (w as u32, h as u32),
            c,
            (out_w as u32, out_h as u32),
            filter,
            order,
        );
        let rgb = if self.alpha { divided(&data) } else { data };
        RgbImage::from_raw(out_w as u32, out_h as u32, rgb).expect("a buffer of the requested size")
    }

    /// The first pass over columns `start..start + len` of all rows (`horizontal`) or rows
    /// `start..start + len` of all columns, to `out_len`: made once.
    fn first_pass(
        &self,
        horizontal: bool,
        start: usize,
        len: usize,
        out_len: usize,
        filter: Filter,
    ) -> std::rc::Rc<Vec<u8>> {
        self.first
            .borrow_mut()
            .entry((horizontal, start, len, out_len, filter))
            .or_insert_with(|| {
                let (rect, size) = if horizontal {
                    ((start, 0, len, self.height), (len, self.height))
                } else {
                    ((0, start, self.width, len), (self.width, len))
                };
                let strip = self.cut(self.source(), self.width, rect);
                std::rc::Rc::new(pass(
                    &strip,
                    size,
                    self.channels,
                    out_len,
                    horizontal,
                    filter,
                ))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 7 × 5 RGB picture with every value distinct enough to show a wrong tap.
    fn picture() -> RgbImage {
        RgbImage::from_fn(7, 5, |x, y| {
            let v = (x * 37 + y * 91) % 256;
            image::Rgb([v as u8, (255 - v) as u8, ((x * y * 53) % 256) as u8])
        })
    }

    /// Pillow 13's output for the picture above, `python3 -c` in the comment of each case
    /// (values checked against Pillow in the evaluation venv).
    #[test]
    fn matches_pillow_on_a_known_picture() {
        // from PIL import Image; import numpy as np
        // a = np.array([[[(x*37+y*91)%256, 255-(x*37+y*91)%256, (x*y*53)%256]
        //      for x in range(7)] for y in range(5)], np.uint8)
        // np.asarray(Image.fromarray(a).resize((4, 3), Image.LANCZOS))[..., 0].tolist()
        let small = resize(&picture(), 4, 3, Filter::Lanczos, Order::HorizontalFirst);
        let red: Vec<u8> = small.pixels().map(|p| p.0[0]).collect();
        assert_eq!(red, PILLOW_LANCZOS_4X3_RED);
        // ... .resize((9, 8), Image.BICUBIC))[..., 2].tolist()
        let large = resize(&picture(), 9, 8, Filter::Bicubic, Order::HorizontalFirst);
        let blue: Vec<u8> = large.pixels().map(|p| p.0[2]).collect();
        assert_eq!(blue, PILLOW_BICUBIC_9X8_BLUE);
    }

    /// The passes written the plain way (one value at a time, `i64` sums): what the fast
    /// passes must equal.
    fn plain_pass(
        data: &[u8],
        (width, height): (usize, usize),
        channels: usize,
        out_len: usize,
        horizontal: bool,
        filter: Filter,
    ) -> Vec<u8> {
        let (in_len, lines) = if horizontal {
            (width, height)
        } else {
            (height, width)
        };
        let taps = taps(in_len, out_len, filter);
        let (out_w, out_h) = if horizontal {
            (out_len, height)
        } else {
            (width, out_len)
        };
        let mut out = vec![0_u8; out_w * out_h * channels];
        for line in 0..lines {
            for (o, tap) in taps.iter().enumerate() {
                for c in 0..channels {
                    let mut sum = 1_i64 << (PRECISION_BITS - 1);
                    for (i, &w) in tap.weights.iter().enumerate() {
                        let (x, y) = if horizontal {
                            (tap.start + i, line)
                        } else {
                            (line, tap.start + i)
                        };
                        sum += i64::from(data[(y * width + x) * channels + c]) * i64::from(w);
                    }
                    let (x, y) = if horizontal { (o, line) } else { (line, o) };
                    out[(y * out_w + x) * channels + c] =
                        (sum >> PRECISION_BITS).clamp(0, 255) as u8;
                }
            }
        }
        out
    }

    #[test]
    fn fast_passes_equal_the_plain_ones() {
        let mut rng = crate::rng::SplitMix64::new(12_345, 0);
        let mut next = move || (rng.next_u64() >> 33) as usize;
        for _ in 0..200 {
            let (width, height, channels) = (1 + next() % 40, 1 + next() % 40, 3 + next() % 2);
            let data: Vec<u8> = (0..width * height * channels)
                .map(|_| next() as u8)
                .collect();
            let filter = [Filter::Lanczos, Filter::Bicubic, Filter::Bilinear][next() % 3];
            let horizontal = next() % 2 == 0;
            let out_len = 1 + next() % 50;
            assert_eq!(
                pass(
                    &data,
                    (width, height),
                    channels,
                    out_len,
                    horizontal,
                    filter
                ),
                plain_pass(
                    &data,
                    (width, height),
                    channels,
                    out_len,
                    horizontal,
                    filter
                ),
                "{width}×{height}×{channels} → {out_len} {filter:?} horizontal {horizontal}"
            );
        }
    }

    #[test]
    fn windows_resize_as_each_window_cut_out() {
        let mut rng = crate::rng::SplitMix64::new(7, 0);
        let mut next = move || (rng.next_u64() >> 33) as u32;
        let rgba = image::RgbaImage::from_fn(23, 17, |_, _| {
            let v = next();
            image::Rgba([
                v as u8,
                (v >> 8) as u8,
                (v >> 16) as u8,
                [0, 90, 255][(v >> 24) as usize % 3],
            ])
        });
        let rgb = image::DynamicImage::ImageRgba8(rgba.clone()).to_rgb8();
        let (plain, transparent) = (Windows::rgb(&rgb), Windows::alpha_dropped(&rgba));
        for _ in 0..300 {
            let (x0, y0) = (next() % 6, next() % 6);
            let (cw, ch) = (2 + next() % (22 - x0), 2 + next() % (16 - y0));
            let out = (1 + next() % 30, 1 + next() % 30);
            let out = if next() % 4 == 0 { (cw, ch) } else { out };
            let filter = [Filter::Lanczos, Filter::Bicubic, Filter::Bilinear][next() as usize % 3];
            let order = [Order::HorizontalFirst, Order::VerticalFirst][next() as usize % 2];
            let rect = (x0, y0, cw, ch);
            let cut_rgb = image::imageops::crop_imm(&rgb, x0, y0, cw, ch).to_image();
            let cut_rgba = image::imageops::crop_imm(&rgba, x0, y0, cw, ch).to_image();
            assert_eq!(
                plain.resize(rect, out, filter, order),
                resize(&cut_rgb, out.0, out.1, filter, order),
                "{rect:?} → {out:?} {filter:?} {order:?}"
            );
            assert_eq!(
                transparent.resize(rect, out, filter, order),
                resize_alpha_dropped(&cut_rgba, out.0, out.1, filter, order),
                "{rect:?} → {out:?} {filter:?} {order:?} with alpha"
            );
        }
    }

    const PILLOW_LANCZOS_4X3_RED: [u8; 12] =
        [56, 125, 165, 124, 147, 82, 119, 134, 77, 152, 104, 131];
    const PILLOW_BICUBIC_9X8_BLUE: [u8; 72] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11, 26, 43, 68, 89, 39, 3, 22, 0, 34, 83, 124, 160, 221, 98,
        13, 69, 0, 53, 149, 183, 82, 181, 90, 31, 109, 0, 79, 158, 165, 101, 153, 73, 50, 149, 0,
        112, 118, 87, 218, 152, 54, 69, 190, 0, 137, 172, 124, 170, 113, 43, 91, 234, 0, 149, 217,
        163, 117, 86, 37, 103, 255,
    ];

    #[test]
    fn transparent_pixels_resized_premultiplied_show_black_and_full_edge_colours() {
        // A red square on transparent pixels that hide green: Pillow weights colours by
        // alpha, so the hidden green never shows and an edge pixel keeps its red.
        let image = image::RgbaImage::from_fn(8, 8, |x, y| {
            if (2..6).contains(&x) && (2..6).contains(&y) {
                image::Rgba([200, 0, 0, 255])
            } else {
                image::Rgba([0, 255, 0, 0])
            }
        });
        let out = resize_alpha_dropped(&image, 5, 5, Filter::Bilinear, Order::HorizontalFirst);
        assert!(
            out.pixels().all(|p| p.0[1] == 0 && p.0[2] == 0),
            "no hidden green"
        );
        // Pillow: np.asarray(im.resize((5, 5), Image.BILINEAR).convert("RGB"))[..., 0]
        let red: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        #[rustfmt::skip]
        let pillow = [
            0, 0, 0, 0, 0,
            0, 200, 199, 200, 0,
            0, 199, 200, 199, 0,
            0, 200, 199, 200, 0,
            0, 0, 0, 0, 0,
        ];
        assert_eq!(red, pillow);
        // Unchanged size: the alpha is only dropped.
        let same = resize_alpha_dropped(&image, 8, 8, Filter::Bilinear, Order::HorizontalFirst);
        assert_eq!(same.get_pixel(0, 0).0, [0, 255, 0]);
    }
}
