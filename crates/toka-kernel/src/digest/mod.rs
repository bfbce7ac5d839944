//! [`StateDigest`]: a hash of a [`WorldState`], cheap to keep current.
//!
//! Live state and replayed state must have the same digest; snapshots and signed
//! checkpoints carry it so recovery and auditors can prove they rebuilt the same
//! state. Format v3 (`toka.state.v3`): the big, growing tables (agents, tasks, issued
//! tokens) enter as the [`LtHash`](lthash) of their entries, each entry hashed on its
//! own ([`map`]), so the digest follows a change in time proportional to the change;
//! the small tables enter in the canonical encoding of [`encode`]. Format v2 (one
//! stream over everything) is still accepted for snapshots and checkpoints written
//! before v3 ([`WorldState::matches_digest`]).

use std::fmt;
use std::str::FromStr;

use crate::state::WorldState;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod encode;
mod legacy;
mod lthash;
mod map;

pub(crate) use map::DigestedMap;

/// A BLAKE3 hash of a state's canonical encoding; 64 hex digits when printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateDigest([u8; 32]);

impl StateDigest {
    /// The digest with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateDigest({self})")
    }
}

/// Why a string is not a [`StateDigest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid state digest: expected 64 hex digits")]
pub struct ParseDigestError;

impl FromStr for StateDigest {
    type Err = ParseDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(ParseDigestError);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| ParseDigestError)?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| ParseDigestError)?;
        }
        Ok(Self(out))
    }
}

impl Serialize for StateDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StateDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl WorldState {
    /// The digest of this state (format v3). Costs time in proportion to what changed
    /// since the digest of this same value was last taken (the first call, all of it).
    pub fn digest(&self) -> StateDigest {
        let mut e = encode::Encoder::new();
        e.tag(b"toka.state.v3");
        e.u64(self.applied);
        e.opt_id(self.root);
        e.len(self.agents.len());
        e.tag(&self.agents.sum());
        e.len(self.tasks.len());
        e.tag(&self.tasks.sum());
        self.encode_revoked(&mut e);
        e.len(self.tokens.len());
        e.tag(&self.tokens.sum());
        self.encode_tail(&mut e);
        StateDigest(e.finish())
    }

    /// Whether `recorded` (from a snapshot or a checkpoint) is this state's digest, in
    /// the current format or, for records written before it, format v2.
    pub fn matches_digest(&self, recorded: &[u8; 32]) -> bool {
        self.digest().as_bytes() == recorded || self.legacy_digest_v2().as_bytes() == recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_prints_and_parses() {
        let d = WorldState::new().digest();
        let text = d.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<StateDigest>().unwrap(), d);
        assert!("zz".parse::<StateDigest>().is_err());
        assert!("g".repeat(64).parse::<StateDigest>().is_err());
    }

    #[test]
    fn the_formats_differ_and_both_match() {
        let state = WorldState::new();
        assert_ne!(state.digest(), state.legacy_digest_v2());
        assert!(state.matches_digest(state.digest().as_bytes()));
        assert!(state.matches_digest(state.legacy_digest_v2().as_bytes()));
        assert!(!state.matches_digest(&[0; 32]));
    }
}
