//! Online backup: a consistent copy of a live SQLite log, taken with SQLite's own
//! backup API while a node keeps appending (it reads through a separate read-only
//! connection and never takes the store's lock).
//!
//! What it is not: a verification. The caller opens the copy as a store and checks
//! its chain (`toka backup` does), so a copy is only trusted once it was verified.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use toka_store_core::StoreError;

/// Pages copied per step: small steps let the node's writer in between.
const PAGES_PER_STEP: std::ffi::c_int = 1024;
/// Pause between steps.
const PAUSE: Duration = Duration::from_millis(5);

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(crate::DRIVER, e)
}

/// Copies the SQLite log at `from` into the new file `to` (which must not exist),
/// calling `progress(done, total)` in pages as it goes. Safe while a node serves
/// `from`. The copy is a single file (no WAL), mode 0600, synced.
pub fn backup(
    from: &Path,
    to: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<(), StoreError> {
    if to.exists() {
        return Err(backend(format!(
            "{} already exists; choose a new file",
            to.display()
        )));
    }
    if !from.exists() {
        return Err(backend(format!("{} does not exist", from.display())));
    }
    let source =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
    source
        .busy_timeout(Duration::from_secs(5))
        .map_err(backend)?;
    // Created 0600 before SQLite writes a byte of the log into it.
    create_private(to)?;
    let mut copy = Connection::open(to).map_err(backend)?;
    {
        let step = rusqlite::backup::Backup::new(&source, &mut copy).map_err(backend)?;
        loop {
            let more = step.step(PAGES_PER_STEP).map_err(backend)?;
            let p = step.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total.saturating_sub(p.remaining.max(0) as u64), total);
            match more {
                rusqlite::backup::StepResult::Done => break,
                _ => std::thread::sleep(PAUSE),
            }
        }
    }
    // One self-contained file: no WAL beside it.
    copy.pragma_update(None, "journal_mode", "DELETE")
        .map_err(backend)?;
    drop(copy);
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| backend(format!("cannot sync {}: {e}", to.display())))
}

fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|e| backend(format!("cannot create {}: {e}", path.display())))
}
