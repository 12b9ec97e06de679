//! Draws a known set of points offscreen with the real renderer and checks the pixels: the
//! right colours at the right places, nothing anywhere else, hidden points absent, selected
//! points ringed, and a thumbnail sprite where it belongs.

use std::sync::Arc;

use curate::render::gpu::{CameraUniform, NO_POINT, PointFlags, SpriteInstance, pack_rgba};
use curate::render::map::{self, CellUpload, MapFrame, MapRenderer, Versioned};

const SIDE: u32 = 200;

fn camera(point_px: f32) -> CameraUniform {
    CameraUniform {
        centre: [0.0, 0.0],
        // One map unit = half the view (0.5 clip units).
        scale: [0.5, 0.5],
        viewport: [SIDE as f32, SIDE as f32],
        point_px,
        alpha: 1.0,
        sprite_px: 40.0,
        hovered: NO_POINT,
        options: 0,
        pad: 0,
    }
}

/// Map (x, y) → pixel (column, row) for [`camera`].
fn pixel(x: f32, y: f32) -> (u32, u32) {
    let clip = [x * 0.5, y * 0.5];
    (
        ((clip[0] + 1.0) * 0.5 * SIDE as f32) as u32,
        ((1.0 - clip[1]) * 0.5 * SIDE as f32) as u32,
    )
}

#[test]
fn points_land_where_the_camera_puts_them_in_their_colours() {
    let (device, queue, info) = map::offscreen_device().expect(
        "a wgpu adapter is needed for this test (scripts/setup installs mesa-vulkan-drivers)",
    );
    eprintln!("rendering on {} ({:?})", info.name, info.backend);
    let mut renderer = MapRenderer::new(&device, map::OFFSCREEN_FORMAT, 1);
    let positions = vec![[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1.5, 1.5]];
    let red = pack_rgba(255, 0, 0, 255);
    let green = pack_rgba(0, 255, 0, 255);
    let blue = pack_rgba(0, 0, 255, 255);
    let colours = vec![red, green, blue, green, red];
    // Point 3 is hidden, point 4 selected (white ring).
    let flags = vec![
        PointFlags::empty(),
        PointFlags::empty(),
        PointFlags::empty(),
        PointFlags::HIDDEN,
        PointFlags::SELECTED,
    ];
    let mut frame = MapFrame {
        scene: 1,
        positions: Versioned::new(positions.clone()),
        colours: Versioned::new(colours),
        flags: Versioned::new(flags),
        camera: camera(16.0),
        sprites: Arc::new(Vec::new()),
        uploads: Arc::new(Vec::new()),
    };
    let image = map::render_offscreen(
        &device,
        &queue,
        &mut renderer,
        &frame,
        (SIDE, SIDE),
        [0.0, 0.0, 0.0, 1.0],
    );

    let at = |x: f32, y: f32| {
        let (c, r) = pixel(x, y);
        image.get_pixel(c, r).0
    };
    assert_eq!(at(-1.0, 0.0), [255, 0, 0, 255], "red point");
    assert_eq!(at(1.0, 0.0), [0, 255, 0, 255], "green point");
    assert_eq!(at(0.0, 1.0), [0, 0, 255, 255], "blue point");
    assert_eq!(
        at(0.0, -1.0),
        [0, 0, 0, 255],
        "the hidden point is not drawn"
    );
    assert_eq!(at(0.0, 0.0), [0, 0, 0, 255], "nothing between points");
    // The selected point is drawn larger (24 px) with a white ring at its edge.
    let (c, r) = pixel(1.5, 1.5);
    assert_eq!(image.get_pixel(c, r).0, [255, 0, 0, 255]);
    let ring = (c + 10..c + 12).any(|x| image.get_pixel(x, r).0 == [255, 255, 255, 255]);
    assert!(ring, "selected points have a white ring");

    // Nothing is drawn farther than a point's radius from a visible point.
    let centres: Vec<(u32, u32)> = [0, 1, 2, 4]
        .map(|i| pixel(positions[i][0], positions[i][1]))
        .to_vec();
    let mut lit = 0;
    for (x, y, p) in image.enumerate_pixels() {
        if p.0[..3] != [0, 0, 0] {
            lit += 1;
            let near = centres.iter().any(|&(cx, cy)| {
                let (dx, dy) = (x as f32 - cx as f32, y as f32 - cy as f32);
                (dx * dx + dy * dy).sqrt() <= 13.0
            });
            assert!(near, "stray pixel at {x},{y}: {:?}", p.0);
        }
    }
    // Three discs of 16 px and one of 24 px: about π(8² · 3 + 12²) ≈ 1056 pixels.
    assert!((800..1300).contains(&lit), "{lit} pixels lit");

    // A thumbnail sprite: a magenta 128×64 image in cell 5, drawn at (-1, -1), 40 px wide.
    let magenta: Vec<u8> = [255, 0, 255, 255].repeat(128 * 64);
    frame.uploads = Arc::new(vec![CellUpload {
        cell: 5,
        width: 128,
        height: 64,
        rgba: Arc::new(magenta),
    }]);
    frame.sprites = Arc::new(vec![SpriteInstance {
        centre: [-1.0, -1.0],
        extent: [1.0, 0.5],
        cell: 5,
        flags: 0,
        border: pack_rgba(0, 255, 255, 255),
        uv_scale: 1.0,
    }]);
    let image = map::render_offscreen(
        &device,
        &queue,
        &mut renderer,
        &frame,
        (SIDE, SIDE),
        [0.0, 0.0, 0.0, 1.0],
    );
    let (c, r) = pixel(-1.0, -1.0);
    assert_eq!(
        image.get_pixel(c, r).0,
        [255, 0, 255, 255],
        "the sprite shows its thumbnail"
    );
    assert_eq!(
        image.get_pixel(c + 19, r).0,
        [0, 255, 255, 255],
        "with a border in the point's colour"
    );
    assert_eq!(
        image.get_pixel(c, r + 14).0,
        [0, 0, 0, 255],
        "and the thumbnail's aspect ratio (40×20 px)"
    );
}
