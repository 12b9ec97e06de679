//! Background work of the app: analysing a folder (or generating stress points) and building
//! everything the map needs, off the UI thread, with progress and clean cancellation.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread;
use std::time::{Duration, Instant};

use crate::pipeline::{self, Options, PreviewBuilder, PreviewEvent};
use crate::progress::{Progress, ProgressEvent, Stage};
use crate::store::session::{self, Session};

use super::decisions::Decisions;
use super::model::{Collection, PreviewState};
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
    previews: Option<Receiver<Loaded>>,
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
    /// Analyses `root` in the background. A second thread turns the records the analysis
    /// publishes into preview collections (see [`Self::take_preview`]).
    #[must_use]
    pub fn analyze(root: PathBuf, mut options: Options) -> Self {
        let (progress, events) = Progress::channel();
        let (send, result) = channel();
        let (publish, published) = channel();
        options.preview = Some(publish);
        let (send_preview, previews) = channel();
        let preview_progress = progress.clone();
        let preview_root = root.clone();
        let max_distance = options.max_distance;
        thread::Builder::new()
            .name("curate-preview".to_owned())
            .spawn(move || {
                lower_priority();
                previews_until_done(
                    &preview_root,
                    max_distance,
                    &published,
                    &send_preview,
                    &preview_progress,
                );
            })
            .expect("spawning a thread");
        let job_progress = progress.clone();
        let job_root = root.clone();
        let handle = thread::Builder::new()
            .name("curate-analysis".to_owned())
            .spawn(move || {
                lower_priority();
                let run = || pipeline::analyze(&job_root, &options, &job_progress);
                let outcome = match background_pool() {
                    Some(pool) => pool.install(run),
                    None => run(),
                };
                // Ends the preview thread before the result goes out.
                drop(options);
                let outcome = outcome
                    .map_err(|err| err.to_string())
                    .map(|analysis| prepare(Collection::from_analysis(analysis), Some(&job_root)));
                send.send(outcome).ok();
            })
            .expect("spawning a thread");
        let mut job = Self::running(Some(root), progress, events, result, handle);
        job.previews = Some(previews);
        job
    }

    /// The newest preview of the images analysed so far, if one arrived since the last call.
    pub fn take_preview(&mut self) -> Option<Loaded> {
        self.previews.as_ref()?.try_iter().last()
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
            previews: None,
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
                ProgressEvent::Finished { .. } | ProgressEvent::Note(_) => {}
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

/// A thread pool for the analysis whose threads yield to the UI thread (on two cores the
/// decoders would otherwise starve the map while it shows the preview).
fn background_pool() -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("curate-analysis-{i}"))
        .start_handler(|_| lower_priority())
        .build()
        .ok()
}

/// Lowers the calling thread's scheduling priority (nice 10) where the OS allows it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: `gettid` has no preconditions; `setpriority` with PRIO_PROCESS and a thread id
    // changes only that thread's nice value, and a failure is harmless (it stays at 0).
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Lowers the calling thread's scheduling priority where the OS allows it.
#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Shortest time between two previews; a preview that took `t` to build waits `3 t`.
const PREVIEW_EVERY: Duration = Duration::from_millis(700);

/// The preview thread: collects the records the analysis publishes and sends a prepared
/// preview collection every so often, until the analysis ends or is cancelled.
fn previews_until_done(
    root: &Path,
    max_distance: u32,
    published: &Receiver<PreviewEvent>,
    send: &Sender<Loaded>,
    progress: &Progress,
) {
    let mut builder: Option<PreviewBuilder> = None;
    let mut changed = false;
    let mut next = Instant::now() + Duration::from_millis(300);
    let mut complete_since: Option<Instant> = None;
    loop {
        match published.recv_timeout(Duration::from_millis(50)) {
            Ok(PreviewEvent::Scanned { scan, pack }) => {
                builder = Some(PreviewBuilder::new(
                    root.to_owned(),
                    scan,
                    pack,
                    max_distance,
                ));
            }
            Ok(PreviewEvent::Records(records)) => {
                if let Some(builder) = &mut builder {
                    builder.add(records);
                    changed = true;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if progress.is_cancelled() {
            return;
        }
        let Some(builder) = builder.as_mut() else {
            continue;
        };
        // When everything is ready the final result usually follows at once (a warm open):
        // a preview then only flashes, so it waits a second for it.
        let complete = builder.ready() >= builder.files();
        if complete {
            complete_since.get_or_insert_with(Instant::now);
        }
        let due = Instant::now() >= next
            && complete_since.is_none_or(|since| since.elapsed() >= Duration::from_secs(1));
        if changed && due {
            let started = Instant::now();
            let state = PreviewState {
                ready: builder.ready(),
                files: builder.files(),
            };
            let mut collection = Collection::from_analysis(builder.build());
            collection.preview = Some(state);
            if send.send(prepare(collection, Some(root))).is_err() {
                return;
            }
            changed = false;
            next = Instant::now() + PREVIEW_EVERY.max(started.elapsed() * 3);
        }
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
            if !decisions.labels().is_empty() {
                notes.push(format!(
                    "restored {} quality labels from .curate/session.json",
                    decisions.labels().len()
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::map_view::SelectOp;
    use crate::ui::workspace::Workspace;

    /// A preview built from the first decoded batch opens as a workspace that cannot be
    /// saved; what the user selects and drops on it carries over to the final collection.
    #[test]
    fn decisions_on_a_preview_survive_the_final_result() {
        let dir = tempfile::tempdir().unwrap();
        crate::dataset::demo::generate(dir.path(), 600).unwrap();
        let (publish, published) = channel();
        let options = Options {
            preview: Some(publish),
            ..Options::default()
        };
        let analysis = pipeline::analyze(dir.path(), &options, &Progress::silent()).unwrap();
        drop(options);
        let mut events = published.into_iter();
        let Some(PreviewEvent::Scanned { scan, pack }) = events.next() else {
            panic!("the scan comes first");
        };
        let mut builder = PreviewBuilder::new(dir.path().to_owned(), scan, pack, 8);
        let Some(PreviewEvent::Records(first)) = events.next() else {
            panic!("then records");
        };
        builder.add(first);
        assert!(builder.ready() < builder.files());
        let mut collection = Collection::from_analysis(builder.build());
        collection.preview = Some(PreviewState {
            ready: builder.ready(),
            files: builder.files(),
        });
        let mut preview = Workspace::new(prepare(collection, None));
        assert!(preview.save_keep_list(&dir.path().join("k.txt")).is_err());

        preview.select(vec![1, 3, 5], SelectOp::Replace);
        assert_eq!(preview.mark_selection(false), 3);
        let paths: Vec<String> = [1, 3, 5]
            .iter()
            .map(|&p| preview.collection.path(p))
            .collect();

        let mut done = Workspace::new(prepare(Collection::from_analysis(analysis), None));
        done.continue_from(&preview);
        let selected: Vec<String> = done
            .selected
            .iter()
            .map(|&p| done.collection.path(p as usize))
            .collect();
        let mut expected = paths.clone();
        expected.sort();
        let mut got = selected.clone();
        got.sort();
        assert_eq!(got, expected);
        for &p in &done.selected {
            assert!(!done.decisions.keep(&done.collection, p as usize));
        }
        assert!(done.unsaved(), "carried decisions still need saving");
        let out = dir.path().join("keep.txt");
        let kept = done.save_keep_list(&out).unwrap();
        let list = std::fs::read_to_string(&out).unwrap();
        assert_eq!(list.lines().count(), kept);
        for path in &paths {
            assert!(!list.lines().any(|l| l == path), "{path} was dropped");
        }
    }

    /// Quality labels given with G / B are saved in the session, restored on the next open
    /// (and read by the next `curate analyze`); the learned score picks the keepers only
    /// once the person accepts the re-choice it proposes, counted first.
    #[test]
    fn quality_labels_persist_and_choose_keepers() {
        let dir = tempfile::tempdir().unwrap();
        let truth = crate::dataset::demo::generate(dir.path(), 600).unwrap();
        let analysis =
            pipeline::analyze(dir.path(), &Options::default(), &Progress::silent()).unwrap();
        let open = || {
            let analysis =
                pipeline::analyze(dir.path(), &Options::default(), &Progress::silent()).unwrap();
            Workspace::new(prepare(
                Collection::from_analysis(analysis),
                Some(dir.path()),
            ))
        };
        drop(analysis);
        let mut ws = open();
        let point = |ws: &Workspace, path: &str| {
            (0..ws.collection.len() as u32).find(|&p| ws.collection.path(p as usize) == path)
        };
        let bad: Vec<u32> = truth
            .outliers
            .iter()
            .take(8)
            .filter_map(|p| point(&ws, p))
            .collect();
        let good: Vec<u32> = (0..ws.collection.len() as u32)
            .filter(|p| !bad.contains(p))
            .step_by(37)
            .take(16)
            .collect();
        let keepers_before: Vec<u32> = ws.collection.groups.iter().map(|g| g.keeper).collect();
        assert_eq!(ws.label_quality(&bad, true), bad.len());
        assert_eq!(ws.label_quality(&good, false), good.len());
        assert!(ws.unsaved());
        let wait = |ws: &mut Workspace| {
            for _ in 0..600 {
                ws.poll_ensemble();
                ws.poll_regroup();
                if !ws.refitting() && !ws.regrouping() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            panic!("background work did not finish");
        };
        wait(&mut ws);
        assert!(!ws.ensemble.1.is_empty(), "weights learned");
        // Labels alone changed no keeper; the re-choice waits for a yes.
        let keepers_now: Vec<u32> = ws.collection.groups.iter().map(|g| g.keeper).collect();
        assert_eq!(
            keepers_now, keepers_before,
            "labels re-chose keepers unasked"
        );
        let proposal = ws.proposal.as_ref().expect("a re-choice is proposed");
        assert!(proposal.groups > 0);
        let undo_depth = ws.decisions.undo_label().map(str::to_owned);
        ws.accept_proposal().expect("applied");
        assert_ne!(
            ws.decisions.undo_label().map(str::to_owned),
            undo_depth,
            "an undoable step"
        );
        // The keepers are the learned score's choice.
        let crate::ui::model::Source::Dataset {
            rows, point_row, ..
        } = &*ws.collection.source
        else {
            unreachable!()
        };
        let mut learned = vec![0.5; rows.len()];
        for (&row, &score) in point_row.iter().zip(ws.ensemble.0.iter()) {
            learned[row as usize] = score;
        }
        let groups = pipeline::rekeep::groups(rows);
        let (expected, _) = pipeline::rekeep::redecide(
            rows,
            &groups,
            crate::analysis::keep::KeeperPolicy::Quality,
            Some(&learned),
            None,
        );
        for g in &ws.collection.groups {
            let keeper = &rows[point_row[g.keeper as usize] as usize];
            let expected_keeper = &expected[point_row[g.members[0] as usize] as usize];
            assert_eq!(
                expected_keeper.keeper.as_deref(),
                Some(keeper.path.as_str())
            );
        }
        ws.save_session().unwrap();
        assert!(!ws.unsaved());
        let saved = Session::load(dir.path()).unwrap();
        assert_eq!(saved.quality_labels.len(), bad.len() + good.len());

        // Reopened: the labels are back, and the analysis itself learned from them.
        assert_eq!(saved.settings.learned_keepers, Some(true));
        let mut again = open();
        assert_eq!(again.decisions.labels().len(), bad.len() + good.len());
        for &p in &bad {
            assert_eq!(again.decisions.labels().get(&p), Some(&true));
        }
        assert!(again.refitting(), "the ensemble refits on open");
        wait(&mut again);
        assert!(!again.ensemble.1.is_empty());
        let summary = pipeline::analyze(dir.path(), &Options::default(), &Progress::silent())
            .unwrap()
            .summary;
        assert!(
            !summary.ensemble_weights.is_empty(),
            "analyze read the session's labels"
        );
    }
}
