//! The stored event: [`EventHeader`] plus payload bytes, and [`NewEvent`], an event
//! before it has a place in the log.

use serde::{Deserialize, Serialize};
use toka_types::{EntityId, Timestamp};

use crate::hash::Hash32;

/// Longest event kind, in bytes.
pub const MAX_KIND_BYTES: usize = 64;
/// Most causal parents one event may name.
pub const MAX_PARENTS: usize = 64;
/// Largest payload, in bytes (an observation of 1 MiB plus its JSON envelope).
pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;

/// Everything about an event except its payload bytes; covered by the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHeader {
    /// Position in the log: 1, 2, 3, … without gaps. The only order that exists.
    pub seq: u64,
    /// The event's id.
    pub id: EntityId,
    /// What kind of event it is (`agent.spawned`, …).
    pub kind: String,
    /// When it was decided (from the kernel's context).
    pub timestamp: Timestamp,
    /// The submission it came from: all events of one message share an intent.
    pub intent: EntityId,
    /// Ids of the events it depends on.
    pub parents: Vec<EntityId>,
    /// The agent whose message caused it.
    pub origin: EntityId,
    /// The `jti` of the capability that authorised it (`None` only for genesis).
    pub jti: Option<String>,
    /// BLAKE3 of the payload bytes as stored.
    pub payload_hash: Hash32,
    /// The chain digest (see the crate docs).
    pub digest: Hash32,
}

/// A stored event: header and payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The header.
    #[serde(flatten)]
    pub header: EventHeader,
    /// The payload bytes exactly as hashed (for Toka's runtime: the JSON of a kernel
    /// event).
    #[serde(with = "payload_text")]
    pub payload: Vec<u8>,
}

/// An event that does not yet have a place in the log: [`crate::seal`] gives it its
/// `seq`, payload hash and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's id.
    pub id: EntityId,
    /// Its kind.
    pub kind: String,
    /// When it was decided.
    pub timestamp: Timestamp,
    /// The submission it came from.
    pub intent: EntityId,
    /// The events it depends on.
    pub parents: Vec<EntityId>,
    /// The agent whose message caused it.
    pub origin: EntityId,
    /// The capability's `jti`.
    pub jti: Option<String>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// The last record of a log: its `seq` (0 for an empty log) and digest
/// ([`Hash32::ZERO`] for an empty log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Head {
    /// The last `seq`.
    pub seq: u64,
    /// Its digest.
    pub digest: Hash32,
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Self = Self {
        seq: 0,
        digest: Hash32::ZERO,
    };
}

/// Payloads serialise as UTF-8 text when they are (Toka's are JSON), else as
/// `{"base64": "…"}`; so an exported log stays readable.
mod payload_text {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Binary { base64: String },
    }

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Repr::Text(text.to_string()).serialize(s),
            Err(_) => Repr::Binary {
                base64: STANDARD.encode(bytes),
            }
            .serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(text) => Ok(text.into_bytes()),
            Repr::Binary { base64 } => STANDARD.decode(base64).map_err(serde::de::Error::custom),
        }
    }
}
