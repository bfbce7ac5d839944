//! [`StorageBackend`]: the contract every driver keeps.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use toka_types::EntityId;

use crate::error::{AppendError, StoreError};
use crate::hash::Hash32;
use crate::record::{EventRecord, Head};
use crate::sealed::Sealed;

/// The state of the system at one `seq`, so recovery can start there instead of at 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last event folded into `state`.
    pub seq: u64,
    /// The chain digest of that event (so the snapshot is tied to one log).
    pub chain_digest: Hash32,
    /// The digest of the state (the kernel's `StateDigest`).
    pub state_digest: Hash32,
    /// The encoded state.
    pub state: Vec<u8>,
}

/// How many signed checkpoints a store keeps (the checkpoint file keeps every one).
pub const MAX_STORED_CHECKPOINTS: usize = 1024;

/// A hash-chained event log with snapshots.
///
/// Every method is atomic. What holds after each call:
///
/// * [`append`](Self::append) on success: the whole batch is stored and durable (as far
///   as the driver promises; see its docs), the head is its last record. On any error:
///   nothing of the batch is visible, now or after a crash. If the head is not
///   `expected_head`, the error is [`AppendError::Conflict`] and nothing is written.
///   An empty batch writes nothing and returns the head, or `Conflict` if the head is
///   not `expected_head`.
/// * Reads return only records of completed appends, in `seq` order.
/// * Payloads are stored once per payload hash, however many records share them.
///
/// Handles are cheap to clone and safe to share between tasks; appends through clones
/// of one handle are serialised, so at most one of two racing appends on the same
/// head wins.
#[async_trait]
pub trait StorageBackend: Send + Sync + 'static {
    /// The driver's name (`memory`, `sled`, `sqlite`, `postgres`).
    fn driver(&self) -> &'static str;

    /// The last record's `seq` and digest ([`Head::EMPTY`] for an empty log).
    async fn head(&self) -> Result<Head, StoreError>;

    /// Appends `batch` (sealed after the current head, see [`crate::seal`]) if the head
    /// is `expected_head`. Returns the new head.
    async fn append(&self, expected_head: u64, batch: &[EventRecord]) -> Result<Head, AppendError>;

    /// [`append`](Self::append) of a batch sealed in this process, after the head it
    /// names: the same promises, with `expected_head` its [`Sealed::after`]. A driver
    /// may skip hashing it again ([`crate::admit_sealed`]); by default it is checked
    /// like any other batch. Shared, so that a driver handing it to a thread of its own
    /// need not copy it.
    async fn append_sealed(&self, batch: Arc<Sealed>) -> Result<Head, AppendError> {
        self.append(batch.after().seq, batch.records()).await
    }

    /// Up to `limit` records with `seq >= from`, in order. Page through a large log with
    /// repeated calls (see [`crate::EventPages`]); nothing requires it to fit in memory.
    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError>;

    /// The record with event id `id`.
    async fn read_by_id(&self, id: EntityId) -> Result<Option<EventRecord>, StoreError>;

    /// The payload whose BLAKE3 hash is `hash`.
    async fn read_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores a snapshot (replacing one at the same `seq`). Durable when it returns.
    async fn put_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// The snapshot with the highest `seq`.
    async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError>;

    /// The `seq`s of all snapshots, ascending.
    async fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError>;

    /// Deletes all but the newest `keep` snapshots; returns how many were deleted.
    async fn prune_snapshots(&self, keep: usize) -> Result<usize, StoreError>;

    /// Stores a signed checkpoint of the log at `seq` (opaque bytes: the runtime's
    /// signed JSON), keeping the newest [`MAX_STORED_CHECKPOINTS`]. Durable when it
    /// returns.
    async fn put_checkpoint(&self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError>;

    /// The stored checkpoints, oldest first.
    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Whether other processes may append to this log (several nodes sharing it). A
    /// runtime on a shared log takes the head ([`lock_head`](Self::lock_head)), catches
    /// up to it, decides and appends, so no work is decided twice.
    fn is_shared(&self) -> bool {
        false
    }

    /// On a shared log: waits at most `wait` for the sole right to append next, and
    /// returns it with the head as it is while held. Until the lease appends or is
    /// dropped, no other handle or process can append, so every record up to its head
    /// can be read. `Ok(None)` for a driver with no such lock (every log of one node:
    /// there, the runtime is the only appender). A driver whose `is_shared` is true
    /// must implement it.
    async fn lock_head(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<Box<dyn HeadLease>>, StoreError> {
        let _ = wait;
        Ok(None)
    }

    /// A watch on the head `seq` as any writer moves it (for shared logs: the driver
    /// learns of other nodes' appends, e.g. by `LISTEN/NOTIFY`); `None` if the driver
    /// has no such signal.
    fn watch_head(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// The sole right to append the next batch of a shared log (see
/// [`StorageBackend::lock_head`]). Dropping it without appending gives the right up,
/// writing nothing.
#[async_trait]
pub trait HeadLease: Send + Sync {
    /// The head while the lease is held.
    fn head(&self) -> Head;

    /// Appends `batch` after [`head`](Self::head) and gives the right up; the same
    /// promises as [`StorageBackend::append`] with `expected_head` the lease's head.
    async fn append(self: Box<Self>, batch: &[EventRecord]) -> Result<Head, AppendError>;

    /// Gives the right up, writing nothing (dropping the lease does too, maybe less
    /// cheaply: a driver may have to close a connection to be sure).
    async fn release(self: Box<Self>) {}
}
