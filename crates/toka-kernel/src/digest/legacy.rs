//! The digest of format v2 (`toka.state.v2`): one BLAKE3 stream over the whole state
//! in key order. Snapshots and signed checkpoints written before v3 carry it, so
//! recovery and `toka verify` still accept it; nothing new is digested this way.

use super::StateDigest;
use super::encode::{self, Encoder};
use crate::state::WorldState;

impl WorldState {
    /// The v2 digest of this state: time proportional to the whole state.
    pub fn legacy_digest_v2(&self) -> StateDigest {
        let mut e = Encoder::new();
        e.tag(b"toka.state.v2");
        e.u64(self.applied);
        e.opt_id(self.root);
        e.len(self.agents.len());
        for agent in self.agents() {
            encode::agent(&mut e, agent);
        }
        e.len(self.tasks.len());
        for task in self.tasks() {
            encode::task(&mut e, task);
        }
        self.encode_revoked(&mut e);
        let tokens = self.issued_sorted();
        e.len(tokens.len());
        for t in tokens {
            encode::token(&mut e, t);
        }
        self.encode_tail(&mut e);
        StateDigest::from_bytes(e.finish())
    }
}
