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
//! waiting nodes on the lock, so they take turns.
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
//! chain covers.
//!
//! ```text
//! ```
//!
//! # Live tailing
//!
//! Each append sends `NOTIFY` on channel `toka_<schema>` with the new head; every
//! store handle listens on a dedicated connection and exposes the head it hears of
//! through [`StorageBackend::watch_head`], so a node learns of other nodes' events
//! without polling.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod schema;
mod tls;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt as _;
use toka_store_core::{
    AppendError, EventHeader, EventRecord, Hash32, Head, HeadLease, Snapshot, StorageBackend,
    StoreError, admit, head_after, parents_json,
};
use toka_types::{EntityId, Timestamp};
use tokio::sync::watch;
use tokio_postgres::{NoTls, Row};

pub use schema::SCHEMA_VERSION;

pub(crate) const DRIVER: &str = "postgres";
const POOL_SIZE: usize = 16;
/// How long to wait for a pooled connection, to open one, or to check one.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
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

fn channel(schema: &str) -> String {
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
        };
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

/// How long a node may hold the head's lock without a statement before PostgreSQL ends
/// its session (a node paused or cut off mid-batch must not stop every other node).
const LEASE_IDLE_TIMEOUT_MS: u64 = 10_000;

/// The head row locked in an open transaction on a connection of its own: the sole
/// right to append next (see [`StorageBackend::lock_head`]).
///
/// A lease that does not append is dropped: its connection is taken out of the pool and
/// closed, so PostgreSQL rolls the transaction back and frees the lock, and no pooled
/// connection is ever handed out inside a transaction.
struct Lease {
    client: Option<deadpool_postgres::Object>,
    schema: Arc<str>,
    head: Head,
}

impl Lease {
    /// Opens the transaction and waits, at most `wait`, for the head row's lock: one
    /// round trip (the simple query protocol takes the statements together).
    async fn begin(&mut self, wait: std::time::Duration) -> Result<Head, StoreError> {
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
        let client = self
            .client
            .as_ref()
            .ok_or(StoreError::Poisoned { driver: DRIVER })?;
        let new_head = insert_batch(client, &self.schema, self.head, batch).await?;
        client.batch_execute("COMMIT").await.map_err(backend)?;
        // Committed: the connection is clean and may go back to the pool.
        drop(self.client.take());
        Ok(new_head)
    }

    async fn release(mut self: Box<Self>) {
        if let Some(client) = &self.client
            && client.batch_execute("ROLLBACK").await.is_ok()
        {
            drop(self.client.take());
        }
    }
}

const INSERT_PAYLOADS: &str = "INSERT INTO payloads (hash, body)
     SELECT h, b FROM UNNEST($1::bytea[], $2::bytea[]) AS t(h, b)
     ON CONFLICT (hash) DO NOTHING";
const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, kind, ts, intent, parents, origin, jti, payload_hash, digest)
     SELECT s, i::uuid, k, t, n::uuid, p, o::uuid, j, h, d
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[])
       AS x(s, i, k, t, n, p, o, j, h, d)";
const MOVE_HEAD: &str = "UPDATE head SET seq = $1, digest = $2";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// A batch as the columns of [`INSERT_PAYLOADS`] and [`INSERT_EVENTS`].
#[derive(Default)]
struct Columns {
    hashes: Vec<Vec<u8>>,
    bodies: Vec<Vec<u8>>,
    seqs: Vec<i64>,
    ids: Vec<String>,
    kinds: Vec<String>,
    stamps: Vec<i64>,
    intents: Vec<String>,
    parents: Vec<String>,
    origins: Vec<String>,
    jtis: Vec<Option<String>>,
    digests: Vec<Vec<u8>>,
}

impl Columns {
    fn of(batch: &[EventRecord]) -> Self {
        let mut c = Self::default();
        for r in batch {
            let h = &r.header;
            c.hashes.push(h.payload_hash.as_bytes().to_vec());
            c.bodies.push(r.payload.clone());
            c.seqs.push(h.seq as i64);
            c.ids.push(h.id.to_string());
            c.kinds.push(h.kind.clone());
            c.stamps.push(h.timestamp.as_micros() as i64);
            c.intents.push(h.intent.to_string());
            c.parents.push(parents_json(&h.parents));
            c.origins.push(h.origin.to_string());
            c.jtis.push(h.jti.clone());
            c.digests.push(h.digest.as_bytes().to_vec());
        }
        c
    }
}

/// Inserts `batch` (already admitted after `head`) and moves the head, inside the
/// caller's transaction, which holds the head row's lock.
///
/// The four statements are sent together (tokio-postgres pipelines the requests of one
/// connection that are awaited together) and their answers read in order: one round
/// trip, not four. A statement after a failed one fails too (the transaction is
/// aborted), so the first error is the one reported, and the caller never commits.
async fn insert_batch(
    tx: &impl deadpool_postgres::GenericClient,
    schema: &str,
    head: Head,
    batch: &[EventRecord],
) -> Result<Head, AppendError> {
    let c = Columns::of(batch);
    let new_head = head_after(head, batch);
    let (payloads, events, move_head, notify) = futures::try_join!(
        tx.prepare_cached(INSERT_PAYLOADS),
        tx.prepare_cached(INSERT_EVENTS),
        tx.prepare_cached(MOVE_HEAD),
        tx.prepare_cached(NOTIFY),
    )
    .map_err(backend)?;
    let (seq, digest, channel, seq_text) = (
        new_head.seq as i64,
        new_head.digest.as_bytes().as_slice(),
        channel(schema),
        new_head.seq.to_string(),
    );
    type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
    let payload_params: [Param<'_>; 2] = [&c.hashes, &c.bodies];
    let event_params: [Param<'_>; 10] = [
        &c.seqs, &c.ids, &c.kinds, &c.stamps, &c.intents, &c.parents, &c.origins, &c.jtis,
        &c.hashes, &c.digests,
    ];
    let head_params: [Param<'_>; 2] = [&seq, &digest];
    let notify_params: [Param<'_>; 2] = [&channel, &seq_text];
    let (stored, inserted, moved, notified) = futures::join!(
        tx.execute(&payloads, &payload_params),
        tx.execute(&events, &event_params),
        tx.execute(&move_head, &head_params),
        tx.execute(&notify, &notify_params),
    );
    stored.map_err(backend)?;
    if let Err(e) = inserted {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            return Err(AppendError::InvalidBatch {
                seq: batch[0].header.seq,
                reason: format!("an event id of the batch is already in the log: {e}"),
            });
        }
        return Err(backend(e).into());
    }
    moved.map_err(backend)?;
    notified.map_err(backend)?;
    Ok(new_head)
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

const EVENT_COLUMNS: &str = "e.seq, e.id::text, e.kind, e.ts, e.intent::text, e.parents, e.origin::text, e.jti, e.payload_hash, e.digest, p.body";

/// Reads a row selected with [`EVENT_COLUMNS`]. Columns are borrowed from the row, not
/// copied first, and a column that does not read as its type is a corrupt record, not a
/// panic (someone with `psql` may have altered the table).
fn record_of(row: &Row) -> Result<EventRecord, StoreError> {
    let corrupt = |seq: u64, reason: String| StoreError::Corrupt {
        driver: DRIVER,
        seq,
        reason,
    };
    let seq = row
        .try_get::<_, i64>(0)
        .map_err(|e| corrupt(0, format!("seq: {e}")))? as u64;
    let text = |i: usize| -> Result<&str, StoreError> {
        row.try_get::<_, &str>(i)
            .map_err(|e| corrupt(seq, format!("column {i}: {e}")))
    };
    let id = |i: usize| -> Result<EntityId, StoreError> {
        text(i)?
            .parse()
            .map_err(|e: toka_types::ParseIdError| corrupt(seq, e.to_string()))
    };
    let hash = |i: usize| -> Result<Hash32, StoreError> {
        let bytes = row
            .try_get::<_, &[u8]>(i)
            .map_err(|e| corrupt(seq, format!("column {i}: {e}")))?;
        Hash32::from_slice(bytes).ok_or_else(|| corrupt(seq, "hash is not 32 bytes".into()))
    };
    let parents = toka_store_core::parents_from_json(text(5)?)
        .map_err(|e| corrupt(seq, format!("parents: {e}")))?;
    let timestamp = row
        .try_get::<_, i64>(3)
        .map_err(|e| corrupt(seq, format!("ts: {e}")))?;
    Ok(EventRecord {
        header: EventHeader {
            seq,
            id: id(1)?,
            kind: text(2)?.to_string(),
            timestamp: Timestamp::from_micros(timestamp as u64),
            intent: id(4)?,
            parents,
            origin: id(6)?,
            jti: row
                .try_get::<_, Option<&str>>(7)
                .map_err(|e| corrupt(seq, format!("jti: {e}")))?
                .map(str::to_string),
            payload_hash: hash(8)?,
            digest: hash(9)?,
        },
        payload: row
            .try_get::<_, Option<&[u8]>>(10)
            .map_err(|e| corrupt(seq, format!("body: {e}")))?
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
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
        let new_head = insert_batch(&tx, &self.schema, head, batch).await?;
        tx.commit().await.map_err(backend)?;
        Ok(new_head)
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Prepared once per connection: a catch-up under the held head reads a page on
        // every batch, and each round trip saved there is one every node waits for.
        let statement = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN payloads p ON p.hash = e.payload_hash WHERE e.seq >= $1 ORDER BY e.seq LIMIT $2"
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
            .query_opt(&format!("SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN payloads p ON p.hash = e.payload_hash WHERE e.id = $1::text::uuid"), &[&id.to_string()])
            .await
            .map_err(backend)?;
        row.as_ref().map(record_of).transpose()
    }

    async fn read_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body FROM payloads WHERE hash = $1",
                &[&hash.as_bytes().as_slice()],
            )
            .await
            .map_err(backend)?;
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
        let mut lease = Lease {
            client: Some(self.client().await?),
            schema: self.schema.clone(),
            head: Head::EMPTY,
        };
        lease.head = lease.begin(wait).await?;
        Ok(Some(Box::new(lease)))
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn watch_head(&self) -> Option<watch::Receiver<u64>> {
        Some(self.head.clone())
    }
}
