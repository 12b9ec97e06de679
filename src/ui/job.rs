//! Background work of the app: analysing a folder (or generating stress points) and building
//! everything the map needs, off the UI thread, with progress and clean cancellation.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::thread;
use std::time::{Duration, Instant};

use crate::pipeline::{self, Options};
use crate::progress::{Progress, ProgressEvent, Stage};
use crate::store::session::{self, Session};

use super::decisions::Decisions;
use super::model::Collection;
use super::select::{Grid, Picker};

/// Everything a finished job hands to the app.
#[derive(Debug)]
pub struct Loaded {
    /// The points.
    pub collection: Collection,
    /// Selection grid.
    pub grid: Grid,
    /// Hover KD-tree.
    pub picker: Picker,
    /// Restored decisions.
    pub decisions: Decisions,
    /// Things to tell the user (restored decisions, a broken session file set aside).
    pub notes: Vec<String>,
}

/// A running job.
#[derive(Debug)]
pub struct Job {
    /// The folder being analysed (`None` in stress mode).
    pub root: Option<PathBuf>,
    progress: Progress,
    events: Receiver<ProgressEvent>,
    result: Receiver<Result<Loaded, String>>,
    handle: Option<thread::JoinHandle<()>>,
    /// The current stage.
    pub stage: Option<Stage>,
    /// Work items done in the stage.
    pub done: u64,
    /// Work items in the stage (0 = unknown).
    pub total: u64,
    stage_started: Instant,
    /// When the job began.
    pub started: Instant,
}

impl Job {
    /// Analyses `root` in the background.
    #[must_use]
    pub fn analyze(root: PathBuf, options: Options) -> Self {
        let (progress, events) = Progress::channel();
        let (send, result) = channel();
        let job_progress = progress.clone();
        let job_root = root.clone();
        let handle = thread::Builder::new()
            .name("curate-analysis".to_owned())
            .spawn(move || {
                let outcome = pipeline::analyze(&job_root, &options, &job_progress)
                    .map_err(|err| err.to_string())
                    .map(|analysis| prepare(Collection::from_analysis(analysis), Some(&job_root)));
                send.send(outcome).ok();
            })
            .expect("spawning a thread");
        Self::running(Some(root), progress, events, result, handle)
    }

    /// Generates `points` synthetic points in the background (stress mode).
    #[must_use]
    pub fn synthetic(points: usize, seed: u64) -> Self {
        let (progress, events) = Progress::channel();
        let (send, result) = channel();
        let job_progress = progress.clone();
        let handle = thread::Builder::new()
            .name("curate-stress".to_owned())
            .spawn(move || {
                job_progress.send(ProgressEvent::Started {
                    stage: Stage::Layout,
                    total: 0,
                });
                let collection = Collection::synthetic(points, seed);
                send.send(Ok(prepare(collection, None))).ok();
            })
            .expect("spawning a thread");
        Self::running(None, progress, events, result, handle)
    }

    fn running(
        root: Option<PathBuf>,
        progress: Progress,
        events: Receiver<ProgressEvent>,
        result: Receiver<Result<Loaded, String>>,
        handle: thread::JoinHandle<()>,
    ) -> Self {
        Self {
            root,
            progress,
            events,
            result,
            handle: Some(handle),
            stage: None,
            done: 0,
            total: 0,
            stage_started: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Takes progress events; returns the outcome once the job is over.
    pub fn poll(&mut self) -> Option<Result<Loaded, String>> {
        for event in self.events.try_iter() {
            match event {
                ProgressEvent::Started { stage, total } => {
                    self.stage = Some(stage);
                    self.total = total;
                    self.done = 0;
                    self.stage_started = Instant::now();
                }
                ProgressEvent::Advanced { done, .. } => self.done = done,
                ProgressEvent::Finished { .. } => {}
            }
        }
        match self.result.try_recv() {
            Ok(outcome) => {
                if let Some(handle) = self.handle.take() {
                    handle.join().ok();
                }
                Some(outcome)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err("the analysis stopped unexpectedly".into()))
            }
        }
    }

    /// Items per second in the current stage.
    #[must_use]
    pub fn rate(&self) -> f64 {
        let secs = self.stage_started.elapsed().as_secs_f64();
        if secs < 0.2 || self.done == 0 {
            0.0
        } else {
            self.done as f64 / secs
        }
    }

    /// Estimated time left in the current stage.
    #[must_use]
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (rate > 0.0 && self.total > self.done)
            .then(|| Duration::from_secs_f64((self.total - self.done) as f64 / rate))
    }

    /// Asks the job to stop; it finishes its current batch and exits.
    pub fn cancel(&self) {
        self.progress.cancel();
    }

    /// Cancels and waits up to `timeout` for the thread to exit (on close, so the cache is
    /// left consistent).
    pub fn cancel_and_wait(mut self, timeout: Duration) {
        self.cancel();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .handle
                .as_ref()
                .is_none_or(thread::JoinHandle::is_finished)
            {
                if let Some(handle) = self.handle.take() {
                    handle.join().ok();
                }
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Switching folders: the old job stops at its next check; nobody waits for it.
        self.progress.cancel();
    }
}

/// Builds the selection grid, the hover tree and the restored decisions.
fn prepare(collection: Collection, root: Option<&Path>) -> Loaded {
    let (grid, picker) = rayon::join(
        || Grid::build(&collection.positions),
        || Picker::build(&collection.positions),
    );
    let mut notes = Vec::new();
    let decisions = match root.map(Session::load) {
        None => Decisions::new(collection.len()),
        Some(Ok(saved)) => {
            let (decisions, unknown) = Decisions::from_session(&saved, &collection);
            if !saved.decisions.is_empty() {
                notes.push(format!(
                    "restored {} decisions from .curate/session.json",
                    saved.decisions.len() - unknown
                ));
            }
            if unknown > 0 {
                notes.push(format!(
                    "{unknown} saved decisions are about files no longer in the folder (kept in the session file)"
                ));
            }
            decisions
        }
        Some(Err(err)) => {
            // Never overwrite what the user decided: set the unreadable file aside first.
            let root = root.expect("a session is only loaded for a folder");
            let from = session::path(root);
            let aside = from.with_file_name(format!(
                "session-unreadable-{}.json",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ));
            let moved = std::fs::rename(&from, &aside).is_ok();
            notes.push(format!(
                "could not read the saved decisions ({err}){}",
                if moved {
                    format!("; the file was kept as {}", aside.display())
                } else {
                    String::new()
                }
            ));
            Decisions::new(collection.len())
        }
    };
    Loaded {
        collection,
        grid,
        picker,
        decisions,
        notes,
    }
}
