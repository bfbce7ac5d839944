//! The log of Toka: hash-chained event records, the [`StorageBackend`] contract every
//! driver keeps, [`verify`], and (feature `testkit`) the conformance kit.
//!
//! The log is the single source of truth: the state of the system is a fold of it. An
//! acknowledged event must never be lost, reordered or silently altered; this crate
//! says what that means byte for byte, and checks it.
//!
//! What this crate is not: a driver (see `toka-store-memory`, `-sled`, `-sqlite`,
//! `-postgres`), and it knows nothing of what payloads mean (the runtime stores kernel
//! events as JSON; here they are bytes).
//!
//! # The record
//!
//! A record is an [`EventHeader`] and payload bytes. `seq` starts at 1 and has no gaps.
//! `payload_hash = BLAKE3(payload)`, over the bytes exactly as stored (never
//! re-serialised). Payloads are stored once per hash.
//!
//! # The chain rule
//!
//! `digest(n)` is the 32-byte BLAKE3 hash of the concatenation of:
//!
//! | field | encoding |
//! |---|---|
//! | domain | the 13 ASCII bytes `toka.chain.v1` |
//! | prev | 32 bytes: `digest(n-1)`; for `seq` 1, 32 zero bytes |
//! | seq | u64, little-endian |
//! | id | 16 bytes, the UUID's bytes in printed order |
//! | kind | u32 little-endian byte length, then the UTF-8 bytes |
//! | timestamp | u64 little-endian, microseconds since the Unix epoch |
//! | intent | 16 bytes |
//! | parents | u32 little-endian count, then 16 bytes per parent, in order |
//! | origin | 16 bytes |
//! | jti | u32 little-endian byte length (0 when there is none), then the UTF-8 bytes |
//! | payload_hash | 32 bytes |
//!
//! So changing, dropping or reordering any stored byte breaks that record's digest and,
//! through `prev`, every later one. [`verify`] recomputes all of it and names the first
//! bad `seq` and why ([`Corruption`]).
//!
//! Test vector (checked by `tests/chain_vector.rs`): records with ids `…01`, `…02`,
//! `…03` (UUIDs `00000000-0000-0000-0000-00000000000N`), kind `test.event`, timestamps
//! 1 000 000, 2 000 000, 3 000 000 µs, intent `…0a`, no parents except record 3, whose
//! parent is record 2, origin `…0b`, jti `jti-1` (none for record 1), payloads
//! `{"n":1}`, `{"n":2}`, `{"n":3}`:
//!
//! ```text
//! seq 1  payload_hash d88775a5e63750fdc32c2ffeb7d3b456e0ca8cb74a2b71fad447eb67e05d7d30
//!        digest       3a25f8ce6b573762fdcf93da7030540172c0d0db1595685eae63d38cbc5805dd
//! seq 2  payload_hash 232172f768d1cbbbb48d1ae201e7a5df5b56236ebf11716bb68fbd5eb07ec0be
//!        digest       4a385acf8b6c1b618973b36462fab191e62cd6bc00c05ceeac564a5572c2e7d2
//! seq 3  payload_hash f1ec0f25e982ad12ae821b4c397a57583c5d5b9500be7726b9d7032e06f97c33
//!        digest       8c68da5bb11a809351ab76e1b88abd717df5b8498ed2b985fac6278df34bdf13
//! ```
//!
//! # The contract
//!
//! [`StorageBackend::append`]`(expected_head, batch)` is all or nothing, durable when it
//! returns, and refused with [`AppendError::Conflict`] (writing nothing) when the head
//! has moved: optimistic concurrency, which is what lets several runtimes share one
//! PostgreSQL log. Drivers run [`check_batch`] against the head they read inside their
//! atomic section, so hashes are checked before append; [`verify`] checks them after
//! read.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod chain;
mod cursor;
mod error;
mod hash;
mod pages;
mod payload_hints;
mod record;
mod sealed;
mod verify;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use backend::{HeadLease, MAX_STORED_CHECKPOINTS, Snapshot, StorageBackend};
pub use chain::{
    CHAIN_DOMAIN, admit, chain_digest, check_batch, head_after, parents_from_json, parents_json,
    seal,
};
pub use cursor::ChainCursor;
pub use error::{AppendError, StoreError};
pub use hash::{Hash32, ParseHashError};
pub use pages::{DEFAULT_PAGE, EventPages};
pub use payload_hints::PayloadHints;
pub use record::{
    EventHeader, EventRecord, Head, MAX_KIND_BYTES, MAX_PARENTS, MAX_PAYLOAD_BYTES, NewEvent,
};
pub use sealed::{Sealed, admit_sealed};
pub use verify::{Corruption, Verdict, verify};
