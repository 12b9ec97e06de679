//! 64-bit DCT perceptual hash, as `imagehash.phash`: the 8×8 lowest frequencies of the 32×32
//! luma DCT, one bit per coefficient above their median.

use crate::embed::dct;

/// The hash of a 32×32 luma DCT (see [`crate::embed::builtin::luma32`]).
#[must_use]
pub fn phash(luma_dct: &[f32; dct::N * dct::N]) -> u64 {
    let mut low = [0.0_f32; 64];
    for v in 0..8 {
        for u in 0..8 {
            low[v * 8 + u] = luma_dct[v * dct::N + u];
        }
    }
    let mut sorted = low;
    sorted.sort_by(f32::total_cmp);
    let median = f32::midpoint(sorted[31], sorted[32]);
    low.iter()
        .fold(0_u64, |hash, &c| (hash << 1) | u64::from(c > median))
}

/// Number of differing bits.
#[must_use]
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}
