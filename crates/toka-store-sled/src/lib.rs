//! An event log on [sled](https://docs.rs/sled/0.34), an embedded key-value store.
//!
//! # Durability
//!
//! Each append is one sled transaction over the event, id, payload and head trees,
//! followed by `flush()`, which writes and fsyncs sled's log before `append` returns.
//! sled's transactions are atomic: after a crash a batch is there whole or not at all.
//! What sled guarantees beyond that is what sled 0.34 documents: its on-disk format is
//! not stable across sled versions, and the crate is no longer maintained, which is why
//! SQLite is Toka's default store. This driver passes the same conformance and crash
//! tests.
//!
//! sled locks its folder: a second process opening it gets an error.
//!
//! Layout: tree `events` maps `seq` (8 bytes big-endian) to the header as JSON (its
//! `seq` is the key); `ids` maps event ids to `seq`; `payloads` maps payload hashes to
//! bytes (stored once); `meta` holds the head; `snapshots` maps `seq` to chain digest,
//! state digest and state.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use toka_store_core::{
    AppendError, EventHeader, EventRecord, Hash32, Head, Snapshot, StorageBackend, StoreError,
    admit, head_after,
};
use toka_types::EntityId;

const DRIVER: &str = "sled";
const HEAD_KEY: &[u8] = b"head";

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(DRIVER, e)
}

/// An event log in a sled folder. Clones share the database.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    events: sled::Tree,
    ids: sled::Tree,
    payloads: sled::Tree,
    meta: sled::Tree,
    snapshots: sled::Tree,
    checkpoints: sled::Tree,
    path: PathBuf,
    /// Appends flushed (fsynced) before they returned: every one, or a test fails.
    flushed_appends: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn encode_head(head: &Head) -> Vec<u8> {
    [head.seq.to_be_bytes().as_slice(), head.digest.as_bytes()].concat()
}

fn decode_head(bytes: &[u8]) -> Result<Head, StoreError> {
    if bytes.len() != 40 {
        return Err(StoreError::Corrupt {
            driver: DRIVER,
            seq: 0,
            reason: "head entry is not 40 bytes".into(),
        });
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[..8]);
    let digest = Hash32::from_slice(&bytes[8..]).unwrap_or_default();
    Ok(Head {
        seq: u64::from_be_bytes(seq),
        digest,
    })
}

fn seq_key(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

impl SledStore {
    /// Opens (creating if needed) the log in the folder `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(backend)?
    }

    /// [`SledStore::open`] for synchronous callers.
    pub fn open_blocking(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked {
                        path: path.display().to_string(),
                    }
                }
                other => backend(other),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        Ok(Self {
            events: tree("events")?,
            ids: tree("ids")?,
            payloads: tree("payloads")?,
            meta: tree("meta")?,
            snapshots: tree("snapshots")?,
            checkpoints: tree("checkpoints")?,
            db,
            path: path.to_path_buf(),
            flushed_appends: Default::default(),
        })
    }

    /// How many appends were flushed to disk before they returned (each one is).
    pub fn flushed_appends(&self) -> u64 {
        self.flushed_appends
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many distinct payloads are stored.
    pub fn payload_count(&self) -> usize {
        self.payloads.len()
    }

    fn head_now(&self) -> Result<Head, StoreError> {
        match self.meta.get(HEAD_KEY).map_err(backend)? {
            Some(bytes) => decode_head(&bytes),
            None => Ok(Head::EMPTY),
        }
    }

    fn record(&self, key: &[u8], value: &[u8]) -> Result<EventRecord, StoreError> {
        let seq = seq_key(key).ok_or_else(|| backend("event key is not 8 bytes"))?;
        let mut header: EventHeader =
            serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
                driver: DRIVER,
                seq,
                reason: e.to_string(),
            })?;
        // The key is the position; a header moved to another key must show it.
        header.seq = seq;
        let payload = self
            .payloads
            .get(header.payload_hash.as_bytes())
            .map_err(backend)?
            .map(|p| p.to_vec())
            .unwrap_or_default();
        Ok(EventRecord { header, payload })
    }

    fn append_blocking(
        &self,
        expected_head: u64,
        batch: &[EventRecord],
    ) -> Result<Head, AppendError> {
        let encoded: Vec<Vec<u8>> = batch
            .iter()
            .map(|r| serde_json::to_vec(&r.header).map_err(backend))
            .collect::<Result<_, _>>()?;
        let result = (&self.events, &self.ids, &self.payloads, &self.meta).transaction(
            |(events, ids, payloads, meta)| {
                let head = match meta.get(HEAD_KEY)? {
                    Some(bytes) => decode_head(&bytes)
                        .map_err(|e| ConflictableTransactionError::Abort(AppendError::Store(e)))?,
                    None => Head::EMPTY,
                };
                if !admit(&head, expected_head, batch)
                    .map_err(ConflictableTransactionError::Abort)?
                {
                    return Ok(head);
                }
                for (record, header) in batch.iter().zip(&encoded) {
                    let h = &record.header;
                    if ids.get(h.id.to_bytes())?.is_some() {
                        return Err(ConflictableTransactionError::Abort(
                            AppendError::InvalidBatch {
                                seq: h.seq,
                                reason: format!("event id {} is already in the log", h.id),
                            },
                        ));
                    }
                    if payloads.get(h.payload_hash.as_bytes())?.is_none() {
                        payloads.insert(
                            h.payload_hash.as_bytes().as_slice(),
                            record.payload.as_slice(),
                        )?;
                    }
                    ids.insert(h.id.to_bytes().as_slice(), &h.seq.to_be_bytes())?;
                    events.insert(&h.seq.to_be_bytes(), header.as_slice())?;
                }
                let new_head = head_after(head, batch);
                meta.insert(HEAD_KEY, encode_head(&new_head))?;
                Ok(new_head)
            },
        );
        let head = match result {
            Ok(head) => head,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(backend(e).into()),
        };
        // Durable before we say so.
        self.db.flush().map_err(backend)?;
        self.flushed_appends
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(head)
    }

    async fn blocking<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| E::from(backend(e)))?
    }
}

#[async_trait]
impl StorageBackend for SledStore {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.blocking(|s| s.head_now()).await
    }

    async fn append(&self, expected_head: u64, batch: &[EventRecord]) -> Result<Head, AppendError> {
        let batch = batch.to_vec();
        self.blocking(move |s| s.append_blocking(expected_head, &batch))
            .await
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.blocking(move |s| {
            s.events
                .range(from.max(1).to_be_bytes()..)
                .take(limit)
                .map(|item| {
                    let (k, v) = item.map_err(backend)?;
                    s.record(&k, &v)
                })
                .collect()
        })
        .await
    }

    async fn read_by_id(&self, id: EntityId) -> Result<Option<EventRecord>, StoreError> {
        self.blocking(move |s| {
            let Some(seq) = s.ids.get(id.to_bytes()).map_err(backend)? else {
                return Ok(None);
            };
            match s.events.get(&seq).map_err(backend)? {
                Some(v) => s.record(&seq, &v).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn read_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = *hash;
        self.blocking(move |s| {
            Ok(s.payloads
                .get(hash.as_bytes())
                .map_err(backend)?
                .map(|p| p.to_vec()))
        })
        .await
    }

    async fn put_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let value = [
            snapshot.chain_digest.as_bytes().as_slice(),
            snapshot.state_digest.as_bytes(),
            &snapshot.state,
        ]
        .concat();
        let key = snapshot.seq.to_be_bytes();
        self.blocking(move |s| {
            s.snapshots.insert(key, value).map_err(backend)?;
            s.db.flush().map_err(backend)?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        self.blocking(|s| {
            let Some((k, v)) = s.snapshots.last().map_err(backend)? else {
                return Ok(None);
            };
            let seq = seq_key(&k).ok_or_else(|| backend("snapshot key is not 8 bytes"))?;
            if v.len() < 64 {
                return Err(StoreError::Corrupt {
                    driver: DRIVER,
                    seq,
                    reason: "snapshot entry too short".into(),
                });
            }
            Ok(Some(Snapshot {
                seq,
                chain_digest: Hash32::from_slice(&v[..32]).unwrap_or_default(),
                state_digest: Hash32::from_slice(&v[32..64]).unwrap_or_default(),
                state: v[64..].to_vec(),
            }))
        })
        .await
    }

    async fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        self.blocking(|s| {
            s.snapshots
                .iter()
                .keys()
                .map(|k| k.map_err(backend).map(|k| seq_key(&k).unwrap_or(0)))
                .collect()
        })
        .await
    }

    async fn put_checkpoint(&self, _seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        let body = checkpoint.to_vec();
        self.blocking(move |s| {
            // Keys in the order they were put (ids increase).
            let id = s.db.generate_id().map_err(backend)?;
            s.checkpoints
                .insert(id.to_be_bytes(), body)
                .map_err(backend)?;
            while s.checkpoints.len() > toka_store_core::MAX_STORED_CHECKPOINTS {
                if s.checkpoints.pop_min().map_err(backend)?.is_none() {
                    break;
                }
            }
            s.db.flush().map_err(backend)?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.blocking(move |s| {
            s.checkpoints
                .iter()
                .values()
                .map(|v| v.map(|v| v.to_vec()).map_err(backend))
                .collect()
        })
        .await
    }

    async fn prune_snapshots(&self, keep: usize) -> Result<usize, StoreError> {
        self.blocking(move |s| {
            let keys: Vec<sled::IVec> = s
                .snapshots
                .iter()
                .keys()
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            let doomed = keys.len().saturating_sub(keep);
            for k in &keys[..doomed] {
                s.snapshots.remove(k).map_err(backend)?;
            }
            s.db.flush().map_err(backend)?;
            Ok::<_, StoreError>(doomed)
        })
        .await
    }
}
