//! The built-in sample dataset: generated scenes in ten themes, with planted exact copies,
//! near copies (JPEG re-encode, resize, small crop, brightness shift, mild noise), outliers,
//! caption sidecars and manifests, and a handful of bad files. Deterministic: the same
//! arguments write the same bytes. The ground truth goes to `DIR/demo-truth.json`, and
//! `pipeline::demo_score` scores a report against it.

use std::fs;
use std::io::{self, Cursor};
use std::path::Path;

use image::{ImageFormat, RgbImage};
use rayon::prelude::*;

/// Default number of distinct scenes (about 2,900 files in all).
pub const DEFAULT_SCENES: usize = 2400;
/// Name of the ground-truth file written next to the data.
pub const TRUTH_FILE: &str = "demo-truth.json";

const THEMES: [&str; 10] = [
    "sunset", "ocean", "forest", "city", "desert", "snow", "flowers", "night", "stripes", "bokeh",
];

/// What was planted.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Truth {
    /// Every generated image that is not a bad file, relative paths.
    pub images: Vec<String>,
    /// Families: an original and all its copies (exact and near). Every pair inside a family
    /// is a true duplicate pair.
    pub families: Vec<Family>,
    /// Look-alike sets: distinct images made to look like each other (a colour variant, one
    /// detail changed). No two members of a set are duplicates.
    #[serde(default)]
    pub lookalikes: Vec<Vec<String>>,
    /// Planted outliers.
    pub outliers: Vec<String>,
    /// Bad files: (lossy relative path, expected status).
    pub bad: Vec<(String, String)>,
}

/// One original and its copies.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Family {
    /// The original.
    pub original: String,
    /// Byte-identical copies.
    pub exact: Vec<String>,
    /// Near copies with how they were made.
    pub near: Vec<(String, String)>,
}

impl Family {
    /// All members.
    #[must_use]
    pub fn members(&self) -> Vec<&str> {
        std::iter::once(self.original.as_str())
            .chain(self.exact.iter().map(String::as_str))
            .chain(self.near.iter().map(|(p, _)| p.as_str()))
            .collect()
    }
}

use crate::rng::SplitMix64 as Rng;

/// `colour` with each channel moved by up to `amount`, kept in `0..=1`.
fn jitter(rng: &mut Rng, colour: [f32; 3], amount: f32) -> [f32; 3] {
    colour.map(|c| (c + rng.range(-amount, amount)).clamp(0.0, 1.0))
}

/// A float RGB canvas with a few antialiased primitives.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[f32; 3]>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            px: vec![[0.0; 3]; w * h],
        }
    }
    fn blend(&mut self, x: usize, y: usize, colour: [f32; 3], alpha: f32) {
        let p = &mut self.px[y * self.w + x];
        for c in 0..3 {
            p[c] += (colour[c] - p[c]) * alpha;
        }
    }
    fn gradient(&mut self, top: [f32; 3], bottom: [f32; 3], angle: f32) {
        let (s, c) = angle.sin_cos();
        for y in 0..self.h {
            for x in 0..self.w {
                let u = (x as f32 / self.w as f32 - 0.5) * s
                    + (y as f32 / self.h as f32 - 0.5) * c
                    + 0.5;
                let t = u.clamp(0.0, 1.0);
                self.px[y * self.w + x] =
                    std::array::from_fn(|i| top[i] + (bottom[i] - top[i]) * t);
            }
        }
    }
    /// Fills where `coverage(x, y)` (0..1) is positive, within a bounding box.
    fn shape(&mut self, bbox: [f32; 4], colour: [f32; 3], coverage: impl Fn(f32, f32) -> f32) {
        let x0 = bbox[0].floor().max(0.0) as usize;
        let y0 = bbox[1].floor().max(0.0) as usize;
        let x1 = (bbox[2].ceil().max(0.0) as usize).min(self.w);
        let y1 = (bbox[3].ceil().max(0.0) as usize).min(self.h);
        for y in y0..y1 {
            for x in x0..x1 {
                let a = coverage(x as f32 + 0.5, y as f32 + 0.5);
                if a > 0.0 {
                    self.blend(x, y, colour, a.min(1.0));
                }
            }
        }
    }
    fn circle(&mut self, cx: f32, cy: f32, r: f32, colour: [f32; 3], softness: f32) {
        let soft = softness.max(1.0);
        self.shape(
            [cx - r - soft, cy - r - soft, cx + r + soft, cy + r + soft],
            colour,
            |x, y| {
                ((r - ((x - cx).powi(2) + (y - cy).powi(2)).sqrt()) / soft + 0.5).clamp(0.0, 1.0)
            },
        );
    }
    fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: [f32; 3]) {
        self.shape([x0, y0, x1, y1], colour, |x, y| {
            let inside_x = (x - x0 + 0.5).min(x1 - x + 0.5).clamp(0.0, 1.0);
            let inside_y = (y - y0 + 0.5).min(y1 - y + 0.5).clamp(0.0, 1.0);
            inside_x * inside_y
        });
    }
    fn triangle(&mut self, apex: (f32, f32), half_base: f32, height: f32, colour: [f32; 3]) {
        let (ax, ay) = apex;
        self.shape(
            [ax - half_base, ay, ax + half_base, ay + height],
            colour,
            |x, y| {
                let t = (y - ay) / height;
                (half_base * t - (x - ax).abs() + 0.5).clamp(0.0, 1.0)
                    * f32::from(u8::from((0.0..=1.0).contains(&t)))
            },
        );
    }
    /// A horizontal sine band `y = base + amp·sin(freq·x + phase)`, `thickness` tall.
    fn wave(
        &mut self,
        base: f32,
        amp: f32,
        freq: f32,
        phase: f32,
        thickness: f32,
        colour: [f32; 3],
    ) {
        let w = self.w as f32;
        self.shape(
            [0.0, base - amp - thickness, w, base + amp + thickness],
            colour,
            |x, y| {
                let centre = base + amp * (freq * x / w * std::f32::consts::TAU + phase).sin();
                (thickness / 2.0 - (y - centre).abs() + 0.5).clamp(0.0, 1.0)
            },
        );
    }
    /// Fills below a random rolling horizon (two sines), for unique large-scale structure.
    fn terrain(&mut self, rng: &mut Rng, base: f32, colour: [f32; 3]) {
        let (w, h) = (self.w as f32, self.h as f32);
        let waves = [
            (
                rng.range(0.05, 0.2) * h,
                rng.range(0.5, 1.5),
                rng.range(0.0, 6.3),
            ),
            (
                rng.range(0.02, 0.08) * h,
                rng.range(2.0, 4.0),
                rng.range(0.0, 6.3),
            ),
        ];
        let top = base - waves[0].0 - waves[1].0;
        self.shape([0.0, top.max(0.0), w, h], colour, |x, y| {
            let u = x / w * std::f32::consts::TAU;
            let edge = base
                + waves
                    .iter()
                    .map(|(a, f, p)| a * (f * u + p).sin())
                    .sum::<f32>();
            (y - edge + 0.5).clamp(0.0, 1.0)
        });
    }
    /// Uneven light: a random smooth multiplicative field, different in every photo, as
    /// sun, clouds and lenses make it. It gives unrelated scenes of one theme different
    /// large-scale structure, as real photos have.
    fn lighting(&mut self, rng: &mut Rng) {
        let terms: Vec<(f32, f32, f32, f32)> = (0..6)
            .map(|_| {
                (
                    rng.range(0.08, 0.22),
                    rng.range(-2.0, 2.0),
                    rng.range(-2.0, 2.0),
                    rng.range(0.0, 6.3),
                )
            })
            .collect();
        let (w, h) = (self.w as f32, self.h as f32);
        for y in 0..self.h {
            for x in 0..self.w {
                let (u, v) = (x as f32 / w, y as f32 / h);
                let gain = 1.0
                    + terms
                        .iter()
                        .map(|(a, fx, fy, p)| {
                            a * (std::f32::consts::TAU * (fx * u + fy * v) + p).cos()
                        })
                        .sum::<f32>();
                let px = &mut self.px[y * self.w + x];
                *px = px.map(|c| c * gain + (gain - 1.0) * 0.3);
            }
        }
    }
    fn grain(&mut self, rng: &mut Rng, sigma: f32) {
        for p in &mut self.px {
            let n = rng.gauss() * sigma;
            for c in p.iter_mut() {
                *c += n;
            }
        }
    }
    fn into_image(self) -> RgbImage {
        let data = self
            .px
            .iter()
            .flat_map(|p| p.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8))
            .collect();
        RgbImage::from_raw(self.w as u32, self.h as u32, data).expect("canvas has w × h pixels")
    }
}

fn scene(theme: usize, rng: &mut Rng, w: usize, h: usize) -> (RgbImage, String) {
    let mut c = Canvas::new(w, h);
    let (wf, hf) = (w as f32, h as f32);
    let count = 3 + rng.below(6);
    let caption = match theme {
        0 => {
            c.gradient(
                jitter(rng, [0.98, 0.6, 0.2], 0.08),
                jitter(rng, [0.4, 0.15, 0.45], 0.08),
                rng.range(-0.3, 0.3),
            );
            let sun = jitter(rng, [1.0, 0.85, 0.4], 0.1);
            c.circle(
                rng.range(0.2, 0.8) * wf,
                rng.range(0.3, 0.6) * hf,
                rng.range(0.08, 0.2) * wf,
                sun,
                2.0,
            );
            let horizon = rng.range(0.55, 0.8) * hf;
            let ground = jitter(rng, [0.15, 0.08, 0.12], 0.05);
            c.terrain(rng, horizon, ground);
            for _ in 0..count {
                c.triangle(
                    (rng.range(0.0, 1.0) * wf, horizon - rng.range(10.0, 50.0)),
                    rng.range(8.0, 30.0),
                    60.0,
                    [0.1, 0.05, 0.08],
                );
            }
            format!("a sunset over {count} dark hills")
        }
        1 => {
            c.gradient(
                jitter(rng, [0.5, 0.75, 0.95], 0.08),
                jitter(rng, [0.0, 0.25, 0.5], 0.08),
                rng.range(-0.2, 0.2),
            );
            for _ in 0..count {
                c.wave(
                    rng.range(0.4, 0.95) * hf,
                    rng.range(3.0, 12.0),
                    rng.range(1.0, 4.0),
                    rng.range(0.0, 6.3),
                    rng.range(2.0, 6.0),
                    jitter(rng, [0.95, 0.97, 1.0], 0.05),
                );
            }
            format!("ocean waves, {count} white crests")
        }
        2 => {
            c.gradient(
                jitter(rng, [0.55, 0.75, 0.5], 0.08),
                jitter(rng, [0.1, 0.3, 0.1], 0.06),
                0.0,
            );
            for _ in 0..count + 3 {
                let x = rng.range(0.0, 1.0) * wf;
                let top = rng.range(0.2, 0.5) * hf;
                c.rect(
                    x - 4.0,
                    top + 30.0,
                    x + 4.0,
                    hf,
                    jitter(rng, [0.35, 0.22, 0.1], 0.05),
                );
                c.triangle(
                    (x, top),
                    rng.range(15.0, 35.0),
                    rng.range(50.0, 90.0),
                    jitter(rng, [0.1, 0.45, 0.15], 0.08),
                );
            }
            format!("a forest of {} pine trees", count + 3)
        }
        3 => {
            c.gradient(
                jitter(rng, [0.7, 0.72, 0.75], 0.08),
                jitter(rng, [0.45, 0.47, 0.5], 0.06),
                0.0,
            );
            for _ in 0..count + 2 {
                let x = rng.range(-0.1, 1.0) * wf;
                let bw = rng.range(20.0, 60.0);
                let top = rng.range(0.2, 0.7) * hf;
                c.rect(x, top, x + bw, hf, jitter(rng, [0.25, 0.25, 0.3], 0.08));
                for wy in (0..8).map(|i| top + 8.0 + i as f32 * 14.0) {
                    if rng.unit() < 0.6 {
                        c.rect(
                            x + 5.0,
                            wy,
                            x + bw - 5.0,
                            wy + 5.0,
                            jitter(rng, [0.95, 0.85, 0.5], 0.05),
                        );
                    }
                }
            }
            format!("a city skyline with {} towers", count + 2)
        }
        4 => {
            c.gradient(
                jitter(rng, [0.95, 0.85, 0.6], 0.05),
                jitter(rng, [0.8, 0.6, 0.3], 0.06),
                rng.range(-0.2, 0.2),
            );
            for _ in 0..count {
                c.wave(
                    rng.range(0.3, 0.9) * hf,
                    rng.range(5.0, 20.0),
                    rng.range(0.5, 2.0),
                    rng.range(0.0, 6.3),
                    rng.range(6.0, 14.0),
                    jitter(rng, [0.7, 0.5, 0.25], 0.06),
                );
            }
            format!("desert dunes in {count} ridges")
        }
        5 => {
            c.gradient(
                jitter(rng, [0.8, 0.85, 0.92], 0.04),
                jitter(rng, [0.9, 0.92, 0.95], 0.03),
                0.0,
            );
            for _ in 0..count {
                c.triangle(
                    (rng.range(0.0, 1.0) * wf, rng.range(0.2, 0.5) * hf),
                    rng.range(30.0, 70.0),
                    rng.range(60.0, 120.0),
                    jitter(rng, [0.45, 0.48, 0.55], 0.08),
                );
            }
            for _ in 0..40 {
                c.circle(
                    rng.range(0.0, wf),
                    rng.range(0.0, hf),
                    rng.range(1.0, 2.5),
                    [1.0, 1.0, 1.0],
                    1.0,
                );
            }
            format!("snowy mountains, {count} peaks")
        }
        6 => {
            c.gradient(
                jitter(rng, [0.35, 0.6, 0.25], 0.08),
                jitter(rng, [0.2, 0.4, 0.15], 0.06),
                0.0,
            );
            let petal = jitter(rng, [0.9, 0.3, 0.5], 0.15);
            for _ in 0..count * 6 {
                c.circle(
                    rng.range(0.0, wf),
                    rng.range(0.0, hf),
                    rng.range(3.0, 9.0),
                    jitter(rng, petal, 0.1),
                    1.0,
                );
            }
            format!("a meadow with {} pink flowers", count * 6)
        }
        7 => {
            c.gradient(
                jitter(rng, [0.02, 0.03, 0.12], 0.02),
                jitter(rng, [0.15, 0.2, 0.45], 0.05),
                0.0,
            );
            for _ in 0..60 {
                c.circle(
                    rng.range(0.0, wf),
                    rng.range(0.0, hf),
                    rng.range(0.6, 1.6),
                    [1.0, 1.0, 0.9],
                    1.0,
                );
            }
            c.circle(
                rng.range(0.1, 0.9) * wf,
                rng.range(0.1, 0.5) * hf,
                rng.range(0.06, 0.16) * wf,
                jitter(rng, [0.95, 0.95, 0.85], 0.04),
                1.5,
            );
            for _ in 0..2 + rng.below(2) {
                let grey = jitter(rng, [0.35, 0.38, 0.5], 0.1);
                c.circle(
                    rng.range(0.0, wf),
                    rng.range(0.0, 0.6 * hf),
                    rng.range(25.0, 60.0),
                    grey,
                    25.0,
                );
            }
            let (horizon, ground) = (
                rng.range(0.55, 0.85) * hf,
                jitter(rng, [0.02, 0.02, 0.03], 0.02),
            );
            c.terrain(rng, horizon, ground);
            "a starry night with a full moon over the hills".to_owned()
        }
        8 => {
            let angle = rng.range(0.0, std::f32::consts::PI);
            let period = rng.range(24.0, 80.0);
            let a = jitter(rng, [0.95, 0.6, 0.3], 0.08);
            let b = jitter(rng, [0.1, 0.2, 0.5], 0.08);
            let (s, co) = angle.sin_cos();
            c.shape([0.0, 0.0, wf, hf], a, |x, y| {
                f32::from(u8::from(((x * co + y * s) / period).rem_euclid(1.0) < 0.5))
            });
            c.shape([0.0, 0.0, wf, hf], b, |x, y| {
                f32::from(u8::from(((x * co + y * s) / period).rem_euclid(1.0) >= 0.5))
            });
            let dots = 1 + rng.below(3);
            for _ in 0..dots {
                c.circle(
                    rng.range(0.1, 0.9) * wf,
                    rng.range(0.1, 0.9) * hf,
                    rng.range(15.0, 55.0),
                    jitter(rng, [0.95, 0.9, 0.2], 0.05),
                    1.0,
                );
            }
            format!("diagonal stripes with {dots} yellow dots")
        }
        _ => {
            c.gradient(
                jitter(rng, [0.3, 0.1, 0.3], 0.1),
                jitter(rng, [0.1, 0.1, 0.3], 0.1),
                rng.range(-1.0, 1.0),
            );
            for _ in 0..count + 4 {
                c.circle(
                    rng.range(0.0, wf),
                    rng.range(0.0, hf),
                    rng.range(15.0, 45.0),
                    jitter(rng, [0.9, 0.6, 0.7], 0.3),
                    8.0,
                );
            }
            format!("soft bokeh lights, {} circles", count + 4)
        }
    };
    c.lighting(rng);
    c.grain(rng, 0.012);
    (c.into_image(), caption)
}

/// Outliers: twelve kinds of image unlike any theme and unlike each other.
fn outlier(kind: usize, rng: &mut Rng) -> RgbImage {
    let (w, h) = (256_usize, 256_usize);
    let mut c = Canvas::new(w, h);
    let hue = rng.unit();
    let f = rng.range(3.0, 9.0);
    let rainbow = |t: f32| -> [f32; 3] {
        std::array::from_fn(|i| 0.5 + 0.5 * (std::f32::consts::TAU * (t + i as f32 / 3.0)).cos())
    };
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
            let (du, dv) = (u - 0.5, v - 0.5);
            let p = match kind {
                0 => [rng.unit(), rng.unit(), rng.unit()],
                1 => {
                    if ((u * f * 2.0) as i32 + (v * f * 2.0) as i32) % 2 == 0 {
                        [1.0, 0.0, 1.0]
                    } else {
                        [0.0, 1.0, 0.0]
                    }
                }
                2 => {
                    let t = 0.5 + 0.5 * ((du * du + dv * dv).sqrt() * f * 12.0).sin();
                    [t, 0.2 * t, 0.6 * (1.0 - t)]
                }
                3 => rainbow(hue + dv.atan2(du) / std::f32::consts::TAU * f.round()),
                4 => {
                    let g = (((x ^ y) as f32 * f).rem_euclid(256.0)) / 255.0;
                    [g, 1.0 - g, g * 0.5]
                }
                5 => {
                    let s = 0.5
                        + ((u * f * 7.0).sin() + (v * f * 5.0).cos() + ((u + v) * f * 3.0).sin())
                            / 6.0;
                    [s, s * s * 0.3, 0.0]
                }
                6 => {
                    if (u * 60.0 * f).sin() > 0.0 {
                        [0.0, 0.0, 0.0]
                    } else {
                        [1.0, 1.0, 0.0]
                    }
                }
                7 => {
                    let r = (du * du + dv * dv).sqrt();
                    let a = dv.atan2(du);
                    let t = 0.5 + 0.5 * (a + r * f * 8.0).sin();
                    [0.0, t, t]
                }
                8 => [hue, 0.0, 1.0 - hue].map(|c| c * (0.8 + 0.2 * (v * 40.0).sin())),
                9 => {
                    if ((x / 4) * 7 + (y / 4) * 13) % 5 == 0 {
                        [1.0, 1.0, 1.0]
                    } else {
                        [0.6, 0.0, 0.0]
                    }
                }
                10 => {
                    let g = ((u * 90.0 * f).sin() * (v * 90.0).sin()).abs();
                    [g, g, 1.0]
                }
                _ => [0.0, (v * 3.0).fract(), (u * 5.0).fract()],
            };
            c.px[y * w + x] = p;
        }
    }
    // A large disc in the complementary colours, somewhere: no two outliers alike.
    let (cx, cy, r) = (
        rng.range(0.2, 0.8) * w as f32,
        rng.range(0.2, 0.8) * h as f32,
        rng.range(40.0, 100.0),
    );
    for y in 0..h {
        for x in 0..w {
            if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < r * r {
                let p = &mut c.px[y * w + x];
                *p = p.map(|v| 1.0 - v);
            }
        }
    }
    c.into_image()
}

fn encode(image: &RgbImage, format: ImageFormat, jpeg_quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    if format == ImageFormat::Jpeg {
        image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut bytes), jpeg_quality)
            .encode_image(image)
            .expect("encoding to memory cannot fail");
    } else {
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .expect("encoding to memory cannot fail");
    }
    bytes
}

fn extension(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        ImageFormat::Gif => "gif",
        _ => "jpg",
    }
}

/// One file to write.
struct Planned {
    rel: String,
    bytes: Vec<u8>,
    caption: Option<(String, bool)>,
}

/// Kinds of near copy, as an independent benchmark makes them.
const COPY_KINDS: usize = 5;

/// A near copy of `image` by transform `how` (`0..COPY_KINDS`), with the image crate's own
/// filters (not curate's resampler): the copy, its JPEG quality and a description.
fn near_copy(image: &RgbImage, how: usize, rng: &mut Rng) -> (RgbImage, u8, String) {
    use image::imageops::{FilterType, crop_imm, resize};
    let (w, h) = image.dimensions();
    match how {
        0 => (
            image.clone(),
            60 + rng.below(25) as u8,
            "JPEG re-encode".to_owned(),
        ),
        1 => {
            let scale = rng.range(0.6, 0.9);
            let (tw, th) = (
                ((w as f32 * scale).round() as u32).max(8),
                ((h as f32 * scale).round() as u32).max(8),
            );
            let out = resize(image, tw, th, FilterType::Lanczos3);
            (out, 92, format!("downscaled to {:.0}%", scale * 100.0))
        }
        2 => {
            let borders: [f32; 4] = std::array::from_fn(|_| rng.range(0.0, 0.08));
            let x0 = (borders[0] * w as f32) as u32;
            let y0 = (borders[1] * h as f32) as u32;
            let x1 = w - (borders[2] * w as f32) as u32;
            let y1 = h - (borders[3] * h as f32) as u32;
            let cropped = crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
            let out = resize(&cropped, w, h, FilterType::CatmullRom);
            let most = borders.iter().fold(0.0_f32, |a, &b| a.max(b));
            (
                out,
                92,
                format!(
                    "cropped up to {:.0}% per border, resized back",
                    most * 100.0
                ),
            )
        }
        3 => {
            let factor = 1.0 + rng.range(0.03, 0.08) * if rng.unit() < 0.5 { -1.0 } else { 1.0 };
            let mut out = image.clone();
            out.pixels_mut().for_each(|p| {
                p.0 =
                    p.0.map(|c| (f32::from(c) * factor).round().clamp(0.0, 255.0) as u8);
            });
            (out, 92, format!("brightness x{factor:.2}"))
        }
        _ => {
            let sigma = rng.range(2.0, 4.0);
            let mut out = image.clone();
            out.pixels_mut().for_each(|p| {
                p.0 =
                    p.0.map(|c| (f32::from(c) + rng.gauss() * sigma).clamp(0.0, 255.0) as u8);
            });
            (out, 95, format!("noise sigma {sigma:.1}"))
        }
    }
}

/// Two different transforms of [`near_copy`] applied one after the other.
fn combined_copy(image: &RgbImage, rng: &mut Rng) -> (RgbImage, u8, String) {
    let first = rng.below(COPY_KINDS);
    let second = (first + 1 + rng.below(COPY_KINDS - 1)) % COPY_KINDS;
    let (once, q1, how1) = near_copy(image, first, rng);
    let once = if q1 < 90 {
        image::load_from_memory(&encode(&once, ImageFormat::Jpeg, q1))
            .expect("decoding our own JPEG cannot fail")
            .to_rgb8()
    } else {
        once
    };
    let (twice, q2, how2) = near_copy(&once, second, rng);
    (twice, q2, format!("{how1} + {how2}"))
}

/// A distinct image made to look like `image`: its colours rotated (a colour variant) or
/// one detail painted over (a figure, a flag's emblem, a clock's hand elsewhere).
fn lookalike(image: &RgbImage, how: usize, rng: &mut Rng) -> (RgbImage, String) {
    let (w, h) = image.dimensions();
    let mut out = image.clone();
    if how == 0 {
        out.pixels_mut()
            .for_each(|p| p.0 = [p.0[2], p.0[0], p.0[1]]);
        return (out, "colour variant".to_owned());
    }
    let r = rng.range(0.08, 0.14) * w.min(h) as f32;
    let (cx, cy) = (
        rng.range(0.25, 0.75) * w as f32,
        rng.range(0.25, 0.75) * h as f32,
    );
    let colour = [
        rng.below(256) as u8,
        rng.below(256) as u8,
        rng.below(256) as u8,
    ];
    for y in 0..h {
        for x in 0..w {
            if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < r * r {
                out.put_pixel(x, y, image::Rgb(colour));
            }
        }
    }
    (out, "one detail changed".to_owned())
}

/// Writes the sample dataset into `dir` (created if needed) and returns its ground truth.
/// With `plain`, only the scenes are written, as 256×256 JPEGs (for benchmarks).
pub fn generate(dir: &Path, scenes: usize) -> io::Result<Truth> {
    generate_with(dir, scenes, false)
}

/// [`generate`], with the choice of a plain (scenes only, all JPEG) dataset.
pub fn generate_with(dir: &Path, scenes: usize, plain: bool) -> io::Result<Truth> {
    const SEED: u64 = 0x00C0_FFEE;
    fs::create_dir_all(dir)?;
    let planned: Vec<(Vec<Planned>, Option<Family>, Vec<String>)> = (0..scenes)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng::new(SEED, i as u64);
            let theme = i % THEMES.len();
            let (w, h) = if plain {
                (256, 256)
            } else if i % 97 == 5 {
                // Large photos.
                (1800, 1200)
            } else if i % 23 == 3 {
                // Tiny icons.
                (32, 32)
            } else {
                [
                    (256, 256),
                    (256, 256),
                    (256, 256),
                    (320, 240),
                    (240, 320),
                    (384, 256),
                ][rng.below(6)]
            };
            let (image, caption) = scene(theme, &mut rng, w, h);
            let format = if plain {
                ImageFormat::Jpeg
            } else {
                match rng.below(50) {
                    0..=39 => ImageFormat::Jpeg,
                    40..=44 => ImageFormat::Png,
                    45..=46 => ImageFormat::WebP,
                    47 => ImageFormat::Bmp,
                    48 => ImageFormat::Tiff,
                    _ => ImageFormat::Gif,
                }
            };
            let stem = format!("{}/{}_{i:05}", THEMES[theme], THEMES[theme]);
            let rel = format!("{stem}.{}", extension(format));
            let json_caption = rng.below(5) == 0;
            let mut files = vec![Planned {
                rel: rel.clone(),
                bytes: encode(&image, format, 90),
                caption: (!plain).then(|| (caption.clone(), json_caption)),
            }];
            if plain {
                return (files, None, Vec::new());
            }
            let mut family = Family {
                original: rel.clone(),
                ..Family::default()
            };
            if rng.below(100) < 4 {
                for copy in 0..=rng.below(2) {
                    let copy_rel = if copy == 0 {
                        format!("copies/{}_copy_{i:05}.{}", THEMES[theme], extension(format))
                    } else {
                        format!("{stem}_dup{copy}.{}", extension(format))
                    };
                    files.push(Planned {
                        rel: copy_rel.clone(),
                        bytes: files[0].bytes.clone(),
                        caption: None,
                    });
                    family.exact.push(copy_rel);
                }
            }
            let tiny_or_large = w == 32 || w == 1800;
            if rng.below(100) < 8 || (tiny_or_large && rng.below(2) == 0) {
                let first = rng.below(COPY_KINDS);
                for n in 0..=rng.below(3) {
                    let (copy, quality, how) = if n == 2 {
                        combined_copy(&image, &mut rng)
                    } else {
                        near_copy(&image, (first + n * 2) % COPY_KINDS, &mut rng)
                    };
                    let copy_rel = format!("{stem}_v{n}.jpg");
                    files.push(Planned {
                        rel: copy_rel.clone(),
                        bytes: encode(&copy, ImageFormat::Jpeg, quality),
                        caption: Some((caption.clone(), false)),
                    });
                    family.near.push((copy_rel, how));
                }
            }
            let has_copies = !family.exact.is_empty() || !family.near.is_empty();
            // Look-alikes of some originals: distinct images a detector must keep apart.
            let mut lookalikes = Vec::new();
            if rng.below(100) < 4 {
                let how = rng.below(2);
                let (variant, what) = lookalike(&image, how, &mut rng);
                let variant_rel = format!("{stem}_lookalike.png");
                files.push(Planned {
                    rel: variant_rel.clone(),
                    bytes: encode(&variant, ImageFormat::Png, 90),
                    caption: Some((format!("{caption} ({what})"), false)),
                });
                lookalikes = vec![rel.clone(), variant_rel];
            }
            (files, has_copies.then_some(family), lookalikes)
        })
        .collect();

    let mut truth = Truth::default();
    let mut files: Vec<Planned> = Vec::new();
    for (planned_files, family, lookalikes) in planned {
        truth
            .images
            .extend(planned_files.iter().map(|f| f.rel.clone()));
        files.extend(planned_files);
        truth.families.extend(family);
        if !lookalikes.is_empty() {
            truth.lookalikes.push(lookalikes);
        }
    }
    if !plain {
        let outliers = (scenes / 60).max(12);
        for o in 0..outliers {
            let mut rng = Rng::new(SEED ^ 0xBAD, o as u64);
            let rel = format!("misc/unusual_{o:03}.png");
            files.push(Planned {
                rel: rel.clone(),
                bytes: encode(&outlier(o % 12, &mut rng), ImageFormat::Png, 90),
                caption: None,
            });
            truth.images.push(rel.clone());
            truth.outliers.push(rel);
        }
        // A small cluster of outliers: near-blank frames, alike among themselves, so a
        // nearest-neighbour score alone would call them ordinary.
        for o in 0..10 {
            let mut rng = Rng::new(SEED ^ 0xB1A4, o as u64);
            let level = 16.0 + rng.range(0.0, 10.0);
            let mut frame = RgbImage::new(256, 192);
            frame.pixels_mut().for_each(|p| {
                let v = (level + rng.gauss()).clamp(0.0, 255.0) as u8;
                p.0 = [v, v, v.saturating_add(1)];
            });
            let rel = format!("misc/frame_{o:02}.png");
            files.push(Planned {
                rel: rel.clone(),
                bytes: encode(&frame, ImageFormat::Png, 90),
                caption: None,
            });
            truth.images.push(rel.clone());
            truth.outliers.push(rel);
        }
        write_extras(dir, &mut files, &mut truth)?;
    }
    files.par_iter().try_for_each(|file| -> io::Result<()> {
        let path = dir.join(&file.rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, &file.bytes)?;
        if let Some((caption, json)) = &file.caption {
            let stem = path.with_extension("");
            if *json {
                let value = serde_json::json!({ "caption": caption, "source": "curate demo" });
                fs::write(stem.with_extension("json"), serde_json::to_vec(&value)?)?;
            } else {
                fs::write(stem.with_extension("txt"), caption)?;
            }
        }
        Ok(())
    })?;
    let truth_json = serde_json::to_vec_pretty(&truth)?;
    fs::write(dir.join(TRUTH_FILE), truth_json)?;
    Ok(truth)
}

/// Bad files, a manifest, a file without extension and a symlink loop.
fn write_extras(dir: &Path, files: &mut Vec<Planned>, truth: &mut Truth) -> io::Result<()> {
    let mut rng = Rng::new(0x0E_7A5, 0);
    let (good, _) = scene(0, &mut rng, 256, 256);
    let jpeg = encode(&good, ImageFormat::Jpeg, 90);
    let mut bad = |rel: &str, bytes: Vec<u8>, status: &str| {
        files.push(Planned {
            rel: rel.to_owned(),
            bytes,
            caption: None,
        });
        truth.bad.push((rel.to_owned(), status.to_owned()));
    };
    bad(
        "bad/truncated.jpg",
        jpeg[..jpeg.len() / 2].to_vec(),
        "truncated",
    );
    bad("bad/empty.png", Vec::new(), "empty");
    bad(
        "bad/notes.png",
        b"These are my notes, not a picture.\n".to_vec(),
        "not_an_image",
    );
    bad("bad/bomb.png", png_bomb(100_000, 100_000), "too_large");
    bad("bad/garbled.png", png_with(16, 16, &[0xAB; 64]), "corrupt");

    // A readable image whose JSON sidecar is broken.
    files.push(Planned {
        rel: "extra/broken_caption.jpg".to_owned(),
        bytes: jpeg.clone(),
        caption: None,
    });
    truth.images.push("extra/broken_caption.jpg".to_owned());
    fs::create_dir_all(dir.join("extra"))?;
    fs::write(
        dir.join("extra/broken_caption.json"),
        b"{\"caption\": \"unterminated",
    )?;
    // Captions from a manifest, one broken line, and an image without an extension.
    let (plain, _) = scene(3, &mut rng, 256, 256);
    files.push(Planned {
        rel: "extra/IMG_0001".to_owned(),
        bytes: encode(&plain, ImageFormat::Jpeg, 92),
        caption: None,
    });
    truth.images.push("extra/IMG_0001".to_owned());
    fs::write(
        dir.join("extra/captions.csv"),
        "path,caption\nIMG_0001,\"a city at dusk, from the manifest\"\n\"unterminated,line\n",
    )?;
    fs::write(
        dir.join("README.txt"),
        "curate demo dataset: generated images with planted duplicates.\n",
    )?;

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let name = std::ffi::OsStr::from_bytes(b"bad/caf\xE9.jpg");
        fs::create_dir_all(dir.join("bad"))?;
        fs::write(dir.join(name), &jpeg)?;
        truth.bad.push((
            name.to_string_lossy().into_owned(),
            "non_utf8_name".to_owned(),
        ));
        let link = dir.join("extra/loop");
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("..", &link)?;
        }
    }
    Ok(())
}

/// A valid PNG header claiming `width × height` pixels, with almost no data behind it.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    png_with(
        width,
        height,
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    )
}

/// A PNG with a valid header and `idat` as its (possibly garbage) pixel data.
fn png_with(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(&kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, *b"IHDR", &ihdr);
    chunk(&mut out, *b"IDAT", idat);
    chunk(&mut out, *b"IEND", &[]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
