//! Folding the write-ahead log into the database file off the commit path.
//!
//! SQLite's default copies the WAL back into the database (a checkpoint) inside the
//! commit that crosses 1000 pages, so every few appends one of them also writes and
//! fsyncs the database file: at 1024-event batches that was the largest single cost
//! of an append. Here the writer connection's WAL hook only *nudges* a thread with its
//! own connection, which checkpoints while the writer goes on appending.
//!
//! A checkpoint running beside the writer copies everything up to where it started,
//! but the WAL file can only start over when a checkpoint has copied *all* of it
//! before the next append. So once the WAL holds [`BACKSTOP_PAGES`], the writer
//! checkpoints itself after its commit, as SQLite would: the thread, nudged every
//! [`NUDGE_PAGES`], has already copied all but the last few hundred pages, so this
//! copies only those, and the WAL starts over. The WAL stays under about
//! `BACKSTOP_PAGES` pages (16 MiB at 4 KiB pages).
//!
//! Not for durability: an append is durable once its WAL frames are fsynced, whether
//! or not they have been checkpointed. A checkpoint that fails is logged and tried
//! again at the next nudge; it loses nothing.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use toka_store_core::StoreError;

use crate::backend;

/// How many pages the WAL grows between two nudges of the thread: what the writer may
/// have to copy itself at the backstop.
const NUDGE_PAGES: i32 = 500;
/// WAL pages after a commit from which the writer checkpoints itself, so the WAL
/// starts over.
const BACKSTOP_PAGES: i32 = 4000;
/// How long the thread waits for a nudge before looking for a stop again.
const IDLE: Duration = Duration::from_secs(1);

enum Wake {
    Checkpoint,
    Stop,
}

/// The background checkpoint thread of one store; stopped and joined on drop.
pub(crate) struct Checkpointer {
    wake: SyncSender<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, with its own connection to `path`.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        // A checkpoint never waits on the writer (PASSIVE); this bounds the rest.
        conn.busy_timeout(Duration::from_millis(100))
            .map_err(backend)?;
        // Reading the mode opens the WAL on this connection; until a connection has
        // read the file, a checkpoint on it does nothing (it answers -1, -1).
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(backend(format!("journal mode is {mode}, not wal")));
        }
        let (wake, nudges) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("toka-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &nudges))
            .map_err(|e| backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            wake,
            thread: Some(thread),
        })
    }

    /// Makes the writer connection nudge this thread, and checkpoint itself at the
    /// backstop, after each commit (in place of SQLite's automatic checkpoint).
    pub(crate) fn attach(&self, writer: &mut Connection) -> Result<(), StoreError> {
        let wake = self.wake.clone();
        // WAL pages at the last nudge (0 after the WAL started over).
        let mut nudged_at = 0;
        writer
            .wal_hook(Some(move |wal: &mut Wal, pages: i32| {
                if pages < nudged_at {
                    nudged_at = 0;
                }
                if pages >= BACKSTOP_PAGES {
                    // Busy when the thread is mid-checkpoint: the next commit retries.
                    if let Err(e) = wal.checkpoint() {
                        tracing::debug!(error = %e, pages, "writer's checkpoint did not run");
                    }
                } else if pages - nudged_at >= NUDGE_PAGES {
                    nudged_at = pages;
                    match wake.try_send(Wake::Checkpoint) {
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => {
                            tracing::warn!("the checkpoint thread is gone; the writer checkpoints at the backstop");
                        }
                    }
                }
                // Never an error: the commit has happened; an error here would report
                // a committed append as failed.
                Ok(())
            }))
            .map_err(backend)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Blocks only while the thread finishes a checkpoint and takes the nudge.
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}

fn run(conn: &Connection, nudges: &mpsc::Receiver<Wake>) {
    loop {
        match nudges.recv_timeout(IDLE) {
            Ok(Wake::Checkpoint) => {}
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => continue,
        }
        match conn.wal_checkpoint_v2(Some("main"), rusqlite::wal::CheckpointMode::PASSIVE) {
            Ok((log, copied)) => tracing::trace!(log, copied, "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; retried at the next nudge"),
        }
    }
}
