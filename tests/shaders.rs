//! Every WGSL file in `shaders/` parses and validates with naga, has the entry points the
//! renderer uses, and its structs have the sizes of their Rust mirrors.

use curate::render::gpu::{CameraUniform, SpriteInstance};

fn validated(source: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|err| {
        panic!("WGSL does not parse:\n{}", err.emit_to_string(source));
    });
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|err| panic!("WGSL does not validate: {err:?}"));
    module
}

#[test]
fn every_shader_validates() {
    let mut count = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            validated(&std::fs::read_to_string(&path).unwrap());
            count += 1;
        }
    }
    assert!(count >= 1, "no shaders found");
}

#[test]
fn map_shader_matches_the_rust_mirrors() {
    let module = validated(curate::render::map::SHADER_SOURCE);
    let entry_points: Vec<&str> = module
        .entry_points
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for name in ["vs_points", "fs_points", "vs_sprites", "fs_sprites"] {
        assert!(entry_points.contains(&name), "missing entry point {name}");
    }
    let size_of = |name: &str| {
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name}"));
        ty.inner.size(module.to_ctx()) as usize
    };
    assert_eq!(size_of("Camera"), std::mem::size_of::<CameraUniform>());
    assert_eq!(size_of("Sprite"), std::mem::size_of::<SpriteInstance>());
}
