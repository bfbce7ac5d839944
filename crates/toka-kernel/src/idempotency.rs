//! [`IdempotencyIndex`]: the keyed messages the state remembers, so a retry gets the
//! first answer.
//!
//! Keys come from outside, so they are kept in ordered maps (no hashing an attacker
//! could aim at). The index holds at most
//! [`MAX_IDEMPOTENCY_KEYS`](toka_types::limits::MAX_IDEMPOTENCY_KEYS) records and
//! forgets the oldest first, in log order: a fold of the log, so replay forgets the
//! same keys at the same point.

use std::collections::BTreeMap;

use toka_types::limits::MAX_IDEMPOTENCY_KEYS;
use toka_types::{EntityId, IdempotencyRecord, Operation};

/// The remembered keyed messages, by `(origin, key)` and by their first `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyIndex {
    by_key: BTreeMap<(EntityId, String), u64>,
    by_seq: BTreeMap<u64, IdempotencyRecord>,
    capacity: usize,
}

impl Default for IdempotencyIndex {
    fn default() -> Self {
        Self::with_capacity(MAX_IDEMPOTENCY_KEYS)
    }
}

impl IdempotencyIndex {
    /// An index that remembers at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            by_key: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The record of `origin`'s message with `key`, if it is still remembered.
    pub fn get(&self, origin: EntityId, key: &str) -> Option<&IdempotencyRecord> {
        let seq = self.by_key.get(&(origin, key.to_string()))?;
        self.by_seq.get(seq)
    }

    /// Remembers `record`, forgetting the oldest beyond the capacity.
    pub(crate) fn insert(&mut self, record: IdempotencyRecord) {
        self.by_key
            .insert((record.origin, record.key.clone()), record.first_seq);
        self.by_seq.insert(record.first_seq, record);
        while self.by_seq.len() > self.capacity {
            let Some((_, old)) = self.by_seq.pop_first() else {
                break;
            };
            self.by_key.remove(&(old.origin, old.key));
        }
    }

    /// The records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &IdempotencyRecord> {
        self.by_seq.values()
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Whether both maps agree and the capacity holds (invariant 8).
    pub(crate) fn consistent(&self) -> bool {
        self.by_key.len() == self.by_seq.len()
            && self.by_seq.len() <= self.capacity
            && self.by_key.iter().all(|((o, k), s)| {
                self.by_seq
                    .get(s)
                    .is_some_and(|r| r.origin == *o && r.key == *k)
            })
    }
}

/// The request hash of `operation`: BLAKE3 over its JSON, 64 hex digits.
pub fn request_hash(operation: &Operation) -> String {
    // Serialising our own enum cannot fail (string keys, no failing impls).
    let json = serde_json::to_vec(operation).unwrap_or_default();
    blake3::hash(&json).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(origin: u128, key: &str, seq: u64) -> IdempotencyRecord {
        IdempotencyRecord {
            origin: EntityId::from_u128(origin),
            key: key.into(),
            request_hash: "h".into(),
            first_seq: seq,
            events: 1,
        }
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let mut index = IdempotencyIndex::with_capacity(3);
        for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
            index.insert(record(1, key, i as u64 + 1));
        }
        assert_eq!(index.len(), 3);
        assert!(index.get(EntityId::from_u128(1), "a").is_none());
        assert_eq!(index.get(EntityId::from_u128(1), "d").unwrap().first_seq, 4);
        // Keys are per origin.
        assert!(index.get(EntityId::from_u128(2), "d").is_none());
        assert!(index.consistent());
    }
}
