//! CLIP image-tower throughput: a ViT-B/32-shaped model (real sizes, random weights, made by
//! `benches/clip_torch.py`) at batch 64 on the CPU (`flex`), and on the GPU when a real
//! adapter exists. `benches/clip_vs_torch.sh` runs PyTorch on the same model in the same
//! run and prints the ratio. The model folder comes from `CURATE_BENCH_CLIP`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::path::PathBuf;
use std::time::Duration;

use burn::tensor::Device;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curate::embed::ComputeDevice;
use curate::embed::clip::ClipModel;

const BATCH: usize = 64;

fn model_dir() -> Option<PathBuf> {
    std::env::var_os("CURATE_BENCH_CLIP").map(PathBuf::from)
}

fn pixels(side: usize) -> Vec<f32> {
    (0..BATCH * 3 * side * side)
        .map(|i| ((i as f32) * 0.001).sin())
        .collect()
}

fn bench_on(c: &mut Criterion, dir: &std::path::Path, name: &str, device: &Device) {
    let model = ClipModel::load(dir, device).expect("the bench model loads");
    let side = model.config.vision.image_size;
    let input = pixels(side);
    // Warm up kernels (and autotuning on the GPU).
    let _ = model.embed_pixels(input.clone(), BATCH);
    let mut group = c.benchmark_group("clip");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(40))
        .throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter(|| model.embed_pixels(input.clone(), BATCH));
    });
    group.finish();
}

fn image_tower(c: &mut Criterion) {
    let Some(dir) = model_dir() else {
        // `cargo test --all-targets` runs every bench once; without a model there is
        // nothing to time.
        eprintln!(
            "clip bench: set CURATE_BENCH_CLIP to a CLIP folder (benches/clip_vs_torch.sh makes one)"
        );
        return;
    };
    bench_on(c, &dir, "image_batch64_cpu", &Device::flex());
    if let Ok(gpu) = ComputeDevice::select(curate::embed::DeviceChoice::Auto)
        && gpu.is_gpu
    {
        bench_on(c, &dir, "image_batch64_gpu", &gpu.device);
    }
}

criterion_group!(benches, image_tower);
criterion_main!(benches);
