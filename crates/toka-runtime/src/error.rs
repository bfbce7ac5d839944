use toka_kernel::KernelError;
use toka_store_core::{AppendError, Corruption, StoreError};
use toka_types::Message;

use crate::codec::DecodeError;

/// Why a submitted message got no events.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The kernel refused it; nothing was written.
    #[error(transparent)]
    Rejected(#[from] KernelError),
    /// The queue stayed full for the whole busy timeout; try again later.
    #[error("the runtime is busy (queue full); try again later")]
    Busy,
    /// The token's subject sends faster than its rate limit allows; nothing was written.
    #[error("rate limited: agent {origin} is over its limit; retry in {retry_after_ms} ms")]
    RateLimited {
        /// The verified subject of the token.
        origin: toka_types::EntityId,
        /// When a retry may succeed.
        retry_after_ms: u64,
    },
    /// The batch holding it could not be stored; the log was read back and nothing of
    /// it was written or published. Safe to retry.
    #[error("commit failed, nothing was written: {0}; retry")]
    Storage(String),
    /// The append failed and the log could not be read back: the message may or may not
    /// be in the log. Check (by its idempotency key, or the events) before retrying.
    #[error("commit outcome unknown: {0}")]
    CommitUnknown(String),
    /// The store is unavailable (the runtime is retrying it); nothing was written.
    #[error(
        "the store is unavailable ({reason}); nothing was written; retry in {retry_after_ms} ms"
    )]
    Unavailable {
        /// Why.
        reason: String,
        /// When a retry may succeed.
        retry_after_ms: u64,
    },
    /// The runtime is shutting down.
    #[error("the runtime is not accepting messages (shutting down)")]
    Stopped,
}

/// A refused submission hands the message back, so the caller can retry it (unless
/// the writer died holding it).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refused {
    /// Why.
    pub error: SubmitError,
    /// The message, unchanged.
    pub message: Option<Box<Message>>,
}

/// Why the runtime did not start (or stopped).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log is damaged at `seq`: startup refused (nothing was repaired).
    #[error(
        "log is damaged at seq {seq}: {corruption}; run `toka verify` and restore from a backup"
    )]
    Corrupt {
        /// The first bad record.
        seq: u64,
        /// What is wrong.
        corruption: Corruption,
    },
    /// A stored record is not a kernel event.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The newest snapshot does not match the log or its own digest.
    #[error("snapshot at seq {seq} is inconsistent: {reason}")]
    BadSnapshot {
        /// The snapshot.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The log ends before a signed checkpoint's `seq`: events were removed.
    #[error(
        "the log ends at seq {last}, but this node signed a checkpoint at seq {checkpoint}: events after {last} were removed; restore from a backup"
    )]
    BehindCheckpoint {
        /// The last `seq` in the log.
        last: u64,
        /// The checkpoint's `seq`.
        checkpoint: u64,
    },
    /// The log disagrees with a signed checkpoint at `seq`.
    #[error(
        "the log disagrees with this node's signed checkpoint at seq {seq} ({what} differs): the log was rewritten; restore from a backup"
    )]
    CheckpointMismatch {
        /// The checkpoint's `seq`.
        seq: u64,
        /// What differs.
        what: &'static str,
    },
    /// The keyring disagrees with the log in a way that cannot be recorded.
    #[error(transparent)]
    KeyChange(#[from] crate::signing::KeyReloadError),
    /// The checkpoint key or file could not be used.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The state rebuilt from the log breaks an invariant.
    #[error("state rebuilt up to seq {seq} is invalid: {violation}")]
    Invariant {
        /// How far replay got.
        seq: u64,
        /// Which invariant.
        violation: toka_kernel::InvariantViolation,
    },
    /// The log uses an extension family this runtime has no handler for.
    #[error("event {seq} belongs to extension family {family:?}, which is not registered")]
    MissingExtension {
        /// The event.
        seq: u64,
        /// The family.
        family: String,
    },
    /// The genesis could not be written.
    #[error("cannot initialise the log: {0}")]
    Genesis(String),
    /// A replay worker thread stopped without an answer (it panicked: a bug).
    #[error("replay stopped: a worker thread failed ({0}); please report this")]
    ReplayWorker(String),
    /// An append failed outside the pipeline (genesis).
    #[error(transparent)]
    Append(#[from] AppendError),
}
