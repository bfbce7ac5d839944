//! [`ChainCursor`]: the chain rule applied to records one at a time, the one check that
//! verification, recovery, a node catching up with a shared log, import and every
//! driver's append all use.
//!
//! A cursor knows the `seq` it expects next and the digest the next record must chain
//! from; [`ChainCursor::accept`] checks a record's position, its payload hash and its
//! digest, and only then moves on. It is not a store reader: callers feed it records
//! in order from wherever they come.

use crate::chain::chain_digest;
use crate::hash::Hash32;
use crate::record::{EventRecord, Head};
use crate::verify::Corruption;

/// Where a chain check stands: the next `seq` and the digest it must chain from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCursor {
    next: u64,
    prev: Hash32,
}

impl ChainCursor {
    /// A cursor expecting `head.seq + 1`, chaining from `head.digest`.
    pub fn after(head: Head) -> Self {
        Self {
            next: head.seq + 1,
            prev: head.digest,
        }
    }

    /// A cursor expecting `seq`, chaining from `prev` (the digest at `seq - 1`).
    pub fn at(seq: u64, prev: Hash32) -> Self {
        Self { next: seq, prev }
    }

    /// The `seq` expected next.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The head so far: the last accepted `seq` and its digest.
    pub fn head(&self) -> Head {
        Head {
            seq: self.next - 1,
            digest: self.prev,
        }
    }

    /// Checks `record` against the chain rule and moves past it; on a mismatch the
    /// cursor stays where it was.
    pub fn accept(&mut self, record: &EventRecord) -> Result<(), Corruption> {
        let h = &record.header;
        if h.seq != self.next {
            return Err(if h.seq > self.next {
                Corruption::Missing { found: h.seq }
            } else {
                Corruption::Reordered
            });
        }
        if Hash32::of(&record.payload) != h.payload_hash {
            return Err(Corruption::PayloadAltered);
        }
        if chain_digest(&self.prev, h) != h.digest {
            return Err(Corruption::HeaderAltered);
        }
        self.next += 1;
        self.prev = h.digest;
        Ok(())
    }

    /// Whether `record`, moved to the expected position, would chain here (how a swap
    /// of two records is told from an edit).
    pub fn would_chain_here(&self, record: &EventRecord) -> bool {
        let mut moved = record.header.clone();
        moved.seq = self.next;
        chain_digest(&self.prev, &moved) == record.header.digest
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::NewEvent;
    use toka_types::{EntityId, Timestamp};

    fn records(n: u64) -> Vec<EventRecord> {
        let events = (1..=n)
            .map(|i| NewEvent {
                id: EntityId::from_u128(u128::from(i)),
                kind: "test.event".into(),
                timestamp: Timestamp::from_micros(i),
                intent: EntityId::from_u128(u128::from(i)),
                parents: vec![],
                origin: EntityId::from_u128(7),
                jti: None,
                payload: format!("{{\"n\":{i}}}").into_bytes(),
            })
            .collect();
        crate::chain::seal(Head::EMPTY, events)
    }

    #[test]
    fn accepts_a_chain_and_names_each_kind_of_break() {
        let log = records(4);
        let mut c = ChainCursor::after(Head::EMPTY);
        for r in &log {
            c.accept(r).unwrap();
        }
        assert_eq!(c.head().seq, 4);

        let mut c = ChainCursor::after(Head::EMPTY);
        assert_eq!(c.accept(&log[1]), Err(Corruption::Missing { found: 2 }));
        c.accept(&log[0]).unwrap();
        assert_eq!(c.accept(&log[0]), Err(Corruption::Reordered));
        let mut edited = log[1].clone();
        edited.payload.push(b'!');
        assert_eq!(c.accept(&edited), Err(Corruption::PayloadAltered));
        let mut edited = log[1].clone();
        edited.header.kind.push('!');
        assert_eq!(c.accept(&edited), Err(Corruption::HeaderAltered));
        assert_eq!(c.next_seq(), 2, "a refused record moves nothing");
        c.accept(&log[1]).unwrap();
    }
}
