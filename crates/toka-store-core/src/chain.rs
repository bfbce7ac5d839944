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
    // The fields go through a stack buffer and reach the hasher in one or two calls:
    // each small `update` costs more than its bytes. Same byte stream, same digest.
    let mut h = Buffered::new();
    h.put(CHAIN_DOMAIN);
    h.put(prev.as_bytes());
    h.put(&header.seq.to_le_bytes());
    h.put(&header.id.to_bytes());
    h.put_str(&header.kind);
    h.put(&header.timestamp.as_micros().to_le_bytes());
    h.put(&header.intent.to_bytes());
    h.put(&(header.parents.len() as u32).to_le_bytes());
    for parent in &header.parents {
        h.put(&parent.to_bytes());
    }
    h.put(&header.origin.to_bytes());
    h.put_str(header.jti.as_deref().unwrap_or(""));
    h.put(header.payload_hash.as_bytes());
    h.finish()
}

/// A BLAKE3 hasher fed through a fixed buffer (a digest input is usually ~200 bytes).
struct Buffered {
    hasher: blake3::Hasher,
    buf: [u8; 512],
    len: usize,
}

impl Buffered {
    fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            buf: [0; 512],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
        }
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            // Larger than the buffer (a long kind or jti): straight to the hasher.
            None => {
                self.hasher.update(bytes);
            }
        }
    }

    fn put_str(&mut self, s: &str) {
        self.put(&(s.len() as u32).to_le_bytes());
        self.put(s.as_bytes());
    }

    fn finish(mut self) -> Hash32 {
        self.hasher.update(&self.buf[..self.len]);
        Hash32(*self.hasher.finalize().as_bytes())
    }
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
    let mut limits = Limits::for_batch(batch);
    for record in batch {
        let h = &record.header;
        let expected = cursor.next_seq();
        if h.seq != expected {
            return bad(
                h.seq,
                format!("seq {} where {expected} was expected", h.seq),
            );
        }
        limits.check(record)?;
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
    }
    Ok(())
}

/// What every record of a batch must meet besides chaining: sizes within limits, no
/// empty `jti`, no event id seen before in the batch.
pub(crate) struct Limits {
    ids: std::collections::HashSet<EntityId>,
}

impl Limits {
    pub(crate) fn for_batch(batch: &[EventRecord]) -> Self {
        Self {
            ids: std::collections::HashSet::with_capacity(batch.len()),
        }
    }

    pub(crate) fn check(&mut self, record: &EventRecord) -> Result<(), AppendError> {
        let h = &record.header;
        let bad = |reason: String| Err(AppendError::InvalidBatch { seq: h.seq, reason });
        if h.kind.is_empty() || h.kind.len() > MAX_KIND_BYTES {
            return bad(format!("kind must be 1 to {MAX_KIND_BYTES} bytes"));
        }
        if h.parents.len() > MAX_PARENTS {
            return bad(format!("{} parents, limit {MAX_PARENTS}", h.parents.len()));
        }
        if h.jti.as_deref() == Some("") {
            return bad("jti is empty (use None for no capability)".into());
        }
        if record.payload.len() > MAX_PAYLOAD_BYTES {
            return bad(format!(
                "payload is {} bytes, limit {MAX_PAYLOAD_BYTES}",
                record.payload.len()
            ));
        }
        if !self.ids.insert(h.id) {
            return bad(format!("event id {} appears twice in the batch", h.id));
        }
        Ok(())
    }
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
    let mut json = String::with_capacity(2 + parents.len() * 39);
    json.push('[');
    for (i, parent) in parents.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(&parent.hyphenated());
        json.push('"');
    }
    json.push(']');
    json
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
