//! Rebuilding the kernel from the log: newest snapshot, then the tail, checked.
//!
//! 1. Load the newest snapshot, if any: its state must load (invariants hold), hash to
//!    its recorded state digest, and its chain digest must be the digest the log has at
//!    its `seq` (so it belongs to this log). A snapshot is only a short cut if a signed
//!    checkpoint covers it (same `seq`, chain and state digests): a snapshot's digest is
//!    its own claim, and anyone with write access to the store can write one. An
//!    uncovered snapshot is checked instead: replay starts at seq 1 and must reach the
//!    snapshot's digest at its `seq`.
//! 2. Replay every later record: its `seq` follows, its payload hashes to its payload
//!    hash, its digest chains from the previous one, it decodes to a kernel event; then
//!    apply it. Never `decide` again. Reading, checking and applying overlap, a few
//!    pages apart, on their own threads (see `replay`).
//! 3. Check the invariants of the result, and the log against every signed checkpoint:
//!    a log that ends before a checkpoint's `seq` lost events; one whose digest differs
//!    at that `seq` was rewritten; the state at the newest one must hash to its digest.
//!
//! Any failure refuses the start with the first bad `seq`; nothing is repaired.

use toka_kernel::{Kernel, OpcodeRegistry, StateImage, WorldState};
use toka_store_core::{ChainCursor, Corruption, Hash32, Head, StorageBackend};

use crate::checkpoint::SignedCheckpoint;
use crate::error::RuntimeError;

mod replay;

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

/// Rebuilds the state of `store`'s log, calling `progress(seq)` after each page. With
/// no checkpoints to trust, a snapshot is checked by a full replay, not used.
pub async fn recover(
    store: &dyn StorageBackend,
    handlers: &OpcodeRegistry,
    progress: impl FnMut(u64),
) -> Result<Recovered, RuntimeError> {
    recover_with(store, handlers, &[], true, progress).await
}

/// [`recover`], checking the log against `checkpoints` (already verified as signed by
/// this node's key). With `use_snapshot` false, replay always starts at seq 1 (what
/// `toka verify` does), and a snapshot is checked against it.
pub async fn recover_with(
    store: &dyn StorageBackend,
    handlers: &OpcodeRegistry,
    checkpoints: &[SignedCheckpoint],
    use_snapshot: bool,
    progress: impl FnMut(u64),
) -> Result<Recovered, RuntimeError> {
    let mut state = WorldState::new();
    let mut prev = Hash32::ZERO;
    let mut from_snapshot = None;
    // A snapshot not covered by a checkpoint, to compare with the replay at its seq.
    let mut to_check: Option<(u64, Hash32)> = None;
    if let Some(snapshot) = store.latest_snapshot().await? {
        let seq = snapshot.seq;
        let head = store.head().await?;
        if seq > head.seq {
            // The snapshot saw events the log no longer has: its tail was cut.
            return Err(RuntimeError::Corrupt {
                seq: head.seq + 1,
                corruption: Corruption::Truncated { last: head.seq },
            });
        }
        let loaded = decode_image(seq, &snapshot.state)?;
        if !loaded.matches_digest(snapshot.state_digest.as_bytes()) {
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
        let covered = checkpoints.iter().any(|c| {
            let c = &c.checkpoint;
            c.seq == seq
                && c.chain_digest == snapshot.chain_digest
                && c.state_digest == snapshot.state_digest
        });
        if covered && use_snapshot {
            state = loaded;
            prev = snapshot.chain_digest;
            from_snapshot = Some(seq);
        } else {
            if use_snapshot {
                tracing::warn!(
                    seq,
                    "no signed checkpoint covers the snapshot; checking it by a full replay"
                );
            }
            to_check = Some((seq, snapshot.state_digest));
        }
    }
    let newest = crate::checkpoint::newest(checkpoints).map(|c| c.checkpoint);
    let expect = replay::Expectations {
        chain_at: checkpoints
            .iter()
            .map(|c| (c.checkpoint.seq, c.checkpoint.chain_digest))
            .collect(),
        newest_state: newest.as_ref().map(|c| (c.seq, c.state_digest)),
        snapshot_state: to_check,
    };
    let cursor = ChainCursor::at(state.applied() + 1, prev);
    let (state, cursor) = replay::replay(store, state, cursor, handlers, expect, progress).await?;
    let Head {
        seq: last,
        digest: prev,
    } = cursor.head();
    if let Some(c) = newest.filter(|c| c.seq > last) {
        return Err(RuntimeError::BehindCheckpoint {
            last,
            checkpoint: c.seq,
        });
    }
    // Checkpoints at or before a trusted snapshot: the log must still agree there.
    if let Some(start) = from_snapshot {
        for c in checkpoints.iter().filter(|c| c.checkpoint.seq <= start) {
            let at = store.read_range(c.checkpoint.seq, 1).await?;
            if at.first().map(|r| r.header.digest) != Some(c.checkpoint.chain_digest) {
                return Err(RuntimeError::CheckpointMismatch {
                    seq: c.checkpoint.seq,
                    what: "chain digest",
                });
            }
        }
    }
    state
        .check_invariants()
        .map_err(|violation| RuntimeError::Invariant {
            seq: last,
            violation,
        })?;
    Ok(Recovered {
        head: Head {
            seq: last,
            digest: prev,
        },
        state,
        from_snapshot,
    })
}

/// A kernel on a recovered state.
pub fn kernel_for(state: WorldState, keys: toka_auth::KeySet, handlers: &OpcodeRegistry) -> Kernel {
    Kernel::with_state(state, keys).with_handlers(handlers.clone())
}
