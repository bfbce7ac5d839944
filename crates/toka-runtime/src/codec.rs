//! Kernel events in and out of the log: payload encoding, event ids, headers.
//!
//! The payload of a record is the JSON of its [`KernelEvent`], exactly as hashed.
//! Event ids put the `seq` first (so ids sort, and index, in log order) followed by
//! bits of the log's namespace (its root agent), laid out as a version-8 UUID.

use toka_store_core::{EventRecord, NewEvent};
use toka_types::{EntityId, KernelEvent, Timestamp};

/// Why a stored record is not a kernel event.
#[derive(Debug, thiserror::Error)]
#[error("record {seq} does not hold a kernel event: {reason}")]
pub struct DecodeError {
    /// The record.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

/// The id of the event at `seq` in the log whose root agent is `namespace`.
pub fn event_id(namespace: EntityId, seq: u64) -> EntityId {
    let ns = namespace.to_bytes();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&seq.to_be_bytes()[2..]);
    bytes[6] = 0x80 | (ns[6] & 0x0f);
    bytes[7] = ns[7];
    bytes[8] = 0x80 | (ns[8] & 0x3f);
    bytes[9..].copy_from_slice(&ns[9..]);
    EntityId::from_bytes(bytes)
}

/// Who asked for the events of one message, and under which grant.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The origin agent.
    pub origin: EntityId,
    /// The capability's `jti` (`None` for genesis).
    pub jti: Option<String>,
    /// When it was decided.
    pub timestamp: Timestamp,
}

/// The records-to-be for the events of one message, whose first event will take `seq`.
/// All share an intent (the first event's id); later events name the first as their
/// causal parent.
pub fn encode(
    namespace: EntityId,
    seq: u64,
    events: &[KernelEvent],
    who: &Provenance,
) -> Vec<NewEvent> {
    let mut out = Vec::with_capacity(events.len());
    encode_into(&mut out, &mut Vec::new(), namespace, seq, events, who);
    out
}

/// [`encode`], appending to `out`. Each payload is written into `scratch` first and
/// then copied out at its exact size: one allocation per payload instead of a buffer
/// grown two or three times (reallocation was a few percent of the writer's time).
pub fn encode_into(
    out: &mut Vec<NewEvent>,
    scratch: &mut Vec<u8>,
    namespace: EntityId,
    seq: u64,
    events: &[KernelEvent],
    who: &Provenance,
) {
    let intent = event_id(namespace, seq);
    out.extend(events.iter().enumerate().map(|(i, event)| {
        scratch.clear();
        // Serialising our own enum to JSON cannot fail (no maps with non-string keys,
        // no failing Serialize impls); writing to a Vec cannot either.
        let _ = serde_json::to_writer(&mut *scratch, event);
        NewEvent {
            id: event_id(namespace, seq + i as u64),
            kind: event.kind().to_string(),
            timestamp: who.timestamp,
            intent,
            parents: if i == 0 { Vec::new() } else { vec![intent] },
            origin: who.origin,
            jti: who.jti.clone(),
            payload: scratch.as_slice().to_vec(),
        }
    }));
}

/// The kernel event a record holds.
pub fn decode(record: &EventRecord) -> Result<KernelEvent, DecodeError> {
    serde_json::from_slice(&record.payload).map_err(|e| DecodeError {
        seq: record.header.seq,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_sort_in_log_order_and_keep_uuid_bits() {
        let ns = EntityId::from_u128(0xdead_beef_0000_0000_1234_5678_9abc_def0);
        let ids: Vec<EntityId> = (1..2000).map(|s| event_id(ns, s)).collect();
        assert!(
            ids.windows(2)
                .all(|w| w[0] < w[1] && w[0].to_string() < w[1].to_string())
        );
        let text = ids[0].to_string();
        assert_eq!(&text[14..15], "8");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
    }
}
