//! Rebuilding the kernel from the log: newest snapshot, then the tail, checked.
//!
//! 1. Load the newest snapshot, if any: its state must load (invariants hold), hash to
//!    its recorded state digest, and its chain digest must be the digest the log has at
//!    its `seq` (so it belongs to this log).
//! 2. Replay every later record: its `seq` follows, its payload hashes to its payload
//!    hash, its digest chains from the previous one, it decodes to a kernel event; then
//!    apply it. Never `decide` again.
//! 3. Check the invariants of the result.
//!
//! Any failure refuses the start with the first bad `seq`; nothing is repaired.

use toka_kernel::{Kernel, OpcodeRegistry, StateImage, WorldState};
use toka_store_core::{Corruption, EventPages, Hash32, Head, StorageBackend, chain_digest};
use toka_types::KernelEvent;

use crate::codec::decode;
use crate::error::RuntimeError;

/// What recovery produced.
pub struct Recovered {
    /// The state at the head.
    pub state: WorldState,
    /// The head of the log.
    pub head: Head,
    /// The snapshot recovery started from, if any.
    pub from_snapshot: Option<u64>,
}

/// Decodes a snapshot's state bytes.
pub fn decode_image(seq: u64, bytes: &[u8]) -> Result<WorldState, RuntimeError> {
    let image: StateImage =
        serde_json::from_slice(bytes).map_err(|e| RuntimeError::BadSnapshot {
            seq,
            reason: format!("state does not decode: {e}"),
        })?;
    WorldState::from_image(image).map_err(|e| RuntimeError::BadSnapshot {
        seq,
        reason: e.to_string(),
    })
}

/// Rebuilds the state of `store`'s log, calling `progress(seq)` after each page.
pub async fn recover(
    store: &dyn StorageBackend,
    handlers: &OpcodeRegistry,
    mut progress: impl FnMut(u64),
) -> Result<Recovered, RuntimeError> {
    let mut state = WorldState::new();
    let mut prev = Hash32::ZERO;
    let mut from_snapshot = None;
    if let Some(snapshot) = store.latest_snapshot().await? {
        let seq = snapshot.seq;
        let loaded = decode_image(seq, &snapshot.state)?;
        if loaded.digest().as_bytes() != snapshot.state_digest.as_bytes() {
            return Err(RuntimeError::BadSnapshot {
                seq,
                reason: "state does not hash to its recorded digest".into(),
            });
        }
        if loaded.applied() != seq {
            return Err(RuntimeError::BadSnapshot {
                seq,
                reason: format!("state has {} events applied", loaded.applied()),
            });
        }
        let at = store.read_range(seq, 1).await?;
        match at.first() {
            Some(r) if r.header.seq == seq && r.header.digest == snapshot.chain_digest => {}
            _ => {
                return Err(RuntimeError::BadSnapshot {
                    seq,
                    reason: "the log's digest at this seq differs (another log?)".into(),
                });
            }
        }
        state = loaded;
        prev = snapshot.chain_digest;
        from_snapshot = Some(seq);
    }
    let mut expected = state.applied() + 1;
    let mut pages = EventPages::new(store, expected);
    loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            break;
        }
        for record in &page {
            let h = &record.header;
            let corrupt = |corruption| RuntimeError::Corrupt {
                seq: expected,
                corruption,
            };
            if h.seq != expected {
                return Err(corrupt(Corruption::Missing { found: h.seq }));
            }
            if Hash32::of(&record.payload) != h.payload_hash {
                return Err(corrupt(Corruption::PayloadAltered));
            }
            if chain_digest(&prev, h) != h.digest {
                return Err(corrupt(Corruption::HeaderAltered));
            }
            let event = decode(record)?;
            if let KernelEvent::Extension(call) = &event
                && handlers.get(call.family()).is_none()
            {
                return Err(RuntimeError::MissingExtension {
                    seq: h.seq,
                    family: call.family().to_string(),
                });
            }
            toka_kernel::apply(&mut state, &event, handlers);
            prev = h.digest;
            expected += 1;
        }
        progress(expected - 1);
    }
    state
        .check_invariants()
        .map_err(|violation| RuntimeError::Invariant {
            seq: expected - 1,
            violation,
        })?;
    Ok(Recovered {
        head: Head {
            seq: expected - 1,
            digest: prev,
        },
        state,
        from_snapshot,
    })
}

/// A kernel on a recovered state.
pub fn kernel_for(state: WorldState, keys: toka_auth::KeySet, handlers: &OpcodeRegistry) -> Kernel {
    let mut kernel = Kernel::with_state(state, keys);
    for family in handlers.families() {
        if let Some(h) = handlers.get(family) {
            // Families are unique in `handlers`, so registering cannot collide.
            let _ = kernel.register(h.clone());
        }
    }
    kernel
}
