//! The embedded SQLite event log: Toka's default store.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous=FULL`, and each append is one
//! transaction. When [`append`](StorageBackend::append) returns `Ok`, the batch is in
//! the WAL and the WAL is fsynced: it survives a killed process and a power cut. A
//! crash during an append leaves either the whole batch or none of it. Copying the WAL
//! into the database file (a checkpoint) is not part of an append: a thread of the
//! store's own does it beside the writer (see `checkpointer`).
//! A large snapshot is written a chunk per transaction, so appends go on in between
//! (see `snapshots`).
//!
//! # One writer
//!
//! Opening the store takes an exclusive lock on `<file>.lock` for the life of the
//! handle; a second process gets [`StoreError::Locked`] rather than becoming a second,
//! silent writer. Readers that do not write (`sqlite3` itself) can still read the file
//! while Toka runs.
//!
//! # Reading it by hand
//!
//! ```text
//! sqlite3 toka.db "SELECT seq, kind, origin, body FROM events_text ORDER BY seq DESC LIMIT 5"
//! ```
//!
//! One row per event in `events`; ids are stored as their 16 bytes, and the view
//! `events_text` shows them as UUIDs. Payloads are stored as TEXT when they are UTF-8
//! (Toka's are JSON), once per hash: a payload an earlier event holds is not stored
//! again, `body_at` names that event instead (the view resolves it).
//! The schema is versioned (`PRAGMA user_version`) and migrated on open; a file from a
//! newer Toka is refused.
//!
//! After an append fails with a database error (a full disk, an I/O error), nothing is
//! built on the connections' memory of the file: the next call reopens both, reading
//! the file afresh, and is refused ([`StoreError::Poisoned`]) while that fails. So a
//! node whose disk filled up serves again, without a restart, once there is room.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backup;
mod checkpointer;
mod payload_index;
mod rows;
mod schema;
mod snapshots;

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use toka_store_core::{
    AppendError, EventRecord, Hash32, Head, Sealed, Snapshot, StorageBackend, StoreError, admit,
    admit_sealed, head_after, parents_json,
};
use toka_types::EntityId;

pub use crate::backup::backup;
use crate::checkpointer::Checkpointer;
use crate::payload_index::PayloadIndex;
use crate::rows::{EVENT_COLUMNS, EVENT_TABLES, PayloadParam, record_from_row};
pub use crate::schema::SCHEMA_VERSION;
use rusqlite::types::ValueRef;

pub(crate) const DRIVER: &str = "sqlite";

/// An event log in one SQLite file. Clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Where each payload is (see [`PayloadIndex`]); locked after `writer` or `reader`.
    payloads: Mutex<PayloadIndex>,
    poisoned: AtomicBool,
    /// Checkpoints the WAL beside the writer; `None` only while dropping.
    checkpointer: Option<Checkpointer>,
    // Held, never read: the exclusive lock lives as long as the handle.
    _lock: File,
}

impl Drop for Inner {
    /// On a clean close the write-ahead log is folded into the database file, so the
    /// file alone holds the whole log (an operator copying `toka.db` gets it all).
    fn drop(&mut self) {
        // The thread first: two checkpointers at once would make this one busy.
        drop(self.checkpointer.take());
        if let Ok(conn) = self.writer.get_mut()
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(path = %self.path.display(), error = %e, "the write-ahead log was not folded into the database file");
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(DRIVER, e)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(backend)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the log in the SQLite file `path`, migrating its
    /// schema. Fails with [`StoreError::Locked`] if another process has it open.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(backend)?
    }

    /// [`SqliteStore::open`] for synchronous callers (not from inside an async task).
    pub fn open_blocking(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| backend(format!("cannot create {}: {e}", parent.display())))?;
        }
        let lock_path = path.with_extension("db.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| backend(format!("cannot open {}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: path.display().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(backend(format!("cannot lock {}: {e}", lock_path.display())));
            }
        }
        let mut writer = Connection::open(path).map_err(backend)?;
        configure(&writer)?;
        schema::migrate(&mut writer)?;
        let payloads = PayloadIndex::load(&writer)?;
        let checkpointer = Checkpointer::start(path)?;
        checkpointer.attach(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        reader.set_prepared_statement_cache_capacity(32);
        tracing::debug!(path = %path.display(), "sqlite store open");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                payloads: Mutex::new(payloads),
                poisoned: AtomicBool::new(false),
                checkpointer: Some(checkpointer),
                _lock: lock,
            }),
        })
    }

    /// The durability settings in force on the connection that appends, read back from
    /// SQLite itself: `(journal_mode, synchronous)`, e.g. `("wal", 2)` for WAL with
    /// `synchronous=FULL`. Tests check them so that weakening either fails CI (a
    /// SIGKILL test alone passes with `synchronous=OFF`: the OS still has the pages).
    pub fn durability(&self) -> Result<(String, i64), StoreError> {
        let conn = self
            .inner
            .writer
            .lock()
            .map_err(|_| backend("the writer connection's lock is poisoned"))?;
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(backend)?;
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(backend)?;
        Ok((journal.to_ascii_lowercase(), synchronous))
    }

    /// [`StorageBackend::append`] for synchronous callers (not from inside an async
    /// task: it blocks on the disk).
    pub fn append_blocking(
        &self,
        expected_head: u64,
        batch: &[EventRecord],
    ) -> Result<Head, AppendError> {
        self.append_admitted(batch, |head| admit(head, expected_head, batch))
    }

    /// Appends `batch` if `admit` (run in the transaction, on the head read there)
    /// says so; a database error poisons the store until it reopens.
    fn append_admitted(
        &self,
        batch: &[EventRecord],
        admit: impl FnOnce(&Head) -> Result<bool, AppendError>,
    ) -> Result<Head, AppendError> {
        self.inner.check_poison()?;
        let mut conn = self
            .inner
            .writer
            .lock()
            .map_err(|_| StoreError::Poisoned { driver: DRIVER })?;
        let mut payloads = self
            .inner
            .payloads
            .lock()
            .map_err(|_| StoreError::Poisoned { driver: DRIVER })?;
        let result = append_tx(&mut conn, &mut payloads, batch, admit);
        if let Err(AppendError::Store(e)) = &result {
            tracing::error!(error = %e, "sqlite append failed; store poisoned until reopened");
            self.inner.poisoned.store(true, Ordering::Release);
        }
        result
    }

    /// Runs `append` on the blocking pool: it waits on the disk.
    async fn append_on_pool(
        &self,
        append: impl FnOnce(&Self) -> Result<Head, AppendError> + Send + 'static,
    ) -> Result<Head, AppendError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || append(&this))
            .await
            .map_err(|e| AppendError::Store(backend(e)))?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the reader connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner.check_poison()?;
            let conn = inner
                .reader
                .lock()
                .map_err(|_| StoreError::Poisoned { driver: DRIVER })?;
            f(&conn)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `f` with the writer connection on the blocking pool.
    async fn write<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner.check_poison()?;
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Poisoned { driver: DRIVER })?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(backend(e)))?
    }
}

impl Inner {
    /// After a failed append nothing is built on the connections' memory of the file:
    /// the next call reopens both (they read the file afresh, where SQLite has rolled
    /// the failed transaction back) and only then carries on. While reopening fails
    /// (the disk is still gone), every call is refused with `Poisoned`.
    fn check_poison(&self) -> Result<(), StoreError> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let reopened = (|| {
            let mut writer = Connection::open(&self.path).map_err(backend)?;
            configure(&writer)?;
            read_head(&writer)?;
            if let Some(checkpointer) = &self.checkpointer {
                checkpointer.attach(&mut writer)?;
            }
            let payloads = PayloadIndex::load(&writer)?;
            let reader = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(backend)?;
            reader
                .busy_timeout(std::time::Duration::from_secs(5))
                .map_err(backend)?;
            Ok::<_, StoreError>((writer, reader, payloads))
        })();
        let Ok((writer, reader, payloads)) = reopened else {
            return Err(StoreError::Poisoned { driver: DRIVER });
        };
        let (Ok(mut w), Ok(mut r)) = (self.writer.lock(), self.reader.lock()) else {
            return Err(StoreError::Poisoned { driver: DRIVER });
        };
        let Ok(mut p) = self.payloads.lock() else {
            return Err(StoreError::Poisoned { driver: DRIVER });
        };
        *w = writer;
        *r = reader;
        *p = payloads;
        self.poisoned.store(false, Ordering::Release);
        tracing::info!(path = %self.path.display(), "sqlite store reopened after a failed append");
        Ok(())
    }
}

fn read_head(conn: &Connection) -> Result<Head, StoreError> {
    conn.prepare_cached("SELECT seq, digest FROM events ORDER BY seq DESC LIMIT 1")
        .map_err(backend)?
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .optional()
        .map_err(backend)?
        .map(|(seq, digest)| {
            let digest = Hash32::from_slice(&digest).ok_or(StoreError::Corrupt {
                driver: DRIVER,
                seq: seq as u64,
                reason: "digest is not 32 bytes".into(),
            })?;
            Ok(Head {
                seq: seq as u64,
                digest,
            })
        })
        .unwrap_or(Ok(Head::EMPTY))
}

/// The append transaction: head check, batch check, inserts, commit.
fn append_tx(
    conn: &mut Connection,
    payloads: &mut PayloadIndex,
    batch: &[EventRecord],
    admit: impl FnOnce(&Head) -> Result<bool, AppendError>,
) -> Result<Head, AppendError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let head = read_head(&tx)?;
    if !admit(&head)? {
        return Ok(head);
    }
    {
        let mut insert_event = tx
            .prepare_cached(
                "INSERT INTO events (seq, id, kind, timestamp, intent, parents, origin, jti, payload_hash, digest, body, body_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(backend)?;
        for record in batch {
            let h = &record.header;
            let seq = h.seq as i64;
            // The payload goes in this row unless an earlier event already holds it.
            let held_by = payloads.find(&tx, &h.payload_hash)?;
            let body = match held_by {
                Some(_) => None,
                None => Some(PayloadParam::new(&record.payload)),
            };
            let inserted = insert_event.execute(params![
                seq,
                h.id.to_bytes(),
                h.kind,
                h.timestamp.as_micros() as i64,
                h.intent.to_bytes(),
                parents_json(&h.parents),
                h.origin.to_bytes(),
                h.jti,
                h.payload_hash.as_bytes().as_slice(),
                h.digest.as_bytes().as_slice(),
                body,
                held_by,
            ]);
            if let Err(e) = inserted {
                if let rusqlite::Error::SqliteFailure(f, _) = &e
                    && f.code == rusqlite::ErrorCode::ConstraintViolation
                {
                    return Err(AppendError::InvalidBatch {
                        seq: h.seq,
                        reason: format!("event id {} is already in the log", h.id),
                    });
                }
                return Err(backend(e).into());
            }
            if held_by.is_none() {
                // Noted before the commit: if it rolls back, the entry is a stale hint,
                // which `find` recognises.
                payloads.note(&h.payload_hash, seq);
            }
        }
    }
    tx.commit().map_err(backend)?;
    Ok(head_after(head, batch))
}

#[async_trait]
impl StorageBackend for SqliteStore {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.read(read_head).await
    }

    async fn append(&self, expected_head: u64, batch: &[EventRecord]) -> Result<Head, AppendError> {
        let batch = batch.to_vec();
        self.append_on_pool(move |this| this.append_blocking(expected_head, &batch))
            .await
    }

    async fn append_sealed(&self, batch: Arc<Sealed>) -> Result<Head, AppendError> {
        self.append_on_pool(move |this| {
            this.append_admitted(batch.records(), |head| admit_sealed(head, &batch))
        })
        .await
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM {EVENT_TABLES} WHERE e.seq >= ?1 ORDER BY e.seq LIMIT ?2"
                ))
                .map_err(backend)?;
            let mut rows = stmt.query(params![from as i64, limit]).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                out.push(record_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn read_by_id(&self, id: EntityId) -> Result<Option<EventRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM {EVENT_TABLES} WHERE e.id = ?1"
                ))
                .map_err(backend)?;
            let mut rows = stmt.query(params![id.to_bytes()]).map_err(backend)?;
            match rows.next().map_err(backend)? {
                Some(row) => record_from_row(row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn read_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        let hash = *hash;
        let inner = Arc::clone(&self.inner);
        self.read(move |conn| {
            let hinted = inner
                .payloads
                .lock()
                .map_err(|_| StoreError::Poisoned { driver: DRIVER })?
                .holder(&hash);
            let hash = hash.as_bytes().as_slice();
            let body_of = |sql: &str, key: &[&dyn rusqlite::ToSql]| {
                let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
                let mut rows = stmt.query(key).map_err(backend)?;
                Ok::<_, StoreError>(match rows.next().map_err(backend)? {
                    Some(row) => match row.get_ref(0).map_err(backend)? {
                        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
                        _ => Some(Vec::new()),
                    },
                    None => None,
                })
            };
            // The hinted row, checked against the whole hash; else (a payload the hints
            // lost track of) a scan.
            let held = match hinted {
                Some(seq) => body_of(
                    "SELECT body FROM events WHERE seq = ?1 AND payload_hash = ?2 AND body IS NOT NULL",
                    &[&seq, &hash],
                )?,
                None => None,
            };
            match held {
                Some(body) => Ok(Some(body)),
                None => body_of(
                    "SELECT body FROM events WHERE payload_hash = ?1 AND body IS NOT NULL LIMIT 1",
                    &[&hash],
                ),
            }
        })
        .await
    }

    async fn put_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        if snapshot.state.len() <= snapshots::CHUNK_BYTES {
            let snapshot = snapshot.clone();
            return self
                .write(move |conn| snapshots::put_inline(conn, &snapshot))
                .await;
        }
        // Chunk by chunk, each a transaction: appends go on in between (see `snapshots`).
        let seq = snapshot.seq;
        self.write(move |conn| snapshots::clear(conn, seq)).await?;
        let chunks = snapshot.state.chunks(snapshots::CHUNK_BYTES);
        let count = chunks.len();
        for (n, chunk) in chunks.enumerate() {
            let bytes = chunk.to_vec();
            self.write(move |conn| snapshots::put_chunk(conn, seq, n, &bytes))
                .await?;
        }
        let header = Snapshot {
            seq,
            chain_digest: snapshot.chain_digest,
            state_digest: snapshot.state_digest,
            state: Vec::new(),
        };
        self.write(move |conn| snapshots::put_row(conn, &header, count))
            .await
    }

    async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        self.read(snapshots::latest).await
    }

    async fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT seq FROM snapshots ORDER BY seq")
                .map_err(backend)?;
            let seqs = stmt
                .query_map([], |r| r.get::<_, i64>(0))
                .map_err(backend)?;
            seqs.map(|s| s.map(|s| s as u64).map_err(backend)).collect()
        })
        .await
    }

    async fn put_checkpoint(&self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        let body = String::from_utf8_lossy(checkpoint).into_owned();
        let keep = toka_store_core::MAX_STORED_CHECKPOINTS as i64;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO checkpoints (seq, body) VALUES (?1, ?2)",
                params![seq as i64, body],
            )
            .map_err(backend)?;
            conn.execute(
                "DELETE FROM checkpoints WHERE id NOT IN (SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?1)",
                params![keep],
            )
            .map_err(backend)?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached("SELECT body FROM checkpoints ORDER BY id")
                .map_err(backend)?;
            let rows = statement
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            rows.map(|r| r.map(String::into_bytes).map_err(backend))
                .collect()
        })
        .await
    }

    async fn prune_snapshots(&self, keep: usize) -> Result<usize, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.write(move |conn| snapshots::prune(conn, keep)).await
    }
}
