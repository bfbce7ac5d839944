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
}

impl Context {
    /// A context at `now` for log position `seq`.
    pub fn new(now: Timestamp, seq: u64) -> Self {
        Self { now, seq }
    }
}
