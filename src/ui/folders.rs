//! An in-app folder browser: what "Open folder…" shows where the desktop has no native
//! chooser (no file-chooser portal, no zenity: minimal window managers, remote sessions).
//! Written here rather than taken from a crate: it is a list of subfolders with a path
//! field, and no egui file-dialog crate was released for egui 0.37 when this was written.

use std::path::{Path, PathBuf};

use eframe::egui;

/// The browser's state.
#[derive(Debug)]
pub struct FolderBrowser {
    /// The folder shown.
    pub dir: PathBuf,
    /// The path field (typed or pasted paths).
    field: String,
    /// Subfolders of `dir`, sorted by name.
    entries: Vec<PathBuf>,
    /// Why `dir` could not be listed.
    error: Option<String>,
    /// Whether folders starting with a dot are listed.
    hidden: bool,
    /// Why the browser opened instead of the native chooser.
    pub why: Option<String>,
}

impl FolderBrowser {
    /// A browser at `dir`.
    #[must_use]
    pub fn new(dir: PathBuf, why: Option<String>) -> Self {
        let mut browser = Self {
            field: dir.display().to_string(),
            dir,
            entries: Vec::new(),
            error: None,
            hidden: false,
            why,
        };
        browser.list();
        browser
    }

    fn list(&mut self) {
        self.entries.clear();
        self.error = None;
        match std::fs::read_dir(&self.dir) {
            Ok(read) => {
                self.entries = read
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .filter(|p| {
                        self.hidden
                            || !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect();
                self.entries.sort_by_key(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().to_lowercase())
                        .unwrap_or_default()
                });
            }
            Err(err) => self.error = Some(format!("{}: {err}", self.dir.display())),
        }
    }

    /// Shows `dir` instead.
    pub fn go(&mut self, dir: &Path) {
        dir.clone_into(&mut self.dir);
        self.field = dir.display().to_string();
        self.list();
    }

    /// Shows the browser; returns the folder to open when the person chose one, and
    /// `Some(None)` when they closed it.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<Option<PathBuf>> {
        let mut open = true;
        let mut result = None;
        egui::Window::new("Open a dataset folder")
            .open(&mut open)
            .collapsible(false)
            .default_size([520.0, 420.0])
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                if let Some(why) = &self.why {
                    ui.label(egui::RichText::new(why).weak());
                }
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(self.dir.parent().is_some(), egui::Button::new("Up"))
                        .clicked()
                        && let Some(parent) = self.dir.parent().map(Path::to_owned)
                    {
                        self.go(&parent);
                    }
                    let field = ui.add(
                        egui::TextEdit::singleline(&mut self.field)
                            .desired_width(ui.available_width() - 50.0),
                    );
                    if (field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)))
                        || ui.button("Go").clicked()
                    {
                        let typed = PathBuf::from(self.field.trim());
                        self.go(&typed);
                    }
                });
                if ui
                    .checkbox(&mut self.hidden, "show hidden folders")
                    .changed()
                {
                    self.list();
                }
                ui.separator();
                if let Some(err) = &self.error {
                    ui.label(egui::RichText::new(err).color(egui::Color32::from_rgb(240, 120, 90)));
                }
                let mut go_to = None;
                egui::ScrollArea::vertical()
                    .max_height(280.0)
                    .auto_shrink([false, true])
                    .show(ui, |ui| {
                        if self.entries.is_empty() && self.error.is_none() {
                            ui.label(egui::RichText::new("no subfolders").weak());
                        }
                        for entry in &self.entries {
                            let name = entry
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            let response = ui.selectable_label(false, format!("{name}/"));
                            if response.double_clicked() {
                                result = Some(Some(entry.clone()));
                            } else if response.clicked() {
                                go_to = Some(entry.clone());
                            }
                        }
                    });
                if let Some(dir) = go_to {
                    self.go(&dir);
                }
                ui.separator();
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(self.error.is_none(), egui::Button::new("Open this folder"))
                        .clicked()
                    {
                        result = Some(Some(self.dir.clone()));
                    }
                    if ui.button("Cancel").clicked() {
                        result = Some(None);
                    }
                });
            });
        if !open {
            result = Some(None);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_subfolders_sorted_without_hidden_ones_and_survives_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "A", ".hidden", "c"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("file.png"), b"x").unwrap();
        let mut browser = FolderBrowser::new(dir.path().to_owned(), None);
        let names: Vec<String> = browser
            .entries
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["A", "b", "c"]);
        browser.hidden = true;
        browser.list();
        assert_eq!(browser.entries.len(), 4);
        browser.go(&dir.path().join("missing"));
        assert!(browser.error.is_some());
        assert!(browser.entries.is_empty());
    }
}
