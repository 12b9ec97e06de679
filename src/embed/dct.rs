//! The 32×32 two-dimensional DCT-II shared by the perceptual hash and the built-in features.

use std::sync::OnceLock;

/// Side of the DCT input.
pub const N: usize = 32;

fn cosine_table() -> &'static [f32; N * N] {
    static TABLE: OnceLock<[f32; N * N]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0.0; N * N];
        for k in 0..N {
            for n in 0..N {
                let angle = std::f64::consts::PI / N as f64 * (n as f64 + 0.5) * k as f64;
                table[k * N + n] = angle.cos() as f32;
            }
        }
        table
    })
}

/// Unnormalised DCT-II of a row-major `N × N` block, along both axes (as
/// `scipy.fftpack.dct(dct(x, axis=0), axis=1)` up to a factor of 4).
#[must_use]
pub fn dct2(pixels: &[f32; N * N]) -> [f32; N * N] {
    let table = cosine_table();
    let mut rows = [0.0_f32; N * N];
    for y in 0..N {
        let row = &pixels[y * N..(y + 1) * N];
        for k in 0..N {
            let basis = &table[k * N..(k + 1) * N];
            rows[y * N + k] = row.iter().zip(basis).map(|(a, b)| a * b).sum();
        }
    }
    let mut out = [0.0_f32; N * N];
    for k in 0..N {
        let basis = &table[k * N..(k + 1) * N];
        for x in 0..N {
            out[k * N + x] = (0..N).map(|y| rows[y * N + x] * basis[y]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_block_has_only_dc() {
        let out = dct2(&[1.0; N * N]);
        assert!((out[0] - (N * N) as f32).abs() < 1e-2);
        assert!(out[1..].iter().all(|v| v.abs() < 1e-3));
    }
}
