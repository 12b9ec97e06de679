//! The application: start screen, background analysis with progress, the workspace layout
//! (menu, panels, map, status bar), dialogs, shortcuts, themes, and stress measurements.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use eframe::egui::{self, Color32, Key, KeyboardShortcut, Modifiers, RichText};

use crate::embed::{ComputeDevice, DeviceChoice};
use crate::pipeline::Options;
use crate::store;

use super::job::{Job, Loaded};
use super::map_view::{SelectOp, Tool};
use super::panels;
use super::recent;
use super::workspace::{ColourMode, RightTab, Workspace};

/// What the app opens on.
#[derive(Clone, Debug, PartialEq)]
pub enum Launch {
    /// The start screen.
    Start,
    /// A dataset folder.
    Folder(PathBuf),
    /// Synthetic points (stress mode).
    Stress {
        /// Number of points.
        points: usize,
        /// Seed.
        seed: u64,
        /// Animate the camera for this many seconds, print frame times, and quit.
        measure_seconds: Option<f32>,
        /// Real vectors instead of generated points: analysed (as rows without images) in a
        /// scratch folder, then shown.
        vectors: Option<crate::pipeline::EmbeddingsInput>,
    },
}

/// Settings the app starts with.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// What to open.
    pub launch: Launch,
    /// Where the analysis' tensor work runs.
    pub device: DeviceChoice,
    /// Remember opened folders in the user's config dir.
    pub remember_recent: bool,
    /// A CLIP folder for the analysis (map, outliers, semantic duplicates) and text search.
    pub model: Option<PathBuf>,
    /// The default image model (an EfficientNet-Lite0 folder), used when `model` is not
    /// set.
    pub classifier: Option<PathBuf>,
    /// Embeddings computed elsewhere, instead of a model (`--embeddings`).
    pub embeddings: Option<crate::pipeline::EmbeddingsInput>,
    /// Where the images' classes come from (`--class-from`).
    pub class_from: Option<crate::pipeline::ClassFrom>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            launch: Launch::Start,
            device: DeviceChoice::Auto,
            remember_recent: true,
            model: None,
            classifier: None,
            embeddings: None,
            class_from: None,
        }
    }
}

/// Which save dialog is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SaveKind {
    KeepList,
    Decisions,
}

#[derive(Debug)]
struct SaveDialog {
    kind: SaveKind,
    path: String,
    browsing: Option<Receiver<Option<PathBuf>>>,
}

/// Frame gaps longer than this are idle time between on-demand repaints.
const IDLE_GAP_MS: f32 = 250.0;

/// Frame-time statistics: the intervals between frames and the time spent building each
/// frame's UI, in milliseconds.
#[derive(Debug, Default)]
struct FrameStats {
    last: Option<Instant>,
    intervals: Vec<f32>,
    ui_times: Vec<f32>,
    /// Keep everything (a stress measurement) instead of a recent window (the status bar).
    unbounded: bool,
}

impl FrameStats {
    fn record(&mut self, now: Instant, ui_ms: f32) {
        if let Some(last) = self.last {
            self.intervals
                .push(now.duration_since(last).as_secs_f32() * 1000.0);
        }
        self.ui_times.push(ui_ms);
        if !self.unbounded {
            for series in [&mut self.intervals, &mut self.ui_times] {
                if series.len() > 240 {
                    series.drain(..120);
                }
            }
        }
        self.last = Some(now);
    }

    /// Frames per second while the screen is being redrawn continuously (panning, zooming,
    /// animations); `None` when the app is idle. The app repaints on demand, so the gaps
    /// between idle repaints (longer than [`IDLE_GAP_MS`]) say nothing about speed.
    fn fps(&self) -> Option<f32> {
        let recent = &self.intervals[self.intervals.len().saturating_sub(30)..];
        let busy: Vec<f32> = recent
            .iter()
            .copied()
            .filter(|&ms| ms < IDLE_GAP_MS)
            .collect();
        (busy.len() >= 5).then(|| 1000.0 * busy.len() as f32 / busy.iter().sum::<f32>().max(1e-3))
    }
}

/// A stress measurement in progress.
#[derive(Debug)]
struct StressRun {
    seconds: f32,
    started: Option<Instant>,
    frames: FrameStats,
}

/// The curate app.
pub struct CurateApp {
    config: AppConfig,
    job: Option<Job>,
    /// The open collection.
    pub workspace: Option<Box<Workspace>>,
    error: Option<String>,
    path_input: String,
    recent: Vec<PathBuf>,
    picking: Option<(Instant, Receiver<Option<PathBuf>>)>,
    /// The open folder's report modification time as last loaded, and when it was last
    /// looked at (see [`Self::watch_report`]).
    watched: (Option<std::time::SystemTime>, Instant),
    /// The in-app folder browser, when open.
    folders: Option<super::folders::FolderBrowser>,
    dark: bool,
    help: bool,
    save_dialog: Option<SaveDialog>,
    notes: Vec<(String, Instant)>,
    renderer: Option<String>,
    compute: Option<ComputeDevice>,
    frames: FrameStats,
    stress: Option<StressRun>,
    /// The stress report, once measured.
    pub stress_report: Option<String>,
}

impl std::fmt::Debug for CurateApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurateApp").finish_non_exhaustive()
    }
}

impl CurateApp {
    /// Creates the app; installs the map renderer on eframe's wgpu device and, when that is a
    /// real GPU, shares it with the analysis.
    #[must_use]
    pub fn new(cc: &eframe::CreationContext<'_>, config: AppConfig) -> Self {
        let mut renderer = None;
        let mut compute = None;
        if let Some(render_state) = &cc.wgpu_render_state {
            super::map_view::install(render_state);
            let info = render_state.adapter.get_info();
            renderer = Some(format!("{} ({:?})", info.name, info.backend));
            let real_gpu = matches!(
                info.device_type,
                eframe::wgpu::DeviceType::DiscreteGpu
                    | eframe::wgpu::DeviceType::IntegratedGpu
                    | eframe::wgpu::DeviceType::VirtualGpu
            );
            if config.device != DeviceChoice::Cpu && real_gpu {
                compute = shared_compute(render_state, &info);
            }
        }
        let dark = cc.egui_ctx.global_style().visuals.dark_mode;
        let mut app = Self {
            job: None,
            workspace: None,
            error: None,
            path_input: String::new(),
            recent: if config.remember_recent {
                recent::load()
            } else {
                Vec::new()
            },
            picking: None,
            folders: None,
            watched: (None, Instant::now()),
            dark,
            help: false,
            save_dialog: None,
            notes: Vec::new(),
            renderer,
            compute,
            frames: FrameStats::default(),
            stress: None,
            stress_report: None,
            config,
        };
        match app.config.launch.clone() {
            Launch::Start => {}
            Launch::Folder(dir) => app.open_folder(dir),
            Launch::Stress {
                points,
                seed,
                measure_seconds,
                vectors,
            } => {
                app.job = Some(match vectors {
                    None => Job::synthetic(points, seed),
                    Some(input) => {
                        // A scratch folder per vectors file: its caches make a rerun fast.
                        let key = blake3::hash(input.file.to_string_lossy().as_bytes());
                        let scratch = std::env::temp_dir()
                            .join(format!("curate-stress-{}", &key.to_hex()[..16]));
                        if let Err(err) = std::fs::create_dir_all(&scratch) {
                            app.error = Some(format!("cannot create {}: {err}", scratch.display()));
                        }
                        let options = Options {
                            device: app.config.device,
                            compute: app.compute.clone(),
                            embeddings: Some(input),
                            ..Options::default()
                        };
                        Job::analyze(scratch, options)
                    }
                });
                app.stress = measure_seconds.map(|seconds| StressRun {
                    seconds,
                    started: None,
                    frames: FrameStats {
                        unbounded: true,
                        ..FrameStats::default()
                    },
                });
            }
        }
        app
    }

    /// Whether an analysis is running (the open collection, if any, is then a preview).
    #[must_use]
    pub fn analysing(&self) -> bool {
        self.job.is_some()
    }

    /// The last error shown.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Opens (analyses) a folder; cancels whatever was running and saves the open
    /// workspace's decisions first.
    pub fn open_folder(&mut self, dir: PathBuf) {
        self.close_workspace();
        if !dir.is_dir() {
            self.error = Some(format!("{} is not a folder", dir.display()));
            return;
        }
        let dir = dir.canonicalize().unwrap_or(dir);
        if self.config.remember_recent {
            self.recent = recent::remember(&dir);
        }
        self.error = None;
        self.job = Some(Job::analyze(dir, self.analysis_options()));
    }

    fn analysis_options(&self) -> Options {
        Options {
            device: self.config.device,
            compute: self.compute.clone(),
            models: crate::pipeline::semantic::ModelOptions {
                clip: self.config.model.clone(),
                classifier: self.config.classifier.clone(),
                ..crate::pipeline::semantic::ModelOptions::default()
            },
            embeddings: self.config.embeddings.clone(),
            class_from: self.config.class_from,
            ..Options::default()
        }
    }

    /// The modification time of the open folder's report.
    fn report_mtime(&self) -> Option<std::time::SystemTime> {
        let root = self.workspace.as_ref()?.collection.root()?.clone();
        std::fs::metadata(crate::store::default_report_path(&root))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Another process (a `curate analyze` in a terminal) rewrote the open folder's
    /// analysis: analyse again (warm: everything is cached) and show the new result in
    /// place, keeping the view and the decisions.
    fn watch_report(&mut self) {
        if self.job.is_some()
            || self
                .workspace
                .as_ref()
                .is_none_or(|ws| ws.collection.preview.is_some())
            || self.watched.1.elapsed() < Duration::from_secs(2)
        {
            return;
        }
        self.watched.1 = Instant::now();
        let now = self.report_mtime();
        if now.is_none() || now == self.watched.0 {
            return;
        }
        let Some(root) = self
            .workspace
            .as_ref()
            .and_then(|ws| ws.collection.root().cloned())
        else {
            return;
        };
        self.watched.0 = now;
        if let Some(ws) = &mut self.workspace
            && ws.unsaved()
            && let Err(err) = ws.save_session()
        {
            self.error = Some(err);
        }
        self.note("the analysis of this folder changed on disk (another curate run): reloading");
        self.job = Some(Job::analyze(root, self.analysis_options()));
    }

    /// Closes the open folder (saving its decisions) and stops any job.
    pub fn close_workspace(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        if let Some(ws) = &mut self.workspace
            && ws.unsaved()
            && let Err(err) = ws.save_session()
        {
            self.error = Some(err);
        }
        self.workspace = None;
        self.save_dialog = None;
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push((text.into(), Instant::now()));
    }

    fn poll_job(&mut self, ctx: &egui::Context) {
        let Some(job) = &mut self.job else {
            return;
        };
        let Some(outcome) = job.poll() else {
            if let Some(preview) = job.take_preview() {
                // A reload keeps showing the finished analysis until the new one is done.
                let reloading = self.workspace.as_ref().is_some_and(|ws| {
                    ws.collection.preview.is_none()
                        && ws.collection.root() == preview.collection.root()
                });
                if !reloading {
                    self.install(preview);
                }
            }
            // Over a preview, progress is redrawn less often: each frame of the map costs a
            // software renderer real CPU time that the decoders need.
            let every = if self.workspace.is_some() { 400 } else { 100 };
            ctx.request_repaint_after(Duration::from_millis(every));
            return;
        };
        self.job = None;
        match outcome {
            Ok(loaded) => self.install(loaded),
            Err(err) => {
                // A preview of a run that did not finish cannot be saved: close it (its
                // decisions go to the session file) and go back to the start screen.
                if self
                    .workspace
                    .as_ref()
                    .is_some_and(|ws| ws.collection.preview.is_some())
                {
                    self.close_workspace();
                }
                if err == "cancelled" {
                    self.note("analysis cancelled; what was decoded is cached for next time");
                } else {
                    self.error = Some(err);
                }
            }
        }
    }

    /// Shows a loaded collection: a preview of the running analysis, or its result. What the
    /// user did on a preview of the same folder carries over (decisions, view, selection).
    fn install(&mut self, loaded: Loaded) {
        let first = self.workspace.is_none();
        let notes = if first {
            loaded.notes.clone()
        } else {
            Vec::new()
        };
        let mut ws = Workspace::new(loaded);
        if ws.collection.preview.is_none()
            && ws.collection.is_empty()
            && let Some(root) = ws.collection.root()
        {
            self.error = Some(if ws.collection.problems.is_empty() {
                format!(
                    "no images in {}: curate looks for {} files in the folder and its subfolders",
                    root.display(),
                    crate::dataset::scan::IMAGE_EXTENSIONS.join(", ")
                )
            } else {
                format!(
                    "no readable images in {}: {} files could not be read (see Problems)",
                    root.display(),
                    ws.collection.problems.len()
                )
            });
        }
        if let Some(previous) = &mut self.workspace {
            if previous.unsaved()
                && let Err(err) = previous.save_session()
            {
                self.error = Some(err);
            }
            ws.continue_from(previous);
        }
        self.workspace = Some(Box::new(ws));
        if self
            .workspace
            .as_ref()
            .is_some_and(|ws| ws.collection.preview.is_none())
        {
            // Our own run wrote this report: only later changes are someone else's.
            self.watched.0 = self.report_mtime();
        }
        for n in notes {
            self.note(n);
        }
    }

    fn start_screen(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.15);
            ui.heading(RichText::new("curate").size(36.0));
            ui.label("Open a folder of images to find duplicates and outliers, prune them, and save a keep-list.");
            ui.add_space(16.0);
            if ui.button(RichText::new("Open folder...").size(18.0)).clicked() {
                self.pick_folder(ui.ctx());
            }
            if ui
                .link("browse folders in curate")
                .on_hover_text("A folder browser inside the app, for desktops without a system file chooser")
                .clicked()
            {
                self.browse_folders(None);
            }
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                ui.add_space((ui.available_width() - 460.0).max(0.0) / 2.0);
                let field = ui.add(
                    egui::TextEdit::singleline(&mut self.path_input)
                        .hint_text("or type a folder path")
                        .desired_width(380.0),
                );
                let enter = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                if (ui.button("Open").clicked() || enter) && !self.path_input.trim().is_empty() {
                    let dir = PathBuf::from(self.path_input.trim());
                    self.open_folder(dir);
                }
            });
            if !self.recent.is_empty() {
                ui.add_space(16.0);
                ui.label(RichText::new("Recent folders").strong());
                for dir in self.recent.clone() {
                    if ui.link(dir.display().to_string()).clicked() {
                        self.open_folder(dir);
                    }
                }
            }
        });
    }

    fn pick_folder(&mut self, ctx: &egui::Context) {
        let (send, receive) = std::sync::mpsc::channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let picked = rfd::FileDialog::new()
                .set_title("Open a dataset folder")
                .pick_folder();
            send.send(picked).ok();
            ctx.request_repaint();
        });
        self.picking = Some((Instant::now(), receive));
    }

    /// Opens the in-app folder browser (at the open folder, the typed path or home).
    fn browse_folders(&mut self, why: Option<String>) {
        let start = self
            .workspace
            .as_ref()
            .and_then(|ws| ws.collection.root().cloned())
            .or_else(|| {
                let typed = PathBuf::from(self.path_input.trim());
                (!self.path_input.trim().is_empty() && typed.is_dir()).then_some(typed)
            })
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        self.folders = Some(super::folders::FolderBrowser::new(start, why));
    }

    fn progress_card(&self, ui: &mut egui::Ui) -> bool {
        let Some(job) = &self.job else {
            return false;
        };
        let mut cancel = false;
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.3);
            let what = job.root.as_ref().map_or_else(
                || "generating stress points".to_owned(),
                |r| r.display().to_string(),
            );
            ui.heading(what);
            ui.add(progress_bar(job, 420.0).animate(true));
            let rate = job.rate();
            let eta = job.eta().map_or_else(String::new, |d| {
                format!(" · about {} s left", d.as_secs() + 1)
            });
            ui.label(format!(
                "{}{eta} · {:.0} s elapsed",
                if rate > 0.0 {
                    format!("{rate:.0} images/s")
                } else {
                    "…".to_owned()
                },
                job.started.elapsed().as_secs_f32()
            ));
            if ui.button("Cancel").clicked() {
                cancel = true;
            }
        });
        if cancel {
            self.job.as_ref().map(Job::cancel);
        }
        true
    }

    /// One line of progress above a preview: stage, bar, rate, time left, Cancel.
    fn progress_strip(&mut self, ui: &mut egui::Ui) {
        let Some(job) = &self.job else {
            return;
        };
        let mut cancel = false;
        ui.horizontal_wrapped(|ui| {
            let preview = self
                .workspace
                .as_ref()
                .and_then(|ws| ws.collection.preview);
            ui.label(RichText::new("Analysing").strong());
            ui.add(progress_bar(job, 260.0_f32.min(ui.available_width() * 0.5)));
            let rate = job.rate();
            if rate > 0.0 {
                ui.label(format!("{rate:.0} images/s"));
            }
            if let Some(eta) = job.eta() {
                ui.label(format!("about {} s left", eta.as_secs() + 1));
            }
            if let Some(p) = preview {
                ui.label(
                    RichText::new(format!(
                        "preview of {} / {} files: outlier scores and saving come when the analysis finishes",
                        p.ready, p.files
                    ))
                    .weak(),
                );
            }
            if ui.button("Cancel").clicked() {
                cancel = true;
            }
        });
        if cancel {
            self.job.as_ref().map(Job::cancel);
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let typing = ctx.egui_wants_keyboard_input();
        let cmd = |key| KeyboardShortcut::new(Modifiers::COMMAND, key);
        let cmd_shift = |key| KeyboardShortcut::new(Modifiers::COMMAND | Modifiers::SHIFT, key);
        if ctx.input_mut(|i| i.consume_shortcut(&cmd(Key::O))) {
            self.pick_folder(ctx);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(Modifiers::NONE, Key::F1))) {
            self.help = !self.help;
        }
        let Some(ws) = &mut self.workspace else {
            return;
        };
        for (key, kind) in [(Key::S, SaveKind::KeepList), (Key::E, SaveKind::Decisions)] {
            if ctx.input_mut(|i| i.consume_shortcut(&cmd(key))) {
                match ws.complete() {
                    Ok(()) => self.save_dialog = Some(SaveDialog::new(ws, kind)),
                    Err(err) => {
                        self.notes.push((err, Instant::now()));
                        return;
                    }
                }
            }
        }
        let mut note = None;
        if typing {
            return;
        }
        if ctx.input_mut(|i| {
            i.consume_shortcut(&cmd_shift(Key::Z)) || i.consume_shortcut(&cmd(Key::Y))
        }) {
            note = Some(
                ws.redo()
                    .map_or("nothing to redo".to_owned(), |l| format!("redo: {l}")),
            );
        }
        if ctx.input_mut(|i| i.consume_shortcut(&cmd(Key::Z))) {
            note = Some(
                ws.undo()
                    .map_or("nothing to undo".to_owned(), |l| format!("undo: {l}")),
            );
        }
        if ctx.input_mut(|i| i.consume_shortcut(&cmd(Key::A))) {
            ws.select_all();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&cmd(Key::I))) {
            ws.invert_selection();
        }
        {
            let pressed = |key| ctx.input(|i| i.key_pressed(key) && i.modifiers.is_none());
            if pressed(Key::Escape) {
                ws.select(Vec::new(), SelectOp::Replace);
            }
            if pressed(Key::D) || pressed(Key::Delete) {
                let n = ws.mark_selection(false);
                note = Some(format!("dropped {n}"));
            }
            if pressed(Key::K) {
                let n = ws.mark_selection(true);
                note = Some(format!("kept {n}"));
            }
            if pressed(Key::U) {
                ws.reset_selection();
            }
            if ctx.input(|i| i.key_pressed(Key::G) && i.modifiers.shift_only())
                && let Some(p) = ws.hovered.or(ws.inspected)
                && !ws.select_group_of(p, SelectOp::Replace)
            {
                note = Some("no duplicate group here".to_owned());
            }
            for (key, bad) in [(Key::G, false), (Key::B, true)] {
                if pressed(key) {
                    let points = if ws.selected.is_empty() {
                        ws.hovered.or(ws.inspected).into_iter().collect()
                    } else {
                        ws.selected.clone()
                    };
                    let n = ws.label_quality(&points, bad);
                    note = Some(format!(
                        "labelled {n} {} for the ensemble score",
                        if bad { "bad" } else { "good" }
                    ));
                }
            }
            if pressed(Key::L) {
                ws.map.tool = Tool::Lasso;
            }
            if pressed(Key::R) {
                ws.map.tool = Tool::Box;
            }
            if pressed(Key::H) {
                ws.map.tool = Tool::Pan;
            }
            if pressed(Key::F) {
                ws.map.fit_all(&ws.collection);
            }
            if pressed(Key::T) {
                self.dark = !self.dark;
            }
            let modes = [
                (Key::Num1, ColourMode::Groups),
                (Key::Num2, ColourMode::Outliers),
                (Key::Num3, ColourMode::Quality(ws.measure)),
                (Key::Num4, ColourMode::Decision),
                (Key::Num5, ColourMode::Selection),
                (Key::Num6, ColourMode::Caption),
            ];
            for (key, mode) in modes {
                if pressed(key) {
                    ws.mode = mode;
                }
            }
        }
        if let Some(note) = note {
            self.note(note);
        }
    }

    fn menu(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Browse folders in curate…").clicked() {
                    self.browse_folders(None);
                    ui.close();
                }
                if ui.button("Open folder…  (Ctrl+O)").clicked() {
                    self.pick_folder(ui.ctx());
                }
                let has = self.workspace.is_some();
                let complete = self
                    .workspace
                    .as_ref()
                    .is_some_and(|ws| ws.collection.preview.is_none());
                if ui
                    .add_enabled(complete, egui::Button::new("Save keep-list…  (Ctrl+S)"))
                    .clicked()
                    && let Some(ws) = &self.workspace
                {
                    self.save_dialog = Some(SaveDialog::new(ws, SaveKind::KeepList));
                }
                if ui
                    .add_enabled(complete, egui::Button::new("Export decisions…  (Ctrl+E)"))
                    .clicked()
                    && let Some(ws) = &self.workspace
                {
                    self.save_dialog = Some(SaveDialog::new(ws, SaveKind::Decisions));
                }
                if ui
                    .add_enabled(has, egui::Button::new("Close folder"))
                    .clicked()
                {
                    self.close_workspace();
                }
            });
            if let Some(ws) = &mut self.workspace {
                ui.menu_button("Edit", |ui| {
                    let undo = ws.decisions.undo_label().map(str::to_owned);
                    if ui
                        .add_enabled(
                            undo.is_some(),
                            egui::Button::new(format!(
                                "Undo {}  (Ctrl+Z)",
                                undo.unwrap_or_default()
                            )),
                        )
                        .clicked()
                    {
                        ws.undo();
                    }
                    let redo = ws.decisions.redo_label().map(str::to_owned);
                    if ui
                        .add_enabled(
                            redo.is_some(),
                            egui::Button::new(format!(
                                "Redo {}  (Ctrl+Shift+Z)",
                                redo.unwrap_or_default()
                            )),
                        )
                        .clicked()
                    {
                        ws.redo();
                    }
                    ui.separator();
                    if ui.button("Select all  (Ctrl+A)").clicked() {
                        ws.select_all();
                    }
                    if ui.button("Invert selection  (Ctrl+I)").clicked() {
                        ws.invert_selection();
                    }
                    if ui.button("Clear selection  (Esc)").clicked() {
                        ws.select(Vec::new(), SelectOp::Replace);
                    }
                    ui.separator();
                    if ui.button("Keep selection  (K)").clicked() {
                        ws.mark_selection(true);
                    }
                    if ui.button("Drop selection  (D)").clicked() {
                        ws.mark_selection(false);
                    }
                    if ui.button("Reset selection to the analysis  (U)").clicked() {
                        ws.reset_selection();
                    }
                });
                ui.menu_button("View", |ui| {
                    if ui.button("Fit to data  (F)").clicked() {
                        ws.map.fit_all(&ws.collection);
                    }
                    ui.checkbox(&mut ws.map.show_thumbnails, "Thumbnails when zoomed in");
                    ui.checkbox(&mut ws.map.dim_dropped, "Dim dropped images");
                    ui.add(
                        egui::Slider::new(&mut ws.map.point_size, 1.0..=10.0).text("point size"),
                    );
                });
            }
            if ui
                .button(if self.dark {
                    "Light theme"
                } else {
                    "Dark theme"
                })
                .on_hover_text("Theme (T)")
                .clicked()
            {
                self.dark = !self.dark;
            }
            if ui.button("Help").on_hover_text("Shortcuts (F1)").clicked() {
                self.help = !self.help;
            }
            if let Some(ws) = &mut self.workspace {
                ui.separator();
                for (tool, label, key) in [
                    (Tool::Pan, "Pan", "H"),
                    (Tool::Lasso, "Lasso", "L"),
                    (Tool::Box, "Box", "R"),
                ] {
                    ui.selectable_value(&mut ws.map.tool, tool, label)
                        .on_hover_text(format!("{key} · Shift adds, Alt/Ctrl subtracts"));
                }
                ui.separator();
                egui::ComboBox::from_id_salt("colour-mode")
                    .selected_text(ws.mode.label())
                    .width(190.0)
                    .show_ui(ui, |ui| {
                        for mode in ColourMode::all() {
                            ui.selectable_value(&mut ws.mode, mode, mode.label());
                        }
                        if ws.similarity.is_some() {
                            let mode = ColourMode::Similarity;
                            ui.selectable_value(&mut ws.mode, mode, mode.label());
                        }
                        if ws.collection.summary.is_some() {
                            let mode = ColourMode::Ensemble;
                            ui.selectable_value(&mut ws.mode, mode, mode.label());
                        }
                        if !ws.collection.classes.is_empty() {
                            let mode = ColourMode::Class;
                            ui.selectable_value(&mut ws.mode, mode, mode.label());
                        }
                        if ws.collection.given_classes.is_some() {
                            for mode in [ColourMode::GivenClass, ColourMode::ClassIssue] {
                                ui.selectable_value(&mut ws.mode, mode, mode.label());
                            }
                        }
                    });
                if let Some((embeddings, _)) = ws
                    .collection
                    .embeddings
                    .clone()
                    .filter(|_| ws.collection.text_search)
                {
                    ui.separator();
                    search_box(ui, ws, &embeddings);
                }
            }
        });
    }

    fn status_bar(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(ws) = &self.workspace {
                let c = &ws.counts;
                ui.label(format!("{} images", ws.collection.len()));
                ui.separator();
                ui.label(
                    RichText::new(format!("kept {}", c.kept))
                        .color(Color32::from_rgb(80, 190, 120)),
                );
                let dropped: Vec<String> = c
                    .dropped
                    .iter()
                    .map(|(reason, n)| format!("{} {n}", reason.replace('_', " ")))
                    .collect();
                // The breakdown goes to the hover text where the window is narrow.
                let wide = ui.available_width() > 1150.0;
                ui.label(format!(
                    "dropped {}{}",
                    c.dropped_total(),
                    if dropped.is_empty() || !wide {
                        String::new()
                    } else {
                        format!(" ({})", dropped.join(", "))
                    }
                ))
                .on_hover_text(dropped.join("\n"));
                ui.separator();
                ui.label(format!("selected {}", ws.selected.len()));
                if !ws.collection.problems.is_empty() {
                    ui.separator();
                    ui.label(
                        RichText::new(format!("{} unreadable", ws.collection.problems.len()))
                            .color(Color32::from_rgb(240, 120, 90)),
                    );
                }
                if let Some(err) = &ws.save_error {
                    ui.separator();
                    ui.label(RichText::new(err).color(Color32::from_rgb(240, 90, 90)));
                }
            }
            // What is left of the bar on the right: labels shorten rather than overlap.
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.add(egui::Label::new(format!(
                    "{} · UI {:.1} ms",
                    self.frames
                        .fps()
                        .map_or_else(|| "idle".to_owned(), |fps| format!("{fps:.0} fps")),
                    percentile(&self.frames.ui_times, 0.5)
                )).truncate())
                .on_hover_text("Frames per second while the map moves (idle when nothing is redrawn) and the median time to build the UI of a frame");
                ui.separator();
                let compute = self
                    .workspace
                    .as_ref()
                    .and_then(|w| w.collection.summary.as_ref())
                    .map_or_else(
                        || {
                            self.compute
                                .as_ref()
                                .map_or("CPU".to_owned(), |c| c.description.clone())
                        },
                        |s| s.device.clone(),
                    );
                ui.add(egui::Label::new(format!("compute: {compute}")).truncate());
                ui.separator();
                ui.add(
                    egui::Label::new(format!(
                        "render: {}",
                        self.renderer.as_deref().unwrap_or("none")
                    ))
                    .truncate(),
                );
            });
        });
    }

    /// Notes and the last error, floating over the bottom of the map: they come and go
    /// without moving anything a person is about to click.
    fn toasts(&mut self, ctx: &egui::Context) {
        self.notes
            .retain(|(_, at)| at.elapsed() < Duration::from_secs(6));
        if self.notes.is_empty() && self.error.is_none() {
            return;
        }
        let area = self
            .workspace
            .as_ref()
            .map_or_else(|| ctx.content_rect(), |ws| ws.map.rect);
        let width = (area.width() - 24.0).clamp(120.0, 560.0);
        egui::Area::new(egui::Id::unique("toasts"))
            .order(egui::Order::Foreground)
            .pivot(egui::Align2::CENTER_BOTTOM)
            .fixed_pos(egui::pos2(area.center().x, area.bottom() - 12.0))
            .show(ctx, |ui| {
                ui.set_max_width(width);
                for (note, _) in &self.notes {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.set_max_width(width);
                        ui.label(note.as_str());
                    });
                }
                if let Some(err) = self.error.clone() {
                    egui::Frame::popup(ui.style())
                        .stroke(egui::Stroke::new(1.0, Color32::from_rgb(240, 100, 90)))
                        .show(ui, |ui| {
                            ui.set_max_width(width);
                            ui.horizontal(|ui| {
                                if ui.small_button("x").on_hover_text("Dismiss").clicked() {
                                    self.error = None;
                                }
                                ui.label(
                                    RichText::new(format!("Error: {err}"))
                                        .color(Color32::from_rgb(240, 100, 90)),
                                );
                            });
                        });
                }
            });
        if !self.notes.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(500));
        }
    }

    fn help_window(&mut self, ctx: &egui::Context) {
        let mut open = self.help;
        egui::Window::new("Keyboard shortcuts")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("help").striped(true).show(ui, |ui| {
                    for (keys, what) in [
                        ("drag / right-drag", "pan (Pan tool) / always pan"),
                        ("wheel, pinch", "zoom to the cursor"),
                        ("F, double-click", "fit to data"),
                        ("H / L / R", "pan / lasso / box tool"),
                        ("Shift + lasso/box/click", "add to the selection"),
                        ("Alt or Ctrl + lasso/box/click", "remove from the selection"),
                        ("click", "select and inspect an image"),
                        ("Shift+G", "select the hovered image's duplicate group"),
                        ("G / B", "label the hovered (or selected) images good / bad: the ensemble score learns from them"),
                        ("Ctrl+A / Ctrl+I / Esc", "select all / invert / clear"),
                        ("D or Delete / K / U", "drop / keep / reset the selection"),
                        ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
                        ("Ctrl+S", "save the keep-list"),
                        ("Ctrl+E", "export decisions (CSV or parquet)"),
                        ("Ctrl+O", "open a folder"),
                        (
                            "1 … 6",
                            "colour: groups, outliers, quality, keep/drop, selection, caption",
                        ),
                        ("T", "dark / light theme"),
                        ("F1", "this help"),
                    ] {
                        ui.label(RichText::new(keys).monospace());
                        ui.label(what);
                        ui.end_row();
                    }
                });
            });
        self.help = open;
    }

    fn save_window(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.save_dialog else {
            return;
        };
        if let Some(receive) = &dialog.browsing
            && let Ok(picked) = receive.try_recv()
        {
            if let Some(path) = picked {
                dialog.path = path.display().to_string();
            }
            dialog.browsing = None;
        }
        let title = match dialog.kind {
            SaveKind::KeepList => "Save keep-list",
            SaveKind::Decisions => "Export decisions",
        };
        let mut open = true;
        let mut save = false;
        let mut browse = false;
        egui::Window::new(title)
            .open(&mut open)
            .collapsible(false)
            .default_width(520.0)
            .show(ctx, |ui| {
                ui.label(match dialog.kind {
                    SaveKind::KeepList => "One relative path per line, in scan order: the images to train on.",
                    SaveKind::Decisions => "Every file with keep, reason, group and scores. .csv or .parquet by extension.",
                });
                let field = ui.add(egui::TextEdit::singleline(&mut dialog.path).desired_width(480.0));
                let enter = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                ui.horizontal(|ui| {
                    if ui.button("Save").clicked() || enter {
                        save = true;
                    }
                    if ui.button("Browse…").clicked() {
                        browse = true;
                    }
                });
            });
        if browse {
            let (send, receive) = std::sync::mpsc::channel();
            let start = PathBuf::from(&dialog.path);
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let mut d = rfd::FileDialog::new();
                if let Some(parent) = start.parent() {
                    d = d.set_directory(parent);
                }
                if let Some(name) = start.file_name() {
                    d = d.set_file_name(name.to_string_lossy());
                }
                send.send(d.save_file()).ok();
                ctx.request_repaint();
            });
            dialog.browsing = Some(receive);
        }
        if save {
            let kind = dialog.kind;
            let path = PathBuf::from(dialog.path.trim());
            self.save_to(kind, &path);
        } else if !open {
            self.save_dialog = None;
        }
    }

    fn save_to(&mut self, kind: SaveKind, path: &Path) {
        let Some(ws) = &mut self.workspace else {
            return;
        };
        let result = match kind {
            SaveKind::KeepList => ws
                .save_keep_list(path)
                .map(|n| format!("saved {n} paths to {}", path.display())),
            SaveKind::Decisions => ws
                .export_decisions(path)
                .map(|n| format!("exported {n} decisions to {}", path.display())),
        };
        if ws.unsaved() {
            ws.save_session().ok();
        }
        match result {
            Ok(message) => {
                self.note(message);
                self.save_dialog = None;
                self.error = None;
            }
            Err(err) => self.error = Some(err),
        }
    }

    fn workspace_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let dark = self.dark;
        let Some(ws) = &mut self.workspace else {
            return;
        };
        if let Some(note) = ws.poll_search() {
            self.notes.push((note, Instant::now()));
        }
        if let Some(note) = ws.poll_regroup() {
            self.notes.push((note, Instant::now()));
        }
        if let Some(note) = ws.poll_ensemble() {
            self.notes.push((note, Instant::now()));
        }
        if let Some(note) = super::panels::proposal(&ctx, ws) {
            self.notes.push((note, Instant::now()));
        }
        if ws.search.busy() || ws.search.loading() || ws.regrouping() || ws.refitting() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        ws.hovered = None;
        egui::Panel::left("left")
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| panels::left(ui, ws));
        egui::Panel::right("right")
            .resizable(true)
            .default_size(320.0)
            .show(ui, |ui| panels::right(ui, ws));
        let panel_hover = ws.hovered;
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| {
                let rect = ui.max_rect();
                ws.refresh(dark);
                ws.thumbs.poll();
                let background = if dark {
                    Color32::from_rgb(14, 16, 22)
                } else {
                    Color32::from_rgb(236, 238, 242)
                };
                let response = {
                    let Workspace {
                        map,
                        collection,
                        grid,
                        picker,
                        thumbs,
                        ..
                    } = &mut **ws;
                    map.show(ui, rect, collection, grid, picker, thumbs, background)
                };
                ws.hovered = response.hovered.or(panel_hover);
                ws.map_hover = response.hovered;
                if let Some((point, op)) = response.clicked {
                    match point {
                        Some(p) => {
                            ws.inspected = Some(p);
                            ws.right = RightTab::Inspector;
                            ws.select(vec![p], op);
                        }
                        None if op == SelectOp::Replace => ws.select(Vec::new(), op),
                        None => {}
                    }
                }
                if let Some((points, op)) = response.selected {
                    ws.select(points, op);
                    ws.right = RightTab::Selection;
                }
                if let Some(p) = response.hovered {
                    let c = &ws.collection;
                    let i = p as usize;
                    let caption = c.caption(i).map(str::to_owned);
                    let text = format!(
                        "{}\noutlier {:.3}{}{}",
                        c.path(i),
                        c.ood[i],
                        if c.group[i] >= 0 {
                            format!(" · group {}", c.group[i])
                        } else {
                            String::new()
                        },
                        caption.map_or_else(String::new, |cap| format!("\n“{cap}”")),
                    );
                    let texture = ws.thumbs.texture(&ctx, p);
                    egui::Tooltip::always_open(
                        ctx.clone(),
                        ui.layer_id(),
                        egui::Id::unique("map-hover"),
                        egui::PopupAnchor::Pointer,
                    )
                    .show(|ui| {
                        if let Some(texture) = texture {
                            let size = texture.size_vec2();
                            ui.image((texture.id(), size * (160.0 / size.x.max(size.y))));
                        }
                        ui.label(text);
                    });
                }
                // Legend in the top-left corner of the map; fitting the map keeps clear of it.
                let legend = egui::Area::new(egui::Id::unique("legend"))
                    .fixed_pos(rect.left_top() + egui::vec2(10.0, 10.0))
                    .show(&ctx, |ui| {
                        egui::Frame::popup(ui.style()).show(ui, |ui| panels::legend(ui, ws));
                    });
                let corner = legend.response.rect.max - rect.min;
                if corner.x > 0.0 && corner.y > 0.0 && ws.map.overlay != corner {
                    ws.map.overlay = corner;
                    ctx.request_repaint();
                }
                if ws.thumbs.busy() {
                    ctx.request_repaint_after(Duration::from_millis(30));
                }
            });
        // Autosave decisions a moment after the last change.
        if ws.unsaved() && ws.changed_at.elapsed() > Duration::from_millis(800) {
            ws.save_session().ok();
        } else if ws.unsaved() {
            ctx.request_repaint_after(Duration::from_millis(300));
        }
    }

    fn stress_step(&mut self, ctx: &egui::Context, ui_ms: f32) {
        let Some(run) = &mut self.stress else {
            return;
        };
        let Some(ws) = &mut self.workspace else {
            return;
        };
        let now = Instant::now();
        let started = *run.started.get_or_insert(now);
        run.frames.record(now, ui_ms);
        // Orbit and zoom in and out: every frame pays for a new camera.
        let t = now.duration_since(started).as_secs_f32();
        let b = ws.collection.bounds();
        let radius = 0.25 * (b[2] - b[0]).min(b[3] - b[1]);
        let fit = ws.map.camera_for(b);
        ws.map.camera.centre = [
            (b[0] + b[2]) * 0.5 + radius * (t * 0.7).cos(),
            (b[1] + b[3]) * 0.5 + radius * (t * 0.7).sin(),
        ];
        ws.map.camera.zoom = fit.zoom * (1.0 + 7.0 * (0.5 - 0.5 * (t * 0.9).cos()));
        ctx.request_repaint();
        if t >= run.seconds {
            let report = stress_report(&run.frames, ws, self.renderer.as_deref());
            println!("{report}");
            self.stress_report = Some(report);
            self.stress = None;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

fn percentile(values: &[f32], q: f32) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    v[((v.len() - 1) as f32 * q).round() as usize]
}

fn stress_report(frames: &FrameStats, ws: &Workspace, renderer: Option<&str>) -> String {
    let (intervals, ui_times) = (&frames.intervals, &frames.ui_times);
    let n = ws.collection.len();
    let mean = intervals.iter().sum::<f32>() / intervals.len().max(1) as f32;
    let gpu_bytes = 16.0;
    let per_point = ws.collection.bytes_per_point()
        + ws.grid.bytes() as f64 / n.max(1) as f64
        + 12.0
        + 4.0
        + 4.0
        + gpu_bytes;
    format!(
        "stress: {n} points · {} frames · frame interval mean {mean:.2} ms, p50 {:.2}, p95 {:.2}, max {:.2} ms ({:.1} fps) · UI build p95 {:.2} ms · ~{per_point:.0} bytes/point (CPU columns + grid + KD-tree + GPU buffers) · renderer {}",
        intervals.len(),
        percentile(intervals, 0.5),
        percentile(intervals, 0.95),
        percentile(intervals, 1.0),
        1000.0 / mean.max(1e-3),
        percentile(ui_times, 0.95),
        renderer.unwrap_or("none"),
    )
}

impl SaveDialog {
    /// The dialog for `kind`, offering `DIR/.curate/keep-list.txt` or `decisions.csv`.
    fn new(ws: &Workspace, kind: SaveKind) -> Self {
        let name = match kind {
            SaveKind::KeepList => "keep-list.txt",
            SaveKind::Decisions => "decisions.csv",
        };
        let path = ws.collection.root().map_or_else(
            || name.to_owned(),
            |root| store::curate_dir(root).join(name).display().to_string(),
        );
        Self {
            kind,
            path,
            browsing: None,
        }
    }
}

/// burn on eframe's own wgpu device (one GPU, one set of buffers).
fn shared_compute(
    render_state: &eframe::egui_wgpu::RenderState,
    info: &eframe::wgpu::AdapterInfo,
) -> Option<ComputeDevice> {
    use burn::tensor::Device;
    use burn::tensor::wgpu::WgpuSetup as BurnSetup;
    let setup = BurnSetup {
        instance: render_state.instance.clone(),
        adapter: render_state.adapter.clone(),
        device: render_state.device.clone(),
        queue: render_state.queue.clone(),
        backend: info.backend,
    };
    match Device::wgpu_options().setup(setup).init() {
        Ok(device) => Some(ComputeDevice {
            device,
            description: format!(
                "GPU: {} ({:?}), shared with the map",
                info.name, info.backend
            ),
            is_gpu: true,
            max_buffer: Some(render_state.device.limits().max_buffer_size),
        }),
        Err(err) => {
            log::warn!("could not share the GPU with burn: {err}");
            None
        }
    }
}

/// The text search field (CLIP text tower) next to the colour modes.
fn search_box(
    ui: &mut egui::Ui,
    ws: &mut Workspace,
    embeddings: &std::sync::Arc<super::search::PointEmbeddings>,
) {
    let ready = ws.search.text_ready();
    let hint = if ready {
        "search images by text"
    } else if ws.search.loading() {
        "loading the text model..."
    } else {
        "text search unavailable"
    };
    let field = ui.add_enabled(
        ready,
        egui::TextEdit::singleline(&mut ws.search.query)
            .hint_text(hint)
            .desired_width(200.0),
    );
    if let Some(err) = &ws.search.error {
        field.on_hover_text(err.clone());
        return;
    }
    let enter = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
    let go = ui.add_enabled(ready && !ws.search.busy(), egui::Button::new("Search"));
    if (enter || go.clicked()) && ready {
        ws.search.run_text(embeddings);
    }
    if ws.search.busy() || ws.search.loading() {
        ui.spinner();
    }
}

/// The job's progress bar: stage and items done of the total.
fn progress_bar(job: &Job, width: f32) -> egui::ProgressBar {
    let stage = job.stage.map_or("starting", |s| s.label());
    let fraction = if job.total > 0 {
        job.done as f32 / job.total as f32
    } else {
        0.0
    };
    egui::ProgressBar::new(fraction)
        .desired_width(width)
        .text(if job.total > 0 {
            format!("{stage} · {} / {}", job.done, job.total)
        } else {
            stage.to_owned()
        })
}

impl eframe::App for CurateApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        ctx.set_theme(if self.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        self.poll_job(&ctx);
        self.watch_report();
        if self.workspace.is_some() {
            // Wake now and then to notice a report rewritten by another process.
            ctx.request_repaint_after(Duration::from_secs(2));
        }
        if let Some((asked, receive)) = &self.picking
            && let Ok(picked) = receive.try_recv()
        {
            let quick = asked.elapsed() < Duration::from_millis(600);
            self.picking = None;
            match picked {
                Some(dir) => self.open_folder(dir),
                // No person cancels a dialog that fast: there was none (no file-chooser
                // portal, no zenity). Browse in the app instead.
                None if quick => self.browse_folders(Some(
                    "No system folder chooser answered (no file-chooser portal or zenity on this desktop), so curate shows its own.".to_owned(),
                )),
                None => {}
            }
        }
        if let Some(browser) = &mut self.folders
            && let Some(chosen) = browser.show(&ctx)
        {
            self.folders = None;
            if let Some(dir) = chosen {
                self.open_folder(dir);
            }
        }
        self.shortcuts(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if self.workspace.is_some() {
            self.workspace_ui(ui);
            if self.job.is_some()
                && let Some((rect, legend)) = self
                    .workspace
                    .as_ref()
                    .map(|ws| (ws.map.rect, ws.map.overlay))
            {
                // Within the map, right of the legend (top left of the map); its text wraps
                // rather than reaching over the panels beside the map.
                let room = (rect.width() - legend.x - 24.0).max(180.0);
                // The analysis goes on (a preview, or a reload) in a strip floating over the
                // top of the map: nothing else moves when it comes and goes.
                egui::Area::new(egui::Id::unique("progress"))
                    .order(egui::Order::Foreground)
                    .pivot(egui::Align2::RIGHT_TOP)
                    .fixed_pos(rect.right_top() + egui::vec2(-8.0, 8.0))
                    .show(&ctx, |ui| {
                        egui::Frame::popup(ui.style()).show(ui, |ui| {
                            ui.set_max_width(room);
                            self.progress_strip(ui);
                        });
                    });
            }
        } else {
            egui::CentralPanel::default().show(ui, |ui| {
                if !self.progress_card(ui) {
                    self.start_screen(ui);
                }
            });
        }
        self.help_window(&ctx);
        self.save_window(&ctx);
        self.toasts(&ctx);
        let ui_ms = started.elapsed().as_secs_f32() * 1000.0;
        self.frames.record(Instant::now(), ui_ms);
        self.stress_step(&ctx, ui_ms);
    }

    fn on_exit(&mut self) {
        if let Some(ws) = &mut self.workspace
            && ws.unsaved()
        {
            ws.save_session().ok();
        }
        if let Some(job) = self.job.take() {
            job.cancel_and_wait(Duration::from_secs(5));
        }
    }
}
