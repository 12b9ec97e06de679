// The map: every image as a point, and thumbnails as sprites when zoomed in.
//
// Points come from storage buffers uploaded once (positions, packed colours, state flags);
// per frame only the camera uniform changes. Each point is an instanced quad of six
// vertices generated from `vertex_index`, so no vertex buffer is needed.
//
// The Rust mirrors of these structs are in `src/render/gpu.rs` (sizes asserted there).

struct Camera {
    // Map coordinates at the centre of the viewport.
    centre: vec2<f32>,
    // Clip-space units per map unit, x and y (y already flipped).
    scale: vec2<f32>,
    // Viewport size in physical pixels.
    viewport: vec2<f32>,
    // Point diameter in physical pixels.
    point_px: f32,
    // Opacity of one point: low when many points overlap (density), 1 when zoomed in.
    alpha: f32,
    // Longest side of a sprite in physical pixels.
    sprite_px: f32,
    // The hovered point, or 0xffffffff.
    hovered: u32,
    // Bit 0: dim dropped points.
    options: u32,
    _pad: u32,
};

// Flag bits, mirrored in `src/render/gpu.rs`.
const SELECTED: u32 = 1u;
const DROPPED: u32 = 2u;
const HIDDEN: u32 = 4u;

const OPTION_DIM_DROPPED: u32 = 1u;

@group(0) @binding(0) var<uniform> camera: Camera;
@group(0) @binding(1) var<storage, read> positions: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> colours: array<u32>;
@group(0) @binding(3) var<storage, read> flags: array<u32>;

struct PointOut {
    @builtin(position) clip: vec4<f32>,
    // -1..1 across the quad.
    @location(0) local: vec2<f32>,
    // Premultiplied colour.
    @location(1) colour: vec4<f32>,
    // Ring colour strength (selection / hover).
    @location(2) ring: f32,
    // Quad diameter in pixels, for anti-aliasing.
    @location(3) diameter: f32,
};

fn corner(vertex: u32) -> vec2<f32> {
    // Two triangles: (0,1,2) and (0,2,3) of the quad (-1,-1) (1,-1) (1,1) (-1,1).
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0),
        vec2<f32>(1.0, -1.0),
        vec2<f32>(1.0, 1.0),
        vec2<f32>(-1.0, -1.0),
        vec2<f32>(1.0, 1.0),
        vec2<f32>(-1.0, 1.0),
    );
    return corners[vertex % 6u];
}

fn unpack_colour(packed: u32) -> vec4<f32> {
    // RGBA8, red in the lowest byte (sRGB-encoded values, as egui expects).
    return vec4<f32>(
        f32(packed & 0xffu),
        f32((packed >> 8u) & 0xffu),
        f32((packed >> 16u) & 0xffu),
        f32((packed >> 24u) & 0xffu),
    ) / 255.0;
}

fn to_clip(map: vec2<f32>) -> vec2<f32> {
    return (map - camera.centre) * camera.scale;
}

@vertex
fn vs_points(@builtin(vertex_index) vertex: u32, @builtin(instance_index) point: u32) -> PointOut {
    var out: PointOut;
    let state = flags[point];
    if (state & HIDDEN) != 0u {
        // Outside the clip volume: the rasteriser drops the triangle.
        out.clip = vec4<f32>(4.0, 4.0, 4.0, 1.0);
        return out;
    }
    let hovered = point == camera.hovered;
    var diameter = camera.point_px;
    var colour = unpack_colour(colours[point]);
    var alpha = camera.alpha * colour.a;
    var ring = 0.0;
    if (state & SELECTED) != 0u {
        diameter = max(diameter * 1.5, 5.0);
        alpha = max(alpha, 0.85);
        ring = 1.0;
    }
    if (state & DROPPED) != 0u && (camera.options & OPTION_DIM_DROPPED) != 0u {
        alpha = alpha * 0.35;
    }
    if hovered {
        diameter = max(diameter * 2.5, 12.0);
        alpha = 1.0;
        ring = 1.0;
    }
    let c = corner(vertex);
    let centre = to_clip(positions[point]);
    // One pixel is 2 / viewport clip units, so a diameter of d pixels spans d / viewport
    // clip units from the centre to an edge.
    out.clip = vec4<f32>(centre + c * diameter / camera.viewport, 0.0, 1.0);
    out.local = c;
    out.colour = vec4<f32>(colour.rgb * alpha, alpha);
    out.ring = ring;
    out.diameter = diameter;
    return out;
}

@fragment
fn fs_points(in: PointOut) -> @location(0) vec4<f32> {
    let r = length(in.local);
    // Anti-aliased disc: one pixel of soft edge. Tiny points stay squares (all coverage).
    let pixel = 2.0 / max(in.diameter, 1.0);
    var coverage = 1.0;
    if in.diameter >= 3.0 {
        coverage = clamp((1.0 - r) / pixel, 0.0, 1.0);
    }
    if coverage <= 0.0 {
        discard;
    }
    var colour = in.colour;
    if in.ring > 0.0 && r > 1.0 - 3.0 * pixel {
        // A white ring marks selected and hovered points.
        colour = vec4<f32>(1.0, 1.0, 1.0, 1.0);
    }
    return colour * coverage;
}

// ---- Sprites: thumbnails from the atlas, drawn over the points when zoomed in ----

struct Sprite {
    // Map position of the image.
    centre: vec2<f32>,
    // Fraction of the sprite box the image covers in x and y (keeps the aspect ratio).
    extent: vec2<f32>,
    // Atlas cell index.
    cell: u32,
    // Point flags (selected, dropped).
    flags: u32,
    // Border colour (packed like the point colours): the colour mode's colour.
    border: u32,
    // Longest side of the thumbnail as a fraction of the cell side.
    uv_scale: f32,
};

// The atlas is a square of `cells_per_side` × `cells_per_side` cells.
const CELLS_PER_SIDE: f32 = 16.0;

@group(0) @binding(4) var<storage, read> sprites: array<Sprite>;
@group(0) @binding(5) var atlas: texture_2d<f32>;
@group(0) @binding(6) var atlas_sampler: sampler;

struct SpriteOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) local: vec2<f32>,
    @location(2) @interpolate(flat) state: u32,
    @location(3) border: vec4<f32>,
    @location(4) size_px: vec2<f32>,
};

@vertex
fn vs_sprites(@builtin(vertex_index) vertex: u32, @builtin(instance_index) index: u32) -> SpriteOut {
    let sprite = sprites[index];
    let c = corner(vertex);
    let half_px = 0.5 * camera.sprite_px * sprite.extent;
    var out: SpriteOut;
    let centre = to_clip(sprite.centre);
    out.clip = vec4<f32>(centre + c * 2.0 * half_px / camera.viewport, 0.0, 1.0);
    // Texture coordinates inside the cell: the image sits in the top-left of its cell,
    // `extent` of it in each direction.
    let cell = vec2<f32>(f32(sprite.cell % 16u), f32(sprite.cell / 16u));
    let inside = vec2<f32>(c.x * 0.5 + 0.5, 0.5 - c.y * 0.5) * sprite.extent * sprite.uv_scale;
    out.uv = (cell + inside) / CELLS_PER_SIDE;
    out.local = c;
    out.state = sprite.flags;
    out.border = unpack_colour(sprite.border);
    out.size_px = 2.0 * half_px;
    return out;
}

@fragment
fn fs_sprites(in: SpriteOut) -> @location(0) vec4<f32> {
    var colour = textureSample(atlas, atlas_sampler, in.uv);
    // Border width in pixels: 4 when selected, 2 otherwise.
    var width = 2.0;
    if (in.state & SELECTED) != 0u {
        width = 4.0;
    }
    let from_edge = (vec2<f32>(1.0) - abs(in.local)) * 0.5 * in.size_px;
    if min(from_edge.x, from_edge.y) < width {
        if (in.state & SELECTED) != 0u {
            colour = vec4<f32>(1.0, 1.0, 1.0, 1.0);
        } else {
            colour = vec4<f32>(in.border.rgb, 1.0);
        }
    } else if (in.state & DROPPED) != 0u && (camera.options & OPTION_DIM_DROPPED) != 0u {
        colour = vec4<f32>(colour.rgb * 0.35, 1.0);
    }
    return colour;
}
