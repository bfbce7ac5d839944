use thiserror::Error;

/// A storage failure: the driver could not do what was asked. Carries the driver's
/// name so a message read in a log says where it came from.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The underlying database failed (I/O, corruption it detected, a lost connection).
    #[error("{driver}: {message}")]
    Backend {
        /// The driver.
        driver: &'static str,
        /// What the database said.
        message: String,
    },
    /// Another process holds the store for writing.
    #[error(
        "{path} is in use by another process (is a `toka serve` running on it?); stop it or use another data folder"
    )]
    Locked {
        /// The store's path.
        path: String,
    },
    /// The store was written by a newer version of Toka.
    #[error(
        "{driver} schema version {found} is newer than this build supports ({supported}); upgrade toka"
    )]
    SchemaTooNew {
        /// The driver.
        driver: &'static str,
        /// The version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A stored record could not be decoded (the database was altered by hand?).
    #[error("{driver}: stored record at seq {seq} is unreadable: {reason}")]
    Corrupt {
        /// The driver.
        driver: &'static str,
        /// Where.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier append failed in a way that leaves the handle's view uncertain; the
    /// store refuses work until it has reopened itself (tried again on every call).
    #[error(
        "{driver}: an earlier write failed and the store could not be reopened yet (is the disk full or gone?); retrying on the next call"
    )]
    Poisoned {
        /// The driver.
        driver: &'static str,
    },
    /// An argument was out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Another node held a shared log's head for longer than the caller would wait.
    #[error(
        "{driver}: another node held the log's head for more than {waited_ms} ms; nothing was written, retry"
    )]
    HeadBusy {
        /// The driver.
        driver: &'static str,
        /// How long the caller waited.
        waited_ms: u64,
    },
}

impl StoreError {
    /// A backend error from any displayable cause.
    pub fn backend(driver: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Backend {
            driver,
            message: cause.to_string(),
        }
    }
}

/// Why an append wrote nothing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The log's head is not the one the caller expected: someone appended first.
    /// Nothing was written; catch up from `actual` and try again.
    #[error("append conflict: expected head {expected}, log is at {actual}")]
    Conflict {
        /// The head the caller expected.
        expected: u64,
        /// The head the log has.
        actual: u64,
    },
    /// The batch does not continue the log (bad seq, hash or digest, over a limit).
    #[error("invalid batch at seq {seq}: {reason}")]
    InvalidBatch {
        /// The first bad record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The store failed; nothing of the batch is visible.
    #[error(transparent)]
    Store(#[from] StoreError),
}
