//! [`Timestamp`]: a point in time, as the runtime's clock reported it.

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch (UTC). The core never reads a clock: the runtime
/// puts one of these in each kernel context and each event header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The timestamp `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// The timestamp `secs` seconds after the epoch (saturating).
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (the unit of JWT `iat`/`exp`).
    pub const fn as_unix_secs(self) -> u64 {
        self.0 / 1_000_000
    }
}
