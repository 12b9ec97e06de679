//! Drawing the map on the GPU: WGSL shaders in `shaders/`, their Rust mirrors in [`gpu`],
//! the renderer in [`map`], colour maps in [`colormap`]. Nothing here depends on egui; the
//! app reaches the renderer through one paint callback (`crate::ui::map_view`).

pub mod colormap;
pub mod gpu;
pub mod map;
