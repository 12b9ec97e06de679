//! Criterion benchmarks of the analysis pass's hot paths.
//!
//! `cargo bench --bench pipeline`. The end-to-end figures (cold and warm `curate analyze` on
//! 10,000 JPEGs, side by side with `CleanVision`) come from `benches/peers.sh`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;
use std::io::Cursor;

use criterion::{Criterion, criterion_group, criterion_main};

use curate::analysis::{dedup, knn};
use curate::dataset::DecodeLimits;
use curate::pipeline::ingest;
use curate::progress::Progress;

fn sample_jpeg() -> Vec<u8> {
    let mut seed = 1_u32;
    let image = image::RgbImage::from_fn(256, 256, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let grain = (seed >> 28) as u8;
        image::Rgb([
            (x as u8).wrapping_add(grain),
            (y as u8) / 2 + grain,
            u32::midpoint(x, y) as u8,
        ])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .expect("encode");
    bytes
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One million random hashes, one percent of them planted 1–8 bits away from another.
fn planted_hashes() -> Vec<u64> {
    let mut state = 0x2545_F491_4F6C_DD1D;
    let mut hashes: Vec<u64> = (0..990_000).map(|_| xorshift(&mut state)).collect();
    for i in 0..10_000 {
        let mut copy = hashes[i * 97];
        for _ in 0..=(i % 8) {
            copy ^= 1 << (xorshift(&mut state) % 64);
        }
        hashes.push(copy);
    }
    hashes
}

fn benches(c: &mut Criterion) {
    let jpeg = sample_jpeg();
    c.bench_function(
        "ingest one 256x256 JPEG (decode, hashes, quality, feature, thumbnail)",
        |b| {
            b.iter(|| {
                ingest::ingest_bytes(black_box(&jpeg), DecodeLimits::default()).expect("decodes")
            });
        },
    );

    let hashes = planted_hashes();
    let mut group = c.benchmark_group("near-duplicate search");
    group.sample_size(10);
    group.bench_function("1M random 64-bit hashes, distance <= 8", |b| {
        b.iter(|| dedup::near_links(black_box(&hashes), dedup::DEFAULT_MAX_DISTANCE));
    });
    group.finish();

    let dim = curate::embed::FEATURE_DIM;
    let n = 10_000;
    let mut state = 7_u64;
    let mut features: Vec<f32> = (0..n * dim)
        .map(|_| (xorshift(&mut state) % 1000) as f32 / 1000.0)
        .collect();
    for row in features.chunks_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let device = burn::tensor::Device::flex();
    let mut group = c.benchmark_group("exact k-NN");
    group.sample_size(10);
    group.bench_function("10k x 256, k=16, burn flex", |b| {
        b.iter(|| {
            knn::exact(
                black_box(&features),
                dim,
                knn::STORED_NEIGHBOURS,
                &device,
                &Progress::silent(),
            )
        });
    });
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
