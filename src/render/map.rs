//! The map renderer: points from storage buffers, thumbnails from an atlas, drawn into any
//! render pass (egui's, through [`crate::ui`]'s paint callback, or an offscreen texture).
//!
//! It knows nothing of egui: the caller hands it positions, colours and flags when they
//! change (tracked by generation numbers, so re-sending the same data costs nothing) and a
//! camera every frame.

use std::sync::Arc;

use wgpu::util::DeviceExt as _;

use super::gpu::{
    ATLAS_CELLS, ATLAS_SIDE, CELL_SIDE, CELLS_PER_SIDE, CameraUniform, SpriteInstance,
};

/// The WGSL source of the map shaders (`shaders/map.wgsl`).
pub const SHADER_SOURCE: &str = include_str!("../../shaders/map.wgsl");

/// Data that changes rarely, with a generation number that changes with it.
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    /// Bumped on every change.
    pub generation: u64,
    /// The data.
    pub data: Arc<T>,
}

impl<T> Versioned<T> {
    /// Wraps data at generation 1.
    pub fn new(data: T) -> Self {
        Self {
            generation: 1,
            data: Arc::new(data),
        }
    }

    /// Wraps shared data at generation 1.
    pub fn shared(data: Arc<T>) -> Self {
        Self {
            generation: 1,
            data,
        }
    }

    /// Replaces the data and bumps the generation.
    pub fn set(&mut self, data: T) {
        self.generation += 1;
        self.data = Arc::new(data);
    }
}

/// A thumbnail to put into an atlas cell: RGBA8, at most [`CELL_SIDE`] on each side.
#[derive(Clone, Debug)]
pub struct CellUpload {
    /// The cell.
    pub cell: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA8 pixels, row-major.
    pub rgba: Arc<Vec<u8>>,
}

/// Everything one frame of the map needs.
#[derive(Clone, Debug)]
pub struct MapFrame {
    /// Identifies the point set (a new dataset gets a new id).
    pub scene: u64,
    /// Positions in map space.
    pub positions: Versioned<Vec<[f32; 2]>>,
    /// Packed RGBA8 colours.
    pub colours: Versioned<Vec<u32>>,
    /// Each point's state.
    pub flags: Versioned<Vec<super::gpu::PointFlags>>,
    /// The camera.
    pub camera: CameraUniform,
    /// Sprites to draw this frame (at most [`ATLAS_CELLS`]).
    pub sprites: Arc<Vec<SpriteInstance>>,
    /// Thumbnails to copy into the atlas before drawing.
    pub uploads: Arc<Vec<CellUpload>>,
}

struct PointBuffers {
    scene: u64,
    len: u32,
    positions: wgpu::Buffer,
    colours: wgpu::Buffer,
    flags: wgpu::Buffer,
    generations: [u64; 3],
    bind_group: wgpu::BindGroup,
}

/// GPU objects of the map, created once per device.
pub struct MapRenderer {
    points_pipeline: wgpu::RenderPipeline,
    sprites_pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    camera: wgpu::Buffer,
    sprites: wgpu::Buffer,
    sprite_count: u32,
    atlas_view: wgpu::TextureView,
    atlas: wgpu::Texture,
    sampler: wgpu::Sampler,
    points: Option<PointBuffers>,
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::VERTEX,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl MapRenderer {
    /// Creates pipelines for a colour target of `format` (egui's target format, or the
    /// offscreen texture's) with `samples` MSAA samples.
    #[must_use]
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat, samples: u32) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("curate map"),
            source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("curate map"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage_entry(1),
                storage_entry(2),
                storage_entry(3),
                storage_entry(4),
                wgpu::BindGroupLayoutEntry {
                    binding: 5,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 6,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("curate map"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let premultiplied = wgpu::BlendState {
            color: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::One,
                dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                operation: wgpu::BlendOperation::Add,
            },
            alpha: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::One,
                dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                operation: wgpu::BlendOperation::Add,
            },
        };
        let pipeline = |label: &str, vertex: &str, fragment: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some(vertex),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState {
                    count: samples.max(1),
                    mask: !0,
                    alpha_to_coverage_enabled: false,
                },
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fragment),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend: Some(premultiplied),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let points_pipeline = pipeline("curate map points", "vs_points", "fs_points");
        let sprites_pipeline = pipeline("curate map sprites", "vs_sprites", "fs_sprites");
        let camera = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("curate camera"),
            contents: bytemuck::bytes_of(&CameraUniform::zeroed_default()),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let sprites = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("curate sprites"),
            size: u64::from(ATLAS_CELLS) * std::mem::size_of::<SpriteInstance>() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let atlas = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("curate thumbnail atlas"),
            size: wgpu::Extent3d {
                width: ATLAS_SIDE,
                height: ATLAS_SIDE,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            // Not an sRGB format: the bytes are sampled as stored, like egui's own textures
            // on its gamma-space framebuffer.
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let atlas_view = atlas.create_view(&wgpu::TextureViewDescriptor::default());
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("curate atlas"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..wgpu::SamplerDescriptor::default()
        });
        Self {
            points_pipeline,
            sprites_pipeline,
            layout,
            camera,
            sprites,
            sprite_count: 0,
            atlas_view,
            atlas,
            sampler,
            points: None,
        }
    }

    /// Uploads whatever changed since the last frame; call before [`Self::paint`].
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: &MapFrame) {
        let len = frame.positions.data.len() as u32;
        let fresh = self
            .points
            .as_ref()
            .is_none_or(|p| p.scene != frame.scene || p.len != len);
        if fresh {
            self.points = Some(self.create_points(device, frame));
        }
        let points = self.points.as_mut().expect("created above");
        let uploads: [(&wgpu::Buffer, u64, &[u8]); 3] = [
            (
                &points.positions,
                frame.positions.generation,
                bytemuck::cast_slice(frame.positions.data.as_slice()),
            ),
            (
                &points.colours,
                frame.colours.generation,
                bytemuck::cast_slice(frame.colours.data.as_slice()),
            ),
            (
                &points.flags,
                frame.flags.generation,
                bytemuck::cast_slice(frame.flags.data.as_slice()),
            ),
        ];
        for (slot, (buffer, generation, bytes)) in uploads.into_iter().enumerate() {
            if points.generations[slot] != generation {
                if bytes.len() == buffer.size() as usize {
                    queue.write_buffer(buffer, 0, bytes);
                }
                points.generations[slot] = generation;
            }
        }
        queue.write_buffer(&self.camera, 0, bytemuck::bytes_of(&frame.camera));
        for upload in frame.uploads.iter() {
            self.upload_cell(queue, upload);
        }
        let sprites = &frame.sprites[..frame.sprites.len().min(ATLAS_CELLS as usize)];
        if !sprites.is_empty() {
            queue.write_buffer(&self.sprites, 0, bytemuck::cast_slice(sprites));
        }
        self.sprite_count = sprites.len() as u32;
    }

    fn create_points(&self, device: &wgpu::Device, frame: &MapFrame) -> PointBuffers {
        // Empty storage buffers are not allowed: keep one element at least.
        let buffer = |label: &str, bytes: &[u8]| {
            let fallback = [0_u8; 8];
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: if bytes.is_empty() { &fallback } else { bytes },
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            })
        };
        let positions = buffer(
            "curate positions",
            bytemuck::cast_slice(frame.positions.data.as_slice()),
        );
        let colours = buffer(
            "curate colours",
            bytemuck::cast_slice(frame.colours.data.as_slice()),
        );
        let flags = buffer(
            "curate flags",
            bytemuck::cast_slice(frame.flags.data.as_slice()),
        );
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("curate map"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.camera.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: positions.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: colours.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: flags.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: self.sprites.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 5,
                    resource: wgpu::BindingResource::TextureView(&self.atlas_view),
                },
                wgpu::BindGroupEntry {
                    binding: 6,
                    resource: wgpu::BindingResource::Sampler(&self.sampler),
                },
            ],
        });
        PointBuffers {
            scene: frame.scene,
            len: frame.positions.data.len() as u32,
            positions,
            colours,
            flags,
            generations: [
                frame.positions.generation,
                frame.colours.generation,
                frame.flags.generation,
            ],
            bind_group,
        }
    }

    fn upload_cell(&self, queue: &wgpu::Queue, upload: &CellUpload) {
        let (w, h) = (upload.width.min(CELL_SIDE), upload.height.min(CELL_SIDE));
        if upload.cell >= ATLAS_CELLS || w == 0 || h == 0 {
            return;
        }
        if upload.rgba.len() < (upload.width * upload.height * 4) as usize {
            return;
        }
        let (cx, cy) = (upload.cell % CELLS_PER_SIDE, upload.cell / CELLS_PER_SIDE);
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.atlas,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: cx * CELL_SIDE,
                    y: cy * CELL_SIDE,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &upload.rgba,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(upload.width * 4),
                rows_per_image: Some(upload.height),
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
    }

    /// Draws the points, then the sprites, into `pass` (whose viewport is the map's rect).
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>) {
        let Some(points) = &self.points else {
            return;
        };
        if points.len == 0 {
            return;
        }
        pass.set_bind_group(0, &points.bind_group, &[]);
        pass.set_pipeline(&self.points_pipeline);
        pass.draw(0..6, 0..points.len);
        if self.sprite_count > 0 {
            pass.set_pipeline(&self.sprites_pipeline);
            pass.draw(0..6, 0..self.sprite_count);
        }
    }
}

impl CameraUniform {
    /// A camera that shows nothing (used before the first frame).
    #[must_use]
    pub fn zeroed_default() -> Self {
        Self {
            centre: [0.0; 2],
            scale: [1.0; 2],
            viewport: [1.0; 2],
            point_px: 1.0,
            alpha: 1.0,
            sprite_px: 0.0,
            hovered: super::gpu::NO_POINT,
            options: 0,
            pad: 0,
        }
    }
}

/// Draws one frame offscreen into a new `width`×`height` RGBA8 texture cleared to
/// `background`, and reads it back (tests, benchmarks, stress measurements).
pub fn render_offscreen(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    renderer: &mut MapRenderer,
    frame: &MapFrame,
    (width, height): (u32, u32),
    background: [f64; 4],
) -> image::RgbaImage {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("curate offscreen"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: OFFSCREEN_FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    renderer.prepare(device, queue, frame);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("curate offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: background[0],
                        g: background[1],
                        b: background[2],
                        a: background[3],
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        renderer.paint(&mut pass);
    }
    let row_bytes = width * 4;
    let padded =
        row_bytes.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("curate readback"),
        size: u64::from(padded * height),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded),
                rows_per_image: None,
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    let submission = queue.submit([encoder.finish()]);
    let slice = readback.slice(..);
    let (sender, receiver) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        sender.send(result).ok();
    });
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .expect("the GPU finished the frame");
    receiver
        .recv()
        .expect("the map callback ran")
        .expect("the readback buffer maps");
    let mapped = slice.get_mapped_range().expect("mapped above");
    let mut pixels = Vec::with_capacity((row_bytes * height) as usize);
    for row in mapped.chunks_exact(padded as usize) {
        pixels.extend_from_slice(&row[..row_bytes as usize]);
    }
    drop(mapped);
    readback.unmap();
    image::RgbaImage::from_raw(width, height, pixels).expect("sized above")
}

/// The offscreen colour format (what egui prefers: not sRGB).
pub const OFFSCREEN_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// A wgpu device for offscreen work: any adapter, software ones included (tests, benches).
pub fn offscreen_device() -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo), String> {
    let instance = wgpu::Instance::default();
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        apply_limit_buckets: false,
    }))
    .map_err(|err| format!("no wgpu adapter ({err}); install mesa-vulkan-drivers"))?;
    let info = adapter.get_info();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("curate offscreen"),
        required_limits: adapter.limits(),
        ..wgpu::DeviceDescriptor::default()
    }))
    .map_err(|err| format!("cannot open {}: {err}", info.name))?;
    Ok((device, queue, info))
}
