//! One writer at a time per cache folder.
//!
//! Every process that writes `DIR/.curate/` (a `curate analyze` in a terminal, the app's
//! background pass, a Python call) first takes an exclusive OS lock on
//! `DIR/.curate/lock` (`flock` on Unix, `LockFileEx` on Windows, through the standard
//! library) and holds it until it has written its last file. A second process waits for the
//! first to finish, then reads the cache the first one committed, so it redoes nothing. The
//! OS drops the lock when its holder exits, however it exits (`kill -9` included), so a
//! crashed run never leaves the folder locked.
//!
//! The lock file also names its holder (process id, program, start time) so a waiting
//! process can say whom it waits for. It is never deleted: removing a lock file that
//! another process has open would let a third lock a different file of the same name.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the lock file inside `.curate/`.
pub const LOCK_FILE: &str = "lock";

/// How often a waiting process tries again (and checks whether it was cancelled).
const RETRY: Duration = Duration::from_millis(100);

/// An exclusive hold on a cache folder; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct CacheLock {
    file: File,
    path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be created or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The caller gave up while another process held the lock.
    #[error("stopped while waiting for another curate process to finish with {0}")]
    Cancelled(PathBuf),
}

impl CacheLock {
    /// Takes the lock of the cache folder `dir` (created if missing). When another
    /// process holds it, `waiting` is called once with a sentence naming the holder, and
    /// the call waits until the lock is free or `give_up` returns true.
    ///
    /// # Errors
    /// [`LockError::Io`] when the folder or lock file cannot be created or locked;
    /// [`LockError::Cancelled`] when `give_up` said so while waiting.
    pub fn acquire(
        dir: &Path,
        mut waiting: impl FnMut(&str),
        give_up: impl Fn() -> bool,
    ) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    if !told {
                        told = true;
                        waiting(&format!(
                            "waiting for another curate process ({}) to finish writing {}",
                            holder(&mut file),
                            dir.display()
                        ));
                    }
                    if give_up() {
                        return Err(LockError::Cancelled(dir.to_owned()));
                    }
                    std::thread::sleep(RETRY);
                }
                Err(TryLockError::Error(source)) => return Err(io_err(source)),
            }
        }
        // Who holds it now, for the next one who waits (best effort: the lock is what counts).
        let me = format!(
            "pid {}, {}, since {}",
            std::process::id(),
            std::env::args()
                .next()
                .as_deref()
                .map(Path::new)
                .and_then(Path::file_name)
                .map_or_else(|| "curate".to_owned(), |n| n.to_string_lossy().into_owned()),
            unix_seconds()
        );
        (|| -> io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(me.as_bytes())?;
            file.flush()
        })()
        .ok();
        Ok(Self { file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        self.file.unlock().ok();
    }
}

/// What the lock file says about its holder.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok();
    file.take(200).read_to_string(&mut text).ok();
    let text = text.trim();
    if text.is_empty() {
        "holder unknown".to_owned()
    } else {
        text.to_owned()
    }
}

fn unix_seconds() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or_else(
            |_| "?".to_owned(),
            |d| format!("{}s after the epoch", d.as_secs()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = dir.path().join(".curate");
        let first = CacheLock::acquire(&cache, |_| panic!("nobody holds it"), || false)
            .expect("first lock");
        let released = Arc::new(AtomicBool::new(false));
        let waited = Arc::new(AtomicBool::new(false));
        let thread = {
            let (cache, released, waited) = (cache.clone(), released.clone(), waited.clone());
            std::thread::spawn(move || {
                let second = CacheLock::acquire(
                    &cache,
                    |message| {
                        assert!(message.contains("waiting for another curate process"));
                        assert!(message.contains(&format!("pid {}", std::process::id())));
                        waited.store(true, Ordering::SeqCst);
                    },
                    || false,
                )
                .expect("second lock");
                assert!(
                    released.load(Ordering::SeqCst),
                    "the second got the lock while the first held it"
                );
                drop(second);
            })
        };
        std::thread::sleep(Duration::from_millis(400));
        released.store(true, Ordering::SeqCst);
        drop(first);
        thread.join().expect("second thread");
        assert!(waited.load(Ordering::SeqCst), "the second never waited");
    }

    #[test]
    fn a_waiter_can_give_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _held = CacheLock::acquire(dir.path(), |_| {}, || false).expect("lock");
        let other = std::thread::scope(|scope| {
            scope
                .spawn(|| CacheLock::acquire(dir.path(), |_| {}, || true))
                .join()
                .expect("thread")
        });
        assert!(matches!(other, Err(LockError::Cancelled(_))));
    }
}
