//! [`PayloadIndex`]: the driver's [`PayloadHints`] (which event holds each stored
//! payload, kept in memory instead of an index on disk), and the two reads that load and
//! confirm them. A payload whose prefix is new (nearly every one) costs one hash-map
//! lookup and no read.

use rusqlite::{Connection, OptionalExtension, params};
use toka_store_core::{Hash32, PayloadHints, StoreError};

use crate::backend;

/// Where each stored payload is.
#[derive(Default)]
pub(crate) struct PayloadIndex(PayloadHints);

impl PayloadIndex {
    /// Reads every stored payload's hash and holder (a scan of the events table).
    pub(crate) fn load(conn: &Connection) -> Result<Self, StoreError> {
        let mut index = Self::default();
        let mut stmt = conn
            .prepare("SELECT payload_hash, seq FROM events WHERE body IS NOT NULL")
            .map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let hash = row.get_ref(0).map_err(backend)?.as_blob().ok();
            // A damaged hash is the verifier's to report; here it can only miss a share.
            let Some(hash) = hash.and_then(Hash32::from_slice) else {
                continue;
            };
            let seq: i64 = row.get(1).map_err(backend)?;
            index.0.note(&hash, seq as u64);
        }
        Ok(index)
    }

    /// The `seq` of the event that may hold the payload hashing to `hash` (a hint: check
    /// the whole hash there).
    pub(crate) fn holder(&self, hash: &Hash32) -> Option<i64> {
        self.0.holder(hash).map(|seq| seq as i64)
    }

    /// The `seq` of the event holding the payload whose hash is `hash`, if it is stored.
    pub(crate) fn find(&self, conn: &Connection, hash: &Hash32) -> Result<Option<i64>, StoreError> {
        let Some(seq) = self.holder(hash) else {
            return Ok(None);
        };
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT payload_hash FROM events WHERE seq = ?1 AND body IS NOT NULL")
            .map_err(backend)?
            .query_row(params![seq], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        Ok((stored.as_deref() == Some(hash.as_bytes().as_slice())).then_some(seq))
    }

    /// Notes that the event at `seq` holds the payload with `hash`.
    pub(crate) fn note(&mut self, hash: &Hash32, seq: i64) {
        self.0.note(hash, seq as u64);
    }
}
