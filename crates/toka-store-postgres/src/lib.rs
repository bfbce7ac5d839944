//! The event log in PostgreSQL: the log several Toka nodes share.
//!
//! # Who appends next
//!
//! PostgreSQL decides, no home-made consensus: an append is one transaction that locks
//! the single row of table `head` (`SELECT … FOR UPDATE`), compares it with the
//! caller's expected head, checks the batch against it, inserts the records and moves
//! the head. A second node appending on the same head waits for the lock, then sees
//! the moved head and gets `Conflict`; `events.seq` is also the primary key, so even a
//! bug could not write two records at one position.
//!
//! A runtime does not race for the head: it takes it first
//! ([`StorageBackend::lock_head`], the same row lock held in an open transaction, with
//! `lock_timeout` and `idle_in_transaction_session_timeout` bounding the wait and the
//! hold), catches up, decides, and appends in that transaction. PostgreSQL queues the
//! waiting nodes on the lock, so they take turns. A runtime that has seen no other
//! node's records for a while decides first and hands a sealed batch to
//! [`StorageBackend::append_sealed`], which takes the head only to write it, and
//! writes nothing (`Conflict`) if the head moved since it was sealed.
//!
//! # Durability
//!
//! `append` returns after `COMMIT`, which with PostgreSQL's default
//! `synchronous_commit = on` means the WAL record is flushed to disk (and to
//! synchronous standbys if configured).
//!
//! # Reading it by hand
//!
//! ```text
//! psql "$TOKA_POSTGRES_URL" -c "SET search_path TO toka;
//!   SELECT seq, kind, origin, body_json FROM events_json ORDER BY seq DESC LIMIT 5"
//! ```
//!
//! `body_json` is computed from the stored bytes when read (views `events_json` and
//! `payloads_json`), never stored beside them, so it cannot disagree with what the
//! chain covers. One row per event (schema v4): the payload is in the event's `body`,
//! or, when an earlier event holds the same bytes, that event's `seq` is in `body_at`.
//!
//! # Live tailing
//!
//! Each append sends `NOTIFY` on channel `toka_<schema>` with the new head; every
//! store handle listens on a dedicated connection and exposes the head it hears of
//! through [`StorageBackend::watch_head`], so a node learns of other nodes' events
//! without polling.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod lease;
mod rows;
mod schema;
mod tls;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt as _;
use toka_store_core::{
    AppendError, EventRecord, Hash32, Head, HeadLease, PayloadHints, Snapshot, StorageBackend,
    StoreError, admit,
};
use toka_types::EntityId;
use tokio::sync::watch;
use tokio_postgres::{NoTls, Row};

use crate::lease::Lease;
use crate::rows::{EVENT_COLUMNS, insert_batch, record_of};

pub use schema::SCHEMA_VERSION;

pub(crate) const DRIVER: &str = "postgres";
const POOL_SIZE: usize = 16;
/// How long to wait for a pooled connection, to open one, or to check one.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long [`append_sealed`](StorageBackend::append_sealed) waits for another node to
/// give the head up.
const SEALED_APPEND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const LISTEN_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// A driver error with its whole cause chain: tokio-postgres says only "db error" and
/// keeps the server's message (and its code) in the source.
pub(crate) fn backend(e: impl std::error::Error) -> StoreError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    StoreError::backend(DRIVER, text)
}

/// An event log in one PostgreSQL schema. Clones share the pool and the listener.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: Arc<str>,
    head: watch::Receiver<u64>,
    /// Which event holds each payload this handle knows of (see [`PayloadHints`]).
    hints: Arc<Mutex<PayloadHints>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidRequest(format!(
            "schema name {schema:?}: use 1 to 48 of a-z, 0-9, _ (not starting with a digit)"
        )))
    }
}

pub(crate) fn channel(schema: &str) -> String {
    format!("toka_{schema}")
}

impl PostgresStore {
    /// Connects to `url` (a libpq-style connection string or URL), creates and migrates
    /// the schema `schema` if needed, and starts listening for other nodes' appends.
    /// With `sslmode=require` in `url`, connections use TLS, verified against the
    /// system's root certificates.
    pub async fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::open_with_ca(url, schema, None).await
    }

    /// [`PostgresStore::open`], also trusting the PEM certificates in `ca_file` (e.g. a
    /// private CA or the server's self-signed certificate).
    pub async fn open_with_ca(
        url: &str,
        schema: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, StoreError> {
        check_schema_name(schema)?;
        let mut pg = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::InvalidRequest(format!("postgres connection string: {e}")))?;
        pg.options(format!("-c search_path={schema}"));
        pg.connect_timeout(std::time::Duration::from_secs(5));
        let tls = tls::connector(&pg, ca_file)?;
        // Migrate on a connection of its own (the schema may not exist yet).
        let mut client = tls::connect(&pg, tls.as_ref()).await?;
        schema::migrate(&mut client, schema).await?;
        drop(client);

        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(pg.clone(), tls.clone(), recycling),
            None => Manager::from_config(pg.clone(), NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(backend)?;
        let (head_tx, head) = watch::channel(0);
        let store = Self {
            pool,
            schema: schema.into(),
            head,
            hints: Arc::new(Mutex::new(PayloadHints::new())),
        };
        store.load_hints().await?;
        let _ = head_tx.send(store.head_now().await?.seq);
        store.listen(&pg, tls.as_ref(), head_tx).await?;
        Ok(store)
    }

    /// Listens on the schema's channel on a dedicated connection, forwarding heads.
    /// The first LISTEN must succeed; after that, a lost connection (a database
    /// restart) is re-opened with bounded backoff, and the head is read again on each
    /// reconnect so notifications missed while it was down are not missed by readers.
    async fn listen(
        &self,
        pg: &tokio_postgres::Config,
        tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
        head_tx: watch::Sender<u64>,
    ) -> Result<(), StoreError> {
        let first = Self::subscribe(pg, tls, &self.schema).await?;
        // Only the pool and the name: a clone of the store would hold a receiver of
        // the watch, and the task would never see it close.
        let (pg, tls, pool, schema) = (
            pg.clone(),
            tls.cloned(),
            self.pool.clone(),
            self.schema.clone(),
        );
        tokio::spawn(async move {
            let mut connection = Some(first);
            let mut backoff = LISTEN_BACKOFF_MIN;
            loop {
                if let Some((client, mut rx)) = connection.take() {
                    backoff = LISTEN_BACKOFF_MIN;
                    // Keeps the client (and so the LISTEN) alive while it forwards.
                    let _client = client;
                    if let Ok(head) = head_in(&pool).await {
                        forward(&head_tx, head.seq);
                    }
                    while let Some(message) = rx.next().await {
                        if let tokio_postgres::AsyncMessage::Notification(n) = message
                            && let Ok(seq) = n.payload().parse::<u64>()
                        {
                            forward(&head_tx, seq);
                        }
                        if head_tx.is_closed() {
                            return;
                        }
                    }
                    tracing::warn!(%schema, "LISTEN connection lost; reconnecting");
                }
                if head_tx.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
                match Self::subscribe(&pg, tls.as_ref(), &schema).await {
                    Ok(c) => {
                        tracing::info!(%schema, "LISTEN connection re-opened");
                        connection = Some(c);
                    }
                    Err(e) => tracing::debug!(error = %e, "LISTEN reconnect failed"),
                }
            }
        });
        Ok(())
    }

    async fn subscribe(
        pg: &tokio_postgres::Config,
        tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
        schema: &str,
    ) -> Result<
        (
            tokio_postgres::Client,
            futures::channel::mpsc::UnboundedReceiver<tokio_postgres::AsyncMessage>,
        ),
        StoreError,
    > {
        let (client, rx) = tls::connect_listening(pg, tls).await?;
        client
            .batch_execute(&format!("LISTEN \"{}\"", channel(schema)))
            .await
            .map_err(backend)?;
        Ok((client, rx))
    }

    /// Reads every stored payload's hash and holder (a scan of the events table), so a
    /// payload stored before this handle opened is not stored again.
    async fn load_hints(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT payload_hash, seq FROM events WHERE body IS NOT NULL",
                &[],
            )
            .await
            .map_err(backend)?;
        let mut hints = self
            .hints
            .lock()
            .map_err(|_| StoreError::Poisoned { driver: DRIVER })?;
        for row in rows {
            // A damaged hash is the verifier's to report; here it can only miss a share.
            let hash = row.try_get::<_, &[u8]>(0).ok().and_then(Hash32::from_slice);
            if let (Some(hash), Ok(seq)) = (hash, row.try_get::<_, i64>(1)) {
                hints.note(&hash, seq as u64);
            }
        }
        Ok(())
    }

    /// The head, locked in an open transaction: waits at most `wait` for it.
    async fn lease(&self, wait: std::time::Duration) -> Result<Lease, StoreError> {
        let mut lease = Lease {
            client: Some(self.client().await?),
            schema: self.schema.clone(),
            hints: Arc::clone(&self.hints),
            head: Head::EMPTY,
        };
        lease.head = lease.begin(wait).await?;
        Ok(lease)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::backend(DRIVER, format!("no connection: {e}")))
    }

    async fn head_now(&self) -> Result<Head, StoreError> {
        head_in(&self.pool).await
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the schema and everything in it (for tests and `toka` maintenance).
    pub async fn drop_schema(self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .map_err(backend)
    }
}

async fn head_in(pool: &Pool) -> Result<Head, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::backend(DRIVER, format!("no connection: {e}")))?;
    let row = client
        .query_one("SELECT seq, digest FROM head", &[])
        .await
        .map_err(backend)?;
    head_of(&row)
}

/// Moves the watched head forward (never back).
fn forward(head_tx: &watch::Sender<u64>, seq: u64) {
    head_tx.send_if_modified(|h| {
        let newer = seq > *h;
        if newer {
            *h = seq;
        }
        newer
    });
}

fn head_of(row: &Row) -> Result<Head, StoreError> {
    let seq: i64 = row.get(0);
    let digest: Vec<u8> = row.get(1);
    Ok(Head {
        seq: seq as u64,
        digest: Hash32::from_slice(&digest).ok_or(StoreError::Corrupt {
            driver: DRIVER,
            seq: seq as u64,
            reason: "head digest is not 32 bytes".into(),
        })?,
    })
}

#[async_trait]
impl StorageBackend for PostgresStore {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.head_now().await
    }

    async fn append(&self, expected_head: u64, batch: &[EventRecord]) -> Result<Head, AppendError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row lock is the queue: one appender at a time, across every node.
        let row = tx
            .query_one("SELECT seq, digest FROM head FOR UPDATE", &[])
            .await
            .map_err(backend)?;
        let head = head_of(&row)?;
        if !admit(&head, expected_head, batch)? {
            return Ok(head);
        }
        let new_head = insert_batch(&tx, &self.schema, &self.hints, head, batch, false).await?;
        tx.commit().await.map_err(backend)?;
        Ok(new_head)
    }

    /// Takes the head, then appends the batch if it was sealed after it: a batch the
    /// runtime decided without holding the head (no other node had appended for a
    /// while). If another node appended since, nothing is written: `Conflict`. If one
    /// holds the head past [`SEALED_APPEND_WAIT`], `HeadBusy`. Not hashed again (see
    /// [`Sealed`](toka_store_core::Sealed)).
    async fn append_sealed(
        &self,
        batch: Arc<toka_store_core::Sealed>,
    ) -> Result<Head, AppendError> {
        self.lease(SEALED_APPEND_WAIT)
            .await?
            .append_sealed(&batch)
            .await
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Prepared once per connection: a catch-up under the held head reads a page on
        // every batch, and each round trip saved there is one every node waits for.
        let statement = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq >= $1 ORDER BY e.seq LIMIT $2"
            ))
            .await
            .map_err(backend)?;
        let rows = client
            .query(&statement, &[&(from as i64), &limit])
            .await
            .map_err(backend)?;
        rows.iter().map(record_of).collect()
    }

    async fn read_by_id(&self, id: EntityId) -> Result<Option<EventRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1::text::uuid"),
                &[&id.to_string()],
            )
            .await
            .map_err(backend)?;
        row.as_ref().map(record_of).transpose()
    }

    async fn read_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let hinted = self
            .hints
            .lock()
            .map_err(|_| StoreError::Poisoned { driver: DRIVER })?
            .holder(hash)
            .map(|seq| seq as i64);
        let hash = hash.as_bytes().as_slice();
        // The hinted row, checked against the whole hash; else (a payload the hints do
        // not know, e.g. stored by another node) a scan.
        let row = match hinted {
            Some(seq) => client
                .query_opt(
                    "SELECT body FROM events WHERE seq = $1 AND payload_hash = $2 AND body IS NOT NULL",
                    &[&seq, &hash],
                )
                .await
                .map_err(backend)?,
            None => None,
        };
        let row = match row {
            Some(row) => Some(row),
            None => client
                .query_opt(
                    "SELECT body FROM events WHERE payload_hash = $1 AND body IS NOT NULL LIMIT 1",
                    &[&hash],
                )
                .await
                .map_err(backend)?,
        };
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_snapshot(&self, s: &Snapshot) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO snapshots (seq, chain_digest, state_digest, state) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (seq) DO UPDATE SET chain_digest = EXCLUDED.chain_digest, state_digest = EXCLUDED.state_digest, state = EXCLUDED.state",
                &[&(s.seq as i64), &s.chain_digest.as_bytes().as_slice(), &s.state_digest.as_bytes().as_slice(), &s.state],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT seq, chain_digest, state_digest, state FROM snapshots ORDER BY seq DESC LIMIT 1", &[])
            .await
            .map_err(backend)?;
        row.map(|r| {
            let seq = r.get::<_, i64>(0) as u64;
            let bad = || StoreError::Corrupt {
                driver: DRIVER,
                seq,
                reason: "snapshot digest is not 32 bytes".into(),
            };
            Ok(Snapshot {
                seq,
                chain_digest: Hash32::from_slice(&r.get::<_, Vec<u8>>(1)).ok_or_else(bad)?,
                state_digest: Hash32::from_slice(&r.get::<_, Vec<u8>>(2)).ok_or_else(bad)?,
                state: r.get(3),
            })
        })
        .transpose()
    }

    async fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT seq FROM snapshots ORDER BY seq", &[])
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    async fn prune_snapshots(&self, keep: usize) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let n = client
            .execute("DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT $1)", &[&keep])
            .await
            .map_err(backend)?;
        Ok(n as usize)
    }

    async fn put_checkpoint(&self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        let client = self.client().await?;
        let body = String::from_utf8_lossy(checkpoint).into_owned();
        let keep = toka_store_core::MAX_STORED_CHECKPOINTS as i64;
        client
            .execute(
                "INSERT INTO checkpoints (seq, body) VALUES ($1, $2)",
                &[&(seq as i64), &body],
            )
            .await
            .map_err(backend)?;
        client
            .execute(
                "DELETE FROM checkpoints WHERE id NOT IN (SELECT id FROM checkpoints ORDER BY id DESC LIMIT $1)",
                &[&keep],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT body FROM checkpoints ORDER BY id", &[])
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0).into_bytes())
            .collect())
    }

    async fn lock_head(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<Box<dyn HeadLease>>, StoreError> {
        Ok(Some(Box::new(self.lease(wait).await?)))
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn watch_head(&self) -> Option<watch::Receiver<u64>> {
        Some(self.head.clone())
    }
}
