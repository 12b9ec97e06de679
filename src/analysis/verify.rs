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
//!    Where a crop on one axis changes the other's profile (a smooth photo patch cut on
//!    all four borders) and the pair is left misaligned (a mean difference beyond a
//!    copy's, or a block difference far beyond the line), both axes are searched
//!    together on a 12-pixel grid, one picture nested in the other, and the closest
//!    alignment polished on the pixels.
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
pub const VERSION: &str = "pixels-v19";

/// Longest side of a [`Picture`] in pixels.
pub const PICTURE_SIDE: u32 = 48;

/// Largest block difference (mean RGB distance in a block, 0–441) of a verified copy.
pub const DEFAULT_MAX_DIFFERENCE: f32 = 6.5;

/// Largest mean difference over the whole overlap of a verified copy.
const MAX_MEAN_DIFFERENCE: f32 = 2.25;

/// Pictures whose luma standard deviation is below this are near-blank (see the module
/// documentation).
const BLANK_SPREAD: f32 = 3.0;

/// Largest |ln(aspect a / aspect b)| of a copy, plus one pixel's worth of rounding.
const MAX_LOG_ASPECT: f32 = 0.05;

/// Relative scales searched per axis: a crop of 8 % per border of either image.
const SCALE_RANGE: (f32, f32) = (0.80, 1.25);

/// Shifts searched per axis, in units of the picture side.
const SHIFT_RANGE: f32 = 0.12;

/// How far each end of one copy's window may lie from the other's (a crop of 8 % per
/// border of either, in units of the other's side, with rounding): a photo patch offset by
/// a quarter of its size is another picture, not a crop.
const END_SLACK: f32 = 0.11;

/// Smallest share of one picture the aligned other must cover.
const MIN_OVERLAP: f32 = 0.70;

/// Profile cost per unit of scale or shift away from the identity (profiles are in units
/// of the mean level: compression noise costs about 1e-5, a misplaced edge 1e-2).
const IDENTITY_PREFERENCE: f32 = 2e-4;

/// Alignments are polished on the pixels only when their difference is within this
/// factor of the default threshold.
const REFINE_WITHIN: f32 = 2.5;

/// Blocks per side of the block grid the difference is averaged over.
const BLOCKS: usize = 6;

/// Blocks per side of the finer grid (see [`Comparison::fine`]).
pub const FINE_BLOCKS: usize = 12;

/// How much more a fine block may differ than the threshold of a coarse one.
const FINE_FACTOR: f32 = 1.5;

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
        Self::with_side(image, width, height, PICTURE_SIDE)
    }

    /// A picture of at most `side` pixels on its longer side (see [`Self::new`]).
    #[must_use]
    pub fn with_side(image: &RgbImage, width: u32, height: u32, side: u32) -> Self {
        let (w, h) = fit_within(image.width(), image.height(), side);
        let small = resize_area(image, w.max(1), h.max(1));
        let rgb = small.into_raw();
        let luma: Vec<f32> = rgb
            .chunks_exact(3)
            .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
            .collect();
        let mean = luma.iter().sum::<f32>() / luma.len().max(1) as f32;
        let spread = (luma.iter().map(|v| (v - mean).powi(2)).sum::<f32>()
            / luma.len().max(1) as f32)
            .sqrt();
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
    /// The largest difference over a finer block grid ([`FINE_BLOCKS`] per side): a
    /// changed word or a moved hand fills a small block, not a large one.
    pub fine: f32,
}

impl Comparison {
    /// A pair rejected before any pixel was compared.
    pub const REJECTED: Self = Self {
        difference: f32::INFINITY,
        mean: f32::INFINITY,
        fine: f32::INFINITY,
    };

    /// The worse of two comparisons of one pair, measure by measure (two views of it: a
    /// copy must match in both).
    #[must_use]
    pub fn worse(self, other: Self) -> Self {
        Self {
            difference: self.difference.max(other.difference),
            mean: self.mean.max(other.mean),
            fine: self.fine.max(other.fine),
        }
    }

    /// Whether this is a copy under the block threshold `max_difference` (never when it
    /// is 0 or less).
    #[must_use]
    pub fn is_copy(&self, max_difference: f32) -> bool {
        // A line at 0 turns near duplicates off (compression forgiven at shared edges can
        // leave a copy at exactly 0).
        max_difference > 0.0
            && self.difference <= max_difference
            && self.mean <= MAX_MEAN_DIFFERENCE
            && self.fine <= max_difference * FINE_FACTOR
    }
}

/// Compares two pictures (symmetric up to floating-point rounding).
#[must_use]
pub fn compare(a: &Picture, b: &Picture) -> Comparison {
    compare_aligned(a, b).0
}

/// Per axis `(x, y)`, the window `[start, end]` of one picture (in units of its side;
/// `[0, 1]` when the identity won) that the other shows.
pub type Window = [(f32, f32); 2];

/// [`compare`], and where `b` lies in `a` by the alignment it chose; no window when the
/// pair was rejected before any pixel was compared.
#[must_use]
pub fn compare_located(a: &Picture, b: &Picture) -> (Comparison, Option<Window>) {
    let (comparison, warp) = compare_aligned(a, b);
    let window = comparison.difference.is_finite().then(|| warp.window());
    (comparison, window)
}

/// [`compare_located`], and where the profiles of the two pictures placed `b` when a
/// search in two dimensions found a closer alignment: the closest alignment of a
/// resampled copy is not always its window, so a caller that reproduces the copy may try
/// both.
#[must_use]
pub fn compare_located_all(a: &Picture, b: &Picture) -> (Comparison, Vec<Window>) {
    let ((comparison, warp), replaced) = align(a, b, true);
    if !comparison.difference.is_finite() {
        return (comparison, Vec::new());
    }
    let windows = std::iter::once(warp)
        .chain(replaced)
        .map(Warp::window)
        .collect();
    (comparison, windows)
}

/// Compares two images seen two ways (`views`: each image over black and over white, say)
/// as one geometry: a copy lines up the same way over any background, and the worse view
/// counts. Each view is aligned on its own, and each is also compared at the other's
/// alignment (a view where the picture is faint — light paint over white — may align
/// poorly on its own); the alignment whose worse view is better wins. The window is where
/// the second picture lies in the first by that alignment (none when the pair was
/// rejected before any pixel was compared).
#[must_use]
pub fn compare_two_views(views: [(&Picture, &Picture); 2]) -> (Comparison, Option<Window>) {
    // Each view by the profiles only: transparency outlines a figure, which the profiles
    // align well, and a free search would let one figure's hair hide in another's (a
    // person and a man astronaut at 32 pixels).
    let own = views.map(|(a, b)| align(a, b, false).0);
    let mut best: Option<(Comparison, Warp)> = None;
    for (i, &(comparison, warp)) in own.iter().enumerate() {
        if !comparison.difference.is_finite() {
            continue;
        }
        let (a, b) = views[1 - i];
        let other = if own[1 - i].1 == warp {
            own[1 - i].0
        } else {
            compare_at(a, b, warp)
        };
        let both = comparison.worse(other);
        if best.is_none_or(|(c, _)| both.difference < c.difference) {
            best = Some((both, warp));
        }
    }
    match best {
        Some((comparison, warp)) if comparison.difference.is_finite() => {
            (comparison, Some(warp.window()))
        }
        _ => (own[0].0.worse(own[1].0), None),
    }
}

/// Compares two pictures at a given alignment (polished when near the line).
fn compare_at(a: &Picture, b: &Picture, warp: Warp) -> Comparison {
    if unlike_shapes(a, b) {
        return Comparison::REJECTED;
    }
    let (w, h) = common_grid(a, b);
    let (ga, gb) = (Grid::of(a, w, h).smoothed(), Grid::of(b, w, h).smoothed());
    if warp == Warp::IDENTITY {
        return evaluate(&ga, &gb, warp);
    }
    evaluate_polished(&ga, &gb, warp).0
}

/// [`evaluate`] at `warp`, and at `warp` polished on the pixels when that is near the
/// line; the better of the two, with its warp.
fn evaluate_polished(a: &Grid, b: &Grid, warp: Warp) -> (Comparison, Warp) {
    let first = (evaluate(a, b, warp), warp);
    // Polishing moves a difference by a few levels: only pairs near the line are worth it
    // (most candidates are far from it, and this is most of the work).
    if first.0.difference <= REFINE_WITHIN * DEFAULT_MAX_DIFFERENCE {
        let polished = refine(a, b, warp);
        let refined = evaluate(a, b, polished);
        if refined.difference < first.0.difference {
            return (refined, polished);
        }
    }
    first
}

/// Whether two pictures cannot be copies before any pixel is compared: other shapes, or
/// near-blank.
fn unlike_shapes(a: &Picture, b: &Picture) -> bool {
    let max_log_aspect =
        MAX_LOG_ASPECT + 1.0 / a.width.min(a.height).min(b.width).min(b.height).max(1) as f32;
    (a.aspect / b.aspect).ln().abs() > max_log_aspect || a.is_blank() || b.is_blank()
}

/// The grid two pictures are compared on: the smaller one's.
fn common_grid(a: &Picture, b: &Picture) -> (usize, usize) {
    (a.width.min(b.width).max(4), a.height.min(b.height).max(4))
}

/// Compares two pictures as they lie, without aligning them: for a picture made to match
/// the other (a transform reproduced), where a search for a better alignment would only
/// add freedom a look-alike could use.
#[must_use]
pub fn compare_in_place(a: &Picture, b: &Picture) -> Comparison {
    if unlike_shapes(a, b) {
        return Comparison::REJECTED;
    }
    let (w, h) = common_grid(a, b);
    evaluate(
        &Grid::of(a, w, h).smoothed(),
        &Grid::of(b, w, h).smoothed(),
        Warp::IDENTITY,
    )
}

/// [`compare`], with the warp of its verdict.
fn compare_aligned(a: &Picture, b: &Picture) -> (Comparison, Warp) {
    align(a, b, true).0
}

/// [`compare_aligned`], and the profiles' alignment when the two-dimensional search
/// ([`search_warp`], only where `search` says so) replaced it.
fn align(a: &Picture, b: &Picture, search: bool) -> ((Comparison, Warp), Option<Warp>) {
    if unlike_shapes(a, b) {
        return ((Comparison::REJECTED, Warp::IDENTITY), None);
    }
    // Both on the grid of the smaller one, lightly smoothed: compression and noise live in
    // single pixels, the differences that matter span several.
    let (w, h) = common_grid(a, b);
    if glance(a, b, w, h) > GLANCE_REJECT {
        return ((Comparison::REJECTED, Warp::IDENTITY), None);
    }
    let ga = Grid::of(a, w, h).smoothed();
    let gb = Grid::of(b, w, h).smoothed();
    let mut best = (evaluate(&ga, &gb, Warp::IDENTITY), Warp::IDENTITY);
    if best.0.difference <= DEFAULT_MAX_DIFFERENCE * 0.5 {
        return (best, None);
    }
    let x = align_axis(&ga.profile(Axis::X), &gb.profile(Axis::X));
    let y = align_axis(&ga.profile(Axis::Y), &gb.profile(Axis::Y));
    // Both axes aligned, or one of them only (when the other's profile misled it): the
    // one whose pixels agree best is compared in full.
    let Some(warp) = [
        Warp { x, y },
        Warp { x, y: (1.0, 0.0) },
        Warp { x: (1.0, 0.0), y },
    ]
    .into_iter()
    .filter(|&warp| warp != Warp::IDENTITY)
    .map(|warp| (pixel_cost(&ga, &gb, warp), warp))
    .min_by(|p, q| p.0.total_cmp(&q.0))
    .map(|(_, warp)| warp) else {
        return (best, None);
    };
    let aligned = evaluate_polished(&ga, &gb, warp);
    if aligned.0.difference < best.0.difference {
        best = aligned;
    }
    // Profiles mislead where a crop on one axis changes the other's profile (a diagonal
    // edge, a smooth photo patch cut on all four borders). A misaligned pair differs
    // everywhere: its mean difference is beyond a copy's, or its largest block far beyond
    // the line. Such a pair is searched in two dimensions at once, on a coarse grid, and
    // the best alignment polished. (A look-alike differs in one place, with a copy's mean:
    // more freedom would only help it hide that place.)
    if search
        && (best.0.mean > MAX_MEAN_DIFFERENCE
            || best.0.difference > SEARCH_BEYOND * DEFAULT_MAX_DIFFERENCE)
    {
        // The finalists are told apart and polished on a grid of half the side (a quarter
        // of the work), and the winner compared in full only where it beats the
        // profiles' alignment there.
        let (hw, hh) = ((w / 2).max(4), (h / 2).max(4));
        let (ha, hb) = (
            Grid::of(a, hw, hh).smoothed(),
            Grid::of(b, hw, hh).smoothed(),
        );
        let Some((_, searched)) = search_warp(a, b, w, h)
            .into_iter()
            .map(|warp| (pixel_cost(&ha, &hb, warp), warp))
            .min_by(|p, q| p.0.total_cmp(&q.0))
        else {
            return (best, None);
        };
        let searched = refine_by(&ha, &hb, searched, COARSE_POLISH);
        if searched != best.1 && pixel_cost(&ha, &hb, searched) < pixel_cost(&ha, &hb, best.1) {
            let found = evaluate_polished(&ga, &gb, searched);
            if found.0.difference < best.0.difference {
                return (found, Some(best.1));
            }
        }
    }
    (best, None)
}

/// Pairs whose difference at the profiles' alignment is beyond this many times the default
/// threshold are searched again in two dimensions ([`search_warp`]).
const SEARCH_BEYOND: f32 = 4.0;

/// Longest side of the grid [`search_warp`] searches on.
const SEARCH_SIDE: usize = 12;

/// Step of the scales [`search_warp`] tries per axis.
const SEARCH_SCALE_STEP: f32 = 0.04;

/// Step of the shifts [`search_warp`] tries per axis, in units of the picture side.
const SEARCH_SHIFT_STEP: f32 = 0.025;

/// Largest shift [`search_warp`] tries: a crop of 8 % and some rounding.
const SEARCH_SHIFT_RANGE: f32 = 0.1;

/// Steps of the polish after [`search_warp`] (on a grid of half the side): scale, shift
/// in cells, rounds.
const COARSE_POLISH: (f32, f32, usize) = (0.02, 0.5, 6);

/// How far (in units of the side) a window [`search_warp`] tries may reach beyond the
/// picture it lies in: rounding of a crop's edges.
const NEST_SLACK: f32 = 0.02;

/// How many of the best coarse alignments [`search_warp`] returns.
const SEARCH_FINALISTS: usize = 6;

/// Per axis, each alignment [`search_warp`] tries, whether it nests `b` in `a` and `a` in
/// `b`, and per cell of `b` inside `a`: its index, the two cells of `a` it reads and the
/// weight of the second.
type Taps = Vec<((f32, f32), (bool, bool), Vec<(usize, usize, usize, f32)>)>;

/// The admissible alignments of `b` onto `a` with the least mean colour distance (the
/// best [`SEARCH_FINALISTS`], best first), searched over both axes together on a coarse
/// grid (every admissible scale and shift per axis, in steps of [`SEARCH_SCALE_STEP`] and
/// [`SEARCH_SHIFT_STEP`], one picture a window of the other on both axes): a coarse grid
/// blurs what tells near alignments apart, so the caller compares the finalists on its own
/// grid. `w × h` is the grid the pictures are compared on.
fn search_warp(a: &Picture, b: &Picture, w: usize, h: usize) -> Vec<Warp> {
    let scale = (SEARCH_SIDE as f32 / w.max(h) as f32).min(1.0);
    let (gw, gh) = (
        ((w as f32 * scale).round() as usize).max(4),
        ((h as f32 * scale).round() as usize).max(4),
    );
    let (ga, gb) = (Grid::of(a, gw, gh), Grid::of(b, gw, gh));
    // Per axis, each admissible (scale, shift) with its taps. A crop's window lies within
    // its original on both axes: either `b` shows a window of `a` or `a` one of `b` (with
    // a little room for rounding), never one end out and the other in, so each axis says
    // which of the two it allows.
    let nested = |(scale, shift): (f32, f32)| -> (bool, bool) {
        let end = shift + scale;
        (
            shift >= -NEST_SLACK && end <= 1.0 + NEST_SLACK,
            shift <= NEST_SLACK && end >= 1.0 - NEST_SLACK,
        )
    };
    let taps = |len: usize| -> Taps {
        let mut out = Vec::new();
        for scale in steps(SCALE_RANGE.0, SCALE_RANGE.1, SEARCH_SCALE_STEP) {
            for shift in steps(-SEARCH_SHIFT_RANGE, SEARCH_SHIFT_RANGE, SEARCH_SHIFT_STEP) {
                let within = nested((scale, shift));
                if !admissible((scale, shift)) || within == (false, false) {
                    continue;
                }
                out.push(((scale, shift), within, taps_of((scale, shift), len)));
            }
        }
        out
    };
    let (xs, ys) = (taps(gw), taps(gh));
    let n = (gw * gh) as f32;
    let mut best: Vec<(f32, Warp)> = Vec::with_capacity(SEARCH_FINALISTS + 1);
    let mut rows = vec![0.0_f32; gh * gw * 3];
    for (y, y_within, row_taps) in &ys {
        // `a`'s rows interpolated at each row of `b` the alignment reads: each column
        // alignment then reads one row.
        for (k, &(_, y0, y1, fy)) in row_taps.iter().enumerate() {
            let (top, bottom) = (
                &ga.rgb[y0 * gw * 3..][..gw * 3],
                &ga.rgb[y1 * gw * 3..][..gw * 3],
            );
            for (v, (t, b)) in rows[k * gw * 3..][..gw * 3]
                .iter_mut()
                .zip(top.iter().zip(bottom))
            {
                *v = t * (1.0 - fy) + b * fy;
            }
        }
        for (x, x_within, col_taps) in &xs {
            if !(x_within.0 && y_within.0 || x_within.1 && y_within.1) {
                continue;
            }
            let count = (row_taps.len() * col_taps.len()) as f32;
            if count < n * MIN_OVERLAP {
                continue;
            }
            // The mean over the overlap, weighed up by the share left out (the cells an
            // alignment leaves out are often the ones that would disagree); a sum beyond
            // `bound` cannot make the finalists.
            let weigh = n / (count * count);
            let bound = if best.len() == SEARCH_FINALISTS {
                best[SEARCH_FINALISTS - 1].0 / weigh
            } else {
                f32::INFINITY
            };
            let mut sum = 0.0_f32;
            for (k, &(i, ..)) in row_taps.iter().enumerate() {
                let row = &rows[k * gw * 3..][..gw * 3];
                let target = &gb.rgb[i * gw * 3..][..gw * 3];
                for &(j, x0, x1, fx) in col_taps {
                    for c in 0..3 {
                        let v = row[x0 * 3 + c] * (1.0 - fx) + row[x1 * 3 + c] * fx;
                        sum += (v - target[j * 3 + c]).abs();
                    }
                }
                if sum > bound {
                    break;
                }
            }
            let cost = sum * weigh;
            if best.len() < SEARCH_FINALISTS || cost < best[best.len() - 1].0 {
                let at = best.partition_point(|p| p.0 <= cost);
                best.insert(at, (cost, Warp { x: *x, y: *y }));
                best.truncate(SEARCH_FINALISTS);
            }
        }
    }
    best.into_iter().map(|(_, warp)| warp).collect()
}

/// Side of the grid a first glance compares on.
const GLANCE_SIDE: usize = 16;

/// Pairs whose mean difference at a glance (best of the identity and the profile
/// alignment) exceeds this are not compared further. Copies differ less on a coarse grid
/// than on the fine one (compression and noise average out), so this is far above
/// [`MAX_MEAN_DIFFERENCE`]; most candidates (other pictures) are far above it in turn.
const GLANCE_REJECT: f32 = 5.0 * MAX_MEAN_DIFFERENCE;

/// The mean difference of two pictures on a coarse grid: a cheap first look.
fn glance(a: &Picture, b: &Picture, w: usize, h: usize) -> f32 {
    let scale = (GLANCE_SIDE as f32 / w.max(h) as f32).min(1.0);
    let (gw, gh) = (
        ((w as f32 * scale).round() as usize).max(4),
        ((h as f32 * scale).round() as usize).max(4),
    );
    let ga = Grid::of(a, gw, gh);
    let gb = Grid::of(b, gw, gh);
    let identity = evaluate(&ga, &gb, Warp::IDENTITY).mean;
    if identity <= GLANCE_REJECT {
        return identity;
    }
    let warp = Warp {
        x: align_axis(&ga.profile(Axis::X), &gb.profile(Axis::X)),
        y: align_axis(&ga.profile(Axis::Y), &gb.profile(Axis::Y)),
    };
    identity.min(evaluate(&ga, &gb, warp).mean)
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

    /// Where the second picture lies in the first, per axis `[start, end]`.
    fn window(self) -> Window {
        let span = |(scale, shift): (f32, f32)| (shift, shift + scale);
        [span(self.x), span(self.y)]
    }
}

#[derive(Clone, Copy)]
enum Axis {
    X,
    Y,
}

/// A float RGB grid.
struct Grid {
    w: usize,
    h: usize,
    rgb: Vec<f32>,
}

impl Grid {
    /// `picture` resampled to `w × h` (area average with fractional coverage).
    fn of(picture: &Picture, w: usize, h: usize) -> Self {
        let wx = weights(picture.width, w);
        let wy = weights(picture.height, h);
        // Columns first, then rows.
        let mut rows = vec![0.0_f32; picture.height * w * 3];
        for y in 0..picture.height {
            let src = &picture.rgb[y * picture.width * 3..(y + 1) * picture.width * 3];
            for (tx, taps) in wx.iter().enumerate() {
                let mut acc = [0.0_f32; 3];
                for &(sx, weight) in taps {
                    for c in 0..3 {
                        acc[c] += weight * f32::from(src[sx * 3 + c]);
                    }
                }
                rows[(y * w + tx) * 3..(y * w + tx) * 3 + 3].copy_from_slice(&acc);
            }
        }
        let mut rgb = vec![0.0_f32; w * h * 3];
        for (ty, taps) in wy.iter().enumerate() {
            for tx in 0..w {
                let mut acc = [0.0_f32; 3];
                for &(sy, weight) in taps {
                    for c in 0..3 {
                        acc[c] += weight * rows[(sy * w + tx) * 3 + c];
                    }
                }
                rgb[(ty * w + tx) * 3..(ty * w + tx) * 3 + 3].copy_from_slice(&acc);
            }
        }
        Self { w, h, rgb }
    }

    /// The grid through a 3×3 binomial filter (edges repeated).
    fn smoothed(self) -> Self {
        let (w, h) = (self.w, self.h);
        let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
            let mut out = vec![0.0_f32; src.len()];
            for y in 0..h {
                for x in 0..w {
                    let (before, after) = if horizontal {
                        ((y * w + x.saturating_sub(1)), (y * w + (x + 1).min(w - 1)))
                    } else {
                        ((y.saturating_sub(1) * w + x), ((y + 1).min(h - 1) * w + x))
                    };
                    let here = y * w + x;
                    for c in 0..3 {
                        out[here * 3 + c] = 0.25 * src[before * 3 + c]
                            + 0.5 * src[here * 3 + c]
                            + 0.25 * src[after * 3 + c];
                    }
                }
            }
            out
        };
        let rgb = pass(&pass(&self.rgb, true), false);
        Self { w, h, rgb }
    }

    /// Mean colour along `axis` (one RGB triple per column for `X`, per row for `Y`),
    /// divided by the grid's mean level so brightness changes do not move the match.
    fn profile(&self, axis: Axis) -> Vec<[f32; 3]> {
        let len = match axis {
            Axis::X => self.w,
            Axis::Y => self.h,
        };
        let mut out = vec![[0.0_f32; 3]; len];
        for y in 0..self.h {
            for x in 0..self.w {
                let i = match axis {
                    Axis::X => x,
                    Axis::Y => y,
                };
                let p = &self.rgb[(y * self.w + x) * 3..(y * self.w + x) * 3 + 3];
                for c in 0..3 {
                    out[i][c] += p[c];
                }
            }
        }
        let across = (self.w * self.h / len) as f32;
        let level = out.iter().flatten().sum::<f32>() / (self.w * self.h * 3) as f32 + 8.0;
        let norm = 1.0 / (across * level);
        for v in out.iter_mut().flatten() {
            *v *= norm;
        }
        out
    }
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

/// Where sample `j` of a `len`-sample axis lands on the other grid under `(scale, shift)`,
/// clamped to the grid, or `None` outside it.
fn map_sample((scale, shift): (f32, f32), j: usize, len: usize) -> Option<f32> {
    let len = len as f32;
    let pos = (scale * ((j as f32 + 0.5) / len) + shift) * len - 0.5;
    (-0.5..=len - 0.5)
        .contains(&pos)
        .then(|| pos.clamp(0.0, len - 1.0))
}

/// Per cell `j` of an axis of `len` cells that `axis` maps inside the other picture: `j`,
/// the two cells it reads there and the weight of the second (bilinear taps).
fn taps_of(axis: (f32, f32), len: usize) -> Vec<(usize, usize, usize, f32)> {
    (0..len)
        .filter_map(|j| {
            let pos = map_sample(axis, j, len)?;
            let lo = pos.floor() as usize;
            Some((j, lo, (lo + 1).min(len - 1), pos - pos.floor()))
        })
        .collect()
}

/// Whether an axis's `(scale, shift)` can be a copy's: copies are windows of one original
/// with at most 8 % off each border, so both ends of one window lie within about 0.1 of
/// the other's, and the scale stays in [`SCALE_RANGE`].
fn admissible((scale, shift): (f32, f32)) -> bool {
    // (With room for the rounding of the search's steps.)
    (SCALE_RANGE.0 - 1e-4..=SCALE_RANGE.1 + 1e-4).contains(&scale)
        && shift.abs() <= END_SLACK
        && (shift + scale - 1.0).abs() <= END_SLACK
}

/// The scale and shift that best map profile `b` onto profile `a` (least squares over the
/// overlap), searched coarse to fine.
fn align_axis(a: &[[f32; 3]], b: &[[f32; 3]]) -> (f32, f32) {
    let len = a.len();
    let cost = |warp: (f32, f32)| -> f32 {
        let mut sum = 0.0;
        let mut count = 0_usize;
        for (j, pb) in b.iter().enumerate() {
            let Some(pos) = map_sample(warp, j, len) else {
                continue;
            };
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(len - 1);
            let f = pos - lo as f32;
            for c in 0..3 {
                let va = a[lo][c] * (1.0 - f) + a[hi][c] * f;
                sum += (va - pb[c]).powi(2);
            }
            count += 1;
        }
        if (count as f32) < MIN_OVERLAP * len as f32 {
            f32::INFINITY
        } else {
            // A little for leaving the identity, so a flat profile (vertical stripes seen
            // along y) keeps it instead of following compression noise.
            sum / count as f32 + IDENTITY_PREFERENCE * ((warp.0 - 1.0).abs() + warp.1.abs())
        }
    };
    let mut best = (cost((1.0, 0.0)), 1.0, 0.0);
    let search = |scales: &[f32], shifts: &[f32], best: &mut (f32, f32, f32)| {
        for &scale in scales {
            for &shift in shifts {
                if !admissible((scale, shift)) {
                    continue;
                }
                let c = cost((scale, shift));
                if c < best.0 {
                    *best = (c, scale, shift);
                }
            }
        }
    };
    let coarse_scale = 0.05;
    let coarse_shift = 2.0 / len as f32;
    let scales: Vec<f32> = steps(SCALE_RANGE.0, SCALE_RANGE.1, coarse_scale);
    let shifts: Vec<f32> = steps(-SHIFT_RANGE, SHIFT_RANGE, coarse_shift);
    search(&scales, &shifts, &mut best);
    let (_, scale, shift) = best;
    let fine_scales = steps(
        scale - coarse_scale,
        scale + coarse_scale,
        coarse_scale / 4.0,
    );
    let fine_shifts = steps(
        shift - coarse_shift,
        shift + coarse_shift,
        coarse_shift / 4.0,
    );
    search(&fine_scales, &fine_shifts, &mut best);
    (best.1, best.2)
}

/// The mean absolute difference of `b` and `a` warped onto it, per channel, over the
/// overlap (infinite when the overlap is too small).
fn pixel_cost(a: &Grid, b: &Grid, warp: Warp) -> f32 {
    // As [`warp_onto`] warps, summed as it goes (the polish calls this thousands of times
    // per pair: no warped grid is kept).
    let (w, h) = (b.w, b.h);
    let (xs, ys) = (taps_of(warp.x, w), taps_of(warp.y, h));
    let count = xs.len() * ys.len();
    if (count as f32) < MIN_OVERLAP * (w * h) as f32 {
        return f32::INFINITY;
    }
    let mut sum = 0.0_f32;
    for &(i, y0, y1, fy) in &ys {
        for &(j, x0, x1, fx) in &xs {
            for c in 0..3 {
                let value = bilinear(a, c, (y0, y1, fy), (x0, x1, fx));
                sum += (value - b.rgb[(i * w + j) * 3 + c]).abs();
            }
        }
    }
    sum / count as f32
}

/// `a` warped onto `b`'s grid (bilinear), and which cells of `b` it covers.
fn warp_onto(a: &Grid, b: &Grid, warp: Warp) -> (Vec<f32>, Vec<bool>) {
    let (w, h) = (b.w, b.h);
    let n = w * h;
    let xs = taps_of(warp.x, w);
    let mut warped = vec![0.0_f32; n * 3];
    let mut valid = vec![false; n];
    for (i, y0, y1, fy) in taps_of(warp.y, h) {
        for &(j, x0, x1, fx) in &xs {
            for c in 0..3 {
                warped[(i * w + j) * 3 + c] = bilinear(a, c, (y0, y1, fy), (x0, x1, fx));
            }
            valid[i * w + j] = true;
        }
    }
    (warped, valid)
}

/// Channel `c` of `a` read between rows `y0`, `y1` and columns `x0`, `x1` with the
/// weights `fy`, `fx` of the second (a tap of [`taps_of`] per axis).
fn bilinear(
    a: &Grid,
    c: usize,
    (y0, y1, fy): (usize, usize, f32),
    (x0, x1, fx): (usize, usize, f32),
) -> f32 {
    let at = |yy: usize, xx: usize| a.rgb[(yy * a.w + xx) * 3 + c];
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
    let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// `warp` polished on the pixels themselves: coordinate descent on the mean colour
/// distance of the overlap (profiles blur two axes into one; this does not).
fn refine(a: &Grid, b: &Grid, warp: Warp) -> Warp {
    refine_by(a, b, warp, (0.01, 0.5, 3))
}

/// [`refine`] with steps of `scale_step` in scale and `shift_cells` cells in shift, for at
/// most `rounds` rounds.
fn refine_by(
    a: &Grid,
    b: &Grid,
    mut warp: Warp,
    (scale_step, shift_cells, rounds): (f32, f32, usize),
) -> Warp {
    let cost = |warp: Warp| pixel_cost(a, b, warp);
    let mut best = cost(warp);
    let (shift_x, shift_y) = (shift_cells / b.w as f32, shift_cells / b.h as f32);
    for _ in 0..rounds {
        let mut moved = false;
        for (param, step) in [(0, scale_step), (1, shift_x), (2, scale_step), (3, shift_y)] {
            for sign in [-1.0, 1.0] {
                let mut trial = warp;
                let slot = match param {
                    0 => &mut trial.x.0,
                    1 => &mut trial.x.1,
                    2 => &mut trial.y.0,
                    _ => &mut trial.y.1,
                };
                *slot += sign * step;
                // Polishing stays where the alignment searched.
                if !admissible(trial.x) || !admissible(trial.y) {
                    continue;
                }
                let c = cost(trial);
                if c < best {
                    best = c;
                    warp = trial;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    warp
}

fn steps(from: f32, to: f32, step: f32) -> Vec<f32> {
    let n = ((to - from) / step).round() as usize;
    (0..=n).map(|i| from + i as f32 * step).collect()
}

/// Largest brightness gain between copies (and its inverse the smallest): ±8 % with room
/// for rounding, and no more, so a change of skin tone or paint is not "brightness".
const MAX_GAIN: f64 = 1.10;
/// Largest brightness offset between copies, in levels.
const MAX_OFFSET: f64 = 6.0;
/// Largest change of a full-scale value between copies, in levels (gain and offset
/// together).
const MAX_TOP_CHANGE: f64 = 24.0;

/// The share of the local contrast (the colour range of a 3×3 neighbourhood, the lower
/// of the two pictures') forgiven at each pixel.
const EDGE_TOLERANCE: f32 = 0.15;

/// Values at or beyond these are clipped: they say nothing about a brightness gain.
const CLIPPED: (f32, f32) = (4.0, 251.0);

/// The block and mean differences of `b` against `a` warped onto `b`'s grid.
fn evaluate(a: &Grid, b: &Grid, warp: Warp) -> Comparison {
    let (w, h) = (b.w, b.h);
    let n = w * h;
    let (warped, valid) = warp_onto(a, b, warp);
    let count = valid.iter().filter(|&&v| v).count();
    if (count as f32) < MIN_OVERLAP * n as f32 {
        return Comparison::REJECTED;
    }
    // One gain and offset for all channels (brightness), least squares over the values
    // clipped in neither image, bounded; the prediction is clipped as a brightened image is.
    // Per value, the brightest of its channel in the 3×3 neighbourhood, of either picture:
    // values mixed (by the smoothing) with one a gain may have clipped say nothing exact
    // about the gain.
    // (Over the overlap for `a`: its cells outside it are 0 and never the brightest.)
    let (low_a, top_a) = neighbourhood(&warped, w, h, |q| valid[q]);
    let (_, top_b) = neighbourhood(&b.rgb, w, h, |_| true);
    let (mut sa, mut sb, mut saa, mut sab, mut m) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64, 0.0);
    for p in (0..n).filter(|&p| valid[p]) {
        for c in 0..3 {
            let k = p * 3 + c;
            let (va, vb) = (warped[k], b.rgb[k]);
            if va <= CLIPPED.0
                || vb <= CLIPPED.0
                || top_a[k] * MAX_GAIN as f32 >= CLIPPED.1
                || top_b[k] * MAX_GAIN as f32 >= CLIPPED.1
            {
                continue;
            }
            let (va, vb) = (f64::from(va), f64::from(vb));
            sa += va;
            sb += vb;
            saa += va * va;
            sab += va * vb;
            m += 1.0;
        }
    }
    // Candidates: the least-squares gain and offset, and the least-squares gain alone (a
    // brightness change is a pure gain; the two-parameter fit is ill-posed when the
    // unclipped values span a narrow range). The one that predicts all values best wins.
    let bounded = |gain: f64, offset: f64| -> (f32, f32) {
        let gain = gain.clamp(MAX_GAIN.recip(), MAX_GAIN);
        let offset = offset.clamp(-MAX_OFFSET, MAX_OFFSET);
        // At most ±9 % of full scale at the top of the range, whatever the mix.
        let top = 255.0 * (gain - 1.0);
        (
            gain as f32,
            offset.clamp(-MAX_TOP_CHANGE - top, MAX_TOP_CHANGE - top) as f32,
        )
    };
    let mut candidates = vec![(1.0_f32, 0.0_f32)];
    if m >= 16.0 {
        let var = saa / m - (sa / m).powi(2);
        let cov = sab / m - (sa / m) * (sb / m);
        let gain = if var > 1e-6 { cov / var } else { 1.0 };
        candidates.push(bounded(gain, sb / m - gain * sa / m));
        if saa > 1e-6 {
            candidates.push(bounded(sab / saa, 0.0));
        }
    }
    let interval = |v: f32, gain: f32, offset: f32| -> (f32, f32) {
        let predicted = (v * gain + offset).clamp(0.0, 255.0);
        if v >= CLIPPED.1 {
            ((255.0 * gain + offset).min(predicted).min(255.0), 255.0)
        } else if v <= CLIPPED.0 {
            (0.0, predicted)
        } else {
            (predicted, predicted)
        }
    };
    let misfit = |&(gain, offset): &(f32, f32)| -> f32 {
        (0..n)
            .filter(|&p| valid[p])
            .flat_map(|p| p * 3..p * 3 + 3)
            .map(|k| {
                let (lo, hi) = interval(warped[k], gain, offset);
                let v = b.rgb[k];
                (lo - v).max(v - hi).max(0.0).powi(2)
            })
            .sum()
    };
    let (gain, offset) = candidates
        .iter()
        .map(|c| (misfit(c), *c))
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .map_or((1.0, 0.0), |(_, c)| c);
    // The prediction of each value as an interval: a clipped value could have been
    // anything beyond the clip before the gain.
    let mut low = vec![0.0_f32; n * 3];
    let mut high = vec![0.0_f32; n * 3];
    for ((v, lo), hi) in warped.iter().zip(&mut low).zip(&mut high) {
        (*lo, *hi) = interval(*v, gain, offset);
    }
    // A gain clips the brightest values (brightening: those it pushes past white;
    // darkening the copy of a brightened picture: those already white) before the pictures
    // were smoothed, so next to such a value a mixed value may have taken anything between
    // none and all of the gain.
    if (gain - 1.0).abs() > f32::EPSILON {
        for k in 0..n * 3 {
            if top_a[k] >= CLIPPED.1 || top_a[k] * gain + offset > 255.0 {
                low[k] = low[k].min(warped[k]);
                high[k] = high[k].max(warped[k]);
            }
        }
    }
    // Per pixel: distance to the best match within one pixel, both ways.
    // Distance from `b`'s pixel `at_b` to the predicted interval of pixel `at_a`.
    // Squared: the root is taken once, of the smallest (the root is monotonic and rounded
    // correctly, so the result is the same to the bit).
    let squared_distance = |at_b: usize, at_a: usize| -> f32 {
        let mut sum = 0.0;
        for c in 0..3 {
            let v = b.rgb[at_b * 3 + c];
            let d = (low[at_a * 3 + c] - v).max(v - high[at_a * 3 + c]).max(0.0);
            sum += d * d;
        }
        sum
    };
    // Each distance serves twice: `b`'s pixel p against `a`'s neighbour q is p's forward
    // candidate and q's backward one (the neighbourhood is symmetric).
    let mut forward = vec![f32::INFINITY; n];
    let mut backward = vec![f32::INFINITY; n];
    for i in 0..h {
        for j in 0..w {
            let p = i * w + j;
            if !valid[p] {
                continue;
            }
            for qi in i.saturating_sub(1)..=(i + 1).min(h - 1) {
                for qj in j.saturating_sub(1)..=(j + 1).min(w - 1) {
                    let q = qi * w + qj;
                    if valid[q] {
                        let d = squared_distance(p, q);
                        forward[p] = forward[p].min(d);
                        backward[q] = backward[q].min(d);
                    }
                }
            }
        }
    }
    for d in forward.iter_mut().chain(&mut backward) {
        *d = d.sqrt();
    }
    // Compression and resampling err most at edges, in proportion to their contrast: an
    // edge both pictures have forgives that share of the error there.
    let range_a = contrast(&low_a, &top_a);
    let range_b = {
        let (low_b, high_b) = neighbourhood(&b.rgb, w, h, |q| valid[q]);
        contrast(&low_b, &high_b)
    };
    let mut errors = vec![f32::NAN; n];
    let mut total = 0.0_f32;
    for p in (0..n).filter(|&p| valid[p]) {
        let e =
            (forward[p].max(backward[p]) - EDGE_TOLERANCE * range_a[p].min(range_b[p])).max(0.0);
        total += e;
        errors[p] = e;
    }
    let difference = worst_block(&errors, w, h, BLOCKS);
    let fine = worst_block(&errors, w, h, FINE_BLOCKS);
    Comparison {
        difference,
        mean: total / count as f32,
        fine,
    }
}

/// Per value (cell and channel), the smallest and largest value of its channel over the
/// cell's 3×3 neighbourhood, counting the cells `include` accepts. Along rows first, then
/// along columns: the extreme of a 3×3 block is the extreme of its three rows' extremes
/// (minimum and maximum are exact, so this is the same to the bit as visiting all nine).
fn neighbourhood(
    rgb: &[f32],
    w: usize,
    h: usize,
    include: impl Fn(usize) -> bool,
) -> (Vec<f32>, Vec<f32>) {
    let n = w * h;
    // Excluded cells hold the neutral value of each extreme.
    let mut low_in = vec![f32::INFINITY; n * 3];
    let mut high_in = vec![f32::NEG_INFINITY; n * 3];
    for q in (0..n).filter(|&q| include(q)) {
        low_in[q * 3..q * 3 + 3].copy_from_slice(&rgb[q * 3..q * 3 + 3]);
        high_in[q * 3..q * 3 + 3].copy_from_slice(&rgb[q * 3..q * 3 + 3]);
    }
    let along_rows = |values: &[f32], pick: fn(f32, f32) -> f32| -> Vec<f32> {
        let mut out = values.to_vec();
        for row in 0..h {
            let line = &values[row * w * 3..(row + 1) * w * 3];
            let out = &mut out[row * w * 3..(row + 1) * w * 3];
            for k in 3..w * 3 {
                out[k] = pick(out[k], line[k - 3]);
            }
            for k in 0..(w * 3).saturating_sub(3) {
                out[k] = pick(out[k], line[k + 3]);
            }
        }
        out
    };
    let along_columns = |values: &[f32], pick: fn(f32, f32) -> f32| -> Vec<f32> {
        let mut out = values.to_vec();
        let line = w * 3;
        for row in 0..h {
            let (i0, i1) = (row.saturating_sub(1), (row + 1).min(h - 1));
            for other in [i0, i1].into_iter().filter(|&i| i != row) {
                for k in 0..line {
                    out[row * line + k] = pick(out[row * line + k], values[other * line + k]);
                }
            }
        }
        out
    };
    let low = along_columns(&along_rows(&low_in, f32::min), f32::min);
    let high = along_columns(&along_rows(&high_in, f32::max), f32::max);
    (low, high)
}

/// Per cell, the local contrast: the distance of its neighbourhood's channel-wise minimum
/// and maximum (see [`neighbourhood`]).
fn contrast(low: &[f32], high: &[f32]) -> Vec<f32> {
    low.chunks_exact(3)
        .zip(high.chunks_exact(3))
        .map(|(lo, hi)| {
            (0..3)
                .map(|c| (hi[c] - lo[c]).max(0.0).powi(2))
                .sum::<f32>()
                .sqrt()
        })
        .collect()
}

/// The largest mean of `errors` (NaN = outside the overlap) over a grid of `blocks` ×
/// `blocks`, counting blocks at least half inside the overlap.
fn worst_block(errors: &[f32], w: usize, h: usize, blocks: usize) -> f32 {
    let (block_w, block_h) = (w.div_ceil(blocks), h.div_ceil(blocks));
    let (blocks_x, blocks_y) = (w.div_ceil(block_w), h.div_ceil(block_h));
    let mut sum = vec![0.0_f32; blocks_x * blocks_y];
    let mut count = vec![0_u32; blocks_x * blocks_y];
    for i in 0..h {
        for j in 0..w {
            let e = errors[i * w + j];
            if !e.is_nan() {
                let k = (i / block_h) * blocks_x + j / block_w;
                sum[k] += e;
                count[k] += 1;
            }
        }
    }
    let least = (block_w * block_h / 2).max(1) as u32;
    sum.iter()
        .zip(&count)
        .filter(|&(_, &c)| c >= least)
        .map(|(&s, &c)| s / c as f32)
        .fold(0.0_f32, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`neighbourhood`] the plain way (all nine cells visited): what it must equal.
    fn plain_neighbourhood(
        rgb: &[f32],
        w: usize,
        h: usize,
        include: impl Fn(usize) -> bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut low = vec![f32::INFINITY; w * h * 3];
        let mut high = vec![f32::NEG_INFINITY; w * h * 3];
        for i in 0..h {
            for j in 0..w {
                let p = i * w + j;
                for qi in i.saturating_sub(1)..=(i + 1).min(h - 1) {
                    for qj in j.saturating_sub(1)..=(j + 1).min(w - 1) {
                        let q = qi * w + qj;
                        if include(q) {
                            for c in 0..3 {
                                low[p * 3 + c] = low[p * 3 + c].min(rgb[q * 3 + c]);
                                high[p * 3 + c] = high[p * 3 + c].max(rgb[q * 3 + c]);
                            }
                        }
                    }
                }
            }
        }
        (low, high)
    }

    #[test]
    fn separable_neighbourhood_equals_the_plain_one() {
        let mut rng = crate::rng::SplitMix64::new(99, 0);
        let mut next = move || (rng.next_u64() >> 33) as usize;
        for _ in 0..100 {
            let (w, h) = (1 + next() % 20, 1 + next() % 20);
            let rgb: Vec<f32> = (0..w * h * 3)
                .map(|_| (next() % 2560) as f32 / 10.0)
                .collect();
            let mask: Vec<bool> = (0..w * h).map(|_| next() % 4 != 0).collect();
            assert_eq!(
                neighbourhood(&rgb, w, h, |q| mask[q]),
                plain_neighbourhood(&rgb, w, h, |q| mask[q]),
                "{w}×{h}"
            );
        }
    }

    #[test]
    #[ignore = "a probe for people: CURATE_PROBE=a.png,b.png"]
    fn probe() {
        let paths = std::env::var("CURATE_PROBE").expect("CURATE_PROBE=a,b");
        let (a, b) = paths.split_once(',').expect("two paths");
        let load = |p: &str| {
            let image = image::open(p).expect("image").to_rgb8();
            let (w, h) = image.dimensions();
            let (tw, th) = fit_within(w, h, 128);
            Picture::new(&resize_area(&image, tw, th), w, h)
        };
        let (pa, pb) = (load(a), load(b));
        let (w, h) = (pa.width.min(pb.width), pa.height.min(pb.height));
        let ga = Grid::of(&pa, w, h).smoothed();
        let gb = Grid::of(&pb, w, h).smoothed();
        eprintln!("identity {:?}", evaluate(&ga, &gb, Warp::IDENTITY));
        let warp = Warp {
            x: align_axis(&ga.profile(Axis::X), &gb.profile(Axis::X)),
            y: align_axis(&ga.profile(Axis::Y), &gb.profile(Axis::Y)),
        };
        eprintln!("{warp:?} {:?}", evaluate(&ga, &gb, warp));
        let refined = refine(&ga, &gb, warp);
        eprintln!("refined {refined:?} {:?}", evaluate(&ga, &gb, refined));
        if let Ok(w) = std::env::var("CURATE_PROBE_WARP") {
            let v: Vec<f32> = w.split(',').map(|s| s.parse().expect("number")).collect();
            let warp = Warp {
                x: (v[0], v[1]),
                y: (v[2], v[3]),
            };
            eprintln!("given {warp:?} {:?}", evaluate(&ga, &gb, warp));
            let polished = refine(&ga, &gb, warp);
            eprintln!(
                "given+refined {polished:?} {:?}",
                evaluate(&ga, &gb, polished)
            );
        }
        let save = |g: &Grid, name: &str| {
            let bytes: Vec<u8> = g.rgb.iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
            RgbImage::from_raw(g.w as u32, g.h as u32, bytes)
                .expect("size")
                .save(format!("/tmp/probe-{name}.png"))
                .ok();
        };
        save(&ga, "a");
        save(&gb, "b");
        eprintln!("compare {:?}", compare(&pa, &pb));
    }
    use image::Rgb;

    #[test]
    fn one_alignment_serves_a_transparent_copy_over_black_and_over_white() {
        // tests/data/emoji/README.md: a Pillow-made crop of a transparent emoji, brightened.
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/emoji");
        let views = |name: &str| {
            let rgba = image::open(data.join(name)).expect("image").to_rgba8();
            let (w, h) = rgba.dimensions();
            let over = |background: f32| {
                let flat = RgbImage::from_fn(w, h, |x, y| {
                    let [r, g, b, a] = rgba.get_pixel(x, y).0;
                    let a = f32::from(a) / 255.0;
                    Rgb([r, g, b]
                        .map(|v| (f32::from(v) * a + background * (1.0 - a)).round() as u8))
                });
                let (tw, th) = fit_within(w, h, 128);
                Picture::new(&resize_area(&flat, tw, th), w, h)
            };
            [over(0.0), over(255.0)]
        };
        let [black_a, white_a] = views("bust-200.png");
        let [black_b, white_b] = views("bust-200-crop-brighter.png");
        let line = DEFAULT_MAX_DIFFERENCE;
        // Each background aligned on its own by the profiles (as two views are): over
        // black the copy is missed.
        assert!(!align(&black_a, &black_b, false).0.0.is_copy(line));
        assert!(align(&white_a, &white_b, false).0.0.is_copy(line));
        let (joint, window) = compare_two_views([(&black_a, &black_b), (&white_a, &white_b)]);
        assert!(joint.is_copy(line), "{joint:?}");
        assert!(window.is_some());
    }

    #[test]
    fn polishing_an_alignment_stays_within_the_searched_range() {
        // A disc and one a third larger: the best fit (scale 0.77) lies beyond the largest
        // crop a copy may have; polishing from the edge of the range must not reach it.
        let disc = |r: f32| {
            RgbImage::from_fn(48, 48, |x, y| {
                let (u, v) = (x as f32 / 48.0 - 0.5, y as f32 / 48.0 - 0.5);
                if u * u + v * v < r * r {
                    Rgb([250, 200, 80])
                } else {
                    Rgb([0, 0, 0])
                }
            })
        };
        let (a, b) = (
            Picture::new(&disc(0.30), 48, 48),
            Picture::new(&disc(0.39), 48, 48),
        );
        let (ga, gb) = (
            Grid::of(&a, 48, 48).smoothed(),
            Grid::of(&b, 48, 48).smoothed(),
        );
        let start = Warp {
            x: (0.8, 0.1),
            y: (0.8, 0.1),
        };
        let polished = refine(&ga, &gb, start);
        assert!(
            admissible(polished.x) && admissible(polished.y),
            "{polished:?}"
        );
        assert!(admissible(start.x) && !admissible((0.77, 0.115)));
    }

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

    /// Patches of the real photos in `tests/data/efficientnet` (scikit-image's samples).
    fn photo_patches() -> Vec<RgbImage> {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/efficientnet");
        let mut out = Vec::new();
        for name in ["coffee.png", "chelsea.png", "rocket.png"] {
            let photo = image::open(data.join(name)).expect("photo").to_rgb8();
            let (w, h) = photo.dimensions();
            for i in 0..6 {
                for j in 0..4 {
                    let (x, y) = (i * (w - 126) / 5, j * (h - 88) / 3);
                    out.push(image::imageops::crop_imm(&photo, x, y, 126, 88).to_image());
                }
            }
        }
        out
    }

    #[test]
    fn photo_patches_cut_on_all_four_borders_are_aligned() {
        // Smooth patches cut on every border: a crop on one axis changes the other axis's
        // profile, which once misled the alignment into the opposite direction (and the
        // copy, compared out of place, was lost).
        let mut state = 0x2545_f491_u32;
        let mut border = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            0.04 + 0.04 * (state >> 8) as f32 / (1 << 24) as f32
        };
        let mut lost = Vec::new();
        for (i, patch) in photo_patches().iter().enumerate() {
            let [l, t, r, b] = [border(), border(), border(), border()];
            let copy = crop_back(patch, l, t, r, b);
            let c = compare(&pic(patch), &pic(&copy));
            // At the copy's window a patch differs by a few levels; elsewhere by tens.
            if c.difference > 2.0 * DEFAULT_MAX_DIFFERENCE {
                lost.push((i, c));
            }
        }
        assert!(lost.is_empty(), "{lost:?}");
    }

    #[test]
    fn photo_patches_a_quarter_apart_are_not_copies() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/efficientnet");
        let mut copies = Vec::new();
        for name in ["coffee.png", "chelsea.png", "rocket.png"] {
            let photo = image::open(data.join(name)).expect("photo").to_rgb8();
            for (x, y) in [(10, 10), (80, 56), (140, 100)] {
                let patch = image::imageops::crop_imm(&photo, x, y, 126, 88).to_image();
                let moved = image::imageops::crop_imm(&photo, x + 32, y, 126, 88).to_image();
                let c = compare(&pic(&patch), &pic(&moved));
                if c.is_copy(DEFAULT_MAX_DIFFERENCE) {
                    copies.push((name, x, y, c));
                }
            }
        }
        assert!(copies.is_empty(), "{copies:?}");
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
        assert!(compare(&pic(&a), &pic(&b)).difference.is_infinite());
    }
}
