//! Turning records into rows and back.

use rusqlite::types::ValueRef;
use rusqlite::{Row, ToSql};
use toka_store_core::{EventHeader, EventRecord, Hash32, StoreError};
use toka_types::{EntityId, Timestamp};

use crate::DRIVER;

/// The columns `read_*` queries select, in this order.
pub(crate) const EVENT_COLUMNS: &str = "e.seq, e.id, e.kind, e.timestamp, e.intent, e.parents, e.origin, e.jti, e.payload_hash, e.digest, coalesce(e.body, b.body)";

/// What `read_*` queries select [`EVENT_COLUMNS`] from: each event, and the earlier event
/// holding its payload when it does not hold it itself.
pub(crate) const EVENT_TABLES: &str = "events e LEFT JOIN events b ON b.seq = e.body_at";

/// A payload as SQLite should store it: TEXT when it is UTF-8 (so `sqlite3` shows the
/// JSON), BLOB otherwise. Both keep the bytes exactly.
pub(crate) enum PayloadParam<'a> {
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> PayloadParam<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        match std::str::from_utf8(payload) {
            Ok(text) => Self::Text(text),
            Err(_) => Self::Blob(payload),
        }
    }
}

impl ToSql for PayloadParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            Self::Text(t) => ValueRef::Text(t.as_bytes()),
            Self::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn corrupt(seq: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        driver: DRIVER,
        seq,
        reason: reason.into(),
    }
}

// The readers below borrow each column's bytes from SQLite instead of copying them
// into a `String` or `Vec` first: a replay reads every row once, and those copies were
// a third of its read time.

fn text_at<'r>(row: &'r Row<'_>, index: usize, seq: u64) -> Result<&'r str, StoreError> {
    row.get_ref(index)
        .and_then(|v| v.as_str().map_err(Into::into))
        .map_err(|e| corrupt(seq, e.to_string()))
}

fn blob_at<'r>(row: &'r Row<'_>, index: usize, seq: u64) -> Result<&'r [u8], StoreError> {
    row.get_ref(index)
        .and_then(|v| v.as_blob().map_err(Into::into))
        .map_err(|e| corrupt(seq, e.to_string()))
}

/// An id column: the UUID's 16 bytes.
fn id_at(row: &Row<'_>, index: usize, seq: u64) -> Result<EntityId, StoreError> {
    let bytes: [u8; 16] = blob_at(row, index, seq)?
        .try_into()
        .map_err(|_| corrupt(seq, "an id is not 16 bytes"))?;
    Ok(EntityId::from_bytes(bytes))
}

fn hash_at(row: &Row<'_>, index: usize, seq: u64) -> Result<Hash32, StoreError> {
    Hash32::from_slice(blob_at(row, index, seq)?)
        .ok_or_else(|| corrupt(seq, "hash is not 32 bytes"))
}

/// The `parents` column: a JSON list of ids, most often empty.
fn parents_at(row: &Row<'_>, index: usize, seq: u64) -> Result<Vec<EntityId>, StoreError> {
    toka_store_core::parents_from_json(text_at(row, index, seq)?)
        .map_err(|e| corrupt(seq, format!("parents: {e}")))
}

/// The bytes of a column that holds TEXT or BLOB (how a value is stored is SQLite's,
/// and `sqlite3` edits may change it); `None` for any other type.
pub(crate) fn bytes_of(value: ValueRef<'_>) -> Option<&[u8]> {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(bytes),
        _ => None,
    }
}

/// Reads a row selected with [`EVENT_COLUMNS`]. A missing payload reads as empty, so
/// verification reports it as altered rather than the read failing.
pub(crate) fn record_from_row(row: &Row<'_>) -> Result<EventRecord, StoreError> {
    let seq: i64 = row.get(0).map_err(|e| StoreError::backend(DRIVER, e))?;
    let seq = seq as u64;
    let parents = parents_at(row, 5, seq)?;
    let timestamp: i64 = row.get(3).map_err(|e| corrupt(seq, e.to_string()))?;
    let payload = bytes_of(row.get_ref(10).map_err(|e| corrupt(seq, e.to_string()))?)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    Ok(EventRecord {
        header: EventHeader {
            seq,
            id: id_at(row, 1, seq)?,
            kind: row.get(2).map_err(|e| corrupt(seq, e.to_string()))?,
            timestamp: Timestamp::from_micros(timestamp as u64),
            intent: id_at(row, 4, seq)?,
            parents,
            origin: id_at(row, 6, seq)?,
            jti: row.get(7).map_err(|e| corrupt(seq, e.to_string()))?,
            payload_hash: hash_at(row, 8, seq)?,
            digest: hash_at(row, 9, seq)?,
        },
        payload,
    })
}
