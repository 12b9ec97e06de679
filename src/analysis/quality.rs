//! Image quality measures, on par with `CleanVision`'s issue types.
//!
//! Each measure is a continuous score in `0..=1` where **higher means more of the problem**,
//! plus a flag at a documented default threshold:
//!
//! | score | computed from | flagged when | `CleanVision` equivalent |
//! |---|---|---|---|
//! | `dark` | 1 − 99th percentile of perceived brightness | p99 < 0.32 | dark, 0.32 |
//! | `light` | 5th percentile of perceived brightness | p5 > 0.95 | light, 0.05 on 1 − p5 |
//! | `blurry` | 100 / (100 + variance of the Laplacian of the ≤128 px luma) | variance < 100 (score > 0.5) | blurry, 0.29 |
//! | `low_information` | 1 − (entropy of the 256-bin luma histogram, in bits) / 8 | entropy < 2.4 bits (score > 0.7) | low information, 0.3 |
//! | `grayscale` | 1 − mean chroma / 0.05, clamped | mean chroma < 0.01 (score > 0.8) | grayscale |
//! | `odd_size` | distance of √(w·h) from the median over (that + 3 · IQR) | outside Q1 − 3·IQR … Q3 + 3·IQR | odd size, IQR × 3 |
//! | `odd_aspect` | the same on ln(w / h) | likewise | odd aspect ratio |
//!
//! Perceived brightness is √(0.241 R² + 0.691 G² + 0.068 B²) as in `CleanVision`. The IQRs
//! have floors (10 % of the median size, 0.1 in log-aspect) so that a dataset of identical
//! sizes does not flag a one-pixel difference.

use image::RgbImage;

/// Raw per-image measurements; cached, and turned into [`Scores`] with the dataset's context.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measures {
    /// 99th percentile of perceived brightness, `0..=1`.
    pub brightness_p99: f32,
    /// 5th percentile of perceived brightness, `0..=1`.
    pub brightness_p5: f32,
    /// Variance of the 4-neighbour Laplacian of the luma (0–255 scale).
    pub laplacian_var: f32,
    /// Shannon entropy of the luma histogram, bits.
    pub entropy_bits: f32,
    /// Mean of (max − min channel) / 255.
    pub chroma: f32,
    /// Standard deviation of the luma's noise (0–255 scale), by Immerkær's fast estimate
    /// (the mean absolute response to a kernel that cancels ramps) away from edges; taken
    /// at full resolution by the decode pass ([`noise_of`]). Added noise raises it, where
    /// sharpness alone would prefer a noisy copy to its clean original.
    pub noise: f32,
}

/// The names of the quality scores, in report column order.
pub const SCORE_NAMES: [&str; 7] = [
    "dark",
    "light",
    "blurry",
    "low_information",
    "grayscale",
    "odd_size",
    "odd_aspect",
];

/// Quality scores of one image, each in `0..=1`, higher = worse.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    /// Scores in [`SCORE_NAMES`] order.
    pub values: [f32; 7],
    /// Flags at the default thresholds, same order.
    pub flags: [bool; 7],
}

impl Scores {
    /// The score named `name` (one of [`SCORE_NAMES`]).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f32> {
        SCORE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }
}

/// Default flag thresholds on the scores, in [`SCORE_NAMES`] order.
pub const DEFAULT_THRESHOLDS: [f32; 7] = [0.68, 0.95, 0.5, 0.7, 0.8, 0.5, 0.5];

/// Measures an image (the ≤128 px thumbnail in the decode pass).
#[must_use]
pub fn measure(image: &RgbImage) -> Measures {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut brightness_hist = [0_u32; 256];
    let mut luma_hist = [0_u32; 256];
    let mut luma = vec![0.0_f32; w * h];
    let mut chroma_sum = 0_u64;
    for (i, pixel) in image.pixels().enumerate() {
        let [r, g, b] = pixel.0;
        let (rf, gf, bf) = (f32::from(r), f32::from(g), f32::from(b));
        let perceived = (0.241 * rf * rf + 0.691 * gf * gf + 0.068 * bf * bf).sqrt();
        brightness_hist[(perceived as usize).min(255)] += 1;
        let y = 0.299 * rf + 0.587 * gf + 0.114 * bf;
        luma[i] = y;
        luma_hist[(y as usize).min(255)] += 1;
        chroma_sum += u64::from(r.max(g).max(b) - r.min(g).min(b));
    }
    let total = (w * h).max(1) as f32;
    let percentile = |p: f32| {
        let target = (p * total).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (value, count) in brightness_hist.iter().enumerate() {
            seen += count;
            if seen >= target {
                return value as f32 / 255.0;
            }
        }
        1.0
    };
    let entropy_bits = luma_hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / total;
            -p * p.log2()
        })
        .sum();
    Measures {
        brightness_p99: percentile(0.99),
        brightness_p5: percentile(0.05),
        laplacian_var: laplacian_variance(&luma, w, h),
        entropy_bits,
        chroma: chroma_sum as f32 / total / 255.0,
        noise: noise_sigma(&luma, w, h),
    }
}

/// A 3×3 neighbourhood whose luma spans more than this is an edge, left out of the noise
/// estimate (pure noise of σ 3 spans about 10).
const NOISE_EDGE: f32 = 24.0;

/// Immerkær's estimate of the noise σ of `luma` (J. Immerkær, "Fast Noise Variance
/// Estimation", 1996): √(π/2) / 6 · mean |I ∗ N|, with N the 3×3 kernel
/// `[1 −2 1; −2 4 −2; 1 −2 1]`, over the pixels whose neighbourhood is not an edge (all of
/// them when fewer than a sixteenth are).
fn noise_sigma(luma: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut flat, mut flat_n, mut all) = (0.0_f64, 0_usize, 0.0_f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let at = |dx: usize, dy: usize| luma[(y + dy - 1) * w + x + dx - 1];
            let response = (at(0, 0) + at(2, 0) + at(0, 2) + at(2, 2)
                - 2.0 * (at(1, 0) + at(0, 1) + at(2, 1) + at(1, 2))
                + 4.0 * at(1, 1))
            .abs();
            all += f64::from(response);
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for dy in 0..3 {
                for dx in 0..3 {
                    lo = lo.min(at(dx, dy));
                    hi = hi.max(at(dx, dy));
                }
            }
            if hi - lo <= NOISE_EDGE {
                flat += f64::from(response);
                flat_n += 1;
            }
        }
    }
    let n = (w - 2) * (h - 2);
    let mean = if flat_n * 16 >= n {
        flat / flat_n as f64
    } else {
        all / n as f64
    };
    ((std::f64::consts::FRAC_PI_2).sqrt() * mean / 6.0) as f32
}

/// The noise σ of `image` at full resolution (a thumbnail averages noise away): Immerkær's
/// estimate (see [`Measures::noise`]) over its central window of at most 384 pixels a
/// side.
#[must_use]
pub fn noise_of(image: &RgbImage) -> f32 {
    let (w, h) = image.dimensions();
    let (cw, ch) = (w.min(NOISE_WINDOW), h.min(NOISE_WINDOW));
    let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
    let mut luma = Vec::with_capacity((cw * ch) as usize);
    for y in y0..y0 + ch {
        for x in x0..x0 + cw {
            let [r, g, b] = image.get_pixel(x, y).0;
            luma.push(0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b));
        }
    }
    noise_sigma(&luma, cw as usize, ch as usize)
}

/// The side of the window [`noise_of`] reads.
const NOISE_WINDOW: u32 = 384;

fn laplacian_variance(luma: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut sum, mut sum_sq) = (0.0_f64, 0.0_f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let lap = luma[i - 1] + luma[i + 1] + luma[i - w] + luma[i + w] - 4.0 * luma[i];
            sum += f64::from(lap);
            sum_sq += f64::from(lap) * f64::from(lap);
        }
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0) as f32
}

/// Dataset context for the size and aspect scores: robust statistics of all readable images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizeStats {
    size: RobustSpread,
    aspect: RobustSpread,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct RobustSpread {
    q1: f32,
    median: f32,
    q3: f32,
    iqr: f32,
}

impl RobustSpread {
    fn of(mut values: Vec<f32>, iqr_floor: impl Fn(f32) -> f32) -> Self {
        if values.is_empty() {
            return Self {
                q1: 0.0,
                median: 0.0,
                q3: 0.0,
                iqr: 1.0,
            };
        }
        values.sort_by(f32::total_cmp);
        let at = |q: f32| values[((values.len() - 1) as f32 * q).round() as usize];
        let (q1, median, q3) = (at(0.25), at(0.5), at(0.75));
        Self {
            q1,
            median,
            q3,
            iqr: (q3 - q1).max(iqr_floor(median)),
        }
    }

    fn score(&self, value: f32) -> (f32, bool) {
        let distance = (value - self.median).abs();
        let fence = 3.0 * self.iqr;
        let flagged = value < self.q1 - fence || value > self.q3 + fence;
        (distance / (distance + fence), flagged)
    }
}

impl SizeStats {
    /// Statistics of the `(width, height)` of every readable image.
    #[must_use]
    pub fn new(dimensions: &[(u32, u32)]) -> Self {
        let sizes = dimensions.iter().map(|&(w, h)| size_of(w, h)).collect();
        let aspects = dimensions.iter().map(|&(w, h)| aspect_of(w, h)).collect();
        Self {
            size: RobustSpread::of(sizes, |median| 0.1 * median),
            aspect: RobustSpread::of(aspects, |_| 0.1),
        }
    }
}

fn size_of(w: u32, h: u32) -> f32 {
    (f64::from(w) * f64::from(h)).sqrt() as f32
}

fn aspect_of(w: u32, h: u32) -> f32 {
    (f64::from(w.max(1)) / f64::from(h.max(1))).ln() as f32
}

/// Turns measurements into scores and flags.
#[must_use]
pub fn score(measures: &Measures, width: u32, height: u32, stats: &SizeStats) -> Scores {
    let dark = 1.0 - measures.brightness_p99;
    let light = measures.brightness_p5;
    let blurry = 100.0 / (100.0 + measures.laplacian_var);
    let low_information = (1.0 - measures.entropy_bits / 8.0).clamp(0.0, 1.0);
    let grayscale = (1.0 - measures.chroma / 0.05).clamp(0.0, 1.0);
    let (odd_size, size_flag) = stats.size.score(size_of(width, height));
    let (odd_aspect, aspect_flag) = stats.aspect.score(aspect_of(width, height));
    let values = [
        dark,
        light,
        blurry,
        low_information,
        grayscale,
        odd_size,
        odd_aspect,
    ];
    let mut flags = [false; 7];
    for i in 0..5 {
        flags[i] = values[i] > DEFAULT_THRESHOLDS[i];
    }
    flags[5] = size_flag;
    flags[6] = aspect_flag;
    Scores { values, flags }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> SizeStats {
        SizeStats::new(&[(256, 256); 10])
    }

    #[test]
    fn the_noise_estimate_reads_added_noise_not_edges() {
        // Stripes and a disc (edges), then the same with Gaussian noise of σ 3 (a fixed
        // sequence of Box–Muller draws).
        let clean = RgbImage::from_fn(96, 96, |x, y| {
            let inside = (x as i32 - 48).pow(2) + (y as i32 - 48).pow(2) < 30 * 30;
            let v = if inside {
                200
            } else if (x / 12) % 2 == 0 {
                40
            } else {
                120
            };
            image::Rgb([v, v, v])
        });
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1_u64 << 53) as f64
        };
        let mut noisy = clean.clone();
        for pixel in noisy.pixels_mut() {
            let g = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
            let v = (f64::from(pixel.0[0]) + 3.0 * g).round().clamp(0.0, 255.0) as u8;
            pixel.0 = [v, v, v];
        }
        let (a, b) = (noise_of(&clean), noise_of(&noisy));
        assert!(a < 0.5, "edges alone read as σ {a}");
        assert!((2.4..3.6).contains(&b), "σ 3 read as {b}");
        assert!(
            (measure(&noisy).noise - b).abs() < 0.5,
            "the same on a whole picture"
        );
    }

    #[test]
    fn dark_light_flat_and_gray() {
        let black = RgbImage::from_pixel(64, 64, image::Rgb([5, 5, 5]));
        let white = RgbImage::from_pixel(64, 64, image::Rgb([250, 250, 250]));
        let s_black = score(&measure(&black), 256, 256, &stats());
        let s_white = score(&measure(&white), 256, 256, &stats());
        let names = |s: &Scores| {
            SCORE_NAMES
                .iter()
                .zip(s.flags)
                .filter(|(_, f)| *f)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&s_black),
            ["dark", "blurry", "low_information", "grayscale"]
        );
        assert_eq!(
            names(&s_white),
            ["light", "blurry", "low_information", "grayscale"]
        );
    }

    #[test]
    fn busy_colour_image_is_clean() {
        let mut seed = 7_u32;
        let busy = RgbImage::from_fn(128, 128, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let v = seed.to_le_bytes();
            image::Rgb([v[1], v[2], v[3]])
        });
        let s = score(&measure(&busy), 256, 256, &stats());
        assert_eq!(s.flags, [false; 7], "{s:?}");
    }

    #[test]
    fn odd_size_and_aspect() {
        let stats = stats();
        let m = Measures::default();
        assert!(score(&m, 4000, 4000, &stats).flags[5]);
        assert!(!score(&m, 260, 250, &stats).flags[5]);
        assert!(score(&m, 512, 128, &stats).flags[6]);
        assert!(!score(&m, 256, 240, &stats).flags[6]);
    }
}
