//! [`PayloadHints`]: which log position holds each stored payload, for drivers that
//! store a payload once without an index on its hash (SQLite, PostgreSQL).
//!
//! An index on a hash is the one random-order B-tree of a log: each append dirties about
//! one of its pages per event. So the drivers keep, in memory, the `seq` of the event
//! holding each payload, by the first 8 bytes of its hash, and on a hit read that one
//! row and compare the whole hash. An entry is a hint, never the truth: one left by a
//! rolled-back append, overwritten by another payload with the same prefix, or missing
//! (another node stored the payload) costs at worst a second copy of a payload, never a
//! wrong one. About 20 bytes per distinct payload. Not here: reading or writing rows.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::Hash32;

/// The `seq` of the event holding each stored payload, by hash prefix.
#[derive(Debug, Default)]
pub struct PayloadHints(HashMap<u64, u64, BuildHasherDefault<PrefixHasher>>);

impl PayloadHints {
    /// No payloads known.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `seq` that may hold the payload hashing to `hash` (compare the whole hash
    /// there before relying on it).
    pub fn holder(&self, hash: &Hash32) -> Option<u64> {
        self.0.get(&prefix(hash)).copied()
    }

    /// Notes that the event at `seq` holds the payload hashing to `hash`.
    pub fn note(&mut self, hash: &Hash32, seq: u64) {
        self.0.insert(prefix(hash), seq);
    }

    /// How many prefixes are known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn prefix(hash: &Hash32) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// The prefixes are uniformly distributed hash bytes already: used as they are.
#[derive(Debug, Default)]
struct PrefixHasher(u64);

impl std::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_found_by_its_hash_and_replaced_by_a_later_note() {
        let mut hints = PayloadHints::new();
        let a = Hash32::of(b"a");
        assert_eq!(hints.holder(&a), None);
        hints.note(&a, 7);
        assert_eq!(hints.holder(&a), Some(7));
        // Another hash with the same first 8 bytes takes the entry: a hint, not a truth.
        let mut same_prefix = *a.as_bytes();
        same_prefix[31] ^= 1;
        let b = Hash32(same_prefix);
        assert_eq!(hints.holder(&b), Some(7), "a prefix match is only a hint");
        hints.note(&b, 9);
        assert_eq!(hints.holder(&a), Some(9));
        assert_eq!(hints.len(), 1);
    }
}
