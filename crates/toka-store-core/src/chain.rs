//! The chain rule: how a record's digest is computed, [`seal`] to place new events
//! after a head, and [`check_batch`], which every driver runs before it writes.

use toka_types::EntityId;

use crate::error::AppendError;
use crate::hash::Hash32;
use crate::record::{
    EventHeader, EventRecord, Head, MAX_KIND_BYTES, MAX_PARENTS, MAX_PAYLOAD_BYTES, NewEvent,
};
use crate::verify::Corruption;

/// The domain separator that starts every digest input.
pub const CHAIN_DOMAIN: &[u8] = b"toka.chain.v1";

/// The digest of a record whose header fields are `header` (its own `digest` field is
/// ignored), chained after a record whose digest is `prev`. See the crate docs for the
/// byte layout.
pub fn chain_digest(prev: &Hash32, header: &EventHeader) -> Hash32 {
    let mut h = blake3::Hasher::new();
    h.update(CHAIN_DOMAIN);
    h.update(prev.as_bytes());
    h.update(&header.seq.to_le_bytes());
    h.update(&header.id.to_bytes());
    put_str(&mut h, &header.kind);
    h.update(&header.timestamp.as_micros().to_le_bytes());
    h.update(&header.intent.to_bytes());
    h.update(&(header.parents.len() as u32).to_le_bytes());
    for parent in &header.parents {
        h.update(&parent.to_bytes());
    }
    h.update(&header.origin.to_bytes());
    put_str(&mut h, header.jti.as_deref().unwrap_or(""));
    h.update(header.payload_hash.as_bytes());
    Hash32(*h.finalize().as_bytes())
}

fn put_str(h: &mut blake3::Hasher, s: &str) {
    h.update(&(s.len() as u32).to_le_bytes());
    h.update(s.as_bytes());
}

/// Places `events` after `head`: numbers them from `head.seq + 1`, hashes their
/// payloads and chains their digests. The result is what `append(head.seq, …)` takes.
pub fn seal(head: Head, events: Vec<NewEvent>) -> Vec<EventRecord> {
    let mut prev = head.digest;
    let mut seq = head.seq;
    events
        .into_iter()
        .map(|e| {
            seq += 1;
            let mut header = EventHeader {
                seq,
                id: e.id,
                kind: e.kind,
                timestamp: e.timestamp,
                intent: e.intent,
                parents: e.parents,
                origin: e.origin,
                jti: e.jti,
                payload_hash: Hash32::of(&e.payload),
                digest: Hash32::ZERO,
            };
            header.digest = chain_digest(&prev, &header);
            prev = header.digest;
            EventRecord {
                header,
                payload: e.payload,
            }
        })
        .collect()
}

/// Checks that `batch` continues the log whose head is `head`: consecutive `seq`s from
/// `head.seq + 1`, payload hashes and digests that recompute, sizes within limits, no
/// event id twice. Drivers call this inside their atomic section, with the head they
/// read there, before writing anything.
pub fn check_batch(head: &Head, batch: &[EventRecord]) -> Result<(), AppendError> {
    let bad = |seq: u64, reason: String| Err(AppendError::InvalidBatch { seq, reason });
    let mut cursor = crate::cursor::ChainCursor::after(*head);
    let mut ids = std::collections::HashSet::with_capacity(batch.len());
    for record in batch {
        let h = &record.header;
        let expected = cursor.next_seq();
        if h.seq != expected {
            return bad(
                h.seq,
                format!("seq {} where {expected} was expected", h.seq),
            );
        }
        if h.kind.is_empty() || h.kind.len() > MAX_KIND_BYTES {
            return bad(h.seq, format!("kind must be 1 to {MAX_KIND_BYTES} bytes"));
        }
        if h.parents.len() > MAX_PARENTS {
            return bad(
                h.seq,
                format!("{} parents, limit {MAX_PARENTS}", h.parents.len()),
            );
        }
        if h.jti.as_deref() == Some("") {
            return bad(h.seq, "jti is empty (use None for no capability)".into());
        }
        if record.payload.len() > MAX_PAYLOAD_BYTES {
            return bad(
                h.seq,
                format!(
                    "payload is {} bytes, limit {MAX_PAYLOAD_BYTES}",
                    record.payload.len()
                ),
            );
        }
        match cursor.accept(record) {
            Ok(()) => {}
            Err(Corruption::PayloadAltered) => {
                return bad(h.seq, "payload hash does not match the payload".into());
            }
            Err(_) => {
                return bad(
                    h.seq,
                    "digest does not chain from the previous record".into(),
                );
            }
        }
        if !ids.insert(h.id) {
            return bad(
                h.seq,
                format!("event id {} appears twice in the batch", h.id),
            );
        }
    }
    Ok(())
}

/// The checks every driver runs inside its atomic section, on the head it read there:
/// the head is the caller's `expected_head` (else [`AppendError::Conflict`]), and the
/// batch continues it ([`check_batch`]). `Ok(false)` means the batch is empty: nothing
/// to write.
pub fn admit(head: &Head, expected_head: u64, batch: &[EventRecord]) -> Result<bool, AppendError> {
    if head.seq != expected_head {
        return Err(AppendError::Conflict {
            expected: expected_head,
            actual: head.seq,
        });
    }
    if batch.is_empty() {
        return Ok(false);
    }
    check_batch(head, batch)?;
    Ok(true)
}

/// Causal parents as the JSON array of ids that the SQL drivers store.
pub fn parents_json(parents: &[EntityId]) -> String {
    let ids: Vec<String> = parents.iter().map(|p| format!("\"{p}\"")).collect();
    format!("[{}]", ids.join(","))
}

/// Reads what [`parents_json`] wrote (most often `[]`, read without a parser).
pub fn parents_from_json(text: &str) -> Result<Vec<EntityId>, serde_json::Error> {
    match text {
        "[]" => Ok(Vec::new()),
        list => serde_json::from_str(list),
    }
}

/// The head after `batch` is appended to `head`.
pub fn head_after(head: Head, batch: &[EventRecord]) -> Head {
    batch
        .last()
        .map(|r| Head {
            seq: r.header.seq,
            digest: r.header.digest,
        })
        .unwrap_or(head)
}
