//! Thumbnails for the panels and the map's atlas, loaded on background threads.
//!
//! Requests go on a stack (newest first: what the user looks at now wins) served by two
//! worker threads; decoded images come back on a channel and are kept in a bounded cache,
//! as egui textures for the panels and as RGBA for the atlas.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use eframe::egui;

use crate::dataset::decode::decode_rgb;
use crate::dataset::{DecodeLimits, resample};
use crate::render::colormap;
use crate::store::cache::ThumbReader;

use super::model::{Source, mix, unit};

/// A decoded thumbnail (RGBA8, at most 128 px a side).
#[derive(Debug)]
pub struct Thumb {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Pixels.
    pub rgba: Arc<Vec<u8>>,
}

/// Most thumbnails kept decoded.
const CACHE: usize = 1200;
/// Most requests waiting; older ones are forgotten (they scrolled out of view).
const QUEUE: usize = 600;
/// Loader threads.
const WORKERS: usize = 2;

#[derive(Default)]
struct Queue {
    stack: Vec<u32>,
    closed: bool,
}

/// The loader and cache of one collection.
pub struct Thumbs {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    results: Receiver<(u32, Option<Thumb>)>,
    pending: HashSet<u32>,
    images: HashMap<u32, (Arc<Thumb>, u64)>,
    textures: HashMap<u32, (egui::TextureHandle, u64)>,
    failed: HashSet<u32>,
    frame: u64,
    workers: Vec<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Thumbs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbs")
            .field("cached", &self.images.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Thumbs {
    /// Starts the workers for `source`.
    #[must_use]
    pub fn new(source: &Arc<Source>) -> Self {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let (sender, results) = channel();
        let workers = (0..WORKERS)
            .map(|k| {
                let queue = Arc::clone(&queue);
                let source = Arc::clone(source);
                let sender: Sender<(u32, Option<Thumb>)> = sender.clone();
                thread::Builder::new()
                    .name(format!("curate-thumbs-{k}"))
                    .spawn(move || worker(&queue, &source, &sender))
                    .expect("spawning a thread")
            })
            .collect();
        Self {
            queue,
            results,
            pending: HashSet::new(),
            images: HashMap::new(),
            textures: HashMap::new(),
            failed: HashSet::new(),
            frame: 0,
            workers,
        }
    }

    /// Takes finished loads; call once per frame. Returns whether anything arrived.
    pub fn poll(&mut self) -> bool {
        self.frame += 1;
        let mut any = false;
        while let Ok((point, thumb)) = self.results.try_recv() {
            self.pending.remove(&point);
            match thumb {
                Some(thumb) => {
                    self.images.insert(point, (Arc::new(thumb), self.frame));
                }
                None => {
                    self.failed.insert(point);
                }
            }
            any = true;
        }
        if self.images.len() > CACHE {
            evict(&mut self.images, CACHE * 3 / 4);
        }
        if self.textures.len() > CACHE / 2 {
            evict(&mut self.textures, CACHE * 3 / 8);
        }
        any
    }

    /// Whether loads are in flight.
    #[must_use]
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    fn request(&mut self, point: u32) {
        if self.pending.contains(&point) || self.failed.contains(&point) {
            return;
        }
        self.pending.insert(point);
        let (lock, wake) = &*self.queue;
        let mut queue = lock.lock().expect("queue lock");
        queue.stack.push(point);
        if queue.stack.len() > QUEUE {
            let forgotten: Vec<u32> = queue.stack.drain(..QUEUE / 4).collect();
            for p in forgotten {
                self.pending.remove(&p);
            }
        }
        wake.notify_one();
    }

    /// The decoded thumbnail of `point`, requesting it when missing.
    pub fn image(&mut self, point: u32) -> Option<Arc<Thumb>> {
        if let Some((thumb, used)) = self.images.get_mut(&point) {
            *used = self.frame;
            Some(Arc::clone(thumb))
        } else {
            self.request(point);
            None
        }
    }

    /// The thumbnail of `point` as an egui texture, requesting it when missing.
    pub fn texture(&mut self, ctx: &egui::Context, point: u32) -> Option<egui::TextureHandle> {
        if let Some((texture, used)) = self.textures.get_mut(&point) {
            *used = self.frame;
            return Some(texture.clone());
        }
        let thumb = self.image(point)?;
        let image = egui::ColorImage::from_rgba_unmultiplied(
            [thumb.width as usize, thumb.height as usize],
            &thumb.rgba,
        );
        let texture = ctx.load_texture(
            format!("curate-thumb-{point}"),
            image,
            egui::TextureOptions::LINEAR,
        );
        self.textures.insert(point, (texture.clone(), self.frame));
        Some(texture)
    }

    /// Whether `point`'s thumbnail could not be loaded.
    #[must_use]
    pub fn failed(&self, point: u32) -> bool {
        self.failed.contains(&point)
    }
}

impl Drop for Thumbs {
    fn drop(&mut self) {
        let (lock, wake) = &*self.queue;
        if let Ok(mut queue) = lock.lock() {
            queue.closed = true;
            queue.stack.clear();
        }
        wake.notify_all();
        for worker in self.workers.drain(..) {
            worker.join().ok();
        }
    }
}

fn evict<T>(map: &mut HashMap<u32, (T, u64)>, keep: usize) {
    let mut ages: Vec<(u64, u32)> = map.iter().map(|(&k, (_, used))| (*used, k)).collect();
    ages.sort_unstable();
    let excess = map.len().saturating_sub(keep);
    for &(_, key) in &ages[..excess] {
        map.remove(&key);
    }
}

fn worker(
    queue: &(Mutex<Queue>, Condvar),
    source: &Source,
    results: &Sender<(u32, Option<Thumb>)>,
) {
    let (lock, wake) = queue;
    let mut pack: Option<ThumbReader> = None;
    loop {
        let point = {
            let mut q = lock.lock().expect("queue lock");
            loop {
                if q.closed {
                    return;
                }
                if let Some(point) = q.stack.pop() {
                    break point;
                }
                q = wake.wait(q).expect("queue lock");
            }
        };
        let thumb = load(source, point, &mut pack);
        if results.send((point, thumb)).is_err() {
            return;
        }
    }
}

/// Loads the thumbnail of one point (`pack` keeps the thumbnail pack open between calls).
fn load(source: &Source, point: u32, pack: &mut Option<ThumbReader>) -> Option<Thumb> {
    match source {
        Source::Dataset {
            pack: path, thumbs, ..
        } => {
            let thumb = *thumbs.get(point as usize)?;
            if thumb.len == 0 {
                return None;
            }
            if pack.is_none() {
                *pack = ThumbReader::open(path).ok();
            }
            // The store's reader checks each thumbnail against its checksum.
            let bytes = pack.as_mut()?.read(thumb).ok()?;
            let rgba = image::load_from_memory(&bytes).ok()?.to_rgba8();
            Some(Thumb {
                width: rgba.width(),
                height: rgba.height(),
                rgba: Arc::new(rgba.into_raw()),
            })
        }
        Source::Synthetic { seed, cluster } => {
            Some(synthetic(*seed, point, *cluster.get(point as usize)?))
        }
    }
}

/// A generated thumbnail: the cluster's colour with a point-specific disc and stripes, so
/// neighbours look alike and duplicates identical.
fn synthetic(seed: u64, point: u32, cluster: u16) -> Thumb {
    const SIDE: u32 = 96;
    let base = colormap::category(u64::from(cluster));
    let h = mix(seed ^ u64::from(cluster) << 20 ^ u64::from(point / 3));
    let (cx, cy) = (20.0 + unit(h) * 56.0, 20.0 + unit(mix(h)) * 56.0);
    let radius = 10.0 + unit(mix(h ^ 9)) * 20.0;
    let stripe = 6 + (h % 10) as u32;
    let mut rgba = Vec::with_capacity((SIDE * SIDE * 4) as usize);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let disc = dx * dx + dy * dy < radius * radius;
            let band = ((x + y) / stripe).is_multiple_of(2);
            let shade = |c: u8| -> u8 {
                let c = f32::from(c);
                let v = if disc {
                    255.0 - c * 0.5
                } else if band {
                    c
                } else {
                    c * 0.7
                };
                v as u8
            };
            rgba.extend_from_slice(&[shade(base[0]), shade(base[1]), shade(base[2]), 255]);
        }
    }
    Thumb {
        width: SIDE,
        height: SIDE,
        rgba: Arc::new(rgba),
    }
}

/// The original image of a point, decoded and scaled to fit `max_side` (the Inspector).
pub fn load_full(root: &Path, rel_path: &str, max_side: u32) -> Result<egui::ColorImage, String> {
    let bytes = crate::dataset::read_path(root, rel_path)
        .map_err(|err| format!("{}: {err}", root.join(rel_path).display()))?;
    let rgb = decode_rgb(&bytes, DecodeLimits::default()).map_err(|err| err.to_string())?;
    let (w, h) = resample::fit_within(rgb.width(), rgb.height(), max_side);
    let rgb = if (w, h) == rgb.dimensions() {
        rgb
    } else {
        resample::resize_area(&rgb, w, h)
    };
    Ok(egui::ColorImage::from_rgb(
        [rgb.width() as usize, rgb.height() as usize],
        rgb.as_raw(),
    ))
}
