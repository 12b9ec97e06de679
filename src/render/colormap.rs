//! Colour maps for the map and its legend: viridis (perceptually uniform, for scores) and a
//! categorical palette (for duplicate groups), both as packed RGBA8 for the shaders.

use super::gpu::pack_rgba;

/// Viridis at `t` in 0..=1, as sRGB bytes (polynomial fit of matplotlib's table, within
/// 5/255 of it over the range).
#[must_use]
pub fn viridis(t: f32) -> [u8; 3] {
    const C: [[f32; 3]; 7] = [
        [0.277_727_33, 0.005_407_344_5, 0.334_099_8],
        [0.105_093_04, 1.404_613_5, 1.384_590_2],
        [-0.330_861_83, 0.214_847_56, 0.095_095_16],
        [-4.634_230_5, -5.799_101, -19.332_441],
        [6.228_27, 14.179_933, 56.690_55],
        [4.776_385, -13.745_145, -65.353_03],
        [-5.435_456, 4.645_852_6, 26.312_435],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut out = [0_u8; 3];
    for (channel, value) in out.iter_mut().enumerate() {
        let mut v = C[6][channel];
        for k in (0..6).rev() {
            v = C[k][channel] + t * v;
        }
        *value = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    out
}

/// Viridis packed with alpha.
#[must_use]
pub fn viridis_packed(t: f32, alpha: u8) -> u32 {
    let [r, g, b] = viridis(t);
    pack_rgba(r, g, b, alpha)
}

/// 20 well-separated colours (Tableau 20 order, bright first).
pub const CATEGORICAL: [[u8; 3]; 20] = [
    [78, 121, 167],
    [242, 142, 43],
    [225, 87, 89],
    [118, 183, 178],
    [89, 161, 79],
    [237, 201, 72],
    [176, 122, 161],
    [255, 157, 167],
    [156, 117, 95],
    [186, 176, 172],
    [160, 203, 232],
    [255, 190, 125],
    [140, 209, 125],
    [182, 153, 45],
    [73, 152, 148],
    [134, 188, 182],
    [250, 191, 210],
    [212, 166, 200],
    [215, 181, 166],
    [121, 112, 110],
];

/// The palette colour of category `id` (ids are scattered so neighbouring groups differ).
#[must_use]
pub fn category(id: u64) -> [u8; 3] {
    let mixed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
    CATEGORICAL[(mixed as usize + id as usize) % CATEGORICAL.len()]
}

/// Packs a colour with alpha.
#[must_use]
pub fn packed([r, g, b]: [u8; 3], alpha: u8) -> u32 {
    pack_rgba(r, g, b, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_matches_matplotlib_at_the_ends_and_middle() {
        // matplotlib: viridis(0) = #440154, viridis(0.5) = #21918c, viridis(1) = #fde725.
        let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 5);
        assert!(
            close(viridis(0.0), [0x44, 0x01, 0x54]),
            "{:?}",
            viridis(0.0)
        );
        assert!(
            close(viridis(0.5), [0x21, 0x91, 0x8c]),
            "{:?}",
            viridis(0.5)
        );
        assert!(
            close(viridis(1.0), [0xfd, 0xe7, 0x25]),
            "{:?}",
            viridis(1.0)
        );
        assert_eq!(viridis(f32::NAN), viridis(0.0));
    }

    #[test]
    fn viridis_lightness_increases() {
        let luma = |[r, g, b]: [u8; 3]| 0.2126 * r as f32 + 0.7152 * g as f32 + 0.0722 * b as f32;
        let mut last = -1.0;
        for step in 0..=20 {
            let l = luma(viridis(step as f32 / 20.0));
            assert!(l > last, "not monotone at {step}");
            last = l;
        }
    }
}
