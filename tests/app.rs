//! The real app, headless (`egui_kittest` on wgpu): open the demo folder, wait for the
//! analysis, lasso a region with drag events and compare with a CPU point-in-polygon
//! reference, drop, undo, save a keep-list, reopen and find the decisions restored; zoom in
//! and see thumbnails; snapshots of the map in each colour mode.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use curate::analysis::keep::DropReason;
use curate::embed::DeviceChoice;
use curate::store::keeplist;
use curate::ui::map_view::{SelectOp, Tool};
use curate::ui::select::lasso_reference;
use curate::ui::workspace::ColourMode;
use curate::ui::{AppConfig, CurateApp, Launch};
use eframe::egui::{self, Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

fn open(dir: &std::path::Path) -> Harness<'static, CurateApp> {
    open_with(dir, None)
}

fn open_with(
    dir: &std::path::Path,
    model: Option<std::path::PathBuf>,
) -> Harness<'static, CurateApp> {
    open_config(AppConfig {
        launch: Launch::Folder(dir.to_owned()),
        device: DeviceChoice::Cpu,
        remember_recent: false,
        model,
        classifier: None,
        embeddings: None,
        class_from: None,
    })
}

fn open_config(config: AppConfig) -> Harness<'static, CurateApp> {
    let mut harness = Harness::builder()
        .with_size([1400.0, 860.0])
        .wgpu()
        .build_eframe(move |cc| CurateApp::new(cc, config));
    let started = Instant::now();
    // Previews of the running analysis come first; wait for the finished one.
    while harness.state().workspace.is_none() || harness.state().analysing() {
        assert!(
            started.elapsed() < Duration::from_mins(5),
            "the analysis did not finish"
        );
        assert!(
            harness.state().error().is_none(),
            "{:?}",
            harness.state().error()
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    // The preview's PCA map morphs into the final layout: let it settle.
    while harness
        .state()
        .workspace
        .as_ref()
        .is_some_and(|ws| ws.map.morphing())
    {
        assert!(
            started.elapsed() < Duration::from_mins(6),
            "the morph did not end"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(3);
    harness
}

/// Steps the app until `done` holds (at most a minute).
fn wait_until(
    harness: &mut Harness<'static, CurateApp>,
    what: &str,
    done: impl Fn(&CurateApp) -> bool,
) {
    let started = Instant::now();
    while !done(harness.state()) {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "waited too long for {what}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn press(harness: &Harness<'_, CurateApp>, pos: Pos2, pressed: bool, modifiers: Modifiers) {
    harness.event(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers,
    });
}

#[test]
fn lasso_drop_undo_save_and_reopen() {
    let (_tmp, dir) = common::copy_of_demo();
    let mut harness = open(&dir);
    let ws = harness.state().workspace.as_ref().expect("open");
    assert!(ws.collection.len() > 2000);
    let rect = ws.map.rect;
    assert!(rect.width() > 300.0, "map rect {rect:?}");

    // Lasso: L, then drag around a hexagon in the middle of the map.
    harness.key_press(Key::L);
    harness.step();
    assert_eq!(
        harness.state().workspace.as_ref().unwrap().map.tool,
        Tool::Lasso
    );
    // Around the densest place on the map (the UMAP layout leaves gaps between clusters).
    let radius = rect.width().min(rect.height()) * 0.12;
    let centre = {
        let ws = harness.state().workspace.as_ref().unwrap();
        let positions = &ws.collection.positions;
        let screen: Vec<Pos2> = positions.iter().map(|&p| ws.map.to_screen(p)).collect();
        let near = |c: Pos2| screen.iter().filter(|s| s.distance(c) < radius).count();
        screen
            .iter()
            .step_by(97)
            .copied()
            .filter(|s| rect.shrink(radius * 1.2).contains(*s))
            .max_by_key(|&c| near(c))
            .expect("points on screen")
    };
    let vertices: Vec<Pos2> = (0..6)
        .map(|k| {
            let a = k as f32 / 6.0 * std::f32::consts::TAU;
            Pos2::new(
                centre.x + radius * a.cos(),
                centre.y + radius * 0.8 * a.sin(),
            )
        })
        .collect();
    harness.event(egui::Event::PointerMoved(vertices[0]));
    harness.step();
    press(&harness, vertices[0], true, Modifiers::NONE);
    harness.step();
    for &v in &vertices[1..] {
        harness.event(egui::Event::PointerMoved(v));
        harness.step();
    }
    harness.event(egui::Event::PointerMoved(vertices[0]));
    harness.step();
    press(&harness, vertices[0], false, Modifiers::NONE);
    harness.step();

    let ws = harness.state().workspace.as_ref().unwrap();
    let polygon: Vec<[f32; 2]> = vertices.iter().map(|&p| ws.map.to_map(p)).collect();
    let expected = lasso_reference(&ws.collection.positions, &polygon);
    assert!(
        expected.len() > 20 && expected.len() < ws.collection.len() / 2,
        "{} points in the lasso",
        expected.len()
    );
    assert_eq!(
        ws.selected, expected,
        "the lasso selects what point-in-polygon says"
    );
    let selected = ws.selected.clone();
    let paths: Vec<String> = selected
        .iter()
        .map(|&p| ws.collection.path(p as usize))
        .collect();

    // Shift+box adds, Alt+box subtracts: a box over the same area changes nothing net.
    // Drop the selection (D), check, undo (Ctrl+Z), check.
    harness.key_press(Key::D);
    harness.step();
    {
        let ws = harness.state().workspace.as_ref().unwrap();
        for &p in &selected {
            assert_eq!(
                ws.decisions.drop_reason(&ws.collection, p as usize),
                Some(DropReason::Manual)
            );
        }
    }
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    {
        let ws = harness.state().workspace.as_ref().unwrap();
        for &p in &selected {
            assert!(
                ws.decisions.mark(p as usize).is_none(),
                "undo removed the mark"
            );
            assert_eq!(
                ws.decisions.drop_reason(&ws.collection, p as usize),
                ws.collection.auto_drop[p as usize]
            );
        }
    }
    // Redo (Ctrl+Shift+Z) brings the drop back.
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    harness.step();

    // Save the keep-list: Ctrl+S opens the dialog with a path; press Save.
    // The dialog offers DIR/.curate/keep-list.txt.
    let keep_list = dir.join(".curate").join("keep-list.txt");
    std::fs::remove_file(&keep_list).ok();
    harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    harness.run_steps(2);
    harness.get_by_label("Save").click();
    harness.run_steps(3);
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
    let written = keeplist::read(&keep_list).expect("the keep-list was written");

    let ws = harness.state().workspace.as_ref().unwrap();
    let dropped: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let expected_list: Vec<String> = ws
        .effective_rows()
        .into_iter()
        .filter(|r| r.keep)
        .map(|r| r.path)
        .collect();
    assert_eq!(written, expected_list);
    assert!(
        written.iter().all(|p| !dropped.contains(p.as_str())),
        "dropped images are not listed"
    );
    let problems: HashSet<&str> = ws
        .collection
        .problems
        .iter()
        .map(|p| p.path.as_str())
        .collect();
    assert!(
        written.iter().all(|p| !problems.contains(p.as_str())),
        "unreadable files are not listed"
    );
    let auto_kept = ws
        .collection
        .auto_drop
        .iter()
        .filter(|d| d.is_none())
        .count();
    let newly_dropped = selected
        .iter()
        .filter(|&&p| ws.collection.auto_drop[p as usize].is_none())
        .count();
    assert_eq!(written.len(), auto_kept - newly_dropped);
    drop(harness);

    // Reopen: the decisions come back from .curate/session.json.
    let harness = open(&dir);
    let ws = harness.state().workspace.as_ref().unwrap();
    let mut restored = 0;
    for i in 0..ws.collection.len() {
        if dropped.contains(ws.collection.path(i).as_str()) {
            assert_eq!(
                ws.decisions.drop_reason(&ws.collection, i),
                Some(DropReason::Manual)
            );
            restored += 1;
        }
    }
    assert_eq!(restored, selected.len());
}

#[test]
fn zooming_in_shows_thumbnails_and_snapshots_of_each_colour_mode() {
    let (_tmp, dir) = common::copy_of_demo();
    let mut harness = open(&dir);
    harness.remove_cursor();

    // Snapshots of the map (the map's rect only: the status bar shows timings).
    let rect = harness.state().workspace.as_ref().unwrap().map.rect;
    for mode in ColourMode::all() {
        harness.state_mut().workspace.as_mut().unwrap().mode = mode;
        harness.run_steps(2);
        let image = harness.render().expect("rendered");
        let ppp = 1.0;
        let crop = image::imageops::crop_imm(
            &image,
            (rect.left() * ppp) as u32,
            (rect.top() * ppp) as u32,
            (rect.width() * ppp) as u32,
            (rect.height() * ppp) as u32,
        )
        .to_image();
        let options = egui_kittest::SnapshotOptions::new()
            .threshold(2.0)
            .max_failed_pixels(crop.len() / 4 / 200);
        egui_kittest::image_snapshot_options(&crop, format!("map-{}", mode.slug()), &options);
    }

    // Zoom far in on the biggest duplicate group: thumbnails replace dots.
    {
        let ws = harness.state_mut().workspace.as_mut().unwrap();
        let g = ws.group_order[0];
        let p = ws.collection.groups[g as usize].members[0] as usize;
        ws.map.camera.centre = ws.collection.positions[p];
        ws.map.camera.zoom *= 30.0;
    }
    let started = Instant::now();
    loop {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
        let ws = harness.state().workspace.as_ref().unwrap();
        if ws.map.sprites_drawn > 0 && !ws.thumbs.busy() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no thumbnails appeared"
        );
    }
    harness.run_steps(2);
}

/// With a CLIP model the app embeds a text query and selects the closest images: the
/// selection is exactly the top of a brute-force ranking of the stored embeddings.
#[test]
fn text_search_selects_the_closest_images() {
    let (_tmp, dir) = common::copy_of_demo();
    let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-clip");
    let mut harness = open_with(&dir, Some(tiny.clone()));
    wait_until(&mut harness, "the text model to load", |app| {
        app.workspace.as_ref().unwrap().search.text_ready()
    });
    harness.state_mut().workspace.as_mut().unwrap().search.query = "a city skyline".to_owned();
    harness.run_steps(2);
    harness.get_by_label("Search").click();
    wait_until(&mut harness, "the search to finish", |app| {
        app.workspace.as_ref().unwrap().similarity.is_some()
    });
    harness.run_steps(2);
    let ws = harness.state().workspace.as_ref().unwrap();
    assert_eq!(ws.mode, ColourMode::Similarity);
    assert_eq!(ws.selected.len(), curate::ui::search::RESULTS);

    // Reference: the same query through the model, ranked by brute force.
    let model = curate::embed::clip::ClipModel::load(&tiny, &burn::tensor::Device::flex()).unwrap();
    let tokenizer = curate::embed::clip::tokenizer::ClipTokenizer::from_folder(&tiny).unwrap();
    let mut query = model.embed_token_ids(&[tokenizer.tokenize("a city skyline")]);
    curate::embed::clip::normalize_rows(&mut query, model.dim());
    let (embeddings, _) = ws.collection.embeddings.as_ref().unwrap();
    let sims = embeddings.similarities(&query);
    let mut expected = curate::ui::search::top(&sims, curate::ui::search::RESULTS);
    expected.sort_unstable();
    assert_eq!(ws.selected, expected);

    // Model similarity only proposes pairs of images on disk: the pixels decide, so no
    // group is semantic. The pixel-difference threshold moves live: at 0 no near copy is
    // left, the keep-list grows, and the user's selection is untouched.
    let kind_count = |app: &CurateApp, kind: curate::ui::model::DupKind| {
        let c = &app.workspace.as_ref().unwrap().collection;
        c.dup_kind.iter().filter(|k| **k == kind).count()
    };
    assert_eq!(
        kind_count(harness.state(), curate::ui::model::DupKind::Semantic),
        0
    );
    assert!(kind_count(harness.state(), curate::ui::model::DupKind::Near) > 0);
    let kept_before = ws.counts.kept;
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .regroup_near(0.0);
    wait_until(&mut harness, "the regrouping", |app| {
        !app.workspace.as_ref().unwrap().regrouping()
    });
    harness.run_steps(2);
    assert_eq!(
        kind_count(harness.state(), curate::ui::model::DupKind::Near),
        0
    );
    let ws = harness.state().workspace.as_ref().unwrap();
    assert!(ws.near_threshold.abs() < f32::EPSILON);
    assert!(ws.counts.kept > kept_before);
    assert_eq!(ws.selected, expected);
}

/// G / B label the selected images; the ensemble score refits on the labels, shows its
/// weights, and ranks the unlabelled planted outliers above the rest.
#[test]
fn good_and_bad_labels_teach_the_ensemble() {
    let (_tmp, dir) = common::copy_of_demo();
    let (_, truth) = common::pristine();
    let mut harness = open(&dir);
    let point_of = |app: &CurateApp, path: &str| -> u32 {
        let c = &app.workspace.as_ref().unwrap().collection;
        (0..c.len()).find(|&i| c.path(i) == path).expect("a point") as u32
    };
    let bad: Vec<u32> = truth.outliers[..10]
        .iter()
        .map(|p| point_of(harness.state(), p))
        .collect();
    let outliers: std::collections::HashSet<&String> = truth.outliers.iter().collect();
    let good: Vec<u32> = truth
        .images
        .iter()
        .filter(|p| !outliers.contains(p))
        .step_by(50)
        .take(20)
        .map(|p| point_of(harness.state(), p))
        .collect();
    for (points, key) in [(bad, Key::B), (good, Key::G)] {
        let mut points = points;
        points.sort_unstable();
        harness
            .state_mut()
            .workspace
            .as_mut()
            .unwrap()
            .select(points, SelectOp::Replace);
        harness.step();
        harness.key_press(key);
        harness.step();
    }
    wait_until(&mut harness, "the ensemble to learn", |app| {
        let ws = app.workspace.as_ref().unwrap();
        !ws.refitting() && !ws.ensemble.1.is_empty()
    });
    harness.run_steps(2);
    let ws = harness.state().workspace.as_ref().unwrap();
    assert_eq!(ws.decisions.labels().len(), 30);
    assert_eq!(ws.mode, ColourMode::Ensemble);
    let scores = &ws.ensemble.0;
    let held: Vec<f32> = truth.outliers[10..]
        .iter()
        .map(|p| scores[point_of(harness.state(), p) as usize])
        .collect();
    let mean_held = held.iter().sum::<f32>() / held.len() as f32;
    let mean_all = scores.iter().sum::<f32>() / scores.len() as f32;
    assert!(mean_held > mean_all + 0.3, "{mean_held} vs {mean_all}");
}

fn ws_of<'a>(h: &'a Harness<'static, CurateApp>) -> &'a curate::ui::workspace::Workspace {
    h.state().workspace.as_ref().unwrap()
}

/// Ctrl+S's keep-list and `curate export`'s on the session the app saved, after `what`.
fn same_keep_list_as_export(
    harness: &mut Harness<'static, CurateApp>,
    dir: &std::path::Path,
    what: &str,
) {
    wait_until(harness, "the regrouping", |app| {
        !app.workspace.as_ref().unwrap().regrouping()
    });
    harness.run_steps(2);
    let keep_list = dir.join(".curate").join("keep-list.txt");
    std::fs::remove_file(&keep_list).ok();
    harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    harness.run_steps(2);
    harness.get_by_label("Save").click();
    harness.run_steps(3);
    assert!(
        harness.state().error().is_none(),
        "{what}: {:?}",
        harness.state().error()
    );
    let app_list = keeplist::read(&keep_list).expect("the keep-list was written");
    let exported = dir.join("exported.txt");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_curate"))
        .arg("export")
        .arg(dir)
        .arg("--keep-list")
        .arg(&exported)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("curate export runs");
    assert!(
        output.status.success(),
        "{what}: export failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let export_list = keeplist::read(&exported).expect("export wrote a keep-list");
    let app_set: HashSet<&String> = app_list.iter().collect();
    let export_set: HashSet<&String> = export_list.iter().collect();
    assert_eq!(
        app_set.symmetric_difference(&export_set).count(),
        0,
        "{what}: the app keeps {} files, export {}; only in the app: {:?}; only in export: {:?}",
        app_list.len(),
        export_list.len(),
        app_set.difference(&export_set).take(5).collect::<Vec<_>>(),
        export_set.difference(&app_set).take(5).collect::<Vec<_>>()
    );
}

/// One rule for decisions: through a keeper chosen by hand, keep/drop marks, labels, a
/// keeper-policy switch, a pixel-difference drag and "not a duplicate", the keep-list the
/// app saves equals the one `curate export` writes from the saved session; a hand-chosen
/// keeper stays the keeper; labels and policies re-choose keepers only when accepted, and
/// are undone like marks; "not a duplicate" is honoured by the next analysis.
#[test]
fn every_kind_of_decision_keeps_the_app_and_export_in_agreement() {
    let (_tmp, dir) = common::copy_of_demo();
    let mut harness = open(&dir);
    same_keep_list_as_export(&mut harness, &dir, "no decisions");
    assert!(
        !std::fs::read_to_string(dir.join(".curate/session.json"))
            .unwrap_or_default()
            .contains("settings"),
        "an untouched session tunes nothing"
    );

    // A group of at least three near copies.
    let g = {
        let w = ws_of(&harness);
        (0..w.collection.groups.len() as u32)
            .find(|&g| {
                let members = &w.collection.groups[g as usize].members;
                members.len() >= 3
                    && members.iter().all(|&m| {
                        w.collection.dup_kind[m as usize] == curate::ui::model::DupKind::Near
                    })
            })
            .expect("a group of three near copies")
    };
    let (auto_keeper, others) = {
        let w = ws_of(&harness);
        let group = &w.collection.groups[g as usize];
        let others: Vec<u32> = group
            .members
            .iter()
            .copied()
            .filter(|&m| m != group.keeper)
            .collect();
        (group.keeper, others)
    };
    let (chosen, also) = (others[0], others[1]);
    let path_of = |h: &Harness<'static, CurateApp>, p: u32| ws_of(h).collection.path(p as usize);
    let chosen_path = path_of(&harness, chosen);

    // Keeper by hand, then a second member kept by hand: the keeper stays the chosen one,
    // and "drop all but *" keeps it.
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .make_keeper(chosen);
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .mark_point(also, true);
    harness.step();
    assert_eq!(
        ws_of(&harness).keeper(g),
        chosen,
        "the hand-chosen keeper stays"
    );
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .drop_all_but_keeper(Some(g));
    let w = ws_of(&harness);
    assert!(w.decisions.keep(&w.collection, chosen as usize));
    assert!(!w.decisions.keep(&w.collection, also as usize));
    assert!(!w.decisions.keep(&w.collection, auto_keeper as usize));
    same_keep_list_as_export(&mut harness, &dir, "keeper by hand");
    let w = ws_of(&harness);
    let g_now = w.collection.group[chosen as usize];
    assert_eq!(
        w.keeper(g_now as u32),
        chosen,
        "after regrouping, the group's keeper is still the chosen one"
    );
    let row = w.collection.row(chosen as usize).unwrap();
    assert_eq!(
        row.keeper.as_deref(),
        Some(chosen_path.as_str()),
        "the report names the chosen keeper"
    );

    // Keep / drop with the keys.
    let some: Vec<u32> = (0..ws_of(&harness).collection.len() as u32)
        .step_by(97)
        .take(6)
        .collect();
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .select(some, SelectOp::Replace);
    harness.step();
    harness.key_press(Key::D);
    harness.step();
    same_keep_list_as_export(&mut harness, &dir, "drop by key");

    // Labels: no keeper moves until the proposal is accepted; then it is one undo step.
    let keepers = |h: &Harness<'static, CurateApp>| -> Vec<String> {
        let w = ws_of(h);
        let mut k: Vec<String> = (0..w.collection.groups.len() as u32)
            .map(|g| w.collection.path(w.keeper(g) as usize))
            .collect();
        k.sort();
        k
    };
    let before_labels = keepers(&harness);
    let n = ws_of(&harness).collection.len() as u32;
    for (points, key) in [
        ((0..n).step_by(41).take(8).collect::<Vec<u32>>(), Key::B),
        ((5..n).step_by(53).take(12).collect(), Key::G),
    ] {
        harness
            .state_mut()
            .workspace
            .as_mut()
            .unwrap()
            .select(points, SelectOp::Replace);
        harness.step();
        harness.key_press(key);
        harness.step();
    }
    wait_until(&mut harness, "the ensemble to learn", |app| {
        let w = app.workspace.as_ref().unwrap();
        !w.refitting() && !w.regrouping()
    });
    harness.run_steps(2);
    assert_eq!(
        keepers(&harness),
        before_labels,
        "labels alone re-chose keepers"
    );
    same_keep_list_as_export(&mut harness, &dir, "labels");
    assert!(
        ws_of(&harness)
            .proposal
            .as_ref()
            .is_some_and(|p| p.groups > 0),
        "the learned score's re-choice is counted and proposed"
    );
    harness.get_by_label("Apply").click();
    harness.run_steps(2);
    same_keep_list_as_export(&mut harness, &dir, "learned keepers accepted");
    assert_ne!(
        keepers(&harness),
        before_labels,
        "accepted, the keepers moved"
    );
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    same_keep_list_as_export(&mut harness, &dir, "learned keepers undone");
    assert_eq!(
        keepers(&harness),
        before_labels,
        "undo brings the keepers back"
    );

    // Another keeper policy: counted first, applied on yes; the hand-chosen keeper stays.
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .set_keeper_policy(curate::analysis::keep::KeeperPolicy::Farthest);
    wait_until(&mut harness, "the proposal", |app| {
        let w = app.workspace.as_ref().unwrap();
        !w.regrouping()
    });
    harness.run_steps(2);
    assert!(
        ws_of(&harness).proposal.is_some(),
        "the policy's re-choice is counted and proposed"
    );
    assert_eq!(
        ws_of(&harness).keeper_policy,
        curate::analysis::keep::KeeperPolicy::Quality,
        "nothing changed before the yes"
    );
    harness.get_by_label("Apply").click();
    harness.run_steps(2);
    assert_eq!(
        ws_of(&harness).keeper_policy,
        curate::analysis::keep::KeeperPolicy::Farthest
    );
    let w = ws_of(&harness);
    assert_eq!(w.keeper(w.collection.group[chosen as usize] as u32), chosen);
    same_keep_list_as_export(&mut harness, &dir, "policy switch");

    // A lower pixel-difference line.
    let line = ws_of(&harness).near_threshold * 0.6;
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .regroup_near(line);
    same_keep_list_as_export(&mut harness, &dir, "threshold drag");

    // "Not a duplicate": a member of another group leaves it, here and in the next run.
    let (member, keeper) = {
        let w = ws_of(&harness);
        let g = (0..w.collection.groups.len() as u32)
            .find(|&h| {
                let group = &w.collection.groups[h as usize];
                group.members.len() >= 2
                    && !group.members.contains(&chosen)
                    && group.members.iter().all(|&m| {
                        w.collection.dup_kind[m as usize] == curate::ui::model::DupKind::Near
                    })
            })
            .expect("another near group");
        let group = &w.collection.groups[g as usize];
        let member = group
            .members
            .iter()
            .copied()
            .find(|&m| m != group.keeper)
            .unwrap();
        (member, group.keeper)
    };
    let (member_path, keeper_path) = (path_of(&harness, member), path_of(&harness, keeper));
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .not_duplicate(member);
    same_keep_list_as_export(&mut harness, &dir, "not a duplicate");
    let w = ws_of(&harness);
    assert!(
        w.collection.group[member as usize] < 0
            || w.collection.group[member as usize] != w.collection.group[keeper as usize],
        "the member left the group"
    );
    assert!(
        w.decisions.keep(&w.collection, member as usize),
        "and is kept"
    );
    drop(harness);

    let analysis = curate::pipeline::analyze(
        &dir,
        &curate::pipeline::Options::default(),
        &curate::progress::Progress::silent(),
    )
    .expect("the next analysis");
    let row = |path: &str| analysis.rows.iter().find(|r| r.path == path).unwrap();
    let (m, k) = (row(&member_path), row(&keeper_path));
    assert!(
        m.dup_group < 0 || m.dup_group != k.dup_group,
        "the next analysis keeps {member_path} apart from {keeper_path}"
    );
}

/// Paints a pixel of a test picture.
type Paint = fn(u32, u32) -> [u8; 3];

/// The inspector says when an image's caption is near-duplicated on other images (MinHash,
/// report column `caption_dup_group`), and says nothing for a caption of its own.
#[test]
fn the_inspector_shows_near_duplicate_captions() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let pictures: [(&str, Paint, &str); 3] = [
        (
            "dog",
            |x, y| [(x * 4) as u8, (y * 4) as u8, 90],
            "A brown dog runs along the beach at sunset.",
        ),
        (
            "dog-again",
            |x, y| {
                if (x / 8 + y / 8) % 2 == 0 {
                    [250, 240, 20]
                } else {
                    [20, 30, 200]
                }
            },
            "a brown dog runs along the beach, at sunset!",
        ),
        (
            "chess",
            |x, y| {
                let d = (x as f32 - 32.0).hypot(y as f32 - 32.0);
                if d < 20.0 {
                    [200, 30, 40]
                } else {
                    [240, 240, 240]
                }
            },
            "Two children play chess in a quiet park.",
        ),
    ];
    for (stem, paint, caption) in pictures {
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb(paint(x, y)))
            .save(dir.join(format!("{stem}.png")))
            .expect("save");
        std::fs::write(dir.join(format!("{stem}.txt")), caption).expect("caption");
    }
    let mut harness = open(dir);
    harness.remove_cursor();
    let point = |harness: &Harness<'static, CurateApp>, name: &str| {
        let c = &harness.state().workspace.as_ref().unwrap().collection;
        (0..c.len()).find(|&i| c.path(i) == name).expect("point") as u32
    };
    let dog = point(&harness, "dog.png");
    let ws = harness.state_mut().workspace.as_mut().unwrap();
    ws.hovered = None;
    ws.inspected = Some(dog);
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label_contains("caption near-duplicated on 1 other image (")
            .is_some(),
        "no caption-duplicate line for dog.png"
    );
    assert!(
        harness
            .query_by_label_contains("captions: 1 near-duplicate group · 2 images")
            .is_some(),
        "no caption-duplicate line in the Duplicates panel"
    );
    if let Ok(dir) = std::env::var("CURATE_SCREENSHOT_DIR") {
        let image = harness.render().expect("rendered");
        image
            .save(std::path::Path::new(&dir).join("inspector-caption-duplicates.png"))
            .expect("screenshot");
    }
    let chess = point(&harness, "chess.png");
    harness.state_mut().workspace.as_mut().unwrap().inspected = Some(chess);
    harness.run_steps(3);
    assert!(harness.query_by_label_contains("near-duplicated").is_none());
}

#[test]
fn the_classes_panel_finds_a_misfiled_image_and_relabels_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // Three classes of drawings, twelve each; one "cool" drawing filed under "warm".
    let paint = |class: usize, k: u32, x: u32, y: u32| -> [u8; 3] {
        let wave = ((x * (3 + k) + y * (k % 4)) % 64) as u8;
        match class {
            0 => [200 + wave / 2, 40 + wave, 30],
            1 => [30, 60 + wave, 200 + wave / 2],
            _ if ((x / (4 + k)) + (y / (4 + k))).is_multiple_of(2) => [20, 20, 20],
            _ => [235, 235, 235],
        }
    };
    let names = ["warm", "cool", "checks"];
    for (class, name) in names.iter().enumerate() {
        for k in 0..12 {
            let folder = if class == 1 && k == 5 { "warm" } else { name };
            std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
            image::RgbImage::from_fn(64, 64, |x, y| image::Rgb(paint(class, k, x, y)))
                .save(dir.join(format!("{folder}/{name}-{k}.png")))
                .expect("save");
        }
    }
    let mut harness = open_config(AppConfig {
        launch: Launch::Folder(dir.to_owned()),
        device: DeviceChoice::Cpu,
        remember_recent: false,
        model: None,
        classifier: None,
        embeddings: None,
        class_from: Some(curate::pipeline::ClassFrom::Folder),
    });
    harness.get_by_label("Classes").click();
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label_contains("3 classes over 36 images")
            .is_some(),
        "no class summary in the Classes panel"
    );
    assert!(harness.query_by_label_contains("warm -> cool").is_some());
    let misfiled = {
        let c = &ws_of(&harness).collection;
        let given = c.given_classes.as_ref().expect("given classes");
        let worst = given.worst(None, None, 1)[0];
        assert_eq!(c.path(worst as usize), "warm/cool-5.png");
        worst
    };
    harness
        .state_mut()
        .workspace
        .as_mut()
        .unwrap()
        .select(vec![misfiled], SelectOp::Replace);
    harness.run_steps(2);
    harness
        .get_by_label("Relabel 1 selected as suggested")
        .click();
    harness.run_steps(2);
    let relabelled = |h: &Harness<'static, CurateApp>| ws_of(h).decisions.relabels().clone();
    assert_eq!(
        relabelled(&harness).get(&misfiled).map(String::as_str),
        Some("cool")
    );
    if let Ok(dir) = std::env::var("CURATE_SCREENSHOT_DIR") {
        let image = harness.render().expect("rendered");
        image
            .save(std::path::Path::new(&dir).join("classes-panel.png"))
            .expect("screenshot");
    }
    harness.state_mut().workspace.as_mut().unwrap().undo();
    harness.run_steps(2);
    assert!(relabelled(&harness).is_empty());
}
