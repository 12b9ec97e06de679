//! The map widget: camera, pan/zoom/fit, hover, click, lasso and box selection, the
//! thumbnail atlas, and the one `egui_wgpu` paint callback that hands a frame to
//! [`MapRenderer`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, Vec2};
use eframe::egui_wgpu::{self, wgpu};
use rayon::prelude::*;

use crate::render::gpu::{
    self, ATLAS_CELLS, CELL_SIDE, CameraUniform, NO_POINT, OPTION_DIM_DROPPED, PointFlags,
    SpriteInstance,
};
use crate::render::map::{CellUpload, MapFrame, MapRenderer, Versioned};

use super::model::Collection;
use super::select::{Grid, Picker};
use super::thumbs::Thumbs;

/// What a drag with the primary button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Move the map.
    Pan,
    /// Draw a free-hand outline.
    Lasso,
    /// Drag a rectangle.
    Box,
}

/// How a selection gesture combines with the current selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectOp {
    /// Replace it.
    Replace,
    /// Add to it (Shift).
    Add,
    /// Remove from it (Alt or Ctrl).
    Subtract,
}

impl SelectOp {
    fn from_modifiers(m: egui::Modifiers) -> Self {
        if m.shift {
            Self::Add
        } else if m.alt || m.command || m.ctrl {
            Self::Subtract
        } else {
            Self::Replace
        }
    }
}

/// What happened on the map this frame.
#[derive(Debug, Default)]
pub struct MapResponse {
    /// The point under the pointer.
    pub hovered: Option<u32>,
    /// A click: on a point, or on empty space (`None`), with its combine mode.
    pub clicked: Option<(Option<u32>, SelectOp)>,
    /// A finished lasso or box: the points inside, sorted.
    pub selected: Option<(Vec<u32>, SelectOp)>,
}

/// A camera: the map point at the centre of the view and the zoom in UI points per map unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Map coordinates at the centre.
    pub centre: [f32; 2],
    /// UI points per map unit.
    pub zoom: f32,
}

struct Flight {
    from: Camera,
    to: Camera,
    started: Instant,
}

/// Thumbnails currently in the GPU atlas.
#[derive(Default)]
struct Atlas {
    /// Point → (cell, thumbnail width, height).
    cell_of: HashMap<u32, (u32, u32, u32)>,
    owner: Vec<Option<u32>>,
    used: Vec<u64>,
    frame: u64,
}

impl Atlas {
    fn cell_for(&mut self, point: u32) -> Option<(u32, u32, u32)> {
        let entry = *self.cell_of.get(&point)?;
        self.used[entry.0 as usize] = self.frame;
        Some(entry)
    }

    /// A free cell, or the least recently used one not drawn this frame.
    fn allocate(&mut self, point: u32, width: u32, height: u32) -> Option<u32> {
        if self.owner.is_empty() {
            self.owner = vec![None; ATLAS_CELLS as usize];
            self.used = vec![0; ATLAS_CELLS as usize];
        }
        let cell = (0..ATLAS_CELLS as usize)
            .filter(|&c| self.owner[c].is_none() || self.used[c] < self.frame)
            .min_by_key(|&c| (self.owner[c].is_some(), self.used[c]))?;
        if let Some(old) = self.owner[cell].take() {
            self.cell_of.remove(&old);
        }
        self.owner[cell] = Some(point);
        self.used[cell] = self.frame;
        self.cell_of.insert(point, (cell as u32, width, height));
        Some(cell as u32)
    }
}

/// The map's state.
pub struct MapView {
    /// The camera.
    pub camera: Camera,
    fit: Option<Camera>,
    flight: Option<Flight>,
    /// The drag tool.
    pub tool: Tool,
    lasso: Vec<Pos2>,
    box_start: Option<Pos2>,
    /// The map's screen rect last frame.
    pub rect: Rect,
    /// Size of the overlay (the legend) in the map's top-left corner, set by the app each
    /// frame: fitting the map keeps the points out from under it.
    pub overlay: Vec2,
    /// The overlay size of the last fit (a fitted view refits when the overlay changes).
    fitted_overlay: Vec2,
    /// Point diameter in UI points when zoomed out.
    pub point_size: f32,
    /// Draw thumbnails when zoomed in.
    pub show_thumbnails: bool,
    /// Draw dropped points dimmed.
    pub dim_dropped: bool,
    scene: u64,
    positions: Versioned<Vec<[f32; 2]>>,
    colours: Versioned<Vec<u32>>,
    flags: Versioned<Vec<PointFlags>>,
    atlas: Atlas,
    /// Sprites drawn last frame (points with their thumbnail on the map).
    pub sprites_drawn: usize,
    sprite_side_pts: f32,
    morph: Option<Morph>,
}

/// A running transition of every point from an earlier layout to the collection's own (the
/// preview's PCA map turning into the final UMAP map).
struct Morph {
    from: Arc<Vec<[f32; 2]>>,
    start: Instant,
}

/// Screen points between the corner overlay and the fitted map.
const OVERLAY_GAP: f32 = 12.0;

/// How long a layout transition takes.
const MORPH_SECS: f32 = 1.5;

impl std::fmt::Debug for MapView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapView")
            .field("camera", &self.camera)
            .field("tool", &self.tool)
            .finish_non_exhaustive()
    }
}

/// Installs the renderer in egui's wgpu callback resources (once per device).
pub fn install(render_state: &egui_wgpu::RenderState) {
    let renderer = MapRenderer::new(&render_state.device, render_state.target_format, 1);
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(renderer);
}

struct MapCallback {
    frame: MapFrame,
}

impl egui_wgpu::CallbackTrait for MapCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = resources.get_mut::<MapRenderer>() {
            renderer.prepare(device, queue, &self.frame);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(renderer) = resources.get::<MapRenderer>() {
            renderer.paint(pass);
        }
    }
}

impl MapView {
    /// A view of `collection` (colours and flags are set by the app).
    #[must_use]
    pub fn new(collection: &Collection) -> Self {
        let n = collection.len();
        Self {
            camera: Camera {
                centre: [0.0, 0.0],
                zoom: 1.0,
            },
            fit: None,
            flight: None,
            tool: Tool::Pan,
            lasso: Vec::new(),
            box_start: None,
            rect: Rect::NOTHING,
            overlay: Vec2::ZERO,
            fitted_overlay: Vec2::ZERO,
            point_size: if n > 200_000 { 2.0 } else { 4.0 },
            show_thumbnails: true,
            dim_dropped: true,
            scene: collection.scene,
            positions: Versioned::shared(Arc::clone(&collection.positions)),
            colours: Versioned::new(vec![gpu::pack_rgba(200, 200, 200, 255); n]),
            flags: Versioned::new(vec![PointFlags::empty(); n]),
            atlas: Atlas::default(),
            sprites_drawn: 0,
            sprite_side_pts: 0.0,
            morph: None,
        }
    }

    /// Starts a transition from `from` (each point's earlier position, `None` for points
    /// that had none) to the collection's layout. The earlier layout is first scaled onto
    /// the new one's bounds, so only the shape changes.
    pub fn morph_from(&mut self, from: &[Option<[f32; 2]>], collection: &Collection) {
        let to = &collection.positions;
        let bounds = |points: &mut dyn Iterator<Item = [f32; 2]>| {
            points.fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, p| {
                [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ]
            })
        };
        let old = bounds(&mut from.iter().flatten().copied());
        let new = bounds(&mut to.iter().copied());
        if from.len() != to.len() || old[0] > old[2] || new[0] > new[2] {
            return;
        }
        let axis = |v: f32, a: usize| {
            let span = (old[a + 2] - old[a]).max(1e-6);
            new[a] + (v - old[a]) / span * (new[a + 2] - new[a])
        };
        let start: Vec<[f32; 2]> = from
            .iter()
            .zip(to.iter())
            .map(|(f, t)| f.map_or(*t, |f| [axis(f[0], 0), axis(f[1], 1)]))
            .collect();
        // Nothing moves more than a hair: no transition.
        let still = |a: &[f32; 2], b: &[f32; 2]| (a[0] - b[0]).abs() + (a[1] - b[1]).abs() < 1e-6;
        if start.iter().zip(to.iter()).all(|(a, b)| still(a, b)) {
            return;
        }
        self.positions.set(start);
        self.morph = Some(Morph {
            from: Arc::clone(&self.positions.data),
            start: Instant::now(),
        });
    }

    /// Whether a layout transition is running.
    #[must_use]
    pub fn morphing(&self) -> bool {
        self.morph.is_some()
    }

    /// Advances the layout transition by one frame.
    fn step_morph(&mut self, ctx: &egui::Context, collection: &Collection) {
        let Some(morph) = &self.morph else {
            return;
        };
        let t = morph.start.elapsed().as_secs_f32() / MORPH_SECS;
        if t >= 1.0 {
            self.morph = None;
            self.positions.generation += 1;
            self.positions.data = Arc::clone(&collection.positions);
            return;
        }
        // Smoothstep: starts and ends at rest.
        let e = t * t * (3.0 - 2.0 * t);
        let now: Vec<[f32; 2]> = morph
            .from
            .par_iter()
            .zip(collection.positions.par_iter())
            .map(|(a, b)| [a[0] + (b[0] - a[0]) * e, a[1] + (b[1] - a[1]) * e])
            .collect();
        self.positions.set(now);
        ctx.request_repaint();
    }

    /// Keeps the view settings of `previous` (the map this one replaces) and its camera when
    /// the user had moved it; otherwise the new points are fitted in view.
    pub fn continue_from(&mut self, previous: &Self, collection: &Collection) {
        self.tool = previous.tool;
        self.point_size = previous.point_size;
        self.show_thumbnails = previous.show_thumbnails;
        self.dim_dropped = previous.dim_dropped;
        if previous.fit.is_some_and(|fit| fit != previous.camera) {
            self.rect = previous.rect;
            self.fit = Some(self.camera_for(collection.bounds()));
            self.camera = previous.camera;
        }
    }

    /// Sets the point colours (packed RGBA8).
    pub fn set_colours(&mut self, colours: Vec<u32>) {
        self.colours.set(colours);
    }

    /// Sets the point flags.
    pub fn set_flags(&mut self, flags: Vec<PointFlags>) {
        self.flags.set(flags);
    }

    /// Map → screen.
    #[must_use]
    pub fn to_screen(&self, p: [f32; 2]) -> Pos2 {
        let c = self.rect.center();
        Pos2::new(
            c.x + (p[0] - self.camera.centre[0]) * self.camera.zoom,
            c.y - (p[1] - self.camera.centre[1]) * self.camera.zoom,
        )
    }

    /// Screen → map.
    #[must_use]
    pub fn to_map(&self, p: Pos2) -> [f32; 2] {
        let c = self.rect.center();
        [
            self.camera.centre[0] + (p.x - c.x) / self.camera.zoom,
            self.camera.centre[1] - (p.y - c.y) / self.camera.zoom,
        ]
    }

    /// The camera that shows `bounds` (`[min_x, min_y, max_x, max_y]`) with a margin, clear
    /// of the corner overlay: beside it or below it, whichever leaves the larger map.
    #[must_use]
    pub fn camera_for(&self, bounds: [f32; 4]) -> Camera {
        let rect = if self.rect.is_positive() {
            self.rect
        } else {
            Rect::from_min_size(Pos2::ZERO, Vec2::splat(50.0))
        };
        let w = (bounds[2] - bounds[0]).max(1e-3);
        let h = (bounds[3] - bounds[1]).max(1e-3);
        let gap = OVERLAY_GAP;
        let mut areas = vec![rect];
        if self.overlay.x > 0.0 && self.overlay.y > 0.0 {
            let mut beside = rect;
            beside.min.x += self.overlay.x + gap;
            let mut below = rect;
            below.min.y += self.overlay.y + gap;
            areas = vec![beside, below];
        }
        let (area, zoom) = areas
            .into_iter()
            .filter(|a| a.width() >= 50.0 && a.height() >= 50.0)
            .map(|a| (a, (a.width() / w).min(a.height() / h) * 0.9))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((
                rect,
                (rect.width() / w).min(rect.height() / h).max(1e-6) * 0.9,
            ));
        // The bounds' centre goes to the area's centre, off the rect's centre by `offset`.
        let offset = area.center() - rect.center();
        Camera {
            centre: [
                (bounds[0] + bounds[2]) * 0.5 - offset.x / zoom,
                (bounds[1] + bounds[3]) * 0.5 + offset.y / zoom,
            ],
            zoom,
        }
    }

    /// Fits the whole collection in view.
    pub fn fit_all(&mut self, collection: &Collection) {
        self.fitted_overlay = self.overlay;
        let camera = self.camera_for(collection.bounds());
        self.fit = Some(camera);
        self.camera = camera;
        self.flight = None;
    }

    /// Animates the camera to show `bounds`, zooming in no further than `max_zoom_factor` ×
    /// the fit-all zoom.
    pub fn fly_to(&mut self, bounds: [f32; 4], max_zoom_factor: f32) {
        let mut to = self.camera_for(bounds);
        if let Some(fit) = self.fit {
            to.zoom = to.zoom.min(fit.zoom * max_zoom_factor).max(fit.zoom);
        }
        self.flight = Some(Flight {
            from: self.camera,
            to,
            started: Instant::now(),
        });
    }

    /// Zooms by `factor` keeping the map point under `anchor` (screen) fixed.
    pub fn zoom_at(&mut self, anchor: Pos2, factor: f32) {
        let before = self.to_map(anchor);
        let limit = self.fit.map_or(1e9, |f| f.zoom * 5000.0);
        let floor = self.fit.map_or(1e-9, |f| f.zoom * 0.05);
        self.camera.zoom = (self.camera.zoom * factor).clamp(floor, limit);
        let after = self.to_map(anchor);
        self.camera.centre[0] += before[0] - after[0];
        self.camera.centre[1] += before[1] - after[1];
    }

    /// The visible part of the map: `[min_x, min_y, max_x, max_y]`.
    #[must_use]
    pub fn visible_bounds(&self) -> [f32; 4] {
        let a = self.to_map(self.rect.left_bottom());
        let b = self.to_map(self.rect.right_top());
        [a[0], a[1], b[0], b[1]]
    }

    /// Lays out, handles input and paints the map into `rect`.
    #[allow(clippy::too_many_arguments)]
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rect: Rect,
        collection: &Collection,
        grid: &Grid,
        picker: &Picker,
        thumbs: &mut Thumbs,
        background: Color32,
    ) -> MapResponse {
        let first = self.rect == Rect::NOTHING;
        // A view still at its fit follows the map's size and the corner overlay's.
        let moved_frame = self.rect.size() != rect.size() || self.fitted_overlay != self.overlay;
        self.rect = rect;
        if first || (moved_frame && self.fit.is_some_and(|f| f == self.camera)) {
            self.fit_all(collection);
        }
        let response = ui.allocate_rect(rect, Sense::click_and_drag());
        let mut out = MapResponse::default();
        self.animate(ui.ctx());
        self.step_morph(ui.ctx(), collection);
        self.handle_input(ui, &response, grid, collection, &mut out);

        // Hover: the nearest point within 8 UI points.
        if let Some(pointer) = response.hover_pos()
            && self.lasso.is_empty()
            && self.box_start.is_none()
        {
            let reach = 8.0_f32.max(self.sprite_side_pts * 0.5) / self.camera.zoom;
            out.hovered = picker.nearest(self.to_map(pointer), reach);
        }
        if let Some((point, _)) = &mut out.clicked {
            *point = out.hovered;
        }

        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, background);
        let ppp = ui.ctx().pixels_per_point();
        // Sprites: size from the spacing of the points actually in view.
        let visible = (self.show_thumbnails && self.sprite_side(collection) > 0.0).then(|| {
            let view = self.visible_bounds();
            grid.in_box(
                &collection.positions,
                [view[0], view[1]],
                [view[2], view[3]],
            )
        });
        self.sprite_side_pts = visible.as_ref().map_or(0.0, |v| {
            let spacing = (rect.width() * rect.height() / v.len().max(1) as f32).sqrt();
            if spacing < 28.0 {
                0.0
            } else {
                (spacing * 0.85).min(160.0)
            }
        });
        let mut camera = self.uniform(collection, ppp, out.hovered);
        camera.sprite_px = self.sprite_side_pts * ppp;
        let (sprites, uploads) = match visible {
            Some(visible) if self.sprite_side_pts > 0.0 => {
                self.sprites(collection, visible, thumbs)
            }
            _ => (Vec::new(), Vec::new()),
        };
        self.sprites_drawn = sprites.len();
        let frame = MapFrame {
            scene: self.scene,
            positions: self.positions.clone(),
            colours: self.colours.clone(),
            flags: self.flags.clone(),
            camera,
            sprites: Arc::new(sprites),
            uploads: Arc::new(uploads),
        };
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            MapCallback { frame },
        ));
        self.paint_gesture(&painter);
        out
    }

    fn animate(&mut self, ctx: &egui::Context) {
        let Some(flight) = &self.flight else {
            return;
        };
        let t = (flight.started.elapsed().as_secs_f32() / 0.45).min(1.0);
        let s = t * t * (3.0 - 2.0 * t);
        let lerp = |a: f32, b: f32| a + (b - a) * s;
        // Zoom interpolates in log space so the motion looks even.
        self.camera = Camera {
            centre: [
                lerp(flight.from.centre[0], flight.to.centre[0]),
                lerp(flight.from.centre[1], flight.to.centre[1]),
            ],
            zoom: (lerp(flight.from.zoom.ln(), flight.to.zoom.ln())).exp(),
        };
        if t >= 1.0 {
            self.flight = None;
        } else {
            ctx.request_repaint();
        }
    }

    fn handle_input(
        &mut self,
        ui: &egui::Ui,
        response: &egui::Response,
        grid: &Grid,
        collection: &Collection,
        out: &mut MapResponse,
    ) {
        let (scroll, zoom_delta, modifiers) =
            ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta(), i.modifiers));
        if let Some(pointer) = response.hover_pos() {
            let wheel = if modifiers.ctrl || modifiers.command {
                0.0
            } else {
                scroll.y
            };
            let factor = (wheel * 0.0025).exp() * zoom_delta;
            if (factor - 1.0).abs() > 1e-4 {
                self.flight = None;
                self.zoom_at(pointer, factor);
            }
        }

        let primary = ui.input(|i| i.pointer.primary_down());
        let pans = response.dragged_by(egui::PointerButton::Secondary)
            || response.dragged_by(egui::PointerButton::Middle)
            || (self.tool == Tool::Pan && response.dragged_by(egui::PointerButton::Primary));
        if pans {
            let d = response.drag_delta();
            self.flight = None;
            self.camera.centre[0] -= d.x / self.camera.zoom;
            self.camera.centre[1] += d.y / self.camera.zoom;
        }
        let gesture = self.tool != Tool::Pan;
        if gesture && response.drag_started_by(egui::PointerButton::Primary) {
            // Where the button went down, not where the drag was recognised.
            let start = ui
                .input(|i| i.pointer.press_origin())
                .or_else(|| response.interact_pointer_pos())
                .unwrap_or_else(|| self.rect.center());
            match self.tool {
                Tool::Lasso => self.lasso = vec![start],
                Tool::Box => self.box_start = Some(start),
                Tool::Pan => {}
            }
        }
        if gesture
            && primary
            && let Some(pos) = response.interact_pointer_pos()
        {
            if self.tool == Tool::Lasso
                && !self.lasso.is_empty()
                && self
                    .lasso
                    .last()
                    .is_none_or(|last| last.distance(pos) >= 2.0)
            {
                self.lasso.push(pos);
            }
            if self.tool == Tool::Box && self.box_start.is_some() {
                self.lasso = vec![pos];
            }
        }
        if gesture && response.drag_stopped() {
            let op = SelectOp::from_modifiers(modifiers);
            let started = Instant::now();
            if let Some(start) = self.box_start.take() {
                let end = self.lasso.first().copied().unwrap_or(start);
                let points =
                    grid.in_box(&collection.positions, self.to_map(start), self.to_map(end));
                out.selected = Some((points, op));
            } else if self.lasso.len() >= 3 {
                let polygon: Vec<[f32; 2]> = self.lasso.iter().map(|&p| self.to_map(p)).collect();
                out.selected = Some((grid.lasso(&collection.positions, &polygon), op));
            }
            log::debug!("selection took {:?}", started.elapsed());
            self.lasso.clear();
        }
        if response.clicked() {
            let op = SelectOp::from_modifiers(modifiers);
            out.clicked = Some((None, op));
        }
        if response.double_clicked() {
            self.fit_all(collection);
        }
    }

    fn paint_gesture(&self, painter: &egui::Painter) {
        let stroke = Stroke::new(1.5, Color32::from_rgb(255, 210, 60));
        let fill = Color32::from_rgba_unmultiplied(255, 210, 60, 24);
        if let Some(start) = self.box_start {
            if let Some(&end) = self.lasso.first() {
                let r = Rect::from_two_pos(start, end);
                painter.rect(r, 0.0, fill, stroke, egui::StrokeKind::Middle);
            }
        } else if self.lasso.len() >= 2 {
            painter.add(egui::Shape::convex_polygon(
                self.lasso.clone(),
                fill,
                Stroke::NONE,
            ));
            let mut closed = self.lasso.clone();
            closed.push(self.lasso[0]);
            painter.add(egui::Shape::line(closed, stroke));
        }
    }

    /// Zoom relative to fit-all (1 = whole map in view).
    #[must_use]
    pub fn relative_zoom(&self) -> f32 {
        self.fit.map_or(1.0, |f| self.camera.zoom / f.zoom)
    }

    fn uniform(&self, collection: &Collection, ppp: f32, hovered: Option<u32>) -> CameraUniform {
        let size = self.rect.size().max(Vec2::splat(1.0));
        let rel = self.relative_zoom().max(1e-3);
        let point_pts = (self.point_size * rel.powf(0.3)).clamp(self.point_size, 14.0);
        // Density: about how many points overlap one point's footprint in view.
        let n = collection.len().max(1) as f32;
        let visible = (n / (rel * rel)).max(1.0);
        let footprint = visible * point_pts * point_pts;
        let alpha = (1.6 * size.x * size.y / footprint).clamp(0.12, 1.0);
        CameraUniform {
            centre: self.camera.centre,
            scale: [
                2.0 * self.camera.zoom / size.x,
                2.0 * self.camera.zoom / size.y,
            ],
            viewport: [size.x * ppp, size.y * ppp],
            point_px: point_pts * ppp,
            alpha,
            sprite_px: 0.0,
            hovered: hovered.unwrap_or(NO_POINT),
            options: if self.dim_dropped {
                OPTION_DIM_DROPPED
            } else {
                0
            },
            pad: 0,
        }
    }

    /// A first guess of the sprite size from the average density (0 = zoomed out too far
    /// for thumbnails, without looking at the points in view).
    fn sprite_side(&self, collection: &Collection) -> f32 {
        let rel = self.relative_zoom();
        let n = collection.len() as f32;
        let size = self.rect.size();
        // Average spacing of points in view, in UI points, if spread evenly.
        let visible = (n / (rel * rel)).max(1.0);
        let spacing = (size.x * size.y / visible).sqrt();
        if spacing < 6.0 {
            0.0
        } else {
            (spacing * 0.9).clamp(36.0, 160.0)
        }
    }

    /// Picks the visible points nearest the centre, up to the atlas size, and their
    /// thumbnails (requesting missing ones).
    fn sprites(
        &mut self,
        collection: &Collection,
        mut visible: Vec<u32>,
        thumbs: &mut Thumbs,
    ) -> (Vec<SpriteInstance>, Vec<CellUpload>) {
        self.atlas.frame += 1;
        let centre = self.camera.centre;
        let distance = |p: u32| {
            let q = collection.positions[p as usize];
            (q[0] - centre[0]).powi(2) + (q[1] - centre[1]).powi(2)
        };
        if visible.len() > ATLAS_CELLS as usize {
            visible.select_nth_unstable_by(ATLAS_CELLS as usize, |&a, &b| {
                distance(a).total_cmp(&distance(b))
            });
            visible.truncate(ATLAS_CELLS as usize);
        }
        // Farthest first, so the central thumbnails are drawn on top.
        visible.sort_by(|&a, &b| distance(b).total_cmp(&distance(a)));
        let flags = &self.flags.data;
        let colours = &self.colours.data;
        let mut sprites = Vec::new();
        let mut uploads = Vec::new();
        for &point in &visible {
            let entry = match self.atlas.cell_for(point) {
                Some(entry) => Some(entry),
                None if uploads.len() < 48 => thumbs.image(point).and_then(|thumb| {
                    let (w, h) = (thumb.width.min(CELL_SIDE), thumb.height.min(CELL_SIDE));
                    let cell = self.atlas.allocate(point, w, h)?;
                    uploads.push(CellUpload {
                        cell,
                        width: thumb.width,
                        height: thumb.height,
                        rgba: Arc::clone(&thumb.rgba),
                    });
                    Some((cell, w, h))
                }),
                None => None,
            };
            let Some((cell, w, h)) = entry else { continue };
            let longest = w.max(h).max(1) as f32;
            sprites.push(SpriteInstance {
                centre: collection.positions[point as usize],
                extent: [w as f32 / longest, h as f32 / longest],
                cell,
                flags: flags.get(point as usize).map_or(0, PointFlags::bits),
                border: colours.get(point as usize).copied().unwrap_or(0) | 0xff00_0000,
                uv_scale: longest / CELL_SIDE as f32,
            });
        }
        (sprites, uploads)
    }
}
