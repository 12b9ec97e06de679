//! Rust mirrors of the structs in `shaders/map.wgsl`. Their layouts must match WGSL's
//! (16-byte aligned uniform, `vec2<f32>` aligned to 8); the sizes are asserted at compile
//! time and the shader is validated by naga in `tests/shaders.rs`.

use bytemuck::{Pod, Zeroable};

bitflags::bitflags! {
    /// A point's state, one `u32` per point in the flags buffer (`flags` in WGSL, whose
    /// bit tests use these values).
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
    pub struct PointFlags: u32 {
        /// The point is selected.
        const SELECTED = 1;
        /// The image is dropped (not in the keep-list).
        const DROPPED = 2;
        /// Not drawn (filtered out).
        const HIDDEN = 4;
    }
}

/// Camera option: draw dropped points dimmed.
pub const OPTION_DIM_DROPPED: u32 = 1;

/// No point is hovered.
pub const NO_POINT: u32 = u32::MAX;

/// The camera uniform (`Camera` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct CameraUniform {
    /// Map coordinates at the centre of the viewport.
    pub centre: [f32; 2],
    /// Clip-space units per map unit (y flipped: map y grows upwards on screen).
    pub scale: [f32; 2],
    /// Viewport size in physical pixels.
    pub viewport: [f32; 2],
    /// Point diameter in physical pixels.
    pub point_px: f32,
    /// Opacity of one point (density when zoomed out).
    pub alpha: f32,
    /// Longest side of a sprite in physical pixels.
    pub sprite_px: f32,
    /// Hovered point index or [`NO_POINT`].
    pub hovered: u32,
    /// [`OPTION_DIM_DROPPED`] and future bits.
    pub options: u32,
    /// Padding to 48 bytes (unused).
    pub pad: u32,
}

const _: () = assert!(std::mem::size_of::<CameraUniform>() == 48);

/// One thumbnail sprite (`Sprite` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct SpriteInstance {
    /// Map position.
    pub centre: [f32; 2],
    /// Fraction of the sprite box the image covers in x and y.
    pub extent: [f32; 2],
    /// Atlas cell.
    pub cell: u32,
    /// Point flags.
    pub flags: u32,
    /// Border colour, packed RGBA8 (red in the low byte).
    pub border: u32,
    /// Longest side of the thumbnail as a fraction of [`CELL_SIDE`].
    pub uv_scale: f32,
}

const _: () = assert!(std::mem::size_of::<SpriteInstance>() == 32);

/// Side of one atlas cell in pixels (the thumbnail size of the cache).
pub const CELL_SIDE: u32 = 128;
/// Cells per atlas side (the WGSL constant `CELLS_PER_SIDE`).
pub const CELLS_PER_SIDE: u32 = 16;
/// Atlas side in pixels.
pub const ATLAS_SIDE: u32 = CELL_SIDE * CELLS_PER_SIDE;
/// Thumbnails the atlas holds at once (and the most sprites drawn in one frame).
pub const ATLAS_CELLS: u32 = CELLS_PER_SIDE * CELLS_PER_SIDE;

/// Packs an sRGB colour with alpha into the shaders' `u32` layout.
#[must_use]
pub const fn pack_rgba(r: u8, g: u8, b: u8, a: u8) -> u32 {
    r as u32 | (g as u32) << 8 | (b as u32) << 16 | (a as u32) << 24
}
