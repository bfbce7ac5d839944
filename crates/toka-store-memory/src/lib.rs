//! An in-memory [`StorageBackend`]: fast, shared between clones of one handle, and
//! **not durable**: everything is gone when the last handle is dropped or the process
//! exits. For tests, benchmarks and throwaway runs; never for data you need back.
//!
//! It keeps the full contract otherwise (atomic appends, `Conflict` on a stale head,
//! payload dedup, snapshots) and offers a live tail: [`MemoryStore::subscribe`]
//! receives every record as it is appended.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use toka_maps::ShardedMap;
use toka_store_core::{
    AppendError, EventHeader, EventRecord, Hash32, Head, Sealed, Snapshot, StorageBackend,
    StoreError, admit, admit_sealed, head_after,
};
use toka_types::EntityId;
use tokio::sync::broadcast;

const DRIVER: &str = "memory";
const TAIL_CAPACITY: usize = 4096;

/// Headers per chunk of [`Headers`].
const CHUNK: usize = 1 << 12;

/// The headers in order, in chunks of [`CHUNK`] that never move: one `Vec` of millions
/// of headers copied (and page-faulted in afresh) hundreds of megabytes each time it
/// doubled, under the log's lock; that was a third of a memory-driver append.
#[derive(Default)]
struct Headers {
    chunks: Vec<Vec<EventHeader>>,
    len: usize,
}

impl Headers {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Option<&EventHeader> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    fn last(&self) -> Option<&EventHeader> {
        self.chunks.last()?.last()
    }

    fn push(&mut self, header: EventHeader) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(header),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(header);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// All of them in one `Vec`, for [`MemoryStore::raw_edit`].
    fn take(&mut self) -> Vec<EventHeader> {
        self.len = 0;
        std::mem::take(&mut self.chunks)
            .into_iter()
            .flatten()
            .collect()
    }
}

#[derive(Default)]
struct Log {
    headers: Headers,
    // Both grow a shard at a time: doubling a whole table of a million entries here,
    // under the store's lock, was the longest wait of a run.
    ids: ShardedMap<EntityId, u64>,
    payloads: ShardedMap<Hash32, Arc<[u8]>>,
    snapshots: BTreeMap<u64, Snapshot>,
    checkpoints: std::collections::VecDeque<Vec<u8>>,
}

impl Log {
    fn head(&self) -> Head {
        self.headers
            .last()
            .map(|h| Head {
                seq: h.seq,
                digest: h.digest,
            })
            .unwrap_or(Head::EMPTY)
    }

    fn record(&self, index: usize) -> Option<EventRecord> {
        let header = self.headers.get(index)?.clone();
        let payload = self
            .payloads
            .get(&header.payload_hash)
            .map(|p| p.to_vec())
            .unwrap_or_default();
        Some(EventRecord { header, payload })
    }
}

/// An in-memory event log. Clones share the same log.
#[derive(Clone)]
pub struct MemoryStore {
    log: Arc<Mutex<Log>>,
    tail: broadcast::Sender<EventRecord>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// Appends `batch` if `admit` (run under the lock, on the head) says so.
    fn append_admitted(
        &self,
        batch: &[EventRecord],
        admit: impl FnOnce(&Head) -> Result<bool, AppendError>,
    ) -> Result<Head, AppendError> {
        let new_head = {
            let mut log = self.lock()?;
            let head = log.head();
            if !admit(&head)? {
                return Ok(head);
            }
            if let Some(dup) = batch.iter().find(|r| log.ids.contains_key(&r.header.id)) {
                return Err(AppendError::InvalidBatch {
                    seq: dup.header.seq,
                    reason: format!("event id {} is already in the log", dup.header.id),
                });
            }
            for record in batch {
                log.payloads
                    .get_or_insert_with(record.header.payload_hash, || {
                        record.payload.as_slice().into()
                    });
                log.ids.insert(record.header.id, record.header.seq);
                log.headers.push(record.header.clone());
            }
            head_after(head, batch)
        };
        // Copies for the live tail only if someone listens.
        if self.tail.receiver_count() > 0 {
            for record in batch {
                let _ = self.tail.send(record.clone());
            }
        }
        Ok(new_head)
    }

    /// An empty log.
    pub fn new() -> Self {
        Self {
            log: Arc::default(),
            tail: broadcast::channel(TAIL_CAPACITY).0,
        }
    }

    /// Every record appended from now on, in order. A receiver that falls more than
    /// 4096 records behind is told it lagged (and should re-read from the log).
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.tail.subscribe()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Log>, StoreError> {
        // A panic while holding the lock could leave a half-applied append.
        self.log
            .lock()
            .map_err(|_| StoreError::Poisoned { driver: DRIVER })
    }

    /// Direct access to the stored headers and payloads, for tests that tamper with the
    /// log as a bad disk would. Not part of the storage contract.
    #[doc(hidden)]
    pub fn raw_edit(
        &self,
        edit: impl FnOnce(&mut Vec<EventHeader>, &mut ShardedMap<Hash32, Arc<[u8]>>),
    ) {
        if let Ok(mut log) = self.log.lock() {
            let log = &mut *log;
            let mut headers = log.headers.take();
            edit(&mut headers, &mut log.payloads);
            for header in headers {
                log.headers.push(header);
            }
        }
    }

    /// How many distinct payloads are stored.
    pub fn payload_count(&self) -> usize {
        self.log.lock().map(|l| l.payloads.len()).unwrap_or(0)
    }
}

#[async_trait]
impl StorageBackend for MemoryStore {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn head(&self) -> Result<Head, StoreError> {
        Ok(self.lock()?.head())
    }

    async fn append(&self, expected_head: u64, batch: &[EventRecord]) -> Result<Head, AppendError> {
        self.append_admitted(batch, |head| admit(head, expected_head, batch))
    }

    async fn append_sealed(&self, batch: Arc<Sealed>) -> Result<Head, AppendError> {
        self.append_admitted(batch.records(), |head| admit_sealed(head, &batch))
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let log = self.lock()?;
        let start = from.max(1) as usize - 1;
        let end = start.saturating_add(limit).min(log.headers.len());
        Ok((start..end).filter_map(|i| log.record(i)).collect())
    }

    async fn read_by_id(&self, id: EntityId) -> Result<Option<EventRecord>, StoreError> {
        let log = self.lock()?;
        Ok(log
            .ids
            .get(&id)
            .and_then(|seq| log.record(*seq as usize - 1)))
    }

    async fn read_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.payloads.get(hash).map(|p| p.to_vec()))
    }

    async fn put_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.lock()?
            .snapshots
            .insert(snapshot.seq, snapshot.clone());
        Ok(())
    }

    async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.lock()?.snapshots.values().next_back().cloned())
    }

    async fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        Ok(self.lock()?.snapshots.keys().copied().collect())
    }

    async fn put_checkpoint(&self, _seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        let mut log = self.lock()?;
        log.checkpoints.push_back(checkpoint.to_vec());
        while log.checkpoints.len() > toka_store_core::MAX_STORED_CHECKPOINTS {
            log.checkpoints.pop_front();
        }
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.lock()?.checkpoints.iter().cloned().collect())
    }

    async fn prune_snapshots(&self, keep: usize) -> Result<usize, StoreError> {
        let mut log = self.lock()?;
        let excess = log.snapshots.len().saturating_sub(keep);
        let doomed: Vec<u64> = log.snapshots.keys().take(excess).copied().collect();
        for seq in &doomed {
            log.snapshots.remove(seq);
        }
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use toka_store_core::testkit::{Harness, Tamper};

    use super::*;

    struct MemoryHarness;

    #[async_trait]
    impl Harness for MemoryHarness {
        type Store = MemoryStore;
        const DURABLE: bool = false;

        async fn open(_dir: &Path) -> Result<MemoryStore, StoreError> {
            Ok(MemoryStore::new())
        }

        async fn tamper(store: MemoryStore, _dir: &Path, tamper: Tamper) -> MemoryStore {
            store.raw_edit(|headers, payloads| match tamper {
                Tamper::FlipPayloadByte { seq } => {
                    let hash = headers[seq as usize - 1].payload_hash;
                    let mut bytes = payloads.get(&hash).unwrap().to_vec();
                    bytes[3] ^= 1;
                    payloads.insert(hash, bytes.into());
                }
                Tamper::DeleteRecord { seq } => {
                    headers.remove(seq as usize - 1);
                }
                Tamper::SwapRecords { a, b } => {
                    let (a, b) = (a as usize - 1, b as usize - 1);
                    headers.swap(a, b);
                    // The seq is the row's position, not part of what was swapped.
                    let seq_a = headers[b].seq;
                    headers[b].seq = headers[a].seq;
                    headers[a].seq = seq_a;
                }
            });
            store
        }

        async fn stored_payloads(store: &MemoryStore, _dir: &Path) -> u64 {
            store.payload_count() as u64
        }
    }

    toka_store_core::conformance_tests!(MemoryHarness);

    #[tokio::test]
    async fn tail_receives_appended_records_in_order() {
        let store = MemoryStore::new();
        let mut tail = store.subscribe();
        let records = toka_store_core::testkit::batch(Head::EMPTY, 5, 50);
        store.append(0, &records).await.unwrap();
        for r in &records {
            assert_eq!(&tail.recv().await.unwrap(), r);
        }
    }
}
