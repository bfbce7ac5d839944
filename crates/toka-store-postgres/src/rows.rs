//! Records into rows and back: the insert of a batch and the reading of a row.

use std::collections::HashMap;
use std::sync::Mutex;

use toka_store_core::{
    AppendError, EventHeader, EventRecord, Hash32, Head, PayloadHints, StoreError, head_after,
    parents_json,
};
use toka_types::{EntityId, Timestamp};
use tokio_postgres::Row;

use crate::{DRIVER, backend, channel};

/// One row per event. A payload is stored in the first event that has it; a later one
/// names that event in `body_at` instead. `c` is a holder the hints suggest in the log,
/// taken only if its row holds a body with the same hash; failing that, `a`, the first
/// event of this batch with the same payload (certain: the batch was checked, equal
/// hashes are equal bytes), which then stores it. So a wrong hint costs a second copy
/// of the payload, never a wrong payload. The hint is looked up per row by primary key:
/// as a plain join (or a `LATERAL` one it may flatten into a join; the `LIMIT` stops
/// that) a generic plan made while the log was small hashes the whole log per batch.
const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, kind, ts, intent, parents, origin, jti, payload_hash, digest, body, body_at)
     SELECT x.s, x.i::uuid, x.k, x.t, x.n::uuid, x.p, x.o::uuid, x.j, x.h, x.d,
            CASE WHEN coalesce(held.seq, x.a) IS NULL THEN x.b END,
            coalesce(held.seq, x.a)
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bigint[], $13::bigint[])
       AS x(s, i, k, t, n, p, o, j, h, d, b, a, c)
     LEFT JOIN LATERAL (
         SELECT e.seq FROM events e WHERE e.seq = x.c AND e.payload_hash = x.h AND e.body IS NOT NULL
         LIMIT 1
     ) held ON true";
const MOVE_HEAD: &str = "UPDATE head SET seq = $1, digest = $2";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// A batch as the columns of [`INSERT_EVENTS`].
#[derive(Default)]
struct Columns<'b> {
    seqs: Vec<i64>,
    ids: Vec<String>,
    kinds: Vec<&'b str>,
    stamps: Vec<i64>,
    intents: Vec<String>,
    parents: Vec<String>,
    origins: Vec<String>,
    jtis: Vec<Option<&'b str>>,
    hashes: Vec<&'b [u8]>,
    digests: Vec<&'b [u8]>,
    /// The payload, or `None` where an event earlier in the batch has the same one.
    bodies: Vec<Option<&'b [u8]>>,
    in_batch: Vec<Option<i64>>,
    hinted: Vec<Option<i64>>,
}

impl<'b> Columns<'b> {
    fn of(batch: &'b [EventRecord], hints: &PayloadHints) -> Self {
        let mut c = Self::default();
        let mut first_in_batch: HashMap<&Hash32, i64> = HashMap::new();
        for r in batch {
            let h = &r.header;
            let seq = h.seq as i64;
            let in_batch = first_in_batch.get(&h.payload_hash).copied();
            if in_batch.is_none() {
                first_in_batch.insert(&h.payload_hash, seq);
            }
            c.seqs.push(seq);
            c.ids.push(h.id.to_string());
            c.kinds.push(&h.kind);
            c.stamps.push(h.timestamp.as_micros() as i64);
            c.intents.push(h.intent.to_string());
            c.parents.push(parents_json(&h.parents));
            c.origins.push(h.origin.to_string());
            c.jtis.push(h.jti.as_deref());
            c.hashes.push(h.payload_hash.as_bytes());
            c.digests.push(h.digest.as_bytes());
            c.bodies
                .push(in_batch.is_none().then_some(r.payload.as_slice()));
            c.in_batch.push(in_batch);
            c.hinted
                .push(hints.holder(&h.payload_hash).map(|s| s as i64));
        }
        c
    }
}

/// Inserts `batch` (already admitted after `head`) and moves the head, inside the
/// caller's transaction, which holds the head row's lock; notes in `hints` the payloads
/// it stored.
///
/// The three statements are sent together (tokio-postgres pipelines the requests of one
/// connection that are awaited together) and their answers read in order: one round
/// trip, not three. A statement after a failed one fails too (the transaction is
/// aborted), so the first error is the one reported, and the caller never commits.
///
/// With `commit`, the transaction's `COMMIT` goes in the same round trip (for a client
/// that opened it with `BEGIN`, not a [`tokio_postgres::Transaction`]). After a failed
/// statement PostgreSQL answers that `COMMIT` by rolling back, so nothing is written and
/// the statement's error is the one returned.
pub(crate) async fn insert_batch(
    tx: &impl deadpool_postgres::GenericClient,
    schema: &str,
    hints: &Mutex<PayloadHints>,
    head: Head,
    batch: &[EventRecord],
    commit: bool,
) -> Result<Head, AppendError> {
    let c = {
        let hints = hints
            .lock()
            .map_err(|_| StoreError::Poisoned { driver: DRIVER })?;
        Columns::of(batch, &hints)
    };
    let new_head = head_after(head, batch);
    let (events, move_head, notify) = futures::try_join!(
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
    let event_params: [Param<'_>; 13] = [
        &c.seqs,
        &c.ids,
        &c.kinds,
        &c.stamps,
        &c.intents,
        &c.parents,
        &c.origins,
        &c.jtis,
        &c.hashes,
        &c.digests,
        &c.bodies,
        &c.in_batch,
        &c.hinted,
    ];
    let head_params: [Param<'_>; 2] = [&seq, &digest];
    let notify_params: [Param<'_>; 2] = [&channel, &seq_text];
    let (inserted, moved, notified, committed) = futures::join!(
        tx.execute(&events, &event_params),
        tx.execute(&move_head, &head_params),
        tx.execute(&notify, &notify_params),
        async {
            match commit {
                true => tx.batch_execute("COMMIT").await,
                false => Ok(()),
            }
        },
    );
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
    committed.map_err(backend)?;
    // Noted before the caller's commit: if it does not happen, the entries are stale
    // hints, which the insert above recognises.
    if let Ok(mut hints) = hints.lock() {
        // Only the rows certain to hold their body: a hinted one may point elsewhere.
        for ((r, in_batch), hinted) in batch.iter().zip(&c.in_batch).zip(&c.hinted) {
            if in_batch.is_none() && hinted.is_none() {
                hints.note(&r.header.payload_hash, r.header.seq);
            }
        }
    }
    Ok(new_head)
}

/// The columns `read_*` queries select from `events e`, in this order. The payload of an
/// event that does not hold it is read from the holder by primary key, a subquery per
/// such row: as a join, a generic plan made while the log was small hashes the whole
/// log on every read.
pub(crate) const EVENT_COLUMNS: &str = "e.seq, e.id::text, e.kind, e.ts, e.intent::text, e.parents, e.origin::text, e.jti, e.payload_hash, e.digest, coalesce(e.body, (SELECT b.body FROM events b WHERE b.seq = e.body_at))";

/// Reads a row selected with [`EVENT_COLUMNS`]. Columns are borrowed from the row, not
/// copied first, and a column that does not read as its type is a corrupt record, not a
/// panic (someone with `psql` may have altered the table).
pub(crate) fn record_of(row: &Row) -> Result<EventRecord, StoreError> {
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
