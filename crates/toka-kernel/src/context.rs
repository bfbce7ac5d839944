//! [`Context`]: everything non-deterministic that the runtime hands the kernel.

use toka_types::Timestamp;

/// What the runtime supplies for one `decide`: the time and the log position that the
/// first resulting event will take. Nothing else outside the state and the message may
/// influence a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The time of the decision (recorded in the events' headers).
    pub now: Timestamp,
    /// The `seq` the first event of this decision will have in the log. Must be the
    /// state's [`next_seq`](crate::WorldState::next_seq).
    pub seq: u64,
    /// How long a chain of tokens may last from its root token's issuance: renewals
    /// end there (the operator's `tokens.max_chain_lifetime`). A decision-time rule,
    /// like the time: replay applies recorded events and never asks it again.
    pub chain_lifetime_secs: u64,
}

impl Context {
    /// A context at `now` for log position `seq`, with the default chain lifetime.
    pub fn new(now: Timestamp, seq: u64) -> Self {
        Self {
            now,
            seq,
            chain_lifetime_secs: toka_types::limits::DEFAULT_CHAIN_LIFETIME_SECS,
        }
    }

    /// The same context with chains lasting at most `secs` (bounded by
    /// [`MAX_CHAIN_LIFETIME_SECS`](toka_types::limits::MAX_CHAIN_LIFETIME_SECS)).
    pub fn with_chain_lifetime(mut self, secs: u64) -> Self {
        self.chain_lifetime_secs = secs.clamp(1, toka_types::limits::MAX_CHAIN_LIFETIME_SECS);
        self
    }
}
