//! [`PayloadIndex`]: which event holds each stored payload, by the first 8 bytes of its
//! hash, kept in memory so that payloads are stored once without a random-order index on
//! disk (schema v3 dropped the one it had: it dirtied about one page per event on every
//! commit).
//!
//! An entry is a hint, never the truth: a lookup reads the row it points at (by `seq`,
//! near the end of the table, where pages are cached) and compares the whole hash. So
//! an entry left by a rolled-back append, or one overwritten by another payload with
//! the same prefix, costs at worst a second copy of a payload, never a wrong one. A
//! payload whose prefix is new (nearly every one) costs one hash-map lookup, no read.
//! About 20 bytes of memory per distinct payload.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rusqlite::{Connection, OptionalExtension, params};
use toka_store_core::{Hash32, StoreError};

use crate::backend;

/// The `seq` of the event holding each payload, by hash prefix.
#[derive(Default)]
pub(crate) struct PayloadIndex(HashMap<i64, i64, BuildHasherDefault<PrefixHasher>>);

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
            // A damaged hash is the verifier's to report; it can only miss a share.
            let Some(hash) = hash.and_then(Hash32::from_slice) else {
                continue;
            };
            let seq: i64 = row.get(1).map_err(backend)?;
            index.0.insert(prefix(&hash), seq);
        }
        Ok(index)
    }

    /// The `seq` of the event holding the payload whose hash is `hash`, if it is stored.
    pub(crate) fn find(&self, conn: &Connection, hash: &Hash32) -> Result<Option<i64>, StoreError> {
        let Some(seq) = self.0.get(&prefix(hash)).copied() else {
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
        self.0.insert(prefix(hash), seq);
    }
}

/// The first 8 bytes of a payload hash, as the map's key.
fn prefix(hash: &Hash32) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_le_bytes(bytes)
}

/// The prefixes are uniformly distributed hash bytes already: used as they are.
#[derive(Default)]
pub(crate) struct PrefixHasher(u64);

impl std::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = v as u64;
    }
}
