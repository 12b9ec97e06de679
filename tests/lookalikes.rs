//! Known answers for the failure kinds of near-duplicate detection: look-alikes that must
//! stay apart (colour variants, a man and a woman version of one icon, flags of one design,
//! clocks at other times, one template with other words, one layout in other colours) and
//! copies that must be found (crops of up to 8 % per border resized back, downscales, JPEG
//! re-encodes, brightness, noise, two of them together, on 32-pixel icons and large
//! pictures). The pictures are drawn here and the copies made with the `image` crate's own
//! filters, not with curate's resampler.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Cursor;
use std::path::Path;

use curate::pipeline::{self, Options};
use curate::progress::Progress;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

type Shape = dyn Fn(f32, f32) -> Option<[u8; 3]>;

/// Draws layers (last wins) over `background`, 3×3 supersampled for smooth edges.
fn draw(
    width: u32,
    height: u32,
    background: &dyn Fn(f32, f32) -> [u8; 3],
    layers: &[&Shape],
) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let mut acc = [0.0_f32; 3];
        for sy in 0..3 {
            for sx in 0..3 {
                let u = (x as f32 + (sx as f32 + 0.5) / 3.0) / width as f32;
                let v = (y as f32 + (sy as f32 + 0.5) / 3.0) / height as f32;
                let mut colour = background(u, v);
                for layer in layers {
                    if let Some(c) = layer(u, v) {
                        colour = c;
                    }
                }
                for c in 0..3 {
                    acc[c] += f32::from(colour[c]);
                }
            }
        }
        Rgb(acc.map(|v| (v / 9.0).round() as u8))
    })
}

fn disc(cx: f32, cy: f32, r: f32, colour: [u8; 3]) -> Box<Shape> {
    Box::new(move |u, v| ((u - cx).powi(2) + (v - cy).powi(2) < r * r).then_some(colour))
}

fn rect(x0: f32, y0: f32, x1: f32, y1: f32, colour: [u8; 3]) -> Box<Shape> {
    Box::new(move |u, v| (u >= x0 && u < x1 && v >= y0 && v < y1).then_some(colour))
}

/// A thick segment from the centre at `angle` (radians, clockwise from 12 o'clock).
fn hand(angle: f32, length: f32, width: f32, colour: [u8; 3]) -> Box<Shape> {
    Box::new(move |u, v| {
        let (dx, dy) = (angle.sin(), -angle.cos());
        let (px, py) = (u - 0.5, v - 0.5);
        let t = px * dx + py * dy;
        let d = (px - t * dx).powi(2) + (py - t * dy).powi(2);
        (t >= 0.0 && t <= length && d < width * width).then_some(colour)
    })
}

fn white(_: f32, _: f32) -> [u8; 3] {
    [255, 255, 255]
}

/// A round face icon with eyes, a mouth and, for a "woman", long hair.
fn face(size: u32, skin: [u8; 3], long_hair: bool) -> RgbImage {
    face_with_hair(size, skin, long_hair, [70, 45, 30])
}

/// [`face`] with hair of colour `hair`.
fn face_with_hair(size: u32, skin: [u8; 3], long_hair: bool, hair: [u8; 3]) -> RgbImage {
    let mut layers: Vec<Box<Shape>> = Vec::new();
    if long_hair {
        layers.push(rect(0.14, 0.3, 0.86, 0.9, hair));
    }
    layers.push(disc(0.5, 0.42, 0.3, hair));
    layers.push(disc(0.5, 0.5, 0.28, skin));
    layers.push(disc(0.4, 0.47, 0.035, [40, 40, 40]));
    layers.push(disc(0.6, 0.47, 0.035, [40, 40, 40]));
    layers.push(rect(0.42, 0.62, 0.58, 0.65, [150, 40, 40]));
    let refs: Vec<&Shape> = layers.iter().map(AsRef::as_ref).collect();
    draw(size, size, &white, &refs)
}

fn heart(size: u32, colour: [u8; 3]) -> RgbImage {
    let lobe_l = disc(0.36, 0.38, 0.2, colour);
    let lobe_r = disc(0.64, 0.38, 0.2, colour);
    let tip: Box<Shape> = Box::new(move |u, v| {
        ((0.4..=0.88).contains(&v) && (u - 0.5).abs() < (0.88 - v) * 0.95).then_some(colour)
    });
    let shine = disc(0.3, 0.32, 0.05, [255, 255, 255]);
    draw(size, size, &white, &[&*lobe_l, &*lobe_r, &*tip, &*shine])
}

fn flag(width: u32, colours: [[u8; 3]; 3], emblem: bool) -> RgbImage {
    let height = width * 2 / 3;
    let a = rect(0.0, 0.0, 1.0 / 3.0, 1.0, colours[0]);
    let b = rect(1.0 / 3.0, 0.0, 2.0 / 3.0, 1.0, colours[1]);
    let c = rect(2.0 / 3.0, 0.0, 1.0, 1.0, colours[2]);
    let e = disc(0.5, 0.5, if emblem { 0.12 } else { 0.0 }, [200, 160, 20]);
    draw(width, height, &white, &[&*a, &*b, &*c, &*e])
}

fn clock(size: u32, hours: f32, minutes: f32) -> RgbImage {
    let tau = std::f32::consts::TAU;
    let rim = disc(0.5, 0.5, 0.46, [60, 60, 70]);
    let face = disc(0.5, 0.5, 0.42, [245, 245, 235]);
    let hour = hand(
        tau * (hours + minutes / 60.0) / 12.0,
        0.24,
        0.03,
        [30, 30, 30],
    );
    let minute = hand(tau * minutes / 60.0, 0.36, 0.02, [30, 30, 30]);
    draw(size, size, &white, &[&*rim, &*face, &*hour, &*minute])
}

/// A banner template with one "word": glyph blocks from the word's letters.
fn banner(word: &str) -> RgbImage {
    let glyphs: Vec<Box<Shape>> = word
        .bytes()
        .enumerate()
        .flat_map(|(i, ch)| {
            let x = 0.1 + i as f32 * 0.11;
            (0..6)
                .filter(move |bit| ch >> bit & 1 == 1)
                .map(move |bit| {
                    let (gx, gy) = ((bit % 2) as f32, (bit / 2) as f32);
                    rect(
                        x + gx * 0.045,
                        0.4 + gy * 0.07,
                        x + gx * 0.045 + 0.04,
                        0.46 + gy * 0.07,
                        [20, 20, 90],
                    )
                })
        })
        .collect();
    let mut layers: Vec<&Shape> = Vec::new();
    let frame = rect(0.05, 0.1, 0.95, 0.9, [230, 220, 180]);
    let logo = disc(0.85, 0.25, 0.08, [180, 30, 30]);
    layers.push(&*frame);
    layers.push(&*logo);
    layers.extend(glyphs.iter().map(AsRef::as_ref));
    draw(
        320,
        160,
        &|_, v| [40, 60, (100.0 + 100.0 * v) as u8],
        &layers,
    )
}

/// One rectangle layout on dark noise, in a given colour (the noise differs per seed).
fn layout(colour: [u8; 3], seed: u64) -> RgbImage {
    let mut state = seed;
    let noise: Vec<u8> = (0..96 * 96)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 59) as u8
        })
        .collect();
    let mut image = RgbImage::from_fn(96, 96, |x, y| {
        let n = noise[(y * 96 + x) as usize];
        Rgb([n, n, n + 2])
    });
    for y in 30..66 {
        for x in 20..76 {
            image.put_pixel(x, y, Rgb(colour));
        }
    }
    image
}

/// A photo-like scene: gradients, soft shapes and texture.
fn scene(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let hills = (v - 0.6 - 0.1 * (u * 9.0).sin()).clamp(-0.2, 0.2) * 2.0;
        let sun = (-((u - 0.7).powi(2) + (v - 0.25).powi(2)) * 60.0).exp();
        let texture = ((x as f32 * 0.9).sin() * (y as f32 * 1.3).cos()) * 12.0;
        Rgb([
            (90.0 + 120.0 * sun + 60.0 * hills + texture).clamp(0.0, 255.0) as u8,
            (120.0 + 90.0 * hills + 40.0 * sun + texture).clamp(0.0, 255.0) as u8,
            (200.0 - 120.0 * hills.max(0.0) + texture).clamp(0.0, 255.0) as u8,
        ])
    })
}

// --- copies, with the image crate's filters ---

fn jpeg_bytes(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut bytes), quality)
        .encode_image(image)
        .expect("encode");
    bytes
}

fn reencode(image: &RgbImage, quality: u8) -> RgbImage {
    image::load_from_memory(&jpeg_bytes(image, quality))
        .expect("decode")
        .to_rgb8()
}

fn downscale(image: &RgbImage, factor: f32) -> RgbImage {
    let w = ((image.width() as f32 * factor).round() as u32).max(1);
    let h = ((image.height() as f32 * factor).round() as u32).max(1);
    imageops::resize(image, w, h, FilterType::Triangle)
}

fn crop_back(image: &RgbImage, borders: [f32; 4]) -> RgbImage {
    let (w, h) = image.dimensions();
    let [l, t, r, b] = borders.map(|f| f);
    let x0 = (l * w as f32).round() as u32;
    let y0 = (t * h as f32).round() as u32;
    let x1 = w - (r * w as f32).round() as u32;
    let y1 = h - (b * h as f32).round() as u32;
    let cropped = imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
    imageops::resize(&cropped, w, h, FilterType::Triangle)
}

fn brightness(image: &RgbImage, factor: f32) -> RgbImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        p.0 =
            p.0.map(|v| (f32::from(v) * factor).round().clamp(0.0, 255.0) as u8);
    }
    out
}

fn noise(image: &RgbImage, sigma: f32, seed: u64) -> RgbImage {
    let mut state = seed | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1_u64 << 53) as f32
    };
    let mut out = image.clone();
    for p in out.pixels_mut() {
        for v in &mut p.0 {
            // Box–Muller.
            let (a, b) = (uniform().max(1e-9), uniform());
            let g = (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos();
            *v = (f32::from(*v) + sigma * g).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Each path's duplicate group (-1 for none).
fn groups(analysis: &pipeline::Analysis) -> HashMap<&str, i64> {
    analysis
        .rows
        .iter()
        .map(|r| (r.path.as_str(), r.dup_group))
        .collect()
}

fn save(root: &Path, name: &str, image: &RgbImage) {
    let path = root.join(name);
    if std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg"))
    {
        std::fs::write(&path, jpeg_bytes(image, 92)).expect("write");
    } else {
        image.save(&path).expect("write");
    }
}

/// Every kind of copy of `original`, saved as `stem-<kind>`.
fn copies(root: &Path, stem: &str, original: &RgbImage) -> Vec<String> {
    let made: Vec<(&str, RgbImage)> = vec![
        ("jpeg60", reencode(original, 60)),
        ("down60", downscale(original, 0.6)),
        ("crop8", crop_back(original, [0.08, 0.05, 0.03, 0.08])),
        ("bright108", brightness(original, 1.08)),
        ("dark92", brightness(original, 0.92)),
        ("noise3", noise(original, 3.0, stem.len() as u64)),
        (
            "crop-jpeg",
            reencode(&crop_back(original, [0.02, 0.08, 0.07, 0.0]), 70),
        ),
        ("down-noise", noise(&downscale(original, 0.7), 3.0, 7)),
        (
            "crop-bright",
            brightness(&crop_back(original, [0.06, 0.06, 0.06, 0.06]), 0.93),
        ),
    ];
    made.into_iter()
        .map(|(kind, image)| {
            let name = format!("{stem}-{kind}.png");
            save(root, &name, &image);
            name
        })
        .collect()
}

#[test]
fn look_alikes_stay_apart_and_copies_are_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    // Look-alike families: distinct pictures, none a copy of another.
    let mut lookalikes: Vec<Vec<(String, RgbImage)>> = vec![
        [[220, 30, 50], [40, 80, 220], [40, 170, 60], [240, 200, 40]]
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("heart-{i}.png"), heart(72, c)))
            .collect(),
        vec![
            ("face-man.png".into(), face(72, [255, 205, 150], false)),
            ("face-woman.png".into(), face(72, [255, 205, 150], true)),
            ("face-man-dark.png".into(), face(72, [150, 100, 70], false)),
            (
                "face-man-medium.png".into(),
                face(72, [220, 170, 120], false),
            ),
        ],
        vec![
            (
                "flag-fr.png".into(),
                flag(90, [[0, 35, 150], [255, 255, 255], [240, 40, 50]], false),
            ),
            (
                "flag-it.png".into(),
                flag(90, [[0, 140, 70], [255, 255, 255], [205, 40, 50]], false),
            ),
            (
                "flag-fr-emblem.png".into(),
                flag(90, [[0, 35, 150], [255, 255, 255], [240, 40, 50]], true),
            ),
            (
                "flag-be.png".into(),
                flag(90, [[20, 20, 20], [250, 220, 60], [240, 40, 50]], false),
            ),
        ],
        vec![
            ("clock-3.png".into(), clock(72, 3.0, 0.0)),
            ("clock-4.png".into(), clock(72, 4.0, 0.0)),
            ("clock-930.png".into(), clock(72, 9.0, 30.0)),
            ("clock-12.png".into(), clock(72, 12.0, 0.0)),
        ],
        ["SALE", "OPEN", "DEAL", "SHOP"]
            .iter()
            .map(|w| (format!("banner-{w}.jpg"), banner(w)))
            .collect(),
        [[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]]
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("layout-{i}.png"), layout(c, 11 + i as u64)))
            .collect(),
    ];
    lookalikes.push(vec![
        ("tiny-heart-pink.png".into(), heart(32, [250, 120, 190])),
        ("tiny-heart-purple.png".into(), heart(32, [140, 60, 200])),
    ]);
    for family in &lookalikes {
        for (name, image) in family {
            save(root, name, image);
        }
    }
    // Copy families: every transform of one member of each look-alike family, plus a large
    // photo-like scene and a 32-pixel icon.
    let mut families: Vec<(String, Vec<String>)> = Vec::new();
    for family in &lookalikes {
        let (name, image) = &family[0];
        let stem = name.rsplit_once('.').expect("extension").0;
        families.push((name.clone(), copies(root, stem, image)));
    }
    let photo = scene(1600, 1200);
    save(root, "photo.jpg", &photo);
    families.push(("photo.jpg".into(), copies(root, "photo", &photo)));

    let analysis =
        pipeline::analyze(root, &Options::default(), &Progress::silent()).expect("analysis");
    let group = groups(&analysis);
    let keep: HashMap<&str, bool> = analysis
        .rows
        .iter()
        .map(|r| (r.path.as_str(), r.keep))
        .collect();

    if let Ok(dir) = std::env::var("CURATE_LOOKALIKES_DIR") {
        // For a person who wants to look at the pictures and the verdicts.
        let target = Path::new(&dir);
        std::fs::create_dir_all(target).expect("mkdir");
        for entry in std::fs::read_dir(root).expect("list").flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::copy(entry.path(), target.join(entry.file_name())).expect("copy");
            }
        }
        std::fs::copy(
            root.join(".curate/near-pairs.csv"),
            target.join("near-pairs.csv"),
        )
        .ok();
        let mut groups = String::from("path,dup_group,keep\n");
        for row in &analysis.rows {
            writeln!(groups, "{},{},{}", row.path, row.dup_group, row.keep).expect("a string");
        }
        std::fs::write(target.join("groups.csv"), groups).expect("groups");
    }
    let mut missed = Vec::new();
    let mut copies_made = 0;
    let mut not_one_kept = Vec::new();
    for (original, copies) in &families {
        for copy in copies {
            copies_made += 1;
            if group[copy.as_str()] < 0 || group[copy.as_str()] != group[original.as_str()] {
                missed.push(copy.clone());
            }
        }
        let kept = std::iter::once(original)
            .chain(copies)
            .filter(|p| keep[p.as_str()])
            .count();
        if kept == 0 {
            not_one_kept.push(format!("{original}: none kept"));
        }
    }
    // Precision first: a family may keep a copy the verification could not prove (that
    // is a missed duplicate), never lose all its members.
    assert!(not_one_kept.is_empty(), "{not_one_kept:?}");
    let found = 1.0 - missed.len() as f64 / copies_made as f64;
    println!("copies found {found:.3}; missed: {missed:?}");
    // Every large photo copy is found; on 32–90 px icons with hard edges, crops resized
    // back and combinations are the hardest (see the README's evaluation).
    assert!(missed.iter().all(|m| !m.starts_with("photo")), "{missed:?}");
    assert!(found >= 0.8, "copies found {found:.3}; missed: {missed:?}");

    let mut merged = Vec::new();
    for family in &lookalikes {
        for (i, (a, _)) in family.iter().enumerate() {
            for (b, _) in &family[i + 1..] {
                let (ga, gb) = (group[a.as_str()], group[b.as_str()]);
                if ga >= 0 && ga == gb {
                    merged.push(format!("{a} ~ {b}"));
                }
            }
            if i > 0 {
                assert!(keep[a.as_str()], "{a} has no copy and must be kept");
            }
        }
    }
    assert!(merged.is_empty(), "look-alikes grouped: {merged:?}");
}

// --- transparent icons saved as JPEG, the way scripts flatten them ---

/// A transparent icon: `picture`'s pixels where `inside` holds, and elsewhere invisible
/// pixels that keep colours of their own (as resized or edited icons do: a fringe of the
/// icon's colours and stray hues), with a soft edge.
fn transparent(picture: &RgbImage, inside: &dyn Fn(f32, f32) -> bool) -> image::RgbaImage {
    let (w, h) = picture.dimensions();
    image::RgbaImage::from_fn(w, h, |x, y| {
        let mut covered = 0;
        for sy in 0..3 {
            for sx in 0..3 {
                let u = (x as f32 + (sx as f32 + 0.5) / 3.0) / w as f32;
                let v = (y as f32 + (sy as f32 + 0.5) / 3.0) / h as f32;
                covered += u8::from(inside(u, v));
            }
        }
        let [r, g, b] = picture.get_pixel(x, y).0;
        let alpha = (u16::from(covered) * 255 / 9) as u8;
        if alpha == 0 {
            // Invisible: stray colours, brightest near the silhouette.
            image::Rgba([(x * 37 % 256) as u8, (y * 53 % 256) as u8, 200, 0])
        } else {
            image::Rgba([r, g, b, alpha])
        }
    })
}

/// `image` as a JPEG with 4:2:0 chroma subsampling (what Pillow and libjpeg write below
/// quality 90 by default), decoded again.
fn jpeg420(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    let (w, h) = image.dimensions();
    encoder
        .encode(
            image.as_raw(),
            u16::try_from(w).expect("width"),
            u16::try_from(h).expect("height"),
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encode");
    bytes
}

/// Pillow's `convert("RGB")`: the colours, alpha dropped.
fn alpha_dropped(image: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, _] = image.get_pixel(x, y).0;
        Rgb([r, g, b])
    })
}

/// Pasted on white.
fn over_white(image: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        let over = |v: u8| ((u32::from(v) * u32::from(a) + 255 * (255 - u32::from(a))) / 255) as u8;
        Rgb([over(r), over(g), over(b)])
    })
}

#[test]
fn transparent_icons_saved_as_jpeg_are_found_and_their_look_alikes_are_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    // CURATE_ICONS_DIR keeps the pictures for a person to look at (and analyse again).
    let kept = std::env::var_os("CURATE_ICONS_DIR").map(std::path::PathBuf::from);
    let root = kept.as_deref().unwrap_or(dir.path());
    std::fs::create_dir_all(root).expect("mkdir");
    let in_heart = |u: f32, v: f32| {
        (u - 0.36).powi(2) + (v - 0.38).powi(2) < 0.04
            || (u - 0.64).powi(2) + (v - 0.38).powi(2) < 0.04
            || ((0.4..=0.88).contains(&v) && (u - 0.5).abs() < (0.88 - v) * 0.95)
    };
    let in_face = |u: f32, v: f32| (u - 0.5).powi(2) + (v - 0.5).powi(2) < 0.3 * 0.3;
    // Look-alike pairs: one heart in two colours, one face in two skin tones.
    let icons = [
        (
            "heart-red",
            transparent(&heart(40, [220, 40, 60]), &in_heart),
        ),
        (
            "heart-blue",
            transparent(&heart(40, [50, 90, 220]), &in_heart),
        ),
        (
            "face-light",
            transparent(&face(48, [255, 205, 150], false), &in_face),
        ),
        (
            "face-dark",
            transparent(&face(48, [150, 100, 70], false), &in_face),
        ),
    ];
    for (name, icon) in &icons {
        icon.save(root.join(format!("{name}.png"))).expect("save");
    }
    // One copy of each: alpha dropped or pasted on white, saved as a JPEG of low quality, a
    // crop downscaled with its transparency by Pillow and saved as a JPEG (a file Pillow
    // made, see tests/data/pillow), and a crop resized back with a sharp filter, kept
    // transparent.
    let mut copies = Vec::new();
    let crop_back = |icon: &image::RgbaImage| {
        let (w, h) = icon.dimensions();
        imageops::resize(
            &imageops::crop_imm(icon, 2, 3, w - 4, h - 5).to_image(),
            w,
            h,
            FilterType::Lanczos3,
        )
    };
    let made = [
        (
            &icons[0],
            "dropped-q65.jpg",
            jpeg420(&alpha_dropped(&icons[0].1), 65),
        ),
        (
            &icons[2],
            "white-q75.jpg",
            jpeg420(&over_white(&icons[2].1), 75),
        ),
        (&icons[3], "crop.png", {
            let mut bytes = Vec::new();
            crop_back(&icons[3].1)
                .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
                .expect("png");
            bytes
        }),
    ];
    let pillow = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/pillow/heart-blue-crop-resize-q80.jpg"),
    )
    .expect("Pillow's copy");
    for ((name, _), kind, bytes) in
        made.into_iter()
            .chain([(&icons[1], "pillow-crop-resize-q80.jpg", pillow)])
    {
        let copy = format!("{name}-{kind}");
        std::fs::write(root.join(&copy), bytes).expect("write");
        copies.push((format!("{name}.png"), copy));
    }
    let analysis =
        pipeline::analyze(root, &Options::default(), &Progress::silent()).expect("analysis");
    let group = groups(&analysis);
    let missed: Vec<&str> = copies
        .iter()
        .filter(|(original, copy)| {
            let g = group[copy.as_str()];
            g < 0 || g != group[original.as_str()]
        })
        .map(|(_, copy)| copy.as_str())
        .collect();
    assert!(missed.is_empty(), "copies missed: {missed:?}");
    for (a, b) in [
        ("heart-red.png", "heart-blue.png"),
        ("face-light.png", "face-dark.png"),
    ] {
        let (ga, gb) = (group[a], group[b]);
        assert!(ga < 0 || ga != gb, "{a} and {b} grouped");
    }
}

#[test]
fn dark_hair_on_transparent_icons_keeps_a_man_and_a_woman_apart() {
    // A man and a woman version of one transparent icon: her long hair is near-black, so
    // over black (as a transparent icon shows in a viewer with a dark background) the two
    // look alike; over white they do not. A copy of each (downscaled, kept transparent)
    // must still find its own original.
    let dir = tempfile::tempdir().expect("temp dir");
    // CURATE_ICONS_DIR keeps the pictures for a person to look at (and analyse again).
    let kept = std::env::var_os("CURATE_ICONS_DIR").map(std::path::PathBuf::from);
    let root = kept.as_deref().unwrap_or(dir.path());
    std::fs::create_dir_all(root).expect("mkdir");
    let hair = [4, 3, 2];
    let in_face = |u: f32, v: f32| {
        (u - 0.5).powi(2) + (v - 0.42).powi(2) < 0.3 * 0.3
            || (u - 0.5).powi(2) + (v - 0.5).powi(2) < 0.28 * 0.28
    };
    let in_long_hair =
        |u: f32, v: f32| in_face(u, v) || ((0.15..0.85).contains(&u) && (0.31..0.89).contains(&v));
    let skin = [240, 190, 140];
    let man = transparent(&face_with_hair(64, skin, false, hair), &in_face);
    let woman = transparent(&face_with_hair(64, skin, true, hair), &in_long_hair);
    let downscaled = |icon: &image::RgbaImage| imageops::resize(icon, 48, 48, FilterType::Triangle);
    for (name, icon) in [
        ("man.png", &man),
        ("woman.png", &woman),
        ("man-small.png", &downscaled(&man)),
        ("woman-small.png", &downscaled(&woman)),
    ] {
        icon.save(root.join(name)).expect("save");
    }
    let analysis =
        pipeline::analyze(root, &Options::default(), &Progress::silent()).expect("analysis");
    let group = groups(&analysis);
    for (original, copy) in [
        ("man.png", "man-small.png"),
        ("woman.png", "woman-small.png"),
    ] {
        assert!(
            group[copy] >= 0 && group[copy] == group[original],
            "{copy} not grouped with {original}"
        );
    }
    // Every man against every woman, also across sizes: a copy is also compared as one
    // made from the other (the transform reproduced), over black and over white.
    for man in ["man.png", "man-small.png"] {
        for woman in ["woman.png", "woman-small.png"] {
            assert_ne!(group[man], group[woman], "{man} and {woman} grouped");
        }
    }
}

/// The duplicate group of each of `names` (files of `tests/data/emoji`) analysed in a
/// folder of their own.
fn emoji_groups(names: &[&str]) -> HashMap<String, i64> {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/emoji");
    for name in names {
        std::fs::copy(data.join(name), dir.path().join(name)).expect("copy");
    }
    let analysis =
        pipeline::analyze(dir.path(), &Options::default(), &Progress::silent()).expect("analysis");
    groups(&analysis)
        .into_iter()
        .map(|(path, group)| (path.to_owned(), group))
        .collect()
}

#[test]
fn real_man_and_woman_emoji_stay_apart_and_their_copies_are_found() {
    // Google's Noto Emoji "man superhero" and "woman superhero" (medium skin tone), each with
    // a Pillow-made 48-px copy (tests/data/emoji/README.md): the two differ only in near-black
    // hair on a transparent background.
    let group = emoji_groups(&[
        "superhero-man.png",
        "superhero-woman.png",
        "superhero-man-48.png",
        "superhero-woman-48.png",
    ]);
    for person in ["man", "woman"] {
        let (original, copy) = (
            format!("superhero-{person}.png"),
            format!("superhero-{person}-48.png"),
        );
        assert!(
            group[copy.as_str()] >= 0 && group[copy.as_str()] == group[original.as_str()],
            "{copy} not grouped with {original}"
        );
    }
    for man in ["superhero-man.png", "superhero-man-48.png"] {
        for woman in ["superhero-woman.png", "superhero-woman-48.png"] {
            assert_ne!(group[man], group[woman], "{man} and {woman} grouped");
        }
    }
}

#[test]
fn a_transparent_crop_is_found_over_black_and_white_by_one_alignment() {
    // Google's Noto "bust in silhouette" enlarged to 200 px and a Pillow-made copy cropped
    // (up to 7 % a border), resized back and brightened 7 %, kept transparent
    // (tests/data/emoji/README.md). Aligned on its own, the copy lines up over white but
    // not over black (the figure's edge against black misleads the profiles); one
    // alignment serves both backgrounds.
    let group = emoji_groups(&["bust-200.png", "bust-200-crop-brighter.png"]);
    assert!(
        group["bust-200.png"] >= 0 && group["bust-200.png"] == group["bust-200-crop-brighter.png"],
        "the crop was not grouped with its original"
    );
}
