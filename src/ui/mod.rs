//! The desktop app (egui + eframe on wgpu): the map of the whole collection, panels for
//! duplicates, outliers, quality, the inspector and the selection, and keep/drop decisions
//! with undo, autosaved to `DIR/.curate/session.json`.
//!
//! - [`model`]: the points (column-wise) built from an analysis or generated (stress mode).
//! - [`select`]: lasso/box selection over a grid, hover picking over a KD-tree.
//! - [`decisions`]: marks, undo/redo, sessions.
//! - [`map_view`]: the map widget and the paint callback into [`crate::render`].
//! - [`workspace`], [`panels`], [`app`]: state, panels and the window.

pub mod app;
pub mod decisions;
pub mod folders;
pub mod job;
pub mod map_view;
pub mod model;
pub mod panels;
pub mod recent;
pub mod search;
pub mod select;
pub mod thumbs;
pub mod workspace;

pub use app::{AppConfig, CurateApp, Launch};

use eframe::egui_wgpu;

/// eframe options: wgpu with the adapter's full limits (large point buffers, and burn's
/// kernels when the GPU is shared), no MSAA or depth buffer (the map renderer draws into
/// egui's pass as it is).
#[must_use]
pub fn native_options(vsync: bool) -> eframe::NativeOptions {
    let mut wgpu_options = egui_wgpu::WgpuConfiguration::default();
    if let egui_wgpu::WgpuSetup::CreateNew(create) = &mut wgpu_options.wgpu_setup {
        create.device_descriptor = std::sync::Arc::new(|adapter| {
            let base = if adapter.get_info().backend == eframe::wgpu::Backend::Gl {
                eframe::wgpu::Limits::downlevel_webgl2_defaults()
            } else {
                adapter.limits()
            };
            eframe::wgpu::DeviceDescriptor {
                label: Some("curate"),
                required_features: adapter.features()
                    & (eframe::wgpu::Features::TIMESTAMP_QUERY
                        | eframe::wgpu::Features::SHADER_F16
                        | eframe::wgpu::Features::SUBGROUP),
                required_limits: base,
                ..Default::default()
            }
        });
    }
    if !vsync {
        wgpu_options.surface.present_mode = eframe::wgpu::PresentMode::AutoNoVsync;
    }
    eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("curate")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([720.0, 480.0]),
        renderer: eframe::Renderer::Wgpu,
        multisampling: 0,
        depth_buffer: 0,
        wgpu_options,
        ..Default::default()
    }
}

/// Opens the window and runs until it is closed. Returns the stress report in stress mode.
pub fn run(config: AppConfig) -> Result<Option<String>, String> {
    let vsync = !matches!(
        config.launch,
        Launch::Stress {
            measure_seconds: Some(_),
            ..
        }
    );
    let report = std::sync::Arc::new(std::sync::Mutex::new(None));
    let report_out = std::sync::Arc::clone(&report);
    eframe::run_native(
        "curate",
        native_options(vsync),
        Box::new(move |cc| {
            Ok(Box::new(ReportingApp {
                app: CurateApp::new(cc, config),
                report: report_out,
            }))
        }),
    )
    .map_err(|err| format!("cannot open the window: {err}"))?;
    let report = report.lock().map_or(None, |mut r| r.take());
    Ok(report)
}

/// Hands the stress report out of the event loop when the app closes.
struct ReportingApp {
    app: CurateApp,
    report: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl eframe::App for ReportingApp {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
        if let Some(report) = &self.app.stress_report
            && let Ok(mut slot) = self.report.lock()
        {
            *slot = Some(report.clone());
        }
    }

    fn on_exit(&mut self) {
        self.app.on_exit();
    }
}

/// Whether a display is available for a window (X11 or Wayland).
#[must_use]
pub fn display_available() -> bool {
    if cfg!(target_os = "linux") {
        std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
            || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
    } else {
        true
    }
}
