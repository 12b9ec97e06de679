//! Progress reporting and cancellation shared by the command line and the app.
//!
//! A long job takes a [`Progress`] handle. It publishes [`ProgressEvent`]s on a channel
//! (the app subscribes to it; the command line drives an `indicatif` bar from it) and
//! carries a cancellation flag that the job checks between work items.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

/// A stage of the analysis pass, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    /// Walking the folder.
    Scan,
    /// Waiting for another process that is writing the same cache folder.
    Wait,
    /// Decoding, hashing, measuring and thumbnailing each image.
    Decode,
    /// Running the image model (`--model`).
    Embed,
    /// Finding duplicate groups.
    Dedup,
    /// Nearest-neighbour outlier scores.
    Outliers,
    /// The 2-D layout.
    Layout,
    /// Writing the report and keep-list.
    Write,
}

impl Stage {
    /// A short human label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Scan => "scanning",
            Self::Wait => "waiting for another curate run on this folder",
            Self::Decode => "decoding",
            Self::Embed => "embedding images",
            Self::Dedup => "grouping duplicates",
            Self::Outliers => "scoring outliers",
            Self::Layout => "laying out the map",
            Self::Write => "writing",
        }
    }
}

/// One progress update.
#[derive(Clone, Debug, PartialEq)]
pub enum ProgressEvent {
    /// A stage began; `total` is its number of work items when known.
    Started {
        /// The stage.
        stage: Stage,
        /// Work items in the stage (0 when unknown).
        total: u64,
    },
    /// `done` of the stage's items are finished.
    Advanced {
        /// The stage.
        stage: Stage,
        /// Items finished so far.
        done: u64,
    },
    /// The stage finished.
    Finished {
        /// The stage.
        stage: Stage,
    },
    /// A sentence for the person waiting (e.g. whom a run waits for).
    Note(String),
}

/// The job's side of progress reporting: cheap to clone, safe to share across threads.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    sender: Option<Sender<ProgressEvent>>,
    cancelled: Arc<AtomicBool>,
}

impl Progress {
    /// A handle that reports to nobody and is never cancelled.
    #[must_use]
    pub fn silent() -> Self {
        Self::default()
    }

    /// A handle and the receiving end of its events.
    #[must_use]
    pub fn channel() -> (Self, Receiver<ProgressEvent>) {
        let (sender, receiver) = channel();
        (
            Self {
                sender: Some(sender),
                cancelled: Arc::default(),
            },
            receiver,
        )
    }

    /// Publishes an event; a receiver that went away is not an error.
    pub fn send(&self, event: ProgressEvent) {
        if let Some(sender) = &self.sender {
            sender.send(event).ok();
        }
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::cancel`] was called on this handle or any clone.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}
