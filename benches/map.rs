//! The map's interaction paths and frame time, on synthetic stress points:
//! lasso over 1M points (goal ≤ 50 ms), hover lookup (goal ≤ 1 ms), and one offscreen frame
//! at 100k / 1M / 10M points on whatever wgpu adapter is present (lavapipe here; a real GPU
//! through the device tool). Memory per point is printed once.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use curate::render::gpu::{CameraUniform, NO_POINT};
use curate::render::map::{self, MapFrame, MapRenderer, Versioned};
use curate::ui::model::Collection;
use curate::ui::select::{Grid, Picker};

fn lasso_and_hover(c: &mut Criterion) {
    let collection = Collection::synthetic(1_000_000, 1);
    let positions = &collection.positions;
    let grid = Grid::build(positions);
    let picker = Picker::build(positions);
    let n = collection.len() as f64;
    println!(
        "memory per point on the map: columns {:.1} B + grid {:.1} B + KD-tree ~12 B + flags/colours 8 B + GPU buffers 16 B",
        collection.bytes_per_point(),
        grid.bytes() as f64 / n
    );
    // A free-hand-like lasso: a wobbly circle of 400 vertices over about a third of the map.
    let lasso: Vec<[f32; 2]> = (0..400)
        .map(|k| {
            let a = k as f32 / 400.0 * std::f32::consts::TAU;
            let r = 7.0 + 0.8 * (a * 9.0).sin();
            [r * a.cos(), r * a.sin()]
        })
        .collect();
    println!(
        "lasso selects {} of 1M points",
        grid.lasso(positions, &lasso).len()
    );
    c.bench_function("lasso 1M points, 400-vertex outline", |b| {
        b.iter(|| grid.lasso(positions, &lasso));
    });
    let mut k = 0_u64;
    c.bench_function("hover lookup, 1M points", |b| {
        b.iter(|| {
            k = k.wrapping_add(0x9E37_79B9);
            let x = (k % 2000) as f32 / 100.0 - 10.0;
            let y = (k / 2000 % 2000) as f32 / 100.0 - 10.0;
            picker.nearest([x, y], 0.05)
        });
    });
    c.bench_function("grid build, 1M points", |b| {
        b.iter(|| Grid::build(positions));
    });
}

fn frames(c: &mut Criterion) {
    let Ok((device, queue, info)) = map::offscreen_device() else {
        eprintln!("no wgpu adapter: frame benchmarks skipped");
        return;
    };
    println!("frames on {} ({:?})", info.name, info.backend);
    let mut group = c.benchmark_group("frame 1280x800");
    group.sample_size(10);
    for n in [100_000_usize, 1_000_000, 10_000_000] {
        let collection = Collection::synthetic(n, 2);
        let b = collection.bounds();
        let mut renderer = MapRenderer::new(&device, map::OFFSCREEN_FORMAT, 1);
        let frame = MapFrame {
            scene: collection.scene,
            positions: Versioned::shared(Arc::clone(&collection.positions)),
            colours: Versioned::new(vec![0xff80_c0ff; n]),
            flags: Versioned::new(vec![curate::render::gpu::PointFlags::empty(); n]),
            camera: CameraUniform {
                centre: [f32::midpoint(b[0], b[2]), f32::midpoint(b[1], b[3])],
                scale: [2.0 / (b[2] - b[0]), 2.0 / (b[3] - b[1])],
                viewport: [1280.0, 800.0],
                point_px: 2.0,
                alpha: 0.3,
                sprite_px: 0.0,
                hovered: NO_POINT,
                options: 1,
                pad: 0,
            },
            sprites: Arc::new(Vec::new()),
            uploads: Arc::new(Vec::new()),
        };
        let mut draw = || {
            map::render_offscreen(
                &device,
                &queue,
                &mut renderer,
                &frame,
                (1280, 800),
                [0.0; 4],
            )
        };
        // The first frame uploads the points; the measured ones draw (and read back).
        draw();
        group.bench_function(format!("{n} points"), |bench| bench.iter(&mut draw));
    }
    group.finish();
}

criterion_group!(benches, lasso_and_hover, frames);
criterion_main!(benches);
