//! [`Lease`]: the head row locked in an open transaction, the sole right to append next
//! on a shared log ([`StorageBackend::lock_head`](toka_store_core::StorageBackend::lock_head)).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use toka_store_core::{
    AppendError, EventRecord, Hash32, Head, HeadLease, PayloadHints, Sealed, StoreError, admit,
    admit_sealed,
};

use crate::rows::insert_batch;
use crate::{DRIVER, backend};

/// How long a node may hold the head's lock without a statement before PostgreSQL ends
/// its session (a node paused or cut off mid-batch must not stop every other node).
const LEASE_IDLE_TIMEOUT_MS: u64 = 10_000;

/// The head row locked in an open transaction on a connection of its own: the sole
/// right to append next (see [`StorageBackend::lock_head`]).
///
/// A lease that does not append is dropped: its connection is taken out of the pool and
/// closed, so PostgreSQL rolls the transaction back and frees the lock, and no pooled
/// connection is ever handed out inside a transaction.
pub(crate) struct Lease {
    pub(crate) client: Option<deadpool_postgres::Object>,
    pub(crate) schema: Arc<str>,
    pub(crate) hints: Arc<Mutex<PayloadHints>>,
    pub(crate) head: Head,
}

impl Lease {
    /// Opens the transaction and waits, at most `wait`, for the head row's lock: one
    /// round trip (the simple query protocol takes the statements together).
    pub(crate) async fn begin(&mut self, wait: std::time::Duration) -> Result<Head, StoreError> {
        let client = self
            .client
            .as_ref()
            .ok_or(StoreError::Poisoned { driver: DRIVER })?;
        // Both bounds are set for this transaction only (`SET LOCAL`).
        let wait_ms = wait.as_millis().clamp(1, 3_600_000) as u64;
        let answers = client
            .simple_query(&format!(
                "BEGIN; SET LOCAL lock_timeout = {wait_ms}; \
                 SET LOCAL idle_in_transaction_session_timeout = {LEASE_IDLE_TIMEOUT_MS}; \
                 SELECT seq, encode(digest, 'hex') FROM head FOR UPDATE"
            ))
            .await
            .map_err(|e| match e.code() {
                Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                    StoreError::HeadBusy {
                        driver: DRIVER,
                        waited_ms: wait_ms,
                    }
                }
                _ => backend(e),
            })?;
        let row = answers.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        let unreadable = |reason: &str| StoreError::Corrupt {
            driver: DRIVER,
            seq: 0,
            reason: format!("the head row {reason}"),
        };
        let row = row.ok_or_else(|| unreadable("is missing"))?;
        let seq = row
            .get(0)
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| unreadable("has no readable seq"))?;
        let digest = row
            .get(1)
            .and_then(|t| t.parse::<Hash32>().ok())
            .ok_or_else(|| unreadable("has no 32-byte digest"))?;
        Ok(Head { seq, digest })
    }
}

impl Lease {
    /// Inserts `batch` (already admitted after the held head) and commits, in one round
    /// trip, then gives the connection back to the pool.
    async fn insert_and_commit(&mut self, batch: &[EventRecord]) -> Result<Head, AppendError> {
        let client = self
            .client
            .as_ref()
            .ok_or(StoreError::Poisoned { driver: DRIVER })?;
        let new_head =
            insert_batch(client, &self.schema, &self.hints, self.head, batch, true).await?;
        // Committed: the connection is clean and may go back to the pool.
        drop(self.client.take());
        Ok(new_head)
    }

    /// Appends a batch this process sealed, if the held head is the one it was sealed
    /// after; otherwise gives the head up and answers `Conflict` (nothing written).
    pub(crate) async fn append_sealed(mut self, batch: &Sealed) -> Result<Head, AppendError> {
        match admit_sealed(&self.head, batch) {
            Ok(true) => self.insert_and_commit(batch.records()).await,
            // Empty, or not sealed on this head: nothing to write.
            other => {
                Box::new(self).release().await;
                other.map(|_| batch.after())
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

#[async_trait]
impl HeadLease for Lease {
    fn head(&self) -> Head {
        self.head
    }

    async fn append(mut self: Box<Self>, batch: &[EventRecord]) -> Result<Head, AppendError> {
        if !admit(&self.head, self.head.seq, batch)? {
            return Ok(self.head);
        }
        self.insert_and_commit(batch).await
    }

    async fn release(mut self: Box<Self>) {
        if let Some(client) = &self.client
            && client.batch_execute("ROLLBACK").await.is_ok()
        {
            drop(self.client.take());
        }
    }
}
