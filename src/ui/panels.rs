//! The side panels: Duplicates, Outliers, Quality, Problems on the left; Inspector and the
//! Selection grid on the right; and the map legend.

use crate::pipeline::OutlierScore;
use eframe::egui::{self, Color32, RichText, Sense, Vec2};
use egui_plot::{Bar, BarChart, Plot, VLine};

use crate::analysis::keep::DropReason;
use crate::analysis::quality::SCORE_NAMES;
use crate::render::colormap;

use super::map_view::SelectOp;
use super::model::{Collection, DupKind, MEASURES, Source};
use super::thumbs;
use super::workspace::{
    CAPTIONED, CLASS_COLOURS, ColourMode, FullImage, Histogram, KEPT, LeftTab, RightTab,
    SELECTED_COLOUR, Workspace, drop_colour, egui_colour,
};

/// Thumbnail side in the galleries, in UI points.
const THUMB: f32 = 64.0;

/// Draws one clickable thumbnail of `point`; `border` marks keeper / dropped / selected.
fn thumbnail(ui: &mut egui::Ui, ws: &mut Workspace, point: u32, side: f32) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::click());
    if ui.is_rect_visible(rect) {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
        if let Some(texture) = ws.thumbs.texture(ui.ctx(), point) {
            let size = texture.size_vec2();
            let scale = (side - 4.0) / size.x.max(size.y);
            let image_rect = egui::Rect::from_center_size(rect.center(), size * scale);
            // True colours whatever the decision: dimming a dropped copy makes a medium
            // skin tone look dark, and colour is what tells a copy from a variant.
            painter.image(
                texture.id(),
                image_rect,
                egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                Color32::WHITE,
            );
        } else if ws.thumbs.failed(point) {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "no preview",
                egui::FontId::proportional(10.0),
                ui.visuals().weak_text_color(),
            );
        }
        let selected = ws.selected.binary_search(&point).is_ok();
        let border = match ws.decisions.drop_reason(&ws.collection, point as usize) {
            _ if selected => Some(egui_colour(SELECTED_COLOUR)),
            Some(reason) => Some(egui_colour(drop_colour(reason))),
            None => None,
        };
        if let Some(colour) = border {
            painter.rect_stroke(
                rect,
                2.0,
                egui::Stroke::new(2.0, colour),
                egui::StrokeKind::Inside,
            );
        }
        if let Some(reason) = ws.decisions.drop_reason(&ws.collection, point as usize) {
            // A dropped image: a cross on a badge in its drop colour, bottom right.
            let centre = rect.right_bottom() - Vec2::splat(8.0);
            painter.circle_filled(centre, 6.5, egui_colour(drop_colour(reason)));
            let d = 3.0;
            let stroke = egui::Stroke::new(1.6, Color32::BLACK);
            painter.line_segment(
                [centre + Vec2::new(-d, -d), centre + Vec2::new(d, d)],
                stroke,
            );
            painter.line_segment(
                [centre + Vec2::new(-d, d), centre + Vec2::new(d, -d)],
                stroke,
            );
        }
        if response.hovered() {
            ws.hovered = Some(point);
        }
    }
    response
}

/// The left panel.
pub fn left(ui: &mut egui::Ui, ws: &mut Workspace) {
    let mut tabs = vec![
        (LeftTab::Duplicates, "Duplicates"),
        (LeftTab::Outliers, "Outliers"),
        (LeftTab::Quality, "Quality"),
    ];
    if ws.collection.given_classes.is_some() {
        tabs.push((LeftTab::Classes, "Classes"));
    }
    tabs.push((LeftTab::Problems, "Problems"));
    ui.horizontal(|ui| {
        for (tab, label) in tabs {
            if ui.selectable_label(ws.left == tab, label).clicked() {
                ws.left = tab;
                match tab {
                    LeftTab::Outliers => ws.mode = ColourMode::Outliers,
                    LeftTab::Quality => ws.mode = ColourMode::Quality(ws.measure),
                    LeftTab::Duplicates => ws.mode = ColourMode::Groups,
                    LeftTab::Classes => ws.mode = ColourMode::ClassIssue,
                    LeftTab::Problems => {}
                }
            }
        }
    });
    ui.separator();
    match ws.left {
        LeftTab::Duplicates => duplicates(ui, ws),
        LeftTab::Outliers => outliers(ui, ws),
        LeftTab::Quality => quality(ui, ws),
        LeftTab::Classes => classes(ui, ws),
        LeftTab::Problems => problems(ui, ws),
    }
}

/// Given classes (`--class-from`): which get confused, the images most likely in the
/// wrong class, and relabelling by hand.
fn classes(ui: &mut egui::Ui, ws: &mut Workspace) {
    // An `Arc`: what the panel shows was derived once, with the collection.
    let Some(given) = ws.collection.given_classes.clone() else {
        ui.label(
            "Run the analysis with --class-from folder|manifest to check the images' classes.",
        );
        return;
    };
    ui.label(format!(
        "{} classes over {} images · {} where another class fits better",
        given.names.len(),
        given.classed,
        given.disputed_count
    ))
    .on_hover_text(
        "Each image's class is checked against what the rest of the data says: a linear \
         read-out of the embeddings from every other image (ridge regression, exact \
         leave-one-out). Score 0: the data agrees; 0.5: undecided; 1: another class fits \
         clearly better (report column class_issue_score).",
    );
    ui.separator();
    ui.label(RichText::new("Confused classes (given -> suggested)").strong());
    let confusions = given.confusions();
    if confusions.is_empty() {
        ui.label(RichText::new("none: every image fits its own class best").weak());
    }
    egui::Grid::new("class-confusions")
        .striped(true)
        .show(ui, |ui| {
            for &((g, sug), count) in confusions.iter().take(8) {
                let text = format!(
                    "{} -> {}",
                    given.name(g).unwrap_or("?"),
                    given.name(sug).unwrap_or("?")
                );
                let on = ws.class_view == (Some(g), Some(sug));
                if ui.selectable_label(on, text).clicked() {
                    ws.class_view = if on {
                        (None, None)
                    } else {
                        (Some(g), Some(sug))
                    };
                }
                ui.label(count.to_string());
                ui.end_row();
            }
        });
    ui.separator();
    let shown = |c: Option<u16>| {
        c.and_then(|c| given.name(c).map(str::to_owned))
            .unwrap_or_else(|| "all classes".to_owned())
    };
    let mut class = ws.class_view.0;
    ui.horizontal(|ui| {
        ui.label("Class");
        egui::ComboBox::from_id_salt("class-filter")
            .selected_text(shown(class))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut class, None, "all classes");
                for (k, (name, count)) in given.names.iter().zip(&given.counts).enumerate() {
                    ui.selectable_value(&mut class, Some(k as u16), format!("{name} ({count})"));
                }
            });
        if let Some(sug) = ws.class_view.1 {
            ui.label(format!("suggested {}", shown(Some(sug))));
        }
    });
    if class != ws.class_view.0 {
        ws.class_view = (class, None);
    }
    // The selection is copied only when a button acts on it (not every frame).
    let n = ws.selected.len();
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(n > 0, egui::Button::new(format!("Relabel {n} selected as suggested")))
            .on_hover_text("Give each selected image whose class is disputed its suggested class (undo with Ctrl+Z)")
            .clicked()
        {
            let selected = ws.selected.clone();
            ws.relabel_suggested(&selected);
        }
        egui::ComboBox::from_id_salt("relabel-as")
            .selected_text("Relabel selected as…")
            .show_ui(ui, |ui| {
                for name in &given.names {
                    if ui.add_enabled(n > 0, egui::Button::new(name)).clicked() {
                        let selected = ws.selected.clone();
                        ws.relabel(&selected, Some(name));
                    }
                }
            });
        let any_relabelled = ws
            .decisions
            .relabels()
            .keys()
            .any(|p| ws.selected.binary_search(p).is_ok());
        if ui
            .add_enabled(any_relabelled, egui::Button::new("Clear relabels"))
            .clicked()
        {
            let selected = ws.selected.clone();
            ws.relabel(&selected, None);
        }
    });
    ui.label(
        RichText::new(format!(
            "{} relabelled by you · saved with the decisions; `curate export --relabels F.csv` writes them",
            ws.decisions.relabels().len()
        ))
        .weak(),
    );
    ui.separator();
    ui.label(RichText::new("Most likely in the wrong class").strong());
    let order = given.worst(ws.class_view.0, ws.class_view.1, 120);
    let relabels = ws.decisions.relabels().clone();
    egui::ScrollArea::vertical()
        .id_salt("class-gallery")
        .show(ui, |ui| {
            gallery(ui, ws, &order, |c, i| {
                let Some(g) = &c.given_classes else {
                    return String::new();
                };
                let mut text = format!(
                    "given {} · suggested {} · score {:.2}",
                    g.name(g.given[i]).unwrap_or("?"),
                    g.name(g.suggested[i]).unwrap_or("?"),
                    g.score[i]
                );
                if let Some(class) = relabels.get(&(i as u32)) {
                    text = format!("{text} · relabelled by you as {class}");
                }
                text
            });
        });
}

fn duplicates(ui: &mut egui::Ui, ws: &mut Workspace) {
    let groups = ws.collection.groups.len();
    let members: usize = ws.collection.groups.iter().map(|g| g.members.len()).sum();
    ui.label(format!("{groups} groups · {members} images in them"));
    let (caption_groups, captioned, both) = ws.collection.caption_duplicate_totals();
    if caption_groups > 0 {
        ui.label(
            RichText::new(format!(
                "captions: {caption_groups} near-duplicate group{} · {captioned} images \
                 ({both} also image duplicates)",
                if caption_groups == 1 { "" } else { "s" }
            ))
            .weak(),
        )
        .on_hover_text(
            "Captions whose character 5-gram sets overlap by Jaccard ≥ 0.5 (MinHash LSH). \
             The same caption on different pictures is information; a picture and its \
             caption both duplicated is the strong case. The inspector shows an image's.",
        );
    }
    if let Some(pairs) = ws.collection.semantic_pairs.clone() {
        ui.horizontal(|ui| {
            let slider = ui
                .add_enabled(
                    !ws.regrouping(),
                    egui::Slider::new(&mut ws.semantic_slider, pairs.floor..=1.0)
                        .text("semantic cosine"),
                )
                .on_hover_text(
                    "Images whose CLIP embeddings are at least this similar are semantic duplicates (epsilon = 1 - cosine). Groups are recomputed from the cached pairs when you let go.",
                );
            let t = ws.semantic_slider;
            if (slider.drag_stopped() || (slider.changed() && !slider.dragged()))
                && (t - ws.semantic_threshold).abs() > f32::EPSILON
            {
                ws.regroup(t);
            }
            if ws.regrouping() {
                ui.spinner();
            }
        });
    }
    if !ws.collection.near.pairs.is_empty() {
        ui.horizontal(|ui| {
            let slider = ui
                .add_enabled(
                    !ws.regrouping(),
                    egui::Slider::new(&mut ws.near_slider, 0.0..=30.0)
                        .step_by(0.25)
                        .text("pixel difference"),
                )
                .on_hover_text(
                    "Candidate pairs (similar hashes or features) are compared on their pixels after alignment; a pair is a copy when its worst block differs by at most this much (mean colour distance beyond what compression forgives at shared edges, 0-441). Groups are recomputed when you let go; nothing is compared again.",
                );
            let t = ws.near_slider;
            if (slider.drag_stopped() || (slider.changed() && !slider.dragged()))
                && (t - ws.near_threshold).abs() > f32::EPSILON
            {
                ws.regroup_near(t);
            }
        });
        egui::CollapsingHeader::new("Where the line is")
            .id_salt("near line")
            .show(ui, |ui| line_pairs(ui, ws));
    }
    ui.horizontal(|ui| {
        ui.label("keeper:");
        let mut policy = ws.keeper_policy;
        ui.add_enabled_ui(!ws.regrouping(), |ui| {
            egui::ComboBox::from_id_salt("keeper policy")
                .selected_text(policy.label())
                .show_ui(ui, |ui| {
                    for p in crate::analysis::keep::KeeperPolicy::ALL {
                        ui.selectable_value(&mut policy, p, p.label());
                    }
                });
        })
        .response
        .on_hover_text(
            "Which member of each group is kept: the best image (the learned ensemble score once you label images good or bad with G / B), the one closest to its cluster centre, or the farthest (SemDeDup's hard choice). Your own marks stay.",
        );
        if policy != ws.keeper_policy {
            ws.set_keeper_policy(policy);
        }
        // In the same row (a new line would move the group list when labels arrive).
        if ws.has_learned_score() {
            if ws.learned_keepers() {
                ui.label("· by your labels")
                    .on_hover_text("The score learned from your G / B labels chooses the keepers");
            } else if ui
                .add_enabled(!ws.regrouping(), egui::Button::new("use labels…").small())
                .on_hover_text("Your labels do not choose keepers yet: count the groups whose keeper the learned score would change, then ask")
                .clicked()
            {
                ws.propose_learned_keepers();
            }
        }
        if ws.regrouping() && ws.collection.semantic_pairs.is_none() {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| {
        if ui
            .add_enabled(groups > 0, egui::Button::new("Drop all but keepers"))
            .on_hover_text("In every group, keep the keeper (*) and drop the other copies")
            .clicked()
        {
            ws.drop_all_but_keeper(None);
        }
    });
    ui.add_space(4.0);
    let row_height = THUMB + 38.0;
    let order = ws.group_order.clone();
    egui::ScrollArea::vertical()
        .id_salt("duplicates")
        .auto_shrink([false, false])
        .show_rows(ui, row_height, order.len(), |ui, range| {
            for &g in &order[range] {
                let keeper = ws.keeper(g);
                let members = ws.collection.groups[g as usize].members.clone();
                let exact = members
                    .iter()
                    .filter(|&&m| ws.collection.dup_kind[m as usize] == DupKind::Exact)
                    .count();
                // A row wider than the panel scrolls: say so, and show its scroll bar.
                let fits = (((ui.available_width() + 4.0) / (THUMB + 4.0)).floor() as usize).max(1);
                let overflow = members.len() > fits;
                ui.horizontal(|ui| {
                    let title = format!(
                        "Group {g} · {} images{}",
                        members.len(),
                        if exact == members.len() {
                            " · exact"
                        } else if exact > 0 {
                            " · exact + near"
                        } else {
                            " · near"
                        }
                    );
                    if ui
                        .link(title)
                        .on_hover_text("Fly to the group and select it")
                        .clicked()
                    {
                        ws.open_group(g);
                    }
                    if ui.small_button("drop all but *").clicked() {
                        ws.drop_all_but_keeper(Some(g));
                    }
                    let part: Vec<u32> = members
                        .iter()
                        .copied()
                        .filter(|m| ws.selected.binary_search(m).is_ok())
                        .collect();
                    if !part.is_empty()
                        && part.len() < members.len()
                        && ui
                            .small_button(format!("split {} selected", part.len()))
                            .on_hover_text("The selected members are not duplicates of the others: the group splits, now and in the next analysis")
                            .clicked()
                    {
                        ws.split_group(g, &part);
                    }
                });
                let row = ui.horizontal(|ui| {
                    egui::ScrollArea::horizontal()
                        .id_salt(("group", g))
                        .scroll_bar_visibility(if overflow {
                            egui::scroll_area::ScrollBarVisibility::AlwaysVisible
                        } else {
                            egui::scroll_area::ScrollBarVisibility::VisibleWhenNeeded
                        })
                        .show(ui, |ui| {
                            ui.horizontal(|ui| {
                                for &m in &members {
                                    let response = thumbnail(ui, ws, m, THUMB);
                                    if m == keeper {
                                        ui.painter().text(
                                            response.rect.left_top() + Vec2::new(3.0, 1.0),
                                            egui::Align2::LEFT_TOP,
                                            "*",
                                            egui::FontId::proportional(16.0),
                                            Color32::from_rgb(255, 215, 0),
                                        );
                                    }
                                    let response = response.on_hover_text(format!(
                                        "{}\nclick: make this the keeper · right-click: not a duplicate",
                                        ws.collection.path(m as usize)
                                    ));
                                    if response.clicked() {
                                        ws.make_keeper(m);
                                        ws.inspected = Some(m);
                                    }
                                    response.context_menu(|ui| {
                                        if ui.button("Make this the keeper").clicked() {
                                            ws.make_keeper(m);
                                            ui.close();
                                        }
                                        let exact = ws.collection.dup_kind[m as usize]
                                            == DupKind::Exact;
                                        if ui
                                            .add_enabled(
                                                !exact,
                                                egui::Button::new("Not a duplicate of this group"),
                                            )
                                            .on_disabled_hover_text(
                                                "A byte-identical copy: the same file content",
                                            )
                                            .clicked()
                                        {
                                            ws.not_duplicate(m);
                                            ui.close();
                                        }
                                    });
                                }
                            });
                        });
                });
                if overflow {
                    // Painted over the row's right end (a label would widen the panel).
                    let rect = row.response.rect;
                    let text = format!("+{} more", members.len() - fits);
                    let galley = ui.painter().layout_no_wrap(
                        text,
                        egui::FontId::proportional(11.0),
                        Color32::WHITE,
                    );
                    let size = galley.size() + Vec2::new(8.0, 4.0);
                    let badge = egui::Rect::from_min_size(
                        egui::pos2(rect.right() - size.x - 2.0, rect.top() + 2.0),
                        size,
                    );
                    ui.painter()
                        .rect_filled(badge, 3.0, Color32::from_black_alpha(190));
                    ui.painter()
                        .galley(badge.min + Vec2::new(4.0, 2.0), galley, Color32::WHITE);
                }
                ui.separator();
            }
        });
}

/// The grouped pairs that differ most next to the rejected pairs that differ least, as
/// thumbnail pairs with their pixel difference: where copies end on this folder.
fn line_pairs(ui: &mut egui::Ui, ws: &mut Workspace) {
    const SMALL: f32 = 44.0;
    let line = ws.line_pairs(6);
    let mut show = |ui: &mut egui::Ui, title: &str, pairs: &[(u32, u32, f32)]| {
        ui.label(egui::RichText::new(title).strong());
        if pairs.is_empty() {
            ui.label("none");
        }
        egui::ScrollArea::horizontal()
            .id_salt(title)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for &(a, b, d) in pairs {
                        ui.vertical(|ui| {
                            ui.horizontal(|ui| {
                                for p in [a, b] {
                                    let response = thumbnail(ui, ws, p, SMALL)
                                        .on_hover_text(ws.collection.path(p as usize));
                                    if response.clicked() {
                                        ws.inspected = Some(p);
                                    }
                                }
                            });
                            ui.label(format!("{d:.1}"));
                        });
                        ui.add_space(6.0);
                    }
                });
            });
    };
    show(ui, "Grouped, least alike", &line.farthest_copies);
    show(ui, "Not grouped, most alike", &line.closest_others);
}

/// A histogram with a draggable threshold; returns the new threshold when it moved.
fn histogram(ui: &mut egui::Ui, id: &str, hist: &Histogram, threshold: f32) -> Option<f32> {
    let width = f64::from((hist.max - hist.min) / hist.bins.len() as f32);
    let bars: Vec<Bar> = hist
        .bins
        .iter()
        .enumerate()
        .map(|(k, &count)| {
            let x = f64::from(hist.min) + (k as f64 + 0.5) * width;
            let colour = if x >= f64::from(threshold) {
                Color32::from_rgb(250, 170, 60)
            } else {
                Color32::from_rgb(90, 140, 200)
            };
            // Square root of the count: the long tail stays visible next to the bulk.
            Bar::new(x, f64::from(count).sqrt())
                .width(width)
                .fill(colour)
        })
        .collect();
    let mut moved = None;
    Plot::new(id)
        .height(130.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_y(false)
        .y_axis_label("sqrt(count)")
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("images", bars));
            plot.vline(VLine::new("threshold", f64::from(threshold)).color(Color32::WHITE));
            let response = plot.response();
            if (response.dragged() || response.clicked())
                && let Some(p) = plot.pointer_coordinate()
            {
                moved = Some((p.x as f32).clamp(hist.min, hist.max));
            }
        });
    moved
}

/// A grid of thumbnails; clicking one inspects and selects it.
fn gallery(
    ui: &mut egui::Ui,
    ws: &mut Workspace,
    points: &[u32],
    label: impl Fn(&Collection, usize) -> String,
) {
    let per_row = ((ui.available_width() / (THUMB + 6.0)).floor() as usize).max(1);
    egui::Grid::new(ui.next_auto_id())
        .spacing([4.0, 4.0])
        .show(ui, |ui| {
            for (k, &p) in points.iter().enumerate() {
                let text = label(&ws.collection, p as usize);
                let response = thumbnail(ui, ws, p, THUMB).on_hover_text(text);
                if response.clicked() {
                    ws.inspected = Some(p);
                    ws.select(vec![p], SelectOp::Replace);
                }
                if (k + 1) % per_row == 0 {
                    ui.end_row();
                }
            }
        });
}

fn outliers(ui: &mut egui::Ui, ws: &mut Workspace) {
    if ws.collection.ood_by.is_some() {
        let mut kind = ws.ood_kind;
        egui::ComboBox::from_id_salt("ood-kind")
            .selected_text(kind.label())
            .show_ui(ui, |ui| {
                for k in OutlierScore::ALL {
                    ui.selectable_value(&mut kind, k, k.label());
                }
            });
        if kind != ws.ood_kind {
            ws.set_outlier_score(kind);
            ws.mode = ColourMode::Outliers;
        }
    }
    ui.label(match ws.ood_kind {
        OutlierScore::Kth => "Cosine distance to the 5th nearest image outside the image's own duplicate group (Sun et al. 2022).",
        OutlierScore::MeanKnn => "Mean cosine distance to the 5 nearest images outside the image's own duplicate group.",
        OutlierScore::Mahalanobis => "Mahalanobis distance to the nearest k-means cluster mean under one shared covariance (Lee et al. 2018).",
        OutlierScore::Combined => "How rare the image is on every signal at once, relative to this folder: the distance to its 16th nearest image, the Mahalanobis distance and the seven quality measures, each as a tail rarity; the mean of its two largest. Finds small clusters of outliers that hide each other from a neighbour distance.",
    });
    ui.label("Drag on the histogram to set the threshold.");
    if let Some(p) = ws.collection.preview {
        ui.add_space(8.0);
        ui.label(
            RichText::new(format!(
                "Outlier scores need every image's neighbours: they appear when the analysis finishes ({} of {} files so far).",
                p.ready, p.files
            ))
            .strong(),
        );
        return;
    }
    if let Some(t) = histogram(ui, "ood-histogram", &ws.ood_hist, ws.ood_threshold) {
        ws.ood_threshold = t;
        ws.mode = ColourMode::Outliers;
    }
    let (lo, hi) = (ws.ood_hist.min, ws.ood_hist.max);
    if ui
        .add(egui::Slider::new(&mut ws.ood_threshold, lo..=hi).text("threshold"))
        .changed()
    {
        ws.mode = ColourMode::Outliers;
    }
    let above = ws.ood_hist.at_or_above(ws.ood_threshold);
    let share = 100.0 * above as f32 / ws.collection.len().max(1) as f32;
    ui.label(format!("{above} images at or above ({share:.1} %)"));
    if ui
        .add_enabled(above > 0, egui::Button::new(format!("Drop these {above}")))
        .clicked()
    {
        ws.drop_outliers();
    }
    ui.separator();
    ui.label(RichText::new("Most unusual").strong());
    let order = ws.worst(None);
    egui::ScrollArea::vertical()
        .id_salt("ood-gallery")
        .show(ui, |ui| {
            gallery(ui, ws, &order, |c, i| {
                format!("outlier score {:.3}", c.ood[i])
            });
        });
}

/// The ensemble of every operator: labels, learned weights, a button to colour by it.
fn ensemble(ui: &mut egui::Ui, ws: &mut Workspace) {
    ui.label(RichText::new("Ensemble of all operators").strong());
    let bad = ws.decisions.labels().values().filter(|b| **b).count();
    let good = ws.decisions.labels().len() - bad;
    ui.label(format!(
        "{good} good / {bad} bad labels (G / B on the hovered or selected images). {}",
        if ws.ensemble.1.is_empty() {
            "Score: the mean rank of every quality measure, outlier score, CLIP score and group size."
        } else {
            "Score: P(bad) of a logistic model fitted on your labels; weights:"
        }
    ));
    if !ws.ensemble.1.is_empty() {
        egui::Grid::new("ensemble-weights")
            .striped(true)
            .show(ui, |ui| {
                for (name, w) in &ws.ensemble.1 {
                    ui.label(name.replace('_', " "));
                    ui.label(format!("{w:+.2}"));
                    ui.end_row();
                }
            });
    }
    ui.horizontal(|ui| {
        if ui.button("Colour by ensemble").clicked() {
            ws.mode = ColourMode::Ensemble;
        }
        if ws.refitting() {
            ui.spinner();
        }
    });
    ui.separator();
}

fn quality(ui: &mut egui::Ui, ws: &mut Workspace) {
    if ws.collection.summary.is_some() {
        ensemble(ui, ws);
    }
    let before = ws.measure;
    egui::ComboBox::from_label("measure")
        .selected_text(SCORE_NAMES[ws.measure].replace('_', " "))
        .show_ui(ui, |ui| {
            for (m, name) in SCORE_NAMES.iter().enumerate() {
                ui.selectable_value(&mut ws.measure, m, name.replace('_', " "));
            }
        });
    let m = ws.measure;
    if m != before {
        ws.mode = ColourMode::Quality(m);
    }
    ui.label("Higher = more of the problem (0..1); see the report's *_score columns.");
    let hist = ws.quality_hist(m);
    if let Some(t) = histogram(ui, "quality-histogram", &hist, ws.quality_threshold[m]) {
        ws.quality_threshold[m] = t;
        ws.mode = ColourMode::Quality(m);
    }
    if ui
        .add(egui::Slider::new(&mut ws.quality_threshold[m], 0.0..=1.0).text("threshold"))
        .changed()
    {
        ws.mode = ColourMode::Quality(m);
    }
    let above = hist.at_or_above(ws.quality_threshold[m]);
    ui.label(format!("{above} images at or above"));
    if ui
        .add_enabled(above > 0, egui::Button::new(format!("Drop these {above}")))
        .clicked()
    {
        ws.drop_quality(m);
    }
    ui.separator();
    ui.label(RichText::new(format!("Worst {}", SCORE_NAMES[m].replace('_', " "))).strong());
    let order = ws.worst(Some(m));
    egui::ScrollArea::vertical()
        .id_salt("quality-gallery")
        .show(ui, |ui| {
            gallery(ui, ws, &order, |c, i| {
                format!("{} {:.3}", SCORE_NAMES[m], c.quality(i, m))
            });
        });
}

fn problems(ui: &mut egui::Ui, ws: &Workspace) {
    let c = &ws.collection;
    ui.label(format!(
        "{} files could not be read; they are never in the keep-list.",
        c.problems.len()
    ));
    egui::ScrollArea::vertical()
        .id_salt("problems")
        .show(ui, |ui| {
            // Wrapped at the panel's width: long paths and messages never widen the panel.
            ui.set_max_width(ui.available_width());
            for p in &c.problems {
                ui.add(egui::Label::new(RichText::new(&p.path).strong()).wrap());
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("{}: {}", p.kind.replace('_', " "), p.message))
                            .color(Color32::from_rgb(240, 120, 90)),
                    )
                    .wrap(),
                );
                ui.add_space(4.0);
            }
            if !c.warnings.is_empty() {
                ui.separator();
                ui.label(RichText::new("Warnings").strong());
                for w in &c.warnings {
                    ui.add(egui::Label::new(w.as_str()).wrap());
                }
            }
        });
}

/// The right panel.
pub fn right(ui: &mut egui::Ui, ws: &mut Workspace) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut ws.right, RightTab::Inspector, "Inspector");
        let label = format!("Selection ({})", ws.selected.len());
        ui.selectable_value(&mut ws.right, RightTab::Selection, label);
    });
    ui.separator();
    match ws.right {
        RightTab::Inspector => inspector(ui, ws),
        RightTab::Selection => selection(ui, ws),
    }
}

fn inspector(ui: &mut egui::Ui, ws: &mut Workspace) {
    let Some(point) = ws.hovered.or(ws.map_hover).or(ws.inspected) else {
        ui.label("Hover over the map or click an image to inspect it.");
        return;
    };
    let i = point as usize;
    // Rows of imported embeddings whose image is elsewhere have no pixels to show.
    let on_disk = ws.collection.row(i).is_none_or(|r| r.width.is_some());
    if on_disk {
        full_image(ui, ws, point);
    }
    let c = &ws.collection;
    ui.label(RichText::new(c.path(i)).strong());
    if !on_disk {
        ui.label(RichText::new("not on disk: analysed and mapped from its embedding alone").weak());
    } else if let Some(row) = c.row(i) {
        ui.label(format!(
            "{} x {} px · {:.1} KB",
            row.width.unwrap_or(0),
            row.height.unwrap_or(0),
            row.size_bytes as f64 / 1024.0
        ));
        if let Some(caption) = &row.caption {
            ui.label(RichText::new(format!("“{caption}”")).italics());
        }
        if let Some((group, members, duplicated)) = c.caption_duplicates(i) {
            // The same caption on different pictures is information; a picture and its
            // caption both duplicated is the strong case.
            let text = if row.dup_group >= 0 {
                format!(
                    "caption and picture both duplicated: caption group {group} ({members} images)"
                )
            } else {
                format!(
                    "caption near-duplicated on {} other image{} (caption group {group}; \
                     {duplicated} of the {members} are also image duplicates)",
                    members - 1,
                    if members == 2 { "" } else { "s" }
                )
            };
            let colour = if row.dup_group >= 0 {
                Color32::from_rgb(240, 180, 90)
            } else {
                Color32::GRAY
            };
            ui.label(RichText::new(text).color(colour)).on_hover_text(
                "Captions whose character 5-gram sets overlap by Jaccard ≥ 0.5 \
                 (MinHash LSH, report column caption_dup_group).",
            );
        }
        if let (Some(label), Some(logit), Some(entropy)) =
            (&row.label, row.label_max_logit, row.label_entropy)
        {
            ui.label(format!(
                "{label} · top logit {logit:.1}, entropy {entropy:.2}"
            ))
            .on_hover_text(
                "The model's class. A low top logit or a high entropy says it \
                     recognises nothing it knows in the picture.",
            );
        }
        if let Some(err) = &row.caption_error {
            ui.label(
                RichText::new(format!("caption: {err}")).color(Color32::from_rgb(240, 120, 90)),
            );
        }
        if let Some(class) = &row.given_class {
            let mut parts = vec![format!("class {class}")];
            if let (Some(score), Some(suggested)) = (row.class_issue_score, &row.suggested_class)
                && suggested != class
            {
                parts.push(format!("the data suggests {suggested} (score {score:.2})"));
            }
            if let Some(relabel) = ws.decisions.relabels().get(&point) {
                parts.push(format!("relabelled by you as {relabel}"));
            }
            ui.label(parts.join(" · "));
        }
    }
    let keep = ws.decisions.keep(c, i);
    let status = match (ws.decisions.mark(i), ws.decisions.drop_reason(c, i)) {
        (Some(mark), _) if mark.keeper && mark.keep => {
            "kept by you: the keeper of its group".to_owned()
        }
        (Some(mark), _) => format!(
            "{} by you: {}",
            if mark.keep { "kept" } else { "dropped" },
            ws.decisions.reason_text(mark)
        ),
        (None, None) => "kept by the analysis".to_owned(),
        (None, Some(reason)) => c
            .row(i)
            .and_then(|r| r.drop_detail.clone())
            .unwrap_or_else(|| format!("dropped by the analysis: {}", reason.as_str())),
    };
    let colour = if keep {
        egui_colour(KEPT)
    } else {
        egui_colour(drop_colour(
            ws.decisions.drop_reason(c, i).unwrap_or(DropReason::Manual),
        ))
    };
    ui.label(RichText::new(status).color(colour));
    ui.horizontal(|ui| {
        if ui.button("Keep (K)").clicked() {
            ws.mark_point(point, true);
        }
        if ui.button("Drop (D)").clicked() {
            ws.mark_point(point, false);
        }
        if ws.decisions.mark(i).is_some() && ui.button("Reset").clicked() {
            ws.reset_point(point);
        }
        if let Some((embeddings, _)) = &ws.collection.embeddings
            && ui
                .add_enabled(!ws.search.busy(), egui::Button::new("More like this"))
                .on_hover_text("Select the images whose model embeddings are closest to this one")
                .clicked()
        {
            let embeddings = std::sync::Arc::clone(embeddings);
            let name = ws.collection.path(i);
            ws.search.run_like(&embeddings, point, name);
        }
    });
    let c = &ws.collection;
    egui::Grid::new("scores").striped(true).show(ui, |ui| {
        ui.label("outlier score");
        ui.label(format!("{:.3}", c.ood[i]));
        ui.end_row();
        for (m, name) in SCORE_NAMES
            .iter()
            .enumerate()
            .take(if on_disk { MEASURES } else { 0 })
        {
            ui.label(name.replace('_', " "));
            let v = c
                .row(i)
                .and_then(|r| r.quality)
                .map_or(c.quality(i, m), |q| q[m]);
            ui.label(format!("{v:.3}"));
            ui.end_row();
        }
    });
    let g = c.group[i];
    if g >= 0 {
        let members: Vec<u32> = c.groups[g as usize]
            .members
            .iter()
            .copied()
            .filter(|&m| m != point)
            .collect();
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("Duplicates (group {g})")).strong());
            let exact = ws.collection.dup_kind[i] == DupKind::Exact;
            if ui
                .add_enabled(!exact, egui::Button::new("Not a duplicate").small())
                .on_disabled_hover_text("A byte-identical copy: the same file content")
                .on_hover_text(
                    "This image is not a copy of the others: it leaves the group, now and in the next analysis (saved in the session)",
                )
                .clicked()
            {
                ws.not_duplicate(point);
            }
        });
        ui.horizontal_wrapped(|ui| {
            for m in members {
                let path = ws.collection.path(m as usize);
                if thumbnail(ui, ws, m, 56.0).on_hover_text(path).clicked() {
                    ws.inspected = Some(m);
                }
            }
        });
    }
}

fn full_image(ui: &mut egui::Ui, ws: &mut Workspace, point: u32) {
    let current = match &ws.full {
        Some(FullImage::Loading(p, _) | FullImage::Ready(p, _) | FullImage::Failed(p, _)) => {
            Some(*p)
        }
        None => None,
    };
    if current != Some(point) {
        ws.full = match &*ws.collection.source {
            Source::Dataset { root, .. } => {
                let (send, receive) = std::sync::mpsc::channel();
                let root = root.clone();
                let path = ws.collection.path(point as usize);
                let ctx = ui.ctx().clone();
                std::thread::spawn(move || {
                    send.send(thumbs::load_full(&root, &path, 1024)).ok();
                    ctx.request_repaint();
                });
                Some(FullImage::Loading(point, receive))
            }
            Source::Synthetic { .. } => None,
        };
    }
    if let Some(FullImage::Loading(p, receive)) = &ws.full
        && let Ok(result) = receive.try_recv()
    {
        let p = *p;
        ws.full = Some(match result {
            Ok(image) => FullImage::Ready(
                p,
                ui.ctx().load_texture(
                    format!("curate-full-{p}"),
                    image,
                    egui::TextureOptions::LINEAR,
                ),
            ),
            Err(err) => FullImage::Failed(p, err),
        });
    }
    let width = ui.available_width().min(420.0);
    let texture = match &ws.full {
        Some(FullImage::Ready(_, texture)) => Some(texture.clone()),
        Some(FullImage::Failed(_, err)) => {
            ui.label(RichText::new(err).color(Color32::from_rgb(240, 120, 90)));
            None
        }
        _ => ws.thumbs.texture(ui.ctx(), point),
    };
    if let Some(texture) = texture {
        let size = texture.size_vec2();
        let scale = (width / size.x).min(320.0 / size.y);
        ui.image((texture.id(), size * scale));
    }
}

/// Selected points shown per page of the selection grid.
pub const PAGE: usize = 60;

fn selection(ui: &mut egui::Ui, ws: &mut Workspace) {
    let n = ws.selected.len();
    ui.label(format!("{n} selected"));
    ui.horizontal(|ui| {
        if ui
            .add_enabled(n > 0, egui::Button::new("Keep (K)"))
            .clicked()
        {
            ws.mark_selection(true);
        }
        if ui
            .add_enabled(n > 0, egui::Button::new("Drop (D)"))
            .clicked()
        {
            ws.mark_selection(false);
        }
        if ui
            .add_enabled(n > 0, egui::Button::new("Reset (U)"))
            .on_hover_text("Back to the analysis' own decision")
            .clicked()
        {
            ws.reset_selection();
        }
    });
    let pages = n.div_ceil(PAGE).max(1);
    ws.page = ws.page.min(pages - 1);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(ws.page > 0, egui::Button::new("<"))
            .clicked()
        {
            ws.page -= 1;
        }
        ui.label(format!("page {} of {pages}", ws.page + 1));
        if ui
            .add_enabled(ws.page + 1 < pages, egui::Button::new(">"))
            .clicked()
        {
            ws.page += 1;
        }
    });
    let start = ws.page * PAGE;
    let shown: Vec<u32> = ws.selected[start.min(n)..(start + PAGE).min(n)].to_vec();
    egui::ScrollArea::vertical()
        .id_salt("selection-grid")
        .show(ui, |ui| {
            let per_row = ((ui.available_width() / (THUMB + 6.0)).floor() as usize).max(1);
            egui::Grid::new("selection-thumbs")
                .spacing([4.0, 4.0])
                .show(ui, |ui| {
                    for (k, &p) in shown.iter().enumerate() {
                        let path = ws.collection.path(p as usize);
                        if thumbnail(ui, ws, p, THUMB).on_hover_text(path).clicked() {
                            ws.inspected = Some(p);
                            ws.right = RightTab::Inspector;
                        }
                        if (k + 1) % per_row == 0 {
                            ui.end_row();
                        }
                    }
                });
        });
}

/// The legend of the current colour mode, drawn over the map's corner.
pub fn legend(ui: &mut egui::Ui, ws: &Workspace) {
    let swatch = |ui: &mut egui::Ui, colour: Color32, text: &str| {
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
            ui.painter().circle_filled(rect.center(), 5.0, colour);
            ui.label(text);
        });
    };
    let gradient = |ui: &mut egui::Ui, lo: f32, hi: f32, threshold: f32| {
        let (rect, _) = ui.allocate_exact_size(Vec2::new(160.0, 12.0), Sense::hover());
        let steps = 32;
        for k in 0..steps {
            let t = k as f32 / steps as f32;
            let [r, g, b] = colormap::viridis(t);
            let x0 = rect.left() + rect.width() * t;
            let x1 = rect.left() + rect.width() * (t + 1.0 / steps as f32);
            ui.painter().rect_filled(
                egui::Rect::from_x_y_ranges(x0..=x1, rect.y_range()),
                0.0,
                Color32::from_rgb(r, g, b),
            );
        }
        let tx =
            rect.left() + rect.width() * ((threshold - lo) / (hi - lo).max(1e-6)).clamp(0.0, 1.0);
        ui.painter()
            .vline(tx, rect.y_range(), egui::Stroke::new(2.0, Color32::WHITE));
        ui.horizontal(|ui| {
            ui.label(format!("{lo:.2}"));
            ui.label(format!("threshold {threshold:.3} (brighter at or above)"));
            ui.label(format!("{hi:.2}"));
        });
    };
    ui.label(RichText::new(ws.mode.label()).strong());
    match ws.mode {
        ColourMode::Groups => {
            for g in ws.group_order.iter().take(4) {
                swatch(
                    ui,
                    egui_colour(colormap::category(u64::from(*g))),
                    &format!("group {g}"),
                );
            }
            swatch(ui, Color32::from_gray(140), "no duplicates");
        }
        ColourMode::Ensemble => {
            ui.label("0 = fine, 1 = bad; labelled images green (good) / red (bad)");
            gradient(ui, 0.0, 1.0, 0.5);
        }
        ColourMode::Similarity => {
            let (lo, hi, t) = ws.similarity_range();
            if let Some((what, _)) = &ws.similarity {
                ui.label(format!("cosine similarity to {what}"));
            }
            gradient(ui, lo, hi, t);
        }
        ColourMode::Outliers => gradient(
            ui,
            ws.ood_hist.quantile(0.01),
            ws.ood_hist.quantile(0.999),
            ws.ood_threshold,
        ),
        ColourMode::Quality(m) => gradient(ui, 0.0, 1.0, ws.quality_threshold[m]),
        ColourMode::Decision => {
            swatch(ui, egui_colour(KEPT), &format!("kept ({})", ws.counts.kept));
            for reason in [
                DropReason::ExactDuplicate,
                DropReason::NearDuplicate,
                DropReason::SemanticDuplicate,
                DropReason::Outlier,
                DropReason::Quality,
                DropReason::Manual,
            ] {
                let count = ws.counts.dropped.get(reason.as_str()).copied().unwrap_or(0);
                swatch(
                    ui,
                    egui_colour(drop_colour(reason)),
                    &format!("{} ({count})", reason.as_str().replace('_', " ")),
                );
            }
        }
        ColourMode::Selection => {
            swatch(
                ui,
                egui_colour(SELECTED_COLOUR),
                &format!("selected ({})", ws.selected.len()),
            );
            swatch(ui, Color32::from_gray(140), "not selected");
        }
        ColourMode::Caption => {
            swatch(ui, egui_colour(CAPTIONED), "has a caption");
            swatch(ui, Color32::from_gray(140), "no caption");
        }
        ColourMode::ClassIssue => {
            ui.label("0 = the data agrees with the image's class, 1 = another class fits better");
            gradient(ui, 0.0, 1.0, crate::analysis::classes::DISPUTED);
        }
        ColourMode::GivenClass => {
            if let Some(given) = &ws.collection.given_classes {
                for (k, (name, count)) in given.names.iter().zip(&given.counts).enumerate() {
                    swatch(
                        ui,
                        egui_colour(colormap::category(k as u64)),
                        &format!("{name} ({count})"),
                    );
                }
            }
        }
        ColourMode::Class => {
            let classes = &ws.collection.classes;
            for (k, (name, count)) in classes
                .names
                .iter()
                .zip(&classes.counts)
                .take(CLASS_COLOURS)
                .enumerate()
            {
                swatch(
                    ui,
                    egui_colour(colormap::category(k as u64)),
                    &format!("{name} ({count})"),
                );
            }
            if classes.names.len() > CLASS_COLOURS {
                swatch(
                    ui,
                    Color32::from_gray(140),
                    &format!("{} other classes", classes.names.len() - CLASS_COLOURS),
                );
            }
        }
    }
}

/// The waiting re-choice of keepers: what it would change, and the person's yes or no. A
/// window over the map, so nothing else moves.
pub fn proposal(ctx: &egui::Context, ws: &mut Workspace) -> Option<String> {
    let proposal = ws.proposal.as_ref()?;
    let mut answer = None;
    egui::Window::new("Choose keepers again?")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, Vec2::new(0.0, 60.0))
        .show(ctx, |ui| {
            ui.label(format!(
                "{}: {} groups would get another keeper, {} files would change between kept and dropped.",
                proposal.what, proposal.groups, proposal.flips
            ));
            ui.label(
                RichText::new("Keepers you chose and files you marked stay as they are. Undo (Ctrl+Z) takes it back.")
                    .weak(),
            );
            ui.horizontal(|ui| {
                if ui.button("Apply").clicked() {
                    answer = Some(true);
                }
                if ui.button("Keep the current keepers").clicked() {
                    answer = Some(false);
                }
            });
        });
    match answer {
        Some(true) => ws.accept_proposal(),
        Some(false) => {
            ws.reject_proposal();
            None
        }
        None => None,
    }
}
